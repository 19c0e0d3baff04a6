//! Amazon Data Firehose over the wire: AWS JSON 1.1, `X-Amz-Target: Firehose_20150804.<Op>`,
//! blobs in base64. [`OPERATIONS`] is the one table of what is served, held to
//! `docs/compatibility.md` by a test; [`errors`] the one mapping of errors. The delivery
//! streams are the engine's ([`crate::firehose`]); [`runner`] runs their deliveries inside
//! the server, one task each.

pub mod access;
pub mod destinations;
pub mod errors;
pub mod records;
pub mod runner;
pub mod streams;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use self::errors::{from_engine, Code, FirehoseError};
use super::auth::{AuthError, Principal};
use super::route::{Answer, Call, RawParams};
use super::wire::Input;
use super::Shared;
use crate::Engine;

/// `X-Amz-Target: Firehose_20150804.<Operation>`.
pub const JSON_TARGET_PREFIX: &str = "Firehose_20150804";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What an operation answers.
pub(crate) type Output = Result<Map<String, Value>, FirehoseError>;
type Handler = fn(Ctx, Input) -> Pin<Box<dyn Future<Output = Output> + Send>>;

pub use super::wire::Support;

/// One Firehose operation.
pub struct Operation {
    /// Its name (`PutRecordBatch`).
    pub name: &'static str,
    /// How completely it is supported.
    #[cfg_attr(not(test), allow(dead_code))]
    pub support: Support,
    handler: Handler,
}

macro_rules! op {
    ($name:literal, $support:ident, $handler:path) => {
        Operation { name: $name, support: Support::$support, handler: |ctx, input| Box::pin($handler(ctx, input)) }
    };
}

/// Every Firehose operation weir serves, in the API reference's order.
pub static OPERATIONS: &[Operation] = &[
    op!("CreateDeliveryStream", Partial, streams::create_delivery_stream),
    op!("DeleteDeliveryStream", Partial, streams::delete_delivery_stream),
    op!("DescribeDeliveryStream", Partial, streams::describe_delivery_stream),
    op!("ListDeliveryStreams", Full, streams::list_delivery_streams),
    op!("PutRecord", Full, records::put_record),
    op!("PutRecordBatch", Partial, records::put_record_batch),
];

/// What an operation runs with.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    /// Who the request acts as (checked by [`access::check`] before the operation runs).
    pub principal: Principal,
}

impl Ctx {
    /// Runs `f` with the engine on the blocking pool, its errors mapped to Firehose's.
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, FirehoseError> {
        match self.shared.blocking(f).await {
            Ok(result) => result.map_err(|e| from_engine(&e)),
            Err(failed) => Err(FirehoseError::new(Code::InternalFailure, format!("The request failed: {}", failed.0))),
        }
    }

    /// `arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME`.
    pub fn arn(&self, name: &str) -> String {
        delivery_stream_arn(&self.shared, name)
    }
}

/// A delivery stream's ARN.
pub(crate) fn delivery_stream_arn(shared: &Shared, name: &str) -> String {
    format!("arn:aws:firehose:{}:{}:deliverystream/{name}", shared.identity.region, shared.identity.account_id)
}

/// Runs one Firehose request, authorized for `principal`, and renders its answer.
pub(crate) async fn handle(shared: Arc<Shared>, call: &mut Call, request_id: &str, principal: Principal) -> Answer {
    let params = match call.take_params() {
        Ok(RawParams::Json(map)) => map,
        Ok(RawParams::Form(_) | RawParams::Unparsed(_)) => {
            let e = FirehoseError::new(Code::Serialization, "Firehose takes AWS JSON 1.1 requests only.");
            return answer(None, None, Err(e), request_id);
        }
        Err(reason) => return answer(None, None, Err(FirehoseError::new(Code::Serialization, reason)), request_id),
    };
    let name = call.operation.as_deref().unwrap_or_default();
    let Some(operation) = OPERATIONS.iter().find(|o| o.name == name) else {
        let shown: String = name.chars().take(64).collect();
        let e = FirehoseError::new(
            Code::UnknownOperation,
            format!("Operation {shown:?} is not a Firehose operation weir serves."),
        );
        return answer(None, None, Err(e), request_id);
    };
    let input = Input { protocol: super::wire::Protocol::Json, params };
    let resource = input.str("DeliveryStreamName").ok().flatten().map(|s| s.chars().take(64).collect());
    let ctx = Ctx { shared, principal };
    if let Err(denied) = access::check(&ctx, operation.name, &input) {
        return answer(Some(operation), resource, Err(denied), request_id);
    }
    let result = (operation.handler)(ctx, input).await;
    answer(Some(operation), resource, result, request_id)
}

/// The answer to a request whose body is over the limit.
pub(crate) fn too_large(call: &Call, request_id: &str, message: &str) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    let mut a = answer(operation, None, Err(FirehoseError::invalid(message)), request_id);
    *a.response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    a
}

/// The answer to a request the authentication step refused.
pub(crate) fn refused(call: &Call, request_id: &str, error: &AuthError) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    let (shape, status) = crate::server::auth::errors::json11(error.kind);
    let body = json!({"__type": shape, "message": error.message}).to_string();
    respond(
        operation,
        None,
        StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        body,
        Some(shape),
        request_id,
    )
}

fn answer(operation: Option<&Operation>, resource: Option<String>, result: Output, request_id: &str) -> Answer {
    let error = result.as_ref().err().map(|e| e.code.shape());
    let (status, body) = match result {
        Ok(output) => (StatusCode::OK, Value::Object(output).to_string()),
        Err(e) => (
            StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"__type": e.code.json_type(), "message": e.message}).to_string(),
        ),
    };
    respond(operation, resource, status, body, error, request_id)
}

/// A JSON 1.1 answer with the headers Firehose sends; `error` is the shape of a failure.
fn respond(
    operation: Option<&Operation>,
    resource: Option<String>,
    status: StatusCode,
    body: String,
    error: Option<&'static str>,
    request_id: &str,
) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    if let Some(e) = error {
        if let Ok(v) = HeaderValue::from_str(e) {
            headers.insert(HeaderName::from_static("x-amzn-errortype"), v);
        }
    }
    Answer { response, operation: operation.map(|o| o.name), resource, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::compatibility_document;

    /// `docs/compatibility.md` has, under its Firehose heading (up to the next heading), one
    /// table row per operation,
    /// `| Name | yes/partial | ... |`, and says `partial` exactly where the table says so.
    #[test]
    fn the_compatibility_document_matches_the_operation_table() {
        let doc = compatibility_document::text();
        let lines =
            doc.lines().skip_while(|l| !l.starts_with("# Firehose")).skip(1).take_while(|l| !l.starts_with('#'));
        let rows = compatibility_document::check(lines, OPERATIONS.iter().map(|o| (o.name, o.support)));
        for (name, support) in rows {
            assert_eq!(support, "no", "{name} is in the document as served but not in the table");
        }
    }
}
