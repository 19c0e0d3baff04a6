//! The queue index snapshot: opening from it and the message log's tail builds the index a
//! full replay builds, and the live index the engine had; a snapshot that does not check out
//! (a flipped bit, cut short, another version, a position the log does not hold) is ignored
//! and reported, and the full replay runs; queues and topics created or deleted after it come
//! out right; retention keeps the log it needs; a crash or a power cut at any file-system
//! operation of its writing loses nothing acknowledged and revives nothing deleted.

mod common;
#[path = "common/faults.rs"]
mod faults;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use weir::queue::{QueueConfig, ReceiveOptions, SendOptions};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn options(clock: &Arc<ManualClock>, snapshot_on_close: bool) -> Options {
    Options { snapshot_on_close, ..common::test_options(Arc::clone(clock), 1024) }
}

fn open(dir: &Path, clock: &Arc<ManualClock>, snapshot_on_close: bool) -> Engine {
    Engine::open(dir, options(clock, snapshot_on_close)).expect("open")
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("queues"))
        .expect("queues directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    out.sort();
    out
}

fn receive(engine: &Engine, queue: &str, max: usize) -> Vec<weir::queue::ReceivedMessage> {
    let options = ReceiveOptions { max, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
    engine.queue(queue).expect("queue").receive(options).expect("receive")
}

fn fifo_send(group: &str, dedup: &str) -> SendOptions {
    SendOptions { group: Some(group.into()), dedup_id: Some(dedup.into()), ..SendOptions::default() }
}

/// The index an open built must be the one a full replay builds.
fn assert_index_is_replay(engine: &Engine, context: &str) -> String {
    let dump = engine.queue_index_dump();
    let replayed = engine.replayed_queue_index_dump().expect("full replay");
    assert_eq!(dump, replayed, "{context}: index after open vs full replay ({:?})", engine.queue_index_recovery());
    dump
}

/// A standard queue with messages in every state and a FIFO queue with groups and
/// deduplication ids; returns the live index.
fn fill(engine: &Engine) {
    engine.create_queue("q", QueueConfig::default()).expect("create q");
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("create f");
    let q = engine.queue("q").expect("q");
    for i in 0..40 {
        let delay = (i % 7 == 0).then(|| Duration::from_secs(30));
        q.send(format!("m{i}").as_bytes(), SendOptions { delay, ..SendOptions::default() }).expect("send");
    }
    for (i, m) in receive(engine, "q", 10).iter().enumerate() {
        if i % 2 == 0 {
            q.delete(&m.receipt_handle).expect("delete");
        }
    }
    let f = engine.queue("f.fifo").expect("f");
    for i in 0..12 {
        f.send(format!("f{i}").as_bytes(), fifo_send(&format!("g{}", i % 3), &format!("d{i}"))).expect("send f");
    }
    receive(engine, "f.fifo", 2);
}

#[test]
fn a_damaged_snapshot_is_ignored_reported_and_the_full_replay_runs() {
    let tmp = common::scratch_dir();
    let dir = tmp.path();
    let clock = Arc::new(ManualClock::new(T0));
    let reference = {
        let engine = open(dir, &clock, false);
        fill(&engine);
        engine.snapshot_queues().expect("snapshot");
        engine.queue_index_dump()
    };
    let files = snapshots(dir);
    assert_eq!(files.len(), 1, "one snapshot: {files:?}");
    let path = files[0].clone();
    let good = std::fs::read(&path).expect("read snapshot");
    {
        let engine = open(dir, &clock, false);
        let recovery = engine.queue_index_recovery();
        assert_eq!(recovery.snapshot.as_ref().map(|s| &s.0), Some(&path), "the good snapshot loads");
        assert_eq!(recovery.replayed, 0, "nothing follows it");
        assert_eq!(assert_index_is_replay(&engine, "good"), reference);
    }
    let fix_header = |bytes: &mut Vec<u8>| {
        let crc = crc32fast::hash(&bytes[0..44]);
        bytes[44..48].copy_from_slice(&crc.to_le_bytes());
    };
    let mut damages: Vec<(String, Vec<u8>, PathBuf)> = Vec::new();
    for at in [3, 20, 48, 60, good.len() / 2, good.len() - 10, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x10;
        damages.push((format!("bit flipped at {at}"), bytes, path.clone()));
    }
    for len in [good.len() - 1, good.len() - 4, good.len() / 2, 47, 0] {
        damages.push((format!("cut to {len} bytes"), good[..len].to_vec(), path.clone()));
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    damages.push(("8 bytes after its end".into(), longer, path.clone()));
    let mut version = good.clone();
    version[8] = 2;
    fix_header(&mut version);
    damages.push(("version 2".into(), version, path.clone()));
    // Its position and cuts beyond the log's end (a snapshot of another log, or of a log that
    // lost its tail): renamed to match, so only the position can tell.
    let mut beyond = good.clone();
    let position = u64::from_le_bytes(good[16..24].try_into().expect("8 bytes")) + 1000;
    beyond[16..24].copy_from_slice(&position.to_le_bytes());
    beyond[32..40].copy_from_slice(&(position + 1).to_le_bytes());
    fix_header(&mut beyond);
    damages.push(("position beyond the log".into(), beyond, path.with_file_name(format!("{position:020}.snap"))));
    for (what, bytes, at) in damages {
        std::fs::remove_file(&path).expect("remove snapshot");
        std::fs::write(&at, &bytes).expect("write damaged snapshot");
        {
            let engine = open(dir, &clock, false);
            let recovery = engine.queue_index_recovery().clone();
            assert_eq!(recovery.snapshot, None, "{what}: not loaded");
            assert_eq!(recovery.ignored.len(), 1, "{what}: reported: {recovery:?}");
            assert_eq!(recovery.ignored[0].0, at, "{what}: the file is named");
            assert!(recovery.replayed > 0, "{what}: the whole log replayed");
            assert_eq!(assert_index_is_replay(&engine, &what), reference, "{what}");
        }
        std::fs::remove_file(&at).expect("remove damaged snapshot");
        std::fs::write(&path, &good).expect("restore snapshot");
    }
}

/// A newer snapshot that does not check out gives way to an older one that does.
#[test]
fn an_older_snapshot_serves_when_the_newest_is_damaged() {
    let tmp = common::scratch_dir();
    let dir = tmp.path();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir, &clock, false);
    fill(&engine);
    engine.snapshot_queues().expect("snapshot");
    let older = snapshots(dir);
    let kept = std::fs::read(&older[0]).expect("read");
    receive(&engine, "q", 5);
    engine.snapshot_queues().expect("second snapshot");
    let live = engine.queue_index_dump();
    drop(engine);
    let newest = snapshots(dir);
    assert_eq!(newest.len(), 1, "the older snapshot was removed once the newer one was durable");
    std::fs::write(&older[0], kept).expect("put the older one back");
    let mut bytes = std::fs::read(&newest[0]).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&newest[0], bytes).expect("damage");
    let engine = open(dir, &clock, false);
    let recovery = engine.queue_index_recovery().clone();
    assert_eq!(recovery.ignored.len(), 1, "{recovery:?}");
    assert_eq!(recovery.snapshot.as_ref().map(|s| s.0.clone()), Some(older[0].clone()), "{recovery:?}");
    assert!(recovery.replayed > 0, "the receives after the older snapshot are its tail");
    assert_eq!(assert_index_is_replay(&engine, "older snapshot"), live);
}

#[test]
fn queues_and_topics_created_or_deleted_after_the_snapshot_come_out_right() {
    let tmp = common::scratch_dir();
    let dir = tmp.path();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir, &clock, false);
    fill(&engine);
    engine.create_queue("gone", QueueConfig::default()).expect("create gone");
    engine.queue("gone").expect("gone").send(b"old incarnation", SendOptions::default()).expect("send");
    engine.create_topic("t.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
    engine.create_topic("old.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
    engine.subscribe("t.fifo", Endpoint::Queue("f.fifo".into()), SubscribeOptions::default()).expect("subscribe");
    let publish = |engine: &Engine, topic: &str, body: &str, dedup: &str| {
        let options = PublishOptions { group: Some("p".into()), dedup_id: Some(dedup.into()), ..Default::default() };
        engine.topic(topic).expect("topic").publish(body.as_bytes(), options).expect("publish")
    };
    assert!(!publish(&engine, "t.fifo", "before", "p1").duplicate);
    publish(&engine, "old.fifo", "before", "o1");
    engine.snapshot_queues().expect("snapshot");
    // After the cut: a queue deleted and one of its name created again (a new id), a queue and
    // a topic created, a topic deleted, more publishes and sends.
    engine.delete_queue("gone").expect("delete gone");
    engine.create_queue("gone", QueueConfig::default()).expect("create gone again");
    engine.queue("gone").expect("gone").send(b"new incarnation", SendOptions::default()).expect("send");
    engine.create_queue("new", QueueConfig::default()).expect("create new");
    engine.queue("new").expect("new").send(b"fresh", SendOptions::default()).expect("send");
    engine.delete_topic("old.fifo").expect("delete topic");
    engine.create_topic("later.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
    assert!(!publish(&engine, "later.fifo", "after", "l1").duplicate);
    assert!(!publish(&engine, "t.fifo", "after", "p2").duplicate);
    engine.delete_queue("q").expect("delete q");
    let live = engine.queue_index_dump();
    drop(engine);
    let engine = open(dir, &clock, false);
    let recovery = engine.queue_index_recovery().clone();
    assert!(recovery.snapshot.is_some() && recovery.ignored.is_empty(), "{recovery:?}");
    assert_eq!(assert_index_is_replay(&engine, "created and deleted"), live);
    assert_eq!(engine.list_queues(), vec!["f.fifo", "gone", "new"]);
    let bodies = |q: &str| -> Vec<String> {
        let peeked = engine.queue(q).expect("queue").peek(100).expect("peek");
        peeked.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
    };
    assert_eq!(bodies("gone"), vec!["new incarnation"], "the deleted queue's message stays deleted");
    assert_eq!(bodies("new"), vec!["fresh"]);
    // The topics' windows: from the snapshot and from the tail.
    assert!(publish(&engine, "t.fifo", "again", "p1").duplicate, "remembered from the snapshot");
    assert!(publish(&engine, "t.fifo", "again", "p2").duplicate, "remembered from the tail");
    assert!(publish(&engine, "later.fifo", "again", "l1").duplicate, "a topic created after the snapshot");
}

/// Retention and compaction never delete the segments a snapshot's replay starts in.
#[test]
fn retention_keeps_the_log_from_the_snapshot_on() {
    let tmp = common::scratch_dir();
    let dir = tmp.path();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir, &clock, false);
    fill(&engine);
    engine.snapshot_queues().expect("snapshot");
    let snapshot = snapshots(dir)[0].clone();
    let at: u64 = snapshot.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("position");
    // Traffic that leaves nothing live, then time past retention and the deduplication window:
    // without the snapshot, maintenance could delete every segment but the last.
    engine.create_queue("busy", QueueConfig::default()).expect("create");
    let busy = engine.queue("busy").expect("busy");
    for i in 0..100 {
        busy.send(format!("busy {i} {}", "x".repeat(100)).as_bytes(), SendOptions::default()).expect("send");
        for m in receive(&engine, "busy", 10) {
            busy.delete(&m.receipt_handle).expect("delete");
        }
    }
    engine.queue("q").expect("q").purge().expect("purge");
    engine.queue("f.fifo").expect("f").purge().expect("purge");
    clock.advance(Duration::from_secs(15 * 24 * 3600));
    engine.run_maintenance().expect("maintenance");
    let first = first_segment(dir);
    assert!(first <= at, "segments from the snapshot's position {at} on are kept (the log starts at {first})");
    let live = engine.queue_index_dump();
    drop((busy, engine));
    let engine = open(dir, &clock, false);
    let recovery = engine.queue_index_recovery().clone();
    assert_eq!(recovery.snapshot.as_ref().map(|s| s.1), Some(at), "the snapshot still loads: {recovery:?}");
    assert_eq!(assert_index_is_replay(&engine, "after retention"), live);
}

/// The base sequence number of the message log's first segment.
fn first_segment(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("queues"))
        .expect("queues directory")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .min()
        .expect("a segment")
}

// ----- crashes while a snapshot is written -----

/// Runs a workload with an earlier snapshot, crashes (or cuts the power) at the `n`th
/// file-system operation of writing a second one, reopens, and checks that every acknowledged
/// send that was not deleted is there and no deleted message is. Returns false once the write
/// got through all its operations.
fn crash_during_snapshot(n: u64, power_cut: bool) -> bool {
    let rig = faults::Rig::new(Durability::Always);
    let mut live = BTreeSet::new();
    {
        let engine = Engine::open(rig.dir(), Options { snapshot_on_close: false, ..rig.options() }).expect("open");
        engine.create_queue("q", QueueConfig::default()).expect("create");
        let q = engine.queue("q").expect("q");
        for i in 0..30 {
            q.send(format!("m{i}").as_bytes(), SendOptions::default()).expect("send");
            live.insert(format!("m{i}"));
            if i == 14 {
                engine.snapshot_queues().expect("first snapshot");
            }
        }
        let options = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
        for m in q.receive(options).expect("receive").iter().step_by(2) {
            q.delete(&m.receipt_handle).expect("delete");
            live.remove(String::from_utf8_lossy(&m.body).as_ref());
        }
        rig.fs.crash_after_ops(n);
        let _ = engine.snapshot_queues();
    }
    let done = !rig.fs.crashed();
    if power_cut {
        rig.fs.power_cut();
    } else {
        rig.fs.clear_faults();
    }
    let context = format!("crash at operation {n} (power cut: {power_cut})");
    let engine = rig.open().unwrap_or_else(|e| panic!("{context}: open: {e}"));
    let recovery = engine.queue_index_recovery().clone();
    assert!(recovery.ignored.is_empty(), "{context}: a snapshot written atomically is whole or absent: {recovery:?}");
    assert!(recovery.snapshot.is_some(), "{context}: the first or the second snapshot loads");
    assert_index_is_replay(&engine, &context);
    let peeked = engine.queue("q").expect("q").peek(100).expect("peek");
    let got: BTreeSet<String> = peeked.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert_eq!(got, live, "{context}: acknowledged sends kept, acknowledged deletes not revived");
    !done
}

#[test]
fn a_crash_or_power_cut_at_any_operation_of_a_snapshot_write_loses_nothing() {
    for power_cut in [false, true] {
        let mut n = 0;
        while crash_during_snapshot(n, power_cut) {
            n += 1;
            assert!(n < 200, "a snapshot write takes fewer than 200 operations");
        }
        assert!(n >= 5, "the write was crashed at each of its {n} operations");
    }
}

// ----- random operations -----

#[derive(Debug, Clone)]
enum Op {
    Send { queue: usize, n: usize },
    Receive { queue: usize, max: usize },
    DeleteReceived { pick: usize },
    ChangeVisibility { pick: usize, seconds: u64 },
    Purge { queue: usize },
    Publish { dedup: usize },
    Create { queue: usize },
    Delete { queue: usize },
    Advance { seconds: u64 },
    Snapshot,
    Maintenance,
    Reopen { close_snapshot: bool },
}

const NAMES: [&str; 4] = ["a", "b", "c.fifo", "d.fifo"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4usize, 1..4usize).prop_map(|(queue, n)| Op::Send { queue, n }),
        6 => (0..4usize, 1..5usize).prop_map(|(queue, max)| Op::Receive { queue, max }),
        4 => any::<usize>().prop_map(|pick| Op::DeleteReceived { pick }),
        2 => (any::<usize>(), 0..60u64).prop_map(|(pick, seconds)| Op::ChangeVisibility { pick, seconds }),
        1 => (0..4usize).prop_map(|queue| Op::Purge { queue }),
        3 => (0..3usize).prop_map(|dedup| Op::Publish { dedup }),
        1 => (0..4usize).prop_map(|queue| Op::Create { queue }),
        1 => (0..4usize).prop_map(|queue| Op::Delete { queue }),
        3 => prop_oneof![Just(5u64), Just(31), Just(70), Just(301)].prop_map(|seconds| Op::Advance { seconds }),
        3 => Just(Op::Snapshot),
        2 => Just(Op::Maintenance),
        3 => any::<bool>().prop_map(|close_snapshot| Op::Reopen { close_snapshot }),
    ]
}

struct Run {
    tmp: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Option<Engine>,
    close_snapshot: bool,
    handles: Vec<(usize, String)>,
    counter: u64,
}

impl Run {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open")
    }

    fn setup(&mut self) {
        for q in 0..NAMES.len() {
            self.create(q);
        }
        let engine = self.engine();
        engine.create_topic("t.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
        engine.subscribe("t.fifo", Endpoint::Queue("c.fifo".into()), SubscribeOptions::default()).expect("subscribe");
    }

    fn create(&self, q: usize) {
        let name = NAMES[q];
        let config = if name.ends_with(".fifo") { QueueConfig::fifo() } else { QueueConfig::default() };
        let _ = self.engine().create_queue(name, config);
    }

    fn run(&mut self, op: &Op) {
        let engine = self.engine.as_ref().expect("open");
        match *op {
            Op::Send { queue, n } => {
                let Ok(q) = engine.queue(NAMES[queue]) else { return };
                for _ in 0..n {
                    self.counter += 1;
                    let c = self.counter;
                    let options = if NAMES[queue].ends_with(".fifo") {
                        fifo_send(&format!("g{}", c % 2), &format!("d{}", c % 5))
                    } else {
                        SendOptions::default()
                    };
                    q.send(format!("m{c}").as_bytes(), options).expect("send");
                }
            }
            Op::Receive { queue, max } => {
                if engine.queue(NAMES[queue]).is_ok() {
                    let got = receive(engine, NAMES[queue], max);
                    self.handles.extend(got.into_iter().map(|m| (queue, m.receipt_handle)));
                }
            }
            Op::DeleteReceived { pick } => {
                if let Some((queue, handle)) =
                    (!self.handles.is_empty()).then(|| &self.handles[pick % self.handles.len()])
                {
                    if let Ok(q) = engine.queue(NAMES[*queue]) {
                        let _ = q.delete(handle);
                    }
                }
            }
            Op::ChangeVisibility { pick, seconds } => {
                if let Some((queue, handle)) =
                    (!self.handles.is_empty()).then(|| &self.handles[pick % self.handles.len()])
                {
                    if let Ok(q) = engine.queue(NAMES[*queue]) {
                        let _ = q.change_visibility(handle, Duration::from_secs(seconds));
                    }
                }
            }
            Op::Purge { queue } => {
                if let Ok(q) = engine.queue(NAMES[queue]) {
                    let _ = q.purge();
                }
            }
            Op::Publish { dedup } => {
                self.counter += 1;
                let options = PublishOptions {
                    group: Some("p".into()),
                    dedup_id: Some(format!("p{dedup}")),
                    ..Default::default()
                };
                engine
                    .topic("t.fifo")
                    .expect("topic")
                    .publish(format!("p{}", self.counter).as_bytes(), options)
                    .expect("publish");
            }
            Op::Create { queue } => {
                self.create(queue);
                if queue == 2 {
                    let _ = engine.subscribe("t.fifo", Endpoint::Queue("c.fifo".into()), SubscribeOptions::default());
                }
            }
            Op::Delete { queue } => {
                let _ = engine.delete_queue(NAMES[queue]);
            }
            Op::Advance { seconds } => self.clock.advance(Duration::from_secs(seconds)),
            Op::Snapshot => engine.snapshot_queues().expect("snapshot"),
            Op::Maintenance => engine.run_maintenance().expect("maintenance"),
            Op::Reopen { close_snapshot } => {
                let live = engine.queue_index_dump();
                self.engine = None;
                self.close_snapshot = close_snapshot;
                let engine = open(self.tmp.path(), &self.clock, self.close_snapshot);
                let dump = assert_index_is_replay(&engine, &format!("{op:?}"));
                assert_eq!(dump, live, "the index after open is the one before the close");
                self.engine = Some(engine);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operations over two standard and two FIFO queues (one subscribed to a FIFO
    /// topic), queues deleted and created again, snapshots, maintenance and reopens with and
    /// without a snapshot at close: every open builds the index a full replay builds and the
    /// one the engine had before it closed.
    #[test]
    fn every_open_from_a_snapshot_and_its_tail_is_a_full_replay(ops in prop::collection::vec(op(), 20..60)) {
        let tmp = common::scratch_dir();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = open(tmp.path(), &clock, true);
        let mut run = Run { tmp, clock, engine: Some(engine), close_snapshot: true, handles: Vec::new(), counter: 0 };
        run.setup();
        for op in &ops {
            run.run(op);
        }
        run.run(&Op::Reopen { close_snapshot: true });
    }
}

/// A broker queue's state (held deliveries, a release to the head, its length limit and
/// message TTL) comes out of a snapshot as a full replay builds it: a delivery held when the
/// snapshot was cut, and one held after it, are both visible again after the open.
#[test]
fn broker_held_deliveries_and_releases_come_out_of_a_snapshot_as_from_a_replay() {
    use weir::queue::store::BrokerMessage;
    use weir::queue::BrokerOptions;
    let tmp = common::scratch_dir();
    let dir = tmp.path();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir, &clock, false);
    let broker =
        BrokerOptions { message_ttl: Some(Duration::from_secs(600)), max_length: Some(3), ..BrokerOptions::default() };
    let config = QueueConfig { broker: Some(broker), ..QueueConfig::default() };
    engine.create_queue("amqp.jobs", config).expect("a broker queue");
    let queue = engine.queue("amqp.jobs").expect("queue");
    let send = |body: &str| {
        let message = BrokerMessage { body: bytes::Bytes::from(body.to_string()), attributes: Default::default() };
        assert!(queue.send_broker(message).expect("send"));
    };
    for body in ["m1", "m2", "m3", "m4", "m5"] {
        send(body);
    }
    // The length limit dropped m1 and m2; m3 and m4 are held across the cut.
    let held = queue.receive_held(2).expect("held");
    assert_eq!(held.iter().map(|m| m.body.as_ref()).collect::<Vec<_>>(), vec![b"m3".as_ref(), b"m4"]);
    engine.snapshot_queues().expect("snapshot");
    queue.ack(&[held[1].receipt_handle.as_str()]).expect("ack")[0].as_ref().expect("m4 acknowledged");
    clock.advance(Duration::from_secs(1));
    send("m6");
    let later = queue.receive_held(1).expect("held after the cut");
    assert_eq!(later[0].body.as_ref(), b"m5");
    queue.release_to_head(&[later[0].receipt_handle.as_str()]).expect("release")[0].as_ref().expect("released");
    let again = queue.receive_held(1).expect("the released message first");
    assert_eq!(again[0].body.as_ref(), b"m5", "a release puts the message at the head");
    drop(queue);
    drop(engine);
    let engine = open(dir, &clock, true);
    let recovery = engine.queue_index_recovery().clone();
    assert!(recovery.snapshot.is_some() && recovery.ignored.is_empty(), "{recovery:?}");
    assert_index_is_replay(&engine, "broker queue from a snapshot");
    // Nothing is held by anyone after an open: m3 (held in the snapshot), m5 (held after it)
    // and m6 are all ready; m4 stays acknowledged.
    let queue = engine.queue("amqp.jobs").expect("queue");
    assert_eq!(queue.ready_and_in_flight(), (3, 0));
    let held = queue.receive_held(10).expect("held");
    let mut bodies: Vec<&[u8]> = held.iter().map(|m| m.body.as_ref()).collect();
    bodies.sort();
    assert_eq!(bodies, vec![b"m3".as_ref(), b"m5", b"m6"]);
    // Closed with a snapshot while they are held: the next open makes them ready again too.
    drop(queue);
    drop(engine);
    let engine = open(dir, &clock, false);
    assert!(engine.queue_index_recovery().snapshot.is_some(), "the snapshot written at close");
    assert_index_is_replay(&engine, "held at the close's snapshot");
    assert_eq!(engine.queue("amqp.jobs").expect("queue").ready_and_in_flight(), (3, 0));
}
