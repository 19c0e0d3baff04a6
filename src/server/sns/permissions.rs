//! `AddPermission` and `RemovePermission`: statements of the topic's access policy, by label
//! (the statement's `Sid`), changed under the catalog lock. The policy is kept; requests are
//! not checked against it.

use serde_json::{json, Map, Value};

use super::attributes::default_policy;
use super::context::Ctx;
use super::errors::{shorten, SnsError};
use super::{Output, OPERATIONS};
use crate::server::wire::Input;

/// Most statements a topic policy holds here (weir's bound; SNS's is the policy's 30 KiB).
pub const MAX_STATEMENTS: usize = 100;

fn label_of(input: &Input) -> Result<String, SnsError> {
    let label = input.required_str("Label")?;
    let ok = !label.is_empty()
        && label.len() <= 80
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(SnsError::invalid("Label", "1 to 80 characters of A-Z a-z 0-9 _ -"));
    }
    Ok(label.to_string())
}

/// `AddPermission`: a statement allowing the accounts the actions on the topic.
pub(crate) async fn add_permission(ctx: Ctx, input: Input) -> Output {
    let name = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let label = label_of(&input)?;
    let accounts = input.str_list("AWSAccountId")?;
    let actions = input.str_list("ActionName")?;
    if accounts.is_empty() || actions.is_empty() {
        return Err(SnsError::invalid("AWSAccountId and ActionName", "name at least one of each"));
    }
    for a in &accounts {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SnsError::invalid("AWSAccountId", format!("{} is not a 12-digit account id", shorten(a))));
        }
    }
    for a in &actions {
        if a != "*" && !OPERATIONS.iter().any(|o| o.name == a) {
            return Err(SnsError::invalid("ActionName", format!("{} is not an SNS action", shorten(a))));
        }
    }
    let arn = ctx.context().topic_arn(&name);
    let default = default_policy(&arn, &ctx.account());
    let statement = json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect::<Vec<_>>()},
        "Action": actions.iter().map(|a| format!("SNS:{a}")).collect::<Vec<_>>(),
        "Resource": arn,
    });
    change_policy(&ctx, name, default, move |statements| {
        if statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(label.as_str())) {
            return Err(SnsError::invalid("Statement", "a statement with this label exists already"));
        }
        if statements.len() >= MAX_STATEMENTS {
            return Err(SnsError::invalid(
                "Policy",
                format!("a topic policy holds at most {MAX_STATEMENTS} statements"),
            ));
        }
        statements.push(statement);
        Ok(())
    })
    .await
}

/// `RemovePermission`: the statement with the label goes (a label the policy does not have is
/// fine: nothing to remove).
pub(crate) async fn remove_permission(ctx: Ctx, input: Input) -> Output {
    let name = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let label = label_of(&input)?;
    let default = default_policy(&ctx.context().topic_arn(&name), &ctx.account());
    change_policy(&ctx, name, default, move |statements| {
        statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label.as_str()));
        Ok(())
    })
    .await
}

/// Changes the statements of the topic's policy (SNS's default policy if it has none) under
/// the catalog lock.
async fn change_policy(
    ctx: &Ctx,
    name: String,
    default: String,
    change: impl FnOnce(&mut Vec<Value>) -> Result<(), SnsError> + Send + 'static,
) -> Output {
    let refused = ctx
        .engine(move |e| {
            let mut refused = None;
            e.update_topic(&name, |_, attributes| {
                let text = attributes.policy.clone().unwrap_or(default);
                let mut doc: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({}));
                let mut statements = match doc.get_mut("Statement") {
                    Some(Value::Array(s)) => std::mem::take(s),
                    Some(one @ Value::Object(_)) => vec![one.take()],
                    _ => Vec::new(),
                };
                if let Err(e) = change(&mut statements) {
                    refused = Some(e);
                    return Ok(());
                }
                if let Some(map) = doc.as_object_mut() {
                    map.insert("Statement".into(), Value::Array(statements));
                }
                attributes.policy = Some(doc.to_string());
                Ok(())
            })?;
            Ok(refused)
        })
        .await?;
    match refused {
        Some(e) => Err(e),
        None => Ok(Map::new()),
    }
}
