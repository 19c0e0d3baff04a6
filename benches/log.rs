//! Benchmarks of the log's hot paths: frame encoding and decoding, appends under each
//! durability mode, stream batches and sequential reads.
//!
//! ```text
//! cargo bench --bench log                                     # full run
//! cargo bench --bench log -- --warm-up-time 1 --measurement-time 2   # quick look
//! cargo bench --bench log -- frame/                           # one group
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir::format::batch::{decode_frame, decode_records, EncodedBatch, FrameLayout, FrameStamp};
use weir::format::{Compression, RecordRef};
use weir::log::io::RealFs;
use weir::log::{Durability, Log, LogConfig};
use weir::stream::{PutRecord, StartingPosition};
use weir::{Engine, Options};

const RECORD_BYTES: usize = 1024;
const BATCH_RECORDS: usize = 100;
const READ_TOTAL_BYTES: usize = 16 << 20;
const STAMP: FrameStamp = FrameStamp { base_seq: 42, time_ms: 1_700_000_000_000, salt: 7, durable_seq: 40 };

/// Incompressible bytes, so `Compression::Auto` stores them plain and sizes stay honest.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn records(count: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..count).map(|i| (format!("key-{i}").into_bytes(), noise(RECORD_BYTES, i as u64 + 1))).collect()
}

fn refs(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<RecordRef<'_>> {
    records.iter().map(|(k, v)| RecordRef { key: k, value: v }).collect()
}

fn payload_bytes(records: &[(Vec<u8>, Vec<u8>)]) -> u64 {
    records.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

fn frames(c: &mut Criterion) {
    let records = records(BATCH_RECORDS);
    let refs = refs(&records);
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(payload_bytes(&records)));
    group.bench_function("encode_seal_100x1KiB", |b| {
        b.iter(|| {
            let mut batch = EncodedBatch::encode(&refs, Compression::None);
            batch.seal(&STAMP).len()
        })
    });
    group.bench_function("encode_seal_100x1KiB_auto_compression", |b| {
        b.iter(|| {
            let mut batch = EncodedBatch::encode(&refs, Compression::Auto);
            batch.seal(&STAMP).len()
        })
    });
    let frame = Bytes::copy_from_slice(EncodedBatch::encode(&refs, Compression::None).seal(&STAMP));
    group.bench_function("decode_frame_and_records_100x1KiB", |b| {
        b.iter(|| {
            let header = decode_frame(&frame, FrameLayout::V2 { salt: STAMP.salt }).expect("valid frame");
            decode_records(&header, &frame).expect("valid records").len()
        })
    });
    group.finish();
}

fn log_config(durability: Durability) -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        index_interval_bytes: 4096,
        durability,
        compression: Compression::Auto,
        preallocate: true,
        encryption: None,
    }
}

fn appends(c: &mut Criterion) {
    let value = noise(RECORD_BYTES, 7);
    let record = [RecordRef { key: b"key", value: &value }];
    let mut group = c.benchmark_group("log_append");
    group.throughput(Throughput::Bytes(RECORD_BYTES as u64));
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(Arc::new(RealFs), dir.path(), log_config(Durability::Never), 0).expect("open");
        group.bench_function("single_1KiB_durability_never", |b| b.iter(|| log.append(&record, 1).expect("append")));
    }
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(Arc::new(RealFs), dir.path(), log_config(Durability::Always), 0).expect("open");
        // Every iteration is an fsync: few samples, or the run takes minutes on a real disk.
        group.sample_size(10);
        group.bench_function("single_1KiB_durability_always", |b| b.iter(|| log.append(&record, 1).expect("append")));
    }
    group.finish();
}

fn engine_options(durability: Durability) -> Options {
    Options { durability, background: false, ..Options::default() }
}

fn streams(c: &mut Criterion) {
    let records = records(BATCH_RECORDS);
    let puts: Vec<PutRecord<'_>> =
        records.iter().map(|(k, v)| PutRecord { partition_key: k, data: v, explicit_hash_key: None }).collect();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(payload_bytes(&records)));
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path(), engine_options(Durability::Never)).expect("open");
        engine.create_stream("bench", 4, None).expect("create stream");
        let stream = engine.stream("bench").expect("stream");
        group.bench_function("put_batch_100x1KiB_4_shards_durability_never", |b| {
            b.iter(|| stream.put_batch(&puts).expect("put batch"))
        });
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), engine_options(Durability::Never)).expect("open");
    engine.create_stream("read", 1, None).expect("create stream");
    let stream = engine.stream("read").expect("stream");
    let total_records = READ_TOTAL_BYTES / RECORD_BYTES;
    for _ in 0..total_records / BATCH_RECORDS {
        stream.put_batch(&puts).expect("prefill");
    }
    engine.flush().expect("flush");
    group.throughput(Throughput::Bytes((total_records - total_records % BATCH_RECORDS) as u64 * RECORD_BYTES as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sequential_read_16MiB", |b| {
        b.iter_batched(
            || stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator"),
            |mut iterator| {
                let mut served = 0usize;
                loop {
                    let batch = iterator.next_batch(10_000).expect("read");
                    if batch.records.is_empty() {
                        break served;
                    }
                    served += batch.records.iter().map(|r| r.data.len()).sum::<usize>();
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, frames, appends, streams);
criterion_main!(benches);
