//! The log's `HEAD` file (format-spec.md 6.5): the reservation of sequence numbers, and what
//! open decides from it.
//!
//! Why it exists: under `Interval` and `Never` a power cut can lose an acknowledged tail, and
//! under every mode it can delete the active segment file's contents or the file itself (a
//! lying or failing disk, an operator). The segments alone would then let the log hand out the
//! lost numbers again, or restart from the previous segment's end without noticing. So before
//! the writer hands out a number at or above `reserved_next` it raises the reservation
//! durably, a chunk at a time; open continues at `reserved_next` at the lowest; and
//! `active_base` names the segment that must be there.
//!
//! Ordering, so that a crash between any two steps is recoverable:
//! * a new segment is created durably (file, header, fsync, directory fsync) before `HEAD`
//!   names it: a crash in between leaves a last segment above `active_base`, which is fine,
//!   and open writes `HEAD` again; a segment whose creation was cut short has no whole header
//!   and nothing after it, and open removes it (it holds nothing), so the segment before it is
//!   the last again and open does what it would have done;
//! * the reservation is raised (the file replaced atomically) before any number it covers is
//!   written, so a crash leaves the old reservation or the new one, both above every number
//!   handed out;
//! * a clean close lowers the reservation to the next number only after an fsync made
//!   everything written durable, so a clean reopen leaves no gap.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::head::{Head, HEAD_FILE};
use crate::format::lost::LostRanges;
use crate::log::io::{tmp_path, Vfs};
use crate::log::segment::{segment_file_name, Damage};

/// The reservation starts at this many numbers past the next one...
pub const RESERVE_MIN: u64 = 4096;
/// ...doubles while raises come less than [`RESERVE_PERIOD_MS`] apart, halves when they come
/// rarely, and stays below this: at most this many numbers are skipped after a crash.
pub const RESERVE_MAX: u64 = 1 << 24;
/// The target time between two raises of a busy log: each costs two fsyncs and a rename.
pub const RESERVE_PERIOD_MS: u64 = 1000;

/// Reads the `HEAD` file of the log in `dir`: `None` if there is none (a log created before
/// version 2, or one whose creation was cut short). One that does not decode is damage.
pub fn read_head(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Head>> {
    let path = dir.join(HEAD_FILE);
    match vfs.read_file(&path) {
        Ok(bytes) => Head::decode(&bytes).map(Some).map_err(|e| Error::corrupt(path, e.offset as u64, e.reason)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Replaces the `HEAD` file of the log in `dir` atomically and durably: a temporary file,
/// fdatasync'd, renamed over it, the directory fsync'd (each step's failure named as such).
pub fn write_head(vfs: &dyn Vfs, dir: &Path, head: &Head) -> Result<()> {
    debug_assert!(head.durable_next <= head.reserved_next && head.active_base <= head.reserved_next);
    let path = dir.join(HEAD_FILE);
    let tmp = tmp_path(&path);
    let file = vfs.open_file(&tmp, true).map_err(|e| Error::io("create", &tmp, e))?;
    file.set_len(0).map_err(|e| Error::io("truncate", &tmp, e))?;
    file.write_all_at(&head.encode(), 0).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(file);
    vfs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
}

/// How many numbers the writer reserves at its next raise.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    chunk: u64,
    last_raise_ms: Option<u64>,
}

impl Default for Reservation {
    fn default() -> Self {
        Reservation { chunk: RESERVE_MIN, last_raise_ms: None }
    }
}

impl Reservation {
    /// The chunk for a raise at `now_ms` (the log's clock, as the writer stamps frames): larger
    /// the sooner it follows the previous one, so a busy log raises about once a period.
    pub fn next_chunk(&mut self, now_ms: u64) -> u64 {
        if let Some(last) = self.last_raise_ms {
            let elapsed = now_ms.saturating_sub(last);
            if elapsed < RESERVE_PERIOD_MS {
                self.chunk = self.chunk.saturating_mul(2).min(RESERVE_MAX);
            } else if elapsed > 8 * RESERVE_PERIOD_MS {
                self.chunk = (self.chunk / 2).max(RESERVE_MIN);
            }
        }
        self.last_raise_ms = Some(now_ms);
        self.chunk
    }
}

/// The last segment found at open, as far as the decision below needs it.
#[derive(Debug, Clone, Copy)]
pub struct LastSegment {
    /// Its base sequence number.
    pub base_seq: u64,
    /// One past the highest number it holds or that frames after its damage carried.
    pub end: u64,
    /// Bytes of whole frames.
    pub len: u64,
    /// Damage was found in it (nothing is appended to it any more).
    pub damaged: bool,
    /// A version-1 segment (nothing is appended to it any more).
    pub version_1: bool,
}

/// How the log goes on after open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The next sequence number the writer hands out.
    pub next_seq: u64,
    /// A new active segment must be started at `next_seq`, whose header says the numbers from
    /// this one on were skipped (`next_seq` itself when none were).
    pub new_segment_skipping_from: Option<u64>,
    /// Numbers that were durable, or in a segment that is gone: reads of them fail.
    pub missing: Option<(u64, u64)>,
    /// The damage that made them missing, for the recovery report.
    pub damage: Option<(std::path::PathBuf, Damage)>,
}

/// Decides how the log in `dir` goes on, from its `HEAD` (if any) and its last segment (if
/// any). `initial_seq` is where a log with neither starts.
pub fn continue_after(
    dir: &Path,
    head: Option<Head>,
    last: Option<LastSegment>,
    initial_seq: u64,
    lost: &LostRanges,
) -> Continuation {
    let fresh = |next_seq: u64, skipping_from: u64| Continuation {
        next_seq,
        new_segment_skipping_from: Some(skipping_from.min(next_seq)),
        missing: None,
        damage: None,
    };
    let (head, last) = match (head, last) {
        (None, None) => return fresh(initial_seq, initial_seq),
        (None, Some(last)) => {
            // A version-1 log, or one whose first HEAD was never written: the segments say it all.
            let mut out = fresh(last.end, last.end);
            if !last.damaged && !last.version_1 {
                out.new_segment_skipping_from = None;
            }
            return out;
        }
        (Some(head), last) => (head, last),
    };
    match last {
        Some(last) if last.base_seq >= head.active_base => {
            let next_seq = last.end.max(head.reserved_next);
            // After damage nothing is skipped: how far the damaged segment reached is unknown,
            // so every number up to the new segment stays its (reads of them fail).
            let skipping_from = if last.damaged { next_seq } else { last.end.max(head.durable_next) };
            let mut out = fresh(next_seq, skipping_from);
            if !last.damaged && last.end < head.durable_next && !lost.covers(last.end, head.durable_next) {
                out.missing = Some((last.end, head.durable_next));
                out.damage = Some((
                    dir.join(segment_file_name(last.base_seq)),
                    Damage {
                        offset: last.len,
                        reason: format!(
                            "the log ends at sequence {} but every record below {} was durable (HEAD): records {} \
                             to {} are missing",
                            last.end,
                            head.durable_next,
                            last.end,
                            head.durable_next - 1
                        ),
                    },
                ));
            }
            if next_seq == last.end && !last.damaged && !last.version_1 {
                out.new_segment_skipping_from = None;
            }
            out
        }
        last => {
            // The segment HEAD names as active is gone (or every segment is): whatever it held
            // is lost. Reads of it fail; the log goes on above every number ever handed out.
            let from = last.map_or(head.active_base, |l| l.end);
            let next_seq = from.max(head.reserved_next).max(head.active_base).max(initial_seq);
            let mut out = fresh(next_seq, next_seq);
            if from >= next_seq || lost.covers(from, next_seq) {
                // It held nothing, or a salvage recorded the loss.
                return out;
            }
            out.missing = Some((from, next_seq));
            out.damage = Some((
                dir.join(segment_file_name(head.active_base)),
                Damage {
                    offset: 0,
                    reason: format!(
                        "the active segment (base {}) is missing: sequence numbers {from} to {} are lost; the log \
                         goes on at {next_seq}",
                        head.active_base,
                        next_seq.saturating_sub(1)
                    ),
                },
            ));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(base_seq: u64, end: u64) -> LastSegment {
        LastSegment { base_seq, end, len: 100, damaged: false, version_1: false }
    }

    fn head(active_base: u64, reserved_next: u64, durable_next: u64) -> Option<Head> {
        Some(Head { active_base, reserved_next, durable_next })
    }

    fn go(head: Option<Head>, last: Option<LastSegment>) -> Continuation {
        continue_after(Path::new("/log"), head, last, 7, &LostRanges::default())
    }

    #[test]
    fn a_clean_close_goes_on_where_it_stopped_without_a_new_segment() {
        let c = go(head(10, 50, 50), Some(last(10, 50)));
        assert_eq!((c.next_seq, c.new_segment_skipping_from, c.missing), (50, None, None));
    }

    #[test]
    fn reserved_numbers_are_skipped_in_a_new_segment_and_never_handed_out() {
        let c = go(head(10, 5000, 40), Some(last(10, 45)));
        assert_eq!((c.next_seq, c.new_segment_skipping_from, c.missing), (5000, Some(45), None));
    }

    #[test]
    fn a_log_ending_below_its_durable_point_lost_durable_records() {
        let c = go(head(10, 5000, 60), Some(last(10, 45)));
        assert_eq!((c.next_seq, c.new_segment_skipping_from, c.missing), (5000, Some(60), Some((45, 60))));
        assert!(c.damage.is_some());
        let covered = continue_after(
            Path::new("/log"),
            head(10, 5000, 60),
            Some(last(10, 45)),
            7,
            &LostRanges { lost: vec![(45, 60)] },
        );
        assert_eq!((covered.missing, covered.damage), (None, None), "a salvage recorded the loss");
    }

    #[test]
    fn a_missing_active_segment_is_damage_and_the_log_goes_on_above_the_reservation() {
        let c = go(head(100, 5000, 150), Some(last(10, 100)));
        assert_eq!((c.next_seq, c.new_segment_skipping_from, c.missing), (5000, Some(5000), Some((100, 5000))));
        let (path, damage) = c.damage.expect("damage");
        assert!(path.ends_with(segment_file_name(100)), "{}", path.display());
        assert!(damage.reason.contains("missing"), "{}", damage.reason);
        let none_left = go(head(100, 5000, 150), None);
        assert_eq!((none_left.next_seq, none_left.missing), (5000, Some((100, 5000))));
        let recorded = continue_after(
            Path::new("/log"),
            head(100, 5000, 150),
            Some(last(10, 100)),
            7,
            &LostRanges { lost: vec![(100, 5000)] },
        );
        assert_eq!((recorded.next_seq, recorded.missing, recorded.damage), (5000, None, None));
    }

    #[test]
    fn a_damaged_or_version_1_last_segment_is_never_appended_to() {
        for l in [LastSegment { damaged: true, ..last(10, 45) }, LastSegment { version_1: true, ..last(10, 45) }] {
            assert_eq!(go(None, Some(l)).new_segment_skipping_from, Some(45));
            assert_eq!(go(head(10, 45, 45), Some(l)).new_segment_skipping_from, Some(45));
        }
    }

    #[test]
    fn numbers_after_a_damaged_last_segment_are_never_passed_over_as_skipped() {
        let damaged = LastSegment { damaged: true, ..last(10, 10) };
        let c = go(head(10, 5000, 10), Some(damaged));
        assert_eq!((c.next_seq, c.new_segment_skipping_from), (5000, Some(5000)));
    }

    #[test]
    fn a_new_log_starts_at_its_initial_number() {
        assert_eq!(
            go(None, None),
            Continuation { next_seq: 7, new_segment_skipping_from: Some(7), missing: None, damage: None }
        );
    }

    #[test]
    fn reservations_grow_for_busy_logs_and_shrink_for_quiet_ones() {
        let mut r = Reservation::default();
        assert_eq!(r.next_chunk(0), RESERVE_MIN);
        assert_eq!(r.next_chunk(10), 2 * RESERVE_MIN);
        assert_eq!(r.next_chunk(20), 4 * RESERVE_MIN);
        assert_eq!(r.next_chunk(1500), 4 * RESERVE_MIN, "a raise a period later keeps the chunk");
        assert_eq!(r.next_chunk(100_000), 2 * RESERVE_MIN);
        for t in 0..100 {
            r.next_chunk(100_001 + t);
        }
        assert_eq!(r.next_chunk(100_200), RESERVE_MAX);
        assert_eq!(r.next_chunk(0), RESERVE_MAX, "a clock stepping back counts as no time");
    }
}
