//! Loading the queue index snapshot at open: the newest file that checks out, streamed into
//! fresh indexes (its checksum is known only at its end, so nothing of it counts before then).
//! A file that does not check out (checksum, version, structure, a position the log does not
//! hold, a queue the catalog knows under another name or type) is reported and passed over;
//! without one, open replays the whole log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::format::queue_snapshot::{
    decode_entry, parse_snapshot_file_name, SnapshotEntry, SnapshotHeader, NO_GROUP, SNAPSHOT_HEADER_LEN,
    SNAPSHOT_TRAILER_LEN,
};
use crate::log::io::{LogFile, Vfs};
use crate::log::Log;
use crate::queue::config::DedupScope;
use crate::queue::dedup::{DedupWindow, FirstSend};
use crate::queue::state::QueueState;
use crate::queue::store::snapshot::{Cuts, QueueCut};
use crate::queue::store::QueueDef;

/// How the queue indexes were rebuilt when the store opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRecovery {
    /// The snapshot loaded, if one was, and its position (replay started there).
    pub snapshot: Option<(PathBuf, u64)>,
    /// Snapshots that did not check out, each with why: they were ignored.
    pub ignored: Vec<(PathBuf, String)>,
    /// Records of the message log replayed.
    pub replayed: u64,
}

/// What a snapshot that checked out holds.
pub(crate) struct Loaded {
    pub(crate) header: SnapshotHeader,
    pub(crate) path: PathBuf,
    pub(crate) states: HashMap<u32, QueueState>,
    pub(crate) topics: HashMap<u32, DedupWindow>,
    pub(crate) cuts: Cuts,
    /// FIFO queues whose window the snapshot keyed under another deduplication scope than the
    /// catalog's now: keyed again from the log after replay.
    pub(crate) rekey: Vec<u32>,
}

/// Fresh, empty indexes of every queue the catalog knows and windows of its FIFO topics.
pub(crate) fn fresh(
    defs: &HashMap<u32, QueueDef>,
    fifo_topics: &[u32],
) -> (HashMap<u32, QueueState>, HashMap<u32, DedupWindow>) {
    let states = defs.values().map(|q| (q.id, QueueState::new(q.id, q.name.clone(), q.config.clone()))).collect();
    (states, fifo_topics.iter().map(|&id| (id, DedupWindow::default())).collect())
}

/// The newest snapshot in `dir` that checks out, noting in `report` every newer one that did
/// not (printed on stderr too: an operator should hear that open replayed the whole log).
pub(crate) fn load_newest(
    vfs: &Arc<dyn Vfs>,
    log: &Log,
    defs: &HashMap<u32, QueueDef>,
    fifo_topics: &[u32],
    now: u64,
    report: &mut IndexRecovery,
) -> Option<Loaded> {
    let dir = log.dir();
    let mut found: Vec<(u64, String)> = match vfs.list_dir(dir) {
        Ok(names) => names.into_iter().filter_map(|n| parse_snapshot_file_name(&n).map(|p| (p, n))).collect(),
        Err(_) => Vec::new(),
    };
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    for (_, name) in found {
        let path = dir.join(&name);
        if log.is_encrypted() {
            // weir writes none there: a plain file in an encrypted directory is not its own.
            let reason = "the directory is encrypted and keeps no queue index snapshot".to_string();
            eprintln!("weir: ignoring the queue snapshot {}: {reason}", path.display());
            report.ignored.push((path, reason));
            continue;
        }
        match load(vfs, log, &path, defs, fifo_topics, now) {
            Ok(loaded) => return Some(loaded),
            Err(reason) => {
                eprintln!("weir: ignoring the queue snapshot {}: {reason}", path.display());
                report.ignored.push((path, reason));
            }
        }
    }
    None
}

/// Reads a snapshot file through a buffer, checksumming what it hands out.
struct Stream {
    file: Arc<dyn LogFile>,
    len: u64,
    /// File offset of `buf[end]`.
    offset: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    crc: crc32fast::Hasher,
}

impl Stream {
    /// File offset of the next entry.
    fn at(&self) -> u64 {
        self.offset - (self.end - self.start) as u64
    }

    /// Reads more of the file; false at its end.
    fn refill(&mut self) -> Result<bool, String> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let room = (self.buf.len() - self.end) as u64;
        let n = room.min(self.len - self.offset) as usize;
        if n == 0 {
            return Ok(false);
        }
        self.file
            .read_exact_at(&mut self.buf[self.end..self.end + n], self.offset)
            .map_err(|e| format!("read: {e}"))?;
        self.end += n;
        self.offset += n as u64;
        Ok(true)
    }

    fn next(&mut self) -> Result<SnapshotEntry, String> {
        loop {
            match decode_entry(&self.buf[self.start..self.end]) {
                Ok(Some((entry, n))) => {
                    self.crc.update(&self.buf[self.start..self.start + n]);
                    self.start += n;
                    return Ok(entry);
                }
                Ok(None) => {
                    if !self.refill()? {
                        return Err(format!("the file ends inside the entry at offset {}", self.at()));
                    }
                }
                Err(e) => return Err(format!("entry at offset {}: {}", self.at(), e.reason)),
            }
        }
    }

    /// The trailing checksum, which must end the file.
    fn trailer(&mut self) -> Result<u32, String> {
        while self.end - self.start < SNAPSHOT_TRAILER_LEN {
            if !self.refill()? {
                return Err("the file ends before its checksum".into());
            }
        }
        let b = &self.buf[self.start..self.start + SNAPSHOT_TRAILER_LEN];
        let crc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        self.start += SNAPSHOT_TRAILER_LEN;
        if self.start != self.end || self.offset != self.len {
            return Err(format!("{} bytes follow the checksum", self.len - self.at()));
        }
        Ok(crc)
    }
}

/// Where the loader is in the file.
enum Section {
    /// Before the first queue or topic.
    Start,
    /// A queue's messages: its id, its index if the catalog knows it, its pieces so far, the
    /// groups of the current piece, the last key seen.
    Pieces {
        queue: u32,
        fifo: bool,
        state: Option<QueueState>,
        cut: QueueCut,
        groups: Vec<Bytes>,
        last_key: Option<u64>,
    },
    /// A queue's rest (after Meta).
    Rest { queue: u32, state: Option<QueueState> },
    /// A topic's window.
    Topic { topic: u32 },
}

fn load(
    vfs: &Arc<dyn Vfs>,
    log: &Log,
    path: &Path,
    defs: &HashMap<u32, QueueDef>,
    fifo_topics: &[u32],
    now: u64,
) -> Result<Loaded, String> {
    let file = vfs.open_file(path, false).map_err(|e| format!("open: {e}"))?;
    let len = file.len().map_err(|e| format!("stat: {e}"))?;
    if len < (SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN) as u64 {
        return Err(format!("the file is {len} bytes, too short for a snapshot"));
    }
    let mut head = [0u8; SNAPSHOT_HEADER_LEN];
    file.read_exact_at(&mut head, 0).map_err(|e| format!("read: {e}"))?;
    let header = SnapshotHeader::decode(&head).map_err(|e| e.reason)?;
    if parse_snapshot_file_name(&path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
        != Some(header.position)
    {
        return Err(format!("its name does not match its position {}", header.position));
    }
    let (first, next) = (log.first_seq(), log.next_seq());
    if header.position < first || header.covers > next {
        return Err(format!(
            "it needs the message log from sequence {} to {}, and the log holds {first} to {next}",
            header.position, header.covers
        ));
    }
    let (mut states, mut topics) = fresh(defs, fifo_topics);
    let mut cuts = Cuts::default();
    let mut rekey = Vec::new();
    let mut stream = Stream {
        file,
        len,
        offset: SNAPSHOT_HEADER_LEN as u64,
        buf: vec![0; 1 << 20],
        start: 0,
        end: 0,
        crc: crc32fast::Hasher::new(),
    };
    let mut section = Section::Start;
    let (mut last_queue, mut last_topic) = (None::<u32>, None::<u32>);
    let mut entries = 0u64;
    let mut seen = Vec::new();
    let in_range = |position: u64| (header.position..=header.covers).contains(&position);
    loop {
        let at = stream.at();
        let entry = stream.next()?;
        let bad = |what: &str| Err(format!("entry at offset {at}: {what}"));
        section = match (section, entry) {
            (
                Section::Pieces { queue, fifo, state, mut cut, last_key, .. },
                SnapshotEntry::Piece { from_key, position },
            ) => {
                // Above the previous piece's first key and every key it held, cut no earlier.
                let (previous_from, previous_cut) = cut.pieces.last().copied().unwrap_or_default();
                let after = previous_from.max(last_key.unwrap_or(0)).checked_add(1);
                if after.is_none_or(|a| from_key < a) || position < previous_cut || !in_range(position) {
                    return bad("a piece out of order");
                }
                cut.pieces.push((from_key, position));
                Section::Pieces { queue, fifo, state, cut, groups: Vec::new(), last_key }
            }
            (
                Section::Pieces { queue, fifo: true, state, cut, mut groups, last_key },
                SnapshotEntry::Group { name },
            ) => {
                groups.push(name);
                Section::Pieces { queue, fifo: true, state, cut, groups, last_key }
            }
            (Section::Pieces { queue, fifo, mut state, cut, groups, last_key }, SnapshotEntry::Message(m)) => {
                let (from, position) = cut.pieces.last().copied().unwrap_or_default();
                let group = match (fifo, m.group) {
                    (false, NO_GROUP) => None,
                    (true, g) => groups.get(g as usize),
                    (false, _) => return bad("a group in a standard queue"),
                };
                if m.key < from || last_key.is_some_and(|k| m.key <= k) || m.anchor < m.key || m.anchor >= position {
                    return bad("a message out of order, or with an anchor outside its piece");
                }
                if fifo && group.is_none() {
                    return bad("a FIFO message without a known group");
                }
                if let Some(st) = state.as_mut() {
                    let group = group.cloned().unwrap_or_default();
                    st.restore_message(
                        m.key,
                        m.anchor,
                        m.id_tag,
                        m.sent_ms,
                        m.visible_at_ms,
                        m.first_receive_ms,
                        m.receive_count,
                        &group,
                    );
                }
                Section::Pieces { queue, fifo, state, cut, groups, last_key: Some(m.key) }
            }
            (
                Section::Pieces { queue, fifo, mut state, mut cut, .. },
                SnapshotEntry::Meta { dedup_scope, last_purge_ms },
            ) => {
                let Some(&(_, position)) = cut.pieces.last() else { return bad("a queue without pieces") };
                cut.meta = position;
                if let Some(st) = state.as_mut() {
                    st.last_purge_ms = last_purge_ms;
                    let scope = if dedup_scope == 0 { DedupScope::Queue } else { DedupScope::MessageGroup };
                    if fifo && scope != st.config.dedup_scope {
                        rekey.push(queue);
                    }
                    cuts.queues.insert(queue, cut);
                }
                Section::Rest { queue, state }
            }
            (Section::Rest { queue, mut state }, SnapshotEntry::Dedup(d)) => {
                if let (Some(st), true) = (state.as_mut(), d.expires_ms > now) {
                    let first = FirstSend { message_id: d.message_id, key: d.key, expires_ms: d.expires_ms };
                    st.dedup.remember(d.digest, first);
                }
                Section::Rest { queue, state }
            }
            (Section::Rest { queue, mut state }, SnapshotEntry::Progress { task, moved }) => {
                if let Some(st) = state.as_mut() {
                    let count = st.move_progress.entry(task).or_default();
                    *count = (*count).max(moved);
                }
                Section::Rest { queue, state }
            }
            (Section::Topic { topic }, SnapshotEntry::Dedup(d)) => {
                if let (Some(w), true) = (topics.get_mut(&topic), d.expires_ms > now) {
                    w.remember(d.digest, FirstSend { message_id: d.message_id, key: d.key, expires_ms: d.expires_ms });
                }
                Section::Topic { topic }
            }
            (done @ (Section::Start | Section::Rest { .. } | Section::Topic { .. }), next) => {
                if let Section::Rest { queue, state: Some(st) } = done {
                    states.insert(queue, st);
                }
                match next {
                    SnapshotEntry::Queue { queue, name, fifo } => {
                        if last_topic.is_some() || last_queue.is_some_and(|q| queue <= q) {
                            return bad("a queue out of order");
                        }
                        last_queue = Some(queue);
                        seen.push(queue);
                        // A queue the catalog does not know was deleted after the cut (ids
                        // are never reused): its section is read and dropped.
                        let state = match defs.get(&queue) {
                            None => None,
                            Some(def) if def.name.as_bytes() != name || def.config.fifo != fifo => {
                                return Err(format!(
                                    "queue {queue} is {:?} in the catalog and {:?} in the snapshot",
                                    def.name,
                                    String::from_utf8_lossy(&name)
                                ));
                            }
                            Some(_) => states.remove(&queue),
                        };
                        let position = match stream.next()? {
                            SnapshotEntry::Piece { from_key: 0, position } if in_range(position) => position,
                            _ => return bad("a queue that does not start with its first piece"),
                        };
                        entries += 1;
                        let cut = QueueCut { pieces: vec![(0, position)], meta: 0 };
                        Section::Pieces { queue, fifo, state, cut, groups: Vec::new(), last_key: None }
                    }
                    SnapshotEntry::Topic { topic, position } => {
                        if last_topic.is_some_and(|t| topic <= t) || !in_range(position) {
                            return bad("a topic out of order");
                        }
                        last_topic = Some(topic);
                        if topics.contains_key(&topic) {
                            cuts.topics.insert(topic, position);
                        }
                        Section::Topic { topic }
                    }
                    SnapshotEntry::End { entries: written } => {
                        if written != entries {
                            return bad("the entry count does not match");
                        }
                        // A queue that existed when the cut began and is not deleted must be
                        // here; only queues created later start empty.
                        let missing = defs.values().find(|d| d.id <= header.queues_through && !seen.contains(&d.id));
                        if let Some(def) = missing {
                            return Err(format!(
                                "queue {:?} (id {}) existed when the snapshot was started and is not in it",
                                def.name, def.id
                            ));
                        }
                        let crc = std::mem::take(&mut stream.crc).finalize();
                        if stream.trailer()? != crc {
                            return Err("checksum mismatch".into());
                        }
                        return Ok(Loaded { header, path: path.to_path_buf(), states, topics, cuts, rekey });
                    }
                    _ => return bad("an entry out of place"),
                }
            }
            (_, _) => return bad("an entry out of place"),
        };
        entries += 1;
    }
}

/// After replay: every message's body must be in the log (the snapshot's anchors were live when
/// it was cut; a later move forward is in the tail). A message whose anchor is gone, or in a
/// range a salvage gave up on, would be served as damage: the snapshot is not used.
pub(crate) fn check_anchors(log: &Log, states: &HashMap<u32, QueueState>) -> Result<(), String> {
    let (first, next) = (log.first_seq(), log.next_seq());
    let lost = log.lost_ranges();
    for st in states.values() {
        for (key, m) in st.iter() {
            if m.anchor < first || m.anchor >= next || lost.covers(m.anchor, m.anchor + 1) {
                return Err(format!(
                    "message {key} of queue {:?} has its body at sequence {}, which the log does not hold",
                    st.name, m.anchor
                ));
            }
        }
    }
    Ok(())
}
