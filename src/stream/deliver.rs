//! Delivery to files, as Firehose does for a local directory: a consumer group buffers records
//! per shard and writes them in batches to files named by shard, sequence range and time.
//!
//! Each file is written atomically (temporary name, fsync, rename, fsync of the directory) and
//! the group checkpoints only after the file is durable. A crash therefore leaves whole files
//! only; at worst the batch after the last checkpoint is written again (a second file with the
//! same first sequence number).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::stream::consumer::{Consumer, ConsumerConfig};
use crate::stream::iterator::StreamRecord;
use crate::stream::Stream;
use crate::text::{iso8601, RecordJson};

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryFormat {
    /// One JSON object per line: `{"seq","key","data","time_ms"}` (base64 fields for binary).
    #[default]
    Jsonl,
    /// The record data as is, each followed by a newline.
    Raw,
    /// The record data as is, one record right after the other without separators: how
    /// Firehose writes its S3 objects unless asked for a delimiter.
    Concatenated,
}

/// Whether files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryCompression {
    /// Plain files.
    #[default]
    None,
    /// One zstd frame per file (`.zst` suffix).
    Zstd,
    /// One gzip member per file (`.gz` suffix), as Firehose's `GZIP` compression format.
    Gzip,
}

/// Settings of a delivery.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Directory the files go to (created if missing).
    pub dir: PathBuf,
    /// A shard's buffer is written once it holds this many bytes of data. Default 5 MiB.
    pub max_bytes: usize,
    /// ... or once its oldest record has waited this long. Default 60 s.
    pub max_age: Duration,
    /// Compression.
    pub compression: DeliveryCompression,
    /// Format.
    pub format: DeliveryFormat,
    /// The consumer group that tracks what was delivered. Default "deliver".
    pub group: String,
}

impl DeliveryConfig {
    /// Defaults for delivering into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DeliveryConfig {
            dir: dir.into(),
            max_bytes: 5 << 20,
            max_age: Duration::from_secs(60),
            compression: DeliveryCompression::None,
            format: DeliveryFormat::Jsonl,
            group: "deliver".into(),
        }
    }
}

#[derive(Debug, Default)]
struct Buffer {
    records: Vec<StreamRecord>,
    bytes: usize,
    since_ms: u64,
}

/// A running delivery.
#[derive(Debug)]
pub struct Delivery {
    stream: Arc<Stream>,
    consumer: Consumer,
    config: DeliveryConfig,
    buffers: BTreeMap<u32, Buffer>,
}

impl Stream {
    /// Starts delivering this stream's records to files (see [`DeliveryConfig`]).
    pub fn deliver(self: &Arc<Self>, config: DeliveryConfig) -> Result<Delivery> {
        if config.max_bytes == 0 {
            return Err(Error::InvalidArgument("delivery max bytes must be at least 1".into()));
        }
        // Durably: a delivered file is checkpointed as done, so its directory must not vanish.
        crate::log::io::create_dir_durably(self.env.vfs.as_ref(), &config.dir)
            .map_err(|e| Error::io("create directory", &config.dir, e))?;
        let worker = format!("deliver-{}", std::process::id());
        let consumer = self.consumer(&config.group, &worker, ConsumerConfig::default())?;
        Ok(Delivery { stream: Arc::clone(self), consumer, config, buffers: BTreeMap::new() })
    }
}

impl Delivery {
    /// One round: polls the group's shards, buffers what came, and writes every buffer that is
    /// full or old enough. Returns the files written.
    pub fn step(&mut self) -> Result<Vec<PathBuf>> {
        self.poll_into_buffers()?;
        let now = self.stream.env.clock.now_ms();
        let max_age = u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX);
        let due: Vec<u32> = self
            .buffers
            .iter()
            .filter(|(_, b)| {
                !b.records.is_empty() && (b.bytes >= self.config.max_bytes || b.since_ms.saturating_add(max_age) <= now)
            })
            .map(|(&s, _)| s)
            .collect();
        due.into_iter().filter_map(|s| self.flush(s).transpose()).collect()
    }

    /// When the oldest buffered record's batch is due by age (engine clock, ms), if any record
    /// is buffered: a caller that runs [`Delivery::step`] in a loop sleeps until then.
    pub fn next_due_ms(&self) -> Option<u64> {
        let max_age = u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX);
        self.buffers.values().filter(|b| !b.records.is_empty()).map(|b| b.since_ms.saturating_add(max_age)).min()
    }

    /// Reads everything there is now and writes it, whatever the buffer limits (the `--once`
    /// of the CLI). Returns the files written.
    pub fn run_once(&mut self) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        loop {
            let got = self.poll_into_buffers()?;
            let full: Vec<u32> =
                self.buffers.iter().filter(|(_, b)| b.bytes >= self.config.max_bytes).map(|(&s, _)| s).collect();
            for shard in full {
                files.extend(self.flush(shard)?);
            }
            if got > 0 {
                continue;
            }
            // Drained: write what is buffered. Finishing a closed shard makes its children
            // readable, so look again until a round finds nothing at all.
            let before = files.len();
            let shards: Vec<u32> = self.buffers.keys().copied().collect();
            for shard in shards {
                files.extend(self.flush(shard)?);
            }
            if files.len() == before {
                return Ok(files);
            }
        }
    }

    fn poll_into_buffers(&mut self) -> Result<usize> {
        let records = self.consumer.poll(1000)?;
        let held = self.consumer.held_shards();
        // A shard whose lease moved to another worker is that worker's to deliver now.
        self.buffers.retain(|s, _| held.contains(s));
        let now = self.stream.env.clock.now_ms();
        let n = records.len();
        for r in records {
            let b = self.buffers.entry(r.shard).or_default();
            if b.records.last().is_some_and(|last| r.record.seq <= last.seq) {
                continue; // read again after a lease changed hands: already buffered
            }
            if b.records.is_empty() {
                b.since_ms = now;
            }
            b.bytes += r.record.data.len() + r.record.partition_key.len();
            b.records.push(r.record);
        }
        Ok(n)
    }

    /// Writes one shard's buffer as a file, durably, then checkpoints after its last record.
    fn flush(&mut self, shard: u32) -> Result<Option<PathBuf>> {
        let Some(buffer) = self.buffers.remove(&shard) else { return Ok(None) };
        let (Some(first), Some(last)) = (buffer.records.first(), buffer.records.last()) else { return Ok(None) };
        let mut content = Vec::with_capacity(buffer.bytes + buffer.records.len() * 64);
        for r in &buffer.records {
            match self.config.format {
                DeliveryFormat::Jsonl => {
                    let json = RecordJson::new(r.seq, &r.partition_key, &r.data, r.time_ms);
                    serde_json::to_writer(&mut content, &json)
                        .map_err(|e| Error::InvalidArgument(format!("record {} as JSON: {e}", r.seq)))?;
                }
                DeliveryFormat::Raw | DeliveryFormat::Concatenated => content.extend_from_slice(&r.data),
            }
            if self.config.format != DeliveryFormat::Concatenated {
                content.push(b'\n');
            }
        }
        let mut name = format!(
            "{}-{shard:06}-{:020}-{:020}-{}{}",
            self.stream.name(),
            first.seq,
            last.seq,
            compact_time(first.time_ms),
            match self.config.format {
                DeliveryFormat::Jsonl => ".jsonl",
                DeliveryFormat::Raw => ".raw",
                DeliveryFormat::Concatenated => "",
            }
        );
        match self.config.compression {
            DeliveryCompression::None => {}
            DeliveryCompression::Zstd => {
                content = zstd::bulk::compress(&content, 3)
                    .map_err(|e| Error::io("compress", &self.config.dir, std::io::Error::other(e)))?;
                name.push_str(".zst");
            }
            DeliveryCompression::Gzip => {
                content = gzip(&content).map_err(|e| Error::io("compress", &self.config.dir, e))?;
                name.push_str(".gz");
            }
        }
        let path = self.config.dir.join(name);
        self.stream.env.vfs.write_file_atomic(&path, &content).map_err(|e| Error::io("write", &path, e))?;
        self.consumer.checkpoint(shard, last.seq)?;
        Ok(Some(path))
    }
}

/// One gzip member holding `data` (RFC 1952).
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), flate2::Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// `YYYYMMDDTHHMMSSZ`: sortable, and safe in a file name.
pub(crate) fn compact_time(ms: u64) -> String {
    let iso = iso8601(ms);
    let digits: String = iso.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("{digits}Z")
}
