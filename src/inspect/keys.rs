//! How the tools read an encrypted data directory: with its key file they check every sealed
//! frame's tag and records, as the engine does; without it they check structure and CRCs, which
//! is all that tells a torn tail from damage.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::engine::encryption::KeySource;
use crate::error::Result;
use crate::format::batch::FrameKeys;
use crate::format::data_keys::KEYS_FILE;
use crate::format::encryption_marker::ENCRYPTION_FILE;
use crate::log::io::RealFs;
use crate::log::keys::{read_keys_file, LogEncryption, LogKeys, DEFAULT_REUSE_PERIOD_MS};

/// The key ring the tools read contents with, if they were given one.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolKeys {
    encryption: Option<Arc<LogEncryption>>,
}

impl ToolKeys {
    /// The keys of `source` (its file read now), or none.
    pub(crate) fn new(source: Option<&KeySource>) -> Result<ToolKeys> {
        let encryption = match source {
            Some(source) => Some(Arc::new(LogEncryption::new(source.keyring()?, DEFAULT_REUSE_PERIOD_MS))),
            None => None,
        };
        Ok(ToolKeys { encryption })
    }

    /// The data keys of the log in `dir`, unwrapped: none without a key ring or for a plain log.
    pub(crate) fn for_log(&self, dir: &Path) -> Result<Option<Arc<LogKeys>>> {
        match &self.encryption {
            Some(encryption) if log_is_encrypted(dir) => {
                Ok(Some(Arc::new(LogKeys::load(&RealFs, dir, Arc::clone(encryption))?)))
            }
            _ => Ok(None),
        }
    }
}

/// The keys of a log as the scan and the decoders take them.
pub(crate) fn as_frame_keys(keys: &Option<Arc<LogKeys>>) -> Option<&dyn FrameKeys> {
    keys.as_deref().map(|k| k as &dyn FrameKeys)
}

/// True if the log in `dir` is encrypted: it has data keys, or its data directory (a parent up
/// to `streams/<stream>/<log>`) has an `ENCRYPTION` file.
pub(crate) fn log_is_encrypted(dir: &Path) -> bool {
    dir.join(KEYS_FILE).is_file() || dir.ancestors().take(4).any(|d| d.join(ENCRYPTION_FILE).is_file())
}

/// How many of a log's data keys one key-file version wraps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyVersionUse {
    /// The key-file version.
    pub version: String,
    /// Data keys wrapped under it.
    pub data_keys: usize,
}

/// The key-file versions the data keys of the log in `dir` are wrapped under (readable without
/// the key: names are not secret), or why its `KEYS` file cannot be read.
pub(crate) fn key_versions(dir: &Path) -> std::result::Result<Vec<KeyVersionUse>, String> {
    let entries = read_keys_file(&RealFs, dir).map_err(|e| e.to_string())?;
    let mut out: Vec<KeyVersionUse> = Vec::new();
    for entry in entries {
        match out.iter_mut().find(|v| v.version == entry.key_version) {
            Some(v) => v.data_keys += 1,
            None => out.push(KeyVersionUse { version: entry.key_version, data_keys: 1 }),
        }
    }
    Ok(out)
}
