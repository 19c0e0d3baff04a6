//! The real clients against `weir serve`'s SNS: the boto3 and aws CLI suite
//! (`tests/clients/test_sns.py`), and a kill -9 of the server with HTTP deliveries pending
//! (`tests/clients/sns_crash.py`): after a restart every published message reaches the
//! endpoint.
//!
//! `tests/clients/setup.sh` makes the virtual environment under `target/` with the pinned
//! clients once (it needs PyPI the first time, and Python 3 with `venv`).

mod server_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use server_support::ServeChild;

/// The venv's python, made once per test binary (the tests run in parallel).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/setup.sh");
        let out =
            Command::new("bash").arg(&setup).stderr(Stdio::inherit()).output().expect("run tests/clients/setup.sh");
        assert!(out.status.success(), "tests/clients/setup.sh failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("setup.sh prints the venv's python").trim())
    })
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

#[test]
fn boto3_and_the_aws_cli_pass_the_sns_suite() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "error"]);
    let out = Command::new(python)
        .args(["-m", "unittest", "-v", "test_sns.py"])
        .current_dir(clients_dir())
        .env("WEIR_ENDPOINT", &serve.endpoint)
        .output()
        .expect("run the client suite");
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "the SNS client suite failed:\n{report}");
    assert!(report.contains("OK"), "{report}");
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// Messages published while the endpoint fails, before the kill.
const PUBLISHED: usize = 30;

#[test]
fn a_kill_9_with_http_deliveries_pending_loses_none() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "error"]);
    let mut script = Command::new(python)
        .arg(clients_dir().join("sns_crash.py"))
        .args([&serve.endpoint, &PUBLISHED.to_string()])
        .current_dir(clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sns_crash.py");
    let mut lines = BufReader::new(script.stdout.take().expect("stdout")).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next().expect("the published line").expect("read")).expect("JSON");
    let published: BTreeSet<String> =
        first["published"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_string()).collect();
    assert_eq!(published.len(), PUBLISHED);

    serve.child.kill().expect("kill -9 weir serve");
    serve.child.wait().unwrap();
    let restarted = ServeChild::start(dir.path(), &["--log-level", "error"]);
    let mut stdin = script.stdin.take().expect("stdin");
    writeln!(stdin, "{}", restarted.endpoint).expect("tell the script");
    drop(stdin);
    let last: serde_json::Value =
        serde_json::from_str(&lines.next().expect("the received line").expect("read")).expect("JSON");
    assert!(script.wait().expect("wait").success());
    let received: BTreeSet<String> =
        last["received"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_string()).collect();
    let lost: Vec<&String> = published.difference(&received).collect();
    assert!(lost.is_empty(), "published before the kill and never delivered after it: {lost:?}");
    drop(restarted);
}
