//! Queues survive the process being killed at any moment.
//!
//! The test re-runs its own binary as a child (`WEIR_QUEUE_CRASH_CHILD=<data dir>`) that sends,
//! receives and deletes from four threads on a standard and a FIFO queue (and now and then runs
//! maintenance over its 16 KiB segments), printing a line for every acknowledged operation, and
//! kills it with SIGKILL after a random 20-150 ms. Then, on a
//! copy of the data directory, it checks that:
//!
//! - every acknowledged send is still there, with its id, unless a delete of it was started (a
//!   delete the kill cut off before its acknowledgement may or may not have happened);
//! - no acknowledged delete comes back;
//! - each message of the standard queue is in exactly one of it and its dead-letter queue (a
//!   move is atomic);
//! - a FIFO deduplication id sent again after the restart, within the window, returns the
//!   original message id and stores nothing;
//! - draining the FIFO queue serves each group in send order (bodies carry a per-group counter).
//!
//! The copy is opened with a manual clock: first at the present (deduplication window open),
//! then an hour ahead, which makes every message visible again and is far within retention.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::queue::{Queue, QueueConfig, ReceiveOptions, ReceivedMessage, RedrivePolicy, SendEntry, SendOptions};
use weir::{Clock, Durability, Engine, Error, ManualClock, Options, SystemClock};

use common::Rng;

const CHILD_ENV: &str = "WEIR_QUEUE_CRASH_CHILD";
const ITERATION_ENV: &str = "WEIR_QUEUE_CRASH_ITERATION";
const TEST_NAME: &str = "acknowledged_queue_operations_survive_the_process_being_killed";
const ITERATIONS: u64 = 15;
const STANDARD: &str = "plain";
/// The standard queue's dead-letter queue: a message received twice moves there at its next
/// receive (the children often receive with a visibility timeout of 0 to get there).
const DEAD: &str = "plain-dead";
const FIFO: &str = "ordered.fifo";
const HOUR_MS: u64 = 3_600_000;

#[test]
fn acknowledged_queue_operations_survive_the_process_being_killed() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    parent();
}

// ----- the child -----

/// Prints one line at once (threads share stdout) and flushes it to the parent.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).expect("write to parent");
    out.flush().expect("flush to parent");
}

fn child(dir: &Path) -> ! {
    let iteration: u64 = std::env::var(ITERATION_ENV).expect("iteration").parse().expect("iteration number");
    // Small segments, so that logs roll and maintenance moves messages and deletes segments
    // while the kill may come.
    let options = Options { segment_bytes: 16 << 10, ..Options::default() };
    let engine = Arc::new(Engine::open(dir, options).expect("child opens the data directory"));
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || work(&engine, iteration, t))
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    unreachable!("workers run until the process is killed");
}

fn work(engine: &Engine, iteration: u64, t: u64) -> ! {
    let plain = engine.queue(STANDARD).expect("standard queue");
    let fifo = engine.queue(FIFO).expect("FIFO queue");
    let mut rng = Rng::new(Rng::seed_from_time() ^ (t << 8) ^ iteration);
    let mut sent = 0u64;
    let mut counters = [0u64; 2];
    let mut held: Vec<(&Queue, &str, ReceivedMessage)> = Vec::new();
    let dead = engine.queue(DEAD).expect("dead-letter queue");
    loop {
        match rng.range(0, 10) {
            0..=2 => {
                let n = if rng.range(0, 3) == 0 { rng.range(2, 6) } else { 1 };
                let bodies: Vec<String> = (0..n).map(|k| format!("{iteration}:{t}:{}", sent + k)).collect();
                sent += n;
                let entries: Vec<SendEntry> = bodies
                    .iter()
                    .map(|b| SendEntry { body: b.clone().into(), options: SendOptions::default() })
                    .collect();
                for (body, result) in bodies.iter().zip(plain.send_batch(&entries).expect("send batch")) {
                    say(&format!("sent {STANDARD} {} {body}", result.expect("send").message_id));
                }
            }
            3..=4 => {
                // Each thread owns its groups, so a group's sends are in counter order.
                let k = rng.range(0, 2) as usize;
                let body = format!("{iteration}:{t}:{k}:{}", counters[k]);
                counters[k] += 1;
                let options = SendOptions {
                    group: Some(format!("t{t}-g{k}")),
                    dedup_id: Some(body.clone()),
                    ..SendOptions::default()
                };
                let result = fifo.send(body.as_bytes(), options).expect("FIFO send");
                say(&format!("sent {FIFO} {} {body}", result.message_id));
            }
            5..=7 => {
                let (q, name) = match rng.range(0, 10) {
                    0..=4 => (&plain, STANDARD),
                    5..=8 => (&fifo, FIFO),
                    _ => (&dead, DEAD),
                };
                let options = ReceiveOptions {
                    max: rng.range(1, 11) as usize,
                    wait: Some(Duration::ZERO),
                    visibility_timeout: (name == STANDARD && rng.range(0, 2) == 0).then_some(Duration::ZERO),
                    ..ReceiveOptions::default()
                };
                for m in q.receive(options).expect("receive") {
                    let body = String::from_utf8_lossy(&m.body).into_owned();
                    say(&format!("recv {name} {} {body}", m.message_id));
                    if rng.range(0, 3) == 0 {
                        held.push((q, name, m));
                    } else {
                        delete(q, name, &m);
                    }
                }
            }
            8 if t == 0 && rng.range(0, 4) == 0 => engine.run_maintenance().expect("maintenance"),
            _ => {
                if held.is_empty() {
                    continue;
                }
                let (q, name, m) = held.remove(rng.range(0, held.len() as u64) as usize);
                delete(q, name, &m);
            }
        }
    }
}

/// Deletes a received message, announcing the attempt and acknowledging success.
fn delete(q: &Queue, name: &str, m: &ReceivedMessage) {
    let body = String::from_utf8_lossy(&m.body);
    say(&format!("deleting {name} {body}"));
    match q.delete(&m.receipt_handle) {
        Ok(()) => say(&format!("deleted {name} {body}")),
        // Received again by another thread (its visibility ran out), or moved to the
        // dead-letter queue meanwhile.
        Err(Error::InvalidReceiptHandle(_)) => {}
        Err(e) => panic!("delete: {e}"),
    }
}

// ----- the parent -----

/// What the children acknowledged, over all iterations.
#[derive(Default)]
struct Acknowledged {
    /// Sends not (yet) acknowledged deleted: queue -> body -> message id.
    live: HashMap<&'static str, HashMap<String, String>>,
    /// Every acknowledged send: queue -> body -> message id.
    sent: HashMap<&'static str, HashMap<String, String>>,
    deleted: HashMap<&'static str, HashSet<String>>,
    /// Deletes started: a kill may have come after the delete and before its acknowledgement.
    deleting: HashMap<&'static str, HashSet<String>>,
    /// FIFO sends acknowledged by the latest child (body, id), for the deduplication check.
    latest_fifo: Vec<(String, String)>,
    deletes: usize,
}

/// The queue family a line is about: a message of the standard queue may be in its dead-letter
/// queue, and is the same message (same id) there.
fn queue_name(text: &str) -> &'static str {
    match text {
        STANDARD | DEAD => STANDARD,
        FIFO => FIFO,
        other => panic!("unknown queue {other:?} in the child's output"),
    }
}

impl Acknowledged {
    /// Takes in one child's output (complete lines only: a line cut by the kill is not an
    /// acknowledgement). Sends first: a receiver may print its delete before the sender prints
    /// its send.
    fn absorb(&mut self, output: &str, context: &str) {
        let complete = match output.rfind('\n') {
            Some(end) => &output[..end],
            None => "",
        };
        let lines: Vec<Vec<&str>> = complete.lines().map(|l| l.split(' ').collect()).collect();
        self.latest_fifo.clear();
        for words in lines.iter().filter(|w| w[0] == "sent" && w.len() == 4) {
            let (q, id, body) = (queue_name(words[1]), words[2], words[3]);
            let earlier = self.sent.entry(q).or_default().insert(body.to_string(), id.to_string());
            assert!(earlier.is_none(), "{context}: {body} was acknowledged twice in {q}");
            self.live.entry(q).or_default().insert(body.to_string(), id.to_string());
            if q == FIFO {
                self.latest_fifo.push((body.to_string(), id.to_string()));
            }
        }
        for words in lines.iter().filter(|w| w[0] == "recv" && w.len() == 4) {
            let (q, id, body) = (queue_name(words[1]), words[2], words[3]);
            if let Some(sent_id) = self.sent.get(q).and_then(|s| s.get(body)) {
                assert_eq!(id, sent_id, "{context}: {body} was received with another id than it was sent with");
            }
            assert!(
                !self.deleted.get(q).is_some_and(|d| d.contains(body)),
                "{context}: {body} was received after an earlier child's acknowledged delete"
            );
        }
        for words in lines.iter().filter(|w| w[0] == "deleting" && w.len() == 3) {
            self.deleting.entry(queue_name(words[1])).or_default().insert(words[2].to_string());
        }
        for words in lines.iter().filter(|w| w[0] == "deleted" && w.len() == 3) {
            let (q, body) = (queue_name(words[1]), words[2]);
            self.live.entry(q).or_default().remove(body);
            self.deleted.entry(q).or_default().insert(body.to_string());
            self.deletes += 1;
        }
    }
}

fn verifier_options(clock: &Arc<ManualClock>) -> Options {
    // A copy: durability does not matter, speed does.
    Options { clock: clock.clone(), background: false, durability: Durability::Never, ..Options::default() }
}

/// Receives and deletes everything; returns (message id, body) in delivery order.
fn drain(q: &Queue, context: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let got = q
            .receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() })
            .expect("receive");
        if got.is_empty() {
            let a = q.attributes();
            assert_eq!(a.approximate_visible + a.approximate_in_flight + a.approximate_delayed, 0, "{context}");
            return out;
        }
        for m in got {
            q.delete(&m.receipt_handle).expect("delete while draining");
            out.push((m.message_id, String::from_utf8(m.body.to_vec()).expect("utf8 body")));
        }
    }
    panic!("{context}: draining {} does not end", q.name());
}

/// Checks a data directory against what was acknowledged (consumes it: drains the queues).
fn verify(dir: &Path, ack: &Acknowledged, context: &str) {
    let now = SystemClock.now_ms();
    let clock = Arc::new(ManualClock::new(now));
    let engine = Engine::open(dir, verifier_options(&clock)).expect("reopen after the kill");
    let fifo = engine.queue(FIFO).expect("FIFO queue");
    // Deduplication ids are remembered across the restart.
    for (body, id) in ack.latest_fifo.iter().take(25) {
        let mut parts = body.split(':').skip(1);
        let (t, k) = (parts.next().expect("thread"), parts.next().expect("group"));
        let options =
            SendOptions { group: Some(format!("t{t}-g{k}")), dedup_id: Some(body.clone()), ..SendOptions::default() };
        let again = fifo.send(b"sent again after the restart", options).expect("send again");
        assert!(again.duplicate, "{context}: deduplication id {body} was forgotten by the restart");
        assert_eq!(&again.message_id, id, "{context}: a duplicate of {body} returned another id");
    }
    clock.set_ms(now + HOUR_MS);
    // The standard queue first: draining it may move messages to its dead-letter queue.
    for (name, queues) in [(STANDARD, vec![STANDARD, DEAD]), (FIFO, vec![FIFO])] {
        let drained: Vec<(String, String)> =
            queues.iter().flat_map(|q| drain(&engine.queue(q).expect("queue"), context)).collect();
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (id, body) in &drained {
            assert!(seen.insert(body, id).is_none(), "{context}: {body} is twice in {queues:?}");
            if let Some(sent_id) = ack.sent.get(name).and_then(|s| s.get(body)) {
                assert_eq!(id, sent_id, "{context}: {body} has another id than its send returned");
            }
            assert!(
                !ack.deleted.get(name).is_some_and(|d| d.contains(body)),
                "{context}: {body} came back in {name} after its delete was acknowledged"
            );
        }
        for (body, id) in ack.live.get(name).into_iter().flatten() {
            let maybe_deleted = ack.deleting.get(name).is_some_and(|d| d.contains(body));
            assert!(
                seen.contains_key(body.as_str()) || maybe_deleted,
                "{context}: acknowledged {body} ({id}) is missing from {name}, and no delete of it was started"
            );
        }
        if name == FIFO {
            // Per group (thread, group index), the (iteration, counter) of deliveries increases.
            let mut last: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
            for (_, body) in &drained {
                let n: Vec<u64> = body.split(':').map(|x| x.parse().expect("FIFO body number")).collect();
                let (group, order) = ((n[1], n[2]), (n[0], n[3]));
                if let Some(previous) = last.insert(group, order) {
                    assert!(previous < order, "{context}: group {group:?} served {order:?} after {previous:?}");
                }
            }
        }
    }
}

fn parent() {
    let seed = Rng::seed_from_time();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let engine = Engine::open(&data, Options { background: false, ..Options::default() }).expect("open");
        engine.create_queue(DEAD, QueueConfig::default()).expect("dead-letter queue");
        let redrive = RedrivePolicy { dead_letter_queue: DEAD.into(), max_receives: 2 };
        engine.create_queue(STANDARD, QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }).expect("queue");
        engine.create_queue(FIFO, QueueConfig::fifo()).expect("FIFO queue");
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut ack = Acknowledged::default();
    for iteration in 0..ITERATIONS {
        let kill_after = Duration::from_millis(rng.range(20, 151));
        let context = format!("seed {seed}, iteration {iteration}, killed after {kill_after:?}");
        let mut child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &data)
            .env(ITERATION_ENV, iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let mut stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut output = String::new();
            stdout.read_to_string(&mut output).expect("read the child's output");
            output
        });
        std::thread::sleep(kill_after);
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("{context}: the child stopped on its own ({status}); its stderr is above");
        }
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
        let output = reader.join().expect("reader");
        ack.absorb(&output, &context);
        let copy = dir.path().join(format!("copy-{iteration}"));
        common::copy_tree(&data, &copy);
        verify(&copy, &ack, &context);
        std::fs::remove_dir_all(&copy).expect("remove copy");
    }
    verify(&data, &ack, &format!("seed {seed}, the original directory at the end"));
    let sends: usize = ack.sent.values().map(HashMap::len).sum();
    assert!(
        sends >= 30 && ack.deletes >= 10,
        "the children did too little to test: {sends} sends, {} deletes",
        ack.deletes
    );
    eprintln!("{ITERATIONS} kills, {sends} acknowledged sends, {} deletes, {:?}", ack.deletes, started.elapsed());
}
