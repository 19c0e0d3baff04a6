//! HTTP/HTTPS subscriptions in the engine: the confirmation handshake, durable pending
//! deliveries taken with leases, retries along the delivery policy by the engine clock,
//! dead-letter queues and drops, and all of it across a reopen and a power cut.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use weir::log::fault::FaultyFs;
use weir::queue::{QueueConfig, ReceiveOptions};
use weir::topic::{
    Endpoint, FailureOutcome, HttpDeliveries, MessageKind, PublishOptions, SubscribeOptions, SubscriptionChanges,
    TopicConfig,
};
use weir::{Clock, Durability, Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);
const URL: &str = "http://127.0.0.1:9/hook";

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

/// A topic `t` with an HTTP subscription (and queue `dlq` for its dead letters, if asked).
fn setup(engine: &Engine, options: SubscribeOptions) -> String {
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("dlq", QueueConfig::default()).expect("dlq");
    engine.subscribe("t", Endpoint::Http(URL.into()), options).expect("subscribe")
}

fn take_all(d: &HttpDeliveries) -> Vec<weir::topic::HttpDelivery> {
    d.take(10, LEASE).expect("take")
}

/// Confirms the subscription with the token its confirmation request carries.
fn confirm(engine: &Engine, id: &str) {
    let d = engine.http_deliveries(id).expect("deliveries");
    let taken = take_all(&d);
    assert_eq!(taken.len(), 1, "the confirmation request");
    let doc: serde_json::Value = serde_json::from_slice(&taken[0].body).expect("JSON");
    engine.confirm_subscription("t", doc["Token"].as_str().expect("token"), false).expect("confirm");
    d.delivered(&taken[0]).expect("delivered");
}

fn publish(engine: &Engine, body: &str) -> String {
    engine.topic("t").expect("t").publish(body.as_bytes(), PublishOptions::default()).expect("publish").message_id
}

fn dlq_bodies(engine: &Engine) -> Vec<String> {
    let q = engine.queue("dlq").expect("dlq");
    let got = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() }).expect("rx");
    got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

#[test]
fn an_http_subscription_gets_nothing_but_its_confirmation_until_it_confirms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let id = setup(&engine, SubscribeOptions::default());
    let info = engine.subscription(&id).expect("info");
    assert!(info.pending_confirmation && !info.confirmation_authenticated);
    assert_eq!((info.endpoint.as_str(), info.pending_deliveries), (URL, Some(1)));
    assert_eq!(engine.topic_info("t").expect("info").subscriptions_pending, 1);
    let r = engine.topic("t").expect("t").publish(b"early", PublishOptions::default()).expect("publish");
    assert_eq!(r.delivered, 0, "a pending subscription gets no notification");

    let d = engine.http_deliveries(&id).expect("deliveries");
    let taken = take_all(&d);
    assert_eq!(taken.len(), 1);
    let c = &taken[0];
    assert_eq!((c.kind, c.raw, c.attempt), (MessageKind::SubscriptionConfirmation, false, 1));
    let doc: serde_json::Value = serde_json::from_slice(&c.body).expect("JSON");
    assert_eq!(doc["Type"], "SubscriptionConfirmation");
    assert_eq!(doc["MessageId"], c.message_id.as_str());
    let token = doc["Token"].as_str().expect("token");
    assert!(doc["SubscribeURL"].as_str().expect("url").ends_with(&format!("&Token={token}")));
    // Subscribing again while pending queues the request again (same token), same id.
    assert_eq!(engine.subscribe("t", Endpoint::Http(URL.into()), SubscribeOptions::default()).expect("again"), id);
    assert_eq!(d.pending(), 2);

    let wrong = engine.confirm_subscription("t", "0123", false).expect_err("a wrong token");
    assert!(matches!(wrong, Error::NotFound { kind: "confirmation token", .. }), "{wrong}");
    assert_eq!(engine.confirm_subscription("t", token, true).expect("confirm"), id);
    assert_eq!(engine.confirm_subscription("t", token, false).expect("again"), id, "confirming twice is fine");
    let info = engine.subscription(&id).expect("info");
    assert!(!info.pending_confirmation && info.confirmation_authenticated);

    let message_id = publish(&engine, "hello");
    d.delivered(c).expect("the first confirmation went out");
    let taken = take_all(&d);
    let (confirmations, notes): (Vec<_>, Vec<_>) =
        taken.iter().partition(|t| t.kind == MessageKind::SubscriptionConfirmation);
    assert_eq!((confirmations.len(), notes.len()), (1, 1), "the second request, and the publish");
    let n = notes[0];
    assert_eq!(n.message_id, message_id, "the delivery carries the publish's message id");
    let doc: serde_json::Value = serde_json::from_slice(&n.body).expect("an envelope");
    assert_eq!((doc["Type"].as_str(), doc["Message"].as_str()), (Some("Notification"), Some("hello")));
    let target = d.target().expect("target");
    assert_eq!(target.subscription_arn, format!("arn:aws:sns:us-east-1:000000000000:t:{id}"));
    assert_eq!(target.policy.retry.num_retries, 3, "SNS's default policy");
    for t in &taken {
        d.delivered(t).expect("delivered");
    }
    assert_eq!(d.pending(), 0);
}

#[test]
fn failures_are_retried_along_the_policy_then_dead_lettered_or_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let policy = r#"{"healthyRetryPolicy":{"numRetries":2,"minDelayTarget":10,"maxDelayTarget":20}}"#;
    let options = SubscribeOptions {
        dead_letter_queue: Some("dlq".into()),
        delivery_policy: Some(policy.into()),
        raw: true,
        ..SubscribeOptions::default()
    };
    let id = setup(&engine, options);
    confirm(&engine, &id);
    let d = engine.http_deliveries(&id).expect("deliveries");
    publish(&engine, "doomed");
    let mut delays = Vec::new();
    let mut outcome = None;
    for attempt in 1..=3 {
        let taken = take_all(&d);
        assert_eq!(taken.len(), 1, "attempt {attempt} is due");
        assert_eq!((taken[0].attempt, taken[0].raw, &taken[0].body[..]), (attempt, true, &b"doomed"[..]));
        assert!(take_all(&d).is_empty(), "leased: nobody else gets it");
        match d.failed(&taken[0], false).expect("failed") {
            FailureOutcome::RetryAfter(delay) => {
                delays.push(delay.as_secs());
                // Not due a moment before its delay, due at it.
                clock.advance(delay - Duration::from_millis(1));
                assert!(take_all(&d).is_empty(), "retry {attempt} came early");
                assert_eq!(d.next_due_ms(), Some(clock.now_ms() + 1));
                clock.advance(Duration::from_millis(1));
            }
            other => outcome = Some(other),
        }
    }
    assert_eq!(delays, [10, 20], "linear from the minimum to the maximum delay");
    assert_eq!(outcome, Some(FailureOutcome::DeadLettered("dlq".into())));
    assert_eq!(dlq_bodies(&engine), vec!["doomed"]);
    assert_eq!(d.pending(), 0);

    // A permanent failure (an endpoint's 4xx) skips the retries.
    publish(&engine, "rejected");
    let taken = take_all(&d);
    assert_eq!(d.failed(&taken[0], true).expect("failed"), FailureOutcome::DeadLettered("dlq".into()));
    // Without a dead-letter queue: dropped and counted.
    let none = SubscriptionChanges { dead_letter_queue: Some(None), ..Default::default() };
    engine.set_subscription_attributes(&id, &none).expect("remove the dead-letter queue");
    publish(&engine, "lost");
    let taken = take_all(&d);
    assert_eq!(d.failed(&taken[0], true).expect("failed"), FailureOutcome::Dropped);
    let info = engine.subscription(&id).expect("info");
    assert_eq!((info.pending_deliveries, info.dropped_deliveries), (Some(0), 1));
}

#[test]
fn a_lease_that_runs_out_makes_the_delivery_due_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let id = setup(&engine, SubscribeOptions::default());
    confirm(&engine, &id);
    let d = engine.http_deliveries(&id).expect("deliveries");
    let message_id = publish(&engine, "x");
    let first = d.take(1, Duration::from_secs(5)).expect("take");
    clock.advance(Duration::from_secs(5));
    let again = take_all(&d);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message_id.as_str(), again[0].attempt), (message_id.as_str(), 2));
    assert!(d.delivered(&first[0]).is_err(), "the first lease is over: its handle is stale");
    d.delivered(&again[0]).expect("delivered");
    assert!(d.take(1, Duration::ZERO).is_err(), "a lease is never zero");
}

#[test]
fn http_subscriptions_and_their_pending_deliveries_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let (id, token) = {
        let engine = open(dir.path(), &clock);
        let id = setup(&engine, SubscribeOptions::default());
        let d = engine.http_deliveries(&id).expect("deliveries");
        let c = take_all(&d);
        let doc: serde_json::Value = serde_json::from_slice(&c[0].body).expect("JSON");
        d.failed(&c[0], false).expect("a failed attempt");
        (id, doc["Token"].as_str().expect("token").to_string())
    };
    let engine = open(dir.path(), &clock);
    assert!(engine.list_queues().iter().all(|q| !q.starts_with('#')), "{:?}", engine.list_queues());
    assert!(matches!(engine.queue(&format!("#http/{id}")), Err(Error::InvalidName { .. })), "not a queue name");
    assert_eq!(engine.http_subscription_ids(), vec![id.clone()]);
    let info = engine.subscription(&id).expect("info");
    assert_eq!((info.pending_confirmation, info.pending_deliveries), (true, Some(1)));
    engine.confirm_subscription("t", &token, false).expect("the token survived");
    publish(&engine, "a");
    publish(&engine, "b");
    drop(engine);
    let engine = open(dir.path(), &clock);
    let d = engine.http_deliveries(&id).expect("deliveries");
    assert_eq!(d.pending(), 3, "the confirmation and both publishes");
    clock.advance(Duration::from_secs(20));
    let kinds: Vec<MessageKind> = take_all(&d).iter().map(|t| t.kind).collect();
    assert_eq!(kinds.len(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == MessageKind::SubscriptionConfirmation).count(), 1);
    engine.unsubscribe(&id).expect("unsubscribe");
    assert!(matches!(d.take(10, LEASE), Err(Error::NotFound { kind: "subscription", .. })));
    drop((d, engine)); // a handle keeps the data directory, as every handle does
    let engine = open(dir.path(), &clock);
    assert!(engine.http_subscription_ids().is_empty());
    assert!(engine.http_deliveries(&id).is_err());
}

#[test]
fn deleting_the_topic_ends_its_http_subscriptions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let id = setup(&engine, SubscribeOptions::default());
    let d = engine.http_deliveries(&id).expect("deliveries");
    engine.delete_topic("t").expect("delete");
    assert!(d.take(10, LEASE).is_err());
    drop((d, engine));
    let engine = open(dir.path(), &clock);
    assert!(engine.http_subscription_ids().is_empty());
    engine.create_topic("t", TopicConfig::default()).expect("the name again");
    let again = engine.subscribe("t", Endpoint::Http(URL.into()), SubscribeOptions::default()).expect("subscribe");
    assert_ne!(again, id);
    assert_eq!(engine.http_deliveries(&again).expect("d").pending(), 1, "only the new confirmation");
}

#[test]
fn http_subscriptions_are_refused_where_sns_refuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_topic("t.fifo", TopicConfig { fifo: true, content_based_dedup: false }).expect("fifo topic");
    engine.create_topic("t", TopicConfig::default()).expect("topic");
    engine.create_queue("d.fifo", QueueConfig { fifo: true, ..QueueConfig::default() }).expect("fifo queue");
    let fifo = engine.subscribe("t.fifo", Endpoint::Http(URL.into()), SubscribeOptions::default());
    assert!(matches!(fifo, Err(Error::InvalidArgument(_))), "{fifo:?}");
    for url in ["ftp://x/", "http://", "not a url"] {
        assert!(engine.subscribe("t", Endpoint::Http(url.into()), SubscribeOptions::default()).is_err(), "{url}");
    }
    let bad_policy = SubscribeOptions {
        delivery_policy: Some(r#"{"healthyRetryPolicy":{"numRetries":-3}}"#.into()),
        ..Default::default()
    };
    assert!(engine.subscribe("t", Endpoint::Http(URL.into()), bad_policy).is_err());
    let fifo_dlq = SubscribeOptions { dead_letter_queue: Some("d.fifo".into()), ..Default::default() };
    assert!(engine.subscribe("t", Endpoint::Http(URL.into()), fifo_dlq).is_err());
    let replay = SubscribeOptions { replay_from_ms: Some(0), ..Default::default() };
    assert!(engine.subscribe("t", Endpoint::Http(URL.into()), replay).is_err());
    assert!(engine.list_subscriptions("t").expect("list").is_empty(), "nothing was half made");
}

/// A power cut with deliveries in every state: what was acknowledged delivered stays gone,
/// every other published delivery is there (none lost), and the subscription is as confirmed.
#[test]
fn pending_deliveries_survive_a_power_cut_and_acknowledged_ones_stay_delivered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(FaultyFs::new());
    fs.create_durable_dir_all(tmp.path());
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("real directory for LOCK");
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options {
        vfs: fs.clone(),
        durability: Durability::Always,
        clock: clock.clone(),
        background: false,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    };
    let (id, published, delivered) = {
        let engine = Engine::open(&data, options.clone()).expect("open");
        let id = setup(&engine, SubscribeOptions { dead_letter_queue: Some("dlq".into()), ..Default::default() });
        confirm(&engine, &id);
        let d = engine.http_deliveries(&id).expect("deliveries");
        let mut published = BTreeSet::new();
        for i in 0..25 {
            published.insert(publish(&engine, &format!("m{i}")));
        }
        let mut delivered = BTreeSet::new();
        let taken = take_all(&d);
        for (i, t) in taken.iter().enumerate() {
            match i % 3 {
                0 => {
                    d.delivered(t).expect("delivered");
                    delivered.insert(t.message_id.clone());
                }
                1 => assert!(matches!(d.failed(t, false).expect("failed"), FailureOutcome::RetryAfter(_))),
                _ => {} // under way at the cut
            }
        }
        (id, published, delivered)
    };
    fs.power_cut();
    let engine = Engine::open(&data, options).expect("reopen after the power cut");
    let info = engine.subscription(&id).expect("the subscription survived");
    assert!(!info.pending_confirmation, "and its confirmation");
    clock.advance(LEASE.max(Duration::from_secs(20)));
    let d = engine.http_deliveries(&id).expect("deliveries");
    let mut pending = BTreeSet::new();
    loop {
        let taken = take_all(&d);
        if taken.is_empty() {
            break;
        }
        for t in taken {
            assert!(pending.insert(t.message_id.clone()), "one delivery per publish");
            d.delivered(&t).expect("delivered");
        }
    }
    let expected: BTreeSet<String> = published.difference(&delivered).cloned().collect();
    assert_eq!(pending, expected, "every undelivered publish is pending, no delivered one came back");
    assert!(dlq_bodies(&engine).is_empty());
}

/// `weir inspect`'s count of pending deliveries (read from the files alone) agrees with the
/// engine's after maintenance compacted the message log: compaction rewrites a waiting
/// delivery forward with the key of its first record and deletes the segment that held it.
#[test]
fn inspect_counts_the_pending_deliveries_that_compaction_moved_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    // Small segments, so that maintenance compacts and deletes them.
    let options = Options {
        clock: clock.clone(),
        background: false,
        segment_bytes: 2048,
        durability: Durability::Never,
        ..Options::default()
    };
    let engine = Engine::open(dir.path(), options).expect("open");
    let id = setup(&engine, SubscribeOptions::default());
    confirm(&engine, &id);
    publish(&engine, "waiting");
    engine.create_queue("filler", QueueConfig::default()).expect("filler");
    let filler = engine.queue("filler").expect("filler");
    let segments = || std::fs::read_dir(dir.path().join("queues")).expect("queues").count();
    let before = segments();
    while segments() < before + 6 {
        filler.send(&[7u8; 300], Default::default()).expect("send");
        let got = filler.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() });
        for m in got.expect("receive") {
            filler.delete(&m.receipt_handle).expect("delete");
        }
    }
    let first_segment = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("queues"))
            .expect("queues")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        names.sort();
        names.first().cloned()
    };
    let oldest = first_segment(dir.path());
    // Past the deduplication window, whose records maintenance keeps.
    clock.advance(Duration::from_secs(6 * 60));
    for _ in 0..5 {
        engine.run_maintenance().expect("maintenance");
    }
    assert_ne!(first_segment(dir.path()), oldest, "maintenance compacted the oldest segment away");
    let pending = engine.http_deliveries(&id).expect("deliveries").pending();
    assert_eq!(pending, 1, "the publish waits");
    let report = weir::inspect::http_subscriptions(dir.path(), None).expect("inspect");
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].pending_deliveries, pending as u64, "inspect agrees with the engine");
}
