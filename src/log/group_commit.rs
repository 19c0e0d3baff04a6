//! Group commit: many writers, one fsync.
//!
//! Writers append their frames to the file (page cache) under the writer lock, then wait here
//! until a sync covers their last sequence number. Whoever finds no sync running becomes the
//! leader: it notes how far the log has been written, fsyncs once, and wakes everyone that sync
//! covered. Writers that arrive during a sync are covered by the next one, so one fsync
//! serves every frame written while the previous one ran.
//!
//! A writer may also wait without a thread: a future ([`crate::Durable`]) registers its
//! waker here, and the log's sync thread leads the syncs that such waiters need (see
//! [`GroupCommit::poll_durable`]). Threads and futures share the same syncs: whichever leads,
//! every waiter it covered, blocked or registered, is released.

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Shared state of the syncs of one log.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<SyncState>,
    synced: Condvar,
    /// Wakes the log's sync thread while it idles (see [`GroupCommit::idle_until_needed`]).
    needed: Condvar,
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
    /// Futures waiting for a durable point, each with the waker to call once it is reached.
    waiting: Vec<Registered>,
    /// Id for the next registered future.
    next_id: u64,
    /// The log's sync thread is running (it exits after idling, see `idle_until_needed`).
    sync_thread: bool,
    /// The sync thread is idle, waiting on `needed`.
    sync_thread_idle: bool,
}

/// A future waiting for `target`.
#[derive(Debug)]
struct Registered {
    id: u64,
    target: u64,
    waker: Waker,
}

/// What a waiter should do next.
pub enum Turn {
    /// Already durable.
    Done,
    /// This caller must run the sync, then report with [`GroupCommit::finish`].
    Lead,
}

/// What [`GroupCommit::poll_durable`] found.
pub struct Polled {
    /// Ready (durable, or failed) or still pending.
    pub poll: Poll<Result<(), String>>,
    /// The caller must start the log's sync thread: none runs, and a future now waits.
    pub start_sync_thread: bool,
}

impl GroupCommit {
    /// A group commit whose durable point starts at `durable_next`.
    pub fn new(durable_next: u64) -> Self {
        GroupCommit {
            state: Mutex::new(SyncState { durable_next, ..SyncState::default() }),
            synced: Condvar::new(),
            needed: Condvar::new(),
        }
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

    /// The future's side of [`GroupCommit::wait_or_lead`]: ready once `target` is durable (or
    /// a sync failed); otherwise registers `cx`'s waker (under `*id`, kept across polls) and
    /// makes sure the log's sync thread will run the sync it needs.
    pub fn poll_durable(&self, target: u64, id: &mut Option<u64>, cx: &mut Context<'_>) -> Polled {
        let mut s = self.state.lock();
        let ready = match &s.failed {
            Some(reason) => Some(Err(reason.clone())),
            None if s.durable_next >= target => Some(Ok(())),
            None => None,
        };
        if let Some(result) = ready {
            if let Some(mine) = id.take() {
                s.waiting.retain(|r| r.id != mine);
            }
            return Polled { poll: Poll::Ready(result), start_sync_thread: false };
        }
        match id.and_then(|mine| s.waiting.iter_mut().find(|r| r.id == mine)) {
            Some(registered) => registered.waker.clone_from(cx.waker()),
            None => {
                let mine = s.next_id;
                s.next_id += 1;
                *id = Some(mine);
                s.waiting.push(Registered { id: mine, target, waker: cx.waker().clone() });
            }
        }
        let start_sync_thread = !s.sync_thread;
        s.sync_thread = true;
        if s.sync_thread_idle {
            self.needed.notify_one();
        }
        Polled { poll: Poll::Pending, start_sync_thread }
    }

    /// Forgets a future that is dropped before it was ready.
    pub fn cancel(&self, id: u64) {
        self.state.lock().waiting.retain(|r| r.id != id);
    }

    /// The sync thread could not be started: the caller will sync in its place.
    pub fn sync_thread_not_started(&self) {
        self.state.lock().sync_thread = false;
    }

    /// For the log's sync thread: the durable point some registered future still waits for,
    /// if any (`None` also once a sync failed: every future has been released with the error).
    pub fn needed_target(&self) -> Option<u64> {
        let s = self.state.lock();
        if s.failed.is_some() {
            return None;
        }
        s.waiting.iter().map(|r| r.target).max().filter(|&t| t > s.durable_next)
    }

    /// For the log's sync thread: waits up to `idle` for a future to need a sync. False once
    /// none did: the thread must exit (it is marked as stopped, and the next future that
    /// waits starts another).
    pub fn idle_until_needed(&self, idle: Duration) -> bool {
        let mut s = self.state.lock();
        loop {
            let needed = s.failed.is_none() && s.waiting.iter().any(|r| r.target > s.durable_next);
            if needed {
                return true;
            }
            s.sync_thread_idle = true;
            let timed_out = self.needed.wait_for(&mut s, idle).timed_out();
            s.sync_thread_idle = false;
            if timed_out && !(s.failed.is_none() && s.waiting.iter().any(|r| r.target > s.durable_next)) {
                s.sync_thread = false;
                return false;
            }
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
        self.release(s);
    }

    /// Wakes every waiter the state now lets go: blocked threads re-check, and futures whose
    /// target is durable (all of them after a failure) are woken.
    fn release(&self, mut s: parking_lot::MutexGuard<'_, SyncState>) {
        let mut woken = Vec::new();
        let (durable_next, failed) = (s.durable_next, s.failed.is_some());
        s.waiting.retain_mut(|r| {
            let done = failed || r.target <= durable_next;
            if done {
                woken.push(std::mem::replace(&mut r.waker, Waker::noop().clone()));
            }
            !done
        });
        drop(s);
        self.synced.notify_all();
        for waker in woken {
            waker.wake();
        }
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
        self.release(s);
    }

    /// Records a durable point reached outside a group sync (a segment roll syncs its file).
    pub fn advance(&self, durable_next: u64) {
        let mut s = self.state.lock();
        s.durable_next = s.durable_next.max(durable_next);
        self.release(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::format::batch::FRAME_MAGIC;
    use crate::format::{Compression, RecordRef};
    use crate::log::io::{LogFile, RealFs, Vfs};
    use crate::log::mapped::ReadMap;
    use crate::log::{Durability, Log, LogConfig};

    #[test]
    fn callers_arriving_during_a_sync_wait_for_it_and_the_next_one_covers_them() {
        let commit = Arc::new(GroupCommit::new(0));
        assert!(matches!(commit.wait_or_lead(1), Ok(Turn::Lead)), "the first caller leads");
        let waiter = {
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || match commit.wait_or_lead(3) {
                Ok(Turn::Lead) => {
                    commit.finish(Ok(3));
                    "led"
                }
                Ok(Turn::Done) => "done",
                Err(reason) => panic!("{reason}"),
            })
        };
        // The leader's sync covered only its own record: the waiter must lead the next sync.
        commit.finish(Ok(1));
        assert_eq!(waiter.join().expect("waiter"), "led");
        assert_eq!(commit.durable_next(), 3);
        assert_eq!(commit.sync_count(), 2);
        assert!(matches!(commit.wait_or_lead(2), Ok(Turn::Done)), "already durable");
    }

    #[test]
    fn a_failed_sync_fails_every_waiter_and_every_later_caller() {
        let commit = Arc::new(GroupCommit::new(5));
        assert!(matches!(commit.wait_or_lead(6), Ok(Turn::Lead)));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let commit = Arc::clone(&commit);
                std::thread::spawn(move || commit.wait_or_lead(7).map(|_| ()))
            })
            .collect();
        commit.finish(Err("disk on fire".into()));
        for w in waiters {
            assert_eq!(w.join().expect("waiter"), Err("disk on fire".to_string()));
        }
        assert!(commit.wait_or_lead(1).is_err(), "even an already durable target fails after a failure");
        assert_eq!(commit.durable_next(), 5, "a failed sync promises nothing new");
    }

    #[test]
    fn a_durable_point_reached_by_a_roll_releases_waiters_without_a_group_sync() {
        let commit = Arc::new(GroupCommit::new(0));
        assert!(matches!(commit.wait_or_lead(1), Ok(Turn::Lead)));
        let waiter = {
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || matches!(commit.wait_or_lead(4), Ok(Turn::Done)))
        };
        commit.advance(4);
        assert!(waiter.join().expect("waiter"), "the waiter's records were made durable by the roll");
        commit.finish(Ok(1));
        assert_eq!(commit.durable_next(), 4, "a leader finishing late never moves the durable point back");
        assert_eq!(commit.sync_count(), 1);
    }

    /// How far the gated file system lets fsyncs go: a sync of a file with frames in it blocks
    /// until `open_at_writes` frames have been written (or ten seconds pass, so a broken group
    /// commit fails its test instead of hanging it).
    #[derive(Debug, Default)]
    struct Gate {
        state: Mutex<GateState>,
        changed: Condvar,
    }

    #[derive(Debug, Default)]
    struct GateState {
        frame_writes: usize,
        open_at_writes: usize,
        syncs_blocked: usize,
    }

    impl Gate {
        fn set_open_at(&self, writes: usize) {
            self.state.lock().open_at_writes = writes;
            self.changed.notify_all();
        }

        fn wait_for_blocked_syncs(&self, n: usize) {
            let mut s = self.state.lock();
            let deadline = Instant::now() + Duration::from_secs(10);
            while s.syncs_blocked < n {
                assert!(!self.changed.wait_until(&mut s, deadline).timed_out(), "no sync blocked at the gate");
            }
        }
    }

    #[derive(Debug)]
    struct GatedFs {
        gate: Arc<Gate>,
    }

    #[derive(Debug)]
    struct GatedFile {
        inner: Arc<dyn LogFile>,
        gate: Arc<Gate>,
    }

    impl LogFile for GatedFile {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.inner.read_exact_at(buf, offset)
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.inner.write_all_at(buf, offset)?;
            if buf.starts_with(&FRAME_MAGIC) {
                self.gate.state.lock().frame_writes += 1;
                self.gate.changed.notify_all();
            }
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            {
                let mut s = self.gate.state.lock();
                let deadline = Instant::now() + Duration::from_secs(10);
                s.syncs_blocked += 1;
                self.gate.changed.notify_all();
                while s.frame_writes > 0 && s.frame_writes < s.open_at_writes {
                    if self.gate.changed.wait_until(&mut s, deadline).timed_out() {
                        break;
                    }
                }
                s.syncs_blocked -= 1;
            }
            self.inner.sync_data()
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn map_read(&self, len: u64) -> Option<io::Result<Arc<dyn ReadMap>>> {
            self.inner.map_read(len)
        }
    }

    impl Vfs for GatedFs {
        fn open_file(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
            let inner = RealFs.open_file(path, create)?;
            Ok(Arc::new(GatedFile { inner, gate: Arc::clone(&self.gate) }))
        }
        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            RealFs.read_file(path)
        }
        fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            RealFs.write_file_atomic(path, data)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            RealFs.remove_file(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            RealFs.rename(from, to)
        }
        fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
            RealFs.list_dir(dir)
        }
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            RealFs.create_dir_all(dir)
        }
        fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
            RealFs.remove_dir_all(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            RealFs.sync_dir(dir)
        }
    }

    fn always() -> LogConfig {
        LogConfig {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            durability: Durability::Always,
            compression: Compression::None,
            preallocate: true,
            encryption: None,
        }
    }

    #[test]
    fn appends_from_many_threads_share_fsyncs_and_every_one_is_durable() {
        const THREADS: usize = 8;
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = Arc::new(Gate::default());
        // The first fsync is held until every thread has written its frame, as a slow disk would.
        gate.set_open_at(THREADS);
        let log = Log::open(Arc::new(GatedFs { gate: Arc::clone(&gate) }), dir.path(), always(), 0).expect("open");
        let mut seqs: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let log = &log;
                    scope.spawn(move || {
                        let value = format!("record of thread {t}");
                        let outcome =
                            log.append(&[RecordRef { key: b"k", value: value.as_bytes() }], 10).expect("append");
                        // Acknowledged means readable.
                        let read = log.read(outcome.base_seq, 1, usize::MAX).expect("read");
                        assert_eq!(read[0].value.as_ref(), value.as_bytes());
                        outcome.base_seq
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("appender")).collect()
        });
        seqs.sort_unstable();
        assert_eq!(seqs, (0..THREADS as u64).collect::<Vec<_>>(), "each append got its own sequence number");
        let syncs = log.sync_count();
        assert!(syncs <= 2, "{THREADS} appends waiting on one slow fsync took {syncs} group syncs");
        drop(log);

        let log = Log::open(Arc::new(RealFs), dir.path(), always(), 0).expect("reopen");
        let records = log.read(0, 100, usize::MAX).expect("read after reopen");
        let mut values: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
        values.sort();
        let mut expected: Vec<String> = (0..THREADS).map(|t| format!("record of thread {t}")).collect();
        expected.sort();
        assert_eq!(values, expected);
    }

    #[test]
    fn appends_under_always_are_invisible_to_readers_until_their_fsync_completes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = Arc::new(Gate::default());
        gate.set_open_at(usize::MAX);
        let log = Log::open(Arc::new(GatedFs { gate: Arc::clone(&gate) }), dir.path(), always(), 0).expect("open");
        std::thread::scope(|scope| {
            let appender = scope.spawn(|| log.append(&[RecordRef { key: b"", value: b"pending" }], 1).expect("append"));
            gate.wait_for_blocked_syncs(1);
            assert_eq!(log.next_seq(), 0, "a record whose fsync has not returned is visible");
            assert!(log.read(0, 10, usize::MAX).expect("read").is_empty(), "a record not yet durable was served");
            gate.set_open_at(0);
            let outcome = appender.join().expect("appender");
            assert_eq!(outcome.base_seq, 0);
        });
        assert_eq!(log.next_seq(), 1);
        assert_eq!(log.read(0, 10, usize::MAX).expect("read")[0].value.as_ref(), b"pending");
    }

    #[test]
    fn under_never_a_writer_syncs_once_a_flush_ahead_is_unsynced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig { durability: Durability::Never, segment_bytes: 1 << 30, ..always() };
        let log = Log::open(Arc::new(RealFs), dir.path(), config.clone(), 0).expect("open");
        let value = vec![3u8; 32 << 10];
        let mut written = 0u64;
        while written + 2 * value.len() as u64 <= crate::log::FLUSH_AHEAD_BYTES {
            log.append(&[RecordRef { key: b"", value: &value }], 1).expect("append");
            written += value.len() as u64;
        }
        assert_eq!(log.sync_count(), 0, "less than a flush-ahead is unsynced");
        for _ in 0..3 {
            log.append(&[RecordRef { key: b"", value: &value }], 1).expect("append");
        }
        assert_eq!(log.sync_count(), 1, "the writer that crossed the mark synced");
        log.append(&[RecordRef { key: b"", value: &value }], 1).expect("append");
        assert_eq!(log.sync_count(), 1, "and the count starts again from there");
    }

    #[test]
    fn small_appends_under_never_sync_only_on_roll_and_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig { durability: Durability::Never, segment_bytes: 256, ..always() };
        let log = Log::open(Arc::new(RealFs), dir.path(), config.clone(), 0).expect("open");
        for i in 0..20u8 {
            log.append(&[RecordRef { key: b"", value: &[i; 50] }], 1).expect("append");
        }
        assert_eq!(log.sync_count(), 0, "no group sync runs under Never");
        assert_eq!(log.read(0, 100, usize::MAX).expect("read").len(), 20, "written records are readable at once");
        drop(log);
        let log = Log::open(Arc::new(RealFs), dir.path(), config.clone(), 0).expect("reopen");
        assert_eq!(log.next_seq(), 20, "a clean close keeps everything");
    }

    /// Counts the wakes of a task.
    #[derive(Default)]
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        (counter, waker)
    }

    fn woken(counter: &CountingWaker) -> usize {
        counter.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_future_is_woken_once_a_sync_covers_it_whoever_leads_that_sync() {
        let commit = GroupCommit::new(0);
        let (counter, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut id = None;
        let first = commit.poll_durable(3, &mut id, &mut cx);
        assert!(first.poll.is_pending());
        assert!(first.start_sync_thread, "the first future to wait starts the log's sync thread");
        let again = commit.poll_durable(3, &mut id, &mut cx);
        assert!(again.poll.is_pending());
        assert!(!again.start_sync_thread, "one sync thread per log");
        assert_eq!(commit.state.lock().waiting.len(), 1, "a future polled twice is registered once");
        assert_eq!(commit.needed_target(), Some(3));
        // A blocking caller leads a sync that covers less than the future waits for.
        assert!(matches!(commit.wait_or_lead(1), Ok(Turn::Lead)));
        commit.finish(Ok(1));
        assert_eq!(woken(&counter), 0, "not covered, not woken");
        assert_eq!(commit.needed_target(), Some(3), "the sync thread still has a sync to run");
        assert!(matches!(commit.wait_or_lead(3), Ok(Turn::Lead)));
        commit.finish(Ok(3));
        assert_eq!(woken(&counter), 1, "woken by the sync that covered it");
        assert!(matches!(commit.poll_durable(3, &mut id, &mut cx).poll, Poll::Ready(Ok(()))));
        assert_eq!(id, None, "a ready future is no longer registered");
        assert_eq!(commit.needed_target(), None, "nothing left to sync");
    }

    #[test]
    fn a_failed_sync_wakes_every_future_with_its_reason() {
        let commit = GroupCommit::new(0);
        let (counter, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let (mut a, mut b) = (None, None);
        assert!(commit.poll_durable(2, &mut a, &mut cx).poll.is_pending());
        assert!(commit.poll_durable(5, &mut b, &mut cx).poll.is_pending());
        assert!(matches!(commit.wait_or_lead(2), Ok(Turn::Lead)));
        commit.finish(Err("disk on fire".into()));
        assert_eq!(woken(&counter), 2, "both futures, covered or not");
        for id in [&mut a, &mut b] {
            match commit.poll_durable(2, id, &mut cx).poll {
                Poll::Ready(Err(reason)) => assert_eq!(reason, "disk on fire"),
                other => panic!("a future after a failed sync: {other:?}"),
            }
        }
        assert_eq!(commit.needed_target(), None, "the sync thread has nothing to run after a failure");
        let mut late = None;
        assert!(matches!(commit.poll_durable(1, &mut late, &mut cx).poll, Poll::Ready(Err(_))));
        assert_eq!(late, None, "a later future fails at once, unregistered");
    }

    #[test]
    fn a_dropped_future_leaves_nothing_to_sync_and_the_idle_sync_thread_stops() {
        let commit = GroupCommit::new(0);
        let (_counter, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut id = None;
        assert!(commit.poll_durable(4, &mut id, &mut cx).start_sync_thread);
        assert!(commit.idle_until_needed(Duration::from_millis(1)), "a waiting future keeps the thread");
        commit.cancel(id.take().expect("registered"));
        assert_eq!(commit.needed_target(), None);
        assert!(!commit.idle_until_needed(Duration::from_millis(1)), "idle with nothing to wait for: it stops");
        let mut next = None;
        assert!(commit.poll_durable(4, &mut next, &mut cx).start_sync_thread, "the next future starts another");
    }

    /// A log owned the way the engine's stores own theirs, for [`crate::Durable`].
    struct Owner(Log);

    impl crate::log::durable::DurableLog for Owner {
        fn log(&self) -> &Log {
            &self.0
        }
    }

    /// A log under `Always` on the gated file system, owned as the stores own theirs.
    fn gated_owner(dir: &Path, gate: &Arc<Gate>) -> Arc<Owner> {
        Arc::new(Owner(Log::open(Arc::new(GatedFs { gate: Arc::clone(gate) }), dir, always(), 0).expect("open")))
    }

    #[test]
    fn an_awaited_write_is_synced_by_the_log_sync_thread_and_invisible_until_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = Arc::new(Gate::default());
        gate.set_open_at(usize::MAX);
        let owner = gated_owner(dir.path(), &gate);
        let outcome = owner.0.write(&[RecordRef { key: b"", value: b"awaited" }], 1).expect("write");
        let mut durable = crate::Durable::new(owner.clone(), outcome.next_seq, "the answer");
        let (counter, waker) = counting();
        let polled = std::pin::Pin::new(&mut durable).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "not durable before its fsync");
        gate.wait_for_blocked_syncs(1); // the sync thread is inside the fsync: nobody else called one
        assert_eq!(owner.0.next_seq(), 0, "invisible to readers until durable");
        assert_eq!(woken(&counter), 0);
        gate.set_open_at(0);
        let answer = futures_lite::future::block_on(durable).expect("durable");
        assert_eq!(answer, "the answer");
        assert_eq!(owner.0.read(outcome.base_seq, 1, usize::MAX).expect("read")[0].value.as_ref(), b"awaited");
        assert_eq!(owner.0.sync_count(), 1);
    }

    #[test]
    fn blocking_and_awaited_writers_share_fsyncs_and_every_one_is_durable() {
        const EACH: usize = 4;
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = Arc::new(Gate::default());
        gate.set_open_at(2 * EACH);
        let owner = gated_owner(dir.path(), &gate);
        std::thread::scope(|scope| {
            for t in 0..2 * EACH {
                let owner = Arc::clone(&owner);
                scope.spawn(move || {
                    let value = format!("record {t}");
                    let record = [RecordRef { key: b"", value: value.as_bytes() }];
                    if t % 2 == 0 {
                        owner.0.append(&record, 1).expect("blocking append");
                    } else {
                        let outcome = owner.0.write(&record, 1).expect("write");
                        let durable = crate::Durable::new(owner.clone(), outcome.next_seq, ());
                        futures_lite::future::block_on(durable).expect("awaited append");
                    }
                });
            }
        });
        let syncs = owner.0.sync_count();
        assert!(syncs <= 3, "{} writers held at one slow fsync took {syncs} syncs", 2 * EACH);
        drop(owner);
        let log = Log::open(Arc::new(RealFs), dir.path(), always(), 0).expect("reopen");
        assert_eq!(log.read(0, 100, usize::MAX).expect("read").len(), 2 * EACH, "every acknowledged write");
    }
}
