//! Kinesis's names for weir's things: shard ids (`shardId-000000000000`), sequence numbers
//! (decimal strings), stream and consumer ARNs, and shard iterators (opaque tokens the engine
//! seals, carrying stream, incarnation, shard and position).

use super::errors::{Code, KinesisError};
use crate::server::sqs::errors::shorten;
use crate::server::sqs::urls::Identity;
use crate::stream::StartingPosition;
use crate::Engine;

/// What shard iterators are sealed for (see [`Engine::seal_token`]).
pub const ITERATOR_PURPOSE: &str = "kinesis shard iterator";
const ITERATOR_VERSION: u8 = 1;

/// `shardId-` and twelve digits.
pub fn shard_id(id: u32) -> String {
    format!("shardId-{id:012}")
}

/// The shard a Kinesis shard id names: `shardId-000000000001`, also with fewer digits, or the
/// bare number (as Kinesis accepts). Anything else names no shard.
pub fn parse_shard_id(text: &str) -> Result<u32, KinesisError> {
    let digits = text.strip_prefix("shardId-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KinesisError::new(
            Code::ResourceNotFoundException,
            format!("Shard {} does not exist (shard ids look like shardId-000000000000).", shorten(text)),
        ));
    }
    digits.parse::<u32>().map_err(|_| {
        KinesisError::new(Code::ResourceNotFoundException, format!("Shard {} does not exist.", shorten(text)))
    })
}

/// A sequence number as Kinesis writes it: the engine's number plus one, so that `0` names
/// the position before a shard's first record (a `ContinuationSequenceNumber` before any
/// record was read, which a client passes back with `AFTER_SEQUENCE_NUMBER`).
pub fn seq(n: u64) -> String {
    (u128::from(n) + 1).to_string()
}

/// The wire number of a position: the sequence number of the record before it (0: none).
pub fn position_seq(position: u64) -> String {
    position.to_string()
}

/// A sequence number a client sent (decimal digits, no sign, no leading zeros but `0`), as
/// the wire number (see [`seq`]).
pub fn parse_seq(name: &str, text: &str) -> Result<u128, KinesisError> {
    let well_formed = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 129;
    if !well_formed {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!(
                "1 validation error detected: Value '{}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,128}})",
                shorten(text)
            ),
        ));
    }
    // Well formed, yet beyond any number weir hands out.
    text.parse::<u128>().ok().filter(|n| *n <= u128::from(u64::MAX)).ok_or_else(|| {
        KinesisError::invalid(format!("Sequence number {} is beyond every shard's sequence numbers.", shorten(text)))
    })
}

/// Where reading at (`after` false) or after (`after` true) wire number `wire` starts.
pub fn start_at(wire: u128, after: bool) -> StartingPosition {
    match (wire.checked_sub(1), after) {
        // 0 names the position before the first record: at it and after it are the same.
        (None, _) => StartingPosition::AtSequence(0),
        (Some(engine), false) => StartingPosition::AtSequence(engine as u64),
        (Some(engine), true) => StartingPosition::AfterSequence(engine as u64),
    }
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
pub fn stream_arn(identity: &Identity, name: &str) -> String {
    format!("arn:aws:kinesis:{}:{}:stream/{name}", identity.region, identity.account_id)
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:CREATED_SECONDS`.
pub fn consumer_arn(identity: &Identity, stream: &str, consumer: &str, created_ms: u64) -> String {
    format!("{}/consumer/{consumer}:{}", stream_arn(identity, stream), created_ms / 1000)
}

/// The stream a stream ARN of this endpoint's account names.
pub fn stream_from_arn(identity: &Identity, arn: &str) -> Result<String, KinesisError> {
    let prefix = format!("arn:aws:kinesis:{}:{}:stream/", identity.region, identity.account_id);
    match arn.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() && !name.contains('/') => Ok(name.to_string()),
        _ => Err(KinesisError::invalid(format!(
            "StreamARN {} is not the ARN of a stream of account {} in {}.",
            shorten(arn),
            identity.account_id,
            identity.region
        ))),
    }
}

/// The (stream, consumer, creation seconds) a consumer ARN names.
pub fn consumer_from_arn(identity: &Identity, arn: &str) -> Result<(String, String, u64), KinesisError> {
    let bad = || {
        KinesisError::invalid(format!(
            "ConsumerARN {} is not the ARN of a stream consumer of account {} in {}.",
            shorten(arn),
            identity.account_id,
            identity.region
        ))
    };
    let prefix = format!("arn:aws:kinesis:{}:{}:stream/", identity.region, identity.account_id);
    let rest = arn.strip_prefix(&prefix).ok_or_else(bad)?;
    let (stream, rest) = rest.split_once("/consumer/").ok_or_else(bad)?;
    let (consumer, seconds) = rest.rsplit_once(':').ok_or_else(bad)?;
    let seconds = seconds.parse::<u64>().map_err(|_| bad())?;
    if stream.is_empty() || consumer.is_empty() {
        return Err(bad());
    }
    Ok((stream.to_string(), consumer.to_string(), seconds))
}

/// Where a shard iterator stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IteratorPosition {
    /// The stream's name.
    pub stream: String,
    /// Which stream of that name (a stream deleted and created again is another).
    pub incarnation: u64,
    /// The shard.
    pub shard: u32,
    /// The next sequence number to read.
    pub seq: u64,
}

/// Seals a position into a shard iterator.
pub fn seal_iterator(engine: &Engine, position: &IteratorPosition) -> crate::Result<String> {
    let mut payload = Vec::with_capacity(21 + position.stream.len());
    payload.push(ITERATOR_VERSION);
    payload.extend_from_slice(&position.shard.to_le_bytes());
    payload.extend_from_slice(&position.seq.to_le_bytes());
    payload.extend_from_slice(&position.incarnation.to_le_bytes());
    payload.extend_from_slice(position.stream.as_bytes());
    engine.seal_token(ITERATOR_PURPOSE, &payload)
}

/// Opens a shard iterator: its position, or `ExpiredIteratorException` once it is older than
/// `lifetime_ms` by the engine clock, or `InvalidArgumentException` for one this engine did
/// not make.
pub fn open_iterator(engine: &Engine, token: &str, lifetime_ms: u64) -> Result<IteratorPosition, KinesisError> {
    let invalid = || KinesisError::invalid(format!("Invalid ShardIterator {}.", shorten(token)));
    let opened = engine.open_token(ITERATOR_PURPOSE, token).map_err(|_| invalid())?;
    let now = engine.clock().now_ms();
    if now.saturating_sub(opened.sealed_ms) > lifetime_ms {
        return Err(KinesisError::new(
            Code::ExpiredIteratorException,
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {lifetime_ms} milliseconds.",
                crate::text::iso8601(opened.sealed_ms),
                crate::text::iso8601(now)
            ),
        ));
    }
    let p = &opened.payload;
    if p.len() < 21 || p[0] != ITERATOR_VERSION {
        return Err(invalid());
    }
    let u32_at = |at: usize| p.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let u64_at = |at: usize| p.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let (Some(shard), Some(seq), Some(incarnation)) = (u32_at(1), u64_at(5), u64_at(13)) else {
        return Err(invalid());
    };
    let stream = String::from_utf8(p[21..].to_vec()).map_err(|_| invalid())?;
    Ok(IteratorPosition { stream, incarnation, shard, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() }
    }

    #[test]
    fn shard_ids_and_sequence_numbers_read_as_kinesis_writes_them() {
        assert_eq!(shard_id(1), "shardId-000000000001");
        assert_eq!(parse_shard_id("shardId-000000000001").unwrap(), 1);
        assert_eq!(parse_shard_id("shardId-7").unwrap(), 7);
        assert_eq!(parse_shard_id("3").unwrap(), 3);
        for bad in ["", "shardId-", "shard-1", "shardId-x", "shardId-99999999999999999999", "-1"] {
            assert_eq!(parse_shard_id(bad).unwrap_err().code, Code::ResourceNotFoundException, "{bad:?}");
        }
        assert_eq!(parse_seq("S", "0").unwrap(), 0);
        assert_eq!(seq(0), "1", "the wire is the engine's number plus one");
        assert_eq!(start_at(parse_seq("S", &seq(41)).unwrap(), false), StartingPosition::AtSequence(41));
        assert_eq!(start_at(parse_seq("S", &seq(41)).unwrap(), true), StartingPosition::AfterSequence(41));
        assert_eq!(start_at(0, true), StartingPosition::AtSequence(0));
        assert_eq!(position_seq(42), seq(41), "a continuation names the last record read");
        assert_eq!(
            parse_seq("S", "49590338271490256608559692538361571095921575989136588898").unwrap_err().code,
            Code::InvalidArgumentException
        );
        for bad in ["", "01", "-1", "1.5", "abc"] {
            assert_eq!(parse_seq("S", bad).unwrap_err().code, Code::ValidationException, "{bad:?}");
        }
    }

    #[test]
    fn arns_round_trip_and_foreign_ones_are_refused() {
        let id = identity();
        let arn = stream_arn(&id, "Demo");
        assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/Demo");
        assert_eq!(stream_from_arn(&id, &arn).unwrap(), "Demo");
        assert!(stream_from_arn(&id, "arn:aws:kinesis:eu-west-1:000000000000:stream/Demo").is_err());
        let c = consumer_arn(&id, "Demo", "app", 1_525_898_737_123);
        assert_eq!(c, "arn:aws:kinesis:us-east-1:000000000000:stream/Demo/consumer/app:1525898737");
        assert_eq!(consumer_from_arn(&id, &c).unwrap(), ("Demo".into(), "app".into(), 1_525_898_737));
        for bad in [&arn[..], "arn:aws:kinesis:us-east-1:000000000000:stream/Demo/consumer/app", "x"] {
            assert!(consumer_from_arn(&id, bad).is_err(), "{bad}");
        }
    }
}
