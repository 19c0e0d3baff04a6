//! The FIFO deduplication window: ids seen in the last five minutes, bounded in memory.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use crate::queue::config::DedupScope;

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

/// Digest a FIFO queue remembers a send by: its deduplication id, and with
/// [`DedupScope::MessageGroup`] its message group too (length-prefixed, so no two (group, id)
/// pairs share their bytes).
pub fn scoped_digest(scope: DedupScope, group: &[u8], dedup_id: &[u8]) -> DedupDigest {
    match scope {
        DedupScope::Queue => digest(dedup_id),
        DedupScope::MessageGroup => {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update((group.len() as u64).to_le_bytes());
            h.update(group);
            h.update(dedup_id);
            let mut out = [0u8; 16];
            out.copy_from_slice(&h.finalize()[..16]);
            out
        }
    }
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

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn message_group_scope_keys_by_group_and_id_without_ambiguity() {
        let q = |g: &[u8], d: &[u8]| scoped_digest(DedupScope::Queue, g, d);
        let m = |g: &[u8], d: &[u8]| scoped_digest(DedupScope::MessageGroup, g, d);
        assert_eq!(q(b"a", b"id"), q(b"b", b"id"), "queue scope ignores the group");
        assert_eq!(q(b"a", b"id"), digest(b"id"), "queue scope is the digest windows always used");
        assert_ne!(m(b"a", b"id"), m(b"b", b"id"));
        assert_ne!(m(b"ab", b"c"), m(b"a", b"bc"), "group and id are kept apart");
        assert_eq!(m(b"a", b"id"), m(b"a", b"id"));
    }
}
