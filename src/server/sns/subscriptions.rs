//! Subscriptions: `Subscribe`, `Unsubscribe`, `ConfirmSubscription`, `ListSubscriptions`,
//! `ListSubscriptionsByTopic`, `GetSubscriptionAttributes`, `SetSubscriptionAttributes`.
//!
//! `sqs` subscriptions name a queue by its ARN and are confirmed at once; `http` and `https`
//! ones start pending, with a confirmation request queued for the endpoint.
//! `ConfirmSubscription` (or a visit of the request's SubscribeURL, which routes here too)
//! confirms them.

use serde_json::{json, Map, Value};

use super::attributes::{endpoint, subscription_attributes, subscription_change};
use super::context::Ctx;
use super::errors::{shorten, SnsError};
use super::{parse_bool, Output, PAGE_SIZE};
use crate::server::wire::Input;
use crate::topic::{Endpoint, Protocol, SubscribeOptions, SubscriptionChanges, SubscriptionInfo};

/// What SNS answers for the ARN of a subscription that waits for its confirmation.
const PENDING_ARN: &str = "pending confirmation";
/// What SNS lists as the ARN of such a subscription.
const PENDING_LISTED: &str = "PendingConfirmation";

/// `Subscribe`.
pub(crate) async fn subscribe(ctx: Ctx, input: Input) -> Output {
    let topic = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let protocol = input.required_str("Protocol")?.to_ascii_lowercase();
    let target = input.str("Endpoint")?.unwrap_or_default();
    let endpoint = match protocol.as_str() {
        "sqs" => Endpoint::Queue(ctx.queue_from_arn("SQS endpoint ARN", target)?),
        "http" | "https" => {
            if !target.to_ascii_lowercase().starts_with(&format!("{protocol}://")) {
                return Err(SnsError::invalid("Endpoint", format!("a {protocol} endpoint is a {protocol}:// URL")));
            }
            Endpoint::Http(target.to_string())
        }
        "email" | "email-json" | "sms" | "lambda" | "application" | "firehose" => {
            return Err(SnsError::invalid(
                "Protocol",
                format!("{protocol} subscriptions are not served by this endpoint (sqs, http and https are)"),
            ))
        }
        other => return Err(SnsError::invalid("Protocol", format!("{} is not an SNS protocol", shorten(other)))),
    };
    let mut changes = SubscriptionChanges::default();
    for (name, value) in input.str_map("Attributes")? {
        subscription_change(&ctx, &mut changes, &name, &value)?;
    }
    let options = SubscribeOptions {
        filter_policy: changes.filter_policy.flatten(),
        filter_scope: changes.filter_scope.unwrap_or_default(),
        raw: changes.raw.unwrap_or(false),
        dead_letter_queue: changes.dead_letter_queue.flatten(),
        delivery_policy: changes.delivery_policy.flatten(),
        ..SubscribeOptions::default()
    };
    let return_arn = input.str("ReturnSubscriptionArn")?.map(|v| parse_bool("ReturnSubscriptionArn", v)).transpose()?;
    let name = topic.clone();
    let info = ctx
        .engine(move |e| {
            let id = e.subscribe(&name, endpoint, options)?;
            e.subscription(&id)
        })
        .await?;
    if info.pending_confirmation {
        ctx.nudge_deliveries();
    }
    let arn = if info.pending_confirmation && return_arn != Some(true) {
        PENDING_ARN.to_string()
    } else {
        ctx.context().subscription_arn(&topic, &info.subscription_id)
    };
    Ok(one("SubscriptionArn", arn))
}

/// `ConfirmSubscription`, also what a visit of a confirmation request's SubscribeURL runs.
pub(crate) async fn confirm_subscription(ctx: Ctx, input: Input) -> Output {
    let topic = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let token = input.required_str("Token")?.to_string();
    if token.is_empty() || token.len() > 1024 {
        return Err(SnsError::invalid("Token", ""));
    }
    // AuthenticateOnUnsubscribe is accepted; every request may unsubscribe (signatures are
    // not checked), so it changes nothing but what ConfirmationWasAuthenticated says.
    let authenticated = ctx.authenticated()
        || input
            .str("AuthenticateOnUnsubscribe")?
            .map(|v| parse_bool("AuthenticateOnUnsubscribe", v))
            .transpose()?
            .unwrap_or(false);
    let name = topic.clone();
    let id = ctx.engine(move |e| e.confirm_subscription(&name, &token, authenticated)).await?;
    ctx.nudge_deliveries();
    Ok(one("SubscriptionArn", ctx.context().subscription_arn(&topic, &id)))
}

/// `Unsubscribe` (also what a visit of an UnsubscribeURL runs). A subscription that does not
/// exist any more is gone already: success, as SNS.
pub(crate) async fn unsubscribe(ctx: Ctx, input: Input) -> Output {
    let arn = input.required_str("SubscriptionArn")?;
    if arn == PENDING_ARN || arn == PENDING_LISTED {
        return Err(SnsError::invalid("SubscriptionArn", "a pending subscription has no ARN yet"));
    }
    let id = ctx.subscription_from_arn(arn)?;
    ctx.engine(move |e| match e.unsubscribe(&id) {
        Err(crate::Error::NotFound { kind: "subscription", .. }) => Ok(()),
        other => other,
    })
    .await?;
    Ok(Map::new())
}

/// `GetSubscriptionAttributes`.
pub(crate) async fn get_subscription_attributes(ctx: Ctx, input: Input) -> Output {
    let id = ctx.subscription_from_arn(input.required_str("SubscriptionArn")?)?;
    let info = ctx.engine(move |e| e.subscription(&id)).await?;
    Ok([("Attributes".to_string(), Value::Object(subscription_attributes(&ctx, &info)))].into_iter().collect())
}

/// `SetSubscriptionAttributes`: one attribute.
pub(crate) async fn set_subscription_attributes(ctx: Ctx, input: Input) -> Output {
    let id = ctx.subscription_from_arn(input.required_str("SubscriptionArn")?)?;
    let name = input.required_str("AttributeName")?;
    let value = input.str("AttributeValue")?.unwrap_or_default();
    let mut changes = SubscriptionChanges::default();
    subscription_change(&ctx, &mut changes, name, value)?;
    ctx.engine(move |e| e.set_subscription_attributes(&id, &changes)).await?;
    Ok(Map::new())
}

/// `ListSubscriptions`, 100 a page; `NextToken` is the position of the next one.
pub(crate) async fn list_subscriptions(ctx: Ctx, input: Input) -> Output {
    let start = next_token(&input)?;
    let all = ctx.engine(|e| Ok(e.list_all_subscriptions())).await?;
    Ok(page(&ctx, &all, start))
}

/// `ListSubscriptionsByTopic`, 100 a page.
pub(crate) async fn list_subscriptions_by_topic(ctx: Ctx, input: Input) -> Output {
    let topic = ctx.topic_from_arn("TopicArn", input.required_str("TopicArn")?)?;
    let start = next_token(&input)?;
    let subs = ctx.engine(move |e| e.list_subscriptions(&topic)).await?;
    Ok(page(&ctx, &subs, start))
}

fn next_token(input: &Input) -> Result<usize, SnsError> {
    match input.str("NextToken")? {
        None => Ok(0),
        Some(t) => t.parse::<usize>().map_err(|_| SnsError::invalid("NextToken", "")),
    }
}

fn page(ctx: &Ctx, subs: &[SubscriptionInfo], start: usize) -> Map<String, Value> {
    let c = ctx.context();
    // Callbacks are in-process: an SNS client has nothing to make of them.
    let listed: Vec<&SubscriptionInfo> = subs.iter().filter(|s| s.protocol != Protocol::Callback).collect();
    let items: Vec<Value> = listed
        .iter()
        .skip(start)
        .take(PAGE_SIZE)
        .map(|s| {
            let arn = if s.pending_confirmation {
                PENDING_LISTED.to_string()
            } else {
                c.subscription_arn(&s.topic, &s.subscription_id)
            };
            json!({
                "SubscriptionArn": arn,
                "Owner": ctx.account(),
                "Protocol": s.protocol.as_str(),
                "Endpoint": endpoint(ctx, s),
                "TopicArn": c.topic_arn(&s.topic),
            })
        })
        .collect();
    let mut out: Map<String, Value> = [("Subscriptions".to_string(), Value::Array(items))].into_iter().collect();
    if listed.len() > start.saturating_add(PAGE_SIZE) {
        out.insert("NextToken".into(), Value::String((start + PAGE_SIZE).to_string()));
    }
    out
}

fn one(name: &str, value: String) -> Map<String, Value> {
    [(name.to_string(), Value::String(value))].into_iter().collect()
}
