//! The real clients against `weir serve`'s Kinesis API: the boto3 and aws CLI suite
//! (`tests/clients/test_kinesis.py`), against two servers: one whose provisioned streams enforce
//! Kinesis's throughput limits, and one whose shard iterators last 1.5 seconds (so that
//! expiry is seen without waiting five minutes).
//!
//! `tests/clients/setup.sh` makes the virtual environment under `target/` with the pinned
//! clients once (it needs PyPI the first time, and Python 3 with `venv`).

mod server_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use server_support::ServeChild;

#[test]
fn boto3_and_the_aws_cli_pass_the_kinesis_suite() {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/setup.sh");
    let out = Command::new("bash").arg(&setup).stderr(Stdio::inherit()).output().expect("run tests/clients/setup.sh");
    assert!(out.status.success(), "tests/clients/setup.sh failed");
    let python = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("setup.sh prints the venv's python")
        .trim()
        .to_string();

    let (dir, short_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut limited = ServeChild::start(dir.path(), &["--log-level", "warn", "--kinesis-throughput-limits"]);
    let mut short =
        ServeChild::start(short_dir.path(), &["--log-level", "warn", "--kinesis-iterator-lifetime-ms", "1500"]);
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/test_kinesis.py");
    let out = Command::new(&python)
        .args(["-m", "unittest", "-v"])
        .arg(&suite)
        .current_dir(suite.parent().unwrap())
        .env("WEIR_ENDPOINT", &limited.endpoint)
        .env("WEIR_SHORT_ITERATOR_ENDPOINT", &short.endpoint)
        .output()
        .expect("run the client suite");
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "the Kinesis client suite failed:\n{report}");
    assert!(report.contains("OK"), "{report}");
    for serve in [&mut limited, &mut short] {
        let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
        assert!(status.success(), "{status:?}");
    }
}
