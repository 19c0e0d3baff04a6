//! One SUBSCRIBE: a task that takes messages from its queue as its ack mode and prefetch
//! allow (held in the engine until acknowledged, released when the subscription or the
//! connection ends), and waits on the engine's notification when the queue is empty. No
//! thread waits: the task sleeps on the queue's change signal, the time its next message
//! becomes visible, or its stop.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::codec::{self, Command, Frame, Version};
use super::deliveries::{Deliveries, Unacked};
use super::destination::Destination;
use super::{message, StompError};
use crate::queue::{Queue, ReceivedMessage};
use crate::server::messaging::{take_held, Taken};
use crate::server::Shared;

/// Most messages taken from the queue at once.
const MAX_TAKE: usize = 64;
/// Unacknowledged messages a `client` or `client-individual` subscription may have when it
/// does not say (`prefetch-count`, RabbitMQ's header).
pub const DEFAULT_PREFETCH: usize = 100;

/// How a subscription's messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckMode {
    /// Acknowledged by sending them.
    Auto,
    /// An ACK acknowledges every message of the subscription up to the one it names.
    Client,
    /// An ACK acknowledges the one message it names.
    ClientIndividual,
}

impl AckMode {
    /// Reads an `ack` header (absent: `auto`).
    pub fn parse(header: Option<&str>) -> Result<AckMode, StompError> {
        match header {
            None | Some("auto") => Ok(AckMode::Auto),
            Some("client") => Ok(AckMode::Client),
            Some("client-individual") => Ok(AckMode::ClientIndividual),
            Some(other) => Err(StompError::new(
                "invalid ack mode",
                format!("ack:{other}: the modes are auto, client and client-individual"),
            )),
        }
    }
}

/// What the connection and its subscriptions share: the server, the version spoken, where
/// frames are written, and the unacknowledged messages.
pub(crate) struct Link {
    /// The server.
    pub shared: Arc<Shared>,
    /// The negotiated version (header escapes).
    pub version: Version,
    /// The connection's writer.
    pub outbox: tokio::sync::mpsc::Sender<Bytes>,
    /// Unacknowledged messages; the lock is held while a MESSAGE is queued for the wire, so
    /// ack ids reach the client in order.
    pub deliveries: tokio::sync::Mutex<Deliveries>,
    /// Signalled when messages are acknowledged: a subscription at its prefetch looks again.
    pub room: tokio::sync::Notify,
}

impl Link {
    /// Queues a frame for the wire; false if the connection is gone.
    pub async fn send(&self, frame: &Frame) -> bool {
        let mut out = Vec::with_capacity(frame.body.len() + 128);
        codec::encode(frame, self.version, &mut out);
        self.outbox.send(Bytes::from(out)).await.is_ok()
    }
}

/// A running subscription.
pub(crate) struct SubscriptionHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// For a topic subscription: the queue of its own, to delete when it ends.
    pub own_queue: Option<String>,
}

impl SubscriptionHandle {
    /// Stops it and waits until it has stopped (it delivers nothing after this returns).
    pub async fn stop(self) -> Option<String> {
        self.stop.send_replace(true);
        let _ = self.task.await;
        self.own_queue
    }
}

/// What a subscription is.
pub(crate) struct Spec {
    /// Its id (the SUBSCRIBE's `id` header).
    pub id: Arc<str>,
    /// Its destination, as MESSAGE frames name it.
    pub destination: Destination,
    /// Its ack mode.
    pub mode: AckMode,
    /// Most unacknowledged messages (client modes).
    pub prefetch: usize,
}

/// Starts a subscription reading `queue`.
pub(crate) fn start(link: Arc<Link>, spec: Spec, queue: Queue, own_queue: Option<String>) -> SubscriptionHandle {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(consume(link, spec, queue, stopped));
    SubscriptionHandle { stop, task, own_queue }
}

async fn consume(link: Arc<Link>, spec: Spec, queue: Queue, mut stopped: watch::Receiver<bool>) {
    let destination = spec.destination.header();
    loop {
        if *stopped.borrow() {
            return;
        }
        let room = if spec.mode == AckMode::Auto {
            MAX_TAKE
        } else {
            let room_changed = link.room.notified();
            tokio::pin!(room_changed);
            room_changed.as_mut().enable();
            let outstanding = link.deliveries.lock().await.outstanding(&spec.id);
            if outstanding >= spec.prefetch {
                tokio::select! {
                    _ = room_changed => {}
                    _ = crate::server::protocols::stopped(&mut stopped) => return,
                }
                continue;
            }
            (spec.prefetch - outstanding).min(MAX_TAKE)
        };
        let got = match take_held(&link.shared, &queue, room, &mut stopped).await {
            Taken::Messages(got) => got,
            Taken::Again => continue,
            // The queue is gone: the subscription ends (nothing more can come).
            Taken::Gone | Taken::Cancelled => return,
        };
        if !deliver(&link, &spec, &destination, &queue, got).await {
            return;
        }
    }
}

/// Sends what was taken; false if the connection closed meanwhile (then it goes back).
async fn deliver(link: &Link, spec: &Spec, destination: &str, queue: &Queue, got: Vec<ReceivedMessage>) -> bool {
    let mut d = link.deliveries.lock().await;
    if d.closed {
        drop(d);
        let handles: Vec<String> = got.into_iter().map(|m| m.receipt_handle).collect();
        let q = queue.clone();
        let _ = link
            .shared
            .blocking(move |_| q.release_to_head(&handles.iter().map(String::as_str).collect::<Vec<_>>()))
            .await;
        return false;
    }
    let auto = spec.mode == AckMode::Auto;
    // Auto mode: sent ones are acknowledged; ones the connection never took go back.
    let (mut acks, mut unsent) = (Vec::new(), Vec::new());
    let mut connected = true;
    for m in got {
        if !connected && auto {
            unsent.push(m.receipt_handle);
            continue;
        }
        // Client modes: registered even when the connection is gone, so its end releases it.
        let unacked = (!auto).then(|| Unacked {
            subscription: Arc::clone(&spec.id),
            cumulative: spec.mode == AckMode::Client,
            queue: queue.clone(),
            handle: m.receipt_handle.clone(),
        });
        let ack_id = d.register(unacked);
        let frame = message_frame(spec, destination, ack_id, link.version, &m);
        connected = connected && link.send(&frame).await;
        if auto {
            if connected { &mut acks } else { &mut unsent }.push(m.receipt_handle);
        }
    }
    drop(d);
    for (handles, ack) in [(acks, true), (unsent, false)] {
        if handles.is_empty() {
            continue;
        }
        let q = queue.clone();
        let _ = link
            .shared
            .blocking(move |_| {
                let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
                if ack {
                    q.ack(&refs)
                } else {
                    q.release_to_head(&refs)
                }
            })
            .await;
    }
    connected
}

/// The MESSAGE frame of a delivery: the server's headers, then the message's own.
fn message_frame(spec: &Spec, destination: &str, ack_id: u64, version: Version, m: &ReceivedMessage) -> Frame {
    let mut frame = Frame::new(Command::Message)
        .with("subscription", spec.id.to_string())
        .with("destination", destination)
        .with("message-id", ack_id.to_string());
    if spec.mode != AckMode::Auto && version >= Version::V1_2 {
        frame = frame.with("ack", ack_id.to_string());
    }
    if m.receive_count > 1 {
        frame = frame.with("redelivered", "true");
    }
    for (name, value) in message::headers(m) {
        if !message::SERVER_HEADERS.contains(&name.as_str()) {
            frame.headers.push((name, value));
        }
    }
    frame.body = m.body.to_vec();
    frame.with("content-length", m.body.len().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_modes_are_the_specs_three() {
        assert_eq!(AckMode::parse(None), Ok(AckMode::Auto));
        assert_eq!(AckMode::parse(Some("client")), Ok(AckMode::Client));
        assert_eq!(AckMode::parse(Some("client-individual")), Ok(AckMode::ClientIndividual));
        assert!(AckMode::parse(Some("Client")).is_err());
    }
}
