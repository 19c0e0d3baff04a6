//! The JSON envelope a non-raw subscription delivers, shaped like SNS's notification.

use serde_json::{json, Map, Value};

use crate::format::queue_record::PublishRecord;
use crate::queue::attributes::{from_stored, AttributeValue};
use crate::queue::store::format_id;

/// The envelope for `publish` of topic `topic`.
pub fn envelope(topic: &str, publish: &PublishRecord, sequence: Option<u64>) -> Vec<u8> {
    let mut attributes = Map::new();
    for (name, value) in from_stored(&publish.attributes) {
        let (kind, text) = match value {
            AttributeValue::String(s) => ("String", s),
            AttributeValue::Number(n) => ("Number", n),
            AttributeValue::Binary(b) => ("Binary", b.iter().map(|x| format!("{x:02x}")).collect()),
        };
        attributes.insert(name, json!({ "Type": kind, "Value": text }));
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

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for every u64 millisecond count.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
