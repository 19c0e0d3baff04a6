//! What every workload family of this example shares beyond the common harness (`harness.rs`,
//! also used by `weir-peers`): the three systems, the "physical limit" writers, SQLite
//! connections and its single writer, and the result rows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement};
use weir::format::{Compression, EncodedBatch, RecordRef};

pub use crate::harness::*;
pub use crate::weir_side::{open_weir, ENCRYPTED};

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

/// Medians of the three columns (None: the column does not apply), and whether a baseline's
/// rounds were more than [`UNSTABLE_SPREAD`] apart (then no ratio is drawn from it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub weir: Option<f64>,
    pub limit: Option<f64>,
    pub sqlite: Option<f64>,
    /// Fastest over slowest round of the limit and of SQLite (1 with one round).
    pub limit_spread: f64,
    pub sqlite_spread: f64,
}

impl Measured {
    /// Only weir measured (rows with no baseline).
    pub fn weir_only(weir: f64) -> Measured {
        Measured { weir: Some(weir), limit: None, sqlite: None, limit_spread: 1.0, sqlite_spread: 1.0 }
    }

    pub fn limit_unstable(&self) -> bool {
        self.limit.is_some() && self.limit_spread > UNSTABLE_SPREAD
    }

    pub fn sqlite_unstable(&self) -> bool {
        self.sqlite.is_some() && self.sqlite_spread > UNSTABLE_SPREAD
    }
}

/// A run that cannot fail, as [`alternate_series`] takes it.
fn infallible<'a>(run: Run<'a>) -> impl Fn(&Path) -> Result<f64, String> + 'a {
    move |dir| Ok(run(dir))
}

/// Runs the systems `ctx.rounds` times, alternating (the order rotates every round), each run on
/// a fresh directory; returns the median of each.
pub fn alternate(ctx: &Ctx, name: &str, weir: Run<'_>, limit: Option<Run<'_>>, sqlite: Option<Run<'_>>) -> Measured {
    let (w, l, s) = (infallible(weir), limit.map(infallible), sqlite.map(infallible));
    let mut systems: Vec<(&str, TryRun<'_>)> = vec![(System::Weir.label(), &w)];
    if let Some(l) = &l {
        systems.push((System::Limit.label(), l));
    }
    if let Some(s) = &s {
        systems.push((System::Sqlite.label(), s));
    }
    let series = alternate_series(ctx, name, &systems);
    let get = |system: System| series.iter().find(|s| s.label == system.label());
    let spread_of = |system: System| get(system).map_or(1.0, Series::spread);
    Measured {
        weir: get(System::Weir).and_then(Series::median),
        limit: get(System::Limit).and_then(Series::median),
        sqlite: get(System::Sqlite).and_then(Series::median),
        limit_spread: spread_of(System::Limit),
        sqlite_spread: spread_of(System::Sqlite),
    }
}

// ----- weir encrypted at rest -----

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
    let m = Measured::weir_only(encrypted);
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

/// Opens a connection: WAL and the given `synchronous`. Writes go through one [`SqliteWriter`]
/// per database, so the busy timeout is only a safety net (checkpoints, the schema), never how
/// writers take turns.
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

/// Prepares a statement once (for loops that own their connection).
pub fn prep<'c>(conn: &'c Connection, sql: &str) -> Statement<'c> {
    conn.prepare(sql).unwrap_or_else(|e| panic!("sqlite: cannot prepare {sql:?}: {e}"))
}

/// `BEGIN IMMEDIATE` ... `COMMIT` around one unit of work, both prepared once (for a single
/// thread that owns its connection: loading data, the single-writer rows).
pub struct Txn<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
}

impl<'c> Txn<'c> {
    pub fn new(conn: &'c Connection) -> Txn<'c> {
        Txn { begin: prep(conn, "BEGIN IMMEDIATE"), commit: prep(conn, "COMMIT") }
    }

    pub fn run<T>(&mut self, work: impl FnOnce() -> T) -> T {
        self.begin.execute([]).expect("sqlite: BEGIN IMMEDIATE");
        let out = work();
        self.commit.execute([]).expect("sqlite: COMMIT");
        out
    }
}

/// A unit of write work handed to the writer; what it returns is run once its transaction
/// committed (it hands the caller its result).
type WriteJob = Box<dyn FnOnce(&Connection) -> Box<dyn FnOnce() + Send> + Send>;

/// Most jobs one transaction takes: enough to cover every waiting thread of a run.
const MAX_JOBS_PER_COMMIT: usize = 256;

/// SQLite set up the way a careful engineer would for many threads: every write goes through
/// one writer thread that owns the only writing connection, and each transaction takes every
/// job that is waiting (group commit), so no thread ever sleeps in SQLite's busy handler. Jobs
/// run their statements from the connection's cache. Readers open their own connections (WAL
/// readers do not block).
pub struct SqliteWriter {
    jobs: Option<std::sync::mpsc::Sender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Transactions committed and jobs they carried.
    stats: std::sync::Arc<(AtomicU64, AtomicU64)>,
}

impl SqliteWriter {
    pub fn new(path: &Path, sync: SqliteSync) -> SqliteWriter {
        let conn = sqlite_open(path, sync);
        conn.set_prepared_statement_cache_capacity(32);
        let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
        let stats = std::sync::Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let counts = std::sync::Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut replies = Vec::with_capacity(MAX_JOBS_PER_COMMIT);
                while let Ok(first) = rx.recv() {
                    conn.execute_batch("BEGIN IMMEDIATE").expect("sqlite: BEGIN IMMEDIATE");
                    replies.push(first(&conn));
                    while replies.len() < MAX_JOBS_PER_COMMIT {
                        match rx.try_recv() {
                            Ok(job) => replies.push(job(&conn)),
                            Err(_) => break,
                        }
                    }
                    conn.execute_batch("COMMIT").expect("sqlite: COMMIT");
                    counts.0.fetch_add(1, Ordering::Relaxed);
                    counts.1.fetch_add(replies.len() as u64, Ordering::Relaxed);
                    for reply in replies.drain(..) {
                        reply();
                    }
                }
            })
            .expect("cannot start the SQLite writer thread");
        SqliteWriter { jobs: Some(tx), thread: Some(thread), stats }
    }

    /// Prints commits per second and jobs per commit over `window` (group commit at work).
    pub fn report(&self, window: Duration) {
        let (commits, jobs) = (self.stats.0.load(Ordering::Relaxed), self.stats.1.load(Ordering::Relaxed));
        eprintln!(
            "    sqlite: {:.0} commits/s, {:.1} jobs per commit",
            commits as f64 / window.as_secs_f64(),
            jobs as f64 / commits.max(1) as f64
        );
    }

    /// Runs `work` on the writer's connection inside a group-committed transaction and returns
    /// its result once that transaction committed (durably under `synchronous=FULL`).
    pub fn write<R: Send + 'static>(&self, work: impl FnOnce(&Connection) -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: WriteJob = Box::new(move |conn| {
            let out = work(conn);
            Box::new(move || {
                let _ = tx.send(out);
            })
        });
        self.jobs.as_ref().expect("writer open").send(job).expect("sqlite: the writer thread died");
        rx.recv().expect("sqlite: the writer thread died")
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A counter that threads wait on for news (sends that committed): what a receiver of an empty
/// SQLite queue does instead of sleeping, as a long poll does in weir.
#[derive(Default)]
pub struct Signal {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Signal {
    pub fn get(&self) -> u64 {
        *self.count.lock().expect("signal lock")
    }

    pub fn bump(&self) {
        *self.count.lock().expect("signal lock") += 1;
        self.changed.notify_all();
    }

    /// Waits until the count moved past `seen`, or `timeout` passed.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.count.lock().expect("signal lock");
        let _ = self.changed.wait_timeout_while(guard, timeout, |n| *n <= seen).expect("signal lock");
    }
}

/// A statement from the connection's cache (the writer's jobs).
pub fn cached<'c>(conn: &'c Connection, sql: &str) -> rusqlite::CachedStatement<'c> {
    conn.prepare_cached(sql).unwrap_or_else(|e| panic!("sqlite: cannot prepare {sql:?}: {e}"))
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

    /// weir / limit; None when either is missing or the limit's rounds were unstable.
    pub fn ratio_limit(&self) -> Option<f64> {
        if self.m.limit_unstable() {
            return None;
        }
        Some(self.m.weir? / self.m.limit?)
    }

    /// weir / SQLite; None when either is missing or SQLite's rounds were unstable.
    pub fn ratio_sqlite(&self) -> Option<f64> {
        if self.m.sqlite_unstable() {
            return None;
        }
        Some(self.m.weir? / self.m.sqlite?)
    }

    /// Whether a baseline this row's target needs was unstable (no verdict drawn from it).
    pub fn unstable_baseline(&self) -> bool {
        match self.target {
            Target::Ratios { limit, sqlite } => {
                (limit.is_some() && self.m.limit_unstable()) || (sqlite.is_some() && self.m.sqlite_unstable())
            }
            _ => false,
        }
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
