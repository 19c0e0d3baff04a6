//! Batch frames: the unit of append, checksum and compression.
//!
//! ```text
//! offset size field
//!   0     4  magic "WBF2"   ("WBF1" in version-1 segments)
//!   4     4  frame_len      whole frame in bytes, header included
//!   8     4  crc32          CRC-32 (IEEE) of bytes [12, frame_len)
//!  12     2  flags          bit 0: payload is zstd-compressed; other bits zero
//!  14     2  reserved       zero
//!  16     8  base_seq       sequence number of the first record
//!  24     4  record_count   >= 1; records carry base_seq .. base_seq + record_count - 1
//!  28     4  payload_len    length of the payload once decompressed
//!  32     8  time_ms        append time, milliseconds since the Unix epoch
//!  40     8  salt           the segment's salt                  } version 2 only: a version-1
//!  48     8  durable_seq    <= base_seq: every record below it  } frame's payload starts at 40
//!                           was durable when this frame was written
//!  56     .  payload        frame_len - 56 bytes, as stored (compressed or not)
//! payload (uncompressed) = record_count x { key_len u32 | value_len u32 | key | value }
//! ```
//!
//! A sealed frame (flag bit 1, in an encrypted log: `format-spec.md` section 11) stores
//! `key_id u32 | ciphertext | tag (16 bytes)` as its payload: the payload above (compressed
//! first, if it pays) encrypted with AES-256-GCM under the log's data key `key_id`, the nonce
//! its `base_seq`, the header (all but its CRC) and `key_id` bound as associated data. The CRC
//! covers the stored bytes as in any frame, so a frame's structure checks without the key.

use bytes::Bytes;

use super::sealed::{frame_nonce, NotAuthentic, SealingKey, TAG_LEN};
use super::{le_u32, le_u64, DecodeError};

/// Magic bytes that open every frame of a version-2 segment; they let recovery and salvage
/// find frame boundaries.
pub const FRAME_MAGIC: [u8; 4] = *b"WBF2";
/// Bytes before the payload of a version-2 frame.
pub const FRAME_HEADER_LEN: usize = 56;
/// Magic bytes of a frame of a version-1 segment.
pub const FRAME_V1_MAGIC: [u8; 4] = *b"WBF1";
/// Bytes before the payload of a version-1 frame.
pub const FRAME_V1_HEADER_LEN: usize = 40;
/// Per-record overhead inside the payload.
pub const RECORD_OVERHEAD: usize = 8;
/// The one size limit of a frame: the largest payload (records with their 8-byte headers,
/// before compression) that a writer may put in a frame and a reader accepts. The writer
/// checks a batch against it before writing anything ([`payload_len`]), so whatever is
/// acknowledged can be read back whether or not it compressed; it also bounds the memory a
/// decode needs. 16 MiB queue messages (SQS's largest configurable size) plus headroom for a
/// batch of them.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// Largest frame accepted, header included: a header and the largest payload, stored
/// uncompressed (a payload is only stored compressed when that makes it smaller).
pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + MAX_PAYLOAD_LEN;
/// The most a zstd frame can expand its bytes: a block of at most 128 KiB from 4 bytes (a 3-byte
/// block header and one byte repeated). A compressed payload claiming more than this many times
/// its stored bytes is corrupt, which bounds the buffer a decompression allocates.
pub const MAX_ZSTD_RATIO: usize = (128 << 10) / 4;
/// Payloads smaller than this are never compressed: zstd's frame overhead eats the gain.
pub const COMPRESS_MIN_PAYLOAD: usize = 1024;
const FLAG_ZSTD: u16 = 1;
const FLAG_SEALED: u16 = 2;
/// Bytes a sealed frame's stored payload adds to the sealed bytes: the data key's id before
/// them, the tag after.
pub const SEALED_OVERHEAD: usize = 4 + TAG_LEN;
/// Bytes of a sealed frame that its tag binds in the clear: its header (less the CRC, which
/// covers the ciphertext) and the data key's id.
const SEALED_AAD_LEN: usize = (FRAME_HEADER_LEN - 4) + 4;
/// Payloads at least this large have their CRC computed outside the writer's lock and
/// combined at seal time.
const COMBINE_CRC_ABOVE: usize = 16 << 10;

/// Which frames a segment holds: what a frame must look like to belong to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FrameLayout {
    /// Version-1 frames ("WBF1", 40-byte header).
    V1,
    /// Version-2 frames ("WBF2", 56-byte header) carrying this salt.
    V2 {
        /// The segment's salt.
        salt: u64,
    },
}

impl std::fmt::Debug for FrameLayout {
    /// Never shows the salt.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameLayout::V1 => "V1",
            FrameLayout::V2 { .. } => "V2",
        })
    }
}

impl FrameLayout {
    /// The magic that opens such a frame.
    pub fn magic(&self) -> [u8; 4] {
        match self {
            FrameLayout::V1 => FRAME_V1_MAGIC,
            FrameLayout::V2 { .. } => FRAME_MAGIC,
        }
    }

    /// Bytes before the payload.
    pub fn header_len(&self) -> usize {
        match self {
            FrameLayout::V1 => FRAME_V1_HEADER_LEN,
            FrameLayout::V2 { .. } => FRAME_HEADER_LEN,
        }
    }
}

/// What the writer stamps on a frame under its lock (see [`EncodedBatch::seal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStamp {
    /// Sequence number of the first record.
    pub base_seq: u64,
    /// Append time.
    pub time_ms: u64,
    /// The salt of the segment the frame goes into.
    pub salt: u64,
    /// Every record below this was durable (a completed fsync covered it) when the frame was
    /// written; at most `base_seq`.
    pub durable_seq: u64,
}

/// Whether the writer may compress a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Never compress.
    None,
    /// Compress with zstd when it saves at least an eighth of the payload.
    #[default]
    Auto,
}

/// A record as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number within the log.
    pub seq: u64,
    /// Its append time (milliseconds since the Unix epoch), shared by its whole batch.
    pub time_ms: u64,
    /// The key (a stream's partition key; empty where a model has none).
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

/// A record to append, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
}

/// The decoded fixed part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Whole frame length in bytes.
    pub frame_len: u32,
    /// Bytes before the payload ([`FRAME_HEADER_LEN`], or [`FRAME_V1_HEADER_LEN`] in a
    /// version-1 segment).
    pub header_len: u32,
    /// Every record below this was durable when the frame was written (version 2; 0 in a
    /// version-1 frame, which does not say).
    pub durable_seq: u64,
    /// True if the payload is zstd-compressed.
    pub compressed: bool,
    /// True if the payload is sealed (encrypted and authenticated) under a data key of the
    /// log: [`sealed_key_id`] names it, and only [`decode_records_keyed`] reads it.
    pub sealed: bool,
    /// Sequence number of the first record.
    pub base_seq: u64,
    /// Number of records.
    pub record_count: u32,
    /// Decompressed payload length.
    pub payload_len: u32,
    /// Append time.
    pub time_ms: u64,
}

impl BatchHeader {
    /// One past the last sequence number in the frame. [`decode_frame`] refuses frames whose
    /// numbers overflow, so this only saturates on a header made by hand.
    pub fn next_seq(&self) -> u64 {
        self.base_seq.saturating_add(u64::from(self.record_count))
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends before the frame does: at the tail of a log, a torn write.
    Incomplete {
        /// Bytes the frame needs, as far as can be told.
        needed: usize,
    },
    /// The bytes are not a valid frame.
    Corrupt(DecodeError),
}

/// A batch encoded once (as a version-2 frame), outside any lock; [`EncodedBatch::seal`] stamps
/// the sequence number, time, salt and durable point under the writer's lock and finishes the
/// checksum without rereading the payload.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    buf: Vec<u8>,
    payload_crc: crc32fast::Hasher,
    record_count: u32,
    /// Room is left for sealing: the data key's id after the header, the tag at the end.
    sealed: bool,
}

/// Bytes one record takes in a frame's payload (before compression).
pub fn record_payload_len(key_len: usize, value_len: usize) -> usize {
    RECORD_OVERHEAD.saturating_add(key_len).saturating_add(value_len)
}

/// Bytes the payload of a frame of `records` takes before compression: what
/// [`MAX_PAYLOAD_LEN`] bounds. Saturates instead of overflowing.
pub fn payload_len(records: &[RecordRef<'_>]) -> usize {
    records.iter().fold(0usize, |sum, r| sum.saturating_add(record_payload_len(r.key.len(), r.value.len())))
}

impl EncodedBatch {
    /// Encodes records into a frame whose sequence number and time are not yet set.
    ///
    /// Panics only in debug builds if `records` is empty or their [`payload_len`] is over
    /// [`MAX_PAYLOAD_LEN`]; callers check sizes first (the log's writer does).
    pub fn encode(records: &[RecordRef<'_>], compression: Compression) -> EncodedBatch {
        EncodedBatch::encode_for(records, compression, false)
    }

    /// [`EncodedBatch::encode`] for a frame that [`EncodedBatch::seal_with`] seals under a data
    /// key (`sealed`) or not.
    pub fn encode_for(records: &[RecordRef<'_>], compression: Compression, sealed: bool) -> EncodedBatch {
        debug_assert!(!records.is_empty(), "a frame holds at least one record");
        let payload_len = payload_len(records);
        debug_assert!(payload_len <= MAX_PAYLOAD_LEN, "a frame no reader would accept");
        let start = if sealed { FRAME_HEADER_LEN + 4 } else { FRAME_HEADER_LEN };
        let mut buf = Vec::with_capacity(start + payload_len + if sealed { TAG_LEN } else { 0 });
        buf.resize(start, 0);
        for r in records {
            buf.extend_from_slice(&(r.key.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
            buf.extend_from_slice(r.key);
            buf.extend_from_slice(r.value);
        }
        let mut flags = 0u16;
        if compression == Compression::Auto && payload_len >= COMPRESS_MIN_PAYLOAD && sample_compresses(&buf[start..]) {
            if let Ok(packed) = compress(&buf[start..]) {
                if packed.len() <= payload_len - payload_len / 8 {
                    buf.truncate(start);
                    buf.extend_from_slice(&packed);
                    flags |= FLAG_ZSTD;
                }
            }
        }
        if sealed {
            flags |= FLAG_SEALED;
            buf.resize(buf.len() + TAG_LEN, 0);
        }
        buf[0..4].copy_from_slice(&FRAME_MAGIC);
        let frame_len = buf.len() as u32;
        buf[4..8].copy_from_slice(&frame_len.to_le_bytes());
        buf[12..14].copy_from_slice(&flags.to_le_bytes());
        buf[24..28].copy_from_slice(&(records.len() as u32).to_le_bytes());
        buf[28..32].copy_from_slice(&(payload_len as u32).to_le_bytes());
        let mut payload_crc = crc32fast::Hasher::new();
        if !sealed && buf.len() - FRAME_HEADER_LEN >= COMBINE_CRC_ABOVE {
            payload_crc.update(&buf[FRAME_HEADER_LEN..]);
        }
        EncodedBatch { buf, payload_crc, record_count: records.len() as u32, sealed }
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Never true: a frame has a header.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Number of records in the frame.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// True if the payload was compressed.
    pub fn is_compressed(&self) -> bool {
        self.buf[12] & FLAG_ZSTD as u8 != 0
    }

    /// Stamps sequence number, time, salt and durable point and completes the checksum;
    /// returns the frame's bytes.
    ///
    /// Panics only in debug builds if the batch was encoded for sealing: use
    /// [`EncodedBatch::seal_with`].
    pub fn seal(&mut self, stamp: &FrameStamp) -> &[u8] {
        debug_assert!(!self.sealed, "a batch encoded for sealing needs its data key");
        self.stamp(stamp);
        // Combining CRCs costs about as much as hashing 16 KiB again: small frames are cheaper
        // to hash whole under the writer's lock, large ones reuse the payload's CRC.
        let crc = if self.buf.len() - FRAME_HEADER_LEN < COMBINE_CRC_ABOVE {
            crc32fast::hash(&self.buf[12..])
        } else {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&self.buf[12..FRAME_HEADER_LEN]);
            crc.combine(&self.payload_crc);
            crc.finalize()
        };
        self.buf[8..12].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }

    /// True if the batch was encoded for sealing ([`EncodedBatch::encode_for`]).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Stamps the frame as [`EncodedBatch::seal`] does and, for a batch encoded for sealing,
    /// encrypts its payload under `key` (the log's data key `key_id`) with `stamp.base_seq` as
    /// the nonce, binding the header and `key_id`. The caller guarantees that no other frame is
    /// ever sealed under `key` with the same `base_seq`.
    ///
    /// Panics only in debug builds if a key is given for a batch not encoded for sealing, or
    /// none for one that was.
    pub fn seal_with(&mut self, stamp: &FrameStamp, key: Option<(u32, &SealingKey)>) -> &[u8] {
        let Some((key_id, key)) = key else { return self.seal(stamp) };
        debug_assert!(self.sealed, "a batch encoded plain has no room for sealing");
        self.stamp(stamp);
        self.buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4].copy_from_slice(&key_id.to_le_bytes());
        let aad = sealed_aad(&self.buf);
        let end = self.buf.len() - TAG_LEN;
        let tag = key.seal_in_place(&frame_nonce(stamp.base_seq), &aad, &mut self.buf[FRAME_HEADER_LEN + 4..end]);
        self.buf[end..].copy_from_slice(&tag);
        let crc = crc32fast::hash(&self.buf[12..]);
        self.buf[8..12].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }

    fn stamp(&mut self, stamp: &FrameStamp) {
        debug_assert!(stamp.durable_seq <= stamp.base_seq, "a frame cannot vouch for its own records");
        self.buf[16..24].copy_from_slice(&stamp.base_seq.to_le_bytes());
        self.buf[32..40].copy_from_slice(&stamp.time_ms.to_le_bytes());
        self.buf[40..48].copy_from_slice(&stamp.salt.to_le_bytes());
        self.buf[48..56].copy_from_slice(&stamp.durable_seq.to_le_bytes());
    }
}

/// What a sealed frame's tag binds besides its ciphertext: its header bytes `[0, 8)` and
/// `[12, 56)` (all but the CRC) and its data key's id (`[56, 60)`). `frame` holds at least
/// that much.
fn sealed_aad(frame: &[u8]) -> [u8; SEALED_AAD_LEN] {
    let mut aad = [0u8; SEALED_AAD_LEN];
    aad[..8].copy_from_slice(&frame[..8]);
    aad[8..].copy_from_slice(&frame[12..FRAME_HEADER_LEN + 4]);
    aad
}

/// The id of the data key a sealed frame (as checked by [`decode_frame`]) was sealed under.
pub fn sealed_key_id(header: &BatchHeader, frame: &[u8]) -> Option<u32> {
    let at = header.header_len as usize;
    (header.sealed && frame.len() >= at + 4).then(|| le_u32(frame, at))
}

/// The sequence range and length of the frame at the start of `buf`, from its header alone
/// (magic, salt and length bounds checked, checksum NOT checked): for stepping over frames a
/// read does not return. Anything served must still go through [`decode_frame`].
pub fn peek_frame(buf: &[u8], layout: FrameLayout) -> Option<(usize, u64, u64)> {
    let header_len = layout.header_len();
    if buf.len() < header_len || buf[0..4] != layout.magic() {
        return None;
    }
    if let FrameLayout::V2 { salt } = layout {
        if le_u64(buf, 40) != salt {
            return None;
        }
    }
    let frame_len = le_u32(buf, 4) as usize;
    if !(header_len..=MAX_FRAME_LEN).contains(&frame_len) || buf.len() < frame_len {
        return None;
    }
    let base_seq = le_u64(buf, 16);
    let next_seq = base_seq.checked_add(u64::from(le_u32(buf, 24)))?;
    Some((frame_len, base_seq, next_seq))
}

/// Bytes of a large payload tried first: if they do not compress, the payload is not tried.
const COMPRESS_SAMPLE: usize = 4096;

/// True if a payload is worth compressing: small ones always are tried; a large one only if
/// a sample from its middle saves an eighth (compressing incompressible data cost 25x the
/// encoding itself).
fn sample_compresses(payload: &[u8]) -> bool {
    if payload.len() <= 2 * COMPRESS_SAMPLE {
        return true;
    }
    let start = payload.len() / 2 - COMPRESS_SAMPLE / 2;
    let sample = &payload[start..start + COMPRESS_SAMPLE];
    compress(sample).is_ok_and(|packed| packed.len() <= COMPRESS_SAMPLE - COMPRESS_SAMPLE / 8)
}

type Cached<C> = std::thread::LocalKey<std::cell::RefCell<Option<C>>>;

thread_local! {
    /// Zstd contexts, one of each per thread, made on first use: making one per frame was a
    /// fifth of recovery (decompression) and showed in the put profile (compression).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `work` with this thread's context from `cache`, making it with `make` the first time.
fn with_context<C, R>(
    cache: &'static Cached<C>,
    make: impl FnOnce() -> std::io::Result<C>,
    work: impl FnOnce(&mut C) -> std::io::Result<R>,
) -> std::io::Result<R> {
    cache.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut context = match slot.take() {
            Some(context) => context,
            None => make()?,
        };
        let result = work(&mut context);
        *slot = Some(context);
        result
    })
}

fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    with_context(&COMPRESSOR, || zstd::bulk::Compressor::new(1), |c| c.compress(data))
}

fn decompress(stored: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    with_context(&DECOMPRESSOR, zstd::bulk::Decompressor::new, |d| d.decompress(stored, capacity))
}

/// Reads and checks the frame at the start of `buf` as a frame of a segment of `layout`:
/// magic, length, checksum, salt and header fields. Returns the header; the stored payload is
/// `buf[header.header_len..header.frame_len]`.
pub fn decode_frame(buf: &[u8], layout: FrameLayout) -> Result<BatchHeader, FrameError> {
    let header_len = layout.header_len();
    if buf.len() < 8 {
        return Err(FrameError::Incomplete { needed: header_len });
    }
    if buf[0..4] != layout.magic() {
        return Err(FrameError::Corrupt(DecodeError::new(0, "no frame magic")));
    }
    let frame_len = le_u32(buf, 4) as usize;
    if !(header_len..=MAX_FRAME_LEN).contains(&frame_len) {
        return Err(FrameError::Corrupt(DecodeError::new(4, format!("frame length {frame_len} out of range"))));
    }
    if buf.len() < frame_len {
        return Err(FrameError::Incomplete { needed: frame_len });
    }
    let stored_crc = le_u32(buf, 8);
    let actual_crc = crc32fast::hash(&buf[12..frame_len]);
    if stored_crc != actual_crc {
        return Err(FrameError::Corrupt(DecodeError::new(
            8,
            format!("frame checksum mismatch (stored {stored_crc:#010x}, computed {actual_crc:#010x})"),
        )));
    }
    let flags = u16::from_le_bytes([buf[12], buf[13]]);
    // Only version-2 frames are ever sealed (encryption came after version 1).
    let known = if layout == FrameLayout::V1 { FLAG_ZSTD } else { FLAG_ZSTD | FLAG_SEALED };
    if flags & !known != 0 || buf[14] != 0 || buf[15] != 0 {
        return Err(FrameError::Corrupt(DecodeError::new(12, format!("unknown frame flags {flags:#06x}"))));
    }
    let durable_seq = match layout {
        FrameLayout::V1 => 0,
        FrameLayout::V2 { salt } => {
            // Checked after the CRC: a frame copied from another segment (or hidden in a stored
            // value) is whole and still not this segment's.
            if le_u64(buf, 40) != salt {
                return Err(FrameError::Corrupt(DecodeError::new(40, "frame belongs to another segment (salt)")));
            }
            le_u64(buf, 48)
        }
    };
    let header = BatchHeader {
        frame_len: frame_len as u32,
        header_len: header_len as u32,
        durable_seq,
        compressed: flags & FLAG_ZSTD != 0,
        sealed: flags & FLAG_SEALED != 0,
        base_seq: le_u64(buf, 16),
        record_count: le_u32(buf, 24),
        payload_len: le_u32(buf, 28),
        time_ms: le_u64(buf, 32),
    };
    if header.record_count == 0 {
        return Err(FrameError::Corrupt(DecodeError::new(24, "frame with no records")));
    }
    if header.payload_len as usize > MAX_PAYLOAD_LEN {
        return Err(FrameError::Corrupt(DecodeError::new(28, "payload length over the limit")));
    }
    if header.base_seq.checked_add(u64::from(header.record_count)).is_none() {
        return Err(FrameError::Corrupt(DecodeError::new(16, "sequence numbers overflow")));
    }
    if header.durable_seq > header.base_seq {
        return Err(FrameError::Corrupt(DecodeError::new(48, "durable point past the frame's own records")));
    }
    let overhead = if header.sealed { SEALED_OVERHEAD } else { 0 };
    if frame_len - header_len < overhead {
        return Err(FrameError::Corrupt(DecodeError::new(4, "sealed frame too short for its key id and tag")));
    }
    if !header.compressed && header.payload_len as usize != frame_len - header_len - overhead {
        return Err(FrameError::Corrupt(DecodeError::new(28, "payload length disagrees with frame length")));
    }
    Ok(header)
}

/// Decodes the records of a checked frame. `frame` holds the whole frame (as returned by a
/// successful [`decode_frame`]); records borrow from it when it is not compressed.
///
/// Nothing is allocated for a count or length the frame's bytes cannot back: the record count
/// is checked against the payload (every record takes [`RECORD_OVERHEAD`] bytes at least), and
/// a compressed payload's length against what zstd can expand its stored bytes to
/// ([`MAX_ZSTD_RATIO`]), before any buffer is sized by them.
pub fn decode_records(header: &BatchHeader, frame: &Bytes) -> Result<Vec<Record>, DecodeError> {
    decode_records_keyed(header, frame, None)
}

/// The data keys of an encrypted log, by id, for reading its sealed frames.
pub trait FrameKeys {
    /// The data key `id`, if the log has it.
    fn frame_key(&self, id: u32) -> Option<std::sync::Arc<SealingKey>>;
}

/// [`decode_records`] for a frame of a log that may be encrypted: with `keys` (the log is
/// encrypted) a frame must be sealed, and its tag is checked under the data key it names
/// before any byte of it is used; without them a sealed frame cannot be read. Sealed records
/// are copies (decrypted), never slices of `frame`.
pub fn decode_records_keyed(
    header: &BatchHeader,
    frame: &Bytes,
    keys: Option<&dyn FrameKeys>,
) -> Result<Vec<Record>, DecodeError> {
    let frame_len = header.frame_len as usize;
    let header_len = header.header_len as usize;
    if frame_len < header_len || frame_len > frame.len() {
        return Err(DecodeError::new(
            4,
            format!("frame length {frame_len} does not fit the {} bytes given", frame.len()),
        ));
    }
    let stored = match (header.sealed, keys) {
        (false, None) => frame.slice(header_len..frame_len),
        (false, Some(_)) => return Err(DecodeError::new(12, "a frame of an encrypted log that is not sealed")),
        (true, None) => return Err(DecodeError::new(12, "the frame is sealed: reading it needs the key")),
        (true, Some(keys)) => open_sealed(header, &frame[..frame_len], keys)?,
    };
    let payload_len = header.payload_len as usize;
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::new(28, "payload length over the limit"));
    }
    check_record_count(header.record_count, payload_len)?;
    let payload = if header.compressed {
        if payload_len > stored.len().saturating_mul(MAX_ZSTD_RATIO) {
            return Err(DecodeError::new(
                28,
                format!("payload length {payload_len} is more than {} stored bytes can decompress to", stored.len()),
            ));
        }
        let out = decompress(&stored, payload_len)
            .map_err(|e| DecodeError::new(header_len, format!("zstd payload does not decompress: {e}")))?;
        if out.len() != payload_len {
            return Err(DecodeError::new(28, "decompressed length disagrees with the header"));
        }
        Bytes::from(out)
    } else {
        stored
    };
    let mut records = Vec::with_capacity(header.record_count as usize);
    let mut at = 0usize;
    for i in 0..header.record_count {
        if payload.len() - at < RECORD_OVERHEAD {
            return Err(DecodeError::new(at, format!("record {i} header runs past the payload")));
        }
        let key_len = le_u32(&payload, at) as usize;
        let value_len = le_u32(&payload, at + 4) as usize;
        let start = at + RECORD_OVERHEAD;
        let end = start.checked_add(key_len).and_then(|k| k.checked_add(value_len));
        let end = match end {
            Some(end) if end <= payload.len() => end,
            _ => return Err(DecodeError::new(at, format!("record {i} runs past the payload"))),
        };
        let seq = header
            .base_seq
            .checked_add(u64::from(i))
            .ok_or_else(|| DecodeError::new(at, format!("record {i}: sequence number overflows")))?;
        records.push(Record {
            seq,
            time_ms: header.time_ms,
            key: payload.slice(start..start + key_len),
            value: payload.slice(start + key_len..end),
        });
        at = end;
    }
    if at != payload.len() {
        return Err(DecodeError::new(at, "bytes after the last record"));
    }
    Ok(records)
}

/// The stored payload of a sealed frame, decrypted once its tag checked out.
fn open_sealed(header: &BatchHeader, frame: &[u8], keys: &dyn FrameKeys) -> Result<Bytes, DecodeError> {
    let header_len = header.header_len as usize;
    if frame.len() < header_len + SEALED_OVERHEAD || header_len != FRAME_HEADER_LEN {
        return Err(DecodeError::new(4, "sealed frame too short for its key id and tag"));
    }
    let key_id = le_u32(frame, header_len);
    let key = keys.frame_key(key_id).ok_or_else(|| {
        DecodeError::new(
            header_len,
            format!("the frame is sealed under data key {key_id}, which the log's KEYS file does not hold"),
        )
    })?;
    let end = frame.len() - TAG_LEN;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&frame[end..]);
    let mut plain = frame[header_len + 4..end].to_vec();
    key.open_in_place(&frame_nonce(header.base_seq), &sealed_aad(frame), &mut plain, &tag).map_err(|NotAuthentic| {
        DecodeError::new(end, "the frame does not authenticate under its data key (changed since it was written)")
    })?;
    Ok(Bytes::from(plain))
}

/// The same frame in the version-1 layout (no salt, no durable point): for tests that need a
/// data directory as version 1 wrote it.
#[cfg(test)]
pub(crate) fn v1_frame_from(v2: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v2.len() - (FRAME_HEADER_LEN - FRAME_V1_HEADER_LEN));
    out.extend_from_slice(&FRAME_V1_MAGIC);
    out.extend_from_slice(&v2[4..FRAME_V1_HEADER_LEN]);
    out.extend_from_slice(&v2[FRAME_HEADER_LEN..]);
    let len = out.len() as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&out[12..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a record count against the payload that must hold it, before anything is sized by it.
fn check_record_count(record_count: u32, payload_len: usize) -> Result<(), DecodeError> {
    let most = payload_len / RECORD_OVERHEAD;
    if record_count as usize > most {
        return Err(DecodeError::new(
            24,
            format!("{record_count} records cannot fit in a payload of {payload_len} bytes (at most {most})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: u64 = 0x0123_4567_89AB_CDEF;
    const LAYOUT: FrameLayout = FrameLayout::V2 { salt: SALT };

    fn stamp(base_seq: u64, durable_seq: u64) -> FrameStamp {
        FrameStamp { base_seq, time_ms: 1234, salt: SALT, durable_seq }
    }

    fn frame(records: &[(&[u8], &[u8])], compression: Compression, seq: u64) -> Vec<u8> {
        let refs: Vec<RecordRef> = records.iter().map(|(k, v)| RecordRef { key: k, value: v }).collect();
        let mut b = EncodedBatch::encode(&refs, compression);
        b.seal(&stamp(seq, seq.saturating_sub(2))).to_vec()
    }

    #[test]
    fn a_frame_carries_its_durable_point_and_belongs_only_to_its_salts_segment() {
        let bytes = frame(&[(b"k", b"v")], Compression::None, 10);
        let h = decode_frame(&bytes, LAYOUT).expect("valid frame");
        assert_eq!((h.durable_seq, h.header_len as usize), (8, FRAME_HEADER_LEN));
        let other = decode_frame(&bytes, FrameLayout::V2 { salt: SALT ^ 1 });
        assert!(matches!(other, Err(FrameError::Corrupt(ref e)) if e.offset == 40), "{other:?}");
        assert_eq!(peek_frame(&bytes, FrameLayout::V2 { salt: SALT ^ 1 }), None);
        assert!(decode_frame(&bytes, FrameLayout::V1).is_err(), "a version-2 frame is no version-1 frame");
    }

    #[test]
    fn a_frame_vouching_for_its_own_records_is_refused() {
        let mut b = EncodedBatch::encode(&[RecordRef { key: b"k", value: b"v" }], Compression::None);
        let mut bytes = b.seal(&stamp(10, 10)).to_vec();
        bytes[48..56].copy_from_slice(&11u64.to_le_bytes());
        let crc = crc32fast::hash(&bytes[12..]);
        bytes[8..12].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode_frame(&bytes, LAYOUT), Err(FrameError::Corrupt(ref e)) if e.offset == 48));
    }

    #[test]
    fn version_1_frames_decode_in_version_1_segments_only() {
        let v2 = frame(&[(b"k1", b"v1"), (b"k2", &[7; 3000])], Compression::Auto, 40);
        let v1 = v1_frame_from(&v2);
        let h = decode_frame(&v1, FrameLayout::V1).expect("valid version-1 frame");
        assert_eq!((h.base_seq, h.record_count, h.header_len as usize, h.durable_seq), (40, 2, FRAME_V1_HEADER_LEN, 0));
        let records = decode_records(&h, &Bytes::from(v1.clone())).expect("records");
        assert_eq!(records[1].value.as_ref(), &[7; 3000][..]);
        assert_eq!(peek_frame(&v1, FrameLayout::V1), Some((v1.len(), 40, 42)));
        assert!(decode_frame(&v1, LAYOUT).is_err());
    }

    #[test]
    fn frame_round_trips_with_and_without_compression() {
        let big = vec![b'a'; 10_000];
        for c in [Compression::None, Compression::Auto] {
            let bytes = frame(&[(b"k1", b"v1"), (b"", &big), (b"k3", b"")], c, 10);
            let h = decode_frame(&bytes, LAYOUT).expect("valid frame");
            assert_eq!(h.compressed, c == Compression::Auto);
            assert_eq!((h.base_seq, h.record_count, h.time_ms), (10, 3, 1234));
            let recs = decode_records(&h, &Bytes::from(bytes)).expect("records");
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[1].value.as_ref(), &big[..]);
            assert_eq!(recs[2].seq, 12);
            assert_eq!(recs[0].key.as_ref(), b"k1");
        }
    }

    #[test]
    fn incompressible_payload_is_stored_plain() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let bytes = frame(&[(b"k", &noise)], Compression::Auto, 0);
        assert!(!decode_frame(&bytes, LAYOUT).expect("valid").compressed);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = frame(&[(b"key", b"value"), (b"k2", b"v2")], Compression::None, 5);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(decode_frame(&b, LAYOUT).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_incomplete_not_corrupt() {
        let bytes = frame(&[(b"key", b"value")], Compression::None, 5);
        for cut in 0..bytes.len() {
            assert!(
                matches!(decode_frame(&bytes[..cut], LAYOUT), Err(FrameError::Incomplete { .. })),
                "cut at {cut} not reported as incomplete"
            );
        }
    }
}
