//! Long polls without a thread each: a `ReceiveMessage` that finds nothing waits on the async
//! side (a timer and a wake-up) and tries again, each try a non-blocking receive on the
//! blocking pool.
//!
//! `wait_for_messages` is the one place that waits. Until the engine offers its own
//! wake-ups (`Queue::changed()`, `Queue::next_visible_at_ms()`), it is woken at once by sends,
//! visibility changes and FIFO deletes that come through this server ([`Waiters`]), and
//! otherwise looks again on a timer that backs off from [`FIRST_NAP`] to [`LONGEST_NAP`]: so a
//! message whose delay or visibility timeout ends, or that the embedding application sends
//! through the library, is found within [`LONGEST_NAP`].

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::context::Ctx;
use super::errors::SqsError;
use crate::queue::{ReceiveOptions, ReceivedMessage};

/// First pause between two looks at an empty queue.
pub const FIRST_NAP: Duration = Duration::from_millis(20);
/// Longest pause between two looks: the most a wake-up the server does not see can be late.
pub const LONGEST_NAP: Duration = Duration::from_millis(500);
/// Entries of the waiter table above which dead ones are swept.
const SWEEP_ABOVE: usize = 1024;

/// Wake-ups for long polls, by queue name, given by this server's own writes.
// TODO(sqs-engine): gone once `Queue::changed()` wakes waiters for every change, whoever
// made it.
#[derive(Debug, Default)]
pub struct Waiters {
    by_queue: Mutex<HashMap<String, Weak<Notify>>>,
}

impl Waiters {
    fn subscribe(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.by_queue.lock();
        if let Some(n) = map.get(queue).and_then(Weak::upgrade) {
            return n;
        }
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let n = Arc::new(Notify::new());
        map.insert(queue.to_string(), Arc::downgrade(&n));
        n
    }

    /// Wakes one long poll waiting on `queue`: something may have become visible. One, not
    /// all: a woken poll that takes a full batch wakes the next (see [`wait_for_messages`]), so
    /// a batch of ten sent messages costs one try, not one per waiting poll.
    pub fn notify(&self, queue: &str) {
        let notify = self.by_queue.lock().get(queue).and_then(Weak::upgrade);
        if let Some(n) = notify {
            n.notify_one();
        }
    }
}

/// Receives from `queue`, waiting up to `wait` for a message (`None`: the queue's
/// `ReceiveMessageWaitTimeSeconds`); answers empty at the deadline or when the server stops.
pub(crate) async fn wait_for_messages(
    ctx: &Ctx,
    queue: &str,
    mut options: ReceiveOptions,
    wait: Option<Duration>,
) -> Result<Vec<ReceivedMessage>, SqsError> {
    // TODO(sqs-engine): with `Queue::changed()` and `Queue::next_visible_at_ms()` (branch
    // sqs-engine), each round becomes, in one blocking call: `let changed = q.changed();`, then
    // `q.receive(..)`, then `q.next_visible_at_ms()`; back on the async side, an empty try
    // awaits `changed` or a sleep until min(deadline, next visible, converted from the
    // engine's clock with `engine.clock().now_ms()`) or the stop. `Waiters`, `notify` calls in
    // the handlers, `FIRST_NAP` and `LONGEST_NAP` then go.
    options.wait = Some(Duration::ZERO);
    let max = options.max.max(1);
    let started = Instant::now();
    let mut deadline = wait.map(|w| started + w);
    let notify = ctx.shared.waiters.subscribe(queue);
    let mut stop = ctx.shared.stop.clone();
    let mut nap = FIRST_NAP;
    loop {
        // Registered before the try, so a send between the try and the wait still wakes it.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let try_options = options.clone();
        let got = ctx.queue(queue, move |_, q| q.receive(try_options)).await?;
        if !got.is_empty() {
            if got.len() >= max {
                // A full batch may have left more behind: pass the wake-up on.
                notify.notify_one();
            }
            return Ok(got);
        }
        let deadline = match deadline {
            Some(d) => d,
            None => {
                // Asked only once a try came back empty: the engine's attributes count the
                // queue's messages, which a busy queue's receives should not pay for.
                // TODO(sqs-engine): an accessor of a queue's configuration alone.
                let secs = ctx.queue(queue, |_, q| Ok(q.attributes().receive_wait_s)).await?;
                *deadline.insert(started + Duration::from_secs(secs))
            }
        };
        let now = Instant::now();
        if now >= deadline || ctx.shared.stopping() {
            return Ok(got);
        }
        let wake_at = deadline.min(now + nap);
        tokio::select! {
            _ = &mut woken => nap = FIRST_NAP,
            _ = tokio::time::sleep_until(wake_at) => nap = (nap * 2).min(LONGEST_NAP),
            _ = stop.wait_for(|stopping| *stopping) => return Ok(Vec::new()),
        }
    }
}
