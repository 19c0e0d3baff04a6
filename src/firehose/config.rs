//! What a delivery stream is made of, as the catalog keeps it: a destination (a directory, or
//! an HTTP endpoint with a backup directory), its buffering, compression and retry settings,
//! and the checks of their ranges (Firehose's).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Smallest and largest buffer size of a directory destination, as Firehose's S3 `SizeInMBs`
/// (1 to 128 MiB).
pub const DIRECTORY_BUFFER_MIB: (u64, u64) = (1, 128);
/// Smallest and largest buffer size of an HTTP endpoint, as Firehose's `SizeInMBs` (1 to 64
/// MiB).
pub const HTTP_BUFFER_MIB: (u64, u64) = (1, 64);
/// Longest buffering interval, as Firehose's `IntervalInSeconds` (0 to 900 s).
pub const MAX_BUFFER_INTERVAL: Duration = Duration::from_secs(900);
/// Longest retry duration of an HTTP endpoint, as Firehose's `DurationInSeconds` (0 to 7,200).
pub const MAX_RETRY_DURATION: Duration = Duration::from_secs(7200);
/// Default buffer size: 5 MiB, as Firehose.
pub const DEFAULT_BUFFER_BYTES: u64 = 5 << 20;
/// Default buffering interval: 300 s, as Firehose.
pub const DEFAULT_BUFFER_INTERVAL: Duration = Duration::from_secs(300);
/// Default retry duration of an HTTP endpoint: 300 s, as Firehose.
pub const DEFAULT_RETRY_DURATION: Duration = Duration::from_secs(300);
/// Longest access key of an HTTP endpoint, as Firehose (4,096 bytes).
pub const MAX_ACCESS_KEY_BYTES: usize = 4096;
/// Longest endpoint URL, as Firehose.
pub const MAX_URL_BYTES: usize = 1000;
/// Most common attributes of an HTTP endpoint, as Firehose.
pub const MAX_COMMON_ATTRIBUTES: usize = 50;
/// Longest attribute name (256) and value (1,024), as Firehose.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 256;
/// See [`MAX_ATTRIBUTE_NAME_BYTES`].
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;

/// When a buffer is delivered: once it holds `size_bytes` of record data, or once its oldest
/// record has waited `interval`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffering {
    /// Bytes of record data (before compression).
    pub size_bytes: u64,
    /// How long the oldest record may wait, in milliseconds.
    pub interval_ms: u64,
}

impl Buffering {
    /// Firehose's defaults: 5 MiB or 300 s.
    pub fn new() -> Buffering {
        Buffering { size_bytes: DEFAULT_BUFFER_BYTES, interval_ms: DEFAULT_BUFFER_INTERVAL.as_millis() as u64 }
    }

    /// `size_mib` MiB or `interval` (whole seconds), whichever comes first.
    pub fn of(size_mib: u64, interval: Duration) -> Buffering {
        Buffering {
            size_bytes: size_mib.saturating_mul(1 << 20),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The interval as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    fn validate(&self, what: &str, (min_mib, max_mib): (u64, u64)) -> Result<()> {
        if self.size_bytes < min_mib << 20 || self.size_bytes > max_mib << 20 {
            return Err(Error::InvalidArgument(format!(
                "{what} buffer size must be {min_mib} to {max_mib} MiB, not {} bytes",
                self.size_bytes
            )));
        }
        if self.interval_ms > MAX_BUFFER_INTERVAL.as_millis() as u64 {
            return Err(Error::InvalidArgument(format!(
                "{what} buffering interval must be 0 to 900 seconds, not {} ms",
                self.interval_ms
            )));
        }
        Ok(())
    }
}

impl Default for Buffering {
    fn default() -> Self {
        Buffering::new()
    }
}

/// How delivered files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCompression {
    /// Plain files (Firehose's `UNCOMPRESSED`).
    #[default]
    None,
    /// One gzip member per file, `.gz` (Firehose's `GZIP`).
    Gzip,
    /// One zstd frame per file, `.zst` (weir's own; no Firehose format).
    Zstd,
}

/// A destination that is a directory: batches of records become files there, as Firehose
/// writes S3 objects (see [`crate::stream::Delivery`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryDestination {
    /// Where the files go (created if missing).
    pub dir: PathBuf,
    /// When a batch becomes a file.
    pub buffering: Buffering,
    /// Compression of the files.
    pub compression: FileCompression,
    /// A newline after each record (Firehose's `AppendDelimiterToRecord` processor); without
    /// it records are concatenated as they are, as Firehose does by default.
    #[serde(default)]
    pub newline_delimited: bool,
}

impl DirectoryDestination {
    /// Firehose's defaults (5 MiB or 300 s, uncompressed, concatenated) into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> DirectoryDestination {
        DirectoryDestination {
            dir: dir.into(),
            buffering: Buffering::new(),
            compression: FileCompression::None,
            newline_delimited: false,
        }
    }

    fn validate(&self, what: &str) -> Result<()> {
        if self.dir.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(format!("{what} directory may not be empty")));
        }
        self.buffering.validate(what, DIRECTORY_BUFFER_MIB)
    }
}

/// `Content-Encoding` of the POSTs to an HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentEncoding {
    /// The JSON body as is (no `Content-Encoding` header).
    #[default]
    None,
    /// The JSON body gzipped (`Content-Encoding: gzip`).
    Gzip,
}

/// What of an HTTP endpoint's data also goes to its backup directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupMode {
    /// Only batches the endpoint did not take within the retry duration
    /// (Firehose's `FailedDataOnly`).
    #[default]
    FailedOnly,
    /// Every record, as files in the backup directory, besides the failed batches
    /// (Firehose's `AllData`).
    AllData,
}

/// A destination that is an HTTP endpoint: batches of records are POSTed in Firehose's HTTP
/// endpoint delivery format, retried for `retry_duration`, and a batch that still fails is
/// written to `backup` (under `http-endpoint-failed/`), as Firehose does with its S3 backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpDestination {
    /// The URL POSTed to (`http://` here; see `docs/compatibility.md`).
    pub url: String,
    /// A name for the endpoint, shown by describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sent verbatim as `X-Amz-Firehose-Access-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// When a batch is POSTed.
    pub buffering: Buffering,
    /// Compression of the bodies.
    pub content_encoding: ContentEncoding,
    /// Sent as `X-Amz-Firehose-Common-Attributes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_attributes: BTreeMap<String, String>,
    /// How long a batch is retried, from its first attempt, before it goes to the backup.
    pub retry_ms: u64,
    /// Where failed batches (and, with [`BackupMode::AllData`], every record) are written.
    pub backup: DirectoryDestination,
    /// What goes to the backup.
    pub backup_mode: BackupMode,
}

impl HttpDestination {
    /// Firehose's defaults (5 MiB or 300 s, no compression, 300 s of retries, failed data only
    /// to the backup) for `url`, with failed batches kept in `backup_dir`.
    pub fn new(url: impl Into<String>, backup_dir: impl Into<PathBuf>) -> HttpDestination {
        HttpDestination {
            url: url.into(),
            name: None,
            access_key: None,
            buffering: Buffering::new(),
            content_encoding: ContentEncoding::None,
            common_attributes: BTreeMap::new(),
            retry_ms: DEFAULT_RETRY_DURATION.as_millis() as u64,
            backup: DirectoryDestination::new(backup_dir),
            backup_mode: BackupMode::FailedOnly,
        }
    }

    /// The retry duration.
    pub fn retry_duration(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }

    fn validate(&self) -> Result<()> {
        check_url(&self.url)?;
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.len() > 256 {
                return Err(Error::InvalidArgument("an endpoint name must be 1 to 256 bytes, not blank".into()));
            }
        }
        if self.access_key.as_ref().is_some_and(|k| k.len() > MAX_ACCESS_KEY_BYTES || !header_safe(k)) {
            return Err(Error::InvalidArgument(format!(
                "an access key must be at most {MAX_ACCESS_KEY_BYTES} bytes of visible ASCII and spaces"
            )));
        }
        self.buffering.validate("endpoint", HTTP_BUFFER_MIB)?;
        if self.retry_ms > MAX_RETRY_DURATION.as_millis() as u64 {
            return Err(Error::InvalidArgument(format!(
                "the retry duration must be 0 to 7200 seconds, not {} ms",
                self.retry_ms
            )));
        }
        if self.common_attributes.len() > MAX_COMMON_ATTRIBUTES {
            return Err(Error::InvalidArgument(format!(
                "an endpoint has at most {MAX_COMMON_ATTRIBUTES} common attributes, not {}",
                self.common_attributes.len()
            )));
        }
        for (name, value) in &self.common_attributes {
            if name.trim().is_empty() || name.len() > MAX_ATTRIBUTE_NAME_BYTES {
                return Err(Error::InvalidArgument("a common attribute name must be 1 to 256 bytes, not blank".into()));
            }
            if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "the value of common attribute {name:?} is over {MAX_ATTRIBUTE_VALUE_BYTES} bytes"
                )));
            }
        }
        self.backup.validate("backup")
    }
}

/// Bytes a header value may carry as they are: visible ASCII and spaces.
fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

/// An endpoint URL: `http://HOST[:PORT][/PATH]`, at most 1,000 bytes, nothing a header or a
/// request line could not carry.
fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!("endpoint URL {:?}: {why}", url.chars().take(100).collect::<String>()))
    };
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(bad("must be 1 to 1000 bytes"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("may contain only visible ASCII characters"));
    }
    if url.starts_with("https://") {
        return Err(bad("weir delivers over plain HTTP only (http://); put a TLS proxy in front of an https endpoint"));
    }
    let Some(rest) = url.strip_prefix("http://") else { return Err(bad("must start with http://")) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("needs a host (and no user information)"));
    }
    Ok(())
}

/// Where a delivery stream delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    /// Files in a directory.
    Directory(DirectoryDestination),
    /// POSTs to an HTTP endpoint.
    Http(HttpDestination),
}

/// A delivery stream's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStreamConfig {
    /// Where its records go.
    pub destination: Destination,
    /// Tags (the engine checks them by its rules for tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Settings kept for whoever created it and given back as they were, which the engine
    /// does not interpret (the server keeps the S3 bucket and role ARNs of the request here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl DeliveryStreamConfig {
    /// A delivery stream to `destination`, without tags or attributes.
    pub fn new(destination: Destination) -> DeliveryStreamConfig {
        DeliveryStreamConfig { destination, tags: BTreeMap::new(), attributes: BTreeMap::new() }
    }

    /// Checks every setting against its range (the tags are the engine's to check).
    pub fn validate(&self) -> Result<()> {
        match &self.destination {
            Destination::Directory(d) => d.validate("destination"),
            Destination::Http(h) => h.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_firehoses() {
        let dir = || DirectoryDestination::new("/tmp/out");
        let ok = DeliveryStreamConfig::new(Destination::Directory(dir()));
        ok.validate().expect("defaults");
        for (size, interval, good) in
            [(1, 0, true), (128, 900, true), (0, 60, false), (129, 60, false), (5, 901, false)]
        {
            let d = DirectoryDestination { buffering: Buffering::of(size, Duration::from_secs(interval)), ..dir() };
            assert_eq!(
                DeliveryStreamConfig::new(Destination::Directory(d)).validate().is_ok(),
                good,
                "{size} {interval}"
            );
        }
        let http = |url: &str| HttpDestination::new(url, "/tmp/backup");
        for (url, good) in [
            ("http://127.0.0.1:8080/ingest?x=1", true),
            ("http://example.com", true),
            ("https://example.com", false),
            ("ftp://example.com", false),
            ("http://", false),
            ("http://user@host/", false),
            ("http://a b/", false),
            ("http://a/\r\n", false),
        ] {
            assert_eq!(DeliveryStreamConfig::new(Destination::Http(http(url))).validate().is_ok(), good, "{url}");
        }
        let big = HttpDestination { buffering: Buffering::of(65, Duration::ZERO), ..http("http://h/") };
        assert!(DeliveryStreamConfig::new(Destination::Http(big)).validate().is_err(), "64 MiB at most for HTTP");
        let long_retry = HttpDestination { retry_ms: 7_200_001, ..http("http://h/") };
        assert!(DeliveryStreamConfig::new(Destination::Http(long_retry)).validate().is_err());
        let key = HttpDestination { access_key: Some("a\nb".into()), ..http("http://h/") };
        assert!(DeliveryStreamConfig::new(Destination::Http(key)).validate().is_err(), "a header cannot carry it");
    }

    #[test]
    fn the_catalog_form_reads_back() {
        let mut h = HttpDestination::new("http://h:1/p", "/b");
        h.common_attributes.insert("team".into(), "a".into());
        h.access_key = Some("k".into());
        let config = DeliveryStreamConfig::new(Destination::Http(h));
        let json = serde_json::to_string(&config).expect("json");
        assert!(json.contains(r#""type":"http""#), "{json}");
        assert_eq!(serde_json::from_str::<DeliveryStreamConfig>(&json).expect("back"), config);
    }
}
