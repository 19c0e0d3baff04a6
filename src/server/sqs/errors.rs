//! SQS's errors: every error the SQS service answers is a [`SqsError`], whose [`Code`] gives
//! the JSON protocol's `__type` shape, the legacy query-protocol code (sent in JSON answers as
//! `x-amzn-query-error: CODE;Sender`, which SDKs read as the error code) and the HTTP status.
//! [`from_engine`] is the one place that turns a `weir::Error` into one.

use crate::server::auth::{AuthError, AuthErrorKind};
use crate::server::wire::ParamError;
use crate::Error;

/// An SQS error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The queue does not exist (or the URL names another account).
    QueueDoesNotExist,
    /// A queue of that name exists with different attributes.
    QueueNameExists,
    /// An attribute name SQS does not know, or one that cannot be set.
    InvalidAttributeName,
    /// An attribute value out of range or malformed.
    InvalidAttributeValue,
    /// A parameter with a value out of range or malformed.
    InvalidParameterValue,
    /// A required parameter is missing.
    MissingParameter,
    /// A queue URL that cannot be read.
    InvalidAddress,
    /// A receipt handle that is malformed, forged, stale or of another queue.
    ReceiptHandleIsInvalid,
    /// A visibility change for a message that is not in flight.
    MessageNotInflight,
    /// A body with characters SQS does not allow.
    InvalidMessageContents,
    /// Two entries of a batch with the same id.
    BatchEntryIdsNotDistinct,
    /// A batch without entries.
    EmptyBatchRequest,
    /// More than ten entries in a batch.
    TooManyEntriesInBatchRequest,
    /// A batch whose messages together are too large.
    BatchRequestTooLong,
    /// A batch entry id that is not 1-80 characters of `[A-Za-z0-9_-]`.
    InvalidBatchEntryId,
    /// One purge per queue per 60 seconds.
    PurgeQueueInProgress,
    /// A limit on the number of something (in-flight messages, permissions).
    OverLimit,
    /// A feature this endpoint does not offer.
    UnsupportedOperation,
    /// A message move task or its source that does not exist.
    ResourceNotFoundException,
    /// A request without a signature, to a server with `--auth`.
    MissingAuthenticationToken,
    /// An access key id the credentials file does not have.
    InvalidClientTokenId,
    /// A signature that does not match the request.
    SignatureDoesNotMatch,
    /// A signature that does not follow SigV4's form.
    IncompleteSignature,
    /// A request time outside the 15-minute window, or an expired presigned URL.
    RequestExpired,
    /// No policy allows the action, or one denies it.
    AccessDenied,
    /// An operation name no service knows (JSON protocol).
    UnknownOperation,
    /// An `Action` no service knows (query protocol).
    InvalidAction,
    /// A query request without `Action`.
    MissingAction,
    /// A JSON body that does not parse, or is not an object.
    SerializationException,
    /// A form body that does not parse.
    MalformedQueryString,
    /// A request body over the server's limit.
    RequestTooLarge,
    /// The server is stopping or the engine refused (closed).
    ServiceUnavailable,
    /// Damage, I/O errors, anything the caller cannot fix.
    InternalFailure,
}

/// Where a code's `__type` shape lives.
const SQS_NAMESPACE: &str = "com.amazonaws.sqs#";
const CORAL_NAMESPACE: &str = "com.amazon.coral.service#";

impl Code {
    /// `(namespace, shape, legacy query code, HTTP status)`.
    fn parts(self) -> (&'static str, &'static str, &'static str, u16) {
        use Code::*;
        match self {
            QueueDoesNotExist => (SQS_NAMESPACE, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
            QueueNameExists => (SQS_NAMESPACE, "QueueNameExists", "QueueAlreadyExists", 400),
            InvalidAttributeName => (SQS_NAMESPACE, "InvalidAttributeName", "InvalidAttributeName", 400),
            InvalidAttributeValue => (SQS_NAMESPACE, "InvalidAttributeValue", "InvalidAttributeValue", 400),
            InvalidParameterValue => (SQS_NAMESPACE, "InvalidParameterValue", "InvalidParameterValue", 400),
            MissingParameter => (SQS_NAMESPACE, "MissingParameter", "MissingParameter", 400),
            InvalidAddress => (SQS_NAMESPACE, "InvalidAddress", "InvalidAddress", 404),
            ReceiptHandleIsInvalid => (SQS_NAMESPACE, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404),
            MessageNotInflight => {
                (SQS_NAMESPACE, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400)
            }
            InvalidMessageContents => (SQS_NAMESPACE, "InvalidMessageContents", "InvalidMessageContents", 400),
            BatchEntryIdsNotDistinct => {
                (SQS_NAMESPACE, "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400)
            }
            EmptyBatchRequest => (SQS_NAMESPACE, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400),
            TooManyEntriesInBatchRequest => (
                SQS_NAMESPACE,
                "TooManyEntriesInBatchRequest",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                400,
            ),
            BatchRequestTooLong => {
                (SQS_NAMESPACE, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400)
            }
            InvalidBatchEntryId => {
                (SQS_NAMESPACE, "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400)
            }
            PurgeQueueInProgress => {
                (SQS_NAMESPACE, "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403)
            }
            OverLimit => (SQS_NAMESPACE, "OverLimit", "OverLimit", 403),
            UnsupportedOperation => {
                (SQS_NAMESPACE, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400)
            }
            ResourceNotFoundException => (SQS_NAMESPACE, "ResourceNotFoundException", "ResourceNotFoundException", 404),
            MissingAuthenticationToken => {
                (CORAL_NAMESPACE, "MissingAuthenticationToken", "MissingAuthenticationToken", 403)
            }
            InvalidClientTokenId => (CORAL_NAMESPACE, "InvalidClientTokenId", "InvalidClientTokenId", 403),
            SignatureDoesNotMatch => (CORAL_NAMESPACE, "SignatureDoesNotMatch", "SignatureDoesNotMatch", 403),
            IncompleteSignature => (CORAL_NAMESPACE, "IncompleteSignature", "IncompleteSignature", 403),
            RequestExpired => (CORAL_NAMESPACE, "RequestExpired", "RequestExpired", 403),
            AccessDenied => (CORAL_NAMESPACE, "AccessDeniedException", "AccessDenied", 403),
            UnknownOperation => (CORAL_NAMESPACE, "UnknownOperationException", "InvalidAction", 400),
            InvalidAction => (SQS_NAMESPACE, "InvalidAction", "InvalidAction", 400),
            MissingAction => (SQS_NAMESPACE, "MissingAction", "MissingAction", 400),
            SerializationException => (CORAL_NAMESPACE, "SerializationException", "MalformedQueryString", 400),
            MalformedQueryString => (SQS_NAMESPACE, "MalformedQueryString", "MalformedQueryString", 400),
            RequestTooLarge => (SQS_NAMESPACE, "InvalidParameterValue", "InvalidParameterValue", 413),
            ServiceUnavailable => (SQS_NAMESPACE, "ServiceUnavailable", "ServiceUnavailable", 503),
            InternalFailure => (SQS_NAMESPACE, "InternalFailure", "InternalFailure", 500),
        }
    }

    /// The JSON protocol's `__type`, e.g. `com.amazonaws.sqs#QueueDoesNotExist`.
    pub fn json_type(self) -> String {
        let (namespace, shape, _, _) = self.parts();
        format!("{namespace}{shape}")
    }

    /// The shape name alone (batch result entries carry the legacy code instead).
    pub fn shape(self) -> &'static str {
        self.parts().1
    }

    /// The query protocol's code, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
    pub fn legacy_code(self) -> &'static str {
        self.parts().2
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        self.parts().3
    }

    /// True when the caller is at fault (`Sender`), false for the server (`Receiver`).
    pub fn sender_fault(self) -> bool {
        self.status() < 500
    }
}

/// An error as SQS answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsError {
    /// Its code.
    pub code: Code,
    /// What happened, for people.
    pub message: String,
}

impl SqsError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        SqsError { code, message: message.into() }
    }

    /// SQS's wording for a bad parameter value.
    pub fn invalid_parameter(name: &str, value: &str, reason: &str) -> Self {
        SqsError::new(
            Code::InvalidParameterValue,
            format!("Value {} for parameter {name} is invalid. Reason: {reason}", shorten(value)),
        )
    }

    /// SQS's wording for a bad attribute value.
    pub fn invalid_attribute(name: &str, reason: &str) -> Self {
        SqsError::new(Code::InvalidAttributeValue, format!("Invalid value for the parameter {name}. Reason: {reason}"))
    }

    /// The queue does not exist.
    pub fn no_queue() -> Self {
        SqsError::new(Code::QueueDoesNotExist, "The specified queue does not exist.")
    }
}

impl From<ParamError> for SqsError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(name) => {
                SqsError::new(Code::MissingParameter, format!("The request must contain the parameter {name}."))
            }
            ParamError::Invalid { name, reason } => SqsError::new(
                Code::InvalidParameterValue,
                format!("Value for parameter {name} is invalid. Reason: {reason}."),
            ),
        }
    }
}

impl From<&AuthError> for SqsError {
    /// SQS's answer to a refused request: the one mapping of [`AuthErrorKind`] for SQS.
    fn from(e: &AuthError) -> Self {
        let code = match e.kind {
            AuthErrorKind::MissingAuthenticationToken => Code::MissingAuthenticationToken,
            AuthErrorKind::InvalidClientTokenId => Code::InvalidClientTokenId,
            AuthErrorKind::SignatureDoesNotMatch => Code::SignatureDoesNotMatch,
            AuthErrorKind::IncompleteSignature => Code::IncompleteSignature,
            AuthErrorKind::RequestExpired => Code::RequestExpired,
            AuthErrorKind::AccessDenied => Code::AccessDenied,
        };
        SqsError::new(code, e.message.clone())
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

/// The SQS error for an engine error: the one mapping of `weir::Error` for this service.
pub fn from_engine(error: &Error) -> SqsError {
    match error {
        Error::NotFound { kind: "queue", .. } => SqsError::no_queue(),
        Error::NotFound { kind: "dead-letter queue", name } => SqsError::new(
            Code::InvalidParameterValue,
            format!("Value for parameter RedrivePolicy is invalid. Reason: Dead letter target {} does not exist.", shorten(name)),
        ),
        Error::NotFound { kind, name } => {
            SqsError::new(Code::ResourceNotFoundException, format!("The {kind} {} does not exist.", shorten(name)))
        }
        Error::AlreadyExists { kind: "queue", .. } => SqsError::new(
            Code::QueueNameExists,
            "A queue already exists with the same name and a different value for an attribute.",
        ),
        // A second move task of one source while the first runs.
        Error::AlreadyExists { kind, name } => SqsError::new(
            Code::UnsupportedOperation,
            format!("A {kind} {} is already running; only one is allowed at a time.", shorten(name)),
        ),
        Error::InvalidName { reason, .. } => SqsError::new(
            Code::InvalidParameterValue,
            format!("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length ({reason})."),
        ),
        Error::InvalidArgument(reason) => {
            SqsError::new(Code::InvalidParameterValue, format!("One or more parameters are invalid. Reason: {reason}."))
        }
        Error::TooLarge { size, limit, .. } => SqsError::new(
            Code::InvalidParameterValue,
            format!("One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes (it is {size})."),
        ),
        Error::InvalidReceiptHandle(reason) => {
            SqsError::new(Code::ReceiptHandleIsInvalid, format!("The input receipt handle is invalid: {reason}."))
        }
        Error::MessageNotInflight(_) => SqsError::new(Code::MessageNotInflight, "The message referred to isn't in flight."),
        Error::ThroughputExceeded(reason) => SqsError::new(Code::OverLimit, reason.clone()),
        Error::LimitExceeded(reason) => SqsError::new(Code::OverLimit, format!("{reason}.")),
        Error::InUse(reason) => SqsError::new(Code::ServiceUnavailable, format!("{reason}; try again.")),
        Error::PurgeInProgress { queue, .. } => SqsError::new(
            Code::PurgeQueueInProgress,
            format!("Only one PurgeQueue operation on {} is allowed every 60 seconds.", shorten(queue)),
        ),
        Error::Closed(what) => SqsError::new(Code::ServiceUnavailable, format!("{what} is closed; try again.")),
        Error::ShardClosed { .. }
        | Error::Corrupt { .. }
        | Error::Io { .. }
        | Error::Poisoned { .. }
        | Error::WrongKey { .. }
        | Error::KeyRequired { .. }
        | Error::Locked { .. } => SqsError::new(Code::InternalFailure, format!("The server could not complete the request: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_the_shapes_and_legacy_codes_sdks_match_on() {
        assert_eq!(Code::QueueDoesNotExist.json_type(), "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(Code::QueueDoesNotExist.legacy_code(), "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(Code::QueueNameExists.legacy_code(), "QueueAlreadyExists");
        assert_eq!(Code::PurgeQueueInProgress.status(), 403);
        assert_eq!(Code::OverLimit.status(), 403);
        assert_eq!(Code::ReceiptHandleIsInvalid.legacy_code(), "ReceiptHandleIsInvalid");
        assert_eq!(Code::InternalFailure.status(), 500);
        assert!(!Code::InternalFailure.sender_fault());
        for code in [
            Code::BatchEntryIdsNotDistinct,
            Code::EmptyBatchRequest,
            Code::TooManyEntriesInBatchRequest,
            Code::BatchRequestTooLong,
            Code::InvalidBatchEntryId,
            Code::MessageNotInflight,
            Code::UnsupportedOperation,
        ] {
            assert_eq!(code.legacy_code(), format!("AWS.SimpleQueueService.{}", code.shape()));
        }
    }

    #[test]
    fn engine_errors_map_to_sqs_codes() {
        let not_found = Error::NotFound { kind: "queue", name: "q".into() };
        assert_eq!(from_engine(&not_found).code, Code::QueueDoesNotExist);
        let exists = Error::AlreadyExists { kind: "queue", name: "q".into() };
        assert_eq!(from_engine(&exists).code, Code::QueueNameExists);
        let handle = Error::InvalidReceiptHandle("forged".into());
        assert_eq!(from_engine(&handle).code, Code::ReceiptHandleIsInvalid);
        let io = Error::io("write", "/x", std::io::Error::other("disk"));
        assert_eq!(from_engine(&io).code, Code::InternalFailure);
        let inflight = Error::MessageNotInflight("ran out".into());
        assert_eq!(from_engine(&inflight).code, Code::MessageNotInflight);
        let purge = Error::PurgeInProgress { queue: "q".into(), retry_after_ms: 10 };
        assert_eq!(from_engine(&purge).code, Code::PurgeQueueInProgress);
        let limit = Error::LimitExceeded("a queue policy has at most 20 statements".into());
        assert_eq!(from_engine(&limit).code, Code::OverLimit);
        let task = Error::NotFound { kind: "message move task", name: "h".into() };
        assert_eq!(from_engine(&task).code, Code::ResourceNotFoundException);
        let running = Error::AlreadyExists { kind: "running message move task of queue", name: "d".into() };
        assert_eq!(from_engine(&running).code, Code::UnsupportedOperation);
        let long = Error::NotFound { kind: "dead-letter queue", name: "x".repeat(10_000) };
        assert!(from_engine(&long).message.len() < 300);
    }
}
