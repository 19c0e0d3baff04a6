//! What the messaging protocols (AMQP, and later MQTT and STOMP) share above the engine: who
//! consumes which queue and which connection owns an exclusive queue ([`Registry`]), and the
//! one way a consumer waits for messages ([`wait_for_change`]): the engine's async
//! notification (`Queue::changed()`) or the time the next message becomes visible, never a
//! thread per consumer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::Shared;
use crate::queue::Queue;

/// Longest nap of a waiting consumer without a change: a safety net against a clock moved by
/// hand (tests) and a bound on how late an expiry is noticed.
const LONGEST_NAP: Duration = Duration::from_secs(5);

/// Why [`wait_for_change`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Look again: something changed, or a message may have become visible.
    Look,
    /// The consumer was cancelled (or the server stops).
    Cancelled,
}

/// Waits until `queue` may have a visible message: a change the engine signals (create the
/// `changed` future before the receive that found nothing), the time its next delayed or
/// released message becomes visible, or `cancel` turning true.
pub(crate) async fn wait_for_change(
    shared: &Shared,
    queue: &Queue,
    changed: crate::queue::changed::QueueChanged,
    cancel: &mut watch::Receiver<bool>,
) -> Woken {
    let now = shared.engine.clock().now_ms();
    let nap = match queue.next_visible_at_ms() {
        Some(at) => Duration::from_millis(at.saturating_sub(now).max(1)).min(LONGEST_NAP),
        None => LONGEST_NAP,
    };
    tokio::select! {
        _ = changed => Woken::Look,
        _ = tokio::time::sleep(nap) => Woken::Look,
        _ = super::protocols::stopped(cancel) => Woken::Cancelled,
    }
}

/// What [`take_held`] came back with.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Messages, held until acknowledged or released.
    Messages(Vec<crate::queue::ReceivedMessage>),
    /// None now, and the wait for a change is over: work out the room again and take again.
    Again,
    /// The queue is gone: the consumer ends.
    Gone,
    /// The consumer was cancelled (or the server stops).
    Cancelled,
}

/// One round of a consumer: takes up to `max` messages of `queue` as held deliveries, or, if
/// there are none, waits ([`wait_for_change`]: no thread waits) until some may have come or
/// `cancel` turns true. A storage failure is tried again after a pause rather than in a spin.
pub(crate) async fn take_held(
    shared: &std::sync::Arc<Shared>,
    queue: &Queue,
    max: usize,
    cancel: &mut watch::Receiver<bool>,
) -> Taken {
    if *cancel.borrow() {
        return Taken::Cancelled;
    }
    let q = queue.clone();
    let taken = shared
        .blocking(move |_| {
            // Made before the receive, so a message sent right after it still wakes the wait.
            let changed = q.changed();
            q.receive_held(max).map(|got| (got, changed))
        })
        .await;
    match taken {
        Ok(Ok((got, _))) if !got.is_empty() => Taken::Messages(got),
        Ok(Ok((_, changed))) => match wait_for_change(shared, queue, changed, cancel).await {
            Woken::Cancelled => Taken::Cancelled,
            Woken::Look => Taken::Again,
        },
        Ok(Err(crate::Error::NotFound { .. })) | Err(_) => Taken::Gone,
        Ok(Err(_)) => {
            tokio::time::sleep(STORAGE_RETRY).await;
            Taken::Again
        }
    }
}

/// Pause before a consumer tries its queue again after a storage failure.
const STORAGE_RETRY: Duration = Duration::from_millis(100);

/// Consumers and exclusive owners of queues, across every connection of every protocol.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
    next_connection: AtomicU64,
}

#[derive(Debug, Default)]
struct RegistryInner {
    /// Live consumers per queue.
    consumers: HashMap<String, usize>,
    /// Queues with an exclusive consumer.
    exclusive_consumers: HashMap<String, u64>,
    /// Exclusive queues and the connection that owns each.
    owners: HashMap<String, u64>,
}

/// Why a consumer may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumeRefused {
    /// The queue has an exclusive consumer, or one asked to be exclusive where others are.
    ExclusiveConflict,
}

impl Registry {
    /// A number naming a new connection (never 0).
    pub fn new_connection(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Consumers of `queue` now.
    pub fn consumers(&self, queue: &str) -> usize {
        self.inner.lock().consumers.get(queue).copied().unwrap_or(0)
    }

    /// Counts a new consumer of `queue` (of connection `connection`).
    pub fn add_consumer(&self, queue: &str, exclusive: bool, connection: u64) -> Result<(), ConsumeRefused> {
        let mut inner = self.inner.lock();
        let now = inner.consumers.get(queue).copied().unwrap_or(0);
        if inner.exclusive_consumers.contains_key(queue) || (exclusive && now > 0) {
            return Err(ConsumeRefused::ExclusiveConflict);
        }
        if exclusive {
            inner.exclusive_consumers.insert(queue.to_string(), connection);
        }
        *inner.consumers.entry(queue.to_string()).or_default() += 1;
        Ok(())
    }

    /// Forgets a consumer; returns how many are left.
    pub fn remove_consumer(&self, queue: &str, exclusive: bool) -> usize {
        let mut inner = self.inner.lock();
        if exclusive {
            inner.exclusive_consumers.remove(queue);
        }
        let left = match inner.consumers.get_mut(queue) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if left == 0 {
            inner.consumers.remove(queue);
        }
        left
    }

    /// The connection that owns exclusive queue `queue`, if it is one.
    pub fn owner(&self, queue: &str) -> Option<u64> {
        self.inner.lock().owners.get(queue).copied()
    }

    /// Records that `connection` owns exclusive queue `queue`.
    pub fn set_owner(&self, queue: &str, connection: u64) {
        self.inner.lock().owners.insert(queue.to_string(), connection);
    }

    /// Forgets the owner of a deleted queue.
    pub fn forget_queue(&self, queue: &str) {
        let mut inner = self.inner.lock();
        inner.owners.remove(queue);
        inner.consumers.remove(queue);
        inner.exclusive_consumers.remove(queue);
    }

    /// The exclusive queues of `connection` (to delete when it closes), forgotten here.
    pub fn take_owned(&self, connection: u64) -> Vec<String> {
        let mut inner = self.inner.lock();
        let owned: Vec<String> =
            inner.owners.iter().filter(|(_, &c)| c == connection).map(|(q, _)| q.clone()).collect();
        for q in &owned {
            inner.owners.remove(q);
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_and_owners_are_counted_per_queue() {
        let r = Registry::default();
        let (a, b) = (r.new_connection(), r.new_connection());
        assert_ne!(a, b);
        r.add_consumer("q", false, a).unwrap();
        assert_eq!(r.add_consumer("q", true, b), Err(ConsumeRefused::ExclusiveConflict));
        r.add_consumer("q", false, b).unwrap();
        assert_eq!(r.consumers("q"), 2);
        assert_eq!(r.remove_consumer("q", false), 1);
        assert_eq!(r.remove_consumer("q", false), 0);
        r.add_consumer("q", true, a).unwrap();
        assert_eq!(r.add_consumer("q", false, b), Err(ConsumeRefused::ExclusiveConflict));
        assert_eq!(r.remove_consumer("q", true), 0);
        r.set_owner("mine", a);
        r.set_owner("theirs", b);
        assert_eq!(r.owner("mine"), Some(a));
        assert_eq!(r.take_owned(a), vec!["mine".to_string()]);
        assert_eq!(r.owner("mine"), None);
        assert_eq!(r.owner("theirs"), Some(b));
    }
}
