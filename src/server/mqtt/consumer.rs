//! A session's consumer of one queue (its own, or a shared subscription's): takes held
//! messages while the client's receive window has room and hands them to the connection. Waits
//! on the engine's change signal (`messaging::wait_for_change`), never on a thread.

use std::sync::Arc;

use tokio::sync::{mpsc, watch, Semaphore};

use crate::queue::{Queue, ReceivedMessage};
use crate::server::messaging::{wait_for_change, Woken};
use crate::server::Shared;

/// Most messages taken from the engine at once.
const MAX_TAKE: u32 = 64;

/// A message taken for the client, with where it came from.
pub(crate) struct Taken {
    pub queue: Queue,
    /// The shared subscription's filter text (`$share/...`), or `None` for the session queue.
    pub shared: Option<String>,
    pub message: ReceivedMessage,
}

/// Takes messages from `queue` until `stop` is set or the connection's receiver is gone. Each
/// message takes one permit of `window` (given back when the client has acknowledged it).
pub(crate) async fn run(
    shared: Arc<Shared>,
    queue: Queue,
    shared_filter: Option<String>,
    window: Arc<Semaphore>,
    out: mpsc::Sender<Taken>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            p = window.acquire() => match p { Ok(p) => p, Err(_) => return },
            _ = crate::server::protocols::stopped(&mut stop) => return,
        };
        first.forget();
        let mut room = 1;
        while room < MAX_TAKE {
            match window.try_acquire() {
                Ok(p) => {
                    p.forget();
                    room += 1;
                }
                Err(_) => break,
            }
        }
        let q = queue.clone();
        let taken = shared
            .blocking(move |_| {
                let changed = q.changed();
                q.receive_held(room as usize).map(|got| (got, changed))
            })
            .await;
        let (got, changed) = match taken {
            Ok(Ok(pair)) => pair,
            // The queue is gone (the session was deleted) or the engine failed: stop.
            _ => {
                window.add_permits(room as usize);
                return;
            }
        };
        window.add_permits(room as usize - got.len());
        if got.is_empty() {
            if wait_for_change(&shared, &queue, changed, &mut stop).await == Woken::Cancelled {
                return;
            }
            continue;
        }
        let mut got = got.into_iter();
        while let Some(message) = got.next() {
            let taken = Taken { queue: queue.clone(), shared: shared_filter.clone(), message };
            if let Err(mpsc::error::SendError(t)) = out.send(taken).await {
                // The connection is gone: what was taken goes back to the head of its queue.
                let handles: Vec<String> = std::iter::once(t.message).chain(got).map(|m| m.receipt_handle).collect();
                let q = t.queue.clone();
                let _ = shared
                    .blocking(move |_| q.release_to_head(&handles.iter().map(String::as_str).collect::<Vec<_>>()))
                    .await;
                return;
            }
        }
    }
}
