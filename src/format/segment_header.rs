//! The header at the start of every segment file, in its two layouts.
//!
//! ```text
//! version 1 (32 bytes, read only)         version 2 (48 bytes, written since)
//!   0  8  magic "WEIRSEG\0"                 0  8  magic "WEIRSEG\0"
//!   8  2  version 1                         8  2  version 2
//!  10  2  reserved, zero                   10  2  reserved, zero
//!  12  4  header_len 32                    12  4  header_len 48
//!  16  8  base_seq                         16  8  base_seq
//!  24  4  reserved, zero                   24  8  salt          every frame of the segment carries it
//!  28  4  crc32 of [0, 28)                 32  8  skipped_from  [skipped_from, base_seq) was never written
//!                                          40  4  reserved, zero
//!                                          44  4  crc32 of [0, 44)
//! ```

use super::batch::FrameLayout;
use super::{le_u32, le_u64, DecodeError};

/// Magic bytes that open every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WEIRSEG\0";
/// The segment format version this build writes. Version 1 segments are still read.
pub const SEGMENT_VERSION: u16 = 2;
/// Size of a version-2 segment header in bytes: where its first frame starts.
pub const SEGMENT_HEADER_LEN: usize = 48;
/// Size of a version-1 segment header.
pub const SEGMENT_V1_HEADER_LEN: usize = 32;

/// What a segment header records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The sequence number the first frame of this segment would carry. Also the file's name,
    /// and for an empty segment the next sequence number of the log: it is how a log whose
    /// every record expired still knows where to continue.
    pub base_seq: u64,
    /// What the layout adds to version 1.
    pub version: SegmentVersion,
}

/// The layout of a segment and of its frames.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SegmentVersion {
    /// Written before sequence numbers were reserved: frames without salt or durable point.
    V1,
    /// The current layout.
    V2 {
        /// Random, fresh for every segment; a frame belongs to the segment only if it carries
        /// the same value (so a stored value that holds a frame can never pass for one).
        salt: u64,
        /// The numbers `[skipped_from, base_seq)` were reserved and never durably written (a
        /// crash lost them, or they were never used): readers pass over them as over trimmed
        /// records, and they are never handed out again. Equals `base_seq` when none were.
        skipped_from: u64,
    },
}

impl std::fmt::Debug for SegmentVersion {
    /// Never shows the salt: it is the one value callers must not learn.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentVersion::V1 => f.write_str("V1"),
            SegmentVersion::V2 { skipped_from, .. } => {
                f.debug_struct("V2").field("skipped_from", skipped_from).finish_non_exhaustive()
            }
        }
    }
}

impl SegmentHeader {
    /// A version-2 header.
    pub fn new(base_seq: u64, salt: u64, skipped_from: u64) -> SegmentHeader {
        SegmentHeader { base_seq, version: SegmentVersion::V2 { salt, skipped_from } }
    }

    /// The layout version number (1 or 2).
    pub fn version_number(&self) -> u16 {
        match self.version {
            SegmentVersion::V1 => 1,
            SegmentVersion::V2 { .. } => 2,
        }
    }

    /// Bytes of header: where the first frame starts.
    pub fn len(&self) -> usize {
        match self.version {
            SegmentVersion::V1 => SEGMENT_V1_HEADER_LEN,
            SegmentVersion::V2 { .. } => SEGMENT_HEADER_LEN,
        }
    }

    /// Never true: a header has bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first sequence number readers pass over before this segment (`base_seq` if none).
    pub fn skipped_from(&self) -> u64 {
        match self.version {
            SegmentVersion::V1 => self.base_seq,
            SegmentVersion::V2 { skipped_from, .. } => skipped_from,
        }
    }

    /// How the segment's frames are laid out.
    pub fn frame_layout(&self) -> FrameLayout {
        match self.version {
            SegmentVersion::V1 => FrameLayout::V1,
            SegmentVersion::V2 { salt, .. } => FrameLayout::V2 { salt },
        }
    }

    /// Encodes the header in its version's layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&self.version_number().to_le_bytes());
        out[12..16].copy_from_slice(&(self.len() as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.base_seq.to_le_bytes());
        if let SegmentVersion::V2 { salt, skipped_from } = self.version {
            out[24..32].copy_from_slice(&salt.to_le_bytes());
            out[32..40].copy_from_slice(&skipped_from.to_le_bytes());
        }
        let crc_at = self.len() - 4;
        let crc = crc32fast::hash(&out[..crc_at]);
        out[crc_at..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header of either version.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, DecodeError> {
        if buf.len() < SEGMENT_V1_HEADER_LEN {
            return Err(DecodeError::new(
                0,
                format!("segment header needs {SEGMENT_V1_HEADER_LEN} bytes, file has {}", buf.len()),
            ));
        }
        if buf[0..8] != SEGMENT_MAGIC {
            return Err(DecodeError::new(0, "not a weir segment (bad magic)"));
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        let len = match version {
            1 => SEGMENT_V1_HEADER_LEN,
            2 => SEGMENT_HEADER_LEN,
            // A flipped version byte must not pass for another layout: check the CRC of both.
            _ if [SEGMENT_V1_HEADER_LEN, SEGMENT_HEADER_LEN].iter().any(|&l| crc_matches(buf, l)) => {
                return Err(DecodeError::new(
                    8,
                    format!("segment format version {version} is not supported (this build reads 1 and 2)"),
                ))
            }
            _ => return Err(DecodeError::new(8, "segment header checksum mismatch")),
        };
        if buf.len() < len {
            return Err(DecodeError::new(0, format!("segment header needs {len} bytes, file has {}", buf.len())));
        }
        if !crc_matches(buf, len) {
            return Err(DecodeError::new(len - 4, "segment header checksum mismatch"));
        }
        let header_len = le_u32(buf, 12) as usize;
        if header_len != len {
            return Err(DecodeError::new(12, format!("segment header length {header_len} is not {len}")));
        }
        let base_seq = le_u64(buf, 16);
        if version == 1 {
            return Ok(SegmentHeader { base_seq, version: SegmentVersion::V1 });
        }
        let skipped_from = le_u64(buf, 32);
        if skipped_from > base_seq {
            return Err(DecodeError::new(32, "skipped range ends before it starts"));
        }
        Ok(SegmentHeader::new(base_seq, le_u64(buf, 24), skipped_from))
    }
}

fn crc_matches(buf: &[u8], len: usize) -> bool {
    buf.len() >= len && le_u32(buf, len - 4) == crc32fast::hash(&buf[..len - 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> [SegmentHeader; 3] {
        [
            SegmentHeader::new(42, 0xDEAD_BEEF_0123_4567, 42),
            SegmentHeader::new(1 << 40, 7, 5),
            SegmentHeader { base_seq: 9, version: SegmentVersion::V1 },
        ]
    }

    #[test]
    fn headers_of_both_versions_round_trip() {
        for h in headers() {
            let bytes = h.encode();
            assert_eq!(bytes.len(), h.len());
            assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
            let mut longer = bytes.clone();
            longer.extend_from_slice(b"WBF2 frames follow");
            assert_eq!(SegmentHeader::decode(&longer), Ok(h), "frames after the header are not its business");
        }
    }

    #[test]
    fn every_flipped_byte_of_the_header_is_detected() {
        for h in headers() {
            let bytes = h.encode();
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x10;
                assert!(SegmentHeader::decode(&b).is_err(), "{h:?}: flip at {i} not detected");
            }
        }
    }

    #[test]
    fn a_skipped_range_above_the_base_is_refused() {
        let bytes = SegmentHeader::new(5, 1, 6).encode();
        assert!(SegmentHeader::decode(&bytes).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_salt() {
        let shown = format!("{:?}", SegmentHeader::new(1, 0x5A17_5A17_5A17_5A17, 1));
        assert!(!shown.contains(&0x5A17_5A17_5A17_5A17u64.to_string()), "{shown}");
        assert!(!shown.to_lowercase().contains("5a17"), "{shown}");
    }
}
