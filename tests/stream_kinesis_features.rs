//! The stream features Kinesis's API needs, through the engine's public API: settings kept in
//! the catalog (creation time, mode, retention, encryption, consumers) across reopens,
//! uniform rescaling, on-demand scaling under a manual clock, per-record put results,
//! enhanced fan-out subscriptions with their own read rate, and shard change signals.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use weir::stream::autoscale::{COLD_FOR_MS, HOT_FOR_MS, ON_DEMAND_MIN_SHARDS};
use weir::stream::fanout::{CONSUMER_ACTIVATION_MS, RESUBSCRIBE_AFTER_MS};
use weir::stream::{ConsumerStatus, PutRecord, StartingPosition, StreamEncryption, StreamMode, StreamOptions};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).unwrap()
}

fn poll(f: &mut Pin<Box<impl Future<Output = ()>>>) -> Poll<()> {
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn settings_and_consumers_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        let options = StreamOptions { mode: StreamMode::OnDemand, ..StreamOptions::new(4) };
        engine.create_stream_with_options("s", &options).unwrap();
        clock.advance(Duration::from_secs(1));
        engine.set_stream_retention("s", Duration::from_secs(48 * 3600)).unwrap();
        let key = StreamEncryption { encryption_type: "KMS".into(), key_id: "alias/aws/kinesis".into() };
        engine.set_stream_encryption("s", Some(key)).unwrap();
        let c = engine.register_stream_consumer("s", "app").unwrap();
        assert_eq!(c.created_ms, T0 + 1000);
        assert_eq!(c.status(T0 + 1000), ConsumerStatus::Creating);
        assert!(matches!(engine.register_stream_consumer("s", "app"), Err(Error::AlreadyExists { .. })));
        engine.register_stream_consumer("s", "gone").unwrap();
        engine.deregister_stream_consumer("s", "gone").unwrap();
        assert!(matches!(engine.deregister_stream_consumer("s", "gone"), Err(Error::NotFound { .. })));
        assert!(engine.register_stream_consumer("s", "bad name").is_err());
        assert!(engine.set_stream_retention("s", Duration::from_secs(3600)).is_err(), "under 24 hours");
        engine.update_shard_count("s", 8).unwrap();
    }
    let engine = open(dir.path(), &clock);
    let meta = engine.stream("s").unwrap().meta();
    assert_eq!(meta.created_ms, T0);
    assert_eq!(meta.mode, StreamMode::OnDemand);
    assert_eq!(meta.retention_ms, 48 * 3600 * 1000);
    assert_eq!(meta.encryption.as_ref().map(|e| e.key_id.as_str()), Some("alias/aws/kinesis"));
    assert_eq!(meta.consumers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["app"]);
    assert_eq!(meta.open_shards().count(), 8);
    engine.set_stream_mode("s", StreamMode::Provisioned).unwrap();
    engine.set_stream_encryption("s", None).unwrap();
    drop(engine);
    let engine = open(dir.path(), &clock);
    let meta = engine.stream("s").unwrap().meta();
    assert_eq!((meta.mode, meta.encryption), (StreamMode::Provisioned, None));
}

/// A stream's resource policy is part of its description: kept across reopens and
/// reshards, replaced, removed, gone with the stream, and bounded in size.
#[test]
fn a_stream_policy_survives_a_reopen_and_goes_with_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let first = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]}"#;
    {
        let engine = open(dir.path(), &clock);
        engine.create_stream("s", 1, None).unwrap();
        engine.create_stream("t", 1, None).unwrap();
        assert_eq!(engine.stream("s").unwrap().meta().policy, None);
        engine.set_stream_policy("s", Some("old")).unwrap();
        engine.set_stream_policy("s", Some(first)).unwrap();
        engine.set_stream_policy("t", Some(first)).unwrap();
        engine.update_shard_count("s", 2).unwrap();
        let huge = "x".repeat(weir::engine::MAX_STREAM_POLICY_BYTES + 1);
        assert!(matches!(engine.set_stream_policy("s", Some(&huge)), Err(Error::InvalidArgument(_))));
        assert!(matches!(engine.set_stream_policy("missing", Some(first)), Err(Error::NotFound { .. })));
    }
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.stream("s").unwrap().meta().policy.as_deref(), Some(first), "the newest, after the reshard");
    engine.set_stream_policy("t", None).unwrap();
    engine.delete_stream("s").unwrap();
    engine.create_stream("s", 1, None).unwrap();
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.stream("t").unwrap().meta().policy, None, "removed");
    assert_eq!(engine.stream("s").unwrap().meta().policy, None, "a new stream of a deleted one's name has none");
}

#[test]
fn update_shard_count_scales_uniformly_and_the_lineage_reads_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream("s", 1, None).unwrap();
    let stream = engine.stream("s").unwrap();
    let key = b"user-1";
    let mut seqs = vec![stream.put(key, b"0").unwrap()];
    for (n, target) in [2u32, 4, 3, 2, 4, 5].into_iter().enumerate() {
        engine.update_shard_count("s", target).unwrap();
        let meta = stream.meta();
        let open: Vec<_> = meta.open_shards().collect();
        assert_eq!(open.len(), target as usize);
        let even = weir::stream::hash::even_ranges(target);
        for (shard, (start, end)) in open.iter().zip(&even) {
            assert_eq!((shard.hash_start, shard.hash_end), (*start, *end), "uniform ranges for {target}");
        }
        seqs.push(stream.put(key, format!("{}", n + 1).as_bytes()).unwrap());
    }
    assert!(engine.update_shard_count("s", 11).is_err(), "more than double");
    assert!(engine.update_shard_count("s", 2).is_err(), "less than half");
    // One key's records follow its lineage with increasing sequence numbers (what
    // SequenceNumberForOrdering asks for), and reading parent before child returns them in order.
    for w in seqs.windows(2) {
        assert!(w[1].seq > w[0].seq, "{seqs:?}");
    }
    let mut data = Vec::new();
    let mut shard = seqs[0].shard;
    loop {
        let mut it = stream.iterator(shard, StartingPosition::TrimHorizon).unwrap();
        let batch = it.next_batch(100).unwrap();
        data.extend(batch.records.iter().filter(|r| &r.partition_key[..] == key).map(|r| r.data.clone()));
        let end = stream.shard_end(shard).unwrap();
        let Some(end) = end else { break };
        assert_eq!(it.position(), end);
        let hash = weir::stream::hash::hash_key(key);
        let children = stream.child_shards(shard);
        assert!(!children.is_empty());
        shard = children.iter().find(|c| c.hash_start <= hash && hash <= c.hash_end).unwrap().id;
    }
    let expected: Vec<String> = (0..seqs.len()).map(|i| i.to_string()).collect();
    assert_eq!(data.iter().map(|d| String::from_utf8_lossy(d).into_owned()).collect::<Vec<_>>(), expected);
    // Reopened, the same shard map.
    let before = stream.meta();
    drop(stream);
    drop(engine);
    assert_eq!(open(dir.path(), &clock).stream("s").unwrap().meta().shards, before.shards);
}

/// Puts `per_second` records spread over every hash key, one second of the manual clock per
/// round, with a maintenance pass after each.
fn load(engine: &Engine, clock: &ManualClock, stream: &str, per_second: usize, seconds: u64) {
    let s = engine.stream(stream).unwrap();
    for round in 0..seconds {
        let keys: Vec<String> = (0..per_second).map(|i| format!("k{round}-{i}")).collect();
        for chunk in keys.chunks(500) {
            let records: Vec<PutRecord<'_>> = chunk
                .iter()
                .map(|k| PutRecord { partition_key: k.as_bytes(), data: b"x", explicit_hash_key: None })
                .collect();
            for r in s.put_each(&records).unwrap() {
                r.expect("an on-demand stream never refuses a write for throughput");
            }
        }
        clock.advance(Duration::from_secs(1));
        engine.run_maintenance().unwrap();
    }
}

#[test]
fn on_demand_streams_split_hot_shards_and_merge_cold_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let options = StreamOptions { mode: StreamMode::OnDemand, throughput_limits: true, ..StreamOptions::new(1) };
    engine.create_stream_with_options("s", &options).unwrap();
    engine.run_maintenance().unwrap(); // the first sample
    let open_count = || engine.stream("s").unwrap().meta().open_shards().count();
    // 1,500 records a second: over the 1,000 a provisioned shard takes, never refused.
    load(&engine, &clock, "s", 1500, HOT_FOR_MS / 1000 - 1);
    assert_eq!(open_count(), 1, "not hot for a minute yet");
    load(&engine, &clock, "s", 1500, 1);
    assert_eq!(open_count(), 2, "split after a minute hot");
    // Each child now carries 750 a second: still hot, so each splits after its own minute.
    load(&engine, &clock, "s", 1500, HOT_FOR_MS / 1000 + 1);
    assert_eq!(open_count(), 4);
    // A provisioned stream with the same load stays as it is (and refuses writes over its limits).
    engine.create_stream_with("p", 1, None, true).unwrap();
    let p = engine.stream("p").unwrap();
    let keys: Vec<String> = (0..1500).map(|i| format!("k{i}")).collect();
    let records: Vec<PutRecord<'_>> = keys[..500]
        .iter()
        .map(|k| PutRecord { partition_key: k.as_bytes(), data: b"x", explicit_hash_key: None })
        .collect();
    p.put_each(&records).unwrap();
    p.put_each(&records).unwrap();
    let third = p.put_each(&records).unwrap();
    assert!(third.iter().all(|r| matches!(r, Err(Error::ThroughputExceeded(_)))), "over 1,000 records a second");
    assert!(matches!(p.put_batch(&records), Err(Error::ThroughputExceeded(_))));

    // Quiet: after fifteen minutes cold, neighbours merge, never below the floor. Eight shards
    // first, so that merging has room above the floor.
    engine.update_shard_count("s", 8).unwrap();
    for _ in 0..(COLD_FOR_MS / 60_000) {
        clock.advance(Duration::from_secs(60));
        engine.run_maintenance().unwrap();
    }
    assert_eq!(open_count(), 8, "the children are not cold for fifteen minutes yet");
    clock.advance(Duration::from_secs(60));
    engine.run_maintenance().unwrap();
    assert_eq!(open_count(), 4);
    for _ in 0..40 {
        clock.advance(Duration::from_secs(60));
        engine.run_maintenance().unwrap();
    }
    assert_eq!(open_count(), ON_DEMAND_MIN_SHARDS);
    // The whole lineage is still there, and a reopen finds the same map.
    let meta = engine.stream("s").unwrap().meta();
    drop(p);
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.stream("s").unwrap().meta().shards, meta.shards);
    let total: u64 = engine.stream("s").unwrap().shards().iter().map(|s| s.stats().records).sum();
    assert_eq!(total, 1500 * (HOT_FOR_MS / 1000 * 2 + 1));
}

#[test]
fn a_single_hot_key_is_not_split_for_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    let options = StreamOptions { mode: StreamMode::OnDemand, ..StreamOptions::new(1) };
    engine.create_stream_with_options("s", &options).unwrap();
    engine.run_maintenance().unwrap();
    let s = engine.stream("s").unwrap();
    for _ in 0..(HOT_FOR_MS / 1000 + 5) {
        let records: Vec<PutRecord<'_>> =
            (0..500).map(|_| PutRecord { partition_key: b"one", data: b"x", explicit_hash_key: None }).collect();
        s.put_each(&records).unwrap();
        s.put_each(&records).unwrap();
        clock.advance(Duration::from_secs(1));
        engine.run_maintenance().unwrap();
    }
    assert_eq!(s.meta().open_shards().count(), 1);
}

#[test]
fn fan_out_subscriptions_read_at_their_own_rate_and_follow_the_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_stream_with("s", 1, None, true).unwrap();
    let stream = engine.stream("s").unwrap();
    engine.register_stream_consumer("s", "a").unwrap();
    engine.register_stream_consumer("s", "b").unwrap();
    assert!(matches!(stream.subscribe("a", 0, StartingPosition::TrimHorizon), Err(Error::InUse(_))), "CREATING");
    clock.advance(Duration::from_millis(CONSUMER_ACTIVATION_MS));
    assert!(matches!(stream.subscribe("nobody", 0, StartingPosition::TrimHorizon), Err(Error::NotFound { .. })));
    assert!(matches!(stream.subscribe("a", 9, StartingPosition::TrimHorizon), Err(Error::NotFound { .. })));

    let mut a = stream.subscribe("a", 0, StartingPosition::TrimHorizon).unwrap();
    let mut b = stream.subscribe("b", 0, StartingPosition::TrimHorizon).unwrap();
    assert!(matches!(stream.subscribe("a", 0, StartingPosition::Latest), Err(Error::InUse(_))), "within 5 s");
    // Caught up: the change signal is pending until a put.
    assert!(a.read().unwrap().batch.records.is_empty());
    let mut changed = Box::pin(a.changed().unwrap());
    assert_eq!(poll(&mut changed), Poll::Pending);
    // 3 MiB in 3 records of 1 MiB less the key (at most 1 MiB each); the shard's write limit
    // is 1 MiB/s, so a second apart.
    let big = vec![7u8; (1 << 20) - 1];
    for _ in 0..3 {
        stream.put(b"k", &big).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(poll(&mut changed), Poll::Ready(()));
    // Each consumer reads 2 MiB a second of its own: the first read takes 2 MiB, then waits.
    let first = a.read().unwrap();
    assert_eq!(first.batch.records.len(), 2);
    assert_eq!(first.continuation, 2);
    let throttled = a.read().unwrap();
    assert!(throttled.batch.records.is_empty());
    let until = throttled.throttled_until_ms.expect("the consumer's rate is spent");
    assert!(until > clock.now_ms_for_test());
    // The other consumer has its own rate: it reads at once.
    assert_eq!(b.read().unwrap().batch.records.len(), 2);
    clock.set_ms(until);
    let rest = a.read().unwrap();
    assert_eq!(rest.batch.records.len(), 1);
    assert_eq!(rest.continuation, 3);

    // A split closes the shard: the signal fires, and the reader at its end gets the children.
    let mut changed = Box::pin(a.changed().unwrap());
    let children = engine.split_shard("s", 0, None).unwrap();
    assert_eq!(poll(&mut changed), Poll::Ready(()));
    let end = a.read().unwrap();
    let listed: Vec<u32> = end.child_shards.expect("at the end of a closed shard").iter().map(|c| c.id).collect();
    assert_eq!(listed, children);

    // Five seconds on, a new subscription takes over; the old one fails with InUse.
    clock.advance(Duration::from_millis(RESUBSCRIBE_AFTER_MS));
    let mut again = stream.subscribe("a", children[0], StartingPosition::TrimHorizon).unwrap();
    let _b2 = stream.subscribe("b", children[0], StartingPosition::TrimHorizon).unwrap();
    clock.advance(Duration::from_millis(RESUBSCRIBE_AFTER_MS));
    let _taken = stream.subscribe("a", children[0], StartingPosition::TrimHorizon).unwrap();
    assert!(matches!(again.read(), Err(Error::InUse(_))));
    // Deregistering ends a consumer's subscriptions; deleting the stream ends every one.
    let mut b3 = {
        clock.advance(Duration::from_millis(RESUBSCRIBE_AFTER_MS));
        stream.subscribe("b", children[1], StartingPosition::Latest).unwrap()
    };
    engine.deregister_stream_consumer("s", "b").unwrap();
    assert!(matches!(b3.read(), Err(Error::NotFound { .. })));
    let mut c = {
        engine.register_stream_consumer("s", "c").unwrap();
        clock.advance(Duration::from_millis(CONSUMER_ACTIVATION_MS));
        stream.subscribe("c", children[1], StartingPosition::Latest).unwrap()
    };
    let mut changed = Box::pin(c.changed().unwrap());
    engine.delete_stream("s").unwrap();
    assert_eq!(poll(&mut changed), Poll::Ready(()), "deletion wakes waiting subscribers");
    assert!(c.read().is_err());
}

trait NowForTest {
    fn now_ms_for_test(&self) -> u64;
}

impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> u64 {
        weir::Clock::now_ms(self)
    }
}
