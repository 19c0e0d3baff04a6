//! What is acknowledged must be readable: one size limit (`MAX_PAYLOAD_LEN`, the payload
//! before compression) that the writer checks and the reader enforces, and the layers above
//! refusing with `Error::TooLarge` what would not fit one frame, before anything is stored.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use weir::format::batch::MAX_PAYLOAD_LEN;
use weir::format::{Compression, RecordRef};
use weir::log::io::RealFs;
use weir::log::{Durability, Log, LogConfig};
use weir::queue::{QueueConfig, ReceiveOptions};
use weir::topic::{Endpoint, PublishEntry, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

/// How the bytes of a batch compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// All zeros: zstd's best case (one 128 KiB block from 4 bytes).
    Zeros,
    /// Repetitive text: compresses several times over.
    Text,
    /// Random bytes: stored uncompressed.
    Noise,
}

/// A buffer of `fill` long enough for any batch a case makes; values are slices of it.
fn source(fill: Fill) -> &'static [u8] {
    static BUFFERS: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    const LEN: usize = MAX_PAYLOAD_LEN + (1 << 20);
    let (slot, make): (usize, fn() -> Vec<u8>) = match fill {
        Fill::Zeros => (0, || vec![0u8; LEN]),
        Fill::Text => (1, || {
            let line = b"the quick brown fox jumps over the lazy dog, record after record, ";
            line.iter().copied().cycle().enumerate().map(|(i, b)| b ^ ((i >> 16) as u8 & 1)).take(LEN).collect()
        }),
        Fill::Noise => (2, || {
            let mut x = 0x2545_F491_4F6C_DD1Du64;
            (0..LEN)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        }),
    };
    BUFFERS[slot].get_or_init(make)
}

/// `count` records whose payload (values plus 8 bytes of header each) totals `payload` bytes
/// (as close as the count allows), the first with a short key.
fn batch(count: usize, payload: usize, fill: Fill) -> Vec<RecordRef<'static>> {
    let count = count.clamp(1, (payload / 8).max(1));
    let key: &'static [u8] = b"key";
    let values = payload.saturating_sub(8 * count + key.len());
    let (each, extra) = (values / count, values % count);
    let src = source(fill);
    let mut at = 0;
    (0..count)
        .map(|i| {
            let len = each + usize::from(i < extra);
            let value = &src[at..at + len];
            at += len;
            RecordRef { key: if i == 0 { key } else { b"" }, value }
        })
        .collect()
}

/// The payload a frame of `records` takes: each record's key and value and 8 bytes of header
/// (format-spec.md, 6.2), counted here independently of the writer.
fn payload_len(records: &[RecordRef<'_>]) -> usize {
    records.iter().map(|r| 8 + r.key.len() + r.value.len()).sum()
}

fn log_config() -> LogConfig {
    LogConfig { durability: Durability::Never, compression: Compression::Auto, ..LogConfig::default() }
}

/// Writes `records` as one batch and checks the contract: accepted exactly when the payload
/// is within the limit; what was accepted reads back whole, before and after a reopen; what
/// was refused left nothing behind.
fn write_then_read(dir: &Path, records: &[RecordRef<'_>]) -> Result<(), TestCaseError> {
    let size = payload_len(records);
    let log = Log::open(Arc::new(RealFs), dir, log_config(), 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let before = log.written_next();
    match log.write(records, T0) {
        Ok(outcome) => {
            prop_assert!(size <= MAX_PAYLOAD_LEN, "a {size}-byte payload was accepted");
            prop_assert_eq!(outcome.next_seq - outcome.base_seq, records.len() as u64);
            check_read_back(&log, outcome.base_seq, records, "before reopen")?;
            drop(log);
            let log = Log::open(Arc::new(RealFs), dir, log_config(), 0)
                .map_err(|e| TestCaseError::fail(format!("reopen after an acknowledged {size}-byte batch: {e}")))?;
            prop_assert!(log.recovery_report().truncated.is_empty(), "recovery cut acknowledged bytes");
            check_read_back(&log, outcome.base_seq, records, "after reopen")?;
        }
        Err(Error::TooLarge { size: reported, limit, .. }) => {
            prop_assert!(size > MAX_PAYLOAD_LEN, "a {size}-byte payload was refused");
            prop_assert_eq!((reported, limit), (size, MAX_PAYLOAD_LEN));
            prop_assert_eq!(log.written_next(), before, "a refused batch wrote nothing");
        }
        Err(other) => return Err(TestCaseError::fail(format!("write failed: {other}"))),
    }
    Ok(())
}

fn check_read_back(log: &Log, base: u64, records: &[RecordRef<'_>], when: &str) -> Result<(), TestCaseError> {
    let read = log.read(base, records.len(), usize::MAX).map_err(|e| TestCaseError::fail(format!("{when}: {e}")))?;
    prop_assert_eq!(read.len(), records.len(), "{}: records read back", when);
    for (i, (got, want)) in read.iter().zip(records).enumerate() {
        prop_assert_eq!(got.seq, base + i as u64);
        prop_assert!(got.key[..] == *want.key && got.value[..] == *want.value, "{}: record {} differs", when, i);
    }
    Ok(())
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![Just(Fill::Zeros), Just(Fill::Text), Just(Fill::Noise)]
}

fn payload() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => (MAX_PAYLOAD_LEN - (256 << 10))..=(MAX_PAYLOAD_LEN + (256 << 10)),
        1 => (MAX_PAYLOAD_LEN - 16)..=(MAX_PAYLOAD_LEN + 16),
        1 => 8usize..(1 << 20),
    ]
}

fn count() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 2usize..64, 64usize..4096]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever `Log::write` accepts, `Log::read` returns, across record counts and
    /// compressibility, around the limit and well below it.
    #[test]
    fn whatever_the_log_accepts_it_reads_back(count in count(), payload in payload(), fill in fill()) {
        let dir = common::scratch_dir();
        write_then_read(dir.path(), &batch(count, payload, fill))?;
    }
}

#[test]
fn the_largest_payload_is_accepted_in_every_fill_and_one_byte_more_is_refused() {
    for fill in [Fill::Noise, Fill::Zeros] {
        for (count, payload) in [(1, MAX_PAYLOAD_LEN), (1, MAX_PAYLOAD_LEN + 1), (1000, MAX_PAYLOAD_LEN)] {
            let dir = common::scratch_dir();
            let records = batch(count, payload, fill);
            assert_eq!(payload_len(&records), payload, "the batch has the payload asked for");
            write_then_read(dir.path(), &records).unwrap_or_else(|e| panic!("{fill:?}, {payload}: {e}"));
        }
    }
}

/// The publish of the issue: a standard topic with a few dozen raw subscriptions and a batch of
/// large, compressible bodies. A publish and all its deliveries are one frame (atomic by
/// design): when that frame would pass the limit, the publish is refused and nothing is stored.
#[test]
fn a_publish_whose_deliveries_would_pass_the_frame_limit_is_refused_and_stores_nothing() {
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let options =
        || Options { clock: clock.clone(), background: false, durability: Durability::Never, ..Options::default() };
    const QUEUES: usize = 30;
    {
        let engine = Engine::open(dir.path(), options()).expect("open");
        engine.create_topic("news", TopicConfig::default()).expect("topic");
        for i in 0..QUEUES {
            let name = format!("q{i}");
            engine.create_queue(&name, QueueConfig::default()).expect("queue");
            let raw = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
            engine.subscribe("news", Endpoint::Queue(name), raw).expect("subscribe");
        }
        let topic = engine.topic("news").expect("topic");
        // 10 bodies of 250 KiB to 30 queues: over 75 MiB of records, a few MiB compressed.
        let body = bytes::Bytes::copy_from_slice(&source(Fill::Text)[..250 << 10]);
        let entries: Vec<PublishEntry> =
            (0..10).map(|_| PublishEntry { body: body.clone(), options: PublishOptions::default() }).collect();
        match topic.publish_batch(&entries) {
            Err(Error::TooLarge { size, limit, what }) => {
                assert_eq!(limit, MAX_PAYLOAD_LEN, "{what}");
                assert!(size > limit, "{what}: {size}");
            }
            other => panic!("a publish the log could not read back was not refused: {other:?}"),
        }
        for i in 0..QUEUES {
            let q = engine.queue(&format!("q{i}")).expect("queue");
            let got = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() });
            assert_eq!(got.expect("receive").len(), 0, "queue q{i} received part of a refused publish");
        }
        // The same publish in smaller batches fits and is delivered everywhere.
        for chunk in entries.chunks(2) {
            for r in topic.publish_batch(chunk).expect("a batch that fits") {
                assert_eq!(r.expect("publish").delivered, QUEUES);
            }
        }
    }
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    for i in 0..QUEUES {
        let q = engine.queue(&format!("q{i}")).expect("queue");
        let mut bodies = 0;
        loop {
            let got = q
                .receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() })
                .expect("every delivered message reads back after a reopen");
            if got.is_empty() {
                break;
            }
            bodies += got.len();
            assert!(got.iter().all(|m| m.body.len() == 250 << 10));
        }
        assert_eq!(bodies, 10, "queue q{i}");
    }
}

/// Compaction copies the live messages of the oldest segment forward in frames of a few MiB.
/// Messages with small bodies and large attributes once filled one frame past the limit (only
/// bodies were counted); zeros compressed it below the stored limit, so it was written and
/// every read of the moved messages then failed.
#[test]
fn compaction_keeps_its_frames_within_the_limit_when_attributes_outweigh_bodies() {
    use weir::queue::{AttributeValue, SendOptions};
    const BIG: usize = 64;
    let dir = common::scratch_dir();
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options {
        clock: clock.clone(),
        background: false,
        durability: Durability::Never,
        segment_bytes: 1 << 20,
        ..Options::default()
    };
    let blob = AttributeValue::Binary(bytes::Bytes::from(vec![0u8; 1_100_000]));
    {
        let engine = Engine::open(dir.path(), options.clone()).expect("open");
        let config = QueueConfig { max_message_bytes: 2 << 20, ..QueueConfig::default() };
        engine.create_queue("q", config).expect("queue");
        let q = engine.queue("q").expect("queue");
        for i in 0..BIG {
            let attributes = [("blob".to_string(), blob.clone())].into_iter().collect();
            q.send(format!("big {i}").as_bytes(), SendOptions { attributes, ..SendOptions::default() }).expect("send");
        }
        for i in 0..300 {
            q.send(format!("small {i}").as_bytes(), SendOptions::default()).expect("send");
        }
        // Newer segments, so the first one is the oldest of at least three.
        let noise = &source(Fill::Noise)[..1024];
        for _ in 0..3000 {
            q.send(noise, SendOptions::default()).expect("send");
        }
        // Everything else goes; the big ones stay (in flight), pinning the oldest segment.
        loop {
            let got = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() });
            let got = got.expect("receive");
            if got.is_empty() {
                break;
            }
            for m in got.iter().filter(|m| !m.body.starts_with(b"big")) {
                q.delete(&m.receipt_handle).expect("delete");
            }
        }
        clock.advance(Duration::from_secs(6 * 60));
        engine.run_maintenance().expect("maintenance compacts the oldest segment");
    }
    clock.advance(Duration::from_secs(60));
    let engine = Engine::open(dir.path(), options).expect("reopen");
    let q = engine.queue("q").expect("queue");
    let mut big = 0;
    loop {
        let got = q
            .receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() })
            .expect("every message compaction moved reads back");
        if got.is_empty() {
            break;
        }
        for m in got.iter().filter(|m| m.body.starts_with(b"big")) {
            assert_eq!(m.attributes.get("blob"), Some(&blob), "the attributes moved with the message");
            big += 1;
        }
        for m in &got {
            q.delete(&m.receipt_handle).expect("delete");
        }
    }
    assert_eq!(big, BIG, "every big message survived compaction");
}
