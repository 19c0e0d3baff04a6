//! Model-based test of queues: random sequences of sends, batches, receives, deletes (with
//! current, stale and cross-queue handles), visibility changes, clock moves, purges, reopens,
//! maintenance runs and redrives, checked against a plain in-memory model of SQS semantics.
//!
//! The model holds every live message with its state (visible time, receive count, group,
//! incarnation: a dead-letter move or a redrive makes a new one), the FIFO deduplication window
//! and every receipt handle ever issued. Where SQS leaves a choice to the queue (which visible
//! messages a standard receive returns, which FIFO group goes first) the model checks that the
//! choice was a legal one and that no more was left behind than allowed, then follows it. After
//! every operation `peek` and `attributes` of every queue must match the model exactly, so a
//! dead-lettered message is in exactly one queue at all times, and a reopen or a maintenance
//! run (which moves live messages forward and deletes segments) must change nothing. Each case
//! ends with a reopen and a full drain checked the same way. Snapshots of the queue indexes are
//! written at random points (and at the first clean close); every reopen loads the newest and
//! replays the log's tail, and its index must equal, field by field, the one a full replay of
//! the log builds. Segments are 1 KiB so that logs
//! roll often and maintenance has segments to reclaim.
//!
//! Three configurations: a standard queue; a FIFO queue (three groups, four deduplication ids,
//! content-based deduplication on or off, a queue delay or none, deduplication per queue or per
//! message group, switched back and forth by an operation); a queue with a dead-letter queue
//! (max receives 1 to 3, both standard or both FIFO), whose dead letters go back by redrive or
//! by message move tasks (as fast as they go, or one a second, stepped by maintenance runs;
//! cancelled now and then). Purges follow SQS's one-a-minute rule.
//!
//! The deterministic tests at the end pin down single behaviours, most of them library bugs
//! this model found (and that are fixed).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use weir::queue::move_task::MoveTaskStatus;
use weir::queue::{
    AttributeValue, Attributes, DedupScope, PeekedMessage, Queue, QueueConfig, ReceiveOptions, ReceivedMessage,
    RedrivePolicy, RedriveResult, SendEntry, SendOptions, SendResult,
};
use weir::{Clock, Engine, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;
const VISIBILITY_MS: u64 = 30_000;
const RETENTION_MS: u64 = 600_000;
const DEDUP_MS: u64 = 300_000;
const SEGMENT_BYTES: u64 = 1024;

const GROUPS: [&str; 3] = ["red", "green", "blue"];
const WORDS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
const PADS: [usize; 3] = [0, 200, 700];
const DEDUP_IDS: [&str; 4] = ["d0", "d1", "d2", "d3"];
/// Clock moves: short ones, just past the visibility timeout, past the longest visibility
/// override, past the deduplication window, past retention.
const ADVANCES_MS: [u64; 9] = [500, 5_000, 10_000, 29_999, 30_000, 61_000, 121_000, 301_000, 700_000];
const RECEIVE_VISIBILITY_S: [Option<u64>; 4] = [None, Some(0), Some(5), Some(120)];
const SEND_DELAY_S: [Option<u64>; 4] = [None, Some(0), Some(5), Some(60)];
const CHANGE_VISIBILITY_S: [u64; 3] = [0, 10, 45];

const MAIN: usize = 0;
const DEAD: usize = 1;

// ----- cases -----

#[derive(Debug, Clone, Copy)]
enum Kind {
    Standard,
    Fifo {
        content_dedup: bool,
        delay_s: u64,
        /// Deduplication per message group (`DeduplicationScope=messageGroup`) at the start.
        group_scope: bool,
    },
    /// A queue with a dead-letter queue, both standard or both FIFO.
    WithDeadLetter {
        max_receives: u32,
        fifo: bool,
    },
}

#[derive(Debug, Clone)]
struct SendSpec {
    word: usize,
    pad: usize,
    delay: usize,
    group: usize,
    dedup: Option<usize>,
    attributes: bool,
    /// An invalid entry (empty body): a batch must reject it alone.
    empty: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Send(SendSpec),
    SendBatch(Vec<SendSpec>),
    Receive {
        queue: usize,
        max: usize,
        visibility: usize,
    },
    Delete {
        pick: usize,
        cross: bool,
    },
    DeleteBatch(Vec<usize>),
    ChangeVisibility {
        pick: usize,
        timeout: usize,
    },
    ChangeVisibilityBatch(Vec<(usize, usize)>),
    Advance(usize),
    Purge {
        queue: usize,
    },
    Reopen,
    /// Write the queue index snapshot now: later reopens load it and replay only what follows.
    Snapshot,
    Maintenance,
    Redrive,
    /// FIFO: switch the deduplication scope between queue and message group.
    ToggleDedupScope,
    /// Start a move task of the dead letters back home: as fast as it goes, or one a second.
    StartMoveTask {
        rated: bool,
    },
    /// Cancel the latest move task.
    CancelMoveTask,
}

fn send_spec(empty_weight: u32) -> impl Strategy<Value = SendSpec> {
    (
        0..WORDS.len(),
        0..PADS.len(),
        0..SEND_DELAY_S.len(),
        0..GROUPS.len(),
        prop::option::weighted(0.8, 0..DEDUP_IDS.len()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(f64::from(empty_weight) / 100.0),
    )
        .prop_map(|(word, pad, delay, group, dedup, attributes, empty)| SendSpec {
            word,
            pad,
            delay,
            group,
            dedup,
            attributes,
            empty,
        })
}

fn op(kind: Kind) -> BoxedStrategy<Op> {
    let queues: usize = if matches!(kind, Kind::WithDeadLetter { .. }) { 2 } else { 1 };
    let common = prop_oneof![
        20 => send_spec(0).prop_map(Op::Send),
        7 => vec(send_spec(10), 1..=5).prop_map(Op::SendBatch),
        22 => (0..queues, 1..=10usize, 0..RECEIVE_VISIBILITY_S.len())
            .prop_map(|(queue, max, visibility)| Op::Receive { queue, max, visibility }),
        10 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(pick, cross)| Op::Delete { pick, cross }),
        4 => vec(any::<usize>(), 1..=4).prop_map(Op::DeleteBatch),
        8 => (any::<usize>(), 0..CHANGE_VISIBILITY_S.len())
            .prop_map(|(pick, timeout)| Op::ChangeVisibility { pick, timeout }),
        3 => vec((any::<usize>(), 0..CHANGE_VISIBILITY_S.len()), 1..=4).prop_map(Op::ChangeVisibilityBatch),
        12 => (0..ADVANCES_MS.len()).prop_map(Op::Advance),
        1 => (0..queues).prop_map(|queue| Op::Purge { queue }),
        4 => Just(Op::Reopen),
        3 => Just(Op::Snapshot),
        5 => Just(Op::Maintenance),
    ];
    match kind {
        Kind::WithDeadLetter { .. } => prop_oneof![
            30 => common,
            1 => Just(Op::Redrive),
            2 => any::<bool>().prop_map(|rated| Op::StartMoveTask { rated }),
            1 => Just(Op::CancelMoveTask),
        ]
        .boxed(),
        Kind::Fifo { .. } => prop_oneof![30 => common, 1 => Just(Op::ToggleDedupScope)].boxed(),
        Kind::Standard => common.boxed(),
    }
}

fn case(kind: impl Strategy<Value = Kind>) -> impl Strategy<Value = (Kind, Vec<Op>)> {
    kind.prop_flat_map(|kind| (Just(kind), vec(op(kind), 30..=45)))
}

/// 24 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    // No regression files: the tree is shared, and a failing case prints its operations.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ----- the model -----

#[derive(Debug, Clone)]
struct Msg {
    id: String,
    body: Vec<u8>,
    attributes: Attributes,
    sent_ms: u64,
    visible_at_ms: u64,
    first_receive_ms: u64,
    receive_count: u32,
    group: Option<String>,
    sequence: Option<u64>,
    /// A move between FIFO queues gave it a new sequence number, learnt at its next receive.
    renumbered: bool,
    /// Bumped by every move between queues: handles name one incarnation.
    incarnation: u32,
}

impl Msg {
    fn in_flight(&self, now: u64) -> bool {
        self.receive_count > 0 && self.visible_at_ms > now
    }

    fn state(&self, now: u64) -> &'static str {
        if self.visible_at_ms <= now {
            "visible"
        } else if self.receive_count > 0 {
            "in_flight"
        } else {
            "delayed"
        }
    }
}

#[derive(Debug, Clone)]
struct FirstSend {
    id: String,
    sequence: Option<u64>,
    expires_ms: u64,
    /// What it was deduplicated by: its group, and its id (or its body under content-based
    /// deduplication), to key it again when the scope changes.
    group: String,
    dedup: String,
}

#[derive(Debug)]
struct QueueModel {
    name: &'static str,
    fifo: bool,
    content_dedup: bool,
    delay_ms: u64,
    /// (dead-letter queue index, max receives).
    redrive: Option<(usize, u32)>,
    /// Live messages in key order (send order; arrivals by move go to the end).
    msgs: Vec<Msg>,
    dedup: HashMap<String, FirstSend>,
    /// Every send written (not a duplicate) with what it was deduplicated by: a change of
    /// scope keys the window again from these, as a reopen keys it from the log.
    sends: Vec<FirstSend>,
    /// FIFO: deduplication per message group.
    group_scope: bool,
    /// When it was last purged: SQS allows one purge a minute.
    last_purge_ms: Option<u64>,
    /// Its attributes as created (for changes).
    config: QueueConfig,
}

impl QueueModel {
    fn position(&self, id: &str, incarnation: u32) -> Option<usize> {
        self.msgs.iter().position(|m| m.id == id && m.incarnation == incarnation)
    }

    /// The key a send is deduplicated by under the queue's scope.
    fn dedup_key(&self, group: &str, dedup: &str) -> String {
        if self.group_scope {
            format!("{group}\u{0}{dedup}")
        } else {
            dedup.to_string()
        }
    }
}

#[derive(Debug, Clone)]
struct Issued {
    queue: usize,
    handle: String,
    id: String,
    incarnation: u32,
    receive_count: u32,
}

/// What the model expects of one handle operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Rejected,
    /// The message expired: SQS would have deleted it, but the queue may still hold it (see
    /// `Harness::lingering`); either answer is acceptable, and it is gone afterwards.
    Either,
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Option<Engine>,
    queues: Vec<QueueModel>,
    handles: Vec<Issued>,
    /// Expired messages the queue may still hold in its index (until a reopen, maintenance or
    /// purge surely drops them; a receive or a timer may drop some), by queue: SQS calls them
    /// gone, but a handle to one may still delete it or change its visibility.
    lingering: Vec<(usize, Msg)>,
    ids_seen: HashSet<String>,
    last_sequence: Option<u64>,
    /// Every FIFO sequence number seen.
    sequences: HashSet<u64>,
    /// The latest message move task.
    task: Option<TaskModel>,
}

/// A message move task of the dead-letter queue back to the main queue, as the engine runs it:
/// it moves the dead letters that were there when it started, in key order, passing over those
/// in flight (until a reopen starts its pass again), at its rate by a token bucket that starts
/// empty and holds one second's worth.
#[derive(Debug, Clone)]
struct TaskModel {
    handle: String,
    rate: Option<u64>,
    status: MoveTaskStatus,
    moved: u64,
    /// (id, incarnation) of the dead letters it may move.
    eligible: HashSet<(String, u32)>,
    /// Those its pass went by, in flight then.
    passed: HashSet<(String, u32)>,
    milli_tokens: u64,
    last_ms: u64,
}

impl TaskModel {
    /// Moves allowed at `now` (refilling the bucket).
    fn budget(&mut self, now: u64) -> u64 {
        let Some(rate) = self.rate else { return u64::MAX };
        self.milli_tokens = (self.milli_tokens + now.saturating_sub(self.last_ms) * rate).min(rate * 1000);
        self.last_ms = self.last_ms.max(now);
        self.milli_tokens / 1000
    }
}

fn open_engine(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), SEGMENT_BYTES)).expect("open engine")
}

fn body_of(spec: &SendSpec) -> Vec<u8> {
    if spec.empty {
        return Vec::new();
    }
    let mut body = WORDS[spec.word].as_bytes().to_vec();
    body.resize(body.len() + PADS[spec.pad], b'.');
    body
}

fn attributes_of(spec: &SendSpec) -> Attributes {
    if !spec.attributes {
        return Attributes::new();
    }
    [
        ("count".to_string(), AttributeValue::Number(format!("{}", spec.word * 7))),
        ("colour".to_string(), AttributeValue::String(GROUPS[spec.group].to_string())),
        ("raw".to_string(), AttributeValue::Binary(vec![0u8, 1, 2, spec.pad as u8].into())),
    ]
    .into_iter()
    .collect()
}

/// A handle refused: not current (or forged), or, for a visibility change, current but its
/// message no longer in flight.
fn is_rejected_handle<T: std::fmt::Debug>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::InvalidReceiptHandle(_) | Error::MessageNotInflight(_)))
}

impl Harness {
    fn new(kind: Kind) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(T0));
        let engine = open_engine(dir.path(), &clock);
        let retention = Duration::from_millis(RETENTION_MS);
        let plain = |name, config: &QueueConfig| QueueModel {
            name,
            fifo: false,
            content_dedup: false,
            delay_ms: 0,
            redrive: None,
            msgs: Vec::new(),
            dedup: HashMap::new(),
            sends: Vec::new(),
            group_scope: false,
            last_purge_ms: None,
            config: config.clone(),
        };
        let queues = match kind {
            Kind::Standard => {
                let config = QueueConfig { retention, ..QueueConfig::default() };
                engine.create_queue("plain", config.clone()).expect("create");
                vec![plain("plain", &config)]
            }
            Kind::Fifo { content_dedup, delay_s, group_scope } => {
                let config = QueueConfig {
                    content_based_dedup: content_dedup,
                    delay: Duration::from_secs(delay_s),
                    retention,
                    dedup_scope: if group_scope { DedupScope::MessageGroup } else { DedupScope::Queue },
                    ..QueueConfig::fifo()
                };
                engine.create_queue("orders.fifo", config.clone()).expect("create");
                vec![QueueModel {
                    fifo: true,
                    content_dedup,
                    delay_ms: delay_s * 1000,
                    group_scope,
                    ..plain("orders.fifo", &config)
                }]
            }
            Kind::WithDeadLetter { max_receives, fifo } => {
                let (work, dead, base) = if fifo {
                    ("work.fifo", "dead.fifo", QueueConfig::fifo())
                } else {
                    ("work", "dead", QueueConfig::default())
                };
                let dead_config = QueueConfig { retention, ..base.clone() };
                engine.create_queue(dead, dead_config.clone()).expect("dlq");
                let redrive = RedrivePolicy { dead_letter_queue: dead.into(), max_receives };
                let config = QueueConfig { retention, redrive: Some(redrive), ..base };
                engine.create_queue(work, config.clone()).expect("create");
                vec![
                    QueueModel { fifo, redrive: Some((DEAD, max_receives)), ..plain(work, &config) },
                    QueueModel { fifo, ..plain(dead, &dead_config) },
                ]
            }
        };
        Harness {
            dir,
            clock,
            engine: Some(engine),
            queues,
            handles: Vec::new(),
            lingering: Vec::new(),
            ids_seen: HashSet::new(),
            last_sequence: None,
            sequences: HashSet::new(),
            task: None,
        }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine is open")
    }

    fn queue(&self, q: usize) -> Queue {
        self.engine().queue(self.queues[q].name).expect("queue")
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Forgets messages past retention (SQS deletes them).
    fn expire(&mut self) {
        let now = self.now();
        for (qi, q) in self.queues.iter_mut().enumerate() {
            q.msgs.retain(|m| {
                let alive = m.sent_ms + RETENTION_MS > now;
                if !alive {
                    self.lingering.push((qi, m.clone()));
                }
                alive
            });
        }
    }

    fn run(&mut self, op: &Op) {
        self.expire();
        match op {
            Op::Send(spec) => self.send(std::slice::from_ref(spec), false),
            Op::SendBatch(specs) => self.send(specs, true),
            Op::Receive { queue, max, visibility } => {
                self.receive(*queue % self.queues.len(), *max, RECEIVE_VISIBILITY_S[*visibility]);
            }
            Op::Delete { pick, cross } => self.delete(*pick, *cross),
            Op::DeleteBatch(picks) => self.delete_batch(picks),
            Op::ChangeVisibility { pick, timeout } => self.change_visibility(*pick, CHANGE_VISIBILITY_S[*timeout]),
            Op::ChangeVisibilityBatch(entries) => self.change_visibility_batch(entries),
            Op::Advance(i) => self.clock.advance(Duration::from_millis(ADVANCES_MS[*i])),
            Op::Purge { queue } => {
                let q = *queue % self.queues.len();
                let now = self.now();
                let too_soon = self.queues[q].last_purge_ms.is_some_and(|last| now < last + 60_000);
                match self.queue(q).purge() {
                    Err(Error::PurgeInProgress { retry_after_ms, .. }) if too_soon => {
                        let last = self.queues[q].last_purge_ms.unwrap_or_default();
                        assert_eq!(retry_after_ms, last + 60_000 - now, "time until the next purge");
                    }
                    Ok(()) if !too_soon => {
                        self.queues[q].msgs.clear();
                        self.queues[q].last_purge_ms = Some(now);
                        self.lingering.retain(|(lq, _)| *lq != q);
                    }
                    other => panic!("purge (too soon: {too_soon}): {other:?}"),
                }
            }
            Op::Reopen => self.reopen(),
            Op::Snapshot => self.engine().snapshot_queues().expect("snapshot"),
            Op::Maintenance => {
                self.engine().run_maintenance().expect("maintenance");
                self.lingering.clear();
                self.step_task();
            }
            Op::Redrive => self.redrive(),
            Op::ToggleDedupScope => self.toggle_dedup_scope(),
            Op::StartMoveTask { rated } => self.start_move_task(*rated),
            Op::CancelMoveTask => self.cancel_move_task(),
        }
        self.expire();
        self.check();
    }

    fn reopen(&mut self) {
        self.engine = None;
        self.engine = Some(open_engine(self.dir.path(), &self.clock));
        // The index open built (from a snapshot and the log's tail, or the whole log) is the
        // one a full replay builds, field by field; the checks after every operation hold it
        // to the model.
        let engine = self.engine();
        let replayed = engine.replayed_queue_index_dump().expect("full replay");
        assert_eq!(engine.queue_index_dump(), replayed, "index after open ({:?})", engine.queue_index_recovery());
        self.lingering.clear();
        // A resumed task starts its pass again with an empty bucket, its count kept.
        let now = self.now();
        if let Some(task) = self.task.as_mut().filter(|t| t.status == MoveTaskStatus::Running) {
            task.passed.clear();
            task.milli_tokens = 0;
            task.last_ms = now;
        }
    }

    fn forget_lingering(&mut self, h: &Issued) {
        self.lingering.retain(|(_, m)| !(m.id == h.id && m.incarnation == h.incarnation));
    }

    // ----- send -----

    fn send(&mut self, specs: &[SendSpec], batch: bool) {
        let now = self.now();
        let q = MAIN;
        let fifo = self.queues[q].fifo;
        let entries: Vec<SendEntry> = specs
            .iter()
            .map(|spec| {
                let options = if fifo {
                    let dedup_id = match spec.dedup {
                        Some(d) => Some(DEDUP_IDS[d].to_string()),
                        // Without content-based deduplication every FIFO send needs an id.
                        None if !self.queues[q].content_dedup => Some(DEDUP_IDS[spec.word % DEDUP_IDS.len()].into()),
                        None => None,
                    };
                    SendOptions {
                        group: Some(GROUPS[spec.group].to_string()),
                        dedup_id,
                        attributes: attributes_of(spec),
                        ..SendOptions::default()
                    }
                } else {
                    SendOptions {
                        delay: SEND_DELAY_S[spec.delay].map(Duration::from_secs),
                        attributes: attributes_of(spec),
                        ..SendOptions::default()
                    }
                };
                SendEntry { body: body_of(spec).into(), options }
            })
            .collect();
        let results: Vec<Result<SendResult, Error>> = if batch {
            self.queue(q).send_batch(&entries).expect("send batch")
        } else {
            let e = &entries[0];
            vec![self.queue(q).send(&e.body, e.options.clone())]
        };
        assert_eq!(results.len(), entries.len(), "one result per entry");
        for (entry, result) in entries.iter().zip(results) {
            if entry.body.is_empty() {
                assert!(matches!(result, Err(Error::InvalidArgument(_))), "empty body accepted: {result:?}");
                continue;
            }
            let result = result.expect("valid send");
            let model = &mut self.queues[q];
            let group = entry.options.group.clone().unwrap_or_default();
            let dedup = match &entry.options.dedup_id {
                Some(d) => format!("id:{d}"),
                None => format!("content:{}", String::from_utf8_lossy(&entry.body)),
            };
            let dedup_key = model.fifo.then(|| model.dedup_key(&group, &dedup));
            if let Some(first) = dedup_key.as_ref().and_then(|k| model.dedup.get(k)).filter(|f| f.expires_ms > now) {
                assert!(result.duplicate, "a send within the deduplication window is a duplicate: {result:?}");
                assert_eq!(result.message_id, first.id, "a duplicate returns the first message's id");
                assert_eq!(result.sequence, first.sequence, "a duplicate returns the first message's sequence");
                continue;
            }
            assert!(!result.duplicate, "a new message is no duplicate: {result:?}");
            assert!(self.ids_seen.insert(result.message_id.clone()), "message id {} reused", result.message_id);
            if model.fifo {
                let sequence = result.sequence.expect("a FIFO send has a sequence number");
                assert!(self.last_sequence < Some(sequence), "FIFO sequence numbers increase");
                assert!(self.sequences.insert(sequence), "sequence number {sequence} given twice");
                self.last_sequence = Some(sequence);
            } else {
                assert_eq!(result.sequence, None, "standard sends have no sequence number");
            }
            let delay_ms = entry.options.delay.map_or(model.delay_ms, |d| d.as_millis() as u64);
            if let Some(key) = dedup_key {
                let first = FirstSend {
                    id: result.message_id.clone(),
                    sequence: result.sequence,
                    expires_ms: now + DEDUP_MS,
                    group,
                    dedup,
                };
                model.sends.push(first.clone());
                model.dedup.insert(key, first);
            }
            model.msgs.push(Msg {
                id: result.message_id,
                body: entry.body.to_vec(),
                attributes: entry.options.attributes.clone(),
                sent_ms: now,
                visible_at_ms: now + delay_ms,
                first_receive_ms: 0,
                receive_count: 0,
                group: entry.options.group.clone(),
                sequence: result.sequence,
                renumbered: false,
                incarnation: 0,
            });
        }
    }

    // ----- receive -----

    /// Indices (into the queue's messages) a receive may return now, grouped as the queue must
    /// serve them: one list per FIFO group (a prefix of each may be taken, in order), or one
    /// singleton list per message for a standard queue (any subset may be taken).
    fn candidates(&self, q: usize, now: u64) -> Vec<Vec<usize>> {
        let model = &self.queues[q];
        if !model.fifo {
            return (0..model.msgs.len()).filter(|&i| model.msgs[i].visible_at_ms <= now).map(|i| vec![i]).collect();
        }
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, m) in model.msgs.iter().enumerate() {
            groups.entry(m.group.as_deref().expect("FIFO message has a group")).or_default().push(i);
        }
        groups
            .into_values()
            .filter(|members| !members.iter().any(|&i| model.msgs[i].in_flight(now)))
            .map(|members| members.into_iter().take_while(|&i| model.msgs[i].visible_at_ms <= now).collect())
            .filter(|prefix: &Vec<usize>| !prefix.is_empty())
            .collect()
    }

    fn receive(&mut self, q: usize, max: usize, visibility_s: Option<u64>) {
        let now = self.now();
        let options = ReceiveOptions {
            max,
            wait: Some(Duration::ZERO),
            visibility_timeout: visibility_s.map(Duration::from_secs),
            ..ReceiveOptions::default()
        };
        let got = self.queue(q).receive(options).expect("receive");
        let visibility_ms = visibility_s.map_or(VISIBILITY_MS, |s| s * 1000);
        let model = &self.queues[q];
        let candidates = self.candidates(q, now);
        // With a dead-letter queue, messages received max_receives times move instead.
        let limit = model.redrive.map(|(_, max_receives)| max_receives);
        let over = |i: usize| limit.is_some_and(|l| model.msgs[i].receive_count >= l);
        let movable: HashSet<String> =
            candidates.iter().flatten().filter(|&&i| over(i)).map(|&i| model.msgs[i].id.clone()).collect();
        // What may be delivered: the candidates but those that move (a FIFO group goes on
        // with its next message after one moved).
        let candidates: Vec<Vec<usize>> =
            candidates.into_iter().map(|list| list.into_iter().filter(|&i| !over(i)).collect()).collect();
        let deliverable: usize = candidates.iter().map(Vec::len).sum();
        assert_eq!(
            got.len(),
            max.min(deliverable),
            "receive of up to {max} from {} returned {} with {deliverable} deliverable: {:?}",
            model.name,
            got.len(),
            got.iter().map(|m| &m.message_id).collect::<Vec<_>>()
        );
        let mut positions = Vec::with_capacity(got.len());
        for m in &got {
            let i = model
                .msgs
                .iter()
                .position(|x| x.id == m.message_id)
                .unwrap_or_else(|| panic!("received {} which is not live in {}", m.message_id, model.name));
            assert!(!positions.contains(&i), "message {} delivered twice in one receive", m.message_id);
            assert!(!over(i), "message {} over max receives was delivered, not moved", m.message_id);
            positions.push(i);
        }
        // Every delivered message was a candidate; FIFO: each group's share is a prefix of it,
        // in order.
        for list in &candidates {
            let taken: Vec<usize> = positions.iter().copied().filter(|i| list.contains(i)).collect();
            assert_eq!(taken, list[..taken.len()], "FIFO receive out of group order in {}", model.name);
        }
        for &i in &positions {
            assert!(candidates.iter().flatten().any(|&c| c == i), "message {} was not receivable", model.msgs[i].id);
        }
        for (m, &i) in got.iter().zip(&positions) {
            self.check_received(q, i, m, now);
            let msg = &mut self.queues[q].msgs[i];
            if msg.renumbered {
                let sequence = m.sequence.expect("a FIFO message has a sequence number");
                assert!(msg.sequence < Some(sequence), "a moved message's sequence number is later");
                assert!(self.sequences.insert(sequence), "sequence number {sequence} given twice");
                msg.sequence = Some(sequence);
                msg.renumbered = false;
            }
            msg.receive_count += 1;
            msg.visible_at_ms = now + visibility_ms;
            if msg.first_receive_ms == 0 {
                msg.first_receive_ms = now.max(1);
            }
            self.handles.push(Issued {
                queue: q,
                handle: m.receipt_handle.clone(),
                id: msg.id.clone(),
                incarnation: msg.incarnation,
                receive_count: msg.receive_count,
            });
        }
        if let Some((dead, _)) = self.queues[q].redrive {
            self.follow_dead_letter_moves(q, dead, &movable, got.len() < max);
        }
    }

    fn check_received(&self, q: usize, i: usize, m: &ReceivedMessage, now: u64) {
        let msg = &self.queues[q].msgs[i];
        assert_eq!(&m.body[..], &msg.body[..], "body of {}", msg.id);
        assert_eq!(m.attributes, msg.attributes, "attributes of {}", msg.id);
        assert_eq!(m.receive_count, msg.receive_count + 1, "receive count of {}", msg.id);
        assert_eq!(m.sent_ms, msg.sent_ms, "sent time of {}", msg.id);
        let first = if msg.first_receive_ms == 0 { now.max(1) } else { msg.first_receive_ms };
        assert_eq!(m.first_receive_ms, first, "first receive time of {}", msg.id);
        assert_eq!(m.group, msg.group, "group of {}", msg.id);
        if !msg.renumbered {
            assert_eq!(m.sequence, msg.sequence, "sequence number of {}", msg.id);
        }
    }

    /// Finds which messages a receive moved to the dead-letter queue (they are new there, in
    /// the order they were moved), checks each was due to move, and moves them in the model.
    fn follow_dead_letter_moves(&mut self, q: usize, dead: usize, movable: &HashSet<String>, all_due: bool) {
        let now = self.now();
        let peeked = self.queue(dead).peek(10_000).expect("peek dead-letter queue");
        let known: HashSet<&str> = self.queues[dead].msgs.iter().map(|m| m.id.as_str()).collect();
        let arrived: Vec<String> =
            peeked.iter().filter(|p| !known.contains(p.message_id.as_str())).map(|p| p.message_id.clone()).collect();
        for id in &arrived {
            assert!(movable.contains(id), "message {id} moved to the dead-letter queue before its time");
        }
        if all_due {
            let arrived: HashSet<String> = arrived.iter().cloned().collect();
            assert_eq!(&arrived, movable, "a receive that came back short left due messages unmoved");
        }
        for id in arrived {
            let i = self.queues[q].msgs.iter().position(|m| m.id == id).expect("moved message was in the source");
            let mut msg = self.queues[q].msgs.remove(i);
            arrive(&mut msg, now);
            self.queues[dead].msgs.push(msg);
        }
    }

    // ----- handles -----

    fn pick(&self, pick: usize) -> Option<Issued> {
        (!self.handles.is_empty()).then(|| self.handles[pick % self.handles.len()].clone())
    }

    /// What the queue should say about `h` used on queue `q` (`in_flight`: the operation also
    /// needs the message in flight).
    fn expect_handle(&self, h: &Issued, q: usize, in_flight: bool) -> (Expect, Option<usize>) {
        if h.queue != q {
            return (Expect::Rejected, None);
        }
        let now = self.now();
        let Some(i) = self.queues[q].position(&h.id, h.incarnation) else {
            // Expired: gone for SQS, but the queue may not have dropped it yet.
            let held = self.lingering.iter().any(|(lq, m)| {
                *lq == q
                    && m.id == h.id
                    && m.incarnation == h.incarnation
                    && m.receive_count == h.receive_count
                    && (!in_flight || m.in_flight(now))
            });
            return (if held { Expect::Either } else { Expect::Rejected }, None);
        };
        let msg = &self.queues[q].msgs[i];
        if msg.receive_count != h.receive_count || (in_flight && !msg.in_flight(now)) {
            return (Expect::Rejected, None);
        }
        (Expect::Ok, Some(i))
    }

    fn delete(&mut self, pick: usize, cross: bool) {
        let Some(h) = self.pick(pick) else {
            let result = self.queue(MAIN).delete("no handle was ever issued");
            assert!(is_rejected_handle(&result), "made-up handle accepted: {result:?}");
            return;
        };
        let q = if cross { (h.queue + 1) % self.queues.len() } else { h.queue };
        let (expect, _) = self.expect_handle(&h, q, false);
        let result = self.queue(q).delete(&h.handle);
        check_outcome(&result, expect, "delete", &h);
        if expect == Expect::Either {
            self.forget_lingering(&h);
        }
        if expect == Expect::Ok {
            let i = self.queues[q].position(&h.id, h.incarnation).expect("deleted message was live");
            self.queues[q].msgs.remove(i);
        }
    }

    fn delete_batch(&mut self, picks: &[usize]) {
        if self.handles.is_empty() {
            return;
        }
        let handles: Vec<Issued> = picks.iter().filter_map(|&p| self.pick(p)).collect();
        // A batch goes to one queue: the first handle's.
        let q = handles[0].queue;
        let expected: Vec<Expect> = handles.iter().map(|h| self.expect_handle(h, q, false).0).collect();
        let texts: Vec<&str> = handles.iter().map(|h| h.handle.as_str()).collect();
        let results = self.queue(q).delete_batch(&texts).expect("delete batch");
        assert_eq!(results.len(), handles.len(), "one result per entry");
        for ((result, expect), h) in results.iter().zip(&expected).zip(&handles) {
            check_outcome(result, *expect, "delete in a batch", h);
        }
        for (h, expect) in handles.iter().zip(expected) {
            if expect == Expect::Either {
                self.forget_lingering(h);
            }
            if expect == Expect::Ok {
                if let Some(i) = self.queues[q].position(&h.id, h.incarnation) {
                    self.queues[q].msgs.remove(i);
                }
            }
        }
    }

    fn change_visibility(&mut self, pick: usize, timeout_s: u64) {
        let Some(h) = self.pick(pick) else { return };
        let now = self.now();
        let (expect, i) = self.expect_handle(&h, h.queue, true);
        let result = self.queue(h.queue).change_visibility(&h.handle, Duration::from_secs(timeout_s));
        check_outcome(&result, expect, "change visibility", &h);
        self.apply_visibility(&h, expect, i, result.is_ok(), now + timeout_s * 1000);
    }

    fn apply_visibility(&mut self, h: &Issued, expect: Expect, i: Option<usize>, ok: bool, visible_at_ms: u64) {
        if expect == Expect::Either && ok {
            for (_, m) in self.lingering.iter_mut().filter(|(_, m)| m.id == h.id && m.incarnation == h.incarnation) {
                m.visible_at_ms = visible_at_ms;
            }
        }
        if let Some(i) = i {
            self.queues[h.queue].msgs[i].visible_at_ms = visible_at_ms;
        }
    }

    /// Every entry is judged against the state before the batch; accepted changes apply in
    /// order (the last one for a message wins).
    fn change_visibility_batch(&mut self, entries: &[(usize, usize)]) {
        if self.handles.is_empty() {
            return;
        }
        let now = self.now();
        let mut picked: Vec<(Issued, u64)> =
            entries.iter().filter_map(|&(p, t)| self.pick(p).map(|h| (h, CHANGE_VISIBILITY_S[t]))).collect();
        // Known library bug: one handle twice in a batch can leave state a reopen changes (see
        // `visibility_batch_naming_one_message_twice_leaves_the_same_state_as_a_reopen`). Until
        // it is fixed, a batch names each handle once.
        let mut seen = HashSet::new();
        picked.retain(|(h, _)| seen.insert(h.handle.clone()));
        // A batch goes to one queue: the first handle's.
        let q = picked[0].0.queue;
        let expected: Vec<(Expect, Option<usize>)> =
            picked.iter().map(|(h, _)| self.expect_handle(h, q, true)).collect();
        let args: Vec<(&str, Duration)> =
            picked.iter().map(|(h, t)| (h.handle.as_str(), Duration::from_secs(*t))).collect();
        let results = self.queue(q).change_visibility_batch(&args).expect("change visibility batch");
        assert_eq!(results.len(), picked.len(), "one result per entry");
        for (((h, t), (expect, i)), result) in picked.iter().zip(expected).zip(results) {
            check_outcome(&result, expect, "change visibility in a batch", h);
            self.apply_visibility(h, expect, i, result.is_ok(), now + t * 1000);
        }
    }

    // ----- redrive -----

    fn redrive(&mut self) {
        let now = self.now();
        let result = self.engine().redrive(self.queues[DEAD].name, None).expect("redrive");
        let mut expected = RedriveResult { moved: 0, skipped: 0 };
        let mut stay = Vec::new();
        for mut msg in std::mem::take(&mut self.queues[DEAD].msgs) {
            if msg.in_flight(now) {
                expected.skipped += 1;
                stay.push(msg);
            } else {
                expected.moved += 1;
                arrive(&mut msg, now);
                self.queues[MAIN].msgs.push(msg);
            }
        }
        self.queues[DEAD].msgs = stay;
        assert_eq!(result, expected, "redrive result");
    }

    fn start_move_task(&mut self, rated: bool) {
        let now = self.now();
        let rate = rated.then_some(1);
        let result = self.engine().start_message_move_task(self.queues[DEAD].name, None, rate);
        if self.task.as_ref().is_some_and(|t| t.status == MoveTaskStatus::Running) {
            assert!(matches!(result, Err(Error::AlreadyExists { .. })), "a second running task: {result:?}");
            return;
        }
        let info = result.expect("start a move task");
        let dead = &self.queues[DEAD].msgs;
        assert_eq!((info.status, info.moved, info.to_move), (MoveTaskStatus::Running, 0, dead.len() as u64));
        self.task = Some(TaskModel {
            handle: info.handle,
            rate: rate.map(u64::from),
            status: MoveTaskStatus::Running,
            moved: 0,
            eligible: dead.iter().map(|m| (m.id.clone(), m.incarnation)).collect(),
            passed: HashSet::new(),
            milli_tokens: 0,
            last_ms: now,
        });
    }

    fn cancel_move_task(&mut self) {
        let result = self.task.as_ref().map(|t| self.engine().cancel_message_move_task(&t.handle));
        match (self.task.as_mut(), result) {
            (None, _) | (_, None) => {}
            (Some(task), Some(result)) if task.status == MoveTaskStatus::Running => {
                let info = result.expect("cancel a running task");
                assert_eq!((info.status, info.moved), (MoveTaskStatus::Cancelled, task.moved));
                task.status = MoveTaskStatus::Cancelled;
            }
            (Some(_), Some(result)) => assert!(matches!(result, Err(Error::InvalidArgument(_))), "{result:?}"),
        }
    }

    /// What a maintenance run does with the running task: one step at its rate, or (without a
    /// rate) steps until it ends.
    fn step_task(&mut self) {
        let now = self.now();
        let Some(mut task) = self.task.take() else { return };
        if task.status == MoveTaskStatus::Running {
            let mut budget = task.budget(now);
            if budget > 0 {
                let mut done = true;
                let mut i = 0;
                while i < self.queues[DEAD].msgs.len() {
                    let msg = &self.queues[DEAD].msgs[i];
                    let key = (msg.id.clone(), msg.incarnation);
                    if !task.eligible.contains(&key) {
                        break; // arrived after the start, and so has everything after it
                    }
                    if task.passed.contains(&key) {
                        i += 1;
                    } else if msg.in_flight(now) {
                        task.passed.insert(key);
                        i += 1;
                    } else if budget == 0 {
                        done = false;
                        break;
                    } else {
                        let mut msg = self.queues[DEAD].msgs.remove(i);
                        arrive(&mut msg, now);
                        self.queues[MAIN].msgs.push(msg);
                        task.moved += 1;
                        budget -= 1;
                        task.milli_tokens = task.milli_tokens.saturating_sub(1000);
                    }
                }
                if done {
                    task.status = MoveTaskStatus::Completed;
                }
            }
        }
        let info = self.engine().message_move_task(&task.handle).expect("task status");
        assert_eq!((info.status, info.moved), (task.status, task.moved), "move task {task:?}");
        self.task = Some(task);
    }

    /// Switches the FIFO queue's deduplication scope: the window is keyed again at once from
    /// every send of the last five minutes, as a reopen keys it. Two sends that were apart
    /// under the old scope and share a key under the new one are both in the log; the more
    /// recent answers (its window ends last).
    fn toggle_dedup_scope(&mut self) {
        let now = self.now();
        let model = &mut self.queues[MAIN];
        model.group_scope = !model.group_scope;
        model.config.dedup_scope = if model.group_scope { DedupScope::MessageGroup } else { DedupScope::Queue };
        let config = model.config.clone();
        model.sends.retain(|f| f.expires_ms > now);
        model.dedup.clear();
        for first in &model.sends {
            let key = model.dedup_key(&first.group, &first.dedup);
            // Sends that were apart under the old scope and share an id under the new one:
            // the most recent stays (the id is a duplicate until five minutes after it).
            model.dedup.insert(key, first.clone());
        }
        let name = model.name;
        self.engine().set_queue_attributes(name, config).expect("change the deduplication scope");
    }

    // ----- checks -----

    /// Every queue's live messages (`peek`) and counts (`attributes`) are the model's.
    fn check(&self) {
        let now = self.now();
        for (q, model) in self.queues.iter().enumerate() {
            let queue = self.queue(q);
            let peeked = queue.peek(10_000).expect("peek");
            let expected: Vec<PeekedMessage> = model
                .msgs
                .iter()
                .map(|m| PeekedMessage {
                    message_id: m.id.clone(),
                    body: m.body.clone().into(),
                    state: m.state(now),
                    receive_count: m.receive_count,
                    sent_ms: m.sent_ms,
                    group: m.group.clone(),
                })
                .collect();
            assert_eq!(peeked, expected, "live messages of {}", model.name);
            let attributes = queue.attributes();
            let count = |state: &str| model.msgs.iter().filter(|m| m.state(now) == state).count() as u64;
            let oldest = model.msgs.iter().map(|m| m.sent_ms).min().map_or(0, |t| (now - t) / 1000);
            assert_eq!(
                (
                    attributes.approximate_visible,
                    attributes.approximate_in_flight,
                    attributes.approximate_delayed,
                    attributes.oldest_message_age_s
                ),
                (count("visible"), count("in_flight"), count("delayed"), oldest),
                "counts (visible, in flight, delayed, oldest age) of {}",
                model.name
            );
        }
    }

    /// Reopens, makes everything visible and receives and deletes every message, checking each
    /// step; then every queue must be empty.
    fn drain(&mut self) {
        self.run(&Op::Reopen);
        self.clock.advance(Duration::from_secs(121));
        self.expire();
        self.check();
        for q in 0..self.queues.len() {
            for round in 0.. {
                assert!(round < 500, "draining {} does not end", self.queues[q].name);
                let before = self.handles.len();
                self.run(&Op::Receive { queue: q, max: 10, visibility: 0 });
                let picks: Vec<usize> = (before..self.handles.len()).collect();
                if !picks.is_empty() {
                    self.delete_batch(&picks);
                    self.check();
                } else if self.queues[q].msgs.is_empty() {
                    break;
                }
            }
        }
        for model in &self.queues {
            assert!(model.msgs.is_empty(), "{} still holds messages after the drain", model.name);
        }
    }
}

/// A message arriving in another queue (dead-letter move or redrive) starts over there.
fn arrive(msg: &mut Msg, now: u64) {
    msg.receive_count = 0;
    msg.first_receive_ms = 0;
    msg.visible_at_ms = now;
    msg.incarnation += 1;
    msg.renumbered = msg.sequence.is_some();
}

fn check_outcome(result: &Result<(), Error>, expect: Expect, what: &str, h: &Issued) {
    match expect {
        Expect::Ok => assert!(result.is_ok(), "{what} with a current handle failed: {result:?} ({h:?})"),
        Expect::Rejected => assert!(is_rejected_handle(result), "{what} with a dead handle: {result:?} ({h:?})"),
        Expect::Either => assert!(result.is_ok() || is_rejected_handle(result), "{what}: {result:?} ({h:?})"),
    }
}

fn run_case(kind: Kind, ops: &[Op]) {
    let mut harness = Harness::new(kind);
    for op in ops {
        harness.run(op);
    }
    harness.drain();
}

/// Move tasks through the model with a full dead-letter queue: a rated task passing over a
/// message in flight, resumed by a reopen (which starts its pass again), cancelled, and a fast
/// one finishing what is left; for both queue types. (Random cases rarely have more than a few
/// dead letters when a task starts.)
#[test]
fn scripted_move_tasks_follow_the_model() {
    for fifo in [false, true] {
        let spec = |word, group| SendSpec {
            word,
            pad: 0,
            delay: 0,
            group,
            dedup: Some(word % DEDUP_IDS.len()),
            attributes: false,
            empty: false,
        };
        let mut ops = vec![Op::SendBatch((0..4).map(|w| spec(w, w % 3)).collect())];
        // Received with visibility 0 until each has gone to the dead-letter queue.
        ops.extend((0..6).map(|_| Op::Receive { queue: MAIN, max: 10, visibility: 1 }));
        ops.extend([
            Op::Receive { queue: DEAD, max: 1, visibility: 3 }, // one dead letter in flight
            Op::StartMoveTask { rated: true },
            Op::StartMoveTask { rated: false }, // a second while one runs: refused
            Op::Advance(0),
            Op::Maintenance,
            Op::Advance(0),
            Op::Advance(0),
            Op::Maintenance,
            Op::Reopen,
            Op::Advance(1),
            Op::Maintenance,
            Op::CancelMoveTask,
            Op::CancelMoveTask, // twice: refused
            Op::Advance(6),     // past the visibility of the dead letter in flight
            Op::StartMoveTask { rated: false },
            Op::Maintenance,
        ]);
        let kind = Kind::WithDeadLetter { max_receives: 1, fifo };
        let mut harness = Harness::new(kind);
        for op in &ops {
            harness.run(op);
        }
        let task = harness.task.clone().expect("a task");
        assert_eq!(task.status, MoveTaskStatus::Completed, "fifo {fifo}: {task:?}");
        assert!(harness.queues[DEAD].msgs.is_empty(), "fifo {fifo}: everything went home");
        harness.drain();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn standard_queue_behaves_like_the_model(case in case(Just(Kind::Standard))) {
        run_case(case.0, &case.1);
    }

    #[test]
    fn fifo_queue_behaves_like_the_model(
        case in case((any::<bool>(), prop::sample::select(vec![0u64, 5]))
            .prop_flat_map(|(content_dedup, delay_s)| any::<bool>()
                .prop_map(move |group_scope| Kind::Fifo { content_dedup, delay_s, group_scope })))
    ) {
        run_case(case.0, &case.1);
    }

    #[test]
    fn queue_with_dead_letter_queue_behaves_like_the_model(
        case in case((1..=3u32, any::<bool>())
            .prop_map(|(max_receives, fifo)| Kind::WithDeadLetter { max_receives, fifo }))
    ) {
        run_case(case.0, &case.1);
    }
}

// ----- single behaviours -----

fn receive_now(queue: &Queue, max: usize, visibility: Option<Duration>) -> Vec<ReceivedMessage> {
    let options =
        ReceiveOptions { max, wait: Some(Duration::ZERO), visibility_timeout: visibility, ..ReceiveOptions::default() };
    queue.receive(options).expect("receive")
}

/// An engine whose segments hold about ten of the 300-byte messages below.
fn open_small(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, common::test_options(Arc::clone(clock), 4096)).expect("open engine")
}

fn with_retention(seconds: u64, config: QueueConfig) -> QueueConfig {
    QueueConfig { retention: Duration::from_secs(seconds), ..config }
}

#[test]
fn maintenance_moves_live_messages_forward_and_frees_their_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let log_dir = dir.path().join("queues");
    let engine = open_small(dir.path(), &clock);
    engine.create_queue("plain", QueueConfig::default()).expect("create");
    engine.create_queue("orders.fifo", QueueConfig::fifo()).expect("create fifo");
    let plain = engine.queue("plain").expect("plain");
    let fifo = engine.queue("orders.fifo").expect("fifo");
    let pad = ".".repeat(300);
    let mut keep = HashSet::new();
    for i in 0..40 {
        let body = format!("m{i:02}{pad}");
        let delay = (i == 17).then(|| Duration::from_secs(900));
        let sent = plain.send(body.as_bytes(), SendOptions { delay, ..SendOptions::default() }).expect("send");
        let options =
            SendOptions { group: Some(format!("g{i}")), dedup_id: Some(format!("f{i}")), ..SendOptions::default() };
        let fifo_sent = fifo.send(body.as_bytes(), options).expect("fifo send");
        if i % 10 == 7 {
            keep.insert(sent.message_id);
            keep.insert(fifo_sent.message_id);
        }
    }
    // Everything but every tenth message goes. The survivors are in flight for long, with
    // receive counts the index must keep, but for one that is delayed.
    let mut in_flight = Vec::new();
    for queue in [&plain, &fifo] {
        loop {
            let got = receive_now(queue, 10, Some(Duration::from_secs(12 * 3600)));
            if got.is_empty() {
                break;
            }
            for m in got {
                if keep.contains(&m.message_id) {
                    in_flight.push(m);
                } else {
                    queue.delete(&m.receipt_handle).expect("delete");
                }
            }
        }
    }
    assert_eq!(in_flight.len(), 7, "all but the delayed survivor are in flight");
    // Past the deduplication window, so only live messages pin segments.
    clock.advance(Duration::from_secs(301));
    let before = (plain.peek(1000).expect("peek"), fifo.peek(1000).expect("peek"));
    let segments_before = common::segment_files(&log_dir);
    for _ in 0..100 {
        let count = common::segment_files(&log_dir).len();
        engine.run_maintenance().expect("maintenance");
        if common::segment_files(&log_dir).len() == count {
            break;
        }
    }
    let segments_after = common::segment_files(&log_dir);
    assert!(
        segments_after.len() * 4 < segments_before.len(),
        "maintenance kept {} of {} segments",
        segments_after.len(),
        segments_before.len()
    );
    assert!(!segments_after.contains(&segments_before[0]), "the oldest segment held live messages and still went");
    let after = (plain.peek(1000).expect("peek"), fifo.peek(1000).expect("peek"));
    assert_eq!(before, after, "maintenance changed what the queues hold");
    // Handles issued before the move still name their messages, and state survives a reopen.
    plain.delete(&in_flight[0].receipt_handle).expect("a handle from before maintenance deletes");
    drop((plain, fifo));
    drop(engine);
    let engine = open_small(dir.path(), &clock);
    let plain = engine.queue("plain").expect("plain");
    let fifo = engine.queue("orders.fifo").expect("fifo");
    let expected_plain: Vec<PeekedMessage> =
        before.0.iter().filter(|m| m.message_id != in_flight[0].message_id).cloned().collect();
    assert_eq!(plain.peek(1000).expect("peek"), expected_plain, "plain queue after reopen");
    assert_eq!(fifo.peek(1000).expect("peek"), before.1, "FIFO queue after reopen");
    let last = in_flight.last().expect("a FIFO survivor");
    fifo.change_visibility(&last.receipt_handle, Duration::ZERO)
        .expect("a handle from before maintenance and reopen changes visibility");
    let again = receive_now(&fifo, 10, None);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, last.message_id);
    assert_eq!(again[0].receive_count, 2, "the receive count moved with the message");
    assert_eq!(again[0].first_receive_ms, last.first_receive_ms);
    assert_eq!(again[0].sequence, last.sequence, "the sequence number moved with the message");
}

#[test]
fn attributes_do_not_count_expired_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("q", with_retention(60, QueueConfig::default())).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"short-lived", SendOptions::default()).expect("send");
    clock.advance(Duration::from_secs(60));
    assert!(q.peek(10).expect("peek").is_empty(), "peek knows it expired");
    let a = q.attributes();
    assert_eq!(
        (a.approximate_visible, a.approximate_in_flight, a.approximate_delayed, a.oldest_message_age_s),
        (0, 0, 0, 0),
        "an expired message is gone"
    );
}

#[test]
fn redrive_does_not_bring_back_expired_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("dead", with_retention(120, QueueConfig::default())).expect("dlq");
    let redrive = RedrivePolicy { dead_letter_queue: "dead".into(), max_receives: 1 };
    engine.create_queue("work", QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("work");
    let work = engine.queue("work").expect("work");
    work.send(b"poison", SendOptions::default()).expect("send");
    assert_eq!(receive_now(&work, 1, Some(Duration::ZERO)).len(), 1);
    assert!(receive_now(&work, 1, None).is_empty(), "second receive moves it to the dead-letter queue");
    assert_eq!(engine.queue("dead").expect("dead").peek(10).expect("peek").len(), 1);
    // The dead-letter queue's retention counts from the original send.
    clock.advance(Duration::from_secs(120));
    assert!(engine.queue("dead").expect("dead").peek(10).expect("peek").is_empty(), "expired in the DLQ");
    let result = engine.redrive("dead", None).expect("redrive");
    assert!(work.peek(10).expect("peek").is_empty(), "an expired message came back to life in the source");
    assert_eq!(result, RedriveResult { moved: 0, skipped: 0 }, "nothing live to move");
}

#[test]
fn redrive_moves_dead_letter_messages_whose_visibility_ran_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("dead", QueueConfig::default()).expect("dlq");
    let redrive = RedrivePolicy { dead_letter_queue: "dead".into(), max_receives: 1 };
    engine.create_queue("work", QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("work");
    let work = engine.queue("work").expect("work");
    let dead = engine.queue("dead").expect("dead");
    let sent = work.send(b"poison", SendOptions::default()).expect("send");
    assert_eq!(receive_now(&work, 1, Some(Duration::ZERO)).len(), 1);
    assert!(receive_now(&work, 1, None).is_empty(), "second receive moves it to the dead-letter queue");
    assert_eq!(receive_now(&dead, 1, None).len(), 1, "an operator looks at it");
    clock.advance(Duration::from_secs(30));
    let result = engine.redrive("dead", None).expect("redrive");
    assert_eq!(result, RedriveResult { moved: 1, skipped: 0 }, "its visibility timeout is over");
    let back = work.peek(10).expect("peek");
    assert_eq!(back.len(), 1, "the message is back in its source queue");
    assert_eq!(back[0].message_id, sent.message_id);
}

#[test]
fn expired_in_flight_message_does_not_block_its_fifo_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("f.fifo", with_retention(60, QueueConfig::fifo())).expect("create");
    let q = engine.queue("f.fifo").expect("queue");
    let send = |body: &str| {
        let options = SendOptions { group: Some("g".into()), dedup_id: Some(body.into()), ..SendOptions::default() };
        q.send(body.as_bytes(), options).expect("send")
    };
    send("first");
    clock.advance(Duration::from_secs(50));
    send("second");
    let got = receive_now(&q, 1, None);
    assert_eq!(&got[0].body[..], b"first");
    // "first" expires at 60 s, while its visibility timeout runs to 80 s.
    clock.advance(Duration::from_secs(15));
    assert_eq!(q.peek(10).expect("peek").len(), 1, "only \"second\" is live");
    let next = receive_now(&q, 1, None);
    assert_eq!(next.len(), 1, "the group's only live message is visible");
    assert_eq!(&next[0].body[..], b"second");
}

#[test]
fn deduplication_window_ends_after_five_minutes_even_when_the_clock_stepped_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("f.fifo", QueueConfig::fifo()).expect("create");
    let q = engine.queue("f.fifo").expect("queue");
    let send = |dedup: &str| {
        let options = SendOptions { group: Some("g".into()), dedup_id: Some(dedup.into()), ..SendOptions::default() };
        q.send(dedup.as_bytes(), options).expect("send")
    };
    send("late");
    // A system clock may step back (NTP); the manual clock does it here.
    clock.set_ms(T0 - 10_000);
    let early = send("early");
    clock.set_ms(T0 - 10_000 + DEDUP_MS - 1);
    assert!(send("early").duplicate, "within five minutes of its send");
    clock.set_ms(T0 - 10_000 + DEDUP_MS);
    let again = send("early");
    assert!(!again.duplicate, "five minutes after its send the id is forgotten");
    assert_ne!(again.message_id, early.message_id);
    assert!(send("late").duplicate, "\"late\" was sent 10 s later: still remembered");
}

#[test]
fn visibility_batch_naming_one_message_twice_leaves_the_same_state_as_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let mut engine = open_engine(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"m", SendOptions::default()).expect("send");
    let handle = receive_now(&q, 1, None).remove(0).receipt_handle;
    // The first entry makes it visible; the second then finds it no longer in flight.
    let results = q
        .change_visibility_batch(&[(handle.as_str(), Duration::ZERO), (handle.as_str(), Duration::from_secs(10))])
        .expect("batch");
    assert!(results[0].is_ok(), "{results:?}");
    let before = (q.peek(10).expect("peek"), q.attributes());
    drop(q);
    drop(engine);
    engine = open_engine(dir.path(), &clock);
    let q = engine.queue("q").expect("queue");
    assert_eq!((q.peek(10).expect("peek"), q.attributes()), before, "a reopen changed the message's state");
    assert!(
        ["visible", "in_flight"].contains(&before.0[0].state),
        "a received message is visible or in flight, not {:?}",
        before.0[0].state
    );
}

#[test]
fn lowering_retention_expires_old_messages_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open_engine(dir.path(), &clock);
    engine.create_queue("q", QueueConfig::default()).expect("create");
    let q = engine.queue("q").expect("queue");
    q.send(b"old", SendOptions::default()).expect("send");
    engine.set_queue_attributes("q", with_retention(60, QueueConfig::default())).expect("lower retention");
    clock.advance(Duration::from_secs(61));
    assert!(q.peek(10).expect("peek").is_empty(), "past the new retention");
    assert_eq!(q.attributes().approximate_visible, 0);
    engine.set_queue_attributes("q", QueueConfig::default()).expect("raise retention again");
    assert!(q.peek(10).expect("peek").is_empty(), "an expired message came back when retention grew");
    assert!(receive_now(&q, 10, None).is_empty(), "an expired message was delivered");
}

/// Two sends whose ids were apart under one deduplication scope and are the same under the
/// other: after the change, the window is the one a reopen rebuilds from the log (the most
/// recent send stays). Found by `fifo_queue_behaves_like_the_model`: the live window kept the
/// first send, which expired first, so a third send was taken as new, while a reopen (with
/// the first send out of its window) found the second and called the third a duplicate.
#[test]
fn sends_joined_by_a_scope_change_leave_the_window_a_reopen_rebuilds() {
    let send = |group, dedup| {
        Op::Send(SendSpec { word: 0, pad: 0, delay: 0, group, dedup: Some(dedup), attributes: false, empty: false })
    };
    let ops = [
        send(0, 0),
        Op::Advance(4), // 30 s
        send(1, 0),     // another group: not a duplicate under the group scope
        Op::ToggleDedupScope,
        Op::Advance(6), // 121 s
        Op::Advance(6),
        Op::Advance(4), // 302 s: the first send's window is over, the second's is not
        send(1, 0),
        Op::Reopen,
    ];
    run_case(Kind::Fifo { content_dedup: false, delay_s: 0, group_scope: true }, &ops);
}

/// A rated move task that has moved the last message it was started for is complete at that
/// step, not a second later when its next step finds nothing. Found by
/// `queue_with_dead_letter_queue_behaves_like_the_model`.
#[test]
fn a_move_task_that_moved_its_last_message_is_complete_at_once() {
    let send = Op::Send(SendSpec { word: 0, pad: 0, delay: 0, group: 0, dedup: None, attributes: false, empty: false });
    let receive = Op::Receive { queue: 0, max: 1, visibility: 0 };
    let ops = [
        send.clone(),
        receive.clone(),
        Op::Advance(4),
        receive, // a second receive: over max_receives, into the dead-letter queue
        Op::StartMoveTask { rated: true },
        send.clone(),
        Op::Purge { queue: 0 },
        send.clone(),
        send.clone(),
        send.clone(),
        Op::Advance(1),
        Op::Delete { pick: 0, cross: false },
        send.clone(),
        send.clone(),
        send,
        Op::Maintenance,
    ];
    run_case(Kind::WithDeadLetter { max_receives: 1, fifo: true }, &ops);
}
