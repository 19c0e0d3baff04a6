//! Storage faults under every model: short writes, ENOSPC, EIO on write, an fsync that fails
//! once, and a disk whose fsync lies, injected through `weir::log::fault::FaultyFs`.
//!
//! For each fault and each model (stream puts; queue send, receive and delete; topic publish
//! to two subscribed queues) a workload runs until the fault surfaces. The call that meets it
//! must fail with `Error::Io` or `Error::Poisoned` naming a file of the data directory (never a
//! panic, never `Ok`); then the engine is dropped, the power cut, the faults cleared and the
//! engine reopened, and every acknowledged write the durability mode covers must be there,
//! nothing else (no garbage, no duplicate, no hole), and new writes must be accepted with
//! sequence numbers above the surviving ones.

#[path = "common/faults.rs"]
mod faults;

use std::io;
use std::path::Path;

use faults::{
    assert_storage_error, check_new_writes_continue, hash_of_shard, log_dir, setup, verify, Acked, Driver, Ledger,
    Model, Promise, Rig, STREAM,
};
use weir::log::fault::WriteFault;
use weir::log::mapped::MapFault;
use weir::log::{Log, LogConfig};
use weir::queue::SendOptions;
use weir::stream::{PutRecord, StartingPosition};
use weir::topic::PublishOptions;
use weir::{Durability, Engine, Error};

/// Acknowledged operations before a fault is armed.
const WARMUP: usize = 8;
/// Operations after which a fault that has not surfaced fails the test.
const LIMIT: usize = 60;
const MODES: [Durability; 3] = [Durability::Always, Durability::Interval(50), Durability::Never];

/// A write straight to the log the failure happened in (`shard` for streams): it must not
/// succeed while that log is poisoned. It is not in the ledger: it must never be on disk.
fn probe_write(engine: &Engine, model: Model, shard: u32) -> weir::Result<()> {
    match model {
        Model::Streams => {
            let record = PutRecord {
                partition_key: b"probe",
                data: b"probe-write",
                explicit_hash_key: Some(hash_of_shard(shard)),
            };
            engine.stream(STREAM)?.put_batch(&[record]).map(|_| ())
        }
        Model::Queues => engine.queue(faults::WORK)?.send(b"probe-write", SendOptions::default()).map(|_| ()),
        Model::Topics => {
            let options = PublishOptions { group: Some("probe".into()), ..PublishOptions::default() };
            engine.topic(faults::TOPIC)?.publish(b"probe-write", options).map(|_| ())
        }
    }
}

/// The shard a stream error names (0 for the message log).
fn shard_of(error: &Error) -> u32 {
    let path = match error {
        Error::Io { path, .. } | Error::Poisoned { path, .. } => path.to_string_lossy().into_owned(),
        _ => return 0,
    };
    u32::from(path.contains("shard-000001"))
}

/// Runs the workload on an open engine until a call fails; returns that error.
fn run_until_error(engine: &Engine, driver: &mut Driver, ledger: &mut Ledger, context: &str) -> Error {
    for _ in 0..LIMIT {
        if let Err(e) = driver.step(engine, ledger) {
            return e;
        }
    }
    panic!("{context}: the armed fault never surfaced in {LIMIT} operations");
}

/// Drops nothing: reopens after the caller dropped the engine and cut the power, checks the
/// ledger under `promise`, and checks that writes continue. Returns how many acknowledged
/// writes were lost.
fn reopen_and_check(rig: &Rig, model: Model, ledger: &mut Ledger, promise: Promise, context: &str) -> usize {
    let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let verdict = verify(&engine, model, ledger, promise, context);
    let lost = verdict.lost(ledger);
    verdict.resolve(ledger);
    check_new_writes_continue(&engine, model, ledger, "after", context);
    lost
}

/// The failure carries the injected error, or (for a write copied through the writable map of
/// the active segment, where a real fault is a SIGBUS without an error number) a map fault.
fn source_matches(error: &Error, kind: WriteFault) -> bool {
    let Error::Io { source, .. } = error else { return false };
    if MapFault::is(source) {
        return true;
    }
    match kind {
        WriteFault::ShortWrite => source.kind() == io::ErrorKind::WriteZero,
        WriteFault::Enospc => source.raw_os_error() == Some(28),
        WriteFault::Eio => source.raw_os_error() == Some(5),
    }
}

/// A write fault armed after the warm-up, `budget` bytes later. With `maps` off the files
/// offer no memory maps, so every frame is appended with a `write` call; on (as on a real file
/// system), small frames are copied through the active segment's writable map.
fn write_fault_case(model: Model, durability: Durability, kind: WriteFault, budget: u64, maps: bool) {
    let context = format!("{} under {durability:?}, {kind:?} after {budget} bytes, maps {maps}", model.name());
    let rig = Rig::new(durability);
    rig.fs.serve_maps(maps);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "w", durability);
        for _ in 0..WARMUP {
            driver.step(&engine, &mut ledger).unwrap_or_else(|e| panic!("{context}: before the fault: {e}"));
        }
        rig.fs.fail_writes_after_bytes(budget, kind);
        let error = run_until_error(&engine, &mut driver, &mut ledger, &context);
        assert_storage_error(&error, rig.dir(), &context);
        assert!(
            source_matches(&error, kind),
            "{context}: the first failure should carry the injected error: {error:?}"
        );
        let again = probe_write(&engine, model, shard_of(&error));
        let again = again.err().unwrap_or_else(|| panic!("{context}: a write after the failure succeeded"));
        assert_storage_error(&again, rig.dir(), &context);
    }
    rig.fs.power_cut();
    reopen_and_check(&rig, model, &mut ledger, Promise::of(durability), &context);
}

fn write_fault_all(kind: WriteFault) {
    for model in Model::ALL {
        for durability in MODES {
            // Budgets that end inside the next frame, on its header, and a few frames later
            // (some of which meet a segment roll).
            for budget in [0, 1, 39, 40, 333, 1000, 2500] {
                for maps in [true, false] {
                    write_fault_case(model, durability, kind, budget, maps);
                }
            }
        }
    }
}

#[test]
fn a_short_write_fails_the_call_with_a_typed_error_and_keeps_every_acknowledged_write() {
    write_fault_all(WriteFault::ShortWrite);
}

#[test]
fn enospc_after_n_bytes_fails_the_call_with_a_typed_error_and_keeps_every_acknowledged_write() {
    write_fault_all(WriteFault::Enospc);
}

#[test]
fn eio_on_write_fails_the_call_with_a_typed_error_and_keeps_every_acknowledged_write() {
    write_fault_all(WriteFault::Eio);
}

/// The next fsync fails once (dropping the file's unsynced data) after `warmup` operations.
fn fsync_fault_case(model: Model, durability: Durability, warmup: usize, power_cut: bool) {
    let context = format!("{} under {durability:?}, fsync fails after {warmup} operations", model.name());
    let rig = Rig::new(durability);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "f", durability);
        for _ in 0..warmup {
            driver.step(&engine, &mut ledger).unwrap_or_else(|e| panic!("{context}: before the fault: {e}"));
        }
        rig.fs.fail_next_fsync();
        let error = run_until_error(&engine, &mut driver, &mut ledger, &context);
        assert_storage_error(&error, rig.dir(), &context);
        let failed_log = log_dir(rig.dir(), model, shard_of(&error));
        // The log refuses every later write until it is reopened, saying why.
        match probe_write(&engine, model, shard_of(&error)) {
            Err(Error::Poisoned { path, reason }) => {
                assert_eq!(path, failed_log, "{context}: the poisoned log");
                assert!(reason.contains("fsync"), "{context}: the reason names the failed fsync: {reason}");
            }
            other => panic!("{context}: a write after a failed fsync returned {other:?}, not Error::Poisoned"),
        }
        assert!(
            matches!(probe_write(&engine, model, shard_of(&error)), Err(Error::Poisoned { .. })),
            "{context}: the log stays poisoned"
        );
        if model == Model::Streams {
            // Poisoning is per log: the other shard still takes writes.
            let other = 1 - shard_of(&error);
            let pending = ledger.pending.take();
            let data = format!("other-shard-{other}");
            let record = PutRecord {
                partition_key: b"other",
                data: data.as_bytes(),
                explicit_hash_key: Some(hash_of_shard(other)),
            };
            let put = engine.stream(STREAM).and_then(|s| s.put_batch(&[record]));
            let put = put.unwrap_or_else(|e| panic!("{context}: the healthy shard refused a write: {e}"));
            ledger.ack(Acked::Put { shard: other, seq: put[0].seq, data });
            ledger.pending = pending;
        }
    }
    if power_cut {
        rig.fs.power_cut();
    } else {
        rig.fs.clear_faults();
    }
    reopen_and_check(&rig, model, &mut ledger, Promise::of(durability), &context);
}

#[test]
fn a_failed_fsync_fails_the_call_poisons_the_log_until_reopen_and_keeps_every_acknowledged_write() {
    for model in Model::ALL {
        for durability in MODES {
            for warmup in [0, 3, 8, 11] {
                fsync_fault_case(model, durability, warmup, true);
            }
        }
    }
}

#[test]
fn a_reopen_after_a_failed_fsync_without_power_loss_recovers_and_accepts_writes_again() {
    for model in Model::ALL {
        for durability in MODES {
            for warmup in [0, 5, 10] {
                fsync_fault_case(model, durability, warmup, false);
            }
        }
    }
}

/// Reads everything the model's logs hold (both shards; every queue's messages, bodies
/// included); returns how many records or messages were served.
fn read_everything(engine: &Engine, model: Model) -> weir::Result<usize> {
    let queues: &[&str] = match model {
        Model::Streams => {
            let mut served = 0;
            for shard in 0..2 {
                let mut it = engine.stream(STREAM)?.iterator(shard, StartingPosition::TrimHorizon)?;
                loop {
                    let batch = it.next_batch(1000)?;
                    if batch.records.is_empty() {
                        break;
                    }
                    served += batch.records.len();
                }
            }
            return Ok(served);
        }
        Model::Queues => &[faults::WORK, faults::ORDERED],
        Model::Topics => &[faults::ALL, faults::EVEN],
    };
    let mut served = 0;
    for queue in queues {
        served += engine.queue(queue)?.peek(1000)?.len();
    }
    Ok(served)
}

fn assert_map_fault(error: &Error, dir: &Path, context: &str) {
    assert_storage_error(error, dir, context);
    match error {
        Error::Io { source, .. } if MapFault::is(source) => {}
        other => panic!("{context}: expected a fault of a memory map, got {other:?}"),
    }
}

/// Reads through the maps fault (a disk that cannot read a page): every read fails with
/// `Error::Io` and serves nothing; a read fault poisons nothing; once the disk reads again, a
/// new map serves the same records; recovery over a faulting map fails the open, never
/// serves zeros; and nothing acknowledged is lost, in any mode.
fn map_read_fault_case(model: Model, durability: Durability) {
    let context = format!("{} under {durability:?}, reads through maps fault", model.name());
    let rig = Rig::new(durability);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "r", durability);
        for _ in 0..WARMUP {
            driver.step(&engine, &mut ledger).unwrap_or_else(|e| panic!("{context}: before the fault: {e}"));
        }
        let before = read_everything(&engine, model).unwrap_or_else(|e| panic!("{context}: read: {e}"));
        assert!(before > 0, "{context}: nothing to read");
        rig.fs.fail_map_reads(None);
        match read_everything(&engine, model) {
            Err(e) => assert_map_fault(&e, rig.dir(), &context),
            Ok(n) => panic!("{context}: {n} records served through a faulting map"),
        }
        rig.fs.clear_faults();
        let after = read_everything(&engine, model).unwrap_or_else(|e| panic!("{context}: read after: {e}"));
        assert_eq!(after, before, "{context}: a new map serves the same");
    }
    rig.fs.fail_map_reads(None);
    match rig.open() {
        Err(e) => assert_map_fault(&e, rig.dir(), &context),
        Ok(_) => panic!("{context}: recovery scanned a faulting map and opened"),
    }
    rig.fs.clear_faults();
    let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let verdict = verify(&engine, model, &ledger, Promise::Everything, &context);
    assert_eq!(verdict.lost(&ledger), 0, "{context}");
    verdict.resolve(&mut ledger);
    check_new_writes_continue(&engine, model, &mut ledger, "after", &context);
}

#[test]
fn a_read_fault_on_a_mapped_page_is_an_io_error_and_serves_nothing() {
    for model in Model::ALL {
        for durability in MODES {
            map_read_fault_case(model, durability);
        }
    }
}

/// Writes through the active segment's writable map fault (a full file system that allocates
/// on write): the call fails with `Error::Io`, the log is poisoned, and after a power cut the
/// reopened engine holds everything the mode promises.
fn map_write_fault_case(model: Model, durability: Durability, warmup: usize) {
    let context = format!("{} under {durability:?}, writes through maps fault after {warmup}", model.name());
    let rig = Rig::new(durability);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "m", durability);
        for _ in 0..warmup {
            driver.step(&engine, &mut ledger).unwrap_or_else(|e| panic!("{context}: before the fault: {e}"));
        }
        rig.fs.fail_map_writes(None);
        let error = run_until_error(&engine, &mut driver, &mut ledger, &context);
        assert_map_fault(&error, rig.dir(), &context);
        match probe_write(&engine, model, shard_of(&error)) {
            Err(Error::Poisoned { path, .. }) => {
                assert_eq!(path, log_dir(rig.dir(), model, shard_of(&error)), "{context}: the poisoned log")
            }
            other => panic!("{context}: a write after a failed write through the map returned {other:?}"),
        }
    }
    rig.fs.power_cut();
    reopen_and_check(&rig, model, &mut ledger, Promise::of(durability), &context);
}

#[test]
fn a_write_fault_through_the_writable_map_fails_the_call_poisons_the_log_and_keeps_every_acknowledged_write() {
    for model in Model::ALL {
        for durability in MODES {
            for warmup in [0, 3, WARMUP] {
                map_write_fault_case(model, durability, warmup);
            }
        }
    }
}

/// Counts the torn tails recovery cut off in every log of the model (opening the logs directly,
/// before the engine does, since the engine does not expose the message log's report).
fn torn_tails(rig: &Rig, model: Model) -> usize {
    let dirs: Vec<_> = match model {
        Model::Streams => (0..2).map(|s| log_dir(rig.dir(), model, s)).collect(),
        Model::Queues | Model::Topics => vec![log_dir(rig.dir(), model, 0)],
    };
    let mut torn = 0;
    for dir in dirs {
        let log = Log::open(rig.fs.clone(), &dir, LogConfig::default(), 0).expect("open the log directly");
        let report = log.recovery_report();
        assert!(report.damaged.is_empty(), "lost writes must read as a torn tail, not damage: {report:?}");
        assert!(report.missing.is_empty(), "lost writes must not leave a hole: {report:?}");
        torn += report.truncated.len();
    }
    torn
}

/// No engine can survive a disk that acknowledges fsyncs it never did: what this checks is
/// that the loss shows up as what it is (a tail of each log cut off, or simply missing at the
/// end) and that nothing else is served: no garbage, no hole, no reordering.
fn lying_fsync_case(model: Model, keep_unsynced: u64, garbage: u64) {
    let context = format!("{} with a lying fsync, power cut keeping {keep_unsynced}+{garbage} bytes", model.name());
    let rig = Rig::new(Durability::Always);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "l", Durability::Always);
        for _ in 0..3 {
            driver.step(&engine, &mut ledger).expect("before the disk starts lying");
        }
        rig.fs.lying_fsync(true);
        for _ in 0..12 {
            driver
                .step(&engine, &mut ledger)
                .unwrap_or_else(|e| panic!("{context}: the lying disk reports success: {e}"));
        }
    }
    rig.fs.power_cut_with_torn_tails(keep_unsynced, garbage);
    let torn = torn_tails(&rig, model);
    if garbage > 0 {
        assert!(torn > 0, "{context}: junk at the end of a segment must be cut off as a torn tail");
    }
    let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let verdict = verify(&engine, model, &ledger, Promise::Prefix, &context);
    let lost = verdict.lost(&ledger);
    assert!(lost > 0, "{context}: a lying disk lost nothing, so this test tests nothing");
    assert!(
        verdict.kept.iter().take(3).all(|k| *k),
        "{context}: what was acknowledged before the disk started lying must survive"
    );
    verdict.resolve(&mut ledger);
    check_new_writes_continue(&engine, model, &mut ledger, "after", &context);
}

#[test]
fn a_lying_fsync_loses_acknowledged_writes_at_a_power_cut_as_a_cut_tail_never_as_garbage() {
    for model in Model::ALL {
        for (keep, garbage) in [(0, 0), (0, 9), (100, 0), (700, 13)] {
            lying_fsync_case(model, keep, garbage);
        }
    }
}

/// The first segment of shard 0 of the stream.
fn segment_path(dir: &Path, base: u64) -> std::path::PathBuf {
    log_dir(dir, Model::Streams, 0).join(format!("{base:020}.seg"))
}

/// A roll whose new segment cannot be made durable (its fsync fails) fails the put. A smaller
/// put that would still fit in the old segment must not land there below a half-made segment
/// file that claims the same sequence numbers: the data directory must reopen.
#[test]
fn a_failed_segment_roll_leaves_a_log_that_reopens_with_every_acknowledged_record() {
    let rig = Rig::new(Durability::Always);
    let put = |engine: &Engine, data: &[u8]| {
        let record = PutRecord { partition_key: b"k", data, explicit_hash_key: Some(hash_of_shard(0)) };
        engine.stream(STREAM).and_then(|s| s.put_batch(&[record]))
    };
    let big = vec![b'b'; 1000];
    let mut acked = 0;
    {
        let engine = rig.open().expect("open");
        setup(&engine, Model::Streams).expect("setup");
        for _ in 0..3 {
            put(&engine, &big).expect("put");
            acked += 1;
        }
        // The next big put rolls to segment 3; its creation's fsync fails.
        rig.fs.fail_next_fsync_of(&segment_path(rig.dir(), 3));
        let failed = put(&engine, &big).expect_err("the roll fails");
        assert!(matches!(&failed, Error::Io { op: "fsync", .. }), "{failed:?}");
        // format-spec.md: a failed fsync poisons the log. Refusing this put is right; accepting
        // it is right only if the data directory still opens afterwards.
        match put(&engine, b"small") {
            Err(Error::Poisoned { .. }) => {}
            Err(other) => panic!("unexpected error after a failed roll: {other:?}"),
            Ok(r) => {
                assert_eq!(r[0].seq, 3);
                acked += 1;
            }
        }
    }
    // A restart, not a power cut: the half-created segment file is still there.
    let engine = rig.open().expect("a restart after a failed roll opens the data directory");
    assert_eq!(shard_0_seqs(&engine).len() as u64, acked, "every acknowledged put is there, nothing else");
}

/// The sequence numbers shard 0 of the stream serves, from its first record on.
fn shard_0_seqs(engine: &Engine) -> Vec<u64> {
    let mut it = engine.stream(STREAM).and_then(|s| s.iterator(0, StartingPosition::TrimHorizon)).expect("iterator");
    let mut seqs = Vec::new();
    loop {
        let batch = it.next_batch(1000).expect("read shard 0");
        if batch.records.is_empty() {
            return seqs;
        }
        seqs.extend(batch.records.iter().map(|r| r.seq));
    }
}

/// The same through ENOSPC: the new segment's header does not fit, then space is freed and a
/// small put that fits in the old segment is tried.
#[test]
fn a_segment_roll_that_hit_enospc_leaves_a_log_that_reopens_with_every_acknowledged_record() {
    let rig = Rig::new(Durability::Always);
    let put = |engine: &Engine, data: &[u8]| {
        let record = PutRecord { partition_key: b"k", data, explicit_hash_key: Some(hash_of_shard(0)) };
        engine.stream(STREAM).and_then(|s| s.put_batch(&[record]))
    };
    let big = vec![b'b'; 1000];
    let mut acked = Vec::new();
    {
        let engine = rig.open().expect("open");
        setup(&engine, Model::Streams).expect("setup");
        for i in 0..3 {
            acked.push((put(&engine, &big).expect("put")[0].seq, i));
        }
        // Disk full: the roll seals the old segment (its fsync writes nothing), cannot write
        // its index (ignored: open rebuilds it) nor the new segment's header.
        rig.fs.fail_writes_after_bytes(0, WriteFault::Enospc);
        let failed = put(&engine, &big).expect_err("the roll fails");
        assert!(matches!(&failed, Error::Io { .. }), "{failed:?}");
        rig.fs.clear_faults();
        match put(&engine, b"small") {
            Err(Error::Poisoned { .. }) => {}
            Err(other) => panic!("unexpected error after a failed roll: {other:?}"),
            Ok(r) => acked.push((r[0].seq, 3)),
        }
    }
    let engine = rig.open().expect("a restart after a failed roll opens the data directory");
    let seqs: Vec<u64> = acked.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(shard_0_seqs(&engine), seqs, "every acknowledged put is there, nothing else");
}

/// On a file system where a new directory's entry is durable only once its parent is synced
/// (POSIX; `FaultyFs` by default), everything the engine creates must survive a power cut
/// once acknowledged.
#[test]
fn new_directories_survive_a_power_cut() {
    let rig = Rig::new(Durability::Always);
    let mut ledger = Ledger::default();
    {
        let engine = rig.open().expect("open");
        setup(&engine, Model::Streams).expect("create the stream");
        let mut driver = Driver::new(Model::Streams, "d", Durability::Always);
        for _ in 0..4 {
            driver.step(&engine, &mut ledger).expect("put");
        }
    }
    rig.fs.power_cut();
    let engine = rig.open().expect("reopen");
    assert!(engine.stream(STREAM).is_ok(), "the acknowledged stream creation survived");
    let verdict = verify(&engine, Model::Streams, &ledger, Promise::Everything, "strict directories");
    assert_eq!(verdict.lost(&ledger), 0);
}

/// Deleting a stream removes its directory; creating one of the same name makes a new one.
/// Unless both changes are made durable in `streams/`, a power cut brings the old directory,
/// with the deleted stream's records, back under the new stream's name.
#[test]
fn a_stream_deleted_and_created_again_never_serves_the_deleted_records_after_a_power_cut() {
    let rig = Rig::new(Durability::Always);
    let put = |engine: &Engine, data: &[u8]| {
        let record = PutRecord { partition_key: b"k", data, explicit_hash_key: Some(hash_of_shard(0)) };
        engine.stream(STREAM).and_then(|s| s.put_batch(&[record])).map(|r| r[0].seq)
    };
    {
        let engine = rig.open().expect("open");
        setup(&engine, Model::Streams).expect("create the stream");
        for _ in 0..3 {
            put(&engine, b"deleted").expect("put");
        }
        engine.delete_stream(STREAM).expect("delete");
        setup(&engine, Model::Streams).expect("create it again");
        assert_eq!(put(&engine, b"new").expect("put"), 0);
    }
    rig.fs.power_cut();
    let engine = rig.open().expect("reopen");
    let stream = engine.stream(STREAM).expect("the acknowledged re-creation survived");
    let mut it = stream.iterator(0, weir::stream::StartingPosition::TrimHorizon).expect("iterator");
    let records = it.next_batch(100).expect("read").records;
    let data: Vec<&[u8]> = records.iter().map(|r| &r.data[..]).collect();
    assert_eq!(data, vec![&b"new"[..]], "the new stream holds its acknowledged put and nothing of the deleted one");
}

/// A data directory `Engine::open` creates, and a directory a delivery creates, are durable
/// in their parents before anything in them is acknowledged: otherwise a power cut removes the
/// whole directory, acknowledged writes and delivered files with it.
#[test]
fn directories_the_engine_creates_survive_a_power_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = std::sync::Arc::new(weir::log::fault::FaultyFs::new());
    fs.create_durable_dir_all(tmp.path());
    // The lock file lives on the real disk; every data file lives in `fs`.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("real directory for LOCK");
    let clock = std::sync::Arc::new(weir::ManualClock::new(1_700_000_000_000));
    let options = faults::options(fs.clone(), Durability::Always, clock);
    let delivered_to = tmp.path().join("archive").join("events");
    {
        let engine = Engine::open(&data, options.clone()).expect("open creates the data directory");
        engine.create_queue(faults::WORK, weir::queue::QueueConfig::default()).expect("create queue");
        engine.queue(faults::WORK).and_then(|q| q.send(b"acknowledged", SendOptions::default())).expect("send");
        setup(&engine, Model::Streams).expect("create the stream");
        let stream = engine.stream(STREAM).expect("stream");
        stream.put(b"k", b"record").expect("put");
        let files = stream
            .deliver(weir::stream::DeliveryConfig::new(&delivered_to))
            .and_then(|mut d| d.run_once())
            .expect("deliver");
        assert_eq!(files.len(), 1, "one shard held a record");
    }
    fs.power_cut();
    let engine = Engine::open(&data, options).expect("reopen");
    let queue = engine.queue(faults::WORK).expect("the acknowledged queue creation survived");
    let peeked = queue.peek(10).expect("peek");
    assert_eq!(peeked.len(), 1, "the acknowledged send survived");
    let listed = weir::log::io::Vfs::list_dir(fs.as_ref(), &delivered_to).expect("the delivery directory survived");
    assert_eq!(listed.len(), 1, "the delivered file survived: {listed:?}");
}

/// Waits (up to ten seconds) for the engine's own maintenance thread to bring `done` about.
fn wait_for_maintenance(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "the maintenance thread never got there: {what}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// True if some segment of the log in `dir` holds `needle` durably (what a power cut keeps).
fn durable_in(fs: &weir::log::fault::FaultyFs, dir: &Path, needle: &[u8]) -> bool {
    let names = weir::log::io::Vfs::list_dir(fs, dir).unwrap_or_default();
    names.iter().filter(|n| n.ends_with(".seg")).any(|n| {
        fs.durable_contents(&dir.join(n)).is_some_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

/// Under `Interval`, with the maintenance thread running: an fsync that fails on one stream's
/// shard poisons that log and is reported (`Engine::health`), while every other log is still
/// synced on every tick and still has its retention and compaction: after a power cut, what
/// the other logs acknowledged before the last tick is there.
#[test]
fn a_failed_background_fsync_stays_with_its_log() {
    let rig = Rig::new(Durability::Interval(5));
    let options =
        weir::Options { background: true, maintenance_interval: std::time::Duration::from_millis(20), ..rig.options() };
    let engine = Engine::open(rig.dir(), options.clone()).expect("open");
    for name in ["a", "b"] {
        engine.create_stream(name, 1, None).expect("create stream");
    }
    engine.create_queue(faults::WORK, weir::queue::QueueConfig::default()).expect("create queue");
    let (a, b) = (engine.stream("a").expect("a"), engine.stream("b").expect("b"));
    let queue = engine.queue(faults::WORK).expect("queue");
    // Old records for retention (streams) and garbage for compaction (the message log).
    for i in 0..40 {
        b.put(b"k", faults::body("old", i).as_bytes()).expect("put to b");
        queue.send(faults::body("old", i).as_bytes(), SendOptions::default()).expect("send");
    }
    let options_receive = weir::queue::ReceiveOptions { max: 10, ..Default::default() };
    loop {
        let got = queue.receive(options_receive.clone()).expect("receive");
        if got.is_empty() {
            break;
        }
        for m in got {
            queue.delete(&m.receipt_handle).expect("delete");
        }
    }
    let a_log = a.shard(0).expect("shard").log().dir().to_path_buf();
    let b_log = b.shard(0).expect("shard").log().dir().to_path_buf();
    let message_log = rig.dir().join("queues");
    let segments = |dir: &Path| {
        weir::log::io::Vfs::list_dir(rig.fs.as_ref(), dir)
            .unwrap_or_default()
            .iter()
            .filter(|n| n.ends_with(".seg"))
            .count()
    };
    let (b_segments, queue_segments) = (segments(&b_log), segments(&message_log));
    assert!(b_segments > 2 && queue_segments > 2, "{b_segments} and {queue_segments} segments to expire");

    rig.fs.fail_next_fsync_of(&a_log.join("00000000000000000000.seg"));
    a.put(b"k", b"lost with the failed fsync").expect("put to a (in the page cache)");
    wait_for_maintenance("the failure is reported", || !engine.health().failures.is_empty());
    let health = engine.health();
    assert_eq!(health.failures.len(), 1, "{health:?}");
    assert_eq!((health.failures[0].log.as_path(), health.failures[0].task), (a_log.as_path(), "sync"));
    assert_eq!(health.poisoned, vec![a_log.clone()]);
    let refused = a.put(b"k", b"refused").expect_err("a poisoned log refuses writes");
    assert!(matches!(refused, Error::Poisoned { .. }), "{refused:?}");

    // The other logs still have their retention and compaction...
    rig.clock.advance(std::time::Duration::from_secs(25 * 3600));
    wait_for_maintenance("b's retention ran", || segments(&b_log) < b_segments);
    wait_for_maintenance("the message log was compacted", || segments(&message_log) < queue_segments);
    // ... and are synced on time.
    b.put(b"k", b"b after the failure").expect("put to b");
    queue.send(b"queue after the failure", SendOptions::default()).expect("send");
    wait_for_maintenance("b is synced", || durable_in(&rig.fs, &b_log, b"b after the failure"));
    wait_for_maintenance("the queue is synced", || durable_in(&rig.fs, &message_log, b"queue after the failure"));
    let health = engine.health();
    assert_eq!(health.failures.len(), 1, "reported once, whatever later ticks met: {health:?}");

    rig.fs.power_cut();
    drop((a, b, queue));
    drop(engine);
    let engine = rig.open().expect("reopen");
    assert!(engine.health().is_healthy(), "a reopened engine starts clean");
    let b = engine.stream("b").expect("b");
    let mut it = b.iterator(0, weir::stream::StartingPosition::TrimHorizon).expect("iterator");
    let data: Vec<Vec<u8>> = it.next_batch(1000).expect("read").records.iter().map(|r| r.data.to_vec()).collect();
    assert_eq!(data, vec![b"b after the failure".to_vec()], "b's synced put survived, its expired ones did not");
    let peeked = engine.queue(faults::WORK).and_then(|q| q.peek(100)).expect("peek");
    let bodies: Vec<&[u8]> = peeked.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, vec![&b"queue after the failure"[..]], "the queue's synced send survived, nothing else");
}

/// Under `Never`, a power cut loses the unsynced tail of the message log, and the next sends
/// are given the lost messages' keys again. A receipt handle of a lost message must not
/// match the new message that took its key (same queue, same key, same receive count, even
/// the same send time on this manual clock): it is rejected and the new message is intact.
#[test]
fn a_receipt_handle_of_a_message_lost_to_a_power_cut_matches_no_later_message() {
    let rig = Rig::new(Durability::Never);
    let receive = weir::queue::ReceiveOptions { max: 10, ..Default::default() };
    let (old_handle, old_id) = {
        let engine = rig.open().expect("open");
        engine.create_queue(faults::WORK, weir::queue::QueueConfig::default()).expect("create queue");
        let queue = engine.queue(faults::WORK).expect("queue");
        queue.send(b"lost to the power cut", SendOptions::default()).expect("send (page cache only)");
        let got = queue.receive(receive.clone()).expect("receive");
        assert_eq!(got.len(), 1);
        rig.fs.power_cut();
        (got[0].receipt_handle.clone(), got[0].message_id.clone())
    };
    let engine = rig.open().expect("reopen");
    let queue = engine.queue(faults::WORK).expect("the queue's creation was durable");
    assert!(queue.peek(10).expect("peek").is_empty(), "the unsynced send is gone");
    queue.send(b"new message", SendOptions::default()).expect("send");
    let got = queue.receive(receive).expect("receive");
    assert_eq!(got.len(), 1);
    assert_ne!(got[0].message_id, old_id, "message ids are never handed out twice");
    let refused = queue.delete(&old_handle).expect_err("the lost message's handle names no live message");
    assert!(matches!(refused, Error::InvalidReceiptHandle(_)), "{refused:?}");
    let refused = queue.change_visibility(&old_handle, std::time::Duration::ZERO);
    assert!(matches!(refused, Err(Error::InvalidReceiptHandle(_))), "{refused:?}");
    let peeked = queue.peek(10).expect("peek");
    assert_eq!(peeked.len(), 1, "the new message is intact");
    assert_eq!((&peeked[0].body[..], peeked[0].state), (&b"new message"[..], "in_flight"));
    queue.delete(&got[0].receipt_handle).expect("its own handle deletes it");
}

/// `peek` shows what a send acknowledged, never a message whose send has not returned `Ok`:
/// here the send's fsync failed, so it was never acknowledged (and is not on disk).
#[test]
fn peek_shows_only_acknowledged_sends() {
    let rig = Rig::new(Durability::Always);
    let engine = rig.open().expect("open");
    engine.create_queue(faults::WORK, weir::queue::QueueConfig::default()).expect("create queue");
    let queue = engine.queue(faults::WORK).expect("queue");
    for body in ["first", "second"] {
        queue.send(body.as_bytes(), SendOptions::default()).expect("send");
    }
    rig.fs.fail_next_fsync();
    let failed = queue.send(b"never acknowledged", SendOptions::default()).expect_err("its fsync fails");
    assert_storage_error(&failed, rig.dir(), "the failed send");
    let bodies = |limit| -> Vec<Vec<u8>> { queue.peek(limit).expect("peek").iter().map(|m| m.body.to_vec()).collect() };
    assert_eq!(bodies(10), vec![b"first".to_vec(), b"second".to_vec()], "only acknowledged sends");
    assert_eq!(bodies(1), vec![b"first".to_vec()], "the oldest first");
}

/// Under `Never`, a checkpoint can be durable while the records it covers are not (two logs).
/// After a power cut the checkpoint lies beyond the shard's end, and the records put next
/// take the lost numbers: a consumer must read them, not resume past them, and must keep doing
/// so after a further crash before it checkpoints again.
#[test]
fn a_checkpoint_beyond_the_end_of_a_shard_after_a_power_cut_skips_no_new_record() {
    use weir::stream::{ConsumerConfig, StartingPosition};
    let rig = Rig::new(Durability::Never);
    let put =
        |engine: &Engine, data: &str| engine.stream("s").and_then(|s| s.put(b"k", data.as_bytes())).map(|r| r.seq);
    let consume = |engine: &Engine| -> Vec<String> {
        let stream = engine.stream("s").expect("stream");
        let mut consumer = stream.consumer("g", "w", ConsumerConfig::default()).expect("consumer");
        let records = consumer.poll(1000).expect("poll");
        records.iter().map(|r| String::from_utf8_lossy(&r.record.data).into_owned()).collect()
    };
    {
        let engine = rig.open().expect("open");
        engine.create_stream("s", 1, None).expect("create");
        for i in 0..3 {
            put(&engine, &format!("durable {i}")).expect("put");
        }
        engine.flush().expect("flush");
        for i in 3..10 {
            put(&engine, &format!("lost {i}")).expect("put");
        }
        let stream = engine.stream("s").expect("stream");
        let mut consumer = stream.consumer("g", "w", ConsumerConfig::default()).expect("consumer");
        assert_eq!(consumer.poll(1000).expect("poll").len(), 10);
        consumer.checkpoint(0, 9).expect("checkpoint");
        // The checkpoint log's file reaches the disk (a roll would do that), the shard's not.
        let checkpoints = rig.dir().join("streams/s/checkpoints/00000000000000000000.seg");
        weir::log::io::Vfs::open_file(rig.fs.as_ref(), &checkpoints, false)
            .and_then(|f| f.sync_data())
            .expect("sync the checkpoint log");
        rig.fs.power_cut();
    }
    {
        let engine = rig.open().expect("reopen");
        let stream = engine.stream("s").expect("stream");
        let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
        assert_eq!(it.next_batch(100).expect("read").records.len(), 3, "the unsynced puts are gone");
        for i in 0..10 {
            put(&engine, &format!("new {i}")).expect("put");
        }
        let expected: Vec<String> = (0..10).map(|i| format!("new {i}")).collect();
        assert_eq!(consume(&engine), expected, "the consumer resumes at the shard's end as it was");
        engine.flush().expect("flush");
        rig.fs.power_cut();
    }
    let engine = rig.open().expect("reopen again");
    let expected: Vec<String> = (0..10).map(|i| format!("new {i}")).collect();
    assert_eq!(consume(&engine), expected, "a second crash before any new checkpoint skips nothing either");
}

/// The data each shard of stream `name` serves, in order.
fn shard_data(engine: &Engine, name: &str, shards: u32) -> Vec<Vec<Vec<u8>>> {
    let stream = engine.stream(name).expect("stream");
    (0..shards)
        .map(|shard| {
            let mut it = stream.iterator(shard, StartingPosition::TrimHorizon).expect("iterator");
            let mut data = Vec::new();
            loop {
                let batch = it.next_batch(1000).expect("read");
                if batch.records.is_empty() {
                    return data;
                }
                data.extend(batch.records.into_iter().map(|r| r.data.to_vec()));
            }
        })
        .collect()
}

/// A put over several shards writes every shard's frame and then waits for their fsyncs
/// together: it is acknowledged only once all of them are durable, and an fsync that fails on
/// any shard fails the call. After a power cut, each acknowledged put is in every shard it
/// touched, and the failed put's records are missing from (at least) the shard whose fsync
/// failed.
#[test]
fn a_put_over_several_shards_is_acknowledged_only_once_every_shard_is_durable() {
    const SHARDS: u32 = 6;
    // A hash key inside each shard's share of the hash range: one record per shard.
    let key_of = |shard: u32| (u128::MAX / u128::from(SHARDS)) * u128::from(shard) + 7;
    let put = |engine: &Engine, tag: &str| {
        let data: Vec<String> = (0..SHARDS).map(|s| format!("{tag}-{s}")).collect();
        let records: Vec<PutRecord<'_>> = (0..SHARDS)
            .map(|s| PutRecord {
                partition_key: b"k",
                data: data[s as usize].as_bytes(),
                explicit_hash_key: Some(key_of(s)),
            })
            .collect();
        engine.stream("multi").and_then(|s| s.put_batch(&records))
    };
    for fail in [false, true] {
        let rig = Rig::new(Durability::Always);
        {
            let engine = rig.open().expect("open");
            engine.create_stream("multi", SHARDS, None).expect("create");
            let acked = put(&engine, "acked").expect("the first put");
            let shards: std::collections::BTreeSet<u32> = acked.iter().map(|p| p.shard).collect();
            assert_eq!(shards.len(), SHARDS as usize, "the put touched every shard");
            if fail {
                rig.fs.fail_next_fsync();
                let error = put(&engine, "failed").expect_err("a put whose fsync failed");
                assert_storage_error(&error, rig.dir(), "a put over several shards");
            } else {
                put(&engine, "second").expect("the second put");
            }
        }
        rig.fs.power_cut();
        let engine = rig.open().expect("reopen");
        let served = shard_data(&engine, "multi", SHARDS);
        for (shard, data) in served.iter().enumerate() {
            assert_eq!(data.first().map(Vec::as_slice), Some(format!("acked-{shard}").as_bytes()), "shard {shard}");
            if !fail {
                assert_eq!(data.len(), 2, "shard {shard}: both acknowledged puts");
            }
        }
        if fail {
            let lost = served.iter().filter(|data| data.len() == 1).count();
            assert!(lost >= 1, "the shard whose fsync failed lost the unacknowledged record: {served:?}");
        }
    }
}
