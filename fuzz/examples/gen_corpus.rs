//! Writes the seed corpus: small valid inputs for each fuzz target, made by weir itself.
//!
//! ```text
//! cd fuzz && cargo run --example gen_corpus
//! ```
//!
//! Every seed is checked to run through its target's code without a panic, and the `open_dir`
//! seeds to open and serve records, before it is written.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir::format::batch::{decode_frame, decode_records, EncodedBatch, FrameStamp};
use weir::format::lost::LostRanges;
use weir::format::queue_record::{MessageRecord, QueueRecord, StoredAttribute};
use weir::format::segment_header::SEGMENT_HEADER_LEN;
use weir::format::{Compression, IndexEntry, IndexFile, RecordRef, SegmentHeader};
use weir::log::recovery::scan_segment;
use weir::queue::{AttributeValue, ReceiveOptions, SendOptions};
use weir::stream::PutRecord;
use weir::topic::PublishOptions;
use weir::{Durability, Engine, ManualClock, Options};
use weir_fuzz::behind_crc::{
    behind_crc_case, make_queue_template, replay_options, BehindCrcSummary, CHAIN, COMPRESS, INDEX, REPLAY,
};
use weir_fuzz::{decode_case, join, make_template, open_dir_case, DirFile, NOW_MS, SHARD_DIR, STREAM};

const MAX_SEED_BYTES: usize = 4096;

fn frame(seq: u64, time_ms: u64, records: &[(&[u8], &[u8])], compression: Compression) -> Vec<u8> {
    let refs: Vec<RecordRef<'_>> = records.iter().map(|(key, value)| RecordRef { key, value }).collect();
    // Salt 0: the salt a segment header of `SegmentHeader::new(_, 0, _)` gives its frames.
    let stamp = FrameStamp { base_seq: seq, time_ms, salt: 0, durable_seq: seq };
    EncodedBatch::encode(&refs, compression).seal(&stamp).to_vec()
}

fn decode_frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(40);
    let mut segment = SegmentHeader::new(3, 0, 3).encode();
    segment.extend(frame(3, 10, &[(b"a", b"one")], Compression::None));
    segment.extend(frame(4, 11, &[(b"b", b"two"), (b"c", b"three")], Compression::None));
    segment.extend(frame(6, 12, &[(b"d", &text[..1200])], Compression::Auto));
    let index = IndexFile {
        segment_len: 4096,
        next_seq: 30,
        last_time_ms: 99,
        entries: vec![
            IndexEntry { seq: 0, offset: 32, time_ms: 5 },
            IndexEntry { seq: 10, offset: 1200, time_ms: 7 },
            IndexEntry { seq: 20, offset: 2600, time_ms: 9 },
        ],
    };
    let message = QueueRecord::Message(MessageRecord {
        queue: 3,
        key: 17,
        message_id: [7; 16],
        sent_ms: 1_700_000_000_000,
        visible_at_ms: 1_700_000_030_000,
        first_receive_ms: 0,
        receive_count: 0,
        origin_queue: 0,
        group: Bytes::from_static(b"group-1"),
        dedup: Bytes::from_static(b"dedup-1"),
        trace_header: Bytes::from_static(b"Root=1-00000000-000000000000000000000000"),
        sender_id: Bytes::new(),
        attributes: vec![StoredAttribute {
            name: "color".into(),
            data_type: "String".into(),
            value: Bytes::from_static(b"blue"),
        }],
        body: Bytes::from_static(b"hello queue"),
    });
    let receive = QueueRecord::Receive { queue: 3, key: 17, receive_count: 1, visible_at_ms: 5, received_ms: 4 };
    let lost = LostRanges { lost: vec![(1, 5), (9, 12)] };
    vec![
        ("queue-record-message.bin", message.encode()),
        ("queue-record-receive.bin", receive.encode()),
        ("lost-ranges.bin", lost.encode()),
        ("frame-one-record.bin", frame(0, 1_700_000_000_000, &[(b"key", b"value")], Compression::None)),
        ("frame-three-records.bin", frame(41, 5, &[(b"k1", b"v1"), (b"", b"no key"), (b"k3", b"")], Compression::None)),
        ("frame-zstd.bin", frame(7, 8, &[(b"text", &text[..]), (b"again", &text[..600])], Compression::Auto)),
        ("index.bin", index.encode()),
        ("segment-header.bin", SegmentHeader::new(12345, 0, 12000).encode()),
        ("head.bin", weir::format::Head { active_base: 3, reserved_next: 5000, durable_next: 6 }.encode().to_vec()),
        ("segment-three-frames.bin", segment),
    ]
}

/// The shard files of a small real stream, read back as `DirFile`s.
fn shard_files(dir: &Path) -> Vec<DirFile> {
    let shard = dir.join(SHARD_DIR);
    let mut bases: Vec<u64> = fs::read_dir(&shard)
        .expect("list shard")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().into_string().expect("utf-8");
            name.strip_suffix(".seg").and_then(|b| b.parse().ok())
        })
        .collect();
    bases.sort_unstable();
    bases
        .into_iter()
        .map(|base| DirFile {
            base,
            segment: fs::read(shard.join(format!("{base:020}.seg"))).expect("read segment"),
            index: fs::read(shard.join(format!("{base:020}.idx"))).ok(),
        })
        .collect()
}

/// Writes a stream with the given puts (one frame per entry) and returns its shard files.
fn real_stream(batches: &[Vec<(&str, Vec<u8>)>], expire_first: bool) -> Vec<DirFile> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW_MS - 3_600_000));
    let options = Options {
        clock: clock.clone(),
        background: false,
        durability: Durability::Never,
        segment_bytes: 512,
        ..Options::default()
    };
    let engine = Engine::open(tmp.path(), options).expect("open");
    engine.create_stream(STREAM, 1, None).expect("create stream");
    let stream = engine.stream(STREAM).expect("stream");
    for (i, batch) in batches.iter().enumerate() {
        if expire_first && i == batches.len() / 2 {
            clock.advance(Duration::from_secs(25 * 3600));
            engine.run_maintenance().expect("retention");
        }
        clock.advance(Duration::from_millis(250));
        let records: Vec<PutRecord<'_>> = batch
            .iter()
            .map(|(key, data)| PutRecord { partition_key: key.as_bytes(), data, explicit_hash_key: None })
            .collect();
        stream.put_batch(&records).expect("put");
    }
    drop(stream);
    drop(engine);
    shard_files(tmp.path())
}

fn open_dir_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let small: Vec<Vec<(&str, Vec<u8>)>> = (0..9u8)
        .map(|i| {
            if i % 4 == 3 {
                vec![("batch-a", vec![i; 30]), ("batch-b", b"second record of the batch".to_vec())]
            } else {
                vec![("key", format!("record number {i} with some text").into_bytes())]
            }
        })
        .collect();
    let all = real_stream(&small, false);
    assert!(all.len() >= 2, "the small stream rolled segments: {} files", all.len());
    let compressible: Vec<Vec<(&str, Vec<u8>)>> =
        (0..3u8).map(|i| vec![("z", b"abcdefgh".repeat(160)), ("z", vec![i; 10])]).collect();
    let expired = real_stream(&small, true);
    assert!(expired[0].base > 0, "retention removed the first segments");
    let last = all.last().expect("segments").clone();
    let without_index: Vec<DirFile> = all.iter().map(|f| DirFile { index: None, ..f.clone() }).collect();
    vec![
        ("engine-segments-with-indexes.bin", join(&all[all.len().saturating_sub(4)..])),
        ("engine-last-segment-only.bin", join(&[last])),
        ("engine-without-indexes.bin", join(&without_index[without_index.len().saturating_sub(3)..])),
        ("engine-after-retention.bin", join(&expired[expired.len().saturating_sub(4)..])),
        ("engine-compressed.bin", join(&real_stream(&compressible, false)[..1])),
    ]
}

/// A `behind_crc` input: `flags`, then `segment` with every frame stored uncompressed; frames
/// whose index is in `mark_compressed` keep the "compressed" flag so the target compresses them.
fn behind_crc_input(flags: u8, segment: &[u8], mark_compressed: &[usize]) -> Vec<u8> {
    let mut out = vec![flags];
    let layout = SegmentHeader::decode(segment).expect("a real segment header").frame_layout();
    out.extend_from_slice(&segment[..SEGMENT_HEADER_LEN]);
    let mut at = SEGMENT_HEADER_LEN;
    let mut i = 0;
    while let Ok(header) = decode_frame(&segment[at..], layout) {
        let frame = Bytes::copy_from_slice(&segment[at..at + header.frame_len as usize]);
        let records = decode_records(&header, &frame).expect("a real frame decodes");
        let refs: Vec<RecordRef<'_>> = records.iter().map(|r| RecordRef { key: &r.key, value: &r.value }).collect();
        let mut plain = EncodedBatch::encode(&refs, Compression::None)
            .seal(&FrameStamp {
                base_seq: header.base_seq,
                time_ms: header.time_ms,
                salt: 0,
                durable_seq: header.durable_seq,
            })
            .to_vec();
        if mark_compressed.contains(&i) {
            plain[12] |= 1;
        }
        out.extend_from_slice(&plain);
        at += header.frame_len as usize;
        i += 1;
    }
    out
}

/// The message log of a small queue workload on a copy of the replay template: sends with
/// attributes, a FIFO send, receives, deletes, a visibility change, a dead-letter move and
/// publishes to both topics. Returns the first segment up to the end of its frames.
fn message_log_segment() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    make_queue_template(tmp.path());
    let engine = Engine::open(tmp.path(), Options { segment_bytes: 1 << 20, ..replay_options() }).expect("open");
    let once = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
    let std = engine.queue("std").expect("std");
    let attributes = [("n".to_string(), AttributeValue::Number("7".into()))].into_iter().collect();
    std.send(b"first", SendOptions { attributes, ..SendOptions::default() }).expect("send");
    std.send(b"second", SendOptions::default()).expect("send");
    let got = std.receive(once.clone()).expect("receive");
    std.delete(&got[0].receipt_handle).expect("delete");
    std.change_visibility(&got[1].receipt_handle, Duration::ZERO).expect("change visibility");
    let fifo = engine.queue("f.fifo").expect("fifo");
    let options = SendOptions { group: Some("g1".into()), dedup_id: Some("d1".into()), ..SendOptions::default() };
    fifo.send(b"fifo one", options).expect("fifo send");
    let work = engine.queue("work").expect("work");
    work.send(b"poison", SendOptions::default()).expect("send");
    for _ in 0..3 {
        for m in work.receive(once.clone()).expect("receive") {
            work.change_visibility(&m.receipt_handle, Duration::ZERO).expect("release");
        }
    }
    for (topic, group) in [("t", None), ("t.fifo", Some("g2".to_string()))] {
        let options = PublishOptions { group, ..PublishOptions::default() };
        engine.topic(topic).expect("topic").publish(b"{\"published\":true}", options).expect("publish");
    }
    drop((std, fifo, work));
    drop(engine);
    let bytes = Bytes::from(fs::read(tmp.path().join("queues").join(format!("{:020}.seg", 0))).expect("read log"));
    let whole = scan_segment(&bytes, 0, 4096).state.len as usize;
    bytes[..whole].to_vec()
}

fn behind_crc_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut stream = SegmentHeader::new(5, 0, 5).encode();
    stream.extend(frame(5, 10, &[(b"a", b"one")], Compression::None));
    stream.extend(frame(6, 11, &[(b"b", b"two"), (b"c", b"three")], Compression::None));
    stream.extend(frame(8, 12, &[(b"d", &b"compress me ".repeat(100)[..])], Compression::None));
    let log = message_log_segment();
    let frames_of_log = log.len();
    let mut hostile = SegmentHeader::new(0, 0, 0).encode();
    let mut count = frame(0, 1, &[(b"k", b"v")], Compression::None);
    count[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    hostile.extend(count);
    let index = IndexFile {
        segment_len: 900,
        next_seq: 12,
        last_time_ms: 40,
        entries: vec![
            IndexEntry { seq: 2, offset: SEGMENT_HEADER_LEN as u64, time_ms: 30 },
            IndexEntry { seq: 7, offset: 400, time_ms: 40 },
        ],
    };
    let mut index_input = vec![INDEX];
    index_input.extend(index.encode());
    assert!(frames_of_log > 32, "the workload wrote frames");
    vec![
        ("stream-chain.bin", behind_crc_input(CHAIN, &stream, &[])),
        ("stream-compress.bin", behind_crc_input(CHAIN | COMPRESS, &stream, &[2])),
        ("message-log.bin", behind_crc_input(CHAIN | REPLAY, &log, &[])),
        ("message-log-compress.bin", behind_crc_input(CHAIN | REPLAY | COMPRESS, &log, &[0, 3, 5])),
        ("hostile-record-count.bin", [&[0u8][..], &hostile].concat()),
        ("index.bin", index_input),
    ]
}

fn write_seeds(target: &str, seeds: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    for (name, bytes) in seeds {
        assert!(bytes.len() < MAX_SEED_BYTES, "seed {target}/{name} is {} bytes", bytes.len());
        fs::write(dir.join(name), bytes).expect("write seed");
        println!("{target}/{name}: {} bytes", bytes.len());
    }
    dir
}

fn main() {
    let decode_seeds = decode_frame_seeds();
    for (_, bytes) in &decode_seeds {
        decode_case(bytes);
    }
    write_seeds("decode_frame", &decode_seeds);

    let template = tempfile::tempdir().expect("template");
    make_template(template.path());
    let dir_seeds = open_dir_seeds();
    for (name, bytes) in &dir_seeds {
        let summary = open_dir_case(bytes, template.path());
        assert!(summary.opened && summary.records > 0 && !summary.read_failed, "seed {name}: {summary:?}");
    }
    write_seeds("open_dir", &dir_seeds);

    let queue_template = tempfile::tempdir().expect("template");
    make_queue_template(queue_template.path());
    let crc_seeds = behind_crc_seeds();
    for (name, bytes) in &crc_seeds {
        let summary = behind_crc_case(bytes, Some(queue_template.path()));
        check_behind_crc_seed(name, bytes[0], &summary);
    }
    write_seeds("behind_crc", &crc_seeds);
}

/// A seed must reach what it is for: its frames decode whole (the hostile one excepted), and
/// a replay seed opens and serves messages.
fn check_behind_crc_seed(name: &str, flags: u8, summary: &BehindCrcSummary) {
    if flags & INDEX != 0 {
        return;
    }
    if name.starts_with("hostile") {
        assert_eq!((summary.frames, summary.decoded), (1, 0), "seed {name}: {summary:?}");
        return;
    }
    assert!(summary.frames > 0 && summary.decoded == summary.frames, "seed {name}: {summary:?}");
    if flags & REPLAY != 0 {
        assert!(summary.queue_records > 0, "seed {name}: {summary:?}");
        assert!(summary.replay_opened && summary.replay_received > 0, "seed {name}: {summary:?}");
    }
}
