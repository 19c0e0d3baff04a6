//! AMQP's reply codes (spec 1.9 "constants") and the one mapping from `weir::Error` to them.

use crate::error::Error;

/// Reply codes.
#[allow(missing_docs)]
pub mod code {
    pub const REPLY_SUCCESS: u16 = 200;
    pub const CONTENT_TOO_LARGE: u16 = 311;
    pub const NO_ROUTE: u16 = 312;
    pub const NO_CONSUMERS: u16 = 313;
    pub const CONNECTION_FORCED: u16 = 320;
    pub const INVALID_PATH: u16 = 402;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const PRECONDITION_FAILED: u16 = 406;
    pub const FRAME_ERROR: u16 = 501;
    pub const SYNTAX_ERROR: u16 = 502;
    pub const COMMAND_INVALID: u16 = 503;
    pub const CHANNEL_ERROR: u16 = 504;
    pub const UNEXPECTED_FRAME: u16 = 505;
    pub const RESOURCE_ERROR: u16 = 506;
    pub const NOT_ALLOWED: u16 = 530;
    pub const NOT_IMPLEMENTED: u16 = 540;
    pub const INTERNAL_ERROR: u16 = 541;
}

/// The name a reply text starts with, as RabbitMQ writes it (`NOT_FOUND - no queue 'q'`).
pub fn name(code: u16) -> &'static str {
    match code {
        code::REPLY_SUCCESS => "OK",
        code::CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        code::NO_ROUTE => "NO_ROUTE",
        code::NO_CONSUMERS => "NO_CONSUMERS",
        code::CONNECTION_FORCED => "CONNECTION_FORCED",
        code::INVALID_PATH => "INVALID_PATH",
        code::ACCESS_REFUSED => "ACCESS_REFUSED",
        code::NOT_FOUND => "NOT_FOUND",
        code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
        code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        code::FRAME_ERROR => "FRAME_ERROR",
        code::SYNTAX_ERROR => "SYNTAX_ERROR",
        code::COMMAND_INVALID => "COMMAND_INVALID",
        code::CHANNEL_ERROR => "CHANNEL_ERROR",
        code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        code::RESOURCE_ERROR => "RESOURCE_ERROR",
        code::NOT_ALLOWED => "NOT_ALLOWED",
        code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        _ => "INTERNAL_ERROR",
    }
}

/// A channel or connection exception: the code, the text, and the method that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    /// Reply code.
    pub code: u16,
    /// Reply text (the code's name, a dash, and why).
    pub text: String,
    /// Class of the method that failed (0: none).
    pub class_id: u16,
    /// The method.
    pub method_id: u16,
}

impl AmqpError {
    /// An exception with `code` and the reason `why`.
    pub fn new(code: u16, why: impl AsRef<str>) -> AmqpError {
        let mut text = format!("{} - {}", name(code), why.as_ref());
        if text.len() > 255 {
            let mut end = 252;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        AmqpError { code, text, class_id: 0, method_id: 0 }
    }

    /// The same, naming the method that failed.
    pub fn on(mut self, ids: (u16, u16)) -> AmqpError {
        (self.class_id, self.method_id) = ids;
        self
    }

    /// True for connection exceptions (the spec's "hard errors"); the rest close the channel.
    pub fn is_hard(&self) -> bool {
        matches!(self.code, 320 | 402 | 501..=506 | 530 | 540 | 541)
    }
}

impl From<Error> for AmqpError {
    fn from(e: Error) -> Self {
        let text = e.to_string();
        let code = match e {
            Error::NotFound { .. } => code::NOT_FOUND,
            Error::AlreadyExists { .. }
            | Error::InvalidArgument(_)
            | Error::InvalidName { .. }
            | Error::InvalidReceiptHandle(_)
            | Error::LimitExceeded(_) => code::PRECONDITION_FAILED,
            Error::TooLarge { .. } => code::CONTENT_TOO_LARGE,
            _ => code::INTERNAL_ERROR,
        };
        AmqpError::new(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_split_into_channel_and_connection_exceptions() {
        for soft in [311, 312, 313, 403, 404, 405, 406] {
            assert!(!AmqpError::new(soft, "x").is_hard(), "{soft}");
        }
        for hard in [320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541] {
            assert!(AmqpError::new(hard, "x").is_hard(), "{hard}");
        }
        let e = AmqpError::new(code::NOT_FOUND, "no queue 'q' in vhost '/'").on((50, 10));
        assert_eq!(e.text, "NOT_FOUND - no queue 'q' in vhost '/'");
        assert_eq!((e.class_id, e.method_id), (50, 10));
        assert!(AmqpError::new(code::NOT_FOUND, "é".repeat(300)).text.len() <= 255);
        let mapped: AmqpError = Error::NotFound { kind: "queue", name: "q".into() }.into();
        assert_eq!(mapped.code, code::NOT_FOUND);
        let mapped: AmqpError = Error::io("write", "p", std::io::Error::other("e")).into();
        assert!(mapped.is_hard());
    }
}
