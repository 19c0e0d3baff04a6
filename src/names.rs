//! Name rules, checked before a name reaches the file system.

use crate::error::{Error, Result};

/// Longest stream name, as Kinesis allows.
pub const MAX_STREAM_NAME_LEN: usize = 128;
/// Longest queue or topic name including a `.fifo` suffix, as SQS and SNS allow.
pub const MAX_QUEUE_NAME_LEN: usize = 80;

fn shorten(name: &str) -> String {
    if name.chars().count() > 64 {
        let mut s: String = name.chars().take(61).collect();
        s.push_str("...");
        s
    } else {
        name.to_string()
    }
}

fn reject(kind: &'static str, name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidName { kind, name: shorten(name), reason: reason.into() }
}

/// Streams: 1-128 characters of `[A-Za-z0-9_.-]`, and not `.` or `..`.
pub fn validate_stream_name(name: &str) -> Result<()> {
    let kind = "stream";
    if name.is_empty() || name.len() > MAX_STREAM_NAME_LEN {
        return Err(reject(kind, name, format!("must be 1 to {MAX_STREAM_NAME_LEN} characters long")));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(reject(kind, name, format!("may contain only A-Z, a-z, 0-9, '_', '.' and '-', not {c:?}")));
    }
    if name == "." || name == ".." {
        return Err(reject(kind, name, "may not be '.' or '..'"));
    }
    Ok(())
}

/// True for the name of a queue the engine keeps for itself (an HTTP subscription's pending
/// deliveries): it starts with `#`, which no queue name may contain, so a caller can never
/// name, list or collide with one.
pub fn is_internal_queue(name: &str) -> bool {
    name.starts_with('#')
}

/// Queues and topics: 1-80 characters of `[A-Za-z0-9_-]`, where FIFO ones end in `.fifo`
/// (counted in the 80).
pub fn validate_queue_name(kind: &'static str, name: &str, fifo: bool) -> Result<()> {
    if name.is_empty() || name.len() > MAX_QUEUE_NAME_LEN {
        return Err(reject(kind, name, format!("must be 1 to {MAX_QUEUE_NAME_LEN} characters long")));
    }
    let stem = match (fifo, name.strip_suffix(".fifo")) {
        (true, Some(stem)) => stem,
        (true, None) => return Err(reject(kind, name, format!("a FIFO {kind} name must end in \".fifo\""))),
        (false, Some(_)) => return Err(reject(kind, name, format!("only FIFO {kind}s may end in \".fifo\""))),
        (false, None) => name,
    };
    if stem.is_empty() {
        return Err(reject(kind, name, "needs at least one character before \".fifo\""));
    }
    if let Some(c) = stem.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))) {
        return Err(reject(
            kind,
            name,
            format!("may contain only A-Z, a-z, 0-9, '_' and '-' (and a \".fifo\" suffix), not {c:?}"),
        ));
    }
    Ok(())
}

/// Longest name of a queue or exchange declared through a broker protocol (an AMQP short
/// string).
pub const MAX_BROKER_NAME_LEN: usize = 255;

/// Queues and exchanges declared through a broker protocol (AMQP): 1-255 printable ASCII
/// characters without spaces, slashes or backslashes, and not `.` or `..` (AMQP names such as
/// `logs.info` or `amq.gen-...` have dots, which SQS names do not). Such names never reach the
/// file system (queues live in the message log, their names in the catalog), but nothing that
/// looks like a path is taken either. A `.fifo` suffix is refused: it would make the queue
/// look FIFO to SQS clients.
pub fn validate_broker_name(kind: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_BROKER_NAME_LEN {
        return Err(reject(kind, name, format!("must be 1 to {MAX_BROKER_NAME_LEN} characters long")));
    }
    if let Some(c) = name.chars().find(|&c| !c.is_ascii_graphic() || c == '/' || c == '\\') {
        return Err(reject(
            kind,
            name,
            format!("may contain only printable ASCII characters without spaces, slashes or backslashes, not {c:?}"),
        ));
    }
    if name.chars().all(|c| c == '.') {
        return Err(reject(kind, name, "may not be made of dots only"));
    }
    if name.ends_with(".fifo") {
        return Err(reject(kind, name, "may not end in \".fifo\" (FIFO queues take no broker deliveries)"));
    }
    Ok(())
}

/// Looks a queue or topic up by name with `find`. An SQS-style name that is not there is
/// [`Error::NotFound`]; a name only broker rules allow ([`validate_broker_name`]) is found
/// when a broker declared it, and is otherwise refused with the SQS-style name's error, so
/// that callers of the SQS and SNS rules see exactly the errors they saw before brokers.
pub(crate) fn find_named<T>(kind: &'static str, name: &str, find: impl FnOnce() -> Option<T>) -> Result<T> {
    match validate_queue_name(kind, name, name.ends_with(".fifo")) {
        Ok(()) => find().ok_or_else(|| Error::NotFound { kind, name: name.to_string() }),
        Err(sqs_error) => match validate_broker_name(kind, name) {
            Ok(()) => find().ok_or(sqs_error),
            Err(_) => Err(sqs_error),
        },
    }
}

/// A name to look a queue or topic up by: an SQS-style name, or one a broker protocol
/// declared.
pub fn validate_lookup_name(kind: &'static str, name: &str) -> Result<()> {
    validate_queue_name(kind, name, name.ends_with(".fifo"))
        .or_else(|e| validate_broker_name(kind, name).map_err(|_| e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_stream_names_are_rejected() {
        for bad in ["", ".", "..", "a/b", "../x", "a\0b", "ｃｌｉｃｋｓ", "a b", &"x".repeat(129), &"y".repeat(10_000)]
        {
            let err = validate_stream_name(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidName { kind: "stream", .. }), "{err}");
        }
        for good in ["a", "clicks.v1", "A-b_c", &"z".repeat(128)] {
            validate_stream_name(good).expect(good);
        }
    }

    #[test]
    fn broker_names_are_printable_ascii_up_to_255() {
        for good in ["logs.info", "amq.gen-AbC_1", "a:b|c", "...x", &"n".repeat(255)] {
            validate_broker_name("queue", good).expect(good);
            validate_lookup_name("queue", good).expect(good);
        }
        for bad in ["", "a b", "tab\t", "é", &"n".repeat(256), "x.fifo", "a\0b", "a/b", "../x", "a\\b", ".", ".."] {
            assert!(validate_broker_name("queue", bad).is_err(), "{bad:?} accepted");
        }
        validate_lookup_name("queue", "orders.fifo").expect("an SQS FIFO name");
        assert!(validate_lookup_name("queue", "a b").is_err());
    }

    #[test]
    fn queue_names_follow_sqs_rules() {
        validate_queue_name("queue", "orders", false).expect("plain");
        validate_queue_name("queue", "orders.fifo", true).expect("fifo");
        for (bad, fifo) in
            [("orders", true), ("orders.fifo", false), (".fifo", true), ("a.b", false), ("a/b", false), ("..", false)]
        {
            assert!(validate_queue_name("queue", bad, fifo).is_err(), "{bad} accepted");
        }
        assert!(validate_queue_name("queue", &"q".repeat(81), false).is_err());
        let long = "y".repeat(10_000);
        let msg = validate_queue_name("queue", &long, false).expect_err("long").to_string();
        assert!(msg.len() < 300, "error message echoes a 10 KB name: {} bytes", msg.len());
    }
}
