//! Receipt handles: opaque, tamper-evident names of one delivery of one message.
//!
//! A handle is hex of `version u8 | queue u32 | key u64 | receive_count u32 | sent u32 |
//! id_tag [3] | mac [12]`, where `mac` is the first 12 bytes of HMAC-SHA256 over the fields,
//! keyed by the engine's secret. A forged or altered handle fails the MAC; one from another
//! queue names another queue id; a stale one names an earlier receive than the message's
//! current one.
//!
//! Keys are sequence numbers of the message log, and under `Interval` or `Never` a power cut
//! can lose a tail of the log whose numbers later sends are given again. A handle therefore
//! also carries bits of the message itself: the low 32 bits of its send time and 24 bits of
//! its random message id. A message that took a lost message's key matches both only by
//! chance (one in 2^24 even when sent in the same millisecond), so the lost message's handle
//! cannot act on it.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const VERSION: u8 = 2;
const FIELDS_LEN: usize = 1 + 4 + 8 + 4 + 4 + 3;
const MAC_LEN: usize = 12;
/// Length of a handle in hex characters.
pub const HANDLE_LEN: usize = 2 * (FIELDS_LEN + MAC_LEN);

/// The bits of a message id a handle carries and the index keeps.
pub type IdTag = [u8; 3];

/// The tag of a message id.
pub fn id_tag(message_id: &[u8; 16]) -> IdTag {
    [message_id[0], message_id[1], message_id[2]]
}

/// What a valid handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Queue id.
    pub queue: u32,
    /// Message key.
    pub key: u64,
    /// Which receive of the message.
    pub receive_count: u32,
    /// The low 32 bits of the message's send time (ms).
    pub sent: u32,
    /// Bits of the message's id.
    pub id_tag: IdTag,
}

/// The engine's secret, ready to sign handles: HMAC-SHA256 (RFC 2104) with the two padded key
/// blocks already absorbed, so a handle costs two SHA-256 compressions instead of four (a
/// receive signs one handle per message and a delete checks one).
#[derive(Clone)]
pub struct ReceiptKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptKey(..)")
    }
}

impl ReceiptKey {
    /// The signing key for `secret`.
    pub fn new(secret: &[u8; 32]) -> ReceiptKey {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in secret.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        ReceiptKey { inner: Sha256::new_with_prefix(ipad), outer: Sha256::new_with_prefix(opad) }
    }

    /// HMAC-SHA256 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let inner = self.inner.clone().chain_update(data).finalize();
        self.outer.clone().chain_update(inner).finalize().into()
    }
}

impl Receipt {
    /// The handle of receive `receive_count` of the message with `key`, sent at `sent_ms`
    /// with id tag `id_tag`, in `queue`.
    pub fn new(queue: u32, key: u64, receive_count: u32, sent_ms: u64, id_tag: IdTag) -> Receipt {
        // Only the low bits are kept: they tell two sends apart, not when either happened.
        Receipt { queue, key, receive_count, sent: sent_ms as u32, id_tag }
    }

    /// True if this handle was issued for a message sent at `sent_ms` with id tag `id_tag`.
    pub fn names(&self, sent_ms: u64, id_tag: IdTag) -> bool {
        self.sent == sent_ms as u32 && self.id_tag == id_tag
    }

    fn fields(&self) -> [u8; FIELDS_LEN] {
        let mut out = [0u8; FIELDS_LEN];
        out[0] = VERSION;
        out[1..5].copy_from_slice(&self.queue.to_le_bytes());
        out[5..13].copy_from_slice(&self.key.to_le_bytes());
        out[13..17].copy_from_slice(&self.receive_count.to_le_bytes());
        out[17..21].copy_from_slice(&self.sent.to_le_bytes());
        out[21..24].copy_from_slice(&self.id_tag);
        out
    }

    /// Encodes and signs the handle.
    pub fn encode(&self, key: &ReceiptKey) -> String {
        let fields = self.fields();
        let mac = key.mac(&fields);
        let mut bytes = [0u8; FIELDS_LEN + MAC_LEN];
        bytes[..FIELDS_LEN].copy_from_slice(&fields);
        bytes[FIELDS_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        crate::text::hex(&bytes)
    }

    /// Decodes and checks a handle's MAC. Whether it is current is the queue's business.
    pub fn decode(handle: &str, key: &ReceiptKey) -> Result<Receipt> {
        let bad = |why: &str| Error::InvalidReceiptHandle(why.to_string());
        if handle.len() == 66 && handle.starts_with("01") {
            return Err(bad(
                "issued by an earlier version of weir (handle format 1); receive the message again once its \
                 visibility timeout ends",
            ));
        }
        if handle.len() != HANDLE_LEN {
            return Err(bad(
                "malformed: wrong length (receipt handles are 72 hex characters, as `receive` returned them)",
            ));
        }
        let mut bytes = [0u8; FIELDS_LEN + MAC_LEN];
        if !crate::text::unhex_into(handle.as_bytes(), &mut bytes) {
            return Err(bad("malformed: not hex"));
        }
        if bytes[0] != VERSION {
            return Err(bad("malformed: unknown version"));
        }
        let mut fields = [0u8; FIELDS_LEN];
        fields.copy_from_slice(&bytes[..FIELDS_LEN]);
        let mac = key.mac(&fields);
        // Not constant-time: handles guard against mistakes and tampering, not timing attackers
        // inside the same process.
        if mac[..MAC_LEN] != bytes[FIELDS_LEN..] {
            return Err(bad("not issued by this engine (it was altered or made up)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([fields[at], fields[at + 1], fields[at + 2], fields[at + 3]]);
        let mut key = [0u8; 8];
        key.copy_from_slice(&fields[5..13]);
        Ok(Receipt {
            queue: u32_at(1),
            key: u64::from_le_bytes(key),
            receive_count: u32_at(13),
            sent: u32_at(17),
            id_tag: [fields[21], fields[22], fields[23]],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_reject_tampering() {
        let key = ReceiptKey::new(&[9u8; 32]);
        let r = Receipt::new(2, 77, 3, 1_700_000_000_123, [1, 2, 3]);
        let h = r.encode(&key);
        assert_eq!(Receipt::decode(&h, &key).expect("valid"), r);
        assert_eq!(Receipt::decode(&h.to_uppercase(), &key).expect("hex in either case"), r);
        assert!(Receipt::decode(&h, &ReceiptKey::new(&[8u8; 32])).is_err(), "another engine's secret");
        let mut tampered = h.clone().into_bytes();
        tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(Receipt::decode(&tampered, &key).is_err());
        assert!(Receipt::decode(&h[..20], &key).is_err());
        assert!(Receipt::decode("", &key).is_err());
        assert!(Receipt::decode(&"zz".repeat(36), &key).is_err());
        assert!(Receipt::decode(&"é".repeat(36), &key).is_err());
        assert_eq!(h.len(), HANDLE_LEN);
        assert!(r.names(1_700_000_000_123, [1, 2, 3]));
        assert!(!r.names(1_700_000_000_123, [1, 2, 4]), "another message id");
        assert!(!r.names(1_700_000_000_124, [1, 2, 3]), "another send time");
        assert!(Receipt::decode(&format!("+{}", &h[1..]), &key).is_err(), "a sign is not a digit");
    }

    #[test]
    fn the_mac_is_hmac_sha256_as_rfc_4231_computes_it() {
        // RFC 4231 test case 1 (a 20-byte key of 0x0b): HMAC-SHA256 pads a short key with zeros
        // to the block size, so the same key zero-padded to 32 bytes gives the same MAC.
        let mut secret = [0u8; 32];
        secret[..20].fill(0x0b);
        let mac = ReceiptKey::new(&secret).mac(b"Hi There");
        assert_eq!(crate::text::hex(&mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }
}
