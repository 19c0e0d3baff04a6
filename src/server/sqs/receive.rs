//! `ReceiveMessage`: its parameters with SQS's checks, the long poll, and each message as SQS
//! renders it (system attributes asked for, message attributes chosen, digests).

use std::time::Duration;

use serde_json::{Map, Value};

use super::context::Ctx;
use super::errors::{shorten, Code, SqsError};
use super::limits::*;
use super::md5::body_md5;
use super::message_attributes;
use super::queue_attributes::QUEUE_ATTRIBUTE_NAMES;
use super::wait::wait_for_messages;
use super::Output;
use crate::queue::{ReceiveOptions, ReceivedMessage};
use crate::server::wire::Input;

/// The system attributes a receive can ask for (besides `All`).
pub const SYSTEM_ATTRIBUTE_NAMES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// `ReceiveMessage`.
pub(crate) async fn receive_message(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let max = int_in_range(&input, "MaxNumberOfMessages", 1, MAX_RECEIVE_MESSAGES)?.unwrap_or(1);
    let visibility = int_in_range(&input, "VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS)?;
    let wait = int_in_range(&input, "WaitTimeSeconds", 0, MAX_WAIT_SECONDS)?;
    // AttributeNames is the older name of MessageSystemAttributeNames; both are honoured.
    let mut system = input.str_list("AttributeNames")?;
    system.extend(input.str_list("MessageSystemAttributeNames")?);
    for a in &system {
        if a != "All" && !SYSTEM_ATTRIBUTE_NAMES.contains(&a.as_str()) && !QUEUE_ATTRIBUTE_NAMES.contains(&a.as_str()) {
            return Err(SqsError::new(Code::InvalidAttributeName, format!("Unknown Attribute {}.", shorten(a))));
        }
    }
    let message_attributes = input.str_list("MessageAttributeNames")?;
    for a in &message_attributes {
        if a.is_empty() || a.len() > MAX_ATTRIBUTE_NAME_LEN {
            return Err(SqsError::invalid_parameter(
                "MessageAttributeNames",
                a,
                "Message attribute names are 1 to 256 characters.",
            ));
        }
    }
    let attempt_id = match input.str("ReceiveRequestAttemptId")? {
        Some(attempt)
            if attempt.is_empty()
                || attempt.len() > MAX_FIFO_ID_LEN
                || !attempt.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            return Err(SqsError::invalid_parameter(
                "ReceiveRequestAttemptId",
                attempt,
                "It can only include alphanumeric and punctuation characters. 1 to 128 in length.",
            ));
        }
        // A FIFO receive retried with the same id gets the same messages and receipt handles
        // (the engine ignores it on standard queues, as SQS).
        attempt => attempt.map(str::to_string),
    };
    let options = ReceiveOptions {
        max: max as usize,
        wait: Some(Duration::ZERO),
        visibility_timeout: visibility.map(Duration::from_secs),
        attempt_id,
    };
    let messages = wait_for_messages(&ctx, &name, options, wait.map(Duration::from_secs)).await?;
    let rendered: Vec<Value> =
        messages.into_iter().map(|m| Value::Object(render(&ctx, m, &system, &message_attributes))).collect();
    let mut out = Map::new();
    if !rendered.is_empty() {
        out.insert("Messages".into(), Value::Array(rendered));
    }
    Ok(out)
}

/// One message as SQS renders it. Takes the message (its strings move into the answer) and
/// computes only the system attributes asked for.
fn render(ctx: &Ctx, m: ReceivedMessage, system: &[String], attribute_names: &[String]) -> Map<String, Value> {
    let body = match String::from_utf8(m.body.to_vec()) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let mut out = Map::new();
    out.insert("MD5OfBody".into(), body_md5(body.as_bytes()).into());
    out.insert("Body".into(), body.into());
    out.insert("MessageId".into(), m.message_id.into());
    out.insert("ReceiptHandle".into(), m.receipt_handle.into());
    let mut attributes = Map::new();
    if !system.is_empty() {
        let all = system.iter().any(|a| a == "All");
        let asked = |name: &str| all || system.iter().any(|a| a == name);
        let mut put = |name: &str, value: &dyn Fn() -> Option<String>| {
            if asked(name) {
                if let Some(v) = value() {
                    attributes.insert(name.to_string(), v.into());
                }
            }
        };
        // A message sent through the library names no sender: it is the server's account's.
        put("SenderId", &|| Some(m.sender_id.clone().unwrap_or_else(|| ctx.principal.account_id.clone())));
        put("SentTimestamp", &|| Some(m.sent_ms.to_string()));
        put("ApproximateReceiveCount", &|| Some(m.receive_count.to_string()));
        put("ApproximateFirstReceiveTimestamp", &|| Some(m.first_receive_ms.to_string()));
        put("SequenceNumber", &|| m.sequence.map(|s| s.to_string()));
        put("MessageDeduplicationId", &|| m.dedup_id.clone());
        put("MessageGroupId", &|| m.group.clone());
        put("AWSTraceHeader", &|| m.trace_header.clone());
        put("DeadLetterQueueSourceArn", &|| m.dead_letter_source.as_deref().map(|q| ctx.arn(q)));
    }
    if !attributes.is_empty() {
        out.insert("Attributes".into(), Value::Object(attributes));
    }
    let (message_attributes, md5) = message_attributes::render(&m.attributes, attribute_names);
    if let Some(md5) = md5 {
        out.insert("MD5OfMessageAttributes".into(), md5.into());
        out.insert("MessageAttributes".into(), Value::Object(message_attributes));
    }
    out
}
