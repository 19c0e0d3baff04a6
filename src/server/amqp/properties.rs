//! The content header frame (spec 4.2.6.1) and the basic class's properties. Pure.

use bytes::Bytes;

use super::codec::{CodecError, FieldTable, Reader, Writer};

/// The properties of a basic message (all optional).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicProperties {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub headers: Option<FieldTable>,
    /// 1: transient, 2: persistent (weir keeps every message durably either way).
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    pub expiration: Option<String>,
    pub message_id: Option<String>,
    pub timestamp: Option<u64>,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub cluster_id: Option<String>,
}

// Property flag bits, highest first, in the order the properties follow.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Another flags word follows (no basic property uses it).
const CONTINUATION: u16 = 1;

impl BasicProperties {
    /// Reads property flags and the properties they announce.
    pub fn decode(r: &mut Reader<'_>) -> Result<BasicProperties, CodecError> {
        let flags = r.u16()?;
        if flags & CONTINUATION != 0 {
            return Err(CodecError("property flags announce a second word, which basic does not have".into()));
        }
        if flags & 0b10 != 0 {
            return Err(CodecError("property flag bit 1 is not a basic property".into()));
        }
        let text = |r: &mut Reader<'_>, on: bool| -> Result<Option<String>, CodecError> {
            if on {
                Ok(Some(String::from_utf8_lossy(r.shortstr_bytes()?).into_owned()))
            } else {
                Ok(None)
            }
        };
        let mut p = BasicProperties {
            content_type: text(r, flags & CONTENT_TYPE != 0)?,
            content_encoding: text(r, flags & CONTENT_ENCODING != 0)?,
            ..Default::default()
        };
        if flags & HEADERS != 0 {
            p.headers = Some(r.table()?);
        }
        if flags & DELIVERY_MODE != 0 {
            p.delivery_mode = Some(r.u8()?);
        }
        if flags & PRIORITY != 0 {
            p.priority = Some(r.u8()?);
        }
        p.correlation_id = text(r, flags & CORRELATION_ID != 0)?;
        p.reply_to = text(r, flags & REPLY_TO != 0)?;
        p.expiration = text(r, flags & EXPIRATION != 0)?;
        p.message_id = text(r, flags & MESSAGE_ID != 0)?;
        if flags & TIMESTAMP != 0 {
            p.timestamp = Some(r.u64()?);
        }
        p.kind = text(r, flags & TYPE != 0)?;
        p.user_id = text(r, flags & USER_ID != 0)?;
        p.app_id = text(r, flags & APP_ID != 0)?;
        p.cluster_id = text(r, flags & CLUSTER_ID != 0)?;
        Ok(p)
    }

    /// Writes property flags and the properties present.
    pub fn encode(&self, w: &mut Writer) {
        let mut flags = 0u16;
        let mut set = |on: bool, bit: u16| {
            if on {
                flags |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        w.u16(flags);
        let text = |w: &mut Writer, v: &Option<String>| {
            if let Some(v) = v {
                w.shortstr(v);
            }
        };
        text(w, &self.content_type);
        text(w, &self.content_encoding);
        if let Some(h) = &self.headers {
            w.table(h);
        }
        if let Some(d) = self.delivery_mode {
            w.u8(d);
        }
        if let Some(p) = self.priority {
            w.u8(p);
        }
        text(w, &self.correlation_id);
        text(w, &self.reply_to);
        text(w, &self.expiration);
        text(w, &self.message_id);
        if let Some(t) = self.timestamp {
            w.u64(t);
        }
        text(w, &self.kind);
        text(w, &self.user_id);
        text(w, &self.app_id);
        text(w, &self.cluster_id);
    }
}

/// A content header frame's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    /// The class of the method that carries the content (60, basic).
    pub class_id: u16,
    /// The body's size in bytes (the body frames that follow add up to it).
    pub body_size: u64,
    /// The properties.
    pub properties: BasicProperties,
}

impl ContentHeader {
    /// Decodes a header frame's payload.
    pub fn decode(payload: &[u8]) -> Result<ContentHeader, CodecError> {
        let mut r = Reader::new(payload);
        let class_id = r.u16()?;
        let _weight = r.u16()?;
        let body_size = r.u64()?;
        let properties = BasicProperties::decode(&mut r)?;
        if r.remaining() != 0 {
            return Err(CodecError(format!("{} bytes after the properties of a content header", r.remaining())));
        }
        Ok(ContentHeader { class_id, body_size, properties })
    }

    /// Encodes a header frame's payload.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u16(self.class_id).u16(0).u64(self.body_size);
        self.properties.encode(&mut w);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::amqp::codec::FieldValue;

    #[test]
    fn properties_round_trip_in_any_combination() {
        let mut headers = FieldTable::default();
        headers.insert("k", FieldValue::text("v"));
        let full = BasicProperties {
            content_type: Some("text/plain".into()),
            content_encoding: Some("utf-8".into()),
            headers: Some(headers),
            delivery_mode: Some(2),
            priority: Some(5),
            correlation_id: Some("c".into()),
            reply_to: Some("amq.rabbitmq.reply-to".into()),
            expiration: Some("60000".into()),
            message_id: Some("m".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("t".into()),
            user_id: Some("guest".into()),
            app_id: Some("a".into()),
            cluster_id: Some("x".into()),
        };
        // Each property alone, and all together.
        let singles: Vec<BasicProperties> = (0..14)
            .map(|i| {
                let mut p = BasicProperties::default();
                match i {
                    0 => p.content_type = full.content_type.clone(),
                    1 => p.content_encoding = full.content_encoding.clone(),
                    2 => p.headers = full.headers.clone(),
                    3 => p.delivery_mode = full.delivery_mode,
                    4 => p.priority = full.priority,
                    5 => p.correlation_id = full.correlation_id.clone(),
                    6 => p.reply_to = full.reply_to.clone(),
                    7 => p.expiration = full.expiration.clone(),
                    8 => p.message_id = full.message_id.clone(),
                    9 => p.timestamp = full.timestamp,
                    10 => p.kind = full.kind.clone(),
                    11 => p.user_id = full.user_id.clone(),
                    12 => p.app_id = full.app_id.clone(),
                    _ => p.cluster_id = full.cluster_id.clone(),
                }
                p
            })
            .collect();
        for p in singles.iter().chain([&full, &BasicProperties::default()]) {
            let header = ContentHeader { class_id: 60, body_size: 12345, properties: p.clone() };
            assert_eq!(ContentHeader::decode(&header.encode()), Ok(header));
        }
    }

    #[test]
    fn a_content_header_is_class_weight_size_flags_properties() {
        let header = ContentHeader {
            class_id: 60,
            body_size: 5,
            properties: BasicProperties { delivery_mode: Some(2), ..Default::default() },
        };
        assert_eq!(&header.encode()[..], &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x00, 2]);
        assert!(ContentHeader::decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x00, 0x01]).is_err(), "continuation");
        assert!(ContentHeader::decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x80, 0x00]).is_err(), "missing type");
        assert!(ContentHeader::decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 9]).is_err(), "trailing byte");
    }
}
