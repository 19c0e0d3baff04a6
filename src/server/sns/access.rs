//! SNS's authorization hook: which IAM action and which topic each operation is, and the one
//! call that asks [`crate::server::auth::authorize`] with the topic's access policy (its
//! `Policy` attribute).
//!
//! Every operation is `sns:<Operation>`, except `PublishBatch`, which IAM authorizes as
//! `sns:Publish`. The resource is the topic's ARN: the one the request names (`TopicArn`,
//! `TargetArn`, `ResourceArn`), the topic of a subscription ARN, or the topic `CreateTopic`
//! makes; `ListTopics` and `ListSubscriptions` act on no topic (`*`). Denials are SNS's
//! `AuthorizationError`.
//!
//! `ConfirmSubscription` is not checked here: its token is the proof (SNS lets anyone who has
//! it confirm), and an endpoint that visits its SubscribeURL signs nothing.

use super::context::Ctx;
use super::errors::SnsError;
use crate::server::auth::{self, Action};
use crate::server::wire::Input;

/// Operations authorized by what they carry instead of by who asks.
const TOKEN_OPERATIONS: &[&str] = &["ConfirmSubscription"];

/// The IAM action of an SNS operation.
pub fn iam_action(operation: &str) -> String {
    let single = if operation == "PublishBatch" { "Publish" } else { operation };
    format!("sns:{single}")
}

/// True for the operations a request may run without a signature under `--auth`.
pub fn needs_no_signature(operation: &str) -> bool {
    TOKEN_OPERATIONS.contains(&operation)
}

/// The topic ARN an operation acts on, as the request gives it (`None`: no topic).
fn topic_arn_of(ctx: &Ctx, operation: &str, input: &Input) -> Option<String> {
    let param = |name: &str| input.str(name).ok().flatten().map(str::to_string);
    match operation {
        "ListTopics" | "ListSubscriptions" => None,
        "CreateTopic" => param("Name").map(|name| ctx.context().topic_arn(&name)),
        "GetSubscriptionAttributes" | "SetSubscriptionAttributes" | "Unsubscribe" => {
            // arn:aws:sns:REGION:ACCOUNT:TOPIC:ID names TOPIC's ARN before its last colon.
            param("SubscriptionArn").and_then(|arn| arn.rsplit_once(':').map(|(topic, _)| topic.to_string()))
        }
        _ => param("TopicArn").or_else(|| param("TargetArn")).or_else(|| param("ResourceArn")),
    }
}

/// Refuses the request with `AuthorizationError` unless the caller may run `operation` on the
/// topic it names. An open server lets everything through without reading anything.
pub(crate) async fn check(ctx: &Ctx, operation: &str, input: &Input) -> Result<(), SnsError> {
    if !auth::needs_check(&ctx.principal) || needs_no_signature(operation) {
        return Ok(());
    }
    let arn = topic_arn_of(ctx, operation, input);
    // A topic of this endpoint that exists has its policy; anything else has none, and the
    // decision is the identity side's.
    let topic = arn.as_deref().and_then(|a| ctx.topic_from_arn("TopicArn", a).ok());
    let policy = match topic {
        Some(name) => ctx.engine(move |e| Ok(e.topic_info(&name).ok().and_then(|i| i.attributes.policy))).await?,
        None => None,
    };
    let resource = arn.unwrap_or_else(|| "*".to_string());
    let action = iam_action(operation);
    let owner = ctx.account();
    let now_ms = ctx.shared.engine.clock().now_ms();
    let request = Action { action: &action, resource: &resource, owner: &owner, now_ms };
    auth::authorize(&ctx.principal, &request, policy.as_deref()).map_err(|e| SnsError::from(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_iam_action_and_batches_are_their_single_form() {
        for op in super::super::OPERATIONS {
            let action = iam_action(op.name);
            assert!(action.starts_with("sns:") && !action.ends_with("Batch"), "{}: {action}", op.name);
        }
        assert_eq!(iam_action("PublishBatch"), "sns:Publish");
        assert_eq!(iam_action("Subscribe"), "sns:Subscribe");
        assert!(needs_no_signature("ConfirmSubscription"));
        assert!(!needs_no_signature("Unsubscribe") && !needs_no_signature("Publish"));
    }
}
