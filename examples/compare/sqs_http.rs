//! `sqs_http_cycle`: the queue cycle over HTTP against the same cycle through the library.
//! 8 senders call SendMessageBatch (10 messages of 256 B) and 8 receivers call ReceiveMessage
//! (up to 10) then DeleteMessageBatch, each thread over its own kept-alive HTTP/1.1 connection
//! to an in-process `weir::server::Server`; the library run makes the same calls on a `Queue`.
//! One operation is one message through the whole cycle. Durability `Always` in both.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use weir::queue::{QueueConfig, ReceiveOptions, SendEntry, SendOptions};
use weir::server::{LogLevel, Server, ServerConfig};
use weir::Durability;

use crate::common::*;

const SENDERS: usize = 8;
const RECEIVERS: usize = 8;
const BODY: usize = 256;
const BATCH: usize = 10;
/// The target: the HTTP cycle at least this fraction of the library's rate.
pub const TARGET_FRACTION: f64 = 0.5;

/// Send latencies (one SendMessageBatch / `send_batch` call each).
type Latencies = Mutex<Vec<Duration>>;

pub fn run(ctx: &Ctx) -> Row {
    let body = String::from_utf8(text_noise(BODY, 5)).expect("text noise is ASCII");
    let http_latency = Latencies::default();
    let library_latency = Latencies::default();
    let mut http_rates = Vec::new();
    let mut library_rates = Vec::new();
    for round in 0..ctx.rounds {
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for over_http in order {
            let dir = ctx.tempdir(if over_http { "sqs_http_cycle-http" } else { "sqs_http_cycle-library" });
            let rate = if over_http {
                http_cycle(ctx, dir.path(), &body, &http_latency)
            } else {
                library_cycle(ctx, dir.path(), &body, &library_latency)
            };
            eprintln!(
                "  {:<24} round {}/{} {:<7} {}",
                "sqs_http_cycle",
                round + 1,
                ctx.rounds,
                if over_http { "http" } else { "library" },
                fmt_rate(rate)
            );
            if over_http { &mut http_rates } else { &mut library_rates }.push(rate);
        }
    }
    let (http, library) = (median(&http_rates), median(&library_rates));
    let m = Measured::weir_only(http);
    let mut row = Row::new(
        "sqs_http_cycle",
        "messages/s through SendMessageBatch+ReceiveMessage+DeleteMessageBatch over HTTP",
        m,
        Target::OfOther { label: "library", value: library, frac: TARGET_FRACTION },
    );
    let (hp50, hp99) = percentiles(&http_latency);
    let (lp50, lp99) = percentiles(&library_latency);
    row.note = format!(
        "{SENDERS} senders (batches of {BATCH} x {BODY} B) and {RECEIVERS} receivers over kept-alive HTTP/1.1 (AWS JSON 1.0), Durability::Always; \
         the same cycle through the library: {} messages/s ({:.2} x). Send latency (one batch): HTTP p50 {:.2} ms p99 {:.2} ms; library p50 {:.2} ms p99 {:.2} ms",
        fmt_rate(library),
        http / library,
        hp50, hp99, lp50, lp99,
    );
    row
}

fn percentiles(latencies: &Latencies) -> (f64, f64) {
    let mut v = latencies.lock().expect("latencies").clone();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn library_cycle(ctx: &Ctx, dir: &Path, body: &str, latencies: &Latencies) -> f64 {
    let engine = open_weir(dir, Durability::Always);
    engine.create_queue("bench", QueueConfig::default()).expect("weir: create queue");
    let queue = engine.queue("bench").expect("weir: queue");
    let entries: Vec<SendEntry> = (0..BATCH)
        .map(|_| SendEntry { body: Bytes::copy_from_slice(body.as_bytes()), options: SendOptions::default() })
        .collect();
    timed(SENDERS + RECEIVERS, ctx.window, |i| {
        let (q, entries) = (queue.clone(), &entries);
        move |stop: &Stop| {
            if i < SENDERS {
                let mut mine = Vec::new();
                let n = count_until_stop(stop, || {
                    let started = Instant::now();
                    q.send_batch(entries).expect("weir: send_batch");
                    mine.push(started.elapsed());
                    0
                });
                latencies.lock().expect("latencies").extend(mine);
                return n;
            }
            count_until_stop(stop, || {
                let got = q
                    .receive(ReceiveOptions {
                        max: BATCH,
                        wait: Some(Duration::from_secs(1)),
                        visibility_timeout: None,
                        attempt_id: None,
                    })
                    .expect("weir: receive");
                if got.is_empty() {
                    return 0;
                }
                let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
                q.delete_batch(&handles).expect("weir: delete_batch").iter().filter(|r| r.is_ok()).count() as u64
            })
        }
    })
}

fn http_cycle(ctx: &Ctx, dir: &Path, body: &str, latencies: &Latencies) -> f64 {
    let engine = Arc::new(open_weir(dir, Durability::Always));
    engine.create_queue("bench", QueueConfig::default()).expect("weir: create queue");
    let config = ServerConfig { log_level: LogLevel::Warn, ..ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = Server::bind(Arc::clone(&engine), config).expect("bind");
    let addr = server.local_addr();
    let stopper = server.stopper();
    let serving = std::thread::spawn(move || server.run());
    let url = format!("http://{addr}/000000000000/bench");
    let send_body = json!({
        "QueueUrl": url,
        "Entries": (0..BATCH).map(|i| json!({"Id": format!("m{i}"), "MessageBody": body})).collect::<Vec<_>>(),
    })
    .to_string();
    let receive_body = json!({"QueueUrl": url, "MaxNumberOfMessages": BATCH, "WaitTimeSeconds": 1}).to_string();
    let rate = timed(SENDERS + RECEIVERS, ctx.window, |i| {
        let mut conn = Connection::open(addr);
        let (send_body, receive_body, url) = (&send_body, &receive_body, &url);
        move |stop: &Stop| {
            if i < SENDERS {
                let mut mine = Vec::new();
                let n = count_until_stop(stop, || {
                    let started = Instant::now();
                    let answer = conn.call("SendMessageBatch", send_body);
                    mine.push(started.elapsed());
                    assert_eq!(answer["Successful"].as_array().map(Vec::len), Some(BATCH), "{answer}");
                    0
                });
                latencies.lock().expect("latencies").extend(mine);
                return n;
            }
            count_until_stop(stop, || {
                let got = conn.call("ReceiveMessage", receive_body);
                let Some(messages) = got["Messages"].as_array() else { return 0 };
                let entries: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(k, m)| json!({"Id": format!("d{k}"), "ReceiptHandle": m["ReceiptHandle"]}))
                    .collect();
                let deleted =
                    conn.call("DeleteMessageBatch", &json!({"QueueUrl": url, "Entries": entries}).to_string());
                deleted["Successful"].as_array().map_or(0, |s| s.len() as u64)
            })
        }
    });
    stopper.stop();
    serving.join().expect("server thread").expect("server");
    rate
}

/// A kept-alive HTTP/1.1 connection speaking AWS JSON 1.0 (a minimal client: the server
/// always answers with Content-Length).
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Connection {
    fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone socket");
        Connection { reader: BufReader::new(stream), writer, host: addr.to_string() }
    }

    fn call(&mut self, operation: &str, body: &str) -> Value {
        let request = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: AmazonSQS.{operation}\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.writer.write_all(request.as_bytes()).expect("write request");
        let mut status = String::new();
        self.reader.read_line(&mut status).expect("read status");
        assert!(status.starts_with("HTTP/1.1 200"), "{operation}: {status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).expect("read body");
        serde_json::from_slice(&body).expect("JSON answer")
    }
}
