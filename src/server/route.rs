//! The request path: read the body (bounded), tell the service, protocol and operation apart,
//! authenticate, run the operation, then count and log it.
//!
//! A request is for SQS when it carries `X-Amz-Target: AmazonSQS.<Operation>` (AWS JSON 1.0) or
//! an `Action` form parameter with `Version=2012-11-05` or none (the query protocol, whose
//! older clients POST to a queue URL's path). The services of the next issue are told apart the
//! same way: by their JSON target prefix (`Kinesis_20131202`, `Firehose_20150804`) or their
//! query `Version` (`2010-03-31` for SNS), each with its own operation table. A query request
//! without a `Version` to `/` whose `Action` is an SNS operation (a visit of an SNS SubscribeURL
//! or UnsubscribeURL) is SNS's; to a queue URL's path it is SQS's (`AddPermission` and
//! `RemovePermission` are operations of both).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::body::{read_limited, BodyError};
use super::kinesis::subscribe::{self, ServerBody};
use super::logging::{fields, LogLevel};
use super::wire::{query, Protocol};
use super::{auth, firehose, kinesis, metrics, sns, sqs, Shared};

/// The services the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Amazon SQS.
    Sqs,
    /// Amazon SNS.
    Sns,
    /// Amazon Data Firehose.
    Firehose,
    /// Amazon Kinesis Data Streams.
    Kinesis,
}

impl ServiceKind {
    /// The name used in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Sqs => "sqs",
            ServiceKind::Sns => "sns",
            ServiceKind::Firehose => "firehose",
            ServiceKind::Kinesis => "kinesis",
        }
    }

    /// The service name a SigV4 credential scope must name.
    pub fn signing_name(self) -> &'static str {
        match self {
            ServiceKind::Sqs => "sqs",
            ServiceKind::Sns => "sns",
            ServiceKind::Firehose => "firehose",
            ServiceKind::Kinesis => "kinesis",
        }
    }
}

/// A request's parameters before the operation's own reading of them.
#[derive(Debug, Clone)]
pub enum RawParams {
    /// A JSON object (AWS JSON protocol).
    Json(Map<String, Value>),
    /// Decoded form pairs (query protocol), body and URL query string together.
    Form(Vec<(String, String)>),
    /// A JSON body left for its operation to read typed, straight from the bytes (Kinesis
    /// PutRecords, whose records are nearly all of it; see `kinesis::records::TypedPut`).
    Unparsed(Bytes),
}

/// A request, routed.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which service runs it.
    pub service: ServiceKind,
    /// How it came.
    pub protocol: Protocol,
    /// The operation's name, if the request names one.
    pub operation: Option<String>,
    /// Its parameters, or why they could not be read.
    pub params: Result<RawParams, String>,
    /// The URL path, when it may name a queue (`/ACCOUNT/NAME`, query protocol).
    pub path: String,
    /// The host the client addressed (for queue URLs).
    pub host: String,
    /// The body came as CBOR (`application/x-amz-cbor-1.1`), and the answer goes as CBOR.
    pub cbor: bool,
}

impl RawParams {
    /// The JSON object, an [`RawParams::Unparsed`] body parsed now; `None` for form pairs.
    pub(crate) fn into_json(self) -> Result<Option<Map<String, Value>>, String> {
        match self {
            RawParams::Json(map) => Ok(Some(map)),
            RawParams::Unparsed(body) => json_object(&body).map(Some),
            RawParams::Form(_) => Ok(None),
        }
    }
}

/// An AWS JSON body: an object (empty when the body is).
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the request body must be a JSON object".to_string()),
        Err(e) => Err(format!("the request body is not valid JSON: {e}")),
    }
}

impl Call {
    /// Moves the parameters out (a service reads them once; a batch's entries are not copied).
    /// What is left behind is an empty JSON object.
    pub(crate) fn take_params(&mut self) -> Result<RawParams, String> {
        std::mem::replace(&mut self.params, Ok(RawParams::Json(Map::new())))
    }
}

/// What a service answers, with what the server counts and logs about it.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP response.
    pub response: Response<Full<Bytes>>,
    /// The operation, when known (unknown ones are counted together).
    pub operation: Option<&'static str>,
    /// The queue (or other resource) it addressed, for the log.
    pub resource: Option<String>,
    /// The error code, when it failed.
    pub error: Option<&'static str>,
}

/// Serves one request: SubscribeToShard as an event stream, every other one through
/// [`handle`].
pub(crate) async fn dispatch(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ServerBody> {
    if subscribe::is_subscribe(req.headers()) {
        return subscribe::serve(shared, req).await;
    }
    handle(shared, req).await.map(http_body_util::Either::Left)
}

/// Serves one request. Never fails: every problem is an answer in the request's protocol.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET && parts.uri.path() == "/health" {
        return plain(StatusCode::OK, "text/plain; charset=utf-8", Bytes::from_static(b"ok\n"));
    }
    if parts.method == Method::GET && parts.uri.path() == "/metrics" {
        let text = metrics::render(&shared).await;
        return plain(StatusCode::OK, metrics::CONTENT_TYPE, Bytes::from(text));
    }
    let request_id = shared.next_request_id();
    let body = read_limited(body, shared.config.max_body_bytes).await;
    let (mut call, body) = match body {
        Ok(bytes) => (route(&parts, &bytes, &shared), bytes),
        Err(BodyError::TooLarge { seen, limit }) => {
            let mut call = route(&parts, &Bytes::new(), &shared);
            call.params = Err(format!("the request body is at least {seen} bytes, over the limit of {limit} bytes"));
            let message =
                format!("The request body is at least {seen} bytes, over this endpoint's limit of {limit} bytes.");
            let answer = match call.service {
                ServiceKind::Sqs => sqs::too_large(&call, &request_id, &message),
                ServiceKind::Sns => sns::too_large(&call, &request_id, &message),
                ServiceKind::Firehose => firehose::too_large(&call, &request_id, &message),
                ServiceKind::Kinesis => kinesis::too_large(&call, &request_id, &message),
            };
            return finish(&shared, &call, answer, &request_id, started);
        }
        Err(BodyError::Broken(reason)) => {
            shared.log.log(LogLevel::Debug, "request body broken", fields!("error" => reason));
            return plain(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", Bytes::from_static(b"broken body\n"));
        }
    };
    // The authentication step: every service's requests pass here before they run.
    let authenticated = auth::authenticate(&shared.auth_settings(), call.service.signing_name(), &parts, &body);
    let principal = match authenticated {
        Ok(p) => p,
        Err(e) if call.service == ServiceKind::Sns => match sns::unsigned(&call, e, &shared.config.account_id) {
            Ok(p) => p,
            Err(e) => return finish(&shared, &call, sns::refused(&call, &request_id, &e), &request_id, started),
        },
        Err(e) => {
            let answer = match call.service {
                ServiceKind::Sqs => sqs::refused(&call, &request_id, &e),
                ServiceKind::Sns => sns::refused(&call, &request_id, &e),
                ServiceKind::Firehose => firehose::refused(&call, &request_id, &e),
                ServiceKind::Kinesis => kinesis::refused(&call, &request_id, &e),
            };
            return finish(&shared, &call, answer, &request_id, started);
        }
    };
    let answer = match call.service {
        ServiceKind::Sqs => sqs::handle(Arc::clone(&shared), &mut call, &request_id, principal).await,
        ServiceKind::Sns => sns::handle(Arc::clone(&shared), &call, &request_id, principal).await,
        ServiceKind::Firehose => firehose::handle(Arc::clone(&shared), &mut call, &request_id, principal).await,
        ServiceKind::Kinesis => kinesis::handle(Arc::clone(&shared), &mut call, &request_id, principal).await,
    };
    finish(&shared, &call, answer, &request_id, started)
}

/// Counts and logs an answered request.
pub(crate) fn finish(
    shared: &Shared,
    call: &Call,
    answer: Answer,
    request_id: &str,
    started: Instant,
) -> Response<Full<Bytes>> {
    let elapsed = started.elapsed();
    let status = answer.response.status().as_u16();
    shared.metrics.record(call.service.name(), answer.operation, answer.error.is_some(), elapsed);
    if shared.log.enabled(LogLevel::Debug) {
        shared.log.log(
            LogLevel::Debug,
            "request",
            fields!(
                "request_id" => request_id,
                "service" => call.service.name(),
                "protocol" => if call.protocol == Protocol::Json { "json" } else { "query" },
                "operation" => answer.operation.map(str::to_string).or_else(|| call.operation.clone()).unwrap_or_default(),
                "status" => status,
                "duration_ms" => (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            )
            .into_iter()
            .chain(answer.resource.clone().map(|q| ("queue".to_string(), q.into())))
            .chain(answer.error.map(|e| ("error".to_string(), e.into())))
            .collect(),
        );
    }
    if status >= 500 {
        shared.log.error(
            "request failed on the server's side",
            fields!("request_id" => request_id, "status" => status, "error" => answer.error.unwrap_or_default()),
        );
    }
    answer.response
}

/// Tells a request's service, protocol and operation apart, and reads its parameters.
pub(crate) fn route(parts: &Parts, body: &Bytes, shared: &Shared) -> Call {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| shared.local_addr.to_string());
    let path = parts.uri.path().to_string();
    if let Some(target) = parts.headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        if prefix == kinesis::JSON_TARGET_PREFIX {
            let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let cbor = kinesis::is_cbor(content_type);
            return Call {
                service: ServiceKind::Kinesis,
                protocol: Protocol::Json,
                operation: (!operation.is_empty()).then(|| operation.to_string()),
                params: kinesis::read_params_of(operation, cbor, body),
                path,
                host,
                cbor,
            };
        }
        // Every other target is SQS's to answer (an unknown prefix is an unknown operation).
        let (service, known_prefix) = match prefix {
            firehose::JSON_TARGET_PREFIX => (ServiceKind::Firehose, true),
            _ => (ServiceKind::Sqs, prefix == sqs::JSON_TARGET_PREFIX),
        };
        let params = json_object(body).map(RawParams::Json);
        return Call {
            service,
            protocol: Protocol::Json,
            operation: (known_prefix && !operation.is_empty()).then(|| operation.to_string()),
            params,
            path,
            host,
            cbor: false,
        };
    }
    // The query protocol: parameters from the URL's query string and a form body.
    let mut pairs = Vec::new();
    let mut problem = None;
    if let Some(q) = parts.uri.query() {
        match query::parse_form(q.as_bytes()) {
            Ok(p) => pairs.extend(p),
            Err(e) => problem = Some(e),
        }
    }
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !body.is_empty() {
        if !is_form {
            problem.get_or_insert_with(|| {
                "the request has neither an X-Amz-Target header nor a form body (Content-Type: application/x-www-form-urlencoded)".to_string()
            });
        } else {
            match query::parse_form(body) {
                Ok(p) => pairs.extend(p),
                Err(e) => problem = Some(e),
            }
        }
    }
    let operation = pairs.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone());
    let version = pairs.iter().find(|(k, _)| k == "Version").map(|(_, v)| v.as_str());
    let service = match version {
        Some(sns::API_VERSION) => ServiceKind::Sns,
        // SNS is posted to `/`; a queue URL's path makes an operation both serve (AddPermission,
        // RemovePermission) SQS's.
        None if path == "/" && operation.as_deref().is_some_and(sns::serves) => ServiceKind::Sns,
        _ => ServiceKind::Sqs,
    };
    Call {
        service,
        protocol: Protocol::Query,
        operation,
        params: match problem {
            Some(p) => Err(p),
            None => Ok(RawParams::Form(pairs)),
        },
        path,
        host,
        cbor: false,
    }
}

/// A response with a body and content type.
pub(crate) fn plain(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
