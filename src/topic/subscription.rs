//! Subscriptions: what the catalog keeps of a durable one ([`SubscriptionDef`]), what a topic
//! holds in memory to deliver ([`Subscription`]), what callers see ([`SubscriptionInfo`]) and
//! change ([`SubscriptionChanges`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::binding::Binding;
use super::delivery_policy::DeliveryPolicy;
use super::filter::{self, FilterPolicy, FilterScope};
use super::{parse_policy, Callback};
use crate::error::{Error, Result};
use crate::queue::attributes::Attributes;

/// How a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Into a queue of this engine (SNS's `sqs`).
    Sqs,
    /// POSTs to an `http://` URL.
    Http,
    /// POSTs to an `https://` URL.
    Https,
    /// An in-process function (not durable).
    Callback,
}

impl Protocol {
    /// SNS's name (`sqs`, `http`, `https`; `callback` is weir's).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sqs => "sqs",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Callback => "callback",
        }
    }

    /// The protocol of an HTTP(S) endpoint URL.
    pub fn of_url(url: &str) -> Protocol {
        if url.len() >= 8 && url[..8].eq_ignore_ascii_case("https://") {
            Protocol::Https
        } else {
            Protocol::Http
        }
    }
}

/// A durable subscription, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDef {
    /// Id (`sub-NNNNNN`).
    pub id: String,
    /// Topic name.
    pub topic: String,
    /// The queue a queue subscription delivers to (empty for an HTTP one).
    #[serde(default)]
    pub queue: String,
    /// The URL an HTTP/HTTPS subscription POSTs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Filter policy JSON.
    pub filter_policy: Option<String>,
    /// True for body scope.
    #[serde(default)]
    pub filter_body: bool,
    /// Raw delivery.
    pub raw: bool,
    /// The queue deliveries go to when they cannot be made (SNS's `RedrivePolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    /// HTTP/HTTPS: the delivery policy JSON (SNS's `DeliveryPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_policy: Option<String>,
    /// HTTP/HTTPS: id (in the message log) of the internal queue that holds its pending
    /// deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_queue: Option<u32>,
    /// HTTP/HTTPS: the confirmation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// HTTP/HTTPS: not confirmed yet (nothing is delivered until it is).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// HTTP/HTTPS: the confirmation came with an authenticated request (not a visit of the
    /// SubscribeURL).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_authenticated: bool,
    /// An exchange's binding: the subscription takes only what its filter matches of the
    /// routing key and headers a message is routed with ([`super::Topic::route_targets`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

impl SubscriptionDef {
    /// How it delivers.
    pub fn protocol(&self) -> Protocol {
        match &self.url {
            Some(url) => Protocol::of_url(url),
            None => Protocol::Sqs,
        }
    }

    /// The filter scope it was stored with.
    pub fn filter_scope(&self) -> FilterScope {
        if self.filter_body {
            FilterScope::MessageBody
        } else {
            FilterScope::MessageAttributes
        }
    }

    /// True if both deliver the same way (what SNS compares when a subscribe names an endpoint
    /// that is subscribed already).
    pub fn same_settings(&self, other: &SubscriptionDef) -> bool {
        self.filter_policy == other.filter_policy
            && (self.filter_policy.is_none() || self.filter_body == other.filter_body)
            && self.raw == other.raw
            && self.dead_letter_queue == other.dead_letter_queue
            && self.delivery_policy == other.delivery_policy
    }

    /// Checks what the definition says, as far as it can be checked without the catalog.
    pub fn validate(&self) -> Result<()> {
        parse_policy(self.filter_policy.as_deref(), self.filter_scope())?;
        if let Some(policy) = &self.delivery_policy {
            if self.url.is_none() {
                return Err(Error::InvalidArgument("a delivery policy is for HTTP/HTTPS subscriptions only".into()));
            }
            DeliveryPolicy::parse_subscription(policy)?;
        }
        if let Some(url) = &self.url {
            validate_url(url)?;
        }
        Ok(())
    }
}

/// Longest endpoint URL weir takes.
pub const MAX_URL_LEN: usize = 2048;

/// Checks an HTTP/HTTPS endpoint: `http://` or `https://`, a host, printable ASCII.
pub fn validate_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidArgument(format!("endpoint URL {:?}: {why}", shorten(url))));
    if url.len() > MAX_URL_LEN {
        return bad("too long");
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("must be printable ASCII without spaces");
    }
    let lower = url.to_ascii_lowercase();
    let rest = match lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) {
        Some(rest) => rest,
        None => return bad("must start with http:// or https://"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return bad("has no host");
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Changes to a subscription's settable attributes; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChanges {
    /// A new filter policy (`Some(None)` removes it).
    pub filter_policy: Option<Option<String>>,
    /// A new filter scope.
    pub filter_scope: Option<FilterScope>,
    /// Raw delivery on or off.
    pub raw: Option<bool>,
    /// A new dead-letter queue (`Some(None)` removes it).
    pub dead_letter_queue: Option<Option<String>>,
    /// HTTP/HTTPS: a new delivery policy (`Some(None)` removes it).
    pub delivery_policy: Option<Option<String>>,
}

impl SubscriptionChanges {
    /// The definition with these changes.
    pub fn apply(&self, def: &SubscriptionDef) -> SubscriptionDef {
        let mut d = def.clone();
        if let Some(p) = &self.filter_policy {
            d.filter_policy = p.clone();
        }
        if let Some(scope) = self.filter_scope {
            d.filter_body = scope == FilterScope::MessageBody;
        }
        if let Some(raw) = self.raw {
            d.raw = raw;
        }
        if let Some(q) = &self.dead_letter_queue {
            d.dead_letter_queue = q.clone();
        }
        if let Some(p) = &self.delivery_policy {
            d.delivery_policy = p.clone();
        }
        d
    }
}

/// A subscription as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    /// Its id (pass it to `unsubscribe`).
    pub subscription_id: String,
    /// Topic name.
    pub topic: String,
    /// How it delivers.
    pub protocol: Protocol,
    /// `queue:NAME`, the URL of an HTTP/HTTPS subscription, or `callback`.
    pub endpoint: String,
    /// The filter policy, if any.
    pub filter_policy: Option<String>,
    /// `attributes` or `body`.
    pub filter_scope: &'static str,
    /// Raw delivery.
    pub raw: bool,
    /// Messages the policy filtered out since the engine was opened.
    pub filtered: u64,
    /// Where undeliverable messages go (a queue name), if anywhere.
    pub dead_letter_queue: Option<String>,
    /// HTTP/HTTPS: the subscription's own delivery policy (JSON), if it has one.
    pub delivery_policy: Option<String>,
    /// HTTP/HTTPS: the policy it delivers with (its own over its topic's over SNS's defaults),
    /// as SNS shows it (JSON).
    pub effective_delivery_policy: Option<String>,
    /// HTTP/HTTPS: waiting for its endpoint to confirm; nothing is delivered until then.
    pub pending_confirmation: bool,
    /// The confirmation was an authenticated request (always true for queues and callbacks).
    pub confirmation_authenticated: bool,
    /// HTTP/HTTPS: deliveries waiting to be made or retried (the confirmation request
    /// included), durable.
    pub pending_deliveries: Option<u64>,
    /// HTTP/HTTPS: deliveries given up on without a dead-letter queue since the engine was
    /// opened.
    pub dropped_deliveries: u64,
}

/// Where a subscription delivers, in memory.
pub(crate) enum Target {
    /// A queue, by name.
    Queue(String),
    /// HTTP/HTTPS: its internal delivery queue, by name.
    Http(String),
    /// A function called in the publishing thread.
    Callback { f: Callback, max_attempts: u32, dead_letter_queue: Option<String> },
}

/// One subscription as a topic holds it.
pub(crate) struct Subscription {
    pub def: SubscriptionDef,
    pub target: Target,
    pub policy: Option<FilterPolicy>,
    /// Shared by the versions of one subscription (its attributes change by replacement).
    pub filtered: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The in-memory form of a durable definition (validated already).
    pub fn durable(def: &SubscriptionDef, delivery_queue: Option<String>) -> Result<Subscription> {
        let policy = parse_policy(def.filter_policy.as_deref(), def.filter_scope())?;
        let target = match delivery_queue {
            Some(q) => Target::Http(q),
            None => Target::Queue(def.queue.clone()),
        };
        Ok(Subscription {
            def: def.clone(),
            target,
            policy,
            filtered: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// This subscription with a new definition, keeping its counters.
    pub fn replaced(&self, def: &SubscriptionDef) -> Result<Subscription> {
        let policy = parse_policy(def.filter_policy.as_deref(), def.filter_scope())?;
        let target = match &self.target {
            Target::Queue(_) => Target::Queue(def.queue.clone()),
            Target::Http(q) => Target::Http(q.clone()),
            Target::Callback { .. } => {
                return Err(Error::InvalidArgument("a callback subscription's settings cannot change".into()))
            }
        };
        Ok(Subscription {
            def: def.clone(),
            target,
            policy,
            filtered: Arc::clone(&self.filtered),
            dropped: Arc::clone(&self.dropped),
        })
    }

    pub fn protocol(&self) -> Protocol {
        match self.target {
            Target::Callback { .. } => Protocol::Callback,
            _ => self.def.protocol(),
        }
    }

    /// A publish without routing information: routed with an empty routing key and no headers.
    pub fn matches(&self, attributes: &Attributes, body: &[u8]) -> bool {
        if self.def.binding.as_ref().is_some_and(|b| !b.matches("", &[])) {
            return false;
        }
        self.policy_matches(attributes, body)
    }

    /// Whether the filter policy, if any, takes the message.
    pub fn policy_matches(&self, attributes: &Attributes, body: &[u8]) -> bool {
        let Some(policy) = &self.policy else { return true };
        match policy.scope() {
            FilterScope::MessageBody => policy.matches_body(body),
            FilterScope::MessageAttributes => policy.matches_attributes(&filter_attributes(attributes)),
        }
    }

    /// What is listed of it; `pending_deliveries` and the effective policy come from the caller
    /// (they need the store and the topic).
    pub fn info(&self, pending_deliveries: Option<u64>, effective_delivery_policy: Option<String>) -> SubscriptionInfo {
        let d = &self.def;
        let endpoint = match &self.target {
            Target::Queue(q) => format!("queue:{q}"),
            Target::Http(_) => d.url.clone().unwrap_or_default(),
            Target::Callback { .. } => "callback".into(),
        };
        let dead_letter_queue = match &self.target {
            Target::Callback { dead_letter_queue, .. } => dead_letter_queue.clone(),
            _ => d.dead_letter_queue.clone(),
        };
        SubscriptionInfo {
            subscription_id: d.id.clone(),
            topic: d.topic.clone(),
            protocol: self.protocol(),
            endpoint,
            filter_policy: self.policy.as_ref().map(|p| p.source().to_string()),
            filter_scope: match self.policy.as_ref().map(FilterPolicy::scope) {
                Some(FilterScope::MessageBody) => "body",
                _ => "attributes",
            },
            raw: d.raw,
            filtered: self.filtered.load(Ordering::Relaxed),
            dead_letter_queue,
            delivery_policy: d.delivery_policy.clone(),
            effective_delivery_policy,
            pending_confirmation: d.pending,
            confirmation_authenticated: d.url.is_none() || d.confirmed_authenticated,
            pending_deliveries,
            dropped_deliveries: self.dropped.load(Ordering::Relaxed),
        }
    }
}

fn filter_attributes(attributes: &Attributes) -> BTreeMap<String, filter::AttrValue> {
    attributes
        .iter()
        .map(|(k, v)| {
            // A custom data type (`Number.int`) filters as its base type; SNS's String.Array is
            // a JSON array of values.
            let v = match (v.data_type(), v.base_type(), v.text()) {
                ("String.Array", _, Some(s)) => match serde_json::from_str::<serde_json::Value>(s) {
                    Ok(serde_json::Value::Array(items)) => filter::AttrValue::StringArray(items),
                    _ => filter::AttrValue::String(s.to_string()),
                },
                (_, "String", Some(s)) => filter::AttrValue::String(s.to_string()),
                (_, "Number", Some(n)) => filter::AttrValue::Number(n.to_string()),
                _ => filter::AttrValue::Binary(v.as_bytes().to_vec()),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> SubscriptionDef {
        SubscriptionDef {
            id: "sub-000001".into(),
            topic: "t".into(),
            queue: "q".into(),
            url: None,
            filter_policy: None,
            filter_body: false,
            raw: false,
            dead_letter_queue: None,
            delivery_policy: None,
            delivery_queue: None,
            token: None,
            pending: false,
            confirmed_authenticated: false,
            binding: None,
        }
    }

    #[test]
    fn an_old_catalog_record_still_reads() {
        let old = r#"{"id":"sub-000001","topic":"t","queue":"q","filter_policy":null,"raw":true}"#;
        let d: SubscriptionDef = serde_json::from_str(old).unwrap();
        assert_eq!(d, SubscriptionDef { raw: true, ..def() });
        assert_eq!(d.protocol(), Protocol::Sqs);
        // And new fields are left out while unset, so queue subscriptions stay as they were.
        assert_eq!(
            serde_json::to_string(&def()).unwrap(),
            r#"{"id":"sub-000001","topic":"t","queue":"q","filter_policy":null,"filter_body":false,"raw":false}"#
        );
    }

    #[test]
    fn urls_are_checked() {
        for ok in ["http://localhost:8080/x", "https://example.com", "HTTP://h/p?q=1"] {
            validate_url(ok).unwrap();
        }
        for bad in ["ftp://x", "http://", "http:///path", "http://h/a b", "example.com", "http://:80/"] {
            assert!(validate_url(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(Protocol::of_url("HTTPS://x"), Protocol::Https);
    }

    #[test]
    fn changes_apply_only_what_they_name() {
        let changes =
            SubscriptionChanges { raw: Some(true), filter_policy: Some(Some("{}".into())), ..Default::default() };
        let d = changes.apply(&def());
        assert!(d.raw);
        assert_eq!(d.filter_policy.as_deref(), Some("{}"));
        assert_eq!(d.queue, "q");
        assert!(!def().same_settings(&d));
        assert!(d.same_settings(&d.clone()));
    }
}
