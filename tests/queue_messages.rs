//! What a message carries besides its body, as SQS returns it: system attributes (trace header,
//! sender id, deduplication id, the queue a dead-lettered message came from), message
//! attributes with their exact data types (custom suffixes included), and FIFO deduplication
//! per message group. Each survives a reopen and maintenance's compaction, which rewrites
//! messages.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir::queue::{
    AttributeValue, Attributes, DedupScope, FifoThroughputLimit, QueueConfig, ReceiveOptions, ReceivedMessage,
    SendOptions,
};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    // Small segments: maintenance compacts and deletes segments as messages are rewritten.
    Engine::open(dir, common::test_options(Arc::clone(clock), 2048)).expect("open")
}

fn receive(engine: &Engine, queue: &str, max: usize) -> Vec<ReceivedMessage> {
    let options = ReceiveOptions {
        max,
        wait: Some(Duration::ZERO),
        visibility_timeout: Some(Duration::ZERO),
        ..Default::default()
    };
    engine.queue(queue).expect("queue").receive(options).expect("receive")
}

fn custom_attributes() -> Attributes {
    let v = |t: &str, b: &[u8]| AttributeValue::new(t, Bytes::copy_from_slice(b)).expect(t);
    [
        ("count".to_string(), v("Number.int", b"42")),
        ("doc".to_string(), v("String.json", br#"{"a":1}"#)),
        ("image".to_string(), v("Binary.gif", &[0x47, 0x49, 0x46, 0xff])),
        ("plain".to_string(), v("String", b"text")),
    ]
    .into_iter()
    .collect()
}

#[test]
fn system_attributes_and_custom_data_types_survive_reopens_and_compaction() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("plain", QueueConfig::default()).expect("create");
        engine
            .create_queue("ordered.fifo", QueueConfig { content_based_dedup: true, ..QueueConfig::fifo() })
            .expect("fifo");
        let plain = engine.queue("plain").expect("queue");
        let options = SendOptions {
            attributes: custom_attributes(),
            trace_header: Some(TRACE.into()),
            sender_id: Some("AIDAEXAMPLE".into()),
            ..SendOptions::default()
        };
        plain.send(b"first", options).expect("send");
        let fifo = engine.queue("ordered.fifo").expect("queue");
        let explicit = SendOptions { group: Some("g".into()), dedup_id: Some("d-1".into()), ..Default::default() };
        fifo.send(b"explicit", explicit).expect("send explicit");
        fifo.send(b"by content", SendOptions { group: Some("g".into()), ..Default::default() }).expect("send");
        // Fill segments, so that maintenance moves the early messages forward.
        for i in 0..60 {
            plain.send(format!("filler {i} {}", "x".repeat(100)).as_bytes(), SendOptions::default()).expect("fill");
        }
        let fillers = receive(&engine, "plain", 10);
        assert_eq!(fillers[0].trace_header.as_deref(), Some(TRACE), "received before any reopen");
        assert_eq!(fillers[0].attributes, custom_attributes());
    }
    // Past the deduplication window, whose records maintenance keeps.
    clock.advance(Duration::from_secs(301));
    let engine = open(dir.path(), &clock);
    // Delete the fillers (received once each), so the oldest segments are mostly dead and
    // maintenance rewrites the first message forward.
    let plain = engine.queue("plain").expect("queue");
    loop {
        let got = receive(&engine, "plain", 10);
        let fillers: Vec<&ReceivedMessage> = got.iter().filter(|m| m.body.starts_with(b"filler")).collect();
        for m in &fillers {
            plain.delete(&m.receipt_handle).expect("delete filler");
        }
        if fillers.is_empty() {
            break;
        }
    }
    let segments_before = common::segment_files(&dir.path().join("queues")).len();
    for _ in 0..5 {
        engine.run_maintenance().expect("maintenance");
    }
    assert!(common::segment_files(&dir.path().join("queues")).len() < segments_before, "nothing was compacted");
    drop(plain);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let first = receive(&engine, "plain", 10);
    assert_eq!(first.len(), 1);
    let m = &first[0];
    assert_eq!(&m.body[..], b"first");
    assert_eq!(m.trace_header.as_deref(), Some(TRACE));
    assert_eq!(m.sender_id.as_deref(), Some("AIDAEXAMPLE"));
    assert_eq!(m.attributes, custom_attributes());
    assert_eq!(m.attributes["count"].data_type(), "Number.int");
    assert_eq!((m.dedup_id.as_deref(), m.dead_letter_source.as_deref()), (None, None));
    let fifo = receive(&engine, "ordered.fifo", 10);
    assert_eq!(fifo[0].dedup_id.as_deref(), Some("d-1"));
    let expected = weir::text::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"by content"));
    assert_eq!(fifo[1].dedup_id.as_deref(), Some(expected.as_str()), "content-based id: the body's SHA-256");
    assert_eq!((fifo[0].trace_header.as_deref(), fifo[0].sender_id.as_deref()), (None, None));
}

#[test]
fn a_dead_lettered_message_names_its_source_queue() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    common::create_with_dead_letter_queue(&engine, "work", "dlq", 1);
    let work = engine.queue("work").expect("queue");
    let options = SendOptions { trace_header: Some(TRACE.into()), ..Default::default() };
    work.send(b"poison", options).expect("send");
    assert_eq!(receive(&engine, "work", 1).len(), 1);
    assert!(receive(&engine, "work", 1).is_empty(), "the second receive moves it");
    let dead = receive(&engine, "dlq", 1);
    assert_eq!(dead[0].dead_letter_source.as_deref(), Some("work"));
    assert_eq!(dead[0].trace_header.as_deref(), Some(TRACE), "system attributes move with it");
    drop(work);
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(receive(&engine, "dlq", 1)[0].dead_letter_source.as_deref(), Some("work"));
    // Once the source queue is gone there is no name to give.
    engine.delete_queue("work").expect("delete");
    assert_eq!(receive(&engine, "dlq", 1)[0].dead_letter_source, None);
}

#[test]
fn bad_system_attributes_are_rejected() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    for options in [
        SendOptions { trace_header: Some(String::new()), ..Default::default() },
        SendOptions { trace_header: Some("x".repeat(1025)), ..Default::default() },
        SendOptions { trace_header: Some("new\nline".into()), ..Default::default() },
        SendOptions { sender_id: Some("ü".into()), ..Default::default() },
        SendOptions { sender_id: Some("s".repeat(257)), ..Default::default() },
    ] {
        assert!(matches!(q.send(b"x", options.clone()), Err(Error::InvalidArgument(_))), "{options:?}");
    }
    assert_eq!(q.attributes().approximate_visible, 0);
}

fn fifo_send(engine: &Engine, queue: &str, body: &str, group: &str, dedup: &str) -> weir::queue::SendResult {
    let options = SendOptions { group: Some(group.into()), dedup_id: Some(dedup.into()), ..Default::default() };
    engine.queue(queue).expect("queue").send(body.as_bytes(), options).expect("send")
}

#[test]
fn message_group_scope_deduplicates_within_a_group_only_and_survives_a_reopen() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let high_throughput = QueueConfig {
        dedup_scope: DedupScope::MessageGroup,
        fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId,
        ..QueueConfig::fifo()
    };
    let first_a;
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("q.fifo", high_throughput).expect("create");
        first_a = fifo_send(&engine, "q.fifo", "a1", "a", "same");
        let b = fifo_send(&engine, "q.fifo", "b1", "b", "same");
        assert!(!b.duplicate, "the same id in another group is a new message");
        let again = fifo_send(&engine, "q.fifo", "a2", "a", "same");
        assert!(again.duplicate && again.message_id == first_a.message_id);
    }
    let engine = open(dir.path(), &clock);
    let again = fifo_send(&engine, "q.fifo", "a3", "a", "same");
    assert!(again.duplicate && again.message_id == first_a.message_id, "the window is rebuilt per group");
    assert!(fifo_send(&engine, "q.fifo", "c1", "c", "same").duplicate.eq(&false));
    let bodies: Vec<String> =
        receive(&engine, "q.fifo", 10).iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert_eq!(bodies.len(), 3, "a1, b1 and c1: {bodies:?}");
    clock.advance(Duration::from_secs(301));
    assert!(!fifo_send(&engine, "q.fifo", "a4", "a", "same").duplicate, "the window is five minutes");
}

/// Changing the scope rekeys the window at once, as a reopen would key it: what the live
/// engine answers and what a reopened one answers must agree.
#[test]
fn changing_the_deduplication_scope_rekeys_the_window_as_a_reopen_would() {
    for (from, to) in [(DedupScope::Queue, DedupScope::MessageGroup), (DedupScope::MessageGroup, DedupScope::Queue)] {
        let dir = common::scratch_dir();
        let clock = Arc::new(ManualClock::new(T0));
        let config = |scope| QueueConfig { dedup_scope: scope, ..QueueConfig::fifo() };
        let answers = |engine: &Engine| -> Vec<bool> {
            // Probes with fresh bodies; only their duplicate flags matter.
            ["a", "b", "c"].iter().map(|g| fifo_send(engine, "q.fifo", "probe", g, "id-1").duplicate).collect()
        };
        let live;
        {
            let engine = open(dir.path(), &clock);
            engine.create_queue("q.fifo", config(from)).expect("create");
            fifo_send(&engine, "q.fifo", "first", "a", "id-1");
            if from == DedupScope::MessageGroup {
                fifo_send(&engine, "q.fifo", "second", "b", "id-1");
            }
            engine.set_queue_attributes("q.fifo", config(to)).expect("change scope");
            live = answers(&engine);
        }
        let dir2 = common::scratch_dir();
        // The same history replayed by a reopen, without the probes: copy the state from
        // before them by redoing it in a second directory.
        {
            let engine = open(dir2.path(), &clock);
            engine.create_queue("q.fifo", config(from)).expect("create");
            fifo_send(&engine, "q.fifo", "first", "a", "id-1");
            if from == DedupScope::MessageGroup {
                fifo_send(&engine, "q.fifo", "second", "b", "id-1");
            }
            engine.set_queue_attributes("q.fifo", config(to)).expect("change scope");
        }
        let reopened = answers(&open(dir2.path(), &clock));
        assert_eq!(live, reopened, "{from:?} -> {to:?}");
        let expected = match to {
            DedupScope::MessageGroup if from == DedupScope::Queue => vec![true, false, false],
            DedupScope::MessageGroup => vec![true, true, false],
            DedupScope::Queue => vec![true, true, true],
        };
        assert_eq!(live, expected, "{from:?} -> {to:?}");
    }
}

#[test]
fn a_topic_delivery_into_a_group_scoped_queue_is_deduplicated_per_group() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let scoped = QueueConfig { dedup_scope: DedupScope::MessageGroup, ..QueueConfig::fifo() };
    engine.create_queue("sink.fifo", scoped).expect("queue");
    engine.create_topic("news.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
    let raw = SubscribeOptions { raw: true, ..Default::default() };
    engine.subscribe("news.fifo", Endpoint::Queue("sink.fifo".into()), raw).expect("subscribe");
    // Sent to the queue directly first: group a, id x.
    fifo_send(&engine, "sink.fifo", "direct", "a", "x");
    let topic = engine.topic("news.fifo").expect("topic");
    let publish =
        |group: &str| PublishOptions { group: Some(group.into()), dedup_id: Some("x".into()), ..Default::default() };
    topic.publish(b"via topic, group a", publish("a")).expect("publish a");
    let delivered: Vec<String> =
        receive(&engine, "sink.fifo", 10).iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert_eq!(delivered, ["direct"], "the queue's window caught the delivery in group a");
    // The topic's own window is keyed by id alone, so group b gets an id of its own.
    let group_b = PublishOptions { group: Some("b".into()), dedup_id: Some("y".into()), ..Default::default() };
    topic.publish(b"via topic, group b", group_b).expect("publish b");
    fifo_send(&engine, "sink.fifo", "direct b", "b", "y");
    let bodies: Vec<String> =
        receive(&engine, "sink.fifo", 10).iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert!(bodies.contains(&"via topic, group b".to_string()), "{bodies:?}");
    assert!(!bodies.contains(&"direct b".to_string()), "the direct send in group b was a duplicate: {bodies:?}");
}
