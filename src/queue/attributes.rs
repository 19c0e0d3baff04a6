//! Message attributes: name -> typed value, validated as SQS does.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::format::queue_record::{StoredAttribute, MAX_ATTRIBUTES};
use bytes::Bytes;

/// A message attribute value.
///
/// Serialized (for the CLI) as `{"type": DATA_TYPE, "value": TEXT}`, binary values in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A UTF-8 string.
    String(String),
    /// A number, as decimal text (up to 38 significant digits, magnitude 1e-128 to 1e126).
    Number(String),
    /// Bytes.
    Binary(Bytes),
    /// A value whose data type has a custom suffix (`Number.int`, `String.json`,
    /// `Binary.gif`), kept exactly: SQS's MD5 of message attributes hashes the full data
    /// type. The value follows the rules of its base type (text for `String` and `Number`).
    Custom {
        /// The full data type: `String`, `Number` or `Binary`, a dot, and the custom label.
        data_type: String,
        /// The value's bytes (UTF-8 text unless the base type is `Binary`).
        value: Bytes,
    },
}

/// Longest attribute data type, custom suffix included, as SQS.
pub const MAX_DATA_TYPE_LEN: usize = 256;

impl serde::Serialize for AttributeValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let value = match self.text() {
            Some(text) => text.to_string(),
            None => crate::text::hex(self.as_bytes()),
        };
        let mut out = s.serialize_struct("AttributeValue", 2)?;
        out.serialize_field("type", self.data_type())?;
        out.serialize_field("value", &value)?;
        out.end()
    }
}

/// Message attributes by name.
pub type Attributes = BTreeMap<String, AttributeValue>;

impl AttributeValue {
    /// A value from its SQS form: a data type (`String`, `Number`, `Binary`, optionally with a
    /// custom suffix such as `Number.int`) and the value's bytes (UTF-8 text unless the type is
    /// binary). Checked as [`validate`] checks a message's attributes.
    pub fn new(data_type: &str, value: Bytes) -> Result<AttributeValue> {
        let text = || {
            String::from_utf8(value.to_vec())
                .map_err(|_| Error::InvalidArgument(format!("a {data_type} attribute value must be UTF-8 text")))
        };
        let parsed = match data_type {
            "String" => AttributeValue::String(text()?),
            "Number" => AttributeValue::Number(text()?),
            "Binary" => AttributeValue::Binary(value),
            _ => AttributeValue::Custom { data_type: data_type.to_string(), value },
        };
        parsed.check("value")?;
        Ok(parsed)
    }

    /// The full data type, custom suffix included.
    pub fn data_type(&self) -> &str {
        match self {
            AttributeValue::String(_) => "String",
            AttributeValue::Number(_) => "Number",
            AttributeValue::Binary(_) => "Binary",
            AttributeValue::Custom { data_type, .. } => data_type,
        }
    }

    /// The base type: `String`, `Number` or `Binary` (what decides how the value is carried).
    pub fn base_type(&self) -> &str {
        let data_type = self.data_type();
        data_type.split_once('.').map_or(data_type, |(base, _)| base)
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AttributeValue::String(s) | AttributeValue::Number(s) => s.as_bytes(),
            AttributeValue::Binary(b) | AttributeValue::Custom { value: b, .. } => b,
        }
    }

    /// The value as text, for `String` and `Number` base types (`None` for binary ones).
    pub fn text(&self) -> Option<&str> {
        match self {
            AttributeValue::String(s) | AttributeValue::Number(s) => Some(s),
            AttributeValue::Binary(_) => None,
            AttributeValue::Custom { value, .. } if self.base_type() != "Binary" => std::str::from_utf8(value).ok(),
            AttributeValue::Custom { .. } => None,
        }
    }

    /// Checks the data type and the value against its base type's rules.
    fn check(&self, name: &str) -> Result<()> {
        let bad = |why: String| Error::InvalidArgument(format!("attribute {:?}: {why}", shorten(name)));
        if let AttributeValue::Custom { data_type, value } = self {
            let (base, label) = data_type.split_once('.').unwrap_or((data_type.as_str(), ""));
            let label_ok = !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !matches!(base, "String" | "Number" | "Binary") || !label_ok || data_type.len() > MAX_DATA_TYPE_LEN {
                return Err(bad(format!(
                    "data type {:?} is not String, Number or Binary with an optional .label of A-Z a-z 0-9 _ - . \
                     ({MAX_DATA_TYPE_LEN} characters in all)",
                    shorten(data_type)
                )));
            }
            if base != "Binary" && std::str::from_utf8(value).is_err() {
                return Err(bad(format!("a {base} value must be UTF-8 text")));
            }
        }
        if self.as_bytes().is_empty() {
            return Err(bad(format!("a {} value may not be empty", self.base_type())));
        }
        if self.base_type() == "Number" {
            validate_number(name, self.text().unwrap_or_default())?;
        }
        Ok(())
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Bytes attributes count toward a message's size: names, data types and values, as SQS counts.
pub fn size(attributes: &Attributes) -> usize {
    attributes.iter().map(|(name, v)| name.len() + v.data_type().len() + v.as_bytes().len()).sum()
}

/// Checks attributes as SQS does and returns their size (names, types and values), which counts
/// toward the message size limit.
pub fn validate(attributes: &Attributes) -> Result<usize> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Error::InvalidArgument(format!(
            "a message has at most {MAX_ATTRIBUTES} attributes, not {}",
            attributes.len()
        )));
    }
    for (name, value) in attributes {
        validate_name(name)?;
        value.check(name)?;
    }
    Ok(size(attributes))
}

fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!("attribute name {:?}: {why}", name.chars().take(64).collect::<String>()))
    };
    if name.is_empty() || name.len() > 256 {
        return Err(bad("must be 1 to 256 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(bad("may contain only A-Z, a-z, 0-9, '_', '-' and '.'"));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(bad("may not start or end with '.' or contain '..'"));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(bad("the prefixes 'AWS.' and 'Amazon.' are reserved"));
    }
    Ok(())
}

/// SQS numbers: up to 38 significant digits, between -1e126 and 1e126 (and at least 1e-128 in
/// magnitude when not zero).
fn validate_number(name: &str, text: &str) -> Result<()> {
    let bad = || {
        Error::InvalidArgument(format!(
            "attribute {name:?}: {text:?} is not a number SQS accepts (up to 38 digits, magnitude 1e-128 to 1e126)"
        ))
    };
    let value: f64 = text.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || text.trim().is_empty() {
        return Err(bad());
    }
    let digits = text.chars().take_while(|c| *c != 'e' && *c != 'E').filter(|c| c.is_ascii_digit()).count();
    let significant = text
        .chars()
        .take_while(|c| *c != 'e' && *c != 'E')
        .filter(|c| c.is_ascii_digit())
        .skip_while(|c| *c == '0')
        .count();
    if digits == 0 || significant > 38 || value.abs() > 1e126 || (value != 0.0 && value.abs() < 1e-128) {
        return Err(bad());
    }
    Ok(())
}

/// Converts to the stored form.
pub fn to_stored(attributes: &Attributes) -> Vec<StoredAttribute> {
    attributes
        .iter()
        .map(|(name, v)| StoredAttribute {
            name: name.clone(),
            data_type: v.data_type().to_string(),
            value: match v {
                AttributeValue::Binary(b) | AttributeValue::Custom { value: b, .. } => b.clone(),
                _ => Bytes::copy_from_slice(v.as_bytes()),
            },
        })
        .collect()
}

/// Converts from the stored form; a data type with a custom suffix comes back exactly.
pub fn from_stored(stored: &[StoredAttribute]) -> Attributes {
    stored
        .iter()
        .map(|a| {
            let text = || String::from_utf8_lossy(&a.value).into_owned();
            let value = match a.data_type.as_str() {
                "String" => AttributeValue::String(text()),
                "Number" => AttributeValue::Number(text()),
                "Binary" => AttributeValue::Binary(a.value.clone()),
                _ => AttributeValue::Custom { data_type: a.data_type.clone(), value: a.value.clone() },
            };
            (a.name.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, v: AttributeValue) -> Attributes {
        [(name.to_string(), v)].into_iter().collect()
    }

    #[test]
    fn out_of_range_attributes_are_rejected() {
        let n = |s: &str| AttributeValue::Number(s.to_string());
        for bad in ["abc", "", "1e200", "NaN", "inf", "123456789012345678901234567890123456789", "1e-200"] {
            assert!(validate(&one("n", n(bad))).is_err(), "{bad} accepted");
        }
        for good in ["0", "-1.5", "1e100", "12345678901234567890123456789012345678"] {
            validate(&one("n", n(good))).expect(good);
        }
        assert!(validate(&one("AWS.x", AttributeValue::String("v".into()))).is_err());
        assert!(validate(&one("a b", AttributeValue::String("v".into()))).is_err());
        assert!(validate(&one("a", AttributeValue::String(String::new()))).is_err());
        let many: Attributes = (0..11).map(|i| (format!("a{i}"), AttributeValue::String("v".into()))).collect();
        assert!(validate(&many).is_err());
    }

    #[test]
    fn custom_data_types_are_checked_by_their_base_type_and_round_trip_exactly() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        for (data_type, value) in
            [("Number.int", "42"), ("String.json", "{}"), ("Binary.gif", "GIF89a"), ("Number.a-b_c.d", "-1.5")]
        {
            let v = AttributeValue::new(data_type, b(value)).expect(data_type);
            assert_eq!(v.data_type(), data_type);
            let attrs = one("a", v.clone());
            validate(&attrs).expect(data_type);
            assert_eq!(from_stored(&to_stored(&attrs)), attrs, "{data_type} round trip");
        }
        assert_eq!(AttributeValue::new("Number", b("7")).expect("plain"), AttributeValue::Number("7".into()));
        assert_eq!(AttributeValue::new("Number.int", b("7")).expect("custom").base_type(), "Number");
        let too_long = format!("String.{}", "x".repeat(MAX_DATA_TYPE_LEN));
        for (data_type, value) in [
            ("Number.int", "seven"),
            ("String.", "x"),
            ("Strings.x", "x"),
            ("Text", "x"),
            ("", "x"),
            ("String.a b", "x"),
            ("Binary.gif", ""),
            (too_long.as_str(), "x"),
        ] {
            assert!(AttributeValue::new(data_type, b(value)).is_err(), "{data_type:?} {value:?} accepted");
        }
        assert!(AttributeValue::new("String.x", Bytes::from_static(&[0xff])).is_err(), "text must be UTF-8");
        AttributeValue::new("Binary.raw", Bytes::from_static(&[0xff])).expect("binary may be anything");
        let json = serde_json::to_value(one("n", AttributeValue::new("Number.int", b("5")).expect("n"))).expect("json");
        assert_eq!(json, serde_json::json!({"n": {"type": "Number.int", "value": "5"}}));
        let json =
            serde_json::to_value(one("g", AttributeValue::new("Binary.gif", b("AB")).expect("g"))).expect("json");
        assert_eq!(json, serde_json::json!({"g": {"type": "Binary.gif", "value": "4142"}}));
    }
}
