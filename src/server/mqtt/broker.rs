//! What every MQTT connection of a server shares: the live sessions by client id (a second
//! connection with the same id takes the session over) and the retained messages, and the one
//! way a message is published onto the engine.
//!
//! Retained messages are durable in the queue `mqtt.retained`: each is a message held by the
//! server (in flight until released, so visible again when the engine reopens); replacing a
//! topic's retained message acknowledges the old one, an empty retained payload only
//! acknowledges. After a crash between the two steps both are there; loading keeps the later.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::message::{self, MqttMessage, EXCHANGE, RETAINED_QUEUE};
use super::topic;
use crate::engine::Delivery;
use crate::error::{Error, Result};
use crate::queue::config::{MAX_MAX_MESSAGE_BYTES, MAX_RETENTION};
use crate::queue::{BrokerOptions, Queue, QueueConfig};
use crate::topic::{ExchangeDef, ExchangeKind};
use crate::Engine;

/// A live connection's hold on a client id.
#[derive(Debug)]
struct Live {
    connection: u64,
    /// The session's queue (what session expiry knows a session by).
    session: String,
    /// Set to ask the connection to close (taken over).
    kick: watch::Sender<bool>,
    /// Closes (its sender dropped) when the connection has let go of its session.
    done: watch::Receiver<()>,
}

/// The MQTT state shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    live: Mutex<HashMap<String, Live>>,
    next_connection: AtomicU64,
    /// Topic name to its retained message; loaded on first use.
    retained: Mutex<Option<BTreeMap<String, Retained>>>,
    /// Told when a session's expiry deadline is set (the sweep looks again).
    pub expiry_changed: tokio::sync::Notify,
    /// Wills waiting for their delay, by client id: a token and what cancels the wait.
    wills: Mutex<HashMap<String, (u64, Arc<tokio::sync::Notify>)>>,
}

/// A retained message: its receipt handle in `mqtt.retained`, the message, when it was
/// published (ms by the engine's clock: its Message Expiry Interval counts from there).
type Retained = (String, MqttMessage, u64);

/// What a connection holds while it owns a client id.
pub(crate) struct Claim {
    pub connection: u64,
    pub kicked: watch::Receiver<bool>,
    /// Dropped when the connection has released everything of the session.
    pub _done: watch::Sender<()>,
}

impl Broker {
    /// Takes client id `client_id` for a new connection: an older connection with the id is
    /// asked to close, and this waits until it has let go of the session (its held messages
    /// and packet-id records), so that two connections never share a session's state. `None`
    /// when the older one did not let go within [`super::TAKEOVER_WAIT`] (the new connection is
    /// then refused; the older one still closes).
    pub async fn claim(&self, client_id: &str) -> Option<Claim> {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let (kick, kicked) = watch::channel(false);
        let (done_tx, done) = watch::channel(());
        let session = message::session_queue(client_id);
        let old = {
            // Under the table's lock, as `delay_will` looks: a will registered is cancelled
            // here, and one registered later sees this connection.
            let mut live = self.live.lock();
            let old = live.insert(client_id.to_string(), Live { connection, session, kick, done });
            if let Some((_, cancel)) = self.wills.lock().remove(client_id) {
                // A will waiting for its delay is not published once the client is back.
                cancel.notify_one();
            }
            old
        };
        if let Some(mut old) = old {
            old.kick.send_replace(true);
            let waited =
                tokio::time::timeout(super::TAKEOVER_WAIT, async { while old.done.changed().await.is_ok() {} }).await;
            if waited.is_err() {
                // The older connection still holds the session: it stays the live one (it has
                // been asked to close), so that the next connection waits for it too.
                let mut live = self.live.lock();
                if live.get(client_id).is_some_and(|l| l.connection == connection) {
                    live.insert(client_id.to_string(), old);
                }
                return None;
            }
        }
        Some(Claim { connection, kicked, _done: done_tx })
    }

    /// Lets go of a client id, unless a newer connection took it.
    pub fn release(&self, client_id: &str, connection: u64) {
        let mut live = self.live.lock();
        if live.get(client_id).is_some_and(|l| l.connection == connection) {
            live.remove(client_id);
        }
    }

    /// Registers the will of connection `connection` of `client_id` as waiting for its delay:
    /// the token to ask [`Broker::will_due`] with, and what is told if a connection takes the
    /// client id. `None` when a newer connection has taken the client id already.
    pub fn delay_will(&self, client_id: &str, connection: u64) -> Option<(u64, Arc<tokio::sync::Notify>)> {
        let live = self.live.lock();
        if live.get(client_id).is_some_and(|l| l.connection != connection) {
            return None;
        }
        let token = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = Arc::new(tokio::sync::Notify::new());
        self.wills.lock().insert(client_id.to_string(), (token, Arc::clone(&cancel)));
        drop(live);
        Some((token, cancel))
    }

    /// Whether the will registered with `token` is still to be published (and no longer
    /// waiting).
    pub fn will_due(&self, client_id: &str, token: u64) -> bool {
        let mut wills = self.wills.lock();
        if wills.get(client_id).is_some_and(|(t, _)| *t == token) {
            wills.remove(client_id);
            return true;
        }
        false
    }

    /// Runs `f` unless a connection holds the session of queue `session`, with no connection
    /// able to take it meanwhile (a connection claims its client id first). Blocking.
    pub fn unless_live<T>(&self, session: &str, f: impl FnOnce() -> T) -> Option<T> {
        let live = self.live.lock();
        if live.values().any(|l| l.session == session) {
            return None;
        }
        let out = f();
        drop(live);
        Some(out)
    }

    /// Sets (or with an empty payload clears) the retained message of `m.topic`. Blocking.
    pub fn retain(&self, engine: &Engine, m: &MqttMessage) -> Result<()> {
        let mut guard = self.retained.lock();
        let queue = retained_queue(engine)?;
        let map = load(&mut guard, &queue)?;
        let old = map.remove(&m.topic);
        if !m.payload.is_empty() {
            let mut stored = m.clone();
            stored.retain = true;
            engine.deliver(&[Delivery { queues: vec![queue.clone()], message: stored.to_broker() }])?;
            // Every other message of the queue is held already: what comes is the new one.
            for got in queue.receive_held(16)? {
                if let Some(r) = MqttMessage::from_engine(&got.attributes, got.body.clone()) {
                    map.insert(r.topic.clone(), (got.receipt_handle, r, got.sent_ms));
                }
            }
        }
        if let Some((handle, _, _)) = old {
            queue.ack(&[handle.as_str()])?;
        }
        Ok(())
    }

    /// The retained messages whose topics match `filter`, each with how long it has waited
    /// (ms). Blocking.
    pub fn retained_matching(&self, engine: &Engine, filter: &str) -> Result<Vec<(MqttMessage, u64)>> {
        let mut guard = self.retained.lock();
        let queue = retained_queue(engine)?;
        let map = load(&mut guard, &queue)?;
        let now = engine.clock().now_ms();
        Ok(map
            .values()
            .filter(|(_, m, _)| topic::matches(filter, &m.topic))
            .map(|(_, m, sent)| (m.clone(), now.saturating_sub(*sent)))
            .collect())
    }
}

/// Reads every retained message once (holding them), keeping the latest per topic.
fn load<'a>(
    slot: &'a mut Option<BTreeMap<String, Retained>>,
    queue: &Queue,
) -> Result<&'a mut BTreeMap<String, Retained>> {
    if slot.is_none() {
        let mut map: BTreeMap<String, Retained> = BTreeMap::new();
        loop {
            let got = queue.receive_held(256)?;
            if got.is_empty() {
                break;
            }
            for m in got {
                match MqttMessage::from_engine(&m.attributes, m.body.clone()) {
                    Some(r) => {
                        if let Some((older, _, _)) = map.insert(r.topic.clone(), (m.receipt_handle, r, m.sent_ms)) {
                            queue.ack(&[older.as_str()])?;
                        }
                    }
                    None => {
                        queue.ack(&[m.receipt_handle.as_str()])?;
                    }
                }
            }
        }
        *slot = Some(map);
    }
    slot.as_mut().ok_or_else(|| Error::InvalidArgument("retained messages not loaded".into()))
}

/// A durable queue made for MQTT (created if missing).
pub(crate) fn ensure_queue(engine: &Engine, name: &str, transient: bool) -> Result<(Queue, bool)> {
    if let Ok(q) = engine.queue(name) {
        return Ok((q, true));
    }
    let config = QueueConfig {
        max_message_bytes: MAX_MAX_MESSAGE_BYTES,
        retention: MAX_RETENTION,
        broker: Some(BrokerOptions { transient, ..BrokerOptions::default() }),
        ..QueueConfig::default()
    };
    match engine.create_queue(name, config) {
        Ok(()) | Err(Error::AlreadyExists { .. }) => Ok((engine.queue(name)?, false)),
        Err(e) => Err(e),
    }
}

fn retained_queue(engine: &Engine) -> Result<Queue> {
    Ok(ensure_queue(engine, RETAINED_QUEUE, false)?.0)
}

/// Declares the `mqtt` exchange (a weir topic routing by MQTT filters) if it is missing.
pub(crate) fn ensure_exchange(engine: &Engine) -> Result<()> {
    if engine.exchange(EXCHANGE).is_ok() {
        return Ok(());
    }
    let def = ExchangeDef { kind: ExchangeKind::Topic, durable: true, auto_delete: false, internal: false };
    engine.declare_exchange(EXCHANGE, def)
}

/// Publishes `m` to every queue whose binding or subscription on the `mqtt` topic takes it, and
/// with `qos2` (a session's QoS 2 queue and packet id) records the packet id in the same
/// frame. Returns how many queues took the message. Blocking.
pub(crate) fn publish(engine: &Engine, m: &MqttMessage, qos2: Option<(&Queue, u16)>) -> Result<usize> {
    ensure_exchange(engine)?;
    let broker_message = m.to_broker();
    let targets = engine.topic(EXCHANGE)?.route_targets(&m.topic, &[], &broker_message.attributes, &m.payload);
    let mut batch = vec![Delivery { queues: targets, message: broker_message }];
    if let Some((queue, packet_id)) = qos2 {
        batch.push(Delivery { queues: vec![queue.clone()], message: packet_id_record(packet_id) });
    }
    let counts = engine.deliver(&batch)?;
    Ok(counts.first().copied().unwrap_or(0))
}

/// The queue names a session uses.
#[derive(Clone)]
pub(crate) struct SessionNames {
    pub queue: String,
    pub qos2: String,
    pub pubrel: String,
}

impl SessionNames {
    pub fn of(client_id: &str) -> SessionNames {
        SessionNames {
            queue: message::session_queue(client_id),
            qos2: message::qos2_queue(client_id),
            pubrel: message::pubrel_queue(client_id),
        }
    }

    /// The names of the session whose queue is `queue` (`None`: not a session queue).
    pub fn of_queue(queue: &str) -> Option<SessionNames> {
        let digest = queue.strip_prefix(message::SESSION_PREFIX)?;
        Some(SessionNames {
            queue: queue.to_string(),
            qos2: format!("{}{digest}", message::QOS2_PREFIX),
            pubrel: format!("{}{digest}", message::PUBREL_PREFIX),
        })
    }
}

/// A packet-id record: a message whose body is the id.
pub(crate) fn packet_id_record(packet_id: u16) -> crate::queue::store::BrokerMessage {
    crate::queue::store::BrokerMessage {
        body: bytes::Bytes::copy_from_slice(&packet_id.to_be_bytes()),
        attributes: Default::default(),
    }
}

/// Holds every visible packet-id record of `queue`: (packet id, receipt handle). Records that
/// are not two bytes are dropped.
pub(crate) fn hold_records(queue: &Queue) -> Result<Vec<(u16, String)>> {
    let mut held = Vec::new();
    loop {
        let got = queue.receive_held(256)?;
        if got.is_empty() {
            return Ok(held);
        }
        for m in got {
            if let [a, b] = m.body[..] {
                held.push((u16::from_be_bytes([a, b]), m.receipt_handle));
            } else {
                queue.ack(&[m.receipt_handle.as_str()])?;
            }
        }
    }
}

/// Deletes a session: its subscriptions (bindings), its queue and its QoS 2 state. Blocking.
pub(crate) fn delete_session(engine: &Engine, names: &SessionNames) -> Result<()> {
    for name in [&names.queue, &names.qos2, &names.pubrel] {
        if engine.queue(name).is_ok() {
            engine.unbind_queue(name)?;
            match engine.delete_queue(name) {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
