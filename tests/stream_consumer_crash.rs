//! Crash test for consumer groups and delivery with real processes: a child puts records from
//! one thread while its main thread either consumes them as a group worker, checkpointing each
//! poll (it prints `got <shard> <seq>` for every record, then `ckpt <shard> <seq>` after each
//! checkpoint that returned Ok), or runs a delivery to files (it prints `file <path>` after each
//! file). The parent kills it with SIGKILL at a random moment, splits a shard now and then, and
//! checks after every kill:
//!
//! - consuming: no acknowledged checkpoint is lost, every record at or before the durable
//!   checkpoint was received by some child, and a fresh worker of the group (on a copy of the
//!   directory) resumes right after the checkpoint and reads every later record once: nothing
//!   is skipped;
//! - delivering: every delivered file (not `*.tmp`) is whole: it decompresses, parses as JSON
//!   lines, and holds exactly the records its name says, as stored; every printed file exists;
//!   together the files cover every record up to the delivery group's checkpoint.
//!
//! The child is this test binary, re-executed with `WEIR_CONSUMER_CRASH_CHILD=<mode>:<dir>`.
//! Set `WEIR_CONSUMER_CRASH_SEED` to replay a run's kill delays.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{copy_tree, read_to_end, Rng};
use weir::stream::{
    ConsumerConfig, DeliveryCompression, DeliveryConfig, PutRecord, StartingPosition, Stream, StreamRecord,
};
use weir::{Durability, Engine, ManualClock, Options};

const TEST_NAME: &str = "consumers_and_deliveries_lose_nothing_when_killed_at_random_moments";
const CHILD_ENV: &str = "WEIR_CONSUMER_CRASH_CHILD";
const SEED_ENV: &str = "WEIR_CONSUMER_CRASH_SEED";
const STREAM: &str = "jobs";
const GROUP: &str = "workers";
const DELIVERY_GROUP: &str = "deliver";
const ITERATIONS: u32 = 10;
const T0: u64 = 1_700_000_000_000;

fn options() -> Options {
    Options {
        durability: Durability::Always,
        segment_bytes: 16 << 10,
        background: false,
        clock: Arc::new(ManualClock::new(T0)),
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

fn delivery_config(dir: &Path, zstd: bool) -> DeliveryConfig {
    DeliveryConfig {
        max_bytes: 300,
        max_age: Duration::ZERO,
        compression: if zstd { DeliveryCompression::Zstd } else { DeliveryCompression::None },
        ..DeliveryConfig::new(dir)
    }
}

#[test]
fn consumers_and_deliveries_lose_nothing_when_killed_at_random_moments() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    parent();
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn fail_child(message: &str) -> ! {
    say(&format!("error {message}\n"));
    std::process::exit(3)
}

/// `<consume|deliver|deliver-zstd>:<data dir>:<delivery dir>:<seed>`
fn child(spec: &str) -> ! {
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    let [mode, dir, out, seed] = parts[..] else { fail_child(&format!("bad child spec {spec:?}")) };
    let seed: u64 = seed.parse().unwrap_or(1);
    let engine = Engine::open(dir, options()).unwrap_or_else(|e| fail_child(&format!("open: {e}")));
    let stream = engine.stream(STREAM).unwrap_or_else(|e| fail_child(&format!("stream: {e}")));
    let started = Instant::now();
    let writer = Arc::clone(&stream);
    std::thread::spawn(move || write_forever(&writer, seed));
    say("ready\n");
    match mode {
        "consume" => consume_forever(&stream, seed, started),
        "deliver" | "deliver-zstd" => {
            let config = delivery_config(Path::new(out), mode == "deliver-zstd");
            let mut delivery = stream.deliver(config).unwrap_or_else(|e| fail_child(&format!("deliver: {e}")));
            while started.elapsed() < Duration::from_secs(30) {
                let files = delivery.step().unwrap_or_else(|e| fail_child(&format!("step: {e}")));
                let lines: String = files.iter().map(|f| format!("file {}\n", f.display())).collect();
                say(&lines);
            }
            std::process::exit(0)
        }
        other => fail_child(&format!("unknown mode {other:?}")),
    }
}

/// Puts small batches until the process is killed.
fn write_forever(stream: &Stream, seed: u64) {
    let mut rng = Rng::new(seed);
    for n in 0u64.. {
        let count = rng.range(1, 8) as usize;
        let keys: Vec<Vec<u8>> = (0..count).map(|_| format!("k{}", rng.range(0, 16)).into_bytes()).collect();
        let data: Vec<Vec<u8>> = (0..count).map(|i| format!("s{seed}-n{n}-{i}").into_bytes()).collect();
        let records: Vec<PutRecord<'_>> = keys
            .iter()
            .zip(&data)
            .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
            .collect();
        if let Err(e) = stream.put_batch(&records) {
            fail_child(&format!("put: {e}"));
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 3)));
    }
}

fn consume_forever(stream: &Arc<Stream>, seed: u64, started: Instant) -> ! {
    let mut rng = Rng::new(seed ^ 0xc0ffee);
    let worker = format!("child-{}", std::process::id());
    let mut consumer = stream
        .consumer(GROUP, &worker, ConsumerConfig::default())
        .unwrap_or_else(|e| fail_child(&format!("consumer: {e}")));
    while started.elapsed() < Duration::from_secs(30) {
        let got = consumer.poll(rng.range(1, 40) as usize).unwrap_or_else(|e| fail_child(&format!("poll: {e}")));
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        let mut lines = String::new();
        for r in &got {
            lines.push_str(&format!("got {} {}\n", r.shard, r.record.seq));
            last.insert(r.shard, r.record.seq);
        }
        say(&lines);
        for (shard, seq) in last {
            consumer.checkpoint(shard, seq).unwrap_or_else(|e| fail_child(&format!("checkpoint: {e}")));
            say(&format!("ckpt {shard} {seq}\n"));
        }
    }
    std::process::exit(0)
}

/// Runs one child until a random moment, kills it and returns its whole output lines.
fn run_child(exe: &Path, spec: &str, delay: Duration, stderr_path: &Path, context: &str) -> Vec<String> {
    let mut child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1", "--quiet"])
        .env(CHILD_ENV, spec)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (rx, reader) = common::child::whole_lines(stdout);
    // What the test harness prints before the child is ready is not the child's to say.
    let mut before_ready = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == "ready" => break,
            Ok(line) => before_ready.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
                panic!("{context}: child never got ready; output {before_ready:?}; stderr:\n{stderr}");
            }
        }
    }
    let mut lines = Vec::new();
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    lines.extend(rx.try_iter());
    if let Some(error) = lines.iter().find_map(|l| l.strip_prefix("error ")) {
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        panic!("{context}: child failed: {error}\nstderr:\n{stderr}");
    }
    lines
}

/// What the consuming children said, over every iteration.
#[derive(Debug, Default)]
struct Said {
    got: BTreeSet<(u32, u64)>,
    /// Highest acknowledged checkpoint per shard.
    acked: BTreeMap<u32, u64>,
    files: Vec<PathBuf>,
}

impl Said {
    fn take(&mut self, lines: &[String], context: &str) {
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                ["got", shard, seq] | ["ckpt", shard, seq] => {
                    let shard: u32 = shard.parse().expect("shard");
                    let seq: u64 = seq.parse().expect("seq");
                    if fields[0] == "got" {
                        self.got.insert((shard, seq));
                    } else {
                        assert!(self.got.contains(&(shard, seq)), "{context}: checkpoint at a record never received");
                        let acked = self.acked.entry(shard).or_insert(seq);
                        *acked = (*acked).max(seq);
                    }
                }
                ["file", _] => self.files.push(PathBuf::from(&line["file ".len()..])),
                _ => panic!("{context}: unexpected child line {line:?}"),
            }
        }
    }
}

/// Every stored record of every shard, by shard.
fn stored(stream: &Stream, context: &str) -> BTreeMap<u32, Vec<StreamRecord>> {
    let mut out = BTreeMap::new();
    for shard in stream.shards() {
        let report = shard.log().recovery_report();
        assert!(report.damaged.is_empty(), "{context}: a kill damaged shard {}: {report:?}", shard.meta.id);
        let outcome = read_to_end(stream, shard.meta.id, StartingPosition::TrimHorizon, 1000);
        assert!(outcome.error.is_none(), "{context}: reading shard {}: {:?}", shard.meta.id, outcome.error);
        out.insert(shard.meta.id, outcome.records);
    }
    out
}

/// The checkpoints of one group, by shard.
fn group_checkpoints(stream: &Stream, group: &str) -> BTreeMap<u32, u64> {
    stream.checkpoints().into_iter().filter(|((g, _), _)| g == group).map(|((_, shard), seq)| (shard, seq)).collect()
}

fn check_consumer(dir: &Path, scratch: &Path, said: &Said, context: &str) {
    let engine = Engine::open(dir, options()).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let stream = engine.stream(STREAM).expect("stream");
    let records = stored(&stream, context);
    let checkpoints = group_checkpoints(&stream, GROUP);
    for (&shard, &acked) in &said.acked {
        let durable = checkpoints.get(&shard).copied();
        assert!(durable.is_some_and(|c| c >= acked), "{context}: shard {shard} acknowledged {acked}, has {durable:?}");
    }
    for (&shard, &checkpoint) in &checkpoints {
        for r in records[&shard].iter().filter(|r| r.seq <= checkpoint) {
            assert!(
                said.got.contains(&(shard, r.seq)),
                "{context}: shard {shard} seq {} is at or before checkpoint {checkpoint} but no child received it",
                r.seq
            );
        }
    }
    drop(stream);
    drop(engine);

    // A fresh worker, on a copy so the children go on from the real state.
    let _ = std::fs::remove_dir_all(scratch);
    copy_tree(dir, scratch);
    let engine = Engine::open(scratch, options()).expect("open the copy");
    let stream = engine.stream(STREAM).expect("stream");
    let mut fresh = stream.consumer(GROUP, "fresh", ConsumerConfig::default()).expect("fresh worker");
    let mut served: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    loop {
        let got = fresh.poll(500).expect("poll");
        if got.is_empty() {
            break;
        }
        for r in got {
            served.entry(r.shard).or_default().push(r.record.seq);
        }
        fresh.checkpoint_all().expect("checkpoint");
    }
    for (&shard, shard_records) in &records {
        let from = checkpoints.get(&shard).map_or(0, |c| c + 1);
        let expected: Vec<u64> = shard_records.iter().map(|r| r.seq).filter(|&s| s >= from).collect();
        let got = served.get(&shard).cloned().unwrap_or_default();
        assert_eq!(
            got, expected,
            "{context}: a fresh worker of shard {shard} resumes after {from:?} and reads the rest"
        );
    }
}

/// Parses `<stream>-<shard>-<first>-<last>-<time>.jsonl[.zst]`.
fn parse_file_name(name: &str) -> Option<(u32, u64, u64)> {
    let rest = name.strip_prefix(&format!("{STREAM}-"))?;
    let fields: Vec<&str> = rest.splitn(4, '-').collect();
    match fields[..] {
        [shard, first, last, _] => Some((shard.parse().ok()?, first.parse().ok()?, last.parse().ok()?)),
        _ => None,
    }
}

fn check_delivery(dir: &Path, out: &Path, said: &Said, context: &str) {
    let engine = Engine::open(dir, options()).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let stream = engine.stream(STREAM).expect("stream");
    let records = stored(&stream, context);
    let by_seq: BTreeMap<(u32, u64), &StreamRecord> =
        records.iter().flat_map(|(&shard, rs)| rs.iter().map(move |r| ((shard, r.seq), r))).collect();
    let mut covered: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(out).expect("list the delivery directory") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            continue;
        }
        names.insert(path.clone());
        let (shard, first, last) =
            parse_file_name(&name).unwrap_or_else(|| panic!("{context}: unexpected file {name:?}"));
        let bytes = std::fs::read(&path).expect("read delivered file");
        let text = if name.ends_with(".zst") {
            zstd::bulk::decompress(&bytes, 64 << 20)
                .unwrap_or_else(|e| panic!("{context}: {name}: not whole zstd: {e}"))
        } else {
            bytes
        };
        let text = String::from_utf8(text).unwrap_or_else(|_| panic!("{context}: {name}: not UTF-8"));
        assert!(text.ends_with('\n'), "{context}: {name}: the last line is cut");
        let mut seqs = Vec::new();
        for line in text.lines() {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{context}: {name}: {line:?}: {e}"));
            let seq = value["seq"].as_u64().unwrap_or_else(|| panic!("{context}: {name}: no seq in {line:?}"));
            let stored = by_seq
                .get(&(shard, seq))
                .unwrap_or_else(|| panic!("{context}: {name}: shard {shard} seq {seq} is not stored"));
            assert_eq!(value["data"].as_str().map(str::as_bytes), Some(&stored.data[..]), "{context}: {name} data");
            assert_eq!(value["key"].as_str().map(str::as_bytes), Some(&stored.partition_key[..]), "{context}: key");
            seqs.push(seq);
            covered.insert((shard, seq));
        }
        // Every record the shard holds in the range its name gives (numbers a crash skipped
        // were never written, so none stands for them).
        let stored: Vec<u64> = records[&shard].iter().map(|r| r.seq).filter(|s| (first..=last).contains(s)).collect();
        assert_eq!(seqs, stored, "{context}: {name} holds what its name says");
    }
    for file in &said.files {
        assert!(names.contains(file), "{context}: printed file {} is missing", file.display());
    }
    for (shard, checkpoint) in group_checkpoints(&stream, DELIVERY_GROUP) {
        for r in records[&shard].iter().filter(|r| r.seq <= checkpoint) {
            assert!(
                covered.contains(&(shard, r.seq)),
                "{context}: shard {shard} seq {} is at or before the delivery checkpoint {checkpoint} but in no file",
                r.seq
            );
        }
    }
}

/// Splits the open shard with the lowest id.
fn split_one(dir: &Path) {
    let engine = Engine::open(dir, options()).expect("open to split");
    let stream = engine.stream(STREAM).expect("stream");
    let Some(open) = stream.describe().shards.into_iter().find(|s| s.open) else { return };
    engine.split_shard(STREAM, open.id, None).expect("split");
}

fn parent() {
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(Rng::seed_from_time);
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let out = tmp.path().join("delivered");
    let scratch = tmp.path().join("scratch");
    {
        let engine = Engine::open(&dir, options()).expect("open");
        engine.create_stream(STREAM, 2, None).expect("create stream");
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut consumed = Said::default();
    let mut delivered = Said::default();
    for iteration in 0..ITERATIONS {
        let context = format!("seed {seed} ({SEED_ENV}), iteration {iteration}");
        let mode = match iteration % 3 {
            0 => "consume",
            1 => "deliver",
            _ if iteration % 2 == 0 => "deliver-zstd",
            _ => "consume",
        };
        let spec = format!("{mode}:{}:{}:{}", dir.display(), out.display(), rng.next_u64());
        let delay = Duration::from_millis(rng.range(20, 250));
        let stderr_path = tmp.path().join(format!("child-{iteration}.stderr"));
        let lines = run_child(&exe, &spec, delay, &stderr_path, &context);
        if mode == "consume" {
            consumed.take(&lines, &context);
            check_consumer(&dir, &scratch, &consumed, &context);
        } else {
            delivered.take(&lines, &context);
            check_delivery(&dir, &out, &delivered, &context);
        }
        if iteration % 3 == 2 {
            split_one(&dir);
        }
    }
    assert!(!consumed.got.is_empty(), "seed {seed}: no consuming child received anything before its kill");
    assert!(!delivered.files.is_empty(), "seed {seed}: no delivering child wrote a file before its kill");
}

/// A delivery told to wait "forever" for a batch to age must not write it early, nor panic.
#[test]
fn a_delivery_with_the_longest_max_age_waits_for_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(tmp.path().join("data"), options()).expect("open");
    engine.create_stream(STREAM, 1, None).expect("create");
    let stream = engine.stream(STREAM).expect("stream");
    stream.put(b"k", b"small").expect("put");
    let config =
        DeliveryConfig { max_age: Duration::MAX, max_bytes: 1 << 20, ..DeliveryConfig::new(tmp.path().join("out")) };
    let mut delivery = stream.deliver(config).expect("deliver");
    assert!(delivery.step().expect("step").is_empty(), "neither full nor old");
}
