//! SQS's rules for batch calls: 1 to 10 entries, each with an id of 1-80 characters of
//! `[A-Za-z0-9_-]`, ids distinct; and the `Failed` entries of a batch answer.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::errors::{shorten, Code, SqsError};
use super::limits::{MAX_BATCH_ENTRIES, MAX_BATCH_ENTRY_ID_LEN};
use crate::server::wire::Input;

/// The entries of a batch request, checked as SQS checks them, with their ids (moved out of
/// the request, not copied).
pub fn entries(input: &mut Input) -> Result<Vec<(String, Input)>, SqsError> {
    if input.get("Entries").is_none() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter Entries."));
    }
    let entries = input.take_struct_list("Entries")?;
    if entries.is_empty() {
        return Err(SqsError::new(Code::EmptyBatchRequest, "There should be at least one entry in the request."));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(SqsError::new(
            Code::TooManyEntriesInBatchRequest,
            format!("Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {}.", entries.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry.str("Id")?.unwrap_or_default().to_string();
        let valid = !id.is_empty()
            && id.len() <= MAX_BATCH_ENTRY_ID_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SqsError::new(
                Code::InvalidBatchEntryId,
                format!(
                    "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most {MAX_BATCH_ENTRY_ID_LEN} letters long ({:?}).",
                    shorten(&id)
                ),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(SqsError::new(Code::BatchEntryIdsNotDistinct, format!("Id {} repeated.", shorten(&id))));
        }
        out.push((id, entry));
    }
    Ok(out)
}

/// Reads every entry with `read`; an entry that does not read is a `Failed` entry at once.
pub fn read_entries<T>(
    entries: &[(String, Input)],
    read: impl Fn(&Input) -> Result<T, SqsError>,
) -> (Vec<(String, T)>, Vec<Value>) {
    let mut valid = Vec::with_capacity(entries.len());
    let mut failed = Vec::new();
    for (id, entry) in entries {
        match read(entry) {
            Ok(t) => valid.push((id.clone(), t)),
            Err(e) => failed.push(failed_entry(id, &e)),
        }
    }
    (valid, failed)
}

/// The answer of a batch call: the engine's per-entry `results` (in the order of `valid`)
/// as `Successful` entries rendered by `success`, or `Failed` ones, after those that did not
/// read.
pub fn answer<T, R>(
    valid: &[(String, T)],
    results: Vec<crate::Result<R>>,
    mut failed: Vec<Value>,
    success: impl Fn(&str, &T, R) -> Value,
) -> Map<String, Value> {
    let mut successful = Vec::with_capacity(valid.len());
    for ((id, t), result) in valid.iter().zip(results) {
        match result {
            Ok(r) => successful.push(success(id, t, r)),
            Err(e) => failed.push(failed_entry(id, &super::errors::from_engine(&e))),
        }
    }
    let mut out = Map::new();
    out.insert("Successful".into(), Value::Array(successful));
    out.insert("Failed".into(), Value::Array(failed));
    out
}

/// A `Failed` entry: the entry's id, whose fault it is, the legacy code and the message.
pub fn failed_entry(id: &str, error: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": error.code.sender_fault(),
        "Code": error.code.legacy_code(),
        "Message": error.message,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::server::wire::Protocol;

    fn batch(v: Value) -> Result<Vec<(String, Input)>, SqsError> {
        entries(&mut Input { protocol: Protocol::Json, params: v.as_object().unwrap().clone() })
    }

    #[test]
    fn batch_rules_are_sqs_rules() {
        let code = |v: Value| batch(v).unwrap_err().code;
        assert_eq!(code(json!({})), Code::MissingParameter);
        assert_eq!(code(json!({"Entries": []})), Code::EmptyBatchRequest);
        let eleven: Vec<Value> = (0..11).map(|i| json!({"Id": format!("e{i}")})).collect();
        assert_eq!(code(json!({ "Entries": eleven })), Code::TooManyEntriesInBatchRequest);
        assert_eq!(code(json!({"Entries": [{"Id": "a b"}]})), Code::InvalidBatchEntryId);
        assert_eq!(code(json!({"Entries": [{"Id": "x".repeat(81)}]})), Code::InvalidBatchEntryId);
        assert_eq!(code(json!({"Entries": [{}]})), Code::InvalidBatchEntryId);
        assert_eq!(code(json!({"Entries": [{"Id": "a"}, {"Id": "a"}]})), Code::BatchEntryIdsNotDistinct);
        let ten: Vec<Value> = (0..10).map(|i| json!({"Id": format!("e-{i}_x")})).collect();
        assert_eq!(batch(json!({ "Entries": ten })).unwrap().len(), 10);
    }
}
