//! The engine: opening a data directory (lock, catalog, recovery of every log), the registry
//! of open streams, queues and topics, and background maintenance (periodic sync, retention).
//!
//! Layout of a data directory:
//!
//! ```text
//! DATA_DIR/LOCK                       exclusive lock: one process per directory
//! DATA_DIR/catalog/                   log of catalog records (JSON)
//! DATA_DIR/streams/<name>[@N]/shard-NNNNNN/   one log per shard (`@N`: a later stream of
//!                                     the name, see `StreamMeta::dir_name`)
//! DATA_DIR/queues/                    the message log shared by every queue and topic
//! ```

pub mod catalog;
mod exchanges;
pub mod health;
#[cfg(test)]
mod interleavings;
pub mod lock;
mod move_tasks;
mod queue_admin;
pub mod tags;
mod transactions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::format::Compression;
use crate::log::io::{RealFs, Vfs};
pub use crate::log::Durability;
use crate::log::LogConfig;
use crate::names;
use crate::queue::store::{QueueDef, QueueStore, StoreEnv};
use crate::queue::{Queue, QueueAttributes, QueueConfig, RedriveResult};
use crate::stream::{Stream, StreamDescription, StreamEnv, StreamMeta, DEFAULT_MAX_RECORD_BYTES, MIN_RETENTION_MS};
use crate::topic::{Endpoint, SubscribeOptions, SubscriptionDef, SubscriptionInfo, Topic, TopicCell, TopicConfig};
use catalog::{Catalog, CatalogRecord};
pub use exchanges::Delivery;
use health::{FailureBook, Pass};
pub use health::{Health, LogFailure};
use lock::DirLock;

/// How an engine is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// When acknowledged writes are durable. Default: [`Durability::Always`].
    pub durability: Durability,
    /// Segment size at which logs roll. Default 64 MiB.
    pub segment_bytes: u64,
    /// Largest stream record (data plus partition key). Default 1 MiB, as Kinesis.
    pub max_record_bytes: usize,
    /// Whether batches may be zstd-compressed when it pays. Default: yes.
    pub compression: Compression,
    /// Time source. Default: the system clock.
    pub clock: Arc<dyn Clock>,
    /// File system. Default: the real one.
    pub vfs: Arc<dyn Vfs>,
    /// How long `open` waits for another process to release the directory. Default: not at all.
    pub lock_wait: Duration,
    /// Run the maintenance thread (periodic sync for `Interval`, retention every
    /// `maintenance_interval`). Tests with a manual clock turn it off and call
    /// [`Engine::run_maintenance`].
    pub background: bool,
    /// How often the maintenance thread enforces retention. Default: 10 s.
    pub maintenance_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Always,
            segment_bytes: 64 << 20,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            compression: Compression::Auto,
            clock: Arc::new(SystemClock),
            vfs: Arc::new(RealFs),
            lock_wait: Duration::ZERO,
            background: true,
            maintenance_interval: Duration::from_secs(10),
        }
    }
}

impl Options {
    fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: 4096,
            durability: self.durability,
            compression: self.compression,
            preallocate: true,
        }
    }
}

pub(crate) struct EngineInner {
    dir: PathBuf,
    options: Options,
    catalog: Mutex<Catalog>,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    queues: Arc<QueueStore>,
    topics: RwLock<BTreeMap<String, Arc<TopicCell>>>,
    next_callback: std::sync::atomic::AtomicU64,
    shutdown: Mutex<bool>,
    wake: Condvar,
    lock: Arc<DirLock>,
    /// What the maintenance thread failed at, per log.
    failures: FailureBook,
    move_tasks: move_tasks::MoveTasks,
}

/// An open data directory. Cheap to share: wrap it in an `Arc` or pass references; every
/// method takes `&self` and is safe to call from many threads.
pub struct Engine {
    inner: Arc<EngineInner>,
    maintenance: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.inner.dir).finish()
    }
}

impl Engine {
    /// Opens (creating if needed) the data directory `dir`: takes its lock, replays the catalog
    /// and recovers every log.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(Error::io(
                "open data directory",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "it exists and is not a directory"),
            ));
        }
        // Durably: a data directory whose entry a power cut can undo takes everything
        // acknowledged in it along.
        crate::log::io::create_dir_durably(options.vfs.as_ref(), &dir)
            .map_err(|e| Error::io("create data directory", &dir, e))?;
        let lock = Arc::new(DirLock::acquire(&dir, options.lock_wait)?);
        let catalog_was_there = options.vfs.list_dir(&dir.join("catalog")).is_ok_and(|names| !names.is_empty());
        if !catalog_was_there && holds_data(&options, &dir) {
            return Err(Error::corrupt(
                dir.join("catalog"),
                0,
                "the catalog is missing but the directory holds queues or streams; restore it or run `weir salvage`",
            ));
        }
        let mut catalog = Catalog::open(options.vfs.clone(), &dir.join("catalog"))?;
        let secret = match catalog.state().secret {
            Some(secret) => secret,
            None => {
                let secret = catalog::new_secret();
                catalog.append(CatalogRecord::Init { secret: catalog::secret_hex(&secret) }, options.clock.now_ms())?;
                secret
            }
        };
        let state = catalog.state().clone();
        for deleted in &state.deleted_streams {
            // A delete that crashed before its directory was gone finishes now.
            let _ = options.vfs.remove_dir_all(&dir.join("streams").join(deleted));
        }
        let mut streams = BTreeMap::new();
        for (name, meta) in state.streams {
            let stream = Stream::open(&dir.join("streams").join(meta.dir_name()), meta, stream_env(&options, &lock))?;
            streams.insert(name, Arc::new(stream));
        }
        let queue_defs = state
            .queues
            .iter()
            .map(|(name, q)| QueueDef {
                id: q.id,
                name: name.clone(),
                config: q.config.clone(),
                created_ms: q.created_ms,
                modified_ms: q.modified_ms,
            })
            .collect();
        let store_env = StoreEnv {
            vfs: options.vfs.clone(),
            log_config: options.log_config(),
            clock: options.clock.clone(),
            secret,
            lock: Arc::clone(&lock) as Arc<dyn std::any::Any + Send + Sync>,
        };
        let queues = QueueStore::open(
            &dir.join("queues"),
            store_env,
            queue_defs,
            state.topics.values().filter(|t| t.config.fifo).map(|t| t.id).collect(),
        )?;
        let move_tasks = move_tasks::MoveTasks::resume(
            catalog.state(),
            &queues.take_replayed_move_progress(),
            options.clock.now_ms(),
        );
        let mut topics = BTreeMap::new();
        for (name, entry) in &state.topics {
            let cell = TopicCell::new(entry.id, name.clone(), entry.config);
            for sub in &entry.subscriptions {
                cell.add_queue_subscription(sub)?;
            }
            topics.insert(name.clone(), Arc::new(cell));
        }
        let inner = Arc::new(EngineInner {
            dir,
            options,
            catalog: Mutex::new(catalog),
            streams: RwLock::new(streams),
            queues: Arc::new(queues),
            topics: RwLock::new(topics),
            next_callback: std::sync::atomic::AtomicU64::new(1),
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
            lock,
            failures: FailureBook::default(),
            move_tasks,
        });
        let maintenance = inner.options.background.then(|| spawn_maintenance(Arc::downgrade(&inner)));
        let engine = Engine { inner, maintenance };
        engine.resume_move_tasks();
        engine.drop_transient()?;
        Ok(engine)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.options.clock
    }

    /// Creates a stream with `shards` shards (1-1024) splitting the hash-key space evenly, and
    /// `retention` (24 hours to 365 days; default 24 hours, as Kinesis).
    pub fn create_stream(&self, name: &str, shards: u32, retention: Option<Duration>) -> Result<()> {
        self.create_stream_with(name, shards, retention, false)
    }

    /// [`Engine::create_stream`] with Kinesis's per-shard throughput limits switched on or off:
    /// writes over 1 MiB/s or 1,000 records/s, or reads over 2 MiB/s, in a shard fail with
    /// [`Error::ThroughputExceeded`], which a caller backs off on.
    pub fn create_stream_with(
        &self,
        name: &str,
        shards: u32,
        retention: Option<Duration>,
        throughput_limits: bool,
    ) -> Result<()> {
        names::validate_stream_name(name)?;
        let retention_ms = retention.map_or(MIN_RETENTION_MS, |d| d.as_millis() as u64);
        let mut meta = StreamMeta::new(name, shards, retention_ms)?;
        meta.throughput_limits = throughput_limits;
        let mut catalog = self.inner.catalog.lock();
        if catalog.state().streams.contains_key(name) {
            return Err(Error::AlreadyExists { kind: "stream", name: name.to_string() });
        }
        // A directory of its own: handles to an earlier stream of this name keep theirs.
        meta.incarnation = catalog.state().next_incarnation.get(name).copied().unwrap_or(0);
        let dir = self.stream_dir(&meta);
        // Leftovers of a creation that crashed before its catalog record must not leak in, and
        // their removal must be durable before the new stream's files exist.
        self.remove_dir_durably(&dir)?;
        let stream = Stream::open(&dir, meta.clone(), stream_env(&self.inner.options, &self.inner.lock))?;
        catalog.append(CatalogRecord::PutStream { stream: meta }, self.inner.options.clock.now_ms())?;
        self.inner.streams.write().insert(name.to_string(), Arc::new(stream));
        Ok(())
    }

    /// Deletes a stream and all its records.
    pub fn delete_stream(&self, name: &str) -> Result<()> {
        names::validate_stream_name(name)?;
        let mut catalog = self.inner.catalog.lock();
        let Some(meta) = catalog.state().streams.get(name).cloned() else {
            return Err(Error::NotFound { kind: "stream", name: name.to_string() });
        };
        catalog.append(CatalogRecord::DeleteStream { name: name.to_string() }, self.inner.options.clock.now_ms())?;
        if let Some(stream) = self.inner.streams.write().remove(name) {
            stream.mark_deleted();
        }
        let dir = self.stream_dir(&meta);
        self.remove_dir_durably(&dir)
    }

    fn remove_dir_durably(&self, dir: &Path) -> Result<()> {
        let vfs = &self.inner.options.vfs;
        vfs.remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
        if let Some(parent) = dir.parent() {
            if vfs.list_dir(parent).is_ok() {
                vfs.sync_dir(parent).map_err(|e| Error::io("fsync directory", parent, e))?;
            }
        }
        Ok(())
    }

    /// An open stream by name.
    pub fn stream(&self, name: &str) -> Result<Arc<Stream>> {
        names::validate_stream_name(name)?;
        self.inner
            .streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "stream", name: name.to_string() })
    }

    /// Names of all streams.
    pub fn list_streams(&self) -> Vec<String> {
        self.inner.streams.read().keys().cloned().collect()
    }

    /// Splits an open shard at `at` (the first hash key of the upper child; default: the middle
    /// of its range). The parent closes; returns the two children.
    pub fn split_shard(&self, stream: &str, shard: u32, at: Option<u128>) -> Result<[u32; 2]> {
        let s = self.stream(stream)?;
        let mut catalog = self.inner.catalog.lock();
        let now = self.inner.options.clock.now_ms();
        s.split_shard(shard, at, &mut |meta| catalog.append(CatalogRecord::PutStream { stream: meta.clone() }, now))
    }

    /// Merges two adjacent open shards; both close; returns the child.
    pub fn merge_shards(&self, stream: &str, shard: u32, adjacent: u32) -> Result<u32> {
        let s = self.stream(stream)?;
        let mut catalog = self.inner.catalog.lock();
        let now = self.inner.options.clock.now_ms();
        s.merge_shards(shard, adjacent, &mut |meta| {
            catalog.append(CatalogRecord::PutStream { stream: meta.clone() }, now)
        })
    }

    /// A stream's shards, ranges and stored sequence numbers.
    pub fn describe_stream(&self, name: &str) -> Result<StreamDescription> {
        Ok(self.stream(name)?.describe())
    }

    /// Creates a queue. Creating one that exists with the same attributes succeeds (as SQS);
    /// with different attributes it fails. A redrive policy must name an existing queue of the
    /// same type (FIFO for a FIFO queue) whose redrive allow policy lets this one use it.
    pub fn create_queue(&self, name: &str, config: QueueConfig) -> Result<()> {
        self.create_queue_with(name, config, &tags::Tags::new())
    }

    /// Changes a queue's attributes (all but `fifo`, which is fixed at creation).
    pub fn set_queue_attributes(&self, name: &str, config: QueueConfig) -> Result<()> {
        self.update_queue_config(name, |_| Ok(config))
    }

    /// The account and region that queue and topic ARNs name when a topic's delivery into a
    /// queue is decided against the queue's access policy (see [`crate::policy::delivery`]).
    /// `weir serve` sets them from `--account-id` and `--region`; the default is
    /// `us-east-1` and `000000000000`.
    pub fn set_arn_scope(&self, scope: crate::policy::ArnScope) {
        self.inner.queues.set_arn_scope(scope);
    }

    /// A queue's attributes and approximate counts.
    pub fn queue_attributes(&self, name: &str) -> Result<QueueAttributes> {
        Ok(self.queue(name)?.attributes())
    }

    /// Deletes a queue and its messages.
    pub fn delete_queue(&self, name: &str) -> Result<()> {
        self.queue(name)?;
        let mut catalog = self.inner.catalog.lock();
        catalog.append(CatalogRecord::DeleteQueue { name: name.to_string() }, self.inner.options.clock.now_ms())?;
        self.inner.queues.remove_queue(name);
        Ok(())
    }

    /// Names of all queues, sorted.
    pub fn list_queues(&self) -> Vec<String> {
        self.inner.queues.names()
    }

    /// A queue by name. A name SQS's rules refuse is still found if a broker protocol declared
    /// a queue of that name ([`names::validate_broker_name`]); otherwise it is the name's error.
    pub fn queue(&self, name: &str) -> Result<Queue> {
        let cell = match names::validate_lookup_name("queue", name) {
            Ok(()) if names::validate_queue_name("queue", name, name.ends_with(".fifo")).is_ok() => {
                self.inner.queues.cell(name).ok_or_else(|| Error::NotFound { kind: "queue", name: name.to_string() })?
            }
            Ok(()) => match self.inner.queues.cell(name) {
                Some(cell) => cell,
                None => return Err(names::validate_queue_name("queue", name, name.ends_with(".fifo")).unwrap_err()),
            },
            Err(e) => return Err(e),
        };
        Ok(Queue { store: Arc::clone(&self.inner.queues), cell })
    }

    /// Moves the messages of dead-letter queue `dlq` back to their source queues, or all to `to`.
    pub fn redrive(&self, dlq: &str, to: Option<&str>) -> Result<RedriveResult> {
        let dlq = self.queue(dlq)?;
        let to = to.map(|name| self.queue(name)).transpose()?;
        if let Some(target) = &to {
            let fifo = |q: &Queue| q.cell.state.lock().config.fifo;
            if fifo(target) != fifo(&dlq) {
                return Err(Error::InvalidArgument(format!(
                    "cannot redrive {:?} into {:?}: both must be FIFO or both standard",
                    dlq.name(),
                    target.name()
                )));
            }
        }
        self.inner.queues.redrive(&dlq.cell, to.as_ref().map(|q| &q.cell))
    }

    /// Creates a topic (names as for queues; FIFO topics end in `.fifo`). Creating one that
    /// exists with the same settings succeeds.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        names::validate_queue_name("topic", name, config.fifo)?;
        if config.content_based_dedup && !config.fifo {
            return Err(Error::InvalidArgument("content-based deduplication is for FIFO topics only".into()));
        }
        let mut catalog = self.inner.catalog.lock();
        if let Some(existing) = catalog.state().topics.get(name) {
            if existing.config == config {
                return Ok(());
            }
            return Err(Error::AlreadyExists { kind: "topic", name: name.to_string() });
        }
        let id = catalog.state().next_topic_id;
        catalog.append(
            CatalogRecord::PutTopic { id, name: name.to_string(), config },
            self.inner.options.clock.now_ms(),
        )?;
        if config.fifo {
            self.inner.queues.add_fifo_topic(id);
        }
        self.inner.topics.write().insert(name.to_string(), Arc::new(TopicCell::new(id, name.to_string(), config)));
        Ok(())
    }

    /// Deletes a topic and its subscriptions (the queues stay).
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let topic = self.topic(name)?;
        let mut catalog = self.inner.catalog.lock();
        catalog.append(CatalogRecord::DeleteTopic { name: name.to_string() }, self.inner.options.clock.now_ms())?;
        self.inner.topics.write().remove(name);
        topic.cell.mark_deleted();
        self.inner.queues.remove_topic(topic.cell.id);
        Ok(())
    }

    /// Names of all topics, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Result<Topic> {
        names::validate_lookup_name("topic", name)?;
        let found = self.inner.topics.read().get(name).cloned();
        let cell = match found {
            Some(cell) => cell,
            // A name only a broker may declare, and no such exchange: the SQS-style name's error.
            None => match names::validate_queue_name("topic", name, name.ends_with(".fifo")) {
                Ok(()) => return Err(Error::NotFound { kind: "topic", name: name.to_string() }),
                Err(e) => return Err(e),
            },
        };
        Ok(Topic { store: Arc::clone(&self.inner.queues), cell })
    }

    /// Subscribes an endpoint to a topic and returns the subscription id. A FIFO topic takes only
    /// FIFO queues and a standard topic only standard queues, as SNS. A malformed filter policy
    /// is rejected here with the reason. Queue subscriptions are durable; callbacks last until
    /// the engine is dropped.
    pub fn subscribe(&self, topic: &str, endpoint: Endpoint, options: SubscribeOptions) -> Result<String> {
        let topic = self.topic(topic)?;
        crate::topic::parse_policy(options.filter_policy.as_deref(), options.filter_scope)?;
        let mut catalog = self.inner.catalog.lock();
        let id = format!("sub-{:06}", catalog.state().next_subscription);
        match endpoint {
            Endpoint::Queue(queue) => {
                let target = self.queue(&queue)?;
                let fifo = target.cell.state.lock().config.fifo;
                if fifo != topic.cell.config.fifo {
                    return Err(Error::InvalidArgument(format!(
                        "a {} topic delivers only to {} queues; {queue:?} is {}",
                        if topic.cell.config.fifo { "FIFO" } else { "standard" },
                        if topic.cell.config.fifo { "FIFO" } else { "standard" },
                        if fifo { "FIFO" } else { "standard" },
                    )));
                }
                let def = SubscriptionDef {
                    id: id.clone(),
                    topic: topic.cell.name.clone(),
                    queue,
                    filter_policy: options.filter_policy.clone(),
                    filter_body: options.filter_scope == crate::topic::FilterScope::MessageBody,
                    raw: options.raw,
                    binding: None,
                };
                catalog.append(
                    CatalogRecord::Subscribe { subscription: def.clone() },
                    self.inner.options.clock.now_ms(),
                )?;
                drop(catalog);
                let live_from =
                    topic.cell.add_queue_subscription_at(&def, || self.inner.queues.log().written_next())?;
                self.inner.queues.pauses.at(crate::queue::pause::Pause::SubscribeReplay);
                if let Some(from_ms) = options.replay_from_ms {
                    crate::topic::replay_into(&self.inner.queues, &topic.cell, &def, from_ms, live_from)?;
                }
            }
            Endpoint::Callback(f) => {
                drop(catalog);
                // Not durable, so not in the catalog: ids of their own kind never collide with
                // the durable `sub-` ones.
                let n = self.inner.next_callback.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("cb-{n:06}");
                topic.cell.add_callback(id.clone(), f, &options)?;
                return Ok(id);
            }
        }
        Ok(id)
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, subscription_id: &str) -> Result<()> {
        let topics: Vec<Arc<TopicCell>> = self.inner.topics.read().values().cloned().collect();
        let Some(topic) = topics.iter().find(|t| t.has_subscription(subscription_id)) else {
            return Err(Error::NotFound { kind: "subscription", name: subscription_id.to_string() });
        };
        let mut catalog = self.inner.catalog.lock();
        catalog.append(
            CatalogRecord::Unsubscribe { id: subscription_id.to_string() },
            self.inner.options.clock.now_ms(),
        )?;
        topic.remove_subscription(subscription_id);
        Ok(())
    }

    /// The subscriptions of a topic.
    pub fn list_subscriptions(&self, topic: &str) -> Result<Vec<SubscriptionInfo>> {
        Ok(self.topic(topic)?.cell.subscriptions())
    }

    /// Wakes every long poll so it rereads the clock: for tests that move a manual clock.
    pub fn notify_clock_advanced(&self) {
        self.inner.queues.wake_all();
    }

    fn stream_dir(&self, meta: &StreamMeta) -> PathBuf {
        self.inner.dir.join("streams").join(meta.dir_name())
    }

    /// Runs one round of maintenance now: retention on every stream shard, then retention and
    /// compaction of the message log, then every message move task as far as its rate allows
    /// by now. The background thread calls this periodically; tests driving a manual clock
    /// call it directly. Every log has its turn whatever the others do; the first error is
    /// returned.
    pub fn run_maintenance(&self) -> Result<()> {
        self.inner.run_maintenance(Pass::foreground())
    }

    /// Syncs every log (useful before a planned shutdown under `Interval` or `Never`; dropping
    /// the engine does the same). A log that fails does not keep the others from being
    /// synced; the first error is returned.
    pub fn flush(&self) -> Result<()> {
        self.inner.sync_logs(Pass::foreground())
    }

    /// The failures of background work (each log's first, also printed once on stderr) and
    /// the logs that refuse writes. Under `Interval`, a failed periodic fsync reaches no caller
    /// otherwise: this is where an application (or a server's health check) sees it.
    pub fn health(&self) -> Health {
        let mut poisoned = Vec::new();
        self.inner.for_each_log(&mut |log| {
            if log.is_poisoned() {
                poisoned.push(log.dir().to_path_buf());
            }
        });
        Health { failures: self.inner.failures.list(), poisoned }
    }
}

impl EngineInner {
    /// Calls `f` with every log but the catalog (which syncs every record itself): each live
    /// stream's, then the message log.
    fn for_each_log(&self, f: &mut dyn FnMut(&crate::log::Log)) {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        // A stream deleted meanwhile has nothing left to keep.
        for stream in streams.iter().filter(|s| !s.is_deleted()) {
            stream.for_each_log(f);
        }
        f(self.queues.log());
    }

    /// Syncs every log, each on its own: one that fails is noted and the rest still are.
    fn sync_logs(&self, mut pass: Pass<'_>) -> Result<()> {
        self.for_each_log(&mut |log| pass.check(log.dir(), "sync", log.flush()));
        pass.finish()
    }

    /// Retention of every stream shard, then the message log's; each log on its own.
    fn run_maintenance(&self, mut pass: Pass<'_>) -> Result<()> {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        for stream in streams.iter().filter(|s| !s.is_deleted()) {
            let cutoff = stream.retention_cutoff_ms();
            for shard in stream.shards() {
                let outcome = shard.log.delete_older_than(cutoff);
                // A stream deleted meanwhile took its files along: nothing failed.
                if !stream.is_deleted() {
                    pass.check(shard.log.dir(), "retention", outcome);
                }
            }
        }
        pass.check(self.queues.log().dir(), "compaction", self.queues.maintain());
        self.run_move_tasks();
        pass.finish()
    }

    /// A pass of the maintenance thread: failures are recorded against their logs.
    fn background_pass(&self) -> Pass<'_> {
        Pass::background(&self.failures, self.options.clock.now_ms())
    }
}

/// True if the data directory holds a message log or stream data (so a missing catalog is
/// damage, not a new directory).
fn holds_data(options: &Options, dir: &Path) -> bool {
    let non_empty = |p: PathBuf| options.vfs.list_dir(&p).is_ok_and(|names| !names.is_empty());
    non_empty(dir.join("streams")) || non_empty(dir.join("queues"))
}

fn check_redrive(state: &catalog::CatalogState, name: &str, config: &QueueConfig) -> Result<()> {
    let Some(redrive) = &config.redrive else { return Ok(()) };
    if redrive.dead_letter_queue == name {
        return Err(Error::InvalidArgument("a queue cannot be its own dead-letter queue".into()));
    }
    let dlq = state
        .queues
        .get(&redrive.dead_letter_queue)
        .ok_or_else(|| Error::NotFound { kind: "dead-letter queue", name: redrive.dead_letter_queue.clone() })?;
    if dlq.config.fifo != config.fifo {
        return Err(Error::InvalidArgument(format!(
            "the dead-letter queue of a {} queue must be {} too",
            if config.fifo { "FIFO" } else { "standard" },
            if config.fifo { "FIFO" } else { "standard" }
        )));
    }
    if !dlq.config.redrive_allow.allows(name) {
        return Err(Error::InvalidArgument(format!(
            "the redrive allow policy of {:?} does not let {name:?} use it as its dead-letter queue",
            redrive.dead_letter_queue
        )));
    }
    Ok(())
}

fn stream_env(options: &Options, lock: &Arc<DirLock>) -> StreamEnv {
    StreamEnv {
        vfs: options.vfs.clone(),
        clock: options.clock.clone(),
        log_config: options.log_config(),
        max_record_bytes: options.max_record_bytes,
        lock: Arc::clone(lock) as Arc<dyn std::any::Any + Send + Sync>,
    }
}

/// The maintenance thread: syncs `Interval` logs on time and runs retention. It holds only a
/// weak reference, so dropping the engine ends it.
fn spawn_maintenance(inner: Weak<EngineInner>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut since_retention = Duration::ZERO;
        loop {
            let Some(engine) = inner.upgrade() else { return };
            let tick = match engine.options.durability {
                Durability::Interval(ms) => Duration::from_millis(ms.max(1)),
                _ => engine.options.maintenance_interval,
            };
            {
                let mut stop = engine.shutdown.lock();
                if *stop {
                    return;
                }
                engine.wake.wait_for(&mut stop, tick);
                if *stop {
                    return;
                }
            }
            if let Durability::Interval(_) = engine.options.durability {
                // A failed sync poisons its log (the next write there reports it to its
                // caller) and is recorded for `Engine::health`; the other logs are synced.
                let _ = engine.sync_logs(engine.background_pass());
            }
            since_retention += tick;
            if since_retention >= engine.options.maintenance_interval {
                since_retention = Duration::ZERO;
                let _ = engine.run_maintenance(engine.background_pass());
            }
        }
    })
}

impl Drop for Engine {
    fn drop(&mut self) {
        *self.inner.shutdown.lock() = true;
        self.inner.wake.notify_all();
        self.inner.move_tasks.stop();
        if let Some(handle) = self.maintenance.take() {
            let _ = handle.join();
        }
        let _ = self.inner.sync_logs(Pass::foreground());
    }
}
