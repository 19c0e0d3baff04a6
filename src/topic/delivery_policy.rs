//! SNS delivery policies for HTTP/HTTPS subscriptions: how often and how far apart a failed
//! delivery is retried, how fast deliveries go out, and the request's content type.
//!
//! A subscription's policy (`{"healthyRetryPolicy": {..}, "throttlePolicy": {..},
//! "requestPolicy": {..}}`) overrides its topic's (`{"http": {"defaultHealthyRetryPolicy": {..},
//! "disableSubscriptionOverrides": bool, "defaultThrottlePolicy": {..}, "defaultRequestPolicy":
//! {..}}}`, with an `"https"` key for HTTPS subscriptions if it differs) unless the topic
//! disables overrides. Missing fields take SNS's defaults: 3 retries, 20 seconds apart.
//!
//! The retries run in four phases, as SNS describes them: `numNoDelayRetries` at once,
//! `numMinDelayRetries` `minDelayTarget` apart, the backoff phase (the retries left over) from
//! `minDelayTarget` to `maxDelayTarget` along the backoff function, then `numMaxDelayRetries`
//! `maxDelayTarget` apart. SNS does not publish its backoff curves; weir's, for the backoff
//! phase's retry `j` of `n` with `t = (j - 1) / (n - 1)` (0 when `n` is 1) and `d = max - min`:
//! linear `min + d·t`, arithmetic `min + d·t²` (the steps grow by a constant), geometric
//! `min·(max/min)^t` (each delay a constant multiple of the last), exponential
//! `min + d·(2^(10t) - 1)/1023` (flat, then steep). Delays are whole seconds, without jitter.
//!
//! Pure: no clock, no I/O.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// SNS's default number of retries of an HTTP/HTTPS delivery.
pub const DEFAULT_NUM_RETRIES: u32 = 3;
/// SNS's default delay between retries, seconds (both the minimum and the maximum).
pub const DEFAULT_DELAY_S: u32 = 20;
/// Most retries a policy may ask for, as SNS.
pub const MAX_NUM_RETRIES: u32 = 100;
/// Longest delay between two retries, and longest total time of all retries, seconds (SNS's
/// hard limit of an hour).
pub const MAX_RETRY_TIME_S: u32 = 3600;
/// The content type of a delivery without a request policy, as SNS.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// Largest delivery policy document, bytes (weir's bound; real ones are a few hundred).
pub const MAX_POLICY_BYTES: usize = 16 << 10;

/// Content types a request policy may choose (optionally with `; charset=...`).
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/xml",
    "text/xml",
    "text/html",
    "application/x-www-form-urlencoded",
];

/// How delays grow through the backoff phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    /// Evenly from the minimum to the maximum delay.
    #[default]
    Linear,
    /// Steps that grow by a constant.
    Arithmetic,
    /// Each delay a constant multiple of the last.
    Geometric,
    /// Flat at first, steep at the end.
    Exponential,
}

impl Backoff {
    fn name(self) -> &'static str {
        match self {
            Backoff::Linear => "linear",
            Backoff::Arithmetic => "arithmetic",
            Backoff::Geometric => "geometric",
            Backoff::Exponential => "exponential",
        }
    }

    fn parse(s: &str) -> Option<Backoff> {
        match s.to_ascii_lowercase().as_str() {
            "linear" => Some(Backoff::Linear),
            "arithmetic" => Some(Backoff::Arithmetic),
            "geometric" => Some(Backoff::Geometric),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }
}

/// A retry policy (SNS's `healthyRetryPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay of the pre-backoff phase and first delay of the backoff phase, seconds.
    pub min_delay_s: u32,
    /// Last delay of the backoff phase and delay of the post-backoff phase, seconds.
    pub max_delay_s: u32,
    /// Retries in all (the first attempt not counted).
    pub num_retries: u32,
    /// Retries at once, first.
    pub num_no_delay_retries: u32,
    /// Retries `min_delay_s` apart, next.
    pub num_min_delay_retries: u32,
    /// Retries `max_delay_s` apart, last.
    pub num_max_delay_retries: u32,
    /// The backoff phase's curve.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay_s: DEFAULT_DELAY_S,
            max_delay_s: DEFAULT_DELAY_S,
            num_retries: DEFAULT_NUM_RETRIES,
            num_no_delay_retries: 0,
            num_min_delay_retries: 0,
            num_max_delay_retries: 0,
            backoff: Backoff::Linear,
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `retry` (1 for the first retry), or `None` when the
    /// policy allows no such retry.
    pub fn delay_before_retry(&self, retry: u32) -> Option<Duration> {
        if retry == 0 || retry > self.num_retries {
            return None;
        }
        let no_delay = self.num_no_delay_retries;
        let min_phase = no_delay + self.num_min_delay_retries;
        let backoff_end = self.num_retries - self.num_max_delay_retries;
        let seconds = if retry <= no_delay {
            0.0
        } else if retry <= min_phase {
            f64::from(self.min_delay_s)
        } else if retry <= backoff_end {
            let n = backoff_end - min_phase;
            let j = retry - min_phase;
            let t = if n <= 1 { 0.0 } else { f64::from(j - 1) / f64::from(n - 1) };
            self.backoff_delay(t)
        } else {
            f64::from(self.max_delay_s)
        };
        Some(Duration::from_secs(seconds.round().max(0.0) as u64))
    }

    fn backoff_delay(&self, t: f64) -> f64 {
        let (min, max) = (f64::from(self.min_delay_s), f64::from(self.max_delay_s));
        let d = max - min;
        match self.backoff {
            Backoff::Linear => min + d * t,
            Backoff::Arithmetic => min + d * t * t,
            Backoff::Geometric => min * (max / min).powf(t),
            Backoff::Exponential => min + d * ((10.0 * t).exp2() - 1.0) / 1023.0,
        }
    }

    /// Seconds all retries wait in all.
    pub fn total_delay_s(&self) -> u64 {
        (1..=self.num_retries).filter_map(|r| self.delay_before_retry(r)).map(|d| d.as_secs()).sum()
    }

    fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("delivery policy: {why}")));
        if self.min_delay_s < 1 || self.min_delay_s > self.max_delay_s {
            return bad(format!(
                "minDelayTarget must be at least 1 and at most maxDelayTarget ({}), not {}",
                self.max_delay_s, self.min_delay_s
            ));
        }
        if self.max_delay_s > MAX_RETRY_TIME_S {
            return bad(format!("maxDelayTarget must be at most {MAX_RETRY_TIME_S}, not {}", self.max_delay_s));
        }
        if self.num_retries > MAX_NUM_RETRIES {
            return bad(format!("numRetries must be 0 to {MAX_NUM_RETRIES}, not {}", self.num_retries));
        }
        let phases = u64::from(self.num_no_delay_retries)
            + u64::from(self.num_min_delay_retries)
            + u64::from(self.num_max_delay_retries);
        if phases > u64::from(self.num_retries) {
            return bad(format!(
                "numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries ({phases}) must not exceed numRetries ({})",
                self.num_retries
            ));
        }
        let total = self.total_delay_s();
        if total > u64::from(MAX_RETRY_TIME_S) {
            return bad(format!(
                "the retries would take {total} s; the total retry time is at most {MAX_RETRY_TIME_S} s"
            ));
        }
        Ok(())
    }

    fn to_json(self) -> Value {
        json!({
            "minDelayTarget": self.min_delay_s,
            "maxDelayTarget": self.max_delay_s,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay_retries,
            "numNoDelayRetries": self.num_no_delay_retries,
            "numMinDelayRetries": self.num_min_delay_retries,
            "backoffFunction": self.backoff.name(),
        })
    }

    /// Reads a `healthyRetryPolicy` object over `base` (fields it leaves out keep their value).
    fn read(value: &Value, base: RetryPolicy, what: &str) -> Result<RetryPolicy> {
        let Value::Object(map) = value else {
            return Err(Error::InvalidArgument(format!("delivery policy: {what} must be an object")));
        };
        let mut p = base;
        for (key, v) in map {
            match key.as_str() {
                "minDelayTarget" => p.min_delay_s = count(v, key)?,
                "maxDelayTarget" => p.max_delay_s = count(v, key)?,
                "numRetries" => p.num_retries = count(v, key)?,
                "numNoDelayRetries" => p.num_no_delay_retries = count(v, key)?,
                "numMinDelayRetries" => p.num_min_delay_retries = count(v, key)?,
                "numMaxDelayRetries" => p.num_max_delay_retries = count(v, key)?,
                "backoffFunction" => {
                    p.backoff = v.as_str().and_then(Backoff::parse).ok_or_else(|| {
                        Error::InvalidArgument(
                            "delivery policy: backoffFunction must be linear, arithmetic, geometric or exponential"
                                .into(),
                        )
                    })?
                }
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "delivery policy: {what} has no field {:?}",
                        shorten(other)
                    )))
                }
            }
        }
        p.validate()?;
        Ok(p)
    }
}

/// What an HTTP/HTTPS subscription delivers with: its retries, rate and content type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryPolicy {
    /// Retries after a failed attempt.
    pub retry: RetryPolicy,
    /// Most deliveries a second (`throttlePolicy.maxReceivesPerSecond`); `None`: no limit.
    pub max_receives_per_second: Option<u32>,
    /// The request's `Content-Type` (`requestPolicy.headerContentType`); `None`: text/plain.
    pub content_type: Option<String>,
}

impl DeliveryPolicy {
    /// The content type deliveries are sent with.
    pub fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE)
    }

    /// Parses and checks a subscription's `DeliveryPolicy` attribute.
    pub fn parse_subscription(json: &str) -> Result<DeliveryPolicy> {
        let map = parse_object(json)?;
        let mut policy = DeliveryPolicy::default();
        for (key, v) in &map {
            match key.as_str() {
                "healthyRetryPolicy" => {
                    if !v.is_null() {
                        policy.retry = RetryPolicy::read(v, RetryPolicy::default(), key)?
                    }
                }
                "throttlePolicy" => policy.max_receives_per_second = throttle(v, "maxReceivesPerSecond")?,
                "requestPolicy" => policy.content_type = content_type(v, "headerContentType")?,
                // What GetSubscriptionAttributes shows in EffectiveDeliveryPolicy, so a policy
                // read back and set again is accepted.
                "sicklyRetryPolicy" | "guaranteed" => {}
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "delivery policy: unknown field {:?} (a subscription's policy has healthyRetryPolicy, \
                         throttlePolicy and requestPolicy)",
                        shorten(other)
                    )))
                }
            }
        }
        Ok(policy)
    }

    /// The policy as SNS shows it in a subscription's `EffectiveDeliveryPolicy`.
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("healthyRetryPolicy".into(), self.retry.to_json());
        map.insert("sicklyRetryPolicy".into(), Value::Null);
        map.insert(
            "throttlePolicy".into(),
            self.max_receives_per_second.map_or(Value::Null, |n| json!({"maxReceivesPerSecond": n})),
        );
        map.insert("requestPolicy".into(), json!({"headerContentType": self.content_type()}));
        map.insert("guaranteed".into(), Value::Bool(false));
        Value::Object(map).to_string()
    }
}

/// A topic's defaults for one protocol (`http` or `https`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtocolDefaults {
    /// `defaultHealthyRetryPolicy`.
    pub retry: Option<RetryPolicy>,
    /// `disableSubscriptionOverrides`: the topic's policy wins over a subscription's.
    pub disable_subscription_overrides: bool,
    /// `defaultThrottlePolicy.maxReceivesPerSecond`.
    pub max_receives_per_second: Option<u32>,
    /// `defaultRequestPolicy.headerContentType`.
    pub content_type: Option<String>,
}

/// A topic's `DeliveryPolicy` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicDeliveryPolicy {
    /// Defaults for `http` subscriptions (and `https` ones when `https` is absent).
    pub http: Option<ProtocolDefaults>,
    /// Defaults for `https` subscriptions.
    pub https: Option<ProtocolDefaults>,
}

impl TopicDeliveryPolicy {
    /// Parses and checks a topic's `DeliveryPolicy` attribute.
    pub fn parse(json: &str) -> Result<TopicDeliveryPolicy> {
        let map = parse_object(json)?;
        let mut policy = TopicDeliveryPolicy::default();
        for (key, v) in &map {
            let defaults = match key.as_str() {
                "http" => &mut policy.http,
                "https" => &mut policy.https,
                // Other protocols' policies cannot be changed in SNS; accepted and ignored.
                "sqs" | "lambda" | "firehose" | "application" | "email" | "email-json" | "sms" => continue,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "delivery policy: unknown protocol {:?} (a topic's policy has \"http\" and \"https\")",
                        shorten(other)
                    )))
                }
            };
            *defaults = Some(ProtocolDefaults::read(v, key)?);
        }
        Ok(policy)
    }

    /// The defaults that apply to a subscription of this protocol.
    pub fn for_protocol(&self, https: bool) -> Option<&ProtocolDefaults> {
        if https {
            self.https.as_ref().or(self.http.as_ref())
        } else {
            self.http.as_ref()
        }
    }
}

impl ProtocolDefaults {
    fn read(value: &Value, what: &str) -> Result<ProtocolDefaults> {
        let Value::Object(map) = value else {
            return Err(Error::InvalidArgument(format!("delivery policy: {what} must be an object")));
        };
        let mut d = ProtocolDefaults::default();
        for (key, v) in map {
            match key.as_str() {
                "defaultHealthyRetryPolicy" => {
                    if !v.is_null() {
                        d.retry = Some(RetryPolicy::read(v, RetryPolicy::default(), key)?)
                    }
                }
                "disableSubscriptionOverrides" => {
                    d.disable_subscription_overrides = v.as_bool().ok_or_else(|| {
                        Error::InvalidArgument(
                            "delivery policy: disableSubscriptionOverrides must be true or false".into(),
                        )
                    })?
                }
                "defaultThrottlePolicy" => d.max_receives_per_second = throttle(v, "maxReceivesPerSecond")?,
                "defaultRequestPolicy" => d.content_type = content_type(v, "headerContentType")?,
                "defaultSicklyRetryPolicy" => {}
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "delivery policy: {what} has no field {:?}",
                        shorten(other)
                    )))
                }
            }
        }
        Ok(d)
    }
}

/// The policy an HTTP/HTTPS subscription delivers with: its own, over its topic's defaults
/// for the protocol (unless the topic disables subscription overrides), over SNS's defaults.
pub fn effective(
    topic: Option<&TopicDeliveryPolicy>,
    subscription: Option<&DeliveryPolicy>,
    https: bool,
) -> DeliveryPolicy {
    let defaults = topic.and_then(|t| t.for_protocol(https));
    let from_topic = DeliveryPolicy {
        retry: defaults.and_then(|d| d.retry).unwrap_or_default(),
        max_receives_per_second: defaults.and_then(|d| d.max_receives_per_second),
        content_type: defaults.and_then(|d| d.content_type.clone()),
    };
    match subscription {
        Some(_) if defaults.is_some_and(|d| d.disable_subscription_overrides) => from_topic,
        Some(sub) => DeliveryPolicy {
            retry: sub.retry,
            max_receives_per_second: sub.max_receives_per_second.or(from_topic.max_receives_per_second),
            content_type: sub.content_type.clone().or(from_topic.content_type),
        },
        None => from_topic,
    }
}

/// A topic's `EffectiveDeliveryPolicy`: its `http` defaults with SNS's filled in.
pub fn effective_topic_json(topic: Option<&TopicDeliveryPolicy>) -> String {
    let defaults = topic.and_then(|t| t.http.clone()).unwrap_or_default();
    let mut http = Map::new();
    http.insert("defaultHealthyRetryPolicy".into(), defaults.retry.unwrap_or_default().to_json());
    http.insert("disableSubscriptionOverrides".into(), Value::Bool(defaults.disable_subscription_overrides));
    if let Some(n) = defaults.max_receives_per_second {
        http.insert("defaultThrottlePolicy".into(), json!({"maxReceivesPerSecond": n}));
    }
    http.insert(
        "defaultRequestPolicy".into(),
        json!({"headerContentType": defaults.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE)}),
    );
    json!({ "http": Value::Object(http) }).to_string()
}

fn parse_object(json: &str) -> Result<Map<String, Value>> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(Error::InvalidArgument(format!("delivery policy: at most {MAX_POLICY_BYTES} bytes")));
    }
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::InvalidArgument("delivery policy: must be a JSON object".into())),
        Err(e) => Err(Error::InvalidArgument(format!("delivery policy: not valid JSON ({e})"))),
    }
}

/// A whole number of at most u32, from a JSON number (or a string of digits, which SNS takes).
fn count(v: &Value, key: &str) -> Result<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::InvalidArgument(format!("delivery policy: {key} must be a whole number")))
}

fn throttle(v: &Value, key: &str) -> Result<Option<u32>> {
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(Error::InvalidArgument("delivery policy: a throttle policy must be an object".into()))
        };
    };
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => {
            let n = count(n, key)?;
            if n == 0 {
                return Err(Error::InvalidArgument(format!("delivery policy: {key} must be at least 1")));
            }
            Ok(Some(n))
        }
    }
}

fn content_type(v: &Value, key: &str) -> Result<Option<String>> {
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(Error::InvalidArgument("delivery policy: a request policy must be an object".into()))
        };
    };
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let base = s.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            let printable = s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if !printable || !CONTENT_TYPES.contains(&base.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "delivery policy: {key} must be one of {} (optionally with a charset)",
                    CONTENT_TYPES.join(", ")
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(Error::InvalidArgument(format!("delivery policy: {key} must be a string"))),
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(p: &RetryPolicy) -> Vec<u64> {
        (1..=p.num_retries).map(|r| p.delay_before_retry(r).unwrap().as_secs()).collect()
    }

    #[test]
    fn the_default_is_three_retries_twenty_seconds_apart() {
        let p = DeliveryPolicy::parse_subscription("{}").unwrap();
        assert_eq!(delays(&p.retry), [20, 20, 20]);
        assert_eq!(p.retry.delay_before_retry(4), None);
        assert_eq!(p.retry.delay_before_retry(0), None);
        assert_eq!(p.content_type(), "text/plain; charset=UTF-8");
    }

    #[test]
    fn a_linear_backoff_from_twenty_to_forty_is_twenty_thirty_forty() {
        // SNS's own example of the backoff phase.
        let p = DeliveryPolicy::parse_subscription(r#"{"healthyRetryPolicy":{"maxDelayTarget":40}}"#).unwrap();
        assert_eq!(delays(&p.retry), [20, 30, 40]);
    }

    #[test]
    fn the_four_phases_come_in_order() {
        let json = r#"{"healthyRetryPolicy":{"numRetries":9,"numNoDelayRetries":2,"numMinDelayRetries":2,
            "numMaxDelayRetries":2,"minDelayTarget":5,"maxDelayTarget":65,"backoffFunction":"linear"}}"#;
        let p = DeliveryPolicy::parse_subscription(json).unwrap();
        assert_eq!(delays(&p.retry), [0, 0, 5, 5, 5, 35, 65, 65, 65]);
    }

    #[test]
    fn every_backoff_function_goes_from_the_minimum_to_the_maximum() {
        for f in ["linear", "arithmetic", "geometric", "exponential"] {
            let json = format!(
                r#"{{"healthyRetryPolicy":{{"numRetries":10,"minDelayTarget":5,"maxDelayTarget":260,"backoffFunction":"{f}"}}}}"#
            );
            let d = delays(&DeliveryPolicy::parse_subscription(&json).unwrap().retry);
            assert_eq!((d[0], d[9]), (5, 260), "{f}: {d:?}");
            assert!(d.windows(2).all(|w| w[0] <= w[1]), "{f} is not increasing: {d:?}");
        }
        // The curves differ as documented: linear above arithmetic above exponential midway.
        let mid = |f: &str| {
            let json = format!(
                r#"{{"healthyRetryPolicy":{{"numRetries":11,"minDelayTarget":5,"maxDelayTarget":260,"backoffFunction":"{f}"}}}}"#
            );
            DeliveryPolicy::parse_subscription(&json).unwrap().retry.delay_before_retry(6).unwrap().as_secs()
        };
        assert_eq!(mid("linear"), 133);
        assert!(mid("linear") > mid("arithmetic") && mid("arithmetic") > mid("geometric"));
        assert!(mid("geometric") > mid("exponential"));
    }

    #[test]
    fn policies_sns_refuses_are_refused() {
        for bad in [
            "[]",
            "not json",
            r#"{"healthyRetryPolicy":{"numRetries":101}}"#,
            r#"{"healthyRetryPolicy":{"minDelayTarget":0}}"#,
            r#"{"healthyRetryPolicy":{"minDelayTarget":30,"maxDelayTarget":20}}"#,
            r#"{"healthyRetryPolicy":{"maxDelayTarget":3601}}"#,
            r#"{"healthyRetryPolicy":{"numRetries":2,"numNoDelayRetries":3}}"#,
            r#"{"healthyRetryPolicy":{"numRetries":100,"minDelayTarget":60,"maxDelayTarget":60}}"#,
            r#"{"healthyRetryPolicy":{"backoffFunction":"cubic"}}"#,
            r#"{"healthyRetryPolicy":{"numRetries":-1}}"#,
            r#"{"healthyRetryPolicy":{"surprise":1}}"#,
            r#"{"throttlePolicy":{"maxReceivesPerSecond":0}}"#,
            r#"{"requestPolicy":{"headerContentType":"image/png"}}"#,
            r#"{"other":{}}"#,
        ] {
            assert!(DeliveryPolicy::parse_subscription(bad).is_err(), "{bad} accepted");
        }
        assert!(TopicDeliveryPolicy::parse(r#"{"ftp":{}}"#).is_err());
        assert!(TopicDeliveryPolicy::parse(r#"{"http":{"disableSubscriptionOverrides":"yes"}}"#).is_err());
    }

    #[test]
    fn a_subscription_overrides_its_topic_unless_the_topic_forbids_it() {
        let topic = TopicDeliveryPolicy::parse(
            r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5},"defaultThrottlePolicy":{"maxReceivesPerSecond":7},
                "defaultRequestPolicy":{"headerContentType":"application/json"}}}"#,
        )
        .unwrap();
        let sub = DeliveryPolicy::parse_subscription(r#"{"healthyRetryPolicy":{"numRetries":1}}"#).unwrap();
        let e = effective(Some(&topic), Some(&sub), false);
        assert_eq!(e.retry.num_retries, 1);
        assert_eq!(e.max_receives_per_second, Some(7));
        assert_eq!(e.content_type(), "application/json");
        assert_eq!(effective(Some(&topic), None, true).retry.num_retries, 5, "https falls back to http");
        let locked = TopicDeliveryPolicy::parse(
            r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5},"disableSubscriptionOverrides":true}}"#,
        )
        .unwrap();
        assert_eq!(effective(Some(&locked), Some(&sub), false).retry.num_retries, 5);
        assert_eq!(effective(None, None, false), DeliveryPolicy::default());
    }

    #[test]
    fn effective_policies_read_back_as_policies() {
        let p = DeliveryPolicy::parse_subscription(
            r#"{"healthyRetryPolicy":{"numRetries":4,"minDelayTarget":2,"maxDelayTarget":9}}"#,
        )
        .unwrap();
        let back = DeliveryPolicy::parse_subscription(&p.to_json()).unwrap();
        assert_eq!((back.retry, back.max_receives_per_second, back.content_type()), (p.retry, None, p.content_type()));
        let topic = effective_topic_json(None);
        assert!(TopicDeliveryPolicy::parse(&topic).is_ok(), "{topic}");
    }
}
