//! RabbitMQ at its strongest durability: durable queues (a quorum queue, or a classic queue as
//! the second row), persistent messages (delivery mode 2), publisher confirms (a send returns
//! once the broker confirmed it, i.e. after its fsync), manual acknowledgements, and a tuned
//! prefetch. Every thread has its own connection and channel. The same client code drives
//! `weir serve --amqp` in the `amqp_cycle` row ([`Kind::Weir`]).

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, ExchangeKind};

use crate::systems::{block_on, Receiver, Sender, Setup};

/// Unacknowledged deliveries a consumer may hold (`basic.qos`), by default enough that a
/// receiver always has a batch of 10 ready and small enough that 8 receivers share the queue
/// evenly; `--rabbit-prefetch` sets it (BENCHMARKS.md gives the values tried).
pub static PREFETCH: AtomicU16 = AtomicU16::new(DEFAULT_PREFETCH);
pub const DEFAULT_PREFETCH: u16 = 100;

fn prefetch() -> u16 {
    PREFETCH.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Quorum,
    Classic,
    /// weir's AMQP listener: a plain durable queue (weir's queues are all durable).
    Weir,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Quorum => "rabbitmq_quorum",
            Kind::Classic => "rabbitmq_classic",
            Kind::Weir => "weir",
        }
    }

    pub fn durability_text(self) -> String {
        let queue = match self {
            Kind::Quorum => "durable quorum queue (one node: its Raft log is fsynced before a confirm)",
            Kind::Classic => {
                "durable classic queue, x-queue-version 2 (a persistent message is confirmed once fsynced)"
            }
            Kind::Weir => {
                "weir serve --amqp (weir::server::Server in this process), Durability::Always: a confirm follows the fsync of the message; a durable queue"
            }
        };
        format!("{queue}; persistent messages, publisher confirms awaited per send, manual acks (multiple, per batch of up to 10), prefetch {}", prefetch())
    }

    fn arguments(self) -> FieldTable {
        let mut args = FieldTable::default();
        match self {
            Kind::Quorum => {
                args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
            }
            Kind::Classic => {
                args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("classic")));
                args.insert("x-queue-version".into(), AMQPValue::LongInt(2));
            }
            Kind::Weir => {}
        }
        args
    }
}

fn err(e: lapin::Error) -> String {
    format!("rabbitmq: {e}")
}

async fn channel(uri: &str) -> Result<(Connection, Channel), String> {
    let conn = Connection::connect(uri, ConnectionProperties::default()).await.map_err(err)?;
    let ch = conn.create_channel().await.map_err(err)?;
    Ok((conn, ch))
}

/// A queue (`queue_cycle`) or a fan-out exchange into 10 queues (`topic_fanout`).
pub struct RabbitSetup {
    uri: String,
    kind: Kind,
    /// Where sends go: the default exchange with the queue's name, or the fan-out exchange.
    exchange: String,
    routing_key: String,
    queues: Vec<String>,
    admin: (Connection, Channel),
}

impl RabbitSetup {
    pub fn queue(port: u16, kind: Kind) -> Result<RabbitSetup, String> {
        let id = crate::systems::run_id();
        let name = format!("q-{id}");
        Self::create(port, kind, String::new(), name.clone(), vec![name])
    }

    pub fn fanout(port: u16, kind: Kind, queues: u32) -> Result<RabbitSetup, String> {
        let id = crate::systems::run_id();
        let names = (0..queues).map(|i| format!("fan-{id}-{i}")).collect();
        Self::create(port, kind, format!("fan-{id}"), String::new(), names)
    }

    fn create(
        port: u16,
        kind: Kind,
        exchange: String,
        routing_key: String,
        queues: Vec<String>,
    ) -> Result<RabbitSetup, String> {
        let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        let admin = block_on(async {
            let (conn, ch) = channel(&uri).await?;
            if !exchange.is_empty() {
                ch.exchange_declare(
                    ShortString::from(exchange.as_str()),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions { durable: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await
                .map_err(err)?;
            }
            for q in &queues {
                ch.queue_declare(
                    ShortString::from(q.as_str()),
                    QueueDeclareOptions { durable: true, ..Default::default() },
                    kind.arguments(),
                )
                .await
                .map_err(err)?;
                if !exchange.is_empty() {
                    ch.queue_bind(
                        ShortString::from(q.as_str()),
                        ShortString::from(exchange.as_str()),
                        ShortString::from(""),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(err)?;
                }
            }
            Ok::<_, String>((conn, ch))
        })?;
        Ok(RabbitSetup { uri, kind, exchange, routing_key, queues, admin })
    }
}

impl Drop for RabbitSetup {
    fn drop(&mut self) {
        let (conn, ch) = &self.admin;
        block_on(async {
            for q in &self.queues {
                let _ = ch.queue_delete(ShortString::from(q.as_str()), QueueDeleteOptions::default()).await;
            }
            if !self.exchange.is_empty() {
                let _ = ch
                    .exchange_delete(ShortString::from(self.exchange.as_str()), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = conn.close(200, ShortString::from("done")).await;
        });
    }
}

struct Publisher {
    conn: Connection,
    ch: Channel,
    exchange: ShortString,
    routing_key: ShortString,
}

impl Sender for Publisher {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        block_on(async {
            let confirm = self
                .ch
                .basic_publish(
                    self.exchange.clone(),
                    self.routing_key.clone(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .map_err(err)?;
            match confirm.await.map_err(err)? {
                Confirmation::Ack(_) => Ok(()),
                other => Err(format!("rabbitmq: publish not confirmed: {other:?}")),
            }
        })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        block_on(async {
            let _ = self.conn.close(200, ShortString::from("done")).await;
        });
        let _ = &self.ch;
    }
}

struct ConsumerReceiver {
    conn: Connection,
    ch: Channel,
    consumer: Consumer,
}

impl Receiver for ConsumerReceiver {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        block_on(async {
            let first = match tokio::time::timeout(Duration::from_millis(100), self.consumer.next()).await {
                Err(_) | Ok(None) => return Ok(0),
                Ok(Some(d)) => d.map_err(err)?,
            };
            on_body(&first.data);
            let mut last = first.delivery_tag;
            let mut n = 1u64;
            // Whatever else has already arrived, up to a batch of 10, acked with one frame.
            while n < 10 {
                match futures::FutureExt::now_or_never(self.consumer.next()) {
                    Some(Some(d)) => {
                        let d = d.map_err(err)?;
                        on_body(&d.data);
                        last = d.delivery_tag;
                        n += 1;
                    }
                    _ => break,
                }
            }
            self.ch.basic_ack(last, BasicAckOptions { multiple: true }).await.map_err(err)?;
            Ok(n)
        })
    }
}

impl Drop for ConsumerReceiver {
    fn drop(&mut self) {
        block_on(async {
            let _ = self.conn.close(200, ShortString::from("done")).await;
        });
    }
}

impl Setup for RabbitSetup {
    fn sender(&self, _: usize) -> Result<Box<dyn Sender + '_>, String> {
        let (conn, ch) = block_on(async {
            let (conn, ch) = channel(&self.uri).await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await.map_err(err)?;
            Ok::<_, String>((conn, ch))
        })?;
        Ok(Box::new(Publisher {
            conn,
            ch,
            exchange: ShortString::from(self.exchange.as_str()),
            routing_key: ShortString::from(self.routing_key.as_str()),
        }))
    }

    fn receiver(&self, i: usize) -> Result<Box<dyn Receiver + '_>, String> {
        let queue = self.queues[i % self.queues.len()].clone();
        let _ = self.kind;
        let (conn, ch, consumer) = block_on(async {
            let (conn, ch) = channel(&self.uri).await?;
            ch.basic_qos(prefetch(), BasicQosOptions::default()).await.map_err(err)?;
            let consumer = ch
                .basic_consume(
                    ShortString::from(queue.as_str()),
                    ShortString::from(format!("c-{i}")),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(err)?;
            Ok::<_, String>((conn, ch, consumer))
        })?;
        Ok(Box::new(ConsumerReceiver { conn, ch, consumer }))
    }
}
