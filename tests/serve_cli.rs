//! `weir serve` as a process: its startup line, a clean stop on SIGTERM and SIGINT, and 1,000
//! idle long polls held with bounded threads and memory.

mod server_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::{Client, ServeChild};
use weir::queue::ReceiveOptions;
use weir::{Engine, Options};

/// `{"listening":"127.0.0.1:PORT","endpoint":"http://127.0.0.1:PORT","auth":"none"}` exactly.
fn assert_startup_line(line: &str, port: u16) {
    assert_eq!(
        line,
        format!(r#"{{"listening":"127.0.0.1:{port}","endpoint":"http://127.0.0.1:{port}","auth":"none"}}"#)
    );
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn startup_line_then_a_clean_stop_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let mut serve = ServeChild::start(dir.path(), &[]);
        assert_startup_line(&serve.startup_line, serve.addr.port());
        let mut c = Client::connect(serve.addr, false);
        let a = c.json("CreateQueue", json!({"QueueName": "kept"}));
        assert_eq!(a.status, 200, "{}", a.text());
        let url = a.json()["QueueUrl"].as_str().unwrap().to_string();
        let a = c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": format!("before SIG{signal}")}));
        assert_eq!(a.status, 200);
        let status = serve.signal_and_wait(signal, Duration::from_secs(20));
        assert!(status.success(), "SIG{signal}: {status:?}");
    }
    // The engine was closed: the directory opens at once (no lock held) with both messages.
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let got = engine.queue("kept").unwrap().receive(ReceiveOptions { max: 10, ..Default::default() }).unwrap();
    let mut bodies: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    bodies.sort();
    assert_eq!(bodies, ["before SIGINT", "before SIGTERM"]);
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--listen", "nowhere"][..], &["--log-level", "loud"], &["--account-id", "12"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--data")
            .arg(dir.path())
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}

/// How many long polls wait at once.
const POLLS: usize = 1000;
/// Threads the server may have while they wait: 2 async workers, at most 64 blocking-pool
/// threads, main, the engine's maintenance thread and a few of the runtime's own.
const MAX_THREADS: u64 = 80;
/// Resident memory allowed while they wait.
const MAX_RSS_KIB: u64 = 256 << 10;

#[test]
fn a_thousand_idle_long_polls_hold_bounded_threads_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    let mut c = Client::connect(serve.addr, false);
    let url = c.json("CreateQueue", json!({"QueueName": "idle"})).json()["QueueUrl"].as_str().unwrap().to_string();
    let body = json!({"QueueUrl": url, "WaitTimeSeconds": 20}).to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: AmazonSQS.ReceiveMessage\r\ncontent-length: {}\r\n\r\n{body}",
        serve.addr,
        body.len()
    );
    let mut sockets: Vec<TcpStream> = (0..POLLS)
        .map(|_| {
            let mut s = TcpStream::connect(serve.addr).expect("connect");
            s.write_all(request.as_bytes()).expect("write");
            s
        })
        .collect();
    // Let every poll reach its wait (and the blocking pool settle) before measuring.
    std::thread::sleep(Duration::from_secs(2));
    let threads = proc_status(serve.pid(), "Threads");
    let rss_kib = proc_status(serve.pid(), "VmRSS");
    eprintln!("{POLLS} idle long polls: {threads} threads, {} MiB resident", rss_kib / 1024);
    assert!(threads <= MAX_THREADS, "{threads} threads for {POLLS} idle long polls");
    assert!(rss_kib <= MAX_RSS_KIB, "{rss_kib} KiB resident for {POLLS} idle long polls");
    // None has answered: they are all still waiting.
    for s in sockets.iter().take(20) {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1];
        assert!(matches!((&*s).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
        s.set_nonblocking(false).unwrap();
    }
    // A stop answers every one of them, empty, and exits 0.
    let started = Instant::now();
    let status = serve.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let mut answered = 0;
    for s in &mut sockets {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        if text.starts_with("HTTP/1.1 200") && text.ends_with("{}") {
            answered += 1;
        }
    }
    assert_eq!(answered, POLLS, "every waiting poll is answered (empty) on stop");
    assert!(started.elapsed() < Duration::from_secs(20), "stop took {:?}", started.elapsed());
}

/// The JSON log lines `weir serve` wrote to stderr until it stopped.
fn log_lines(serve: &mut ServeChild) -> Vec<serde_json::Value> {
    let mut text = String::new();
    serve.child.stderr.take().expect("piped stderr").read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}")))
        .collect()
}

#[test]
fn debug_logs_one_line_per_request_and_info_logs_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start_with_stderr(dir.path(), &["--log-level", "debug"], std::process::Stdio::piped());
    let mut c = Client::connect(serve.addr, false);
    c.json("CreateQueue", json!({"QueueName": "logged"}));
    c.json("GetQueueUrl", json!({"QueueName": "absent"}));
    assert!(serve.signal_and_wait("TERM", Duration::from_secs(20)).success());
    let lines = log_lines(&mut serve);
    let requests: Vec<&serde_json::Value> = lines.iter().filter(|l| l["msg"] == "request").collect();
    assert_eq!(requests.len(), 2, "{lines:?}");
    let created = requests[0];
    assert_eq!(
        (&created["operation"], &created["queue"], &created["status"]),
        (&json!("CreateQueue"), &json!("logged"), &json!(200))
    );
    assert!(created["duration_ms"].as_f64().is_some() && created["level"] == "debug" && created["time_ms"].is_u64());
    assert_eq!((&requests[1]["status"], &requests[1]["error"]), (&json!(400), &json!("QueueDoesNotExist")));

    let mut serve = ServeChild::start_with_stderr(dir.path(), &[], std::process::Stdio::piped());
    let mut c = Client::connect(serve.addr, false);
    c.json("ListQueues", json!({}));
    assert!(serve.signal_and_wait("INT", Duration::from_secs(20)).success());
    let lines = log_lines(&mut serve);
    assert!(lines.iter().all(|l| l["msg"] != "request"), "info logs no requests: {lines:?}");
    assert!(lines.iter().any(|l| l["msg"] == "signal received" && l["signal"] == "SIGINT"), "{lines:?}");
}
