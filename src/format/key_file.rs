//! The key file: the keys that wrap an encrypted data directory's data keys.
//!
//! ```text
//! NAME HEX64        one key version per line: a name, one space (or more), 64 hex digits
//! ...               (32 bytes); the last line is the newest version
//! ```
//!
//! Names are 1-64 of `[A-Za-z0-9_.-]` and unique within the file. Empty lines and lines whose
//! first non-blank character is `#` are ignored. `weir keygen NAME >> FILE` appends a version.
//! Errors name the line, never its key.

use zeroize::Zeroizing;

use super::sealed::{SealingKey, KEY_LEN};

/// Longest version name.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// One version of the key file: its name and its key.
pub struct KeyVersion {
    name: String,
    key: SealingKey,
}

impl KeyVersion {
    /// The version's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version's key.
    pub fn key(&self) -> &SealingKey {
        &self.key
    }
}

/// The versions of a key file, oldest first; the last is the newest, the one that wraps new
/// data keys. Never prints a key.
pub struct Keyring {
    versions: Vec<KeyVersion>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("versions", &self.names()).finish()
    }
}

/// Whether `name` may name a key version.
pub fn valid_key_name(name: &str) -> bool {
    (1..=MAX_KEY_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Keyring {
    /// Parses a key file's text. The error says which line is wrong and why.
    pub fn parse(text: &str) -> Result<Keyring, String> {
        let mut versions: Vec<KeyVersion> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split_ascii_whitespace();
            let (Some(name), Some(hex), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!("line {line_no}: expected `NAME HEX64` (a version name, then 64 hex digits)"));
            };
            if !valid_key_name(name) {
                return Err(format!(
                    "line {line_no}: key version name must be 1-{MAX_KEY_NAME_LEN} of A-Z a-z 0-9 _ . -"
                ));
            }
            let key = parse_key_hex(hex)
                .ok_or_else(|| format!("line {line_no}: the key of version {name:?} is not 64 hex digits"))?;
            if versions.iter().any(|v| v.name == name) {
                return Err(format!("line {line_no}: key version {name:?} appears twice"));
            }
            versions.push(KeyVersion { name: name.to_string(), key: SealingKey::new(&key) });
        }
        if versions.is_empty() {
            return Err("the key file holds no key (expected lines `NAME HEX64`; `weir keygen NAME` makes one)".into());
        }
        Ok(Keyring { versions })
    }

    /// A keyring of the given versions, oldest first.
    pub fn from_versions(versions: Vec<(String, [u8; KEY_LEN])>) -> Result<Keyring, String> {
        let mut text = Zeroizing::new(String::new());
        for (name, key) in &versions {
            text.push_str(&format_key_line(name, key));
        }
        Keyring::parse(&text)
    }

    /// The newest version: the one new data keys are wrapped under.
    pub fn newest(&self) -> &KeyVersion {
        // `parse` refuses an empty file.
        &self.versions[self.versions.len() - 1]
    }

    /// The version called `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// The names of the versions, oldest first.
    pub fn names(&self) -> Vec<&str> {
        self.versions.iter().map(|v| v.name.as_str()).collect()
    }
}

/// One line of a key file: `NAME HEX64\n`.
pub fn format_key_line(name: &str, key: &[u8; KEY_LEN]) -> String {
    let mut line = String::with_capacity(name.len() + 2 + 2 * KEY_LEN);
    line.push_str(name);
    line.push(' ');
    for b in key {
        line.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        line.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    line.push('\n');
    line
}

fn parse_key_hex(hex: &str) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        key[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn the_last_line_is_the_newest_version() {
        let text = format!("# keys\nv1 {K1}\n\n  v2   {}\n", K1.to_uppercase());
        let ring = Keyring::parse(&text).expect("parses");
        assert_eq!(ring.names(), ["v1", "v2"]);
        assert_eq!(ring.newest().name(), "v2");
        assert!(ring.get("v1").is_some() && ring.get("v3").is_none());
    }

    #[test]
    fn a_line_round_trips() {
        let key = [0xA5; KEY_LEN];
        let line = format_key_line("2024-06.a_b", &key);
        assert_eq!(line.len(), "2024-06.a_b".len() + 1 + 64 + 1);
        let ring = Keyring::parse(&line).expect("parses");
        assert_eq!(ring.newest().name(), "2024-06.a_b");
    }

    #[test]
    fn bad_files_are_refused_naming_the_line_and_never_the_key() {
        for (text, says) in [
            ("", "holds no key"),
            ("# only a comment\n", "holds no key"),
            ("v1\n", "line 1: expected"),
            (&format!("v1 {K1} extra\n"), "line 1: expected"),
            (&format!("v1 {}\n", &K1[..62]), "line 1: the key of version \"v1\""),
            (&format!("v1 {}zz\n", &K1[..62]), "not 64 hex digits"),
            (&format!("v/1 {K1}\n"), "name must be"),
            (&format!("v1 {K1}\nv1 {K1}\n"), "line 2: key version \"v1\" appears twice"),
        ] {
            let err = Keyring::parse(text).expect_err(text);
            assert!(err.contains(says), "{err:?} should say {says:?}");
            assert!(!err.contains(&K1[..16]), "an error must not print key material: {err}");
        }
        assert!(!format!("{:?}", Keyring::parse(&format!("v1 {K1}\n")).expect("parses")).contains("0011"));
    }
}
