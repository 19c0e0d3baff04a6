//! The JSON envelope a non-raw subscription delivers, shaped like SNS's notification.

use serde_json::{json, Map, Value};

use crate::format::queue_record::PublishRecord;
use crate::queue::attributes::from_stored;
use crate::queue::store::format_id;
use crate::text::iso8601;

/// The envelope for `publish` of topic `topic`.
pub fn envelope(topic: &str, publish: &PublishRecord, sequence: Option<u64>) -> Vec<u8> {
    let mut attributes = Map::new();
    for (name, value) in from_stored(&publish.attributes) {
        let text = match value.text() {
            Some(text) => text.to_string(),
            None => crate::text::hex(value.as_bytes()),
        };
        attributes.insert(name, json!({ "Type": value.data_type(), "Value": text }));
    }
    let mut doc = json!({
        "Type": "Notification",
        "MessageId": format_id(&publish.message_id),
        "TopicArn": format!("weir:topic:{topic}"),
        "Message": String::from_utf8_lossy(&publish.body),
        "Timestamp": iso8601(publish.sent_ms),
        "MessageAttributes": Value::Object(attributes),
    });
    if let Value::Object(map) = &mut doc {
        if !publish.subject.is_empty() {
            map.insert("Subject".into(), Value::String(String::from_utf8_lossy(&publish.subject).into_owned()));
        }
        if let Some(seq) = sequence {
            map.insert("SequenceNumber".into(), Value::String(seq.to_string()));
        }
    }
    doc.to_string().into_bytes()
}
