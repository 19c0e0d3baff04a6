//! PutRecord and PutRecordBatch: answered once the records are durable in the delivery
//! stream; its delivery task is woken to look at them.

use serde_json::{json, Map, Value};

use super::errors::{Code, FirehoseError};
use super::streams::name_of;
use super::{Ctx, Output};
use crate::firehose::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use crate::server::wire::Input;

/// The data of a `Record` structure, checked against Firehose's record size.
fn data_of(record: &Input, what: &str) -> Result<Vec<u8>, FirehoseError> {
    let data = record
        .blob("Data")
        .map_err(|_| FirehoseError::new(Code::Serialization, format!("{what}.Data is not valid base64.")))?;
    let Some(data) = data else { return Err(FirehoseError::invalid(format!("{what}.Data is required."))) };
    if data.len() > MAX_RECORD_BYTES {
        return Err(FirehoseError::invalid(format!(
            "{what}.Data is {} bytes, over the limit of {MAX_RECORD_BYTES} bytes (1,000 KiB).",
            data.len()
        )));
    }
    Ok(data)
}

fn not_found(ctx: &Ctx, name: &str) -> FirehoseError {
    FirehoseError::new(
        Code::ResourceNotFound,
        format!("Firehose stream {name} under account {} not found.", ctx.shared.identity.account_id),
    )
}

/// `PutRecord`.
pub(crate) async fn put_record(ctx: Ctx, input: Input) -> Output {
    let name = name_of(&input)?;
    let Some(record) = input.structure("Record")? else { return Err(FirehoseError::invalid("Record is required.")) };
    let data = data_of(&record, "Record")?;
    let target = name.clone();
    let id = match ctx.engine(move |e| e.delivery_stream(&target)?.put(&data)).await {
        Ok(id) => id,
        Err(e) if e.code == Code::ResourceNotFound => return Err(not_found(&ctx, &name)),
        Err(e) => return Err(e),
    };
    ctx.shared.firehose.poke(&name);
    Ok(Map::from_iter([("RecordId".to_string(), json!(id)), ("Encrypted".to_string(), json!(false))]))
}

/// `PutRecordBatch`: 1 to 500 records, 4 MiB in all, written together. The write is one frame,
/// so the records succeed or fail together: an engine that cannot take them now answers every
/// record with `ServiceUnavailableException` (and `FailedPutCount` all), as Firehose answers
/// records to retry.
pub(crate) async fn put_record_batch(ctx: Ctx, mut input: Input) -> Output {
    let name = name_of(&input)?;
    let entries = input.take_struct_list("Records")?;
    if entries.is_empty() || entries.len() > MAX_BATCH_RECORDS {
        return Err(FirehoseError::invalid(format!(
            "Records must hold 1 to {MAX_BATCH_RECORDS} records, not {}.",
            entries.len()
        )));
    }
    let mut batch = Vec::with_capacity(entries.len());
    let mut total = 0usize;
    for (i, entry) in entries.iter().enumerate() {
        let data = data_of(entry, &format!("Records[{i}]"))?;
        total += data.len();
        batch.push(data);
    }
    if total > MAX_BATCH_BYTES {
        return Err(FirehoseError::invalid(format!(
            "The records hold {total} bytes, over the limit of {MAX_BATCH_BYTES} bytes (4 MiB) for one PutRecordBatch."
        )));
    }
    let count = batch.len();
    let target = name.clone();
    let result = ctx
        .engine(move |e| {
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            e.delivery_stream(&target)?.put_batch(&refs)
        })
        .await;
    let (responses, failed): (Vec<Value>, usize) = match result {
        Ok(ids) => (ids.into_iter().map(|id| json!({"RecordId": id})).collect(), 0),
        Err(e) if e.code == Code::ResourceNotFound => return Err(not_found(&ctx, &name)),
        Err(e) if e.code == Code::InvalidArgument => return Err(e),
        Err(e) => {
            let code = if e.code == Code::InternalFailure { "InternalFailure" } else { "ServiceUnavailableException" };
            let entry = json!({"ErrorCode": code, "ErrorMessage": e.message});
            (vec![entry; count], count)
        }
    };
    if failed < count {
        ctx.shared.firehose.poke(&name);
    }
    Ok(Map::from_iter([
        ("FailedPutCount".to_string(), json!(failed)),
        ("Encrypted".to_string(), json!(false)),
        ("RequestResponses".to_string(), Value::Array(responses)),
    ]))
}
