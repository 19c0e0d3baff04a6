//! How each service names the refusals of [`super::AuthErrorKind`]: one table per wire
//! family, so a service maps them once, not per request. SQS's are in `sqs/errors.rs` (its
//! `Code`s, since its JSON answers carry the legacy query code too); the JSON 1.1 services
//! (Kinesis, Firehose) and SNS (query) use the tables here.
// Read by the services that land after SQS (Kinesis, Firehose, SNS); tested here until then.
#![cfg_attr(not(test), allow(dead_code))]

use super::AuthErrorKind;

/// `(shape, HTTP status)` of a refusal in an AWS JSON 1.1 service (Kinesis, Firehose): the
/// `__type` these services answer, as their SDKs match on it.
pub fn json11(kind: AuthErrorKind) -> (&'static str, u16) {
    match kind {
        AuthErrorKind::MissingAuthenticationToken => ("MissingAuthenticationTokenException", 403),
        AuthErrorKind::InvalidClientTokenId => ("UnrecognizedClientException", 403),
        AuthErrorKind::SignatureDoesNotMatch => ("InvalidSignatureException", 403),
        AuthErrorKind::IncompleteSignature => ("IncompleteSignatureException", 403),
        // "Signature expired: ..." comes as InvalidSignatureException from these services.
        AuthErrorKind::RequestExpired => ("InvalidSignatureException", 403),
        AuthErrorKind::AccessDenied => ("AccessDeniedException", 400),
    }
}

/// `(code, HTTP status)` of a refusal in SNS's query protocol (`<ErrorResponse><Error><Code>`).
pub fn sns(kind: AuthErrorKind) -> (&'static str, u16) {
    match kind {
        AuthErrorKind::MissingAuthenticationToken => ("MissingAuthenticationToken", 403),
        AuthErrorKind::InvalidClientTokenId => ("InvalidClientTokenId", 403),
        AuthErrorKind::SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
        AuthErrorKind::IncompleteSignature => ("IncompleteSignature", 403),
        AuthErrorKind::RequestExpired => ("RequestExpired", 403),
        AuthErrorKind::AccessDenied => ("AuthorizationError", 403),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_shape_in_every_family() {
        use AuthErrorKind::*;
        for kind in [
            MissingAuthenticationToken,
            InvalidClientTokenId,
            SignatureDoesNotMatch,
            IncompleteSignature,
            RequestExpired,
            AccessDenied,
        ] {
            let (shape, status) = json11(kind);
            assert!(shape.ends_with("Exception") && (400..500).contains(&status));
            let (code, status) = sns(kind);
            assert!(!code.is_empty() && status == 403);
        }
        assert_eq!(sns(AccessDenied).0, "AuthorizationError");
        assert_eq!(json11(InvalidClientTokenId).0, "UnrecognizedClientException");
    }
}
