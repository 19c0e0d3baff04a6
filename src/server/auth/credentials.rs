//! The credentials file of `weir serve --auth FILE`:
//!
//! ```json
//! {"credentials":[{"access_key_id":"AKIA...","secret_access_key":"...","account":"123456789012",
//!                  "user":"alice","policy":{"Version":"2012-10-17","Statement":[...]}}]}
//! ```
//!
//! A key's principal is `arn:aws:iam::ACCOUNT:user/USER`; `policy`, when given, is its identity
//! policy (the key may do only what it allows, plus what resource policies grant); without it
//! a key of the owning account acts as that account's root. The file is read whole and checked
//! whole: a file with any mistake is refused, and a server that was reloading keeps the keys it
//! had.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::policy::{Policy, PolicyKind};

/// Largest credentials file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// One key.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The secret the key's signatures are made with.
    pub secret_access_key: String,
    /// The key's account.
    pub account: String,
    /// The key's user name.
    pub user: String,
    /// Its identity policy; `None`: its account's root.
    pub policy: Option<Arc<Policy>>,
}

/// Every key, by access key id.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    keys: HashMap<String, Arc<Credential>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    credentials: Vec<FileKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    access_key_id: String,
    secret_access_key: String,
    account: String,
    user: String,
    #[serde(default)]
    policy: Option<Value>,
}

impl Credentials {
    /// Reads and checks a credentials file.
    pub fn load(path: &Path) -> Result<Credentials> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("open the credentials file", path, e))?;
        let len = file.metadata().map_err(|e| Error::io("read the credentials file", path, e))?.len();
        if len > MAX_FILE_BYTES {
            return Err(Error::InvalidArgument(format!(
                "credentials file {}: {len} bytes, more than the {MAX_FILE_BYTES} a credentials file may have",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the credentials file", path, e))?;
        Credentials::parse(&text).map_err(|e| match e {
            Error::InvalidArgument(why) => {
                Error::InvalidArgument(format!("credentials file {}: {why}", path.display()))
            }
            other => other,
        })
    }

    /// Reads and checks the text of a credentials file.
    pub fn parse(text: &str) -> Result<Credentials> {
        let doc: FileDoc = serde_json::from_str(text).map_err(|e| {
            Error::InvalidArgument(format!(
                "not {{\"credentials\":[{{\"access_key_id\",\"secret_access_key\",\"account\",\"user\",\"policy\"?}}]}}: {e}"
            ))
        })?;
        let mut keys = HashMap::new();
        for (i, key) in doc.credentials.into_iter().enumerate() {
            let bad = |why: String| Error::InvalidArgument(format!("credential {}: {why}", i + 1));
            let id_ok = (1..=128).contains(&key.access_key_id.len())
                && key.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !id_ok {
                return Err(bad("access_key_id must be 1 to 128 letters and digits".into()));
            }
            if key.secret_access_key.is_empty() || key.secret_access_key.len() > 1024 {
                return Err(bad("secret_access_key must be 1 to 1024 bytes".into()));
            }
            if key.account.len() != 12 || !key.account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("account must be 12 digits, not {:?}", short(&key.account))));
            }
            let user_ok = !key.user.is_empty()
                && key.user.len() <= 64
                && key.user.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            if !user_ok {
                return Err(bad(format!(
                    "user must be 1 to 64 of A-Z a-z 0-9 + = , . @ _ -, not {:?}",
                    short(&key.user)
                )));
            }
            let policy = match &key.policy {
                None | Some(Value::Null) => None,
                Some(value) => Some(Arc::new(
                    Policy::from_value(value, PolicyKind::Identity).map_err(|e| bad(format!("policy: {e}")))?,
                )),
            };
            let credential =
                Credential { secret_access_key: key.secret_access_key, account: key.account, user: key.user, policy };
            if keys.insert(key.access_key_id.clone(), Arc::new(credential)).is_some() {
                return Err(bad(format!("access_key_id {} appears twice", key.access_key_id)));
            }
        }
        Ok(Credentials { keys })
    }

    /// The key with this id.
    pub fn get(&self, access_key_id: &str) -> Option<&Arc<Credential>> {
        self.keys.get(access_key_id)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The credentials a running server checks signatures with, and the file they come from. A
/// reload (SIGHUP, or [`crate::server::Reloader::reload`]) reads the file again and swaps the
/// keys in at once; requests already past authentication keep the keys they were checked with.
#[derive(Debug)]
pub struct CredentialStore {
    path: PathBuf,
    current: parking_lot::RwLock<Arc<Credentials>>,
}

impl CredentialStore {
    /// Reads `path`.
    pub fn open(path: &Path) -> Result<CredentialStore> {
        let credentials = Credentials::load(path)?;
        Ok(CredentialStore { path: path.to_path_buf(), current: parking_lot::RwLock::new(Arc::new(credentials)) })
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Credentials> {
        Arc::clone(&self.current.read())
    }

    /// Reads the file again; on any error the keys stay as they were. Returns how many keys
    /// there are now.
    pub fn reload(&self) -> Result<usize> {
        let credentials = Credentials::load(&self.path)?;
        let n = credentials.len();
        *self.current.write() = Arc::new(credentials);
        Ok(n)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        r#""access_key_id":"AKIAALICE0000000","secret_access_key":"s3cret","account":"111122223333","user":"alice""#;

    #[test]
    fn the_file_format_of_the_issue() {
        let text = format!(
            r#"{{"credentials":[{{{KEY}}},
               {{"access_key_id":"AKIABOB000000000","secret_access_key":"x","account":"444455556666","user":"bob",
                 "policy":{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}}]}}}}]}}"#
        );
        let c = Credentials::parse(&text).expect("parses");
        assert_eq!(c.len(), 2);
        let alice = c.get("AKIAALICE0000000").expect("alice");
        assert_eq!((alice.account.as_str(), alice.user.as_str()), ("111122223333", "alice"));
        assert!(alice.policy.is_none());
        assert!(c.get("AKIABOB000000000").expect("bob").policy.is_some());
        assert!(c.get("AKIAUNKNOWN00000").is_none());
    }

    #[test]
    fn mistakes_are_refused_whole() {
        let cases = [
            String::new(),
            "[]".into(),
            r#"{"keys":[]}"#.into(),
            format!(r#"{{"credentials":[{{{KEY},"extra":1}}]}}"#),
            format!(r#"{{"credentials":[{{{KEY}}},{{{KEY}}}]}}"#),
            KEY.to_string(),
            format!(r#"{{"credentials":[{{{}}}]}}"#, KEY.replace("AKIAALICE0000000", "AKIA-ALICE-00000")),
            format!(r#"{{"credentials":[{{{}}}]}}"#, KEY.replace("s3cret", "")),
            format!(r#"{{"credentials":[{{{}}}]}}"#, KEY.replace("111122223333", "1111")),
            format!(r#"{{"credentials":[{{{}}}]}}"#, KEY.replace("alice", "al ice")),
            format!(
                r#"{{"credentials":[{{{KEY},"policy":{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*"}}]}}}}]}}"#
            ),
            format!(r#"{{"credentials":[{{{KEY},"policy":"sqs:*"}}]}}"#),
        ];
        for text in &cases {
            assert!(Credentials::parse(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn a_reload_swaps_keys_and_a_bad_file_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        std::fs::write(&path, format!(r#"{{"credentials":[{{{KEY}}}]}}"#)).unwrap();
        let store = CredentialStore::open(&path).expect("open");
        assert!(store.current().get("AKIAALICE0000000").is_some());
        std::fs::write(
            &path,
            format!(r#"{{"credentials":[{{{}}}]}}"#, KEY.replace("AKIAALICE0000000", "AKIAALICE0000001")),
        )
        .unwrap();
        assert_eq!(store.reload().expect("reload"), 1);
        assert!(store.current().get("AKIAALICE0000000").is_none());
        assert!(store.current().get("AKIAALICE0000001").is_some());
        std::fs::write(&path, "{broken").unwrap();
        assert!(store.reload().is_err());
        assert!(store.current().get("AKIAALICE0000001").is_some(), "the keys it had");
        assert!(CredentialStore::open(&dir.path().join("missing.json")).is_err());
    }
}
