//! `AddPermission` and `RemovePermission`, with SQS's checks: statements of the queue's access
//! policy (the `Policy` attribute), kept by the engine and enforced by the authorization step
//! when `weir serve` runs with `--auth`.

use super::context::Ctx;
use super::errors::{shorten, Code, SqsError};
use super::limits::MAX_LABEL_LEN;
use super::{Output, OPERATIONS};
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
    let label_again = label.clone();
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
    for action in &actions {
        let known = action == "*"
            || OPERATIONS.iter().any(|o| o.name == action && !matches!(o.name, "AddPermission" | "RemovePermission"));
        if !known {
            return Err(SqsError::invalid_parameter(
                "ActionName",
                action,
                &format!("{} is not an SQS action.", shorten(action)),
            ));
        }
    }
    let arn = ctx.arn(&name);
    let result = ctx.engine(move |engine| engine.add_queue_permission(&name, &label, &accounts, &actions, &arn)).await;
    match result {
        Ok(()) => Ok(Default::default()),
        // The engine refuses a label the policy has already.
        Err(e) if e.code == Code::InvalidParameterValue && e.message.contains("already has a permission") => {
            Err(SqsError::invalid_parameter("Label", &label_again, "Already exists."))
        }
        Err(e) => Err(e),
    }
}

/// `RemovePermission`.
pub(crate) async fn remove_permission(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let label = label(&input)?;
    let result = {
        let label = label.clone();
        ctx.engine(move |engine| engine.remove_queue_permission(&name, &label)).await
    };
    match result {
        Ok(()) => Ok(Default::default()),
        Err(e) if e.code == Code::InvalidParameterValue && e.message.contains("has no permission labelled") => {
            Err(SqsError::invalid_parameter("Label", &label, "can't find label on existing policy."))
        }
        Err(e) => Err(e),
    }
}
