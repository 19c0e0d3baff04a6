//! The queue index snapshot (`queues/SSSSSSSSSSSSSSSSSSSS.snap`): every queue's in-memory index
//! as of known positions of the message log, so that opening replays only the records after
//! them (format-spec.md section 9.2).
//!
//! ```text
//! header (48 bytes)
//! offset size field
//!   0     8  magic "WEIRSNAP"
//!   8     2  version (1)
//!  10     2  reserved, zero
//!  12     4  header_len 48
//!  16     8  position     replay starts here: no cut below reflects less than this
//!  24     8  written_ms   engine clock when the snapshot was started
//!  32     8  covers       every cut of the file reflects the log below at most this
//!  40     4  queues_through  every queue with an id up to this that the engine had when the
//!                            snapshot was started is in the file
//!  44     4  crc32        CRC-32 of bytes [0, 44)
//! then entries, each a tag byte and its fields, the last one End, then
//!          4  crc32       CRC-32 of every byte after the header up to here
//! ```
//!
//! Entries are written and read as a stream (the writer never holds the file, nor a copy of an
//! index, in memory); [`decode_entry`] says when it needs more bytes.

use bytes::Bytes;

use super::{le_u32, le_u64, DecodeError, Reader};

/// Magic bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WEIRSNAP";
/// The version this code writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;
/// Size of the header.
pub const SNAPSHOT_HEADER_LEN: usize = 48;
/// Size of the trailing checksum.
pub const SNAPSHOT_TRAILER_LEN: usize = 4;
/// File name suffix; the stem is the header's `position` in 20 decimal digits.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
/// Longest name (queue or group) an entry may carry: beyond every name weir accepts.
pub const MAX_SNAPSHOT_NAME: usize = 1024;
/// `group` of a message of a standard queue.
pub const NO_GROUP: u32 = u32::MAX;

const TAG_QUEUE: u8 = 1;
const TAG_PIECE: u8 = 2;
const TAG_GROUP: u8 = 3;
const TAG_MESSAGE: u8 = 4;
const TAG_META: u8 = 5;
const TAG_DEDUP: u8 = 6;
const TAG_PROGRESS: u8 = 7;
const TAG_TOPIC: u8 = 8;
const TAG_END: u8 = 9;

/// Size of a Message entry, tag included.
pub const MESSAGE_ENTRY_LEN: usize = 1 + 8 * 5 + 4 + 4 + 3;
const PIECE_ENTRY_LEN: usize = 1 + 16;
const META_ENTRY_LEN: usize = 1 + 1 + 8;
const DEDUP_ENTRY_LEN: usize = 1 + 16 + 16 + 16;
const PROGRESS_ENTRY_LEN: usize = 1 + 4 + 8;
const TOPIC_ENTRY_LEN: usize = 1 + 4 + 8;
const END_ENTRY_LEN: usize = 1 + 8;

/// The file name of the snapshot whose replay starts at `position`.
pub fn snapshot_file_name(position: u64) -> String {
    format!("{position:020}{SNAPSHOT_SUFFIX}")
}

/// The position a snapshot file name stands for, if it is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

/// The header of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Where replay starts: every cut in the file was taken at or above it.
    pub position: u64,
    /// Engine clock when writing started (informational).
    pub written_ms: u64,
    /// No cut in the file was taken above this: the log must reach it.
    pub covers: u64,
    /// The highest queue id the engine had given out when the snapshot was started: every
    /// queue up to it that was not deleted is in the file (one the catalog knows and the file
    /// lacks means the two disagree); a queue above it was created later.
    pub queues_through: u32,
}

impl SnapshotHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut out = [0u8; SNAPSHOT_HEADER_LEN];
        out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        out[8..10].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SNAPSHOT_HEADER_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.position.to_le_bytes());
        out[24..32].copy_from_slice(&self.written_ms.to_le_bytes());
        out[32..40].copy_from_slice(&self.covers.to_le_bytes());
        out[40..44].copy_from_slice(&self.queues_through.to_le_bytes());
        let crc = crc32fast::hash(&out[0..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header.
    pub fn decode(buf: &[u8]) -> Result<SnapshotHeader, DecodeError> {
        if buf.len() < SNAPSHOT_HEADER_LEN {
            return Err(DecodeError::new(0, format!("snapshot header needs {SNAPSHOT_HEADER_LEN} bytes")));
        }
        if buf[0..8] != SNAPSHOT_MAGIC {
            return Err(DecodeError::new(0, "not a weir snapshot (bad magic)"));
        }
        if le_u32(buf, 44) != crc32fast::hash(&buf[0..44]) {
            return Err(DecodeError::new(44, "snapshot header checksum mismatch"));
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        if version != SNAPSHOT_VERSION || le_u32(buf, 12) as usize != SNAPSHOT_HEADER_LEN {
            return Err(DecodeError::new(8, format!("unsupported snapshot version {version}")));
        }
        let header = SnapshotHeader {
            position: le_u64(buf, 16),
            written_ms: le_u64(buf, 24),
            covers: le_u64(buf, 32),
            queues_through: le_u32(buf, 40),
        };
        if header.covers < header.position {
            return Err(DecodeError::new(32, "snapshot covers less than its position"));
        }
        Ok(header)
    }
}

/// One message of a queue's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMessage {
    /// Its key (the sequence number of its first record).
    pub key: u64,
    /// The sequence number of its latest full record.
    pub anchor: u64,
    /// When it was sent.
    pub sent_ms: u64,
    /// When it is (next) visible.
    pub visible_at_ms: u64,
    /// When it was first received (0: never).
    pub first_receive_ms: u64,
    /// How often it was received.
    pub receive_count: u32,
    /// Its FIFO group: an index into the piece's Group entries, or [`NO_GROUP`].
    pub group: u32,
    /// The bits of its message id that receipt handles carry.
    pub id_tag: [u8; 3],
}

/// One remembered deduplication id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotDedup {
    /// The digest it is remembered by.
    pub digest: [u8; 16],
    /// The first send's message id.
    pub message_id: [u8; 16],
    /// Its key (queue) or the publish's sequence number (topic).
    pub key: u64,
    /// When the id is forgotten.
    pub expires_ms: u64,
}

/// One entry of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotEntry {
    /// A queue's section starts (entries up to the next Queue, Topic or End are its).
    Queue {
        /// Catalog id.
        queue: u32,
        /// Name (checked against the catalog's at open).
        name: Bytes,
        /// FIFO or standard.
        fifo: bool,
    },
    /// The queue's messages with keys from `from_key` (up to the next Piece's) as of the log
    /// below `position`; its Group and Message entries follow.
    Piece {
        /// First key the piece covers.
        from_key: u64,
        /// The cut: every record of the queue below it is reflected, none at or above.
        position: u64,
    },
    /// A FIFO group name; the piece's groups are numbered from 0 in order.
    Group {
        /// The group.
        name: Bytes,
    },
    /// A live message.
    Message(SnapshotMessage),
    /// The rest of the queue's index, cut with its last piece (same position); its Dedup and
    /// Progress entries follow.
    Meta {
        /// Deduplication scope the window is keyed by (0 queue, 1 message group).
        dedup_scope: u8,
        /// When the queue was last purged.
        last_purge_ms: Option<u64>,
    },
    /// A deduplication id of the current queue or topic.
    Dedup(SnapshotDedup),
    /// A message move task's count of moves (the queue is its source).
    Progress {
        /// Catalog id of the task.
        task: u32,
        /// Moves made.
        moved: u64,
    },
    /// A FIFO topic's window as of the log below `position`; its Dedup entries follow.
    Topic {
        /// Catalog id.
        topic: u32,
        /// The cut.
        position: u64,
    },
    /// The last entry.
    End {
        /// Entries before this one.
        entries: u64,
    },
}

impl SnapshotEntry {
    /// Appends the encoded entry to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SnapshotEntry::Queue { queue, name, fifo } => {
                out.push(TAG_QUEUE);
                out.extend_from_slice(&queue.to_le_bytes());
                out.push(u8::from(*fifo));
                put_short(out, name);
            }
            SnapshotEntry::Piece { from_key, position } => {
                out.push(TAG_PIECE);
                out.extend_from_slice(&from_key.to_le_bytes());
                out.extend_from_slice(&position.to_le_bytes());
            }
            SnapshotEntry::Group { name } => {
                out.push(TAG_GROUP);
                put_short(out, name);
            }
            SnapshotEntry::Message(m) => {
                out.push(TAG_MESSAGE);
                for v in [m.key, m.anchor, m.sent_ms, m.visible_at_ms, m.first_receive_ms] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&m.receive_count.to_le_bytes());
                out.extend_from_slice(&m.group.to_le_bytes());
                out.extend_from_slice(&m.id_tag);
            }
            SnapshotEntry::Meta { dedup_scope, last_purge_ms } => {
                out.push(TAG_META);
                out.push(*dedup_scope);
                out.extend_from_slice(&last_purge_ms.unwrap_or(u64::MAX).to_le_bytes());
            }
            SnapshotEntry::Dedup(d) => {
                out.push(TAG_DEDUP);
                out.extend_from_slice(&d.digest);
                out.extend_from_slice(&d.message_id);
                out.extend_from_slice(&d.key.to_le_bytes());
                out.extend_from_slice(&d.expires_ms.to_le_bytes());
            }
            SnapshotEntry::Progress { task, moved } => {
                out.push(TAG_PROGRESS);
                out.extend_from_slice(&task.to_le_bytes());
                out.extend_from_slice(&moved.to_le_bytes());
            }
            SnapshotEntry::Topic { topic, position } => {
                out.push(TAG_TOPIC);
                out.extend_from_slice(&topic.to_le_bytes());
                out.extend_from_slice(&position.to_le_bytes());
            }
            SnapshotEntry::End { entries } => {
                out.push(TAG_END);
                out.extend_from_slice(&entries.to_le_bytes());
            }
        }
    }
}

fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(MAX_SNAPSHOT_NAME);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&bytes[..len]);
}

/// The length of the entry at the start of `buf`: `Ok(None)` if `buf` is too short to tell or
/// to hold it.
fn entry_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(&tag) = buf.first() else { return Ok(None) };
    let short_at = |at: usize| -> Result<Option<usize>, DecodeError> {
        let Some(b) = buf.get(at..at + 2) else { return Ok(None) };
        let len = u16::from_le_bytes([b[0], b[1]]) as usize;
        if len > MAX_SNAPSHOT_NAME {
            return Err(DecodeError::new(at, format!("name of {len} bytes, over {MAX_SNAPSHOT_NAME}")));
        }
        Ok(Some(at + 2 + len))
    };
    let len = match tag {
        TAG_QUEUE => short_at(1 + 4 + 1)?,
        TAG_PIECE => Some(PIECE_ENTRY_LEN),
        TAG_GROUP => short_at(1)?,
        TAG_MESSAGE => Some(MESSAGE_ENTRY_LEN),
        TAG_META => Some(META_ENTRY_LEN),
        TAG_DEDUP => Some(DEDUP_ENTRY_LEN),
        TAG_PROGRESS => Some(PROGRESS_ENTRY_LEN),
        TAG_TOPIC => Some(TOPIC_ENTRY_LEN),
        TAG_END => Some(END_ENTRY_LEN),
        other => return Err(DecodeError::new(0, format!("unknown snapshot entry kind {other}"))),
    };
    Ok(len.filter(|&n| n <= buf.len()))
}

/// Decodes the entry at the start of `buf` and its length; `Ok(None)`: `buf` ends inside it.
pub fn decode_entry(buf: &[u8]) -> Result<Option<(SnapshotEntry, usize)>, DecodeError> {
    let Some(len) = entry_len(buf)? else { return Ok(None) };
    let mut r = Reader::new(&buf[1..len]);
    let array16 = |r: &mut Reader<'_>, what: &str| -> Result<[u8; 16], DecodeError> {
        let mut out = [0u8; 16];
        out.copy_from_slice(r.bytes(16, what)?);
        Ok(out)
    };
    let short = |r: &mut Reader<'_>, what: &str| -> Result<Bytes, DecodeError> {
        let n = r.u16(what)? as usize;
        Ok(Bytes::copy_from_slice(r.bytes(n, what)?))
    };
    let entry = match buf[0] {
        TAG_QUEUE => {
            let queue = r.u32("queue")?;
            let fifo = match r.u8("fifo")? {
                0 => false,
                1 => true,
                other => return Err(DecodeError::new(5, format!("fifo flag {other}"))),
            };
            SnapshotEntry::Queue { queue, fifo, name: short(&mut r, "queue name")? }
        }
        TAG_PIECE => SnapshotEntry::Piece { from_key: r.u64("from_key")?, position: r.u64("position")? },
        TAG_GROUP => SnapshotEntry::Group { name: short(&mut r, "group")? },
        TAG_MESSAGE => {
            let key = r.u64("key")?;
            let anchor = r.u64("anchor")?;
            let sent_ms = r.u64("sent_ms")?;
            let visible_at_ms = r.u64("visible_at_ms")?;
            let first_receive_ms = r.u64("first_receive_ms")?;
            let receive_count = r.u32("receive_count")?;
            let group = r.u32("group")?;
            let mut id_tag = [0u8; 3];
            id_tag.copy_from_slice(r.bytes(3, "id_tag")?);
            SnapshotEntry::Message(SnapshotMessage {
                key,
                anchor,
                sent_ms,
                visible_at_ms,
                first_receive_ms,
                receive_count,
                group,
                id_tag,
            })
        }
        TAG_META => {
            let dedup_scope = r.u8("dedup_scope")?;
            if dedup_scope > 1 {
                return Err(DecodeError::new(1, format!("deduplication scope {dedup_scope}")));
            }
            let last = r.u64("last_purge_ms")?;
            SnapshotEntry::Meta { dedup_scope, last_purge_ms: (last != u64::MAX).then_some(last) }
        }
        TAG_DEDUP => SnapshotEntry::Dedup(SnapshotDedup {
            digest: array16(&mut r, "digest")?,
            message_id: array16(&mut r, "message_id")?,
            key: r.u64("key")?,
            expires_ms: r.u64("expires_ms")?,
        }),
        TAG_PROGRESS => SnapshotEntry::Progress { task: r.u32("task")?, moved: r.u64("moved")? },
        TAG_TOPIC => SnapshotEntry::Topic { topic: r.u32("topic")?, position: r.u64("position")? },
        TAG_END => SnapshotEntry::End { entries: r.u64("entries")? },
        other => return Err(DecodeError::new(0, format!("unknown snapshot entry kind {other}"))),
    };
    debug_assert_eq!(r.remaining(), 0, "entry_len and the decoder agree");
    Ok(Some((entry, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<SnapshotEntry> {
        vec![
            SnapshotEntry::Queue { queue: 7, name: Bytes::from_static(b"orders.fifo"), fifo: true },
            SnapshotEntry::Piece { from_key: 0, position: 99 },
            SnapshotEntry::Group { name: Bytes::from_static(b"red") },
            SnapshotEntry::Message(SnapshotMessage {
                key: 5,
                anchor: 40,
                sent_ms: 1_000,
                visible_at_ms: 2_000,
                first_receive_ms: 1_500,
                receive_count: 3,
                group: 0,
                id_tag: [1, 2, 3],
            }),
            SnapshotEntry::Meta { dedup_scope: 1, last_purge_ms: Some(77) },
            SnapshotEntry::Meta { dedup_scope: 0, last_purge_ms: None },
            SnapshotEntry::Dedup(SnapshotDedup { digest: [9; 16], message_id: [8; 16], key: 5, expires_ms: 301_000 }),
            SnapshotEntry::Progress { task: 2, moved: 11 },
            SnapshotEntry::Topic { topic: 3, position: 100 },
            SnapshotEntry::End { entries: 9 },
        ]
    }

    #[test]
    fn entries_round_trip_and_ask_for_more_when_cut() {
        for entry in every_kind() {
            let mut buf = Vec::new();
            entry.encode(&mut buf);
            assert_eq!(decode_entry(&buf), Ok(Some((entry.clone(), buf.len()))));
            for cut in 0..buf.len() {
                assert_eq!(decode_entry(&buf[..cut]), Ok(None), "{entry:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn headers_round_trip_and_refuse_damage() {
        let h = SnapshotHeader { position: 10, written_ms: 5, covers: 12, queues_through: 3 };
        let bytes = h.encode();
        assert_eq!(SnapshotHeader::decode(&bytes), Ok(h));
        for bit in 0..SNAPSHOT_HEADER_LEN * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(SnapshotHeader::decode(&bad).is_err(), "flipped bit {bit}");
        }
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(42)), Some(42));
        assert_eq!(parse_snapshot_file_name("42.snap"), None);
    }

    #[test]
    fn unknown_kinds_and_bad_fields_are_errors() {
        assert!(decode_entry(&[0]).is_err());
        assert!(decode_entry(&[200]).is_err());
        let mut buf = Vec::new();
        SnapshotEntry::Meta { dedup_scope: 0, last_purge_ms: None }.encode(&mut buf);
        buf[1] = 2;
        assert!(decode_entry(&buf).is_err());
        let mut buf = vec![TAG_GROUP];
        buf.extend_from_slice(&u16::MAX.to_le_bytes());
        assert!(decode_entry(&buf).is_err(), "a name over the bound is refused before it is read");
    }
}
