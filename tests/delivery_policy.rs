//! Cross-service delivery through the engine: a topic delivers into a queue only if the queue
//! has no access policy (its owner's) or its policy lets the topic send (`aws:SourceArn`), as
//! in AWS's fan-out setup; the ARNs are those of the engine's ARN scope.

use weir::policy::ArnScope;
use weir::queue::QueueConfig;
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Options};

fn fan_out_policy(topic_arn: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})
    .to_string()
}

#[test]
fn a_topic_delivers_only_where_the_queue_lets_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine.set_arn_scope(ArnScope {
        account: "111122223333".into(),
        region: "eu-west-1".into(),
        ..ArnScope::default()
    });
    let orders = "arn:aws:sns:eu-west-1:111122223333:orders";
    let queues = [
        ("open", None),
        ("allows-orders", Some(fan_out_policy(orders))),
        ("allows-another-topic", Some(fan_out_policy("arn:aws:sns:eu-west-1:111122223333:refunds"))),
        ("allows-orders-elsewhere", Some(fan_out_policy("arn:aws:sns:us-east-1:111122223333:orders"))),
    ];
    engine.create_topic("orders", TopicConfig::default()).unwrap();
    for (name, policy) in &queues {
        engine.create_queue(name, QueueConfig { policy: policy.clone(), ..QueueConfig::default() }).unwrap();
        engine
            .subscribe(
                "orders",
                Endpoint::Queue(name.to_string()),
                SubscribeOptions { raw: true, ..Default::default() },
            )
            .unwrap();
    }
    let result = engine.topic("orders").unwrap().publish(b"order 1", PublishOptions::default()).unwrap();
    assert_eq!(result.delivered, 2, "{result:?}");
    let count = |name: &str| engine.queue(name).unwrap().peek(10).unwrap().len();
    assert_eq!(count("open"), 1, "no policy: the owner's queue takes its owner's topic");
    assert_eq!(count("allows-orders"), 1);
    assert_eq!(count("allows-another-topic"), 0, "aws:SourceArn names another topic");
    assert_eq!(count("allows-orders-elsewhere"), 0, "the topic's ARN carries the engine's region");
    // A permission added later is the queue's policy too: only the topic named in it may send.
    engine
        .add_queue_permission(
            "open",
            "partner",
            &["444455556666".into()],
            &["SendMessage".into()],
            "arn:aws:sqs:eu-west-1:111122223333:open",
        )
        .unwrap();
    let result = engine.topic("orders").unwrap().publish(b"order 2", PublishOptions::default()).unwrap();
    assert_eq!(result.delivered, 1, "{result:?}");
    assert_eq!(count("open"), 1);
    assert_eq!(count("allows-orders"), 2);
}

#[test]
fn a_refused_queue_sends_to_the_dead_letter_queue_and_the_envelope_context_sets_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    // The server names its region and account once: envelopes and delivery decisions agree.
    engine.set_envelope_context(weir::topic::EnvelopeContext {
        region: "eu-west-1".into(),
        account_id: "111122223333".into(),
        endpoint: "http://127.0.0.1:9324".into(),
    });
    let orders = "arn:aws:sns:eu-west-1:111122223333:orders";
    let refunds = "arn:aws:sns:eu-west-1:111122223333:refunds";
    engine.create_topic("orders", TopicConfig::default()).unwrap();
    let with_policy = |name: &str, policy: Option<String>| {
        engine.create_queue(name, QueueConfig { policy, ..QueueConfig::default() }).unwrap();
    };
    with_policy("allows-refunds", Some(fan_out_policy(refunds)));
    with_policy("dead-letters", Some(fan_out_policy(orders)));
    with_policy("closed-dead-letters", Some(fan_out_policy(refunds)));
    with_policy("allows-refunds-too", Some(fan_out_policy(refunds)));
    for (queue, dead_letters) in [("allows-refunds", "dead-letters"), ("allows-refunds-too", "closed-dead-letters")] {
        let options =
            SubscribeOptions { raw: true, dead_letter_queue: Some(dead_letters.to_string()), ..Default::default() };
        engine.subscribe("orders", Endpoint::Queue(queue.to_string()), options).unwrap();
    }
    let result = engine.topic("orders").unwrap().publish(b"order 1", PublishOptions::default()).unwrap();
    assert_eq!(result.delivered, 1, "{result:?}");
    let count = |name: &str| engine.queue(name).unwrap().peek(10).unwrap().len();
    assert_eq!(count("allows-refunds"), 0, "the queue's policy names another topic");
    assert_eq!(count("dead-letters"), 1, "the refused delivery went to the dead-letter queue");
    assert_eq!(count("allows-refunds-too") + count("closed-dead-letters"), 0, "both refuse the topic");
}
