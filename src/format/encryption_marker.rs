//! The `ENCRYPTION` file of a data directory: the directory is encrypted at rest, and a check
//! that tells the right key file from a wrong one before any log is read
//! (`format-spec.md` section 11.1).
//!
//! ```text
//! offset size field
//!   0     8  magic "WEIRCRYP"
//!   8     2  version (1)
//!  10     2  cipher (1: AES-256-GCM)
//!  12     1  name_len (1-64)
//!  13     .  name: the key-file version the check is sealed under
//!   .    12  nonce (random)
//!   .    16  check: the AES-256-GCM tag of nothing, with associated data "WEIRCRYP check",
//!            under that version's key
//!   .     4  crc32 of every byte before it
//! ```

use super::key_file::{valid_key_name, Keyring};
use super::sealed::{SealingKey, CIPHER_AES_256_GCM, NONCE_LEN, TAG_LEN};
use super::{DecodeError, Reader};

/// File name of the marker, in the data directory.
pub const ENCRYPTION_FILE: &str = "ENCRYPTION";
const MAGIC: [u8; 8] = *b"WEIRCRYP";
const CHECK_AAD: &[u8] = b"WEIRCRYP check";

/// What the `ENCRYPTION` file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionMarker {
    /// The key-file version the check is sealed under.
    pub key_version: String,
    nonce: [u8; NONCE_LEN],
    check: [u8; TAG_LEN],
}

/// How a key ring fares against a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The ring holds the version and its key is the one the check was sealed under.
    Right,
    /// The ring has no version of that name.
    MissingVersion,
    /// The ring's version of that name is another key.
    WrongKey,
}

impl EncryptionMarker {
    /// A marker sealed under `version` (whose key is `key`) with a random `nonce`.
    pub fn seal(version: &str, key: &SealingKey, nonce: [u8; NONCE_LEN]) -> EncryptionMarker {
        let check = key.seal_in_place(&nonce, CHECK_AAD, &mut []);
        EncryptionMarker { key_version: version.to_string(), nonce, check }
    }

    /// Whether `keys` holds the key this marker was sealed under.
    pub fn check(&self, keys: &Keyring) -> KeyCheck {
        let Some(version) = keys.get(&self.key_version) else { return KeyCheck::MissingVersion };
        match version.key().open_in_place(&self.nonce, CHECK_AAD, &mut [], &self.check) {
            Ok(()) => KeyCheck::Right,
            Err(_) => KeyCheck::WrongKey,
        }
    }

    /// Encodes the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.key_version.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&CIPHER_AES_256_GCM.to_le_bytes());
        out.push(self.key_version.len() as u8);
        out.extend_from_slice(self.key_version.as_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.check);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the file.
    pub fn decode(buf: &[u8]) -> Result<EncryptionMarker, DecodeError> {
        if buf.len() < 16 || buf[..8] != MAGIC {
            return Err(DecodeError::new(0, "not a weir ENCRYPTION file (bad magic)"));
        }
        let body = &buf[..buf.len() - 4];
        if super::le_u32(buf, buf.len() - 4) != crc32fast::hash(body) {
            return Err(DecodeError::new(buf.len() - 4, "ENCRYPTION checksum mismatch"));
        }
        let mut r = Reader::new(body);
        r.bytes(8, "magic")?;
        if r.u16("version")? != 1 {
            return Err(DecodeError::new(8, "unsupported ENCRYPTION version"));
        }
        if r.u16("cipher")? != CIPHER_AES_256_GCM {
            return Err(DecodeError::new(10, "unknown cipher"));
        }
        let len = usize::from(r.u8("name length")?);
        let name = std::str::from_utf8(r.bytes(len, "key version name")?)
            .ok()
            .filter(|n| valid_key_name(n))
            .ok_or_else(|| DecodeError::new(13, "invalid key version name"))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(r.bytes(NONCE_LEN, "nonce")?);
        let mut check = [0u8; TAG_LEN];
        check.copy_from_slice(r.bytes(TAG_LEN, "check")?);
        if r.remaining() != 0 {
            return Err(DecodeError::new(r.position(), "bytes after the check"));
        }
        Ok(EncryptionMarker { key_version: name.to_string(), nonce, check })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_file::format_key_line;

    #[test]
    fn the_marker_tells_the_right_key_from_a_wrong_or_missing_one() {
        let ring = Keyring::parse(&format_key_line("v1", &[1; 32])).expect("ring");
        let marker = EncryptionMarker::seal("v1", ring.newest().key(), [4; NONCE_LEN]);
        let bytes = marker.encode();
        let back = EncryptionMarker::decode(&bytes).expect("decodes");
        assert_eq!(back, marker);
        assert_eq!(back.check(&ring), KeyCheck::Right);
        let wrong = Keyring::parse(&format_key_line("v1", &[2; 32])).expect("ring");
        assert_eq!(back.check(&wrong), KeyCheck::WrongKey);
        let other = Keyring::parse(&format_key_line("v2", &[1; 32])).expect("ring");
        assert_eq!(back.check(&other), KeyCheck::MissingVersion);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(EncryptionMarker::decode(&b).is_err(), "flip at {i} not detected");
        }
    }
}
