//! The request context: the condition keys a request carries (`aws:SourceIp`,
//! `aws:CurrentTime`, `aws:SourceArn`, ...) and their values.

use std::collections::BTreeMap;

/// Condition keys and their values for one request. Keys are case-insensitive, as in IAM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// The context with `key` set to `value` (replacing what it had).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Context {
        self.set(key, value);
        self
    }

    /// Sets `key` to the single value `value`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// The values of `key`, if the request carries it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// The keys every request has: `aws:CurrentTime` (ISO 8601) and `aws:EpochTime` (seconds)
    /// from `now_ms`, the engine clock's time.
    pub fn at(now_ms: u64) -> Context {
        Context::new()
            .with("aws:CurrentTime", crate::text::iso8601(now_ms))
            .with("aws:EpochTime", (now_ms / 1000).to_string())
    }
}
