//! `kinesis_http_put`: PutRecords of 500 records over HTTP (AWS JSON 1.1, data in base64)
//! against the same batches through the library's `Stream::put_batch`. 4 writers, each over
//! its own kept-alive HTTP/1.1 connection to an in-process `weir::server::Server`, into a
//! stream of 4 shards; records of 100 B with random partition keys. One operation is one
//! record. Durability `Always` in both.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use weir::server::{LogLevel, Server, ServerConfig};
use weir::stream::PutRecord;
use weir::Durability;

use crate::common::*;
use crate::http_connection::Connection;

const WRITERS: usize = 4;
const SHARDS: u32 = 4;
const BATCH: usize = 500;
const DATA: usize = 100;
/// The target: puts over HTTP at least this fraction of the library's rate.
pub const TARGET_FRACTION: f64 = 0.5;

pub fn run(ctx: &Ctx) -> Row {
    let data = noise(DATA, 11);
    let keys: Vec<String> = (0..BATCH).map(|i| format!("user-{i:05}-{}", i * 7919 % 1000)).collect();
    let (http, library) = http_and_library(ctx, "kinesis_http_put", |over_http, dir| {
        if over_http {
            http_puts(ctx, dir, &keys, &data)
        } else {
            library_puts(ctx, dir, &keys, &data)
        }
    });
    let m = Measured::weir_only(http);
    let mut row = Row::new(
        "kinesis_http_put",
        "records/s through PutRecords (500 a call) over HTTP",
        m,
        Target::OfOther { label: "library", value: library, frac: TARGET_FRACTION },
    );
    row.note = format!(
        "{WRITERS} writers, PutRecords of {BATCH} x {DATA} B over kept-alive HTTP/1.1 (AWS JSON 1.1, base64) into {SHARDS} shards, Durability::Always; \
         the same batches through Stream::put_batch: {} records/s ({:.2} x)",
        fmt_rate(library),
        http / library,
    );
    row
}

fn library_puts(ctx: &Ctx, dir: &Path, keys: &[String], data: &[u8]) -> f64 {
    let engine = open_weir(dir, Durability::Always);
    engine.create_stream("bench", SHARDS, None).expect("weir: create stream");
    let stream = engine.stream("bench").expect("weir: stream");
    let records: Vec<PutRecord<'_>> =
        keys.iter().map(|k| PutRecord { partition_key: k.as_bytes(), data, explicit_hash_key: None }).collect();
    timed(WRITERS, ctx.window, |_| {
        let (stream, records) = (Arc::clone(&stream), &records);
        move |stop: &Stop| {
            count_until_stop(stop, || {
                stream.put_batch(records).expect("weir: put_batch");
                BATCH as u64
            })
        }
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsAnswer<'a> {
    failed_record_count: u64,
    #[serde(borrow)]
    records: Vec<PutRecordAnswer<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordAnswer<'a> {
    sequence_number: &'a str,
    shard_id: &'a str,
}

fn http_puts(ctx: &Ctx, dir: &Path, keys: &[String], data: &[u8]) -> f64 {
    let engine = Arc::new(open_weir(dir, Durability::Always));
    engine.create_stream("bench", SHARDS, None).expect("weir: create stream");
    let config = ServerConfig { log_level: LogLevel::Warn, ..ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = Server::bind(Arc::clone(&engine), config).expect("bind");
    let addr = server.local_addr();
    let stopper = server.stopper();
    let serving = std::thread::spawn(move || server.run());
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let body = json!({
        "StreamName": "bench",
        "Records": keys.iter().map(|k| json!({"PartitionKey": k, "Data": encoded})).collect::<Vec<_>>(),
    })
    .to_string();
    let rate = timed(WRITERS, ctx.window, |_| {
        let mut conn = Connection::open(addr);
        // Built once, as the sqs_http_cycle client does; the answer is read typed, as the
        // SDKs read it.
        let request = conn.target_request("application/x-amz-json-1.1", "Kinesis_20131202.PutRecords", &body);
        move |stop: &Stop| {
            count_until_stop(stop, || {
                let answer: PutRecordsAnswer<'_> = conn.call("PutRecords", &request);
                assert_eq!(answer.failed_record_count, 0);
                assert_eq!(answer.records.len(), BATCH);
                assert!(answer.records.iter().all(|r| !r.sequence_number.is_empty() && !r.shard_id.is_empty()));
                BATCH as u64
            })
        }
    });
    stopper.stop();
    serving.join().expect("server thread").expect("server");
    rate
}
