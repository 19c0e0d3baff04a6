//! What a STOMP destination is in the engine: `/queue/NAME` is the weir queue NAME, and
//! `/topic/NAME` the weir topic NAME. Either is made on first use, as RabbitMQ's STOMP
//! plugin declares them: a queue as a durable broker queue (the largest message size and
//! retention, so STOMP senders meet no SQS limit they did not ask for), a topic as a durable
//! fanout exchange when it does not exist yet (an existing SNS topic or AMQP exchange is used
//! as it is). A subscription to a topic reads a queue of its own, bound to the topic (see
//! `subscription.rs`).

use std::sync::Arc;

use super::StompError;
use crate::engine::Delivery;
use crate::queue::config::{MAX_MAX_MESSAGE_BYTES, MAX_RETENTION};
use crate::queue::store::BrokerMessage;
use crate::queue::{BrokerOptions, Queue, QueueConfig};
use crate::server::amqp::access::{self, Resource};
use crate::server::auth::Principal;
use crate::server::Shared;
use crate::topic::{ExchangeDef, ExchangeKind, Topic};
use crate::{Engine, Error};

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `/queue/NAME`.
    Queue(String),
    /// `/topic/NAME`.
    Topic(String),
}

impl Destination {
    /// Reads a `destination` header; other kinds of destination are refused.
    pub fn parse(text: &str) -> Result<Destination, StompError> {
        let (kind, name) = if let Some(name) = text.strip_prefix("/queue/") {
            (Destination::Queue as fn(String) -> Destination, name)
        } else if let Some(name) = text.strip_prefix("/topic/") {
            (Destination::Topic as fn(String) -> Destination, name)
        } else {
            return Err(StompError::new(
                "unknown destination",
                format!("{text:?}: weir serves /queue/NAME and /topic/NAME destinations"),
            ));
        };
        crate::names::validate_broker_name("destination", name).map_err(StompError::from)?;
        Ok(kind(name.to_string()))
    }

    /// The header's spelling.
    pub fn header(&self) -> String {
        match self {
            Destination::Queue(name) => format!("/queue/{name}"),
            Destination::Topic(name) => format!("/topic/{name}"),
        }
    }
}

/// The queue NAME, made (durable) if there is none.
pub(crate) fn ensure_queue(engine: &Engine, name: &str) -> Result<Queue, Error> {
    match engine.queue(name) {
        Err(Error::NotFound { .. }) => {}
        found => return found,
    }
    let config = QueueConfig {
        max_message_bytes: MAX_MAX_MESSAGE_BYTES,
        retention: MAX_RETENTION,
        broker: Some(BrokerOptions::default()),
        ..QueueConfig::default()
    };
    match engine.create_queue(name, config) {
        // Another connection made it first.
        Ok(()) | Err(Error::AlreadyExists { .. }) => engine.queue(name),
        Err(e) => Err(e),
    }
}

/// The topic NAME, made (a durable fanout exchange) if there is none.
pub(crate) fn ensure_topic(engine: &Engine, name: &str) -> Result<Topic, Error> {
    match engine.topic(name) {
        Err(Error::NotFound { .. }) => {}
        found => return found,
    }
    let def = ExchangeDef { kind: ExchangeKind::Fanout, durable: true, auto_delete: false, internal: false };
    match engine.declare_exchange(name, def) {
        Ok(()) | Err(Error::AlreadyExists { .. }) => engine.topic(name),
        Err(e) => Err(e),
    }
}

/// The queues a message sent to `destination` goes to: the queue, or the queues subscribed to
/// the topic whose subscriptions take it.
pub(crate) fn targets(
    engine: &Engine,
    destination: &Destination,
    message: &BrokerMessage,
) -> Result<Vec<Queue>, Error> {
    Ok(match destination {
        Destination::Queue(name) => vec![ensure_queue(engine, name)?],
        Destination::Topic(name) => {
            ensure_topic(engine, name)?.route_targets("", &[], &message.attributes, &message.body)
        }
    })
}

/// Sends one message to `destination`, durably; an error if a queue refused it as too large.
pub(crate) fn send(engine: &Engine, destination: &Destination, message: BrokerMessage) -> Result<(), StompError> {
    let queues = targets(engine, destination, &message)?;
    let wanted = queues.len();
    let size = message.body.len();
    let took = engine.deliver(&[Delivery { queues, message }])?;
    if took.first().copied().unwrap_or(0) < wanted {
        return Err(StompError::new(
            "message too large",
            format!(
                "a body of {size} bytes is over the maximum message size of {} of its queues",
                destination.header()
            ),
        ));
    }
    Ok(())
}

/// With `--auth`, whether `principal` may do what a frame asks on `destination`: as the IAM
/// action it amounts to (a queue is an SQS queue, a topic an SNS topic), through the same
/// hook as AMQP's. `publish` is a SEND; otherwise a SUBSCRIBE.
pub(crate) async fn authorize(
    shared: &Arc<Shared>,
    principal: &Principal,
    destination: &Destination,
    publish: bool,
) -> Result<(), StompError> {
    let (action, resource) = match (destination, publish) {
        (Destination::Queue(name), true) => ("sqs:SendMessage", Resource::Queue(name)),
        (Destination::Queue(name), false) => ("sqs:ReceiveMessage", Resource::Queue(name)),
        (Destination::Topic(name), true) => ("sns:Publish", Resource::Exchange(name)),
        (Destination::Topic(name), false) => ("sns:Subscribe", Resource::Exchange(name)),
    };
    access::check(shared, principal, action, resource).await.map_err(|e| StompError::new("access refused", e.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_queues_and_topics_with_broker_names() {
        assert_eq!(Destination::parse("/queue/jobs.high"), Ok(Destination::Queue("jobs.high".into())));
        assert_eq!(Destination::parse("/topic/a"), Ok(Destination::Topic("a".into())));
        assert_eq!(Destination::Topic("a".into()).header(), "/topic/a");
        for bad in ["/queue/", "/topic/a b", "/exchange/x", "queue/x", "", "/queue/x.fifo", "/queue/\u{e9}"] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }
}
