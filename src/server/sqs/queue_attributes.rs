//! Queue attributes as SQS names them: reading `Attributes` of `CreateQueue` and
//! `SetQueueAttributes` onto a [`QueueConfig`] with SQS's checks and errors, and writing the
//! attributes `GetQueueAttributes` returns.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::errors::{shorten, Code, SqsError};
use super::limits::*;
use super::urls::Identity;
use crate::queue::{QueueAttributes, QueueConfig, RedrivePolicy};

/// Every attribute name `GetQueueAttributes` knows (besides `All`), in SQS's order.
pub const QUEUE_ATTRIBUTE_NAMES: &[&str] = &[
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "ApproximateNumberOfMessagesDelayed",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "SqsManagedSseEnabled",
];

/// Attributes that can only be read.
const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// Who may name a queue as its dead-letter queue (`RedriveAllowPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveAllow {
    /// Every queue of the account (SQS's default).
    AllowAll,
    /// No queue.
    DenyAll,
    /// Only these queues (names, at most 10).
    ByQueue(Vec<String>),
}

/// Attributes the wire reads and checks fully but the engine cannot store yet. Each has its
/// planned `QueueConfig` field (see the sqs-engine plan); until it exists a value other than
/// SQS's default is answered `UnsupportedOperation` by [`check_storable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingAttributes {
    /// `DeduplicationScope=messageGroup`.
    pub dedup_per_group: Option<bool>,
    /// `FifoThroughputLimit=perMessageGroupId`.
    pub throughput_per_group: Option<bool>,
    /// `RedriveAllowPolicy`.
    pub redrive_allow: Option<RedriveAllow>,
    /// `KmsMasterKeyId` (empty removes it).
    pub kms_master_key_id: Option<String>,
    /// `KmsDataKeyReusePeriodSeconds`.
    pub kms_reuse_seconds: Option<u64>,
    /// `SqsManagedSseEnabled`.
    pub sqs_managed_sse: Option<bool>,
}

/// Whether the attributes are for a new queue (where `FifoQueue` may be given) or a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `CreateQueue`.
    Create,
    /// `SetQueueAttributes`.
    Set,
}

/// The configuration a queue created over the wire starts from: SQS's defaults, the 1 MiB
/// maximum message size included.
pub fn wire_default_config(fifo: bool) -> QueueConfig {
    QueueConfig { fifo, max_message_bytes: MAX_MESSAGE_BYTES, ..QueueConfig::default() }
}

/// Applies `attributes` to `config` with SQS's checks. `config.fifo` must already say the
/// queue's type (for `CreateQueue`, from `FifoQueue` via [`fifo_from_attributes`]).
pub fn apply(
    config: &mut QueueConfig,
    attributes: &BTreeMap<String, String>,
    identity: &Identity,
    purpose: Purpose,
) -> Result<PendingAttributes, SqsError> {
    let mut pending = PendingAttributes::default();
    for (name, value) in attributes {
        let name = name.as_str();
        match name {
            "DelaySeconds" => config.delay = seconds(name, value, 0, MAX_DELAY_SECONDS)?,
            "MaximumMessageSize" => {
                config.max_message_bytes =
                    integer(name, value, MIN_MESSAGE_BYTES as u64, MAX_MESSAGE_BYTES as u64)? as usize
            }
            "MessageRetentionPeriod" => {
                config.retention = seconds(name, value, MIN_RETENTION_SECONDS, MAX_RETENTION_SECONDS)?
            }
            "ReceiveMessageWaitTimeSeconds" => config.receive_wait = seconds(name, value, 0, MAX_WAIT_SECONDS)?,
            "VisibilityTimeout" => config.visibility_timeout = seconds(name, value, 0, MAX_VISIBILITY_TIMEOUT_SECONDS)?,
            "RedrivePolicy" => config.redrive = redrive_policy(value, identity)?,
            "RedriveAllowPolicy" => pending.redrive_allow = Some(redrive_allow_policy(value, identity)?),
            "FifoQueue" => {
                if purpose == Purpose::Set {
                    return Err(SqsError::new(Code::InvalidAttributeName, "Unknown Attribute FifoQueue."));
                }
                if boolean(name, value)? != config.fifo {
                    return Err(SqsError::invalid_attribute(name, "it must match the queue name's .fifo suffix"));
                }
            }
            "ContentBasedDeduplication" => {
                fifo_only(config, name)?;
                config.content_based_dedup = boolean(name, value)?;
            }
            "DeduplicationScope" => {
                fifo_only(config, name)?;
                pending.dedup_per_group = Some(match value.as_str() {
                    "messageGroup" => true,
                    "queue" => false,
                    _ => return Err(SqsError::invalid_attribute(name, "it must be messageGroup or queue")),
                });
            }
            "FifoThroughputLimit" => {
                fifo_only(config, name)?;
                pending.throughput_per_group = Some(match value.as_str() {
                    "perMessageGroupId" => true,
                    "perQueue" => false,
                    _ => return Err(SqsError::invalid_attribute(name, "it must be perMessageGroupId or perQueue")),
                });
            }
            "Policy" => {
                // Read as the evaluator will read it, so a policy is refused now rather than
                // found unreadable at the first request it should decide.
                if !value.is_empty() {
                    crate::policy::Policy::parse(value, crate::policy::PolicyKind::Resource).map_err(|e| {
                        let reason = match e {
                            crate::Error::InvalidArgument(why) => why,
                            other => other.to_string(),
                        };
                        SqsError::invalid_attribute(name, &shorten(&reason))
                    })?;
                }
                config.policy = (!value.is_empty()).then(|| value.clone());
            }
            "KmsMasterKeyId" => pending.kms_master_key_id = Some(value.clone()),
            "KmsDataKeyReusePeriodSeconds" => {
                pending.kms_reuse_seconds = Some(integer(name, value, MIN_KMS_REUSE_SECONDS, MAX_KMS_REUSE_SECONDS)?)
            }
            "SqsManagedSseEnabled" => pending.sqs_managed_sse = Some(boolean(name, value)?),
            _ if READ_ONLY.contains(&name) => {
                return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {name}.")))
            }
            _ => {
                return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {}.", shorten(name))))
            }
        }
    }
    // SQS: per-group throughput needs per-group deduplication.
    if pending.throughput_per_group == Some(true) && pending.dedup_per_group != Some(true) {
        return Err(SqsError::invalid_attribute(
            "FifoThroughputLimit",
            "perMessageGroupId is allowed only when DeduplicationScope is messageGroup",
        ));
    }
    Ok(pending)
}

/// Refuses what the engine cannot keep yet, as SQS refuses a feature it does not offer.
// TODO(sqs-engine): store these in `QueueConfig` (dedup_scope, fifo_throughput_limit,
// redrive_allow, kms_master_key_id, kms_data_key_reuse_period, sqs_managed_sse) and
// drop this check.
pub fn check_storable(pending: &PendingAttributes) -> Result<(), SqsError> {
    let unsupported = |what: &str| Err(SqsError::unsupported(what));
    if pending.dedup_per_group == Some(true) {
        return unsupported("DeduplicationScope=messageGroup");
    }
    if pending.throughput_per_group == Some(true) {
        return unsupported("FifoThroughputLimit=perMessageGroupId");
    }
    if matches!(pending.redrive_allow, Some(RedriveAllow::DenyAll | RedriveAllow::ByQueue(_))) {
        return unsupported("A RedriveAllowPolicy other than allowAll");
    }
    if pending.kms_master_key_id.as_deref().is_some_and(|k| !k.is_empty()) {
        return unsupported("KmsMasterKeyId");
    }
    if pending.kms_reuse_seconds.is_some_and(|s| s != DEFAULT_KMS_REUSE_SECONDS) {
        return unsupported("KmsDataKeyReusePeriodSeconds other than 300");
    }
    if pending.sqs_managed_sse == Some(true) {
        return unsupported("SqsManagedSseEnabled=true");
    }
    Ok(())
}

/// The queue type `CreateQueue`'s attributes ask for; the name must agree (`.fifo`).
pub fn fifo_from_attributes(name: &str, attributes: &BTreeMap<String, String>) -> Result<bool, SqsError> {
    let fifo = match attributes.get("FifoQueue") {
        Some(v) => boolean("FifoQueue", v)?,
        None => false,
    };
    if fifo != name.ends_with(".fifo") {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            if fifo {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length."
            } else {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (a name ending in .fifo needs FifoQueue=true)."
            },
        ));
    }
    Ok(fifo)
}

fn fifo_only(config: &QueueConfig, name: &str) -> Result<(), SqsError> {
    if config.fifo {
        Ok(())
    } else {
        Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {name}.")))
    }
}

fn integer(name: &str, value: &str, min: u64, max: u64) -> Result<u64, SqsError> {
    let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .filter(|n| (min..=max).contains(n));
    n.ok_or_else(|| SqsError::invalid_attribute(name, &format!("it must be an integer from {min} to {max}")))
}

fn seconds(name: &str, value: &str, min: u64, max: u64) -> Result<Duration, SqsError> {
    integer(name, value, min, max).map(Duration::from_secs)
}

fn boolean(name: &str, value: &str) -> Result<bool, SqsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SqsError::invalid_attribute(name, "it must be true or false")),
    }
}

fn redrive_policy(value: &str, identity: &Identity) -> Result<Option<RedrivePolicy>, SqsError> {
    if value.is_empty() {
        return Ok(None); // SQS: an empty policy removes the dead-letter queue
    }
    let bad = |why: &str| SqsError::invalid_attribute("RedrivePolicy", why);
    let policy: serde_json::Map<String, Value> =
        serde_json::from_str(value).map_err(|_| bad("it must be a JSON object"))?;
    for key in policy.keys() {
        if key != "deadLetterTargetArn" && key != "maxReceiveCount" {
            return Err(bad(&format!("unknown field {}", shorten(key))));
        }
    }
    let arn = policy
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("deadLetterTargetArn is missing"))?;
    let max = match policy.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => return Err(bad("maxReceiveCount is missing")),
    }
    .filter(|n| (1..=MAX_RECEIVE_COUNT).contains(n))
    .ok_or_else(|| bad(&format!("maxReceiveCount must be an integer from 1 to {MAX_RECEIVE_COUNT}")))?;
    let dead_letter_queue = identity
        .queue_from_arn("RedrivePolicy", arn)
        .map_err(|_| bad("deadLetterTargetArn must be the ARN of a queue of this account and region"))?;
    Ok(Some(RedrivePolicy { dead_letter_queue, max_receives: max as u32 }))
}

fn redrive_allow_policy(value: &str, identity: &Identity) -> Result<RedriveAllow, SqsError> {
    let bad = |why: &str| SqsError::invalid_attribute("RedriveAllowPolicy", why);
    let policy: serde_json::Map<String, Value> =
        serde_json::from_str(value).map_err(|_| bad("it must be a JSON object"))?;
    let sources = match policy.get("sourceQueueArns") {
        None => None,
        Some(Value::Array(arns)) => Some(
            arns.iter()
                .map(|a| {
                    let arn = a.as_str().ok_or_else(|| bad("sourceQueueArns must list ARNs"))?;
                    identity
                        .queue_from_arn("RedriveAllowPolicy", arn)
                        .map_err(|_| bad("sourceQueueArns must list queue ARNs of this account and region"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(bad("sourceQueueArns must be a list")),
    };
    match (policy.get("redrivePermission").and_then(Value::as_str), sources) {
        (Some("allowAll"), None) => Ok(RedriveAllow::AllowAll),
        (Some("denyAll"), None) => Ok(RedriveAllow::DenyAll),
        (Some("byQueue"), Some(sources)) if !sources.is_empty() && sources.len() <= MAX_REDRIVE_ALLOW_SOURCES => {
            Ok(RedriveAllow::ByQueue(sources))
        }
        (Some("byQueue"), _) => Err(bad(&format!("byQueue needs 1 to {MAX_REDRIVE_ALLOW_SOURCES} sourceQueueArns"))),
        (Some("allowAll" | "denyAll"), Some(_)) => Err(bad("sourceQueueArns is only for byQueue")),
        _ => Err(bad("redrivePermission must be allowAll, denyAll or byQueue")),
    }
}

/// The attributes `GetQueueAttributes` answers for the names asked (`All` for every one).
/// Names SQS does not know are an error; known ones the queue has no value for are left out.
pub fn render(
    asked: &[String],
    attributes: &QueueAttributes,
    identity: &Identity,
) -> Result<BTreeMap<String, String>, SqsError> {
    for name in asked {
        if name != "All" && !QUEUE_ATTRIBUTE_NAMES.contains(&name.as_str()) {
            return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {}.", shorten(name))));
        }
    }
    let all = asked.iter().any(|n| n == "All");
    let mut out = BTreeMap::new();
    for &name in QUEUE_ATTRIBUTE_NAMES {
        if !all && !asked.iter().any(|n| n == name) {
            continue;
        }
        if let Some(value) = value_of(name, attributes, identity) {
            out.insert(name.to_string(), value);
        }
    }
    Ok(out)
}

fn value_of(name: &str, a: &QueueAttributes, identity: &Identity) -> Option<String> {
    let fifo_only = |v: String| a.fifo.then_some(v);
    Some(match name {
        "VisibilityTimeout" => a.visibility_timeout_s.to_string(),
        "MaximumMessageSize" => a.max_message_bytes.to_string(),
        "MessageRetentionPeriod" => a.retention_s.to_string(),
        "DelaySeconds" => a.delay_s.to_string(),
        "ReceiveMessageWaitTimeSeconds" => a.receive_wait_s.to_string(),
        "ApproximateNumberOfMessages" => a.approximate_visible.to_string(),
        "ApproximateNumberOfMessagesNotVisible" => a.approximate_in_flight.to_string(),
        "ApproximateNumberOfMessagesDelayed" => a.approximate_delayed.to_string(),
        "QueueArn" => identity.queue_arn(&a.name),
        "RedrivePolicy" => {
            let dlq = a.dead_letter_queue.as_ref()?;
            serde_json::json!({
                "deadLetterTargetArn": identity.queue_arn(dlq),
                "maxReceiveCount": a.max_receives.unwrap_or(1),
            })
            .to_string()
        }
        "FifoQueue" => fifo_only("true".into())?,
        "ContentBasedDeduplication" => fifo_only(a.content_based_dedup.to_string())?,
        // TODO(sqs-engine): the stored DeduplicationScope and FifoThroughputLimit; until the
        // engine keeps them only the defaults can be set, and these are they.
        "DeduplicationScope" => fifo_only("queue".into())?,
        "FifoThroughputLimit" => fifo_only("perQueue".into())?,
        "SqsManagedSseEnabled" => "false".into(),
        "Policy" => a.policy.clone()?,
        // TODO(sqs-engine): CreatedTimestamp and LastModifiedTimestamp (`created_ms`,
        // `last_modified_ms`), KmsMasterKeyId, KmsDataKeyReusePeriodSeconds and
        // RedriveAllowPolicy once the engine keeps them; unset values are left out, as SQS does.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attributes_are_checked_as_sqs_checks_them() {
        let id = identity();
        let mut c = wire_default_config(false);
        apply(&mut c, &attrs(&[("DelaySeconds", "900"), ("VisibilityTimeout", "0")]), &id, Purpose::Create).unwrap();
        assert_eq!(c.delay, Duration::from_secs(900));
        for (name, value, code) in [
            ("DelaySeconds", "901", Code::InvalidAttributeValue),
            ("DelaySeconds", "-1", Code::InvalidAttributeValue),
            ("DelaySeconds", "1.5", Code::InvalidAttributeValue),
            ("MaximumMessageSize", "1023", Code::InvalidAttributeValue),
            ("MaximumMessageSize", "1048577", Code::InvalidAttributeValue),
            ("MessageRetentionPeriod", "59", Code::InvalidAttributeValue),
            ("ReceiveMessageWaitTimeSeconds", "21", Code::InvalidAttributeValue),
            ("VisibilityTimeout", "43201", Code::InvalidAttributeValue),
            ("RedrivePolicy", "{", Code::InvalidAttributeValue),
            (
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:d","maxReceiveCount":0}"#,
                Code::InvalidAttributeValue,
            ),
            ("ContentBasedDeduplication", "true", Code::InvalidAttributeName),
            ("ApproximateNumberOfMessages", "1", Code::InvalidAttributeName),
            ("Nonsense", "1", Code::InvalidAttributeName),
            ("Policy", "not json", Code::InvalidAttributeValue),
        ] {
            let err =
                apply(&mut wire_default_config(false), &attrs(&[(name, value)]), &id, Purpose::Create).unwrap_err();
            assert_eq!(err.code, code, "{name}={value}: {}", err.message);
        }
        let err =
            apply(&mut wire_default_config(true), &attrs(&[("FifoQueue", "true")]), &id, Purpose::Set).unwrap_err();
        assert_eq!(err.code, Code::InvalidAttributeName);
    }

    #[test]
    fn redrive_policy_names_the_dead_letter_queue_by_arn() {
        let id = identity();
        let mut c = wire_default_config(false);
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#;
        apply(&mut c, &attrs(&[("RedrivePolicy", policy)]), &id, Purpose::Set).unwrap();
        assert_eq!(c.redrive, Some(RedrivePolicy { dead_letter_queue: "dlq".into(), max_receives: 3 }));
        apply(&mut c, &attrs(&[("RedrivePolicy", "")]), &id, Purpose::Set).unwrap();
        assert_eq!(c.redrive, None);
    }

    #[test]
    fn high_throughput_fifo_needs_per_group_deduplication() {
        let id = identity();
        let mut c = wire_default_config(true);
        let err =
            apply(&mut c, &attrs(&[("FifoThroughputLimit", "perMessageGroupId")]), &id, Purpose::Create).unwrap_err();
        assert_eq!(err.code, Code::InvalidAttributeValue);
        let pending = apply(
            &mut c,
            &attrs(&[("FifoThroughputLimit", "perMessageGroupId"), ("DeduplicationScope", "messageGroup")]),
            &id,
            Purpose::Create,
        )
        .unwrap();
        assert_eq!(pending.dedup_per_group, Some(true));
        let defaults = apply(
            &mut c,
            &attrs(&[("DeduplicationScope", "queue"), ("SqsManagedSseEnabled", "false")]),
            &id,
            Purpose::Set,
        )
        .unwrap();
        check_storable(&defaults).unwrap();
    }

    #[test]
    fn unknown_names_in_a_get_are_errors() {
        let a = QueueAttributes {
            name: "q".into(),
            fifo: false,
            content_based_dedup: false,
            visibility_timeout_s: 30,
            delay_s: 0,
            retention_s: 60,
            max_message_bytes: 1024,
            receive_wait_s: 0,
            dead_letter_queue: Some("d".into()),
            max_receives: Some(4),
            dedup_scope: Default::default(),
            fifo_throughput_limit: Default::default(),
            redrive_allow: Default::default(),
            policy: None,
            kms_master_key_id: None,
            kms_data_key_reuse_period_s: 300,
            sqs_managed_sse: false,
            broker: None,
            created_ms: 0,
            last_modified_ms: 0,
            approximate_visible: 2,
            approximate_in_flight: 1,
            approximate_delayed: 0,
            oldest_message_age_s: 0,
        };
        let id = identity();
        assert_eq!(render(&["Bogus".into()], &a, &id).unwrap_err().code, Code::InvalidAttributeName);
        let all = render(&["All".into()], &a, &id).unwrap();
        assert_eq!(all["ApproximateNumberOfMessages"], "2");
        assert_eq!(all["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:q");
        assert!(!all.contains_key("FifoQueue"));
        let redrive: Value = serde_json::from_str(&all["RedrivePolicy"]).unwrap();
        assert_eq!(redrive["maxReceiveCount"], 4);
        let one = render(&["VisibilityTimeout".into()], &a, &id).unwrap();
        assert_eq!(one.len(), 1);
    }
}
