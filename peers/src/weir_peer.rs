//! weir as one of the systems: throughput through `examples/compare`'s own weir code
//! (`weir_side.rs`, shared), latency through [`Setup`] handles over the same engine calls.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::queue::{Queue, QueueConfig};
use weir::stream::{PutRecord, StartingPosition, Stream};
use weir::topic::{PublishOptions, Topic};
use weir::{Durability, Engine};

use crate::systems::{Receiver, Sender, Setup};
use crate::weir_side::{self, LONG_POLL};

fn err(e: weir::Error) -> String {
    format!("weir: {e}")
}

/// What the report says of a durability mode.
pub fn durability_text(d: Durability) -> &'static str {
    match d {
        Durability::Always => "Durability::Always: Ok after an fdatasync covers the write (group commit)",
        Durability::Never => {
            "Durability::Never: Ok once in the page cache; fsync on segment roll and every 8 MiB (the mode to set beside a peer that does not fsync every write)"
        }
        Durability::Interval(_) => "Durability::Interval",
    }
}

// ----- queues -----

pub struct WeirQueue {
    _engine: Engine,
    queue: Queue,
    fifo: bool,
    sent: AtomicU64,
}

impl WeirQueue {
    pub fn open(dir: &Path, durability: Durability, fifo: bool) -> WeirQueue {
        let engine = weir_side::open_weir(dir, durability);
        let (name, config) = if fifo { ("bench.fifo", QueueConfig::fifo()) } else { ("bench", QueueConfig::default()) };
        engine.create_queue(name, config).expect("weir: create queue");
        let queue = engine.queue(name).expect("weir: queue");
        WeirQueue { _engine: engine, queue, fifo, sent: AtomicU64::new(0) }
    }
}

struct QueueSender<'a>(&'a WeirQueue);

impl Sender for QueueSender<'_> {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        self.0.queue.send(body, weir_side::send_options(self.0.fifo, &self.0.sent)).map(drop).map_err(err)
    }
}

struct QueueReceiver<'a>(&'a Queue);

impl Receiver for QueueReceiver<'_> {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        weir_side::receive_and_delete(self.0, Some(LONG_POLL), on_body).map_err(err)
    }
}

impl Setup for WeirQueue {
    fn sender(&self, _: usize) -> Result<Box<dyn Sender + '_>, String> {
        Ok(Box::new(QueueSender(self)))
    }

    fn receiver(&self, _: usize) -> Result<Box<dyn Receiver + '_>, String> {
        Ok(Box::new(QueueReceiver(&self.queue)))
    }
}

// ----- topic fan-out -----

pub struct WeirFanout {
    _engine: Engine,
    topic: Topic,
    queues: Vec<Queue>,
}

impl WeirFanout {
    pub fn open(dir: &Path, durability: Durability) -> WeirFanout {
        let engine = weir_side::fanout_topic(dir, durability);
        let topic = engine.topic("fan").expect("weir: topic");
        let queues =
            (0..weir_side::FANOUT_QUEUES).map(|i| engine.queue(&format!("sub-{i}")).expect("weir: queue")).collect();
        WeirFanout { _engine: engine, topic, queues }
    }
}

struct Publisher<'a>(&'a Topic);

impl Sender for Publisher<'_> {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        self.0.publish(body, PublishOptions::default()).map(drop).map_err(err)
    }
}

impl Setup for WeirFanout {
    fn sender(&self, _: usize) -> Result<Box<dyn Sender + '_>, String> {
        Ok(Box::new(Publisher(&self.topic)))
    }

    fn receiver(&self, i: usize) -> Result<Box<dyn Receiver + '_>, String> {
        let q = self.queues.get(i).ok_or_else(|| format!("weir: no subscription {i}"))?;
        Ok(Box::new(QueueReceiver(q)))
    }
}

// ----- streams -----

pub struct WeirStream {
    _engine: Engine,
    stream: Arc<Stream>,
    keys: Vec<Vec<u8>>,
}

impl WeirStream {
    pub fn open(dir: &Path, durability: Durability, keys: &[Vec<u8>]) -> WeirStream {
        let engine = weir_side::open_weir(dir, durability);
        engine.create_stream("s", 1, None).expect("weir: create stream");
        let stream = engine.stream("s").expect("weir: stream");
        WeirStream { _engine: engine, stream, keys: keys.to_vec() }
    }
}

struct Putter<'a> {
    stream: &'a Stream,
    key: &'a [u8],
}

impl Sender for Putter<'_> {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        self.stream.put(self.key, body).map(drop).map_err(err)
    }
}

/// Reads the stream from its end, as a consumer tailing it would. weir's iterator does not
/// block, so an idle read sleeps 100 µs before looking again (counted in the latency).
struct Tail {
    it: weir::stream::ShardIterator,
}

impl Receiver for Tail {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        let deadline = Instant::now() + LONG_POLL;
        loop {
            let batch = self.it.next_batch(1000).map_err(err)?;
            if !batch.records.is_empty() {
                for r in &batch.records {
                    on_body(&r.data);
                }
                return Ok(batch.records.len() as u64);
            }
            if Instant::now() > deadline {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl Setup for WeirStream {
    fn sender(&self, i: usize) -> Result<Box<dyn Sender + '_>, String> {
        Ok(Box::new(Putter { stream: &self.stream, key: &self.keys[i % self.keys.len()] }))
    }

    fn receiver(&self, _: usize) -> Result<Box<dyn Receiver + '_>, String> {
        let it = self.stream.iterator(0, StartingPosition::Latest).map_err(err)?;
        Ok(Box::new(Tail { it }))
    }
}

/// `stream_read`'s data on weir: `count` records of `len` bytes, written once under `Never`.
pub fn fill_stream(dir: &Path, count: usize, len: usize) -> Result<(), String> {
    let engine = weir_side::open_weir(dir, Durability::Never);
    engine.create_stream("s", 1, None).map_err(err)?;
    let stream = engine.stream("s").map_err(err)?;
    let data: Vec<Vec<u8>> = (0..500).map(|i| crate::harness::noise(len, 100 + i)).collect();
    let puts: Vec<PutRecord<'_>> =
        data.iter().map(|d| PutRecord { partition_key: b"pk", data: d, explicit_hash_key: None }).collect();
    for _ in 0..count / puts.len() {
        stream.put_batch(&puts).map_err(err)?;
    }
    Ok(())
}

/// Reads every record of the stream [`fill_stream`] wrote; returns records per second.
pub fn read_stream(dir: &Path, count: usize) -> Result<f64, String> {
    let engine = weir_side::open_weir(dir, Durability::Never);
    let stream = engine.stream("s").map_err(err)?;
    let started = Instant::now();
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).map_err(err)?;
    let (mut n, mut sum) = (0usize, 0u64);
    loop {
        let b = it.next_batch(10_000).map_err(err)?;
        if b.records.is_empty() {
            break;
        }
        for r in &b.records {
            n += 1;
            sum += r.data.len() as u64;
        }
    }
    std::hint::black_box(sum);
    if n < count {
        return Err(format!("weir: read {n} records, expected {count}"));
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
