//! Retention: whole segments leave the front of the log, never single records.
//!
//! Only a prefix of segments is ever deleted, so a log always holds one contiguous range of
//! sequence numbers. The active segment is rolled first when it too has expired, so the empty
//! segment that replaces it keeps the next sequence number on disk: numbers are never reused,
//! even when every record is gone.

use std::sync::Arc;

use crate::error::{Error, Result};
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
        // Deleting is durable at once, so whatever replaced the deleted records (compaction's
        // copies, a checkpoint snapshot) must be durable first, in every durability mode.
        self.flush()?;
        let mut writer = self.writer.lock();
        let active_state = writer.active.snapshot();
        if active_state.len > writer.active.first_frame_offset() && expired(&active_state) {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::format::{Compression, RecordRef};
    use crate::log::io::RealFs;
    use crate::log::segment::{index_file_name, segment_file_name};
    use crate::log::{Durability, Log, LogConfig};

    use super::*;

    /// 114-byte frames (56 header + 8 record header + 50 value) in 300-byte segments (48-byte
    /// header): two frames per segment.
    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 4096,
            durability: Durability::Never,
            compression: Compression::None,
            preallocate: true,
            encryption: None,
        }
    }

    /// Ten records, record `i` at time `1000 + 10 * i`: segments hold seqs [0,1], [2,3] ... [8,9].
    fn ten_records(dir: &Path) -> Log {
        let log = Log::open(Arc::new(RealFs), dir, config(), 0).expect("open");
        for i in 0..10u64 {
            log.append(&[RecordRef { key: b"", value: &[i as u8; 50] }], 1000 + 10 * i).expect("append");
        }
        let bases: Vec<u64> = log.segment_infos().iter().map(|s| s.base_seq).collect();
        assert_eq!(bases, vec![0, 2, 4, 6, 8], "two records per segment");
        log
    }

    fn seqs(log: &Log) -> Vec<u64> {
        log.read(0, 1000, usize::MAX).expect("read").iter().map(|r| r.seq).collect()
    }

    #[test]
    fn only_segments_whose_every_record_is_older_than_the_cutoff_are_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ten_records(dir.path());
        // Record 4 (time 1040) is older than the cutoff, but record 5 (1050) in its segment is not.
        assert_eq!(log.delete_older_than(1045).expect("retention"), 2);
        assert_eq!(log.first_seq(), 4);
        assert_eq!(seqs(&log), (4..10).collect::<Vec<_>>());
        for base in [0, 2] {
            assert!(!dir.path().join(segment_file_name(base)).exists(), "segment {base} still on disk");
            assert!(!dir.path().join(index_file_name(base)).exists(), "index {base} still on disk");
        }
        assert_eq!(log.delete_older_than(1045).expect("retention again"), 0, "nothing more expired");
    }

    #[test]
    fn a_cutoff_equal_to_a_segments_last_time_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ten_records(dir.path());
        assert_eq!(log.delete_older_than(1010).expect("retention"), 0, "record 1 is exactly at the cutoff");
        assert_eq!(log.delete_older_than(1011).expect("retention"), 1);
        assert_eq!(log.first_seq(), 2);
    }

    #[test]
    fn when_everything_expires_sequence_numbers_continue_after_the_last_one_even_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ten_records(dir.path());
        assert_eq!(log.delete_older_than(u64::MAX).expect("retention"), 5, "the active segment goes too");
        assert_eq!((log.first_seq(), log.next_seq()), (10, 10));
        assert!(seqs(&log).is_empty());
        drop(log);

        let log = Log::open(Arc::new(RealFs), dir.path(), config(), 0).expect("reopen");
        assert_eq!((log.first_seq(), log.next_seq()), (10, 10), "the empty segment keeps the next number");
        assert!(log.recovery_report().missing.is_empty(), "{:?}", log.recovery_report());
        let outcome = log.append(&[RecordRef { key: b"", value: b"after" }], 5000).expect("append");
        assert_eq!(outcome.base_seq, 10);
        assert_eq!(seqs(&log), vec![10]);
    }

    #[test]
    fn an_empty_log_has_nothing_to_delete_and_keeps_its_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(Arc::new(RealFs), dir.path(), config(), 7).expect("open");
        assert_eq!(log.delete_older_than(u64::MAX).expect("retention"), 0);
        assert_eq!(log.delete_below(u64::MAX).expect("delete below"), 0);
        assert_eq!(log.segment_infos().len(), 1);
        assert_eq!(log.append(&[RecordRef { key: b"", value: b"x" }], 1).expect("append").base_seq, 7);
    }

    #[test]
    fn delete_below_removes_only_segments_entirely_below_the_sequence_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ten_records(dir.path());
        assert_eq!(log.delete_below(5).expect("delete below"), 2, "[0,1] and [2,3] go; [4,5] holds 5");
        assert_eq!(log.first_seq(), 4);
        assert_eq!(log.delete_below(10).expect("delete below"), 3, "everything, rolling the active segment");
        assert_eq!((log.first_seq(), log.next_seq()), (10, 10));
    }

    #[test]
    fn retention_survives_reopen_without_gaps_or_orphan_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ten_records(dir.path());
        log.delete_older_than(1035).expect("retention");
        drop(log);
        let log = Log::open(Arc::new(RealFs), dir.path(), config(), 0).expect("reopen");
        assert_eq!(log.first_seq(), 4);
        assert_eq!(seqs(&log), (4..10).collect::<Vec<_>>());
        let report = log.recovery_report();
        assert!(report.missing.is_empty() && report.damaged.is_empty(), "{report:?}");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        for base in [0, 2] {
            assert!(!names.contains(&segment_file_name(base)), "deleted segment {base} is back: {names:?}");
            assert!(!names.contains(&index_file_name(base)), "index of deleted segment {base} remains: {names:?}");
        }
        assert!(names.contains(&index_file_name(4)), "sealed segments keep their index: {names:?}");
    }
}
