//! Enhanced fan-out: consumers registered with a stream (durable, in the stream's description
//! in the catalog) and their subscriptions to shards, each with a read rate of its own
//! ([`limits::READ_BYTES_PER_S`] per consumer per shard) instead of the shard's shared one.
//!
//! A [`Subscription`] reads forward from its starting position; when it has caught up it
//! waits for [`Subscription::changed`] (new records, a reshard, the stream's deletion) without
//! a thread. It lasts [`SUBSCRIPTION_LIFETIME_MS`], as Kinesis's. A second subscription of the
//! same consumer to the same shard within [`RESUBSCRIBE_AFTER_MS`] is refused
//! ([`Error::InUse`]); after that it takes over, and the first one fails with `InUse`.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::signal::Changed;
use crate::stream::iterator::{ReadBatch, ShardIterator, StartingPosition};
use crate::stream::limits::{self, TokenBucket};
use crate::stream::{ShardMeta, Stream};

/// Most consumers registered with one stream, as Kinesis.
pub const MAX_CONSUMERS: usize = 20;
/// Longest consumer name, as Kinesis.
pub const MAX_CONSUMER_NAME_LEN: usize = 128;
/// How long a new consumer is `CREATING` before it is `ACTIVE` and can subscribe.
pub const CONSUMER_ACTIVATION_MS: u64 = 500;
/// How long a subscription lasts, as Kinesis's (the caller subscribes again to go on).
pub const SUBSCRIPTION_LIFETIME_MS: u64 = 5 * 60_000;
/// How long a subscription holds its consumer's place on its shard against a new one.
pub const RESUBSCRIBE_AFTER_MS: u64 = 5_000;
/// Most bytes one read of a subscription returns: a second of its rate.
pub const MAX_BYTES_PER_EVENT: usize = limits::READ_BYTES_PER_S as usize;

/// A registered consumer, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMeta {
    /// Its name, unique within the stream.
    pub name: String,
    /// When it was registered (ms since the Unix epoch, engine clock).
    pub created_ms: u64,
}

/// Where a consumer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    /// Registered less than [`CONSUMER_ACTIVATION_MS`] ago: it cannot subscribe yet.
    Creating,
    /// Ready.
    Active,
}

impl ConsumerStatus {
    /// Kinesis's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerStatus::Creating => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
        }
    }
}

impl ConsumerMeta {
    /// Its status at `now_ms`.
    pub fn status(&self, now_ms: u64) -> ConsumerStatus {
        if now_ms < self.created_ms.saturating_add(CONSUMER_ACTIVATION_MS) {
            ConsumerStatus::Creating
        } else {
            ConsumerStatus::Active
        }
    }
}

/// Checks a consumer name as Kinesis does: 1 to 128 of `a-z A-Z 0-9 _ . -`.
pub fn validate_consumer_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CONSUMER_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(Error::InvalidName {
            kind: "consumer",
            name: name.chars().take(64).collect(),
            reason: format!("1 to {MAX_CONSUMER_NAME_LEN} of the characters a-z, A-Z, 0-9, '_', '.' and '-'"),
        });
    }
    Ok(())
}

/// One consumer's place on one shard: its read bucket and which subscription holds it.
#[derive(Debug)]
pub(crate) struct Slot {
    bucket: TokenBucket,
    generation: u64,
    started_ms: u64,
}

/// Every consumer's place on every shard of a stream, in memory.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    by_key: Mutex<HashMap<SlotKey, Arc<Mutex<Slot>>>>,
}

/// A consumer's name and a shard id.
type SlotKey = (String, u32);

impl Slots {
    /// Forgets the places of a deregistered consumer.
    pub(crate) fn forget(&self, consumer: &str) {
        self.by_key.lock().retain(|(c, _), _| c != consumer);
    }
}

/// What one read of a subscription returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutRead {
    /// The records (possibly none) and how far behind the shard's tip the reader is.
    pub batch: ReadBatch,
    /// The sequence number the next read starts at (Kinesis's `ContinuationSequenceNumber`).
    pub continuation: u64,
    /// Set once the shard is closed and every record of it was read: its children, where the
    /// reader goes on. The subscription has nothing more to read.
    pub child_shards: Option<Vec<ShardMeta>>,
    /// Set when the consumer's read rate on this shard is spent: read again at this time (ms
    /// since the Unix epoch, engine clock).
    pub throttled_until_ms: Option<u64>,
}

/// A consumer's subscription to one shard. See the module documentation.
#[derive(Debug)]
pub struct Subscription {
    stream: Arc<Stream>,
    consumer: ConsumerMeta,
    iterator: ShardIterator,
    slot: Arc<Mutex<Slot>>,
    generation: u64,
    ends_at_ms: u64,
}

impl Stream {
    /// Subscribes registered consumer `consumer` to shard `shard` from `start`. Fails with
    /// `NotFound` for an unknown consumer or shard, and with [`Error::InUse`] while the
    /// consumer is `CREATING` or subscribed to the shard less than
    /// [`RESUBSCRIBE_AFTER_MS`] ago.
    pub fn subscribe(self: &Arc<Self>, consumer: &str, shard: u32, start: StartingPosition) -> Result<Subscription> {
        self.check_live()?;
        let now = self.env.clock.now_ms();
        let meta = self.fanout_consumer(consumer)?;
        if meta.status(now) == ConsumerStatus::Creating {
            return Err(Error::InUse(format!(
                "consumer {consumer:?} is still being created; subscribe once it is ACTIVE"
            )));
        }
        let iterator = self.iterator(shard, start)?;
        let slot = {
            let mut slots = self.fanout.by_key.lock();
            let slot = slots.entry((consumer.to_string(), shard)).or_insert_with(|| {
                Arc::new(Mutex::new(Slot {
                    bucket: TokenBucket::new(limits::READ_BYTES_PER_S, now),
                    generation: 0,
                    started_ms: 0,
                }))
            });
            Arc::clone(slot)
        };
        let generation = {
            let mut s = slot.lock();
            if s.generation > 0 && now < s.started_ms.saturating_add(RESUBSCRIBE_AFTER_MS) {
                return Err(Error::InUse(format!(
                    "consumer {consumer:?} subscribed to shard {shard} less than {} seconds ago",
                    RESUBSCRIBE_AFTER_MS / 1000
                )));
            }
            s.generation += 1;
            s.started_ms = now;
            s.generation
        };
        Ok(Subscription {
            stream: Arc::clone(self),
            consumer: meta,
            iterator,
            slot,
            generation,
            ends_at_ms: now.saturating_add(SUBSCRIPTION_LIFETIME_MS),
        })
    }

    /// A registered enhanced fan-out consumer by name.
    pub fn fanout_consumer(&self, name: &str) -> Result<ConsumerMeta> {
        self.meta
            .read()
            .consumers
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "consumer", name: format!("{}/{name}", self.name()) })
    }
}

impl Subscription {
    /// Reads what is there (up to 10,000 records and [`MAX_BYTES_PER_EVENT`]) within the
    /// consumer's read rate, and moves past it. Fails with [`Error::InUse`] once another
    /// subscription took over, `NotFound` once the consumer is deregistered, and `Closed`
    /// once the stream is deleted.
    pub fn read(&mut self) -> Result<FanoutRead> {
        self.check_current()?;
        let now = self.stream.env.clock.now_ms();
        if let Some(children) = self.children_if_ended()? {
            let mut read = self.read_nothing(None);
            read.child_shards = Some(children);
            return Ok(read);
        }
        {
            let mut slot = self.slot.lock();
            if !slot.bucket.has(1.0, now) {
                // In debt after a large read: the time at which it is paid.
                let wait_ms = slot.bucket.debt_ms(now).max(1);
                drop(slot);
                return Ok(self.read_nothing(Some(now.saturating_add(wait_ms))));
            }
        }
        let batch =
            self.iterator.next_batch_dedicated(crate::stream::iterator::MAX_RECORDS_PER_READ, MAX_BYTES_PER_EVENT)?;
        let bytes: usize = batch.records.iter().map(|r| r.partition_key.len() + r.data.len()).sum();
        self.slot.lock().bucket.take(bytes as f64, now);
        let child_shards = self.children_if_ended()?;
        Ok(FanoutRead { batch, continuation: self.iterator.position(), child_shards, throttled_until_ms: None })
    }

    fn read_nothing(&self, throttled_until_ms: Option<u64>) -> FanoutRead {
        FanoutRead {
            batch: ReadBatch { records: Vec::new(), behind_records: 0, millis_behind_latest: 0 },
            continuation: self.iterator.position(),
            child_shards: None,
            throttled_until_ms,
        }
    }

    fn check_current(&self) -> Result<()> {
        self.stream.check_live()?;
        let current = self.stream.fanout_consumer(&self.consumer.name)?;
        if current.created_ms != self.consumer.created_ms {
            return Err(Error::NotFound { kind: "consumer", name: self.consumer.name.clone() });
        }
        if self.slot.lock().generation != self.generation {
            return Err(Error::InUse(format!(
                "another subscription of consumer {:?} took over shard {}",
                self.consumer.name,
                self.iterator.shard_id()
            )));
        }
        Ok(())
    }

    fn children_if_ended(&self) -> Result<Option<Vec<ShardMeta>>> {
        let shard = self.iterator.shard_id();
        Ok(match self.stream.shard_end(shard)? {
            Some(end) if self.iterator.position() >= end => Some(self.stream.child_shards(shard)),
            _ => None,
        })
    }

    /// Completes once the shard may have more to read (see [`crate::stream::Shard::changed`]).
    /// Create it before a read that found nothing, then await it.
    pub fn changed(&self) -> Result<Changed> {
        Ok(self.stream.shard(self.iterator.shard_id())?.changed())
    }

    /// When the subscription ends (ms since the Unix epoch, engine clock).
    pub fn ends_at_ms(&self) -> u64 {
        self.ends_at_ms
    }

    /// The shard it reads.
    pub fn shard_id(&self) -> u32 {
        self.iterator.shard_id()
    }

    /// The consumer it reads for.
    pub fn consumer(&self) -> &ConsumerMeta {
        &self.consumer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_follow_kinesis_rules() {
        validate_consumer_name("app-1.v2_x").unwrap();
        for bad in ["", "a b", "a/b", &"x".repeat(129)] {
            assert!(validate_consumer_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_consumer_is_creating_for_a_moment() {
        let c = ConsumerMeta { name: "c".into(), created_ms: 1000 };
        assert_eq!(c.status(1000), ConsumerStatus::Creating);
        assert_eq!(c.status(1000 + CONSUMER_ACTIVATION_MS), ConsumerStatus::Active);
    }
}
