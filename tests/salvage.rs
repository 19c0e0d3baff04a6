//! Damage to every kind of file the engine writes, detected, then salvaged.
//!
//! A fixture data directory holds a stream (several segments, with indexes), its consumer
//! checkpoint log, the message log of a queue and a topic, and a catalog of a hundred-odd
//! records; the catalog and checkpoint logs are split into three segments, as they would be
//! after rolling. Each case damages one file of a copy (a flipped bit, a zeroed 4 KiB page, a
//! cut, the file deleted) and checks:
//!
//! - the damage is detected: `verify` names the file and the offset, and the engine either
//!   refuses to open or fails the read that reaches it, with `Error::Corrupt` in that log;
//! - records outside the damaged range stay readable (a log read before the damage and from the
//!   next segment on);
//! - after `salvage_dir` the engine opens, `verify` is clean, every record outside the reported
//!   lost ranges reads back byte for byte, reads skip the lost range without an error, the
//!   report names exactly the lost sequence numbers, and every file that was there before is
//!   still there or, with the same bytes, in the quarantine.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{copy_tree, test_options, to_hex, Rng};
use weir::format::batch::{decode_frame, EncodedBatch, FrameLayout, FrameStamp};
use weir::format::segment_header::SEGMENT_HEADER_LEN;
use weir::format::{Compression, Record, RecordRef, SegmentHeader};
use weir::inspect::salvage::QUARANTINE_DIR;
use weir::inspect::{salvage_dir, verify_dir, SalvageReport};
use weir::log::io::RealFs;
use weir::log::{Log, LogConfig};
use weir::queue::{QueueConfig, ReceiveOptions, SendOptions};
use weir::stream::{ConsumerConfig, StartingPosition};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock};

const START_MS: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: u64 = 16 << 10;
const PAGE: usize = 4096;
const STREAM: &str = "s";
const SHARD: &str = "streams/s/shard-000000";
const CHECKPOINTS: &str = "streams/s/checkpoints";
const CATALOG: &str = "catalog";
const MESSAGES: &str = "queues";

/// One frame of a segment: its bytes in the file and the sequence numbers it holds.
#[derive(Debug, Clone)]
struct FrameAt {
    bytes: Range<u64>,
    seqs: Range<u64>,
}

/// One segment file of a log.
#[derive(Debug, Clone)]
struct SegmentAt {
    /// Relative to the data directory.
    path: PathBuf,
    frames: Vec<FrameAt>,
}

/// A log of the fixture: its segments and every record in it.
#[derive(Debug, Clone)]
struct LogAt {
    segments: Vec<SegmentAt>,
    records: Vec<Record>,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    clock: Arc<ManualClock>,
    logs: BTreeMap<&'static str, LogAt>,
}

fn log_config() -> LogConfig {
    LogConfig { compression: Compression::None, ..LogConfig::default() }
}

/// Every record of the log in `dir`, read from its first on: (records, the error that stopped
/// the read, if any).
fn read_log(dir: &Path, from: Option<u64>) -> (Vec<Record>, Option<Error>) {
    let log = match Log::open(Arc::new(RealFs), dir, log_config(), 0) {
        Ok(log) => log,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut at = from.unwrap_or_else(|| log.first_seq());
    let mut out = Vec::new();
    loop {
        match log.read(at, 1000, 1 << 24) {
            Ok(records) => {
                let Some(last) = records.last() else { return (out, None) };
                at = last.seq + 1;
                out.extend(records);
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The header of a segment file.
fn header_of(path: &Path) -> SegmentHeader {
    SegmentHeader::decode(&std::fs::read(path).expect("read segment")).expect("fixture headers are whole")
}

/// A frame of one record for the segment at `path`, stamped `seq` and `time_ms`.
fn frame_for(path: &Path, key: &[u8], value: &[u8], seq: u64, time_ms: u64) -> Vec<u8> {
    let FrameLayout::V2 { salt } = header_of(path).frame_layout() else { panic!("a version-1 fixture segment") };
    let mut batch = EncodedBatch::encode(&[RecordRef { key, value }], Compression::None);
    batch.seal(&FrameStamp { base_seq: seq, time_ms, salt, durable_seq: seq }).to_vec()
}

/// The frames of a segment file.
fn frames_of(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).expect("read segment");
    let header = header_of(path);
    let mut at = header.len();
    let mut out = Vec::new();
    // The active segment ends in preallocated zeros.
    while at < bytes.len() && bytes[at..].iter().any(|&b| b != 0) {
        let h = decode_frame(&bytes[at..], header.frame_layout()).expect("fixture frames are whole");
        let end = at + h.frame_len as usize;
        out.push(FrameAt { bytes: at as u64..end as u64, seqs: h.base_seq..h.next_seq() });
        at = end;
    }
    out
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    common::segment_files(dir)
}

/// Splits the one segment of the log in `dir` into three at frame boundaries, as rolling would
/// have (the indexes are written by the next open).
fn split_in_three(dir: &Path) {
    let files = segment_paths(dir);
    assert_eq!(files.len(), 1, "{} should hold one segment before the split", dir.display());
    let bytes = std::fs::read(&files[0]).expect("read");
    let frames = frames_of(&files[0]);
    let FrameLayout::V2 { salt } = header_of(&files[0]).frame_layout() else { panic!("a version-1 fixture segment") };
    assert!(frames.len() >= 9, "{}: too few frames to split", dir.display());
    let end = frames.last().map_or(0, |f| f.bytes.end);
    let cut1 = frames.iter().position(|f| f.bytes.start >= end / 3).expect("first cut");
    let cut2 = frames.iter().position(|f| f.bytes.start >= 2 * end / 3).expect("second cut");
    std::fs::remove_file(&files[0]).expect("remove original");
    let _ = std::fs::remove_file(files[0].with_extension("idx"));
    for part in [&frames[..cut1], &frames[cut1..cut2], &frames[cut2..]] {
        let base = part[0].seqs.start;
        let mut out = SegmentHeader::new(base, salt, base).encode();
        out.extend_from_slice(&bytes[part[0].bytes.start as usize..part[part.len() - 1].bytes.end as usize]);
        std::fs::write(dir.join(format!("{base:020}.seg")), out).expect("write part");
    }
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pristine");
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut rng = Rng::new(7);
        {
            let options =
                weir::Options { lock_wait: Duration::from_secs(5), ..test_options(clock.clone(), SEGMENT_BYTES) };
            let engine = Engine::open(&dir, options).expect("open");
            engine.create_stream(STREAM, 1, None).expect("stream");
            engine.create_queue("q", QueueConfig::default()).expect("queue");
            engine.create_queue("tq", QueueConfig::default()).expect("queue");
            engine.create_topic("t", TopicConfig::default()).expect("topic");
            let raw = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
            engine.subscribe("t", Endpoint::Queue("tq".into()), raw).expect("subscribe");

            let stream = engine.stream(STREAM).expect("stream");
            for i in 0..320u64 {
                clock.advance(Duration::from_millis(10));
                let data = rng.bytes(150 + (i % 7) as usize * 20);
                if i % 10 == 9 {
                    let keys: Vec<Vec<u8>> = (0..3).map(|j| format!("k{i}-{j}").into_bytes()).collect();
                    let records: Vec<weir::stream::PutRecord<'_>> = keys
                        .iter()
                        .map(|k| weir::stream::PutRecord { partition_key: k, data: &data, explicit_hash_key: None })
                        .collect();
                    stream.put_batch(&records).expect("put batch");
                } else {
                    stream.put(format!("k{i}").as_bytes(), &data).expect("put");
                }
            }
            let q = engine.queue("q").expect("q");
            for i in 0..220u64 {
                clock.advance(Duration::from_millis(10));
                q.send(&rng.bytes(120 + (i % 5) as usize * 30), SendOptions::default()).expect("send");
                if i % 4 == 3 {
                    let got = q.receive(ReceiveOptions { max: 2, wait: Some(Duration::ZERO), ..Default::default() });
                    for m in got.expect("receive").iter().take(1) {
                        q.delete(&m.receipt_handle).expect("delete");
                    }
                }
            }
            let topic = engine.topic("t").expect("topic");
            for _ in 0..30 {
                clock.advance(Duration::from_millis(10));
                topic
                    .publish(format!("publish {}", to_hex(&rng.bytes(90))).as_bytes(), PublishOptions::default())
                    .expect("publish");
            }
            let mut consumer = stream.consumer("g", "w", ConsumerConfig::default()).expect("consumer");
            consumer.poll(10).expect("poll");
            for i in 0..420u64 {
                consumer.checkpoint(0, i % 300).expect("checkpoint");
            }
            drop(consumer);
            for i in 0..130 {
                engine.create_queue(&format!("pad-{i:03}"), QueueConfig::default()).expect("pad queue");
            }
        }
        split_in_three(&dir.join(CATALOG));
        split_in_three(&dir.join(CHECKPOINTS));
        // One open as the engine does it writes the indexes of the split logs' sealed segments.
        let options = weir::Options { lock_wait: Duration::from_secs(5), ..test_options(clock.clone(), SEGMENT_BYTES) };
        drop(Engine::open(&dir, options).expect("reopen"));
        let _ = std::fs::remove_file(dir.join("LOCK"));

        let mut logs = BTreeMap::new();
        for rel in [SHARD, CHECKPOINTS, CATALOG, MESSAGES] {
            let log_dir = dir.join(rel);
            let segments: Vec<SegmentAt> = segment_paths(&log_dir)
                .into_iter()
                .map(|p| SegmentAt {
                    frames: frames_of(&p),
                    path: p.strip_prefix(&dir).expect("relative").to_path_buf(),
                })
                .collect();
            assert!(segments.len() >= 3, "{rel}: {} segments, the cases want three", segments.len());
            let (records, error) = read_log(&log_dir, None);
            assert!(error.is_none(), "{rel}: pristine read failed: {error:?}");
            logs.insert(rel, LogAt { segments, records });
        }
        Fixture { _tmp: tmp, dir, clock, logs }
    }

    fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        copy_tree(&self.dir, &dir);
        (tmp, dir)
    }

    /// Opens wait a little for the lock: a child process another test is starting holds this
    /// process's open files (the lock file's included) between its fork and its exec.
    fn options(&self) -> weir::Options {
        weir::Options { lock_wait: Duration::from_secs(5), ..test_options(self.clock.clone(), SEGMENT_BYTES) }
    }
}

/// What a case does to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    FlipBit,
    ZeroPage,
    Truncate,
    Delete,
}

const DAMAGES: [Damage; 4] = [Damage::FlipBit, Damage::ZeroPage, Damage::Truncate, Damage::Delete];

/// Damages segment `seg` of log `rel` in `dir`. Returns the sequence numbers lost with it and
/// where verify must report the damage (file, offset).
fn damage_segment(fx: &Fixture, dir: &Path, rel: &str, seg: usize, damage: Damage) -> (BTreeSet<u64>, PathBuf, u64) {
    let log = &fx.logs[rel];
    let segment = &log.segments[seg];
    let path = dir.join(&segment.path);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = &segment.frames[segment.frames.len() / 2];
    let seqs_of = |frames: &[&FrameAt]| -> BTreeSet<u64> { frames.iter().flat_map(|f| f.seqs.clone()).collect() };
    match damage {
        Damage::FlipBit => {
            bytes[middle.bytes.start as usize + 45] ^= 0x10;
            std::fs::write(&path, &bytes).expect("write");
            (seqs_of(&[middle]), path, middle.bytes.start)
        }
        Damage::ZeroPage => {
            let page = PAGE as u64..(2 * PAGE as u64).min(bytes.len() as u64);
            bytes[page.start as usize..page.end as usize].fill(0);
            std::fs::write(&path, &bytes).expect("write");
            let hit: Vec<&FrameAt> =
                segment.frames.iter().filter(|f| f.bytes.start < page.end && f.bytes.end > page.start).collect();
            assert!(segment.frames.last().expect("frames").bytes.start >= page.end, "{rel}: no frame after the page");
            let first = hit[0].bytes.start;
            (seqs_of(&hit), path, first)
        }
        Damage::Truncate => {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(middle.bytes.start + 10))
                .expect("truncate");
            let gone: Vec<&FrameAt> = segment.frames.iter().filter(|f| f.bytes.start >= middle.bytes.start).collect();
            (seqs_of(&gone), path, middle.bytes.start)
        }
        Damage::Delete => {
            std::fs::remove_file(&path).expect("delete");
            let all: Vec<&FrameAt> = segment.frames.iter().collect();
            // Verify reports the gap at the start of the segment after it.
            (seqs_of(&all), dir.join(&log.segments[seg + 1].path), 0)
        }
    }
}

/// Damages the index of segment `seg` of log `rel`; returns the index's path.
fn damage_index(fx: &Fixture, dir: &Path, rel: &str, seg: usize, damage: Damage) -> PathBuf {
    let path = dir.join(&fx.logs[rel].segments[seg].path).with_extension("idx");
    let mut bytes = std::fs::read(&path).expect("the sealed segment has an index");
    match damage {
        Damage::FlipBit => {
            let at = bytes.len() / 2;
            bytes[at] ^= 0x02;
            std::fs::write(&path, &bytes).expect("write");
        }
        Damage::ZeroPage => {
            let end = bytes.len().min(PAGE);
            bytes[..end].fill(0);
            std::fs::write(&path, &bytes).expect("write");
        }
        Damage::Truncate => {
            bytes.truncate(bytes.len() / 2);
            std::fs::write(&path, &bytes).expect("write");
        }
        Damage::Delete => std::fs::remove_file(&path).expect("delete"),
    }
    path
}

/// Every regular file under `dir` (relative path -> bytes), the lock file and the logs' `HEAD`
/// files aside (the engine's own state, rewritten by any open that moves it, salvage's proving
/// open included).
fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_type().expect("type").is_dir() {
                walk(root, &path, out);
            } else if entry.file_name() != "LOCK" && entry.file_name() != "HEAD" {
                out.insert(
                    path.strip_prefix(root).expect("relative").to_path_buf(),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Every file that was in `before` is still in `dir` with its bytes, or in the quarantine.
fn assert_nothing_deleted(dir: &Path, before: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    for (rel, bytes) in before {
        if std::fs::read(dir.join(rel)).is_ok_and(|now| &now == bytes) {
            continue;
        }
        let kept = dir.join(QUARANTINE_DIR).join(rel);
        let name = kept.file_name().expect("name").to_string_lossy().into_owned();
        let parent = kept.parent().expect("parent");
        let found = std::fs::read_dir(parent).into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n == name || n.starts_with(&format!("{name}."))) && std::fs::read(e.path()).is_ok_and(|b| &b == bytes)
        });
        assert!(found, "{what}: {} changed or vanished and its bytes are not in the quarantine", rel.display());
    }
}

/// Expands ranges into the sequence numbers they hold.
fn seq_set(ranges: &[(u64, u64)]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|&(s, e)| s..e).collect()
}

/// The checks after a salvage: the engine opens, verify is clean, every log reads through
/// (skipping the lost range) and serves exactly the pristine records outside `lost` of `rel`.
fn check_after_salvage(fx: &Fixture, dir: &Path, report: &SalvageReport, rel: &str, lost: &BTreeSet<u64>, what: &str) {
    assert!(report.engine_opened, "{what}: the engine does not open after salvage: {:?}", report.open_error);
    let log_report = report.log(rel).unwrap_or_else(|| panic!("{what}: no report for {rel}"));
    assert_eq!(&seq_set(&log_report.lost), lost, "{what}: the report names other sequence numbers as lost");
    for other in report.logs.iter().filter(|l| l.relative != Path::new(rel)) {
        assert!(other.lost.is_empty(), "{what}: {} lost {:?}", other.relative.display(), other.lost);
    }
    assert_eq!(report.metadata_lost, rel == CATALOG && !lost.is_empty(), "{what}: metadata_lost");
    {
        // No snapshot at this close: the checks that salvage deleted nothing come after it.
        let options = weir::Options { snapshot_on_close: false, ..fx.options() };
        let engine = Engine::open(dir, options).unwrap_or_else(|e| panic!("{what}: open after salvage: {e}"));
        let stream = engine.stream(STREAM).expect("stream");
        let outcome = common::read_to_end(&stream, 0, StartingPosition::TrimHorizon, 100);
        assert!(outcome.error.is_none(), "{what}: a read through the stream fails: {:?}", outcome.error);
    }
    let problems = verify_dir(dir).expect("verify");
    assert!(problems.is_empty(), "{what}: verify after salvage: {problems:#?}");
    for (name, log) in &fx.logs {
        let (records, error) = read_log(&dir.join(name), None);
        assert!(error.is_none(), "{what}: reading {name} after salvage: {error:?}");
        let gone: &BTreeSet<u64> = if *name == rel { lost } else { &BTreeSet::new() };
        let expected: Vec<&Record> = log.records.iter().filter(|r| !gone.contains(&r.seq)).collect();
        let served: Vec<&Record> = records.iter().collect();
        assert_eq!(
            served.len(),
            expected.len(),
            "{what}: {name} serves {} records, expected {}",
            served.len(),
            expected.len()
        );
        for (s, e) in served.iter().zip(&expected) {
            assert_eq!(s, e, "{what}: {name}: a record differs after salvage");
        }
    }
}

/// One damage case of a segment of log `rel`.
fn segment_case(fx: &Fixture, rel: &'static str, seg: usize, damage: Damage) {
    let what = format!("{rel} segment {seg}, {damage:?}");
    let (_tmp, dir) = fx.copy();
    let (lost, report_path, report_offset) = damage_segment(fx, &dir, rel, seg, damage);
    let log = &fx.logs[rel];

    // Verify names the file and the offset.
    let problems = verify_dir(&dir).expect("verify");
    assert!(
        problems.iter().any(|p| p.path == report_path && p.offset == report_offset),
        "{what}: verify does not report {}:{report_offset}: {problems:#?}",
        report_path.display()
    );
    // The engine refuses to open, or the read that reaches the damage fails, naming the log.
    let log_dir = dir.join(rel);
    {
        let probe = tempfile::tempdir().expect("tempdir");
        copy_tree(&dir, probe.path());
        let probe_log = probe.path().join(rel);
        // Without the queue index snapshot the clean close left: an open from it does not read
        // the records it reflects (the damage then shows at the first read of a message whose
        // body is there, and in verify), while a full replay reads them all.
        for entry in std::fs::read_dir(probe.path().join("queues")).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|x| x == "snap") {
                std::fs::remove_file(entry.path()).expect("remove the snapshot");
            }
        }
        let in_log = |e: &Error| matches!(e, Error::Corrupt { path, .. } if path.starts_with(&probe_log));
        match Engine::open(probe.path(), fx.options()) {
            Err(e) => assert!(in_log(&e), "{what}: open fails with something else: {e:?}"),
            Ok(engine) => {
                let stream = engine.stream(STREAM).expect("stream");
                let outcome = common::read_to_end(&stream, 0, StartingPosition::TrimHorizon, 100);
                let error =
                    outcome.error.unwrap_or_else(|| panic!("{what}: the engine opens and reads past the damage"));
                assert!(in_log(&error), "{what}: read fails with something else: {error:?}");
                let message = error.to_string();
                assert!(message.contains("offset"), "{what}: the message gives no offset: {message}");
            }
        }
    }
    // Records outside the damaged range stay readable, below it and from the next segment on.
    {
        let probe = tempfile::tempdir().expect("tempdir");
        copy_tree(&log_dir, probe.path());
        let first_lost = *lost.first().expect("something is lost");
        let (before, error) = read_log(probe.path(), None);
        let expected_before: Vec<&Record> = log.records.iter().filter(|r| r.seq < first_lost).collect();
        assert_eq!(before.iter().collect::<Vec<_>>(), expected_before, "{what}: records before the damage");
        assert!(error.is_some(), "{what}: reading through the damage does not fail");
        let resume = log.segments[seg + 1].frames[0].seqs.start;
        let (after, error) = read_log(probe.path(), Some(resume));
        assert!(error.is_none(), "{what}: reading after the damaged segment: {error:?}");
        let expected_after: Vec<&Record> = log.records.iter().filter(|r| r.seq >= resume).collect();
        assert_eq!(after.iter().collect::<Vec<_>>(), expected_after, "{what}: records after the damage");
    }

    let before = snapshot_files(&dir);
    let report = salvage_dir(&dir, &mut |_, _| {}).unwrap_or_else(|e| panic!("{what}: salvage failed: {e}"));
    check_after_salvage(fx, &dir, &report, rel, &lost, &what);
    assert_nothing_deleted(&dir, &before, &what);
    let damaged = dir.join(&log.segments[seg].path);
    if damage != Damage::Delete {
        let quarantined = dir.join(QUARANTINE_DIR).join(&log.segments[seg].path);
        assert_eq!(
            std::fs::read(&quarantined).ok(),
            before.get(&log.segments[seg].path).cloned(),
            "{what}: quarantine"
        );
        let listed = &report.log(rel).expect("log").quarantined;
        assert!(listed.contains(&quarantined), "{what}: the report does not list {}", quarantined.display());
    }
    let _ = damaged;
    // A second salvage finds nothing more to do.
    let again = salvage_dir(&dir, &mut |_, _| {}).expect("second salvage");
    assert!(again.is_clean(), "{what}: a second salvage changed things: {again:#?}");
}

#[test]
fn damage_to_a_stream_segment_is_detected_and_salvaged() {
    let fx = Fixture::new();
    for damage in DAMAGES {
        segment_case(&fx, SHARD, 1, damage);
    }
}

#[test]
fn damage_to_a_message_log_segment_is_detected_and_salvaged() {
    let fx = Fixture::new();
    for damage in DAMAGES {
        segment_case(&fx, MESSAGES, 1, damage);
    }
}

#[test]
fn damage_to_a_catalog_segment_is_detected_and_salvaged_as_lost_metadata() {
    let fx = Fixture::new();
    for damage in DAMAGES {
        segment_case(&fx, CATALOG, 1, damage);
    }
}

#[test]
fn damage_to_a_checkpoint_log_segment_is_detected_and_salvaged() {
    let fx = Fixture::new();
    for damage in DAMAGES {
        segment_case(&fx, CHECKPOINTS, 1, damage);
    }
}

#[test]
fn damage_to_a_stream_index_is_detected_rebuilt_and_loses_nothing() {
    let fx = Fixture::new();
    for damage in DAMAGES {
        let what = format!("shard index, {damage:?}");
        let (_tmp, dir) = fx.copy();
        let index = damage_index(&fx, &dir, SHARD, 1, damage);
        let problems = verify_dir(&dir).expect("verify");
        if damage == Damage::Delete {
            // A missing index is an accelerator gone, rebuilt at open: not a problem.
            assert!(problems.is_empty(), "{what}: {problems:#?}");
        } else {
            assert!(problems.iter().any(|p| p.path == index), "{what}: verify misses the index: {problems:#?}");
        }
        {
            let probe = tempfile::tempdir().expect("tempdir");
            copy_tree(&dir, probe.path());
            let engine = Engine::open(probe.path(), fx.options()).expect("open");
            let stream = engine.stream(STREAM).expect("stream");
            let shard = stream.shard(0).expect("shard");
            let segment = dir.join(&fx.logs[SHARD].segments[1].path);
            let rebuilt: Vec<PathBuf> = shard
                .log()
                .recovery_report()
                .rebuilt_indexes
                .iter()
                .map(|p| dir.join(p.strip_prefix(probe.path()).expect("in probe")))
                .collect();
            assert_eq!(rebuilt, vec![segment], "{what}: the engine rebuilds the index at open");
            let outcome = common::read_to_end(&stream, 0, StartingPosition::TrimHorizon, 100);
            assert!(outcome.error.is_none(), "{what}: {:?}", outcome.error);
            assert_eq!(outcome.records.len(), fx.logs[SHARD].records.len(), "{what}");
        }
        let before = snapshot_files(&dir);
        let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
        check_after_salvage(&fx, &dir, &report, SHARD, &BTreeSet::new(), &what);
        assert_nothing_deleted(&dir, &before, &what);
        if damage != Damage::Delete {
            let listed = &report.log(SHARD).expect("log").quarantined;
            assert_eq!(listed.len(), 1, "{what}: only the index is set aside: {listed:?}");
        }
    }
}

#[test]
fn a_torn_tail_of_the_last_segment_is_cut_into_the_quarantine() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let segment = fx.logs[SHARD].segments.last().expect("segments");
    let last = dir.join(&segment.path);
    let whole = std::fs::read(&last).expect("read");
    let frames_end = segment.frames.last().expect("frames").bytes.end as usize;
    // Half a frame where the next append goes, over the preallocated zeros (or past the end of
    // the file, if there were none): an append the process died in the middle of.
    let next = fx.logs[SHARD].records.last().expect("records").seq + 1;
    let frame = frame_for(&last, b"k", &[7u8; 300], next, START_MS + 1_000_000);
    let torn = &frame[..frame.len() / 2];
    let mut bytes = whole.clone();
    bytes.resize(bytes.len().max(frames_end + torn.len()), 0);
    bytes[frames_end..frames_end + torn.len()].copy_from_slice(torn);
    std::fs::write(&last, &bytes).expect("write");

    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    let log = report.log(SHARD).expect("shard");
    let cut = &bytes[frames_end..];
    assert_eq!(log.torn_bytes_cut, cut.len() as u64, "the torn frame and what follows it");
    assert!(log.lost.is_empty(), "a torn write loses no acknowledged record: {:?}", log.lost);
    assert_eq!(
        std::fs::read(&last).expect("read"),
        &whole[..frames_end],
        "the segment is cut back to its whole frames"
    );
    assert_eq!(log.quarantined.len(), 1, "{:?}", log.quarantined);
    assert_eq!(std::fs::read(&log.quarantined[0]).expect("read"), cut, "the quarantine holds exactly the cut bytes");
    check_after_salvage(&fx, &dir, &report, SHARD, &BTreeSet::new(), "torn tail");
}

/// Appends one checksum-valid frame holding `value` to the last segment of the log `rel`.
fn append_raw_frame(fx: &Fixture, dir: &Path, rel: &str, value: &[u8]) -> u64 {
    let log = &fx.logs[rel];
    let seq = log.records.last().expect("records").seq + 1;
    let time = log.records.last().expect("records").time_ms;
    let segment = log.segments.last().expect("segments");
    let path = dir.join(&segment.path);
    let frame = frame_for(&path, b"", value, seq, time);
    let mut bytes = std::fs::read(&path).expect("read");
    // Where the next append goes: over the preallocated zeros, if there are any.
    let at = segment.frames.last().map_or(SEGMENT_HEADER_LEN, |f| f.bytes.end as usize);
    bytes.resize(bytes.len().max(at + frame.len()), 0);
    bytes[at..at + frame.len()].copy_from_slice(&frame);
    std::fs::write(&path, &bytes).expect("write");
    seq
}

#[test]
fn a_catalog_record_that_is_not_json_is_set_aside_and_reported_as_lost_metadata() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let seq = append_raw_frame(&fx, &dir, CATALOG, b"{\"op\":\"put_queue\", this is not JSON");
    match Engine::open(&dir, fx.options()) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("does not decode"), "{reason}"),
        other => panic!("a catalog record that does not decode must stop the open: {other:?}"),
    }
    let before = snapshot_files(&dir);
    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    assert!(report.metadata_lost, "{report:#?}");
    let catalog = report.log(CATALOG).expect("catalog");
    assert_eq!(catalog.lost, vec![(seq, seq + 1)]);
    assert!(catalog.undecodable_records);
    check_after_salvage(&fx, &dir, &report, CATALOG, &BTreeSet::from([seq]), "bad catalog JSON");
    assert_nothing_deleted(&dir, &before, "bad catalog JSON");
    // The lost number is never handed out again: the next catalog record comes after it.
    let engine = Engine::open(&dir, fx.options()).expect("open");
    engine.create_queue("after-salvage", QueueConfig::default()).expect("create");
    drop(engine);
    let (records, error) = read_log(&dir.join(CATALOG), None);
    assert!(error.is_none(), "{error:?}");
    assert!(records.last().expect("records").seq > seq, "a catalog sequence number was reused");
}

#[test]
fn a_message_log_record_that_does_not_decode_is_set_aside() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let seq = append_raw_frame(&fx, &dir, MESSAGES, &[0xEE, 1, 2, 3]);
    assert!(matches!(Engine::open(&dir, fx.options()), Err(Error::Corrupt { .. })), "the open must fail");
    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    assert!(!report.metadata_lost);
    check_after_salvage(&fx, &dir, &report, MESSAGES, &BTreeSet::from([seq]), "bad message record");
}

#[test]
fn salvage_of_a_whole_directory_changes_nothing_and_reports_progress() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let before = snapshot_files(&dir);
    let mut calls: Vec<(u64, u64)> = Vec::new();
    let report = salvage_dir(&dir, &mut |done, total| calls.push((done, total))).expect("salvage");
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.engine_opened);
    assert!(!dir.join(QUARANTINE_DIR).exists(), "nothing quarantined, no quarantine directory");
    assert!(!calls.is_empty() && calls.windows(2).all(|w| w[0].0 <= w[1].0), "progress moves forward: {calls:?}");
    let (done, total) = *calls.last().expect("calls");
    assert_eq!(done, total, "progress ends at the total");
    assert_eq!(done, report.bytes_checked);
    for (rel, bytes) in &before {
        if rel.extension().is_some_and(|e| e == "seg") {
            assert_eq!(std::fs::read(dir.join(rel)).ok().as_ref(), Some(bytes), "{} changed", rel.display());
        }
    }
}

#[test]
fn a_missing_first_catalog_segment_is_salvaged_as_lost_metadata() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let first = &fx.logs[CATALOG].segments[0];
    std::fs::remove_file(dir.join(&first.path)).expect("delete");
    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    let lost: BTreeSet<u64> = first.frames.iter().flat_map(|f| f.seqs.clone()).collect();
    assert_eq!(seq_set(&report.log(CATALOG).expect("catalog").lost), lost);
    assert!(report.metadata_lost);
    assert!(report.engine_opened, "{:?}", report.open_error);
}

#[test]
fn a_catalog_whose_first_segment_is_gone_does_not_open_silently() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    std::fs::remove_file(dir.join(&fx.logs[CATALOG].segments[0].path)).expect("delete");
    match Engine::open(&dir, fx.options()) {
        Err(Error::Corrupt { .. }) => {}
        Ok(engine) => panic!(
            "opened with {} streams and {} queues: the stream, queues and topic created first are gone without an error",
            engine.list_streams().len(),
            engine.list_queues().len()
        ),
        Err(other) => panic!("{other:?}"),
    }
}

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env_remove("WEIR_DATA")
        .env_remove("WEIR_LOCK_WAIT_MS")
        .output()
        .expect("run weir")
}

#[test]
fn the_cli_verifies_salvages_and_prints_the_report() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let (lost, path, offset) = damage_segment(&fx, &dir, SHARD, 1, Damage::ZeroPage);
    let data = dir.to_str().expect("utf-8 path");

    let out = weir(&["verify", data]);
    assert_eq!(out.status.code(), Some(1), "verify of a damaged directory exits 1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{}:{offset}:", path.display())), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("checked"), "no progress when stderr is not a terminal");

    let copy = tempfile::tempdir().expect("tempdir");
    copy_tree(&dir, copy.path());
    let out = weir(&["salvage", data]);
    assert!(out.status.success(), "salvage exits 0 once the engine opens: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = lost.first().expect("lost");
    let last = lost.last().expect("lost");
    assert!(text.contains(&format!("lost: sequence numbers {first}..={last}")), "{text}");
    assert!(text.contains("quarantined:") && text.contains("the engine opens: yes"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("checked"), "no progress when stderr is not a terminal");
    let out = weir(&["verify", data]);
    assert!(out.status.success(), "verify after salvage: {}", String::from_utf8_lossy(&out.stdout));

    let out = weir(&["salvage", "--json", copy.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["engine_opened"], true);
    let shard = json["logs"].as_array().expect("logs").iter().find(|l| l["relative"] == SHARD).expect("shard");
    assert_eq!(shard["lost"], serde_json::json!([[first, last + 1]]));

    let out = weir(&["salvage", copy.path().join("nowhere").to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "salvage of a missing directory fails");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("weir: "), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_deleted_active_segment_is_detected_and_salvaged_as_lost() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let last = fx.logs[SHARD].segments.last().expect("segments").clone();
    let path = dir.join(&last.path);
    std::fs::remove_file(&path).expect("delete the active segment");
    let lost: BTreeSet<u64> = last.frames.iter().flat_map(|f| f.seqs.clone()).collect();
    assert!(!lost.is_empty(), "the active segment held records");

    let problems = verify_dir(&dir).expect("verify");
    assert!(problems.iter().any(|p| p.path == path && p.message.contains("active segment")), "{problems:#?}");
    {
        let probe = tempfile::tempdir().expect("tempdir");
        copy_tree(&dir, probe.path());
        let engine = Engine::open(probe.path(), fx.options()).expect("the engine opens and reports the loss");
        let stream = engine.stream(STREAM).expect("stream");
        let report = stream.shard(0).expect("shard").log().recovery_report().clone();
        assert!(report.damaged.iter().any(|(p, _)| p.ends_with(&last.path)), "{report:?}");
        let outcome = common::read_to_end(&stream, 0, StartingPosition::TrimHorizon, 100);
        assert!(matches!(outcome.error, Some(Error::Corrupt { .. })), "the lost records are not skipped silently");
    }
    let before = snapshot_files(&dir);
    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    check_after_salvage(&fx, &dir, &report, SHARD, &lost, "deleted active segment");
    assert_nothing_deleted(&dir, &before, "deleted active segment");
}

#[test]
fn a_head_file_that_does_not_decode_is_set_aside_and_written_again() {
    let fx = Fixture::new();
    let (_tmp, dir) = fx.copy();
    let head = dir.join(SHARD).join("HEAD");
    let mut bytes = std::fs::read(&head).expect("read");
    bytes[20] ^= 0x01;
    std::fs::write(&head, &bytes).expect("write");
    match Engine::open(&dir, fx.options()) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, head),
        other => panic!("a HEAD that does not decode must stop the open: {other:?}"),
    }
    let report = salvage_dir(&dir, &mut |_, _| {}).expect("salvage");
    check_after_salvage(&fx, &dir, &report, SHARD, &BTreeSet::new(), "bad HEAD");
    let log = report.log(SHARD).expect("shard");
    let kept = dir.join(QUARANTINE_DIR).join(SHARD).join("HEAD");
    assert!(log.quarantined.contains(&kept), "{:?}", log.quarantined);
    assert_eq!(std::fs::read(&kept).expect("the old HEAD is kept"), bytes);
    assert!(log.written.contains(&head), "{:?}", log.written);
    // Numbers go on above every record the shard ever held.
    let last = fx.logs[SHARD].records.last().expect("records").seq;
    let engine = Engine::open(&dir, fx.options()).expect("open");
    let put = engine.stream(STREAM).and_then(|s| s.put(b"k", b"after")).expect("put");
    assert!(put.seq > last, "{} reuses a number", put.seq);
}
