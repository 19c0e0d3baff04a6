//! Damaged files on disk: flipped bytes, truncated segments, missing or corrupt indexes.
//!
//! The promise under test: weir never serves bytes that differ from what was put. Damage is
//! either repaired without loss (an index is rebuilt), cut off as a torn tail (only at the very
//! end of the log, where an unacknowledged write may have been interrupted), or reported as
//! `Error::Corrupt` naming the damaged file.
//!
//! A torn tail can only be what a crash leaves, so the tests that damage the last segment use a
//! copy of the fixture as the process left it when it died after its last put (the `HEAD` file
//! as the running engine had it); after a clean close `HEAD` vouches for every record, and any
//! loss at the end is damage.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{copy_tree, index_file_of, read_to_end, scratch_dir, segment_files, test_options, ReadOutcome};
use weir::format::batch::{FRAME_HEADER_LEN, SEALED_OVERHEAD};
use weir::format::segment_header::SEGMENT_HEADER_LEN;
use weir::format::{Compression, RecordRef};
use weir::log::io::RealFs;
use weir::log::{Durability, Log, LogConfig, RecoveryReport};
use weir::stream::{PutRecord, StartingPosition, StreamRecord};
use weir::{Engine, Error, ManualClock};

const STREAM: &str = "s";
const SEGMENT_BYTES: u64 = 600;
const READ_LIMIT: usize = 2;
const START_MS: u64 = 1_700_000_000_000;

/// A record as it was put.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Put {
    seq: u64,
    key: Vec<u8>,
    data: Vec<u8>,
    time_ms: u64,
}

/// Where one frame lies: its segment (index into `Fixture::segments`), byte range and records.
#[derive(Debug, Clone)]
struct Frame {
    segment: usize,
    start: u64,
    end: u64,
    records: Vec<Put>,
}

/// A pristine data directory with one single-shard stream spread over several small segments,
/// and the exact layout of its frames.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    clock: Arc<ManualClock>,
    /// Segment files relative to the data directory, oldest first.
    segments: Vec<PathBuf>,
    frames: Vec<Frame>,
    /// The shard's `HEAD` file as the engine had it before the clean close.
    head_before_close: Vec<u8>,
    /// The key file, in the encrypted mode (every frame sealed).
    key_source: Option<weir::KeySource>,
}

/// Every put durable before it returns: what a frame says about the records before it (its
/// durable point) is then what the tests assume (`scratch_dir` makes the fsyncs free).
fn fixture_options(clock: Arc<ManualClock>, key_source: Option<weir::KeySource>) -> weir::Options {
    // Sealed frames are 20 bytes longer: larger segments keep several frames in the last one.
    let segment_bytes = if key_source.is_some() { SEGMENT_BYTES + 200 } else { SEGMENT_BYTES };
    weir::Options { durability: Durability::Always, key_source, ..test_options(clock, segment_bytes) }
}

fn shard_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("streams").join(STREAM).join("shard-000000")
}

impl Fixture {
    /// The fixture in each mode: a plain directory, and an encrypted one (whose every frame is
    /// sealed: the same damage must be caught the same way, by CRC before any key is used).
    fn both() -> [Fixture; 2] {
        [Fixture::new_in(None), Fixture::new_in(Some(common::test_key_source()))]
    }

    /// Twelve single puts and one batch of three, about four frames per 600-byte segment.
    fn new_in(key_source: Option<weir::KeySource>) -> Fixture {
        let tmp = scratch_dir();
        let dir = tmp.path().join("pristine");
        let clock = Arc::new(ManualClock::new(START_MS));
        let engine = Engine::open(&dir, fixture_options(clock.clone(), key_source.clone())).expect("open");
        engine.create_stream(STREAM, 1, None).expect("create stream");
        let stream = engine.stream(STREAM).expect("stream");
        let mut appended: Vec<Vec<Put>> = Vec::new();
        for i in 0..13u32 {
            clock.advance(std::time::Duration::from_millis(1000));
            let now = START_MS + 1000 * u64::from(i + 1);
            if i == 5 {
                let keys: Vec<Vec<u8>> = (0..3).map(|j| format!("batch-{j}").into_bytes()).collect();
                let data: Vec<Vec<u8>> = (0..3).map(|j| vec![b'a' + j as u8; 20 + 5 * j]).collect();
                let records: Vec<PutRecord<'_>> = keys
                    .iter()
                    .zip(&data)
                    .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
                    .collect();
                let results = stream.put_batch(&records).expect("put batch");
                appended.push(
                    results
                        .iter()
                        .zip(keys.iter().zip(&data))
                        .map(|(r, (k, d))| Put { seq: r.seq, key: k.clone(), data: d.clone(), time_ms: now })
                        .collect(),
                );
            } else {
                let key = format!("key-{i}").into_bytes();
                let data: Vec<u8> = (0..60).map(|j| (i as u8).wrapping_mul(31).wrapping_add(j)).collect();
                let result = stream.put(&key, &data).expect("put");
                appended.push(vec![Put { seq: result.seq, key, data, time_ms: now }]);
            }
        }
        let head_before_close = std::fs::read(shard_dir(&dir).join("HEAD")).expect("HEAD of the running engine");
        drop(stream);
        drop(engine);

        let seg_paths = segment_files(&shard_dir(&dir));
        assert!(seg_paths.len() >= 3, "fixture wants at least three segments, got {seg_paths:?}");
        let bases: Vec<u64> = seg_paths
            .iter()
            .map(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("segment name"))
            .collect();
        let mut frames = Vec::new();
        let mut ends = vec![SEGMENT_HEADER_LEN as u64; seg_paths.len()];
        for records in appended {
            let segment = bases.iter().rposition(|&b| b <= records[0].seq).expect("segment of frame");
            let sealing = if key_source.is_some() { SEALED_OVERHEAD } else { 0 };
            let len = (FRAME_HEADER_LEN + sealing) as u64
                + records.iter().map(|r| 8 + r.key.len() + r.data.len()).sum::<usize>() as u64;
            let start = ends[segment];
            ends[segment] += len;
            frames.push(Frame { segment, start, end: start + len, records });
        }
        for (i, (path, end)) in seg_paths.iter().zip(&ends).enumerate() {
            let bytes = std::fs::read(path).expect("read segment");
            if i + 1 < seg_paths.len() {
                assert_eq!(bytes.len() as u64, *end, "layout of {} is not the expected frames", path.display());
            } else {
                // The active segment keeps preallocated zeros after its frames; flips and cuts
                // below cover them too.
                assert!(bytes.len() as u64 >= *end, "layout of {} is not the expected frames", path.display());
                let tail = &bytes[*end as usize..];
                assert!(tail.iter().all(|&b| b == 0), "{} has more than zeros after its frames", path.display());
            }
        }
        let segments = seg_paths.iter().map(|p| p.strip_prefix(&dir).expect("relative").to_path_buf()).collect();
        let fixture = Fixture { _tmp: tmp, dir, clock, segments, frames, head_before_close, key_source };
        let pristine = fixture.read_all(&fixture.dir);
        assert!(pristine.error.is_none(), "pristine read failed: {:?}", pristine.error);
        assert_records_match(&pristine.records, &fixture.all_records(), "pristine");
        fixture
    }

    fn options(&self) -> weir::Options {
        fixture_options(self.clock.clone(), self.key_source.clone())
    }

    fn all_records(&self) -> Vec<Put> {
        self.frames.iter().flat_map(|f| f.records.clone()).collect()
    }

    /// Records in frames of `segment` that end at or before `cut`, after all records of earlier
    /// segments.
    fn records_before(&self, segment: usize, cut: u64) -> Vec<Put> {
        self.frames
            .iter()
            .filter(|f| f.segment < segment || (f.segment == segment && f.end <= cut))
            .flat_map(|f| f.records.clone())
            .collect()
    }

    fn segment_len(&self, segment: usize) -> u64 {
        std::fs::metadata(self.dir.join(&self.segments[segment])).expect("stat").len()
    }

    fn last_segment(&self) -> usize {
        self.segments.len() - 1
    }

    /// A fresh copy of the pristine directory.
    fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        let tmp = scratch_dir();
        let dir = tmp.path().join("data");
        copy_tree(&self.dir, &dir);
        (tmp, dir)
    }

    /// A fresh copy of the directory as the process left it had it died after its last put:
    /// the last segment may then end in a torn tail.
    fn copy_after_a_crash(&self) -> (tempfile::TempDir, PathBuf) {
        let (tmp, dir) = self.copy();
        std::fs::write(shard_dir(&dir).join("HEAD"), &self.head_before_close).expect("write HEAD");
        (tmp, dir)
    }

    /// A copy for damaging `segment`: the last one as after a crash, the others as closed.
    fn copy_to_damage(&self, segment: usize) -> (tempfile::TempDir, PathBuf) {
        if segment == self.last_segment() {
            self.copy_after_a_crash()
        } else {
            self.copy()
        }
    }

    /// Opens `dir` and reads the whole shard from the trim horizon.
    fn read_all(&self, dir: &Path) -> ReadOutcome {
        let engine = match Engine::open(dir, self.options()) {
            Ok(engine) => engine,
            Err(error) => return ReadOutcome { records: Vec::new(), error: Some(error) },
        };
        let stream = engine.stream(STREAM).expect("stream survives");
        read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT)
    }
}

fn assert_records_match(served: &[StreamRecord], expected: &[Put], what: &str) {
    let served: Vec<Put> = served
        .iter()
        .map(|r| Put { seq: r.seq, key: r.partition_key.to_vec(), data: r.data.to_vec(), time_ms: r.time_ms })
        .collect();
    assert_eq!(served, expected, "{what}: served records differ from the expected ones");
}

/// Asserts `served` is a byte-identical prefix of `originals`.
fn assert_prefix(served: &[StreamRecord], originals: &[Put], what: &str) {
    assert!(
        served.len() <= originals.len(),
        "{what}: served {} records, only {} were put",
        served.len(),
        originals.len()
    );
    for (r, o) in served.iter().zip(originals) {
        let same = r.seq == o.seq && r.partition_key == o.key && r.data == o.data && r.time_ms == o.time_ms;
        assert!(same, "{what}: served {r:?} where {o:?} was put");
    }
}

fn assert_corrupt_names(error: &Error, file: &Path, what: &str) {
    match error {
        Error::Corrupt { path, .. } => assert_eq!(path, file, "{what}: corruption reported against the wrong file"),
        other => panic!("{what}: expected Error::Corrupt naming {}, got {other:?}", file.display()),
    }
}

/// Flips `mask` into the byte at `offset` of segment `segment` and checks what a reader gets.
fn check_flip(fx: &Fixture, segment: usize, offset: u64, mask: u8) {
    let what = format!("segment {segment}, byte {offset} ^ {mask:#04x}");
    let (_tmp, dir) = fx.copy_to_damage(segment);
    let file = dir.join(&fx.segments[segment]);
    let mut bytes = std::fs::read(&file).expect("read segment");
    bytes[offset as usize] ^= mask;
    std::fs::write(&file, &bytes).expect("write segment");

    let originals = fx.all_records();
    let outcome = fx.read_all(&dir);
    assert_prefix(&outcome.records, &originals, &what);
    if let Some(error) = &outcome.error {
        assert_corrupt_names(error, &file, &what);
        return;
    }
    if outcome.records.len() == originals.len() {
        return;
    }
    // Served less without an error: only a torn tail may be cut, i.e. the flip must lie in the
    // very last frame of the log, and only that frame may be missing.
    let last = fx.frames.last().expect("frames");
    assert!(
        segment == fx.last_segment() && offset >= last.start,
        "{what}: {} of {} records served without an error, but valid frames follow the flipped byte",
        outcome.records.len(),
        originals.len()
    );
    assert_eq!(outcome.records.len(), originals.len() - last.records.len(), "{what}: more than the torn frame is gone");
}

#[test]
fn every_flipped_byte_of_a_sealed_segment_is_served_intact_or_reported_corrupt() {
    for fx in Fixture::both() {
        for offset in 0..fx.segment_len(0) {
            for mask in [0x01, 0x80] {
                check_flip(&fx, 0, offset, mask);
            }
        }
    }
}

#[test]
fn every_flipped_byte_of_the_last_segment_is_served_intact_cut_as_torn_tail_or_reported_corrupt() {
    for fx in Fixture::both() {
        for offset in 0..fx.segment_len(fx.last_segment()) {
            for mask in [0x01, 0x80] {
                check_flip(&fx, fx.last_segment(), offset, mask);
            }
        }
    }
}

#[test]
fn a_corrupt_record_count_in_a_sealed_segment_is_reported_not_skipped() {
    for fx in Fixture::both() {
        let frame = fx.frames.iter().filter(|f| f.segment == 0).nth(1).expect("second frame of segment 0").clone();
        assert_eq!(frame.records.len(), 1, "a one-record frame");
        let (_tmp, dir) = fx.copy();
        let file = dir.join(&fx.segments[0]);
        let mut bytes = std::fs::read(&file).expect("read");
        // record_count (offset 24 of the frame) from 1 to 0.
        bytes[frame.start as usize + 24] ^= 0x01;
        std::fs::write(&file, &bytes).expect("write");

        let outcome = fx.read_all(&dir);
        assert_records_match(&outcome.records, &fx.frames[0].records, "record count");
        let error = outcome.error.expect("the damaged frame is reported, not stepped over");
        assert_corrupt_names(&error, &file, "record count");
        // Reading from a record after the damaged frame (in the same segment) still meets it.
        let after = fx.frames.iter().filter(|f| f.segment == 0).nth(2).expect("third frame").records[0].seq;
        let engine = Engine::open(&dir, fx.options()).expect("open");
        let stream = engine.stream(STREAM).expect("stream");
        let outcome = read_to_end(&stream, 0, StartingPosition::AtSequence(after), READ_LIMIT);
        if let Some(error) = &outcome.error {
            assert_corrupt_names(error, &file, "read after the damaged frame");
        }
        assert_prefix(&outcome.records, &fx.all_records()[after as usize..], "read after the damaged frame");
    }
}

/// Cuts the last frame of the log in `dir` short by three bytes (and the preallocated zeros
/// after it), opens the engine and reads the shard: the recovery report, the read, the file
/// and the records before the cut frame.
fn cut_the_last_frame(fx: &Fixture, dir: &Path) -> (RecoveryReport, ReadOutcome, PathBuf, Vec<Put>) {
    let file = dir.join(&fx.segments[fx.last_segment()]);
    let last = fx.frames.last().expect("frames");
    std::fs::OpenOptions::new().write(true).open(&file).expect("open").set_len(last.end - 3).expect("truncate");
    let engine = Engine::open(dir, fx.options()).expect("open");
    let stream = engine.stream(STREAM).expect("stream");
    let report = stream.shard(0).expect("shard").log().recovery_report().clone();
    let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT);
    (report, outcome, file, fx.records_before(fx.last_segment(), last.start))
}

#[test]
fn a_torn_last_frame_of_the_log_is_cut_and_reported_on_open() {
    for fx in Fixture::both() {
        let (_tmp, dir) = fx.copy_after_a_crash();
        let (report, outcome, file, before) = cut_the_last_frame(&fx, &dir);
        assert_eq!(report.truncated.len(), 1, "one torn tail: {report:?}");
        assert_eq!(report.truncated[0].0, file);
        let last = fx.frames.last().expect("frames");
        assert_eq!(report.truncated[0].1, last.start, "cut where the whole frames end");
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_records_match(&outcome.records, &before, "torn tail");
    }
}

#[test]
fn the_last_frame_of_a_cleanly_closed_log_cut_short_is_damage_not_a_torn_tail() {
    for fx in Fixture::both() {
        let (_tmp, dir) = fx.copy();
        let (report, outcome, file, before) = cut_the_last_frame(&fx, &dir);
        assert!(report.truncated.is_empty(), "an acknowledged record was cut as a torn tail: {report:?}");
        assert_eq!(report.damaged.len(), 1, "{report:?}");
        assert_records_match(&outcome.records, &before, "records before it");
        assert_corrupt_names(&outcome.error.expect("the lost record is reported"), &file, "cut after a clean close");
    }
}

#[test]
fn a_frame_length_that_runs_past_the_end_of_the_last_segment_is_damage_when_valid_frames_follow() {
    // Not a torn write: the frames after it were written (and acknowledged) later.
    for fx in Fixture::both() {
        let last_segment = fx.last_segment();
        let frame = fx.frames.iter().find(|f| f.segment == last_segment).expect("frame in last segment").clone();
        assert!(fx.frames.last().expect("frames").start > frame.start, "fixture wants two frames in the last segment");
        let (_tmp, dir) = fx.copy_after_a_crash();
        let file = dir.join(&fx.segments[last_segment]);
        let mut bytes = std::fs::read(&file).expect("read");
        let at = frame.start as usize + 4;
        bytes[at..at + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
        std::fs::write(&file, &bytes).expect("write");

        let outcome = fx.read_all(&dir);
        assert_prefix(&outcome.records, &fx.all_records(), "length field");
        if outcome.records.len() < fx.all_records().len() {
            let error = outcome.error.as_ref().expect("records after the damaged frame vanished without an error");
            assert_corrupt_names(error, &file, "length field");
        }
    }
}

/// Offsets of `segment` where whole frames end (the end of its header included).
fn frame_boundaries(fx: &Fixture, segment: usize) -> Vec<u64> {
    let ends = fx.frames.iter().filter(|f| f.segment == segment).map(|f| f.end);
    std::iter::once(SEGMENT_HEADER_LEN as u64).chain(ends).collect()
}

/// Truncates segment `segment` at each offset in `cuts` and checks the whole frames before the
/// cut are served, exactly.
fn check_truncations(fx: &Fixture, segment: usize, cuts: impl IntoIterator<Item = u64>) {
    let originals = fx.all_records();
    for cut in cuts {
        let what = format!("segment {segment} cut at {cut}");
        let (_tmp, dir) = fx.copy_to_damage(segment);
        let file = dir.join(&fx.segments[segment]);
        std::fs::OpenOptions::new().write(true).open(&file).expect("open").set_len(cut).expect("truncate");

        let engine = Engine::open(&dir, fx.options()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        let stream = engine.stream(STREAM).expect("stream");
        let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT);
        let expected = fx.records_before(segment, cut);
        assert_records_match(&outcome.records, &expected, &what);
        if segment == fx.last_segment() {
            assert!(outcome.error.is_none(), "{what}: {:?}", outcome.error);
            // The log goes on after the cut.
            let put = stream.put(b"after-the-cut", b"new").expect("put after the cut");
            let again = read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT);
            assert!(again.error.is_none(), "{what}: {:?}", again.error);
            assert_records_match(&again.records[..expected.len()], &expected, &what);
            let tail = &again.records[expected.len()..];
            assert_eq!(tail.len(), 1, "{what}: exactly the new record follows");
            assert_eq!((tail[0].seq, &tail[0].data[..]), (put.seq, &b"new"[..]), "{what}");
        } else {
            let error = outcome
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: reading past the cut skipped the lost records without an error"));
            assert_corrupt_names(error, &file, &what);
            // Later segments are still readable from their own start.
            let next_base = fx.frames.iter().find(|f| f.segment == segment + 1).expect("next segment").records[0].seq;
            let rest = read_to_end(&stream, 0, StartingPosition::AtSequence(next_base), READ_LIMIT);
            assert!(rest.error.is_none(), "{what}: {:?}", rest.error);
            let later: Vec<Put> = originals.iter().filter(|r| r.seq >= next_base).cloned().collect();
            assert_records_match(&rest.records, &later, &what);
        }
    }
}

#[test]
fn truncated_last_segment_serves_exactly_the_whole_records_before_the_cut() {
    for fx in Fixture::both() {
        let last = fx.last_segment();
        check_truncations(&fx, last, 0..fx.segment_len(last));
    }
}

#[test]
fn sealed_segment_cut_inside_a_frame_serves_exactly_the_whole_records_before_the_cut_then_reports_corruption() {
    for fx in Fixture::both() {
        let boundaries = frame_boundaries(&fx, 0);
        check_truncations(&fx, 0, (0..fx.segment_len(0)).filter(|cut| !boundaries.contains(cut)));
    }
}

#[test]
fn sealed_segment_cut_at_a_frame_boundary_reports_corruption_instead_of_skipping_the_lost_records() {
    for fx in Fixture::both() {
        let len = fx.segment_len(0);
        check_truncations(&fx, 0, frame_boundaries(&fx, 0).into_iter().filter(|&cut| cut < len));
    }
}

#[test]
fn missing_index_is_rebuilt_on_open_and_reads_still_work() {
    for fx in Fixture::both() {
        let (_tmp, dir) = fx.copy();
        let segment = dir.join(&fx.segments[0]);
        let index = index_file_of(&segment);
        std::fs::remove_file(&index).expect("remove index");
        {
            let engine = Engine::open(&dir, fx.options()).expect("open");
            let stream = engine.stream(STREAM).expect("stream");
            let report = stream.shard(0).expect("shard").log().recovery_report().clone();
            assert_eq!(report.rebuilt_indexes, vec![segment.clone()]);
            assert!(index.exists(), "the rebuilt index is written back");
            let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT);
            assert!(outcome.error.is_none(), "{:?}", outcome.error);
            assert_records_match(&outcome.records, &fx.all_records(), "rebuilt index");
        }
        let engine = Engine::open(&dir, fx.options()).expect("reopen");
        let log_report =
            engine.stream(STREAM).expect("stream").shard(0).expect("shard").log().recovery_report().clone();
        assert!(log_report.rebuilt_indexes.is_empty(), "a rebuilt index is used on the next open: {log_report:?}");
    }
}

#[test]
fn corrupt_index_is_rebuilt_on_open_whatever_byte_is_damaged() {
    for fx in Fixture::both() {
        let index_len = std::fs::metadata(index_file_of(&fx.dir.join(&fx.segments[0]))).expect("stat index").len();
        for offset in 0..index_len {
            let (_tmp, dir) = fx.copy();
            let segment = dir.join(&fx.segments[0]);
            let index = index_file_of(&segment);
            let mut bytes = std::fs::read(&index).expect("read index");
            bytes[offset as usize] ^= 0x04;
            std::fs::write(&index, &bytes).expect("write index");

            let engine = Engine::open(&dir, fx.options()).expect("open");
            let stream = engine.stream(STREAM).expect("stream");
            let report = stream.shard(0).expect("shard").log().recovery_report().clone();
            assert_eq!(report.rebuilt_indexes, vec![segment.clone()], "index byte {offset}");
            let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, READ_LIMIT);
            assert!(outcome.error.is_none(), "index byte {offset}: {:?}", outcome.error);
            assert_records_match(&outcome.records, &fx.all_records(), &format!("index byte {offset}"));
            // The time index is whole again too.
            let second = &fx.all_records()[1];
            let at_time = read_to_end(&stream, 0, StartingPosition::AtTimestamp(second.time_ms), 100);
            assert_eq!(at_time.records.first().map(|r| r.seq), Some(second.seq), "index byte {offset}");
        }
    }
}

/// A copy of the fixture whose second frame of segment 0 fails its checksum; returns the copy,
/// the damaged file and the damaged frame.
fn with_bad_checksum_in_sealed_segment(fx: &Fixture) -> (tempfile::TempDir, PathBuf, PathBuf, Frame) {
    let frame = fx.frames.iter().filter(|f| f.segment == 0).nth(1).expect("second frame of segment 0").clone();
    let (tmp, dir) = fx.copy();
    let file = dir.join(&fx.segments[0]);
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[frame.start as usize + FRAME_HEADER_LEN + 10] ^= 0x20;
    std::fs::write(&file, &bytes).expect("write");
    (tmp, dir, file, frame)
}

#[test]
fn bad_checksum_in_a_sealed_segment_is_reported_with_its_file_and_offset() {
    for fx in Fixture::both() {
        let (_tmp, dir, file, frame) = with_bad_checksum_in_sealed_segment(&fx);
        let engine =
            Engine::open(&dir, fx.options()).expect("a sealed segment with a valid index is not reread at open");
        let stream = engine.stream(STREAM).expect("stream");
        let mut iterator = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
        // The whole records before the damaged frame come first; the read that reaches it fails.
        let before = iterator.next_batch(100).expect("records before the damage");
        let damaged_first = frame.records.first().map(|r| r.seq).expect("frame has records");
        assert!(before.records.iter().all(|r| r.seq < damaged_first), "a record of the damaged frame was served");
        let error = iterator.next_batch(100).expect_err("the damaged frame is not served");
        match &error {
            Error::Corrupt { path, offset, reason } => {
                assert_eq!(path, &file);
                assert!(
                    (frame.start..frame.end).contains(offset),
                    "offset {offset} outside the damaged frame {frame:?}"
                );
                assert!(reason.contains("checksum"), "reason names the checksum: {reason}");
            }
            other => panic!("expected Error::Corrupt, got {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(&file.display().to_string()), "message names the file: {message}");
        assert!(message.contains("offset"), "message gives the offset: {message}");
        // The damage stays reported: a retry fails the same way rather than skipping it.
        assert!(matches!(iterator.next_batch(100), Err(Error::Corrupt { .. })), "a retry skipped the damage");
    }
}

#[test]
fn records_before_a_damaged_frame_are_served_before_the_damage_is_reported() {
    for fx in Fixture::both() {
        let (_tmp, dir, file, _frame) = with_bad_checksum_in_sealed_segment(&fx);
        let engine = Engine::open(&dir, fx.options()).expect("open");
        let stream = engine.stream(STREAM).expect("stream");
        for limit in [1, 100] {
            let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, limit);
            assert_records_match(&outcome.records, &fx.frames[0].records, &format!("limit {limit}"));
            let error = outcome.error.expect("the damage is reported after the good records");
            assert_corrupt_names(&error, &file, &format!("limit {limit}"));
        }
    }
}

#[test]
fn records_appended_after_a_damaged_empty_last_segment_survive_the_next_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 4096,
        durability: Durability::Always,
        compression: Compression::None,
        preallocate: true,
        encryption: None,
    };
    drop(Log::open(Arc::new(RealFs), tmp.path(), config.clone(), 0).expect("create log"));
    let file = segment_files(tmp.path()).pop().expect("segment");
    let mut bytes = std::fs::read(&file).expect("read");
    assert!(bytes.len() >= SEGMENT_HEADER_LEN, "an empty segment has its header");
    assert!(bytes[SEGMENT_HEADER_LEN..].iter().all(|&b| b == 0), "and then only preallocated zeros");
    bytes[20] ^= 0x01;
    std::fs::write(&file, &bytes).expect("write");

    let appended = {
        let log = Log::open(Arc::new(RealFs), tmp.path(), config.clone(), 0).expect("open with a damaged header");
        let outcome = log.append(&[RecordRef { key: b"k", value: b"acknowledged" }], 5).expect("append");
        assert_eq!(log.read(outcome.base_seq, 10, 1 << 20).expect("read").len(), 1);
        outcome
    };
    let log = Log::open(Arc::new(RealFs), tmp.path(), config, 0).expect("reopen");
    let records = log.read(appended.base_seq, 10, 1 << 20).expect("read after reopen");
    assert_eq!(records.len(), 1, "the acknowledged record is gone: {:?}", log.recovery_report());
    assert_eq!(&records[0].value[..], b"acknowledged");
}
