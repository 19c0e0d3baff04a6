//! A catalogue of hostile input, at the library and at the command line: each case must get a
//! typed `weir::Error` (library) or a non-zero exit with a `weir: ...` message (CLI), and leave
//! the data as it was: every file under the test's directory (the data directory and its
//! parent, so a `..` that escaped would show) has the same bytes after as before, lock files
//! aside.
//!
//! What `tests/queue_bad_input.rs` covers for queues through the library (names, attributes,
//! sends, batches, receives and receipt handles) is not repeated; this file covers streams,
//! topics, the CLI and the directory itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use weir::log::fault::{FaultyFs, WriteFault};
use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions, SendOptions};
use weir::stream::{ConsumerConfig, PutRecord, StartingPosition};
use weir::topic::{Endpoint, FilterScope, PublishEntry, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Error, Options};

#[path = "common/cli.rs"]
mod cli_support;

/// The system clock: the CLI, which the tests run beside the library, uses it too. Opens wait a
/// little for the lock: a child process another test is starting holds this process's open files
/// (the lock file's included) between its fork and its exec.
fn options() -> Options {
    Options { background: false, lock_wait: Duration::from_secs(5), ..Options::default() }
}

/// A parent directory holding the data directory `data`, set up with a stream `s` (two
/// shards, some records), queues `q` and `q2` (some messages), FIFO queue `f.fifo`, topic `t`
/// (raw subscription into `q`) and FIFO topic `ft.fifo`.
struct Fixture {
    tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let engine = Engine::open(&data, options()).expect("open");
        engine.create_stream("s", 2, None).expect("stream");
        let stream = engine.stream("s").expect("stream");
        for i in 0..6 {
            stream.put(format!("key-{i}").as_bytes(), format!("record {i}").as_bytes()).expect("put");
        }
        for q in ["q", "q2"] {
            engine.create_queue(q, QueueConfig::default()).expect("queue");
            let queue = engine.queue(q).expect("queue");
            for i in 0..3 {
                queue.send(format!("{q} message {i}").as_bytes(), SendOptions::default()).expect("send");
            }
        }
        engine.create_queue("f.fifo", QueueConfig::fifo()).expect("fifo queue");
        engine.create_topic("t", TopicConfig::default()).expect("topic");
        engine.create_topic("ft.fifo", TopicConfig { fifo: true, content_based_dedup: true }).expect("fifo topic");
        let raw = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
        engine.subscribe("t", Endpoint::Queue("q".into()), raw).expect("subscribe");
        engine.topic("t").expect("topic").publish(b"published once", PublishOptions::default()).expect("publish");
        drop(engine);
        Fixture { tmp, data }
    }

    fn open(&self) -> Engine {
        Engine::open(&self.data, options()).expect("open the fixture")
    }

    /// Every file under the fixture's parent directory, lock files aside, with its bytes; and
    /// every directory (with no bytes).
    fn snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries.flatten() {
                let path = entry.path();
                let rel = path.strip_prefix(root).expect("relative").to_path_buf();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    out.insert(rel, None);
                    walk(root, &path, out);
                } else if entry.file_name() != "LOCK" {
                    out.insert(rel, Some(std::fs::read(&path).unwrap_or_default()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.tmp.path(), self.tmp.path(), &mut out);
        out
    }

    fn assert_unchanged(&self, before: &BTreeMap<PathBuf, Option<Vec<u8>>>, what: &str) {
        let after = self.snapshot();
        let added: Vec<&PathBuf> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        let gone: Vec<&PathBuf> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        let changed: Vec<&PathBuf> =
            before.iter().filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v)).map(|(k, _)| k).collect();
        assert!(
            added.is_empty() && gone.is_empty() && changed.is_empty(),
            "{what} changed the data: added {added:?}, removed {gone:?}, changed {changed:?}"
        );
    }
}

/// Names no stream, queue or topic may have.
fn hostile_names() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("slash", "a/b".into()),
        ("root", "/".into()),
        ("absolute", "/etc/passwd".into()),
        ("dot", ".".into()),
        ("dot-dot", "..".into()),
        ("escape", "../escape".into()),
        ("deep escape", "../../../../tmp/x".into()),
        ("backslash", "a\\b".into()),
        ("NUL", "a\0b".into()),
        ("10 KB", "n".repeat(10 * 1024)),
        ("fullwidth q", "ｑueue".into()),
        ("Cyrillic a", "str\u{0430}am".into()),
        ("Cyrillic dze", "\u{0455}tream".into()),
        ("zero-width space", "name\u{200b}".into()),
        ("right-to-left override", "\u{202e}eman".into()),
        ("newline", "name\nother".into()),
        ("space", "with space".into()),
    ]
}

/// Which error a case must get.
type Expect = fn(&Error) -> bool;

fn is_invalid_name(e: &Error, kind: &str) -> bool {
    matches!(e, Error::InvalidName { kind: k, .. } if *k == kind)
}

/// A shortened name for messages.
fn shown(name: &str) -> String {
    name.chars().take(16).collect::<String>().escape_debug().to_string()
}

#[test]
fn hostile_stream_names_are_rejected_by_every_stream_call() {
    let fx = Fixture::new();
    let engine = fx.open();
    let before = fx.snapshot();
    for (label, name) in hostile_names() {
        let what = format!("stream name {label} {:?}", shown(&name));
        let err = engine.create_stream(&name, 1, None).expect_err(&what);
        assert!(is_invalid_name(&err, "stream"), "{what}: create: {err:?}");
        assert!(err.to_string().len() < 400, "{what}: the error echoes the whole name");
        for (call, result) in [
            ("stream", engine.stream(&name).map(|_| ())),
            ("describe", engine.describe_stream(&name).map(|_| ())),
            ("delete", engine.delete_stream(&name)),
            ("split", engine.split_shard(&name, 0, None).map(|_| ())),
            ("merge", engine.merge_shards(&name, 0, 1).map(|_| ())),
        ] {
            let err = result.expect_err(&what);
            assert!(is_invalid_name(&err, "stream"), "{what}: {call}: {err:?}");
        }
        // Consumer groups and workers follow the stream rules.
        let stream = engine.stream("s").expect("stream");
        if !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']) {
            continue;
        }
        for (group, worker) in [(name.as_str(), "w"), ("g", name.as_str())] {
            let err = stream.consumer(group, worker, ConsumerConfig::default()).expect_err(&what);
            assert!(matches!(err, Error::InvalidArgument(_)), "{what}: consumer: {err:?}");
        }
    }
    assert_eq!(engine.list_streams(), vec!["s".to_string()]);
    drop(engine);
    fx.assert_unchanged(&before, "hostile stream names");
}

#[test]
fn hostile_topic_names_are_rejected_by_every_topic_call() {
    let fx = Fixture::new();
    let engine = fx.open();
    let before = fx.snapshot();
    for (label, name) in hostile_names() {
        let what = format!("topic name {label} {:?}", shown(&name));
        for config in [TopicConfig::default(), TopicConfig { fifo: true, content_based_dedup: false }] {
            let err = engine.create_topic(&name, config).expect_err(&what);
            assert!(is_invalid_name(&err, "topic"), "{what}: create: {err:?}");
        }
        for (call, result) in [
            ("topic", engine.topic(&name).map(|_| ())),
            ("delete", engine.delete_topic(&name)),
            ("subscriptions", engine.list_subscriptions(&name).map(|_| ())),
            (
                "subscribe",
                engine.subscribe(&name, Endpoint::Queue("q".into()), SubscribeOptions::default()).map(|_| ()),
            ),
        ] {
            let err = result.expect_err(&what);
            assert!(is_invalid_name(&err, "topic"), "{what}: {call}: {err:?}");
        }
        // The same name as the queue a subscription delivers to.
        let err = engine.subscribe("t", Endpoint::Queue(name.clone()), SubscribeOptions::default()).expect_err(&what);
        assert!(is_invalid_name(&err, "queue"), "{what}: subscribe to queue: {err:?}");
        // A subscription id is looked up, never used as a path.
        let err = engine.unsubscribe(&name).expect_err(&what);
        assert!(matches!(err, Error::NotFound { .. }), "{what}: unsubscribe: {err:?}");
    }
    assert_eq!(engine.list_topics(), vec!["ft.fifo".to_string(), "t".to_string()]);
    drop(engine);
    fx.assert_unchanged(&before, "hostile topic names");
}

#[test]
fn oversize_and_malformed_stream_puts_store_nothing() {
    let fx = Fixture::new();
    let engine = fx.open();
    let stream = engine.stream("s").expect("stream");
    let before = fx.snapshot();
    let big = vec![b'x'; (1 << 20) + 1];
    let mib = vec![b'y'; 1 << 20];
    let long_key = vec![b'k'; 257];
    let ok = PutRecord { partition_key: b"fine", data: b"fine", explicit_hash_key: None };
    let many = vec![ok; 501];
    let heavy: Vec<PutRecord<'_>> = (0..6)
        .map(|_| PutRecord { partition_key: b"k", data: &mib[..(1 << 20) - 1], explicit_hash_key: None })
        .collect();
    let cases: Vec<(&str, Vec<PutRecord<'_>>, Expect)> = vec![
        ("data over 1 MiB", vec![PutRecord { partition_key: b"k", data: &big, explicit_hash_key: None }], |e| {
            matches!(e, Error::TooLarge { .. })
        }),
        (
            "key plus data over 1 MiB",
            vec![PutRecord { partition_key: b"k", data: &mib, explicit_hash_key: None }],
            |e| matches!(e, Error::TooLarge { .. }),
        ),
        ("257-byte key", vec![PutRecord { partition_key: &long_key, data: b"d", explicit_hash_key: None }], |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("empty key", vec![PutRecord { partition_key: b"", data: b"d", explicit_hash_key: None }], |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("empty batch", Vec::new(), |e| matches!(e, Error::InvalidArgument(_))),
        ("501 records", many, |e| matches!(e, Error::InvalidArgument(_))),
        ("6 MiB batch", heavy, |e| matches!(e, Error::TooLarge { .. })),
        (
            "one bad record among good ones",
            vec![ok, ok, PutRecord { partition_key: b"", data: b"d", explicit_hash_key: None }, ok],
            |e| matches!(e, Error::InvalidArgument(_)),
        ),
    ];
    for (what, records, expected) in cases {
        let err = stream.put_batch(&records).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
    }
    let err = stream.put(&long_key, b"d").expect_err("long key");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    drop(stream);
    drop(engine);
    fx.assert_unchanged(&before, "oversize stream puts");
}

#[test]
fn oversize_and_malformed_publishes_store_nothing() {
    let fx = Fixture::new();
    let engine = fx.open();
    let topic = engine.topic("t").expect("topic");
    let fifo = engine.topic("ft.fifo").expect("fifo topic");
    let before = fx.snapshot();
    let big = vec![b'b'; (256 << 10) + 1];
    let attr = |k: &str, v: AttributeValue| PublishOptions {
        attributes: [(k.to_string(), v)].into_iter().collect(),
        ..PublishOptions::default()
    };
    let eleven: PublishOptions = PublishOptions {
        attributes: (0..11).map(|i| (format!("a{i}"), AttributeValue::String("v".into()))).collect(),
        ..PublishOptions::default()
    };
    let cases: Vec<(&str, &[u8], PublishOptions, Expect)> = vec![
        ("body over 256 KiB", &big, PublishOptions::default(), |e| matches!(e, Error::TooLarge { .. })),
        ("empty body", b"", PublishOptions::default(), |e| matches!(e, Error::InvalidArgument(_))),
        ("body not UTF-8", b"\xff\xfe\x00", PublishOptions::default(), |e| matches!(e, Error::InvalidArgument(_))),
        (
            "subject over 100 characters",
            b"body",
            PublishOptions { subject: Some("s".repeat(101)), ..PublishOptions::default() },
            |e| matches!(e, Error::InvalidArgument(_)),
        ),
        ("eleven attributes", b"body", eleven, |e| matches!(e, Error::InvalidArgument(_))),
        ("a Number that is not one", b"body", attr("n", AttributeValue::Number("12abc".into())), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("a Number out of range", b"body", attr("n", AttributeValue::Number("1e300".into())), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        ("an empty attribute name", b"body", attr("", AttributeValue::String("v".into())), |e| {
            matches!(e, Error::InvalidArgument(_))
        }),
        (
            "a group on a standard topic",
            b"body",
            PublishOptions { group: Some("g".into()), ..PublishOptions::default() },
            |e| matches!(e, Error::InvalidArgument(_)),
        ),
    ];
    for (what, body, options, expected) in cases {
        let err = topic.publish(body, options).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
    }
    let err = fifo.publish(b"no group", PublishOptions::default()).expect_err("FIFO without group");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    for n in [0, 11] {
        let entries: Vec<PublishEntry> = (0..n)
            .map(|i| PublishEntry { body: format!("entry {i}").into(), options: PublishOptions::default() })
            .collect();
        let err = topic.publish_batch(&entries).expect_err("batch size");
        assert!(matches!(err, Error::InvalidArgument(_)), "batch of {n}: {err:?}");
    }
    drop((topic, fifo, engine));
    fx.assert_unchanged(&before, "bad publishes");
}

#[test]
fn stream_and_topic_arguments_out_of_range_are_rejected() {
    let fx = Fixture::new();
    let engine = fx.open();
    let before = fx.snapshot();
    let hour = Duration::from_secs(3600);
    let invalid = |what: &str, r: Result<(), Error>| {
        let err = r.expect_err(what);
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
    };
    invalid("0 shards", engine.create_stream("new", 0, None));
    invalid("1025 shards", engine.create_stream("new", 1025, None));
    invalid("retention under 24 h", engine.create_stream("new", 1, Some(hour * 23)));
    invalid("retention over 365 days", engine.create_stream("new", 1, Some(hour * 8761)));
    invalid(
        "content dedup on a standard topic",
        engine.create_topic("new", TopicConfig { fifo: false, content_based_dedup: true }),
    );
    invalid("split at the shard's own start", engine.split_shard("s", 0, Some(0)).map(|_| ()));
    invalid("split past the shard's end", engine.split_shard("s", 0, Some(u128::MAX)).map(|_| ()));
    invalid("merge a shard with itself", engine.merge_shards("s", 0, 0).map(|_| ()));
    let stream = engine.stream("s").expect("stream");
    invalid("iterator past the end", stream.iterator(0, StartingPosition::AtSequence(1_000_000)).map(|_| ()));
    invalid("iterator after u64::MAX", stream.iterator(0, StartingPosition::AfterSequence(u64::MAX)).map(|_| ()));
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
    invalid("read limit 0", it.next_batch(0).map(|_| ()));
    invalid("read limit 10,001", it.next_batch(10_001).map(|_| ()));
    invalid(
        "lease of 0 ms",
        stream.consumer("g", "w", ConsumerConfig { lease_ms: 0, ..ConsumerConfig::default() }).map(|_| ()),
    );
    let mut consumer = stream.consumer("g", "w", ConsumerConfig::default()).expect("consumer");
    invalid("checkpoint without the lease", consumer.checkpoint(1, 0));
    consumer.poll(1).expect("poll");
    invalid("checkpoint past the end", consumer.checkpoint(consumer.held_shards()[0], 1_000_000));
    invalid("poll limit 0", consumer.poll(0).map(|_| ()));
    drop(consumer);
    assert!(matches!(engine.split_shard("s", 99, None), Err(Error::NotFound { .. })), "split of a missing shard");
    assert!(matches!(stream.iterator(99, StartingPosition::TrimHorizon), Err(Error::NotFound { .. })), "missing shard");
    // A FIFO topic feeds FIFO queues only, and the other way round.
    invalid(
        "FIFO topic into a standard queue",
        engine.subscribe("ft.fifo", Endpoint::Queue("q".into()), SubscribeOptions::default()).map(|_| ()),
    );
    invalid(
        "standard topic into a FIFO queue",
        engine.subscribe("t", Endpoint::Queue("f.fifo".into()), SubscribeOptions::default()).map(|_| ()),
    );
    assert!(matches!(
        engine.subscribe("t", Endpoint::Queue("nowhere".into()), SubscribeOptions::default()),
        Err(Error::NotFound { .. })
    ));
    drop(stream);
    drop(engine);
    fx.assert_unchanged(&before, "arguments out of range");
}

/// `{"a":{"a":...{"a":["x"]}...}}` nested `depth` objects deep.
fn deep_object(depth: usize) -> String {
    format!("{}[\"x\"]{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn a_filter_policy_nested_ten_thousand_deep_is_rejected() {
    let fx = Fixture::new();
    let engine = fx.open();
    let before = fx.snapshot();
    let arrays = format!("{{\"a\":{}\"x\"{}}}", "[".repeat(10_000), "]".repeat(10_000));
    for (what, policy) in
        [("objects", deep_object(10_000)), ("arrays", arrays), ("just over the limit", deep_object(40))]
    {
        for scope in [FilterScope::MessageAttributes, FilterScope::MessageBody] {
            let options = SubscribeOptions {
                filter_policy: Some(policy.clone()),
                filter_scope: scope,
                ..SubscribeOptions::default()
            };
            let err = engine.subscribe("t", Endpoint::Queue("q2".into()), options).expect_err(what);
            assert!(matches!(err, Error::InvalidArgument(_)), "{what} {scope:?}: {err:?}");
            assert!(err.to_string().len() < 1000, "{what}: the error echoes the policy");
        }
    }
    assert_eq!(engine.list_subscriptions("t").expect("subscriptions").len(), 1, "no subscription added");
    drop(engine);
    fx.assert_unchanged(&before, "deep filter policies");

    // A deep body meets a body-scoped policy at publish: it just does not match.
    let engine = fx.open();
    let options = SubscribeOptions {
        filter_policy: Some(r#"{"a":["x"]}"#.into()),
        filter_scope: FilterScope::MessageBody,
        raw: true,
        ..SubscribeOptions::default()
    };
    engine.subscribe("t", Endpoint::Queue("q2".into()), options).expect("a body-scoped subscription");
    let result = engine.topic("t").expect("topic").publish(deep_object(10_000).as_bytes(), PublishOptions::default());
    let result = result.expect("a deep body is published (the raw subscription into q takes it)");
    assert_eq!((result.delivered, result.filtered), (1, 1), "the body-scoped subscription filters it out");
}

#[test]
fn a_data_directory_that_is_a_file_is_refused() {
    let fx = Fixture::new();
    let file = fx.tmp.path().join("not-a-directory");
    std::fs::write(&file, b"precious bytes").expect("write");
    let before = fx.snapshot();
    match Engine::open(&file, options()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory, "{source}"),
        other => panic!("open of a file: {other:?}"),
    }
    // Its parent path component being a file fails too.
    assert!(matches!(Engine::open(file.join("below"), options()), Err(Error::Io { .. })));
    for args in [vec!["stream", "list"], vec!["queue", "list"], vec!["topic", "list"], vec!["demo"]] {
        let out = weir(&file, &args);
        assert_failed(&out, &format!("{args:?} on a file"));
    }
    let out = weir_plain(&["salvage", file.to_str().expect("utf-8")]);
    assert_failed(&out, "salvage of a file");
    fx.assert_unchanged(&before, "a data directory that is a file");
    assert_eq!(std::fs::read(&file).expect("read"), b"precious bytes");
}

#[test]
fn an_unreadable_data_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let before = fx.snapshot();
    let original = std::fs::metadata(&fx.data).expect("stat").permissions();
    std::fs::set_permissions(&fx.data, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    // Root (CAP_DAC_OVERRIDE) reads through mode 000; find out which this test is.
    let privileged = std::fs::read_dir(&fx.data).is_ok();
    let library = Engine::open(&fx.data, options()).map(|engine| engine.list_queues());
    let cli = weir(&fx.data, &["queue", "list"]);
    std::fs::set_permissions(&fx.data, original).expect("chmod back");
    if privileged {
        // Permissions do not stop a privileged process: the directory opens and serves as usual.
        let queues = library.expect("a privileged process opens a mode-000 directory");
        assert_eq!(queues, vec!["f.fifo".to_string(), "q".into(), "q2".into()]);
        assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    } else {
        match library {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied, "{source}")
            }
            other => panic!("open of a mode-000 directory: {other:?}"),
        }
        assert_failed(&cli, "queue list on a mode-000 directory");
        assert!(
            String::from_utf8_lossy(&cli.stderr).contains("ermission denied"),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
    }
    fx.assert_unchanged(&before, "an unreadable data directory");
}

#[test]
fn a_full_disk_fails_the_write_and_keeps_what_was_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("lock directory");
    let fs = Arc::new(FaultyFs::new());
    fs.create_durable_dir_all(&data);
    let options = || Options { vfs: fs.clone(), durability: Durability::Always, ..options() };
    {
        let engine = Engine::open(&data, options()).expect("open on FaultyFs");
        engine.create_stream("s", 1, None).expect("stream");
        engine.create_queue("q", QueueConfig::default()).expect("queue");
        let stream = engine.stream("s").expect("stream");
        for i in 0..5 {
            stream.put(b"k", format!("acknowledged {i}").as_bytes()).expect("put");
        }
        engine.queue("q").expect("queue").send(b"acknowledged message", SendOptions::default()).expect("send");
        // The disk fills up: 100 more bytes fit.
        fs.fail_writes_after_bytes(100, WriteFault::Enospc);
        // Bytes that do not compress, so the frame really is 4 KiB.
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let err = stream.put(b"k", &noise).expect_err("a put on a full disk");
        match &err {
            Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {err}"),
            other => panic!("a put on a full disk: {other:?}"),
        }
        assert!(
            matches!(stream.put(b"k", b"small"), Err(Error::Poisoned { .. } | Error::Io { .. })),
            "the log refuses"
        );
        let err = engine.queue("q").expect("queue").send(&noise, SendOptions::default()).expect_err("send");
        assert!(matches!(err, Error::Io { .. } | Error::Poisoned { .. }), "{err:?}");
        let err = engine.create_queue("new", QueueConfig::default()).expect_err("catalog write on a full disk");
        assert!(matches!(err, Error::Io { .. } | Error::Poisoned { .. }), "{err:?}");
        assert!(engine.queue("new").is_err(), "a queue whose creation failed does not exist");
    }
    // Space again: everything acknowledged is there, nothing that failed is.
    fs.clear_faults();
    let engine = Engine::open(&data, options()).expect("reopen");
    let stream = engine.stream("s").expect("stream");
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
    let records = it.next_batch(100).expect("read").records;
    let data_read: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect();
    assert_eq!(data_read, (0..5).map(|i| format!("acknowledged {i}")).collect::<Vec<_>>());
    assert!(engine.queue("new").is_err(), "the failed create left no queue behind");
    let got = engine
        .queue("q")
        .expect("queue")
        .receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() })
        .expect("receive");
    assert_eq!(got.iter().map(|m| &m.body[..]).collect::<Vec<_>>(), vec![&b"acknowledged message"[..]]);
}

#[test]
fn a_second_process_on_the_same_directory_is_refused() {
    let fx = Fixture::new();
    let engine = fx.open();
    let before = fx.snapshot();
    // In this process: the lock is per open file, so a second open here is refused too.
    match Engine::open(&fx.data, Options { lock_wait: Duration::ZERO, ..options() }) {
        Err(Error::Locked { holder, .. }) => {
            assert_eq!(holder, Some(format!("pid {}", std::process::id())), "the error names the holder")
        }
        other => panic!("a second open: {other:?}"),
    }
    for args in [
        vec!["stream", "list"],
        vec!["stream", "put", "s", "--key", "k", "data"],
        vec!["queue", "send", "q", "body"],
        vec!["topic", "publish", "t", "body"],
        vec!["queue", "create", "brand-new"],
    ] {
        let out = weir_cmd(&fx.data).args(&args).env("WEIR_LOCK_WAIT_MS", "200").output().expect("run weir");
        let stderr = assert_failed(&out, &format!("{args:?} while locked"));
        assert!(stderr.contains("locked by another process"), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("pid {}", std::process::id())), "{args:?}: names the holder: {stderr}");
    }
    fx.assert_unchanged(&before, "a second process");
    drop(engine);
}

// ----- the command line -----

fn weir_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("--data").arg(data).env_remove("WEIR_DATA").env("WEIR_LOCK_WAIT_MS", "2000");
    cmd
}

fn weir(data: &Path, args: &[&str]) -> Output {
    weir_cmd(data).args(args).output().expect("run weir")
}

fn weir_plain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).env_remove("WEIR_DATA").output().expect("run weir")
}

fn weir_stdin(data: &Path, args: &[&str], input: &[u8]) -> Output {
    cli_support::run_with_stdin(weir_cmd(data).args(args), input)
}

/// Asserts a non-zero exit with a message on stderr; returns the message.
fn assert_failed(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what}: exited 0 (stdout {})", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.code().is_some(), "{what}: killed by a signal: {:?}", out.status);
    assert!(!stderr.trim().is_empty(), "{what}: failed without a message");
    assert!(stderr.len() < 4000, "{what}: a message of {} bytes", stderr.len());
    stderr
}

#[test]
fn the_cli_rejects_hostile_names_for_streams_queues_and_topics() {
    let fx = Fixture::new();
    let before = fx.snapshot();
    // A NUL byte cannot be passed in an argument at all; every other name goes through.
    let names: Vec<(&str, String)> = hostile_names().into_iter().filter(|(_, n)| !n.contains('\0')).collect();
    for (label, name) in &names {
        let n = name.as_str();
        let cases: Vec<Vec<&str>> = vec![
            vec!["stream", "create", n, "--shards", "1"],
            vec!["stream", "describe", n],
            vec!["stream", "delete", n],
            vec!["stream", "put", n, "--key", "k", "data"],
            vec!["stream", "read", n, "--shard", "0", "--from", "trim-horizon"],
            vec!["stream", "consume", "s", "--group", n, "--limit", "1"],
            vec!["queue", "create", n],
            vec!["queue", "create", n, "--fifo"],
            vec!["queue", "send", n, "body"],
            vec!["queue", "receive", n],
            vec!["queue", "purge", n],
            vec!["queue", "delete-queue", n],
            vec!["queue", "redrive", n],
            vec!["topic", "create", n],
            vec!["topic", "publish", n, "body"],
            vec!["topic", "subscribe", n, "q"],
            vec!["topic", "subscribe", "t", n],
            vec!["topic", "delete-topic", n],
        ];
        for args in cases {
            if name.is_empty() && args.contains(&"--group") {
                continue; // clap reads an empty --group as missing; the library case covers it
            }
            let out = weir(&fx.data, &args);
            let what = format!("{label}: weir {}", args.iter().map(|a| shown(a)).collect::<Vec<_>>().join(" "));
            let stderr = assert_failed(&out, &what);
            assert!(stderr.starts_with("weir: ") || stderr.starts_with("error: "), "{what}: {stderr}");
        }
    }
    // Not UTF-8 at all.
    use std::os::unix::ffi::OsStrExt;
    let raw = std::ffi::OsStr::from_bytes(b"bad\xffname");
    for sub in [["stream", "describe"], ["queue", "purge"], ["topic", "delete-topic"]] {
        let out = weir_cmd(&fx.data).args(sub).arg(raw).output().expect("run weir");
        assert_failed(&out, &format!("{sub:?} with a name that is not UTF-8"));
    }
    fx.assert_unchanged(&before, "hostile names at the CLI");
    // And a name check never creates the data directory.
    let fresh = fx.tmp.path().join("never-created");
    for args in [
        vec!["queue", "create", "../x"],
        vec!["topic", "create", "a/b"],
        vec!["stream", "create", "..", "--shards", "1"],
    ] {
        assert_failed(&weir(&fresh, &args), &format!("{args:?}"));
    }
    assert!(!fresh.exists(), "a rejected name created the data directory");
}

#[test]
fn the_cli_rejects_forged_truncated_and_cross_queue_receipt_handles() {
    let fx = Fixture::new();
    let handle_of = |q: &str| -> String {
        let out = weir(&fx.data, &["queue", "receive", q]);
        assert!(out.status.success(), "receive: {}", String::from_utf8_lossy(&out.stderr));
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        line["receipt_handle"].as_str().expect("receipt handle").to_string()
    };
    let own = handle_of("q");
    let other = handle_of("q2");
    let before = fx.snapshot();
    let mut forged = own.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("hex");
    let cases = [
        ("forged MAC", forged),
        ("truncated", own[..own.len() - 2].to_string()),
        ("from another queue", other.clone()),
        ("not hex", "zz".repeat(own.len() / 2)),
        ("an earlier version's (format 1)", format!("01{}", "0".repeat(64))),
        ("empty", String::new()),
        ("10 KB", "a".repeat(10 * 1024)),
        ("one character more", format!("{own}0")),
    ];
    for (what, handle) in &cases {
        for args in [vec!["queue", "delete", "q", handle], vec!["queue", "change-visibility", "q", handle, "0"]] {
            let stderr = assert_failed(&weir(&fx.data, &args), &format!("{what}: {}", args[1]));
            assert!(stderr.contains("receipt handle"), "{what}: {stderr}");
        }
    }
    // A handle is also refused by a queue that does not exist.
    let stderr = assert_failed(&weir(&fx.data, &["queue", "delete", "nowhere", &own]), "missing queue");
    assert!(stderr.contains("does not exist"), "{stderr}");
    fx.assert_unchanged(&before, "bad receipt handles at the CLI");
    // The real handles still work afterwards.
    assert!(weir(&fx.data, &["queue", "delete", "q", &own]).status.success());
    assert!(weir(&fx.data, &["queue", "delete", "q2", &other]).status.success());
}

#[test]
fn the_cli_rejects_out_of_range_attributes_and_oversize_input() {
    let fx = Fixture::new();
    let before = fx.snapshot();
    let subject = "s".repeat(101);
    let cases: Vec<Vec<&str>> = vec![
        vec!["queue", "create", "new", "--visibility-timeout", "43201"],
        vec!["queue", "create", "new", "--delay", "901"],
        vec!["queue", "create", "new", "--retention", "59"],
        vec!["queue", "create", "new", "--max-message-size", "1023"],
        vec!["queue", "create", "new", "--max-message-size", "99999999999"],
        vec!["queue", "create", "new", "--receive-wait", "21"],
        vec!["queue", "create", "new", "--dead-letter", "q", "--max-receives", "0"],
        vec!["queue", "create", "new", "--visibility-timeout", "-1"],
        vec!["queue", "create", "new", "--visibility-timeout", "18446744073709551616"],
        vec!["queue", "create", "new", "--content-dedup"],
        vec!["queue", "create", "q", "--visibility-timeout", "5"],
        vec!["queue", "receive", "q", "--max", "11"],
        vec!["queue", "receive", "q", "--wait", "21"],
        vec!["queue", "receive", "q", "--visibility-timeout", "43201"],
        vec!["queue", "change-visibility", "q", "handle", "43201"],
        vec!["queue", "send", "q", "body", "--delay", "901"],
        vec!["queue", "send", "q", "body", "--attr", "novalue"],
        vec!["queue", "send", "q", ""],
        vec!["queue", "send", "f.fifo", "no group"],
        vec!["stream", "create", "new", "--shards", "0"],
        vec!["stream", "create", "new", "--shards", "1025"],
        vec!["stream", "create", "new", "--shards", "1", "--retention-hours", "23"],
        vec!["stream", "create", "new", "--shards", "1", "--retention-hours", "8761"],
        vec!["stream", "read", "s", "--shard", "0", "--from", "at:99999999"],
        vec!["stream", "read", "s", "--shard", "0", "--from", "sideways"],
        vec!["stream", "read", "s", "--shard", "7", "--from", "trim-horizon"],
        vec!["stream", "read", "s", "--shard", "0", "--from", "trim-horizon", "--limit", "0"],
        vec!["stream", "put", "s", "--key", "", "data"],
        vec!["stream", "split", "s", "--shard", "0", "--at", "0"],
        vec!["stream", "merge", "s", "--shard", "0", "--adjacent", "0"],
        vec!["topic", "create", "new", "--content-dedup"],
        vec!["topic", "publish", "t", "body", "--attr-number", "n=twelve"],
        vec!["topic", "publish", "t", "body", "--subject", &subject],
        vec!["topic", "publish", "ft.fifo", "no group"],
        vec!["topic", "subscribe", "t", "q2", "--filter-policy", "{not json"],
        vec!["topic", "subscribe", "t", "q2", "--filter-policy", "[]"],
        vec!["topic", "subscribe", "t", "f.fifo"],
        vec!["topic", "unsubscribe", "sub-999999"],
    ];
    for args in &cases {
        assert_failed(&weir(&fx.data, args), &format!("weir {}", args.join(" ")));
    }
    let deep = deep_object(10_000);
    let stderr =
        assert_failed(&weir(&fx.data, &["topic", "subscribe", "t", "q2", "--filter-policy", &deep]), "deep policy");
    assert!(stderr.starts_with("weir: ") && stderr.contains("filter policy"), "{stderr}");
    // Oversize input on stdin (an argument cannot be over 128 KiB): one line each, stored nowhere.
    let mut line = vec![b'x'; (256 << 10) + 1];
    line.push(b'\n');
    let mut record = vec![b'r'; (1 << 20) + 1];
    record.push(b'\n');
    for (args, input) in [
        (vec!["queue", "send", "q"], &line),
        (vec!["topic", "publish", "t"], &line),
        (vec!["stream", "put", "s", "--key", "k"], &record),
    ] {
        let out = weir_stdin(&fx.data, &args, input);
        let stderr = assert_failed(&out, &format!("{args:?} with an oversize line"));
        assert!(stderr.contains("bytes"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: something was stored: {}", String::from_utf8_lossy(&out.stdout));
    }
    fx.assert_unchanged(&before, "out-of-range attributes at the CLI");
}
