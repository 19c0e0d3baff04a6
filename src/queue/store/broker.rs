//! What message brokers (AMQP, and the other open protocols) need of the store beyond SQS:
//! deliveries of any bytes (an empty body too) to several queues in one frame, deliveries held
//! until released (a consumer's lease that lasts as long as its channel, released at once when
//! the engine opens again), release to the head of the queue, acknowledgements of any number of
//! messages, and a queue's length limit (the oldest ready messages make room).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::MutexGuard;

use super::{receive_records, QueueCell, QueueStore};
use crate::error::{Error, Result};
use crate::format::queue_record::{MessageRecord, QueueRecord, OWN_SEQ};
use crate::queue::attributes::{self, to_stored, Attributes};
use crate::queue::state::{QueueState, HELD_UNTIL_RELEASED};
use crate::queue::ReceivedMessage;

/// Most receipt handles one acknowledgement or release frame holds (bigger lists take several
/// frames; each frame is atomic).
pub const MAX_HANDLES_PER_FRAME: usize = 4096;

/// One message for a broker delivery: any bytes, and message attributes (checked as SQS does).
#[derive(Debug, Clone, Default)]
pub struct BrokerMessage {
    /// The body (may be empty).
    pub body: Bytes,
    /// Attributes.
    pub attributes: Attributes,
}

impl QueueStore {
    /// Writes each item's messages (one message for several queues, or one for one) as one
    /// frame for the whole call: every copy of every item is durable together. A queue with a
    /// length limit drops its oldest ready messages to make room (in the same frame); messages
    /// a queue refuses (too large for it) are left out. Returns, per item, how many queues took
    /// it.
    pub fn deliver(&self, items: &[Vec<(Arc<QueueCell>, BrokerMessage)>]) -> Result<Vec<usize>> {
        self.deliver_and_remove(items, &[])
    }

    /// [`QueueStore::deliver`], and in the same frame deletes the messages that `removals`'
    /// receipt handles name (a dead-letter move: the message leaves its queue exactly when its
    /// copies arrive). A handle that no longer names its message current fails the whole call
    /// before anything is written.
    pub fn deliver_and_remove(
        &self,
        items: &[Vec<(Arc<QueueCell>, BrokerMessage)>],
        removals: &[(Arc<QueueCell>, &str)],
    ) -> Result<Vec<usize>> {
        let verified: Vec<_> =
            removals.iter().map(|(c, h)| self.verify_receipt(c, h).map(|r| (c.id, r))).collect::<Result<_>>()?;
        let mut cells: Vec<Arc<QueueCell>> = items.iter().flat_map(|i| i.iter().map(|(c, _)| Arc::clone(c))).collect();
        cells.extend(removals.iter().map(|(c, _)| Arc::clone(c)));
        cells.sort_by_key(|c| c.id);
        cells.dedup_by_key(|c| c.id);
        let mut guards: Vec<MutexGuard<'_, QueueState>> = cells.iter().map(|c| c.state.lock()).collect();
        let slot = |id: u32| cells.iter().position(|c| c.id == id);
        let now = self.clock().now_ms();
        let mut removed: Vec<(usize, u64)> = Vec::new();
        for (queue, receipt) in verified {
            let Some(s) = slot(queue) else { continue };
            let (r, _) = Self::check_current(&guards[s], receipt)?;
            if !removed.contains(&(s, r.key)) {
                removed.push((s, r.key));
            }
        }
        let mut records = Vec::new();
        let mut placed = Vec::new(); // (slot, record index)
        let mut delivered = vec![0usize; items.len()];
        let mut incoming: HashMap<usize, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            for (cell, message) in item {
                let Some(s) = slot(cell.id) else { continue };
                if cell.deleted.load(Ordering::SeqCst) {
                    continue;
                }
                let size = message.body.len() + attributes::validate(&message.attributes)?;
                if size > guards[s].config.max_message_bytes {
                    continue;
                }
                placed.push((s, records.len()));
                *incoming.entry(s).or_default() += 1;
                delivered[i] += 1;
                records.push(QueueRecord::Message(MessageRecord {
                    queue: cell.id,
                    key: OWN_SEQ,
                    message_id: self.new_message_id(),
                    sent_ms: now,
                    visible_at_ms: now,
                    first_receive_ms: 0,
                    receive_count: 0,
                    origin_queue: 0,
                    group: Bytes::new(),
                    dedup: Bytes::new(),
                    trace_header: Bytes::new(),
                    sender_id: Bytes::new(),
                    attributes: to_stored(&message.attributes),
                    body: message.body.clone(),
                }));
            }
        }
        if records.is_empty() && removed.is_empty() {
            return Ok(delivered);
        }
        // Length limits: the oldest ready messages go first, then (if the arrivals alone are
        // too many) the earliest arrivals are not written at all.
        let mut dropped: Vec<(usize, u64)> = Vec::new();
        let mut skipped: Vec<usize> = Vec::new();
        for (&s, &n) in &incoming {
            let Some(limit) = guards[s].config.broker.as_ref().and_then(|b| b.max_length) else { continue };
            let ready: Vec<u64> =
                guards[s].iter().filter(|(_, m)| !m.in_flight() && m.visible_at_ms <= now).map(|(k, _)| k).collect();
            let over = (ready.len() as u64 + n as u64).saturating_sub(limit);
            let from_old = over.min(ready.len() as u64) as usize;
            dropped.extend(ready[..from_old].iter().map(|&k| (s, k)));
            let from_new = (over as usize) - from_old;
            skipped.extend(placed.iter().filter(|(p, _)| *p == s).take(from_new).map(|&(_, r)| r));
        }
        let mut written = Vec::with_capacity(records.len() + dropped.len());
        let mut keyed = Vec::new(); // (slot, position in `written`)
        for (s, r) in &placed {
            if skipped.contains(r) {
                continue;
            }
            keyed.push((*s, written.len()));
            written.push(records[*r].clone());
        }
        for &(s, key) in dropped.iter().chain(&removed) {
            written.push(QueueRecord::Delete { queue: cells[s].id, key });
        }
        if written.is_empty() {
            return Ok(delivered);
        }
        let outcome = self.write_as(&written, now, "delivery to every bound queue (one frame)")?;
        for &(s, key) in dropped.iter().chain(&removed) {
            guards[s].remove(key);
        }
        for &(s, at) in &keyed {
            let key = outcome.base_seq + at as u64;
            if let Some(QueueRecord::Message(m)) = written.get(at) {
                guards[s].insert(key, key, &m.message_id, m.sent_ms, m.visible_at_ms, &m.group, now);
            }
        }
        drop(guards);
        for cell in &cells {
            cell.wake_everyone();
        }
        self.log().wait_durable(outcome.next_seq)?;
        Ok(delivered)
    }

    /// Receives up to `max` visible messages without waiting and holds them: they stay in
    /// flight until acknowledged ([`QueueStore::ack`]) or released
    /// ([`QueueStore::release_to_head`]), and the next open of the engine makes them visible
    /// again (whoever held them is gone).
    pub fn receive_held(&self, cell: &QueueCell, max: usize) -> Result<Vec<ReceivedMessage>> {
        let mut st = self.lock_live(cell)?;
        let now = self.clock().now_ms();
        // `now + HELD_UNTIL_RELEASED` saturates to the marker itself.
        let selection = st.select(now, max.max(1), HELD_UNTIL_RELEASED, None);
        if selection.delivered.is_empty() {
            return Ok(Vec::new());
        }
        let outcome = self.write(&receive_records(cell.id, &selection.delivered, now), now)?;
        let fifo = st.config.fifo;
        let mut taken = Vec::with_capacity(selection.delivered.len());
        for t in &selection.delivered {
            debug_assert_eq!(t.msg.visible_at_ms, HELD_UNTIL_RELEASED, "a held receive holds until released");
            taken.push((t, self.read_message(t.msg.anchor)?));
        }
        drop(st);
        let out = self.received_all(cell.id, fifo, taken);
        self.log().wait_durable(outcome.next_seq)?;
        Ok(out)
    }

    /// Makes in-flight messages visible again at once, at the head of the queue, in the order
    /// of their keys (their original order): the next receive takes them first. Per-handle
    /// results; a handle of a message that is gone or no longer in flight under it is an error
    /// of its own.
    pub fn release_to_head(&self, cell: &QueueCell, handles: &[&str]) -> Result<Vec<Result<()>>> {
        self.by_handles(cell, handles, true)
    }

    /// Deletes the messages of any number of receipt handles (in frames of at most
    /// [`MAX_HANDLES_PER_FRAME`]). Per-handle results.
    pub fn ack(&self, cell: &QueueCell, handles: &[&str]) -> Result<Vec<Result<()>>> {
        self.by_handles(cell, handles, false)
    }

    fn by_handles(&self, cell: &QueueCell, handles: &[&str], release: bool) -> Result<Vec<Result<()>>> {
        let mut results = Vec::with_capacity(handles.len());
        let mut last = 0;
        for chunk in handles.chunks(MAX_HANDLES_PER_FRAME) {
            let verified: Vec<_> = chunk.iter().map(|h| self.verify_receipt(cell, h)).collect();
            let mut st = self.lock_live(cell)?;
            let now = self.clock().now_ms();
            let mut keys: Vec<(u64, u32)> = Vec::new();
            for receipt in verified {
                match receipt.and_then(|r| Self::check_current(&st, r)) {
                    Ok((_, msg)) if release && !msg.in_flight() => {
                        results.push(Err(Error::InvalidReceiptHandle("its message is not in flight".into())))
                    }
                    Ok((r, _)) => {
                        if !keys.iter().any(|(k, _)| *k == r.key) {
                            keys.push((r.key, r.receive_count));
                        }
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            if keys.is_empty() {
                continue;
            }
            keys.sort_unstable();
            let records: Vec<QueueRecord> = keys
                .iter()
                .map(|&(key, receive_count)| {
                    if release {
                        QueueRecord::ChangeVisibility { queue: cell.id, key, receive_count, visible_at_ms: now }
                    } else {
                        QueueRecord::Delete { queue: cell.id, key }
                    }
                })
                .collect();
            last = self.write(&records, now)?.next_seq;
            if release {
                // Last first, so the first ends up at the very front.
                for &(key, _) in keys.iter().rev() {
                    st.release_to_head(key, now);
                }
            } else {
                for &(key, _) in &keys {
                    st.remove(key);
                }
            }
            let fifo = st.config.fifo;
            drop(st);
            if release || fifo {
                cell.wake_everyone();
            }
        }
        if last > 0 {
            self.log().wait_durable(last)?;
        }
        Ok(results)
    }

    /// Deletes the messages ready now (not those in flight: a broker's purge), in frames of at
    /// most [`MAX_HANDLES_PER_FRAME`]. Returns how many.
    pub fn purge_ready(&self, cell: &QueueCell) -> Result<u64> {
        let mut st = self.lock_live(cell)?;
        let now = self.clock().now_ms();
        st.pump(now);
        let ready: Vec<u64> =
            st.iter().filter(|(_, m)| !m.in_flight() && m.visible_at_ms <= now).map(|(k, _)| k).collect();
        let mut last = 0;
        for chunk in ready.chunks(MAX_HANDLES_PER_FRAME) {
            let records: Vec<QueueRecord> =
                chunk.iter().map(|&key| QueueRecord::Delete { queue: cell.id, key }).collect();
            last = self.write(&records, now)?.next_seq;
            for &key in chunk {
                st.remove(key);
            }
        }
        drop(st);
        if last > 0 {
            self.log().wait_durable(last)?;
        }
        Ok(ready.len() as u64)
    }

    /// How many messages are ready (visible now) and in flight.
    pub fn ready_and_in_flight(&self, cell: &QueueCell) -> (u64, u64) {
        let now = self.clock().now_ms();
        let mut st = cell.state.lock();
        st.pump(now);
        let c = st.counts(now);
        (c.visible, c.in_flight)
    }
}

/// A batch for [`QueueStore::deliver`] of one message to one queue.
pub fn single(cell: &Arc<QueueCell>, message: BrokerMessage) -> Vec<(Arc<QueueCell>, BrokerMessage)> {
    vec![(Arc::clone(cell), message)]
}
