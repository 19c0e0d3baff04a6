//! `AddPermission` and `RemovePermission`, with SQS's checks: statements of the queue's
//! access policy (its `Policy` attribute), kept by the engine.

use serde_json::Map;

use super::context::Ctx;
use super::errors::{Code, SqsError};
use super::limits::MAX_LABEL_LEN;
use super::Output;
use crate::queue::policy::{MAX_PERMISSION_ACTIONS, MAX_PRINCIPALS, PERMISSION_ACTIONS};
use crate::server::wire::Input;

fn label(input: &Input) -> Result<String, SqsError> {
    let label = input.required_str("Label")?;
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(SqsError::invalid_parameter(
            "Label",
            label,
            &format!(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to {MAX_LABEL_LEN} in length."
            ),
        ));
    }
    Ok(label.to_string())
}

/// `AddPermission`.
pub(crate) async fn add_permission(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let label = label(&input)?;
    let accounts = input.str_list("AWSAccountIds")?;
    let actions = input.str_list("Actions")?;
    if accounts.is_empty() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter AWSAccountIds."));
    }
    if actions.is_empty() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter Actions."));
    }
    for account in &accounts {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SqsError::invalid_parameter("AWSAccountIds", account, "An account id is 12 digits."));
        }
    }
    if accounts.len() > MAX_PRINCIPALS {
        return Err(SqsError::new(
            Code::OverLimit,
            format!("A permission names at most {MAX_PRINCIPALS} accounts, not {}.", accounts.len()),
        ));
    }
    if actions.len() > MAX_PERMISSION_ACTIONS {
        return Err(SqsError::new(
            Code::OverLimit,
            format!("A permission grants at most {MAX_PERMISSION_ACTIONS} actions, not {}.", actions.len()),
        ));
    }
    for action in &actions {
        if !PERMISSION_ACTIONS.contains(&action.as_str()) {
            return Err(SqsError::invalid_parameter(
                "ActionName",
                action,
                &format!("Only {} can be granted.", PERMISSION_ACTIONS.join(", ")),
            ));
        }
    }
    let arn = ctx.arn(&name);
    let label_taken = label.clone();
    ctx.queue(&name, move |e, q| e.add_queue_permission(q.name(), &label, &accounts, &actions, &arn)).await.map_err(
        |e| match e.code {
            // The engine's only argument error left here: the label is taken.
            Code::InvalidParameterValue => SqsError::invalid_parameter("Label", &label_taken, "Already exists."),
            _ => e,
        },
    )?;
    Ok(Map::new())
}

/// `RemovePermission`.
pub(crate) async fn remove_permission(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let label = label(&input)?;
    let remove = label.clone();
    ctx.queue(&name, move |e, q| e.remove_queue_permission(q.name(), &remove)).await.map_err(|e| match e.code {
        Code::InvalidParameterValue => {
            SqsError::invalid_parameter("Label", &label, "can't find label on existing policy.")
        }
        _ => e,
    })?;
    Ok(Map::new())
}
