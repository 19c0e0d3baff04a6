//! Queue attributes with SQS's ranges and defaults, each checked with a clear error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest visibility timeout, as SQS: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Longest delivery delay, as SQS: 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Shortest retention, as SQS: 60 seconds.
pub const MIN_RETENTION: Duration = Duration::from_secs(60);
/// Longest retention, as SQS: 14 days.
pub const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
/// Smallest configurable maximum message size, as SQS: 1 KiB.
pub const MIN_MAX_MESSAGE_BYTES: usize = 1024;
/// Largest configurable maximum message size: 16 MiB (frames stay well under the log's 64 MiB).
pub const MAX_MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Default maximum message size, as SQS: 256 KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 << 10;
/// Longest long-poll wait, as SQS: 20 seconds.
pub const MAX_RECEIVE_WAIT: Duration = Duration::from_secs(20);
/// Largest max-receive count of a redrive policy, as SQS.
pub const MAX_MAX_RECEIVES: u32 = 1000;
/// FIFO deduplication window, as SQS: 5 minutes.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Where messages that keep failing go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    /// Name of the dead-letter queue (same type as the source: FIFO for FIFO).
    pub dead_letter_queue: String,
    /// A message received this many times moves to the dead-letter queue at its next receive
    /// (1 to 1000).
    pub max_receives: u32,
}

/// A queue's attributes. `Default` gives SQS's defaults for a standard queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// FIFO queue (name must end in `.fifo`).
    pub fifo: bool,
    /// FIFO only: deduplicate on the SHA-256 of the body when no deduplication id is given.
    pub content_based_dedup: bool,
    /// How long a received message stays invisible (0 s to 12 h, default 30 s).
    #[serde(with = "millis")]
    pub visibility_timeout: Duration,
    /// Delay before a new message becomes visible (0 to 15 min, default 0).
    #[serde(with = "millis")]
    pub delay: Duration,
    /// How long a message is kept (60 s to 14 days, default 4 days).
    #[serde(with = "millis")]
    pub retention: Duration,
    /// Largest body plus attributes in bytes (1 KiB to 16 MiB, default 256 KiB).
    pub max_message_bytes: usize,
    /// Default long-poll wait of a receive (0 to 20 s, default 0).
    #[serde(with = "millis")]
    pub receive_wait: Duration,
    /// Dead-letter queue, if any.
    pub redrive: Option<RedrivePolicy>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            fifo: false,
            content_based_dedup: false,
            visibility_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            retention: Duration::from_secs(4 * 24 * 3600),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            receive_wait: Duration::ZERO,
            redrive: None,
        }
    }
}

impl QueueConfig {
    /// SQS's defaults for a FIFO queue.
    pub fn fifo() -> Self {
        QueueConfig { fifo: true, ..QueueConfig::default() }
    }

    /// Checks every attribute against its range.
    pub fn validate(&self) -> Result<()> {
        check_range("visibility timeout", self.visibility_timeout, Duration::ZERO, MAX_VISIBILITY_TIMEOUT)?;
        check_range("delivery delay", self.delay, Duration::ZERO, MAX_DELAY)?;
        check_range("retention period", self.retention, MIN_RETENTION, MAX_RETENTION)?;
        check_range("receive wait time", self.receive_wait, Duration::ZERO, MAX_RECEIVE_WAIT)?;
        if !(MIN_MAX_MESSAGE_BYTES..=MAX_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return Err(Error::InvalidArgument(format!(
                "maximum message size must be {MIN_MAX_MESSAGE_BYTES} to {MAX_MAX_MESSAGE_BYTES} bytes, not {}",
                self.max_message_bytes
            )));
        }
        if self.content_based_dedup && !self.fifo {
            return Err(Error::InvalidArgument("content-based deduplication is for FIFO queues only".into()));
        }
        if let Some(r) = &self.redrive {
            if !(1..=MAX_MAX_RECEIVES).contains(&r.max_receives) {
                return Err(Error::InvalidArgument(format!(
                    "redrive max receives must be 1 to {MAX_MAX_RECEIVES}, not {}",
                    r.max_receives
                )));
            }
        }
        Ok(())
    }
}

/// Checks that a duration lies in `[min, max]` and is a whole number of seconds' worth of
/// precision SQS would accept (sub-second values are allowed: they only matter to tests).
pub fn check_range(what: &str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min || value > max {
        return Err(Error::InvalidArgument(format!(
            "{what} must be {} to {} seconds, not {}",
            min.as_secs(),
            max.as_secs(),
            fmt_secs(value)
        )));
    }
    Ok(())
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// Durations stored as whole milliseconds in the catalog.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
