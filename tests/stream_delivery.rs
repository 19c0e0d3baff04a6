//! Delivery to files and throughput limits.

use std::sync::Arc;
use std::time::Duration;

use weir::stream::{DeliveryCompression, DeliveryConfig, DeliveryFormat, PutRecord};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

fn lines_of(files: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).expect("read delivered file");
        let text = if f.extension().is_some_and(|e| e == "zst") {
            zstd::bulk::decompress(&bytes, 64 << 20).expect("zstd")
        } else {
            bytes
        };
        for line in String::from_utf8(text).expect("utf-8").lines() {
            out.push(serde_json::from_str(line).expect("json line"));
        }
    }
    out
}

#[test]
fn delivery_writes_whole_files_and_resumes_after_the_last_delivered_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("out");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 2, None).expect("create");
    let stream = engine.stream("s").expect("stream");
    for i in 0..50 {
        stream.put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes()).expect("put");
    }
    let config = DeliveryConfig { compression: DeliveryCompression::Zstd, ..DeliveryConfig::new(out.path()) };
    let files = stream.deliver(config.clone()).expect("deliver").run_once().expect("run once");
    assert!(!files.is_empty());
    let mut delivered: Vec<String> =
        lines_of(&files).iter().map(|v| v["data"].as_str().expect("data").to_string()).collect();
    delivered.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(delivered, expected);
    assert!(std::fs::read_dir(out.path()).expect("ls").all(|e| !e
        .expect("entry")
        .path()
        .to_string_lossy()
        .ends_with(".tmp")));
    for i in 50..55 {
        stream.put(b"k", format!("v{i}").as_bytes()).expect("put");
    }
    let more = stream.deliver(config).expect("deliver").run_once().expect("second run");
    let again: Vec<String> = lines_of(&more).iter().map(|v| v["data"].as_str().expect("data").to_string()).collect();
    assert_eq!(again, (50..55).map(|i| format!("v{i}")).collect::<Vec<_>>(), "only what came after the checkpoint");
}

#[test]
fn delivery_waits_for_size_or_age_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("out");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 1, None).expect("create");
    let stream = engine.stream("s").expect("stream");
    stream.put(b"k", b"small").expect("put");
    let config = DeliveryConfig {
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(30),
        format: DeliveryFormat::Raw,
        ..DeliveryConfig::new(out.path())
    };
    let mut delivery = stream.deliver(config).expect("deliver");
    assert!(delivery.step().expect("step").is_empty(), "neither full nor old");
    clock.advance(Duration::from_secs(30));
    let files = delivery.step().expect("step");
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0]).expect("read"), b"small\n");
}

#[test]
fn throughput_limits_reject_writes_over_the_shard_rate_until_time_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream_with("limited", 1, None, true).expect("create");
    engine.create_stream("free", 1, None).expect("create");
    let data = vec![b'x'; 10];
    let batch: Vec<PutRecord> =
        (0..500).map(|_| PutRecord { partition_key: b"k", data: &data, explicit_hash_key: None }).collect();
    let limited = engine.stream("limited").expect("stream");
    limited.put_batch(&batch).expect("500");
    limited.put_batch(&batch).expect("1000");
    let err = limited.put(b"k", b"one more").expect_err("over 1,000 records/s");
    assert!(matches!(err, Error::ThroughputExceeded(_)) && err.is_retryable(), "{err}");
    clock.advance(Duration::from_millis(100));
    limited.put(b"k", b"after backing off").expect("refilled");
    let free = engine.stream("free").expect("stream");
    for _ in 0..4 {
        free.put_batch(&batch).expect("no limits by default");
    }
    drop(limited);
    drop(free);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let limited = engine.stream("limited").expect("stream");
    for _ in 0..2 {
        limited.put_batch(&batch).expect("fresh buckets after reopen");
    }
    assert!(limited.put(b"k", b"x").is_err(), "limits survive reopen");
}
