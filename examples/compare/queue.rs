//! Queue workloads: 8 threads send one message at a time while 8 threads receive up to 10 and
//! delete them with one batch call. One operation is one message through the whole cycle
//! (sent, received, deleted): every column counts messages whose delete batch completed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use weir::format::queue_record::{MessageRecord, QueueRecord, OWN_SEQ};

use crate::common::*;
use crate::weir_side::{self, Cycle, BODY, GROUPS, LONG_POLL, RECEIVERS, SENDERS};

/// Visibility timeout of every receive, all three columns.
const VISIBILITY_MS: i64 = 30_000;

pub fn run(ctx: &Ctx, cycle: Cycle, target: Target) -> Row {
    let body = text_noise(BODY, 3);
    let frames = LimitFrames::new(&body, cycle.fifo);
    let weir = |dir: &Path| weir_side::queue_cycle(ctx.window, dir, cycle, &body);
    let limit = |dir: &Path| limit_cycle(ctx, dir, cycle, &frames);
    let sqlite = |dir: &Path| sqlite_cycle(ctx, dir, cycle, &body);
    let m = alternate(ctx, cycle.name, &weir, Some(&limit), Some(&sqlite));
    let mut row = Row::new(cycle.name, "messages/s through send+receive+delete", m, target);
    row.note = format!(
        "{} {} B messages; weir {:?} vs SQLite synchronous={}; limit: {}{} bytes per send, {}+{} bytes per receive+delete batch of 10",
        if cycle.fifo { "FIFO (100 groups, dedup ids)," } else { "standard" },
        BODY,
        cycle.durability(),
        if cycle.durable { "FULL" } else { "OFF" },
        if cycle.durable { "group-committed write + fdatasync, " } else { "plain writes, " },
        frames.send.len(),
        frames.receive[9].len(),
        frames.delete[9].len(),
    );
    if cycle.prefill > 0 {
        // With a backlog every receive returns a full batch of 10, which an empty queue's
        // receives rarely do; a smaller backlog (still one the window does not drain) isolates
        // the cost of depth from that effect.
        let backlog = ctx.pick(100_000, 20_000);
        let small = Cycle { prefill: backlog, ..cycle };
        let control: Vec<f64> = (0..ctx.rounds)
            .map(|_| {
                let dir = ctx.tempdir("queue_cycle_backlog");
                let v = weir_side::queue_cycle(ctx.window, dir.path(), small, &body);
                eprintln!("  {:<24} weir with {backlog} waiting: {}", cycle.name, fmt_rate(v));
                v
            })
            .collect();
        let control = median(&control);
        row.note.push_str(&format!(
            "; {} messages waiting at the start. Control: weir with only {backlog} waiting (a backlog that outlasts the window, so receives return full batches too) does {} messages/s; the deep run does {:.2} x that",
            cycle.prefill,
            fmt_rate(control),
            m.weir.unwrap_or(f64::NAN) / control
        ));
    }
    row
}

/// `queue_cycle_encrypted`: weir's `queue_cycle`, encrypted against plain.
pub fn run_encrypted(ctx: &Ctx, cycle: Cycle, name: &'static str) -> Row {
    let body = text_noise(BODY, 3);
    let run = |dir: &Path| weir_side::queue_cycle(ctx.window, dir, cycle, &body);
    let (plain, encrypted) = alternate_encryption(ctx, name, &run);
    encryption_row(name, "messages/s through send+receive+delete", plain, encrypted)
}

// ----- the physical limit -----

/// The bytes a perfect engine makes durable: weir's own Message record (and frame) per send;
/// one compact record per receive batch (queue, visibility, time, then key and receive count of
/// each message) and one per delete batch (queue, then the keys).
struct LimitFrames {
    send: Vec<u8>,
    receive: Vec<Vec<u8>>,
    delete: Vec<Vec<u8>>,
}

impl LimitFrames {
    fn new(body: &[u8], fifo: bool) -> LimitFrames {
        let message = QueueRecord::Message(MessageRecord {
            queue: 1,
            key: OWN_SEQ,
            message_id: [7; 16],
            sent_ms: 1_700_000_000_000,
            visible_at_ms: 1_700_000_000_000,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: if fifo { Bytes::from_static(b"group-42") } else { Bytes::new() },
            dedup: if fifo { Bytes::from_static(b"dedup-123456") } else { Bytes::new() },
            trace_header: Bytes::new(),
            sender_id: Bytes::new(),
            attributes: Vec::new(),
            body: Bytes::copy_from_slice(body),
        });
        let send = message_log_frame(&[message.encode()]);
        let receive = (1..=10u64)
            .map(|k| {
                let mut v = vec![2u8];
                v.extend_from_slice(&1u32.to_le_bytes());
                v.extend_from_slice(&1_700_000_030_000u64.to_le_bytes());
                v.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
                for key in 0..k {
                    v.extend_from_slice(&(1_000_000 + key).to_le_bytes());
                    v.extend_from_slice(&1u32.to_le_bytes());
                }
                message_log_frame(&[v])
            })
            .collect();
        let delete = (1..=10u64)
            .map(|k| {
                let mut v = vec![3u8];
                v.extend_from_slice(&1u32.to_le_bytes());
                for key in 0..k {
                    v.extend_from_slice(&(1_000_000 + key).to_le_bytes());
                }
                message_log_frame(&[v])
            })
            .collect();
        LimitFrames { send, receive, delete }
    }
}

fn limit_cycle(ctx: &Ctx, dir: &Path, cycle: Cycle, frames: &LimitFrames) -> f64 {
    let log = LimitLog::new(dir, cycle.durable);
    // Messages sent and not yet taken: receivers take up to 10 at a time, as a queue would.
    let waiting = Mutex::new(cycle.prefill as u64);
    let arrived = Condvar::new();
    let rate = timed(SENDERS + RECEIVERS, ctx.window, |i| {
        let (log, waiting, arrived) = (&log, &waiting, &arrived);
        move |stop: &Stop| {
            if i < SENDERS {
                return count_until_stop(stop, || {
                    log.append(&frames.send);
                    *waiting.lock().expect("limit lock") += 1;
                    arrived.notify_one();
                    0
                });
            }
            count_until_stop(stop, || {
                let k = {
                    let mut w = waiting.lock().expect("limit lock");
                    if *w == 0 {
                        w = arrived.wait_timeout(w, LONG_POLL).expect("limit lock").0;
                    }
                    let k = (*w).min(10);
                    *w -= k;
                    k as usize
                };
                if k == 0 {
                    return 0;
                }
                log.append(&frames.receive[k - 1]);
                log.append(&frames.delete[k - 1]);
                k as u64
            })
        }
    });
    if cycle.durable {
        let (syncs, bytes, time) = log.stats();
        eprintln!(
            "    limit: {:.0} fsyncs/s, {:.0} bytes and {:.1} messages per fsync, {:.2} ms per write + fdatasync",
            syncs as f64 / ctx.window.as_secs_f64(),
            bytes as f64 / syncs.max(1) as f64,
            rate * ctx.window.as_secs_f64() / syncs.max(1) as f64,
            time.as_secs_f64() * 1e3 / syncs.max(1) as f64
        );
    }
    rate
}

// ----- SQLite -----

fn sqlite_sync(cycle: Cycle) -> SqliteSync {
    if cycle.durable {
        SqliteSync::Full
    } else {
        SqliteSync::Off
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS q (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS q_visible ON q (visible_at, id);
CREATE TABLE IF NOT EXISTS fq (
    id INTEGER PRIMARY KEY,
    grp TEXT NOT NULL,
    dedup TEXT NOT NULL,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS fq_group ON fq (grp, id);
CREATE INDEX IF NOT EXISTS fq_visible ON fq (visible_at, id);
CREATE TABLE IF NOT EXISTS fq_dedup (
    dedup TEXT PRIMARY KEY,
    msg_id INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

const SEND: &str = "INSERT INTO q (body, sent_at, visible_at, receive_count) VALUES (?1, ?2, ?2, 0)";
/// pgmq's read: take the oldest visible messages and hide them, in one statement.
const RECEIVE: &str = "UPDATE q SET visible_at = ?1, receive_count = receive_count + 1
    WHERE id IN (SELECT id FROM q WHERE visible_at <= ?2 ORDER BY id LIMIT ?3)
    RETURNING id, body, receive_count";
const DELETE: &str = "DELETE FROM q WHERE id = ?1 AND receive_count = ?2";

const FIFO_DEDUP_LOOKUP: &str = "SELECT msg_id FROM fq_dedup WHERE dedup = ?1 AND expires_at > ?2";
const FIFO_SEND: &str =
    "INSERT INTO fq (grp, dedup, body, sent_at, visible_at, receive_count) VALUES (?1, ?2, ?3, ?4, ?4, 0)";
const FIFO_DEDUP_REMEMBER: &str = "INSERT OR REPLACE INTO fq_dedup (dedup, msg_id, expires_at) VALUES (?1, ?2, ?3)";
/// Only the oldest live message of a group can be delivered: nothing is delivered while an
/// earlier message of its group is in flight (or still waiting).
const FIFO_RECEIVE: &str = "UPDATE fq SET visible_at = ?1, receive_count = receive_count + 1
    WHERE id IN (
        SELECT m.id FROM fq AS m
        WHERE m.visible_at <= ?2
          AND NOT EXISTS (SELECT 1 FROM fq AS e WHERE e.grp = m.grp AND e.id < m.id)
        ORDER BY m.id LIMIT ?3)
    RETURNING id, body, receive_count";
const FIFO_DELETE: &str = "DELETE FROM fq WHERE id = ?1 AND receive_count = ?2";

/// Prints SQLite's plan for the receive statements (once per process), for the record.
fn explain_once(conn: &Connection) {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        for (what, sql) in [("receive", RECEIVE), ("FIFO receive", FIFO_RECEIVE)] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .and_then(|mut s| s.query_map(params![1, 1, 10], |r| r.get::<_, String>(3))?.collect())
                .unwrap_or_else(|e| vec![format!("(no plan: {e})")]);
            eprintln!("  SQLite plan of the {what}: {}", plan.join("; "));
        }
    });
}

fn sqlite_cycle(ctx: &Ctx, dir: &Path, cycle: Cycle, body: &[u8]) -> f64 {
    let path = dir.join("bench.db");
    {
        let conn = sqlite_open(&path, SqliteSync::Off);
        conn.execute_batch(SCHEMA).expect("sqlite: schema");
        explain_once(&conn);
        if cycle.prefill > 0 {
            let started = Instant::now();
            let now = now_ms();
            let (mut txn, mut insert) = (Txn::new(&conn), prep(&conn, SEND));
            let mut left = cycle.prefill;
            while left > 0 {
                let n = left.min(10_000);
                txn.run(|| {
                    for _ in 0..n {
                        insert.execute(params![body, now]).expect("sqlite: prefill");
                    }
                });
                left -= n;
            }
            drop((txn, insert));
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("sqlite: checkpoint");
            eprintln!(
                "  {}: SQLite prefill of {} messages {:.1} s",
                cycle.name,
                cycle.prefill,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // One writer connection takes every write (sends, receives and deletes are all writes in
    // SQL) and group-commits what waits; a receiver that finds nothing waits for the next send
    // to commit, as weir's long poll does, instead of sleeping.
    let writer = SqliteWriter::new(&path, sqlite_sync(cycle));
    let news = Signal::default();
    let body: Arc<[u8]> = Arc::from(body);
    let sent = AtomicU64::new(0);
    let rate = timed(SENDERS + RECEIVERS, ctx.window, |i| {
        let (writer, news, sent, body) = (&writer, &news, &sent, body.clone());
        move |stop: &Stop| {
            if i < SENDERS {
                return count_until_stop(stop, || {
                    let body = body.clone();
                    if cycle.fifo {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        let (group, dedup) = (format!("group-{}", n % GROUPS), format!("dedup-{n}"));
                        writer.write(move |conn| {
                            let now = now_ms();
                            let seen: Option<i64> = cached(conn, FIFO_DEDUP_LOOKUP)
                                .query_row(params![dedup, now], |r| r.get(0))
                                .optional()
                                .expect("sqlite: dedup lookup");
                            if seen.is_none() {
                                cached(conn, FIFO_SEND)
                                    .execute(params![group, dedup, &body[..], now])
                                    .expect("sqlite: send");
                                let id = conn.last_insert_rowid();
                                cached(conn, FIFO_DEDUP_REMEMBER)
                                    .execute(params![dedup, id, now + 300_000])
                                    .expect("sqlite: dedup remember");
                            }
                        });
                    } else {
                        writer.write(move |conn| {
                            cached(conn, SEND).execute(params![&body[..], now_ms()]).expect("sqlite: send")
                        });
                    }
                    news.bump();
                    0
                });
            }
            let (receive, delete) = if cycle.fifo { (FIFO_RECEIVE, FIFO_DELETE) } else { (RECEIVE, DELETE) };
            count_until_stop(stop, || {
                let seen = news.get();
                let now = now_ms();
                let got: Vec<(i64, i64)> = writer.write(move |conn| {
                    cached(conn, receive)
                        .query_map(params![now + VISIBILITY_MS, now, 10], |r| {
                            let body = r.get_ref(1)?.as_blob()?;
                            std::hint::black_box(body.len());
                            Ok((r.get(0)?, r.get(2)?))
                        })
                        .and_then(|rows| rows.collect())
                        .expect("sqlite: receive")
                });
                if got.is_empty() {
                    news.wait_past(seen, LONG_POLL);
                    return 0;
                }
                writer.write(move |conn| {
                    let mut delete = cached(conn, delete);
                    got.iter()
                        .map(|(id, count)| delete.execute(params![id, count]).expect("sqlite: delete") as u64)
                        .sum()
                })
            })
        }
    });
    writer.report(ctx.window);
    rate
}
