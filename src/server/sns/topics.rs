//! Topics: `CreateTopic`, `DeleteTopic`, `ListTopics`, `GetTopicAttributes`,
//! `SetTopicAttributes`.

use serde_json::{json, Map, Value};

use super::attributes::{set_topic_attribute, topic_attributes};
use super::context::Ctx;
use super::errors::SnsError;
use super::tags::read_tags;
use super::{Output, PAGE_SIZE};
use crate::server::wire::Input;
use crate::topic::{TopicAttributes, TopicConfig};

/// `CreateTopic`.
pub(crate) async fn create_topic(ctx: Ctx, input: Input) -> Output {
    let name = input.required_str("Name")?.to_string();
    let mut config = TopicConfig { fifo: name.ends_with(".fifo"), content_based_dedup: false };
    let mut attributes = TopicAttributes::default();
    let given = input.str_map("Attributes")?;
    if given.get("FifoTopic").is_some_and(|v| v.eq_ignore_ascii_case("true")) != config.fifo {
        return Err(SnsError::invalid(
            "Topic Name",
            "a FIFO topic's name ends in .fifo and its FifoTopic attribute is true, and only then",
        ));
    }
    for (key, value) in &given {
        set_topic_attribute(&mut config, &mut attributes, key, value, true)?;
    }
    let tags = read_tags(&input)?;
    let arn = ctx.context().topic_arn(&name);
    ctx.engine(move |e| e.create_topic_with(&name, config, attributes, &tags)).await?;
    Ok(map([("TopicArn", Value::String(arn))]))
}

/// `DeleteTopic`. Deleting a topic that does not exist succeeds, as SNS.
pub(crate) async fn delete_topic(ctx: Ctx, input: Input) -> Output {
    let name = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    ctx.engine(move |e| match e.delete_topic(&name) {
        Err(crate::Error::NotFound { kind: "topic", .. }) => Ok(()),
        other => other,
    })
    .await?;
    Ok(Map::new())
}

/// `ListTopics`, 100 a page. `NextToken` is the name of the next topic.
pub(crate) async fn list_topics(ctx: Ctx, input: Input) -> Output {
    let after = input.str("NextToken")?.map(str::to_string);
    let names = ctx.engine(|e| Ok(e.list_topics())).await?;
    // Names are sorted: the page starts at the token's name, or where it would be.
    let start = match after.as_deref() {
        None => 0,
        Some("") => return Err(SnsError::invalid("NextToken", "")),
        Some(token) => names.partition_point(|n| n.as_str() < token),
    };
    let context = ctx.context();
    let page: Vec<Value> =
        names.iter().skip(start).take(PAGE_SIZE).map(|n| json!({ "TopicArn": context.topic_arn(n) })).collect();
    let mut out = map([("Topics", Value::Array(page))]);
    if let Some(next) = names.get(start + PAGE_SIZE) {
        out.insert("NextToken".into(), Value::String(next.clone()));
    }
    Ok(out)
}

/// `GetTopicAttributes`.
pub(crate) async fn get_topic_attributes(ctx: Ctx, input: Input) -> Output {
    let name = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let info = ctx.engine(move |e| e.topic_info(&name)).await?;
    Ok(map([("Attributes", Value::Object(topic_attributes(&ctx, &info)))]))
}

/// `SetTopicAttributes`: one attribute, under the catalog lock.
pub(crate) async fn set_topic_attributes(ctx: Ctx, input: Input) -> Output {
    let name = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let attribute = input.required_str("AttributeName")?.to_string();
    let value = input.str("AttributeValue")?.unwrap_or_default().to_string();
    if attribute == "FifoTopic" {
        return Err(SnsError::invalid("AttributeName", "FifoTopic is set when the topic is created"));
    }
    // Checked before the engine is called, so a bad name answers as SNS does whatever the topic.
    set_topic_attribute(&mut TopicConfig::default(), &mut TopicAttributes::default(), &attribute, &value, false)?;
    let outcome = ctx
        .engine(move |e| {
            let mut refused = None;
            e.update_topic(&name, |config, attributes| {
                if let Err(error) = set_topic_attribute(config, attributes, &attribute, &value, false) {
                    refused = Some(error);
                }
                Ok(())
            })?;
            Ok(refused)
        })
        .await?;
    match outcome {
        Some(error) => Err(error),
        None => Ok(Map::new()),
    }
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
