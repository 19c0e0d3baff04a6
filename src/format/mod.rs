//! Pure encoding and decoding of every byte layout weir writes. No I/O, no clocks.
//!
//! Each layout in `format-spec.md` has exactly one home here, and every decoder takes arbitrary
//! bytes without panicking: this is what the fuzz targets hammer. All integers are little-endian.

pub mod batch;
pub mod data_keys;
pub mod encryption_marker;
pub mod head;
pub mod index;
pub mod key_file;
pub mod lost;
pub mod queue_record;
pub mod queue_snapshot;
pub mod sealed;
pub mod segment_header;

pub use batch::{BatchHeader, Compression, EncodedBatch, FrameError, FrameLayout, FrameStamp, Record, RecordRef};
pub use head::Head;
pub use index::{IndexEntry, IndexFile};
pub use segment_header::{SegmentHeader, SegmentVersion};

/// Why bytes failed to decode: a reason and the offset (relative to the buffer given) it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset within the decoded buffer where the problem was found.
    pub offset: usize,
    /// Human-readable reason.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, reason: impl Into<String>) -> Self {
        DecodeError { offset, reason: reason.into() }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}

/// A bounds-checked little-endian cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, or an error naming `what` if fewer are left.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::new(self.pos, format!("{what}: need {n} bytes, only {} left", self.remaining())));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    /// A little-endian u16.
    pub fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u8.
    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A u32 length prefix followed by that many bytes, at most `max` long.
    pub fn len_prefixed(&mut self, max: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::new(at, format!("{what}: length {len} over the limit {max}")));
        }
        self.bytes(len, what)
    }
}

/// Appends a u32 length prefix and the bytes.
pub fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a little-endian u32 at `at`; the caller has checked bounds.
pub(crate) fn le_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads a little-endian u64 at `at`; the caller has checked bounds.
pub(crate) fn le_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}
