//! AMQP 0-9-1 with a real client against `weir serve --amqp`: the pika conformance suite
//! (`tests/clients/test_amqp.py`, with its cross-protocol tests against boto3), the same
//! suite over TLS with `--auth`, and a crash test where pika publishers (with confirms) and
//! consumers (with acks) run while the server is killed with SIGKILL.
//!
//! `tests/clients/setup.sh` makes the virtual environment under `target/` with the pinned
//! clients once (it needs PyPI the first time, and Python 3 with `venv`).

mod server_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::{python, ServeChild};
use weir::{Engine, Options};

/// The `amqp` field of a startup line.
fn amqp_addr(serve: &ServeChild) -> String {
    let line: Value = serde_json::from_str(&serve.startup_line).expect("startup line");
    line["amqp"].as_str().expect("the startup line names the AMQP listener").to_string()
}

#[test]
fn pika_passes_the_conformance_suite_and_meets_boto3_on_the_same_queues() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--amqp", "127.0.0.1:0"]);
    let amqp = amqp_addr(&serve);
    let port = serve.addr.port();
    assert_eq!(
        serve.startup_line,
        format!(
            r#"{{"listening":"127.0.0.1:{port}","endpoint":"http://127.0.0.1:{port}","amqp":"{amqp}","auth":"none"}}"#
        )
    );
    server_support::run_client_suite(
        "test_amqp.py",
        &[("WEIR_AMQP", amqp.as_ref()), ("WEIR_ENDPOINT", serve.endpoint.as_ref())],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_suite_passes_over_tls_with_credentials_checked() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key, credentials) = server_support::tls_and_credentials(
        files.path(),
        json!([
            {"access_key_id": "AKIAADMIN00000001", "secret_access_key": "admin-secret", "account": "000000000000", "user": "admin"},
        ]),
    );
    let args = [
        "--log-level",
        "warn",
        "--amqp",
        "127.0.0.1:0",
        "--auth",
        credentials.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut serve = ServeChild::start(dir.path(), &args);
    let amqp = amqp_addr(&serve);
    server_support::run_client_suite(
        "test_amqp.py",
        &[
            ("WEIR_AMQP", amqp.as_ref()),
            ("WEIR_ENDPOINT", serve.endpoint.as_ref()),
            ("WEIR_CA", cert.as_os_str()),
            ("WEIR_AMQP_AUTH", "1".as_ref()),
            ("WEIR_AMQP_USER", "AKIAADMIN00000001".as_ref()),
            ("WEIR_AMQP_PASSWORD", "admin-secret".as_ref()),
            ("WEIR_AWS_KEY", "AKIAADMIN00000001".as_ref()),
            ("WEIR_AWS_SECRET", "admin-secret".as_ref()),
        ],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// Publishes confirmed before the kill.
const MIN_CONFIRMED: usize = 300;
/// Acknowledgements known processed before the kill.
const MIN_ACKED: usize = 40;
/// Deliveries held unacknowledged before the kill.
const MIN_HELD: usize = 5;

#[test]
fn a_kill_9_loses_no_confirmed_publish_and_revives_no_acknowledged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--amqp", "127.0.0.1:0"]);
    let amqp = amqp_addr(&serve);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/amqp_crash_load.py");
    let mut load = Command::new(python())
        .arg(&script)
        .arg(&amqp)
        .arg(journal.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the pika load");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let j = read_journals(journal.path());
        if j.confirmed.len() >= MIN_CONFIRMED && j.acked.len() >= MIN_ACKED && j.held.len() >= MIN_HELD {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the load made too little progress: {} confirmed, {} acked, {} held",
            j.confirmed.len(),
            j.acked.len(),
            j.held.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.child.kill().expect("kill -9 weir serve");
    serve.child.wait().unwrap();
    server_support::reap_within(&mut load, Duration::from_secs(30));
    let j = read_journals(journal.path());
    eprintln!(
        "killed after {} confirmed publishes, {} acknowledged and {} held deliveries",
        j.confirmed.len(),
        j.acked.len(),
        j.held.len()
    );

    let engine = Engine::open(dir.path(), Options::default()).expect("reopen after kill -9");
    let queue = engine.queue("crash.work").expect("the durable queue survives");
    let (ready, in_flight) = queue.ready_and_in_flight();
    assert_eq!(in_flight, 0, "deliveries held by the dead server's consumers are visible again");
    let live: BTreeSet<String> =
        queue.peek(usize::MAX).unwrap().into_iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert_eq!(live.len() as u64, ready);
    for body in &j.confirmed {
        assert!(live.contains(body) || j.acking.contains(body), "publish of {body:?} was confirmed and is gone");
    }
    for body in &j.acked {
        assert!(!live.contains(body), "{body:?} was acknowledged and came back");
    }
    for body in &j.held {
        assert!(live.contains(body) || j.acking.contains(body), "held delivery {body:?} is gone without an ack");
    }
}

#[derive(Default)]
struct Journals {
    confirmed: BTreeSet<String>,
    held: BTreeSet<String>,
    acking: BTreeSet<String>,
    acked: BTreeSet<String>,
}

/// Whole lines of every journal file.
fn read_journals(dir: &Path) -> Journals {
    let mut j = Journals::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        // A last line without its newline was being written at the kill: not a fact yet.
        let whole = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        for line in whole.lines() {
            let Some((what, body)) = line.split_once(' ') else { continue };
            let set = match what {
                "confirmed" => &mut j.confirmed,
                "held" => &mut j.held,
                "acking" => &mut j.acking,
                "acked" => &mut j.acked,
                _ => continue,
            };
            set.insert(body.to_string());
        }
    }
    j
}
