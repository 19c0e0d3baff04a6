//! The 128-bit hash-key space and how partition keys map into it (MD5, as Kinesis does).

use md5::{Digest, Md5};

/// The hash key of a partition key: its MD5 digest read as a big-endian 128-bit integer.
pub fn hash_key(partition_key: &[u8]) -> u128 {
    let digest = Md5::digest(partition_key);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    u128::from_be_bytes(bytes)
}

/// Splits the whole hash-key space into `n` contiguous inclusive ranges of near-equal size.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    debug_assert!(n > 0, "at least one range");
    if n <= 1 {
        return vec![(0, u128::MAX)];
    }
    let step = u128::MAX / u128::from(n.max(1)) + 1;
    (0..n)
        .map(|i| {
            let start = step * u128::from(i);
            let end = if i + 1 == n { u128::MAX } else { step * u128::from(i + 1) - 1 };
            (start, end)
        })
        .collect()
}

/// Serializes a u128 as a decimal string (as Kinesis prints hash keys), for serde.
pub mod dec_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the number as a decimal string.
    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    /// Reads a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_space_without_overlap() {
        for n in [1u32, 2, 3, 7, 64] {
            let r = even_ranges(n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[r.len() - 1].1, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
        assert_eq!(even_ranges(2)[1].0, 1u128 << 127);
    }

    #[test]
    fn hash_key_is_md5_big_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(b""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }
}
