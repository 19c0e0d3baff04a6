//! MQTT 3.1.1 and 5 (devices, IoT) on the engine. See ARCHITECTURE.md, "MQTT on the engine".

pub(crate) mod broker;
pub(crate) mod codec;
mod connection;
mod consumer;
pub(crate) mod expiry;
pub(crate) mod message;
pub(crate) mod properties;
pub(crate) mod reason;
pub(crate) mod topic;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::protocols::{BoxedIo, Session};

/// Largest packet weir takes or sends (fixed header included): a message up to the engine's
/// largest body, with room for the topic and properties.
pub(crate) const MAX_PACKET: usize = crate::queue::config::MAX_MAX_MESSAGE_BYTES + 128 * 1024;
/// How long a client has to send CONNECT after the connection opens.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection taking a session over waits for the old one to let go.
pub(crate) const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// Serves one MQTT connection.
pub(crate) fn serve_connection(io: BoxedIo, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(connection::run(io, session))
}
