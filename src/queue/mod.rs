//! Queues with SQS semantics: standard (at-least-once) and FIFO (ordered per message group,
//! deduplicated within five minutes), visibility timeouts and receipt handles, delays, long
//! polling, retention and dead-letter queues.
//!
//! Every queue lives in one shared message log (see [`store`]): a message is a record, and so is
//! every change of its state (received, deleted, visibility changed, purged). Each queue keeps
//! an in-memory index ([`state`]) rebuilt from the log on open.

pub mod attempts;
pub mod attributes;
mod broker;
pub mod changed;
pub mod config;
pub mod dedup;
pub mod keyed;
pub mod move_task;
pub(crate) mod pause;
pub mod policy;
pub mod receipt;
pub mod state;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::error::Result;
use crate::log::durable::Durable;
pub use attributes::{AttributeValue, Attributes};
pub use config::{BrokerOptions, DedupScope, FifoThroughputLimit, QueueConfig, RedriveAllowPolicy, RedrivePolicy};
use store::{QueueCell, QueueStore};

/// Most entries in one batch call, as SQS.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Most bytes (bodies plus attributes) in one `send_batch` when the queue's maximum message size
/// is smaller: SQS's 256 KiB batch payload. A queue with a larger maximum allows that much.
pub const MAX_BATCH_BYTES: usize = 256 << 10;
/// Most messages one receive returns, as SQS.
pub const MAX_RECEIVE: usize = 10;

/// Options of one send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Delay before the message becomes visible (standard queues only; overrides the queue's).
    pub delay: Option<Duration>,
    /// Message attributes.
    pub attributes: Attributes,
    /// FIFO: the message group (required).
    pub group: Option<String>,
    /// FIFO: the deduplication id (required unless content-based deduplication is on).
    pub dedup_id: Option<String>,
    /// The AWSTraceHeader system attribute (1 to 1024 printable ASCII characters), returned
    /// with the message.
    pub trace_header: Option<String>,
    /// Who sends it (an account or principal id, 1 to 256 printable ASCII characters), returned
    /// with the message as its sender id.
    pub sender_id: Option<String>,
}

/// One entry of a `send_batch`.
#[derive(Debug, Clone)]
pub struct SendEntry {
    /// The body.
    pub body: Bytes,
    /// Its options.
    pub options: SendOptions,
}

/// What a send returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendResult {
    /// The message id (for a deduplicated send: the first message's).
    pub message_id: String,
    /// FIFO: the message's sequence number (strictly increasing within the queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// True if the send was a duplicate within the deduplication window and stored nothing.
    #[serde(skip)]
    pub duplicate: bool,
}

/// Options of one receive.
#[derive(Debug, Clone, Default)]
pub struct ReceiveOptions {
    /// Most messages to return, 1 to 10 (0 means 1).
    pub max: usize,
    /// Long-poll: wait up to this long for a message (0 to 20 s; default: the queue's setting).
    pub wait: Option<Duration>,
    /// Visibility timeout for these messages (default: the queue's).
    pub visibility_timeout: Option<Duration>,
    /// FIFO: a receive request attempt id (1 to 128 printable ASCII characters). A receive
    /// repeated with the same id within 5 minutes returns the same messages with the same
    /// receipt handles (and restarts their visibility timeout) while they are still in flight
    /// from that receive, untouched; otherwise it receives anew. Kept in memory: a reopen
    /// forgets attempts. Ignored by standard queues.
    pub attempt_id: Option<String>,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedMessage {
    /// The message id.
    pub message_id: String,
    /// Names this delivery: pass it to `delete` or `change_visibility`.
    pub receipt_handle: String,
    /// The body.
    #[serde(skip)]
    pub body: Bytes,
    /// Message attributes.
    pub attributes: Attributes,
    /// How often the message has been received, this time included.
    pub receive_count: u32,
    /// When it was sent (ms since the Unix epoch).
    pub sent_ms: u64,
    /// When it was first received.
    pub first_receive_ms: u64,
    /// FIFO: its group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// FIFO: its sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// FIFO: its deduplication id (as sent, or the body's SHA-256 in hex under content-based
    /// deduplication; a message moved to a dead-letter queue has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
    /// Its AWSTraceHeader system attribute, if it was sent with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
    /// Its sender id, if the sender gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// The queue it was moved to this dead-letter queue from (while that queue exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_source: Option<String>,
}

/// A live message seen without receiving it (for operators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeekedMessage {
    /// The message id.
    pub message_id: String,
    /// The body.
    #[serde(skip)]
    pub body: Bytes,
    /// Its state: "visible", "in_flight" or "delayed".
    pub state: &'static str,
    /// Receives so far.
    pub receive_count: u32,
    /// When it was sent.
    pub sent_ms: u64,
    /// FIFO: its group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A queue's attributes and approximate counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueAttributes {
    /// Name.
    pub name: String,
    /// FIFO queue.
    pub fifo: bool,
    /// Content-based deduplication.
    pub content_based_dedup: bool,
    /// Visibility timeout, seconds.
    pub visibility_timeout_s: u64,
    /// Delivery delay, seconds.
    pub delay_s: u64,
    /// Retention, seconds.
    pub retention_s: u64,
    /// Maximum message size, bytes.
    pub max_message_bytes: usize,
    /// Long-poll wait, seconds.
    pub receive_wait_s: u64,
    /// Dead-letter queue name, if any.
    pub dead_letter_queue: Option<String>,
    /// Max receives before the dead-letter queue.
    pub max_receives: Option<u32>,
    /// FIFO: deduplication per queue or per message group.
    pub dedup_scope: DedupScope,
    /// FIFO: SQS's throughput quota setting.
    pub fifo_throughput_limit: FifoThroughputLimit,
    /// Which queues may use this one as their dead-letter queue.
    pub redrive_allow: RedriveAllowPolicy,
    /// The access policy (JSON), if any.
    pub policy: Option<String>,
    /// SSE-KMS key, if any (kept, not used).
    pub kms_master_key_id: Option<String>,
    /// SSE-KMS data key reuse period, seconds.
    pub kms_data_key_reuse_period_s: u64,
    /// SSE-SQS (kept, not used).
    pub sqs_managed_sse: bool,
    /// Broker settings of a queue declared through AMQP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerOptions>,
    /// When the queue was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When its attributes last changed (ms since the Unix epoch).
    pub last_modified_ms: u64,
    /// Messages visible now.
    pub approximate_visible: u64,
    /// Messages held by receivers.
    pub approximate_in_flight: u64,
    /// Messages not yet visible.
    pub approximate_delayed: u64,
    /// Age of the oldest message, seconds (0 when empty).
    pub oldest_message_age_s: u64,
}

/// What a redrive did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RedriveResult {
    /// Messages moved.
    pub moved: u64,
    /// Messages left in the dead-letter queue (in flight, or with no queue to go back to).
    pub skipped: u64,
}

/// A handle to one queue. Cheap to clone; every method is safe to call from many threads.
#[derive(Clone)]
pub struct Queue {
    pub(crate) store: Arc<QueueStore>,
    pub(crate) cell: Arc<QueueCell>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.cell.name).finish()
    }
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    /// Sends one message; returns once it is durable.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use weir::queue::{QueueConfig, ReceiveOptions, SendOptions};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_queue("jobs", QueueConfig::default())?;
    /// let jobs = engine.queue("jobs")?;
    /// jobs.send(b"resize image 42", SendOptions::default())?;
    /// let got = jobs.receive(ReceiveOptions { max: 10, ..Default::default() })?;
    /// assert_eq!(&got[0].body[..], b"resize image 42");
    /// jobs.delete(&got[0].receipt_handle)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&self, body: &[u8], options: SendOptions) -> Result<SendResult> {
        let entry = SendEntry { body: Bytes::copy_from_slice(body), options };
        let mut results = self.store.send(&self.cell, std::slice::from_ref(&entry))?;
        results.pop().unwrap_or_else(|| Err(crate::Error::InvalidArgument("empty send".into())))
    }

    /// Sends up to 10 messages in one durable write; each entry succeeds or fails on its own.
    pub fn send_batch(&self, entries: &[SendEntry]) -> Result<Vec<Result<SendResult>>> {
        self.store.send(&self.cell, entries)
    }

    /// Receives up to `options.max` messages, long-polling if asked.
    pub fn receive(&self, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        self.store.receive(&self.cell, &options)
    }

    /// [`Queue::send_batch`] without waiting for durability on this thread: the messages are
    /// written, and the answers are handed out by the [`Durable`] once the write is durable
    /// (`.await` it in async code: no thread waits for the fsync). For servers that answer
    /// many clients on a few threads.
    pub fn send_batch_pending(&self, entries: &[SendEntry]) -> Result<Durable<Vec<Result<SendResult>>>> {
        let (results, upto) = self.store.send_unsynced(&self.cell, entries)?;
        Ok(Durable::new(self.store.clone(), upto, results))
    }

    /// One try of [`Queue::receive`] that never waits for a message (`options.wait` is checked,
    /// then ignored: long-poll with [`Queue::changed`]), its messages handed out by the
    /// [`Durable`] once their receive is durable (see [`Queue::send_batch_pending`]).
    pub fn receive_pending(&self, options: ReceiveOptions) -> Result<Durable<Vec<ReceivedMessage>>> {
        let (messages, upto) = self.store.receive_unsynced(&self.cell, &options)?;
        Ok(Durable::new(self.store.clone(), upto, messages))
    }

    /// [`Queue::delete_batch`], its answers handed out by the [`Durable`] once the deletes
    /// are durable (see [`Queue::send_batch_pending`]).
    pub fn delete_batch_pending(&self, receipt_handles: &[&str]) -> Result<Durable<Vec<Result<()>>>> {
        let (results, upto) = self.store.delete_unsynced(&self.cell, receipt_handles)?;
        Ok(Durable::new(self.store.clone(), upto, results))
    }

    /// Deletes the message a receipt handle names.
    pub fn delete(&self, receipt_handle: &str) -> Result<()> {
        single(self.store.delete(&self.cell, &[receipt_handle])?)
    }

    /// Deletes up to 10 messages in one durable write; each entry succeeds or fails on its own.
    pub fn delete_batch(&self, receipt_handles: &[&str]) -> Result<Vec<Result<()>>> {
        self.store.delete(&self.cell, receipt_handles)
    }

    /// Makes an in-flight message visible again after `timeout` (0 to 12 h; 0: now).
    pub fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<()> {
        single(self.store.change_visibility(&self.cell, &[(receipt_handle, timeout)])?)
    }

    /// Changes the visibility of up to 10 messages in one durable write.
    pub fn change_visibility_batch(&self, entries: &[(&str, Duration)]) -> Result<Vec<Result<()>>> {
        self.store.change_visibility(&self.cell, entries)
    }

    /// Deletes every message in the queue, in flight or not. Once a minute at most, as SQS:
    /// sooner fails with [`crate::Error::PurgeInProgress`].
    pub fn purge(&self) -> Result<()> {
        self.store.purge(&self.cell)
    }

    /// The queue's configuration as it is now: what [`Queue::attributes`] returns without the
    /// approximate counts, which cost a pass over the queue's index under its lock. Cheap: for
    /// hot paths (a receive's default wait, a dead-letter lookup).
    pub fn config(&self) -> QueueConfig {
        self.store.config(&self.cell)
    }

    /// Attributes and approximate counts.
    pub fn attributes(&self) -> QueueAttributes {
        self.store.attributes(&self.cell)
    }

    /// A future that completes once something that can make a message visible happens to this
    /// queue after this call: a send, a topic delivery, a visibility change to now, a message
    /// moved in (dead letter, redrive, move task), a delete or purge of a FIFO queue (a group
    /// may unblock), a change of attributes, or the queue's deletion. Messages whose delay or
    /// visibility timeout runs out are not an event: wait for [`Queue::next_visible_at_ms`].
    ///
    /// Create it *before* a receive that found nothing, then await it, so that nothing
    /// happening in between is missed. No thread waits: the future registers its waker.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// use weir::queue::{QueueConfig, SendOptions};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_queue("jobs", QueueConfig::default())?;
    /// let jobs = engine.queue("jobs")?;
    /// let mut changed = Box::pin(jobs.changed());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(changed.as_mut().poll(&mut cx), Poll::Pending);
    /// jobs.send(b"work", SendOptions::default())?;
    /// assert_eq!(changed.as_mut().poll(&mut cx), Poll::Ready(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn changed(&self) -> changed::QueueChanged {
        self.cell.changed.changed()
    }

    /// When the next delayed or in-flight message becomes visible, by the engine clock (ms
    /// since the Unix epoch): now if a receive may find one already (a message no receive has
    /// looked at yet counts, so ask after a receive that found nothing), `None` if no message
    /// waits for a time. Together with [`Queue::changed`] this is what a long poll sleeps on.
    pub fn next_visible_at_ms(&self) -> Option<u64> {
        self.store.next_visible_at_ms(&self.cell)
    }

    /// Up to `limit` live messages in send order, without receiving them.
    pub fn peek(&self, limit: usize) -> Result<Vec<PeekedMessage>> {
        self.store.peek(&self.cell, limit)
    }
}

fn single(mut results: Vec<Result<()>>) -> Result<()> {
    results.pop().unwrap_or(Ok(()))
}
