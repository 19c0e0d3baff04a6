//! HTTP/HTTPS deliveries, made beside the request path. A supervisor keeps one worker per
//! HTTP/HTTPS subscription (it looks at the engine's list every second, and at once when a
//! request subscribes or confirms). A worker takes due deliveries from the engine with a lease
//! ([`LEASE`]), POSTs each with SNS's headers (at most [`MAX_IN_FLIGHT`] at once, and no faster
//! than the delivery policy's throttle), and reports each outcome back: the engine deletes what
//! was delivered and retries, dead-letters or drops what failed, durably. A slow or dead endpoint
//! ties up only its own worker's permits and a few blocking-pool calls, never publishes or other
//! subscriptions. After a crash, what was under way is due again when its lease ends.
//!
//! What counts as what, as SNS: 2xx and 3xx (but 100 and 101) delivered; 4xx a permanent
//! failure (the policy's retries are skipped); 100, 101, 5xx, no answer within
//! [`REQUEST_TIMEOUT`] or no connection, a failure that is retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::server::http_client::{HttpClient, PostError, Response};
use crate::server::logging::{fields, LogLevel};
use crate::server::Shared;
use crate::topic::delivery_policy::DEFAULT_CONTENT_TYPE;
use crate::topic::{FailureOutcome, HttpDeliveries, HttpDelivery, HttpTarget, MessageKind};
use crate::{Error, Result};

/// How long an endpoint has to answer, as SNS: 15 seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a taken delivery stays with its worker: longer than a POST may take, so a delivery
/// is POSTed twice only when the process died with it under way.
pub const LEASE: Duration = Duration::from_secs(30);
/// Deliveries of one subscription under way at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// How much of an endpoint's answer is read (its body means nothing to SNS).
const MAX_ANSWER_BYTES: usize = 64 << 10;
/// What SNS's requests call themselves.
pub const SNS_USER_AGENT: &str = "Amazon Simple Notification Service Agent";
/// How often the supervisor looks for new subscriptions, and an idle worker checks that its
/// subscription still exists.
const RESCAN: Duration = Duration::from_secs(1);

/// The supervisor's wake-up.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    nudge: Notify,
}

impl Deliveries {
    /// Makes the supervisor look at the subscriptions now.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }
}

/// Runs the supervisor until the server stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let client = Arc::new(HttpClient::default());
    let mut workers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut stop = shared.stop.clone();
    loop {
        if shared.stopping() {
            return;
        }
        let ids = shared.blocking(|e| e.http_subscription_ids()).await.unwrap_or_default();
        // A worker whose subscription went ends by itself; one that ended early (an error it
        // could not get past) is started again.
        workers.retain(|id, handle| !handle.is_finished() && ids.contains(id));
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(slot) = workers.entry(id) {
                let id = slot.key().clone();
                slot.insert(tokio::spawn(worker(Arc::clone(&shared), Arc::clone(&client), id)));
            }
        }
        tokio::select! {
            _ = shared.sns_deliveries.nudge.notified() => {}
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Error::Closed(format!("a delivery call on the blocking pool ({e})"))))
}

/// Delivers one subscription until it is gone or the server stops.
async fn worker(shared: Arc<Shared>, client: Arc<HttpClient>, id: String) {
    let lookup = id.clone();
    let Ok(Ok(deliveries)) = shared.blocking(move |e| e.http_deliveries(&lookup)).await else { return };
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let throttle = Arc::new(Throttle::default());
    let mut stop = shared.stop.clone();
    loop {
        // A permit before taking anything: deliveries are taken only as they can be made.
        let first = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let Ok(first) = first else { return };
        let mut held = vec![first];
        while held.len() < crate::queue::MAX_RECEIVE {
            match Arc::clone(&permits).try_acquire_owned() {
                Ok(p) => held.push(p),
                Err(_) => break,
            }
        }
        let d = deliveries.clone();
        let want = held.len();
        let changed = deliveries.changed();
        let taken = blocking(move || Ok((d.target()?, d.take(want, LEASE)?))).await;
        let (target, batch) = match taken {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => return, // unsubscribed, or its topic deleted
            Err(e) => {
                shared.log.warn(
                    "taking HTTP deliveries failed",
                    fields!("subscription" => id.clone(), "error" => e.to_string()),
                );
                tokio::time::sleep(RESCAN).await;
                continue;
            }
        };
        if batch.is_empty() {
            drop(held);
            let now = shared.engine.clock().now_ms();
            let nap =
                deliveries.next_due_ms().map_or(RESCAN, |at| Duration::from_millis(at.saturating_sub(now)).min(RESCAN));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(nap) => {}
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
            continue;
        }
        let target = Arc::new(target);
        for (delivery, permit) in batch.into_iter().zip(held) {
            let job = Job {
                shared: Arc::clone(&shared),
                client: Arc::clone(&client),
                deliveries: deliveries.clone(),
                target: Arc::clone(&target),
                throttle: Arc::clone(&throttle),
                _permit: permit,
            };
            tokio::spawn(job.deliver(delivery));
        }
    }
}

/// One delivery's POST and report.
struct Job {
    shared: Arc<Shared>,
    client: Arc<HttpClient>,
    deliveries: HttpDeliveries,
    target: Arc<HttpTarget>,
    throttle: Arc<Throttle>,
    /// Held until the outcome is reported.
    _permit: OwnedSemaphorePermit,
}

/// What a POST's outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Permanent,
}

fn verdict(outcome: &std::result::Result<Response, PostError>) -> Verdict {
    match outcome.as_ref().map(|r| r.status) {
        Ok(100 | 101) => Verdict::Retry,
        Ok(status) if status >= 500 => Verdict::Retry,
        Ok(status) if status >= 400 => Verdict::Permanent,
        Ok(_) => Verdict::Delivered,
        Err(_) => Verdict::Retry,
    }
}

impl Job {
    async fn deliver(self, delivery: HttpDelivery) {
        let t = &self.target;
        self.throttle.wait(t.policy.max_receives_per_second).await;
        let content_type = match delivery.kind {
            MessageKind::Notification => t.policy.content_type().to_string(),
            MessageKind::SubscriptionConfirmation => DEFAULT_CONTENT_TYPE.to_string(),
        };
        let mut headers = vec![
            ("content-type", content_type),
            ("user-agent", SNS_USER_AGENT.to_string()),
            ("x-amz-sns-message-type", delivery.kind.as_str().to_string()),
            ("x-amz-sns-message-id", delivery.message_id.clone()),
            ("x-amz-sns-topic-arn", t.topic_arn.clone()),
        ];
        if delivery.kind == MessageKind::Notification {
            headers.push(("x-amz-sns-subscription-arn", t.subscription_arn.clone()));
        }
        if delivery.raw {
            headers.push(("x-amz-sns-rawdelivery", "true".to_string()));
        }
        let outcome =
            self.client.post(&t.url, &headers, delivery.body.clone(), REQUEST_TIMEOUT, MAX_ANSWER_BYTES).await;
        let verdict = verdict(&outcome);
        let d = self.deliveries.clone();
        let reported = {
            let delivery = delivery.clone();
            blocking(move || match verdict {
                Verdict::Delivered => d.delivered(&delivery).map(|()| None),
                Verdict::Retry => d.failed(&delivery, false).map(Some),
                Verdict::Permanent => d.failed(&delivery, true).map(Some),
            })
            .await
        };
        let log = &self.shared.log;
        let status = match &outcome {
            Ok(r) => r.status.to_string(),
            Err(e) => e.to_string(),
        };
        let base = || {
            fields!(
                "subscription" => t.subscription_id.clone(),
                "message_id" => delivery.message_id.clone(),
                "type" => delivery.kind.as_str(),
                "attempt" => delivery.attempt,
                "outcome" => status.clone(),
            )
        };
        match reported {
            Ok(None) | Ok(Some(FailureOutcome::RetryAfter(_))) if log.enabled(LogLevel::Debug) => {
                log.log(LogLevel::Debug, "HTTP delivery", base());
            }
            Ok(Some(FailureOutcome::DeadLettered(queue))) => {
                let mut f = base();
                f.insert("dead_letter_queue".into(), queue.into());
                log.warn("HTTP delivery gave up: moved to the dead-letter queue", f);
            }
            Ok(Some(FailureOutcome::Dropped)) => log.warn("HTTP delivery gave up: dropped", base()),
            Ok(_) => {}
            // The lease ran out (the delivery is due again) or the subscription went.
            Err(e) => {
                let mut f = base();
                f.insert("error".into(), e.to_string().into());
                log.log(LogLevel::Debug, "HTTP delivery outcome not recorded", f);
            }
        }
    }
}

/// Spaces a subscription's POSTs by its delivery policy's `maxReceivesPerSecond`.
#[derive(Debug, Default)]
struct Throttle {
    next: Mutex<Option<Instant>>,
}

impl Throttle {
    async fn wait(&self, per_second: Option<u32>) {
        let Some(rate) = per_second.filter(|r| *r > 0) else { return };
        let at = {
            let mut next = self.next.lock();
            let now = Instant::now();
            let at = next.map_or(now, |t| t.max(now));
            *next = Some(at + Duration::from_secs_f64(1.0 / f64::from(rate)));
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_count_as_sns_counts_them() {
        let v = |status| verdict(&Ok(Response { status, body: bytes::Bytes::new() }));
        assert_eq!((v(200), v(204), v(302)), (Verdict::Delivered, Verdict::Delivered, Verdict::Delivered));
        assert_eq!((v(100), v(101), v(500), v(503)), (Verdict::Retry, Verdict::Retry, Verdict::Retry, Verdict::Retry));
        assert_eq!((v(400), v(404), v(499)), (Verdict::Permanent, Verdict::Permanent, Verdict::Permanent));
        assert_eq!(verdict(&Err(PostError::Connection("refused".into()))), Verdict::Retry);
        assert_eq!(verdict(&Err(PostError::Timeout)), Verdict::Retry);
    }
}
