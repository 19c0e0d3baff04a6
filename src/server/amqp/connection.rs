//! One AMQP connection: the handshake (protocol header, start/start-ok with PLAIN or AMQPLAIN,
//! tune/tune-ok, open), then frames read and dispatched to channels (content assembled from
//! header and body frames), heartbeats both ways, and the close handshakes. Each channel is a
//! task of its own ([`super::channel`]) that receives its commands in order; everything the
//! connection and its channels write goes through one writer task.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::channel::{self, ChannelExit, Command};
use super::codec::{self, frame_type, Decoded, FieldTable, FieldValue, Reader, MIN_FRAME_MAX, PROTOCOL_HEADER};
use super::errors::{code, AmqpError};
use super::methods::Method;
use super::properties::ContentHeader;
use super::Outbox;
use crate::server::logging::{fields, LogLevel};
use crate::server::protocols::{stopped, write_loop, BoxedIo, Session};

/// Highest channel number offered.
pub const CHANNEL_MAX: u16 = 2047;
/// Largest frame offered (RabbitMQ's default).
pub const FRAME_MAX: u32 = 131_072;
/// Heartbeat interval offered, seconds.
pub const HEARTBEAT: u16 = 60;
/// Largest message body accepted (the engine's largest message).
pub const MAX_BODY: u64 = crate::queue::config::MAX_MAX_MESSAGE_BYTES as u64;
/// How long a client may take over the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the peer's close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Encoded frames waiting for the socket before writers wait.
const OUTBOX_DEPTH: usize = 256;
/// Commands waiting for a channel before the reader waits (backpressure on publishers).
const INBOX_DEPTH: usize = 512;

/// What connection state a channel shares.
pub(crate) struct ConnectionInfo {
    /// The connection's number in the registry.
    pub id: u64,
    /// Who it acts as.
    pub principal: crate::server::auth::Principal,
    /// The user name it logged in with (a publish's `user-id` property must be this one).
    pub user: String,
    /// The negotiated largest frame.
    pub frame_max: u32,
}

struct ChannelHandle {
    generation: u64,
    inbox: Option<mpsc::Sender<Command>>,
    /// A publish waiting for its header and body.
    content: Option<PendingContent>,
    /// A close was sent; waiting for the peer's close-ok (everything else is dropped).
    closing: bool,
}

struct PendingContent {
    method: Method,
    header: Option<ContentHeader>,
    body: BytesMut,
}

/// Serves one connection to the end.
pub(crate) async fn run(io: BoxedIo, session: Session) {
    let (mut reader, writer) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel::<Bytes>(OUTBOX_DEPTH);
    let writing = tokio::spawn(write_loop(writer, rx));
    let mut buf = BytesMut::with_capacity(8192);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut reader, &mut buf, &tx, &session)).await;
    match handshake {
        Ok(Ok(Some(negotiated))) => {
            let mut conn = Connection::new(session, tx.clone(), negotiated);
            conn.serve(&mut reader, &mut buf).await;
            conn.finish().await;
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            session.log(LogLevel::Debug, "AMQP handshake failed", fields!("error" => e.text.clone()));
            close_during_handshake(&mut reader, &mut buf, &tx, e).await;
        }
        Err(_) => session.log(LogLevel::Debug, "AMQP handshake timed out", fields!()),
    }
    drop(tx);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, writing).await;
}

async fn send(tx: &mpsc::Sender<Bytes>, channel: u16, method: &Method) {
    let _ = tx.send(super::method_frame(channel, method)).await;
}

/// Reads the next frame; `None` when the peer is gone.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    frame_max: u32,
) -> Result<Option<codec::Frame>, AmqpError> {
    loop {
        match codec::decode_frame(buf, frame_max).map_err(|e| AmqpError::new(code::FRAME_ERROR, e.0))? {
            Decoded::Frame(frame, used) => {
                let _ = buf.split_to(used);
                return Ok(Some(frame));
            }
            Decoded::Incomplete => {}
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// The handshake up to `connection.open-ok`; `None` if the peer left or spoke another
/// protocol (it was sent the header this server speaks).
async fn handshake<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    tx: &mpsc::Sender<Bytes>,
    session: &Session,
) -> Result<Option<Negotiated>, AmqpError> {
    while buf.len() < PROTOCOL_HEADER.len() {
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    if buf[..PROTOCOL_HEADER.len()] != PROTOCOL_HEADER {
        let _ = tx.send(Bytes::from_static(&PROTOCOL_HEADER)).await;
        return Ok(None);
    }
    let _ = buf.split_to(PROTOCOL_HEADER.len());
    send(tx, 0, &start_method()).await;
    let expect = |frame: Option<codec::Frame>| -> Result<Option<Method>, AmqpError> {
        let Some(frame) = frame else { return Ok(None) };
        if frame.kind == frame_type::HEARTBEAT {
            return Ok(Some(Method::ConnectionUnblocked)); // ignored below
        }
        if frame.kind != frame_type::METHOD || frame.channel != 0 {
            return Err(AmqpError::new(code::CHANNEL_ERROR, "expected a connection method on channel 0"));
        }
        Method::decode(&frame.payload).map(Some).map_err(|e| AmqpError::new(code::SYNTAX_ERROR, format!("{e:?}")))
    };
    let Some(start_ok) = expect(read_frame(reader, buf, FRAME_MAX).await?)? else { return Ok(None) };
    let Method::ConnectionStartOk { mechanism, response, .. } = start_ok else {
        return Err(AmqpError::new(code::COMMAND_INVALID, "expected connection.start-ok").on(start_ok.ids()));
    };
    let (user, password) = credentials(&mechanism, &response)?;
    let principal = session.authenticate(&user, &password).map_err(|_| {
        AmqpError::new(code::ACCESS_REFUSED, format!("Login was refused using authentication mechanism {mechanism}"))
    })?;
    send(tx, 0, &Method::ConnectionTune { channel_max: CHANNEL_MAX, frame_max: FRAME_MAX, heartbeat: HEARTBEAT }).await;
    let tune_ok = loop {
        let Some(m) = expect(read_frame(reader, buf, FRAME_MAX).await?)? else { return Ok(None) };
        if m != Method::ConnectionUnblocked {
            break m;
        }
    };
    let Method::ConnectionTuneOk { channel_max, frame_max, heartbeat } = tune_ok else {
        return Err(AmqpError::new(code::COMMAND_INVALID, "expected connection.tune-ok").on(tune_ok.ids()));
    };
    let frame_max = if frame_max == 0 { FRAME_MAX } else { frame_max };
    if !(MIN_FRAME_MAX..=FRAME_MAX).contains(&frame_max) {
        return Err(AmqpError::new(
            code::NOT_ALLOWED,
            format!("frame-max {frame_max} is outside {MIN_FRAME_MAX} to {FRAME_MAX}"),
        ));
    }
    let channel_max = if channel_max == 0 { CHANNEL_MAX } else { channel_max.min(CHANNEL_MAX) };
    let open = loop {
        let Some(m) = expect(read_frame(reader, buf, frame_max).await?)? else { return Ok(None) };
        if m != Method::ConnectionUnblocked {
            break m;
        }
    };
    let Method::ConnectionOpen { virtual_host } = open else {
        return Err(AmqpError::new(code::COMMAND_INVALID, "expected connection.open").on(open.ids()));
    };
    if virtual_host != "/" && !virtual_host.is_empty() {
        return Err(AmqpError::new(code::NOT_ALLOWED, format!("vhost {virtual_host} not found (weir has one, '/')")));
    }
    send(tx, 0, &Method::ConnectionOpenOk).await;
    let id = session.shared.registry.new_connection();
    session.log(LogLevel::Debug, "AMQP connection open", fields!("user" => user.clone(), "heartbeat" => heartbeat));
    Ok(Some(Negotiated { info: ConnectionInfo { id, principal, user, frame_max }, channel_max, heartbeat }))
}

/// What the handshake settled.
struct Negotiated {
    info: ConnectionInfo,
    channel_max: u16,
    /// Seconds; 0: none.
    heartbeat: u16,
}

/// The user and password of a start-ok response.
fn credentials(mechanism: &str, response: &[u8]) -> Result<(String, Vec<u8>), AmqpError> {
    match mechanism {
        // authzid NUL authcid NUL password
        "PLAIN" => {
            let mut parts = response.splitn(3, |&b| b == 0);
            let (_, user, password) = (parts.next(), parts.next(), parts.next());
            match (user, password) {
                (Some(user), Some(password)) => Ok((String::from_utf8_lossy(user).into_owned(), password.to_vec())),
                _ => Err(AmqpError::new(code::ACCESS_REFUSED, "a PLAIN response is authzid NUL user NUL password")),
            }
        }
        // A field table without its length: LOGIN and PASSWORD long strings.
        "AMQPLAIN" => {
            let mut framed = Vec::with_capacity(response.len() + 4);
            framed.extend_from_slice(&(response.len() as u32).to_be_bytes());
            framed.extend_from_slice(response);
            let table = Reader::new(&framed).table().map_err(|e| AmqpError::new(code::ACCESS_REFUSED, e.0))?;
            let text = |name: &str| match table.get(name) {
                Some(FieldValue::LongStr(b)) => Some(b.to_vec()),
                _ => None,
            };
            match (text("LOGIN"), text("PASSWORD")) {
                (Some(user), Some(password)) => Ok((String::from_utf8_lossy(&user).into_owned(), password)),
                _ => Err(AmqpError::new(code::ACCESS_REFUSED, "an AMQPLAIN response has LOGIN and PASSWORD")),
            }
        }
        other => Err(AmqpError::new(code::ACCESS_REFUSED, format!("unsupported authentication mechanism {other}"))),
    }
}

fn start_method() -> Method {
    let mut capabilities = FieldTable::default();
    for name in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "authentication_failure_close",
        "connection.blocked",
    ] {
        capabilities.insert(name, FieldValue::Bool(name != "connection.blocked"));
    }
    let mut props = FieldTable::default();
    props.insert("product", FieldValue::text("weir"));
    props.insert("version", FieldValue::text(env!("CARGO_PKG_VERSION")));
    props.insert("platform", FieldValue::text("Rust"));
    props.insert("information", FieldValue::text("AMQP 0-9-1 on weir's durable queues and topics"));
    props.insert("capabilities", FieldValue::Table(capabilities));
    Method::ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
}

/// A connection exception before the connection is open: close, and wait briefly for close-ok.
async fn close_during_handshake<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    tx: &mpsc::Sender<Bytes>,
    e: AmqpError,
) {
    let close = Method::ConnectionClose {
        reply_code: e.code,
        reply_text: e.text.clone(),
        class_id: e.class_id,
        method_id: e.method_id,
    };
    send(tx, 0, &close).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Ok(Some(frame)) = read_frame(reader, buf, FRAME_MAX).await {
            if frame.kind == frame_type::METHOD && Method::decode(&frame.payload) == Ok(Method::ConnectionCloseOk) {
                return;
            }
        }
    })
    .await;
}

struct Connection {
    session: Session,
    tx: mpsc::Sender<Bytes>,
    info: std::sync::Arc<ConnectionInfo>,
    channel_max: u16,
    heartbeat: Duration,
    channels: HashMap<u16, ChannelHandle>,
    tasks: JoinSet<(u16, u64, ChannelExit)>,
    next_generation: u64,
    last_read: Instant,
    /// Set once this side sent connection.close: waiting for close-ok.
    closing: bool,
}

/// What ends the connection's loop.
enum End {
    /// The peer is gone (or closed cleanly).
    Gone,
    /// Close with this exception (or `CONNECTION_FORCED` on stop).
    Close(AmqpError),
}

impl Connection {
    fn new(session: Session, tx: mpsc::Sender<Bytes>, negotiated: Negotiated) -> Connection {
        Connection {
            session,
            tx,
            info: std::sync::Arc::new(negotiated.info),
            channel_max: negotiated.channel_max,
            heartbeat: Duration::from_secs(u64::from(negotiated.heartbeat)),
            channels: HashMap::new(),
            tasks: JoinSet::new(),
            next_generation: 0,
            last_read: Instant::now(),
            closing: false,
        }
    }

    async fn serve<R: AsyncRead + Unpin>(&mut self, reader: &mut R, buf: &mut BytesMut) {
        // Heartbeats at half the negotiated interval, the first after one interval (not at
        // once); none at all when the peer turned them off.
        let beat = if self.heartbeat.is_zero() { Duration::from_secs(3600) } else { self.heartbeat / 2 };
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let mut stop = self.session.stop.clone();
        let end = loop {
            // Frames already read first.
            match codec::decode_frame(buf, self.info.frame_max) {
                Ok(Decoded::Frame(frame, used)) => {
                    let _ = buf.split_to(used);
                    self.last_read = Instant::now();
                    match self.on_frame(frame).await {
                        Ok(()) => continue,
                        Err(end) => break end,
                    }
                }
                Ok(Decoded::Incomplete) => {}
                Err(e) => break End::Close(AmqpError::new(code::FRAME_ERROR, e.0)),
            }
            tokio::select! {
                read = reader.read_buf(buf) => match read {
                    Ok(0) | Err(_) => break End::Gone,
                    Ok(_) => {}
                },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(end) = self.on_channel_exit(done).await {
                        break end;
                    }
                }
                _ = ticker.tick() => {
                    if self.heartbeat.is_zero() {
                        continue;
                    }
                    let _ = self.tx.send(Bytes::copy_from_slice(&codec::heartbeat())).await;
                    if self.last_read.elapsed() > self.heartbeat * 2 {
                        self.session.log(LogLevel::Debug, "AMQP peer missed its heartbeats", fields!());
                        break End::Gone;
                    }
                }
                _ = stopped(&mut stop) => {
                    break End::Close(AmqpError::new(code::CONNECTION_FORCED, "broker shutdown"));
                }
            }
        };
        if let End::Close(e) = end {
            self.close(reader, buf, e).await;
        }
    }

    /// Sends connection.close and waits (briefly) for close-ok, dropping other frames.
    async fn close<R: AsyncRead + Unpin>(&mut self, reader: &mut R, buf: &mut BytesMut, e: AmqpError) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.session.log(LogLevel::Debug, "AMQP connection exception", fields!("error" => e.text.clone()));
        // Channels stop first: nothing may follow connection.close.
        self.stop_channels().await;
        let close = Method::ConnectionClose {
            reply_code: e.code,
            reply_text: e.text.clone(),
            class_id: e.class_id,
            method_id: e.method_id,
        };
        send(&self.tx, 0, &close).await;
        let frame_max = self.info.frame_max;
        let tx = self.tx.clone();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Ok(Some(frame)) = read_frame(reader, buf, frame_max).await {
                if frame.kind != frame_type::METHOD || frame.channel != 0 {
                    continue;
                }
                match Method::decode(&frame.payload) {
                    Ok(Method::ConnectionCloseOk) => return,
                    // Both sides closing: answer and end.
                    Ok(Method::ConnectionClose { .. }) => {
                        send(&tx, 0, &Method::ConnectionCloseOk).await;
                        return;
                    }
                    _ => {}
                }
            }
        })
        .await;
    }

    /// Ends every channel (their deliveries go back to their queues) and waits for them.
    async fn stop_channels(&mut self) {
        for handle in self.channels.values_mut() {
            handle.inbox = None;
        }
        while self.tasks.join_next().await.is_some() {}
        self.channels.clear();
    }

    /// After the loop: channels ended, exclusive queues deleted.
    async fn finish(&mut self) {
        self.stop_channels().await;
        let owned = self.session.shared.registry.take_owned(self.info.id);
        if !owned.is_empty() {
            let _ = self
                .session
                .shared
                .blocking(move |engine| {
                    for queue in owned {
                        let _ = engine.unbind_queue(&queue);
                        let _ = engine.delete_queue(&queue);
                    }
                })
                .await;
        }
    }

    async fn on_channel_exit(
        &mut self,
        done: Result<(u16, u64, ChannelExit), tokio::task::JoinError>,
    ) -> Result<(), End> {
        let Ok((id, generation, exit)) = done else {
            return Err(End::Close(AmqpError::new(code::INTERNAL_ERROR, "a channel task failed")));
        };
        let current = self.channels.get(&id).is_some_and(|h| h.generation == generation);
        match exit {
            ChannelExit::ClientClosed => {
                if current {
                    self.channels.remove(&id);
                    send(&self.tx, id, &Method::ChannelCloseOk).await;
                }
                Ok(())
            }
            ChannelExit::Dropped => Ok(()),
            ChannelExit::Error(e) if e.is_hard() => Err(End::Close(e)),
            ChannelExit::Error(e) => {
                if current {
                    if let Some(handle) = self.channels.get_mut(&id) {
                        handle.closing = true;
                        handle.inbox = None;
                        handle.content = None;
                    }
                    let close = Method::ChannelClose {
                        reply_code: e.code,
                        reply_text: e.text,
                        class_id: e.class_id,
                        method_id: e.method_id,
                    };
                    send(&self.tx, id, &close).await;
                }
                Ok(())
            }
        }
    }

    async fn on_frame(&mut self, frame: codec::Frame) -> Result<(), End> {
        match frame.kind {
            frame_type::HEARTBEAT => {
                if frame.channel != 0 {
                    return Err(End::Close(AmqpError::new(code::FRAME_ERROR, "a heartbeat on a channel other than 0")));
                }
                Ok(())
            }
            frame_type::METHOD => {
                let method = Method::decode(&frame.payload).map_err(|e| End::Close(method_error(e)))?;
                if frame.channel == 0 {
                    return self.on_connection_method(method).await;
                }
                self.on_channel_method(frame.channel, method).await
            }
            frame_type::HEADER => self.on_header(frame.channel, &frame.payload).await,
            _ => self.on_body(frame.channel, frame.payload).await,
        }
    }

    async fn on_connection_method(&mut self, method: Method) -> Result<(), End> {
        match method {
            Method::ConnectionClose { .. } => {
                self.stop_channels().await;
                send(&self.tx, 0, &Method::ConnectionCloseOk).await;
                Err(End::Gone)
            }
            Method::ConnectionCloseOk if self.closing => Err(End::Gone),
            // A client may tell the server it is blocked; nothing to do.
            Method::ConnectionBlocked { .. } | Method::ConnectionUnblocked => Ok(()),
            other => {
                Err(End::Close(AmqpError::new(code::COMMAND_INVALID, "unexpected method on channel 0").on(other.ids())))
            }
        }
    }

    async fn on_channel_method(&mut self, id: u16, method: Method) -> Result<(), End> {
        if let Method::ChannelOpen = method {
            if id > self.channel_max {
                return Err(End::Close(
                    AmqpError::new(
                        code::CHANNEL_ERROR,
                        format!("channel {id} is above channel-max {}", self.channel_max),
                    )
                    .on(method.ids()),
                ));
            }
            if self.channels.contains_key(&id) {
                return Err(End::Close(
                    AmqpError::new(code::CHANNEL_ERROR, format!("second 'channel.open' seen on channel {id}"))
                        .on(method.ids()),
                ));
            }
            self.open_channel(id);
            send(&self.tx, id, &Method::ChannelOpenOk).await;
            return Ok(());
        }
        let Some(handle) = self.channels.get_mut(&id) else {
            return Err(End::Close(
                AmqpError::new(code::CHANNEL_ERROR, format!("expected 'channel.open' on channel {id}"))
                    .on(method.ids()),
            ));
        };
        if handle.closing {
            // Waiting for close-ok: everything else is dropped.
            match method {
                Method::ChannelCloseOk => {
                    self.channels.remove(&id);
                }
                Method::ChannelClose { .. } => {
                    self.channels.remove(&id);
                    send(&self.tx, id, &Method::ChannelCloseOk).await;
                }
                _ => {}
            }
            return Ok(());
        }
        if handle.content.is_some() {
            return Err(End::Close(
                AmqpError::new(code::UNEXPECTED_FRAME, "a method frame while content was expected").on(method.ids()),
            ));
        }
        if method.has_content() {
            if !matches!(method, Method::BasicPublish { .. }) {
                return Err(End::Close(
                    AmqpError::new(code::COMMAND_INVALID, "clients publish, they do not deliver").on(method.ids()),
                ));
            }
            handle.content = Some(PendingContent { method, header: None, body: BytesMut::new() });
            return Ok(());
        }
        let is_close = matches!(method, Method::ChannelClose { .. });
        self.forward_to_channel(id, Command::Method(method)).await;
        if is_close {
            // Nothing more goes to the channel; its task answers once its deliveries are back.
            if let Some(handle) = self.channels.get_mut(&id) {
                handle.inbox = None;
            }
        }
        Ok(())
    }

    async fn on_header(&mut self, id: u16, payload: &[u8]) -> Result<(), End> {
        let Some(handle) = self.channels.get_mut(&id) else {
            return Err(End::Close(AmqpError::new(code::CHANNEL_ERROR, format!("content on unopened channel {id}"))));
        };
        if handle.closing {
            return Ok(());
        }
        let Some(pending) = handle.content.as_mut().filter(|p| p.header.is_none()) else {
            return Err(End::Close(AmqpError::new(
                code::UNEXPECTED_FRAME,
                "a content header without a publish before it",
            )));
        };
        let header = ContentHeader::decode(payload).map_err(|e| End::Close(AmqpError::new(code::FRAME_ERROR, e.0)))?;
        if header.class_id != super::methods::class::BASIC {
            return Err(End::Close(AmqpError::new(code::FRAME_ERROR, "a content header of a class other than basic")));
        }
        if header.body_size > MAX_BODY {
            return Err(End::Close(AmqpError::new(
                code::FRAME_ERROR,
                format!("a body of {} bytes; weir takes at most {MAX_BODY}", header.body_size),
            )));
        }
        let complete = header.body_size == 0;
        pending.body.reserve(header.body_size as usize);
        pending.header = Some(header);
        if complete {
            self.complete_content(id).await;
        }
        Ok(())
    }

    async fn on_body(&mut self, id: u16, payload: Bytes) -> Result<(), End> {
        let Some(handle) = self.channels.get_mut(&id) else {
            return Err(End::Close(AmqpError::new(code::CHANNEL_ERROR, format!("content on unopened channel {id}"))));
        };
        if handle.closing {
            return Ok(());
        }
        let Some(pending) = handle.content.as_mut() else {
            return Err(End::Close(AmqpError::new(code::UNEXPECTED_FRAME, "a body frame without a publish before it")));
        };
        let Some(size) = pending.header.as_ref().map(|h| h.body_size) else {
            return Err(End::Close(AmqpError::new(code::UNEXPECTED_FRAME, "a body frame before the content header")));
        };
        if pending.body.len() as u64 + payload.len() as u64 > size {
            return Err(End::Close(AmqpError::new(code::FRAME_ERROR, "more body than the content header announced")));
        }
        pending.body.extend_from_slice(&payload);
        if pending.body.len() as u64 == size {
            self.complete_content(id).await;
        }
        Ok(())
    }

    async fn complete_content(&mut self, id: u16) {
        let Some(pending) = self.channels.get_mut(&id).and_then(|h| h.content.take()) else { return };
        let (Method::BasicPublish { exchange, routing_key, mandatory, immediate }, Some(header)) =
            (pending.method, pending.header)
        else {
            return;
        };
        let publish = channel::Publish {
            exchange,
            routing_key,
            mandatory,
            immediate,
            properties: header.properties,
            body: pending.body.freeze(),
        };
        self.forward_to_channel(id, Command::Publish(Box::new(publish))).await;
    }

    async fn forward_to_channel(&mut self, id: u16, command: Command) {
        let Some(inbox) = self.channels.get(&id).and_then(|h| h.inbox.clone()) else { return };
        // A channel that ended meanwhile reports it through its task's exit.
        let _ = inbox.send(command).await;
    }

    fn open_channel(&mut self, id: u16) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let (inbox, commands) = mpsc::channel(INBOX_DEPTH);
        let outbox = Outbox { tx: self.tx.clone(), frame_max: self.info.frame_max };
        let context = channel::ChannelContext {
            id,
            shared: std::sync::Arc::clone(&self.session.shared),
            connection: std::sync::Arc::clone(&self.info),
            outbox,
        };
        self.tasks.spawn(async move { (id, generation, channel::run(context, commands).await) });
        self.channels.insert(id, ChannelHandle { generation, inbox: Some(inbox), content: None, closing: false });
    }
}

fn method_error(e: super::methods::MethodError) -> AmqpError {
    use super::methods::MethodError;
    match e {
        MethodError::UnknownClass(c, m) => {
            AmqpError::new(code::NOT_IMPLEMENTED, format!("unknown class {c}")).on((c, m))
        }
        MethodError::UnknownMethod(c, m) => {
            AmqpError::new(code::NOT_IMPLEMENTED, format!("unknown method {m} of class {c}")).on((c, m))
        }
        MethodError::Syntax(c, m, why) => AmqpError::new(code::SYNTAX_ERROR, why).on((c, m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(credentials("PLAIN", b"\0guest\0secret").unwrap(), ("guest".into(), b"secret".to_vec()));
        assert_eq!(credentials("PLAIN", b"admin\0guest\0a\0b").unwrap(), ("guest".into(), b"a\0b".to_vec()));
        assert!(credentials("PLAIN", b"guest").is_err());
        let mut table = FieldTable::default();
        table.insert("LOGIN", FieldValue::text("u"));
        table.insert("PASSWORD", FieldValue::text("p"));
        let mut w = codec::Writer::new();
        w.table(&table);
        let framed = w.finish();
        assert_eq!(credentials("AMQPLAIN", &framed[4..]).unwrap(), ("u".into(), b"p".to_vec()));
        assert!(credentials("AMQPLAIN", b"\x05junk").is_err());
        assert_eq!(credentials("EXTERNAL", b"").unwrap_err().code, code::ACCESS_REFUSED);
    }
}
