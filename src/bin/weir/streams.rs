//! `weir stream ...`: create, list, describe, delete, put and read.

use std::ffi::OsString;
use std::io::{self, BufRead};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;
use weir::stream::iterator::MAX_RECORDS_PER_READ;
use weir::stream::{
    PutRecord, PutResult, StartingPosition, Stream, StreamDescription, MAX_BATCH_BYTES, MAX_BATCH_RECORDS,
};

use crate::out::{CliError, CliResult, Out, RecordJson};

/// Lines read from stdin that may wait for the writer before the reader blocks.
const STDIN_QUEUE_LINES: usize = 4096;

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
    | StreamCommand::Read { name, .. } = &command
    {
        weir::engine::names::validate_stream_name(name)?;
    }
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    match command {
        StreamCommand::Create { name, shards, retention_hours } => {
            let retention = match retention_hours {
                Some(h) => Some(h.checked_mul(3600).map(Duration::from_secs).ok_or_else(|| {
                    CliError::Failed(format!("invalid argument: stream retention must be 24 to 8760 hours, not {h}"))
                })?),
                None => None,
            };
            engine.create_stream(&name, shards, retention)?;
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
    }
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

/// `stream list` output.
#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

/// `stream delete` output.
#[derive(Serialize)]
struct Deleted<'a> {
    name: &'a str,
    deleted: bool,
}

/// A line of stdin, numbered from 1 for error messages.
type Line = (u64, Vec<u8>);

/// Puts every line of stdin (without its line ending) as a record. Lines that arrive together
/// are put as one batch; each result is printed once its record is durable.
fn put_stdin(stream: &Stream, key: &[u8], out: &mut Out) -> CliResult<()> {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Line>>(STDIN_QUEUE_LINES);
    // The reader blocks on stdin so the writer can batch whatever has already arrived. If the
    // writer stops early, the process exits and takes the reader with it.
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        for number in 1.. {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.send(Ok((number, line))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let read_error = |e: io::Error| CliError::Failed(format!("read stdin: {e}"));
    let mut carry: Option<Line> = None;
    loop {
        let first = match carry.take() {
            Some(line) => line,
            None => match rx.recv() {
                Ok(line) => line.map_err(read_error)?,
                Err(_) => return Ok(()), // end of input
            },
        };
        let mut size = first.1.len() + key.len();
        let mut batch = vec![first];
        let mut pending_error = None;
        while batch.len() < MAX_BATCH_RECORDS {
            match rx.try_recv() {
                Ok(Ok(line)) => {
                    let line_size = line.1.len() + key.len();
                    if size + line_size > MAX_BATCH_BYTES {
                        carry = Some(line);
                        break;
                    }
                    size += line_size;
                    batch.push(line);
                }
                Ok(Err(e)) => {
                    pending_error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        put_lines(stream, key, &batch, out)?;
        if let Some(e) = pending_error {
            return Err(read_error(e));
        }
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
