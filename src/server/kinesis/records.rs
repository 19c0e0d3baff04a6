//! Record operations: PutRecord, PutRecords, GetShardIterator and GetRecords.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::errors::{from_engine, Code, KinesisError};
use super::names::{self, shard_id, IteratorPosition};
use super::streams::parse_hash_key;
use super::{epoch_seconds, Ctx, Output};
use crate::server::sqs::errors::shorten;
use crate::server::wire::Input;
use crate::stream::{PutRecord, StartingPosition, StreamMeta, MAX_BATCH_RECORDS, MAX_PARTITION_KEY_LEN};
use crate::Error;

/// One record of a put, read from the request.
struct IncomingRecord {
    partition_key: String,
    data: Vec<u8>,
    explicit_hash_key: Option<u128>,
}

fn read_record(input: &Input) -> Result<IncomingRecord, KinesisError> {
    let partition_key = input.required_str("PartitionKey")?.to_string();
    let chars = partition_key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY_LEN {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!("1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and {MAX_PARTITION_KEY_LEN}"),
        ));
    }
    let data = input.required_str("Data")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| KinesisError::new(Code::SerializationException, "Data is not valid base64."))?;
    let explicit_hash_key = input.str("ExplicitHashKey")?.map(|k| parse_hash_key("explicitHashKey", k)).transpose()?;
    Ok(IncomingRecord { partition_key, data, explicit_hash_key })
}

fn encryption_type(meta: &StreamMeta) -> &'static str {
    if meta.encryption.is_some() {
        "KMS"
    } else {
        "NONE"
    }
}

fn stream_error<'a>(name: &'a str, account: &'a str) -> impl Fn(Error) -> KinesisError + 'a {
    move |e| match e {
        Error::NotFound { kind: "stream", .. } | Error::InvalidName { .. } => KinesisError::no_stream(name, account),
        other => from_engine(&other),
    }
}

pub(crate) async fn put_record(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let record = read_record(&input)?;
    // Sequence numbers of one shard lineage always increase, so the ordering this asks for
    // holds by construction; it is checked for form only.
    if let Some(after) = input.str("SequenceNumberForOrdering")? {
        names::parse_seq("sequenceNumberForOrdering", after)?;
    }
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let put = s
            .put_batch(&[PutRecord {
                partition_key: record.partition_key.as_bytes(),
                data: &record.data,
                explicit_hash_key: record.explicit_hash_key,
            }])
            .map_err(|e| from_engine(&e))?;
        let put = put.first().ok_or_else(|| KinesisError::new(Code::InternalFailure, "the put returned nothing"))?;
        Ok(map(json!({
            "ShardId": shard_id(put.shard),
            "SequenceNumber": names::seq(put.seq),
            "EncryptionType": encryption_type(&s.meta()),
        })))
    })
    .await
}

pub(crate) async fn put_records(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let entries = input.struct_list("Records")?;
    if entries.is_empty() || entries.len() > MAX_BATCH_RECORDS {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_RECORDS}"),
        ));
    }
    let records = entries.iter().map(read_record).collect::<Result<Vec<_>, _>>()?;
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let refs: Vec<PutRecord<'_>> = records
            .iter()
            .map(|r| PutRecord {
                partition_key: r.partition_key.as_bytes(),
                data: &r.data,
                explicit_hash_key: r.explicit_hash_key,
            })
            .collect();
        let results = s.put_each(&refs).map_err(|e| from_engine(&e))?;
        let mut failed = 0usize;
        let out: Vec<Value> = results
            .into_iter()
            .map(|r| match r {
                Ok(put) => json!({"SequenceNumber": names::seq(put.seq), "ShardId": shard_id(put.shard)}),
                Err(e) => {
                    failed += 1;
                    let e = from_engine(&e);
                    json!({"ErrorCode": e.code.shape(), "ErrorMessage": e.message})
                }
            })
            .collect();
        Ok(map(json!({
            "FailedRecordCount": failed,
            "Records": out,
            "EncryptionType": encryption_type(&s.meta()),
        })))
    })
    .await
}

pub(crate) async fn get_shard_iterator(ctx: Ctx, input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let shard = names::parse_shard_id(input.required_str("ShardId")?)?;
    let kind = input.required_str("ShardIteratorType")?;
    let start = match kind {
        "TRIM_HORIZON" => StartingPosition::TrimHorizon,
        "LATEST" => StartingPosition::Latest,
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let text = input.str("StartingSequenceNumber")?.ok_or_else(|| {
                KinesisError::invalid(format!(
                    "The StartingSequenceNumber parameter is required for ShardIteratorType {kind}."
                ))
            })?;
            let wire = names::parse_seq("startingSequenceNumber", text)?;
            names::start_at(wire, kind == "AFTER_SEQUENCE_NUMBER")
        }
        "AT_TIMESTAMP" => {
            let seconds = match input.get("Timestamp") {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(_) => return Err(KinesisError::invalid("Timestamp must be epoch seconds.")),
                None => {
                    return Err(KinesisError::invalid(
                        "The Timestamp parameter is required for ShardIteratorType AT_TIMESTAMP.",
                    ));
                }
            };
            StartingPosition::AtTimestamp((seconds.max(0.0) * 1000.0) as u64)
        }
        other => {
            return Err(KinesisError::new(
                Code::ValidationException,
                format!("1 validation error detected: Value '{}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", shorten(other)),
            ));
        }
    };
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let iterator = s.iterator(shard, start).map_err(|e| match e {
            Error::NotFound { kind: "shard", .. } => KinesisError::new(
                Code::ResourceNotFoundException,
                format!(
                    "Shard {} in stream {} under account {account} does not exist",
                    shard_id(shard),
                    shorten(&name)
                ),
            ),
            other => from_engine(&other),
        })?;
        let position = IteratorPosition {
            stream: name.clone(),
            incarnation: s.meta().incarnation,
            shard,
            seq: iterator.position(),
        };
        let token = names::seal_iterator(engine, &position).map_err(|e| from_engine(&e))?;
        Ok(map(json!({"ShardIterator": token})))
    })
    .await
}

pub(crate) async fn get_records(ctx: Ctx, input: Input) -> Output {
    let token = input.required_str("ShardIterator")?.to_string();
    let limit = match input.int("Limit")? {
        None => crate::stream::iterator::MAX_RECORDS_PER_READ,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(KinesisError::new(
                Code::ValidationException,
                format!("1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"),
            ));
        }
    };
    let lifetime_ms = u64::try_from(ctx.shared.config.kinesis_iterator_lifetime.as_millis()).unwrap_or(u64::MAX);
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let position = names::open_iterator(engine, &token, lifetime_ms)?;
        let name = position.stream.clone();
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let meta = s.meta();
        if meta.incarnation != position.incarnation {
            return Err(KinesisError::no_stream(&name, &account));
        }
        let mut iterator =
            s.iterator(position.shard, StartingPosition::AtSequence(position.seq)).map_err(|e| from_engine(&e))?;
        let batch = iterator.next_batch(limit).map_err(|e| from_engine(&e))?;
        let encrypted = meta.encryption.is_some();
        let records: Vec<Value> = batch
            .records
            .iter()
            .map(|r| {
                let mut record = json!({
                    "SequenceNumber": names::seq(r.seq),
                    "ApproximateArrivalTimestamp": epoch_seconds(r.time_ms),
                    "Data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "PartitionKey": String::from_utf8_lossy(&r.partition_key),
                });
                if encrypted {
                    record["EncryptionType"] = Value::String("KMS".into());
                }
                record
            })
            .collect();
        let mut out = map(json!({"Records": records, "MillisBehindLatest": batch.millis_behind_latest}));
        let ended =
            s.shard_end(position.shard).map_err(|e| from_engine(&e))?.is_some_and(|end| iterator.position() >= end);
        if ended {
            out.insert("ChildShards".into(), Value::Array(child_shards(&s.child_shards(position.shard))));
        } else {
            let next = IteratorPosition { seq: iterator.position(), ..position };
            let token = names::seal_iterator(engine, &next).map_err(|e| from_engine(&e))?;
            out.insert("NextShardIterator".into(), Value::String(token));
        }
        Ok(out)
    })
    .await
}

/// Kinesis's `ChildShards`: each child's id, parents and hash key range.
pub(crate) fn child_shards(children: &[crate::stream::ShardMeta]) -> Vec<Value> {
    children
        .iter()
        .map(|c| {
            json!({
                "ShardId": shard_id(c.id),
                "ParentShards": c.parents.iter().map(|p| shard_id(*p)).collect::<Vec<_>>(),
                "HashKeyRange": {"StartingHashKey": c.hash_start.to_string(), "EndingHashKey": c.hash_end.to_string()},
            })
        })
        .collect()
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
