//! Amazon Kinesis Data Streams over the wire: AWS JSON 1.1 (`X-Amz-Target:
//! Kinesis_20131202.<Operation>`, blobs as base64) and CBOR (`application/x-amz-cbor-1.1`,
//! the Java SDKs' default, blobs as byte strings, timestamps as tag 1) on the server's one port.
//! [`OPERATIONS`] is the one table of what is served; `docs/compatibility.md` lists the same
//! operations and a test holds the two together. [`errors::from_engine`] is the one mapping
//! of engine errors. SubscribeToShard answers with an event stream, served by [`subscribe`]
//! outside the request path's whole-body answers.

pub mod access;
pub mod consumers;
pub mod errors;
pub mod names;
pub mod policies;
pub mod records;
pub mod streams;
pub mod subscribe;

use super::auth::errors::json11;
use super::auth::{AuthError, Principal};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use self::errors::{Code, KinesisError};
use super::route::{Answer, Call, RawParams};
use super::wire::cbor::{self, Hints};
use super::wire::Support;
use super::wire::{Input, Protocol};
use super::Shared;
use crate::Engine;

/// `X-Amz-Target: Kinesis_20131202.<Operation>`.
pub const JSON_TARGET_PREFIX: &str = "Kinesis_20131202";
/// Content type of JSON requests and answers.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Content type of CBOR requests and answers.
pub const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

/// Members that are blobs or timestamps, for CBOR answers.
pub(crate) const CBOR_HINTS: Hints = Hints {
    blobs: &["Data"],
    timestamps: &["ApproximateArrivalTimestamp", "StreamCreationTimestamp", "ConsumerCreationTimestamp"],
};

/// What an operation answers.
pub(crate) type Output = Result<Map<String, Value>, KinesisError>;
type Handler = fn(Ctx, Input) -> Pin<Box<dyn Future<Output = Output> + Send>>;

/// One Kinesis operation.
pub struct Operation {
    /// Its name (`PutRecord`).
    pub name: &'static str,
    /// How completely it is supported (`docs/compatibility.md` says how it differs).
    #[cfg_attr(not(test), allow(dead_code))]
    pub support: Support,
    handler: Handler,
}

macro_rules! op {
    ($name:literal, $support:ident, $handler:path) => {
        Operation { name: $name, support: Support::$support, handler: |ctx, input| Box::pin($handler(ctx, input)) }
    };
}

/// Every Kinesis operation weir serves, by name. `SubscribeToShard` is listed for the record;
/// its answer streams, so the request path hands it to [`subscribe`] before this table.
pub static OPERATIONS: &[Operation] = &[
    op!("AddTagsToStream", Full, streams::add_tags),
    op!("CreateStream", Partial, streams::create_stream),
    op!("DecreaseStreamRetentionPeriod", Full, streams::decrease_retention),
    op!("DeleteResourcePolicy", Partial, policies::delete_resource_policy),
    op!("DeleteStream", Partial, streams::delete_stream),
    op!("DeregisterStreamConsumer", Full, consumers::deregister),
    op!("DescribeLimits", Partial, streams::describe_limits),
    op!("DescribeStream", Partial, streams::describe_stream),
    op!("DescribeStreamConsumer", Full, consumers::describe),
    op!("DescribeStreamSummary", Partial, streams::describe_stream_summary),
    op!("GetRecords", Partial, records::get_records),
    op!("GetResourcePolicy", Partial, policies::get_resource_policy),
    op!("GetShardIterator", Full, records::get_shard_iterator),
    op!("IncreaseStreamRetentionPeriod", Full, streams::increase_retention),
    op!("ListShards", Full, streams::list_shards),
    op!("ListStreamConsumers", Full, consumers::list),
    op!("ListStreams", Full, streams::list_streams),
    op!("ListTagsForResource", Full, streams::list_tags_for_resource),
    op!("ListTagsForStream", Full, streams::list_tags),
    op!("MergeShards", Full, streams::merge_shards),
    op!("PutRecord", Partial, records::put_record),
    op!("PutRecords", Full, records::put_records),
    op!("PutResourcePolicy", Partial, policies::put_resource_policy),
    op!("RegisterStreamConsumer", Full, consumers::register),
    op!("RemoveTagsFromStream", Full, streams::remove_tags),
    op!("SplitShard", Full, streams::split_shard),
    op!("StartStreamEncryption", Partial, streams::start_encryption),
    op!("StopStreamEncryption", Partial, streams::stop_encryption),
    op!("SubscribeToShard", Partial, subscribe::not_streamed),
    op!("TagResource", Full, streams::tag_resource),
    op!("UntagResource", Full, streams::untag_resource),
    op!("UpdateShardCount", Partial, streams::update_shard_count),
    op!("UpdateStreamMode", Full, streams::update_stream_mode),
];

/// What an operation runs with. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    /// Who the request acts as (checked by [`access::check`] before the operation runs).
    pub principal: Principal,
}

impl Ctx {
    /// Runs `f`, whose errors are Kinesis's already, with the engine on the blocking pool.
    pub async fn engine_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, KinesisError> + Send + 'static,
    ) -> Result<T, KinesisError> {
        match self.shared.blocking(f).await {
            Ok(result) => result,
            Err(failed) => Err(KinesisError::new(Code::InternalFailure, format!("The request failed: {}", failed.0))),
        }
    }

    /// The stream a request names, by `StreamName` or `StreamARN` (one of them is required).
    pub fn stream_name(&self, input: &Input) -> Result<String, KinesisError> {
        if let Some(name) = input.str("StreamName")? {
            return Ok(name.to_string());
        }
        match input.str("StreamARN")? {
            Some(arn) => names::stream_from_arn(&self.shared.identity, arn),
            None => {
                Err(KinesisError::new(Code::ValidationException, "Either StreamName or StreamARN must be provided."))
            }
        }
    }

    /// The ARN of stream `name`.
    pub fn stream_arn(&self, name: &str) -> String {
        names::stream_arn(&self.shared.identity, name)
    }

    /// The account the server answers for.
    pub fn account(&self) -> &str {
        &self.shared.identity.account_id
    }
}

/// Reads the body of a request for `operation`: JSON, or CBOR when the content type says so.
/// A JSON PutRecords body is left [`RawParams::Unparsed`], for [`records::TypedPut`].
pub(crate) fn read_params_of(operation: &str, cbor: bool, body: &Bytes) -> Result<RawParams, String> {
    if !cbor && operation == "PutRecords" {
        return Ok(RawParams::Unparsed(body.clone()));
    }
    read_object(cbor, body).map(RawParams::Json)
}

/// A Kinesis request body as a JSON object (empty when the body is).
fn read_object(cbor: bool, body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value = if cbor {
        cbor::decode(body).map_err(|e| format!("the request body is not valid CBOR: {e}"))?
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| format!("the request body is not valid JSON: {e}"))?
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("the request body must be an object".to_string()),
    }
}

/// True if the request's content type is CBOR.
pub(crate) fn is_cbor(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| ct.starts_with(CBOR_CONTENT_TYPE))
}

/// The operation a call names, if it is one of this table's.
pub(crate) fn operation(call: &Call) -> Option<&'static Operation> {
    call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n))
}

/// Runs one Kinesis request, authorized for `principal`, and renders its answer.
pub(crate) async fn handle(shared: Arc<Shared>, call: &mut Call, request_id: &str, principal: Principal) -> Answer {
    // A PutRecords body is read typed when it has the expected shape; anything else takes the
    // general path, which also words every error.
    let read = match call.take_params() {
        Ok(RawParams::Json(map)) => Ok((map, None)),
        Ok(RawParams::Unparsed(body)) => match records::TypedPut::read(&body) {
            Some(put) => Ok((put.stream_params(), Some(put))),
            None => read_object(false, &body).map(|map| (map, None)),
        },
        Ok(RawParams::Form(_)) => Err("not a Kinesis request".to_string()),
        Err(reason) => Err(reason),
    };
    let (params, typed_put) = match read {
        Ok(read) => read,
        Err(reason) => {
            let error = KinesisError::new(Code::SerializationException, reason);
            return answer(call.cbor, operation(call), None, Err(error), request_id);
        }
    };
    let Some(operation) = operation(call) else {
        let error = KinesisError::new(
            Code::UnknownOperationException,
            match &call.operation {
                Some(name) => format!("Operation {} is not a Kinesis operation weir serves.", errors_shorten(name)),
                None => "The X-Amz-Target header names no Kinesis operation (Kinesis_20131202.<Operation>).".into(),
            },
        );
        return answer(call.cbor, None, None, Err(error), request_id);
    };
    let input = Input { protocol: Protocol::Json, params };
    let resource = input.str("StreamName").ok().flatten().map(errors_shorten);
    let ctx = Ctx { shared, principal };
    if let Err(denied) = access::check(&ctx, operation.name, &input).await {
        return answer(call.cbor, Some(operation), resource, Err(denied), request_id);
    }
    if let Some(put) = typed_put {
        let result = records::put_records_typed(ctx, input, put).await;
        let encoded = result.map(|outcome| (JSON_CONTENT_TYPE, outcome.to_json()));
        return answer_encoded(false, Some(operation), resource, encoded, request_id);
    }
    let result = (operation.handler)(ctx, input).await;
    answer(call.cbor, Some(operation), resource, result, request_id)
}

fn errors_shorten(s: &str) -> String {
    super::sqs::errors::shorten(s)
}

/// The answer to a request whose body is over the limit.
pub(crate) fn too_large(call: &Call, request_id: &str, message: &str) -> Answer {
    answer(call.cbor, operation(call), None, Err(KinesisError::new(Code::RequestTooLarge, message)), request_id)
}

/// The answer to a request the authentication step refused.
pub(crate) fn refused(call: &Call, request_id: &str, error: &AuthError) -> Answer {
    let response = refusal_response(call.cbor, error, request_id);
    Answer { response, operation: operation(call).map(|o| o.name), resource: None, error: Some(json11(error.kind).0) }
}

/// A refusal of the authentication or authorization step as Kinesis sends it (its JSON 1.1
/// shapes), in the request's encoding.
pub(crate) fn refusal_response(cbor: bool, error: &AuthError, request_id: &str) -> Response<Full<Bytes>> {
    let (shape, status) = json11(error.kind);
    let body = json!({"__type": shape, "message": error.message});
    let mut response =
        body_response(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), cbor, &body, request_id);
    response.headers_mut().insert(HeaderName::from_static("x-amzn-errortype"), HeaderValue::from_static(shape));
    response
}

fn answer(
    cbor: bool,
    operation: Option<&Operation>,
    resource: Option<String>,
    result: Output,
    request_id: &str,
) -> Answer {
    let encoded = result.map(|output| encode_body(cbor, &Value::Object(output)));
    answer_encoded(cbor, operation, resource, encoded, request_id)
}

/// An answer whose body, on success, is encoded already: its content type and bytes.
fn answer_encoded(
    cbor: bool,
    operation: Option<&Operation>,
    resource: Option<String>,
    result: Result<(&'static str, Vec<u8>), KinesisError>,
    request_id: &str,
) -> Answer {
    let error = result.as_ref().err().map(|e| e.code.shape());
    let response = match result {
        Ok((content_type, bytes)) => super::sqs::respond(StatusCode::OK, content_type, bytes, request_id),
        Err(e) => error_response(cbor, &e, request_id),
    };
    Answer { response, operation: operation.map(|o| o.name), resource, error }
}

/// An error as Kinesis sends it: `__type` and `message` in the request's encoding, the status,
/// and the `x-amzn-ErrorType` header.
pub(crate) fn error_response(cbor: bool, e: &KinesisError, request_id: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"__type": e.code.shape(), "message": e.message});
    let mut response = body_response(status, cbor, &body, request_id);
    response
        .headers_mut()
        .insert(HeaderName::from_static("x-amzn-errortype"), HeaderValue::from_static(e.code.shape()));
    response
}

fn body_response(status: StatusCode, cbor: bool, body: &Value, request_id: &str) -> Response<Full<Bytes>> {
    let (content_type, bytes) = encode_body(cbor, body);
    super::sqs::respond(status, content_type, bytes, request_id)
}

/// A JSON-shaped answer in the request's encoding: its content type and bytes.
pub(crate) fn encode_body(cbor: bool, body: &Value) -> (&'static str, Vec<u8>) {
    if cbor {
        (CBOR_CONTENT_TYPE, cbor::encode(body, &CBOR_HINTS))
    } else {
        (JSON_CONTENT_TYPE, serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// A timestamp as the JSON shape carries it: epoch seconds with milliseconds.
pub(crate) fn epoch_seconds(ms: u64) -> Value {
    serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Value::from(ms / 1000), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::compatibility_document;

    #[test]
    fn the_table_names_each_operation_once() {
        let mut names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "alphabetical");
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len());
    }

    /// The Kinesis section of `docs/compatibility.md` has one row per operation of the table,
    /// `| Name | yes/partial/no | ... |`, and `no` rows only for operations the table lacks.
    #[test]
    fn the_compatibility_document_matches_the_operation_table() {
        let doc = compatibility_document::text();
        let section = doc.split("# Kinesis compatibility").nth(1).expect("a Kinesis section");
        let lines = section.lines().take_while(|l| !l.starts_with("## Kinesis errors"));
        let rows = compatibility_document::check(lines, OPERATIONS.iter().map(|o| (o.name, o.support)));
        for (name, support) in rows {
            assert_eq!(support, "no", "{name} is in the document as served, but not in the table");
        }
    }
}
