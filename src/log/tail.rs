//! The tail of the active segment: zero-filled space preallocated ahead of the frames, and
//! the writable mapping appends are copied through.
//!
//! Why: on ext4 (and most file systems that allocate blocks on write) an `fdatasync` after an
//! append that grew the file must also write the inode and the block allocation; one after an
//! overwrite of blocks that already hold zeros writes only the data. On the disk weir is
//! measured on that is 1.5 to 1.7 times more fsyncs per second. So the writer keeps some
//! zeros ahead of the frames (made durable by the next fsync, like any write), overwrites them,
//! and cuts what is left when the segment is sealed. Copying frames through a shared mapping of
//! that space also saves the `write` call per append; the page cache is the same, so readers,
//! fsync and a kill -9 see exactly what a `write` would have left.
//!
//! Recovery reads a run of zero bytes to the end of the file, after the last whole frame, as
//! this unused space (format-spec.md, "Segments").

use std::io;

use crate::log::io::{write_zeros, LogFile};
use crate::log::mapped::{self, WriteMap};

/// At least this much zero-filled space is kept ahead of the frames of an active segment.
pub const MIN_HEADROOM: u64 = 64 << 10;
/// At most this much.
pub const MAX_HEADROOM: u64 = 4 << 20;

/// Zero-filled space to keep ahead of a segment whose frames end at `len`: it grows with the
/// segment, so an idle log (a quiet shard, the catalog) costs little disk and a busy one
/// extends its file rarely.
pub fn headroom(len: u64) -> u64 {
    len.clamp(MIN_HEADROOM, MAX_HEADROOM)
}

/// Frames at least this large never make the writer preallocate: they are appended. A writer
/// of large frames is bound by the disk's bandwidth, which zeroing ahead would spend twice,
/// while what an append adds to its fsync (the inode and allocation writes) is small beside
/// the data. (Measured here: 100 KiB per fsync is about even, 1 MiB clearly favours appending.)
pub const PREALLOCATE_BELOW: usize = 64 << 10;

/// The writer's view of the active segment's file beyond its whole frames.
#[derive(Debug)]
pub struct ActiveTail {
    /// Length of the file: whole frames, then zeros.
    file_len: u64,
    /// Whether to keep zeros ahead of the frames.
    preallocate: bool,
    /// A writable mapping of the file's first `map.len()` bytes; it may reach past the end of
    /// the file (it is made once per segment, as long as the segment may grow), but nothing
    /// is ever written through it at or past `file_len`.
    map: Option<Box<dyn WriteMap>>,
    /// Pages of the map below this are already faulted in writable.
    populated_to: u64,
    /// False once the file system said it cannot map the file (appends then use `write`).
    mappable: bool,
}

impl ActiveTail {
    /// The tail of a file currently `file_len` bytes long (everything past the frames is zero).
    pub fn new(file_len: u64, preallocate: bool) -> ActiveTail {
        ActiveTail { file_len, preallocate, map: None, populated_to: 0, mappable: preallocate }
    }

    /// Length of the file, preallocated space included.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Writes `frame` at `offset` (the end of the whole frames), preallocating more zeros first
    /// if the frame does not fit in what is there. `segment_cap` bounds the preallocation (the
    /// segment's roll size; a single larger frame still gets exactly its own space).
    pub fn write(&mut self, file: &dyn LogFile, frame: &[u8], offset: u64, segment_cap: u64) -> io::Result<()> {
        let end = offset + frame.len() as u64;
        if self.preallocate && end > self.file_len && frame.len() < PREALLOCATE_BELOW {
            let target = (end + headroom(end)).min(segment_cap.max(end));
            if self.extend(file, target).is_err() {
                // Preallocation only makes appends cheaper: without it the frame is appended.
                self.map = None;
                self.mappable = false;
                file.set_len(self.file_len)?;
            }
        }
        if end <= self.file_len && self.mappable {
            if let Some(map) = self.mapping_to(file, offset, end, segment_cap) {
                // A page the file system cannot back fails the write (the caller cuts the tail,
                // which drops this map, and poisons the log) instead of killing the process.
                return mapped::write(map, offset, frame);
            }
        }
        file.write_all_at(frame, offset)?;
        self.file_len = self.file_len.max(end);
        Ok(())
    }

    /// A mapping covering `[0, end)`, made (again) if the current one is too short, with the
    /// preallocated pages from `offset` on faulted in.
    fn mapping_to(&mut self, file: &dyn LogFile, offset: u64, end: u64, segment_cap: u64) -> Option<&mut dyn WriteMap> {
        if self.map.as_ref().is_none_or(|m| (m.len() as u64) < end) {
            self.map = None;
            // As long as the segment may grow, so that its extensions need no new mapping.
            match file.map_write(end.max(segment_cap)) {
                Some(Ok(m)) => self.map = Some(m),
                Some(Err(_)) | None => {
                    self.mappable = false;
                    return None;
                }
            }
        }
        let map = self.map.as_deref_mut()?;
        let from = self.populated_to.max(offset);
        if from < self.file_len {
            // One call faults in every page of the new space instead of one page fault per page
            // at the copies (a fifth of a small-message workload's time otherwise). Never below
            // `offset`: faulting a page in writable dirties it, and frames are not rewritten.
            // Only an optimisation: a kernel without MADV_POPULATE_WRITE takes the faults.
            let from = from as usize;
            map.prefault(from, self.file_len as usize - from);
            self.populated_to = self.file_len;
        }
        Some(map)
    }

    /// Grows the file to `target` bytes of which everything past the current length is zero.
    fn extend(&mut self, file: &dyn LogFile, target: u64) -> io::Result<()> {
        if self.preallocate && target > self.file_len {
            // Written zeros, not reserved blocks (fallocate): the fsync after overwriting them
            // writes only data, and copies into pages the write left in the page cache fault
            // less than into unwritten extents (measured: both buffered and durable appends
            // were faster this way).
            write_zeros(file, self.file_len, target)?;
            self.file_len = target;
        }
        Ok(())
    }

    /// Cuts the file back to `len` (the end of its whole frames): when the segment is sealed,
    /// or after a failed write left the tail unknown. The mapping goes first, so nothing can
    /// write past the new end.
    pub fn cut(&mut self, file: &dyn LogFile, len: u64) -> io::Result<()> {
        self.map = None;
        self.populated_to = 0;
        if self.file_len != len {
            file.set_len(len)?;
            self.file_len = len;
        }
        Ok(())
    }

    /// The tail of a new segment whose header is `header_len` bytes: its first preallocated
    /// space is made here, before the segment's creation is synced.
    pub fn for_new_segment(
        file: &dyn LogFile,
        header_len: u64,
        segment_cap: u64,
        preallocate: bool,
    ) -> io::Result<ActiveTail> {
        let mut tail = ActiveTail::new(header_len, preallocate);
        tail.extend(file, (header_len + headroom(header_len)).min(segment_cap.max(header_len)))?;
        Ok(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::io::{RealFs, Vfs};
    use std::path::Path;
    use std::sync::Arc;

    fn open(dir: &Path) -> Arc<dyn LogFile> {
        RealFs.open_file(&dir.join("f"), true).expect("open")
    }

    #[test]
    fn headroom_grows_with_the_segment_between_its_bounds() {
        assert_eq!(headroom(0), MIN_HEADROOM);
        assert_eq!(headroom(1 << 20), 1 << 20);
        assert_eq!(headroom(1 << 40), MAX_HEADROOM);
    }

    #[test]
    fn frames_land_in_preallocated_zeros_and_the_file_grows_ahead_of_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = open(dir.path());
        let mut tail = ActiveTail::new(0, true);
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let frame = vec![(i % 251) as u8 + 1; 1000 + i as usize];
            tail.write(file.as_ref(), &frame, expected.len() as u64, 1 << 30).expect("write");
            expected.extend_from_slice(&frame);
            assert!(tail.file_len() > expected.len() as u64, "zeros stay ahead of the frames");
        }
        let on_disk = std::fs::read(dir.path().join("f")).expect("read");
        assert_eq!(on_disk.len() as u64, tail.file_len());
        assert_eq!(&on_disk[..expected.len()], &expected[..], "every frame is where it was written");
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0), "the rest is zeros");
        tail.cut(file.as_ref(), expected.len() as u64).expect("cut");
        assert_eq!(std::fs::metadata(dir.path().join("f")).expect("stat").len(), expected.len() as u64);
    }

    #[test]
    fn preallocation_stops_at_the_segment_size_but_a_large_frame_gets_its_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = open(dir.path());
        let mut tail = ActiveTail::new(0, true);
        tail.write(file.as_ref(), &[7; 100], 0, 1000).expect("write");
        assert_eq!(tail.file_len(), 1000, "capped at the segment size");
        tail.write(file.as_ref(), &[8; 5000], 100, 1000).expect("write");
        assert_eq!(tail.file_len(), 5100, "a frame past the cap gets exactly its own space");
        let on_disk = std::fs::read(dir.path().join("f")).expect("read");
        assert_eq!(&on_disk[..100], &[7; 100][..]);
        assert_eq!(&on_disk[100..], &[8; 5000][..]);
    }

    #[test]
    fn a_large_frame_is_appended_and_small_ones_preallocate_again_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = open(dir.path());
        let mut tail = ActiveTail::new(0, true);
        let large = vec![9u8; PREALLOCATE_BELOW + MIN_HEADROOM as usize];
        tail.write(file.as_ref(), &large, 0, 1 << 30).expect("write");
        assert_eq!(tail.file_len(), large.len() as u64, "no zeros after a large frame");
        let end = large.len() as u64;
        tail.write(file.as_ref(), &[1; 10], end, 1 << 30).expect("write");
        assert!(tail.file_len() > end + 10, "a small frame preallocates again");
        let on_disk = std::fs::read(dir.path().join("f")).expect("read");
        assert_eq!(&on_disk[..large.len()], &large[..]);
        assert_eq!(&on_disk[large.len()..large.len() + 10], &[1; 10]);
    }

    #[test]
    fn without_preallocation_the_file_ends_at_the_last_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = open(dir.path());
        let mut tail = ActiveTail::new(0, false);
        tail.write(file.as_ref(), b"abc", 0, 1 << 20).expect("write");
        tail.write(file.as_ref(), b"defg", 3, 1 << 20).expect("write");
        assert_eq!(std::fs::read(dir.path().join("f")).expect("read"), b"abcdefg");
        assert_eq!(tail.file_len(), 7);
    }
}
