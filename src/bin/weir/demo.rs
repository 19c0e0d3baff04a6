//! `weir demo`: a tour of the engine on the data directory, in plain text. Safe to run again:
//! it reuses what an earlier run created and only adds records.

use std::path::Path;

use weir::stream::{PutRecord, StartingPosition, Stream, StreamRecord};
use weir::Engine;

use crate::out::{show_bytes, utc, CliResult, Out};

/// The demo stream.
const STREAM: &str = "demo-clicks";
/// Most records listed per shard when reading from the trim horizon.
const SHOW_PER_SHARD: usize = 8;

/// Runs every section of the tour.
pub fn run(data: &Path) -> CliResult<()> {
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    out.line(format!("weir demo in {}", engine.dir().display()))?;
    demo_streams(&engine, &mut out)?;
    // Queue and topic sections (demo_queues, demo_topics) join here as those models land.
    out.line("")?;
    out.line(format!("Done. Run it again to add more, or look at the files: weir inspect {}", engine.dir().display()))
}

/// Streams: create, put (single and batch), read from the trim horizon, read from a time,
/// describe.
fn demo_streams(engine: &Engine, out: &mut Out) -> CliResult<()> {
    out.line("")?;
    out.line("== Streams (Kinesis-style: shards chosen by partition key, records kept by age) ==")?;
    if engine.list_streams().iter().any(|n| n == STREAM) {
        out.line(format!("stream {STREAM:?} exists from an earlier run; adding to it"))?;
    } else {
        match engine.create_stream(STREAM, 2, None) {
            Ok(()) => out.line(format!("created stream {STREAM:?} with 2 shards and 24 hours of retention"))?,
            Err(weir::Error::AlreadyExists { .. }) => out.line(format!("stream {STREAM:?} exists already"))?,
            Err(e) => return Err(e.into()),
        }
    }
    let stream = engine.stream(STREAM)?;
    let started_ms = engine.clock().now_ms();

    out.line("")?;
    out.line("put, one record at a time (each call returns once the record is on disk):")?;
    for (key, data) in [("alice", "click /home"), ("bob", "click /pricing"), ("carol", "click /docs")] {
        let put = stream.put(key.as_bytes(), data.as_bytes())?;
        out.line(format!("  key {key:<6} data {data:<18} -> shard {} seq {}", put.shard, put.seq))?;
    }
    out.line("put_batch, several records in one call (one write and one fsync per shard):")?;
    let batch = [("alice", "click /signup"), ("bob", "click /checkout"), ("dave", "click /home")];
    let records: Vec<PutRecord<'_>> = batch
        .iter()
        .map(|(k, d)| PutRecord { partition_key: k.as_bytes(), data: d.as_bytes(), explicit_hash_key: None })
        .collect();
    for ((key, data), put) in batch.iter().zip(stream.put_batch(&records)?) {
        out.line(format!("  key {key:<6} data {data:<18} -> shard {} seq {}", put.shard, put.seq))?;
    }
    out.line("  (the same key always lands on the same shard, in order)")?;

    out.line("")?;
    out.line("read each shard from TRIM_HORIZON (the oldest record kept):")?;
    for shard in stream.shards() {
        let records = read_all(&stream, shard.meta.id, StartingPosition::TrimHorizon)?;
        out.line(format!("  shard {}: {} records", shard.meta.id, records.len()))?;
        let skipped = records.len().saturating_sub(SHOW_PER_SHARD);
        if skipped > 0 {
            out.line(format!("    ... {skipped} older records from earlier runs not shown"))?;
        }
        for record in &records[skipped..] {
            out.line(record_line(record))?;
        }
    }

    out.line("")?;
    out.line(format!("read each shard AT_TIMESTAMP {} (when this run began): only this run's records", started_ms))?;
    for shard in stream.shards() {
        let records = read_all(&stream, shard.meta.id, StartingPosition::AtTimestamp(started_ms))?;
        out.line(format!("  shard {}: {} records", shard.meta.id, records.len()))?;
        for record in &records {
            out.line(record_line(record))?;
        }
    }

    out.line("")?;
    out.line("describe:")?;
    let description = stream.describe();
    out.line(format!("  stream {:?}, retention {} hours", description.name, description.retention_hours))?;
    for s in &description.shards {
        let stored = match (s.first_seq, s.last_seq) {
            (Some(first), Some(last)) => format!("seq {first}..={last}"),
            _ => "empty".to_string(),
        };
        out.line(format!(
            "  shard {}: hash keys {}..={}, {stored}, {}",
            s.id,
            s.hash_start,
            s.hash_end,
            if s.open { "open" } else { "closed" }
        ))?;
    }
    out.line(format!("  (the same from a script: weir --data {} stream describe {STREAM})", engine.dir().display()))
}

fn read_all(stream: &Stream, shard: u32, from: StartingPosition) -> CliResult<Vec<StreamRecord>> {
    let mut iterator = stream.iterator(shard, from)?;
    let mut records = Vec::new();
    loop {
        let batch = iterator.next_batch(1000)?;
        let done = batch.records.is_empty() || batch.behind_records == 0;
        records.extend(batch.records);
        if done {
            return Ok(records);
        }
    }
}

fn record_line(r: &StreamRecord) -> String {
    format!(
        "    seq {:<4} {}  key {:<8} data {}",
        r.seq,
        utc(r.time_ms),
        show_bytes(&r.partition_key, 40),
        show_bytes(&r.data, 60)
    )
}
