//! The scan on bytes: clean segments, torn tails, holes in an unacknowledged tail, damage,
//! frames that do not fit the log.

use super::*;
use crate::format::batch::{v1_frame_from, EncodedBatch, FrameStamp};
use crate::format::{Compression, IndexFile, RecordRef};
use crate::log::io::RealFs;
use crate::log::{Durability, Log, LogConfig};

/// The salt of the segments these tests build.
const SALT: u64 = 0x5EED_0000_1234_ABCD;

/// One frame of records `values` (key "k") starting at `seq`, stamped `time_ms`, durable below
/// `durable_seq`, carrying `salt`.
pub(super) fn frame_with(seq: u64, time_ms: u64, durable_seq: u64, salt: u64, values: &[&[u8]]) -> Vec<u8> {
    let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"k", value: v }).collect();
    let stamp = FrameStamp { base_seq: seq, time_ms, salt, durable_seq };
    EncodedBatch::encode(&refs, Compression::None).seal(&stamp).to_vec()
}

/// One frame of the test segments' salt, durable up to its own first record (as a lone
/// writer under `Always` writes them).
fn frame(seq: u64, time_ms: u64, values: &[&[u8]], compression: Compression) -> Vec<u8> {
    let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"k", value: v }).collect();
    let stamp = FrameStamp { base_seq: seq, time_ms, salt: SALT, durable_seq: seq };
    EncodedBatch::encode(&refs, compression).seal(&stamp).to_vec()
}

/// The header of a version-2 test segment.
fn header(base: u64) -> Vec<u8> {
    SegmentHeader::new(base, SALT, base).encode()
}

/// A segment starting at `base` holding `count` one-record frames of 100-byte values, one
/// per millisecond from time 1000. Returns the bytes and the offset of each frame.
fn segment(base: u64, count: u64) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = header(base);
    let mut offsets = Vec::new();
    for i in 0..count {
        offsets.push(bytes.len());
        bytes.extend(frame(base + i, 1000 + i, &[&[i as u8; 100]], Compression::None));
    }
    (bytes, offsets)
}

fn scan(bytes: &[u8], base: u64) -> ScanOutcome {
    scan_segment(&Bytes::copy_from_slice(bytes), base, 4096)
}

#[test]
fn a_clean_segment_scans_to_its_end() {
    let (bytes, offsets) = segment(100, 5);
    let out = scan(&bytes, 100);
    assert_eq!(out.end, ScanEnd::Clean);
    assert_eq!((out.frames, out.records, out.compressed_frames), (5, 5, 0));
    assert_eq!(out.state.len, bytes.len() as u64);
    assert_eq!(out.state.next_seq, 105);
    assert_eq!((out.state.first_time_ms, out.state.last_time_ms), (1000, 1004));
    assert_eq!(out.state.entries[0], IndexEntry { seq: 100, offset: offsets[0] as u64, time_ms: 1000 });
    assert_eq!(damage_of(&out.end), None);
}

#[test]
fn an_index_rebuilt_by_a_scan_equals_the_one_written_when_the_segment_was_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 300,
        durability: Durability::Never,
        compression: Compression::None,
        preallocate: true,
        encryption: None,
    };
    let log = Log::open(Arc::new(RealFs), dir.path(), config.clone(), 0).expect("open");
    for i in 0..30u64 {
        let value = vec![i as u8; 20 + 7 * i as usize];
        log.append(&[RecordRef { key: b"key", value: &value }], 500 + i).expect("append");
    }
    let sealed: Vec<_> = log.segment_infos().into_iter().rev().skip(1).collect();
    assert!(!sealed.is_empty(), "the appends rolled at least one segment");
    for info in sealed {
        let written = IndexFile::decode(&std::fs::read(info.path.with_extension("idx")).expect("read index"))
            .expect("the index written at roll decodes");
        let bytes = Bytes::from(std::fs::read(&info.path).expect("read segment"));
        let out = scan_segment(&bytes, info.base_seq, config.index_interval_bytes);
        assert_eq!(out.end, ScanEnd::Clean);
        assert!(written.entries.len() > 1, "the interval is small enough for several entries");
        assert_eq!(out.state.entries, written.entries, "{}", info.path.display());
        assert_eq!(
            (out.state.len, out.state.next_seq, out.state.last_time_ms),
            (written.segment_len, written.next_seq, written.last_time_ms)
        );
    }
}

#[test]
fn a_frame_cut_short_at_the_end_is_a_torn_tail_at_its_start() {
    let (bytes, offsets) = segment(0, 3);
    for cut in offsets[2] + 1..bytes.len() {
        let out = scan(&bytes[..cut], 0);
        assert!(
            matches!(out.end, ScanEnd::Torn { offset, .. } if offset == offsets[2] as u64),
            "cut {cut}: {:?}",
            out.end
        );
        assert_eq!((out.state.len, out.state.next_seq), (offsets[2] as u64, 2), "cut {cut}");
    }
}

#[test]
fn a_corrupt_frame_followed_by_whole_frames_is_damage_that_says_how_far_they_reach() {
    let (mut bytes, offsets) = segment(10, 4);
    bytes[offsets[1] + 45] ^= 0x01;
    let out = scan(&bytes, 10);
    assert_eq!(out.end, ScanEnd::Damaged { offset: offsets[1] as u64, reason: out.end_reason(), resync_next_seq: 14 });
    assert_eq!((out.state.len, out.state.next_seq, out.frames), (offsets[1] as u64, 11, 1));
    assert_eq!(damage_of(&out.end).map(|d| d.offset), Some(offsets[1] as u64));
}

#[test]
fn a_corrupt_last_frame_is_a_torn_tail() {
    let (mut bytes, offsets) = segment(0, 3);
    bytes[offsets[2] + 45] ^= 0x01;
    let out = scan(&bytes, 0);
    assert!(matches!(out.end, ScanEnd::Torn { offset, .. } if offset == offsets[2] as u64), "{:?}", out.end);
}

#[test]
fn a_length_field_running_past_the_end_is_damage_when_whole_frames_follow() {
    let (mut bytes, offsets) = segment(0, 3);
    bytes[offsets[0] + 4..offsets[0] + 8].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let out = scan(&bytes, 0);
    assert!(
        matches!(out.end, ScanEnd::Damaged { offset, resync_next_seq: 3, .. } if offset == offsets[0] as u64),
        "{:?}",
        out.end
    );
}

#[test]
fn a_frame_with_an_unexpected_sequence_number_is_damage() {
    let mut bytes = header(0);
    bytes.extend(frame(0, 1, &[b"a"], Compression::None));
    let gap_at = bytes.len();
    bytes.extend(frame(5, 2, &[b"b"], Compression::None));
    bytes.extend(frame(6, 3, &[b"c"], Compression::None));
    let out = scan(&bytes, 0);
    assert!(matches!(out.end, ScanEnd::Damaged { offset, .. } if offset == gap_at as u64), "{:?}", out.end);
    assert_eq!(out.state.next_seq, 1);
}

#[test]
fn a_frame_whose_time_goes_backwards_is_damage() {
    let mut bytes = header(0);
    bytes.extend(frame(0, 100, &[b"a"], Compression::None));
    let back_at = bytes.len();
    bytes.extend(frame(1, 50, &[b"b"], Compression::None));
    bytes.extend(frame(2, 200, &[b"c"], Compression::None));
    let out = scan(&bytes, 0);
    assert!(matches!(out.end, ScanEnd::Damaged { offset, .. } if offset == back_at as u64), "{:?}", out.end);
}

#[test]
fn a_header_naming_another_base_sequence_is_damage_from_offset_zero() {
    let (bytes, _) = segment(5, 2);
    let out = scan(&bytes, 6);
    assert!(matches!(out.end, ScanEnd::Damaged { offset: 0, .. }), "{:?}", out.end);
    assert_eq!(out.state.len, 0, "nothing in the file can be trusted");
}

#[test]
fn a_file_without_a_whole_header_and_nothing_after_is_torn_at_zero() {
    let (bytes, _) = segment(0, 0);
    for cut in 0..bytes.len() {
        let out = scan(&bytes[..cut], 0);
        assert!(matches!(out.end, ScanEnd::Torn { offset: 0, .. }), "cut {cut}: {:?}", out.end);
    }
    let out = scan(&[0u8; 10], 0);
    assert!(matches!(out.end, ScanEnd::Torn { offset: 0, .. }), "{:?}", out.end);
}

#[test]
fn compressed_frames_are_validated_and_counted() {
    let mut bytes = header(0);
    let value = vec![b'a'; 4096];
    bytes.extend(frame(0, 1, &[&value, &value], Compression::Auto));
    bytes.extend(frame(2, 2, &[b"small"], Compression::Auto));
    let out = scan(&bytes, 0);
    assert_eq!(out.end, ScanEnd::Clean);
    assert_eq!((out.frames, out.records, out.compressed_frames), (2, 3, 1));
}

#[test]
fn later_frames_finds_the_whole_frames_of_the_log_after_a_point() {
    let layout = FrameLayout::V2 { salt: SALT };
    let mut bytes = b"WBF2 garbage that starts like a frame".to_vec();
    bytes.extend(frame(10, 1, &[b"a", b"b"], Compression::None));
    bytes.extend_from_slice(b"more junk");
    bytes.extend(frame(12, 2, &[b"c"], Compression::None));
    let found = |bytes: &[u8], min_seq| later_frames(bytes, 0, layout, min_seq, 0);
    assert_eq!(found(&bytes, 0), LaterFrames { frames: 2, next_seq: Some(13), max_durable_seq: 12 });
    assert_eq!(found(&bytes, 12).next_seq, Some(13), "frames below the minimum sequence do not count");
    assert_eq!(found(&bytes, 13).frames, 0);
    assert_eq!(found(&bytes[..bytes.len() - 1], 11).frames, 0, "a cut frame is not whole");
    assert_eq!(later_frames(&bytes, 0, FrameLayout::V2 { salt: SALT ^ 1 }, 0, 0).frames, 0, "another salt");
    assert_eq!(later_frames(&bytes, 0, layout, 0, 2).next_seq, Some(13), "time before the minimum does not fit");
}

impl ScanOutcome {
    /// The reason of a damaged or torn end, to compare the rest of it.
    fn end_reason(&self) -> String {
        match &self.end {
            ScanEnd::Clean => String::new(),
            ScanEnd::Torn { reason, .. } | ScanEnd::Damaged { reason, .. } => reason.clone(),
        }
    }
}

/// Frames `first..first + count` written by concurrent writers while one fsync ran: each says
/// the log was durable only below `durable`.
fn group(first: u64, count: u64, durable: u64) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..count {
        offsets.push(bytes.len());
        bytes.extend(frame_with(first + i, 2000, durable, SALT, &[&[i as u8 + 1; 300]]));
    }
    (bytes, offsets)
}

#[test]
fn a_hole_followed_only_by_frames_written_before_it_was_durable_is_an_unacknowledged_tail() {
    // Records 0..3 durable; frames 3..9 of one group commit whose fsync never completed; the
    // disk wrote frame 4 (and others after it) but not frame 3.
    let (mut bytes, _) = segment(0, 3);
    let start = bytes.len();
    let (tail, offsets) = group(3, 6, 3);
    bytes.extend(&tail);
    let hole = start + offsets[0];
    bytes[hole..start + offsets[1]].fill(0);
    let out = scan(&bytes, 0);
    match &out.end {
        ScanEnd::Torn { offset, reason } => {
            assert_eq!(*offset, hole as u64);
            assert!(reason.contains("5 later frames"), "{reason}");
        }
        other => panic!("an unacknowledged tail called {other:?}"),
    }
    assert_eq!((out.state.len, out.state.next_seq), (hole as u64, 3), "nothing after the hole is kept");
    // The same with a torn (not zeroed) frame and with the hole further in.
    for (hole_frame, flip) in [(0usize, 70usize), (2, 100), (4, 45)] {
        let mut b = bytes.clone();
        b[hole..start + offsets[1]].copy_from_slice(&tail[offsets[0]..offsets[1]]);
        b[start + offsets[hole_frame] + flip] ^= 0x40;
        let out = scan(&b, 0);
        assert!(
            matches!(out.end, ScanEnd::Torn { offset, .. } if offset == (start + offsets[hole_frame]) as u64),
            "hole at frame {hole_frame}: {:?}",
            out.end
        );
    }
}

#[test]
fn a_hole_before_a_frame_written_after_it_was_durable_is_damage() {
    let (mut bytes, _) = segment(0, 3);
    let start = bytes.len();
    let (tail, offsets) = group(3, 4, 3);
    bytes.extend(&tail);
    // Frame 7, written once an fsync had covered 3..7: then 3 was durable.
    bytes.extend(frame_with(7, 2001, 7, SALT, &[b"later"]));
    bytes[start + offsets[0] + 60] ^= 0x01;
    let out = scan(&bytes, 0);
    match &out.end {
        ScanEnd::Damaged { offset, reason, resync_next_seq } => {
            assert_eq!((*offset, *resync_next_seq), ((start + offsets[0]) as u64, 8));
            assert!(reason.contains("durable up to sequence 7"), "{reason}");
        }
        other => panic!("damage to durable records called {other:?}"),
    }
}

#[test]
fn a_frame_hidden_in_a_stored_value_after_a_torn_frame_is_never_adopted() {
    let (mut bytes, _) = segment(0, 2);
    let torn_at = bytes.len();
    // A value holding frames that would make the hole damage and jump the numbers: one with
    // another salt (what anyone could write), one in version-1 layout.
    let fake = frame_with(u64::MAX - 1, 9_999, u64::MAX - 1, SALT ^ 0xFFFF, &[b"fake"]);
    let fake_v1 = v1_frame_from(&fake);
    let mut value = b"prefix".to_vec();
    value.extend_from_slice(&fake);
    value.extend_from_slice(&fake_v1);
    value.extend_from_slice(&[b'x'; 300]);
    let real = frame_with(2, 2000, 2, SALT, &[&value]);
    // The frame is torn after the fake frames: its checksum fails, the fake ones are whole.
    bytes.extend_from_slice(&real[..real.len() - 200]);
    let out = scan(&bytes, 0);
    assert!(matches!(out.end, ScanEnd::Torn { offset, .. } if offset == torn_at as u64), "{:?}", out.end);
    assert_eq!(out.state.next_seq, 2);
}

#[test]
fn frames_whose_numbers_overflow_or_go_backwards_are_not_adopted_and_nothing_panics() {
    let (mut bytes, _) = segment(10, 3);
    let hole = bytes.len();
    bytes.extend(vec![0xEE; 50]);
    // Numbers going back, below the hole.
    bytes.extend(frame_with(5, 2000, 5, SALT, &[b"old"]));
    // base + count overflowing: whole and checksummed, with this segment's salt.
    let mut overflow = frame_with(0, 2000, 0, SALT, &[b"a", b"b"]);
    overflow[16..24].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    overflow[48..56].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    let crc = crc32fast::hash(&overflow[12..]);
    overflow[8..12].copy_from_slice(&crc.to_le_bytes());
    bytes.extend(&overflow);
    // A time going back.
    bytes.extend(frame_with(20, 1, 20, SALT, &[b"early"]));
    let out = scan(&bytes, 10);
    assert!(matches!(out.end, ScanEnd::Torn { offset, .. } if offset == hole as u64), "{:?}", out.end);
    let found = later_frames(&bytes, hole, FrameLayout::V2 { salt: SALT }, 13, 1002);
    assert_eq!(found, LaterFrames::default());
}

#[test]
fn a_version_1_segment_scans_under_the_old_rules() {
    let mut bytes = SegmentHeader { base_seq: 4, version: crate::format::SegmentVersion::V1 }.encode();
    let mut offsets = Vec::new();
    for i in 0..4u64 {
        offsets.push(bytes.len());
        bytes.extend(v1_frame_from(&frame(4 + i, 100 + i, &[&[i as u8; 50]], Compression::None)));
    }
    let out = scan(&bytes, 4);
    assert_eq!((out.end.clone(), out.state.next_seq, out.frames), (ScanEnd::Clean, 8, 4));
    assert_eq!(out.header.map(|h| h.version_number()), Some(1));
    assert_eq!(out.state.entries[0].offset, 32, "frames start after the 32-byte header");
    // A version-1 frame does not say when it was written: any whole frame after a hole is damage.
    let mut damaged = bytes.clone();
    damaged[offsets[1] + 45] ^= 1;
    assert!(matches!(scan(&damaged, 4).end, ScanEnd::Damaged { resync_next_seq: 8, .. }));
    let mut torn = bytes.clone();
    torn.truncate(offsets[3] + 10);
    assert!(matches!(scan(&torn, 4).end, ScanEnd::Torn { .. }));
}

#[test]
fn an_unreadable_header_is_damage_if_whole_frames_follow_whatever_their_salt() {
    let (bytes, _) = segment(0, 2);
    let mut b = bytes.clone();
    b[20] ^= 1;
    assert!(matches!(scan(&b, 0).end, ScanEnd::Damaged { offset: 0, .. }), "{:?}", scan(&b, 0).end);
    let mut only_header = header(0);
    only_header.extend(vec![0u8; 100]);
    only_header[20] ^= 1;
    assert!(matches!(scan(&only_header, 0).end, ScanEnd::Torn { offset: 0, .. }));
}
