//! Soak test (opt-in, not part of CI): mixed load on streams, queues and topics in a child
//! process that is killed with SIGKILL at random moments and restarted, for as long as asked.
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 10 [--dir PATH] [--seed N]
//! ```
//!
//! The child (this same program with `--child`) writes from several threads and prints a line
//! for every acknowledged operation. After each kill the parent opens the directory itself and
//! checks what the crash tests check:
//!
//! - streams: every acknowledged put is in its shard at its sequence number, byte for byte;
//!   sequence numbers are never handed out twice (a later acknowledgement never reuses an
//!   earlier one's number);
//! - queue `jobs`: every acknowledged send is there exactly once unless a delete of it was
//!   started, and no acknowledged delete comes back;
//! - FIFO queue `orders.fifo`: the same, and within each group the messages stay in send order
//!   (the child also checks the order it receives them in);
//! - topic `events` (raw subscriptions: `all`, and `only-a` filtered on `kind = a`): every
//!   acknowledged publish is in `all` once, and in `only-a` once exactly when its kind is `a`;
//!   a publish is in both queues it matches or in neither (deliveries are atomic);
//! - `verify` finds nothing wrong once the engine has opened (torn tails are cut at open).
//!
//! It prints what it checked after every restart and exits 1 at the first violation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::queue::{AttributeValue, Queue, QueueConfig, ReceiveOptions, SendEntry, SendOptions};
use weir::stream::StartingPosition;
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Options};

const STREAM: &str = "soak";
const SHARDS: u32 = 3;
const JOBS: &str = "jobs";
const ORDERS: &str = "orders.fifo";
const TOPIC: &str = "events";
const ALL: &str = "all";
const ONLY_A: &str = "only-a";
const GROUPS: u64 = 3;

fn options() -> Options {
    Options {
        durability: Durability::Always,
        // Small segments: kills land around rolls, retention and compaction have work.
        segment_bytes: 256 << 10,
        lock_wait: Duration::from_secs(10),
        ..Options::default()
    }
}

/// A small xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let Some(dir) = flag("--child") {
        let generation = flag("--generation").and_then(|g| g.parse().ok()).unwrap_or(0);
        let seed = flag("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
        return child(Path::new(&dir), generation, seed);
    }
    let minutes: f64 = match flag("--minutes").map(|m| m.parse()) {
        Some(Ok(m)) if m > 0.0 => m,
        Some(_) => {
            eprintln!("soak: --minutes takes a positive number");
            return ExitCode::from(2);
        }
        None => 1.0,
    };
    let seed = flag("--seed").and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }) | 1;
    let mut tmp = None;
    let dir = match flag("--dir") {
        Some(d) => PathBuf::from(d),
        None => match tempfile::tempdir() {
            Ok(t) => tmp.insert(t).path().join("data"),
            Err(e) => {
                eprintln!("soak: temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match parent(&dir, Duration::from_secs_f64(minutes * 60.0), seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(violation) => {
            eprintln!("soak: VIOLATION: {violation}");
            eprintln!("soak: data directory kept at {} (seed {seed})", dir.display());
            // Keep the evidence.
            if let Some(t) = tmp {
                let _ = t.keep();
            }
            ExitCode::FAILURE
        }
    }
}

// ----- the parent -----

/// Everything the children have acknowledged, over all generations.
#[derive(Default)]
struct Acks {
    /// (shard, seq) -> data of every acknowledged put.
    puts: BTreeMap<(u32, u64), String>,
    /// Per queue: bodies whose send was acknowledged.
    sent: HashMap<&'static str, BTreeSet<String>>,
    /// Per queue: bodies a delete was started for / acknowledged for.
    deleting: HashMap<&'static str, HashSet<String>>,
    deleted: HashMap<&'static str, HashSet<String>>,
    /// Acknowledged publishes: body -> kind.
    published: BTreeMap<String, String>,
}

fn queue_name(s: &str) -> Option<&'static str> {
    [JOBS, ORDERS, ALL, ONLY_A].into_iter().find(|q| *q == s)
}

impl Acks {
    fn take(&mut self, line: &str) -> Result<(), String> {
        let mut parts = line.splitn(4, ' ');
        let kind = parts.next().unwrap_or_default();
        let a = parts.next().unwrap_or_default();
        let b = parts.next().unwrap_or_default();
        let c = parts.next().unwrap_or_default();
        match kind {
            "put" => {
                let shard: u32 = a.parse().map_err(|_| format!("bad line {line:?}"))?;
                let seq: u64 = b.parse().map_err(|_| format!("bad line {line:?}"))?;
                if let Some(previous) = self.puts.insert((shard, seq), c.to_string()) {
                    return Err(format!("shard {shard} seq {seq} acknowledged twice: {previous:?} and {c:?}"));
                }
            }
            "sent" | "deleting" | "deleted" => {
                let q = queue_name(a).ok_or_else(|| format!("bad line {line:?}"))?;
                let map = match kind {
                    "sent" => {
                        self.sent.entry(q).or_default().insert(b.to_string());
                        return Ok(());
                    }
                    "deleting" => &mut self.deleting,
                    _ => &mut self.deleted,
                };
                map.entry(q).or_default().insert(b.to_string());
            }
            "published" => {
                self.published.insert(a.to_string(), b.to_string());
            }
            "violation" => return Err(format!("the child saw: {}", &line[10.min(line.len())..])),
            "ready" => {}
            _ => return Err(format!("unexpected line from the child: {line:?}")),
        }
        Ok(())
    }
}

fn setup(dir: &Path) -> Result<(), String> {
    let engine = Engine::open(dir, options()).map_err(|e| format!("open: {e}"))?;
    let e = |r: weir::Result<()>| r.map_err(|e| format!("setup: {e}"));
    if engine.list_streams().is_empty() {
        e(engine.create_stream(STREAM, SHARDS, None))?;
    }
    e(engine.create_queue(JOBS, QueueConfig { visibility_timeout: Duration::from_secs(2), ..QueueConfig::default() }))?;
    e(engine.create_queue(ORDERS, QueueConfig { visibility_timeout: Duration::from_secs(2), ..QueueConfig::fifo() }))?;
    e(engine.create_queue(ALL, QueueConfig::default()))?;
    e(engine.create_queue(ONLY_A, QueueConfig::default()))?;
    e(engine.create_topic(TOPIC, TopicConfig::default()))?;
    if engine.list_subscriptions(TOPIC).map_err(|e| e.to_string())?.is_empty() {
        let raw = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
        engine.subscribe(TOPIC, Endpoint::Queue(ALL.into()), raw.clone()).map_err(|e| e.to_string())?;
        let filtered = SubscribeOptions { filter_policy: Some(r#"{"kind":["a"]}"#.into()), ..raw };
        engine.subscribe(TOPIC, Endpoint::Queue(ONLY_A.into()), filtered).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn parent(dir: &Path, duration: Duration, seed: u64) -> Result<(), String> {
    setup(dir)?;
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut rng = Rng(seed);
    let mut acks = Acks::default();
    let started = Instant::now();
    println!("soak: {} for {:.1} min, seed {seed}", dir.display(), duration.as_secs_f64() / 60.0);
    let mut generation = 0u64;
    while started.elapsed() < duration {
        generation += 1;
        let mut child = Command::new(&exe)
            .args(["--child", &dir.to_string_lossy(), "--generation", &generation.to_string()])
            .args(["--seed", &rng.next().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn the child: {e}"))?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            // Only whole lines count: the kill may cut the last one short.
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if line.last() == Some(&b'\n')
                    && tx.send(String::from_utf8_lossy(&line[..line.len() - 1]).into()).is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        let run_for = Duration::from_millis(300 + rng.below(2700));
        std::thread::sleep(run_for);
        child.kill().map_err(|e| format!("kill: {e}"))?;
        let _ = child.wait();
        let _ = reader.join();
        let mut lines = 0u64;
        for line in rx.try_iter() {
            lines += 1;
            acks.take(&line)?;
        }
        let counts = check(dir, &acks).map_err(|e| format!("after restart {generation}: {e}"))?;
        println!(
            "restart {generation} (killed after {} ms, {lines} acks): checked {} puts, {} sends to {JOBS} ({} deleted), \
             {} sends to {ORDERS} ({} deleted, {} live in order), {} publishes ({} kind a); verify clean",
            run_for.as_millis(),
            acks.puts.len(),
            acks.sent.get(JOBS).map_or(0, |s| s.len()),
            acks.deleted.get(JOBS).map_or(0, |s| s.len()),
            acks.sent.get(ORDERS).map_or(0, |s| s.len()),
            acks.deleted.get(ORDERS).map_or(0, |s| s.len()),
            counts.fifo_live,
            acks.published.len(),
            acks.published.values().filter(|k| *k == "a").count(),
        );
    }
    println!("soak: {generation} restarts in {:.1} min, no violation", started.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

struct Counts {
    fifo_live: usize,
}

/// Live bodies of a queue, in send order, without receiving them.
fn live(queue: &Queue) -> Result<Vec<String>, String> {
    let messages = queue.peek(usize::MAX).map_err(|e| format!("peek {}: {e}", queue.name()))?;
    Ok(messages.into_iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect())
}

fn check(dir: &Path, acks: &Acks) -> Result<Counts, String> {
    let engine = Engine::open(dir, options()).map_err(|e| format!("open: {e}"))?;
    // Streams.
    let stream = engine.stream(STREAM).map_err(|e| e.to_string())?;
    for shard in 0..SHARDS {
        let mut it = stream.iterator(shard, StartingPosition::TrimHorizon).map_err(|e| e.to_string())?;
        let mut stored: BTreeMap<u64, String> = BTreeMap::new();
        loop {
            let batch = it.next_batch(10_000).map_err(|e| format!("read shard {shard}: {e}"))?;
            if batch.records.is_empty() {
                break;
            }
            for r in batch.records {
                stored.insert(r.seq, String::from_utf8_lossy(&r.data).into_owned());
            }
        }
        for ((_, seq), data) in acks.puts.range((shard, 0)..(shard + 1, 0)) {
            match stored.get(seq) {
                Some(d) if d == data => {}
                Some(d) => return Err(format!("shard {shard} seq {seq} holds {d:?}, {data:?} was acknowledged")),
                None => return Err(format!("acknowledged put {data:?} (shard {shard} seq {seq}) is gone")),
            }
        }
    }
    // Queues: acknowledged sends stay until a delete of them starts; acknowledged deletes stay
    // gone; nothing is there twice.
    let empty = HashSet::new();
    let mut fifo_live = 0;
    for name in [JOBS, ORDERS] {
        let queue = engine.queue(name).map_err(|e| e.to_string())?;
        let bodies = live(&queue)?;
        let present: HashSet<&String> = bodies.iter().collect();
        if present.len() != bodies.len() {
            return Err(format!("{name}: a message is there twice"));
        }
        let deleting = acks.deleting.get(name).unwrap_or(&empty);
        let deleted = acks.deleted.get(name).unwrap_or(&empty);
        for body in acks.sent.get(name).into_iter().flatten() {
            if !deleting.contains(body) && !present.contains(body) {
                return Err(format!("{name}: acknowledged send {body:?} is gone"));
            }
        }
        for body in deleted {
            if present.contains(body) {
                return Err(format!("{name}: acknowledged delete of {body:?} came back"));
            }
        }
        if name == ORDERS {
            fifo_live = bodies.len();
            // Bodies are "g<group>:<generation>:<n>": per group, (generation, n) increases.
            let mut last: HashMap<String, (u64, u64)> = HashMap::new();
            for body in &bodies {
                let (group, at) = fifo_position(body).ok_or_else(|| format!("{name}: odd body {body:?}"))?;
                if let Some(previous) = last.insert(group.clone(), at) {
                    if previous >= at {
                        return Err(format!("{name}: group {group} out of order at {body:?}"));
                    }
                }
            }
        }
    }
    // Topic deliveries: atomic, filtered, once.
    let all = live(&engine.queue(ALL).map_err(|e| e.to_string())?)?;
    let only_a = live(&engine.queue(ONLY_A).map_err(|e| e.to_string())?)?;
    let all_set: HashSet<&String> = all.iter().collect();
    let a_set: HashSet<&String> = only_a.iter().collect();
    if all_set.len() != all.len() || a_set.len() != only_a.len() {
        return Err("a publish was delivered twice".into());
    }
    for (body, kind) in &acks.published {
        if !all_set.contains(body) {
            return Err(format!("acknowledged publish {body:?} is not in {ALL}"));
        }
        if a_set.contains(body) != (kind == "a") {
            return Err(format!("acknowledged publish {body:?} of kind {kind} is wrongly in or out of {ONLY_A}"));
        }
    }
    for body in &all {
        if body.ends_with("-a") != a_set.contains(body) {
            return Err(format!("publish {body:?} is in {ALL} but its delivery to {ONLY_A} is not atomic with it"));
        }
    }
    for body in &only_a {
        if !all_set.contains(body) {
            return Err(format!("publish {body:?} is in {ONLY_A} but not in {ALL}"));
        }
    }
    drop(stream);
    drop(engine);
    let problems = weir::inspect::verify_dir(dir).map_err(|e| format!("verify: {e}"))?;
    if let Some(p) = problems.first() {
        return Err(format!("verify after open: {p} ({} problems)", problems.len()));
    }
    Ok(Counts { fifo_live })
}

fn fifo_position(body: &str) -> Option<(String, (u64, u64))> {
    let mut parts = body.split(':');
    let group = parts.next()?.to_string();
    let generation = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    Some((group, (generation, n)))
}

// ----- the child -----

/// Prints one line (threads share stdout) and flushes it to the parent.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn child(dir: &Path, generation: u64, seed: u64) -> ExitCode {
    let engine = match Engine::open(dir, options()) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            say(format!("violation the child cannot open the directory: {e}"));
            return ExitCode::FAILURE;
        }
    };
    say("ready".into());
    let started = Instant::now();
    // The parent kills within seconds; a child it forgot stops by itself.
    let alive = move || started.elapsed() < Duration::from_secs(120);
    let mut workers = Vec::new();
    for t in 0..2u64 {
        let engine = Arc::clone(&engine);
        workers.push(std::thread::spawn(move || stream_writer(&engine, generation, seed ^ t, t, alive)));
    }
    {
        let engine = Arc::clone(&engine);
        workers.push(std::thread::spawn(move || queue_worker(&engine, generation, seed, alive)));
    }
    {
        let engine = Arc::clone(&engine);
        workers.push(std::thread::spawn(move || fifo_worker(&engine, generation, alive)));
    }
    {
        let engine = Arc::clone(&engine);
        workers.push(std::thread::spawn(move || publisher(&engine, generation, seed, alive)));
    }
    {
        // Retention and message-log compaction, so kills land in them too.
        let engine = Arc::clone(&engine);
        workers.push(std::thread::spawn(move || {
            while alive() {
                std::thread::sleep(Duration::from_millis(250));
                if let Err(e) = engine.run_maintenance() {
                    return say(format!("violation maintenance failed: {e}"));
                }
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    ExitCode::SUCCESS
}

fn stream_writer(engine: &Engine, generation: u64, seed: u64, thread: u64, alive: impl Fn() -> bool) {
    let Ok(stream) = engine.stream(STREAM) else { return say("violation no stream".into()) };
    let mut rng = Rng(seed | 1);
    let mut n = 0u64;
    while alive() {
        n += 1;
        let key = format!("key-{}", rng.below(64));
        let filler = "x".repeat(rng.below(400) as usize);
        let data = format!("g{generation}-t{thread}-n{n}-{filler}");
        match stream.put(key.as_bytes(), data.as_bytes()) {
            Ok(r) => say(format!("put {} {} {data}", r.shard, r.seq)),
            Err(e) => return say(format!("violation put failed: {e}")),
        }
    }
}

fn queue_worker(engine: &Engine, generation: u64, seed: u64, alive: impl Fn() -> bool) {
    let Ok(queue) = engine.queue(JOBS) else { return say("violation no queue".into()) };
    let mut rng = Rng(seed.rotate_left(7) | 1);
    let mut n = 0u64;
    while alive() {
        n += 1;
        // Every other pair of rounds awaits the `_pending` calls (their fsync runs on the
        // log's sync thread) instead of blocking: kills land in both paths.
        let awaited = n % 4 >= 2;
        let body = format!("j{generation}-{n}-{}", "y".repeat(rng.below(300) as usize));
        match send(&queue, &body, awaited) {
            Ok(()) => say(format!("sent {JOBS} {body}")),
            Err(e) => return say(format!("violation send failed: {e}")),
        }
        if n.is_multiple_of(2) {
            let options = ReceiveOptions { max: 3, wait: Some(Duration::ZERO), ..Default::default() };
            let got = if awaited {
                queue.receive_pending(options).and_then(futures_lite::future::block_on)
            } else {
                queue.receive(options)
            };
            let got = match got {
                Ok(got) => got,
                Err(e) => return say(format!("violation receive failed: {e}")),
            };
            for m in got {
                let body = String::from_utf8_lossy(&m.body).into_owned();
                say(format!("deleting {JOBS} {body}"));
                match delete(&queue, &m.receipt_handle, awaited) {
                    Ok(()) => say(format!("deleted {JOBS} {body}")),
                    // Its visibility ran out and another receive took it: fine.
                    Err(weir::Error::InvalidReceiptHandle(_)) => {}
                    Err(e) => return say(format!("violation delete failed: {e}")),
                }
            }
        }
    }
}

/// One send, blocking or through `send_batch_pending` awaited.
fn send(queue: &Queue, body: &str, awaited: bool) -> weir::Result<()> {
    if !awaited {
        return queue.send(body.as_bytes(), SendOptions::default()).map(|_| ());
    }
    let entry = SendEntry { body: body.to_string().into(), options: SendOptions::default() };
    let sent = futures_lite::future::block_on(queue.send_batch_pending(std::slice::from_ref(&entry))?)?;
    sent.into_iter().next().unwrap_or(Err(weir::Error::InvalidArgument("no result".into()))).map(|_| ())
}

/// One delete, blocking or through `delete_batch_pending` awaited.
fn delete(queue: &Queue, handle: &str, awaited: bool) -> weir::Result<()> {
    if !awaited {
        return queue.delete(handle);
    }
    let deleted = futures_lite::future::block_on(queue.delete_batch_pending(&[handle])?)?;
    deleted.into_iter().next().unwrap_or(Ok(()))
}

fn fifo_worker(engine: &Engine, generation: u64, alive: impl Fn() -> bool) {
    let Ok(queue) = engine.queue(ORDERS) else { return say("violation no FIFO queue".into()) };
    let mut n = 0u64;
    let mut last_received: HashMap<String, (u64, u64)> = HashMap::new();
    while alive() {
        n += 1;
        let group = format!("g{}", n % GROUPS);
        let body = format!("{group}:{generation}:{n}");
        let options =
            SendOptions { group: Some(group), dedup_id: Some(format!("{generation}-{n}")), ..SendOptions::default() };
        match queue.send(body.as_bytes(), options) {
            Ok(_) => say(format!("sent {ORDERS} {body}")),
            Err(e) => return say(format!("violation FIFO send failed: {e}")),
        }
        if n.is_multiple_of(3) {
            let got = match queue.receive(ReceiveOptions { max: 2, wait: Some(Duration::ZERO), ..Default::default() }) {
                Ok(got) => got,
                Err(e) => return say(format!("violation FIFO receive failed: {e}")),
            };
            for m in got {
                let body = String::from_utf8_lossy(&m.body).into_owned();
                let Some((group, at)) = fifo_position(&body) else {
                    return say(format!("violation odd body {body:?}"));
                };
                if let Some(previous) = last_received.get(&group) {
                    if *previous > at {
                        return say(format!(
                            "violation group {group} received out of order: {body:?} after {previous:?}"
                        ));
                    }
                }
                last_received.insert(group, at);
                say(format!("deleting {ORDERS} {body}"));
                match queue.delete(&m.receipt_handle) {
                    Ok(()) => say(format!("deleted {ORDERS} {body}")),
                    Err(weir::Error::InvalidReceiptHandle(_)) => {}
                    Err(e) => return say(format!("violation FIFO delete failed: {e}")),
                }
            }
        }
    }
}

fn publisher(engine: &Engine, generation: u64, seed: u64, alive: impl Fn() -> bool) {
    let Ok(topic) = engine.topic(TOPIC) else { return say("violation no topic".into()) };
    let mut rng = Rng(seed.rotate_left(13) | 1);
    let mut n = 0u64;
    while alive() {
        n += 1;
        let kind = if rng.below(2) == 0 { "a" } else { "b" };
        let body = format!("e{generation}-{n}-{kind}");
        let options = PublishOptions {
            attributes: [("kind".to_string(), AttributeValue::String(kind.into()))].into_iter().collect(),
            ..PublishOptions::default()
        };
        match topic.publish(body.as_bytes(), options) {
            Ok(_) => say(format!("published {body} {kind}")),
            Err(e) => return say(format!("violation publish failed: {e}")),
        }
    }
}
