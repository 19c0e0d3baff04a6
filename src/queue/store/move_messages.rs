//! One step of a message move task: move up to `max` messages from the source, in key order,
//! each as one frame (the delete from the source, the message in its destination, and the
//! task's new count), so a crash leaves every message in exactly one of the two queues and the
//! count a resumed task starts from is the count of moves that are durable.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::Result;
use crate::format::queue_record::QueueRecord;
use crate::queue::state::{Msg, QueueState};
use crate::queue::store::{arriving, format_id, lock_in_order, split_guards, QueueCell, QueueStore};

/// Where a move task is and what it moves.
#[derive(Debug, Clone, Copy)]
pub struct MoveJob<'a> {
    /// The task's id (from the catalog).
    pub task: u32,
    /// Its source queue.
    pub source: &'a QueueCell,
    /// Its destination; `None`: each message back to the queue it was dead-lettered from.
    pub destination: Option<&'a Arc<QueueCell>>,
    /// Only messages with a key below this move (those in the source when the task started).
    pub before_key: u64,
    /// The key to go on from (0 after a resume: the whole source is looked at again).
    pub from_key: u64,
    /// Messages the task moved before this step.
    pub moved_before: u64,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MoveStep {
    /// Messages this step moved.
    pub moved: u64,
    /// The key the next step goes on from.
    pub next_key: u64,
    /// True once no message below the task's bound is left to look at (those in flight when
    /// the task came to them stay in the source).
    pub done: bool,
    /// Why the task cannot go on: a message with nowhere to go. It stays in the source.
    pub failure: Option<String>,
}

impl QueueStore {
    /// Moves up to `max` messages for a move task (see the module documentation).
    pub fn move_messages(&self, job: &MoveJob<'_>, max: u64) -> Result<MoveStep> {
        let source = job.source;
        let now = self.clock.now_ms();
        let mut step = MoveStep { next_key: job.from_key, ..MoveStep::default() };
        let mut origins: Option<HashMap<u32, Arc<QueueCell>>> = None;
        let mut last = 0;
        while step.moved < max {
            // The next message to move, read under the source's lock (compaction may move it
            // and drop its old segment once the lock is free).
            let (key, msg, mut m) = {
                let mut st = self.lock_live(source)?;
                let (next, from) = next_to_move(&mut st, step.next_key, job.before_key, now);
                let Some((key, msg)) = next else {
                    step.next_key = from;
                    step.done = true;
                    break;
                };
                (key, msg, self.read_message(msg.anchor)?)
            };
            let target = match job.destination {
                Some(t) => Some(Arc::clone(t)),
                None => origins
                    .get_or_insert_with(|| self.queues.read().values().map(|c| (c.id, Arc::clone(c))).collect())
                    .get(&m.origin_queue)
                    .cloned(),
            };
            let Some(target) = target.filter(|t| t.id != source.id && !t.deleted.load(Ordering::SeqCst)) else {
                step.next_key = key;
                step.failure = Some(format!(
                    "message {} has no queue to go back to (it was not dead-lettered from a queue that still \
                     exists); start the task with a destination",
                    format_id(&m.message_id)
                ));
                break;
            };
            let mut guards = lock_in_order(source, Some(&target));
            let (source_st, target_st) = split_guards(&mut guards, source.id);
            let Some(target_st) = target_st else {
                // Two distinct queues always lock as two; kept as a failure, not a loop.
                step.failure = Some(format!("queue {:?} is the source itself", target.name));
                break;
            };
            if source.deleted.load(Ordering::SeqCst) {
                return Err(crate::Error::NotFound { kind: "queue", name: source.name.clone() });
            }
            if source_st.get(key).copied().is_none_or(|now_msg| changed(&now_msg, &msg, now)) {
                step.next_key = key; // received, deleted or moved meanwhile: look again
                continue;
            }
            if target_st.config.fifo != source_st.config.fifo {
                step.next_key = key;
                step.failure = Some(format!(
                    "queue {:?} is {} and the source is not: messages move between queues of one type",
                    target.name,
                    if target_st.config.fifo { "FIFO" } else { "standard" }
                ));
                break;
            }
            arriving(&mut m, target.id, 0, now);
            let (sent_ms, group, message_id) = (m.sent_ms, m.group.clone(), m.message_id);
            let moved = job.moved_before + step.moved + 1;
            let records = [
                QueueRecord::Delete { queue: source.id, key },
                QueueRecord::Message(m),
                QueueRecord::MoveProgress { queue: source.id, task: job.task, moved },
            ];
            let outcome = self.write(&records, now)?;
            source_st.remove(key);
            source_st.move_progress.insert(job.task, moved);
            let new_key = outcome.base_seq + 1;
            target_st.insert(new_key, new_key, &message_id, sent_ms, now, &group, now);
            drop(guards);
            target.wake_everyone();
            step.moved += 1;
            step.next_key = key.saturating_add(1);
            last = outcome.next_seq;
        }
        if !step.done && step.failure.is_none() {
            // The rate's share is used up: if nothing is left to move, the task is done now,
            // not at its next step a second later.
            let mut st = self.lock_live(source)?;
            if let (None, from) = next_to_move(&mut st, step.next_key, job.before_key, now) {
                step.next_key = from;
                step.done = true;
            }
        }
        if last > 0 {
            self.log.wait_durable(last)?;
        }
        Ok(step)
    }
}

/// The next message a move task takes from `from` on (below `before_key`: those that were in
/// the source when it started), skipping messages in flight and removing those past retention
/// (gone, not moved); with where the next look starts.
fn next_to_move(st: &mut QueueState, from: u64, before_key: u64, now: u64) -> (Option<(u64, Msg)>, u64) {
    st.pump(now);
    let mut next = None;
    let mut expired = Vec::new();
    let mut from = from;
    while let Some((key, msg)) = st.first_from(from) {
        if key >= before_key {
            break;
        }
        from = key.saturating_add(1);
        if st.expired(msg, now) {
            expired.push(key);
        } else if !(msg.in_flight() && msg.visible_at_ms > now) {
            next = Some((key, *msg));
            break;
        }
    }
    for key in expired {
        st.remove(key);
    }
    (next, from)
}

/// True if the message changed since it was chosen (a move would act on stale state).
fn changed(now_msg: &Msg, chosen: &Msg, now: u64) -> bool {
    now_msg.anchor != chosen.anchor || (now_msg.in_flight() && now_msg.visible_at_ms > now)
}
