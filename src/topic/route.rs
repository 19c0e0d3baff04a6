//! Routing like an AMQP exchange: which queues a message routed with a routing key and headers
//! reaches through a topic's subscriptions (bindings filter on the key and headers; filter
//! policies, where a subscription has one, on the attributes or body; queue policies decide
//! as for a publish). The deliveries themselves are written by
//! [`crate::Engine::deliver`], so that a batch of routed messages is one frame.

use std::sync::Arc;

use crate::queue::Attributes;
use crate::queue::Queue;
use crate::topic::Target;
use crate::topic::Topic;

impl Topic {
    /// The queues a message routed with `routing_key` and `headers` (name, and hex of the
    /// value's type-tagged bytes) reaches: each queue once, however many of its subscriptions
    /// match. Every queue subscription takes the message raw (no SNS envelope); callbacks take
    /// only publishes.
    pub fn route_targets(
        &self,
        routing_key: &str,
        headers: &[(String, String)],
        attributes: &Attributes,
        body: &[u8],
    ) -> Vec<Queue> {
        let now = self.store.clock().now_ms();
        let scope = self.store.arn_scope();
        let delivery = crate::policy::TopicDelivery { scope: &scope, topic: &self.cell.name, now_ms: now };
        let subs = self.cell.subs.read().clone();
        let mut out: Vec<Queue> = Vec::new();
        for sub in &subs {
            let Target::Queue(name) = &sub.target else { continue };
            if sub.def.binding.as_ref().is_some_and(|b| !b.matches(routing_key, headers)) {
                continue;
            }
            if !sub.policy_matches(attributes, body) {
                sub.filtered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let Some(cell) = self.store.cell(name) else { continue };
            if out.iter().any(|q| q.cell.id == cell.id) {
                continue;
            }
            let policy = cell.state.lock().config.policy.clone();
            if delivery.allowed(name, policy.as_deref()) {
                out.push(Queue { store: Arc::clone(&self.store), cell });
            }
        }
        out
    }

    /// True while the topic has not been deleted.
    pub fn is_live(&self) -> bool {
        !self.cell.deleted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
