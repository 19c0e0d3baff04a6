//! Topic and subscription attributes: set, read back, checked, durable across a reopen (the
//! catalog replays them); MessageStructure=json; dead-letter queues of queue subscriptions;
//! subscribing an endpoint twice.

use std::sync::Arc;
use std::time::Duration;

use weir::engine::tags::ResourceRef;
use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions};
use weir::topic::{
    Endpoint, EnvelopeContext, FilterScope, MessageStructure, PublishOptions, SubscribeOptions, SubscriptionChanges,
    TopicAttributes, TopicConfig,
};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

fn bodies(engine: &Engine, queue: &str) -> Vec<String> {
    let q = engine.queue(queue).expect("queue");
    let got = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() }).expect("rx");
    for m in &got {
        q.delete(&m.receipt_handle).expect("delete");
    }
    got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

#[test]
fn topic_attributes_are_set_checked_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        let attributes = TopicAttributes { display_name: Some("Orders".into()), ..TopicAttributes::default() };
        let tags = [("team".to_string(), "billing".to_string())].into_iter().collect();
        engine.create_topic_with("orders", TopicConfig::default(), attributes.clone(), &tags).expect("create");
        // The same again is fine; other attributes are not.
        engine.create_topic_with("orders", TopicConfig::default(), attributes, &tags).expect("same again");
        engine.create_topic("orders", TopicConfig::default()).expect("defaults name no attributes");
        let other = TopicAttributes { display_name: Some("Other".into()), ..TopicAttributes::default() };
        let err = engine.create_topic_with("orders", TopicConfig::default(), other, &tags).expect_err("differs");
        assert!(matches!(err, Error::AlreadyExists { kind: "topic", .. }), "{err}");
        engine
            .update_topic("orders", |_, a| {
                a.delivery_policy = Some(r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5}}}"#.into());
                a.signature_version = 2;
                a.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
                a.delivery_status.insert("SQSSuccessFeedbackSampleRate".into(), "40".into());
                Ok(())
            })
            .expect("update");
        for bad in
            [r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":1000}}}"#, r#"not json"#, r#"{"carrier-pigeon":{}}"#]
        {
            let err = engine
                .update_topic("orders", |_, a| {
                    a.delivery_policy = Some(bad.into());
                    Ok(())
                })
                .expect_err(bad);
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        }
        let err = engine.update_topic("orders", |c, _| {
            c.fifo = true;
            Ok(())
        });
        assert!(err.is_err(), "the type cannot change");
        let err = engine.update_topic("orders", |c, _| {
            c.content_based_dedup = true;
            Ok(())
        });
        assert!(err.is_err(), "content-based deduplication is for FIFO topics");
        engine.create_topic("jobs.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("fifo");
        engine
            .update_topic("jobs.fifo", |c, a| {
                c.content_based_dedup = true;
                a.fifo_throughput_scope = Some("MessageGroup".into());
                Ok(())
            })
            .expect("a FIFO topic turns content-based deduplication on");
    }
    let engine = open(dir.path(), &clock);
    let info = engine.topic_info("orders").expect("info");
    assert_eq!(info.attributes.display_name.as_deref(), Some("Orders"));
    assert_eq!(info.attributes.signature_version, 2);
    assert!(info.attributes.delivery_policy.as_deref().unwrap().contains("numRetries"));
    assert_eq!(info.attributes.delivery_status.get("SQSSuccessFeedbackSampleRate").map(String::as_str), Some("40"));
    assert_eq!((info.subscriptions_confirmed, info.subscriptions_pending), (0, 0));
    assert_eq!(
        engine.tags(ResourceRef::Topic("orders")).expect("tags").get("team").map(String::as_str),
        Some("billing")
    );
    let fifo = engine.topic_info("jobs.fifo").expect("fifo info");
    assert!(fifo.config.content_based_dedup, "the change was replayed");
    // Content-based deduplication now applies: a publish without an id is deduplicated by body.
    engine.create_queue("q.fifo", QueueConfig { fifo: true, ..QueueConfig::default() }).expect("queue");
    engine.subscribe("jobs.fifo", Endpoint::Queue("q.fifo".into()), SubscribeOptions::default()).expect("sub");
    let topic = engine.topic("jobs.fifo").expect("topic");
    let group = PublishOptions { group: Some("g".into()), ..PublishOptions::default() };
    let first = topic.publish(b"same", group.clone()).expect("publish");
    let second = topic.publish(b"same", group).expect("publish again");
    assert!(second.duplicate && second.message_id == first.message_id);
}

#[test]
fn subscription_attributes_change_durably_and_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let id = {
        let engine = open(dir.path(), &clock);
        engine.create_topic("events", TopicConfig::default()).expect("topic");
        for q in ["sink", "dlq"] {
            engine.create_queue(q, QueueConfig::default()).expect("queue");
        }
        engine.create_queue("f.fifo", QueueConfig { fifo: true, ..QueueConfig::default() }).expect("fifo queue");
        let id = engine.subscribe("events", Endpoint::Queue("sink".into()), SubscribeOptions::default()).expect("sub");
        let changes = SubscriptionChanges {
            raw: Some(true),
            filter_policy: Some(Some(r#"{"kind":[{"prefix":"ord"}]}"#.into())),
            filter_scope: Some(FilterScope::MessageBody),
            dead_letter_queue: Some(Some("dlq".into())),
            ..SubscriptionChanges::default()
        };
        let info = engine.set_subscription_attributes(&id, &changes).expect("set");
        assert!(info.raw && info.filter_scope == "body");
        assert_eq!(info.dead_letter_queue.as_deref(), Some("dlq"));
        let refused = [
            SubscriptionChanges { filter_policy: Some(Some("{".into())), ..Default::default() },
            SubscriptionChanges { dead_letter_queue: Some(Some("missing".into())), ..Default::default() },
            SubscriptionChanges { dead_letter_queue: Some(Some("f.fifo".into())), ..Default::default() },
            SubscriptionChanges { delivery_policy: Some(Some("{}".into())), ..Default::default() },
        ];
        for changes in refused {
            assert!(engine.set_subscription_attributes(&id, &changes).is_err(), "{changes:?} accepted");
        }
        assert!(matches!(
            engine.set_subscription_attributes("sub-999999", &SubscriptionChanges::default()),
            Err(Error::NotFound { kind: "subscription", .. })
        ));
        id
    };
    let engine = open(dir.path(), &clock);
    let info = engine.subscription(&id).expect("after reopen");
    assert!(info.raw && info.filter_policy.is_some() && info.filter_scope == "body");
    assert!(info.confirmation_authenticated && !info.pending_confirmation);
    let topic = engine.topic("events").expect("topic");
    topic.publish(br#"{"kind":"order-1"}"#, PublishOptions::default()).expect("publish");
    topic.publish(br#"{"kind":"refund"}"#, PublishOptions::default()).expect("publish");
    assert_eq!(bodies(&engine, "sink"), vec![r#"{"kind":"order-1"}"#], "raw, filtered on the body");
    // The queue goes away: its dead-letter queue stands in for it.
    engine.delete_queue("sink").expect("delete queue");
    let r = topic.publish(br#"{"kind":"order-2"}"#, PublishOptions::default()).expect("publish");
    assert_eq!(r.delivered, 1);
    assert_eq!(bodies(&engine, "dlq"), vec![r#"{"kind":"order-2"}"#]);
    // Removing the dead-letter queue: deliveries to a missing queue are dropped.
    engine
        .set_subscription_attributes(&id, &SubscriptionChanges { dead_letter_queue: Some(None), ..Default::default() })
        .expect("remove the dead-letter queue");
    let r = topic.publish(br#"{"kind":"order-3"}"#, PublishOptions::default()).expect("publish");
    assert_eq!(r.delivered, 0);
}

#[test]
fn subscribing_an_endpoint_again_returns_its_subscription_unless_settings_differ() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("q", QueueConfig::default()).expect("queue");
    let raw = SubscribeOptions { raw: true, ..Default::default() };
    let a = engine.subscribe("t", Endpoint::Queue("q".into()), raw.clone()).expect("sub");
    let b = engine.subscribe("t", Endpoint::Queue("q".into()), raw).expect("again");
    assert_eq!(a, b);
    let err = engine.subscribe("t", Endpoint::Queue("q".into()), SubscribeOptions::default()).expect_err("differs");
    assert!(matches!(err, Error::AlreadyExists { kind: "subscription", .. }), "{err}");
    assert_eq!(engine.list_subscriptions("t").expect("list").len(), 1);
    let r = engine.topic("t").expect("t").publish(b"once", PublishOptions::default()).expect("publish");
    assert_eq!(r.delivered, 1, "one subscription, one copy");
}

#[test]
fn a_json_structure_gives_each_protocol_its_message_and_envelopes_name_the_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.set_envelope_context(EnvelopeContext {
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        endpoint: "http://localhost:4566".into(),
    });
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    for q in ["raw", "wrapped", "later"] {
        engine.create_queue(q, QueueConfig::default()).expect("queue");
    }
    let raw = SubscribeOptions { raw: true, ..Default::default() };
    engine.subscribe("t", Endpoint::Queue("raw".into()), raw).expect("sub");
    let sub = engine.subscribe("t", Endpoint::Queue("wrapped".into()), SubscribeOptions::default()).expect("sub");
    let options = PublishOptions {
        message_structure: MessageStructure::Json,
        subject: Some("greetings".into()),
        attributes: [("n".to_string(), AttributeValue::Number("7".into()))].into_iter().collect(),
        ..PublishOptions::default()
    };
    let topic = engine.topic("t").expect("t");
    let r = topic
        .publish(br#"{"default":"hello","sqs":"hello, queue","http":"hello, web"}"#, options.clone())
        .expect("pub");
    assert_eq!(bodies(&engine, "raw"), vec!["hello, queue"]);
    let wrapped = bodies(&engine, "wrapped");
    let doc: serde_json::Value = serde_json::from_str(&wrapped[0]).expect("an envelope");
    assert_eq!(doc["Message"], "hello, queue");
    assert_eq!(doc["MessageId"], r.message_id.as_str());
    assert_eq!(doc["Subject"], "greetings");
    assert_eq!(doc["TopicArn"], "arn:aws:sns:eu-west-1:123456789012:t");
    assert_eq!(doc["MessageAttributes"]["n"], serde_json::json!({"Type": "Number", "Value": "7"}));
    assert_eq!(
        doc["UnsubscribeURL"],
        format!("http://localhost:4566/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:t:{sub}")
    );
    for bad in [&br#"{"sqs":"no default"}"#[..], b"not json", br#"{"default":{"x":1}}"#] {
        let err = topic.publish(bad, options.clone()).expect_err("refused");
        assert!(err.to_string().contains("Message Structure"), "{err}");
    }
    // A subscription that replays the log reads the structure back from the Publish record.
    let replay = SubscribeOptions { raw: true, replay_from_ms: Some(0), ..Default::default() };
    engine.subscribe("t", Endpoint::Queue("later".into()), replay).expect("replay");
    assert_eq!(bodies(&engine, "later"), vec!["hello, queue"]);
}
