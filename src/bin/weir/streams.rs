//! `weir stream ...`: create, list, describe, delete, put and read; split and merge shards;
//! consume as a worker of a consumer group, list checkpoints, and deliver to files.
//!
//! Leases live in the process: a `consume` that ends releases its shards, so the next call,
//! with any worker id, resumes at the group's checkpoints at once.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use weir::stream::iterator::MAX_RECORDS_PER_READ;
use weir::stream::{
    ConsumerConfig, DeliveryCompression, DeliveryConfig, DeliveryFormat, PutRecord, PutResult, StartingPosition,
    Stream, StreamDescription, MAX_BATCH_BYTES, MAX_BATCH_RECORDS,
};

use crate::out::{CliError, CliResult, Deleted, Line, Named, Out, RecordJson, StdinLines};

/// Records `stream consume` prints when not told otherwise.
const DEFAULT_CONSUME_LIMIT: &str = "100";
/// Longest `--max-age` of `stream deliver`: a year of seconds.
const MAX_DELIVERY_AGE_S: u64 = 365 * 24 * 3600;
/// How often a running `stream deliver` polls and writes what is due.
const DELIVER_TICK: Duration = Duration::from_millis(200);

/// The `weir stream` subcommands.
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream.
    Create {
        /// Stream name: 1-128 characters of A-Z a-z 0-9 _ . -
        name: String,
        /// Number of shards (1-1024).
        #[arg(long)]
        shards: u32,
        /// How long records are kept, in hours (24-8760) [default: 24].
        #[arg(long, value_name = "H")]
        retention_hours: Option<u64>,
        /// Limit each shard as Kinesis provisions it: writes to 1 MiB and 1,000 records per
        /// second, reads to 2 MiB per second; calls over the rate fail and may be retried.
        #[arg(long)]
        throughput_limits: bool,
    },
    /// List streams, one {"name":..} per line.
    List,
    /// Describe a stream's shards: hash-key ranges and stored sequence numbers.
    Describe {
        /// Stream name.
        name: String,
    },
    /// Delete a stream and all its records.
    Delete {
        /// Stream name.
        name: String,
    },
    /// Put a record, or every line of stdin as a record; prints {"shard":..,"seq":..} per record
    /// once it is durable.
    Put {
        /// Stream name.
        name: String,
        /// Partition key (1-256 bytes): chooses the shard, and orders records that share it.
        #[arg(long)]
        key: OsString,
        /// The record's data; without it, every line of stdin is a record.
        #[arg(value_name = "DATA")]
        payload: Option<OsString>,
    },
    /// Read one shard's records, one {"seq","key","data","time_ms"} per line.
    Read {
        /// Stream name.
        name: String,
        /// Shard id.
        #[arg(long)]
        shard: u32,
        /// Where to start: trim-horizon, latest, at:SEQ, after:SEQ or time:UNIX_MS.
        #[arg(long, value_parser = parse_position, value_name = "POSITION")]
        from: StartingPosition,
        /// Read at most this many records [default: everything up to the end of the shard].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
    /// Split an open shard in two; prints {"children":[LOW,HIGH]}. The shard closes: no more
    /// writes, its records stay readable.
    Split {
        /// Stream name.
        name: String,
        /// The open shard to split.
        #[arg(long)]
        shard: u32,
        /// First hash key (decimal) of the upper child [default: the middle of the range].
        #[arg(long, value_name = "HASHKEY")]
        at: Option<u128>,
    },
    /// Merge two open shards whose hash-key ranges touch; prints {"child":ID}. Both close.
    Merge {
        /// Stream name.
        name: String,
        /// One open shard.
        #[arg(long)]
        shard: u32,
        /// The open shard whose range borders it.
        #[arg(long)]
        adjacent: u32,
    },
    /// Read as a worker of a consumer group, parents before children; prints
    /// {"shard","seq","key","data","time_ms"} per record.
    Consume {
        /// Stream name.
        name: String,
        /// Consumer group: 1-128 characters of A-Z a-z 0-9 _ . -
        #[arg(long, value_name = "G")]
        group: String,
        /// Worker id within the group [default: cli-<pid>].
        #[arg(long, value_name = "W")]
        worker: Option<String>,
        /// Most records to print.
        #[arg(long, value_name = "N", default_value = DEFAULT_CONSUME_LIMIT,
              value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Store the group's position after the printed records, so the next consume resumes
        /// there (without it, the next consume reads them again).
        #[arg(long)]
        checkpoint: bool,
    },
    /// List every consumer group's checkpoints, one {"group","shard","seq"} per line.
    Checkpoints {
        /// Stream name.
        name: String,
    },
    /// Deliver the stream's records to files in batches, as group "deliver"; prints
    /// {"file":PATH} per file once it is durable. Runs until stopped, or with --once writes
    /// what there is and exits.
    Deliver {
        /// Stream name.
        name: String,
        /// Directory the files go to (created if missing).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Write a shard's batch once it holds this many bytes [default: 5 MiB].
        #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
        max_bytes: Option<u64>,
        /// ... or once its oldest record has waited this many seconds (0-31536000, a year)
        /// [default: 60].
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(..=MAX_DELIVERY_AGE_S))]
        max_age: Option<u64>,
        /// Compress each file [default: none].
        #[arg(long, value_enum, value_name = "C")]
        compression: Option<CompressionArg>,
        /// File format.
        #[arg(long, value_enum, value_name = "F", default_value = "jsonl")]
        format: FormatArg,
        /// Write everything there is now, then exit.
        #[arg(long)]
        once: bool,
    },
}

/// `--compression` of `stream deliver`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    /// Plain files.
    None,
    /// One zstd frame per file (.zst).
    Zstd,
    /// One gzip member per file (.gz).
    Gzip,
}

/// `--format` of `stream deliver`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per record and line: {"seq","key","data","time_ms"}.
    Jsonl,
    /// The record data as is, each followed by a newline.
    Raw,
}

/// Parses `--from`.
fn parse_position(text: &str) -> Result<StartingPosition, String> {
    let number =
        |s: &str, what: &str| s.parse::<u64>().map_err(|_| format!("{what} must be a whole number, not {s:?}"));
    match text {
        "trim-horizon" => Ok(StartingPosition::TrimHorizon),
        "latest" => Ok(StartingPosition::Latest),
        _ => match text.split_once(':') {
            Some(("at", seq)) => Ok(StartingPosition::AtSequence(number(seq, "SEQ")?)),
            Some(("after", seq)) => Ok(StartingPosition::AfterSequence(number(seq, "SEQ")?)),
            Some(("time", ms)) => Ok(StartingPosition::AtTimestamp(number(ms, "UNIX_MS")?)),
            _ => Err("expected trim-horizon, latest, at:SEQ, after:SEQ or time:UNIX_MS".to_string()),
        },
    }
}

/// Runs a `weir stream` subcommand against the data directory `data`.
pub fn run(data: &Path, command: StreamCommand) -> CliResult<()> {
    // Names are checked before the directory is opened (or created): a bad name never touches
    // the file system and never waits for the lock.
    if let StreamCommand::Create { name, .. }
    | StreamCommand::Describe { name }
    | StreamCommand::Delete { name }
    | StreamCommand::Put { name, .. }
    | StreamCommand::Read { name, .. }
    | StreamCommand::Split { name, .. }
    | StreamCommand::Merge { name, .. }
    | StreamCommand::Consume { name, .. }
    | StreamCommand::Checkpoints { name }
    | StreamCommand::Deliver { name, .. } = &command
    {
        weir::names::validate_stream_name(name)?;
    }
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    match command {
        StreamCommand::Create { name, shards, retention_hours, throughput_limits } => {
            let retention = match retention_hours {
                Some(h) => Some(h.checked_mul(3600).map(Duration::from_secs).ok_or_else(|| {
                    CliError::Failed(format!("invalid argument: stream retention must be 24 to 8760 hours, not {h}"))
                })?),
                None => None,
            };
            engine.create_stream_with(&name, shards, retention, throughput_limits)?;
            let retention_hours = engine.describe_stream(&name)?.retention_hours;
            out.json(&Created { name: &name, shards, retention_hours })
        }
        StreamCommand::List => {
            for name in engine.list_streams() {
                out.json(&Named { name: &name })?;
            }
            Ok(())
        }
        StreamCommand::Describe { name } => out.json(&DescribeJson::from(&engine.describe_stream(&name)?)),
        StreamCommand::Delete { name } => {
            engine.delete_stream(&name)?;
            out.json(&Deleted { name: &name, deleted: true })
        }
        StreamCommand::Put { name, key, payload } => {
            let stream = engine.stream(&name)?;
            match payload {
                Some(data) => {
                    let put = stream.put(key.as_bytes(), data.as_bytes())?;
                    out.json(&PutJson::from(put))
                }
                None => put_stdin(&stream, key.as_bytes(), &mut out),
            }
        }
        StreamCommand::Read { name, shard, from, limit } => {
            let mut iterator = engine.stream(&name)?.iterator(shard, from)?;
            let mut left = limit.unwrap_or(u64::MAX);
            while left > 0 {
                let batch = iterator.next_batch(left.min(MAX_RECORDS_PER_READ as u64) as usize)?;
                for record in &batch.records {
                    out.json(&RecordJson::new(record.seq, &record.partition_key, &record.data, record.time_ms))?;
                }
                left = left.saturating_sub(batch.records.len() as u64);
                if batch.records.is_empty() || batch.behind_records == 0 {
                    break;
                }
            }
            Ok(())
        }
        StreamCommand::Split { name, shard, at } => {
            let children = engine.split_shard(&name, shard, at)?;
            out.json(&Split { children })
        }
        StreamCommand::Merge { name, shard, adjacent } => {
            let child = engine.merge_shards(&name, shard, adjacent)?;
            out.json(&Merged { child })
        }
        StreamCommand::Consume { name, group, worker, limit, checkpoint } => {
            let worker = worker.unwrap_or_else(|| format!("cli-{}", std::process::id()));
            consume(&engine.stream(&name)?, &group, &worker, limit, checkpoint, &mut out)
        }
        StreamCommand::Checkpoints { name } => {
            for ((group, shard), seq) in engine.stream(&name)?.checkpoints() {
                out.json(&CheckpointJson { group: &group, shard, seq })?;
            }
            Ok(())
        }
        StreamCommand::Deliver { name, to, max_bytes, max_age, compression, format, once } => {
            let mut config = DeliveryConfig::new(to);
            if let Some(bytes) = max_bytes {
                config.max_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            }
            if let Some(seconds) = max_age {
                config.max_age = Duration::from_secs(seconds);
            }
            config.compression = match compression {
                None | Some(CompressionArg::None) => DeliveryCompression::None,
                Some(CompressionArg::Zstd) => DeliveryCompression::Zstd,
                Some(CompressionArg::Gzip) => DeliveryCompression::Gzip,
            };
            config.format = match format {
                FormatArg::Jsonl => DeliveryFormat::Jsonl,
                FormatArg::Raw => DeliveryFormat::Raw,
            };
            let mut delivery = engine.stream(&name)?.deliver(config)?;
            if once {
                return print_files(&delivery.run_once()?, &mut out);
            }
            // Stopped by a signal: files are written atomically and checkpointed after, so a
            // stop at any moment leaves whole files and at worst writes the last batch again.
            loop {
                print_files(&delivery.step()?, &mut out)?;
                std::thread::sleep(DELIVER_TICK);
            }
        }
    }
}

/// Polls as worker `worker` of `group` until `limit` records are printed or a poll returns
/// nothing. With `checkpoint`, each poll's records are checkpointed once printed, so a parent
/// shard read to its end lets its children be read in the same call. The consumer is dropped
/// on return, which releases its leases.
fn consume(
    stream: &Arc<Stream>,
    group: &str,
    worker: &str,
    limit: u64,
    checkpoint: bool,
    out: &mut Out,
) -> CliResult<()> {
    let mut consumer = stream.consumer(group, worker, ConsumerConfig::default())?;
    let mut left = limit;
    while left > 0 {
        let records = match consumer.poll(left.min(MAX_RECORDS_PER_READ as u64) as usize) {
            Ok(records) => records,
            // Over a shard's read rate after printing something: stop there, as a reader
            // backing off would; what was printed is checkpointed already.
            Err(weir::Error::ThroughputExceeded(_)) if left < limit => break,
            Err(e) => return Err(e.into()),
        };
        if records.is_empty() {
            break;
        }
        for r in &records {
            let record = RecordJson::new(r.record.seq, &r.record.partition_key, &r.record.data, r.record.time_ms);
            out.json(&ConsumedJson { shard: r.shard, record })?;
        }
        left = left.saturating_sub(records.len() as u64);
        if checkpoint {
            consumer.checkpoint_all()?;
        }
    }
    Ok(())
}

fn print_files(files: &[PathBuf], out: &mut Out) -> CliResult<()> {
    for file in files {
        out.json(&FileJson { file: &file.to_string_lossy() })?;
    }
    Ok(())
}

/// `stream split` output.
#[derive(Serialize)]
struct Split {
    children: [u32; 2],
}

/// `stream merge` output.
#[derive(Serialize)]
struct Merged {
    child: u32,
}

/// `stream consume` output, one per record.
#[derive(Serialize)]
struct ConsumedJson {
    shard: u32,
    #[serde(flatten)]
    record: RecordJson,
}

/// `stream checkpoints` output, one per (group, shard).
#[derive(Serialize)]
struct CheckpointJson<'a> {
    group: &'a str,
    shard: u32,
    seq: u64,
}

/// `stream deliver` output, one per file written.
#[derive(Serialize)]
struct FileJson<'a> {
    file: &'a str,
}

/// `stream put` output, one per record.
#[derive(Serialize)]
struct PutJson {
    shard: u32,
    seq: u64,
}

impl From<PutResult> for PutJson {
    fn from(put: PutResult) -> Self {
        PutJson { shard: put.shard, seq: put.seq }
    }
}

/// `stream describe` output: the CLI's contract, kept apart from the library's types.
#[derive(Serialize)]
struct DescribeJson<'a> {
    name: &'a str,
    shards: Vec<ShardJson<'a>>,
}

/// One shard in `stream describe` output; hash keys as decimal strings.
#[derive(Serialize)]
struct ShardJson<'a> {
    id: u32,
    hash_start: &'a str,
    hash_end: &'a str,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    parents: &'a [u32],
    open: bool,
}

impl<'a> From<&'a StreamDescription> for DescribeJson<'a> {
    fn from(d: &'a StreamDescription) -> Self {
        let shards = d
            .shards
            .iter()
            .map(|s| ShardJson {
                id: s.id,
                hash_start: &s.hash_start,
                hash_end: &s.hash_end,
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                parents: &s.parents,
                open: s.open,
            })
            .collect();
        DescribeJson { name: &d.name, shards }
    }
}

/// `stream create` output.
#[derive(Serialize)]
struct Created<'a> {
    name: &'a str,
    shards: u32,
    retention_hours: u64,
}

/// Puts every line of stdin (without its line ending) as a record. Lines that arrive together
/// are put as one batch; each result is printed once its record is durable.
fn put_stdin(stream: &Stream, key: &[u8], out: &mut Out) -> CliResult<()> {
    let size = |line: &Line| line.1.len() + key.len();
    let mut stdin = StdinLines::spawn();
    loop {
        let batch = stdin.next_batch(MAX_BATCH_RECORDS, |batch, line| {
            batch.iter().map(size).sum::<usize>() + size(line) <= MAX_BATCH_BYTES
        })?;
        if batch.is_empty() {
            return Ok(());
        }
        put_lines(stream, key, &batch, out)?;
    }
}

fn put_lines(stream: &Stream, key: &[u8], lines: &[Line], out: &mut Out) -> CliResult<()> {
    let records: Vec<PutRecord<'_>> =
        lines.iter().map(|(_, data)| PutRecord { partition_key: key, data, explicit_hash_key: None }).collect();
    match stream.put_batch(&records) {
        Ok(results) => {
            for put in results {
                out.json(&PutJson::from(put))?;
            }
            Ok(())
        }
        // A batch is checked whole before anything is written: put the lines one at a time so
        // every line before the bad one still goes in, and the error names the bad line.
        Err(weir::Error::InvalidArgument(_) | weir::Error::TooLarge { .. }) if lines.len() > 1 => {
            for line in lines {
                put_lines(stream, key, std::slice::from_ref(line), out)?;
            }
            Ok(())
        }
        Err(e) => match lines {
            [(number, _)] => Err(CliError::Failed(format!("stdin line {number}: {e}"))),
            _ => Err(e.into()),
        },
    }
}
