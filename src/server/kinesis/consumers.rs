//! Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer,
//! ListStreamConsumers and DeregisterStreamConsumer. A consumer is named by its stream's ARN
//! and its name, or by its own ARN (which carries its creation time, so the ARN of a consumer
//! deregistered and registered again names the old one no more).

use serde_json::{json, Map, Value};

use super::errors::{from_engine, Code, KinesisError};
use super::names;
use super::{epoch_seconds, Ctx, Output};
use crate::server::sqs::errors::shorten;
use crate::server::wire::Input;
use crate::stream::ConsumerMeta;
use crate::Engine;

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn consumer_json(ctx: &Ctx, stream: &str, c: &ConsumerMeta, now_ms: u64, with_stream: bool) -> Value {
    let mut out = json!({
        "ConsumerName": c.name,
        "ConsumerARN": names::consumer_arn(&ctx.shared.identity, stream, &c.name, c.created_ms),
        "ConsumerStatus": c.status(now_ms).as_str(),
        "ConsumerCreationTimestamp": epoch_seconds(c.created_ms),
    });
    if with_stream {
        out["StreamARN"] = Value::String(ctx.stream_arn(stream));
    }
    out
}

/// The (stream, consumer) a request names: `ConsumerARN`, or `StreamARN` with `ConsumerName`.
fn named(ctx: &Ctx, input: &Input) -> Result<(String, String, Option<u64>), KinesisError> {
    if let Some(arn) = input.str("ConsumerARN")? {
        let (stream, consumer, seconds) = names::consumer_from_arn(&ctx.shared.identity, arn)?;
        return Ok((stream, consumer, Some(seconds)));
    }
    let (Some(arn), Some(consumer)) = (input.str("StreamARN")?, input.str("ConsumerName")?) else {
        return Err(KinesisError::invalid("Either ConsumerARN, or StreamARN and ConsumerName, must be given."));
    };
    Ok((names::stream_from_arn(&ctx.shared.identity, arn)?, consumer.to_string(), None))
}

/// The consumer a request names, checked against its ARN's creation time.
pub(crate) fn find(
    engine: &Engine,
    stream: &str,
    consumer: &str,
    seconds: Option<u64>,
    account: &str,
) -> Result<ConsumerMeta, KinesisError> {
    let s = engine.stream(stream).map_err(|_| KinesisError::no_stream(stream, account))?;
    let not_found = || {
        KinesisError::new(
            Code::ResourceNotFoundException,
            format!(
                "Consumer {} under stream {} under account {account} not found.",
                shorten(consumer),
                shorten(stream)
            ),
        )
    };
    let c = s.fanout_consumer(consumer).map_err(|_| not_found())?;
    if seconds.is_some_and(|t| t != c.created_ms / 1000) {
        return Err(not_found());
    }
    Ok(c)
}

pub(crate) async fn register(ctx: Ctx, input: Input) -> Output {
    let stream = names::stream_from_arn(&ctx.shared.identity, input.required_str("StreamARN")?)?;
    let consumer = input.required_str("ConsumerName")?.to_string();
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        engine.stream(&stream).map_err(|_| KinesisError::no_stream(&stream, &account))?;
        let meta = engine.register_stream_consumer(&stream, &consumer).map_err(|e| match e {
            crate::Error::AlreadyExists { .. } => KinesisError::new(
                Code::ResourceInUseException,
                format!(
                    "Consumer {} under stream {} already exists for account {account}.",
                    shorten(&consumer),
                    shorten(&stream)
                ),
            ),
            other => from_engine(&other),
        })?;
        Ok(map(json!({"Consumer": consumer_json(&c, &stream, &meta, engine.clock().now_ms(), false)})))
    })
    .await
}

pub(crate) async fn describe(ctx: Ctx, input: Input) -> Output {
    let (stream, consumer, seconds) = named(&ctx, &input)?;
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let meta = find(engine, &stream, &consumer, seconds, &account)?;
        Ok(map(json!({"ConsumerDescription": consumer_json(&c, &stream, &meta, engine.clock().now_ms(), true)})))
    })
    .await
}

pub(crate) async fn list(ctx: Ctx, input: Input) -> Output {
    let stream = names::stream_from_arn(&ctx.shared.identity, input.required_str("StreamARN")?)?;
    let limit = match input.int("MaxResults")? {
        None => 100,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(_) => return Err(KinesisError::new(Code::ValidationException, "MaxResults must be 1 to 10000.")),
    };
    // At most 20 consumers: a token is the number listed before it.
    let skip = match input.str("NextToken")? {
        Some(t) => {
            t.parse::<usize>().map_err(|_| KinesisError::invalid(format!("Invalid NextToken {}.", shorten(t))))?
        }
        None => 0,
    };
    let account = ctx.account().to_string();
    let c = ctx.clone();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&stream).map_err(|_| KinesisError::no_stream(&stream, &account))?;
        let now = engine.clock().now_ms();
        let consumers = s.meta().consumers;
        let listed: Vec<Value> =
            consumers.iter().skip(skip).take(limit).map(|m| consumer_json(&c, &stream, m, now, false)).collect();
        let mut out = map(json!({"Consumers": listed}));
        if skip + limit < consumers.len() {
            out.insert("NextToken".into(), Value::String((skip + limit).to_string()));
        }
        Ok(out)
    })
    .await
}

pub(crate) async fn deregister(ctx: Ctx, input: Input) -> Output {
    let (stream, consumer, seconds) = named(&ctx, &input)?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        find(engine, &stream, &consumer, seconds, &account)?;
        engine.deregister_stream_consumer(&stream, &consumer).map_err(|e| from_engine(&e))
    })
    .await?;
    Ok(Map::new())
}
