//! Shared by `tests/fault_injection.rs` and `tests/crash_matrix.rs`: three scripted workloads
//! (stream puts, queue send/receive/delete, topic publish to two queues), a ledger of what each
//! call was acknowledged with, and the checks of what a reopened engine holds against it.
//!
//! The ledger lists acknowledged operations in the order they returned `Ok`, plus the one
//! operation that was under way when the run stopped (a failed call, or the call a kill cut
//! short), whose effect may or may not be on disk. Checking a reopened engine answers: which
//! acknowledged operations survived? Under a promise of everything, all of them; otherwise a
//! prefix per log. The pending operation may be there only on top of every acknowledged one.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir::format::Compression;
use weir::log::fault::FaultyFs;
use weir::queue::{AttributeValue, Queue, QueueConfig, ReceiveOptions, SendEntry, SendOptions, SendResult};
use weir::stream::{PutRecord, StartingPosition};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Error, ManualClock, Options};

/// The stream of the stream workload: two shards.
pub const STREAM: &str = "events";
/// The standard queue of the queue workload: sends, receives, deletes.
pub const WORK: &str = "work";
/// The FIFO queue of the queue workload: sends only; its sequence numbers are the message log's.
pub const ORDERED: &str = "ordered.fifo";
/// The FIFO topic of the topic workload (its publishes carry sequence numbers).
pub const TOPIC: &str = "news.fifo";
/// Subscribed to every publish.
pub const ALL: &str = "all.fifo";
/// Subscribed through a filter to the publishes whose `parity` is `even`.
pub const EVEN: &str = "even.fifo";

/// Small segments, so that a short workload rolls segments too.
pub const SEGMENT_BYTES: u64 = 4096;

/// Which model a workload drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Puts to a two-shard stream.
    Streams,
    /// Sends, receives and deletes on a standard queue, sends to a FIFO queue.
    Queues,
    /// Publishes to a FIFO topic with two subscribed FIFO queues, one filtered.
    Topics,
}

impl Model {
    /// Every model.
    pub const ALL: [Model; 3] = [Model::Streams, Model::Queues, Model::Topics];

    /// Name for messages and environment variables.
    pub fn name(self) -> &'static str {
        match self {
            Model::Streams => "streams",
            Model::Queues => "queues",
            Model::Topics => "topics",
        }
    }

    /// The inverse of [`Model::name`].
    pub fn parse(name: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What survives a power cut, by durability mode (format-spec.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promise {
    /// Every acknowledged operation (`Always`; and every mode under kill -9).
    Everything,
    /// Every operation acknowledged before the last acknowledged flush (`Interval`, whose
    /// periodic sync the in-process tests drive by hand), and a prefix of the rest per log.
    UpToLastFlush,
    /// A prefix per log, possibly empty (`Never`; a lying disk).
    Prefix,
}

impl Promise {
    /// The promise a test can check when it does not know when the last flush ran (a
    /// background thread ran it): `UpToLastFlush` becomes `Prefix`.
    pub fn min_prefix(self) -> Promise {
        match self {
            Promise::UpToLastFlush => Promise::Prefix,
            other => other,
        }
    }

    /// What `durability` promises across a power cut.
    pub fn of(durability: Durability) -> Promise {
        match durability {
            Durability::Always => Promise::Everything,
            Durability::Interval(_) => Promise::UpToLastFlush,
            Durability::Never => Promise::Prefix,
        }
    }
}

/// An acknowledged operation and what it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// A stream put.
    Put { shard: u32, seq: u64, data: String },
    /// `Engine::flush` returned `Ok`.
    Flush,
    /// A send (`seq` for the FIFO queue).
    Send { queue: String, seq: Option<u64>, body: String },
    /// A receive from the standard queue and the bodies it returned.
    Receive { bodies: Vec<String> },
    /// A delete, by body.
    Delete { body: String },
    /// A publish to the topic.
    Publish { even: bool, seq: u64, body: String },
}

/// The operation under way when a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A stream put.
    Put { shard: u32, data: String },
    /// A flush.
    Flush,
    /// A send.
    Send { queue: String, body: String },
    /// A receive from the standard queue.
    Receive,
    /// A delete, by body.
    Delete { body: String },
    /// A publish.
    Publish { even: bool, body: String },
}

impl Acked {
    /// One line of text (no newline), for the child-process protocol.
    pub fn to_line(&self) -> String {
        match self {
            Acked::Put { shard, seq, data } => format!("put {shard} {seq} {data}"),
            Acked::Flush => "flush".to_string(),
            Acked::Send { queue, seq, body } => {
                format!("send {queue} {} {body}", seq.map_or("-".to_string(), |s| s.to_string()))
            }
            Acked::Receive { bodies } => format!("receive {}", bodies.join(" ")).trim_end().to_string(),
            Acked::Delete { body } => format!("delete {body}"),
            Acked::Publish { even, seq, body } => format!("publish {} {seq} {body}", u8::from(*even)),
        }
    }

    /// The log this acknowledgement handed a sequence number in, and the number.
    pub fn issued(&self) -> Option<(String, u64)> {
        match self {
            Acked::Put { shard, seq, .. } => Some((format!("shard-{shard}"), *seq)),
            Acked::Send { seq: Some(seq), .. } | Acked::Publish { seq, .. } => Some((MESSAGES.to_string(), *seq)),
            _ => None,
        }
    }

    /// Parses [`Acked::to_line`].
    pub fn parse(line: &str) -> Option<Acked> {
        let f: Vec<&str> = line.split(' ').collect();
        Some(match f.as_slice() {
            ["put", shard, seq, data] => {
                Acked::Put { shard: shard.parse().ok()?, seq: seq.parse().ok()?, data: data.to_string() }
            }
            ["flush"] => Acked::Flush,
            ["send", queue, seq, body] => Acked::Send {
                queue: queue.to_string(),
                seq: if *seq == "-" { None } else { Some(seq.parse().ok()?) },
                body: body.to_string(),
            },
            ["receive", bodies @ ..] => Acked::Receive { bodies: bodies.iter().map(|b| b.to_string()).collect() },
            ["delete", body] => Acked::Delete { body: body.to_string() },
            ["publish", even, seq, body] => {
                Acked::Publish { even: *even == "1", seq: seq.parse().ok()?, body: body.to_string() }
            }
            _ => return None,
        })
    }
}

impl Pending {
    /// One line of text (no newline), for the child-process protocol.
    pub fn to_line(&self) -> String {
        match self {
            Pending::Put { shard, data } => format!("put {shard} {data}"),
            Pending::Flush => "flush".to_string(),
            Pending::Send { queue, body } => format!("send {queue} {body}"),
            Pending::Receive => "receive".to_string(),
            Pending::Delete { body } => format!("delete {body}"),
            Pending::Publish { even, body } => format!("publish {} {body}", u8::from(*even)),
        }
    }

    /// Parses [`Pending::to_line`].
    pub fn parse(line: &str) -> Option<Pending> {
        let f: Vec<&str> = line.split(' ').collect();
        Some(match f.as_slice() {
            ["put", shard, data] => Pending::Put { shard: shard.parse().ok()?, data: data.to_string() },
            ["flush"] => Pending::Flush,
            ["send", queue, body] => Pending::Send { queue: queue.to_string(), body: body.to_string() },
            ["receive"] => Pending::Receive,
            ["delete", body] => Pending::Delete { body: body.to_string() },
            ["publish", even, body] => Pending::Publish { even: *even == "1", body: body.to_string() },
            _ => return None,
        })
    }
}

/// The message log's key in [`Ledger::issued`].
pub const MESSAGES: &str = "messages";

/// What a workload was told, in order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Acknowledged operations, in the order they returned.
    pub acked: Vec<Acked>,
    /// Per log ("shard-N" or [`MESSAGES`]), the highest sequence number any acknowledged write
    /// got, in any incarnation of the engine, lost ones included: no later write may get it or
    /// a lower one (format-spec.md section 2: numbers are never reused).
    pub issued: BTreeMap<String, u64>,
    /// The operation under way when the run stopped, if any.
    pub pending: Option<Pending>,
    /// Also print every start (`@@ begin <op>`) and acknowledgement (`@@ ack <op>`) on stdout,
    /// flushed at once: how a child process tells its parent (see [`Ledger::read_line`]).
    pub echo: bool,
    /// Receipt handles of the queue workload not yet used for a delete: (body, handle). After
    /// a crash they are presented again (see [`check_new_writes_continue`]).
    pub handles: Vec<(String, String)>,
}

impl Ledger {
    /// An operation starts.
    pub fn begin(&mut self, op: Pending) {
        if self.echo {
            say(&format!("@@ begin {}", op.to_line()));
        }
        self.pending = Some(op);
    }

    /// The operation under way returned `Ok` with `op`.
    pub fn ack(&mut self, op: Acked) {
        if self.echo {
            say(&format!("@@ ack {}", op.to_line()));
        }
        self.pending = None;
        self.note_issued(&op);
        self.acked.push(op);
    }

    /// Records the sequence number `op` was given.
    pub fn note_issued(&mut self, op: &Acked) {
        if let Some((log, seq)) = op.issued() {
            let max = self.issued.entry(log).or_insert(seq);
            *max = (*max).max(seq);
        }
    }

    /// Asserts that a write just acknowledged with `seq` in `log` got a number above every
    /// number an acknowledged write of that log ever got.
    pub fn assert_fresh(&self, log: &str, seq: u64, context: &str) {
        if let Some(&max) = self.issued.get(log) {
            assert!(
                seq > max,
                "{context}: {log} handed out sequence number {seq} again (acknowledged up to {max} before)"
            );
        }
    }

    /// Takes in one line a child printed with `echo` on. Returns what the line says if it is
    /// not a ledger entry (`ready`, `error ...`), `None` otherwise; a line with no `@@ ` marker
    /// (the test harness's own output) is ignored.
    pub fn read_line(&mut self, line: &str) -> Option<String> {
        let at = line.find("@@ ")?;
        let rest = &line[at + 3..];
        if let Some(op) = rest.strip_prefix("begin ") {
            self.begin(Pending::parse(op).unwrap_or_else(|| panic!("malformed line from the child: {line:?}")));
        } else if let Some(op) = rest.strip_prefix("ack ") {
            self.ack(Acked::parse(op).unwrap_or_else(|| panic!("malformed line from the child: {line:?}")));
        } else {
            return Some(rest.to_string());
        }
        None
    }

    /// How many leading acknowledged operations must survive under `promise`.
    pub fn floor(&self, promise: Promise) -> usize {
        match promise {
            Promise::Everything => self.acked.len(),
            Promise::UpToLastFlush => self.acked.iter().rposition(|a| *a == Acked::Flush).map_or(0, |i| i + 1),
            Promise::Prefix => 0,
        }
    }

    /// Acknowledged operations other than flushes.
    pub fn writes(&self) -> usize {
        self.acked.iter().filter(|a| **a != Acked::Flush).count()
    }
}

/// Which acknowledged operations a reopened engine still holds.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// One per acknowledged operation: did its effect survive?
    pub kept: Vec<bool>,
    /// The pending operation's effect, as an acknowledged one, if it is on disk.
    pub pending_applied: Option<Acked>,
}

impl Verdict {
    /// Acknowledged writes (not flushes) whose effect is gone.
    pub fn lost(&self, ledger: &Ledger) -> usize {
        ledger.acked.iter().zip(&self.kept).filter(|(a, k)| **a != Acked::Flush && !**k).count()
    }

    /// Makes `ledger` describe what is on disk: lost operations dropped, the pending one
    /// acknowledged if it happened.
    pub fn resolve(&self, ledger: &mut Ledger) {
        let kept: Vec<Acked> =
            ledger.acked.iter().zip(&self.kept).filter(|(_, k)| **k).map(|(a, _)| a.clone()).collect();
        ledger.acked = kept;
        if let Some(op) = &self.pending_applied {
            ledger.note_issued(op);
            ledger.acked.push(op.clone());
        }
        ledger.pending = None;
    }
}

/// Prints one whole line on stdout and flushes it; exits quietly if the parent is gone.
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out.write_all(format!("{line}\n").as_bytes()).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Options for an engine in these tests: manual clock, no background thread, small
/// uncompressed segments (the byte counts, hence the operation counts, do not vary).
pub fn options(vfs: Arc<dyn weir::log::io::Vfs>, durability: Durability, clock: Arc<ManualClock>) -> Options {
    Options {
        vfs,
        durability,
        clock,
        background: false,
        segment_bytes: SEGMENT_BYTES,
        compression: Compression::None,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

/// A key file of two versions (the newest wraps new data keys), for encrypted test directories.
pub fn test_keys() -> weir::KeySource {
    let text = format!("old {}\nnew {}\n", "11".repeat(32), "a5".repeat(32));
    weir::KeySource::from_text(&text).expect("test keys")
}

/// An engine whose data files live in a [`FaultyFs`]; its directory lock is on the real disk in
/// a temporary directory.
pub struct Rig {
    /// The file system the engine writes to.
    pub fs: Arc<FaultyFs>,
    /// The clock (it never moves unless a test moves it).
    pub clock: Arc<ManualClock>,
    /// The durability mode.
    pub durability: Durability,
    /// The key file of an encrypted data directory (the crash matrix's encrypted mode).
    pub key_source: Option<weir::KeySource>,
    tmp: tempfile::TempDir,
}

impl Rig {
    /// A rig with an empty data directory that exists durably.
    pub fn new(durability: Durability) -> Rig {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fs = Arc::new(FaultyFs::new());
        fs.create_durable_dir_all(tmp.path());
        Rig { fs, clock: Arc::new(ManualClock::new(1_700_000_000_000)), durability, key_source: None, tmp }
    }

    /// A rig whose data directory is encrypted at rest (every frame sealed) with [`test_keys`].
    pub fn encrypted(durability: Durability) -> Rig {
        Rig { key_source: Some(test_keys()), ..Rig::new(durability) }
    }

    /// The data directory (real and empty on disk but for `LOCK`; in memory in `fs`).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The options the engine is opened with.
    pub fn options(&self) -> Options {
        Options { key_source: self.key_source.clone(), ..options(self.fs.clone(), self.durability, self.clock.clone()) }
    }

    /// Opens the engine.
    pub fn open(&self) -> weir::Result<Engine> {
        Engine::open(self.dir(), self.options())
    }
}

/// Creates what `model`'s workload uses.
pub fn setup(engine: &Engine, model: Model) -> weir::Result<()> {
    match model {
        Model::Streams => engine.create_stream(STREAM, 2, None),
        Model::Queues => {
            engine.create_queue(WORK, QueueConfig::default())?;
            engine.create_queue(ORDERED, QueueConfig { fifo: true, ..QueueConfig::default() })
        }
        Model::Topics => {
            engine.create_topic(TOPIC, TopicConfig { fifo: true, content_based_dedup: true })?;
            for q in [ALL, EVEN] {
                engine.create_queue(q, QueueConfig { fifo: true, ..QueueConfig::default() })?;
            }
            let raw = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
            engine.subscribe(TOPIC, Endpoint::Queue(ALL.into()), raw.clone())?;
            let even = SubscribeOptions { filter_policy: Some(r#"{"parity":["even"]}"#.into()), ..raw };
            engine.subscribe(TOPIC, Endpoint::Queue(EVEN.into()), even)?;
            Ok(())
        }
    }
}

/// The explicit hash key that lands in `shard` of the two-shard stream.
pub fn hash_of_shard(shard: u32) -> u128 {
    if shard == 0 {
        0
    } else {
        u128::MAX
    }
}

/// A body unique to (`tag`, `i`) of a size that varies with `i`, so that frames of many sizes
/// meet segment ends.
pub fn body(tag: &str, i: u64) -> String {
    let filler = 60 + (i * 97) % 420;
    let mut s = format!("{tag}-{i}-");
    s.extend((0..filler).map(|k| char::from(b'a' + ((i + k) % 26) as u8)));
    s
}

/// Runs one scripted workload: operation `i` of it is a function of the model and `i` only
/// (and, for deletes, of what earlier receives returned).
#[derive(Debug)]
pub struct Driver {
    /// The model driven.
    pub model: Model,
    /// Makes bodies unique across runs on one data directory.
    pub tag: String,
    /// Every this many operations, one is `Engine::flush` (the `Interval` tick, driven by hand).
    pub flush_every: Option<u64>,
    /// Index of the next operation.
    pub next: u64,
    /// Received and not yet deleted: (body, receipt handle).
    held: Vec<(String, String)>,
}

/// Every other run of six queue operations goes through the `_pending` calls and awaits
/// them (their fsync then runs on the log's sync thread), so that every fault and crash the
/// tests inject reaches that path as much as the blocking one.
fn awaited(i: u64) -> bool {
    (i / 6) % 2 == 1
}

/// Sends one message, blocking or through `send_batch_pending` awaited.
fn send_one(queue: &Queue, data: &str, options: SendOptions, awaited: bool) -> weir::Result<SendResult> {
    if !awaited {
        return queue.send(data.as_bytes(), options);
    }
    let entry = SendEntry { body: data.to_string().into(), options };
    let sent = futures_lite::future::block_on(queue.send_batch_pending(std::slice::from_ref(&entry))?)?;
    sent.into_iter().next().unwrap_or_else(|| Err(Error::InvalidArgument("a send returned no result".into())))
}

impl Driver {
    /// A driver for `model`; `Interval` engines get a flush every sixth operation.
    pub fn new(model: Model, tag: &str, durability: Durability) -> Driver {
        let flush_every = matches!(durability, Durability::Interval(_)).then_some(6);
        Driver { model, tag: tag.to_string(), flush_every, next: 0, held: Vec::new() }
    }

    /// Runs the next operation, recording it in `ledger`.
    pub fn step(&mut self, engine: &Engine, ledger: &mut Ledger) -> weir::Result<()> {
        let i = self.next;
        self.next += 1;
        if self.flush_every.is_some_and(|f| i % f == f - 1) {
            ledger.begin(Pending::Flush);
            engine.flush()?;
            ledger.ack(Acked::Flush);
            return Ok(());
        }
        let data = body(&self.tag, i);
        match self.model {
            Model::Streams => {
                let shard = u32::from(i.is_multiple_of(3));
                ledger.begin(Pending::Put { shard, data: data.clone() });
                let record = PutRecord {
                    partition_key: b"key",
                    data: data.as_bytes(),
                    explicit_hash_key: Some(hash_of_shard(shard)),
                };
                let put = engine.stream(STREAM)?.put_batch(&[record])?;
                let put = put.first().ok_or_else(|| Error::InvalidArgument("a put returned no result".into()))?;
                ledger.ack(Acked::Put { shard: put.shard, seq: put.seq, data });
            }
            Model::Queues => match i % 6 {
                2 | 5 => {
                    ledger.begin(Pending::Receive);
                    let options = ReceiveOptions { max: 3, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
                    let queue = engine.queue(WORK)?;
                    let got = if awaited(i) {
                        futures_lite::future::block_on(queue.receive_pending(options)?)?
                    } else {
                        queue.receive(options)?
                    };
                    let mut bodies = Vec::new();
                    for m in got {
                        let b = String::from_utf8_lossy(&m.body).into_owned();
                        ledger.handles.push((b.clone(), m.receipt_handle.clone()));
                        self.held.push((b.clone(), m.receipt_handle));
                        bodies.push(b);
                    }
                    ledger.ack(Acked::Receive { bodies });
                }
                4 if !self.held.is_empty() => {
                    let (b, handle) = self.held.remove(0);
                    ledger.handles.retain(|(_, h)| *h != handle);
                    ledger.begin(Pending::Delete { body: b.clone() });
                    let queue = engine.queue(WORK)?;
                    if awaited(i) {
                        let deleted = futures_lite::future::block_on(queue.delete_batch_pending(&[handle.as_str()])?)?;
                        deleted.into_iter().next().unwrap_or(Ok(()))?;
                    } else {
                        queue.delete(&handle)?;
                    }
                    ledger.ack(Acked::Delete { body: b });
                }
                3 => {
                    ledger.begin(Pending::Send { queue: ORDERED.into(), body: data.clone() });
                    let options = SendOptions {
                        group: Some(format!("g{}", i % 2)),
                        dedup_id: Some(format!("{}-{i}", self.tag)),
                        ..SendOptions::default()
                    };
                    let sent = send_one(&engine.queue(ORDERED)?, &data, options, awaited(i))?;
                    ledger.ack(Acked::Send { queue: ORDERED.into(), seq: sent.sequence, body: data });
                }
                _ => {
                    ledger.begin(Pending::Send { queue: WORK.into(), body: data.clone() });
                    send_one(&engine.queue(WORK)?, &data, SendOptions::default(), awaited(i))?;
                    ledger.ack(Acked::Send { queue: WORK.into(), seq: None, body: data });
                }
            },
            Model::Topics => {
                let even = i.is_multiple_of(2);
                ledger.begin(Pending::Publish { even, body: data.clone() });
                let parity = if even { "even" } else { "odd" };
                let options = PublishOptions {
                    attributes: [("parity".to_string(), AttributeValue::String(parity.into()))].into_iter().collect(),
                    group: Some(format!("g{}", i % 3)),
                    ..PublishOptions::default()
                };
                let published = engine.topic(TOPIC)?.publish(data.as_bytes(), options)?;
                let seq = published
                    .sequence
                    .ok_or_else(|| Error::InvalidArgument("a FIFO publish returned no sequence number".into()))?;
                ledger.ack(Acked::Publish { even, seq, body: data });
            }
        }
        Ok(())
    }
}

/// The records of one shard, from its first on, or the error that stopped the read.
fn shard_records(engine: &Engine, shard: u32) -> Result<Vec<(u64, String)>, Error> {
    let mut it = engine.stream(STREAM)?.iterator(shard, StartingPosition::TrimHorizon)?;
    let mut out = Vec::new();
    loop {
        let batch = it.next_batch(1000)?;
        if batch.records.is_empty() {
            return Ok(out);
        }
        out.extend(batch.records.into_iter().map(|r| (r.seq, String::from_utf8_lossy(&r.data).into_owned())));
    }
}

fn peek_bodies(engine: &Engine, queue: &str) -> Vec<(String, u32)> {
    engine
        .queue(queue)
        .unwrap_or_else(|e| panic!("queue {queue} after reopen: {e}"))
        .peek(100_000)
        .unwrap_or_else(|e| panic!("peek {queue} after reopen: {e}"))
        .into_iter()
        .map(|m| (String::from_utf8_lossy(&m.body).into_owned(), m.receive_count))
        .collect()
}

/// What the message-log models look like after a prefix of the operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Lists {
    /// Queue workload: the standard queue (body, receive count); topic workload: `ALL`.
    first: Vec<(String, u32)>,
    /// Queue workload: the FIFO queue; topic workload: `EVEN`.
    second: Vec<(String, u32)>,
}

impl Lists {
    fn apply(&mut self, op: &Acked) {
        match op {
            Acked::Send { queue, body, .. } if queue == WORK => self.first.push((body.clone(), 0)),
            Acked::Send { body, .. } => self.second.push((body.clone(), 0)),
            Acked::Receive { bodies } => {
                for (b, count) in &mut self.first {
                    if bodies.contains(b) {
                        *count += 1;
                    }
                }
            }
            Acked::Delete { body } => self.first.retain(|(b, _)| b != body),
            Acked::Publish { even, body, .. } => {
                self.first.push((body.clone(), 0));
                if *even {
                    self.second.push((body.clone(), 0));
                }
            }
            Acked::Put { .. } | Acked::Flush => {}
        }
    }
}

/// Checks a reopened engine against `ledger` under `promise` and says what survived. Panics
/// (with `context`) on anything else: a lost acknowledged operation the promise covers, a hole,
/// a record nobody wrote, a duplicate, a read error.
pub fn verify(engine: &Engine, model: Model, ledger: &Ledger, promise: Promise, context: &str) -> Verdict {
    let floor = ledger.floor(promise);
    match model {
        Model::Streams => verify_stream(engine, ledger, floor, context),
        Model::Queues | Model::Topics => verify_lists(engine, model, ledger, floor, context),
    }
}

fn verify_stream(engine: &Engine, ledger: &Ledger, floor: usize, context: &str) -> Verdict {
    let stream = engine.stream(STREAM).unwrap_or_else(|e| panic!("{context}: stream after reopen: {e}"));
    for shard in stream.shards() {
        let report = shard.log().recovery_report();
        assert!(report.damaged.is_empty(), "{context}: recovery found damage, not a torn tail: {report:?}");
        assert!(report.missing.is_empty(), "{context}: recovery found a hole: {report:?}");
    }
    let mut kept = vec![false; ledger.acked.len()];
    let mut pending_applied = None;
    for shard in 0..2u32 {
        let records = shard_records(engine, shard).unwrap_or_else(|e| panic!("{context}: reading shard {shard}: {e}"));
        let mine: Vec<(usize, u64, &String)> = ledger
            .acked
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Acked::Put { shard: s, seq, data } if *s == shard => Some((i, *seq, data)),
                _ => None,
            })
            .collect();
        let must = mine.iter().filter(|(i, ..)| *i < floor).count();
        let mut matched = 0;
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "{context}: shard {shard} serves numbers out of order");
        // Numbers may jump where a crash skipped reserved ones; records may not: position k
        // holds the k-th acknowledged put (or the pending one, last), with its own number.
        for (k, (seq, data)) in records.iter().enumerate() {
            match mine.get(k) {
                Some((i, acked_seq, acked_data)) if acked_data == &data => {
                    assert_eq!(seq, acked_seq, "{context}: shard {shard}: record moved from sequence {acked_seq}");
                    kept[*i] = true;
                    matched += 1;
                }
                _ => {
                    let pending_here =
                        matches!(&ledger.pending, Some(Pending::Put { shard: s, data: d }) if *s == shard && d == data);
                    assert!(
                        pending_here && k == mine.len() && k + 1 == records.len(),
                        "{context}: shard {shard} position {k} holds {:.40}..., which is not the next acknowledged put \
                         ({} acknowledged, pending {:?})",
                        data,
                        mine.len(),
                        ledger.pending.as_ref().map(Pending::to_line).map(|l| l.chars().take(40).collect::<String>())
                    );
                    pending_applied = Some(Acked::Put { shard, seq: *seq, data: data.clone() });
                }
            }
        }
        assert!(
            matched >= must,
            "{context}: shard {shard} kept {matched} acknowledged puts; the durability mode promises {must} of {}",
            mine.len()
        );
    }
    // A flush survives if every write before it did.
    let mut all_before = true;
    for (i, a) in ledger.acked.iter().enumerate() {
        if *a == Acked::Flush {
            kept[i] = all_before;
        } else {
            all_before &= kept[i];
        }
    }
    Verdict { kept, pending_applied }
}

fn observe_lists(engine: &Engine, model: Model) -> Lists {
    let (a, b) = if model == Model::Queues { (WORK, ORDERED) } else { (ALL, EVEN) };
    Lists { first: peek_bodies(engine, a), second: peek_bodies(engine, b) }
}

fn verify_lists(engine: &Engine, model: Model, ledger: &Ledger, floor: usize, context: &str) -> Verdict {
    let observed = observe_lists(engine, model);
    let mut states = vec![Lists::default()];
    for op in &ledger.acked {
        let mut next = states.last().cloned().unwrap_or_default();
        next.apply(op);
        states.push(next);
    }
    let n = ledger.acked.len();
    let verdict =
        |k: usize, pending_applied: Option<Acked>| Verdict { kept: (0..n).map(|i| i < k).collect(), pending_applied };
    let last = &states[n];
    if let Some(pending) = &ledger.pending {
        let mut with = last.clone();
        let applied = match pending {
            Pending::Send { queue, body } => Some(Acked::Send { queue: queue.clone(), seq: None, body: body.clone() }),
            Pending::Delete { body } => Some(Acked::Delete { body: body.clone() }),
            Pending::Publish { even, body } => Some(Acked::Publish { even: *even, seq: 0, body: body.clone() }),
            Pending::Receive => {
                // Which messages the cut-off receive took is unknown: those counted once more.
                let same_bodies = observed.first.len() == last.first.len()
                    && observed.second == last.second
                    && observed
                        .first
                        .iter()
                        .zip(&last.first)
                        .all(|((b, c), (lb, lc))| b == lb && (*c == *lc || *c == lc + 1));
                let bodies: Vec<String> = observed
                    .first
                    .iter()
                    .zip(&last.first)
                    .filter(|((_, c), (_, lc))| *c == lc + 1)
                    .map(|((b, _), _)| b.clone())
                    .collect();
                (same_bodies && !bodies.is_empty()).then_some(Acked::Receive { bodies })
            }
            Pending::Put { .. } | Pending::Flush => None,
        };
        if let Some(op) = applied {
            with.apply(&op);
            if with == observed {
                return verdict(n, Some(op));
            }
        }
    }
    for k in (floor..=n).rev() {
        if states[k] == observed {
            return verdict(k, None);
        }
    }
    // Bodies are "<tag>-<i>-<filler>": show "<tag>-<i>" and the receive count.
    let label = |(b, c): &(String, u32)| format!("{}x{c}", b.splitn(3, '-').take(2).collect::<Vec<_>>().join("-"));
    let show = |l: &Lists| {
        let (first, second): (Vec<String>, Vec<String>) =
            (l.first.iter().map(label).collect(), l.second.iter().map(label).collect());
        format!("{first:?} / {second:?}")
    };
    panic!(
        "{context}: the reopened engine holds a state no prefix of at least {floor} of the {n} acknowledged \
         operations (plus the pending {:?}) explains.\n observed: {}\n expected (all acknowledged): {}",
        ledger.pending.as_ref().map(Pending::to_line).map(|l| l.chars().take(40).collect::<String>()),
        show(&observed),
        show(last)
    );
}

/// After a check: writes are accepted, and the sequence numbers they get continue above every
/// surviving one (the ledger must already be resolved). The writes are added to `ledger`.
pub fn check_new_writes_continue(engine: &Engine, model: Model, ledger: &mut Ledger, tag: &str, context: &str) {
    match model {
        Model::Streams => {
            for shard in 0..2u32 {
                let surviving = ledger.acked.iter().filter_map(|a| match a {
                    Acked::Put { shard: s, seq, .. } if *s == shard => Some(*seq),
                    _ => None,
                });
                let surviving = surviving.max();
                let data = format!("{tag}-probe-{shard}");
                let record = PutRecord {
                    partition_key: b"probe",
                    data: data.as_bytes(),
                    explicit_hash_key: Some(hash_of_shard(shard)),
                };
                let put = engine
                    .stream(STREAM)
                    .and_then(|s| s.put_batch(&[record]))
                    .unwrap_or_else(|e| panic!("{context}: put after reopen: {e}"));
                assert_eq!(put[0].shard, shard, "{context}: the probe's shard");
                let seq = put[0].seq;
                assert!(
                    surviving.is_none_or(|m| seq > m),
                    "{context}: sequence {seq} after reopen is not above {surviving:?}"
                );
                ledger.assert_fresh(&format!("shard-{shard}"), seq, context);
                // Read back: the new record follows the surviving ones directly.
                let records = shard_records(engine, shard).unwrap_or_else(|e| panic!("{context}: read after put: {e}"));
                assert_eq!(records.last(), Some(&(seq, data.clone())), "{context}: the probe is the last record");
                ledger.ack(Acked::Put { shard, seq, data });
            }
        }
        Model::Queues => {
            let max = ledger.acked.iter().filter_map(|a| match a {
                Acked::Send { seq: Some(s), .. } => Some(*s),
                _ => None,
            });
            let max = max.max();
            let data = format!("{tag}-probe");
            let options =
                SendOptions { group: Some("probe".into()), dedup_id: Some(data.clone()), ..SendOptions::default() };
            let sent = engine
                .queue(ORDERED)
                .and_then(|q| q.send(data.as_bytes(), options))
                .unwrap_or_else(|e| panic!("{context}: send after reopen: {e}"));
            let seq = sent.sequence.unwrap_or_else(|| panic!("{context}: a FIFO send without a sequence number"));
            assert!(max.is_none_or(|m| seq > m), "{context}: new sequence {seq} is not above the surviving {max:?}");
            ledger.assert_fresh(MESSAGES, seq, context);
            ledger.ack(Acked::Send { queue: ORDERED.into(), seq: Some(seq), body: data });
            check_old_handles(engine, ledger, tag, context);
        }
        Model::Topics => {
            let max = ledger
                .acked
                .iter()
                .filter_map(|a| match a {
                    Acked::Publish { seq, .. } => Some(*seq),
                    _ => None,
                })
                .max();
            let data = format!("{tag}-probe");
            let options = PublishOptions {
                attributes: [("parity".to_string(), AttributeValue::String("even".into()))].into_iter().collect(),
                group: Some("probe".into()),
                ..PublishOptions::default()
            };
            let published = engine
                .topic(TOPIC)
                .and_then(|t| t.publish(data.as_bytes(), options))
                .unwrap_or_else(|e| panic!("{context}: publish after reopen: {e}"));
            let seq = published.sequence.unwrap_or_else(|| panic!("{context}: a FIFO publish without a sequence"));
            assert_eq!(published.delivered, 2, "{context}: the publish after reopen reached both queues");
            assert!(max.is_none_or(|m| seq > m), "{context}: new sequence {seq} is not above the surviving {max:?}");
            ledger.assert_fresh(MESSAGES, seq, context);
            ledger.ack(Acked::Publish { even: true, seq, body: data });
        }
    }
}

/// Receipt handles issued before a crash, presented after it: each deletes its own message
/// (if that survived and was not received again since) or is rejected, and never acts on
/// another message, not even one sent after the crash under a key the crash freed. New
/// messages are sent and received first, so that they are in flight as the old ones were.
fn check_old_handles(engine: &Engine, ledger: &mut Ledger, tag: &str, context: &str) {
    let handles = std::mem::take(&mut ledger.handles);
    if handles.is_empty() {
        return;
    }
    let queue = engine.queue(WORK).unwrap_or_else(|e| panic!("{context}: queue after reopen: {e}"));
    for i in 0..handles.len() as u64 + 3 {
        let data = body(&format!("{tag}-handles"), i);
        ledger.begin(Pending::Send { queue: WORK.into(), body: data.clone() });
        queue.send(data.as_bytes(), SendOptions::default()).unwrap_or_else(|e| panic!("{context}: send: {e}"));
        ledger.ack(Acked::Send { queue: WORK.into(), seq: None, body: data });
    }
    loop {
        ledger.begin(Pending::Receive);
        let options = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
        let got = queue.receive(options).unwrap_or_else(|e| panic!("{context}: receive: {e}"));
        let bodies: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
        ledger.ack(Acked::Receive { bodies: bodies.clone() });
        if bodies.is_empty() {
            break;
        }
    }
    for (own, handle) in handles {
        let before = peek_bodies(engine, WORK);
        ledger.begin(Pending::Delete { body: own.clone() });
        match queue.delete(&handle) {
            Ok(()) => {
                let after = peek_bodies(engine, WORK);
                let gone: Vec<&String> =
                    before.iter().map(|(b, _)| b).filter(|b| !after.iter().any(|(a, _)| a == *b)).collect();
                assert_eq!(gone, vec![&own], "{context}: an old receipt handle of {own:?} deleted {gone:?}");
                ledger.ack(Acked::Delete { body: own });
            }
            Err(Error::InvalidReceiptHandle(_)) => {
                ledger.pending = None;
                assert_eq!(peek_bodies(engine, WORK), before, "{context}: a rejected handle changed the queue");
            }
            Err(e) => panic!("{context}: an old receipt handle failed with {e}, not as an invalid handle"),
        }
    }
}

/// The log a model writes to: the message log, or a stream shard.
pub fn log_dir(data_dir: &Path, model: Model, shard: u32) -> PathBuf {
    match model {
        Model::Streams => data_dir.join("streams").join(STREAM).join(format!("shard-{shard:06}")),
        Model::Queues | Model::Topics => data_dir.join("queues"),
    }
}

/// Asserts that `error` is the typed error a storage failure must surface as: an I/O error or a
/// poisoned log, naming a path inside the data directory.
pub fn assert_storage_error(error: &Error, data_dir: &Path, context: &str) {
    match error {
        Error::Io { path, .. } | Error::Poisoned { path, .. } => {
            assert!(
                path.starts_with(data_dir),
                "{context}: the error names {} outside the data directory",
                path.display()
            )
        }
        other => panic!("{context}: a storage failure surfaced as {other:?}, not as Error::Io or Error::Poisoned"),
    }
}
