//! `weir salvage`: set damaged bytes aside so a data directory opens again, keeping every
//! record that still checks out.
//!
//! Salvage takes the directory lock, then goes through every log directory (`catalog/`,
//! `queues/`, every `streams/<name>/shard-NNNNNN/` and `streams/<name>/checkpoints/`). A
//! segment that scans clean stays as it is. A damaged one is replaced: its original file is
//! kept under `DATA_DIR/quarantine/<same relative path>`, the whole valid frames before the
//! damage are written back under the segment's own name, and whole valid frames found after
//! it (by frame magic, checksum and payload, with sequence numbers above those kept) go into
//! new segments named by their first sequence number. Every run of sequence numbers no
//! segment holds any more, a deleted segment's included, is recorded in the log's `LOST` file
//! (format-spec.md, section 6.5), so reads skip it on purpose instead of failing on it.
//!
//! Nothing is deleted: a torn tail of a log's last segment is cut off into a quarantine file of
//! its own, and index files that no longer match (or whose segment is gone) are moved to the
//! quarantine too; the engine rebuilds indexes at open.
//!
//! Records in checksum-valid frames that the engine still could not use (a catalog or
//! checkpoint record that is not the JSON it should be, a message-log record that does not
//! decode) end the segment at that frame: it and everything after it in that segment go to the
//! quarantine. A catalog that lost records lost metadata (queues, topics, streams or
//! subscriptions may be missing), and the report says so.
//!
//! Every new file is written atomically (temporary file, fsync, rename, directory fsync), the
//! quarantine copy and the `LOST` file before any original is replaced, so a salvage cut short
//! leaves a directory a second salvage finishes. At the end the lock is released and the engine
//! is opened (and every stream shard read through) to prove the directory is usable.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::engine::catalog::CatalogRecord;
use crate::engine::encryption::KeySource;
use crate::engine::lock::DirLock;
use crate::error::{Error, Result};
use crate::format::batch::{
    decode_frame, decode_records, decode_records_keyed, EncodedBatch, FrameError, FrameKeys, FrameLayout, FrameStamp,
};
use crate::format::head::{Head, HEAD_FILE};
use crate::format::index::IndexFile;
use crate::format::lost::{LostRanges, LOST_FILE};
use crate::format::queue_record::QueueRecord;
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::format::{Compression, Record, RecordRef, SegmentHeader};
use crate::log::head::RESERVE_MAX;
use crate::log::recovery::later_frames;
use crate::log::segment::{index_file_name, new_salt, segment_file_name};
use crate::stream::checkpoint::CheckpointRecord;
use crate::{Engine, Options};

use super::{as_frame_keys, log_dirs, segment_files, ToolKeys};

/// Directory under the data directory where salvage keeps everything it takes out of a log.
pub const QUARANTINE_DIR: &str = "quarantine";

/// How long salvage waits for another process to release the data directory.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Records read per call when salvage reads every stream shard through after opening.
const READ_BATCH: usize = 4096;

/// What salvage did to a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct SalvageReport {
    /// The data directory.
    pub dir: PathBuf,
    /// Where the original bytes of everything changed were put.
    pub quarantine: PathBuf,
    /// Every log directory found, in path order.
    pub logs: Vec<LogSalvage>,
    /// True if the catalog lost records: queues, topics, streams or subscriptions they created
    /// or changed may be missing or out of date.
    pub metadata_lost: bool,
    /// Bytes of segment files read.
    pub bytes_checked: u64,
    /// Whether the engine opened afterwards (and every stream shard read through).
    pub engine_opened: bool,
    /// Why it did not, if it did not.
    pub open_error: Option<String>,
}

impl SalvageReport {
    /// True if salvage changed nothing: every log was whole.
    pub fn is_clean(&self) -> bool {
        self.logs.iter().all(|l| !l.changed())
    }

    /// The log whose directory, relative to the data directory, is `relative`.
    pub fn log(&self, relative: impl AsRef<Path>) -> Option<&LogSalvage> {
        self.logs.iter().find(|l| l.relative == relative.as_ref())
    }
}

/// What salvage did to one log directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogSalvage {
    /// The log's directory.
    pub dir: PathBuf,
    /// The same, relative to the data directory (`catalog`, `queues`, `streams/s/shard-000000`).
    pub relative: PathBuf,
    /// `catalog`, `messages`, `shard`, `checkpoints` or `other`.
    pub kind: &'static str,
    /// Sequence-number ranges `[start, end)` this salvage recorded as lost (ranges an earlier
    /// salvage recorded are not repeated).
    pub lost: Vec<(u64, u64)>,
    /// What was wrong, one `FILE:OFFSET: what` per finding.
    pub findings: Vec<Finding>,
    /// Files moved or copied into the quarantine (their paths there).
    pub quarantined: Vec<PathBuf>,
    /// Segment files written (replacing a damaged one, or new).
    pub written: Vec<PathBuf>,
    /// Bytes of torn tail cut off the log's last segment (not lost records: an unfinished write).
    pub torn_bytes_cut: u64,
    /// Bytes of segment files in the log after salvage.
    pub bytes_kept: u64,
    /// Checksum-valid frames held records the engine cannot use; they were set aside.
    pub undecodable_records: bool,
}

impl LogSalvage {
    /// True if salvage changed anything in this log.
    pub fn changed(&self) -> bool {
        !self.quarantined.is_empty() || !self.written.is_empty() || !self.lost.is_empty()
    }

    /// How many sequence numbers this salvage recorded as lost.
    pub fn lost_count(&self) -> u64 {
        self.lost.iter().map(|(s, e)| e - s).sum()
    }
}

/// One thing salvage found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// Byte offset in it.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.offset, self.what)
    }
}

/// Which records a log holds, and so how its records are checked beyond their frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Catalog,
    Messages,
    Shard,
    Checkpoints,
    Other,
}

impl LogKind {
    fn of(relative: &Path) -> LogKind {
        let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
        match parts.as_slice() {
            ["catalog"] => LogKind::Catalog,
            ["queues"] => LogKind::Messages,
            ["streams", _, "checkpoints"] => LogKind::Checkpoints,
            ["streams", _, shard] if shard.starts_with("shard-") => LogKind::Shard,
            _ => LogKind::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogKind::Catalog => "catalog",
            LogKind::Messages => "messages",
            LogKind::Shard => "shard",
            LogKind::Checkpoints => "checkpoints",
            LogKind::Other => "other",
        }
    }

    /// Why the engine could not use this record, if it could not.
    fn reject(self, record: &Record) -> Option<String> {
        match self {
            LogKind::Catalog => serde_json::from_slice::<CatalogRecord>(&record.value)
                .err()
                .map(|e| format!("catalog record {} does not decode: {e}", record.seq)),
            LogKind::Checkpoints => serde_json::from_slice::<CheckpointRecord>(&record.value)
                .err()
                .map(|e| format!("checkpoint record {} does not decode: {e}", record.seq)),
            LogKind::Messages => QueueRecord::decode(&record.value)
                .err()
                .map(|e| format!("message-log record {} does not decode: {e}", record.seq)),
            LogKind::Shard | LogKind::Other => None,
        }
    }
}

/// Salvages the data directory `dir` (see the module documentation). `progress` is called with
/// (bytes checked so far, bytes to check) as segments are read.
///
/// Fails if `dir` is not a weir data directory, if its lock cannot be taken within 10 seconds,
/// or if a file cannot be read, written or moved; the report says whether the engine opened
/// afterwards.
pub fn salvage_dir(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<SalvageReport> {
    salvage_dir_keyed(dir, None, progress)
}

/// [`salvage_dir`] with the key file of an encrypted data directory: sealed frames are kept only
/// if their tags and records check out, and the engine is opened with the key afterwards.
/// Without it, sealed frames are judged by structure and CRC alone, and the engine is not
/// opened (the report says so).
pub fn salvage_dir_keyed(
    dir: &Path,
    key_source: Option<&KeySource>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SalvageReport> {
    let tool_keys = ToolKeys::new(key_source)?;
    let meta = fs::metadata(dir).map_err(|e| Error::io("salvage", dir, e))?;
    if !meta.is_dir() {
        let e = io::Error::new(io::ErrorKind::NotADirectory, "salvage takes a data directory");
        return Err(Error::io("salvage", dir, e));
    }
    if !["catalog", "queues", "streams"].iter().any(|d| dir.join(d).is_dir()) {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a weir data directory (no catalog/, queues/ or streams/ in it)",
        );
        return Err(Error::io("salvage", dir, e));
    }
    let lock = DirLock::acquire(dir, LOCK_WAIT)?;
    let catalog_had_segments = segment_files(&dir.join("catalog")).is_ok_and(|f| !f.segments.is_empty());
    let quarantine = dir.join(QUARANTINE_DIR);
    let logs = known_log_dirs(dir)?;
    let total: u64 = logs.iter().map(|l| segment_bytes(l)).sum();
    let mut ctx = Ctx { root: dir, quarantine: &quarantine, done: 0, total, progress, keys: &tool_keys };
    let mut reports = Vec::with_capacity(logs.len());
    for log in &logs {
        reports.push(salvage_log(&mut ctx, log)?);
    }
    let mut metadata_lost = false;
    if let Some(catalog) = reports.iter_mut().find(|r| r.kind == "catalog") {
        metadata_lost = !catalog.lost.is_empty() || catalog.undecodable_records || !catalog_had_segments;
    } else if dir.join("queues").is_dir() || dir.join("streams").is_dir() {
        metadata_lost = true;
    }
    let bytes_checked = ctx.done;
    drop(lock);
    let (engine_opened, open_error) = match prove_opens(dir, key_source) {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.to_string())),
    };
    Ok(SalvageReport {
        dir: dir.to_path_buf(),
        quarantine,
        logs: reports,
        metadata_lost,
        bytes_checked,
        engine_opened,
        open_error,
    })
}

/// Opens the engine on the salvaged directory and reads every stream shard to its end.
fn prove_opens(dir: &Path, key_source: Option<&KeySource>) -> Result<()> {
    // No queue index snapshot at its close: salvage changes no file it does not have to (a
    // snapshot it replaced would take the one that was there along).
    let options = Options {
        background: false,
        lock_wait: LOCK_WAIT,
        snapshot_on_close: false,
        key_source: key_source.cloned(),
        ..Options::default()
    };
    let engine = Engine::open(dir, options)?;
    for name in engine.list_streams() {
        let stream = engine.stream(&name)?;
        for shard in stream.shards() {
            let log = shard.log();
            let mut at = log.first_seq();
            loop {
                let records = log.read(at, READ_BATCH, 16 << 20)?;
                let Some(last) = records.last() else { break };
                at = last.seq + 1;
            }
        }
    }
    Ok(())
}

/// Every log directory of a data directory: those holding segments (outside the quarantine),
/// and the engine's own ones even when their segments are all gone.
fn known_log_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: BTreeSet<PathBuf> = log_dirs(root)?.into_iter().collect();
    for fixed in ["catalog", "queues"] {
        if root.join(fixed).is_dir() {
            dirs.insert(root.join(fixed));
        }
    }
    if let Ok(streams) = fs::read_dir(root.join("streams")) {
        for stream in streams.flatten() {
            let Ok(logs) = fs::read_dir(stream.path()) else { continue };
            for log in logs.flatten() {
                let name = log.file_name();
                let name = name.to_string_lossy();
                if log.path().is_dir() && (name.starts_with("shard-") || name == "checkpoints") {
                    dirs.insert(log.path());
                }
            }
        }
    }
    Ok(dirs.into_iter().collect())
}

/// Total size of the `*.seg` files directly in `dir`.
fn segment_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// What salvage carries from log to log.
struct Ctx<'a> {
    root: &'a Path,
    quarantine: &'a Path,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
    /// The key ring, if salvage was given one.
    keys: &'a ToolKeys,
}

/// A whole, valid frame: its bytes in the file, its sequence numbers, time and durable point.
#[derive(Debug, Clone)]
struct Frame {
    bytes: Range<usize>,
    base: u64,
    next: u64,
    time_ms: u64,
    durable_seq: u64,
}

/// Frames with consecutive sequence numbers, to be written as one segment named `base`.
#[derive(Debug, Clone)]
struct Piece {
    base: u64,
    next: u64,
    frames: Vec<Frame>,
}

impl Piece {
    fn empty(base: u64) -> Piece {
        Piece { base, next: base, frames: Vec::new() }
    }
}

/// What to do with one segment file.
#[derive(Debug)]
enum Plan {
    /// It is whole: leave it (its index may still go).
    Keep { next: u64 },
    /// The last segment of the log ends in a torn write: cut it at `at`.
    Cut { at: usize, next: u64 },
    /// Replace the file by these pieces (possibly none).
    Replace { pieces: Vec<Piece> },
}

/// One segment file and what salvage does with it.
struct Action {
    base: u64,
    path: PathBuf,
    bytes: Bytes,
    plan: Plan,
    layout: FrameLayout,
    skipped_from: u64,
}

impl Action {
    /// The `[base, next)` ranges of the segments it leaves.
    fn spans(&self) -> Vec<(u64, u64)> {
        match &self.plan {
            Plan::Keep { next } | Plan::Cut { next, .. } => vec![(self.base, *next)],
            Plan::Replace { pieces } => pieces.iter().map(|p| (p.base, p.next)).collect(),
        }
    }

    /// Where the numbers skipped before the segment it leaves at `start` begin: the original
    /// header's skipped range stays with the segment that keeps its base.
    fn skipped_from_before(&self, start: u64) -> u64 {
        if start == self.base {
            self.skipped_from.min(start)
        } else {
            start
        }
    }
}

/// The analysis of one segment file.
struct Analysis {
    plan: Plan,
    /// How its frames are laid out (what they are written back as depends on it).
    layout: FrameLayout,
    /// The numbers `[skipped_from, base)` before it were never written (its header says so).
    skipped_from: u64,
    /// A checksum-valid frame held a record the engine cannot use.
    bad_record: bool,
    /// One past the highest sequence number of any valid frame seen in the file.
    seen_next: u64,
    findings: Vec<Finding>,
}

/// How one frame checks out.
enum Check {
    Good(Frame),
    /// Checksum-valid, but a record the engine cannot use.
    BadRecord(Frame, String),
    Bad(String),
}

fn check_frame(bytes: &Bytes, at: usize, layout: FrameLayout, kind: LogKind, keys: Option<&dyn FrameKeys>) -> Check {
    let Some(rest) = bytes.get(at..) else { return Check::Bad("offset past the end".into()) };
    let header = match decode_frame(rest, layout) {
        Ok(h) => h,
        Err(FrameError::Incomplete { needed }) => {
            return Check::Bad(format!("frame needs {needed} bytes, only {} remain", rest.len()))
        }
        Err(FrameError::Corrupt(e)) => return Check::Bad(e.reason),
    };
    let end = at + header.frame_len as usize;
    let frame = Frame {
        bytes: at..end,
        base: header.base_seq,
        next: header.next_seq(),
        time_ms: header.time_ms,
        durable_seq: header.durable_seq,
    };
    // Without the key a sealed frame is as far checked as it can be once its CRC is.
    if header.sealed && keys.is_none() {
        return Check::Good(frame);
    }
    let records = match decode_records_keyed(&header, &bytes.slice(at..end), keys) {
        Ok(r) => r,
        Err(e) => return Check::Bad(format!("payload: {}", e.reason)),
    };
    match records.iter().find_map(|r| kind.reject(r)) {
        Some(why) => Check::BadRecord(frame, why),
        None => Check::Good(frame),
    }
}

/// Decides what to do with the segment `path` (base `base`), whose bytes are `bytes`.
/// `min_seq` is one past what the log's earlier segments hold; `upper` bounds the sequence
/// numbers a sealed segment may hold (the next segment's base).
#[allow(clippy::too_many_arguments)]
fn analyze(
    path: &Path,
    bytes: &Bytes,
    base: u64,
    min_seq: u64,
    upper: Option<u64>,
    kind: LogKind,
    keys: Option<&dyn FrameKeys>,
) -> Analysis {
    let mut findings = Vec::new();
    let mut find =
        |offset: usize, what: String| findings.push(Finding { path: path.to_path_buf(), offset: offset as u64, what });
    let len = bytes.len();
    let header = match SegmentHeader::decode(bytes) {
        Ok(h) if h.base_seq == base => Some(h),
        Ok(h) => {
            find(0, format!("header says base sequence {} but the file name says {base}", h.base_seq));
            None
        }
        Err(e) => {
            find(0, format!("segment header: {}", e.reason));
            None
        }
    };
    let header_ok = header.is_some();
    // Without a header, the salt of a version-2 segment is the one its first frame carries, if
    // that frame is whole where the first frame belongs and starts at the base; else only
    // version-1 frames can be told from bytes that merely look like frames.
    let layout = header.map_or_else(
        || salt_of_first_frame(bytes, base).map_or(FrameLayout::V1, |salt| FrameLayout::V2 { salt }),
        |h| h.frame_layout(),
    );
    let skipped_from = header.map_or(base, |h| h.skipped_from());
    let first_frame = header.map_or(SEGMENT_HEADER_LEN, |h| h.len());
    // The whole frames from the header on, with consecutive sequence numbers from the base.
    let mut prefix = Piece::empty(base);
    let mut last_time = 0u64;
    let mut stop: Option<usize> = None; // where the prefix stops being valid
    let mut search_from = 0; // where the search for whole frames after it starts
    let mut bad_record = false;
    if header_ok && base < min_seq {
        find(0, format!("segment starts at sequence {base}, below the {min_seq} the previous segment reaches"));
        stop = Some(first_frame.min(len));
        search_from = first_frame;
    } else if header_ok {
        let mut at = first_frame;
        // Zeros to the end of the file are the writer's preallocated space, not damage.
        while at < len && !crate::log::recovery::is_unused_space(&bytes[at..]) {
            match check_frame(bytes, at, layout, kind, keys) {
                Check::Good(f)
                    if f.base == prefix.next && f.time_ms >= last_time && upper.is_none_or(|u| f.next <= u) =>
                {
                    at = f.bytes.end;
                    prefix.next = f.next;
                    last_time = f.time_ms;
                    prefix.frames.push(f);
                    continue;
                }
                Check::Good(f) if f.base != prefix.next => {
                    find(at, format!("frame starts at sequence {} where {} was expected", f.base, prefix.next))
                }
                Check::Good(f) if f.time_ms < last_time => find(at, "frame time goes backwards".to_string()),
                Check::Good(f) => find(at, format!("frame reaches sequence {}, past the next segment's start", f.next)),
                Check::BadRecord(_, why) => {
                    find(at, format!("{why}; this frame and the rest of the segment are set aside"));
                    bad_record = true;
                }
                Check::Bad(why) => find(at, why),
            }
            stop = Some(at);
            search_from = at + 1;
            break;
        }
    } else {
        stop = Some(0);
        search_from = 1;
    }
    let mut seen_next = prefix.next.max(base);
    let Some(stop) = stop else {
        let plan = Plan::Keep { next: prefix.next };
        return Analysis { plan, layout, skipped_from, bad_record, seen_next, findings };
    };
    // Whole frames after the damage, by frame magic: each run of consecutive sequence numbers
    // becomes a segment of its own.
    let mut runs: Vec<Piece> = Vec::new();
    let floor = min_seq.max(prefix.next);
    if bad_record {
        if let Some(next) = later_frames(bytes, stop, layout, prefix.next, 0).next_seq {
            seen_next = seen_next.max(next);
        }
    } else {
        let mut min = floor;
        let mut at = search_from;
        while at + 4 <= len {
            let Some(pos) = bytes[at..].windows(4).position(|w| w == layout.magic()) else { break };
            let start = at + pos;
            match check_frame(bytes, start, layout, kind, keys) {
                Check::Good(f) if f.base >= min && upper.is_none_or(|u| f.next <= u) => {
                    seen_next = seen_next.max(f.next);
                    min = f.next;
                    at = f.bytes.end;
                    match runs.last_mut() {
                        Some(run)
                            if run.next == f.base
                                && run.frames.last().is_none_or(|l| l.time_ms <= f.time_ms && l.bytes.end == start) =>
                        {
                            run.next = f.next;
                            run.frames.push(f);
                        }
                        last => {
                            if let Some(run) = last {
                                // Another damaged stretch: say where it starts.
                                let end = run.frames.last().map_or(start, |l| l.bytes.end);
                                let what = if f.base > run.next {
                                    format!(
                                        "{} bytes that are not whole valid frames; sequence numbers {} to {} are missing",
                                        start - end,
                                        run.next,
                                        f.base - 1
                                    )
                                } else {
                                    format!("{} bytes that are not whole valid frames", start - end)
                                };
                                find(end, what);
                            }
                            runs.push(Piece { base: f.base, next: f.next, frames: vec![f] });
                        }
                    }
                }
                Check::BadRecord(f, why) if f.base >= min => {
                    seen_next = seen_next.max(f.next);
                    bad_record = true;
                    find(start, format!("{why}; this frame and the rest of the segment are set aside"));
                    break;
                }
                _ => at = start + 1,
            }
        }
    }
    let is_last = upper.is_none();
    // What recovery cuts, salvage cuts: nothing valid follows (the unfinished end of the last
    // write), or in a version-2 segment only frames that all say the log was durable below
    // the hole when they were written (an unacknowledged tail the disk wrote out of order).
    let unacknowledged = match layout {
        FrameLayout::V1 => runs.is_empty(),
        FrameLayout::V2 { .. } => runs.iter().flat_map(|r| &r.frames).all(|f| f.durable_seq <= prefix.next),
    };
    if is_last && header_ok && base >= min_seq && unacknowledged && !bad_record {
        let plan = Plan::Cut { at: stop, next: prefix.next };
        return Analysis { plan, layout, skipped_from, bad_record, seen_next, findings };
    }
    let mut pieces = Vec::new();
    if !prefix.frames.is_empty() {
        pieces.push(prefix);
    }
    pieces.extend(runs);
    Analysis { plan: Plan::Replace { pieces }, layout, skipped_from, bad_record, seen_next, findings }
}

/// The salt of a version-2 segment whose header is unreadable, from its first frame: whole,
/// where the first frame of a version-2 segment starts, and beginning at the segment's base.
fn salt_of_first_frame(bytes: &[u8], base: u64) -> Option<u64> {
    let frame = bytes.get(SEGMENT_HEADER_LEN..)?;
    let salt = crate::format::le_u64(frame.get(40..48)?, 0);
    let header = decode_frame(frame, FrameLayout::V2 { salt }).ok()?;
    (header.base_seq == base).then_some(salt)
}

/// Salvages one log directory.
fn salvage_log(ctx: &mut Ctx<'_>, dir: &Path) -> Result<LogSalvage> {
    let relative = dir.strip_prefix(ctx.root).map(Path::to_path_buf).unwrap_or_else(|_| dir.to_path_buf());
    let kind = LogKind::of(&relative);
    let mut report =
        LogSalvage { dir: dir.to_path_buf(), relative: relative.clone(), kind: kind.name(), ..LogSalvage::default() };
    let quarantine_dir = ctx.quarantine.join(&relative);
    let files = segment_files(dir)?.segments;
    // A KEYS file the key file cannot unwrap stops salvage: without the data keys nothing of the
    // log can be told good from bad, and guessing would set good data aside.
    let log_keys = ctx.keys.for_log(dir)?;

    // The ranges an earlier salvage gave up on.
    let lost_path = dir.join(LOST_FILE);
    let mut lost_file_bad = false;
    let existing = match fs::read(&lost_path) {
        Ok(bytes) => match LostRanges::decode(&bytes) {
            Ok(l) => l,
            Err(e) => {
                report.findings.push(Finding { path: lost_path.clone(), offset: 0, what: e.reason });
                lost_file_bad = true;
                LostRanges::default()
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => LostRanges::default(),
        Err(e) => return Err(Error::io("read", &lost_path, e)),
    };

    if files.is_empty() {
        report.findings.push(Finding {
            path: dir.to_path_buf(),
            offset: 0,
            what: "the log has no segment: whatever it held is gone (the engine starts it afresh)".into(),
        });
    }

    // The HEAD file: what it says was durable or in use must be there after salvage, or be
    // recorded as lost. One that does not decode is set aside and written anew at the end.
    let head_path = dir.join(HEAD_FILE);
    let (head, head_problem) = super::read_head_file(dir);
    if let Some(problem) = &head_problem {
        report.findings.push(Finding {
            path: head_path.clone(),
            offset: 0,
            what: format!("{problem} (the engine refuses to open this log; salvage writes it anew)"),
        });
    }

    // Pass 1: decide what to do with every segment; nothing is changed yet.
    let mut actions: Vec<Action> = Vec::new();
    // One past what the segments before hold; the catalog is never trimmed, so it starts at 0.
    let mut cursor: Option<u64> = (kind == LogKind::Catalog).then_some(0);
    let present: BTreeSet<u64> = files.iter().map(|(b, _)| *b).collect();
    for (i, (base, path)) in files.iter().enumerate() {
        let upper = files.get(i + 1).map(|(b, _)| *b);
        let min_seq = cursor.unwrap_or(*base);
        let (bytes, mut plan, seen_next, layout, skipped_from) = match read_segment(path) {
            Ok(bytes) => {
                ctx.done += bytes.len() as u64;
                (ctx.progress)(ctx.done, ctx.total.max(ctx.done));
                let analysis = analyze(path, &bytes, *base, min_seq, upper, kind, as_frame_keys(&log_keys));
                report.findings.extend(analysis.findings);
                report.undecodable_records |= analysis.bad_record;
                (bytes, analysis.plan, analysis.seen_next, analysis.layout, analysis.skipped_from)
            }
            Err(e) => {
                report.findings.push(Finding { path: path.clone(), offset: 0, what: format!("cannot be read: {e}") });
                (Bytes::new(), Plan::Replace { pieces: Vec::new() }, *base, FrameLayout::V1, *base)
            }
        };
        // Numbers a segment's header says were skipped were never written: not a gap.
        let skip = skipped_from.clamp(min_seq, (*base).max(min_seq));
        if min_seq < skip && !existing.covers(min_seq, skip) {
            report.findings.push(Finding {
                path: path.clone(),
                offset: 0,
                what: format!("sequence numbers {min_seq} to {} are in no segment", skip - 1),
            });
        }
        // The last segment must carry the log's next sequence number past every number seen, so
        // that none is handed out twice.
        if let (None, Plan::Replace { pieces }) = (upper, &mut plan) {
            let required = seen_next.max(min_seq).max(*base);
            if pieces.last().is_none_or(|p| p.next < required) {
                pieces.push(Piece::empty(required));
            }
        }
        let reach = match &plan {
            Plan::Keep { next } | Plan::Cut { next, .. } => Some(*next),
            Plan::Replace { pieces } => pieces.last().map(|p| p.next),
        };
        if let Some(r) = reach {
            cursor = Some(cursor.map_or(r, |c| c.max(r)));
        }
        actions.push(Action { base: *base, path: path.clone(), bytes, plan, layout, skipped_from });
    }

    // The sequence numbers between consecutive segments after salvage are lost, except those
    // a segment's header says were skipped.
    let mut gaps: Vec<(u64, u64)> = Vec::new();
    let mut reach: Option<u64> = (kind == LogKind::Catalog).then_some(0);
    for action in &actions {
        for (start, next) in action.spans() {
            let skipped_from = action.skipped_from_before(start);
            if let Some(r) = reach {
                if skipped_from > r {
                    gaps.push((r, skipped_from));
                }
            }
            reach = Some(reach.map_or(next, |r| r.max(next)));
        }
    }
    // What HEAD says the log held: a log that now ends below its durable point, or whose
    // active segment is gone, lost those records (the engine would report them as damage).
    if let Some(head) = head {
        let end = cursor.unwrap_or(head.active_base);
        let active_gone = files.last().is_none_or(|(b, _)| *b < head.active_base);
        let lost_to = if active_gone { head.reserved_next.max(head.active_base) } else { head.durable_next };
        if end < lost_to {
            let what = if active_gone {
                format!("the active segment (base {}) is missing", head.active_base)
            } else {
                format!("the log ends at sequence {end} but HEAD says every record below {lost_to} was durable")
            };
            report.findings.push(Finding {
                path: dir.join(segment_file_name(if active_gone { head.active_base } else { end })),
                offset: 0,
                what: format!("{what}: sequence numbers {end} to {} are lost", lost_to - 1),
            });
            gaps.push((end, lost_to));
        }
    }
    let new_lost: Vec<(u64, u64)> = gaps.iter().flat_map(|&(s, e)| uncovered(&existing, s, e)).collect();

    // Pass 2: new files, written to temporary names and synced. Those that take the name of the
    // file they replace are renamed over it; the others are new names.
    let mut replacing: Vec<(PathBuf, PathBuf)> = Vec::new(); // (temporary, final)
    let mut adding: Vec<(PathBuf, PathBuf)> = Vec::new();
    for action in &actions {
        let (base, bytes) = (action.base, &action.bytes);
        match &action.plan {
            Plan::Keep { .. } => {}
            Plan::Cut { at, .. } => replacing.push(stage(dir, base, &[&bytes[..*at]])?),
            Plan::Replace { pieces } => {
                for p in pieces {
                    let staged = stage_piece(dir, p, action.skipped_from_before(p.base), action.layout, bytes)?;
                    if p.base == base {
                        replacing.push(staged);
                    } else {
                        adding.push(staged);
                    }
                }
            }
        }
    }

    // Pass 3: the originals into the quarantine.
    let mut to_remove: Vec<PathBuf> = Vec::new();
    let last_base = files.last().map(|(b, _)| *b);
    for Action { base, path, bytes, plan, .. } in &actions {
        let index = dir.join(index_file_name(*base));
        match plan {
            Plan::Keep { .. } => {
                if let Some(why) = index_problem(&index, bytes, *base, path, last_base == Some(*base)) {
                    report.findings.push(Finding { path: index.clone(), offset: 0, what: why });
                    report.quarantined.push(quarantine_file(&index, &quarantine_dir)?);
                    to_remove.push(index);
                }
                continue;
            }
            Plan::Cut { at, .. } => {
                let tail = bytes.get(*at..).unwrap_or_default();
                let name = format!("{}.torn-at-{at}", segment_file_name(*base));
                report.quarantined.push(quarantine_bytes(tail, &quarantine_dir, &name)?);
                report.torn_bytes_cut += tail.len() as u64;
            }
            Plan::Replace { .. } => {
                report.quarantined.push(quarantine_file(path, &quarantine_dir)?);
                if !replacing.iter().any(|(_, target)| target == path) {
                    to_remove.push(path.clone());
                }
            }
        }
        if fs::symlink_metadata(&index).is_ok() {
            report.quarantined.push(quarantine_file(&index, &quarantine_dir)?);
            to_remove.push(index);
        }
    }
    // Indexes whose segment is gone (a deleted segment's): evidence of what it held; set aside.
    for name in list_names(dir)? {
        let Some(stem) = name.strip_suffix(".idx") else { continue };
        let Ok(base) = stem.parse::<u64>() else { continue };
        if stem.len() != 20 || present.contains(&base) {
            continue;
        }
        let index = dir.join(&name);
        let what = match fs::read(&index).ok().and_then(|b| IndexFile::decode(&b).ok()) {
            Some(i) => format!(
                "index of a missing segment (it held sequence numbers {base} to {})",
                i.next_seq.saturating_sub(1)
            ),
            None => "index of a missing segment".to_string(),
        };
        report.findings.push(Finding { path: index.clone(), offset: 0, what });
        report.quarantined.push(quarantine_file(&index, &quarantine_dir)?);
        to_remove.push(index);
    }
    if lost_file_bad {
        report.quarantined.push(quarantine_file(&lost_path, &quarantine_dir)?);
    }
    if head_problem.is_some() && fs::symlink_metadata(&head_path).is_ok() {
        report.quarantined.push(quarantine_file(&head_path, &quarantine_dir)?);
    }
    if !report.quarantined.is_empty() {
        sync_dirs_up(&quarantine_dir, ctx.quarantine)?;
    }

    // Pass 4: the LOST file, before any gap can appear.
    if !new_lost.is_empty() || lost_file_bad {
        let mut all = existing.lost.clone();
        all.extend(gaps.iter().copied());
        let merged = LostRanges { lost: coalesce(all) };
        if merged.lost.is_empty() {
            remove_file(&lost_path)?;
        } else {
            write_atomic(&lost_path, &merged.encode())?;
        }
    }

    // Pass 5: new segments in, then the replacements over their originals, then the originals
    // with no replacement out. Cut short anywhere, the log either refuses to open (overlapping
    // segments) or shows gaps the LOST file covers; a second salvage finishes the job.
    for (tmp, target) in adding.iter().chain(&replacing) {
        fs::rename(tmp, target).map_err(|e| Error::io("rename", tmp, e))?;
        report.written.push(target.clone());
    }
    for path in &to_remove {
        remove_file(path)?;
    }
    sync_dir(dir)?;
    if head_problem.is_some() {
        // What the numbers in use reached is unknown: the log goes on a whole reservation above
        // everything salvage saw, as far as any writer reserves at once.
        let active_base = actions.iter().flat_map(|a| a.spans()).map(|(start, _)| start).max();
        if let Some(active_base) = active_base {
            let reserved_next = cursor.unwrap_or(active_base).max(active_base).saturating_add(RESERVE_MAX);
            let head = Head { active_base, reserved_next, durable_next: 0 };
            write_atomic(&head_path, &head.encode())?;
            report.written.push(head_path);
        }
    }

    report.written.sort();
    report.lost = coalesce(new_lost);
    report.bytes_kept = segment_bytes(dir);
    Ok(report)
}

/// What is wrong with a whole segment's index file, if anything (a missing one is fine).
fn index_problem(index: &Path, segment: &Bytes, base: u64, segment_path: &Path, is_last: bool) -> Option<String> {
    let bytes = match fs::read(index) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    let decoded = match IndexFile::decode(&bytes) {
        Ok(i) => i,
        Err(e) => return Some(format!("index does not decode: {} (the engine rebuilds it)", e.reason)),
    };
    if decoded.segment_len != segment.len() as u64 {
        if is_last {
            return None;
        }
        return Some(format!(
            "index describes a segment of {} bytes but {} has {} (the engine rebuilds it)",
            decoded.segment_len,
            segment_path.display(),
            segment.len()
        ));
    }
    let scanned = super::ScannedSegment {
        path: segment_path.to_path_buf(),
        base_seq: base,
        bytes: segment.clone(),
        outcome: crate::log::recovery::scan_segment(segment, base, super::index_interval_bytes()),
    };
    let mismatches = super::verify::index_mismatches(&decoded, &scanned);
    let first = mismatches.into_iter().next()?;
    Some(format!("{} (the engine rebuilds it)", first.1))
}

/// The parts of `[start, end)` no range of `lost` covers.
fn uncovered(lost: &LostRanges, start: u64, end: u64) -> Vec<(u64, u64)> {
    let ranges = coalesce(lost.lost.clone());
    let mut out = Vec::new();
    let mut at = start;
    for (s, e) in ranges {
        if e <= at {
            continue;
        }
        if s >= end {
            break;
        }
        if s > at {
            out.push((at, s.min(end)));
        }
        at = at.max(e);
        if at >= end {
            break;
        }
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// Sorts ranges and merges those that touch or overlap; drops empty ones.
fn coalesce(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(s, e)| s < e);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn read_segment(path: &Path) -> Result<Bytes> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file, so not a segment");
        return Err(Error::io("read", path, e));
    }
    Ok(Bytes::from(fs::read(path).map_err(|e| Error::io("read", path, e))?))
}

fn list_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Writes `piece` as a version-2 segment (skipping from `skipped_from`) to a temporary file in
/// `dir`; returns (temporary, final). Frames of a version-2 segment are copied as they are
/// (the new segment takes their salt); those of a version-1 segment are written again as
/// version-2 frames under a fresh salt, same records, numbers and time, durable up to their
/// own first number (the segment is synced whole before it takes its name).
fn stage_piece(
    dir: &Path,
    piece: &Piece,
    skipped_from: u64,
    layout: FrameLayout,
    bytes: &Bytes,
) -> Result<(PathBuf, PathBuf)> {
    let salt = match layout {
        FrameLayout::V2 { salt } => salt,
        FrameLayout::V1 => new_salt(),
    };
    let header = SegmentHeader::new(piece.base, salt, skipped_from).encode();
    let mut rewritten: Vec<Vec<u8>> = Vec::new();
    if layout == FrameLayout::V1 {
        for f in &piece.frames {
            let frame = bytes.slice(f.bytes.clone());
            let records = decode_frame(&frame, layout)
                .map_err(|e| format!("{e:?}"))
                .and_then(|h| decode_records(&h, &frame).map_err(|e| e.to_string()))
                .map_err(|why| Error::corrupt(dir, f.bytes.start as u64, format!("frame no longer decodes: {why}")))?;
            let refs: Vec<RecordRef<'_>> = records.iter().map(|r| RecordRef { key: &r.key, value: &r.value }).collect();
            let stamp = FrameStamp { base_seq: f.base, time_ms: f.time_ms, salt, durable_seq: f.base };
            rewritten.push(EncodedBatch::encode(&refs, Compression::Auto).seal(&stamp).to_vec());
        }
    }
    let mut chunks: Vec<&[u8]> = Vec::with_capacity(piece.frames.len() + 1);
    chunks.push(&header);
    if layout == FrameLayout::V1 {
        chunks.extend(rewritten.iter().map(Vec::as_slice));
    } else {
        chunks.extend(piece.frames.iter().map(|f| &bytes[f.bytes.clone()]));
    }
    stage(dir, piece.base, &chunks)
}

/// Writes `chunks` to a temporary file for segment `base` of `dir`, synced.
fn stage(dir: &Path, base: u64, chunks: &[&[u8]]) -> Result<(PathBuf, PathBuf)> {
    let target = dir.join(segment_file_name(base));
    let tmp = dir.join(format!("{}.salvage.tmp", segment_file_name(base)));
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    for chunk in chunks {
        file.write_all(chunk).map_err(|e| Error::io("write", &tmp, e))?;
    }
    file.sync_data().map_err(|e| Error::io("fsync", &tmp, e))?;
    Ok((tmp, target))
}

/// A name in `dir` for `name` that is not taken yet: `name`, else `name.1`, `name.2`, ...
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (1u32..).map(|n| dir.join(format!("{name}.{n}"))).find(|p| fs::symlink_metadata(p).is_err()).unwrap_or(first)
}

/// Keeps `path` in the quarantine directory `to` (a hard link, or a synced copy where links
/// are not possible; a non-file is moved). The original stays until the caller removes it.
fn quarantine_file(path: &Path, to: &Path) -> Result<PathBuf> {
    fs::create_dir_all(to).map_err(|e| Error::io("create directory", to, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "unnamed".into());
    let target = free_name(to, &name);
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        fs::rename(path, &target).map_err(|e| Error::io("move to quarantine", path, e))?;
        return Ok(target);
    }
    if fs::hard_link(path, &target).is_err() {
        let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        write_synced(&target, &bytes)?;
    }
    Ok(target)
}

/// Writes `bytes` into the quarantine directory `to` as a new file named after `name`.
fn quarantine_bytes(bytes: &[u8], to: &Path, name: &str) -> Result<PathBuf> {
    fs::create_dir_all(to).map_err(|e| Error::io("create directory", to, e))?;
    let target = free_name(to, name);
    write_synced(&target, bytes)?;
    Ok(target)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(|e| Error::io("create", path, e))?;
    file.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", path, e))
}

/// Replaces `path` atomically: temporary file, fsync, rename, directory fsync.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::log::io::tmp_path(path);
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn remove_file(path: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()), // moved already
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Syncs `dir` and each parent up to and including `top`, so new entries in all of them last.
fn sync_dirs_up(dir: &Path, top: &Path) -> Result<()> {
    let mut at = Some(dir);
    while let Some(d) = at {
        sync_dir(d)?;
        if d == top {
            break;
        }
        at = d.parent();
    }
    if let Some(parent) = top.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::batch::EncodedBatch;
    use crate::format::{Compression, RecordRef};

    /// A segment `base` of one-record frames for `seqs` (times 100, 101, ...), and the offset of
    /// each frame.
    fn segment(base: u64, seqs: &[u64]) -> (Vec<u8>, Vec<usize>) {
        const SALT: u64 = 77;
        let mut out = SegmentHeader::new(base, SALT, base).encode();
        let mut offsets = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            offsets.push(out.len());
            let value = format!("value {seq}");
            let mut batch =
                EncodedBatch::encode(&[RecordRef { key: b"k", value: value.as_bytes() }], Compression::None);
            let stamp = FrameStamp { base_seq: seq, time_ms: 100 + i as u64, salt: SALT, durable_seq: seq };
            out.extend_from_slice(batch.seal(&stamp));
        }
        (out, offsets)
    }

    fn run(bytes: &[u8], base: u64, min_seq: u64, upper: Option<u64>) -> Analysis {
        analyze(Path::new("x.seg"), &Bytes::copy_from_slice(bytes), base, min_seq, upper, LogKind::Shard, None)
    }

    fn spans(plan: &Plan) -> Vec<(u64, u64)> {
        match plan {
            Plan::Replace { pieces } => pieces.iter().map(|p| (p.base, p.next)).collect(),
            other => panic!("expected a replacement, got {other:?}"),
        }
    }

    #[test]
    fn a_whole_segment_is_kept_and_a_torn_last_one_cut() {
        let (bytes, offsets) = segment(5, &[5, 6, 7]);
        assert!(matches!(run(&bytes, 5, 5, Some(8)).plan, Plan::Keep { next: 8 }));
        let cut = &bytes[..bytes.len() - 3];
        assert!(matches!(run(cut, 5, 5, None).plan, Plan::Cut { at, next: 7 } if at == offsets[2]));
        // The same cut in a sealed segment loses sequence 7: the prefix is written back.
        assert_eq!(spans(&run(cut, 5, 5, Some(8)).plan), vec![(5, 7)]);
    }

    #[test]
    fn a_bad_header_keeps_the_frames_after_it() {
        let (mut bytes, _) = segment(5, &[5, 6, 7]);
        bytes[3] ^= 0xff;
        let analysis = run(&bytes, 5, 5, None);
        assert_eq!(spans(&analysis.plan), vec![(5, 8)]);
        assert_eq!(analysis.findings[0].offset, 0);
    }

    #[test]
    fn frames_after_damage_form_runs_split_where_sequence_numbers_jump() {
        let (mut bytes, offsets) = segment(0, &[0, 1, 2, 3, 4, 5]);
        bytes[offsets[1] + 45] ^= 1; // frame 1 fails its checksum
        bytes[offsets[4] + 45] ^= 1; // so does frame 4
        let analysis = run(&bytes, 0, 0, Some(6));
        assert_eq!(spans(&analysis.plan), vec![(0, 1), (2, 4), (5, 6)]);
        assert_eq!(analysis.seen_next, 6);
        let offsets_found: Vec<u64> = analysis.findings.iter().map(|f| f.offset).collect();
        assert_eq!(offsets_found, vec![offsets[1] as u64, offsets[4] as u64]);
    }

    #[test]
    fn trailing_junk_in_a_sealed_segment_loses_nothing() {
        let (mut bytes, _) = segment(0, &[0, 1]);
        bytes.extend_from_slice(b"WBF2 and then some junk");
        assert_eq!(spans(&run(&bytes, 0, 0, Some(2)).plan), vec![(0, 2)]);
    }

    #[test]
    fn an_overlapping_segment_keeps_only_the_frames_above_its_predecessor() {
        let (bytes, _) = segment(3, &[3, 4, 5, 6]);
        let analysis = run(&bytes, 3, 5, None);
        assert_eq!(spans(&analysis.plan), vec![(5, 7)]);
    }

    #[test]
    fn a_sealed_segment_never_keeps_frames_past_the_next_segment() {
        let (bytes, _) = segment(0, &[0, 1, 2, 3]);
        let analysis = run(&bytes, 0, 0, Some(2));
        assert_eq!(spans(&analysis.plan), vec![(0, 2)]);
    }

    #[test]
    fn a_damaged_version_1_segment_is_written_back_as_version_2_with_the_same_records() {
        let (v2, offsets) = segment(0, &[0, 1, 2, 3]);
        // The same frames in the version-1 layout.
        let mut bytes = SegmentHeader { base_seq: 0, version: crate::format::SegmentVersion::V1 }.encode();
        let mut v1_offsets = Vec::new();
        for (i, &at) in offsets.iter().enumerate() {
            let end = offsets.get(i + 1).copied().unwrap_or(v2.len());
            v1_offsets.push(bytes.len());
            bytes.extend(crate::format::batch::v1_frame_from(&v2[at..end]));
        }
        bytes[v1_offsets[1] + 45] ^= 1;
        let bytes = Bytes::from(bytes);
        let analysis = analyze(Path::new("x.seg"), &bytes, 0, 0, Some(4), LogKind::Shard, None);
        assert_eq!(analysis.layout, FrameLayout::V1);
        let Plan::Replace { pieces } = &analysis.plan else { panic!("{:?}", analysis.plan) };
        assert_eq!(pieces.iter().map(|p| (p.base, p.next)).collect::<Vec<_>>(), vec![(0, 1), (2, 4)]);
        let dir = tempfile::tempdir().expect("tempdir");
        let (tmp, target) = stage_piece(dir.path(), &pieces[1], 2, analysis.layout, &bytes).expect("stage");
        assert_eq!(target, dir.path().join(segment_file_name(2)));
        let written = Bytes::from(fs::read(&tmp).expect("read"));
        let header = SegmentHeader::decode(&written).expect("header");
        assert_eq!((header.version_number(), header.base_seq, header.skipped_from()), (2, 2, 2));
        let scan = crate::log::recovery::scan_segment(&written, 2, 4096);
        assert_eq!((scan.end.clone(), scan.records, scan.state.next_seq), (crate::log::recovery::ScanEnd::Clean, 2, 4));
        let mut at = header.len();
        let mut values = Vec::new();
        while at < written.len() {
            let h = decode_frame(&written[at..], header.frame_layout()).expect("frame");
            let records = decode_records(&h, &written.slice(at..at + h.frame_len as usize)).expect("records");
            values.extend(records.into_iter().map(|r| (r.seq, r.time_ms, r.value)));
            at += h.frame_len as usize;
        }
        assert_eq!(values, vec![(2, 102, Bytes::from("value 2")), (3, 103, Bytes::from("value 3"))]);
    }

    #[test]
    fn a_hole_in_an_unacknowledged_tail_of_the_last_segment_is_cut_as_recovery_cuts_it() {
        let (mut bytes, offsets) = segment(0, &[0, 1]);
        let salt = match SegmentHeader::decode(&bytes).expect("header").frame_layout() {
            FrameLayout::V2 { salt } => salt,
            FrameLayout::V1 => unreachable!("the helper writes version 2"),
        };
        let hole = bytes.len();
        // Frames 2..5 of one group commit, all written while the log was durable below 2.
        for seq in 2..5u64 {
            let mut batch =
                EncodedBatch::encode(&[RecordRef { key: b"k", value: &[seq as u8; 700] }], Compression::None);
            bytes.extend_from_slice(batch.seal(&FrameStamp { base_seq: seq, time_ms: 200, salt, durable_seq: 2 }));
        }
        bytes[hole + 100] ^= 0x40;
        assert!(matches!(run(&bytes, 0, 0, None).plan, Plan::Cut { at, next: 2 } if at == hole), "{offsets:?}");
        // A frame written once 2 was durable makes the same hole damage: salvage keeps what follows.
        let mut batch = EncodedBatch::encode(&[RecordRef { key: b"k", value: b"later" }], Compression::None);
        bytes.extend_from_slice(batch.seal(&FrameStamp { base_seq: 5, time_ms: 201, salt, durable_seq: 5 }));
        assert_eq!(spans(&run(&bytes, 0, 0, None).plan), vec![(0, 2), (3, 6)]);
    }

    #[test]
    fn uncovered_subtracts_known_ranges() {
        let lost = LostRanges { lost: vec![(10, 20), (25, 30)] };
        assert_eq!(uncovered(&lost, 0, 5), vec![(0, 5)]);
        assert_eq!(uncovered(&lost, 12, 18), vec![]);
        assert_eq!(uncovered(&lost, 5, 40), vec![(5, 10), (20, 25), (30, 40)]);
        assert_eq!(uncovered(&lost, 20, 25), vec![(20, 25)]);
    }

    #[test]
    fn coalesce_merges_touching_ranges() {
        assert_eq!(coalesce(vec![(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]), vec![(1, 4), (5, 9)]);
    }
}
