//! The real clients against `weir serve --auth FILE --tls-cert FILE --tls-key FILE`: boto3 and
//! the aws CLI over HTTPS with a certificate made here (rcgen), signing with botocore's own
//! signer; allowed and denied operations per principal, another account's key through a queue
//! policy, and key rotation by SIGHUP; SNS signed and authorized the same way, with topic
//! policies and an unsigned SubscribeURL visit (`tests/clients/test_auth.py`); Kinesis and
//! Firehose under the same rules, with stream policies (`tests/clients/test_auth_streams.py`);
//! and what a queue's or stream's encryption settings do with and without `--key-file`
//! (`tests/clients/test_encryption_choice.py`).

mod server_support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use server_support::ServeChild;

/// `weir serve`'s arguments for account 111122223333 with `--auth credentials`, then `extra`.
fn owned_with_auth<'a>(credentials: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--log-level", "warn", "--account-id", "111122223333", "--auth"];
    args.push(credentials.to_str().expect("a UTF-8 temporary path"));
    args.extend_from_slice(extra);
    args
}

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
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let mut serve = ServeChild::start(dir.path(), &owned_with_auth(&credentials, &tls));
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
fn kinesis_and_firehose_with_identity_and_stream_policies() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let credentials = files.path().join("credentials.json");
    let writer = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
         "Resource": "arn:aws:kinesis:us-east-1:111122223333:stream/authz-*"},
        {"Effect": "Allow", "Action": "firehose:PutRecord*", "Resource": "*"},
    ]});
    let keeper = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["kinesis:DeleteStream", "firehose:Delete*"], "Resource": "*"},
    ]});
    let doc = json!({"credentials": [
        {"access_key_id": "AKIAADMIN00000001", "secret_access_key": "admin-secret", "account": "111122223333", "user": "admin"},
        {"access_key_id": "AKIAWRITER0000001", "secret_access_key": "writer-secret", "account": "111122223333", "user": "writer", "policy": writer},
        {"access_key_id": "AKIAKEEPER0000001", "secret_access_key": "keeper-secret", "account": "111122223333", "user": "keeper", "policy": keeper},
        {"access_key_id": "AKIABOB0000000001", "secret_access_key": "bob-secret", "account": "444455556666", "user": "bob"},
    ]});
    std::fs::write(&credentials, doc.to_string()).unwrap();
    let buckets = dir.path().join("buckets");
    let buckets_args = ["--buckets-dir", buckets.to_str().unwrap()];
    let mut serve = ServeChild::start(&dir.path().join("data"), &owned_with_auth(&credentials, &buckets_args));
    server_support::run_client_suite("test_auth_streams.py", &[("WEIR_ENDPOINT", serve.endpoint.as_ref())]);
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn encryption_at_rest_is_refused_without_a_key_and_granted_with_one() {
    let files = tempfile::tempdir().unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_weir")).args(["keygen", "v1"]).output().expect("run weir keygen");
    assert!(keygen.status.success());
    let key_file = files.path().join("keys");
    std::fs::write(&key_file, &keygen.stdout).unwrap();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for encrypted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--log-level", "warn"];
        if encrypted {
            args.extend(["--key-file", key_file.to_str().unwrap()]);
        }
        let mut serve = ServeChild::start(dir.path(), &args);
        let flag = if encrypted { "1" } else { "0" };
        server_support::run_client_suite(
            "test_encryption_choice.py",
            &[("WEIR_ENDPOINT", serve.endpoint.as_ref()), ("WEIR_ENCRYPTED", flag.as_ref())],
        );
        let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
        assert!(status.success(), "{status:?}");
        let engine = weir::Engine::open(
            dir.path(),
            weir::Options { key_source: encrypted.then(|| weir::KeySource::file(&key_file)), ..Default::default() },
        );
        assert_eq!(engine.map(|e| e.encrypted_at_rest()).ok(), Some(encrypted), "the directory's own word");
    }
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
