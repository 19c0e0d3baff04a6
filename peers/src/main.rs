//! `weir-peers` (issue 15): weir side by side with the servers people run as message systems
//! today, PostgreSQL (as pgmq builds a queue), RabbitMQ (quorum and classic queues) and NATS
//! JetStream, each started by this program from Debian's packages on its own data directory
//! under `target/`, on loopback, and stopped afterwards. The open-protocol rows (issue 16) put
//! `weir serve` itself beside the brokers of those protocols, one client library for both:
//! `amqp_cycle` (lapin) against RabbitMQ and `mqtt_qos1` (rumqttc) against Mosquitto.
//!
//! ```text
//! cargo run --release -p weir-peers -- [--quick] [--json FILE]
//! ```
//!
//! Every workload runs on weir and on every peer that has the concept, alternating, each round
//! on a fresh queue, exchange or stream; the median is reported with the ratio weir / peer (none
//! from a system whose rounds differ by more than 2 x). Then each system's latency is measured
//! at a fixed offered load of half its own measured peak, in HDR histograms. The measuring
//! harness is `examples/compare`'s (shared file `examples/compare/harness.rs`), and weir's side
//! of the throughput runs is its code too (`examples/compare/weir_side.rs`).

#[path = "../../examples/compare/harness.rs"]
mod harness;
mod latency;
mod mqtt;
mod nats;
mod pg;
mod rabbit;
mod report;
mod servers;
mod systems;
mod weir_peer;
mod weir_serve;
#[path = "../../examples/compare/weir_side.rs"]
mod weir_side;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Map, Value};
use weir::Durability;

use harness::{alternate_series, load_average, noise, text_noise, BoxedRun, Ctx, TryRun};
use latency::{LatencyResult, STAMP_LEN};
use report::{SystemOutcome, WorkloadOutcome};
use systems::Shape;

#[derive(Parser, Debug)]
#[command(about = "weir side by side with PostgreSQL, RabbitMQ, NATS JetStream and Mosquitto")]
struct Args {
    /// Small counts, short windows, one round: finishes in under three minutes.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run only these workloads (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run only these systems (comma-separated: weir, weir_never, postgres, rabbitmq_quorum,
    /// rabbitmq_classic, nats, mosquitto).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Measuring window of each throughput run, seconds (default 3, quick 1).
    #[arg(long)]
    window: Option<f64>,
    /// Window of each latency run, seconds (default 5, quick 1.5).
    #[arg(long)]
    latency_window: Option<f64>,
    /// Rounds per workload (default 3, quick 1); the median is reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Do not run the install script (the peers must already be installed).
    #[arg(long)]
    no_install: bool,
    /// RabbitMQ consumers' prefetch (basic.qos), for tuning it.
    #[arg(long, default_value_t = rabbit::DEFAULT_PREFETCH)]
    rabbit_prefetch: u16,
}

const WORKLOADS: &[&str] =
    &["queue_cycle", "fifo_cycle", "topic_fanout", "stream_put_concurrent", "stream_read", "amqp_cycle", "mqtt_qos1"];
const PEERS: &[&str] = &["postgres", "rabbitmq", "nats", "mosquitto"];

/// The peers a workload runs on (besides weir).
fn peers_of(workload: &str) -> &'static [&'static str] {
    match workload {
        "queue_cycle" => &["postgres", "rabbitmq", "nats"],
        "fifo_cycle" => &["postgres"],
        "topic_fanout" => &["rabbitmq", "nats"],
        "stream_put_concurrent" | "stream_read" => &["nats"],
        "amqp_cycle" => &["rabbitmq"],
        "mqtt_qos1" => &["mosquitto"],
        _ => &[],
    }
}

/// What the peers' servers are, or why one is missing.
struct Peers {
    servers: servers::Servers,
    errors: Vec<(&'static str, String)>,
    nats_sync_always: bool,
}

impl Peers {
    fn port(&self, name: &str) -> Result<u16, String> {
        if let Some(s) = self.servers.get(name) {
            return Ok(s.port);
        }
        let why = self.errors.iter().find(|(n, _)| *n == name).map(|(_, e)| e.clone());
        Err(why.unwrap_or_else(|| format!("{name} was not started")))
    }
}

/// A latency run at this many sends per second.
type LatencyRun<'a> = Box<dyn Fn(f64) -> Result<LatencyResult, String> + 'a>;

/// One system's entry in a workload.
struct Entry<'a> {
    label: &'static str,
    durability: String,
    /// A throughput run of one round in a fresh directory: its ops/s, or why it failed.
    run: BoxedRun<'a>,
    /// Runs the latency measurement at this many sends per second.
    latency: Option<LatencyRun<'a>>,
    /// Sends per second are throughput / this (10 for a fan-out counted in deliveries).
    per_send: f64,
}

impl<'a> Entry<'a> {
    /// A system that could not run this workload at all (its server is missing).
    fn missing(label: &'static str, durability: String, why: String) -> Entry<'a> {
        Entry { label, durability, run: Box::new(move |_| Err(why.clone())), latency: None, per_send: 1.0 }
    }
}

struct Run {
    ctx: Ctx,
    latency_window: Duration,
}

impl Run {
    fn workload(
        &self,
        name: &'static str,
        ops: &'static str,
        note: String,
        entries: Vec<Entry<'_>>,
    ) -> WorkloadOutcome {
        let entries: Vec<Entry<'_>> = entries.into_iter().filter(|e| self.ctx.wants(e.label)).collect();
        let runs: Vec<(&str, TryRun<'_>)> = entries.iter().map(|e| (e.label, &*e.run as TryRun<'_>)).collect();
        let series = alternate_series(&self.ctx, name, &runs);
        let mut systems = Vec::new();
        for (e, s) in entries.iter().zip(series) {
            let latency = match (&e.latency, s.median()) {
                (Some(run), Some(peak)) if s.error.is_none() => {
                    let rate = (peak / e.per_send * 0.5).max(1.0);
                    eprintln!("  {name:<24} latency {:<17} at {} sends/s", e.label, harness::fmt_rate(rate));
                    let r = run(rate);
                    if let Err(err) = &r {
                        eprintln!("  {name:<24} latency {:<17} FAILED: {err}", e.label);
                    }
                    Some(r)
                }
                (Some(_), _) => Some(Err("no throughput measured to derive the load from".to_string())),
                (None, _) => None,
            };
            systems.push(SystemOutcome {
                label: e.label.to_string(),
                durability: e.durability.clone(),
                series: s,
                latency,
            });
        }
        WorkloadOutcome { name, ops, systems, note }
    }
}

fn main() {
    let args = Args::parse();
    for name in &args.only {
        if !WORKLOADS.contains(&name.as_str()) {
            eprintln!("unknown workload {name:?}; the workloads are: {}", WORKLOADS.join(", "));
            std::process::exit(2);
        }
    }
    rabbit::PREFETCH.store(args.rabbit_prefetch.max(1), std::sync::atomic::Ordering::Relaxed);
    servers::install_signal_handlers();
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    let tmp_root = target.join("peers-tmp");
    std::fs::create_dir_all(&tmp_root)
        .unwrap_or_else(|e| panic!("cannot create the temporary root {}: {e}", tmp_root.display()));
    let run = Run {
        ctx: Ctx {
            quick: args.quick,
            window: Duration::from_secs_f64(args.window.unwrap_or(if args.quick { 1.0 } else { 3.0 })),
            rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
            tmp_root,
            systems: args.systems.clone(),
        },
        latency_window: Duration::from_secs_f64(args.latency_window.unwrap_or(if args.quick { 1.5 } else { 5.0 })),
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|n| n == name);
    let started = Instant::now();
    let load_before = load_average();
    eprintln!(
        "weir-peers: {} run, {:.1} s windows, {} round(s), latency windows {:.1} s; load average {load_before}",
        if run.ctx.quick { "quick" } else { "full" },
        run.ctx.window.as_secs_f64(),
        run.ctx.rounds,
        run.latency_window.as_secs_f64()
    );

    let peers = start_peers(&args, &target.join("peers-data"), &run.ctx);
    let mut workloads = Vec::new();
    if wanted("queue_cycle") {
        workloads.push(queue_cycle(&run, &peers, false));
    }
    if wanted("fifo_cycle") {
        workloads.push(queue_cycle(&run, &peers, true));
    }
    if wanted("topic_fanout") {
        workloads.push(topic_fanout(&run, &peers));
    }
    if wanted("stream_put_concurrent") {
        workloads.push(stream_put_concurrent(&run, &peers));
    }
    if wanted("stream_read") {
        workloads.push(stream_read(&run, &peers));
    }
    if wanted("amqp_cycle") {
        workloads.push(amqp_cycle(&run, &peers));
    }
    if wanted("mqtt_qos1") {
        workloads.push(mqtt_qos1(&run, &peers));
    }
    let total = started.elapsed();
    let load_after = load_average();

    println!();
    print!("{}", report::render(&workloads));
    let versions: Map<String, Value> = peers
        .servers
        .running
        .iter()
        .map(|s| (s.name.to_string(), json!(s.version)))
        .chain(peers.errors.iter().map(|(n, e)| (n.to_string(), json!({ "error": e }))))
        .collect();
    println!("peers: {}", serde_json::to_string(&versions).unwrap_or_default());
    println!(
        "{} run: {:.1} s windows, {} round(s) (median), latency windows {:.1} s, total {:.0} s; load average before {load_before}, after {load_after}",
        if run.ctx.quick { "quick" } else { "full" },
        run.ctx.window.as_secs_f64(),
        run.ctx.rounds,
        run.latency_window.as_secs_f64(),
        total.as_secs_f64()
    );
    if let Some(path) = &args.json {
        let mut extra = Map::new();
        extra.insert("peers".into(), Value::Object(versions));
        extra.insert("quick".into(), json!(run.ctx.quick));
        extra.insert("window_s".into(), json!(run.ctx.window.as_secs_f64()));
        extra.insert("latency_window_s".into(), json!(run.latency_window.as_secs_f64()));
        extra.insert("rounds".into(), json!(run.ctx.rounds));
        extra.insert("total_s".into(), json!(total.as_secs_f64().round()));
        extra.insert("load_average_before".into(), json!(load_before));
        extra.insert("load_average_after".into(), json!(load_after));
        let doc = report::to_json(&workloads, extra);
        let text = serde_json::to_string_pretty(&doc).expect("results serialize");
        std::fs::write(path, text + "\n").unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
    // `peers` drops here: every server is stopped and its data directory removed.
}

fn start_peers(args: &Args, root: &Path, ctx: &Ctx) -> Peers {
    let mut servers = servers::Servers::new(root);
    let mut errors = Vec::new();
    // A peer starts if `--systems` names it and a workload `--only` picked has it.
    let needed = |peer: &str| {
        let workloads: Vec<&str> =
            if args.only.is_empty() { WORKLOADS.to_vec() } else { args.only.iter().map(String::as_str).collect() };
        workloads.iter().any(|w| peers_of(w).contains(&peer))
    };
    let want = |peer: &str| {
        needed(peer)
            && (ctx.systems.is_empty() || ctx.systems.iter().any(|s| s == peer || s.starts_with(&format!("{peer}_"))))
    };
    let install = if args.no_install { Ok(()) } else { servers::install_packages() };
    for &peer in PEERS {
        if !want(peer) {
            continue;
        }
        let started = Instant::now();
        let result = install.clone().and_then(|()| match peer {
            "postgres" => servers.start_postgres(),
            "rabbitmq" => servers.start_rabbitmq(),
            "mosquitto" => servers.start_mosquitto(),
            _ => servers.start_nats(),
        });
        match result {
            Ok(()) => {
                let s = servers.get(peer).expect("just started");
                eprintln!(
                    "peers: {peer} ({}) on 127.0.0.1:{} in {:.1} s, data in {}",
                    s.version,
                    s.port,
                    started.elapsed().as_secs_f64(),
                    s.data_dir.display()
                );
            }
            Err(e) => {
                eprintln!("peers: {peer} could not start: {e}");
                errors.push((peer, e));
            }
        }
    }
    let probe = ctx.tempdir("nats-probe");
    let nats_sync_always = servers::nats_can_sync_always(probe.path());
    eprintln!(
        "peers: this nats-server {} fsync every write (sync_interval: always)",
        if nats_sync_always { "can" } else { "cannot" }
    );
    Peers { servers, errors, nats_sync_always }
}

fn weir_text(d: Durability) -> String {
    weir_peer::durability_text(d).to_string()
}

/// weir at `Durability::Never` joins a workload where JetStream runs and cannot fsync every write.
fn with_never(peers: &Peers) -> bool {
    !peers.nats_sync_always
}

/// A stamped body of `len` bytes (text, so topic bodies stay UTF-8).
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut b = text_noise(len.max(STAMP_LEN), seed);
    b[..STAMP_LEN].fill(b'0');
    b
}

/// `topic_fanout`'s latency run: its throughput run only publishes, but the latency run also
/// receives and deletes (acks) every delivery, which can cost a system more than the publish.
/// So the offered load is the lower of `rate` (half the publish peak) and half of the
/// end-to-end peak, measured first over one `window` on a fresh setup from `make` (a backlog
/// would otherwise grow through the whole window and measure queueing, not delivery).
fn fanout_latency<S: systems::Setup>(
    make: impl Fn() -> Result<S, String>,
    shape: Shape,
    rate: f64,
    window: Duration,
    lw: Duration,
    body: &[u8],
) -> Result<LatencyResult, String> {
    let full = Shape { receivers: shape.latency_receivers, ..shape };
    let delivered = systems::throughput(&make()?, full, window, body)?;
    let rate = rate.min(delivered / shape.fanout as f64 * 0.5).max(1.0);
    eprintln!(
        "  topic_fanout             end-to-end peak {} deliveries/s: latency at {} publishes/s",
        harness::fmt_rate(delivered),
        harness::fmt_rate(rate)
    );
    systems::latency(&make()?, shape, rate, lw, body)
}

fn queue_cycle(run: &Run, peers: &Peers, fifo: bool) -> WorkloadOutcome {
    let name = if fifo { "fifo_cycle" } else { "queue_cycle" };
    let body = body(weir_side::BODY, 3);
    let (window, lw) = (run.ctx.window, run.latency_window);
    let shape = cycle_shape(weir_side::RECEIVERS);
    let tmp = |label: &str| run.ctx.tempdir(&format!("{name}-{label}-latency"));
    let mut entries = Vec::new();
    let mut durabilities = vec![Durability::Always];
    if with_never(peers) && !fifo {
        durabilities.push(Durability::Never);
    }
    for d in durabilities {
        let label = if d == Durability::Always { "weir" } else { "weir_never" };
        let body = body.clone();
        let cycle = weir_side::Cycle { name, durable: d == Durability::Always, fifo, prefill: 0 };
        let lat_body = body.clone();
        entries.push(Entry {
            label,
            durability: weir_text(d),
            run: Box::new(move |dir| Ok(weir_side::queue_cycle(window, dir, cycle, &body))),
            latency: Some(Box::new(move |rate| {
                let dir = tmp(label);
                let setup = weir_peer::WeirQueue::open(dir.path(), d, fifo);
                systems::latency(&setup, shape, rate, lw, &lat_body)
            })),
            per_send: 1.0,
        });
    }
    // PostgreSQL (pgmq's design; FIFO with a group column).
    match peers.port("postgres") {
        Ok(port) => {
            let conninfo = servers::postgres_conninfo(port);
            let (b1, b2, c1, c2) = (body.clone(), body.clone(), conninfo.clone(), conninfo);
            entries.push(Entry {
                label: "postgres",
                durability: pg::durability_text(),
                run: Box::new(move |_| systems::throughput(&pg::PgQueue::create(&c1, fifo)?, shape, window, &b1)),
                latency: Some(Box::new(move |rate| {
                    systems::latency(&pg::PgQueue::create(&c2, fifo)?, shape, rate, lw, &b2)
                })),
                per_send: 1.0,
            });
        }
        Err(e) => entries.push(Entry::missing("postgres", pg::durability_text(), e)),
    }
    if !fifo {
        rabbit_entries(&mut entries, peers, None, shape, window, lw, &body, 1.0);
        nats_entry(&mut entries, peers, nats::Kind::Queue, shape, window, lw, &body, 1.0);
    }
    let note = if fifo {
        format!(
            "FIFO: {} groups, a dedup id per message; RabbitMQ and JetStream have no message groups (absent)",
            weir_side::GROUPS
        )
    } else {
        String::new()
    };
    let ops = "messages/s through send + receive + delete (ack), 8 senders one message per durable send, 8 receivers up to 10 per receive";
    run.workload(name, ops, note, entries)
}

/// RabbitMQ's two rows (quorum, classic): a queue, or with `fanout` a fan-out exchange into
/// that many queues.
#[allow(clippy::too_many_arguments)]
fn rabbit_entries(
    entries: &mut Vec<Entry<'_>>,
    peers: &Peers,
    fanout: Option<u32>,
    shape: Shape,
    window: Duration,
    lw: Duration,
    body: &[u8],
    per_send: f64,
) {
    for kind in [rabbit::Kind::Quorum, rabbit::Kind::Classic] {
        let port = match peers.port("rabbitmq") {
            Ok(port) => port,
            Err(e) => {
                entries.push(Entry::missing(kind.label(), kind.durability_text(), e));
                continue;
            }
        };
        let make = move || match fanout {
            Some(queues) => rabbit::RabbitSetup::fanout(port, kind, queues),
            None => rabbit::RabbitSetup::queue(port, kind),
        };
        let (b1, b2) = (body.to_vec(), body.to_vec());
        entries.push(Entry {
            label: kind.label(),
            durability: kind.durability_text(),
            run: Box::new(move |_| systems::throughput(&make()?, shape, window, &b1)),
            latency: Some(Box::new(move |rate| match fanout {
                Some(_) => fanout_latency(make, shape, rate, window, lw, &b2),
                None => systems::latency(&make()?, shape, rate, lw, &b2),
            })),
            per_send,
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn nats_entry<'a>(
    entries: &mut Vec<Entry<'a>>,
    peers: &Peers,
    kind: nats::Kind,
    shape: Shape,
    window: Duration,
    lw: Duration,
    body: &[u8],
    per_send: f64,
) {
    let text = nats::durability_text(peers.nats_sync_always);
    match peers.port("nats") {
        Ok(port) => {
            let (b1, b2) = (body.to_vec(), body.to_vec());
            let fanout = weir_side::FANOUT_QUEUES;
            entries.push(Entry {
                label: "nats",
                durability: text,
                run: Box::new(move |_| {
                    systems::throughput(&nats::NatsSetup::create(port, kind, fanout)?, shape, window, &b1)
                }),
                latency: Some(Box::new(move |rate| {
                    let make = || nats::NatsSetup::create(port, kind, fanout);
                    if kind == nats::Kind::Fanout {
                        fanout_latency(make, shape, rate, window, lw, &b2)
                    } else {
                        systems::latency(&make()?, shape, rate, lw, &b2)
                    }
                })),
                per_send,
            });
        }
        Err(e) => entries.push(Entry::missing("nats", text, e)),
    }
}

fn topic_fanout(run: &Run, peers: &Peers) -> WorkloadOutcome {
    let name = "topic_fanout";
    let body = body(weir_side::BODY, 5);
    let (window, lw) = (run.ctx.window, run.latency_window);
    let fan = weir_side::FANOUT_QUEUES;
    let shape = Shape {
        senders: weir_side::PUBLISHERS,
        receivers: 0,
        latency_receivers: fan as usize,
        per_send: u64::from(fan),
        fanout: u64::from(fan),
    };
    let per_send = f64::from(fan);
    let mut entries = Vec::new();
    let mut durabilities = vec![Durability::Always];
    if with_never(peers) {
        durabilities.push(Durability::Never);
    }
    for d in durabilities {
        let label = if d == Durability::Always { "weir" } else { "weir_never" };
        let (b1, b2) = (body.clone(), body.clone());
        entries.push(Entry {
            label,
            durability: weir_text(d),
            run: Box::new(move |dir| Ok(weir_side::topic_fanout(window, dir, d, &b1))),
            latency: Some(Box::new(move |rate| {
                let dir = run.ctx.tempdir(&format!("{name}-{label}-latency"));
                let fresh = std::cell::Cell::new(0);
                let make = || {
                    let sub = dir.path().join(format!("run-{}", fresh.replace(fresh.get() + 1)));
                    std::fs::create_dir(&sub).map_err(|e| format!("cannot create {}: {e}", sub.display()))?;
                    Ok(weir_peer::WeirFanout::open(&sub, d))
                };
                fanout_latency(make, shape, rate, window, lw, &b2)
            })),
            per_send,
        });
    }
    rabbit_entries(&mut entries, peers, Some(fan), shape, window, lw, &body, per_send);
    nats_entry(&mut entries, peers, nats::Kind::Fanout, shape, window, lw, &body, per_send);
    let ops = "deliveries/s (a publish counts 10), 8 publishers, each publish durable before it returns; the throughput run only publishes (as examples/compare), the latency run also has one receiver per subscription, at half the lower of the publish peak and the end-to-end peak (publish + receive + delete, one more window)";
    let note = "weir: a topic with 10 raw queue subscriptions; RabbitMQ: a durable fanout exchange bound to 10 durable queues; JetStream: an interest-retention stream with 10 durable pull consumers (stored once, delivered to each)".to_string();
    run.workload(name, ops, note, entries)
}

fn stream_put_concurrent(run: &Run, peers: &Peers) -> WorkloadOutcome {
    let name = "stream_put_concurrent";
    let writers = weir_side::STREAM_WRITERS;
    let keys: Vec<Vec<u8>> = (0..writers).map(|i| format!("writer-{i:02}").into_bytes()).collect();
    let data = body(100, 7);
    let (window, lw) = (run.ctx.window, run.latency_window);
    let shape = Shape { senders: writers, receivers: 0, latency_receivers: 1, per_send: 1, fanout: 1 };
    let mut entries = Vec::new();
    let mut durabilities = vec![Durability::Always];
    if with_never(peers) {
        durabilities.push(Durability::Never);
    }
    for d in durabilities {
        let label = if d == Durability::Always { "weir" } else { "weir_never" };
        let (k1, k2, b1, b2) = (keys.clone(), keys.clone(), data.clone(), data.clone());
        entries.push(Entry {
            label,
            durability: weir_text(d),
            run: Box::new(move |dir| Ok(weir_side::put_concurrent(window, dir, d, &k1, &b1))),
            latency: Some(Box::new(move |rate| {
                let dir = run.ctx.tempdir(&format!("{name}-{label}-latency"));
                systems::latency(&weir_peer::WeirStream::open(dir.path(), d, &k2), shape, rate, lw, &b2)
            })),
            per_send: 1.0,
        });
    }
    nats_entry(&mut entries, peers, nats::Kind::Stream, shape, window, lw, &data, 1.0);
    let ops = "records/s, 32 threads each putting one 100 B record at a time, durable per put; latency: one reader tails the stream (weir: polls its iterator every 100 us when idle; JetStream: a pull consumer)";
    run.workload(name, ops, String::new(), entries)
}

fn stream_read(run: &Run, peers: &Peers) -> WorkloadOutcome {
    let name = "stream_read";
    let count: usize = run.ctx.pick(200_000, 50_000);
    let len = 1024;
    let weir_dir = run.ctx.tempdir("stream_read-weir-data");
    let t = Instant::now();
    let weir_filled = weir_peer::fill_stream(weir_dir.path(), count, len);
    eprintln!("  stream_read: weir wrote {count} records in {:.1} s", t.elapsed().as_secs_f64());
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let weir_path = weir_dir.path().to_path_buf();
    entries.push(Entry {
        label: "weir",
        durability: "read of what Durability::Never wrote (reads do not depend on it)".into(),
        run: Box::new(move |_| {
            weir_filled.clone()?;
            weir_peer::read_stream(&weir_path, count)
        }),
        latency: None,
        per_send: 1.0,
    });
    let nats_setup = peers.port("nats").and_then(|port| {
        let t = Instant::now();
        let setup = nats::NatsSetup::create(port, nats::Kind::Stream, 0)?;
        setup.fill(count, len)?;
        eprintln!("  stream_read: nats wrote {count} records in {:.1} s", t.elapsed().as_secs_f64());
        Ok(setup)
    });
    let text = nats::durability_text(peers.nats_sync_always);
    match nats_setup {
        Ok(setup) => entries.push(Entry {
            label: "nats",
            durability: text,
            run: Box::new(move |_| setup.read_all(count)),
            latency: None,
            per_send: 1.0,
        }),
        Err(e) => entries.push(Entry::missing("nats", text, e)),
    }
    let ops = "records/s, one reader of the whole stream from its start";
    let note = format!("{count} records of {len} B, written once, page cache warm after the first round; the JetStream reader is a pull consumer without acks, batches of 1,000");
    let _ = noise; // (weir_peer fills with the harness's noise)
    let out = run.workload(name, ops, note, entries);
    drop(weir_dir);
    out
}

/// The shape of the cycles: `SENDERS` senders, `receivers` receivers, one delivery per send.
fn cycle_shape(receivers: usize) -> Shape {
    Shape { senders: weir_side::SENDERS, receivers, latency_receivers: receivers, per_send: 1, fanout: 1 }
}

/// Runs `f` against a fresh `weir serve` on `dir` with the listeners asked for. The clients `f`
/// makes end inside it, before the server stops (its stop waits for their connections).
fn with_weir_server<T>(
    dir: &Path,
    durability: Durability,
    (amqp, mqtt): (bool, bool),
    f: impl FnOnce(&weir_serve::WeirServer) -> Result<T, String>,
) -> Result<T, String> {
    let server = weir_serve::WeirServer::start(dir, durability, amqp, mqtt)?;
    f(&server)
}

/// `amqp_cycle` (issue 16): `queue_cycle` over AMQP 0-9-1, one client (lapin, the code of the
/// RabbitMQ rows) against `weir serve --amqp` and RabbitMQ: publishes with confirms, consumes
/// with manual acks.
fn amqp_cycle(run: &Run, peers: &Peers) -> WorkloadOutcome {
    let name = "amqp_cycle";
    let body = body(weir_side::BODY, 17);
    let (window, lw) = (run.ctx.window, run.latency_window);
    let shape = cycle_shape(weir_side::RECEIVERS);
    let kind = rabbit::Kind::Weir;
    let (b1, b2) = (body.clone(), body.clone());
    let amqp = (true, false);
    let mut entries = vec![Entry {
        label: kind.label(),
        durability: kind.durability_text(),
        run: Box::new(move |dir| {
            with_weir_server(dir, Durability::Always, amqp, |s| {
                systems::throughput(&rabbit::RabbitSetup::queue(s.amqp_port()?, kind)?, shape, window, &b1)
            })
        }),
        latency: Some(Box::new(move |rate| {
            let dir = run.ctx.tempdir(&format!("{name}-weir-latency"));
            with_weir_server(dir.path(), Durability::Always, amqp, |s| {
                systems::latency(&rabbit::RabbitSetup::queue(s.amqp_port()?, kind)?, shape, rate, lw, &b2)
            })
        })),
        per_send: 1.0,
    }];
    rabbit_entries(&mut entries, peers, None, shape, window, lw, &body, 1.0);
    let ops = "messages/s through publish + consume + ack over AMQP 0-9-1 (lapin 4 for every system), 8 publishers each awaiting the confirm of every message, 8 consumers acking up to 10 at a time (multiple)";
    let note = format!(
        "the same client code as the RabbitMQ rows of queue_cycle; weir: an in-process weir::server::Server with an AMQP listener on a fresh directory per run, prefetch {} as for RabbitMQ",
        rabbit::DEFAULT_PREFETCH
    );
    run.workload(name, ops, note, entries)
}

/// `mqtt_qos1` (issue 16): MQTT 3.1.1 QoS 1 publish -> subscriber, one client (rumqttc) against
/// `weir serve --mqtt` and Mosquitto.
fn mqtt_qos1(run: &Run, peers: &Peers) -> WorkloadOutcome {
    let name = "mqtt_qos1";
    let body = body(weir_side::BODY, 19);
    let (window, lw) = (run.ctx.window, run.latency_window);
    let shape = cycle_shape(mqtt::PAIRS);
    let mqtt_only = (false, true);
    let mut entries = Vec::new();
    // Mosquitto never fsyncs per message: weir at Durability::Never runs beside it too.
    for d in [Durability::Always, Durability::Never] {
        let label = if d == Durability::Always { "weir" } else { "weir_never" };
        let (b1, b2) = (body.clone(), body.clone());
        entries.push(Entry {
            label,
            durability: mqtt::weir_durability_text(d),
            run: Box::new(move |dir| {
                with_weir_server(dir, d, mqtt_only, |s| {
                    systems::throughput(&mqtt::MqttSetup::new(s.mqtt_port()?), shape, window, &b1)
                })
            }),
            latency: Some(Box::new(move |rate| {
                let dir = run.ctx.tempdir(&format!("{name}-{label}-latency"));
                with_weir_server(dir.path(), d, mqtt_only, |s| {
                    systems::latency(&mqtt::MqttSetup::new(s.mqtt_port()?), shape, rate, lw, &b2)
                })
            })),
            per_send: 1.0,
        });
    }
    let text = mqtt::mosquitto_durability_text();
    match peers.port("mosquitto") {
        Ok(port) => {
            let (b1, b2) = (body.clone(), body.clone());
            entries.push(Entry {
                label: "mosquitto",
                durability: text,
                run: Box::new(move |_| systems::throughput(&mqtt::MqttSetup::new(port), shape, window, &b1)),
                latency: Some(Box::new(move |rate| {
                    systems::latency(&mqtt::MqttSetup::new(port), shape, rate, lw, &b2)
                })),
                per_send: 1.0,
            });
        }
        Err(e) => entries.push(Entry::missing("mosquitto", text, e)),
    }
    let ops = "messages/s from publish to subscriber over MQTT 3.1.1 (rumqttc for every system), 8 publishers each awaiting the PUBACK of every QoS 1 message, 8 subscribers (persistent sessions at QoS 1), each message to exactly one of them";
    let note = "publisher i publishes to topic i of the run, which one subscriber holds; the subscriber's client acknowledges each delivery (PUBACK) as it arrives".to_string();
    run.workload(name, ops, note, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_serves_some_workload_and_every_workload_names_known_peers() {
        for peer in PEERS {
            assert!(WORKLOADS.iter().any(|w| peers_of(w).contains(peer)), "{peer} would never start");
        }
        for w in WORKLOADS {
            assert!(peers_of(w).iter().all(|p| PEERS.contains(p)), "{w} names an unknown peer");
        }
        assert_eq!(peers_of("amqp_cycle"), ["rabbitmq"]);
        assert_eq!(peers_of("mqtt_qos1"), ["mosquitto"]);
    }
}
