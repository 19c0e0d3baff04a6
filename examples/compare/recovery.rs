//! `recovery` (reopen after kill -9) and the memory cost of waiting queue messages. Both run the
//! writer in a child process (this example re-executed with a hidden `--child` flag): the
//! recovery writer so that it can be SIGKILLed, the memory filler so that its heap starts clean.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir::log::io::RealFs;
use weir::log::{Log, LogConfig};
use weir::queue::{QueueConfig, SendEntry, SendOptions};
use weir::stream::PutRecord;
use weir::{Durability, Engine, Options};

use crate::common::*;

/// What the child is asked to do.
pub struct ChildArgs {
    pub kind: String,
    pub dir: PathBuf,
    pub stream_bytes: u64,
    pub messages: u64,
}

/// Entry point of the child process.
pub fn child(args: &ChildArgs) {
    match args.kind.as_str() {
        "recovery" => recovery_child(args),
        "memory" => memory_child(args),
        other => panic!("unknown child kind {other:?}"),
    }
}

// ----- recovery -----

const STREAM_RECORD: usize = 1024;
const STREAM_BATCH: usize = 500;
const QUEUE_BODY: usize = 256;

fn recovery_child(args: &ChildArgs) {
    let engine = Engine::open(&args.dir, Options { durability: Durability::Never, ..Options::default() })
        .unwrap_or_else(|e| panic!("child: cannot open {}: {e}", args.dir.display()));
    engine.create_stream("s", 1, None).expect("child: create stream");
    engine.create_queue("q", QueueConfig::default()).expect("child: create queue");
    let stream = engine.stream("s").expect("child: stream");
    let queue = engine.queue("q").expect("child: queue");
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..STREAM_BATCH)
        .map(|i| (format!("pk-{}", i % 16).into_bytes(), noise(STREAM_RECORD, 1000 + i as u64)))
        .collect();
    let puts: Vec<PutRecord<'_>> =
        records.iter().map(|(k, v)| PutRecord { partition_key: k, data: v, explicit_hash_key: None }).collect();
    let per_batch = (STREAM_BATCH * STREAM_RECORD) as u64;
    for _ in 0..args.stream_bytes.div_ceil(per_batch) {
        stream.put_batch(&puts).expect("child: put_batch");
    }
    let body = Bytes::from(text_noise(QUEUE_BODY, 9));
    let entries: Vec<SendEntry> =
        (0..10).map(|_| SendEntry { body: body.clone(), options: SendOptions::default() }).collect();
    for _ in 0..args.messages.div_ceil(10) {
        queue.send_batch(&entries).expect("child: send_batch");
    }
    println!("ready");
    // Keep both logs busy until the parent's SIGKILL lands in the middle of it.
    loop {
        stream.put_batch(&puts[..10]).expect("child: put_batch");
        queue.send_batch(&entries).expect("child: send_batch");
    }
}

/// Every index file under `dir` with its inode and modification time.
fn index_files(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if p.extension().is_some_and(|x| x == "idx") => {
                    out.insert(p, (m.ino(), m.mtime(), m.mtime_nsec()));
                }
                _ => {}
            }
        }
    }
    out
}

fn count_files(dir: &Path, ext: &str) -> (usize, u64) {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .filter_map(|e| e.metadata().ok())
                .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
        })
        .unwrap_or((0, 0))
}

pub fn recovery(ctx: &Ctx) -> Row {
    let stream_bytes: u64 = ctx.pick(1 << 30, 64 << 20);
    let messages: u64 = ctx.pick(1_000_000, 100_000);
    let tmp = ctx.tempdir("recovery");
    let dir = tmp.path().join("data");
    let exe = std::env::current_exe().expect("cannot find this example's executable");
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["--child", "recovery", "--child-dir"])
        .arg(&dir)
        .args(["--child-stream-bytes", &stream_bytes.to_string(), "--child-messages", &messages.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the recovery writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        if line.map(|l| l.trim() == "ready").unwrap_or(false) {
            ready = true;
            break;
        }
    }
    assert!(ready, "the recovery writer ended before it was ready");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("cannot SIGKILL the recovery writer");
    let status = child.wait().expect("wait for the recovery writer");
    eprintln!(
        "  recovery: writer filled {} MiB + {messages} messages in {:.1} s, then {status}",
        stream_bytes >> 20,
        started.elapsed().as_secs_f64()
    );

    let before = index_files(&dir);
    let t = Instant::now();
    let engine = Engine::open(&dir, Options::default()).expect("weir: open after kill -9");
    let open_s = t.elapsed().as_secs_f64();
    let after = index_files(&dir);
    let rewritten: Vec<&PathBuf> = after.iter().filter(|(p, v)| before.get(*p) != Some(*v)).map(|(p, _)| p).collect();
    let shard = engine.stream("s").expect("weir: stream").shards()[0].clone();
    let report = shard.log().recovery_report().clone();
    let waiting = engine.queue("q").expect("weir: queue").attributes().approximate_visible;
    drop(shard);
    drop(engine);

    let shard_dir = dir.join("streams/s/shard-000000");
    let queue_dir = dir.join("queues");
    let (stream_segments, stream_len) = count_files(&shard_dir, "seg");
    let (queue_segments, queue_len) = count_files(&queue_dir, "seg");
    let time_log = |d: &Path| {
        let t = Instant::now();
        drop(Log::open(Arc::new(RealFs), d, LogConfig::default(), 0).expect("weir: Log::open"));
        t.elapsed().as_secs_f64()
    };
    let stream_log_s = time_log(&shard_dir);
    let queue_log_s = time_log(&queue_dir);
    // The tail is each log's active (last) segment: its index may take the entries of the
    // frames written after its last flush. A sealed segment's index is never touched.
    let is_active = |p: &PathBuf| {
        let dir = p.parent();
        after.keys().filter(|q| q.parent() == dir).max() == Some(p)
    };
    let sealed_rewritten = rewritten.iter().filter(|p| !is_active(p)).count();
    let ok = sealed_rewritten == 0 && report.rebuilt_indexes.is_empty() && waiting >= messages;
    let mut row = Row::new(
        "recovery",
        "seconds of Engine::open after kill -9 (JSON ops/s = 1 / seconds)",
        Measured::weir_only(1.0 / open_s),
        Target::Condition(ok),
    );
    row.seconds = Some(open_s);
    row.note = format!(
        "{} MiB stream ({stream_segments} segments, {} MiB) + {messages} queue messages ({queue_segments} segments, {} MiB), page cache warm; \
         index files rewritten at open: {} {:?} ({sealed_rewritten} of sealed segments); torn tails cut: {}; messages waiting after open: {waiting}; \
         clean reopen of the stream log alone {stream_log_s:.2} s, of the message log alone (no index replay) {queue_log_s:.2} s, \
         so the queue index replay is about {:.2} s",
        stream_bytes >> 20,
        stream_len >> 20,
        queue_len >> 20,
        rewritten.len(),
        rewritten.iter().map(|p| p.strip_prefix(&dir).unwrap_or(p)).collect::<Vec<_>>(),
        report.truncated.len(),
        (open_s - stream_log_s - queue_log_s).max(0.0),
    );
    if !ctx.quick && stream_bytes < (1 << 30) {
        row.note.push_str("; scaled down from 1 GiB");
    }
    row
}

/// Clean reopen of a queue with 1M waiting messages: from the index
/// snapshot written at close and the (empty) tail (1M with `--quick` too: the row is about that size), and, with the snapshot removed, by replaying
/// the whole message log as every open did before snapshots.
pub fn queue_reopen(ctx: &Ctx) -> Row {
    let messages: u64 = 1_000_000;
    let tmp = ctx.tempdir("queue_reopen");
    let dir = tmp.path().join("data");
    let options = || Options { durability: Durability::Never, ..Options::default() };
    {
        let engine = Engine::open(&dir, options()).expect("weir: open");
        engine.create_queue("q", QueueConfig::default()).expect("weir: create queue");
        let queue = engine.queue("q").expect("weir: queue");
        let body = Bytes::from(text_noise(QUEUE_BODY, 9));
        let entries: Vec<SendEntry> =
            (0..10).map(|_| SendEntry { body: body.clone(), options: SendOptions::default() }).collect();
        for _ in 0..messages.div_ceil(10) {
            queue.send_batch(&entries).expect("weir: send_batch");
        }
    } // the clean close writes the snapshot
    let queue_dir = dir.join("queues");
    let snapshot_bytes = count_files(&queue_dir, "snap").1;
    let time_open = || {
        let t = Instant::now();
        let engine = Engine::open(&dir, Options { snapshot_on_close: false, ..options() }).expect("weir: reopen");
        let secs = t.elapsed().as_secs_f64();
        let waiting = engine.queue("q").expect("weir: queue").attributes().approximate_visible;
        let recovery = engine.queue_index_recovery().clone();
        (secs, waiting, recovery)
    };
    let (with_s, with_waiting, with) = time_open();
    for entry in std::fs::read_dir(&queue_dir).expect("weir: list queues").flatten() {
        if entry.path().extension().is_some_and(|x| x == "snap") {
            std::fs::remove_file(entry.path()).expect("weir: remove snapshot");
        }
    }
    let (full_s, full_waiting, full) = time_open();
    // The command line on the same queue, when the `weir` binary was built beside this example:
    // the first call finds no snapshot (the whole log replayed, and one written at its close),
    // the second loads it.
    let weir = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.join("weir")));
    let cli = |what: &str| -> String {
        let Some(weir) = weir.as_ref().filter(|w| w.is_file()) else { return String::new() };
        let t = Instant::now();
        let out = Command::new(weir).arg("--data").arg(&dir).args(["queue", "attributes", "q"]).output();
        let secs = t.elapsed().as_secs_f64();
        match out {
            Ok(o) if o.status.success() => format!("; `weir queue attributes` {what} {secs:.3} s"),
            _ => format!("; `weir queue attributes` {what} failed"),
        }
    };
    let cli_notes = format!("{}{}", cli("without a snapshot (writes one at close)"), cli("with it"));
    let ok = with.snapshot.is_some() && full.snapshot.is_none() && with_waiting == messages && full_waiting == messages;
    let mut row = Row::new(
        "queue_reopen",
        "seconds of a clean Engine::open with a snapshot of the queue index (JSON ops/s = 1 / seconds)",
        Measured::weir_only(1.0 / with_s),
        Target::Condition(ok),
    );
    row.seconds = Some(with_s);
    row.note = format!(
        "{messages} waiting messages; with the snapshot ({} MiB, {} records replayed) {with_s:.3} s; \
         without it (the whole message log replayed, {} records, as before snapshots) {full_s:.3} s{cli_notes}",
        snapshot_bytes >> 20,
        with.replayed,
        full.replayed,
    );
    row
}

// ----- memory -----

const MEMORY_BODY: usize = 100;

fn rss_anon_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("cannot read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("no RssAnon line in /proc/self/status")
}

fn memory_child(args: &ChildArgs) {
    let engine = Engine::open(&args.dir, Options { durability: Durability::Never, ..Options::default() })
        .unwrap_or_else(|e| panic!("child: cannot open {}: {e}", args.dir.display()));
    engine.create_queue("q", QueueConfig::default()).expect("child: create queue");
    let queue = engine.queue("q").expect("child: queue");
    let body = Bytes::from(text_noise(MEMORY_BODY, 13));
    let entries: Vec<SendEntry> =
        (0..10).map(|_| SendEntry { body: body.clone(), options: SendOptions::default() }).collect();
    // One batch first, so lazily built structures exist before the baseline.
    queue.send_batch(&entries).expect("child: send_batch");
    let before = rss_anon_bytes();
    let t = Instant::now();
    for _ in 0..args.messages / 10 {
        queue.send_batch(&entries).expect("child: send_batch");
    }
    let fill_s = t.elapsed().as_secs_f64();
    let after = rss_anon_bytes();
    println!("memory {before} {after} {fill_s}");
}

/// Resident anonymous bytes per waiting message, measured in a fresh child process.
pub struct MemoryResult {
    pub messages: u64,
    pub before: u64,
    pub after: u64,
    pub fill_s: f64,
}

impl MemoryResult {
    pub fn per_message(&self) -> f64 {
        self.after.saturating_sub(self.before) as f64 / self.messages as f64
    }
}

pub fn memory(ctx: &Ctx, messages: u64) -> MemoryResult {
    let tmp = ctx.tempdir("memory");
    let exe = std::env::current_exe().expect("cannot find this example's executable");
    let out = Command::new(exe)
        .args(["--child", "memory", "--child-dir"])
        .arg(tmp.path().join("data"))
        .args(["--child-messages", &messages.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run the memory child");
    assert!(out.status.success(), "the memory child failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("memory ")).expect("the memory child printed no result");
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).expect("malformed memory result");
    let r = MemoryResult { messages, before: num(1) as u64, after: num(2) as u64, fill_s: num(3) };
    eprintln!(
        "  memory: {messages} messages of {MEMORY_BODY} B: RssAnon {} -> {} MiB in {:.1} s: {:.1} B/message",
        r.before >> 20,
        r.after >> 20,
        r.fill_s,
        r.per_message()
    );
    r
}
