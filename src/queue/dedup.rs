//! The FIFO deduplication window: ids seen in the last five minutes, bounded in memory.

use std::collections::{BTreeSet, HashMap};

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

/// What a remembered id answers with: the id and key of the send it remembers (the id's
/// first send, or its most recent one where a change of scope joined ids).
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
///
/// `seen` answers lookups; `expiry` orders the same entries by when they expire, so pruning
/// finds every expired one wherever the clock has been (it can step back, leaving an entry
/// remembered later to expire earlier). Each entry of one has exactly one in the other.
#[derive(Debug, Default, Clone)]
pub struct DedupWindow {
    seen: HashMap<DedupDigest, FirstSend>,
    expiry: BTreeSet<(u64, DedupDigest)>,
}

impl DedupWindow {
    /// The first send of `id`, if it is still remembered at `now_ms`.
    pub fn lookup(&mut self, id: &DedupDigest, now_ms: u64) -> Option<FirstSend> {
        self.prune(now_ms);
        self.seen.get(id).copied()
    }

    /// Remembers a send. Offered an id it holds (a replay or a rekey meets two sends that were
    /// apart under another deduplication scope and share an id under this one), the later
    /// send stays: an id is a duplicate until five minutes after its most recent successful
    /// send. So the window is the same whenever it is rebuilt from the log (at a change of
    /// scope, at open, from a snapshot), not one that depends on which send expired first.
    pub fn remember(&mut self, id: DedupDigest, first: FirstSend) {
        if let Some(held) = self.seen.get(&id).copied() {
            // Sends come in log order, so of two sent in the same millisecond the later wins.
            if held.expires_ms > first.expires_ms {
                return;
            }
            self.seen.remove(&id);
            self.expiry.remove(&(held.expires_ms, id));
        }
        while self.seen.len() >= MAX_DEDUP_ENTRIES {
            // Past the bound, the ids closest to expiring are forgotten first.
            let Some((_, old)) = self.expiry.pop_first() else { break };
            self.seen.remove(&old);
        }
        self.seen.insert(id, first);
        self.expiry.insert((first.expires_ms, id));
        debug_assert_eq!(self.seen.len(), self.expiry.len(), "both structures hold the same entries");
    }

    /// Forgets every id whose window has passed at `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        while let Some(&(expires, id)) = self.expiry.first() {
            if expires > now_ms {
                break;
            }
            self.expiry.pop_first();
            self.seen.remove(&id);
        }
        debug_assert_eq!(self.seen.len(), self.expiry.len(), "both structures hold the same entries");
    }

    /// Every remembered id with its first send, in order of expiry (expired ones a lookup
    /// has not pruned yet included).
    pub fn entries(&self) -> impl Iterator<Item = (DedupDigest, FirstSend)> + '_ {
        self.expiry.iter().filter_map(|(_, id)| self.seen.get(id).map(|first| (*id, *first)))
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WINDOW_MS: u64 = 300_000;

    fn first(key: u64, now_ms: u64) -> FirstSend {
        FirstSend { message_id: [key as u8; 16], key, expires_ms: now_ms + WINDOW_MS }
    }

    /// A send as the store makes it: a remembered id is a duplicate, else it is remembered.
    fn send(window: &mut DedupWindow, id: u8, key: u64, now_ms: u64) -> Option<u64> {
        let id = digest(&[id]);
        match window.lookup(&id, now_ms) {
            Some(f) => Some(f.key),
            None => {
                window.remember(id, first(key, now_ms));
                None
            }
        }
    }

    #[test]
    fn an_id_sent_again_after_the_clock_stepped_back_is_remembered_for_its_whole_window() {
        let mut w = DedupWindow::default();
        assert_eq!(send(&mut w, 1, 1, 10_000), None, "B first seen at 10 s");
        // The clock steps back 9 s: A's entry expires before B's, behind it in insertion order.
        assert_eq!(send(&mut w, 2, 2, 1_000), None, "A first seen at 1 s");
        // A's window has passed (B's has not): A is new again.
        assert_eq!(send(&mut w, 2, 3, 305_000), None, "A's first window is over");
        // Past B's expiry: A's second send is still in its window.
        assert_eq!(send(&mut w, 2, 4, 311_000), Some(3), "A's second send is still in its window");
        assert_eq!(w.len(), 1);
    }

    proptest! {
        /// Whatever the clock does (forward or back), the window answers as the plain rule:
        /// each send first forgets every id whose window has ended by now; it is a duplicate
        /// if its id is still remembered, else its id is remembered for five minutes.
        #[test]
        fn the_window_answers_as_the_plain_rule(ops in prop::collection::vec((0u8..6, -200i64..400), 1..200)) {
            let mut w = DedupWindow::default();
            let mut model: HashMap<u8, (u64, u64)> = HashMap::new(); // id -> (key, expires)
            let mut now: u64 = 1_000_000;
            for (i, (id, step_s)) in ops.into_iter().enumerate() {
                now = now.saturating_add_signed(step_s * 1000);
                let key = i as u64;
                model.retain(|_, &mut (_, expires)| expires > now);
                let expected = match model.get(&id) {
                    Some(&(k, _)) => Some(k),
                    None => {
                        model.insert(id, (key, now + WINDOW_MS));
                        None
                    }
                };
                prop_assert_eq!(send(&mut w, id, key, now), expected, "op {} at {} ms", i, now);
                prop_assert_eq!(w.len(), model.len());
            }
        }
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
