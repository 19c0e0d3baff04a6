//! Firehose's destination configurations, read into the engine's and described back.
//!
//! An S3 destination (`S3DestinationConfiguration` or `ExtendedS3DestinationConfiguration`)
//! is a directory: bucket `B` is `BUCKETS/B` (`ServerConfig::buckets_dir`, by default
//! `DATA_DIR/buckets`), and its `Prefix` names subdirectories there. An HTTP endpoint
//! destination keeps its `S3Configuration` the same way, as the backup directory. What the
//! engine does not interpret (role and bucket ARNs, prefixes) is kept in the delivery stream's
//! attributes and described back as given.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::errors::FirehoseError;
use crate::firehose::{
    BackupMode, Buffering, ContentEncoding, DeliveryStreamConfig, Destination, DirectoryDestination, FileCompression,
    HttpDestination,
};
use crate::server::wire::Input;

/// The destination id of a delivery stream's one destination, as Firehose names it.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// Destination parameters weir does not serve (each is an `InvalidArgumentException`).
pub const UNSUPPORTED: &[&str] = &[
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
    "KinesisStreamSourceConfiguration",
    "MSKSourceConfiguration",
    "DatabaseSourceConfiguration",
    "DeliveryStreamEncryptionConfigurationInput",
];

/// Reads the one destination of a `CreateDeliveryStream` request.
pub fn read(input: &Input, buckets: &Path) -> Result<DeliveryStreamConfig, FirehoseError> {
    if let Some(p) = UNSUPPORTED.iter().find(|p| input.get(p).is_some()) {
        return Err(FirehoseError::invalid(format!(
            "{p} is not supported by this endpoint: weir delivers DirectPut streams to S3 (a directory) or to an HTTP endpoint."
        )));
    }
    let given: Vec<&str> =
        ["S3DestinationConfiguration", "ExtendedS3DestinationConfiguration", "HttpEndpointDestinationConfiguration"]
            .into_iter()
            .filter(|p| input.get(p).is_some())
            .collect();
    let [kind] = given[..] else {
        return Err(FirehoseError::invalid(format!(
            "Exactly one destination configuration is required (S3DestinationConfiguration, ExtendedS3DestinationConfiguration or HttpEndpointDestinationConfiguration), not {}.",
            given.len()
        )));
    };
    let Some(section) = input.structure(kind)? else {
        return Err(FirehoseError::invalid(format!("{kind} is required.")));
    };
    let mut attributes = BTreeMap::from([(
        "DestinationKind".to_string(),
        kind.trim_end_matches("DestinationConfiguration").to_string(),
    )]);
    let destination = if kind == "HttpEndpointDestinationConfiguration" {
        Destination::Http(read_http(&section, buckets, &mut attributes)?)
    } else {
        Destination::Directory(read_s3(
            &section,
            buckets,
            &mut attributes,
            "",
            kind == "ExtendedS3DestinationConfiguration",
        )?)
    };
    Ok(DeliveryStreamConfig { destination, tags: BTreeMap::new(), attributes })
}

/// An S3 configuration as a directory; `key` prefixes the attribute names it leaves.
fn read_s3(
    s3: &Input,
    buckets: &Path,
    attributes: &mut BTreeMap<String, String>,
    key: &str,
    extended: bool,
) -> Result<DirectoryDestination, FirehoseError> {
    let role = s3.required_str("RoleARN")?;
    let bucket_arn = s3.required_str("BucketARN")?;
    let bucket = bucket_name(bucket_arn)?;
    let prefix = s3.str("Prefix")?.unwrap_or_default();
    let mut dir = buckets.join(bucket);
    for part in prefix_dirs(prefix)? {
        dir.push(part);
    }
    let mut d = DirectoryDestination::new(dir);
    if let Some(hints) = s3.structure("BufferingHints")? {
        d.buffering = hints_of(&hints, (1, 128), "BufferingHints")?;
    }
    d.compression = match s3.str("CompressionFormat")?.unwrap_or("UNCOMPRESSED") {
        "UNCOMPRESSED" => FileCompression::None,
        "GZIP" => FileCompression::Gzip,
        other @ ("ZIP" | "Snappy" | "HADOOP_SNAPPY") => {
            return Err(FirehoseError::invalid(format!(
                "CompressionFormat {other} is not supported by this endpoint (UNCOMPRESSED and GZIP are)."
            )))
        }
        other => {
            return Err(FirehoseError::invalid(format!(
                "CompressionFormat {:?} is not a compression format.",
                short(other)
            )))
        }
    };
    if let Some(e) = s3.structure("EncryptionConfiguration")? {
        if e.get("KMSEncryptionConfig").is_some() {
            return Err(FirehoseError::invalid(
                "KMS encryption of delivered objects is not supported by this endpoint.",
            ));
        }
    }
    if extended {
        for p in ["DataFormatConversionConfiguration", "DynamicPartitioningConfiguration", "S3BackupConfiguration"] {
            if s3.get(p).is_some() {
                return Err(FirehoseError::invalid(format!("{p} is not supported by this endpoint.")));
            }
        }
        if s3.str("S3BackupMode")?.is_some_and(|m| m != "Disabled") {
            return Err(FirehoseError::invalid("S3BackupMode Enabled is not supported by this endpoint."));
        }
        d.newline_delimited = read_processing(s3)?;
        if let Some(ext) = s3.str("FileExtension")?.filter(|e| !e.is_empty()) {
            return Err(FirehoseError::invalid(format!(
                "FileExtension {:?} is not supported by this endpoint.",
                short(ext)
            )));
        }
    }
    attributes.insert(format!("{key}RoleARN"), role.to_string());
    attributes.insert(format!("{key}BucketARN"), bucket_arn.to_string());
    attributes.insert(format!("{key}Prefix"), prefix.to_string());
    if let Some(p) = s3.str("ErrorOutputPrefix")? {
        attributes.insert(format!("{key}ErrorOutputPrefix"), p.to_string());
    }
    Ok(d)
}

/// `ProcessingConfiguration`: only the `AppendDelimiterToRecord` processor (a newline after
/// each record). Returns whether it is on.
fn read_processing(s3: &Input) -> Result<bool, FirehoseError> {
    let Some(p) = s3.structure("ProcessingConfiguration")? else { return Ok(false) };
    if p.bool("Enabled")? == Some(false) {
        return Ok(false);
    }
    let mut delimiter = false;
    for processor in p.struct_list("Processors")? {
        match processor.required_str("Type")? {
            "AppendDelimiterToRecord" => delimiter = true,
            other => {
                return Err(FirehoseError::invalid(format!(
                    "Processor {:?} is not supported by this endpoint (AppendDelimiterToRecord is).",
                    short(other)
                )))
            }
        }
    }
    Ok(delimiter)
}

fn read_http(
    h: &Input,
    buckets: &Path,
    attributes: &mut BTreeMap<String, String>,
) -> Result<HttpDestination, FirehoseError> {
    let Some(endpoint) = h.structure("EndpointConfiguration")? else {
        return Err(FirehoseError::invalid("HttpEndpointDestinationConfiguration.EndpointConfiguration is required."));
    };
    let Some(s3) = h.structure("S3Configuration")? else {
        return Err(FirehoseError::invalid("HttpEndpointDestinationConfiguration.S3Configuration is required."));
    };
    if h.get("ProcessingConfiguration").is_some() || h.get("SecretsManagerConfiguration").is_some() {
        return Err(FirehoseError::invalid(
            "ProcessingConfiguration and SecretsManagerConfiguration of an HTTP endpoint are not supported by this endpoint.",
        ));
    }
    let backup = read_s3(&s3, buckets, attributes, "S3.", false)?;
    let mut d = HttpDestination::new(endpoint.required_str("Url")?, backup.dir.clone());
    d.backup = backup;
    d.name = endpoint.str("Name")?.map(str::to_string);
    d.access_key = endpoint.str("AccessKey")?.map(str::to_string);
    if let Some(hints) = h.structure("BufferingHints")? {
        d.buffering = hints_of(&hints, (1, 64), "BufferingHints")?;
    }
    if let Some(request) = h.structure("RequestConfiguration")? {
        d.content_encoding = match request.str("ContentEncoding")?.unwrap_or("NONE") {
            "NONE" => ContentEncoding::None,
            "GZIP" => ContentEncoding::Gzip,
            other => {
                return Err(FirehoseError::invalid(format!("ContentEncoding {:?} must be NONE or GZIP.", short(other))))
            }
        };
        for a in request.struct_list("CommonAttributes")? {
            let name = a.required_str("AttributeName")?.to_string();
            let value = a.required_str("AttributeValue")?.to_string();
            if d.common_attributes.insert(name.clone(), value).is_some() {
                return Err(FirehoseError::invalid(format!("Common attribute {:?} is given twice.", short(&name))));
            }
        }
    }
    if let Some(retry) = h.structure("RetryOptions")? {
        if let Some(s) = retry.int("DurationInSeconds")? {
            if !(0..=7200).contains(&s) {
                return Err(FirehoseError::invalid(format!(
                    "RetryOptions.DurationInSeconds must be 0 to 7200, not {s}."
                )));
            }
            d.retry_ms = s as u64 * 1000;
        }
    }
    d.backup_mode = match h.str("S3BackupMode")?.unwrap_or("FailedDataOnly") {
        "FailedDataOnly" => BackupMode::FailedOnly,
        "AllData" => BackupMode::AllData,
        other => {
            return Err(FirehoseError::invalid(format!(
                "S3BackupMode {:?} must be FailedDataOnly or AllData.",
                short(other)
            )))
        }
    };
    if let Some(role) = h.str("RoleARN")? {
        attributes.insert("RoleARN".into(), role.to_string());
    }
    Ok(d)
}

fn hints_of(hints: &Input, (min_mib, max_mib): (i64, i64), what: &str) -> Result<Buffering, FirehoseError> {
    let size = hints.int("SizeInMBs")?.unwrap_or(5);
    let interval = hints.int("IntervalInSeconds")?.unwrap_or(300);
    if !(min_mib..=max_mib).contains(&size) {
        return Err(FirehoseError::invalid(format!("{what}.SizeInMBs must be {min_mib} to {max_mib}, not {size}.")));
    }
    if !(0..=900).contains(&interval) {
        return Err(FirehoseError::invalid(format!("{what}.IntervalInSeconds must be 0 to 900, not {interval}.")));
    }
    Ok(Buffering::of(size as u64, Duration::from_secs(interval as u64)))
}

/// The bucket of `arn:PARTITION:s3:::BUCKET`: 1-255 of `[A-Za-z0-9._-]`, not `.` or `..`
/// (Firehose's pattern, which also keeps it one directory name).
fn bucket_name(arn: &str) -> Result<&str, FirehoseError> {
    let bad =
        || FirehoseError::invalid(format!("BucketARN {:?} is not an S3 bucket ARN (arn:aws:s3:::BUCKET).", short(arn)));
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("s3"), Some(""), Some(""), Some(bucket)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let ok = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket != "."
        && bucket != ".."
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(bucket)
    } else {
        Err(bad())
    }
}

/// The subdirectories a `Prefix` names: its `/`-separated parts, each of S3's safe characters
/// (letters, digits and `! - _ . * ' ( ) =`), never `.` or `..`.
fn prefix_dirs(prefix: &str) -> Result<Vec<&str>, FirehoseError> {
    if prefix.contains("!{") {
        return Err(FirehoseError::invalid(
            "Prefix expressions (!{timestamp:...}, !{firehose:...}) are not supported by this endpoint.",
        ));
    }
    let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    for p in &parts {
        let safe = p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()=".contains(&b));
        if !safe || *p == "." || *p == ".." || p.len() > 255 {
            return Err(FirehoseError::invalid(format!(
                "Prefix {:?}: each part must be letters, digits and ! - _ . * ' ( ) =, and not . or ..",
                short(prefix)
            )));
        }
    }
    Ok(parts)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The `Destinations` entry of `DescribeDeliveryStream`.
pub fn describe(config: &DeliveryStreamConfig) -> Value {
    let a = &config.attributes;
    let mut entry = Map::new();
    entry.insert("DestinationId".into(), json!(DESTINATION_ID));
    match &config.destination {
        Destination::Directory(d) => {
            let s3 = s3_description(d, a, "");
            let mut extended = s3.clone();
            extended.insert("S3BackupMode".into(), json!("Disabled"));
            if d.newline_delimited {
                extended.insert(
                    "ProcessingConfiguration".into(),
                    json!({"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}]}),
                );
            }
            entry.insert("S3DestinationDescription".into(), Value::Object(s3));
            entry.insert("ExtendedS3DestinationDescription".into(), Value::Object(extended));
        }
        Destination::Http(h) => {
            let mut endpoint = json!({"Url": h.url});
            if let Some(name) = &h.name {
                endpoint["Name"] = json!(name);
            }
            let attributes: Vec<Value> =
                h.common_attributes.iter().map(|(k, v)| json!({"AttributeName": k, "AttributeValue": v})).collect();
            let mut http = json!({
                "EndpointConfiguration": endpoint,
                "BufferingHints": hints_description(&h.buffering),
                "CloudWatchLoggingOptions": {"Enabled": false},
                "RequestConfiguration": {
                    "ContentEncoding": if h.content_encoding == ContentEncoding::Gzip { "GZIP" } else { "NONE" },
                    "CommonAttributes": attributes,
                },
                "RetryOptions": {"DurationInSeconds": h.retry_ms / 1000},
                "S3BackupMode": if h.backup_mode == BackupMode::AllData { "AllData" } else { "FailedDataOnly" },
                "S3DestinationDescription": Value::Object(s3_description(&h.backup, a, "S3.")),
            });
            if let Some(role) = a.get("RoleARN") {
                http["RoleARN"] = json!(role);
            }
            entry.insert("HttpEndpointDestinationDescription".into(), http);
        }
    }
    Value::Object(entry)
}

fn hints_description(b: &Buffering) -> Value {
    json!({"SizeInMBs": b.size_bytes >> 20, "IntervalInSeconds": b.interval_ms / 1000})
}

fn s3_description(d: &DirectoryDestination, a: &BTreeMap<String, String>, key: &str) -> Map<String, Value> {
    let mut s3 = Map::new();
    for name in ["RoleARN", "BucketARN", "Prefix", "ErrorOutputPrefix"] {
        if let Some(v) = a.get(&format!("{key}{name}")) {
            s3.insert(name.into(), json!(v));
        }
    }
    s3.insert("BufferingHints".into(), hints_description(&d.buffering));
    s3.insert(
        "CompressionFormat".into(),
        json!(match d.compression {
            FileCompression::None => "UNCOMPRESSED",
            FileCompression::Gzip => "GZIP",
            FileCompression::Zstd => "ZSTD",
        }),
    );
    s3.insert("EncryptionConfiguration".into(), json!({"NoEncryptionConfig": "NoEncryption"}));
    s3.insert("CloudWatchLoggingOptions".into(), json!({"Enabled": false}));
    s3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Protocol;

    fn input(v: Value) -> Input {
        Input { protocol: Protocol::Json, params: v.as_object().cloned().unwrap_or_default() }
    }

    #[test]
    fn buckets_and_prefixes_stay_under_the_buckets_directory() {
        let root = Path::new("/b");
        let s3 = |bucket: &str, prefix: &str| {
            read(
                &input(
                    json!({"S3DestinationConfiguration": {"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": bucket, "Prefix": prefix}}),
                ),
                root,
            )
        };
        let Destination::Directory(d) = s3("arn:aws:s3:::logs", "year=2024/app/").unwrap().destination else {
            panic!()
        };
        assert_eq!(d.dir, Path::new("/b/logs/year=2024/app"));
        for (bucket, prefix) in [
            ("arn:aws:s3:::..", ""),
            ("arn:aws:s3:::a/b", ""),
            ("arn:aws:s3:::", ""),
            ("arn:aws:sqs:::a", ""),
            ("logs", ""),
            ("arn:aws:s3:::logs", "../x"),
            ("arn:aws:s3:::logs", "a/./b"),
            ("arn:aws:s3:::logs", "!{timestamp:yyyy}/"),
            ("arn:aws:s3:::logs", "a\\b"),
        ] {
            assert!(s3(bucket, prefix).is_err(), "{bucket} {prefix}");
        }
    }

    #[test]
    fn exactly_one_supported_destination() {
        let root = Path::new("/b");
        assert!(read(&input(json!({})), root).is_err());
        assert!(read(&input(json!({"RedshiftDestinationConfiguration": {}})), root).is_err());
        let s3 = json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::x"});
        assert!(read(
            &input(json!({"S3DestinationConfiguration": s3, "ExtendedS3DestinationConfiguration": s3})),
            root
        )
        .is_err());
        let zip = json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::x", "CompressionFormat": "ZIP"});
        assert!(read(&input(json!({"S3DestinationConfiguration": zip})), root).is_err());
    }

    #[test]
    fn an_http_endpoint_reads_and_describes_back() {
        let v = json!({"HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": "http://127.0.0.1:1/in", "Name": "sink", "AccessKey": "k"},
            "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 0},
            "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "a", "AttributeValue": "1"}]},
            "RetryOptions": {"DurationInSeconds": 30},
            "S3BackupMode": "AllData",
            "S3Configuration": {"RoleARN": "role", "BucketARN": "arn:aws:s3:::bk", "Prefix": "failed/"},
        }});
        let config = read(&input(v), Path::new("/r")).unwrap();
        let Destination::Http(h) = &config.destination else { panic!() };
        assert_eq!(h.backup.dir, Path::new("/r/bk/failed"));
        assert_eq!((h.retry_ms, h.buffering.size_bytes, h.content_encoding), (30_000, 2 << 20, ContentEncoding::Gzip));
        let d = describe(&config);
        let http = &d["HttpEndpointDestinationDescription"];
        assert_eq!(
            http["EndpointConfiguration"],
            json!({"Url": "http://127.0.0.1:1/in", "Name": "sink"}),
            "no access key shown"
        );
        assert_eq!(http["S3DestinationDescription"]["BucketARN"], "arn:aws:s3:::bk");
        assert_eq!(http["S3DestinationDescription"]["Prefix"], "failed/");
        assert_eq!(http["RequestConfiguration"]["CommonAttributes"][0]["AttributeName"], "a");
        assert_eq!(http["S3BackupMode"], "AllData");
        assert_eq!(http["RetryOptions"]["DurationInSeconds"], 30);
    }
}
