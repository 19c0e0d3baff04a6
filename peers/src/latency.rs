//! Latency at a fixed offered load, recorded in HDR histograms.
//!
//! Senders are paced open-loop: sender `i` of `n` makes its `k`-th send at
//! `start + (k * n + i) / rate`, whatever the previous sends took (a late send goes at once,
//! and the histogram of send latencies is corrected for the sends it delayed, so a stall is not
//! hidden). Every body starts with the send time (16 hex digits of nanoseconds since this
//! process's epoch), so a receiver that holds the message records the end-to-end latency: sender
//! and receivers are threads of this one process, on one monotonic clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Histograms count microseconds, from 1 µs to 100 s, at 3 significant digits.
const HIGHEST_US: u64 = 100_000_000;
/// Bytes of the send stamp at the start of every body.
pub const STAMP_LEN: usize = 16;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since this process's latency epoch.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Writes the current time into the first [`STAMP_LEN`] bytes of `body` (hex digits, so text
/// bodies stay text).
pub fn stamp(body: &mut [u8]) {
    write_stamp(body, now_ns());
}

fn write_stamp(body: &mut [u8], ns: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in body[..STAMP_LEN].iter_mut().enumerate() {
        *b = HEX[((ns >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// The send time a body carries, if it carries one.
pub fn stamp_of(body: &[u8]) -> Option<u64> {
    let digits = body.get(..STAMP_LEN)?;
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 16).ok()
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// Records `d` (clamped into the histogram's range).
fn record(h: &mut Histogram<u64>, micros: u64) {
    let _ = h.record(micros.clamp(1, HIGHEST_US));
}

/// The percentiles a report shows, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Option<Summary> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Summary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// What one latency run measured.
#[derive(Debug, Clone)]
pub struct LatencyResult {
    /// Offered load, sends per second.
    pub offered: f64,
    /// Sends that completed, per second of the window.
    pub achieved: f64,
    /// Call to Ok of each durable send.
    pub send: Option<Summary>,
    /// Send to a receiver holding the message (None where there is no receiver).
    pub e2e: Option<Summary>,
    /// Deliveries expected but not seen before the grace period ended.
    pub missing: u64,
}

/// The shape of one latency run.
pub struct Load {
    pub senders: usize,
    pub receivers: usize,
    /// Total sends per second, over all senders.
    pub rate: f64,
    pub window: Duration,
    /// Deliveries each send makes (10 for a fan-out).
    pub fanout: u64,
    /// The body every send carries (its first bytes are overwritten by the stamp).
    pub body: Vec<u8>,
}

/// Sends one body; Err ends the run.
pub type SendFn<'a> = Box<dyn FnMut(&[u8]) -> Result<(), String> + 'a>;
/// One receive step: calls `on_body` for every body it now holds (and has acknowledged or
/// deleted, as the workload's cycle requires); returns within about 100 ms when idle.
pub type ReceiveFn<'a> = Box<dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<(), String> + 'a>;

/// Runs `load`: sets up every sender and receiver (outside the window), paces the senders for
/// the window, lets the receivers drain for up to `grace` after it, and summarises.
pub fn run<'a, S, R>(load: &Load, grace: Duration, setup_sender: S, setup_receiver: R) -> Result<LatencyResult, String>
where
    S: Fn(usize) -> Result<SendFn<'a>, String> + Sync,
    R: Fn(usize) -> Result<ReceiveFn<'a>, String> + Sync,
{
    let sent = AtomicU64::new(0);
    let received = AtomicU64::new(0);
    let senders_done = AtomicBool::new(false);
    let abort = AtomicBool::new(false);
    let error: Mutex<Option<String>> = Mutex::new(None);
    let send_hist = Mutex::new(histogram());
    let e2e_hist = Mutex::new(histogram());
    let ready = Barrier::new(load.senders + load.receivers + 1);
    let start_at: OnceLock<Instant> = OnceLock::new();
    let fail = |e: String| {
        abort.store(true, Ordering::SeqCst);
        error.lock().expect("error lock").get_or_insert(e);
    };
    let interval = Duration::from_secs_f64(load.senders as f64 / load.rate.max(1e-3));
    std::thread::scope(|s| {
        let mut sender_threads = Vec::with_capacity(load.senders);
        for i in 0..load.senders {
            let (setup, ready, start_at, fail) = (&setup_sender, &ready, &start_at, &fail);
            let (sent, abort, send_hist) = (&sent, &abort, &send_hist);
            sender_threads.push(s.spawn(move || {
                let sender = setup(i);
                ready.wait();
                let mut send = match sender {
                    Ok(f) => f,
                    Err(e) => return fail(e),
                };
                let mut body = load.body.clone();
                let mut local = histogram();
                let start = *start_at.wait();
                let offset = interval.mul_f64(i as f64 / load.senders as f64);
                let mut k: u32 = 0;
                loop {
                    let due = start + offset + interval * k;
                    if due >= start + load.window || abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    stamp(&mut body);
                    let t = Instant::now();
                    if let Err(e) = send(&body) {
                        fail(e);
                        break;
                    }
                    let micros = t.elapsed().as_micros() as u64;
                    let _ = local.record_correct(micros.clamp(1, HIGHEST_US), interval.as_micros().max(1) as u64);
                    sent.fetch_add(1, Ordering::SeqCst);
                    k += 1;
                }
                let _ = send_hist.lock().expect("histogram lock").add(&local);
            }));
        }
        for i in 0..load.receivers {
            let (setup, ready, fail) = (&setup_receiver, &ready, &fail);
            let (sent, received, senders_done, abort, e2e_hist) = (&sent, &received, &senders_done, &abort, &e2e_hist);
            s.spawn(move || {
                let receiver = setup(i);
                ready.wait();
                let mut step = match receiver {
                    Ok(f) => f,
                    Err(e) => return fail(e),
                };
                let mut local = histogram();
                let mut deadline: Option<Instant> = None;
                loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    if senders_done.load(Ordering::SeqCst) {
                        if received.load(Ordering::SeqCst) >= sent.load(Ordering::SeqCst) * load.fanout {
                            break;
                        }
                        let d = *deadline.get_or_insert_with(|| Instant::now() + grace);
                        if Instant::now() > d {
                            break;
                        }
                    }
                    let mut on_body = |body: &[u8]| {
                        if let Some(at) = stamp_of(body) {
                            record(&mut local, now_ns().saturating_sub(at) / 1000);
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    if let Err(e) = step(&mut on_body) {
                        fail(e);
                        break;
                    }
                }
                let _ = e2e_hist.lock().expect("histogram lock").add(&local);
            });
        }
        ready.wait();
        let _ = start_at.set(Instant::now());
        // Senders stop by themselves once their next send falls after the window; then the
        // receivers drain what is still on its way (up to `grace`).
        for t in sender_threads {
            if t.join().is_err() {
                fail("a sender thread panicked".into());
            }
        }
        senders_done.store(true, Ordering::SeqCst);
    });
    if let Some(e) = error.into_inner().expect("error lock") {
        return Err(e);
    }
    let sent = sent.load(Ordering::SeqCst);
    let received = received.load(Ordering::SeqCst);
    let send = Summary::of(&send_hist.into_inner().expect("histogram lock"));
    let e2e = if load.receivers > 0 { Summary::of(&e2e_hist.into_inner().expect("histogram lock")) } else { None };
    Ok(LatencyResult {
        offered: load.rate,
        achieved: sent as f64 / load.window.as_secs_f64(),
        send,
        e2e,
        missing: if load.receivers > 0 { (sent * load.fanout).saturating_sub(received) } else { 0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_reject_non_stamps() {
        let mut body = vec![b'x'; 40];
        write_stamp(&mut body, 0x0123_4567_89ab_cdef);
        assert_eq!(&body[..16], b"0123456789abcdef");
        assert_eq!(stamp_of(&body), Some(0x0123_4567_89ab_cdef));
        assert_eq!(&body[16..], &[b'x'; 24][..], "the rest of the body is untouched");
        assert_eq!(stamp_of(b"short"), None);
        assert_eq!(stamp_of(&[b'z'; 20]), None);
    }

    #[test]
    fn summary_reports_percentiles_in_milliseconds() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            record(&mut h, us * 10); // 10 µs .. 10 ms, uniform
        }
        let s = Summary::of(&h).expect("not empty");
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 5.0).abs() < 0.01, "p50 {}", s.p50_ms);
        assert!((s.p99_ms - 9.9).abs() < 0.01, "p99 {}", s.p99_ms);
        assert!((s.p999_ms - 9.99).abs() < 0.01, "p99.9 {}", s.p999_ms);
        assert!((s.max_ms - 10.0).abs() < 0.01, "max {}", s.max_ms);
        assert_eq!(Summary::of(&histogram()), None, "an empty histogram has no percentiles");
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn a_paced_run_offers_the_rate_and_sees_every_delivery() {
        // An in-process "queue": a channel per run. 2 senders at 400/s for 0.5 s, 1 receiver.
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let rx = Mutex::new(rx);
        let load = Load {
            senders: 2,
            receivers: 1,
            rate: 400.0,
            window: Duration::from_millis(500),
            fanout: 1,
            body: vec![b'.'; 32],
        };
        let r = run(
            &load,
            Duration::from_secs(2),
            |_| {
                let tx = tx.clone();
                Ok(Box::new(move |body: &[u8]| tx.send(body.to_vec()).map_err(|e| e.to_string())) as SendFn<'_>)
            },
            |_| {
                let rx = &rx;
                Ok(Box::new(move |on_body: &mut dyn FnMut(&[u8])| {
                    if let Ok(b) = rx.lock().expect("rx").recv_timeout(Duration::from_millis(50)) {
                        on_body(&b);
                    }
                    Ok(())
                }) as ReceiveFn<'_>)
            },
        )
        .expect("the run succeeds");
        let send = r.send.expect("sends were measured");
        let e2e = r.e2e.expect("deliveries were measured");
        assert!((150..=210).contains(&send.count), "about 200 sends, got {}", send.count);
        assert_eq!(r.missing, 0);
        assert_eq!(e2e.count, send.count);
        assert!(e2e.p50_ms < 50.0, "an in-process channel delivers fast: {e2e:?}");
    }

    #[test]
    fn a_failing_sender_fails_the_run() {
        let load = Load {
            senders: 1,
            receivers: 0,
            rate: 100.0,
            window: Duration::from_millis(200),
            fanout: 1,
            body: vec![0; 16],
        };
        let r = run(
            &load,
            Duration::from_millis(100),
            |_| Ok(Box::new(|_: &[u8]| Err("refused".to_string())) as SendFn<'_>),
            |_| Err::<ReceiveFn<'_>, String>("unused".into()),
        );
        assert_eq!(r.err().as_deref(), Some("refused"));
    }
}
