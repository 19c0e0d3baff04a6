//! Handing a received message over to another queue by its receipt handle: what an HTTP
//! subscription does with a delivery it gives up on (into the subscription's dead-letter
//! queue). One frame holds the delete here and the message there, so a crash leaves it in
//! exactly one of the two.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::queue_record::QueueRecord;
use crate::queue::store::{arriving, lock_in_order, split_guards, QueueCell, QueueStore};

impl QueueStore {
    /// Moves the message a current receipt handle of `cell` names into `target`: a new message
    /// there (visible now, never received, without a deduplication id or sender id), gone here.
    /// Both queues must be of one type (standard or FIFO).
    pub fn move_received(&self, cell: &QueueCell, handle: &str, target: &Arc<QueueCell>) -> Result<()> {
        let receipt = self.verify_receipt(cell, handle)?;
        if target.id == cell.id {
            return Err(Error::InvalidArgument(format!("queue {:?} cannot hand a message to itself", cell.name)));
        }
        let mut guards = lock_in_order(cell, Some(target));
        let (st, target_st) = split_guards(&mut guards, cell.id);
        let Some(target_st) = target_st else {
            return Err(Error::InvalidArgument(format!("queue {:?} cannot hand a message to itself", cell.name)));
        };
        if cell.deleted.load(Ordering::SeqCst) {
            return Err(Error::NotFound { kind: "queue", name: cell.name.clone() });
        }
        if target.deleted.load(Ordering::SeqCst) {
            return Err(Error::NotFound { kind: "queue", name: target.name.clone() });
        }
        if st.config.fifo != target_st.config.fifo {
            return Err(Error::InvalidArgument(format!(
                "queue {:?} is {}: messages move between queues of one type",
                target.name,
                if target_st.config.fifo { "FIFO" } else { "standard" }
            )));
        }
        let (r, msg) = Self::check_current(st, receipt)?;
        let now = self.clock.now_ms();
        let mut m = self.read_message(msg.anchor)?;
        arriving(&mut m, target.id, 0, now);
        m.sender_id = Bytes::new();
        let (sent_ms, group, message_id) = (m.sent_ms, m.group.clone(), m.message_id);
        let outcome =
            self.write(&[QueueRecord::Delete { queue: cell.id, key: r.key }, QueueRecord::Message(m)], now)?;
        st.remove(r.key);
        let new_key = outcome.base_seq + 1;
        target_st.insert(new_key, new_key, &message_id, sent_ms, now, &group, now);
        drop(guards);
        target.wake_everyone();
        self.log.wait_durable(outcome.next_seq)
    }
}

impl QueueStore {
    /// Writes one message the engine makes itself (a subscription confirmation request) into a
    /// standard queue, as given: its id, sender id and body are kept. Returns once durable.
    pub(crate) fn enqueue(&self, cell: &QueueCell, mut m: crate::format::queue_record::MessageRecord) -> Result<()> {
        let mut st = self.lock_live(cell)?;
        if st.config.fifo {
            return Err(Error::InvalidArgument(format!("queue {:?} is FIFO: it takes sends only", cell.name)));
        }
        let now = self.clock.now_ms();
        m.queue = cell.id;
        m.key = crate::format::queue_record::OWN_SEQ;
        m.sent_ms = now;
        m.visible_at_ms = now;
        let (message_id, group) = (m.message_id, m.group.clone());
        let outcome = self.write(&[QueueRecord::Message(m)], now)?;
        st.insert(outcome.base_seq, outcome.base_seq, &message_id, now, now, &group, now);
        drop(st);
        cell.wake_everyone();
        self.log.wait_durable(outcome.next_seq)
    }
}
