//! Views of weir files from outside the engine: `weir inspect` and `weir verify`, read-only, and
//! `weir salvage` ([`salvage`]), which sets damage aside.
//!
//! Nothing here but [`salvage`] takes the directory lock or writes a byte: every other function
//! works on a directory a running engine holds, and on copies of segments taken elsewhere.
//! Segments are validated with the same scan recovery uses
//! ([`crate::log::recovery::scan_segment`]), so what these functions call damage is exactly
//! what the engine would refuse to serve.
//!
//! A *log directory* is any directory holding `*.seg` files: `catalog/`, every
//! `streams/<name>[@N]/shard-NNNNNN/`, and whatever later models add.

mod keys;
pub mod salvage;
pub mod verify;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::engine::encryption::KeySource;
use crate::error::{Error, Result};
use crate::format::batch::{decode_frame, decode_records_keyed, FrameLayout};
use crate::format::head::{Head, HEAD_FILE};
use crate::format::{IndexFile, Record, SegmentHeader};
use crate::log::keys::LogKeys;
use crate::log::recovery::{scan_segment_keyed, ScanEnd, ScanOutcome};
use crate::log::segment::{index_file_name, parse_segment_name};
use crate::log::LogConfig;

pub use keys::KeyVersionUse;
pub(crate) use keys::{as_frame_keys, ToolKeys};
pub use salvage::{salvage_dir, salvage_dir_keyed, SalvageReport};
pub use verify::{verify_dir, verify_dir_keyed, verify_dir_with_progress, Problem, Severity};

/// Deepest directory nesting walked below the given root; guards against pathological trees.
const MAX_WALK_DEPTH: usize = 32;

/// What `inspect` found at a path: every log directory below it (or the one segment given).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path inspected.
    pub root: PathBuf,
    /// The logs found, in path order.
    pub logs: Vec<LogReport>,
}

impl Report {
    /// Every segment of every log, in order.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentReport> {
        self.logs.iter().flat_map(|l| l.segments.iter())
    }
}

/// One log directory and its segments.
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    /// The log's directory.
    pub dir: PathBuf,
    /// Its segments, oldest first.
    pub segments: Vec<SegmentReport>,
    /// Its `HEAD` file (none in a log written before format version 2).
    pub head: Option<Head>,
    /// Why its `HEAD` file could not be read, if it could not.
    pub head_problem: Option<String>,
    /// True for a log of an encrypted data directory (its frames are sealed).
    pub encrypted: bool,
    /// The key-file versions its data keys are wrapped under (names only: readable without the
    /// key), or why its `KEYS` file cannot be read.
    pub key_versions: std::result::Result<Vec<KeyVersionUse>, String>,
}

/// The `HEAD` file of the log in `dir`: `(None, None)` if there is none, the reason if it
/// cannot be read or does not decode.
pub(crate) fn read_head_file(dir: &Path) -> (Option<Head>, Option<String>) {
    match fs::read(dir.join(HEAD_FILE)) {
        Ok(bytes) => match Head::decode(&bytes) {
            Ok(head) => (Some(head), None),
            Err(e) => (None, Some(format!("at offset {}: {}", e.offset, e.reason))),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
        Err(e) => (None, Some(format!("cannot be read: {e}"))),
    }
}

/// The state of a segment's sparse index file, as `inspect` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    /// No `.idx` file (normal for the active segment; the engine rebuilds missing ones).
    Missing,
    /// The index matches what a scan of the segment produces.
    Ok,
    /// The index describes a segment of another length (the engine ignores and rebuilds it).
    Stale,
    /// The index does not decode, or disagrees with the segment it claims to describe.
    Bad,
}

/// Where a segment stops being valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamageReport {
    /// `"torn"` (nothing valid follows: an interrupted write) or `"damaged"` (valid frames
    /// follow: bytes that were once whole have changed).
    pub kind: &'static str,
    /// Offset of the first invalid byte range in the file.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
}

/// A summary of one segment file.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    /// Path of the `.seg` file.
    pub path: PathBuf,
    /// First sequence number (from the file name, or the header when the name is not standard).
    pub base_seq: u64,
    /// Format version of the segment (1 or 2; none if its header is unreadable).
    pub version: Option<u16>,
    /// The numbers from here to `base_seq` were reserved and never durably written (a crash
    /// lost them or they went unused): readers pass over them. None when nothing was skipped.
    pub skipped_from: Option<u64>,
    /// One past the last sequence number of the valid frames.
    pub next_seq: u64,
    /// Records in the valid frames.
    pub records: u64,
    /// Valid frames.
    pub frames: u64,
    /// Of which stored zstd-compressed.
    pub compressed_frames: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Bytes of header and valid frames.
    pub valid_bytes: u64,
    /// Zeros after the valid frames, to the end of the file: space the writer preallocated and
    /// has not used yet (only an active segment has any). A healthy segment's `valid_bytes` and
    /// `preallocated_bytes` add up to `file_bytes`.
    pub preallocated_bytes: u64,
    /// Payload bytes as stored (after compression).
    pub stored_payload_bytes: u64,
    /// Payload bytes once decompressed.
    pub payload_bytes: u64,
    /// Append time of the first frame, milliseconds since the Unix epoch (none when empty).
    pub first_time_ms: Option<u64>,
    /// Append time of the last frame (none when empty).
    pub last_time_ms: Option<u64>,
    /// The state of the segment's `.idx` file.
    pub index: IndexState,
    /// Where the valid frames end, if something else follows them.
    pub damage: Option<DamageReport>,
}

/// A segment file read into memory and scanned.
#[derive(Debug, Clone)]
pub(crate) struct ScannedSegment {
    pub(crate) path: PathBuf,
    pub(crate) base_seq: u64,
    pub(crate) bytes: Bytes,
    pub(crate) outcome: ScanOutcome,
}

impl ScannedSegment {
    /// Reads and scans the segment at `path`. The base sequence number comes from the file
    /// name when it is a standard segment name, else from the header (0 if that fails too).
    /// `keys`: the data keys of its log, if it is encrypted and the key was given (sealed frames
    /// are then checked by their tags and records too, not just their CRCs).
    pub(crate) fn read(path: &Path, keys: Option<&dyn crate::format::batch::FrameKeys>) -> Result<ScannedSegment> {
        let meta = fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
        if !meta.is_file() {
            // Devices and pipes could be endless; a segment is always a regular file.
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file, so not a segment");
            return Err(Error::io("read", path, e));
        }
        let bytes = Bytes::from(fs::read(path).map_err(|e| Error::io("read", path, e))?);
        let from_name = path.file_name().and_then(|n| n.to_str()).and_then(parse_segment_name);
        let base_seq = from_name.or_else(|| SegmentHeader::decode(&bytes).ok().map(|h| h.base_seq)).unwrap_or(0);
        let outcome = scan_segment_keyed(&bytes, base_seq, index_interval_bytes(), keys);
        Ok(ScannedSegment { path: path.to_path_buf(), base_seq, bytes, outcome })
    }

    /// How the segment's frames are laid out (any answer does when the header is unreadable:
    /// no frame is read then, the valid length being 0).
    pub(crate) fn layout(&self) -> FrameLayout {
        self.outcome.header.map_or(FrameLayout::V1, |h| h.frame_layout())
    }

    /// Where the first frame starts.
    pub(crate) fn first_frame_offset(&self) -> usize {
        self.outcome.header.map_or(0, |h| h.len())
    }

    /// Bytes of header and whole valid frames.
    pub(crate) fn valid_len(&self) -> u64 {
        self.outcome.state.len.min(self.bytes.len() as u64)
    }

    /// One past the last sequence number of the valid frames.
    pub(crate) fn next_seq(&self) -> u64 {
        self.outcome.state.next_seq
    }
}

/// The sparse-index spacing every weir log uses (the engine does not make it configurable).
pub(crate) fn index_interval_bytes() -> u64 {
    LogConfig::default().index_interval_bytes
}

/// True for the I/O errors that mean "it vanished": a segment retention removed mid-walk.
pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Every log directory at or below `root` (directories holding `*.seg` files), sorted.
/// Symbolic links are not followed, and `root/quarantine/` (where `weir salvage` keeps what it
/// took out of the logs; the engine never reads it) is not walked.
pub fn log_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(root, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_WALK_DEPTH {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut holds_segments = false;
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            subdirs.push(entry.path());
        } else if kind.is_file() && entry.file_name().to_string_lossy().ends_with(".seg") {
            holds_segments = true;
        }
    }
    if holds_segments {
        out.push(dir.to_path_buf());
    }
    for sub in subdirs {
        if depth == 0 && sub.file_name().is_some_and(|n| n == salvage::QUARANTINE_DIR) {
            continue;
        }
        match walk(&sub, depth + 1, out) {
            // A directory removed while walking (a deleted stream) has nothing to report.
            Err(e) if is_not_found(&e) => {}
            other => other?,
        }
    }
    Ok(())
}

/// The `*.seg` files of one log directory.
#[derive(Debug, Clone, Default)]
pub struct SegmentFiles {
    /// Segments by base sequence number, oldest first.
    pub segments: Vec<(u64, PathBuf)>,
    /// `*.seg` files whose names are not segment names (the engine ignores them).
    pub unrecognized: Vec<PathBuf>,
}

/// The segment files of one log directory.
pub fn segment_files(dir: &Path) -> Result<SegmentFiles> {
    let mut segments = Vec::new();
    let mut odd = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".seg") {
            continue;
        }
        match parse_segment_name(&name) {
            Some(base) => segments.push((base, entry.path())),
            None => odd.push(entry.path()),
        }
    }
    segments.sort();
    odd.sort();
    Ok(SegmentFiles { segments, unrecognized: odd })
}

/// Summarizes a segment file, or every segment of every log directory below a directory.
/// Encrypted logs are checked by structure and CRC only: see [`inspect_path_keyed`].
pub fn inspect_path(path: &Path) -> Result<Report> {
    inspect_path_keyed(path, None)
}

/// [`inspect_path`] with the key file of an encrypted data directory: sealed frames are checked
/// by their tags and records too.
pub fn inspect_path_keyed(path: &Path, key_source: Option<&KeySource>) -> Result<Report> {
    let tool_keys = ToolKeys::new(key_source)?;
    let meta = fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?;
    if !meta.is_dir() {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let keys = tool_keys.for_log(&dir)?;
        let segment = ScannedSegment::read(path, as_frame_keys(&keys))?;
        let log = LogReport {
            encrypted: keys::log_is_encrypted(&dir),
            key_versions: keys::key_versions(&dir),
            dir,
            segments: vec![summarize(&segment)],
            head: None,
            head_problem: None,
        };
        return Ok(Report { root: path.to_path_buf(), logs: vec![log] });
    }
    let mut logs = Vec::new();
    for dir in log_dirs(path)? {
        let keys = tool_keys.for_log(&dir)?;
        let files = segment_files(&dir)?.segments;
        let mut segments = Vec::with_capacity(files.len());
        for (_, file) in files {
            match ScannedSegment::read(&file, as_frame_keys(&keys)) {
                Ok(s) => segments.push(summarize(&s)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let (head, head_problem) = read_head_file(&dir);
        let (encrypted, key_versions) = (keys::log_is_encrypted(&dir), keys::key_versions(&dir));
        logs.push(LogReport { dir, segments, head, head_problem, encrypted, key_versions });
    }
    Ok(Report { root: path.to_path_buf(), logs })
}

fn summarize(s: &ScannedSegment) -> SegmentReport {
    let state = &s.outcome.state;
    let (mut stored, mut payload) = (0u64, 0u64);
    let valid = s.valid_len() as usize;
    let layout = s.layout();
    let mut at = s.first_frame_offset();
    while at < valid {
        match decode_frame(&s.bytes[at..valid], layout) {
            Ok(h) => {
                stored += u64::from(h.frame_len) - u64::from(h.header_len);
                payload += u64::from(h.payload_len);
                at += h.frame_len as usize;
            }
            Err(_) => break,
        }
    }
    let empty = s.outcome.frames == 0;
    SegmentReport {
        path: s.path.clone(),
        base_seq: s.base_seq,
        version: s.outcome.header.map(|h| h.version_number()),
        skipped_from: s.outcome.header.map(|h| h.skipped_from()).filter(|&from| from < s.base_seq),
        next_seq: state.next_seq,
        records: s.outcome.records,
        frames: s.outcome.frames,
        compressed_frames: s.outcome.compressed_frames,
        file_bytes: s.bytes.len() as u64,
        valid_bytes: s.valid_len(),
        preallocated_bytes: s.outcome.preallocated,
        stored_payload_bytes: stored,
        payload_bytes: payload,
        first_time_ms: (!empty).then_some(state.first_time_ms),
        last_time_ms: (!empty).then_some(state.last_time_ms),
        index: index_state(s),
        damage: damage_report(&s.outcome.end),
    }
}

fn damage_report(end: &ScanEnd) -> Option<DamageReport> {
    match end {
        ScanEnd::Clean => None,
        ScanEnd::Torn { offset, reason } => {
            Some(DamageReport { kind: "torn", offset: *offset, reason: reason.clone() })
        }
        ScanEnd::Damaged { offset, reason, .. } => {
            Some(DamageReport { kind: "damaged", offset: *offset, reason: reason.clone() })
        }
    }
}

fn index_state(s: &ScannedSegment) -> IndexState {
    let Some(dir) = s.path.parent() else { return IndexState::Missing };
    let bytes = match fs::read(dir.join(index_file_name(s.base_seq))) {
        Ok(b) => b,
        Err(_) => return IndexState::Missing,
    };
    match IndexFile::decode(&bytes) {
        Err(_) => IndexState::Bad,
        Ok(index) if index.segment_len != s.bytes.len() as u64 => IndexState::Stale,
        Ok(index) if verify::index_mismatches(&index, s).is_empty() => IndexState::Ok,
        Ok(_) => IndexState::Bad,
    }
}

/// The records of a segment file's valid frames, in order. Reading stops at the first frame
/// that fails its checks (see [`SegmentReport::damage`]).
#[derive(Debug)]
pub struct SegmentRecords {
    path: PathBuf,
    bytes: Bytes,
    layout: FrameLayout,
    at: usize,
    end: usize,
    pending: std::vec::IntoIter<Record>,
    keys: Option<Arc<LogKeys>>,
}

/// Opens a segment file for reading its records (`weir inspect --records`).
pub fn segment_records(path: &Path) -> Result<SegmentRecords> {
    segment_records_keyed(path, None)
}

/// [`segment_records`] of a segment of an encrypted data directory, with its key file: without
/// it, reading a sealed frame's records fails.
pub fn segment_records_keyed(path: &Path, key_source: Option<&KeySource>) -> Result<SegmentRecords> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let keys = ToolKeys::new(key_source)?.for_log(&dir)?;
    let segment = ScannedSegment::read(path, as_frame_keys(&keys))?;
    let end = segment.valid_len() as usize;
    Ok(SegmentRecords {
        keys,
        layout: segment.layout(),
        at: segment.first_frame_offset(),
        path: segment.path,
        bytes: segment.bytes,
        end,
        pending: Vec::new().into_iter(),
    })
}

impl Iterator for SegmentRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.pending.next() {
                return Some(Ok(r));
            }
            if self.at >= self.end {
                return None;
            }
            let offset = self.at;
            let frame = self.bytes.slice(offset..self.end);
            // The scan validated these frames; a failure here means the file changed under us.
            let fail = |reason: String| Some(Err(Error::corrupt(self.path.clone(), offset as u64, reason)));
            let header = match decode_frame(&frame, self.layout) {
                Ok(h) => h,
                Err(e) => {
                    self.at = self.end;
                    return fail(format!("frame no longer decodes: {e:?}"));
                }
            };
            if header.sealed && self.keys.is_none() {
                self.at = self.end;
                let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
                return Some(Err(Error::KeyRequired { dir }));
            }
            let keys = as_frame_keys(&self.keys);
            match decode_records_keyed(&header, &frame.slice(..header.frame_len as usize), keys) {
                Ok(records) => self.pending = records.into_iter(),
                Err(e) => {
                    self.at = self.end;
                    return fail(format!("payload no longer decodes: {e}"));
                }
            }
            self.at += header.frame_len as usize;
        }
    }
}

#[cfg(test)]
mod format_v2_tests;
#[cfg(test)]
mod tests;
