//! Leases of consumer groups under a manual clock: several workers poll in random order while
//! time jumps, workers stop, start and are dropped; after every poll no shard has two holders,
//! a worker reads only shards it holds, nothing at or before the group's checkpoint is served
//! again, and checkpoints never go back. Plus the hand-over cases one at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use weir::stream::{ConsumedRecord, Consumer, ConsumerConfig, Stream};
use weir::{Durability, Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;
const STREAM: &str = "leases";
const GROUP: &str = "g";
const LEASE_MS: u64 = 5_000;
const WORKERS: usize = 4;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    let options =
        Options { clock: clock.clone(), background: false, durability: Durability::Never, ..Options::default() };
    Engine::open(dir, options).expect("open")
}

fn config() -> ConsumerConfig {
    ConsumerConfig { lease_ms: LEASE_MS, ..ConsumerConfig::default() }
}

/// Whether `consumer` holds the lease on `shard` right now, asked without side effects: a
/// checkpoint far past the end is refused, for the lease first if the worker does not hold it.
fn holds(consumer: &mut Consumer, shard: u32) -> bool {
    match consumer.checkpoint(shard, u64::MAX) {
        Err(Error::InvalidArgument(message)) if message.contains("does not hold the lease") => false,
        Err(Error::InvalidArgument(message)) if message.contains("beyond the end") => true,
        other => panic!("a checkpoint past the end of shard {shard} gave {other:?}"),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Worker polls and checkpoints what it read.
    Poll {
        worker: usize,
        limit: usize,
    },
    /// Worker polls and does not checkpoint (it may lose the shard before it does).
    PollOnly {
        worker: usize,
        limit: usize,
    },
    Advance(u64),
    /// The worker is dropped (its leases released); it starts again at its next poll.
    Drop(usize),
    Put {
        key: usize,
        count: usize,
    },
    /// Split the open shard picked by index.
    Split(usize),
}

struct Harness {
    clock: Arc<ManualClock>,
    stream: Arc<Stream>,
    engine: Engine,
    workers: Vec<Option<Consumer>>,
    /// Every record put: (shard, seq).
    put: BTreeSet<(u32, u64)>,
    /// How many times the group received each record.
    received: BTreeMap<(u32, u64), usize>,
    checkpoints: BTreeMap<(String, u32), u64>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(shards: u32) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(T0));
        let engine = open(dir.path(), &clock);
        engine.create_stream(STREAM, shards, None).expect("create");
        let stream = engine.stream(STREAM).expect("stream");
        Harness {
            clock,
            stream,
            engine,
            workers: (0..WORKERS).map(|_| None).collect(),
            put: BTreeSet::new(),
            received: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            _dir: dir,
        }
    }

    fn put(&mut self, key: usize, count: usize) {
        for i in 0..count {
            let put = self.stream.put(format!("k{key}").as_bytes(), format!("{key}-{i}").as_bytes()).expect("put");
            self.put.insert((put.shard, put.seq));
        }
    }

    fn split(&mut self, pick: usize) {
        let open: Vec<u32> = self.stream.describe().shards.iter().filter(|s| s.open).map(|s| s.id).collect();
        let id = open[pick % open.len()];
        self.engine.split_shard(STREAM, id, None).expect("split");
    }

    fn poll(&mut self, worker: usize, limit: usize, checkpoint: bool) {
        let before = self.stream.checkpoints();
        let consumer = self.workers[worker]
            .get_or_insert_with(|| self.stream.consumer(GROUP, &format!("w{worker}"), config()).expect("consumer"));
        let got: Vec<ConsumedRecord> = consumer.poll(limit).expect("poll");
        assert!(got.len() <= limit, "a poll returned more than its limit");
        let held = consumer.held_shards();
        for r in &got {
            assert!(held.contains(&r.shard), "w{worker} read shard {} without holding it ({held:?})", r.shard);
            if let Some(&done) = before.get(&(GROUP.to_string(), r.shard)) {
                assert!(
                    r.record.seq > done,
                    "w{worker} was served shard {} seq {} at or before the checkpoint {done}",
                    r.shard,
                    r.record.seq
                );
            }
            assert!(self.put.contains(&(r.shard, r.record.seq)), "a record that was never put");
            *self.received.entry((r.shard, r.record.seq)).or_default() += 1;
        }
        if checkpoint {
            consumer.checkpoint_all().expect("checkpoint right after the poll: the leases are fresh");
        }
        self.check_holders(worker);
    }

    /// No shard has two holders; the worker that just polled holds exactly what it says; every
    /// other worker holds no more than it thinks.
    fn check_holders(&mut self, poller: usize) {
        let shards: Vec<u32> = self.stream.shards().iter().map(|s| s.meta.id).collect();
        for shard in shards {
            let mut holders = Vec::new();
            for (w, consumer) in self.workers.iter_mut().enumerate() {
                let Some(consumer) = consumer else { continue };
                let believes = consumer.held_shards().contains(&shard);
                let held = holds(consumer, shard);
                if held {
                    holders.push(w);
                    assert!(believes, "w{w} holds shard {shard} but does not know it");
                }
                if w == poller {
                    assert_eq!(believes, held, "w{w} just polled: what it believes of shard {shard} is not so");
                }
            }
            assert!(holders.len() <= 1, "shard {shard} is held by workers {holders:?} at once");
        }
        let now = self.stream.checkpoints();
        for (key, &seq) in &self.checkpoints {
            let later = now.get(key).copied();
            assert!(later.is_some_and(|l| l >= seq), "checkpoint {key:?} went back from {seq} to {later:?}");
        }
        self.checkpoints = now;
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Poll { worker, limit } => self.poll(worker, limit, true),
            Op::PollOnly { worker, limit } => self.poll(worker, limit, false),
            Op::Advance(ms) => self.clock.advance(Duration::from_millis(ms)),
            Op::Drop(worker) => self.workers[worker] = None,
            Op::Put { key, count } => self.put(key, count),
            Op::Split(pick) => self.split(pick),
        }
    }

    /// After every lease has expired one worker drains the group: every record was received
    /// at least once, and records read more than once were never checkpointed in between.
    fn finish(&mut self) {
        self.clock.advance(Duration::from_millis(LEASE_MS + 1));
        for w in 0..WORKERS {
            self.workers[w] = None;
        }
        loop {
            let before = self.received.values().sum::<usize>();
            self.poll(0, 100, true);
            if self.received.values().sum::<usize>() == before {
                break;
            }
        }
        let missing: Vec<&(u32, u64)> = self.put.iter().filter(|r| !self.received.contains_key(r)).collect();
        assert!(missing.is_empty(), "records the group never received: {missing:?}");
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..WORKERS, 1..20usize).prop_map(|(worker, limit)| Op::Poll { worker, limit }),
        2 => (0..WORKERS, 1..20usize).prop_map(|(worker, limit)| Op::PollOnly { worker, limit }),
        4 => prop_oneof![0..1_000u64, 1_000..LEASE_MS + 2_000].prop_map(Op::Advance),
        1 => (0..WORKERS).prop_map(Op::Drop),
        3 => (0..8usize, 1..6usize).prop_map(|(key, count)| Op::Put { key, count }),
        1 => any::<usize>().prop_map(Op::Split),
    ]
}

fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn no_shard_has_two_holders_and_nothing_checkpointed_is_served_again(
        shards in 1..5u32,
        ops in vec(op(), 1..80),
    ) {
        let mut harness = Harness::new(shards);
        for op in &ops {
            harness.run(op);
        }
        harness.finish();
    }
}

#[test]
fn a_dropped_worker_hands_its_shards_over_at_once() {
    let mut h = Harness::new(3);
    h.put(1, 5);
    h.poll(0, 100, false);
    assert_eq!(h.workers[0].as_ref().expect("w0").held_shards().len(), 3, "a lone worker takes every shard");
    h.workers[0] = None;
    h.poll(1, 100, true);
    assert_eq!(h.workers[1].as_ref().expect("w1").held_shards().len(), 3, "no wait for expiry after a drop");
    assert!(h.received.values().all(|&n| n == 2), "what w0 read but did not checkpoint is read again");
}

#[test]
fn a_new_worker_takes_its_share_from_a_busy_one_and_the_old_holder_cannot_checkpoint_it() {
    let mut h = Harness::new(4);
    h.put(1, 3);
    h.put(2, 3);
    h.poll(0, 100, false);
    h.poll(1, 100, true);
    let stolen = h.workers[1].as_ref().expect("w1").held_shards();
    assert_eq!(stolen.len(), 2, "the new worker takes half of the shards: {stolen:?}");
    let w0 = h.workers[0].as_mut().expect("w0");
    for &shard in &stolen {
        let err = w0.checkpoint(shard, 0).expect_err("w0 lost the shard");
        assert!(err.to_string().contains("lease"), "{err}");
    }
    h.poll(0, 100, true);
    let kept = h.workers[0].as_ref().expect("w0").held_shards();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|s| !stolen.contains(s)), "w0 forgot the shards w1 took: {kept:?} {stolen:?}");
}

#[test]
fn an_expired_lease_nobody_took_is_renewed_by_its_holder_without_reading_again() {
    let mut h = Harness::new(1);
    h.put(1, 4);
    h.poll(0, 2, false);
    h.clock.advance(Duration::from_millis(LEASE_MS));
    let w0 = h.workers[0].as_mut().expect("w0");
    assert!(!holds(w0, 0), "the lease expired");
    assert!(w0.checkpoint(0, 1).is_err(), "no checkpoint on an expired lease");
    h.poll(0, 100, true);
    assert_eq!(h.received.len(), 4);
    assert!(h.received.values().all(|&n| n == 1), "the renewed lease kept the worker's place: {:?}", h.received);
    assert_eq!(h.stream.checkpoints().get(&(GROUP.to_string(), 0)), Some(&3));
}

#[test]
fn a_stalled_worker_keeps_its_shards_until_the_lease_time_passes() {
    let mut h = Harness::new(1);
    h.put(1, 2);
    h.poll(0, 100, true);
    h.put(1, 2);
    h.clock.advance(Duration::from_millis(LEASE_MS - 1));
    h.poll(1, 100, true);
    assert!(h.workers[1].as_ref().expect("w1").held_shards().is_empty(), "taken before the lease expired");
    h.clock.advance(Duration::from_millis(1));
    h.poll(1, 100, true);
    assert_eq!(h.workers[1].as_ref().expect("w1").held_shards(), vec![0], "taken once it expired");
    assert!(!holds(h.workers[0].as_mut().expect("w0"), 0), "the stalled worker lost it");
    assert_eq!(h.received.len(), 4, "w1 went on after w0's checkpoint");
    assert!(h.received.values().all(|&n| n == 1), "nothing read twice: {:?}", h.received);
}
