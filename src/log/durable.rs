//! [`Durable`]: the answer of a write that is in the log, to be handed out once it is durable.
//!
//! Every acknowledging call of the engine ends the same way: its frame is written, then the
//! caller waits until the log's mode makes it durable (under `Always`, a group-committed
//! fsync). The `_pending` calls stop before that wait and return it as a `Durable`, which the
//! caller either [waits](Durable::wait) for on its thread (exactly the blocking call) or
//! awaits: then no thread waits at all; the log's sync thread leads the fsync and wakes the
//! task (see [`Log::poll_durable`](super::Log::poll_durable)). A server answers many requests
//! on a few threads that way, without handing each one to a thread that blocks.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use super::Log;
use crate::error::{Error, Result};

/// What owns a log whose writes a [`Durable`] waits for (the queue store, for instance).
pub(crate) trait DurableLog: Send + Sync + 'static {
    /// The log.
    fn log(&self) -> &Log;
}

/// The answer of a write that is in the log but not yet known to be durable: `T` is yours
/// once it is, as the log's durability mode promises. [`Durable::wait`] blocks until then;
/// `.await` waits without a thread (the log's own sync thread runs the fsync). Dropped
/// unawaited, the write still happened (it may or may not survive a crash), but nothing was
/// acknowledged.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use weir::queue::{QueueConfig, SendEntry, SendOptions};
/// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
/// engine.create_queue("jobs", QueueConfig::default())?;
/// let jobs = engine.queue("jobs")?;
/// let entry = SendEntry { body: "resize image 42".into(), options: SendOptions::default() };
/// let pending = jobs.send_batch_pending(&[entry])?; // written, not yet acknowledged
/// let sent = pending.wait()?; // durable: the same as `send_batch`
/// assert!(sent[0].is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "nothing is acknowledged until the write is durable: wait for it or await it"]
pub struct Durable<T> {
    value: Option<T>,
    /// One past the last record the answer depends on (0: depends on none).
    next_seq: u64,
    owner: Arc<dyn DurableLog>,
    /// This future's registration with the log's group commit, once it waited.
    registered: Option<u64>,
}

impl<T> Durable<T> {
    pub(crate) fn new(owner: Arc<dyn DurableLog>, next_seq: u64, value: T) -> Self {
        Durable { value: Some(value), next_seq, owner, registered: None }
    }

    /// Blocks until the write is durable, then returns the answer; fails if the log cannot
    /// make it durable (a failed fsync poisons it).
    pub fn wait(mut self) -> Result<T> {
        self.owner.log().wait_durable(self.next_seq)?;
        self.value.take().ok_or_else(already_taken)
    }
}

impl<T> Durable<T> {
    /// The same wait, handing out `f(answer)` instead of the answer.
    pub fn map<U>(mut self, f: impl FnOnce(T) -> U) -> Durable<U> {
        Durable {
            value: self.value.take().map(f),
            next_seq: self.next_seq,
            owner: Arc::clone(&self.owner),
            registered: self.registered.take(),
        }
    }
}

fn already_taken() -> Error {
    Error::InvalidArgument("a Durable was polled after it completed".into())
}

impl<T: Unpin> Future for Durable<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let owner = &this.owner;
        let polled = owner.log().poll_durable(this.next_seq, &mut this.registered, cx, || {
            let weak: Weak<dyn DurableLog> = Arc::downgrade(owner);
            weak
        });
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => Poll::Ready(result.and_then(|()| this.value.take().ok_or_else(already_taken))),
        }
    }
}

impl<T> Drop for Durable<T> {
    fn drop(&mut self) {
        if let Some(id) = self.registered.take() {
            self.owner.log().cancel_durable(id);
        }
    }
}

impl<T> std::fmt::Debug for Durable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}
