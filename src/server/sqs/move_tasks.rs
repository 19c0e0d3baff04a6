//! Message move tasks (dead-letter redrive): `StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`, with SQS's checks. The engine runs the tasks (durably, at
//! `MaxNumberOfMessagesPerSecond`, resumed after a restart); this maps them to SQS's shapes.

use serde_json::{Map, Value};

use super::context::Ctx;
use super::errors::{Code, SqsError};
use super::limits::{int_in_range, MAX_MOVE_TASKS_LISTED, MAX_MOVE_TASK_RATE};
use super::Output;
use crate::queue::move_task::{MoveTaskInfo, MoveTaskStatus};
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
    let rate = int_in_range(&input, "MaxNumberOfMessagesPerSecond", 1, MAX_MOVE_TASK_RATE)?.map(|r| r as u32);
    // SQS: the source must be the dead-letter queue of some queue (checked here for SQS's
    // wording; the engine checks it again under its catalog lock).
    let dlq = source.clone();
    let is_dead_letter_queue = ctx
        .engine(move |e| {
            Ok(e.list_queues()
                .iter()
                .any(|n| e.queue(n).is_ok_and(|q| q.config().redrive.is_some_and(|r| r.dead_letter_queue == dlq))))
        })
        .await?;
    if !is_dead_letter_queue {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    let task = ctx.engine(move |e| e.start_message_move_task(&source, destination.as_deref(), rate)).await?;
    let mut out = Map::new();
    out.insert("TaskHandle".into(), task.handle.into());
    Ok(out)
}

/// One entry of `ListMessageMoveTasks`, as SQS renders it: the handle only while running.
fn entry(ctx: &Ctx, task: &MoveTaskInfo) -> Value {
    let mut out = Map::new();
    if task.status == MoveTaskStatus::Running {
        out.insert("TaskHandle".into(), task.handle.clone().into());
    }
    out.insert("Status".into(), task.status.sqs_name().into());
    out.insert("SourceArn".into(), ctx.arn(&task.source).into());
    if let Some(destination) = &task.destination {
        out.insert("DestinationArn".into(), ctx.arn(destination).into());
    }
    if let Some(rate) = task.max_per_second {
        out.insert("MaxNumberOfMessagesPerSecond".into(), rate.into());
    }
    out.insert("ApproximateNumberOfMessagesMoved".into(), task.moved.into());
    out.insert("ApproximateNumberOfMessagesToMove".into(), task.to_move.into());
    if let Some(reason) = &task.failure_reason {
        out.insert("FailureReason".into(), reason.clone().into());
    }
    out.insert("StartedTimestamp".into(), task.started_ms.into());
    Value::Object(out)
}

/// `ListMessageMoveTasks`.
pub(crate) async fn list(ctx: Ctx, input: Input) -> Output {
    let source = existing(&ctx, "SourceArn", input.required_str("SourceArn")?).await?;
    let max = int_in_range(&input, "MaxResults", 1, MAX_MOVE_TASKS_LISTED)?.unwrap_or(1) as usize;
    let tasks = ctx.engine(move |e| e.list_message_move_tasks(&source, max)).await?;
    let mut out = Map::new();
    out.insert("Results".into(), Value::Array(tasks.iter().map(|t| entry(&ctx, t)).collect()));
    Ok(out)
}

/// `CancelMessageMoveTask`.
pub(crate) async fn cancel(ctx: Ctx, input: Input) -> Output {
    let handle = input.required_str("TaskHandle")?.to_string();
    if handle.is_empty() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter TaskHandle."));
    }
    let cancelled = ctx.engine(move |e| e.cancel_message_move_task(&handle)).await.map_err(|e| match e.code {
        // A task that already ended: SQS cancels only running tasks.
        Code::InvalidParameterValue => SqsError::new(
            Code::ResourceNotFoundException,
            "Only a running message move task can be cancelled; this one has ended.",
        ),
        _ => e,
    })?;
    let mut out = Map::new();
    out.insert("ApproximateNumberOfMessagesMoved".into(), cancelled.moved.into());
    Ok(out)
}
