//! Text forms of bytes shared by every tool that prints or files records: JSON with UTF-8 text
//! where the bytes are UTF-8 and standard base64 (RFC 4648, padded) where they are not.

use serde::Serialize;

/// A record as JSON: `key` and `data` are strings when the bytes are UTF-8; otherwise
/// `key_base64` / `data_base64` carry them in base64 instead. Lossless either way.
#[derive(Debug, Serialize)]
pub struct RecordJson {
    /// Sequence number.
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    /// Append time, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl RecordJson {
    /// Builds the JSON form of a record.
    pub fn new(seq: u64, key: &[u8], data: &[u8], time_ms: u64) -> RecordJson {
        let (key, key_base64) = text_or_base64(key);
        let (data, data_base64) = text_or_base64(data);
        RecordJson { seq, key, key_base64, data, data_base64, time_ms }
    }
}

/// A message body in JSON: `"body"` when the bytes are UTF-8, else `"body_base64"`. Flatten it
/// into the object that carries it.
#[derive(Debug, Serialize)]
pub struct BodyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

impl BodyJson {
    /// The JSON form of a body.
    pub fn new(bytes: &[u8]) -> BodyJson {
        let (body, body_base64) = text_or_base64(bytes);
        BodyJson { body, body_base64 }
    }
}

/// The bytes as text when they are UTF-8, else as base64.
pub fn text_or_base64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_string()), None),
        Err(_) => (None, Some(base64(bytes))),
    }
}

/// Standard base64 (RFC 4648 alphabet, `=` padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let triple = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(triple >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lower-case hex of `bytes` (message ids, receipt handles, digests): a table lookup, because
/// formatting byte by byte showed at the top of the receive path's profile.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&hex_pair(b));
    }
    ascii_string(out)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_pair(b: u8) -> [u8; 2] {
    [HEX_DIGITS[usize::from(b >> 4)], HEX_DIGITS[usize::from(b & 15)]]
}

/// A `String` of bytes built from ASCII only (hex digits and dashes here).
fn ascii_string(bytes: Vec<u8>) -> String {
    debug_assert!(bytes.is_ascii());
    String::from_utf8(bytes).unwrap_or_default()
}

/// 16 bytes as a UUID-shaped string: lowercase hex in groups of 8-4-4-4-12.
pub fn uuid(id: &[u8; 16]) -> String {
    let mut out = Vec::with_capacity(36);
    for (i, &b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.extend_from_slice(&hex_pair(b));
    }
    ascii_string(out)
}

/// Decodes hex (either case) into `out`, which must be exactly half as long as `text`.
/// Returns false, leaving `out` partly written, if `text` is not that.
pub fn unhex_into(text: &[u8], out: &mut [u8]) -> bool {
    const BAD: u8 = 0xff;
    const VALUES: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    if text.len() != 2 * out.len() {
        return false;
    }
    for (b, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        if hi == BAD || lo == BAD {
            return false;
        }
        *b = hi << 4 | lo;
    }
    true
}

/// Milliseconds since the Unix epoch as UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Days since 1970-01-01 to a civil date, counting in 400-year eras that start on March 1st
    // so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", sod / 3600, sod / 60 % 60, sod % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn hex_is_lower_case_and_two_digits_a_byte() {
        assert_eq!(hex(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
        let mut out = [0u8; 4];
        assert!(unhex_into(b"000fA0ff", &mut out));
        assert_eq!(out, [0, 0x0f, 0xa0, 0xff]);
        assert!(!unhex_into(b"000fa0f", &mut out), "odd length");
        assert!(!unhex_into(b"000fa0fg", &mut out), "not a digit");
        assert!(!unhex_into(b"+00fa0ff", &mut out), "a sign is not a digit");
        assert!(!unhex_into(b"000fa0ff00", &mut out), "too long");
        let id: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(uuid(&id), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
