//! Group commit: many writers, one fsync.
//!
//! Writers append their frames to the file (page cache) under the writer lock, then wait here
//! until a sync covers their last sequence number. Whoever finds no sync running becomes the
//! leader: it notes how far the log has been written, fsyncs once, and wakes everyone that sync
//! covered. Writers that arrive during a sync are covered by the next one, so one fsync
//! serves every frame written while the previous one ran.

use parking_lot::{Condvar, Mutex};

/// Shared state of the syncs of one log.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<SyncState>,
    synced: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Every sequence number below this is on stable storage.
    durable_next: u64,
    /// A leader is inside fsync.
    syncing: bool,
    /// A sync failed: nothing after `durable_next` can be promised, ever, in this process.
    failed: Option<String>,
    /// Number of fsyncs issued (for tests and stats).
    syncs: u64,
}

/// What a waiter should do next.
pub enum Turn {
    /// Already durable.
    Done,
    /// This caller must run the sync, then report with [`GroupCommit::finish`].
    Lead,
}

impl GroupCommit {
    /// A group commit whose durable point starts at `durable_next`.
    pub fn new(durable_next: u64) -> Self {
        GroupCommit { state: Mutex::new(SyncState { durable_next, ..SyncState::default() }), synced: Condvar::new() }
    }

    /// Waits until `target` (one past the caller's last sequence number) is durable, or until
    /// the caller must lead a sync. Fails if any sync has failed.
    pub fn wait_or_lead(&self, target: u64) -> Result<Turn, String> {
        let mut s = self.state.lock();
        loop {
            if let Some(reason) = &s.failed {
                return Err(reason.clone());
            }
            if s.durable_next >= target {
                return Ok(Turn::Done);
            }
            if !s.syncing {
                s.syncing = true;
                return Ok(Turn::Lead);
            }
            self.synced.wait(&mut s);
        }
    }

    /// Reports the leader's sync: on success everything below `synced_next` is durable.
    pub fn finish(&self, result: Result<u64, String>) {
        let mut s = self.state.lock();
        s.syncing = false;
        s.syncs += 1;
        match result {
            Ok(synced_next) => s.durable_next = s.durable_next.max(synced_next),
            Err(reason) => s.failed = Some(reason),
        }
        drop(s);
        self.synced.notify_all();
    }

    /// Everything below this is durable.
    pub fn durable_next(&self) -> u64 {
        self.state.lock().durable_next
    }

    /// Fsyncs issued so far.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Records a failed fsync that ran outside a group sync: every waiter fails.
    pub fn fail(&self, reason: String) {
        let mut s = self.state.lock();
        s.failed.get_or_insert(reason);
        drop(s);
        self.synced.notify_all();
    }

    /// Records a durable point reached outside a group sync (a segment roll syncs its file).
    pub fn advance(&self, durable_next: u64) {
        let mut s = self.state.lock();
        s.durable_next = s.durable_next.max(durable_next);
        drop(s);
        self.synced.notify_all();
    }
}
