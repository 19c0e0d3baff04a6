//! Interleavings of concurrent operations, replayed deterministically: a pause point inside
//! one operation (see `crate::queue::pause`) runs the other operation at the moment that
//! matters, instead of a stress test hoping to hit it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::clock::ManualClock;
use crate::format::Compression;
use crate::queue::pause::Pause;
use crate::queue::store::QueueStore;
use crate::queue::{QueueConfig, ReceiveOptions, RedrivePolicy, SendOptions};
use crate::topic::{Endpoint, PublishOptions, SubscribeOptions, Topic, TopicConfig};
use crate::{Engine, Options};

/// An engine on a scratch directory with a manual clock, no maintenance thread and small
/// segments (compaction has something to do after a few dozen messages).
fn engine() -> (Engine, Arc<ManualClock>, tempfile::TempDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    (Engine::open(dir.path(), options(&clock)).expect("open"), clock, dir)
}

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        background: false,
        segment_bytes: 4096,
        compression: Compression::None,
        ..Options::default()
    }
}

/// Runs `f` with the store the `nth` time (1-based) `point` is passed, and never again.
fn at_pass(engine: &Engine, point: Pause, nth: u64, f: impl Fn(&QueueStore) + Send + Sync + 'static) {
    let store: Weak<QueueStore> = Arc::downgrade(&engine.inner.queues);
    let passes = AtomicU64::new(0);
    engine.inner.queues.pauses.set(move |at| {
        if at == point && passes.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            if let Some(store) = store.upgrade() {
                f(&store);
            }
        }
    });
}

fn bodies(engine: &Engine, queue: &str) -> Vec<String> {
    let peeked = engine.queue(queue).and_then(|q| q.peek(1000)).expect("peek");
    peeked.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// Fills the message log with messages of `queue` that are then deleted: garbage that makes
/// the oldest segments mostly dead, so compaction moves whatever still lives in them.
fn garbage(engine: &Engine, queue: &str, n: usize) {
    engine.create_queue(queue, QueueConfig::default()).expect("create queue");
    let q = engine.queue(queue).expect("queue");
    for i in 0..n {
        q.send(format!("garbage {i} {}", "g".repeat(80)).as_bytes(), SendOptions::default()).expect("send");
    }
    loop {
        let got = q.receive(ReceiveOptions { max: 10, ..Default::default() }).expect("receive");
        if got.is_empty() {
            return;
        }
        for m in got {
            q.delete(&m.receipt_handle).expect("delete");
        }
    }
}

/// Compaction moves a dead-letter queue's messages (and deletes the segment they were in)
/// while a redrive of that queue is under way: the redrive reads each body where it is now and
/// moves every message, with no false `Corrupt`.
#[test]
fn a_redrive_moves_messages_that_compaction_moves_under_it() {
    let (engine, clock, _dir) = engine();
    for q in ["dlq", "target"] {
        engine.create_queue(q, QueueConfig::default()).expect("create queue");
    }
    let dlq = engine.queue("dlq").expect("dlq");
    for i in 0..3 {
        dlq.send(format!("dead {i}").as_bytes(), SendOptions::default()).expect("send");
    }
    garbage(&engine, "filler", 120);
    let log = engine.inner.queues.log();
    assert!(log.segment_infos().len() >= 3, "compaction needs three segments");
    // Past the deduplication window, compaction may delete what it moved the messages from.
    clock.advance(Duration::from_secs(6 * 60));
    at_pass(&engine, Pause::RedriveRead, 1, |store| {
        store.maintain().expect("compaction");
    });
    let first_before = log.first_seq();
    let result = engine.redrive("dlq", Some("target")).expect("redrive");
    assert!(log.first_seq() > first_before, "compaction ran and dropped the oldest segment");
    assert_eq!((result.moved, result.skipped), (3, 0));
    assert_eq!(bodies(&engine, "target"), vec!["dead 0", "dead 1", "dead 2"]);
    assert!(bodies(&engine, "dlq").is_empty());
}

/// A redrive that fails after moving some messages (here: its dead-letter queue is deleted
/// under it) returns only once those moves are durable: a message shown in its target queue
/// must not fall back after a power cut.
#[test]
fn the_moves_of_a_redrive_that_fails_midway_are_durable_when_it_returns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(crate::log::fault::FaultyFs::new());
    fs.create_durable_dir_all(tmp.path());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let options = Options { vfs: fs.clone(), ..options(&clock) };
    {
        let engine = Engine::open(tmp.path(), options.clone()).expect("open");
        for q in ["dlq", "target"] {
            engine.create_queue(q, QueueConfig::default()).expect("create queue");
        }
        let dlq = engine.queue("dlq").expect("dlq");
        for i in 0..3 {
            dlq.send(format!("dead {i}").as_bytes(), SendOptions::default()).expect("send");
        }
        // As `Engine::delete_queue` does once its catalog record is written.
        at_pass(&engine, Pause::RedriveRead, 2, |store| store.remove_queue("dlq"));
        let failed = engine.redrive("dlq", Some("target")).expect_err("the dead-letter queue went away");
        assert!(matches!(failed, crate::Error::NotFound { .. }), "{failed:?}");
        assert_eq!(bodies(&engine, "target"), vec!["dead 0"], "the first move was made");
        fs.power_cut();
    }
    let engine = Engine::open(tmp.path(), options).expect("reopen");
    assert_eq!(bodies(&engine, "target"), vec!["dead 0"], "the move shown before the failure survived");
    assert_eq!(bodies(&engine, "dlq"), vec!["dead 1", "dead 2"]);
}

/// A receive that would move a message to its dead-letter queue while that queue is being
/// deleted: the message must not go into the deleted queue (and vanish with it). It is
/// delivered as if the queue had no dead-letter queue.
#[test]
fn a_receive_racing_the_deletion_of_its_dead_letter_queue_keeps_the_message() {
    let (engine, _clock, _dir) = engine();
    engine.create_queue("dlq", QueueConfig::default()).expect("create dlq");
    let redrive = Some(RedrivePolicy { dead_letter_queue: "dlq".into(), max_receives: 1 });
    engine.create_queue("work", QueueConfig { redrive, ..QueueConfig::default() }).expect("create queue");
    let work = engine.queue("work").expect("queue");
    work.send(b"precious", SendOptions::default()).expect("send");
    let first = work.receive(ReceiveOptions::default()).expect("receive");
    work.change_visibility(&first[0].receipt_handle, Duration::ZERO).expect("make it visible again");
    // The second receive would move it; the dead-letter queue is deleted as it looks.
    at_pass(&engine, Pause::ReceiveLocks, 1, |store| store.remove_queue("dlq"));
    let second = work.receive(ReceiveOptions::default()).expect("receive");
    let bodies: Vec<&[u8]> = second.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, vec![&b"precious"[..]], "delivered, not moved into a deleted queue");
    assert_eq!(second[0].receive_count, 2);
    work.delete(&second[0].receipt_handle).expect("and its handle works");
}

/// A publish that lands while a subscription with replay is being made: delivered once, live
/// or by the replay, never by both.
#[test]
fn a_publish_during_a_subscribe_with_replay_is_delivered_once() {
    let (engine, _clock, _dir) = engine();
    engine.create_queue("audit", QueueConfig::default()).expect("create queue");
    engine.create_topic("orders", TopicConfig::default()).expect("create topic");
    let topic = engine.topic("orders").expect("topic");
    topic.publish(b"before", PublishOptions::default()).expect("publish");
    let cell = Arc::clone(&topic.cell);
    let store = Arc::downgrade(&engine.inner.queues);
    at_pass(&engine, Pause::SubscribeReplay, 1, move |_| {
        let Some(store) = store.upgrade() else { return };
        let topic = Topic { store, cell: Arc::clone(&cell) };
        topic.publish(b"during", PublishOptions::default()).expect("publish during the subscribe");
    });
    let options = SubscribeOptions { raw: true, replay_from_ms: Some(0), ..SubscribeOptions::default() };
    engine.subscribe("orders", Endpoint::Queue("audit".into()), options).expect("subscribe");
    topic.publish(b"after", PublishOptions::default()).expect("publish");
    let mut got = bodies(&engine, "audit");
    got.sort();
    assert_eq!(got, vec!["after", "before", "during"], "each publish exactly once");
}

/// A snapshot cut piece by piece while sends, receives, deletes, visibility changes and a
/// purge run between the pieces (on keys of pieces already written and of pieces still to
/// come): the index an open builds from it and the log's tail is the live one, and the one a
/// full replay builds.
#[test]
fn a_snapshot_cut_between_operations_reopens_to_the_live_index() {
    for purge in [false, true] {
        let (engine, clock, dir) = engine();
        engine.create_queue("a", QueueConfig::default()).expect("create a");
        let fifo = QueueConfig { content_based_dedup: true, ..QueueConfig::fifo() };
        engine.create_queue("b.fifo", fifo).expect("create b");
        let a = engine.queue("a").expect("a");
        let b = engine.queue("b.fifo").expect("b");
        for i in 0..30 {
            a.send(format!("a{i}").as_bytes(), SendOptions::default()).expect("send a");
            let group = SendOptions { group: Some(format!("g{}", i % 3)), ..SendOptions::default() };
            if i < 12 {
                b.send(format!("b{i}").as_bytes(), group).expect("send b");
            }
        }
        engine.inner.queues.snapshot.piece_messages.store(4, Ordering::Relaxed);
        let passes = AtomicU64::new(0);
        let store = Arc::downgrade(&engine.inner.queues);
        engine.inner.queues.pauses.set(move |at| {
            let (Pause::SnapshotPiece, Some(store)) = (at, store.upgrade()) else { return };
            let (a, b) = (store.cell("a").expect("a"), store.cell("b.fifo").expect("b"));
            let receive = |cell: &QueueStore, q: &crate::queue::store::QueueCell, max| {
                cell.receive(q, &ReceiveOptions { max, wait: Some(Duration::ZERO), ..Default::default() })
                    .expect("receive")
            };
            let entry = |body: String, group: Option<&str>| crate::queue::SendEntry {
                body: body.into_bytes().into(),
                options: SendOptions { group: group.map(str::to_string), ..SendOptions::default() },
            };
            match passes.fetch_add(1, Ordering::SeqCst) % 5 {
                0 => {
                    let got = receive(&store, &a, 3);
                    if let Some(m) = got.first() {
                        store.delete(&a, &[m.receipt_handle.as_str()]).expect("delete");
                    }
                }
                1 => {
                    store.send(&a, &[entry("late a".into(), None), entry("later a".into(), None)]).expect("send");
                    if purge {
                        store.purge(&a).expect("purge");
                    }
                }
                2 => {
                    let got = receive(&store, &b, 2);
                    if let Some(m) = got.last() {
                        store.delete(&b, &[m.receipt_handle.as_str()]).expect("delete");
                    }
                }
                3 => {
                    let got = receive(&store, &a, 2);
                    if let Some(m) = got.first() {
                        store.change_visibility(&a, &[(m.receipt_handle.as_str(), Duration::ZERO)]).expect("change");
                    }
                }
                _ => {
                    let sends = [entry("b late".into(), Some("g1")), entry("b late".into(), Some("g1"))];
                    store.send(&b, &sends).expect("send b");
                }
            }
        });
        engine.snapshot_queues().expect("snapshot");
        engine.inner.queues.pauses.set(|_| {});
        let live = engine.queue_index_dump();
        let options = Options { snapshot_on_close: false, ..options(&clock) };
        drop((a, b, engine));
        let engine = Engine::open(dir.path(), options).expect("reopen");
        let recovery = engine.queue_index_recovery().clone();
        assert!(recovery.snapshot.is_some() && recovery.replayed > 0, "{recovery:?}");
        let reopened = engine.queue_index_dump();
        assert_eq!(reopened, engine.replayed_queue_index_dump().expect("replay"), "purge: {purge}");
        assert_eq!(reopened, live, "purge: {purge}");
    }
}
