//! What `queue.declare`'s `x-` arguments and a headers binding's arguments mean on the engine.
//! Pure.

use std::time::Duration;

use super::codec::{FieldTable, FieldValue, Writer};
use super::errors::{code, AmqpError};
use crate::queue::BrokerOptions;

/// The broker options `queue.declare` asks for (`durable`, `exclusive`, `auto-delete`, and the
/// arguments weir knows: `x-message-ttl`, `x-max-length`, `x-overflow` `drop-head`,
/// `x-dead-letter-exchange`, `x-dead-letter-routing-key`, `x-queue-type` `classic` or
/// `quorum`). An argument of the wrong type, or a value weir does not do, is a 406.
pub fn queue_options(
    queue: &str,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    arguments: &FieldTable,
) -> Result<BrokerOptions, AmqpError> {
    let bad = |arg: &str, why: &str| {
        AmqpError::new(
            code::PRECONDITION_FAILED,
            format!("invalid arg '{arg}' for queue '{queue}' in vhost '/': {why}"),
        )
    };
    let non_negative = |arg: &str| -> Result<Option<u64>, AmqpError> {
        match arguments.get(arg) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Ok(Some(n as u64)),
                Some(_) => Err(bad(arg, "a negative value")),
                None => Err(bad(arg, "not an integer")),
            },
        }
    };
    let text = |arg: &str| -> Result<Option<String>, AmqpError> {
        match arguments.get(arg) {
            None => Ok(None),
            Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| bad(arg, "not a string")),
        }
    };
    let message_ttl = non_negative("x-message-ttl")?.map(Duration::from_millis);
    if message_ttl.is_some_and(|t| t > crate::queue::config::MAX_MESSAGE_TTL) {
        return Err(bad("x-message-ttl", "more than 2^32-1 ms"));
    }
    let max_length = non_negative("x-max-length")?;
    match text("x-overflow")?.as_deref() {
        None | Some("drop-head") => {}
        Some(_) => return Err(bad("x-overflow", "weir drops the oldest messages (drop-head) only")),
    }
    match text("x-queue-type")?.as_deref() {
        None | Some("classic") | Some("quorum") => {}
        Some(_) => return Err(bad("x-queue-type", "weir serves classic and quorum queues (both durable queues)")),
    }
    Ok(BrokerOptions {
        transient: !durable || exclusive,
        exclusive,
        auto_delete,
        message_ttl,
        max_length,
        dead_letter_exchange: text("x-dead-letter-exchange")?,
        dead_letter_routing_key: text("x-dead-letter-routing-key")?,
    })
}

/// The first setting in which `existing` and `wanted` differ, as RabbitMQ names it in its
/// "inequivalent arg" error, with both values.
pub fn first_difference(existing: &BrokerOptions, wanted: &BrokerOptions) -> Option<(&'static str, String, String)> {
    let durable = |b: &BrokerOptions| !b.transient || b.exclusive;
    let pairs: [(&'static str, String, String); 7] = [
        ("durable", durable(wanted).to_string(), durable(existing).to_string()),
        ("exclusive", wanted.exclusive.to_string(), existing.exclusive.to_string()),
        ("auto_delete", wanted.auto_delete.to_string(), existing.auto_delete.to_string()),
        ("x-message-ttl", format!("{:?}", wanted.message_ttl), format!("{:?}", existing.message_ttl)),
        ("x-max-length", format!("{:?}", wanted.max_length), format!("{:?}", existing.max_length)),
        (
            "x-dead-letter-exchange",
            format!("{:?}", wanted.dead_letter_exchange),
            format!("{:?}", existing.dead_letter_exchange),
        ),
        (
            "x-dead-letter-routing-key",
            format!("{:?}", wanted.dead_letter_routing_key),
            format!("{:?}", existing.dead_letter_routing_key),
        ),
    ];
    pairs.into_iter().find(|(_, w, e)| w != e)
}

/// A headers binding's filter: `x-match` (`all`, the default, or `any`; the `-with-x` forms
/// also match `x-` headers) and the pairs to match (a void value asks for presence only). The
/// values are compared with their types, as RabbitMQ compares them.
pub fn headers_filter(arguments: &FieldTable) -> Result<(bool, crate::topic::binding::HeaderPairs), AmqpError> {
    let (any, with_x) = match arguments.get("x-match") {
        None => (false, false),
        Some(v) => match v.as_str() {
            Some("all") => (false, false),
            Some("any") => (true, false),
            Some("all-with-x") => (false, true),
            Some("any-with-x") => (true, true),
            _ => {
                return Err(AmqpError::new(
                    code::PRECONDITION_FAILED,
                    "x-match must be 'all', 'any', 'all-with-x' or 'any-with-x'",
                ))
            }
        },
    };
    let pairs = arguments
        .0
        .iter()
        .filter(|(name, _)| name != "x-match" && (with_x || !name.starts_with("x-")))
        .map(|(name, value)| {
            let wanted = match value {
                FieldValue::Void => None,
                v => Some(crate::text::hex(&Writer::tagged_value(v))),
            };
            (name.clone(), wanted)
        })
        .collect();
    Ok((any, pairs))
}

/// A binding's arguments as they name it (with its key): hex of their encoding.
pub fn identity(arguments: &FieldTable) -> String {
    if arguments.is_empty() {
        return String::new();
    }
    let mut w = Writer::new();
    w.table(arguments);
    crate::text::hex(&w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declare_arguments_become_broker_options() {
        let mut args = FieldTable::default();
        args.insert("x-message-ttl", FieldValue::I32(1500));
        args.insert("x-max-length", FieldValue::I64(10));
        args.insert("x-dead-letter-exchange", FieldValue::text("dlx"));
        let o = queue_options("q", true, false, true, &args).unwrap();
        assert_eq!(o.message_ttl, Some(Duration::from_millis(1500)));
        assert_eq!((o.max_length, o.dead_letter_exchange.as_deref()), (Some(10), Some("dlx")));
        assert!(!o.transient && o.auto_delete);
        assert!(queue_options("q", true, true, false, &FieldTable::default()).unwrap().transient, "exclusive");
        assert!(queue_options("q", false, false, false, &FieldTable::default()).unwrap().transient, "not durable");
        for (name, value) in [
            ("x-message-ttl", FieldValue::text("1000")),
            ("x-message-ttl", FieldValue::I32(-1)),
            ("x-max-length", FieldValue::Bool(true)),
            ("x-overflow", FieldValue::text("reject-publish")),
            ("x-queue-type", FieldValue::text("stream")),
            ("x-dead-letter-exchange", FieldValue::I32(1)),
        ] {
            let mut args = FieldTable::default();
            args.insert(name, value);
            assert_eq!(queue_options("q", true, false, false, &args).unwrap_err().code, code::PRECONDITION_FAILED);
        }
        let a = queue_options("q", true, false, false, &FieldTable::default()).unwrap();
        let b = queue_options("q", false, false, false, &FieldTable::default()).unwrap();
        assert_eq!(first_difference(&a, &b).map(|d| d.0), Some("durable"));
        assert_eq!(first_difference(&a, &a), None);
    }

    #[test]
    fn headers_bindings_read_x_match() {
        let mut args = FieldTable::default();
        args.insert("x-match", FieldValue::text("any"));
        args.insert("format", FieldValue::text("pdf"));
        args.insert("x-other", FieldValue::I32(1));
        args.insert("present", FieldValue::Void);
        let (any, pairs) = headers_filter(&args).unwrap();
        assert!(any);
        assert_eq!(pairs.len(), 2, "x- keys are not matched under 'any'");
        assert_eq!(pairs[1], ("present".to_string(), None));
        let mut bad = FieldTable::default();
        bad.insert("x-match", FieldValue::text("some"));
        assert!(headers_filter(&bad).is_err());
        assert_eq!(identity(&FieldTable::default()), "");
        assert_ne!(identity(&args), "");
    }
}
