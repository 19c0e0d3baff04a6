//! Delivery to an HTTP endpoint, without HTTP: this module decides what to POST and when, and
//! records what came of it; the caller (the server) only sends the request.
//!
//! One batch is in flight at a time, so records reach the endpoint in order. A batch is
//! formed once the buffer holds the destination's buffer size (or 10,000 records) or its oldest
//! record waited the buffering interval; it is POSTed in Firehose's HTTP endpoint delivery format (a JSON
//! body `{"requestId","timestamp","records":[{"data":BASE64}]}` and the `X-Amz-Firehose-*`
//! headers), and retried with backoff (1 s, doubling up to 32 s) until the retry duration has
//! passed since its first attempt. Then it is written to the backup directory (see
//! [`super::backup`]). Only a delivered or backed-up batch is checkpointed, durably, so a
//! restart sends again at most the batch whose answer was not recorded, under the same
//! request id when it is formed again from the same records.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::backup;
use super::config::{ContentEncoding, HttpDestination};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::io::Vfs;
use crate::stream::{Consumer, Stream, StreamRecord};
use crate::text::{base64, uuid};

/// The error code of an answer other than 200.
pub const DESTINATION_EXCEPTION: &str = "HttpEndpoint.DestinationException";
/// The error code of a 200 whose body is not the answer Firehose's format asks for.
pub const INVALID_RESPONSE: &str = "HttpEndpoint.InvalidResponseFromDestination";
/// The error code of a request that could not be made (connection refused, reset).
pub const CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";
/// The error code of a request the endpoint did not answer in time.
pub const REQUEST_TIMEOUT: &str = "HttpEndpoint.RequestTimeout";

/// First backoff after a failed attempt; it doubles up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: u64 = 1000;
/// Longest wait between two attempts.
pub const MAX_BACKOFF_MS: u64 = 32_000;
/// Most records read from the stream in one poll.
const POLL_RECORDS: usize = 1000;
/// Most records in one batch (and in the buffer): many empty or tiny records must not grow a
/// buffer that the byte size alone would never call full.
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A Firehose error code (`HttpEndpoint.DestinationException`, ...).
    pub code: String,
    /// What happened, for the backup and the log.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_string(), message: message.into() }
    }
}

/// What came of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The endpoint took the batch (200 with its request id).
    Delivered,
    /// It did not.
    Failed(Failure),
}

/// One POST to make.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The batch's request id (the same on every attempt).
    pub request_id: String,
    /// Where to POST.
    pub url: String,
    /// Headers, besides `Host` and `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// The body (gzipped when the destination says so).
    pub body: Bytes,
    /// Records in the batch.
    pub records: usize,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
}

/// What to do next.
#[derive(Debug, Clone)]
pub enum Step {
    /// POST this, then call [`HttpDelivery::record`].
    Send(HttpRequest),
    /// Nothing before this time (engine clock, ms): a retry or a buffer falls due then.
    WaitUntil(u64),
    /// Nothing buffered: call again when records arrive (or in a while).
    Idle,
}

/// What [`HttpDelivery::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The batch is delivered and checkpointed.
    Delivered {
        /// Records in it.
        records: usize,
        /// Its last sequence number.
        through_seq: u64,
    },
    /// The batch will be tried again at `at_ms`.
    Retry {
        /// When (engine clock, ms).
        at_ms: u64,
        /// Attempts so far.
        attempts: u32,
    },
    /// The retry duration ran out: the batch is in the backup directory and checkpointed.
    BackedUp {
        /// The file written.
        file: PathBuf,
        /// Records in it.
        records: usize,
    },
}

#[derive(Debug)]
struct Pending {
    records: Vec<StreamRecord>,
    shard: u32,
    request_id: String,
    body: Bytes,
    attempts: u32,
    first_attempt_ms: Option<u64>,
    next_attempt_ms: u64,
}

/// The delivery of one delivery stream to its HTTP endpoint. See the module documentation.
#[derive(Debug)]
pub struct HttpDelivery {
    name: String,
    incarnation: String,
    stream: Arc<Stream>,
    consumer: Consumer,
    destination: HttpDestination,
    vfs: Arc<dyn Vfs>,
    clock: Arc<dyn Clock>,
    buffer: Vec<(u32, StreamRecord)>,
    buffer_bytes: u64,
    buffer_since_ms: u64,
    pending: Option<Pending>,
}

impl HttpDelivery {
    /// A delivery reading `stream` as `consumer`; `incarnation` tells delivery streams of the
    /// same name apart in request ids.
    pub(crate) fn new(
        name: &str,
        incarnation: String,
        stream: Arc<Stream>,
        consumer: Consumer,
        destination: HttpDestination,
        vfs: Arc<dyn Vfs>,
        clock: Arc<dyn Clock>,
    ) -> HttpDelivery {
        HttpDelivery {
            name: name.to_string(),
            incarnation,
            stream,
            consumer,
            destination,
            vfs,
            clock,
            buffer: Vec::new(),
            buffer_bytes: 0,
            buffer_since_ms: 0,
            pending: None,
        }
    }

    /// The destination.
    pub fn destination(&self) -> &HttpDestination {
        &self.destination
    }

    /// Records buffered or in the batch in flight (not yet delivered or backed up).
    pub fn records_held(&self) -> usize {
        self.buffer.len() + self.pending.as_ref().map_or(0, |p| p.records.len())
    }

    /// What to do now: a POST (the batch in flight, once its retry is due, or a new batch once
    /// the buffer is full or old enough), or how long to wait.
    pub fn next_step(&mut self) -> Result<Step> {
        self.stream.check_live()?;
        let now = self.clock.now_ms();
        if let Some(p) = &self.pending {
            if p.next_attempt_ms > now {
                return Ok(Step::WaitUntil(p.next_attempt_ms));
            }
            return Ok(Step::Send(self.request()));
        }
        self.fill_buffer(now)?;
        if self.buffer.is_empty() {
            return Ok(Step::Idle);
        }
        let due_at = self.buffer_since_ms.saturating_add(self.destination.buffering.interval_ms);
        let full = self.buffer_bytes >= self.destination.buffering.size_bytes || self.buffer.len() >= MAX_BATCH_RECORDS;
        if !full && due_at > now {
            return Ok(Step::WaitUntil(due_at));
        }
        self.form_batch(now)?;
        Ok(Step::Send(self.request()))
    }

    /// Records what came of the POST of batch `request_id`: a delivered batch is
    /// checkpointed; a failed one is scheduled again, or, once the retry duration has passed
    /// since its first attempt, written to the backup directory and checkpointed. An outcome
    /// for another request id (a stale answer) is an error and changes nothing.
    pub fn record(&mut self, request_id: &str, outcome: HttpOutcome) -> Result<Recorded> {
        self.stream.check_live()?;
        let now = self.clock.now_ms();
        let Some(p) = self.pending.as_mut().filter(|p| p.request_id == request_id) else {
            return Err(Error::InvalidArgument(format!("no batch with request id {request_id:?} is in flight")));
        };
        p.attempts = p.attempts.saturating_add(1);
        let first = *p.first_attempt_ms.get_or_insert(now);
        let failure = match outcome {
            HttpOutcome::Delivered => {
                let (shard, last) = batch_end(p);
                self.consumer.checkpoint(shard, last)?;
                let records = p.records.len();
                self.pending = None;
                return Ok(Recorded::Delivered { records, through_seq: last });
            }
            HttpOutcome::Failed(failure) => failure,
        };
        let deadline = first.saturating_add(self.destination.retry_ms);
        if now < deadline {
            let backoff = FIRST_BACKOFF_MS.saturating_mul(1u64 << (p.attempts - 1).min(16)).min(MAX_BACKOFF_MS);
            p.next_attempt_ms = now.saturating_add(backoff).min(deadline);
            return Ok(Recorded::Retry { at_ms: p.next_attempt_ms, attempts: p.attempts });
        }
        // Out of retries: into the backup (durably) before the checkpoint lets the batch go. A
        // failed backup write keeps the batch, to be tried (and backed up) again.
        let file = backup::write_failed_batch(
            self.vfs.as_ref(),
            &self.destination.backup,
            &self.name,
            &backup::FailedBatch {
                records: &p.records,
                attempts: p.attempts,
                failure: &failure,
                request_id: &p.request_id,
                ended_ms: now,
            },
        )
        .inspect_err(|_| p.next_attempt_ms = now.saturating_add(MAX_BACKOFF_MS))?;
        let (shard, last) = batch_end(p);
        let records = p.records.len();
        self.consumer.checkpoint(shard, last)?;
        self.pending = None;
        Ok(Recorded::BackedUp { file, records })
    }

    /// Reads what the stream holds into the buffer, up to the buffer size (and a poll more).
    fn fill_buffer(&mut self, now: u64) -> Result<()> {
        while self.buffer_bytes < self.destination.buffering.size_bytes && self.buffer.len() < MAX_BATCH_RECORDS {
            let got = self.consumer.poll(POLL_RECORDS.min(MAX_BATCH_RECORDS - self.buffer.len()))?;
            if got.is_empty() {
                break;
            }
            for r in got {
                if self.buffer.is_empty() {
                    self.buffer_since_ms = now;
                }
                self.buffer_bytes = self.buffer_bytes.saturating_add(r.record.data.len() as u64);
                self.buffer.push((r.shard, r.record));
            }
        }
        Ok(())
    }

    /// Takes the batch in flight from the front of the buffer: records of one shard, up to the
    /// buffer size (at least one record) and [`MAX_BATCH_RECORDS`].
    fn form_batch(&mut self, now: u64) -> Result<()> {
        let shard = self.buffer.first().map(|(s, _)| *s).unwrap_or_default();
        let mut take = 0;
        let mut bytes = 0u64;
        for (s, r) in &self.buffer {
            let size = r.data.len() as u64;
            let over = take > 0 && bytes.saturating_add(size) > self.destination.buffering.size_bytes;
            if *s != shard || over || take == MAX_BATCH_RECORDS {
                break;
            }
            bytes = bytes.saturating_add(size);
            take += 1;
        }
        let records: Vec<StreamRecord> = self.buffer.drain(..take).map(|(_, r)| r).collect();
        self.buffer_bytes = self.buffer_bytes.saturating_sub(bytes);
        let (first, last) = match (records.first(), records.last()) {
            (Some(f), Some(l)) => (f.seq, l.seq),
            _ => return Err(Error::InvalidArgument("an empty batch".into())),
        };
        let request_id = request_id(&self.name, &self.incarnation, shard, first, last);
        let body = request_body(&request_id, now, &records);
        let body = match self.destination.content_encoding {
            ContentEncoding::None => body,
            ContentEncoding::Gzip => crate::stream::deliver::gzip(&body)
                .map_err(|e| Error::io("gzip a request body", &self.destination.backup.dir, e))?,
        };
        self.pending = Some(Pending {
            records,
            shard,
            request_id,
            body: Bytes::from(body),
            attempts: 0,
            first_attempt_ms: None,
            next_attempt_ms: now,
        });
        Ok(())
    }

    fn request(&self) -> HttpRequest {
        let Some(p) = &self.pending else {
            debug_assert!(false, "request() without a batch in flight");
            return HttpRequest {
                request_id: String::new(),
                url: self.destination.url.clone(),
                headers: Vec::new(),
                body: Bytes::new(),
                records: 0,
                attempt: 0,
            };
        };
        let d = &self.destination;
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("X-Amz-Firehose-Protocol-Version", "1.0".to_string()),
            ("X-Amz-Firehose-Request-Id", p.request_id.clone()),
            ("X-Amz-Firehose-Common-Attributes", ascii_json(&json!({"commonAttributes": d.common_attributes}))),
        ];
        if let Some(key) = &d.access_key {
            headers.push(("X-Amz-Firehose-Access-Key", key.clone()));
        }
        if d.content_encoding == ContentEncoding::Gzip {
            headers.push(("Content-Encoding", "gzip".to_string()));
        }
        HttpRequest {
            request_id: p.request_id.clone(),
            url: d.url.clone(),
            headers,
            body: p.body.clone(),
            records: p.records.len(),
            attempt: p.attempts.saturating_add(1),
        }
    }
}

fn batch_end(p: &Pending) -> (u32, u64) {
    (p.shard, p.records.last().map_or(0, |r| r.seq))
}

/// A request id that is the same whenever the same records form a batch again (after a
/// restart, say), so that an endpoint can drop the duplicate: a UUID-shaped digest of the
/// delivery stream and the batch's sequence range.
fn request_id(name: &str, incarnation: &str, shard: u32, first: u64, last: u64) -> String {
    let digest = Sha256::digest(format!("{name}\n{incarnation}\n{shard}\n{first}\n{last}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    // Version 4 / variant 1 bits, so that it reads as a well-formed UUID.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    uuid(&id)
}

/// `{"requestId":..,"timestamp":MS,"records":[{"data":BASE64},..]}`.
fn request_body(request_id: &str, timestamp_ms: u64, records: &[StreamRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + records.iter().map(|r| r.data.len() * 4 / 3 + 16).sum::<usize>());
    out.extend_from_slice(format!(r#"{{"requestId":"{request_id}","timestamp":{timestamp_ms},"records":["#).as_bytes());
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"data":""#);
        out.extend_from_slice(base64(&r.data).as_bytes());
        out.extend_from_slice(br#""}"#);
    }
    out.extend_from_slice(b"]}");
    out
}

/// JSON with every character outside ASCII escaped (`\uXXXX`), so that it fits a header.
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Longest part of an endpoint's answer kept in a failure's message.
const MAX_ANSWER_IN_MESSAGE: usize = 512;

/// Judges an endpoint's answer as Firehose does: delivered only on status 200 with a JSON body
/// whose `requestId` is the request's; any other status (even another 2xx) is a
/// `HttpEndpoint.DestinationException`, a 200 with another body a
/// `HttpEndpoint.InvalidResponseFromDestination`.
pub fn judge_response(request_id: &str, status: u16, body: &[u8]) -> HttpOutcome {
    let shown = || {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ANSWER_IN_MESSAGE)]).into_owned();
        if body.len() > MAX_ANSWER_IN_MESSAGE {
            format!("{text}...")
        } else {
            text
        }
    };
    if status != 200 {
        return HttpOutcome::Failed(Failure::new(
            DESTINATION_EXCEPTION,
            format!("The following response was received from the endpoint destination. {status}: {}", shown()),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if map.get("requestId").and_then(Value::as_str) == Some(request_id) => {
            HttpOutcome::Delivered
        }
        Ok(Value::Object(map)) if map.contains_key("requestId") => HttpOutcome::Failed(Failure::new(
            INVALID_RESPONSE,
            format!("The endpoint answered 200 for another request id than {request_id}: {}", shown()),
        )),
        _ => HttpOutcome::Failed(Failure::new(
            INVALID_RESPONSE,
            format!(
                "The endpoint answered 200 without the JSON object {{\"requestId\",\"timestamp\"}} Firehose expects: {}",
                shown()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_as_firehose_judges_them() {
        let id = "a";
        assert_eq!(judge_response(id, 200, br#"{"requestId":"a","timestamp":1}"#), HttpOutcome::Delivered);
        for (status, body, code) in [
            (201, &br#"{"requestId":"a","timestamp":1}"#[..], DESTINATION_EXCEPTION),
            (500, b"oops", DESTINATION_EXCEPTION),
            (413, br#"{"requestId":"a","errorMessage":"too large"}"#, DESTINATION_EXCEPTION),
            (200, b"", INVALID_RESPONSE),
            (200, b"ok", INVALID_RESPONSE),
            (200, br#"{"requestId":"b","timestamp":1}"#, INVALID_RESPONSE),
            (200, br#"["a"]"#, INVALID_RESPONSE),
        ] {
            match judge_response(id, status, body) {
                HttpOutcome::Failed(f) => assert_eq!(f.code, code, "{status} {body:?}"),
                HttpOutcome::Delivered => panic!("{status} {body:?} is no delivery"),
            }
        }
        let HttpOutcome::Failed(f) = judge_response(id, 500, &vec![b'x'; 10_000]) else { panic!() };
        assert!(f.message.len() < 700, "the answer is cut: {}", f.message.len());
    }

    #[test]
    fn the_body_is_firehoses_format() {
        let records: Vec<StreamRecord> = [&b"hello"[..], b"\x00\xff"]
            .iter()
            .enumerate()
            .map(|(i, d)| StreamRecord {
                seq: i as u64,
                partition_key: Bytes::from_static(b"r"),
                data: Bytes::copy_from_slice(d),
                time_ms: 5,
            })
            .collect();
        let body: Value = serde_json::from_slice(&request_body("id-1", 1234, &records)).expect("json");
        assert_eq!(
            body,
            json!({"requestId": "id-1", "timestamp": 1234, "records": [{"data": "aGVsbG8="}, {"data": "AP8="}]})
        );
        assert_eq!(ascii_json(&json!({"k": "é😀"})), r#"{"k":"\u00e9\ud83d\ude00"}"#);
        let id = request_id("s", "0", 0, 1, 9);
        assert_eq!(id, request_id("s", "0", 0, 1, 9), "the same batch, the same id");
        assert_ne!(id, request_id("s", "1", 0, 1, 9), "another incarnation, another id");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
