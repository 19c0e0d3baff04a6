//! STOMP with a real client against `weir serve --stomp`: the stomp.py conformance suite
//! (`tests/clients/test_stomp.py`, with its cross-protocol test against pika over
//! `--amqp`), the same suite over TLS with `--auth`, and a crash test: a client with
//! unacknowledged messages, a committed and an uncommitted transaction, then kill -9.
//!
//! `tests/clients/setup.sh` makes the virtual environment under `target/` with the pinned
//! clients once (it needs PyPI the first time, and Python 3 with `venv`).

mod server_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::ServeChild;
use weir::{Engine, Options};

/// A field (`stomp`, `amqp`) of a startup line.
fn listener(serve: &ServeChild, field: &str) -> String {
    let line: Value = serde_json::from_str(&serve.startup_line).expect("startup line");
    line[field].as_str().unwrap_or_else(|| panic!("the startup line names the {field} listener")).to_string()
}

#[test]
fn stomp_py_passes_the_conformance_suite_and_meets_pika_on_the_same_queues() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve =
        ServeChild::start(dir.path(), &["--log-level", "warn", "--amqp", "127.0.0.1:0", "--stomp", "127.0.0.1:0"]);
    let (stomp, amqp) = (listener(&serve, "stomp"), listener(&serve, "amqp"));
    let port = serve.addr.port();
    assert_eq!(
        serve.startup_line,
        format!(
            r#"{{"listening":"127.0.0.1:{port}","endpoint":"http://127.0.0.1:{port}","amqp":"{amqp}","stomp":"{stomp}","auth":"none"}}"#
        )
    );
    server_support::run_client_suite("test_stomp.py", &[("WEIR_STOMP", stomp.as_ref()), ("WEIR_AMQP", amqp.as_ref())]);
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_suite_passes_over_tls_with_credentials_checked() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key, credentials) = server_support::tls_and_credentials(
        files.path(),
        json!([{"access_key_id": "AKIASTOMP00000001", "secret_access_key": "stomp-secret", "account": "000000000000", "user": "admin"}]),
    );
    let args = [
        "--log-level",
        "warn",
        "--stomp",
        "127.0.0.1:0",
        "--auth",
        credentials.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut serve = ServeChild::start(dir.path(), &args);
    let stomp = listener(&serve, "stomp");
    server_support::run_client_suite(
        "test_stomp.py",
        &[
            ("WEIR_STOMP", stomp.as_ref()),
            ("WEIR_CA", cert.as_os_str()),
            ("WEIR_STOMP_USER", "AKIASTOMP00000001".as_ref()),
            ("WEIR_STOMP_PASSWORD", "stomp-secret".as_ref()),
            ("WEIR_STOMP_CHECKS_CREDENTIALS", "1".as_ref()),
        ],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// A blocking STOMP client over a plain socket, enough for the crash test.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame as the test reads it: command, headers, body.
#[derive(Debug)]
struct Got {
    command: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the STOMP listener");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = Raw { stream, buf: Vec::new() };
        raw.send("CONNECT", &[("accept-version", "1.2"), ("host", "/")], b"");
        assert_eq!(raw.next().command, "CONNECTED");
        raw
    }

    fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut out = format!("{command}\n").into_bytes();
        for (n, v) in headers {
            out.extend_from_slice(format!("{n}:{v}\n").as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(body);
        out.push(0);
        self.stream.write_all(&out).expect("write a frame");
    }

    /// The next frame (heart-beats skipped); bodies here hold no NUL.
    fn next(&mut self) -> Got {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while self.buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.iter().position(|b| *b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                let text = &frame[..end];
                let split = text.windows(2).position(|w| w == b"\n\n").expect("a frame with headers");
                let head = String::from_utf8(text[..split].to_vec()).expect("UTF-8 headers");
                let mut lines = head.lines();
                let command = lines.next().unwrap_or_default().to_string();
                let headers =
                    lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.to_string(), v.to_string())).collect();
                return Got { command, headers, body: text[split + 2..].to_vec() };
            }
            assert!(Instant::now() < deadline, "no frame within 10 s");
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read from the server");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a frame with a receipt and waits for it (durable, for SEND, ACK and COMMIT).
    fn confirmed(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8], receipt: &str) {
        let mut all = headers.to_vec();
        all.push(("receipt", receipt));
        self.send(command, &all, body);
        // Messages of the subscription may come first.
        let mut got = self.next();
        while got.command == "MESSAGE" {
            got = self.next();
        }
        assert_eq!((got.command.as_str(), got.header("receipt-id")), ("RECEIPT", Some(receipt)), "{got:?}");
    }
}

#[test]
fn a_kill_9_keeps_unacked_and_committed_work_and_nothing_acknowledged_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--stomp", "127.0.0.1:0"]);
    let addr = listener(&serve, "stomp");
    let mut c = Raw::connect(&addr);
    for i in 0..20 {
        c.confirmed("SEND", &[("destination", "/queue/crash")], format!("m{i}").as_bytes(), &format!("s{i}"));
    }
    c.send("SUBSCRIBE", &[("destination", "/queue/crash"), ("id", "0"), ("ack", "client-individual")], b"");
    let messages: Vec<Got> = (0..20).map(|_| c.next()).collect();
    let ack_of = |i: usize| messages[i].header("ack").expect("an ack header").to_string();
    for (i, m) in messages.iter().enumerate() {
        assert_eq!((m.command.as_str(), m.body.as_slice()), ("MESSAGE", format!("m{i}").as_bytes()));
    }
    // m0..m4 acknowledged one by one.
    for i in 0..5 {
        c.confirmed("ACK", &[("id", &ack_of(i))], b"", &format!("a{i}"));
    }
    // m5..m9 acknowledged, and two messages sent, in a committed transaction.
    c.send("BEGIN", &[("transaction", "t1")], b"");
    for i in 5..10 {
        c.send("ACK", &[("id", &ack_of(i)), ("transaction", "t1")], b"");
    }
    for i in 0..2 {
        c.send("SEND", &[("destination", "/queue/crash"), ("transaction", "t1")], format!("t1-{i}").as_bytes());
    }
    c.confirmed("COMMIT", &[("transaction", "t1")], b"", "c1");
    // m10..m14 acknowledged, and one message sent, in a transaction never committed.
    c.send("BEGIN", &[("transaction", "t2")], b"");
    for i in 10..15 {
        c.send("ACK", &[("id", &ack_of(i)), ("transaction", "t2")], b"");
    }
    c.confirmed("SEND", &[("destination", "/queue/crash"), ("transaction", "t2")], b"t2-lost", "s-t2");
    // A topic subscription reads a transient queue of its own.
    c.confirmed("SUBSCRIBE", &[("destination", "/topic/news"), ("id", "1")], b"", "sub-topic");
    // The server has read all of it (the receipts above): now the kill.
    serve.child.kill().expect("kill -9 weir serve");
    serve.child.wait().unwrap();
    drop(c);

    let engine = Engine::open(dir.path(), Options::default()).expect("open after the kill");
    assert!(engine.topic("news").is_ok(), "the topic made by SUBSCRIBE is durable");
    let queues = engine.list_queues();
    assert_eq!(queues, vec!["crash".to_string()], "the topic subscription's queue went with its connection");
    let queue = engine.queue("crash").expect("the queue made by SEND is durable");
    let mut bodies = Vec::new();
    loop {
        let got = queue.receive_held(64).unwrap();
        if got.is_empty() {
            break;
        }
        bodies.extend(got.into_iter().map(|m| String::from_utf8(m.body.to_vec()).unwrap()));
    }
    bodies.sort();
    let mut expected: Vec<String> = (10..20).map(|i| format!("m{i}")).collect();
    expected.extend(["t1-0".to_string(), "t1-1".to_string()]);
    expected.sort();
    assert_eq!(
        bodies, expected,
        "unacknowledged and committed messages stay; acknowledged and uncommitted ones do not"
    );
}

#[test]
fn a_connection_past_its_transaction_limit_gets_an_error_and_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--stomp", "127.0.0.1:0"]);
    let mut c = Raw::connect(&listener(&serve, "stomp"));
    for i in 0..64 {
        c.send("BEGIN", &[("transaction", &format!("t{i}"))], b"");
    }
    c.confirmed("SEND", &[("destination", "/queue/limits")], b"still fine", "r0");
    c.send("BEGIN", &[("transaction", "one-too-many"), ("receipt", "r1")], b"");
    let error = c.next();
    assert_eq!((error.command.as_str(), error.header("message")), ("ERROR", Some("too many transactions")));
    assert_eq!(error.header("receipt-id"), Some("r1"));
    let mut rest = Vec::new();
    assert_eq!(c.stream.read_to_end(&mut rest).expect("the server closes the connection"), 0);
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}
