//! Records of the message log shared by every queue (and topic): messages and the state
//! changes that follow them. Each is one record value in a frame; a frame may hold records of
//! several queues, which is how a dead-letter move or a topic fan-out is atomic.
//!
//! ```text
//! Message (kind 1)                       Receive (kind 2)
//!   kind u8 = 1                            kind u8 = 2
//!   queue u32                              queue u32
//!   key u64 (u64::MAX: this record's seq)  key u64
//!   message_id [16]                        receive_count u32
//!   sent_ms u64                            visible_at_ms u64
//!   visible_at_ms u64                      received_ms u64
//!   first_receive_ms u64 (0: never)      Delete (kind 3): kind u8, queue u32, key u64
//!   receive_count u32                    ChangeVisibility (kind 4):
//!   origin_queue u32 (0: none)             kind u8, queue u32, key u64, receive_count u32,
//!   group: u16 len + bytes                 visible_at_ms u64
//!   dedup: u16 len + bytes               Purge (kind 5): kind u8, queue u32, before_key u64
//!   attr_count u16, then per attribute:
//!     name u16 len + bytes, type u16 len + bytes, value u32 len + bytes
//!   body: u32 len + bytes
//!
//! Publish (kind 6): a topic's message, written in the same frame as its deliveries
//!   kind u8 = 6, topic u32, message_id [16], sent_ms u64, group (u16 len + bytes),
//!   dedup (u16 len + bytes), subject (u16 len + bytes), attributes as in Message,
//!   body: u32 len + bytes
//!
//! Message v2 (kind 7): what weir writes for every message now. As Message (kind 1), with two
//!   fields after dedup: trace_header (u16 len + bytes), sender_id (u16 len + bytes).
//!   Kind 1 records (written before v2) still decode, with both fields empty.
//!
//! MoveProgress (kind 8): kind u8 = 8, queue u32 (the task's source), task u32, moved u64;
//!   written in the frame of each message a message move task moves, so that the count of a
//!   task resumed after a crash is the count of moves that are durable.
//!
//! Publish v2 (kind 9): what weir writes for every publish now. As Publish (kind 6), with
//!   flags u8 after subject (bit 0: the body is a MessageStructure=json document of messages
//!   per protocol; other bits zero). Kind 6 records still decode, with no flag set.
//! ```

use bytes::Bytes;

use super::{DecodeError, Reader};

/// `key` value meaning "the sequence number of this very record": a new message.
pub const OWN_SEQ: u64 = u64::MAX;
/// Longest message group id or deduplication id, as SQS.
pub const MAX_ID_LEN: usize = 128;
/// Most message attributes, as SQS.
pub const MAX_ATTRIBUTES: usize = 10;
/// Longest subject of a publish, as SNS (100 characters).
pub const MAX_SUBJECT_LEN: usize = 100;
/// Longest AWSTraceHeader system attribute: weir's bound (an X-Ray header is about 100 bytes).
pub const MAX_TRACE_HEADER_LEN: usize = 1024;
/// Longest sender id (an account or principal id): weir's bound.
pub const MAX_SENDER_ID_LEN: usize = 256;

const KIND_MESSAGE: u8 = 1;
const KIND_RECEIVE: u8 = 2;
const KIND_DELETE: u8 = 3;
const KIND_CHANGE_VISIBILITY: u8 = 4;
const KIND_PURGE: u8 = 5;
const KIND_PUBLISH: u8 = 6;
const KIND_MESSAGE_V2: u8 = 7;
const KIND_MOVE_PROGRESS: u8 = 8;
const KIND_PUBLISH_V2: u8 = 9;

/// Publish flag: the body is a JSON document with a message per protocol.
const PUBLISH_JSON_STRUCTURE: u8 = 1;

/// One message attribute as stored: its SQS data type ("String", "Number", "Binary", with an
/// optional ".custom" suffix) and value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttribute {
    /// Attribute name.
    pub name: String,
    /// Data type.
    pub data_type: String,
    /// Value (UTF-8 text for String and Number).
    pub value: Bytes,
}

/// A message and its full delivery state at the time the record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Queue id (from the catalog).
    pub queue: u32,
    /// The message's key: the sequence number of its first record. [`OWN_SEQ`] for a new one.
    pub key: u64,
    /// The message id returned to the sender.
    pub message_id: [u8; 16],
    /// When it was first sent.
    pub sent_ms: u64,
    /// When it is (next) visible.
    pub visible_at_ms: u64,
    /// When it was first received (0: never).
    pub first_receive_ms: u64,
    /// How often it has been received.
    pub receive_count: u32,
    /// The queue it was dead-lettered from (0: none).
    pub origin_queue: u32,
    /// FIFO message group (empty for standard queues).
    pub group: Bytes,
    /// FIFO deduplication key (empty: none).
    pub dedup: Bytes,
    /// The AWSTraceHeader system attribute (empty: none).
    pub trace_header: Bytes,
    /// Who sent it, as the sender said (empty: not said).
    pub sender_id: Bytes,
    /// Message attributes.
    pub attributes: Vec<StoredAttribute>,
    /// The body.
    pub body: Bytes,
}

/// A message published to a topic (its deliveries follow it in the same frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRecord {
    /// Topic id (from the catalog).
    pub topic: u32,
    /// The message id returned to the publisher.
    pub message_id: [u8; 16],
    /// When it was published.
    pub sent_ms: u64,
    /// FIFO topics: the message group.
    pub group: Bytes,
    /// FIFO topics: the deduplication id (empty: none).
    pub dedup: Bytes,
    /// The subject, for envelopes (empty: none).
    pub subject: Bytes,
    /// The body is SNS's `MessageStructure=json`: a JSON object with a message per protocol
    /// (`default`, `sqs`, `http`, ...).
    pub json_structure: bool,
    /// Message attributes.
    pub attributes: Vec<StoredAttribute>,
    /// The body.
    pub body: Bytes,
}

/// One record of the message log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRecord {
    /// A message (new, or moved forward by compaction with its state).
    Message(MessageRecord),
    /// A message was received.
    Receive {
        /// Queue id.
        queue: u32,
        /// Message key.
        key: u64,
        /// The receive count after this receive (it names the receipt handle).
        receive_count: u32,
        /// Invisible until then.
        visible_at_ms: u64,
        /// When.
        received_ms: u64,
    },
    /// A message was deleted.
    Delete {
        /// Queue id.
        queue: u32,
        /// Message key.
        key: u64,
    },
    /// A receipt handle changed a message's visibility.
    ChangeVisibility {
        /// Queue id.
        queue: u32,
        /// Message key.
        key: u64,
        /// The receive the handle names.
        receive_count: u32,
        /// New visibility time.
        visible_at_ms: u64,
    },
    /// Every message of the queue with a key below `before_key` was deleted.
    Purge {
        /// Queue id.
        queue: u32,
        /// Exclusive bound.
        before_key: u64,
    },
    /// A topic publish.
    Publish(PublishRecord),
    /// How many messages a message move task had moved, with the move of the last of them.
    MoveProgress {
        /// The task's source queue.
        queue: u32,
        /// The task's id (from the catalog).
        task: u32,
        /// Messages moved so far, this frame's included.
        moved: u64,
    },
}

impl QueueRecord {
    /// The queue the record belongs to (for a publish: its topic id, in the topic id space).
    pub fn queue(&self) -> u32 {
        match self {
            QueueRecord::Publish(p) => p.topic,
            QueueRecord::Message(m) => m.queue,
            QueueRecord::Receive { queue, .. }
            | QueueRecord::Delete { queue, .. }
            | QueueRecord::ChangeVisibility { queue, .. }
            | QueueRecord::Purge { queue, .. }
            | QueueRecord::MoveProgress { queue, .. } => *queue,
        }
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            QueueRecord::Message(m) => {
                out.reserve(100 + m.body.len() + m.group.len() + m.dedup.len() + m.trace_header.len());
                out.push(KIND_MESSAGE_V2);
                out.extend_from_slice(&m.queue.to_le_bytes());
                out.extend_from_slice(&m.key.to_le_bytes());
                out.extend_from_slice(&m.message_id);
                out.extend_from_slice(&m.sent_ms.to_le_bytes());
                out.extend_from_slice(&m.visible_at_ms.to_le_bytes());
                out.extend_from_slice(&m.first_receive_ms.to_le_bytes());
                out.extend_from_slice(&m.receive_count.to_le_bytes());
                out.extend_from_slice(&m.origin_queue.to_le_bytes());
                put_short(&mut out, &m.group);
                put_short(&mut out, &m.dedup);
                put_short(&mut out, &m.trace_header);
                put_short(&mut out, &m.sender_id);
                put_attributes(&mut out, &m.attributes);
                super::put_len_prefixed(&mut out, &m.body);
            }
            QueueRecord::Receive { queue, key, receive_count, visible_at_ms, received_ms } => {
                out.push(KIND_RECEIVE);
                out.extend_from_slice(&queue.to_le_bytes());
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&receive_count.to_le_bytes());
                out.extend_from_slice(&visible_at_ms.to_le_bytes());
                out.extend_from_slice(&received_ms.to_le_bytes());
            }
            QueueRecord::Delete { queue, key } => {
                out.push(KIND_DELETE);
                out.extend_from_slice(&queue.to_le_bytes());
                out.extend_from_slice(&key.to_le_bytes());
            }
            QueueRecord::ChangeVisibility { queue, key, receive_count, visible_at_ms } => {
                out.push(KIND_CHANGE_VISIBILITY);
                out.extend_from_slice(&queue.to_le_bytes());
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&receive_count.to_le_bytes());
                out.extend_from_slice(&visible_at_ms.to_le_bytes());
            }
            QueueRecord::Purge { queue, before_key } => {
                out.push(KIND_PURGE);
                out.extend_from_slice(&queue.to_le_bytes());
                out.extend_from_slice(&before_key.to_le_bytes());
            }
            QueueRecord::MoveProgress { queue, task, moved } => {
                out.push(KIND_MOVE_PROGRESS);
                out.extend_from_slice(&queue.to_le_bytes());
                out.extend_from_slice(&task.to_le_bytes());
                out.extend_from_slice(&moved.to_le_bytes());
            }
            QueueRecord::Publish(p) => {
                out.reserve(64 + p.body.len());
                out.push(KIND_PUBLISH_V2);
                out.extend_from_slice(&p.topic.to_le_bytes());
                out.extend_from_slice(&p.message_id);
                out.extend_from_slice(&p.sent_ms.to_le_bytes());
                put_short(&mut out, &p.group);
                put_short(&mut out, &p.dedup);
                put_short(&mut out, &p.subject);
                out.push(if p.json_structure { PUBLISH_JSON_STRUCTURE } else { 0 });
                put_attributes(&mut out, &p.attributes);
                super::put_len_prefixed(&mut out, &p.body);
            }
        }
        out
    }

    /// Decodes a record; byte fields borrow from `value`.
    pub fn decode(value: &Bytes) -> Result<QueueRecord, DecodeError> {
        let mut r = Reader::new(value);
        let record = match r.u8("record kind")? {
            kind @ (KIND_MESSAGE | KIND_MESSAGE_V2) => {
                let queue = r.u32("queue")?;
                let key = r.u64("key")?;
                let mut message_id = [0u8; 16];
                message_id.copy_from_slice(r.bytes(16, "message id")?);
                let sent_ms = r.u64("sent time")?;
                let visible_at_ms = r.u64("visible time")?;
                let first_receive_ms = r.u64("first receive time")?;
                let receive_count = r.u32("receive count")?;
                let origin_queue = r.u32("origin queue")?;
                let group = short(&mut r, value, MAX_ID_LEN, "group")?;
                let dedup = short(&mut r, value, MAX_ID_LEN, "deduplication id")?;
                let (trace_header, sender_id) = if kind == KIND_MESSAGE_V2 {
                    let trace_header = short(&mut r, value, MAX_TRACE_HEADER_LEN, "trace header")?;
                    (trace_header, short(&mut r, value, MAX_SENDER_ID_LEN, "sender id")?)
                } else {
                    (Bytes::new(), Bytes::new())
                };
                let attributes = attributes(&mut r, value)?;
                let body = r.len_prefixed(value.len(), "body")?;
                let body = slice_of(value, body);
                QueueRecord::Message(MessageRecord {
                    queue,
                    key,
                    message_id,
                    sent_ms,
                    visible_at_ms,
                    first_receive_ms,
                    receive_count,
                    origin_queue,
                    group,
                    dedup,
                    trace_header,
                    sender_id,
                    attributes,
                    body,
                })
            }
            KIND_RECEIVE => QueueRecord::Receive {
                queue: r.u32("queue")?,
                key: r.u64("key")?,
                receive_count: r.u32("receive count")?,
                visible_at_ms: r.u64("visible time")?,
                received_ms: r.u64("receive time")?,
            },
            KIND_DELETE => QueueRecord::Delete { queue: r.u32("queue")?, key: r.u64("key")? },
            KIND_CHANGE_VISIBILITY => QueueRecord::ChangeVisibility {
                queue: r.u32("queue")?,
                key: r.u64("key")?,
                receive_count: r.u32("receive count")?,
                visible_at_ms: r.u64("visible time")?,
            },
            KIND_PURGE => QueueRecord::Purge { queue: r.u32("queue")?, before_key: r.u64("key")? },
            KIND_MOVE_PROGRESS => {
                QueueRecord::MoveProgress { queue: r.u32("queue")?, task: r.u32("task")?, moved: r.u64("moved count")? }
            }
            kind @ (KIND_PUBLISH | KIND_PUBLISH_V2) => {
                let topic = r.u32("topic")?;
                let mut message_id = [0u8; 16];
                message_id.copy_from_slice(r.bytes(16, "message id")?);
                let sent_ms = r.u64("sent time")?;
                let group = short(&mut r, value, MAX_ID_LEN, "group")?;
                let dedup = short(&mut r, value, MAX_ID_LEN, "deduplication id")?;
                let subject = short(&mut r, value, MAX_SUBJECT_LEN, "subject")?;
                let flags = if kind == KIND_PUBLISH_V2 { r.u8("publish flags")? } else { 0 };
                if flags & !PUBLISH_JSON_STRUCTURE != 0 {
                    return Err(DecodeError::new(r.position(), format!("unknown publish flags {flags:#04x}")));
                }
                let attributes = attributes(&mut r, value)?;
                let body = r.len_prefixed(value.len(), "body")?;
                QueueRecord::Publish(PublishRecord {
                    topic,
                    message_id,
                    sent_ms,
                    group,
                    dedup,
                    subject,
                    json_structure: flags & PUBLISH_JSON_STRUCTURE != 0,
                    attributes,
                    body: slice_of(value, body),
                })
            }
            other => return Err(DecodeError::new(0, format!("unknown queue record kind {other}"))),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::new(r.position(), "bytes after the end of the record"));
        }
        Ok(record)
    }
}

fn put_attributes(out: &mut Vec<u8>, attributes: &[StoredAttribute]) {
    out.extend_from_slice(&(attributes.len() as u16).to_le_bytes());
    for a in attributes {
        put_short(out, a.name.as_bytes());
        put_short(out, a.data_type.as_bytes());
        super::put_len_prefixed(out, &a.value);
    }
}

fn attributes(r: &mut Reader<'_>, value: &Bytes) -> Result<Vec<StoredAttribute>, DecodeError> {
    let count = r.u16("attribute count")? as usize;
    if count > MAX_ATTRIBUTES {
        return Err(DecodeError::new(r.position(), format!("{count} attributes, over {MAX_ATTRIBUTES}")));
    }
    let mut attributes = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.position();
        let name = short(r, value, 256, "attribute name")?;
        let data_type = short(r, value, 256, "attribute type")?;
        let v = r.len_prefixed(value.len(), "attribute value")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| DecodeError::new(at, "attribute name is not UTF-8"))?;
        let data_type =
            String::from_utf8(data_type.to_vec()).map_err(|_| DecodeError::new(at, "attribute type is not UTF-8"))?;
        attributes.push(StoredAttribute { name, data_type, value: slice_of(value, v) });
    }
    Ok(attributes)
}

fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= u16::MAX as usize, "short field over 64 KiB");
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn short(r: &mut Reader<'_>, whole: &Bytes, max: usize, what: &str) -> Result<Bytes, DecodeError> {
    let at = r.position();
    let len = r.u16(what)? as usize;
    if len > max {
        return Err(DecodeError::new(at, format!("{what}: length {len} over the limit {max}")));
    }
    let bytes = r.bytes(len, what)?;
    Ok(slice_of(whole, bytes))
}

fn slice_of(whole: &Bytes, part: &[u8]) -> Bytes {
    if part.is_empty() {
        Bytes::new()
    } else {
        whole.slice_ref(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QueueRecord {
        QueueRecord::Message(MessageRecord {
            queue: 3,
            key: OWN_SEQ,
            message_id: [7; 16],
            sent_ms: 1,
            visible_at_ms: 2,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: Bytes::from_static(b"g"),
            dedup: Bytes::new(),
            trace_header: Bytes::from_static(b"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"),
            sender_id: Bytes::from_static(b"000000000000"),
            attributes: vec![StoredAttribute {
                name: "n".into(),
                data_type: "Number".into(),
                value: Bytes::from_static(b"5"),
            }],
            body: Bytes::from_static(b"hello"),
        })
    }

    #[test]
    fn every_record_kind_round_trips() {
        let records = [
            sample(),
            QueueRecord::Receive { queue: 1, key: 2, receive_count: 3, visible_at_ms: 4, received_ms: 5 },
            QueueRecord::Delete { queue: 1, key: 2 },
            QueueRecord::ChangeVisibility { queue: 1, key: 2, receive_count: 3, visible_at_ms: 4 },
            QueueRecord::Purge { queue: 1, before_key: 9 },
            QueueRecord::MoveProgress { queue: 1, task: 7, moved: 12 },
            QueueRecord::Publish(PublishRecord {
                topic: 4,
                message_id: [1; 16],
                sent_ms: 5,
                group: Bytes::from_static(b"g"),
                dedup: Bytes::from_static(b"d"),
                subject: Bytes::from_static(b"s"),
                json_structure: true,
                attributes: Vec::new(),
                body: Bytes::from_static(b"{}"),
            }),
        ];
        for r in records {
            assert_eq!(QueueRecord::decode(&Bytes::from(r.encode())), Ok(r));
        }
    }

    /// A kind 6 publish, as weir wrote every publish before the v2 record (laid out by hand
    /// from format-spec.md): it decodes without flags, and unknown flags of a v2 record are
    /// refused.
    #[test]
    fn a_version_1_publish_record_still_decodes() {
        let mut v1 = vec![6u8];
        v1.extend_from_slice(&4u32.to_le_bytes()); // topic
        v1.extend_from_slice(&[1; 16]); // message id
        v1.extend_from_slice(&5u64.to_le_bytes()); // sent
        v1.extend_from_slice(&[0, 0, 0, 0]); // group, dedup
        v1.extend_from_slice(&[2, 0, b'h', b'i']); // subject
        v1.extend_from_slice(&[0, 0]); // no attributes
        v1.extend_from_slice(&[2, 0, 0, 0, b'o', b'k']);
        let Ok(QueueRecord::Publish(p)) = QueueRecord::decode(&Bytes::from(v1.clone())) else {
            panic!("a v1 publish does not decode")
        };
        assert_eq!((&p.subject[..], p.json_structure, &p.body[..]), (&b"hi"[..], false, &b"ok"[..]));
        let mut v2 = QueueRecord::Publish(p).encode();
        assert_eq!((v2[0], v2.len()), (KIND_PUBLISH_V2, v1.len() + 1));
        let flags_at = 1 + 4 + 16 + 8 + 2 + 2 + 4;
        v2[flags_at] = 2;
        assert!(QueueRecord::decode(&Bytes::from(v2)).is_err(), "unknown flags");
    }

    /// A kind 1 record, as weir wrote every message before the v2 record: laid out by hand
    /// from format-spec.md, so the decoder is held to the old bytes, not to today's encoder.
    #[test]
    fn a_version_1_message_record_still_decodes() {
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&3u32.to_le_bytes()); // queue
        v1.extend_from_slice(&u64::MAX.to_le_bytes()); // key: its own sequence number
        v1.extend_from_slice(&[7; 16]); // message id
        v1.extend_from_slice(&1u64.to_le_bytes()); // sent
        v1.extend_from_slice(&2u64.to_le_bytes()); // visible
        v1.extend_from_slice(&0u64.to_le_bytes()); // first receive
        v1.extend_from_slice(&0u32.to_le_bytes()); // receive count
        v1.extend_from_slice(&9u32.to_le_bytes()); // origin queue
        v1.extend_from_slice(&[1, 0, b'g']); // group
        v1.extend_from_slice(&[2, 0, b'd', b'1']); // dedup
        v1.extend_from_slice(&[1, 0]); // one attribute
        v1.extend_from_slice(&[1, 0, b'n', 10, 0]);
        v1.extend_from_slice(b"Number.int");
        v1.extend_from_slice(&[1, 0, 0, 0, b'5']);
        v1.extend_from_slice(&[5, 0, 0, 0]);
        v1.extend_from_slice(b"hello");
        let Ok(QueueRecord::Message(m)) = QueueRecord::decode(&Bytes::from(v1.clone())) else {
            panic!("a v1 record does not decode")
        };
        assert_eq!(
            (m.queue, m.key, m.origin_queue, &m.group[..], &m.dedup[..]),
            (3, OWN_SEQ, 9, &b"g"[..], &b"d1"[..])
        );
        assert_eq!((&m.trace_header[..], &m.sender_id[..], &m.body[..]), (&b""[..], &b""[..], &b"hello"[..]));
        assert_eq!(m.attributes[0].data_type, "Number.int");
        // Written again, it becomes a v2 record with the same content.
        let again = QueueRecord::Message(m.clone()).encode();
        assert_eq!(again[0], KIND_MESSAGE_V2);
        assert_eq!(again.len(), v1.len() + 4, "two empty short fields more");
        assert_eq!(QueueRecord::decode(&Bytes::from(again)), Ok(QueueRecord::Message(m)));
        for cut in 0..v1.len() {
            assert!(QueueRecord::decode(&Bytes::copy_from_slice(&v1[..cut])).is_err(), "v1 cut at {cut}");
        }
    }

    #[test]
    fn over_long_trace_headers_and_sender_ids_fail_to_decode() {
        let QueueRecord::Message(mut m) = sample() else { unreachable!() };
        m.trace_header = Bytes::from(vec![b'x'; MAX_TRACE_HEADER_LEN + 1]);
        assert!(QueueRecord::decode(&Bytes::from(QueueRecord::Message(m.clone()).encode())).is_err());
        m.trace_header = Bytes::new();
        m.sender_id = Bytes::from(vec![b'x'; MAX_SENDER_ID_LEN + 1]);
        assert!(QueueRecord::decode(&Bytes::from(QueueRecord::Message(m).encode())).is_err());
    }

    #[test]
    fn truncated_records_fail_to_decode() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(QueueRecord::decode(&Bytes::copy_from_slice(&bytes[..cut])).is_err(), "cut at {cut}");
        }
    }
}
