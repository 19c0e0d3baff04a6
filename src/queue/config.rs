//! Queue attributes with SQS's ranges and defaults, each checked with a clear error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest visibility timeout, as SQS: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Longest delivery delay, as SQS: 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Shortest retention, as SQS: 60 seconds.
pub const MIN_RETENTION: Duration = Duration::from_secs(60);
/// Longest retention, as SQS: 14 days.
pub const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
/// Smallest configurable maximum message size, as SQS: 1 KiB.
pub const MIN_MAX_MESSAGE_BYTES: usize = 1024;
/// Largest configurable maximum message size: 16 MiB (frames stay well under the log's 64 MiB).
pub const MAX_MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Default maximum message size, as SQS: 256 KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 << 10;
/// Longest long-poll wait, as SQS: 20 seconds.
pub const MAX_RECEIVE_WAIT: Duration = Duration::from_secs(20);
/// Largest max-receive count of a redrive policy, as SQS.
pub const MAX_MAX_RECEIVES: u32 = 1000;
/// FIFO deduplication window, as SQS: 5 minutes.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Shortest KMS data key reuse period, as SQS: 60 seconds.
pub const MIN_KMS_DATA_KEY_REUSE: Duration = Duration::from_secs(60);
/// Longest KMS data key reuse period, as SQS: 24 hours.
pub const MAX_KMS_DATA_KEY_REUSE: Duration = Duration::from_secs(24 * 3600);
/// Default KMS data key reuse period, as SQS: 5 minutes.
pub const DEFAULT_KMS_DATA_KEY_REUSE: Duration = Duration::from_secs(300);
/// Most source queues a `ByQueue` redrive allow policy names, as SQS.
pub const MAX_REDRIVE_ALLOW_SOURCES: usize = 10;
/// Largest access policy document, as SQS: 8,192 bytes.
pub const MAX_POLICY_BYTES: usize = 8192;
/// Most statements in an access policy, as SQS.
pub const MAX_POLICY_STATEMENTS: usize = 20;
/// Longest KMS key id (an id, alias or ARN): weir's bound, an ARN's length limit.
pub const MAX_KMS_KEY_ID_LEN: usize = 2048;

/// Where messages that keep failing go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    /// Name of the dead-letter queue (same type as the source: FIFO for FIFO).
    pub dead_letter_queue: String,
    /// A message received this many times moves to the dead-letter queue at its next receive
    /// (1 to 1000).
    pub max_receives: u32,
}

/// FIFO only: what the five-minute deduplication window is keyed by (SQS's
/// `DeduplicationScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupScope {
    /// A deduplication id is a duplicate anywhere in the queue (SQS `queue`, the default).
    #[default]
    Queue,
    /// A deduplication id is a duplicate only within its message group (SQS `messageGroup`).
    MessageGroup,
}

/// FIFO only: whether the throughput quota applies per queue or per message group (SQS's
/// `FifoThroughputLimit`). weir stores and returns it; it enforces no quota either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FifoThroughputLimit {
    /// SQS `perQueue`, the default.
    #[default]
    PerQueue,
    /// SQS `perMessageGroupId`: allowed only with [`DedupScope::MessageGroup`].
    PerMessageGroupId,
}

/// Settings of a queue declared through a message broker protocol (AMQP's `queue.declare`):
/// its lifetime, a message TTL, a length limit and a dead-letter exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerOptions {
    /// Deleted when the engine next opens (AMQP's non-durable and exclusive queues).
    #[serde(default)]
    pub transient: bool,
    /// Used by one connection only, and deleted when it closes (the broker enforces it).
    #[serde(default)]
    pub exclusive: bool,
    /// Deleted (by the broker) when its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Messages expire this long after they arrive (AMQP's `x-message-ttl`), when shorter than
    /// the retention.
    #[serde(default, with = "optional_millis", skip_serializing_if = "Option::is_none")]
    pub message_ttl: Option<Duration>,
    /// At most this many ready messages: a delivery beyond drops the oldest (AMQP's
    /// `x-max-length`, overflow `drop-head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Where rejected messages are routed (AMQP's `x-dead-letter-exchange`; `""`: the default
    /// exchange, which routes to the queue its routing key names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead-lettered messages get (`x-dead-letter-routing-key`; default: their
    /// own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_routing_key: Option<String>,
}

/// Longest message TTL: AMQP's, 2^32 - 1 ms.
pub const MAX_MESSAGE_TTL: Duration = Duration::from_millis(u32::MAX as u64);

impl BrokerOptions {
    fn validate(&self) -> Result<()> {
        if self.message_ttl.is_some_and(|ttl| ttl > MAX_MESSAGE_TTL) {
            return Err(Error::InvalidArgument(format!("a message TTL is at most {} ms", MAX_MESSAGE_TTL.as_millis())));
        }
        let key_ok = |k: &Option<String>| k.as_ref().is_none_or(|k| k.len() <= 255);
        if !key_ok(&self.dead_letter_exchange) || !key_ok(&self.dead_letter_routing_key) {
            return Err(Error::InvalidArgument("dead-letter exchange and routing key are at most 255 bytes".into()));
        }
        Ok(())
    }
}

/// Which queues may name this one as their dead-letter queue (SQS's `RedriveAllowPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedriveAllowPolicy {
    /// Any queue (SQS `allowAll`, the default).
    #[default]
    AllowAll,
    /// None (SQS `denyAll`).
    DenyAll,
    /// Only these source queues, by name (SQS `byQueue`; 1 to 10 of them).
    ByQueue(Vec<String>),
}

impl RedriveAllowPolicy {
    /// True if queue `source` may name this queue as its dead-letter queue.
    pub fn allows(&self, source: &str) -> bool {
        match self {
            RedriveAllowPolicy::AllowAll => true,
            RedriveAllowPolicy::DenyAll => false,
            RedriveAllowPolicy::ByQueue(names) => names.iter().any(|n| n == source),
        }
    }
}

impl DedupScope {
    /// SQS's spelling: `queue` or `messageGroup`.
    pub fn sqs_name(self) -> &'static str {
        match self {
            DedupScope::Queue => "queue",
            DedupScope::MessageGroup => "messageGroup",
        }
    }
}

impl std::str::FromStr for DedupScope {
    type Err = Error;

    /// Parses SQS's spelling (`queue`, `messageGroup`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "queue" => Ok(DedupScope::Queue),
            "messageGroup" => Ok(DedupScope::MessageGroup),
            _ => Err(Error::InvalidArgument(format!(
                "deduplication scope must be \"queue\" or \"messageGroup\", not {:?}",
                shorten(s)
            ))),
        }
    }
}

impl FifoThroughputLimit {
    /// SQS's spelling: `perQueue` or `perMessageGroupId`.
    pub fn sqs_name(self) -> &'static str {
        match self {
            FifoThroughputLimit::PerQueue => "perQueue",
            FifoThroughputLimit::PerMessageGroupId => "perMessageGroupId",
        }
    }
}

impl std::str::FromStr for FifoThroughputLimit {
    type Err = Error;

    /// Parses SQS's spelling (`perQueue`, `perMessageGroupId`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "perQueue" => Ok(FifoThroughputLimit::PerQueue),
            "perMessageGroupId" => Ok(FifoThroughputLimit::PerMessageGroupId),
            _ => Err(Error::InvalidArgument(format!(
                "FIFO throughput limit must be \"perQueue\" or \"perMessageGroupId\", not {:?}",
                shorten(s)
            ))),
        }
    }
}

/// A queue's attributes. `Default` gives SQS's defaults for a standard queue (created over
/// plain HTTP, where SQS leaves server-side encryption off).
///
/// Fields added after the first catalog format carry `#[serde(default)]`, so catalogs written
/// before them still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// FIFO queue (name must end in `.fifo`).
    pub fifo: bool,
    /// FIFO only: deduplicate on the SHA-256 of the body when no deduplication id is given.
    pub content_based_dedup: bool,
    /// How long a received message stays invisible (0 s to 12 h, default 30 s).
    #[serde(with = "millis")]
    pub visibility_timeout: Duration,
    /// Delay before a new message becomes visible (0 to 15 min, default 0).
    #[serde(with = "millis")]
    pub delay: Duration,
    /// How long a message is kept (60 s to 14 days, default 4 days).
    #[serde(with = "millis")]
    pub retention: Duration,
    /// Largest body plus attributes in bytes (1 KiB to 16 MiB, default 256 KiB).
    pub max_message_bytes: usize,
    /// Default long-poll wait of a receive (0 to 20 s, default 0).
    #[serde(with = "millis")]
    pub receive_wait: Duration,
    /// Dead-letter queue, if any.
    pub redrive: Option<RedrivePolicy>,
    /// FIFO only: deduplicate per queue or per message group.
    #[serde(default)]
    pub dedup_scope: DedupScope,
    /// FIFO only: SQS's throughput quota setting (stored and returned, not enforced).
    #[serde(default)]
    pub fifo_throughput_limit: FifoThroughputLimit,
    /// Which queues may use this one as their dead-letter queue (checked when they name it).
    #[serde(default)]
    pub redrive_allow: RedriveAllowPolicy,
    /// The access policy, a JSON document (checked to be a JSON object of at most 8 KiB and
    /// 20 statements; stored, not yet evaluated).
    #[serde(default)]
    pub policy: Option<String>,
    /// KMS key of SSE-KMS (kept and returned: weir does not encrypt).
    #[serde(default)]
    pub kms_master_key_id: Option<String>,
    /// How long SSE-KMS reuses a data key (60 s to 24 h, default 5 min; kept and returned).
    #[serde(default = "default_kms_data_key_reuse", with = "millis")]
    pub kms_data_key_reuse_period: Duration,
    /// SSE-SQS (kept and returned: weir does not encrypt).
    #[serde(default)]
    pub sqs_managed_sse: bool,
    /// Broker settings of a queue declared through AMQP (none for SQS's queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerOptions>,
}

fn default_kms_data_key_reuse() -> Duration {
    DEFAULT_KMS_DATA_KEY_REUSE
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            fifo: false,
            content_based_dedup: false,
            visibility_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            retention: Duration::from_secs(4 * 24 * 3600),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            receive_wait: Duration::ZERO,
            redrive: None,
            dedup_scope: DedupScope::Queue,
            fifo_throughput_limit: FifoThroughputLimit::PerQueue,
            redrive_allow: RedriveAllowPolicy::AllowAll,
            policy: None,
            kms_master_key_id: None,
            kms_data_key_reuse_period: DEFAULT_KMS_DATA_KEY_REUSE,
            sqs_managed_sse: false,
            broker: None,
        }
    }
}

impl QueueConfig {
    /// SQS's defaults for a FIFO queue.
    pub fn fifo() -> Self {
        QueueConfig { fifo: true, ..QueueConfig::default() }
    }

    /// Checks every attribute against its range.
    pub fn validate(&self) -> Result<()> {
        check_range("visibility timeout", self.visibility_timeout, Duration::ZERO, MAX_VISIBILITY_TIMEOUT)?;
        check_range("delivery delay", self.delay, Duration::ZERO, MAX_DELAY)?;
        check_range("retention period", self.retention, MIN_RETENTION, MAX_RETENTION)?;
        check_range("receive wait time", self.receive_wait, Duration::ZERO, MAX_RECEIVE_WAIT)?;
        if !(MIN_MAX_MESSAGE_BYTES..=MAX_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return Err(Error::InvalidArgument(format!(
                "maximum message size must be {MIN_MAX_MESSAGE_BYTES} to {MAX_MAX_MESSAGE_BYTES} bytes, not {}",
                self.max_message_bytes
            )));
        }
        if self.content_based_dedup && !self.fifo {
            return Err(Error::InvalidArgument("content-based deduplication is for FIFO queues only".into()));
        }
        if let Some(r) = &self.redrive {
            if !(1..=MAX_MAX_RECEIVES).contains(&r.max_receives) {
                return Err(Error::InvalidArgument(format!(
                    "redrive max receives must be 1 to {MAX_MAX_RECEIVES}, not {}",
                    r.max_receives
                )));
            }
        }
        self.validate_fifo_options()?;
        validate_redrive_allow(&self.redrive_allow)?;
        if let Some(policy) = &self.policy {
            validate_policy(policy)?;
        }
        if let Some(broker) = &self.broker {
            broker.validate()?;
        }
        if let Some(key) = &self.kms_master_key_id {
            if key.is_empty() || key.chars().count() > MAX_KMS_KEY_ID_LEN || key.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "a KMS master key id must be 1 to {MAX_KMS_KEY_ID_LEN} characters without control characters"
                )));
            }
        }
        check_range(
            "KMS data key reuse period",
            self.kms_data_key_reuse_period,
            MIN_KMS_DATA_KEY_REUSE,
            MAX_KMS_DATA_KEY_REUSE,
        )
    }

    /// SQS's rules: deduplication scope and throughput limit are FIFO settings, and the
    /// per-message-group throughput limit needs deduplication per message group.
    fn validate_fifo_options(&self) -> Result<()> {
        if !self.fifo && self.dedup_scope != DedupScope::Queue {
            return Err(Error::InvalidArgument("deduplication scope is for FIFO queues only".into()));
        }
        if !self.fifo && self.fifo_throughput_limit != FifoThroughputLimit::PerQueue {
            return Err(Error::InvalidArgument("FIFO throughput limit is for FIFO queues only".into()));
        }
        if self.fifo_throughput_limit == FifoThroughputLimit::PerMessageGroupId
            && self.dedup_scope != DedupScope::MessageGroup
        {
            return Err(Error::InvalidArgument(
                "FIFO throughput limit perMessageGroupId is allowed only with deduplication scope messageGroup".into(),
            ));
        }
        Ok(())
    }
}

fn validate_redrive_allow(policy: &RedriveAllowPolicy) -> Result<()> {
    let RedriveAllowPolicy::ByQueue(names) = policy else { return Ok(()) };
    if names.is_empty() || names.len() > MAX_REDRIVE_ALLOW_SOURCES {
        return Err(Error::InvalidArgument(format!(
            "a redrive allow policy by queue names 1 to {MAX_REDRIVE_ALLOW_SOURCES} source queues, not {}",
            names.len()
        )));
    }
    for name in names {
        crate::names::validate_queue_name("queue", name, name.ends_with(".fifo"))?;
    }
    Ok(())
}

/// An access policy must be a JSON object within SQS's size and statement limits.
pub fn validate_policy(policy: &str) -> Result<()> {
    if policy.len() > MAX_POLICY_BYTES {
        return Err(Error::TooLarge { what: "access policy", size: policy.len(), limit: MAX_POLICY_BYTES });
    }
    let value: serde_json::Value = serde_json::from_str(policy)
        .map_err(|e| Error::InvalidArgument(format!("the access policy is not valid JSON: {e}")))?;
    let object =
        value.as_object().ok_or_else(|| Error::InvalidArgument("the access policy must be a JSON object".into()))?;
    let statements = match object.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.len(),
        Some(_) => 1,
        None => 0,
    };
    if statements > MAX_POLICY_STATEMENTS {
        return Err(Error::InvalidArgument(format!(
            "an access policy has at most {MAX_POLICY_STATEMENTS} statements, not {statements}"
        )));
    }
    Ok(())
}

/// A value for an error message: at most 64 characters of it.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Checks that a duration lies in `[min, max]` and is a whole number of seconds' worth of
/// precision SQS would accept (sub-second values are allowed: they only matter to tests).
pub fn check_range(what: &str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min || value > max {
        return Err(Error::InvalidArgument(format!(
            "{what} must be {} to {} seconds, not {}",
            min.as_secs(),
            max.as_secs(),
            fmt_secs(value)
        )));
    }
    Ok(())
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// Optional durations stored as whole milliseconds in the catalog.
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Durations stored as whole milliseconds in the catalog.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo() -> QueueConfig {
        QueueConfig::fifo()
    }

    #[test]
    fn a_catalog_config_written_before_the_new_attributes_loads_with_their_defaults() {
        let old = r#"{"fifo":true,"content_based_dedup":false,"visibility_timeout":30000,"delay":0,
            "retention":345600000,"max_message_bytes":262144,"receive_wait":0,"redrive":null}"#;
        let config: QueueConfig = serde_json::from_str(old).expect("old catalog config");
        assert_eq!(config, QueueConfig::fifo());
        let round: QueueConfig = serde_json::from_str(&serde_json::to_string(&config).expect("json")).expect("back");
        assert_eq!(round, config);
    }

    #[test]
    fn every_new_attribute_round_trips_through_the_catalog_form() {
        let config = QueueConfig {
            dedup_scope: DedupScope::MessageGroup,
            fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId,
            redrive_allow: RedriveAllowPolicy::ByQueue(vec!["a.fifo".into(), "b.fifo".into()]),
            policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            kms_master_key_id: Some("alias/aws/sqs".into()),
            kms_data_key_reuse_period: Duration::from_secs(3600),
            sqs_managed_sse: true,
            ..fifo()
        };
        config.validate().expect("valid");
        let json = serde_json::to_string(&config).expect("json");
        assert!(json.contains(r#""dedup_scope":"message_group""#), "{json}");
        assert!(json.contains(r#""redrive_allow":{"by_queue":["a.fifo","b.fifo"]}"#), "{json}");
        assert_eq!(serde_json::from_str::<QueueConfig>(&json).expect("back"), config);
    }

    #[test]
    fn fifo_options_follow_sqs_rules() {
        let standard = QueueConfig::default();
        let bad = [
            ("scope on a standard queue", QueueConfig { dedup_scope: DedupScope::MessageGroup, ..standard.clone() }),
            (
                "limit on a standard queue",
                QueueConfig { fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId, ..standard.clone() },
            ),
            (
                "per group limit with queue scope",
                QueueConfig { fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId, ..fifo() },
            ),
        ];
        for (what, config) in bad {
            assert!(matches!(config.validate(), Err(Error::InvalidArgument(_))), "{what} accepted");
        }
        // High throughput, and message-group scope alone, are fine.
        QueueConfig {
            dedup_scope: DedupScope::MessageGroup,
            fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId,
            ..fifo()
        }
        .validate()
        .expect("high throughput FIFO");
        QueueConfig { dedup_scope: DedupScope::MessageGroup, ..fifo() }.validate().expect("group scope");
        assert_eq!("messageGroup".parse::<DedupScope>().expect("parse"), DedupScope::MessageGroup);
        assert_eq!("perQueue".parse::<FifoThroughputLimit>().expect("parse"), FifoThroughputLimit::PerQueue);
        assert!("MessageGroup".parse::<DedupScope>().is_err(), "SQS's names are case-sensitive");
        assert!("per_queue".parse::<FifoThroughputLimit>().is_err());
    }

    #[test]
    fn redrive_allow_policy_names_one_to_ten_valid_queues() {
        let with = |names: Vec<String>| QueueConfig {
            redrive_allow: RedriveAllowPolicy::ByQueue(names),
            ..QueueConfig::default()
        };
        assert!(with(Vec::new()).validate().is_err(), "no source queue");
        assert!(with((0..11).map(|i| format!("q{i}")).collect()).validate().is_err(), "11 source queues");
        assert!(with(vec!["a/b".into()]).validate().is_err(), "a bad name");
        with((0..10).map(|i| format!("q{i}")).collect()).validate().expect("10 source queues");
        let policy = RedriveAllowPolicy::ByQueue(vec!["a".into()]);
        assert!(policy.allows("a") && !policy.allows("b"));
        assert!(RedriveAllowPolicy::AllowAll.allows("b") && !RedriveAllowPolicy::DenyAll.allows("a"));
    }

    #[test]
    fn policy_and_kms_attributes_are_checked() {
        let with_policy = |p: &str| QueueConfig { policy: Some(p.into()), ..QueueConfig::default() };
        for bad in ["", "not json", "[1,2]", "\"text\""] {
            assert!(with_policy(bad).validate().is_err(), "policy {bad:?} accepted");
        }
        let statements: Vec<String> = (0..21).map(|i| format!(r#"{{"Sid":"s{i}"}}"#)).collect();
        let many = format!(r#"{{"Statement":[{}]}}"#, statements.join(","));
        assert!(with_policy(&many).validate().is_err(), "21 statements");
        let huge = format!(r#"{{"Id":"{}"}}"#, "x".repeat(MAX_POLICY_BYTES));
        assert!(matches!(with_policy(&huge).validate(), Err(Error::TooLarge { .. })));
        with_policy(r#"{"Version":"2012-10-17"}"#).validate().expect("a policy");
        let reuse =
            |s: u64| QueueConfig { kms_data_key_reuse_period: Duration::from_secs(s), ..QueueConfig::default() };
        assert!(reuse(59).validate().is_err() && reuse(86_401).validate().is_err());
        reuse(60).validate().expect("60 s");
        reuse(86_400).validate().expect("24 h");
        let key = |k: &str| QueueConfig { kms_master_key_id: Some(k.into()), ..QueueConfig::default() };
        assert!(key("").validate().is_err() && key("a\nb").validate().is_err());
        key("alias/aws/sqs").validate().expect("an alias");
    }
}
