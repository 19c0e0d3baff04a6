//! Message attributes and message system attributes on the wire: reading them from a send
//! (`MessageAttributes`, `MessageSystemAttributes`) with SQS's checks, choosing the ones a
//! receive asked for (`All`, `prefix.*`, names), and their digests.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::errors::{shorten, Code, SqsError};
use super::limits::{MAX_ATTRIBUTE_NAME_LEN, MAX_MESSAGE_ATTRIBUTES};
use super::md5::{attributes_md5, DigestInput, Transport};
use crate::queue::{AttributeValue, Attributes};
use crate::server::wire::Input;

/// One message attribute as sent, its exact data type included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAttribute {
    /// The name.
    pub name: String,
    /// The data type as sent (`Number.int` keeps its suffix).
    pub data_type: String,
    /// The value.
    pub value: AttributeValue,
}

/// The system attribute a send may carry, as SQS.
pub const AWS_TRACE_HEADER: &str = "AWSTraceHeader";

/// Reads the `MessageAttributes` of a send.
pub fn parse(input: &Input, parameter: &str) -> Result<Vec<WireAttribute>, SqsError> {
    let attributes = input.struct_map(parameter)?;
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            format!(
                "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
                attributes.len()
            ),
        ));
    }
    attributes.into_iter().map(|(name, value)| parse_one(&name, &value, false)).collect()
}

/// Reads the `MessageSystemAttributes` of a send: only `AWSTraceHeader`, a String.
pub fn parse_system(input: &Input) -> Result<Vec<WireAttribute>, SqsError> {
    let attrs: Vec<WireAttribute> = input
        .struct_map("MessageSystemAttributes")?
        .into_iter()
        .map(|(name, value)| parse_one(&name, &value, true))
        .collect::<Result<_, _>>()?;
    for a in &attrs {
        if a.name != AWS_TRACE_HEADER {
            return Err(SqsError::new(
                Code::InvalidParameterValue,
                format!("Message system attribute name '{}' is invalid.", shorten(&a.name)),
            ));
        }
        if a.data_type != "String" {
            return Err(SqsError::new(
                Code::InvalidParameterValue,
                format!("Message system attribute '{AWS_TRACE_HEADER}' must be of type String."),
            ));
        }
    }
    Ok(attrs)
}

fn parse_one(name: &str, value: &Input, system: bool) -> Result<WireAttribute, SqsError> {
    let kind = if system { "system" } else { "user" };
    let data_type = value.str("DataType")?.ok_or_else(|| {
        SqsError::new(
            Code::InvalidParameterValue,
            format!("The message attribute '{}' must contain non-empty message attribute type.", shorten(name)),
        )
    })?;
    let base = data_type.split('.').next().unwrap_or_default();
    let custom_ok = data_type.len() <= MAX_ATTRIBUTE_NAME_LEN
        && data_type[base.len()..].chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && (data_type.len() == base.len() || data_type.len() > base.len() + 1);
    if !matches!(base, "String" | "Number" | "Binary") || !custom_ok {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            format!(
                "The type of message ({kind}) attribute '{}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.",
                shorten(name)
            ),
        ));
    }
    if value.get("StringListValues").is_some() || value.get("BinaryListValues").is_some() {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            format!(
                "Message ({kind}) attribute '{}': StringListValues and BinaryListValues are not supported.",
                shorten(name)
            ),
        ));
    }
    let empty = || {
        SqsError::new(
            Code::InvalidParameterValue,
            format!("Message ({kind}) attribute '{}' must contain a non-empty value of type '{base}'.", shorten(name)),
        )
    };
    let value = match base {
        "Binary" => {
            if value.get("StringValue").is_some() {
                return Err(SqsError::new(
                    Code::InvalidParameterValue,
                    format!("Message ({kind}) attribute '{}' of type Binary takes a BinaryValue.", shorten(name)),
                ));
            }
            let text = value.str("BinaryValue")?.ok_or_else(empty)?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| {
                SqsError::new(
                    Code::InvalidParameterValue,
                    format!("Message ({kind}) attribute '{}': BinaryValue is not valid base64.", shorten(name)),
                )
            })?;
            if bytes.is_empty() {
                return Err(empty());
            }
            Bytes::from(bytes)
        }
        _ => {
            if value.get("BinaryValue").is_some() {
                return Err(SqsError::new(
                    Code::InvalidParameterValue,
                    format!("Message ({kind}) attribute '{}' of type {base} takes a StringValue.", shorten(name)),
                ));
            }
            let text = value.str("StringValue")?.ok_or_else(empty)?;
            if text.is_empty() {
                return Err(empty());
            }
            if let Some(c) = text.chars().find(|&c| !allowed_char(c)) {
                return Err(SqsError::new(
                    Code::InvalidParameterValue,
                    format!(
                        "Message ({kind}) attribute '{}' contains the character U+{:04X}, which SQS does not allow.",
                        shorten(name),
                        c as u32
                    ),
                ));
            }
            Bytes::copy_from_slice(text.as_bytes())
        }
    };
    // The engine keeps the exact data type (`Number.int` included) and checks numbers as SQS.
    let value = AttributeValue::new(data_type, value).map_err(|e| {
        SqsError::new(Code::InvalidParameterValue, format!("Message ({kind}) attribute '{}': {e}.", shorten(name)))
    })?;
    Ok(WireAttribute { name: name.to_string(), data_type: data_type.to_string(), value })
}

/// The characters SQS allows in message bodies and string attribute values:
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The engine's form of the attributes (data types exact, custom suffixes included).
pub fn to_engine(attrs: &[WireAttribute]) -> Attributes {
    attrs.iter().map(|a| (a.name.clone(), a.value.clone())).collect()
}

/// The digest of attributes as sent (`None` without any).
pub fn digest(attrs: &[WireAttribute]) -> Option<String> {
    let inputs: Vec<DigestInput<'_>> = attrs
        .iter()
        .map(|a| DigestInput {
            name: &a.name,
            data_type: &a.data_type,
            transport: transport(&a.value),
            value: bytes(&a.value),
        })
        .collect();
    attributes_md5(&inputs)
}

fn transport(v: &AttributeValue) -> Transport {
    match v.base_type() {
        "Binary" => Transport::Binary,
        _ => Transport::String,
    }
}

fn bytes(v: &AttributeValue) -> &[u8] {
    v.as_bytes()
}

fn data_type(v: &AttributeValue) -> &str {
    v.data_type()
}

/// True if `name` is asked for by a receive's `MessageAttributeNames` (`All`, `.*`,
/// `prefix.*` or the name itself).
pub fn wanted(name: &str, asked: &[String]) -> bool {
    asked.iter().any(|a| {
        a == "All"
            || a == ".*"
            || a == name
            || a.strip_suffix(".*").is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
    })
}

/// The `MessageAttributes` and `MD5OfMessageAttributes` of a received message, for the names
/// asked.
pub fn render(attrs: &Attributes, asked: &[String]) -> (Map<String, Value>, Option<String>) {
    let chosen: Vec<(&String, &AttributeValue)> = attrs.iter().filter(|(name, _)| wanted(name, asked)).collect();
    let mut out = Map::new();
    let mut inputs = Vec::with_capacity(chosen.len());
    for (name, value) in &chosen {
        let rendered = match transport(value) {
            Transport::Binary => json!({
                "DataType": data_type(value),
                "BinaryValue": base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
            }),
            Transport::String => {
                json!({"DataType": data_type(value), "StringValue": String::from_utf8_lossy(value.as_bytes())})
            }
        };
        out.insert((*name).clone(), rendered);
        inputs.push(DigestInput {
            name,
            data_type: data_type(value),
            transport: transport(value),
            value: bytes(value),
        });
    }
    (out, attributes_md5(&inputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Protocol;

    fn input(v: Value) -> Input {
        Input { protocol: Protocol::Json, params: v.as_object().unwrap().clone() }
    }

    #[test]
    fn every_data_type_and_custom_suffixes_are_read() {
        let i = input(json!({"MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "v"},
            "n": {"DataType": "Number.int", "StringValue": "42"},
            "b": {"DataType": "Binary.gif", "BinaryValue": "AAEC"},
        }}));
        let attrs = parse(&i, "MessageAttributes").unwrap();
        assert_eq!(attrs.len(), 3);
        let n = attrs.iter().find(|a| a.name == "n").unwrap();
        assert_eq!(n.data_type, "Number.int");
        assert_eq!(n.value.data_type(), "Number.int", "the engine keeps the custom suffix");
        let b = attrs.iter().find(|a| a.name == "b").unwrap();
        assert_eq!(b.value.data_type(), "Binary.gif");
        assert_eq!(b.value.as_bytes(), &[0, 1, 2]);
        // What the engine gives back digests as the sender's attributes did.
        let stored = to_engine(&attrs);
        let asked = vec!["All".to_string()];
        assert_eq!(render(&stored, &asked).1, digest(&attrs));
        assert!(digest(&attrs).is_some());
        assert_eq!(digest(&[]), None);
    }

    #[test]
    fn bad_attributes_get_sqs_errors() {
        for bad in [
            json!({"a": {"DataType": "Text", "StringValue": "v"}}),
            json!({"a": {"DataType": "String.", "StringValue": "v"}}),
            json!({"a": {"StringValue": "v"}}),
            json!({"a": {"DataType": "String"}}),
            json!({"a": {"DataType": "String", "StringValue": ""}}),
            json!({"a": {"DataType": "Binary", "BinaryValue": "!!"}}),
            json!({"a": {"DataType": "Binary", "StringValue": "x"}}),
            json!({"a": {"DataType": "String", "StringValue": "\u{1}"}}),
            json!({"a": {"DataType": "String", "StringListValues": ["x"]}}),
            json!({"a": {"DataType": "Number", "StringValue": "twelve"}}),
            json!({"a": {"DataType": "Number.int", "StringValue": "1e200"}}),
            json!({"a": "not a structure"}),
            serde_json::Value::Object(
                (0..11).map(|i| (format!("a{i}"), json!({"DataType": "String", "StringValue": "v"}))).collect(),
            ),
        ] {
            let err = parse(&input(json!({ "MessageAttributes": bad.clone() })), "MessageAttributes").unwrap_err();
            assert_eq!(err.code, Code::InvalidParameterValue, "{bad}");
        }
        let sys = input(json!({"MessageSystemAttributes": {"Other": {"DataType": "String", "StringValue": "x"}}}));
        assert!(parse_system(&sys).is_err());
        let sys = input(
            json!({"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}}}),
        );
        assert_eq!(parse_system(&sys).unwrap().len(), 1);
    }

    #[test]
    fn receives_choose_attributes_by_name_prefix_or_all() {
        let attrs: Attributes = [
            ("order.id".to_string(), AttributeValue::String("1".into())),
            ("order.total".to_string(), AttributeValue::Number("9.5".into())),
            ("other".to_string(), AttributeValue::Binary(Bytes::from_static(b"x"))),
        ]
        .into_iter()
        .collect();
        let names = |asked: &[&str]| {
            let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
            render(&attrs, &asked).0.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(names(&["All"]).len(), 3);
        assert_eq!(names(&["order.*"]), vec!["order.id", "order.total"]);
        assert_eq!(names(&["other"]), vec!["other"]);
        assert!(names(&[]).is_empty());
        assert_eq!(render(&attrs, &[]).1, None);
        // The digest of what is returned is the digest a sender computed for the same set.
        let sent =
            vec![WireAttribute { name: "other".into(), data_type: "Binary".into(), value: attrs["other"].clone() }];
        assert_eq!(render(&attrs, &["other".to_string()]).1, digest(&sent));
    }
}
