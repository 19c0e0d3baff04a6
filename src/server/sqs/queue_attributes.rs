//! Queue attributes as SQS names them: reading `Attributes` of `CreateQueue` and
//! `SetQueueAttributes` onto a [`QueueConfig`] with SQS's checks and errors, and writing the
//! attributes `GetQueueAttributes` returns. Every settable attribute is kept by the engine.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::errors::{shorten, Code, SqsError};
use super::limits::*;
use super::urls::Identity;
use crate::queue::{DedupScope, FifoThroughputLimit, QueueAttributes, QueueConfig, RedriveAllowPolicy, RedrivePolicy};

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
) -> Result<(), SqsError> {
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
            "RedriveAllowPolicy" => config.redrive_allow = redrive_allow_policy(value, identity)?,
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
                config.dedup_scope = value
                    .parse::<DedupScope>()
                    .map_err(|_| SqsError::invalid_attribute(name, "it must be messageGroup or queue"))?;
            }
            "FifoThroughputLimit" => {
                fifo_only(config, name)?;
                config.fifo_throughput_limit = value
                    .parse::<FifoThroughputLimit>()
                    .map_err(|_| SqsError::invalid_attribute(name, "it must be perMessageGroupId or perQueue"))?;
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
            "KmsMasterKeyId" => config.kms_master_key_id = (!value.is_empty()).then(|| value.clone()),
            "KmsDataKeyReusePeriodSeconds" => {
                config.kms_data_key_reuse_period = seconds(name, value, MIN_KMS_REUSE_SECONDS, MAX_KMS_REUSE_SECONDS)?
            }
            "SqsManagedSseEnabled" => config.sqs_managed_sse = boolean(name, value)?,
            _ if READ_ONLY.contains(&name) => {
                return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {name}.")))
            }
            _ => {
                return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {}.", shorten(name))))
            }
        }
    }
    // SQS: per-group throughput needs per-group deduplication (whichever request set which).
    if config.fifo_throughput_limit == FifoThroughputLimit::PerMessageGroupId
        && config.dedup_scope != DedupScope::MessageGroup
    {
        return Err(SqsError::invalid_attribute(
            "FifoThroughputLimit",
            "perMessageGroupId is allowed only when DeduplicationScope is messageGroup",
        ));
    }
    // SQS: one kind of server-side encryption at a time. Turning one on in a request turns
    // the other off; asking for both at once is an error.
    let kms_on = attributes.get("KmsMasterKeyId").is_some_and(|k| !k.is_empty());
    let sse_on = attributes.get("SqsManagedSseEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match (kms_on, sse_on) {
        (true, true) => {
            return Err(SqsError::invalid_attribute(
                "SqsManagedSseEnabled",
                "SSE-SQS and SSE-KMS (KmsMasterKeyId) cannot both be enabled",
            ))
        }
        (true, false) => config.sqs_managed_sse = false,
        (false, true) => config.kms_master_key_id = None,
        (false, false) => {}
    }
    // The engine's own ranges (policy size and statements, key id length) last.
    config.validate().map_err(|e| match e {
        crate::Error::TooLarge { what, size, limit } => {
            SqsError::invalid_attribute("Policy", &format!("the {what} is {size} bytes, over {limit}"))
        }
        other => SqsError::new(Code::InvalidAttributeValue, format!("Invalid value for an attribute. Reason: {other}")),
    })
}

/// Refuses attributes that ask for encryption at rest (`KmsMasterKeyId`, or
/// `SqsManagedSseEnabled=true`) when the data directory has no key: the queue would not be
/// encrypted, and nobody should believe it is. In an encrypted directory every queue is sealed
/// whatever its attributes say, so they are accepted and kept.
pub fn require_key_for_encryption(
    attributes: &BTreeMap<String, String>,
    encrypted_at_rest: bool,
) -> Result<(), SqsError> {
    if encrypted_at_rest {
        return Ok(());
    }
    let asked = if attributes.get("KmsMasterKeyId").is_some_and(|k| !k.is_empty()) {
        Some("KmsMasterKeyId")
    } else if attributes.get("SqsManagedSseEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        Some("SqsManagedSseEnabled")
    } else {
        None
    };
    match asked {
        Some(name) => Err(SqsError::invalid_attribute(name, NO_KEY)),
        None => Ok(()),
    }
}

/// Why a request for encryption at rest is refused by a server without a key.
pub const NO_KEY: &str = "this server has no encryption key, so nothing it stores is encrypted at rest; start it with `weir --key-file FILE serve` to encrypt every queue and stream";

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

fn redrive_allow_policy(value: &str, identity: &Identity) -> Result<RedriveAllowPolicy, SqsError> {
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
        (Some("allowAll"), None) => Ok(RedriveAllowPolicy::AllowAll),
        (Some("denyAll"), None) => Ok(RedriveAllowPolicy::DenyAll),
        (Some("byQueue"), Some(sources)) if !sources.is_empty() && sources.len() <= MAX_REDRIVE_ALLOW_SOURCES => {
            Ok(RedriveAllowPolicy::ByQueue(sources))
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
        "DeduplicationScope" => fifo_only(a.dedup_scope.sqs_name().into())?,
        "FifoThroughputLimit" => fifo_only(a.fifo_throughput_limit.sqs_name().into())?,
        "SqsManagedSseEnabled" => a.sqs_managed_sse.to_string(),
        // SQS answers the reuse period only for a queue with a KMS key.
        "KmsMasterKeyId" => a.kms_master_key_id.clone()?,
        "KmsDataKeyReusePeriodSeconds" => {
            a.kms_master_key_id.as_ref()?;
            a.kms_data_key_reuse_period_s.to_string()
        }
        "Policy" => a.policy.clone()?,
        "RedriveAllowPolicy" => redrive_allow_json(&a.redrive_allow, identity)?,
        // SQS's timestamps are whole seconds since the epoch.
        "CreatedTimestamp" => (a.created_ms / 1000).to_string(),
        "LastModifiedTimestamp" => (a.last_modified_ms / 1000).to_string(),
        _ => return None,
    })
}

/// The `RedriveAllowPolicy` JSON SQS returns; `None` for the default (`allowAll`), which SQS
/// leaves out until one is set.
fn redrive_allow_json(policy: &RedriveAllowPolicy, identity: &Identity) -> Option<String> {
    Some(
        match policy {
            RedriveAllowPolicy::AllowAll => return None,
            RedriveAllowPolicy::DenyAll => serde_json::json!({"redrivePermission": "denyAll"}),
            RedriveAllowPolicy::ByQueue(names) => serde_json::json!({
                "redrivePermission": "byQueue",
                "sourceQueueArns": names.iter().map(|n| identity.queue_arn(n)).collect::<Vec<_>>(),
            }),
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_at_rest_is_refused_without_a_key_and_accepted_with_one() {
        for asked in [&[("KmsMasterKeyId", "alias/aws/sqs")][..], &[("SqsManagedSseEnabled", "TRUE")]] {
            let e = require_key_for_encryption(&attrs(asked), false).unwrap_err();
            assert_eq!(e.code, Code::InvalidAttributeValue);
            assert!(e.message.contains("--key-file") && e.message.contains(asked[0].0), "{}", e.message);
            require_key_for_encryption(&attrs(asked), true).unwrap();
        }
        for off in [&[("KmsMasterKeyId", "")][..], &[("SqsManagedSseEnabled", "false")], &[("VisibilityTimeout", "5")]]
        {
            require_key_for_encryption(&attrs(off), false).unwrap();
        }
    }

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
        apply(
            &mut c,
            &attrs(&[("FifoThroughputLimit", "perMessageGroupId"), ("DeduplicationScope", "messageGroup")]),
            &id,
            Purpose::Create,
        )
        .unwrap();
        assert_eq!(
            (c.dedup_scope, c.fifo_throughput_limit),
            (DedupScope::MessageGroup, FifoThroughputLimit::PerMessageGroupId)
        );
        // Going back to per-queue deduplication needs the per-queue limit too.
        let err = apply(&mut c.clone(), &attrs(&[("DeduplicationScope", "queue")]), &id, Purpose::Set).unwrap_err();
        assert_eq!(err.code, Code::InvalidAttributeValue);
        apply(
            &mut c,
            &attrs(&[("DeduplicationScope", "queue"), ("FifoThroughputLimit", "perQueue")]),
            &id,
            Purpose::Set,
        )
        .unwrap();
        assert_eq!(c.dedup_scope, DedupScope::Queue);
    }

    #[test]
    fn every_settable_attribute_lands_in_the_config() {
        let id = identity();
        let mut c = wire_default_config(false);
        let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let allow = r#"{"redrivePermission":"byQueue","sourceQueueArns":["arn:aws:sqs:us-east-1:000000000000:src"]}"#;
        apply(
            &mut c,
            &attrs(&[
                ("Policy", policy),
                ("RedriveAllowPolicy", allow),
                ("KmsMasterKeyId", "alias/aws/sqs"),
                ("KmsDataKeyReusePeriodSeconds", "600"),
            ]),
            &id,
            Purpose::Create,
        )
        .unwrap();
        assert_eq!(c.policy.as_deref(), Some(policy));
        assert_eq!(c.redrive_allow, RedriveAllowPolicy::ByQueue(vec!["src".into()]));
        assert_eq!(c.kms_master_key_id.as_deref(), Some("alias/aws/sqs"));
        assert_eq!(c.kms_data_key_reuse_period, Duration::from_secs(600));
        // SSE-SQS on turns the KMS key off; both at once is an error; empty values remove.
        apply(&mut c, &attrs(&[("SqsManagedSseEnabled", "true")]), &id, Purpose::Set).unwrap();
        assert!(c.sqs_managed_sse && c.kms_master_key_id.is_none());
        let both = attrs(&[("SqsManagedSseEnabled", "true"), ("KmsMasterKeyId", "k")]);
        assert_eq!(apply(&mut c.clone(), &both, &id, Purpose::Set).unwrap_err().code, Code::InvalidAttributeValue);
        apply(&mut c, &attrs(&[("Policy", "")]), &id, Purpose::Set).unwrap();
        assert_eq!(c.policy, None);
        // The engine's own limits answer as attribute errors.
        let statements: Vec<String> = (0..21).map(|i| format!(r#"{{"Sid":"s{i}"}}"#)).collect();
        let big = format!(r#"{{"Statement":[{}]}}"#, statements.join(","));
        assert_eq!(
            apply(&mut c.clone(), &attrs(&[("Policy", &big)]), &id, Purpose::Set).unwrap_err().code,
            Code::InvalidAttributeValue
        );
        let huge = format!(r#"{{"Id":"{}"}}"#, "x".repeat(9000));
        assert_eq!(
            apply(&mut c.clone(), &attrs(&[("Policy", &huge)]), &id, Purpose::Set).unwrap_err().code,
            Code::InvalidAttributeValue
        );
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
            redrive_allow: RedriveAllowPolicy::DenyAll,
            policy: None,
            kms_master_key_id: None,
            kms_data_key_reuse_period_s: 300,
            sqs_managed_sse: false,
            broker: None,
            created_ms: 1_700_000_000_999,
            last_modified_ms: 1_700_000_001_000,
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
        assert_eq!(all["CreatedTimestamp"], "1700000000");
        assert_eq!(all["LastModifiedTimestamp"], "1700000001");
        assert_eq!(all["RedriveAllowPolicy"], r#"{"redrivePermission":"denyAll"}"#);
        assert_eq!(all["SqsManagedSseEnabled"], "false");
        assert!(!all.contains_key("Policy") && !all.contains_key("KmsDataKeyReusePeriodSeconds"));
        let one = render(&["VisibilityTimeout".into()], &a, &id).unwrap();
        assert_eq!(one.len(), 1);
    }
}
