//! The HTTP/HTTPS subscriptions of a data directory and their pending deliveries, read from
//! the files alone (no lock: beside a running `weir serve` too). The catalog says which
//! subscriptions exist and which internal queue holds each one's deliveries; the message log
//! says which deliveries are still there (sent or moved forward by compaction, not deleted,
//! not purged). Retention is not applied: a delivery older than 14 days that the engine would
//! drop at its next look still counts here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::engine::catalog::CatalogRecord;
use crate::engine::KeySource;
use crate::error::Result;
use crate::format::queue_record::{QueueRecord, OWN_SEQ};
use crate::inspect::keys::log_is_encrypted;
use crate::inspect::{segment_files, segment_records_keyed};

/// An HTTP/HTTPS subscription and its deliveries waiting to be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpSubscriptionReport {
    /// Its id.
    pub subscription_id: String,
    /// Its topic.
    pub topic: String,
    /// The URL deliveries go to.
    pub endpoint: String,
    /// Waiting for the endpoint to confirm.
    pub pending_confirmation: bool,
    /// Deliveries (the confirmation request included) not made yet.
    pub pending_deliveries: u64,
}

struct Subscription {
    topic: String,
    endpoint: String,
    pending: bool,
    queue: u32,
}

/// The HTTP/HTTPS subscriptions of the data directory `root`, in id order; none if `root` is
/// not a data directory, or is encrypted and `key_source` is `None` (its records are sealed).
pub fn http_subscriptions(root: &Path, key_source: Option<&KeySource>) -> Result<Vec<HttpSubscriptionReport>> {
    let catalog = root.join("catalog");
    if !catalog.is_dir() {
        return Ok(Vec::new());
    }
    // Without the key, an encrypted directory shows its structure only: its records are sealed.
    if key_source.is_none() && log_is_encrypted(&catalog) {
        return Ok(Vec::new());
    }
    let mut subs: BTreeMap<String, Subscription> = BTreeMap::new();
    for (_, path) in segment_files(&catalog)?.segments {
        for record in segment_records_keyed(&path, key_source)? {
            let Ok(record) = serde_json::from_slice::<CatalogRecord>(&record?.value) else { continue };
            match record {
                CatalogRecord::Subscribe { subscription: s }
                | CatalogRecord::UpdateSubscription { subscription: s } => {
                    if let (Some(url), Some(queue)) = (s.url.clone(), s.delivery_queue) {
                        subs.insert(
                            s.id.clone(),
                            Subscription { topic: s.topic, endpoint: url, pending: s.pending, queue },
                        );
                    }
                }
                CatalogRecord::Unsubscribe { id } => {
                    subs.remove(&id);
                }
                CatalogRecord::DeleteTopic { name } => subs.retain(|_, s| s.topic != name),
                _ => {}
            }
        }
    }
    let queues: BTreeSet<u32> = subs.values().map(|s| s.queue).collect();
    let mut live: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    let log = root.join("queues");
    if !queues.is_empty() && log.is_dir() {
        for (_, path) in segment_files(&log)?.segments {
            for record in segment_records_keyed(&path, key_source)? {
                let record = record?;
                let Ok(decoded) = QueueRecord::decode(&record.value) else { continue };
                if !queues.contains(&decoded.queue()) {
                    continue;
                }
                let keys = live.entry(decoded.queue()).or_default();
                match decoded {
                    QueueRecord::Message(m) => {
                        // A message compaction moved forward keeps the key of its first
                        // record (whose segment may be gone); a new one is keyed by its own.
                        keys.insert(if m.key == OWN_SEQ { record.seq } else { m.key });
                    }
                    QueueRecord::Delete { key, .. } => {
                        keys.remove(&key);
                    }
                    QueueRecord::Purge { before_key, .. } => keys.retain(|k| *k >= before_key),
                    _ => {}
                }
            }
        }
    }
    Ok(subs
        .into_iter()
        .map(|(id, s)| HttpSubscriptionReport {
            pending_deliveries: live.get(&s.queue).map_or(0, |k| k.len() as u64),
            subscription_id: id,
            topic: s.topic,
            endpoint: s.endpoint,
            pending_confirmation: s.pending,
        })
        .collect())
}
