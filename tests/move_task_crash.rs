//! A message move task survives crashes: killed with SIGKILL while it moves, or cut off by a
//! power loss after any file-system operation (`FaultyFs`), it resumes when the engine opens
//! again and moves each message exactly once. After every crash:
//!
//! - each message is in exactly one of the source (the dead-letter queue) and the destination,
//!   once (a move is one frame: the delete, the message, the task's count);
//! - a task still running counts exactly the messages in the destination (its count rides in
//!   the frames of its moves), and one that completed moved them all;
//! - run on to the end, the task completes with every message moved once.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use weir::format::Compression;
use weir::log::fault::FaultyFs;
use weir::queue::move_task::{MoveTaskInfo, MoveTaskStatus};
use weir::queue::{QueueConfig, SendEntry, SendOptions};
use weir::{Clock, Durability, Engine, ManualClock, Options, SystemClock};

use common::Rng;

const DLQ: &str = "dlq";
const WORK: &str = "work";
const TARGET: &str = "target";
const CHILD_ENV: &str = "WEIR_MOVE_TASK_CRASH_CHILD";
const TEST_NAME: &str = "a_move_task_killed_mid_way_resumes_and_moves_each_message_once";

fn bodies(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m-{i:05}")).collect()
}

/// The dead-letter queue (with its source queue, as a move task requires) full of `n` messages
/// and an empty destination.
fn setup(engine: &Engine, n: usize) {
    common::create_with_dead_letter_queue(engine, WORK, DLQ, 3);
    engine.create_queue(TARGET, QueueConfig::default()).expect("target");
    let dlq = engine.queue(DLQ).expect("dlq");
    for chunk in bodies(n).chunks(10) {
        let entries: Vec<SendEntry> =
            chunk.iter().map(|b| SendEntry { body: b.clone().into(), options: SendOptions::default() }).collect();
        for r in dlq.send_batch(&entries).expect("send batch") {
            r.expect("send");
        }
    }
}

fn live_bodies(engine: &Engine, queue: &str) -> Vec<String> {
    let peeked = engine.queue(queue).expect("queue").peek(1_000_000).expect("peek");
    peeked.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// The checks after a crash (see the module documentation); returns the task.
fn check_exactly_once(engine: &Engine, n: usize, context: &str) -> MoveTaskInfo {
    let (source, moved) = (live_bodies(engine, DLQ), live_bodies(engine, TARGET));
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for b in source.iter().chain(&moved) {
        *seen.entry(b.as_str()).or_default() += 1;
    }
    let twice: Vec<&&str> = seen.iter().filter(|(_, &c)| c > 1).map(|(b, _)| b).collect();
    assert!(twice.is_empty(), "{context}: in both queues or twice: {twice:?}");
    assert_eq!(seen.len(), n, "{context}: messages lost: {} of {n} left", seen.len());
    let task = engine.list_message_move_tasks(DLQ, 1).expect("list").pop().expect("a task");
    match task.status {
        MoveTaskStatus::Running => assert_eq!(task.moved, moved.len() as u64, "{context}: the count is what moved"),
        MoveTaskStatus::Completed => assert_eq!((task.moved, source.len()), (n as u64, 0), "{context}"),
        other => panic!("{context}: the task is {other:?}: {task:?}"),
    }
    task
}

/// Steps the task to its end with the manual clock; checks that it moved everything once.
fn finish(engine: &Engine, clock: &ManualClock, n: usize, context: &str) {
    for _ in 0..10_000 {
        let task = engine.list_message_move_tasks(DLQ, 1).expect("list").pop().expect("a task");
        if task.status != MoveTaskStatus::Running {
            break;
        }
        clock.advance(Duration::from_secs(1));
        engine.run_maintenance().expect("maintenance");
    }
    let task = check_exactly_once(engine, n, context);
    assert_eq!((task.status, task.moved), (MoveTaskStatus::Completed, n as u64), "{context}");
    assert_eq!(live_bodies(engine, TARGET), bodies(n), "{context}: in order");
}

// ----- (a) SIGKILL of a real process -----

#[test]
fn a_move_task_killed_mid_way_resumes_and_moves_each_message_once() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let n = 3000;
    let seed = Rng::seed_from_time();
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    {
        // Set up without an fsync per batch; dropping the engine syncs it.
        let options = Options { durability: Durability::Never, background: false, ..Options::default() };
        setup(&Engine::open(&data, options).expect("open"), n);
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut progress = Vec::new();
    for iteration in 0..4 {
        let kill_after = Duration::from_millis(rng.range(150, 900));
        let context = format!("seed {seed}, kill {iteration} after {kill_after:?}");
        let child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let mut child = KillOnDrop(child);
        let (lines, reader) = common::child::whole_lines(child.0.stdout.take().expect("stdout"));
        // The test harness prints lines of its own, and "test NAME ... " before the child's.
        loop {
            let line = lines.recv_timeout(Duration::from_secs(60)).expect("the child started its task");
            if line.contains("task mt-") {
                break;
            }
        }
        std::thread::sleep(kill_after);
        drop(child);
        reader.join().expect("reader");
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
        let copy = tmp.path().join(format!("copy-{iteration}"));
        common::copy_tree(&data, &copy);
        {
            let engine = Engine::open(&copy, common::test_options(Arc::clone(&clock), 64 << 20)).expect("open copy");
            progress.push(check_exactly_once(&engine, n, &context).moved);
            finish(&engine, &clock, n, &format!("{context}, run to the end on a copy"));
        }
        std::fs::remove_dir_all(&copy).expect("remove copy");
    }
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "seed {seed}: progress went back: {progress:?}");
    assert!(progress.iter().any(|&m| m > 0 && m < n as u64), "seed {seed}: no kill fell mid-task: {progress:?}");
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let engine = Engine::open(&data, common::test_options(Arc::clone(&clock), 64 << 20)).expect("open");
    finish(&engine, &clock, n, &format!("seed {seed}, the original directory"));
    eprintln!("seed {seed}: moved by the kills: {progress:?} of {n}");
}

/// A child process killed with SIGKILL (and reaped) when dropped: also when the test fails,
/// so no child outlives it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens the data directory (background thread, system clock, every move synced), resumes the
/// task or starts it, says which, and waits to be killed.
fn child(dir: &Path) -> ! {
    let engine = Engine::open(dir, Options::default()).expect("child opens the data directory");
    let running = engine.list_message_move_tasks(DLQ, 1).expect("list").pop();
    let handle = match running {
        Some(task) if task.status == MoveTaskStatus::Running => task.handle,
        _ => engine.start_message_move_task(DLQ, Some(TARGET), Some(500)).expect("start").handle,
    };
    println!("task {handle}");
    loop {
        std::thread::park();
    }
}

// ----- (b) power loss after every file-system operation -----

struct Rig {
    fs: Arc<FaultyFs>,
    clock: Arc<ManualClock>,
    tmp: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fs = Arc::new(FaultyFs::new());
        fs.create_durable_dir_all(tmp.path());
        Rig { fs, clock: Arc::new(ManualClock::new(1_700_000_000_000)), tmp }
    }

    fn open(&self) -> weir::Result<Engine> {
        let options = Options {
            vfs: self.fs.clone(),
            clock: self.clock.clone(),
            background: false,
            segment_bytes: 4096,
            compression: Compression::None,
            lock_wait: Duration::from_secs(5),
            ..Options::default()
        };
        Engine::open(self.tmp.path(), options)
    }
}

const POWER_MESSAGES: usize = 24;

/// A rig with the queues set up and a task started (two moves a second), its engine closed.
fn started_rig() -> Rig {
    let rig = Rig::new();
    let engine = rig.open().expect("open");
    setup(&engine, POWER_MESSAGES);
    engine.start_message_move_task(DLQ, Some(TARGET), Some(2)).expect("start");
    drop(engine);
    rig
}

#[test]
fn a_move_task_cut_off_by_a_power_loss_at_any_point_resumes_and_moves_each_message_once() {
    // How many operations the whole run takes, to crash after each of them in turn.
    let total = {
        let rig = started_rig();
        let engine = rig.open().expect("reopen");
        let before = rig.fs.op_count();
        finish(&engine, &rig.clock, POWER_MESSAGES, "without a crash");
        rig.fs.op_count() - before
    };
    assert!(total > POWER_MESSAGES as u64, "only {total} operations");
    let stride = (total / 120).max(1);
    let mut mid_task = 0;
    for n in (0..=total).step_by(stride as usize) {
        let context = format!("power cut after {n} of {total} operations");
        let rig = started_rig();
        {
            let engine = rig.open().expect("reopen");
            rig.fs.crash_after_ops(n);
            for _ in 0..(2 * POWER_MESSAGES) {
                rig.clock.advance(Duration::from_secs(1));
                if engine.run_maintenance().is_err() || rig.fs.crashed() {
                    break;
                }
            }
        }
        match n % 3 {
            0 => rig.fs.power_cut(),
            1 => rig.fs.power_cut_with_torn_tails(n * 37 % 600, 0),
            _ => rig.fs.power_cut_with_torn_tails(n * 13 % 300, 5 + n % 40),
        }
        let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        let task = check_exactly_once(&engine, POWER_MESSAGES, &context);
        mid_task += usize::from(task.status == MoveTaskStatus::Running && task.moved > 0);
        finish(&engine, &rig.clock, POWER_MESSAGES, &format!("{context}, then run to the end"));
    }
    assert!(mid_task > 0, "no power cut fell in the middle of the task");
    eprintln!("{total} operations, {mid_task} power cuts found the task running with moves made");
}
