//! PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy: a stream's resource policy,
//! kept by the engine in the stream's description ([`crate::Engine::set_stream_policy`]) and
//! evaluated by [`super::access`]. A policy is read as the evaluator reads it before it is
//! stored, so a bad one is refused now, not found unreadable at the first request it should
//! decide. weir keeps policies on streams only; a consumer's ARN is refused.

use serde_json::{json, Map};

use super::errors::{from_engine, Code, KinesisError};
use super::{names, Ctx, Output};
use crate::policy::{Policy, PolicyKind};
use crate::server::sqs::errors::shorten;
use crate::server::wire::Input;

/// The stream a `ResourceARN` names.
fn stream_of(ctx: &Ctx, input: &Input) -> Result<String, KinesisError> {
    let arn = input.required_str("ResourceARN")?;
    if arn.contains("/consumer/") {
        return Err(KinesisError::invalid(
            "weir keeps resource policies on streams only; a consumer's operations are checked against its stream's policy.",
        ));
    }
    names::stream_from_arn(&ctx.shared.identity, arn)
}

fn not_found<'a>(stream: &'a str, account: &'a str) -> impl Fn(crate::Error) -> KinesisError + 'a {
    move |e| match e {
        crate::Error::NotFound { .. } => KinesisError::no_stream(stream, account),
        other => from_engine(&other),
    }
}

pub(crate) async fn put_resource_policy(ctx: Ctx, input: Input) -> Output {
    let stream = stream_of(&ctx, &input)?;
    let text = input.required_str("Policy")?.to_string();
    Policy::parse(&text, PolicyKind::Resource).map_err(|e| {
        let reason = match e {
            crate::Error::InvalidArgument(why) => why,
            other => other.to_string(),
        };
        KinesisError::invalid(format!("Invalid policy: {}", shorten(&reason)))
    })?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        engine.set_stream_policy(&stream, Some(&text)).map_err(not_found(&stream, &account))?;
        Ok(Map::new())
    })
    .await
}

pub(crate) async fn get_resource_policy(ctx: Ctx, input: Input) -> Output {
    let stream = stream_of(&ctx, &input)?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let meta = engine.stream(&stream).map_err(not_found(&stream, &account))?.meta();
        // A stream without a policy answers an empty document, as Kinesis does.
        let policy = meta.policy.unwrap_or_else(|| "{}".to_string());
        let mut out = Map::new();
        out.insert("Policy".into(), json!(policy));
        Ok(out)
    })
    .await
}

pub(crate) async fn delete_resource_policy(ctx: Ctx, input: Input) -> Output {
    let stream = stream_of(&ctx, &input)?;
    let account = ctx.account().to_string();
    let arn = ctx.stream_arn(&stream);
    ctx.engine_with(move |engine| {
        let meta = engine.stream(&stream).map_err(not_found(&stream, &account))?.meta();
        if meta.policy.is_none() {
            return Err(KinesisError::new(
                Code::ResourceNotFoundException,
                format!("No resource policy found for resource {arn}."),
            ));
        }
        engine.set_stream_policy(&stream, None).map_err(not_found(&stream, &account))?;
        Ok(Map::new())
    })
    .await
}
