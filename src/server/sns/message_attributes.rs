//! The `MessageAttributes` of a publish, checked as SNS checks them (its errors are
//! `ParameterValueInvalid`): data types `String`, `String.Array`, `Number` and `Binary`, each
//! with an optional custom label (`Number.int`); a non-empty value of the type's kind; names of
//! up to 256 characters of `A-Z a-z 0-9 _ - .`, not starting with `AWS.` or `Amazon.`.

use base64::Engine as _;
use bytes::Bytes;

use super::errors::{shorten, Code, SnsError};
use crate::queue::{AttributeValue, Attributes};
use crate::server::wire::Input;

/// Longest attribute name, as SNS.
pub const MAX_NAME_CHARS: usize = 256;

fn invalid(message: String) -> SnsError {
    SnsError::new(Code::InvalidParameterValue, message)
}

/// Reads and checks the `MessageAttributes` of a publish (or a batch entry).
pub fn parse(input: &Input) -> Result<Attributes, SnsError> {
    let mut out = Attributes::new();
    for (name, value) in input.struct_map("MessageAttributes")? {
        check_name(&name)?;
        let data_type = value.str("DataType")?.unwrap_or_default();
        let (base, label) = data_type.split_once('.').unwrap_or((data_type, ""));
        let base = if base == "String" && label == "Array" { "String.Array" } else { base };
        let label_ok = label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !matches!(base, "String" | "String.Array" | "Number" | "Binary") || !label_ok || data_type.len() > 256 {
            return Err(invalid(format!(
                "The message attribute '{}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
                shorten(&name)
            )));
        }
        let empty = || {
            invalid(format!(
                "The message attribute '{}' must contain non-empty message attribute value for message attribute type '{base}'.",
                shorten(&name)
            ))
        };
        let bytes = if base == "Binary" {
            let text = value.str("BinaryValue")?.ok_or_else(empty)?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| {
                invalid(format!("The message attribute '{}' has a BinaryValue that is not base64.", shorten(&name)))
            })?;
            if bytes.is_empty() {
                return Err(empty());
            }
            Bytes::from(bytes)
        } else {
            let text = value.str("StringValue")?.ok_or_else(empty)?;
            if text.is_empty() {
                return Err(empty());
            }
            check_value(&name, base, text)?;
            Bytes::copy_from_slice(text.as_bytes())
        };
        let attribute = AttributeValue::new(data_type, bytes)
            .map_err(|e| invalid(format!("The message attribute '{}': {e}", shorten(&name))))?;
        out.insert(name, attribute);
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), SnsError> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if !ok {
        return Err(invalid(format!(
            "Message attribute name '{}' is invalid: it is 1 to {MAX_NAME_CHARS} characters of A-Z a-z 0-9 _ - ., \
             without leading, trailing or double periods, and does not start with AWS. or Amazon.",
            shorten(name)
        )));
    }
    Ok(())
}

fn check_value(name: &str, base: &str, text: &str) -> Result<(), SnsError> {
    match base {
        "Number" => {
            let number_ok = text.trim().parse::<f64>().is_ok_and(f64::is_finite);
            if !number_ok {
                return Err(invalid(format!("Could not cast message attribute '{}' value to number.", shorten(name))));
            }
        }
        "String.Array" => {
            let items = serde_json::from_str::<serde_json::Value>(text).ok();
            let array_ok = items.as_ref().and_then(|v| v.as_array()).is_some_and(|items| {
                items.iter().all(|i| i.is_string() || i.is_number() || i.is_boolean() || i.is_null())
            });
            if !array_ok {
                return Err(invalid(format!(
                    "The message attribute '{}' with type 'String.Array' has an invalid value: it must be a JSON \
                     array of strings, numbers, true, false or null.",
                    shorten(name)
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::server::wire::Protocol;

    fn input(v: serde_json::Value) -> Input {
        Input { protocol: Protocol::Query, params: json!({ "MessageAttributes": v }).as_object().cloned().unwrap() }
    }

    #[test]
    fn every_sns_type_is_read() {
        let got = parse(&input(json!({
            "s": {"DataType": "String", "StringValue": "x"},
            "n": {"DataType": "Number.int", "StringValue": "42"},
            "a": {"DataType": "String.Array", "StringValue": "[\"a\", 1, true, null]"},
            "b": {"DataType": "Binary", "BinaryValue": "AAH/"},
        })))
        .unwrap();
        assert_eq!(got["n"].data_type(), "Number.int");
        assert_eq!(got["a"].data_type(), "String.Array");
        assert_eq!(got["b"].as_bytes(), &[0, 1, 255]);
    }

    #[test]
    fn what_sns_refuses_is_parameter_value_invalid() {
        for bad in [
            json!({"x": {"DataType": "Float", "StringValue": "1"}}),
            json!({"x": {"DataType": "String"}}),
            json!({"x": {"DataType": "String", "StringValue": ""}}),
            json!({"x": {"DataType": "Number", "StringValue": "ten"}}),
            json!({"x": {"DataType": "String.Array", "StringValue": "[{}]"}}),
            json!({"x": {"DataType": "Binary", "BinaryValue": "!!"}}),
            json!({"AWS.x": {"DataType": "String", "StringValue": "v"}}),
            json!({"a..b": {"DataType": "String", "StringValue": "v"}}),
            json!({"sp ace": {"DataType": "String", "StringValue": "v"}}),
        ] {
            let err = parse(&input(bad.clone())).expect_err(&bad.to_string());
            assert_eq!(err.code, Code::InvalidParameterValue, "{bad}: {}", err.message);
        }
    }
}
