//! CreateDeliveryStream, DeleteDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams.

use serde_json::{json, Map, Value};

use super::errors::{Code, FirehoseError};
use super::{destinations, Ctx, Output};
use crate::engine::tags::Tags;
use crate::server::wire::Input;
use crate::Error;

/// Most delivery stream names one `ListDeliveryStreams` returns when it is not told (Firehose's
/// default), and at most.
const DEFAULT_LIST_LIMIT: i64 = 10;
const MAX_LIST_LIMIT: i64 = 10_000;
/// The delivery stream types, as Firehose names them; weir serves `DirectPut`.
const TYPES: &[&str] = &["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"];

/// A delivery stream name as Firehose checks it: 1-64 of `[a-zA-Z0-9_.-]`.
pub(crate) fn name_of(input: &Input) -> Result<String, FirehoseError> {
    let name = input.required_str("DeliveryStreamName")?;
    crate::firehose::validate_name(name).map_err(|e| FirehoseError::invalid(e.to_string()))?;
    Ok(name.to_string())
}

fn not_found(name: &str, ctx: &Ctx) -> FirehoseError {
    FirehoseError::new(
        Code::ResourceNotFound,
        format!("Firehose stream {name} under account {} not found.", ctx.shared.identity.account_id),
    )
}

/// `CreateDeliveryStream`: DirectPut, to S3 (a directory) or an HTTP endpoint.
pub(crate) async fn create_delivery_stream(ctx: Ctx, input: Input) -> Output {
    let name = name_of(&input)?;
    match input.str("DeliveryStreamType")?.unwrap_or("DirectPut") {
        "DirectPut" => {}
        t if TYPES.contains(&t) => {
            return Err(FirehoseError::invalid(format!(
                "DeliveryStreamType {t} is not supported by this endpoint (DirectPut is)."
            )))
        }
        t => {
            return Err(FirehoseError::invalid(format!(
                "DeliveryStreamType {:?} is not a delivery stream type.",
                t.chars().take(64).collect::<String>()
            )))
        }
    }
    let buckets = ctx.shared.buckets_dir();
    let mut config = destinations::read(&input, &buckets)?;
    config.tags = read_tags(&input)?;
    let arn = ctx.arn(&name);
    let account = ctx.shared.identity.account_id.clone();
    let created = name.clone();
    ctx.engine(move |e| e.create_delivery_stream(&created, config)).await.map_err(|err| match err.code {
        Code::ResourceInUse => FirehoseError::new(
            Code::ResourceInUse,
            format!("Firehose stream {name} under account {account} already exists."),
        ),
        _ => err,
    })?;
    ctx.shared.firehose.wake();
    Ok(Map::from_iter([("DeliveryStreamARN".to_string(), json!(arn))]))
}

fn read_tags(input: &Input) -> Result<Tags, FirehoseError> {
    let mut tags = Tags::new();
    for t in input.struct_list("Tags")? {
        let key = t.required_str("Key")?.to_string();
        let value = t.str("Value")?.unwrap_or_default().to_string();
        if tags.insert(key.clone(), value).is_some() {
            return Err(FirehoseError::invalid(format!(
                "Tag key {:?} is given twice.",
                key.chars().take(64).collect::<String>()
            )));
        }
    }
    if tags.len() > crate::engine::tags::MAX_TAGS {
        return Err(FirehoseError::new(
            Code::LimitExceeded,
            format!("A delivery stream has at most 50 tags, not {}.", tags.len()),
        ));
    }
    Ok(tags)
}

/// `DeleteDeliveryStream`: gone at once, with the records it had not delivered.
pub(crate) async fn delete_delivery_stream(ctx: Ctx, input: Input) -> Output {
    let name = name_of(&input)?;
    let _force = input.bool("AllowForceDelete")?;
    let deleted = name.clone();
    match ctx.engine(move |e| e.delete_delivery_stream(&deleted)).await {
        Ok(()) => {}
        Err(e) if e.code == Code::ResourceNotFound => return Err(not_found(&name, &ctx)),
        Err(e) => return Err(e),
    }
    ctx.shared.firehose.wake();
    Ok(Map::new())
}

/// `DescribeDeliveryStream`.
pub(crate) async fn describe_delivery_stream(ctx: Ctx, input: Input) -> Output {
    let name = name_of(&input)?;
    if let Some(limit) = input.int("Limit")? {
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(FirehoseError::invalid(format!("Limit must be 1 to {MAX_LIST_LIMIT}, not {limit}.")));
        }
    }
    let after = input.str("ExclusiveStartDestinationId")?.map(str::to_string);
    let looked_up = name.clone();
    let def = match ctx.engine(move |e| e.delivery_stream(&looked_up).map(|d| d.def().clone())).await {
        Ok(def) => def,
        Err(e) if e.code == Code::ResourceNotFound => return Err(not_found(&name, &ctx)),
        Err(e) => return Err(e),
    };
    let destinations = if after.as_deref() == Some(destinations::DESTINATION_ID) {
        Vec::new()
    } else {
        vec![destinations::describe(&def.config)]
    };
    let description = json!({
        "DeliveryStreamName": def.name,
        "DeliveryStreamARN": ctx.arn(&def.name),
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": "DirectPut",
        "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
        "VersionId": "1",
        "CreateTimestamp": def.created_ms as f64 / 1000.0,
        "Source": {"DirectPutSourceDescription": {}},
        "Destinations": destinations,
        "HasMoreDestinations": false,
    });
    Ok(Map::from_iter([("DeliveryStreamDescription".to_string(), description)]))
}

/// `ListDeliveryStreams`: names in order, `Limit` at a time after
/// `ExclusiveStartDeliveryStreamName`.
pub(crate) async fn list_delivery_streams(ctx: Ctx, input: Input) -> Output {
    let limit = input.int("Limit")?.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(FirehoseError::invalid(format!("Limit must be 1 to {MAX_LIST_LIMIT}, not {limit}.")));
    }
    let direct_put = match input.str("DeliveryStreamType")? {
        None | Some("DirectPut") => true,
        Some(t) if TYPES.contains(&t) => false,
        Some(t) => {
            return Err(FirehoseError::invalid(format!(
                "DeliveryStreamType {:?} is not a delivery stream type.",
                t.chars().take(64).collect::<String>()
            )))
        }
    };
    let after = input.str("ExclusiveStartDeliveryStreamName")?.map(str::to_string);
    let names: Vec<String> =
        if direct_put { ctx.engine(|e| Ok::<_, Error>(e.list_delivery_streams())).await? } else { Vec::new() };
    let rest: Vec<String> = names.into_iter().filter(|n| after.as_ref().is_none_or(|a| n > a)).collect();
    let has_more = rest.len() > limit as usize;
    let page: Vec<Value> = rest.into_iter().take(limit as usize).map(Value::String).collect();
    Ok(Map::from_iter([
        ("DeliveryStreamNames".to_string(), Value::Array(page)),
        ("HasMoreDeliveryStreams".to_string(), json!(has_more)),
    ]))
}
