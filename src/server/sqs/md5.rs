//! `MD5OfMessageBody`, `MD5OfMessageAttributes` and `MD5OfMessageSystemAttributes`, computed
//! exactly as SQS does, because SDKs (Java's, .NET's) recompute them and throw on a mismatch.
//!
//! The attribute digest covers the attributes sorted by name; each contributes its name, its
//! data type (custom suffixes such as `Number.int` included), one transport byte (1 for a
//! string value, 2 for a binary one) and its value, every variable part preceded by its length
//! as a 32-bit big-endian integer. No attributes: no digest (the field is omitted).

use md5::{Digest, Md5};

/// How an attribute value travels: `StringValue` or `BinaryValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `StringValue` (the `String` and `Number` types and their custom suffixes).
    String,
    /// `BinaryValue` (the `Binary` type and its custom suffixes).
    Binary,
}

impl Transport {
    fn byte(self) -> u8 {
        match self {
            Transport::String => 1,
            Transport::Binary => 2,
        }
    }
}

/// One attribute as the digest sees it.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The attribute's name.
    pub name: &'a str,
    /// Its data type as sent (`String`, `Number.float`, `Binary.gif`, ...).
    pub data_type: &'a str,
    /// Which value field carries it.
    pub transport: Transport,
    /// The value: UTF-8 text for strings, raw bytes for binaries.
    pub value: &'a [u8],
}

/// Lowercase hex MD5 of a message body's UTF-8 bytes.
pub fn body_md5(body: impl AsRef<[u8]>) -> String {
    crate::text::hex(&Md5::digest(body.as_ref()))
}

/// The digest of message (or system) attributes; `None` when there are none.
pub fn attributes_md5(attributes: &[DigestInput<'_>]) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut sorted: Vec<&DigestInput<'_>> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut md5 = Md5::new();
    for a in sorted {
        update_with_length(&mut md5, a.name.as_bytes());
        update_with_length(&mut md5, a.data_type.as_bytes());
        md5.update([a.transport.byte()]);
        update_with_length(&mut md5, a.value);
    }
    Some(crate::text::hex(&md5.finalize()))
}

fn update_with_length(md5: &mut Md5, bytes: &[u8]) {
    // Names, types and values are bounded far below 4 GiB by the request size limit.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    md5.update(len.to_be_bytes());
    md5.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string<'a>(name: &'a str, data_type: &'a str, value: &'a str) -> DigestInput<'a> {
        DigestInput { name, data_type, transport: Transport::String, value: value.as_bytes() }
    }

    #[test]
    fn body_digests_match_published_values() {
        assert_eq!(body_md5("derp"), "58fd9edd83341c29f1aebba81c31e257");
        assert_eq!(body_md5(""), "d41d8cd98f00b204e9800998ecf8427e");
        // RFC 1321's test suite.
        assert_eq!(body_md5("abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(body_md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
        // UTF-8 bytes, not UTF-16 code units.
        assert_eq!(body_md5("é"), crate::text::hex(&Md5::digest("é".as_bytes())));
    }

    #[test]
    fn attribute_digest_matches_the_published_vector() {
        let attrs = [string("SOME_Valid.attribute-Name", "Number", "1493147359900")];
        assert_eq!(attributes_md5(&attrs).as_deref(), Some("36655e7e9d7c0e8479fa3f3f42247ae7"));
    }

    #[test]
    fn no_attributes_means_no_digest() {
        assert_eq!(attributes_md5(&[]), None);
    }

    #[test]
    fn attributes_are_digested_in_name_order_whatever_the_input_order() {
        let a = string("alpha", "String", "1");
        let b = DigestInput { name: "beta", data_type: "Binary.gif", transport: Transport::Binary, value: &[0, 1, 2] };
        assert_eq!(attributes_md5(&[a, b]), attributes_md5(&[b, a]));
    }

    #[test]
    fn the_digest_covers_every_byte_in_its_framing() {
        // Written out by hand: the framing of one string and one binary attribute.
        let mut expected = Vec::new();
        for (name, ty, transport, value) in
            [("a", "String", 1u8, b"x".as_slice()), ("b", "Binary", 2u8, [0xffu8, 0x00].as_slice())]
        {
            expected.extend_from_slice(&(name.len() as u32).to_be_bytes());
            expected.extend_from_slice(name.as_bytes());
            expected.extend_from_slice(&(ty.len() as u32).to_be_bytes());
            expected.extend_from_slice(ty.as_bytes());
            expected.push(transport);
            expected.extend_from_slice(&(value.len() as u32).to_be_bytes());
            expected.extend_from_slice(value);
        }
        let attrs = [
            string("a", "String", "x"),
            DigestInput { name: "b", data_type: "Binary", transport: Transport::Binary, value: &[0xff, 0x00] },
        ];
        assert_eq!(attributes_md5(&attrs).unwrap(), crate::text::hex(&Md5::digest(&expected)));
        // The custom suffix of a data type is part of the digest.
        let plain = attributes_md5(&[string("n", "Number", "1")]);
        let custom = attributes_md5(&[string("n", "Number.int", "1")]);
        assert_ne!(plain, custom);
    }
}
