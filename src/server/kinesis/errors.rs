//! Kinesis's errors: the shape names SDKs match on (`__type`), their HTTP statuses, and the
//! one mapping from `weir::Error` ([`from_engine`]).

use crate::error::Error;
use crate::server::sqs::errors::shorten;
use crate::server::wire::ParamError;

/// Every error this service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A stream, shard or consumer that does not exist.
    ResourceNotFoundException,
    /// A name taken, a consumer not ready, a subscription held by another.
    ResourceInUseException,
    /// A parameter out of range or inconsistent.
    InvalidArgumentException,
    /// A parameter that fails the API's constraints (missing, too long, wrong pattern).
    ValidationException,
    /// A shard iterator older than its lifetime.
    ExpiredIteratorException,
    /// A `NextToken` older than its lifetime.
    ExpiredNextTokenException,
    /// A shard's throughput limit.
    ProvisionedThroughputExceededException,
    /// Too many of something (consumers, tags).
    LimitExceededException,
    /// The body is not JSON (or CBOR) of the right shape.
    SerializationException,
    /// The target names no Kinesis operation.
    UnknownOperationException,
    /// An access policy refuses the request (`access::check`; authentication refusals come
    /// through `auth::errors::json11`).
    AccessDeniedException,
    /// The request body is over the server's limit.
    RequestTooLarge,
    /// Damage or I/O errors on the server's side.
    InternalFailure,
}

impl Code {
    /// The shape name (`__type`).
    pub fn shape(self) -> &'static str {
        match self {
            Code::ResourceNotFoundException => "ResourceNotFoundException",
            Code::ResourceInUseException => "ResourceInUseException",
            Code::InvalidArgumentException => "InvalidArgumentException",
            Code::ValidationException => "ValidationException",
            Code::ExpiredIteratorException => "ExpiredIteratorException",
            Code::ExpiredNextTokenException => "ExpiredNextTokenException",
            Code::ProvisionedThroughputExceededException => "ProvisionedThroughputExceededException",
            Code::LimitExceededException => "LimitExceededException",
            Code::SerializationException => "SerializationException",
            Code::UnknownOperationException => "UnknownOperationException",
            Code::AccessDeniedException => "AccessDeniedException",
            Code::RequestTooLarge => "ValidationException",
            Code::InternalFailure => "InternalFailure",
        }
    }

    /// The HTTP status: Kinesis answers 400 for every client error.
    pub fn status(self) -> u16 {
        match self {
            Code::RequestTooLarge => 413,
            Code::InternalFailure => 500,
            _ => 400,
        }
    }
}

/// A Kinesis error: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisError {
    /// Which error.
    pub code: Code,
    /// What went wrong, for people.
    pub message: String,
}

impl KinesisError {
    /// An error with a message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        KinesisError { code, message: message.into() }
    }

    /// `InvalidArgumentException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        KinesisError::new(Code::InvalidArgumentException, message)
    }

    /// `ResourceNotFoundException` for stream `name` of account `account`.
    pub fn no_stream(name: &str, account: &str) -> Self {
        KinesisError::new(
            Code::ResourceNotFoundException,
            format!("Stream {} under account {account} not found.", shorten(name)),
        )
    }
}

impl From<ParamError> for KinesisError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(name) => KinesisError::new(
                Code::ValidationException,
                format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
            ),
            ParamError::Invalid { name, reason } => KinesisError::new(
                Code::ValidationException,
                format!("1 validation error detected: Value at '{name}' failed to satisfy constraint: {reason}"),
            ),
        }
    }
}

/// The Kinesis error for an engine error: the one mapping of `weir::Error` for this service.
pub fn from_engine(error: &Error) -> KinesisError {
    match error {
        Error::NotFound { kind, name } => KinesisError::new(
            Code::ResourceNotFoundException,
            format!("{} {} not found.", capitalized(kind), shorten(name)),
        ),
        Error::AlreadyExists { kind, name } => KinesisError::new(
            Code::ResourceInUseException,
            format!("{} {} already exists.", capitalized(kind), shorten(name)),
        ),
        Error::InvalidName { kind, name, reason } => KinesisError::new(
            Code::ValidationException,
            format!(
                "1 validation error detected: Value '{}' at '{kind}Name' failed to satisfy constraint: {reason}",
                shorten(name)
            ),
        ),
        Error::InvalidArgument(reason) => KinesisError::invalid(capitalize_first(reason)),
        Error::TooLarge { what, size, limit } => KinesisError::new(
            Code::ValidationException,
            format!("The {what} is {size} bytes, over the limit of {limit} bytes."),
        ),
        Error::ThroughputExceeded(reason) => {
            KinesisError::new(Code::ProvisionedThroughputExceededException, format!("Rate exceeded: {reason}."))
        }
        Error::LimitExceeded(reason) => KinesisError::new(Code::LimitExceededException, capitalize_first(reason)),
        Error::InUse(reason) => KinesisError::new(Code::ResourceInUseException, capitalize_first(reason)),
        Error::ShardClosed { stream, shard } => KinesisError::new(
            Code::ResourceInUseException,
            format!(
                "Shard {} in stream {} has already been merged or split.",
                super::names::shard_id(*shard),
                shorten(stream)
            ),
        ),
        // A handle of a stream deleted while the request ran.
        Error::Closed(what) => KinesisError::new(Code::ResourceNotFoundException, format!("{what} is gone.")),
        Error::InvalidReceiptHandle(_)
        | Error::MessageNotInflight(_)
        | Error::WrongKey { .. }
        | Error::KeyRequired { .. }
        | Error::PurgeInProgress { .. }
        | Error::Corrupt { .. }
        | Error::Io { .. }
        | Error::Poisoned { .. }
        | Error::Locked { .. } => {
            KinesisError::new(Code::InternalFailure, format!("The server could not complete the request: {error}"))
        }
    }
}

fn capitalized(kind: &str) -> String {
    capitalize_first(kind)
}

fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_kinesis_shapes_and_statuses() {
        let cases = [
            (Error::NotFound { kind: "stream", name: "s".into() }, "ResourceNotFoundException", 400),
            (Error::AlreadyExists { kind: "stream", name: "s".into() }, "ResourceInUseException", 400),
            (Error::InvalidArgument("x".into()), "InvalidArgumentException", 400),
            (Error::ThroughputExceeded("x".into()), "ProvisionedThroughputExceededException", 400),
            (Error::LimitExceeded("x".into()), "LimitExceededException", 400),
            (Error::InUse("x".into()), "ResourceInUseException", 400),
            (Error::io("write", "/x", std::io::Error::other("disk")), "InternalFailure", 500),
        ];
        for (error, shape, status) in cases {
            let e = from_engine(&error);
            assert_eq!((e.code.shape(), e.code.status()), (shape, status), "{error}");
        }
        let long = Error::NotFound { kind: "stream", name: "x".repeat(10_000) };
        assert!(from_engine(&long).message.len() < 300);
    }
}
