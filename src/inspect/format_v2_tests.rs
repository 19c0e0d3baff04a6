//! `verify` and `inspect` on what format version 2 adds: skipped ranges, the HEAD file, and
//! version-1 segments beside version-2 ones.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::format::batch::v1_frame_from;
use crate::format::{Compression, EncodedBatch, FrameStamp, RecordRef, SegmentVersion};
use crate::log::io::RealFs;
use crate::log::segment::segment_file_name;
use crate::log::{Durability, Log, LogConfig};

fn config() -> LogConfig {
    LogConfig { segment_bytes: 1 << 20, durability: Durability::Never, ..LogConfig::default() }
}

fn append(log: &Log, n: u64) {
    for i in 0..n {
        log.append(&[RecordRef { key: b"k", value: format!("v{i}").as_bytes() }], 10 + i).expect("append");
    }
}

/// A log whose process died after its writes (the page cache kept them): the next open skips
/// the numbers reserved past them.
fn log_with_a_skip(dir: &Path) -> (u64, u64) {
    let log = Log::open(Arc::new(RealFs), dir, config(), 0).expect("open");
    append(&log, 3);
    // The process dies: no clean close, the reservation stays raised.
    std::mem::forget(log);
    let log = Log::open(Arc::new(RealFs), dir, config(), 0).expect("reopen");
    let skipped = log.recovery_report().skipped.clone();
    assert_eq!(skipped.len(), 1, "{:?}", log.recovery_report());
    append(&log, 2);
    skipped[0]
}

#[test]
fn a_skipped_range_is_no_gap_to_verify_and_inspect_shows_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("streams/s/shard-000000");
    let (from, to) = log_with_a_skip(&dir);
    assert_eq!(verify_dir(tmp.path()).expect("verify"), Vec::<Problem>::new());
    let report = inspect_path(tmp.path()).expect("inspect");
    let skipping: Vec<&SegmentReport> = report.segments().filter(|s| s.skipped_from.is_some()).collect();
    assert_eq!(skipping.len(), 1);
    assert_eq!((skipping[0].skipped_from, skipping[0].base_seq), (Some(from), to));
    assert!(report.segments().all(|s| s.version == Some(2)));
    let head = report.logs[0].head.expect("HEAD");
    assert_eq!((head.active_base, head.reserved_next, head.durable_next), (to, to + 2, to + 2));
}

#[test]
fn verify_reports_a_missing_active_segment_and_a_head_that_does_not_decode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("queues");
    let log = Log::open(Arc::new(RealFs), &dir, LogConfig { segment_bytes: 300, ..config() }, 0).expect("open");
    append(&log, 12);
    let last = log.segment_infos().last().cloned().expect("segment");
    drop(log);
    fs::remove_file(&last.path).expect("delete the active segment");
    let problems = verify_dir(tmp.path()).expect("verify");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, last.path);
    assert!(problems[0].message.contains("active segment"), "{}", problems[0]);

    let head = dir.join(crate::format::head::HEAD_FILE);
    let mut bytes = fs::read(&head).expect("read");
    bytes[17] ^= 1;
    fs::write(&head, &bytes).expect("write");
    let problems = verify_dir(tmp.path()).expect("verify");
    assert!(problems.iter().any(|p| p.path == head && p.message.contains("checksum")), "{problems:?}");
    let report = inspect_path(tmp.path()).expect("inspect");
    assert!(report.logs[0].head.is_none() && report.logs[0].head_problem.is_some());
}

#[test]
fn a_log_that_ends_below_its_durable_point_is_a_problem() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("catalog");
    let log = Log::open(Arc::new(RealFs), &dir, config(), 0).expect("open");
    append(&log, 4);
    let info = log.segment_infos()[0].clone();
    drop(log);
    // Cut at a frame boundary: the frames left are whole, only HEAD knows records are gone.
    let bytes = fs::read(&info.path).expect("read");
    let frame_len = (info.len as usize - 48) / 4;
    fs::write(&info.path, &bytes[..48 + 3 * frame_len]).expect("cut");
    let problems = verify_dir(tmp.path()).expect("verify");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("records 3 to 3 are missing"), "{}", problems[0]);
}

#[test]
fn version_1_segments_verify_and_inspect_beside_version_2_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("streams/s/shard-000000");
    fs::create_dir_all(&dir).expect("mkdir");
    let mut v1 = SegmentHeader { base_seq: 0, version: SegmentVersion::V1 }.encode();
    for seq in 0..3u64 {
        let stamp = FrameStamp { base_seq: seq, time_ms: 5, salt: 0, durable_seq: seq };
        let frame =
            EncodedBatch::encode(&[RecordRef { key: b"k", value: b"old" }], Compression::None).seal(&stamp).to_vec();
        v1.extend(v1_frame_from(&frame));
    }
    fs::write(dir.join(segment_file_name(0)), v1).expect("write");
    let log = Log::open(Arc::new(RealFs), &dir, config(), 0).expect("open the version-1 log");
    append(&log, 2);
    drop(log);
    assert_eq!(verify_dir(tmp.path()).expect("verify"), Vec::<Problem>::new());
    let report = inspect_path(tmp.path()).expect("inspect");
    let versions: Vec<Option<u16>> = report.segments().map(|s| s.version).collect();
    assert_eq!(versions, vec![Some(1), Some(2)]);
    let records: Vec<Record> =
        segment_records(&dir.join(segment_file_name(0))).expect("open").collect::<Result<_>>().expect("records");
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].value.as_ref(), b"old");
}
