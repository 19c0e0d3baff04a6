//! Whole operation sequences against plain in-memory models: the code shared by the `ops` fuzz
//! target (`fuzz/fuzz_targets/ops.rs`) and the `op_sequences` proptest, which include this file
//! with `#[path]`.
//!
//! [`decode`] turns arbitrary bytes into [`Op`]s (every input is some sequence; missing bytes
//! read as zero) and [`run`] applies them to an engine in a scratch directory while keeping
//! three models in step, asserting after every operation that the engine did what the model
//! says:
//!
//! - queues `q` (sent to directly) and `tq` (fed by topic `t` through a raw subscription whose
//!   filter policy is `{"k":["a"]}`): standard queues, 30 s visibility, 600 s retention. The
//!   model keeps every live message (by its unique body) with its send time, visibility and
//!   receive count, and every receipt handle ever issued. A receive must return exactly
//!   `min(max, visible)` messages, each visible in the model; a delete must succeed exactly for
//!   a current handle of a live message of that queue (an expired message may go either way:
//!   the queue drops expired messages lazily);
//! - stream `s` (two shards): every record put, per shard, in sequence order; a key always maps
//!   to one shard; reads return exactly the model's records from where they start;
//! - the clock, a `ManualClock` the ops move forward.
//!
//! Reopens (drop and open the engine) and maintenance runs (compaction, segment deletion) must
//! change nothing the models can see. An input of odd length runs in an encrypted data
//! directory (every frame sealed; the encrypted mode of the target), one of even length in a
//! plain one. Each run ends with a reopen, then drains both queues and
//! reads both shards through, comparing with the models.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions, SendOptions};
use weir::stream::{PutRecord, StartingPosition};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Error, KeySource, ManualClock, Options};

/// Start of the model clock.
pub const T0: u64 = 1_700_000_000_000;
/// Most operations decoded from one input.
pub const MAX_OPS: usize = 96;
const VISIBILITY_MS: u64 = 30_000;
const RETENTION_MS: u64 = 600_000;
const QUEUES: [&str; 2] = ["q", "tq"];
const STREAM: &str = "s";
const SHARDS: u32 = 2;
const TOPIC: &str = "t";
const FILTER: &str = r#"{"k":["a"]}"#;
/// Clock moves: short, past the visibility timeout, past the retention.
const STEPS_MS: [u64; 5] = [1_000, 10_000, 31_000, 61_000, 601_000];
/// Visibility of a receive: the queue's, none, 5 s.
const RECEIVE_VISIBILITY: [Option<u64>; 3] = [None, Some(0), Some(5)];
/// Publish attribute `k`: none, "a" (matches the filter), "b".
const ATTRS: [Option<&str>; 3] = [None, Some("a"), Some("b")];

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Send a message of about `size * 8` bytes to queue `queue` (0: q, 1: tq).
    Send { queue: u8, size: u8 },
    /// Receive up to `max` (1-10) from a queue, with visibility `RECEIVE_VISIBILITY[vis]`.
    Receive { queue: u8, max: u8, vis: u8 },
    /// Delete by a receipt handle issued earlier (`pick` chooses which; 254: a truncated one,
    /// 255: a forged one).
    Delete { queue: u8, pick: u8 },
    /// Purge a queue.
    Purge { queue: u8 },
    /// Publish to the topic with attribute `ATTRS[attr]`.
    Publish { attr: u8, size: u8 },
    /// Put 1-3 records with keys `key`, `key + 1`, ... (mod 8) into the stream.
    Put { count: u8, key: u8, size: u8 },
    /// Read up to `limit` records of a shard from record `from` (mod its length + 1; 255: past
    /// its end, which must fail).
    Read { shard: u8, from: u8, limit: u8 },
    /// Drop the engine and open it again.
    Reopen,
    /// Move the clock by `STEPS_MS[step]`.
    Advance { step: u8 },
    /// Run maintenance (retention, message-log compaction).
    Maintain,
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
}

/// Decodes arbitrary bytes into at most [`MAX_OPS`] operations: a byte chooses the operation
/// (mod 10), the bytes after it give its fields.
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes(data);
    let mut ops = Vec::new();
    while !b.0.is_empty() && ops.len() < MAX_OPS {
        let op = match b.next() % 10 {
            0 => Op::Send { queue: b.next() % 2, size: b.next() },
            1 => Op::Receive { queue: b.next() % 2, max: 1 + b.next() % 10, vis: b.next() % 3 },
            2 => Op::Delete { queue: b.next() % 2, pick: b.next() },
            3 => Op::Purge { queue: b.next() % 2 },
            4 => Op::Publish { attr: b.next() % 3, size: b.next() },
            5 => Op::Put { count: 1 + b.next() % 3, key: b.next() % 8, size: b.next() },
            6 => Op::Read { shard: b.next() % 2, from: b.next(), limit: 1 + b.next() % 20 },
            7 => Op::Reopen,
            8 => Op::Advance { step: b.next() % 5 },
            _ => Op::Maintain,
        };
        ops.push(op);
    }
    ops
}

/// The inverse of [`decode`], for writing seed inputs.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        match *op {
            Op::Send { queue, size } => out.extend([0, queue, size]),
            Op::Receive { queue, max, vis } => out.extend([1, queue, max.saturating_sub(1), vis]),
            Op::Delete { queue, pick } => out.extend([2, queue, pick]),
            Op::Purge { queue } => out.extend([3, queue]),
            Op::Publish { attr, size } => out.extend([4, attr, size]),
            Op::Put { count, key, size } => out.extend([5, count.saturating_sub(1), key, size]),
            Op::Read { shard, from, limit } => out.extend([6, shard, from, limit.saturating_sub(1)]),
            Op::Reopen => out.push(7),
            Op::Advance { step } => out.extend([8, step]),
            Op::Maintain => out.push(9),
        }
    }
    out
}

/// A message as the model knows it.
#[derive(Debug, Clone)]
struct Msg {
    sent_ms: u64,
    visible_at_ms: u64,
    receive_count: u32,
    attr: Option<&'static str>,
}

/// A standard queue: live messages by body (bodies are unique).
#[derive(Debug, Default)]
struct QueueModel {
    msgs: BTreeMap<Vec<u8>, Msg>,
    /// When it was last purged: SQS allows one purge a minute.
    last_purge_ms: Option<u64>,
}

impl QueueModel {
    fn expired(m: &Msg, now: u64) -> bool {
        m.sent_ms + RETENTION_MS <= now
    }

    fn visible(&self, now: u64) -> usize {
        self.msgs.values().filter(|m| !Self::expired(m, now) && m.visible_at_ms <= now).count()
    }
}

/// A receipt handle issued by a receive.
#[derive(Debug, Clone)]
struct Handle {
    text: String,
    queue: usize,
    body: Vec<u8>,
    receive_count: u32,
}

/// The models of everything a run touches.
#[derive(Debug, Default)]
struct Model {
    now: u64,
    queues: [QueueModel; 2],
    handles: Vec<Handle>,
    /// Per shard: (key, data) of every record, index = sequence number.
    shards: [Vec<(Vec<u8>, Vec<u8>)>; 2],
    key_shard: HashMap<Vec<u8>, u32>,
    counter: u64,
}

fn options(clock: &Arc<ManualClock>, key_source: &Option<KeySource>) -> Options {
    Options {
        key_source: key_source.clone(),
        clock: clock.clone(),
        background: false,
        durability: Durability::Never,
        segment_bytes: 4096,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

fn queue_config() -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_millis(VISIBILITY_MS),
        retention: Duration::from_millis(RETENTION_MS),
        ..QueueConfig::default()
    }
}

/// A unique body of about `size * 8` bytes (`tag` says where it came from).
fn body(model: &mut Model, tag: &str, size: u8) -> Vec<u8> {
    model.counter += 1;
    let mut out = format!("{tag}-{}:", model.counter).into_bytes();
    out.extend((0..usize::from(size) * 8).map(|i| b'a' + ((i as u64 + model.counter) % 26) as u8));
    out
}

/// Creates the queues, topic, subscription and stream of a run in `dir`.
fn setup(dir: &Path, clock: &Arc<ManualClock>, key_source: &Option<KeySource>) -> Engine {
    let engine = Engine::open(dir, options(clock, key_source)).expect("open a fresh engine");
    for q in QUEUES {
        engine.create_queue(q, queue_config()).expect("create queue");
    }
    engine.create_topic(TOPIC, TopicConfig::default()).expect("create topic");
    let sub = SubscribeOptions { raw: true, filter_policy: Some(FILTER.into()), ..SubscribeOptions::default() };
    engine.subscribe(TOPIC, Endpoint::Queue(QUEUES[1].into()), sub).expect("subscribe");
    engine.create_stream(STREAM, SHARDS, None).expect("create stream");
    engine
}

/// Runs the operations `data` decodes to against a fresh engine in `dir` (which must be empty
/// or absent), checking every step against the models. Panics on any disagreement.
pub fn run(data: &[u8], dir: &Path) {
    run_ops_in(&decode(data), dir, data.len() % 2 == 1);
}

/// [`run`] for operations already decoded, in a plain data directory.
pub fn run_ops(ops: &[Op], dir: &Path) {
    run_ops_in(ops, dir, false)
}

/// [`run`] for operations already decoded, in an encrypted data directory or a plain one.
pub fn run_ops_in(ops: &[Op], dir: &Path, encrypted: bool) {
    let key_source =
        encrypted.then(|| KeySource::from_text(&format!("ops {}\n", "3c".repeat(32))).expect("the key file"));
    let clock = Arc::new(ManualClock::new(T0));
    let mut engine = Some(setup(dir, &clock, &key_source));
    let mut model = Model { now: T0, ..Model::default() };
    for (i, op) in ops.iter().enumerate() {
        let Some(e) = engine.as_ref() else { break };
        let step = format!("op {i} {op:?}");
        match *op {
            Op::Reopen => {
                // The old engine lets go of the directory before the new one opens it.
                drop(engine.take());
                engine = Some(
                    Engine::open(dir, options(&clock, &key_source)).unwrap_or_else(|e| panic!("{step}: reopen: {e}")),
                );
            }
            _ => apply(e, &clock, &mut model, *op, &step),
        }
    }
    drop(engine);
    let engine = Engine::open(dir, options(&clock, &key_source)).unwrap_or_else(|e| panic!("final reopen: {e}"));
    finish(&engine, &clock, &mut model);
}

fn apply(engine: &Engine, clock: &ManualClock, model: &mut Model, op: Op, step: &str) {
    let now = model.now;
    match op {
        Op::Send { queue, size } => {
            let qi = usize::from(queue % 2);
            let body = body(model, "send", size);
            let q = engine.queue(QUEUES[qi]).expect("queue");
            q.send(&body, SendOptions::default()).unwrap_or_else(|e| panic!("{step}: send: {e}"));
            model.queues[qi].msgs.insert(body, Msg { sent_ms: now, visible_at_ms: now, receive_count: 0, attr: None });
        }
        Op::Receive { queue, max, vis } => {
            let qi = usize::from(queue % 2);
            let max = usize::from(max.clamp(1, 10));
            let visibility = RECEIVE_VISIBILITY[usize::from(vis % 3)];
            let q = engine.queue(QUEUES[qi]).expect("queue");
            let options = ReceiveOptions {
                max,
                wait: Some(Duration::ZERO),
                visibility_timeout: visibility.map(Duration::from_millis),
                ..ReceiveOptions::default()
            };
            let got = q.receive(options).unwrap_or_else(|e| panic!("{step}: receive: {e}"));
            let expected = model.queues[qi].visible(now).min(max);
            assert_eq!(
                got.len(),
                expected,
                "{step}: received {} messages, the model has {expected} to give",
                got.len()
            );
            let visible_at = now + visibility.unwrap_or(VISIBILITY_MS);
            for m in got {
                let shown = String::from_utf8_lossy(&m.body[..m.body.len().min(24)]).into_owned();
                let Some(msg) = model.queues[qi].msgs.get_mut(m.body.as_ref()) else {
                    panic!("{step}: received {shown:?}, which the model does not hold")
                };
                assert!(!QueueModel::expired(msg, now), "{step}: received expired message {shown:?}");
                assert!(msg.visible_at_ms <= now, "{step}: received {shown:?} while it is invisible");
                msg.receive_count += 1;
                msg.visible_at_ms = visible_at;
                assert_eq!(m.receive_count, msg.receive_count, "{step}: receive count of {shown:?}");
                let attr = m.attributes.get("k").map(|v| match v {
                    AttributeValue::String(s) => s.clone(),
                    other => format!("{other:?}"),
                });
                assert_eq!(attr.as_deref(), msg.attr, "{step}: attributes of {shown:?}");
                model.handles.push(Handle {
                    text: m.receipt_handle.clone(),
                    queue: qi,
                    body: m.body.to_vec(),
                    receive_count: m.receive_count,
                });
            }
        }
        Op::Delete { queue, pick } => {
            let qi = usize::from(queue % 2);
            let q = engine.queue(QUEUES[qi]).expect("queue");
            if pick >= 254 || model.handles.is_empty() {
                let handle = match model.handles.first() {
                    Some(h) if pick == 254 => h.text[..h.text.len() / 2].to_string(),
                    _ => format!("01{}", "ab".repeat(32)),
                };
                match q.delete(&handle) {
                    Err(Error::InvalidReceiptHandle(_)) => {}
                    other => panic!("{step}: a forged or truncated handle gave {other:?}"),
                }
                return;
            }
            let h = model.handles[usize::from(pick) % model.handles.len()].clone();
            let result = q.delete(&h.text);
            let live = model.queues[qi].msgs.get(&h.body).cloned();
            match (h.queue == qi, live) {
                (false, _) | (true, None) => {
                    assert!(matches!(result, Err(Error::InvalidReceiptHandle(_))), "{step}: got {result:?}")
                }
                (true, Some(m)) if QueueModel::expired(&m, now) => {
                    // Expired: dropped whenever the queue next looks at it; either answer is right.
                    assert!(result.is_ok() || matches!(result, Err(Error::InvalidReceiptHandle(_))), "{result:?}");
                    model.queues[qi].msgs.remove(&h.body);
                }
                (true, Some(m)) if m.receive_count == h.receive_count => {
                    assert!(result.is_ok(), "{step}: a current handle was refused: {result:?}");
                    model.queues[qi].msgs.remove(&h.body);
                }
                (true, Some(_)) => {
                    assert!(
                        matches!(result, Err(Error::InvalidReceiptHandle(_))),
                        "{step}: a stale handle gave {result:?}"
                    )
                }
            }
        }
        Op::Purge { queue } => {
            let qi = usize::from(queue % 2);
            let result = engine.queue(QUEUES[qi]).expect("queue").purge();
            let too_soon = model.queues[qi].last_purge_ms.is_some_and(|last| now < last + 60_000);
            match result {
                Err(Error::PurgeInProgress { .. }) if too_soon => {}
                Ok(()) if !too_soon => {
                    model.queues[qi].msgs.clear();
                    model.queues[qi].last_purge_ms = Some(now);
                }
                other => panic!("{step}: purge (too soon: {too_soon}): {other:?}"),
            }
        }
        Op::Publish { attr, size } => {
            let attr = ATTRS[usize::from(attr % 3)];
            let body = body(model, "publish", size);
            let mut options = PublishOptions::default();
            if let Some(v) = attr {
                options.attributes.insert("k".into(), AttributeValue::String(v.into()));
            }
            let topic = engine.topic(TOPIC).expect("topic");
            let result = topic.publish(&body, options).unwrap_or_else(|e| panic!("{step}: publish: {e}"));
            let matches = attr == Some("a");
            assert_eq!((result.delivered, result.filtered), (usize::from(matches), usize::from(!matches)), "{step}");
            if matches {
                model.queues[1].msgs.insert(body, Msg { sent_ms: now, visible_at_ms: now, receive_count: 0, attr });
            }
        }
        Op::Put { count, key, size } => {
            let count = usize::from(count.clamp(1, 3));
            let keys: Vec<Vec<u8>> =
                (0..count).map(|j| format!("key-{}", (usize::from(key) + j) % 8).into_bytes()).collect();
            let data: Vec<Vec<u8>> = (0..count).map(|_| body(model, "put", size)).collect();
            let records: Vec<PutRecord<'_>> = keys
                .iter()
                .zip(&data)
                .map(|(k, d)| PutRecord { partition_key: k, data: d, explicit_hash_key: None })
                .collect();
            let stream = engine.stream(STREAM).expect("stream");
            let results = stream.put_batch(&records).unwrap_or_else(|e| panic!("{step}: put: {e}"));
            assert_eq!(results.len(), count, "{step}: one result per record");
            for ((k, d), r) in keys.into_iter().zip(data).zip(results) {
                let shard = *model.key_shard.entry(k.clone()).or_insert(r.shard);
                assert_eq!(r.shard, shard, "{step}: key {:?} moved shards", String::from_utf8_lossy(&k));
                let records = &mut model.shards[r.shard as usize];
                assert_eq!(r.seq, records.len() as u64, "{step}: sequence number in shard {}", r.shard);
                records.push((k, d));
            }
        }
        Op::Read { shard, from, limit } => {
            let shard = u32::from(shard % 2);
            let records = &model.shards[shard as usize];
            let stream = engine.stream(STREAM).expect("stream");
            if from == 255 {
                let past = records.len() as u64 + 5;
                let result = stream.iterator(shard, StartingPosition::AtSequence(past));
                assert!(matches!(result, Err(Error::InvalidArgument(_))), "{step}: reading past the end: {result:?}");
                return;
            }
            let start = usize::from(from) % (records.len() + 1);
            let mut it = stream
                .iterator(shard, StartingPosition::AtSequence(start as u64))
                .unwrap_or_else(|e| panic!("{step}: iterator: {e}"));
            let batch = it.next_batch(usize::from(limit.max(1))).unwrap_or_else(|e| panic!("{step}: read: {e}"));
            let available = records.len() - start;
            assert!(batch.records.len() <= usize::from(limit.max(1)), "{step}: more than the limit");
            assert!(available == 0 || !batch.records.is_empty(), "{step}: nothing read though {available} wait");
            for (j, r) in batch.records.iter().enumerate() {
                let (k, d) = &records[start + j];
                assert_eq!(r.seq, (start + j) as u64, "{step}: sequence number");
                assert_eq!((r.partition_key.as_ref(), r.data.as_ref()), (&k[..], &d[..]), "{step}: record {}", r.seq);
            }
            assert_eq!(batch.behind_records, (available - batch.records.len()) as u64, "{step}: behind_records");
        }
        Op::Advance { step: s } => {
            let by = STEPS_MS[usize::from(s % 5)];
            clock.advance(Duration::from_millis(by));
            model.now += by;
            engine.notify_clock_advanced();
        }
        Op::Maintain => engine.run_maintenance().unwrap_or_else(|e| panic!("{step}: maintenance: {e}")),
        Op::Reopen => {}
    }
}

/// After the last operation and a reopen: every live message can be drained (once the
/// visibility timeouts ran out) and nothing else, and every shard reads through.
fn finish(engine: &Engine, clock: &ManualClock, model: &mut Model) {
    clock.advance(Duration::from_millis(VISIBILITY_MS));
    model.now += VISIBILITY_MS;
    let now = model.now;
    for (qi, name) in QUEUES.iter().enumerate() {
        let q = engine.queue(name).expect("queue");
        let mut drained: Vec<Vec<u8>> = Vec::new();
        loop {
            let options = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
            let got = q.receive(options).unwrap_or_else(|e| panic!("drain {name}: {e}"));
            if got.is_empty() {
                break;
            }
            drained.extend(got.into_iter().map(|m| m.body.to_vec()));
            assert!(drained.len() <= model.queues[qi].msgs.len(), "drain {name}: more messages than the model holds");
        }
        drained.sort();
        let expected: Vec<Vec<u8>> = model.queues[qi]
            .msgs
            .iter()
            .filter(|(_, m)| !QueueModel::expired(m, now))
            .map(|(b, _)| b.clone())
            .collect();
        assert_eq!(drained.len(), expected.len(), "drain {name}: message count");
        assert!(drained == expected, "drain {name}: other messages than the model's");
    }
    let stream = engine.stream(STREAM).expect("stream");
    for shard in 0..SHARDS {
        let records = &model.shards[shard as usize];
        let mut it = stream.iterator(shard, StartingPosition::TrimHorizon).expect("iterator");
        let mut read = Vec::new();
        loop {
            let batch = it.next_batch(1000).unwrap_or_else(|e| panic!("read shard {shard}: {e}"));
            if batch.records.is_empty() {
                break;
            }
            read.extend(batch.records.into_iter().map(|r| (r.partition_key.to_vec(), r.data.to_vec())));
        }
        assert!(&read == records, "shard {shard}: {} records read, {} put", read.len(), records.len());
    }
}
