//! `weir serve`: the data directory as a local AWS endpoint (SQS, SNS, Kinesis, Firehose), and
//! with `--amqp`, `--mqtt` and `--stomp` a message broker, until SIGINT or SIGTERM; SIGHUP
//! reads the `--auth` credentials file again.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use weir::server::{LogLevel, Server, ServerConfig, TlsFiles, DEFAULT_ACCOUNT_ID, DEFAULT_LISTEN, DEFAULT_REGION};

use crate::out::{CliError, CliResult};

/// Flags of `weir serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Account id in queue URLs and ARNs (12 digits).
    #[arg(long, value_name = "ID", default_value = DEFAULT_ACCOUNT_ID)]
    account_id: String,
    /// Region in ARNs.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REGION)]
    region: String,
    /// Least severe log line written to stderr: error, warn, info or debug (one line per request).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: LogLevel,
    /// Credentials file: every request must then be signed (SigV4) with one of its keys, and
    /// access policies decide what each key may do. SIGHUP reads it again. Without it the
    /// server is open.
    #[arg(long = "auth", value_name = "FILE")]
    auth: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The directory that stands in for S3 in Firehose destinations: bucket B is DIR/B
    /// [default: DATA_DIR/buckets].
    #[arg(long, value_name = "DIR")]
    buckets_dir: Option<std::path::PathBuf>,
    /// Provisioned Kinesis streams created over the wire enforce Kinesis's per-shard
    /// throughput limits (ProvisionedThroughputExceededException past them).
    #[arg(long)]
    kinesis_throughput_limits: bool,
    /// How long a Kinesis shard iterator lasts, in milliseconds (tests shorten it).
    #[arg(long, value_name = "MS", hide = true)]
    kinesis_iterator_lifetime_ms: Option<u64>,
    /// Also serve AMQP 0-9-1 (RabbitMQ's clients) on ADDR; port 0 picks a free port. TLS
    /// (AMQPS) on that port when --tls-cert is given.
    #[arg(long, value_name = "ADDR")]
    amqp: Option<SocketAddr>,
    /// Also serve MQTT on ADDR; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    mqtt: Option<SocketAddr>,
    /// Also serve STOMP on ADDR; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    stomp: Option<SocketAddr>,
}

/// Opens the engine, serves it, and closes it cleanly once stopped.
pub fn run(data: &Path, args: ServeArgs) -> CliResult<()> {
    let config = ServerConfig {
        account_id: args.account_id,
        region: args.region,
        log_level: args.log_level,
        auth_file: args.auth,
        tls: args.tls_cert.zip(args.tls_key).map(|(cert, key)| TlsFiles { cert, key }),
        buckets_dir: args.buckets_dir,
        kinesis_throughput_limits: args.kinesis_throughput_limits,
        kinesis_iterator_lifetime: args
            .kinesis_iterator_lifetime_ms
            .map_or(weir::server::DEFAULT_KINESIS_ITERATOR_LIFETIME, std::time::Duration::from_millis),
        amqp: args.amqp,
        mqtt: args.mqtt,
        stomp: args.stomp,
        ..ServerConfig::new(args.listen)
    };
    config.validate()?;
    let engine = Arc::new(crate::open_engine(data)?);
    let server = Server::bind(Arc::clone(&engine), config)?;
    let line = server.startup_line();
    server
        .on_ready(move |_| {
            let mut out = std::io::stdout().lock();
            // A closed stdout (the starter stopped reading) must not stop the server.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        })
        .run_until_signal()?;
    // Every request is answered and the runtime is gone: this is the last handle.
    match Arc::try_unwrap(engine) {
        Ok(engine) => {
            engine.flush()?;
            drop(engine);
            Ok(())
        }
        Err(engine) => {
            engine.flush()?;
            Err(CliError::Failed(
                "the server stopped but the engine is still in use; it was flushed, not closed".into(),
            ))
        }
    }
}
