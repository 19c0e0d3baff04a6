//! `Engine::rekey` is crash-safe at every step: a crash after any of its file-system operations,
//! then a power cut, leaves a directory that opens with a key file holding the old and the new
//! version and serves exactly what it served before; a rekey run again then finishes, after which
//! the old version can leave the key file. With only the new version, a half-done rekey is a
//! clear `WrongKey`, never garbage.

#[path = "common/faults.rs"]
mod faults;

use faults::{setup, Driver, Ledger, Model, Rig, ALL, EVEN, STREAM};
use weir::stream::StartingPosition;
use weir::{Durability, Engine, Error, KeySource};

fn old_only() -> KeySource {
    KeySource::from_text(&format!("old {}\n", "11".repeat(32))).expect("keys")
}

fn new_only() -> KeySource {
    KeySource::from_text(&format!("new {}\n", "a5".repeat(32))).expect("keys")
}

/// Everything the directory serves: every record of both shards, every message of both queues.
fn contents(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    let stream = engine.stream(STREAM).expect("stream");
    for shard in 0..2 {
        let mut iterator = stream.iterator(shard, StartingPosition::TrimHorizon).expect("iterator");
        loop {
            let batch = iterator.next_batch(1000).expect("read");
            if batch.records.is_empty() {
                break;
            }
            out.extend(batch.records.iter().map(|r| format!("{shard}:{}", String::from_utf8_lossy(&r.data))));
        }
    }
    for queue in [ALL, EVEN] {
        let peeked = engine.queue(queue).and_then(|q| q.peek(1000)).expect("peek");
        out.extend(peeked.iter().map(|m| format!("{queue}:{}", String::from_utf8_lossy(&m.body))));
    }
    out
}

/// A directory written under the old version alone (streams, queues, a topic, the catalog),
/// closed cleanly, with what it serves.
fn written_under_old() -> (Rig, Vec<String>) {
    let mut rig = Rig::new(Durability::Always);
    rig.key_source = Some(old_only());
    let engine = rig.open().expect("open");
    for model in [Model::Streams, Model::Topics] {
        setup(&engine, model).expect("setup");
        let mut driver = Driver::new(model, "r", Durability::Always);
        let mut ledger = Ledger::default();
        for _ in 0..12 {
            driver.step(&engine, &mut ledger).expect("workload");
        }
    }
    let served = contents(&engine);
    assert!(served.len() > 12, "the workload wrote too little: {served:?}");
    drop(engine);
    rig.key_source = Some(faults::test_keys());
    (rig, served)
}

#[test]
fn a_crash_at_every_step_of_a_rekey_leaves_a_directory_that_opens_and_rekeys_again() {
    let (rig, served) = written_under_old();
    let engine = rig.open().expect("open with both versions");
    let start = rig.fs.op_count();
    let report = engine.rekey().expect("rekey");
    let total = rig.fs.op_count() - start;
    assert!(report.logs_rewritten >= 4 && total > 8, "{report:?}, {total} operations");
    drop(engine);
    let (mut finished_early, mut half_done) = (0, 0);
    for n in 0..=total {
        let context = format!("crash after {n} of {total} operations of a rekey");
        let (mut rig, _) = written_under_old();
        {
            let engine = rig.open().expect("open with both versions");
            rig.fs.crash_after_ops(n);
            if let Err(e) = engine.rekey() {
                assert!(matches!(e, Error::Io { .. } | Error::Poisoned { .. }), "{context}: {e}");
            }
        }
        match n % 2 {
            0 => rig.fs.power_cut(),
            _ => rig.fs.power_cut_with_torn_tails(n * 17 % 100, 3),
        }
        // With the new version only: either the rekey got that far, or a clear error.
        rig.key_source = Some(new_only());
        match rig.open() {
            Ok(engine) => {
                assert_eq!(contents(&engine), served, "{context}: opened with the new version alone");
                finished_early += 1;
            }
            Err(Error::WrongKey { .. }) => half_done += 1,
            Err(e) => panic!("{context}: with the new version alone: {e}"),
        }
        rig.key_source = Some(faults::test_keys());
        let engine = rig.open().unwrap_or_else(|e| panic!("{context}: reopen with both versions: {e}"));
        assert_eq!(contents(&engine), served, "{context}");
        engine.rekey().unwrap_or_else(|e| panic!("{context}: rekey again: {e}"));
        drop(engine);
        rig.key_source = Some(new_only());
        let engine = rig.open().unwrap_or_else(|e| panic!("{context}: after the second rekey: {e}"));
        assert_eq!(contents(&engine), served, "{context}: after the second rekey");
    }
    assert!(finished_early >= 1, "no crash point came after the rekey was whole");
    assert!(half_done > 1, "no crash point left a half-done rekey");
}
