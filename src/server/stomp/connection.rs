//! One STOMP connection: CONNECT (version, login and passcode, heart-beats), then frames until
//! DISCONNECT, an error or the peer leaving. Every frame with a `receipt` header is answered
//! with a RECEIPT once what it asked for is done (for SEND and ACK: durable). Anything wrong
//! is an ERROR frame, after which the connection closes, as the spec says. When the connection
//! ends, its subscriptions stop, its unacknowledged messages (and those acknowledged in
//! transactions never committed) go back to the head of their queues, and the queues of its
//! topic subscriptions are deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{self, Command, Decoded, Frame, Limits, Version};
use super::deliveries::{by_queue, Deliveries, Unacked};
use super::destination::{self, Destination};
use super::subscription::{self, AckMode, Link, Spec, SubscriptionHandle};
use super::{message, StompError};
use crate::engine::Delivery;
use crate::queue::store::BrokerMessage;
use crate::queue::{BrokerOptions, QueueConfig};
use crate::server::auth::Principal;
use crate::server::logging::{fields, LogLevel};
use crate::server::protocols::{stopped, write_loop, BoxedIo, Session};
use crate::topic::{Binding, ExchangeKind};

/// How long a client has to send CONNECT.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the last frames may take to reach the client when the connection ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection reads (and drops) what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// Frames queued for the writer before senders wait.
const OUTBOX_DEPTH: usize = 256;
/// Shortest heart-beat interval the server sends or expects, in milliseconds.
const MIN_HEARTBEAT_MS: u64 = 1000;
/// Most subscriptions one connection may have.
const MAX_SUBSCRIPTIONS: usize = 1024;
/// Most transactions one connection may have open.
const MAX_TRANSACTIONS: usize = 64;
/// Most body bytes the SENDs of one transaction may hold until COMMIT (they wait in memory).
const MAX_TRANSACTION_BYTES: usize = 64 << 20;
/// Most ACKs, NACKs and SENDs of one transaction.
const MAX_TRANSACTION_FRAMES: usize = 100_000;
/// The versions served, for the ERROR of a failed negotiation.
const SUPPORTED: &str = "1.0,1.1,1.2";

/// Serves one connection to the end.
pub(crate) async fn run(io: BoxedIo, session: Session) {
    let (mut reader, writer) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel::<Bytes>(OUTBOX_DEPTH);
    let writing = tokio::spawn(write_loop(writer, rx));
    let mut buf = BytesMut::with_capacity(8192);
    let limits = Limits::default();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(&mut reader, &mut buf, &session, &limits)).await {
        Ok(Ok(Some(open))) => {
            let link = Arc::new(Link {
                shared: Arc::clone(&session.shared),
                version: open.version,
                outbox: tx.clone(),
                deliveries: tokio::sync::Mutex::new(Deliveries::default()),
                room: tokio::sync::Notify::new(),
            });
            link.send(&open.connected).await;
            let mut conn = Connection {
                session,
                link,
                principal: open.principal,
                limits,
                subscriptions: HashMap::new(),
                transactions: HashMap::new(),
                send_every: open.send_every,
                expect_every: open.expect_every,
                last_read: Instant::now(),
            };
            let end = conn.serve(&mut reader, &mut buf).await;
            conn.finish(end).await;
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            session.log(LogLevel::Debug, "STOMP CONNECT refused", fields!("error" => e.message.clone()));
            let frame = error_frame(&e, None).with("version", SUPPORTED);
            send_raw(&tx, &frame, Version::V1_2).await;
        }
        Err(_) => session.log(LogLevel::Debug, "STOMP CONNECT timed out", fields!()),
    }
    drop(tx);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, writing).await;
    // A lingering close: the writer has sent everything (an ERROR too) and shut its side, so
    // read and drop what the client still sends until it closes. Closing a socket with unread
    // input resets the connection, and a reset can cost the client the ERROR it was sent.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = vec![0u8; 16 << 10];
        while let Ok(n) = reader.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn send_raw(tx: &mpsc::Sender<Bytes>, frame: &Frame, version: Version) {
    let mut out = Vec::new();
    codec::encode(frame, version, &mut out);
    let _ = tx.send(Bytes::from(out)).await;
}

/// An ERROR frame for `e`, naming the receipt of the frame that failed.
fn error_frame(e: &StompError, receipt: Option<&str>) -> Frame {
    let mut frame = Frame::new(Command::Error).with("message", e.message.clone());
    if let Some(r) = receipt {
        frame = frame.with("receipt-id", r);
    }
    frame.body = e.detail.clone().into_bytes();
    let len = frame.body.len();
    frame.with("content-type", "text/plain").with("content-length", len.to_string())
}

/// What CONNECT settled.
struct Open {
    version: Version,
    principal: Principal,
    send_every: Option<Duration>,
    expect_every: Option<Duration>,
    connected: Frame,
}

/// Reads the next frame, skipping heart-beats; `None` when the peer is gone.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    version: Version,
    limits: &Limits,
) -> Result<Option<Frame>, StompError> {
    loop {
        match codec::decode(buf, version, limits) {
            Ok(Some(Decoded::Heartbeat(n))) => {
                let _ = buf.split_to(n);
                continue;
            }
            Ok(Some(Decoded::Frame(frame, n))) => {
                let _ = buf.split_to(n);
                return Ok(Some(frame));
            }
            Ok(None) => {}
            Err(e) => return Err(frame_error(e)),
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

fn frame_error(e: codec::FrameError) -> StompError {
    match &e {
        codec::FrameError::Malformed(_) => StompError::new("malformed frame", e.to_string()),
        codec::FrameError::TooLarge(_) => StompError::new("frame too large", e.to_string()),
    }
}

/// The CONNECT (or STOMP) frame and the answer to it; `None` if the peer left first.
async fn connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    session: &Session,
    limits: &Limits,
) -> Result<Option<Open>, StompError> {
    let Some(frame) = read_frame(reader, buf, Version::V1_2, limits).await? else { return Ok(None) };
    if !matches!(frame.command, Command::Connect | Command::Stomp) {
        return Err(StompError::new(
            "not connected",
            format!("the first frame must be CONNECT or STOMP, not {}", frame.command.name()),
        ));
    }
    let Some(version) = Version::negotiate(frame.header("accept-version")) else {
        return Err(StompError::new("unsupported protocol version", format!("this server speaks STOMP {SUPPORTED}")));
    };
    let login = frame.header("login").unwrap_or_default();
    let passcode = frame.header("passcode").unwrap_or_default();
    let principal =
        session.authenticate(login, passcode.as_bytes()).map_err(|e| StompError::new("access refused", e.message))?;
    let (client_sends, client_wants) = match frame.header("heart-beat") {
        None => (0, 0),
        Some(text) => parse_heartbeat(text).ok_or_else(|| {
            StompError::new(
                "invalid heart-beat",
                format!("heart-beat:{text}: two numbers of milliseconds, as 10000,10000"),
            )
        })?,
    };
    // The spec's rule: each direction beats at the larger of what one side can and the other
    // wants, or not at all if either says 0.
    let send_ms = if client_wants == 0 { 0 } else { client_wants.max(MIN_HEARTBEAT_MS) };
    let expect_ms = if client_sends == 0 { 0 } else { client_sends.max(MIN_HEARTBEAT_MS) };
    let session_id = session.shared.next_request_id();
    let mut connected = Frame::new(Command::Connected)
        .with("session", session_id)
        .with("server", concat!("weir/", env!("CARGO_PKG_VERSION")))
        .with("heart-beat", format!("{send_ms},{expect_ms}"));
    if version > Version::V1_0 {
        connected = connected.with("version", version.name());
    }
    session.log(LogLevel::Debug, "STOMP connection open", fields!("user" => login, "version" => version.name()));
    let every = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    Ok(Some(Open { version, principal, send_every: every(send_ms), expect_every: every(expect_ms), connected }))
}

/// Reads `cx,cy`.
fn parse_heartbeat(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(',')?;
    let number = |t: &str| t.trim().parse::<u64>().ok().filter(|_| t.trim().bytes().all(|c| c.is_ascii_digit()));
    Some((number(a)?, number(b)?))
}

/// A transaction's work, applied at COMMIT.
#[derive(Default)]
struct Transaction {
    sends: Vec<(Destination, BrokerMessage)>,
    acks: Vec<(u64, Unacked)>,
    nacks: Vec<(u64, Unacked)>,
    /// Body bytes of `sends`.
    bytes: usize,
}

impl Transaction {
    /// Refuses a transaction grown past what a connection may keep in memory.
    fn check_size(&self) -> Result<(), StompError> {
        let frames = self.sends.len() + self.acks.len() + self.nacks.len();
        if self.bytes > MAX_TRANSACTION_BYTES || frames > MAX_TRANSACTION_FRAMES {
            return Err(StompError::new(
                "transaction too large",
                format!(
                    "a transaction holds at most {MAX_TRANSACTION_FRAMES} frames and {MAX_TRANSACTION_BYTES} bytes of bodies until COMMIT"
                ),
            ));
        }
        Ok(())
    }
}

/// Why the connection's loop ended.
enum End {
    /// The peer is gone.
    Gone,
    /// DISCONNECT, with the receipt it asked for.
    Disconnect(Option<String>),
    /// An ERROR frame to send, naming the receipt of the frame that failed.
    Error(StompError, Option<String>),
}

struct Connection {
    session: Session,
    link: Arc<Link>,
    principal: Principal,
    limits: Limits,
    subscriptions: HashMap<String, SubscriptionHandle>,
    transactions: HashMap<String, Transaction>,
    send_every: Option<Duration>,
    expect_every: Option<Duration>,
    last_read: Instant,
}

fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, StompError> {
    frame.header(name).ok_or_else(|| {
        StompError::new(
            format!("missing {name} header"),
            format!("a {} frame needs a {name} header", frame.command.name()),
        )
    })
}

impl Connection {
    async fn serve<R: AsyncRead + Unpin>(&mut self, reader: &mut R, buf: &mut BytesMut) -> End {
        let idle = Duration::from_secs(3600);
        let mut send_tick = tokio::time::interval(self.send_every.unwrap_or(idle));
        let mut check_tick = tokio::time::interval(self.expect_every.unwrap_or(idle));
        let mut stop = self.session.stop.clone();
        loop {
            // Frames already read first.
            match codec::decode(buf, self.link.version, &self.limits) {
                Ok(Some(Decoded::Heartbeat(n))) => {
                    let _ = buf.split_to(n);
                    self.last_read = Instant::now();
                    continue;
                }
                Ok(Some(Decoded::Frame(frame, n))) => {
                    let _ = buf.split_to(n);
                    self.last_read = Instant::now();
                    match self.on_frame(frame).await {
                        Ok(()) => continue,
                        Err(end) => return end,
                    }
                }
                Ok(None) => {}
                Err(e) => return End::Error(frame_error(e), None),
            }
            tokio::select! {
                read = reader.read_buf(buf) => match read {
                    Ok(0) | Err(_) => return End::Gone,
                    Ok(_) => self.last_read = Instant::now(),
                },
                _ = send_tick.tick(), if self.send_every.is_some() => {
                    let _ = self.link.outbox.send(Bytes::from_static(b"\n")).await;
                }
                _ = check_tick.tick(), if self.expect_every.is_some() => {
                    // Twice the interval: the spec leaves room for network delays.
                    let limit = self.expect_every.unwrap_or(idle) * 2;
                    if self.last_read.elapsed() > limit {
                        self.session.log(LogLevel::Debug, "STOMP peer missed its heart-beats", fields!());
                        return End::Gone;
                    }
                }
                _ = stopped(&mut stop) => {
                    return End::Error(StompError::new("server shutting down", "the server is stopping"), None);
                }
            }
        }
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), End> {
        let receipt = frame.header("receipt").map(str::to_string);
        let done = match frame.command {
            Command::Send => self.on_send(&frame).await,
            Command::Subscribe => self.on_subscribe(&frame).await,
            Command::Unsubscribe => self.on_unsubscribe(&frame).await,
            Command::Ack => self.on_settle(&frame, true).await,
            Command::Nack => self.on_settle(&frame, false).await,
            Command::Begin => self.on_begin(&frame),
            Command::Commit => self.on_commit(&frame).await,
            Command::Abort => self.on_abort(&frame).await,
            Command::Disconnect => return Err(End::Disconnect(receipt)),
            Command::Connect | Command::Stomp => {
                Err(StompError::new("already connected", "CONNECT is the first frame only"))
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => Err(StompError::new(
                "unexpected frame",
                format!("{} is a frame the server sends", frame.command.name()),
            )),
        };
        match done {
            Ok(()) => {
                if let Some(r) = receipt {
                    self.link.send(&Frame::new(Command::Receipt).with("receipt-id", r)).await;
                }
                Ok(())
            }
            Err(e) => Err(End::Error(e, receipt)),
        }
    }

    async fn on_send(&mut self, frame: &Frame) -> Result<(), StompError> {
        let destination = Destination::parse(required(frame, "destination")?)?;
        destination::authorize(&self.link.shared, &self.principal, &destination, true).await?;
        let message = message::from_send(frame);
        if let Some(tx) = frame.header("transaction") {
            let tx = self.transaction(tx)?;
            tx.bytes = tx.bytes.saturating_add(message.body.len());
            tx.sends.push((destination, message));
            return tx.check_size();
        }
        self.link.shared.blocking(move |e| destination::send(e, &destination, message)).await?
    }

    fn transaction(&mut self, name: &str) -> Result<&mut Transaction, StompError> {
        self.transactions
            .get_mut(name)
            .ok_or_else(|| StompError::new("unknown transaction", format!("no transaction {name:?} has begun")))
    }

    /// A subscription's id: the `id` header (1.0 may leave it out: then the destination).
    fn subscription_id(&self, frame: &Frame) -> Result<String, StompError> {
        match (frame.header("id"), self.link.version) {
            (Some(id), _) => Ok(id.to_string()),
            (None, Version::V1_0) => Ok(required(frame, "destination")?.to_string()),
            (None, _) => Err(StompError::new(
                "missing id header",
                format!("a {} frame needs an id header", frame.command.name()),
            )),
        }
    }

    async fn on_subscribe(&mut self, frame: &Frame) -> Result<(), StompError> {
        let id = self.subscription_id(frame)?;
        if self.subscriptions.contains_key(&id) {
            return Err(StompError::new("duplicate subscription", format!("subscription {id:?} exists already")));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(StompError::new(
                "too many subscriptions",
                format!("a connection has at most {MAX_SUBSCRIPTIONS} subscriptions"),
            ));
        }
        let destination = Destination::parse(required(frame, "destination")?)?;
        let mode = AckMode::parse(frame.header("ack"))?;
        let prefetch = match frame.header("prefetch-count") {
            None => subscription::DEFAULT_PREFETCH,
            Some(text) => text.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                StompError::new("invalid prefetch-count", format!("prefetch-count:{text}: a number above 0"))
            })?,
        };
        destination::authorize(&self.link.shared, &self.principal, &destination, false).await?;
        let target = destination.clone();
        let (queue, own_queue) = self
            .link
            .shared
            .blocking(move |e| -> Result<_, crate::Error> {
                match &target {
                    Destination::Queue(name) => Ok((destination::ensure_queue(e, name)?, None)),
                    Destination::Topic(name) => {
                        destination::ensure_topic(e, name)?;
                        // A queue of the subscription's own, bound to the topic; transient, so
                        // a restart deletes it if the connection could not.
                        let own = crate::server::amqp::channel::server_named("stomp.subscription-");
                        let config = QueueConfig {
                            broker: Some(BrokerOptions {
                                transient: true,
                                exclusive: true,
                                ..BrokerOptions::default()
                            }),
                            max_message_bytes: crate::queue::config::MAX_MAX_MESSAGE_BYTES,
                            ..QueueConfig::default()
                        };
                        e.create_queue(&own, config)?;
                        e.bind(name, &own, Binding::new(ExchangeKind::Fanout, "", String::new(), None)?)?;
                        Ok((e.queue(&own)?, Some(own)))
                    }
                }
            })
            .await??;
        let spec = Spec { id: Arc::from(id.as_str()), destination, mode, prefetch };
        let handle = subscription::start(Arc::clone(&self.link), spec, queue, own_queue);
        self.subscriptions.insert(id, handle);
        Ok(())
    }

    async fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), StompError> {
        let id = self.subscription_id(frame)?;
        let Some(handle) = self.subscriptions.remove(&id) else {
            return Err(StompError::new("unknown subscription", format!("no subscription {id:?}")));
        };
        self.end_subscription(&id, handle).await
    }

    /// Stops a subscription, sends its unacknowledged messages back and drops its own queue.
    async fn end_subscription(&mut self, id: &str, handle: SubscriptionHandle) -> Result<(), StompError> {
        let own_queue = handle.stop().await;
        let taken = self.link.deliveries.lock().await.take_subscription(id);
        release(&self.link, taken).await?;
        if let Some(own) = own_queue {
            drop_queue(&self.link, own).await?;
        }
        Ok(())
    }

    /// ACK (`ack`) or NACK.
    async fn on_settle(&mut self, frame: &Frame, ack: bool) -> Result<(), StompError> {
        let id_header = if self.link.version >= Version::V1_2 { "id" } else { "message-id" };
        let id = required(frame, id_header)?;
        if let Some(tx) = frame.header("transaction") {
            self.transaction(tx)?;
        }
        let Some(taken) = self.link.deliveries.lock().await.take(id, frame.header("subscription")) else {
            return Err(StompError::new(
                "unknown message",
                format!("{id_header}:{id} names no message of this connection waiting for an acknowledgement"),
            ));
        };
        if let Some(tx) = frame.header("transaction") {
            let tx = self.transaction(tx)?;
            if ack { &mut tx.acks } else { &mut tx.nacks }.extend(taken);
            return tx.check_size();
        }
        let result = if ack { acknowledge(&self.link, taken).await } else { release(&self.link, taken).await };
        self.link.room.notify_waiters();
        result
    }

    fn on_begin(&mut self, frame: &Frame) -> Result<(), StompError> {
        let name = required(frame, "transaction")?;
        if self.transactions.contains_key(name) {
            return Err(StompError::new("duplicate transaction", format!("transaction {name:?} has begun already")));
        }
        if self.transactions.len() >= MAX_TRANSACTIONS {
            return Err(StompError::new(
                "too many transactions",
                format!("a connection has at most {MAX_TRANSACTIONS} transactions open"),
            ));
        }
        self.transactions.insert(name.to_string(), Transaction::default());
        Ok(())
    }

    /// Applies a transaction: its sends and acknowledgements in one durable frame of the
    /// engine, then its NACKs.
    async fn on_commit(&mut self, frame: &Frame) -> Result<(), StompError> {
        let name = required(frame, "transaction")?;
        let Some(tx) = self.transactions.remove(name) else {
            return Err(StompError::new("unknown transaction", format!("no transaction {name:?} has begun")));
        };
        let Transaction { sends, acks, nacks, .. } = tx;
        let handles: Vec<_> = acks.iter().map(|(_, u)| (u.queue.clone(), u.handle.clone())).collect();
        let committed = self
            .link
            .shared
            .blocking(move |e| -> Result<(), StompError> {
                let mut batch = Vec::with_capacity(sends.len());
                let mut wanted = Vec::with_capacity(sends.len());
                for (destination, message) in sends {
                    let queues = destination::targets(e, &destination, &message)?;
                    wanted.push((destination, queues.len()));
                    batch.push(Delivery { queues, message });
                }
                let took = e.commit(&batch, &handles)?;
                for ((destination, want), got) in wanted.iter().zip(took) {
                    if got < *want {
                        return Err(StompError::new(
                            "message too large",
                            format!("a message of the transaction was over the maximum message size of {}; the rest was committed", destination.header()),
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        let released = release(&self.link, nacks).await;
        self.link.room.notify_waiters();
        committed.and(released)
    }

    async fn on_abort(&mut self, frame: &Frame) -> Result<(), StompError> {
        let name = required(frame, "transaction")?;
        let Some(tx) = self.transactions.remove(name) else {
            return Err(StompError::new("unknown transaction", format!("no transaction {name:?} has begun")));
        };
        // Its ACKs and NACKs never happened: the messages wait for an acknowledgement again.
        let mut d = self.link.deliveries.lock().await;
        d.restore(tx.acks);
        d.restore(tx.nacks);
        Ok(())
    }

    /// Ends the connection: the ERROR or RECEIPT it owes, then everything it held goes back.
    async fn finish(mut self, end: End) {
        let mut receipt = None;
        match end {
            End::Gone => {}
            End::Disconnect(r) => receipt = r,
            End::Error(e, r) => {
                self.session.log(
                    LogLevel::Debug,
                    "STOMP error",
                    fields!("error" => e.message.clone(), "detail" => e.detail.clone()),
                );
                self.link.send(&error_frame(&e, r.as_deref())).await;
            }
        }
        let subscriptions: Vec<_> = self.subscriptions.drain().collect();
        for (id, handle) in subscriptions {
            if let Err(e) = self.end_subscription(&id, handle).await {
                self.session.log(LogLevel::Warn, "STOMP subscription cleanup failed", fields!("error" => e.detail));
            }
        }
        let mut held = {
            let mut d = self.link.deliveries.lock().await;
            d.closed = true;
            d.take_all()
        };
        for (_, tx) in self.transactions.drain() {
            held.extend(tx.acks);
            held.extend(tx.nacks);
        }
        if let Err(e) = release(&self.link, held).await {
            self.session.log(LogLevel::Warn, "STOMP release failed", fields!("error" => e.detail));
        }
        if let Some(r) = receipt {
            self.link.send(&Frame::new(Command::Receipt).with("receipt-id", r)).await;
        }
    }
}

/// Acknowledges messages durably (deletes them).
async fn acknowledge(link: &Link, taken: Vec<(u64, Unacked)>) -> Result<(), StompError> {
    for (queue, handles) in by_queue(taken) {
        let results =
            link.shared.blocking(move |_| queue.ack(&handles.iter().map(String::as_str).collect::<Vec<_>>())).await?;
        ignore_gone(results)?;
    }
    Ok(())
}

/// Sends messages back to the head of their queues.
async fn release(link: &Link, taken: Vec<(u64, Unacked)>) -> Result<(), StompError> {
    for (queue, handles) in by_queue(taken) {
        let results = link
            .shared
            .blocking(move |_| queue.release_to_head(&handles.iter().map(String::as_str).collect::<Vec<_>>()))
            .await?;
        ignore_gone(results)?;
    }
    Ok(())
}

/// A queue deleted under its deliveries has nothing to settle.
fn ignore_gone(results: crate::Result<Vec<crate::Result<()>>>) -> Result<(), StompError> {
    match results {
        Ok(_) | Err(crate::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a topic subscription's own queue and its binding.
async fn drop_queue(link: &Link, name: String) -> Result<(), StompError> {
    link.shared
        .blocking(move |e| -> crate::Result<()> {
            e.unbind_queue(&name)?;
            match e.delete_queue(&name) {
                Ok(()) | Err(crate::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beat_headers_are_two_numbers() {
        assert_eq!(parse_heartbeat("0,0"), Some((0, 0)));
        assert_eq!(parse_heartbeat("10000, 5000"), Some((10000, 5000)));
        for bad in ["", "1", "1,2,3", "-1,0", "a,b", "1,+2"] {
            assert_eq!(parse_heartbeat(bad), None, "{bad}");
        }
    }
}
