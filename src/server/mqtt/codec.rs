//! The MQTT 3.1.1 and 5 codec, pure: bytes to packets and back, no I/O, no panics on any input.
//! A malformed packet is a [`DecodeError`] carrying the reason code the server disconnects with.

use super::properties::{id, Properties};
use super::reason::ReasonCode;

/// The protocol level a connection speaks (CONNECT's protocol level byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5 (level 5).
    V5,
}

/// Why bytes are not a packet: the reason code to disconnect with and a text for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub reason: ReasonCode,
    pub message: String,
}

impl DecodeError {
    pub fn new(reason: ReasonCode, message: impl Into<String>) -> DecodeError {
        DecodeError { reason, message: message.into() }
    }
    pub fn malformed(message: impl Into<String>) -> DecodeError {
        DecodeError::new(ReasonCode::MALFORMED_PACKET, message)
    }
    fn protocol(message: impl Into<String>) -> DecodeError {
        DecodeError::new(ReasonCode::PROTOCOL_ERROR, message)
    }
}

/// A cursor over a packet's bytes; every read checks the length.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::malformed("packet cut short"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    /// A reader over the next `n` bytes, which this one skips.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        Ok(Reader { buf: self.take(n)? })
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A variable byte integer (spec 1.5.5): at most four bytes.
    pub fn var_int(&mut self) -> Result<u32, DecodeError> {
        match decode_var_int(self.buf)? {
            Some((value, used)) => {
                self.buf = &self.buf[used..];
                Ok(value)
            }
            None => Err(DecodeError::malformed("variable byte integer cut short")),
        }
    }
    pub fn binary(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = self.u16()? as usize;
        Ok(self.take(len)?.to_vec())
    }
    /// A UTF-8 string (spec 1.5.4): valid UTF-8 without U+0000.
    pub fn text(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::malformed("string is not UTF-8"))?;
        if s.contains('\0') {
            return Err(DecodeError::malformed("string contains U+0000"));
        }
        Ok(s.to_owned())
    }
}

/// Decodes a variable byte integer at the start of `buf`: `Ok(None)` when more bytes are
/// needed, the value and bytes used otherwise; a fifth byte is malformed.
pub(crate) fn decode_var_int(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::malformed("variable byte integer longer than four bytes"))
}

/// The largest value a variable byte integer holds.
pub(crate) const VAR_INT_MAX: u32 = 268_435_455;

/// A growing packet body.
#[derive(Debug, Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn var_int(&mut self, mut v: u32) {
        debug_assert!(v <= VAR_INT_MAX);
        loop {
            let mut b = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                b |= 0x80;
            }
            self.0.push(b);
            if v == 0 {
                break;
            }
        }
    }
    /// A length-prefixed byte string; the caller keeps it under 64 KiB (a longer one is cut, which
    /// only server-made strings could reach, and they are short).
    pub fn binary(&mut self, b: &[u8]) {
        let len = b.len().min(usize::from(u16::MAX));
        self.u16(len as u16);
        self.0.extend_from_slice(&b[..len]);
    }
    pub fn text(&mut self, s: &str) {
        self.binary(s.as_bytes());
    }
}

/// A message's quality of service (the spec's names).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A will message of CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties,
}

/// CONNECT (spec 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect {
    pub version: Version,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

/// CONNACK (spec 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// PUBLISH (spec 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: String,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    pub properties: Properties,
    pub payload: Vec<u8>,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (spec 3.4 to 3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Ack {
    pub fn new(packet_id: u16, reason: ReasonCode) -> Ack {
        Ack { packet_id, reason, properties: Properties::default() }
    }
}

/// One topic filter of SUBSCRIBE with its options (spec 3.8.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub filter: String,
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0: send retained messages at subscribe, 1: only for a new subscription, 2: never.
    pub retain_handling: u8,
}

/// SUBSCRIBE (spec 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub subscriptions: Vec<Subscription>,
}

/// SUBACK or UNSUBACK (spec 3.9, 3.11): one reason code per filter (UNSUBACK of 3.1.1 has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (spec 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub filters: Vec<String>,
}

/// DISCONNECT or AUTH (spec 3.14, 3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// An MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(SubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Disconnect),
}

/// Reads one packet from the front of `buf`. `Ok(None)`: more bytes are needed. `version` is
/// `None` until CONNECT is read (then only CONNECT is accepted). A packet longer than `max_size`
/// (fixed header included) is refused with `PACKET_TOO_LARGE` as soon as its length is known.
pub(crate) fn decode(
    buf: &[u8],
    version: Option<Version>,
    max_size: usize,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let Some((len, len_bytes)) = decode_var_int(&buf[1..])? else { return Ok(None) };
    let total = 1 + len_bytes + len as usize;
    if total > max_size {
        return Err(DecodeError::new(ReasonCode::PACKET_TOO_LARGE, format!("packet of {total} bytes")));
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[1 + len_bytes..total];
    let kind = first >> 4;
    let flags = first & 0x0F;
    let packet = match version {
        None => {
            if kind != 1 {
                return Err(DecodeError::protocol("the first packet must be CONNECT"));
            }
            check_flags(flags, 0)?;
            Packet::Connect(Box::new(decode_connect(body)?))
        }
        Some(v) => decode_body(kind, flags, body, v)?,
    };
    Ok(Some((packet, total)))
}

fn check_flags(flags: u8, expected: u8) -> Result<(), DecodeError> {
    if flags != expected {
        return Err(DecodeError::malformed(format!("reserved fixed header flags {flags:#06b}")));
    }
    Ok(())
}

fn decode_body(kind: u8, flags: u8, body: &[u8], v: Version) -> Result<Packet, DecodeError> {
    let mut r = Reader::new(body);
    let packet = match kind {
        1 => return Err(DecodeError::protocol("a second CONNECT")),
        2 => {
            check_flags(flags, 0)?;
            let ack_flags = r.u8()?;
            if ack_flags & 0xFE != 0 {
                return Err(DecodeError::malformed("reserved CONNACK flags"));
            }
            let reason = ReasonCode(r.u8()?);
            let properties = if v == Version::V5 { Properties::decode(&mut r)? } else { Properties::default() };
            Packet::ConnAck(ConnAck { session_present: ack_flags & 1 == 1, reason, properties })
        }
        3 => Packet::Publish(decode_publish(flags, &mut r, v)?),
        4..=7 => {
            check_flags(flags, if kind == 6 { 0b0010 } else { 0 })?;
            let ack = decode_ack(&mut r, v)?;
            match kind {
                4 => Packet::PubAck(ack),
                5 => Packet::PubRec(ack),
                6 => Packet::PubRel(ack),
                _ => Packet::PubComp(ack),
            }
        }
        8 => {
            check_flags(flags, 0b0010)?;
            Packet::Subscribe(decode_subscribe(&mut r, v)?)
        }
        9 | 11 => {
            check_flags(flags, 0)?;
            let packet_id = packet_id(&mut r)?;
            let properties = if v == Version::V5 { Properties::decode(&mut r)? } else { Properties::default() };
            let reasons = r.rest().iter().map(|&b| ReasonCode(b)).collect();
            let ack = SubAck { packet_id, properties, reasons };
            if kind == 9 {
                Packet::SubAck(ack)
            } else {
                Packet::UnsubAck(ack)
            }
        }
        10 => {
            check_flags(flags, 0b0010)?;
            let packet_id = packet_id(&mut r)?;
            let properties = if v == Version::V5 { Properties::decode(&mut r)? } else { Properties::default() };
            let mut filters = Vec::new();
            while !r.is_empty() {
                filters.push(r.text()?);
            }
            if filters.is_empty() {
                return Err(DecodeError::protocol("UNSUBSCRIBE without a topic filter"));
            }
            Packet::Unsubscribe(Unsubscribe { packet_id, properties, filters })
        }
        12 | 13 => {
            check_flags(flags, 0)?;
            if kind == 12 {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }
        14 | 15 => {
            check_flags(flags, 0)?;
            if kind == 15 && v == Version::V311 {
                return Err(DecodeError::malformed("AUTH is not a packet of MQTT 3.1.1"));
            }
            let mut d = Disconnect { reason: ReasonCode::SUCCESS, properties: Properties::default() };
            if v == Version::V5 && !r.is_empty() {
                d.reason = ReasonCode(r.u8()?);
                if !r.is_empty() {
                    d.properties = Properties::decode(&mut r)?;
                }
            }
            if kind == 14 {
                Packet::Disconnect(d)
            } else {
                Packet::Auth(d)
            }
        }
        _ => return Err(DecodeError::malformed("reserved packet type 0")),
    };
    if !r.is_empty() {
        return Err(DecodeError::malformed("bytes after the end of the packet"));
    }
    Ok(packet)
}

fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::malformed("packet identifier 0")),
        id => Ok(id),
    }
}

fn decode_ack(r: &mut Reader<'_>, v: Version) -> Result<Ack, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut ack = Ack::new(packet_id, ReasonCode::SUCCESS);
    if v == Version::V5 && !r.is_empty() {
        ack.reason = ReasonCode(r.u8()?);
        if !r.is_empty() {
            ack.properties = Properties::decode(r)?;
        }
    }
    Ok(ack)
}

fn decode_publish(flags: u8, r: &mut Reader<'_>, v: Version) -> Result<Publish, DecodeError> {
    let qos = QoS::from_bits((flags >> 1) & 3).ok_or_else(|| DecodeError::malformed("PUBLISH with QoS 3"))?;
    let dup = flags & 0b1000 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::malformed("DUP set on a QoS 0 PUBLISH"));
    }
    let topic = r.text()?;
    let packet_id = if qos == QoS::AtMostOnce { None } else { Some(packet_id(r)?) };
    let properties = if v == Version::V5 { Properties::decode(r)? } else { Properties::default() };
    let payload = r.rest().to_vec();
    Ok(Publish { dup, qos, retain: flags & 1 != 0, topic, packet_id, properties, payload })
}

fn decode_subscribe(r: &mut Reader<'_>, v: Version) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v == Version::V5 { Properties::decode(r)? } else { Properties::default() };
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = r.text()?;
        let options = r.u8()?;
        let reserved = if v == Version::V5 { 0xC0 } else { 0xFC };
        if options & reserved != 0 {
            return Err(DecodeError::malformed("reserved subscription option bits"));
        }
        let qos = QoS::from_bits(options & 3).ok_or_else(|| DecodeError::malformed("subscription with QoS 3"))?;
        let retain_handling = (options >> 4) & 3;
        if retain_handling == 3 {
            return Err(DecodeError::malformed("retain handling 3"));
        }
        subscriptions.push(Subscription {
            filter,
            qos,
            no_local: options & 0b0100 != 0,
            retain_as_published: options & 0b1000 != 0,
            retain_handling,
        });
    }
    if subscriptions.is_empty() {
        return Err(DecodeError::protocol("SUBSCRIBE without a topic filter"));
    }
    Ok(Subscribe { packet_id, properties, subscriptions })
}

fn decode_connect(body: &[u8]) -> Result<Connect, DecodeError> {
    let mut r = Reader::new(body);
    let name = r.text()?;
    let level = r.u8()?;
    let version = match (name.as_str(), level) {
        ("MQTT", 4) => Version::V311,
        ("MQTT", 5) => Version::V5,
        ("MQTT", _) | ("MQIsdp", _) => {
            return Err(DecodeError::new(
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                format!("protocol level {level} (weir speaks 4 and 5)"),
            ))
        }
        _ => return Err(DecodeError::malformed(format!("protocol name {name:?}"))),
    };
    let flags = r.u8()?;
    if flags & 1 != 0 {
        return Err(DecodeError::malformed("reserved CONNECT flag"));
    }
    let clean_start = flags & 0b10 != 0;
    let will_flag = flags & 0b100 != 0;
    let will_qos_bits = (flags >> 3) & 3;
    let will_retain = flags & 0b10_0000 != 0;
    let password_flag = flags & 0b100_0000 != 0;
    let username_flag = flags & 0b1000_0000 != 0;
    if !will_flag && (will_qos_bits != 0 || will_retain) {
        return Err(DecodeError::malformed("will QoS or retain without a will"));
    }
    let will_qos = QoS::from_bits(will_qos_bits).ok_or_else(|| DecodeError::malformed("will QoS 3"))?;
    if version == Version::V311 && password_flag && !username_flag {
        return Err(DecodeError::malformed("a password without a user name"));
    }
    let keep_alive = r.u16()?;
    let properties = if version == Version::V5 { Properties::decode(&mut r)? } else { Properties::default() };
    let client_id = r.text()?;
    let will = if will_flag {
        let properties = if version == Version::V5 { Properties::decode(&mut r)? } else { Properties::default() };
        let topic = r.text()?;
        let payload = r.binary()?;
        Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if username_flag { Some(r.text()?) } else { None };
    let password = if password_flag { Some(r.binary()?) } else { None };
    if !r.is_empty() {
        return Err(DecodeError::malformed("bytes after the end of CONNECT"));
    }
    Ok(Connect { version, clean_start, keep_alive, properties, client_id, will, username, password })
}

/// Appends a packet in the connection's version. Reason codes and properties are written only
/// for MQTT 5 (3.1.1 has neither, except CONNACK's return code and SUBACK's granted QoS).
pub(crate) fn encode(packet: &Packet, v: Version, out: &mut Vec<u8>) {
    let v5 = v == Version::V5;
    let mut w = Writer::default();
    let first: u8 = match packet {
        Packet::Connect(c) => {
            w.text("MQTT");
            w.u8(if c.version == Version::V5 { 5 } else { 4 });
            let mut flags = 0u8;
            if c.clean_start {
                flags |= 0b10;
            }
            if let Some(will) = &c.will {
                flags |= 0b100 | ((will.qos as u8) << 3);
                if will.retain {
                    flags |= 0b10_0000;
                }
            }
            if c.password.is_some() {
                flags |= 0b100_0000;
            }
            if c.username.is_some() {
                flags |= 0b1000_0000;
            }
            w.u8(flags);
            w.u16(c.keep_alive);
            let cv5 = c.version == Version::V5;
            if cv5 {
                c.properties.encode(&mut w);
            }
            w.text(&c.client_id);
            if let Some(will) = &c.will {
                if cv5 {
                    will.properties.encode(&mut w);
                }
                w.text(&will.topic);
                w.binary(&will.payload);
            }
            if let Some(u) = &c.username {
                w.text(u);
            }
            if let Some(p) = &c.password {
                w.binary(p);
            }
            0x10
        }
        Packet::ConnAck(c) => {
            w.u8(u8::from(c.session_present));
            if v5 {
                w.u8(c.reason.0);
                c.properties.encode(&mut w);
            } else {
                w.u8(c.reason.connack_v3());
            }
            0x20
        }
        Packet::Publish(p) => {
            w.text(&p.topic);
            if let Some(id) = p.packet_id {
                w.u16(id);
            }
            if v5 {
                p.properties.encode(&mut w);
            }
            w.0.extend_from_slice(&p.payload);
            0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            w.u16(a.packet_id);
            if v5 && (a.reason != ReasonCode::SUCCESS || !a.properties.0.is_empty()) {
                w.u8(a.reason.0);
                if !a.properties.0.is_empty() {
                    a.properties.encode(&mut w);
                }
            }
            match packet {
                Packet::PubAck(_) => 0x40,
                Packet::PubRec(_) => 0x50,
                Packet::PubRel(_) => 0x62,
                _ => 0x70,
            }
        }
        Packet::Subscribe(s) => {
            w.u16(s.packet_id);
            if v5 {
                s.properties.encode(&mut w);
            }
            for sub in &s.subscriptions {
                w.text(&sub.filter);
                let mut options = sub.qos as u8;
                if v5 {
                    options |= u8::from(sub.no_local) << 2
                        | u8::from(sub.retain_as_published) << 3
                        | (sub.retain_handling & 3) << 4;
                }
                w.u8(options);
            }
            0x82
        }
        Packet::SubAck(a) | Packet::UnsubAck(a) => {
            w.u16(a.packet_id);
            let unsuback = matches!(packet, Packet::UnsubAck(_));
            if v5 {
                a.properties.encode(&mut w);
            }
            if v5 || !unsuback {
                for r in &a.reasons {
                    // 3.1.1's SUBACK has one failure code, 0x80.
                    w.u8(if !v5 && r.is_failure() { 0x80 } else { r.0 });
                }
            }
            if unsuback {
                0xB0
            } else {
                0x90
            }
        }
        Packet::Unsubscribe(u) => {
            w.u16(u.packet_id);
            if v5 {
                u.properties.encode(&mut w);
            }
            for f in &u.filters {
                w.text(f);
            }
            0xA2
        }
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(d) | Packet::Auth(d) => {
            if v5 && (d.reason != ReasonCode::SUCCESS || !d.properties.0.is_empty()) {
                w.u8(d.reason.0);
                d.properties.encode(&mut w);
            }
            if matches!(packet, Packet::Disconnect(_)) {
                0xE0
            } else {
                0xF0
            }
        }
    };
    out.push(first);
    let mut len = Writer::default();
    len.var_int(w.0.len() as u32);
    out.extend_from_slice(&len.0);
    out.extend_from_slice(&w.0);
}

/// The session expiry interval a CONNECT asks for, in seconds (3.1.1: 0 for a clean session,
/// never for a persistent one).
pub(crate) fn session_expiry(connect: &Connect) -> u32 {
    match connect.version {
        Version::V5 => connect.properties.four(id::SESSION_EXPIRY).unwrap_or(0),
        Version::V311 if connect.clean_start => 0,
        Version::V311 => u32::MAX,
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
