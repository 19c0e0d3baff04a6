//! Encryption at rest for a data directory: where its keys come from ([`KeySource`]), the
//! `ENCRYPTION` file that marks a directory encrypted, and rekeying.
//!
//! A directory created with a key is encrypted from then on: every frame of every log (the
//! catalog, the message log, every stream shard and checkpoint log) is sealed with AES-256-GCM
//! under data keys of that log, which are wrapped under the key file's keys. Opening it without
//! a key fails ([`Error::KeyRequired`]), and with a key file that lacks its keys fails
//! ([`Error::WrongKey`]). A directory created without a key stays plain: opening it with one is
//! refused (weir does not encrypt a directory in place; copy the data into a new encrypted
//! directory instead). The byte layouts are in `format-spec.md`, section 11.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::format::encryption_marker::{EncryptionMarker, KeyCheck, ENCRYPTION_FILE};
use crate::format::key_file::{format_key_line, valid_key_name, Keyring, MAX_KEY_NAME_LEN};
use crate::format::sealed::{KEY_LEN, NONCE_LEN};
use crate::log::io::Vfs;
use crate::log::keys::{fill_random, LogEncryption, MAX_REUSE_PERIOD_MS, MIN_REUSE_PERIOD_MS};

/// Where the keys of an encrypted data directory come from: a key file, read when the engine
/// opens, or its text given directly.
///
/// A key file is text, one key version per line, `NAME HEX64` (a version name of 1-64
/// `[A-Za-z0-9_.-]`, then 32 random bytes in hex); the last line is the newest version, the one
/// that wraps new data keys. `weir keygen NAME >> FILE` (or [`generate_key_line`]) appends one.
/// Keep the file readable by the engine's user only: whoever reads it reads the data.
///
/// ```no_run
/// use weir::{Engine, KeySource, Options};
///
/// // keys.txt holds lines like `2025-01 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`.
/// let options = Options { key_source: Some(KeySource::file("/etc/weir/keys.txt")), ..Options::default() };
/// let engine = Engine::open("./weir-data", options)?;
/// engine.create_queue("orders", Default::default())?;
/// // Every frame written from now on is sealed; opening the directory without the key fails.
/// # Ok::<(), weir::Error>(())
/// ```
#[derive(Clone)]
pub struct KeySource(Source);

#[derive(Clone)]
enum Source {
    File(PathBuf),
    Ring(Arc<Keyring>),
}

impl std::fmt::Debug for KeySource {
    /// Names the file, never a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::File(path) => f.debug_tuple("KeySource::File").field(path).finish(),
            Source::Ring(ring) => f.debug_tuple("KeySource::Keys").field(&ring.names()).finish(),
        }
    }
}

impl KeySource {
    /// The key file at `path`, read when the engine opens.
    pub fn file(path: impl Into<PathBuf>) -> KeySource {
        KeySource(Source::File(path.into()))
    }

    /// A key file's text, parsed now.
    pub fn from_text(text: &str) -> Result<KeySource> {
        let ring = Keyring::parse(text).map_err(|e| Error::InvalidArgument(format!("key file: {e}")))?;
        Ok(KeySource(Source::Ring(Arc::new(ring))))
    }

    /// The key ring: the file read and parsed, or the text parsed before.
    pub(crate) fn keyring(&self) -> Result<Arc<Keyring>> {
        match &self.0 {
            Source::Ring(ring) => Ok(Arc::clone(ring)),
            Source::File(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io("read key file", path, e))?);
                let ring = Keyring::parse(&text)
                    .map_err(|e| Error::InvalidArgument(format!("key file {}: {e}", path.display())))?;
                Ok(Arc::new(ring))
            }
        }
    }
}

/// A new line for a key file: `NAME HEX64\n`, with 32 bytes from the operating system's random
/// source. Appended to a key file, it becomes the newest version.
pub fn generate_key_line(name: &str) -> Result<String> {
    if !valid_key_name(name) {
        return Err(Error::InvalidArgument(format!(
            "key version name {name:?}: 1-{MAX_KEY_NAME_LEN} of A-Z a-z 0-9 _ . - expected"
        )));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut())?;
    Ok(format_key_line(name, &key))
}

/// What [`crate::Engine::rekey`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RekeyReport {
    /// The key-file version every data key is now wrapped under (the newest).
    pub key_version: String,
    /// Logs whose `KEYS` file was rewritten.
    pub logs_rewritten: usize,
    /// Data keys rewrapped.
    pub data_keys_rewrapped: usize,
    /// Logs looked at.
    pub logs: usize,
}

/// Decides, at open, whether the data directory `dir` is encrypted, and checks the key against
/// it: the encryption its logs are opened with, or none. `fresh` is true for a directory that
/// holds no catalog and no data yet (a key makes it encrypted).
pub(crate) fn open_encryption(
    vfs: &dyn Vfs,
    dir: &Path,
    key_source: Option<&KeySource>,
    reuse_period: Duration,
    fresh: bool,
) -> Result<Option<Arc<LogEncryption>>> {
    let period_ms = u64::try_from(reuse_period.as_millis()).unwrap_or(u64::MAX);
    if !(MIN_REUSE_PERIOD_MS..=MAX_REUSE_PERIOD_MS).contains(&period_ms) {
        return Err(Error::InvalidArgument(format!(
            "data key reuse period {period_ms} ms: 1 minute to 24 hours expected"
        )));
    }
    let marker = read_marker(vfs, dir)?;
    let (marker, source) = match (marker, key_source) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(Error::KeyRequired { dir: dir.to_path_buf() }),
        (None, Some(_)) if !fresh => {
            return Err(Error::InvalidArgument(format!(
                "{} was created without encryption, so it cannot be opened with a key (weir does not encrypt a \
                 directory in place: open it without --key-file, or copy its data into a new directory opened with \
                 the key)",
                dir.display()
            )))
        }
        (marker, Some(source)) => (marker, source),
    };
    let keyring = source.keyring()?;
    match marker {
        Some(marker) => match marker.check(&keyring) {
            KeyCheck::Right => {}
            KeyCheck::MissingVersion => {
                return Err(Error::WrongKey {
                    dir: dir.to_path_buf(),
                    detail: format!("the key file has no key version {:?}", marker.key_version),
                })
            }
            KeyCheck::WrongKey => {
                return Err(Error::WrongKey {
                    dir: dir.to_path_buf(),
                    detail: format!("key version {:?} of the key file is another key", marker.key_version),
                })
            }
        },
        // Durably, before the catalog exists: a directory with anything in it and no marker
        // is a plain one.
        None => write_marker(vfs, dir, &keyring)?,
    }
    Ok(Some(Arc::new(LogEncryption::new(keyring, period_ms))))
}

/// The `ENCRYPTION` file of `dir`, if it has one.
pub(crate) fn read_marker(vfs: &dyn Vfs, dir: &Path) -> Result<Option<EncryptionMarker>> {
    let path = dir.join(ENCRYPTION_FILE);
    match vfs.read_file(&path) {
        Ok(bytes) => {
            EncryptionMarker::decode(&bytes).map(Some).map_err(|e| Error::corrupt(&path, e.offset as u64, e.reason))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Replaces `dir`'s `ENCRYPTION` file with one sealed under the key ring's newest version.
pub(crate) fn write_marker(vfs: &dyn Vfs, dir: &Path, keyring: &Keyring) -> Result<()> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let newest = keyring.newest();
    let marker = EncryptionMarker::seal(newest.name(), newest.key(), nonce);
    let path = dir.join(ENCRYPTION_FILE);
    vfs.write_file_atomic(&path, &marker.encode()).map_err(|e| Error::io("write", path, e))
}
