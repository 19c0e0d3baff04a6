//! What the maintenance thread met: failures kept per log, so that one log's failed fsync is
//! reported (once, on stderr, and by [`crate::Engine::health`]) instead of being dropped, and
//! never stops the sync, retention or compaction of the other logs.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};

/// A failure the maintenance thread met on one log. The first one per log is kept until the
/// engine is reopened (later ones on the same log are its consequences: a log whose fsync
/// failed refuses writes, and every later sync of it fails the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogFailure {
    /// The log's directory.
    pub log: PathBuf,
    /// What was being done: `"sync"` (the periodic fsync of `Interval`), `"retention"` or
    /// `"compaction"`.
    pub task: &'static str,
    /// The error.
    pub error: String,
    /// When, in milliseconds of the engine's clock.
    pub at_ms: u64,
}

/// The state of an engine's logs, as [`crate::Engine::health`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Failures of background work, the first per log, in the order they happened.
    pub failures: Vec<LogFailure>,
    /// Logs that refuse writes because a write or fsync of theirs failed (in a caller's call
    /// or in the background) until the engine is reopened.
    pub poisoned: Vec<PathBuf>,
}

impl Health {
    /// True when no background task failed and every log takes writes.
    pub fn is_healthy(&self) -> bool {
        self.failures.is_empty() && self.poisoned.is_empty()
    }
}

/// The failures recorded so far.
#[derive(Debug, Default)]
pub(crate) struct FailureBook {
    failures: Mutex<Vec<LogFailure>>,
}

impl FailureBook {
    /// Records `error` of `task` on `log` unless that log already has a failure; prints the
    /// first one of each log on stderr (nobody else may ever see a background failure).
    pub(crate) fn record(&self, log: &Path, task: &'static str, error: &Error, at_ms: u64) {
        let mut failures = self.failures.lock();
        if failures.iter().any(|f| f.log == log) {
            return;
        }
        eprintln!(
            "weir: background {task} of {} failed: {error} (reported once; the engine's other logs carry on)",
            log.display()
        );
        failures.push(LogFailure { log: log.to_path_buf(), task, error: error.to_string(), at_ms });
    }

    /// Every recorded failure.
    pub(crate) fn list(&self) -> Vec<LogFailure> {
        self.failures.lock().clone()
    }
}

/// One pass of work over many logs: a failure is noted against its log (in the book, when
/// the pass runs in the background) and the pass goes on; the first error is what the pass
/// returns to a caller that asked for it.
pub(crate) struct Pass<'a> {
    book: Option<(&'a FailureBook, u64)>,
    first: Option<Error>,
}

impl<'a> Pass<'a> {
    /// A pass a caller runs: failures go to the caller only.
    pub(crate) fn foreground() -> Pass<'a> {
        Pass { book: None, first: None }
    }

    /// A pass of the maintenance thread at `now_ms`: failures are recorded in `book`.
    pub(crate) fn background(book: &'a FailureBook, now_ms: u64) -> Pass<'a> {
        Pass { book: Some((book, now_ms)), first: None }
    }

    /// Notes the outcome of `task` on `log`.
    pub(crate) fn check<T>(&mut self, log: &Path, task: &'static str, outcome: Result<T>) {
        if let Err(e) = outcome {
            if let Some((book, now_ms)) = self.book {
                book.record(log, task, &e, now_ms);
            }
            self.first.get_or_insert(e);
        }
    }

    /// Ok if every task succeeded, else the first error.
    pub(crate) fn finish(self) -> Result<()> {
        self.first.map_or(Ok(()), Err)
    }
}
