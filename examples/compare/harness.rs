//! The measuring harness shared by `examples/compare` (weir against the physical limit and
//! SQLite) and the `weir-peers` program (`peers/`, weir against PostgreSQL, RabbitMQ and NATS):
//! run sizes, fresh directories, alternating rounds with medians and the stability rule, timed
//! multi-threaded runs, test data and number formatting. It depends on neither weir nor any
//! peer's client, so both programs include this one file (`#[path]`) rather than copies of it.

#![allow(dead_code)] // each program uses its own part of it

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Sizes and places of one invocation.
pub struct Ctx {
    /// `--quick`: small counts, one round.
    pub quick: bool,
    /// Measuring window of one timed run.
    pub window: Duration,
    /// Rounds of the systems, alternating; the median is reported.
    pub rounds: usize,
    /// Where every temporary directory is created (same disk as `target/`, not tmpfs).
    pub tmp_root: PathBuf,
    /// Systems to run (`--systems`, for profiling one of them); empty: all.
    pub systems: Vec<String>,
}

impl Ctx {
    /// A fresh, empty directory under `tmp_root`, removed when dropped.
    pub fn tempdir(&self, label: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("{label}-"))
            .tempdir_in(&self.tmp_root)
            .unwrap_or_else(|e| panic!("cannot create a temporary directory in {}: {e}", self.tmp_root.display()))
    }

    /// `full` in a full run, `quick` with `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// Whether `--systems` lets this system run.
    pub fn wants(&self, label: &str) -> bool {
        self.systems.is_empty() || self.systems.iter().any(|n| n == label)
    }
}

/// A baseline whose slowest and fastest rounds differ by more than this factor is unstable: it
/// is reported, but no ratio is drawn from it (issue 15, "Fair baselines").
pub const UNSTABLE_SPREAD: f64 = 2.0;

/// The rounds one system ran in one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Operations per second of each round, in the order they ran; empty if it did not run.
    pub rounds: Vec<f64>,
    /// Why it could not run (the first failure), if it failed.
    pub error: Option<String>,
}

impl Series {
    pub fn median(&self) -> Option<f64> {
        (!self.rounds.is_empty()).then(|| median(&self.rounds))
    }

    /// Fastest over slowest round (1 for a single round, infinite if a round measured 0).
    pub fn spread(&self) -> f64 {
        spread(&self.rounds)
    }

    /// Rounds more than [`UNSTABLE_SPREAD`] apart.
    pub fn unstable(&self) -> bool {
        self.spread() > UNSTABLE_SPREAD
    }

    /// The median if it may be used for a ratio: measured, and stable.
    pub fn usable(&self) -> Option<f64> {
        if self.unstable() {
            None
        } else {
            self.median()
        }
    }
}

/// Fastest over slowest of `values` (1 when there are fewer than two).
pub fn spread(values: &[f64]) -> f64 {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 {
        1.0
    } else if lo <= 0.0 {
        f64::INFINITY
    } else {
        hi / lo
    }
}

/// One run of one system on a fresh directory: operations per second, or why it failed.
pub type TryRun<'a> = &'a dyn Fn(&Path) -> Result<f64, String>;
/// A [`TryRun`] owned by the table of runs that lends it to [`alternate_series`].
pub type BoxedRun<'a> = Box<dyn Fn(&Path) -> Result<f64, String> + 'a>;

/// Runs every system `ctx.rounds` times, alternating (the order rotates every round), each run
/// on a fresh directory, and returns each system's rounds. A system whose run fails is not run
/// again in this workload; its error is kept. Systems `--systems` leaves out are not returned.
pub fn alternate_series(ctx: &Ctx, name: &str, systems: &[(&str, TryRun<'_>)]) -> Vec<Series> {
    let systems: Vec<&(&str, TryRun<'_>)> = systems.iter().filter(|(label, _)| ctx.wants(label)).collect();
    let mut out: Vec<Series> =
        systems.iter().map(|(label, _)| Series { label: label.to_string(), rounds: Vec::new(), error: None }).collect();
    for round in 0..ctx.rounds {
        for k in 0..systems.len() {
            let i = (k + round) % systems.len();
            if out[i].error.is_some() {
                continue;
            }
            let (label, run) = systems[i];
            let dir = ctx.tempdir(&format!("{name}-{label}"));
            match run(dir.path()) {
                Ok(value) => {
                    eprintln!("  {name:<24} round {}/{} {label:<17} {}", round + 1, ctx.rounds, fmt_rate(value));
                    out[i].rounds.push(value);
                }
                Err(e) => {
                    eprintln!("  {name:<24} round {}/{} {label:<17} FAILED: {e}", round + 1, ctx.rounds);
                    out[i].error = Some(e);
                }
            }
        }
    }
    out
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Tells workers when the window has closed.
pub struct Stop(AtomicBool);

impl Stop {
    pub fn new() -> Stop {
        Stop(AtomicBool::new(false))
    }

    pub fn running(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Default for Stop {
    fn default() -> Stop {
        Stop::new()
    }
}

/// Runs `threads` workers for `window` and returns counted operations per second.
///
/// Each thread first calls `setup(thread index)` (opening connections and the like, outside the
/// window), all threads start together, and the worker it returned runs until [`Stop`] says the
/// window closed; it returns the operations it completed inside the window.
pub fn timed<S, W>(threads: usize, window: Duration, setup: S) -> f64
where
    S: Fn(usize) -> W + Sync,
    W: FnOnce(&Stop) -> u64,
{
    let stop = Stop::new();
    let failed = AtomicBool::new(false);
    let ready = Barrier::new(threads + 1);
    let mut elapsed = Duration::ZERO;
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (setup, stop, ready, failed) = (&setup, &stop, &ready, &failed);
                s.spawn(move || {
                    let worker = match catch_unwind(AssertUnwindSafe(|| setup(i))) {
                        Ok(w) => w,
                        Err(panic) => {
                            failed.store(true, Ordering::SeqCst);
                            ready.wait();
                            resume_unwind(panic);
                        }
                    };
                    ready.wait();
                    worker(stop)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        if !failed.load(Ordering::SeqCst) {
            std::thread::sleep(window);
        }
        stop.stop();
        elapsed = start.elapsed();
        handles.into_iter().map(|h| h.join().expect("a benchmark thread panicked (see above)")).sum()
    });
    total as f64 / elapsed.as_secs_f64()
}

/// [`timed`] for workers that can fail (a peer's client): a panicking worker or setup becomes
/// the error of the run instead of ending the program.
pub fn try_timed<S, W>(threads: usize, window: Duration, setup: S) -> Result<f64, String>
where
    S: Fn(usize) -> W + Sync,
    W: FnOnce(&Stop) -> u64,
{
    catch_unwind(AssertUnwindSafe(|| timed(threads, window, setup))).map_err(|panic| panic_text(&*panic))
}

/// The message of a caught panic.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "a benchmark thread panicked".to_string()
    }
}

/// Calls `step` until the window closes; sums what it returns for the steps that finished
/// inside the window.
pub fn count_until_stop(stop: &Stop, mut step: impl FnMut() -> u64) -> u64 {
    let mut n = 0;
    while stop.running() {
        let k = step();
        if stop.running() {
            n += k;
        }
    }
    n
}

// ----- data -----

/// Incompressible bytes (weir's zstd pass keeps them plain, so sizes stay honest).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Printable ASCII noise (topic bodies must be UTF-8).
pub fn text_noise(len: usize, seed: u64) -> Vec<u8> {
    noise(len, seed).into_iter().map(|b| b'a' + b % 26).collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them (each report states the load
/// of the machine before and after its run).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ----- formatting -----

/// `1,234,567` for rates; three significant digits below 100.
pub fn fmt_rate(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v < 100.0 {
        return format!("{v:.1}");
    }
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as the tables print it: `12.5x`, `0.95x`, or `-`.
pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| if r >= 10.0 { format!("{r:.1}x") } else { format!("{r:.2}x") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn ctx(rounds: usize, systems: &[&str]) -> (tempfile::TempDir, Ctx) {
        let root = tempfile::tempdir().expect("tempdir");
        let ctx = Ctx {
            quick: true,
            window: Duration::from_millis(1),
            rounds,
            tmp_root: root.path().to_path_buf(),
            systems: systems.iter().map(|s| s.to_string()).collect(),
        };
        (root, ctx)
    }

    #[test]
    fn rounds_alternate_with_a_rotating_order_and_a_failure_stops_that_system() {
        let (_root, ctx) = ctx(3, &[]);
        let order = RefCell::new(Vec::new());
        let a = |_: &Path| {
            order.borrow_mut().push("a");
            Ok(10.0)
        };
        let b = |_: &Path| {
            order.borrow_mut().push("b");
            Err("down".to_string())
        };
        let c = |_: &Path| {
            order.borrow_mut().push("c");
            Ok(30.0)
        };
        let out = alternate_series(&ctx, "w", &[("a", &a), ("b", &b), ("c", &c)]);
        assert_eq!(*order.borrow(), ["a", "b", "c", "c", "a", "c", "a"], "rotated each round; b not retried");
        assert_eq!(out[0].rounds, [10.0, 10.0, 10.0]);
        assert_eq!(out[1].error.as_deref(), Some("down"));
        assert!(out[1].rounds.is_empty() && out[1].median().is_none());
        assert_eq!(out[2].median(), Some(30.0));
    }

    #[test]
    fn systems_filter_leaves_the_others_out() {
        let (_root, ctx) = ctx(1, &["b"]);
        let run = |_: &Path| Ok(1.0);
        let out = alternate_series(&ctx, "w", &[("a", &run), ("b", &run)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].label, "b");
    }

    #[test]
    fn spread_and_usable() {
        assert_eq!(spread(&[]), 1.0);
        assert_eq!(spread(&[4.0, 2.0, 3.0]), 2.0);
        let s = Series { label: "x".into(), rounds: vec![1.0, 3.0, 2.0], error: None };
        assert!(s.unstable());
        assert_eq!(s.median(), Some(2.0));
        assert_eq!(s.usable(), None);
    }

    #[test]
    fn try_timed_turns_a_panicking_worker_into_an_error() {
        let r = try_timed(2, Duration::from_millis(10), |i| {
            move |stop: &Stop| {
                if i == 1 {
                    panic!("peer refused");
                }
                count_until_stop(stop, || 1)
            }
        });
        let e = r.expect_err("a worker panicked");
        assert!(e.contains("panicked") || e.contains("peer refused"), "{e}");
    }
}
