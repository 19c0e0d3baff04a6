//! Firehose's errors: every error the Firehose service answers is a [`FirehoseError`], whose
//! [`Code`] gives the `__type` shape and the HTTP status. [`from_engine`] is the one place that
//! turns a `weir::Error` into one.

use crate::server::wire::ParamError;
use crate::Error;

/// A Firehose error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The delivery stream does not exist.
    ResourceNotFound,
    /// A delivery stream of that name exists.
    ResourceInUse,
    /// A parameter missing, out of range or malformed (AWS answers some of these as
    /// `ValidationException`; see `docs/compatibility.md`).
    InvalidArgument,
    /// Too many of something (tags).
    LimitExceeded,
    /// The engine cannot take the request now (closing, a log refusing writes).
    ServiceUnavailable,
    /// An operation name Firehose does not have.
    UnknownOperation,
    /// A body that is not a JSON object, or a blob that is not base64.
    Serialization,
    /// An identity policy (or another account's key) refuses the request.
    AccessDenied,
    /// Damage, I/O errors, anything the caller cannot fix.
    InternalFailure,
}

const CORAL_NAMESPACE: &str = "com.amazon.coral.service#";

impl Code {
    /// `(namespace, shape, HTTP status)`.
    fn parts(self) -> (&'static str, &'static str, u16) {
        match self {
            Code::ResourceNotFound => ("", "ResourceNotFoundException", 400),
            Code::ResourceInUse => ("", "ResourceInUseException", 400),
            Code::InvalidArgument => ("", "InvalidArgumentException", 400),
            Code::LimitExceeded => ("", "LimitExceededException", 400),
            Code::ServiceUnavailable => ("", "ServiceUnavailableException", 503),
            Code::UnknownOperation => (CORAL_NAMESPACE, "UnknownOperationException", 400),
            Code::Serialization => (CORAL_NAMESPACE, "SerializationException", 400),
            Code::AccessDenied => ("", "AccessDeniedException", 400),
            Code::InternalFailure => (CORAL_NAMESPACE, "InternalFailure", 500),
        }
    }

    /// The shape name (`ResourceNotFoundException`).
    pub fn shape(self) -> &'static str {
        self.parts().1
    }

    /// The `__type` of a JSON answer.
    pub fn json_type(self) -> String {
        let (namespace, shape, _) = self.parts();
        format!("{namespace}{shape}")
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        self.parts().2
    }
}

/// An error as Firehose answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseError {
    /// Its code.
    pub code: Code,
    /// Its message.
    pub message: String,
}

impl FirehoseError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        FirehoseError { code, message: message.into() }
    }

    /// `InvalidArgumentException` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        FirehoseError::new(Code::InvalidArgument, message)
    }
}

impl From<ParamError> for FirehoseError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(name) => FirehoseError::invalid(format!("The parameter {name} is required.")),
            ParamError::Invalid { name, reason } => FirehoseError::invalid(format!("{name} {reason}.")),
        }
    }
}

/// The one mapping from the engine's errors to Firehose's.
pub fn from_engine(e: &Error) -> FirehoseError {
    let message = e.to_string();
    let code = match e {
        Error::NotFound { .. } => Code::ResourceNotFound,
        Error::AlreadyExists { .. } => Code::ResourceInUse,
        Error::InvalidName { .. } | Error::InvalidArgument(_) | Error::TooLarge { .. } => Code::InvalidArgument,
        Error::LimitExceeded(_) => Code::LimitExceeded,
        // A handle to a deleted delivery stream, or the engine closing.
        Error::Closed(_) | Error::Poisoned { .. } | Error::ThroughputExceeded(_) | Error::Locked { .. } => {
            Code::ServiceUnavailable
        }
        _ => Code::InternalFailure,
    };
    FirehoseError { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_firehose_codes() {
        let cases = [
            (Error::NotFound { kind: "delivery stream", name: "x".into() }, "ResourceNotFoundException", 400),
            (Error::AlreadyExists { kind: "delivery stream", name: "x".into() }, "ResourceInUseException", 400),
            (Error::InvalidArgument("bad".into()), "InvalidArgumentException", 400),
            (Error::LimitExceeded("tags".into()), "LimitExceededException", 400),
            (Error::Closed("engine".into()), "ServiceUnavailableException", 503),
            (Error::corrupt("/x", 1, "bad"), "InternalFailure", 500),
        ];
        for (e, shape, status) in cases {
            let f = from_engine(&e);
            assert_eq!((f.code.shape(), f.code.status()), (shape, status), "{e}");
        }
        assert_eq!(Code::Serialization.json_type(), "com.amazon.coral.service#SerializationException");
        assert_eq!(Code::ResourceNotFound.json_type(), "ResourceNotFoundException");
    }
}
