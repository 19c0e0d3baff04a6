//! Amazon SNS over the wire (the query protocol: form-encoded requests with
//! `Version=2010-03-31`, XML answers in SNS's namespace). [`OPERATIONS`] is the one table of
//! what is served: each operation's name, how far it is supported, whether its answer has a
//! result element, and its handler. `docs/compatibility.md` lists the same operations, and a
//! test holds the two together.
//!
//! An operation reads an [`Input`] (its parameters in the JSON shape the wire layer reads the
//! query protocol into) and answers a JSON-shaped map or an [`SnsError`]; `handle` renders
//! either as XML. HTTP/HTTPS subscriptions are delivered by [`delivery`], which the server runs
//! beside the request path.

pub mod access;
pub mod attributes;
pub mod context;
pub mod delivery;
pub mod errors;
pub mod message_attributes;
pub mod permissions;
pub mod publish;
pub mod subscriptions;
pub mod tags;
pub mod topics;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{Map, Value};

use self::context::Ctx;
use self::errors::{shorten, Code, SnsError};
use super::auth::{Access, AuthError, AuthErrorKind, Principal};
use super::route::{Answer, Call, RawParams};
use super::wire::answer::{query_error, query_success, respond, XML_CONTENT_TYPE};
use super::wire::query::{self, Member};
use super::wire::{Input, Protocol};
use super::Shared;
use crate::policy::{Policy, PolicyKind};

/// The query protocol's `Version` of SNS requests.
pub const API_VERSION: &str = "2010-03-31";
/// The XML namespace of answers.
pub const XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// What an operation answers.
pub(crate) type Output = Result<Map<String, Value>, SnsError>;
type Handler = fn(Ctx, Input) -> Pin<Box<dyn Future<Output = Output> + Send>>;

pub use super::wire::Support;

/// One SNS operation.
pub struct Operation {
    /// Its name (`Publish`).
    pub name: &'static str,
    /// How completely it is supported.
    #[cfg_attr(not(test), allow(dead_code))]
    pub support: Support,
    /// Whether its answer has a `<NameResult>` element.
    has_result: bool,
    handler: Handler,
}

/// Names whose query (and XML) layout differs from the JSON shape: SNS's wrapped lists and maps.
const NAMING: &[Member] = &[
    Member::WrappedMap { json: "Attributes", query: "Attributes", entry: "entry", key: "key", value: "value" },
    Member::WrappedMap {
        json: "MessageAttributes",
        query: "MessageAttributes",
        entry: "entry",
        key: "Name",
        value: "Value",
    },
    Member::WrappedList { json: "Tags", query: "Tags", item: "member" },
    Member::WrappedList { json: "TagKeys", query: "TagKeys", item: "member" },
    Member::WrappedList { json: "PublishBatchRequestEntries", query: "PublishBatchRequestEntries", item: "member" },
    Member::WrappedList { json: "AWSAccountId", query: "AWSAccountId", item: "member" },
    Member::WrappedList { json: "ActionName", query: "ActionName", item: "member" },
    Member::WrappedList { json: "Topics", query: "Topics", item: "member" },
    Member::WrappedList { json: "Subscriptions", query: "Subscriptions", item: "member" },
    Member::WrappedList { json: "Successful", query: "Successful", item: "member" },
    Member::WrappedList { json: "Failed", query: "Failed", item: "member" },
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
    ($name:literal, $support:ident, $result:literal, $handler:path) => {
        Operation {
            name: $name,
            support: Support::$support,
            has_result: $result,
            handler: |ctx, input| Box::pin($handler(ctx, input)),
        }
    };
}

/// Every SNS operation this endpoint serves, in the SNS API reference's order. SNS's SMS,
/// mobile push and data protection operations are not served (`InvalidAction`).
pub static OPERATIONS: &[Operation] = &[
    op!("AddPermission", Partial, false, permissions::add_permission),
    op!("ConfirmSubscription", Partial, true, subscriptions::confirm_subscription),
    op!("CreateTopic", Partial, true, topics::create_topic),
    op!("DeleteTopic", Full, false, topics::delete_topic),
    op!("GetSubscriptionAttributes", Full, true, subscriptions::get_subscription_attributes),
    op!("GetTopicAttributes", Partial, true, topics::get_topic_attributes),
    op!("ListSubscriptions", Full, true, subscriptions::list_subscriptions),
    op!("ListSubscriptionsByTopic", Full, true, subscriptions::list_subscriptions_by_topic),
    op!("ListTagsForResource", Full, true, tags::list_tags_for_resource),
    op!("ListTopics", Full, true, topics::list_topics),
    op!("Publish", Partial, true, publish::publish),
    op!("PublishBatch", Partial, true, publish::publish_batch),
    op!("RemovePermission", Partial, false, permissions::remove_permission),
    op!("SetSubscriptionAttributes", Partial, false, subscriptions::set_subscription_attributes),
    op!("SetTopicAttributes", Partial, false, topics::set_topic_attributes),
    op!("Subscribe", Partial, true, subscriptions::subscribe),
    op!("TagResource", Full, true, tags::tag_resource),
    op!("Unsubscribe", Partial, false, subscriptions::unsubscribe),
    op!("UntagResource", Full, true, tags::untag_resource),
];

/// True if `action` is an SNS operation this endpoint serves (how a query request without a
/// `Version`, such as a visit of a SubscribeURL, is routed here).
pub(crate) fn serves(action: &str) -> bool {
    OPERATIONS.iter().any(|o| o.name == action)
}

/// Runs one SNS request and renders its answer.
pub(crate) async fn handle(shared: Arc<Shared>, call: &Call, request_id: &str, principal: Principal) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    let pairs = match &call.params {
        Ok(RawParams::Form(pairs)) => pairs,
        Ok(RawParams::Json(_) | RawParams::Unparsed(_)) => {
            let error = SnsError::new(Code::InvalidAction, "SNS speaks the query protocol, not AWS JSON.");
            return answer(None, None, Err(error), request_id);
        }
        Err(reason) => {
            return answer(operation, None, Err(SnsError::new(Code::MalformedQueryString, reason.clone())), request_id)
        }
    };
    let Some(name) = call.operation.as_deref() else {
        let error = SnsError::new(Code::MissingAction, "The request must contain the parameter Action.");
        return answer(None, None, Err(error), request_id);
    };
    let Some(operation) = operation else {
        let error =
            SnsError::new(Code::InvalidAction, format!("The action {} is not valid for this endpoint.", shorten(name)));
        return answer(None, None, Err(error), request_id);
    };
    let params = match query::to_json(pairs, &[NAMING], PROTOCOL_PARAMS) {
        Ok(params) => params,
        Err(reason) => {
            return answer(Some(operation), None, Err(SnsError::new(Code::MalformedQueryString, reason)), request_id)
        }
    };
    let input = Input { protocol: Protocol::Query, params };
    // The resource, for the log line: the last part of the ARN or name it addresses.
    let resource = ["TopicArn", "SubscriptionArn", "ResourceArn", "Name"]
        .iter()
        .find_map(|p| input.str(p).ok().flatten())
        .map(|s| shorten(s.rsplit(':').next().unwrap_or(s)));
    let ctx = Ctx { shared, principal: Arc::new(principal) };
    if let Err(denied) = access::check(&ctx, operation.name, &input).await {
        return answer(Some(operation), resource, Err(denied), request_id);
    }
    let result = (operation.handler)(ctx, input).await;
    answer(Some(operation), resource, result, request_id)
}

/// The answer to a request whose body is over the limit.
pub(crate) fn too_large(call: &Call, request_id: &str, message: &str) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    answer(operation, None, Err(SnsError::new(Code::RequestTooLarge, message)), request_id)
}

/// Under `--auth`, who an unsigned request acts as when SNS runs it anyway (an operation whose
/// token is the proof: the visit of a SubscribeURL signs nothing): no one, allowed nothing
/// (an identity policy without statements). Any other refusal stands.
pub(crate) fn unsigned(call: &Call, refusal: AuthError, account: &str) -> Result<Principal, AuthError> {
    let by_token = call.operation.as_deref().is_some_and(access::needs_no_signature);
    if refusal.kind != AuthErrorKind::MissingAuthenticationToken || !by_token {
        return Err(refusal);
    }
    let nothing = Policy::parse(r#"{"Version":"2012-10-17","Statement":[]}"#, PolicyKind::Identity)
        .map_err(|_| refusal.clone())?;
    Ok(Principal {
        account_id: account.to_string(),
        user: None,
        access: Access::Limited(Arc::new(nothing)),
        source_ip: None,
        secure: false,
    })
}

/// The answer to a request the authentication step refused.
pub(crate) fn refused(call: &Call, request_id: &str, error: &AuthError) -> Answer {
    let operation = call.operation.as_deref().and_then(|n| OPERATIONS.iter().find(|o| o.name == n));
    answer(operation, None, Err(SnsError::from(error)), request_id)
}

fn answer(operation: Option<&Operation>, resource: Option<String>, result: Output, request_id: &str) -> Answer {
    let error = result.as_ref().err().map(|e| e.code.code());
    let response = match result {
        Ok(output) => {
            let (name, has_result) = operation.map_or(("Unknown", false), |o| (o.name, o.has_result));
            let xml = query_success(XML_NAMESPACE, name, has_result, &output, &[NAMING], request_id);
            respond(StatusCode::OK, XML_CONTENT_TYPE, xml.into_bytes(), request_id)
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let xml = query_error(XML_NAMESPACE, e.code.sender_fault(), e.code.code(), &e.message, request_id);
            respond(status, XML_CONTENT_TYPE, xml.into_bytes(), request_id)
        }
    };
    Answer { response, operation: operation.map(|o| o.name), resource, error }
}

/// `"true"` or `"false"`, as SNS writes booleans in attributes.
pub(crate) fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// A boolean attribute value as SNS reads it (`true`/`false`, any case).
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, SnsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SnsError::invalid(name, format!("{} is not true or false", shorten(value)))),
    }
}

/// Items a list operation answers at once, as SNS: 100.
pub(crate) const PAGE_SIZE: usize = 100;

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
        let mut sorted = OPERATIONS.iter().map(|o| o.name).collect::<Vec<_>>();
        sorted.sort_unstable();
        assert_eq!(sorted, OPERATIONS.iter().map(|o| o.name).collect::<Vec<_>>(), "in the reference's order");
    }

    /// `docs/compatibility.md`'s SNS section has one row per SNS operation,
    /// `| Name | yes/partial/no | ... |`: every served one with the table's support, and the
    /// ones not served as `no`.
    #[test]
    fn the_compatibility_document_matches_the_operation_table() {
        let doc = compatibility_document::text();
        let section = doc.split("# SNS compatibility").nth(1).expect("docs/compatibility.md has an SNS section");
        let lines = section.lines().take_while(|l| !l.starts_with("## Errors"));
        let rows = compatibility_document::check(lines, OPERATIONS.iter().map(|o| (o.name, o.support)));
        for (name, support) in &rows {
            assert_eq!(support, "no", "{name} is listed as served but the server does not have it");
        }
        assert_eq!(OPERATIONS.len() + rows.len(), 42, "the SNS API has 42 operations");
    }
}
