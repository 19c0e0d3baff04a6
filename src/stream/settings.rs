//! A stream's settings beyond its shard map: its capacity mode, its encryption state, and the
//! options it is created with.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a stream's capacity is managed, as Kinesis's `StreamModeDetails`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// The shard count is the caller's: it changes only through splits, merges and
    /// [`crate::Engine::update_shard_count`].
    #[default]
    Provisioned,
    /// The engine splits shards that stay hot and merges cold neighbours by itself (see
    /// [`crate::stream::autoscale`]); writes are never refused for a shard's throughput.
    OnDemand,
}

impl StreamMode {
    /// Kinesis's name: `PROVISIONED` or `ON_DEMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    /// The mode Kinesis names `name`.
    pub fn parse(name: &str) -> Result<StreamMode> {
        match name {
            "PROVISIONED" => Ok(StreamMode::Provisioned),
            "ON_DEMAND" => Ok(StreamMode::OnDemand),
            other => Err(Error::InvalidArgument(format!(
                "stream mode must be PROVISIONED or ON_DEMAND, not {:?}",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    pub(crate) fn is_provisioned(&self) -> bool {
        *self == StreamMode::Provisioned
    }
}

/// Server-side encryption as a stream records it (`StartStreamEncryption`): the state is kept
/// and reported; records are not encrypted with the key (weir holds no KMS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEncryption {
    /// `KMS`, the only type Kinesis has besides `NONE` (no encryption is `None`).
    pub encryption_type: String,
    /// The key's id, alias or ARN, as given.
    pub key_id: String,
}

/// How a stream is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Shards at creation (1 to [`crate::stream::MAX_SHARDS`]).
    pub shards: u32,
    /// How long records are kept; default 24 hours, as Kinesis.
    pub retention: Option<Duration>,
    /// Kinesis's per-shard throughput limits (see [`crate::Engine::create_stream_with`]).
    /// Ignored for on-demand streams, which never refuse a write for its shard's throughput.
    pub throughput_limits: bool,
    /// Provisioned or on-demand.
    pub mode: StreamMode,
}

impl StreamOptions {
    /// A provisioned stream of `shards` shards with the default retention and no limits.
    pub fn new(shards: u32) -> StreamOptions {
        StreamOptions { shards, retention: None, throughput_limits: false, mode: StreamMode::Provisioned }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_have_kinesis_names() {
        for mode in [StreamMode::Provisioned, StreamMode::OnDemand] {
            assert_eq!(StreamMode::parse(mode.as_str()).unwrap(), mode);
        }
        assert!(StreamMode::parse("on_demand").is_err());
    }
}
