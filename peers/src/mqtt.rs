//! MQTT 3.1.1 at QoS 1 (the `mqtt_qos1` row), one client for both brokers: rumqttc on the
//! shared tokio runtime, against Mosquitto and against `weir serve --mqtt`. Every thread has its
//! own connection. A sender publishes one message at a time and returns once its PUBACK came;
//! sender `i` publishes to topic `i % PAIRS` of the run, which exactly one subscriber (a
//! persistent session, clean session off, subscribed at QoS 1) receives, so each message is
//! delivered once, as in the queue rows.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::systems::{block_on, run_id, runtime, Receiver, Sender, Setup};

/// Topics of one run, each with one subscriber; the senders spread over them.
pub const PAIRS: usize = 8;
/// Unacknowledged QoS 1 messages a client keeps in flight (rumqttc's `inflight`).
const INFLIGHT: u16 = 100;
/// Longest wait for a broker's answer (CONNACK, SUBACK, PUBACK): a bound, not a pace.
const ANSWER: Duration = Duration::from_secs(30);

/// One run's topics on one broker.
pub struct MqttSetup {
    port: u16,
    run: u64,
}

impl MqttSetup {
    pub fn new(port: u16) -> MqttSetup {
        MqttSetup { port, run: run_id() }
    }

    fn topic(&self, i: usize) -> String {
        format!("weir-peers/{}/{}", self.run, i % PAIRS)
    }
}

/// What a report says of Mosquitto's durability, from its settings.
pub fn mosquitto_durability_text() -> String {
    let settings: Vec<String> = crate::servers::MOSQUITTO_SETTINGS.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "Mosquitto with {}: a PUBACK means the message is in the broker's memory; the store is written to disk every autosave_interval seconds and at a clean shutdown, never fsynced per message, so a crash or power loss loses what arrived since the last save; QoS 1, persistent sessions (clean session off), one subscriber per topic",
        settings.join(", ")
    )
}

/// What a report says of weir's MQTT durability.
pub fn weir_durability_text(durability: weir::Durability) -> String {
    let mode = crate::weir_peer::durability_text(durability);
    format!(
        "weir serve --mqtt (weir::server::Server in this process), {mode}; PUBACK follows the write of the frame that puts the message in the subscriber's session queue (a persistent session is a durable queue); QoS 1, persistent sessions, one subscriber per topic"
    )
}

fn err(e: impl std::fmt::Display) -> String {
    format!("mqtt: {e}")
}

/// A connection whose event loop runs as a task of the shared runtime, handing every incoming
/// packet (or the error that ended it) to the thread that owns the connection.
struct Connection {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Result<Packet, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Connection {
    async fn open(port: u16, client_id: String, clean_session: bool) -> Result<Connection, String> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(clean_session);
        options.set_inflight(INFLIGHT);
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let (tx, incoming) = mpsc::unbounded_channel();
        let task = runtime().spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(Ok(packet)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    // rumqttc would reconnect on the next poll; a benchmark stops instead.
                    Err(e) => {
                        let _ = tx.send(Err(err(e)));
                        return;
                    }
                }
            }
        });
        let mut conn = Connection { client, incoming, task };
        match conn.next(|p| matches!(p, Packet::ConnAck(_))).await? {
            Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => Ok(conn),
            other => Err(format!("mqtt: connection refused: {other:?}")),
        }
    }

    /// The next incoming packet `wanted` accepts (others are skipped), within [`ANSWER`].
    async fn next(&mut self, wanted: impl Fn(&Packet) -> bool) -> Result<Packet, String> {
        let deadline = tokio::time::Instant::now() + ANSWER;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => return Err(format!("mqtt: no answer within {} s", ANSWER.as_secs())),
                Ok(None) => return Err("mqtt: the connection's event loop ended".into()),
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(p))) if wanted(&p) => return Ok(p),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next PUBLISH that has already arrived, without waiting.
    fn ready_publish(&mut self) -> Result<Option<Publish>, String> {
        loop {
            match self.incoming.try_recv() {
                Ok(Ok(Packet::Publish(p))) => return Ok(Some(p)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let client = self.client.clone();
        block_on(async {
            let _ = timeout(Duration::from_secs(2), client.disconnect()).await;
            // Let the event loop send the DISCONNECT before it goes.
            let _ = timeout(Duration::from_millis(200), &mut self.task).await;
        });
        self.task.abort();
    }
}

struct Publisher {
    conn: Connection,
    topic: String,
}

impl Sender for Publisher {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        block_on(async {
            self.conn.client.publish(self.topic.as_str(), QoS::AtLeastOnce, false, body.to_vec()).await.map_err(err)?;
            self.conn.next(|p| matches!(p, Packet::PubAck(_))).await.map(drop)
        })
    }
}

struct Subscriber {
    conn: Connection,
}

impl Receiver for Subscriber {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        let first = block_on(async {
            match timeout(Duration::from_millis(100), self.conn.next(|p| matches!(p, Packet::Publish(_)))).await {
                Err(_) => Ok(None),
                Ok(Ok(Packet::Publish(p))) => Ok(Some(p)),
                Ok(Ok(_)) => Ok(None),
                Ok(Err(e)) => Err(e),
            }
        })?;
        let Some(first) = first else { return Ok(0) };
        on_body(&first.payload);
        // Whatever else has already arrived, up to 10 (rumqttc sent each PUBACK itself).
        let mut n = 1;
        while n < 10 {
            let Some(p) = self.conn.ready_publish()? else { break };
            on_body(&p.payload);
            n += 1;
        }
        Ok(n)
    }
}

impl Setup for MqttSetup {
    fn sender(&self, i: usize) -> Result<Box<dyn Sender + '_>, String> {
        let id = format!("weir-peers-pub-{}-{i}", self.run);
        let conn = block_on(Connection::open(self.port, id, true))?;
        Ok(Box::new(Publisher { conn, topic: self.topic(i) }))
    }

    fn receiver(&self, i: usize) -> Result<Box<dyn Receiver + '_>, String> {
        let id = format!("weir-peers-sub-{}-{i}", self.run);
        let topic = self.topic(i);
        let conn = block_on(async {
            let mut conn = Connection::open(self.port, id, false).await?;
            conn.client.subscribe(topic, QoS::AtLeastOnce).await.map_err(err)?;
            match conn.next(|p| matches!(p, Packet::SubAck(_))).await? {
                Packet::SubAck(ack)
                    if ack.return_codes.iter().all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
                {
                    Ok(conn)
                }
                other => Err(format!("mqtt: subscription refused: {other:?}")),
            }
        })?;
        Ok(Box::new(Subscriber { conn }))
    }
}
