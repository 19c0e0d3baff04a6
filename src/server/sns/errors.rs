//! SNS's errors: every error the SNS service answers is an [`SnsError`], whose [`Code`] gives
//! the query protocol's error code (what SDKs match on: boto3 raises
//! `client.exceptions.NotFoundException` for `NotFound`) and the HTTP status. [`from_engine`]
//! is the one place that turns a `weir::Error` into one.

use crate::server::auth::{AuthError, AuthErrorKind};
use crate::server::wire::ParamError;
use crate::Error;

/// An SNS error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A parameter that is missing, malformed or out of range (`InvalidParameterException`).
    InvalidParameter,
    /// A parameter value SNS refuses, such as a message attribute (`InvalidParameterValueException`).
    InvalidParameterValue,
    /// The topic or subscription does not exist (`NotFoundException`).
    NotFound,
    /// The resource to tag does not exist (`ResourceNotFoundException`).
    ResourceNotFound,
    /// Not allowed (`AuthorizationErrorException`): a resource of another account or region.
    AuthorizationError,
    /// More than 50 tags (`TagLimitExceededException`).
    TagLimitExceeded,
    /// Two entries of a batch with the same id.
    BatchEntryIdsNotDistinct,
    /// A batch whose messages together are over 256 KiB.
    BatchRequestTooLong,
    /// A batch without entries.
    EmptyBatchRequest,
    /// A batch entry id that is not 1-80 characters of `[A-Za-z0-9_-]`.
    InvalidBatchEntryId,
    /// More than ten entries in a batch.
    TooManyEntriesInBatchRequest,
    /// A request without a signature, under `--auth`.
    MissingAuthenticationToken,
    /// An access key id the credentials file does not have.
    InvalidClientTokenId,
    /// A signature that does not match.
    SignatureDoesNotMatch,
    /// A signature that does not follow the form.
    IncompleteSignature,
    /// A time outside the signing window, or an expired presigned request.
    RequestExpired,
    /// An `Action` SNS does not have, or this endpoint does not serve.
    InvalidAction,
    /// A query request without `Action`.
    MissingAction,
    /// A form that does not parse.
    MalformedQueryString,
    /// A request body over the server's limit.
    RequestTooLarge,
    /// The engine refused (closing).
    ServiceUnavailable,
    /// Damage, I/O errors, anything the caller cannot fix (`InternalErrorException`).
    InternalError,
}

impl Code {
    /// `(code, HTTP status)`.
    fn parts(self) -> (&'static str, u16) {
        use Code::*;
        match self {
            InvalidParameter => ("InvalidParameter", 400),
            InvalidParameterValue => ("ParameterValueInvalid", 400),
            NotFound => ("NotFound", 404),
            ResourceNotFound => ("ResourceNotFound", 404),
            AuthorizationError => ("AuthorizationError", 403),
            TagLimitExceeded => ("TagLimitExceeded", 400),
            BatchEntryIdsNotDistinct => ("BatchEntryIdsNotDistinct", 400),
            BatchRequestTooLong => ("BatchRequestTooLong", 400),
            EmptyBatchRequest => ("EmptyBatchRequest", 400),
            InvalidBatchEntryId => ("InvalidBatchEntryId", 400),
            TooManyEntriesInBatchRequest => ("TooManyEntriesInBatchRequest", 400),
            MissingAuthenticationToken => ("MissingAuthenticationToken", 403),
            InvalidClientTokenId => ("InvalidClientTokenId", 403),
            SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
            IncompleteSignature => ("IncompleteSignature", 400),
            RequestExpired => ("RequestExpired", 400),
            InvalidAction => ("InvalidAction", 400),
            MissingAction => ("MissingAction", 400),
            MalformedQueryString => ("MalformedQueryString", 400),
            RequestTooLarge => ("InvalidParameter", 413),
            ServiceUnavailable => ("ServiceUnavailable", 503),
            InternalError => ("InternalError", 500),
        }
    }

    /// The query protocol's error code.
    pub fn code(self) -> &'static str {
        self.parts().0
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        self.parts().1
    }

    /// True when the caller is at fault (`Sender`), false for the server (`Receiver`).
    pub fn sender_fault(self) -> bool {
        self.status() < 500
    }
}

/// An error as SNS answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsError {
    /// Its code.
    pub code: Code,
    /// What happened, for people.
    pub message: String,
}

impl SnsError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        SnsError { code, message: message.into() }
    }

    /// SNS's wording for a bad parameter: `Invalid parameter: NAME` and why.
    pub fn invalid(name: &str, reason: impl AsRef<str>) -> Self {
        let reason = reason.as_ref();
        if reason.is_empty() {
            SnsError::new(Code::InvalidParameter, format!("Invalid parameter: {name}"))
        } else {
            SnsError::new(Code::InvalidParameter, format!("Invalid parameter: {name} Reason: {reason}"))
        }
    }

    /// The topic does not exist.
    pub fn no_topic() -> Self {
        SnsError::new(Code::NotFound, "Topic does not exist")
    }

    /// The subscription does not exist.
    pub fn no_subscription() -> Self {
        SnsError::new(Code::NotFound, "Subscription does not exist")
    }
}

impl From<ParamError> for SnsError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(name) => SnsError::invalid(name.as_str(), "the request must contain it"),
            ParamError::Invalid { name, reason } => SnsError::invalid(name.as_str(), reason),
        }
    }
}

/// Shortens a value echoed in a message (a hostile 1 MB value must not come back whole).
pub fn shorten(value: &str) -> String {
    if value.chars().count() > 100 {
        let mut s: String = value.chars().take(97).collect();
        s.push_str("...");
        s
    } else {
        value.to_string()
    }
}

impl From<&AuthError> for SnsError {
    /// SNS's answer to a refused request: the one mapping of [`AuthErrorKind`] for SNS
    /// (whose word for "denied" is `AuthorizationError`).
    fn from(e: &AuthError) -> Self {
        let code = match e.kind {
            AuthErrorKind::MissingAuthenticationToken => Code::MissingAuthenticationToken,
            AuthErrorKind::InvalidClientTokenId => Code::InvalidClientTokenId,
            AuthErrorKind::SignatureDoesNotMatch => Code::SignatureDoesNotMatch,
            AuthErrorKind::IncompleteSignature => Code::IncompleteSignature,
            AuthErrorKind::RequestExpired => Code::RequestExpired,
            AuthErrorKind::AccessDenied => Code::AuthorizationError,
        };
        SnsError::new(code, e.message.clone())
    }
}

/// The SNS error for an engine error: the one mapping of `weir::Error` for this service.
pub fn from_engine(error: &Error) -> SnsError {
    match error {
        Error::NotFound { kind: "topic", .. } => SnsError::no_topic(),
        Error::NotFound { kind: "subscription" | "HTTP subscription", .. } => SnsError::no_subscription(),
        Error::NotFound { kind: "confirmation token", .. } => SnsError::invalid("Token", ""),
        Error::NotFound { kind, name } => {
            SnsError::invalid("Endpoint", format!("the {kind} {} does not exist", shorten(name)))
        }
        Error::AlreadyExists { kind: "topic", .. } => {
            SnsError::invalid("Attributes", "Topic already exists with different attributes")
        }
        Error::AlreadyExists { kind: "subscription", .. } => {
            SnsError::invalid("Attributes", "Subscription already exists with different attributes")
        }
        Error::AlreadyExists { kind, name } => {
            SnsError::invalid("Name", format!("the {kind} {} exists already", shorten(name)))
        }
        Error::InvalidName { kind, reason, .. } => SnsError::invalid(
            if *kind == "topic" { "Topic Name" } else { "Endpoint" },
            format!("{reason} (1 to 80 characters of A-Z a-z 0-9 _ -, and .fifo for a FIFO topic)"),
        ),
        Error::InvalidArgument(reason) => SnsError::new(Code::InvalidParameter, format!("Invalid parameter: {reason}")),
        Error::TooLarge { size, limit, .. } => SnsError::invalid(
            "Message too long",
            format!("the message and its attributes are {size} bytes, over the limit of {limit}"),
        ),
        Error::LimitExceeded(reason) => {
            SnsError::new(Code::TagLimitExceeded, format!("Could not complete request: {reason}"))
        }
        Error::Closed(what) => SnsError::new(Code::ServiceUnavailable, format!("{what} is closed; try again.")),
        Error::InUse(reason) => SnsError::new(Code::ServiceUnavailable, format!("{reason}; try again.")),
        Error::InvalidReceiptHandle(_)
        | Error::MessageNotInflight(_)
        | Error::WrongKey { .. }
        | Error::KeyRequired { .. }
        | Error::ThroughputExceeded(_)
        | Error::PurgeInProgress { .. }
        | Error::ShardClosed { .. }
        | Error::Corrupt { .. }
        | Error::Io { .. }
        | Error::Poisoned { .. }
        | Error::Locked { .. } => {
            SnsError::new(Code::InternalError, format!("The server could not complete the request: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_what_sdks_match_on() {
        assert_eq!((Code::NotFound.code(), Code::NotFound.status()), ("NotFound", 404));
        assert_eq!(
            (Code::InvalidParameterValue.code(), Code::InvalidParameterValue.status()),
            ("ParameterValueInvalid", 400)
        );
        assert_eq!(Code::AuthorizationError.status(), 403);
        assert!(!Code::InternalError.sender_fault());
    }

    #[test]
    fn engine_errors_map_to_sns_codes() {
        assert_eq!(from_engine(&Error::NotFound { kind: "topic", name: "t".into() }).code, Code::NotFound);
        assert_eq!(from_engine(&Error::NotFound { kind: "subscription", name: "s".into() }).code, Code::NotFound);
        let token = from_engine(&Error::NotFound { kind: "confirmation token", name: "x".into() });
        assert_eq!((token.code, token.message.as_str()), (Code::InvalidParameter, "Invalid parameter: Token"));
        let exists = from_engine(&Error::AlreadyExists { kind: "topic", name: "t".into() });
        assert_eq!(
            exists.message,
            "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
        );
        assert_eq!(from_engine(&Error::LimitExceeded("51 tags".into())).code, Code::TagLimitExceeded);
        let io = Error::io("write", "/x", std::io::Error::other("disk"));
        assert_eq!(from_engine(&io).code, Code::InternalError);
        let long = Error::NotFound { kind: "queue", name: "x".repeat(10_000) };
        assert!(from_engine(&long).message.len() < 300);
    }
}
