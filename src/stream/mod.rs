//! Streams with Kinesis semantics: shards chosen by partition key, per-shard sequence numbers,
//! immutable records read through iterators, retention by age.
//!
//! A stream is a set of shards; each shard owns a contiguous range of the 128-bit hash-key
//! space and one [`Log`]. This module touches files only through `log`.

pub mod autoscale;
pub mod checkpoint;
pub mod consumer;
pub mod deliver;
pub mod fanout;
pub mod hash;
pub mod iterator;
pub mod limits;
pub mod reshard;
pub mod settings;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::RecordRef;
use crate::log::io::Vfs;
use crate::log::{Durability, Log, LogConfig};
use crate::signal::{ChangeSignal, Changed};
use checkpoint::CheckpointStore;
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, InitialPosition};
pub use deliver::{Delivery, DeliveryCompression, DeliveryConfig, DeliveryFormat};
pub use fanout::{ConsumerMeta, ConsumerStatus, FanoutRead, Subscription};
pub use iterator::{ReadBatch, ShardIterator, StartingPosition, StreamRecord};
pub use settings::{StreamEncryption, StreamMode, StreamOptions};
pub use stats::ShardStats;

/// Most records in one `put_batch`, as Kinesis's PutRecords.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes (data and partition keys) in one `put_batch`, as Kinesis's PutRecords.
pub const MAX_BATCH_BYTES: usize = 5 << 20;
// A shard's part of a batch is one frame: the largest batch must fit one a reader accepts.
const _: () = assert!(
    MAX_BATCH_BYTES + MAX_BATCH_RECORDS * crate::format::batch::RECORD_OVERHEAD
        <= crate::format::batch::MAX_PAYLOAD_LEN
);
/// Default largest record (data plus partition key), as Kinesis.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// Longest partition key, as Kinesis.
pub const MAX_PARTITION_KEY_LEN: usize = 256;
/// Most shards in one stream.
pub const MAX_SHARDS: u32 = 1024;
/// Shortest and longest retention, as Kinesis (24 hours to 365 days).
pub const MIN_RETENTION_MS: u64 = 24 * 3600 * 1000;
/// Longest retention.
pub const MAX_RETENTION_MS: u64 = 8760 * 3600 * 1000;

/// The durable description of a shard, kept in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Shard id, unique within the stream.
    pub id: u32,
    /// First hash key of the shard's range.
    #[serde(with = "hash::dec_u128")]
    pub hash_start: u128,
    /// Last hash key of the shard's range (inclusive).
    #[serde(with = "hash::dec_u128")]
    pub hash_end: u128,
    /// Shards this one was split or merged from.
    #[serde(default)]
    pub parents: Vec<u32>,
    /// False once split or merged: no more writes.
    pub open: bool,
    /// The first sequence number the shard hands out.
    #[serde(default)]
    pub initial_seq: u64,
    /// When the shard was created, by a stream's creation or a reshard (ms since the Unix
    /// epoch; 0 if weir did not keep it yet).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_ms: u64,
    /// When a reshard closed it (0 while open, or if weir did not keep it yet).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closed_ms: u64,
}

impl ShardMeta {
    /// True if the shard was open at `time_ms` (created at or before it, closed after it).
    pub fn open_at(&self, time_ms: u64) -> bool {
        self.created_ms <= time_ms && (self.open || self.closed_ms > time_ms)
    }
}

/// The durable description of a stream, kept in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    /// The stream's name.
    pub name: String,
    /// Records older than this are deleted (whole segments at a time).
    pub retention_ms: u64,
    /// Every shard, open or closed, by id.
    pub shards: Vec<ShardMeta>,
    /// Per-shard throughput limits as Kinesis provisions them (off by default).
    #[serde(default)]
    pub throughput_limits: bool,
    /// How many streams of this name the data directory had before this one (0 for the
    /// first). It names the stream's directory (see [`StreamMeta::dir_name`]), so that the
    /// files of a stream created again under a deleted one's name never meet the deleted
    /// one's: a handle to the deleted stream cannot reach them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub incarnation: u64,
    /// When the stream was created (ms since the Unix epoch; 0 for streams created before
    /// weir kept it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_ms: u64,
    /// Provisioned or on-demand capacity.
    #[serde(default, skip_serializing_if = "StreamMode::is_provisioned")]
    pub mode: StreamMode,
    /// Server-side encryption as the stream was asked for it (`None`: not encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<StreamEncryption>,
    /// Enhanced fan-out consumers, in registration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerMeta>,
    /// The stream's resource policy (a JSON policy document as Kinesis's PutResourcePolicy
    /// takes it), if it has one. The engine stores it; the server evaluates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StreamMeta {
    /// A new stream's description with `shards` shards splitting the hash-key space evenly.
    pub fn new(name: &str, shards: u32, retention_ms: u64) -> Result<StreamMeta> {
        if shards == 0 || shards > MAX_SHARDS {
            return Err(Error::InvalidArgument(format!("a stream needs 1 to {MAX_SHARDS} shards, not {shards}")));
        }
        if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&retention_ms) {
            return Err(Error::InvalidArgument(format!(
                "stream retention must be 24 to 8760 hours, not {} ms",
                retention_ms
            )));
        }
        let shards = hash::even_ranges(shards)
            .into_iter()
            .enumerate()
            .map(|(i, (hash_start, hash_end))| ShardMeta {
                id: i as u32,
                hash_start,
                hash_end,
                parents: Vec::new(),
                open: true,
                initial_seq: 0,
                created_ms: 0,
                closed_ms: 0,
            })
            .collect();
        Ok(StreamMeta {
            name: name.to_string(),
            retention_ms,
            shards,
            throughput_limits: false,
            incarnation: 0,
            created_ms: 0,
            mode: StreamMode::Provisioned,
            encryption: None,
            consumers: Vec::new(),
            policy: None,
        })
    }

    /// The open shards, in hash-key order.
    pub fn open_shards(&self) -> impl Iterator<Item = &ShardMeta> {
        let mut open: Vec<&ShardMeta> = self.shards.iter().filter(|s| s.open).collect();
        open.sort_by_key(|s| s.hash_start);
        open.into_iter()
    }

    /// The stream's directory under `DATA_DIR/streams/`: its name for the first stream of that
    /// name, `<name>@<incarnation>` for later ones (`@` is not allowed in names, so no stream's
    /// directory can be another's).
    pub fn dir_name(&self) -> String {
        match self.incarnation {
            0 => self.name.clone(),
            n => format!("{}@{n}", self.name),
        }
    }
}

/// One shard: its description and its log.
#[derive(Debug)]
pub struct Shard {
    /// The shard's description.
    pub meta: ShardMeta,
    pub(crate) log: Arc<Log>,
    /// Token buckets and the clock that refills them, when the stream has throughput limits.
    pub(crate) limits: Option<ShardLimiter>,
    /// The stream's: set once it is deleted, so iterators kept past that fail.
    deleted: Deleted,
    /// Traffic since the engine opened (see [`Shard::stats`]).
    pub(crate) counters: Arc<stats::ShardCounters>,
    /// Signalled by new records, by the reshard that closes the shard, and by the stream's
    /// deletion (see [`Shard::changed`]).
    pub(crate) signal: Arc<ChangeSignal>,
    /// Traffic into each half of the range (on-demand streams only) and the load samples
    /// the maintenance pass takes (see [`autoscale`]).
    pub(crate) halves: Arc<autoscale::HalfTraffic>,
    pub(crate) heat: Arc<parking_lot::Mutex<autoscale::Heat>>,
}

impl Shard {
    fn new(meta: ShardMeta, log: Log, limits: Option<ShardLimiter>, deleted: Deleted) -> Shard {
        Shard {
            meta,
            log: Arc::new(log),
            limits,
            deleted,
            counters: Default::default(),
            signal: Default::default(),
            halves: Default::default(),
            heat: Default::default(),
        }
    }

    /// The shard's log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// A future that completes once something that may matter to a reader caught up with the
    /// shard happened after it was created: records appended, the shard closed by a split or
    /// merge (its readers go on to its children), or the stream deleted. Create it before a
    /// read that found nothing, then await it: no thread waits.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_stream("events", 1, None)?;
    /// let stream = engine.stream("events")?;
    /// let mut changed = Box::pin(stream.shard(0)?.changed());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(changed.as_mut().poll(&mut cx), Poll::Pending);
    /// stream.put(b"k", b"v")?;
    /// assert_eq!(changed.as_mut().poll(&mut cx), Poll::Ready(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn changed(&self) -> Changed {
        self.signal.changed()
    }

    /// Reads up to `limit` records from `from` (at most `max_bytes`) without the shard's
    /// shared read limit: for a reader with a rate of its own (enhanced fan-out).
    pub(crate) fn read_dedicated(
        &self,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<crate::format::Record>> {
        self.deleted.check()?;
        let records = self.log.read(from, limit, max_bytes)?;
        self.counters.read(records.len(), records.iter().map(|r| r.key.len() + r.value.len()).sum());
        Ok(records)
    }

    /// Reads up to `limit` records from `from` (at most 10 MiB), within the shard's read limit
    /// when it has one.
    pub(crate) fn read_limited(&self, from: u64, limit: usize) -> Result<Vec<crate::format::Record>> {
        self.deleted.check()?;
        let Some((clock, limits)) = &self.limits else {
            let records = self.log.read(from, limit, iterator::MAX_BYTES_PER_READ)?;
            self.counters.read(records.len(), records.iter().map(|r| r.key.len() + r.value.len()).sum());
            return Ok(records);
        };
        let now = clock.now_ms();
        limits.lock().admit_read(self.meta.id, now)?;
        let records = self.log.read(from, limit, iterator::MAX_BYTES_PER_READ)?;
        let bytes = records.iter().map(|r| r.key.len() + r.value.len()).sum();
        limits.lock().charge_read(bytes, now);
        self.counters.read(records.len(), bytes);
        Ok(records)
    }
}

/// Where a put landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PutResult {
    /// The shard.
    pub shard: u32,
    /// The record's sequence number in that shard.
    pub seq: u64,
}

/// One record of a [`Stream::put_batch`].
#[derive(Debug, Clone, Copy)]
pub struct PutRecord<'a> {
    /// Chooses the shard (through its MD5) and orders records: same key, same order.
    pub partition_key: &'a [u8],
    /// The data.
    pub data: &'a [u8],
    /// Overrides the hash of the partition key.
    pub explicit_hash_key: Option<u128>,
}

/// A summary of a shard for `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardDescription {
    /// Shard id.
    pub id: u32,
    /// First hash key, decimal.
    pub hash_start: String,
    /// Last hash key, decimal.
    pub hash_end: String,
    /// Oldest stored sequence number, if any record is stored.
    pub first_seq: Option<u64>,
    /// Newest sequence number, if any record is stored.
    pub last_seq: Option<u64>,
    /// Parent shards.
    pub parents: Vec<u32>,
    /// Whether the shard takes writes.
    pub open: bool,
}

/// A summary of a stream for `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamDescription {
    /// The stream's name.
    pub name: String,
    /// Retention in hours.
    pub retention_hours: u64,
    /// Its shards.
    pub shards: Vec<ShardDescription>,
}

/// How a stream is opened: everything that comes from the engine's options.
#[derive(Debug, Clone)]
pub struct StreamEnv {
    /// The file system.
    pub vfs: Arc<dyn Vfs>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Log layout and durability.
    pub log_config: LogConfig,
    /// Largest record (data plus partition key).
    pub max_record_bytes: usize,
    /// Keeps the data directory's lock held: a handle that outlives its engine keeps the
    /// directory locked for as long as it can write. (Opaque, so models need not know the
    /// engine's lock type.)
    pub lock: Arc<dyn std::any::Any + Send + Sync>,
}

/// An open stream.
#[derive(Debug)]
pub struct Stream {
    meta: RwLock<StreamMeta>,
    shards: RwLock<BTreeMap<u32, Arc<Shard>>>,
    dir: PathBuf,
    env: StreamEnv,
    /// Puts hold it shared while they choose a shard and append; a reshard holds it exclusively.
    reshard: RwLock<()>,
    checkpoints: CheckpointStore,
    leases: parking_lot::Mutex<consumer::LeaseTable>,
    deleted: Deleted,
    /// Enhanced fan-out consumers' places on shards (read buckets, current subscriptions).
    fanout: fanout::Slots,
}

/// Whether a stream was deleted, shared by the stream and its shards (which iterators hold).
#[derive(Debug, Clone)]
pub(crate) struct Deleted {
    flag: Arc<std::sync::atomic::AtomicBool>,
    name: String,
}

impl Deleted {
    fn new(name: &str) -> Deleted {
        Deleted { flag: Arc::default(), name: name.to_string() }
    }

    /// Fails once the stream is deleted: a handle kept past that reaches nothing, not even a
    /// stream created since under the same name.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_set() {
            return Err(Error::Closed(format!("this handle to deleted stream {:?}", self.name)));
        }
        Ok(())
    }

    fn is_set(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A shard's token buckets with the clock that refills them.
pub(crate) type ShardLimiter = (Arc<dyn Clock>, Arc<parking_lot::Mutex<limits::ShardLimits>>);

fn shard_limits(meta: &StreamMeta, env: &StreamEnv) -> Option<ShardLimiter> {
    meta.throughput_limits.then(|| {
        let buckets = limits::ShardLimits::new(env.clock.now_ms());
        (Arc::clone(&env.clock), Arc::new(parking_lot::Mutex::new(buckets)))
    })
}

/// Waits until every `(shard, next_seq)` written is durable. Under `Always` each shard's log
/// runs its own fsync: those run at once, on scoped threads (at most [`PARALLEL_SYNCS`]), so a
/// batch over many shards waits about one fsync, not one per shard.
fn wait_all_durable(written: &[(&Shard, u64)]) -> Result<()> {
    let always = written.first().is_some_and(|(s, _)| s.log.config().durability == Durability::Always);
    if written.len() < 2 || !always {
        return written.iter().try_for_each(|(shard, next)| shard.log.wait_durable(*next));
    }
    let per_thread = written.len().div_ceil(PARALLEL_SYNCS);
    std::thread::scope(|scope| {
        let mut chunks = written.chunks(per_thread);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|(shard, next)| shard.log.wait_durable(*next))))
            .collect();
        let mut result = first.iter().try_for_each(|(shard, next)| shard.log.wait_durable(*next));
        for handle in others {
            // A panic there is a bug: it goes on as if it had happened on this thread.
            let joined = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result = result.and(joined);
        }
        result
    })
}

/// At most this many fsyncs of one put run at once.
const PARALLEL_SYNCS: usize = 8;

/// The first hash key of the upper child when `shard` splits in the middle of its range.
pub(crate) fn split_point(shard: &ShardMeta) -> u128 {
    shard.hash_start.saturating_add((shard.hash_end - shard.hash_start) / 2 + 1)
}

/// Directory of a shard's log within its stream's directory.
pub fn shard_dir(stream_dir: &Path, shard: u32) -> PathBuf {
    stream_dir.join(format!("shard-{shard:06}"))
}

impl Stream {
    /// Opens (or creates) the logs of every shard of `meta` under `dir`.
    pub fn open(dir: &Path, meta: StreamMeta, env: StreamEnv) -> Result<Stream> {
        let deleted = Deleted::new(&meta.name);
        let mut shards = BTreeMap::new();
        for shard in &meta.shards {
            let log = Log::open(env.vfs.clone(), &shard_dir(dir, shard.id), env.log_config.clone(), shard.initial_seq)?;
            let limits = shard_limits(&meta, &env);
            let shard = Shard::new(shard.clone(), log, limits, deleted.clone());
            shards.insert(shard.meta.id, Arc::new(shard));
        }
        let checkpoints = CheckpointStore::open(
            env.vfs.clone(),
            &dir.join("checkpoints"),
            env.log_config.durability,
            env.log_config.encryption.clone(),
        )?;
        let ends = shards.iter().map(|(&id, shard)| (id, shard.log.next_seq())).collect();
        checkpoints.clamp_to_ends(&ends, env.clock.now_ms())?;
        Ok(Stream {
            meta: RwLock::new(meta),
            shards: RwLock::new(shards),
            dir: dir.to_path_buf(),
            env,
            reshard: RwLock::new(()),
            checkpoints,
            leases: parking_lot::Mutex::new(consumer::LeaseTable::default()),
            deleted,
            fanout: fanout::Slots::default(),
        })
    }

    fn open_shard_log(&self, meta: &ShardMeta) -> Result<Shard> {
        let log = Log::open(
            self.env.vfs.clone(),
            &shard_dir(&self.dir, meta.id),
            self.env.log_config.clone(),
            meta.initial_seq,
        )?;
        let limits = shard_limits(&self.meta.read(), &self.env);
        Ok(Shard::new(meta.clone(), log, limits, self.deleted.clone()))
    }

    /// Replaces the stream's description with `meta` (the same shard map, other settings),
    /// once the catalog recorded it: the engine's stream changes call this under the catalog
    /// lock, which reshards hold too.
    pub(crate) fn set_meta(&self, meta: StreamMeta) {
        debug_assert_eq!(meta.shards, self.meta.read().shards, "settings changes keep the shard map");
        let gone: Vec<String> = {
            let old = self.meta.read();
            old.consumers.iter().filter(|c| !meta.consumers.contains(c)).map(|c| c.name.clone()).collect()
        };
        *self.meta.write() = meta;
        for name in gone {
            self.fanout.forget(&name);
        }
    }

    /// The shards that shard `id` was split or merged into (none while it is open).
    pub fn child_shards(&self, id: u32) -> Vec<ShardMeta> {
        self.meta.read().shards.iter().filter(|s| s.parents.contains(&id)).cloned().collect()
    }

    /// One past the last sequence number of shard `id` once it is closed (every record of a
    /// closed shard is durable), `None` while it is open.
    pub fn shard_end(&self, id: u32) -> Result<Option<u64>> {
        let shard = self.shard(id)?;
        Ok((!shard.meta.open).then(|| shard.log.next_seq()))
    }
    /// The stream's current description (shard map included).
    pub fn meta(&self) -> StreamMeta {
        self.meta.read().clone()
    }

    /// Refuses every later call, through this handle and every consumer, iterator and
    /// delivery made from it: the stream was deleted (its handles may live on in callers).
    /// Waits for puts and reshards under way.
    pub(crate) fn mark_deleted(&self) {
        let _exclusive = self.reshard.write();
        self.deleted.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        for shard in self.shards.read().values() {
            shard.signal.close();
        }
    }

    /// True once the stream was deleted.
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.is_set()
    }

    /// Fails once the stream was deleted.
    pub(crate) fn check_live(&self) -> Result<()> {
        self.deleted.check()
    }

    /// The stream's name.
    pub fn name(&self) -> String {
        self.meta.read().name.clone()
    }

    /// The stream's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shard whose open range holds `hash`.
    /// The open shards, ordered by hash range, for routing one put (under the reshard lock,
    /// so they stay open while it runs).
    fn open_shards(&self) -> Vec<Arc<Shard>> {
        let mut open: Vec<Arc<Shard>> = self.shards.read().values().filter(|s| s.meta.open).cloned().collect();
        open.sort_by_key(|s| s.meta.hash_start);
        open
    }

    /// The open shard whose range holds the record's hash key. A stream with one open shard
    /// owning every key skips the MD5 of the partition key (it was the top of the put profile).
    fn route(&self, open: &[Arc<Shard>], r: &PutRecord<'_>) -> Result<Arc<Shard>> {
        if let [only] = open {
            if only.meta.hash_start == 0 && only.meta.hash_end == u128::MAX {
                return Ok(Arc::clone(only));
            }
        }
        self.route_hash(open, r.explicit_hash_key.unwrap_or_else(|| hash::hash_key(r.partition_key)))
    }

    /// The open shard whose range holds `hash`.
    fn route_hash(&self, open: &[Arc<Shard>], hash: u128) -> Result<Arc<Shard>> {
        let i = open.partition_point(|s| s.meta.hash_end < hash);
        open.get(i)
            .filter(|s| s.meta.hash_start <= hash)
            .cloned()
            .ok_or_else(|| Error::corrupt(&self.dir, 0, format!("no open shard owns hash key {hash}")))
    }

    /// A shard by id.
    pub fn shard(&self, id: u32) -> Result<Arc<Shard>> {
        self.shards
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "shard", name: format!("{}/{id}", self.name()) })
    }

    /// Every shard, by id.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.shards.read().values().cloned().collect()
    }

    /// Checks one record against the partition-key and size limits, as a put would.
    pub fn check_record(&self, r: &PutRecord<'_>) -> Result<()> {
        if r.partition_key.is_empty() || r.partition_key.len() > MAX_PARTITION_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "partition key must be 1 to {MAX_PARTITION_KEY_LEN} bytes, not {}",
                r.partition_key.len()
            )));
        }
        let size = r.data.len() + r.partition_key.len();
        if size > self.env.max_record_bytes {
            return Err(Error::TooLarge {
                what: "record (data plus partition key)",
                size,
                limit: self.env.max_record_bytes,
            });
        }
        Ok(())
    }

    /// Puts one record; returns once it is durable under the engine's durability mode.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_stream("events", 1, None)?;
    /// let put = engine.stream("events")?.put(b"user-7", b"clicked")?;
    /// assert_eq!((put.shard, put.seq), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, partition_key: &[u8], data: &[u8]) -> Result<PutResult> {
        let results = self.put_batch(&[PutRecord { partition_key, data, explicit_hash_key: None }])?;
        results.into_iter().next().ok_or_else(|| Error::InvalidArgument("empty put".into()))
    }

    /// Puts up to 500 records (5 MiB in all). Records with the same partition key keep their
    /// order. Each shard's records are appended as one frame and all shards are synced before
    /// the call returns. If a shard's append fails, the call fails; records already appended to
    /// other shards stay (at-least-once, as Kinesis's PutRecords on retry).
    pub fn put_batch(&self, records: &[PutRecord<'_>]) -> Result<Vec<PutResult>> {
        self.put_grouped(records, false)?.into_iter().collect()
    }

    /// Puts up to 500 records (5 MiB in all), each on its own as Kinesis's PutRecords does:
    /// the records of a shard over its throughput limit fail with
    /// [`Error::ThroughputExceeded`] and the others are written. The call as a whole fails for
    /// a request that is wrong as a whole (too many records, a record over its limit) or
    /// when an append fails.
    pub fn put_each(&self, records: &[PutRecord<'_>]) -> Result<Vec<Result<PutResult>>> {
        self.put_grouped(records, true)
    }

    fn put_grouped(&self, records: &[PutRecord<'_>], partial: bool) -> Result<Vec<Result<PutResult>>> {
        if records.is_empty() || records.len() > MAX_BATCH_RECORDS {
            return Err(Error::InvalidArgument(format!(
                "a batch holds 1 to {MAX_BATCH_RECORDS} records, not {}",
                records.len()
            )));
        }
        let mut total = 0usize;
        for r in records {
            self.check_record(r)?;
            total += r.data.len() + r.partition_key.len();
        }
        if total > MAX_BATCH_BYTES {
            return Err(Error::TooLarge { what: "batch", size: total, limit: MAX_BATCH_BYTES });
        }
        // No reshard may close a shard between choosing it and appending to it.
        let _shared = self.reshard.read();
        self.check_live()?;
        let on_demand = self.meta.read().mode == StreamMode::OnDemand;
        // Group by shard, keeping the caller's order inside each group.
        let mut groups: BTreeMap<u32, (Arc<Shard>, Vec<usize>)> = BTreeMap::new();
        let open = self.open_shards();
        for (i, r) in records.iter().enumerate() {
            let shard = if on_demand {
                // The half of the shard's range the key falls in feeds the autoscaler.
                let hash = r.explicit_hash_key.unwrap_or_else(|| hash::hash_key(r.partition_key));
                let shard = self.route_hash(&open, hash)?;
                shard.halves.add(hash >= split_point(&shard.meta), r.data.len() + r.partition_key.len());
                shard
            } else {
                self.route(&open, r)?
            };
            groups.entry(shard.meta.id).or_insert_with(|| (shard, Vec::new())).1.push(i);
        }
        let now = self.env.clock.now_ms();
        let mut results: Vec<Result<PutResult>> = Vec::with_capacity(records.len());
        results.resize_with(records.len(), || Ok(PutResult { shard: 0, seq: 0 }));
        let mut refused = Vec::new();
        for (shard_id, (shard, indexes)) in &groups {
            // On-demand streams grow instead of refusing writes.
            let Some((_, limits)) = shard.limits.as_ref().filter(|_| !on_demand) else { continue };
            let bytes = indexes.iter().map(|&i| records[i].data.len() + records[i].partition_key.len()).sum();
            if let Err(e) = limits.lock().admit_write(*shard_id, indexes.len(), bytes, now) {
                if !partial {
                    return Err(e);
                }
                for &i in indexes {
                    results[i] = Err(Error::ThroughputExceeded(e.to_string()));
                }
                refused.push(*shard_id);
            }
        }
        // Every shard's frame is written first, then all of them are waited for together: one
        // shard after the other, a batch over N shards waited for N fsyncs in a row.
        let mut written: Vec<(&Shard, u64)> = Vec::with_capacity(groups.len());
        for (shard_id, (shard, indexes)) in groups.iter().filter(|(id, _)| !refused.contains(id)) {
            let refs: Vec<RecordRef<'_>> =
                indexes.iter().map(|&i| RecordRef { key: records[i].partition_key, value: records[i].data }).collect();
            let outcome = shard.log.write(&refs, now)?;
            shard.counters.wrote(refs.len(), refs.iter().map(|r| r.key.len() + r.value.len()).sum());
            written.push((shard, outcome.next_seq));
            for (k, &i) in indexes.iter().enumerate() {
                results[i] = Ok(PutResult { shard: *shard_id, seq: outcome.base_seq + k as u64 });
            }
        }
        wait_all_durable(&written)?;
        for (shard, _) in &written {
            shard.signal.notify();
        }
        Ok(results)
    }

    /// An iterator over one shard from `start`.
    pub fn iterator(&self, shard: u32, start: StartingPosition) -> Result<ShardIterator> {
        self.check_live()?;
        ShardIterator::new(self.shard(shard)?, start)
    }

    /// The stream's shards with their ranges and stored sequence numbers.
    pub fn describe(&self) -> StreamDescription {
        let meta = self.meta.read().clone();
        let shards = self.shards.read();
        let shards = meta
            .shards
            .iter()
            .map(|m| {
                let (first, next) = shards.get(&m.id).map_or((0, 0), |s| (s.log.first_seq(), s.log.end_of_records()));
                ShardDescription {
                    id: m.id,
                    hash_start: m.hash_start.to_string(),
                    hash_end: m.hash_end.to_string(),
                    first_seq: (first < next).then_some(first),
                    last_seq: (first < next).then(|| next - 1),
                    parents: m.parents.clone(),
                    open: m.open,
                }
            })
            .collect();
        StreamDescription { name: meta.name, retention_hours: meta.retention_ms / 3_600_000, shards }
    }

    /// Deletes segments whose records are all older than the retention period. Returns the
    /// number of segments deleted. A shard that fails does not keep the others from their
    /// retention; the first error is returned after all of them had their turn.
    pub fn enforce_retention(&self) -> Result<usize> {
        self.check_live()?;
        let cutoff = self.retention_cutoff_ms();
        let mut deleted = 0;
        let mut first_error = None;
        for shard in self.shards() {
            match shard.log.delete_older_than(cutoff) {
                Ok(n) => deleted += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(deleted), Err)
    }

    /// Records appended before this time have outlived the stream's retention.
    pub(crate) fn retention_cutoff_ms(&self) -> u64 {
        self.env.clock.now_ms().saturating_sub(self.meta.read().retention_ms)
    }

    /// Calls `f` with every log of the stream: each shard's, then the checkpoints'.
    pub(crate) fn for_each_log(&self, f: &mut dyn FnMut(&Log)) {
        for shard in self.shards() {
            f(&shard.log);
        }
        f(self.checkpoints.log());
    }

    /// Syncs every shard and the checkpoints (the periodic sync of `Interval` durability). A
    /// log that fails does not keep the others from being synced; the first error is returned.
    pub fn flush(&self) -> Result<()> {
        self.check_live()?;
        let mut first_error = None;
        self.for_each_log(&mut |log| {
            if let Err(e) = log.flush() {
                first_error.get_or_insert(e);
            }
        });
        first_error.map_or(Ok(()), Err)
    }
}
