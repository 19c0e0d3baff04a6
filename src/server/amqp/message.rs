//! An AMQP message as the engine keeps it, and back. The body is the message's body; the
//! exchange and routing key it was published with and its basic properties ride in one
//! message attribute, [`ATTRIBUTE`] (data type `Binary.amqp`), so an AMQP consumer gets them
//! back exactly while an SQS consumer sees a body and one binary attribute. A message sent
//! over SQS has no such attribute: it is delivered as published to the default exchange with
//! its queue's name as routing key, its message attributes as headers, its message id and its
//! send time as properties.

use bytes::Bytes;

use super::codec::{CodecError, FieldTable, FieldValue, Reader, Writer};
use super::properties::BasicProperties;
use crate::queue::attributes::{AttributeValue, Attributes};
use crate::queue::store::BrokerMessage;
use crate::queue::ReceivedMessage;

/// The attribute that carries an AMQP message's routing and properties.
pub const ATTRIBUTE: &str = "amqp";
/// Its data type.
pub const DATA_TYPE: &str = "Binary.amqp";
/// First byte of the attribute's value: its layout version.
const VERSION: u8 = 1;

/// A message as AMQP sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpMessage {
    /// The exchange it was published to (`""`: the default exchange).
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Its properties.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Bytes,
}

impl AmqpMessage {
    /// The engine's form: the body, and the attribute holding the rest.
    pub fn to_broker(&self) -> BrokerMessage {
        let mut w = Writer::new();
        w.u8(VERSION).shortstr(&self.exchange).shortstr(&self.routing_key);
        self.properties.encode(&mut w);
        let mut attributes = Attributes::new();
        attributes.insert(
            ATTRIBUTE.to_string(),
            AttributeValue::Custom { data_type: DATA_TYPE.to_string(), value: w.finish() },
        );
        BrokerMessage { body: self.body.clone(), attributes }
    }

    /// The message a consumer of `queue` gets for `received`.
    pub fn from_received(queue: &str, received: &ReceivedMessage) -> AmqpMessage {
        if let Some(AttributeValue::Custom { data_type, value }) = received.attributes.get(ATTRIBUTE) {
            if data_type == DATA_TYPE {
                if let Ok(m) = decode(value, received.body.clone()) {
                    return m;
                }
            }
        }
        let mut headers = FieldTable::default();
        for (name, value) in &received.attributes {
            let v = match value.text() {
                Some(text) if value.base_type() != "Binary" => FieldValue::text(text),
                _ => FieldValue::Bytes(Bytes::copy_from_slice(value.as_bytes())),
            };
            headers.insert(name, v);
        }
        AmqpMessage {
            exchange: String::new(),
            routing_key: queue.to_string(),
            properties: BasicProperties {
                headers: (!headers.is_empty()).then_some(headers),
                message_id: Some(received.message_id.clone()),
                timestamp: Some(received.sent_ms / 1000),
                ..Default::default()
            },
            body: received.body.clone(),
        }
    }

    /// The headers as the headers exchange compares them: name and hex of the value's
    /// type-tagged bytes.
    pub fn match_headers(&self) -> Vec<(String, String)> {
        self.properties
            .headers
            .iter()
            .flat_map(|t| t.0.iter())
            .map(|(name, value)| (name.clone(), crate::text::hex(&Writer::tagged_value(value))))
            .collect()
    }
}

fn decode(value: &[u8], body: Bytes) -> Result<AmqpMessage, CodecError> {
    let mut r = Reader::new(value);
    if r.u8()? != VERSION {
        return Err(CodecError("unknown layout".into()));
    }
    let exchange = r.shortstr()?;
    let routing_key = r.shortstr()?;
    let properties = BasicProperties::decode(&mut r)?;
    Ok(AmqpMessage { exchange, routing_key, properties, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(body: &str, attributes: Attributes) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "id-1".into(),
            receipt_handle: String::new(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            attributes,
            receive_count: 1,
            sent_ms: 1_700_000_000_123,
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
    fn an_amqp_message_comes_back_as_it_was_published() {
        let mut headers = FieldTable::default();
        headers.insert("n", FieldValue::I32(7));
        let m = AmqpMessage {
            exchange: "logs".into(),
            routing_key: "kern.crit".into(),
            properties: BasicProperties {
                content_type: Some("text/plain".into()),
                headers: Some(headers),
                delivery_mode: Some(2),
                ..Default::default()
            },
            body: Bytes::new(),
        };
        let stored = m.to_broker();
        crate::queue::attributes::validate(&stored.attributes).expect("an attribute SQS's rules accept");
        let back = AmqpMessage::from_received("q", &received("", stored.attributes));
        assert_eq!(back, m);
        assert_eq!(m.match_headers(), vec![("n".to_string(), "4900000007".to_string())]);
    }

    #[test]
    fn an_sqs_message_is_a_default_exchange_message_with_headers() {
        let mut attributes = Attributes::new();
        attributes.insert("color".into(), AttributeValue::String("red".into()));
        attributes.insert("blob".into(), AttributeValue::Binary(Bytes::from_static(&[1, 2])));
        let m = AmqpMessage::from_received("jobs", &received("hello", attributes));
        assert_eq!((m.exchange.as_str(), m.routing_key.as_str(), &m.body[..]), ("", "jobs", &b"hello"[..]));
        let headers = m.properties.headers.expect("headers");
        assert_eq!(headers.get("color"), Some(&FieldValue::text("red")));
        assert_eq!(headers.get("blob"), Some(&FieldValue::Bytes(Bytes::from_static(&[1, 2]))));
        assert_eq!(m.properties.message_id.as_deref(), Some("id-1"));
        assert_eq!(m.properties.timestamp, Some(1_700_000_000));
    }
}
