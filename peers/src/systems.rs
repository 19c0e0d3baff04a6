//! What every measured system offers the workloads, and the runners that drive any of them.
//!
//! A system sets up one run (a fresh queue, exchange or stream) as a [`Setup`]; the run then
//! asks it for sender and receiver handles, one per thread (each with its own connection for
//! the peers). The same runners measure throughput (closed loop, as `examples/compare` does)
//! and latency (paced, see [`crate::latency`]) for weir and for every peer.

use std::time::Duration;

use crate::harness::{count_until_stop, try_timed, Stop};
use crate::latency::{self, LatencyResult, Load, ReceiveFn, SendFn};

/// Sends one message durably (returns once the system acknowledged it).
pub trait Sender {
    fn send(&mut self, body: &[u8]) -> Result<(), String>;
}

/// One receive step: takes up to 10 messages (waiting up to about 100 ms when there are none),
/// calls `on_body` for each while holding it, then deletes or acknowledges them; returns how
/// many it completed.
pub trait Receiver {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String>;
}

/// One run's queue, topic or stream on one system.
pub trait Setup: Sync {
    /// A sender for thread `i`.
    fn sender(&self, i: usize) -> Result<Box<dyn Sender + '_>, String>;
    /// A receiver for thread `i` (for a fan-out: of subscription `i`).
    fn receiver(&self, i: usize) -> Result<Box<dyn Receiver + '_>, String>;
}

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub senders: usize,
    /// Receivers in the throughput run (0: the run only sends, as `topic_fanout` and the stream
    /// puts do in `examples/compare`).
    pub receivers: usize,
    /// Receivers in the latency run.
    pub latency_receivers: usize,
    /// Operations one send counts for when only sending (10 deliveries per publish).
    pub per_send: u64,
    /// Deliveries each send makes (for the latency run's bookkeeping).
    pub fanout: u64,
}

fn fail(e: String) -> ! {
    panic!("{e}")
}

/// Closed-loop throughput: operations per second over `window`. With receivers, an operation is
/// one message whose delete (or ack) completed; without, `per_send` per completed send.
pub fn throughput(setup: &dyn Setup, shape: Shape, window: Duration, body: &[u8]) -> Result<f64, String> {
    try_timed(shape.senders + shape.receivers, window, |i| -> Box<dyn FnOnce(&Stop) -> u64 + '_> {
        if i < shape.senders {
            let mut sender = setup.sender(i).unwrap_or_else(|e| fail(e));
            let per_send = if shape.receivers == 0 { shape.per_send } else { 0 };
            Box::new(move |stop: &Stop| {
                count_until_stop(stop, || {
                    sender.send(body).unwrap_or_else(|e| fail(e));
                    per_send
                })
            })
        } else {
            let mut receiver = setup.receiver(i - shape.senders).unwrap_or_else(|e| fail(e));
            Box::new(move |stop: &Stop| {
                count_until_stop(stop, || {
                    receiver
                        .receive(&mut |b| {
                            std::hint::black_box(b);
                        })
                        .unwrap_or_else(|e| fail(e))
                })
            })
        }
    })
}

/// Latency at `rate` sends per second for `window`: each send's call-to-Ok, and for every
/// delivery the time from its send to a receiver holding it.
pub fn latency(
    setup: &dyn Setup,
    shape: Shape,
    rate: f64,
    window: Duration,
    body: &[u8],
) -> Result<LatencyResult, String> {
    let load = Load {
        senders: shape.senders,
        receivers: shape.latency_receivers,
        rate,
        window,
        fanout: shape.fanout,
        body: body.to_vec(),
    };
    latency::run(
        &load,
        Duration::from_secs(5),
        |i| {
            let mut sender = setup.sender(i)?;
            Ok(Box::new(move |body: &[u8]| sender.send(body)) as SendFn<'_>)
        },
        |i| {
            let mut receiver = setup.receiver(i)?;
            Ok(Box::new(move |on_body: &mut dyn FnMut(&[u8])| receiver.receive(on_body).map(drop)) as ReceiveFn<'_>)
        },
    )
}

/// The shared tokio runtime the RabbitMQ and NATS clients run on (each benchmark thread blocks
/// on its own futures; the runtime's two workers drive the sockets).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// Runs a future on [`runtime`] from a plain thread.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// A fresh name for one run's objects.
pub fn run_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
