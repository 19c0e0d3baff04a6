//! The message store: one log shared by every queue, and the queues' indexes.
//!
//! Writes follow one discipline: take the locks of every queue involved (in id order), decide
//! with the index, write the records as one frame (page cache), apply them to the index, drop
//! the locks, then wait for the group-committed fsync. The log orders everything: an operation
//! whose own record is durable has every earlier record durable too, so a receive can never
//! acknowledge a message whose send is not on disk. A frame holding records of several queues
//! (a dead-letter move, a redrive) is applied whole or not at all.

mod broker;
mod hand_over;
mod index_dump;
mod move_messages;
mod snapshot;
mod snapshot_load;

pub use broker::{single, BrokerMessage, MAX_HANDLES_PER_FRAME};
pub use move_messages::{MoveJob, MoveStep};
pub use snapshot::{SnapshotTrigger, CLOSE_TAIL_RECORDS, PIECE_MESSAGES, SNAPSHOT_TAIL_BYTES, SNAPSHOT_TAIL_RECORDS};
pub use snapshot_load::IndexRecovery;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::batch::{payload_len, record_payload_len, MAX_PAYLOAD_LEN, RECORD_OVERHEAD};
use crate::format::queue_record::{
    MessageRecord, PublishRecord, QueueRecord, MAX_ATTRIBUTES, MAX_ID_LEN, MAX_SENDER_ID_LEN, MAX_TRACE_HEADER_LEN,
    OWN_SEQ,
};
use crate::format::RecordRef;
use crate::log::durable::DurableLog;
use crate::log::io::Vfs;
use crate::log::{AppendOutcome, Log, LogConfig};
use crate::queue::attempts::{validate_attempt_id, AttemptEntry};
use crate::queue::attributes::{self, from_stored, to_stored};
use crate::queue::changed::ChangeSignal;
use crate::queue::config::{
    check_range, DedupScope, QueueConfig, DEDUP_WINDOW, MAX_DELAY, MAX_MAX_MESSAGE_BYTES, MAX_RECEIVE_WAIT,
    MAX_VISIBILITY_TIMEOUT,
};
use crate::queue::dedup::{digest, scoped_digest, DedupWindow, FirstSend};
use crate::queue::pause::{Pause, PausePoints};
use crate::queue::receipt::{Receipt, ReceiptKey};
use crate::queue::state::{Msg, QueueState, Taken};
use crate::queue::{
    PeekedMessage, QueueAttributes, ReceiveOptions, ReceivedMessage, RedriveResult, SendEntry, SendResult,
    MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_RECEIVE,
};

/// One queue: its index behind a lock, and the condition long polls wait on.
#[derive(Debug)]
pub struct QueueCell {
    /// Catalog id (never reused).
    pub id: u32,
    /// Name.
    pub name: String,
    /// When the queue was created (ms since the Unix epoch, from the catalog).
    pub created_ms: u64,
    /// When its attributes last changed.
    modified_ms: AtomicU64,
    pub(crate) state: Mutex<QueueState>,
    wake: Condvar,
    /// Long polls asleep on `wake` (changed only under `state`'s lock).
    waiting: AtomicU64,
    /// One of them has been woken and has not run yet (changed only under `state`'s lock).
    wake_pending: AtomicBool,
    deleted: AtomicBool,
    /// What async waiters (`Queue::changed`) wait on.
    pub(crate) changed: Arc<ChangeSignal>,
}

impl QueueCell {
    fn new(def: &QueueDef, state: QueueState) -> QueueCell {
        QueueCell {
            id: def.id,
            name: def.name.clone(),
            created_ms: def.created_ms,
            modified_ms: AtomicU64::new(def.modified_ms),
            state: Mutex::new(state),
            wake: Condvar::new(),
            waiting: AtomicU64::new(0),
            wake_pending: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            changed: Arc::new(ChangeSignal::default()),
        }
    }

    /// Something that can make messages visible happened (messages arrived, visibility ran
    /// to now, attributes changed): wakes every blocking long poll and every async waiter.
    pub(crate) fn wake_everyone(&self) {
        self.wake.notify_all();
        self.changed.notify();
    }

    /// Whether to wake a long poll for messages that just became visible; call under the lock,
    /// notify after releasing it. At most one woken poll is on its way at a time: it takes up
    /// to its batch and wakes the next if it leaves visible messages behind (`receive_once`),
    /// so a burst of single sends wakes a few receivers that each take a batch, instead of one
    /// receiver (and one context switch) per message.
    fn claim_wake(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0 && !self.wake_pending.swap(true, Ordering::Relaxed)
    }
}

/// A queue known to the catalog, as the store is opened with it.
#[derive(Debug, Clone)]
pub struct QueueDef {
    /// Catalog id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Attributes.
    pub config: QueueConfig,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When its attributes last changed.
    pub modified_ms: u64,
}

/// The shared message log and every queue's index.
pub struct QueueStore {
    log: Log,
    vfs: Arc<dyn Vfs>,
    clock: Arc<dyn Clock>,
    receipt_key: ReceiptKey,
    id_seed: [u8; 16],
    id_counter: AtomicU64,
    queues: RwLock<HashMap<String, Arc<QueueCell>>>,
    /// The highest queue id this store has had (changed under `queues`' write lock).
    max_queue_id: AtomicU32,
    /// Deduplication windows of FIFO topics, by topic id. Locked before any queue.
    topic_dedup: Mutex<HashMap<u32, DedupWindow>>,
    /// Moves counted by message move tasks, from their MoveProgress records, by task id (the
    /// engine takes them when it resumes its tasks at open).
    replayed_move_progress: Mutex<HashMap<u32, u64>>,
    /// The index snapshot on disk (`snapshot.rs`).
    pub(crate) snapshot: snapshot::SnapshotMark,
    /// How open rebuilt the indexes.
    index_recovery: IndexRecovery,
    /// Held while any queue or topic handle lives: they can still write.
    _lock: Arc<dyn std::any::Any + Send + Sync>,
    /// Where tests interleave other work with an operation.
    pub(crate) pauses: PausePoints,
    /// The account and region of queue and topic ARNs, for topic deliveries' policy checks.
    arn_scope: RwLock<Arc<crate::policy::ArnScope>>,
}

/// One publish to write: the topic's record and the queue messages it fans out to (keys
/// `OWN_SEQ`; their sequence numbers are assigned by the write).
#[derive(Debug)]
pub struct PublishWrite {
    /// The publish record.
    pub record: PublishRecord,
    /// Deliveries: target queue and the message it receives.
    pub deliveries: Vec<(Arc<QueueCell>, MessageRecord)>,
}

/// What happened to one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The message id (for a duplicate: the first publish's).
    pub message_id: [u8; 16],
    /// Sequence number of the publish record (for a duplicate: the first's).
    pub seq: u64,
    /// True if deduplicated: nothing was written.
    pub duplicate: bool,
    /// Queues that received it.
    pub delivered: usize,
}

impl std::fmt::Debug for QueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueStore").field("log", &self.log).finish()
    }
}

/// What the store is opened with, from the engine.
pub struct StoreEnv {
    /// The file system.
    pub vfs: Arc<dyn Vfs>,
    /// Layout and durability of the message log.
    pub log_config: LogConfig,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The key of receipt-handle MACs.
    pub secret: [u8; 32],
    /// Keeps the data directory's lock held while the store (any queue or topic handle) lives.
    pub lock: Arc<dyn std::any::Any + Send + Sync>,
}

/// How often a queue may be purged, as SQS: once a minute.
pub const PURGE_INTERVAL_MS: u64 = 60_000;

/// Most bytes of records written in one frame by compaction (a single larger message gets a
/// frame of its own).
const MOVE_FRAME_BYTES: usize = 4 << 20;

/// Bytes a Message record takes beyond its body and attribute values: fixed fields, group and
/// deduplication ids, and per attribute its name, type and lengths.
const MESSAGE_RECORD_OVERHEAD: usize = 71 + 2 * (2 + MAX_ID_LEN) + MAX_ATTRIBUTES * (2 + 256 + 2 + 256 + 4) + 4;

// A send batch (its entries together at most the largest message size) with every record's
// overhead fits one frame a reader accepts.
const _: () =
    assert!(MAX_MAX_MESSAGE_BYTES + MAX_BATCH_ENTRIES * (MESSAGE_RECORD_OVERHEAD + RECORD_OVERHEAD) <= MAX_PAYLOAD_LEN);

impl DurableLog for QueueStore {
    fn log(&self) -> &Log {
        &self.log
    }
}

impl QueueStore {
    /// Opens the message log in `dir` and rebuilds every queue's index: from the newest
    /// snapshot that checks out and the records after it, else from the whole log.
    pub fn open(dir: &Path, env: StoreEnv, queues: Vec<QueueDef>, fifo_topics: Vec<u32>) -> Result<QueueStore> {
        let StoreEnv { vfs, log_config, clock, secret, lock } = env;
        let log = Log::open(Arc::clone(&vfs), dir, log_config, 0)?;
        let defs: HashMap<u32, QueueDef> = queues.into_iter().map(|q| (q.id, q)).collect();
        let now = clock.now_ms();
        let mut recovery = IndexRecovery::default();
        let loaded = snapshot_load::load_newest(&vfs, &log, &defs, &fifo_topics, now, &mut recovery);
        let mut used = None;
        let mut states = None;
        if let Some(loaded) = loaded {
            let snapshot_load::Loaded { header, path, states: mut st, topics: mut windows, cuts, rekey } = loaded;
            let replayed = replay(&log, header.position, &cuts, &mut st, &mut windows, now)?;
            match snapshot_load::check_anchors(&log, &st) {
                Ok(()) => {
                    for id in rekey {
                        if let Some(q) = st.get_mut(&id) {
                            q.dedup = dedup_window_from_log(&log, id, q.config.dedup_scope, now)?;
                        }
                    }
                    recovery.snapshot = Some((path, header.position));
                    recovery.replayed = replayed;
                    used = Some(header);
                    states = Some((st, windows));
                }
                Err(reason) => {
                    eprintln!("weir: ignoring the queue snapshot {}: {reason}", path.display());
                    recovery.ignored.push((path, reason));
                }
            }
        }
        let (mut states, topic_dedup) = match states {
            Some(loaded) => loaded,
            None => {
                let (mut st, mut windows) = snapshot_load::fresh(&defs, &fifo_topics);
                recovery.replayed =
                    replay(&log, log.first_seq(), &snapshot::Cuts::default(), &mut st, &mut windows, now)?;
                (st, windows)
            }
        };
        let max_queue_id = defs.keys().copied().max().unwrap_or(0);
        let mut move_progress = HashMap::new();
        for st in states.values_mut() {
            for (&task, &moved) in &st.move_progress {
                move_progress.insert(task, moved);
            }
        }
        let mut seed_hasher = Sha256::new();
        seed_hasher.update(secret);
        seed_hasher.update(now.to_le_bytes());
        seed_hasher.update(std::process::id().to_le_bytes());
        seed_hasher.update(log.written_next().to_le_bytes());
        // After a power cut the log can be back where an earlier opening left it, at the same
        // time (a manual clock) in the same process: only fresh randomness keeps ids unique,
        // and receipt handles rely on them to tell a message from one that reused its key.
        seed_hasher.update(fresh_entropy());
        let mut id_seed = [0u8; 16];
        id_seed.copy_from_slice(&seed_hasher.finalize()[..16]);
        let cells = states
            .into_values()
            .filter_map(|mut st| {
                st.rebuild(now);
                let cell = Arc::new(QueueCell::new(defs.get(&st.id)?, st));
                Some((cell.name.clone(), cell))
            })
            .collect();
        Ok(QueueStore {
            log,
            vfs,
            clock,
            receipt_key: ReceiptKey::new(&secret),
            id_seed,
            id_counter: AtomicU64::new(0),
            queues: RwLock::new(cells),
            max_queue_id: AtomicU32::new(max_queue_id),
            topic_dedup: Mutex::new(topic_dedup),
            replayed_move_progress: Mutex::new(move_progress),
            snapshot: snapshot::SnapshotMark::new(used),
            index_recovery: recovery,
            _lock: lock,
            pauses: PausePoints::default(),
            arn_scope: RwLock::new(Arc::default()),
        })
    }

    /// The moves each message move task had made when the store was opened (from the
    /// MoveProgress records the log still holds), by task id. Taken once, by the engine.
    pub fn take_replayed_move_progress(&self) -> HashMap<u32, u64> {
        std::mem::take(&mut self.replayed_move_progress.lock())
    }

    /// The shared log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// How open rebuilt the indexes: the snapshot it loaded, those it ignored and why, and the
    /// records it replayed.
    pub fn index_recovery(&self) -> &IndexRecovery {
        &self.index_recovery
    }

    /// A queue by name.
    pub fn cell(&self, name: &str) -> Option<Arc<QueueCell>> {
        self.queues.read().get(name).cloned()
    }

    /// Names of all queues, sorted; internal queues (an HTTP subscription's deliveries,
    /// named outside the queue namespace) are left out.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.queues.read().keys().filter(|n| !crate::names::is_internal_queue(n)).cloned().collect();
        names.sort();
        names
    }

    /// Adds a new, empty queue (the catalog has recorded it).
    pub fn add_queue(&self, def: QueueDef) -> Arc<QueueCell> {
        let cell = Arc::new(QueueCell::new(&def, QueueState::new(def.id, def.name.clone(), def.config.clone())));
        let mut queues = self.queues.write();
        self.max_queue_id.fetch_max(def.id, Ordering::SeqCst);
        queues.insert(def.name, Arc::clone(&cell));
        cell
    }

    /// Forgets a queue (the catalog has recorded its deletion); its records become garbage that
    /// compaction reclaims. Long polls on it end with an error.
    pub fn remove_queue(&self, name: &str) {
        if let Some(cell) = self.queues.write().remove(name) {
            cell.deleted.store(true, Ordering::SeqCst);
            let _guard = cell.state.lock();
            cell.wake.notify_all();
            cell.changed.close();
        }
    }

    /// Durably deletes the messages of `cell` that a retention of `retention` has expired, so a
    /// later, longer retention cannot bring them back. Call before recording a shorter retention.
    pub fn expire_for_retention(&self, cell: &QueueCell, retention: Duration) -> Result<()> {
        let mut st = self.lock_live(cell)?;
        let now = self.clock.now_ms();
        let cutoff = now.saturating_sub(retention.as_millis() as u64);
        let doomed: Vec<u64> = st.iter().filter(|(_, m)| m.sent_ms <= cutoff).map(|(k, _)| k).collect();
        let mut last = 0;
        for chunk in doomed.chunks(4096) {
            let records: Vec<QueueRecord> =
                chunk.iter().map(|&key| QueueRecord::Delete { queue: cell.id, key }).collect();
            last = self.write(&records, now)?.next_seq;
            for &key in chunk {
                st.remove(key);
            }
        }
        drop(st);
        if last > 0 {
            self.log.wait_durable(last)?;
        }
        Ok(())
    }

    /// Replaces a queue's attributes (the catalog has recorded them at `modified_ms`).
    pub fn set_config(&self, cell: &QueueCell, config: QueueConfig, modified_ms: u64) -> Result<()> {
        let mut st = cell.state.lock();
        let rekey = st.config.dedup_scope != config.dedup_scope;
        st.config = config;
        cell.modified_ms.store(modified_ms, Ordering::SeqCst);
        let rekeyed = if rekey { self.rekey_dedup(&mut st) } else { Ok(()) };
        drop(st);
        cell.wake_everyone();
        rekeyed
    }

    /// Rebuilds a FIFO queue's deduplication window under its current scope from the log, as a
    /// reopen does: every send of the last five minutes, so that ids which collided under the
    /// old scope (and were remembered once) are remembered apart under the new one. Segments
    /// younger than the window are never deleted, so the sends are all there.
    fn rekey_dedup(&self, st: &mut QueueState) -> Result<()> {
        st.dedup = dedup_window_from_log(&self.log, st.id, st.config.dedup_scope, self.clock.now_ms())?;
        Ok(())
    }

    /// Wakes every long poll so it looks at the clock again (tests that move a manual clock).
    pub fn wake_all(&self) {
        for cell in self.queues.read().values() {
            let _guard = cell.state.lock();
            cell.wake_everyone();
        }
    }

    /// Starts remembering deduplication ids of a new FIFO topic.
    pub fn add_fifo_topic(&self, topic: u32) {
        self.topic_dedup.lock().entry(topic).or_default();
    }

    /// Forgets a deleted topic's window.
    pub fn remove_topic(&self, topic: u32) {
        self.topic_dedup.lock().remove(&topic);
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The account and region ARNs name.
    pub fn arn_scope(&self) -> Arc<crate::policy::ArnScope> {
        Arc::clone(&self.arn_scope.read())
    }

    /// Sets the account and region ARNs name.
    pub fn set_arn_scope(&self, scope: crate::policy::ArnScope) {
        *self.arn_scope.write() = Arc::new(scope);
    }

    /// The name of the queue a message was dead-lettered from (`origin` 0: none), while that
    /// queue exists.
    fn dead_letter_source(&self, origin: u32) -> Option<String> {
        if origin == 0 {
            return None;
        }
        self.queues.read().values().find(|c| c.id == origin).map(|c| c.name.clone())
    }

    /// The messages a receive from queue `queue` took (each read under the queue's lock), as
    /// the receiver gets them: handles signed and ids formatted after the lock.
    fn received_all(&self, queue: u32, fifo: bool, taken: Vec<(&Taken, MessageRecord)>) -> Vec<ReceivedMessage> {
        taken
            .into_iter()
            .map(|(t, m)| {
                let source = self.dead_letter_source(m.origin_queue);
                received(&self.receipt_key, queue, t.key, &t.msg, m, fifo, source)
            })
            .collect()
    }

    /// A fresh message id.
    pub fn new_message_id(&self) -> [u8; 16] {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(self.id_seed);
        h.update(n.to_le_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize()[..16]);
        id
    }

    fn write(&self, records: &[QueueRecord], now_ms: u64) -> Result<AppendOutcome> {
        self.write_as(records, now_ms, "records written together (one frame)")
    }

    /// Writes `records` as one frame, or refuses them with [`Error::TooLarge`] naming `what`,
    /// before anything is written, if the frame would be larger than a reader accepts.
    fn write_as(&self, records: &[QueueRecord], now_ms: u64, what: &'static str) -> Result<AppendOutcome> {
        let encoded: Vec<Vec<u8>> = records.iter().map(QueueRecord::encode).collect();
        self.write_encoded(&encoded, now_ms, what)
    }

    /// [`QueueStore::write_as`] for records already encoded.
    fn write_encoded(&self, encoded: &[Vec<u8>], now_ms: u64, what: &'static str) -> Result<AppendOutcome> {
        let refs: Vec<RecordRef<'_>> = encoded.iter().map(|v| RecordRef { key: b"", value: v }).collect();
        let size = payload_len(&refs);
        if size > MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge { what, size, limit: MAX_PAYLOAD_LEN });
        }
        self.log.write(&refs, now_ms)
    }

    /// Reads the full record of a message at its anchor.
    fn read_message(&self, anchor: u64) -> Result<MessageRecord> {
        let records = self.log.read_written(anchor, 1, 1)?;
        let record = records.into_iter().next().filter(|r| r.seq == anchor).ok_or_else(|| {
            Error::corrupt(self.log.dir(), 0, format!("message record at sequence {anchor} is missing from the log"))
        })?;
        match QueueRecord::decode(&record.value) {
            Ok(QueueRecord::Message(m)) => Ok(m),
            Ok(_) => Err(Error::corrupt(self.log.dir(), 0, format!("record {anchor} is not a message"))),
            Err(e) => Err(Error::corrupt(self.log.dir(), 0, format!("message record {anchor}: {e}"))),
        }
    }

    // ----- send -----

    /// Sends a batch (1 to 10 entries); per-entry results, the outer error for storage failures.
    pub fn send(&self, cell: &QueueCell, entries: &[SendEntry]) -> Result<Vec<Result<SendResult>>> {
        let (results, wait_for) = self.send_unsynced(cell, entries)?;
        self.log.wait_durable(wait_for)?;
        Ok(results)
    }

    /// [`QueueStore::send`] up to its wait for durability: the answers, and one past the last
    /// record they depend on (0: none), for the caller to wait for before handing them out.
    pub fn send_unsynced(&self, cell: &QueueCell, entries: &[SendEntry]) -> Result<(Vec<Result<SendResult>>, u64)> {
        check_batch_len(entries.len())?;
        // Ids hash a counter (SHA-256): made before the lock, which every other sender waits on.
        let mut ids = entries.iter().map(|_| self.new_message_id()).collect::<Vec<_>>().into_iter();
        let mut st = self.lock_live(cell)?;
        // Read under the lock: times then follow the order in which operations see the index.
        let now = self.clock.now_ms();
        let config = st.config.clone();
        let limit = config.max_message_bytes.max(MAX_BATCH_BYTES);
        if entries.len() > 1 {
            let total: usize = entries.iter().map(|e| e.body.len() + attributes::size(&e.options.attributes)).sum();
            if total > limit {
                return Err(Error::TooLarge { what: "batch (all entries together)", size: total, limit });
            }
        }
        let mut results: Vec<Option<Result<SendResult>>> = Vec::with_capacity(entries.len());
        let mut records = Vec::new();
        let mut written = Vec::new(); // (entry index, dedup digest)
        let mut batch_dedup: HashMap<[u8; 16], usize> = HashMap::new();
        let mut wait_for = 0u64;
        for (i, entry) in entries.iter().enumerate() {
            let checked = check_send(&config, entry);
            if let Err(e) = checked {
                results.push(Some(Err(e)));
                continue;
            }
            let dedup = dedup_id(&config, entry);
            if let Some(d) = &dedup {
                let group = entry.options.group.as_deref().unwrap_or_default().as_bytes();
                let key = scoped_digest(config.dedup_scope, group, d);
                if let Some(first) = st.dedup.lookup(&key, now) {
                    wait_for = wait_for.max(first.key + 1);
                    results.push(Some(Ok(send_result(&config, &first.message_id, first.key, true))));
                    continue;
                }
                if batch_dedup.contains_key(&key) {
                    results.push(None); // duplicate of an earlier entry of this batch
                    written.push((i, Some(key)));
                    continue;
                }
                batch_dedup.insert(key, i);
            }
            let delay = entry.options.delay.unwrap_or(config.delay);
            let message = MessageRecord {
                queue: cell.id,
                key: OWN_SEQ,
                message_id: ids.next().unwrap_or_else(|| self.new_message_id()),
                sent_ms: now,
                visible_at_ms: now + delay.as_millis() as u64,
                first_receive_ms: 0,
                receive_count: 0,
                origin_queue: 0,
                group: entry.options.group.as_ref().map(|g| Bytes::copy_from_slice(g.as_bytes())).unwrap_or_default(),
                dedup: dedup.map(Bytes::from).unwrap_or_default(),
                trace_header: optional_bytes(&entry.options.trace_header),
                sender_id: optional_bytes(&entry.options.sender_id),
                attributes: to_stored(&entry.options.attributes),
                body: entry.body.clone(),
            };
            let scoped =
                (!message.dedup.is_empty()).then(|| scoped_digest(config.dedup_scope, &message.group, &message.dedup));
            written.push((i, scoped));
            records.push(QueueRecord::Message(message));
            results.push(None);
        }
        if !records.is_empty() {
            let outcome = self.write(&records, now)?;
            let mut seq = outcome.base_seq;
            let mut first_of: HashMap<[u8; 16], (u64, [u8; 16])> = HashMap::new();
            let mut record_iter = records.iter();
            for &(i, dedup_key) in &written {
                if results[i].is_some() {
                    continue;
                }
                if let Some(key) = dedup_key {
                    if let Some(&(k, id)) = first_of.get(&key) {
                        results[i] = Some(Ok(send_result(&config, &id, k, true)));
                        continue;
                    }
                }
                let Some(QueueRecord::Message(m)) = record_iter.next() else { continue };
                st.insert(seq, seq, &m.message_id, m.sent_ms, m.visible_at_ms, &m.group, now);
                if let Some(key) = dedup_key {
                    let expires_ms = now + DEDUP_WINDOW.as_millis() as u64;
                    st.dedup.remember(key, FirstSend { message_id: m.message_id, key: seq, expires_ms });
                    first_of.insert(key, (seq, m.message_id));
                }
                results[i] = Some(Ok(send_result(&config, &m.message_id, seq, false)));
                seq += 1;
            }
            debug_assert_eq!(seq, outcome.next_seq, "every written message was indexed");
            wait_for = wait_for.max(outcome.next_seq);
        }
        let wake = !records.is_empty() && cell.claim_wake();
        drop(st);
        if wake {
            cell.wake.notify_one();
        }
        if !records.is_empty() {
            cell.changed.notify();
        }
        let results = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::InvalidArgument("entry not processed".into()))))
            .collect();
        Ok((results, wait_for))
    }

    fn lock_live<'a>(&self, cell: &'a QueueCell) -> Result<MutexGuard<'a, QueueState>> {
        let st = cell.state.lock();
        if cell.deleted.load(Ordering::SeqCst) {
            return Err(Error::NotFound { kind: "queue", name: cell.name.clone() });
        }
        Ok(st)
    }

    /// Writes publishes of one topic, each with its deliveries, as one frame: a publish and
    /// every queue's copy of it are durable together or not at all. `dedup` (FIFO topics) gives
    /// each publish's deduplication digest; a duplicate within the window writes nothing.
    pub fn publish(&self, topic: u32, items: Vec<(PublishWrite, Option<[u8; 16]>)>) -> Result<Vec<PublishOutcome>> {
        let now = self.clock.now_ms();
        let mut windows = self.topic_dedup.lock();
        let mut cells: Vec<Arc<QueueCell>> =
            items.iter().flat_map(|(w, _)| w.deliveries.iter().map(|(c, _)| Arc::clone(c))).collect();
        cells.sort_by_key(|c| c.id);
        cells.dedup_by_key(|c| c.id);
        let mut guards: Vec<MutexGuard<'_, QueueState>> = cells.iter().map(|c| c.state.lock()).collect();
        let slot = |id: u32| cells.iter().position(|c| c.id == id);
        let mut outcomes: Vec<Option<PublishOutcome>> = Vec::with_capacity(items.len());
        let mut records = Vec::new();
        let mut plan = Vec::new(); // per written publish: (item index, [(slot, record index)])
        let mut batch_seen: HashMap<[u8; 16], usize> = HashMap::new();
        let mut wait_for = 0;
        for (i, (write, dedup)) in items.into_iter().enumerate() {
            if let Some(d) = dedup {
                let first = windows.get_mut(&topic).and_then(|w| w.lookup(&d, now));
                if let Some(first) = first {
                    wait_for = wait_for.max(first.key + 1);
                    let o =
                        PublishOutcome { message_id: first.message_id, seq: first.key, duplicate: true, delivered: 0 };
                    outcomes.push(Some(o));
                    continue;
                }
                if let Some(&earlier) = batch_seen.get(&d) {
                    outcomes.push(None);
                    plan.push((i, Some(earlier), Vec::new(), d));
                    continue;
                }
                batch_seen.insert(d, i);
            }
            let message_id = write.record.message_id;
            records.push(QueueRecord::Publish(write.record));
            let mut targets = Vec::new();
            for (cell, message) in write.deliveries {
                let Some(s) = slot(cell.id) else { continue };
                if cell.deleted.load(Ordering::SeqCst) {
                    continue;
                }
                // A FIFO queue's own window also applies to what a topic delivers into it.
                let queue_dup = !message.dedup.is_empty() && guards[s].config.fifo && {
                    let scope = guards[s].config.dedup_scope;
                    guards[s].dedup.lookup(&scoped_digest(scope, &message.group, &message.dedup), now).is_some()
                };
                if queue_dup {
                    continue;
                }
                targets.push((s, records.len()));
                records.push(QueueRecord::Message(message));
            }
            outcomes.push(Some(PublishOutcome { message_id, seq: 0, duplicate: false, delivered: targets.len() }));
            plan.push((i, None, targets, dedup.unwrap_or_default()));
        }
        if !records.is_empty() {
            // Refused whole (before the index or a window changes) if the publishes and their
            // copies would not fit one frame: a publish and its deliveries are atomic.
            let outcome = self.write_as(&records, now, "publish batch with a copy for every subscribed queue")?;
            let mut publish_seq: HashMap<usize, u64> = HashMap::new();
            let mut seq = outcome.base_seq;
            for (i, earlier, targets, d) in plan {
                if let Some(earlier) = earlier {
                    let first = outcomes[earlier].map(|o| PublishOutcome { duplicate: true, delivered: 0, ..o });
                    outcomes[i] = first;
                    continue;
                }
                let publish_at = seq;
                publish_seq.insert(i, publish_at);
                seq += 1;
                for (s, r) in &targets {
                    let key = outcome.base_seq + *r as u64;
                    if let Some(QueueRecord::Message(m)) = records.get(*r) {
                        guards[*s].insert(key, key, &m.message_id, m.sent_ms, m.visible_at_ms, &m.group, now);
                        if guards[*s].config.fifo && !m.dedup.is_empty() {
                            let expires_ms = now + DEDUP_WINDOW.as_millis() as u64;
                            let scoped = scoped_digest(guards[*s].config.dedup_scope, &m.group, &m.dedup);
                            guards[*s].dedup.remember(scoped, FirstSend { message_id: m.message_id, key, expires_ms });
                        }
                    }
                    seq += 1;
                }
                if let Some(Some(o)) = outcomes.get_mut(i) {
                    o.seq = publish_at;
                    if d != [0u8; 16] {
                        if let Some(w) = windows.get_mut(&topic) {
                            let expires_ms = now + DEDUP_WINDOW.as_millis() as u64;
                            w.remember(d, FirstSend { message_id: o.message_id, key: publish_at, expires_ms });
                        }
                    }
                }
            }
            debug_assert_eq!(seq, outcome.next_seq, "every record of the frame was accounted for");
            wait_for = wait_for.max(outcome.next_seq);
        }
        drop(guards);
        drop(windows);
        for cell in &cells {
            cell.wake_everyone();
        }
        self.log.wait_durable(wait_for)?;
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Calls `f` with each publish record of `topic` appended at or after `from_ms` and below
    /// `before_seq`, in order (for subscriptions created with a replay start). The log is read
    /// in chunks: memory does not grow with the number of publishes.
    pub fn for_each_publish(
        &self,
        topic: u32,
        from_ms: u64,
        before_seq: u64,
        f: &mut dyn FnMut(PublishRecord) -> Result<()>,
    ) -> Result<()> {
        self.log.for_each_from(self.log.seq_at_time(from_ms)?, |r| {
            if r.seq >= before_seq {
                return Ok(());
            }
            match QueueRecord::decode(&r.value) {
                Ok(QueueRecord::Publish(p)) if p.topic == topic => f(p),
                _ => Ok(()),
            }
        })
    }

    // ----- receive -----

    /// Receives messages, long-polling up to the wait.
    pub fn receive(&self, cell: &QueueCell, options: &ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let (max, wait, attempt) = self.receive_arguments(cell, options)?;
        if let Some(id) = attempt {
            if let Some((again, upto)) = self.retry_attempt(cell, id, options.visibility_timeout)? {
                self.log.wait_durable(upto)?;
                return Ok(again);
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let (delivered, moved, upto) = self.receive_once(cell, max, options.visibility_timeout, attempt)?;
            self.log.wait_durable(upto)?;
            if !delivered.is_empty() {
                return Ok(delivered);
            }
            if moved {
                continue; // everything taken went to the dead-letter queue; look again
            }
            let mut st = self.lock_live(cell)?;
            let now_real = Instant::now();
            if now_real >= deadline {
                return Ok(Vec::new());
            }
            let now = self.clock.now_ms();
            st.pump(now);
            if st.has_visible(now) {
                continue;
            }
            let mut nap = deadline - now_real;
            if let Some(at) = st.next_timer_ms() {
                nap = nap.min(Duration::from_millis(at.saturating_sub(now).max(1)));
            }
            cell.waiting.fetch_add(1, Ordering::Relaxed);
            cell.wake.wait_for(&mut st, nap);
            cell.waiting.fetch_sub(1, Ordering::Relaxed);
            cell.wake_pending.store(false, Ordering::Relaxed);
        }
    }

    /// One try of [`QueueStore::receive`] that waits for no message (`options.wait` is
    /// checked, then ignored) and stops before its wait for durability: the messages, and one
    /// past the last record they depend on (see [`QueueStore::send_unsynced`]).
    pub fn receive_unsynced(&self, cell: &QueueCell, options: &ReceiveOptions) -> Result<(Vec<ReceivedMessage>, u64)> {
        let (max, _, attempt) = self.receive_arguments(cell, options)?;
        if let Some(id) = attempt {
            if let Some(again) = self.retry_attempt(cell, id, options.visibility_timeout)? {
                return Ok(again);
            }
        }
        let mut upto = 0;
        loop {
            let (delivered, moved, last) = self.receive_once(cell, max, options.visibility_timeout, attempt)?;
            upto = upto.max(last);
            // Everything taken went to the dead-letter queue: look again, as `receive` does.
            if !delivered.is_empty() || !moved {
                return Ok((delivered, upto));
            }
        }
    }

    /// A receive's checked arguments: how many messages at most, how long to wait for them,
    /// and the attempt id that counts (FIFO queues only; standard queues ignore them, as SQS).
    fn receive_arguments<'o>(
        &self,
        cell: &QueueCell,
        options: &'o ReceiveOptions,
    ) -> Result<(usize, Duration, Option<&'o str>)> {
        let max = options.max.max(1);
        if max > MAX_RECEIVE {
            return Err(Error::InvalidArgument(format!("a receive returns 1 to {MAX_RECEIVE} messages, not {max}")));
        }
        if let Some(v) = options.visibility_timeout {
            check_range("visibility timeout", v, Duration::ZERO, MAX_VISIBILITY_TIMEOUT)?;
        }
        if let Some(id) = &options.attempt_id {
            validate_attempt_id(id)?;
        }
        let (queue_wait, fifo) = {
            let st = cell.state.lock();
            (st.config.receive_wait, st.config.fifo)
        };
        let wait = match options.wait {
            Some(w) => {
                check_range("receive wait time", w, Duration::ZERO, MAX_RECEIVE_WAIT)?;
                w
            }
            None => queue_wait,
        };
        Ok((max, wait, options.attempt_id.as_deref().filter(|_| fifo)))
    }

    /// A receive repeated with a remembered attempt id: the same messages with the same
    /// receipt handles, their visibility timeout started again, if each is still in flight from
    /// that receive and untouched since (not deleted, received again or its visibility
    /// changed). `None`: receive anew (the attempt is forgotten).
    fn retry_attempt(
        &self,
        cell: &QueueCell,
        id: &str,
        visibility: Option<Duration>,
    ) -> Result<Option<(Vec<ReceivedMessage>, u64)>> {
        let mut st = self.lock_live(cell)?;
        let now = self.clock.now_ms();
        let Some(taken) = st.attempts.get(id, now) else { return Ok(None) };
        let untouched = !taken.is_empty()
            && taken.iter().all(|e| {
                st.get(e.key).is_some_and(|m| {
                    m.in_flight()
                        && m.receive_count == e.receive_count
                        && m.visible_at_ms == e.visible_at_ms
                        && m.visible_at_ms > now
                })
            });
        if !untouched {
            st.attempts.forget(id);
            return Ok(None);
        }
        let visible_at = now.saturating_add(visibility.unwrap_or(st.config.visibility_timeout).as_millis() as u64);
        let records: Vec<QueueRecord> = taken
            .iter()
            .map(|e| QueueRecord::ChangeVisibility {
                queue: cell.id,
                key: e.key,
                receive_count: e.receive_count,
                visible_at_ms: visible_at,
            })
            .collect();
        let outcome = self.write(&records, now)?;
        let mut again = Vec::with_capacity(taken.len());
        for e in &taken {
            st.change_visibility(e.key, visible_at, now);
            let Some(msg) = st.get(e.key).copied() else { continue };
            again.push((e.key, msg, self.read_message(msg.anchor)?));
        }
        st.attempts.set_visible_at(id, visible_at);
        drop(st);
        if visible_at <= now {
            cell.wake_everyone();
        }
        let out = again
            .into_iter()
            .map(|(key, msg, m)| {
                let source = self.dead_letter_source(m.origin_queue);
                received(&self.receipt_key, cell.id, key, &msg, m, true, source)
            })
            .collect();
        Ok(Some((out, outcome.next_seq)))
    }

    fn receive_once(
        &self,
        cell: &QueueCell,
        max: usize,
        visibility: Option<Duration>,
        attempt: Option<&str>,
    ) -> Result<(Vec<ReceivedMessage>, bool, u64)> {
        let redrive = cell.state.lock().config.redrive.clone();
        let dlq = redrive.as_ref().and_then(|r| self.cell(&r.dead_letter_queue)).filter(|d| d.id != cell.id);
        self.pauses.at(Pause::ReceiveLocks);
        let mut guards = lock_in_order(cell, dlq.as_deref());
        if cell.deleted.load(Ordering::SeqCst) {
            return Err(Error::NotFound { kind: "queue", name: cell.name.clone() });
        }
        let (st, mut dlq_st) = split_guards(&mut guards, cell.id);
        // Deleted since it was looked up (the flag is set before the deletion takes the
        // queue's lock): nothing may move into it, or it would vanish with the queue.
        if dlq.as_ref().is_some_and(|d| d.deleted.load(Ordering::SeqCst)) {
            dlq_st = None;
        }
        let now = self.clock.now_ms();
        let visibility_ms = visibility.unwrap_or(st.config.visibility_timeout).as_millis() as u64;
        let max_receives = dlq_st.as_ref().and(redrive.as_ref()).map(|r| r.max_receives);
        let selection = st.select(now, max, visibility_ms, max_receives);
        if selection.delivered.is_empty() && selection.to_dead_letter.is_empty() {
            return Ok((Vec::new(), false, 0));
        }
        let mut records = receive_records(cell.id, &selection.delivered, now);
        let mut last = 0u64;
        if !records.is_empty() {
            last = self.write(&records, now)?.next_seq;
        }
        // Each move is its own frame: the delete here and the message there, atomically.
        for taken in &selection.to_dead_letter {
            let (Some(dlq_cell), Some(dlq_state)) = (dlq.as_ref(), dlq_st.as_mut()) else { break };
            let mut m = self.read_message(taken.msg.anchor)?;
            arriving(&mut m, dlq_cell.id, cell.id, now);
            let (sent_ms, group, message_id) = (m.sent_ms, m.group.clone(), m.message_id);
            records = vec![QueueRecord::Delete { queue: cell.id, key: taken.key }, QueueRecord::Message(m)];
            let outcome = self.write(&records, now)?;
            let key = outcome.base_seq + 1;
            dlq_state.insert(key, key, &message_id, sent_ms, now, &group, now);
            last = outcome.next_seq;
        }
        let fifo = st.config.fifo;
        if let (Some(id), false) = (attempt, selection.delivered.is_empty()) {
            let taken = selection
                .delivered
                .iter()
                .map(|t| AttemptEntry {
                    key: t.key,
                    receive_count: t.msg.receive_count,
                    visible_at_ms: t.msg.visible_at_ms,
                })
                .collect();
            st.attempts.remember(id, now, taken);
        }
        // Read under the lock (compaction may move a message and drop its old segment once the
        // lock is free); sign handles and format ids after it.
        let mut taken = Vec::with_capacity(selection.delivered.len());
        for t in &selection.delivered {
            taken.push((t, self.read_message(t.msg.anchor)?));
        }
        let wake_next = st.has_visible(now) && cell.claim_wake();
        drop(guards);
        if wake_next {
            cell.wake.notify_one();
        }
        if let (Some(d), false) = (&dlq, selection.to_dead_letter.is_empty()) {
            d.wake_everyone();
        }
        let out = self.received_all(cell.id, fifo, taken);
        Ok((out, !selection.to_dead_letter.is_empty(), last))
    }

    // ----- delete / change visibility -----

    /// Checks a handle's MAC and queue: no index needed, so callers do it before taking the
    /// queue's lock (a delete batch checks ten MACs).
    fn verify_receipt(&self, cell: &QueueCell, handle: &str) -> Result<Receipt> {
        let r = Receipt::decode(handle, &self.receipt_key)?;
        if r.queue != cell.id {
            return Err(Error::InvalidReceiptHandle(format!("it belongs to another queue, not to {:?}", cell.name)));
        }
        Ok(r)
    }

    /// Checks that a verified handle names the current receive of a live message.
    fn check_current(st: &QueueState, r: Receipt) -> Result<(Receipt, Msg)> {
        let msg =
            st.get(r.key).copied().filter(|m| r.names(m.sent_ms, m.id_tag())).ok_or_else(|| {
                Error::InvalidReceiptHandle("its message is gone (deleted, purged or expired)".into())
            })?;
        if msg.receive_count != r.receive_count {
            return Err(Error::InvalidReceiptHandle(
                "it is stale: the message was received again after this handle was issued".into(),
            ));
        }
        Ok((r, msg))
    }

    /// Deletes by receipt handle; per-entry results.
    pub fn delete(&self, cell: &QueueCell, handles: &[&str]) -> Result<Vec<Result<()>>> {
        let (results, wait_for) = self.delete_unsynced(cell, handles)?;
        self.log.wait_durable(wait_for)?;
        Ok(results)
    }

    /// [`QueueStore::delete`] up to its wait for durability (see [`QueueStore::send_unsynced`]).
    pub fn delete_unsynced(&self, cell: &QueueCell, handles: &[&str]) -> Result<(Vec<Result<()>>, u64)> {
        check_batch_len(handles.len())?;
        let verified: Vec<Result<Receipt>> = handles.iter().map(|h| self.verify_receipt(cell, h)).collect();
        let mut st = self.lock_live(cell)?;
        let now = self.clock.now_ms();
        let mut results = Vec::with_capacity(handles.len());
        let mut keys = Vec::new();
        for receipt in verified {
            match receipt.and_then(|r| Self::check_current(&st, r)) {
                Ok((r, _)) if keys.contains(&r.key) => results.push(Ok(())),
                Ok((r, _)) => {
                    keys.push(r.key);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if keys.is_empty() {
            return Ok((results, 0));
        }
        let records: Vec<QueueRecord> = keys.iter().map(|&key| QueueRecord::Delete { queue: cell.id, key }).collect();
        let outcome = self.write(&records, now)?;
        for key in keys {
            st.remove(key);
        }
        // A FIFO group may have unblocked.
        let fifo = st.config.fifo;
        let wake = fifo && st.has_visible(now) && cell.claim_wake();
        drop(st);
        if wake {
            cell.wake.notify_one();
        }
        if fifo {
            cell.changed.notify();
        }
        Ok((results, outcome.next_seq))
    }

    /// Changes visibility by receipt handle; per-entry results.
    pub fn change_visibility(&self, cell: &QueueCell, entries: &[(&str, Duration)]) -> Result<Vec<Result<()>>> {
        check_batch_len(entries.len())?;
        let verified: Vec<Result<Receipt>> = entries
            .iter()
            .map(|(handle, timeout)| {
                check_range("visibility timeout", *timeout, Duration::ZERO, MAX_VISIBILITY_TIMEOUT)
                    .and_then(|()| self.verify_receipt(cell, handle))
            })
            .collect();
        let mut st = self.lock_live(cell)?;
        let now = self.clock.now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut changes = Vec::new();
        for ((_, timeout), receipt) in entries.iter().zip(verified) {
            match receipt.and_then(|r| Self::check_current(&st, r)) {
                Ok((_, msg)) if !msg.in_flight() || msg.visible_at_ms <= now => {
                    results.push(Err(Error::MessageNotInflight(
                        "the visibility timeout of the message this receipt handle names already ran out".into(),
                    )))
                }
                Ok((r, _)) => {
                    // Applied at once, so a later entry naming the same message is judged
                    // against this one's effect, as replay will judge it.
                    let at = now + timeout.as_millis() as u64;
                    st.change_visibility(r.key, at, now);
                    changes.push((r, at));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if changes.is_empty() {
            return Ok(results);
        }
        let records: Vec<QueueRecord> = changes
            .iter()
            .map(|(r, at)| QueueRecord::ChangeVisibility {
                queue: cell.id,
                key: r.key,
                receive_count: r.receive_count,
                visible_at_ms: *at,
            })
            .collect();
        let outcome = self.write(&records, now)?;

        drop(st);
        cell.wake.notify_all();
        if changes.iter().any(|(_, at)| *at <= now) {
            cell.changed.notify();
        }
        self.log.wait_durable(outcome.next_seq)?;
        Ok(results)
    }

    /// Deletes every message of the queue.
    pub fn purge(&self, cell: &QueueCell) -> Result<()> {
        let mut st = self.lock_live(cell)?;
        let now = self.clock.now_ms();
        // One purge a minute, as SQS. A clock that stepped back before the last purge does not
        // block purges until it catches up.
        if let Some(last) = st.last_purge_ms {
            let allowed_at = last.saturating_add(PURGE_INTERVAL_MS);
            if (last..allowed_at).contains(&now) {
                return Err(Error::PurgeInProgress { queue: cell.name.clone(), retry_after_ms: allowed_at - now });
            }
        }
        // Holding the queue's lock, no send to it can be between this bound and the record.
        let before_key = self.log.written_next();
        let outcome = self.write(&[QueueRecord::Purge { queue: cell.id, before_key }], now)?;
        st.purge(before_key);
        // The time replay will see: the record's.
        st.last_purge_ms = Some(outcome.time_ms);
        drop(st);
        cell.changed.notify();
        self.log.wait_durable(outcome.next_seq)
    }

    /// When the next delayed or in-flight message becomes visible by the engine clock: now if
    /// one may be visible already, `None` if no message is waiting for a time (or the queue is
    /// gone). A long poll sleeps until then, its deadline, or a [`ChangeSignal`] change.
    pub fn next_visible_at_ms(&self, cell: &QueueCell) -> Option<u64> {
        let mut st = self.lock_live(cell).ok()?;
        let now = self.clock.now_ms();
        st.pump(now);
        if st.has_visible(now) {
            return Some(now);
        }
        st.next_timer_ms().map(|at| at.max(now))
    }

    /// The queue's configuration, without counting its messages.
    pub fn config(&self, cell: &QueueCell) -> QueueConfig {
        cell.state.lock().config.clone()
    }

    /// Attributes and approximate counts.
    pub fn attributes(&self, cell: &QueueCell) -> QueueAttributes {
        let now = self.clock.now_ms();
        let mut st = cell.state.lock();
        st.pump(now);
        let c = st.counts(now);
        let cfg = &st.config;
        QueueAttributes {
            name: cell.name.clone(),
            fifo: cfg.fifo,
            content_based_dedup: cfg.content_based_dedup,
            visibility_timeout_s: cfg.visibility_timeout.as_secs(),
            delay_s: cfg.delay.as_secs(),
            retention_s: cfg.retention.as_secs(),
            max_message_bytes: cfg.max_message_bytes,
            receive_wait_s: cfg.receive_wait.as_secs(),
            dead_letter_queue: cfg.redrive.as_ref().map(|r| r.dead_letter_queue.clone()),
            max_receives: cfg.redrive.as_ref().map(|r| r.max_receives),
            dedup_scope: cfg.dedup_scope,
            fifo_throughput_limit: cfg.fifo_throughput_limit,
            redrive_allow: cfg.redrive_allow.clone(),
            policy: cfg.policy.clone(),
            kms_master_key_id: cfg.kms_master_key_id.clone(),
            kms_data_key_reuse_period_s: cfg.kms_data_key_reuse_period.as_secs(),
            sqs_managed_sse: cfg.sqs_managed_sse,
            broker: cfg.broker.clone(),
            created_ms: cell.created_ms,
            last_modified_ms: cell.modified_ms.load(Ordering::SeqCst),
            approximate_visible: c.visible,
            approximate_in_flight: c.in_flight,
            approximate_delayed: c.delayed,
            oldest_message_age_s: c.oldest_sent_ms.map_or(0, |t| now.saturating_sub(t) / 1000),
        }
    }

    /// Up to `limit` live messages in send order, without receiving them: only messages whose
    /// send was acknowledged (a send whose fsync has not returned, or failed, is not there).
    pub fn peek(&self, cell: &QueueCell, limit: usize) -> Result<Vec<PeekedMessage>> {
        let now = self.clock.now_ms();
        // A key is the sequence number of the message's first record: below this, its send
        // is durable as the log's mode promises.
        let acknowledged = self.log.next_seq();
        let st = self.lock_live(cell)?;
        // The index iterates in key (send) order: take the first `limit`, copy nothing else.
        let live: Vec<Msg> = st
            .iter()
            .filter(|(key, m)| *key < acknowledged && !st.expired(m, now))
            .map(|(_, m)| *m)
            .take(limit)
            .collect();
        let mut out = Vec::with_capacity(live.len());
        for msg in live {
            let m = self.read_message(msg.anchor)?;
            let state = if msg.in_flight() && msg.visible_at_ms > now {
                "in_flight"
            } else if msg.visible_at_ms > now {
                "delayed"
            } else {
                "visible"
            };
            out.push(PeekedMessage {
                message_id: format_id(&m.message_id),
                body: m.body,
                state,
                receive_count: msg.receive_count,
                sent_ms: msg.sent_ms,
                group: (!m.group.is_empty()).then(|| String::from_utf8_lossy(&m.group).into_owned()),
            });
        }
        Ok(out)
    }

    /// Moves the messages of a dead-letter queue back to the queues they came from (or all to
    /// `to`). In-flight messages stay.
    ///
    /// Each body is read under the dead-letter queue's lock, at the message's current anchor:
    /// compaction moves records (and then deletes their old segment) only under that lock. The
    /// moves written are awaited before returning, also when a later one fails.
    pub fn redrive(&self, dlq: &QueueCell, to: Option<&Arc<QueueCell>>) -> Result<RedriveResult> {
        let now = self.clock.now_ms();
        let mut result = RedriveResult { moved: 0, skipped: 0 };
        let by_id: HashMap<u32, Arc<QueueCell>> = self.queues.read().values().map(|c| (c.id, Arc::clone(c))).collect();
        let candidates: Vec<u64> = {
            let mut st = self.lock_live(dlq)?;
            st.pump(now);
            let mut keys: Vec<u64> = st.iter().map(|(k, _)| k).collect();
            keys.sort_unstable();
            keys
        };
        let mut last = 0;
        let moves = || -> Result<()> {
            for key in candidates {
                self.pauses.at(Pause::RedriveRead);
                // The record, read at the anchor the message has under the lock.
                let (anchor, record) = {
                    let mut st = self.lock_live(dlq)?;
                    st.pump(now);
                    let Some(msg) = st.get(key).copied() else { continue };
                    if msg.in_flight() && msg.visible_at_ms > now {
                        result.skipped += 1;
                        continue;
                    }
                    (msg.anchor, self.read_message(msg.anchor)?)
                };
                let target = match to {
                    Some(t) => Some(Arc::clone(t)),
                    None => by_id.get(&record.origin_queue).cloned(),
                };
                let Some(target) = target.filter(|t| t.id != dlq.id) else {
                    result.skipped += 1;
                    continue;
                };
                let mut guards = lock_in_order(dlq, Some(&target));
                let (dlq_st, target_st) = split_guards(&mut guards, dlq.id);
                let Some(target_st) = target_st else { continue };
                if target.deleted.load(Ordering::SeqCst) {
                    result.skipped += 1;
                    continue;
                }
                dlq_st.pump(now);
                let Some(current) = dlq_st.get(key).copied() else { continue }; // deleted meanwhile
                if current.in_flight() && current.visible_at_ms > now {
                    result.skipped += 1; // received meanwhile
                    continue;
                }
                if dlq_st.expired(&current, now) {
                    dlq_st.remove(key); // past retention: gone, not redriven
                    continue;
                }
                // Compaction may have moved it between the two locks: same message, new place.
                let mut m = if current.anchor == anchor { record } else { self.read_message(current.anchor)? };
                m.queue = target.id;
                m.key = OWN_SEQ;
                m.visible_at_ms = now;
                m.receive_count = 0;
                m.first_receive_ms = 0;
                m.origin_queue = 0;
                let (sent_ms, group, message_id) = (m.sent_ms, m.group.clone(), m.message_id);
                let outcome =
                    self.write(&[QueueRecord::Delete { queue: dlq.id, key }, QueueRecord::Message(m)], now)?;
                dlq_st.remove(key);
                let new_key = outcome.base_seq + 1;
                target_st.insert(new_key, new_key, &message_id, sent_ms, now, &group, now);
                drop(guards);
                target.wake_everyone();
                result.moved += 1;
                last = outcome.next_seq;
            }
            Ok(())
        };
        let moved = moves();
        // What was moved is in the index already (and visible in its target): make it
        // durable whether or not a later move failed.
        let durable = self.log.wait_durable(last);
        moved?;
        durable?;
        Ok(result)
    }

    /// Maintenance: drops expired messages, moves messages that pin a mostly dead oldest
    /// segment forward, and deletes segments nothing live needs. Returns segments deleted.
    pub fn maintain(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let cells: Vec<Arc<QueueCell>> = self.queues.read().values().cloned().collect();
        for cell in &cells {
            let mut st = cell.state.lock();
            st.pump(now);
            st.drop_expired(now);
        }
        self.compact_oldest(&cells, now)?;
        // A snapshot that fails (a full disk) must not stop the retention that frees space:
        // its error is returned after it.
        let snapshotted = self.snapshot_if_due(SnapshotTrigger::Maintenance);
        let min_anchor =
            cells.iter().filter_map(|c| c.state.lock().iter().map(|(_, m)| m.anchor).min()).min().unwrap_or(u64::MAX);
        // Deduplication ids are rebuilt from the log on open: keep the records of the window.
        let dedup_floor = self.log.seq_at_time(now.saturating_sub(DEDUP_WINDOW.as_millis() as u64))?;
        // The snapshot an open would load replays the log from its position on.
        let snapshot_floor = self.snapshot.position.load(Ordering::SeqCst);
        let floor = min_anchor.min(dedup_floor).min(snapshot_floor).min(self.log.written_next());
        // Log::delete_below makes compaction's copies durable before the originals go.
        let deleted = self.log.delete_below(floor)?;
        snapshotted?;
        Ok(deleted)
    }

    /// If the oldest segment is less than half live, rewrites its live messages (with their
    /// current state) at the head of the log so the segment can go.
    fn compact_oldest(&self, cells: &[Arc<QueueCell>], now: u64) -> Result<()> {
        let segments = self.log.segment_infos();
        if segments.len() < 3 {
            return Ok(());
        }
        let oldest = &segments[0];
        let (lo, hi) = (oldest.base_seq, oldest.next_seq);
        let live: usize =
            cells.iter().map(|c| c.state.lock().iter().filter(|(_, m)| (lo..hi).contains(&m.anchor)).count()).sum();
        if live == 0 || live as u64 * 2 >= hi.saturating_sub(lo) {
            return Ok(());
        }
        let mut last = 0;
        for cell in cells {
            let mut st = cell.state.lock();
            let mut pinned: Vec<(u64, Msg)> =
                st.iter().filter(|(_, m)| (lo..hi).contains(&m.anchor)).map(|(k, m)| (k, *m)).collect();
            pinned.sort_unstable_by_key(|(k, _)| *k);
            // A frame is written before the record that would take it past MOVE_FRAME_BYTES
            // (counted encoded: attributes can outweigh a body), so each is at most that or
            // one message, which was read from a frame of the limit.
            let mut keys = Vec::new();
            let mut values: Vec<Vec<u8>> = Vec::new();
            let mut bytes = 0;
            for (i, (key, msg)) in pinned.iter().enumerate() {
                let mut m = self.read_message(msg.anchor)?;
                m.key = *key;
                m.visible_at_ms = msg.visible_at_ms;
                m.receive_count = msg.receive_count;
                m.first_receive_ms = msg.first_receive_ms();
                let value = QueueRecord::Message(m).encode();
                let size = record_payload_len(0, value.len());
                if !values.is_empty() && (values.len() == 64 || bytes + size > MOVE_FRAME_BYTES) {
                    last = self.move_forward(&mut st, &keys, &values, now)?;
                    keys.clear();
                    values.clear();
                    bytes = 0;
                }
                keys.push(*key);
                values.push(value);
                bytes += size;
                if i + 1 == pinned.len() {
                    last = self.move_forward(&mut st, &keys, &values, now)?;
                }
            }
        }
        self.log.wait_durable(last)
    }

    /// Writes compaction's copies of the messages `keys` (encoded as `values`) as one frame
    /// and points each message's anchor at its copy; returns one past the frame.
    fn move_forward(&self, st: &mut QueueState, keys: &[u64], values: &[Vec<u8>], now: u64) -> Result<u64> {
        let outcome = self.write_encoded(values, now, "compaction frame")?;
        for (i, key) in keys.iter().enumerate() {
            st.set_anchor(*key, outcome.base_seq + i as u64);
        }
        Ok(outcome.next_seq)
    }

    /// Syncs the message log.
    pub fn flush(&self) -> Result<()> {
        self.log.flush()
    }
}

/// Rebuilds every known queue's messages from the log from `from` on (ready structures come
/// after), applying only what `cuts` (a loaded snapshot's) do not reflect yet. Returns the
/// records read.
fn replay(
    log: &Log,
    from: u64,
    cuts: &snapshot::Cuts,
    states: &mut HashMap<u32, QueueState>,
    topic_dedup: &mut HashMap<u32, DedupWindow>,
    now: u64,
) -> Result<u64> {
    let mut read = 0u64;
    log.for_each_from(from, |r| {
        read += 1;
        let record = QueueRecord::decode(&r.value)
            .map_err(|e| Error::corrupt(log.dir(), 0, format!("message-log record {} does not decode: {e}", r.seq)))?;
        if let QueueRecord::Publish(p) = &record {
            let expires_ms = p.sent_ms.saturating_add(DEDUP_WINDOW.as_millis() as u64);
            let fresh = !p.dedup.is_empty() && expires_ms > now && cuts.topic_applies(p.topic, r.seq);
            if let (Some(w), true) = (topic_dedup.get_mut(&p.topic), fresh) {
                w.remember(digest(&p.dedup), FirstSend { message_id: p.message_id, key: r.seq, expires_ms });
            }
            return Ok(());
        }
        let queue = record.queue();
        let Some(st) = states.get_mut(&queue) else { return Ok(()) };
        let meta = cuts.meta_applies(queue, r.seq);
        match record {
            QueueRecord::Message(m) => {
                if m.key != OWN_SEQ && m.key >= r.seq {
                    // A moved message keeps the sequence number of its first record: an earlier one.
                    let reason =
                        format!("message-log record {} names message key {}, not an earlier one", r.seq, m.key);
                    return Err(Error::corrupt(log.dir(), 0, reason));
                }
                let key = if m.key == OWN_SEQ { r.seq } else { m.key };
                if st.config.fifo && meta {
                    let scope = st.config.dedup_scope;
                    remember_replayed_send(&mut st.dedup, scope, &m, r.seq, now);
                }
                if cuts.key_applies(queue, key, r.seq) {
                    st.replay_message(
                        key,
                        r.seq,
                        &m.message_id,
                        m.sent_ms,
                        m.visible_at_ms,
                        m.first_receive_ms,
                        m.receive_count,
                        &m.group,
                    );
                }
            }
            QueueRecord::Receive { key, receive_count, visible_at_ms, received_ms, .. } => {
                if cuts.key_applies(queue, key, r.seq) {
                    st.replay_visibility(key, receive_count, visible_at_ms, Some(received_ms))
                }
            }
            QueueRecord::ChangeVisibility { key, receive_count, visible_at_ms, .. } => {
                if cuts.key_applies(queue, key, r.seq) {
                    st.replay_visibility(key, receive_count, visible_at_ms, None)
                }
            }
            QueueRecord::Delete { key, .. } => {
                if cuts.key_applies(queue, key, r.seq) {
                    st.replay_remove(key)
                }
            }
            QueueRecord::Purge { before_key, .. } => {
                st.replay_purge(cuts.purge_bound(queue, r.seq, before_key));
                if meta {
                    st.last_purge_ms = Some(r.time_ms);
                }
            }
            QueueRecord::MoveProgress { task, moved, .. } => {
                if meta {
                    let count = st.move_progress.entry(task).or_default();
                    *count = (*count).max(moved);
                }
            }
            QueueRecord::Publish(_) => {}
        }
        Ok(())
    })?;
    Ok(read)
}

/// A FIFO queue's deduplication window under `scope`, from the log: every send of the last five
/// minutes, as a full replay keys it (segments younger than the window are never deleted, so
/// the sends are all there).
fn dedup_window_from_log(log: &Log, queue: u32, scope: DedupScope, now: u64) -> Result<DedupWindow> {
    let window_ms = DEDUP_WINDOW.as_millis() as u64;
    let from = log.seq_at_time(now.saturating_sub(window_ms))?;
    let mut window = DedupWindow::default();
    log.for_each_from(from, |r| {
        match QueueRecord::decode(&r.value) {
            Ok(QueueRecord::Message(m)) if m.queue == queue => {
                remember_replayed_send(&mut window, scope, &m, r.seq, now)
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(window)
}

/// Replay of a FIFO queue's Message record at `seq` into its deduplication window: a new
/// message (not a compaction copy) with a deduplication id sent within the window.
fn remember_replayed_send(window: &mut DedupWindow, scope: DedupScope, m: &MessageRecord, seq: u64, now: u64) {
    let expires_ms = m.sent_ms.saturating_add(DEDUP_WINDOW.as_millis() as u64);
    if m.key == OWN_SEQ && !m.dedup.is_empty() && expires_ms > now {
        let first = FirstSend { message_id: m.message_id, key: seq, expires_ms };
        window.remember(scoped_digest(scope, &m.group, &m.dedup), first);
    }
}

/// 16 bytes no earlier call returned, in this process or another: std's hash keys, seeded
/// from the operating system's random source per process and stepped by every `RandomState`.
fn fresh_entropy() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for half in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x7765_6972); // the keys, not this value, make the difference
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// SQS's batch calls take 1 to 10 entries.
pub fn check_batch_len(len: usize) -> Result<()> {
    if len == 0 || len > MAX_BATCH_ENTRIES {
        return Err(Error::InvalidArgument(format!("a batch holds 1 to {MAX_BATCH_ENTRIES} entries, not {len}")));
    }
    Ok(())
}

/// Validates one send entry against the queue; returns its size (body plus attributes).
fn check_send(config: &QueueConfig, entry: &SendEntry) -> Result<usize> {
    if entry.body.is_empty() {
        return Err(Error::InvalidArgument("a message body may not be empty".into()));
    }
    let size = entry.body.len() + attributes::validate(&entry.options.attributes)?;
    if size > config.max_message_bytes {
        return Err(Error::TooLarge { what: "message (body plus attributes)", size, limit: config.max_message_bytes });
    }
    let o = &entry.options;
    if let Some(t) = &o.trace_header {
        check_system_attribute("trace header", t, MAX_TRACE_HEADER_LEN)?;
    }
    if let Some(s) = &o.sender_id {
        check_system_attribute("sender id", s, MAX_SENDER_ID_LEN)?;
    }
    if config.fifo {
        if o.delay.is_some() {
            return Err(Error::InvalidArgument(
                "FIFO queues take no per-message delay; set the queue's delivery delay instead".into(),
            ));
        }
        let group =
            o.group.as_deref().ok_or_else(|| Error::InvalidArgument("a FIFO send needs a message group id".into()))?;
        check_id("message group id", group)?;
        match o.dedup_id.as_deref() {
            Some(d) => check_id("deduplication id", d)?,
            None if config.content_based_dedup => {}
            None => {
                return Err(Error::InvalidArgument(
                    "a FIFO send needs a deduplication id unless content-based deduplication is on".into(),
                ))
            }
        }
    } else {
        if o.group.is_some() || o.dedup_id.is_some() {
            return Err(Error::InvalidArgument("message group and deduplication ids are for FIFO queues only".into()));
        }
        if let Some(d) = o.delay {
            check_range("delivery delay", d, Duration::ZERO, MAX_DELAY)?;
        }
    }
    Ok(size)
}

/// Group and deduplication ids: 1 to 128 printable ASCII characters, as SQS.
fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!(
            "{what} must be 1 to {MAX_ID_LEN} printable ASCII characters (no spaces)"
        )));
    }
    Ok(())
}

/// System attributes given by the sender: 1 to `max` printable ASCII characters (spaces
/// allowed inside).
fn check_system_attribute(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(Error::InvalidArgument(format!("a {what} is 1 to {max} printable ASCII characters")));
    }
    Ok(())
}

fn optional_bytes(value: &Option<String>) -> Bytes {
    value.as_ref().map(|v| Bytes::copy_from_slice(v.as_bytes())).unwrap_or_default()
}

/// The deduplication id a FIFO send is remembered by: the explicit id, or the hex SHA-256 of the
/// body with content-based deduplication.
fn dedup_id(config: &QueueConfig, entry: &SendEntry) -> Option<Vec<u8>> {
    if !config.fifo {
        return None;
    }
    match &entry.options.dedup_id {
        Some(d) => Some(d.as_bytes().to_vec()),
        None if config.content_based_dedup => {
            let digest = Sha256::digest(&entry.body);
            Some(crate::text::hex(&digest).into_bytes())
        }
        None => None,
    }
}

fn send_result(config: &QueueConfig, message_id: &[u8; 16], key: u64, duplicate: bool) -> SendResult {
    SendResult { message_id: format_id(message_id), sequence: config.fifo.then_some(key), duplicate }
}

/// Formats a message id as a UUID-shaped string.
pub fn format_id(id: &[u8; 16]) -> String {
    crate::text::uuid(id)
}

/// A message as it arrives in another queue (a dead-letter move, a move task): a new key there,
/// visible now, never received, dead-lettered from `origin` (0: none), and without a
/// deduplication id (it starts no window in a queue it was not sent to).
pub(crate) fn arriving(m: &mut MessageRecord, queue: u32, origin: u32, now: u64) {
    m.queue = queue;
    m.key = OWN_SEQ;
    m.visible_at_ms = now;
    m.receive_count = 0;
    m.first_receive_ms = 0;
    m.origin_queue = origin;
    m.dedup = Bytes::new();
}

/// Text of a stored string field, `None` if empty.
fn text_of(bytes: &Bytes) -> Option<String> {
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// The Receive records of the messages a receive took from queue `queue` at `now`.
fn receive_records(queue: u32, delivered: &[Taken], now: u64) -> Vec<QueueRecord> {
    delivered
        .iter()
        .map(|t| QueueRecord::Receive {
            queue,
            key: t.key,
            receive_count: t.msg.receive_count,
            visible_at_ms: t.msg.visible_at_ms,
            received_ms: now,
        })
        .collect()
}

fn received(
    receipt_key: &ReceiptKey,
    queue: u32,
    key: u64,
    msg: &Msg,
    m: MessageRecord,
    fifo: bool,
    dead_letter_source: Option<String>,
) -> ReceivedMessage {
    ReceivedMessage {
        message_id: format_id(&m.message_id),
        receipt_handle: Receipt::new(queue, key, msg.receive_count, msg.sent_ms, msg.id_tag()).encode(receipt_key),
        attributes: from_stored(&m.attributes),
        receive_count: msg.receive_count,
        sent_ms: msg.sent_ms,
        first_receive_ms: msg.first_receive_ms(),
        group: fifo.then(|| String::from_utf8_lossy(&m.group).into_owned()),
        sequence: fifo.then_some(key),
        dedup_id: if fifo { text_of(&m.dedup) } else { None },
        trace_header: text_of(&m.trace_header),
        sender_id: text_of(&m.sender_id),
        dead_letter_source,
        body: m.body,
    }
}

/// Locks one or two queues in id order (the one lock order of the store).
fn lock_in_order<'a>(a: &'a QueueCell, b: Option<&'a QueueCell>) -> Vec<(u32, MutexGuard<'a, QueueState>)> {
    match b {
        Some(b) if b.id != a.id => {
            let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
            let g1 = first.state.lock();
            let g2 = second.state.lock();
            vec![(first.id, g1), (second.id, g2)]
        }
        _ => vec![(a.id, a.state.lock())],
    }
}

fn split_guards<'g, 'a>(
    guards: &'g mut [(u32, MutexGuard<'a, QueueState>)],
    main: u32,
) -> (&'g mut QueueState, Option<&'g mut QueueState>) {
    let (first, rest) = guards.split_at_mut(1);
    let first = &mut first[0];
    let other = rest.first_mut().map(|(_, g)| &mut **g);
    if first.0 == main {
        (&mut *first.1, other)
    } else {
        match other {
            Some(o) => (o, Some(&mut *first.1)),
            None => (&mut *first.1, None),
        }
    }
}
