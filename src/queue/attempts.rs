//! FIFO receive request attempt ids (SQS's `ReceiveRequestAttemptId`): a receiver that lost
//! the answer to a receive (a timeout, a dropped connection) repeats it with the same id and
//! gets the same messages and receipt handles, instead of waiting out their visibility timeout
//! while their group stays blocked. Held in memory only, for five minutes, per queue; a reopen
//! forgets them (the receiver then receives anew once the visibility timeout ends).

use std::collections::{HashMap, VecDeque};

use crate::error::{Error, Result};

/// How long an attempt id is remembered, as SQS: 5 minutes.
pub const ATTEMPT_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Most attempts one queue remembers; past it the oldest are forgotten early.
pub const MAX_ATTEMPTS: usize = 10_000;
/// Longest attempt id, as SQS.
pub const MAX_ATTEMPT_ID_LEN: usize = 128;

/// One message a receive took: its key, the receive count that names its receipt handle, and
/// the visibility time the receive (or its last retry) gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptEntry {
    /// Message key.
    pub key: u64,
    /// Receive count after that receive.
    pub receive_count: u32,
    /// Invisible until then.
    pub visible_at_ms: u64,
}

#[derive(Debug)]
struct Attempt {
    expires_ms: u64,
    taken: Vec<AttemptEntry>,
}

/// The attempts of one queue.
#[derive(Debug, Default)]
pub struct ReceiveAttempts {
    by_id: HashMap<String, Attempt>,
    /// Insertion order with expiry, for pruning; an id remembered again appears twice and the
    /// older entry is skipped.
    order: VecDeque<(u64, String)>,
}

/// Attempt ids: 1 to 128 printable ASCII characters (no spaces), as SQS.
pub fn validate_attempt_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ATTEMPT_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!(
            "a receive request attempt id is 1 to {MAX_ATTEMPT_ID_LEN} printable ASCII characters (no spaces)"
        )));
    }
    Ok(())
}

impl ReceiveAttempts {
    /// The messages a receive with attempt `id` took, if it is remembered at `now_ms`.
    pub fn get(&mut self, id: &str, now_ms: u64) -> Option<Vec<AttemptEntry>> {
        self.prune(now_ms);
        match self.by_id.get(id) {
            Some(a) if a.expires_ms > now_ms => Some(a.taken.clone()),
            _ => None,
        }
    }

    /// Remembers what a receive with attempt `id` took at `now_ms` (replacing an earlier one).
    pub fn remember(&mut self, id: &str, now_ms: u64, taken: Vec<AttemptEntry>) {
        self.prune(now_ms);
        while self.by_id.len() >= MAX_ATTEMPTS {
            let Some((_, old)) = self.order.pop_front() else { break };
            self.by_id.remove(&old);
        }
        let expires_ms = now_ms.saturating_add(ATTEMPT_WINDOW_MS);
        self.by_id.insert(id.to_string(), Attempt { expires_ms, taken });
        self.order.push_back((expires_ms, id.to_string()));
    }

    /// Updates the visibility times a retry gave the messages of attempt `id`.
    pub fn set_visible_at(&mut self, id: &str, visible_at_ms: u64) {
        if let Some(a) = self.by_id.get_mut(id) {
            for e in &mut a.taken {
                e.visible_at_ms = visible_at_ms;
            }
        }
    }

    /// Forgets attempt `id`.
    pub fn forget(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Attempts remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn prune(&mut self, now_ms: u64) {
        while let Some((expires, id)) = self.order.front() {
            if *expires > now_ms {
                break;
            }
            // Only if this entry is the id's current one (it may have been remembered again).
            if self.by_id.get(id).is_some_and(|a| a.expires_ms == *expires) {
                self.by_id.remove(id);
            }
            self.order.pop_front();
        }
        // Entries of ids remembered again stay in `order` until they come up; bound them.
        if self.order.len() > 2 * MAX_ATTEMPTS {
            let by_id = &self.by_id;
            self.order.retain(|(expires, id)| by_id.get(id).is_some_and(|a| a.expires_ms == *expires));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64) -> AttemptEntry {
        AttemptEntry { key, receive_count: 1, visible_at_ms: 100 }
    }

    #[test]
    fn attempts_are_remembered_for_five_minutes() {
        let mut a = ReceiveAttempts::default();
        a.remember("x", 0, vec![entry(1), entry(2)]);
        assert_eq!(a.get("x", ATTEMPT_WINDOW_MS - 1).map(|t| t.len()), Some(2));
        assert_eq!(a.get("x", ATTEMPT_WINDOW_MS), None);
        assert!(a.is_empty(), "pruned");
        // Remembered again, the newer one counts: the old expiry does not prune it.
        a.remember("y", 0, vec![entry(1)]);
        a.remember("y", 1000, vec![entry(3)]);
        assert_eq!(a.get("y", ATTEMPT_WINDOW_MS + 10), Some(vec![entry(3)]));
        a.forget("y");
        assert_eq!(a.get("y", 0), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut a = ReceiveAttempts::default();
        for i in 0..(MAX_ATTEMPTS as u64 + 10) {
            a.remember(&format!("id-{i}"), i, vec![entry(i)]);
        }
        assert_eq!(a.len(), MAX_ATTEMPTS);
        assert_eq!(a.get("id-0", MAX_ATTEMPTS as u64), None, "the oldest went first");
        for i in 0..(3 * MAX_ATTEMPTS as u64) {
            a.remember("same", 20_000 + i, vec![entry(i)]);
        }
        assert!(a.order.len() <= 2 * MAX_ATTEMPTS + 1, "order holds {}", a.order.len());
    }

    #[test]
    fn attempt_ids_are_checked() {
        for bad in ["", "with space", "ü", &"x".repeat(129)] {
            assert!(validate_attempt_id(bad).is_err(), "{bad:?}");
        }
        validate_attempt_id(&"!".repeat(128)).expect("punctuation");
    }
}
