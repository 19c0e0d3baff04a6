//! Writing the queue index snapshot (format-spec.md section 9.2), and what a loaded one says
//! about which records of the log its cuts already reflect.
//!
//! **The cut.** A queue's index changes only under its lock, and every record of a queue is
//! written under that lock and applied to the index before the lock is released (store.rs's
//! discipline). So under the lock, the index reflects exactly the queue's records below the
//! log's `written_next` read there, and none above. The writer takes each queue's messages in
//! pieces of at most [`PIECE_MESSAGES`] in key order, each under one hold of the lock with its
//! own such position, and lets senders and receivers run between pieces: a piece is exact for
//! its key range at its position. The rest of the queue's index (deduplication window, purge
//! time, move task counts) is cut with its last piece; a FIFO topic's window under the
//! windows' lock, by which publishes write. Replay then applies a record of a queue only where
//! the cut does not reflect it: a record naming key `k` at sequence `s` when `s` is at or
//! above the position of `k`'s piece; a Purge to the pieces whose position is at or below it
//! (pieces are cut in key order at growing positions, so those are a prefix of the keys); the
//! rest when `s` is at or above the last piece's position. A new message's key is its own
//! sequence number, above every key that existed when an earlier piece was cut, so it always
//! falls in a piece cut after it was written, or after every piece.
//!
//! **Durability.** Before the file is renamed into place, the log is made durable up to the
//! highest position cut: a snapshot never reflects a record a power cut could take back, so
//! after any crash the log reaches every cut, and numbers above are never reused (`HEAD`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::queue_snapshot::{
    parse_snapshot_file_name, snapshot_file_name, SnapshotDedup, SnapshotEntry, SnapshotHeader, SnapshotMessage,
    NO_GROUP, SNAPSHOT_HEADER_LEN,
};
use crate::log::io::{tmp_path, LogFile};
use crate::queue::config::DedupScope;
use crate::queue::dedup::DedupWindow;
use crate::queue::store::{QueueCell, QueueStore};

/// Most messages of one queue written under one hold of its lock: about 3 MiB of entries, a
/// millisecond or two, so a snapshot of a deep queue never stops its senders and receivers for
/// longer than that at a time.
pub const PIECE_MESSAGES: usize = 65_536;

/// Maintenance writes a snapshot once at least this many records follow the last one (and at
/// least as many as the index has messages, so that the snapshot's writes, about 52 bytes a
/// message, stay below a record's worth per record appended). A million records replay in
/// about half a second: that is the most an open replays after a snapshot taken in time.
pub const SNAPSHOT_TAIL_RECORDS: u64 = 1 << 20;

/// ... or once the segments holding the records that follow it take this many bytes (large
/// bodies: replay reads every byte of them; and retention keeps the log from the snapshot's
/// position on, so this also bounds the disk the snapshot holds on to, about four segments).
pub const SNAPSHOT_TAIL_BYTES: u64 = 256 << 20;

/// A clean close writes a snapshot unless fewer records than this follow the last one (a few
/// milliseconds of replay): a command-line call that sends one message to a deep queue must not
/// rewrite its whole index when it closes.
pub const CLOSE_TAIL_RECORDS: u64 = 4096;

/// Bytes the writer gathers before a write call.
const WRITE_CHUNK: usize = 1 << 20;

/// Why a snapshot is being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotTrigger {
    /// Asked for: always written.
    Now,
    /// A maintenance pass: written once the tail is long ([`SNAPSHOT_TAIL_RECORDS`]).
    Maintenance,
    /// A clean close: written unless the tail is short ([`CLOSE_TAIL_RECORDS`]).
    Close,
}

/// The snapshot on disk that an open would load, as this store knows it.
#[derive(Debug)]
pub(crate) struct SnapshotMark {
    /// One snapshot write at a time.
    pub(crate) writing: parking_lot::Mutex<()>,
    /// Its position (replay starts there; retention keeps the log from there on); `u64::MAX`:
    /// none.
    pub(crate) position: std::sync::atomic::AtomicU64,
    /// The highest position it cut at: records at or above it are its tail.
    pub(crate) covers: std::sync::atomic::AtomicU64,
    /// Messages per piece ([`PIECE_MESSAGES`]; tests make pieces small).
    pub(crate) piece_messages: std::sync::atomic::AtomicUsize,
}

impl SnapshotMark {
    pub(crate) fn new(loaded: Option<SnapshotHeader>) -> SnapshotMark {
        SnapshotMark {
            writing: parking_lot::Mutex::new(()),
            position: loaded.map_or(u64::MAX, |h| h.position).into(),
            covers: loaded.map_or(u64::MAX, |h| h.covers).into(),
            piece_messages: PIECE_MESSAGES.into(),
        }
    }
}

/// What a loaded snapshot's cuts reflect: which records of the tail replay must still apply.
#[derive(Debug, Default)]
pub(crate) struct Cuts {
    /// Queues the snapshot holds: their pieces `(from_key, position)` in key order, and the
    /// position of the rest of their index.
    pub(crate) queues: HashMap<u32, QueueCut>,
    /// FIFO topics the snapshot holds: the position of their windows.
    pub(crate) topics: HashMap<u32, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct QueueCut {
    pub(crate) pieces: Vec<(u64, u64)>,
    pub(crate) meta: u64,
}

impl Cuts {
    /// True if a record of `queue` naming message `key` at `seq` is not reflected yet.
    pub(crate) fn key_applies(&self, queue: u32, key: u64, seq: u64) -> bool {
        let Some(cut) = self.queues.get(&queue) else { return true };
        let i = cut.pieces.partition_point(|&(from, _)| from <= key);
        i.checked_sub(1).and_then(|i| cut.pieces.get(i)).is_none_or(|&(_, position)| seq >= position)
    }

    /// True if a record of `queue` about the rest of its index (deduplication, purge time,
    /// move counts) at `seq` is not reflected yet.
    pub(crate) fn meta_applies(&self, queue: u32, seq: u64) -> bool {
        self.queues.get(&queue).is_none_or(|cut| seq >= cut.meta)
    }

    /// The keys a Purge of `queue` at `seq` below `before_key` still removes: those below the
    /// returned bound (the pieces cut at or before `seq`, a prefix of the keys).
    pub(crate) fn purge_bound(&self, queue: u32, seq: u64, before_key: u64) -> u64 {
        let Some(cut) = self.queues.get(&queue) else { return before_key };
        let reflected = cut.pieces.iter().find(|&&(_, position)| position > seq).map_or(u64::MAX, |&(from, _)| from);
        before_key.min(reflected)
    }

    /// True if a Publish of `topic` at `seq` is not reflected yet.
    pub(crate) fn topic_applies(&self, topic: u32, seq: u64) -> bool {
        self.topics.get(&topic).is_none_or(|&position| seq >= position)
    }
}

/// Streams entries into the temporary file, a chunk per write call, with the checksum.
struct SnapshotWriter {
    file: Arc<dyn LogFile>,
    path: std::path::PathBuf,
    offset: u64,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    entries: u64,
}

impl SnapshotWriter {
    fn entry(&mut self, entry: &SnapshotEntry) -> Result<()> {
        let at = self.buf.len();
        entry.encode(&mut self.buf);
        self.crc.update(&self.buf[at..]);
        self.entries += 1;
        if self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file.write_all_at(&self.buf, self.offset).map_err(|e| Error::io("write", &self.path, e))?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// The End entry, the checksum, and the rest of the buffer.
    fn finish(mut self, header: &SnapshotHeader) -> Result<Arc<dyn LogFile>> {
        let entries = self.entries;
        self.entry(&SnapshotEntry::End { entries })?;
        let crc = std::mem::take(&mut self.crc).finalize();
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.flush()?;
        self.file.write_all_at(&header.encode(), 0).map_err(|e| Error::io("write", &self.path, e))?;
        Ok(self.file)
    }
}

impl QueueStore {
    /// Writes a snapshot of every queue's index if `trigger` calls for one now; returns its
    /// position if it wrote one.
    pub fn snapshot_if_due(&self, trigger: SnapshotTrigger) -> Result<Option<u64>> {
        let written = self.log.written_next();
        let covers = self.snapshot.covers.load(Ordering::SeqCst);
        let tail = if covers == u64::MAX {
            written.saturating_sub(self.log.first_seq())
        } else {
            written.saturating_sub(covers)
        };
        // The snapshot is written in the clear (names, group and deduplication ids): an
        // encrypted directory keeps none and replays its whole log at open.
        if self.log.is_encrypted() {
            return Ok(None);
        }
        let due = match trigger {
            SnapshotTrigger::Now => true,
            SnapshotTrigger::Close => tail >= CLOSE_TAIL_RECORDS || (covers == u64::MAX && tail > 0),
            SnapshotTrigger::Maintenance => {
                let live: u64 = self.queues.read().values().map(|c| c.state.lock().len() as u64).sum();
                tail >= SNAPSHOT_TAIL_RECORDS.max(live) || self.tail_bytes(covers) >= SNAPSHOT_TAIL_BYTES
            }
        };
        if !due {
            return Ok(None);
        }
        self.write_snapshot().map(Some)
    }

    /// Bytes of the segments that hold records at or above `from` (an upper bound of the
    /// tail's bytes).
    fn tail_bytes(&self, from: u64) -> u64 {
        let from = if from == u64::MAX { 0 } else { from };
        self.log.segment_infos().iter().filter(|s| s.next_seq > from).map(|s| s.len).sum()
    }

    /// Writes a snapshot of every queue's index and FIFO topic's window now (see the module
    /// documentation), replaces the previous one, and returns its position.
    pub fn write_snapshot(&self) -> Result<u64> {
        if self.log.is_encrypted() {
            return Err(Error::InvalidArgument(
                "an encrypted directory keeps no queue index snapshot (it would hold names and ids in the clear)"
                    .into(),
            ));
        }
        let _one = self.snapshot.writing.lock();
        let now = self.clock.now_ms();
        // Read before the queues are listed: a queue added later has no record below it.
        let position = self.log.written_next();
        let (mut cells, queues_through) = {
            let queues = self.queues.read();
            let cells: Vec<Arc<QueueCell>> = queues.values().cloned().collect();
            (cells, self.max_queue_id.load(Ordering::SeqCst))
        };
        cells.sort_by_key(|c| c.id);
        let dir = self.log.dir().to_path_buf();
        let path = dir.join(snapshot_file_name(position));
        let tmp = tmp_path(&path);
        let file = self.vfs.open_file(&tmp, true).map_err(|e| Error::io("create", &tmp, e))?;
        file.set_len(0).map_err(|e| Error::io("truncate", &tmp, e))?;
        let mut out = SnapshotWriter {
            file,
            path: tmp.clone(),
            offset: SNAPSHOT_HEADER_LEN as u64,
            buf: Vec::with_capacity(WRITE_CHUNK + 4096),
            crc: crc32fast::Hasher::new(),
            entries: 0,
        };
        let mut covers = position;
        for cell in &cells {
            covers = covers.max(self.write_queue(cell, now, &mut out)?);
        }
        {
            let windows = self.topic_dedup.lock();
            let cut = self.log.written_next();
            covers = covers.max(cut);
            let mut topics: Vec<(&u32, &DedupWindow)> = windows.iter().collect();
            topics.sort_by_key(|(id, _)| **id);
            for (&topic, window) in topics {
                out.entry(&SnapshotEntry::Topic { topic, position: cut })?;
                write_window(window, now, &mut out)?;
            }
        }
        let header = SnapshotHeader { position, written_ms: now, covers, queues_through };
        let file = out.finish(&header)?;
        file.sync_data().map_err(|e| Error::io("fsync", &tmp, e))?;
        drop(file);
        // Every record a cut reflects is durable before the snapshot can be loaded.
        self.log.sync_to(covers)?;
        self.vfs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        self.vfs.sync_dir(&dir).map_err(|e| Error::io("fsync directory", &dir, e))?;
        self.snapshot.position.store(position, Ordering::SeqCst);
        self.snapshot.covers.store(covers, Ordering::SeqCst);
        self.remove_other_snapshots(&dir, position);
        Ok(position)
    }

    /// Writes one queue's section, a piece per hold of its lock; returns its highest cut.
    fn write_queue(&self, cell: &QueueCell, now: u64, out: &mut SnapshotWriter) -> Result<u64> {
        let fifo = cell.state.lock().config.fifo;
        out.entry(&SnapshotEntry::Queue { queue: cell.id, name: cell.name.clone().into(), fifo })?;
        let mut from_key = 0;
        let piece_messages = self.snapshot.piece_messages.load(Ordering::Relaxed).max(1);
        loop {
            let st = cell.state.lock();
            let cut = self.log.written_next();
            out.entry(&SnapshotEntry::Piece { from_key, position: cut })?;
            let mut groups: HashMap<u32, u32> = HashMap::new();
            let mut next_from = None;
            for (count, (key, m)) in st.iter_from(from_key).enumerate() {
                if count == piece_messages {
                    next_from = Some(key);
                    break;
                }
                let group = match m.group_slot() {
                    None => NO_GROUP,
                    Some(slot) => match groups.get(&slot) {
                        Some(&local) => local,
                        None => {
                            let local = groups.len() as u32;
                            groups.insert(slot, local);
                            out.entry(&SnapshotEntry::Group { name: st.group_name(m) })?;
                            local
                        }
                    },
                };
                out.entry(&SnapshotEntry::Message(SnapshotMessage {
                    key,
                    anchor: m.anchor,
                    sent_ms: m.sent_ms,
                    visible_at_ms: m.visible_at_ms,
                    first_receive_ms: m.first_receive_ms(),
                    receive_count: m.receive_count,
                    group,
                    id_tag: m.id_tag(),
                }))?;
            }
            if let Some(next) = next_from {
                from_key = next;
                drop(st);
                self.pauses.at(crate::queue::pause::Pause::SnapshotPiece);
                continue;
            }
            let dedup_scope = match st.config.dedup_scope {
                DedupScope::Queue => 0,
                DedupScope::MessageGroup => 1,
            };
            out.entry(&SnapshotEntry::Meta { dedup_scope, last_purge_ms: st.last_purge_ms })?;
            write_window(&st.dedup, now, out)?;
            for (&task, &moved) in &st.move_progress {
                out.entry(&SnapshotEntry::Progress { task, moved })?;
            }
            return Ok(cut);
        }
    }

    /// Removes every snapshot file but the one at `keep` (older ones; a newer one cannot
    /// exist while this store writes). A failure leaves an older file that open passes over.
    fn remove_other_snapshots(&self, dir: &Path, keep: u64) {
        let Ok(names) = self.vfs.list_dir(dir) else { return };
        for name in names {
            if parse_snapshot_file_name(&name).is_some_and(|p| p != keep) {
                let _ = self.vfs.remove_file(&dir.join(name));
            }
        }
    }
}

/// The ids of a window still remembered at `now`.
fn write_window(window: &DedupWindow, now: u64, out: &mut SnapshotWriter) -> Result<()> {
    for (digest, first) in window.entries().filter(|(_, f)| f.expires_ms > now) {
        out.entry(&SnapshotEntry::Dedup(SnapshotDedup {
            digest,
            message_id: first.message_id,
            key: first.key,
            expires_ms: first.expires_ms,
        }))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_apply_where_the_cut_does_not_reflect_them() {
        let mut cuts = Cuts::default();
        cuts.queues.insert(1, QueueCut { pieces: vec![(0, 100), (50, 120), (90, 130)], meta: 130 });
        cuts.topics.insert(4, 110);
        // Keys of the first piece: reflected below 100.
        assert!(!cuts.key_applies(1, 10, 99));
        assert!(cuts.key_applies(1, 10, 100));
        assert!(!cuts.key_applies(1, 60, 119));
        assert!(cuts.key_applies(1, 60, 120));
        assert!(!cuts.key_applies(1, 125, 129), "a key of the last piece, written before its cut");
        assert!(cuts.key_applies(1, 135, 135));
        assert!(cuts.key_applies(2, 10, 0), "a queue the snapshot does not hold takes everything");
        assert!(!cuts.meta_applies(1, 129));
        assert!(cuts.meta_applies(1, 130));
        // A purge at 110 is reflected in the pieces cut after it (keys 50 on).
        assert_eq!(cuts.purge_bound(1, 110, 105), 50);
        assert_eq!(cuts.purge_bound(1, 125, 105), 90);
        assert_eq!(cuts.purge_bound(1, 130, 105), 105);
        assert_eq!(cuts.purge_bound(1, 99, 105), 0);
        assert!(!cuts.topic_applies(4, 109));
        assert!(cuts.topic_applies(4, 110));
    }
}
