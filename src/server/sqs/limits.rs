//! SQS's limits, each a named constant with the number of the SQS documentation it mirrors,
//! and [`int_in_range`], the one check of an integer parameter against its range. The engine
//! checks its own ranges again; these give the wire its exact SQS errors first.

use super::errors::SqsError;
use crate::server::wire::Input;

/// An optional integer parameter within `[min, max]`: `InvalidParameterValue` outside it.
pub fn int_in_range(input: &Input, name: &str, min: u64, max: u64) -> Result<Option<u64>, SqsError> {
    match input.int(name)? {
        None => Ok(None),
        Some(n) if n >= min as i64 && n <= max as i64 => Ok(Some(n as u64)),
        Some(n) => Err(SqsError::invalid_parameter(
            name,
            &n.to_string(),
            &format!("Must be between {min} and {max}, if provided."),
        )),
    }
}

/// Most entries in one batch call (`SendMessageBatch`, `DeleteMessageBatch`,
/// `ChangeMessageVisibilityBatch`), as SQS.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Longest batch entry id, as SQS: 80 characters of `[A-Za-z0-9_-]`.
pub const MAX_BATCH_ENTRY_ID_LEN: usize = 80;
/// Largest `MaximumMessageSize`, and its default for a queue created over the wire, as SQS
/// (1 MiB since August 2025; it was 256 KiB before).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Smallest `MaximumMessageSize`, as SQS: 1 KiB.
pub const MIN_MESSAGE_BYTES: usize = 1024;
/// Most bytes of all the messages of one `SendMessageBatch` together, as SQS (the same as the
/// largest message).
pub const MAX_BATCH_BYTES: usize = MAX_MESSAGE_BYTES;
/// Most messages one `ReceiveMessage` returns, as SQS.
pub const MAX_RECEIVE_MESSAGES: u64 = 10;
/// Longest `WaitTimeSeconds` and `ReceiveMessageWaitTimeSeconds`, as SQS.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// Longest visibility timeout, as SQS: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT_SECONDS: u64 = 43_200;
/// Longest `DelaySeconds`, as SQS: 15 minutes.
pub const MAX_DELAY_SECONDS: u64 = 900;
/// `MessageRetentionPeriod` range, as SQS: 60 seconds to 14 days.
pub const MIN_RETENTION_SECONDS: u64 = 60;
/// See [`MIN_RETENTION_SECONDS`].
pub const MAX_RETENTION_SECONDS: u64 = 1_209_600;
/// `maxReceiveCount` of a redrive policy, as SQS: 1 to 1,000.
pub const MAX_RECEIVE_COUNT: u64 = 1000;
/// `KmsDataKeyReusePeriodSeconds` range, as SQS: 60 s to 24 h (300 s by default, the
/// engine's default).
pub const MIN_KMS_REUSE_SECONDS: u64 = 60;
/// See [`MIN_KMS_REUSE_SECONDS`].
pub const MAX_KMS_REUSE_SECONDS: u64 = 86_400;
/// Most message attributes on one message, as SQS.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Longest message attribute name and data type, as SQS.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 256;
/// Longest `MessageGroupId`, `MessageDeduplicationId` and `ReceiveRequestAttemptId`, as SQS.
pub const MAX_FIFO_ID_LEN: usize = 128;
/// Most queue URLs one `ListQueues` or `ListDeadLetterSourceQueues` page holds, as SQS.
pub const MAX_LIST_RESULTS: usize = 1000;
/// Most tags on one queue, as SQS.
pub const MAX_TAGS: usize = 50;
/// Longest tag key and value, as SQS.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// See [`MAX_TAG_KEY_LEN`].
pub const MAX_TAG_VALUE_LEN: usize = 256;
/// Longest permission label, as SQS: 80 characters of `[A-Za-z0-9_-]`.
pub const MAX_LABEL_LEN: usize = 80;
/// `MaxNumberOfMessagesPerSecond` of a message move task, as SQS: 1 to 500.
pub const MAX_MOVE_TASK_RATE: u64 = 500;
/// Most tasks `ListMessageMoveTasks` returns, as SQS.
pub const MAX_MOVE_TASKS_LISTED: u64 = 10;
/// Most source queues a `RedriveAllowPolicy` of `byQueue` names, as SQS.
pub const MAX_REDRIVE_ALLOW_SOURCES: usize = 10;
