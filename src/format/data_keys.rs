//! The `KEYS` file of an encrypted log: its data keys, each wrapped under a version of the key
//! file (`format-spec.md` section 11.2).
//!
//! ```text
//! offset size field
//!   0     8  magic "WEIRKEYS"
//!   8     2  version (1)
//!  10     2  cipher (1: AES-256-GCM)
//!  12     4  count n
//!  16     .  n entries, ids strictly increasing:
//!               id u32 | created_ms u64 | name_len u8 (1-64) | name (the key-file version)
//!               | wrapped key (60 bytes: nonce 12, sealed key 32, tag 16)
//!   .     4  crc32 of every byte before it
//! ```
//!
//! A wrapped key's associated data is "WEIRKEYS", its id and its created time
//! ([`DataKeyEntry::wrap_aad`]), so an entry cannot pass for another. Written atomically
//! (temporary file, fdatasync, rename, directory fsync).

use super::key_file::valid_key_name;
use super::sealed::{CIPHER_AES_256_GCM, WRAPPED_KEY_LEN};
use super::{DecodeError, Reader};

/// File name of the data keys of a log, inside its directory.
pub const KEYS_FILE: &str = "KEYS";
const MAGIC: [u8; 8] = *b"WEIRKEYS";
const MIN_ENTRY_LEN: usize = 4 + 8 + 1 + 1 + WRAPPED_KEY_LEN;

/// One data key of a log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyEntry {
    /// Its id, which sealed frames name.
    pub id: u32,
    /// When it was made (the log's clock): it seals frames for the reuse period from then.
    pub created_ms: u64,
    /// The version of the key file it is wrapped under.
    pub key_version: String,
    /// The key, wrapped.
    pub wrapped: [u8; WRAPPED_KEY_LEN],
}

impl DataKeyEntry {
    /// The associated data its wrapping binds.
    pub fn wrap_aad(id: u32, created_ms: u64) -> [u8; 20] {
        let mut aad = [0u8; 20];
        aad[..8].copy_from_slice(&MAGIC);
        aad[8..12].copy_from_slice(&id.to_le_bytes());
        aad[12..].copy_from_slice(&created_ms.to_le_bytes());
        aad
    }
}

/// Encodes a `KEYS` file. Panics only in debug builds on an entry whose version name the key
/// file could not hold (the key ring checked it).
pub fn encode_keys(entries: &[DataKeyEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + entries.len() * (MIN_ENTRY_LEN + 16));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&CIPHER_AES_256_GCM.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        debug_assert!(valid_key_name(&e.key_version), "a key version name the key file cannot hold");
        out.extend_from_slice(&e.id.to_le_bytes());
        out.extend_from_slice(&e.created_ms.to_le_bytes());
        out.push(e.key_version.len() as u8);
        out.extend_from_slice(e.key_version.as_bytes());
        out.extend_from_slice(&e.wrapped);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and checks a `KEYS` file.
pub fn decode_keys(buf: &[u8]) -> Result<Vec<DataKeyEntry>, DecodeError> {
    if buf.len() < 20 {
        return Err(DecodeError::new(0, format!("KEYS file is {} bytes, too short", buf.len())));
    }
    if buf[..8] != MAGIC {
        return Err(DecodeError::new(0, "not a weir KEYS file (bad magic)"));
    }
    let body = &buf[..buf.len() - 4];
    if super::le_u32(buf, buf.len() - 4) != crc32fast::hash(body) {
        return Err(DecodeError::new(buf.len() - 4, "KEYS checksum mismatch"));
    }
    let mut r = Reader::new(body);
    r.bytes(8, "magic")?;
    if r.u16("version")? != 1 {
        return Err(DecodeError::new(8, "unsupported KEYS version"));
    }
    if r.u16("cipher")? != CIPHER_AES_256_GCM {
        return Err(DecodeError::new(10, "unknown cipher"));
    }
    let count = r.u32("count")? as usize;
    if count > r.remaining() / MIN_ENTRY_LEN {
        return Err(DecodeError::new(12, format!("{count} keys cannot fit in {} bytes", r.remaining())));
    }
    let mut entries: Vec<DataKeyEntry> = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.position();
        let id = r.u32("key id")?;
        if entries.last().is_some_and(|last| last.id >= id) {
            return Err(DecodeError::new(at, "key ids do not increase"));
        }
        let created_ms = r.u64("created time")?;
        let name_len = usize::from(r.u8("name length")?);
        let name = std::str::from_utf8(r.bytes(name_len, "key version name")?)
            .ok()
            .filter(|n| valid_key_name(n))
            .ok_or_else(|| DecodeError::new(at + 13, "invalid key version name"))?;
        let mut wrapped = [0u8; WRAPPED_KEY_LEN];
        wrapped.copy_from_slice(r.bytes(WRAPPED_KEY_LEN, "wrapped key")?);
        entries.push(DataKeyEntry { id, created_ms, key_version: name.to_string(), wrapped });
    }
    if r.remaining() != 0 {
        return Err(DecodeError::new(r.position(), "bytes after the last key"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<DataKeyEntry> {
        vec![
            DataKeyEntry { id: 1, created_ms: 10, key_version: "v1".into(), wrapped: [7; WRAPPED_KEY_LEN] },
            DataKeyEntry { id: 4, created_ms: 99, key_version: "2024.b-c_d".into(), wrapped: [8; WRAPPED_KEY_LEN] },
        ]
    }

    #[test]
    fn keys_round_trip_and_every_flip_is_detected() {
        let bytes = encode_keys(&entries());
        assert_eq!(decode_keys(&bytes), Ok(entries()));
        assert_eq!(decode_keys(&encode_keys(&[])), Ok(vec![]));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode_keys(&b).is_err(), "flip at {i} not detected");
        }
        for cut in 0..bytes.len() {
            assert!(decode_keys(&bytes[..cut]).is_err(), "cut at {cut} not detected");
        }
    }

    #[test]
    fn ids_must_increase_and_counts_fit() {
        let mut e = entries();
        e[1].id = 1;
        assert!(decode_keys(&encode_keys(&e)).is_err());
        let mut bytes = encode_keys(&entries());
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let len = bytes.len();
        let crc = crc32fast::hash(&bytes[..len - 4]);
        bytes[len - 4..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_keys(&bytes).is_err());
    }
}
