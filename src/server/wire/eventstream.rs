//! The AWS event stream encoding (`application/vnd.amazon.eventstream`), in which
//! SubscribeToShard pushes its events: a sequence of messages, each
//!
//! ```text
//! total length u32 BE | headers length u32 BE | prelude CRC32 u32 BE (of the 8 bytes before)
//! headers | payload | message CRC32 u32 BE (of every byte before it)
//! ```
//!
//! and each header `name length u8 | name | value type u8 | value`, where a string (type 7) or
//! byte array (type 6) value is `length u16 BE | bytes`. Pure: [`encode`] writes a message,
//! [`decode`] reads one (the tests' and clients' side, bounded against its input).

/// Value type of a byte-array header.
const TYPE_BYTES: u8 = 6;
/// Value type of a string header.
const TYPE_STRING: u8 = 7;
const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// Largest message the encoding allows (16 MiB, as the AWS SDKs enforce).
pub const MAX_MESSAGE_LEN: usize = 16 << 20;

/// A header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 7.
    String(String),
    /// Type 6.
    Bytes(Vec<u8>),
    /// Any other type, kept as its type and raw value bytes.
    Other(u8, Vec<u8>),
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// A message with string headers.
    pub fn new(headers: &[(&str, &str)], payload: Vec<u8>) -> Message {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), HeaderValue::String(v.to_string()))).collect();
        Message { headers, payload }
    }

    /// A string header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(k, v)| match v {
            HeaderValue::String(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Writes a message. Header names are cut to 255 bytes and values to 65,535 (the encoding's
/// bounds; the server's headers are short constants).
pub fn encode(message: &Message) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in &message.headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        headers.push(name.len() as u8);
        headers.extend_from_slice(name);
        let (kind, bytes) = match value {
            HeaderValue::String(s) => (TYPE_STRING, s.as_bytes()),
            HeaderValue::Bytes(b) => (TYPE_BYTES, &b[..]),
            HeaderValue::Other(kind, b) => (*kind, &b[..]),
        };
        headers.push(kind);
        if matches!(kind, TYPE_STRING | TYPE_BYTES) {
            let bytes = &bytes[..bytes.len().min(u16::MAX as usize)];
            headers.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            headers.extend_from_slice(bytes);
        } else {
            headers.extend_from_slice(bytes);
        }
    }
    let total = PRELUDE_LEN + headers.len() + message.payload.len() + CRC_LEN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&message.payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Reads the message at the start of `input`: the message and the bytes it took, `Ok(None)`
/// if `input` holds only part of one yet, or why it is not a message.
pub fn decode(input: &[u8]) -> Result<Option<(Message, usize)>, String> {
    if input.len() < PRELUDE_LEN {
        return Ok(None);
    }
    let u32_at = |at: usize| u32::from_be_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
    let total = u32_at(0) as usize;
    let headers_len = u32_at(4) as usize;
    if crc32fast::hash(&input[..8]) != u32_at(8) {
        return Err("prelude CRC mismatch".into());
    }
    if !(PRELUDE_LEN + CRC_LEN..=MAX_MESSAGE_LEN).contains(&total) || headers_len > total - PRELUDE_LEN - CRC_LEN {
        return Err(format!("bad lengths: total {total}, headers {headers_len}"));
    }
    if input.len() < total {
        return Ok(None);
    }
    if crc32fast::hash(&input[..total - CRC_LEN]) != u32_at(total - CRC_LEN) {
        return Err("message CRC mismatch".into());
    }
    let mut headers = Vec::new();
    let block = &input[PRELUDE_LEN..PRELUDE_LEN + headers_len];
    let mut at = 0;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let out = block.get(*at..*at + n).ok_or("a header runs past its block")?;
        *at += n;
        Ok(out)
    };
    while at < block.len() {
        let name_len = take(&mut at, 1)?[0] as usize;
        let name = String::from_utf8(take(&mut at, name_len)?.to_vec()).map_err(|_| "a header name not UTF-8")?;
        let kind = take(&mut at, 1)?[0];
        let fixed = match kind {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            other => return Err(format!("unknown header value type {other}")),
        };
        let value = match fixed {
            Some(n) => HeaderValue::Other(kind, take(&mut at, n)?.to_vec()),
            None => {
                let len = take(&mut at, 2)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let bytes = take(&mut at, len)?.to_vec();
                if kind == TYPE_STRING {
                    HeaderValue::String(String::from_utf8(bytes).map_err(|_| "a string header not UTF-8")?)
                } else {
                    HeaderValue::Bytes(bytes)
                }
            }
        };
        headers.push((name, value));
    }
    let payload = input[PRELUDE_LEN + headers_len..total - CRC_LEN].to_vec();
    Ok(Some((Message { headers, payload }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_message_is_sixteen_bytes_with_its_crcs() {
        let bytes = encode(&Message { headers: Vec::new(), payload: Vec::new() });
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        // CRC32 (IEEE) of eight bytes 00 00 00 10 00 00 00 00.
        assert_eq!(&bytes[8..12], &crc32fast::hash(&[0, 0, 0, 16, 0, 0, 0, 0]).to_be_bytes());
        assert_eq!(decode(&bytes).unwrap().unwrap().0, Message { headers: Vec::new(), payload: Vec::new() });
    }

    #[test]
    fn messages_round_trip_and_headers_are_laid_out_as_the_spec_says() {
        let m = Message::new(
            &[
                (":message-type", "event"),
                (":event-type", "SubscribeToShardEvent"),
                (":content-type", "application/json"),
            ],
            br#"{"Records":[]}"#.to_vec(),
        );
        let bytes = encode(&m);
        // The first header: length 13, ":message-type", type 7, length 5, "event".
        let mut expected = vec![13u8];
        expected.extend_from_slice(b":message-type");
        expected.extend_from_slice(&[7, 0, 5]);
        expected.extend_from_slice(b"event");
        assert_eq!(&bytes[12..12 + expected.len()], &expected[..]);
        let (back, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!((back.clone(), used), (m, bytes.len()));
        assert_eq!(back.header(":event-type"), Some("SubscribeToShardEvent"));
        // Two messages back to back; and every prefix is "not yet".
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert_eq!(decode(&two).unwrap().unwrap().1, bytes.len());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        // A flipped bit anywhere is caught by a CRC (or the lengths).
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(!matches!(decode(&bad), Ok(Some(_))), "flip at {i}");
        }
    }
}
