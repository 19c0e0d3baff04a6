//! `weir`: the command-line interface to a weir data directory.
//!
//! Every command that prints data prints JSON, one object per line, flushed line by line, so
//! scripts can drive weir through it; `demo` and `inspect` (without `--json`) print text for
//! people. Errors go to stderr as `weir: <message>` with exit code 1; usage errors exit 2.

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
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir::{Engine, Options};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = cli.data.clone().or_else(|| std::env::var_os("WEIR_DATA").map(PathBuf::from));
    let data = data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let result = match cli.command {
        Command::Demo => demo::run(&data).map(|()| ExitCode::SUCCESS),
        Command::Stream { command } => streams::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Queue { command } => queues::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Topic { command } => topics::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Firehose { command } => firehose::run(&data, command).map(|()| ExitCode::SUCCESS),
        Command::Inspect(args) => files::inspect(&args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => files::verify(&args),
        Command::Salvage(args) => files::salvage(&args),
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
    let options = Options { lock_wait: Duration::from_millis(wait_ms), ..Options::default() };
    Engine::open(data, options).map_err(|e| match e {
        weir::Error::Locked { .. } => CliError::Failed(format!(
            "{e}; gave up after waiting {:.1} s. Stop the other process, or pass --data to use another directory",
            wait_ms as f64 / 1000.0
        )),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
