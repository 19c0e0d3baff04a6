//! HTTP/HTTPS subscriptions: durable deliveries through an internal queue.
//!
//! Each HTTP/HTTPS subscription owns a queue of the message log that no caller can name
//! (`#http/<subscription id>`, outside the queue namespace, left out of listings). A publish
//! writes the subscription's delivery into it in the same frame as everything else, so a
//! delivery is exactly as durable as the publish; the subscription confirmation request goes
//! there too. Whoever serves the engine (`weir serve`) takes deliveries with a lease
//! ([`HttpDeliveries::take`]: a receive whose visibility timeout outlasts one POST), POSTs
//! them, and reports back: [`HttpDeliveries::delivered`] deletes, [`HttpDeliveries::failed`]
//! makes the delivery visible again after the delivery policy's delay, or gives up on it:
//! into the subscription's dead-letter queue (one frame: gone here, there), else dropped and
//! counted. A crash or restart loses nothing: a delivery whose POST was under way becomes
//! visible when its lease ends, and is POSTed again (the only duplicates).
//!
//! A delivery's message id is the publish's (SNS's `x-amz-sns-message-id`), and its sender id
//! (a field internal queues have no other use for) says what it is: a notification,
//! enveloped or raw, or a confirmation request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::delivery_policy::{effective, DeliveryPolicy};
use super::envelope::MessageKind;
use super::subscription::{Protocol, Subscription};
use super::{count_dropped, TopicCell, TopicEnv};
use crate::error::{Error, Result};
use crate::queue::changed::QueueChanged;
use crate::queue::config::{MAX_MAX_MESSAGE_BYTES, MAX_RETENTION};
use crate::queue::store::{QueueCell, QueueStore};
use crate::queue::{QueueConfig, ReceiveOptions, MAX_RECEIVE};

/// The first character of every internal queue's name: never part of a queue name.
pub const INTERNAL_QUEUE_PREFIX: char = '#';

/// The internal queue of an HTTP/HTTPS subscription.
pub fn delivery_queue_name(subscription_id: &str) -> String {
    format!("{INTERNAL_QUEUE_PREFIX}http/{subscription_id}")
}

/// The settings of every delivery queue: standard, holding deliveries as long as any queue
/// may (14 days, while nobody serves the engine), any size a publish's envelope can reach.
pub fn delivery_queue_config() -> QueueConfig {
    QueueConfig { retention: MAX_RETENTION, max_message_bytes: MAX_MAX_MESSAGE_BYTES, ..QueueConfig::default() }
}

/// The longest lease a take may ask for (a POST that outlives it may be made twice).
pub const MAX_LEASE: Duration = Duration::from_secs(12 * 3600);

const SENDER_NOTIFICATION: &str = "sns:Notification";
const SENDER_NOTIFICATION_RAW: &str = "sns:Notification;raw";
const SENDER_CONFIRMATION: &str = "sns:SubscriptionConfirmation";

/// The sender id that marks a delivery of this kind.
pub(crate) fn delivery_sender_id(kind: MessageKind, raw: bool) -> Bytes {
    Bytes::from_static(match (kind, raw) {
        (MessageKind::SubscriptionConfirmation, _) => SENDER_CONFIRMATION.as_bytes(),
        (MessageKind::Notification, true) => SENDER_NOTIFICATION_RAW.as_bytes(),
        (MessageKind::Notification, false) => SENDER_NOTIFICATION.as_bytes(),
    })
}

fn kind_of(sender_id: Option<&str>) -> (MessageKind, bool) {
    match sender_id {
        Some(SENDER_CONFIRMATION) => (MessageKind::SubscriptionConfirmation, false),
        Some(SENDER_NOTIFICATION_RAW) => (MessageKind::Notification, true),
        _ => (MessageKind::Notification, false),
    }
}

/// Where an HTTP/HTTPS subscription's deliveries go, and how, as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The subscription's id.
    pub subscription_id: String,
    /// Its ARN (`x-amz-sns-subscription-arn`).
    pub subscription_arn: String,
    /// Its topic's ARN (`x-amz-sns-topic-arn`).
    pub topic_arn: String,
    /// The endpoint.
    pub url: String,
    /// `http` or `https`.
    pub protocol: Protocol,
    /// The policy deliveries are made with.
    pub policy: DeliveryPolicy,
    /// Waiting for the endpoint to confirm (only the confirmation request is delivered).
    pub pending_confirmation: bool,
}

/// One delivery, taken for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDelivery {
    /// Names this attempt: pass the delivery back to `delivered` or `failed`.
    pub receipt_handle: String,
    /// SNS's message id (`x-amz-sns-message-id`): the publish's, or the confirmation's.
    pub message_id: String,
    /// A notification or a confirmation request (`x-amz-sns-message-type`).
    pub kind: MessageKind,
    /// The body is the raw message, not an envelope (`x-amz-sns-rawdelivery: true`).
    pub raw: bool,
    /// What to POST.
    pub body: Bytes,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// When it was published (ms since the Unix epoch).
    pub published_ms: u64,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// It is tried again after this long.
    RetryAfter(Duration),
    /// The policy ran out (or the failure was permanent): it went to this dead-letter queue.
    DeadLettered(String),
    /// The policy ran out and there is no dead-letter queue (or it is gone): dropped.
    Dropped,
}

/// The pending deliveries of one HTTP/HTTPS subscription. Cheap to clone.
#[derive(Clone)]
pub struct HttpDeliveries {
    pub(crate) store: Arc<QueueStore>,
    pub(crate) queue: Arc<QueueCell>,
    pub(crate) topic: Arc<TopicCell>,
    pub(crate) env: Arc<TopicEnv>,
    pub(crate) subscription_id: String,
}

impl std::fmt::Debug for HttpDeliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeliveries").field("subscription", &self.subscription_id).finish()
    }
}

impl HttpDeliveries {
    /// The subscription's id.
    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    fn subscription(&self) -> Result<Arc<Subscription>> {
        self.topic
            .subscription(&self.subscription_id)
            .ok_or_else(|| Error::NotFound { kind: "subscription", name: self.subscription_id.clone() })
    }

    fn gone(&self, e: Error) -> Error {
        match e {
            Error::NotFound { kind: "queue", .. } => {
                Error::NotFound { kind: "subscription", name: self.subscription_id.clone() }
            }
            other => other,
        }
    }

    /// Where and how deliveries go now (the subscription's attributes may change between
    /// two calls). Fails with `NotFound` once the subscription is gone.
    pub fn target(&self) -> Result<HttpTarget> {
        let sub = self.subscription()?;
        Ok(target_of(&sub, &self.topic, &self.env))
    }

    /// Takes up to `max` deliveries that are due (1 to 10; never waits), each leased for
    /// `lease`: until then no other take gets it, and if it is neither delivered nor failed by
    /// then (the process died), it is due again.
    pub fn take(&self, max: usize, lease: Duration) -> Result<Vec<HttpDelivery>> {
        if lease.is_zero() || lease > MAX_LEASE {
            return Err(Error::InvalidArgument(format!("a lease is 1 ms to {} s", MAX_LEASE.as_secs())));
        }
        let options = ReceiveOptions {
            max: max.clamp(1, MAX_RECEIVE),
            wait: Some(Duration::ZERO),
            visibility_timeout: Some(lease),
            attempt_id: None,
        };
        let received = self.store.receive(&self.queue, &options).map_err(|e| self.gone(e))?;
        Ok(received
            .into_iter()
            .map(|m| {
                let (kind, raw) = kind_of(m.sender_id.as_deref());
                HttpDelivery {
                    receipt_handle: m.receipt_handle,
                    message_id: m.message_id,
                    kind,
                    raw,
                    body: m.body,
                    attempt: m.receive_count,
                    published_ms: m.sent_ms,
                }
            })
            .collect())
    }

    /// The endpoint took it: it is deleted.
    pub fn delivered(&self, delivery: &HttpDelivery) -> Result<()> {
        let mut results = self.store.delete(&self.queue, &[&delivery.receipt_handle]).map_err(|e| self.gone(e))?;
        results.pop().unwrap_or(Ok(()))
    }

    /// The attempt failed: retried per the delivery policy, or, once the policy ran out (at
    /// once when `permanent`, SNS's answer to a 4xx), moved to the subscription's dead-letter
    /// queue, else dropped and counted. A confirmation request is never dead-lettered.
    pub fn failed(&self, delivery: &HttpDelivery, permanent: bool) -> Result<FailureOutcome> {
        let sub = self.subscription()?;
        let policy = target_of(&sub, &self.topic, &self.env).policy;
        let retry = delivery.attempt.max(1);
        if !permanent {
            if let Some(delay) = policy.retry.delay_before_retry(retry) {
                self.store
                    .change_visibility(&self.queue, &[(&delivery.receipt_handle, delay)])
                    .map_err(|e| self.gone(e))?
                    .pop()
                    .unwrap_or(Ok(()))?;
                return Ok(FailureOutcome::RetryAfter(delay));
            }
        }
        let dead_letter = match delivery.kind {
            MessageKind::Notification => sub.def.dead_letter_queue.as_deref().and_then(|q| self.store.cell(q)),
            MessageKind::SubscriptionConfirmation => None,
        };
        if let Some(dlq) = dead_letter {
            match self.store.move_received(&self.queue, &delivery.receipt_handle, &dlq) {
                Ok(()) => return Ok(FailureOutcome::DeadLettered(dlq.name.clone())),
                // The dead-letter queue went away (or changed type) meanwhile: drop.
                Err(Error::NotFound { .. } | Error::InvalidArgument(_)) => {}
                Err(e) => return Err(self.gone(e)),
            }
        }
        self.delivered(delivery)?;
        count_dropped(&sub);
        Ok(FailureOutcome::Dropped)
    }

    /// A future that completes when a delivery may have become due (see
    /// [`crate::queue::Queue::changed`]); create it before a take that found nothing.
    pub fn changed(&self) -> QueueChanged {
        self.queue.changed.changed()
    }

    /// When the next delivery that waits for its time (a retry, an expired lease) is due, by
    /// the engine clock; now if one is due already.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.store.next_visible_at_ms(&self.queue)
    }

    /// Deliveries waiting to be made or retried, those under way included.
    pub fn pending(&self) -> u64 {
        pending_deliveries(&self.store, &self.queue)
    }
}

/// Deliveries held in a delivery queue.
pub(crate) fn pending_deliveries(store: &QueueStore, queue: &QueueCell) -> u64 {
    let a = store.attributes(queue);
    a.approximate_visible + a.approximate_in_flight + a.approximate_delayed
}

/// An HTTP subscription's target, from its topic and the envelope context.
pub(crate) fn target_of(sub: &Subscription, topic: &TopicCell, env: &TopicEnv) -> HttpTarget {
    let context = env.context.read().clone();
    HttpTarget {
        subscription_id: sub.def.id.clone(),
        subscription_arn: context.subscription_arn(&topic.name, &sub.def.id),
        topic_arn: context.topic_arn(&topic.name),
        url: sub.def.url.clone().unwrap_or_default(),
        protocol: sub.protocol(),
        policy: effective_policy(sub, topic),
        pending_confirmation: sub.def.pending,
    }
}

/// The delivery policy an HTTP subscription delivers with.
pub(crate) fn effective_policy(sub: &Subscription, topic: &TopicCell) -> DeliveryPolicy {
    let own = sub.def.delivery_policy.as_deref().and_then(|p| DeliveryPolicy::parse_subscription(p).ok());
    let of_topic = topic.attributes().parsed_delivery_policy();
    effective(of_topic.as_ref(), own.as_ref(), sub.protocol() == Protocol::Https)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_sender_ids() {
        for (kind, raw) in [
            (MessageKind::Notification, false),
            (MessageKind::Notification, true),
            (MessageKind::SubscriptionConfirmation, false),
        ] {
            let id = delivery_sender_id(kind, raw);
            assert_eq!(kind_of(std::str::from_utf8(&id).ok()), (kind, raw));
        }
        assert!(crate::names::validate_queue_name("queue", &delivery_queue_name("sub-000001"), false).is_err());
        delivery_queue_config().validate().unwrap();
    }
}
