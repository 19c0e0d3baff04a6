//! What a message broker (AMQP, and the other open protocols) does with a queue beyond SQS:
//! sends of any bytes, deliveries held as long as a consumer's channel lives, release to the
//! head of the queue, and acknowledgements of any number of messages. See
//! [`crate::queue::store::BrokerMessage`] and ARCHITECTURE.md ("AMQP on the engine").

use crate::error::Result;
use crate::queue::store::{single, BrokerMessage};
use crate::queue::{Queue, ReceivedMessage};

impl Queue {
    /// Sends one message of any bytes (an empty body too) with its attributes; returns once it
    /// is durable. `Ok(false)` if the queue refused it (larger than its maximum message size).
    /// A queue with a length limit drops its oldest ready messages to make room.
    pub fn send_broker(&self, message: BrokerMessage) -> Result<bool> {
        Ok(self.store.deliver(&[single(&self.cell, message)])?.first().copied().unwrap_or(0) > 0)
    }

    /// Sends several messages in one durable write (see [`Queue::send_broker`]); per message,
    /// whether the queue took it.
    pub fn send_broker_batch(&self, messages: Vec<BrokerMessage>) -> Result<Vec<bool>> {
        let items: Vec<_> = messages.into_iter().map(|m| single(&self.cell, m)).collect();
        Ok(self.store.deliver(&items)?.into_iter().map(|n| n > 0).collect())
    }

    /// Receives up to `max` visible messages without waiting and holds them until
    /// [`Queue::ack`] or [`Queue::release_to_head`]: no visibility timeout runs out on them.
    /// Whoever holds them is gone when the engine closes, so the next open makes them visible
    /// again. A message delivered before comes with a receive count above 1.
    pub fn receive_held(&self, max: usize) -> Result<Vec<ReceivedMessage>> {
        self.store.receive_held(&self.cell, max)
    }

    /// Makes in-flight messages visible again at once, at the head of the queue in their
    /// original order: the next receive takes them first (a broker's requeue). Per-handle
    /// results.
    pub fn release_to_head(&self, receipt_handles: &[&str]) -> Result<Vec<Result<()>>> {
        self.store.release_to_head(&self.cell, receipt_handles)
    }

    /// Deletes the messages of any number of receipt handles, durably (a broker's
    /// acknowledgement). Per-handle results.
    pub fn ack(&self, receipt_handles: &[&str]) -> Result<Vec<Result<()>>> {
        self.store.ack(&self.cell, receipt_handles)
    }

    /// Deletes the messages ready now, leaving those in flight (a broker's purge; no SQS
    /// once-a-minute limit). Returns how many.
    pub fn purge_ready(&self) -> Result<u64> {
        self.store.purge_ready(&self.cell)
    }

    /// Messages ready now and messages in flight (exact, unlike the attributes' approximate
    /// counts only in name).
    pub fn ready_and_in_flight(&self) -> (u64, u64) {
        self.store.ready_and_in_flight(&self.cell)
    }
}
