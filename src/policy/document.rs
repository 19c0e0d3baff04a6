//! Reading a policy document: `Version`, `Id`, `Statement` (one object or a list), and in
//! each statement `Sid`, `Effect`, `Principal`/`NotPrincipal`, `Action`/`NotAction`,
//! `Resource`/`NotResource` and `Condition`. What IAM would refuse is refused here, with the
//! reason, so a policy never silently means less than it says.

use serde_json::{Map, Value};

use super::condition::{self, Condition};
use crate::error::{Error, Result};

/// Largest policy text weir reads (SQS allows 8 KiB, IAM identity policies 6 KiB; this bounds
/// the work of a hostile document, not what a service accepts).
pub const MAX_POLICY_TEXT: usize = 64 * 1024;
/// Most statements in one policy.
pub const MAX_STATEMENTS: usize = 1000;

/// Where a policy is attached, which decides whether its statements name principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a principal (the `policy` of a key in the credentials file): its statements
    /// name no `Principal`; they apply to whoever the policy belongs to.
    Identity,
    /// Attached to a resource (a queue's `Policy`, a topic's, a stream's): every statement names
    /// the principals it applies to.
    Resource,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// The principals a statement names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Principals {
    /// `"Principal": "*"`: everyone, AWS principals and services alike.
    pub everyone: bool,
    /// `{"AWS": ...}` entries as ARNs (a bare account id becomes `arn:aws:iam::ID:root`);
    /// `"*"` stays `"*"`.
    pub aws: Vec<String>,
    /// `{"Service": ...}` entries (`sns.amazonaws.com`).
    pub service: Vec<String>,
}

/// A list of patterns, or everything but them (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Patterns {
    pub negated: bool,
    pub items: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `None` in identity policies.
    pub principal: Option<(bool, Principals)>,
    pub action: Patterns,
    pub resource: Patterns,
    pub conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) kind: PolicyKind,
    pub(crate) statements: Vec<Statement>,
}

impl Policy {
    /// Reads a policy of `kind` from its JSON text.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy> {
        if text.len() > MAX_POLICY_TEXT {
            return Err(Error::TooLarge { what: "policy document", size: text.len(), limit: MAX_POLICY_TEXT });
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("the policy is not valid JSON: {e}")))?;
        Policy::from_value(&value, kind)
    }

    /// Reads a policy of `kind` from a JSON value.
    pub fn from_value(value: &Value, kind: PolicyKind) -> Result<Policy> {
        let doc = value.as_object().ok_or_else(|| bad("the policy must be a JSON object"))?;
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(bad(&format!("unknown policy element {:?}", short(key))));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(other) => {
                return Err(bad(&format!(
                    "Version must be \"2012-10-17\" or \"2008-10-17\", not {}",
                    short(&other.to_string())
                )))
            }
        }
        if doc.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(bad("Id must be a string"));
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(bad("Statement must be an object or a list of objects")),
            None => return Err(bad("the policy has no Statement")),
        };
        if statements.len() > MAX_STATEMENTS {
            return Err(bad(&format!("a policy has at most {MAX_STATEMENTS} statements")));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| statement(s, kind).map_err(|e| prefix(e, i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Policy { kind, statements })
    }

    /// Whether this is an identity or a resource policy.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The statements' `Sid`s, in order (`None` for a statement without one).
    pub fn sids(&self) -> Vec<Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref()).collect()
    }
}

fn bad(why: &str) -> Error {
    Error::InvalidArgument(format!("invalid policy: {why}"))
}

fn prefix(error: Error, index: usize) -> Error {
    match error {
        Error::InvalidArgument(why) => Error::InvalidArgument(format!("statement {}: {why}", index + 1)),
        other => other,
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn statement(value: &Value, kind: PolicyKind) -> Result<Statement> {
    let s: &Map<String, Value> = value.as_object().ok_or_else(|| bad("a statement must be an object"))?;
    for key in s.keys() {
        let known = matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        );
        if !known {
            return Err(bad(&format!("unknown statement element {:?}", short(key))));
        }
    }
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(bad("Sid must be a string")),
    };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
    };
    let principal = match (s.get("Principal"), s.get("NotPrincipal"), kind) {
        (None, None, PolicyKind::Identity) => None,
        (Some(_), _, PolicyKind::Identity) | (_, Some(_), PolicyKind::Identity) => {
            return Err(bad("an identity policy names no Principal: it applies to its own principal"))
        }
        (Some(p), None, PolicyKind::Resource) => Some((false, principals(p)?)),
        (None, Some(p), PolicyKind::Resource) => Some((true, principals(p)?)),
        (None, None, PolicyKind::Resource) => return Err(bad("a resource policy statement needs a Principal")),
        (Some(_), Some(_), PolicyKind::Resource) => {
            return Err(bad("a statement has Principal or NotPrincipal, not both"))
        }
    };
    let action = patterns(s, "Action", "NotAction")?;
    for item in &action.items {
        if item != "*" && !item.contains(':') {
            return Err(bad(&format!("action {:?} is not service:action", short(item))));
        }
    }
    let resource = patterns(s, "Resource", "NotResource")?;
    for item in &resource.items {
        if item != "*" && !item.starts_with("arn:") {
            return Err(bad(&format!("resource {:?} is not an ARN", short(item))));
        }
    }
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(block) => condition::parse_block(block)?,
    };
    Ok(Statement { sid, effect, principal, action, resource, conditions })
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(&format!("{what} must be a string or a list of strings")))?,
        _ => return Err(bad(&format!("{what} must be a string or a list of strings"))),
    };
    if list.is_empty() {
        return Err(bad(&format!("{what} lists nothing")));
    }
    Ok(list)
}

fn patterns(s: &Map<String, Value>, positive: &str, negative: &str) -> Result<Patterns> {
    match (s.get(positive), s.get(negative)) {
        (Some(v), None) => Ok(Patterns { negated: false, items: strings(v, positive)? }),
        (None, Some(v)) => Ok(Patterns { negated: true, items: strings(v, negative)? }),
        (None, None) => Err(bad(&format!("a statement needs {positive} or {negative}"))),
        (Some(_), Some(_)) => Err(bad(&format!("a statement has {positive} or {negative}, not both"))),
    }
}

fn principals(value: &Value) -> Result<Principals> {
    let mut out = Principals::default();
    match value {
        Value::String(s) if s == "*" => out.everyone = true,
        Value::Object(map) if !map.is_empty() => {
            for (kind, entries) in map {
                let entries = strings(entries, "a principal")?;
                match kind.as_str() {
                    "AWS" => {
                        for entry in entries {
                            out.aws.push(aws_principal(&entry)?);
                        }
                    }
                    "Service" => out.service.extend(entries),
                    "Federated" | "CanonicalUser" => {
                        return Err(bad(&format!("{kind} principals are not supported")));
                    }
                    other => return Err(bad(&format!("unknown principal type {:?}", short(other)))),
                }
            }
        }
        _ => return Err(bad("Principal must be \"*\" or an object such as {\"AWS\": [...]}")),
    }
    Ok(out)
}

/// An `AWS` principal entry: `*`, a 12-digit account id (its root), or an IAM ARN.
fn aws_principal(entry: &str) -> Result<String> {
    if entry == "*" {
        return Ok(entry.to_string());
    }
    if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("arn:aws:iam::{entry}:root"));
    }
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    let account_ok = parts.get(4).is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    if parts.len() == 6
        && parts[0] == "arn"
        && (parts[2] == "iam" || parts[2] == "sts")
        && account_ok
        && !parts[5].is_empty()
    {
        if entry.contains('*') || entry.contains('?') {
            return Err(bad(&format!("principal {:?}: wildcards are allowed only as \"*\"", short(entry))));
        }
        return Ok(entry.to_string());
    }
    Err(bad(&format!("principal {:?} is not \"*\", an account id or an IAM ARN", short(entry))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(v: Value) -> Result<Policy> {
        Policy::from_value(&v, PolicyKind::Resource)
    }

    #[test]
    fn statements_are_read_in_their_usual_shapes() {
        let p = resource(json!({
            "Version": "2012-10-17",
            "Id": "arn:aws:sqs:us-east-1:111122223333:jobs/SQSDefaultPolicy",
            "Statement": {"Sid": "one", "Effect": "Allow", "Principal": {"AWS": ["444455556666", "arn:aws:iam::777788889999:user/bob"]},
                          "Action": "SQS:SendMessage", "Resource": "arn:aws:sqs:us-east-1:111122223333:jobs"}
        }))
        .expect("parses");
        assert_eq!(p.sids(), vec![Some("one")]);
        let (negated, principals) = p.statements[0].principal.clone().expect("principal");
        assert!(!negated);
        assert_eq!(principals.aws, vec!["arn:aws:iam::444455556666:root", "arn:aws:iam::777788889999:user/bob"]);
        let p = resource(json!({"Statement": [
            {"Effect": "Deny", "Principal": "*", "NotAction": ["sqs:Get*", "sqs:List*"], "NotResource": "arn:aws:sqs:*:*:public-*"},
            {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*",
             "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111122223333:orders"}}}
        ]}))
        .expect("parses");
        assert_eq!(p.statements.len(), 2);
        assert!(p.statements[0].action.negated && p.statements[0].resource.negated);
        assert_eq!(p.statements[1].conditions.len(), 1);
        let identity = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
            PolicyKind::Identity,
        )
        .expect("identity policy");
        assert!(identity.statements[0].principal.is_none());
    }

    #[test]
    fn what_iam_refuses_is_refused() {
        let ok = json!({"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"});
        let with = |key: &str, value: Value| {
            let mut s = ok.as_object().unwrap().clone();
            s.insert(key.into(), value);
            json!({"Statement": [Value::Object(s)]})
        };
        let without = |key: &str| {
            let mut s = ok.as_object().unwrap().clone();
            s.remove(key);
            json!({"Statement": [Value::Object(s)]})
        };
        let cases = vec![
            json!([]),
            json!({}),
            json!({"Version": "2010-01-01", "Statement": []}),
            json!({"Statement": "x"}),
            json!({"Statement": [ok.clone()], "Extra": 1}),
            with("Effect", json!("allow")),
            with("Effect", json!(true)),
            with("Sid", json!(7)),
            with("Principal", json!("someone")),
            with("Principal", json!({})),
            with("Principal", json!({"AWS": "arn:aws:iam::*:root"})),
            with("Principal", json!({"AWS": "1234"})),
            with("Principal", json!({"AWS": []})),
            with("Principal", json!({"Federated": "cognito-identity.amazonaws.com"})),
            with("Principal", json!({"Robot": "x"})),
            with("NotPrincipal", json!("*")),
            with("Action", json!("SendMessage")),
            with("Action", json!([1])),
            with("NotAction", json!("sqs:*")),
            with("Resource", json!("queue")),
            with("Condition", json!({"Nope": {"k": "v"}})),
            with("Unknown", json!(1)),
            without("Effect"),
            without("Principal"),
            without("Action"),
            without("Resource"),
        ];
        for case in cases {
            assert!(resource(case.clone()).is_err(), "{case} accepted");
        }
        let identity_with_principal = json!({"Statement": [ok]});
        assert!(Policy::from_value(&identity_with_principal, PolicyKind::Identity).is_err());
        assert!(Policy::parse("{not json", PolicyKind::Resource).is_err());
        let huge = format!(r#"{{"Statement":[],"Id":"{}"}}"#, "x".repeat(MAX_POLICY_TEXT));
        assert!(matches!(Policy::parse(&huge, PolicyKind::Resource), Err(Error::TooLarge { .. })));
    }
}
