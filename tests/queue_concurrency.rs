//! Queues under many threads: at-least-once delivery (here: exactly once, as nothing outlives
//! its visibility timeout), FIFO group exclusion and order with concurrent receivers,
//! dead-letter moves racing each other, maintenance (compaction, segment deletion) racing sends
//! and receives, and long polls woken by sends, deletes, delays and a manual clock. Real
//! threads; each test finishes in a few seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use weir::queue::{Queue, QueueConfig, ReceiveOptions, ReceivedMessage, RedrivePolicy, SendEntry, SendOptions};
use weir::{Engine, ManualClock, Options};

/// Upper bound for any one test; hitting it means something hangs.
const DEADLINE: Duration = Duration::from_secs(30);
const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(dir, Options { background: false, ..Options::default() }).expect("open engine")
}

fn poll(q: &Queue, max: usize, wait_ms: u64) -> Vec<ReceivedMessage> {
    let options = ReceiveOptions { max, wait: Some(Duration::from_millis(wait_ms)), ..ReceiveOptions::default() };
    q.receive(options).expect("receive")
}

fn delete_all(q: &Queue, got: &[ReceivedMessage]) {
    let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
    for result in q.delete_batch(&handles).expect("delete batch") {
        result.expect("a current handle deletes");
    }
}

fn assert_empty(q: &Queue) {
    let a = q.attributes();
    assert_eq!((a.approximate_visible, a.approximate_in_flight, a.approximate_delayed), (0, 0, 0), "{}", q.name());
    assert!(q.peek(10).expect("peek").is_empty(), "{} still holds messages", q.name());
}

#[test]
fn concurrent_senders_and_receivers_deliver_every_message_once_and_delete_all() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("work", QueueConfig::default()).expect("create");
    let deliveries: Arc<Mutex<HashMap<String, Vec<u32>>>> = Arc::default();
    let deleted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for s in 0..SENDERS {
        let q = engine.queue("work").expect("queue");
        threads.push(thread::spawn(move || {
            if s % 2 == 0 {
                for i in 0..PER_SENDER {
                    q.send(format!("s{s}-{i}").as_bytes(), SendOptions::default()).expect("send");
                }
            } else {
                for chunk in (0..PER_SENDER).collect::<Vec<_>>().chunks(10) {
                    let entries: Vec<SendEntry> = chunk
                        .iter()
                        .map(|i| SendEntry { body: format!("s{s}-{i}").into(), options: SendOptions::default() })
                        .collect();
                    for result in q.send_batch(&entries).expect("send batch") {
                        result.expect("batch entry");
                    }
                }
            }
        }));
    }
    for r in 0..4 {
        let q = engine.queue("work").expect("queue");
        let (deliveries, deleted) = (Arc::clone(&deliveries), Arc::clone(&deleted));
        threads.push(thread::spawn(move || {
            while deleted.load(Ordering::SeqCst) < SENDERS * PER_SENDER {
                if started.elapsed() > DEADLINE {
                    let a = q.attributes();
                    panic!(
                        "receivers did not finish: {} of {} deleted, {} visible that no receive returns",
                        deleted.load(Ordering::SeqCst),
                        SENDERS * PER_SENDER,
                        a.approximate_visible
                    );
                }
                let got = poll(&q, 1 + r * 3, 50);
                if got.is_empty() {
                    continue;
                }
                {
                    let mut d = deliveries.lock().expect("lock");
                    for m in &got {
                        d.entry(String::from_utf8(m.body.to_vec()).expect("utf8")).or_default().push(m.receive_count);
                    }
                }
                delete_all(&q, &got);
                deleted.fetch_add(got.len(), Ordering::SeqCst);
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    let deliveries = deliveries.lock().expect("lock");
    assert_eq!(deliveries.len(), SENDERS * PER_SENDER, "every message was delivered");
    for s in 0..SENDERS {
        for i in 0..PER_SENDER {
            let counts = &deliveries[&format!("s{s}-{i}")];
            assert_eq!(counts, &vec![1], "s{s}-{i} was delivered again within its visibility timeout");
        }
    }
    let q = engine.queue("work").expect("queue");
    assert_empty(&q);
    drop(q);
    let engine = Arc::try_unwrap(engine).expect("sole owner");
    drop(engine);
    assert_empty(&open(dir.path()).queue("work").expect("queue after reopen"));
}

/// One delivery seen by a FIFO receiver.
#[derive(Debug, Clone)]
struct Delivery {
    seq: usize,
    /// Which receive call (receiver, call number) and where in its result.
    call: (usize, usize),
    position: usize,
    /// When the receive call returned.
    received: Instant,
    /// When the delete of this message was started.
    delete_started: Instant,
}

#[test]
fn fifo_groups_never_have_two_messages_in_flight_and_keep_their_order_under_concurrent_receivers() {
    const GROUPS: usize = 8;
    const PER_GROUP: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("orders.fifo", QueueConfig::fifo()).expect("create");
    let log: Arc<Mutex<HashMap<usize, Vec<Delivery>>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    // Each sender owns two groups, so send order within a group is the order of its counter.
    for s in 0..4 {
        let q = engine.queue("orders.fifo").expect("queue");
        threads.push(thread::spawn(move || {
            for i in 0..PER_GROUP {
                for g in [2 * s, 2 * s + 1] {
                    let options = SendOptions {
                        group: Some(format!("g{g}")),
                        dedup_id: Some(format!("{g}-{i}")),
                        ..SendOptions::default()
                    };
                    let sent = q.send(format!("{g} {i}").as_bytes(), options).expect("send");
                    assert!(!sent.duplicate);
                }
            }
        }));
    }
    for r in 0..4 {
        let q = engine.queue("orders.fifo").expect("queue");
        let (log, done) = (Arc::clone(&log), Arc::clone(&done));
        threads.push(thread::spawn(move || {
            let mut call = 0;
            while done.load(Ordering::SeqCst) < GROUPS * PER_GROUP {
                assert!(started.elapsed() < DEADLINE, "receivers did not finish");
                call += 1;
                let got = poll(&q, 1 + (call * 7 + r) % 10, 50);
                let received = Instant::now();
                for (position, m) in got.iter().enumerate() {
                    let text = String::from_utf8(m.body.to_vec()).expect("utf8");
                    let (g, i) = text.split_once(' ').expect("body is \"group counter\"");
                    let (g, seq): (usize, usize) = (g.parse().expect("group"), i.parse().expect("counter"));
                    assert_eq!(m.group.as_deref(), Some(format!("g{g}").as_str()));
                    let delete_started = Instant::now();
                    log.lock().expect("lock").entry(g).or_default().push(Delivery {
                        seq,
                        call: (r, call),
                        position,
                        received,
                        delete_started,
                    });
                    q.delete(&m.receipt_handle).expect("delete");
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    let log = log.lock().expect("lock");
    assert_eq!(log.len(), GROUPS);
    for (g, deliveries) in log.iter() {
        let mut by_seq = deliveries.clone();
        by_seq.sort_by_key(|d| d.seq);
        let seqs: Vec<usize> = by_seq.iter().map(|d| d.seq).collect();
        assert_eq!(seqs, (0..PER_GROUP).collect::<Vec<_>>(), "group {g}: each message delivered exactly once");
        for pair in by_seq.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.call == b.call {
                assert!(a.position < b.position, "group {g}: {} after {} in one receive", a.seq, b.seq);
            } else {
                // b may only be handed out once a is deleted: its receive cannot have returned
                // before a's delete even began.
                assert!(
                    b.received >= a.delete_started,
                    "group {g}: message {} was delivered while {} was still in flight",
                    b.seq,
                    a.seq
                );
            }
        }
    }
    assert_empty(&engine.queue("orders.fifo").expect("queue"));
}

#[test]
fn concurrent_receives_move_each_message_to_the_dead_letter_queue_exactly_once() {
    const MESSAGES: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("dead", QueueConfig::default()).expect("dlq");
    let redrive = RedrivePolicy { dead_letter_queue: "dead".into(), max_receives: 1 };
    engine.create_queue("work", QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("work");
    let work = engine.queue("work").expect("work");
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(10) {
        let entries: Vec<SendEntry> =
            chunk.iter().map(|i| SendEntry { body: format!("m{i}").into(), options: SendOptions::default() }).collect();
        work.send_batch(&entries).expect("send batch");
    }
    let deliveries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let q = engine.queue("work").expect("queue");
            let deliveries = Arc::clone(&deliveries);
            thread::spawn(move || loop {
                assert!(started.elapsed() < DEADLINE, "receivers did not finish");
                // Visibility 0: every received message is visible again at once, and the next
                // receive of it (by any thread) moves it.
                let options = ReceiveOptions {
                    max: 10,
                    wait: Some(Duration::ZERO),
                    visibility_timeout: Some(Duration::ZERO),
                    ..ReceiveOptions::default()
                };
                let got = q.receive(options).expect("receive");
                let a = q.attributes();
                if got.is_empty() && a.approximate_visible + a.approximate_in_flight == 0 {
                    return;
                }
                let mut d = deliveries.lock().expect("lock");
                for m in got {
                    assert_eq!(m.receive_count, 1, "received again instead of moved");
                    *d.entry(m.message_id).or_default() += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let deliveries = deliveries.lock().expect("lock");
    assert_eq!(deliveries.len(), MESSAGES, "every message was delivered once before it moved");
    assert!(deliveries.values().all(|&n| n == 1));
    assert_empty(&work);
    let dead = engine.queue("dead").expect("dead").peek(1000).expect("peek");
    assert_eq!(dead.len(), MESSAGES, "every message is in the dead-letter queue, once");
    let mut ids: Vec<&String> = dead.iter().map(|m| &m.message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MESSAGES, "no message is in the dead-letter queue twice");
    assert!(ids.iter().all(|id| deliveries.contains_key(*id)), "only delivered messages moved");
}

#[test]
fn long_polls_return_as_soon_as_another_thread_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let barrier = Arc::new(Barrier::new(5));
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let q = engine.queue("q").expect("queue");
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let got = poll(&q, 1, 5_000);
                (got.len(), Instant::now())
            })
        })
        .collect();
    barrier.wait();
    // Let the receivers reach their wait (a sleep is the point of this test).
    thread::sleep(Duration::from_millis(200));
    let sent_at = Instant::now();
    let entries: Vec<SendEntry> =
        (0..4).map(|i| SendEntry { body: format!("wake {i}").into(), options: SendOptions::default() }).collect();
    engine.queue("q").expect("queue").send_batch(&entries).expect("send batch");
    for r in receivers {
        let (n, returned) = r.join().expect("receiver");
        assert_eq!(n, 1, "each long poll got one of the four messages");
        assert!(
            returned.duration_since(sent_at) < Duration::from_secs(2),
            "a long poll returned {:?} after the send, not at once",
            returned.duration_since(sent_at)
        );
    }
}

#[test]
fn single_sends_into_a_burst_of_long_polls_are_all_received_without_waiting_out_a_poll() {
    // A send wakes at most one sleeping poll at a time; the woken one takes its batch and wakes
    // the next if it leaves messages behind. Nothing may sit visible while every poll sleeps.
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    const MESSAGES: usize = 60;
    let received = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(5));
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let (q, received, barrier) =
                (engine.queue("q").expect("queue"), Arc::clone(&received), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                while received.load(Ordering::SeqCst) < MESSAGES {
                    let got = poll(&q, 3, 20_000);
                    delete_all(&q, &got);
                    received.fetch_add(got.len(), Ordering::SeqCst);
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let q = engine.queue("q").expect("queue");
    for i in 0..MESSAGES {
        q.send(format!("m{i}").as_bytes(), SendOptions::default()).expect("send");
        if i % 7 == 0 {
            thread::yield_now();
        }
    }
    while received.load(Ordering::SeqCst) < MESSAGES {
        assert!(started.elapsed() < Duration::from_secs(10), "messages sat visible while the polls slept");
        thread::sleep(Duration::from_millis(5));
    }
    // The receivers still polling wait for a message that never comes: send them some until
    // every one has returned (one poll may take several, and leave another asleep).
    let mut released = 0;
    while receivers.iter().any(|r| !r.is_finished()) {
        assert!(started.elapsed() < Duration::from_secs(10), "a poll slept through the release messages");
        if released < 16 {
            q.send(format!("release {released}").as_bytes(), SendOptions::default()).expect("send");
            released += 1;
        }
        thread::sleep(Duration::from_millis(5));
    }
    for r in receivers {
        r.join().expect("receiver");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "a poll waited out its time");
}

#[test]
fn long_poll_returns_when_a_delete_unblocks_a_fifo_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("create");
    let q = engine.queue("f.fifo").expect("queue");
    for (body, dedup) in [("one", "1"), ("two", "2")] {
        let options = SendOptions { group: Some("g".into()), dedup_id: Some(dedup.into()), ..SendOptions::default() };
        q.send(body.as_bytes(), options).expect("send");
    }
    let first = poll(&q, 1, 0).remove(0);
    let waiter = {
        let q = q.clone();
        thread::spawn(move || {
            let got = poll(&q, 10, 5_000);
            (got, Instant::now())
        })
    };
    thread::sleep(Duration::from_millis(200));
    let deleted_at = Instant::now();
    q.delete(&first.receipt_handle).expect("delete");
    let (got, returned) = waiter.join().expect("waiter");
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"two", "the group's next message");
    assert!(returned.duration_since(deleted_at) < Duration::from_secs(2), "the delete woke the long poll");
}

#[test]
fn long_poll_returns_when_a_delayed_message_becomes_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let started = Instant::now();
    q.send(b"soon", SendOptions { delay: Some(Duration::from_secs(1)), ..SendOptions::default() }).expect("send");
    let got = poll(&q, 1, 5_000);
    let waited = started.elapsed();
    assert_eq!(got.len(), 1);
    assert!(waited >= Duration::from_millis(900), "delivered after {waited:?}, before its delay");
    assert!(waited < Duration::from_secs(3), "the long poll slept past the delay: {waited:?}");
}

#[test]
fn long_poll_under_a_manual_clock_returns_when_the_clock_is_advanced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options { clock: clock.clone(), background: false, ..Options::default() };
    let engine = Arc::new(Engine::open(dir.path(), options).expect("open"));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"m", SendOptions::default()).expect("send");
    assert_eq!(poll(&q, 1, 0).len(), 1, "now in flight for 30 s of the manual clock");
    let waiting = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (q, waiting) = (q.clone(), Arc::clone(&waiting));
        thread::spawn(move || {
            waiting.store(true, Ordering::SeqCst);
            let got = poll(&q, 1, 5_000);
            (got, Instant::now())
        })
    };
    while !waiting.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(200));
    clock.advance(Duration::from_secs(30));
    let advanced_at = Instant::now();
    engine.notify_clock_advanced();
    let (got, returned) = waiter.join().expect("waiter");
    assert_eq!(got.len(), 1, "the message is visible again");
    assert_eq!(got[0].receive_count, 2);
    assert!(returned.duration_since(advanced_at) < Duration::from_secs(2), "woken by notify_clock_advanced");
}

#[test]
fn long_poll_with_nothing_to_receive_waits_its_time_and_returns_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let started = Instant::now();
    assert!(poll(&q, 10, 300).is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "returned after {waited:?}, before its wait");
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");
}

// The race behind the ignored test above, made deterministic: a receive reads the clock (t), a
// send reads it a millisecond later (t + 1) and indexes its message as visible, then the
// receive takes the lock and sees the message as not yet visible at t. A manual clock stepping
// back by 1 ms between the send and the receive replays exactly that order (a system clock
// stepping back does the same).

fn manual(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    let options = Options { clock: clock.clone(), background: false, ..Options::default() };
    Engine::open(dir, options).expect("open")
}

#[test]
fn a_message_sent_while_a_receive_reads_an_earlier_time_is_still_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let engine = manual(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"m", SendOptions::default()).expect("send at t + 1");
    clock.set_ms(T0);
    assert!(poll(&q, 10, 0).is_empty(), "not visible yet at t");
    clock.set_ms(T0 + 60_000);
    let got = poll(&q, 10, 0);
    assert_eq!(got.len(), 1, "a visible message is never delivered (attributes: {:?})", q.attributes());
}

#[test]
fn a_fifo_message_sent_while_a_receive_reads_an_earlier_time_is_still_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let engine = manual(dir.path(), &clock);
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("create");
    let q = engine.queue("f.fifo").expect("queue");
    let options = SendOptions { group: Some("g".into()), dedup_id: Some("1".into()), ..SendOptions::default() };
    q.send(b"m", options).expect("send at t + 1");
    clock.set_ms(T0);
    assert!(poll(&q, 10, 0).is_empty(), "not visible yet at t");
    clock.set_ms(T0 + 60_000);
    let got = poll(&q, 10, 0);
    assert_eq!(got.len(), 1, "the group's only message is never delivered (attributes: {:?})", q.attributes());
}

#[test]
fn maintenance_alongside_senders_and_receivers_loses_nothing_and_revives_nothing() {
    const SENDERS: usize = 2;
    const PER_SENDER: usize = 400;
    const TOTAL: usize = SENDERS * PER_SENDER;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    // Small segments so maintenance has something to move and delete; a manual clock that the
    // maintenance thread moves on, so visibility timeouts and the deduplication window pass.
    let options = Options {
        clock: clock.clone(),
        background: false,
        segment_bytes: 4096,
        durability: weir::Durability::Never,
        ..Options::default()
    };
    let engine = Arc::new(Engine::open(dir.path(), options).expect("open"));
    engine.create_queue("work", QueueConfig::default()).expect("create");
    // body -> the number of acknowledged deletes before it was acknowledged deleted.
    let deleted: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for s in 0..SENDERS {
        let q = engine.queue("work").expect("queue");
        threads.push(thread::spawn(move || {
            for i in 0..PER_SENDER {
                let body = format!("s{s}-{i:04}-{}", ".".repeat(300));
                q.send(body.as_bytes(), SendOptions::default()).expect("send");
            }
        }));
    }
    for _ in 0..2 {
        let q = engine.queue("work").expect("queue");
        let (deleted, acknowledged) = (Arc::clone(&deleted), Arc::clone(&acknowledged));
        threads.push(thread::spawn(move || {
            while deleted.lock().expect("lock").len() < TOTAL {
                assert!(started.elapsed() < DEADLINE, "receivers did not finish");
                let before = acknowledged.load(Ordering::SeqCst);
                for m in poll(&q, 10, 0) {
                    let body = String::from_utf8(m.body.to_vec()).expect("utf8");
                    if let Some(&at) = deleted.lock().expect("lock").get(&body) {
                        assert!(at >= before, "{body} was received after its delete was acknowledged");
                    }
                    match q.delete(&m.receipt_handle) {
                        Ok(()) => {
                            let n = acknowledged.fetch_add(1, Ordering::SeqCst);
                            let earlier = deleted.lock().expect("lock").insert(body.clone(), n);
                            assert!(earlier.is_none(), "{body} was deleted twice");
                        }
                        // Received again by the other receiver after its visibility ran out.
                        Err(weir::Error::InvalidReceiptHandle(_)) => {}
                        Err(e) => panic!("delete: {e}"),
                    }
                }
            }
        }));
    }
    {
        let (engine, clock, deleted) = (Arc::clone(&engine), clock.clone(), Arc::clone(&deleted));
        threads.push(thread::spawn(move || {
            while deleted.lock().expect("lock").len() < TOTAL {
                assert!(started.elapsed() < DEADLINE, "maintenance loop did not finish");
                clock.advance(Duration::from_secs(31));
                engine.run_maintenance().expect("maintenance");
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    assert_empty(&engine.queue("work").expect("queue"));
    // Everything is deleted: past the deduplication window, maintenance frees every segment but
    // the one being written.
    clock.advance(Duration::from_secs(301));
    engine.run_maintenance().expect("maintenance");
    let segments = std::fs::read_dir(dir.path().join("queues"))
        .expect("list")
        .filter(|e| e.as_ref().expect("entry").path().extension().is_some_and(|x| x == "seg"))
        .count();
    assert!(segments <= 2, "maintenance left {segments} segments behind");
    let engine = Arc::try_unwrap(engine).expect("sole owner");
    drop(engine);
    let engine = Engine::open(dir.path(), Options { clock, background: false, ..Options::default() }).expect("reopen");
    assert_empty(&engine.queue("work").expect("queue after reopen"));
}

#[test]
fn long_poll_ends_with_an_error_when_its_queue_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let waiter = thread::spawn(move || {
        let options = ReceiveOptions { max: 1, wait: Some(Duration::from_secs(5)), ..ReceiveOptions::default() };
        (q.receive(options), Instant::now())
    });
    thread::sleep(Duration::from_millis(200));
    let deleted_at = Instant::now();
    engine.delete_queue("q").expect("delete queue");
    let (result, returned) = waiter.join().expect("waiter");
    assert!(matches!(result, Err(weir::Error::NotFound { .. })), "{result:?}");
    assert!(returned.duration_since(deleted_at) < Duration::from_secs(2), "the delete woke the long poll");
}

#[test]
fn receive_without_a_wait_long_polls_for_the_queues_receive_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    let config = QueueConfig { receive_wait: Duration::from_secs(5), ..QueueConfig::default() };
    engine.create_queue("q", config).expect("create");
    let q = engine.queue("q").expect("queue");
    let waiter = thread::spawn(move || {
        let got = q.receive(ReceiveOptions { max: 1, wait: None, ..ReceiveOptions::default() }).expect("receive");
        (got.len(), Instant::now())
    });
    thread::sleep(Duration::from_millis(200));
    let sent_at = Instant::now();
    engine.queue("q").expect("queue").send(b"m", SendOptions::default()).expect("send");
    let (n, returned) = waiter.join().expect("waiter");
    assert_eq!(n, 1, "the receive waited (the queue's default) and got the message");
    assert!(returned.duration_since(sent_at) < Duration::from_secs(2), "woken by the send");
}
