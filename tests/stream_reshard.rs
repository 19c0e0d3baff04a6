//! Resharding and consumer groups: lineage order, leases under a manual clock, durable
//! checkpoints.

use std::sync::Arc;
use std::time::Duration;

use weir::stream::{ConsumerConfig, InitialPosition, StartingPosition};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

fn drain(consumer: &mut weir::stream::Consumer) -> Vec<(u32, u64, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let got = consumer.poll(100).expect("poll");
        if got.is_empty() {
            return out;
        }
        for r in &got {
            out.push((r.shard, r.record.seq, r.record.data.to_vec()));
        }
        consumer.checkpoint_all().expect("checkpoint");
    }
}

#[test]
fn split_closes_the_parent_and_routes_writes_to_the_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 1, None).expect("create");
    let stream = engine.stream("s").expect("stream");
    for i in 0..10 {
        stream.put(format!("k{i}").as_bytes(), b"before").expect("put");
    }
    let [low, high] = engine.split_shard("s", 0, None).expect("split");
    let d = engine.describe_stream("s").expect("describe");
    let parent = &d.shards[0];
    assert!(!parent.open);
    assert_eq!(d.shards.len(), 3);
    for child in &d.shards[1..] {
        assert!(child.open);
        assert_eq!(child.parents, vec![0]);
    }
    assert_eq!(
        d.shards[1].hash_end.parse::<u128>().expect("n") + 1,
        d.shards[2].hash_start.parse::<u128>().expect("n")
    );
    for i in 0..40 {
        let put = stream.put(format!("k{i}").as_bytes(), b"after").expect("put");
        assert!(put.shard == low || put.shard == high, "write landed in closed shard {}", put.shard);
        assert!(put.seq >= 10, "child sequence numbers continue above the parent's");
    }
    assert!(matches!(engine.split_shard("s", 0, None), Err(Error::ShardClosed { .. })));
    let merged = engine.merge_shards("s", low, high).expect("merge");
    drop(stream);
    drop(engine);
    let engine = open(dir.path(), &clock);
    let d = engine.describe_stream("s").expect("describe after reopen");
    assert_eq!(d.shards.iter().filter(|s| s.open).map(|s| s.id).collect::<Vec<_>>(), vec![merged]);
    assert_eq!(d.shards.iter().find(|s| s.id == merged).expect("merged").parents, vec![low, high]);
    let stream = engine.stream("s").expect("stream");
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
    assert_eq!(it.next_batch(100).expect("read parent").records.len(), 10, "parent stays readable");
    assert!(matches!(engine.merge_shards("s", merged, merged), Err(Error::InvalidArgument(_))));
}

#[test]
fn consumer_group_reads_parents_to_their_end_before_children_and_resumes_from_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 2, None).expect("create");
    let stream = engine.stream("s").expect("stream");
    let key = b"same-key";
    for i in 0..5 {
        stream.put(key, format!("a{i}").as_bytes()).expect("put");
    }
    let home = stream.put(key, b"a5").expect("put").shard;
    engine.split_shard("s", home, None).expect("split");
    for i in 6..12 {
        stream.put(key, format!("a{i}").as_bytes()).expect("put");
    }
    let mut consumer = stream.consumer("g", "w1", ConsumerConfig::default()).expect("consumer");
    let got = drain(&mut consumer);
    let same_key: Vec<Vec<u8>> = got.iter().map(|(_, _, d)| d.clone()).collect();
    let expected: Vec<Vec<u8>> = (0..12).map(|i| format!("a{i}").into_bytes()).collect();
    assert_eq!(same_key, expected, "one key's records come in order across the split");
    drop(consumer);
    for i in 12..15 {
        stream.put(key, format!("a{i}").as_bytes()).expect("put");
    }
    let mut again = stream.consumer("g", "w2", ConsumerConfig::default()).expect("consumer");
    let resumed: Vec<Vec<u8>> = drain(&mut again).into_iter().map(|(_, _, d)| d).collect();
    assert_eq!(resumed, (12..15).map(|i| format!("a{i}").into_bytes()).collect::<Vec<_>>(), "resumes after checkpoint");
    let mut other = stream.consumer("other", "w", ConsumerConfig::default()).expect("second group");
    assert_eq!(drain(&mut other).len(), 15, "groups read independently");
    let late = ConsumerConfig { initial: InitialPosition::Latest, ..ConsumerConfig::default() };
    let mut latest = stream.consumer("late", "w", late).expect("latest group");
    assert!(drain(&mut latest).iter().all(|(_, _, d)| d.starts_with(b"a")));
}

#[test]
fn a_stopped_workers_shards_move_to_another_worker_after_the_lease_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 4, None).expect("create");
    let stream = engine.stream("s").expect("stream");
    let config = ConsumerConfig { lease_ms: 5_000, ..ConsumerConfig::default() };
    let mut w1 = stream.consumer("g", "w1", config).expect("w1");
    let mut w2 = stream.consumer("g", "w2", config).expect("w2");
    w1.poll(10).expect("poll");
    w2.poll(10).expect("poll");
    w1.poll(10).expect("poll");
    let (a, b) = (w1.held_shards(), w2.held_shards());
    assert_eq!(a.len() + b.len(), 4, "every shard leased: {a:?} {b:?}");
    assert!(a.iter().all(|s| !b.contains(s)), "two workers hold one shard: {a:?} {b:?}");
    assert!(!b.is_empty(), "the second worker got a share");
    // w1 stops polling; before expiry w2 cannot take its shards.
    clock.advance(Duration::from_millis(4_000));
    w2.poll(10).expect("poll");
    assert!(w2.held_shards().iter().all(|s| !a.contains(s)), "lease taken before it expired");
    clock.advance(Duration::from_millis(1_500));
    w2.poll(10).expect("poll");
    assert_eq!(w2.held_shards().len(), 4, "w2 took over the expired leases");
    let err = w1.checkpoint(a[0], 0).expect_err("w1 lost its lease");
    assert!(err.to_string().contains("lease"), "{err}");
}
