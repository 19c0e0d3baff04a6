//! A text dump of every queue's index, field by field, for tests: the index after an open
//! (from a snapshot and the log's tail) must equal the index a full replay of the log builds.

use std::collections::HashMap;
use std::fmt::Write;

use crate::error::Result;
use crate::queue::dedup::DedupWindow;
use crate::queue::state::QueueState;
use crate::queue::store::snapshot::Cuts;
use crate::queue::store::{replay, QueueStore, PURGE_INTERVAL_MS};

impl QueueStore {
    /// Every queue's index as it is now, one line per message and per remembered
    /// deduplication id (those still in their window), with purge times, move task counts and
    /// FIFO topics' windows. For tests that compare indexes built two ways.
    #[doc(hidden)]
    pub fn index_dump(&self) -> String {
        let now = self.clock.now_ms();
        let cells: Vec<_> = self.queues.read().values().cloned().collect();
        let mut out = String::new();
        let mut sections: Vec<(u32, String)> = cells
            .iter()
            .map(|c| {
                let mut st = c.state.lock();
                st.pump(now);
                (c.id, dump_queue(&st, now))
            })
            .collect();
        sections.sort();
        for (_, section) in sections {
            out.push_str(&section);
        }
        out.push_str(&dump_topics(&self.topic_dedup.lock(), now));
        out
    }

    /// [`QueueStore::index_dump`] of the indexes a full replay of the message log builds now,
    /// for the queues and FIFO topics this store has (nothing of the live indexes is used).
    #[doc(hidden)]
    pub fn replayed_index_dump(&self) -> Result<String> {
        let now = self.clock.now_ms();
        let mut states: HashMap<u32, QueueState> = self
            .queues
            .read()
            .values()
            .map(|c| {
                let config = c.state.lock().config.clone();
                (c.id, QueueState::new(c.id, c.name.clone(), config))
            })
            .collect();
        let mut topics: HashMap<u32, DedupWindow> =
            self.topic_dedup.lock().keys().map(|&id| (id, DedupWindow::default())).collect();
        replay(&self.log, self.log.first_seq(), &Cuts::default(), &mut states, &mut topics, now)?;
        let mut ids: Vec<u32> = states.keys().copied().collect();
        ids.sort_unstable();
        let mut out = String::new();
        for id in ids {
            if let Some(st) = states.get_mut(&id) {
                st.rebuild(now);
                out.push_str(&dump_queue(st, now));
            }
        }
        out.push_str(&dump_topics(&topics, now));
        Ok(out)
    }
}

fn dump_queue(st: &QueueState, now: u64) -> String {
    let mut out = String::new();
    // The purge time matters while it blocks a purge (a full replay loses it with its segment,
    // which is deleted only after the deduplication window, five times that).
    let blocking = st.last_purge_ms.filter(|&last| (last..last.saturating_add(PURGE_INTERVAL_MS)).contains(&now));
    let _ = writeln!(out, "queue {} {:?} purge_blocked_since={blocking:?}", st.id, st.name);
    for (key, m) in st.iter().filter(|(_, m)| !st.expired(m, now)) {
        let _ = writeln!(
            out,
            "  message {key} anchor={} sent={} visible_at={} first_receive={} receives={} in_flight={} group={:?} \
             id_tag={:?}",
            m.anchor,
            m.sent_ms,
            m.visible_at_ms,
            m.first_receive_ms(),
            m.receive_count,
            m.in_flight() && m.visible_at_ms > now,
            String::from_utf8_lossy(&st.group_name(m)),
            m.id_tag(),
        );
    }
    out.push_str(&dump_window(&st.dedup, now));
    for (task, moved) in &st.move_progress {
        let _ = writeln!(out, "  move_task {task} moved={moved}");
    }
    out
}

fn dump_topics(windows: &HashMap<u32, DedupWindow>, now: u64) -> String {
    let mut ids: Vec<&u32> = windows.keys().collect();
    ids.sort_unstable();
    let mut out = String::new();
    for id in ids {
        let _ = writeln!(out, "topic {id}");
        out.push_str(&dump_window(&windows[id], now));
    }
    out
}

fn dump_window(window: &DedupWindow, now: u64) -> String {
    let mut lines: Vec<String> = window
        .entries()
        .filter(|(_, f)| f.expires_ms > now)
        .map(|(d, f)| {
            format!(
                "  dedup {} key={} expires={} id={}\n",
                crate::text::hex(&d),
                f.key,
                f.expires_ms,
                crate::text::hex(&f.message_id)
            )
        })
        .collect();
    lines.sort();
    lines.concat()
}
