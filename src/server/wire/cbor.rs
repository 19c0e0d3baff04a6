//! CBOR (RFC 8949) for AWS's `application/x-amz-cbor-1.1`, which the Java SDKs send by
//! default: a request body read into the JSON shape every service reads ([`decode`]), and an
//! answer in that shape written as CBOR ([`encode`]).
//!
//! The two shapes differ in blobs and timestamps. A CBOR byte string becomes the base64 text
//! the JSON protocol carries; a timestamp (tag 1) becomes epoch seconds as a JSON number. The
//! Java SDKs write a timestamp as tag 1 over an *integer of milliseconds* (not the RFC's
//! seconds), so an integer under tag 1 is read as milliseconds and a float as seconds, and
//! answers carry tag 1 over integer milliseconds, which is what those SDKs read. On the way
//! out, [`Hints`] name the members that are blobs or timestamps.
//!
//! Decoding is bounded: lengths are checked against the input before anything is allocated,
//! nesting is limited to [`MAX_DEPTH`], and indefinite-length items (which Jackson, the Java
//! SDKs' CBOR writer, uses for maps) are read as well as definite ones.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and maps a request may have.
pub const MAX_DEPTH: usize = 64;

const BREAK: u8 = 0xff;

/// Reads a CBOR document into the JSON protocol's shape (see the module documentation).
pub fn decode(input: &[u8]) -> Result<Value, String> {
    let mut r = Reader { input, at: 0 };
    let value = r.item(0)?;
    if r.at != input.len() {
        return Err(format!("{} bytes after the CBOR item", input.len() - r.at));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.input.get(self.at).ok_or("the CBOR item ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "a CBOR length beyond memory")?;
        if n > self.input.len() - self.at {
            return Err(format!("a CBOR length of {n} bytes runs past the end of the body"));
        }
        let out = &self.input[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    /// The argument of an initial byte (`None`: indefinite length).
    fn argument(&mut self, info: u8) -> Result<Option<u64>, String> {
        let fixed = |r: &mut Self, n: u64| -> Result<u64, String> {
            Ok(r.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        };
        match info {
            0..=23 => Ok(Some(u64::from(info))),
            24 => fixed(self, 1).map(Some),
            25 => fixed(self, 2).map(Some),
            26 => fixed(self, 4).map(Some),
            27 => fixed(self, 8).map(Some),
            31 => Ok(None),
            _ => Err(format!("reserved CBOR additional information {info}")),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("CBOR nested deeper than {MAX_DEPTH}"));
        }
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 => Ok(Value::from(self.argument(info)?.ok_or("an indefinite CBOR integer")?)),
            1 => {
                let n = self.argument(info)?.ok_or("an indefinite CBOR integer")?;
                let n = i64::try_from(n).map_err(|_| "a negative CBOR integer below -2^63")?;
                Ok(Value::from(-1 - n))
            }
            2 => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(self.string(major, info)?))),
            3 => String::from_utf8(self.string(major, info)?)
                .map(Value::String)
                .map_err(|_| "a CBOR text string that is not UTF-8".to_string()),
            4 => {
                let mut items = Vec::new();
                match self.argument(info)? {
                    Some(n) => {
                        // Every item takes a byte at least: a count beyond the input is a lie.
                        if n > (self.input.len() - self.at) as u64 {
                            return Err("a CBOR array longer than the body".into());
                        }
                        for _ in 0..n {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while self.peek_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            5 => {
                let mut map = Map::new();
                match self.argument(info)? {
                    Some(n) => {
                        if n > (self.input.len() - self.at) as u64 {
                            return Err("a CBOR map longer than the body".into());
                        }
                        for _ in 0..n {
                            self.entry(&mut map, depth)?;
                        }
                    }
                    None => {
                        while self.peek_break()? {
                            self.entry(&mut map, depth)?;
                        }
                    }
                }
                Ok(Value::Object(map))
            }
            6 => {
                let tag = self.argument(info)?.ok_or("an indefinite CBOR tag")?;
                let inner = self.item(depth + 1)?;
                if tag != 1 {
                    return Ok(inner);
                }
                // A timestamp: integer milliseconds (the AWS SDKs' convention) or float seconds.
                match &inner {
                    Value::Number(n) if n.is_u64() || n.is_i64() => {
                        let ms = n.as_f64().unwrap_or(0.0);
                        Number::from_f64(ms / 1000.0).map(Value::Number).ok_or_else(|| "a bad timestamp".into())
                    }
                    Value::Number(_) => Ok(inner),
                    _ => Err("a CBOR timestamp (tag 1) that is not a number".into()),
                }
            }
            _ => self.simple(info),
        }
    }

    /// True if another item follows in an indefinite-length container (consumes the break).
    fn peek_break(&mut self) -> Result<bool, String> {
        match self.input.get(self.at) {
            Some(&BREAK) => {
                self.at += 1;
                Ok(false)
            }
            Some(_) => Ok(true),
            None => Err("an indefinite CBOR item without its break".into()),
        }
    }

    fn entry(&mut self, map: &mut Map<String, Value>, depth: usize) -> Result<(), String> {
        let key = match self.item(depth + 1)? {
            Value::String(key) => key,
            _ => return Err("a CBOR map key that is not a text string".into()),
        };
        let value = self.item(depth + 1)?;
        map.insert(key, value);
        Ok(())
    }

    /// The bytes of a byte or text string, definite or in chunks.
    fn string(&mut self, major: u8, info: u8) -> Result<Vec<u8>, String> {
        match self.argument(info)? {
            Some(n) => Ok(self.take(n)?.to_vec()),
            None => {
                let mut out = Vec::new();
                while self.peek_break()? {
                    let chunk = self.byte()?;
                    if chunk >> 5 != major {
                        return Err("a CBOR string chunk of another type".into());
                    }
                    let n = self.argument(chunk & 0x1f)?.ok_or("a nested indefinite CBOR string")?;
                    out.extend_from_slice(self.take(n)?);
                }
                Ok(out)
            }
        }
    }

    fn simple(&mut self, info: u8) -> Result<Value, String> {
        let float = |f: f64| {
            Number::from_f64(f).map(Value::Number).ok_or_else(|| "a CBOR float that is not finite".to_string())
        };
        match info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 | 23 => Ok(Value::Null),
            25 => {
                let bits = u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| "short half float")?);
                float(half_to_f64(bits))
            }
            26 => {
                let bits = u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "short float")?);
                float(f64::from(f32::from_bits(bits)))
            }
            27 => {
                let bits = u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "short double")?);
                float(f64::from_bits(bits))
            }
            31 => Err("a CBOR break outside an indefinite item".into()),
            _ => Err(format!("an unknown CBOR simple value {info}")),
        }
    }
}

fn half_to_f64(bits: u16) -> f64 {
    let exponent = (bits >> 10) & 0x1f;
    let mantissa = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 => {
            if mantissa == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => (mantissa + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Which members of an answer are blobs (base64 text in the JSON shape) and which are
/// timestamps (epoch seconds in the JSON shape), by member name at any depth.
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    /// Blob members.
    pub blobs: &'static [&'static str],
    /// Timestamp members.
    pub timestamps: &'static [&'static str],
}

/// Writes a JSON-shaped answer as CBOR (see the module documentation).
pub fn encode(value: &Value, hints: &Hints) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, value, None, hints);
    out
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn write(out: &mut Vec<u8>, value: &Value, member: Option<&str>, hints: &Hints) {
    let is = |list: &[&str]| member.is_some_and(|m| list.contains(&m));
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) if is(hints.timestamps) => {
            head(out, 6, 1);
            let ms = (n.as_f64().unwrap_or(0.0) * 1000.0).round();
            write_int(out, ms as i64);
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                head(out, 0, u);
            } else if let Some(i) = n.as_i64() {
                write_int(out, i);
            } else {
                out.push(0xfb);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_be_bytes());
            }
        }
        Value::String(s) if is(hints.blobs) => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
            Err(_) => write_text(out, s),
        },
        Value::String(s) => write_text(out, s),
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                write(out, item, member, hints);
            }
        }
        Value::Object(map) => {
            head(out, 5, map.len() as u64);
            for (k, v) in map {
                write_text(out, k);
                write(out, v, Some(k), hints);
            }
        }
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        head(out, 1, (-1 - i) as u64);
    }
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Examples of RFC 8949 appendix A.
    #[test]
    fn decodes_the_rfc_examples() {
        let cases: &[(&str, Value)] = &[
            ("00", json!(0)),
            ("17", json!(23)),
            ("1818", json!(24)),
            ("1903e8", json!(1000)),
            ("1bffffffffffffffff", json!(u64::MAX)),
            ("20", json!(-1)),
            ("3903e7", json!(-1000)),
            ("f90000", json!(0.0)),
            ("f93c00", json!(1.0)),
            ("f97bff", json!(65504.0)),
            ("fa47c35000", json!(100000.0)),
            ("fb3ff199999999999a", json!(1.1)),
            ("f4", json!(false)),
            ("f5", json!(true)),
            ("f6", Value::Null),
            ("6161", json!("a")),
            ("62c3bc", json!("\u{fc}")),
            ("4401020304", json!("AQIDBA==")),
            ("83010203", json!([1, 2, 3])),
            ("a201020304", Value::Null), // integer keys: refused below
            ("a26161016162820203", json!({"a": 1, "b": [2, 3]})),
            ("5f42010243030405ff", json!("AQIDBAU=")),
            ("7f657374726561646d696e67ff", json!("streaming")),
            ("9f018202039f0405ffff", json!([1, [2, 3], [4, 5]])),
            ("bf61610161629f0203ffff", json!({"a": 1, "b": [2, 3]})),
            // Tag 1 over an integer: the SDKs' milliseconds; over a float: seconds.
            ("c11a514b67b0", json!(1_363_896.24)),
            ("c1fb41d452d9ec200000", json!(1_363_896_240.5)),
        ];
        for (input, expected) in cases {
            let got = decode(&hex(input));
            if expected.is_null() && *input != "f6" {
                assert!(got.is_err(), "{input}: {got:?}");
            } else {
                assert_eq!(&got.unwrap(), expected, "{input}");
            }
        }
    }

    #[test]
    fn hostile_input_is_an_error_never_a_panic_or_an_allocation() {
        for input in [
            "",
            "1b",
            "5b7fffffffffffffff",
            "9b7fffffffffffffff",
            "bb7fffffffffffffff",
            "5f",
            "7f6161",
            "ff",
            "1c",
            "f8",
            "62c3",
            "5f6161ff",
            "a1016161",
            "3bffffffffffffffff",
            "c162",
            "0000",
        ] {
            assert!(decode(&hex(input)).is_err(), "{input}");
        }
        let deep = "81".repeat(MAX_DEPTH + 2) + "00";
        assert!(decode(&hex(&deep)).is_err());
        // Every prefix of a valid document fails cleanly.
        let doc = encode(&json!({"Records": [{"Data": "AQID", "PartitionKey": "k"}], "N": -5}), &HINTS);
        for cut in 0..doc.len() {
            assert!(decode(&doc[..cut]).is_err(), "cut at {cut}");
        }
    }

    const HINTS: Hints = Hints { blobs: &["Data"], timestamps: &["At"] };

    #[test]
    fn answers_round_trip_with_blobs_and_timestamps_in_cbor_form() {
        let answer = json!({
            "Records": [{"Data": "aGVsbG8=", "PartitionKey": "k", "At": 1_700_000_000.123}],
            "Count": 3, "Negative": -2, "Ratio": 0.5, "Flag": true, "Nothing": null, "Text": "x".repeat(300),
        });
        let bytes = encode(&answer, &HINTS);
        // The blob is a byte string and the timestamp tag 1 over integer milliseconds.
        let hello = [0x45, b'h', b'e', b'l', b'l', b'o'];
        assert!(bytes.windows(6).any(|w| w == hello));
        assert!(bytes.windows(2).any(|w| w == [0xc1, 0x1b]));
        let back = decode(&bytes).unwrap();
        assert_eq!(back, answer);
    }
}
