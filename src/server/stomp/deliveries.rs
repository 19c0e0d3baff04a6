//! A connection's unacknowledged messages: each MESSAGE of a `client` or `client-individual`
//! subscription is a held delivery of the engine (in flight until acknowledged or released,
//! visible again if the server dies) under a number the connection gives it, its ack id.
//! An ACK or NACK of `client-individual` takes the one message it names; of `client`, every
//! message of the subscription up to it (cumulative, as the spec says).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::queue::Queue;

/// One unacknowledged message.
#[derive(Debug, Clone)]
pub(crate) struct Unacked {
    /// Its subscription's id.
    pub subscription: Arc<str>,
    /// Whether the subscription acknowledges cumulatively (`client`).
    pub cumulative: bool,
    /// Its queue.
    pub queue: Queue,
    /// Its receipt handle there.
    pub handle: String,
}

/// The unacknowledged messages of a connection, by ack id.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    /// Set once the connection closes: subscriptions deliver nothing more.
    pub closed: bool,
    next: u64,
    unacked: BTreeMap<u64, Unacked>,
    per_subscription: HashMap<Arc<str>, usize>,
}

impl Deliveries {
    /// A new ack id, and the message under it if it waits for an acknowledgement.
    pub fn register(&mut self, unacked: Option<Unacked>) -> u64 {
        self.next += 1;
        if let Some(u) = unacked {
            *self.per_subscription.entry(Arc::clone(&u.subscription)).or_default() += 1;
            self.unacked.insert(self.next, u);
        }
        self.next
    }

    /// Messages of `subscription` waiting for an acknowledgement.
    pub fn outstanding(&self, subscription: &str) -> usize {
        self.per_subscription.get(subscription).copied().unwrap_or(0)
    }

    /// Takes what an ACK or NACK of `id` settles (`subscription`: the frame's header, checked
    /// when given). `None` if `id` names no unacknowledged message of this connection.
    pub fn take(&mut self, id: &str, subscription: Option<&str>) -> Option<Vec<(u64, Unacked)>> {
        let n: u64 = id.parse().ok()?;
        let named = self.unacked.get(&n)?;
        if subscription.is_some_and(|s| s != &*named.subscription) {
            return None;
        }
        let keys: Vec<u64> = if named.cumulative {
            let sub = Arc::clone(&named.subscription);
            self.unacked.range(..=n).filter(|(_, u)| u.subscription == sub).map(|(k, _)| *k).collect()
        } else {
            vec![n]
        };
        Some(keys.into_iter().filter_map(|k| self.remove(k).map(|u| (k, u))).collect())
    }

    /// Takes every unacknowledged message of `subscription`.
    pub fn take_subscription(&mut self, subscription: &str) -> Vec<(u64, Unacked)> {
        let keys: Vec<u64> =
            self.unacked.iter().filter(|(_, u)| &*u.subscription == subscription).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|k| self.remove(k).map(|u| (k, u))).collect()
    }

    /// Takes every unacknowledged message.
    pub fn take_all(&mut self) -> Vec<(u64, Unacked)> {
        self.per_subscription.clear();
        std::mem::take(&mut self.unacked).into_iter().collect()
    }

    /// Puts back messages a transaction took (ABORT): they wait for an acknowledgement again.
    pub fn restore(&mut self, taken: Vec<(u64, Unacked)>) {
        for (k, u) in taken {
            *self.per_subscription.entry(Arc::clone(&u.subscription)).or_default() += 1;
            self.unacked.insert(k, u);
        }
    }

    fn remove(&mut self, key: u64) -> Option<Unacked> {
        let u = self.unacked.remove(&key)?;
        if let Some(n) = self.per_subscription.get_mut(&u.subscription) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_subscription.remove(&u.subscription);
            }
        }
        Some(u)
    }
}

/// Groups messages by queue, each queue's receipt handles in delivery order.
pub(crate) fn by_queue(taken: Vec<(u64, Unacked)>) -> Vec<(Queue, Vec<String>)> {
    let mut out: Vec<(Queue, Vec<String>)> = Vec::new();
    for (_, u) in taken {
        match out.iter_mut().find(|(q, _)| q.name() == u.queue.name()) {
            Some((_, handles)) => handles.push(u.handle),
            None => out.push((u.queue, vec![u.handle])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unacked(queue: &Queue, sub: &str, cumulative: bool, handle: &str) -> Option<Unacked> {
        Some(Unacked { subscription: sub.into(), cumulative, queue: queue.clone(), handle: handle.into() })
    }

    #[test]
    fn client_acks_are_cumulative_per_subscription_and_individual_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::Engine::open(dir.path(), crate::Options::default()).unwrap();
        engine.create_queue("q", crate::queue::QueueConfig::default()).unwrap();
        let q = engine.queue("q").unwrap();
        let mut d = Deliveries::default();
        let a1 = d.register(unacked(&q, "a", true, "h1"));
        let b1 = d.register(unacked(&q, "b", false, "h2"));
        let auto = d.register(None);
        let a2 = d.register(unacked(&q, "a", true, "h3"));
        let b2 = d.register(unacked(&q, "b", false, "h4"));
        assert!(a1 < b1 && b1 < auto && auto < a2 && a2 < b2);
        assert_eq!((d.outstanding("a"), d.outstanding("b")), (2, 2));
        // An auto delivery, a wrong subscription and garbage name nothing.
        assert!(d.take(&auto.to_string(), None).is_none());
        assert!(d.take(&a2.to_string(), Some("b")).is_none());
        assert!(d.take("x", None).is_none());
        let handles = |t: Vec<(u64, Unacked)>| t.into_iter().map(|(_, u)| u.handle).collect::<Vec<_>>();
        assert_eq!(handles(d.take(&b2.to_string(), Some("b")).unwrap()), vec!["h4"]);
        assert_eq!(handles(d.take(&a2.to_string(), None).unwrap()), vec!["h1", "h3"]);
        assert!(d.take(&a1.to_string(), None).is_none(), "settled once");
        let rest = d.take_all();
        assert_eq!(d.outstanding("b"), 0);
        d.restore(rest);
        assert_eq!(d.outstanding("b"), 1);
        assert_eq!(by_queue(d.take_subscription("b")).len(), 1);
    }
}
