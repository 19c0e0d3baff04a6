//! The data keys of an encrypted log (`format-spec.md` section 11): made by its writer, one for
//! each reuse period, wrapped under the key file's newest version and stored in the log's `KEYS`
//! file before any frame is sealed under them; unwrapped at open for reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::format::batch::FrameKeys;
use crate::format::data_keys::{decode_keys, encode_keys, DataKeyEntry, KEYS_FILE};
use crate::format::key_file::Keyring;
use crate::format::sealed::{unwrap_key, wrap_key, SealingKey, KEY_LEN, NONCE_LEN};
use crate::log::io::Vfs;

/// Shortest data key reuse period, as SQS's `KmsDataKeyReusePeriodSeconds`.
pub const MIN_REUSE_PERIOD_MS: u64 = 60_000;
/// Longest data key reuse period.
pub const MAX_REUSE_PERIOD_MS: u64 = 24 * 3_600_000;
/// The default data key reuse period: 5 minutes.
pub const DEFAULT_REUSE_PERIOD_MS: u64 = 300_000;

/// How the logs of an encrypted data directory are encrypted: the key ring that wraps their data
/// keys and how long a writer seals frames under one data key.
pub struct LogEncryption {
    keyring: Arc<Keyring>,
    reuse_period_ms: u64,
}

impl std::fmt::Debug for LogEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEncryption").field("reuse_period_ms", &self.reuse_period_ms).finish_non_exhaustive()
    }
}

impl LogEncryption {
    /// Encryption under `keyring`, with a new data key every `reuse_period_ms` (by the clock
    /// the log's writers pass in).
    pub fn new(keyring: Arc<Keyring>, reuse_period_ms: u64) -> LogEncryption {
        LogEncryption { keyring, reuse_period_ms }
    }

    /// The key ring.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// How long one data key seals frames.
    pub fn reuse_period_ms(&self) -> u64 {
        self.reuse_period_ms
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| {
        Error::io("read random bytes", "getrandom", std::io::Error::other("the system's random source failed"))
    })
}

/// The data key a writer seals under now.
#[derive(Debug, Clone)]
pub(crate) struct CurrentKey {
    pub(crate) id: u32,
    pub(crate) key: Arc<SealingKey>,
    created_ms: u64,
}

impl CurrentKey {
    /// True while it may still seal a frame stamped `time_ms`.
    pub(crate) fn fresh_at(&self, time_ms: u64, period_ms: u64) -> bool {
        time_ms.saturating_sub(self.created_ms) < period_ms
    }
}

/// The data keys of one log.
pub struct LogKeys {
    encryption: Arc<LogEncryption>,
    path: PathBuf,
    /// What the `KEYS` file holds. Held while the file is replaced, so a writer adding a key and
    /// a rekey rewrapping them never write over each other.
    stored: Mutex<Vec<DataKeyEntry>>,
    /// The keys, unwrapped, by id.
    open: RwLock<HashMap<u32, Arc<SealingKey>>>,
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKeys").field("path", &self.path).field("keys", &self.open.read().len()).finish()
    }
}

impl FrameKeys for LogKeys {
    fn frame_key(&self, id: u32) -> Option<Arc<SealingKey>> {
        self.open.read().get(&id).cloned()
    }
}

/// Reads the `KEYS` file of the log in `dir` (none: no key yet).
pub fn read_keys_file(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<DataKeyEntry>> {
    let path = dir.join(KEYS_FILE);
    match vfs.read_file(&path) {
        Ok(bytes) => decode_keys(&bytes).map_err(|e| Error::corrupt(&path, e.offset as u64, e.reason)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

impl LogKeys {
    /// Loads and unwraps the data keys of the log in `dir`. A key wrapped under a version the key
    /// ring lacks, or that does not unwrap under it, is [`Error::WrongKey`].
    pub fn load(vfs: &dyn Vfs, dir: &Path, encryption: Arc<LogEncryption>) -> Result<LogKeys> {
        let stored = read_keys_file(vfs, dir)?;
        let mut open = HashMap::with_capacity(stored.len());
        for entry in &stored {
            let version = encryption.keyring.get(&entry.key_version).ok_or_else(|| Error::WrongKey {
                dir: dir.to_path_buf(),
                detail: format!(
                    "data key {} of {} is wrapped under key version {:?}, which the key file does not hold",
                    entry.id,
                    dir.display(),
                    entry.key_version
                ),
            })?;
            let aad = DataKeyEntry::wrap_aad(entry.id, entry.created_ms);
            let key = unwrap_key(version.key(), &aad, &entry.wrapped).map_err(|_| Error::WrongKey {
                dir: dir.to_path_buf(),
                detail: format!(
                    "data key {} of {} does not unwrap under key version {:?} of the key file",
                    entry.id,
                    dir.display(),
                    entry.key_version
                ),
            })?;
            open.insert(entry.id, Arc::new(SealingKey::new(&key)));
        }
        Ok(LogKeys { encryption, path: dir.join(KEYS_FILE), stored: Mutex::new(stored), open: RwLock::new(open) })
    }

    /// The encryption the log is under.
    pub fn encryption(&self) -> &Arc<LogEncryption> {
        &self.encryption
    }

    /// Makes a new data key, stamped `now_ms`, and stores it durably (wrapped under the key
    /// ring's newest version) before returning it: no frame is sealed under a key a crash
    /// could lose.
    pub(crate) fn new_key(&self, vfs: &dyn Vfs, now_ms: u64) -> Result<CurrentKey> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut())?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let newest = self.encryption.keyring.newest();
        let mut stored = self.stored.lock();
        let id = match stored.last() {
            None => 1,
            Some(last) => last.id.checked_add(1).ok_or_else(|| {
                Error::corrupt(&self.path, 0, "the log has used every data key id (2^32); rotate it with a new log")
            })?,
        };
        let aad = DataKeyEntry::wrap_aad(id, now_ms);
        let wrapped = wrap_key(newest.key(), nonce, &aad, &key);
        let mut next = stored.clone();
        next.push(DataKeyEntry { id, created_ms: now_ms, key_version: newest.name().to_string(), wrapped });
        vfs.write_file_atomic(&self.path, &encode_keys(&next)).map_err(|e| Error::io("write", &self.path, e))?;
        *stored = next;
        let key = Arc::new(SealingKey::new(&key));
        self.open.write().insert(id, Arc::clone(&key));
        Ok(CurrentKey { id, key, created_ms: now_ms })
    }

    /// Wraps every data key not yet under the key ring's newest version under it, replacing
    /// the `KEYS` file atomically (a crash leaves the old file or the new one, each readable
    /// with a key file holding both versions). Returns how many keys were rewrapped.
    pub fn rewrap(&self, vfs: &dyn Vfs) -> Result<usize> {
        let newest = self.encryption.keyring.newest();
        let mut stored = self.stored.lock();
        let open = self.open.read();
        let mut next = stored.clone();
        let mut count = 0;
        for entry in next.iter_mut().filter(|e| e.key_version != newest.name()) {
            let old = self.encryption.keyring.get(&entry.key_version).ok_or_else(|| Error::WrongKey {
                dir: self.path.clone(),
                detail: format!("key version {:?} is not in the key file", entry.key_version),
            })?;
            let aad = DataKeyEntry::wrap_aad(entry.id, entry.created_ms);
            let key = unwrap_key(old.key(), &aad, &entry.wrapped).map_err(|_| Error::WrongKey {
                dir: self.path.clone(),
                detail: format!("data key {} does not unwrap under key version {:?}", entry.id, entry.key_version),
            })?;
            debug_assert!(open.contains_key(&entry.id), "every stored key was unwrapped at open");
            let mut nonce = [0u8; NONCE_LEN];
            fill_random(&mut nonce)?;
            entry.wrapped = wrap_key(newest.key(), nonce, &aad, &key);
            entry.key_version = newest.name().to_string();
            count += 1;
        }
        if count > 0 {
            vfs.write_file_atomic(&self.path, &encode_keys(&next)).map_err(|e| Error::io("write", &self.path, e))?;
            *stored = next;
        }
        Ok(count)
    }

    /// The key-file versions the stored data keys are wrapped under, with how many each wraps.
    pub fn versions_in_use(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for entry in self.stored.lock().iter() {
            match out.iter_mut().find(|(name, _)| *name == entry.key_version) {
                Some((_, n)) => *n += 1,
                None => out.push((entry.key_version.clone(), 1)),
            }
        }
        out
    }
}
