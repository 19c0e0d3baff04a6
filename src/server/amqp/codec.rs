//! AMQP 0-9-1 wire format, pure: frames, domain types and field tables (spec section 4.2 and
//! RabbitMQ's field-table types, which every current client uses). No I/O; no panics on any
//! input: every read is bounded by what is there and fails with a [`CodecError`].

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol header a client opens with: `AMQP`, 0, 0, 9, 1.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// Frame header: type, channel, size.
pub const FRAME_HEADER_LEN: usize = 7;
/// Bytes a frame adds to its payload: the header and the end octet.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 1;
/// The smallest frame size a peer may ask for (spec: 4096).
pub const MIN_FRAME_MAX: u32 = 4096;
/// Deepest nesting of tables and arrays read (hostile input must not exhaust the stack).
pub const MAX_NESTING: usize = 32;

/// Frame types.
pub mod frame_type {
    /// A method.
    pub const METHOD: u8 = 1;
    /// A content header.
    pub const HEADER: u8 = 2;
    /// A piece of content body.
    pub const BODY: u8 = 3;
    /// A heartbeat (channel 0, empty).
    pub const HEARTBEAT: u8 = 8;
}

/// Why bytes are not valid AMQP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// One of [`frame_type`].
    pub kind: u8,
    /// The channel (0: the connection).
    pub channel: u16,
    /// The payload.
    pub payload: Bytes,
}

/// What [`decode_frame`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame, and how many bytes it took.
    Frame(Frame, usize),
    /// Not enough bytes yet.
    Incomplete,
}

/// Decodes the frame at the front of `buf`. A frame larger than `frame_max` (the negotiated
/// maximum, header and end included) or without its end octet is an error (a connection
/// exception, 501 `FRAME_ERROR`).
pub fn decode_frame(buf: &[u8], frame_max: u32) -> Result<Decoded, CodecError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(Decoded::Incomplete);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
    let total = u64::from(size) + FRAME_OVERHEAD as u64;
    if frame_max != 0 && total > u64::from(frame_max) {
        return err(format!("a frame of {total} bytes is larger than the negotiated frame-max {frame_max}"));
    }
    let total = usize::try_from(total).map_err(|_| CodecError("frame size overflows".into()))?;
    if buf.len() < total {
        return Ok(Decoded::Incomplete);
    }
    if buf[total - 1] != FRAME_END {
        return err(format!("frame does not end with 0xCE but with {:#04x}", buf[total - 1]));
    }
    if !matches!(kind, frame_type::METHOD | frame_type::HEADER | frame_type::BODY | frame_type::HEARTBEAT) {
        return err(format!("unknown frame type {kind}"));
    }
    let payload = Bytes::copy_from_slice(&buf[FRAME_HEADER_LEN..total - 1]);
    Ok(Decoded::Frame(Frame { kind, channel, payload }, total))
}

/// Appends a frame to `out`.
pub fn encode_frame(out: &mut BytesMut, kind: u8, channel: u16, payload: &[u8]) {
    out.reserve(payload.len() + FRAME_OVERHEAD);
    out.put_u8(kind);
    out.put_u16(channel);
    // Payloads are bounded by the negotiated frame-max, a u32.
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(payload);
    out.put_u8(FRAME_END);
}

/// A heartbeat frame.
pub fn heartbeat() -> [u8; 8] {
    [frame_type::HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]
}

/// A value in a field table or array (RabbitMQ's types, which the spec's errata adopted).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s`
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`
    I64(i64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`: scale, unscaled value.
    Decimal(u8, i32),
    /// `S`: a long string (bytes; usually UTF-8).
    LongStr(Bytes),
    /// `x`: a byte array.
    Bytes(Bytes),
    /// `A`
    Array(Vec<FieldValue>),
    /// `T`: seconds since the epoch.
    Timestamp(u64),
    /// `F`
    Table(FieldTable),
    /// `V`
    Void,
}

impl FieldValue {
    /// An integer value of any integer type, as i64 (RabbitMQ accepts any for `x-` arguments).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// A string value as text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A long string from text.
    pub fn text(s: &str) -> FieldValue {
        FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// A field table: names and values in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(pub Vec<(String, FieldValue)>);

impl FieldTable {
    /// The value of `name`, if present (the last one, should a peer repeat it).
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Adds an entry.
    pub fn insert(&mut self, name: &str, value: FieldValue) {
        self.0.push((name.to_string(), value));
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads domain types from a payload, each bounded by what is left.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Bits left of the octet the last `bit` read came from.
    bits: Option<(u8, u8)>,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, bits: None }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.bits = None;
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return err(format!("truncated: {n} bytes wanted at offset {}, {} left", self.pos, self.remaining()));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// An octet.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    /// A short (u16).
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A long (u32).
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A long long (u64).
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A bit: consecutive bits share octets, lowest bit first.
    pub fn bit(&mut self) -> Result<bool, CodecError> {
        let (octet, index) = match self.bits {
            Some((octet, index)) if index < 8 => (octet, index),
            _ => (self.u8()?, 0),
        };
        self.bits = Some((octet, index + 1));
        Ok(octet & (1 << index) != 0)
    }

    /// A short string (u8 length), as bytes.
    pub fn shortstr_bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = usize::from(self.u8()?);
        self.take(len)
    }

    /// A short string as text (UTF-8, as names are).
    pub fn shortstr(&mut self) -> Result<String, CodecError> {
        let b = self.shortstr_bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError("a short string is not UTF-8".into()))
    }

    /// A long string (u32 length).
    pub fn longstr(&mut self) -> Result<Bytes, CodecError> {
        let len = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    /// A field table.
    pub fn table(&mut self) -> Result<FieldTable, CodecError> {
        self.table_at(0)
    }

    fn table_at(&mut self, depth: usize) -> Result<FieldTable, CodecError> {
        if depth > MAX_NESTING {
            return err("field tables nested too deeply");
        }
        let len = self.u32()? as usize;
        let mut inner = Reader::new(self.take(len)?);
        let mut entries = Vec::new();
        while inner.remaining() > 0 {
            let name = inner.shortstr()?;
            let value = inner.value(depth + 1)?;
            entries.push((name, value));
        }
        Ok(FieldTable(entries))
    }

    fn value(&mut self, depth: usize) -> Result<FieldValue, CodecError> {
        if depth > MAX_NESTING {
            return err("field values nested too deeply");
        }
        let tag = self.u8()?;
        Ok(match tag {
            b't' => FieldValue::Bool(self.u8()? != 0),
            b'b' => FieldValue::I8(self.u8()? as i8),
            b'B' => FieldValue::U8(self.u8()?),
            b's' => FieldValue::I16(self.u16()? as i16),
            b'u' => FieldValue::U16(self.u16()?),
            b'I' => FieldValue::I32(self.u32()? as i32),
            b'i' => FieldValue::U32(self.u32()?),
            b'l' => FieldValue::I64(self.u64()? as i64),
            b'f' => FieldValue::F32(f32::from_bits(self.u32()?)),
            b'd' => FieldValue::F64(f64::from_bits(self.u64()?)),
            b'D' => {
                let scale = self.u8()?;
                FieldValue::Decimal(scale, self.u32()? as i32)
            }
            b'S' => FieldValue::LongStr(self.longstr()?),
            b'x' => FieldValue::Bytes(self.longstr()?),
            b'A' => {
                let len = self.u32()? as usize;
                let mut inner = Reader::new(self.take(len)?);
                let mut items = Vec::new();
                while inner.remaining() > 0 {
                    items.push(inner.value(depth + 1)?);
                }
                FieldValue::Array(items)
            }
            b'T' => FieldValue::Timestamp(self.u64()?),
            b'F' => FieldValue::Table(self.table_at(depth + 1)?),
            b'V' => FieldValue::Void,
            other => return err(format!("unknown field value type {:?}", other as char)),
        })
    }
}

/// Writes domain types into a payload.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
    /// Position and next index of the octet bits are being packed into.
    bits: Option<(usize, u8)>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// The bytes written.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// An octet.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bits = None;
        self.buf.put_u8(v);
        self
    }

    /// A short.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bits = None;
        self.buf.put_u16(v);
        self
    }

    /// A long.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bits = None;
        self.buf.put_u32(v);
        self
    }

    /// A long long.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bits = None;
        self.buf.put_u64(v);
        self
    }

    /// A bit, packed with the bits right before it.
    pub fn bit(&mut self, v: bool) -> &mut Self {
        let (at, index) = match self.bits {
            Some((at, index)) if index < 8 => (at, index),
            _ => {
                self.buf.put_u8(0);
                (self.buf.len() - 1, 0)
            }
        };
        if v {
            self.buf[at] |= 1 << index;
        }
        self.bits = Some((at, index + 1));
        self
    }

    /// A short string; longer than 255 bytes is cut at a character boundary (callers pass
    /// names they checked; this keeps the frame valid whatever they pass).
    pub fn shortstr(&mut self, s: &str) -> &mut Self {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.shortstr_bytes(&s.as_bytes()[..end])
    }

    /// A short string of bytes (at most 255 taken).
    pub fn shortstr_bytes(&mut self, b: &[u8]) -> &mut Self {
        let b = &b[..b.len().min(255)];
        self.u8(b.len() as u8);
        self.buf.put_slice(b);
        self
    }

    /// A long string.
    pub fn longstr(&mut self, b: &[u8]) -> &mut Self {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.buf.put_slice(b);
        self
    }

    /// A field table.
    pub fn table(&mut self, t: &FieldTable) -> &mut Self {
        let mut inner = Writer::new();
        for (name, value) in &t.0 {
            inner.shortstr(name);
            inner.value(value);
        }
        let inner = inner.finish();
        self.longstr(&inner)
    }

    fn value(&mut self, v: &FieldValue) -> &mut Self {
        match v {
            FieldValue::Bool(b) => self.u8(b't').u8(u8::from(*b)),
            FieldValue::I8(n) => self.u8(b'b').u8(*n as u8),
            FieldValue::U8(n) => self.u8(b'B').u8(*n),
            FieldValue::I16(n) => self.u8(b's').u16(*n as u16),
            FieldValue::U16(n) => self.u8(b'u').u16(*n),
            FieldValue::I32(n) => self.u8(b'I').u32(*n as u32),
            FieldValue::U32(n) => self.u8(b'i').u32(*n),
            FieldValue::I64(n) => self.u8(b'l').u64(*n as u64),
            FieldValue::F32(f) => self.u8(b'f').u32(f.to_bits()),
            FieldValue::F64(f) => self.u8(b'd').u64(f.to_bits()),
            FieldValue::Decimal(scale, n) => self.u8(b'D').u8(*scale).u32(*n as u32),
            FieldValue::LongStr(s) => self.u8(b'S').longstr(s),
            FieldValue::Bytes(s) => self.u8(b'x').longstr(s),
            FieldValue::Array(items) => {
                let mut inner = Writer::new();
                for item in items {
                    inner.value(item);
                }
                let inner = inner.finish();
                self.u8(b'A').longstr(&inner)
            }
            FieldValue::Timestamp(t) => self.u8(b'T').u64(*t),
            FieldValue::Table(t) => self.u8(b'F').table(t),
            FieldValue::Void => self.u8(b'V'),
        }
    }

    /// One field value with its type tag (how the headers exchange compares values: type and
    /// value, as RabbitMQ does).
    pub fn tagged_value(v: &FieldValue) -> Bytes {
        let mut w = Writer::new();
        w.value(v);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_type_channel_size_payload_and_the_end_octet() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, frame_type::METHOD, 5, b"abc");
        assert_eq!(&out[..], &[1, 0, 5, 0, 0, 0, 3, b'a', b'b', b'c', 0xCE]);
        match decode_frame(&out, 0).unwrap() {
            Decoded::Frame(f, used) => {
                assert_eq!((f.kind, f.channel, &f.payload[..], used), (1, 5, &b"abc"[..], 11));
            }
            other => panic!("{other:?}"),
        }
        for cut in 0..out.len() {
            assert_eq!(decode_frame(&out[..cut], 0).unwrap(), Decoded::Incomplete, "cut at {cut}");
        }
        let mut bad_end = out.to_vec();
        *bad_end.last_mut().unwrap() = 0;
        assert!(decode_frame(&bad_end, 0).is_err(), "a frame without 0xCE is a frame error");
        assert!(decode_frame(&out, 10).is_err(), "11 bytes over a frame-max of 10");
        assert!(decode_frame(&[9, 0, 0, 0, 0, 0, 0, 0xCE], 0).is_err(), "unknown type");
        assert_eq!(
            decode_frame(&heartbeat(), 0).unwrap(),
            Decoded::Frame(Frame { kind: frame_type::HEARTBEAT, channel: 0, payload: Bytes::new() }, 8)
        );
        // A size near u32::MAX with no frame-max is incomplete, not an overflow.
        assert_eq!(decode_frame(&[1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], 0).unwrap(), Decoded::Incomplete);
    }

    #[test]
    fn bits_pack_lowest_first_and_reset_after_other_fields() {
        let mut w = Writer::new();
        w.bit(true).bit(false).bit(true).u8(7).bit(true);
        let bytes = w.finish();
        assert_eq!(&bytes[..], &[0b101, 7, 1]);
        let mut r = Reader::new(&bytes);
        assert_eq!((r.bit().unwrap(), r.bit().unwrap(), r.bit().unwrap()), (true, false, true));
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bit().unwrap());
        assert!(r.u8().is_err(), "nothing left");
        let mut nine = Writer::new();
        for i in 0..9 {
            nine.bit(i % 2 == 0);
        }
        assert_eq!(&nine.finish()[..], &[0b0101_0101, 1], "a ninth bit opens a second octet");
    }

    #[test]
    fn every_field_type_round_trips_with_its_tag() {
        let mut nested = FieldTable::default();
        nested.insert("inner", FieldValue::I32(-5));
        let table = FieldTable(vec![
            ("t".into(), FieldValue::Bool(true)),
            ("b".into(), FieldValue::I8(-1)),
            ("B".into(), FieldValue::U8(255)),
            ("s".into(), FieldValue::I16(-300)),
            ("u".into(), FieldValue::U16(60000)),
            ("I".into(), FieldValue::I32(-70000)),
            ("i".into(), FieldValue::U32(4_000_000_000)),
            ("l".into(), FieldValue::I64(-1 << 40)),
            ("f".into(), FieldValue::F32(1.5)),
            ("d".into(), FieldValue::F64(-2.25)),
            ("D".into(), FieldValue::Decimal(2, 12345)),
            ("S".into(), FieldValue::text("héllo")),
            ("x".into(), FieldValue::Bytes(Bytes::from_static(&[0, 1, 2]))),
            ("A".into(), FieldValue::Array(vec![FieldValue::I64(1), FieldValue::text("two")])),
            ("T".into(), FieldValue::Timestamp(1_700_000_000)),
            ("F".into(), FieldValue::Table(nested)),
            ("V".into(), FieldValue::Void),
        ]);
        let mut w = Writer::new();
        w.table(&table);
        let bytes = w.finish();
        let back = Reader::new(&bytes).table().unwrap();
        assert_eq!(back, table);
        // The spec's layout of one entry: name, tag, value.
        let mut one = Writer::new();
        one.table(&FieldTable(vec![("a".into(), FieldValue::I32(1))]));
        assert_eq!(&one.finish()[..], &[0, 0, 0, 7, 1, b'a', b'I', 0, 0, 0, 1]);
        assert_eq!(table.get("u"), Some(&FieldValue::U16(60000)));
        assert_eq!(table.get("u").and_then(FieldValue::as_i64), Some(60000));
    }

    #[test]
    fn hostile_tables_are_errors_not_panics() {
        let cases: [&[u8]; 6] = [
            &[0, 0, 0, 9, 1, b'a', b'S', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
            &[0, 0, 0, 3, 1, b'a', b'?'],
            &[0, 0, 0, 2, 5, b'a'],
            &[0xFF, 0xFF, 0xFF, 0xFF],
            &[0, 0, 0, 3, 1, b'a', b'I'],
            &[0, 0, 0, 4, 1, 0xFF, b'V', 0],
        ];
        for case in cases {
            assert!(Reader::new(case).table().is_err(), "{case:?}");
        }
        // Nesting deeper than the bound.
        let mut value = FieldValue::Void;
        for _ in 0..100 {
            value = FieldValue::Array(vec![value]);
        }
        let mut w = Writer::new();
        w.table(&FieldTable(vec![("deep".into(), value)]));
        assert!(Reader::new(&w.finish()).table().is_err());
    }

    #[test]
    fn short_strings_stay_short() {
        let long = "é".repeat(200);
        let mut w = Writer::new();
        w.shortstr(&long);
        let bytes = w.finish();
        assert_eq!(bytes[0] as usize, bytes.len() - 1);
        assert!(bytes.len() <= 256);
        assert!(Reader::new(&bytes).shortstr().is_ok(), "cut at a character boundary");
    }
}
