//! Delivery streams, as Amazon Data Firehose's (DirectPut): records put to a delivery stream
//! are buffered durably and delivered in batches to a destination, a directory (files, as
//! Firehose writes S3 objects) or an HTTP endpoint (POSTs in Firehose's HTTP endpoint
//! delivery format, with a backup directory for what the endpoint does not take).
//!
//! A delivery stream is backed by a stream of its own with one shard, kept outside the
//! streams' namespace (`DATA_DIR/firehose/<name>[@N]/`, never listed as a stream). A put is
//! acknowledged once that stream has it durably; deliveries read it as consumer groups whose
//! durable checkpoints say what was delivered, so a restart resumes where delivery stopped
//! (at least once: at worst the batch whose outcome was not recorded is delivered again).
//! Delivered records are dropped whole segments at a time by maintenance.
//!
//! Layering: this model sits on `stream` (as `topic` sits on `queue`); the engine keeps
//! delivery streams in its catalog (`engine::delivery_streams`).

pub mod backup;
pub mod config;
pub mod http;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::{
    BackupMode, Buffering, ContentEncoding, DeliveryStreamConfig, Destination, DirectoryDestination, FileCompression,
    HttpDestination,
};
pub use http::{HttpDelivery, HttpOutcome, HttpRequest, Recorded, Step};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::io::Vfs;
use crate::stream::{
    ConsumerConfig, Delivery, DeliveryCompression, DeliveryConfig, DeliveryFormat, PutRecord, Stream, StreamMeta,
    MAX_RETENTION_MS,
};

/// Longest delivery stream name, as Firehose.
pub const MAX_NAME_LEN: usize = 64;
/// Largest record, as Firehose: 1,000 KiB.
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// Most records in one [`DeliveryStream::put_batch`], as Firehose's PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes of data in one [`DeliveryStream::put_batch`], as Firehose's PutRecordBatch.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// The consumer group of a directory destination.
pub const DIRECTORY_GROUP: &str = "firehose-directory";
/// The consumer group of an HTTP endpoint.
pub const HTTP_GROUP: &str = "firehose-http";
/// The consumer group that copies every record to an HTTP endpoint's backup directory
/// ([`BackupMode::AllData`]).
pub const BACKUP_GROUP: &str = "firehose-backup";

/// The partition key of every record of a delivery stream's backing stream (one shard; the
/// key only has to be there).
const PARTITION_KEY: &[u8] = b"r";
/// A delivery's lease on its shard: the delivery is the group's only worker, and may wait
/// minutes between polls (a retry's backoff), so its lease must not lapse meanwhile.
const DELIVERY_LEASE_MS: u64 = 365 * 24 * 3600 * 1000;

/// A delivery stream as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStreamDef {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: DeliveryStreamConfig,
    /// The backing stream (one shard; its `incarnation` names the directory).
    pub stream: StreamMeta,
    /// When it was created (ms since the Unix epoch; part of its record ids).
    pub created_ms: u64,
}

impl DeliveryStreamDef {
    /// A new delivery stream's description.
    pub fn new(name: &str, config: DeliveryStreamConfig, incarnation: u64, created_ms: u64) -> Result<Self> {
        validate_name(name)?;
        config.validate()?;
        let mut stream = StreamMeta::new(name, 1, MAX_RETENTION_MS)?;
        stream.incarnation = incarnation;
        Ok(DeliveryStreamDef { name: name.to_string(), config, stream, created_ms })
    }

    /// Its directory under `DATA_DIR/firehose/`.
    pub fn dir_name(&self) -> String {
        self.stream.dir_name()
    }

    /// The consumer groups whose checkpoints say what was delivered.
    pub fn groups(&self) -> &'static [&'static str] {
        match &self.config.destination {
            Destination::Directory(_) => &[DIRECTORY_GROUP],
            Destination::Http(h) if h.backup_mode == BackupMode::AllData => &[HTTP_GROUP, BACKUP_GROUP],
            Destination::Http(_) => &[HTTP_GROUP],
        }
    }
}

/// Delivery stream names: 1-64 characters of `[A-Za-z0-9_.-]`, as Firehose (and not `.` or
/// `..`, which would name directories).
pub fn validate_name(name: &str) -> Result<()> {
    let reject =
        |reason: String| Error::InvalidName { kind: "delivery stream", name: name.chars().take(64).collect(), reason };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(reject(format!("must be 1 to {MAX_NAME_LEN} characters long")));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(reject(format!("may contain only A-Z, a-z, 0-9, '_', '.' and '-', not {c:?}")));
    }
    if name == "." || name == ".." {
        return Err(reject("may not be '.' or '..'".into()));
    }
    Ok(())
}

/// How far a delivery stream's deliveries are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    /// Records put and not yet delivered (nor backed up) by every delivery.
    pub pending_records: u64,
    /// Records put since it was created (still stored or not).
    pub records_put: u64,
    /// Per consumer group: the last record it delivered, if any.
    pub delivered_through: Vec<(String, Option<u64>)>,
}

/// An open delivery stream. Cheap to share.
#[derive(Debug)]
pub struct DeliveryStream {
    def: DeliveryStreamDef,
    stream: Arc<Stream>,
    vfs: Arc<dyn Vfs>,
    clock: Arc<dyn Clock>,
}

impl DeliveryStream {
    /// A delivery stream over its opened backing stream.
    pub(crate) fn new(
        def: DeliveryStreamDef,
        stream: Arc<Stream>,
        vfs: Arc<dyn Vfs>,
        clock: Arc<dyn Clock>,
    ) -> DeliveryStream {
        DeliveryStream { def, stream, vfs, clock }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Its description (settings, creation time).
    pub fn def(&self) -> &DeliveryStreamDef {
        &self.def
    }

    /// Its settings.
    pub fn config(&self) -> &DeliveryStreamConfig {
        &self.def.config
    }

    /// The directory of its backing stream.
    pub fn dir(&self) -> &Path {
        self.stream.dir()
    }

    /// Puts one record (0 to 1,000 KiB); returns its record id once it is durable.
    pub fn put(&self, data: &[u8]) -> Result<String> {
        let ids = self.put_batch(&[data])?;
        ids.into_iter().next().ok_or_else(|| Error::InvalidArgument("empty put".into()))
    }

    /// Puts 1 to 500 records (4 MiB of data in all, each at most 1,000 KiB), in order, as one
    /// write; returns their record ids once they are durable.
    pub fn put_batch(&self, records: &[&[u8]]) -> Result<Vec<String>> {
        if records.is_empty() || records.len() > MAX_BATCH_RECORDS {
            return Err(Error::InvalidArgument(format!(
                "a batch holds 1 to {MAX_BATCH_RECORDS} records, not {}",
                records.len()
            )));
        }
        let mut total = 0usize;
        for r in records {
            if r.len() > MAX_RECORD_BYTES {
                return Err(Error::TooLarge { what: "record", size: r.len(), limit: MAX_RECORD_BYTES });
            }
            total += r.len();
        }
        if total > MAX_BATCH_BYTES {
            return Err(Error::TooLarge { what: "batch", size: total, limit: MAX_BATCH_BYTES });
        }
        let puts: Vec<PutRecord<'_>> = records
            .iter()
            .map(|data| PutRecord { partition_key: PARTITION_KEY, data, explicit_hash_key: None })
            .collect();
        let results = self.stream.put_batch(&puts)?;
        Ok(results.iter().map(|r| self.record_id(r.shard, r.seq)).collect())
    }

    /// A record id: unique within every delivery stream this data directory ever had of this
    /// name (the creation time and the record's place).
    fn record_id(&self, shard: u32, seq: u64) -> String {
        format!("{:016x}{:08x}{:016x}", self.def.created_ms, shard, seq)
    }

    /// The delivery to its directory (a [`Destination::Directory`] delivery stream), as its
    /// consumer group. Run [`Delivery::step`] in a loop, or [`Delivery::run_once`].
    pub fn directory_delivery(&self) -> Result<Delivery> {
        match &self.def.config.destination {
            Destination::Directory(d) => self.files_to(d, DIRECTORY_GROUP),
            Destination::Http(_) => Err(Error::InvalidArgument(format!(
                "delivery stream {:?} delivers to an HTTP endpoint, not to a directory",
                self.def.name
            ))),
        }
    }

    /// The copy of every record to the backup directory of an HTTP endpoint whose backup mode
    /// is [`BackupMode::AllData`]; `None` for other delivery streams.
    pub fn backup_delivery(&self) -> Result<Option<Delivery>> {
        match &self.def.config.destination {
            Destination::Http(h) if h.backup_mode == BackupMode::AllData => {
                self.files_to(&h.backup, BACKUP_GROUP).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The delivery to its HTTP endpoint (a [`Destination::Http`] delivery stream). One at a
    /// time per delivery stream: it is the consumer group's only worker.
    pub fn http_delivery(&self) -> Result<HttpDelivery> {
        let Destination::Http(h) = &self.def.config.destination else {
            return Err(Error::InvalidArgument(format!(
                "delivery stream {:?} delivers to a directory, not to an HTTP endpoint",
                self.def.name
            )));
        };
        let consumer = self.stream.consumer(
            HTTP_GROUP,
            &format!("http-{}", std::process::id()),
            ConsumerConfig { lease_ms: DELIVERY_LEASE_MS, ..ConsumerConfig::default() },
        )?;
        Ok(HttpDelivery::new(
            &self.def.name,
            format!("{}.{}", self.def.stream.incarnation, self.def.created_ms),
            Arc::clone(&self.stream),
            consumer,
            h.clone(),
            Arc::clone(&self.vfs),
            Arc::clone(&self.clock),
        ))
    }

    fn files_to(&self, d: &DirectoryDestination, group: &str) -> Result<Delivery> {
        let config = DeliveryConfig {
            dir: d.dir.clone(),
            max_bytes: usize::try_from(d.buffering.size_bytes).unwrap_or(usize::MAX),
            max_age: d.buffering.interval(),
            compression: match d.compression {
                FileCompression::None => DeliveryCompression::None,
                FileCompression::Gzip => DeliveryCompression::Gzip,
                FileCompression::Zstd => DeliveryCompression::Zstd,
            },
            format: if d.newline_delimited { DeliveryFormat::Raw } else { DeliveryFormat::Concatenated },
            group: group.to_string(),
        };
        self.stream.deliver(config)
    }

    /// How far its deliveries are.
    pub fn status(&self) -> Result<DeliveryStatus> {
        self.stream.check_live()?;
        let shard = self.stream.shard(0)?;
        let (first, end) = (shard.log().first_seq(), shard.log().end_of_records());
        let checkpoints = self.stream.checkpoints();
        let mut pending = 0;
        let mut delivered_through = Vec::new();
        for group in self.def.groups() {
            let through = checkpoints.get(&(group.to_string(), 0)).copied();
            let next = through.map_or(first, |s| s.saturating_add(1).max(first));
            pending = end.saturating_sub(next).max(pending);
            delivered_through.push((group.to_string(), through));
        }
        Ok(DeliveryStatus { pending_records: pending, records_put: end, delivered_through })
    }

    /// Deletes the segments whose every record every delivery has delivered. Returns how many.
    pub(crate) fn drop_delivered(&self) -> Result<usize> {
        let checkpoints = self.stream.checkpoints();
        let mut below = u64::MAX;
        for group in self.def.groups() {
            match checkpoints.get(&(group.to_string(), 0)) {
                Some(seq) => below = below.min(seq.saturating_add(1)),
                None => return Ok(0),
            }
        }
        self.stream.shard(0)?.log().delete_below(below)
    }

    /// The backing stream's logs, for the engine's periodic sync.
    pub(crate) fn for_each_log(&self, f: &mut dyn FnMut(&crate::log::Log)) {
        if !self.stream.is_deleted() {
            self.stream.for_each_log(f);
        }
    }

    /// Refuses every later call through its handles: it was deleted.
    pub(crate) fn mark_deleted(&self) {
        self.stream.mark_deleted();
    }

    /// True once it was deleted.
    pub fn is_deleted(&self) -> bool {
        self.stream.is_deleted()
    }
}
