//! What the fuzz targets run, shared with the seed generator (`examples/gen_corpus.rs`) so seeds
//! can be checked without libFuzzer.
//!
//! * [`decode_case`]: every decoder of `weir::format` (frames, indexes, segment headers, `LOST`
//!   files, queue records) and the recovery scan on arbitrary bytes.
//!   None may panic; whatever decodes must survive a re-encode round trip.
//! * [`open_dir_case`]: arbitrary bytes laid out as segment and index files of one stream shard
//!   (see [`split`]), then `Engine::open` and reads through every kind of iterator. Errors are
//!   fine; panics are not, and nothing may be served out of sequence order.

#[path = "../../tests/common/behind_crc.rs"]
pub mod behind_crc;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use weir::format::batch::{
    decode_frame, decode_records, decode_records_keyed, peek_frame, EncodedBatch, FrameKeys, FrameLayout, FrameStamp,
};
use weir::format::sealed::SealingKey;
use weir::format::head::Head;
use weir::format::lost::LostRanges;
use weir::format::queue_record::QueueRecord;
use weir::format::{Compression, IndexFile, RecordRef, SegmentHeader};
use weir::log::recovery::{later_frames, scan_segment, scan_segment_keyed};
use weir::stream::StartingPosition;
use weir::{Durability, Engine, ManualClock, Options};

/// Name of the stream every `open_dir` input lands in.
pub const STREAM: &str = "s";
/// The shard directory of that stream, relative to the data directory.
pub const SHARD_DIR: &str = "streams/s/shard-000000";
/// Clock of the engine the `open_dir` target opens.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// The frame layouts `data` may be a frame of: version 1, and version 2 with the salt the bytes
/// carry where a version-2 frame keeps it (a fuzzer cannot guess a salt, so it gets to choose).
fn layouts(data: &[u8]) -> [FrameLayout; 2] {
    let salt = data.get(40..48).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    [FrameLayout::V1, FrameLayout::V2 { salt }]
}

/// Runs every decoder on `data`.
pub fn decode_case(data: &[u8]) {
    for layout in layouts(data) {
        frame_case(data, layout);
    }
    if let Ok(index) = IndexFile::decode(data) {
        assert_eq!(IndexFile::decode(&index.encode()).as_ref(), Ok(&index), "index round trip");
    }
    let base = match SegmentHeader::decode(data) {
        Ok(header) => {
            assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header), "segment header round trip");
            header.base_seq
        }
        Err(_) => 0,
    };
    let outcome = scan_segment(&Bytes::copy_from_slice(data), base, 256);
    assert!(outcome.state.len as usize <= data.len(), "whole frames end inside the file");
    assert!(outcome.records >= outcome.frames, "every frame holds a record");
    let keyed = scan_segment_keyed(&Bytes::copy_from_slice(data), base, 256, Some(&FuzzKeys::new()));
    assert!(keyed.state.len <= outcome.state.len, "the key only ever finds less whole");
    for layout in layouts(data) {
        let _ = later_frames(data, 0, layout, 0, 0);
        let _ = peek_frame(data, layout);
    }
    if let Ok(head) = Head::decode(data) {
        assert_eq!(Head::decode(&head.encode()), Ok(head), "HEAD round trip");
    }
    if let Ok(lost) = LostRanges::decode(data) {
        assert_eq!(LostRanges::decode(&lost.encode()).as_ref(), Ok(&lost), "LOST round trip");
        let _ = lost.covers(0, u64::MAX);
    }
    if let Ok(record) = QueueRecord::decode(&Bytes::copy_from_slice(data)) {
        assert_eq!(QueueRecord::decode(&Bytes::from(record.encode())).as_ref(), Ok(&record), "queue record round trip");
    }
}

/// `data` as a frame of a segment of `layout`: whatever decodes survives a round trip.
fn frame_case(data: &[u8], layout: FrameLayout) {
    if let Ok(header) = decode_frame(data, layout) {
        let len = header.frame_len as usize;
        assert_eq!(
            peek_frame(data, layout),
            Some((len, header.base_seq, header.next_seq())),
            "peeking a valid frame agrees with decoding it"
        );
        assert!((layout.header_len()..=data.len()).contains(&len), "frame length {len} outside the buffer");
        let frame = Bytes::copy_from_slice(&data[..len]);
        if let Ok(records) = decode_records(&header, &frame) {
            assert_eq!(records.len(), header.record_count as usize, "record count");
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.seq, header.base_seq + i as u64, "sequence numbers follow the base");
                assert_eq!(r.time_ms, header.time_ms, "records carry their frame's time");
            }
            let refs: Vec<RecordRef<'_>> = records.iter().map(|r| RecordRef { key: &r.key, value: &r.value }).collect();
            let mut batch = EncodedBatch::encode(&refs, Compression::None);
            let salt = match layout {
                FrameLayout::V2 { salt } => salt,
                FrameLayout::V1 => 0,
            };
            let stamp = FrameStamp { base_seq: header.base_seq, time_ms: header.time_ms, salt, durable_seq: 0 };
            let again = Bytes::copy_from_slice(batch.seal(&stamp));
            let header_again = decode_frame(&again, FrameLayout::V2 { salt }).expect("a re-encoded frame decodes");
            assert_eq!(decode_records(&header_again, &again).expect("re-encoded records decode"), records);
            sealed_round_trip(&refs, &stamp, &records);
        }
    }
    // The encrypted mode: the bytes as a frame of an encrypted log (every frame sealed).
    if let FrameLayout::V2 { .. } = layout {
        if let Ok(header) = decode_frame(data, layout) {
            let frame = Bytes::copy_from_slice(&data[..header.frame_len as usize]);
            let _ = decode_records_keyed(&header, &frame, Some(&FuzzKeys::new()));
        }
    }
}

/// The one data key (id 1) frames of the fuzz targets' encrypted mode are sealed under.
struct FuzzKeys(Arc<SealingKey>);

impl FuzzKeys {
    fn new() -> FuzzKeys {
        FuzzKeys(Arc::new(SealingKey::new(&[0x5a; 32])))
    }
}

impl FrameKeys for FuzzKeys {
    fn frame_key(&self, id: u32) -> Option<Arc<SealingKey>> {
        (id == 1).then(|| Arc::clone(&self.0))
    }
}

/// Records sealed as an encrypted log's writer seals them read back the same with the key, not
/// at all without it, and a changed byte of the sealed payload behind a good CRC fails the tag.
fn sealed_round_trip(refs: &[RecordRef<'_>], stamp: &FrameStamp, records: &[weir::format::Record]) {
    let keys = FuzzKeys::new();
    let mut batch = EncodedBatch::encode_for(refs, Compression::Auto, true);
    let sealed = batch.seal_with(stamp, Some((1, &keys.0))).to_vec();
    let layout = FrameLayout::V2 { salt: stamp.salt };
    let header = decode_frame(&sealed, layout).expect("a sealed frame decodes");
    assert!(header.sealed);
    let bytes = Bytes::from(sealed.clone());
    assert_eq!(decode_records_keyed(&header, &bytes, Some(&keys)).expect("sealed records open"), records);
    assert!(decode_records(&header, &bytes).is_err(), "a sealed frame read without the key");
    let mut changed = sealed;
    let at = changed.len() - 1 - (records.len() % 16);
    changed[at] ^= 1;
    let crc = crc32fast::hash(&changed[12..]);
    changed[8..12].copy_from_slice(&crc.to_le_bytes());
    let header = decode_frame(&changed, layout).expect("the CRC was fixed up");
    assert!(decode_records_keyed(&header, &Bytes::from(changed), Some(&keys)).is_err(), "a changed sealed frame opened");
}

/// One segment file (and maybe its index) of an `open_dir` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFile {
    /// Base sequence number: the file is `{base:020}.seg`.
    pub base: u64,
    /// The segment file's bytes.
    pub segment: Vec<u8>,
    /// The index file's bytes, if there is one.
    pub index: Option<Vec<u8>>,
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)])
    }
}

/// Splits an `open_dir` input into files: a count byte (1 to 4 files), then per file its base
/// (u16 LE), segment length (u16 LE) and bytes, a flag byte (bit 0: an index follows) and, if
/// flagged, the index length (u16 LE) and bytes. Missing bytes read as zero or empty.
pub fn split(input: &[u8]) -> Vec<DirFile> {
    let mut c = Cursor(input);
    let count = 1 + usize::from(c.u8() % 4);
    let mut files: Vec<DirFile> = Vec::with_capacity(count);
    for _ in 0..count {
        let base = u64::from(c.u16());
        let len = usize::from(c.u16());
        let segment = c.take(len).to_vec();
        let index = (c.u8() & 1 == 1).then(|| {
            let len = usize::from(c.u16());
            c.take(len).to_vec()
        });
        // Two files with one name: the later one wins, as it would on disk.
        files.retain(|f| f.base != base);
        files.push(DirFile { base, segment, index });
    }
    files
}

/// The inverse of [`split`] (for up to 4 files of at most 64 KiB each).
pub fn join(files: &[DirFile]) -> Vec<u8> {
    assert!((1..=4).contains(&files.len()), "1 to 4 files");
    let mut out = vec![(files.len() - 1) as u8];
    for f in files {
        out.extend_from_slice(&u16::try_from(f.base).expect("base fits u16").to_le_bytes());
        out.extend_from_slice(&u16::try_from(f.segment.len()).expect("segment fits").to_le_bytes());
        out.extend_from_slice(&f.segment);
        match &f.index {
            Some(index) => {
                out.push(1);
                out.extend_from_slice(&u16::try_from(index.len()).expect("index fits").to_le_bytes());
                out.extend_from_slice(index);
            }
            None => out.push(0),
        }
    }
    out
}

use behind_crc::copy_tree;
pub use behind_crc::scratch_root;

/// Makes a data directory holding only a catalog that names stream [`STREAM`] with one shard,
/// the way a real engine writes it.
pub fn make_template(dir: &Path) {
    {
        let engine = Engine::open(dir, options()).expect("open template engine");
        engine.create_stream(STREAM, 1, None).expect("create template stream");
    }
    fs::remove_dir_all(dir.join("streams")).expect("remove the template's shard files");
    let _ = fs::remove_file(dir.join("LOCK"));
}

/// The options `open_dir` opens engines with.
pub fn options() -> Options {
    Options {
        durability: Durability::Never,
        background: false,
        segment_bytes: 1024,
        clock: Arc::new(ManualClock::new(NOW_MS)),
        ..Options::default()
    }
}

/// What an `open_dir` run saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpenDirSummary {
    /// Whether `Engine::open` succeeded.
    pub opened: bool,
    /// Records served by the trim-horizon read before it ended or failed.
    pub records: usize,
    /// Whether that read ended in an error.
    pub read_failed: bool,
}

/// Lays `input` out as the shard's files in a copy of `template`, opens it and reads.
pub fn open_dir_case(input: &[u8], template: &Path) -> OpenDirSummary {
    let tmp = tempfile::tempdir_in(scratch_root()).expect("scratch directory");
    let dir = tmp.path().join("data");
    copy_tree(template, &dir);
    let shard_dir = dir.join(SHARD_DIR);
    fs::create_dir_all(&shard_dir).expect("shard directory");
    for f in split(input) {
        fs::write(shard_dir.join(format!("{:020}.seg", f.base)), &f.segment).expect("write segment");
        if let Some(index) = &f.index {
            fs::write(shard_dir.join(format!("{:020}.idx", f.base)), index).expect("write index");
        }
    }
    let mut summary = OpenDirSummary::default();
    let Ok(engine) = Engine::open(&dir, options()) else { return summary };
    summary.opened = true;
    let Ok(stream) = engine.stream(STREAM) else { return summary };
    let _ = stream.describe();
    let starts = [
        StartingPosition::TrimHorizon,
        StartingPosition::AtTimestamp(0),
        StartingPosition::AtTimestamp(NOW_MS),
        StartingPosition::AtSequence(1),
        StartingPosition::AfterSequence(2),
        StartingPosition::Latest,
    ];
    for (i, start) in starts.into_iter().enumerate() {
        let Ok(mut iterator) = stream.iterator(0, start) else { continue };
        let mut last_seq = None;
        for _ in 0..64 {
            match iterator.next_batch(50) {
                Ok(batch) if batch.records.is_empty() => break,
                Ok(batch) => {
                    for r in &batch.records {
                        assert!(last_seq.is_none_or(|l| r.seq > l), "records out of order from {start:?}");
                        last_seq = Some(r.seq);
                    }
                    if i == 0 {
                        summary.records += batch.records.len();
                    }
                }
                Err(_) => {
                    if i == 0 {
                        summary.read_failed = true;
                    }
                    break;
                }
            }
        }
    }
    // Whatever recovery made of the files, a record written now is served back.
    if let Ok(put) = stream.put(b"fuzz", b"after recovery") {
        let mut iterator = stream.iterator(0, StartingPosition::AtSequence(put.seq)).expect("iterator at a fresh put");
        let batch = iterator.next_batch(1).expect("read of a fresh put");
        assert_eq!(batch.records.first().map(|r| (r.seq, &r.data[..])), Some((put.seq, &b"after recovery"[..])));
    }
    let _ = engine.run_maintenance();
    summary
}
