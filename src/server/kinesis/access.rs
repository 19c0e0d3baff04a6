//! Kinesis's authorization hook: which stream or consumer each operation acts on, and the one
//! call that asks [`crate::server::auth::authorize`] with the stream's resource policy.
//!
//! Every operation is `kinesis:<Operation>` (SubscribeToShard too, checked by
//! [`super::subscribe`] before its stream starts). The resource is the stream's ARN, or the
//! consumer's for the operations on a consumer (DescribeStreamConsumer,
//! DeregisterStreamConsumer, SubscribeToShard) and for a `ResourceARN` that names one;
//! ListStreams and DescribeLimits act on no stream (`*`). weir keeps resource policies on
//! streams only: a consumer's operations are checked against its stream's policy. An ARN of
//! another account or region (which the operation then refuses) is checked as given, with no
//! policy.

use super::errors::{Code, KinesisError};
use super::{names, streams, Ctx};
use crate::server::auth::{self, Action};
use crate::server::sqs::urls::Identity;
use crate::server::wire::Input;
use crate::Engine;

/// What an operation acts on, as its input says it before the engine is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// No stream (`*`).
    Account,
    /// A stream of this endpoint, by name.
    Stream(String),
    /// A consumer of a stream of this endpoint: its ARN when the request gave it, else its
    /// name (the ARN holds its creation time, which the stream's description has).
    Consumer { stream: String, name: String, arn: Option<String> },
    /// The stream of a shard iterator (GetRecords), known once the engine opens it.
    Iterator(String),
    /// The stream of a ListShards `NextToken`.
    Page(String),
    /// An ARN that names nothing of this endpoint: checked as given, with no policy.
    Foreign(String),
}

/// The IAM action of a Kinesis operation.
pub fn iam_action(operation: &str) -> String {
    format!("kinesis:{operation}")
}

/// What `operation` acts on (pure: reads only the input).
pub(crate) fn target(identity: &Identity, operation: &str, input: &Input) -> Target {
    let text = |member: &str| input.str(member).ok().flatten().map(str::to_string);
    match operation {
        "ListStreams" | "DescribeLimits" => Target::Account,
        "DescribeStreamConsumer" | "DeregisterStreamConsumer" | "SubscribeToShard" => {
            match (text("ConsumerARN"), text("StreamARN"), text("ConsumerName")) {
                (Some(arn), _, _) => of_arn(identity, &arn),
                (None, Some(stream_arn), Some(name)) => match names::stream_from_arn(identity, &stream_arn) {
                    Ok(stream) => Target::Consumer { stream, name, arn: None },
                    Err(_) => Target::Foreign(stream_arn),
                },
                _ => Target::Account,
            }
        }
        "TagResource"
        | "UntagResource"
        | "ListTagsForResource"
        | "PutResourcePolicy"
        | "GetResourcePolicy"
        | "DeleteResourcePolicy" => text("ResourceARN").map_or(Target::Account, |arn| of_arn(identity, &arn)),
        _ => {
            if let Some(name) = text("StreamName") {
                return Target::Stream(name);
            }
            if let Some(arn) = text("StreamARN") {
                return of_arn(identity, &arn);
            }
            match operation {
                "GetRecords" => text("ShardIterator").map_or(Target::Account, Target::Iterator),
                "ListShards" => text("NextToken").map_or(Target::Account, Target::Page),
                _ => Target::Account,
            }
        }
    }
}

/// A stream or consumer ARN.
fn of_arn(identity: &Identity, arn: &str) -> Target {
    if arn.contains("/consumer/") {
        return match names::consumer_from_arn(identity, arn) {
            Ok((stream, name, _)) => Target::Consumer { stream, name, arn: Some(arn.to_string()) },
            Err(_) => Target::Foreign(arn.to_string()),
        };
    }
    match names::stream_from_arn(identity, arn) {
        Ok(stream) => Target::Stream(stream),
        Err(_) => Target::Foreign(arn.to_string()),
    }
}

/// The resource's ARN and its stream's policy. A stream that does not exist has no policy:
/// the decision is the identity side's.
fn resolve(engine: &Engine, identity: &Identity, target: Target) -> (String, Option<String>) {
    let meta = |name: &str| engine.stream(name).ok().map(|s| s.meta());
    let stream_resource = |name: Option<String>| match name.and_then(|n| meta(&n).map(|m| (n, m))) {
        Some((name, m)) => (names::stream_arn(identity, &name), m.policy),
        None => ("*".to_string(), None),
    };
    match target {
        Target::Account => ("*".to_string(), None),
        Target::Foreign(arn) => (arn, None),
        Target::Stream(name) => {
            let policy = meta(&name).and_then(|m| m.policy);
            (names::stream_arn(identity, &name), policy)
        }
        Target::Consumer { stream, name, arn } => {
            let m = meta(&stream);
            let arn = arn.unwrap_or_else(|| {
                let created =
                    m.as_ref().and_then(|m| m.consumers.iter().find(|c| c.name == name)).map(|c| c.created_ms);
                match created {
                    Some(ms) => names::consumer_arn(identity, &stream, &name, ms),
                    None => format!("{}/consumer/{name}", names::stream_arn(identity, &stream)),
                }
            });
            (arn, m.and_then(|m| m.policy))
        }
        Target::Iterator(token) => {
            stream_resource(names::open_iterator(engine, &token, u64::MAX).ok().map(|p| p.stream))
        }
        Target::Page(token) => stream_resource(streams::stream_of_page(engine, &token)),
    }
}

/// Refuses the request with `AccessDeniedException` unless the caller may run `operation` on
/// what it names. An open server lets everything through without reading anything.
pub(crate) async fn check(ctx: &Ctx, operation: &str, input: &Input) -> Result<(), KinesisError> {
    if !auth::needs_check(&ctx.principal) {
        return Ok(());
    }
    let identity = ctx.shared.identity.clone();
    let target = target(&identity, operation, input);
    let (resource, policy) = ctx.engine_with(move |engine| Ok(resolve(engine, &identity, target))).await?;
    let action = iam_action(operation);
    let now_ms = ctx.shared.engine.clock().now_ms();
    let request = Action { action: &action, resource: &resource, owner: ctx.account(), now_ms };
    auth::authorize(&ctx.principal, &request, policy.as_deref())
        .map_err(|e| KinesisError::new(Code::AccessDeniedException, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Protocol;
    use serde_json::{json, Value};

    fn identity() -> Identity {
        Identity { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    fn input(params: Value) -> Input {
        let Value::Object(params) = params else { unreachable!("an object") };
        Input { protocol: Protocol::Json, params }
    }

    const STREAM: &str = "arn:aws:kinesis:us-east-1:111122223333:stream/orders";
    const CONSUMER: &str = "arn:aws:kinesis:us-east-1:111122223333:stream/orders/consumer/app:1700000000";

    #[test]
    fn every_operation_is_its_own_action() {
        for op in super::super::OPERATIONS {
            assert_eq!(iam_action(op.name), format!("kinesis:{}", op.name));
        }
    }

    #[test]
    fn each_operation_acts_on_its_stream_or_consumer() {
        let id = identity();
        let stream = || Target::Stream("orders".into());
        let consumer_by_arn =
            || Target::Consumer { stream: "orders".into(), name: "app".into(), arn: Some(CONSUMER.into()) };
        let cases: &[(&str, Value, Target)] = &[
            ("ListStreams", json!({"StreamName": "orders"}), Target::Account),
            ("DescribeLimits", json!({}), Target::Account),
            ("PutRecord", json!({"StreamName": "orders"}), stream()),
            ("PutRecords", json!({"StreamARN": STREAM}), stream()),
            ("DescribeStreamSummary", json!({}), Target::Account),
            ("RegisterStreamConsumer", json!({"StreamARN": STREAM, "ConsumerName": "app"}), stream()),
            ("ListStreamConsumers", json!({"StreamARN": STREAM}), stream()),
            ("SubscribeToShard", json!({"ConsumerARN": CONSUMER}), consumer_by_arn()),
            ("DescribeStreamConsumer", json!({"ConsumerARN": CONSUMER}), consumer_by_arn()),
            (
                "DeregisterStreamConsumer",
                json!({"StreamARN": STREAM, "ConsumerName": "app"}),
                Target::Consumer { stream: "orders".into(), name: "app".into(), arn: None },
            ),
            ("TagResource", json!({"ResourceARN": STREAM}), stream()),
            ("PutResourcePolicy", json!({"ResourceARN": CONSUMER}), consumer_by_arn()),
            ("GetResourcePolicy", json!({"ResourceARN": STREAM}), stream()),
            ("GetRecords", json!({"ShardIterator": "tok"}), Target::Iterator("tok".into())),
            ("GetRecords", json!({"ShardIterator": "tok", "StreamARN": STREAM}), stream()),
            ("ListShards", json!({"NextToken": "page"}), Target::Page("page".into())),
            (
                "DescribeStream",
                json!({"StreamARN": "arn:aws:kinesis:eu-west-1:111122223333:stream/orders"}),
                Target::Foreign("arn:aws:kinesis:eu-west-1:111122223333:stream/orders".into()),
            ),
            (
                "DeleteResourcePolicy",
                json!({"ResourceARN": "arn:aws:kinesis:us-east-1:444455556666:stream/x"}),
                Target::Foreign("arn:aws:kinesis:us-east-1:444455556666:stream/x".into()),
            ),
            ("DescribeStreamConsumer", json!({"ConsumerARN": 7}), Target::Account),
        ];
        for (operation, params, expected) in cases {
            assert_eq!(&target(&id, operation, &input(params.clone())), expected, "{operation} {params}");
        }
    }
}
