//! Sealing with AES-256-GCM (`format-spec.md`, section 11): frame payloads under data keys, and
//! data keys under the key file's keys (envelope encryption).
//!
//! Pure functions: the random bytes a seal needs (a new data key, a wrapping nonce) come from the
//! caller. A frame's nonce is its first sequence number: a data key is used by one writer of one
//! log, whose sequence numbers strictly increase, so no nonce repeats under a key.
//!
//! The cipher is ring's AES-256-GCM (BoringSSL's assembly, chosen at run time for the CPU: AES-NI
//! and CLMUL, or VAES and VPCLMULQDQ where present). Measured on the machine weir is
//! benchmarked on, sealing 100 KiB frames: ring 8.6 GB/s, RustCrypto's `aes-gcm` 2.4 GB/s
//! (0.11) and 1.46 GB/s (0.10, what weir used first); ChaCha20-Poly1305 (RustCrypto) 1.36 GB/s.
//! At RustCrypto's speed, sealing alone cost a 100-record put batch a quarter of its rate.
//! The bytes on disk are AES-256-GCM's whichever implementation wrote them.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

/// Bytes of a key: a data key, or a key of the key file.
pub const KEY_LEN: usize = 32;
/// Bytes of an authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of a wrapped data key: the nonce it was wrapped with, the sealed key, its tag.
pub const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// The identifier of the cipher in files that name one: AES-256-GCM.
pub const CIPHER_AES_256_GCM: u16 = 1;

/// A 256-bit AES-GCM key with its schedule expanded, ready to seal and open. It never prints
/// its bytes. (ring does not wipe the expanded schedule when the key is dropped: memory is
/// outside what encryption at rest protects against, see SECURITY.md; the key bytes weir
/// reads, unwraps and generates are wiped.)
pub struct SealingKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// A tag did not check out: the bytes were changed, or were sealed under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAuthentic;

impl SealingKey {
    /// The key made of these bytes.
    pub fn new(bytes: &[u8; KEY_LEN]) -> SealingKey {
        match UnboundKey::new(&AES_256_GCM, bytes) {
            Ok(key) => SealingKey { key: LessSafeKey::new(key) },
            Err(_) => unreachable!("32 bytes is an AES-256 key"),
        }
    }

    /// Encrypts `buf` in place under `nonce`, binding `aad`; returns the tag.
    pub fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        // Fails only for a buffer over GCM's 64 GiB limit: a frame is at most 64 MiB.
        match self.key.seal_in_place_separate_tag(nonce, Aad::from(aad), buf) {
            Ok(tag) => {
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                out
            }
            Err(_) => unreachable!("AES-GCM refuses only buffers over 64 GiB"),
        }
    }

    /// Checks `tag` over `aad` and the ciphertext in `buf` and decrypts `buf` in place. On
    /// failure `buf` is all zeros: no byte of an unauthenticated frame is ever left to use.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), NotAuthentic> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), Tag::from(*tag), buf, 0..)
            .map(|_| ())
            .map_err(|_| NotAuthentic)
    }
}

/// The nonce of the frame whose first record has sequence number `base_seq`: its 8 bytes
/// little-endian, then 4 zero bytes.
pub fn frame_nonce(base_seq: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&base_seq.to_le_bytes());
    nonce
}

/// Seals the data key `key` under the key-file key `kek` with a random `nonce`, binding `aad`
/// (what the key is for: see the KEYS file). Returns nonce, sealed key and tag.
pub fn wrap_key(kek: &SealingKey, nonce: [u8; NONCE_LEN], aad: &[u8], key: &[u8; KEY_LEN]) -> [u8; WRAPPED_KEY_LEN] {
    let mut sealed = Zeroizing::new(*key);
    let tag = kek.seal_in_place(&nonce, aad, sealed.as_mut());
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..NONCE_LEN].copy_from_slice(&nonce);
    out[NONCE_LEN..NONCE_LEN + KEY_LEN].copy_from_slice(sealed.as_ref());
    out[NONCE_LEN + KEY_LEN..].copy_from_slice(&tag);
    out
}

/// Opens a key wrapped by [`wrap_key`]; fails if `kek` or `aad` is not the one it was wrapped
/// with, or the bytes changed.
pub fn unwrap_key(
    kek: &SealingKey,
    aad: &[u8],
    wrapped: &[u8; WRAPPED_KEY_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, NotAuthentic> {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&wrapped[NONCE_LEN + KEY_LEN..]);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&wrapped[NONCE_LEN..NONCE_LEN + KEY_LEN]);
    kek.open_in_place(&nonce, aad, key.as_mut(), &tag)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_buffer_opens_only_with_its_key_nonce_and_aad() {
        let key = SealingKey::new(&[1; KEY_LEN]);
        let mut buf = b"attack at dawn".to_vec();
        let tag = key.seal_in_place(&frame_nonce(7), b"header", &mut buf);
        assert_ne!(&buf[..], b"attack at dawn");
        let sealed = buf.clone();
        let other = SealingKey::new(&[2; KEY_LEN]);
        let wrong: [(&SealingKey, u64, &[u8]); 3] =
            [(&other, 7, b"header"), (&key, 8, b"header"), (&key, 7, b"headeR")];
        for (k, nonce, aad) in wrong {
            buf.clone_from(&sealed);
            assert_eq!(k.open_in_place(&frame_nonce(nonce), aad, &mut buf, &tag), Err(NotAuthentic));
            assert!(buf.iter().all(|&b| b == 0), "a failed open leaves nothing of the frame to use");
        }
        buf.clone_from(&sealed);
        key.open_in_place(&frame_nonce(7), b"header", &mut buf, &tag).expect("opens");
        assert_eq!(&buf[..], b"attack at dawn");
    }

    #[test]
    fn frames_sealed_by_rustcrypto_aes_gcm_open_here_and_back() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        // What weir sealed with before it used ring: the same cipher, so the same bytes.
        let bytes = [0x5a; KEY_LEN];
        let (ours, theirs) = (SealingKey::new(&bytes), aes_gcm::Aes256Gcm::new((&bytes).into()));
        for (i, len) in [0usize, 1, 15, 16, 17, 255, 4096, 100_003].into_iter().enumerate() {
            let plain: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
            let nonce = frame_nonce(i as u64 * 1_000_003);
            let aad = format!("header {i}");
            let mut by_them = plain.clone();
            let tag = theirs
                .encrypt_in_place_detached((&nonce).into(), aad.as_bytes(), &mut by_them)
                .expect("RustCrypto seals");
            let mut by_us = plain.clone();
            assert_eq!(ours.seal_in_place(&nonce, aad.as_bytes(), &mut by_us), <[u8; TAG_LEN]>::from(tag));
            assert_eq!(by_us, by_them, "the same ciphertext ({len} bytes)");
            ours.open_in_place(&nonce, aad.as_bytes(), &mut by_them, &tag.into()).expect("opens here");
            assert_eq!(by_them, plain);
        }
    }

    #[test]
    fn a_wrapped_key_unwraps_only_under_its_key_and_purpose() {
        let kek = SealingKey::new(&[9; KEY_LEN]);
        let wrapped = wrap_key(&kek, [3; NONCE_LEN], b"log 1", &[5; KEY_LEN]);
        assert_eq!(*unwrap_key(&kek, b"log 1", &wrapped).expect("unwraps"), [5; KEY_LEN]);
        assert!(unwrap_key(&kek, b"log 2", &wrapped).is_err());
        assert!(unwrap_key(&SealingKey::new(&[8; KEY_LEN]), b"log 1", &wrapped).is_err());
        for i in 0..WRAPPED_KEY_LEN {
            let mut bad = wrapped;
            bad[i] ^= 1;
            assert!(unwrap_key(&kek, b"log 1", &bad).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn frame_nonces_differ_for_every_sequence_number() {
        assert_ne!(frame_nonce(1), frame_nonce(1 << 40));
        assert_eq!(&frame_nonce(u64::MAX)[8..], &[0; 4]);
    }
}
