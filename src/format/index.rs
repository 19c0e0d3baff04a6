//! Sparse index files: one per sealed segment, mapping sequence numbers and times to offsets.
//!
//! ```text
//! offset size field
//!   0     8  magic "WEIRIDX\0"
//!   8     2  version (1)
//!  10     2  reserved, zero
//!  12     4  entry_count
//!  16     8  segment_len     length of the segment file this index describes
//!  24     8  next_seq        one past the last sequence number in the segment
//!  32     8  last_time_ms    time of the last frame (0 for an empty segment)
//!  40     4  reserved, zero
//!  44     4  crc32           CRC-32 of bytes [0, 44) followed by all entries
//!  48  24*n  entries         { seq u64 | offset u64 | time_ms u64 }, strictly increasing seq,
//!                            offsets of frame starts, non-decreasing time
//! ```

use super::{le_u32, le_u64, DecodeError};

/// Magic bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"WEIRIDX\0";
/// Bytes before the first entry.
pub const INDEX_HEADER_LEN: usize = 48;
/// Bytes per entry.
pub const INDEX_ENTRY_LEN: usize = 24;

/// One sparse-index entry: the frame that starts at `offset` begins with record `seq`,
/// appended at `time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// First sequence number of the frame.
    pub seq: u64,
    /// Offset of the frame within its segment file.
    pub offset: u64,
    /// Append time of the frame.
    pub time_ms: u64,
}

/// The contents of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Length of the described segment; a segment of another length has changed since.
    pub segment_len: u64,
    /// One past the segment's last sequence number.
    pub next_seq: u64,
    /// Time of the segment's last frame.
    pub last_time_ms: u64,
    /// The entries.
    pub entries: Vec<IndexEntry>,
}

impl IndexFile {
    /// Encodes the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + self.entries.len() * INDEX_ENTRY_LEN);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.segment_len.to_le_bytes());
        out.extend_from_slice(&self.next_seq.to_le_bytes());
        out.extend_from_slice(&self.last_time_ms.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&[0; 4]); // crc, filled below
        for e in &self.entries {
            out.extend_from_slice(&e.seq.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.time_ms.to_le_bytes());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out[0..44]);
        crc.update(&out[INDEX_HEADER_LEN..]);
        let crc = crc.finalize();
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks an index file, including the ordering of its entries.
    pub fn decode(buf: &[u8]) -> Result<IndexFile, DecodeError> {
        if buf.len() < INDEX_HEADER_LEN {
            return Err(DecodeError::new(0, "index file shorter than its header"));
        }
        if buf[0..8] != INDEX_MAGIC {
            return Err(DecodeError::new(0, "not a weir index (bad magic)"));
        }
        let count = le_u32(buf, 12) as usize;
        let expected_len = count.checked_mul(INDEX_ENTRY_LEN).and_then(|n| n.checked_add(INDEX_HEADER_LEN));
        if expected_len != Some(buf.len()) {
            return Err(DecodeError::new(12, format!("index claims {count} entries but has {} bytes", buf.len())));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&buf[0..44]);
        crc.update(&buf[INDEX_HEADER_LEN..]);
        if crc.finalize() != le_u32(buf, 44) {
            return Err(DecodeError::new(44, "index checksum mismatch"));
        }
        if u16::from_le_bytes([buf[8], buf[9]]) != 1 {
            return Err(DecodeError::new(8, "unsupported index version"));
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN;
            let e = IndexEntry { seq: le_u64(buf, at), offset: le_u64(buf, at + 8), time_ms: le_u64(buf, at + 16) };
            if let Some(prev) = entries.last() {
                let prev: &IndexEntry = prev;
                if e.seq <= prev.seq || e.offset <= prev.offset || e.time_ms < prev.time_ms {
                    return Err(DecodeError::new(at, "index entries out of order"));
                }
            }
            entries.push(e);
        }
        let file = IndexFile {
            segment_len: le_u64(buf, 16),
            next_seq: le_u64(buf, 24),
            last_time_ms: le_u64(buf, 32),
            entries,
        };
        if file.entries.last().is_some_and(|e| e.seq >= file.next_seq || e.offset >= file.segment_len) {
            return Err(DecodeError::new(24, "index entries beyond the segment they describe"));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_detects_flips() {
        let file = IndexFile {
            segment_len: 1000,
            next_seq: 30,
            last_time_ms: 99,
            entries: vec![
                IndexEntry { seq: 10, offset: 32, time_ms: 5 },
                IndexEntry { seq: 20, offset: 500, time_ms: 7 },
            ],
        };
        let bytes = file.encode();
        assert_eq!(IndexFile::decode(&bytes), Ok(file));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x80;
            assert!(IndexFile::decode(&b).is_err(), "flip at {i} not detected");
        }
    }
}
