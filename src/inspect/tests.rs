//! Verify and inspect on logs built through the real log code, then damaged by hand.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::format::{IndexFile, RecordRef};
use crate::log::io::RealFs;
use crate::log::segment::segment_file_name;
use crate::log::{Log, LogConfig};

/// A log in `dir` with `frames` frames of two records each, rolling after every frame.
fn build_log(dir: &Path, frames: u64) {
    let config = LogConfig { segment_bytes: 64, ..LogConfig::default() };
    let log = Log::open(Arc::new(RealFs), dir, config.clone(), 0).expect("open log");
    for i in 0..frames {
        let value = format!("value-{i}");
        let records = [RecordRef { key: b"k", value: value.as_bytes() }, RecordRef { key: b"", value: b"second" }];
        log.append(&records, 1_000 + i).expect("append");
    }
}

fn seg(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

fn idx(dir: &Path, base: u64) -> PathBuf {
    dir.join(index_file_name(base))
}

#[test]
fn a_clean_log_verifies_and_inspects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("streams/s/shard-000000");
    build_log(&log, 4);
    assert_eq!(verify_dir(tmp.path()).expect("verify"), Vec::<Problem>::new());

    let report = inspect_path(tmp.path()).expect("inspect");
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].dir, log);
    let segments: Vec<&SegmentReport> = report.segments().collect();
    assert_eq!(segments.len(), 4, "one segment per frame");
    assert_eq!(segments.iter().map(|s| s.records).sum::<u64>(), 8);
    assert_eq!((segments[1].base_seq, segments[1].next_seq), (2, 4));
    assert_eq!(segments[1].first_time_ms, Some(1_001));
    assert!(segments[..3].iter().all(|s| s.index == IndexState::Ok), "sealed segments have matching indexes");
    assert_eq!(segments[3].index, IndexState::Missing, "the active segment has none");
    assert!(segments.iter().all(|s| s.damage.is_none() && s.valid_bytes + s.preallocated_bytes == s.file_bytes));

    let records: Vec<Record> =
        segment_records(&seg(&log, 2)).expect("open").collect::<Result<_>>().expect("records decode");
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(records[0].value.as_ref(), b"value-1");
    assert_eq!(records[1].key.as_ref(), b"");

    let single = inspect_path(&seg(&log, 4)).expect("inspect one file");
    assert_eq!(single.segments().count(), 1);
}

#[test]
fn a_deleted_middle_segment_is_a_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    build_log(tmp.path(), 4);
    fs::remove_file(seg(tmp.path(), 2)).expect("remove segment");
    fs::remove_file(idx(tmp.path(), 2)).expect("remove index");
    let problems = verify_dir(tmp.path()).expect("verify");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].path.clone(), problems[0].offset), (seg(tmp.path(), 4), 0));
    assert!(problems[0].message.contains("2 to 3"), "{}", problems[0]);
}

#[test]
fn index_damage_and_disagreement_are_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    build_log(tmp.path(), 3);

    let path = idx(tmp.path(), 0);
    let mut bytes = fs::read(&path).expect("read index");
    bytes[50] ^= 1;
    fs::write(&path, &bytes).expect("write index");

    let path = idx(tmp.path(), 2);
    let mut index = IndexFile::decode(&fs::read(&path).expect("read index")).expect("decodes");
    index.next_seq += 1;
    fs::write(&path, index.encode()).expect("write index");

    let problems = verify_dir(tmp.path()).expect("verify");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!((problems[0].path.clone(), problems[0].offset), (idx(tmp.path(), 0), 44));
    assert!(problems[0].message.contains("checksum"));
    assert_eq!((problems[1].path.clone(), problems[1].offset), (idx(tmp.path(), 2), 24));
    let report = inspect_path(tmp.path()).expect("inspect");
    assert!(report.segments().take(2).all(|s| s.index == IndexState::Bad));
}

#[test]
fn a_torn_tail_is_reported_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    build_log(tmp.path(), 2);
    let last = seg(tmp.path(), 2);
    let mut bytes = fs::read(&last).expect("read");
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(b"WBF1\x00\x01");
    fs::write(&last, &bytes).expect("write");
    fs::write(tmp.path().join("junk.seg"), b"not a segment").expect("write junk");

    let problems = verify_dir(tmp.path()).expect("verify");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].path, tmp.path().join("junk.seg"));
    assert_eq!((problems[1].path.clone(), problems[1].offset), (last.clone(), whole));
    assert!(problems[1].message.starts_with("torn tail"), "{}", problems[1]);
    assert_eq!((problems[0].severity, problems[1].severity), (Severity::Damage, Severity::Note));
    assert_eq!(fs::read(&last).expect("read"), bytes, "verify never writes");

    let report = inspect_path(&last).expect("inspect");
    let segment = report.segments().next().expect("one segment");
    assert_eq!(segment.damage.as_ref().map(|d| (d.kind, d.offset)), Some(("torn", whole)));
    assert_eq!(segment.records, 2);
    assert_eq!(segment_records(&last).expect("open").count(), 2);
}

/// What a crash leaves in the last segment of a log is a note; the same bytes anywhere else
/// are damage.
#[test]
fn a_crash_at_a_roll_is_a_note_and_a_partial_frame_in_a_sealed_segment_is_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    build_log(tmp.path(), 2);
    let cases: [(&str, &[u8]); 3] = [("empty", b""), ("partial header", b"WEIRSEG\0\x01"), ("garbage", b"\xff\x13")];
    for (what, contents) in cases {
        // The roll to segment 4 was cut short.
        fs::write(seg(tmp.path(), 4), contents).expect("write new segment");
        let problems = verify_dir(tmp.path()).expect("verify");
        assert_eq!(problems.len(), 1, "{what}: {problems:?}");
        assert_eq!((problems[0].path.clone(), problems[0].offset), (seg(tmp.path(), 4), 0), "{what}");
        assert_eq!(problems[0].severity, Severity::Note, "{what}: {}", problems[0]);
        assert!(problems[0].to_string().contains(": note: new segment"), "{what}: {}", problems[0]);
    }
    // Segment 2 is sealed (4 follows it): a partial frame at its end is damage.
    let sealed = seg(tmp.path(), 2);
    let mut bytes = fs::read(&sealed).expect("read");
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(b"WBF1\x00\x01");
    fs::write(&sealed, &bytes).expect("write");
    let problems = verify_dir(tmp.path()).expect("verify");
    let damage: Vec<&Problem> = problems.iter().filter(|p| p.is_damage()).collect();
    assert_eq!(damage.len(), 1, "{problems:?}");
    assert_eq!((damage[0].path.clone(), damage[0].offset), (sealed, whole));
}

#[test]
fn missing_paths_are_errors_not_problems() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(verify_dir(&tmp.path().join("nope")).is_err());
    assert!(inspect_path(&tmp.path().join("nope")).is_err());
    assert_eq!(verify_dir(tmp.path()).expect("an empty directory is fine"), Vec::<Problem>::new());
}
