//! Model-based test of streams: random sequences of puts, batches, reads through every kind of
//! iterator, reopens, clock advances and retention runs, checked against a plain in-memory
//! model of what was put.
//!
//! The model knows every acknowledged record (shard, sequence number, key, data, time). It does
//! not know exactly what retention has deleted, because retention works on whole segments: it
//! knows which records must still be there (those not older than the retention period at the
//! last maintenance run) and checks that what the engine says it stores is a suffix of what was
//! put that contains them, that the start of that suffix only moves forward and only when
//! maintenance ran, and that every read serves exactly the stored part of what it asked for.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use weir::format::Compression;
use weir::stream::hash::hash_key;
use weir::stream::{PutRecord, PutResult, StartingPosition, Stream, StreamDescription, StreamRecord, MIN_RETENTION_MS};
use weir::{Clock, Durability, Engine, Error, ManualClock, Options};

use common::read_to_end;

const STREAM: &str = "model";
const KEYS: usize = 8;
const START_MS: u64 = 1_600_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn key(k: usize) -> Vec<u8> {
    format!("pk-{k}").into_bytes()
}

/// Where a read starts. Sequence numbers and times are picked from what the model holds when
/// the operation runs, by index (modulo the number of candidates).
#[derive(Debug, Clone)]
enum Start {
    TrimHorizon,
    Latest,
    AtSequence(usize),
    AfterSequence(usize),
    AtTimestamp(usize),
    /// A sequence number far past the end: must be refused.
    BeyondTheEnd,
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        data: Vec<u8>,
    },
    PutBatch(Vec<(usize, Vec<u8>, Option<u128>)>),
    Read {
        shard: usize,
        start: Start,
        limit: usize,
    },
    /// A `Latest` iterator serves nothing old, then exactly what is put after it was made.
    LatestSeesOnlyNewPuts {
        key: usize,
        data: Vec<u8>,
    },
    Reopen,
    Advance(Duration),
    /// The clock steps back: records keep the time of the record before them instead.
    StepBack(Duration),
    Maintenance,
}

#[derive(Debug, Clone)]
struct Case {
    shards: u32,
    segment_bytes: u64,
    compression: Compression,
    durability: Durability,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelRecord {
    seq: u64,
    key: Vec<u8>,
    data: Vec<u8>,
    time_ms: u64,
}

#[derive(Debug, Default)]
struct ModelShard {
    /// Every record ever acknowledged in this shard, in sequence order.
    records: Vec<ModelRecord>,
    /// Highest sequence number ever handed out.
    max_seq: Option<u64>,
    /// Index in `records` of the first record the engine said it stores, when last looked at.
    observed_start: usize,
    /// Whether maintenance ran since `observed_start` was taken.
    maintenance_since_observed: bool,
    /// Time of the newest record the shard's log remembers: appends are stamped no earlier.
    last_time_ms: u64,
}

struct Model {
    shards: Vec<ModelShard>,
    ranges: Vec<(u128, u128)>,
    /// Records appended at or after this time must still be stored.
    required_from_ms: u64,
    /// Which shard each partition key went to (a key always goes to the same shard).
    key_shard: HashMap<Vec<u8>, u32>,
}

impl Model {
    fn new(description: &StreamDescription) -> Model {
        let ranges: Vec<(u128, u128)> = description
            .shards
            .iter()
            .map(|s| (s.hash_start.parse().expect("hash start"), s.hash_end.parse().expect("hash end")))
            .collect();
        for (i, s) in description.shards.iter().enumerate() {
            assert_eq!(s.id as usize, i, "shards are numbered from 0");
            assert!(s.open && s.first_seq.is_none() && s.last_seq.is_none(), "a new shard is open and empty");
        }
        Model {
            shards: (0..ranges.len()).map(|_| ModelShard::default()).collect(),
            ranges,
            required_from_ms: 0,
            key_shard: HashMap::new(),
        }
    }

    fn shard_of_hash(&self, hash: u128) -> u32 {
        let matching: Vec<usize> =
            (0..self.ranges.len()).filter(|&i| self.ranges[i].0 <= hash && hash <= self.ranges[i].1).collect();
        assert_eq!(matching.len(), 1, "exactly one shard owns hash key {hash}");
        matching[0] as u32
    }

    /// Records an acknowledged put after checking where it landed.
    fn acknowledge(&mut self, key: &[u8], data: &[u8], explicit: Option<u128>, result: PutResult, now: u64) {
        let expected = self.shard_of_hash(explicit.unwrap_or_else(|| hash_key(key)));
        assert_eq!(result.shard, expected, "put of key {key:?} landed in the wrong shard");
        if explicit.is_none() {
            let first = *self.key_shard.entry(key.to_vec()).or_insert(result.shard);
            assert_eq!(first, result.shard, "the same key went to two shards");
        }
        let shard = &mut self.shards[result.shard as usize];
        if let Some(max) = shard.max_seq {
            assert!(
                result.seq > max,
                "sequence number {} handed out after {max} in shard {}",
                result.seq,
                result.shard
            );
        }
        shard.max_seq = Some(result.seq);
        let time_ms = now.max(shard.last_time_ms);
        shard.last_time_ms = time_ms;
        shard.records.push(ModelRecord { seq: result.seq, key: key.to_vec(), data: data.to_vec(), time_ms });
    }

    /// Checks what the engine says shard `id` stores against the model and returns the index in
    /// the model's records of the first stored one.
    fn stored_start(&mut self, stream: &Stream, id: usize) -> usize {
        let description = stream.describe();
        let d = &description.shards[id];
        let required_from_ms = self.required_from_ms;
        let shard = &mut self.shards[id];
        let start = match (d.first_seq, d.last_seq) {
            (Some(first), Some(last)) => {
                let last_model = shard.records.last().map(|r| r.seq);
                assert_eq!(Some(last), last_model, "shard {id}: newest stored record is not the newest put");
                shard
                    .records
                    .iter()
                    .position(|r| r.seq == first)
                    .unwrap_or_else(|| panic!("shard {id}: first stored sequence {first} was never put"))
            }
            (None, None) => shard.records.len(),
            other => panic!("shard {id}: describe gives half a range: {other:?}"),
        };
        let required = shard.records.iter().position(|r| r.time_ms >= required_from_ms).unwrap_or(shard.records.len());
        assert!(
            start <= required,
            "shard {id}: records within the retention period are gone (start {start}, required from {required})"
        );
        assert!(start >= shard.observed_start, "shard {id}: deleted records came back");
        if !shard.maintenance_since_observed {
            assert_eq!(start, shard.observed_start, "shard {id}: records vanished without maintenance");
        }
        shard.observed_start = start;
        shard.maintenance_since_observed = false;
        start
    }

    fn maintenance_ran(&mut self, now: u64) {
        self.required_from_ms = self.required_from_ms.max(now.saturating_sub(MIN_RETENTION_MS));
        for shard in &mut self.shards {
            shard.maintenance_since_observed = true;
        }
    }
}

/// Whether a read from `position` asks for record `r` (stored or not).
fn wanted(position: StartingPosition, r: &ModelRecord) -> bool {
    match position {
        StartingPosition::TrimHorizon => true,
        StartingPosition::Latest => false,
        StartingPosition::AtSequence(q) => r.seq >= q,
        StartingPosition::AfterSequence(q) => r.seq > q,
        StartingPosition::AtTimestamp(t) => r.time_ms >= t,
    }
}

fn assert_served(served: &[StreamRecord], expected: &[ModelRecord], what: &str) {
    let served: Vec<ModelRecord> = served
        .iter()
        .map(|r| ModelRecord { seq: r.seq, key: r.partition_key.to_vec(), data: r.data.to_vec(), time_ms: r.time_ms })
        .collect();
    assert_eq!(served, expected, "{what}");
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    options: Options,
    engine: Option<Engine>,
    model: Model,
}

impl Harness {
    fn new(case: &Case) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(START_MS));
        let options = Options {
            clock: clock.clone(),
            background: false,
            segment_bytes: case.segment_bytes,
            compression: case.compression,
            durability: case.durability,
            ..Options::default()
        };
        let engine = Engine::open(dir.path(), options.clone()).expect("open");
        engine.create_stream(STREAM, case.shards, None).expect("create stream");
        let model = Model::new(&engine.describe_stream(STREAM).expect("describe"));
        Harness { dir, clock, options, engine: Some(engine), model }
    }

    fn stream(&self) -> Arc<Stream> {
        self.engine.as_ref().expect("engine open").stream(STREAM).expect("stream")
    }

    fn put(&mut self, key: &[u8], data: &[u8]) {
        let result = self.stream().put(key, data).expect("put");
        let now = self.clock.now_ms();
        self.model.acknowledge(key, data, None, result, now);
    }

    fn put_batch(&mut self, records: &[(usize, Vec<u8>, Option<u128>)]) {
        let keys: Vec<Vec<u8>> = records.iter().map(|(k, _, _)| key(*k)).collect();
        let puts: Vec<PutRecord<'_>> = records
            .iter()
            .zip(&keys)
            .map(|((_, data, explicit), key)| PutRecord { partition_key: key, data, explicit_hash_key: *explicit })
            .collect();
        let results = self.stream().put_batch(&puts).expect("put batch");
        assert_eq!(results.len(), records.len(), "one result per record");
        let now = self.clock.now_ms();
        for ((key, (_, data, explicit)), result) in keys.iter().zip(records).zip(results) {
            self.model.acknowledge(key, data, *explicit, result, now);
        }
    }

    fn read(&mut self, shard: usize, start: &Start, limit: usize) {
        let stream = self.stream();
        let stored_from = self.model.stored_start(&stream, shard);
        let records = &self.model.shards[shard].records;
        let next = self.model.shards[shard].max_seq.map_or(0, |m| m + 1);
        let pick = |i: usize, candidates: &[u64]| candidates[i % candidates.len()];
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).chain([0, next]).collect();
        let position = match *start {
            Start::TrimHorizon => StartingPosition::TrimHorizon,
            Start::Latest => StartingPosition::Latest,
            Start::AtSequence(i) => StartingPosition::AtSequence(pick(i, &seqs)),
            Start::AfterSequence(i) => {
                // Just after a record that was put (there is nothing to be after otherwise).
                let candidates: Vec<u64> = records.iter().map(|r| r.seq).collect();
                if candidates.is_empty() {
                    return;
                }
                StartingPosition::AfterSequence(pick(i, &candidates))
            }
            Start::AtTimestamp(i) => {
                let now = self.clock.now_ms();
                let times: Vec<u64> = records
                    .iter()
                    .flat_map(|r| [r.time_ms, r.time_ms + 1])
                    .chain([0, START_MS, now, now + 1])
                    .collect();
                StartingPosition::AtTimestamp(pick(i, &times))
            }
            Start::BeyondTheEnd => {
                let beyond = next + 1_000_000;
                let error = stream
                    .iterator(shard as u32, StartingPosition::AtSequence(beyond))
                    .expect_err("an iterator past the end of the shard");
                assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
                return;
            }
        };
        let expected: Vec<ModelRecord> =
            records[stored_from..].iter().filter(|r| wanted(position, r)).cloned().collect();
        let outcome = read_to_end(&stream, shard as u32, position, limit);
        let what = format!("shard {shard} read from {position:?} in batches of {limit}");
        assert!(outcome.error.is_none(), "{what}: {:?}", outcome.error);
        assert_served(&outcome.records, &expected, &what);
    }

    fn latest_sees_only_new_puts(&mut self, k: usize, data: &[u8]) {
        let key = key(k);
        let stream = self.stream();
        let shard = self.model.shard_of_hash(hash_key(&key));
        let mut iterator = stream.iterator(shard, StartingPosition::Latest).expect("latest iterator");
        let before = iterator.next_batch(10).expect("read at latest");
        assert!(before.records.is_empty() && before.behind_records == 0, "Latest served old records: {before:?}");
        self.put(&key, data);
        let after = iterator.next_batch(10).expect("read after the put");
        let newest = self.model.shards[shard as usize].records.last().cloned().expect("the put");
        assert_served(&after.records, &[newest], "a Latest iterator after one put");
    }

    fn reopen(&mut self) {
        drop(self.engine.take());
        let engine = Engine::open(self.dir.path(), self.options.clone()).expect("reopen");
        for shard in engine.stream(STREAM).expect("stream").shards() {
            let report = shard.log().recovery_report();
            assert!(
                report.truncated.is_empty() && report.damaged.is_empty(),
                "a clean close left something to repair: {report:?}"
            );
        }
        self.engine = Some(engine);
        // A reopened log knows the times of the records it still stores, not of deleted ones.
        let stream = self.stream();
        for id in 0..self.model.shards.len() {
            let start = self.model.stored_start(&stream, id);
            let shard = &mut self.model.shards[id];
            shard.last_time_ms = shard.records[start..].last().map_or(0, |r| r.time_ms);
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Put { key: k, data } => self.put(&key(*k), data),
            Op::PutBatch(records) => self.put_batch(records),
            Op::Read { shard, start, limit } => {
                let shard = shard % self.model.shards.len();
                self.read(shard, start, *limit);
            }
            Op::LatestSeesOnlyNewPuts { key, data } => self.latest_sees_only_new_puts(*key, data),
            Op::Reopen => self.reopen(),
            Op::Advance(by) => self.clock.advance(*by),
            Op::StepBack(by) => self.clock.set_ms(self.clock.now_ms().saturating_sub(by.as_millis() as u64)),
            Op::Maintenance => {
                self.engine.as_ref().expect("engine open").run_maintenance().expect("maintenance");
                let now = self.clock.now_ms();
                self.model.maintenance_ran(now);
            }
        }
    }

    /// Everything the model requires is served, from every shard.
    fn final_check(&mut self) {
        for shard in 0..self.model.shards.len() {
            self.read(shard, &Start::TrimHorizon, 7);
        }
    }
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..64), 1 => vec(any::<u8>(), 64..400), 1 => vec(Just(b'z'), 1024..1500)]
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        2 => Just(Start::TrimHorizon),
        1 => Just(Start::Latest),
        2 => any::<usize>().prop_map(Start::AtSequence),
        2 => any::<usize>().prop_map(Start::AfterSequence),
        2 => any::<usize>().prop_map(Start::AtTimestamp),
        1 => Just(Start::BeyondTheEnd),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let explicit = prop_oneof![6 => Just(None), 1 => any::<u128>().prop_map(Some)];
    prop_oneof![
        6 => (0..KEYS, data()).prop_map(|(key, data)| Op::Put { key, data }),
        3 => vec((0..KEYS, data(), explicit), 1..12).prop_map(Op::PutBatch),
        5 => (0..4usize, start(), 1..20usize).prop_map(|(shard, start, limit)| Op::Read { shard, start, limit }),
        1 => (0..KEYS, data()).prop_map(|(key, data)| Op::LatestSeesOnlyNewPuts { key, data }),
        1 => Just(Op::Reopen),
        3 => prop_oneof![
            2 => (1..10_000u64).prop_map(Duration::from_millis),
            3 => (1..=30u64).prop_map(|h| Duration::from_millis(h * HOUR_MS)),
        ]
        .prop_map(Op::Advance),
        1 => (1..=30u64).prop_map(|h| Op::StepBack(Duration::from_millis(h * HOUR_MS / 2))),
        3 => Just(Op::Maintenance),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1..=3u32,
        512..4096u64,
        prop_oneof![Just(Compression::None), Just(Compression::Auto)],
        prop_oneof![Just(Durability::Never), Just(Durability::Always)],
        vec(op(), 1..60),
    )
        .prop_map(|(shards, segment_bytes, compression, durability, ops)| Case {
            shards,
            segment_bytes,
            compression,
            durability,
            ops,
        })
}

/// 32 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    // No regression files: the tree is shared, and a failing case prints its operations.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn streams_serve_exactly_what_was_put_across_reopens_and_retention(case in case()) {
        let mut harness = Harness::new(&case);
        for op in &case.ops {
            harness.run(op);
        }
        harness.final_check();
    }
}

#[test]
fn sequence_numbers_never_repeat_after_retention_deletes_everything_and_reopen() {
    let case = Case {
        shards: 2,
        segment_bytes: 512,
        compression: Compression::None,
        durability: Durability::Always,
        ops: Vec::new(),
    };
    let mut harness = Harness::new(&case);
    for round in 0..3u8 {
        for k in 0..KEYS {
            harness.put(&key(k), &[round; 100]);
        }
        harness.clock.advance(Duration::from_millis(25 * HOUR_MS));
        harness.run(&Op::Maintenance);
        let stream = harness.stream();
        for shard in 0..2 {
            assert_eq!(harness.model.stored_start(&stream, shard), harness.model.shards[shard].records.len());
            let outcome = read_to_end(&stream, shard as u32, StartingPosition::TrimHorizon, 10);
            assert!(outcome.records.is_empty() && outcome.error.is_none(), "round {round}: {outcome:?}");
        }
        drop(stream);
        harness.reopen();
    }
    // The model checked every put got a number above all earlier ones in its shard.
    assert!(harness.model.shards.iter().all(|s| s.records.len() >= 2), "both shards took several rounds of puts");
}

#[test]
fn records_within_the_retention_period_survive_maintenance_and_older_whole_segments_go() {
    // Three 167-byte frames (56 + 8 + 3 + 100) after the 48-byte header fill a segment.
    let case = Case {
        shards: 1,
        segment_bytes: 550,
        compression: Compression::None,
        durability: Durability::Never,
        ops: Vec::new(),
    };
    let mut harness = Harness::new(&case);
    for i in 0..21u8 {
        harness.put(b"old", &[i; 100]);
    }
    harness.clock.advance(Duration::from_millis(20 * HOUR_MS));
    for i in 0..5u8 {
        harness.put(b"new", &[i; 100]);
    }
    harness.clock.advance(Duration::from_millis(5 * HOUR_MS));
    harness.run(&Op::Maintenance);
    let stream = harness.stream();
    let start = harness.model.stored_start(&stream, 0);
    assert_eq!(start, 21, "the old records filled whole segments of their own, so all of them went");
    harness.final_check();
}

/// (sequence number, data) of the records one shard served.
type ShardRecords = Vec<(u64, Vec<u8>)>;

/// Writers on several threads and one tailing reader per shard: every reader sees exactly the
/// acknowledged records of its shard, once each, in sequence order, under both durability modes.
#[test]
fn concurrent_writers_and_tailing_readers_see_every_record_once_in_order() {
    const WRITERS: usize = 4;
    const PUTS_PER_WRITER: usize = 60;
    const SHARDS: u32 = 2;
    for durability in [Durability::Always, Durability::Never] {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = Options { durability, background: false, segment_bytes: 4096, ..Options::default() };
        let engine = Engine::open(dir.path(), options).expect("open");
        engine.create_stream(STREAM, SHARDS, None).expect("create stream");
        let stream = engine.stream(STREAM).expect("stream");
        let writers_done = std::sync::atomic::AtomicUsize::new(0);
        let (acked, served) = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let stream = &stream;
                    let writers_done = &writers_done;
                    scope.spawn(move || {
                        let mut acked = Vec::new();
                        for n in 0..PUTS_PER_WRITER {
                            let keys: Vec<Vec<u8>> = (0..1 + n % 3).map(|i| key((w + n + i) % KEYS)).collect();
                            let data: Vec<Vec<u8>> =
                                (0..keys.len()).map(|i| format!("w{w}-n{n}-r{i}").into_bytes()).collect();
                            let puts: Vec<PutRecord<'_>> = keys
                                .iter()
                                .zip(&data)
                                .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
                                .collect();
                            let results = stream.put_batch(&puts).expect("put batch");
                            acked.extend(results.into_iter().zip(data).map(|(r, d)| (r.shard, r.seq, d)));
                        }
                        writers_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        acked
                    })
                })
                .collect();
            let readers: Vec<_> = (0..SHARDS)
                .map(|shard| {
                    let stream = &stream;
                    let writers_done = &writers_done;
                    scope.spawn(move || {
                        let mut iterator = stream.iterator(shard, StartingPosition::TrimHorizon).expect("iterator");
                        let mut served: ShardRecords = Vec::new();
                        let mut limit = 1;
                        loop {
                            // Read whether the writers were done before the read, so an empty
                            // read after that means the shard is fully read.
                            let finished = writers_done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
                            let batch = iterator.next_batch(limit).expect("tailing read");
                            limit = limit % 17 + 1;
                            if batch.records.is_empty() {
                                if finished {
                                    return (shard, served);
                                }
                                std::thread::yield_now();
                            }
                            served.extend(batch.records.into_iter().map(|r| (r.seq, r.data.to_vec())));
                        }
                    })
                })
                .collect();
            let acked: Vec<(u32, u64, Vec<u8>)> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
            let served: Vec<(u32, ShardRecords)> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
            (acked, served)
        });
        for (shard, served) in served {
            assert!(
                served.windows(2).all(|w| w[0].0 < w[1].0),
                "{durability:?}: shard {shard} served sequence numbers out of order or twice"
            );
            let mut expected: Vec<(u64, Vec<u8>)> =
                acked.iter().filter(|(s, _, _)| *s == shard).map(|(_, seq, d)| (*seq, d.clone())).collect();
            expected.sort();
            assert_eq!(served, expected, "{durability:?}: shard {shard} served other records than were acknowledged");
        }
    }
}

/// Every record a put acknowledged, read back after a clean reopen, by sequence number.
fn stored_records(dir: &std::path::Path, options: &Options) -> Vec<(u64, Vec<u8>)> {
    let engine = Engine::open(dir, options.clone()).expect("reopen");
    let stream = engine.stream(STREAM).expect("stream");
    let outcome = read_to_end(&stream, 0, StartingPosition::TrimHorizon, 100);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    outcome.records.into_iter().map(|r| (r.seq, r.data.to_vec())).collect()
}

#[test]
fn a_stream_handle_kept_past_its_engine_never_loses_acknowledged_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options { background: false, ..Options::default() };
    let first = Engine::open(dir.path(), options.clone()).expect("open");
    first.create_stream(STREAM, 1, None).expect("create stream");
    let old_handle = first.stream(STREAM).expect("stream");
    drop(first);
    let mut acknowledged = Vec::new();
    // A second engine on the directory may be refused while the old handle lives, or the old
    // handle may be refused once its engine is gone; what may not happen is both writing.
    if let Ok(second) = Engine::open(dir.path(), options.clone()) {
        let new_handle = second.stream(STREAM).expect("stream");
        if let Ok(put) = old_handle.put(b"k", b"through the old handle") {
            acknowledged.push((put.seq, b"through the old handle".to_vec()));
        }
        let put = new_handle.put(b"k", b"through the new handle").expect("put through the live engine");
        acknowledged.push((put.seq, b"through the new handle".to_vec()));
    }
    drop(old_handle);
    let stored = stored_records(dir.path(), &options);
    for record in &acknowledged {
        assert!(stored.contains(record), "acknowledged {record:?} is gone; stored {stored:?}");
    }
}

#[test]
fn a_put_through_a_handle_of_a_deleted_stream_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), Options { background: false, ..Options::default() }).expect("open");
    engine.create_stream(STREAM, 1, None).expect("create stream");
    let handle = engine.stream(STREAM).expect("stream");
    engine.delete_stream(STREAM).expect("delete stream");
    let result = handle.put(b"k", b"into a deleted stream");
    assert!(
        matches!(result, Err(Error::Closed(_)) | Err(Error::NotFound { .. })),
        "a put into a deleted stream was acknowledged: {result:?}"
    );
}
