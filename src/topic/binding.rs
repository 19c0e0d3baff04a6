//! Exchanges and bindings: a topic that routes like an AMQP exchange. An exchange is a topic
//! with an [`ExchangeDef`] (its kind and lifetime); a binding is a queue subscription with a
//! [`Binding`] (its key and the filter the exchange's kind makes of it). A fanout exchange is a
//! topic without filters; direct and topic exchanges filter on the routing key a message is
//! routed with ([`crate::topic::Topic::route`]); headers exchanges on its headers. Pure.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How an exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeKind {
    /// To every bound queue.
    Fanout,
    /// To queues bound with the routing key itself.
    Direct,
    /// To queues bound with a pattern of the routing key's dot-separated words (`*` one word,
    /// `#` zero or more).
    Topic,
    /// To queues bound with headers that all (or any) match the message's.
    Headers,
}

impl ExchangeKind {
    /// AMQP's name: `fanout`, `direct`, `topic`, `headers`.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Direct => "direct",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }

    /// Parses AMQP's name.
    pub fn parse(name: &str) -> Option<ExchangeKind> {
        Some(match name {
            "fanout" => ExchangeKind::Fanout,
            "direct" => ExchangeKind::Direct,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            _ => return None,
        })
    }
}

/// What makes a topic an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeDef {
    /// How it routes.
    pub kind: ExchangeKind,
    /// Kept across restarts; a non-durable exchange is deleted when the engine opens again.
    pub durable: bool,
    /// Deleted (by the broker) once its last binding goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Only other exchanges may publish to it (weir has no exchange-to-exchange bindings, so
    /// clients cannot publish to it at all).
    #[serde(default)]
    pub internal: bool,
}

/// A headers binding's pairs: a header's name and the value's bytes (hex of the type-tagged
/// encoding), or `None` to ask only that the header be present.
pub type HeaderPairs = Vec<(String, Option<String>)>;

/// What a binding matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteFilter {
    /// Everything (fanout).
    All,
    /// The routing key equals this one (direct).
    Key(String),
    /// The routing key matches this pattern (topic).
    Pattern(String),
    /// Headers (headers): `pairs` of a name and the value's bytes, or `None` to ask only that
    /// the header be present; all must match, or with `any` at least one.
    Headers {
        /// At least one pair instead of all.
        any: bool,
        /// Name and value (hex of the value's type-tagged bytes, as the protocol encodes it).
        pairs: HeaderPairs,
    },
    /// The routing key is an MQTT topic name matching this MQTT topic filter (`/` levels,
    /// `+` and `#` wildcards; see [`crate::topic::mqtt_filter`]).
    Mqtt(String),
}

/// A queue's binding to an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The binding key as given (with the arguments, what names the binding for an unbind).
    pub key: String,
    /// The binding's other arguments, as the protocol encoded them (hex; part of its name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arguments: String,
    /// What it matches.
    pub filter: RouteFilter,
}

/// Longest routing or binding key (an AMQP short string).
pub const MAX_KEY_LEN: usize = 255;

impl Binding {
    /// A binding with `key` on an exchange of `kind`; headers bindings take their pairs from
    /// `headers` (the `x-match` argument already read into `any`).
    pub fn new(
        kind: ExchangeKind,
        key: &str,
        arguments: String,
        headers: Option<(bool, HeaderPairs)>,
    ) -> Result<Binding> {
        if key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidArgument(format!("a binding key has at most {MAX_KEY_LEN} bytes")));
        }
        let filter = match kind {
            ExchangeKind::Fanout => RouteFilter::All,
            ExchangeKind::Direct => RouteFilter::Key(key.to_string()),
            ExchangeKind::Topic => RouteFilter::Pattern(key.to_string()),
            ExchangeKind::Headers => {
                let (any, pairs) = headers.unwrap_or_default();
                RouteFilter::Headers { any, pairs }
            }
        };
        Ok(Binding { key: key.to_string(), arguments, filter })
    }

    /// True if a message routed with `routing_key` and `headers` (name and hex of the value's
    /// tagged bytes) goes through this binding.
    pub fn matches(&self, routing_key: &str, headers: &[(String, String)]) -> bool {
        match &self.filter {
            RouteFilter::All => true,
            RouteFilter::Key(key) => key == routing_key,
            RouteFilter::Pattern(pattern) => topic_matches(pattern, routing_key),
            RouteFilter::Mqtt(filter) => super::mqtt_filter::matches(filter, routing_key),
            RouteFilter::Headers { any, pairs } => {
                let one = |(name, value): &(String, Option<String>)| {
                    headers.iter().any(|(n, v)| n == name && value.as_ref().is_none_or(|want| want == v))
                };
                if *any {
                    pairs.iter().any(one)
                } else {
                    pairs.iter().all(one)
                }
            }
        }
    }
}

/// AMQP topic matching: both split on `.`; `*` matches exactly one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    // Dynamic programming over (pattern index, key index): no backtracking blow-up on hostile
    // patterns such as `#.#.#.#.x`.
    let (p, k) = (pattern.len(), key.len());
    let mut reach = vec![vec![false; k + 1]; p + 1];
    reach[0][0] = true;
    for i in 0..p {
        for j in 0..=k {
            if !reach[i][j] {
                continue;
            }
            match pattern[i] {
                "#" => {
                    reach[i + 1][j..].fill(true);
                }
                "*" => {
                    if j < k {
                        reach[i + 1][j + 1] = true;
                    }
                }
                word => {
                    if j < k && key[j] == word {
                        reach[i + 1][j + 1] = true;
                    }
                }
            }
        }
    }
    reach[p][k]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_follow_amqp() {
        let cases = [
            ("*.orange.*", "quick.orange.rabbit", true),
            ("*.*.rabbit", "quick.orange.rabbit", true),
            ("lazy.#", "lazy.orange.elephant", true),
            ("lazy.#", "lazy", true),
            ("*.orange.*", "quick.orange.male.rabbit", false),
            ("*.orange.*", "orange", false),
            ("#", "", true),
            ("#", "a.b.c", true),
            ("*", "", true),
            ("*", "a.b", false),
            ("a.#.b", "a.b", true),
            ("a.#.b", "a.x.y.b", true),
            ("a.#.b", "a.x.y.c", false),
            ("#.#.#.#.#.#.#.#.#.#.x", "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.y", false),
            ("a", "a", true),
            ("a", "b", false),
            ("", "", true),
            ("a.*", "a.", true),
        ];
        for (pattern, key, want) in cases {
            assert_eq!(topic_matches(pattern, key), want, "{pattern:?} against {key:?}");
        }
    }

    #[test]
    fn each_kind_filters_as_amqp_says() {
        let fanout = Binding::new(ExchangeKind::Fanout, "ignored", String::new(), None).unwrap();
        assert!(fanout.matches("anything", &[]));
        let direct = Binding::new(ExchangeKind::Direct, "info", String::new(), None).unwrap();
        assert!(direct.matches("info", &[]) && !direct.matches("warn", &[]));
        let topic = Binding::new(ExchangeKind::Topic, "kern.*", String::new(), None).unwrap();
        assert!(topic.matches("kern.crit", &[]) && !topic.matches("cron.crit", &[]));
        let pairs = vec![("format".to_string(), Some("53".to_string())), ("type".to_string(), None)];
        let all = Binding::new(ExchangeKind::Headers, "", String::new(), Some((false, pairs.clone()))).unwrap();
        let any = Binding::new(ExchangeKind::Headers, "", String::new(), Some((true, pairs))).unwrap();
        let both = [("format".to_string(), "53".to_string()), ("type".to_string(), "99".to_string())];
        let one = [("format".to_string(), "53".to_string())];
        let wrong = [("format".to_string(), "54".to_string())];
        assert!(all.matches("", &both) && !all.matches("", &one));
        assert!(any.matches("", &one) && !any.matches("", &wrong) && !any.matches("", &[]));
        assert!(Binding::new(ExchangeKind::Direct, &"k".repeat(256), String::new(), None).is_err());
        assert_eq!(ExchangeKind::parse("topic"), Some(ExchangeKind::Topic));
        assert_eq!(ExchangeKind::parse("x-delayed-message"), None);
    }
}
