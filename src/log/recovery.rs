//! Validating segments: the scan that recovery, `verify`, `inspect` and index rebuilds share.
//!
//! A scan walks frames from the end of the header, checking each frame's magic, length,
//! checksum, payload and sequence continuity. It stops at the first frame that fails and says
//! whether the failure looks like a torn tail (nothing valid after it: the unsynced end of the
//! last write before a crash) or damage (valid frames follow, so bytes that were once whole
//! have changed).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::batch::{decode_frame, decode_records, FrameError, FRAME_MAGIC};
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::format::{IndexEntry, SegmentHeader};
use crate::log::io::LogFile;
use crate::log::mapped;
use crate::log::segment::{Damage, Segment, SegmentState};

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to the end of the file is whole frames.
    Clean,
    /// The file ends in bytes that are not a whole frame and nothing valid follows them.
    Torn {
        /// Where the whole frames end.
        offset: u64,
        /// Why the bytes there are not a frame.
        reason: String,
    },
    /// A frame fails its checks and valid frames follow it: damage, not a torn write.
    Damaged {
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// One past the highest sequence number of the valid frames found after the damage.
        resync_next_seq: u64,
    },
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// The segment's state up to the first bad frame.
    pub state: SegmentState,
    /// How the scan ended.
    pub end: ScanEnd,
    /// Whole frames found.
    pub frames: u64,
    /// Of which stored compressed.
    pub compressed_frames: u64,
    /// Records in the whole frames.
    pub records: u64,
    /// Zero bytes after the last whole frame, to the end of the file: the space the writer
    /// preallocated and had not used yet.
    pub preallocated: u64,
}

/// Scans a segment's bytes (header included). `base_seq` is what its file name says.
pub fn scan_segment(bytes: &Bytes, base_seq: u64, index_interval_bytes: u64) -> ScanOutcome {
    let mut state = Segment::empty_state(base_seq);
    let mut out = ScanOutcome {
        state: state.clone(),
        end: ScanEnd::Clean,
        frames: 0,
        compressed_frames: 0,
        records: 0,
        preallocated: 0,
    };
    match SegmentHeader::decode(bytes) {
        Ok(h) if h.base_seq == base_seq => {}
        Ok(h) => {
            out.end = damaged(
                bytes,
                0,
                format!("header says base sequence {} but the file name says {base_seq}", h.base_seq),
                base_seq,
            );
            out.state.len = 0;
            return out;
        }
        Err(e) => {
            // A bad header makes the whole file unreadable from offset 0: either a segment whose
            // creation was cut short (nothing follows) or damage (frames follow).
            let end = damaged(bytes, 0, format!("segment header: {}", e.reason), base_seq);
            out.end = end;
            out.state.len = 0;
            return out;
        }
    }
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let problem = match check_frame(&bytes.slice(at..), state.next_seq, state.last_time_ms) {
            Ok((header, compressed)) => {
                if state.entries.is_empty() || state.bytes_since_entry >= index_interval_bytes {
                    state.entries.push(IndexEntry { seq: header.base_seq, offset: at as u64, time_ms: header.time_ms });
                    state.bytes_since_entry = 0;
                }
                if state.first_time_ms == 0 && out.frames == 0 {
                    state.first_time_ms = header.time_ms;
                }
                state.bytes_since_entry += u64::from(header.frame_len);
                state.next_seq = header.next_seq();
                state.last_time_ms = header.time_ms;
                out.frames += 1;
                out.records += u64::from(header.record_count);
                out.compressed_frames += u64::from(compressed);
                at += header.frame_len as usize;
                state.len = at as u64;
                continue;
            }
            Err(p) => p,
        };
        if is_unused_space(&bytes[at..]) {
            // Nothing was ever written here: the writer's preallocated space. (Any byte a torn
            // write left makes this false, and the classification below takes over.)
            out.preallocated = (bytes.len() - at) as u64;
            break;
        }
        // Whether the frame looks cut short or corrupt, it is a torn tail only if no whole frame
        // follows it: a flipped length field also looks like a frame running past the end.
        out.end = match problem {
            FrameProblem::Incomplete(reason) => damaged(bytes, at as u64, reason, state.next_seq),
            FrameProblem::Corrupt(offset, reason) => damaged(bytes, (at + offset) as u64, reason, state.next_seq),
        };
        if let ScanEnd::Damaged { offset, .. } | ScanEnd::Torn { offset, .. } = &mut out.end {
            // Report the frame's start: that is where whole frames end.
            *offset = at as u64;
        }
        break;
    }
    out.state = state;
    out
}

/// True if `rest`, everything from the end of a segment's whole frames to the end of its file,
/// is the writer's preallocated space: zeros only (a frame never starts with a zero byte).
pub fn is_unused_space(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0)
}

enum FrameProblem {
    Incomplete(String),
    Corrupt(usize, String),
}

fn check_frame(
    buf: &Bytes,
    expected_seq: u64,
    last_time_ms: u64,
) -> Result<(crate::format::BatchHeader, bool), FrameProblem> {
    let header = match decode_frame(buf) {
        Ok(h) => h,
        Err(FrameError::Incomplete { needed }) => {
            return Err(FrameProblem::Incomplete(format!("frame needs {needed} bytes, only {} remain", buf.len())))
        }
        Err(FrameError::Corrupt(e)) => return Err(FrameProblem::Corrupt(e.offset, e.reason)),
    };
    if header.base_seq != expected_seq {
        return Err(FrameProblem::Corrupt(
            16,
            format!("frame starts at sequence {} where {expected_seq} was expected", header.base_seq),
        ));
    }
    if header.time_ms < last_time_ms {
        return Err(FrameProblem::Corrupt(32, "frame time goes backwards".to_string()));
    }
    let frame = buf.slice(..header.frame_len as usize);
    if let Err(e) = decode_records(&header, &frame) {
        return Err(FrameProblem::Corrupt(e.offset, format!("payload: {}", e.reason)));
    }
    Ok((header, header.compressed))
}

/// Classifies a bad frame at `offset`: damage if any whole frame with a later sequence number
/// can be found after it, otherwise a torn tail.
fn damaged(bytes: &[u8], offset: u64, reason: String, next_seq: u64) -> ScanEnd {
    match resync(bytes, offset as usize + 1, next_seq) {
        Some(resync_next_seq) => ScanEnd::Damaged { offset, reason, resync_next_seq },
        None => ScanEnd::Torn { offset, reason },
    }
}

/// Searches `bytes[from..]` for whole frames at or above `min_seq`; returns one past the highest
/// sequence number found.
pub fn resync(bytes: &[u8], from: usize, min_seq: u64) -> Option<u64> {
    let mut best: Option<u64> = None;
    let mut at = from;
    while at + FRAME_MAGIC.len() <= bytes.len() {
        let Some(pos) = find_magic(&bytes[at..]) else { break };
        let start = at + pos;
        match decode_frame(&bytes[start..]) {
            Ok(h) if h.base_seq >= min_seq => {
                best = Some(best.map_or(h.next_seq(), |b| b.max(h.next_seq())));
                at = start + h.frame_len as usize;
            }
            _ => at = start + 1,
        }
    }
    best
}

fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes.windows(FRAME_MAGIC.len()).position(|w| w == FRAME_MAGIC)
}

/// Runs `f` (a scan, which keeps none of the bytes) over the whole file, through a map where
/// the file system offers one; a page of the map that cannot be read fails the pass with
/// `Error::Io` (what `f` saw then holds zeros that are not in the file).
pub fn with_whole<R>(file: &Arc<dyn LogFile>, path: &Path, f: impl FnOnce(&Bytes) -> R) -> Result<R> {
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    if len == 0 {
        return Ok(f(&Bytes::new()));
    }
    let len_bytes = len;
    let len = usize::try_from(len).map_err(|_| Error::corrupt(path, 0, "file too large to read"))?;
    if let Some(Ok(map)) = file.map_read(len_bytes) {
        return mapped::with_view(&map, 0, len, f).map_err(|e| Error::io("read", path, e));
    }
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0).map_err(|e| Error::io("read", path, e))?;
    Ok(f(&Bytes::from(buf)))
}

/// Turns a scan's damage into the segment's damage marker.
pub fn damage_of(end: &ScanEnd) -> Option<Damage> {
    match end {
        ScanEnd::Clean => None,
        ScanEnd::Torn { offset, reason } | ScanEnd::Damaged { offset, reason, .. } => {
            Some(Damage { offset: *offset, reason: reason.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::batch::EncodedBatch;
    use crate::format::{Compression, IndexFile, RecordRef};
    use crate::log::io::RealFs;
    use crate::log::{Durability, Log, LogConfig};

    /// One frame of records `values` (key "k") starting at `seq`, stamped `time_ms`.
    fn frame(seq: u64, time_ms: u64, values: &[&[u8]], compression: Compression) -> Vec<u8> {
        let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"k", value: v }).collect();
        EncodedBatch::encode(&refs, compression).seal(seq, time_ms).to_vec()
    }

    /// A segment starting at `base` holding `count` one-record frames of 100-byte values, one
    /// per millisecond from time 1000. Returns the bytes and the offset of each frame.
    fn segment(base: u64, count: u64) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = SegmentHeader { base_seq: base }.encode().to_vec();
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
        };
        let log = Log::open(Arc::new(RealFs), dir.path(), config, 0).expect("open");
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
        assert_eq!(
            out.end,
            ScanEnd::Damaged { offset: offsets[1] as u64, reason: out.end_reason(), resync_next_seq: 14 }
        );
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
        let mut bytes = SegmentHeader { base_seq: 0 }.encode().to_vec();
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
        let mut bytes = SegmentHeader { base_seq: 0 }.encode().to_vec();
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
        let mut bytes = SegmentHeader { base_seq: 0 }.encode().to_vec();
        let value = vec![b'a'; 4096];
        bytes.extend(frame(0, 1, &[&value, &value], Compression::Auto));
        bytes.extend(frame(2, 2, &[b"small"], Compression::Auto));
        let out = scan(&bytes, 0);
        assert_eq!(out.end, ScanEnd::Clean);
        assert_eq!((out.frames, out.records, out.compressed_frames), (2, 3, 1));
    }

    #[test]
    fn resync_finds_the_highest_sequence_of_the_whole_frames_after_a_point() {
        let mut bytes = b"WBF1 garbage that starts like a frame".to_vec();
        bytes.extend(frame(10, 1, &[b"a", b"b"], Compression::None));
        bytes.extend_from_slice(b"more junk");
        bytes.extend(frame(12, 2, &[b"c"], Compression::None));
        assert_eq!(resync(&bytes, 0, 0), Some(13));
        assert_eq!(resync(&bytes, 0, 12), Some(13), "frames below the minimum sequence do not count");
        assert_eq!(resync(&bytes, 0, 13), None);
        assert_eq!(resync(&bytes[..bytes.len() - 1], 0, 11), None, "a cut frame is not whole");
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
}
