//! STOMP 1.2 (and 1.0, 1.1) on the engine: `weir serve --stomp ADDR`. See ARCHITECTURE.md,
//! "STOMP on the engine", for how destinations, subscriptions, acknowledgements and
//! transactions map onto queues, topics and held (in-flight) messages.
//!
//! Layout: `codec` is the wire format (pure); `connection` one connection (CONNECT, frames,
//! heart-beats, receipts, ERROR and close); `destination` what `/queue/NAME` and
//! `/topic/NAME` are in the engine; `message` a STOMP message as the engine keeps it;
//! `deliveries` the connection's unacknowledged messages; `subscription` one SUBSCRIBE.

pub(crate) mod codec;
mod connection;
mod deliveries;
mod destination;
mod message;
mod subscription;

use std::future::Future;
use std::pin::Pin;

use super::protocols::{BoxedIo, Session};

/// Serves one STOMP connection.
pub(crate) fn serve_connection(io: BoxedIo, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(connection::run(io, session))
}

/// What ends a session with an ERROR frame: its `message` header, a longer explanation as its
/// body, and the `receipt` of the frame that failed, if it asked for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StompError {
    /// The short reason (the `message` header).
    pub message: String,
    /// More about it (the body).
    pub detail: String,
}

impl StompError {
    /// An error with a short reason and a longer explanation.
    pub fn new(message: impl Into<String>, detail: impl Into<String>) -> StompError {
        StompError { message: message.into(), detail: detail.into() }
    }
}

impl From<crate::Error> for StompError {
    fn from(e: crate::Error) -> StompError {
        let message = match &e {
            crate::Error::NotFound { .. } => "not found",
            crate::Error::InvalidArgument(_) | crate::Error::InvalidName { .. } => "invalid argument",
            crate::Error::TooLarge { .. } => "too large",
            crate::Error::AlreadyExists { .. } => "already exists",
            _ => "internal error",
        };
        StompError::new(message, e.to_string())
    }
}

impl From<super::BlockingFailed> for StompError {
    fn from(e: super::BlockingFailed) -> StompError {
        StompError::new("internal error", e.0)
    }
}
