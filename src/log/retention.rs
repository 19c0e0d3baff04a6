//! Retention: whole segments leave the front of the log, never single records.
//!
//! Only a prefix of segments is ever deleted, so a log always holds one contiguous range of
//! sequence numbers. The active segment is rolled first when it too has expired, so the empty
//! segment that replaces it keeps the next sequence number on disk: numbers are never reused,
//! even when every record is gone.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::log::segment::{Segment, SegmentState};
use crate::log::Log;

impl Log {
    /// Deletes the segments whose every record was appended before `cutoff_ms`. Returns how many
    /// segments were deleted.
    pub fn delete_older_than(&self, cutoff_ms: u64) -> Result<usize> {
        self.delete_prefix_where(|s| s.last_time_ms < cutoff_ms)
    }

    /// Deletes the segments whose every record has a sequence number below `seq`. Returns how
    /// many segments were deleted.
    pub fn delete_below(&self, seq: u64) -> Result<usize> {
        self.delete_prefix_where(|s| s.next_seq <= seq)
    }

    fn delete_prefix_where(&self, expired: impl Fn(&SegmentState) -> bool) -> Result<usize> {
        let mut writer = self.writer.lock();
        let active_state = writer.active.snapshot();
        if active_state.len > SEGMENT_HEADER_LEN as u64 && expired(&active_state) {
            if writer.poisoned.is_some() {
                return Ok(0);
            }
            self.roll(&mut writer)?;
        }
        let removed: Vec<Arc<Segment>> = {
            let mut segments = self.segments.write();
            let keep_from =
                segments.iter().position(|s| Arc::ptr_eq(s, &writer.active) || !expired(&s.snapshot())).unwrap_or(0);
            segments.drain(..keep_from).collect()
        };
        drop(writer);
        for segment in &removed {
            // Index first: an index without its segment is cleaned up at open, a segment
            // without its index is merely rebuilt.
            let _ = self.vfs.remove_file(&segment.index_path);
            self.vfs.remove_file(&segment.path).map_err(|e| Error::io("remove", &segment.path, e))?;
        }
        if !removed.is_empty() {
            self.vfs.sync_dir(&self.dir).map_err(|e| Error::io("fsync directory", &self.dir, e))?;
        }
        Ok(removed.len())
    }
}
