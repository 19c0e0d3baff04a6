//! Queue administration the SQS server needs: the SQS attributes beyond the basic ones
//! (deduplication scope, throughput limit, redrive allow policy, access policy, KMS settings),
//! creation and modification times, permissions (AddPermission/RemovePermission) and tags on
//! queues, topics and streams, all surviving a reopen of the engine.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use weir::engine::tags::{ResourceRef, Tags};
use weir::queue::{DedupScope, FifoThroughputLimit, QueueConfig, RedriveAllowPolicy, RedrivePolicy};
use weir::topic::TopicConfig;
use weir::{Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;
const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:jobs";

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), 1 << 20)).expect("open")
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn new_attributes_and_times_are_kept_across_a_reopen() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let config = QueueConfig {
        dedup_scope: DedupScope::MessageGroup,
        fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId,
        redrive_allow: RedriveAllowPolicy::DenyAll,
        policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        kms_master_key_id: Some("alias/aws/sqs".into()),
        kms_data_key_reuse_period: Duration::from_secs(600),
        sqs_managed_sse: false,
        ..QueueConfig::fifo()
    };
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("hot.fifo", config.clone()).expect("create");
        let a = engine.queue_attributes("hot.fifo").expect("attributes");
        assert_eq!((a.created_ms, a.last_modified_ms), (T0, T0));
        assert_eq!(a.dedup_scope, DedupScope::MessageGroup);
        assert_eq!(a.fifo_throughput_limit, FifoThroughputLimit::PerMessageGroupId);
        assert_eq!(a.redrive_allow, RedriveAllowPolicy::DenyAll);
        assert_eq!(a.kms_data_key_reuse_period_s, 600);
        clock.advance(Duration::from_secs(90));
        let changed = QueueConfig { visibility_timeout: Duration::from_secs(5), ..config.clone() };
        engine.set_queue_attributes("hot.fifo", changed).expect("set");
        let a = engine.queue_attributes("hot.fifo").expect("attributes");
        assert_eq!((a.created_ms, a.last_modified_ms), (T0, T0 + 90_000));
        // Creating it again with the same attributes changes nothing, times included.
        clock.advance(Duration::from_secs(5));
        let same = QueueConfig { visibility_timeout: Duration::from_secs(5), ..config.clone() };
        engine.create_queue("hot.fifo", same).expect("create again");
    }
    clock.advance(Duration::from_secs(3600));
    let engine = open(dir.path(), &clock);
    let a = engine.queue_attributes("hot.fifo").expect("attributes after reopen");
    assert_eq!((a.created_ms, a.last_modified_ms), (T0, T0 + 90_000));
    assert_eq!(a.visibility_timeout_s, 5);
    assert_eq!(a.policy.as_deref(), config.policy.as_deref());
    assert_eq!(a.kms_master_key_id.as_deref(), Some("alias/aws/sqs"));
    // The JSON form (what `weir queue attributes` prints) carries them too.
    let json = serde_json::to_value(&a).expect("json");
    assert_eq!(json["dedup_scope"], "message_group");
    assert_eq!(json["fifo_throughput_limit"], "per_message_group_id");
    assert_eq!(json["redrive_allow"], "deny_all");
    assert_eq!(json["created_ms"], T0);
    // A queue deleted and created again is a new queue: a new creation time.
    engine.delete_queue("hot.fifo").expect("delete");
    engine.create_queue("hot.fifo", QueueConfig::fifo()).expect("create anew");
    let a = engine.queue_attributes("hot.fifo").expect("attributes");
    assert_eq!(a.created_ms, T0 + 3_695_000);
}

#[test]
fn a_queue_config_is_what_was_set_whatever_its_messages() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let config = QueueConfig {
        visibility_timeout: Duration::from_secs(7),
        receive_wait: Duration::from_secs(3),
        max_message_bytes: 1 << 20,
        ..QueueConfig::default()
    };
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("jobs", config.clone()).expect("create");
        let q = engine.queue("jobs").expect("queue");
        assert_eq!(q.config(), config);
        q.send(b"m", Default::default()).expect("send");
        assert_eq!(q.config(), config, "messages are not configuration");
        // A change through the read-modify-write and a permission both show at once.
        engine
            .update_queue_config("jobs", |c| Ok(QueueConfig { delay: Duration::from_secs(9), ..c.clone() }))
            .expect("update");
        engine
            .add_queue_permission("jobs", "l1", &strings(&["111122223333"]), &strings(&["SendMessage"]), ARN)
            .expect("add");
        let now = q.config();
        assert_eq!(now.delay, Duration::from_secs(9));
        assert!(now.policy.as_deref().is_some_and(|p| p.contains("l1")), "{now:?}");
        assert_eq!(now.visibility_timeout, config.visibility_timeout);
        // An update whose change fails changes nothing.
        let refused = engine.update_queue_config("jobs", |_| Err(Error::InvalidArgument("no".into())));
        assert!(matches!(refused, Err(Error::InvalidArgument(_))), "{refused:?}");
        assert_eq!(q.config(), now);
    }
    let engine = open(dir.path(), &clock);
    let q = engine.queue("jobs").expect("queue after reopen");
    assert_eq!(q.config().delay, Duration::from_secs(9));
    assert_eq!(q.config().receive_wait, Duration::from_secs(3));
}

#[test]
fn bad_attribute_combinations_are_rejected_at_create_and_set() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let standard_scope = QueueConfig { dedup_scope: DedupScope::MessageGroup, ..QueueConfig::default() };
    assert!(matches!(engine.create_queue("q", standard_scope), Err(Error::InvalidArgument(_))));
    let bad_limit =
        QueueConfig { fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId, ..QueueConfig::fifo() };
    assert!(matches!(engine.create_queue("q.fifo", bad_limit.clone()), Err(Error::InvalidArgument(_))));
    engine.create_queue("q.fifo", QueueConfig::fifo()).expect("create");
    assert!(matches!(engine.set_queue_attributes("q.fifo", bad_limit), Err(Error::InvalidArgument(_))));
    let bad_policy = QueueConfig { policy: Some("{not json".into()), ..QueueConfig::fifo() };
    assert!(matches!(engine.set_queue_attributes("q.fifo", bad_policy), Err(Error::InvalidArgument(_))));
    assert_eq!(engine.queue_attributes("q.fifo").expect("attributes").policy, None, "nothing changed");
    assert!(engine.list_queues() == ["q.fifo"], "no queue was created by a failed call");
}

#[test]
fn a_redrive_allow_policy_decides_who_may_use_a_queue_as_dead_letter_queue() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let only_orders = RedriveAllowPolicy::ByQueue(vec!["orders".into()]);
    engine.create_queue("dlq", QueueConfig { redrive_allow: only_orders, ..QueueConfig::default() }).expect("dlq");
    let to_dlq = |config: QueueConfig| QueueConfig {
        redrive: Some(RedrivePolicy { dead_letter_queue: "dlq".into(), max_receives: 3 }),
        ..config
    };
    engine.create_queue("orders", to_dlq(QueueConfig::default())).expect("an allowed source");
    let refused = engine.create_queue("payments", to_dlq(QueueConfig::default()));
    assert!(matches!(refused, Err(Error::InvalidArgument(ref m)) if m.contains("redrive allow policy")), "{refused:?}");
    engine.create_queue("payments", QueueConfig::default()).expect("payments without a dead-letter queue");
    assert!(engine.set_queue_attributes("payments", to_dlq(QueueConfig::default())).is_err());
    // Deny all: even the listed queue may no longer name it (checked when it does).
    let dlq_config = QueueConfig { redrive_allow: RedriveAllowPolicy::DenyAll, ..QueueConfig::default() };
    engine.set_queue_attributes("dlq", dlq_config).expect("deny all");
    let again = to_dlq(QueueConfig { visibility_timeout: Duration::from_secs(9), ..QueueConfig::default() });
    assert!(engine.set_queue_attributes("orders", again).is_err());
    // Allow all (the default) lets anyone.
    engine.set_queue_attributes("dlq", QueueConfig::default()).expect("allow all");
    engine.set_queue_attributes("payments", to_dlq(QueueConfig::default())).expect("now allowed");
}

#[test]
fn permissions_are_statements_of_the_queue_policy_and_survive_a_reopen() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("jobs", QueueConfig::default()).expect("create");
        clock.advance(Duration::from_secs(1));
        let alice = strings(&["111122223333"]);
        engine
            .add_queue_permission("jobs", "AliceSend", &alice, &strings(&["SendMessage"]), ARN)
            .expect("add a permission");
        assert_eq!(engine.queue_attributes("jobs").expect("attributes").last_modified_ms, T0 + 1000);
        engine
            .add_queue_permission("jobs", "Everything", &strings(&["444455556666"]), &strings(&["*"]), ARN)
            .expect("add another");
        let dup = engine.add_queue_permission("jobs", "AliceSend", &alice, &strings(&["GetQueueUrl"]), ARN);
        assert!(matches!(dup, Err(Error::InvalidArgument(_))), "{dup:?}");
        let missing = engine.add_queue_permission("nope", "x", &alice, &strings(&["*"]), ARN);
        assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");
        engine.remove_queue_permission("jobs", "Everything").expect("remove");
        assert!(matches!(engine.remove_queue_permission("jobs", "Everything"), Err(Error::InvalidArgument(_))));
    }
    let engine = open(dir.path(), &clock);
    let policy = engine.queue_attributes("jobs").expect("attributes").policy.expect("a policy");
    let doc: Value = serde_json::from_str(&policy).expect("json");
    assert_eq!(doc["Id"], format!("{ARN}/SQSDefaultPolicy"));
    let statements = doc["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Sid"], "AliceSend");
    assert_eq!(statements[0]["Action"], "SQS:SendMessage");
    assert_eq!(statements[0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    engine.remove_queue_permission("jobs", "AliceSend").expect("remove the last");
    assert_eq!(engine.queue_attributes("jobs").expect("attributes").policy, None);
}

#[test]
fn concurrent_permission_changes_lose_none_of_one_another() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Arc::new(open(dir.path(), &clock));
    engine.create_queue("shared", QueueConfig::default()).expect("create");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..5 {
                    let label = format!("t{t}-{i}");
                    engine
                        .add_queue_permission("shared", &label, &strings(&["111122223333"]), &strings(&["*"]), ARN)
                        .expect("add");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let policy = engine.queue_attributes("shared").expect("attributes").policy.expect("policy");
    let doc: Value = serde_json::from_str(&policy).expect("json");
    assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(20));
}

#[test]
fn tags_on_queues_topics_and_streams_survive_a_reopen_and_go_with_their_resource() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue_with("jobs", QueueConfig::default(), &tags(&[("team", "a")])).expect("create with tags");
        engine.create_topic("news", TopicConfig::default()).expect("topic");
        engine.create_stream("clicks", 1, None).expect("stream");
        engine.tag(ResourceRef::Queue("jobs"), &tags(&[("env", "prod"), ("team", "b")])).expect("tag queue");
        engine.tag(ResourceRef::Topic("news"), &tags(&[("k", "")])).expect("tag topic");
        engine.tag(ResourceRef::Stream("clicks"), &tags(&[("owner", "x@y")])).expect("tag stream");
        engine.untag(ResourceRef::Queue("jobs"), &strings(&["env", "not-there"])).expect("untag");
        // Tagging does not change the queue's attributes' modification time.
        assert_eq!(engine.queue_attributes("jobs").expect("attributes").last_modified_ms, T0);
    }
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.tags(ResourceRef::Queue("jobs")).expect("tags"), tags(&[("team", "b")]));
    assert_eq!(engine.tags(ResourceRef::Topic("news")).expect("tags"), tags(&[("k", "")]));
    assert_eq!(engine.tags(ResourceRef::Stream("clicks")).expect("tags"), tags(&[("owner", "x@y")]));
    // Deleting a resource deletes its tags: one of the same name starts bare.
    engine.delete_queue("jobs").expect("delete");
    engine.delete_topic("news").expect("delete topic");
    engine.delete_stream("clicks").expect("delete stream");
    engine.create_queue("jobs", QueueConfig::default()).expect("create again");
    engine.create_topic("news", TopicConfig::default()).expect("topic again");
    engine.create_stream("clicks", 1, None).expect("stream again");
    for r in [ResourceRef::Queue("jobs"), ResourceRef::Topic("news"), ResourceRef::Stream("clicks")] {
        assert_eq!(engine.tags(r).expect("tags"), BTreeMap::new(), "{r:?}");
    }
}

#[test]
fn tag_limits_and_missing_resources_are_errors_that_change_nothing() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let forty: Tags = (0..40).map(|i| (format!("k{i}"), "v".to_string())).collect();
    engine.create_queue_with("q", QueueConfig::default(), &forty).expect("40 tags");
    let eleven: Tags = (100..111).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert!(matches!(engine.tag(ResourceRef::Queue("q"), &eleven), Err(Error::LimitExceeded(_))));
    // Changing existing keys does not add tags.
    let changed: Tags = (0..40).map(|i| (format!("k{i}"), "w".to_string())).collect();
    engine.tag(ResourceRef::Queue("q"), &changed).expect("overwrite 40");
    assert_eq!(engine.tags(ResourceRef::Queue("q")).expect("tags"), changed);
    for r in [ResourceRef::Queue("none"), ResourceRef::Topic("none"), ResourceRef::Stream("none")] {
        assert!(matches!(engine.tag(r, &tags(&[("a", "b")])), Err(Error::NotFound { .. })), "{r:?}");
        assert!(matches!(engine.tags(r), Err(Error::NotFound { .. })), "{r:?}");
    }
    assert!(matches!(engine.tags(ResourceRef::Queue("a/b")), Err(Error::InvalidName { .. })));
    assert!(engine.untag(ResourceRef::Queue("q"), &strings(&["aws:x"])).is_err());
    // A create with bad tags creates nothing.
    let bad = engine.create_queue_with("other", QueueConfig::default(), &tags(&[("aws:x", "v")]));
    assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
    assert_eq!(engine.list_queues(), ["q"]);
}
