//! Named points inside store operations where a test can run code of its own (another
//! operation, compaction), to replay an interleaving of threads deterministically instead of
//! hoping a stress test hits it. Outside tests a pause point is an empty inline call.

/// A point where a test may run code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Redrive: before a candidate message's record is read.
    RedriveRead,
    /// Receive: after the dead-letter queue was looked up by name, before the locks.
    ReceiveLocks,
    /// Subscribe with replay: after the subscription is added, before the replay runs.
    SubscribeReplay,
    /// Snapshot writing: after a piece of a queue's index was cut and its lock released.
    SnapshotPiece,
}

/// Code a test runs at pause points.
#[cfg(test)]
type Hook = std::sync::Arc<dyn Fn(Pause) + Send + Sync>;

/// The test's code, if any, run at every pause point.
#[derive(Default)]
pub(crate) struct PausePoints {
    #[cfg(test)]
    hook: parking_lot::Mutex<Option<Hook>>,
}

impl std::fmt::Debug for PausePoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PausePoints")
    }
}

impl PausePoints {
    /// Runs the test's code for `point` (nothing outside tests).
    #[inline]
    pub(crate) fn at(&self, point: Pause) {
        #[cfg(test)]
        {
            // Cloned out, so the hook may itself run operations that pass pause points.
            let hook = self.hook.lock().clone();
            if let Some(hook) = hook {
                hook(point);
            }
        }
        let _ = point;
    }

    /// Runs `hook` at every pause point from now on.
    #[cfg(test)]
    pub(crate) fn set(&self, hook: impl Fn(Pause) + Send + Sync + 'static) {
        *self.hook.lock() = Some(std::sync::Arc::new(hook));
    }
}
