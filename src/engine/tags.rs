//! Tags: key-value labels on queues, topics and streams, one implementation for every kind of
//! resource, with SQS's rules (which SNS and Kinesis share in substance): at most 50 tags, keys
//! of 1 to 128 and values of 0 to 256 characters, Unicode letters and digits, white space and
//! `_ . : / = + - @`, and no `aws:` prefix (reserved). Tags live in the catalog.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::catalog::CatalogRecord;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Tags by key.
pub type Tags = BTreeMap<String, String>;

/// Most tags on one resource.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// A queue, topic or stream, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceRef<'a> {
    /// A queue.
    Queue(&'a str),
    /// A topic.
    Topic(&'a str),
    /// A stream.
    Stream(&'a str),
}

/// The kind of a tagged resource, as the catalog stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A queue.
    Queue,
    /// A topic.
    Topic,
    /// A stream.
    Stream,
}

impl ResourceRef<'_> {
    fn parts(self) -> (ResourceKind, &'static str, String) {
        match self {
            ResourceRef::Queue(n) => (ResourceKind::Queue, "queue", n.to_string()),
            ResourceRef::Topic(n) => (ResourceKind::Topic, "topic", n.to_string()),
            ResourceRef::Stream(n) => (ResourceKind::Stream, "stream", n.to_string()),
        }
    }
}

/// Checks tags to add (SQS's rules; see the module documentation).
pub fn validate_tags(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::LimitExceeded(format!("a resource has at most {MAX_TAGS} tags, not {}", tags.len())));
    }
    for (key, value) in tags {
        validate_tag_key(key)?;
        check_text("tag value", value, MAX_TAG_VALUE_CHARS)?;
        if value.starts_with("aws:") {
            return Err(Error::InvalidArgument(format!("tag value of {key:?}: the prefix \"aws:\" is reserved")));
        }
    }
    Ok(())
}

/// Checks one tag key.
pub fn validate_tag_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("a tag key may not be empty".into()));
    }
    check_text("tag key", key, MAX_TAG_KEY_CHARS)?;
    if key.starts_with("aws:") {
        return Err(Error::InvalidArgument(format!("tag key {:?}: the prefix \"aws:\" is reserved", shorten(key))));
    }
    Ok(())
}

fn check_text(what: &str, text: &str, max_chars: usize) -> Result<()> {
    if text.chars().count() > max_chars {
        return Err(Error::InvalidArgument(format!(
            "a {what} has at most {max_chars} characters: {:?}",
            shorten(text)
        )));
    }
    if let Some(c) = text.chars().find(|&c| !tag_char(c)) {
        return Err(Error::InvalidArgument(format!(
            "{what} {:?}: may contain only letters, digits, white space and _ . : / = + - @, not {c:?}",
            shorten(text)
        )));
    }
    Ok(())
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Engine {
    /// Adds tags to a queue, topic or stream (a key it has already gets the new value). At most
    /// 50 tags in all; see [`validate_tags`] for the rest of the rules.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::collections::BTreeMap;
    /// use weir::engine::tags::ResourceRef;
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_queue("jobs", weir::queue::QueueConfig::default())?;
    /// let tags = BTreeMap::from([("team".to_string(), "billing".to_string())]);
    /// engine.tag(ResourceRef::Queue("jobs"), &tags)?;
    /// assert_eq!(engine.tags(ResourceRef::Queue("jobs"))?, tags);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag(&self, resource: ResourceRef<'_>, tags: &Tags) -> Result<()> {
        validate_tags(tags)?;
        let (kind, _, name) = resource.parts();
        let mut catalog = self.inner.catalog.lock();
        self.check_resource(catalog.state(), resource)?;
        if tags.is_empty() {
            return Ok(());
        }
        let mut merged = catalog.state().tags_of(kind, &name);
        merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if merged.len() > MAX_TAGS {
            return Err(Error::LimitExceeded(format!(
                "{name:?} would have {} tags; a resource has at most {MAX_TAGS}",
                merged.len()
            )));
        }
        catalog.append(CatalogRecord::Tag { resource: kind, name, tags: tags.clone() }, self.now_ms())?;
        Ok(())
    }

    /// Removes tags by key (keys the resource does not have are ignored).
    pub fn untag(&self, resource: ResourceRef<'_>, keys: &[String]) -> Result<()> {
        for key in keys {
            validate_tag_key(key)?;
        }
        let (kind, _, name) = resource.parts();
        let mut catalog = self.inner.catalog.lock();
        self.check_resource(catalog.state(), resource)?;
        let current = catalog.state().tags_of(kind, &name);
        if !keys.iter().any(|k| current.contains_key(k)) {
            return Ok(());
        }
        catalog.append(CatalogRecord::Untag { resource: kind, name, keys: keys.to_vec() }, self.now_ms())?;
        Ok(())
    }

    /// The tags of a queue, topic or stream.
    pub fn tags(&self, resource: ResourceRef<'_>) -> Result<Tags> {
        let (kind, _, name) = resource.parts();
        let catalog = self.inner.catalog.lock();
        self.check_resource(catalog.state(), resource)?;
        Ok(catalog.state().tags_of(kind, &name))
    }

    /// Fails unless the resource exists (names checked first, as every call does).
    fn check_resource(&self, state: &crate::engine::catalog::CatalogState, resource: ResourceRef<'_>) -> Result<()> {
        let (_, kind, name) = resource.parts();
        let exists = match resource {
            ResourceRef::Queue(n) => {
                // Broker queues (AMQP's, MQTT's sessions) have names SQS would refuse.
                crate::names::validate_lookup_name("queue", n)?;
                state.queues.contains_key(n)
            }
            ResourceRef::Topic(n) => {
                crate::names::validate_queue_name("topic", n, n.ends_with(".fifo"))?;
                state.topics.contains_key(n)
            }
            ResourceRef::Stream(n) => {
                crate::names::validate_stream_name(n)?;
                state.streams.contains_key(n)
            }
        };
        if exists {
            Ok(())
        } else {
            Err(Error::NotFound { kind, name })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tags_follow_sqs_rules() {
        validate_tags(&tags(&[("team", "billing"), ("cost center", ""), ("a_b.c:d/e=f+g-h@i", "ünïcödé 42")]))
            .expect("good tags");
        let long_key = "k".repeat(MAX_TAG_KEY_CHARS);
        let long_value = "v".repeat(MAX_TAG_VALUE_CHARS);
        validate_tags(&tags(&[(&long_key, &long_value)])).expect("longest key and value");
        let too_long_key = "k".repeat(MAX_TAG_KEY_CHARS + 1);
        let too_long_value = "v".repeat(MAX_TAG_VALUE_CHARS + 1);
        for bad in [
            tags(&[("", "v")]),
            tags(&[(&too_long_key, "v")]),
            tags(&[("k", &too_long_value)]),
            tags(&[("aws:created", "v")]),
            tags(&[("k", "aws:x")]),
            tags(&[("semi;colon", "v")]),
            tags(&[("k", "new\nline")]),
            tags(&[("k", "quote\"")]),
        ] {
            assert!(matches!(validate_tags(&bad), Err(Error::InvalidArgument(_))), "{bad:?} accepted");
        }
        let many: Tags = (0..=MAX_TAGS).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(validate_tags(&many), Err(Error::LimitExceeded(_))));
    }

    #[test]
    fn a_broker_queue_takes_tags_and_keeps_them_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::queue::QueueConfig {
            broker: Some(crate::queue::BrokerOptions::default()),
            ..crate::queue::QueueConfig::default()
        };
        let wanted = tags(&[("mqtt.expiry", "30")]);
        {
            let engine = Engine::open(dir.path(), crate::Options::default()).unwrap();
            // A name SQS would refuse (dots), as AMQP and MQTT name their queues.
            engine.create_queue("mqtt.session.ab12", config).unwrap();
            engine.tag(ResourceRef::Queue("mqtt.session.ab12"), &wanted).unwrap();
            assert!(matches!(engine.tag(ResourceRef::Queue("no.such.queue"), &wanted), Err(Error::NotFound { .. })));
        }
        let engine = Engine::open(dir.path(), crate::Options::default()).unwrap();
        assert_eq!(engine.tags(ResourceRef::Queue("mqtt.session.ab12")).unwrap(), wanted);
    }
}
