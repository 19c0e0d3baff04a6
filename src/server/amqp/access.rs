//! The authorization hook of AMQP: with `--auth`, each operation on a queue or exchange is
//! decided by the same policies as the AWS endpoint, as the IAM action it amounts to: a queue
//! is an SQS queue (`sqs:CreateQueue`, `sqs:SendMessage`, `sqs:ReceiveMessage`, ...) and an
//! exchange an SNS topic (`sns:CreateTopic`, `sns:Publish`, `sns:Subscribe`, ...). A refusal
//! is a channel exception, 403 `ACCESS_REFUSED`.

use std::sync::Arc;

use super::errors::{code, AmqpError};
use crate::server::auth::{self, Action, Principal};
use crate::server::Shared;

/// What an operation touches.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A queue, by name.
    Queue(&'a str),
    /// An exchange (a topic), by name.
    Exchange(&'a str),
}

/// Decides whether `principal` may do `action` (`sqs:SendMessage`) on `resource`.
pub async fn check(
    shared: &Arc<Shared>,
    principal: &Principal,
    action: &'static str,
    resource: Resource<'_>,
) -> Result<(), AmqpError> {
    if !auth::needs_check(principal) {
        return Ok(());
    }
    let (region, account) = (&shared.config.region, &shared.config.account_id);
    let (arn, policy) = match resource {
        Resource::Queue(name) => {
            let owned = name.to_string();
            let policy = shared.blocking(move |e| e.queue(&owned).ok().and_then(|q| q.attributes().policy)).await;
            (format!("arn:aws:sqs:{region}:{account}:{name}"), policy.ok().flatten())
        }
        Resource::Exchange(name) => (format!("arn:aws:sns:{region}:{account}:{name}"), None),
    };
    let request = Action { action, resource: &arn, owner: account, now_ms: shared.engine.clock().now_ms() };
    auth::authorize(principal, &request, policy.as_deref()).map_err(|e| AmqpError::new(code::ACCESS_REFUSED, e.message))
}
