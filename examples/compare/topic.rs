//! `topic_fanout`: 8 threads publish 256 B messages to a topic with 10 subscribed queues,
//! durably. One operation is one delivery (a publish counts 10).

use std::path::Path;

use bytes::Bytes;
use rusqlite::params;
use weir::format::queue_record::{MessageRecord, PublishRecord, QueueRecord, OWN_SEQ};
use weir::Durability;

use crate::common::*;
use crate::weir_side::{self, BODY, FANOUT_QUEUES as QUEUES, PUBLISHERS};

const PUBLISH: &str = "INSERT INTO topic_log (topic, body, sent_at) VALUES (1, ?1, ?2)";
const DELIVER: &str = "INSERT INTO tq (queue, body, sent_at, visible_at, receive_count) VALUES (?1, ?2, ?3, ?3, 0)";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS topic_log (
    id INTEGER PRIMARY KEY,
    topic INTEGER NOT NULL,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tq (
    id INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tq_visible ON tq (queue, visible_at, id);
";

pub fn fanout(ctx: &Ctx) -> Row {
    let body = text_noise(BODY, 5);
    // weir's own frame for one publish and its ten (raw) deliveries.
    let frame = {
        let publish = QueueRecord::Publish(PublishRecord {
            topic: 1,
            message_id: [1; 16],
            sent_ms: 1_700_000_000_000,
            group: Bytes::new(),
            dedup: Bytes::new(),
            subject: Bytes::new(),
            json_structure: false,
            attributes: Vec::new(),
            body: Bytes::copy_from_slice(&body),
        });
        let mut values = vec![publish.encode()];
        for queue in 1..=QUEUES {
            let message = QueueRecord::Message(MessageRecord {
                queue,
                key: OWN_SEQ,
                message_id: [2; 16],
                sent_ms: 1_700_000_000_000,
                visible_at_ms: 1_700_000_000_000,
                first_receive_ms: 0,
                receive_count: 0,
                origin_queue: 0,
                group: Bytes::new(),
                dedup: Bytes::new(),
                trace_header: Bytes::new(),
                sender_id: Bytes::new(),
                attributes: Vec::new(),
                body: Bytes::copy_from_slice(&body),
            });
            values.push(message.encode());
        }
        message_log_frame(&values)
    };
    let weir = |dir: &Path| weir_side::topic_fanout(ctx.window, dir, Durability::Always, &body);
    let limit = |dir: &Path| {
        let log = LimitLog::new(dir, true);
        timed(PUBLISHERS, ctx.window, |_| {
            let (log, frame) = (&log, &frame);
            move |stop: &Stop| {
                count_until_stop(stop, || {
                    log.append(frame);
                    u64::from(QUEUES)
                })
            }
        })
    };
    let sqlite = |dir: &Path| {
        let path = dir.join("bench.db");
        sqlite_open(&path, SqliteSync::Full).execute_batch(SCHEMA).expect("sqlite: schema");
        // Every publish is one job of the single writer, which group-commits what waits.
        let writer = SqliteWriter::new(&path, SqliteSync::Full);
        let body: std::sync::Arc<[u8]> = std::sync::Arc::from(&body[..]);
        timed(PUBLISHERS, ctx.window, |_| {
            let (writer, body) = (&writer, body.clone());
            move |stop: &Stop| {
                count_until_stop(stop, || {
                    let body = body.clone();
                    writer.write(move |conn| {
                        let now = now_ms();
                        cached(conn, PUBLISH).execute(params![&body[..], now]).expect("sqlite: publish");
                        let mut deliver = cached(conn, DELIVER);
                        for queue in 1..=QUEUES {
                            deliver.execute(params![queue, &body[..], now]).expect("sqlite: deliver");
                        }
                    });
                    u64::from(QUEUES)
                })
            }
        })
    };
    let m = alternate(ctx, "topic_fanout", &weir, Some(&limit), Some(&sqlite));
    let mut row = Row::new("topic_fanout", "deliveries/s", m, Target::Ratios { limit: None, sqlite: Some(3.0) });
    row.note = format!(
        "10 raw queue subscriptions, 8 publishers; limit: weir's {}-byte frame (publish + 10 deliveries) per publish, group-committed write + fdatasync; SQLite: 11 inserts per publish, every publish a job of one group-committing writer",
        frame.len()
    );
    row
}
