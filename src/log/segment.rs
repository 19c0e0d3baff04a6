//! One segment: a file of frames after a [`SegmentHeader`](crate::format::SegmentHeader), its
//! sparse index, and reads from it.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::format::batch::{
    decode_frame, decode_records_keyed, peek_frame, BatchHeader, FrameError, FrameKeys, FrameLayout,
};
use crate::format::{DecodeError, IndexEntry, IndexFile, Record, SegmentHeader};
use crate::log::io::LogFile;
use crate::log::mapped::{self, ReadMap};

/// File name of the segment whose first sequence number is `base_seq`.
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}.seg")
}

/// File name of the index of that segment.
pub fn index_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}.idx")
}

/// Parses a segment file name back into its base sequence number.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A fresh random salt for a new segment. Unpredictable to anyone outside the process (the keys
/// of std's `RandomState` come from the operating system's random source), distinct per call.
pub(crate) fn new_salt() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// Where a segment stops being readable: a frame that failed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first bad byte range within the segment file.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
}

/// The mutable facts about a segment; they change only while it is the active segment.
#[derive(Debug, Clone)]
pub struct SegmentState {
    /// Bytes of whole frames (header included). Readers never look past this.
    pub len: u64,
    /// One past the last sequence number written to the segment.
    pub next_seq: u64,
    /// Append time of the first frame (0 while empty).
    pub first_time_ms: u64,
    /// Append time of the last frame (0 while empty).
    pub last_time_ms: u64,
    /// Sparse index: one entry for the first frame and then one at least every
    /// `index_interval_bytes`.
    pub entries: Vec<IndexEntry>,
    /// Bytes written since the last index entry.
    pub bytes_since_entry: u64,
    /// Frames that failed their checks, found at open; nothing at or after it is served.
    pub damage: Option<Damage>,
}

/// One read of a segment: what it wants, where it starts, what it knows of the segment.
struct ReadPlan<'a> {
    from_seq: u64,
    limit_seq: u64,
    max_records: usize,
    max_bytes: usize,
    /// Offset of the first frame to look at.
    offset: u64,
    /// The log's data keys, if it is encrypted.
    keys: Option<&'a dyn FrameKeys>,
    /// Its sequence number.
    expected_seq: u64,
    /// Bytes of whole frames in the segment.
    len: u64,
    damage: Option<Damage>,
    /// One past the segment's last sequence number.
    segment_next: u64,
}

/// A segment file and what is known about it.
#[derive(Debug)]
pub struct Segment {
    /// First sequence number of the segment (also in its name and header).
    pub base_seq: u64,
    /// Its header (layout version, salt, skipped range).
    pub(crate) header: SegmentHeader,
    /// Path of the `.seg` file.
    pub path: PathBuf,
    /// Path of the `.idx` file.
    pub index_path: PathBuf,
    pub(crate) file: Arc<dyn LogFile>,
    pub(crate) state: RwLock<SegmentState>,
    /// A map of the file, replaced when the file has grown past it or it faulted.
    map: Mutex<Option<Arc<dyn ReadMap>>>,
    /// The records of the last sealed frame a read decrypted, so that reads walking through a
    /// frame a few records at a time decrypt it once, not once a read.
    opened: Mutex<Option<OpenedFrame>>,
}

/// A frame's records: sliced from the map (plain), or shared with the decrypted-frame cache.
enum FrameRecords {
    Plain(Vec<Record>),
    Opened(Arc<[Record]>),
}

/// A decrypted frame: where it is and what it holds. A frame is never rewritten in place with
/// the same first sequence number (sequence numbers are never handed out twice), so
/// `(offset, base_seq, frame_len)` names its bytes; its checksum is still checked at each read.
#[derive(Debug)]
struct OpenedFrame {
    offset: u64,
    base_seq: u64,
    frame_len: u32,
    records: Arc<[Record]>,
}

impl Segment {
    pub(crate) fn new(dir: &Path, header: SegmentHeader, file: Arc<dyn LogFile>, state: SegmentState) -> Segment {
        let base_seq = header.base_seq;
        Segment {
            base_seq,
            header,
            path: dir.join(segment_file_name(base_seq)),
            index_path: dir.join(index_file_name(base_seq)),
            file,
            state: RwLock::new(state),
            map: Mutex::new(None),
            opened: Mutex::new(None),
        }
    }

    /// The records of the frame at `offset` (its header checked): a sealed frame is decrypted
    /// once and kept until a read needs another, a plain one is sliced, which costs nothing.
    fn frame_records(
        &self,
        header: &BatchHeader,
        frame: &Bytes,
        offset: u64,
        keys: Option<&dyn FrameKeys>,
    ) -> Result<FrameRecords, DecodeError> {
        if !header.sealed {
            return decode_records_keyed(header, frame, keys).map(FrameRecords::Plain);
        }
        let mut opened = self.opened.lock();
        if let Some(o) = opened.as_ref() {
            if o.offset == offset && o.base_seq == header.base_seq && o.frame_len == header.frame_len {
                return Ok(FrameRecords::Opened(Arc::clone(&o.records)));
            }
        }
        let records: Arc<[Record]> = decode_records_keyed(header, frame, keys)?.into();
        *opened = Some(OpenedFrame {
            offset,
            base_seq: header.base_seq,
            frame_len: header.frame_len,
            records: Arc::clone(&records),
        });
        Ok(FrameRecords::Opened(records))
    }

    /// An empty state for a segment that holds only its header, `header_len` bytes.
    pub fn empty_state(base_seq: u64, header_len: usize) -> SegmentState {
        SegmentState {
            len: header_len as u64,
            next_seq: base_seq,
            first_time_ms: 0,
            last_time_ms: 0,
            entries: Vec::new(),
            bytes_since_entry: 0,
            damage: None,
        }
    }

    /// Where its first frame starts (the length of its header).
    pub fn first_frame_offset(&self) -> u64 {
        self.header.len() as u64
    }

    /// The first sequence number readers pass over before this segment: `[skipped_from,
    /// base_seq)` was never durably written (see [`SegmentHeader::skipped_from`]).
    pub fn skipped_from(&self) -> u64 {
        self.header.skipped_from()
    }

    /// How its frames are laid out.
    pub fn layout(&self) -> FrameLayout {
        self.header.frame_layout()
    }

    /// A snapshot of the segment's state.
    pub fn snapshot(&self) -> SegmentState {
        self.state.read().clone()
    }

    /// The index file describing the segment as it is now.
    pub fn index_file(&self) -> IndexFile {
        let s = self.state.read();
        IndexFile { segment_len: s.len, next_seq: s.next_seq, last_time_ms: s.last_time_ms, entries: s.entries.clone() }
    }

    /// The map covering `[0, end)`, made (again) if there is none, it is too short, or it
    /// faulted (a new map sees the file again); `None` where the file system offers no map.
    fn map_covering(&self, end: u64) -> Result<Option<Arc<dyn ReadMap>>> {
        let mut cached = self.map.lock();
        if cached.as_ref().is_some_and(|m| m.faulted()) {
            *cached = None;
        }
        if cached.as_ref().is_none_or(|m| (m.len() as u64) < end) {
            // A growing segment is mapped with headroom (doubling), so a reader following the
            // writer remaps a handful of times per segment, not at every read.
            let old_len = cached.as_ref().map_or(0, |m| m.len() as u64);
            let want = end.max(old_len.saturating_mul(2)).max(1 << 20);
            match self.file.map_read(want) {
                Some(Ok(m)) if m.len() as u64 >= end => *cached = Some(m),
                Some(Err(e)) => return Err(Error::io("map", &self.path, e)),
                _ => return Ok(None),
            }
        }
        Ok(cached.clone())
    }

    /// Appends records with sequence numbers in `[from_seq, limit_seq)` to `out`, at most
    /// `max_records` of them and stopping once `max_bytes` of values have been collected (at
    /// least one record is always returned if one exists). Returns true if it stopped at a limit.
    /// `keys` are the log's data keys if it is encrypted (its frames are then sealed).
    #[allow(clippy::too_many_arguments)]
    pub fn read_into(
        &self,
        keys: Option<&dyn FrameKeys>,
        from_seq: u64,
        limit_seq: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Record>,
        bytes_so_far: &mut usize,
    ) -> Result<bool> {
        let (offset, expected_seq, len, damage, segment_next) = {
            let s = self.state.read();
            let i = s.entries.partition_point(|e| e.seq <= from_seq);
            let (offset, seq) = if i == 0 {
                (self.first_frame_offset(), self.base_seq)
            } else {
                (s.entries[i - 1].offset, s.entries[i - 1].seq)
            };
            (offset, seq, s.len, s.damage.clone(), s.next_seq)
        };
        if offset >= len {
            return self.check_damage(damage, limit_seq, from_seq).map(|()| false);
        }
        let plan = ReadPlan {
            from_seq,
            limit_seq,
            max_records,
            max_bytes,
            offset,
            keys,
            expected_seq,
            len,
            damage,
            segment_next,
        };
        let n = usize::try_from(len - offset).map_err(|_| Error::corrupt(&self.path, offset, "segment too large"))?;
        let Some(map) = self.map_covering(len)? else {
            let mut buf = vec![0u8; n];
            self.file.read_exact_at(&mut buf, offset).map_err(|e| Error::io("read", &self.path, e))?;
            return self.read_frames(&Bytes::from(buf), plan, out, bytes_so_far);
        };
        // The records are slices of the map: reading them is the guarded access, and a fault in
        // it (a page that cannot be read) fails the read with what it collected dropped.
        let (kept, bytes_before) = (out.len(), *bytes_so_far);
        let read = mapped::with_view(&map, offset, n, |view| self.read_frames(view, plan, out, bytes_so_far));
        read.unwrap_or_else(|e| {
            out.truncate(kept);
            *bytes_so_far = bytes_before;
            Err(Error::io("read", &self.path, e))
        })
    }

    /// The frames of `view` (the segment's bytes from `plan.offset` to its length of whole
    /// frames), read as [`Segment::read_into`] says.
    fn read_frames(
        &self,
        view: &Bytes,
        plan: ReadPlan<'_>,
        out: &mut Vec<Record>,
        bytes_so_far: &mut usize,
    ) -> Result<bool> {
        let ReadPlan {
            from_seq,
            limit_seq,
            max_records,
            max_bytes,
            offset,
            keys,
            mut expected_seq,
            len,
            damage,
            segment_next,
        } = plan;
        let layout = self.layout();
        let mut at = 0usize;
        // Damage met after some records were collected ends the read with those records; the
        // next read, starting at the damaged frame, reports it.
        let stop_or_fail = |out: &Vec<Record>, e: Error| if out.is_empty() { Err(e) } else { Ok(true) };
        while at < view.len() {
            if out.len() >= max_records || (*bytes_so_far >= max_bytes && !out.is_empty()) {
                return Ok(true);
            }
            let frame_offset = offset + at as u64;
            // Frames wholly before the wanted record are stepped over by their length; only the
            // frames a read returns pay for the checksum.
            // Each must start where the previous one ended: a damaged header among the skipped
            // frames then shows up as a discontinuity below instead of hiding records.
            if let Some((frame_len, base_seq, next_seq)) = peek_frame(&view[at..], layout) {
                if base_seq == expected_seq && next_seq <= from_seq {
                    at += frame_len;
                    expected_seq = next_seq;
                    continue;
                }
            }
            let header = match decode_frame(&view[at..], layout) {
                Ok(h) => h,
                Err(FrameError::Incomplete { .. }) => {
                    let e = Error::corrupt(&self.path, frame_offset, "frame runs past the end of the segment");
                    return stop_or_fail(out, e);
                }
                Err(FrameError::Corrupt(e)) => {
                    return stop_or_fail(out, Error::corrupt(&self.path, frame_offset + e.offset as u64, e.reason))
                }
            };
            if header.base_seq != expected_seq {
                let e = Error::corrupt(
                    &self.path,
                    frame_offset,
                    format!(
                        "frame starts at sequence {} where {expected_seq} was expected (a frame before it is damaged)",
                        header.base_seq
                    ),
                );
                return stop_or_fail(out, e);
            }
            expected_seq = header.next_seq();
            let frame_end = at + header.frame_len as usize;
            if header.base_seq >= limit_seq {
                return Ok(true);
            }
            if header.next_seq() > from_seq {
                let frame = view.slice(at..frame_end);
                let records = match self.frame_records(&header, &frame, frame_offset, keys) {
                    Ok(r) => r,
                    Err(e) => {
                        let at = frame_offset + u64::from(header.header_len) + e.offset as u64;
                        return stop_or_fail(out, Error::corrupt(&self.path, at, e.reason));
                    }
                };
                let (plain, opened) = match records {
                    FrameRecords::Plain(records) => (records, None),
                    FrameRecords::Opened(records) => (Vec::new(), Some(records)),
                };
                for r in plain.into_iter().chain(opened.iter().flat_map(|o| o.iter().cloned())) {
                    if r.seq < from_seq || r.seq >= limit_seq {
                        continue;
                    }
                    if out.len() >= max_records || (*bytes_so_far >= max_bytes && !out.is_empty()) {
                        return Ok(true);
                    }
                    *bytes_so_far += r.value.len() + r.key.len();
                    out.push(r);
                }
            }
            at = frame_end;
        }
        let next = out.last().map(|r| r.seq + 1).unwrap_or(from_seq);
        if expected_seq != segment_next && next < segment_next.min(limit_seq) {
            let e = Error::corrupt(
                &self.path,
                len,
                format!("frames end at sequence {expected_seq} but the segment holds records to {segment_next}"),
            );
            return stop_or_fail(out, e);
        }
        match self.check_damage(damage, limit_seq, next) {
            Err(e) => stop_or_fail(out, e),
            Ok(()) => Ok(false),
        }
    }

    /// A read that reached the end of the whole frames of a damaged segment reports the damage
    /// instead of silently skipping the sequence numbers it hides.
    fn check_damage(&self, damage: Option<Damage>, limit_seq: u64, next_wanted: u64) -> Result<()> {
        match damage {
            Some(d) if next_wanted < limit_seq => Err(Error::corrupt(&self.path, d.offset, d.reason)),
            _ => Ok(()),
        }
    }
}
