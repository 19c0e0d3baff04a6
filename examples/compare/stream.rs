//! Stream workloads: durable batches, durable concurrent single puts, buffered single puts, and
//! a sequential read.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use weir::format::RecordRef;
use weir::stream::{PutRecord, StartingPosition};
use weir::Durability;

use crate::common::*;
use crate::weir_side::{self, STREAM_WRITERS as WRITERS};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS stream (
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pkey BLOB NOT NULL,
    data BLOB NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (shard, seq)
)";

/// The next sequence number of shard 0 and one insert: what a stream put is in SQL.
const INSERT_NEXT: &str = "INSERT INTO stream (shard, seq, pkey, data, ts)
    SELECT 0, COALESCE(MAX(seq) + 1, 0), ?1, ?2, ?3 FROM stream WHERE shard = 0";
const NEXT_SEQ: &str = "SELECT COALESCE(MAX(seq) + 1, 0) FROM stream WHERE shard = 0";
const INSERT_AT: &str = "INSERT INTO stream (shard, seq, pkey, data, ts) VALUES (0, ?1, ?2, ?3, ?4)";

fn sqlite_stream(dir: &Path, sync: SqliteSync) -> Connection {
    let conn = sqlite_open(&dir.join("bench.db"), sync);
    conn.execute_batch(SCHEMA).expect("sqlite: create stream table");
    conn
}

/// `count` records of `len` bytes with short partition keys.
fn records(count: usize, len: usize, seed: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..count).map(|i| (format!("pk-{}", i % 16).into_bytes(), noise(len, seed + i as u64))).collect()
}

fn refs(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<RecordRef<'_>> {
    records.iter().map(|(k, v)| RecordRef { key: k, value: v }).collect()
}

fn puts(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<PutRecord<'_>> {
    records.iter().map(|(k, v)| PutRecord { partition_key: k, data: v, explicit_hash_key: None }).collect()
}

/// weir's side of `stream_put_batch` on `dir`, into a stream of `shards` shards (1 in the
/// comparison, more in `--scale`): records/s, and with `report` also the records per fsync
/// (printed with the fsyncs per second).
pub fn weir_put_batch(
    window: Duration,
    dir: &Path,
    shards: u32,
    batch: &[(Vec<u8>, Vec<u8>)],
    report: bool,
) -> (f64, Option<f64>) {
    let engine = open_weir(dir, Durability::Always);
    engine.create_stream("s", shards, None).expect("weir: create stream");
    let stream = engine.stream("s").expect("weir: stream");
    let puts = puts(batch);
    let rate = timed(1, window, |_| {
        |stop: &Stop| {
            count_until_stop(stop, || {
                stream.put_batch(&puts).expect("weir: put_batch");
                puts.len() as u64
            })
        }
    });
    (rate, report.then(|| weir_side::report_syncs(&stream, rate, window)))
}

/// `stream_put_batch_encrypted`: weir's `stream_put_batch`, encrypted against plain.
pub fn put_batch_encrypted(ctx: &Ctx) -> Row {
    let batch = records(100, 1024, 1);
    let run = |dir: &Path| weir_put_batch(ctx.window, dir, 1, &batch, false).0;
    let (plain, encrypted) = alternate_encryption(ctx, "stream_put_batch_encrypted", &run);
    encryption_row("stream_put_batch_encrypted", "records/s", plain, encrypted)
}

/// `stream_put_batch`: 1 KiB records, batches of 100, one writer, durable per batch.
pub fn put_batch(ctx: &Ctx) -> Row {
    let batch = records(100, 1024, 1);
    let frame = frame_of(&refs(&batch));
    let weir = |dir: &Path| weir_put_batch(ctx.window, dir, 1, &batch, false).0;
    let limit = |dir: &Path| {
        let file = limit_file(dir, "limit.log");
        timed(1, ctx.window, |_| {
            |stop: &Stop| {
                count_until_stop(stop, || {
                    write_sync(&file, &frame, true);
                    100
                })
            }
        })
    };
    let sqlite = |dir: &Path| {
        drop(sqlite_stream(dir, SqliteSync::Full));
        timed(1, ctx.window, |_| {
            let conn = sqlite_open(&dir.join("bench.db"), SqliteSync::Full);
            let batch = &batch;
            move |stop: &Stop| {
                let mut txn = Txn::new(&conn);
                let (mut next, mut insert) = (prep(&conn, NEXT_SEQ), prep(&conn, INSERT_AT));
                count_until_stop(stop, || {
                    txn.run(|| {
                        let first: i64 = next.query_row([], |r| r.get(0)).expect("sqlite: next seq");
                        let ts = now_ms();
                        for (i, (k, v)) in batch.iter().enumerate() {
                            insert.execute(params![first + i as i64, k, v, ts]).expect("sqlite: insert");
                        }
                        100
                    })
                })
            }
        })
    };
    let m = alternate(ctx, "stream_put_batch", &weir, Some(&limit), Some(&sqlite));
    let mut row =
        Row::new("stream_put_batch", "records/s", m, Target::Ratios { limit: Some(0.85), sqlite: Some(10.0) });
    row.note = format!(
        "limit: one write + fdatasync of the same {}-byte frame per batch; SQLite: one transaction of 100 inserts",
        frame.len()
    );
    row
}

/// `stream_put_concurrent`: 100 B records, single puts, 32 writer threads, durable per put.
pub fn put_concurrent(ctx: &Ctx) -> Row {
    let data = noise(100, 7);
    let keys: Vec<Vec<u8>> = (0..WRITERS).map(|i| format!("writer-{i:02}").into_bytes()).collect();
    let one = frame_of(&[RecordRef { key: &keys[0], value: &data }]);
    let weir = |dir: &Path| weir_side::put_concurrent(ctx.window, dir, Durability::Always, &keys, &data);
    // A perfect group commit: every round, each of the 32 threads adds its frame and one of
    // them writes all 32 with one write and one fdatasync.
    let limit = |dir: &Path| {
        let file = limit_file(dir, "limit.log");
        let pending = Mutex::new(Vec::with_capacity(WRITERS * one.len()));
        let round = Barrier::new(WRITERS);
        let done = AtomicBool::new(false);
        timed(WRITERS, ctx.window, |_| {
            let (file, pending, round, done, one) = (&file, &pending, &round, &done, &one);
            move |stop: &Stop| {
                let mut n = 0;
                loop {
                    pending.lock().expect("limit lock").extend_from_slice(one);
                    if round.wait().is_leader() {
                        let mut buf = pending.lock().expect("limit lock");
                        write_sync(file, &buf, true);
                        buf.clear();
                        if !stop.running() {
                            done.store(true, Ordering::SeqCst);
                        }
                    }
                    round.wait();
                    if done.load(Ordering::SeqCst) {
                        return n;
                    }
                    n += 1;
                }
            }
        })
    };
    let sqlite = |dir: &Path| {
        drop(sqlite_stream(dir, SqliteSync::Full));
        // The 32 threads hand their puts to one writer, which group-commits what waits.
        let writer = SqliteWriter::new(&dir.join("bench.db"), SqliteSync::Full);
        let data: std::sync::Arc<[u8]> = std::sync::Arc::from(&data[..]);
        timed(WRITERS, ctx.window, |i| {
            let (writer, key, data) = (&writer, std::sync::Arc::<[u8]>::from(&keys[i][..]), data.clone());
            move |stop: &Stop| {
                count_until_stop(stop, || {
                    let (key, data) = (key.clone(), data.clone());
                    writer.write(move |conn| {
                        cached(conn, INSERT_NEXT)
                            .execute(params![&key[..], &data[..], now_ms()])
                            .expect("sqlite: insert")
                    });
                    1
                })
            }
        })
    };
    let m = alternate(ctx, "stream_put_concurrent", &weir, Some(&limit), Some(&sqlite));
    let mut row =
        Row::new("stream_put_concurrent", "records/s", m, Target::Ratios { limit: Some(0.7), sqlite: Some(10.0) });
    row.note = format!(
        "limit: 32 threads, 32 one-record frames ({} bytes each) per write + fdatasync; SQLite: 32 threads hand their puts to one group-committing writer connection",
        one.len()
    );
    row
}

/// `stream_put_buffered`: 100 B records, single puts, one thread, weir `Never` against SQLite
/// `synchronous=OFF`.
pub fn put_buffered(ctx: &Ctx) -> Row {
    let data = noise(100, 11);
    let key = b"writer".to_vec();
    let one = frame_of(&[RecordRef { key: &key, value: &data }]);
    let weir = |dir: &Path| {
        let engine = open_weir(dir, Durability::Never);
        engine.create_stream("s", 1, None).expect("weir: create stream");
        let stream = engine.stream("s").expect("weir: stream");
        timed(1, ctx.window, |_| {
            |stop: &Stop| {
                count_until_stop(stop, || {
                    stream.put(&key, &data).expect("weir: put");
                    1
                })
            }
        })
    };
    let limit = |dir: &Path| {
        let file = limit_file(dir, "limit.log");
        timed(1, ctx.window, |_| {
            |stop: &Stop| {
                count_until_stop(stop, || {
                    write_sync(&file, &one, false);
                    1
                })
            }
        })
    };
    let sqlite = |dir: &Path| {
        drop(sqlite_stream(dir, SqliteSync::Off));
        timed(1, ctx.window, |_| {
            let conn = sqlite_open(&dir.join("bench.db"), SqliteSync::Off);
            let (key, data) = (&key, &data);
            move |stop: &Stop| {
                let mut txn = Txn::new(&conn);
                let mut insert = prep(&conn, INSERT_NEXT);
                count_until_stop(stop, || {
                    txn.run(|| insert.execute(params![key, data, now_ms()]).expect("sqlite: insert"));
                    1
                })
            }
        })
    };
    let m = alternate(ctx, "stream_put_buffered", &weir, Some(&limit), Some(&sqlite));
    let mut row = Row::new("stream_put_buffered", "records/s", m, Target::Ratios { limit: None, sqlite: Some(20.0) });
    row.note = "weir Durability::Never; limit: one plain write per put, no fsync; SQLite synchronous=OFF, one transaction per put".into();
    row
}

/// Writes `batches` batches of `batch` to a new one-shard stream `s` in `dir` (`Never`).
fn weir_write_stream(dir: &Path, batches: usize, batch: &[(Vec<u8>, Vec<u8>)]) {
    let engine = open_weir(dir, Durability::Never);
    engine.create_stream("s", 1, None).expect("weir: create stream");
    let stream = engine.stream("s").expect("weir: stream");
    let puts = puts(batch);
    for _ in 0..batches {
        stream.put_batch(&puts).expect("weir: put_batch");
    }
}

/// Reads shard 0 of `stream` through from the trim horizon; returns the records read.
fn weir_read_all(stream: &weir::stream::Stream, count: u64) -> u64 {
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("weir: iterator");
    let (mut n, mut sum) = (0u64, 0u64);
    loop {
        let b = it.next_batch(10_000).expect("weir: read");
        if b.records.is_empty() {
            break;
        }
        for r in &b.records {
            n += 1;
            sum += r.data.len() as u64 + u64::from(r.data[r.data.len() - 1]);
        }
    }
    assert_eq!(n, count, "weir returned a different number of records");
    std::hint::black_box(sum);
    n
}

/// `stream_read_encrypted`: weir's `stream_read` of an encrypted directory against a plain one
/// of the same records, alternating, page cache warm.
pub fn read_encrypted(ctx: &Ctx) -> Row {
    let total: usize = ctx.pick(1 << 30, 64 << 20);
    let per_batch = 500;
    let batch = records(per_batch, 1024, 101);
    let batches = total / (per_batch * 1024);
    let count = (batches * per_batch) as u64;
    let dirs = [ctx.tempdir("stream_read-plain"), ctx.tempdir("stream_read-encrypted")];
    let engines: Vec<weir::Engine> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            with_encryption(i == 1, || {
                weir_write_stream(dir.path(), batches, &batch);
                open_weir(dir.path(), Durability::Never)
            })
        })
        .collect();
    let streams: Vec<_> = engines.iter().map(|e| e.stream("s").expect("weir: stream")).collect();
    for stream in &streams {
        weir_read_all(stream, count);
    }
    let rate = |i: usize| {
        let t = Instant::now();
        let n = weir_read_all(&streams[i], count);
        n as f64 / t.elapsed().as_secs_f64()
    };
    // `alternate_encryption` hands each run the right mode; the data is already written.
    let run = |_: &Path| rate(usize::from(encryption_on()));
    let (plain, encrypted) = alternate_encryption(ctx, "stream_read_encrypted", &run);
    encryption_row("stream_read_encrypted", "records/s", plain, encrypted)
}

/// `stream_read`: sequential read of `ctx.pick(1 GiB, 64 MiB)` of 1 KiB records, page cache warm.
pub fn read(ctx: &Ctx) -> Row {
    let total: usize = ctx.pick(1 << 30, 64 << 20);
    let per_batch = 500;
    let batch = records(per_batch, 1024, 101);
    let batches = total / (per_batch * 1024);
    let count = (batches * per_batch) as u64;

    // Each system's data is written once, on its own fresh directory; the reads then alternate.
    let weir_dir = ctx.tempdir("stream_read-weir");
    let sqlite_dir = ctx.tempdir("stream_read-sqlite");
    let started = Instant::now();
    weir_write_stream(weir_dir.path(), batches, &batch);
    eprintln!("  stream_read: weir wrote {count} records in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    {
        let conn = sqlite_stream(sqlite_dir.path(), SqliteSync::Off);
        let (mut txn, mut insert) = (Txn::new(&conn), prep(&conn, INSERT_AT));
        let mut seq = 0i64;
        for chunk in 0..batches.div_ceil(20) {
            txn.run(|| {
                for _ in (chunk * 20)..((chunk + 1) * 20).min(batches) {
                    for (k, v) in &batch {
                        insert.execute(params![seq, k, v, 0i64]).expect("sqlite: insert");
                        seq += 1;
                    }
                }
            });
        }
        drop((txn, insert));
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("sqlite: checkpoint");
    }
    eprintln!("  stream_read: SQLite wrote {count} records in {:.1} s", started.elapsed().as_secs_f64());
    let segments: Vec<std::path::PathBuf> = {
        let shard = weir_dir.path().join("streams/s/shard-000000");
        let mut v: Vec<_> = std::fs::read_dir(&shard)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", shard.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        v.sort();
        v
    };
    let seg_bytes: u64 = segments.iter().filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum();

    let weir_engine = open_weir(weir_dir.path(), Durability::Never);
    let stream = weir_engine.stream("s").expect("weir: stream");
    let weir_read = || weir_read_all(&stream, count);
    let limit_read = || {
        let mut buf = vec![0u8; 1 << 20];
        let mut sum = 0u64;
        for p in &segments {
            let mut f = File::open(p).unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()));
            loop {
                let got = f.read(&mut buf).expect("limit: read");
                if got == 0 {
                    break;
                }
                sum += got as u64 + u64::from(buf[got - 1]);
            }
        }
        std::hint::black_box(sum);
        count
    };
    let sqlite_conn = sqlite_open(&sqlite_dir.path().join("bench.db"), SqliteSync::Off);
    let sqlite_read = || {
        let mut stmt = prep(&sqlite_conn, "SELECT seq, pkey, data FROM stream WHERE shard = 0 ORDER BY seq");
        let mut rows = stmt.query([]).expect("sqlite: query");
        let (mut n, mut sum) = (0u64, 0u64);
        while let Some(row) = rows.next().expect("sqlite: step") {
            let data = row.get_ref(2).and_then(|v| Ok(v.as_blob()?)).expect("sqlite: data");
            n += 1;
            sum += data.len() as u64 + u64::from(data[data.len() - 1]);
        }
        assert_eq!(n, count, "SQLite returned a different number of records");
        std::hint::black_box(sum);
        n
    };
    // Warm the page cache (and weir's maps) once, untimed.
    weir_read();
    limit_read();
    sqlite_read();
    let rate = |f: &dyn Fn() -> u64| {
        let t = Instant::now();
        let n = f();
        n as f64 / t.elapsed().as_secs_f64()
    };
    let w = |_: &Path| rate(&weir_read);
    let l = |_: &Path| rate(&limit_read);
    let s = |_: &Path| rate(&sqlite_read);
    let m = alternate(ctx, "stream_read", &w, Some(&l), Some(&s));
    let mut row = Row::new("stream_read", "records/s", m, Target::Ratios { limit: Some(0.5), sqlite: None });
    row.note = format!(
        "{} MiB of data ({count} records), page cache warm; limit: read() of weir's {} segment files ({} MiB) with a 1 MiB buffer; SQLite: one SELECT ... ORDER BY seq",
        (count * 1024) >> 20,
        segments.len(),
        seg_bytes >> 20
    );
    row
}
