//! Record operations: PutRecord, PutRecords, GetShardIterator and GetRecords.

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::errors::{from_engine, Code, KinesisError};
use super::names::{self, shard_id, IteratorPosition};
use super::streams::parse_hash_key;
use super::{epoch_seconds, Ctx, Output};
use crate::server::sqs::errors::shorten;
use crate::server::wire::{Input, ParamError};
use crate::stream::{PutRecord, PutResult, StartingPosition, StreamMeta, MAX_BATCH_RECORDS, MAX_PARTITION_KEY_LEN};
use crate::Error;

/// The records of a put, read from the request, checked, and decoded into one buffer: a batch
/// costs a few allocations, not two a record.
#[derive(Debug, Default)]
struct IncomingRecords {
    bytes: Vec<u8>,
    records: Vec<RecordSpan>,
}

/// Where one record's partition key and data are in [`IncomingRecords::bytes`].
#[derive(Debug)]
struct RecordSpan {
    partition_key: Range<usize>,
    data: Range<usize>,
    explicit_hash_key: Option<u128>,
}

impl IncomingRecords {
    /// Reads one record from a request structure.
    fn push_input(&mut self, input: &Input) -> Result<(), KinesisError> {
        self.push(input.str("PartitionKey")?, input.str("Data")?, input.str("ExplicitHashKey")?)
    }

    /// Adds a record from its members as the request gave them (`data` in base64), checked in
    /// the order the errors are reported. A record in error adds nothing.
    fn push(
        &mut self,
        partition_key: Option<&str>,
        data: Option<&str>,
        explicit_hash_key: Option<&str>,
    ) -> Result<(), KinesisError> {
        let start = self.bytes.len();
        let pushed = self.push_checked(partition_key, data, explicit_hash_key);
        if pushed.is_err() {
            self.bytes.truncate(start);
        }
        pushed
    }

    fn push_checked(
        &mut self,
        partition_key: Option<&str>,
        data: Option<&str>,
        explicit_hash_key: Option<&str>,
    ) -> Result<(), KinesisError> {
        let partition_key = partition_key.ok_or_else(|| ParamError::Missing("PartitionKey".into()))?;
        let chars = partition_key.chars().count();
        if chars == 0 || chars > MAX_PARTITION_KEY_LEN {
            return Err(KinesisError::new(
                Code::ValidationException,
                format!("1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and {MAX_PARTITION_KEY_LEN}"),
            ));
        }
        let data = data.ok_or_else(|| ParamError::Missing("Data".into()))?;
        let key_start = self.bytes.len();
        self.bytes.extend_from_slice(partition_key.as_bytes());
        let data_start = self.bytes.len();
        base64::engine::general_purpose::STANDARD
            .decode_vec(data, &mut self.bytes)
            .map_err(|_| KinesisError::new(Code::SerializationException, "Data is not valid base64."))?;
        let explicit_hash_key = explicit_hash_key.map(|k| parse_hash_key("explicitHashKey", k)).transpose()?;
        self.records.push(RecordSpan {
            partition_key: key_start..data_start,
            data: data_start..self.bytes.len(),
            explicit_hash_key,
        });
        Ok(())
    }

    /// The records as the engine takes them.
    fn put_records(&self) -> Vec<PutRecord<'_>> {
        self.records
            .iter()
            .map(|r| PutRecord {
                partition_key: &self.bytes[r.partition_key.clone()],
                data: &self.bytes[r.data.clone()],
                explicit_hash_key: r.explicit_hash_key,
            })
            .collect()
    }
}

/// A PutRecords body read typed, straight from its bytes, with each record checked and
/// decoded: the general path builds a JSON tree of every record first, which costs more than
/// the engine's own work on a batch of small records. Only a body of the expected shape reads
/// this way ([`TypedPut::read`] says `None` otherwise, and the general path takes it and words
/// the error); the first record in error is kept, so that errors come in the general path's
/// order.
pub(crate) struct TypedPut {
    stream_name: Option<String>,
    stream_arn: Option<String>,
    /// How many records the body lists.
    count: usize,
    records: IncomingRecords,
    first_error: Option<KinesisError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsBody<'a> {
    #[serde(borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "StreamARN")]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    records: Option<Vec<RecordBody<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordBody<'a> {
    // Base64 and most partition keys have no escapes: these borrow from the body.
    #[serde(borrow)]
    partition_key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
}

impl RecordBody<'_> {
    /// The bytes this record takes once decoded, at most.
    fn byte_len(&self) -> usize {
        let key = self.partition_key.as_deref().map_or(0, str::len);
        key + self.data.as_deref().map_or(0, |d| d.len() / 4 * 3 + 3)
    }
}

impl TypedPut {
    /// The body read typed, or `None` if it is not shaped as a PutRecords request expects
    /// (not JSON, a member of another type, a member twice, ...).
    pub(crate) fn read(body: &[u8]) -> Option<TypedPut> {
        let body: PutRecordsBody<'_> = serde_json::from_slice(body).ok()?;
        let listed = body.records.unwrap_or_default();
        let mut records = IncomingRecords {
            // Base64 is 4 characters for 3 bytes: room for every record's key and data.
            bytes: Vec::with_capacity(listed.iter().map(|r| r.byte_len()).sum()),
            records: Vec::with_capacity(listed.len()),
        };
        let mut first_error = None;
        for r in &listed {
            if first_error.is_none() {
                let pushed =
                    records.push(r.partition_key.as_deref(), r.data.as_deref(), r.explicit_hash_key.as_deref());
                first_error = pushed.err();
            }
        }
        Some(TypedPut {
            stream_name: body.stream_name.map(Cow::into_owned),
            stream_arn: body.stream_arn.map(Cow::into_owned),
            count: listed.len(),
            records,
            first_error,
        })
    }

    /// The members other than the records, as the general path reads them (the stream it
    /// names, for the authorization step and the log).
    pub(crate) fn stream_params(&self) -> Map<String, Value> {
        let mut params = Map::new();
        if let Some(name) = &self.stream_name {
            params.insert("StreamName".into(), Value::String(name.clone()));
        }
        if let Some(arn) = &self.stream_arn {
            params.insert("StreamARN".into(), Value::String(arn.clone()));
        }
        params
    }
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
    let mut record = IncomingRecords::default();
    record.push_input(&input)?;
    // Sequence numbers of one shard lineage always increase, so the ordering this asks for
    // holds by construction; it is checked for form only.
    if let Some(after) = input.str("SequenceNumberForOrdering")? {
        names::parse_seq("sequenceNumberForOrdering", after)?;
    }
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let put = s.put_batch(&record.put_records()).map_err(|e| from_engine(&e))?;
        let put = put.first().ok_or_else(|| KinesisError::new(Code::InternalFailure, "the put returned nothing"))?;
        Ok(map(json!({
            "ShardId": shard_id(put.shard),
            "SequenceNumber": names::seq(put.seq),
            "EncryptionType": encryption_type(&s.meta()),
        })))
    })
    .await
}

pub(crate) async fn put_records(ctx: Ctx, mut input: Input) -> Output {
    let name = ctx.stream_name(&input)?;
    let entries = input.take_struct_list("Records")?;
    check_batch_len(entries.len())?;
    let mut records = IncomingRecords::default();
    for entry in &entries {
        records.push_input(entry)?;
    }
    put_read_records(ctx, name, records).await.map(PutOutcome::into_map)
}

/// PutRecords of a body read typed ([`TypedPut`]); `input` holds its other members. The
/// answer goes as JSON ([`PutOutcome::to_json`]), as the request came.
pub(crate) async fn put_records_typed(ctx: Ctx, input: Input, put: TypedPut) -> Result<PutOutcome, KinesisError> {
    let name = ctx.stream_name(&input)?;
    check_batch_len(put.count)?;
    if let Some(error) = put.first_error {
        return Err(error);
    }
    put_read_records(ctx, name, put.records).await
}

fn check_batch_len(len: usize) -> Result<(), KinesisError> {
    if len == 0 || len > MAX_BATCH_RECORDS {
        return Err(KinesisError::new(
            Code::ValidationException,
            format!("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_RECORDS}"),
        ));
    }
    Ok(())
}

async fn put_read_records(ctx: Ctx, name: String, records: IncomingRecords) -> Result<PutOutcome, KinesisError> {
    let account = ctx.account().to_string();
    ctx.engine_with(move |engine| {
        let s = engine.stream(&name).map_err(stream_error(&name, &account))?;
        let results = s.put_each(&records.put_records()).map_err(|e| from_engine(&e))?;
        Ok(PutOutcome {
            results: results.into_iter().map(|r| r.map_err(|e| from_engine(&e))).collect(),
            encryption: encryption_type(&s.meta()),
        })
    })
    .await
}

/// What a PutRecords did, record by record, before it is written in the request's encoding.
pub(crate) struct PutOutcome {
    results: Vec<Result<PutResult, KinesisError>>,
    encryption: &'static str,
}

impl PutOutcome {
    fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.is_err()).count()
    }

    /// The answer as a JSON tree (the general path, either encoding).
    fn into_map(self) -> Map<String, Value> {
        let failed = self.failed();
        let records: Vec<Value> = self
            .results
            .into_iter()
            .map(|r| match r {
                Ok(put) => json!({"SequenceNumber": names::seq(put.seq), "ShardId": shard_id(put.shard)}),
                Err(e) => json!({"ErrorCode": e.code.shape(), "ErrorMessage": e.message}),
            })
            .collect();
        map(json!({"FailedRecordCount": failed, "Records": records, "EncryptionType": self.encryption}))
    }

    /// The same answer written straight as JSON text: a tree of 500 small objects cost about
    /// as much as the engine's put of them.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(96 + self.results.len() * 72);
        out.push_str("{\"FailedRecordCount\":");
        out.push_str(&self.failed().to_string());
        out.push_str(",\"Records\":[");
        // A batch touches a few shards: each one's id is formatted once.
        let mut shard_ids: Vec<(u32, String)> = Vec::new();
        for (i, result) in self.results.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match result {
                Ok(put) => {
                    out.push_str("{\"SequenceNumber\":\"");
                    out.push_str(&names::seq(put.seq));
                    out.push_str("\",\"ShardId\":\"");
                    let id = match shard_ids.iter().position(|(s, _)| *s == put.shard) {
                        Some(at) => at,
                        None => {
                            shard_ids.push((put.shard, shard_id(put.shard)));
                            shard_ids.len() - 1
                        }
                    };
                    out.push_str(&shard_ids[id].1);
                    out.push_str("\"}");
                }
                Err(e) => {
                    out.push_str("{\"ErrorCode\":");
                    out.push_str(&Value::from(e.code.shape()).to_string());
                    out.push_str(",\"ErrorMessage\":");
                    out.push_str(&Value::from(e.message.as_str()).to_string());
                    out.push('}');
                }
            }
        }
        out.push_str("],\"EncryptionType\":\"");
        out.push_str(self.encryption);
        out.push_str("\"}");
        out.into_bytes()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Protocol;

    /// A read's outcome as the tests compare it: each record's key, data and hash key, or the
    /// error's shape and text.
    type Outcome = Result<Vec<(Vec<u8>, Vec<u8>, Option<u128>)>, (&'static str, String)>;

    fn materialized(records: &IncomingRecords) -> Vec<(Vec<u8>, Vec<u8>, Option<u128>)> {
        let out: Vec<_> = records
            .put_records()
            .iter()
            .map(|r| (r.partition_key.to_vec(), r.data.to_vec(), r.explicit_hash_key))
            .collect();
        let used: usize = out.iter().map(|(k, d, _)| k.len() + d.len()).sum();
        assert_eq!(used, records.bytes.len(), "the buffer holds exactly the records' bytes");
        out
    }

    fn failure(e: KinesisError) -> (&'static str, String) {
        (e.code.shape(), e.message)
    }

    /// What the general path reads from `body`: a JSON tree, then each record from it.
    fn general(body: &str) -> Outcome {
        let params = match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(map)) => map,
            other => panic!("the test bodies are JSON objects: {other:?}"),
        };
        let mut input = Input { protocol: Protocol::Json, params };
        let entries = input.take_struct_list("Records").map_err(|e| failure(e.into()))?;
        check_batch_len(entries.len()).map_err(failure)?;
        let mut records = IncomingRecords::default();
        for entry in &entries {
            records.push_input(entry).map_err(failure)?;
        }
        Ok(materialized(&records))
    }

    /// What the typed path reads, or `None` where it leaves the body to the general path.
    fn typed(body: &str) -> Option<Outcome> {
        let put = TypedPut::read(body.as_bytes())?;
        Some(check_batch_len(put.count).map_err(failure).and_then(|()| match put.first_error {
            Some(e) => Err(failure(e)),
            None => Ok(materialized(&put.records)),
        }))
    }

    #[test]
    fn the_typed_path_reads_every_body_it_takes_as_the_general_path_does() {
        let long_key = "k".repeat(MAX_PARTITION_KEY_LEN + 1);
        let many: Vec<String> =
            (0..=MAX_BATCH_RECORDS).map(|i| format!(r#"{{"PartitionKey":"p{i}","Data":"AA=="}}"#)).collect();
        let bodies = [
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":"aGVsbG8="}]}"#.to_string(),
            // JSON may escape a base64 slash, and keys may hold escapes: those are copied.
            r#"{"StreamName":"s","Records":[{"PartitionKey":"\u00e9t\u00e9","Data":"\/\/8="}]}"#.to_string(),
            r#"{"StreamARN":"arn","Records":[{"PartitionKey":"a","Data":"","ExplicitHashKey":"7"}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":"AA==","ExplicitHashKey":"-1"}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":"not base64!"}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"Data":"AA=="}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a"}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"","Data":"AA=="}]}"#.to_string(),
            format!(r#"{{"StreamName":"s","Records":[{{"PartitionKey":"{long_key}"}}]}}"#),
            r#"{"StreamName":"s","Records":[{"PartitionKey":null,"Data":"AA=="}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[]}"#.to_string(),
            r#"{"StreamName":"s","Records":null}"#.to_string(),
            r#"{"StreamName":"s"}"#.to_string(),
            format!(r#"{{"StreamName":"s","Records":[{}]}}"#, many.join(",")),
            // The first record in error is the one reported, after good ones.
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":"AA=="},{"PartitionKey":"b","Data":"%"},{"Data":"AA=="}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":"AAE="},{"PartitionKey":"bb","Data":"AAEC"}]}"#.to_string(),
            // Shapes the typed reader leaves to the general path, which words their errors.
            r#"{"StreamName":"s","Records":[{"PartitionKey":5,"Data":"AA=="}]}"#.to_string(),
            r#"{"StreamName":"s","Records":[null]}"#.to_string(),
            r#"{"StreamName":"s","Records":{"PartitionKey":"a"}}"#.to_string(),
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","PartitionKey":"b","Data":"AA=="}]}"#.to_string(),
        ];
        let mut taken = 0;
        for body in &bodies {
            let expected = general(body);
            if let Some(outcome) = typed(body) {
                taken += 1;
                assert_eq!(outcome, expected, "{body}");
            }
        }
        assert_eq!(taken, 16, "the well-shaped bodies all read typed");
        assert!(matches!(general(&bodies[1]), Ok(ref r) if r[0].1 == [0xff, 0xff] && r[0].0 == "été".as_bytes()));
    }

    #[test]
    fn the_typed_path_keeps_the_stream_it_names_for_the_authorization_step() {
        let put = TypedPut::read(br#"{"StreamName":"s","StreamARN":"arn:x","Records":[]}"#).expect("typed");
        let params = put.stream_params();
        assert_eq!(params.get("StreamName"), Some(&Value::String("s".into())));
        assert_eq!(params.get("StreamARN"), Some(&Value::String("arn:x".into())));
        assert_eq!(params.len(), 2);
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn the_json_text_of_a_put_is_the_tree_the_general_path_writes() {
        let outcome = || PutOutcome {
            results: vec![
                Ok(PutResult { shard: 3, seq: 0 }),
                Err(KinesisError::new(
                    Code::ProvisionedThroughputExceededException,
                    "Rate exceeded for \"shard\" \\ 3",
                )),
                Ok(PutResult { shard: 0, seq: u64::MAX }),
                Ok(PutResult { shard: 3, seq: 41 }),
            ],
            encryption: "KMS",
        };
        let text: Value = serde_json::from_slice(&outcome().to_json()).expect("valid JSON");
        assert_eq!(text, Value::Object(outcome().into_map()));
        assert_eq!(text["Records"][2]["SequenceNumber"], "18446744073709551616", "u64::MAX + 1, no overflow");
        assert_eq!(text["Records"][3]["ShardId"], "shardId-000000000003");
        assert_eq!(text["FailedRecordCount"], 1);
    }
}
