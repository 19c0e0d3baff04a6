//! `weir queue ...`: create, list, attributes, tags, purge, delete-queue, send, receive,
//! delete, change-visibility, peek, redrive and message move tasks.
//!
//! Every call is a process of its own: what a receive leaves in flight, and until when, is in
//! the message log before the command prints, so the next command sees exactly that.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use weir::engine::tags::{ResourceRef, Tags};
use weir::names::validate_queue_name;
use weir::queue::move_task::{MoveTaskInfo, MoveTaskStatus, MAX_LISTED_MOVE_TASKS};
use weir::queue::{
    attributes, Attributes, DedupScope, FifoThroughputLimit, PeekedMessage, Queue, QueueConfig, ReceiveOptions,
    ReceivedMessage, RedriveAllowPolicy, RedrivePolicy, SendEntry, SendOptions, SendResult, MAX_RECEIVE,
};
use weir::Engine;

use crate::out::{
    message_attributes, parse_key_value, submit_stdin_lines, BodyJson, CliError, CliResult, Deleted, LineLimits, Named,
    Out, MAX_BATCH_BYTES,
};

/// Messages `queue peek` lists when not told otherwise.
const DEFAULT_PEEK_LIMIT: &str = "100";

/// The `weir queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create a queue; prints {"name":..,"fifo":..}. A queue that exists with the same
    /// attributes is fine; with other attributes it is an error.
    Create {
        /// Queue name: 1-80 characters of A-Z a-z 0-9 _ - (a FIFO queue's ends in .fifo).
        name: String,
        /// FIFO queue: ordered within each message group, sends deduplicated for 5 minutes.
        #[arg(long)]
        fifo: bool,
        /// FIFO: deduplicate on the body's SHA-256 when a send has no --dedup-id.
        #[arg(long)]
        content_dedup: bool,
        /// Seconds a received message stays hidden from other receivers (0-43200) [default: 30].
        #[arg(long, value_name = "S")]
        visibility_timeout: Option<u64>,
        /// Seconds before a new message becomes visible (0-900) [default: 0].
        #[arg(long, value_name = "S")]
        delay: Option<u64>,
        /// Seconds a message is kept (60-1209600) [default: 345600, 4 days].
        #[arg(long, value_name = "S")]
        retention: Option<u64>,
        /// Largest message, body plus attributes, in bytes (1024-16777216) [default: 262144].
        #[arg(long, value_name = "B")]
        max_message_size: Option<usize>,
        /// Seconds a receive waits for a message when it does not say (0-20) [default: 0].
        #[arg(long, value_name = "S")]
        receive_wait: Option<u64>,
        /// Dead-letter queue (existing, of the same type) for messages received --max-receives
        /// times without being deleted.
        #[arg(long, value_name = "DLQ", requires = "max_receives")]
        dead_letter: Option<String>,
        /// Receives after which a message moves to the dead-letter queue (1-1000).
        #[arg(long, value_name = "N", requires = "dead_letter")]
        max_receives: Option<u32>,
        /// FIFO: deduplicate per queue, or per message group [default: queue].
        #[arg(long, value_name = "SCOPE")]
        dedup_scope: Option<ScopeArg>,
        /// FIFO: SQS's throughput quota setting, kept and returned (per-message-group-id needs
        /// --dedup-scope message-group) [default: per-queue].
        #[arg(long, value_name = "LIMIT")]
        fifo_throughput_limit: Option<ThroughputArg>,
        /// Which queues may use this one as their dead-letter queue: all, none, or up to 10
        /// names separated by commas [default: all].
        #[arg(long, value_name = "WHO")]
        redrive_allow: Option<String>,
        /// A tag; repeat for more (at most 50).
        #[arg(long = "tag", value_name = "K=V", value_parser = parse_key_value)]
        tags: Vec<(String, String)>,
    },
    /// List queues, one {"name":..} per line.
    List,
    /// Print a queue's attributes and approximate message counts as one JSON object.
    Attributes {
        /// Queue name.
        name: String,
    },
    /// Print a queue's tags: {"name":..,"tags":{..}}.
    Tags {
        /// Queue name.
        name: String,
    },
    /// Add tags to a queue (a key it has gets the new value); prints its tags.
    Tag {
        /// Queue name.
        name: String,
        /// Tags to add.
        #[arg(value_name = "K=V", required = true, value_parser = parse_key_value)]
        tags: Vec<(String, String)>,
    },
    /// Remove tags from a queue by key; prints its tags.
    Untag {
        /// Queue name.
        name: String,
        /// Keys to remove.
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// Delete every message of a queue, in flight or not.
    Purge {
        /// Queue name.
        name: String,
    },
    /// Delete a queue and its messages.
    DeleteQueue {
        /// Queue name.
        name: String,
    },
    /// Send a message, or every line of stdin as a message; prints {"message_id":..} per message
    /// (with "sequence" for FIFO queues) once it is durable.
    Send {
        /// Queue name.
        name: String,
        /// The message body; without it, every line of stdin is a message.
        body: Option<OsString>,
        /// FIFO: the message group (required for FIFO queues).
        #[arg(long, value_name = "G")]
        group: Option<String>,
        /// FIFO: the deduplication id (required unless the queue has content-based deduplication).
        #[arg(long, value_name = "D")]
        dedup_id: Option<String>,
        /// Standard queues: seconds before this message becomes visible (0-900).
        #[arg(long, value_name = "S")]
        delay: Option<u64>,
        /// The AWSTraceHeader system attribute, returned with the message.
        #[arg(long, value_name = "H")]
        trace_header: Option<String>,
        /// A String message attribute; repeat for more.
        #[arg(long = "attr", value_name = "K=V", value_parser = parse_key_value)]
        attrs: Vec<(String, String)>,
    },
    /// Receive messages and hide them for the visibility timeout; prints each with its receipt
    /// handle.
    Receive {
        /// Queue name.
        name: String,
        /// Most messages to receive (1-10).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_RECEIVE as u64))]
        max: u64,
        /// Seconds to wait for a message when none is visible (0-20) [default: the queue's].
        #[arg(long, value_name = "S")]
        wait: Option<u64>,
        /// Seconds these messages stay hidden (0-43200) [default: the queue's].
        #[arg(long, value_name = "S")]
        visibility_timeout: Option<u64>,
    },
    /// Delete a received message by its receipt handle.
    Delete {
        /// Queue name.
        name: String,
        /// The receipt handle a receive printed.
        receipt_handle: String,
    },
    /// Make a received message visible again in SECONDS (0: now) instead of when its visibility
    /// timeout ends.
    ChangeVisibility {
        /// Queue name.
        name: String,
        /// The receipt handle a receive printed.
        receipt_handle: String,
        /// Seconds from now (0-43200).
        seconds: u64,
    },
    /// List live messages in send order without receiving them (for operators).
    Peek {
        /// Queue name.
        name: String,
        /// Most messages to list.
        #[arg(long, value_name = "N", default_value = DEFAULT_PEEK_LIMIT, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Move the messages of a dead-letter queue back to the queues they came from, or all to
    /// --to; prints {"moved":..,"skipped":..}. Messages in flight stay.
    Redrive {
        /// The dead-letter queue.
        dlq: String,
        /// Send every message to this queue instead.
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
    },
    /// Message move tasks: a dead-letter queue's messages moved back (or to a destination) at a
    /// rate, resumed after a crash.
    MoveTask {
        #[command(subcommand)]
        command: MoveTaskCommand,
    },
}

/// `weir queue move-task` subcommands. Each prints tasks as {"handle":..,"source":..,
/// "destination":..,"max_per_second":..,"status":..,"moved":..,"to_move":..,"started_ms":..,
/// "failure_reason":..}.
#[derive(Debug, Subcommand)]
pub enum MoveTaskCommand {
    /// Start a task and wait until it ends (or, with --detach, print it and leave it to whatever
    /// opens the data directory next, such as `weir serve` or `move-task status --wait`).
    Start {
        /// The dead-letter queue to move messages from.
        source: String,
        /// Move every message here instead of back to the queue it came from.
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        /// At most this many messages a second (1-500) [default: as fast as it goes].
        #[arg(long, value_name = "N")]
        rate: Option<u32>,
        /// Print the started task and exit.
        #[arg(long)]
        detach: bool,
    },
    /// The latest tasks of a dead-letter queue, newest first.
    List {
        /// The dead-letter queue.
        source: String,
        /// Most tasks to list (1-10).
        #[arg(long, value_name = "N", default_value_t = MAX_LISTED_MOVE_TASKS as u64,
              value_parser = clap::value_parser!(u64).range(1..=MAX_LISTED_MOVE_TASKS as u64))]
        max: u64,
    },
    /// A task and its progress; with --wait, runs it until it ends first.
    Status {
        /// The task's handle.
        handle: String,
        /// Wait until it has ended.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel a running task (what it moved stays moved).
    Cancel {
        /// The task's handle.
        handle: String,
    },
}

/// `--dedup-scope` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Deduplicate across the queue.
    Queue,
    /// Deduplicate within each message group.
    MessageGroup,
}

/// `--fifo-throughput-limit` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ThroughputArg {
    /// The quota applies to the queue.
    PerQueue,
    /// The quota applies to each message group.
    PerMessageGroupId,
}

/// `--redrive-allow`: `all`, `none`, or queue names separated by commas.
fn redrive_allow(text: &str) -> RedriveAllowPolicy {
    match text {
        "all" => RedriveAllowPolicy::AllowAll,
        "none" => RedriveAllowPolicy::DenyAll,
        names => RedriveAllowPolicy::ByQueue(names.split(',').map(str::to_string).collect()),
    }
}

/// Runs a `weir queue` subcommand against the data directory `data`.
pub fn run(data: &Path, command: QueueCommand) -> CliResult<()> {
    // Names are checked before the directory is opened (or created): a bad name never touches
    // the file system and never waits for the lock.
    check_names(&command)?;
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    match command {
        QueueCommand::Create {
            name,
            fifo,
            content_dedup,
            visibility_timeout,
            delay,
            retention,
            max_message_size,
            receive_wait,
            dead_letter,
            max_receives,
            dedup_scope,
            fifo_throughput_limit,
            redrive_allow: allow,
            tags,
        } => {
            let mut config = QueueConfig { fifo, content_based_dedup: content_dedup, ..QueueConfig::default() };
            if let Some(scope) = dedup_scope {
                config.dedup_scope = match scope {
                    ScopeArg::Queue => DedupScope::Queue,
                    ScopeArg::MessageGroup => DedupScope::MessageGroup,
                };
            }
            if let Some(limit) = fifo_throughput_limit {
                config.fifo_throughput_limit = match limit {
                    ThroughputArg::PerQueue => FifoThroughputLimit::PerQueue,
                    ThroughputArg::PerMessageGroupId => FifoThroughputLimit::PerMessageGroupId,
                };
            }
            if let Some(allow) = allow {
                config.redrive_allow = redrive_allow(&allow);
            }
            if let Some(s) = visibility_timeout {
                config.visibility_timeout = Duration::from_secs(s);
            }
            if let Some(s) = delay {
                config.delay = Duration::from_secs(s);
            }
            if let Some(s) = retention {
                config.retention = Duration::from_secs(s);
            }
            if let Some(b) = max_message_size {
                config.max_message_bytes = b;
            }
            if let Some(s) = receive_wait {
                config.receive_wait = Duration::from_secs(s);
            }
            if let (Some(dead_letter_queue), Some(max_receives)) = (dead_letter, max_receives) {
                config.redrive = Some(RedrivePolicy { dead_letter_queue, max_receives });
            }
            engine.create_queue_with(&name, config, &tags_of(tags)?)?;
            out.json(&Created { name: &name, fifo })
        }
        QueueCommand::List => {
            for name in engine.list_queues() {
                out.json(&Named { name: &name })?;
            }
            Ok(())
        }
        QueueCommand::Attributes { name } => out.json(&engine.queue_attributes(&name)?),
        QueueCommand::Tags { name } => print_tags(&engine, &name, &mut out),
        QueueCommand::Tag { name, tags } => {
            engine.tag(ResourceRef::Queue(&name), &tags_of(tags)?)?;
            print_tags(&engine, &name, &mut out)
        }
        QueueCommand::Untag { name, keys } => {
            engine.untag(ResourceRef::Queue(&name), &keys)?;
            print_tags(&engine, &name, &mut out)
        }
        QueueCommand::Purge { name } => {
            engine.queue(&name)?.purge()?;
            out.json(&Purged { name: &name, purged: true })
        }
        QueueCommand::DeleteQueue { name } => {
            engine.delete_queue(&name)?;
            out.json(&Deleted { name: &name, deleted: true })
        }
        QueueCommand::Send { name, body, group, dedup_id, delay, trace_header, attrs } => {
            let queue = engine.queue(&name)?;
            let options = SendOptions {
                delay: delay.map(Duration::from_secs),
                attributes: message_attributes(attrs, Vec::new())?,
                group,
                dedup_id,
                trace_header,
                ..SendOptions::default()
            };
            match body {
                Some(body) => out.json(&SendJson::from(queue.send(body.as_bytes(), options)?)),
                None => send_stdin(&queue, &options, &mut out),
            }
        }
        QueueCommand::Receive { name, max, wait, visibility_timeout } => {
            let queue = engine.queue(&name)?;
            let options = ReceiveOptions {
                max: usize::try_from(max).unwrap_or(MAX_RECEIVE),
                wait: wait.map(Duration::from_secs),
                visibility_timeout: visibility_timeout.map(Duration::from_secs),
                ..ReceiveOptions::default()
            };
            for message in queue.receive(options)? {
                out.json(&ReceivedJson::from(&message))?;
            }
            Ok(())
        }
        QueueCommand::Delete { name, receipt_handle } => {
            engine.queue(&name)?.delete(&receipt_handle)?;
            out.json(&MessageDeleted { queue: &name, deleted: true })
        }
        QueueCommand::ChangeVisibility { name, receipt_handle, seconds } => {
            engine.queue(&name)?.change_visibility(&receipt_handle, Duration::from_secs(seconds))?;
            out.json(&VisibilityChanged { queue: &name, visibility_timeout_s: seconds })
        }
        QueueCommand::Peek { name, limit } => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            for message in engine.queue(&name)?.peek(limit)? {
                out.json(&PeekJson::from(&message))?;
            }
            Ok(())
        }
        QueueCommand::Redrive { dlq, to } => {
            let result = engine.redrive(&dlq, to.as_deref())?;
            out.json(&RedriveJson { moved: result.moved, skipped: result.skipped })
        }
        QueueCommand::MoveTask { command } => run_move_task(&engine, command, &mut out),
    }
}

fn run_move_task(engine: &Engine, command: MoveTaskCommand, out: &mut Out) -> CliResult<()> {
    match command {
        MoveTaskCommand::Start { source, to, rate, detach } => {
            let task = engine.start_message_move_task(&source, to.as_deref(), rate)?;
            let task = if detach { task } else { wait_for_end(engine, &task.handle)? };
            out.json(&task)
        }
        MoveTaskCommand::List { source, max } => {
            let max = usize::try_from(max).unwrap_or(MAX_LISTED_MOVE_TASKS);
            for task in engine.list_message_move_tasks(&source, max)? {
                out.json(&task)?;
            }
            Ok(())
        }
        MoveTaskCommand::Status { handle, wait } => {
            let task = if wait { wait_for_end(engine, &handle)? } else { engine.message_move_task(&handle)? };
            out.json(&task)
        }
        MoveTaskCommand::Cancel { handle } => out.json(&engine.cancel_message_move_task(&handle)?),
    }
}

/// Waits while the engine's task thread runs the task (it holds the data directory meanwhile);
/// an interrupted wait leaves the task running, to resume at the next open.
fn wait_for_end(engine: &Engine, handle: &str) -> CliResult<MoveTaskInfo> {
    loop {
        let task = engine.message_move_task(handle)?;
        if task.status != MoveTaskStatus::Running {
            return Ok(task);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tags_of(pairs: Vec<(String, String)>) -> CliResult<Tags> {
    let mut tags = Tags::new();
    for (key, value) in pairs {
        if tags.insert(key.clone(), value).is_some() {
            return Err(CliError::Failed(format!("tag {key:?} given twice")));
        }
    }
    Ok(tags)
}

fn print_tags(engine: &Engine, name: &str, out: &mut Out) -> CliResult<()> {
    out.json(&TagsJson { name, tags: engine.tags(ResourceRef::Queue(name))? })
}

/// Checks every queue name of a command by the library's rules.
fn check_names(command: &QueueCommand) -> CliResult<()> {
    let existing = |name: &str| validate_queue_name("queue", name, name.ends_with(".fifo"));
    match command {
        QueueCommand::Create { name, fifo, dead_letter, .. } => {
            validate_queue_name("queue", name, *fifo).map_err(|e| {
                if !fifo && name.ends_with(".fifo") {
                    CliError::Failed(format!("{e} (pass --fifo to create a FIFO queue)"))
                } else {
                    e.into()
                }
            })?;
            if let Some(dlq) = dead_letter {
                existing(dlq)?;
            }
        }
        QueueCommand::List => {}
        QueueCommand::Attributes { name }
        | QueueCommand::Tags { name }
        | QueueCommand::Tag { name, .. }
        | QueueCommand::Untag { name, .. }
        | QueueCommand::Purge { name }
        | QueueCommand::DeleteQueue { name }
        | QueueCommand::Send { name, .. }
        | QueueCommand::Receive { name, .. }
        | QueueCommand::Delete { name, .. }
        | QueueCommand::ChangeVisibility { name, .. }
        | QueueCommand::Peek { name, .. } => existing(name)?,
        QueueCommand::Redrive { dlq, to } => {
            existing(dlq)?;
            if let Some(to) = to {
                existing(to)?;
            }
        }
        QueueCommand::MoveTask { command } => match command {
            MoveTaskCommand::Start { source, to, .. } => {
                existing(source)?;
                if let Some(to) = to {
                    existing(to)?;
                }
            }
            MoveTaskCommand::List { source, .. } => existing(source)?,
            MoveTaskCommand::Status { .. } | MoveTaskCommand::Cancel { .. } => {}
        },
    }
    Ok(())
}

/// Sends every line of stdin (without its line ending) as a message with the same options.
/// Lines that arrive together go as one batch; each result is printed once the batch is
/// durable. A line the queue cannot take (empty, too large) is sent on its own, so the lines
/// before it are in and the error names it.
fn send_stdin(queue: &Queue, options: &SendOptions, out: &mut Out) -> CliResult<()> {
    let message_bytes = queue.attributes().max_message_bytes;
    let limits = LineLimits {
        // Bad attributes fail every line alike; the library reports them on the first.
        attribute_bytes: attributes::validate(&options.attributes).unwrap_or(0),
        message_bytes,
        batch_bytes: message_bytes.max(MAX_BATCH_BYTES),
    };
    let submit = |bodies: Vec<Bytes>| {
        let entries: Vec<SendEntry> =
            bodies.into_iter().map(|body| SendEntry { body, options: options.clone() }).collect();
        queue.send_batch(&entries)
    };
    submit_stdin_lines(out, limits, |_| true, submit, SendJson::from)
}

/// `queue send` output, one per message.
#[derive(Serialize)]
struct SendJson {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
}

impl From<SendResult> for SendJson {
    fn from(r: SendResult) -> Self {
        SendJson { message_id: r.message_id, sequence: r.sequence }
    }
}

/// `queue receive` output, one per message.
#[derive(Serialize)]
struct ReceivedJson<'a> {
    message_id: &'a str,
    receipt_handle: &'a str,
    #[serde(flatten)]
    body: BodyJson,
    receive_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    attributes: &'a Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_source: Option<&'a str>,
}

impl<'a> From<&'a ReceivedMessage> for ReceivedJson<'a> {
    fn from(m: &'a ReceivedMessage) -> Self {
        ReceivedJson {
            message_id: &m.message_id,
            receipt_handle: &m.receipt_handle,
            body: BodyJson::new(&m.body),
            receive_count: m.receive_count,
            group: m.group.as_deref(),
            attributes: &m.attributes,
            dedup_id: m.dedup_id.as_deref(),
            trace_header: m.trace_header.as_deref(),
            dead_letter_source: m.dead_letter_source.as_deref(),
        }
    }
}

/// `queue peek` output, one per message.
#[derive(Serialize)]
struct PeekJson<'a> {
    message_id: &'a str,
    #[serde(flatten)]
    body: BodyJson,
    state: &'a str,
    receive_count: u32,
    sent_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
}

impl<'a> From<&'a PeekedMessage> for PeekJson<'a> {
    fn from(m: &'a PeekedMessage) -> Self {
        PeekJson {
            message_id: &m.message_id,
            body: BodyJson::new(&m.body),
            state: m.state,
            receive_count: m.receive_count,
            sent_ms: m.sent_ms,
            group: m.group.as_deref(),
        }
    }
}

/// `queue create` output.
#[derive(Serialize)]
struct Created<'a> {
    name: &'a str,
    fifo: bool,
}

/// `queue purge` output.
#[derive(Serialize)]
struct Purged<'a> {
    name: &'a str,
    purged: bool,
}

/// `queue delete` output.
#[derive(Serialize)]
struct MessageDeleted<'a> {
    queue: &'a str,
    deleted: bool,
}

/// `queue change-visibility` output.
#[derive(Serialize)]
struct VisibilityChanged<'a> {
    queue: &'a str,
    visibility_timeout_s: u64,
}

/// `queue tags`, `tag` and `untag` output.
#[derive(Serialize)]
struct TagsJson<'a> {
    name: &'a str,
    tags: Tags,
}

/// `queue redrive` output.
#[derive(Serialize)]
struct RedriveJson {
    moved: u64,
    skipped: u64,
}
