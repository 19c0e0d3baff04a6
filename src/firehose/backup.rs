//! The backup of batches an HTTP endpoint did not take: as Firehose writes failed data to its
//! S3 backup, one file per batch under `http-endpoint-failed/` of the backup directory, one
//! JSON object per record and line:
//! `{"attemptsMade","arrivalTimestamp","errorCode","errorMessage","attemptEndingTimestamp",
//! "rawData","requestId"}` (`rawData` in base64; times in ms since the Unix epoch).
//!
//! The file is written atomically and durably (temporary name, fsync, rename, fsync of the
//! directory) before the batch is checkpointed, so a crash leaves whole files only and never
//! loses a batch between the endpoint and the backup.

use std::path::PathBuf;

use serde::Serialize;

use super::config::{DirectoryDestination, FileCompression};
use super::http::Failure;
use crate::error::{Error, Result};
use crate::log::io::{create_dir_durably, Vfs};
use crate::stream::deliver::{compact_time, gzip};
use crate::stream::StreamRecord;
use crate::text::base64;

/// The subdirectory of the backup directory that failed batches go to (Firehose's default
/// error output prefix for HTTP endpoints).
pub const FAILED_SUBDIR: &str = "http-endpoint-failed";

/// A batch that ran out of retries.
#[derive(Debug)]
pub struct FailedBatch<'a> {
    /// Its records.
    pub records: &'a [StreamRecord],
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last one failed.
    pub failure: &'a Failure,
    /// The batch's request id.
    pub request_id: &'a str,
    /// When the last attempt ended (ms since the Unix epoch).
    pub ended_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedRecord<'a> {
    attempts_made: u32,
    arrival_timestamp: u64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: u64,
    raw_data: String,
    request_id: &'a str,
}

/// Writes `batch` to `backup`'s directory, durably; returns the file.
pub fn write_failed_batch(
    vfs: &dyn Vfs,
    backup: &DirectoryDestination,
    name: &str,
    batch: &FailedBatch<'_>,
) -> Result<PathBuf> {
    let (Some(first), Some(last)) = (batch.records.first(), batch.records.last()) else {
        return Err(Error::InvalidArgument("an empty batch has nothing to back up".into()));
    };
    let dir = backup.dir.join(FAILED_SUBDIR);
    create_dir_durably(vfs, &dir).map_err(|e| Error::io("create directory", &dir, e))?;
    let mut content = Vec::new();
    for r in batch.records {
        let line = FailedRecord {
            attempts_made: batch.attempts,
            arrival_timestamp: r.time_ms,
            error_code: &batch.failure.code,
            error_message: &batch.failure.message,
            attempt_ending_timestamp: batch.ended_ms,
            raw_data: base64(&r.data),
            request_id: batch.request_id,
        };
        serde_json::to_writer(&mut content, &line)
            .map_err(|e| Error::InvalidArgument(format!("record {} as JSON: {e}", r.seq)))?;
        content.push(b'\n');
    }
    let mut file = format!("{name}-{:020}-{:020}-{}.jsonl", first.seq, last.seq, compact_time(batch.ended_ms));
    match backup.compression {
        FileCompression::None => {}
        FileCompression::Gzip => {
            content = gzip(&content).map_err(|e| Error::io("compress", &dir, e))?;
            file.push_str(".gz");
        }
        FileCompression::Zstd => {
            content =
                zstd::bulk::compress(&content, 3).map_err(|e| Error::io("compress", &dir, std::io::Error::other(e)))?;
            file.push_str(".zst");
        }
    }
    let path = dir.join(file);
    vfs.write_file_atomic(&path, &content).map_err(|e| Error::io("write", &path, e))?;
    Ok(path)
}
