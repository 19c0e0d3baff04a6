//! Long polls without a thread each: a `ReceiveMessage` that finds nothing waits on the async
//! side and tries again, each try one engine call on the request's thread whose durability
//! is awaited (see `Ctx::queue_pending`).
//!
//! `wait_for_messages` is the one place that waits. A try takes the queue's
//! [`Queue::changed`](crate::queue::Queue::changed) future *before* it receives, so nothing
//! that happens between the receive and the wait is missed, and asks
//! [`Queue::next_visible_at_ms`](crate::queue::Queue::next_visible_at_ms) after a receive that
//! found nothing. The poll then sleeps until the first of: a change of the queue (a send from
//! any connection or from the embedding application, a visibility change to now, a message
//! moved in, a FIFO group unblocked, new attributes, the queue's deletion), the time the next
//! delayed or in-flight message becomes visible, its deadline, or the server's stop. A waiting
//! poll holds a registered waker and a timer, never a thread.

use std::time::Duration;

use tokio::time::Instant;

use super::context::Ctx;
use super::errors::SqsError;
use crate::queue::{ReceiveOptions, ReceivedMessage};

/// Longest pause after tries that came back empty although the engine said a message may be
/// visible (a race with another receiver): the poll backs off to this instead of spinning.
const LONGEST_RETRY_NAP: Duration = Duration::from_millis(50);

/// Receives from `queue`, waiting up to `wait` for a message (`None`: the queue's
/// `ReceiveMessageWaitTimeSeconds`); answers empty at the deadline or when the server stops.
pub(crate) async fn wait_for_messages(
    ctx: &Ctx,
    queue: &str,
    mut options: ReceiveOptions,
    wait: Option<Duration>,
) -> Result<Vec<ReceivedMessage>, SqsError> {
    options.wait = Some(Duration::ZERO);
    let started = Instant::now();
    let mut deadline = wait.map(|w| started + w);
    let mut stop = ctx.shared.stop.clone();
    let mut retry_nap = Duration::ZERO;
    loop {
        let try_options = options.clone();
        let (got, changed, q) = ctx
            .queue_pending(queue, move |_, q| {
                let changed = q.changed();
                Ok(q.receive_pending(try_options)?.map(|got| (got, changed, q)))
            })
            .await?;
        if !got.is_empty() {
            return Ok(got);
        }
        // Asked only once a try came back empty (neither blocks: each takes the queue's lock
        // for a moment), and the default wait without counting messages.
        let now_ms = ctx.shared.engine.clock().now_ms();
        let next_visible_in = q.next_visible_at_ms().map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
        let default_wait = deadline.is_none().then(|| q.config().receive_wait);
        let deadline = *deadline.get_or_insert_with(|| started + default_wait.unwrap_or_default());
        let now = Instant::now();
        if now >= deadline || ctx.shared.stopping() {
            return Ok(Vec::new());
        }
        let mut wake_at = deadline;
        if let Some(next) = next_visible_in {
            // "Visible now" right after an empty try: another receiver was quicker, or a
            // message arrived in between. Try again at once, then back off.
            let next = if next.is_zero() {
                let nap = retry_nap;
                retry_nap = (retry_nap * 2).clamp(Duration::from_millis(1), LONGEST_RETRY_NAP);
                nap
            } else {
                retry_nap = Duration::ZERO;
                next
            };
            wake_at = wake_at.min(now + next);
        } else {
            retry_nap = Duration::ZERO;
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = stop.wait_for(|stopping| *stopping) => return Ok(Vec::new()),
        }
    }
}
