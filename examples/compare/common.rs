//! The harness shared by every workload family: run sizes, fresh directories, alternating
//! rounds, timed multi-threaded runs, the "physical limit" writers, SQLite connections, test data
//! and the result rows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement};
use weir::format::{Compression, EncodedBatch, RecordRef};
use weir::{Durability, Engine, Options};

/// Sizes and places of one invocation.
pub struct Ctx {
    /// `--quick`: small counts, one round.
    pub quick: bool,
    /// Measuring window of one timed run.
    pub window: Duration,
    /// Rounds of (weir, limit, SQLite), alternating; the median is reported.
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
}

/// The three ways a workload is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Weir,
    Limit,
    Sqlite,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            System::Weir => "weir",
            System::Limit => "limit",
            System::Sqlite => "sqlite",
        }
    }
}

/// One run of one system on a fresh directory; returns operations per second.
pub type Run<'a> = &'a dyn Fn(&Path) -> f64;

/// Medians of the three columns (None: the column does not apply).
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub weir: Option<f64>,
    pub limit: Option<f64>,
    pub sqlite: Option<f64>,
}

/// Runs the systems `ctx.rounds` times, alternating (the order rotates every round), each run on
/// a fresh directory; returns the median of each.
pub fn alternate(ctx: &Ctx, name: &str, weir: Run<'_>, limit: Option<Run<'_>>, sqlite: Option<Run<'_>>) -> Measured {
    let systems: Vec<(System, Run<'_>)> =
        [(System::Weir, Some(weir)), (System::Limit, limit), (System::Sqlite, sqlite)]
            .into_iter()
            .filter_map(|(s, r)| r.map(|r| (s, r)))
            .filter(|(s, _)| ctx.systems.is_empty() || ctx.systems.iter().any(|n| n == s.label()))
            .collect();
    let mut results: Vec<(System, Vec<f64>)> = systems.iter().map(|(s, _)| (*s, Vec::new())).collect();
    for round in 0..ctx.rounds {
        for k in 0..systems.len() {
            let (system, run) = systems[(k + round) % systems.len()];
            let dir = ctx.tempdir(&format!("{name}-{}", system.label()));
            let value = run(dir.path());
            eprintln!("  {name:<24} round {}/{} {:<6} {}", round + 1, ctx.rounds, system.label(), fmt_rate(value));
            if let Some((_, v)) = results.iter_mut().find(|(s, _)| *s == system) {
                v.push(value);
            }
        }
    }
    let get = |system: System| results.iter().find(|(s, _)| *s == system).map(|(_, v)| median(v));
    Measured { weir: get(System::Weir), limit: get(System::Limit), sqlite: get(System::Sqlite) }
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
    pub fn running(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
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
    let stop = Stop(AtomicBool::new(false));
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
        stop.0.store(true, Ordering::SeqCst);
        elapsed = start.elapsed();
        handles.into_iter().map(|h| h.join().expect("a benchmark thread panicked (see above)")).sum()
    });
    total as f64 / elapsed.as_secs_f64()
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

// ----- weir -----

pub fn open_weir(dir: &Path, durability: Durability) -> Engine {
    let key_source = ENCRYPTED.load(Ordering::SeqCst).then(bench_key);
    Engine::open(dir, Options { durability, key_source, ..Options::default() })
        .unwrap_or_else(|e| panic!("weir: cannot open {}: {e}", dir.display()))
}

/// While set, [`open_weir`] opens (and creates) encrypted data directories: the `*_encrypted`
/// rows run a workload's weir code as it is, once plain and once encrypted.
static ENCRYPTED: AtomicBool = AtomicBool::new(false);

/// The key file of the encrypted runs.
fn bench_key() -> weir::KeySource {
    weir::KeySource::from_text(&format!("bench {}\n", "7e".repeat(32))).expect("bench key")
}

/// True while [`with_encryption`] runs encrypted.
pub fn encryption_on() -> bool {
    ENCRYPTED.load(Ordering::SeqCst)
}

/// Runs `f` with [`open_weir`] opening encrypted directories (`on`) or plain ones.
pub fn with_encryption<T>(on: bool, f: impl FnOnce() -> T) -> T {
    ENCRYPTED.store(on, Ordering::SeqCst);
    let out = f();
    ENCRYPTED.store(false, Ordering::SeqCst);
    out
}

/// Runs weir's `run` plain and encrypted `ctx.rounds` times each, alternating (the order
/// rotates every round), each on a fresh directory; returns the medians (plain, encrypted).
pub fn alternate_encryption(ctx: &Ctx, name: &str, run: Run<'_>) -> (f64, f64) {
    let (mut plain, mut encrypted) = (Vec::new(), Vec::new());
    for round in 0..ctx.rounds {
        for k in 0..2 {
            let on = (k + round) % 2 == 1;
            let dir = ctx.tempdir(&format!("{name}-{}", if on { "encrypted" } else { "plain" }));
            let value = with_encryption(on, || run(dir.path()));
            let label = if on { "encrypted" } else { "plain" };
            eprintln!("  {name:<24} round {}/{} {label:<9} {}", round + 1, ctx.rounds, fmt_rate(value));
            if on { &mut encrypted } else { &mut plain }.push(value);
        }
    }
    (median(&plain), median(&encrypted))
}

/// The row of an encrypted run against the same workload run plain, alternating: PASS when the
/// encrypted one does at least 85% of the plain one's operations (at most 15% slower).
pub fn encryption_row(name: &'static str, ops: &'static str, plain: f64, encrypted: f64) -> Row {
    let m = Measured { weir: Some(encrypted), limit: None, sqlite: None };
    let mut row = Row::new(name, ops, m, Target::OfOther { label: "plain", value: plain, frac: 0.85 });
    row.note = format!(
        "weir encrypted at rest (AES-256-GCM, every frame sealed) against the same workload plain, alternating: {:.1}% of plain",
        encrypted / plain * 100.0
    );
    row
}

// ----- the physical limit -----

/// Creates (truncating) a file for the limit's writes.
pub fn limit_file(dir: &Path, name: &str) -> File {
    let path = dir.join(name);
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("limit: cannot create {}: {e}", path.display()))
}

pub fn write_sync(file: &File, bytes: &[u8], sync: bool) {
    let mut f = file;
    f.write_all(bytes).expect("limit: write failed");
    if sync {
        file.sync_data().expect("limit: fdatasync failed");
    }
}

/// A perfect group commit with no engine: callers hand it bytes; whoever finds no fsync running
/// writes everything handed in so far with one `write` and one `fdatasync`, and every caller
/// returns once a sync covered its bytes. With `sync` off, each call is one plain `write`.
pub struct LimitLog {
    file: File,
    sync: bool,
    state: Mutex<LimitState>,
    synced: Condvar,
}

#[derive(Default)]
struct LimitState {
    /// fsyncs, bytes they covered, and time spent in write + fdatasync.
    syncs: u64,
    synced_bytes: u64,
    sync_time: Duration,
    pending: Vec<u8>,
    spare: Vec<u8>,
    appended: u64,
    durable: u64,
    syncing: bool,
}

impl LimitLog {
    pub fn new(dir: &Path, sync: bool) -> LimitLog {
        LimitLog {
            file: limit_file(dir, "limit.log"),
            sync,
            state: Mutex::new(LimitState::default()),
            synced: Condvar::new(),
        }
    }

    /// (fsyncs, bytes written by them, time spent writing and syncing).
    pub fn stats(&self) -> (u64, u64, Duration) {
        let s = self.state.lock().expect("limit lock");
        (s.syncs, s.synced_bytes, s.sync_time)
    }

    pub fn append(&self, bytes: &[u8]) {
        let mut s = self.state.lock().expect("limit lock");
        if !self.sync {
            write_sync(&self.file, bytes, false);
            return;
        }
        s.pending.extend_from_slice(bytes);
        s.appended += 1;
        let ticket = s.appended;
        loop {
            if s.durable >= ticket {
                return;
            }
            if s.syncing {
                s = self.synced.wait(s).expect("limit lock");
                continue;
            }
            s.syncing = true;
            let upto = s.appended;
            let spare = std::mem::take(&mut s.spare);
            let mut batch = std::mem::replace(&mut s.pending, spare);
            drop(s);
            let t = Instant::now();
            write_sync(&self.file, &batch, true);
            let took = t.elapsed();
            s = self.state.lock().expect("limit lock");
            s.syncs += 1;
            s.synced_bytes += batch.len() as u64;
            s.sync_time += took;
            batch.clear();
            s.spare = batch;
            s.durable = upto;
            s.syncing = false;
            self.synced.notify_all();
        }
    }
}

/// The bytes weir writes for one frame of these records, header included (compressed exactly
/// when weir's default `Compression::Auto` would compress it).
pub fn frame_of(records: &[RecordRef<'_>]) -> Vec<u8> {
    let mut batch = EncodedBatch::encode(records, Compression::Auto);
    let stamp = weir::format::FrameStamp { base_seq: 0, time_ms: 1_700_000_000_000, salt: 0, durable_seq: 0 };
    batch.seal(&stamp).to_vec()
}

/// One frame per value, all with empty keys (the message log's records).
pub fn message_log_frame(values: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"", value: v }).collect();
    frame_of(&refs)
}

// ----- SQLite -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// `synchronous=FULL`: a commit returns after its WAL frames are fsynced.
    Full,
    /// `synchronous=OFF`: no fsync at all (the buffered rows).
    Off,
}

/// Opens a connection as every thread of a run does: WAL, the given `synchronous`, a long busy
/// timeout (writers queue on the write lock instead of failing).
pub fn sqlite_open(path: &Path, sync: SqliteSync) -> Connection {
    let conn = Connection::open(path).unwrap_or_else(|e| panic!("sqlite: cannot open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(120)).expect("sqlite: busy_timeout");
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).expect("sqlite: journal_mode=WAL");
    assert_eq!(mode.to_ascii_lowercase(), "wal", "sqlite refused WAL mode");
    let level = match sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Off => "OFF",
    };
    conn.pragma_update(None, "synchronous", level).expect("sqlite: synchronous");
    conn
}

/// Prepares a statement once per thread (the bundled build has no statement cache).
pub fn prep<'c>(conn: &'c Connection, sql: &str) -> Statement<'c> {
    conn.prepare(sql).unwrap_or_else(|e| panic!("sqlite: cannot prepare {sql:?}: {e}"))
}

/// `BEGIN IMMEDIATE` ... `COMMIT` around one unit of work, both prepared once.
pub struct Txn<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
}

impl<'c> Txn<'c> {
    pub fn new(conn: &'c Connection) -> Txn<'c> {
        Txn { begin: prep(conn, "BEGIN IMMEDIATE"), commit: prep(conn, "COMMIT") }
    }

    pub fn run<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let _serial = SQLITE_SERIALIZE.load(Ordering::Relaxed).then(|| SQLITE_WRITE_LOCK.lock());
        self.begin.execute([]).expect("sqlite: BEGIN IMMEDIATE");
        let out = work();
        self.commit.execute([]).expect("sqlite: COMMIT");
        out
    }
}

/// `--sqlite-serialize` (an experiment, not the reported configuration): queue SQLite's write
/// transactions on an in-process mutex instead of SQLite's sleeping busy handler.
pub static SQLITE_SERIALIZE: AtomicBool = AtomicBool::new(false);
static SQLITE_WRITE_LOCK: Mutex<()> = Mutex::new(());

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

// ----- results -----

/// What a row must reach.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// weir >= `limit` x the limit (if given) and >= `sqlite` x SQLite (if given).
    Ratios { limit: Option<f64>, sqlite: Option<f64> },
    /// weir within `frac` of another row's weir figure (not below `1 - frac` of it).
    Within { base: &'static str, frac: f64 },
    /// Reported only; PASS when the condition noted by the workload held.
    Condition(bool),
    /// weir >= `frac` x `value`, another configuration of weir measured by the same workload
    /// (`label` names it: `library` for the HTTP cycle).
    OfOther { label: &'static str, value: f64, frac: f64 },
}

pub struct Row {
    pub name: &'static str,
    /// What one operation is.
    pub ops: &'static str,
    pub m: Measured,
    pub target: Target,
    /// Free text shown under the table.
    pub note: String,
    /// For rows reported in seconds (recovery): the weir column is shown as seconds.
    pub seconds: Option<f64>,
}

impl Row {
    pub fn new(name: &'static str, ops: &'static str, m: Measured, target: Target) -> Row {
        Row { name, ops, m, target, note: String::new(), seconds: None }
    }

    pub fn ratio_limit(&self) -> Option<f64> {
        Some(self.m.weir? / self.m.limit?)
    }

    pub fn ratio_sqlite(&self) -> Option<f64> {
        Some(self.m.weir? / self.m.sqlite?)
    }

    pub fn target_text(&self) -> String {
        match self.target {
            Target::Ratios { limit, sqlite } => {
                let mut parts = Vec::new();
                if let Some(l) = limit {
                    parts.push(format!(">= {l} x limit"));
                }
                if let Some(s) = sqlite {
                    parts.push(format!(">= {s} x SQLite"));
                }
                parts.join(", ")
            }
            Target::Within { base, frac } => format!("within {:.0}% of {base}", frac * 100.0),
            Target::Condition(_) => "index rebuild only for the tail".into(),
            Target::OfOther { label, value, frac } => format!(">= {frac} x {label} ({})", fmt_rate(value)),
        }
    }

    /// PASS/MISS; `rows` gives the base of a `Within` target.
    pub fn pass(&self, rows: &[Row]) -> Option<bool> {
        match self.target {
            Target::Ratios { limit, sqlite } => {
                let mut ok = true;
                if let Some(l) = limit {
                    ok &= self.ratio_limit()? >= l;
                }
                if let Some(s) = sqlite {
                    ok &= self.ratio_sqlite()? >= s;
                }
                Some(ok)
            }
            Target::Within { base, frac } => {
                let base = rows.iter().find(|r| r.name == base)?.m.weir?;
                Some(self.m.weir? >= base * (1.0 - frac))
            }
            Target::Condition(ok) => Some(ok),
            Target::OfOther { value, frac, .. } => Some(self.m.weir? >= value * frac),
        }
    }
}

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

/// Measures workload `name` over HTTP and through the library, `ctx.rounds` rounds each (a
/// fresh directory for every run; which goes first alternates), and returns the medians
/// (HTTP, library). `measure(over_http, dir)` is one run's rate.
pub fn http_and_library(ctx: &Ctx, name: &str, mut measure: impl FnMut(bool, &Path) -> f64) -> (f64, f64) {
    let (mut http_rates, mut library_rates) = (Vec::new(), Vec::new());
    for round in 0..ctx.rounds {
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for over_http in order {
            let dir = ctx.tempdir(&format!("{name}-{}", if over_http { "http" } else { "library" }));
            let rate = measure(over_http, dir.path());
            eprintln!(
                "  {:<24} round {}/{} {:<7} {}",
                name,
                round + 1,
                ctx.rounds,
                if over_http { "http" } else { "library" },
                fmt_rate(rate)
            );
            if over_http { &mut http_rates } else { &mut library_rates }.push(rate);
        }
    }
    (median(&http_rates), median(&library_rates))
}
