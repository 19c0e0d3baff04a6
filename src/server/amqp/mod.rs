//! AMQP 0-9-1 (RabbitMQ's clients) on the engine: `weir serve --amqp ADDR`. See
//! ARCHITECTURE.md, "AMQP on the engine", for how exchanges, queues and deliveries map onto
//! topics, queues and in-flight messages.
//!
//! Layout: `codec`, `methods` and `properties` are the wire format (pure); `connection` is one
//! connection (handshake, frames, heartbeats, close); `channel` one channel (every method,
//! publishes, acknowledgements, transactions, confirms); `consumer` one `basic.consume`;
//! `message` the message as the engine keeps it; `arguments` what `x-` arguments and headers
//! bindings mean; `access` the authorization hook; `errors` the reply codes.

pub(crate) mod access;
pub(crate) mod arguments;
pub(crate) mod channel;
pub(crate) mod codec;
pub(crate) mod connection;
pub(crate) mod consumer;
pub(crate) mod errors;
pub(crate) mod message;
pub(crate) mod methods;
pub(crate) mod properties;

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::protocols::{BoxedIo, Session};
use codec::{encode_frame, frame_type, FRAME_OVERHEAD};
use methods::Method;
use properties::{BasicProperties, ContentHeader};

/// Serves one AMQP connection.
pub(crate) fn serve_connection(io: BoxedIo, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(connection::run(io, session))
}

/// The exchanges every AMQP broker has: declared (durable) when the listener starts.
pub(crate) fn predeclare(engine: &crate::Engine) -> crate::Result<()> {
    use crate::topic::{ExchangeDef, ExchangeKind};
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        engine.declare_exchange(name, ExchangeDef { kind, durable: true, auto_delete: false, internal: false })?;
    }
    Ok(())
}

/// A method frame.
pub(crate) fn method_frame(channel: u16, method: &Method) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(&mut out, frame_type::METHOD, channel, &method.encode());
    out.freeze()
}

/// Where a channel writes: the connection's writer, and the negotiated frame size.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub tx: mpsc::Sender<Bytes>,
    pub frame_max: u32,
}

impl Outbox {
    /// Sends a method; false if the connection is gone.
    pub async fn method(&self, channel: u16, method: &Method) -> bool {
        self.tx.send(method_frame(channel, method)).await.is_ok()
    }

    /// Sends a method with content (header and body frames) as one piece, so no other frame
    /// of the channel comes between; false if the connection is gone.
    pub async fn content(&self, channel: u16, method: &Method, properties: &BasicProperties, body: &[u8]) -> bool {
        self.tx.send(self.content_bytes(channel, method, properties, body)).await.is_ok()
    }

    /// The frames of a method with content.
    pub fn content_bytes(&self, channel: u16, method: &Method, properties: &BasicProperties, body: &[u8]) -> Bytes {
        let header = ContentHeader {
            class_id: methods::class::BASIC,
            body_size: body.len() as u64,
            properties: properties.clone(),
        };
        let mut out = BytesMut::with_capacity(body.len() + 256);
        encode_frame(&mut out, frame_type::METHOD, channel, &method.encode());
        encode_frame(&mut out, frame_type::HEADER, channel, &header.encode());
        let piece = (self.frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
        for chunk in body.chunks(piece) {
            encode_frame(&mut out, frame_type::BODY, channel, chunk);
        }
        out.freeze()
    }
}
