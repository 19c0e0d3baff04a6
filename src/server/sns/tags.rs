//! Topic tags: `TagResource`, `UntagResource`, `ListTagsForResource`, and the `Tags` of
//! `CreateTopic`. The engine keeps them and checks them (50 a topic, SNS's characters).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::context::Ctx;
use super::errors::{from_engine, Code, SnsError};
use super::Output;
use crate::engine::tags::ResourceRef;
use crate::server::wire::Input;

/// Reads the `Tags` list (`[{Key, Value}]`) of a request; absent is none.
pub fn read_tags(input: &Input) -> Result<BTreeMap<String, String>, SnsError> {
    let mut tags = BTreeMap::new();
    for tag in input.struct_list("Tags")? {
        let key = tag.required_str("Key")?.to_string();
        let value = tag.str("Value")?.unwrap_or_default().to_string();
        if tags.insert(key, value).is_some() {
            return Err(SnsError::invalid("Tags", "a key is given twice"));
        }
    }
    Ok(tags)
}

/// The topic a `ResourceArn` names; SNS tags topics only.
fn topic_of(ctx: &Ctx, input: &Input) -> Result<String, SnsError> {
    let arn = input.required_str("ResourceArn")?;
    ctx.topic_from_arn("ResourceArn", arn).map_err(|e| match e.code {
        Code::NotFound => resource_not_found(),
        _ => e,
    })
}

fn resource_not_found() -> SnsError {
    SnsError::new(Code::ResourceNotFound, "Resource does not exist")
}

/// Runs `f` with the topic's name; a missing topic is `ResourceNotFound`.
async fn with_topic<T: Send + 'static>(
    ctx: &Ctx,
    name: String,
    f: impl FnOnce(&crate::Engine, &str) -> crate::Result<T> + Send + 'static,
) -> Result<T, SnsError> {
    match ctx.shared.blocking(move |e| f(e, &name)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(crate::Error::NotFound { kind: "topic", .. })) => Err(resource_not_found()),
        Ok(Err(e)) => Err(from_engine(&e)),
        Err(failed) => Err(SnsError::new(Code::InternalError, format!("The request failed: {}", failed.0))),
    }
}

/// `TagResource`.
pub(crate) async fn tag_resource(ctx: Ctx, input: Input) -> Output {
    let name = topic_of(&ctx, &input)?;
    if input.get("Tags").is_none() {
        return Err(SnsError::invalid("Tags", "the request must contain it"));
    }
    let tags = read_tags(&input)?;
    with_topic(&ctx, name, move |e, name| e.tag(ResourceRef::Topic(name), &tags)).await?;
    Ok(Map::new())
}

/// `UntagResource`.
pub(crate) async fn untag_resource(ctx: Ctx, input: Input) -> Output {
    let name = topic_of(&ctx, &input)?;
    if input.get("TagKeys").is_none() {
        return Err(SnsError::invalid("TagKeys", "the request must contain it"));
    }
    let keys = input.str_list("TagKeys")?;
    with_topic(&ctx, name, move |e, name| e.untag(ResourceRef::Topic(name), &keys)).await?;
    Ok(Map::new())
}

/// `ListTagsForResource`.
pub(crate) async fn list_tags_for_resource(ctx: Ctx, input: Input) -> Output {
    let name = topic_of(&ctx, &input)?;
    let tags = with_topic(&ctx, name, |e, name| e.tags(ResourceRef::Topic(name))).await?;
    let list: Vec<Value> = tags.into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    Ok([("Tags".to_string(), Value::Array(list))].into_iter().collect())
}
