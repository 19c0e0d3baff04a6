//! SQS's permissions as statements of a queue's access policy: AddPermission adds a statement
//! named by its label (`Sid`), RemovePermission removes it. Pure functions over the policy's
//! JSON text; the engine stores the result as the queue's `policy` attribute.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::queue::config::{validate_policy, MAX_POLICY_BYTES, MAX_POLICY_STATEMENTS};

/// Longest permission label, as SQS.
pub const MAX_LABEL_LEN: usize = 80;
/// Most actions one permission grants, as SQS.
pub const MAX_PERMISSION_ACTIONS: usize = 7;
/// The actions a permission may grant, as SQS (a batch action comes with its single one).
pub const PERMISSION_ACTIONS: [&str; 7] = [
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
];
/// Policy language version of a policy weir creates.
pub const POLICY_VERSION: &str = "2012-10-17";

/// One permission to add.
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    /// Its label (the statement's `Sid`): 1 to 80 of `[A-Za-z0-9_-]`.
    pub label: &'a str,
    /// Account ids of the principals (12 digits each; 1 to 50 of them).
    pub principals: &'a [String],
    /// Actions without the `SQS:` prefix (1 to 7 of [`PERMISSION_ACTIONS`]).
    pub actions: &'a [String],
    /// The queue's ARN.
    pub resource_arn: &'a str,
}

/// Most principals in one statement: SQS's per-policy limit.
pub const MAX_PRINCIPALS: usize = 50;

impl Statement<'_> {
    /// Checks the label, principals and actions.
    pub fn validate(&self) -> Result<()> {
        validate_label(self.label)?;
        if self.principals.is_empty() || self.principals.len() > MAX_PRINCIPALS {
            return Err(Error::InvalidArgument(format!(
                "a permission names 1 to {MAX_PRINCIPALS} accounts, not {}",
                self.principals.len()
            )));
        }
        for account in self.principals {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::InvalidArgument(format!(
                    "an account id is 12 digits, not {:?}",
                    account.chars().take(40).collect::<String>()
                )));
            }
        }
        if self.actions.is_empty() || self.actions.len() > MAX_PERMISSION_ACTIONS {
            return Err(Error::InvalidArgument(format!(
                "a permission grants 1 to {MAX_PERMISSION_ACTIONS} actions, not {}",
                self.actions.len()
            )));
        }
        for action in self.actions {
            if !PERMISSION_ACTIONS.contains(&action.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "action {:?} cannot be granted; one of {}",
                    action.chars().take(40).collect::<String>(),
                    PERMISSION_ACTIONS.join(", ")
                )));
            }
        }
        if self.resource_arn.is_empty() || self.resource_arn.len() > 2048 {
            return Err(Error::InvalidArgument("the queue's ARN must be 1 to 2048 bytes".into()));
        }
        Ok(())
    }

    fn to_json(self) -> Value {
        let one_or_many = |items: Vec<String>| match <[String; 1]>::try_from(items) {
            Ok([one]) => Value::String(one),
            Err(items) => Value::Array(items.into_iter().map(Value::String).collect()),
        };
        let principals = self.principals.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect();
        let actions = self.actions.iter().map(|a| format!("SQS:{a}")).collect();
        json!({
            "Sid": self.label,
            "Effect": "Allow",
            "Principal": { "AWS": one_or_many(principals) },
            "Action": one_or_many(actions),
            "Resource": self.resource_arn,
        })
    }
}

/// Labels: 1 to 80 of `[A-Za-z0-9_-]`, as SQS.
pub fn validate_label(label: &str) -> Result<()> {
    if label.is_empty()
        || label.len() > MAX_LABEL_LEN
        || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::InvalidArgument(format!(
            "a permission label is 1 to {MAX_LABEL_LEN} of A-Z a-z 0-9 _ -, not {:?}",
            label.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// The policy with `statement` added: `policy` (a JSON object) or, when there is none, a new
/// document `{Version, Id: "<arn>/SQSDefaultPolicy", Statement: []}`.
pub fn add_statement(policy: Option<&str>, statement: &Statement<'_>) -> Result<String> {
    let mut doc = match policy {
        Some(text) => parse(text)?,
        None => {
            let mut doc = Map::new();
            doc.insert("Version".into(), Value::String(POLICY_VERSION.into()));
            doc.insert("Id".into(), Value::String(format!("{}/SQSDefaultPolicy", statement.resource_arn)));
            doc
        }
    };
    let mut statements = take_statements(&mut doc);
    if statements.iter().any(|s| sid(s) == Some(statement.label)) {
        return Err(Error::InvalidArgument(format!(
            "the queue's policy already has a permission labelled {:?}",
            statement.label
        )));
    }
    if statements.len() >= MAX_POLICY_STATEMENTS {
        return Err(Error::LimitExceeded(format!(
            "the queue's policy has {} statements, the most SQS allows",
            statements.len()
        )));
    }
    statements.push(statement.to_json());
    doc.insert("Statement".into(), Value::Array(statements));
    let text = Value::Object(doc).to_string();
    if text.len() > MAX_POLICY_BYTES {
        return Err(Error::LimitExceeded(format!(
            "the queue's policy would be {} bytes, over SQS's {MAX_POLICY_BYTES}",
            text.len()
        )));
    }
    validate_policy(&text)?;
    Ok(text)
}

/// The policy without the statement labelled `label`; `None` once no statement is left.
pub fn remove_statement(policy: Option<&str>, label: &str) -> Result<Option<String>> {
    let missing = || Error::InvalidArgument(format!("the queue's policy has no permission labelled {label:?}"));
    let mut doc = parse(policy.ok_or_else(missing)?)?;
    let mut statements = take_statements(&mut doc);
    let before = statements.len();
    statements.retain(|s| sid(s) != Some(label));
    if statements.len() == before {
        return Err(missing());
    }
    if statements.is_empty() {
        return Ok(None);
    }
    doc.insert("Statement".into(), Value::Array(statements));
    Ok(Some(Value::Object(doc).to_string()))
}

fn parse(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(doc)) => Ok(doc),
        _ => Err(Error::InvalidArgument("the queue's access policy is not a JSON object".into())),
    }
}

/// The statements of a policy as a list (a single statement object counts as one).
fn take_statements(doc: &mut Map<String, Value>) -> Vec<Value> {
    match doc.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(one) => vec![one],
        None => Vec::new(),
    }
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:jobs";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn permissions_become_statements_of_a_default_policy_and_go_with_their_label() {
        let accounts = strings(&["111122223333"]);
        let send = strings(&["SendMessage"]);
        let first = Statement { label: "send", principals: &accounts, actions: &send, resource_arn: ARN };
        let policy = add_statement(None, &first).expect("first");
        let doc: Value = serde_json::from_str(&policy).expect("json");
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(doc["Id"], format!("{ARN}/SQSDefaultPolicy"));
        assert_eq!(
            doc["Statement"][0],
            json!({"Sid": "send", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                   "Action": "SQS:SendMessage", "Resource": ARN})
        );
        let two_accounts = strings(&["111122223333", "444455556666"]);
        let receive = strings(&["ReceiveMessage", "DeleteMessage"]);
        let second = Statement { label: "work", principals: &two_accounts, actions: &receive, resource_arn: ARN };
        let policy = add_statement(Some(&policy), &second).expect("second");
        let doc: Value = serde_json::from_str(&policy).expect("json");
        assert_eq!(doc["Statement"][1]["Action"], json!(["SQS:ReceiveMessage", "SQS:DeleteMessage"]));
        assert_eq!(doc["Statement"][1]["Principal"]["AWS"][1], "arn:aws:iam::444455556666:root");
        assert!(add_statement(Some(&policy), &first).is_err(), "a label twice");
        let policy = remove_statement(Some(&policy), "send").expect("remove").expect("one left");
        assert!(remove_statement(Some(&policy), "send").is_err(), "a label removed twice");
        assert!(remove_statement(None, "send").is_err(), "no policy");
        assert_eq!(remove_statement(Some(&policy), "work").expect("remove last"), None);
    }

    #[test]
    fn a_policy_holds_at_most_twenty_statements() {
        let accounts = strings(&["111122223333"]);
        let all = strings(&["*"]);
        let mut policy: Option<String> = None;
        for i in 0..MAX_POLICY_STATEMENTS {
            let label = format!("p{i}");
            let s = Statement { label: &label, principals: &accounts, actions: &all, resource_arn: ARN };
            policy = Some(add_statement(policy.as_deref(), &s).expect("within the limit"));
        }
        let s = Statement { label: "one-more", principals: &accounts, actions: &all, resource_arn: ARN };
        assert!(matches!(add_statement(policy.as_deref(), &s), Err(Error::LimitExceeded(_))));
    }

    #[test]
    fn bad_permissions_are_rejected() {
        let ok_accounts = strings(&["111122223333"]);
        let ok_actions = strings(&["GetQueueUrl"]);
        let long = "l".repeat(81);
        let cases: [(&str, Vec<String>, Vec<String>); 8] = [
            ("", ok_accounts.clone(), ok_actions.clone()),
            (&long, ok_accounts.clone(), ok_actions.clone()),
            ("a b", ok_accounts.clone(), ok_actions.clone()),
            ("ok", Vec::new(), ok_actions.clone()),
            ("ok", strings(&["12345"]), ok_actions.clone()),
            ("ok", strings(&["11112222333x"]), ok_actions.clone()),
            ("ok", ok_accounts.clone(), strings(&["PurgeQueue"])),
            ("ok", ok_accounts.clone(), strings(&["*", "*", "*", "*", "*", "*", "*", "*"])),
        ];
        for (label, principals, actions) in &cases {
            let s = Statement { label, principals, actions, resource_arn: ARN };
            assert!(s.validate().is_err(), "{label:?} {principals:?} {actions:?} accepted");
        }
        Statement { label: "ok", principals: &ok_accounts, actions: &ok_actions, resource_arn: ARN }
            .validate()
            .expect("a good permission");
    }
}
