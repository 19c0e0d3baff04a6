//! Message move tasks (SQS's StartMessageMoveTask, ListMessageMoveTasks,
//! CancelMessageMoveTask): moving the messages of a dead-letter queue back to the queues they
//! came from, or to a destination, at a rate, in the background.
//!
//! Durable: a task's start and end are catalog records, and every move is one message-log frame
//! that also carries the task's new count (`QueueStore::move_messages`), so a task running at
//! a crash resumes when the engine opens, moves each message once, and counts exactly what is
//! durable. Tasks step on a thread of their own (with `Options::background`), sleeping until
//! the rate allows the next move by the engine clock; without it, `Engine::run_maintenance`
//! steps them, so tests drive them with a manual clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::engine::catalog::{CatalogRecord, CatalogState, MoveTaskEntry};
use crate::engine::{Engine, EngineInner};
use crate::error::{Error, Result};
use crate::queue::move_task::{
    parse_task_handle, MoveTaskDef, MoveTaskInfo, MoveTaskStatus, RateLimiter, MAX_LISTED_MOVE_TASKS, MAX_MOVE_RATE,
};
use crate::queue::store::MoveJob;

/// Longest the runner sleeps before looking at the clock again while a task waits for its rate
/// (a manual clock moves without telling it).
const MAX_NAP: Duration = Duration::from_secs(1);
/// Longest the runner sleeps with no task running (a start wakes it).
const IDLE_NAP: Duration = Duration::from_secs(60);

/// A running task's state in memory.
#[derive(Debug)]
struct RunningTask {
    def: MoveTaskDef,
    moved: u64,
    limiter: RateLimiter,
    /// Where the next step goes on (0 after a resume: the source is looked at again).
    next_key: u64,
    /// Set once its end is in the catalog.
    ended: bool,
}

#[derive(Debug, Default)]
struct RunnerSignal {
    stop: bool,
    kicked: bool,
}

/// The engine's running tasks and the thread that steps them.
#[derive(Debug, Default)]
pub(crate) struct MoveTasks {
    running: Mutex<BTreeMap<u32, Arc<Mutex<RunningTask>>>>,
    signal: Mutex<RunnerSignal>,
    wake: Condvar,
    runner: Mutex<Option<JoinHandle<()>>>,
}

impl MoveTasks {
    /// The tasks the catalog says were running, resumed at `now_ms` with the counts their
    /// MoveProgress records give.
    pub(crate) fn resume(state: &CatalogState, progress: &HashMap<u32, u64>, now_ms: u64) -> MoveTasks {
        let running = state
            .move_tasks
            .values()
            .filter(|t| t.status == MoveTaskStatus::Running)
            .map(|t| {
                let task = RunningTask {
                    def: t.def.clone(),
                    moved: progress.get(&t.def.id).copied().unwrap_or(0),
                    limiter: RateLimiter::new(t.def.max_per_second, now_ms),
                    next_key: 0,
                    ended: false,
                };
                (t.def.id, Arc::new(Mutex::new(task)))
            })
            .collect();
        MoveTasks { running: Mutex::new(running), ..MoveTasks::default() }
    }

    fn any_running(&self) -> bool {
        !self.running.lock().is_empty()
    }

    /// Starts the runner thread if it is not running, and wakes it.
    pub(crate) fn kick(&self, engine: Weak<EngineInner>) {
        let mut runner = self.runner.lock();
        if runner.is_none() {
            *runner = Some(std::thread::spawn(move || run(engine)));
        }
        self.signal.lock().kicked = true;
        self.wake.notify_all();
    }

    /// Stops the runner thread and waits for it (the engine is closing).
    pub(crate) fn stop(&self) {
        self.signal.lock().stop = true;
        self.wake.notify_all();
        if let Some(handle) = self.runner.lock().take() {
            let _ = handle.join();
        }
    }
}

/// The runner: steps every running task, then sleeps until the earliest is due again (or a
/// start or a stop wakes it). It holds the engine only while it steps, so dropping the engine
/// ends it.
fn run(engine: Weak<EngineInner>) {
    loop {
        let Some(inner) = engine.upgrade() else { return };
        if inner.move_tasks.signal.lock().stop {
            return;
        }
        let due = inner.step_move_tasks();
        let now = inner.options.clock.now_ms();
        let nap = match due {
            Some(at) => Duration::from_millis(at.saturating_sub(now)).min(MAX_NAP),
            None => IDLE_NAP,
        };
        let tasks = &inner.move_tasks;
        let mut signal = tasks.signal.lock();
        if !signal.stop && !signal.kicked && !nap.is_zero() {
            tasks.wake.wait_for(&mut signal, nap);
        }
        signal.kicked = false;
    }
}

impl EngineInner {
    /// One step of every running task at the engine clock's time; returns when the earliest
    /// wants the next (`None`: no task is running).
    pub(crate) fn step_move_tasks(&self) -> Option<u64> {
        let tasks: Vec<Arc<Mutex<RunningTask>>> = self.move_tasks.running.lock().values().cloned().collect();
        let mut next: Option<u64> = None;
        for task in tasks {
            let mut task = task.lock();
            if task.ended {
                continue;
            }
            if let Some(due) = self.step_task(&mut task) {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// Steps every task until each waits for its rate or has ended: with a manual clock, what
    /// the tasks would have done by now.
    pub(crate) fn run_move_tasks(&self) {
        while let Some(due) = self.step_move_tasks() {
            if due > self.options.clock.now_ms() {
                break;
            }
        }
    }

    /// Moves what the task's rate allows now; returns when it wants its next step, `None` once
    /// it ended (or its source is gone).
    fn step_task(&self, task: &mut RunningTask) -> Option<u64> {
        let now = self.options.clock.now_ms();
        let Some(source) = self.queues.cell(&task.def.source).filter(|c| c.id == task.def.source_id) else {
            // Deleted: the catalog dropped its tasks with it.
            task.ended = true;
            self.move_tasks.running.lock().remove(&task.def.id);
            return None;
        };
        let destination = match &task.def.destination {
            Some(name) => match self.queues.cell(name) {
                Some(cell) => Some(cell),
                None => {
                    let reason = format!("the destination queue {name:?} does not exist");
                    return self.end_or_retry(task, MoveTaskStatus::Failed, Some(reason), now);
                }
            },
            None => None,
        };
        let budget = task.limiter.available(now);
        if budget == 0 {
            return Some(task.limiter.next_move_at(now));
        }
        let job = MoveJob {
            task: task.def.id,
            source: &source,
            destination: destination.as_ref(),
            before_key: task.def.before_key,
            from_key: task.next_key,
            moved_before: task.moved,
        };
        let step = match self.queues.move_messages(&job, budget) {
            Ok(step) => step,
            Err(e) => return self.end_or_retry(task, MoveTaskStatus::Failed, Some(e.to_string()), now),
        };
        task.limiter.consume(step.moved);
        task.moved += step.moved;
        task.next_key = step.next_key;
        if let Some(reason) = step.failure {
            return self.end_or_retry(task, MoveTaskStatus::Failed, Some(reason), now);
        }
        if step.done {
            return self.end_or_retry(task, MoveTaskStatus::Completed, None, now);
        }
        Some(task.limiter.next_move_at(self.options.clock.now_ms()))
    }

    /// Records the task's end; if the catalog cannot take it, tries again in a second (a reopen
    /// resumes the task meanwhile).
    fn end_or_retry(
        &self,
        task: &mut RunningTask,
        status: MoveTaskStatus,
        reason: Option<String>,
        now: u64,
    ) -> Option<u64> {
        match self.end_task(task, status, reason) {
            Ok(()) => None,
            Err(_) => Some(now + 1000),
        }
    }

    fn end_task(&self, task: &mut RunningTask, status: MoveTaskStatus, failure_reason: Option<String>) -> Result<()> {
        debug_assert!(status != MoveTaskStatus::Running, "a task ends as completed, cancelled or failed");
        let record = CatalogRecord::EndMoveTask { id: task.def.id, status, moved: task.moved, failure_reason };
        self.catalog.lock().append(record, self.options.clock.now_ms())?;
        task.ended = true;
        self.move_tasks.running.lock().remove(&task.def.id);
        Ok(())
    }
}

fn info(entry: &MoveTaskEntry, live_moved: Option<u64>) -> MoveTaskInfo {
    let def = &entry.def;
    MoveTaskInfo {
        handle: def.handle(),
        source: def.source.clone(),
        destination: def.destination.clone(),
        max_per_second: def.max_per_second,
        status: entry.status,
        moved: live_moved.unwrap_or(entry.moved),
        to_move: def.to_move,
        started_ms: def.started_ms,
        failure_reason: entry.failure_reason.clone(),
    }
}

impl Engine {
    /// Starts moving the messages of `source`, a dead-letter queue of some queue, to
    /// `destination` or (`None`) each back to the queue it was dead-lettered from, at most
    /// `max_per_second` (1 to 500; `None`: as fast as it goes) a second by the engine clock.
    /// It moves the messages that are in the source now; messages in flight when it comes to
    /// them stay. One task runs per source at a time ([`Error::AlreadyExists`] otherwise).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use weir::queue::{QueueConfig, RedrivePolicy};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_queue("jobs-dlq", QueueConfig::default())?;
    /// let redrive = Some(RedrivePolicy { dead_letter_queue: "jobs-dlq".into(), max_receives: 3 });
    /// engine.create_queue("jobs", QueueConfig { redrive, ..QueueConfig::default() })?;
    /// let task = engine.start_message_move_task("jobs-dlq", None, Some(100))?;
    /// assert_eq!(engine.list_message_move_tasks("jobs-dlq", 10)?[0].handle, task.handle);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_message_move_task(
        &self,
        source: &str,
        destination: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<MoveTaskInfo> {
        if let Some(rate) = max_per_second {
            if rate == 0 || rate > MAX_MOVE_RATE {
                return Err(Error::InvalidArgument(format!(
                    "a move task moves 1 to {MAX_MOVE_RATE} messages a second, not {rate}"
                )));
            }
        }
        let source_queue = self.queue(source)?;
        let destination_queue = destination.map(|d| self.queue(d)).transpose()?;
        let mut catalog = self.inner.catalog.lock();
        let state = catalog.state();
        let source_entry =
            state.queues.get(source).ok_or_else(|| Error::NotFound { kind: "queue", name: source.to_string() })?;
        let is_dead_letter_queue =
            state.queues.values().any(|q| q.config.redrive.as_ref().is_some_and(|r| r.dead_letter_queue == source));
        if !is_dead_letter_queue {
            return Err(Error::InvalidArgument(format!(
                "{source:?} is no queue's dead-letter queue; a move task moves dead letters"
            )));
        }
        if state.move_tasks.values().any(|t| t.def.source == source && t.status == MoveTaskStatus::Running) {
            return Err(Error::AlreadyExists { kind: "running message move task of queue", name: source.to_string() });
        }
        if let (Some(dest), Some(dest_entry)) = (destination, destination.and_then(|d| state.queues.get(d))) {
            if dest == source {
                return Err(Error::InvalidArgument("a move task's destination is another queue".into()));
            }
            if dest_entry.config.fifo != source_entry.config.fifo {
                return Err(Error::InvalidArgument(format!(
                    "cannot move from {source:?} to {dest:?}: both must be FIFO or both standard"
                )));
            }
        }
        drop(destination_queue);
        let counts = source_queue.attributes();
        let now = self.now_ms();
        let def = MoveTaskDef {
            id: state.next_move_task_id,
            source: source.to_string(),
            source_id: source_entry.id,
            destination: destination.map(str::to_string),
            max_per_second,
            // Holding the catalog lock, which sends do not take: a message sent from here on
            // has a key at least this, and is not moved.
            before_key: self.inner.queues.log().written_next(),
            to_move: counts.approximate_visible + counts.approximate_in_flight + counts.approximate_delayed,
            started_ms: now,
        };
        catalog.append(CatalogRecord::StartMoveTask { task: def.clone() }, now)?;
        let entry = MoveTaskEntry { def: def.clone(), status: MoveTaskStatus::Running, moved: 0, failure_reason: None };
        drop(catalog);
        let task =
            RunningTask { limiter: RateLimiter::new(max_per_second, now), def, moved: 0, next_key: 0, ended: false };
        self.inner.move_tasks.running.lock().insert(task.def.id, Arc::new(Mutex::new(task)));
        if self.inner.options.background {
            self.inner.move_tasks.kick(Arc::downgrade(&self.inner));
        }
        Ok(info(&entry, None))
    }

    /// The latest move tasks of `source`, newest first: up to `max` (1 to 10), running or ended.
    pub fn list_message_move_tasks(&self, source: &str, max: usize) -> Result<Vec<MoveTaskInfo>> {
        if max == 0 || max > MAX_LISTED_MOVE_TASKS {
            return Err(Error::InvalidArgument(format!("list 1 to {MAX_LISTED_MOVE_TASKS} move tasks, not {max}")));
        }
        self.queue(source)?;
        let entries: Vec<MoveTaskEntry> = {
            let catalog = self.inner.catalog.lock();
            let tasks = catalog.state().move_tasks.values();
            tasks.filter(|t| t.def.source == source).rev().take(max).cloned().collect()
        };
        Ok(entries.iter().map(|e| info(e, self.live_moved(e))).collect())
    }

    /// A move task by its handle, with its progress.
    pub fn message_move_task(&self, handle: &str) -> Result<MoveTaskInfo> {
        let entry = self.move_task_entry(handle)?;
        Ok(info(&entry, self.live_moved(&entry)))
    }

    /// Cancels a running move task: it stops at once (what it moved stays moved). A task that
    /// ended is an error, as is a handle naming no task.
    pub fn cancel_message_move_task(&self, handle: &str) -> Result<MoveTaskInfo> {
        let entry = self.move_task_entry(handle)?;
        let running = self.inner.move_tasks.running.lock().get(&entry.def.id).cloned();
        let not_running = |status: MoveTaskStatus| {
            Error::InvalidArgument(format!("move task {handle} is {}, not running", status.sqs_name()))
        };
        let Some(task) = running else { return Err(not_running(entry.status)) };
        let mut task = task.lock();
        if task.ended {
            let status = self.move_task_entry(handle).map_or(MoveTaskStatus::Completed, |e| e.status);
            return Err(not_running(status));
        }
        self.inner.end_task(&mut task, MoveTaskStatus::Cancelled, None)?;
        let moved = task.moved;
        drop(task);
        let entry = self.move_task_entry(handle)?;
        Ok(info(&entry, Some(moved)))
    }

    fn move_task_entry(&self, handle: &str) -> Result<MoveTaskEntry> {
        let missing = || Error::NotFound { kind: "message move task", name: handle.chars().take(64).collect() };
        let id = parse_task_handle(handle).ok_or_else(missing)?;
        self.inner.catalog.lock().state().move_tasks.get(&id).cloned().ok_or_else(missing)
    }

    /// The count of a running task, which moves ahead of the catalog.
    fn live_moved(&self, entry: &MoveTaskEntry) -> Option<u64> {
        if entry.status != MoveTaskStatus::Running {
            return None;
        }
        let task = self.inner.move_tasks.running.lock().get(&entry.def.id).cloned()?;
        let moved = task.lock().moved;
        Some(moved)
    }

    /// Starts the runner for tasks resumed at open (with a background thread).
    pub(crate) fn resume_move_tasks(&self) {
        if self.inner.options.background && self.inner.move_tasks.any_running() {
            self.inner.move_tasks.kick(Arc::downgrade(&self.inner));
        }
    }
}
