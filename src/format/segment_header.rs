//! The 32-byte header at the start of every segment file.

use super::{le_u32, le_u64, DecodeError};

/// Magic bytes that open every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WEIRSEG\0";
/// The segment format version this build writes and reads.
pub const SEGMENT_VERSION: u16 = 1;
/// Size of the segment header in bytes; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = 32;

/// What a segment header records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The sequence number the first frame of this segment would carry. Also the file's name,
    /// and for an empty segment the next sequence number of the log: it is how a log whose
    /// every record expired still knows where to continue.
    pub base_seq: u64,
}

impl SegmentHeader {
    /// Encodes the header: magic, version, reserved, header length, base sequence, reserved, CRC.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.base_seq.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, DecodeError> {
        if buf.len() < SEGMENT_HEADER_LEN {
            return Err(DecodeError::new(
                0,
                format!("segment header needs {SEGMENT_HEADER_LEN} bytes, file has {}", buf.len()),
            ));
        }
        if buf[0..8] != SEGMENT_MAGIC {
            return Err(DecodeError::new(0, "not a weir segment (bad magic)"));
        }
        let crc = le_u32(buf, 28);
        if crc != crc32fast::hash(&buf[0..28]) {
            return Err(DecodeError::new(28, "segment header checksum mismatch"));
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        if version != SEGMENT_VERSION {
            return Err(DecodeError::new(
                8,
                format!("segment format version {version} is not supported (this build reads {SEGMENT_VERSION})"),
            ));
        }
        let header_len = le_u32(buf, 12) as usize;
        if header_len != SEGMENT_HEADER_LEN {
            return Err(DecodeError::new(
                12,
                format!("segment header length {header_len} is not {SEGMENT_HEADER_LEN}"),
            ));
        }
        Ok(SegmentHeader { base_seq: le_u64(buf, 16) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = SegmentHeader { base_seq: 42 };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn every_flipped_byte_of_the_header_is_detected() {
        let bytes = SegmentHeader { base_seq: 7 }.encode();
        for i in 0..bytes.len() {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(SegmentHeader::decode(&b).is_err(), "flip at {i} not detected");
        }
    }
}
