//! `weir verify`: a strict, read-only check of every frame and index of a data directory.
//!
//! Verify reports everything the engine would notice at open and more, in two kinds. *Notes*
//! are what a crash normally leaves and recovery repairs without losing anything acknowledged:
//! a torn tail in the last segment of a log (the unfinished end of a write), a last segment
//! whose creation at a roll was cut short (empty, or a partial header). *Damage* is everything
//! else: bytes of durable frames that changed, a sealed segment that ends in a partial frame or
//! disagrees with its index, a run of sequence numbers no segment holds. It never takes the
//! directory lock and never writes, so it can run beside a live engine.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::head::{Head, HEAD_FILE};
use crate::format::index::{INDEX_ENTRY_LEN, INDEX_HEADER_LEN};
use crate::format::lost::{LostRanges, LOST_FILE};
use crate::format::IndexFile;
use crate::log::recovery::ScanEnd;
use crate::log::segment::{index_file_name, segment_file_name};

use super::{
    as_frame_keys, is_not_found, log_dirs, read_head_file, segment_files, ScannedSegment, SegmentFiles, ToolKeys,
};
use crate::engine::encryption::KeySource;

/// How long verify waits before looking again at a last segment that ends in a partial frame:
/// on a live directory that is usually a write in flight.
const TORN_RECHECK_DELAY: Duration = Duration::from_millis(100);

/// Whether a finding is what a crash normally leaves, or damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// What a crash leaves and the engine repairs at open, losing nothing acknowledged (a torn
    /// tail, a new segment whose creation was cut short).
    Note,
    /// Anything else: data that was durable has changed or is missing, or files disagree.
    Damage,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Damage => "damage",
        })
    }
}

/// One thing found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Byte offset within the file the problem refers to.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
    /// A crash's ordinary leftover, or damage.
    pub severity: Severity,
}

impl fmt::Display for Problem {
    /// `FILE:OFFSET: note: what it is` or `FILE:OFFSET: damage: what is wrong`, the line
    /// `weir verify` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.path.display(), self.offset, self.severity, self.message)
    }
}

impl Problem {
    fn new(path: impl Into<PathBuf>, offset: u64, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), offset, message: message.into(), severity: Severity::Damage }
    }

    fn note(path: impl Into<PathBuf>, offset: u64, message: impl Into<String>) -> Problem {
        Problem { severity: Severity::Note, ..Problem::new(path, offset, message) }
    }

    /// True for damage, false for what a crash normally leaves.
    pub fn is_damage(&self) -> bool {
        self.severity == Severity::Damage
    }
}

/// Checks every log directory under `dir` (or the one segment file `dir` names): every frame of
/// every segment, every index file against its segment, and sequence continuity between
/// consecutive segments (a gap a salvage recorded in the log's `LOST` file is not a problem).
/// Returns what it found, in path order: notes (a crash's ordinary leftovers) and damage (see
/// [`Problem::is_damage`]); an empty list means everything checks out. Fails only if `dir`
/// itself cannot be read.
pub fn verify_dir(dir: &Path) -> Result<Vec<Problem>> {
    verify_dir_with_progress(dir, &mut |_, _| {})
}

/// [`verify_dir`], calling `progress` with (bytes checked so far, bytes to check) after each
/// segment it reads.
pub fn verify_dir_with_progress(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<Problem>> {
    verify_dir_keyed(dir, None, progress)
}

/// [`verify_dir_with_progress`] with the key file of an encrypted data directory: every sealed
/// frame's tag and records are checked too (without it, their structure and CRCs are), and a
/// log's `KEYS` file that the key file cannot unwrap is damage.
pub fn verify_dir_keyed(
    dir: &Path,
    key_source: Option<&KeySource>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<Problem>> {
    let tool_keys = ToolKeys::new(key_source)?;
    let meta = fs::metadata(dir).map_err(|e| Error::io("verify", dir, e))?;
    let mut problems = Vec::new();
    if meta.is_dir() {
        let logs = log_dirs(dir)?;
        let total = logs.iter().map(|l| segments_size(l)).sum();
        let mut tally = Tally { done: 0, total, progress };
        for log in logs {
            match verify_log(&log, &tool_keys, &mut problems, &mut tally) {
                Err(e) if is_not_found(&e) => {}
                other => other?,
            }
        }
    } else {
        let keys = tool_keys.for_log(dir.parent().unwrap_or(Path::new(".")))?;
        let segment = ScannedSegment::read(dir, as_frame_keys(&keys))?;
        let len = segment.bytes.len() as u64;
        progress(len, len);
        check_frames(&segment, true, &mut problems);
    }
    Ok(problems)
}

/// Bytes checked so far, out of how many, and whom to tell.
struct Tally<'a> {
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl Tally<'_> {
    fn add(&mut self, bytes: u64) {
        self.done += bytes;
        // Segments grow while a live engine appends: never report more done than total.
        self.total = self.total.max(self.done);
        (self.progress)(self.done, self.total);
    }
}

/// Total size of the `*.seg` files of a log directory (0 if it cannot be listed).
fn segments_size(dir: &Path) -> u64 {
    segment_files(dir)
        .map(|f| f.segments.iter().filter_map(|(_, p)| fs::metadata(p).ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The log's `LOST` ranges. A file that does not decode is a problem (the engine refuses to
/// open the log) and counts as no ranges.
fn lost_ranges(dir: &Path, problems: &mut Vec<Problem>) -> LostRanges {
    let path = dir.join(LOST_FILE);
    match fs::read(&path) {
        Ok(bytes) => LostRanges::decode(&bytes).unwrap_or_else(|e| {
            problems.push(Problem::new(
                &path,
                e.offset as u64,
                format!("{} (the engine refuses to open this log)", e.reason),
            ));
            LostRanges::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => LostRanges::default(),
        Err(e) => {
            problems.push(Problem::new(&path, 0, format!("cannot be read: {e}")));
            LostRanges::default()
        }
    }
}

fn verify_log(dir: &Path, tool_keys: &ToolKeys, problems: &mut Vec<Problem>, tally: &mut Tally<'_>) -> Result<()> {
    let keys = match tool_keys.for_log(dir) {
        Ok(keys) => keys,
        Err(e) => {
            let path = dir.join(crate::format::data_keys::KEYS_FILE);
            problems.push(Problem::new(path, 0, format!("{e} (the engine refuses to open this log)")));
            None
        }
    };
    if keys.is_none() {
        if let Err(e) = super::keys::key_versions(dir) {
            let path = dir.join(crate::format::data_keys::KEYS_FILE);
            problems.push(Problem::new(path, 0, format!("{e} (the engine refuses to open this log)")));
        }
    }
    // HEAD first: beside a live engine, what it names only moves forward after this read.
    let (head, head_problem) = read_head_file(dir);
    if let Some(problem) = head_problem {
        problems.push(Problem::new(dir.join(HEAD_FILE), 0, format!("{problem} (the engine refuses to open this log)")));
    }
    let SegmentFiles { segments: files, unrecognized } = segment_files(dir)?;
    for path in unrecognized {
        problems.push(Problem::new(path, 0, "not a segment name (20 digits and .seg): the engine ignores this file"));
    }
    let lost = lost_ranges(dir, problems);
    // (one past the last sequence number, whether the segment was whole) of the previous one
    let mut previous: Option<(u64, bool)> = None;
    // The last segment read: its path, where its whole frames end, and their sequence number.
    let mut last_read: Option<(PathBuf, u64, u64)> = None;
    for (i, (base, path)) in files.iter().enumerate() {
        let is_last = i + 1 == files.len();
        let segment = match read_for_verify(path, is_last, as_frame_keys(&keys)) {
            Ok(s) => s,
            // Removed by retention since the directory was listed.
            Err(e) if is_not_found(&e) => continue,
            Err(e) => {
                problems.push(Problem::new(path, 0, format!("cannot be read: {e}")));
                previous = None;
                continue;
            }
        };
        tally.add(segment.bytes.len() as u64);
        if let Some((prev_next, true)) = previous {
            // Numbers the segment's header says were skipped (never written) are no gap.
            let skipped_from = segment.outcome.header.map_or(*base, |h| h.skipped_from()).clamp(prev_next, *base);
            if skipped_from > prev_next && !lost.covers(prev_next, skipped_from) {
                problems.push(Problem::new(
                    path,
                    0,
                    format!(
                        "sequence numbers {prev_next} to {} are in no segment: the previous segment ends before \
                         this one begins (a segment was deleted?)",
                        skipped_from - 1
                    ),
                ));
            } else if *base < prev_next {
                problems.push(Problem::new(
                    path,
                    0,
                    format!(
                        "segment starts at sequence {base}, below the {prev_next} the previous segment reaches \
                         (overlapping segments; the engine refuses to open this log)"
                    ),
                ));
            }
        }
        let whole = check_frames(&segment, is_last, problems);
        if whole {
            check_index(&segment, is_last, problems);
        }
        previous = Some((segment.next_seq(), whole));
        last_read = Some((path.clone(), segment.valid_len(), segment.next_seq()));
    }
    if let Some(head) = head {
        check_head(dir, &head, files.last().map(|(b, _)| *b), last_read, &lost, problems);
    }
    Ok(())
}

/// What the engine would call damage from the log's `HEAD` file: its active segment is gone, or
/// the log ends below what was durable.
fn check_head(
    dir: &Path,
    head: &Head,
    last_base: Option<u64>,
    last_read: Option<(PathBuf, u64, u64)>,
    lost: &LostRanges,
    problems: &mut Vec<Problem>,
) {
    if last_base.is_none_or(|b| b < head.active_base) {
        let from = last_read.as_ref().map_or(head.active_base, |(_, _, end)| *end);
        let to = head.reserved_next.max(head.active_base);
        if from < to && !lost.covers(from, to) {
            problems.push(Problem::new(
                dir.join(segment_file_name(head.active_base)),
                0,
                format!(
                    "the active segment HEAD names is missing: sequence numbers {from} to {} are lost",
                    to.saturating_sub(1)
                ),
            ));
        }
        return;
    }
    if let Some((path, len, end)) = last_read {
        if end < head.durable_next && !lost.covers(end, head.durable_next) {
            problems.push(Problem::new(
                path,
                len,
                format!(
                    "the log ends at sequence {end} but HEAD says every record below {} was durable: records {end} \
                     to {} are missing",
                    head.durable_next,
                    head.durable_next - 1
                ),
            ));
        }
    }
}

/// Reads and scans a segment; a last segment ending in a partial frame is read once more after
/// a moment, in case a live engine was in the middle of appending to it.
fn read_for_verify(
    path: &Path,
    is_last: bool,
    keys: Option<&dyn crate::format::batch::FrameKeys>,
) -> Result<ScannedSegment> {
    let segment = ScannedSegment::read(path, keys)?;
    if is_last && matches!(segment.outcome.end, ScanEnd::Torn { .. }) {
        std::thread::sleep(TORN_RECHECK_DELAY);
        return ScannedSegment::read(path, keys);
    }
    Ok(segment)
}

/// Reports a scan that did not reach the end of the file. Returns true if the segment is whole.
/// In the last segment of a log, bytes after the whole frames that no valid frame follows are
/// the end of a write a crash cut short: a note, not damage. (Under `Always` such bytes were
/// never acknowledged; under `Interval` and `Never` a power cut may lose acknowledged records
/// from the tail, as the mode allows, which is not damage either.)
fn check_frames(segment: &ScannedSegment, is_last: bool, problems: &mut Vec<Problem>) -> bool {
    let file_len = segment.bytes.len() as u64;
    match &segment.outcome.end {
        ScanEnd::Clean => true,
        ScanEnd::Torn { offset: 0, reason } if is_last => {
            problems.push(Problem::note(
                &segment.path,
                0,
                format!(
                    "new segment whose creation a crash cut short ({reason}); the engine writes its header again \
                     at open"
                ),
            ));
            false
        }
        ScanEnd::Torn { offset, reason } if is_last => {
            problems.push(Problem::note(
                &segment.path,
                *offset,
                format!(
                    "torn tail, the end of a write a crash cut short ({reason}; {} bytes after the last whole \
                     frame); the engine cuts it off at open",
                    file_len.saturating_sub(*offset)
                ),
            ));
            false
        }
        ScanEnd::Torn { offset, reason } => {
            problems.push(Problem::new(
                &segment.path,
                *offset,
                format!(
                    "sealed segment ends in a partial frame: {reason}; {} bytes after the last whole frame",
                    file_len.saturating_sub(*offset)
                ),
            ));
            false
        }
        ScanEnd::Damaged { offset, reason, resync_next_seq } => {
            problems.push(Problem::new(
                &segment.path,
                *offset,
                format!(
                    "damaged frame: {reason}; valid frames follow it (up to sequence {}), so these bytes were \
                     once whole and have changed",
                    resync_next_seq.saturating_sub(1)
                ),
            ));
            false
        }
    }
}

/// Checks the segment's `.idx` file, if there is one, against a scan of the segment.
fn check_index(segment: &ScannedSegment, is_last: bool, problems: &mut Vec<Problem>) {
    let Some(dir) = segment.path.parent() else { return };
    let path = dir.join(index_file_name(segment.base_seq));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        // A missing index is rebuilt at open: an accelerator gone, not damage.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            problems.push(Problem::new(path, 0, format!("cannot be read: {e}")));
            return;
        }
    };
    let index = match IndexFile::decode(&bytes) {
        Ok(index) => index,
        Err(e) => {
            problems.push(Problem::new(path, e.offset as u64, format!("index does not decode: {}", e.reason)));
            return;
        }
    };
    let file_len = segment.bytes.len() as u64;
    if index.segment_len != file_len {
        // The active segment may keep an index from before a crash; the engine ignores it
        // because the lengths differ, and replaces it when the segment is sealed.
        if !is_last {
            problems.push(Problem::new(
                path,
                16,
                format!(
                    "index describes a segment of {} bytes but {} has {file_len} bytes",
                    index.segment_len,
                    segment.path.display()
                ),
            ));
        }
        return;
    }
    for (offset, message) in index_mismatches(&index, segment) {
        problems.push(Problem::new(&path, offset, message));
    }
}

/// Differences between an index file and what a scan of its segment produces, as (offset in
/// the index file, message). Empty when they agree.
pub(crate) fn index_mismatches(index: &IndexFile, segment: &ScannedSegment) -> Vec<(u64, String)> {
    let state = &segment.outcome.state;
    let mut out = Vec::new();
    if index.segment_len != state.len {
        out.push((16, format!("index says the segment is {} bytes, a scan finds {}", index.segment_len, state.len)));
    }
    if index.next_seq != state.next_seq {
        out.push((24, format!("index says next sequence {}, a scan finds {}", index.next_seq, state.next_seq)));
    }
    if index.last_time_ms != state.last_time_ms {
        out.push((
            32,
            format!("index says last time {} ms, a scan finds {} ms", index.last_time_ms, state.last_time_ms),
        ));
    }
    if index.entries.len() != state.entries.len() {
        out.push((12, format!("index has {} entries, a scan finds {}", index.entries.len(), state.entries.len())));
    }
    let first_diff = index.entries.iter().zip(&state.entries).position(|(a, b)| a != b);
    if let Some(i) = first_diff {
        let (a, b) = (index.entries[i], state.entries[i]);
        out.push((
            (INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN) as u64,
            format!(
                "index entry {i} is (seq {}, offset {}, time {}) but the segment has (seq {}, offset {}, time {})",
                a.seq, a.offset, a.time_ms, b.seq, b.offset, b.time_ms
            ),
        ));
    }
    out
}
