//! One `basic.consume`: a task that takes messages from its queue as the channel's prefetch
//! allows (held in the engine until acknowledged or the channel closes), and waits on the
//! engine's notification when the queue is empty. No thread waits: the task sleeps on the
//! queue's change signal, the time its next message becomes visible, or its stop.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::channel::{release_all, Core, Unacked};
use super::message::AmqpMessage;
use super::methods::{Delivery, Method};
use crate::queue::{Queue, ReceivedMessage};
use crate::server::messaging::{take_held, Taken};

/// Most messages taken from the queue at once.
const MAX_TAKE: u32 = 64;

/// A running consumer.
pub(crate) struct ConsumerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The queue it consumes.
    pub queue_name: String,
    /// Whether it is the queue's exclusive consumer.
    pub exclusive: bool,
}

impl ConsumerHandle {
    /// Stops it and waits until it has stopped (it delivers nothing after this returns).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Starts a consumer of `queue` on the channel `core`.
pub(crate) fn start(
    core: Arc<Core>,
    queue: Queue,
    queue_name: String,
    tag: Arc<str>,
    no_ack: bool,
    exclusive: bool,
    prefetch: u32,
) -> ConsumerHandle {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(consume(core, queue, queue_name.clone(), tag, no_ack, prefetch, stopped));
    ConsumerHandle { stop, task, queue_name, exclusive }
}

async fn consume(
    core: Arc<Core>,
    queue: Queue,
    name: String,
    tag: Arc<str>,
    no_ack: bool,
    prefetch: u32,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        // Room under the prefetch (and flow), or wait for an ack.
        let room = {
            let room_changed = core.room.notified();
            tokio::pin!(room_changed);
            room_changed.as_mut().enable();
            let room = core.room_for(&*core.deliveries.lock().await, &tag, if no_ack { 0 } else { prefetch });
            if room == 0 {
                tokio::select! {
                    _ = room_changed => {}
                    _ = crate::server::protocols::stopped(&mut stopped) => return,
                }
                continue;
            }
            room.min(MAX_TAKE) as usize
        };
        let got = match take_held(&core.shared, &queue, room, &mut stopped).await {
            Taken::Messages(got) => got,
            Taken::Again => continue,
            Taken::Cancelled => return,
            Taken::Gone => {
                // The queue is gone: tell the client (consumer_cancel_notify).
                cancelled_by_server(&core, &tag).await;
                return;
            }
        };
        if !deliver(&core, &queue, &name, &tag, no_ack, got).await {
            return;
        }
    }
}

/// Sends what was taken; false if the channel closed meanwhile (then it goes back).
async fn deliver(
    core: &Arc<Core>,
    queue: &Queue,
    name: &str,
    tag: &Arc<str>,
    no_ack: bool,
    got: Vec<ReceivedMessage>,
) -> bool {
    let mut d = core.deliveries.lock().await;
    if d.closed {
        drop(d);
        let back = got
            .into_iter()
            .map(|m| Unacked {
                queue: queue.clone(),
                handle: m.receipt_handle.clone(),
                consumer: None,
                message: AmqpMessage::from_received(name, &m),
            })
            .collect();
        let _ = release_all(&core.shared, back).await;
        return false;
    }
    let mut acks = Vec::new();
    for m in got {
        let message = AmqpMessage::from_received(name, &m);
        let unacked = (!no_ack).then(|| Unacked {
            queue: queue.clone(),
            handle: m.receipt_handle.clone(),
            consumer: Some(Arc::clone(tag)),
            message: message.clone(),
        });
        if no_ack {
            acks.push(m.receipt_handle.clone());
        }
        let delivery_tag = core.register(&mut d, unacked);
        let method = Method::BasicDeliver {
            consumer_tag: tag.to_string(),
            delivery: Delivery {
                delivery_tag,
                redelivered: m.receive_count > 1,
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            },
        };
        // Under the lock: tags reach the wire in order.
        core.outbox.content(core.id, &method, &message.properties, &message.body).await;
    }
    drop(d);
    if !acks.is_empty() {
        let q = queue.clone();
        let _ = core
            .shared
            .blocking(move |_| {
                let refs: Vec<&str> = acks.iter().map(String::as_str).collect();
                q.ack(&refs)
            })
            .await;
    }
    true
}

async fn cancelled_by_server(core: &Arc<Core>, tag: &Arc<str>) {
    let d = core.deliveries.lock().await;
    if !d.closed {
        core.outbox.method(core.id, &Method::BasicCancel { consumer_tag: tag.to_string(), no_wait: true }).await;
    }
}
