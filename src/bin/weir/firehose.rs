//! `weir firehose ...`: delivery streams. Create (to a directory or an HTTP endpoint), list,
//! describe (with how far delivery is), delete, put, and deliver to a directory from the
//! command line. Deliveries to HTTP endpoints run inside `weir serve`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use weir::firehose::{
    validate_name, BackupMode, Buffering, ContentEncoding, DeliveryStream, DeliveryStreamConfig, Destination,
    DirectoryDestination, FileCompression, HttpDestination, MAX_BATCH_BYTES, MAX_RECORD_BYTES,
};

use crate::out::{parse_key_value, submit_stdin_lines, CliError, CliResult, Deleted, LineLimits, Named, Out};

/// How often a running `firehose deliver` looks for what is due.
const DELIVER_TICK: Duration = Duration::from_millis(200);

/// The `weir firehose` subcommands.
#[derive(Debug, Subcommand)]
pub enum FirehoseCommand {
    /// Create a delivery stream to a directory (--to-dir) or an HTTP endpoint (--http);
    /// prints {"name":..,"destination":"directory"|"http"}.
    Create(CreateArgs),
    /// List delivery streams, one {"name":..} per line.
    List,
    /// A delivery stream's settings and how far its delivery is.
    Describe {
        /// Delivery stream name.
        name: String,
    },
    /// Delete a delivery stream and the records it has not delivered.
    Delete {
        /// Delivery stream name.
        name: String,
    },
    /// Put a record, or every line of stdin as a record; prints {"record_id":..} once durable.
    Put {
        /// Delivery stream name.
        name: String,
        /// The record's data; without it, every line of stdin (without its line ending) is a
        /// record.
        #[arg(value_name = "DATA")]
        record: Option<OsString>,
    },
    /// Deliver a directory delivery stream's records to its directory; prints {"file":..} per
    /// file. Runs until stopped, or with --once writes what there is and exits.
    Deliver {
        /// Delivery stream name.
        name: String,
        /// Write what there is now, whatever the buffering, and exit.
        #[arg(long)]
        once: bool,
    },
}

/// `firehose create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Delivery stream name: 1-64 characters of A-Z a-z 0-9 _ . -
    name: String,
    /// Deliver files into this directory.
    #[arg(long, value_name = "DIR", conflicts_with = "http", required_unless_present = "http")]
    to_dir: Option<PathBuf>,
    /// Deliver to this HTTP endpoint (http://HOST[:PORT]/PATH), in Firehose's format.
    #[arg(long, value_name = "URL", requires = "backup_dir")]
    http: Option<String>,
    /// HTTP: where batches the endpoint did not take within the retry duration are written.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Deliver once this many MiB are buffered [default: 5; 1-128 for files, 1-64 for HTTP].
    #[arg(long, value_name = "MIB")]
    buffer_mib: Option<u64>,
    /// ... or once the oldest buffered record waited this long (0-900) [default: 300].
    #[arg(long, value_name = "SECONDS")]
    buffer_interval: Option<u64>,
    /// Compression of delivered files (and of HTTP backup files) [default: none].
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    /// Files: a newline after each record (default: records concatenated as they are).
    #[arg(long)]
    newline: bool,
    /// HTTP: sent as X-Amz-Firehose-Access-Key.
    #[arg(long, value_name = "KEY")]
    access_key: Option<String>,
    /// HTTP: a name for the endpoint.
    #[arg(long, value_name = "NAME")]
    endpoint_name: Option<String>,
    /// HTTP: gzip the request bodies.
    #[arg(long)]
    gzip_requests: bool,
    /// HTTP: a common attribute sent with every request; repeat for more.
    #[arg(long = "attr", value_name = "K=V", value_parser = parse_key_value)]
    attrs: Vec<(String, String)>,
    /// HTTP: how long a batch is retried before it goes to the backup (0-7200) [default: 300].
    #[arg(long, value_name = "SECONDS")]
    retry_duration: Option<u64>,
    /// HTTP: also write every record to the backup directory (Firehose's AllData).
    #[arg(long)]
    backup_all: bool,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    /// Plain files.
    None,
    /// gzip (.gz).
    Gzip,
    /// zstd (.zst).
    Zstd,
}

/// Runs a `weir firehose` subcommand against the data directory `data`.
pub fn run(data: &Path, command: FirehoseCommand) -> CliResult<()> {
    // Names are checked before the directory is opened.
    match &command {
        FirehoseCommand::List => {}
        FirehoseCommand::Create(CreateArgs { name, .. })
        | FirehoseCommand::Describe { name }
        | FirehoseCommand::Delete { name }
        | FirehoseCommand::Put { name, .. }
        | FirehoseCommand::Deliver { name, .. } => validate_name(name)?,
    }
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    match command {
        FirehoseCommand::Create(args) => {
            let name = args.name.clone();
            let config = config_of(args)?;
            let kind = match config.destination {
                Destination::Directory(_) => "directory",
                Destination::Http(_) => "http",
            };
            engine.create_delivery_stream(&name, config)?;
            out.json(&CreatedJson { name: &name, destination: kind })
        }
        FirehoseCommand::List => {
            for name in engine.list_delivery_streams() {
                out.json(&Named { name: &name })?;
            }
            Ok(())
        }
        FirehoseCommand::Describe { name } => {
            let d = engine.delivery_stream(&name)?;
            out.json(&describe(&d)?)
        }
        FirehoseCommand::Delete { name } => {
            engine.delete_delivery_stream(&name)?;
            out.json(&Deleted { name: &name, deleted: true })
        }
        FirehoseCommand::Put { name, record } => {
            let d = engine.delivery_stream(&name)?;
            if let Some(data) = record {
                let id = d.put(data.as_bytes())?;
                return out.json(&PutJson { record_id: id });
            }
            let limits =
                LineLimits { attribute_bytes: 0, message_bytes: MAX_RECORD_BYTES, batch_bytes: MAX_BATCH_BYTES };
            let submit = |records: Vec<Bytes>| {
                let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
                d.put_batch(&refs).map(|ids| ids.into_iter().map(Ok).collect())
            };
            submit_stdin_lines(&mut out, limits, |_| true, submit, |record_id| PutJson { record_id })
        }
        FirehoseCommand::Deliver { name, once } => {
            let d = engine.delivery_stream(&name)?;
            if matches!(d.config().destination, Destination::Http(_)) {
                return Err(CliError::Failed(format!(
                    "delivery stream {name:?} delivers to an HTTP endpoint: `weir serve` delivers it"
                )));
            }
            let mut delivery = d.directory_delivery()?;
            if once {
                return print_files(&delivery.run_once()?, &mut out);
            }
            // Files are written atomically and checkpointed after: a stop at any moment leaves
            // whole files and at worst writes the last batch again.
            loop {
                print_files(&delivery.step()?, &mut out)?;
                std::thread::sleep(DELIVER_TICK);
            }
        }
    }
}

fn config_of(args: CreateArgs) -> CliResult<DeliveryStreamConfig> {
    let mut buffering = Buffering::new();
    if let Some(mib) = args.buffer_mib {
        buffering.size_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(s) = args.buffer_interval {
        buffering.interval_ms = s.saturating_mul(1000);
    }
    let compression = match args.compression {
        None | Some(CompressionArg::None) => FileCompression::None,
        Some(CompressionArg::Gzip) => FileCompression::Gzip,
        Some(CompressionArg::Zstd) => FileCompression::Zstd,
    };
    let destination = match (args.to_dir, args.http, args.backup_dir) {
        (Some(dir), None, _) => Destination::Directory(DirectoryDestination {
            buffering,
            compression,
            newline_delimited: args.newline,
            ..DirectoryDestination::new(absolute(dir)?)
        }),
        (None, Some(url), Some(backup)) => {
            let mut h = HttpDestination::new(url, absolute(backup)?);
            h.buffering = buffering;
            h.backup.compression = compression;
            h.access_key = args.access_key;
            h.name = args.endpoint_name;
            if args.gzip_requests {
                h.content_encoding = ContentEncoding::Gzip;
            }
            h.common_attributes = args.attrs.into_iter().collect::<BTreeMap<_, _>>();
            if let Some(s) = args.retry_duration {
                h.retry_ms = s.saturating_mul(1000);
            }
            if args.backup_all {
                h.backup_mode = BackupMode::AllData;
            }
            Destination::Http(h)
        }
        _ => return Err(CliError::Failed("give --to-dir DIR, or --http URL with --backup-dir DIR".into())),
    };
    Ok(DeliveryStreamConfig::new(destination))
}

/// Directories are kept absolute: a delivery runs wherever the server or a later command runs.
fn absolute(dir: PathBuf) -> CliResult<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir);
    }
    let cwd = std::env::current_dir().map_err(|e| CliError::Failed(format!("the current directory: {e}")))?;
    Ok(cwd.join(dir))
}

fn print_files(files: &[PathBuf], out: &mut Out) -> CliResult<()> {
    for f in files {
        out.json(&FileJson { file: &f.to_string_lossy() })?;
    }
    Ok(())
}

#[derive(Serialize)]
struct CreatedJson<'a> {
    name: &'a str,
    destination: &'a str,
}

#[derive(Serialize)]
struct PutJson {
    record_id: String,
}

#[derive(Serialize)]
struct FileJson<'a> {
    file: &'a str,
}

/// `firehose describe` output.
#[derive(Serialize)]
struct DescribeJson<'a> {
    name: &'a str,
    created_ms: u64,
    destination: Destination,
    tags: &'a BTreeMap<String, String>,
    pending_records: u64,
    records_put: u64,
    delivered_through: BTreeMap<String, Option<u64>>,
}

fn describe(d: &DeliveryStream) -> CliResult<DescribeJson<'_>> {
    let status = d.status()?;
    let mut destination = d.config().destination.clone();
    if let Destination::Http(h) = &mut destination {
        // A secret: say that there is one, not what it is.
        if h.access_key.is_some() {
            h.access_key = Some("(set)".into());
        }
    }
    Ok(DescribeJson {
        name: d.name(),
        created_ms: d.def().created_ms,
        destination,
        tags: &d.config().tags,
        pending_records: status.pending_records,
        records_put: status.records_put,
        delivered_through: status.delivered_through.into_iter().collect(),
    })
}
