//! The authentication step of the request path. Every request passes through
//! [`authenticate`] after it is read and routed and before its service runs it, so that
//! verifying AWS Signature Version 4 (a later issue) is a change of this module alone.
//!
//! Today signatures are accepted without checking, as the local emulators do, and every
//! request acts as the server's account.

use hyper::http::request::Parts;

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account id.
    pub account_id: String,
    /// The access key id the request was signed with, if it names one.
    pub access_key_id: Option<String>,
}

/// Why a request is refused (never, yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// The service-neutral reason (services map it to their own error shape).
    pub reason: String,
}

/// Authenticates a request. Accepts every request today; reads the access key id from the
/// `Authorization` header so logs can name it.
pub fn authenticate(parts: &Parts, _body: &[u8], account_id: &str) -> Result<Principal, AuthError> {
    let access_key_id = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .filter(|k| !k.is_empty() && k.len() <= 128)
        .map(str::to_string);
    Ok(Principal { account_id: account_id.to_string(), access_key_id })
}
