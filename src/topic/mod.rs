//! Topics with SNS semantics: publish once, fan out to every subscribed queue (with filter
//! policies, raw or enveloped), FIFO topics into FIFO queues in order, and in-process callback
//! subscribers.
//!
//! A publish and its deliveries are one frame of the shared message log (see
//! [`crate::queue::store::QueueStore::publish`]): they are durable together or not at all, so a
//! crash between "published" and "delivered" cannot exist, and no delivery cursor is needed.
//! Deliveries complete before `publish` returns; there is no asynchronous mode.

pub mod binding;
pub mod envelope;
pub mod filter;
mod route;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::queue_record::{MessageRecord, PublishRecord, MAX_ID_LEN, MAX_SUBJECT_LEN, OWN_SEQ};
use crate::queue::attributes::{self, from_stored, to_stored, Attributes};
use crate::queue::dedup::digest;
use crate::queue::store::{format_id, PublishWrite, QueueStore};
use crate::queue::{SendEntry, SendOptions, MAX_BATCH_ENTRIES};
pub use binding::{Binding, ExchangeDef, ExchangeKind, RouteFilter};
pub use filter::{FilterPolicy, FilterScope};

/// Largest published message (body plus attributes), as SNS: 256 KiB.
pub const MAX_PUBLISH_BYTES: usize = 256 << 10;
/// Default number of attempts for a callback subscriber before its dead-letter queue.
pub const DEFAULT_CALLBACK_ATTEMPTS: u32 = 3;

/// A topic's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicConfig {
    /// FIFO topic (name ends in `.fifo`; feeds FIFO queues only).
    pub fifo: bool,
    /// FIFO only: deduplicate on the SHA-256 of the body when no deduplication id is given.
    pub content_based_dedup: bool,
}

/// What a callback subscriber is given.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Topic name.
    pub topic: String,
    /// Message id of the publish.
    pub message_id: String,
    /// Subject, if any.
    pub subject: Option<String>,
    /// The body.
    pub body: Bytes,
    /// Message attributes.
    pub attributes: Attributes,
    /// FIFO: the message group.
    pub group: Option<String>,
}

/// A function called with each matching publish, like a Lambda subscription. An `Err` is
/// retried; after the last attempt the message goes to the subscription's dead-letter queue.
pub type Callback = Arc<dyn Fn(&Notification) -> std::result::Result<(), String> + Send + Sync>;

/// Where a subscription delivers.
#[derive(Clone)]
pub enum Endpoint {
    /// A queue of this engine (durable subscription).
    Queue(String),
    /// An in-process function. Not durable: it lasts until the engine is dropped and must be
    /// registered again after a restart.
    Callback(Callback),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Queue(q) => write!(f, "Queue({q:?})"),
            Endpoint::Callback(_) => write!(f, "Callback"),
        }
    }
}

/// Options of a subscription.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// An SNS filter policy (JSON); messages that do not match are counted, not delivered.
    pub filter_policy: Option<String>,
    /// Whether the policy looks at message attributes (default) or the JSON body.
    pub filter_scope: FilterScope,
    /// Deliver the body as is (and attributes as message attributes) instead of an envelope.
    pub raw: bool,
    /// Extension: deliver the publishes the message log still holds from this time on
    /// (milliseconds since the epoch) when subscribing. At-least-once; SNS has no such option.
    pub replay_from_ms: Option<u64>,
    /// Callbacks: attempts before giving up (default 3).
    pub max_attempts: Option<u32>,
    /// Callbacks: queue that receives messages the callback kept failing on.
    pub dead_letter_queue: Option<String>,
}

/// Options of one publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Message attributes (filter policies look at them).
    pub attributes: Attributes,
    /// FIFO topics: the message group (required).
    pub group: Option<String>,
    /// FIFO topics: deduplication id (required unless content-based deduplication is on).
    pub dedup_id: Option<String>,
    /// Subject, for envelopes (at most 100 printable characters).
    pub subject: Option<String>,
}

/// What a publish returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishResult {
    /// The message id (for a duplicate, the first publish's).
    pub message_id: String,
    /// FIFO topics: the publish's sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Subscriptions that received it (queues and callbacks).
    pub delivered: usize,
    /// Subscriptions whose filter policy did not match.
    pub filtered: usize,
    /// True if deduplicated: nothing was stored or delivered.
    #[serde(skip)]
    pub duplicate: bool,
}

/// A subscription as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    /// Its id (pass it to `unsubscribe`).
    pub subscription_id: String,
    /// Topic name.
    pub topic: String,
    /// `queue:NAME` or `callback`.
    pub endpoint: String,
    /// The filter policy, if any.
    pub filter_policy: Option<String>,
    /// `attributes` or `body`.
    pub filter_scope: &'static str,
    /// Raw delivery.
    pub raw: bool,
    /// Messages the policy filtered out since the engine was opened.
    pub filtered: u64,
}

/// A durable queue subscription, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDef {
    /// Id.
    pub id: String,
    /// Topic name.
    pub topic: String,
    /// Queue name.
    pub queue: String,
    /// Filter policy JSON.
    pub filter_policy: Option<String>,
    /// True for body scope.
    #[serde(default)]
    pub filter_body: bool,
    /// Raw delivery.
    pub raw: bool,
    /// An exchange's binding: the subscription takes only what its filter matches of the
    /// routing key and headers a message is routed with ([`Topic::route_targets`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

enum Target {
    Queue(String),
    Callback { f: Callback, max_attempts: u32, dead_letter_queue: Option<String> },
}

struct Subscription {
    id: String,
    target: Target,
    policy: Option<FilterPolicy>,
    raw: bool,
    filtered: AtomicU64,
    binding: Option<Binding>,
}

impl Subscription {
    /// A publish without routing information: routed with an empty routing key and no headers.
    fn matches(&self, attributes: &Attributes, body: &[u8]) -> bool {
        if self.binding.as_ref().is_some_and(|b| !b.matches("", &[])) {
            return false;
        }
        self.policy_matches(attributes, body)
    }

    fn policy_matches(&self, attributes: &Attributes, body: &[u8]) -> bool {
        let Some(policy) = &self.policy else { return true };
        match policy.scope() {
            FilterScope::MessageBody => policy.matches_body(body),
            FilterScope::MessageAttributes => policy.matches_attributes(&filter_attributes(attributes)),
        }
    }

    fn info(&self, topic: &str) -> SubscriptionInfo {
        SubscriptionInfo {
            subscription_id: self.id.clone(),
            topic: topic.to_string(),
            endpoint: match &self.target {
                Target::Queue(q) => format!("queue:{q}"),
                Target::Callback { .. } => "callback".into(),
            },
            filter_policy: self.policy.as_ref().map(|p| p.source().to_string()),
            filter_scope: match self.policy.as_ref().map(FilterPolicy::scope) {
                Some(FilterScope::MessageBody) => "body",
                _ => "attributes",
            },
            raw: self.raw,
            filtered: self.filtered.load(Ordering::Relaxed),
        }
    }
}

fn filter_attributes(attributes: &Attributes) -> BTreeMap<String, filter::AttrValue> {
    attributes
        .iter()
        .map(|(k, v)| {
            // A custom data type (`Number.int`) filters as its base type.
            let v = match (v.base_type(), v.text()) {
                ("String", Some(s)) => filter::AttrValue::String(s.to_string()),
                ("Number", Some(n)) => filter::AttrValue::Number(n.to_string()),
                _ => filter::AttrValue::Binary(v.as_bytes().to_vec()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// An open topic: its settings and subscriptions.
pub struct TopicCell {
    /// Catalog id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Settings.
    pub config: TopicConfig,
    subs: RwLock<Vec<Arc<Subscription>>>,
    /// Held shared by a publish from reading `subs` until its records are written, and
    /// exclusively while a subscription with replay is added: every publish is then either
    /// written before the replay's bound (and replayed) or sees the subscription (and is
    /// delivered live), never both or neither.
    publishing: RwLock<()>,
    /// Set when the topic is deleted: handles kept past that publish nothing.
    deleted: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TopicCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicCell").field("name", &self.name).finish()
    }
}

impl TopicCell {
    /// A topic with no subscriptions.
    pub fn new(id: u32, name: String, config: TopicConfig) -> Self {
        TopicCell {
            id,
            name,
            config,
            subs: RwLock::new(Vec::new()),
            publishing: RwLock::new(()),
            deleted: Default::default(),
        }
    }

    /// Refuses every later publish (the topic was deleted; a handle may live on in a caller).
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    /// Adds a durable queue subscription (validated already).
    pub fn add_queue_subscription(&self, def: &SubscriptionDef) -> Result<()> {
        let scope = if def.filter_body { FilterScope::MessageBody } else { FilterScope::MessageAttributes };
        let policy = parse_policy(def.filter_policy.as_deref(), scope)?;
        self.subs.write().push(Arc::new(Subscription {
            id: def.id.clone(),
            target: Target::Queue(def.queue.clone()),
            policy,
            raw: def.raw,
            filtered: AtomicU64::new(0),
            binding: def.binding.clone(),
        }));
        Ok(())
    }

    /// Adds a durable queue subscription (validated already) with no publish under way, and
    /// returns `next_seq()` as of that moment: publishes below it were written without the
    /// subscription, those from it on are delivered to it.
    pub(crate) fn add_queue_subscription_at(
        &self,
        def: &SubscriptionDef,
        next_seq: impl FnOnce() -> u64,
    ) -> Result<u64> {
        let _no_publish = self.publishing.write();
        self.add_queue_subscription(def)?;
        Ok(next_seq())
    }

    /// Adds an in-process callback subscription.
    pub fn add_callback(&self, id: String, f: Callback, options: &SubscribeOptions) -> Result<()> {
        let policy = parse_policy(options.filter_policy.as_deref(), options.filter_scope)?;
        self.subs.write().push(Arc::new(Subscription {
            id,
            target: Target::Callback {
                f,
                max_attempts: options.max_attempts.unwrap_or(DEFAULT_CALLBACK_ATTEMPTS).max(1),
                dead_letter_queue: options.dead_letter_queue.clone(),
            },
            policy,
            raw: true,
            filtered: AtomicU64::new(0),
            binding: None,
        }));
        Ok(())
    }

    /// Removes a subscription; true if it was here.
    pub fn remove_subscription(&self, id: &str) -> bool {
        let mut subs = self.subs.write();
        let before = subs.len();
        subs.retain(|s| s.id != id);
        subs.len() != before
    }

    /// The subscriptions.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.subs.read().iter().map(|s| s.info(&self.name)).collect()
    }

    /// True if a subscription with this id exists.
    pub fn has_subscription(&self, id: &str) -> bool {
        self.subs.read().iter().any(|s| s.id == id)
    }
}

/// Parses a policy, with the reason in the error.
pub fn parse_policy(json: Option<&str>, scope: FilterScope) -> Result<Option<FilterPolicy>> {
    json.map(|j| FilterPolicy::parse(j, scope).map_err(|e| Error::InvalidArgument(format!("filter policy: {e}"))))
        .transpose()
}

/// One entry of `publish_batch`.
#[derive(Debug, Clone)]
pub struct PublishEntry {
    /// The body (UTF-8, as SNS requires).
    pub body: Bytes,
    /// Its options.
    pub options: PublishOptions,
}

/// A handle to one topic.
#[derive(Clone)]
pub struct Topic {
    pub(crate) store: Arc<QueueStore>,
    pub(crate) cell: Arc<TopicCell>,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic").field("name", &self.cell.name).finish()
    }
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.cell.name
    }

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
        let scope = self.store.arn_scope();
        let delivery = crate::policy::TopicDelivery { scope: &scope, topic: &self.cell.name, now_ms: now };
        let publishing = self.cell.publishing.read();
        let subs: Vec<Arc<Subscription>> = self.cell.subs.read().clone();
        let mut results: Vec<Option<Result<PublishResult>>> = Vec::with_capacity(entries.len());
        let mut items = Vec::new();
        let mut pending = Vec::new(); // (entry index, filtered count, matched callbacks)
        for (i, entry) in entries.iter().enumerate() {
            if let Err(e) = self.check(entry) {
                results.push(Some(Err(e)));
                continue;
            }
            let record = PublishRecord {
                topic: self.cell.id,
                message_id: self.store.new_message_id(),
                sent_ms: now,
                group: bytes_of(&entry.options.group),
                dedup: self.dedup_id(entry).map(Bytes::from).unwrap_or_default(),
                subject: bytes_of(&entry.options.subject),
                attributes: to_stored(&entry.options.attributes),
                body: entry.body.clone(),
            };
            let mut deliveries = Vec::new();
            let mut filtered = 0;
            let mut callbacks = Vec::new();
            for sub in &subs {
                if !sub.matches(&entry.options.attributes, &entry.body) {
                    sub.filtered.fetch_add(1, Ordering::Relaxed);
                    filtered += 1;
                    continue;
                }
                match &sub.target {
                    Target::Queue(q) => {
                        // Cross-service delivery: the queue's access policy (or its absence:
                        // the owner's queue) must let this topic send.
                        let allowed = |cell: &crate::queue::store::QueueCell| {
                            let policy = cell.state.lock().config.policy.clone();
                            delivery.allowed(q, policy.as_deref())
                        };
                        if let Some(cell) = self.store.cell(q).filter(|c| allowed(c)) {
                            let message = self.delivery(&record, sub.raw, cell.id, now);
                            deliveries.push((cell, message));
                        }
                    }
                    Target::Callback { .. } => callbacks.push(Arc::clone(sub)),
                }
            }
            let dedup = (!record.dedup.is_empty()).then(|| digest(&record.dedup));
            items.push((PublishWrite { record, deliveries }, dedup));
            pending.push((i, filtered, callbacks));
            results.push(None);
        }
        let records: Vec<PublishRecord> = items.iter().map(|(w, _)| w.record.clone()).collect();
        let outcomes = if items.is_empty() { Vec::new() } else { self.store.publish(self.cell.id, items)? };
        drop(publishing);
        for (((i, filtered, callbacks), outcome), record) in pending.into_iter().zip(outcomes).zip(records) {
            let mut delivered = outcome.delivered;
            if !outcome.duplicate {
                for sub in &callbacks {
                    if self.call(sub, &record) {
                        delivered += 1;
                    }
                }
            }
            results[i] = Some(Ok(PublishResult {
                message_id: format_id(&outcome.message_id),
                sequence: self.cell.config.fifo.then_some(outcome.seq),
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

    fn check(&self, entry: &PublishEntry) -> Result<()> {
        if entry.body.is_empty() {
            return Err(Error::InvalidArgument("a message body may not be empty".into()));
        }
        if std::str::from_utf8(&entry.body).is_err() {
            return Err(Error::InvalidArgument("a published body must be UTF-8 text, as SNS requires".into()));
        }
        let size = entry.body.len() + attributes::validate(&entry.options.attributes)?;
        if size > MAX_PUBLISH_BYTES {
            return Err(Error::TooLarge { what: "published message", size, limit: MAX_PUBLISH_BYTES });
        }
        let o = &entry.options;
        if let Some(subject) = &o.subject {
            if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN || subject.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "a subject is 1 to {MAX_SUBJECT_LEN} printable characters"
                )));
            }
        }
        if self.cell.config.fifo {
            let group = o
                .group
                .as_deref()
                .ok_or_else(|| Error::InvalidArgument("a FIFO publish needs a message group id".into()))?;
            check_id("message group id", group)?;
            match o.dedup_id.as_deref() {
                Some(d) => check_id("deduplication id", d)?,
                None if self.cell.config.content_based_dedup => {}
                None => {
                    return Err(Error::InvalidArgument(
                        "a FIFO publish needs a deduplication id unless content-based deduplication is on".into(),
                    ))
                }
            }
        } else if o.group.is_some() || o.dedup_id.is_some() {
            return Err(Error::InvalidArgument("message group and deduplication ids are for FIFO topics only".into()));
        }
        Ok(())
    }

    fn dedup_id(&self, entry: &PublishEntry) -> Option<Vec<u8>> {
        if !self.cell.config.fifo {
            return None;
        }
        match &entry.options.dedup_id {
            Some(d) => Some(d.as_bytes().to_vec()),
            None if self.cell.config.content_based_dedup => {
                Some(crate::text::hex(&Sha256::digest(&entry.body)).into_bytes())
            }
            None => None,
        }
    }

    /// The message a queue receives for a publish.
    fn delivery(&self, record: &PublishRecord, raw: bool, queue: u32, now: u64) -> MessageRecord {
        let (body, attributes) = if raw {
            (record.body.clone(), record.attributes.clone())
        } else {
            (Bytes::from(envelope::envelope(&self.cell.name, record, None)), Vec::new())
        };
        MessageRecord {
            queue,
            key: OWN_SEQ,
            message_id: self.store.new_message_id(),
            sent_ms: now,
            visible_at_ms: now,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: record.group.clone(),
            dedup: record.dedup.clone(),
            trace_header: Bytes::new(),
            sender_id: Bytes::new(),
            attributes,
            body,
        }
    }

    /// Calls a callback subscriber with retries; after the last failure, sends the message to
    /// its dead-letter queue if it has one. True if the callback took it.
    fn call(&self, sub: &Subscription, record: &PublishRecord) -> bool {
        let Target::Callback { f, max_attempts, dead_letter_queue } = &sub.target else { return false };
        let note = Notification {
            topic: self.cell.name.clone(),
            message_id: format_id(&record.message_id),
            subject: (!record.subject.is_empty()).then(|| String::from_utf8_lossy(&record.subject).into_owned()),
            body: record.body.clone(),
            attributes: from_stored(&record.attributes),
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

fn bytes_of(s: &Option<String>) -> Bytes {
    s.as_ref().map(|s| Bytes::copy_from_slice(s.as_bytes())).unwrap_or_default()
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!("{what} must be 1 to {MAX_ID_LEN} printable ASCII characters")));
    }
    Ok(())
}

/// Replays past publishes into a new queue subscription (the `replay_from_ms` extension): those
/// appended at or after `from_ms` and below `before_seq` (where live delivery to the
/// subscription began), read from the log in chunks and sent in batches as they come.
pub fn replay_into(
    store: &Arc<QueueStore>,
    topic: &TopicCell,
    def: &SubscriptionDef,
    from_ms: u64,
    before_seq: u64,
) -> Result<u64> {
    let scope = if def.filter_body { FilterScope::MessageBody } else { FilterScope::MessageAttributes };
    let policy = parse_policy(def.filter_policy.as_deref(), scope)?;
    let Some(cell) = store.cell(&def.queue) else { return Ok(0) };
    let handle =
        Topic { store: Arc::clone(store), cell: Arc::new(TopicCell::new(topic.id, topic.name.clone(), topic.config)) };
    let sub = Subscription {
        id: String::new(),
        target: Target::Queue(String::new()),
        policy,
        raw: def.raw,
        filtered: AtomicU64::new(0),
        binding: def.binding.clone(),
    };
    let mut delivered = 0;
    let mut batch = Vec::new();
    let mut send = |batch: &mut Vec<SendEntry>| -> Result<()> {
        if !batch.is_empty() {
            delivered += store.send(&cell, batch)?.iter().filter(|r| r.is_ok()).count() as u64;
            batch.clear();
        }
        Ok(())
    };
    store.for_each_publish(topic.id, from_ms, before_seq, &mut |record| {
        if !sub.matches(&from_stored(&record.attributes), &record.body) {
            return Ok(());
        }
        let m = handle.delivery(&record, def.raw, cell.id, 0);
        let options = SendOptions {
            attributes: from_stored(&m.attributes),
            group: (!m.group.is_empty()).then(|| String::from_utf8_lossy(&m.group).into_owned()),
            dedup_id: (!m.dedup.is_empty()).then(|| String::from_utf8_lossy(&m.dedup).into_owned()),
            ..SendOptions::default()
        };
        batch.push(SendEntry { body: m.body, options });
        if batch.len() == MAX_BATCH_ENTRIES {
            send(&mut batch)?;
        }
        Ok(())
    })?;
    send(&mut batch)?;
    Ok(delivered)
}
