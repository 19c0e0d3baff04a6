//! Benchmarks of the queue and topic hot paths (frame encoding and decoding are in
//! `benches/log.rs`): a queue's send + receive + delete cycle with `Durability::Never` (no fsync,
//! so the engine's own CPU cost shows), the FIFO deduplication window, and filter-policy
//! matching.
//!
//! ```text
//! cargo bench --bench hot_paths                                       # full run
//! cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 2   # quick look
//! cargo bench --bench hot_paths -- dedup/                             # one group
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weir::queue::dedup::{digest, DedupDigest, DedupWindow, FirstSend};
use weir::queue::{QueueConfig, ReceiveOptions, SendEntry, SendOptions};
use weir::topic::filter::{AttrValue, FilterPolicy, FilterScope};
use weir::{Durability, Engine, Options};

const BODY: usize = 256;

fn queue_cycle(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let options = Options { durability: Durability::Never, background: false, ..Options::default() };
    let engine = Engine::open(dir.path(), options).expect("open the engine");
    engine.create_queue("bench", QueueConfig::default()).expect("create the queue");
    let queue = engine.queue("bench").expect("the queue");
    let body = vec![b'q'; BODY];
    let no_wait = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };

    let mut group = c.benchmark_group("queue_cycle_never");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_receive_delete_1x256B", |b| {
        b.iter(|| {
            queue.send(&body, SendOptions::default()).expect("send");
            let got = queue.receive(ReceiveOptions { max: 1, ..no_wait.clone() }).expect("receive");
            let message = got.first().expect("the message just sent");
            queue.delete(&message.receipt_handle).expect("delete");
        })
    });
    let entries: Vec<SendEntry> =
        (0..10).map(|_| SendEntry { body: Bytes::copy_from_slice(&body), options: SendOptions::default() }).collect();
    group.throughput(Throughput::Elements(10));
    group.bench_function("send_receive_delete_batch_10x256B", |b| {
        b.iter(|| {
            queue.send_batch(&entries).expect("send_batch");
            let got = queue.receive(no_wait.clone()).expect("receive");
            let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
            queue.delete_batch(&handles).expect("delete_batch");
        })
    });
    group.finish();
}

fn dedup(c: &mut Criterion) {
    const WINDOW: u64 = 100_000;
    let mut group = c.benchmark_group("dedup");
    group.throughput(Throughput::Elements(1));

    // A window holding 100,000 ids that never expire: pure lookups.
    let mut full = DedupWindow::default();
    for i in 0..WINDOW {
        let first = FirstSend { message_id: [0; 16], key: i, expires_ms: u64::MAX };
        full.remember(digest(format!("order-{i}").as_bytes()), first);
    }
    let hit = digest(b"order-4242");
    let miss = digest(b"order-not-seen");
    group.bench_function("lookup_hit_100k", |b| b.iter(|| black_box(full.lookup(black_box(&hit), 1_000))));
    group.bench_function("lookup_miss_100k", |b| b.iter(|| black_box(full.lookup(black_box(&miss), 1_000))));
    group.bench_function("digest_and_lookup_100k", |b| {
        b.iter(|| black_box(full.lookup(&digest(black_box(b"order-4242")), 1_000)))
    });

    // Steady state of a FIFO send: look the id up (pruning what expired), then remember it,
    // with 100,000 ids alive at any time.
    let pool: Vec<DedupDigest> = (0..(1u64 << 20)).map(|i| digest(&i.to_le_bytes())).collect();
    let mut rolling = DedupWindow::default();
    let mut now = 0u64;
    group.bench_function("lookup_remember_prune_100k", |b| {
        b.iter(|| {
            let id = &pool[(now as usize) & (pool.len() - 1)];
            if rolling.lookup(id, now).is_none() {
                rolling.remember(*id, FirstSend { message_id: [0; 16], key: now, expires_ms: now + WINDOW });
            }
            now += 1;
        })
    });
    group.finish();
}

fn filter(c: &mut Criterion) {
    let attributes_policy = FilterPolicy::parse(
        r#"{
            "store": ["example_corp"],
            "event": [{"anything-but": ["order_cancelled"]}],
            "customer_interests": ["rugby", "football", "baseball"],
            "price_usd": [{"numeric": [">=", 100, "<", 5000]}],
            "region": [{"prefix": "eu-"}]
        }"#,
        FilterScope::MessageAttributes,
    )
    .expect("a valid attribute policy");
    let attrs = |interest: &str| -> BTreeMap<String, AttrValue> {
        [
            ("store", AttrValue::String("example_corp".into())),
            ("event", AttrValue::String("order_placed".into())),
            ("customer_interests", AttrValue::String(interest.into())),
            ("price_usd", AttrValue::Number("420.5".into())),
            ("region", AttrValue::String("eu-west-1".into())),
            ("trace", AttrValue::String("4f1c2a".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let matching = attrs("football");
    let failing = attrs("cricket");
    let body_policy = FilterPolicy::parse(
        r#"{"order": {"status": ["paid"], "total": [{"numeric": [">", 10]}], "items": {"sku": [{"prefix": "BK-"}]}}}"#,
        FilterScope::MessageBody,
    )
    .expect("a valid body policy");
    let body = br#"{"order": {"id": "o-1", "status": "paid", "total": 42.5, "items": [{"sku": "PN-1"}, {"sku": "BK-77"}]}, "customer": {"id": "c-9", "tier": "gold"}}"#;

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    group.bench_function("attributes_match", |b| {
        b.iter(|| assert!(attributes_policy.matches_attributes(black_box(&matching))))
    });
    group.bench_function("attributes_no_match", |b| {
        b.iter(|| assert!(!attributes_policy.matches_attributes(black_box(&failing))))
    });
    group.bench_function("body_match", |b| b.iter(|| assert!(body_policy.matches_body(black_box(body)))));
    group.finish();
}

criterion_group!(benches, queue_cycle, dedup, filter);
criterion_main!(benches);
