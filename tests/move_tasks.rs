//! Message move tasks: moving a dead-letter queue's messages back where they came from, or to
//! a destination, at a rate by the engine clock; listing, cancelling, resuming after a reopen,
//! failing with a reason. Driven with a manual clock and `run_maintenance` (no background
//! thread), except one test that lets the task's own thread run on the system clock.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use weir::queue::move_task::MoveTaskStatus;
use weir::queue::{QueueConfig, ReceiveOptions, RedrivePolicy, SendOptions};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), 4096)).expect("open")
}

fn fifo_if(fifo: bool) -> QueueConfig {
    if fifo {
        QueueConfig::fifo()
    } else {
        QueueConfig::default()
    }
}

/// Creates `dlq` and, for each source, a queue sending its dead letters there (after one
/// receive); the suffix `.fifo` makes them all FIFO.
fn setup(engine: &Engine, dlq: &str, sources: &[&str]) {
    let fifo = dlq.ends_with(".fifo");
    engine.create_queue(dlq, fifo_if(fifo)).expect("dlq");
    for source in sources {
        let redrive = Some(RedrivePolicy { dead_letter_queue: dlq.into(), max_receives: 1 });
        engine.create_queue(source, QueueConfig { redrive, ..fifo_if(fifo) }).expect("source");
    }
}

fn options(fifo: bool, body: &str) -> SendOptions {
    if fifo {
        SendOptions { group: Some("g".into()), dedup_id: Some(body.into()), ..Default::default() }
    } else {
        SendOptions::default()
    }
}

fn receive_all(engine: &Engine, queue: &str, visibility: Duration) -> Vec<weir::queue::ReceivedMessage> {
    let q = engine.queue(queue).expect("queue");
    let mut out = Vec::new();
    loop {
        let options = ReceiveOptions {
            max: 10,
            wait: Some(Duration::ZERO),
            visibility_timeout: Some(visibility),
            ..Default::default()
        };
        let got = q.receive(options).expect("receive");
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

/// Sends `bodies` to `source` and dead-letters them (received once, then moved by the next
/// receive).
fn dead_letter(engine: &Engine, source: &str, bodies: &[String]) {
    let fifo = source.ends_with(".fifo");
    let q = engine.queue(source).expect("source");
    for body in bodies {
        q.send(body.as_bytes(), options(fifo, body)).expect("send");
    }
    let first = receive_all(engine, source, Duration::ZERO);
    assert_eq!(first.len(), bodies.len());
    assert!(receive_all(engine, source, Duration::ZERO).is_empty(), "all dead-lettered");
}

fn bodies_of(engine: &Engine, queue: &str) -> Vec<String> {
    let peeked = engine.queue(queue).expect("queue").peek(100_000).expect("peek");
    peeked.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

fn named(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

#[test]
fn a_task_without_destination_moves_each_dead_letter_back_to_its_source() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["orders", "payments"]);
    dead_letter(&engine, "orders", &named("order", 5));
    dead_letter(&engine, "payments", &named("payment", 3));
    let orders = engine.queue("orders").expect("orders");
    let count = Arc::new(WakeCount::default());
    let waker = Waker::from(Arc::clone(&count));
    let mut changed = Box::pin(orders.changed());
    assert!(changed.as_mut().poll_changed(&waker).is_pending());

    let task = engine.start_message_move_task("dlq", None, None).expect("start");
    assert_eq!((task.status, task.moved, task.to_move, task.started_ms), (MoveTaskStatus::Running, 0, 8, T0));
    assert!(task.handle.starts_with("mt-"), "{}", task.handle);
    engine.run_maintenance().expect("maintenance runs the task");
    let done = engine.message_move_task(&task.handle).expect("status");
    assert_eq!((done.status, done.moved, done.failure_reason.as_deref()), (MoveTaskStatus::Completed, 8, None));
    assert_eq!(bodies_of(&engine, "orders"), named("order", 5), "in their order, back home");
    assert_eq!(bodies_of(&engine, "payments"), named("payment", 3));
    assert!(bodies_of(&engine, "dlq").is_empty());
    assert!(count.get() >= 1 && changed.as_mut().poll_changed(&waker).is_ready(), "a move completes the future");
    // Back home they are fresh: received for the first time, not dead letters any more.
    let got = receive_all(&engine, "payments", Duration::from_secs(30));
    assert!(got.iter().all(|m| m.receive_count == 1 && m.dead_letter_source.is_none()));
    let listed = engine.list_message_move_tasks("dlq", 10).expect("list");
    assert_eq!(listed, vec![done]);
}

#[test]
fn a_rate_moves_that_many_messages_a_second_by_the_engine_clock() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    engine.create_queue("elsewhere", QueueConfig::default()).expect("destination");
    dead_letter(&engine, "work", &named("m", 10));
    let task = engine.start_message_move_task("dlq", Some("elsewhere"), Some(3)).expect("start");
    let moved = |engine: &Engine| engine.message_move_task(&task.handle).expect("status").moved;
    engine.run_maintenance().expect("maintenance");
    assert_eq!(moved(&engine), 0, "nothing before time passes");
    // 3 a second, fractions carried over; an idle minute allows one second's worth at most.
    for (advance_ms, expected) in [(1000, 3), (1000, 6), (500, 7), (400, 8), (100, 9), (60_000, 10)] {
        clock.advance(Duration::from_millis(advance_ms));
        engine.run_maintenance().expect("maintenance");
        assert_eq!(moved(&engine), expected, "after {advance_ms} ms more");
    }
    assert_eq!(engine.message_move_task(&task.handle).expect("status").status, MoveTaskStatus::Completed);
    assert_eq!(bodies_of(&engine, "elsewhere"), named("m", 10));
}

#[test]
fn a_cancelled_task_stops_at_once_and_keeps_what_it_moved() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    dead_letter(&engine, "work", &named("m", 10));
    let task = engine.start_message_move_task("dlq", None, Some(1)).expect("start");
    let second = engine.start_message_move_task("dlq", None, None);
    assert!(matches!(second, Err(Error::AlreadyExists { .. })), "one running task per source: {second:?}");
    for _ in 0..2 {
        clock.advance(Duration::from_secs(1));
        engine.run_maintenance().expect("maintenance");
    }
    let cancelled = engine.cancel_message_move_task(&task.handle).expect("cancel");
    assert_eq!((cancelled.status, cancelled.moved), (MoveTaskStatus::Cancelled, 2));
    clock.advance(Duration::from_secs(60));
    engine.run_maintenance().expect("maintenance");
    assert_eq!(bodies_of(&engine, "work"), named("m", 2));
    assert_eq!(bodies_of(&engine, "dlq").len(), 8, "the rest stays");
    assert!(matches!(engine.cancel_message_move_task(&task.handle), Err(Error::InvalidArgument(_))), "twice");
    // Another task may start now, and lists before the cancelled one.
    let next = engine.start_message_move_task("dlq", None, None).expect("a new task");
    engine.run_maintenance().expect("maintenance");
    let listed = engine.list_message_move_tasks("dlq", 10).expect("list");
    assert_eq!(
        listed.iter().map(|t| (t.handle.as_str(), t.status)).collect::<Vec<_>>(),
        [(next.handle.as_str(), MoveTaskStatus::Completed), (task.handle.as_str(), MoveTaskStatus::Cancelled)]
    );
    assert_eq!(engine.list_message_move_tasks("dlq", 1).expect("list one").len(), 1);
    assert_eq!(bodies_of(&engine, "work"), named("m", 10));
}

#[test]
fn a_running_task_resumes_after_a_reopen_and_moves_each_message_once() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let handle;
    {
        let engine = open(dir.path(), &clock);
        setup(&engine, "dlq.fifo", &["work.fifo"]);
        dead_letter(&engine, "work.fifo", &named("m", 12));
        handle = engine.start_message_move_task("dlq.fifo", None, Some(5)).expect("start").handle;
        clock.advance(Duration::from_secs(1));
        engine.run_maintenance().expect("maintenance");
        assert_eq!(engine.message_move_task(&handle).expect("status").moved, 5);
    }
    let engine = open(dir.path(), &clock);
    let resumed = engine.message_move_task(&handle).expect("status after reopen");
    assert_eq!((resumed.status, resumed.moved, resumed.to_move), (MoveTaskStatus::Running, 5, 12));
    clock.advance(Duration::from_secs(1));
    engine.run_maintenance().expect("maintenance");
    assert_eq!(engine.message_move_task(&handle).expect("status").moved, 10);
    drop(engine);
    let engine = open(dir.path(), &clock);
    clock.advance(Duration::from_secs(1));
    engine.run_maintenance().expect("maintenance");
    let done = engine.message_move_task(&handle).expect("status");
    assert_eq!((done.status, done.moved), (MoveTaskStatus::Completed, 12));
    assert_eq!(bodies_of(&engine, "work.fifo"), named("m", 12), "each once, in group order");
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.message_move_task(&handle).expect("status").status, MoveTaskStatus::Completed);
    assert!(bodies_of(&engine, "dlq.fifo").is_empty());
}

#[test]
fn messages_arriving_after_the_start_and_messages_in_flight_stay() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    dead_letter(&engine, "work", &named("early", 4));
    // One dead letter is being looked at by someone.
    let held = engine
        .queue("dlq")
        .expect("dlq")
        .receive(ReceiveOptions { max: 1, wait: Some(Duration::ZERO), ..Default::default() })
        .expect("receive");
    assert_eq!(held.len(), 1);
    let task = engine.start_message_move_task("dlq", None, Some(10)).expect("start");
    assert_eq!(task.to_move, 4);
    dead_letter(&engine, "work", &named("late", 2));
    clock.advance(Duration::from_secs(1));
    engine.run_maintenance().expect("maintenance");
    let done = engine.message_move_task(&task.handle).expect("status");
    assert_eq!((done.status, done.moved), (MoveTaskStatus::Completed, 3));
    let mut left: Vec<String> = bodies_of(&engine, "dlq");
    left.sort();
    assert_eq!(left, ["early-000", "late-000", "late-001"]);
}

#[test]
fn a_task_fails_with_a_reason_when_a_message_has_nowhere_to_go() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    dead_letter(&engine, "work", &named("m", 2));
    // Sent to the dead-letter queue directly: it came from no queue.
    engine.queue("dlq").expect("dlq").send(b"stray", SendOptions::default()).expect("send");
    dead_letter(&engine, "work", &named("n", 1));
    let task = engine.start_message_move_task("dlq", None, None).expect("start");
    engine.run_maintenance().expect("maintenance");
    let failed = engine.message_move_task(&task.handle).expect("status");
    assert_eq!((failed.status, failed.moved), (MoveTaskStatus::Failed, 2));
    assert!(failed.failure_reason.as_deref().is_some_and(|r| r.contains("destination")), "{failed:?}");
    assert_eq!(bodies_of(&engine, "dlq"), ["stray", "n-000"], "the stray stops the task where it is");
    assert_eq!(bodies_of(&engine, "work"), named("m", 2), "what came before it went home");
    engine.queue("work").expect("work").purge().expect("empty it for what follows");
    // With a destination it goes.
    engine.create_queue("triage", QueueConfig::default()).expect("triage");
    let task = engine.start_message_move_task("dlq", Some("triage"), None).expect("start");
    engine.run_maintenance().expect("maintenance");
    assert_eq!(engine.message_move_task(&task.handle).expect("status").status, MoveTaskStatus::Completed);
    assert_eq!(bodies_of(&engine, "triage"), ["stray", "n-000"]);
    // A destination deleted under a running task fails it.
    dead_letter(&engine, "work", &named("o", 1));
    let task = engine.start_message_move_task("dlq", Some("triage"), Some(1)).expect("start");
    engine.delete_queue("triage").expect("delete");
    clock.advance(Duration::from_secs(1));
    engine.run_maintenance().expect("maintenance");
    let failed = engine.message_move_task(&task.handle).expect("status");
    assert_eq!(failed.status, MoveTaskStatus::Failed);
    assert!(failed.failure_reason.as_deref().is_some_and(|r| r.contains("triage")), "{failed:?}");
}

#[test]
fn a_deleted_source_takes_its_tasks_with_it() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    dead_letter(&engine, "work", &named("m", 3));
    let task = engine.start_message_move_task("dlq", None, Some(1)).expect("start");
    engine.delete_queue("dlq").expect("delete the source");
    clock.advance(Duration::from_secs(10));
    engine.run_maintenance().expect("maintenance");
    assert!(matches!(engine.message_move_task(&task.handle), Err(Error::NotFound { .. })));
    assert!(bodies_of(&engine, "work").is_empty(), "nothing moved after the delete");
    engine.create_queue("dlq", QueueConfig::default()).expect("again");
    assert!(engine.list_message_move_tasks("dlq", 10).expect("list").is_empty());
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert!(matches!(engine.message_move_task(&task.handle), Err(Error::NotFound { .. })), "after a reopen too");
}

#[test]
fn bad_requests_are_rejected_and_start_nothing() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    setup(&engine, "dlq.fifo", &["work.fifo"]);
    engine.create_queue("plain", QueueConfig::default()).expect("plain");
    let cases: [(&str, Option<&str>, Option<u32>); 8] = [
        ("plain", None, None),            // not a dead-letter queue
        ("missing", None, None),          // no such queue
        ("dlq", Some("missing"), None),   // no such destination
        ("dlq", Some("dlq"), None),       // itself
        ("dlq", Some("work.fifo"), None), // another type
        ("dlq", None, Some(0)),
        ("dlq", None, Some(501)),
        ("a/b", None, None),
    ];
    for (source, destination, rate) in cases {
        let result = engine.start_message_move_task(source, destination, rate);
        assert!(result.is_err(), "{source} -> {destination:?} at {rate:?} started");
    }
    assert!(engine.list_message_move_tasks("dlq", 10).expect("list").is_empty());
    for max in [0, 11] {
        assert!(matches!(engine.list_message_move_tasks("dlq", max), Err(Error::InvalidArgument(_))));
    }
    assert!(matches!(engine.list_message_move_tasks("missing", 1), Err(Error::NotFound { .. })));
    for handle in ["", "mt-999999", "nonsense", "mt-1"] {
        assert!(matches!(engine.cancel_message_move_task(handle), Err(Error::NotFound { .. })), "{handle:?}");
    }
    engine.start_message_move_task("dlq", Some("work"), Some(500)).expect("the highest rate");
}

#[test]
fn a_source_lists_its_ten_latest_tasks() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    setup(&engine, "dlq", &["work"]);
    let handles: Vec<String> = (0..13)
        .map(|_| {
            let task = engine.start_message_move_task("dlq", None, None).expect("start");
            engine.run_maintenance().expect("maintenance");
            task.handle
        })
        .collect();
    let expected: Vec<&str> = handles.iter().rev().take(10).map(String::as_str).collect();
    let listed = engine.list_message_move_tasks("dlq", 10).expect("list");
    assert_eq!(listed.iter().map(|t| t.handle.as_str()).collect::<Vec<_>>(), expected);
    assert!(listed.iter().all(|t| t.status == MoveTaskStatus::Completed && t.moved == 0 && t.to_move == 0));
    drop(engine);
    let engine = open(dir.path(), &clock);
    let listed = engine.list_message_move_tasks("dlq", 10).expect("list after reopen");
    assert_eq!(listed.iter().map(|t| t.handle.as_str()).collect::<Vec<_>>(), expected);
}

#[test]
fn with_a_background_thread_a_task_runs_by_itself() {
    let dir = common::scratch_dir();
    let options = Options { segment_bytes: 1 << 20, ..Options::default() };
    let engine = Engine::open(dir.path(), options).expect("open");
    setup(&engine, "dlq", &["work"]);
    dead_letter(&engine, "work", &named("m", 40));
    let task = engine.start_message_move_task("dlq", None, Some(200)).expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let status = engine.message_move_task(&task.handle).expect("status");
        if status.status != MoveTaskStatus::Running {
            break status;
        }
        assert!(Instant::now() < deadline, "not done in 30 s: {status:?}");
        std::thread::park_timeout(Duration::from_millis(10));
    };
    assert_eq!((done.status, done.moved), (MoveTaskStatus::Completed, 40));
    let unique: BTreeSet<String> = bodies_of(&engine, "work").into_iter().collect();
    assert_eq!(unique.len(), 40);
}

#[derive(Default)]
struct WakeCount(std::sync::atomic::AtomicUsize);

impl WakeCount {
    fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

trait PollChanged {
    fn poll_changed(self, waker: &Waker) -> std::task::Poll<()>;
}

impl PollChanged for Pin<&mut weir::queue::changed::QueueChanged> {
    fn poll_changed(self, waker: &Waker) -> std::task::Poll<()> {
        std::future::Future::poll(self, &mut Context::from_waker(waker))
    }
}
