//! Queue operations: create, find, list, attributes, purge, delete, dead-letter sources.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::context::Ctx;
use super::errors::{from_engine, Code, SqsError};
use super::limits::{int_in_range, MAX_LIST_RESULTS};
use super::queue_attributes::{
    self, apply, fifo_from_attributes, require_key_for_encryption, wire_default_config, Purpose,
};
use super::tags;
use super::Output;
use crate::server::wire::Input;

/// `CreateQueue`.
pub(crate) async fn create_queue(ctx: Ctx, input: Input) -> Output {
    let name = input.required_str("QueueName")?.to_string();
    if crate::names::validate_queue_name("queue", &name, name.ends_with(".fifo")).is_err() {
        return Err(SqsError::new(
            Code::InvalidParameterValue,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. A FIFO queue name ends in .fifo.",
        ));
    }
    let attributes = input.str_map("Attributes")?;
    let fifo = fifo_from_attributes(&name, &attributes)?;
    let mut config = wire_default_config(fifo);
    apply(&mut config, &attributes, &ctx.shared.identity, Purpose::Create)?;
    require_key_for_encryption(&attributes, ctx.shared.engine.encrypted_at_rest())?;
    let tags = tags::read_tags(&input, "tags")?;
    // SQS: a queue that exists is returned when the attributes given match its own; those not
    // given are not compared (an application may create its queue at every start without
    // repeating how it was set up). Its tags are left alone.
    let (identity, create_name) = (ctx.shared.identity.clone(), name.clone());
    let outcome = ctx
        .engine(move |e| {
            let Ok(existing) = e.queue(&create_name).map(|q| q.config()) else {
                return e.create_queue_with(&create_name, config, &tags).map(Ok);
            };
            let mut asked = existing.clone();
            Ok(match apply(&mut asked, &attributes, &identity, Purpose::Create) {
                Ok(()) if asked == existing => Ok(()),
                Ok(()) => Err(from_engine(&crate::Error::AlreadyExists { kind: "queue", name: create_name })),
                Err(refused) => Err(refused),
            })
        })
        .await?;
    outcome?;
    Ok(queue_url(&ctx, &name))
}

fn queue_url(ctx: &Ctx, name: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("QueueUrl".into(), ctx.url(name).into());
    out
}

/// `GetQueueUrl`.
pub(crate) async fn get_queue_url(ctx: Ctx, input: Input) -> Output {
    let name = input.required_str("QueueName")?.to_string();
    if let Some(owner) = input.str("QueueOwnerAWSAccountId")? {
        if owner != ctx.shared.identity.account_id {
            return Err(SqsError::no_queue());
        }
    }
    ctx.queue(&name, |_, _| Ok(())).await?;
    Ok(queue_url(&ctx, &name))
}

/// A page of names: `MaxResults` (1-1000; without it up to 1000 and no token) from after
/// `NextToken` (an opaque encoding of the last name of the previous page).
fn page(input: &Input, names: Vec<String>) -> Result<(Vec<String>, Option<String>), SqsError> {
    let max = int_in_range(input, "MaxResults", 1, MAX_LIST_RESULTS as u64)?.map(|n| n as usize);
    let after = match input.str("NextToken")? {
        None | Some("") => None,
        Some(token) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::invalid_parameter("NextToken", token, "Invalid NextToken value."))?,
        ),
    };
    let mut rest: Vec<String> = names.into_iter().filter(|n| after.as_ref().is_none_or(|a| n > a)).collect();
    let limit = max.unwrap_or(MAX_LIST_RESULTS);
    let more = rest.len() > limit;
    rest.truncate(limit);
    let token = (more && max.is_some())
        .then(|| rest.last().map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)))
        .flatten();
    Ok((rest, token))
}

fn urls(ctx: &Ctx, key: &str, names: &[String], token: Option<String>) -> Map<String, Value> {
    let mut out = Map::new();
    if !names.is_empty() {
        out.insert(key.into(), Value::Array(names.iter().map(|n| Value::String(ctx.url(n))).collect()));
    }
    if let Some(t) = token {
        out.insert("NextToken".into(), t.into());
    }
    out
}

/// `ListQueues`.
pub(crate) async fn list_queues(ctx: Ctx, input: Input) -> Output {
    let prefix = input.str("QueueNamePrefix")?.unwrap_or_default().to_string();
    let mut names = ctx.engine(|e| Ok(e.list_queues())).await?;
    names.retain(|n| n.starts_with(&prefix));
    names.sort();
    let (names, token) = page(&input, names)?;
    Ok(urls(&ctx, "QueueUrls", &names, token))
}

/// `GetQueueAttributes`.
pub(crate) async fn get_queue_attributes(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let asked = input.str_list("AttributeNames")?;
    let attributes = ctx.queue(&name, |_, q| Ok(q.attributes())).await?;
    let rendered = queue_attributes::render(&asked, &attributes, &ctx.shared.identity)?;
    let mut out = Map::new();
    if !rendered.is_empty() {
        out.insert(
            "Attributes".into(),
            Value::Object(rendered.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        );
    }
    Ok(out)
}

/// `SetQueueAttributes`.
pub(crate) async fn set_queue_attributes(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    if input.get("Attributes").is_none() {
        return Err(SqsError::new(Code::MissingParameter, "The request must contain the parameter Attributes."));
    }
    let attributes = input.str_map("Attributes")?;
    require_key_for_encryption(&attributes, ctx.shared.engine.encrypted_at_rest())?;
    let identity = ctx.shared.identity.clone();
    let set_name = name.clone();
    // Read, change and write under the engine's catalog lock, so a concurrent change (another
    // SetQueueAttributes, an AddPermission) is never lost; an SQS error of the change itself
    // comes back through `refused`.
    let outcome = ctx
        .queue(&name, move |engine, _| {
            let mut refused = None;
            let updated = engine.update_queue_config(&set_name, |current| {
                let mut config = current.clone();
                match apply(&mut config, &attributes, &identity, Purpose::Set) {
                    Ok(()) => Ok(config),
                    Err(e) => {
                        let reason = e.message.clone();
                        refused = Some(e);
                        Err(crate::Error::InvalidArgument(reason))
                    }
                }
            });
            match (updated, refused) {
                (_, Some(e)) => Ok(Err(e)),
                (result, None) => result.map(Ok),
            }
        })
        .await?;
    outcome?;
    Ok(Map::new())
}

/// `PurgeQueue`.
pub(crate) async fn purge_queue(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    // One purge a minute: the engine's PurgeInProgress answers PurgeQueueInProgress (403).
    ctx.queue(&name, |_, q| q.purge()).await?;
    Ok(Map::new())
}

/// `DeleteQueue`.
pub(crate) async fn delete_queue(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let delete = name.clone();
    ctx.queue(&name, move |e, _| e.delete_queue(&delete)).await?;
    Ok(Map::new())
}

/// `ListDeadLetterSourceQueues`.
pub(crate) async fn list_dead_letter_source_queues(ctx: Ctx, input: Input) -> Output {
    let name = ctx.queue_name(&input)?;
    let dlq = name.clone();
    let mut sources = ctx
        .queue(&name, move |e, _| {
            Ok(e.list_queues()
                .into_iter()
                .filter(|n| e.queue(n).is_ok_and(|q| q.config().redrive.is_some_and(|r| r.dead_letter_queue == dlq)))
                .collect::<Vec<_>>())
        })
        .await?;
    sources.sort();
    let (names, token) = page(&input, sources)?;
    let mut out = urls(&ctx, "queueUrls", &names, token);
    out.entry("queueUrls").or_insert_with(|| Value::Array(Vec::new()));
    Ok(out)
}
