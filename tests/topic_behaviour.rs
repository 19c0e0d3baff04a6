//! Topic behaviour: fan-out, filter policies, raw and enveloped delivery, FIFO order,
//! deduplication, callbacks, durability of subscriptions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions};
use weir::topic::{Endpoint, FilterScope, PublishEntry, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

fn drain(engine: &Engine, queue: &str) -> Vec<weir::queue::ReceivedMessage> {
    let q = engine.queue(queue).expect("queue");
    let mut all = Vec::new();
    loop {
        let got = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() }).expect("rx");
        if got.is_empty() {
            return all;
        }
        for m in &got {
            q.delete(&m.receipt_handle).expect("delete");
        }
        all.extend(got);
    }
}

fn attrs(pairs: &[(&str, AttributeValue)]) -> weir::queue::Attributes {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn publish_fans_out_to_every_matching_queue_and_counts_the_filtered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("orders", TopicConfig::default()).expect("topic");
    for q in ["all", "big"] {
        engine.create_queue(q, QueueConfig::default()).expect("queue");
    }
    let raw = SubscribeOptions { raw: true, ..Default::default() };
    engine.subscribe("orders", Endpoint::Queue("all".into()), raw.clone()).expect("sub all");
    let big = SubscribeOptions { filter_policy: Some(r#"{"amount":[{"numeric":[">=",100]}]}"#.into()), ..raw };
    engine.subscribe("orders", Endpoint::Queue("big".into()), big).expect("sub big");
    let topic = engine.topic("orders").expect("topic");
    let small = topic
        .publish(
            b"small",
            PublishOptions {
                attributes: attrs(&[("amount", AttributeValue::Number("5".into()))]),
                ..Default::default()
            },
        )
        .expect("publish");
    assert_eq!((small.delivered, small.filtered), (1, 1));
    let large = topic
        .publish(
            b"large",
            PublishOptions {
                attributes: attrs(&[("amount", AttributeValue::Number("500".into()))]),
                ..Default::default()
            },
        )
        .expect("publish");
    assert_eq!((large.delivered, large.filtered), (2, 0));
    let all: Vec<Vec<u8>> = drain(&engine, "all").iter().map(|m| m.body.to_vec()).collect();
    assert_eq!(all.len(), 2);
    let big: Vec<_> = drain(&engine, "big");
    assert_eq!(big.len(), 1);
    assert_eq!(&big[0].body[..], b"large");
    assert_eq!(big[0].attributes.get("amount"), Some(&AttributeValue::Number("500".into())), "raw keeps attributes");
    let subs = engine.list_subscriptions("orders").expect("subs");
    assert_eq!(subs.iter().map(|s| s.filtered).sum::<u64>(), 1);
}

#[test]
fn non_raw_delivery_wraps_the_message_in_an_sns_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("q", QueueConfig::default()).expect("queue");
    engine.subscribe("t", Endpoint::Queue("q".into()), SubscribeOptions::default()).expect("sub");
    let options = PublishOptions {
        subject: Some("hello".into()),
        attributes: attrs(&[("kind", AttributeValue::String("greeting".into()))]),
        ..Default::default()
    };
    let r = engine.topic("t").expect("t").publish(b"body text", options).expect("publish");
    let got = drain(&engine, "q");
    let doc: serde_json::Value = serde_json::from_slice(&got[0].body).expect("envelope is JSON");
    assert_eq!(doc["Type"], "Notification");
    assert_eq!(doc["Message"], "body text");
    assert_eq!(doc["Subject"], "hello");
    assert_eq!(doc["MessageId"], r.message_id.as_str());
    assert_eq!(doc["MessageAttributes"]["kind"]["Value"], "greeting");
    assert_eq!(doc["Timestamp"], "2023-11-14T22:13:20.000Z");
}

#[test]
fn fifo_topic_feeds_each_fifo_queue_every_group_in_publish_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("topic");
    for q in ["a.fifo", "b.fifo", "c.fifo"] {
        engine.create_queue(q, QueueConfig::fifo()).expect("queue");
        engine
            .subscribe("t.fifo", Endpoint::Queue(q.into()), SubscribeOptions { raw: true, ..Default::default() })
            .expect("sub");
    }
    let topic = engine.topic("t.fifo").expect("topic");
    let mut n = 0;
    for round in 0..5 {
        let entries: Vec<PublishEntry> = (0..4)
            .map(|g| {
                n += 1;
                PublishEntry {
                    body: format!("g{g}-{round}").into_bytes().into(),
                    options: PublishOptions {
                        group: Some(format!("g{g}")),
                        dedup_id: Some(format!("d{n}")),
                        ..Default::default()
                    },
                }
            })
            .collect();
        for r in topic.publish_batch(&entries).expect("batch") {
            assert_eq!(r.expect("entry").delivered, 3);
        }
    }
    for q in ["a.fifo", "b.fifo", "c.fifo"] {
        let got = drain(&engine, q);
        assert_eq!(got.len(), 20, "{q}");
        for g in 0..4 {
            let rounds: Vec<String> = got
                .iter()
                .filter(|m| m.group.as_deref() == Some(&format!("g{g}")))
                .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                .collect();
            let expected: Vec<String> = (0..5).map(|r| format!("g{g}-{r}")).collect();
            assert_eq!(rounds, expected, "{q} group g{g} out of order");
        }
    }
}

#[test]
fn fifo_topic_deduplicates_publishes_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let first;
    {
        let engine = open(dir.path(), &clock);
        engine.create_topic("t.fifo", TopicConfig { fifo: true, content_based_dedup: true }).expect("topic");
        engine.create_queue("q.fifo", QueueConfig::fifo()).expect("queue");
        engine.subscribe("t.fifo", Endpoint::Queue("q.fifo".into()), SubscribeOptions::default()).expect("sub");
        let options = PublishOptions { group: Some("g".into()), ..Default::default() };
        first = engine.topic("t.fifo").expect("t").publish(b"same body", options.clone()).expect("first");
        let dup = engine.topic("t.fifo").expect("t").publish(b"same body", options).expect("dup");
        assert!(dup.duplicate);
        assert_eq!(dup.message_id, first.message_id);
    }
    let engine = open(dir.path(), &clock);
    let options = PublishOptions { group: Some("g".into()), ..Default::default() };
    let again = engine.topic("t.fifo").expect("t").publish(b"same body", options).expect("after reopen");
    assert_eq!(again.message_id, first.message_id, "window survives a restart");
    assert_eq!(drain(&engine, "q.fifo").len(), 1, "delivered exactly once");
}

#[test]
fn subscriptions_survive_reopen_and_later_subscribers_miss_older_publishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_topic("t", TopicConfig::default()).expect("topic");
        engine.create_queue("early", QueueConfig::default()).expect("queue");
        engine
            .subscribe("t", Endpoint::Queue("early".into()), SubscribeOptions { raw: true, ..Default::default() })
            .expect("sub");
        engine.topic("t").expect("t").publish(b"one", PublishOptions::default()).expect("publish");
    }
    let engine = open(dir.path(), &clock);
    engine.create_queue("late", QueueConfig::default()).expect("queue");
    engine.create_queue("replayed", QueueConfig::default()).expect("queue");
    engine
        .subscribe("t", Endpoint::Queue("late".into()), SubscribeOptions { raw: true, ..Default::default() })
        .expect("sub");
    let replay = SubscribeOptions { raw: true, replay_from_ms: Some(T0), ..Default::default() };
    engine.subscribe("t", Endpoint::Queue("replayed".into()), replay).expect("sub with replay");
    engine.topic("t").expect("t").publish(b"two", PublishOptions::default()).expect("publish");
    let bodies =
        |q: &str| drain(&engine, q).iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect::<Vec<_>>();
    assert_eq!(bodies("early"), vec!["one", "two"]);
    assert_eq!(bodies("late"), vec!["two"], "no older publishes, as SNS");
    let mut replayed = bodies("replayed");
    replayed.sort();
    assert_eq!(replayed, vec!["one", "two"], "the replay extension delivers what the log holds");
}

#[test]
fn subscribe_rejects_bad_policies_and_mismatched_queue_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("q.fifo", QueueConfig::fifo()).expect("queue");
    engine.create_queue("q", QueueConfig::default()).expect("queue");
    let err = engine.subscribe("t", Endpoint::Queue("q.fifo".into()), SubscribeOptions::default()).expect_err("fifo");
    assert!(matches!(err, Error::InvalidArgument(_)));
    let bad = SubscribeOptions { filter_policy: Some(r#"{"a": "not an array"}"#.into()), ..Default::default() };
    let err = engine.subscribe("t", Endpoint::Queue("q".into()), bad).expect_err("bad policy");
    assert!(err.to_string().contains("filter policy"), "{err}");
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested = SubscribeOptions { filter_policy: Some(format!(r#"{{"a": {deep}}}"#)), ..Default::default() };
    assert!(engine.subscribe("t", Endpoint::Queue("q".into()), nested).is_err());
    let body_scope = SubscribeOptions {
        filter_policy: Some(r#"{"order":{"kind":["book"]}}"#.into()),
        filter_scope: FilterScope::MessageBody,
        raw: true,
        ..Default::default()
    };
    engine.subscribe("t", Endpoint::Queue("q".into()), body_scope).expect("body scope policy");
    let t = engine.topic("t").expect("t");
    assert_eq!(t.publish(br#"{"order":{"kind":"book"}}"#, PublishOptions::default()).expect("p").delivered, 1);
    assert_eq!(t.publish(br#"{"order":{"kind":"pen"}}"#, PublishOptions::default()).expect("p").filtered, 1);
    assert!(engine.unsubscribe("sub-999999").is_err());
    assert!(t.publish(&[0xff, 0xfe], PublishOptions::default()).is_err(), "non-UTF-8 body");
}

#[test]
fn failing_callback_is_retried_then_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("cb-dlq", QueueConfig::default()).expect("dlq");
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let failing: weir::topic::Callback = Arc::new(move |_n| {
        seen.fetch_add(1, Ordering::SeqCst);
        Err("downstream unavailable".to_string())
    });
    let options =
        SubscribeOptions { max_attempts: Some(3), dead_letter_queue: Some("cb-dlq".into()), ..Default::default() };
    let id = engine.subscribe("t", Endpoint::Callback(failing), options).expect("callback");
    assert!(id.starts_with("cb-"));
    let ok_calls = Arc::new(AtomicUsize::new(0));
    let ok_seen = Arc::clone(&ok_calls);
    let ok: weir::topic::Callback = Arc::new(move |n| {
        assert_eq!(&n.body[..], b"event");
        ok_seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    engine.subscribe("t", Endpoint::Callback(ok), SubscribeOptions::default()).expect("callback");
    let r = engine.topic("t").expect("t").publish(b"event", PublishOptions::default()).expect("publish");
    assert_eq!(r.delivered, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(ok_calls.load(Ordering::SeqCst), 1);
    let dead = drain(&engine, "cb-dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(&dead[0].body[..], b"event");
}
