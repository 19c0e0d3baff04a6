//! The accept loop: every connection is served by hyper-util's `auto` builder, which speaks
//! HTTP/1.1 (keep-alive) and cleartext HTTP/2 (told apart by the client's preface), and is
//! watched for a graceful stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::auth::Connection;
use super::logging::{fields, LogLevel};
use super::{route, tls, Shared, SHUTDOWN_GRACE};
use crate::error::{Error, Result};

/// How long a client may take to send a request's headers before its connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts and serves connections until the stop signal; then stops accepting, lets every
/// connection finish its requests in flight (idle keep-alive connections close at once), and
/// returns.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut stop = shared.stop.clone();
    shared.log.log(LogLevel::Info, "listening", fields!("listening" => shared.local_addr.to_string()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = Connection { peer, secure: tls.is_some() };
                    match &tls {
                        None => serve_connection(&builder, graceful.watcher(), stream, connection, &shared),
                        // The TLS hook: the handshake runs in the connection's own task.
                        Some(acceptor) => {
                            let (acceptor, builder, watcher, shared) =
                                (acceptor.clone(), Arc::clone(&builder), graceful.watcher(), Arc::clone(&shared));
                            tokio::spawn(async move {
                                match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => serve_connection(&builder, watcher, stream, connection, &shared),
                                    Ok(Err(e)) => shared.log.log(
                                        LogLevel::Debug,
                                        "TLS handshake failed",
                                        fields!("peer" => peer.to_string(), "error" => e.to_string()),
                                    ),
                                    Err(_) => shared.log.log(
                                        LogLevel::Debug,
                                        "TLS handshake timed out",
                                        fields!("peer" => peer.to_string()),
                                    ),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    shared.log.warn("accept failed", fields!("error" => e.to_string()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.wait_for(|stopping| *stopping) => break,
        }
    }
    drop(listener);
    shared.log.log(LogLevel::Info, "stopping: no new connections; finishing requests in flight", fields!());
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            shared.log.warn("requests still in flight after the grace period; closing their connections", fields!());
        }
    }
}

/// Serves one connection (plain or TLS) on its own task, watched for a graceful stop; each
/// request carries the connection's facts (peer address, TLS) for authentication.
fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    connection: Connection,
    shared: &Arc<Shared>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn_shared = Arc::clone(shared);
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let shared = Arc::clone(&conn_shared);
        req.extensions_mut().insert(connection);
        async move { Ok::<_, Infallible>(route::dispatch(shared, req).await) }
    });
    let conn = watcher.watch(builder.serve_connection(TokioIo::new(io), service).into_owned());
    let log_shared = Arc::clone(shared);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log_shared.log.log(
                LogLevel::Debug,
                "connection ended with an error",
                fields!("peer" => connection.peer.to_string(), "error" => e.to_string()),
            );
        }
    });
}

/// Asks the server to stop on SIGINT or SIGTERM.
pub(crate) fn stop_on_signals(stop: Arc<watch::Sender<bool>>, shared: Arc<Shared>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("install a SIGINT handler", "signal", e))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| Error::io("install a SIGTERM handler", "signal", e))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| Error::io("install a SIGHUP handler", "signal", e))?;
    tokio::spawn(async move {
        let name = loop {
            tokio::select! {
                _ = interrupt.recv() => break "SIGINT",
                _ = terminate.recv() => break "SIGTERM",
                // SIGHUP: read the credentials file again (key rotation).
                _ = hangup.recv() => reload_credentials(&shared),
            }
        };
        shared.log.log(LogLevel::Info, "signal received", fields!("signal" => name));
        stop.send_replace(true);
    });
    Ok(())
}

/// Reads the credentials file again, keeping the old keys when the file is wrong.
pub(crate) fn reload_credentials(shared: &Shared) {
    let Some(store) = &shared.credentials else {
        shared.log.log(LogLevel::Info, "SIGHUP: no credentials file to read again (no --auth)", fields!());
        return;
    };
    match store.reload() {
        Ok(keys) => shared.log.log(
            LogLevel::Info,
            "credentials reloaded",
            fields!("file" => store.path().display().to_string(), "keys" => keys),
        ),
        Err(e) => shared.log.error(
            "the credentials file could not be read again; the keys stay as they were",
            fields!("file" => store.path().display().to_string(), "error" => e.to_string()),
        ),
    }
}
