//! SQS's authorization hook: which IAM action and which queue each operation is, and the one
//! call that asks [`crate::server::auth::authorize`] with the queue's access policy.
//!
//! Every operation is `sqs:<Operation>`, except the batch operations, which IAM authorizes as
//! their single form (`SendMessageBatch` is `sqs:SendMessage`). The resource is the queue's ARN
//! (the queue the request names, or the source queue of a move task); `ListQueues` acts on no
//! queue (`*`), and `CancelMessageMoveTask` on the task's source queue when its handle names
//! one.

use super::context::Ctx;
use super::errors::SqsError;
use crate::server::auth::{self, Action};
use crate::server::wire::Input;

/// The IAM action of an SQS operation.
pub fn iam_action(operation: &str) -> String {
    let single = match operation {
        "SendMessageBatch" => "SendMessage",
        "DeleteMessageBatch" => "DeleteMessage",
        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
        other => other,
    };
    format!("sqs:{single}")
}

/// The queue an operation acts on, if it names one the server can read.
fn queue_of(ctx: &Ctx, operation: &str, input: &Input) -> Option<String> {
    let identity = &ctx.shared.identity;
    match operation {
        "ListQueues" | "CancelMessageMoveTask" => None,
        "CreateQueue" | "GetQueueUrl" => input.str("QueueName").ok().flatten().map(str::to_string),
        "StartMessageMoveTask" | "ListMessageMoveTasks" => {
            let arn = input.str("SourceArn").ok().flatten()?;
            identity.queue_from_arn("SourceArn", arn).ok()
        }
        _ => ctx.queue_name(input).ok(),
    }
}

/// Refuses the request with `AccessDenied` unless the caller may run `operation` on the queue
/// it names. An open server lets everything through without reading anything.
pub(crate) async fn check(ctx: &Ctx, operation: &str, input: &Input) -> Result<(), SqsError> {
    let owner = ctx.shared.identity.account_id.clone();
    if !auth::needs_check(&ctx.principal) {
        return Ok(());
    }
    let queue = queue_of(ctx, operation, input);
    let resource = queue.as_deref().map_or_else(|| "*".to_string(), |name| ctx.arn(name));
    let policy = match queue {
        // A queue that does not exist has no policy: the decision is the identity side's.
        Some(name) => ctx.engine(move |engine| Ok(engine.queue_attributes(&name).ok().and_then(|a| a.policy))).await?,
        None => None,
    };
    let action = iam_action(operation);
    let now_ms = ctx.shared.engine.clock().now_ms();
    let request = Action { action: &action, resource: &resource, owner: &owner, now_ms };
    auth::authorize(&ctx.principal, &request, policy.as_deref()).map_err(|e| SqsError::from(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_iam_action_and_batches_are_their_single_form() {
        for op in super::super::OPERATIONS {
            let action = iam_action(op.name);
            assert!(action.starts_with("sqs:") && !action.ends_with("Batch"), "{}: {action}", op.name);
        }
        assert_eq!(iam_action("SendMessageBatch"), "sqs:SendMessage");
        assert_eq!(iam_action("DeleteMessageBatch"), "sqs:DeleteMessage");
        assert_eq!(iam_action("ChangeMessageVisibilityBatch"), "sqs:ChangeMessageVisibility");
        assert_eq!(iam_action("PurgeQueue"), "sqs:PurgeQueue");
    }
}
