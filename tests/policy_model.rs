//! The policy evaluator against a reference: random policies (both sides), principals and
//! requests are written as JSON, read by `weir::policy` and decided by it, and decided again by
//! the simple evaluator below, which works on the generated statements themselves (no parsing),
//! matches wildcards by a recursive definition instead of the library's backtracking matcher,
//! and spells AWS's rules out one by one.

use proptest::prelude::*;
use serde_json::{json, Value};
use weir::policy::{evaluate, Context, Decision, Identity, Policy, PolicyKind, Principal, Request};

const OWNER: &str = "111122223333";
const OTHER: &str = "444455556666";
const ACTIONS: [&str; 4] = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"];
const ACTION_PATTERNS: [&str; 8] = [
    "sqs:SendMessage",
    "SQS:receivemessage",
    "sqs:*",
    "sqs:Send*",
    "sqs:?urgeQueue",
    "*",
    "sns:Publish",
    "sqs:Delete*e",
];
const RESOURCES: [&str; 3] = [
    "arn:aws:sqs:us-east-1:111122223333:jobs",
    "arn:aws:sqs:us-east-1:111122223333:jobs-2",
    "arn:aws:sqs:us-east-1:111122223333:audit",
];
const RESOURCE_PATTERNS: [&str; 6] = [
    "arn:aws:sqs:us-east-1:111122223333:jobs",
    "*",
    "arn:aws:sqs:*:111122223333:jobs*",
    "arn:aws:sqs:us-east-1:*:a?dit",
    "arn:aws:sqs:*:*:*-2",
    "arn:aws:sqs:us-east-1:444455556666:*",
];
/// `AWS` principal entries as a policy may write them.
const AWS_ENTRIES: [&str; 7] = [
    "*",
    "111122223333",
    "444455556666",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::444455556666:user/bob",
    "arn:aws:iam::444455556666:root",
    "arn:aws:iam::111122223333:user/carol",
];

#[derive(Debug, Clone)]
enum Who {
    Everyone,
    Listed { aws: Vec<&'static str>, service: bool },
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    /// Resource policies only; `(negated, who)`.
    principal: Option<(bool, Who)>,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    /// `StringEquals` on key `k` with these values, if any.
    condition: Option<Vec<&'static str>>,
}

impl Stmt {
    fn to_json(&self) -> Value {
        let mut s = serde_json::Map::new();
        s.insert("Effect".into(), json!(if self.allow { "Allow" } else { "Deny" }));
        if let Some((negated, who)) = &self.principal {
            let value = match who {
                Who::Everyone => json!("*"),
                Who::Listed { aws, service } => {
                    let mut m = serde_json::Map::new();
                    if !aws.is_empty() {
                        m.insert("AWS".into(), json!(aws));
                    }
                    if *service || aws.is_empty() {
                        m.insert("Service".into(), json!("sns.amazonaws.com"));
                    }
                    Value::Object(m)
                }
            };
            s.insert(if *negated { "NotPrincipal" } else { "Principal" }.into(), value);
        }
        s.insert(if self.not_action { "NotAction" } else { "Action" }.into(), json!(self.actions));
        s.insert(if self.not_resource { "NotResource" } else { "Resource" }.into(), json!(self.resources));
        if let Some(values) = &self.condition {
            s.insert("Condition".into(), json!({"StringEquals": {"k": values}}));
        }
        Value::Object(s)
    }
}

fn policy_json(statements: &[Stmt]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements.iter().map(Stmt::to_json).collect::<Vec<_>>()}).to_string()
}

fn subset<T: Clone + std::fmt::Debug + 'static>(items: &'static [T], max: usize) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items.to_vec(), 1..=max)
}

fn stmt(resource_policy: bool) -> impl Strategy<Value = Stmt> {
    let who = prop_oneof![
        1 => Just(Who::Everyone),
        4 => (subset(&AWS_ENTRIES, 3), any::<bool>()).prop_map(|(aws, service)| Who::Listed { aws, service }),
        1 => Just(Who::Listed { aws: vec![], service: true }),
    ];
    let principal =
        if resource_policy { (prop::bool::weighted(0.15), who).prop_map(Some).boxed() } else { Just(None).boxed() };
    (
        prop::bool::weighted(0.7),
        principal,
        prop::bool::weighted(0.15),
        subset(&ACTION_PATTERNS, 3),
        prop::bool::weighted(0.15),
        subset(&RESOURCE_PATTERNS, 2),
        prop::option::weighted(0.25, subset(&["a", "b"], 2)),
    )
        .prop_map(|(allow, principal, not_action, actions, not_resource, resources, condition)| Stmt {
            allow,
            principal,
            not_action,
            actions,
            not_resource,
            resources,
            condition,
        })
}

#[derive(Debug, Clone)]
enum IdSide {
    Root,
    Nothing,
    Policy(Vec<Stmt>),
}

#[derive(Debug, Clone)]
struct Case {
    principal: usize,
    identity: IdSide,
    resource_policy: Option<Vec<Stmt>>,
    action: &'static str,
    resource: &'static str,
    k: Option<&'static str>,
}

/// The callers: users and roots of both accounts, and the SNS service.
fn principal(i: usize) -> Principal {
    match i {
        0 => Principal::user(OWNER, "alice"),
        1 => Principal::user(OWNER, "carol"),
        2 => Principal::root(OWNER),
        3 => Principal::user(OTHER, "bob"),
        4 => Principal::root(OTHER),
        _ => Principal::Service("sns.amazonaws.com".into()),
    }
}

fn case() -> impl Strategy<Value = Case> {
    let identity = prop_oneof![
        1 => Just(IdSide::Root),
        1 => Just(IdSide::Nothing),
        3 => prop::collection::vec(stmt(false), 0..4).prop_map(IdSide::Policy),
    ];
    (
        0..6usize,
        identity,
        prop::option::weighted(0.8, prop::collection::vec(stmt(true), 0..5)),
        proptest::sample::select(ACTIONS.to_vec()),
        proptest::sample::select(RESOURCES.to_vec()),
        proptest::sample::select(vec![None, Some("a"), Some("b"), Some("c")]),
    )
        .prop_map(|(principal, identity, resource_policy, action, resource, k)| Case {
            principal,
            identity,
            resource_policy,
            action,
            resource,
            k,
        })
}

// ---- The reference evaluator ----

/// `*` any run, `?` one character: the recursive definition.
fn reference_glob(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|skip| reference_glob(rest, &t[skip..])),
        Some(('?', rest)) => !t.is_empty() && reference_glob(rest, &t[1..]),
        Some((c, rest)) => t.first() == Some(c) && reference_glob(rest, &t[1..]),
    }
}

fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| if ignore_case { s.to_lowercase() } else { s.to_string() };
    let p: Vec<char> = fold(pattern).chars().collect();
    let t: Vec<char> = fold(text).chars().collect();
    reference_glob(&p, &t)
}

fn statement_applies(s: &Stmt, c: &Case) -> bool {
    let action = s.actions.iter().any(|p| glob(p, c.action, true)) != s.not_action;
    let resource = s.resources.iter().any(|p| glob(p, c.resource, false)) != s.not_resource;
    let condition = match &s.condition {
        None => true,
        Some(values) => c.k.is_some_and(|k| values.contains(&k)),
    };
    action && resource && condition
}

/// 0: not named; 1: named through its account; 2: named itself (or everyone).
fn named(s: &Stmt, who: &Principal) -> u8 {
    let Some((negated, w)) = &s.principal else { return 2 };
    let level = match (w, who) {
        (Who::Everyone, _) => 2,
        (Who::Listed { service, aws }, Principal::Service(_)) => {
            if *service || aws.is_empty() {
                2
            } else {
                0
            }
        }
        (Who::Listed { aws, .. }, Principal::Aws { arn, account }) => aws
            .iter()
            .map(|entry| {
                let entry_arn =
                    if entry.len() == 12 { format!("arn:aws:iam::{entry}:root") } else { entry.to_string() };
                if *entry == "*" || entry_arn == *arn {
                    2
                } else if entry_arn == format!("arn:aws:iam::{account}:root") {
                    1
                } else {
                    0
                }
            })
            .max()
            .unwrap_or(0),
    };
    match (negated, level) {
        (false, l) => l,
        (true, 0) => 2,
        (true, _) => 0,
    }
}

fn reference(c: &Case) -> Decision {
    let who = principal(c.principal);
    let identity_statements: &[Stmt] = match &c.identity {
        IdSide::Policy(s) => s,
        _ => &[],
    };
    let resource_statements: &[Stmt] = c.resource_policy.as_deref().unwrap_or(&[]);
    // 1. Any applicable Deny, on either side, decides.
    let identity_deny = identity_statements.iter().any(|s| !s.allow && statement_applies(s, c));
    let resource_deny = resource_statements.iter().any(|s| !s.allow && named(s, &who) > 0 && statement_applies(s, c));
    if identity_deny || resource_deny {
        return Decision::ExplicitDeny;
    }
    // 2. The two sides' allows.
    let identity_allows =
        matches!(c.identity, IdSide::Root) || identity_statements.iter().any(|s| s.allow && statement_applies(s, c));
    let resource_allows = resource_statements
        .iter()
        .filter(|s| s.allow && statement_applies(s, c))
        .map(|s| named(s, &who))
        .max()
        .unwrap_or(0);
    let allowed = match &who {
        Principal::Service(_) => resource_allows == 2,
        Principal::Aws { account, .. } if account == OWNER => identity_allows || resource_allows == 2,
        Principal::Aws { .. } => identity_allows && resource_allows >= 1,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_evaluator_decides_as_the_reference(c in case()) {
        let who = principal(c.principal);
        let identity_policy = match &c.identity {
            IdSide::Policy(statements) => {
                Some(Policy::parse(&policy_json(statements), PolicyKind::Identity).expect("identity policy parses"))
            }
            _ => None,
        };
        let identity = match (&c.identity, &identity_policy) {
            (IdSide::Root, _) => Identity::Root,
            (IdSide::Policy(_), Some(p)) => Identity::Policy(p),
            _ => Identity::None,
        };
        let resource_policy = c
            .resource_policy
            .as_ref()
            .map(|s| Policy::parse(&policy_json(s), PolicyKind::Resource).expect("resource policy parses"));
        let mut context = Context::new();
        if let Some(k) = c.k {
            context.set("K", k);
        }
        let request = Request {
            principal: &who,
            action: c.action,
            resource: c.resource,
            resource_account: OWNER,
            context: &context,
        };
        prop_assert_eq!(evaluate(identity, resource_policy.as_ref(), &request), reference(&c));
    }
}
