//! Firehose through real clients against `weir serve`: the boto3 and aws CLI suite
//! (`tests/clients/test_firehose.py`, with HTTP endpoints played inside it), and a kill -9 of
//! the server in the middle of deliveries to an HTTP endpoint, after which a restart delivers
//! the rest: every acknowledged record arrives, and only the batch whose answer the server had
//! not recorded arrives twice.

mod common;
mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::from_base64;
use serde_json::{json, Value};
use server_support::{python, Client, ServeChild};
use weir::text::base64;

#[test]
fn boto3_and_the_aws_cli_pass_the_firehose_suite() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let buckets = dir.path().join("buckets");
    let mut serve = ServeChild::start(
        &dir.path().join("data"),
        &["--log-level", "warn", "--buckets-dir", buckets.to_str().unwrap()],
    );
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/test_firehose.py");
    let out = Command::new(python)
        .args(["-m", "unittest", "-v"])
        .arg(&suite)
        .current_dir(suite.parent().unwrap())
        .env("WEIR_ENDPOINT", &serve.endpoint)
        .env("WEIR_BUCKETS", &buckets)
        .output()
        .expect("run the client suite");
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "the Firehose client suite failed:\n{report}");
    assert!(report.contains("OK"), "{report}");
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// What the endpoint received: each request's id and records, in arrival order.
type Received = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// An HTTP endpoint in Firehose's format on a thread: records every POST, waits `delay`, then
/// answers 200 with the request id. One request per connection.
fn endpoint(delay: Duration) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/firehose", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let body: Value = serde_json::from_slice(&body).unwrap();
                let id = body["requestId"].as_str().unwrap().to_string();
                let records = body["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| String::from_utf8(from_base64(r["data"].as_str().unwrap()).unwrap()).unwrap())
                    .map(|d| d.split(':').next().unwrap().to_string())
                    .collect();
                log.lock().unwrap().push((id.clone(), records));
                std::thread::sleep(delay);
                let answer = json!({"requestId": id, "timestamp": 0}).to_string();
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    (url, received)
}

/// Records of about 100 KiB, so that a 1 MiB buffer makes batches of ten.
const RECORDS: usize = 100;

#[test]
fn a_kill_9_mid_delivery_then_a_restart_delivers_the_rest_repeating_only_the_unrecorded_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (url, received) = endpoint(Duration::from_millis(250));
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    let mut c = Client::connect(serve.addr, false);
    let created = c.firehose(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "crash", "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": url},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": 300},
            "S3Configuration": {"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::backup"},
        }}),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let padding = "x".repeat(100 << 10);
    let mut acked = BTreeSet::new();
    for start in (0..RECORDS).step_by(10) {
        let names: Vec<String> = (start..start + 10).map(|i| format!("rec-{i:04}")).collect();
        let records: Vec<Value> =
            names.iter().map(|n| json!({"Data": base64(format!("{n}:{padding}").as_bytes())})).collect();
        let a = c.firehose("PutRecordBatch", json!({"DeliveryStreamName": "crash", "Records": records}));
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["FailedPutCount"], 0);
        acked.extend(names);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "the endpoint got fewer than 3 batches in 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    serve.child.kill().expect("kill -9 weir serve");
    serve.child.wait().unwrap();
    let before: Vec<(String, Vec<String>)> = received.lock().unwrap().clone();
    let delivered_before: BTreeSet<&String> = before.iter().flat_map(|(_, r)| r).collect();
    assert!(delivered_before.len() < RECORDS, "the kill came after every record was delivered");

    let _serve = ServeChild::start(dir.path(), &["--log-level", "warn"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: BTreeSet<String> = received.lock().unwrap().iter().flat_map(|(_, r)| r.clone()).collect();
        if got == acked {
            break;
        }
        assert!(Instant::now() < deadline, "after the restart {} of {RECORDS} records arrived", got.len());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Duplicates: only records of one batch the endpoint saw before the kill.
    let all = received.lock().unwrap().clone();
    let mut count: BTreeMap<&String, usize> = BTreeMap::new();
    for r in all.iter().flat_map(|(_, r)| r) {
        *count.entry(r).or_default() += 1;
    }
    let twice: BTreeSet<&String> = count.iter().filter(|(_, &n)| n > 1).map(|(r, _)| *r).collect();
    let batches_with_duplicates: Vec<&String> =
        before.iter().filter(|(_, r)| r.iter().any(|x| twice.contains(x))).map(|(id, _)| id).collect();
    assert!(
        batches_with_duplicates.len() <= 1,
        "records of {} batches came twice: only the one whose answer was not recorded may ({twice:?})",
        batches_with_duplicates.len()
    );
    assert!(count.values().all(|&n| n <= 2), "a record came three times");
    eprintln!("killed after {} batches; {} records came twice", before.len(), twice.len());
}
