//! Access policies as AWS writes them, and their evaluation as AWS defines it. Pure: no I/O,
//! no clock (the caller puts the time in the [`Context`]), nothing of the server, so the engine
//! (topic-to-queue delivery) and the server (every request) share one evaluator.
//!
//! [`evaluate`] decides one request:
//! 1. an explicit `Deny` in any policy that applies wins;
//! 2. else, within one account, an `Allow` from the principal's identity side (the account's
//!    root, or its identity policy) or from a resource policy statement that names the
//!    principal itself (or `*`) allows;
//! 3. across accounts both sides must allow: the resource policy (naming the principal, its
//!    account or `*`) and the principal's identity side;
//! 4. else the request is denied (implicitly).
//!
//! A resource policy statement that names an account (`"AWS": "111122223333"`, or its `root`
//! ARN) hands the decision to that account: for its principals it is an allow only together
//! with their identity side, as in IAM.
//!
//! ```
//! use weir::policy::{evaluate, Context, Decision, Identity, Policy, PolicyKind, Principal, Request};
//!
//! let queue_policy = Policy::parse(
//!     r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},
//!          "Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:jobs"}]}"#,
//!     PolicyKind::Resource,
//! )?;
//! let bob = Principal::user("444455556666", "bob");
//! let request = Request {
//!     principal: &bob,
//!     action: "sqs:SendMessage",
//!     resource: "arn:aws:sqs:us-east-1:111122223333:jobs",
//!     resource_account: "111122223333",
//!     context: &Context::at(0),
//! };
//! // Bob's key has no policy of its own: it acts as his account's root, which grants him
//! // everything his account may do; the queue's policy lets his account send.
//! assert_eq!(evaluate(Identity::Root, Some(&queue_policy), &request), Decision::Allow);
//! assert_eq!(evaluate(Identity::Root, None, &request), Decision::ImplicitDeny);
//! # Ok::<(), weir::Error>(())
//! ```

mod condition;
mod context;
pub mod delivery;
mod document;
mod matching;

#[cfg(feature = "server")]
pub(crate) use condition::parse_date_ms;
pub use context::Context;
pub use delivery::{ArnScope, TopicDelivery};
pub use document::{Policy, PolicyKind, MAX_POLICY_TEXT, MAX_STATEMENTS};

use document::{Effect, Statement};

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM principal: a user (`arn:aws:iam::ACCOUNT:user/NAME`) or an account's root
    /// (`arn:aws:iam::ACCOUNT:root`).
    Aws {
        /// Its ARN.
        arn: String,
        /// Its account id.
        account: String,
    },
    /// An AWS service acting for a resource (`sns.amazonaws.com` delivering a topic's message).
    Service(String),
}

impl Principal {
    /// The user `name` of `account`: `arn:aws:iam::ACCOUNT:user/NAME`.
    pub fn user(account: &str, name: &str) -> Principal {
        Principal::Aws { arn: format!("arn:aws:iam::{account}:user/{name}"), account: account.to_string() }
    }

    /// The root of `account`: `arn:aws:iam::ACCOUNT:root`.
    pub fn root(account: &str) -> Principal {
        Principal::Aws { arn: format!("arn:aws:iam::{account}:root"), account: account.to_string() }
    }

    /// Its ARN, or the service's name.
    pub fn name(&self) -> &str {
        match self {
            Principal::Aws { arn, .. } => arn,
            Principal::Service(s) => s,
        }
    }
}

/// The principal's own side of a decision.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    /// The account's root (a key without an identity policy): everything its account may do.
    Root,
    /// A principal limited to its identity policy.
    Policy(&'a Policy),
    /// No identity side (a service principal): only resource policies can allow.
    None,
}

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The IAM action, `service:Action` (`sqs:SendMessage`).
    pub action: &'a str,
    /// The resource's ARN (`*` for actions on no particular resource, such as `sqs:ListQueues`).
    pub resource: &'a str,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    /// The request's condition keys.
    pub context: &'a Context,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// Nothing allows it.
    ImplicitDeny,
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// How a resource policy statement's principals cover the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Covered {
    No,
    /// Through its account (`"AWS": "ACCOUNT"`): the account's own policies decide with it.
    Account,
    /// The caller itself, or everyone.
    Direct,
}

fn covered(statement: &Statement, principal: &Principal) -> Covered {
    let Some((negated, principals)) = &statement.principal else { return Covered::Direct };
    let found = if principals.everyone {
        Covered::Direct
    } else {
        match principal {
            Principal::Aws { arn, account } => {
                let mut best = Covered::No;
                for entry in &principals.aws {
                    let this = if entry == "*" || entry == arn {
                        Covered::Direct
                    } else if *entry == format!("arn:aws:iam::{account}:root") {
                        Covered::Account
                    } else {
                        Covered::No
                    };
                    best = best.max(this);
                }
                best
            }
            Principal::Service(name) => {
                if principals.service.iter().any(|s| s == name) {
                    Covered::Direct
                } else {
                    Covered::No
                }
            }
        }
    };
    if *negated {
        // NotPrincipal: every principal but those listed, as themselves.
        if found == Covered::No {
            Covered::Direct
        } else {
            Covered::No
        }
    } else {
        found
    }
}

/// Whether a statement's action, resource and conditions apply to the request.
fn applies(statement: &Statement, request: &Request<'_>) -> bool {
    let action = statement.action.items.iter().any(|p| matching::action(p, request.action));
    let resource = statement.resource.items.iter().any(|p| matching::resource(p, request.resource));
    action != statement.action.negated
        && resource != statement.resource.negated
        && statement.conditions.iter().all(|c| c.holds(request.context))
}

/// Decides `request` from the principal's identity side and the resource's policy.
pub fn evaluate(identity: Identity<'_>, resource_policy: Option<&Policy>, request: &Request<'_>) -> Decision {
    let mut identity_allows = matches!(identity, Identity::Root);
    if let Identity::Policy(policy) = identity {
        for statement in &policy.statements {
            if applies(statement, request) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => identity_allows = true,
                }
            }
        }
    }
    let mut resource_allows = Covered::No;
    if let Some(policy) = resource_policy {
        for statement in &policy.statements {
            let who = covered(statement, request.principal);
            if who == Covered::No || !applies(statement, request) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => resource_allows = resource_allows.max(who),
            }
        }
    }
    let same_account = match request.principal {
        Principal::Aws { account, .. } => account == request.resource_account,
        Principal::Service(_) => false,
    };
    let allowed = match request.principal {
        Principal::Service(_) => resource_allows == Covered::Direct,
        Principal::Aws { .. } if same_account => identity_allows || resource_allows == Covered::Direct,
        Principal::Aws { .. } => identity_allows && resource_allows != Covered::No,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests;
