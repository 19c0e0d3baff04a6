//! The log: an append-only sequence of records in segment files, one log per stream shard,
//! queue, topic and for the catalog.
//!
//! A [`Log`] owns its directory. Appends go through one writer lock and, under
//! [`Durability::Always`], return only after a group-committed fsync covers them. Reads go
//! through memory maps and never see records that are not yet durable under the log's mode.
//! This module knows nothing of queues, topics or streams.

pub mod fault;
pub mod group_commit;
pub mod io;
pub mod mapped;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod tail;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::format::batch::{payload_len, EncodedBatch, MAX_FRAME_LEN, MAX_PAYLOAD_LEN};
use crate::format::lost::{LostRanges, LOST_FILE};
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::format::{Compression, IndexEntry, IndexFile, Record, RecordRef, SegmentHeader};
use group_commit::{GroupCommit, Turn};
use io::Vfs;
use recovery::{scan_segment, with_whole, ScanEnd};
use segment::{index_file_name, parse_segment_name, segment_file_name, Damage, Segment};
use tail::ActiveTail;

/// When an acknowledged append is on stable storage. See `format-spec.md`, "Durability".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An append returns only after an fsync covers it; concurrent appends share one fsync
    /// (group commit). Survives kill -9 and power loss.
    #[default]
    Always,
    /// Appends return once in the page cache; a background fsync runs every this many
    /// milliseconds (and a writer runs one once [`FLUSH_AHEAD_BYTES`] are unsynced). Survives
    /// kill -9; a power loss may lose up to that many milliseconds.
    Interval(u64),
    /// Appends return once in the page cache; fsync on segment roll, on clean close, and by
    /// the writer that finds [`FLUSH_AHEAD_BYTES`] unsynced (so sealing a segment never has a
    /// whole segment to write). Survives kill -9; a power loss may lose everything since the
    /// last of those.
    Never,
}

/// How a log is laid out and synced.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// A segment rolls once the next frame would take it past this size.
    pub segment_bytes: u64,
    /// At most this many bytes of frames between two sparse-index entries.
    pub index_interval_bytes: u64,
    /// When appends are durable.
    pub durability: Durability,
    /// Whether frames may be compressed.
    pub compression: Compression,
    /// Whether the active segment keeps zero-filled space ahead of its frames, so appends
    /// overwrite blocks the file already has (a much cheaper fsync) and are copied through a
    /// memory map instead of a `write` call. Worth it for logs that are written often; the
    /// unused space is cut when the segment is sealed.
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            durability: Durability::Always,
            compression: Compression::Auto,
            preallocate: true,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Sequence number of the first record appended.
    pub base_seq: u64,
    /// One past the last.
    pub next_seq: u64,
    /// The time stamped on the records (never earlier than any before them).
    pub time_ms: u64,
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Torn tails cut off: (file, offset cut at, bytes removed, why).
    pub truncated: Vec<(PathBuf, u64, u64, String)>,
    /// Damage found in segments (served up to the damage; reads past it fail).
    pub damaged: Vec<(PathBuf, Damage)>,
    /// Segments whose index was missing or stale and was rebuilt.
    pub rebuilt_indexes: Vec<PathBuf>,
    /// Sequence ranges no segment holds (a deleted segment, or damage): `[start, end)`.
    pub missing: Vec<(u64, u64)>,
}

/// A summary of one segment, for inspection.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Path of the segment file.
    pub path: PathBuf,
    /// First sequence number.
    pub base_seq: u64,
    /// One past the last sequence number.
    pub next_seq: u64,
    /// Bytes of whole frames, header included.
    pub len: u64,
    /// Time of the first and last frame.
    pub first_time_ms: u64,
    /// Time of the last frame.
    pub last_time_ms: u64,
    /// Damage, if any.
    pub damage: Option<Damage>,
}

struct Writer {
    next_seq: u64,
    last_time_ms: u64,
    active: Arc<Segment>,
    /// The active segment's file past its frames.
    tail: ActiveTail,
    poisoned: Option<String>,
}

/// One append-only log in one directory.
pub struct Log {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    config: LogConfig,
    segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<Writer>,
    commit: GroupCommit,
    /// Records below this are readable: durable ones under `Always`, written ones otherwise.
    visible_next: AtomicU64,
    report: RecoveryReport,
    /// Ranges a salvage gave up on: reads skip them instead of failing.
    lost: LostRanges,
    /// Frame bytes written since open, and how many of them the last fsync covered (see
    /// `flush_ahead`).
    bytes_written: AtomicU64,
    bytes_synced: AtomicU64,
    /// A writer is running a flush-ahead fsync.
    flushing: AtomicBool,
}

/// Under `Interval` and `Never`, once this much is written past the last fsync, the next
/// writer to wait for durability runs one.
pub const FLUSH_AHEAD_BYTES: u64 = 8 << 20;

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.dir).field("next_seq", &self.next_seq()).finish()
    }
}

impl Log {
    /// Opens the log in `dir`, creating it (first sequence number `initial_seq`) if it holds no
    /// segment. Recovery runs here: torn tails are cut, missing or stale indexes rebuilt, damage
    /// recorded (see [`Log::recovery_report`]).
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, config: LogConfig, initial_seq: u64) -> Result<Log> {
        io::create_dir_durably(vfs.as_ref(), dir).map_err(|e| Error::io("create directory", dir, e))?;
        let names = vfs.list_dir(dir).map_err(|e| Error::io("list", dir, e))?;
        let mut bases: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        bases.sort_unstable();
        for name in &names {
            // Leftovers of an interrupted atomic write, or indexes of segments retention removed.
            let orphan_index =
                name.strip_suffix(".idx").is_some_and(|stem| stem.parse::<u64>().is_ok_and(|b| !bases.contains(&b)));
            if name.ends_with(".tmp") || orphan_index {
                let _ = vfs.remove_file(&dir.join(name));
            }
        }
        let mut report = RecoveryReport::default();
        let lost = match vfs.read_file(&dir.join(LOST_FILE)) {
            Ok(bytes) => LostRanges::decode(&bytes).map_err(|e| Error::corrupt(dir.join(LOST_FILE), 0, e.reason))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LostRanges::default(),
            Err(e) => return Err(Error::io("read", dir.join(LOST_FILE), e)),
        };
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut next_seq = initial_seq;
        let mut last_time_ms = 0;
        let mut needs_fresh_segment = bases.is_empty();
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let (segment, resync_next) = open_segment(&vfs, dir, base, is_last, &config, &mut report)?;
            let state = segment.snapshot();
            if i > 0 && base < next_seq {
                return Err(Error::corrupt(
                    &segment.path,
                    0,
                    format!("segment starts at sequence {base}, below the {next_seq} its predecessor reaches"),
                ));
            }
            if i > 0 && base > next_seq && !lost.covers(next_seq, base) {
                report.missing.push((next_seq, base));
            }
            next_seq = state.next_seq.max(resync_next.unwrap_or(0));
            last_time_ms = last_time_ms.max(state.last_time_ms);
            if is_last && state.damage.is_some() {
                needs_fresh_segment = true;
            }
            segments.push(Arc::new(segment));
        }
        let mut fresh_tail = None;
        if needs_fresh_segment {
            let (segment, tail) = create_segment(&vfs, dir, next_seq, &config)?;
            segments.push(Arc::new(segment));
            fresh_tail = Some(tail);
        }
        let active = match segments.last() {
            Some(s) => Arc::clone(s),
            None => return Err(Error::corrupt(dir, 0, "log has no segment")),
        };
        let tail = match fresh_tail {
            Some(tail) => tail,
            // Recovery left the file as whole frames, possibly followed by zeros only.
            None => {
                ActiveTail::new(active.file.len().map_err(|e| Error::io("stat", &active.path, e))?, config.preallocate)
            }
        };
        Ok(Log {
            dir: dir.to_path_buf(),
            vfs,
            config,
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer { next_seq, last_time_ms, active, tail, poisoned: None }),
            commit: GroupCommit::new(next_seq),
            visible_next: AtomicU64::new(next_seq),
            bytes_written: AtomicU64::new(0),
            bytes_synced: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            report,
            lost,
        })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Ranges a salvage recorded as lost (reads skip them).
    pub fn lost_ranges(&self) -> &LostRanges {
        &self.lost
    }

    /// What recovery found at open.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Appends `records` as one frame stamped `now_ms` (or the previous frame's time, if later)
    /// and returns once they are durable under the log's [`Durability`].
    pub fn append(&self, records: &[RecordRef<'_>], now_ms: u64) -> Result<AppendOutcome> {
        let outcome = self.write(records, now_ms)?;
        self.wait_durable(outcome.next_seq)?;
        Ok(outcome)
    }

    /// Writes `records` as one frame to the page cache without waiting for durability; pair it
    /// with [`Log::wait_durable`] before acknowledging anything. Lets a caller assign sequence
    /// numbers under its own lock and wait for the (shared) fsync outside it.
    pub fn write(&self, records: &[RecordRef<'_>], now_ms: u64) -> Result<AppendOutcome> {
        if records.is_empty() {
            return Err(Error::InvalidArgument("an append needs at least one record".into()));
        }
        // Checked before compression, against the limit readers enforce: a batch that only
        // fits once compressed would be acknowledged and then refused by every read.
        let size = payload_len(records);
        if size > MAX_PAYLOAD_LEN {
            let what = "batch (its records with 8 bytes of header each)";
            return Err(Error::TooLarge { what, size, limit: MAX_PAYLOAD_LEN });
        }
        let mut batch = EncodedBatch::encode(records, self.config.compression);
        debug_assert!(batch.len() <= MAX_FRAME_LEN, "a frame of an accepted payload fits the frame limit");
        let outcome = self.write_frame(&mut batch, now_ms)?;
        if self.config.durability != Durability::Always {
            self.visible_next.fetch_max(outcome.next_seq, Ordering::SeqCst);
        }
        Ok(outcome)
    }

    /// Returns once every record below `next_seq` is durable as the log's mode promises:
    /// under `Always` after an fsync covers it, otherwise at once.
    pub fn wait_durable(&self, next_seq: u64) -> Result<()> {
        match self.config.durability {
            Durability::Always => self.sync_to(next_seq),
            Durability::Interval(_) | Durability::Never => self.flush_ahead(),
        }
    }

    /// Runs an fsync if [`FLUSH_AHEAD_BYTES`] or more were written since the last one and no
    /// other writer is already running it. Without it, the fsync that seals a segment would
    /// write the whole segment while the writer lock (and whatever lock its caller holds) is
    /// held, stalling every writer of the log: a quarter of a buffered queue's throughput.
    /// Called outside the caller's own locks; it only makes more durable than the mode
    /// promises, never less.
    fn flush_ahead(&self) -> Result<()> {
        let behind =
            self.bytes_written.load(Ordering::Relaxed).saturating_sub(self.bytes_synced.load(Ordering::Relaxed));
        if behind < FLUSH_AHEAD_BYTES || self.flushing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.flush();
        self.flushing.store(false, Ordering::Release);
        result
    }

    fn write_frame(&self, batch: &mut EncodedBatch, now_ms: u64) -> Result<AppendOutcome> {
        let mut w = self.writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned { path: self.dir.clone(), reason: reason.clone() });
        }
        let active_len = w.active.state.read().len;
        if active_len > SEGMENT_HEADER_LEN as u64 && active_len + batch.len() as u64 > self.config.segment_bytes {
            self.roll(&mut w)?;
        }
        let time_ms = now_ms.max(w.last_time_ms);
        let base_seq = w.next_seq;
        let Some(next_seq) = base_seq.checked_add(u64::from(batch.record_count())) else {
            // Only a log whose files claim sequence numbers near 2^64 gets here.
            let reason = format!("sequence numbers from {base_seq} on leave no room for {} more", batch.record_count());
            return Err(Error::corrupt(&w.active.path, 0, reason));
        };
        let active = Arc::clone(&w.active);
        let mut state = active.state.write();
        let offset = state.len;
        debug_assert_eq!(state.next_seq, base_seq, "writer and segment disagree on the next sequence number");
        let frame = batch.seal(base_seq, time_ms);
        if let Err(e) = w.tail.write(active.file.as_ref(), frame, offset, self.config.segment_bytes) {
            // The tail is now unknown: cut back what may have been written, and refuse writes
            // until recovery has looked at the file again.
            let _ = w.tail.cut(active.file.as_ref(), offset);
            let reason = format!("write to {} failed: {e}", active.path.display());
            w.poisoned = Some(reason);
            return Err(Error::io("write", &active.path, e));
        }
        let frame_len = frame.len() as u64;
        if state.entries.is_empty() || state.bytes_since_entry >= self.config.index_interval_bytes {
            state.entries.push(IndexEntry { seq: base_seq, offset, time_ms });
            state.bytes_since_entry = 0;
        }
        if state.first_time_ms == 0 && state.entries.len() == 1 && state.entries[0].offset == offset {
            state.first_time_ms = time_ms;
        }
        state.bytes_since_entry += frame_len;
        self.bytes_written.fetch_add(frame_len, Ordering::Relaxed);
        state.len = offset + frame_len;
        state.next_seq = next_seq;
        state.last_time_ms = time_ms;
        debug_assert!(next_seq > base_seq, "sequence numbers strictly increase");
        debug_assert!(state.len > offset && offset >= SEGMENT_HEADER_LEN as u64, "frame lies inside its segment");
        debug_assert!(state.len <= w.tail.file_len(), "frames lie inside the file");
        drop(state);
        w.next_seq = next_seq;
        w.last_time_ms = time_ms;
        Ok(AppendOutcome { base_seq, next_seq, time_ms })
    }

    /// Seals the active segment (fsync, index file) and starts a new one.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        // A sealed segment is whole on disk in every durability mode, so recovery never has to
        // treat anything but the last segment as possibly torn. Its unused preallocation goes
        // first, so the sync also makes its final length durable.
        let len = w.active.state.read().len;
        let active = Arc::clone(&w.active);
        if let Err(e) = w.tail.cut(active.file.as_ref(), len).and_then(|()| active.file.sync_data()) {
            let reason = format!("fsync of {} failed: {e}", w.active.path.display());
            w.poisoned = Some(reason.clone());
            self.commit.fail(reason);
            return Err(Error::io("fsync", &w.active.path, e));
        }
        self.commit.advance(w.next_seq);
        self.bytes_synced.fetch_max(self.bytes_written.load(Ordering::Relaxed), Ordering::Relaxed);
        self.visible_next.fetch_max(w.next_seq, Ordering::SeqCst);
        // The index is an accelerator: if it cannot be written, open rebuilds it.
        let _ = self.vfs.write_file_atomic(&w.active.index_path, &w.active.index_file().encode());
        let segment = match create_segment(&self.vfs, &self.dir, w.next_seq, &self.config) {
            Ok((segment, tail)) => {
                w.tail = tail;
                Arc::new(segment)
            }
            Err(e) => {
                // A half-made segment named after the next sequence number would collide with
                // frames the old segment takes later: remove it and stop writing until reopen.
                let _ = self.vfs.remove_file(&self.dir.join(segment_file_name(w.next_seq)));
                let _ = self.vfs.sync_dir(&self.dir);
                w.poisoned = Some(format!("creating segment {} failed: {e}", w.next_seq));
                return Err(e);
            }
        };
        self.segments.write().push(Arc::clone(&segment));
        w.active = segment;
        Ok(())
    }

    /// Returns once every record below `target` is durable, leading a group fsync if no other
    /// caller is running one.
    pub fn sync_to(&self, target: u64) -> Result<()> {
        loop {
            match self.commit.wait_or_lead(target) {
                Err(reason) => return Err(Error::Poisoned { path: self.dir.clone(), reason }),
                Ok(Turn::Done) => {
                    self.visible_next.fetch_max(target, Ordering::SeqCst);
                    return Ok(());
                }
                Ok(Turn::Lead) => {
                    let (file, path, upto, written) = {
                        let w = self.writer.lock();
                        let written = self.bytes_written.load(Ordering::Relaxed);
                        (Arc::clone(&w.active.file), w.active.path.clone(), w.next_seq, written)
                    };
                    match file.sync_data() {
                        Ok(()) => {
                            self.bytes_synced.fetch_max(written, Ordering::Relaxed);
                            self.commit.finish(Ok(upto));
                            self.visible_next.fetch_max(upto, Ordering::SeqCst);
                        }
                        Err(e) => {
                            // Never retry: after a failed fsync the kernel may have dropped the
                            // dirty pages, and a second fsync would "succeed" without them.
                            let reason = format!("fsync of {} failed: {e}", path.display());
                            self.writer.lock().poisoned = Some(reason.clone());
                            self.commit.finish(Err(reason));
                            return Err(Error::io("fsync", path, e));
                        }
                    }
                }
            }
        }
    }

    /// Makes everything written so far durable (the periodic sync of `Interval`, and clean close).
    pub fn flush(&self) -> Result<()> {
        let written = self.writer.lock().next_seq;
        self.sync_to(written)
    }

    /// Fsyncs issued by group commit so far.
    pub fn sync_count(&self) -> u64 {
        self.commit.sync_count()
    }

    /// One past the last readable sequence number.
    pub fn next_seq(&self) -> u64 {
        self.visible_next.load(Ordering::SeqCst)
    }

    /// The lowest sequence number still stored (equal to [`Log::next_seq`] when empty).
    pub fn first_seq(&self) -> u64 {
        let segments = self.segments.read();
        segments.first().map_or(self.next_seq(), |s| s.base_seq).min(self.next_seq())
    }

    /// Time of the last appended frame, 0 if none.
    pub fn last_time_ms(&self) -> u64 {
        self.writer.lock().last_time_ms
    }

    /// True once a write or fsync has failed; the log then refuses writes until reopened.
    pub fn is_poisoned(&self) -> bool {
        self.writer.lock().poisoned.is_some()
    }

    /// Reads up to `max_records` records from `from_seq` on (records below [`Log::first_seq`]
    /// are gone: the read starts at the first one still stored), stopping after `max_bytes` of
    /// keys and values (but always returning at least one record if one exists).
    pub fn read(&self, from_seq: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.read_below(self.next_seq(), from_seq, max_records, max_bytes)
    }

    /// Like [`Log::read`], but also sees records written and not yet durable. Only for a caller
    /// that orders its own acknowledgements behind a later durable point (the message log: a
    /// receive's own record is fsynced after the message it delivers).
    pub fn read_written(&self, from_seq: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.read_below(self.written_next(), from_seq, max_records, max_bytes)
    }

    /// One past the last sequence number written (durable or not).
    pub fn written_next(&self) -> u64 {
        self.writer.lock().next_seq
    }

    fn read_below(&self, limit: u64, from_seq: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        if from_seq >= limit || max_records == 0 {
            return Ok(out);
        }
        // Reads hold the segment list shared for their duration (a roll or retention waits for
        // at most one read) instead of copying it.
        let segments = self.segments.read();
        let start = segments.partition_point(|s| s.base_seq <= from_seq).saturating_sub(1);
        let mut bytes = 0usize;
        let mut from = from_seq;
        for (i, segment) in segments.iter().enumerate().skip(start) {
            let segment_limit = segments.get(i + 1).map_or(limit, |n| n.base_seq.min(limit));
            from = from.max(segment.base_seq);
            if from >= segment_limit {
                continue;
            }
            match segment.read_into(from, segment_limit, max_records, max_bytes, &mut out, &mut bytes) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
            // A segment that ends short of where the next one begins lost records (a cut or a
            // deleted file): a reader must hear about it, not skip them.
            let segment_end = segment.state.read().next_seq;
            let wanted = out.last().map_or(from, |r| r.seq + 1);
            let known_lost = self.lost.covers(segment_end.max(wanted), segment_limit);
            if segment_end < segment_limit && wanted < segment_limit && out.len() < max_records && !known_lost {
                if !out.is_empty() {
                    break;
                }
                let len = segment.state.read().len;
                return Err(Error::corrupt(
                    &segment.path,
                    len,
                    format!(
                        "records {segment_end} to {} are missing (the segment ends early or a segment file is gone)",
                        segment_limit - 1
                    ),
                ));
            }
            if out.len() >= max_records || bytes >= max_bytes {
                break;
            }
        }
        debug_assert!(out.windows(2).all(|w| w[0].seq < w[1].seq), "reads return increasing sequence numbers");
        Ok(out)
    }

    /// Calls `f` with every readable record from `from_seq` on, in order, reading in chunks:
    /// the replay loop of everything built on a log (catalog, checkpoints, message store).
    pub fn for_each_from(&self, from_seq: u64, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        let mut at = from_seq;
        loop {
            let batch = self.read(at, 4096, 16 << 20)?;
            let Some(last) = batch.last() else { return Ok(()) };
            at = last.seq + 1;
            for record in batch {
                f(record)?;
            }
        }
    }

    /// The first sequence number whose record was appended at or after `time_ms`
    /// ([`Log::next_seq`] if none).
    pub fn seq_at_time(&self, time_ms: u64) -> Result<u64> {
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        for segment in &segments {
            let state = segment.snapshot();
            if state.entries.is_empty() || state.last_time_ms < time_ms {
                continue;
            }
            let i = state.entries.partition_point(|e| e.time_ms < time_ms);
            if i == 0 {
                return Ok(state.entries[0].seq);
            }
            let from = state.entries[i - 1].seq;
            let until = state.entries.get(i).map_or(state.next_seq, |e| e.seq);
            let mut at = from;
            while at < until {
                let records = self.read(at, 1024, usize::MAX)?;
                let Some(last) = records.last() else { break };
                if let Some(r) = records.iter().find(|r| r.time_ms >= time_ms) {
                    return Ok(r.seq);
                }
                at = last.seq + 1;
            }
            return Ok(until.min(self.next_seq()));
        }
        Ok(self.next_seq())
    }

    /// Summaries of the segments, oldest first.
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        self.segments
            .read()
            .iter()
            .map(|s| {
                let st = s.snapshot();
                SegmentInfo {
                    path: s.path.clone(),
                    base_seq: s.base_seq,
                    next_seq: st.next_seq,
                    len: st.len,
                    first_time_ms: st.first_time_ms,
                    last_time_ms: st.last_time_ms,
                    damage: st.damage,
                }
            })
            .collect()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // A clean close makes `Never` and `Interval` logs durable; errors have nowhere to go
        // here, and the data is still covered by the guarantees of the mode.
        if !self.is_poisoned() {
            let _ = self.flush();
        }
    }
}

/// Creates an empty segment holding only its header and its first preallocated zeros,
/// durably (file and directory entry).
fn create_segment(vfs: &Arc<dyn Vfs>, dir: &Path, base_seq: u64, config: &LogConfig) -> Result<(Segment, ActiveTail)> {
    let path = dir.join(segment_file_name(base_seq));
    let file = vfs.open_file(&path, true).map_err(|e| Error::io("create", &path, e))?;
    file.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
    file.write_all_at(&SegmentHeader { base_seq }.encode(), 0).map_err(|e| Error::io("write", &path, e))?;
    let header_len = SEGMENT_HEADER_LEN as u64;
    let tail = ActiveTail::for_new_segment(file.as_ref(), header_len, config.segment_bytes, config.preallocate)
        .map_err(|e| Error::io("preallocate", &path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok((Segment::new(dir, base_seq, file, Segment::empty_state(base_seq)), tail))
}

/// Opens one segment, validating it as far as its position requires. Returns the segment and,
/// for a damaged last segment, one past the highest sequence number seen after the damage.
fn open_segment(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    base_seq: u64,
    is_last: bool,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(Segment, Option<u64>)> {
    let path = dir.join(segment_file_name(base_seq));
    let file = vfs.open_file(&path, false).map_err(|e| Error::io("open", &path, e))?;
    let file_len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    if !is_last {
        let index_path = dir.join(index_file_name(base_seq));
        if let Ok(index) =
            vfs.read_file(&index_path).map_err(|_| ()).and_then(|b| IndexFile::decode(&b).map_err(|_| ()))
        {
            if index.segment_len == file_len && index.entries.first().is_none_or(|e| e.seq == base_seq) {
                let mut state = Segment::empty_state(base_seq);
                state.len = index.segment_len;
                state.next_seq = index.next_seq;
                state.last_time_ms = index.last_time_ms;
                state.first_time_ms = index.entries.first().map_or(0, |e| e.time_ms);
                state.entries = index.entries;
                return Ok((Segment::new(dir, base_seq, file, state), None));
            }
        }
    }
    let outcome = with_whole(&file, &path, |bytes| scan_segment(bytes, base_seq, config.index_interval_bytes))?;
    let mut state = outcome.state;
    let mut resync_next = None;
    match outcome.end {
        ScanEnd::Clean => {
            if !is_last && file_len > state.len {
                // Zeros a crash left between the seal's cut and its fsync: a sealed segment
                // ends at its last frame, so its index can be checked against its length.
                file.set_len(state.len).map_err(|e| Error::io("truncate", &path, e))?;
                file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
            }
            if !is_last {
                report.rebuilt_indexes.push(path.clone());
                let index = IndexFile {
                    segment_len: state.len,
                    next_seq: state.next_seq,
                    last_time_ms: state.last_time_ms,
                    entries: state.entries.clone(),
                };
                let _ = vfs.write_file_atomic(&dir.join(index_file_name(base_seq)), &index.encode());
            }
        }
        ScanEnd::Torn { offset, reason } if is_last => {
            // The unsynced end of the last write before a crash: never acknowledged, cut it off.
            let keep = offset;
            file.set_len(keep).map_err(|e| Error::io("truncate", &path, e))?;
            if keep == 0 {
                file.write_all_at(&SegmentHeader { base_seq }.encode(), 0).map_err(|e| Error::io("write", &path, e))?;
                state = Segment::empty_state(base_seq);
            }
            file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
            report.truncated.push((path.clone(), keep, file_len - keep.min(file_len), reason));
        }
        ScanEnd::Torn { offset, reason } => {
            let damage = Damage { offset, reason };
            report.damaged.push((path.clone(), damage.clone()));
            state.damage = Some(damage);
        }
        ScanEnd::Damaged { offset, reason, resync_next_seq } => {
            let damage = Damage { offset, reason };
            report.damaged.push((path.clone(), damage.clone()));
            state.damage = Some(damage);
            resync_next = Some(resync_next_seq);
        }
    }
    Ok((Segment::new(dir, base_seq, file, state), resync_next))
}
