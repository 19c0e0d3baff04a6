//! What each durability mode promises across a crash (format-spec.md section 2), for every
//! model: stream puts, queue send/receive/delete, topic publishes to two queues.
//!
//! (a) In process, deterministic: a scripted workload runs once over a `FaultyFs` to count its
//! mutating file-system operations; then, for every boundary `n` between them, a fresh run
//! crashes after `n` operations (every later operation fails with EIO), the power is cut, and
//! the reopened engine must hold: under `Always` every acknowledged operation; under
//! `Interval` everything acknowledged before the last acknowledged flush (the test drives the
//! periodic sync by hand, so the run is reproducible) and a prefix per log of the rest; under
//! `Never` a prefix per log. Never a hole, garbage, a duplicate, a resurrected delete; new
//! writes get sequence numbers above every surviving one.
//!
//! (b) With real processes: a child re-runs this binary, drives the same workload on the real
//! disk printing every start and acknowledgement, and is killed with SIGKILL a few times. The
//! page cache survives a process crash, so in every mode every acknowledged operation must be
//! there after each restart.

#[path = "common/child.rs"]
mod child;
#[path = "common/concurrent.rs"]
mod concurrent;
#[path = "common/faults.rs"]
mod faults;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faults::{assert_storage_error, check_new_writes_continue, setup, verify, Driver, Ledger, Model, Promise, Rig};
use weir::format::Compression;
use weir::{Durability, Engine, Options};

/// Operations of the scripted workload.
const OPS: usize = 30;
/// At most this many crash points per model and mode (every k-th boundary beyond that).
const MAX_CRASH_POINTS: u64 = 160;

// ----- (a) every crash point, in process -----

/// Which data directory a run uses: plain, or encrypted at rest (every frame sealed; the
/// encrypted mode of the matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Plain,
    Encrypted,
}

fn rig(durability: Durability, at: At) -> Rig {
    match at {
        At::Plain => Rig::new(durability),
        At::Encrypted => Rig::encrypted(durability),
    }
}

/// Counts the mutating operations of the workload after setup.
fn count_ops(model: Model, durability: Durability, at: At) -> u64 {
    let rig = rig(durability, at);
    let engine = rig.open().expect("open");
    setup(&engine, model).expect("setup");
    let start = rig.fs.op_count();
    let mut driver = Driver::new(model, "c", durability);
    let mut ledger = Ledger::default();
    for _ in 0..OPS {
        driver.step(&engine, &mut ledger).expect("the workload runs without faults");
    }
    rig.fs.op_count() - start
}

/// A fresh engine runs the workload with a crash armed after `n` mutating operations, and is
/// dropped: what is left is the file system at the moment the process died. Returns the rig,
/// the ledger and whether a call failed.
fn run_with_crash(model: Model, durability: Durability, at: At, n: u64, context: &str) -> (Rig, Ledger, bool) {
    let rig = rig(durability, at);
    let mut ledger = Ledger::default();
    let mut failed = false;
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        rig.fs.crash_after_ops(n);
        let mut driver = Driver::new(model, "c", durability);
        for _ in 0..OPS {
            if let Err(e) = driver.step(&engine, &mut ledger) {
                assert_storage_error(&e, rig.dir(), context);
                failed = true;
                break;
            }
        }
        // Dropping the engine tries a last flush, which fails once the crash happened.
    }
    (rig, ledger, failed)
}

/// Reopens, checks what survived under `promise`, checks that writes continue; returns how
/// many acknowledged writes were lost.
fn reopen_and_verify(rig: &Rig, model: Model, ledger: &mut Ledger, promise: Promise, context: &str) -> usize {
    let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let verdict = verify(&engine, model, ledger, promise, context);
    let lost = verdict.lost(ledger);
    verdict.resolve(ledger);
    check_new_writes_continue(&engine, model, ledger, "after", context);
    lost
}

/// The crash points to try: every boundary, or every k-th if there are too many.
fn crash_points(total: u64) -> impl Iterator<Item = u64> {
    let stride = total.div_ceil(MAX_CRASH_POINTS).max(1);
    (0..=total).step_by(stride as usize)
}

/// Power loss after a crash at every point. The power cut varies with `n`: the unsynced end
/// of each file is lost whole, kept in part, or kept in part and followed by junk (the torn
/// tails format-spec.md section 1 allows).
fn crash_at_every_boundary(model: Model, durability: Durability) {
    crash_at_every_boundary_at(model, durability, At::Plain)
}

fn crash_at_every_boundary_at(model: Model, durability: Durability, at: At) {
    let total = count_ops(model, durability, at);
    assert!(total > OPS as u64, "{} under {durability:?}: only {total} operations counted", model.name());
    let mut crashed_mid_workload = 0;
    let mut lost_somewhere = 0;
    for n in crash_points(total) {
        let context = format!("{} under {durability:?} ({at:?}), crash after {n} of {total} operations", model.name());
        let (rig, mut ledger, failed) = run_with_crash(model, durability, at, n, &context);
        crashed_mid_workload += usize::from(failed);
        match n % 3 {
            0 => rig.fs.power_cut(),
            1 => rig.fs.power_cut_with_torn_tails(n * 37 % 600, 0),
            _ => rig.fs.power_cut_with_torn_tails(n * 13 % 300, 5 + n % 40),
        }
        lost_somewhere += reopen_and_verify(&rig, model, &mut ledger, Promise::of(durability), &context);
    }
    assert!(crashed_mid_workload > 0, "{}: no crash point fell inside the workload", model.name());
    if durability == Durability::Always {
        assert_eq!(lost_somewhere, 0);
    } else {
        // Otherwise the check above would not have been tested against any loss.
        assert!(lost_somewhere > 0, "{} under {durability:?}: no crash point lost anything", model.name());
    }
}

/// The process dies at every other point (the SIGKILL tests below cover the real thing), the
/// machine stays up: the page cache keeps every write, so every mode keeps every acknowledged
/// operation.
fn process_crash_at_every_other_boundary(model: Model, durability: Durability) {
    let total = count_ops(model, durability, At::Plain);
    for n in crash_points(total).step_by(2) {
        let context = format!("{} under {durability:?}, process dies after {n} of {total} operations", model.name());
        let (rig, mut ledger, _) = run_with_crash(model, durability, At::Plain, n, &context);
        rig.fs.clear_faults();
        reopen_and_verify(&rig, model, &mut ledger, Promise::Everything, &context);
    }
}

/// What a crash after `n` operations and a power cut that tears tails leave for recovery.
fn crashed_and_cut(model: Model, durability: Durability, at: At, n: u64, context: &str) -> (Rig, Ledger) {
    let (rig, ledger, _) = run_with_crash(model, durability, at, n, context);
    rig.fs.power_cut_with_torn_tails(n * 37 % 900, 3);
    (rig, ledger)
}

/// A crash and a power cut while recovery runs (cutting torn tails, rewriting segment headers,
/// rebuilding indexes, removing leftovers) must end, after one more reopen, exactly where an
/// undisturbed recovery ends: recovery may be redone, never lose more.
fn crash_during_recovery(model: Model) {
    crash_during_recovery_at(model, At::Plain, 3)
}

/// [`crash_during_recovery`] in a plain or an encrypted directory, at every `step`-th crash
/// point of the workload.
fn crash_during_recovery_at(model: Model, at: At, step: usize) {
    let mut tried = 0;
    for durability in [Durability::Always, Durability::Never] {
        let total = count_ops(model, durability, at);
        for n in (0..=total).step_by(step) {
            let context = format!("{} under {durability:?} ({at:?}), crash after {n} operations", model.name());
            let (rig, ledger) = crashed_and_cut(model, durability, at, n, &context);
            let before = rig.fs.op_count();
            let engine = rig.open().unwrap_or_else(|e| panic!("{context}: undisturbed recovery: {e}"));
            let recovery_ops = rig.fs.op_count() - before;
            let undisturbed = verify(&engine, model, &ledger, Promise::of(durability), &context);
            drop(engine);
            for m in 0..recovery_ops {
                let context = format!("{context}, then after {m} of {recovery_ops} operations of recovery");
                let (rig, mut ledger) = crashed_and_cut(model, durability, at, n, &context);
                rig.fs.crash_after_ops(m);
                match rig.open() {
                    Err(e) => assert_storage_error(&e, rig.dir(), &context),
                    Ok(engine) => drop(engine),
                }
                rig.fs.power_cut();
                let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
                let verdict = verify(&engine, model, &ledger, Promise::of(durability), &context);
                assert_eq!(verdict.kept, undisturbed.kept, "{context}: a disturbed recovery kept other operations");
                assert_eq!(verdict.pending_applied, undisturbed.pending_applied, "{context}: the cut-off operation");
                verdict.resolve(&mut ledger);
                check_new_writes_continue(&engine, model, &mut ledger, "after", &context);
                tried += 1;
            }
        }
    }
    assert!(tried > 0, "{}: recovery never had anything to do", model.name());
}

#[test]
fn a_crash_at_any_point_under_always_keeps_every_acknowledged_stream_put() {
    crash_at_every_boundary(Model::Streams, Durability::Always);
}

#[test]
fn a_crash_at_any_point_under_always_keeps_every_acknowledged_queue_send_receive_and_delete() {
    crash_at_every_boundary(Model::Queues, Durability::Always);
}

#[test]
fn a_crash_at_any_point_under_always_keeps_every_acknowledged_publish_in_both_queues_exactly_once() {
    crash_at_every_boundary(Model::Topics, Durability::Always);
}

#[test]
fn a_crash_at_any_point_under_interval_keeps_stream_puts_up_to_the_last_sync_and_a_prefix_after() {
    crash_at_every_boundary(Model::Streams, Durability::Interval(50));
}

#[test]
fn a_crash_at_any_point_under_interval_keeps_queue_operations_up_to_the_last_sync_and_a_prefix_after() {
    crash_at_every_boundary(Model::Queues, Durability::Interval(50));
}

#[test]
fn a_crash_at_any_point_under_interval_keeps_publishes_up_to_the_last_sync_and_a_prefix_after() {
    crash_at_every_boundary(Model::Topics, Durability::Interval(50));
}

#[test]
fn a_crash_at_any_point_under_never_keeps_a_prefix_of_each_shards_puts() {
    crash_at_every_boundary(Model::Streams, Durability::Never);
}

#[test]
fn a_crash_at_any_point_under_never_keeps_a_prefix_of_the_queue_operations() {
    crash_at_every_boundary(Model::Queues, Durability::Never);
}

#[test]
fn a_crash_at_any_point_under_never_keeps_a_prefix_of_the_publishes_with_their_deliveries() {
    crash_at_every_boundary(Model::Topics, Durability::Never);
}

#[test]
fn a_crash_at_any_point_of_an_encrypted_directory_keeps_what_each_mode_promises_for_stream_puts() {
    for durability in [Durability::Always, Durability::Never] {
        crash_at_every_boundary_at(Model::Streams, durability, At::Encrypted);
    }
}

#[test]
fn a_crash_at_any_point_of_an_encrypted_directory_keeps_what_each_mode_promises_for_queue_operations() {
    for durability in [Durability::Always, Durability::Interval(50)] {
        crash_at_every_boundary_at(Model::Queues, durability, At::Encrypted);
    }
}

#[test]
fn a_crash_at_any_point_of_an_encrypted_directory_keeps_what_each_mode_promises_for_publishes() {
    for durability in [Durability::Always, Durability::Never] {
        crash_at_every_boundary_at(Model::Topics, durability, At::Encrypted);
    }
}

#[test]
fn a_crash_during_recovery_of_an_encrypted_directory_ends_where_an_undisturbed_recovery_ends() {
    crash_during_recovery_at(Model::Queues, At::Encrypted, 7);
}

#[test]
fn a_process_killed_mid_workload_keeps_every_acknowledged_stream_put_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(50), Durability::Never] {
        process_crash_at_every_other_boundary(Model::Streams, durability);
    }
}

#[test]
fn a_process_killed_mid_workload_keeps_every_acknowledged_queue_operation_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(50), Durability::Never] {
        process_crash_at_every_other_boundary(Model::Queues, durability);
    }
}

#[test]
fn a_process_killed_mid_workload_keeps_every_acknowledged_publish_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(50), Durability::Never] {
        process_crash_at_every_other_boundary(Model::Topics, durability);
    }
}

#[test]
fn a_crash_during_recovery_ends_where_an_undisturbed_recovery_ends_for_streams() {
    crash_during_recovery(Model::Streams);
}

#[test]
fn a_crash_during_recovery_ends_where_an_undisturbed_recovery_ends_for_queues() {
    crash_during_recovery(Model::Queues);
}

#[test]
fn a_crash_during_recovery_ends_where_an_undisturbed_recovery_ends_for_topics() {
    crash_during_recovery(Model::Topics);
}

/// Queue maintenance rewrites the live messages of a mostly dead oldest segment at the head of
/// the log, then deletes that segment and fsyncs the directory. Under `Interval` and `Never`
/// the rewritten copies must be synced first, or a power cut loses messages that were durable
/// before maintenance ran.
#[test]
fn queue_maintenance_under_never_keeps_messages_that_were_durable_before_it_ran() {
    use weir::queue::{QueueConfig, ReceiveOptions, SendOptions};
    let rig = Rig::new(Durability::Never);
    let engine = rig.open().expect("open");
    engine.create_queue(faults::WORK, QueueConfig::default()).expect("queue");
    let queue = engine.queue(faults::WORK).expect("queue");
    let bodies: Vec<String> = (0..40).map(|i| faults::body("m", i)).collect();
    for b in &bodies {
        queue.send(b.as_bytes(), SendOptions::default()).expect("send");
    }
    // Receive everything; delete most of the oldest segment's messages, keep two of them.
    let mut received = Vec::new();
    loop {
        let options = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
        let got = queue.receive(options).expect("receive");
        if got.is_empty() {
            break;
        }
        received.extend(got);
    }
    assert_eq!(received.len(), bodies.len());
    for m in received.iter().filter(|m| bodies[2..10].iter().any(|b| b.as_bytes() == &m.body[..])) {
        queue.delete(&m.receipt_handle).expect("delete");
    }
    engine.flush().expect("everything so far is durable");
    let kept: Vec<&String> = bodies.iter().filter(|b| !bodies[2..10].contains(b)).collect();
    // Past the deduplication window, so maintenance may drop whole segments.
    rig.clock.advance(Duration::from_secs(600));
    engine.run_maintenance().expect("maintenance");
    rig.fs.power_cut();
    // Handles keep the directory locked while they live.
    drop(queue);
    drop(engine);
    let engine = rig.open().expect("reopen");
    let live: Vec<String> = engine
        .queue(faults::WORK)
        .and_then(|q| q.peek(1000))
        .expect("peek")
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    let missing: Vec<&&String> = kept.iter().filter(|b| !live.contains(b)).collect();
    assert!(missing.is_empty(), "{} messages durable before maintenance are gone", missing.len());
}

/// A stream's checkpoint log, once it has more than a few segments, appends a snapshot of
/// every position and deletes the segments before it (durably: the directory is fsynced).
/// Under `Interval` and `Never` the snapshot is still only in the page cache at that moment,
/// so a power cut loses checkpoints that a roll had made durable.
#[test]
fn stream_checkpoints_made_durable_by_a_roll_survive_a_snapshot_and_a_power_cut_under_never() {
    use weir::log::fault::FaultyFs;
    use weir::log::io::Vfs;
    use weir::stream::checkpoint::CheckpointStore;
    let fs = std::sync::Arc::new(FaultyFs::new());
    let dir = Path::new("/data/streams/s/checkpoints");
    fs.create_durable_dir_all(Path::new("/data"));
    let segments =
        |fs: &FaultyFs| fs.list_dir(dir).map_or(0, |names| names.iter().filter(|n| n.ends_with(".seg")).count());
    // Long group names: fewer records fill the 1 MiB segments.
    let group = "g".repeat(1000);
    let store = CheckpointStore::open(fs.clone(), dir, Durability::Never, None).expect("open");
    let mut positions = [0u64; 4];
    let mut durable = [0u64; 4];
    let mut most_segments = 0;
    for n in 1..100_000u64 {
        let before = segments(&fs);
        most_segments = most_segments.max(before);
        let shard = (n % 4) as usize;
        store.put(&group, shard as u32, n, 1).expect("checkpoint");
        let after = segments(&fs);
        if after > before {
            // The roll synced every earlier record.
            durable = positions;
        }
        positions[shard] = n;
        if after < most_segments {
            break; // a snapshot replaced the old segments
        }
    }
    assert!(most_segments > 1, "the checkpoint log never rolled");
    assert!(durable.iter().all(|&d| d > 0), "a roll made checkpoints of every shard durable");
    fs.power_cut();
    drop(store);
    let store = CheckpointStore::open(fs.clone(), dir, Durability::Never, None).expect("reopen");
    for (shard, &floor) in durable.iter().enumerate() {
        let got = store.get(&group, shard as u32);
        assert!(got.is_some_and(|g| g >= floor), "shard {shard}: checkpoint {got:?}, durable since a roll: {floor}");
    }
}

// ----- (c) concurrent writers, pages written back out of order, maintenance running -----

/// Past the workload's own operations, crash points go on for a quarter more: the counted run
/// and a crashing one interleave differently, the background thread adds operations of its
/// own, and a crash may also fall in the clean close (its final fsync and HEAD).
const CONCURRENT_CRASH_OVERSHOOT_QUARTERS: u64 = 5;

/// Several threads write to one log at once (so one group commit covers frames of several of
/// them) while the maintenance thread runs; the workload dies after `n` file-system operations
/// for every `n`, the power is cut with unsynced pages lost out of order, and the
/// reopened engine must hold every acknowledged write under `Always` (and open without any
/// report of damage), a prefix of the log otherwise, nothing after a hole, and hand out no
/// number an earlier incarnation acknowledged. Each crash is followed by a second workload and
/// a second crash on the same data, so a log that already skipped numbers is crashed again.
fn concurrent_crashes(model: Model, durability: Durability) {
    let total = {
        let rig = Rig::new(durability);
        rig.fs.concurrent_fsync(true);
        let engine = Engine::open(rig.dir(), concurrent::options_with_maintenance(&rig)).expect("open");
        setup(&engine, model).expect("setup");
        let start = rig.fs.op_count();
        let writers = concurrent::run_writers(&engine, model, "count");
        assert!(writers.iter().all(|w| w.pending.is_none()), "the workload runs without faults");
        rig.fs.op_count() - start
    };
    let mut lost_somewhere = 0;
    // Every operation of the workload (the threads interleave differently each run, so each
    // crash point meets a different interleaving too).
    for n in 0..total * CONCURRENT_CRASH_OVERSHOOT_QUARTERS / 4 {
        let rig = Rig::new(durability);
        rig.fs.concurrent_fsync(true);
        let mut issued = None;
        let mut durable = concurrent::Writes::default();
        {
            let engine = Engine::open(rig.dir(), concurrent::options_with_maintenance(&rig)).expect("open");
            setup(&engine, model).expect("setup");
        }
        for round in 0..2u64 {
            let context =
                format!("{} under {durability:?}, crash after {n} of ~{total} operations, round {round}", model.name());
            let writers = {
                let engine = Engine::open(rig.dir(), concurrent::options_with_maintenance(&rig))
                    .unwrap_or_else(|e| panic!("{context}: open: {e}"));
                rig.fs.crash_after_ops(n);
                let writers = concurrent::run_writers(&engine, model, &format!("r{round}"));
                drop(engine);
                writers
            };
            rig.fs.power_cut_out_of_order(n * 3 + round);
            let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen after the power cut: {e}"));
            let promise = Promise::of(durability).min_prefix();
            let (lost, survived) = concurrent::check(&engine, model, &durable, &writers, promise, &context);
            lost_somewhere += lost;
            durable = survived;
            concurrent::check_fresh_number(&engine, model, &writers, &mut issued, &mut durable, &context);
        }
    }
    if durability != Durability::Always {
        assert!(lost_somewhere > 0, "{} under {durability:?}: no crash lost anything", model.name());
    }
}

#[test]
fn concurrent_stream_puts_survive_crashes_with_pages_lost_out_of_order_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(5), Durability::Never] {
        concurrent_crashes(Model::Streams, durability);
    }
}

#[test]
fn concurrent_queue_sends_survive_crashes_with_pages_lost_out_of_order_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(5), Durability::Never] {
        concurrent_crashes(Model::Queues, durability);
    }
}

#[test]
fn concurrent_publishes_survive_crashes_with_pages_lost_out_of_order_in_every_mode() {
    for durability in [Durability::Always, Durability::Interval(5), Durability::Never] {
        concurrent_crashes(Model::Topics, durability);
    }
}

// ----- (b) SIGKILL of a real process -----

const CHILD_ENV: &str = "WEIR_CRASH_MATRIX_CHILD";
const ITERATION_ENV: &str = "WEIR_CRASH_MATRIX_ITERATION";
const KILLS: u64 = 4;

fn real_options(durability: Durability, background: bool) -> Options {
    Options {
        durability,
        segment_bytes: faults::SEGMENT_BYTES,
        compression: Compression::None,
        background,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

/// The child: drives the workload on the real disk until killed (or for 20 s at most).
fn child(dir: &Path, model: Model, durability: Durability) -> ! {
    let iteration: u64 = std::env::var(ITERATION_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let engine = Engine::open(dir, real_options(durability, true)).unwrap_or_else(|e| {
        faults::say(&format!("@@ error open: {e}"));
        std::process::exit(3)
    });
    faults::say("@@ ready");
    let mut driver = Driver::new(model, &format!("k{iteration}"), durability);
    let mut ledger = Ledger { echo: true, ..Ledger::default() };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Err(e) = driver.step(&engine, &mut ledger) {
            faults::say(&format!("@@ error {e}"));
            std::process::exit(4);
        }
    }
    std::process::exit(0)
}

fn sigkill_case(test_name: &str, model: Model, durability: Durability) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir), model, durability);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    {
        let engine = Engine::open(dir, real_options(durability, false)).expect("open");
        setup(&engine, model).expect("setup");
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut ledger = Ledger::default();
    for iteration in 0..KILLS {
        let context = format!("{} under {durability:?}, kill {iteration}", model.name());
        let mut child = Command::new(&exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, dir)
            .env(ITERATION_ENV, iteration.to_string())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("child stdout");
        let (rx, reader) = child::whole_lines(stdout);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut early = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.ends_with("@@ ready") => break,
                Ok(line) => early.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{context}: the child never got ready; it said {early:?}");
                }
            }
        }
        // A different moment each time: between 30 and 150 ms into the workload.
        let delay = 30 + (iteration * 53 + model as u64 * 29 + durability_index(durability) * 11) % 121;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        reader.join().expect("reader thread");
        for line in early.iter().cloned().chain(rx.try_iter()) {
            if let Some(other) = ledger.read_line(&line) {
                panic!("{context}: the child said {other:?}");
            }
        }
        let engine = Engine::open(dir, real_options(durability, false))
            .unwrap_or_else(|e| panic!("{context}: reopen after the kill: {e}"));
        // The page cache survives the death of a process: everything acknowledged is there.
        let verdict = verify(&engine, model, &ledger, Promise::Everything, &context);
        verdict.resolve(&mut ledger);
        check_new_writes_continue(&engine, model, &mut ledger, &format!("p{iteration}"), &context);
    }
    assert!(ledger.writes() >= 10, "{} under {durability:?}: the children acknowledged too little", model.name());
}

fn durability_index(durability: Durability) -> u64 {
    match durability {
        Durability::Always => 0,
        Durability::Interval(_) => 1,
        Durability::Never => 2,
    }
}

#[test]
fn sigkill_under_always_keeps_every_acknowledged_stream_put() {
    sigkill_case("sigkill_under_always_keeps_every_acknowledged_stream_put", Model::Streams, Durability::Always);
}

#[test]
fn sigkill_under_interval_keeps_every_acknowledged_stream_put() {
    sigkill_case(
        "sigkill_under_interval_keeps_every_acknowledged_stream_put",
        Model::Streams,
        Durability::Interval(50),
    );
}

#[test]
fn sigkill_under_never_keeps_every_acknowledged_stream_put() {
    sigkill_case("sigkill_under_never_keeps_every_acknowledged_stream_put", Model::Streams, Durability::Never);
}

#[test]
fn sigkill_under_always_keeps_every_acknowledged_queue_operation() {
    sigkill_case("sigkill_under_always_keeps_every_acknowledged_queue_operation", Model::Queues, Durability::Always);
}

#[test]
fn sigkill_under_interval_keeps_every_acknowledged_queue_operation() {
    sigkill_case(
        "sigkill_under_interval_keeps_every_acknowledged_queue_operation",
        Model::Queues,
        Durability::Interval(50),
    );
}

#[test]
fn sigkill_under_never_keeps_every_acknowledged_queue_operation() {
    sigkill_case("sigkill_under_never_keeps_every_acknowledged_queue_operation", Model::Queues, Durability::Never);
}

#[test]
fn sigkill_under_always_keeps_every_acknowledged_publish_in_both_queues_exactly_once() {
    sigkill_case(
        "sigkill_under_always_keeps_every_acknowledged_publish_in_both_queues_exactly_once",
        Model::Topics,
        Durability::Always,
    );
}

#[test]
fn sigkill_under_interval_keeps_every_acknowledged_publish_in_both_queues_exactly_once() {
    sigkill_case(
        "sigkill_under_interval_keeps_every_acknowledged_publish_in_both_queues_exactly_once",
        Model::Topics,
        Durability::Interval(50),
    );
}

#[test]
fn sigkill_under_never_keeps_every_acknowledged_publish_in_both_queues_exactly_once() {
    sigkill_case(
        "sigkill_under_never_keeps_every_acknowledged_publish_in_both_queues_exactly_once",
        Model::Topics,
        Durability::Never,
    );
}
