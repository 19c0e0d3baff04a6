//! Publishing: checking a publish, choosing each subscription's message (plain, or one of a
//! `MessageStructure=json` document's), building what each subscription receives (an
//! envelope or the raw message, for a queue or an HTTP endpoint's delivery queue), and
//! writing it all as one frame.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::envelope::{Notification as Envelope, Writer};
use super::http::delivery_sender_id;
use super::subscription::{Protocol, Subscription, Target};
use super::{MessageKind, MessageStructure, Notification, PublishEntry, PublishOptions, PublishResult, Topic};
use crate::error::{Error, Result};
use crate::format::queue_record::{MessageRecord, PublishRecord, MAX_ID_LEN, MAX_SUBJECT_LEN, OWN_SEQ};
use crate::queue::attributes::{self, from_stored, to_stored};
use crate::queue::dedup::digest;
use crate::queue::store::{format_id, PublishWrite, QueueCell};
use crate::queue::{SendEntry, SendOptions};

/// The messages of a `MessageStructure=json` publish, by protocol key.
#[derive(Debug)]
struct ProtocolMessages {
    default: String,
    by_protocol: BTreeMap<String, String>,
}

/// Keys of a `MessageStructure=json` document weir delivers (the others, for protocols weir
/// does not have, are accepted and ignored, as SNS ignores keys of protocols not subscribed).
const PROTOCOL_KEYS: &[&str] = &["sqs", "http", "https", "lambda"];

impl ProtocolMessages {
    fn parse(body: &[u8]) -> Result<ProtocolMessages> {
        let doc: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| Error::InvalidArgument("Message Structure - JSON message body failed to parse".into()))?;
        let serde_json::Value::Object(map) = doc else {
            return Err(Error::InvalidArgument("Message Structure - JSON message body failed to parse".into()));
        };
        let default = match map.get("default") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => {
                return Err(Error::InvalidArgument("Message Structure - No default entry in JSON message body".into()))
            }
        };
        let mut by_protocol = BTreeMap::new();
        for key in PROTOCOL_KEYS {
            match map.get(*key) {
                None => {}
                Some(serde_json::Value::String(s)) => {
                    by_protocol.insert(key.to_string(), s.clone());
                }
                Some(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "Message Structure - the {key} entry of the JSON message body is not a string"
                    )))
                }
            }
        }
        Ok(ProtocolMessages { default, by_protocol })
    }

    fn for_protocol(&self, key: &str) -> &str {
        self.by_protocol.get(key).map_or(&self.default, String::as_str)
    }
}

/// A publish being made: its record and how to read its body.
struct Prepared<'a> {
    record: PublishRecord,
    body: &'a str,
    messages: Option<ProtocolMessages>,
    attributes: &'a attributes::Attributes,
}

impl Prepared<'_> {
    /// The message a subscription of this protocol receives.
    fn message(&self, protocol: Protocol) -> &str {
        let key = match protocol {
            Protocol::Sqs => "sqs",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Callback => "lambda",
        };
        match &self.messages {
            Some(m) => m.for_protocol(key),
            None => self.body,
        }
    }
}

impl Topic {
    /// Publishes one message; returns once it and its deliveries are durable.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use weir::queue::QueueConfig;
    /// use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_queue("audit", QueueConfig::default())?;
    /// engine.create_topic("orders", TopicConfig::default())?;
    /// engine.subscribe("orders", Endpoint::Queue("audit".into()), SubscribeOptions { raw: true, ..Default::default() })?;
    /// let r = engine.topic("orders")?.publish(b"order 1", PublishOptions::default())?;
    /// assert_eq!(r.delivered, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&self, body: &[u8], options: PublishOptions) -> Result<PublishResult> {
        let entry = PublishEntry { body: Bytes::copy_from_slice(body), options };
        self.publish_batch(std::slice::from_ref(&entry))?
            .pop()
            .unwrap_or_else(|| Err(Error::InvalidArgument("empty publish".into())))
    }

    /// Publishes up to 10 messages in one durable write; each entry succeeds or fails on its own.
    pub fn publish_batch(&self, entries: &[PublishEntry]) -> Result<Vec<Result<PublishResult>>> {
        crate::queue::store::check_batch_len(entries.len())?;
        if self.cell.deleted.load(Ordering::SeqCst) {
            return Err(Error::Closed(format!("this handle to deleted topic {:?}", self.cell.name)));
        }
        let now = self.store.clock().now_ms();
        let (config, signature_version) = {
            let settings = self.cell.settings.read();
            (settings.config, settings.attributes.signature_version)
        };
        let context = self.env.context.read().clone();
        let writer = Writer { context: &context, key: &self.env.signing_key, signature_version };
        let topic_arn = context.topic_arn(&self.cell.name);
        let scope = self.store.arn_scope();
        let policy_check = crate::policy::TopicDelivery { scope: &scope, topic: &self.cell.name, now_ms: now };
        // Cross-service delivery: a queue's access policy (or its absence: the owner's queue)
        // must let this topic send.
        let allowed = |name: &str, cell: &QueueCell| {
            let policy = cell.state.lock().config.policy.clone();
            policy_check.allowed(name, policy.as_deref())
        };
        let publishing = self.cell.publishing.read();
        let subs: Vec<Arc<Subscription>> = self.cell.subs.read().clone();
        let mut results: Vec<Option<Result<PublishResult>>> = Vec::with_capacity(entries.len());
        let mut items = Vec::new();
        let mut pending = Vec::new(); // (entry index, filtered count, matched callbacks, prepared)
        for (i, entry) in entries.iter().enumerate() {
            let prepared = match self.prepare(entry, &config, now) {
                Ok(p) => p,
                Err(e) => {
                    results.push(Some(Err(e)));
                    continue;
                }
            };
            let message_id = format_id(&prepared.record.message_id);
            let mut deliveries = Vec::new();
            let mut filtered = 0;
            let mut callbacks = Vec::new();
            for sub in &subs {
                if sub.def.pending {
                    continue; // an HTTP endpoint that has not confirmed gets nothing
                }
                let protocol = sub.protocol();
                let message = prepared.message(protocol);
                if !sub.matches(prepared.attributes, message.as_bytes()) {
                    sub.filtered.fetch_add(1, Ordering::Relaxed);
                    filtered += 1;
                    continue;
                }
                let queue = match &sub.target {
                    Target::Queue(q) => self.store.cell(q).filter(|c| allowed(q, c)).or_else(|| {
                        // The queue is gone or refuses this topic: the subscription's
                        // dead-letter queue stands in (if it lets the topic send).
                        sub.def.dead_letter_queue.as_deref().and_then(|d| self.store.cell(d).filter(|c| allowed(d, c)))
                    }),
                    Target::Http(q) => self.store.cell(q),
                    Target::Callback { .. } => {
                        callbacks.push(Arc::clone(sub));
                        continue;
                    }
                };
                let Some(cell) = queue else { continue };
                // Only an envelope names its subscription.
                let subscription_arn =
                    if sub.def.raw { String::new() } else { context.subscription_arn(&self.cell.name, &sub.def.id) };
                let envelope = Envelope {
                    message_id: &message_id,
                    topic_arn: &topic_arn,
                    subject: entry.options.subject.as_deref(),
                    message,
                    timestamp_ms: now,
                    sequence: None,
                    subscription_arn: &subscription_arn,
                    attributes: prepared.attributes,
                };
                let m = self.delivery(&prepared.record, sub, &cell, &writer, &envelope, now);
                deliveries.push((cell, m));
            }
            let dedup = (!prepared.record.dedup.is_empty()).then(|| digest(&prepared.record.dedup));
            items.push((PublishWrite { record: prepared.record.clone(), deliveries }, dedup));
            pending.push((i, filtered, callbacks, prepared));
            results.push(None);
        }
        let outcomes = if items.is_empty() { Vec::new() } else { self.store.publish(self.cell.id, items)? };
        drop(publishing);
        for ((i, filtered, callbacks, prepared), outcome) in pending.into_iter().zip(outcomes) {
            let mut delivered = outcome.delivered;
            if !outcome.duplicate {
                for sub in &callbacks {
                    if self.call(sub, &prepared) {
                        delivered += 1;
                    }
                }
            }
            results[i] = Some(Ok(PublishResult {
                message_id: format_id(&outcome.message_id),
                sequence: config.fifo.then_some(outcome.seq),
                delivered,
                filtered: if outcome.duplicate { 0 } else { filtered },
                duplicate: outcome.duplicate,
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::InvalidArgument("entry not processed".into()))))
            .collect())
    }

    /// Checks an entry and makes its publish record.
    fn prepare<'a>(&self, entry: &'a PublishEntry, config: &super::TopicConfig, now: u64) -> Result<Prepared<'a>> {
        let body = check(entry, config)?;
        let messages = match entry.options.message_structure {
            MessageStructure::Plain => None,
            MessageStructure::Json => Some(ProtocolMessages::parse(&entry.body)?),
        };
        let o = &entry.options;
        let record = PublishRecord {
            topic: self.cell.id,
            message_id: self.store.new_message_id(),
            sent_ms: now,
            group: bytes_of(&o.group),
            dedup: dedup_id(entry, config).map(Bytes::from).unwrap_or_default(),
            subject: bytes_of(&o.subject),
            json_structure: messages.is_some(),
            attributes: to_stored(&o.attributes),
            body: entry.body.clone(),
        };
        Ok(Prepared { record, body, messages, attributes: &o.attributes })
    }

    /// The message a subscription's queue (its own, its dead-letter queue, or an HTTP
    /// endpoint's delivery queue) receives for a publish.
    fn delivery(
        &self,
        record: &PublishRecord,
        sub: &Subscription,
        queue: &QueueCell,
        writer: &Writer<'_>,
        envelope: &Envelope<'_>,
        now: u64,
    ) -> MessageRecord {
        let (body, attributes) = if sub.def.raw {
            (Bytes::copy_from_slice(envelope.message.as_bytes()), record.attributes.clone())
        } else {
            (Bytes::from(writer.notification(envelope)), Vec::new())
        };
        let http = matches!(sub.target, Target::Http(_));
        MessageRecord {
            queue: queue.id,
            key: OWN_SEQ,
            // An HTTP delivery keeps the publish's id: it is the endpoint's x-amz-sns-message-id.
            message_id: if http { record.message_id } else { self.store.new_message_id() },
            sent_ms: now,
            visible_at_ms: now,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: record.group.clone(),
            dedup: record.dedup.clone(),
            trace_header: Bytes::new(),
            sender_id: if http { delivery_sender_id(MessageKind::Notification, sub.def.raw) } else { Bytes::new() },
            attributes,
            body,
        }
    }

    /// What replaying `record` (read back from the log) delivers to a new queue subscription,
    /// or `None` if its filter policy leaves it out.
    pub(super) fn replayed_delivery(
        &self,
        sub: &Subscription,
        record: &PublishRecord,
        queue: u32,
    ) -> Option<MessageRecord> {
        let attributes = from_stored(&record.attributes);
        let body = std::str::from_utf8(&record.body).ok()?;
        let messages = if record.json_structure { ProtocolMessages::parse(&record.body).ok() } else { None };
        let message = messages.as_ref().map_or(body, |m| m.for_protocol("sqs"));
        if !sub.matches(&attributes, message.as_bytes()) {
            return None;
        }
        let context = self.env.context.read().clone();
        let settings = self.cell.settings.read().clone();
        let writer = Writer {
            context: &context,
            key: &self.env.signing_key,
            signature_version: settings.attributes.signature_version,
        };
        let topic_arn = context.topic_arn(&self.cell.name);
        let subscription_arn = context.subscription_arn(&self.cell.name, &sub.def.id);
        let subject = (!record.subject.is_empty()).then(|| String::from_utf8_lossy(&record.subject).into_owned());
        let envelope = Envelope {
            message_id: &format_id(&record.message_id),
            topic_arn: &topic_arn,
            subject: subject.as_deref(),
            message,
            timestamp_ms: record.sent_ms,
            sequence: None,
            subscription_arn: &subscription_arn,
            attributes: &attributes,
        };
        let (body, attributes) = if sub.def.raw {
            (Bytes::copy_from_slice(message.as_bytes()), record.attributes.clone())
        } else {
            (Bytes::from(writer.notification(&envelope)), Vec::new())
        };
        Some(MessageRecord {
            queue,
            key: OWN_SEQ,
            message_id: self.store.new_message_id(),
            sent_ms: record.sent_ms,
            visible_at_ms: 0,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: record.group.clone(),
            dedup: record.dedup.clone(),
            trace_header: Bytes::new(),
            sender_id: Bytes::new(),
            attributes,
            body,
        })
    }

    /// Calls a callback subscriber with retries; after the last failure, sends the message to
    /// its dead-letter queue if it has one. True if the callback took it.
    fn call(&self, sub: &Subscription, prepared: &Prepared<'_>) -> bool {
        let Target::Callback { f, max_attempts, dead_letter_queue } = &sub.target else { return false };
        let record = &prepared.record;
        let note = Notification {
            topic: self.cell.name.clone(),
            message_id: format_id(&record.message_id),
            subject: (!record.subject.is_empty()).then(|| String::from_utf8_lossy(&record.subject).into_owned()),
            body: Bytes::copy_from_slice(prepared.message(Protocol::Callback).as_bytes()),
            attributes: prepared.attributes.clone(),
            group: (!record.group.is_empty()).then(|| String::from_utf8_lossy(&record.group).into_owned()),
        };
        for _ in 0..*max_attempts {
            if f(&note).is_ok() {
                return true;
            }
        }
        if let Some(cell) = dead_letter_queue.as_deref().and_then(|q| self.store.cell(q)) {
            let fifo = cell.state.lock().config.fifo;
            let options = SendOptions {
                attributes: note.attributes.clone(),
                group: fifo.then(|| note.group.clone().unwrap_or_else(|| "callback".into())),
                dedup_id: fifo.then(|| note.message_id.clone()),
                ..SendOptions::default()
            };
            // Best effort by design: callback subscriptions are not durable.
            let _ = self.store.send(&cell, &[SendEntry { body: note.body.clone(), options }]);
        }
        false
    }
}

/// Checks a publish against its topic's type; returns the body as text.
fn check<'a>(entry: &'a PublishEntry, config: &super::TopicConfig) -> Result<&'a str> {
    if entry.body.is_empty() {
        return Err(Error::InvalidArgument("a message body may not be empty".into()));
    }
    let body = std::str::from_utf8(&entry.body)
        .map_err(|_| Error::InvalidArgument("a published body must be UTF-8 text, as SNS requires".into()))?;
    let size = entry.body.len() + attributes::validate(&entry.options.attributes)?;
    if size > super::MAX_PUBLISH_BYTES {
        return Err(Error::TooLarge { what: "published message", size, limit: super::MAX_PUBLISH_BYTES });
    }
    let o: &PublishOptions = &entry.options;
    if let Some(subject) = &o.subject {
        if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN || subject.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!("a subject is 1 to {MAX_SUBJECT_LEN} printable characters")));
        }
    }
    if config.fifo {
        let group = o
            .group
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("a FIFO publish needs a message group id".into()))?;
        check_id("message group id", group)?;
        match o.dedup_id.as_deref() {
            Some(d) => check_id("deduplication id", d)?,
            None if config.content_based_dedup => {}
            None => {
                return Err(Error::InvalidArgument(
                    "a FIFO publish needs a deduplication id unless content-based deduplication is on".into(),
                ))
            }
        }
    } else if o.group.is_some() || o.dedup_id.is_some() {
        return Err(Error::InvalidArgument("message group and deduplication ids are for FIFO topics only".into()));
    }
    Ok(body)
}

fn dedup_id(entry: &PublishEntry, config: &super::TopicConfig) -> Option<Vec<u8>> {
    if !config.fifo {
        return None;
    }
    match &entry.options.dedup_id {
        Some(d) => Some(d.as_bytes().to_vec()),
        None if config.content_based_dedup => Some(crate::text::hex(&Sha256::digest(&entry.body)).into_bytes()),
        None => None,
    }
}

fn bytes_of(s: &Option<String>) -> Bytes {
    s.as_ref().map(|s| Bytes::copy_from_slice(s.as_bytes())).unwrap_or_default()
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!("{what} must be 1 to {MAX_ID_LEN} printable ASCII characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_structure_picks_each_protocols_message() {
        let m = ProtocolMessages::parse(br#"{"default":"d","sqs":"s","email":{"x":1}}"#).unwrap();
        assert_eq!((m.for_protocol("sqs"), m.for_protocol("http"), m.for_protocol("lambda")), ("s", "d", "d"));
        for bad in [&br#"{"sqs":"s"}"#[..], b"not json", b"[]", br#"{"default":1}"#, br#"{"default":"d","http":{}}"#] {
            assert!(ProtocolMessages::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
