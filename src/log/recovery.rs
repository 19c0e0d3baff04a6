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
}

/// Scans a segment's bytes (header included). `base_seq` is what its file name says.
pub fn scan_segment(bytes: &Bytes, base_seq: u64, index_interval_bytes: u64) -> ScanOutcome {
    let mut state = Segment::empty_state(base_seq);
    let mut out =
        ScanOutcome { state: state.clone(), end: ScanEnd::Clean, frames: 0, compressed_frames: 0, records: 0 };
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

/// The whole file as bytes, mapped where the file system allows.
pub fn read_whole(file: &Arc<dyn LogFile>, path: &Path) -> Result<Bytes> {
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    if len == 0 {
        return Ok(Bytes::new());
    }
    if let Some(Ok(m)) = file.map() {
        return Ok(Bytes::from_owner(m));
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0).map_err(|e| Error::io("read", path, e))?;
    Ok(Bytes::from(buf))
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
