//! Listeners of the open messaging protocols (AMQP 0-9-1, and later MQTT and STOMP): what they
//! share, so that each protocol adds only its codec and its session logic.
//!
//! `weir serve --amqp ADDR --mqtt ADDR --stomp ADDR` binds one TCP listener per protocol given
//! (port 0: any free port). Each accepted connection runs on a task of its own: with
//! `--tls-cert`/`--tls-key` the TLS handshake first (every listener of a server with a
//! certificate speaks TLS on its given port, as the AWS endpoint then speaks HTTPS), then the
//! protocol's session ([`Handler`]). A stop ends the accept loops; each session sees the stop
//! signal in its [`Session`] and closes its connection the protocol's way (AMQP: a
//! `connection.close` with 320 `CONNECTION_FORCED`), and the server waits for every session up
//! to [`SHUTDOWN_GRACE`] before it cuts the ones left.
//!
//! Authentication ([`Session::authenticate`]) checks a user name and password against the
//! same credentials file as the AWS endpoint (`--auth`): the user name is an access key id and
//! the password its secret access key. Without `--auth` any credentials are accepted, as the
//! AWS endpoint accepts any signature. Authorization then goes through the same policies
//! ([`super::auth::authorize`]) with the principal it returns.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::auth::{self, AuthError, Principal};
use super::logging::{fields, LogLevel};
use super::{tls, Shared, SHUTDOWN_GRACE};
use crate::error::{Error, Result};

/// An open messaging protocol `weir serve` can listen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AMQP 0-9-1 (RabbitMQ's clients).
    Amqp,
    /// MQTT 3.1.1 and 5.
    Mqtt,
    /// STOMP 1.2.
    Stomp,
}

impl Protocol {
    /// Every protocol, in the order the startup line names them.
    pub const ALL: [Protocol; 3] = [Protocol::Amqp, Protocol::Mqtt, Protocol::Stomp];

    /// The protocol's name in flags, the startup line and logs: `amqp`, `mqtt`, `stomp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Amqp => "amqp",
            Protocol::Mqtt => "mqtt",
            Protocol::Stomp => "stomp",
        }
    }

    /// The session that serves one connection, if this build serves the protocol.
    fn handler(self) -> Option<Handler> {
        match self {
            Protocol::Amqp => Some(super::amqp::serve_connection),
            Protocol::Mqtt => Some(super::mqtt::serve_connection),
            Protocol::Stomp => Some(super::stomp::serve_connection),
        }
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed connection stream.
pub(crate) type BoxedIo = Box<dyn Io>;

/// What a protocol's session runs on one connection until it ends (the client left, an error
/// closed it, or the stop signal asked it to close).
pub(crate) type Handler = fn(BoxedIo, Session) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a session has beside its stream: the server, who the peer is, and the stop signal.
pub(crate) struct Session {
    /// The engine and everything the server shares.
    pub shared: Arc<Shared>,
    /// The protocol served.
    pub protocol: Protocol,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub secure: bool,
    /// Becomes true when the server stops: close the connection (gracefully) soon.
    pub stop: watch::Receiver<bool>,
}

impl Session {
    /// Checks a user name (an access key id of `--auth`) and password (its secret access key)
    /// and returns who the connection acts as. Without `--auth` every pair is accepted and the
    /// connection acts as the owning account, as on the AWS endpoint.
    pub fn authenticate(&self, user: &str, password: &[u8]) -> std::result::Result<Principal, AuthError> {
        auth::authenticate_password(&self.shared.auth_settings(), user, password, self.peer, self.secure)
    }

    /// Writes a log line with the protocol and peer.
    pub fn log(&self, level: LogLevel, msg: &str, mut more: serde_json::Map<String, serde_json::Value>) {
        if !self.shared.log.enabled(level) {
            return;
        }
        more.insert("protocol".into(), self.protocol.name().into());
        more.insert("peer".into(), self.peer.to_string().into());
        self.shared.log.log(level, msg, more);
    }
}

/// The listening sockets of the protocols asked for, bound at [`super::Server::bind`] so their
/// ports are known (and taken) at once.
#[derive(Debug, Default)]
pub(crate) struct ProtocolListeners {
    bound: Vec<(Protocol, std::net::TcpListener)>,
}

impl ProtocolListeners {
    /// Binds a listener for each protocol given an address; refuses a protocol this build does
    /// not serve.
    pub fn bind(wanted: &[(Protocol, Option<SocketAddr>)]) -> Result<ProtocolListeners> {
        let mut bound = Vec::new();
        for &(protocol, addr) in wanted {
            let Some(addr) = addr else { continue };
            if protocol.handler().is_none() {
                return Err(Error::InvalidArgument(format!(
                    "--{} is not served by this build of weir yet",
                    protocol.name()
                )));
            }
            let what = format!("{} listener {addr}", protocol.name());
            let listener = std::net::TcpListener::bind(addr).map_err(|e| Error::io("listen on", &what, e))?;
            listener.set_nonblocking(true).map_err(|e| Error::io("configure socket", &what, e))?;
            bound.push((protocol, listener));
        }
        Ok(ProtocolListeners { bound })
    }

    /// The address a protocol listens on, if it was asked for (with the port chosen for 0).
    pub fn local_addr(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.bound.iter().find(|(p, _)| *p == protocol).and_then(|(_, l)| l.local_addr().ok())
    }

    /// Serves every listener until the stop signal, then waits for their sessions to close.
    pub async fn serve(self, shared: Arc<Shared>, tls: Option<TlsAcceptor>) -> Result<()> {
        let mut running = JoinSet::new();
        for (protocol, listener) in self.bound {
            let addr = listener.local_addr().map_err(|e| Error::io("listen on", protocol.name(), e))?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::io("listen on", format!("{} listener {addr}", protocol.name()), e))?;
            let Some(handler) = protocol.handler() else { continue };
            running.spawn(accept_loop(protocol, listener, handler, Arc::clone(&shared), tls.clone()));
            if protocol == Protocol::Mqtt {
                // Sessions expire by deadlines kept in the engine, across restarts.
                running.spawn(super::mqtt::expiry::run(Arc::clone(&shared)));
            }
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }
}

/// Completes once the stop signal is set (a `Send` future: no guard lives across an await).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            // The server is gone without a stop: nothing will ever set it.
            std::future::pending::<()>().await;
        }
    }
}

/// Writes what a session queues on its outbox to the connection, writing what else waits
/// before each flush, until every sender is gone (then shuts the stream down) or a write fails.
/// Sessions write through it so that their tasks (a connection's, its consumers') never hold
/// the stream.
pub(crate) async fn write_loop(mut writer: WriteHalf<BoxedIo>, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.recv().await {
        if writer.write_all(&chunk).await.is_err() {
            return;
        }
        // Write what else is waiting before one flush.
        while let Ok(more) = rx.try_recv() {
            if writer.write_all(&more).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// How long to wait before accepting again after `accept` failed (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn accept_loop(
    protocol: Protocol,
    listener: TcpListener,
    handler: Handler,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let mut stop = shared.stop.clone();
    let mut sessions = JoinSet::new();
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    shared.log.log(LogLevel::Info, "listening", fields!("protocol" => protocol.name(), "listening" => addr));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let session = Session {
                        shared: Arc::clone(&shared),
                        protocol,
                        peer,
                        secure: tls.is_some(),
                        stop: shared.stop.clone(),
                    };
                    let tls = tls.clone();
                    sessions.spawn(async move {
                        match tls {
                            None => handler(Box::new(stream), session).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => handler(Box::new(stream), session).await,
                                    Ok(Err(e)) => session.log(
                                        LogLevel::Debug,
                                        "TLS handshake failed",
                                        fields!("error" => e.to_string()),
                                    ),
                                    Err(_) => session.log(LogLevel::Debug, "TLS handshake timed out", fields!()),
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    shared.log.warn("accept failed", fields!("protocol" => protocol.name(), "error" => e.to_string()));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished sessions so the set holds only live ones.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    // Every session sees the stop signal and closes its connection the protocol's way.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        shared.log.warn(
            "connections still open after the grace period; closing them",
            fields!("protocol" => protocol.name(), "connections" => sessions.len()),
        );
        sessions.shutdown().await;
    }
}
