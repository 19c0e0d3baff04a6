//! Password authentication for the messaging protocols (AMQP `PLAIN`, MQTT username/password,
//! STOMP login/passcode), against the same credentials file as the AWS endpoint: the user name
//! is an access key id, the password its secret access key.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Access, AuthError, AuthErrorKind, AuthSettings, Principal};

/// Checks `user` and `password`; without `--auth` any pair is accepted and the connection acts
/// as the owning account.
pub(crate) fn authenticate_password(
    settings: &AuthSettings<'_>,
    user: &str,
    password: &[u8],
    peer: SocketAddr,
    secure: bool,
) -> Result<Principal, AuthError> {
    let source_ip = Some(peer.ip());
    let Some(store) = settings.store else {
        return Ok(Principal::open(settings.account_id, source_ip, secure));
    };
    let credentials = store.current();
    let refused =
        || AuthError::new(AuthErrorKind::InvalidClientTokenId, "unknown user name (access key id) or wrong password");
    let key = credentials.get(user).ok_or_else(refused)?;
    if !constant_time_eq(key.secret_access_key.as_bytes(), password) {
        return Err(refused());
    }
    let access = match &key.policy {
        None => Access::Root,
        Some(policy) => Access::Limited(Arc::clone(policy)),
    };
    Ok(Principal { account_id: key.account.clone(), user: Some(key.user.clone()), access, source_ip, secure })
}

/// Compares without leaking where the first difference is (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::credentials::CredentialStore;

    #[test]
    fn passwords_are_checked_against_the_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        std::fs::write(
            &path,
            r#"{"credentials":[{"access_key_id":"AKIAALICE","secret_access_key":"s3cret","account":"111122223333","user":"alice"}]}"#,
        )
        .unwrap();
        let store = CredentialStore::open(&path).unwrap();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let with = |store| AuthSettings { store, account_id: "111122223333", region: "us-east-1", now_ms: 0 };
        let alice = authenticate_password(&with(Some(&store)), "AKIAALICE", b"s3cret", peer, true).expect("alice");
        assert_eq!(alice.user.as_deref(), Some("alice"));
        assert!(matches!(alice.access, Access::Root) && alice.secure);
        for (user, password) in [("AKIAALICE", &b"s3creT"[..]), ("AKIAALICE", b""), ("AKIABOB", b"s3cret"), ("", b"")] {
            let e = authenticate_password(&with(Some(&store)), user, password, peer, false).unwrap_err();
            assert_eq!(e.kind, AuthErrorKind::InvalidClientTokenId);
        }
        let open = authenticate_password(&with(None), "anyone", b"anything", peer, false).expect("open");
        assert!(matches!(open.access, Access::Open));
        assert!(constant_time_eq(b"", b"") && !constant_time_eq(b"a", b"ab"));
    }
}
