//! Issue 7's comparison run: every workload three ways in one process, alternating, each run on
//! a fresh directory on the same disk as the data (under `./target/compare-tmp`):
//!
//! 1. **weir** through its public API (durability `Always` unless the row says otherwise);
//! 2. **the physical limit**: the same bytes written with plain `write` + `fdatasync`, the same
//!    batching and thread count, no engine (for reads: a plain sequential read of the same files);
//! 3. **SQLite** (rusqlite, bundled): WAL, `synchronous=FULL` for durable rows and `OFF` for
//!    buffered ones; every write goes through one writer connection that group-commits what
//!    waits, readers have their own connections.
//!
//! A baseline whose rounds differ by more than 2 x is reported as unstable and gives no ratio.
//!
//! ```text
//! cargo run --release --example compare -- [--quick] [--json FILE] [--only NAME[,NAME]]
//! ```
//!
//! `--quick` takes well under a minute; the full run (what BENCHMARKS.md reports) about ten
//! minutes on a 2-core machine. `--scale` runs the scale table instead (`scale.rs`: weir alone,
//! `queue_cycle` over 1 to 1,000 queues and `stream_put_batch` into 1 to 256 shards).

#[path = "compare/common.rs"]
mod common;
#[path = "compare/harness.rs"]
mod harness;
#[path = "compare/http_connection.rs"]
mod http_connection;
#[path = "compare/kinesis_http.rs"]
mod kinesis_http;
#[path = "compare/queue.rs"]
mod queue;
#[path = "compare/recovery.rs"]
mod recovery;
#[path = "compare/scale.rs"]
mod scale;
#[path = "compare/sns_http.rs"]
mod sns_http;
#[path = "compare/sqs_http.rs"]
mod sqs_http;
#[path = "compare/stream.rs"]
mod stream;
#[path = "compare/topic.rs"]
mod topic;
#[path = "compare/weir_side.rs"]
mod weir_side;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

use common::{fmt_rate, load_average, Ctx, Row, Target};
use weir_side::Cycle;

#[derive(Parser, Debug)]
#[command(about = "weir against the physical limit and SQLite, workload by workload")]
struct Args {
    /// Small counts and one round: finishes in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run only these workloads (comma-separated names; `memory` for the memory measurement).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Measuring window of each timed run, seconds (default 3, quick 0.5).
    #[arg(long)]
    window: Option<f64>,
    /// Rounds per workload (default 3, quick 1); the median is reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Where temporary directories go (default ./target/compare-tmp).
    #[arg(long)]
    tmp: Option<PathBuf>,
    /// Run only these systems (comma-separated: weir, limit, sqlite), e.g. to profile one.
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Instead of the comparison, the scale table: weir's `queue_cycle` over 1, 10, 100 and
    /// 1,000 queues and `stream_put_batch` into 1, 16 and 256 shards, each run in a child
    /// process (rate and resident memory); `--only` picks one of the two.
    #[arg(long)]
    scale: bool,
    #[arg(long, hide = true)]
    child: Option<String>,
    #[arg(long, hide = true)]
    child_dir: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    child_stream_bytes: u64,
    #[arg(long, hide = true, default_value_t = 0)]
    child_messages: u64,
    #[arg(long, hide = true, default_value_t = 1)]
    child_count: usize,
}

const NAMES: &[&str] = &[
    "stream_put_batch",
    "stream_put_concurrent",
    "stream_put_buffered",
    "queue_cycle",
    "queue_cycle_buffered",
    "queue_cycle_deep",
    "fifo_cycle",
    "sqs_http_cycle",
    "kinesis_http_put",
    "topic_fanout",
    "sns_http_fanout",
    "stream_read",
    "stream_put_batch_encrypted",
    "queue_cycle_encrypted",
    "stream_read_encrypted",
    "recovery",
    "queue_reopen",
    "memory",
];

fn main() {
    let args = Args::parse();
    if let Some(kind) = &args.child {
        let dir = args.child_dir.clone().expect("--child needs --child-dir");
        if let Some(family) = scale::Family::from_child_kind(kind) {
            let window = Duration::from_secs_f64(args.window.expect("a scale child needs --window"));
            scale::child(family, &dir, args.child_count, window);
            return;
        }
        recovery::child(&recovery::ChildArgs {
            kind: kind.clone(),
            dir,
            stream_bytes: args.child_stream_bytes,
            messages: args.child_messages,
        });
        return;
    }
    for name in &args.only {
        if !NAMES.contains(&name.as_str()) {
            eprintln!("unknown workload {name:?}; the workloads are: {}", NAMES.join(", "));
            std::process::exit(2);
        }
    }
    let tmp_root = args.tmp.clone().unwrap_or_else(|| PathBuf::from("target/compare-tmp"));
    std::fs::create_dir_all(&tmp_root)
        .unwrap_or_else(|e| panic!("cannot create the temporary root {}: {e}", tmp_root.display()));
    let ctx = Ctx {
        quick: args.quick,
        window: Duration::from_secs_f64(args.window.unwrap_or(if args.quick { 0.5 } else { 3.0 })),
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
        tmp_root,
        systems: args.systems.clone(),
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|n| n == name);
    if args.scale {
        run_scale(&ctx, &args, &wanted);
        return;
    }
    let started = Instant::now();
    eprintln!(
        "compare: {} run, {:.1} s windows, {} round(s), temporary directories in {}",
        if ctx.quick { "quick" } else { "full" },
        ctx.window.as_secs_f64(),
        ctx.rounds,
        ctx.tmp_root.display()
    );

    let deep_prefill = ctx.pick(1_000_000, 100_000);
    let mut rows: Vec<Row> = Vec::new();
    if wanted("stream_put_batch") {
        rows.push(stream::put_batch(&ctx));
    }
    if wanted("stream_put_concurrent") {
        rows.push(stream::put_concurrent(&ctx));
    }
    if wanted("stream_put_buffered") {
        rows.push(stream::put_buffered(&ctx));
    }
    let sqlite_only = |x: f64| Target::Ratios { limit: None, sqlite: Some(x) };
    if wanted("queue_cycle") || wanted("queue_cycle_deep") {
        let c = Cycle { name: "queue_cycle", durable: true, fifo: false, prefill: 0 };
        rows.push(queue::run(&ctx, c, sqlite_only(8.0)));
    }
    if wanted("queue_cycle_buffered") {
        let c = Cycle { name: "queue_cycle_buffered", durable: false, fifo: false, prefill: 0 };
        rows.push(queue::run(&ctx, c, sqlite_only(10.0)));
    }
    if wanted("queue_cycle_deep") {
        let c = Cycle { name: "queue_cycle_deep", durable: true, fifo: false, prefill: deep_prefill };
        rows.push(queue::run(&ctx, c, Target::Within { base: "queue_cycle", frac: 0.2 }));
    }
    if wanted("fifo_cycle") {
        let c = Cycle { name: "fifo_cycle", durable: true, fifo: true, prefill: 0 };
        rows.push(queue::run(&ctx, c, sqlite_only(8.0)));
    }
    if wanted("sqs_http_cycle") {
        rows.push(sqs_http::run(&ctx));
    }
    if wanted("kinesis_http_put") {
        rows.push(kinesis_http::run(&ctx));
    }
    if wanted("topic_fanout") {
        rows.push(topic::fanout(&ctx));
    }
    if wanted("sns_http_fanout") {
        rows.push(sns_http::run(&ctx));
    }
    if wanted("stream_read") {
        rows.push(stream::read(&ctx));
    }
    if wanted("stream_put_batch_encrypted") {
        rows.push(stream::put_batch_encrypted(&ctx));
    }
    if wanted("queue_cycle_encrypted") {
        let c = Cycle { name: "queue_cycle", durable: true, fifo: false, prefill: 0 };
        rows.push(queue::run_encrypted(&ctx, c, "queue_cycle_encrypted"));
    }
    if wanted("stream_read_encrypted") {
        rows.push(stream::read_encrypted(&ctx));
    }
    if wanted("recovery") {
        rows.push(recovery::recovery(&ctx));
    }
    if wanted("queue_reopen") {
        rows.push(recovery::queue_reopen(&ctx));
    }
    let mut memory = Vec::new();
    if wanted("memory") {
        memory.push(recovery::memory(&ctx, ctx.pick(1_000_000, 200_000)));
        if !ctx.quick && FULL_RUN_TEN_MILLION {
            memory.push(recovery::memory(&ctx, 10_000_000));
        }
    }
    let total = started.elapsed();

    print_table(&ctx, &rows, &memory, total);
    if let Some(path) = &args.json {
        let doc = to_json(&ctx, &rows, &memory, total);
        let text = serde_json::to_string_pretty(&doc).expect("results serialize");
        std::fs::write(path, text + "\n").unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}

/// `--scale`: the scale table (`scale.rs`), printed and, with `--json`, written as
/// `{"scale":[{"name","object","count","ops_s","rounds","unstable","vs_one_object","setup_rss_bytes","vm_hwm_bytes","vm_rss_bytes","rss_anon_bytes","error"}],..}`.
fn run_scale(ctx: &Ctx, args: &Args, wanted: &dyn Fn(&str) -> bool) {
    let started = Instant::now();
    let load_before = load_average();
    eprintln!(
        "compare --scale: {} run, {:.1} s windows, {} round(s), load average {load_before}",
        if ctx.quick { "quick" } else { "full" },
        ctx.window.as_secs_f64(),
        ctx.rounds
    );
    let mut rows = Vec::new();
    for family in scale::Family::ALL {
        if wanted(family.workload()) {
            rows.extend(scale::run(ctx, family));
        }
    }
    let total = started.elapsed();
    let load_after = load_average();
    println!();
    print!("{}", scale::render(&rows));
    println!("queue_cycle: 8 senders (one message per durable send, each walking over every queue) and 8 receivers (up to 10 per receive, then one delete batch; each owns every 8th queue, or shares the one queue), Durability::Always, 256 B bodies");
    println!("stream_put_batch: one writer, batches of 100 records of 1 KiB with 100 distinct partition keys, Durability::Always");
    println!("batch: messages per receive that found any (queues), records per fsync (shards); memory: each run is a fresh child process; setup = VmRSS once the objects exist, VmHWM = its peak, RssAnon = anonymous memory at the end (the mapped log is file memory: in VmRSS and VmHWM, not in RssAnon)");
    println!("{}; load average before {load_before}, after {load_after}", run_line(ctx, total));
    if let Some(path) = &args.json {
        let doc = json!({
            "scale": scale::to_json(&rows),
            "quick": ctx.quick,
            "window_s": ctx.window.as_secs_f64(),
            "rounds": ctx.rounds,
            "total_s": total.as_secs_f64().round(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        });
        let text = serde_json::to_string_pretty(&doc).expect("results serialize");
        std::fs::write(path, text + "\n").unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}

/// Whether the full run also measures memory at 10,000,000 messages.
const FULL_RUN_TEN_MILLION: bool = true;
const MEMORY_TARGET: f64 = 64.0;

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "n/a",
    }
}

/// The row's verdict; `UNSTABLE` when a baseline its target needs varied more than 2 x.
fn row_verdict(r: &Row, rows: &[Row]) -> &'static str {
    if r.unstable_baseline() {
        "UNSTABLE"
    } else {
        verdict(r.pass(rows))
    }
}

/// A ratio, or `unstable` when its baseline's rounds varied more than 2 x.
fn ratio(r: Option<f64>, unstable: bool) -> String {
    if unstable {
        "unstable".into()
    } else {
        common::fmt_ratio(r)
    }
}

fn print_table(ctx: &Ctx, rows: &[Row], memory: &[recovery::MemoryResult], total: Duration) {
    println!();
    println!(
        "{:<22} {:>13} {:>13} {:>13} {:>10} {:>11}  {:<34} result",
        "workload", "weir ops/s", "limit ops/s", "SQLite ops/s", "weir/limit", "weir/SQLite", "target"
    );
    for r in rows {
        let weir = match r.seconds {
            Some(s) => format!("{s:.2} s"),
            None => r.m.weir.map_or("-".into(), fmt_rate),
        };
        println!(
            "{:<22} {:>13} {:>13} {:>13} {:>10} {:>11}  {:<34} {}",
            r.name,
            weir,
            r.m.limit.map_or("-".into(), fmt_rate),
            r.m.sqlite.map_or("-".into(), fmt_rate),
            ratio(r.ratio_limit(), r.m.limit_unstable()),
            ratio(r.ratio_sqlite(), r.m.sqlite_unstable()),
            r.target_text(),
            row_verdict(r, rows),
        );
    }
    for m in memory {
        println!(
            "{:<22} {:>13} {:>13} {:>13} {:>10} {:>11}  {:<34} {}",
            format!("memory_{}", short_count(m.messages)),
            format!("{:.1} B/msg", m.per_message()),
            "-",
            "-",
            "-",
            "-",
            format!("<= {MEMORY_TARGET} B of index per message"),
            verdict(Some(m.per_message() <= MEMORY_TARGET)),
        );
    }
    println!();
    println!("ops:");
    for r in rows {
        println!("  {:<22} {}", r.name, r.ops);
    }
    println!("notes:");
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("  {:<22} {}", r.name, r.note);
    }
    for r in rows {
        for (what, unstable, spread) in
            [("limit", r.m.limit_unstable(), r.m.limit_spread), ("SQLite", r.m.sqlite_unstable(), r.m.sqlite_spread)]
        {
            if unstable {
                println!("  {:<22} {what}'s rounds differ by {spread:.1} x (> 2 x): unstable, no ratio drawn", r.name);
            }
        }
    }
    for m in memory {
        println!(
            "  {:<22} RssAnon of a fresh process before/after filling a queue with {} messages of 100 B (Durability::Never): {} -> {} bytes",
            format!("memory_{}", short_count(m.messages)),
            m.messages,
            m.before,
            m.after
        );
    }
    if !ctx.quick && !FULL_RUN_TEN_MILLION && memory.len() == 1 {
        println!("  memory_10M             skipped: it does not fit the run's time budget");
    }
    println!("{}", run_line(ctx, total));
}

/// The last line of a table: how the run was made.
fn run_line(ctx: &Ctx, total: Duration) -> String {
    format!(
        "{} run: {:.1} s windows, {} round(s) (median), total {:.0} s",
        if ctx.quick { "quick" } else { "full" },
        ctx.window.as_secs_f64(),
        ctx.rounds,
        total.as_secs_f64()
    )
}

fn short_count(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn to_json(ctx: &Ctx, rows: &[Row], memory: &[recovery::MemoryResult], total: Duration) -> Value {
    let workloads: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({
                "name": r.name,
                "weir_ops_s": r.m.weir,
                "limit_ops_s": r.m.limit,
                "sqlite_ops_s": r.m.sqlite,
                "ops": r.ops,
                "limit_unstable": r.m.limit_unstable(),
                "sqlite_unstable": r.m.sqlite_unstable(),
                "target": r.target_text(),
                "result": row_verdict(r, rows),
                "note": r.note,
            });
            if let Some(s) = r.seconds {
                v["weir_seconds"] = json!(s);
            }
            v
        })
        .collect();
    let memory: Vec<Value> = memory
        .iter()
        .map(|m| {
            json!({
                "messages": m.messages,
                "body_bytes": 100,
                "rss_anon_before": m.before,
                "rss_anon_after": m.after,
                "bytes_per_message": m.per_message(),
                "target_max": MEMORY_TARGET,
                "result": verdict(Some(m.per_message() <= MEMORY_TARGET)),
            })
        })
        .collect();
    json!({
        "workloads": workloads,
        "memory": memory,
        "quick": ctx.quick,
        "window_s": ctx.window.as_secs_f64(),
        "rounds": ctx.rounds,
        "total_s": total.as_secs_f64(),
    })
}
