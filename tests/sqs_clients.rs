//! The real clients against `weir serve`: the boto3 and aws CLI suite
//! (`tests/clients/test_sqs.py`), and a crash test where boto3 clients send and receive while
//! the server is killed with SIGKILL.
//!
//! `tests/clients/setup.sh` makes the virtual environment under `target/` with the pinned
//! clients once (it needs PyPI the first time, and Python 3 with `venv`).

mod server_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::{python, Client, ServeChild};
use weir::{Engine, Options};

#[test]
fn boto3_and_the_aws_cli_pass_the_client_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    server_support::run_client_suite("test_sqs.py", &[("WEIR_ENDPOINT", serve.endpoint.as_ref())]);
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// Sends answered 200 before the kill.
const MIN_SENT: usize = 300;
/// Deletes answered 200 before the kill.
const MIN_DELETED: usize = 40;

#[test]
fn a_kill_9_loses_no_answered_send_and_revives_no_answered_delete() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    let mut c = Client::connect(serve.addr, false);
    let url = c.json("CreateQueue", json!({"QueueName": "crash", "Attributes": {"VisibilityTimeout": "600"}})).json()
        ["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/crash_load.py");
    let mut load = Command::new(python)
        .arg(&script)
        .args([&serve.endpoint, &url])
        .arg(journal.path())
        .args(["4", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the boto3 load");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (sent, _, deleted) = read_journals(journal.path());
        if sent.len() >= MIN_SENT && deleted.len() >= MIN_DELETED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the load made too little progress: {} sent, {} deleted",
            sent.len(),
            deleted.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.child.kill().expect("kill -9 weir serve");
    serve.child.wait().unwrap();
    server_support::reap_within(&mut load, Duration::from_secs(30));
    let (sent, deleting, deleted) = read_journals(journal.path());
    eprintln!("killed after {} answered sends and {} answered deletes", sent.len(), deleted.len());

    // The restart: the data directory opens, and holds exactly what was promised.
    let engine = Engine::open(dir.path(), Options::default()).expect("reopen after kill -9");
    let live: BTreeSet<String> = engine
        .queue("crash")
        .unwrap()
        .peek(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    for body in &sent {
        assert!(live.contains(body) || deleting.contains(body), "send of {body:?} was answered 200 and is gone");
    }
    for body in &deleted {
        assert!(!live.contains(body), "delete of {body:?} was answered 200 and it came back");
    }
    drop(engine);
    // And the server serves it again.
    let serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    let mut c = Client::connect(serve.addr, false);
    let a = c.json(
        "GetQueueAttributes",
        json!({"QueueUrl": url.replace(&c.addr.to_string(), &serve.addr.to_string()), "AttributeNames": ["All"]}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
}

type Journals = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

/// Whole lines of every journal file: (sent, deleting, deleted) bodies.
fn read_journals(dir: &Path) -> Journals {
    let (mut sent, mut deleting, mut deleted) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        // A last line without its newline was being written at the kill: not a fact yet.
        let whole = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        for line in whole.lines() {
            match line.split_once(' ') {
                Some(("sent", body)) => sent.insert(body.to_string()),
                Some(("deleting", body)) => deleting.insert(body.to_string()),
                Some(("deleted", body)) => deleted.insert(body.to_string()),
                _ => false,
            };
        }
    }
    (sent, deleting, deleted)
}
