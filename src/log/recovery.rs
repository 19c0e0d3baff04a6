//! Validating segments: the scan that recovery, `verify`, `inspect` and index rebuilds share.
//!
//! A scan walks frames from the end of the header, checking each frame's magic, length,
//! checksum, salt, payload and sequence continuity, and stops at the first frame that fails
//! (the *hole*, where record `S` was expected). What follows the hole decides what it is:
//!
//! * nothing whole: a **torn tail**, the unsynced end of the last write before a crash;
//! * in a version-2 segment, whole frames of this segment (its salt, numbers from `S` on, time
//!   not going back) that all say the log was durable only below `S` or less when they were
//!   written (their `durable_seq`): an **unacknowledged tail** that the disk wrote back out of
//!   order (an fsync that never completed). No record from `S` on was ever durable, so none
//!   was acknowledged under `Always`: the log is cut at the hole, as for a torn tail;
//! * any such frame written when `S` was already durable (`durable_seq > S`), or in a
//!   version-1 segment (whose frames do not say) any such frame at all: **damage**, bytes that
//!   were once whole have changed.
//!
//! Frames that do not fit the log (another segment's salt, numbers below `S` or overflowing,
//! time going back) are never adopted: they cannot make a hole damage, nor lend their numbers.
//! Only the last segment of a log can hold a tail; open treats a hole in a sealed one as damage
//! whatever follows it (a sealed segment was synced whole before the next one was created).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::batch::{decode_frame, decode_records_keyed, FrameError, FrameKeys, FrameLayout, FRAME_MAGIC};
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::format::{IndexEntry, SegmentHeader};
use crate::log::io::LogFile;
use crate::log::mapped;
use crate::log::segment::{Damage, Segment, SegmentState};

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to the end of the file is whole frames (or preallocated zeros).
    Clean,
    /// The file ends in bytes that are not whole frames of the log, and nothing after them
    /// says any of their records was ever durable: a torn (or unacknowledged) tail.
    Torn {
        /// Where the whole frames end.
        offset: u64,
        /// Why the bytes there are not a frame (and what later frames go with them).
        reason: String,
    },
    /// A frame fails its checks and what follows shows the bytes were once whole.
    Damaged {
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// One past the highest sequence number of the frames of the log found after the
        /// damage (at least the sequence number expected at the damage).
        resync_next_seq: u64,
    },
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// The segment's header, if it decodes and names the base sequence number expected.
    pub header: Option<SegmentHeader>,
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
///
/// Sealed frames (of an encrypted log) are checked by their CRC and header only: see
/// [`scan_segment_keyed`] for a scan that also checks their tags and records.
pub fn scan_segment(bytes: &Bytes, base_seq: u64, index_interval_bytes: u64) -> ScanOutcome {
    scan_segment_keyed(bytes, base_seq, index_interval_bytes, None)
}

/// [`scan_segment`] of a segment of an encrypted log whose data keys are `keys`: every frame
/// must be sealed, and its tag and records are checked too (a frame whose tag fails is a bad
/// frame like one whose CRC fails). Without keys, sealed frames are checked by CRC and header,
/// which is all recovery needs to tell a torn tail from damage.
pub fn scan_segment_keyed(
    bytes: &Bytes,
    base_seq: u64,
    index_interval_bytes: u64,
    keys: Option<&dyn FrameKeys>,
) -> ScanOutcome {
    let mut out = ScanOutcome {
        header: None,
        state: Segment::empty_state(base_seq, SEGMENT_HEADER_LEN),
        end: ScanEnd::Clean,
        frames: 0,
        compressed_frames: 0,
        records: 0,
        preallocated: 0,
    };
    let header = match SegmentHeader::decode(bytes) {
        Ok(h) if h.base_seq == base_seq => h,
        Ok(h) => {
            let reason = format!("header says base sequence {} but the file name says {base_seq}", h.base_seq);
            out.end = bad_header(bytes, reason, base_seq);
            out.state.len = 0;
            return out;
        }
        Err(e) => {
            // A bad header makes the whole file unreadable from offset 0: either a segment whose
            // creation was cut short (nothing follows) or damage (frames follow).
            out.end = bad_header(bytes, format!("segment header: {}", e.reason), base_seq);
            out.state.len = 0;
            return out;
        }
    };
    let layout = header.frame_layout();
    out.header = Some(header);
    let mut state = Segment::empty_state(base_seq, header.len());
    let mut at = header.len();
    while at < bytes.len() {
        let problem = match check_frame(&bytes.slice(at..), layout, state.next_seq, state.last_time_ms, keys) {
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
        // Whether the frame looks cut short or corrupt, what follows it decides: a flipped
        // length field also looks like a frame running past the end. The frame's start is
        // reported: that is where whole frames end.
        out.end = after_hole(bytes, at, problem, layout, state.next_seq, state.last_time_ms);
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

fn check_frame(
    buf: &Bytes,
    layout: FrameLayout,
    expected_seq: u64,
    last_time_ms: u64,
    keys: Option<&dyn FrameKeys>,
) -> std::result::Result<(crate::format::BatchHeader, bool), String> {
    let header = match decode_frame(buf, layout) {
        Ok(h) => h,
        Err(FrameError::Incomplete { needed }) => {
            return Err(format!("frame needs {needed} bytes, only {} remain", buf.len()))
        }
        Err(FrameError::Corrupt(e)) => return Err(e.reason),
    };
    if header.base_seq != expected_seq {
        return Err(format!("frame starts at sequence {} where {expected_seq} was expected", header.base_seq));
    }
    if header.time_ms < last_time_ms {
        return Err("frame time goes backwards".to_string());
    }
    // A sealed frame read without the key is as far as it can be checked once its CRC is.
    if header.sealed && keys.is_none() {
        return Ok((header, header.compressed));
    }
    let frame = buf.slice(..header.frame_len as usize);
    if let Err(e) = decode_records_keyed(&header, &frame, keys) {
        return Err(format!("payload: {}", e.reason));
    }
    Ok((header, header.compressed))
}

/// Classifies the hole at `offset` of a segment of `layout`, where record `expected_seq` was
/// expected after a frame of time `last_time_ms` (the rules are in the module documentation).
fn after_hole(
    bytes: &[u8],
    offset: usize,
    reason: String,
    layout: FrameLayout,
    expected_seq: u64,
    last_time_ms: u64,
) -> ScanEnd {
    let later = later_frames(bytes, offset.saturating_add(1), layout, expected_seq, last_time_ms);
    let offset = offset as u64;
    let damaged = match layout {
        FrameLayout::V1 => later.frames > 0,
        FrameLayout::V2 { .. } => later.max_durable_seq > expected_seq,
    };
    if damaged {
        let reason = match layout {
            FrameLayout::V1 => format!("{reason}; whole frames follow it"),
            FrameLayout::V2 { .. } => format!(
                "{reason}; a later frame was written when the log was durable up to sequence {}, so record \
                 {expected_seq} had been durable",
                later.max_durable_seq
            ),
        };
        return ScanEnd::Damaged { offset, reason, resync_next_seq: later.next_seq.unwrap_or(expected_seq) };
    }
    if later.frames == 0 {
        return ScanEnd::Torn { offset, reason };
    }
    ScanEnd::Torn {
        offset,
        reason: format!(
            "{reason}; {} later frames, written while the log was durable only below sequence {expected_seq}, are \
             part of the same unacknowledged tail",
            later.frames
        ),
    }
}

/// A segment whose header does not decode: damage if any whole frame of either layout follows
/// (a version-2 frame's salt cannot be checked without the header, so such frames only count
/// as evidence; version-1 frames from `base_seq` on also lend their numbers, as version 1 did),
/// otherwise a segment whose creation was cut short.
fn bad_header(bytes: &[u8], reason: String, base_seq: u64) -> ScanEnd {
    let v1 = later_frames(bytes, 1, FrameLayout::V1, base_seq, 0);
    let mut v2_found = false;
    let mut at = 1usize;
    while !v2_found {
        let Some(start) = find_magic(bytes, at, FRAME_MAGIC) else { break };
        let salt = bytes.get(start + 40..start + 48).map_or(0, |b| crate::format::le_u64(b, 0));
        v2_found = decode_frame(&bytes[start..], FrameLayout::V2 { salt }).is_ok();
        at = start + 1;
    }
    if v1.frames == 0 && !v2_found {
        return ScanEnd::Torn { offset: 0, reason };
    }
    ScanEnd::Damaged {
        offset: 0,
        reason: format!("{reason}; whole frames follow it"),
        resync_next_seq: v1.next_seq.unwrap_or(base_seq).max(base_seq),
    }
}

/// Whole frames of a segment found after a hole (see [`later_frames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaterFrames {
    /// How many were found.
    pub frames: u64,
    /// One past the highest sequence number among them.
    pub next_seq: Option<u64>,
    /// The highest durable point any of them carries (0 for version-1 frames).
    pub max_durable_seq: u64,
}

/// Searches `bytes[from..]` (by frame magic) for whole frames of `layout` that fit the log
/// after a hole: numbers from `min_seq` on and above every frame adopted before them, time not
/// before `min_time_ms` nor before theirs. Frames that do not fit are passed over, never adopted.
pub fn later_frames(bytes: &[u8], from: usize, layout: FrameLayout, min_seq: u64, min_time_ms: u64) -> LaterFrames {
    let mut found = LaterFrames::default();
    let (mut floor, mut time) = (min_seq, min_time_ms);
    let mut at = from;
    while let Some(start) = find_magic(bytes, at, layout.magic()) {
        match decode_frame(&bytes[start..], layout) {
            Ok(h) if h.base_seq >= floor && h.time_ms >= time => {
                found.frames += 1;
                found.next_seq = Some(found.next_seq.map_or(h.next_seq(), |n| n.max(h.next_seq())));
                found.max_durable_seq = found.max_durable_seq.max(h.durable_seq);
                floor = h.next_seq();
                time = h.time_ms;
                at = start.saturating_add(h.frame_len as usize);
            }
            _ => at = start.saturating_add(1),
        }
    }
    found
}

/// The offset of the next `magic` in `bytes` at or after `from`.
fn find_magic(bytes: &[u8], from: usize, magic: [u8; 4]) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.windows(magic.len()).position(|w| w == magic).map(|p| from + p)
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
mod open_tests;
#[cfg(test)]
mod tests;
