//! A STOMP message as the engine keeps it, and back. The body is the message's body; the
//! frame's own headers (`content-type` and any a sender adds) ride in one message attribute,
//! [`ATTRIBUTE`] (data type `Binary.stomp`, a JSON list of name and value pairs), so a STOMP
//! subscriber gets them back exactly while an SQS or AMQP consumer sees the body and one
//! binary attribute. A message sent any other way comes with its text attributes as headers.

use bytes::Bytes;

use super::codec::Frame;
use crate::queue::attributes::{AttributeValue, Attributes};
use crate::queue::store::BrokerMessage;
use crate::queue::ReceivedMessage;

/// The attribute that carries a STOMP message's headers.
pub const ATTRIBUTE: &str = "stomp";
/// Its data type.
pub const DATA_TYPE: &str = "Binary.stomp";

/// Headers of a SEND that say how to deliver it, not what the message is: not kept.
const FRAME_HEADERS: [&str; 4] = ["destination", "transaction", "receipt", "content-length"];
/// Headers the server sets on a MESSAGE: a sender's own are dropped so they cannot pose as them.
pub const SERVER_HEADERS: [&str; 6] =
    ["subscription", "message-id", "ack", "redelivered", "destination", "content-length"];

/// The engine's form of a SEND frame.
pub fn from_send(frame: &Frame) -> BrokerMessage {
    let mut seen: Vec<&str> = Vec::new();
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for (name, value) in &frame.headers {
        // The first of a repeated header is its value.
        if seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        if !FRAME_HEADERS.contains(&name.as_str()) && !SERVER_HEADERS.contains(&name.as_str()) {
            kept.push((name, value));
        }
    }
    let mut attributes = Attributes::new();
    if !kept.is_empty() {
        let json = serde_json::to_vec(&kept).unwrap_or_default();
        attributes.insert(
            ATTRIBUTE.to_string(),
            AttributeValue::Custom { data_type: DATA_TYPE.to_string(), value: Bytes::from(json) },
        );
    }
    BrokerMessage { body: Bytes::copy_from_slice(&frame.body), attributes }
}

/// The headers a subscriber gets for a received message (beside the server's own).
pub fn headers(received: &ReceivedMessage) -> Vec<(String, String)> {
    if let Some(AttributeValue::Custom { data_type, value }) = received.attributes.get(ATTRIBUTE) {
        if data_type == DATA_TYPE {
            if let Ok(pairs) = serde_json::from_slice::<Vec<(String, String)>>(value) {
                return pairs;
            }
        }
    }
    received
        .attributes
        .iter()
        .filter(|(name, value)| value.base_type() != "Binary" && !SERVER_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.clone(), value.text()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::stomp::codec::Command;

    fn received(attributes: Attributes) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "id-1".into(),
            receipt_handle: String::new(),
            body: Bytes::from_static(b"hi"),
            attributes,
            receive_count: 1,
            sent_ms: 0,
            first_receive_ms: 0,
            group: None,
            sequence: None,
            dedup_id: None,
            trace_header: None,
            sender_id: None,
            dead_letter_source: None,
        }
    }

    #[test]
    fn a_stomp_message_keeps_its_own_headers_only() {
        let frame = Frame { body: b"hi".to_vec(), ..Frame::new(Command::Send) }
            .with("destination", "/queue/a")
            .with("receipt", "r1")
            .with("content-type", "text/plain")
            .with("x:odd", "a\nb")
            .with("x:odd", "second")
            .with("message-id", "forged")
            .with("content-length", "2");
        let stored = from_send(&frame);
        crate::queue::attributes::validate(&stored.attributes).expect("an attribute SQS's rules accept");
        assert_eq!(&stored.body[..], b"hi");
        assert_eq!(
            headers(&received(stored.attributes)),
            vec![("content-type".to_string(), "text/plain".to_string()), ("x:odd".to_string(), "a\nb".to_string())]
        );
        assert!(from_send(&Frame::new(Command::Send).with("destination", "/queue/a")).attributes.is_empty());
    }

    #[test]
    fn other_messages_bring_their_text_attributes() {
        let mut attributes = Attributes::new();
        attributes.insert("color".into(), AttributeValue::String("red".into()));
        attributes.insert("blob".into(), AttributeValue::Binary(Bytes::from_static(&[1])));
        assert_eq!(headers(&received(attributes)), vec![("color".to_string(), "red".to_string())]);
    }
}
