//! AMQP 0-9-1 (RabbitMQ's clients) on the engine. See ARCHITECTURE.md, "AMQP on the engine".

pub(crate) mod codec;
pub(crate) mod methods;
pub(crate) mod properties;

use std::future::Future;
use std::pin::Pin;

use super::protocols::{BoxedIo, Session};

/// Serves one AMQP connection.
pub(crate) fn serve_connection(io: BoxedIo, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = (io, session);
    })
}
