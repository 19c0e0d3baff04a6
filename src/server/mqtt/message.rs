//! An MQTT message in the engine: the payload is the message body; the topic name is the
//! message attribute `mqtt.topic` (a String, so an SNS-style filter policy of a queue's
//! subscription can name it), and the rest (QoS, retain, publisher, v5 properties) the
//! attribute `mqtt.meta` (a `Binary.mqtt`: version byte 1, QoS, retain, publisher's client id
//! as an MQTT string, then the properties as MQTT 5 encodes them). Also the engine names the
//! mapping uses.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::codec::{QoS, Reader, Writer};
use super::properties::Properties;
use crate::queue::store::BrokerMessage;
use crate::queue::{AttributeValue, Attributes};

/// The weir topic (an exchange) every MQTT topic tree lives in.
pub(crate) const EXCHANGE: &str = "mqtt";
/// The attribute holding the MQTT topic name.
pub(crate) const TOPIC_ATTRIBUTE: &str = "mqtt.topic";
const META_ATTRIBUTE: &str = "mqtt.meta";
const META_TYPE: &str = "Binary.mqtt";
const META_VERSION: u8 = 1;
/// The queue of retained messages.
pub(crate) const RETAINED_QUEUE: &str = "mqtt.retained";

/// A short digest naming a client id or share group in queue names (client ids are any UTF-8
/// up to 64 KiB; queue names are printable ASCII).
fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    crate::text::hex(&h.finalize()[..16])
}

/// What a session queue's name starts with (the digest of the client id follows).
pub(crate) const SESSION_PREFIX: &str = "mqtt.session.";
/// What a QoS 2 queue's name starts with.
pub(crate) const QOS2_PREFIX: &str = "mqtt.qos2.";
/// What a released-deliveries queue's name starts with.
pub(crate) const PUBREL_PREFIX: &str = "mqtt.pubrel.";

/// The durable queue of a client's session: its subscriptions are the queue's bindings.
pub(crate) fn session_queue(client_id: &str) -> String {
    format!("{SESSION_PREFIX}{}", digest(&[client_id]))
}

/// The queue of a client's received-but-unreleased QoS 2 packet ids.
pub(crate) fn qos2_queue(client_id: &str) -> String {
    format!("{QOS2_PREFIX}{}", digest(&[client_id]))
}

/// The queue of a client's released QoS 2 deliveries (PUBREC received, PUBCOMP not yet).
pub(crate) fn pubrel_queue(client_id: &str) -> String {
    format!("{PUBREL_PREFIX}{}", digest(&[client_id]))
}

/// The queue a shared subscription's group consumes.
pub(crate) fn shared_queue(group: &str, filter: &str) -> String {
    format!("mqtt.share.{}", digest(&[group, filter]))
}

/// A message as MQTT sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MqttMessage {
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    /// The client id of the publisher ("" when not MQTT).
    pub publisher: String,
    /// MQTT 5 properties to forward.
    pub properties: Properties,
    pub payload: Bytes,
}

impl MqttMessage {
    /// The engine's form.
    pub fn to_broker(&self) -> BrokerMessage {
        let mut w = Writer::default();
        w.u8(META_VERSION);
        w.u8(self.qos as u8);
        w.u8(u8::from(self.retain));
        w.text(&self.publisher);
        self.properties.encode(&mut w);
        let mut attributes = Attributes::new();
        attributes.insert(TOPIC_ATTRIBUTE.to_string(), AttributeValue::String(self.topic.clone()));
        attributes.insert(
            META_ATTRIBUTE.to_string(),
            AttributeValue::Custom { data_type: META_TYPE.to_string(), value: Bytes::from(w.0) },
        );
        BrokerMessage { body: self.payload.clone(), attributes }
    }

    /// The MQTT message of a received engine message: `None` when it carries no MQTT topic
    /// (sent to the queue some other way); a message without `mqtt.meta` is QoS 1, not retained.
    pub fn from_engine(attributes: &Attributes, body: Bytes) -> Option<MqttMessage> {
        let Some(AttributeValue::String(topic)) = attributes.get(TOPIC_ATTRIBUTE) else { return None };
        let mut m = MqttMessage {
            topic: topic.clone(),
            qos: QoS::AtLeastOnce,
            retain: false,
            publisher: String::new(),
            properties: Properties::default(),
            payload: body,
        };
        if let Some(AttributeValue::Custom { data_type, value }) = attributes.get(META_ATTRIBUTE) {
            if data_type == META_TYPE {
                let mut r = Reader::new(value);
                let meta = (|| {
                    if r.u8()? != META_VERSION {
                        return Err(super::codec::DecodeError::malformed("meta version"));
                    }
                    let qos = QoS::from_bits(r.u8()?).unwrap_or(QoS::AtLeastOnce);
                    let retain = r.u8()? == 1;
                    let publisher = r.text()?;
                    let properties = Properties::decode(&mut r)?;
                    Ok((qos, retain, publisher, properties))
                })();
                if let Ok((qos, retain, publisher, properties)) = meta {
                    (m.qos, m.retain, m.publisher, m.properties) = (qos, retain, publisher, properties);
                }
            }
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::mqtt::properties::Value;

    #[test]
    fn a_message_survives_the_engine_form() {
        let mut properties = Properties::default();
        properties.push(0x03, Value::Text("text/plain".into()));
        let m = MqttMessage {
            topic: "a/b".into(),
            qos: QoS::ExactlyOnce,
            retain: true,
            publisher: "dev-1".into(),
            properties,
            payload: Bytes::from_static(b"hi"),
        };
        let b = m.to_broker();
        assert_eq!(MqttMessage::from_engine(&b.attributes, b.body.clone()), Some(m));
        assert_eq!(MqttMessage::from_engine(&Attributes::new(), Bytes::new()), None);
    }

    #[test]
    fn queue_names_are_broker_names_and_distinct() {
        let names =
            [session_queue("a"), qos2_queue("a"), session_queue("b"), shared_queue("a", "b"), shared_queue("ab", "")];
        for n in &names {
            crate::names::validate_broker_name("queue", n).unwrap();
        }
        let set: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
    }
}
