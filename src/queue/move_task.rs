//! Message move tasks (SQS's StartMessageMoveTask and friends): what a task is, as the catalog
//! records it and as callers see it, and the rate limit it moves at. The moving itself is
//! `QueueStore::move_messages`; running, resuming and cancelling tasks is the engine's
//! (`engine/move_tasks.rs`).

use serde::{Deserialize, Serialize};

/// Highest rate a task may be given, as SQS: 500 messages a second.
pub const MAX_MOVE_RATE: u32 = 500;
/// Most tasks listed per source queue, and kept after they end, as SQS: 10.
pub const MAX_LISTED_MOVE_TASKS: usize = 10;
/// Most messages one step of a task without a rate moves before it lets others run.
pub const UNLIMITED_STEP: u64 = 256;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveTaskStatus {
    /// Moving messages (also after a crash: it resumes when the engine opens).
    Running,
    /// Every message that was in the source when it started, and was not in flight when the
    /// task came to it, has moved.
    Completed,
    /// Cancelled; the messages moved so far stay moved. A cancel takes effect at once, so weir
    /// never reports SQS's intermediate `CANCELLING`.
    Cancelled,
    /// Stopped by a problem (see `failure_reason`); the messages moved so far stay moved.
    Failed,
}

impl MoveTaskStatus {
    /// SQS's spelling: `RUNNING`, `COMPLETED`, `CANCELLED`, `FAILED`.
    pub fn sqs_name(self) -> &'static str {
        match self {
            MoveTaskStatus::Running => "RUNNING",
            MoveTaskStatus::Completed => "COMPLETED",
            MoveTaskStatus::Cancelled => "CANCELLED",
            MoveTaskStatus::Failed => "FAILED",
        }
    }
}

/// A task as the catalog records it when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveTaskDef {
    /// Catalog id (never reused).
    pub id: u32,
    /// The source (a dead-letter queue), by name.
    pub source: String,
    /// The source's queue id: a queue of the same name created later is another queue.
    pub source_id: u32,
    /// Where messages go; `None`: each back to the queue it was dead-lettered from.
    pub destination: Option<String>,
    /// Messages a second at most; `None`: as fast as the engine moves them.
    pub max_per_second: Option<u32>,
    /// The task moves messages of the source whose key is below this (the message log's next
    /// sequence number when it started): those that were there then.
    pub before_key: u64,
    /// Messages in the source when it started (approximate, as SQS's).
    pub to_move: u64,
    /// When it started (ms since the Unix epoch).
    pub started_ms: u64,
}

impl MoveTaskDef {
    /// The handle callers name the task by.
    pub fn handle(&self) -> String {
        task_handle(self.id)
    }
}

/// The handle of task `id`: `mt-` and six or more digits.
pub fn task_handle(id: u32) -> String {
    format!("mt-{id:06}")
}

/// The task id a handle names, if it is one.
pub fn parse_task_handle(handle: &str) -> Option<u32> {
    let digits = handle.strip_prefix("mt-")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A task as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveTaskInfo {
    /// Names the task in `cancel_message_move_task` and `message_move_task`.
    pub handle: String,
    /// The source queue.
    pub source: String,
    /// The destination, or `None` for "back to where each message came from".
    pub destination: Option<String>,
    /// Its rate limit, messages a second.
    pub max_per_second: Option<u32>,
    /// Where it is.
    pub status: MoveTaskStatus,
    /// Messages moved so far.
    pub moved: u64,
    /// Messages in the source when it started.
    pub to_move: u64,
    /// When it started (ms since the Unix epoch).
    pub started_ms: u64,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

/// A token bucket on the engine clock: up to `per_second` moves a second, at most one second's
/// worth at once, starting empty (the first moves come as time passes). Without a rate it
/// allows [`UNLIMITED_STEP`] moves at any time.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: Option<u32>,
    /// Thousandths of a move.
    milli_tokens: u64,
    last_ms: u64,
}

impl RateLimiter {
    /// A limiter starting at `now_ms`.
    pub fn new(per_second: Option<u32>, now_ms: u64) -> RateLimiter {
        RateLimiter { per_second, milli_tokens: 0, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        let Some(rate) = self.per_second else { return };
        let rate = u64::from(rate.max(1));
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.milli_tokens = self.milli_tokens.saturating_add(elapsed.saturating_mul(rate)).min(rate * 1000);
        // A clock that steps back refills nothing until it passes the last reading again.
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Moves allowed at `now_ms`.
    pub fn available(&mut self, now_ms: u64) -> u64 {
        if self.per_second.is_none() {
            return UNLIMITED_STEP;
        }
        self.refill(now_ms);
        self.milli_tokens / 1000
    }

    /// Takes `moves` (no more than [`RateLimiter::available`] allowed).
    pub fn consume(&mut self, moves: u64) {
        if self.per_second.is_some() {
            debug_assert!(moves * 1000 <= self.milli_tokens, "more moves than the rate allows");
            self.milli_tokens = self.milli_tokens.saturating_sub(moves.saturating_mul(1000));
        }
    }

    /// When the next move is allowed (now if one is).
    pub fn next_move_at(&mut self, now_ms: u64) -> u64 {
        let Some(rate) = self.per_second else { return now_ms };
        self.refill(now_ms);
        let missing = 1000u64.saturating_sub(self.milli_tokens);
        now_ms + missing.div_ceil(u64::from(rate.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_rate_moves_a_second_and_never_a_burst_over_one_second() {
        let mut limit = RateLimiter::new(Some(4), 1000);
        assert_eq!(limit.available(1000), 0, "starts empty");
        assert_eq!(limit.next_move_at(1000), 1250);
        assert_eq!(limit.available(1250), 1);
        assert_eq!(limit.available(2000), 4);
        limit.consume(3);
        assert_eq!(limit.available(2000), 1);
        assert_eq!(limit.available(60_000), 4, "an idle minute allows one second's worth");
        limit.consume(4);
        let mut moved = 0;
        for t in (60_000..70_000).step_by(7) {
            let n = limit.available(t);
            limit.consume(n);
            moved += n;
        }
        assert!((39..=40).contains(&moved), "{moved} moves in 10 s at 4/s");
        // Clock steps back: nothing refills until it is past its last reading.
        assert_eq!(limit.available(50_000), 0);
        let mut unlimited = RateLimiter::new(None, 0);
        assert_eq!(unlimited.available(0), UNLIMITED_STEP);
        assert_eq!(unlimited.next_move_at(5), 5);
    }

    #[test]
    fn handles_name_task_ids() {
        assert_eq!(task_handle(7), "mt-000007");
        assert_eq!(parse_task_handle("mt-000007"), Some(7));
        assert_eq!(parse_task_handle(&task_handle(u32::MAX)), Some(u32::MAX));
        for bad in ["", "mt-", "mt-7", "mt-00000x", "sub-000001", "mt-99999999999999", "mt--00001"] {
            assert_eq!(parse_task_handle(bad), None, "{bad:?}");
        }
    }
}
