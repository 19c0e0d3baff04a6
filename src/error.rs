//! The one error type of the crate.
//!
//! Every fallible public call returns [`Result<T>`]. Variants are typed so callers can react
//! (retry on [`Error::ThroughputExceeded`], reopen after [`Error::Poisoned`]) and each message
//! says what to do about it.

use std::io;
use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, weir::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in weir.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A queue, topic or stream name that is not allowed. Checked before any file is touched.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// "queue", "topic" or "stream".
        kind: &'static str,
        /// The rejected name (possibly shortened for display).
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// An argument outside its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A body, record or batch over its size limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large ("record", "message body", "batch").
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The named object does not exist.
    #[error("{kind} {name:?} does not exist")]
    NotFound {
        /// "queue", "topic", "stream", "shard", "subscription".
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The named object exists already (with a different configuration).
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// "queue", "topic" or "stream".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Bytes on disk that fail their checksum or do not decode. Never served as data.
    #[error("corrupt data in {}: at offset {offset}: {reason} (run `weir verify` on the data directory; `weir salvage` can set damaged ranges aside)", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What does not check out.
        reason: String,
    },
    /// An operating-system I/O error, with the file it happened on.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "fsync", "open", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A log that saw a write or fsync failure refuses further writes: the state of its tail
    /// on disk is unknown until recovery reads it again.
    #[error("log {} refuses writes after an earlier failure ({reason}); reopen the engine to recover", path.display())]
    Poisoned {
        /// The log directory.
        path: PathBuf,
        /// The original failure.
        reason: String,
    },
    /// Another process holds the data directory.
    #[error("data directory {} is locked by another process{}", path.display(), holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// What the lock file says about its holder, if readable.
        holder: Option<String>,
    },
    /// A receipt handle that is malformed, forged, from another queue, or stale.
    #[error("receipt handle rejected: {0}")]
    InvalidReceiptHandle(String),
    /// A visibility change for a message that is not in flight: its receipt handle is its
    /// latest, but its visibility timeout already ran out (SQS's `MessageNotInflight`).
    #[error("message not in flight: {0}")]
    MessageNotInflight(String),
    /// A write to a closed (split or merged) shard.
    #[error("shard {shard} of stream {stream:?} is closed (it was split or merged); write through the stream to reach its children")]
    ShardClosed {
        /// The stream.
        stream: String,
        /// The closed shard.
        shard: u32,
    },
    /// A per-shard throughput limit was exceeded; back off and retry.
    #[error("provisioned throughput exceeded: {0}; back off and retry")]
    ThroughputExceeded(String),
    /// A limit on how many of something an object may have was reached (tags, policy
    /// statements).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A queue was purged less than 60 seconds ago; SQS allows one purge a minute.
    #[error("queue {queue:?} was purged less than 60 seconds ago; try again in {retry_after_ms} ms")]
    PurgeInProgress {
        /// The queue.
        queue: String,
        /// How long until a purge is allowed again.
        retry_after_ms: u64,
    },
    /// The object is busy in a way that passes: a consumer still being created, a shard
    /// subscribed to moments ago, a stream being resharded. Retry later.
    #[error("in use: {0}")]
    InUse(String),
    /// The engine is shutting down or the object was deleted while in use.
    #[error("{0} is closed")]
    Closed(String),
    /// The key file does not hold the key an encrypted data directory was sealed under (its
    /// version is missing, or is another key). Nothing was read.
    #[error("wrong encryption key for {}", dir.display())]
    WrongKey {
        /// The data directory (or, from a log opened alone, the log's directory).
        dir: PathBuf,
        /// Which key version did not check out, and where.
        detail: String,
    },
    /// An encrypted data directory was opened without a key.
    #[error("{} is encrypted at rest: open it with its key file (--key-file FILE or $WEIR_KEY_FILE)", dir.display())]
    KeyRequired {
        /// The data directory.
        dir: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and path it happened on.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// A corruption error at `offset` of `path`.
    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), offset, reason: reason.into() }
    }

    /// True for errors a caller may retry after backing off.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ThroughputExceeded(_) | Error::InUse(_))
    }
}
