//! Bad input to queues: every rejected name, attribute, send, batch, receive and receipt handle
//! fails with its typed `weir::Error`, and leaves the queues exactly as they were (same live
//! messages in the same states, same counts, nothing created).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir::queue::{
    AttributeValue, Attributes, PeekedMessage, Queue, QueueConfig, ReceiveOptions, ReceivedMessage, RedrivePolicy,
    SendEntry, SendOptions,
};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    let options = Options { clock: clock.clone(), background: false, ..Options::default() };
    Engine::open(dir, options).expect("open engine")
}

fn receive(q: &Queue, max: usize) -> Vec<ReceivedMessage> {
    q.receive(ReceiveOptions { max, wait: Some(Duration::ZERO), ..ReceiveOptions::default() }).expect("receive")
}

fn fifo_options(group: &str, dedup: &str) -> SendOptions {
    SendOptions { group: Some(group.into()), dedup_id: Some(dedup.into()), ..SendOptions::default() }
}

/// Everything observable about a queue without changing it.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    messages: Vec<PeekedMessage>,
    counts: (u64, u64, u64),
}

fn snapshot(q: &Queue) -> Snapshot {
    let a = q.attributes();
    Snapshot {
        messages: q.peek(1000).expect("peek"),
        counts: (a.approximate_visible, a.approximate_in_flight, a.approximate_delayed),
    }
}

fn assert_unchanged(q: &Queue, before: &Snapshot, what: &str) {
    assert_eq!(&snapshot(q), before, "{what} changed queue {}", q.name());
}

/// A queue holding one visible, one in-flight and one delayed message.
fn populated(engine: &Engine, name: &str, config: QueueConfig) -> Queue {
    engine.create_queue(name, config).expect("create");
    let q = engine.queue(name).expect("queue");
    q.send(b"first", SendOptions::default()).expect("send");
    assert_eq!(receive(&q, 1).len(), 1);
    q.send(b"second", SendOptions::default()).expect("send");
    q.send(b"later", SendOptions { delay: Some(Duration::from_secs(60)), ..SendOptions::default() }).expect("send");
    q
}

/// A rejected send: what it is, its body and options, and the error it must get.
type SendCase = (&'static str, Vec<u8>, SendOptions, fn(&Error) -> bool);

fn one_attribute(name: &str, value: AttributeValue) -> Attributes {
    [(name.to_string(), value)].into_iter().collect()
}

fn names_to_reject() -> Vec<String> {
    vec![
        String::new(),
        "/".into(),
        "a/b".into(),
        "../escape".into(),
        "..".into(),
        ".".into(),
        "a\\b".into(),
        "a\0b".into(),
        "x".repeat(10 * 1024),
        "q".repeat(81),
        "ｑueue".into(),        // fullwidth q
        "qu\u{0435}ue".into(),  // Cyrillic e
        "queue\u{200b}".into(), // zero-width space
        "\u{202e}eueuq".into(), // right-to-left override
        "queue\u{0301}".into(), // combining accent
        "with space".into(),
        "dot.ted".into(),
        "tab\t".into(),
    ]
}

#[test]
fn bad_queue_names_are_rejected_before_anything_is_created() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = parent.path().join("data");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(&data, &clock);
    engine.create_queue("dlq", QueueConfig::default()).expect("dlq");
    let listing = |p: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(p).expect("list").map(|e| e.expect("entry").file_name()).collect();
        names.sort();
        names
    };
    let files_before = (listing(parent.path()), listing(&data));
    for name in names_to_reject() {
        let shown: String = name.chars().take(20).collect();
        let err = engine.create_queue(&name, QueueConfig::default()).expect_err(&shown);
        assert!(matches!(err, Error::InvalidName { kind: "queue", .. }), "create {shown:?}: {err:?}");
        assert!(err.to_string().len() < 300, "the error echoes a {}-byte name whole", name.len());
        let err = engine.create_queue(&name, QueueConfig::fifo()).expect_err(&shown);
        assert!(matches!(err, Error::InvalidName { .. }), "create FIFO {shown:?}: {err:?}");
        assert!(matches!(engine.queue(&name), Err(Error::InvalidName { .. })), "queue {shown:?}");
        assert!(matches!(engine.delete_queue(&name), Err(Error::InvalidName { .. })), "delete {shown:?}");
        let err = engine.set_queue_attributes(&name, QueueConfig::default()).expect_err(&shown);
        assert!(matches!(err, Error::InvalidName { .. }), "set attributes {shown:?}: {err:?}");
        assert!(matches!(engine.redrive(&name, None), Err(Error::InvalidName { .. })), "redrive {shown:?}");
        assert!(matches!(engine.redrive("dlq", Some(&name)), Err(Error::InvalidName { .. })), "redrive to {shown:?}");
    }
    // The .fifo suffix must match the queue type.
    let err = engine.create_queue("jobs.fifo", QueueConfig::default()).expect_err("standard .fifo");
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    let err = engine.create_queue("jobs", QueueConfig::fifo()).expect_err("FIFO without .fifo");
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    let err = engine.create_queue(".fifo", QueueConfig::fifo()).expect_err("bare suffix");
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert_eq!(engine.list_queues(), vec!["dlq".to_string()], "no queue was created");
    assert_eq!((listing(parent.path()), listing(&data)), files_before, "no file was created");
    // The longest good names are fine.
    engine.create_queue(&"q".repeat(80), QueueConfig::default()).expect("80 characters");
    engine.create_queue(&format!("{}.fifo", "f".repeat(75)), QueueConfig::fifo()).expect("80 with .fifo");
}

#[test]
fn queue_attributes_out_of_range_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("dlq", QueueConfig::default()).expect("dlq");
    engine.create_queue("dlq.fifo", QueueConfig::fifo()).expect("fifo dlq");
    let s = Duration::from_secs;
    let d = QueueConfig::default;
    let redrive = |dlq: &str, max_receives| Some(RedrivePolicy { dead_letter_queue: dlq.into(), max_receives });
    let out_of_range = [
        ("visibility 12 h + 1 s", QueueConfig { visibility_timeout: s(12 * 3600 + 1), ..d() }),
        ("delay 15 min + 1 s", QueueConfig { delay: s(901), ..d() }),
        ("retention 59 s", QueueConfig { retention: s(59), ..d() }),
        ("retention 14 days + 1 s", QueueConfig { retention: s(14 * 86400 + 1), ..d() }),
        ("max message 1023 bytes", QueueConfig { max_message_bytes: 1023, ..d() }),
        ("max message 16 MiB + 1", QueueConfig { max_message_bytes: (16 << 20) + 1, ..d() }),
        ("max message 0 bytes", QueueConfig { max_message_bytes: 0, ..d() }),
        ("receive wait 21 s", QueueConfig { receive_wait: s(21), ..d() }),
        ("max receives 0", QueueConfig { redrive: redrive("dlq", 0), ..d() }),
        ("max receives 1001", QueueConfig { redrive: redrive("dlq", 1001), ..d() }),
        ("content dedup on a standard queue", QueueConfig { content_based_dedup: true, ..d() }),
        ("standard queue with a FIFO DLQ", QueueConfig { redrive: redrive("dlq.fifo", 3), ..d() }),
        ("its own DLQ", QueueConfig { redrive: redrive("q", 3), ..d() }),
    ];
    for (what, config) in &out_of_range {
        let err = engine.create_queue("q", config.clone()).expect_err(what);
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
    }
    let err = engine.create_queue("q", QueueConfig { redrive: redrive("nowhere", 3), ..d() }).expect_err("no DLQ");
    assert!(matches!(err, Error::NotFound { kind: "dead-letter queue", .. }), "{err:?}");
    let fifo_with_standard_dlq = QueueConfig { redrive: redrive("dlq", 3), ..QueueConfig::fifo() };
    let err = engine.create_queue("q.fifo", fifo_with_standard_dlq).expect_err("FIFO with standard DLQ");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let fifo_own = QueueConfig { redrive: redrive("q.fifo", 3), ..QueueConfig::fifo() };
    assert!(matches!(engine.create_queue("q.fifo", fifo_own), Err(Error::InvalidArgument(_))));
    assert_eq!(engine.list_queues(), vec!["dlq".to_string(), "dlq.fifo".to_string()], "nothing was created");

    // The same checks guard changes to an existing queue, which keeps its attributes.
    let q = populated(&engine, "q", d());
    let attributes_before = q.attributes();
    let before = snapshot(&q);
    for (what, config) in &out_of_range {
        let err = engine.set_queue_attributes("q", config.clone()).expect_err(what);
        assert!(matches!(err, Error::InvalidArgument(_)), "set {what}: {err:?}");
    }
    let err = engine.set_queue_attributes("q", QueueConfig::fifo()).expect_err("type change");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = engine.set_queue_attributes("q", QueueConfig { redrive: redrive("nowhere", 3), ..d() }).expect_err("");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = engine.create_queue("q", QueueConfig { delay: s(5), ..d() }).expect_err("exists, other attributes");
    assert!(matches!(err, Error::AlreadyExists { kind: "queue", .. }), "{err:?}");
    assert_eq!(q.attributes(), attributes_before, "attributes unchanged");
    assert_unchanged(&q, &before, "rejected attribute changes");

    // Each bound itself is accepted.
    let at_bounds = [
        QueueConfig { visibility_timeout: s(12 * 3600), ..d() },
        QueueConfig { delay: s(900), ..d() },
        QueueConfig { retention: s(60), ..d() },
        QueueConfig { retention: s(14 * 86400), ..d() },
        QueueConfig { max_message_bytes: 1024, ..d() },
        QueueConfig { max_message_bytes: 16 << 20, ..d() },
        QueueConfig { receive_wait: s(20), ..d() },
        QueueConfig { redrive: redrive("dlq", 1), ..d() },
        QueueConfig { redrive: redrive("dlq", 1000), ..d() },
    ];
    for (i, config) in at_bounds.into_iter().enumerate() {
        engine.create_queue(&format!("edge-{i}"), config).expect("a bound is in range");
    }
}

#[test]
fn bad_sends_are_rejected_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig { max_message_bytes: 1024, ..QueueConfig::default() });
    engine.create_queue("f.fifo", QueueConfig { max_message_bytes: 1024, ..QueueConfig::fifo() }).expect("fifo");
    let f = engine.queue("f.fifo").expect("fifo");
    f.send(b"kept", fifo_options("g", "kept")).expect("fifo send");
    let (q_before, f_before) = (snapshot(&q), snapshot(&f));

    let plain = SendOptions::default;
    let with_attributes = |attributes: Attributes| SendOptions { attributes, ..SendOptions::default() };
    let string = |s: &str| AttributeValue::String(s.into());
    let number = |s: &str| AttributeValue::Number(s.into());
    let eleven: Attributes = (0..11).map(|i| (format!("a{i}"), string("v"))).collect();
    let big_attribute = one_attribute("blob", AttributeValue::Binary(vec![7u8; 1000].into()));
    let standard_cases: Vec<SendCase> = vec![
        ("body over the limit", vec![b'x'; 1025], plain(), |e| matches!(e, Error::TooLarge { .. })),
        ("body plus attributes over", vec![b'x'; 100], with_attributes(big_attribute), |e| {
            matches!(e, Error::TooLarge { .. })
        }),
        ("empty body", Vec::new(), plain(), |e| matches!(e, Error::InvalidArgument(_))),
        ("group on a standard queue", b"m".to_vec(), SendOptions { group: Some("g".into()), ..plain() }, |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("dedup id on a standard queue", b"m".to_vec(), SendOptions { dedup_id: Some("d".into()), ..plain() }, |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("delay 15 min + 1 s", b"m".to_vec(), SendOptions { delay: Some(Duration::from_secs(901)), ..plain() }, |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("Number 1e300", b"m".to_vec(), with_attributes(one_attribute("n", number("1e300"))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("Number that is no number", b"m".to_vec(), with_attributes(one_attribute("n", number("12abc"))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("11 attributes", b"m".to_vec(), with_attributes(eleven), |e| matches!(e, Error::InvalidArgument(_))),
        ("reserved AWS. prefix", b"m".to_vec(), with_attributes(one_attribute("AWS.trace", string("v"))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("reserved amazon. prefix", b"m".to_vec(), with_attributes(one_attribute("amazon.x", string("v"))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("empty String value", b"m".to_vec(), with_attributes(one_attribute("s", string(""))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        (
            "empty Binary value",
            b"m".to_vec(),
            with_attributes(one_attribute("b", AttributeValue::Binary(Vec::new().into()))),
            |e| matches!(e, Error::InvalidArgument(_)),
        ),
        ("attribute name with a space", b"m".to_vec(), with_attributes(one_attribute("a b", string("v"))), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
    ];
    for (what, body, options, expected) in standard_cases {
        let err = q.send(&body, options.clone()).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        // The same entry in a batch fails on its own.
        let results = q.send_batch(&[SendEntry { body: body.into(), options }]).expect("batch");
        assert!(results[0].as_ref().is_err_and(expected), "{what} in a batch: {:?}", results[0]);
        assert_unchanged(&q, &q_before, what);
    }

    let long_id = "i".repeat(129);
    let fifo_cases: Vec<(&str, SendOptions)> = vec![
        ("no group", SendOptions { dedup_id: Some("d".into()), ..plain() }),
        ("no dedup id without content-based dedup", SendOptions { group: Some("g".into()), ..plain() }),
        ("per-message delay", SendOptions { delay: Some(Duration::from_secs(5)), ..fifo_options("g", "d") }),
        ("zero per-message delay", SendOptions { delay: Some(Duration::ZERO), ..fifo_options("g", "d") }),
        ("group id of 129 characters", fifo_options(&long_id, "d")),
        ("dedup id of 129 characters", fifo_options("g", &long_id)),
        ("empty group id", fifo_options("", "d")),
        ("group id with a space", fifo_options("a b", "d")),
        ("dedup id that is not ASCII", fifo_options("g", "dé")),
    ];
    for (what, options) in fifo_cases {
        let err = f.send(b"m", options).expect_err(what);
        assert!(matches!(err, Error::InvalidArgument(_)), "FIFO {what}: {err:?}");
        assert_unchanged(&f, &f_before, what);
    }
    let err = f.send(&[b'x'; 1025], fifo_options("g", "big")).expect_err("oversize FIFO body");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let err = f.send(b"", fifo_options("g", "empty")).expect_err("empty FIFO body");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_unchanged(&f, &f_before, "rejected FIFO sends");
    // A rejected send does not take its deduplication id: the next good send with it is new.
    let sent = f.send(b"fresh", fifo_options("g", "empty")).expect("send");
    assert!(!sent.duplicate, "a rejected send's deduplication id was remembered");
}

#[test]
fn oversized_and_empty_batches_are_rejected_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig::default());
    let before = snapshot(&q);
    let entry = |body: &[u8]| SendEntry { body: body.to_vec().into(), options: SendOptions::default() };
    let eleven: Vec<SendEntry> = (0..11).map(|_| entry(b"m")).collect();
    assert!(matches!(q.send_batch(&eleven), Err(Error::InvalidArgument(_))), "11 entries");
    assert!(matches!(q.send_batch(&[]), Err(Error::InvalidArgument(_))), "no entry");
    assert_unchanged(&q, &before, "rejected send batches");
    let handle = receive(&q, 1).remove(0).receipt_handle;
    let before_handles = snapshot(&q);
    let handles: Vec<&str> = (0..11).map(|_| handle.as_str()).collect();
    assert!(matches!(q.delete_batch(&handles), Err(Error::InvalidArgument(_))), "11 deletes");
    assert!(matches!(q.delete_batch(&[]), Err(Error::InvalidArgument(_))), "no delete");
    let changes: Vec<(&str, Duration)> = (0..11).map(|_| (handle.as_str(), Duration::ZERO)).collect();
    assert!(matches!(q.change_visibility_batch(&changes), Err(Error::InvalidArgument(_))), "11 changes");
    assert!(matches!(q.change_visibility_batch(&[]), Err(Error::InvalidArgument(_))), "no change");
    assert_unchanged(&q, &before_handles, "rejected delete and visibility batches");
}

#[test]
fn batch_over_the_total_size_limit_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig::default());
    let before = snapshot(&q);
    // Each entry is within the 256 KiB message limit; together they are over the batch limit.
    let entries: Vec<SendEntry> =
        (0..3).map(|i| SendEntry { body: vec![b'a' + i; 100 << 10].into(), options: SendOptions::default() }).collect();
    match q.send_batch(&entries) {
        Err(Error::TooLarge { .. }) => {}
        Ok(results) => assert!(
            results.iter().all(|r| matches!(r, Err(Error::TooLarge { .. }))),
            "some entries of an oversized batch were stored: {:?}",
            results.iter().map(|r| r.as_ref().map(|_| "stored")).collect::<Vec<_>>()
        ),
        Err(other) => panic!("oversized batch: {other:?}"),
    }
    assert_unchanged(&q, &before, "an oversized batch");
}

#[test]
fn bad_receive_options_are_rejected_without_receiving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig::default());
    let before = snapshot(&q);
    let bad = [
        ("max 11", ReceiveOptions { max: 11, wait: Some(Duration::ZERO), ..ReceiveOptions::default() }),
        ("max usize::MAX", ReceiveOptions { max: usize::MAX, wait: Some(Duration::ZERO), ..ReceiveOptions::default() }),
        (
            "wait 20 s + 1 ms",
            ReceiveOptions { max: 1, wait: Some(Duration::from_millis(20_001)), ..ReceiveOptions::default() },
        ),
        (
            "visibility 12 h + 1 s",
            ReceiveOptions {
                max: 1,
                wait: Some(Duration::ZERO),
                visibility_timeout: Some(Duration::from_secs(12 * 3600 + 1)),
                ..ReceiveOptions::default()
            },
        ),
    ];
    for (what, options) in bad {
        let started = std::time::Instant::now();
        let err = q.receive(options).expect_err(what);
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: rejected only after waiting");
        assert_unchanged(&q, &before, what);
    }
    // `max: 0` is documented to mean 1 (SQS would reject it): never more than one message.
    let got = q.receive(ReceiveOptions { max: 0, wait: Some(Duration::ZERO), ..ReceiveOptions::default() }).expect("0");
    assert_eq!(got.len(), 1, "max 0 receives one message");
}

#[test]
fn bad_receipt_handles_are_rejected_for_delete_and_change_visibility() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig::default());
    let other = populated(&engine, "other", QueueConfig::default());
    let f = {
        engine.create_queue("f.fifo", QueueConfig::fifo()).expect("fifo");
        let f = engine.queue("f.fifo").expect("fifo");
        f.send(b"f", fifo_options("g", "1")).expect("send");
        f
    };
    let other_handle = receive(&other, 1).remove(0).receipt_handle;
    let fifo_handle = receive(&f, 1).remove(0).receipt_handle;

    // A stale handle: its message was received again after the visibility timeout.
    q.send(b"twice", SendOptions::default()).expect("send");
    clock.advance(Duration::from_secs(31));
    let mut all = Vec::new();
    loop {
        let got = receive(&q, 10);
        if got.is_empty() {
            break;
        }
        all.extend(got);
    }
    clock.advance(Duration::from_secs(31));
    let stale = all.iter().find(|m| &m.body[..] == b"twice").expect("twice").receipt_handle.clone();
    let fresh = receive(&q, 10);
    let current = fresh.iter().find(|m| &m.body[..] == b"first").expect("first again").clone();
    // A handle whose message is gone.
    let gone = fresh.iter().find(|m| &m.body[..] == b"second").expect("second").receipt_handle.clone();
    q.delete(&gone).expect("delete");
    // A handle of a queue that was deleted and created again under the same name.
    let recreated = {
        let r = populated(&engine, "again", QueueConfig::default());
        let h = receive(&r, 1).remove(0).receipt_handle;
        engine.delete_queue("again").expect("delete queue");
        h
    };
    let again = populated(&engine, "again", QueueConfig::default());
    // A handle of another data directory (another secret).
    let foreign = {
        let dir2 = tempfile::tempdir().expect("tempdir");
        let e2 = open(dir2.path(), &clock);
        let q2 = populated(&e2, "q", QueueConfig::default());
        receive(&q2, 1).remove(0).receipt_handle
    };

    let flip = |h: &str, at: usize| {
        let mut b = h.as_bytes().to_vec();
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).expect("ascii")
    };
    let h = current.receipt_handle.as_str();
    let forged: Vec<(&str, String)> = vec![
        ("MAC flipped", flip(h, h.len() - 1)),
        ("key flipped", flip(h, 12)),
        ("queue id flipped", flip(h, 3)),
        ("receive count flipped", flip(h, 28)),
        ("version flipped", flip(h, 1)),
        ("truncated by one", h[..h.len() - 1].to_string()),
        ("truncated to 20", h[..20].to_string()),
        ("extended", format!("{h}00")),
        ("empty", String::new()),
        ("not hex", "zz".repeat(h.len() / 2)),
        ("not ASCII", "é".repeat(h.len() / 2)),
        ("upper-case forged MAC", flip(&h.to_uppercase(), h.len() - 1)),
        ("made up", "00".repeat(h.len() / 2)),
    ];
    let mut bad: Vec<(&str, &Queue, String)> = forged.into_iter().map(|(w, s)| (w, &q, s)).collect();
    bad.extend([
        ("from another queue", &q, other_handle.clone()),
        ("used on another queue", &other, current.receipt_handle.clone()),
        ("from a FIFO queue", &q, fifo_handle),
        ("stale", &q, stale),
        ("of a deleted message", &q, gone),
        ("of a deleted queue of the same name", &again, recreated),
        ("of another data directory", &q, foreign),
    ]);
    let snapshots: Vec<(String, Snapshot)> =
        [&q, &other, &again].iter().map(|x| (x.name().to_string(), snapshot(x))).collect();
    let check_all = |what: &str| {
        for (name, before) in &snapshots {
            assert_unchanged(&engine.queue(name).expect("queue"), before, what);
        }
    };
    for (what, queue, handle) in &bad {
        let err = queue.delete(handle).expect_err(what);
        assert!(matches!(err, Error::InvalidReceiptHandle(_)), "delete with a handle {what}: {err:?}");
        let err = queue.change_visibility(handle, Duration::from_secs(10)).expect_err(what);
        assert!(matches!(err, Error::InvalidReceiptHandle(_)), "change visibility with a handle {what}: {err:?}");
        let results = queue.delete_batch(&[handle.as_str()]).expect("batch");
        assert!(matches!(results[0], Err(Error::InvalidReceiptHandle(_))), "batch delete {what}: {results:?}");
        let results = queue.change_visibility_batch(&[(handle.as_str(), Duration::ZERO)]).expect("batch");
        assert!(matches!(results[0], Err(Error::InvalidReceiptHandle(_))), "batch change {what}: {results:?}");
        check_all(what);
    }
    // A good handle with a visibility timeout over 12 hours.
    let err = q.change_visibility(h, Duration::from_secs(12 * 3600 + 1)).expect_err("over 12 h");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    check_all("a visibility change over 12 hours");
    // A good handle of a message whose visibility timeout already ran out.
    clock.advance(Duration::from_secs(30));
    let snapshots_now: Vec<Snapshot> = [&q].iter().map(|x| snapshot(x)).collect();
    let err = q.change_visibility(h, Duration::from_secs(10)).expect_err("not in flight");
    assert!(matches!(err, Error::MessageNotInflight(_)), "{err:?}");
    let results = q.change_visibility_batch(&[(h, Duration::from_secs(10))]).expect("batch");
    assert!(matches!(results[0], Err(Error::MessageNotInflight(_))), "{results:?}");
    assert_unchanged(&q, &snapshots_now[0], "a visibility change of a message not in flight");
    // The current handle still works after all that.
    q.delete(h).expect("the current handle deletes");
}

#[test]
fn a_deleted_queue_refuses_every_operation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let q = populated(&engine, "q", QueueConfig::default());
    let handle = receive(&q, 1).remove(0).receipt_handle;
    engine.delete_queue("q").expect("delete queue");
    assert!(matches!(engine.queue("q"), Err(Error::NotFound { kind: "queue", .. })));
    assert!(matches!(engine.delete_queue("q"), Err(Error::NotFound { .. })));
    assert!(matches!(q.send(b"m", SendOptions::default()), Err(Error::NotFound { .. })));
    let options = ReceiveOptions { max: 1, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
    assert!(matches!(q.receive(options), Err(Error::NotFound { .. })));
    assert!(matches!(q.delete(&handle), Err(Error::NotFound { .. })));
    assert!(matches!(q.purge(), Err(Error::NotFound { .. })));
    assert!(matches!(q.peek(10), Err(Error::NotFound { .. })));
}

#[test]
fn redrive_to_a_queue_of_the_other_type_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("dead", QueueConfig::default()).expect("dlq");
    let redrive = RedrivePolicy { dead_letter_queue: "dead".into(), max_receives: 1 };
    engine.create_queue("work", QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("work");
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("fifo");
    let work = engine.queue("work").expect("work");
    work.send(b"poison", SendOptions::default()).expect("send");
    assert_eq!(receive(&work, 1).len(), 1);
    clock.advance(Duration::from_secs(30));
    assert!(receive(&work, 1).is_empty(), "moved to the dead-letter queue");
    let (dead, fifo) = (engine.queue("dead").expect("dead"), engine.queue("f.fifo").expect("fifo"));
    let (dead_before, fifo_before) = (snapshot(&dead), snapshot(&fifo));
    let result = engine.redrive("dead", Some("f.fifo"));
    assert!(matches!(result, Err(Error::InvalidArgument(_))), "standard to FIFO: {result:?}");
    assert_unchanged(&dead, &dead_before, "a redrive to a FIFO queue");
    assert_unchanged(&fifo, &fifo_before, "a redrive from a standard queue");
}
