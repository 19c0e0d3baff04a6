//! Message attributes: name -> typed value, validated as SQS does.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::queue_record::{StoredAttribute, MAX_ATTRIBUTES};

/// A message attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum AttributeValue {
    /// A UTF-8 string.
    String(String),
    /// A number, as decimal text (up to 38 significant digits, magnitude 1e-128 to 1e126).
    Number(String),
    /// Bytes.
    Binary(#[serde(serialize_with = "ser_binary")] Bytes),
}

fn ser_binary<S: serde::Serializer>(b: &Bytes, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::text::hex(b))
}

/// Message attributes by name.
pub type Attributes = BTreeMap<String, AttributeValue>;

impl AttributeValue {
    fn data_type(&self) -> &'static str {
        match self {
            AttributeValue::String(_) => "String",
            AttributeValue::Number(_) => "Number",
            AttributeValue::Binary(_) => "Binary",
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            AttributeValue::String(s) | AttributeValue::Number(s) => s.as_bytes(),
            AttributeValue::Binary(b) => b,
        }
    }
}

/// Bytes attributes count toward a message's size: names, data types and values, as SQS counts.
pub fn size(attributes: &Attributes) -> usize {
    attributes.iter().map(|(name, v)| name.len() + v.data_type().len() + v.bytes().len()).sum()
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
        match value {
            AttributeValue::String(s) if s.is_empty() => {
                return Err(Error::InvalidArgument(format!("attribute {name:?}: a String value may not be empty")))
            }
            AttributeValue::Number(n) => validate_number(name, n)?,
            AttributeValue::Binary(b) if b.is_empty() => {
                return Err(Error::InvalidArgument(format!("attribute {name:?}: a Binary value may not be empty")))
            }
            _ => {}
        }
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
            value: Bytes::copy_from_slice(v.bytes()),
        })
        .collect()
}

/// Converts from the stored form (unknown types read as binary).
pub fn from_stored(stored: &[StoredAttribute]) -> Attributes {
    stored
        .iter()
        .map(|a| {
            let text = || String::from_utf8_lossy(&a.value).into_owned();
            let value = match a.data_type.split('.').next() {
                Some("String") => AttributeValue::String(text()),
                Some("Number") => AttributeValue::Number(text()),
                _ => AttributeValue::Binary(a.value.clone()),
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
}
