//! A topic's attributes beyond its type: display name, access policy, HTTP delivery policy,
//! encryption key, signature version, tracing, and the settings SNS keeps without weir acting
//! on them (archive policy, FIFO throughput scope, delivery-status logging). Stored in the
//! catalog with the topic; checked as SNS checks them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::topic::delivery_policy::TopicDeliveryPolicy;

/// Longest display name, as SNS.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Largest access policy document, as SNS (30 KiB).
pub const MAX_POLICY_BYTES: usize = 30 << 10;
/// Longest KMS key id, alias or ARN.
pub const MAX_KMS_KEY_CHARS: usize = 2048;
/// Longest value of a kept-only attribute (a role ARN, a sample rate, an archive policy).
pub const MAX_KEPT_VALUE_CHARS: usize = 2048;

/// The protocols delivery-status logging can be set for, as SNS names them in attributes.
const FEEDBACK_PROTOCOLS: &[&str] = &["Application", "HTTP", "Lambda", "SQS", "Firehose"];

/// A topic's settable attributes (besides [`super::TopicConfig`]'s FIFO and deduplication).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAttributes {
    /// `DisplayName` (up to 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `Policy`: the access policy, JSON text (kept; access is not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `DeliveryPolicy`: how HTTP/HTTPS deliveries are retried (see
    /// [`super::delivery_policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_policy: Option<String>,
    /// `KmsMasterKeyId` (kept; messages are not encrypted with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<String>,
    /// `SignatureVersion`: 1 or 2 (see the envelope's `Signature`).
    #[serde(default = "signature_version_1", skip_serializing_if = "is_version_1")]
    pub signature_version: u8,
    /// `TracingConfig`: `PassThrough` (default) or `Active` (kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_config: Option<String>,
    /// `ArchivePolicy` of a FIFO topic, JSON text (kept; nothing is archived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_policy: Option<String>,
    /// `FifoThroughputScope` of a FIFO topic: `Topic` or `MessageGroup` (kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo_throughput_scope: Option<String>,
    /// Delivery-status logging (`HTTPSuccessFeedbackRoleArn`, `SQSFailureFeedbackRoleArn`,
    /// `LambdaSuccessFeedbackSampleRate`, ...), by SNS's attribute name (kept; nothing is
    /// logged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delivery_status: BTreeMap<String, String>,
}

fn signature_version_1() -> u8 {
    1
}

fn is_version_1(v: &u8) -> bool {
    *v == 1
}

impl Default for TopicAttributes {
    fn default() -> Self {
        TopicAttributes {
            display_name: None,
            policy: None,
            delivery_policy: None,
            kms_master_key_id: None,
            signature_version: 1,
            tracing_config: None,
            archive_policy: None,
            fifo_throughput_scope: None,
            delivery_status: BTreeMap::new(),
        }
    }
}

/// True if `name` is one of SNS's delivery-status logging attributes:
/// `<Protocol>SuccessFeedbackRoleArn`, `<Protocol>FailureFeedbackRoleArn` or
/// `<Protocol>SuccessFeedbackSampleRate`, for the protocols SNS logs.
pub fn is_delivery_status_attribute(name: &str) -> bool {
    FEEDBACK_PROTOCOLS.iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| {
            matches!(rest, "SuccessFeedbackRoleArn" | "FailureFeedbackRoleArn" | "SuccessFeedbackSampleRate")
        })
    })
}

impl TopicAttributes {
    /// Checks every attribute as SNS would, for a topic that is FIFO or not.
    pub fn validate(&self, fifo: bool) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(why));
        if let Some(name) = &self.display_name {
            if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
                return bad(format!("a display name is at most {MAX_DISPLAY_NAME_CHARS} printable characters"));
            }
        }
        if let Some(policy) = &self.policy {
            check_json_object("Policy", policy, MAX_POLICY_BYTES)?;
        }
        if let Some(policy) = &self.delivery_policy {
            TopicDeliveryPolicy::parse(policy)?;
        }
        if let Some(key) = &self.kms_master_key_id {
            if key.chars().count() > MAX_KMS_KEY_CHARS || key.chars().any(char::is_control) {
                return bad(format!("a KMS key id is at most {MAX_KMS_KEY_CHARS} printable characters"));
            }
        }
        if !matches!(self.signature_version, 1 | 2) {
            return bad(format!("SignatureVersion is 1 or 2, not {}", self.signature_version));
        }
        if let Some(t) = &self.tracing_config {
            if t != "PassThrough" && t != "Active" {
                return bad("TracingConfig is PassThrough or Active".into());
            }
        }
        if let Some(p) = &self.archive_policy {
            if !fifo {
                return bad("ArchivePolicy is for FIFO topics only".into());
            }
            check_json_object("ArchivePolicy", p, MAX_KEPT_VALUE_CHARS)?;
        }
        if let Some(s) = &self.fifo_throughput_scope {
            if !fifo {
                return bad("FifoThroughputScope is for FIFO topics only".into());
            }
            if s != "Topic" && s != "MessageGroup" {
                return bad("FifoThroughputScope is Topic or MessageGroup".into());
            }
        }
        for (name, value) in &self.delivery_status {
            if !is_delivery_status_attribute(name) {
                return bad(format!("{:?} is not a delivery-status logging attribute", shorten(name)));
            }
            if value.chars().count() > MAX_KEPT_VALUE_CHARS || value.chars().any(char::is_control) {
                return bad(format!("{name} is at most {MAX_KEPT_VALUE_CHARS} printable characters"));
            }
            if name.ends_with("SampleRate") && value.parse::<u8>().map_or(true, |n| n > 100) {
                return bad(format!("{name} is a whole number from 0 to 100"));
            }
        }
        Ok(())
    }

    /// The topic's delivery policy, parsed (`None` if it has none).
    pub fn parsed_delivery_policy(&self) -> Option<TopicDeliveryPolicy> {
        self.delivery_policy.as_deref().and_then(|p| TopicDeliveryPolicy::parse(p).ok())
    }
}

fn check_json_object(what: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.len() > max_bytes {
        return Err(Error::InvalidArgument(format!("{what} is at most {max_bytes} bytes")));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(Error::InvalidArgument(format!("{what} must be a JSON object"))),
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_serialize_to_nothing() {
        let a = TopicAttributes::default();
        a.validate(false).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "{}");
        let back: TopicAttributes = serde_json::from_str("{}").unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn attributes_sns_refuses_are_refused() {
        let with = |f: &dyn Fn(&mut TopicAttributes)| {
            let mut a = TopicAttributes::default();
            f(&mut a);
            a
        };
        let bad = [
            with(&|a| a.display_name = Some("x".repeat(101))),
            with(&|a| a.policy = Some("[1]".into())),
            with(&|a| a.delivery_policy = Some(r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":500}}}"#.into())),
            with(&|a| a.signature_version = 3),
            with(&|a| a.tracing_config = Some("On".into())),
            with(&|a| a.archive_policy = Some(r#"{"MessageRetentionPeriod":"30"}"#.into())),
            with(&|a| a.fifo_throughput_scope = Some("Topic".into())),
            with(&|a| {
                a.delivery_status.insert("SMTPSuccessFeedbackRoleArn".into(), "arn".into());
            }),
            with(&|a| {
                a.delivery_status.insert("SQSSuccessFeedbackSampleRate".into(), "101".into());
            }),
        ];
        for a in bad {
            assert!(a.validate(false).is_err(), "{a:?} accepted");
        }
        let fifo_ok = with(&|a| {
            a.archive_policy = Some(r#"{"MessageRetentionPeriod":"30"}"#.into());
            a.fifo_throughput_scope = Some("MessageGroup".into());
            a.delivery_status.insert("HTTPSuccessFeedbackSampleRate".into(), "50".into());
            a.signature_version = 2;
        });
        fifo_ok.validate(true).unwrap();
    }
}
