//! The JSON documents SNS delivers: the notification envelope of a non-raw subscription, and
//! the subscription confirmation an HTTP/HTTPS endpoint receives. Their fields are SNS's, in
//! SNS's order.
//!
//! An envelope names things only whoever serves the engine knows: the topic's ARN (region and
//! account) and the URLs that confirm or end a subscription (the endpoint's address). The
//! engine keeps them in an [`EnvelopeContext`], which `weir serve` sets when it starts
//! (`Engine::set_envelope_context`); without a server the defaults are `weir serve`'s
//! (`us-east-1`, account `000000000000`, `http://127.0.0.1:9324`). The engine never speaks
//! HTTP: it only writes these strings into documents.
//!
//! `Signature` is not an RSA signature SNS's certificates verify (weir has no AWS key): it is
//! the base64 SHA-256 of the engine's signing key and SNS's string to sign, so a consumer that
//! checks signatures against AWS's certificate must not do so against weir.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::queue::attributes::AttributeValue;
use crate::text::iso8601;

/// Where the documents a topic delivers say the topic lives and how to reach its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeContext {
    /// The region in ARNs (`us-east-1`).
    pub region: String,
    /// The 12-digit account id in ARNs.
    pub account_id: String,
    /// The base URL of the SNS endpoint, without a trailing slash (`http://127.0.0.1:9324`):
    /// subscription confirmation and unsubscribe URLs point there.
    pub endpoint: String,
}

impl Default for EnvelopeContext {
    fn default() -> Self {
        EnvelopeContext {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            endpoint: "http://127.0.0.1:9324".into(),
        }
    }
}

impl EnvelopeContext {
    /// `arn:aws:sns:REGION:ACCOUNT:TOPIC`.
    pub fn topic_arn(&self, topic: &str) -> String {
        format!("arn:aws:sns:{}:{}:{topic}", self.region, self.account_id)
    }

    /// `arn:aws:sns:REGION:ACCOUNT:TOPIC:SUBSCRIPTION_ID`.
    pub fn subscription_arn(&self, topic: &str, subscription_id: &str) -> String {
        format!("{}:{subscription_id}", self.topic_arn(topic))
    }

    /// The URL that unsubscribes `subscription_arn` when visited.
    pub fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!("{}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}", self.endpoint)
    }

    /// The URL that confirms a subscription of `topic_arn` with `token` when visited.
    pub fn subscribe_url(&self, topic_arn: &str, token: &str) -> String {
        format!("{}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}", self.endpoint)
    }

    /// Where the (notional) signing certificate is.
    pub fn signing_cert_url(&self) -> String {
        format!("{}/SimpleNotificationService-weir.pem", self.endpoint)
    }
}

/// What kind of document an endpoint receives (SNS's `Type`, and the HTTP header
/// `x-amz-sns-message-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A published message.
    Notification,
    /// The handshake that asks an HTTP/HTTPS endpoint to confirm its subscription.
    SubscriptionConfirmation,
}

impl MessageKind {
    /// SNS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Notification => "Notification",
            MessageKind::SubscriptionConfirmation => "SubscriptionConfirmation",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<MessageKind> {
        match s {
            "Notification" => Some(MessageKind::Notification),
            "SubscriptionConfirmation" => Some(MessageKind::SubscriptionConfirmation),
            _ => None,
        }
    }
}

/// A notification, before it is written.
#[derive(Debug)]
pub struct Notification<'a> {
    /// The publish's message id.
    pub message_id: &'a str,
    /// The topic's ARN.
    pub topic_arn: &'a str,
    /// The subject, if the publish had one.
    pub subject: Option<&'a str>,
    /// The message (for the subscription's protocol).
    pub message: &'a str,
    /// When it was published (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// FIFO topics: the publish's sequence number.
    pub sequence: Option<u64>,
    /// The subscription's ARN (for `UnsubscribeURL`).
    pub subscription_arn: &'a str,
    /// Message attributes.
    pub attributes: &'a crate::queue::Attributes,
}

/// A subscription confirmation, before it is written.
#[derive(Debug)]
pub struct Confirmation<'a> {
    /// Its own message id.
    pub message_id: &'a str,
    /// The topic's ARN.
    pub topic_arn: &'a str,
    /// The confirmation token.
    pub token: &'a str,
    /// When it was made (ms since the Unix epoch).
    pub timestamp_ms: u64,
}

/// Signs and writes envelopes with one context and key.
#[derive(Debug)]
pub struct Writer<'a> {
    /// Where things are.
    pub context: &'a EnvelopeContext,
    /// The engine's signing key.
    pub key: &'a [u8; 32],
    /// The topic's `SignatureVersion` (1 or 2).
    pub signature_version: u8,
}

impl Writer<'_> {
    /// The JSON envelope of a notification.
    pub fn notification(&self, n: &Notification<'_>) -> Vec<u8> {
        let timestamp = iso8601(n.timestamp_ms);
        let mut to_sign = vec![("Message", n.message), ("MessageId", n.message_id)];
        if let Some(subject) = n.subject {
            to_sign.push(("Subject", subject));
        }
        to_sign.extend([("Timestamp", timestamp.as_str()), ("TopicArn", n.topic_arn), ("Type", "Notification")]);
        let signature = self.sign(&to_sign);
        let mut doc = Document::default();
        doc.string("Type", "Notification");
        doc.string("MessageId", n.message_id);
        if let Some(seq) = n.sequence {
            doc.string("SequenceNumber", &seq.to_string());
        }
        doc.string("TopicArn", n.topic_arn);
        if let Some(subject) = n.subject {
            doc.string("Subject", subject);
        }
        doc.string("Message", n.message);
        doc.string("Timestamp", &timestamp);
        doc.string("SignatureVersion", &self.signature_version.to_string());
        doc.string("Signature", &signature);
        doc.string("SigningCertURL", &self.context.signing_cert_url());
        doc.string("UnsubscribeURL", &self.context.unsubscribe_url(n.subscription_arn));
        if !n.attributes.is_empty() {
            let mut attributes = serde_json::Map::new();
            for (name, value) in n.attributes {
                attributes.insert(name.clone(), attribute_json(value));
            }
            doc.value("MessageAttributes", &Value::Object(attributes));
        }
        doc.finish()
    }

    /// The JSON document of a subscription confirmation.
    pub fn confirmation(&self, c: &Confirmation<'_>) -> Vec<u8> {
        let timestamp = iso8601(c.timestamp_ms);
        let message = format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            c.topic_arn
        );
        let subscribe_url = self.context.subscribe_url(c.topic_arn, c.token);
        let signature = self.sign(&[
            ("Message", &message),
            ("MessageId", c.message_id),
            ("SubscribeURL", &subscribe_url),
            ("Timestamp", &timestamp),
            ("Token", c.token),
            ("TopicArn", c.topic_arn),
            ("Type", "SubscriptionConfirmation"),
        ]);
        let mut doc = Document::default();
        doc.string("Type", "SubscriptionConfirmation");
        doc.string("MessageId", c.message_id);
        doc.string("Token", c.token);
        doc.string("TopicArn", c.topic_arn);
        doc.string("Message", &message);
        doc.string("SubscribeURL", &subscribe_url);
        doc.string("Timestamp", &timestamp);
        doc.string("SignatureVersion", &self.signature_version.to_string());
        doc.string("Signature", &signature);
        doc.string("SigningCertURL", &self.context.signing_cert_url());
        doc.finish()
    }

    /// SNS's string to sign (`Name\nvalue\n` for each field, in the order given), hashed with
    /// the key: SHA-1 sized for version 1, SHA-256 for version 2 (see the module documentation).
    fn sign(&self, fields: &[(&str, &str)]) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        for (name, value) in fields {
            h.update(name.as_bytes());
            h.update(b"\n");
            h.update(value.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        let len = if self.signature_version == 1 { 20 } else { 32 };
        crate::text::base64(&digest[..len])
    }
}

/// An attribute as SNS writes it in `MessageAttributes`: `{"Type": .., "Value": ..}`, binary
/// values in base64.
fn attribute_json(value: &AttributeValue) -> Value {
    let text = match value.text() {
        Some(text) => text.to_string(),
        None => crate::text::base64(value.as_bytes()),
    };
    let mut map = serde_json::Map::new();
    map.insert("Type".into(), Value::String(value.data_type().to_string()));
    map.insert("Value".into(), Value::String(text));
    Value::Object(map)
}

/// A JSON object written field by field, in the order given, laid out as SNS lays out its
/// documents (`"Name" : value`, one field a line).
#[derive(Default)]
struct Document {
    out: String,
}

impl Document {
    fn string(&mut self, name: &str, value: &str) {
        self.value(name, &Value::String(value.to_string()));
    }

    fn value(&mut self, name: &str, value: &Value) {
        self.out.push_str(if self.out.is_empty() { "{\n  " } else { ",\n  " });
        self.out.push_str(&Value::String(name.to_string()).to_string());
        self.out.push_str(" : ");
        self.out.push_str(&value.to_string());
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push_str(if self.out.is_empty() { "{}" } else { "\n}" });
        self.out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn writer(key: &[u8; 32]) -> Writer<'_> {
        static CONTEXT: std::sync::OnceLock<EnvelopeContext> = std::sync::OnceLock::new();
        Writer { context: CONTEXT.get_or_init(EnvelopeContext::default), key, signature_version: 1 }
    }

    #[test]
    fn a_notification_has_snss_fields_in_snss_order() {
        let mut attributes = crate::queue::Attributes::new();
        attributes.insert("kind".into(), AttributeValue::String("a \"b\"".into()));
        attributes.insert("blob".into(), AttributeValue::Binary(Bytes::from_static(&[0, 1, 255])));
        let ctx = EnvelopeContext::default();
        let topic_arn = ctx.topic_arn("orders");
        let sub_arn = ctx.subscription_arn("orders", "sub-000001");
        let key = [7u8; 32];
        let n = Notification {
            message_id: "m-1",
            topic_arn: &topic_arn,
            subject: Some("hi"),
            message: "line1\nline2",
            timestamp_ms: 1_700_000_000_000,
            sequence: None,
            subscription_arn: &sub_arn,
            attributes: &attributes,
        };
        let bytes = writer(&key).notification(&n);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let names: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix('"')?.split('"').next()).collect();
        assert_eq!(
            names,
            [
                "Type",
                "MessageId",
                "TopicArn",
                "Subject",
                "Message",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
                "UnsubscribeURL",
                "MessageAttributes"
            ]
        );
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["TopicArn"], "arn:aws:sns:us-east-1:000000000000:orders");
        assert_eq!(doc["Message"], "line1\nline2");
        assert_eq!(doc["Timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            doc["UnsubscribeURL"],
            "http://127.0.0.1:9324/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:000000000000:orders:sub-000001"
        );
        assert_eq!(doc["MessageAttributes"]["kind"], serde_json::json!({"Type": "String", "Value": "a \"b\""}));
        assert_eq!(doc["MessageAttributes"]["blob"]["Value"], "AAH/");
        // The signature depends on the signed fields and the key.
        let other_key = [8u8; 32];
        let again: Value = serde_json::from_slice(&writer(&other_key).notification(&n)).unwrap();
        assert_ne!(doc["Signature"], again["Signature"]);
        assert_eq!(doc["Signature"].as_str().unwrap().len(), 28, "20 bytes in base64 for version 1");
    }

    #[test]
    fn a_notification_without_subject_or_attributes_leaves_them_out() {
        let attributes = crate::queue::Attributes::new();
        let key = [0u8; 32];
        let n = Notification {
            message_id: "m",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t.fifo",
            subject: None,
            message: "x",
            timestamp_ms: 0,
            sequence: Some(12),
            subscription_arn: "s",
            attributes: &attributes,
        };
        let doc: Value = serde_json::from_slice(&writer(&key).notification(&n)).unwrap();
        assert!(doc.get("Subject").is_none() && doc.get("MessageAttributes").is_none());
        assert_eq!(doc["SequenceNumber"], "12");
    }

    #[test]
    fn a_confirmation_carries_its_token_and_subscribe_url() {
        let key = [1u8; 32];
        let c = Confirmation {
            message_id: "c-1",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t",
            token: "abc123",
            timestamp_ms: 0,
        };
        let doc: Value = serde_json::from_slice(&writer(&key).confirmation(&c)).unwrap();
        assert_eq!(doc["Type"], "SubscriptionConfirmation");
        assert_eq!(doc["Token"], "abc123");
        assert_eq!(
            doc["SubscribeURL"],
            "http://127.0.0.1:9324/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:000000000000:t&Token=abc123"
        );
        assert!(doc["Message"].as_str().unwrap().starts_with("You have chosen to subscribe to the topic arn:"));
    }
}
