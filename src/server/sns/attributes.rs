//! Topic and subscription attributes as SNS names them: read out of the engine's settings for
//! `Get*Attributes`, and written into them for `CreateTopic`, `SetTopicAttributes`,
//! `Subscribe` and `SetSubscriptionAttributes`.

use serde_json::{Map, Value};

use super::context::Ctx;
use super::errors::{shorten, SnsError};
use super::{bool_text, parse_bool};
use crate::topic::attributes::is_delivery_status_attribute;
use crate::topic::delivery_policy::effective_topic_json;
use crate::topic::{
    FilterScope, Protocol, SubscriptionChanges, SubscriptionInfo, TopicAttributes, TopicConfig, TopicInfo,
};

/// A topic's attributes, for `GetTopicAttributes`.
pub fn topic_attributes(ctx: &Ctx, info: &TopicInfo) -> Map<String, Value> {
    let arn = ctx.context().topic_arn(&info.name);
    let a = &info.attributes;
    let mut out = Map::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), Value::String(v));
    };
    put("TopicArn", arn.clone());
    put("Owner", ctx.account());
    put("Policy", a.policy.clone().unwrap_or_else(|| default_policy(&arn, &ctx.account())));
    put("DisplayName", a.display_name.clone().unwrap_or_default());
    put("SubscriptionsConfirmed", info.subscriptions_confirmed.to_string());
    put("SubscriptionsPending", info.subscriptions_pending.to_string());
    put("SubscriptionsDeleted", "0".into());
    if let Some(p) = &a.delivery_policy {
        put("DeliveryPolicy", p.clone());
    }
    put("EffectiveDeliveryPolicy", effective_topic_json(a.parsed_delivery_policy().as_ref()));
    if let Some(k) = &a.kms_master_key_id {
        put("KmsMasterKeyId", k.clone());
    }
    put("SignatureVersion", a.signature_version.to_string());
    put("TracingConfig", a.tracing_config.clone().unwrap_or_else(|| "PassThrough".into()));
    if info.config.fifo {
        put("FifoTopic", "true".into());
        put("ContentBasedDeduplication", bool_text(info.config.content_based_dedup));
        put("FifoThroughputScope", a.fifo_throughput_scope.clone().unwrap_or_else(|| "Topic".into()));
        if let Some(p) = &a.archive_policy {
            put("ArchivePolicy", p.clone());
        }
    }
    for (k, v) in &a.delivery_status {
        put(k, v.clone());
    }
    out
}

/// SNS's access policy of a topic that was never given one.
pub(crate) fn default_policy(topic_arn: &str, account: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

/// Sets topic attribute `name` (as SNS names it) to `value`; an empty value removes an
/// optional one. `FifoTopic` is only for `CreateTopic` (`creating`), and must agree.
pub fn set_topic_attribute(
    config: &mut TopicConfig,
    a: &mut TopicAttributes,
    name: &str,
    value: &str,
    creating: bool,
) -> Result<(), SnsError> {
    let optional = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match name {
        "DisplayName" => a.display_name = optional(value),
        "Policy" => a.policy = optional(value),
        "DeliveryPolicy" => a.delivery_policy = optional(value),
        "KmsMasterKeyId" => a.kms_master_key_id = optional(value),
        "TracingConfig" => a.tracing_config = optional(value),
        "ArchivePolicy" => a.archive_policy = optional(value),
        "FifoThroughputScope" => a.fifo_throughput_scope = optional(value),
        "SignatureVersion" => {
            a.signature_version = match value {
                "1" => 1,
                "2" => 2,
                _ => return Err(SnsError::invalid("SignatureVersion", "it is 1 or 2")),
            }
        }
        "ContentBasedDeduplication" => config.content_based_dedup = parse_bool(name, value)?,
        "FifoTopic" if creating => {
            if parse_bool(name, value)? != config.fifo {
                return Err(SnsError::invalid(
                    "Topic Name",
                    "a FIFO topic's name ends in .fifo and FifoTopic is true, and only then",
                ));
            }
        }
        _ if is_delivery_status_attribute(name) => {
            if value.is_empty() {
                a.delivery_status.remove(name);
            } else {
                a.delivery_status.insert(name.to_string(), value.to_string());
            }
        }
        _ => {
            return Err(SnsError::invalid(
                "AttributeName",
                format!("{} is not a settable topic attribute", shorten(name)),
            ))
        }
    }
    Ok(())
}

/// A subscription's attributes, for `GetSubscriptionAttributes`.
pub fn subscription_attributes(ctx: &Ctx, info: &SubscriptionInfo) -> Map<String, Value> {
    let c = ctx.context();
    let mut out = Map::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), Value::String(v));
    };
    put("SubscriptionArn", c.subscription_arn(&info.topic, &info.subscription_id));
    put("TopicArn", c.topic_arn(&info.topic));
    put("Owner", ctx.account());
    put("Protocol", info.protocol.as_str().to_string());
    put("Endpoint", endpoint(ctx, info));
    put("ConfirmationWasAuthenticated", bool_text(info.confirmation_authenticated));
    put("PendingConfirmation", bool_text(info.pending_confirmation));
    put("RawMessageDelivery", bool_text(info.raw));
    if let Some(p) = &info.filter_policy {
        put("FilterPolicy", p.clone());
        put(
            "FilterPolicyScope",
            if info.filter_scope == "body" { "MessageBody" } else { "MessageAttributes" }.to_string(),
        );
    }
    if let Some(q) = &info.dead_letter_queue {
        put("RedrivePolicy", serde_json::json!({ "deadLetterTargetArn": ctx.queue_arn(q) }).to_string());
    }
    if let Some(p) = &info.delivery_policy {
        put("DeliveryPolicy", p.clone());
    }
    if let Some(p) = &info.effective_delivery_policy {
        put("EffectiveDeliveryPolicy", p.clone());
    }
    // weir's own: an HTTP/HTTPS subscription's deliveries waiting, and those dropped.
    if let Some(n) = info.pending_deliveries {
        put("PendingDeliveries", n.to_string());
        put("DroppedDeliveries", info.dropped_deliveries.to_string());
    }
    out
}

/// A subscription's endpoint as SNS shows it: a queue's ARN, an endpoint's URL.
pub fn endpoint(ctx: &Ctx, info: &SubscriptionInfo) -> String {
    match info.protocol {
        Protocol::Sqs => ctx.queue_arn(info.endpoint.strip_prefix("queue:").unwrap_or(&info.endpoint)),
        _ => info.endpoint.clone(),
    }
}

/// Reads subscription attribute `name` = `value` into `changes`.
pub fn subscription_change(
    ctx: &Ctx,
    changes: &mut SubscriptionChanges,
    name: &str,
    value: &str,
) -> Result<(), SnsError> {
    match name {
        "FilterPolicy" => changes.filter_policy = Some((!value.is_empty()).then(|| value.to_string())),
        "FilterPolicyScope" => {
            changes.filter_scope = Some(match value {
                "MessageAttributes" => FilterScope::MessageAttributes,
                "MessageBody" => FilterScope::MessageBody,
                _ => return Err(SnsError::invalid("FilterPolicyScope", "it is MessageAttributes or MessageBody")),
            })
        }
        "RawMessageDelivery" => changes.raw = Some(parse_bool(name, value)?),
        "DeliveryPolicy" => changes.delivery_policy = Some((!value.is_empty()).then(|| value.to_string())),
        "RedrivePolicy" => changes.dead_letter_queue = Some(redrive_policy(ctx, value)?),
        "SubscriptionRoleArn" | "ReplayPolicy" => {
            return Err(SnsError::invalid(
                "AttributeName",
                format!("{name} is for Firehose subscriptions and FIFO replay, which this endpoint does not have"),
            ))
        }
        _ => {
            return Err(SnsError::invalid(
                "AttributeName",
                format!("{} is not a settable subscription attribute", shorten(name)),
            ))
        }
    }
    Ok(())
}

/// A `RedrivePolicy` (`{"deadLetterTargetArn": QUEUE_ARN}`) as the queue it names; empty
/// removes the dead-letter queue.
fn redrive_policy(ctx: &Ctx, value: &str) -> Result<Option<String>, SnsError> {
    if value.is_empty() {
        return Ok(None);
    }
    let doc: Value =
        serde_json::from_str(value).map_err(|_| SnsError::invalid("RedrivePolicy", "it must be a JSON object"))?;
    let Some(Value::String(arn)) = doc.get("deadLetterTargetArn") else {
        return Err(SnsError::invalid("RedrivePolicy", "deadLetterTargetArn, a queue ARN, is missing"));
    };
    if doc.as_object().is_some_and(|o| o.len() > 1) {
        return Err(SnsError::invalid("RedrivePolicy", "it has only deadLetterTargetArn"));
    }
    ctx.queue_from_arn("RedrivePolicy: deadLetterTargetArn", arn).map(Some)
}
