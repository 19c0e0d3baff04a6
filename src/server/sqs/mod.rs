//! Amazon SQS over the wire. [`OPERATIONS`] is the one table of what is served: each
//! operation's name, its query-protocol names, how far it is supported, and its handler.
//! `docs/compatibility.md` lists the same operations, and a test holds the two together.
//!
//! An operation reads an [`Input`] (the JSON protocol's shape, whichever protocol carried it)
//! and answers a JSON-shaped map or an [`SqsError`]; `handle` renders either in the
//! request's protocol.

pub mod access;
pub mod batch;
pub mod context;
pub mod errors;
pub mod limits;
pub mod md5;
pub mod message_attributes;
pub mod messages;
pub mod move_tasks;
pub mod permissions;
pub mod queue_attributes;
pub mod queues;
pub mod receive;
pub mod tags;
pub mod urls;
pub mod wait;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use self::context::Ctx;
use self::errors::{Code, SqsError};
use super::auth::{AuthError, Principal};
use super::route::{Answer, Call, RawParams};
use super::wire::query::{self, Member};
use super::wire::xml::XmlWriter;
use super::wire::{Input, Protocol};
use super::Shared;

/// `X-Amz-Target: AmazonSQS.<Operation>`.
pub const JSON_TARGET_PREFIX: &str = "AmazonSQS";
/// The XML namespace of query answers.
pub const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const XML_CONTENT_TYPE: &str = "text/xml";

/// What an operation answers.
pub(crate) type Output = Result<Map<String, Value>, SqsError>;
type Handler = fn(Ctx, Input) -> Pin<Box<dyn Future<Output = Output> + Send>>;

pub use super::wire::Support;

/// One SQS operation.
pub struct Operation {
    /// Its name (`SendMessage`).
    pub name: &'static str,
    /// How completely it is supported (read by the test that holds `docs/compatibility.md` to
    /// this table).
    #[cfg_attr(not(test), allow(dead_code))]
    pub support: Support,
    /// Whether its query answer has a `<NameResult>` element.
    has_result: bool,
    /// Query names of its request that differ from the JSON ones (besides [`COMMON_REQUEST`]).
    request: &'static [Member],
    /// XML names of its answer that differ from the JSON ones (besides [`COMMON_RESPONSE`]).
    response: &'static [Member],
    handler: Handler,
}

const COMMON_REQUEST: &[Member] = &[
    Member::List { json: "AttributeNames", query: "AttributeName" },
    Member::List { json: "MessageSystemAttributeNames", query: "MessageSystemAttributeName" },
    Member::List { json: "MessageAttributeNames", query: "MessageAttributeName" },
    Member::Map { json: "Attributes", query: "Attribute", key: "Name", value: "Value" },
    Member::Map { json: "MessageAttributes", query: "MessageAttribute", key: "Name", value: "Value" },
    Member::Map { json: "MessageSystemAttributes", query: "MessageSystemAttribute", key: "Name", value: "Value" },
    Member::Map { json: "Tags", query: "Tag", key: "Key", value: "Value" },
    Member::List { json: "TagKeys", query: "TagKey" },
    Member::List { json: "AWSAccountIds", query: "AWSAccountId" },
    Member::List { json: "Actions", query: "ActionName" },
    Member::List { json: "StringListValues", query: "StringListValue" },
    Member::List { json: "BinaryListValues", query: "BinaryListValue" },
];

const COMMON_RESPONSE: &[Member] = &[
    Member::Map { json: "Attributes", query: "Attribute", key: "Name", value: "Value" },
    Member::Map { json: "MessageAttributes", query: "MessageAttribute", key: "Name", value: "Value" },
    Member::Map { json: "Tags", query: "Tag", key: "Key", value: "Value" },
    Member::List { json: "Messages", query: "Message" },
    Member::List { json: "Failed", query: "BatchResultErrorEntry" },
];

/// Query parameters of the protocol itself, not of an operation.
const PROTOCOL_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "AWSAccessKeyId",
    "Timestamp",
    "Expires",
    "SecurityToken",
];

macro_rules! op {
    ($name:literal, $support:ident, $result:literal, $request:expr, $response:expr, $handler:path) => {
        Operation {
            name: $name,
            support: Support::$support,
            has_result: $result,
            request: $request,
            response: $response,
            handler: |ctx, input| Box::pin($handler(ctx, input)),
        }
    };
}

/// Every SQS operation, in the SQS API reference's order.
pub static OPERATIONS: &[Operation] = &[
    op!("AddPermission", Partial, false, &[], &[], permissions::add_permission),
    op!("CancelMessageMoveTask", Full, true, &[], &[], move_tasks::cancel),
    op!("ChangeMessageVisibility", Full, false, &[], &[], messages::change_visibility),
    op!(
        "ChangeMessageVisibilityBatch",
        Full,
        true,
        &[Member::List { json: "Entries", query: "ChangeMessageVisibilityBatchRequestEntry" }],
        &[Member::List { json: "Successful", query: "ChangeMessageVisibilityBatchResultEntry" }],
        messages::change_visibility_batch
    ),
    op!(
        "CreateQueue",
        Partial,
        true,
        &[Member::Map { json: "tags", query: "Tag", key: "Key", value: "Value" }],
        &[],
        queues::create_queue
    ),
    op!("DeleteMessage", Full, false, &[], &[], messages::delete_message),
    op!(
        "DeleteMessageBatch",
        Full,
        true,
        &[Member::List { json: "Entries", query: "DeleteMessageBatchRequestEntry" }],
        &[Member::List { json: "Successful", query: "DeleteMessageBatchResultEntry" }],
        messages::delete_message_batch
    ),
    op!("DeleteQueue", Full, false, &[], &[], queues::delete_queue),
    op!("GetQueueAttributes", Full, true, &[], &[], queues::get_queue_attributes),
    op!("GetQueueUrl", Full, true, &[], &[], queues::get_queue_url),
    op!(
        "ListDeadLetterSourceQueues",
        Full,
        true,
        &[],
        &[Member::List { json: "queueUrls", query: "QueueUrl" }],
        queues::list_dead_letter_source_queues
    ),
    op!(
        "ListMessageMoveTasks",
        Full,
        true,
        &[],
        &[Member::List { json: "Results", query: "ListMessageMoveTasksResultEntry" }],
        move_tasks::list
    ),
    op!("ListQueueTags", Full, true, &[], &[], tags::list_queue_tags),
    op!("ListQueues", Full, true, &[], &[Member::List { json: "QueueUrls", query: "QueueUrl" }], queues::list_queues),
    op!("PurgeQueue", Full, false, &[], &[], queues::purge_queue),
    op!("ReceiveMessage", Full, true, &[], &[], receive::receive_message),
    op!("RemovePermission", Full, false, &[], &[], permissions::remove_permission),
    op!("SendMessage", Full, true, &[], &[], messages::send_message),
    op!(
        "SendMessageBatch",
        Full,
        true,
        &[Member::List { json: "Entries", query: "SendMessageBatchRequestEntry" }],
        &[Member::List { json: "Successful", query: "SendMessageBatchResultEntry" }],
        messages::send_message_batch
    ),
    op!("SetQueueAttributes", Partial, false, &[], &[], queues::set_queue_attributes),
    op!("StartMessageMoveTask", Full, true, &[], &[], move_tasks::start),
    op!("TagQueue", Full, false, &[], &[], tags::tag_queue),
    op!("UntagQueue", Full, false, &[], &[], tags::untag_queue),
];

/// Runs one SQS request and renders its answer. Takes the call's parameters (they are not
/// copied: a batch of 1 MiB is read once).
pub(crate) async fn handle(shared: Arc<Shared>, call: &mut Call, request_id: &str, principal: Principal) -> Answer {
    if let Err(reason) = &call.params {
        let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
        let error = match call.protocol {
            Protocol::Json => SqsError::new(Code::SerializationException, reason.clone()),
            Protocol::Query => SqsError::new(Code::MalformedQueryString, reason.clone()),
        };
        return answer(call.protocol, operation, None, Err(error), request_id);
    }
    let Some(name) = call.operation.as_deref() else {
        let error = match call.protocol {
            Protocol::Json => SqsError::new(
                Code::UnknownOperation,
                "The X-Amz-Target header names no SQS operation (AmazonSQS.<Operation>).",
            ),
            Protocol::Query => SqsError::new(Code::MissingAction, "The request must contain the parameter Action."),
        };
        return answer(call.protocol, None, None, Err(error), request_id);
    };
    let Some(operation) = OPERATIONS.iter().find(|o| o.name == name) else {
        let error = match call.protocol {
            Protocol::Json => SqsError::new(
                Code::UnknownOperation,
                format!("Operation {} is not an SQS operation.", errors::shorten(name)),
            ),
            Protocol::Query => SqsError::new(
                Code::InvalidAction,
                format!("The action {} is not valid for this endpoint.", errors::shorten(name)),
            ),
        };
        return answer(call.protocol, None, None, Err(error), request_id);
    };
    let input = match read_input(call, operation) {
        Ok(input) => input,
        Err(error) => return answer(call.protocol, Some(operation), None, Err(error), request_id),
    };
    // The queue, for the log line: the last part of a URL or ARN, or the name.
    let resource = ["QueueUrl", "QueueName", "SourceArn"]
        .iter()
        .find_map(|p| input.str(p).ok().flatten())
        .map(|s| errors::shorten(s.rsplit(['/', ':']).next().unwrap_or(s)));
    let ctx = Ctx { shared, host: Arc::from(call.host.as_str()), principal: Arc::new(principal) };
    // The authorization step: the operation's IAM action on its queue, before it runs.
    if let Err(denied) = access::check(&ctx, operation.name, &input).await {
        return answer(call.protocol, Some(operation), resource, Err(denied), request_id);
    }
    let result = (operation.handler)(ctx, input).await;
    answer(call.protocol, Some(operation), resource, result, request_id)
}

fn read_input(call: &mut Call, operation: &Operation) -> Result<Input, SqsError> {
    let params = call.take_params().map_err(|reason| match call.protocol {
        Protocol::Json => SqsError::new(Code::SerializationException, reason),
        Protocol::Query => SqsError::new(Code::MalformedQueryString, reason),
    })?;
    match params {
        RawParams::Json(map) => Ok(Input { protocol: Protocol::Json, params: map }),
        RawParams::Unparsed(body) => {
            let map = super::route::json_object(&body).map_err(|e| SqsError::new(Code::SerializationException, e))?;
            Ok(Input { protocol: Protocol::Json, params: map })
        }
        RawParams::Form(pairs) => {
            let mut params = query::to_json(&pairs, &[operation.request, COMMON_REQUEST], PROTOCOL_PARAMS)
                .map_err(|reason| SqsError::new(Code::MalformedQueryString, reason))?;
            // Older SDKs POST to the queue's URL instead of passing QueueUrl.
            let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
            if !params.contains_key("QueueUrl") && segments.len() == 2 {
                params.insert("QueueUrl".into(), Value::String(call.path.clone()));
            }
            Ok(Input { protocol: Protocol::Query, params })
        }
    }
}

/// The answer to a request whose body is over the limit.
pub(crate) fn too_large(call: &Call, request_id: &str, message: &str) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    answer(call.protocol, operation, None, Err(SqsError::new(Code::RequestTooLarge, message)), request_id)
}

/// The answer to a request the authentication step refused.
pub(crate) fn refused(call: &Call, request_id: &str, error: &AuthError) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    answer(call.protocol, operation, None, Err(SqsError::from(error)), request_id)
}

fn answer(
    protocol: Protocol,
    operation: Option<&Operation>,
    resource: Option<String>,
    result: Output,
    request_id: &str,
) -> Answer {
    let error = result.as_ref().err().map(|e| e.code.shape());
    let response = match (protocol, result) {
        (Protocol::Json, Ok(output)) => {
            // Sized for a typical answer up front: growing a buffer past 1 KiB step by step costs
            // a reallocation each time.
            let mut body = Vec::with_capacity(4096);
            if serde_json::to_writer(&mut body, &output).is_err() {
                body = b"{}".to_vec();
            }
            respond(StatusCode::OK, JSON_CONTENT_TYPE, body, request_id)
        }
        (Protocol::Query, Ok(output)) => {
            let name = operation.map_or("Unknown", |o| o.name);
            let mut w = XmlWriter::new();
            w.open_ns(&format!("{name}Response"), XML_NAMESPACE);
            if operation.is_some_and(|o| o.has_result) {
                let result = format!("{name}Result");
                w.open(&result);
                query::write_xml(&mut w, &output, &[operation.map_or(&[][..], |o| o.response), COMMON_RESPONSE]);
                w.close(&result);
            }
            w.open("ResponseMetadata");
            w.element("RequestId", request_id);
            w.close("ResponseMetadata");
            w.close(&format!("{name}Response"));
            respond(StatusCode::OK, XML_CONTENT_TYPE, w.finish().into_bytes(), request_id)
        }
        (protocol, Err(e)) => error_response(protocol, &e, request_id),
    };
    Answer { response, operation: operation.map(|o| o.name), resource, error }
}

fn error_response(protocol: Protocol, e: &SqsError, request_id: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let fault = if e.code.sender_fault() { "Sender" } else { "Receiver" };
    match protocol {
        Protocol::Json => {
            let body = json!({"__type": e.code.json_type(), "message": e.message}).to_string();
            let mut response = respond(status, JSON_CONTENT_TYPE, body.into_bytes(), request_id);
            if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", e.code.legacy_code())) {
                response.headers_mut().insert(HeaderName::from_static("x-amzn-query-error"), v);
            }
            response
        }
        Protocol::Query => {
            let mut w = XmlWriter::new();
            w.open_ns("ErrorResponse", XML_NAMESPACE);
            w.open("Error");
            w.element("Type", fault);
            w.element("Code", e.code.legacy_code());
            w.element("Message", &e.message);
            w.open("Detail");
            w.close("Detail");
            w.close("Error");
            w.element("RequestId", request_id);
            w.close("ErrorResponse");
            respond(status, XML_CONTENT_TYPE, w.finish().into_bytes(), request_id)
        }
    }
}

/// A whole answer: the one writer every service shares.
pub(crate) use crate::server::wire::answer::respond;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::compatibility_document;

    #[test]
    fn the_table_names_each_operation_once() {
        let mut names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(before, 23, "the current SQS API has 23 operations");
    }

    /// `docs/compatibility.md` has one table row per operation, `| Name | yes/partial | ... |`,
    /// and says `partial` exactly where the table says [`Support::Partial`].
    #[test]
    fn the_compatibility_document_matches_the_operation_table() {
        let doc = compatibility_document::text();
        // The operations table comes before the errors section.
        let lines = doc.lines().take_while(|l| !l.starts_with("## Errors"));
        let rows = compatibility_document::check(lines, OPERATIONS.iter().map(|o| (o.name, o.support)));
        assert!(rows.is_empty(), "docs/compatibility.md lists operations the server does not have: {rows:?}");
    }
}
