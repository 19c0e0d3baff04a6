//! One MQTT connection: CONNECT (authentication, session takeover, clean or persistent
//! session), then one loop that reads packets, writes deliveries taken by the session's
//! consumers, watches the keep-alive and the stop signal. The session's durable state lives
//! in the engine (see ARCHITECTURE.md, "MQTT on the engine"); this holds only what a
//! connection needs while it lives: packet ids of deliveries in flight, and receipt handles.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::broker::{self, Claim, SessionNames};
use super::codec::{self, Ack, ConnAck, Connect, Disconnect, Packet, Publish, QoS, SubAck, Version, Will};
use super::consumer::{self, Taken};
use super::expiry;
use super::message::{MqttMessage, EXCHANGE};
use super::properties::{id, Properties, Value};
use super::reason::ReasonCode;
use super::topic::{self, SubscriptionFilter};
use super::{CONNECT_TIMEOUT, MAX_PACKET};
use crate::engine::Delivery;
use crate::queue::Queue;
use crate::server::auth::{self, Action, Principal};
use crate::server::logging::{fields, LogLevel};
use crate::server::protocols::{stopped, BoxedIo, Session};
use crate::topic::{Binding, RouteFilter};

/// Deliveries in flight to a client that sets no receive maximum (3.1.1 has none).
const DEFAULT_WINDOW: u16 = 256;

/// A session as CONNECT opens it.
struct OpenedSession {
    queue: Queue,
    qos2: Queue,
    pubrel: Queue,
    present: bool,
    bindings: Vec<(String, Binding)>,
    /// QoS 2 packet ids received and not released, with their records' handles.
    received: Vec<(u16, String)>,
    /// QoS 2 deliveries released and not completed, with their records' handles.
    released: Vec<(u16, String)>,
}

/// Why the connection ends.
enum End {
    /// The client sent DISCONNECT (with or without its will).
    Disconnected { publish_will: bool },
    /// The socket closed or failed, or the keep-alive ran out.
    Lost,
    /// A protocol violation: tell a v5 client why.
    Violation(ReasonCode, String),
    /// The server stops, or another connection took the session.
    Closed(ReasonCode),
}

/// A subscription of this session.
struct Sub {
    qos: QoS,
    no_local: bool,
    retain_as_published: bool,
    id: Option<u32>,
    /// For `$share/...`: the group's queue and the consumer's stop.
    shared: Option<(Queue, watch::Sender<bool>)>,
}

/// A PUBLISH taken from a queue and encoded, waiting (in the order taken) until its packet id
/// is free.
struct Ready {
    queue: Queue,
    handle: String,
    qos: QoS,
    packet_id: Option<u16>,
    bytes: Vec<u8>,
}

/// A delivery in flight to the client.
enum Out {
    /// PUBLISH QoS 1 or 2 sent; the held message (none for a retained copy).
    Sent { from: Option<(Queue, String)>, qos: QoS },
    /// PUBREC received: the message left its queue for a packet-id record in the session's
    /// `mqtt.pubrel` queue (none for a retained copy), held until PUBCOMP.
    Released { record: Option<String> },
}

struct Conn {
    session: Session,
    rd: ReadHalf<BoxedIo>,
    wr: WriteHalf<BoxedIo>,
    buf: Vec<u8>,
    version: Version,
    client_id: String,
    names: SessionNames,
    queue: Queue,
    qos2: Queue,
    pubrel: Queue,
    expiry: u32,
    will: Option<Will>,
    subs: HashMap<String, Sub>,
    out: HashMap<u16, Out>,
    /// Deliveries taken and encoded, not sent yet: the first waits for its packet id.
    ready: VecDeque<Ready>,
    /// QoS 2 packet ids received and not yet released, with their marker's receipt handle.
    received: HashMap<u16, String>,
    next_id: u16,
    window: Arc<Semaphore>,
    taken_tx: mpsc::Sender<Taken>,
    taken_rx: mpsc::Receiver<Taken>,
    consumers: JoinSet<()>,
    stop_session_consumer: watch::Sender<bool>,
    /// The client's maximum packet size (v5).
    client_max_packet: usize,
    /// One and a half times the client's keep-alive (none for 0).
    keep_alive: Option<Duration>,
    /// Who the connection acts as.
    principal: Principal,
    /// This connection's number in the broker's table of client ids.
    connection: u64,
}

/// Serves one connection to its end.
pub(crate) async fn run(io: BoxedIo, session: Session) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut buf = Vec::new();
    let first = tokio::time::timeout(CONNECT_TIMEOUT, read_packet(&mut rd, &mut buf, None)).await;
    let connect = match first {
        Ok(Ok(Some(Packet::Connect(c)))) => *c,
        Ok(Err(e)) => {
            if e.reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                // A level this server does not speak: the 3.1.1 CONNACK "unacceptable protocol
                // version", which every level's client reads.
                let ack = ConnAck { session_present: false, reason: e.reason, properties: Properties::default() };
                let _ = write(&mut wr, &Packet::ConnAck(ack), Version::V311).await;
            }
            session.log(LogLevel::Debug, "bad CONNECT", fields!("error" => e.message));
            return;
        }
        _ => return,
    };
    let Some((mut conn, mut claim)) = accept(session, rd, wr, buf, connect).await else { return };
    let end = conn.serve(&mut claim.kicked).await;
    conn.finish(end).await;
    conn.session.shared.mqtt.release(&conn.client_id, claim.connection);
    // Dropping the claim tells a connection taking the session over that it may go on.
    drop(claim);
}

/// Reads one packet; `Ok(None)` at the end of the stream.
async fn read_packet(
    rd: &mut ReadHalf<BoxedIo>,
    buf: &mut Vec<u8>,
    version: Option<Version>,
) -> Result<Option<Packet>, codec::DecodeError> {
    loop {
        if let Some((packet, used)) = codec::decode(buf, version, MAX_PACKET)? {
            buf.drain(..used);
            return Ok(Some(packet));
        }
        let mut chunk = [0u8; 16 * 1024];
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn write(wr: &mut WriteHalf<BoxedIo>, packet: &Packet, version: Version) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    codec::encode(packet, version, &mut bytes);
    wr.write_all(&bytes).await
}

/// Authenticates, claims the client id, opens or makes the session, answers CONNACK.
async fn accept(
    session: Session,
    rd: ReadHalf<BoxedIo>,
    mut wr: WriteHalf<BoxedIo>,
    buf: Vec<u8>,
    connect: Connect,
) -> Option<(Conn, Claim)> {
    let v = connect.version;
    let refuse = |reason: ReasonCode| {
        Packet::ConnAck(ConnAck { session_present: false, reason, properties: Properties::default() })
    };
    let mut expiry = codec::session_expiry(&connect);
    let mut assigned = None;
    let client_id = if connect.client_id.is_empty() {
        if v == Version::V311 && !connect.clean_start {
            let _ = write(&mut wr, &refuse(ReasonCode::CLIENT_ID_NOT_VALID), v).await;
            return None;
        }
        let id = format!("weir-{}", session.shared.next_request_id());
        assigned = Some(id.clone());
        id
    } else {
        connect.client_id.clone()
    };
    if connect.properties.get(id::AUTH_METHOD).is_some() {
        let _ = write(&mut wr, &refuse(ReasonCode::BAD_AUTH_METHOD), v).await;
        return None;
    }
    let user = connect.username.clone().unwrap_or_default();
    let password = connect.password.clone().unwrap_or_default();
    let principal = match session.authenticate(&user, &password) {
        Ok(p) => p,
        Err(e) => {
            session.log(
                LogLevel::Info,
                "MQTT authentication refused",
                fields!("user" => user, "error" => format!("{e:?}")),
            );
            let _ = write(&mut wr, &refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD), v).await;
            return None;
        }
    };
    if let Some(will) = &connect.will {
        if !topic::valid_name(&will.topic) {
            let _ = write(&mut wr, &refuse(ReasonCode::TOPIC_NAME_INVALID), v).await;
            return None;
        }
    }
    let Some(claim) = session.shared.mqtt.claim(&client_id).await else {
        session.log(LogLevel::Warn, "MQTT session still held by an older connection", fields!("client" => client_id));
        let _ = write(&mut wr, &refuse(ReasonCode::SERVER_UNAVAILABLE), v).await;
        return None;
    };
    let names = SessionNames::of(&client_id);
    let clean = connect.clean_start;
    let transient = expiry == 0;
    let opening = names.clone();
    let opened = session
        .shared
        .blocking(move |e| -> crate::Result<OpenedSession> {
            broker::ensure_exchange(e)?;
            let names = opening;
            let gone = !clean && e.queue(&names.queue).is_ok() && expiry::expired(e, &names.queue)?;
            if clean || gone {
                broker::delete_session(e, &names)?;
            }
            let (queue, existed) = broker::ensure_queue(e, &names.queue, transient)?;
            if !transient {
                expiry::opened(e, &names.queue, expiry)?;
            }
            let (qos2, _) = broker::ensure_queue(e, &names.qos2, transient)?;
            let (pubrel, _) = broker::ensure_queue(e, &names.pubrel, transient)?;
            let bindings: Vec<(String, Binding)> =
                e.bindings(EXCHANGE)?.into_iter().filter(|(q, _)| *q == names.queue).collect();
            let received = broker::hold_records(&qos2)?;
            let released = broker::hold_records(&pubrel)?;
            Ok(OpenedSession { queue, qos2, pubrel, present: existed && !clean, bindings, received, released })
        })
        .await;
    let OpenedSession { queue, qos2, pubrel, present: session_present, bindings, received, released } = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            session.log(LogLevel::Warn, "MQTT session could not be opened", fields!("error" => e.to_string()));
            let _ = write(&mut wr, &refuse(ReasonCode::UNSPECIFIED_ERROR), v).await;
            session.shared.mqtt.release(&client_id, claim.connection);
            return None;
        }
        Err(_) => return None,
    };
    let mut properties = Properties::default();
    if let Some(id) = &assigned {
        properties.push(id::ASSIGNED_CLIENT_ID, Value::Text(id.clone()));
    }
    properties.push(id::MAXIMUM_PACKET_SIZE, Value::Four(MAX_PACKET as u32));
    properties.push(id::TOPIC_ALIAS_MAXIMUM, Value::Two(0));
    let ack = ConnAck { session_present, reason: ReasonCode::SUCCESS, properties };
    if write(&mut wr, &Packet::ConnAck(ack), v).await.is_err() {
        // Gone before its CONNACK: what the open held is visible again for the next connection.
        let marks: Vec<String> = received.into_iter().map(|(_, h)| h).collect();
        let records: Vec<String> = released.into_iter().map(|(_, h)| h).collect();
        let _ = session
            .shared
            .blocking(move |_| -> crate::Result<()> {
                qos2.release_to_head(&marks.iter().map(String::as_str).collect::<Vec<_>>())?;
                pubrel.release_to_head(&records.iter().map(String::as_str).collect::<Vec<_>>())?;
                Ok(())
            })
            .await;
        session.shared.mqtt.release(&client_id, claim.connection);
        return None;
    }
    let receive_max = connect.properties.two(id::RECEIVE_MAXIMUM).unwrap_or(DEFAULT_WINDOW).clamp(1, DEFAULT_WINDOW);
    let client_max_packet = connect.properties.four(id::MAXIMUM_PACKET_SIZE).map_or(usize::MAX, |m| m as usize);
    if v == Version::V311 && !clean {
        expiry = u32::MAX;
    }
    let (taken_tx, taken_rx) = mpsc::channel(usize::from(DEFAULT_WINDOW));
    let (stop_session_consumer, _) = watch::channel(false);
    let mut conn = Conn {
        session,
        rd,
        wr,
        buf,
        version: v,
        client_id,
        names,
        queue,
        qos2,
        pubrel,
        expiry,
        will: connect.will,
        subs: HashMap::new(),
        out: HashMap::new(),
        ready: VecDeque::new(),
        received: received.into_iter().collect(),
        next_id: 0,
        window: Arc::new(Semaphore::new(usize::from(receive_max))),
        taken_tx,
        taken_rx,
        consumers: JoinSet::new(),
        stop_session_consumer,
        client_max_packet,
        principal,
        connection: claim.connection,
        keep_alive: (connect.keep_alive > 0).then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500)),
    };
    let mut groups = Vec::new();
    for (_, binding) in bindings {
        let Some(sub) = parse_arguments(&binding.arguments) else { continue };
        match topic::parse_filter(&binding.key) {
            Some(parsed) if parsed.group.is_some() => groups.push((binding.key, parsed, sub)),
            _ => {
                conn.subs.insert(binding.key, sub);
            }
        }
    }
    // The session's shared subscriptions: a member again, without subscribing again.
    for (text, parsed, sub) in groups {
        if let Err(e) = conn.join_group(&text, &parsed, sub).await {
            conn.session.log(
                LogLevel::Warn,
                "MQTT shared subscription not restored",
                fields!("error" => e.to_string()),
            );
        }
    }
    // Spec 4.4: PUBREL again, with its packet id, for every QoS 2 delivery released and not
    // completed when the session's last connection ended.
    for (packet_id, record) in released {
        conn.out.insert(packet_id, Out::Released { record: Some(record) });
        if conn.send(&Packet::PubRel(Ack::new(packet_id, ReasonCode::SUCCESS))).await.is_err() {
            conn.finish(End::Lost).await;
            conn.session.shared.mqtt.release(&conn.client_id, claim.connection);
            return None;
        }
    }
    // A released delivery keeps its place in the client's receive window until PUBCOMP.
    for _ in 0..conn.out.len() {
        match conn.window.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
    }
    conn.next_id = conn.out.keys().copied().max().unwrap_or(0);
    let stop = conn.stop_session_consumer.subscribe();
    conn.start_consumer(conn.queue.clone(), None, stop);
    Some((conn, claim))
}

/// A session subscription's options as its binding's arguments record them.
fn binding_arguments(s: &codec::Subscription, id: Option<u32>) -> String {
    let mut a = format!("qos={};nl={};rap={}", s.qos as u8, u8::from(s.no_local), u8::from(s.retain_as_published));
    if let Some(id) = id {
        a.push_str(&format!(";id={id}"));
    }
    a
}

/// The binding arguments of a subscription as the session holds it.
fn sub_arguments(sub: &Sub) -> String {
    let options = codec::Subscription {
        filter: String::new(),
        qos: sub.qos,
        no_local: sub.no_local,
        retain_as_published: sub.retain_as_published,
        retain_handling: 0,
    };
    binding_arguments(&options, sub.id)
}

/// The filter of a binding that records a shared subscription's membership on the session
/// queue: headers matching at least one of no pairs, which no message does.
fn no_messages() -> RouteFilter {
    RouteFilter::Headers { any: true, pairs: Vec::new() }
}

fn parse_arguments(text: &str) -> Option<Sub> {
    let mut sub = Sub { qos: QoS::AtMostOnce, no_local: false, retain_as_published: false, id: None, shared: None };
    for part in text.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "qos" => sub.qos = QoS::from_bits(v.parse().ok()?)?,
            "nl" => sub.no_local = v == "1",
            "rap" => sub.retain_as_published = v == "1",
            "id" => sub.id = v.parse().ok(),
            _ => {}
        }
    }
    Some(sub)
}

impl Conn {
    fn start_consumer(&mut self, queue: Queue, shared: Option<String>, stop: watch::Receiver<bool>) {
        let task = consumer::run(
            Arc::clone(&self.session.shared),
            queue,
            shared,
            Arc::clone(&self.window),
            self.taken_tx.clone(),
            stop,
        );
        self.consumers.spawn(task);
    }

    async fn send(&mut self, packet: &Packet) -> Result<(), End> {
        write(&mut self.wr, packet, self.version).await.map_err(|_| End::Lost)
    }

    /// Reads, delivers and watches until the connection ends.
    async fn serve(&mut self, kicked: &mut watch::Receiver<bool>) -> End {
        let keep_alive = self.keep_alive;
        let mut stop = self.session.stop.clone();
        let mut last_heard = Instant::now();
        loop {
            let deadline = keep_alive.map(|k| last_heard + k);
            let mut chunk = [0u8; 16 * 1024];
            let step = tokio::select! {
                read = self.rd.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => Err(End::Lost),
                    Ok(n) => {
                        last_heard = Instant::now();
                        self.buf.extend_from_slice(&chunk[..n]);
                        self.handle_input().await
                    }
                },
                Some(taken) = self.taken_rx.recv() => self.deliver(taken).await,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    Err(End::Violation(ReasonCode::KEEP_ALIVE_TIMEOUT, "keep-alive timeout".into()))
                }
                _ = stopped(&mut stop) => Err(End::Closed(ReasonCode::SERVER_SHUTTING_DOWN)),
                _ = stopped(kicked) => Err(End::Closed(ReasonCode::SESSION_TAKEN_OVER)),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Handles every whole packet in the buffer.
    async fn handle_input(&mut self) -> Result<(), End> {
        loop {
            let decoded = codec::decode(&self.buf, Some(self.version), MAX_PACKET)
                .map_err(|e| End::Violation(e.reason, e.message))?;
            let Some((packet, used)) = decoded else { return Ok(()) };
            self.buf.drain(..used);
            self.handle(packet).await?;
        }
    }

    async fn handle(&mut self, packet: Packet) -> Result<(), End> {
        match packet {
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::PubAck(a) => self.on_puback(a.packet_id, QoS::AtLeastOnce).await,
            Packet::PubRec(a) => {
                if a.reason.is_failure() {
                    return self.on_puback(a.packet_id, QoS::ExactlyOnce).await;
                }
                let reason = self.on_pubrec(a.packet_id).await;
                self.send(&Packet::PubRel(Ack::new(a.packet_id, reason))).await
            }
            Packet::PubComp(a) => {
                if let Some(Out::Released { .. }) = self.out.get(&a.packet_id) {
                    if let Some(Out::Released { record: Some(record) }) = self.out.remove(&a.packet_id) {
                        let q = self.pubrel.clone();
                        self.ack(q, record).await?;
                    }
                    self.window.add_permits(1);
                    return self.send_ready().await;
                }
                Ok(())
            }
            Packet::PubRel(a) => {
                let reason = match self.received.remove(&a.packet_id) {
                    Some(handle) => {
                        let q = self.qos2.clone();
                        let acked = self.session.shared.blocking(move |_| q.ack(&[handle.as_str()])).await;
                        match acked {
                            Ok(Ok(_)) => ReasonCode::SUCCESS,
                            _ => ReasonCode::UNSPECIFIED_ERROR,
                        }
                    }
                    None => ReasonCode::PACKET_ID_NOT_FOUND,
                };
                self.send(&Packet::PubComp(Ack::new(a.packet_id, reason))).await
            }
            Packet::Subscribe(s) => self.on_subscribe(s).await,
            Packet::Unsubscribe(u) => self.on_unsubscribe(u).await,
            Packet::PingReq => self.send(&Packet::PingResp).await,
            Packet::Disconnect(d) => {
                if self.version == Version::V5 {
                    if let Some(e) = d.properties.four(id::SESSION_EXPIRY) {
                        if self.expiry == 0 && e != 0 {
                            return Err(End::Violation(
                                ReasonCode::PROTOCOL_ERROR,
                                "session expiry raised from 0".into(),
                            ));
                        }
                        self.expiry = e;
                    }
                }
                Err(End::Disconnected { publish_will: d.reason == ReasonCode::DISCONNECT_WITH_WILL })
            }
            Packet::Auth(_) => Err(End::Violation(ReasonCode::PROTOCOL_ERROR, "no enhanced authentication".into())),
            Packet::Connect(_) => Err(End::Violation(ReasonCode::PROTOCOL_ERROR, "a second CONNECT".into())),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(End::Violation(ReasonCode::PROTOCOL_ERROR, "a packet only a server sends".into()))
            }
        }
    }

    async fn on_publish(&mut self, p: Publish) -> Result<(), End> {
        if p.properties.get(id::TOPIC_ALIAS).is_some() {
            return Err(End::Violation(ReasonCode::TOPIC_ALIAS_INVALID, "topic aliases are not accepted".into()));
        }
        if !topic::valid_name(&p.topic) {
            return Err(End::Violation(ReasonCode::TOPIC_NAME_INVALID, format!("topic name {:?}", p.topic)));
        }
        if let (QoS::ExactlyOnce, Some(pid)) = (p.qos, p.packet_id) {
            if self.received.contains_key(&pid) {
                // A resend of a message already stored: acknowledge it again, never store twice.
                return self.send(&Packet::PubRec(Ack::new(pid, ReasonCode::SUCCESS))).await;
            }
        }
        if !self.allowed("sns:Publish") {
            return match (p.qos, p.packet_id, self.version) {
                (QoS::AtLeastOnce, Some(pid), Version::V5) => {
                    self.send(&Packet::PubAck(Ack::new(pid, ReasonCode::NOT_AUTHORIZED))).await
                }
                (QoS::ExactlyOnce, Some(pid), Version::V5) => {
                    self.send(&Packet::PubRec(Ack::new(pid, ReasonCode::NOT_AUTHORIZED))).await
                }
                // 3.1.1 has no negative acknowledgement: the connection closes.
                (QoS::AtMostOnce, _, _) => Ok(()),
                _ => Err(End::Violation(ReasonCode::NOT_AUTHORIZED, "publish not allowed".into())),
            };
        }
        let m = MqttMessage {
            topic: p.topic,
            qos: p.qos,
            retain: p.retain,
            publisher: self.client_id.clone(),
            properties: p.properties.forwarded(),
            payload: p.payload.into(),
        };
        let qos2 = match (p.qos, p.packet_id) {
            (QoS::ExactlyOnce, Some(pid)) => Some((self.qos2.clone(), pid)),
            _ => None,
        };
        let shared = Arc::clone(&self.session.shared);
        let outcome = self
            .session
            .shared
            .blocking(move |e| -> crate::Result<(usize, Vec<(u16, String)>)> {
                if m.retain {
                    shared.mqtt.retain(e, &m)?;
                }
                let count = broker::publish(e, &m, qos2.as_ref().map(|(q, id)| (q, *id)))?;
                // Every other record of the queue is held already: what comes is this one.
                let markers = match &qos2 {
                    Some((q, _)) => broker::hold_records(q)?,
                    None => Vec::new(),
                };
                Ok((count, markers))
            })
            .await;
        let (reason, markers) = match outcome {
            Ok(Ok((0, markers))) => (ReasonCode::NO_MATCHING_SUBSCRIBERS, markers),
            Ok(Ok((_, markers))) => (ReasonCode::SUCCESS, markers),
            Ok(Err(e)) => {
                self.session.log(LogLevel::Warn, "MQTT publish failed", fields!("error" => e.to_string()));
                if self.version == Version::V311 && p.qos != QoS::AtMostOnce {
                    // 3.1.1 has no negative acknowledgement: closing makes the client send again.
                    return Err(End::Lost);
                }
                (ReasonCode::UNSPECIFIED_ERROR, Vec::new())
            }
            Err(_) => return Err(End::Lost),
        };
        self.received.extend(markers);
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => self.send(&Packet::PubAck(Ack::new(pid, reason))).await,
            (QoS::ExactlyOnce, Some(pid)) => self.send(&Packet::PubRec(Ack::new(pid, reason))).await,
            _ => Ok(()),
        }
    }

    /// PUBACK (or a failed PUBREC): the delivery is done.
    async fn on_puback(&mut self, packet_id: u16, expected: QoS) -> Result<(), End> {
        match self.out.get(&packet_id) {
            Some(Out::Sent { qos, .. }) if *qos == expected => {}
            _ => return Ok(()),
        }
        if let Some(Out::Sent { from, .. }) = self.out.remove(&packet_id) {
            self.window.add_permits(1);
            if let Some((queue, handle)) = from {
                self.ack(queue, handle).await?;
            }
            return self.send_ready().await;
        }
        Ok(())
    }

    /// PUBREC: the client has the message. It leaves its queue for a packet-id record in the
    /// session's `mqtt.pubrel` queue, in one frame, so that the PUBREL is sent again (and the
    /// PUBLISH never) after a reconnect or a restart; PUBCOMP removes the record.
    async fn on_pubrec(&mut self, packet_id: u16) -> ReasonCode {
        match self.out.get(&packet_id) {
            Some(Out::Sent { qos: QoS::ExactlyOnce, .. }) => {}
            Some(Out::Released { .. }) => return ReasonCode::SUCCESS,
            _ => return ReasonCode::PACKET_ID_NOT_FOUND,
        }
        let Some(Out::Sent { from, qos }) = self.out.remove(&packet_id) else {
            return ReasonCode::PACKET_ID_NOT_FOUND;
        };
        let Some((queue, handle)) = from else {
            self.out.insert(packet_id, Out::Released { record: None });
            return ReasonCode::SUCCESS;
        };
        let pubrel = self.pubrel.clone();
        let unmoved = (queue.clone(), handle.clone());
        let moved = self
            .session
            .shared
            .blocking(move |e| -> crate::Result<Option<String>> {
                let delivery = Delivery { queues: vec![pubrel.clone()], message: broker::packet_id_record(packet_id) };
                e.move_out(&queue, &handle, &delivery)?;
                // Every other record of the queue is held already: what comes is this one.
                Ok(broker::hold_records(&pubrel)?.into_iter().find(|(id, _)| *id == packet_id).map(|(_, h)| h))
            })
            .await;
        match moved {
            Ok(Ok(record)) => {
                self.out.insert(packet_id, Out::Released { record });
                ReasonCode::SUCCESS
            }
            _ => {
                // Still in flight as sent: the client's PUBREC again (or a reconnect) retries.
                self.out.insert(packet_id, Out::Sent { from: Some(unmoved), qos });
                ReasonCode::UNSPECIFIED_ERROR
            }
        }
    }

    /// Whether the connection's principal may do `action` (`sns:Publish`, `sns:Subscribe`) on
    /// the weir topic `mqtt`, by the policies of `--auth` (without `--auth`, always).
    fn allowed(&self, action: &'static str) -> bool {
        if !auth::needs_check(&self.principal) {
            return true;
        }
        let config = &self.session.shared.config;
        let arn = format!("arn:aws:sns:{}:{}:{EXCHANGE}", config.region, config.account_id);
        let now_ms = self.session.shared.engine.clock().now_ms();
        let request = Action { action, resource: &arn, owner: &config.account_id, now_ms };
        auth::authorize(&self.principal, &request, None).is_ok()
    }

    async fn ack(&mut self, queue: Queue, handle: String) -> Result<(), End> {
        match self.session.shared.blocking(move |_| queue.ack(&[handle.as_str()])).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(End::Lost),
        }
    }

    fn next_packet_id(&mut self) -> u16 {
        loop {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.out.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }

    /// Sends one message taken from a queue, at the QoS its subscription grants: after the
    /// messages taken before it, and once its packet id is free.
    async fn deliver(&mut self, taken: Taken) -> Result<(), End> {
        if let Some(ready) = self.prepare(taken).await? {
            self.ready.push_back(ready);
        }
        self.send_ready().await
    }

    /// Encodes the PUBLISH of a message taken from a queue; `None` when it is not for this
    /// client after all (no subscription of this session takes it, or it is larger than the
    /// client takes), and then it is acknowledged.
    async fn prepare(&mut self, taken: Taken) -> Result<Option<Ready>, End> {
        let handle = taken.message.receipt_handle.clone();
        let dup = taken.message.receive_count > 1;
        let Some(m) = MqttMessage::from_engine(&taken.message.attributes, taken.message.body.clone()) else {
            self.window.add_permits(1);
            return self.ack(taken.queue, handle).await.map(|()| None);
        };
        let mine = m.publisher == self.client_id;
        let mut granted: Option<QoS> = None;
        let mut retain = false;
        let mut ids = Vec::new();
        for (text, sub) in &self.subs {
            let matching = match (&taken.shared, &sub.shared) {
                (Some(f), Some(_)) => f == text,
                (None, None) => topic::matches(text, &m.topic) && !(sub.no_local && mine),
                _ => false,
            };
            if matching {
                granted = granted.max(Some(sub.qos));
                retain |= sub.retain_as_published && m.retain;
                ids.extend(sub.id);
            }
        }
        let Some(granted) = granted else {
            self.window.add_permits(1);
            return self.ack(taken.queue, handle).await.map(|()| None);
        };
        let qos = m.qos.min(granted);
        let waited = self.session.shared.engine.clock().now_ms().saturating_sub(taken.message.sent_ms);
        let Some(mut properties) = m.properties.aged(waited) else {
            // Its Message Expiry Interval passed while it waited: not delivered (3.3.2.3.3).
            self.window.add_permits(1);
            return self.ack(taken.queue, handle).await.map(|()| None);
        };
        for id in ids {
            properties.push(id::SUBSCRIPTION_ID, Value::VarInt(id));
        }
        // Derived from the message id, which is durable: a PUBLISH sent again after a reconnect
        // or a restart carries its original packet id (MQTT-4.4.0-1).
        let packet_id = (qos != QoS::AtMostOnce).then(|| packet_id_of(&taken.message.message_id));
        let publish = Packet::Publish(Publish {
            dup: dup && qos != QoS::AtMostOnce,
            qos,
            retain,
            topic: m.topic,
            packet_id,
            properties,
            payload: m.payload.to_vec(),
        });
        let mut bytes = Vec::new();
        codec::encode(&publish, self.version, &mut bytes);
        if bytes.len() > self.client_max_packet {
            // Larger than the client takes: discarded, as the spec asks (3.1.2.11.4).
            self.window.add_permits(1);
            return self.ack(taken.queue, handle).await.map(|()| None);
        }
        Ok(Some(Ready { queue: taken.queue, handle, qos, packet_id, bytes }))
    }

    /// Sends the deliveries waiting, in order, up to the first whose packet id is still in
    /// flight (two messages whose ids derive to the same packet id are never in flight at once).
    async fn send_ready(&mut self) -> Result<(), End> {
        while let Some(first) = self.ready.front() {
            if first.packet_id.is_some_and(|pid| self.out.contains_key(&pid)) {
                return Ok(());
            }
            let Some(r) = self.ready.pop_front() else { return Ok(()) };
            match r.packet_id {
                Some(pid) => {
                    self.out.insert(pid, Out::Sent { from: Some((r.queue, r.handle)), qos: r.qos });
                    self.wr.write_all(&r.bytes).await.map_err(|_| End::Lost)?;
                }
                None => {
                    self.wr.write_all(&r.bytes).await.map_err(|_| End::Lost)?;
                    self.window.add_permits(1);
                    self.ack(r.queue, r.handle).await?;
                }
            }
        }
        Ok(())
    }
}

/// Publishes a will (retaining it too if it asks to be). Blocking.
fn send_will(engine: &crate::Engine, shared: &crate::server::Shared, w: Will, client_id: String) -> crate::Result<()> {
    let m = MqttMessage {
        topic: w.topic,
        qos: w.qos,
        retain: w.retain,
        publisher: client_id,
        properties: w.properties.forwarded(),
        payload: w.payload.into(),
    };
    if m.retain {
        shared.mqtt.retain(engine, &m)?;
    }
    broker::publish(engine, &m, None)?;
    Ok(())
}

/// The packet id of a delivery of the message `message_id` (FNV-1a onto 1..=65535): the same
/// for every delivery of the message, so nothing but the message has to be durable for a
/// PUBLISH to be sent again with its original id.
fn packet_id_of(message_id: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in message_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 65_535) as u16 + 1
}

impl Conn {
    async fn on_subscribe(&mut self, s: codec::Subscribe) -> Result<(), End> {
        let sub_id = match s.properties.get(id::SUBSCRIPTION_ID) {
            Some(Value::VarInt(0)) => {
                return Err(End::Violation(ReasonCode::PROTOCOL_ERROR, "subscription identifier 0".into()))
            }
            Some(Value::VarInt(n)) => Some(*n),
            _ => None,
        };
        let mut reasons = Vec::with_capacity(s.subscriptions.len());
        let mut retained_wanted = Vec::new();
        for sub in &s.subscriptions {
            let Some(parsed) = topic::parse_filter(&sub.filter) else {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            };
            if parsed.group.is_some() && sub.no_local {
                // Spec 3.8.3.1: No Local on a shared subscription is a protocol error.
                return Err(End::Violation(ReasonCode::PROTOCOL_ERROR, "No Local on a shared subscription".into()));
            }
            if !self.allowed("sns:Subscribe") {
                reasons.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            let existed = self.subs.contains_key(&sub.filter);
            match self.subscribe_one(sub, &parsed, sub_id).await {
                Ok(()) => {
                    reasons.push(ReasonCode(sub.qos as u8));
                    let send =
                        parsed.group.is_none() && (sub.retain_handling == 0 || (sub.retain_handling == 1 && !existed));
                    if send {
                        retained_wanted.push((
                            parsed.filter.clone(),
                            sub.qos,
                            sub.retain_as_published || self.version == Version::V311,
                            sub_id,
                        ));
                    }
                }
                Err(e) => {
                    self.session.log(LogLevel::Warn, "MQTT subscribe failed", fields!("error" => e.to_string()));
                    reasons.push(ReasonCode::UNSPECIFIED_ERROR);
                }
            }
        }
        let ack = SubAck { packet_id: s.packet_id, properties: Properties::default(), reasons };
        self.send(&Packet::SubAck(ack)).await?;
        for (filter, qos, _rap, sid) in retained_wanted {
            self.send_retained(&filter, qos, sid).await?;
        }
        Ok(())
    }

    /// Records one subscription: a binding of the session queue, or for a shared one a binding
    /// of the group's queue and a consumer of it.
    async fn subscribe_one(
        &mut self,
        sub: &codec::Subscription,
        parsed: &SubscriptionFilter,
        sub_id: Option<u32>,
    ) -> crate::Result<()> {
        let arguments = binding_arguments(sub, sub_id);
        let binding = Binding {
            key: parsed.filter.clone(),
            arguments: arguments.clone(),
            filter: RouteFilter::Mqtt(parsed.filter.clone()),
        };
        if parsed.group.is_some() {
            let entry = Sub {
                qos: sub.qos,
                no_local: false,
                retain_as_published: sub.retain_as_published,
                id: sub_id,
                shared: None,
            };
            return self.join_group(&sub.filter, parsed, entry).await;
        }
        let old_arguments = self.subs.get(&sub.filter).map(|old| {
            binding_arguments(
                &codec::Subscription {
                    qos: old.qos,
                    no_local: old.no_local,
                    retain_as_published: old.retain_as_published,
                    ..sub.clone()
                },
                old.id,
            )
        });
        let queue = self.names.queue.clone();
        let key = parsed.filter.clone();
        self.session
            .shared
            .blocking(move |e| -> crate::Result<()> {
                if let Some(old) = old_arguments.filter(|old| *old != arguments) {
                    e.unbind(EXCHANGE, &queue, &key, &old)?;
                }
                e.bind(EXCHANGE, &queue, binding)?;
                Ok(())
            })
            .await
            .map_err(|e| crate::Error::InvalidArgument(e.0))??;
        let entry = Sub {
            qos: sub.qos,
            no_local: sub.no_local,
            retain_as_published: sub.retain_as_published,
            id: sub_id,
            shared: None,
        };
        self.subs.insert(sub.filter.clone(), entry);
        Ok(())
    }

    /// Joins (or rejoins after a reconnect or a restart) the group of a shared subscription:
    /// the group's queue bound to the filter, a consumer of it, and the membership, durable
    /// as a binding of the session queue that matches no message (its key the whole
    /// `$share/GROUP/FILTER`, its arguments the subscription's options), so that the session
    /// is a member again when a connection opens it.
    async fn join_group(&mut self, text: &str, parsed: &SubscriptionFilter, entry: Sub) -> crate::Result<()> {
        let Some(group) = &parsed.group else { return Ok(()) };
        let name = super::message::shared_queue(group, &parsed.filter);
        let routing = Binding {
            key: parsed.filter.clone(),
            arguments: String::new(),
            filter: RouteFilter::Mqtt(parsed.filter.clone()),
        };
        let membership = Binding { key: text.to_string(), arguments: sub_arguments(&entry), filter: no_messages() };
        let old = self.subs.get(text).map(sub_arguments).filter(|old| *old != membership.arguments);
        let session = self.names.queue.clone();
        let queue = self
            .session
            .shared
            .blocking(move |e| -> crate::Result<Queue> {
                let (queue, _) = broker::ensure_queue(e, &name, false)?;
                e.bind(EXCHANGE, &name, routing)?;
                if let Some(old) = old {
                    e.unbind(EXCHANGE, &session, &membership.key, &old)?;
                }
                e.bind(EXCHANGE, &session, membership)?;
                Ok(queue)
            })
            .await
            .map_err(|e| crate::Error::InvalidArgument(e.0))??;
        if let Some(old) = self.subs.get_mut(text) {
            (old.qos, old.retain_as_published, old.id) = (entry.qos, entry.retain_as_published, entry.id);
            return Ok(());
        }
        let (stop, stop_rx) = watch::channel(false);
        self.start_consumer(queue.clone(), Some(text.to_string()), stop_rx);
        self.subs.insert(text.to_string(), Sub { shared: Some((queue, stop)), ..entry });
        Ok(())
    }

    /// Sends the retained messages matching a new subscription, with the retain flag set.
    async fn send_retained(&mut self, filter: &str, granted: QoS, sub_id: Option<u32>) -> Result<(), End> {
        let shared = Arc::clone(&self.session.shared);
        let filter_owned = filter.to_string();
        let found = self.session.shared.blocking(move |e| shared.mqtt.retained_matching(e, &filter_owned)).await;
        let messages = match found {
            Ok(Ok(m)) => m,
            _ => return Ok(()),
        };
        for (m, waited) in messages {
            // A retained message whose Message Expiry Interval passed is not sent.
            let Some(mut properties) = m.properties.aged(waited) else { continue };
            let qos = m.qos.min(granted);
            let packet_id = (qos != QoS::AtMostOnce).then(|| self.next_packet_id());
            if let Some(pid) = packet_id {
                self.out.insert(pid, Out::Sent { from: None, qos });
            }
            properties.extend_subscription_id(sub_id);
            let publish = Publish {
                dup: false,
                qos,
                retain: true,
                topic: m.topic,
                packet_id,
                properties,
                payload: m.payload.to_vec(),
            };
            self.send(&Packet::Publish(publish)).await?;
        }
        Ok(())
    }

    async fn on_unsubscribe(&mut self, u: codec::Unsubscribe) -> Result<(), End> {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for text in &u.filters {
            let Some(sub) = self.subs.remove(text) else {
                reasons.push(ReasonCode::NO_SUBSCRIPTION_EXISTED);
                continue;
            };
            if let Some((_, stop)) = &sub.shared {
                // The group's queue and binding stay for the group's other members; the
                // membership (a binding of the session queue) goes.
                stop.send_replace(true);
            }
            let arguments = sub_arguments(&sub);
            let (queue, key) = (self.names.queue.clone(), text.clone());
            let done = self.session.shared.blocking(move |e| e.unbind(EXCHANGE, &queue, &key, &arguments)).await;
            reasons.push(match done {
                Ok(Ok(_)) => ReasonCode::SUCCESS,
                _ => ReasonCode::UNSPECIFIED_ERROR,
            });
        }
        let ack = SubAck { packet_id: u.packet_id, properties: Properties::default(), reasons };
        self.send(&Packet::UnsubAck(ack)).await
    }

    /// Ends the connection: tells a v5 client why, stops the consumers, puts every message
    /// taken but not acknowledged back at the head of its queue (a persistent session gets
    /// them again), publishes the will unless the client said goodbye, and deletes a session
    /// that ends with the connection.
    async fn finish(&mut self, end: End) {
        let (reason, publish_will) = match &end {
            End::Disconnected { publish_will } => (None, *publish_will),
            End::Lost => (None, true),
            End::Violation(r, message) => {
                self.session.log(
                    LogLevel::Debug,
                    "MQTT protocol violation",
                    fields!("reason" => r.0, "error" => message.clone()),
                );
                (Some(*r), true)
            }
            End::Closed(r) => (Some(*r), true),
        };
        if let (Some(reason), Version::V5) = (reason, self.version) {
            let _ = self.send(&Packet::Disconnect(Disconnect { reason, properties: Properties::default() })).await;
        }
        let _ = self.wr.shutdown().await;
        self.stop_session_consumer.send_replace(true);
        for sub in self.subs.values() {
            if let Some((_, stop)) = &sub.shared {
                stop.send_replace(true);
            }
        }
        self.taken_rx.close();
        while self.consumers.join_next().await.is_some() {}
        let mut back: Vec<(Queue, String)> = self.ready.drain(..).map(|r| (r.queue, r.handle)).collect();
        while let Ok(t) = self.taken_rx.try_recv() {
            back.push((t.queue, t.message.receipt_handle));
        }
        let markers: Vec<String> = self.received.drain().map(|(_, h)| h).collect();
        let qos2 = self.qos2.clone();
        let mut records = Vec::new();
        for (_, out) in std::mem::take(&mut self.out) {
            match out {
                Out::Sent { from: Some(from), .. } => back.push(from),
                Out::Released { record: Some(record) } => records.push(record),
                _ => {}
            }
        }
        let pubrel = self.pubrel.clone();
        let will = if publish_will { self.will.take() } else { None };
        // Spec 3.1.3.2.2: the will waits for its delay, or for the end of the session if that
        // comes first, and is not published if a connection takes the session up meanwhile.
        let delay = will.as_ref().map_or(0, |w| w.properties.four(id::WILL_DELAY).unwrap_or(0).min(self.expiry));
        let (will, delayed) = if delay > 0 { (None, will) } else { (will, None) };
        let client_id = self.client_id.clone();
        let (delete, interval) = (self.expiry == 0, self.expiry);
        let names = self.names.clone();
        let shared = Arc::clone(&self.session.shared);
        let done = self
            .session
            .shared
            .blocking(move |e| -> crate::Result<()> {
                // One release per queue: its messages go back to the head in their own order,
                // so that they are sent again in the order they were first sent.
                let mut by_queue: Vec<(Queue, Vec<&str>)> = Vec::new();
                for (queue, handle) in &back {
                    match by_queue.iter_mut().find(|(q, _)| q.name() == queue.name()) {
                        Some((_, handles)) => handles.push(handle.as_str()),
                        None => by_queue.push((queue.clone(), vec![handle.as_str()])),
                    }
                }
                for (queue, handles) in &by_queue {
                    queue.release_to_head(handles)?;
                }
                if !markers.is_empty() {
                    qos2.release_to_head(&markers.iter().map(String::as_str).collect::<Vec<_>>())?;
                }
                if !records.is_empty() {
                    pubrel.release_to_head(&records.iter().map(String::as_str).collect::<Vec<_>>())?;
                }
                if let Some(w) = will {
                    send_will(e, &shared, w, client_id)?;
                }
                if delete {
                    broker::delete_session(e, &names)?;
                } else {
                    // Durable: the session expires this long after now even if the server
                    // restarts meanwhile, unless a connection takes it up again.
                    expiry::ended(e, &names.queue, interval)?;
                }
                Ok(())
            })
            .await;
        if let Ok(Err(e)) = done {
            self.session.log(LogLevel::Warn, "MQTT session end failed", fields!("error" => e.to_string()));
        }
        self.session.shared.mqtt.expiry_changed.notify_one();
        if let Some(will) = delayed {
            let shared = Arc::clone(&self.session.shared);
            let (client_id, wait) = (self.client_id.clone(), Duration::from_secs(u64::from(delay)));
            // None when a newer connection has the client id already: no will then.
            let Some((token, cancelled)) = shared.mqtt.delay_will(&client_id, self.connection) else { return };
            let mut stop = shared.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    // A connection took the client id: no will.
                    _ = cancelled.notified() => return,
                    // Not durable: a will still waiting when the server stops is not published.
                    _ = stopped(&mut stop) => return,
                }
                if !shared.mqtt.will_due(&client_id, token) {
                    return;
                }
                let publisher = Arc::clone(&shared);
                let published = shared.blocking(move |e| send_will(e, &publisher, will, client_id)).await;
                if let Ok(Err(e)) = published {
                    shared.log.warn("MQTT will not published", fields!("error" => e.to_string()));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::packet_id_of;

    #[test]
    fn a_packet_id_is_never_zero_and_never_changes_for_a_message() {
        // Pinned: a server started after an upgrade sends a PUBLISH again with the id an older
        // one gave it, so the function may not change.
        assert_eq!(packet_id_of(""), (0x811c_9dc5u32 % 65_535) as u16 + 1);
        assert_eq!(packet_id_of("a"), (0xe40c_292cu32 % 65_535) as u16 + 1);
        let ids: Vec<u16> = (0..10_000).map(|i| packet_id_of(&format!("message-{i}"))).collect();
        assert!(ids.iter().all(|&id| id != 0));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert!(distinct.len() > 9_000, "spread over the id space: {}", distinct.len());
    }
}
