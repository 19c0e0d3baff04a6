//! Firehose's authorization hook: every operation is `firehose:<Operation>` on the delivery
//! stream its `DeliveryStreamName` names (ListDeliveryStreams acts on none: `*`). Firehose has
//! no resource policies, so the decision is the caller's identity side alone: its account's
//! root, or its identity policy; another account's key is refused.

use super::errors::{Code, FirehoseError};
use super::Ctx;
use crate::server::auth::{self, Action};
use crate::server::wire::Input;

/// The IAM action of a Firehose operation.
pub fn iam_action(operation: &str) -> String {
    format!("firehose:{operation}")
}

/// The delivery stream an operation acts on, if it names one (pure: reads only the input).
pub(crate) fn delivery_stream_of(operation: &str, input: &Input) -> Option<String> {
    match operation {
        "ListDeliveryStreams" => None,
        _ => input.str("DeliveryStreamName").ok().flatten().map(str::to_string),
    }
}

/// Refuses the request with `AccessDeniedException` unless the caller may run `operation` on
/// the delivery stream it names. An open server lets everything through.
pub(crate) fn check(ctx: &Ctx, operation: &str, input: &Input) -> Result<(), FirehoseError> {
    if !auth::needs_check(&ctx.principal) {
        return Ok(());
    }
    let resource = delivery_stream_of(operation, input).map_or_else(|| "*".to_string(), |name| ctx.arn(&name));
    let action = iam_action(operation);
    let owner = &ctx.shared.identity.account_id;
    let now_ms = ctx.shared.engine.clock().now_ms();
    let request = Action { action: &action, resource: &resource, owner, now_ms };
    auth::authorize(&ctx.principal, &request, None).map_err(|e| FirehoseError::new(Code::AccessDenied, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Protocol;
    use serde_json::json;

    #[test]
    fn every_operation_is_its_own_action_on_its_delivery_stream() {
        let named = |params: serde_json::Value| {
            let serde_json::Value::Object(params) = params else { unreachable!("an object") };
            Input { protocol: Protocol::Json, params }
        };
        for op in super::super::OPERATIONS {
            assert_eq!(iam_action(op.name), format!("firehose:{}", op.name));
            let input = named(json!({"DeliveryStreamName": "logs"}));
            let expected = (op.name != "ListDeliveryStreams").then(|| "logs".to_string());
            assert_eq!(delivery_stream_of(op.name, &input), expected, "{}", op.name);
        }
        assert_eq!(delivery_stream_of("PutRecord", &named(json!({}))), None);
        assert_eq!(delivery_stream_of("PutRecord", &named(json!({"DeliveryStreamName": 3}))), None);
    }
}
