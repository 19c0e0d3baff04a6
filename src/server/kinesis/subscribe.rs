//! SubscribeToShard: enhanced fan-out's push read. The answer is an event stream
//! (`application/vnd.amazon.eventstream`, [`crate::server::wire::eventstream`]) over HTTP/2 or
//! HTTP/1.1 chunked: an `initial-response` event, then `SubscribeToShardEvent` messages with
//! records, `ContinuationSequenceNumber`, `MillisBehindLatest` and, at a closed shard's end,
//! `ChildShards`. It ends after [`SUBSCRIPTION_LIFETIME_MS`] as Kinesis's does, when the
//! server stops, or with an exception message (another subscription took over, the consumer
//! or stream is gone).
//!
//! No thread waits: a caught-up subscription awaits its shard's change signal (or a
//! heartbeat timer), and each read runs on the blocking pool.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::errors::{from_engine, Code, KinesisError};
use super::names::{self, shard_id};
use super::records::child_shards;
use super::{consumers, epoch_seconds, Ctx, Output};
use crate::server::body::{read_limited, BodyError};
use crate::server::route::{self, Answer, RawParams};
use crate::server::wire::eventstream::{self, Message};
use crate::server::wire::{Input, Protocol};
use crate::server::{auth, Shared};
use crate::stream::fanout::SUBSCRIPTION_LIFETIME_MS;
use crate::stream::{FanoutRead, StartingPosition, Subscription};

/// The event stream's content type.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// How long a caught-up subscription stays silent before it sends an event without records
/// (so the client sees its position and that the stream is alive).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Events buffered ahead of a slow client (each at most a second of the consumer's rate).
const EVENTS_AHEAD: usize = 2;

/// A streamed response body: the encoded events as they come.
#[derive(Debug)]
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|m| m.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// A response of the server: whole, or an event stream.
pub(crate) type ServerBody = Either<Full<Bytes>, EventBody>;

/// True if the request is a SubscribeToShard call (which answers with a stream).
pub(crate) fn is_subscribe(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t == format!("{}.SubscribeToShard", super::JSON_TARGET_PREFIX))
}

/// The table's handler: never reached, since the request path streams SubscribeToShard first.
pub(crate) async fn not_streamed(_ctx: Ctx, _input: Input) -> Output {
    Err(KinesisError::new(Code::InternalFailure, "SubscribeToShard is served as a stream."))
}

/// Serves a SubscribeToShard request: errors before the stream starts are ordinary answers.
pub(crate) async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ServerBody> {
    let started = Instant::now();
    let request_id = shared.next_request_id();
    let (parts, body) = req.into_parts();
    let body = match read_limited(body, shared.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge { seen, limit }) => {
            let call = route::route(&parts, &Bytes::new(), &shared);
            let message =
                format!("The request body is at least {seen} bytes, over this endpoint's limit of {limit} bytes.");
            let answer = super::too_large(&call, &request_id, &message);
            return route::finish(&shared, &call, answer, &request_id, started).map(Either::Left);
        }
        Err(BodyError::Broken(_)) => {
            return route::plain(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"broken body\n"),
            )
            .map(Either::Left);
        }
    };
    let call = route::route(&parts, &body, &shared);
    let fail = |e: KinesisError| {
        let response = super::error_response(call.cbor, &e, &request_id);
        let answer =
            Answer { response, operation: Some("SubscribeToShard"), resource: None, error: Some(e.code.shape()) };
        route::finish(&shared, &call, answer, &request_id, started).map(Either::Left)
    };
    let principal = match auth::authenticate(&shared.auth_settings(), "kinesis", &parts, &body) {
        Ok(principal) => principal,
        Err(e) => {
            let response = super::refusal_response(call.cbor, &e, &request_id);
            let error = Some(auth::errors::json11(e.kind).0);
            let answer = Answer { response, operation: Some("SubscribeToShard"), resource: None, error };
            return route::finish(&shared, &call, answer, &request_id, started).map(Either::Left);
        }
    };
    let params = match call.params.clone().and_then(RawParams::into_json) {
        Ok(map) => map.unwrap_or_default(),
        Err(reason) => return fail(KinesisError::new(Code::SerializationException, reason)),
    };
    let ctx = Ctx { shared: Arc::clone(&shared), principal };
    let input = Input { protocol: Protocol::Json, params };
    if let Err(denied) = super::access::check(&ctx, "SubscribeToShard", &input).await {
        return fail(denied);
    }
    let subscription = match subscribe(&ctx, input).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (tx, rx) = mpsc::channel(EVENTS_AHEAD);
    let cbor = call.cbor;
    tokio::spawn(push_events(ctx, subscription, tx, cbor));
    let mut response = Response::new(Either::Right(EventBody { rx }));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    shared.metrics.record("kinesis", Some("SubscribeToShard"), false, started.elapsed());
    response
}

/// Reads the request and subscribes on the blocking pool.
async fn subscribe(ctx: &Ctx, input: Input) -> Result<Subscription, KinesisError> {
    let arn = input.required_str("ConsumerARN")?;
    let (stream, consumer, seconds) = names::consumer_from_arn(&ctx.shared.identity, arn)?;
    let shard = names::parse_shard_id(input.required_str("ShardId")?)?;
    let start = match input.get("StartingPosition") {
        Some(Value::Object(p)) => starting_position(&input.nested(p.clone()))?,
        _ => return Err(KinesisError::from(crate::server::wire::ParamError::Missing("StartingPosition".into()))),
    };
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        consumers::find(engine, &stream, &consumer, Some(seconds), &account)?;
        let s = engine.stream(&stream).map_err(|_| KinesisError::no_stream(&stream, &account))?;
        s.subscribe(&consumer, shard, start).map_err(|e| match e {
            crate::Error::NotFound { kind: "shard", .. } => KinesisError::new(
                Code::ResourceNotFoundException,
                format!("Shard {} in stream {stream} under account {account} does not exist.", shard_id(shard)),
            ),
            other => from_engine(&other),
        })
    })
    .await
}

fn starting_position(p: &Input) -> Result<StartingPosition, KinesisError> {
    let kind = p.required_str("Type")?;
    Ok(match kind {
        "TRIM_HORIZON" => StartingPosition::TrimHorizon,
        "LATEST" => StartingPosition::Latest,
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let wire = names::parse_seq("sequenceNumber", p.required_str("SequenceNumber")?)?;
            names::start_at(wire, kind == "AFTER_SEQUENCE_NUMBER")
        }
        "AT_TIMESTAMP" => match p.get("Timestamp").and_then(Value::as_f64) {
            Some(seconds) => StartingPosition::AtTimestamp((seconds.max(0.0) * 1000.0) as u64),
            None => return Err(KinesisError::invalid("StartingPosition AT_TIMESTAMP needs a Timestamp.")),
        },
        other => {
            return Err(KinesisError::new(
                Code::ValidationException,
                format!("StartingPosition Type {} is not one of AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP.", crate::server::sqs::errors::shorten(other)),
            ));
        }
    })
}

fn event(kind: &str, cbor: bool, payload: &Value) -> Bytes {
    let (content_type, bytes) = super::encode_body(cbor, payload);
    let message =
        Message::new(&[(":event-type", kind), (":content-type", content_type), (":message-type", "event")], bytes);
    Bytes::from(eventstream::encode(&message))
}

fn exception(e: &KinesisError, cbor: bool) -> Bytes {
    let (content_type, bytes) = super::encode_body(cbor, &json!({"message": e.message}));
    let message = Message::new(
        &[(":exception-type", e.code.shape()), (":content-type", content_type), (":message-type", "exception")],
        bytes,
    );
    Bytes::from(eventstream::encode(&message))
}

fn shard_event(read: &FanoutRead) -> Value {
    let records: Vec<Value> = read
        .batch
        .records
        .iter()
        .map(|r| {
            json!({
                "SequenceNumber": names::seq(r.seq),
                "ApproximateArrivalTimestamp": epoch_seconds(r.time_ms),
                "Data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                "PartitionKey": String::from_utf8_lossy(&r.partition_key),
            })
        })
        .collect();
    let mut out = json!({
        "Records": records,
        "ContinuationSequenceNumber": names::position_seq(read.continuation),
        "MillisBehindLatest": read.batch.millis_behind_latest,
    });
    if let Some(children) = &read.child_shards {
        out["ChildShards"] = Value::Array(child_shards(children));
    }
    out
}

/// The subscription's life: reads, events, waits, until its end.
async fn push_events(ctx: Ctx, subscription: Subscription, tx: mpsc::Sender<Bytes>, cbor: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(SUBSCRIPTION_LIFETIME_MS);
    let ends_at_ms = subscription.ends_at_ms();
    let mut stop = ctx.shared.stop.clone();
    if tx.send(event("initial-response", cbor, &json!({}))).await.is_err() {
        return;
    }
    let mut subscription = Some(subscription);
    let mut last_event: Option<tokio::time::Instant> = None;
    loop {
        let Some(sub) = subscription.take() else { return };
        // The signal first, then the read: a record put in between wakes the wait below.
        let changed = match sub.changed() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(exception(&from_engine(&e), cbor)).await;
                return;
            }
        };
        let read = ctx
            .shared
            .blocking(move |engine| {
                let mut sub = sub;
                let result = sub.read();
                (engine.clock().now_ms(), (sub, result))
            })
            .await;
        let (now_ms, sub, result) = match read {
            Ok((now_ms, (sub, result))) => (now_ms, sub, result),
            Err(failed) => {
                let e = KinesisError::new(Code::InternalFailure, format!("The subscription failed: {}", failed.0));
                let _ = tx.send(exception(&e, cbor)).await;
                return;
            }
        };
        let read = match result {
            Ok(read) => read,
            Err(e) => {
                let _ = tx.send(exception(&from_engine(&e), cbor)).await;
                return;
            }
        };
        let heartbeat_due = last_event.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        if !read.batch.records.is_empty() || read.child_shards.is_some() || heartbeat_due {
            if tx.send(event("SubscribeToShardEvent", cbor, &shard_event(&read))).await.is_err() {
                return; // the client went away
            }
            last_event = Some(tokio::time::Instant::now());
        }
        if read.child_shards.is_some() || now_ms >= ends_at_ms || tokio::time::Instant::now() >= deadline {
            return;
        }
        if !read.batch.records.is_empty() && read.batch.behind_records > 0 && read.throttled_until_ms.is_none() {
            subscription = Some(sub);
            continue;
        }
        let nap = match read.throttled_until_ms {
            Some(until) => Duration::from_millis(until.saturating_sub(now_ms)).min(HEARTBEAT),
            None => HEARTBEAT,
        };
        tokio::select! {
            _ = changed, if read.throttled_until_ms.is_none() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = tokio::time::sleep_until(deadline) => return,
            _ = stop.wait_for(|stopping| *stopping) => return,
            _ = tx.closed() => return,
        }
        subscription = Some(sub);
    }
}
