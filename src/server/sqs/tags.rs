//! Queue tags: `TagQueue`, `UntagQueue`, `ListQueueTags`, and the `tags` of `CreateQueue`,
//! with SQS's limits, kept by the engine (`Engine::tag`, `untag`, `tags`). Removing a tag a
//! queue does not have succeeds, as SQS.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::context::Ctx;
use super::errors::{shorten, Code, SqsError};
use super::limits::{MAX_TAGS, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
use super::Output;
use crate::engine::tags::ResourceRef;
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
    ctx.queue(&name, move |e, q| e.tag(ResourceRef::Queue(q.name()), &tags)).await?;
    Ok(Map::new())
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
    ctx.queue(&name, move |e, q| e.untag(ResourceRef::Queue(q.name()), &keys)).await?;
    Ok(Map::new())
}

/// `ListQueueTags`.
pub(crate) async fn list_queue_tags(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let tags = ctx.queue(&name, |e, q| e.tags(ResourceRef::Queue(q.name()))).await?;
    let mut out = Map::new();
    if !tags.is_empty() {
        out.insert("Tags".into(), Value::Object(tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    }
    Ok(out)
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
