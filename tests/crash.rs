//! Crash test with a real process: a child writes with `Durability::Always` from several
//! threads and prints each acknowledgement; the parent kills it with SIGKILL at a random
//! moment, reopens the directory and checks that every acknowledged record is there, byte for
//! byte, and that sequence numbers handed out later are above every acknowledged one.
//!
//! The child is this same test binary, re-executed with `WEIR_CRASH_CHILD=<dir>` and a filter
//! that selects this test. Set `WEIR_CRASH_SEED` to replay a run's kill delays and payloads.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{from_hex, read_to_end, to_hex, Rng};
use weir::stream::{PutRecord, StartingPosition};
use weir::{Durability, Engine, Options};

const TEST_NAME: &str = "acknowledged_records_survive_sigkill_at_random_moments";
const CHILD_ENV: &str = "WEIR_CRASH_CHILD";
const SEED_ENV: &str = "WEIR_CRASH_SEED";
const STREAM: &str = "crash";
const SHARDS: u32 = 3;
const ITERATIONS: u32 = 20;
const WRITER_THREADS: u64 = 4;

fn options() -> Options {
    Options {
        durability: Durability::Always,
        // Small segments, so kills also land around segment rolls.
        segment_bytes: 16 << 10,
        background: false,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

#[test]
fn acknowledged_records_survive_sigkill_at_random_moments() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    parent();
}

/// Writes forever (until killed) and prints `ack <shard> <seq> <hex data>` after each
/// acknowledged record.
fn child(dir: &Path) -> ! {
    let seed: u64 = std::env::var("WEIR_CRASH_CHILD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let engine = Engine::open(dir, options()).unwrap_or_else(|e| fail_child(&format!("open: {e}")));
    let stream = engine.stream(STREAM).unwrap_or_else(|e| fail_child(&format!("stream: {e}")));
    say("ready\n");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..WRITER_THREADS {
            let stream = &stream;
            scope.spawn(move || {
                let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(t));
                for n in 0u64.. {
                    if started.elapsed() > Duration::from_secs(60) {
                        // The parent is gone; do not write forever.
                        std::process::exit(0);
                    }
                    let count = if n % 5 == 4 { rng.range(2, 12) as usize } else { 1 };
                    let keys: Vec<Vec<u8>> =
                        (0..count).map(|_| format!("key-{}", rng.range(0, 16)).into_bytes()).collect();
                    let data: Vec<Vec<u8>> = (0..count)
                        .map(|i| {
                            let mut d = format!("seed{seed}-t{t}-n{n}-r{i}:").into_bytes();
                            let filler = rng.range(0, 300) as usize;
                            d.extend(rng.bytes(filler));
                            d
                        })
                        .collect();
                    let results = if count == 1 {
                        stream.put(&keys[0], &data[0]).map(|r| vec![r])
                    } else {
                        let records: Vec<PutRecord<'_>> = keys
                            .iter()
                            .zip(&data)
                            .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
                            .collect();
                        stream.put_batch(&records)
                    };
                    match results {
                        Ok(results) => {
                            let lines: String = results
                                .iter()
                                .zip(&data)
                                .map(|(r, d)| format!("ack {} {} {}\n", r.shard, r.seq, to_hex(d)))
                                .collect();
                            say(&lines);
                        }
                        Err(e) => fail_child(&format!("put: {e}")),
                    }
                }
            });
        }
    });
    unreachable!("writer threads never finish")
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

/// One record the child (or the parent) was told is durable.
#[derive(Debug, Clone)]
struct Ack {
    data: Vec<u8>,
    iteration: u32,
}

fn parent() {
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(Rng::seed_from_time);
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    {
        let engine = Engine::open(&dir, options()).expect("open");
        engine.create_stream(STREAM, SHARDS, None).expect("create stream");
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    // Acknowledged records by (shard, seq).
    let mut acked: BTreeMap<(u32, u64), Ack> = BTreeMap::new();
    let mut with_records = 0;
    for iteration in 0..ITERATIONS {
        let context = format!("seed {seed} ({SEED_ENV}), iteration {iteration}");
        let stderr_path = tmp.path().join(format!("child-{iteration}.stderr"));
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, &dir)
            .env("WEIR_CRASH_CHILD_SEED", rng.next_u64().to_string())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (lines_rx, reader) = common::child::whole_lines(stdout);
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == "ready" => break,
                Ok(line) => lines.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("{context}: child never got ready; output {lines:?}; stderr:\n{stderr}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(5, 151)));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        reader.join().expect("reader thread");
        lines.extend(lines_rx.try_iter());

        let before = acked.len();
        for line in &lines {
            if let Some(message) = line.strip_prefix("error ") {
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("{context}: child failed: {message}\nstderr:\n{stderr}");
            }
            let Some(ack) = line.strip_prefix("ack ") else { continue };
            let fields: Vec<&str> = ack.split(' ').collect();
            assert_eq!(fields.len(), 3, "{context}: malformed line {line:?}");
            let shard: u32 = fields[0].parse().expect("shard");
            let seq: u64 = fields[1].parse().expect("seq");
            let data = from_hex(fields[2]).expect("hex data");
            if let Some(earlier) = acked.get(&(shard, seq)) {
                panic!(
                    "{context}: shard {shard} seq {seq} acknowledged twice (first in iteration {}): numbers were reused",
                    earlier.iteration
                );
            }
            acked.insert((shard, seq), Ack { data, iteration });
        }
        if acked.len() > before {
            with_records += 1;
        }

        check_and_extend(&dir, &mut acked, iteration, &mut rng, &context);
    }
    assert!(
        with_records >= ITERATIONS / 2,
        "seed {seed}: only {with_records} of {ITERATIONS} children acknowledged anything before the kill"
    );
}

/// Reopens after a kill: every acknowledged record is there byte for byte; new puts get
/// sequence numbers above every acknowledged one.
fn check_and_extend(dir: &Path, acked: &mut BTreeMap<(u32, u64), Ack>, iteration: u32, rng: &mut Rng, context: &str) {
    let engine = Engine::open(dir, options()).unwrap_or_else(|e| panic!("{context}: reopen after kill: {e}"));
    let stream = engine.stream(STREAM).expect("stream");
    for shard in stream.shards() {
        let report = shard.log().recovery_report();
        assert!(report.damaged.is_empty(), "{context}: a kill damaged a segment: {report:?}");
    }
    let mut max_acked: HashMap<u32, u64> = HashMap::new();
    for (&(shard, seq), _) in acked.iter() {
        let max = max_acked.entry(shard).or_insert(seq);
        *max = (*max).max(seq);
    }
    for shard in 0..SHARDS {
        let outcome = read_to_end(&stream, shard, StartingPosition::TrimHorizon, 1000);
        assert!(outcome.error.is_none(), "{context}: reading shard {shard}: {:?}", outcome.error);
        let stored: HashMap<u64, &[u8]> = outcome.records.iter().map(|r| (r.seq, &r.data[..])).collect();
        assert!(
            outcome.records.windows(2).all(|w| w[0].seq < w[1].seq),
            "{context}: shard {shard} serves sequence numbers out of order"
        );
        for (&(_, seq), ack) in acked.range((shard, 0)..=(shard, u64::MAX)) {
            match stored.get(&seq) {
                Some(data) => assert!(
                    *data == &ack.data[..],
                    "{context}: shard {shard} seq {seq} (acknowledged in iteration {}) holds other bytes",
                    ack.iteration
                ),
                None => {
                    panic!("{context}: shard {shard} seq {seq}, acknowledged in iteration {}, is gone", ack.iteration)
                }
            }
        }
    }
    for i in 0..5 {
        let key = format!("key-{}", rng.range(0, 16));
        let data = format!("parent-i{iteration}-{i}").into_bytes();
        let put = stream.put(key.as_bytes(), &data).expect("put after recovery");
        if let Some(&max) = max_acked.get(&put.shard) {
            assert!(
                put.seq > max,
                "{context}: new seq {} in shard {} is not above acknowledged {max}",
                put.seq,
                put.shard
            );
        }
        assert!(acked.insert((put.shard, put.seq), Ack { data, iteration }).is_none(), "{context}: seq reused");
        max_acked.insert(put.shard, put.seq);
    }
}
