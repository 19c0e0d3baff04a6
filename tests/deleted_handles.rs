//! Handles kept across the deletion of what they name: a `Stream` (and its consumers,
//! iterators and deliveries), a `Queue` or a `Topic` whose object was deleted, and perhaps
//! created again under the same name, must fail with a clear error on every call, and must
//! never read, write, truncate or delete anything of the new object.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{read_to_end, scratch_dir, test_options};
use weir::queue::{QueueConfig, ReceiveOptions, SendOptions};
use weir::stream::{ConsumerConfig, DeliveryConfig, StartingPosition};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The error a handle to a deleted object must give: `Closed` or `NotFound`, never an I/O
/// error or success.
fn assert_deleted<T: std::fmt::Debug>(outcome: weir::Result<T>, what: &str) {
    match outcome {
        Err(Error::Closed(_)) | Err(Error::NotFound { .. }) => {}
        other => panic!("{what} through a handle to a deleted object: {other:?}"),
    }
}

fn data_of(stream: &weir::stream::Stream) -> Vec<String> {
    let read = read_to_end(stream, 0, StartingPosition::TrimHorizon, 100);
    assert!(read.error.is_none(), "{:?}", read.error);
    read.records.iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect()
}

#[test]
fn handles_to_a_deleted_stream_fail_and_never_touch_the_stream_created_again_under_its_name() {
    let dir = scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let options = test_options(clock.clone(), 4096);
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    engine.create_stream("s", 1, None).expect("create");
    let old = engine.stream("s").expect("stream");
    for i in 0..3 {
        old.put(b"k", format!("old {i}").as_bytes()).expect("put");
    }
    let mut old_consumer = old.consumer("g", "w", ConsumerConfig::default()).expect("consumer");
    assert_eq!(old_consumer.poll(10).expect("poll").len(), 3);
    let mut old_iterator = old.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
    let mut old_delivery = old.deliver(DeliveryConfig::new(dir.path().join("out"))).expect("delivery");

    engine.delete_stream("s").expect("delete");
    // A day later (the old records' retention has passed), the name is used again.
    clock.advance(DAY + Duration::from_secs(3600));
    engine.create_stream("s", 1, None).expect("create again");
    let new = engine.stream("s").expect("new stream");
    for i in 0..2 {
        new.put(b"k", format!("new {i}").as_bytes()).expect("put");
    }
    let mut new_consumer = new.consumer("g", "w2", ConsumerConfig::default()).expect("consumer");
    assert_eq!(new_consumer.poll(10).expect("poll").len(), 2);
    new_consumer.checkpoint_all().expect("checkpoint");

    assert_deleted(old.put(b"k", b"through the old handle"), "put");
    assert_deleted(old.iterator(0, StartingPosition::TrimHorizon), "iterator");
    assert_deleted(old_iterator.next_batch(10), "read through an old iterator");
    assert_deleted(old.consumer("g", "w3", ConsumerConfig::default()), "consumer");
    assert_deleted(old_consumer.poll(10), "consumer poll");
    assert_deleted(old_consumer.checkpoint(0, 2), "checkpoint");
    assert_deleted(old_consumer.checkpoint_all(), "checkpoint all");
    assert_deleted(old_delivery.step(), "delivery");
    assert_deleted(old.deliver(DeliveryConfig::new(dir.path().join("out2"))), "new delivery");
    assert_deleted(old.enforce_retention(), "retention");
    assert_deleted(old.split_shard(0, None, &mut |_| Ok(())), "split");

    assert_eq!(data_of(&new), vec!["new 0", "new 1"], "the new stream is untouched");
    drop((old, old_consumer, old_iterator, old_delivery, new, new_consumer));
    drop(engine);
    let engine = Engine::open(dir.path(), options).expect("reopen");
    let new = engine.stream("s").expect("the new stream");
    assert_eq!(data_of(&new), vec!["new 0", "new 1"], "the new stream's files are whole after a reopen");
    assert_eq!(new.checkpoints().get(&("g".to_string(), 0)), Some(&1), "its checkpoint too");
    assert!(new.checkpoints().len() == 1, "and nothing of the old stream's: {:?}", new.checkpoints());
}

#[test]
fn a_queue_handle_across_delete_and_create_again_never_reaches_the_new_queue() {
    let dir = scratch_dir();
    let engine = Engine::open(dir.path(), test_options(Arc::new(ManualClock::new(T0)), 4096)).expect("open");
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let old = engine.queue("q").expect("queue");
    old.send(b"old", SendOptions::default()).expect("send");
    let handle = old.receive(ReceiveOptions::default()).expect("receive")[0].receipt_handle.clone();
    engine.delete_queue("q").expect("delete");
    engine.create_queue("q", QueueConfig::default()).expect("create again");
    let new = engine.queue("q").expect("new queue");
    new.send(b"new", SendOptions::default()).expect("send");

    assert_deleted(old.send(b"through the old handle", SendOptions::default()), "send");
    assert_deleted(old.receive(ReceiveOptions::default()), "receive");
    assert_deleted(old.delete(&handle), "delete");
    assert_deleted(old.change_visibility(&handle, Duration::ZERO), "change visibility");
    assert_deleted(old.purge(), "purge");
    assert_deleted(old.peek(10), "peek");
    let err = new.delete(&handle).expect_err("the old queue's handle in the new queue");
    assert!(matches!(err, Error::InvalidReceiptHandle(_)), "{err:?}");
    let bodies: Vec<Vec<u8>> = new.peek(10).expect("peek").iter().map(|m| m.body.to_vec()).collect();
    assert_eq!(bodies, vec![b"new".to_vec()], "the new queue holds its own message only");
}

#[test]
fn a_topic_handle_across_delete_and_create_again_publishes_nothing() {
    let dir = scratch_dir();
    let engine = Engine::open(dir.path(), test_options(Arc::new(ManualClock::new(T0)), 4096)).expect("open");
    for q in ["old-sub", "new-sub"] {
        engine.create_queue(q, QueueConfig::default()).expect("create queue");
    }
    engine.create_topic("t", TopicConfig::default()).expect("create topic");
    engine.subscribe("t", Endpoint::Queue("old-sub".into()), SubscribeOptions::default()).expect("subscribe");
    let old = engine.topic("t").expect("topic");
    engine.delete_topic("t").expect("delete");
    engine.create_topic("t", TopicConfig::default()).expect("create again");
    engine.subscribe("t", Endpoint::Queue("new-sub".into()), SubscribeOptions::default()).expect("subscribe");

    assert_deleted(old.publish(b"through the old handle", PublishOptions::default()), "publish");
    for q in ["old-sub", "new-sub"] {
        let peeked = engine.queue(q).and_then(|q| q.peek(10)).expect("peek");
        assert!(peeked.is_empty(), "{q} received {peeked:?} from a deleted topic");
    }
    let published = engine.topic("t").and_then(|t| t.publish(b"new", PublishOptions::default())).expect("publish");
    assert_eq!(published.delivered, 1, "the new topic delivers to its own subscription");
}
