//! The in-memory index of one queue: which messages are live, where their latest full record
//! is (the anchor), which are visible, in flight or delayed, the FIFO groups, and the dedup
//! window. Pure logic, no I/O: the store decides what to write, this decides what is true.
//!
//! Messages live in a [`KeyedStore`] in key (send) order; a waiting message costs its entry
//! there and nothing else. Standard queues find visible messages with a cursor that moves
//! forward through that order, passing each message once, plus a short list of messages behind
//! the cursor that became visible again (visibility ran out, changed to zero, delay ended).
//! FIFO queues keep per-group queues of keys.
//!
//! Live operations keep the cursor, timer heap and group queues up to date incrementally;
//! replay only fills `msgs` and then calls [`QueueState::rebuild`], and the two must agree.
//!
//! Costs: a receive moves the cursor (or pops the returned list, or ready groups) and the timer
//! heap, never scans; every structure is O(1) amortized or O(log n) per message.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use crate::queue::attempts::ReceiveAttempts;
use crate::queue::config::QueueConfig;
use crate::queue::dedup::DedupWindow;
use crate::queue::keyed::KeyedStore;
use crate::queue::receipt::{id_tag, IdTag};

/// The visibility time of a held delivery ([`crate::queue::store::QueueStore::receive_held`]):
/// in flight until released or acknowledged, and visible again when the engine next opens.
pub const HELD_UNTIL_RELEASED: u64 = u64::MAX;

const IN_FLIGHT: u8 = 1;
const DELAYED: u8 = 2;
const NO_GROUP: u32 = u32::MAX;

/// What the index keeps per live message (the body stays in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// Sequence number of the latest full record of the message (where its body is read).
    pub anchor: u64,
    /// When it was first sent.
    pub sent_ms: u64,
    /// When it is (next) visible.
    pub visible_at_ms: u64,
    /// When it was first received, as milliseconds after `sent_ms` plus one (0: never). A u32
    /// holds 49 days, beyond any retention, and keeps the index at 40 bytes a message.
    first_receive_after_ms: u32,
    /// How often it has been received.
    pub receive_count: u32,
    group: u32,
    flags: u8,
    /// Bits of the message id, which receipt handles carry (fits beside `flags` in the 40).
    id_tag: IdTag,
}

impl Msg {
    /// A message with no receive time and no flags yet.
    fn new(
        anchor: u64,
        message_id: &[u8; 16],
        sent_ms: u64,
        visible_at_ms: u64,
        receive_count: u32,
        group: u32,
    ) -> Msg {
        Msg {
            anchor,
            sent_ms,
            visible_at_ms,
            first_receive_after_ms: 0,
            receive_count,
            group,
            flags: 0,
            id_tag: id_tag(message_id),
        }
    }

    /// When it was first received (0: never).
    pub fn first_receive_ms(&self) -> u64 {
        match self.first_receive_after_ms {
            0 => 0,
            n => self.sent_ms.saturating_add(u64::from(n) - 1),
        }
    }

    fn note_first_receive(&mut self, received_ms: u64) {
        if self.first_receive_after_ms == 0 {
            let after = received_ms.saturating_sub(self.sent_ms).saturating_add(1);
            self.first_receive_after_ms = u32::try_from(after).unwrap_or(u32::MAX);
        }
    }

    /// The bits of its message id that its receipt handles carry.
    pub fn id_tag(&self) -> IdTag {
        self.id_tag
    }

    /// True while a receiver holds it.
    pub fn in_flight(&self) -> bool {
        self.flags & IN_FLIGHT != 0
    }

    /// The slot of its FIFO group in its queue's index (`None` in a standard queue): the same
    /// number for every message of one group while the group has messages.
    pub fn group_slot(&self) -> Option<u32> {
        (self.group != NO_GROUP).then_some(self.group)
    }
}

#[derive(Debug, Clone, Default)]
struct Group {
    name: Bytes,
    /// Live messages of the group in send order; the in-flight ones are a prefix.
    pending: VecDeque<u64>,
    in_flight: u32,
    queued: bool,
}

/// A message taken by a receive.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    /// Message key.
    pub key: u64,
    /// Its state after the receive (or at removal, for a dead-letter move).
    pub msg: Msg,
}

/// What a receive selected.
#[derive(Debug, Default)]
pub struct Selection {
    /// Messages now in flight for this receiver.
    pub delivered: Vec<Taken>,
    /// Messages over the max-receive count, removed for a move to the dead-letter queue.
    pub to_dead_letter: Vec<Taken>,
}

/// Approximate counts for `attributes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Visible now.
    pub visible: u64,
    /// Held by receivers.
    pub in_flight: u64,
    /// Not yet visible (delivery delay).
    pub delayed: u64,
    /// Sent time of the oldest live message.
    pub oldest_sent_ms: Option<u64>,
}

/// One queue's index.
#[derive(Debug)]
pub struct QueueState {
    /// Catalog id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Attributes.
    pub config: QueueConfig,
    msgs: KeyedStore<Msg>,
    /// Standard queues: the ready scan has passed every key below this one. Messages at or
    /// above it that are visible are ready; it only moves forward (until a rebuild).
    cursor: u64,
    /// Standard queues: messages behind the cursor that became visible again, in the order
    /// they did, each with the store's next key at that moment. One waits until the cursor has
    /// passed that key, so it queues behind everything already waiting, as in one ready list.
    /// May hold stale entries (removed or taken since); they are skipped when they come up.
    returned: VecDeque<(u64, u64)>,
    /// (when, key): when a message's visibility or delay ends, or it expires. Entries a later
    /// change superseded are skipped when they come due; the one a message has when it is
    /// removed is removed with it, so the set holds about one entry per in-flight or delayed
    /// message instead of one per receive of the last visibility timeout.
    timers: BTreeSet<(u64, u64)>,
    groups: Vec<Group>,
    group_ids: HashMap<Bytes, u32>,
    free_groups: Vec<u32>,
    ready_groups: VecDeque<u32>,
    /// FIFO deduplication window.
    pub dedup: DedupWindow,
    /// FIFO receive request attempts (in memory only).
    pub attempts: ReceiveAttempts,
    /// When the queue was last purged (from its latest Purge record).
    pub last_purge_ms: Option<u64>,
    /// Moves counted by the message move tasks whose source this queue is, by task id (from
    /// their latest MoveProgress record).
    pub move_progress: BTreeMap<u32, u64>,
}

impl QueueState {
    /// An empty index.
    pub fn new(id: u32, name: String, config: QueueConfig) -> Self {
        QueueState {
            id,
            name,
            config,
            msgs: KeyedStore::new(),
            cursor: 0,
            returned: VecDeque::new(),
            timers: BTreeSet::new(),
            groups: Vec::new(),
            group_ids: HashMap::new(),
            free_groups: Vec::new(),
            ready_groups: VecDeque::new(),
            dedup: DedupWindow::default(),
            attempts: ReceiveAttempts::default(),
            last_purge_ms: None,
            move_progress: BTreeMap::new(),
        }
    }

    /// Live messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// True if no message is live.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// A live message.
    pub fn get(&self, key: u64) -> Option<&Msg> {
        self.msgs.get(key)
    }

    /// The first live message with a key at or above `key`.
    pub fn first_from(&self, key: u64) -> Option<(u64, &Msg)> {
        self.msgs.first_from(key)
    }

    /// Every live message, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Msg)> {
        self.msgs.iter()
    }

    /// Every live message with a key at or above `key`, in key order.
    pub fn iter_from(&self, key: u64) -> impl Iterator<Item = (u64, &Msg)> {
        self.msgs.iter_from(key)
    }

    /// The FIFO group of a message (empty for standard queues).
    pub fn group_name(&self, msg: &Msg) -> Bytes {
        self.groups.get(msg.group as usize).map(|g| g.name.clone()).unwrap_or_default()
    }

    /// How long a message lives: the retention, or a broker queue's shorter message TTL.
    fn retention_ms(&self) -> u64 {
        let retention = self.config.retention.as_millis() as u64;
        match self.config.broker.as_ref().and_then(|b| b.message_ttl) {
            Some(ttl) => retention.min(ttl.as_millis() as u64),
            None => retention,
        }
    }

    /// True if the message is past the queue's retention at `now_ms`.
    pub fn expired(&self, msg: &Msg, now_ms: u64) -> bool {
        msg.sent_ms.saturating_add(self.retention_ms()) <= now_ms
    }

    /// [`timer_at`] with this queue's retention.
    fn timer_at(&self, msg: &Msg) -> u64 {
        timer_at(msg, self.retention_ms())
    }

    fn group_slot(&mut self, name: &Bytes) -> u32 {
        if !self.config.fifo {
            return NO_GROUP;
        }
        if let Some(&g) = self.group_ids.get(name) {
            return g;
        }
        let group = Group { name: name.clone(), ..Group::default() };
        let g = match self.free_groups.pop() {
            Some(g) => {
                self.groups[g as usize] = group;
                g
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1) as u32
            }
        };
        self.group_ids.insert(name.clone(), g);
        g
    }

    fn release_group_if_idle(&mut self, g: u32) {
        let Some(group) = self.groups.get_mut(g as usize) else { return };
        if group.pending.is_empty() && group.in_flight == 0 {
            let name = std::mem::take(&mut group.name);
            self.group_ids.remove(&name);
            *group = Group::default();
            self.free_groups.push(g);
        }
    }

    fn enqueue_group(&mut self, g: u32) {
        if let Some(group) = self.groups.get_mut(g as usize) {
            if !group.queued && group.in_flight == 0 && !group.pending.is_empty() {
                group.queued = true;
                self.ready_groups.push_back(g);
            }
        }
    }

    /// Adds a message (a new send, a dead-letter arrival, a redrive) as of `now_ms`.
    /// `visible_at_ms` in the future makes it delayed.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        key: u64,
        anchor: u64,
        message_id: &[u8; 16],
        sent_ms: u64,
        visible_at_ms: u64,
        group: &Bytes,
        now_ms: u64,
    ) {
        let group = self.group_slot(group);
        let mut msg = Msg::new(anchor, message_id, sent_ms, visible_at_ms, 0, group);
        if visible_at_ms > now_ms {
            msg.flags |= DELAYED;
            self.timers.insert((self.timer_at(&msg), key));
        }
        debug_assert!(!self.msgs.contains_key(key), "message key {key} inserted twice");
        // Keys only grow here (the store assigns and indexes them under this queue's lock), so
        // this appends; the store would place an older key correctly all the same.
        debug_assert!(key >= self.msgs.next_key(), "message key {key} inserted out of order");
        self.msgs.insert(key, msg);
        if group == NO_GROUP {
            if visible_at_ms <= now_ms {
                self.make_ready(key);
            }
        } else {
            self.groups[group as usize].pending.push_back(key);
            self.enqueue_group(group);
        }
    }

    /// Moves due timers: in-flight messages whose visibility ran out and delayed messages whose
    /// delay ended become visible.
    pub fn pump(&mut self, now_ms: u64) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now_ms {
                break;
            }
            self.timers.pop_first();
            let Some(current) = self.msgs.get(key).copied() else { continue };
            if self.expired(&current, now_ms) {
                self.remove(key);
                continue;
            }
            let Some(msg) = self.msgs.get_mut(key) else { continue };
            if msg.visible_at_ms > now_ms || msg.flags & (IN_FLIGHT | DELAYED) == 0 {
                continue; // superseded by a later change, or an expiry timer of a message since moved on
            }
            let was_in_flight = msg.flags & IN_FLIGHT != 0;
            msg.flags &= !(IN_FLIGHT | DELAYED);
            let g = msg.group;
            self.became_visible(key, g, was_in_flight);
        }
    }

    fn became_visible(&mut self, key: u64, g: u32, was_in_flight: bool) {
        if g == NO_GROUP {
            self.make_ready(key);
            return;
        }
        if was_in_flight {
            if let Some(group) = self.groups.get_mut(g as usize) {
                group.in_flight = group.in_flight.saturating_sub(1);
            }
        }
        self.enqueue_group(g);
    }

    /// Lists a visible message of a standard queue: one the cursor has not reached yet needs
    /// nothing, the cursor will find it.
    fn make_ready(&mut self, key: u64) {
        if key < self.cursor {
            self.returned.push_back((self.msgs.next_key(), key));
        }
    }

    /// The next listed key of a standard queue: the returned list's front once the cursor has
    /// passed every key that was waiting before it, else the next live message at the cursor.
    /// Moves past what it lists, so each message is listed once per time it becomes visible.
    fn next_listed(&mut self) -> Option<u64> {
        loop {
            if let Some(&(behind, key)) = self.returned.front() {
                if behind <= self.cursor {
                    self.returned.pop_front();
                    return Some(key);
                }
            }
            match self.msgs.first_from(self.cursor) {
                Some((key, _)) => {
                    self.cursor = key.saturating_add(1);
                    return Some(key);
                }
                None if self.returned.is_empty() => {
                    self.cursor = self.cursor.max(self.msgs.next_key());
                    return None;
                }
                // Nothing left ahead: the returned list's entries are all due.
                None => self.cursor = self.cursor.max(self.msgs.next_key()),
            }
        }
    }

    /// True if a receive might find something now (after [`QueueState::pump`]); long polls
    /// check it before sleeping. Stale entries make it true at most once each: the receive that
    /// follows discards them.
    pub fn has_visible(&self, _now_ms: u64) -> bool {
        if self.config.fifo {
            !self.ready_groups.is_empty()
        } else {
            !self.returned.is_empty() || self.cursor < self.msgs.next_key()
        }
    }

    /// When the next timer fires, if any (for long polling).
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Removes a message, wherever it is. Returns it.
    pub fn remove(&mut self, key: u64) -> Option<Msg> {
        let msg = self.msgs.remove(key)?;
        if msg.flags & (IN_FLIGHT | DELAYED) != 0 {
            self.timers.remove(&(self.timer_at(&msg), key));
        }
        if msg.group != NO_GROUP {
            let g = msg.group;
            if let Some(group) = self.groups.get_mut(g as usize) {
                if let Some(pos) = group.pending.iter().position(|&k| k == key) {
                    group.pending.remove(pos);
                }
                if msg.flags & IN_FLIGHT != 0 {
                    group.in_flight = group.in_flight.saturating_sub(1);
                }
            }
            self.enqueue_group(g);
            self.release_group_if_idle(g);
        }
        // Returned-list and timer entries of a removed message are skipped when they come up.
        Some(msg)
    }

    /// Selects up to `max` visible messages, marking them in flight until `now + visibility`.
    /// Expired messages met on the way are dropped; messages already received `max_receives`
    /// times (with a dead-letter queue) are removed for the move.
    pub fn select(&mut self, now_ms: u64, max: usize, visibility_ms: u64, max_receives: Option<u32>) -> Selection {
        self.pump(now_ms);
        let mut out = Selection::default();
        if self.config.fifo {
            self.select_fifo(now_ms, max, visibility_ms, max_receives, &mut out);
        } else {
            while out.delivered.len() < max {
                let Some(key) = self.next_listed() else { break };
                let Some(msg) = self.msgs.get(key) else { continue };
                if msg.flags & (IN_FLIGHT | DELAYED) != 0 {
                    continue; // stale: a timer tracks it
                }
                if msg.visible_at_ms > now_ms {
                    // Listed by someone whose clock reading was later than this receive's.
                    self.defer(key);
                    continue;
                }
                self.take(key, now_ms, visibility_ms, max_receives, &mut out);
            }
        }
        out
    }

    fn select_fifo(
        &mut self,
        now_ms: u64,
        max: usize,
        visibility_ms: u64,
        max_receives: Option<u32>,
        out: &mut Selection,
    ) {
        let mut blocked = Vec::new();
        while out.delivered.len() < max {
            let Some(g) = self.ready_groups.pop_front() else { break };
            let Some(group) = self.groups.get_mut(g as usize) else { continue };
            group.queued = false;
            if group.in_flight > 0 {
                continue;
            }
            let mut taken_here = 0;
            while out.delivered.len() < max {
                let Some(&key) = self.groups[g as usize].pending.get(taken_here) else { break };
                let Some(msg) = self.msgs.get(key) else {
                    self.groups[g as usize].pending.remove(taken_here);
                    continue;
                };
                if msg.visible_at_ms > now_ms || msg.flags & DELAYED != 0 {
                    if msg.flags & (DELAYED | IN_FLIGHT) == 0 {
                        self.defer(key);
                    }
                    break; // order: nothing after a delayed message of the group goes first
                }
                let before = out.delivered.len();
                self.take(key, now_ms, visibility_ms, max_receives, out);
                if out.delivered.len() > before {
                    taken_here += 1;
                }
            }
            let group = &self.groups[g as usize];
            if taken_here == 0 && !group.pending.is_empty() && group.in_flight == 0 {
                // Head still delayed: its timer requeues the group. Anything else: try again.
                blocked.push(g);
            }
        }
        for g in blocked {
            let head_delayed = self.groups[g as usize]
                .pending
                .front()
                .and_then(|&k| self.msgs.get(k))
                .is_some_and(|m| m.visible_at_ms > now_ms);
            if !head_delayed {
                self.enqueue_group(g);
            }
        }
    }

    /// Turns a message that is not yet visible (but was listed as if it were) into a delayed
    /// one, so its timer brings it back.
    fn defer(&mut self, key: u64) {
        let Some(msg) = self.msgs.get_mut(key) else { return };
        msg.flags |= DELAYED;
        let msg = *msg;
        let at = self.timer_at(&msg);
        self.timers.insert((at, key));
    }

    /// Takes one visible message: expired -> dropped, over the receive limit -> dead-letter,
    /// otherwise delivered.
    fn take(&mut self, key: u64, now_ms: u64, visibility_ms: u64, max_receives: Option<u32>, out: &mut Selection) {
        let Some(msg) = self.msgs.get(key).copied() else { return };
        if self.expired(&msg, now_ms) {
            self.remove(key);
            return;
        }
        if max_receives.is_some_and(|limit| msg.receive_count >= limit) {
            if let Some(msg) = self.remove(key) {
                out.to_dead_letter.push(Taken { key, msg });
            }
            return;
        }
        let visible_at = now_ms.saturating_add(visibility_ms);
        let msg = self.mark_received(key, msg.receive_count.saturating_add(1), visible_at, now_ms);
        if let Some(msg) = msg {
            out.delivered.push(Taken { key, msg });
        }
    }

    /// Records a receive (live or replayed): the receive count, and invisibility until
    /// `visible_at_ms`.
    pub fn mark_received(&mut self, key: u64, receive_count: u32, visible_at_ms: u64, received_ms: u64) -> Option<Msg> {
        let msg = self.msgs.get_mut(key)?;
        let was_in_flight = msg.flags & IN_FLIGHT != 0;
        msg.receive_count = receive_count;
        msg.visible_at_ms = visible_at_ms;
        msg.note_first_receive(received_ms);
        msg.flags = (msg.flags & !DELAYED) | IN_FLIGHT;
        let msg = *msg;
        if !was_in_flight && msg.group != NO_GROUP {
            self.groups[msg.group as usize].in_flight += 1;
        }
        self.timers.insert((self.timer_at(&msg), key));
        Some(msg)
    }

    /// Changes an in-flight message's visibility (a receipt handle's `change_visibility`).
    pub fn change_visibility(&mut self, key: u64, visible_at_ms: u64, now_ms: u64) {
        let Some(msg) = self.msgs.get_mut(key) else { return };
        msg.visible_at_ms = visible_at_ms;
        if visible_at_ms > now_ms {
            self.timers.insert((visible_at_ms, key));
        } else if msg.flags & IN_FLIGHT != 0 {
            msg.flags &= !IN_FLIGHT;
            let g = msg.group;
            self.became_visible(key, g, true);
        }
    }

    /// Makes an in-flight message visible again at `now_ms`, at the front of the ready order
    /// (a broker's requeue: the next receive takes it first).
    pub fn release_to_head(&mut self, key: u64, now_ms: u64) {
        let Some(msg) = self.msgs.get_mut(key) else { return };
        msg.visible_at_ms = now_ms;
        if msg.flags & IN_FLIGHT == 0 {
            return;
        }
        msg.flags &= !IN_FLIGHT;
        let g = msg.group;
        if g != NO_GROUP {
            self.became_visible(key, g, true);
        } else if key < self.cursor {
            // Due at once: nothing it must wait behind.
            self.returned.push_front((0, key));
        }
    }

    /// Sets the anchor of a message that compaction moved forward.
    pub fn set_anchor(&mut self, key: u64, anchor: u64) {
        if let Some(msg) = self.msgs.get_mut(key) {
            debug_assert!(anchor > msg.anchor, "anchors only move forward");
            msg.anchor = anchor;
        }
    }

    /// Deletes every message with a key below `before_key`.
    pub fn purge(&mut self, before_key: u64) {
        let doomed: Vec<u64> = self.msgs.iter().map(|(k, _)| k).take_while(|&k| k < before_key).collect();
        for key in doomed {
            self.remove(key);
        }
    }

    /// Replay: inserts or replaces a message with its full state, without touching the ready
    /// structures (keys come in log order, except a compaction copy whose original is gone,
    /// which the store places by key) ([`QueueState::rebuild`] builds them once replay is done).
    #[allow(clippy::too_many_arguments)]
    pub fn replay_message(
        &mut self,
        key: u64,
        anchor: u64,
        message_id: &[u8; 16],
        sent_ms: u64,
        visible_at_ms: u64,
        first_receive_ms: u64,
        receive_count: u32,
        group: &Bytes,
    ) {
        let tag = id_tag(message_id);
        self.restore_message(key, anchor, tag, sent_ms, visible_at_ms, first_receive_ms, receive_count, group);
    }

    /// Loading a snapshot: a message with the state it had (no ready structures yet, as
    /// replay; keys come in increasing order), its message id known by the bits handles carry.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_message(
        &mut self,
        key: u64,
        anchor: u64,
        id_tag: IdTag,
        sent_ms: u64,
        visible_at_ms: u64,
        first_receive_ms: u64,
        receive_count: u32,
        group: &Bytes,
    ) {
        let group = self.group_slot(group);
        let mut msg = Msg::new(anchor, &[0; 16], sent_ms, visible_at_ms, receive_count, group);
        msg.id_tag = id_tag;
        if first_receive_ms != 0 {
            msg.note_first_receive(first_receive_ms);
        }
        self.msgs.insert(key, msg);
    }

    /// Replay: a receive or visibility change of a message.
    pub fn replay_visibility(&mut self, key: u64, receive_count: u32, visible_at_ms: u64, received_ms: Option<u64>) {
        if let Some(msg) = self.msgs.get_mut(key) {
            if received_ms.is_none() && msg.receive_count != receive_count {
                return; // a change through a handle that was stale by then
            }
            msg.receive_count = receive_count;
            msg.visible_at_ms = visible_at_ms;
            if let Some(at) = received_ms {
                msg.note_first_receive(at);
            }
        }
    }

    /// Replay: a delete (no ready structures yet).
    pub fn replay_remove(&mut self, key: u64) {
        self.msgs.remove(key);
    }

    /// Replay: a purge (no ready structures yet).
    pub fn replay_purge(&mut self, before_key: u64) {
        self.msgs.retain(|k, _| k >= before_key);
    }

    /// Rebuilds the cursor, timers and groups from the messages, in key (send) order, and
    /// drops expired messages. Messages still invisible at `now_ms` are in flight (if ever
    /// received) or delayed.
    pub fn rebuild(&mut self, now_ms: u64) {
        let retention = self.retention_ms();
        self.msgs.retain(|_, m| m.sent_ms.saturating_add(retention) > now_ms);
        // Every visible message is at or after the cursor: the scan finds them in key order.
        self.cursor = 0;
        self.returned.clear();
        self.timers.clear();
        self.ready_groups.clear();
        for g in &mut self.groups {
            g.pending.clear();
            g.in_flight = 0;
            g.queued = false;
        }
        for (key, msg) in self.msgs.iter_mut() {
            msg.flags = 0;
            if msg.visible_at_ms == HELD_UNTIL_RELEASED {
                // Held by a consumer of an earlier opening, which is gone: visible again.
                msg.visible_at_ms = now_ms;
            }
            if msg.visible_at_ms > now_ms {
                msg.flags = if msg.receive_count > 0 { IN_FLIGHT } else { DELAYED };
            }
            let msg = *msg;
            if msg.flags != 0 {
                self.timers.insert((timer_at(&msg, retention), key));
            }
            if msg.group == NO_GROUP {
                continue;
            }
            if let Some(g) = self.groups.get_mut(msg.group as usize) {
                g.pending.push_back(key);
                if msg.flags & IN_FLIGHT != 0 {
                    g.in_flight += 1;
                }
            }
        }
        for g in 0..self.groups.len() as u32 {
            let live_name = self.groups.get(g as usize).is_some_and(|grp| self.group_ids.contains_key(&grp.name));
            if live_name {
                self.release_group_if_idle(g);
                self.enqueue_group(g);
            }
        }
    }

    /// Drops expired messages that are waiting at the front (maintenance: frees memory for
    /// queues nobody receives from). Returns how many.
    pub fn drop_expired(&mut self, now_ms: u64) -> usize {
        let doomed: Vec<u64> = self.msgs.iter().filter(|(_, m)| self.expired(m, now_ms)).map(|(k, _)| k).collect();
        for &key in &doomed {
            self.remove(key);
        }
        doomed.len()
    }

    /// Approximate counts.
    pub fn counts(&self, now_ms: u64) -> Counts {
        let mut c = Counts::default();
        for (_, m) in self.msgs.iter().filter(|(_, m)| !self.expired(m, now_ms)) {
            if m.flags & IN_FLIGHT != 0 && m.visible_at_ms > now_ms {
                c.in_flight += 1;
            } else if m.visible_at_ms > now_ms {
                c.delayed += 1;
            } else {
                c.visible += 1;
            }
            c.oldest_sent_ms = Some(c.oldest_sent_ms.map_or(m.sent_ms, |o: u64| o.min(m.sent_ms)));
        }
        c
    }
}

/// When a timer for `msg` must fire: when it becomes visible, or earlier when it expires first
/// (an expired message is gone even while in flight or delayed).
fn timer_at(msg: &Msg, retention_ms: u64) -> u64 {
    msg.visible_at_ms.min(msg.sent_ms.saturating_add(retention_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_keeps_at_most_40_bytes_per_message() {
        assert!(std::mem::size_of::<Msg>() <= 40, "Msg is {} bytes", std::mem::size_of::<Msg>());
    }

    #[test]
    fn first_receive_time_is_exact_within_retention() {
        let mut m = Msg::new(0, &[0; 16], 1_000, 0, 0, NO_GROUP);
        assert_eq!(m.first_receive_ms(), 0);
        m.note_first_receive(1_000 + 14 * 86_400_000);
        assert_eq!(m.first_receive_ms(), 1_000 + 14 * 86_400_000);
        m.note_first_receive(5_000_000_000_000);
        assert_eq!(m.first_receive_ms(), 1_000 + 14 * 86_400_000, "the first receive stays");
    }

    const VIS: u64 = 1_000;

    #[test]
    fn a_deleted_message_takes_its_timer_with_it() {
        let mut q = standard();
        send(&mut q, 0..1000, 10);
        let mut taken = Vec::new();
        while taken.len() < 1000 {
            let got = receive(&mut q, 20, 10);
            assert!(!got.is_empty(), "every message is visible");
            for &key in &got {
                q.remove(key);
            }
            taken.extend(got);
            assert!(q.timers.len() <= 10, "timers of deleted messages linger: {}", q.timers.len());
        }
        assert!(q.timers.is_empty());
        // A message still in flight keeps its timer and comes back when it fires.
        send(&mut q, [5000], 30);
        assert_eq!(receive(&mut q, 40, 1), vec![5000]);
        assert_eq!(q.timers.len(), 1);
        let back = q.next_timer_ms().expect("a timer");
        assert_eq!(receive(&mut q, back, 1), vec![5000], "visible again when its visibility ends");
    }

    fn standard() -> QueueState {
        QueueState::new(1, "q".into(), QueueConfig::default())
    }

    fn send(q: &mut QueueState, keys: impl IntoIterator<Item = u64>, now: u64) {
        for k in keys {
            q.insert(k, k, &[0; 16], now, now, &Bytes::new(), now);
        }
    }

    fn receive(q: &mut QueueState, now: u64, max: usize) -> Vec<u64> {
        q.select(now, max, VIS, None).delivered.iter().map(|t| t.key).collect()
    }

    #[test]
    fn never_received_messages_come_in_send_order() {
        let mut q = standard();
        send(&mut q, [3, 8, 9, 20, 21], 0);
        assert!(q.has_visible(0));
        assert_eq!(receive(&mut q, 0, 2), [3, 8]);
        send(&mut q, [30], 0);
        assert_eq!(receive(&mut q, 0, 10), [9, 20, 21, 30]);
        assert!(!q.has_visible(0), "everything is in flight");
        assert_eq!(receive(&mut q, 0, 10), Vec::<u64>::new());
    }

    #[test]
    fn returned_messages_queue_behind_those_already_waiting() {
        let mut q = standard();
        send(&mut q, 0..5, 0);
        assert_eq!(receive(&mut q, 0, 2), [0, 1]);
        // Their visibility runs out while 2..5 wait; 5 is sent after.
        q.pump(VIS);
        assert!(q.has_visible(VIS));
        send(&mut q, [5], VIS);
        assert_eq!(receive(&mut q, VIS, 10), [2, 3, 4, 0, 1, 5]);
        let m = q.get(0).copied();
        assert_eq!(m.map(|m| m.receive_count), Some(2));
        // A change to zero makes a message visible at once, behind what waits.
        send(&mut q, [6, 7], VIS);
        q.change_visibility(3, VIS, VIS);
        assert_eq!(receive(&mut q, VIS, 10), [6, 7, 3]);
    }

    #[test]
    fn removed_and_taken_entries_are_skipped() {
        let mut q = standard();
        send(&mut q, 0..6, 0);
        assert_eq!(receive(&mut q, 0, 3), [0, 1, 2]);
        q.pump(VIS);
        // 0 deleted after it came back; 4 deleted before the cursor got there.
        assert!(q.remove(0).is_some());
        assert!(q.remove(4).is_some());
        assert_eq!(receive(&mut q, VIS, 10), [3, 5, 1, 2]);
        assert_eq!(q.len(), 4);
        assert!(!q.has_visible(VIS));
    }

    #[test]
    fn delayed_messages_wait_their_turn_or_come_back() {
        let mut q = standard();
        let g = Bytes::new();
        q.insert(1, 1, &[0; 16], 0, 500, &g, 0); // delayed until 500
        send(&mut q, [2, 3], 0);
        assert_eq!(receive(&mut q, 0, 10), [2, 3], "the cursor passes the delayed message");
        assert_eq!(q.next_timer_ms(), Some(500));
        assert_eq!(receive(&mut q, 500, 10), [1]);
        // A delay that ends before the cursor gets there: found in place.
        q.insert(4, 4, &[0; 16], 600, 700, &g, 600);
        send(&mut q, [5], 600);
        q.pump(700);
        assert_eq!(receive(&mut q, 700, 10), [4, 5]);
    }

    #[test]
    fn a_message_listed_early_by_a_later_clock_is_deferred() {
        let mut q = standard();
        let g = Bytes::new();
        // Inserted as visible by a sender whose clock read 100; a receive reads 50.
        q.insert(1, 1, &[0; 16], 100, 100, &g, 100);
        assert_eq!(receive(&mut q, 50, 10), Vec::<u64>::new());
        assert_eq!(q.next_timer_ms(), Some(100));
        assert_eq!(receive(&mut q, 100, 10), [1]);
    }

    #[test]
    fn rebuild_lists_visible_messages_in_key_order_and_times_the_rest() {
        let mut q = standard();
        let g = Bytes::new();
        // Replay order is log order; a compaction copy (key 2) arrives after newer keys.
        q.replay_message(5, 5, &[0; 16], 0, 0, 0, 0, &g);
        q.replay_message(7, 7, &[0; 16], 0, 0, 0, 0, &g);
        q.replay_message(9, 9, &[0; 16], 0, 0, 0, 0, &g);
        q.replay_message(2, 12, &[0; 16], 0, 0, 0, 0, &g);
        q.replay_message(1, 13, &[0; 16], 0, 0, 0, 0, &g);
        q.replay_visibility(7, 1, 5_000, Some(10)); // in flight until 5,000
        q.replay_message(11, 11, &[0; 16], 0, 3_000, 0, 0, &g); // delayed until 3,000
        q.replay_remove(9);
        q.rebuild(100);
        assert_eq!(q.iter().map(|(k, _)| k).collect::<Vec<_>>(), [1, 2, 5, 7, 11]);
        assert_eq!(q.get(2).map(|m| m.anchor), Some(12));
        let got = q.select(100, 10, 10_000, None).delivered;
        assert_eq!(got.iter().map(|t| t.key).collect::<Vec<_>>(), [1, 2, 5]);
        assert_eq!(receive(&mut q, 3_000, 10), [11]);
        // 11's visibility ran out at 4,000, 7's replayed one at 5,000: returned in that order.
        let got = q.select(5_000, 10, VIS, None).delivered;
        assert_eq!(got.iter().map(|t| (t.key, t.msg.receive_count)).collect::<Vec<_>>(), [(11, 2), (7, 2)]);
    }

    #[test]
    fn purge_and_expiry_clear_what_the_cursor_would_find() {
        let mut q = standard();
        send(&mut q, 0..10, 0);
        assert_eq!(receive(&mut q, 0, 3), [0, 1, 2]);
        q.purge(6);
        assert_eq!(q.len(), 4);
        assert_eq!(receive(&mut q, 0, 10), [6, 7, 8, 9]);
        let retention = q.retention_ms();
        send(&mut q, [10, 11], 10);
        assert_eq!(q.drop_expired(10 + retention), 6);
        assert!(q.is_empty());
        assert_eq!(receive(&mut q, 10 + retention, 10), Vec::<u64>::new());
    }

    #[test]
    fn a_deep_queue_delivers_each_message_once_in_order() {
        let mut q = standard();
        let n = 200_000u64;
        // Keys with gaps, as when queues share the log.
        send(&mut q, (0..n).map(|i| i * 3), 0);
        let mut expected = 0;
        let mut now = 0;
        while expected < n {
            now += 1;
            let got = receive(&mut q, now, 10);
            assert!(!got.is_empty(), "ran dry at {expected}");
            for k in got {
                assert_eq!(k, expected * 3);
                expected += 1;
                assert!(q.remove(k).is_some());
            }
        }
        assert!(q.is_empty());
        assert!(!q.has_visible(now));
        assert_eq!(receive(&mut q, now, 10), Vec::<u64>::new());
    }

    #[test]
    fn counts_follow_the_states() {
        let mut q = standard();
        let g = Bytes::new();
        send(&mut q, 0..4, 10);
        q.insert(4, 4, &[0; 16], 20, 900, &g, 20);
        assert_eq!(receive(&mut q, 30, 1), [0]);
        let c = q.counts(30);
        assert_eq!((c.visible, c.in_flight, c.delayed, c.oldest_sent_ms), (3, 1, 1, Some(10)));
    }
}
