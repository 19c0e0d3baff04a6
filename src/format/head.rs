//! The `HEAD` file of a log: what the segments alone cannot say after a crash.
//!
//! ```text
//! offset size field
//!   0     8  magic "WEIRHEAD"
//!   8     2  version (1)
//!  10     2  reserved, zero
//!  12     4  len 48
//!  16     8  active_base    base of the active segment (its file was durably created first)
//!  24     8  reserved_next  no sequence number at or above this was ever handed out
//!  32     8  durable_next   every record below this was durable when the file was written
//!  40     4  reserved, zero
//!  44     4  crc32          CRC-32 of bytes [0, 44)
//! ```
//!
//! `durable_next <= reserved_next` and `active_base <= reserved_next`. Written atomically
//! (temporary file, fdatasync, rename, directory fsync), so a crash leaves the old or the new
//! contents, never a mix.

use serde::Serialize;

use super::{le_u32, le_u64, DecodeError};

/// File name of the head file inside a log directory.
pub const HEAD_FILE: &str = "HEAD";
/// Magic bytes of a head file.
pub const HEAD_MAGIC: [u8; 8] = *b"WEIRHEAD";
/// Size of a head file.
pub const HEAD_LEN: usize = 48;

/// What a log's `HEAD` file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Base sequence number of the active segment. A log whose last segment starts below it
    /// lost its active segment file.
    pub active_base: u64,
    /// No sequence number at or above this has been handed out: after a crash the log goes on
    /// from here at the lowest, so no number is ever given to two records.
    pub reserved_next: u64,
    /// Every record below this was durable when the file was written: a log that ends below
    /// it after a crash lost durable records (damage), not an unacknowledged tail.
    pub durable_next: u64,
}

impl Head {
    /// Encodes the file.
    pub fn encode(&self) -> [u8; HEAD_LEN] {
        let mut out = [0u8; HEAD_LEN];
        out[0..8].copy_from_slice(&HEAD_MAGIC);
        out[8..10].copy_from_slice(&1u16.to_le_bytes());
        out[12..16].copy_from_slice(&(HEAD_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.active_base.to_le_bytes());
        out[24..32].copy_from_slice(&self.reserved_next.to_le_bytes());
        out[32..40].copy_from_slice(&self.durable_next.to_le_bytes());
        let crc = crc32fast::hash(&out[0..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a head file.
    pub fn decode(buf: &[u8]) -> Result<Head, DecodeError> {
        if buf.len() != HEAD_LEN {
            return Err(DecodeError::new(0, format!("HEAD file is {} bytes, not {HEAD_LEN}", buf.len())));
        }
        if buf[0..8] != HEAD_MAGIC {
            return Err(DecodeError::new(0, "not a weir HEAD file (bad magic)"));
        }
        if le_u32(buf, 44) != crc32fast::hash(&buf[0..44]) {
            return Err(DecodeError::new(44, "HEAD checksum mismatch"));
        }
        if u16::from_le_bytes([buf[8], buf[9]]) != 1 || le_u32(buf, 12) as usize != HEAD_LEN {
            return Err(DecodeError::new(8, "unsupported HEAD version"));
        }
        let head = Head { active_base: le_u64(buf, 16), reserved_next: le_u64(buf, 24), durable_next: le_u64(buf, 32) };
        if head.durable_next > head.reserved_next || head.active_base > head.reserved_next {
            return Err(DecodeError::new(24, "HEAD reserves less than it says was written"));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_every_flip_is_detected() {
        let head = Head { active_base: 100, reserved_next: 5000, durable_next: 180 };
        let bytes = head.encode();
        assert_eq!(Head::decode(&bytes), Ok(head));
        for i in 0..bytes.len() {
            let mut b = bytes;
            b[i] ^= 0x04;
            assert!(Head::decode(&b).is_err(), "flip at {i} not detected");
        }
        assert!(Head::decode(&bytes[..47]).is_err());
    }

    #[test]
    fn a_head_below_its_own_durable_point_or_active_segment_is_refused() {
        for bad in [
            Head { active_base: 0, reserved_next: 10, durable_next: 11 },
            Head { active_base: 11, reserved_next: 10, durable_next: 0 },
        ] {
            assert!(Head::decode(&bad.encode()).is_err(), "{bad:?}");
        }
    }
}
