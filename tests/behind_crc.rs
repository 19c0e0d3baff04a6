//! The decoders behind the checksum, on every `cargo test`: the `behind_crc` fuzz target's
//! code (`tests/common/behind_crc.rs`) replays its committed seeds and the crashes it found,
//! and runs on random mutations of the seeds; plus the regressions it found, as plain tests.
//! See `fuzz/README.md`.

#[path = "common/behind_crc.rs"]
mod behind_crc;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use behind_crc::{behind_crc_case, make_queue_template, replay_options, CHAIN, REPLAY};
use bytes::Bytes;
use proptest::prelude::*;
use weir::format::queue_record::{MessageRecord, QueueRecord};
use weir::format::RecordRef;
use weir::log::io::RealFs;
use weir::log::{Log, LogConfig};
use weir::{Engine, Error};

fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir_in(behind_crc::scratch_root()).expect("template directory");
            make_queue_template(dir.path());
            dir
        })
        .path()
}

/// The committed inputs of the target: its seeds (`corpus/behind_crc/*.bin`, the crashes it
/// found among them as `regress-*.bin`), not what a local fuzzing run added; and any crash of
/// a local run (`artifacts/behind_crc/crash-*`, not committed).
fn committed_inputs() -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for (dir, wanted) in [("corpus/behind_crc", "bin"), ("artifacts/behind_crc", "")] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let seed = !wanted.is_empty() && path.extension().is_some_and(|e| e == wanted);
            if seed || (wanted.is_empty() && name.starts_with("crash-")) {
                inputs.push(path);
            }
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn committed_seeds_and_crashes_pass() {
    let inputs = committed_inputs();
    assert!(inputs.iter().any(|p| p.extension().is_some_and(|e| e == "bin")), "no seeds found");
    for input in inputs {
        let mut data = std::fs::read(&input).expect("read input");
        behind_crc_case(&data, Some(template()));
        // The same input in the encrypted mode.
        if let Some(flags) = data.first_mut() {
            *flags |= behind_crc::SEAL;
        }
        behind_crc_case(&data, Some(template()));
    }
}

#[test]
fn the_replay_seed_reaches_the_message_store() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/behind_crc/message-log.bin");
    let data = std::fs::read(&seed).expect("read seed");
    assert_eq!(data[0] & (CHAIN | REPLAY), CHAIN | REPLAY);
    let summary = behind_crc_case(&data, Some(template()));
    assert!(summary.frames > 0 && summary.decoded == summary.frames, "{summary:?}");
    assert!(summary.replay_opened && summary.replay_received > 0, "{summary:?}");
}

/// The encrypted mode: every seed with its frames sealed for real decodes at least as much behind
/// the CRC and the tag as it does plain (a frame the seed marks sealed only decodes sealed), and a
/// chain of sealed frames scans clean with every record (`behind_crc_case` asserts that).
#[test]
fn sealed_seeds_decode_behind_the_tag_as_plain_ones_do() {
    let mut sealed_frames = 0;
    for input in committed_inputs().into_iter().filter(|p| p.extension().is_some_and(|e| e == "bin")) {
        let mut data = std::fs::read(&input).expect("read seed");
        if data[0] & behind_crc::INDEX != 0 {
            continue;
        }
        data[0] &= !behind_crc::SEAL;
        let plain = behind_crc_case(&data, None);
        data[0] |= behind_crc::SEAL;
        let sealed = behind_crc_case(&data, None);
        assert_eq!(sealed.frames, plain.frames, "{}", input.display());
        assert!(sealed.decoded >= plain.decoded, "{}: {sealed:?} against {plain:?}", input.display());
        sealed_frames += sealed.decoded;
    }
    assert!(sealed_frames > 0, "no seed decoded sealed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// A few random byte changes to a seed (the fix-up then makes its frames whole again).
    #[test]
    fn mutated_seeds_never_panic(
        pick in any::<prop::sample::Index>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let inputs: Vec<PathBuf> =
            committed_inputs().into_iter().filter(|p| p.extension().is_some_and(|e| e == "bin")).collect();
        let mut data = std::fs::read(pick.get(&inputs)).expect("read seed");
        for (at, byte) in changes {
            let i = at.index(data.len());
            // The flag byte stays: flipping it would mostly turn a segment into an index.
            if i > 0 {
                data[i] = byte;
            }
        }
        behind_crc_case(&data, Some(template()));
        // The same input in the encrypted mode.
        if let Some(flags) = data.first_mut() {
            *flags |= behind_crc::SEAL;
        }
        behind_crc_case(&data, Some(template()));
    }
}

/// Found by the target: a Message record naming a message key at or above its own sequence
/// number (a real one names an earlier record: the message's first) was replayed as is; a
/// later send then indexed a key below it and broke the queue's key order.
#[test]
fn a_moved_message_whose_key_is_not_an_earlier_record_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    make_queue_template(&dir);
    let message = |key: u64| {
        QueueRecord::Message(MessageRecord {
            queue: 1,
            key,
            message_id: [9; 16],
            sent_ms: behind_crc::NOW_MS,
            visible_at_ms: behind_crc::NOW_MS,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: Bytes::new(),
            dedup: Bytes::new(),
            trace_header: Bytes::new(),
            sender_id: Bytes::new(),
            attributes: Vec::new(),
            body: Bytes::from_static(b"moved"),
        })
        .encode()
    };
    {
        let log = Log::open(Arc::new(RealFs), &dir.join("queues"), LogConfig::default(), 0).expect("message log");
        let values = [message(weir::format::queue_record::OWN_SEQ), message(1000)];
        let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"", value: v }).collect();
        log.append(&refs, behind_crc::NOW_MS).expect("append");
    }
    match Engine::open(&dir, replay_options()) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("key 1000"), "{reason}"),
        Err(other) => panic!("not reported as corruption: {other}"),
        Ok(_) => panic!("a message key from the future was replayed"),
    }
}

/// Found by the target: a message log whose (valid) frames reach sequence numbers near 2^64
/// opened, and the next publish overflowed the writer's sequence arithmetic (a panic in debug
/// builds, wrapped sequence numbers in release). An append that would pass the top is refused.
#[test]
fn a_log_whose_sequence_numbers_reach_the_top_refuses_appends_without_overflowing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = Log::open(Arc::new(RealFs), tmp.path(), LogConfig::default(), u64::MAX - 2).expect("open");
    let record = RecordRef { key: b"k", value: b"v" };
    let outcome = log.append(&[record, record], 1).expect("the last two sequence numbers");
    assert_eq!((outcome.base_seq, outcome.next_seq), (u64::MAX - 2, u64::MAX));
    match log.append(&[record], 2) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("no room"), "{reason}"),
        other => panic!("an append past the last sequence number returned {other:?}"),
    }
    let read = log.read(u64::MAX - 2, 10, usize::MAX).expect("read");
    assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![u64::MAX - 2, u64::MAX - 1]);
}

/// Found by the target: counts and times from the message log are used in arithmetic (a
/// receive adds one to the receive count; the deduplication window and the first receive time
/// add to the send time). Records at the top of their ranges replay and serve without
/// overflowing.
#[test]
fn records_with_counts_and_times_at_the_top_of_their_range_replay_and_serve() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    make_queue_template(&dir);
    let message = |queue: u32, sent_ms: u64, dedup: &'static [u8]| {
        QueueRecord::Message(MessageRecord {
            queue,
            key: weir::format::queue_record::OWN_SEQ,
            message_id: [4; 16],
            sent_ms,
            visible_at_ms: 0,
            first_receive_ms: u64::MAX,
            receive_count: u32::MAX,
            origin_queue: 0,
            group: if queue == 4 { Bytes::from_static(b"g") } else { Bytes::new() },
            dedup: Bytes::from_static(dedup),
            trace_header: Bytes::new(),
            sender_id: Bytes::new(),
            attributes: Vec::new(),
            body: Bytes::from_static(b"extreme"),
        })
        .encode()
    };
    {
        let log = Log::open(Arc::new(RealFs), &dir.join("queues"), LogConfig::default(), 0).expect("message log");
        let values = [message(1, behind_crc::NOW_MS, b""), message(4, u64::MAX, b"d"), message(1, u64::MAX, b"")];
        let refs: Vec<RecordRef<'_>> = values.iter().map(|v| RecordRef { key: b"", value: v }).collect();
        log.append(&refs, behind_crc::NOW_MS).expect("append");
    }
    let engine = Engine::open(&dir, replay_options()).expect("open");
    let once = weir::queue::ReceiveOptions { max: 10, wait: Some(std::time::Duration::ZERO), ..Default::default() };
    let got = engine.queue("std").expect("std").receive(once.clone()).expect("receive");
    assert!(got.iter().any(|m| &m.body[..] == b"extreme"), "the message is served");
    assert!(got.iter().all(|m| m.receive_count == u32::MAX), "the count stays at the top");
    let _ = engine.queue("f.fifo").expect("fifo").receive(once).expect("receive");
}
