//! No allocation sized by an untrusted number: every count and length read from disk is
//! bounded by the bytes that are there before anything is allocated for it.
//!
//! Each case is a hostile input whose checksum is valid (so the decoders behind the CRC see
//! it). A global allocator records the largest single allocation made on the decoding thread;
//! it must stay within a fixed multiple of the input's size, and the decode must fail with an
//! error, not abort the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use weir::format::batch::{
    decode_frame, decode_records, EncodedBatch, FrameError, FrameLayout, FrameStamp, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN,
    MAX_ZSTD_RATIO,
};
use weir::format::index::{INDEX_ENTRY_LEN, INDEX_HEADER_LEN};
use weir::format::lost::LostRanges;
use weir::format::queue_record::{MessageRecord, QueueRecord, StoredAttribute, OWN_SEQ};
use weir::format::{Compression, IndexEntry, IndexFile, RecordRef, SegmentHeader};
use weir::log::recovery::scan_segment;

/// Passes every call to the system allocator and remembers, per thread, the largest size asked
/// for while tracking is on.
struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from `System` with `layout`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result with the largest single allocation it made.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

/// What a decoder may allocate for an input of `len` bytes: a small multiple of it (records
/// are larger in memory than on disk), plus room for error messages.
fn allowed(len: usize) -> usize {
    16 * len + 4096
}

/// The salt of the segment every frame here belongs to.
const SALT: u64 = 0x5eed_5a17;

fn frame(records: &[&[u8]], compression: Compression) -> Vec<u8> {
    let refs: Vec<RecordRef<'_>> = records.iter().map(|v| RecordRef { key: b"", value: v }).collect();
    EncodedBatch::encode(&refs, compression)
        .seal(&FrameStamp { base_seq: 7, time_ms: 1_000, salt: SALT, durable_seq: 7 })
        .to_vec()
}

/// Rewrites a frame's checksum after a field was changed, as a hostile writer would.
fn fix_crc(frame: &mut [u8]) {
    let crc = crc32fast::hash(&frame[12..]);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
}

fn set_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Decodes a whole frame the way a read does; returns the error it fails with.
fn decode(bytes: &[u8]) -> String {
    let header = match decode_frame(bytes, FrameLayout::V2 { salt: SALT }) {
        Ok(h) => h,
        Err(FrameError::Corrupt(e)) => return e.reason,
        Err(FrameError::Incomplete { needed }) => panic!("a whole frame read as incomplete (needs {needed})"),
    };
    match decode_records(&header, &Bytes::copy_from_slice(bytes)) {
        Ok(records) => panic!("a hostile frame decoded into {} records", records.len()),
        Err(e) => e.reason,
    }
}

/// Checks one hostile frame: it fails to decode, allocating no more than its size allows, and
/// a segment holding it scans to a damaged or torn end the same way.
fn check_hostile_frame(name: &str, bytes: &[u8], allowance: usize) {
    let (reason, largest) = largest_allocation(|| decode(bytes));
    assert!(largest <= allowance, "{name}: {largest} bytes allocated for a {}-byte frame ({reason})", bytes.len());
    let mut segment = SegmentHeader::new(7, SALT, 7).encode();
    segment.extend_from_slice(bytes);
    let segment = Bytes::from(segment);
    let (outcome, largest) = largest_allocation(|| scan_segment(&segment, 7, 4096));
    assert!(largest <= allowance + segment.len(), "{name}: the scan allocated {largest} bytes");
    assert_eq!(outcome.frames, 0, "{name}: the hostile frame is not taken as whole");
}

#[test]
fn a_record_count_of_u32_max_behind_a_valid_checksum_is_corrupt_without_allocating_for_it() {
    for compression in [Compression::None, Compression::Auto] {
        let mut bytes = frame(&[b"one record", &[b'a'; 4000]], compression);
        set_u32(&mut bytes, 24, u32::MAX);
        fix_crc(&mut bytes);
        check_hostile_frame(&format!("record count u32::MAX ({compression:?})"), &bytes, allowed(bytes.len()));
    }
}

#[test]
fn record_counts_the_payload_cannot_hold_are_corrupt() {
    // Every record takes at least 8 bytes of payload: a 16-byte payload holds at most 2.
    let mut bytes = frame(&[b"", b""], Compression::None);
    for count in [3, 1000, 1 << 20, u32::MAX / 2] {
        set_u32(&mut bytes, 24, count);
        fix_crc(&mut bytes);
        check_hostile_frame(&format!("record count {count}"), &bytes, allowed(bytes.len()));
    }
}

#[test]
fn a_compressed_payload_claiming_more_than_zstd_can_expand_to_is_corrupt_before_decompressing() {
    let mut bytes = frame(&[&[b'z'; 8192]], Compression::Auto);
    assert!(decode_frame(&bytes, FrameLayout::V2 { salt: SALT }).expect("valid").compressed, "the sample compresses");
    let stored = bytes.len() - FRAME_HEADER_LEN;
    for claimed in [stored * MAX_ZSTD_RATIO + 1, MAX_PAYLOAD_LEN] {
        set_u32(&mut bytes, 28, claimed as u32);
        fix_crc(&mut bytes);
        check_hostile_frame(&format!("payload length {claimed}"), &bytes, allowed(bytes.len()));
    }
}

#[test]
fn key_and_value_lengths_past_the_payload_are_corrupt() {
    let original = frame(&[b"value"], Compression::None);
    for (at, len) in [(FRAME_HEADER_LEN, u32::MAX), (FRAME_HEADER_LEN + 4, u32::MAX), (FRAME_HEADER_LEN + 4, 6)] {
        let mut bytes = original.clone();
        set_u32(&mut bytes, at, len);
        fix_crc(&mut bytes);
        check_hostile_frame(&format!("length {len} at {at}"), &bytes, allowed(bytes.len()));
    }
}

#[test]
fn an_index_claiming_more_entries_than_it_holds_is_corrupt() {
    let index = IndexFile {
        segment_len: 1000,
        next_seq: 10,
        last_time_ms: 5,
        entries: vec![IndexEntry { seq: 0, offset: 32, time_ms: 5 }],
    };
    let mut bytes = index.encode();
    assert_eq!(bytes.len(), INDEX_HEADER_LEN + INDEX_ENTRY_LEN);
    for count in [2, u32::MAX] {
        set_u32(&mut bytes, 12, count);
        let crc = {
            let mut h = crc32fast::Hasher::new();
            h.update(&bytes[..44]);
            h.update(&bytes[INDEX_HEADER_LEN..]);
            h.finalize()
        };
        set_u32(&mut bytes, 44, crc);
        let (result, largest) = largest_allocation(|| IndexFile::decode(&bytes));
        assert!(result.is_err(), "count {count}");
        assert!(largest <= allowed(bytes.len()), "count {count}: {largest} bytes allocated");
    }
}

#[test]
fn queue_records_with_hostile_counts_and_lengths_are_corrupt() {
    let record = QueueRecord::Message(MessageRecord {
        queue: 1,
        key: OWN_SEQ,
        message_id: [3; 16],
        sent_ms: 1,
        visible_at_ms: 1,
        first_receive_ms: 0,
        receive_count: 0,
        origin_queue: 0,
        group: Bytes::new(),
        dedup: Bytes::new(),
        trace_header: Bytes::new(),
        sender_id: Bytes::new(),
        attributes: vec![StoredAttribute {
            name: "a".into(),
            data_type: "String".into(),
            value: Bytes::from_static(b"v"),
        }],
        body: Bytes::from_static(b"body"),
    });
    let encoded = record.encode();
    // The attribute count follows the fixed fields and the four empty short strings (group,
    // deduplication id, trace header, sender id).
    let attr_count_at = 1 + 4 + 8 + 16 + 8 + 8 + 8 + 4 + 4 + 2 + 2 + 2 + 2;
    assert_eq!(u16::from_le_bytes([encoded[attr_count_at], encoded[attr_count_at + 1]]), 1);
    let body_len_at = encoded.len() - 4 - 4;
    let mut cases = Vec::new();
    for (at, patch) in [
        (attr_count_at, u16::MAX.to_le_bytes().to_vec()),
        (attr_count_at, 2u16.to_le_bytes().to_vec()),
        (body_len_at, u32::MAX.to_le_bytes().to_vec()),
        (body_len_at, 5u32.to_le_bytes().to_vec()),
    ] {
        let mut bytes = encoded.clone();
        bytes[at..at + patch.len()].copy_from_slice(&patch);
        cases.push(bytes);
    }
    for bytes in cases {
        let value = Bytes::from(bytes);
        let (result, largest) = largest_allocation(|| QueueRecord::decode(&value));
        assert!(result.is_err(), "{value:?} decoded");
        assert!(largest <= allowed(value.len()), "{largest} bytes allocated for {} bytes", value.len());
    }
}

#[test]
fn lost_ranges_allocate_in_proportion_to_the_file() {
    for text in [&b"{\"lost\":[[1,2],[3,4]]}"[..], b"{\"lost\":[[18446744073709551615,0]]}", b"{\"lost\":[[1,2]"] {
        let (_, largest) = largest_allocation(|| LostRanges::decode(text));
        assert!(largest <= allowed(text.len()), "{largest} bytes allocated");
    }
}
