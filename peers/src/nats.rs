//! NATS JetStream with file storage, one replica (one server). Every send is a JetStream
//! publish that waits for its PubAck; receivers use pull consumers with explicit acks.
//!
//! - `queue_cycle`: a work-queue stream (a message leaves once acked) and one durable pull
//!   consumer shared by the 8 receivers.
//! - `topic_fanout`: an interest stream with 10 durable pull consumers, one per subscriber
//!   (a message leaves once all 10 acked): JetStream's form of a fan-out into 10 queues.
//! - `stream_put_concurrent` / `stream_read`: a limits stream; reads through a pull consumer
//!   that needs no acks.
//!
//! Every thread has its own connection.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures::StreamExt;

use crate::systems::{block_on, Receiver, Sender, Setup};

fn err(e: impl std::fmt::Display) -> String {
    format!("nats: {e}")
}

async fn context(port: u16) -> Result<Context, String> {
    let client = async_nats::connect(format!("127.0.0.1:{port}")).await.map_err(err)?;
    Ok(jetstream::new(client))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queue,
    Fanout,
    Stream,
}

/// One run's stream and consumers.
pub struct NatsSetup {
    port: u16,
    stream: String,
    subject: String,
    consumers: Vec<String>,
    admin: Context,
}

impl NatsSetup {
    pub fn create(port: u16, kind: Kind, fanout: u32) -> Result<NatsSetup, String> {
        let id = crate::systems::run_id();
        let stream = format!("S{id}");
        let subject = format!("s{id}");
        let (retention, consumers) = match kind {
            Kind::Queue => (RetentionPolicy::WorkQueue, vec!["workers".to_string()]),
            Kind::Fanout => (RetentionPolicy::Interest, (0..fanout).map(|i| format!("sub{i}")).collect()),
            Kind::Stream => (RetentionPolicy::Limits, Vec::new()),
        };
        let admin = block_on(async {
            let js = context(port).await?;
            let s = js
                .create_stream(StreamConfig {
                    name: stream.clone(),
                    subjects: vec![subject.clone()],
                    storage: StorageType::File,
                    retention,
                    num_replicas: 1,
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            for c in &consumers {
                s.create_consumer(pull::Config {
                    durable_name: Some(c.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 100_000,
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            }
            Ok::<_, String>(js)
        })?;
        Ok(NatsSetup { port, stream, subject, consumers, admin })
    }

    /// Publishes `count` records of `len` bytes (pipelined, acks awaited in batches).
    pub fn fill(&self, count: usize, len: usize) -> Result<(), String> {
        let data: Vec<Bytes> = (0..500).map(|i| Bytes::from(crate::harness::noise(len, 100 + i))).collect();
        block_on(async {
            let mut pending = Vec::with_capacity(1000);
            for i in 0..count {
                let ack = self.admin.publish(self.subject.clone(), data[i % data.len()].clone()).await.map_err(err)?;
                pending.push(ack);
                if pending.len() == 1000 {
                    for a in pending.drain(..) {
                        a.await.map_err(err)?;
                    }
                }
            }
            for a in pending.drain(..) {
                a.await.map_err(err)?;
            }
            Ok(())
        })
    }

    /// Reads the whole stream through a fresh pull consumer (no acks); records per second.
    pub fn read_all(&self, count: usize) -> Result<f64, String> {
        block_on(async {
            let js = context(self.port).await?;
            let stream = js.get_stream(&self.stream).await.map_err(err)?;
            let consumer = stream
                .create_consumer(pull::Config {
                    ack_policy: AckPolicy::None,
                    deliver_policy: DeliverPolicy::All,
                    inactive_threshold: Duration::from_secs(60),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            let started = Instant::now();
            let mut messages = consumer.stream().max_messages_per_batch(1000).messages().await.map_err(err)?;
            let (mut n, mut sum) = (0usize, 0u64);
            while n < count {
                match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
                    Ok(Some(m)) => {
                        let m = m.map_err(err)?;
                        sum += m.payload.len() as u64;
                        n += 1;
                    }
                    _ => return Err(format!("nats: read stalled after {n} of {count} records")),
                }
            }
            std::hint::black_box(sum);
            Ok(n as f64 / started.elapsed().as_secs_f64())
        })
    }
}

impl Drop for NatsSetup {
    fn drop(&mut self) {
        block_on(async {
            let _ = self.admin.delete_stream(&self.stream).await;
        });
    }
}

struct Publisher {
    js: Context,
    subject: String,
}

impl Sender for Publisher {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        block_on(async {
            let ack = self.js.publish(self.subject.clone(), Bytes::copy_from_slice(body)).await.map_err(err)?;
            ack.await.map_err(err)?;
            Ok(())
        })
    }
}

struct PullReceiver {
    messages: pull::Stream,
}

impl Receiver for PullReceiver {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        block_on(async {
            let first = match tokio::time::timeout(Duration::from_millis(100), self.messages.next()).await {
                Err(_) | Ok(None) => return Ok(0),
                Ok(Some(m)) => m.map_err(err)?,
            };
            let mut batch = vec![first];
            while batch.len() < 10 {
                match futures::FutureExt::now_or_never(self.messages.next()) {
                    Some(Some(m)) => batch.push(m.map_err(err)?),
                    _ => break,
                }
            }
            for m in &batch {
                on_body(&m.payload);
            }
            // Explicit acks: JetStream acknowledges message by message.
            for m in &batch {
                m.ack().await.map_err(err)?;
            }
            Ok(batch.len() as u64)
        })
    }
}

/// Tails a limits stream from now on (`stream_put_concurrent`'s latency reader).
struct Tail {
    messages: pull::Stream,
}

impl Receiver for Tail {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        block_on(async {
            match tokio::time::timeout(Duration::from_millis(100), self.messages.next()).await {
                Err(_) | Ok(None) => Ok(0),
                Ok(Some(m)) => {
                    let m = m.map_err(err)?;
                    on_body(&m.payload);
                    Ok(1)
                }
            }
        })
    }
}

impl Setup for NatsSetup {
    fn sender(&self, _: usize) -> Result<Box<dyn Sender + '_>, String> {
        let js = block_on(context(self.port))?;
        Ok(Box::new(Publisher { js, subject: self.subject.clone() }))
    }

    fn receiver(&self, i: usize) -> Result<Box<dyn Receiver + '_>, String> {
        block_on(async {
            let js = context(self.port).await?;
            let stream = js.get_stream(&self.stream).await.map_err(err)?;
            if self.consumers.is_empty() {
                let consumer = stream
                    .create_consumer(pull::Config {
                        ack_policy: AckPolicy::None,
                        deliver_policy: DeliverPolicy::New,
                        inactive_threshold: Duration::from_secs(60),
                        ..Default::default()
                    })
                    .await
                    .map_err(err)?;
                let messages = consumer.stream().max_messages_per_batch(100).messages().await.map_err(err)?;
                return Ok(Box::new(Tail { messages }) as Box<dyn Receiver>);
            }
            let name = &self.consumers[i % self.consumers.len()];
            let consumer: jetstream::consumer::Consumer<pull::Config> = stream.get_consumer(name).await.map_err(err)?;
            let messages = consumer.stream().max_messages_per_batch(100).messages().await.map_err(err)?;
            Ok(Box::new(PullReceiver { messages }) as Box<dyn Receiver>)
        })
    }
}

/// What the report says of JetStream's durability in this version.
pub fn durability_text(can_sync_always: bool) -> String {
    if can_sync_always {
        "file storage, sync_interval: always (fsync on every write), PubAck awaited per send, explicit acks".into()
    } else {
        "file storage; this nats-server rejects sync_interval (it cannot fsync every write): a PubAck means written to the OS, fsynced later on the server's own timer; compare with weir_never. PubAck awaited per send, explicit acks".into()
    }
}
