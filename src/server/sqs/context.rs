//! What an SQS operation runs with: the server's shared state, the host the client addressed
//! (queue URLs echo it), and who the request acts as; and the one way operations call the
//! engine (where it may block, errors mapped by [`from_engine`]).

use std::sync::Arc;

use super::errors::{from_engine, Code, SqsError};
use crate::queue::Queue;
use crate::server::auth::Principal;
use crate::server::wire::Input;
use crate::server::{BlockingFailed, Shared};
use crate::{Durable, Engine, Error};

/// An operation's context. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub host: Arc<str>,
    pub principal: Arc<Principal>,
}

impl Ctx {
    /// Runs `f` with the engine where it may block (see `Shared::blocking`).
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, SqsError> {
        match self.shared.blocking(f).await {
            Ok(result) => result.map_err(|e| from_engine(&e)),
            Err(failed) => Err(SqsError::new(Code::InternalFailure, format!("The request failed: {}", failed.0))),
        }
    }

    /// Runs `f` with queue `name` where it may block; a name the engine refuses or does not
    /// know is `QueueDoesNotExist`, as SQS answers for any URL that names no queue.
    pub async fn queue<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Engine, Queue) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, SqsError> {
        let name = name.to_string();
        self.engine(move |engine| f(engine, open_queue(engine, &name)?)).await
    }

    /// Runs `f` with queue `name` here, on the request's own thread, then awaits the
    /// [`Durable`] it returns. For the engine's `_pending` calls, which take the queue's lock
    /// and write to the page cache but do not wait for the fsync: the request is handed to no
    /// other thread, and no thread blocks while its fsync runs (the log's sync thread runs it
    /// and wakes this task).
    pub async fn queue_pending<T: Unpin + Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Engine, Queue) -> crate::Result<Durable<T>>,
    ) -> Result<T, SqsError> {
        let engine = &self.shared.engine;
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(engine, open_queue(engine, name)?)));
        let pending = match called {
            Ok(pending) => pending.map_err(|e| from_engine(&e))?,
            Err(panic) => {
                let failed = BlockingFailed::from_panic(panic);
                return Err(SqsError::new(Code::InternalFailure, format!("The request failed: {}", failed.0)));
            }
        };
        pending.await.map_err(|e| from_engine(&e))
    }

    /// The queue named by the request's `QueueUrl`.
    pub fn queue_name(&self, input: &Input) -> Result<String, SqsError> {
        let url = input.required_str("QueueUrl")?;
        self.shared.identity.queue_from_url(url)
    }

    /// The URL of queue `name` for this client.
    pub fn url(&self, name: &str) -> String {
        self.shared.identity.queue_url(&self.host, name)
    }

    /// The ARN of queue `name`.
    pub fn arn(&self, name: &str) -> String {
        self.shared.identity.queue_arn(name)
    }
}

/// Queue `name`; a name the engine refuses is one that names no queue.
fn open_queue(engine: &Engine, name: &str) -> crate::Result<Queue> {
    engine.queue(name).map_err(|e| match e {
        Error::InvalidName { .. } => Error::NotFound { kind: "queue", name: name.to_string() },
        other => other,
    })
}
