//! Message move tasks (dead-letter redrive): `StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`, with SQS's checks.
//!
//! Until the engine runs move tasks (see the TODOs), a start moves every message at once with
//! the engine's redrive, ignoring `MaxNumberOfMessagesPerSecond`, and answers a task handle of
//! a task that is already complete: no task is listed, and none can be cancelled.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::context::Ctx;
use super::errors::{Code, SqsError};
use super::limits::{int_in_range, MAX_MOVE_TASKS_LISTED, MAX_MOVE_TASK_RATE};
use super::Output;
use crate::server::wire::Input;

fn not_found(parameter: &str) -> SqsError {
    SqsError::new(
        Code::ResourceNotFoundException,
        format!("The resource that you specified for the {parameter} parameter doesn't exist."),
    )
}

/// The queue an ARN parameter names, which must exist.
async fn existing(ctx: &Ctx, parameter: &str, arn: &str) -> Result<String, SqsError> {
    let name = ctx.shared.identity.queue_from_arn(parameter, arn)?;
    ctx.queue(&name, |_, _| Ok(())).await.map_err(|e| match e.code {
        Code::QueueDoesNotExist => not_found(parameter),
        _ => e,
    })?;
    Ok(name)
}

/// `StartMessageMoveTask`.
pub(crate) async fn start(ctx: Ctx, input: Input) -> Output {
    let source = existing(&ctx, "SourceArn", input.required_str("SourceArn")?).await?;
    let destination = match input.str("DestinationArn")? {
        Some(arn) => Some(existing(&ctx, "DestinationArn", arn).await?),
        None => None,
    };
    let _rate = int_in_range(&input, "MaxNumberOfMessagesPerSecond", 1, MAX_MOVE_TASK_RATE)?;
    // SQS: the source must be the dead-letter queue of some queue.
    let dlq = source.clone();
    let is_dead_letter_queue = ctx
        .engine(move |e| {
            Ok(e.list_queues()
                .iter()
                .any(|n| e.queue(n).is_ok_and(|q| q.attributes().dead_letter_queue.as_deref() == Some(dlq.as_str()))))
        })
        .await?;
    if !is_dead_letter_queue {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    // TODO(sqs-engine): `Engine::start_message_move_task(&source, destination.as_deref(),
    // rate)` and its `MoveTaskInfo::handle`; until then the move is done here, at once.
    let (from, to) = (source.clone(), destination.clone());
    ctx.engine(move |e| e.redrive(&from, to.as_deref())).await?;
    let task = json!({"taskId": ctx.shared.next_request_id(), "sourceArn": ctx.arn(&source)}).to_string();
    let mut out = Map::new();
    out.insert("TaskHandle".into(), base64::engine::general_purpose::STANDARD.encode(task).into());
    Ok(out)
}

/// `ListMessageMoveTasks`.
pub(crate) async fn list(ctx: Ctx, input: Input) -> Output {
    let _source = existing(&ctx, "SourceArn", input.required_str("SourceArn")?).await?;
    let _max = int_in_range(&input, "MaxResults", 1, MAX_MOVE_TASKS_LISTED)?;
    // TODO(sqs-engine): `Engine::list_message_move_tasks(&source, max)`; tasks complete at once
    // today and are not remembered.
    let mut out = Map::new();
    out.insert("Results".into(), Value::Array(Vec::new()));
    Ok(out)
}

/// `CancelMessageMoveTask`.
pub(crate) async fn cancel(_ctx: Ctx, input: Input) -> Output {
    let handle = input.required_str("TaskHandle")?;
    if handle.is_empty() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter TaskHandle."));
    }
    // TODO(sqs-engine): `Engine::cancel_message_move_task(handle)`; no task runs long enough
    // to be cancelled today.
    Err(SqsError::new(Code::ResourceNotFoundException, "The task does not exist or is no longer running."))
}
