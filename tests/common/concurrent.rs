//! Concurrent writers for the crash matrix: several threads write to one log at once (puts to
//! one shard, sends to one FIFO queue, publishes to one FIFO topic), so one group commit covers
//! frames of several writers, while the engine's maintenance thread runs. What each thread was
//! told is kept per thread; the checks compare a reopened engine with all of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::faults::{body, hash_of_shard, Model, Promise, Rig, ALL, EVEN, ORDERED, STREAM, TOPIC};
use weir::queue::{AttributeValue, SendOptions};
use weir::stream::{PutRecord, StartingPosition};
use weir::topic::PublishOptions;
use weir::{Engine, Error, Options};

/// Writer threads.
pub const THREADS: u64 = 4;
/// Writes each thread attempts.
pub const WRITES: u64 = 12;

/// What one writer thread was told.
#[derive(Debug, Clone, Default)]
pub struct Writes {
    /// Acknowledged writes: (sequence number, body).
    pub acked: Vec<(u64, String)>,
    /// The write under way when the thread stopped (its call failed).
    pub pending: Option<String>,
}

/// Options for the crashing run: the maintenance thread on, ticking every few milliseconds
/// (it syncs `Interval` logs and runs retention and compaction while the writers write), and
/// segments of several pages, so that what a crash leaves unsynced spans pages a power cut can
/// lose out of order (and a run still rolls a segment or two).
pub fn options_with_maintenance(rig: &Rig) -> Options {
    Options {
        background: true,
        maintenance_interval: Duration::from_millis(3),
        segment_bytes: SEGMENT_BYTES,
        ..rig.options()
    }
}

/// Segment size of the concurrent runs.
pub const SEGMENT_BYTES: u64 = 16 << 10;

/// The body of write `i` of thread `thread` (unique within a run tagged `tag`), 200 to 1700
/// bytes: a group commit of a few of them crosses page boundaries.
fn write_body(tag: &str, thread: u64, i: u64) -> String {
    let mut b = body(&format!("{tag}.t{thread}"), i);
    let len = 200 + ((thread * WRITES + i) * 397) % 1500;
    b.extend((0..len.saturating_sub(b.len() as u64)).map(|k| char::from(b'A' + (k % 26) as u8)));
    b
}

/// One write of `model` (`dedup` a short id unique to it); returns its sequence number.
fn write(engine: &Engine, model: Model, thread: u64, data: &str, dedup: &str) -> weir::Result<u64> {
    let group = format!("t{thread}");
    match model {
        Model::Streams => {
            let record =
                PutRecord { partition_key: b"key", data: data.as_bytes(), explicit_hash_key: Some(hash_of_shard(0)) };
            let put = engine.stream(STREAM)?.put_batch(&[record])?;
            put.first().map(|p| p.seq).ok_or_else(|| Error::InvalidArgument("a put returned no result".into()))
        }
        Model::Queues => {
            let options =
                SendOptions { group: Some(group), dedup_id: Some(dedup.to_string()), ..SendOptions::default() };
            let sent = engine.queue(ORDERED)?.send(data.as_bytes(), options)?;
            sent.sequence.ok_or_else(|| Error::InvalidArgument("a FIFO send returned no sequence".into()))
        }
        Model::Topics => {
            let options = PublishOptions {
                attributes: [("parity".to_string(), AttributeValue::String("even".into()))].into_iter().collect(),
                group: Some(group),
                dedup_id: Some(dedup.to_string()),
                ..PublishOptions::default()
            };
            let published = engine.topic(TOPIC)?.publish(data.as_bytes(), options)?;
            published.sequence.ok_or_else(|| Error::InvalidArgument("a FIFO publish returned no sequence".into()))
        }
    }
}

/// Runs [`THREADS`] writers of [`WRITES`] writes each against `engine`, each stopping at its
/// first failed call.
pub fn run_writers(engine: &Engine, model: Model, tag: &str) -> Vec<Writes> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut writes = Writes::default();
                    for i in 0..WRITES {
                        let data = write_body(tag, thread, i);
                        writes.pending = Some(data.clone());
                        match write(engine, model, thread, &data, &format!("{tag}.t{thread}.{i}")) {
                            Ok(seq) => {
                                writes.pending = None;
                                writes.acked.push((seq, data));
                            }
                            Err(_) => break,
                        }
                    }
                    writes
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    })
}

/// The bodies a FIFO queue holds, in its order.
fn queue_bodies(engine: &Engine, queue: &str, context: &str) -> Vec<String> {
    engine
        .queue(queue)
        .and_then(|q| q.peek(100_000))
        .unwrap_or_else(|e| panic!("{context}: peek {queue}: {e}"))
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// What the reopened engine holds of the shared log: (sequence number if known, body).
fn survivors(engine: &Engine, model: Model, context: &str) -> Vec<(Option<u64>, String)> {
    match model {
        Model::Streams => {
            let stream = engine.stream(STREAM).unwrap_or_else(|e| panic!("{context}: stream: {e}"));
            let report = stream.shard(0).expect("shard 0").log().recovery_report().clone();
            assert!(report.damaged.is_empty() && report.missing.is_empty(), "{context}: false damage: {report:?}");
            let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
            let mut out = Vec::new();
            loop {
                let batch = it.next_batch(1000).unwrap_or_else(|e| panic!("{context}: read shard 0: {e}"));
                if batch.records.is_empty() {
                    return out;
                }
                out.extend(batch.records.iter().map(|r| (Some(r.seq), String::from_utf8_lossy(&r.data).into_owned())));
            }
        }
        Model::Queues => queue_bodies(engine, ORDERED, context).into_iter().map(|b| (None, b)).collect(),
        Model::Topics => {
            let all = queue_bodies(engine, ALL, context);
            let even = queue_bodies(engine, EVEN, context);
            // A publish and its deliveries are one frame: both queues hold the same publishes.
            assert_eq!(all, even, "{context}: a publish reached one subscribed queue and not the other");
            all.into_iter().map(|b| (None, b)).collect()
        }
    }
}

/// Checks what a reopened engine holds against what every writer was told, under `promise`:
/// every acknowledged write (`Everything`), or a prefix of the log (otherwise: no acknowledged
/// write survives once an earlier-numbered one is lost, so nothing after a hole is served); no
/// record nobody wrote; records keep their numbers. `durable` holds what earlier rounds left
/// (it must all be there, in every mode). Returns how many acknowledged writes were lost, and
/// what survived, as the `durable` of the next round.
pub fn check(
    engine: &Engine,
    model: Model,
    durable: &Writes,
    writers: &[Writes],
    promise: Promise,
    context: &str,
) -> (usize, Writes) {
    let acked: BTreeMap<&str, u64> =
        writers.iter().flat_map(|w| w.acked.iter().map(|(seq, b)| (b.as_str(), *seq))).collect();
    let pending: BTreeSet<&str> = writers.iter().filter_map(|w| w.pending.as_deref()).collect();
    let all = survivors(engine, model, context);
    if model == Model::Streams {
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "{context}: records out of order");
    }
    let earlier: BTreeMap<&str, u64> = durable.acked.iter().map(|(s, b)| (b.as_str(), *s)).collect();
    for (b, seq) in &earlier {
        let kept = all.iter().any(|(s, p)| p == b && s.is_none_or(|s| s == *seq));
        assert!(kept, "{context}: {b:.30} ({seq}), durable before this round, is gone");
    }
    let present: Vec<&(Option<u64>, String)> = all.iter().filter(|(_, b)| !earlier.contains_key(b.as_str())).collect();
    let mut seen = BTreeSet::new();
    for (seq, b) in &present {
        assert!(seen.insert(b.as_str()), "{context}: {b:.30} is served twice");
        match (acked.get(b.as_str()), seq) {
            (Some(acked_seq), Some(seq)) => assert_eq!(seq, acked_seq, "{context}: {b:.30} moved"),
            (Some(_), None) => {}
            (None, _) => assert!(pending.contains(b.as_str()), "{context}: {b:.30} was never written"),
        }
    }
    let lost: Vec<u64> = acked.iter().filter(|(b, _)| !seen.contains(*b)).map(|(_, s)| *s).collect();
    if promise == Promise::Everything {
        assert!(lost.is_empty(), "{context}: acknowledged writes {lost:?} were lost");
    }
    if let Some(&first_lost) = lost.iter().min() {
        // A prefix: nothing numbered after the first lost acknowledged write survived.
        for (b, &seq) in &acked {
            assert!(!(seen.contains(b) && seq > first_lost), "{context}: {seq} survived, {first_lost} did not: a hole");
        }
        for (seq, b) in &present {
            let after = seq.is_some_and(|s| s > first_lost);
            assert!(!after, "{context}: pending {b:.30} ({seq:?}) is served after the hole at {first_lost}");
        }
    }
    let mut next = durable.clone();
    for (seq, b) in present {
        // A pending write that made it has a number only where the model serves one.
        next.acked.push((seq.or_else(|| acked.get(b.as_str()).copied()).unwrap_or(0), b.clone()));
    }
    (lost.len(), next)
}

/// After a check: one more write of `model` gets a number above every number any earlier
/// incarnation acknowledged (`issued`, updated with this run's acknowledgements and the new
/// one); the write is added to `durable`.
pub fn check_fresh_number(
    engine: &Engine,
    model: Model,
    writers: &[Writes],
    issued: &mut Option<u64>,
    durable: &mut Writes,
    context: &str,
) {
    for w in writers {
        for (seq, _) in &w.acked {
            *issued = Some(issued.map_or(*seq, |i| i.max(*seq)));
        }
    }
    let data = format!("probe-{}", issued.map_or(0, |i| i + 1));
    let seq =
        write(engine, model, THREADS, &data, &data).unwrap_or_else(|e| panic!("{context}: write after reopen: {e}"));
    assert!(
        issued.is_none_or(|i| seq > i),
        "{context}: sequence number {seq} handed out again (acknowledged up to {issued:?} before)"
    );
    *issued = Some(seq);
    durable.acked.push((seq, data));
}
