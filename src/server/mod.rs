//! `weir serve`: the engine as a local AWS endpoint. SQS over HTTP/1.1 and cleartext HTTP/2,
//! in both of its wire protocols (AWS JSON 1.0 and the query protocol), SNS (the query
//! protocol, with HTTP/HTTPS subscriptions delivered from here), Firehose (AWS JSON 1.1, with
//! the deliveries of its delivery streams running inside the server), plus `GET /metrics`
//! (Prometheus text) and `GET /health`, on one port.
//!
//! The server uses only the engine's public API. The engine stays synchronous: requests call it
//! in place on the request's thread (tokio's `block_in_place`, within a bounded pool of
//! threads), and a long poll waits on the async side (the engine's change future and a timer),
//! never on a parked thread of its own. Built only with the `server` feature.
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir::server::{Server, ServerConfig};
//! use weir::{Engine, Options};
//!
//! let engine = Arc::new(Engine::open("./weir-data", Options::default())?);
//! let server = Server::bind(engine, ServerConfig::new("127.0.0.1:0".parse()?))?;
//! println!("SQS endpoint: {}", server.endpoint());
//! let stopper = server.stopper();
//! std::thread::spawn(move || {
//!     // ... later, from anywhere:
//!     stopper.stop();
//! });
//! server.run()?; // returns once stopped and every request in flight is answered
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout (see ARCHITECTURE.md): `listener` accepts and serves connections (through `tls` with
//! `--tls-cert`); `route` reads a request, tells its service, protocol and operation apart and
//! passes it through `auth` (SigV4 with `--auth`) to the service (`sqs`, whose `access` hook
//! authorizes each operation, `sns` and `firehose`); `wire` holds the protocols every service
//! shares; `http_client` makes the server's own requests (Firehose's HTTP endpoint deliveries,
//! `sns::delivery`'s POSTs to HTTP/HTTPS subscriptions); `metrics` and `logging` observe.

pub(crate) mod amqp;
pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod firehose;
pub(crate) mod http_client;
pub(crate) mod kinesis;
pub(crate) mod listener;
pub(crate) mod logging;
pub(crate) mod messaging;
pub(crate) mod metrics;
pub(crate) mod mqtt;
pub(crate) mod protocols;
pub(crate) mod route;
pub(crate) mod sns;
pub(crate) mod sqs;
pub(crate) mod stomp;
pub(crate) mod tls;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::Engine;
pub use logging::LogLevel;
pub use protocols::Protocol;
pub use tls::TlsFiles;

use auth::credentials::CredentialStore;
/// The pure codecs of the AWS wire that clients need too: CBOR and the event stream encoding.
pub use wire::{cbor, eventstream};

/// Default address `weir serve` listens on (ElasticMQ's port, which SQS tooling often expects).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9324";
/// Default account id in queue URLs and ARNs (the one local emulators use).
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// Default region in ARNs.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Largest request body: a 1 MiB SQS batch as percent-encoded form (up to 3 bytes per byte of
/// UTF-8) or JSON with escapes, with room to spare. Larger bodies get an error; the connection
/// stays usable.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// Most threads that may be inside an engine call at once (tokio's blocking pool, which
/// `block_in_place` hands a request's async work to while it calls the engine): enough for many
/// concurrent fsyncs,
/// bounded so that a flood of requests queues rather than spawning threads.
pub const DEFAULT_BLOCKING_THREADS: usize = 64;
/// How long a Kinesis shard iterator lasts, as Kinesis's: 5 minutes.
pub const DEFAULT_KINESIS_ITERATOR_LIFETIME: Duration = Duration::from_secs(300);
/// How long a stop waits for requests in flight before it closes their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Account id of queue URLs and ARNs (12 digits).
    pub account_id: String,
    /// Region of ARNs.
    pub region: String,
    /// Least severe log level written to stderr.
    pub log_level: LogLevel,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most threads inside engine calls at once (tokio's blocking pool).
    pub blocking_threads: usize,
    /// Async worker threads (default: 2, one a core of the machine weir is sized for).
    pub worker_threads: usize,
    /// `--auth FILE`: the credentials file; every request must then carry a valid SigV4
    /// signature of one of its keys, and policies decide what it may do. `None`: open.
    pub auth_file: Option<PathBuf>,
    /// `--tls-cert`/`--tls-key`: serve HTTPS, and TLS on every messaging listener. `None`:
    /// cleartext.
    pub tls: Option<TlsFiles>,
    /// The directory that stands in for S3 in Firehose destinations: bucket `B` is
    /// `buckets_dir/B`. Default (`None`): `DATA_DIR/buckets`.
    pub buckets_dir: Option<PathBuf>,
    /// How long a Kinesis shard iterator lasts, by the engine clock (default
    /// [`DEFAULT_KINESIS_ITERATOR_LIFETIME`], as Kinesis's); tests shorten it.
    pub kinesis_iterator_lifetime: Duration,
    /// Whether provisioned streams created over the wire enforce Kinesis's per-shard
    /// throughput limits (writes 1 MiB/s and 1,000 records/s, reads 2 MiB/s per shard; over
    /// them: `ProvisionedThroughputExceededException`). Off by default, as local emulators.
    pub kinesis_throughput_limits: bool,
    /// `--amqp ADDR`: serve AMQP 0-9-1 there (port 0: any free port). `None`: no AMQP.
    pub amqp: Option<SocketAddr>,
    /// `--mqtt ADDR`: serve MQTT there. `None`: no MQTT.
    pub mqtt: Option<SocketAddr>,
    /// `--stomp ADDR`: serve STOMP there. `None`: no STOMP.
    pub stomp: Option<SocketAddr>,
}

impl ServerConfig {
    /// Defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            region: DEFAULT_REGION.to_string(),
            log_level: LogLevel::Info,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            blocking_threads: DEFAULT_BLOCKING_THREADS,
            worker_threads: 2,
            auth_file: None,
            tls: None,
            buckets_dir: None,
            kinesis_iterator_lifetime: DEFAULT_KINESIS_ITERATOR_LIFETIME,
            kinesis_throughput_limits: false,
            amqp: None,
            mqtt: None,
            stomp: None,
        }
    }

    /// The address asked for `protocol`, if any.
    pub fn protocol_addr(&self, protocol: Protocol) -> Option<SocketAddr> {
        match protocol {
            Protocol::Amqp => self.amqp,
            Protocol::Mqtt => self.mqtt,
            Protocol::Stomp => self.stomp,
        }
    }

    /// Checks the account id and region as AWS would accept them.
    pub fn validate(&self) -> Result<()> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidArgument(format!(
                "account id must be 12 digits, not {:?}",
                self.account_id.chars().take(40).collect::<String>()
            )));
        }
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(Error::InvalidArgument(format!(
                "region must be lowercase letters, digits and '-' (like us-east-1), not {:?}",
                self.region.chars().take(40).collect::<String>()
            )));
        }
        if self.blocking_threads == 0 || self.worker_threads == 0 {
            return Err(Error::InvalidArgument("the server needs at least one thread of each kind".into()));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        // A constant that parses.
        ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 9324)))
    }
}

impl From<SocketAddr> for ServerConfig {
    fn from(listen: SocketAddr) -> Self {
        ServerConfig::new(listen)
    }
}

/// Stops a running [`Server`]: it stops accepting, answers waiting long polls (empty),
/// finishes the requests in flight, and [`Server::run`] returns. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stopper {
    tx: Arc<watch::Sender<bool>>,
}

impl Stopper {
    /// Asks the server to stop; returns at once.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }
}

/// What every request handler shares: the engine, the configuration, observers, and the stop
/// signal.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    pub local_addr: SocketAddr,
    pub identity: sqs::urls::Identity,
    pub metrics: metrics::Metrics,
    pub log: logging::Logger,
    pub stop: watch::Receiver<bool>,
    pub sns_deliveries: sns::delivery::Deliveries,
    /// The keys of `--auth`, if any.
    pub credentials: Option<Arc<CredentialStore>>,
    /// The running deliveries of Firehose delivery streams.
    pub firehose: firehose::runner::Runners,
    /// Consumers and exclusive queues of the messaging protocols' connections.
    pub registry: messaging::Registry,
    /// MQTT's live sessions and retained messages.
    pub mqtt: mqtt::broker::Broker,
    request_ids: AtomicU64,
    boot_nanos: u64,
}

impl Shared {
    /// A request id unique in this process (UUID-shaped, as AWS's).
    pub fn next_request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.boot_nanos.to_be_bytes());
        id[8..].copy_from_slice(&n.to_be_bytes());
        crate::text::uuid(&id)
    }

    /// What the authentication step needs: the keys, the account and region, and the engine
    /// clock's time.
    pub fn auth_settings(&self) -> auth::AuthSettings<'_> {
        auth::AuthSettings {
            store: self.credentials.as_deref(),
            account_id: &self.config.account_id,
            region: &self.config.region,
            now_ms: self.engine.clock().now_ms(),
        }
    }

    /// Where Firehose's S3 buckets are (see [`ServerConfig::buckets_dir`]).
    pub fn buckets_dir(&self) -> PathBuf {
        self.config.buckets_dir.clone().unwrap_or_else(|| self.engine.dir().join("buckets"))
    }

    /// True once a stop was asked for.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs `f` with the engine where it may block (an engine call waits for its fsync).
    ///
    /// It runs on the request's own thread through `block_in_place`, which first hands the
    /// thread's other async work to another thread of the pool: the request does not wait for
    /// a pool thread to be woken and then for its own task to be woken back, two context
    /// switches each way that cost more than the engine call itself on a small machine. A
    /// panic is caught and reported, never unwound through the connection.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> std::result::Result<T, BlockingFailed> {
        let engine = &self.engine;
        tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(engine))))
            .map_err(BlockingFailed::from_panic)
    }
}

/// An engine call that panicked (a bug, never input).
#[derive(Debug)]
pub(crate) struct BlockingFailed(pub String);

impl BlockingFailed {
    /// The panic's message, caught by `catch_unwind`.
    pub(crate) fn from_panic(panic: Box<dyn std::any::Any + Send>) -> Self {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        BlockingFailed(what)
    }
}

/// Reads the credentials file of a running server again (what SIGHUP does for `weir serve`):
/// rotated keys take effect for the next request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    store: Option<Arc<CredentialStore>>,
}

impl Reloader {
    /// Reads the file again and returns how many keys it has; on any error the server keeps
    /// the keys it had. A server without `--auth` has nothing to reload (`Ok(0)`).
    pub fn reload(&self) -> Result<usize> {
        self.store.as_ref().map_or(Ok(0), |s| s.reload())
    }
}

/// An HTTP server over an engine. See the [module documentation](self).
pub struct Server {
    listener: std::net::TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    credentials: Option<Arc<CredentialStore>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The messaging listeners (`--amqp`, `--mqtt`, `--stomp`) and their TLS (no ALPN).
    protocols: protocols::ProtocolListeners,
    protocol_tls: Option<tokio_rustls::TlsAcceptor>,
    stop_tx: Arc<watch::Sender<bool>>,
    on_ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("listen", &self.local_addr()).finish()
    }
}

impl Server {
    /// Binds the listening socket (so the port is known, and taken, at once) without serving
    /// yet; [`Server::run`] serves.
    pub fn bind(engine: Arc<Engine>, config: impl Into<ServerConfig>) -> Result<Server> {
        let config = config.into();
        config.validate()?;
        let credentials = match &config.auth_file {
            Some(path) => Some(Arc::new(CredentialStore::open(path)?)),
            None => None,
        };
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let protocol_tls = config.tls.as_ref().map(|files| tls::acceptor_with_alpn(files, Vec::new())).transpose()?;
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| Error::io("listen on", config.listen.to_string(), e))?;
        listener.set_nonblocking(true).map_err(|e| Error::io("configure socket", config.listen.to_string(), e))?;
        let wanted: Vec<(Protocol, Option<SocketAddr>)> =
            Protocol::ALL.iter().map(|&p| (p, config.protocol_addr(p))).collect();
        let protocols = protocols::ProtocolListeners::bind(&wanted)?;
        if config.amqp.is_some() {
            amqp::predeclare(&engine)?;
        }
        let (stop_tx, _) = watch::channel(false);
        // Envelopes, ARNs and the topic -> queue delivery check name this server's region,
        // account and address.
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = listener.local_addr().unwrap_or(config.listen);
        engine.set_envelope_context(crate::topic::EnvelopeContext {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            endpoint: format!("{scheme}://{addr}"),
        });
        Ok(Server {
            listener,
            engine,
            config,
            credentials,
            tls,
            protocols,
            protocol_tls,
            stop_tx: Arc::new(stop_tx),
            on_ready: None,
        })
    }

    /// The address a messaging protocol listens on (`--amqp` and the like), with the port
    /// chosen when asked for port 0; `None` if it was not asked for.
    pub fn protocol_addr(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.protocols.local_addr(protocol)
    }

    /// The address the server listens on (with the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// The endpoint URL to give SDKs (`endpoint_url`, `--endpoint-url`): `https://` with TLS.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The line `weir serve` prints once it accepts connections:
    /// `{"listening":"127.0.0.1:PORT","endpoint":"http://127.0.0.1:PORT","amqp":"127.0.0.1:PORT","auth":"none"}`
    /// (`"auth":"sigv4"` with `--auth`, `https://` with TLS; `amqp`, `mqtt` and `stomp` only
    /// for the listeners asked for).
    pub fn startup_line(&self) -> String {
        // Written by hand: the field order is part of the contract.
        let auth = if self.credentials.is_some() { "sigv4" } else { "none" };
        let mut line = format!(r#"{{"listening":"{}","endpoint":"{}""#, self.local_addr(), self.endpoint());
        for protocol in Protocol::ALL {
            if let Some(addr) = self.protocol_addr(protocol) {
                line.push_str(&format!(r#","{}":"{addr}""#, protocol.name()));
            }
        }
        line.push_str(&format!(r#","auth":"{auth}"}}"#));
        line
    }

    /// A handle that reads the credentials file again (key rotation).
    pub fn reloader(&self) -> Reloader {
        Reloader { store: self.credentials.clone() }
    }

    /// A handle that stops the server from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper { tx: Arc::clone(&self.stop_tx) }
    }

    /// Calls `f` with the listening address once the server accepts connections.
    pub fn on_ready(mut self, f: impl FnOnce(SocketAddr) + Send + 'static) -> Self {
        self.on_ready = Some(Box::new(f));
        self
    }

    /// Serves until [`Stopper::stop`]; then stops accepting, answers waiting long polls, and
    /// returns once every request in flight is answered (or [`SHUTDOWN_GRACE`] passed).
    pub fn run(self) -> Result<()> {
        self.run_inner(false)
    }

    /// [`Server::run`], also stopping on SIGINT or SIGTERM (what `weir serve` does).
    pub fn run_until_signal(self) -> Result<()> {
        self.run_inner(true)
    }

    fn run_inner(self, signals: bool) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.worker_threads)
            .max_blocking_threads(self.config.blocking_threads)
            .thread_name("weir-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the server runtime", self.config.listen.to_string(), e))?;
        let local_addr = self.local_addr();
        let boot_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            engine: Arc::clone(&self.engine),
            identity: sqs::urls::Identity {
                account_id: self.config.account_id.clone(),
                region: self.config.region.clone(),
            },
            metrics: metrics::Metrics::default(),
            log: logging::Logger::new(self.config.log_level),
            stop: self.stop_tx.subscribe(),
            sns_deliveries: sns::delivery::Deliveries::default(),
            credentials: self.credentials,
            firehose: firehose::runner::Runners::default(),
            registry: messaging::Registry::default(),
            mqtt: mqtt::broker::Broker::default(),
            config: self.config,
            local_addr,
            request_ids: AtomicU64::new(0),
            boot_nanos,
        });
        if shared.credentials.is_none() && !local_addr.ip().is_loopback() {
            shared.log.warn(
                "serving without authentication on a non-loopback address: anyone who can reach it can read and change every queue (use --auth FILE)",
                logging::fields!("listening" => local_addr.to_string()),
            );
        }
        let stop_tx = Arc::clone(&self.stop_tx);
        let tls = self.tls;
        let protocol_tls = self.protocol_tls;
        let protocols = self.protocols;
        let listener = self.listener;
        let on_ready = self.on_ready;
        let result = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::io("listen on", local_addr.to_string(), e))?;
            if signals {
                listener::stop_on_signals(Arc::clone(&stop_tx), Arc::clone(&shared))?;
            }
            if let Some(f) = on_ready {
                f(local_addr);
            }
            // Delivery streams and HTTP/HTTPS subscriptions deliver while the server runs.
            let deliveries = tokio::spawn(firehose::runner::supervise(Arc::clone(&shared)));
            tokio::spawn(sns::delivery::run(Arc::clone(&shared)));
            let (_, served) = tokio::join!(
                listener::serve(listener, Arc::clone(&shared), tls),
                protocols.serve(Arc::clone(&shared), protocol_tls),
            );
            let _ = deliveries.await;
            served
        });
        // Blocking calls still running (none once every connection is closed) finish here.
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
        result
    }
}
