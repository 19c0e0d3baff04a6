//! Queue behaviour, one SQS rule per test, under a manual clock.

use std::sync::Arc;
use std::time::Duration;

use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions, RedrivePolicy, SendEntry, SendOptions};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    let options = Options { clock: clock.clone(), background: false, ..Options::default() };
    Engine::open(dir, options).expect("open engine")
}

fn recv(q: &weir::queue::Queue, max: usize) -> Vec<weir::queue::ReceivedMessage> {
    q.receive(ReceiveOptions { max, wait: Some(Duration::ZERO), ..ReceiveOptions::default() }).expect("receive")
}

fn fifo_send(q: &weir::queue::Queue, body: &str, group: &str, dedup: &str) -> weir::queue::SendResult {
    let options = SendOptions { group: Some(group.into()), dedup_id: Some(dedup.into()), ..Default::default() };
    q.send(body.as_bytes(), options).expect("fifo send")
}

#[test]
fn received_message_is_invisible_until_its_visibility_timeout_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"hello", SendOptions::default()).expect("send");
    let first = recv(&q, 10);
    assert_eq!(first.len(), 1);
    assert_eq!(&first[0].body[..], b"hello");
    assert_eq!(first[0].receive_count, 1);
    assert!(recv(&q, 10).is_empty(), "in flight");
    clock.advance(Duration::from_secs(29));
    assert!(recv(&q, 10).is_empty(), "still in flight at 29 s");
    clock.advance(Duration::from_secs(1));
    let second = recv(&q, 10);
    assert_eq!(second.len(), 1, "visible again at 30 s");
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].first_receive_ms, first[0].first_receive_ms);
}

#[test]
fn receipt_handle_expires_on_redelivery_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    engine.create_queue("other", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"m", SendOptions::default()).expect("send");
    let old = recv(&q, 1).remove(0).receipt_handle;
    clock.advance(Duration::from_secs(31));
    let new = recv(&q, 1).remove(0).receipt_handle;
    assert!(matches!(q.delete(&old), Err(Error::InvalidReceiptHandle(m)) if m.contains("stale")));
    let other = engine.queue("other").expect("other");
    assert!(matches!(other.delete(&new), Err(Error::InvalidReceiptHandle(m)) if m.contains("another queue")));
    assert!(matches!(q.delete("deadbeef"), Err(Error::InvalidReceiptHandle(_))));
    let mut forged = new.clone().into_bytes();
    forged[20] = if forged[20] == b'a' { b'b' } else { b'a' };
    assert!(q.delete(std::str::from_utf8(&forged).expect("ascii")).is_err());
    q.delete(&new).expect("current handle deletes");
    assert!(matches!(q.delete(&new), Err(Error::InvalidReceiptHandle(m)) if m.contains("gone")));
    clock.advance(Duration::from_secs(60));
    assert!(recv(&q, 10).is_empty(), "deleted message never comes back");
}

#[test]
fn state_survives_reopen_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let handle;
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("q", QueueConfig::default()).expect("create");
        let q = engine.queue("q").expect("queue");
        for i in 0..3 {
            q.send(format!("m{i}").as_bytes(), SendOptions::default()).expect("send");
        }
        let got = recv(&q, 2);
        assert_eq!(got.len(), 2);
        q.delete(&got[0].receipt_handle).expect("delete");
        handle = got[1].receipt_handle.clone();
    }
    let engine = open(dir.path(), &clock);
    let q = engine.queue("q").expect("queue after reopen");
    let attrs = q.attributes();
    assert_eq!((attrs.approximate_visible, attrs.approximate_in_flight), (1, 1));
    let got = recv(&q, 10);
    assert_eq!(got.len(), 1, "only the never-received message is visible");
    assert_eq!(&got[0].body[..], b"m2");
    q.delete(&handle).expect("a handle from before the restart still works");
    clock.advance(Duration::from_secs(31));
    let got = recv(&q, 10);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"m2");
    assert_eq!(got[0].receive_count, 2, "receive count is durable");
}

#[test]
fn delay_holds_a_message_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"later", SendOptions { delay: Some(Duration::from_secs(10)), ..Default::default() }).expect("send");
    assert!(recv(&q, 10).is_empty());
    assert_eq!(q.attributes().approximate_delayed, 1);
    clock.advance(Duration::from_secs(10));
    assert_eq!(recv(&q, 10).len(), 1);
    let too_long = SendOptions { delay: Some(Duration::from_secs(901)), ..Default::default() };
    assert!(matches!(q.send(b"x", too_long), Err(Error::InvalidArgument(_))));
}

#[test]
fn expired_messages_are_never_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let config = QueueConfig { retention: Duration::from_secs(60), ..QueueConfig::default() };
    engine.create_queue("q", config).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"old", SendOptions::default()).expect("send");
    clock.advance(Duration::from_secs(60));
    assert!(recv(&q, 10).is_empty());
}

#[test]
fn message_moves_to_dead_letter_queue_after_max_receives_and_redrives_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("dlq", QueueConfig::default()).expect("dlq");
    let redrive = RedrivePolicy { dead_letter_queue: "dlq".into(), max_receives: 2 };
    engine.create_queue("q", QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("q");
    let q = engine.queue("q").expect("q");
    let dlq = engine.queue("dlq").expect("dlq");
    let sent = q.send(b"poison", SendOptions::default()).expect("send");
    for _ in 0..2 {
        assert_eq!(recv(&q, 1).len(), 1);
        clock.advance(Duration::from_secs(30));
    }
    assert!(recv(&q, 1).is_empty(), "third receive moves it instead");
    let dead = recv(&dlq, 10);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, sent.message_id);
    assert_eq!(q.attributes().approximate_visible + q.attributes().approximate_in_flight, 0);
    dlq.change_visibility(&dead[0].receipt_handle, Duration::ZERO).expect("release");
    let r = engine.redrive("dlq", None).expect("redrive");
    assert_eq!((r.moved, r.skipped), (1, 0));
    drop(q);
    drop(dlq);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let back = recv(&engine.queue("q").expect("q"), 10);
    assert_eq!(back.len(), 1, "redriven message is back in its source queue after reopen");
    assert_eq!(&back[0].body[..], b"poison");
    assert!(recv(&engine.queue("dlq").expect("dlq"), 10).is_empty(), "and not in the DLQ");
}

#[test]
fn fifo_group_is_blocked_while_a_message_is_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("create");
    let q = engine.queue("f.fifo").expect("queue");
    let a1 = fifo_send(&q, "a1", "A", "1");
    fifo_send(&q, "a2", "A", "2");
    fifo_send(&q, "b1", "B", "3");
    assert!(a1.sequence.is_some());
    let got = recv(&q, 1);
    assert_eq!(&got[0].body[..], b"a1");
    let got2 = recv(&q, 10);
    let bodies: Vec<&[u8]> = got2.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, vec![&b"b1"[..]], "group A is blocked while a1 is in flight");
    q.delete(&got[0].receipt_handle).expect("delete a1");
    let got3 = recv(&q, 10);
    assert_eq!(&got3[0].body[..], b"a2");
}

#[test]
fn fifo_deduplicates_within_five_minutes_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let first;
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("f.fifo", QueueConfig { content_based_dedup: true, ..QueueConfig::fifo() }).expect("c");
        let q = engine.queue("f.fifo").expect("queue");
        first = fifo_send(&q, "x", "g", "same");
        let dup = fifo_send(&q, "y", "g", "same");
        assert_eq!(dup.message_id, first.message_id);
        assert!(dup.duplicate);
        let content = SendOptions { group: Some("g".into()), ..Default::default() };
        let c1 = q.send(b"body", content.clone()).expect("content 1");
        let c2 = q.send(b"body", content).expect("content 2");
        assert_eq!(c1.message_id, c2.message_id);
    }
    let engine = open(dir.path(), &clock);
    let q = engine.queue("f.fifo").expect("queue");
    clock.advance(Duration::from_secs(299));
    assert_eq!(fifo_send(&q, "z", "g", "same").message_id, first.message_id, "window survives restart");
    clock.advance(Duration::from_secs(1));
    assert_ne!(fifo_send(&q, "z", "g", "same").message_id, first.message_id, "window is five minutes");
}

#[test]
fn batch_entries_succeed_or_fail_on_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let config = QueueConfig { max_message_bytes: 1024, ..QueueConfig::default() };
    engine.create_queue("q", config).expect("create");
    let q = engine.queue("q").expect("queue");
    let entry = |body: Vec<u8>| SendEntry { body: body.into(), options: SendOptions::default() };
    let results = q.send_batch(&[entry(b"ok".to_vec()), entry(vec![b'x'; 2000]), entry(Vec::new())]).expect("batch");
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::TooLarge { .. })));
    assert!(matches!(results[2], Err(Error::InvalidArgument(_))));
    let eleven: Vec<SendEntry> = (0..11).map(|_| entry(b"m".to_vec())).collect();
    assert!(q.send_batch(&eleven).is_err());
    let got = recv(&q, 10);
    assert_eq!(got.len(), 1);
    let handles: Vec<&str> = vec![got[0].receipt_handle.as_str(), "nonsense"];
    let deleted = q.delete_batch(&handles).expect("delete batch");
    assert!(deleted[0].is_ok() && deleted[1].is_err());
}

#[test]
fn attributes_out_of_range_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let bad = [
        QueueConfig { visibility_timeout: Duration::from_secs(12 * 3600 + 1), ..QueueConfig::default() },
        QueueConfig { delay: Duration::from_secs(901), ..QueueConfig::default() },
        QueueConfig { retention: Duration::from_secs(59), ..QueueConfig::default() },
        QueueConfig { retention: Duration::from_secs(14 * 86400 + 1), ..QueueConfig::default() },
        QueueConfig { max_message_bytes: (16 << 20) + 1, ..QueueConfig::default() },
        QueueConfig { receive_wait: Duration::from_secs(21), ..QueueConfig::default() },
        QueueConfig {
            redrive: Some(RedrivePolicy { dead_letter_queue: "nope".into(), max_receives: 5 }),
            ..QueueConfig::default()
        },
    ];
    for config in bad {
        let err = engine.create_queue("q", config.clone()).expect_err("out of range accepted");
        assert!(!err.to_string().is_empty());
    }
    assert!(engine.list_queues().is_empty(), "nothing was created");
    for name in ["", "a/b", "..", "a.fifo", &"x".repeat(81), "a\0b"] {
        assert!(
            matches!(engine.create_queue(name, QueueConfig::default()), Err(Error::InvalidName { .. })),
            "{name:?}"
        );
    }
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let attrs = [("n".to_string(), AttributeValue::Number("1e300".into()))].into_iter().collect();
    assert!(q.send(b"x", SendOptions { attributes: attrs, ..Default::default() }).is_err());
}

#[test]
fn long_poll_returns_as_soon_as_a_message_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(dir.path(), Options::default()).expect("open"));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let sender = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            engine.queue("q").expect("q").send(b"wake", SendOptions::default()).expect("send");
        })
    };
    let started = std::time::Instant::now();
    let q = engine.queue("q").expect("q");
    let got = q
        .receive(ReceiveOptions { max: 1, wait: Some(Duration::from_secs(10)), ..ReceiveOptions::default() })
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "returned when the message came, not at the end of the wait");
    sender.join().expect("sender");
}

#[test]
fn purge_removes_every_message_and_invalidates_handles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    for _ in 0..5 {
        q.send(b"m", SendOptions::default()).expect("send");
    }
    let h = recv(&q, 1).remove(0).receipt_handle;
    q.purge().expect("purge");
    assert!(q.delete(&h).is_err());
    q.send(b"after", SendOptions::default()).expect("send");
    drop(q);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let got = recv(&engine.queue("q").expect("q"), 10);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"after");
}

#[test]
fn messages_compaction_moved_come_back_in_send_order_after_reopen() {
    // Small segments, so maintenance copies the survivors of the oldest segment to the head of
    // the log and deletes it: on replay those copies (with their old keys) come after newer
    // messages, and the index must still list everything in send order.
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options { clock: clock.clone(), background: false, segment_bytes: 4096, ..Options::default() };
    let engine = Engine::open(dir.path(), options.clone()).expect("open engine");
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let body = |i: usize| format!("message {i:04} {}", "x".repeat(200));
    for i in 0..200 {
        q.send(body(i).as_bytes(), SendOptions::default()).expect("send");
    }
    // Delete all but every fifth of the first 100; the rest stay in flight until they time out.
    let mut kept = Vec::new();
    for _ in 0..10 {
        for m in recv(&q, 10) {
            let i: usize = m.body[8..12].iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
            if i.is_multiple_of(5) {
                kept.push(i);
            } else {
                q.delete(&m.receipt_handle).expect("delete");
            }
        }
    }
    assert_eq!(kept.len(), 20);
    // Past the deduplication window, which otherwise keeps every segment.
    clock.advance(Duration::from_secs(6 * 60));
    for _ in 0..20 {
        engine.run_maintenance().expect("maintenance");
    }
    drop(q);
    drop(engine);
    clock.advance(Duration::from_secs(60));
    let engine = Engine::open(dir.path(), options).expect("reopen");
    let q = engine.queue("q").expect("queue");
    let mut got = Vec::new();
    loop {
        let batch = recv(&q, 10);
        if batch.is_empty() {
            break;
        }
        got.extend(batch.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()));
    }
    let want: Vec<String> = kept.iter().copied().chain(100..200).map(body).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "messages out of send order after reopen");
}
