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
