//! Stream operations: create, delete, describe, list (streams and shards), reshard
//! (split, merge, update shard count), retention, mode, encryption, tags, limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::errors::{Code, KinesisError};
use super::names::{self, shard_id};
use super::{epoch_seconds, Ctx, Output};
use crate::engine::tags::{ResourceRef, Tags};
use crate::server::sqs::errors::shorten;
use crate::server::wire::Input;
use crate::stream::autoscale::ON_DEMAND_MIN_SHARDS;
use crate::stream::{ShardMeta, Stream, StreamEncryption, StreamMeta, StreamMode, StreamOptions, MAX_SHARDS};
use crate::Engine;

/// How long a `NextToken` of ListStreams or ListShards lasts, as Kinesis's.
pub const NEXT_TOKEN_LIFETIME_MS: u64 = 300_000;
const NEXT_TOKEN_PURPOSE: &str = "kinesis list page";
/// Most tags one AddTagsToStream adds, as Kinesis.
pub const MAX_TAGS_PER_CALL: usize = 10;

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn int_in(input: &Input, name: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>, KinesisError> {
    match input.int(name)? {
        Some(n) if !range.contains(&n) => Err(KinesisError::new(
            Code::ValidationException,
            format!(
                "1 validation error detected: Value '{n}' at '{name}' failed to satisfy constraint: Member must have value between {} and {}",
                range.start(),
                range.end()
            ),
        )),
        other => Ok(other),
    }
}

/// The stream of `name`, or ResourceNotFoundException in Kinesis's words.
fn stream(engine: &Engine, name: &str, account: &str) -> Result<Arc<Stream>, KinesisError> {
    engine.stream(name).map_err(|e| match e {
        crate::Error::NotFound { .. } | crate::Error::InvalidName { .. } => KinesisError::no_stream(name, account),
        other => super::errors::from_engine(&other),
    })
}

pub(crate) async fn create_stream(ctx: Ctx, input: Input) -> Output {
    let name = input.required_str("StreamName")?.to_string();
    let mode = match input.get("StreamModeDetails") {
        Some(Value::Object(details)) => match details.get("StreamMode").and_then(Value::as_str) {
            Some(m) => Some(StreamMode::parse(m).map_err(|e| KinesisError::invalid(e.to_string()))?),
            None => return Err(KinesisError::invalid("StreamModeDetails needs a StreamMode.")),
        },
        Some(_) => return Err(KinesisError::invalid("StreamModeDetails must be a structure.")),
        None => None,
    };
    let count = input.int("ShardCount")?;
    // Without a shard count or a mode, Kinesis makes an on-demand stream.
    let mode = mode.unwrap_or(if count.is_some() { StreamMode::Provisioned } else { StreamMode::OnDemand });
    let shards = match (mode, count) {
        (StreamMode::OnDemand, _) => ON_DEMAND_MIN_SHARDS as i64,
        (StreamMode::Provisioned, Some(n)) => n,
        (StreamMode::Provisioned, None) => {
            return Err(KinesisError::invalid("A provisioned stream needs a ShardCount."));
        }
    };
    if shards < 1 {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!("1 validation error detected: Value '{shards}' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ));
    }
    if shards > i64::from(MAX_SHARDS) {
        return Err(KinesisError::new(
            Code::LimitExceededException,
            format!(
                "This request would exceed the shard limit for the account {}: at most {MAX_SHARDS} shards a stream.",
                ctx.account()
            ),
        ));
    }
    let tags: Tags = input.str_map("Tags")?;
    let options = StreamOptions {
        shards: shards as u32,
        retention: None,
        throughput_limits: ctx.shared.config.kinesis_throughput_limits,
        mode,
    };
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        engine.create_stream_with_options(&name, &options).map_err(|e| match e {
            crate::Error::AlreadyExists { .. } => KinesisError::new(
                Code::ResourceInUseException,
                format!("Stream {} under account {account} already exists.", shorten(&name)),
            ),
            other => super::errors::from_engine(&other),
        })?;
        if !tags.is_empty() {
            engine.tag(ResourceRef::Stream(&name), &tags).map_err(|e| super::errors::from_engine(&e))?;
        }
        Ok(())
    })
    .await?;
    Ok(Map::new())
}

pub(crate) async fn delete_stream(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let enforce = matches!(input.get("EnforceConsumerDeletion"), Some(Value::Bool(true)));
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = stream(engine, &name, &account)?;
        if !enforce && !s.meta().consumers.is_empty() {
            return Err(KinesisError::new(
                Code::ResourceInUseException,
                format!(
                    "Stream {} has registered consumers; deregister them or pass EnforceConsumerDeletion.",
                    shorten(&name)
                ),
            ));
        }
        engine.delete_stream(&name).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

/// A shard as DescribeStream and ListShards describe it.
fn shard_json(s: &Stream, meta: &ShardMeta) -> Value {
    let mut out = json!({
        "ShardId": shard_id(meta.id),
        "HashKeyRange": {"StartingHashKey": meta.hash_start.to_string(), "EndingHashKey": meta.hash_end.to_string()},
    });
    let (first, next) =
        s.shard(meta.id).map_or((meta.initial_seq, meta.initial_seq), |sh| (sh.log().first_seq(), sh.log().next_seq()));
    let mut range = json!({"StartingSequenceNumber": names::seq(first)});
    if !meta.open {
        range["EndingSequenceNumber"] = Value::String(names::position_seq(next.max(first + 1)));
    }
    out["SequenceNumberRange"] = range;
    if let Some(parent) = meta.parents.first() {
        out["ParentShardId"] = Value::String(shard_id(*parent));
    }
    if let Some(adjacent) = meta.parents.get(1) {
        out["AdjacentParentShardId"] = Value::String(shard_id(*adjacent));
    }
    out
}

fn status_fields(ctx: &Ctx, meta: &StreamMeta) -> Map<String, Value> {
    let mut out = map(json!({
        "StreamName": meta.name,
        "StreamARN": ctx.stream_arn(&meta.name),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": meta.mode.as_str()},
        "RetentionPeriodHours": meta.retention_ms / 3_600_000,
        "StreamCreationTimestamp": epoch_seconds(meta.created_ms),
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": meta.encryption.as_ref().map_or("NONE", |e| e.encryption_type.as_str()),
    }));
    if let Some(e) = &meta.encryption {
        out.insert("KeyId".into(), Value::String(e.key_id.clone()));
    }
    out
}

pub(crate) async fn describe_stream(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let limit = int_in(&input, "Limit", 1..=10_000)?.unwrap_or(100) as usize;
    let after = input.str("ExclusiveStartShardId")?.map(names::parse_shard_id).transpose()?;
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let s = stream(engine, &name, &account)?;
        let meta = s.meta();
        let mut shards: Vec<&ShardMeta> = meta.shards.iter().filter(|sh| after.is_none_or(|a| sh.id > a)).collect();
        shards.sort_by_key(|sh| sh.id);
        let more = shards.len() > limit;
        let listed: Vec<Value> = shards.iter().take(limit).map(|sh| shard_json(&s, sh)).collect();
        let mut description = status_fields(&c, &meta);
        description.insert("Shards".into(), Value::Array(listed));
        description.insert("HasMoreShards".into(), Value::Bool(more));
        Ok(map(json!({"StreamDescription": description})))
    })
    .await
}

pub(crate) async fn describe_stream_summary(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let meta = stream(engine, &name, &account)?.meta();
        let mut summary = status_fields(&c, &meta);
        summary.insert("OpenShardCount".into(), Value::from(meta.open_shards().count()));
        summary.insert("ConsumerCount".into(), Value::from(meta.consumers.len()));
        Ok(map(json!({"StreamDescriptionSummary": summary})))
    })
    .await
}

/// What a page token of ListStreams or ListShards carries.
#[derive(Debug, Serialize, Deserialize)]
struct Page {
    /// ListShards: the stream and its incarnation.
    #[serde(default)]
    stream: Option<(String, u64)>,
    /// The last stream name or shard id listed.
    after: String,
    /// ListShards: the filter, as given.
    #[serde(default)]
    filter: Option<Value>,
}

fn seal_page(engine: &Engine, page: &Page) -> Result<String, KinesisError> {
    let payload = serde_json::to_vec(page).map_err(|e| KinesisError::new(Code::InternalFailure, e.to_string()))?;
    engine.seal_token(NEXT_TOKEN_PURPOSE, &payload).map_err(|e| super::errors::from_engine(&e))
}

fn open_page(engine: &Engine, token: &str) -> Result<Page, KinesisError> {
    let invalid = || KinesisError::invalid(format!("Invalid NextToken {}.", shorten(token)));
    let opened = engine.open_token(NEXT_TOKEN_PURPOSE, token).map_err(|_| invalid())?;
    if engine.clock().now_ms().saturating_sub(opened.sealed_ms) > NEXT_TOKEN_LIFETIME_MS {
        return Err(KinesisError::new(
            Code::ExpiredNextTokenException,
            "The NextToken has expired (tokens last 300 seconds).",
        ));
    }
    serde_json::from_slice(&opened.payload).map_err(|_| invalid())
}

/// The stream a ListShards `NextToken` pages through, if the token is one this engine sealed
/// (for the authorization hook, which needs the stream before the operation reads the token).
pub(crate) fn stream_of_page(engine: &Engine, token: &str) -> Option<String> {
    let opened = engine.open_token(NEXT_TOKEN_PURPOSE, token).ok()?;
    serde_json::from_slice::<Page>(&opened.payload).ok()?.stream.map(|(name, _)| name)
}

pub(crate) async fn list_streams(ctx: Ctx, input: Input) -> Output {
    let limit = int_in(&input, "Limit", 1..=10_000)?.unwrap_or(100) as usize;
    let start = input.str("ExclusiveStartStreamName")?.map(str::to_string);
    let token = input.str("NextToken")?.map(str::to_string);
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let after = match &token {
            Some(t) => Some(open_page(engine, t)?.after),
            None => start,
        };
        let names: Vec<String> =
            engine.list_streams().into_iter().filter(|n| after.as_ref().is_none_or(|a| n > a)).collect();
        let more = names.len() > limit;
        let page: Vec<String> = names.into_iter().take(limit).collect();
        let summaries: Vec<Value> = page
            .iter()
            .filter_map(|n| engine.stream(n).ok())
            .map(|s| {
                let meta = s.meta();
                json!({
                    "StreamName": meta.name,
                    "StreamARN": c.stream_arn(&meta.name),
                    "StreamStatus": "ACTIVE",
                    "StreamModeDetails": {"StreamMode": meta.mode.as_str()},
                    "StreamCreationTimestamp": epoch_seconds(meta.created_ms),
                })
            })
            .collect();
        let mut out = map(json!({"StreamNames": page, "HasMoreStreams": more, "StreamSummaries": summaries}));
        if let (true, Some(last)) = (more, page.last()) {
            let token = seal_page(engine, &Page { stream: None, after: last.clone(), filter: None })?;
            out.insert("NextToken".into(), Value::String(token));
        }
        Ok(out)
    })
    .await
}

/// Whether a shard passes a filter.
type ShardTest = Box<dyn Fn(&ShardMeta) -> bool>;

/// Which shards a ListShards filter keeps.
fn filter_keeps(filter: &Value, meta: &StreamMeta, now_ms: u64) -> Result<ShardTest, KinesisError> {
    let kind =
        filter.get("Type").and_then(Value::as_str).ok_or_else(|| KinesisError::invalid("ShardFilter needs a Type."))?;
    let time = || -> Result<u64, KinesisError> {
        let seconds = filter
            .get("Timestamp")
            .and_then(Value::as_f64)
            .ok_or_else(|| KinesisError::invalid(format!("ShardFilter of type {kind} needs a Timestamp.")))?;
        Ok((seconds.max(0.0) * 1000.0) as u64)
    };
    let horizon = now_ms.saturating_sub(meta.retention_ms);
    Ok(match kind {
        "AFTER_SHARD_ID" => {
            let id = filter
                .get("ShardId")
                .and_then(Value::as_str)
                .ok_or_else(|| KinesisError::invalid("ShardFilter of type AFTER_SHARD_ID needs a ShardId."))?;
            let id = names::parse_shard_id(id)?;
            Box::new(move |s| s.id > id)
        }
        "AT_LATEST" => Box::new(|s| s.open),
        "AT_TRIM_HORIZON" => Box::new(move |s| s.open_at(horizon)),
        "FROM_TRIM_HORIZON" => Box::new(move |s| s.open || s.closed_ms > horizon),
        "AT_TIMESTAMP" => {
            let t = time()?;
            Box::new(move |s| s.open_at(t))
        }
        "FROM_TIMESTAMP" => {
            let t = time()?;
            Box::new(move |s| s.open || s.closed_ms > t)
        }
        other => return Err(KinesisError::invalid(format!("Unknown ShardFilter type {}.", shorten(other)))),
    })
}

pub(crate) async fn list_shards(ctx: Ctx, input: Input) -> Output {
    let token = input.str("NextToken")?.map(str::to_string);
    let named = input.str("StreamName")?.is_some() || input.str("StreamARN")?.is_some();
    if token.is_some() && (named || input.get("ExclusiveStartShardId").is_some() || input.get("ShardFilter").is_some())
    {
        return Err(KinesisError::invalid(
            "NextToken and StreamName, ExclusiveStartShardId or ShardFilter cannot be given together.",
        ));
    }
    let name = if token.is_some() { None } else { Some(ctx.stream_name(&input)?) };
    let limit = int_in(&input, "MaxResults", 1..=10_000)?.unwrap_or(1000) as usize;
    let after = input.str("ExclusiveStartShardId")?.map(names::parse_shard_id).transpose()?;
    let filter = input.get("ShardFilter").cloned();
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let (name, incarnation, after, filter) = match &token {
            Some(t) => {
                let page = open_page(engine, t)?;
                let (name, incarnation) = page.stream.ok_or_else(|| KinesisError::invalid("Invalid NextToken."))?;
                let after = names::parse_shard_id(&page.after)?;
                (name, Some(incarnation), Some(after), page.filter)
            }
            None => (name.unwrap_or_default(), None, after, filter),
        };
        let s = stream(engine, &name, &account)?;
        let meta = s.meta();
        if incarnation.is_some_and(|i| i != meta.incarnation) {
            return Err(KinesisError::no_stream(&name, &account));
        }
        let keeps = match &filter {
            Some(f) => filter_keeps(f, &meta, engine.clock().now_ms())?,
            None => Box::new(|_: &ShardMeta| true),
        };
        let mut shards: Vec<&ShardMeta> =
            meta.shards.iter().filter(|sh| after.is_none_or(|a| sh.id > a) && keeps(sh)).collect();
        shards.sort_by_key(|sh| sh.id);
        let more = shards.len() > limit;
        let listed: Vec<Value> = shards.iter().take(limit).map(|sh| shard_json(&s, sh)).collect();
        let mut out = map(json!({"Shards": listed}));
        if let (true, Some(last)) = (more, shards.get(limit.saturating_sub(1))) {
            let page = Page { stream: Some((name.clone(), meta.incarnation)), after: shard_id(last.id), filter };
            out.insert("NextToken".into(), Value::String(seal_page(engine, &page)?));
        }
        Ok(out)
    })
    .await
}

fn shard_param(input: &Input, name: &str) -> Result<u32, KinesisError> {
    names::parse_shard_id(input.required_str(name)?)
}

fn hash_key(input: &Input, name: &str) -> Result<u128, KinesisError> {
    let text = input.required_str(name)?;
    parse_hash_key(name, text)
}

/// A hash key: a decimal integer from 0 to 2^128 - 1.
pub(crate) fn parse_hash_key(name: &str, text: &str) -> Result<u128, KinesisError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!("1 validation error detected: Value '{}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})", shorten(text)),
        ));
    }
    text.parse::<u128>().map_err(|_| {
        KinesisError::invalid(format!("{name} {} is not in the hash key range 0 to 2^128 - 1.", shorten(text)))
    })
}

pub(crate) async fn split_shard(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let shard = shard_param(&input, "ShardToSplit")?;
    let at = hash_key(&input, "NewStartingHashKey")?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.split_shard(&name, shard, Some(at)).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

pub(crate) async fn merge_shards(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let shard = shard_param(&input, "ShardToMerge")?;
    let adjacent = shard_param(&input, "AdjacentShardToMerge")?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.merge_shards(&name, shard, adjacent).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

pub(crate) async fn update_shard_count(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let target = int_in(&input, "TargetShardCount", 1..=100_000)?
        .ok_or_else(|| KinesisError::from(crate::server::wire::ParamError::Missing("TargetShardCount".into())))?;
    match input.required_str("ScalingType")? {
        "UNIFORM_SCALING" => {}
        other => {
            return Err(KinesisError::invalid(format!("ScalingType must be UNIFORM_SCALING, not {}.", shorten(other))))
        }
    }
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let s = stream(engine, &name, &account)?;
        let current = s.meta().open_shards().count();
        if s.meta().mode == StreamMode::OnDemand {
            return Err(KinesisError::new(
                Code::ValidationException,
                "UpdateShardCount is for provisioned streams; this one is ON_DEMAND.",
            ));
        }
        engine
            .update_shard_count(&name, u32::try_from(target).unwrap_or(u32::MAX))
            .map_err(|e| super::errors::from_engine(&e))?;
        Ok(map(json!({
            "StreamName": name,
            "StreamARN": c.stream_arn(&name),
            "CurrentShardCount": current,
            "TargetShardCount": target,
        })))
    })
    .await
}

async fn change_retention(ctx: Ctx, input: Input, increase: bool) -> Output {
    let name = ctx.stream_name(&input)?;
    let hours = int_in(&input, "RetentionPeriodHours", 1..=100_000)?
        .ok_or_else(|| KinesisError::from(crate::server::wire::ParamError::Missing("RetentionPeriodHours".into())))?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = stream(engine, &name, &account)?;
        let current = s.meta().retention_ms / 3_600_000;
        let hours = hours as u64;
        if increase && hours < current {
            return Err(KinesisError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                shorten(&name)
            )));
        }
        if !increase && hours > current {
            return Err(KinesisError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                shorten(&name)
            )));
        }
        engine.set_stream_retention(&name, Duration::from_secs(hours * 3600)).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

pub(crate) async fn increase_retention(ctx: Ctx, input: Input) -> Output {
    change_retention(ctx, input, true).await
}

pub(crate) async fn decrease_retention(ctx: Ctx, input: Input) -> Output {
    change_retention(ctx, input, false).await
}

pub(crate) async fn update_stream_mode(ctx: Ctx, input: Input) -> Output {
    let arn = input.required_str("StreamARN")?;
    let name = names::stream_from_arn(&ctx.shared.identity, arn)?;
    let mode = match input.get("StreamModeDetails") {
        Some(Value::Object(details)) => details.get("StreamMode").and_then(Value::as_str).map(StreamMode::parse),
        _ => None,
    };
    let mode = mode
        .ok_or_else(|| KinesisError::from(crate::server::wire::ParamError::Missing("StreamModeDetails".into())))?
        .map_err(|e| KinesisError::invalid(e.to_string()))?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.set_stream_mode(&name, mode).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

async fn set_encryption(ctx: Ctx, input: Input, start: bool) -> Output {
    let name = ctx.stream_name(&input)?;
    let kind = input.required_str("EncryptionType")?.to_string();
    let key_id = input.required_str("KeyId")?.to_string();
    if kind != "KMS" {
        return Err(KinesisError::invalid(format!("EncryptionType must be KMS, not {}.", shorten(&kind))));
    }
    if key_id.is_empty() || key_id.len() > 2048 {
        return Err(KinesisError::new(Code::ValidationException, "KeyId must be 1 to 2048 characters."));
    }
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = stream(engine, &name, &account)?;
        // Without a key nothing is encrypted at rest: say so rather than report a stream as
        // encrypted. With one every stream is sealed already; the setting is kept and shown.
        if start && !engine.encrypted_at_rest() {
            return Err(KinesisError::invalid(format!(
                "Stream {} cannot be encrypted: {}.",
                shorten(&name),
                crate::server::sqs::queue_attributes::NO_KEY
            )));
        }
        let encryption = start.then_some(StreamEncryption { encryption_type: kind, key_id });
        if !start && s.meta().encryption.is_none() {
            return Ok(());
        }
        engine.set_stream_encryption(&name, encryption).map_err(|e| super::errors::from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}

pub(crate) async fn start_encryption(ctx: Ctx, input: Input) -> Output {
    set_encryption(ctx, input, true).await
}

pub(crate) async fn stop_encryption(ctx: Ctx, input: Input) -> Output {
    set_encryption(ctx, input, false).await
}

fn tag_error(e: crate::Error) -> KinesisError {
    match e {
        crate::Error::InvalidArgument(reason) => KinesisError::invalid(reason),
        other => super::errors::from_engine(&other),
    }
}

pub(crate) async fn add_tags(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let tags = input.str_map("Tags")?;
    if tags.is_empty() || tags.len() > MAX_TAGS_PER_CALL {
        return Err(KinesisError::invalid(format!(
            "AddTagsToStream takes 1 to {MAX_TAGS_PER_CALL} tags, not {}.",
            tags.len()
        )));
    }
    tag(ctx, name, tags).await
}

async fn tag(ctx: Ctx, name: String, tags: Tags) -> Output {
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.tag(ResourceRef::Stream(&name), &tags).map_err(tag_error)
    })
    .await?;
    Ok(Map::new())
}

async fn untag(ctx: Ctx, name: String, keys: Vec<String>) -> Output {
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.untag(ResourceRef::Stream(&name), &keys).map_err(tag_error)
    })
    .await?;
    Ok(Map::new())
}

async fn tags_of(ctx: &Ctx, name: String) -> Result<Tags, KinesisError> {
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        stream(engine, &name, &account)?;
        engine.tags(ResourceRef::Stream(&name)).map_err(|e| super::errors::from_engine(&e))
    })
    .await
}

fn tag_list<'a>(tags: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<Value> {
    tags.map(|(k, v)| json!({"Key": k, "Value": v})).collect()
}

pub(crate) async fn remove_tags(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let keys = input.str_list("TagKeys")?;
    if keys.is_empty() || keys.len() > 50 {
        return Err(KinesisError::invalid("RemoveTagsFromStream takes 1 to 50 tag keys."));
    }
    untag(ctx, name, keys).await
}

pub(crate) async fn list_tags(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let limit = int_in(&input, "Limit", 1..=50)?.unwrap_or(50) as usize;
    let start = input.str("ExclusiveStartTagKey")?.map(str::to_string);
    let tags = tags_of(&ctx, name).await?;
    let after: BTreeMap<&String, &String> =
        tags.iter().filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s)).collect();
    let more = after.len() > limit;
    Ok(map(json!({"Tags": tag_list(after.into_iter().take(limit)), "HasMoreTags": more})))
}

fn resource_stream(ctx: &Ctx, input: &Input) -> Result<String, KinesisError> {
    let arn = input.required_str("ResourceARN")?;
    if arn.contains("/consumer/") {
        return Err(KinesisError::invalid("Tags on consumers are not kept by weir; tag the stream."));
    }
    names::stream_from_arn(&ctx.shared.identity, arn)
}

pub(crate) async fn tag_resource(ctx: Ctx, input: Input) -> Output {
    let name = resource_stream(&ctx, &input)?;
    let tags = input.str_map("Tags")?;
    tag(ctx, name, tags).await
}

pub(crate) async fn untag_resource(ctx: Ctx, input: Input) -> Output {
    let name = resource_stream(&ctx, &input)?;
    let keys = input.str_list("TagKeys")?;
    untag(ctx, name, keys).await
}

pub(crate) async fn list_tags_for_resource(ctx: Ctx, input: Input) -> Output {
    let name = resource_stream(&ctx, &input)?;
    let tags = tags_of(&ctx, name).await?;
    Ok(map(json!({"Tags": tag_list(tags.iter())})))
}

pub(crate) async fn describe_limits(ctx: Ctx, _input: Input) -> Output {
    ctx.engine_with(|engine| {
        let (mut open, mut on_demand) = (0usize, 0usize);
        for name in engine.list_streams() {
            if let Ok(s) = engine.stream(&name) {
                let meta = s.meta();
                open += meta.open_shards().count();
                on_demand += usize::from(meta.mode == StreamMode::OnDemand);
            }
        }
        Ok(map(json!({
            "ShardLimit": MAX_SHARDS,
            "OpenShardCount": open,
            "OnDemandStreamCount": on_demand,
            "OnDemandStreamCountLimit": 50,
        })))
    })
    .await
}
