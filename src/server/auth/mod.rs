//! Who a request is, and what it may do.
//!
//! [`authenticate`] is the one authentication step of the request path: every request passes
//! it after it is read and routed and before its service runs. Without `--auth` the server is
//! open (every request acts as the owning account, as the local emulators do); with it every
//! request must carry a valid AWS Signature Version 4 ([`sigv4`]) made with a key of the
//! credentials file ([`credentials`]), at a time within 15 minutes of the engine clock.
//!
//! [`authorize`] is the authorization check a service calls once it knows the operation's IAM
//! action and resource: the caller's identity side (its account's root, or its identity
//! policy) and the resource's policy, evaluated by [`crate::policy`].
//!
//! Failures are service-neutral [`AuthError`]s; each service renders them in its own shapes
//! (SQS in `sqs/errors.rs`; [`errors`] holds the tables for the JSON 1.1 services and SNS).

pub(crate) mod credentials;
pub(crate) mod errors;
pub(crate) mod password;
pub(crate) mod sigv4;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::http::request::Parts;

use self::credentials::CredentialStore;
pub(crate) use self::password::authenticate_password;
use self::sigv4::{SigError, SignedRequest};
use crate::policy::{evaluate, Context, Decision, Identity, Policy, Principal as PolicyPrincipal, Request};

/// What the listener knows of a connection, put in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub secure: bool,
}

/// What a request may do.
#[derive(Debug, Clone)]
pub enum Access {
    /// No `--auth`: everything.
    Open,
    /// A key without an identity policy: its account's root.
    Root,
    /// A key limited to its identity policy.
    Limited(Arc<Policy>),
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's account id (the server's account when the server is open).
    pub account_id: String,
    /// The key's user, when authenticated.
    pub user: Option<String>,
    /// What it may do.
    pub access: Access,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub secure: bool,
}

impl Principal {
    /// Whoever calls a server without `--auth`: the server's account, allowed everything.
    pub(crate) fn open(account_id: &str, source_ip: Option<IpAddr>, secure: bool) -> Principal {
        Principal { account_id: account_id.to_string(), user: None, access: Access::Open, source_ip, secure }
    }

    /// The principal as policies name it: `arn:aws:iam::ACCOUNT:user/USER`, or the account's
    /// root for an open server.
    pub fn policy_principal(&self) -> PolicyPrincipal {
        match &self.user {
            Some(user) => PolicyPrincipal::user(&self.account_id, user),
            None => PolicyPrincipal::root(&self.account_id),
        }
    }
}

/// Why a request is refused, before a service renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorKind {
    /// No signature.
    MissingAuthenticationToken,
    /// An access key id the credentials file does not have.
    InvalidClientTokenId,
    /// A signature that does not match.
    SignatureDoesNotMatch,
    /// A signature that does not follow the form.
    IncompleteSignature,
    /// A time outside the window, or an expired presigned request.
    RequestExpired,
    /// Authenticated, but no policy allows the action (or one denies it).
    AccessDenied,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// What kind of refusal.
    pub kind: AuthErrorKind,
    /// For people.
    pub message: String,
}

impl AuthError {
    fn new(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        AuthError { kind, message: message.into() }
    }
}

impl From<SigError> for AuthError {
    fn from(e: SigError) -> Self {
        match e {
            SigError::Missing => AuthError::new(
                AuthErrorKind::MissingAuthenticationToken,
                "Request is missing Authentication Token: this endpoint requires AWS Signature Version 4.",
            ),
            SigError::Incomplete(m) => AuthError::new(AuthErrorKind::IncompleteSignature, m),
            SigError::Expired(m) => AuthError::new(AuthErrorKind::RequestExpired, m),
            SigError::Mismatch(m) => AuthError::new(AuthErrorKind::SignatureDoesNotMatch, m),
        }
    }
}

/// The facts authentication needs beyond the request.
pub(crate) struct AuthSettings<'a> {
    /// The credentials, when `--auth` is on.
    pub store: Option<&'a CredentialStore>,
    /// The owning account.
    pub account_id: &'a str,
    /// The server's region (a signature's scope must name it).
    pub region: &'a str,
    /// The engine clock's time.
    pub now_ms: u64,
}

/// Authenticates a request for `service` (its signing name: `sqs`, `sns`, `kinesis`,
/// `firehose`).
pub(crate) fn authenticate(
    settings: &AuthSettings<'_>,
    service: &str,
    parts: &Parts,
    body: &[u8],
) -> Result<Principal, AuthError> {
    let connection = parts.extensions.get::<Connection>().copied();
    let source_ip = connection.map(|c| c.peer.ip());
    let secure = connection.is_some_and(|c| c.secure);
    let Some(store) = settings.store else {
        return Ok(Principal::open(settings.account_id, source_ip, secure));
    };
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
        body,
    };
    let claim = sigv4::claim(&request)?.ok_or(SigError::Missing)?;
    let credentials = store.current();
    let Some(key) = credentials.get(&claim.access_key_id) else {
        return Err(AuthError::new(
            AuthErrorKind::InvalidClientTokenId,
            "The security token included in the request is invalid.",
        ));
    };
    if claim.region != settings.region {
        return Err(AuthError::new(
            AuthErrorKind::SignatureDoesNotMatch,
            format!(
                "Credential should be scoped to a valid region, not '{}'. This endpoint's region is '{}'.",
                claim.region.chars().take(40).collect::<String>(),
                settings.region
            ),
        ));
    }
    if claim.service != service {
        return Err(AuthError::new(
            AuthErrorKind::SignatureDoesNotMatch,
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    let authority = parts.uri.authority().map(|a| a.as_str());
    sigv4::verify(&request, &claim, &key.secret_access_key, authority, settings.now_ms)?;
    let access = match &key.policy {
        None => Access::Root,
        Some(policy) => Access::Limited(Arc::clone(policy)),
    };
    Ok(Principal { account_id: key.account.clone(), user: Some(key.user.clone()), access, source_ip, secure })
}

/// What [`authorize`] decides about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Action<'a> {
    /// The IAM action, `sqs:SendMessage`.
    pub action: &'a str,
    /// The resource's ARN (`*` for an action on no resource).
    pub resource: &'a str,
    /// The owning account.
    pub owner: &'a str,
    /// The engine clock's time.
    pub now_ms: u64,
}

/// True when authorization has anything to decide: an open server lets everything through,
/// and a service can skip reading the resource's policy. (The owning account's root is checked
/// too: an explicit `Deny` in a resource policy stops it, as in AWS.)
pub(crate) fn needs_check(principal: &Principal) -> bool {
    !matches!(principal.access, Access::Open)
}

/// Decides whether `principal` may do `action`, given the resource's policy text (`None`: the
/// resource has none, or does not exist). A resource policy that does not parse (stored
/// before it was checked, through the library) grants nothing but is no error.
pub(crate) fn authorize(
    principal: &Principal,
    action: &Action<'_>,
    resource_policy: Option<&str>,
) -> Result<(), AuthError> {
    if !needs_check(principal) {
        return Ok(());
    }
    let resource_policy =
        resource_policy.and_then(|text| Policy::parse(text, crate::policy::PolicyKind::Resource).ok());
    let who = principal.policy_principal();
    let mut context = Context::at(action.now_ms)
        .with("aws:PrincipalArn", who.name())
        .with("aws:PrincipalAccount", principal.account_id.clone())
        .with("aws:SecureTransport", principal.secure.to_string());
    if let Some(user) = &principal.user {
        context.set("aws:username", user.clone());
    }
    if let Some(ip) = principal.source_ip {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        context.set("aws:SourceIp", ip.to_string());
    }
    let identity = match &principal.access {
        Access::Open | Access::Root => Identity::Root,
        Access::Limited(policy) => Identity::Policy(policy),
    };
    let request = Request {
        principal: &who,
        action: action.action,
        resource: action.resource,
        resource_account: action.owner,
        context: &context,
    };
    match evaluate(identity, resource_policy.as_ref(), &request) {
        Decision::Allow => Ok(()),
        decision => {
            let why = if decision == Decision::ExplicitDeny {
                "with an explicit deny".to_string()
            } else if principal.account_id == action.owner {
                "because no identity-based policy allows the action".to_string()
            } else {
                "because no resource-based policy allows the action".to_string()
            };
            Err(AuthError::new(
                AuthErrorKind::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {} on resource: {} {why}",
                    who.name(),
                    action.action,
                    action.resource
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(account: &str, access: Access) -> Principal {
        Principal {
            account_id: account.into(),
            user: Some("alice".into()),
            access,
            source_ip: Some("10.1.2.3".parse().unwrap()),
            secure: false,
        }
    }

    #[test]
    fn authorization_follows_the_policies() {
        let owner = "111122223333";
        let action =
            Action { action: "sqs:SendMessage", resource: "arn:aws:sqs:us-east-1:111122223333:jobs", owner, now_ms: 0 };
        assert!(authorize(&principal(owner, Access::Open), &action, None).is_ok());
        assert!(authorize(&principal(owner, Access::Root), &action, None).is_ok());
        let other = principal("444455556666", Access::Root);
        let denied = authorize(&other, &action, None).unwrap_err();
        assert_eq!(denied.kind, AuthErrorKind::AccessDenied);
        assert!(denied.message.contains("arn:aws:iam::444455556666:user/alice"), "{}", denied.message);
        let from_lan = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        assert!(authorize(&other, &action, Some(from_lan)).is_ok(), "the source address reaches the condition");
        let mut far = other.clone();
        far.source_ip = Some("::ffff:203.0.113.9".parse().unwrap());
        assert!(authorize(&far, &action, Some(from_lan)).is_err());
        assert!(authorize(&other, &action, Some("{unreadable")).is_err(), "an unreadable policy grants nothing");
        let limited = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"sqs:Receive*","Resource":"*"}]}"#,
            crate::policy::PolicyKind::Identity,
        )
        .unwrap();
        let limited = principal(owner, Access::Limited(Arc::new(limited)));
        assert!(authorize(&limited, &action, None).is_err());
        assert!(authorize(&limited, &Action { action: "sqs:ReceiveMessage", ..action }, None).is_ok());
    }
}
