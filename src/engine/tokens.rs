//! Opaque tokens: bytes a caller hands out and takes back (a shard iterator, a page token),
//! sealed with a MAC under a key only the engine holds, so a token that was altered or made up
//! is refused, and one sealed before a restart still opens after it (the key derives from the
//! engine's secret in the catalog). A token carries the engine-clock time it was sealed at,
//! so its user can let it expire. Tokens are not encrypted: the caller's bytes are readable.
//!
//! Layout (then lower-case hex): `version u8 | sealed_ms u64 LE | payload | mac [16]`, the MAC
//! being the first 16 bytes of HMAC-SHA256 over `purpose | 0 | version | sealed_ms | payload`
//! with a key derived from the secret for tokens alone (receipt handles use another).

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::queue::receipt::ReceiptKey;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 8;
/// Largest payload a token carries.
pub const MAX_TOKEN_PAYLOAD: usize = 1024;

/// The MAC key of tokens.
#[derive(Clone)]
pub(crate) struct TokenKey(ReceiptKey);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The key for the engine secret `secret`: a hash of it under a label of its own.
    pub(crate) fn new(secret: &[u8; 32]) -> TokenKey {
        let derived: [u8; 32] = Sha256::new_with_prefix(b"weir opaque tokens\0").chain_update(secret).finalize().into();
        TokenKey(ReceiptKey::new(&derived))
    }

    fn mac(&self, purpose: &str, sealed: &[u8]) -> [u8; 32] {
        let mut data = Vec::with_capacity(purpose.len() + 1 + sealed.len());
        data.extend_from_slice(purpose.as_bytes());
        data.push(0);
        data.extend_from_slice(sealed);
        self.0.mac(&data)
    }
}

/// What an opened token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedToken {
    /// The bytes it was sealed with.
    pub payload: Vec<u8>,
    /// When it was sealed (ms since the Unix epoch, engine clock).
    pub sealed_ms: u64,
}

impl Engine {
    /// Seals `payload` (at most [`MAX_TOKEN_PAYLOAD`] bytes) for `purpose` into an opaque
    /// token of hex characters, stamped with the engine clock's time.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// let token = engine.seal_token("page", b"offset=10")?;
    /// assert_eq!(engine.open_token("page", &token)?.payload, b"offset=10");
    /// assert!(engine.open_token("iterator", &token).is_err(), "sealed for another purpose");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal_token(&self, purpose: &str, payload: &[u8]) -> Result<String> {
        if payload.len() > MAX_TOKEN_PAYLOAD {
            return Err(Error::TooLarge { what: "token payload", size: payload.len(), limit: MAX_TOKEN_PAYLOAD });
        }
        let mut sealed = Vec::with_capacity(HEADER_LEN + payload.len() + MAC_LEN);
        sealed.push(VERSION);
        sealed.extend_from_slice(&self.inner.options.clock.now_ms().to_le_bytes());
        sealed.extend_from_slice(payload);
        let mac = self.inner.tokens.mac(purpose, &sealed);
        sealed.extend_from_slice(&mac[..MAC_LEN]);
        Ok(crate::text::hex(&sealed))
    }

    /// Opens a token [`Engine::seal_token`] made for `purpose` (before a restart too). A token
    /// that is malformed, altered, made up, or sealed for another purpose or by another data
    /// directory is `InvalidArgument`.
    pub fn open_token(&self, purpose: &str, token: &str) -> Result<OpenedToken> {
        let bad = |why: &str| Error::InvalidArgument(format!("token rejected: {why}"));
        let len = token.len();
        if !len.is_multiple_of(2)
            || len / 2 < HEADER_LEN + MAC_LEN
            || len / 2 > HEADER_LEN + MAX_TOKEN_PAYLOAD + MAC_LEN
        {
            return Err(bad("malformed (wrong length)"));
        }
        let mut bytes = vec![0u8; len / 2];
        if !crate::text::unhex_into(token.as_bytes(), &mut bytes) {
            return Err(bad("malformed (not hex)"));
        }
        if bytes[0] != VERSION {
            return Err(bad("malformed (unknown version)"));
        }
        let (sealed, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        // Not constant-time: tokens guard against mistakes and tampering, not timing attackers.
        if self.inner.tokens.mac(purpose, sealed)[..MAC_LEN] != *mac {
            return Err(bad("not issued by this engine for this purpose (altered or made up)"));
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&sealed[1..HEADER_LEN]);
        Ok(OpenedToken { payload: sealed[HEADER_LEN..].to_vec(), sealed_ms: u64::from_le_bytes(time) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{Engine, ManualClock, Options};

    #[test]
    fn tokens_open_after_a_reopen_carry_their_time_and_refuse_every_alteration() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(5_000));
        let options = Options { clock: clock.clone(), background: false, ..Options::default() };
        let token = {
            let engine = Engine::open(dir.path(), options.clone()).unwrap();
            engine.seal_token("iterator", b"shard 1 at 42").unwrap()
        };
        clock.advance(std::time::Duration::from_secs(7));
        let engine = Engine::open(dir.path(), options).unwrap();
        let opened = engine.open_token("iterator", &token).unwrap();
        assert_eq!((opened.payload.as_slice(), opened.sealed_ms), (&b"shard 1 at 42"[..], 5_000));
        // Every single-character change is refused.
        for i in 0..token.len() {
            let mut forged = token.clone().into_bytes();
            forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(forged).unwrap();
            assert!(engine.open_token("iterator", &forged).is_err(), "changed at {i}");
        }
        for bad in ["", "zz", &token[..token.len() - 2], &format!("{token}00"), &"ab".repeat(2000)] {
            assert!(engine.open_token("iterator", bad).is_err(), "{bad:?}");
        }
        assert!(engine.open_token("page", &token).is_err());
        // Another data directory's engine has another secret.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Engine::open(other_dir.path(), Options { background: false, ..Options::default() }).unwrap();
        assert!(other.open_token("iterator", &token).is_err());
        assert!(engine.seal_token("x", &[0; super::MAX_TOKEN_PAYLOAD + 1]).is_err());
    }
}
