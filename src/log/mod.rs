//! The log: an append-only sequence of records in segment files, one log per stream shard,
//! queue, topic and for the catalog.
//!
//! A [`Log`] owns its directory. Appends go through one writer lock and, under
//! [`Durability::Always`], return only after a group-committed fsync covers them. Reads go
//! through memory maps and never see records that are not yet durable under the log's mode.
//! This module knows nothing of queues, topics or streams.

pub mod durable;
pub mod fault;
pub mod group_commit;
pub(crate) mod head;
pub mod io;
pub mod keys;
pub mod mapped;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod tail;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::format::batch::{payload_len, EncodedBatch, FrameLayout, FrameStamp, MAX_FRAME_LEN, MAX_PAYLOAD_LEN};
use crate::format::lost::{LostRanges, LOST_FILE};
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::format::{Compression, Head, IndexEntry, IndexFile, Record, RecordRef, SegmentHeader};
use durable::DurableLog;
use group_commit::{GroupCommit, Turn};
use head::{continue_after, read_head, write_head, LastSegment, Reservation};
use io::Vfs;
use keys::{CurrentKey, LogEncryption, LogKeys};
use recovery::{scan_segment_keyed, with_whole, ScanEnd};
use segment::{index_file_name, new_salt, parse_segment_name, segment_file_name, Damage, Segment};
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

/// How a log is laid out, synced and encrypted.
#[derive(Debug, Clone)]
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
    /// Whether the log is encrypted (every frame sealed under a data key of its own, wrapped by
    /// this key ring), or plain. An encrypted log refuses frames that are not sealed.
    pub encryption: Option<Arc<LogEncryption>>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            durability: Durability::Always,
            compression: Compression::Auto,
            preallocate: true,
            encryption: None,
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
    /// Sequence ranges that were reserved and never durably written (a crash lost them, or they
    /// were never used), passed over by reads as trimmed records are: `[start, end)`.
    pub skipped: Vec<(u64, u64)>,
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
    /// What the `HEAD` file says (see `head.rs`): no number at or above its `reserved_next`
    /// has been handed out.
    head: Head,
    /// How far the next raise of the reservation reaches.
    reservation: Reservation,
    /// The data key frames are sealed under now (encrypted logs), made at the first write after
    /// open and again once its reuse period is over: never one an earlier writer used.
    data_key: Option<CurrentKey>,
}

/// One append-only log in one directory.
pub struct Log {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    config: LogConfig,
    segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// Shared with the log's sync thread (see [`Log::poll_durable`]).
    commit: Arc<GroupCommit>,
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
    /// The data keys of an encrypted log.
    keys: Option<Arc<LogKeys>>,
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
    /// segment. Recovery runs here: torn and unacknowledged tails are cut, missing or stale
    /// indexes rebuilt, damage recorded (see [`Log::recovery_report`]), and the log goes on
    /// above every sequence number it ever handed out (its `HEAD` file).
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
        let head = read_head(vfs.as_ref(), dir)?;
        let keys = match &config.encryption {
            Some(encryption) => Some(Arc::new(LogKeys::load(vfs.as_ref(), dir, Arc::clone(encryption))?)),
            None => None,
        };
        let frame_keys = keys.as_deref().map(|k| k as &dyn crate::format::batch::FrameKeys);
        // A segment HEAD names was created whole: only a later one can be half made.
        if let Some(&last) = bases.last().filter(|&&b| head.is_none_or(|h| h.active_base < b)) {
            if remove_unfinished_segment(&vfs, dir, last, &config, &mut report)? {
                bases.pop();
            }
        }
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut next_seq = initial_seq;
        let mut last_time_ms = 0;
        let mut last = None;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            // A hole below what HEAD says was durable is damage, whatever follows it.
            let durable_floor = head.filter(|_| is_last).map_or(0, |h| h.durable_next);
            let (segment, resync_next) =
                open_segment(&vfs, dir, base, is_last, durable_floor, &config, frame_keys, &mut report)?;
            let state = segment.snapshot();
            if i > 0 && base < next_seq {
                return Err(Error::corrupt(
                    &segment.path,
                    0,
                    format!("segment starts at sequence {base}, below the {next_seq} its predecessor reaches"),
                ));
            }
            if i > 0 && base > next_seq {
                // `[skipped_from, base)` was never durably written; anything below it is gone.
                let skipped_from = segment.skipped_from().max(next_seq);
                if next_seq < skipped_from && !lost.covers(next_seq, skipped_from) {
                    report.missing.push((next_seq, skipped_from));
                }
                if skipped_from < base {
                    report.skipped.push((skipped_from, base));
                }
            }
            next_seq = state.next_seq.max(resync_next.unwrap_or(0));
            last_time_ms = last_time_ms.max(state.last_time_ms);
            last = Some(LastSegment {
                base_seq: base,
                end: next_seq,
                len: state.len,
                damaged: state.damage.is_some(),
                version_1: segment.header.version_number() == 1,
            });
            segments.push(Arc::new(segment));
        }
        let plan = continue_after(dir, head, last, initial_seq, &lost);
        report.missing.extend(plan.missing);
        report.damaged.extend(plan.damage);
        let next_seq = plan.next_seq;
        let (active, tail) = match plan.new_segment_skipping_from {
            Some(skipped_from) => {
                if let Some(previous) = segments.last() {
                    seal_at_open(&vfs, previous)?;
                }
                if skipped_from < next_seq {
                    report.skipped.push((skipped_from, next_seq));
                }
                let (segment, tail) = create_segment(&vfs, dir, next_seq, skipped_from, &config)?;
                let segment = Arc::new(segment);
                segments.push(Arc::clone(&segment));
                (segment, tail)
            }
            None => {
                let active = match segments.last() {
                    Some(s) => Arc::clone(s),
                    None => return Err(Error::corrupt(dir, 0, "log has no segment")),
                };
                // What recovery read may still be only in the page cache (the process died, the
                // machine did not): make it durable before frames say it is (their durable point).
                active.file.sync_data().map_err(|e| Error::io("fsync", &active.path, e))?;
                // Recovery left the file as whole frames, possibly followed by zeros only.
                let len = active.file.len().map_err(|e| Error::io("stat", &active.path, e))?;
                (active, ActiveTail::new(len, config.preallocate))
            }
        };
        debug_assert_eq!(active.snapshot().next_seq, next_seq, "the writer starts where its segment ends");
        let now = Head { active_base: active.base_seq, reserved_next: next_seq, durable_next: next_seq };
        if head != Some(now) {
            write_head(vfs.as_ref(), dir, &now)?;
        }
        Ok(Log {
            dir: dir.to_path_buf(),
            vfs,
            config,
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer {
                next_seq,
                last_time_ms,
                active,
                tail,
                poisoned: None,
                head: now,
                reservation: Reservation::default(),
                data_key: None,
            }),
            commit: Arc::new(GroupCommit::new(next_seq)),
            visible_next: AtomicU64::new(next_seq),
            bytes_written: AtomicU64::new(0),
            bytes_synced: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            report,
            lost,
            keys,
        })
    }

    /// True if the log is encrypted: its frames are sealed under data keys of its own.
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// Wraps every data key of an encrypted log under the key ring's newest version (see
    /// [`LogKeys::rewrap`]); returns how many were rewrapped (0 for a plain log).
    pub fn rekey(&self) -> Result<usize> {
        match &self.keys {
            Some(keys) => keys.rewrap(self.vfs.as_ref()),
            None => Ok(0),
        }
    }

    /// The key-file versions the data keys of an encrypted log are wrapped under, with how many
    /// keys each wraps (empty for a plain log).
    pub fn key_versions_in_use(&self) -> Vec<(String, usize)> {
        self.keys.as_ref().map_or_else(Vec::new, |k| k.versions_in_use())
    }

    fn frame_keys(&self) -> Option<&dyn crate::format::batch::FrameKeys> {
        self.keys.as_deref().map(|k| k as &dyn crate::format::batch::FrameKeys)
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
        let mut batch = EncodedBatch::encode_for(records, self.config.compression, self.keys.is_some());
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
        if next_seq == 0 {
            return Ok(()); // below 0 there is nothing (a call that wrote nothing waits for nothing)
        }
        match self.config.durability {
            Durability::Always => self.sync_to(next_seq),
            Durability::Interval(_) | Durability::Never => self.flush_ahead(),
        }
    }

    /// The future's side of [`Log::wait_durable`] (see [`crate::Durable`]): ready once every
    /// record below `next_seq` is durable as the mode promises. Under `Always` nobody blocks:
    /// the future registers its waker (its id kept in `*registered`) and the log's sync thread,
    /// started here if none runs, leads the fsync and wakes it. Under `Interval` and `Never` it
    /// is ready at once, as `wait_durable` (after the flush-ahead fsync that the writer finding
    /// [`FLUSH_AHEAD_BYTES`] unsynced runs, here on the polling thread). `owner` is what the
    /// sync thread reaches the log through; it holds it only while it syncs.
    pub(crate) fn poll_durable(
        &self,
        next_seq: u64,
        registered: &mut Option<u64>,
        cx: &mut Context<'_>,
        owner: impl FnOnce() -> Weak<dyn DurableLog>,
    ) -> Poll<Result<()>> {
        if next_seq == 0 {
            return Poll::Ready(Ok(())); // as `wait_durable`: nothing to wait for
        }
        if self.config.durability != Durability::Always {
            return Poll::Ready(self.flush_ahead());
        }
        let polled = self.commit.poll_durable(next_seq, registered, cx);
        if polled.start_sync_thread {
            let (owner, commit) = (owner(), Arc::clone(&self.commit));
            let started =
                std::thread::Builder::new().name("weir-sync".into()).spawn(move || run_sync_thread(&owner, &commit));
            if started.is_err() {
                // No thread to lead for the future: it syncs here, as a blocking wait would.
                self.commit.sync_thread_not_started();
                if let Some(id) = registered.take() {
                    self.commit.cancel(id);
                }
                return Poll::Ready(self.sync_to(next_seq));
            }
        }
        match polled.poll {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(reason)) => Poll::Ready(Err(Error::Poisoned { path: self.dir.clone(), reason })),
            Poll::Ready(Ok(())) => {
                self.visible_next.fetch_max(next_seq, Ordering::SeqCst);
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Forgets a future of [`Log::poll_durable`] dropped before it was ready.
    pub(crate) fn cancel_durable(&self, registered: u64) {
        self.commit.cancel(registered);
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
        if active_len > w.active.first_frame_offset() && active_len + batch.len() as u64 > self.config.segment_bytes {
            self.roll(&mut w)?;
        }
        let time_ms = now_ms.max(w.last_time_ms);
        let base_seq = w.next_seq;
        let Some(next_seq) = base_seq.checked_add(u64::from(batch.record_count())) else {
            // Only a log whose files claim sequence numbers near 2^64 gets here.
            let reason = format!("sequence numbers from {base_seq} on leave no room for {} more", batch.record_count());
            return Err(Error::corrupt(&w.active.path, 0, reason));
        };
        if next_seq > w.head.reserved_next {
            self.raise_reservation(&mut w, next_seq, now_ms)?;
        }
        let active = Arc::clone(&w.active);
        let FrameLayout::V2 { salt } = active.layout() else {
            // Open never leaves a version-1 segment active.
            return Err(Error::corrupt(&active.path, 0, "a version-1 segment is never appended to"));
        };
        let data_key = match &self.keys {
            Some(keys) => Some(self.data_key(&mut w, keys, time_ms)?),
            None => None,
        };
        // Every record below this is durable now: recovery tells from it whether a hole before
        // this frame after a crash can hold an acknowledged record.
        let durable_seq = self.commit.durable_next().min(base_seq);
        let mut state = active.state.write();
        let offset = state.len;
        debug_assert_eq!(state.next_seq, base_seq, "writer and segment disagree on the next sequence number");
        // The nonce of a sealed frame is its base_seq: this writer hands out each number once,
        // and its data key is its own (made by it, never by an earlier writer of the log).
        let stamp = FrameStamp { base_seq, time_ms, salt, durable_seq };
        let frame = batch.seal_with(&stamp, data_key.as_ref().map(|k| (k.id, k.key.as_ref())));
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
        debug_assert!(state.len > offset && offset >= active.first_frame_offset(), "frame lies inside its segment");
        debug_assert!(next_seq <= w.head.reserved_next, "a number is handed out only once reserved");
        debug_assert!(state.len <= w.tail.file_len(), "frames lie inside the file");
        drop(state);
        w.next_seq = next_seq;
        w.last_time_ms = time_ms;
        Ok(AppendOutcome { base_seq, next_seq, time_ms })
    }

    /// The data key to seal a frame stamped `time_ms` under: the writer's current one while its
    /// reuse period lasts, else a new one, stored durably first. A failure to store it poisons
    /// the log, as a failed `HEAD` write does.
    fn data_key(&self, w: &mut Writer, keys: &LogKeys, time_ms: u64) -> Result<CurrentKey> {
        let period = keys.encryption().reuse_period_ms();
        if let Some(current) = w.data_key.as_ref().filter(|k| k.fresh_at(time_ms, period)) {
            return Ok(current.clone());
        }
        match keys.new_key(self.vfs.as_ref(), time_ms) {
            Ok(key) => {
                w.data_key = Some(key.clone());
                Ok(key)
            }
            Err(e) => {
                w.poisoned = Some(format!("storing a new data key failed: {e}"));
                Err(e)
            }
        }
    }

    /// Raises the reservation of sequence numbers past `needed` (durably, before any of the
    /// numbers is written), by a chunk that grows with the write rate.
    fn raise_reservation(&self, w: &mut Writer, needed: u64, now_ms: u64) -> Result<()> {
        let chunk = w.reservation.next_chunk(now_ms);
        let head = Head {
            active_base: w.active.base_seq,
            reserved_next: needed.saturating_add(chunk),
            durable_next: self.commit.durable_next().min(w.next_seq),
        };
        self.store_head(w, head)
    }

    /// Replaces the `HEAD` file; a failure poisons the log (the file may be old or new after a
    /// crash, and both are safe, but the disk just failed a write).
    fn store_head(&self, w: &mut Writer, head: Head) -> Result<()> {
        if let Err(e) = write_head(self.vfs.as_ref(), &self.dir, &head) {
            w.poisoned = Some(format!("replacing the HEAD file failed: {e}"));
            return Err(e);
        }
        w.head = head;
        Ok(())
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
        let segment = match create_segment(&self.vfs, &self.dir, w.next_seq, w.next_seq, &self.config) {
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
        // Only now that the new segment is durable does HEAD name it (see `head.rs`).
        let head = Head {
            active_base: w.active.base_seq,
            reserved_next: w.head.reserved_next.max(w.next_seq),
            durable_next: self.commit.durable_next().min(w.next_seq),
        };
        self.store_head(w, head)
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

    /// One past the last readable record ([`Log::first_seq`] if there is none): where a reader
    /// that has read everything stands. Below [`Log::next_seq`] when the numbers after the last
    /// record were skipped (reserved before a crash and never written).
    pub fn end_of_records(&self) -> u64 {
        let limit = self.next_seq();
        for segment in self.segments.read().iter().rev() {
            let end = segment.state.read().next_seq.min(limit);
            if end > segment.base_seq {
                return end;
            }
        }
        self.first_seq()
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
            // A next segment's skipped range belongs to no segment: nothing is missing there.
            let segment_limit = segments.get(i + 1).map_or(limit, |n| n.skipped_from().min(limit));
            from = from.max(segment.base_seq);
            if from >= segment_limit {
                continue;
            }
            match segment.read_into(
                self.frame_keys(),
                from,
                segment_limit,
                max_records,
                max_bytes,
                &mut out,
                &mut bytes,
            ) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
            // A segment that ends short of where the next one begins lost records (a cut or a
            // deleted file): a reader must hear about it, not skip them.
            let segment_end = segment.state.read().next_seq;
            let wanted = out.last().map_or(from, |r| r.seq.saturating_add(1));
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

/// How long a log's sync thread waits for another future before it exits.
const SYNC_THREAD_IDLE: Duration = Duration::from_secs(1);

/// A log's sync thread: leads the fsyncs that futures of [`Log::poll_durable`] wait for, so
/// that no thread of theirs blocks, and exits once none has waited for [`SYNC_THREAD_IDLE`].
/// It holds the log (through `owner`) only while it syncs, so a closed engine's log is not
/// kept open by it.
fn run_sync_thread(owner: &Weak<dyn DurableLog>, commit: &GroupCommit) {
    loop {
        if let Some(target) = commit.needed_target() {
            let Some(owner) = owner.upgrade() else {
                // Unreachable while a future waits (each holds the owner); stop cleanly.
                commit.sync_thread_not_started();
                return;
            };
            // A failure reaches every waiting future through the group commit.
            let _ = owner.log().sync_to(target);
            continue;
        }
        if !commit.idle_until_needed(SYNC_THREAD_IDLE) {
            return;
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // A clean close makes `Never` and `Interval` logs durable; errors have nowhere to go
        // here, and the data is still covered by the guarantees of the mode.
        if self.is_poisoned() || self.flush().is_err() {
            return;
        }
        // Everything written is durable and nothing above it was handed out: the reservation
        // comes back down, so a clean reopen goes on without a gap. Only if the directory still
        // holds this log: a handle that outlived its log (a deleted stream, perhaps created
        // again under the same name) must not write into what is there now.
        let mut w = self.writer.lock();
        let closed = Head { active_base: w.active.base_seq, reserved_next: w.next_seq, durable_next: w.next_seq };
        if w.poisoned.is_none() && w.head != closed && self.still_holds(&w.active) {
            let _ = self.store_head(&mut w, closed);
        }
    }
}

impl Log {
    /// True if the file at `segment`'s path is still that segment (its header, salt included).
    fn still_holds(&self, segment: &Segment) -> bool {
        let Ok(file) = self.vfs.open_file(&segment.path, false) else { return false };
        let mut first = vec![0u8; segment.header.len()];
        file.read_exact_at(&mut first, 0).is_ok() && SegmentHeader::decode(&first).is_ok_and(|h| h == segment.header)
    }
}

/// Creates an empty version-2 segment holding only its header (a fresh salt; the numbers
/// `[skipped_from, base_seq)` skipped) and its first preallocated zeros, durably (file and
/// directory entry).
fn create_segment(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    base_seq: u64,
    skipped_from: u64,
    config: &LogConfig,
) -> Result<(Segment, ActiveTail)> {
    let path = dir.join(segment_file_name(base_seq));
    let header = SegmentHeader::new(base_seq, new_salt(), skipped_from);
    let file = vfs.open_file(&path, true).map_err(|e| Error::io("create", &path, e))?;
    file.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
    file.write_all_at(&header.encode(), 0).map_err(|e| Error::io("write", &path, e))?;
    let tail =
        ActiveTail::for_new_segment(file.as_ref(), header.len() as u64, config.segment_bytes, config.preallocate)
            .map_err(|e| Error::io("preallocate", &path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok((Segment::new(dir, header, file, Segment::empty_state(base_seq, header.len())), tail))
}

/// Makes the last segment found at open a sealed one before a new segment follows it (it is a
/// version-1 segment, or reserved numbers are skipped): its preallocated zeros go, it is
/// synced, and its index written. A damaged one is left as it is, as evidence.
fn seal_at_open(vfs: &Arc<dyn Vfs>, segment: &Segment) -> Result<()> {
    let state = segment.snapshot();
    if state.damage.is_some() {
        return Ok(());
    }
    let file_len = segment.file.len().map_err(|e| Error::io("stat", &segment.path, e))?;
    if file_len > state.len {
        segment.file.set_len(state.len).map_err(|e| Error::io("truncate", &segment.path, e))?;
    }
    segment.file.sync_data().map_err(|e| Error::io("fsync", &segment.path, e))?;
    // The index is an accelerator: if it cannot be written, the next open rebuilds it.
    let _ = vfs.write_file_atomic(&segment.index_path, &segment.index_file().encode());
    Ok(())
}

/// A last segment whose header never became whole and that holds nothing after it was being
/// created when the process died: it holds no record, so it is removed and the segment
/// before it is the last again (open then does what it would have done had the creation not
/// started). Returns true if it was removed.
fn remove_unfinished_segment(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    base_seq: u64,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<bool> {
    let path = dir.join(segment_file_name(base_seq));
    let file = vfs.open_file(&path, false).map_err(|e| Error::io("open", &path, e))?;
    let file_len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    let mut first = vec![0u8; file_len.min(SEGMENT_HEADER_LEN as u64) as usize];
    file.read_exact_at(&mut first, 0).map_err(|e| Error::io("read", &path, e))?;
    if SegmentHeader::decode(&first).is_ok() {
        return Ok(false);
    }
    // Whether a frame follows the header is all that matters here: the keys are not needed.
    let end =
        with_whole(&file, &path, |bytes| scan_segment_keyed(bytes, base_seq, config.index_interval_bytes, None).end)?;
    let ScanEnd::Torn { offset: 0, reason } = end else {
        return Ok(false);
    };
    drop(file);
    vfs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    report.truncated.push((path, 0, file_len, format!("a segment whose creation was cut short, removed: {reason}")));
    Ok(true)
}

/// Opens one segment, validating it as far as its position requires. Returns the segment and,
/// for a damaged last segment, one past the highest sequence number of the log seen after the
/// damage. In the last segment a hole below `durable_floor` (what HEAD says was durable) is
/// damage even where what follows would make it an unacknowledged tail. `keys`: the data keys of
/// an encrypted log, with which a scan checks sealed frames' tags too.
#[allow(clippy::too_many_arguments)]
fn open_segment(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    base_seq: u64,
    is_last: bool,
    durable_floor: u64,
    config: &LogConfig,
    keys: Option<&dyn crate::format::batch::FrameKeys>,
    report: &mut RecoveryReport,
) -> Result<(Segment, Option<u64>)> {
    let path = dir.join(segment_file_name(base_seq));
    let file = vfs.open_file(&path, false).map_err(|e| Error::io("open", &path, e))?;
    let file_len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    if !is_last {
        if let Some(segment) = open_indexed(vfs, dir, base_seq, &file, file_len) {
            return Ok((segment, None));
        }
    }
    let outcome =
        with_whole(&file, &path, |bytes| scan_segment_keyed(bytes, base_seq, config.index_interval_bytes, keys))?;
    // A segment whose header is unreadable is read as nothing (its length of whole frames is 0).
    let mut header = outcome.header.unwrap_or_else(|| SegmentHeader::new(base_seq, 0, base_seq));
    let mut state = outcome.state;
    let mut resync_next = None;
    let mut end = outcome.end;
    if let ScanEnd::Torn { offset, reason } = &end {
        if is_last && state.next_seq < durable_floor {
            let reason = format!(
                "{reason}; records from {} were durable (HEAD says so up to {}), so this is damage, not an \
                 unacknowledged tail",
                state.next_seq,
                durable_floor - 1
            );
            end = ScanEnd::Damaged { offset: *offset, reason, resync_next_seq: state.next_seq };
        }
    }
    match end {
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
            // The unsynced end of the last write before a crash, or an unacknowledged tail the
            // disk wrote back out of order: never acknowledged under `Always`, cut it off.
            let keep = offset;
            file.set_len(keep).map_err(|e| Error::io("truncate", &path, e))?;
            if keep == 0 {
                // Only a header naming another base gets here (an unreadable one with nothing
                // after it was removed as an unfinished creation): start the file afresh.
                header = SegmentHeader::new(base_seq, new_salt(), base_seq);
                file.write_all_at(&header.encode(), 0).map_err(|e| Error::io("write", &path, e))?;
                state = Segment::empty_state(base_seq, header.len());
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
    Ok((Segment::new(dir, header, file, state), resync_next))
}

/// A sealed segment described by a valid index of the same length: only its header is read.
fn open_indexed(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    base_seq: u64,
    file: &Arc<dyn io::LogFile>,
    file_len: u64,
) -> Option<Segment> {
    let index = vfs.read_file(&dir.join(index_file_name(base_seq))).ok()?;
    let index = IndexFile::decode(&index).ok()?;
    if index.segment_len != file_len || index.entries.first().is_some_and(|e| e.seq != base_seq) {
        return None;
    }
    let mut first = vec![0u8; file_len.min(SEGMENT_HEADER_LEN as u64) as usize];
    file.read_exact_at(&mut first, 0).ok()?;
    let header = SegmentHeader::decode(&first).ok().filter(|h| h.base_seq == base_seq)?;
    let mut state = Segment::empty_state(base_seq, header.len());
    state.len = index.segment_len;
    state.next_seq = index.next_seq;
    state.last_time_ms = index.last_time_ms;
    state.first_time_ms = index.entries.first().map_or(0, |e| e.time_ms);
    state.entries = index.entries;
    Some(Segment::new(dir, header, Arc::clone(file), state))
}
