//! Model-based test of resharding and consumer groups: random puts, splits (at random or
//! default points), merges of adjacent open shards, reads through consumer groups and reopens,
//! checked against a model of which shard owns which hash-key range over time.
//!
//! The model knows every shard (range, parents, open or closed) and every acknowledged put. It
//! checks that each put lands in the one open shard owning its hash key, that sequence numbers
//! increase along every parent -> child edge, that `describe` matches the model (and is the
//! same after a reopen), and that a consumer group receives every record exactly once, each
//! partition key's records in put order, and no record of a shard before every record of the
//! shard's ancestors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use weir::stream::hash::hash_key;
use weir::stream::{ConsumedRecord, Consumer, ConsumerConfig, PutRecord, PutResult, Stream, StreamDescription};
use weir::{Durability, Engine, Error, ManualClock, Options};

const STREAM: &str = "lineage";
const KEYS: usize = 24;
const START_MS: u64 = 1_700_000_000_000;

fn key(k: usize) -> Vec<u8> {
    format!("user-{k}").into_bytes()
}

#[derive(Debug, Clone)]
enum BadReshard {
    SplitClosed,
    SplitAtRangeStart,
    SplitPastRangeEnd,
    SplitUnknown,
    MergeWithItself,
    MergeNotAdjacent,
    MergeClosed,
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        len: usize,
    },
    PutBatch(Vec<(usize, usize)>),
    /// Put at an explicit hash key inside the open shard picked by index.
    PutAt {
        pick: usize,
        offset: u128,
    },
    /// Split the open shard picked by index; `at` is reduced into the shard's range.
    Split {
        pick: usize,
        at: Option<u128>,
    },
    /// Merge the adjacent open pair picked by index, naming them in either order.
    Merge {
        pick: usize,
        swap: bool,
    },
    /// A reshard that must be refused and change nothing.
    Bad {
        pick: usize,
        what: BadReshard,
    },
    /// Workers of group `group` poll in turn, checkpointing after each poll; `rounds` bounds
    /// the turns (a partial read), else until the group is drained.
    Consume {
        group: usize,
        workers: usize,
        rounds: Option<usize>,
        limit: usize,
    },
    Reopen,
}

#[derive(Debug, Clone)]
struct ModelShard {
    start: u128,
    end: u128,
    parents: Vec<u32>,
    open: bool,
    /// Indexes into `Model::puts`, in sequence order.
    puts: Vec<usize>,
}

#[derive(Debug, Clone)]
struct ModelPut {
    key: Vec<u8>,
    shard: u32,
    seq: u64,
}

/// What a group has received: each put's index, and per key how many of its puts.
#[derive(Debug, Default)]
struct GroupModel {
    received: HashSet<usize>,
    per_key: HashMap<Vec<u8>, usize>,
}

#[derive(Debug, Default)]
struct Model {
    shards: BTreeMap<u32, ModelShard>,
    puts: Vec<ModelPut>,
    /// Put indexes of each key, in put order.
    key_puts: HashMap<Vec<u8>, Vec<usize>>,
    groups: HashMap<usize, GroupModel>,
}

impl Model {
    fn new(description: &StreamDescription) -> Model {
        let mut shards = BTreeMap::new();
        for s in &description.shards {
            let shard = ModelShard {
                start: s.hash_start.parse().expect("hash start"),
                end: s.hash_end.parse().expect("hash end"),
                parents: Vec::new(),
                open: true,
                puts: Vec::new(),
            };
            shards.insert(s.id, shard);
        }
        let model = Model { shards, ..Model::default() };
        model.check_open_ranges_cover_the_space();
        model
    }

    /// The open shards, in hash-key order.
    fn open_shards(&self) -> Vec<(u32, ModelShard)> {
        let mut open: Vec<(u32, ModelShard)> =
            self.shards.iter().filter(|(_, s)| s.open).map(|(&id, s)| (id, s.clone())).collect();
        open.sort_by_key(|(_, s)| s.start);
        open
    }

    fn check_open_ranges_cover_the_space(&self) {
        let open = self.open_shards();
        assert_eq!(open.first().map(|(_, s)| s.start), Some(0), "the open shards start at hash key 0");
        assert_eq!(open.last().map(|(_, s)| s.end), Some(u128::MAX), "the open shards end at the last hash key");
        for w in open.windows(2) {
            assert_eq!(w[0].1.end.checked_add(1), Some(w[1].1.start), "open ranges touch without overlap: {open:?}");
        }
    }

    fn owner(&self, hash: u128) -> u32 {
        let owners: Vec<u32> =
            self.shards.iter().filter(|(_, s)| s.open && s.start <= hash && hash <= s.end).map(|(&id, _)| id).collect();
        assert_eq!(owners.len(), 1, "exactly one open shard owns hash key {hash}: {owners:?}");
        owners[0]
    }

    fn ancestors(&self, id: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut todo = self.shards[&id].parents.clone();
        while let Some(p) = todo.pop() {
            if !out.contains(&p) {
                out.push(p);
                todo.extend(self.shards[&p].parents.iter().copied());
            }
        }
        out
    }

    fn next_id(&self) -> u32 {
        self.shards.keys().next_back().map_or(0, |id| id + 1)
    }

    /// Records an acknowledged put after checking where it landed and its number.
    fn acknowledge(&mut self, key: &[u8], explicit: Option<u128>, result: PutResult) {
        let expected = self.owner(explicit.unwrap_or_else(|| hash_key(key)));
        assert_eq!(result.shard, expected, "key {key:?} went to shard {} instead of its open owner", result.shard);
        let shard = &self.shards[&result.shard];
        assert!(shard.open, "a put landed in closed shard {}", result.shard);
        if let Some(&last) = shard.puts.last() {
            assert!(result.seq > self.puts[last].seq, "sequence numbers went back in shard {}", result.shard);
        }
        for a in self.ancestors(result.shard) {
            if let Some(&last) = self.shards[&a].puts.last() {
                assert!(
                    result.seq > self.puts[last].seq,
                    "seq {} in shard {} is not above seq {} of its ancestor {a}",
                    result.seq,
                    result.shard,
                    self.puts[last].seq
                );
            }
        }
        let n = self.puts.len();
        self.puts.push(ModelPut { key: key.to_vec(), shard: result.shard, seq: result.seq });
        self.key_puts.entry(key.to_vec()).or_default().push(n);
        self.shards.get_mut(&result.shard).expect("shard").puts.push(n);
    }

    /// Records that `group` received `record`, checking exactly-once, per-key order and
    /// lineage order.
    fn receive(&mut self, group: usize, record: &ConsumedRecord) {
        let text = std::str::from_utf8(&record.record.data).expect("data is text");
        let n: usize = text.split(':').next().and_then(|n| n.parse().ok()).expect("data starts with the put index");
        let put = self.puts.get(n).cloned().expect("a record that was put");
        assert_eq!((record.shard, record.record.seq), (put.shard, put.seq), "put {n} read from another place");
        assert_eq!(record.record.partition_key.as_ref(), put.key.as_slice(), "put {n} with another key");
        let ancestors = self.ancestors(put.shard);
        let state = self.groups.entry(group).or_default();
        assert!(
            state.received.insert(n),
            "group {group} received put {n} (shard {}, seq {}) twice",
            put.shard,
            put.seq
        );
        for a in ancestors {
            let missing: Vec<usize> =
                self.shards[&a].puts.iter().copied().filter(|p| !state.received.contains(p)).collect();
            assert!(
                missing.is_empty(),
                "group {group} received shard {} seq {} before puts {missing:?} of its ancestor shard {a}",
                put.shard,
                put.seq
            );
        }
        let done = state.per_key.entry(put.key.clone()).or_default();
        let expected = self.key_puts[&put.key][*done];
        assert_eq!(n, expected, "group {group}: key {:?}'s records out of put order", put.key);
        *done += 1;
    }

    fn check_drained(&self, group: usize) {
        let received = self.groups.get(&group).map_or(0, |g| g.received.len());
        assert_eq!(received, self.puts.len(), "group {group} drained without receiving every record");
    }

    fn check_description(&self, d: &StreamDescription) {
        let ids: Vec<u32> = d.shards.iter().map(|s| s.id).collect();
        let expected_ids: Vec<u32> = self.shards.keys().copied().collect();
        assert_eq!(ids, expected_ids, "describe lists every shard, open or closed");
        for s in &d.shards {
            let m = &self.shards[&s.id];
            assert_eq!(
                (s.hash_start.parse::<u128>().ok(), s.hash_end.parse::<u128>().ok()),
                (Some(m.start), Some(m.end)),
                "shard {} range",
                s.id
            );
            let mut parents = s.parents.clone();
            parents.sort_unstable();
            assert_eq!(parents, m.parents, "shard {} parents", s.id);
            assert_eq!(s.open, m.open, "shard {} open", s.id);
            let seqs: Vec<u64> = m.puts.iter().map(|&p| self.puts[p].seq).collect();
            assert_eq!((s.first_seq, s.last_seq), (seqs.first().copied(), seqs.last().copied()), "shard {} seqs", s.id);
        }
    }
}

struct Harness {
    dir: tempfile::TempDir,
    options: Options,
    engine: Option<Engine>,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = Options {
            clock: Arc::new(ManualClock::new(START_MS)),
            background: false,
            segment_bytes: 4096,
            durability: Durability::Never,
            ..Options::default()
        };
        let engine = Engine::open(dir.path(), options.clone()).expect("open");
        engine.create_stream(STREAM, 1, None).expect("create stream");
        let model = Model::new(&engine.describe_stream(STREAM).expect("describe"));
        Harness { dir, options, engine: Some(engine), model }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine open")
    }

    fn stream(&self) -> Arc<Stream> {
        self.engine().stream(STREAM).expect("stream")
    }

    fn describe(&self) -> StreamDescription {
        self.engine().describe_stream(STREAM).expect("describe")
    }

    fn data(n: usize, len: usize) -> Vec<u8> {
        let mut data = format!("{n}:").into_bytes();
        data.resize(data.len() + len, b'.');
        data
    }

    fn put(&mut self, k: usize, len: usize) {
        let n = self.model.puts.len();
        let result = self.stream().put(&key(k), &Self::data(n, len)).expect("put");
        self.model.acknowledge(&key(k), None, result);
    }

    /// Puts a record with a key of its own at an explicit hash key inside the open shard
    /// picked by index.
    fn put_at(&mut self, pick: usize, offset: u128) {
        let open = self.model.open_shards();
        let (_, shard) = &open[pick % open.len()];
        let hash = match (shard.end - shard.start).checked_add(1) {
            Some(size) => shard.start + offset % size,
            None => offset,
        };
        let n = self.model.puts.len();
        let key = format!("at-{n}").into_bytes();
        let record = PutRecord { partition_key: &key, data: &Self::data(n, 0), explicit_hash_key: Some(hash) };
        let result = self.stream().put_batch(&[record]).expect("put at a hash key");
        self.model.acknowledge(&key, Some(hash), result[0]);
    }

    fn put_batch(&mut self, records: &[(usize, usize)]) {
        let first = self.model.puts.len();
        let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| key(*k)).collect();
        let data: Vec<Vec<u8>> = records.iter().enumerate().map(|(i, (_, len))| Self::data(first + i, *len)).collect();
        let puts: Vec<PutRecord<'_>> = keys
            .iter()
            .zip(&data)
            .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
            .collect();
        let results = self.stream().put_batch(&puts).expect("put batch");
        assert_eq!(results.len(), records.len(), "one result per record");
        for (k, result) in keys.iter().zip(results) {
            self.model.acknowledge(k, None, result);
        }
    }

    fn split(&mut self, pick: usize, at: Option<u128>) {
        let open = self.model.open_shards();
        let (id, parent) = open[pick % open.len()].clone();
        if parent.start == parent.end {
            let err = self.engine().split_shard(STREAM, id, None).expect_err("a one-key shard cannot split");
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
            return;
        }
        let span = parent.end - parent.start;
        let point = match at {
            Some(r) => parent.start + 1 + r % span,
            None => parent.start + span / 2 + 1,
        };
        let expected = [self.model.next_id(), self.model.next_id() + 1];
        let children = self.engine().split_shard(STREAM, id, at.map(|_| point)).expect("split an open shard");
        assert_eq!(children, expected, "children take the next ids, lower range first");
        self.model.shards.get_mut(&id).expect("parent").open = false;
        for (child, (start, end)) in children.into_iter().zip([(parent.start, point - 1), (point, parent.end)]) {
            self.model.shards.insert(child, ModelShard { start, end, parents: vec![id], open: true, puts: Vec::new() });
        }
        self.model.check_open_ranges_cover_the_space();
        self.model.check_description(&self.describe());
    }

    /// Adjacent open pairs, found through `describe` as a client would.
    fn adjacent_pairs(&self) -> Vec<(u32, u32)> {
        let mut open: Vec<(u128, u128, u32)> = self
            .describe()
            .shards
            .iter()
            .filter(|s| s.open)
            .map(|s| (s.hash_start.parse().expect("start"), s.hash_end.parse().expect("end"), s.id))
            .collect();
        open.sort_unstable();
        open.windows(2).filter(|w| w[0].1.checked_add(1) == Some(w[1].0)).map(|w| (w[0].2, w[1].2)).collect()
    }

    fn merge(&mut self, pick: usize, swap: bool) {
        let pairs = self.adjacent_pairs();
        let Some(&(low, high)) = pairs.get(pick % pairs.len().max(1)) else { return };
        let (a, b) = if swap { (high, low) } else { (low, high) };
        let expected = self.model.next_id();
        let child = self.engine().merge_shards(STREAM, a, b).expect("merge adjacent open shards");
        assert_eq!(child, expected, "the child takes the next id");
        let (start, end) = (self.model.shards[&low].start, self.model.shards[&high].end);
        for id in [low, high] {
            self.model.shards.get_mut(&id).expect("parent").open = false;
        }
        let mut parents = vec![low, high];
        parents.sort_unstable();
        self.model.shards.insert(child, ModelShard { start, end, parents, open: true, puts: Vec::new() });
        self.model.check_open_ranges_cover_the_space();
        self.model.check_description(&self.describe());
    }

    fn bad_reshard(&mut self, pick: usize, what: &BadReshard) {
        let before = self.describe();
        let open = self.model.open_shards();
        let (id, shard) = open[pick % open.len()].clone();
        let closed: Vec<u32> = self.model.shards.iter().filter(|(_, s)| !s.open).map(|(&id, _)| id).collect();
        let engine = self.engine();
        let result = match what {
            BadReshard::SplitClosed => match closed.get(pick % closed.len().max(1)) {
                Some(&c) => engine.split_shard(STREAM, c, None).map(|_| ()),
                None => return,
            },
            BadReshard::SplitAtRangeStart => engine.split_shard(STREAM, id, Some(shard.start)).map(|_| ()),
            BadReshard::SplitPastRangeEnd => match shard.end.checked_add(1) {
                Some(past) => engine.split_shard(STREAM, id, Some(past)).map(|_| ()),
                None => return,
            },
            BadReshard::SplitUnknown => engine.split_shard(STREAM, self.model.next_id() + 7, None).map(|_| ()),
            BadReshard::MergeWithItself => engine.merge_shards(STREAM, id, id).map(|_| ()),
            BadReshard::MergeNotAdjacent => {
                let far = open.iter().find(|(_, s)| {
                    s.start > shard.end.saturating_add(1) || s.end.checked_add(1).is_some_and(|e| e < shard.start)
                });
                match far {
                    Some(&(other, _)) => engine.merge_shards(STREAM, id, other).map(|_| ()),
                    None => return,
                }
            }
            BadReshard::MergeClosed => match closed.get(pick % closed.len().max(1)) {
                Some(&c) => engine.merge_shards(STREAM, id, c).map(|_| ()),
                None => return,
            },
        };
        let err = result.expect_err("a reshard that must be refused");
        let fitting = match what {
            BadReshard::SplitClosed | BadReshard::MergeClosed => matches!(err, Error::ShardClosed { .. }),
            BadReshard::SplitUnknown => matches!(err, Error::NotFound { .. }),
            _ => matches!(err, Error::InvalidArgument(_)),
        };
        assert!(fitting, "{what:?} failed with {err:?}");
        assert_eq!(self.describe(), before, "a refused reshard changed the stream");
    }

    fn consume(&mut self, group: usize, workers: usize, rounds: Option<usize>, limit: usize) {
        let stream = self.stream();
        let mut consumers: Vec<Consumer> = (0..workers)
            .map(|w| {
                stream.consumer(&format!("g{group}"), &format!("w{w}"), ConsumerConfig::default()).expect("worker")
            })
            .collect();
        let mut empty_rounds = 0;
        for round in 0.. {
            assert!(round < 100_000, "group g{group} never drained");
            if rounds.is_some_and(|max| round >= max) {
                return;
            }
            let mut got_any = false;
            for consumer in &mut consumers {
                let got = consumer.poll(limit).expect("poll");
                assert!(got.len() <= limit, "a poll returned more than its limit");
                got_any |= !got.is_empty();
                for record in &got {
                    self.model.receive(group, record);
                }
                consumer.checkpoint_all().expect("checkpoint what was read");
            }
            // A worker may see a shard only after another finished its parent: two empty
            // rounds in a row mean there is nothing left.
            empty_rounds = if got_any { 0 } else { empty_rounds + 1 };
            if empty_rounds == 2 {
                break;
            }
        }
        self.model.check_drained(group);
    }

    fn reopen(&mut self) {
        let before = self.describe();
        drop(self.engine.take());
        let engine = Engine::open(self.dir.path(), self.options.clone()).expect("reopen");
        self.engine = Some(engine);
        assert_eq!(self.describe(), before, "describe after reopen");
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Put { key, len } => self.put(*key, *len),
            Op::PutBatch(records) => self.put_batch(records),
            Op::PutAt { pick, offset } => self.put_at(*pick, *offset),
            Op::Split { pick, at } => self.split(*pick, *at),
            Op::Merge { pick, swap } => self.merge(*pick, *swap),
            Op::Bad { pick, what } => self.bad_reshard(*pick, what),
            Op::Consume { group, workers, rounds, limit } => self.consume(*group, *workers, *rounds, *limit),
            Op::Reopen => self.reopen(),
        }
    }

    /// Every group drains, and a new group reads everything from the start, both exactly once
    /// and in lineage order.
    fn final_check(&mut self, workers: usize) {
        self.model.check_description(&self.describe());
        let groups: Vec<usize> = self.model.groups.keys().copied().collect();
        for group in groups {
            self.consume(group, workers, None, 50);
        }
        self.consume(99, workers, None, 50);
        self.reopen();
        self.consume(99, workers, None, 50);
    }
}

fn op(max_workers: usize) -> impl Strategy<Value = Op> {
    let at = prop_oneof![1 => Just(None), 2 => any::<u128>().prop_map(Some)];
    let bad = prop_oneof![
        Just(BadReshard::SplitClosed),
        Just(BadReshard::SplitAtRangeStart),
        Just(BadReshard::SplitPastRangeEnd),
        Just(BadReshard::SplitUnknown),
        Just(BadReshard::MergeWithItself),
        Just(BadReshard::MergeNotAdjacent),
        Just(BadReshard::MergeClosed),
    ];
    let rounds = prop_oneof![1 => Just(None), 2 => (1..4usize).prop_map(Some)];
    prop_oneof![
        8 => (0..KEYS, 0..40usize).prop_map(|(key, len)| Op::Put { key, len }),
        3 => vec((0..KEYS, 0..40usize), 1..20).prop_map(Op::PutBatch),
        1 => (any::<usize>(), any::<u128>()).prop_map(|(pick, offset)| Op::PutAt { pick, offset }),
        3 => (any::<usize>(), at).prop_map(|(pick, at)| Op::Split { pick, at }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, swap)| Op::Merge { pick, swap }),
        1 => (any::<usize>(), bad).prop_map(|(pick, what)| Op::Bad { pick, what }),
        3 => (0..2usize, 1..=max_workers, rounds, 1..30usize)
            .prop_map(|(group, workers, rounds, limit)| Op::Consume { group, workers, rounds, limit }),
        1 => Just(Op::Reopen),
    ]
}

/// 16 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    // No regression files: the tree is shared, and a failing case prints its operations.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn puts_follow_the_shard_map_and_one_worker_groups_read_each_record_once_in_lineage_order(
        ops in vec(op(1), 1..70)
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.run(op);
        }
        harness.final_check(1);
    }

    #[test]
    fn groups_of_several_workers_read_each_record_once_in_lineage_order(ops in vec(op(3), 1..70)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.run(op);
        }
        harness.final_check(3);
    }
}

/// Split a shard with records, merge its children while one is empty, split the (empty)
/// merged shard: the grandchildren wait until the first shard and the non-empty child are read
/// (an empty closed shard is finished only once its parents are).
#[test]
fn children_of_an_empty_closed_shard_wait_for_its_ancestors() {
    let mut harness = Harness::new();
    harness.put(0, 4);
    harness.split(0, None);
    harness.put(3, 4);
    harness.merge(0, false);
    harness.split(0, None);
    harness.put_batch(&[(3, 1), (8, 1), (14, 1), (19, 1)]);
    harness.consume(0, 1, None, 50);
}

/// `Delivery::run_once` writes everything there is: the checkpoint that finishes a parent comes
/// with its last file, and the children's records go out in the same call.
#[test]
fn run_once_delivers_the_children_of_a_parent_it_finishes() {
    let harness = Harness::new();
    let out = tempfile::tempdir().expect("out");
    let stream = harness.stream();
    for i in 0..3 {
        stream.put(b"same", format!("before-{i}").as_bytes()).expect("put");
    }
    harness.engine().split_shard(STREAM, 0, None).expect("split");
    for i in 0..3 {
        stream.put(b"same", format!("after-{i}").as_bytes()).expect("put");
    }
    let files =
        stream.deliver(weir::stream::DeliveryConfig::new(out.path())).expect("deliver").run_once().expect("run");
    let mut lines = 0;
    for file in &files {
        lines += std::fs::read_to_string(file).expect("read").lines().count();
    }
    assert_eq!(lines, 6, "run_once wrote {files:?}");
}

/// Writers put numbered records under their own keys while shards are split and merged under
/// them: every put lands in a shard that was open, no parent holds a record numbered at or
/// above its children's, and a group reads every key's records once, in order.
#[test]
fn puts_racing_splits_and_merges_never_land_in_closed_shards_and_keep_key_order() {
    const WRITERS: usize = 3;
    const PUTS: usize = 150;
    let harness = Harness::new();
    let stream = harness.stream();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written: Vec<Vec<(u32, u64)>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let stream = &stream;
                let stop = &stop;
                scope.spawn(move || {
                    let mut puts = Vec::new();
                    // At least PUTS records, and on until the reshards are done.
                    for i in 0.. {
                        if i >= PUTS && stop.load(std::sync::atomic::Ordering::SeqCst) {
                            break;
                        }
                        let key = format!("writer-{w}-key-{}", i % 4);
                        let put = stream.put(key.as_bytes(), format!("{w}:{i}").as_bytes()).expect("put");
                        puts.push((put.shard, put.seq));
                    }
                    puts
                })
            })
            .collect();
        let mut reshards = 0;
        while reshards < 12 {
            let d = stream.describe();
            let mut open: Vec<(u128, u32)> =
                d.shards.iter().filter(|s| s.open).map(|s| (s.hash_start.parse().expect("start"), s.id)).collect();
            open.sort_unstable();
            if reshards % 3 == 2 && open.len() > 1 {
                harness.engine().merge_shards(STREAM, open[0].1, open[1].1).expect("merge");
            } else {
                let (_, id) = open[reshards % open.len()];
                harness.engine().split_shard(STREAM, id, None).expect("split");
            }
            reshards += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writers.into_iter().map(|w| w.join().expect("writer")).collect()
    });
    let d = stream.describe();
    assert_eq!(d.shards.len(), 1 + 8 * 2 + 4, "eight splits and four merges");
    for s in &d.shards {
        for p in &s.parents {
            let parent = d.shards.iter().find(|x| x.id == *p).expect("parent");
            assert!(!parent.open, "a parent is closed");
            if let (Some(parent_last), Some(child_first)) = (parent.last_seq, s.first_seq) {
                assert!(
                    parent_last < child_first,
                    "shard {p} holds seq {parent_last}, its child {} starts at {child_first}",
                    s.id
                );
            }
        }
    }
    let mut consumer = stream.consumer("racers", "w", ConsumerConfig::default()).expect("consumer");
    let mut next: HashMap<(usize, usize), usize> = HashMap::new();
    let mut total = 0;
    loop {
        let got = consumer.poll(100).expect("poll");
        if got.is_empty() {
            break;
        }
        for r in &got {
            let text = std::str::from_utf8(&r.record.data).expect("text");
            let (w, i) = text.split_once(':').expect("w:i");
            let (w, i): (usize, usize) = (w.parse().expect("w"), i.parse().expect("i"));
            assert_eq!(written[w][i], (r.shard, r.record.seq), "record {text} is where its put said");
            let expected = next.entry((w, i % 4)).or_insert(i % 4);
            assert_eq!(i, *expected, "writer {w}'s key {} out of order", i % 4);
            *expected += 4;
            total += 1;
        }
        consumer.checkpoint_all().expect("checkpoint");
    }
    assert_eq!(total, written.iter().map(Vec::len).sum::<usize>(), "every record once");
}
