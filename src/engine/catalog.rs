//! The catalog: durable metadata (which streams, queues and topics exist, with their settings),
//! kept as JSON records in a log of its own under `DATA_DIR/catalog/`.
//!
//! Every change is appended (and fsynced, whatever the engine's durability mode) before it takes
//! effect; opening the engine replays the records in order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::delivery_streams::DeliveryStreamsState;
use crate::engine::tags::{ResourceKind, Tags};
use crate::error::{Error, Result};
use crate::firehose::DeliveryStreamDef;
use crate::format::batch::{record_payload_len, MAX_PAYLOAD_LEN};
use crate::format::{Compression, RecordRef};
use crate::log::io::Vfs;
use crate::log::keys::LogEncryption;
use crate::log::{Durability, Log, LogConfig};
use crate::queue::move_task::{MoveTaskDef, MoveTaskStatus, MAX_LISTED_MOVE_TASKS};
use crate::queue::QueueConfig;
use crate::stream::StreamMeta;
use crate::topic::http::{delivery_queue_config, delivery_queue_name};
use crate::topic::{ExchangeDef, SubscriptionDef, TopicAttributes, TopicConfig};

/// One change to the catalog, as stored (JSON, tagged by `op`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogRecord {
    /// A stream was created (or its shard map replaced, on resharding).
    PutStream {
        /// Its full description.
        stream: StreamMeta,
    },
    /// A stream was deleted.
    DeleteStream {
        /// Its name.
        name: String,
    },
    /// The engine's secret (hex), written once when the data directory is created. It keys the
    /// MAC of receipt handles.
    Init {
        /// 32 bytes, hex.
        secret: String,
    },
    /// A queue was created or its attributes changed.
    PutQueue {
        /// Its id in the message log (never reused).
        id: u32,
        /// Its name.
        name: String,
        /// Its attributes.
        config: QueueConfig,
        /// Tags the queue is created with (only in the record that creates it), so that
        /// creating and tagging is one atomic change.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
    /// Tags were added to (or changed on) a queue, topic or stream.
    Tag {
        /// What kind of resource.
        resource: ResourceKind,
        /// Its name.
        name: String,
        /// Tags to add; a key that exists gets the new value.
        tags: Tags,
    },
    /// Tags were removed from a queue, topic or stream.
    Untag {
        /// What kind of resource.
        resource: ResourceKind,
        /// Its name.
        name: String,
        /// Keys to remove (absent ones are ignored).
        keys: Vec<String>,
    },
    /// A queue was deleted.
    DeleteQueue {
        /// Its name.
        name: String,
    },
    /// A topic was created or its attributes changed.
    PutTopic {
        /// Its id in the message log (never reused).
        id: u32,
        /// Its name.
        name: String,
        /// Its settings.
        config: TopicConfig,
        /// Its other attributes.
        #[serde(default, skip_serializing_if = "is_default_attributes")]
        attributes: TopicAttributes,
        /// Tags the topic is created with (only in the record that creates it).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
    /// A topic became an exchange (AMQP's `exchange.declare`): it routes by its bindings.
    PutExchange {
        /// The topic's name.
        name: String,
        /// Its kind and lifetime.
        exchange: ExchangeDef,
    },
    /// A topic (and its subscriptions) was deleted.
    DeleteTopic {
        /// Its name.
        name: String,
    },
    /// A queue or an HTTP/HTTPS endpoint subscribed to a topic (an HTTP/HTTPS one with its
    /// internal delivery queue, whose id it names).
    Subscribe {
        /// The subscription.
        subscription: SubscriptionDef,
    },
    /// A subscription's attributes changed, or it was confirmed.
    UpdateSubscription {
        /// The subscription as it is now.
        subscription: SubscriptionDef,
    },
    /// A subscription was removed.
    Unsubscribe {
        /// Its id.
        id: String,
    },
    /// A message move task started.
    StartMoveTask {
        /// The task.
        task: MoveTaskDef,
    },
    /// A message move task ended (completed, cancelled or failed).
    EndMoveTask {
        /// Its id.
        id: u32,
        /// How it ended.
        status: MoveTaskStatus,
        /// Messages it moved.
        moved: u64,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_reason: Option<String>,
    },
    /// A delivery stream was created.
    PutDeliveryStream {
        /// Its description.
        delivery_stream: DeliveryStreamDef,
    },
    /// A delivery stream (and its undelivered records) was deleted.
    DeleteDeliveryStream {
        /// Its name.
        name: String,
    },
}

/// A message move task as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTaskEntry {
    /// What it moves.
    pub def: MoveTaskDef,
    /// Where it is.
    pub status: MoveTaskStatus,
    /// Messages moved, for an ended task (a running one counts in memory).
    pub moved: u64,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

/// A topic as the catalog knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicEntry {
    /// Id in the message log.
    pub id: u32,
    /// Settings.
    pub config: TopicConfig,
    /// Other attributes.
    pub attributes: TopicAttributes,
    /// Durable (queue and HTTP/HTTPS) subscriptions, in creation order.
    pub subscriptions: Vec<SubscriptionDef>,
    /// What makes it an exchange, if it is one.
    pub exchange: Option<ExchangeDef>,
}

fn is_default_attributes(a: &TopicAttributes) -> bool {
    *a == TopicAttributes::default()
}

/// A queue as the catalog knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// Id in the message log.
    pub id: u32,
    /// Attributes.
    pub config: QueueConfig,
    /// When the record that created it was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// When its attributes last changed (the time of its latest `put_queue` record).
    pub modified_ms: u64,
}

/// The replayed state of the catalog.
#[derive(Debug, Default, Clone)]
pub struct CatalogState {
    /// Streams by name.
    pub streams: BTreeMap<String, StreamMeta>,
    /// Directories (under `streams/`) of deleted streams, which open removes if a crash left
    /// them.
    pub deleted_streams: Vec<String>,
    /// The incarnation the next stream of each name gets (see `StreamMeta::incarnation`).
    pub next_incarnation: BTreeMap<String, u64>,
    /// The engine's secret.
    pub secret: Option<[u8; 32]>,
    /// Queues by name.
    pub queues: BTreeMap<String, QueueEntry>,
    /// The id the next new queue gets.
    pub next_queue_id: u32,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicEntry>,
    /// The id the next new topic gets.
    pub next_topic_id: u32,
    /// The number the next subscription id carries.
    pub next_subscription: u64,
    /// Tags of queues, topics and streams that have any.
    pub tags: BTreeMap<(ResourceKind, String), Tags>,
    /// Message move tasks of existing source queues: the running ones and the latest ten that
    /// ended, per source.
    pub move_tasks: BTreeMap<u32, MoveTaskEntry>,
    /// The id the next move task gets.
    pub next_move_task_id: u32,
    /// Delivery streams.
    pub delivery_streams: DeliveryStreamsState,
}

impl CatalogState {
    /// The tags of a resource (empty if it has none).
    pub fn tags_of(&self, kind: ResourceKind, name: &str) -> Tags {
        self.tags.get(&(kind, name.to_string())).cloned().unwrap_or_default()
    }

    /// Keeps the latest [`MAX_LISTED_MOVE_TASKS`] ended tasks of a source (all it lists).
    fn forget_old_move_tasks(&mut self, source: &str) {
        let ended: Vec<u32> = self
            .move_tasks
            .values()
            .filter(|t| t.def.source == source && t.status != MoveTaskStatus::Running)
            .map(|t| t.def.id)
            .collect();
        for id in ended.iter().rev().skip(MAX_LISTED_MOVE_TASKS) {
            self.move_tasks.remove(id);
        }
    }

    /// Applies one record, written at `time_ms` (its frame's time).
    fn apply(&mut self, record: CatalogRecord, time_ms: u64) {
        match record {
            CatalogRecord::PutStream { stream } => {
                let dir = stream.dir_name();
                self.deleted_streams.retain(|d| *d != dir);
                let next = self.next_incarnation.entry(stream.name.clone()).or_default();
                *next = (*next).max(stream.incarnation.saturating_add(1));
                self.streams.insert(stream.name.clone(), stream);
            }
            CatalogRecord::DeleteStream { name } => {
                self.tags.remove(&(ResourceKind::Stream, name.clone()));
                if let Some(stream) = self.streams.remove(&name) {
                    self.deleted_streams.push(stream.dir_name());
                }
            }
            CatalogRecord::Init { secret } => {
                if self.secret.is_none() {
                    self.secret = parse_secret(&secret);
                }
            }
            CatalogRecord::PutQueue { id, name, config, tags } => {
                self.next_queue_id = self.next_queue_id.max(id.saturating_add(1));
                let created_ms = match self.queues.get(&name) {
                    Some(existing) if existing.id == id => existing.created_ms,
                    _ => time_ms,
                };
                if !tags.is_empty() {
                    self.tags.entry((ResourceKind::Queue, name.clone())).or_default().extend(tags);
                }
                self.queues.insert(name, QueueEntry { id, config, created_ms, modified_ms: time_ms });
            }
            CatalogRecord::DeleteQueue { name } => {
                self.queues.remove(&name);
                self.move_tasks.retain(|_, t| t.def.source != name);
                self.tags.remove(&(ResourceKind::Queue, name));
            }
            CatalogRecord::StartMoveTask { task } => {
                self.next_move_task_id = self.next_move_task_id.max(task.id.saturating_add(1));
                let entry =
                    MoveTaskEntry { def: task, status: MoveTaskStatus::Running, moved: 0, failure_reason: None };
                self.move_tasks.insert(entry.def.id, entry);
            }
            CatalogRecord::EndMoveTask { id, status, moved, failure_reason } => {
                let Some(task) = self.move_tasks.get_mut(&id) else { return };
                task.status = status;
                task.moved = moved;
                task.failure_reason = failure_reason;
                let source = task.def.source.clone();
                self.forget_old_move_tasks(&source);
            }
            CatalogRecord::Tag { resource, name, tags } => {
                self.tags.entry((resource, name)).or_default().extend(tags);
            }
            CatalogRecord::Untag { resource, name, keys } => {
                let key = (resource, name);
                if let Some(tags) = self.tags.get_mut(&key) {
                    for k in &keys {
                        tags.remove(k);
                    }
                    if tags.is_empty() {
                        self.tags.remove(&key);
                    }
                }
            }
            CatalogRecord::PutTopic { id, name, config, attributes, tags } => {
                self.next_topic_id = self.next_topic_id.max(id.saturating_add(1));
                if !tags.is_empty() {
                    self.tags.entry((ResourceKind::Topic, name.clone())).or_default().extend(tags);
                }
                match self.topics.get_mut(&name) {
                    // The same topic, changed: its subscriptions stay.
                    Some(existing) if existing.id == id => {
                        existing.config = config;
                        existing.attributes = attributes;
                    }
                    _ => {
                        self.topics.insert(
                            name,
                            TopicEntry { id, config, attributes, subscriptions: Vec::new(), exchange: None },
                        );
                    }
                }
            }
            CatalogRecord::PutExchange { name, exchange } => {
                if let Some(topic) = self.topics.get_mut(&name) {
                    topic.exchange = Some(exchange);
                }
            }
            CatalogRecord::DeleteTopic { name } => {
                if let Some(topic) = self.topics.remove(&name) {
                    for sub in &topic.subscriptions {
                        self.queues.remove(&delivery_queue_name(&sub.id));
                    }
                }
                self.tags.remove(&(ResourceKind::Topic, name));
            }
            CatalogRecord::Subscribe { subscription } => {
                if let Some(n) = subscription.id.strip_prefix("sub-").and_then(|n| n.parse::<u64>().ok()) {
                    self.next_subscription = self.next_subscription.max(n + 1);
                }
                if let Some(topic) = self.topics.get_mut(&subscription.topic) {
                    if let Some(id) = subscription.delivery_queue {
                        self.next_queue_id = self.next_queue_id.max(id.saturating_add(1));
                        let entry = QueueEntry {
                            id,
                            config: delivery_queue_config(),
                            created_ms: time_ms,
                            modified_ms: time_ms,
                        };
                        self.queues.insert(delivery_queue_name(&subscription.id), entry);
                    }
                    topic.subscriptions.push(subscription);
                }
            }
            CatalogRecord::UpdateSubscription { subscription } => {
                if let Some(topic) = self.topics.get_mut(&subscription.topic) {
                    if let Some(slot) = topic.subscriptions.iter_mut().find(|s| s.id == subscription.id) {
                        *slot = subscription;
                    }
                }
            }
            CatalogRecord::Unsubscribe { id } => {
                for topic in self.topics.values_mut() {
                    topic.subscriptions.retain(|s| s.id != id);
                }
                self.queues.remove(&delivery_queue_name(&id));
            }
            CatalogRecord::PutDeliveryStream { delivery_stream } => self.delivery_streams.put(delivery_stream),
            CatalogRecord::DeleteDeliveryStream { name } => self.delivery_streams.delete(&name),
        }
    }
}

fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// 32 bytes from the operating system's random source, or (if that fails) a hash of the time,
/// the process id and an address: only receipt-handle MACs depend on it.
pub fn new_secret() -> [u8; 32] {
    use std::io::Read;
    let mut out = [0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out)).is_ok() {
        return out;
    }
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{:?}{}{:p}", std::time::SystemTime::now(), std::process::id(), &out));
    h.finalize().into()
}

/// Hex of a secret, as the catalog stores it.
pub fn secret_hex(secret: &[u8; 32]) -> String {
    crate::text::hex(secret)
}

/// The catalog log and its replayed state.
#[derive(Debug)]
pub struct Catalog {
    log: Log,
    state: CatalogState,
}

impl Catalog {
    /// Opens the catalog in `dir` and replays it.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, encryption: Option<Arc<LogEncryption>>) -> Result<Catalog> {
        let config = LogConfig {
            segment_bytes: 4 << 20,
            index_interval_bytes: 4096,
            durability: Durability::Always,
            compression: Compression::None,
            // Written a few times a day: no fsync worth preallocating for.
            preallocate: false,
            encryption,
        };
        let log = Log::open(vfs, dir, config, 0)?;
        // The catalog is never trimmed: records missing from its start would silently forget
        // queues, topics and streams (and the receipt secret), unless a salvage recorded them.
        let first = log.first_seq();
        if first > 0 && !log.lost_ranges().covers(0, first) {
            return Err(Error::corrupt(
                dir,
                0,
                format!("catalog records 0 to {} are missing (a segment file is gone); run `weir salvage`", first - 1),
            ));
        }
        let mut state = CatalogState {
            next_queue_id: 1,
            next_topic_id: 1,
            next_subscription: 1,
            next_move_task_id: 1,
            ..CatalogState::default()
        };
        log.for_each_from(log.first_seq(), |r| {
            let record: CatalogRecord = serde_json::from_slice(&r.value)
                .map_err(|e| Error::corrupt(dir, 0, format!("catalog record {} does not decode: {e}", r.seq)))?;
            state.apply(record, r.time_ms);
            Ok(())
        })?;
        Ok(Catalog { log, state })
    }

    /// The catalog's log.
    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    /// The current state.
    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// Durably records a change, then applies it.
    pub fn append(&mut self, record: CatalogRecord, now_ms: u64) -> Result<()> {
        self.append_stamped(record, now_ms).map(|_| ())
    }

    /// [`Catalog::append`], returning the time the log stamped on the record (the time replay
    /// applies it at: never earlier than an earlier record's, whatever the clock did).
    pub fn append_stamped(&mut self, record: CatalogRecord, now_ms: u64) -> Result<u64> {
        let value = serde_json::to_vec(&record).map_err(|e| Error::InvalidArgument(format!("catalog record: {e}")))?;
        let size = record_payload_len(0, value.len());
        if size > MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge { what: "catalog record", size, limit: MAX_PAYLOAD_LEN });
        }
        let outcome = self.log.append(&[RecordRef { key: b"", value: &value }], now_ms)?;
        self.state.apply(record, outcome.time_ms);
        Ok(outcome.time_ms)
    }
}
