//! The `behind_crc` fuzz target's code (also run by `tests/behind_crc.rs`): mutated frames whose checksums are fixed up afterwards, so what
//! runs is not the CRC check (which rejects nearly every mutation `decode_frame` sees) but the
//! decoders behind it: record counts and lengths (`decode_records`), zstd payloads,
//! message-log records (`QueueRecord::decode`), catalog and checkpoint JSON, index entries, the
//! recovery scan, and with [`REPLAY`] the message store's replay of a whole log.
//!
//! An input is one flag byte, then a segment image: a 32-byte segment header (of which only
//! `base_seq`, bytes 16..24, is taken) and frames back to back. [`fix_up`] walks the frames by
//! their length fields (clamped to what is left), makes each one whole (magic, length,
//! checksum) and otherwise keeps what the input says, so libFuzzer's mutations of counts,
//! lengths, flags and payload bytes all reach the decoders. Bytes after the last 40-byte frame
//! header are kept as a trailing torn tail.

#![allow(dead_code)]

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir::engine::catalog::CatalogRecord;
use weir::format::batch::{
    decode_frame, decode_records_keyed, peek_frame, FrameError, FrameKeys, FrameLayout, FRAME_HEADER_LEN, FRAME_MAGIC,
};
use weir::format::index::{INDEX_ENTRY_LEN, INDEX_HEADER_LEN};
use weir::format::queue_record::QueueRecord;
use weir::format::sealed::{frame_nonce, SealingKey};
use weir::format::segment_header::SEGMENT_HEADER_LEN;
use weir::format::{IndexFile, SegmentHeader};
use weir::log::recovery::{scan_segment_keyed, ScanEnd};
use weir::queue::{QueueConfig, ReceiveOptions, RedrivePolicy, SendOptions};
use weir::stream::checkpoint::CheckpointRecord;
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Error, ManualClock, Options};

/// Flag: a frame whose header says "compressed" carries its payload uncompressed in the
/// input; the fix-up compresses it for real (else its stored bytes go to zstd as they are).
pub const COMPRESS: u8 = 1;
/// Flag: keep the header's `payload_len` as the input says, even where it disagrees with the
/// payload: a hostile length behind a valid checksum.
pub const KEEP_PAYLOAD_LEN: u8 = 2;
/// Flag: rewrite sequence numbers and times so each frame follows the previous one, so the
/// recovery scan and the store's replay read every frame, not only the first.
pub const CHAIN: u8 = 4;
/// Flag: the bytes after the flag byte are an index file (entry count and checksum fixed up),
/// not a segment.
pub const INDEX: u8 = 8;
/// Flag: also lay the segment out as the message log of a data directory whose catalog names
/// the queues and topic of [`make_queue_template`], open an engine on it and use every queue.
pub const REPLAY: u8 = 16;
/// Flag: seal every frame for real (encrypted log mode): its payload, as made above, is
/// encrypted under the data key [`SEAL_KEY_ID`] of [`sealing_keys`] with the frame's header
/// bound, and the decoders and the scan run with those keys, so what runs is what lies behind
/// the CRC and the tag. (Not combined with [`REPLAY`], whose template is a plain directory.)
pub const SEAL: u8 = 32;
/// The id of the one data key sealed frames name.
pub const SEAL_KEY_ID: u32 = 1;

/// The data keys of the [`SEAL`] mode: one key, id [`SEAL_KEY_ID`].
pub struct SealingKeys(Arc<SealingKey>);

impl FrameKeys for SealingKeys {
    fn frame_key(&self, id: u32) -> Option<Arc<SealingKey>> {
        (id == SEAL_KEY_ID).then(|| Arc::clone(&self.0))
    }
}

/// The keys sealed frames are sealed under.
pub fn sealing_keys() -> SealingKeys {
    SealingKeys(Arc::new(SealingKey::new(&[0x5a; 32])))
}

/// Queues of the replay template, in creation order (catalog ids 1 to 4).
pub const QUEUES: [&str; 4] = ["std", "dlq", "work", "f.fifo"];
/// The replay template's topics (catalog ids 1 and 2): the standard one feeds `std` (raw) and
/// `work` (enveloped), the FIFO one feeds `f.fifo`.
pub const TOPICS: [&str; 2] = ["t", "t.fifo"];
/// Clock of the engines the replay opens (and that made the template).
pub const NOW_MS: u64 = 1_700_000_000_000;

/// A segment image made whole.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// Base sequence number (header and file name).
    pub base: u64,
    /// Header, frames, then any trailing bytes.
    pub segment: Vec<u8>,
    /// Where each fixed-up frame lies in `segment`.
    pub frames: Vec<Range<usize>>,
    /// Bytes after the last frame.
    pub trailing: usize,
}

fn le_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn le_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The salt of every segment [`fix_up`] builds.
pub const SALT: u64 = 0x0b5e_55ed_5a17;

/// Makes every frame of `image` whole (see the module documentation).
pub fn fix_up(flags: u8, image: &[u8]) -> Fixed {
    let base = if image.len() >= 24 { le_u64(image, 16) } else { 0 };
    let mut segment = SegmentHeader::new(base, SALT, base).encode();
    let mut frames = Vec::new();
    let mut rest = image.get(SEGMENT_HEADER_LEN..).unwrap_or(&[]);
    let (mut next_seq, mut last_time) = (base, 0u64);
    while rest.len() >= FRAME_HEADER_LEN {
        let len = (le_u32(rest, 4) as usize).clamp(FRAME_HEADER_LEN, rest.len());
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&frame[..FRAME_HEADER_LEN]);
        let given = &frame[FRAME_HEADER_LEN..];
        let compressed = header[12] & 1 != 0;
        let payload = match compressed && flags & COMPRESS != 0 {
            true => zstd::bulk::compress(given, 1).unwrap_or_else(|_| given.to_vec()),
            false => given.to_vec(),
        };
        header[0..4].copy_from_slice(&FRAME_MAGIC);
        // The frame belongs to its segment, and says the log was durable no further than its
        // first record (what a writer can say of it).
        header[40..48].copy_from_slice(&SALT.to_le_bytes());
        let durable = le_u64(&header, 48).min(le_u64(&header, 16));
        header[48..56].copy_from_slice(&durable.to_le_bytes());
        header[4..8].copy_from_slice(&((FRAME_HEADER_LEN + payload.len()) as u32).to_le_bytes());
        if flags & KEEP_PAYLOAD_LEN == 0 {
            header[28..32].copy_from_slice(&(given.len() as u32).to_le_bytes());
        }
        if flags & CHAIN != 0 {
            let time = le_u64(&header, 32).max(last_time);
            header[16..24].copy_from_slice(&next_seq.to_le_bytes());
            header[32..40].copy_from_slice(&time.to_le_bytes());
            next_seq = next_seq.saturating_add(u64::from(le_u32(&header, 24)));
            last_time = time;
        }
        let start = segment.len();
        segment.extend_from_slice(&header);
        if flags & SEAL != 0 {
            seal(&mut segment, start, payload);
        } else {
            segment.extend_from_slice(&payload);
        }
        let crc = crc32fast::hash(&segment[start + 12..]);
        segment[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        frames.push(start..segment.len());
    }
    segment.extend_from_slice(rest);
    Fixed { base, segment, frames, trailing: rest.len() }
}

/// Appends `payload` sealed to the frame whose header starts at `start` of `segment` (the last
/// bytes of it): the sealed flag set, its length grown by the key id and the tag, its payload
/// encrypted with its header and key id bound, as a writer of an encrypted log seals it.
fn seal(segment: &mut Vec<u8>, start: usize, mut payload: Vec<u8>) {
    segment[start + 12] |= 2;
    let len = FRAME_HEADER_LEN + 4 + payload.len() + 16;
    segment[start + 4..start + 8].copy_from_slice(&(len as u32).to_le_bytes());
    segment.extend_from_slice(&SEAL_KEY_ID.to_le_bytes());
    let mut aad = segment[start..start + 8].to_vec();
    aad.extend_from_slice(&segment[start + 12..]);
    let base_seq = le_u64(segment, start + 16);
    let tag = sealing_keys().0.seal_in_place(&frame_nonce(base_seq), &aad, &mut payload);
    segment.extend_from_slice(&payload);
    segment.extend_from_slice(&tag);
}

/// Every decoder of a record value: whatever decodes survives a round trip.
fn record_case(value: &Bytes) {
    if let Ok(record) = QueueRecord::decode(value) {
        let again = QueueRecord::decode(&Bytes::from(record.encode()));
        assert_eq!(again.as_ref(), Ok(&record), "queue record round trip");
    }
    if let Ok(record) = serde_json::from_slice::<CatalogRecord>(value) {
        let json = serde_json::to_vec(&record).expect("a decoded catalog record encodes");
        assert_eq!(serde_json::from_slice::<CatalogRecord>(&json).ok().as_ref(), Some(&record), "catalog round trip");
    }
    if let Ok(record) = serde_json::from_slice::<CheckpointRecord>(value) {
        let json = serde_json::to_vec(&record).expect("a decoded checkpoint record encodes");
        assert_eq!(serde_json::from_slice::<CheckpointRecord>(&json).ok().as_ref(), Some(&record), "checkpoint");
    }
}

/// An index file with its entry count and checksum made to fit its bytes.
fn index_case(image: &[u8]) {
    if image.len() < INDEX_HEADER_LEN {
        return;
    }
    let count = (image.len() - INDEX_HEADER_LEN) / INDEX_ENTRY_LEN;
    let mut bytes = image[..INDEX_HEADER_LEN + count * INDEX_ENTRY_LEN].to_vec();
    bytes[12..16].copy_from_slice(&(count as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..44]);
    crc.update(&bytes[INDEX_HEADER_LEN..]);
    bytes[44..48].copy_from_slice(&crc.finalize().to_le_bytes());
    if let Ok(index) = IndexFile::decode(&bytes) {
        assert_eq!(IndexFile::decode(&index.encode()).as_ref(), Ok(&index), "index round trip");
        assert!(index.entries.windows(2).all(|w| w[0].seq < w[1].seq && w[0].offset < w[1].offset));
    }
}

/// What a `behind_crc` run saw (the seed generator checks its seeds with it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BehindCrcSummary {
    /// Frames after the fix-up.
    pub frames: usize,
    /// Of which decoded whole, records included.
    pub decoded: usize,
    /// Record values decoded as message-log records.
    pub queue_records: usize,
    /// Whether the replay's engine opened (always false without [`REPLAY`]).
    pub replay_opened: bool,
    /// Messages the replay received from the recovered queues.
    pub replay_received: usize,
}

/// Runs the target on one input; `template` is a data directory made by
/// [`make_queue_template`], needed for [`REPLAY`].
pub fn behind_crc_case(data: &[u8], template: Option<&Path>) -> BehindCrcSummary {
    let mut summary = BehindCrcSummary::default();
    let Some((&flags, image)) = data.split_first() else { return summary };
    if flags & INDEX != 0 {
        index_case(image);
        return summary;
    }
    let fixed = fix_up(flags, image);
    let keys = sealing_keys();
    let keys = (flags & SEAL != 0).then_some(&keys as &dyn FrameKeys);
    summary.frames = fixed.frames.len();
    let mut records_total = 0u64;
    for range in &fixed.frames {
        let bytes = &fixed.segment[range.clone()];
        let header = match decode_frame(bytes, FrameLayout::V2 { salt: SALT }) {
            Ok(h) => h,
            Err(FrameError::Incomplete { needed }) => panic!("a fixed-up frame reads as incomplete ({needed})"),
            Err(FrameError::Corrupt(e)) => {
                assert!(!e.reason.contains("checksum"), "the fix-up left a bad checksum: {}", e.reason);
                continue;
            }
        };
        assert_eq!(header.frame_len as usize, bytes.len(), "frame length");
        assert_eq!(
            peek_frame(bytes, FrameLayout::V2 { salt: SALT }),
            Some((bytes.len(), header.base_seq, header.next_seq())),
            "peek agrees"
        );
        let Ok(records) = decode_records_keyed(&header, &Bytes::copy_from_slice(bytes), keys) else { continue };
        assert_eq!(records.len(), header.record_count as usize, "record count");
        summary.decoded += 1;
        records_total += records.len() as u64;
        for r in &records {
            summary.queue_records += usize::from(QueueRecord::decode(&r.value).is_ok());
            record_case(&r.value);
        }
    }
    let segment = Bytes::from(fixed.segment.clone());
    let outcome = scan_segment_keyed(&segment, fixed.base, 256, keys);
    assert!(outcome.state.len as usize <= segment.len(), "whole frames end inside the file");
    assert!(outcome.frames as usize <= fixed.frames.len(), "the scan found more frames than there are");
    if flags & CHAIN != 0 && fixed.trailing == 0 && summary.decoded == fixed.frames.len() {
        // Every frame decodes and follows the one before it: the scan must take them all.
        assert_eq!(outcome.end, ScanEnd::Clean, "a chain of whole frames");
        assert_eq!((outcome.frames as usize, outcome.records), (fixed.frames.len(), records_total));
    }
    if let (true, false, Some(template)) = (flags & REPLAY != 0, flags & SEAL != 0, template) {
        replay_case(&fixed, template, &mut summary);
    }
    summary
}

/// The options replay engines open with.
pub fn replay_options() -> Options {
    Options {
        durability: Durability::Never,
        background: false,
        segment_bytes: 4096,
        clock: Arc::new(ManualClock::new(NOW_MS)),
        ..Options::default()
    }
}

/// Makes a data directory whose catalog names [`QUEUES`] and [`TOPICS`] (with their
/// subscriptions) and whose message log is empty: the place a replay input's segment goes.
pub fn make_queue_template(dir: &Path) {
    {
        let engine = Engine::open(dir, replay_options()).expect("open template engine");
        for name in QUEUES {
            let fifo = name.ends_with(".fifo");
            let redrive = (name == "work").then(|| RedrivePolicy { dead_letter_queue: "dlq".into(), max_receives: 2 });
            let config = QueueConfig { fifo, content_based_dedup: fifo, redrive, ..QueueConfig::default() };
            engine.create_queue(name, config).expect("create template queue");
        }
        for name in TOPICS {
            let fifo = name.ends_with(".fifo");
            let topic = TopicConfig { fifo, content_based_dedup: fifo };
            engine.create_topic(name, topic).expect("create template topic");
        }
        for (topic, queue, raw) in [("t", "std", true), ("t", "work", false), ("t.fifo", "f.fifo", true)] {
            let options = SubscribeOptions { raw, ..SubscribeOptions::default() };
            engine.subscribe(topic, Endpoint::Queue(queue.into()), options).expect("subscribe");
        }
    }
    fs::remove_dir_all(dir.join("queues")).expect("remove the template's message log");
    let _ = fs::remove_file(dir.join("LOCK"));
}

/// Copies `template` into a fresh scratch directory and puts `fixed` there as the message log.
fn replay_dir(fixed: &Fixed, template: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir_in(scratch_root()).expect("scratch directory");
    let dir = tmp.path().join("data");
    copy_tree(template, &dir);
    let log = dir.join("queues");
    fs::create_dir_all(&log).expect("message log directory");
    fs::write(log.join(format!("{:020}.seg", fixed.base)), &fixed.segment).expect("write segment");
    (tmp, dir)
}

/// Opens an engine over the fixed-up message log and uses every queue: receives (and so reads
/// bodies), deletes, visibility changes, purges, redrive, a publish, maintenance, and a reopen.
/// Errors are fine; panics are not; and a message sent after recovery is received back.
fn replay_case(fixed: &Fixed, template: &Path, summary: &mut BehindCrcSummary) {
    let (_tmp, dir) = replay_dir(fixed, template);
    let Ok(engine) = Engine::open(&dir, replay_options()) else { return };
    summary.replay_opened = true;
    let once = ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..ReceiveOptions::default() };
    for name in QUEUES {
        let Ok(queue) = engine.queue(name) else { continue };
        let _ = queue.peek(20);
        let _ = queue.attributes();
        for round in 0..4 {
            let Ok(got) = queue.receive(once.clone()) else { break };
            summary.replay_received += got.len();
            for (i, m) in got.iter().enumerate() {
                let _ = match (round + i) % 3 {
                    0 => queue.delete(&m.receipt_handle),
                    1 => queue.change_visibility(&m.receipt_handle, Duration::ZERO),
                    _ => Ok(()),
                };
            }
        }
    }
    let _ = engine.redrive("dlq", None);
    for name in TOPICS {
        if let Ok(topic) = engine.topic(name) {
            let group = name.ends_with(".fifo").then(|| "g".to_string());
            let _ = topic.publish(b"after recovery", PublishOptions { group, ..PublishOptions::default() });
        }
    }
    let _ = engine.run_maintenance();
    // Whatever recovery made of the log, the standard queue takes a new message and gives it
    // back once everything before it is gone; or the receive fails for the log's sake (its
    // sequence numbers ran out, say), never by losing the message quietly.
    if let Ok(queue) = engine.queue("std") {
        if queue.purge().is_ok() && queue.send(b"sent after recovery", SendOptions::default()).is_ok() {
            match queue.receive(once.clone()) {
                Ok(got) => assert!(
                    got.iter().any(|m| &m.body[..] == b"sent after recovery"),
                    "a message sent after a purge is received: {:?}",
                    got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect::<Vec<_>>()
                ),
                Err(e) => assert!(
                    matches!(e, Error::Corrupt { .. } | Error::Io { .. } | Error::Poisoned { .. }),
                    "a receive after recovery failed with {e:?}"
                ),
            }
        }
    }
    drop(engine);
    if let Ok(engine) = Engine::open(&dir, replay_options()) {
        for name in QUEUES {
            if let Ok(queue) = engine.queue(name) {
                let _ = queue.receive(once.clone());
            }
        }
    }
}

/// Where scratch directories go: memory if the machine has `/dev/shm`, else the temp dir.
pub fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create directory");
    for entry in fs::read_dir(from).expect("list template") {
        let entry = entry.expect("template entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy template file");
        }
    }
}
