//! Topics with SNS semantics: publish once, fan out to every subscribed queue (with filter
//! policies, raw or enveloped) and HTTP/HTTPS endpoint, FIFO topics into FIFO queues in order,
//! and in-process callback subscribers.
//!
//! A publish and its deliveries are one frame of the shared message log (see
//! [`crate::queue::store::QueueStore::publish`]): they are durable together or not at all, so a
//! crash between "published" and "delivered" cannot exist, and no delivery cursor is needed.
//! Queue deliveries complete before `publish` returns. An HTTP/HTTPS subscription's deliveries
//! go, in that same frame, into an internal queue of its own ([`http`]), from which whoever
//! serves the engine POSTs them, retries them per the subscription's delivery policy, and
//! dead-letters or drops them when the policy runs out.

pub mod attributes;
pub mod binding;
pub mod delivery_policy;
pub mod envelope;
pub mod filter;
pub mod http;
pub mod mqtt_filter;
mod publish;
mod route;
pub mod subscription;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::queue::attributes::{from_stored, Attributes};
use crate::queue::store::QueueStore;
use crate::queue::{SendEntry, SendOptions, MAX_BATCH_ENTRIES};
pub use attributes::TopicAttributes;
pub use binding::{Binding, ExchangeDef, ExchangeKind, RouteFilter};
pub use envelope::{EnvelopeContext, MessageKind};
pub use filter::{FilterPolicy, FilterScope};
pub use http::{FailureOutcome, HttpDeliveries, HttpDelivery, HttpTarget};
pub use subscription::{Protocol, SubscriptionChanges, SubscriptionDef, SubscriptionInfo};
use subscription::{Subscription, Target};

/// Largest published message (body plus attributes), as SNS: 256 KiB.
pub const MAX_PUBLISH_BYTES: usize = 256 << 10;
/// Default number of attempts for a callback subscriber before its dead-letter queue.
pub const DEFAULT_CALLBACK_ATTEMPTS: u32 = 3;

/// A topic's type, fixed at creation, and its content-based deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicConfig {
    /// FIFO topic (name ends in `.fifo`; feeds FIFO queues only).
    pub fifo: bool,
    /// FIFO only: deduplicate on the SHA-256 of the body when no deduplication id is given.
    pub content_based_dedup: bool,
}

impl TopicConfig {
    /// Checks the combination.
    pub fn validate(&self) -> Result<()> {
        if self.content_based_dedup && !self.fifo {
            return Err(Error::InvalidArgument("content-based deduplication is for FIFO topics only".into()));
        }
        Ok(())
    }
}

/// A topic's settings and counts, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Type and deduplication.
    pub config: TopicConfig,
    /// The other attributes.
    pub attributes: TopicAttributes,
    /// Subscriptions that deliver (queues, confirmed HTTP/HTTPS endpoints, callbacks).
    pub subscriptions_confirmed: u64,
    /// HTTP/HTTPS subscriptions waiting for their endpoint to confirm.
    pub subscriptions_pending: u64,
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
    /// The body (for a `MessageStructure=json` publish, its `lambda` or `default` message).
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
    /// A queue of this engine (durable subscription, confirmed at once).
    Queue(String),
    /// An `http://` or `https://` URL (durable subscription). It is pending until the endpoint
    /// confirms it (see [`crate::Engine::confirm_subscription`]); its deliveries are made by
    /// whoever serves the engine (`weir serve`), and wait while nobody does.
    Http(String),
    /// An in-process function. Not durable: it lasts until the engine is dropped and must be
    /// registered again after a restart.
    Callback(Callback),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Queue(q) => write!(f, "Queue({q:?})"),
            Endpoint::Http(url) => write!(f, "Http({url:?})"),
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
    /// Queue subscriptions only.
    pub replay_from_ms: Option<u64>,
    /// Callbacks: attempts before giving up (default 3).
    pub max_attempts: Option<u32>,
    /// The queue that receives what cannot be delivered (SNS's `RedrivePolicy`): a callback's
    /// message once it failed every attempt, an HTTP delivery once its delivery policy ran
    /// out (or the endpoint answered 4xx), a queue delivery whose queue was deleted.
    pub dead_letter_queue: Option<String>,
    /// HTTP/HTTPS: the delivery policy (SNS's `DeliveryPolicy` JSON).
    pub delivery_policy: Option<String>,
}

/// How a published body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageStructure {
    /// The body is the message.
    #[default]
    Plain,
    /// SNS's `MessageStructure=json`: the body is a JSON object whose `default` (a string) is
    /// the message, and whose `sqs`, `http`, `https` and `lambda` strings, when present,
    /// replace it for subscriptions of that protocol (callbacks take `lambda`).
    Json,
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
    /// How the body is read.
    pub message_structure: MessageStructure,
}

/// What a publish returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishResult {
    /// The message id (for a duplicate, the first publish's).
    pub message_id: String,
    /// FIFO topics: the publish's sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Subscriptions that received it (queues, dead-letter queues standing in for deleted
    /// ones, callbacks) or will (HTTP/HTTPS endpoints: queued for delivery).
    pub delivered: usize,
    /// Subscriptions whose filter policy did not match.
    pub filtered: usize,
    /// True if deduplicated: nothing was stored or delivered.
    #[serde(skip)]
    pub duplicate: bool,
}

/// What a topic shares with every other: where envelopes say things are, and the key that
/// signs them.
#[derive(Debug)]
pub(crate) struct TopicEnv {
    pub context: RwLock<EnvelopeContext>,
    pub signing_key: [u8; 32],
}

impl TopicEnv {
    /// The environment of an engine whose secret is `secret`.
    pub fn new(secret: &[u8; 32]) -> TopicEnv {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"weir sns signing key\0");
        h.update(secret);
        TopicEnv { context: RwLock::new(EnvelopeContext::default()), signing_key: h.finalize().into() }
    }
}

/// The settings of a topic that can change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TopicSettings {
    pub config: TopicConfig,
    pub attributes: TopicAttributes,
}

/// An open topic: its settings and subscriptions.
pub struct TopicCell {
    /// Catalog id.
    pub id: u32,
    /// Name.
    pub name: String,
    settings: RwLock<TopicSettings>,
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
        Self::with_attributes(id, name, config, TopicAttributes::default())
    }

    /// A topic with its attributes and no subscriptions.
    pub(crate) fn with_attributes(id: u32, name: String, config: TopicConfig, attributes: TopicAttributes) -> Self {
        TopicCell {
            id,
            name,
            settings: RwLock::new(TopicSettings { config, attributes }),
            subs: RwLock::new(Vec::new()),
            publishing: RwLock::new(()),
            deleted: Default::default(),
        }
    }

    /// The topic's type and deduplication.
    pub fn config(&self) -> TopicConfig {
        self.settings.read().config
    }

    /// The topic's other attributes.
    pub fn attributes(&self) -> TopicAttributes {
        self.settings.read().attributes.clone()
    }

    /// Replaces the settings (the catalog has recorded them).
    pub(crate) fn set_settings(&self, settings: TopicSettings) {
        *self.settings.write() = settings;
    }

    /// Refuses every later publish (the topic was deleted; a handle may live on in a caller).
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    /// Adds a durable subscription (validated already). An HTTP/HTTPS one delivers into the
    /// internal queue `delivery_queue`.
    pub(crate) fn add_durable(&self, def: &SubscriptionDef) -> Result<()> {
        let delivery_queue = def.url.as_ref().map(|_| http::delivery_queue_name(&def.id));
        self.subs.write().push(Arc::new(Subscription::durable(def, delivery_queue)?));
        Ok(())
    }

    /// Adds a durable queue subscription (validated already) with no publish under way, and
    /// returns `next_seq()` as of that moment: publishes below it were written without the
    /// subscription, those from it on are delivered to it.
    pub(crate) fn add_durable_at(&self, def: &SubscriptionDef, next_seq: impl FnOnce() -> u64) -> Result<u64> {
        let _no_publish = self.publishing.write();
        self.add_durable(def)?;
        Ok(next_seq())
    }

    /// Replaces a durable subscription's definition (the catalog has recorded it).
    pub(crate) fn replace_durable(&self, def: &SubscriptionDef) -> Result<()> {
        let mut subs = self.subs.write();
        let Some(slot) = subs.iter_mut().find(|s| s.def.id == def.id) else {
            return Err(Error::NotFound { kind: "subscription", name: def.id.clone() });
        };
        *slot = Arc::new(slot.replaced(def)?);
        Ok(())
    }

    /// Adds an in-process callback subscription.
    pub fn add_callback(&self, id: String, f: Callback, options: &SubscribeOptions) -> Result<()> {
        let def = SubscriptionDef {
            id,
            topic: self.name.clone(),
            queue: String::new(),
            url: None,
            filter_policy: options.filter_policy.clone(),
            filter_body: options.filter_scope == FilterScope::MessageBody,
            raw: true,
            dead_letter_queue: None,
            delivery_policy: None,
            delivery_queue: None,
            token: None,
            pending: false,
            confirmed_authenticated: false,
            binding: None,
        };
        let mut sub = Subscription::durable(&def, None)?;
        sub.target = Target::Callback {
            f,
            max_attempts: options.max_attempts.unwrap_or(DEFAULT_CALLBACK_ATTEMPTS).max(1),
            dead_letter_queue: options.dead_letter_queue.clone(),
        };
        self.subs.write().push(Arc::new(sub));
        Ok(())
    }

    /// Removes a subscription; true if it was here.
    pub fn remove_subscription(&self, id: &str) -> bool {
        let mut subs = self.subs.write();
        let before = subs.len();
        subs.retain(|s| s.def.id != id);
        subs.len() != before
    }

    /// The subscriptions, without pending delivery counts (see
    /// [`crate::Engine::list_subscriptions`] for those).
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.subs.read().iter().map(|s| s.info(None, None)).collect()
    }

    /// True if a subscription with this id exists.
    pub fn has_subscription(&self, id: &str) -> bool {
        self.subs.read().iter().any(|s| s.def.id == id)
    }

    /// A subscription by id.
    pub(crate) fn subscription(&self, id: &str) -> Option<Arc<Subscription>> {
        self.subs.read().iter().find(|s| s.def.id == id).cloned()
    }

    /// Every subscription.
    pub(crate) fn all_subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.subs.read().clone()
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
    pub(crate) env: Arc<TopicEnv>,
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
}

/// Replays past publishes into a new queue subscription (the `replay_from_ms` extension): those
/// appended at or after `from_ms` and below `before_seq` (where live delivery to the
/// subscription began), read from the log in chunks and sent in batches as they come.
pub(crate) fn replay_into(topic: &Topic, def: &SubscriptionDef, from_ms: u64, before_seq: u64) -> Result<u64> {
    let store = &topic.store;
    let Some(cell) = store.cell(&def.queue) else { return Ok(0) };
    let sub = Subscription::durable(def, None)?;
    let mut delivered = 0;
    let mut batch = Vec::new();
    let mut send = |batch: &mut Vec<SendEntry>| -> Result<()> {
        if !batch.is_empty() {
            delivered += store.send(&cell, batch)?.iter().filter(|r| r.is_ok()).count() as u64;
            batch.clear();
        }
        Ok(())
    };
    store.for_each_publish(topic.cell.id, from_ms, before_seq, &mut |record| {
        let Some(m) = topic.replayed_delivery(&sub, &record, cell.id) else { return Ok(()) };
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

/// Counts a subscription's dropped delivery.
pub(crate) fn count_dropped(sub: &Subscription) {
    sub.dropped.fetch_add(1, Ordering::Relaxed);
}
