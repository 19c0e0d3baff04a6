//! `weir`: the command-line interface to a weir data directory.
//!
//! Every command that prints data prints JSON, one object per line, flushed line by line, so
//! scripts can drive weir through it; `demo` and `inspect` (without `--json`) print text for
//! people. Errors go to stderr as `weir: <message>` with exit code 1; usage errors exit 2.
//!
//! `--key-file FILE` (or `$WEIR_KEY_FILE`) gives every command the key file of an encrypted data
//! directory; `weir keygen NAME >> FILE` adds a key version and `weir rekey` rewraps every data
//! key under the newest one.

mod demo;
mod files;
mod firehose;
mod out;
mod queues;
#[cfg(feature = "server")]
mod serve;
mod streams;
mod topics;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir::{Engine, KeySource, Options};

use out::{CliError, CliResult};

/// Data directory used when neither `--data` nor `$WEIR_DATA` says otherwise.
const DEFAULT_DATA_DIR: &str = "./weir-data";
/// How long a command waits for another process to release the data directory.
const DEFAULT_LOCK_WAIT_MS: u64 = 10_000;

/// weir: durable queues, topics and streams in one process.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
struct Cli {
    /// Data directory [default: $WEIR_DATA, else ./weir-data].
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Key file of an encrypted data directory: lines `NAME HEX64`, the last the newest
    /// [default: $WEIR_KEY_FILE]. A directory created with one is encrypted at rest.
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A guided tour of streams, queues and topics, run in the data directory (safe to repeat).
    Demo,
    /// Create, list, describe, delete, write to and read from streams.
    Stream {
        #[command(subcommand)]
        command: streams::StreamCommand,
    },
    /// Create and manage queues; send, receive, delete and peek at messages; redrive.
    Queue {
        #[command(subcommand)]
        command: queues::QueueCommand,
    },
    /// Create and manage topics and their queue subscriptions; publish.
    Topic {
        #[command(subcommand)]
        command: topics::TopicCommand,
    },
    /// Create and manage delivery streams (Firehose): buffered, durable delivery of records
    /// to a directory or an HTTP endpoint.
    Firehose {
        #[command(subcommand)]
        command: firehose::FirehoseCommand,
    },
    /// Summarize a segment file or a whole data directory (read-only, no lock taken).
    Inspect(files::InspectArgs),
    /// Check every frame and index under a directory; exit 1 and list problems if any.
    Verify(files::VerifyArgs),
    /// Serve the data directory as a local AWS endpoint (SQS: AWS JSON 1.0 and query
    /// protocols; Firehose: AWS JSON 1.1, delivering its delivery streams; HTTP/1.1 and
    /// cleartext HTTP/2) until SIGINT or SIGTERM; prints {"listening":ADDR,"endpoint":URL} once
    /// it accepts connections.
    #[cfg(feature = "server")]
    Serve(serve::ServeArgs),
    /// Set damaged bytes of a data directory aside (into DIR/quarantine/, nothing is deleted)
    /// so it opens again; report what was lost. Takes the directory's lock.
    Salvage(files::SalvageArgs),
    /// Print a new key-file line `NAME HEX64` (32 random bytes) for `weir keygen NAME >> FILE`:
    /// appended, it becomes the key file's newest version.
    Keygen {
        /// The version's name: 1-64 of A-Z a-z 0-9 _ . -
        name: String,
    },
    /// Wrap every data key of the encrypted data directory under the key file's newest version,
    /// without rewriting data; afterwards older versions can leave the key file. Prints
    /// {"key_version":..,"logs":N,"logs_rewritten":N,"data_keys_rewrapped":N}.
    Rekey,
}

/// The key file every command opens the data directory with (`--key-file`, else
/// `$WEIR_KEY_FILE`), set once in `main`.
static KEY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The key source of the data directory, if a key file was given.
pub(crate) fn key_source() -> Option<KeySource> {
    KEY_FILE.get().and_then(|f| f.as_ref()).map(KeySource::file)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = cli.data.clone().or_else(|| std::env::var_os("WEIR_DATA").map(PathBuf::from));
    let data = data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let key_file =
        cli.key_file.clone().or_else(|| std::env::var_os("WEIR_KEY_FILE").filter(|v| !v.is_empty()).map(PathBuf::from));
    let _ = KEY_FILE.set(key_file);
    let result = match cli.command {
        Command::Demo => demo::run(&data).map(|()| ExitCode::SUCCESS),
        Command::Stream { command } => streams::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Queue { command } => queues::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Topic { command } => topics::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Firehose { command } => firehose::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Inspect(args) => files::inspect(&args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => files::verify(&args),
        Command::Salvage(args) => files::salvage(&args),
        Command::Keygen { name } => keygen(&name).map(|()| ExitCode::SUCCESS),
        Command::Rekey => rekey(&data).map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(&data, args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        // The reader of our output went away (`weir stream read ... | head`): nothing to say.
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Failed(message)) => {
            let _ = writeln!(std::io::stderr(), "weir: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the engine on `data`, waiting for the directory lock as long as `$WEIR_LOCK_WAIT_MS`
/// says (10 s by default).
fn open_engine(data: &std::path::Path) -> CliResult<Engine> {
    let wait_ms = match std::env::var("WEIR_LOCK_WAIT_MS") {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            CliError::Failed(format!("WEIR_LOCK_WAIT_MS must be a whole number of milliseconds, not {text:?}"))
        })?,
        Err(_) => DEFAULT_LOCK_WAIT_MS,
    };
    warn_if_key_file_is_open_to_others();
    let options = Options { lock_wait: Duration::from_millis(wait_ms), key_source: key_source(), ..Options::default() };
    Engine::open(data, options).map_err(|e| match e {
        weir::Error::Locked { .. } => CliError::Failed(format!(
            "{e}; gave up after waiting {:.1} s. Stop the other process, or pass --data to use another directory",
            wait_ms as f64 / 1000.0
        )),
        other => other.into(),
    })
}

/// `weir keygen NAME`: one key-file line on stdout.
fn keygen(name: &str) -> CliResult<()> {
    let line = weir::generate_key_line(name)?;
    out::Out::new().line(line.trim_end())
}

/// `weir rekey`: every data key rewrapped under the key file's newest version.
fn rekey(data: &std::path::Path) -> CliResult<()> {
    if key_source().is_none() {
        return Err(CliError::Failed("rekey needs the key file: --key-file FILE or $WEIR_KEY_FILE".into()));
    }
    let engine = open_engine(data)?;
    let report = engine.rekey()?;
    out::Out::new().json(&report)
}

/// Says on stderr when the key file can be read by its group or by others: whoever reads it
/// reads the data.
fn warn_if_key_file_is_open_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let Some(Some(path)) = KEY_FILE.get() else { return };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "weir: warning: key file {} can be read by its group or others; `chmod 600` it",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
