//! Waiting for a queue without a thread per waiter: `Queue::changed()` (a std future) completes
//! on every event that can make a message visible, and `Queue::next_visible_at_ms()` names the
//! time a delay or visibility timeout ends. An async server's long poll is built from the two;
//! here they are driven by hand-written executors (a counting waker, and a parking `block_on`),
//! no async runtime.

mod common;

use std::future::Future;
use std::path::Path;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use weir::queue::changed::QueueChanged;
use weir::queue::{Queue, QueueConfig, ReceiveOptions, ReceivedMessage, SendOptions};
use weir::topic::{Endpoint, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), 1 << 20)).expect("open")
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future under test with its counting waker.
struct Watch {
    future: Pin<Box<QueueChanged>>,
    count: Arc<Count>,
    waker: Waker,
}

impl Watch {
    /// Watches `queue` from now on; the first poll registers the waker.
    fn new(queue: &Queue) -> Watch {
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut w = Watch { future: Box::pin(queue.changed()), count, waker };
        assert!(!w.ready(), "nothing happened yet");
        w
    }

    fn ready(&mut self) -> bool {
        self.future.as_mut().poll(&mut Context::from_waker(&self.waker)).is_ready()
    }

    fn woken(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }

    /// Asserts the event woke the waker and completes the future.
    fn fired(&mut self, what: &str) {
        assert_eq!(self.woken(), 1, "{what}: the waker was woken once");
        assert!(self.ready(), "{what}: the future completed");
    }

    /// Asserts nothing woke it.
    fn quiet(&mut self, what: &str) {
        assert_eq!(self.woken(), 0, "{what}: woken");
        assert!(!self.ready(), "{what}: completed");
    }
}

/// The smallest executor that blocks: polls, and parks the thread until the waker unparks it.
/// Gives up (returns `None`) at `deadline`, so a lost wake-up fails the test instead of hanging.
fn block_on<F: Future>(future: F, deadline: Duration) -> Option<F::Output> {
    block_on_then(future, deadline, || {})
}

/// [`block_on`], calling `registered` once the first poll has left the future pending (its
/// waker registered).
fn block_on_then<F: Future>(future: F, deadline: Duration, registered: impl FnOnce()) -> Option<F::Output> {
    let mut registered = Some(registered);
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let end = Instant::now() + deadline;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
        if let Some(f) = registered.take() {
            f();
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::park_timeout(end - now);
    }
}

fn receive_now(q: &Queue, visibility: Option<Duration>) -> Vec<ReceivedMessage> {
    let options =
        ReceiveOptions { max: 10, wait: Some(Duration::ZERO), visibility_timeout: visibility, ..Default::default() };
    q.receive(options).expect("receive")
}

#[test]
fn sends_and_topic_deliveries_complete_the_future() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let mut w = Watch::new(&q);
    q.send(b"one", SendOptions::default()).expect("send");
    w.fired("send");
    let mut w = Watch::new(&q);
    let entries = vec![weir::queue::SendEntry { body: "two".into(), options: SendOptions::default() }];
    q.send_batch(&entries).expect("batch");
    w.fired("send batch");
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    let raw = SubscribeOptions { raw: true, ..Default::default() };
    engine.subscribe("t", Endpoint::Queue("q".into()), raw).expect("subscribe");
    let mut w = Watch::new(&q);
    engine.topic("t").expect("topic").publish(b"three", Default::default()).expect("publish");
    w.fired("topic delivery");
    // A receive, or a send that fails, makes nothing visible.
    let mut w = Watch::new(&q);
    receive_now(&q, None);
    assert!(q.send(b"", SendOptions::default()).is_err());
    w.quiet("receive and a failed send");
}

#[test]
fn visibility_changes_to_now_and_fifo_deletes_complete_the_future() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"m", SendOptions::default()).expect("send");
    let got = receive_now(&q, None);
    let mut w = Watch::new(&q);
    q.change_visibility(&got[0].receipt_handle, Duration::from_secs(60)).expect("later");
    w.quiet("a visibility change to later");
    q.change_visibility(&got[0].receipt_handle, Duration::ZERO).expect("now");
    w.fired("a visibility change to now");

    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("fifo");
    let f = engine.queue("f.fifo").expect("fifo");
    for body in ["a1", "a2"] {
        let options = SendOptions { group: Some("a".into()), dedup_id: Some(body.into()), ..Default::default() };
        f.send(body.as_bytes(), options).expect("send");
    }
    let head = f.receive(ReceiveOptions { max: 1, wait: Some(Duration::ZERO), ..Default::default() }).expect("head");
    assert!(receive_now(&f, None).is_empty(), "the group is blocked behind its head");
    let mut w = Watch::new(&f);
    f.delete(&head[0].receipt_handle).expect("delete the head");
    w.fired("a FIFO delete unblocking the group");
    assert_eq!(&receive_now(&f, None)[0].body[..], b"a2");
}

#[test]
fn dead_letter_moves_redrives_purges_attribute_changes_and_deletion_complete_the_future() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    common::create_with_dead_letter_queue(&engine, "work", "dlq", 1);
    let (work, dlq) = (engine.queue("work").expect("work"), engine.queue("dlq").expect("dlq"));
    work.send(b"poison", SendOptions::default()).expect("send");
    receive_now(&work, Some(Duration::ZERO));
    let mut w = Watch::new(&dlq);
    assert!(receive_now(&work, None).is_empty(), "moved to the dead-letter queue");
    w.fired("a dead-letter move into the queue");
    let mut w = Watch::new(&work);
    assert_eq!(engine.redrive("dlq", None).expect("redrive").moved, 1);
    w.fired("a redrive into the queue");
    let mut w = Watch::new(&work);
    work.purge().expect("purge");
    w.fired("purge");
    let mut w = Watch::new(&work);
    let config = QueueConfig { delay: Duration::from_secs(1), ..QueueConfig::default() };
    engine.set_queue_attributes("work", config).expect("attributes");
    w.fired("attributes changed");
    let mut w = Watch::new(&work);
    engine.delete_queue("work").expect("delete");
    w.fired("queue deleted");
    assert!(matches!(work.receive(ReceiveOptions::default()), Err(Error::NotFound { .. })));
    assert!(block_on(work.changed(), Duration::from_secs(10)).is_some(), "a deleted queue's future is ready at once");
    assert_eq!(work.next_visible_at_ms(), None);
}

#[test]
fn next_visible_at_names_when_a_delay_or_visibility_timeout_ends() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    assert_eq!(q.next_visible_at_ms(), None, "empty");
    q.send(b"late", SendOptions { delay: Some(Duration::from_secs(40)), ..Default::default() }).expect("send");
    // Asked after a receive that found nothing, as a long poll asks (before it, a message the
    // receive has not looked at yet counts as maybe visible: `Some(now)`).
    assert!(receive_now(&q, None).is_empty());
    assert_eq!(q.next_visible_at_ms(), Some(T0 + 40_000), "the delay's end");
    q.send(b"now", SendOptions::default()).expect("send");
    assert_eq!(q.next_visible_at_ms(), Some(T0), "visible already");
    receive_now(&q, Some(Duration::from_secs(10)));
    assert_eq!(q.next_visible_at_ms(), Some(T0 + 10_000), "the visibility timeout's end comes first");
    clock.advance(Duration::from_secs(10));
    assert_eq!(q.next_visible_at_ms(), Some(T0 + 10_000), "due now");
    let got = receive_now(&q, Some(Duration::from_secs(600)));
    assert_eq!(got.len(), 1);
    q.delete(&got[0].receipt_handle).expect("delete");
    assert_eq!(q.next_visible_at_ms(), Some(T0 + 40_000));
}

/// The long poll an async server runs, with the manual clock standing in for its timer: it
/// returns the messages a delay, another receiver's visibility timeout, or another thread's
/// send makes visible (the wake-ups emulators are known to miss).
#[test]
fn a_long_poll_built_from_the_two_sees_every_way_a_message_becomes_visible() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Arc::new(open(dir.path(), &clock));
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    // One poll step: what a server does when its timer or the future fires.
    let poll_once = |q: &Queue| -> (Vec<ReceivedMessage>, QueueChanged, Option<u64>) {
        let changed = q.changed();
        let got = receive_now(q, None);
        (got, changed, q.next_visible_at_ms())
    };
    // A delay ending.
    q.send(b"delayed", SendOptions { delay: Some(Duration::from_secs(5)), ..Default::default() }).expect("send");
    let (got, _changed, next) = poll_once(&q);
    assert!(got.is_empty());
    clock.set_ms(next.expect("a time to wake"));
    let (got, _, _) = poll_once(&q);
    assert_eq!(&got[0].body[..], b"delayed");
    // Another receiver's visibility timeout ending (30 s, the queue's).
    let (got, _, next) = poll_once(&q);
    assert!(got.is_empty());
    assert_eq!(next, Some(T0 + 35_000));
    clock.set_ms(T0 + 35_000);
    assert_eq!(&poll_once(&q).0[0].body[..], b"delayed", "back after its visibility timeout");
    // A send from another thread while the poll waits on the future.
    let (got, changed, _) = poll_once(&q);
    assert!(got.is_empty());
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let sender = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            wait_for_go.recv().expect("the poll is waiting");
            engine.queue("q").expect("queue").send(b"from elsewhere", SendOptions::default()).expect("send");
        })
    };
    let woke = block_on_then(changed, Duration::from_secs(10), || go.send(()).expect("start the sender"));
    assert!(woke.is_some(), "the send woke the waiting poll");
    sender.join().expect("sender");
    assert_eq!(&poll_once(&q).0[0].body[..], b"from elsewhere");
}

#[test]
fn a_thousand_waiting_futures_hold_no_thread_and_all_complete_on_one_send() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    let count = Arc::new(Count::default());
    let waker = Waker::from(Arc::clone(&count));
    let mut futures: Vec<Pin<Box<QueueChanged>>> = (0..1000).map(|_| Box::pin(q.changed())).collect();
    for f in &mut futures {
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    }
    q.send(b"one", SendOptions::default()).expect("send");
    assert_eq!(count.0.load(Ordering::SeqCst), 1000);
    assert!(futures.iter_mut().all(|f| f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready()));
    // A receive with a zero wait never blocks, whatever the queue's default wait.
    let config = QueueConfig { receive_wait: Duration::from_secs(20), ..QueueConfig::default() };
    engine.set_queue_attributes("q", config).expect("attributes");
    receive_now(&q, None);
    let started = Instant::now();
    assert!(receive_now(&q, None).is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "a zero wait returned at once");
}
