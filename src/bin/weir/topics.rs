//! `weir topic ...`: create, list, subscriptions, delete-topic, subscribe, confirm,
//! unsubscribe and publish.
//!
//! Subscriptions made here deliver to queues or HTTP/HTTPS endpoints and are durable. A publish
//! and its deliveries are one durable write: when `publish` prints, every subscribed queue has
//! its copy, and every HTTP/HTTPS subscription its pending delivery (made by `weir serve`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use weir::names::validate_queue_name;
use weir::queue::attributes;
use weir::topic::{
    Endpoint, FilterScope, MessageStructure, PublishEntry, PublishOptions, PublishResult, SubscribeOptions,
    SubscriptionInfo, Topic, TopicConfig, MAX_PUBLISH_BYTES,
};

use crate::out::{
    message_attributes, parse_key_value, submit_stdin_lines, CliError, CliResult, Deleted, LineLimits, Named, Out,
    MAX_BATCH_BYTES,
};

/// The `weir topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic; prints {"name":..,"fifo":..}. A topic that exists with the same settings
    /// is fine; with other settings it is an error.
    Create {
        /// Topic name: 1-80 characters of A-Z a-z 0-9 _ - (a FIFO topic's ends in .fifo).
        name: String,
        /// FIFO topic: delivers to FIFO queues, in order within each message group.
        #[arg(long)]
        fifo: bool,
        /// FIFO: deduplicate on the body's SHA-256 when a publish has no --dedup-id.
        #[arg(long)]
        content_dedup: bool,
    },
    /// List topics, one {"name":..} per line.
    List,
    /// List a topic's subscriptions, one JSON object per line.
    Subscriptions {
        /// Topic name.
        name: String,
    },
    /// Delete a topic and its subscriptions (the queues stay).
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Subscribe a queue, or an HTTP/HTTPS endpoint, to a topic; prints {"subscription_id":..}
    /// (an endpoint's: and "pending_confirmation":true).
    #[command(group = clap::ArgGroup::new("endpoint").required(true).args(["queue", "http"]))]
    Subscribe {
        /// Topic name.
        topic: String,
        /// Queue name (FIFO topics feed FIFO queues, standard topics standard queues).
        queue: Option<String>,
        /// An http:// or https:// URL to POST deliveries to, instead of a queue. It is sent a
        /// confirmation request first and gets nothing else until it confirms.
        #[arg(long, value_name = "URL")]
        http: Option<String>,
        /// A queue for what cannot be delivered (an endpoint's deliveries once its delivery
        /// policy runs out; a queue subscription's once its queue is deleted).
        #[arg(long, value_name = "QUEUE")]
        dead_letter: Option<String>,
        /// An HTTP/HTTPS endpoint's delivery policy (SNS's DeliveryPolicy JSON).
        #[arg(long, value_name = "JSON", requires = "http")]
        delivery_policy: Option<String>,
        /// An SNS filter policy (JSON); publishes that do not match are not delivered.
        #[arg(long, value_name = "JSON")]
        filter_policy: Option<String>,
        /// What the filter policy looks at [default: attributes].
        #[arg(long, value_enum, value_name = "SCOPE", requires = "filter_policy")]
        filter_scope: Option<Scope>,
        /// Deliver the body as published (attributes as message attributes) instead of a JSON
        /// envelope.
        #[arg(long)]
        raw: bool,
    },
    /// Confirm an HTTP/HTTPS subscription with the token of its confirmation request; prints
    /// {"subscription_id":..,"confirmed":true}.
    Confirm {
        /// Topic name.
        topic: String,
        /// The Token of the confirmation request the endpoint received.
        token: String,
    },
    /// Remove a subscription.
    Unsubscribe {
        /// The id `topic subscribe` printed.
        subscription_id: String,
    },
    /// Publish a message, or every line of stdin as a message; prints its id and how many
    /// subscriptions got it and filtered it out, once it and its deliveries are durable.
    Publish {
        /// Topic name.
        topic: String,
        /// The message body (UTF-8 text); without it, every line of stdin is a message.
        body: Option<OsString>,
        /// A String message attribute; repeat for more.
        #[arg(long = "attr", value_name = "K=V", value_parser = parse_key_value)]
        attrs: Vec<(String, String)>,
        /// A Number message attribute; repeat for more.
        #[arg(long = "attr-number", value_name = "K=N", value_parser = parse_key_value)]
        attr_numbers: Vec<(String, String)>,
        /// FIFO: the message group (required for FIFO topics).
        #[arg(long, value_name = "G")]
        group: Option<String>,
        /// FIFO: the deduplication id (required unless the topic has content-based deduplication).
        #[arg(long, value_name = "D")]
        dedup_id: Option<String>,
        /// Subject, carried in the envelope of non-raw deliveries.
        #[arg(long, value_name = "S")]
        subject: Option<String>,
        /// The body is SNS's MessageStructure=json: a JSON object with a "default" message and
        /// optional "sqs", "http" and "https" ones for subscriptions of those protocols.
        #[arg(long)]
        json_structure: bool,
    },
}

/// `--filter-scope`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scope {
    /// Match message attributes.
    Attributes,
    /// Match the message body, which must be a JSON object.
    Body,
}

/// Runs a `weir topic` subcommand against the data directory `data`.
pub fn run(data: &Path, command: TopicCommand) -> CliResult<()> {
    // Names are checked before the directory is opened (or created): a bad name never touches
    // the file system and never waits for the lock.
    check_names(&command)?;
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    match command {
        TopicCommand::Create { name, fifo, content_dedup } => {
            engine.create_topic(&name, TopicConfig { fifo, content_based_dedup: content_dedup })?;
            out.json(&Created { name: &name, fifo })
        }
        TopicCommand::List => {
            for name in engine.list_topics() {
                out.json(&Named { name: &name })?;
            }
            Ok(())
        }
        TopicCommand::Subscriptions { name } => {
            for subscription in engine.list_subscriptions(&name)? {
                out.json(&SubscriptionJson::from(&subscription))?;
            }
            Ok(())
        }
        TopicCommand::DeleteTopic { name } => {
            engine.delete_topic(&name)?;
            out.json(&Deleted { name: &name, deleted: true })
        }
        TopicCommand::Subscribe {
            topic,
            queue,
            http,
            dead_letter,
            delivery_policy,
            filter_policy,
            filter_scope,
            raw,
        } => {
            let filter_scope = match filter_scope {
                Some(Scope::Body) => FilterScope::MessageBody,
                Some(Scope::Attributes) | None => FilterScope::MessageAttributes,
            };
            let options = SubscribeOptions {
                filter_policy,
                filter_scope,
                raw,
                dead_letter_queue: dead_letter,
                delivery_policy,
                ..SubscribeOptions::default()
            };
            let endpoint = match (queue, http) {
                (Some(queue), _) => Endpoint::Queue(queue),
                (None, Some(url)) => Endpoint::Http(url),
                (None, None) => return Err(CliError::Failed("name a queue or pass --http URL".into())),
            };
            let http = matches!(endpoint, Endpoint::Http(_));
            let subscription_id = engine.subscribe(&topic, endpoint, options)?;
            let pending =
                http.then(|| engine.subscription(&subscription_id).map(|s| s.pending_confirmation)).transpose()?;
            out.json(&Subscribed { subscription_id: &subscription_id, pending_confirmation: pending })
        }
        TopicCommand::Confirm { topic, token } => {
            let subscription_id = engine.confirm_subscription(&topic, &token, true)?;
            out.json(&Confirmed { subscription_id: &subscription_id, confirmed: true })
        }
        TopicCommand::Unsubscribe { subscription_id } => {
            engine.unsubscribe(&subscription_id)?;
            out.json(&Unsubscribed { subscription_id: &subscription_id, unsubscribed: true })
        }
        TopicCommand::Publish { topic, body, attrs, attr_numbers, group, dedup_id, subject, json_structure } => {
            let topic = engine.topic(&topic)?;
            let message_structure = if json_structure { MessageStructure::Json } else { MessageStructure::Plain };
            let options = PublishOptions {
                attributes: message_attributes(attrs, attr_numbers)?,
                group,
                dedup_id,
                subject,
                message_structure,
            };
            match body {
                Some(body) => out.json(&PublishJson::from(topic.publish(body.as_bytes(), options)?)),
                None => publish_stdin(&topic, &options, &mut out),
            }
        }
    }
}

/// Checks every topic and queue name of a command by the library's rules.
fn check_names(command: &TopicCommand) -> CliResult<()> {
    let existing = |kind: &'static str, name: &str| validate_queue_name(kind, name, name.ends_with(".fifo"));
    match command {
        TopicCommand::Create { name, fifo, .. } => {
            validate_queue_name("topic", name, *fifo).map_err(|e| {
                if !fifo && name.ends_with(".fifo") {
                    CliError::Failed(format!("{e} (pass --fifo to create a FIFO topic)"))
                } else {
                    e.into()
                }
            })?;
        }
        TopicCommand::List | TopicCommand::Unsubscribe { .. } => {}
        TopicCommand::Subscriptions { name } | TopicCommand::DeleteTopic { name } => existing("topic", name)?,
        TopicCommand::Publish { topic, .. } | TopicCommand::Confirm { topic, .. } => existing("topic", topic)?,
        TopicCommand::Subscribe { topic, queue, dead_letter, .. } => {
            existing("topic", topic)?;
            for queue in queue.iter().chain(dead_letter) {
                existing("queue", queue)?;
            }
        }
    }
    Ok(())
}

/// Publishes every line of stdin (without its line ending) with the same options. Lines that
/// arrive together go as one batch; each result is printed once the batch is durable. A line
/// the topic cannot take (empty, not UTF-8, too large) is published on its own, so the lines
/// before it are in and the error names it.
fn publish_stdin(topic: &Topic, options: &PublishOptions, out: &mut Out) -> CliResult<()> {
    let limits = LineLimits {
        // Bad attributes fail every line alike; the library reports them on the first.
        attribute_bytes: attributes::validate(&options.attributes).unwrap_or(0),
        message_bytes: MAX_PUBLISH_BYTES,
        batch_bytes: MAX_BATCH_BYTES,
    };
    let submit = |bodies: Vec<Bytes>| {
        let entries: Vec<PublishEntry> =
            bodies.into_iter().map(|body| PublishEntry { body, options: options.clone() }).collect();
        topic.publish_batch(&entries)
    };
    submit_stdin_lines(out, limits, |body| std::str::from_utf8(body).is_ok(), submit, PublishJson::from)
}

/// `topic publish` output, one per message.
#[derive(Serialize)]
struct PublishJson {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
    delivered: usize,
    filtered: usize,
}

impl From<PublishResult> for PublishJson {
    fn from(r: PublishResult) -> Self {
        PublishJson { message_id: r.message_id, sequence: r.sequence, delivered: r.delivered, filtered: r.filtered }
    }
}

/// `topic subscriptions` output, one per subscription. (The library's counts of filtered and
/// dropped messages are left out: they count since the engine was opened, which for a command
/// is now.)
#[derive(Serialize)]
struct SubscriptionJson<'a> {
    subscription_id: &'a str,
    topic: &'a str,
    endpoint: &'a str,
    filter_policy: Option<&'a str>,
    filter_scope: &'a str,
    raw: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_queue: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_policy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_confirmation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_deliveries: Option<u64>,
}

impl<'a> From<&'a SubscriptionInfo> for SubscriptionJson<'a> {
    fn from(s: &'a SubscriptionInfo) -> Self {
        let http = s.pending_deliveries.is_some();
        SubscriptionJson {
            subscription_id: &s.subscription_id,
            topic: &s.topic,
            endpoint: &s.endpoint,
            filter_policy: s.filter_policy.as_deref(),
            filter_scope: s.filter_scope,
            raw: s.raw,
            dead_letter_queue: s.dead_letter_queue.as_deref(),
            delivery_policy: s.delivery_policy.as_deref(),
            pending_confirmation: http.then_some(s.pending_confirmation),
            pending_deliveries: s.pending_deliveries,
        }
    }
}

/// `topic create` output.
#[derive(Serialize)]
struct Created<'a> {
    name: &'a str,
    fifo: bool,
}

/// `topic subscribe` output.
#[derive(Serialize)]
struct Subscribed<'a> {
    subscription_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_confirmation: Option<bool>,
}

/// `topic confirm` output.
#[derive(Serialize)]
struct Confirmed<'a> {
    subscription_id: &'a str,
    confirmed: bool,
}

/// `topic unsubscribe` output.
#[derive(Serialize)]
struct Unsubscribed<'a> {
    subscription_id: &'a str,
    unsubscribed: bool,
}
