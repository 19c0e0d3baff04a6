//! `Publish` and `PublishBatch`: the message (plain, or `MessageStructure=json`), subject,
//! message attributes and FIFO ids read and checked, then published through the engine, which
//! writes the publish and every delivery (queues and HTTP/HTTPS delivery queues) as one frame.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::context::Ctx;
use super::errors::{from_engine, shorten, Code, SnsError};
use super::{message_attributes, Output};
use crate::server::wire::Input;
use crate::topic::{MessageStructure, PublishEntry, PublishOptions, PublishResult, MAX_PUBLISH_BYTES};

/// Most entries of a `PublishBatch`, as SNS.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// Reads one message's parameters (a `Publish`, or an entry of a batch).
fn read_entry(input: &Input) -> Result<PublishEntry, SnsError> {
    let message = input.required_str("Message")?;
    if message.is_empty() {
        return Err(SnsError::invalid("Empty message", ""));
    }
    let message_structure = match input.str("MessageStructure")? {
        None => MessageStructure::Plain,
        Some("json") => MessageStructure::Json,
        Some(other) => return Err(SnsError::invalid("MessageStructure", format!("{} is not json", shorten(other)))),
    };
    let subject = input.str("Subject")?.map(str::to_string);
    if subject.as_deref().is_some_and(|s| s.is_empty() || !s.is_ascii() || s.contains(['\n', '\r'])) {
        return Err(SnsError::invalid(
            "Subject",
            "a subject is 1 to 100 printable ASCII characters without line breaks",
        ));
    }
    let options = PublishOptions {
        attributes: message_attributes::parse(input)?,
        group: input.str("MessageGroupId")?.map(str::to_string),
        dedup_id: input.str("MessageDeduplicationId")?.map(str::to_string),
        subject,
        message_structure,
    };
    Ok(PublishEntry { body: Bytes::copy_from_slice(message.as_bytes()), options })
}

/// The topic a publish goes to: `TopicArn`, or a topic ARN given as `TargetArn`.
fn target_topic(ctx: &Ctx, input: &Input) -> Result<String, SnsError> {
    if input.str("PhoneNumber")?.is_some() {
        return Err(SnsError::invalid("PhoneNumber", "SMS is not served by this endpoint"));
    }
    match (input.str("TopicArn")?, input.str("TargetArn")?) {
        (Some(arn), None) => ctx.topic_from_arn("TopicArn", arn),
        (None, Some(arn)) => ctx.topic_from_arn("TargetArn", arn),
        (Some(_), Some(_)) => Err(SnsError::invalid("TopicArn or TargetArn", "give one of them, not both")),
        (None, None) => Err(SnsError::invalid("TopicArn or TargetArn Reason: no value for required parameter", "")),
    }
}

fn result_fields(r: &PublishResult, out: &mut Map<String, Value>) {
    out.insert("MessageId".into(), Value::String(r.message_id.clone()));
    if let Some(seq) = r.sequence {
        out.insert("SequenceNumber".into(), Value::String(format!("{seq:020}")));
    }
}

/// `Publish`.
pub(crate) async fn publish(ctx: Ctx, input: Input) -> Output {
    let topic = target_topic(&ctx, &input)?;
    let entry = read_entry(&input)?;
    let result = ctx.engine(move |e| e.topic(&topic)?.publish(&entry.body, entry.options)).await?;
    let mut out = Map::new();
    result_fields(&result, &mut out);
    Ok(out)
}

/// `PublishBatch`: up to ten entries, each with an id; each succeeds or fails on its own.
pub(crate) async fn publish_batch(ctx: Ctx, input: Input) -> Output {
    let topic = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    if input.get("PublishBatchRequestEntries").is_none() {
        return Err(SnsError::invalid("PublishBatchRequestEntries", "the request must contain it"));
    }
    let entries = input.struct_list("PublishBatchRequestEntries")?;
    if entries.is_empty() {
        return Err(SnsError::new(Code::EmptyBatchRequest, "The batch request doesn't contain any entries."));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(SnsError::new(
            Code::TooManyEntriesInBatchRequest,
            format!("The batch request contains more entries than permissible ({MAX_BATCH_ENTRIES})."),
        ));
    }
    let mut ids = BTreeSet::new();
    let mut size = 0usize;
    let mut read = Vec::with_capacity(entries.len());
    for entry in &entries {
        let id = entry.required_str("Id")?.to_string();
        let id_ok =
            !id.is_empty() && id.len() <= 80 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(SnsError::new(
                Code::InvalidBatchEntryId,
                format!(
                    "The Id of a batch entry in a batch request doesn't abide by the specification: {}",
                    shorten(&id)
                ),
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(SnsError::new(
                Code::BatchEntryIdsNotDistinct,
                "Two or more batch entries in the request have the same Id.",
            ));
        }
        size += entry.str("Message")?.map_or(0, str::len);
        read.push((id, read_entry(entry)));
    }
    if size > MAX_PUBLISH_BYTES {
        return Err(SnsError::new(
            Code::BatchRequestTooLong,
            format!("The length of all the messages put together is more than the limit ({MAX_PUBLISH_BYTES} bytes)."),
        ));
    }
    let mut failed: Vec<Value> = Vec::new();
    let mut valid = Vec::new();
    for (id, entry) in read {
        match entry {
            Ok(entry) => valid.push((id, entry)),
            Err(e) => failed.push(failure(&id, &e)),
        }
    }
    let mut successful = Vec::new();
    if !valid.is_empty() {
        let (ids, entries): (Vec<String>, Vec<PublishEntry>) = valid.into_iter().unzip();
        let results = ctx.engine(move |e| e.topic(&topic)?.publish_batch(&entries)).await?;
        for (id, result) in ids.iter().zip(results) {
            match result {
                Ok(r) => {
                    let mut item = Map::new();
                    item.insert("Id".into(), Value::String(id.clone()));
                    result_fields(&r, &mut item);
                    successful.push(Value::Object(item));
                }
                Err(e) => failed.push(failure(id, &from_engine(&e))),
            }
        }
    }
    let mut out = Map::new();
    out.insert("Successful".into(), Value::Array(successful));
    out.insert("Failed".into(), Value::Array(failed));
    Ok(out)
}

fn failure(id: &str, e: &SnsError) -> Value {
    json!({"Id": id, "Code": e.code.code(), "Message": e.message, "SenderFault": e.code.sender_fault()})
}
