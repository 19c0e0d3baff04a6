//! weir's side of the workloads that both `examples/compare` and `weir-peers` run, so the two
//! programs measure weir with the same code: the queue cycle, the topic fan-out and the
//! concurrent stream puts. Depends only on weir and the shared harness.

#![allow(dead_code)] // each program uses its own part of it

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir::queue::{Queue, QueueConfig, ReceiveOptions, SendEntry, SendOptions};
use weir::stream::Stream;
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Options};

use crate::harness::{count_until_stop, timed, Stop};

pub const SENDERS: usize = 8;
pub const RECEIVERS: usize = 8;
/// Body size of the queue and topic workloads.
pub const BODY: usize = 256;
/// FIFO message groups.
pub const GROUPS: u64 = 100;
/// How long an idle receiver waits for a send: weir's long poll (and the other systems'
/// equivalents).
pub const LONG_POLL: Duration = Duration::from_millis(100);
/// Publishers of `topic_fanout` and the queues its topic fans out to.
pub const PUBLISHERS: usize = 8;
pub const FANOUT_QUEUES: u32 = 10;
/// Writer threads of `stream_put_concurrent`.
pub const STREAM_WRITERS: usize = 32;

/// The options of a queue workload's send: for FIFO, the next message's group (round robin
/// over [`GROUPS`]) and a fresh deduplication id, counted by `sent`.
pub fn send_options(fifo: bool, sent: &AtomicU64) -> SendOptions {
    if !fifo {
        return SendOptions::default();
    }
    let n = sent.fetch_add(1, Ordering::Relaxed);
    SendOptions {
        group: Some(format!("group-{}", n % GROUPS)),
        dedup_id: Some(format!("dedup-{n}")),
        ..SendOptions::default()
    }
}

pub fn open_weir(dir: &Path, durability: Durability) -> Engine {
    let key_source = ENCRYPTED.load(Ordering::SeqCst).then(bench_key);
    Engine::open(dir, Options { durability, key_source, ..Options::default() })
        .unwrap_or_else(|e| panic!("weir: cannot open {}: {e}", dir.display()))
}

/// While set, [`open_weir`] opens (and creates) encrypted data directories: `examples/compare`'s
/// `*_encrypted` rows run a workload's weir code as it is, once plain and once encrypted
/// (`weir-peers` never sets it).
pub static ENCRYPTED: AtomicBool = AtomicBool::new(false);

/// The key file of the encrypted runs.
fn bench_key() -> weir::KeySource {
    weir::KeySource::from_text(&format!("bench {}\n", "7e".repeat(32))).expect("bench key")
}

#[derive(Debug, Clone, Copy)]
pub struct Cycle {
    pub name: &'static str,
    pub durable: bool,
    pub fifo: bool,
    /// Messages already waiting when the cycle starts.
    pub prefill: usize,
}

impl Cycle {
    pub fn durability(&self) -> Durability {
        if self.durable {
            Durability::Always
        } else {
            Durability::Never
        }
    }
}

/// One run of a queue cycle on a fresh engine in `dir`: `SENDERS` threads send one message at a
/// time, `RECEIVERS` threads receive up to 10 (long-polling) and delete them with one batch
/// call; returns messages per second through the whole cycle.
pub fn queue_cycle(window: Duration, dir: &Path, cycle: Cycle, body: &[u8]) -> f64 {
    let (name, config) =
        if cycle.fifo { ("bench.fifo", QueueConfig::fifo()) } else { ("bench", QueueConfig::default()) };
    if cycle.prefill > 0 {
        let started = Instant::now();
        let engine = open_weir(dir, Durability::Never);
        engine.create_queue(name, config.clone()).expect("weir: create queue");
        let q = engine.queue(name).expect("weir: queue");
        let entries: Vec<SendEntry> = (0..10)
            .map(|_| SendEntry { body: Bytes::copy_from_slice(body), options: SendOptions::default() })
            .collect();
        for _ in 0..cycle.prefill / 10 {
            q.send_batch(&entries).expect("weir: prefill");
        }
        // Handles keep the directory locked: drop the queue before the engine is reopened.
        drop(q);
        drop(engine);
        let reopen = Instant::now();
        drop(open_weir(dir, cycle.durability()));
        eprintln!(
            "  {}: weir prefill of {} messages {:.1} s, reopen {:.2} s",
            cycle.name,
            cycle.prefill,
            started.elapsed().as_secs_f64(),
            reopen.elapsed().as_secs_f64()
        );
    }
    let engine = open_weir(dir, cycle.durability());
    engine.create_queue(name, config).expect("weir: create queue");
    let queue = engine.queue(name).expect("weir: queue");
    let sent = AtomicU64::new(0);
    timed(SENDERS + RECEIVERS, window, |i| {
        let (q, sent) = (queue.clone(), &sent);
        move |stop: &Stop| {
            if i < SENDERS {
                return count_until_stop(stop, || {
                    let options = send_options(cycle.fifo, sent);
                    q.send(body, options).expect("weir: send");
                    0
                });
            }
            count_until_stop(stop, || {
                receive_and_delete(&q, Some(LONG_POLL), &mut |_: &[u8]| {}).expect("weir: receive")
            })
        }
    })
}

/// One receiver step of every queue workload: receives up to 10 (waiting up to `wait` when the
/// queue is empty), hands each body to `on_body` while holding it, and deletes them with one
/// batch call; returns how many deletes succeeded.
pub fn receive_and_delete(queue: &Queue, wait: Option<Duration>, on_body: &mut dyn FnMut(&[u8])) -> weir::Result<u64> {
    let got = queue.receive(ReceiveOptions { max: 10, wait, ..ReceiveOptions::default() })?;
    if got.is_empty() {
        return Ok(0);
    }
    for m in &got {
        on_body(&m.body);
    }
    let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
    let results = queue.delete_batch(&handles)?;
    Ok(results.iter().filter(|r| r.is_ok()).count() as u64)
}

/// A topic with `FANOUT_QUEUES` raw queue subscriptions, on a fresh engine in `dir`.
pub fn fanout_topic(dir: &Path, durability: Durability) -> Engine {
    let engine = open_weir(dir, durability);
    engine.create_topic("fan", TopicConfig::default()).expect("weir: create topic");
    for i in 0..FANOUT_QUEUES {
        let name = format!("sub-{i}");
        engine.create_queue(&name, QueueConfig::default()).expect("weir: create queue");
        engine
            .subscribe("fan", Endpoint::Queue(name), SubscribeOptions { raw: true, ..Default::default() })
            .expect("weir: subscribe");
    }
    engine
}

/// `topic_fanout`: `PUBLISHERS` threads publish `body` to a topic with `FANOUT_QUEUES` queue
/// subscriptions; returns deliveries per second.
pub fn topic_fanout(window: Duration, dir: &Path, durability: Durability, body: &[u8]) -> f64 {
    let engine = fanout_topic(dir, durability);
    let topic = engine.topic("fan").expect("weir: topic");
    timed(PUBLISHERS, window, |_| {
        let topic = topic.clone();
        move |stop: &Stop| {
            count_until_stop(stop, || {
                let r = topic.publish(body, PublishOptions::default()).expect("weir: publish");
                r.delivered as u64
            })
        }
    })
}

/// `stream_put_concurrent`: `STREAM_WRITERS` threads put single records (thread i with key
/// `keys[i]`) into a one-shard stream; returns records per second.
pub fn put_concurrent(window: Duration, dir: &Path, durability: Durability, keys: &[Vec<u8>], data: &[u8]) -> f64 {
    let engine = open_weir(dir, durability);
    engine.create_stream("s", 1, None).expect("weir: create stream");
    let stream = engine.stream("s").expect("weir: stream");
    let rate = timed(STREAM_WRITERS, window, |i| {
        let (stream, key) = (&stream, &keys[i]);
        move |stop: &Stop| {
            count_until_stop(stop, || {
                stream.put(key, data).expect("weir: put");
                1
            })
        }
    });
    report_syncs(&stream, rate, window);
    rate
}

/// Prints how many records each of weir's fsyncs covered (group commit at work).
/// Returns the records per fsync.
pub fn report_syncs(stream: &Stream, rate: f64, window: Duration) -> f64 {
    let syncs: u64 = stream.shards().iter().map(|s| s.log().sync_count()).sum();
    let per_s = syncs as f64 / window.as_secs_f64();
    let per_sync = rate / per_s.max(1.0);
    eprintln!("    weir: {per_s:.0} fsyncs/s, {per_sync:.1} records per fsync");
    per_sync
}
