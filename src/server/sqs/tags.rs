//! Queue tags: `TagQueue`, `UntagQueue`, `ListQueueTags`, and the `tags` of `CreateQueue`,
//! with SQS's limits. The engine does not keep tags yet (see the TODOs): tagging is answered
//! `UnsupportedOperation`, a queue lists no tags, and removing tags it does not have succeeds.

use std::collections::BTreeMap;

use serde_json::Map;

use super::context::Ctx;
use super::errors::{shorten, Code, SqsError};
use super::limits::{MAX_TAGS, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
use super::Output;
use crate::server::wire::Input;

/// Characters SQS allows in tag keys and values: letters, digits, spaces and `_ . : / = + - @`.
fn tag_chars_ok(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

fn check_key(key: &str) -> Result<(), SqsError> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY_LEN || !tag_chars_ok(key) {
        return Err(SqsError::invalid_parameter(
            "TagKey",
            key,
            &format!("Tag keys are 1 to {MAX_TAG_KEY_LEN} letters, digits, spaces and _ . : / = + - @."),
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(SqsError::invalid_parameter("TagKey", key, "The prefix aws: is reserved."));
    }
    Ok(())
}

/// Reads and checks a tag map (`Tags` of `TagQueue`, `tags` of `CreateQueue`).
pub fn read_tags(input: &Input, parameter: &str) -> Result<BTreeMap<String, String>, SqsError> {
    let tags = input.str_map(parameter)?;
    if tags.len() > MAX_TAGS {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            format!("Too many tags: a queue has at most {MAX_TAGS}, not {}.", tags.len()),
        ));
    }
    for (key, value) in &tags {
        check_key(key)?;
        if value.chars().count() > MAX_TAG_VALUE_LEN || !tag_chars_ok(value) {
            return Err(SqsError::invalid_parameter(
                "TagValue",
                value,
                &format!(
                    "Tag values are 0 to {MAX_TAG_VALUE_LEN} letters, digits, spaces and _ . : / = + - @ (key {}).",
                    shorten(key)
                ),
            ));
        }
    }
    Ok(tags)
}

/// `TagQueue`.
pub(crate) async fn tag_queue(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    if input.get("Tags").is_none() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter Tags."));
    }
    let tags = read_tags(&input, "Tags")?;
    if tags.is_empty() {
        return Err(SqsError::new(Code::InvalidParameterValue, "Tags must name at least one tag."));
    }
    ctx.queue(&name, |_, _| Ok(())).await?;
    // TODO(sqs-engine): `Engine::tag(ResourceRef::Queue(&name), &tags)`.
    Err(SqsError::unsupported("Tagging a queue"))
}

/// `UntagQueue`.
pub(crate) async fn untag_queue(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    if input.get("TagKeys").is_none() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter TagKeys."));
    }
    let keys = input.str_list("TagKeys")?;
    if keys.is_empty() {
        return Err(SqsError::new(Code::InvalidParameterValue, "TagKeys must name at least one key."));
    }
    for key in &keys {
        check_key(key)?;
    }
    ctx.queue(&name, |_, _| Ok(())).await?;
    // TODO(sqs-engine): `Engine::untag(ResourceRef::Queue(&name), &keys)`. No queue has tags
    // yet, so removing any is already done.
    Ok(Map::new())
}

/// `ListQueueTags`.
pub(crate) async fn list_queue_tags(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    ctx.queue(&name, |_, _| Ok(())).await?;
    // TODO(sqs-engine): `Engine::tags(ResourceRef::Queue(&name))`; no queue has tags yet.
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::server::wire::Protocol;

    #[test]
    fn tags_follow_sqs_limits() {
        let read = |v: serde_json::Value| {
            read_tags(
                &Input { protocol: Protocol::Json, params: json!({ "Tags": v }).as_object().unwrap().clone() },
                "Tags",
            )
        };
        assert_eq!(read(json!({"team": "a b", "cost:center": "x@y"})).unwrap().len(), 2);
        assert!(read(json!({"": "x"})).is_err());
        assert!(read(json!({"aws:x": "x"})).is_err());
        assert!(read(json!({"k": "v\u{1}"})).is_err());
        assert!(read(json!({ "k".repeat(129): "v" })).is_err());
        let many: serde_json::Map<String, serde_json::Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(read(serde_json::Value::Object(many)).is_err());
    }
}
