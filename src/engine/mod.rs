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
//! DATA_DIR/firehose/<name>[@N]/       the backing stream of a delivery stream
//! ```

pub mod catalog;
pub mod delivery_streams;
pub mod encryption;
mod exchanges;
pub mod health;
#[cfg(test)]
mod interleavings;
pub mod lock;
mod move_tasks;
mod queue_admin;
mod stream_admin;
pub mod tags;
pub mod tokens;
mod topic_admin;
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
use crate::log::keys::LogEncryption;
pub use crate::log::Durability;
use crate::log::LogConfig;
use crate::names;
use crate::queue::store::{IndexRecovery, QueueDef, QueueStore, SnapshotTrigger, StoreEnv};
use crate::queue::{Queue, QueueAttributes, QueueConfig, RedriveResult};
use crate::stream::{
    Stream, StreamDescription, StreamEnv, StreamMeta, StreamOptions, DEFAULT_MAX_RECORD_BYTES, MIN_RETENTION_MS,
};
use crate::topic::{TopicCell, TopicEnv};
use catalog::{Catalog, CatalogRecord};
pub use encryption::{KeySource, RekeyReport};
pub use exchanges::Delivery;
use health::{FailureBook, Pass};
pub use health::{Health, LogFailure};
use lock::DirLock;
pub use stream_admin::MAX_STREAM_POLICY_BYTES;

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
    /// Write the snapshot of the queue indexes when the engine closes (unless only a few
    /// records follow the last one: [`CLOSE_TAIL_RECORDS`](crate::queue::store::CLOSE_TAIL_RECORDS)),
    /// so the next open replays little of the message log. Default: yes. Tests that stand for
    /// a crash with a clean close turn it off.
    pub snapshot_on_close: bool,
    /// Encryption at rest: the key file of an encrypted data directory. A directory created
    /// with a key is encrypted from then on (see [`KeySource`]). Default: none (plain).
    pub key_source: Option<KeySource>,
    /// How long one data key seals a log's frames before its writer makes a new one, by the
    /// engine clock: 1 minute to 24 hours, as SQS's `KmsDataKeyReusePeriodSeconds`. Default: 5
    /// minutes.
    pub data_key_reuse_period: Duration,
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
            snapshot_on_close: true,
            key_source: None,
            data_key_reuse_period: Duration::from_millis(crate::log::keys::DEFAULT_REUSE_PERIOD_MS),
        }
    }
}

impl Options {
    fn log_config(&self, encryption: &Option<Arc<LogEncryption>>) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: 4096,
            durability: self.durability,
            compression: self.compression,
            preallocate: true,
            encryption: encryption.clone(),
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
    /// What every topic shares: the envelope context and signing key.
    topic_env: Arc<TopicEnv>,
    next_callback: std::sync::atomic::AtomicU64,
    shutdown: Mutex<bool>,
    wake: Condvar,
    lock: Arc<DirLock>,
    /// What the maintenance thread failed at, per log.
    failures: FailureBook,
    move_tasks: move_tasks::MoveTasks,
    delivery_streams: delivery_streams::Registry,
    /// How every log is encrypted, if the directory is.
    encryption: Option<Arc<LogEncryption>>,
    /// Seals and opens the opaque tokens of [`Engine::seal_token`].
    tokens: tokens::TokenKey,
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
        let fresh = !catalog_was_there && !holds_data(&options, &dir);
        let encryption = encryption::open_encryption(
            options.vfs.as_ref(),
            &dir,
            options.key_source.as_ref(),
            options.data_key_reuse_period,
            fresh,
        )?;
        // A log whose data keys the key file lacks names the log: the error names the directory.
        let in_dir = |e: Error| match e {
            Error::WrongKey { detail, .. } => Error::WrongKey { dir: dir.clone(), detail },
            other => other,
        };
        let mut catalog =
            Catalog::open(options.vfs.clone(), &dir.join("catalog"), encryption.clone()).map_err(in_dir)?;
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
            let stream_dir = dir.join("streams").join(meta.dir_name());
            let stream = Stream::open(&stream_dir, meta, stream_env(&options, &lock, &encryption)).map_err(in_dir)?;
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
            log_config: options.log_config(&encryption),
            clock: options.clock.clone(),
            secret,
            lock: Arc::clone(&lock) as Arc<dyn std::any::Any + Send + Sync>,
        };
        let queues = QueueStore::open(
            &dir.join("queues"),
            store_env,
            queue_defs,
            state.topics.values().filter(|t| t.config.fifo).map(|t| t.id).collect(),
        )
        .map_err(in_dir)?;
        let move_tasks = move_tasks::MoveTasks::resume(
            catalog.state(),
            &queues.take_replayed_move_progress(),
            options.clock.now_ms(),
        );
        let delivery_streams = delivery_streams::open_all(&dir, &state.delivery_streams, &options, &lock, &encryption)?;
        let mut topics = BTreeMap::new();
        for (name, entry) in &state.topics {
            let cell = TopicCell::with_attributes(entry.id, name.clone(), entry.config, entry.attributes.clone());
            for sub in &entry.subscriptions {
                cell.add_durable(sub)?;
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
            topic_env: Arc::new(TopicEnv::new(&secret)),
            next_callback: std::sync::atomic::AtomicU64::new(1),
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
            lock,
            failures: FailureBook::default(),
            move_tasks,
            delivery_streams,
            encryption,
            tokens: tokens::TokenKey::new(&secret),
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
        let options = StreamOptions { retention, throughput_limits, ..StreamOptions::new(shards) };
        self.create_stream_meta(name, &options)
    }

    fn create_stream_meta(&self, name: &str, options: &StreamOptions) -> Result<()> {
        names::validate_stream_name(name)?;
        let retention_ms = options.retention.map_or(MIN_RETENTION_MS, |d| d.as_millis().try_into().unwrap_or(u64::MAX));
        let mut meta = StreamMeta::new(name, options.shards, retention_ms)?;
        meta.throughput_limits = options.throughput_limits;
        meta.mode = options.mode;
        meta.created_ms = self.inner.options.clock.now_ms();
        for shard in &mut meta.shards {
            shard.created_ms = meta.created_ms;
        }
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
        let stream = Stream::open(
            &dir,
            meta.clone(),
            stream_env(&self.inner.options, &self.inner.lock, &self.inner.encryption),
        )?;
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
        let cell = names::find_named("queue", name, || self.inner.queues.cell(name))?;
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

    /// Wakes every long poll so it rereads the clock: for tests that move a manual clock.
    pub fn notify_clock_advanced(&self) {
        self.inner.queues.wake_all();
    }

    fn stream_dir(&self, meta: &StreamMeta) -> PathBuf {
        self.inner.dir.join("streams").join(meta.dir_name())
    }

    /// Runs one round of maintenance now: retention on every stream shard, then retention and
    /// compaction of the message log, then every message move task as far as its rate allows
    /// by now, then the on-demand streams' splits and merges (see
    /// [`crate::stream::autoscale`]). The background thread calls this periodically; tests driving a manual clock
    /// call it directly. Every log has its turn whatever the others do; the first error is
    /// returned.
    pub fn run_maintenance(&self) -> Result<()> {
        self.inner.run_maintenance(Pass::foreground())
    }

    /// Writes a snapshot of every queue's index now (the engine writes one by itself when it
    /// closes and, in maintenance, once the message log has grown long since the last one), so
    /// the next open loads it and replays only the records written after it. An encrypted
    /// directory keeps no snapshot (it would hold queue names and ids in the clear):
    /// `Error::InvalidArgument` there.
    pub fn snapshot_queues(&self) -> Result<()> {
        self.inner.queues.write_snapshot().map(|_| ())
    }

    /// How this open rebuilt the queue indexes: the snapshot it loaded (and its position), the
    /// snapshots it ignored and why, and how many records of the message log it replayed.
    pub fn queue_index_recovery(&self) -> &IndexRecovery {
        self.inner.queues.index_recovery()
    }

    /// Every queue's index, one line per message, field by field (tests compare it with
    /// [`Engine::replayed_queue_index_dump`]).
    #[doc(hidden)]
    pub fn queue_index_dump(&self) -> String {
        self.inner.queues.index_dump()
    }

    /// The same dump of the indexes a full replay of the message log builds now.
    #[doc(hidden)]
    pub fn replayed_queue_index_dump(&self) -> Result<String> {
        self.inner.queues.replayed_index_dump()
    }

    /// Syncs every log (useful before a planned shutdown under `Interval` or `Never`; dropping
    /// the engine does the same). A log that fails does not keep the others from being
    /// synced; the first error is returned.
    pub fn flush(&self) -> Result<()> {
        self.inner.sync_logs(Pass::foreground())
    }

    /// True if the data directory is encrypted at rest: every frame of every log (every queue,
    /// topic and stream, whatever their encryption attributes say) is sealed under data keys
    /// wrapped by the key file's keys.
    pub fn encrypted_at_rest(&self) -> bool {
        self.inner.encryption.is_some()
    }

    /// Wraps every data key of every log (the catalog, the message log, every stream shard and
    /// checkpoint log) under the key file's newest version, without rewriting any data, then
    /// seals the directory's `ENCRYPTION` check under it too. Each file is replaced atomically,
    /// so a crash at any point leaves a directory that opens with a key file holding the old and
    /// the new version; once this returns, the older versions can leave the key file. Fails
    /// with [`Error::InvalidArgument`] on a plain directory.
    pub fn rekey(&self) -> Result<RekeyReport> {
        let Some(encryption) = &self.inner.encryption else {
            return Err(Error::InvalidArgument(format!(
                "{} is not encrypted: nothing to rekey",
                self.inner.dir.display()
            )));
        };
        let mut report = RekeyReport {
            key_version: encryption.keyring().newest().name().to_string(),
            logs_rewritten: 0,
            data_keys_rewrapped: 0,
            logs: 0,
        };
        let mut first_error = None;
        let mut rekey = |log: &crate::log::Log| {
            report.logs += 1;
            match log.rekey() {
                Ok(0) => {}
                Ok(n) => {
                    report.logs_rewritten += 1;
                    report.data_keys_rewrapped += n;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        };
        rekey(self.inner.catalog.lock().log());
        self.inner.for_each_log(&mut rekey);
        if let Some(e) = first_error {
            return Err(e);
        }
        encryption::write_marker(self.inner.options.vfs.as_ref(), &self.inner.dir, encryption.keyring())?;
        Ok(report)
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
        let delivery_streams: Vec<_> = self.delivery_streams.read().values().cloned().collect();
        for d in &delivery_streams {
            d.for_each_log(f);
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
        let delivery_streams: Vec<_> = self.delivery_streams.read().values().cloned().collect();
        for d in delivery_streams.iter().filter(|d| !d.is_deleted()) {
            // Delivered records go; a delivery stream deleted meanwhile took its files along.
            let outcome = d.drop_delivered().map(|_| ());
            if !d.is_deleted() {
                pass.check(d.dir(), "dropping delivered records", outcome);
            }
        }
        self.run_move_tasks();
        pass.check(&self.dir.join("streams"), "on-demand scaling", self.autoscale());
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

fn stream_env(options: &Options, lock: &Arc<DirLock>, encryption: &Option<Arc<LogEncryption>>) -> StreamEnv {
    StreamEnv {
        vfs: options.vfs.clone(),
        clock: options.clock.clone(),
        log_config: options.log_config(encryption),
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
        if self.inner.options.snapshot_on_close && !self.inner.queues.log().is_poisoned() {
            if let Err(e) = self.inner.queues.snapshot_if_due(SnapshotTrigger::Close) {
                eprintln!("weir: could not write the queue snapshot at close: {e}");
            }
        }
    }
}
