//! Sending, deleting and changing the visibility of messages, single and batched.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::batch;
use super::context::Ctx;
use super::errors::{from_engine, Code, SqsError};
use super::limits::*;
use super::md5::body_md5;
use super::message_attributes::{self, allowed_char, WireAttribute};
use super::Output;
use crate::queue::{SendEntry, SendOptions, SendResult};
use crate::server::wire::Input;

/// A send as read from the wire, before the engine sees it.
struct Send {
    /// The body's UTF-8 bytes (the engine takes them without a copy).
    body: Bytes,
    delay: Option<u64>,
    attributes: Vec<WireAttribute>,
    system: Vec<WireAttribute>,
    group: Option<String>,
    dedup_id: Option<String>,
}

impl Send {
    /// Bytes this message counts toward size limits: body and attributes, as SQS counts.
    fn size(&self) -> usize {
        self.body.len()
            + self.attributes.iter().map(|a| a.name.len() + a.data_type.len() + attribute_len(&a.value)).sum::<usize>()
    }

    /// The engine's entry, sent by `sender_id` (the principal's account).
    fn entry(&self, fifo: bool, sender_id: &str) -> SendEntry {
        SendEntry {
            body: self.body.clone(),
            options: SendOptions {
                delay: self.delay.map(Duration::from_secs),
                attributes: message_attributes::to_engine(&self.attributes),
                // A standard queue takes MessageGroupId for fair queueing (scheduling only):
                // the engine has no fair queues, so the id is dropped there.
                group: if fifo { self.group.clone() } else { None },
                dedup_id: self.dedup_id.clone(),
                trace_header: self
                    .system
                    .iter()
                    .find(|a| a.name == message_attributes::AWS_TRACE_HEADER)
                    .and_then(|a| a.value.text())
                    .map(str::to_string),
                sender_id: Some(sender_id.to_string()),
            },
        }
    }

    fn answer(&self, sent: &SendResult) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("MessageId".into(), sent.message_id.clone().into());
        out.insert("MD5OfMessageBody".into(), body_md5(&self.body).into());
        if let Some(md5) = message_attributes::digest(&self.attributes) {
            out.insert("MD5OfMessageAttributes".into(), md5.into());
        }
        if let Some(md5) = message_attributes::digest(&self.system) {
            out.insert("MD5OfMessageSystemAttributes".into(), md5.into());
        }
        if let Some(seq) = sent.sequence {
            out.insert("SequenceNumber".into(), seq.to_string().into());
        }
        out
    }
}

fn attribute_len(v: &crate::queue::AttributeValue) -> usize {
    v.as_bytes().len()
}

fn not_for_queue_type(name: &str, value: &str) -> SqsError {
    SqsError::invalid_parameter(name, value, "The request include parameter that is not valid for this queue type.")
}

/// Reads one send (a `SendMessage` or one batch entry) with SQS's checks.
fn read_send(input: &Input, fifo: bool) -> Result<Send, SqsError> {
    let body = input.str("MessageBody")?.unwrap_or_default();
    if body.is_empty() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter MessageBody."));
    }
    if body.chars().any(|c| !allowed_char(c)) {
        return Err(SqsError::new(
            Code::InvalidMessageContents,
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    let delay = int_in_range(input, "DelaySeconds", 0, MAX_DELAY_SECONDS)?;
    if let (true, Some(d)) = (fifo, delay) {
        return Err(not_for_queue_type("DelaySeconds", &d.to_string()));
    }
    let group = fifo_id(input, "MessageGroupId")?;
    let dedup_id = fifo_id(input, "MessageDeduplicationId")?;
    if fifo && group.is_none() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter MessageGroupId."));
    }
    if let (false, Some(d)) = (fifo, &dedup_id) {
        return Err(not_for_queue_type("MessageDeduplicationId", d));
    }
    Ok(Send {
        body: Bytes::from(body.to_string()),
        delay,
        attributes: message_attributes::parse(input, "MessageAttributes")?,
        system: message_attributes::parse_system(input)?,
        group,
        dedup_id,
    })
}

/// `MessageGroupId` and `MessageDeduplicationId`: 1-128 characters, alphanumerics and
/// punctuation.
fn fifo_id(input: &Input, name: &str) -> Result<Option<String>, SqsError> {
    let Some(id) = input.str(name)? else { return Ok(None) };
    if id.is_empty() || id.len() > MAX_FIFO_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SqsError::invalid_parameter(
            name,
            id,
            &format!(
                "{name} can only include alphanumeric and punctuation characters. 1 to {MAX_FIFO_ID_LEN} in length."
            ),
        ));
    }
    Ok(Some(id.to_string()))
}

/// `SendMessage`.
pub(crate) async fn send_message(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let fifo = name.ends_with(".fifo");
    let send = read_send(&input, fifo)?;
    let entry = send.entry(fifo, &ctx.principal.account_id);
    let sent = ctx.queue_pending(&name, |_, q| q.send_batch_pending(std::slice::from_ref(&entry))).await?;
    let sent = sent.into_iter().next().unwrap_or_else(|| Err(crate::Error::InvalidArgument("no result".into())));
    let sent = sent.map_err(|e| from_engine(&e))?;
    Ok(send.answer(&sent))
}

/// `SendMessageBatch`.
pub(crate) async fn send_message_batch(ctx: Ctx, mut input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let fifo = name.ends_with(".fifo");
    let entries = batch::entries(&mut input)?;
    let (valid, failed) = batch::read_entries(&entries, |entry| read_send(entry, fifo));
    let total: usize = valid.iter().map(|(_, s)| s.size()).sum();
    if total > MAX_BATCH_BYTES {
        return Err(SqsError::new(
            Code::BatchRequestTooLong,
            format!("Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."),
        ));
    }
    let to_send: Vec<SendEntry> = valid.iter().map(|(_, s)| s.entry(fifo, &ctx.principal.account_id)).collect();
    let results = if to_send.is_empty() {
        Vec::new()
    } else {
        ctx.queue_pending(&name, |_, q| q.send_batch_pending(&to_send)).await?
    };
    Ok(batch::answer(&valid, results, failed, |id, send, sent| {
        let mut entry = send.answer(&sent);
        entry.insert("Id".into(), id.into());
        Value::Object(entry)
    }))
}

fn receipt_handle(input: &Input) -> Result<String, SqsError> {
    let handle = input.required_str("ReceiptHandle")?;
    if handle.is_empty() {
        return Err(SqsError::new(Code::ReceiptHandleIsInvalid, "The input receipt handle is invalid: it is empty."));
    }
    Ok(handle.to_string())
}

fn visibility_timeout(input: &Input) -> Result<Duration, SqsError> {
    match int_in_range(input, "VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS)? {
        Some(t) => Ok(Duration::from_secs(t)),
        None => Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter VisibilityTimeout.")),
    }
}

/// `DeleteMessage`.
pub(crate) async fn delete_message(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let handle = receipt_handle(&input)?;
    let deleted = ctx.queue_pending(&name, |_, q| q.delete_batch_pending(&[handle.as_str()])).await?;
    deleted.into_iter().next().unwrap_or(Ok(())).map_err(|e| from_engine(&e))?;
    Ok(Map::new())
}

/// `DeleteMessageBatch`.
pub(crate) async fn delete_message_batch(ctx: Ctx, mut input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let entries = batch::entries(&mut input)?;
    let (valid, failed) = batch::read_entries(&entries, receipt_handle);
    let handles: Vec<String> = valid.iter().map(|(_, h)| h.clone()).collect();
    let results = if handles.is_empty() {
        Vec::new()
    } else {
        let handles: Vec<&str> = handles.iter().map(String::as_str).collect();
        ctx.queue_pending(&name, |_, q| q.delete_batch_pending(&handles)).await?
    };
    Ok(batch::answer(&valid, results, failed, |id, _, ()| json!({ "Id": id })))
}

/// `ChangeMessageVisibility`.
pub(crate) async fn change_visibility(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let handle = receipt_handle(&input)?;
    let timeout = visibility_timeout(&input)?;
    ctx.queue(&name, move |_, q| q.change_visibility(&handle, timeout)).await?;
    Ok(Map::new())
}

/// `ChangeMessageVisibilityBatch`.
pub(crate) async fn change_visibility_batch(ctx: Ctx, mut input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let entries = batch::entries(&mut input)?;
    let (valid, failed) =
        batch::read_entries(&entries, |entry| Ok((receipt_handle(entry)?, visibility_timeout(entry)?)));
    let changes: Vec<(String, Duration)> = valid.iter().map(|(_, change)| change.clone()).collect();
    let results = if changes.is_empty() {
        Vec::new()
    } else {
        ctx.queue(&name, move |_, q| {
            q.change_visibility_batch(&changes.iter().map(|(h, t)| (h.as_str(), *t)).collect::<Vec<_>>())
        })
        .await?
    };
    Ok(batch::answer(&valid, results, failed, |id, _, ()| json!({ "Id": id })))
}
