//! Two SQS rules about repeating a call: a FIFO receive repeated with the same receive request
//! attempt id returns what the first one did (while it is still true), and a queue can be
//! purged once a minute.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir::queue::{QueueConfig, ReceiveOptions, ReceivedMessage, SendOptions};
use weir::{Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), 1 << 20)).expect("open")
}

fn receive(engine: &Engine, queue: &str, attempt: Option<&str>, max: usize) -> Vec<ReceivedMessage> {
    let options = ReceiveOptions {
        max,
        wait: Some(Duration::ZERO),
        attempt_id: attempt.map(str::to_string),
        ..ReceiveOptions::default()
    };
    engine.queue(queue).expect("queue").receive(options).expect("receive")
}

fn send_fifo(engine: &Engine, body: &str, group: &str) {
    let options = SendOptions { group: Some(group.into()), dedup_id: Some(body.into()), ..Default::default() };
    engine.queue("q.fifo").expect("queue").send(body.as_bytes(), options).expect("send");
}

fn handles(got: &[ReceivedMessage]) -> Vec<String> {
    got.iter().map(|m| m.receipt_handle.clone()).collect()
}

#[test]
fn a_repeated_attempt_returns_the_same_messages_and_handles_and_restarts_their_visibility() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q.fifo", QueueConfig::fifo()).expect("create");
    for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
        send_fifo(&engine, body, group);
    }
    let first = receive(&engine, "q.fifo", Some("attempt-1"), 2);
    assert_eq!(first.len(), 2);
    clock.advance(Duration::from_secs(20));
    let again = receive(&engine, "q.fifo", Some("attempt-1"), 2);
    assert_eq!(handles(&again), handles(&first), "same messages, same receipt handles");
    assert_eq!(again[0].receive_count, first[0].receive_count, "not received again");
    // The visibility timeout (30 s) started again at the retry: still hidden 29 s later.
    clock.advance(Duration::from_secs(29));
    let other = receive(&engine, "q.fifo", None, 10);
    assert!(other.iter().all(|m| !handles(&first).contains(&m.receipt_handle)), "the retry's messages stay hidden");
    // Back at 50 s; a different attempt id is a new receive, with new handles: the first
    // attempt's handles are stale now, and a retry of it receives anew.
    clock.advance(Duration::from_secs(2));
    let fresh = receive(&engine, "q.fifo", Some("attempt-2"), 2);
    assert_eq!(
        fresh.iter().map(|m| &m.message_id).collect::<Vec<_>>(),
        first.iter().map(|m| &m.message_id).collect::<Vec<_>>()
    );
    assert!(handles(&fresh).iter().all(|h| !handles(&first).contains(h)), "new receive, new handles");
    let q = engine.queue("q.fifo").expect("queue");
    assert!(matches!(q.delete(&first[0].receipt_handle), Err(Error::InvalidReceiptHandle(_))));
    let retried = receive(&engine, "q.fifo", Some("attempt-1"), 2);
    assert!(handles(&retried).iter().all(|h| !handles(&first).contains(h)));
    q.delete(&fresh[0].receipt_handle).expect("attempt-2's handles work");
}

#[test]
fn an_attempt_whose_messages_changed_receives_anew() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q.fifo", QueueConfig::fifo()).expect("create");
    let q = engine.queue("q.fifo").expect("queue");
    for (body, group) in [("a1", "a"), ("b1", "b"), ("c1", "c"), ("d1", "d"), ("e1", "e")] {
        send_fifo(&engine, body, group);
    }
    // Deleted: the retry is a new receive, which finds what is left.
    let first = receive(&engine, "q.fifo", Some("x"), 1);
    q.delete(&first[0].receipt_handle).expect("delete");
    let again = receive(&engine, "q.fifo", Some("x"), 1);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].message_id, first[0].message_id);
    // Visibility changed: likewise.
    q.change_visibility(&again[0].receipt_handle, Duration::from_secs(100)).expect("change");
    let third = receive(&engine, "q.fifo", Some("x"), 1);
    assert!(third.iter().all(|m| m.message_id != again[0].message_id), "{third:?}");
    // Expired visibility, received by someone else meanwhile: stale, received anew.
    let mine = receive(&engine, "q.fifo", Some("y"), 1);
    assert_eq!(mine.len(), 1, "d1 is there to receive");
    let mine_handles = handles(&mine);
    clock.advance(Duration::from_secs(31));
    let theirs = receive(&engine, "q.fifo", None, 10);
    assert!(theirs.iter().any(|m| m.message_id == mine[0].message_id), "it came back and went to another");
    let retried = receive(&engine, "q.fifo", Some("y"), 1);
    assert!(handles(&retried).iter().all(|h| !mine_handles.contains(h)));
}

#[test]
fn an_attempt_is_forgotten_after_five_minutes() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q.fifo", QueueConfig::fifo()).expect("create");
    send_fifo(&engine, "a1", "a");
    let long = |attempt: &str| ReceiveOptions {
        max: 10,
        wait: Some(Duration::ZERO),
        visibility_timeout: Some(Duration::from_secs(600)),
        attempt_id: Some(attempt.to_string()),
    };
    let q = engine.queue("q.fifo").expect("queue");
    let first = q.receive(long("z")).expect("receive");
    assert_eq!(first.len(), 1);
    clock.advance(Duration::from_secs(299));
    assert_eq!(handles(&q.receive(long("z")).expect("retry")), handles(&first), "remembered for five minutes");
    clock.advance(Duration::from_secs(1));
    // Still in flight (600 s from the retry), but the attempt is gone: a new receive, empty.
    assert!(q.receive(long("z")).expect("after five minutes").is_empty());
}

#[test]
fn attempt_ids_are_checked_and_standard_queues_ignore_them() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("plain", QueueConfig::default()).expect("create");
    let q = engine.queue("plain").expect("queue");
    for i in 0..3 {
        q.send(format!("m{i}").as_bytes(), SendOptions::default()).expect("send");
    }
    let first = receive(&engine, "plain", Some("same"), 1);
    let second = receive(&engine, "plain", Some("same"), 1);
    assert_ne!(first[0].message_id, second[0].message_id, "no retry semantics on a standard queue");
    for bad in ["", "has space", &"x".repeat(129)] {
        let options = ReceiveOptions { attempt_id: Some(bad.to_string()), ..ReceiveOptions::default() };
        assert!(matches!(q.receive(options), Err(Error::InvalidArgument(_))), "{bad:?} accepted");
    }
}

#[test]
fn a_queue_is_purged_once_a_minute_even_across_a_reopen() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("q", QueueConfig::default()).expect("create");
        engine.create_queue("other", QueueConfig::default()).expect("create other");
        let q = engine.queue("q").expect("queue");
        q.send(b"m", SendOptions::default()).expect("send");
        q.purge().expect("first purge");
        clock.advance(Duration::from_secs(10));
        q.send(b"kept", SendOptions::default()).expect("send");
        match q.purge() {
            Err(Error::PurgeInProgress { queue, retry_after_ms }) => {
                assert_eq!((queue.as_str(), retry_after_ms), ("q", 50_000));
            }
            other => panic!("a second purge within a minute: {other:?}"),
        }
        assert_eq!(q.attributes().approximate_visible, 1, "the refused purge deleted nothing");
        engine.queue("other").expect("other").purge().expect("another queue has its own minute");
    }
    clock.advance(Duration::from_secs(20));
    let engine = open(dir.path(), &clock);
    let q = engine.queue("q").expect("queue");
    assert!(matches!(q.purge(), Err(Error::PurgeInProgress { retry_after_ms: 30_000, .. })), "remembered");
    clock.advance(Duration::from_secs(30));
    q.purge().expect("a minute after the first");
    assert_eq!(q.attributes().approximate_visible, 0);
    // A clock that stepped back before the last purge does not block purges for that long.
    clock.set_ms(T0);
    q.purge().expect("after the clock stepped back");
}
