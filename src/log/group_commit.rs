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

#[cfg(test)]
mod tests {
    use super::*;
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
}
