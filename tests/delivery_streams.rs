//! Delivery streams in the engine: lifecycle and catalog replay, delivery to a directory and to
//! an HTTP endpoint (driven without HTTP: the test plays the endpoint), retries and the backup
//! with a manual clock, resumption after a restart, and power cuts after every file-system
//! operation (`FaultyFs`): nothing acknowledged is lost, and only the batch whose outcome was
//! not recorded is delivered twice.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::from_base64;
use weir::firehose::http::{Failure, DESTINATION_EXCEPTION};
use weir::firehose::{
    BackupMode, Buffering, ContentEncoding, DeliveryStreamConfig, Destination, DirectoryDestination, FileCompression,
    HttpDestination, HttpOutcome, HttpRequest, Recorded, Step,
};
use weir::format::Compression;
use weir::log::fault::FaultyFs;
use weir::log::io::Vfs;
use weir::{Clock, Durability, Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        background: false,
        segment_bytes: 4096,
        compression: Compression::None,
        ..Options::default()
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, options(clock)).expect("open")
}

fn to_dir(dir: &Path) -> DeliveryStreamConfig {
    DeliveryStreamConfig::new(Destination::Directory(DirectoryDestination::new(dir)))
}

fn to_http(backup: &Path, retry: Duration, interval: Duration) -> HttpDestination {
    let mut h = HttpDestination::new("http://127.0.0.1:9/ingest", backup);
    h.buffering = Buffering::of(1, interval);
    h.retry_ms = retry.as_millis() as u64;
    h.access_key = Some("secret-key".into());
    h.common_attributes.insert("team".into(), "data".into());
    h
}

fn read_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read");
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).expect("gunzip");
        out
    } else {
        bytes
    }
}

/// The records of a request body, decoded.
fn records_of(req: &HttpRequest) -> Vec<Vec<u8>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON body");
    assert_eq!(body["requestId"], req.request_id.as_str());
    assert!(body["timestamp"].as_u64().is_some());
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| from_base64(r["data"].as_str().expect("data")).expect("base64"))
        .collect()
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[test]
fn delivery_streams_are_created_listed_replayed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let mut config = to_dir(out.path());
    config.tags.insert("team".into(), "web".into());
    config.attributes.insert("BucketARN".into(), "arn:aws:s3:::b".into());
    engine.create_delivery_stream("clicks", config.clone()).expect("create");
    let http = DeliveryStreamConfig::new(Destination::Http(to_http(out.path(), Duration::ZERO, Duration::ZERO)));
    engine.create_delivery_stream("to-http", http.clone()).expect("create http");
    assert!(matches!(
        engine.create_delivery_stream("clicks", config.clone()),
        Err(Error::AlreadyExists { kind: "delivery stream", .. })
    ));
    for bad in ["", "a/b", "..", "x y", &"n".repeat(65)] {
        assert!(
            matches!(engine.create_delivery_stream(bad, config.clone()), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    let mut huge = to_dir(out.path());
    if let Destination::Directory(d) = &mut huge.destination {
        d.buffering = Buffering::of(129, Duration::ZERO);
    }
    assert!(matches!(engine.create_delivery_stream("huge", huge), Err(Error::InvalidArgument(_))));
    assert_eq!(engine.list_delivery_streams(), ["clicks", "to-http"]);
    assert!(engine.list_streams().is_empty(), "backing streams are not streams");
    let ids = engine.delivery_stream("clicks").unwrap().put_batch(&[b"a", b"", b"c"]).expect("put");
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3, "distinct record ids");
    let too_big = vec![0u8; weir::firehose::MAX_RECORD_BYTES + 1];
    assert!(matches!(engine.delivery_stream("clicks").unwrap().put(&too_big), Err(Error::TooLarge { .. })));
    let created = engine.delivery_stream("clicks").unwrap().def().created_ms;
    drop(engine);

    clock.advance(Duration::from_secs(5));
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.list_delivery_streams(), ["clicks", "to-http"]);
    let clicks = engine.delivery_stream("clicks").unwrap();
    assert_eq!(clicks.config(), &config, "settings, tags and attributes replay");
    assert_eq!(clicks.def().created_ms, created);
    assert_eq!(engine.delivery_stream("to-http").unwrap().config(), &http);
    assert_eq!(clicks.status().unwrap().pending_records, 3, "puts survive a reopen");
    engine.delete_delivery_stream("clicks").expect("delete");
    assert!(matches!(clicks.put(b"late"), Err(Error::Closed(_))), "a handle to a deleted one fails");
    assert!(matches!(engine.delivery_stream("clicks"), Err(Error::NotFound { .. })));
    assert!(matches!(engine.delete_delivery_stream("clicks"), Err(Error::NotFound { .. })));
    engine.create_delivery_stream("clicks", to_dir(out.path())).expect("create again");
    assert_eq!(engine.delivery_stream("clicks").unwrap().status().unwrap().pending_records, 0, "a fresh stream");
    drop(clicks);
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.delivery_stream("clicks").unwrap().status().unwrap().records_put, 0);
    assert!(!dir.path().join("firehose/clicks").exists(), "the deleted one's directory is gone");
    assert!(dir.path().join("firehose/clicks@1").exists());
}

#[test]
fn a_directory_destination_writes_files_by_size_and_by_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let d = DirectoryDestination {
        buffering: Buffering::of(1, Duration::from_secs(60)),
        ..DirectoryDestination::new(out.path().join("plain"))
    };
    engine.create_delivery_stream("plain", DeliveryStreamConfig::new(Destination::Directory(d))).unwrap();
    let gz = DirectoryDestination {
        compression: FileCompression::Gzip,
        newline_delimited: true,
        buffering: Buffering::of(1, Duration::ZERO),
        ..DirectoryDestination::new(out.path().join("gz"))
    };
    engine.create_delivery_stream("gz", DeliveryStreamConfig::new(Destination::Directory(gz))).unwrap();

    let plain = engine.delivery_stream("plain").unwrap();
    let mut delivery = plain.directory_delivery().unwrap();
    plain.put_batch(&[b"one", b"two"]).unwrap();
    assert!(delivery.step().unwrap().is_empty(), "buffered: neither 1 MiB nor 60 s");
    assert_eq!(delivery.next_due_ms(), Some(T0 + 60_000));
    clock.advance(Duration::from_secs(60));
    let files = delivery.step().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(read_file(&files[0]), b"onetwo", "concatenated as Firehose writes S3 objects");
    let big = vec![b'x'; 600 << 10];
    plain.put_batch(&[&big, &big]).unwrap();
    let files = delivery.step().unwrap();
    assert_eq!(files.len(), 1, "1 MiB buffered: written at once");
    assert_eq!(read_file(&files[0]).len(), 1200 << 10);
    assert_eq!(plain.status().unwrap().pending_records, 0);

    let gz = engine.delivery_stream("gz").unwrap();
    gz.put_batch(&[b"{\"a\":1}", b"{\"a\":2}"]).unwrap();
    let files = gz.directory_delivery().unwrap().step().unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".gz"), "{files:?}");
    assert_eq!(read_file(&files[0]), b"{\"a\":1}\n{\"a\":2}\n");
    assert!(matches!(gz.http_delivery(), Err(Error::InvalidArgument(_))));

    // Delivered records go, whole segments at a time; what is not delivered stays.
    let shard_dir = dir.path().join("firehose/plain/shard-000000");
    let segments = || {
        std::fs::read_dir(&shard_dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
            .count()
    };
    let before = segments();
    assert!(before > 1, "the big records rolled segments");
    engine.run_maintenance().unwrap();
    assert!(segments() < before, "delivered segments are dropped");
    plain.put(b"three").unwrap();
    engine.run_maintenance().unwrap();
    drop(delivery);
    drop(plain);
    drop(gz);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let plain = engine.delivery_stream("plain").unwrap();
    assert_eq!(plain.status().unwrap().pending_records, 1);
    let files = plain.directory_delivery().unwrap().run_once().unwrap();
    assert_eq!(read_file(&files[0]), b"three", "resumes after the last delivered record");
}

#[test]
fn an_http_destination_batches_retries_with_backoff_and_backs_up_what_keeps_failing() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let h = to_http(backup.path(), Duration::from_secs(10), Duration::from_secs(60));
    engine.create_delivery_stream("hook", DeliveryStreamConfig::new(Destination::Http(h))).unwrap();
    let hook = engine.delivery_stream("hook").unwrap();
    let mut delivery = hook.http_delivery().unwrap();
    assert!(matches!(delivery.next_step().unwrap(), Step::Idle));
    hook.put_batch(&[b"r1", b"\x00\xff", b"r3"]).unwrap();
    assert!(matches!(delivery.next_step().unwrap(), Step::WaitUntil(t) if t == T0 + 60_000));
    clock.advance(Duration::from_secs(60));
    let Step::Send(req) = delivery.next_step().unwrap() else { panic!("due") };
    assert_eq!(records_of(&req), [&b"r1"[..], b"\x00\xff", b"r3"]);
    assert_eq!(req.attempt, 1);
    assert_eq!(req.url, "http://127.0.0.1:9/ingest");
    assert_eq!(header(&req, "X-Amz-Firehose-Access-Key"), Some("secret-key"));
    assert_eq!(header(&req, "X-Amz-Firehose-Protocol-Version"), Some("1.0"));
    assert_eq!(header(&req, "X-Amz-Firehose-Request-Id"), Some(req.request_id.as_str()));
    assert_eq!(header(&req, "X-Amz-Firehose-Common-Attributes"), Some(r#"{"commonAttributes":{"team":"data"}}"#));
    assert_eq!(header(&req, "Content-Type"), Some("application/json"));
    assert_eq!(header(&req, "Content-Encoding"), None);
    assert!(delivery.record("another-id", HttpOutcome::Delivered).is_err(), "a stale answer changes nothing");

    // Fails at 0, 1, 3, 7 s (backoff 1, 2, 4 s), then 10 s (the deadline), then backs up.
    let fail = || HttpOutcome::Failed(Failure::new(DESTINATION_EXCEPTION, "500: down"));
    let mut attempts_at = Vec::new();
    let file = loop {
        let step = delivery.next_step().unwrap();
        let req2 = match step {
            Step::Send(r) => r,
            Step::WaitUntil(t) => {
                clock.set_ms(t);
                continue;
            }
            Step::Idle => panic!("the batch is in flight"),
        };
        assert_eq!(req2.request_id, req.request_id, "the same request id on every attempt");
        assert_eq!(req2.body, req.body);
        attempts_at.push(clock.now_ms() - (T0 + 60_000));
        match delivery.record(&req2.request_id, fail()).unwrap() {
            Recorded::Retry { .. } => {}
            Recorded::BackedUp { file, records } => {
                assert_eq!(records, 3);
                break file;
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(attempts_at, [0, 1000, 3000, 7000, 10_000]);
    assert!(file.starts_with(backup.path().join("http-endpoint-failed")), "{file:?}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(read_file(&file)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(from_base64(lines[1]["rawData"].as_str().unwrap()).unwrap(), b"\x00\xff");
    assert_eq!(lines[0]["attemptsMade"], 5);
    assert_eq!(lines[0]["errorCode"], DESTINATION_EXCEPTION);
    assert_eq!(lines[0]["errorMessage"], "500: down");
    assert_eq!(lines[0]["requestId"], req.request_id.as_str());
    assert_eq!(lines[0]["arrivalTimestamp"], T0);
    assert_eq!(lines[0]["attemptEndingTimestamp"], T0 + 70_000);
    assert_eq!(hook.status().unwrap().pending_records, 0, "backed up counts as done");

    // The next batch is delivered at its first attempt; the size limit makes a batch at once.
    let big = vec![b'y'; 700 << 10];
    hook.put_batch(&[&big, &big, b"tail"]).unwrap();
    let Step::Send(first) = delivery.next_step().unwrap() else { panic!("1 MiB buffered: due at once") };
    assert_eq!(records_of(&first).len(), 1, "a batch holds at most the buffer size");
    assert_eq!(
        delivery.record(&first.request_id, HttpOutcome::Delivered).unwrap(),
        Recorded::Delivered { records: 1, through_seq: 3 }
    );
    let Step::WaitUntil(at) = delivery.next_step().unwrap() else { panic!("the rest is under the size") };
    clock.set_ms(at);
    let Step::Send(second) = delivery.next_step().unwrap() else { panic!("the rest waited the interval") };
    assert_eq!(records_of(&second).len(), 2);
    assert_ne!(second.request_id, first.request_id);
    delivery.record(&second.request_id, HttpOutcome::Delivered).unwrap();
    assert!(matches!(delivery.next_step().unwrap(), Step::Idle));
    assert_eq!(hook.status().unwrap().pending_records, 0);
}

#[test]
fn many_empty_records_make_batches_of_at_most_ten_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let h = to_http(backup.path(), Duration::from_secs(10), Duration::from_secs(60));
    engine.create_delivery_stream("tiny", DeliveryStreamConfig::new(Destination::Http(h))).unwrap();
    let tiny = engine.delivery_stream("tiny").unwrap();
    let empty: Vec<&[u8]> = vec![b""; 500];
    for _ in 0..21 {
        tiny.put_batch(&empty).unwrap();
    }
    let mut delivery = tiny.http_delivery().unwrap();
    let Step::Send(first) = delivery.next_step().unwrap() else {
        panic!("10,000 records: due at once, whatever their size")
    };
    assert_eq!(records_of(&first).len(), weir::firehose::http::MAX_BATCH_RECORDS);
    delivery.record(&first.request_id, HttpOutcome::Delivered).unwrap();
    let Step::WaitUntil(at) = delivery.next_step().unwrap() else { panic!("the other 500 wait for the interval") };
    clock.set_ms(at);
    let Step::Send(rest) = delivery.next_step().unwrap() else { panic!() };
    assert_eq!(records_of(&rest).len(), 500);
}

#[test]
fn retry_duration_zero_backs_up_at_the_first_failure_and_gzip_bodies_decode() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let mut h = to_http(backup.path(), Duration::ZERO, Duration::ZERO);
    h.content_encoding = ContentEncoding::Gzip;
    h.backup.compression = FileCompression::Gzip;
    h.backup_mode = BackupMode::AllData;
    engine.create_delivery_stream("z", DeliveryStreamConfig::new(Destination::Http(h))).unwrap();
    let z = engine.delivery_stream("z").unwrap();
    z.put(b"payload").unwrap();
    let mut delivery = z.http_delivery().unwrap();
    let Step::Send(req) = delivery.next_step().unwrap() else { panic!("interval 0: due at once") };
    assert_eq!(header(&req, "Content-Encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&req.body[..]).read_to_end(&mut plain).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(from_base64(body["records"][0]["data"].as_str().unwrap()).unwrap(), b"payload");
    let failed = HttpOutcome::Failed(Failure::new(DESTINATION_EXCEPTION, "no"));
    let Recorded::BackedUp { file, .. } = delivery.record(&req.request_id, failed).unwrap() else { panic!() };
    assert!(file.to_string_lossy().ends_with(".jsonl.gz"));
    assert_eq!(z.status().unwrap().pending_records, 1, "AllData: the backup copy is still to be made");
    let copies = z.backup_delivery().unwrap().expect("AllData").run_once().unwrap();
    assert_eq!(read_file(&copies[0]), b"payload");
    assert_eq!(z.status().unwrap().pending_records, 0);
}

#[test]
fn a_restart_sends_the_unrecorded_batch_again_under_the_same_request_id_and_nothing_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let h = to_http(backup.path(), Duration::from_secs(60), Duration::ZERO);
    let first_id;
    {
        let engine = open(dir.path(), &clock);
        engine.create_delivery_stream("r", DeliveryStreamConfig::new(Destination::Http(h))).unwrap();
        let r = engine.delivery_stream("r").unwrap();
        r.put_batch(&[b"a", b"b"]).unwrap();
        let mut delivery = r.http_delivery().unwrap();
        let Step::Send(req) = delivery.next_step().unwrap() else { panic!() };
        delivery.record(&req.request_id, HttpOutcome::Delivered).unwrap();
        r.put_batch(&[b"c", b"d"]).unwrap();
        let Step::Send(req) = delivery.next_step().unwrap() else { panic!() };
        first_id = req.request_id.clone();
        // The process dies here: the POST went out, its answer was never recorded.
    }
    let engine = open(dir.path(), &clock);
    let r = engine.delivery_stream("r").unwrap();
    let mut delivery = r.http_delivery().unwrap();
    let Step::Send(req) = delivery.next_step().unwrap() else { panic!() };
    assert_eq!(records_of(&req), [b"c", b"d"], "only the unrecorded batch again");
    assert_eq!(req.request_id, first_id, "under the same request id, so the endpoint can drop it");
    delivery.record(&req.request_id, HttpOutcome::Delivered).unwrap();
    drop(delivery);
    drop(r);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let mut delivery = engine.delivery_stream("r").unwrap().http_delivery().unwrap();
    assert!(matches!(delivery.next_step().unwrap(), Step::Idle), "nothing recorded is sent again");
}

/// Runs a workload on `fs` until it crashes: puts of 3 records, each acknowledged put noted in
/// `acked`; the HTTP delivery, every third attempt failing, its recorded deliveries in
/// `recorded`; directory files made by a directory delivery stream.
fn workload(
    engine: &Engine,
    clock: &ManualClock,
    acked: &mut Vec<Vec<u8>>,
    recorded: &mut Vec<Vec<u8>>,
) -> weir::Result<()> {
    let hook = engine.delivery_stream("hook")?;
    let files = engine.delivery_stream("files")?;
    let mut http = hook.http_delivery()?;
    let mut dir = files.directory_delivery()?;
    for round in 0..12u32 {
        let batch: Vec<Vec<u8>> = (0..3).map(|i| format!("rec-{round}-{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = batch.iter().map(|b| &b[..]).collect();
        hook.put_batch(&refs)?;
        files.put_batch(&refs)?;
        acked.extend(batch);
        if let Step::Send(req) = http.next_step()? {
            let outcome = if round % 3 == 2 {
                HttpOutcome::Failed(Failure::new(DESTINATION_EXCEPTION, "flaky"))
            } else {
                HttpOutcome::Delivered
            };
            let delivered = outcome == HttpOutcome::Delivered;
            http.record(&req.request_id, outcome)?;
            if delivered {
                recorded.extend(records_of(&req));
            }
        }
        dir.step()?;
        clock.advance(Duration::from_millis(1500));
        engine.run_maintenance()?;
    }
    Ok(())
}

/// The whole files in `dir` of `fs` (not the temporary ones of a write cut short).
fn delivered_files(fs: &FaultyFs, dir: &Path) -> Vec<PathBuf> {
    fs.list_dir(dir).unwrap_or_default().into_iter().filter(|n| !n.ends_with(".tmp")).map(|n| dir.join(n)).collect()
}

#[test]
fn power_cuts_lose_no_acknowledged_record_and_repeat_only_the_unrecorded_batch() {
    let real = tempfile::tempdir().unwrap();
    let data = real.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let files_dir = real.path().join("files");
    let backup = real.path().join("backup");
    let setup = |fs: &Arc<FaultyFs>, clock: &Arc<ManualClock>| {
        fs.create_durable_dir_all(real.path());
        let engine = Engine::open(&data, Options { vfs: fs.clone(), durability: Durability::Always, ..options(clock) })
            .expect("open");
        let h = to_http(&backup, Duration::from_secs(2), Duration::ZERO);
        engine.create_delivery_stream("hook", DeliveryStreamConfig::new(Destination::Http(h))).unwrap();
        let d = DirectoryDestination {
            buffering: Buffering::of(1, Duration::from_secs(2)),
            ..DirectoryDestination::new(&files_dir)
        };
        engine.create_delivery_stream("files", DeliveryStreamConfig::new(Destination::Directory(d))).unwrap();
        engine
    };
    // A run without a crash counts the operations.
    let total = {
        let fs = Arc::new(FaultyFs::new());
        let clock = Arc::new(ManualClock::new(T0));
        let engine = setup(&fs, &clock);
        let before = fs.op_count();
        workload(&engine, &clock, &mut Vec::new(), &mut Vec::new()).expect("a run without faults");
        fs.op_count() - before
    };
    let stride = (total / 60).max(1);
    let mut mid_run = 0;
    for n in (0..total).step_by(stride as usize) {
        let context = format!("power cut after {n} of {total} operations");
        let fs = Arc::new(FaultyFs::new());
        let clock = Arc::new(ManualClock::new(T0));
        let (mut acked, mut recorded) = (Vec::new(), Vec::new());
        {
            let engine = setup(&fs, &clock);
            fs.crash_after_ops(n);
            let _ = workload(&engine, &clock, &mut acked, &mut recorded);
        }
        fs.power_cut();
        fs.clear_faults();
        mid_run += usize::from(!acked.is_empty());
        let engine = Engine::open(&data, Options { vfs: fs.clone(), ..options(&clock) })
            .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        // Run both deliveries to their end.
        let hook = engine.delivery_stream("hook").unwrap();
        let mut http = hook.http_delivery().unwrap();
        let mut after = Vec::new();
        loop {
            match http.next_step().unwrap() {
                Step::Send(req) => {
                    after.extend(records_of(&req));
                    http.record(&req.request_id, HttpOutcome::Delivered).unwrap();
                }
                Step::WaitUntil(t) => clock.set_ms(t),
                Step::Idle => break,
            }
        }
        let files = engine.delivery_stream("files").unwrap();
        files.directory_delivery().unwrap().run_once().unwrap();
        // HTTP: every acknowledged record reached the endpoint or the backup; what was recorded
        // as delivered before the cut is never sent again.
        let mut backed_up = Vec::new();
        for f in delivered_files(&fs, &backup.join("http-endpoint-failed")) {
            let content = fs.contents(&f).unwrap_or_else(|| panic!("{context}: {f:?} listed but not there"));
            for line in String::from_utf8(content).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{context}: {e}"));
                backed_up.push(from_base64(v["rawData"].as_str().unwrap()).unwrap());
            }
        }
        let recorded_set: BTreeSet<&Vec<u8>> = recorded.iter().collect();
        for r in &after {
            assert!(
                !recorded_set.contains(r),
                "{context}: {:?} was recorded as delivered and came again",
                String::from_utf8_lossy(r)
            );
        }
        let reached: BTreeSet<&Vec<u8>> = recorded.iter().chain(&after).chain(&backed_up).collect();
        for r in &acked {
            assert!(
                reached.contains(r),
                "{context}: acknowledged {:?} never reached the endpoint",
                String::from_utf8_lossy(r)
            );
        }
        // Directory: every acknowledged record is in a whole file.
        let mut in_files = Vec::new();
        for f in delivered_files(&fs, &files_dir) {
            in_files.push(String::from_utf8(fs.contents(&f).unwrap()).unwrap());
        }
        let all = in_files.concat();
        for r in &acked {
            assert!(
                all.contains(std::str::from_utf8(r).unwrap()),
                "{context}: {:?} is in no file",
                String::from_utf8_lossy(r)
            );
        }
    }
    assert!(mid_run > 0, "no cut fell after an acknowledged put");
}
