//! The FIFO deduplication window: ids seen in the last five minutes, bounded in memory.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

/// Most ids one queue remembers. At SQS's FIFO rate with batching (3,000 messages/s) five
/// minutes is 900,000 ids; past this bound the oldest are forgotten early.
pub const MAX_DEDUP_ENTRIES: usize = 1 << 20;

/// The 16-byte digest an id is remembered by.
pub type DedupDigest = [u8; 16];

/// Digest of a stored deduplication id.
pub fn digest(dedup_id: &[u8]) -> DedupDigest {
    let full = Sha256::digest(dedup_id);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// What a remembered id answers with: the first message's id and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstSend {
    /// Message id of the first send.
    pub message_id: [u8; 16],
    /// Its key (the FIFO sequence number).
    pub key: u64,
    /// When the id is forgotten.
    pub expires_ms: u64,
}

/// Ids seen recently.
#[derive(Debug, Default, Clone)]
pub struct DedupWindow {
    seen: HashMap<DedupDigest, FirstSend>,
    order: VecDeque<(u64, DedupDigest)>,
}

impl DedupWindow {
    /// The first send of `id`, if it is still remembered at `now_ms`.
    pub fn lookup(&mut self, id: &DedupDigest, now_ms: u64) -> Option<FirstSend> {
        self.prune(now_ms);
        // Pruning stops at the first live entry of the insertion order; after the clock stepped
        // back, later entries can be older, so each answer checks its own expiry too.
        match self.seen.get(id).copied() {
            Some(first) if first.expires_ms > now_ms => Some(first),
            Some(_) => {
                self.seen.remove(id);
                None
            }
            None => None,
        }
    }

    /// Remembers a first send (replay may offer an id again; the first one stays).
    pub fn remember(&mut self, id: DedupDigest, first: FirstSend) {
        if self.seen.contains_key(&id) {
            return;
        }
        while self.order.len() >= MAX_DEDUP_ENTRIES {
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(id, first);
        self.order.push_back((first.expires_ms, id));
    }

    /// Forgets ids whose window has passed.
    pub fn prune(&mut self, now_ms: u64) {
        while let Some(&(expires, id)) = self.order.front() {
            if expires > now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&id);
        }
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True if none.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
