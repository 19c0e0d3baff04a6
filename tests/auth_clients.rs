//! The real clients against `weir serve --auth FILE --tls-cert FILE --tls-key FILE`: boto3 and
//! the aws CLI over HTTPS with a certificate made here (rcgen), signing with botocore's own
//! signer; allowed and denied operations per principal, another account's key through a queue
//! policy, and key rotation by SIGHUP; SNS signed and authorized the same way, with topic
//! policies and an unsigned SubscribeURL visit (`tests/clients/test_auth.py`).

mod server_support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use server_support::ServeChild;

#[test]
fn boto3_and_the_aws_cli_over_https_with_signatures_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key, credentials) = server_support::tls_and_credentials(
        files.path(),
        json!([
            {"access_key_id": "AKIAADMIN00000001", "secret_access_key": "admin-secret", "account": "111122223333", "user": "admin"},
            {"access_key_id": "AKIASENDER0000001", "secret_access_key": "sender-secret", "account": "111122223333", "user": "sender",
             "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}},
            {"access_key_id": "AKIABOB0000000001", "secret_access_key": "bob-secret", "account": "444455556666", "user": "bob"},
            {"access_key_id": "AKIAPUBLISHER0001", "secret_access_key": "publisher-secret", "account": "111122223333", "user": "publisher",
             "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:111122223333:allowed-*"}]}},
        ]),
    );
    let args = [
        "--log-level",
        "warn",
        "--account-id",
        "111122223333",
        "--auth",
        credentials.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut serve = ServeChild::start(dir.path(), &args);
    let port = serve.addr.port();
    assert_eq!(
        serve.startup_line,
        format!(r#"{{"listening":"127.0.0.1:{port}","endpoint":"https://127.0.0.1:{port}","auth":"sigv4"}}"#)
    );
    let pid = serve.pid().to_string();
    server_support::run_client_suite(
        "test_auth.py",
        &[
            ("WEIR_ENDPOINT", serve.endpoint.as_ref()),
            ("WEIR_CA", cert.as_os_str()),
            ("WEIR_CREDENTIALS", credentials.as_os_str()),
            ("WEIR_PID", pid.as_ref()),
        ],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_tls_files_and_a_bad_credentials_file_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let broken = dir.path().join("credentials.json");
    std::fs::write(&broken, r#"{"credentials":[{"access_key_id":"A"}]}"#).unwrap();
    for args in [
        vec!["--tls-cert", empty.to_str().unwrap(), "--tls-key", empty.to_str().unwrap()],
        vec!["--tls-cert", empty.to_str().unwrap()],
        vec!["--auth", broken.to_str().unwrap()],
        vec!["--auth", "/nonexistent/credentials.json"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .expect("run weir serve");
        assert!(!out.status.success(), "{args:?} started");
        assert!(out.stdout.is_empty(), "{args:?}: no startup line");
        assert!(!out.stderr.is_empty(), "{args:?}: an error on stderr");
    }
}
