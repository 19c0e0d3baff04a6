//! Encryption at rest: a directory created with a key is sealed from then on (every log, every
//! record), refuses to open without the key or with a wrong one, rotates data keys by the engine
//! clock, reads old data while its key version is in the key file, and rekeys without rewriting
//! data.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{read_to_end, scratch_dir, test_options};
use weir::engine::tags::ResourceRef;
use weir::firehose::{Buffering, DeliveryStreamConfig, Destination, DirectoryDestination};
use weir::format::key_file::format_key_line;
use weir::queue::{AttributeValue, QueueConfig, ReceiveOptions, SendOptions};
use weir::stream::{ConsumerConfig, StartingPosition};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions};
use weir::{Engine, Error, KeySource, ManualClock, Options};

const SECRET_BODY: &[u8] = b"the launch code is 0000 and nobody must read it";
const SECRET_ATTRIBUTE: &str = "attribute-value-nobody-must-read";
const SECRET_RECORD: &[u8] = b"stream-record-nobody-must-read";
const SECRET_TAG: &str = "tag-value-nobody-must-read";

fn keys(versions: &[(&str, u8)]) -> KeySource {
    let text: String = versions.iter().map(|(name, byte)| format_key_line(name, &[*byte; 32])).collect();
    KeySource::from_text(&text).expect("key text")
}

fn options(clock: &Arc<ManualClock>, key: Option<KeySource>) -> Options {
    Options { key_source: key, ..test_options(clock.clone(), 1 << 20) }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes a stream record, a queue message with an attribute, a topic publish delivered to a
/// queue, a consumer checkpoint and a tag: data in every log.
fn write_everything(engine: &Engine) {
    engine.create_stream("clicks", 1, None).expect("create stream");
    engine.stream("clicks").expect("stream").put(b"pk", SECRET_RECORD).expect("put");
    let config = QueueConfig { sqs_managed_sse: false, kms_master_key_id: None, ..QueueConfig::default() };
    engine.create_queue("orders", config).expect("create queue");
    let mut send = SendOptions::default();
    send.attributes.insert("note".into(), AttributeValue::String(SECRET_ATTRIBUTE.into()));
    engine.queue("orders").expect("queue").send(SECRET_BODY, send).expect("send");
    engine.create_topic("news", Default::default()).expect("create topic");
    engine.subscribe("news", Endpoint::Queue("orders".into()), SubscribeOptions::default()).expect("subscribe");
    engine
        .topic("news")
        .expect("topic")
        .publish(b"published-body-nobody-must-read", PublishOptions::default())
        .expect("publish");
    let tags = [("owner".to_string(), SECRET_TAG.to_string())].into_iter().collect();
    engine.tag(ResourceRef::Queue("orders"), &tags).expect("tag");
    let stream = engine.stream("clicks").expect("stream");
    let mut consumer = stream.consumer("group-nobody-must-read", "w", ConsumerConfig::default()).expect("consumer");
    assert_eq!(consumer.poll(10).expect("poll").len(), 1);
    consumer.checkpoint(0, 0).expect("checkpoint");
}

fn check_everything(engine: &Engine) {
    let records = read_to_end(&engine.stream("clicks").expect("stream"), 0, StartingPosition::TrimHorizon, 10);
    assert!(records.error.is_none(), "{:?}", records.error);
    assert_eq!(records.records.first().map(|r| r.data.clone()), Some(Bytes::from_static(SECRET_RECORD)));
    let got = engine
        .queue("orders")
        .expect("queue")
        .receive(ReceiveOptions { max: 10, ..ReceiveOptions::default() })
        .expect("receive");
    let bodies: Vec<&[u8]> = got.iter().map(|m| m.body.as_ref()).collect();
    assert!(bodies.contains(&SECRET_BODY), "{bodies:?}");
    assert_eq!(got.len(), 2, "the message and the publish's delivery");
    let with_note = got.iter().find(|m| m.body.as_ref() == SECRET_BODY).expect("sent message");
    assert_eq!(with_note.attributes.get("note"), Some(&AttributeValue::String(SECRET_ATTRIBUTE.into())));
    let tags = engine.tags(ResourceRef::Queue("orders")).expect("tags");
    assert_eq!(tags.get("owner").map(String::as_str), Some(SECRET_TAG));
    let checkpoints = engine.stream("clicks").expect("stream").checkpoints();
    assert_eq!(checkpoints.get(&("group-nobody-must-read".to_string(), 0)), Some(&0));
}

#[test]
fn an_encrypted_directory_holds_no_plaintext_and_reads_back_with_its_key() {
    let dir = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("open");
    assert!(engine.encrypted_at_rest());
    write_everything(&engine);
    drop(engine);
    for (path, bytes) in files(dir.path()) {
        for secret in [
            SECRET_BODY,
            SECRET_ATTRIBUTE.as_bytes(),
            SECRET_RECORD,
            SECRET_TAG.as_bytes(),
            b"published-body-nobody-must-read",
            b"group-nobody-must-read",
            b"\"secret\"",
        ] {
            assert!(
                !contains(&bytes, secret),
                "{} holds {:?} in the clear",
                path.display(),
                String::from_utf8_lossy(secret)
            );
        }
    }
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("reopen");
    check_everything(&engine);
}

#[test]
fn a_plain_directory_holds_its_data_in_the_clear() {
    // The test above would pass vacuously if the secrets never reached the disk at all.
    let dir = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, None)).expect("open");
    assert!(!engine.encrypted_at_rest());
    write_everything(&engine);
    drop(engine);
    let all: Vec<u8> = files(dir.path()).into_iter().flat_map(|(_, b)| b).collect();
    for secret in [SECRET_BODY, SECRET_RECORD, SECRET_TAG.as_bytes(), b"group-nobody-must-read"] {
        assert!(contains(&all, secret));
    }
}

#[test]
fn opening_without_the_key_or_with_a_wrong_one_fails_clearly() {
    let dir = scratch_dir();
    let clock = clock();
    drop(Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("create"));
    match Engine::open(dir.path(), options(&clock, None)) {
        Err(Error::KeyRequired { dir: d }) => assert_eq!(d, dir.path()),
        other => panic!("without a key: {other:?}"),
    }
    for wrong in [keys(&[("v1", 2)]), keys(&[("v2", 1)])] {
        match Engine::open(dir.path(), options(&clock, Some(wrong))) {
            Err(e @ Error::WrongKey { .. }) => {
                assert_eq!(e.to_string(), format!("wrong encryption key for {}", dir.path().display()));
            }
            other => panic!("with a wrong key: {other:?}"),
        }
    }
}

#[test]
fn a_plain_directory_is_not_opened_with_a_key() {
    let dir = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, None)).expect("create");
    engine.create_queue("q", QueueConfig::default()).expect("queue");
    drop(engine);
    match Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("created without encryption"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("ENCRYPTION").exists(), "a refused open leaves the directory as it was");
    Engine::open(dir.path(), options(&clock, None)).expect("still opens plain");
}

#[test]
fn the_reuse_period_is_checked() {
    let clock = clock();
    for period in [Duration::from_secs(59), Duration::from_secs(24 * 3600 + 1)] {
        let dir = scratch_dir();
        let o = Options { data_key_reuse_period: period, ..options(&clock, Some(keys(&[("v1", 1)]))) };
        assert!(matches!(Engine::open(dir.path(), o), Err(Error::InvalidArgument(_))), "{period:?}");
    }
}

fn data_keys(dir: &Path) -> Vec<weir::format::data_keys::DataKeyEntry> {
    let bytes = std::fs::read(dir.join("KEYS")).expect("KEYS file");
    weir::format::data_keys::decode_keys(&bytes).expect("decodes")
}

#[test]
fn a_writer_takes_a_new_data_key_each_reuse_period_by_the_engine_clock() {
    let dir = scratch_dir();
    let clock = clock();
    let o = Options { data_key_reuse_period: Duration::from_secs(60), ..options(&clock, Some(keys(&[("v1", 1)]))) };
    let engine = Engine::open(dir.path(), o.clone()).expect("open");
    engine.create_stream("s", 1, None).expect("stream");
    let stream = engine.stream("s").expect("stream");
    let shard = dir.path().join("streams/s/shard-000000");
    stream.put(b"k", b"1").expect("put");
    clock.advance(Duration::from_secs(59));
    stream.put(b"k", b"2").expect("put");
    assert_eq!(data_keys(&shard).len(), 1, "within the period the key is reused");
    clock.advance(Duration::from_secs(1));
    stream.put(b"k", b"3").expect("put");
    assert_eq!(data_keys(&shard).len(), 2, "a period later a new key seals");
    drop(stream);
    drop(engine);
    let engine = Engine::open(dir.path(), o).expect("reopen");
    let stream = engine.stream("s").expect("stream");
    stream.put(b"k", b"4").expect("put");
    let ids: Vec<u32> = data_keys(&shard).iter().map(|k| k.id).collect();
    assert_eq!(ids, [1, 2, 3], "a reopened writer never seals under an earlier writer's key");
    let read = read_to_end(&stream, 0, StartingPosition::TrimHorizon, 10);
    let data: Vec<&[u8]> = read.records.iter().map(|r| r.data.as_ref()).collect();
    assert_eq!(data, [b"1", b"2", b"3", b"4"]);
}

#[test]
fn rotation_keeps_old_data_readable_and_rekey_retires_the_old_version() {
    let dir = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("open");
    write_everything(&engine);
    drop(engine);
    // A new version: new data keys are wrapped under it, the old ones stay readable.
    let both = keys(&[("v1", 1), ("v2", 2)]);
    let engine = Engine::open(dir.path(), options(&clock, Some(both.clone()))).expect("open with both");
    engine.stream("clicks").expect("stream").put(b"pk", b"after rotation").expect("put");
    drop(engine);
    let versions: Vec<String> =
        data_keys(&dir.path().join("streams/clicks/shard-000000")).into_iter().map(|k| k.key_version).collect();
    assert_eq!(versions, ["v1", "v2"]);
    match Engine::open(dir.path(), options(&clock, Some(keys(&[("v2", 2)])))) {
        Err(Error::WrongKey { detail, .. }) => assert!(detail.contains("\"v1\""), "{detail}"),
        other => panic!("v1 still wraps data keys: {other:?}"),
    }
    let engine = Engine::open(dir.path(), options(&clock, Some(both))).expect("open with both");
    let report = engine.rekey().expect("rekey");
    assert_eq!(report.key_version, "v2");
    assert!(report.data_keys_rewrapped >= 4, "{report:?}");
    assert_eq!(engine.rekey().expect("again").data_keys_rewrapped, 0, "nothing left to rewrap");
    drop(engine);
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v2", 2)])))).expect("only the new version");
    check_everything(&engine);
}

#[test]
fn rekey_of_a_plain_directory_is_refused() {
    let dir = scratch_dir();
    let engine = Engine::open(dir.path(), options(&clock(), None)).expect("open");
    assert!(matches!(engine.rekey(), Err(Error::InvalidArgument(_))));
}

/// Flips a byte of the first sealed frame's ciphertext in the message log and fixes its CRC: the
/// frame is whole to anyone without the key, and must never be served as data.
#[test]
fn a_changed_ciphertext_with_a_good_crc_is_damage_never_data() {
    let dir = scratch_dir();
    let clock = clock();
    let key = keys(&[("v1", 1)]);
    let engine = Engine::open(dir.path(), options(&clock, Some(key.clone()))).expect("open");
    engine.create_stream("s", 1, None).expect("stream");
    for i in 0..3u8 {
        engine.stream("s").expect("stream").put(b"k", &[i; 100]).expect("put");
    }
    drop(engine);
    let shard = dir.path().join("streams/s/shard-000000");
    let segment = std::fs::read_dir(&shard)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let frame = 48; // the first frame follows the 48-byte header
    let frame_len = u32::from_le_bytes(bytes[frame + 4..frame + 8].try_into().expect("4 bytes")) as usize;
    bytes[frame + 70] ^= 0x01;
    let crc = crc32fast::hash(&bytes[frame + 12..frame + frame_len]);
    bytes[frame + 8..frame + 12].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, &bytes).expect("write");
    // Without the key the structure checks out.
    let problems = weir::inspect::verify_dir(dir.path()).expect("verify");
    assert!(problems.iter().all(|p| !p.is_damage()), "{problems:?}");
    // With it, the frame is damage: the engine serves nothing of it.
    let engine = Engine::open(dir.path(), options(&clock, Some(key))).expect("open");
    let read = read_to_end(&engine.stream("s").expect("stream"), 0, StartingPosition::TrimHorizon, 10);
    assert!(read.records.is_empty(), "nothing at or after the changed frame is served: {:?}", read.records);
    match read.error {
        Some(Error::Corrupt { reason, .. }) => assert!(reason.contains("authenticate"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_encrypted_directory_keeps_no_queue_index_snapshot_and_replays_its_log() {
    // A snapshot holds queue names and group ids in the clear: an encrypted directory has none.
    const SECRET_QUEUE: &str = "queue-name-nobody-must-read.fifo";
    const SECRET_GROUP: &str = "group-id-nobody-must-read";
    let dir = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("open");
    let config = QueueConfig { fifo: true, content_based_dedup: true, ..QueueConfig::default() };
    engine.create_queue(SECRET_QUEUE, config).expect("create queue");
    let queue = engine.queue(SECRET_QUEUE).expect("queue");
    for i in 0..10u8 {
        let send = SendOptions { group: Some(SECRET_GROUP.into()), ..SendOptions::default() };
        queue.send(&[i], send).expect("send");
    }
    let refused = engine.snapshot_queues();
    assert!(matches!(refused, Err(Error::InvalidArgument(_))), "{refused:?}");
    drop(queue);
    drop(engine);
    for (path, bytes) in files(dir.path()) {
        assert!(path.extension().is_none_or(|e| e != "snap"), "{} is a snapshot", path.display());
        for secret in [SECRET_QUEUE.as_bytes(), SECRET_GROUP.as_bytes()] {
            assert!(!contains(&bytes, secret), "{} holds {:?} in the clear", path.display(), secret);
        }
    }
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("reopen");
    assert!(engine.queue_index_recovery().snapshot.is_none());
    let got = engine
        .queue(SECRET_QUEUE)
        .expect("queue")
        .receive(ReceiveOptions { max: 10, ..ReceiveOptions::default() })
        .expect("receive");
    assert_eq!(got.len(), 10, "every message comes back from the replayed log");
}

#[test]
fn a_delivery_stream_of_an_encrypted_directory_is_sealed_and_reads_back() {
    const SECRET_FIREHOSE: &[u8] = b"firehose-record-nobody-must-read";
    let dir = scratch_dir();
    let out = scratch_dir();
    let clock = clock();
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("open");
    // Buffering of zero seconds: the first step delivers what is there.
    let destination =
        DirectoryDestination { buffering: Buffering::of(1, Duration::ZERO), ..DirectoryDestination::new(out.path()) };
    let to_dir = DeliveryStreamConfig::new(Destination::Directory(destination));
    engine.create_delivery_stream("clicks", to_dir).expect("create delivery stream");
    engine.delivery_stream("clicks").expect("delivery stream").put(SECRET_FIREHOSE).expect("put");
    drop(engine);
    for (path, bytes) in files(dir.path()) {
        assert!(!contains(&bytes, SECRET_FIREHOSE), "{} holds the record in the clear", path.display());
    }
    let engine = Engine::open(dir.path(), options(&clock, Some(keys(&[("v1", 1)])))).expect("reopen");
    let mut delivery =
        engine.delivery_stream("clicks").expect("delivery stream").directory_delivery().expect("delivery");
    let delivered = delivery.step().expect("deliver");
    assert_eq!(delivered.len(), 1, "one file of the buffered record");
    // Delivered files leave weir's custody and are plain, as format-spec.md says.
    assert_eq!(std::fs::read(&delivered[0]).expect("read delivered"), SECRET_FIREHOSE);
}
