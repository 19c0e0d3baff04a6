//! `sqs_http_cycle`: the queue cycle over HTTP against the same cycle through the library.
//! 8 senders call SendMessageBatch (10 messages of 256 B) and 8 receivers call ReceiveMessage
//! (up to 10) then DeleteMessageBatch, each thread over its own kept-alive HTTP/1.1 connection
//! to an in-process `weir::server::Server`; the library run makes the same calls on a `Queue`.
//! One operation is one message through the whole cycle. Durability `Always` in both. The
//! client threads are also timed alone, against canned answers, to show they are not the limit.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use weir::queue::{QueueConfig, ReceiveOptions, SendEntry, SendOptions};
use weir::server::{LogLevel, Server, ServerConfig};
use weir::Durability;

use crate::common::*;
use crate::http_connection::Connection;

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
    let (http, library) = http_and_library(ctx, "sqs_http_cycle", |over_http, dir| {
        if over_http {
            http_cycle(ctx, dir, &body, &http_latency)
        } else {
            library_cycle(ctx, dir, &body, &library_latency)
        }
    });
    let client = client_alone(ctx, &body);
    eprintln!("  {:<24} client alone (canned answers) {}", "sqs_http_cycle", fmt_rate(client));
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
         the same cycle through the library: {} messages/s ({:.2} x); the client threads alone against canned answers: {} messages/s. Send latency (one batch): HTTP p50 {:.2} ms p99 {:.2} ms; library p50 {:.2} ms p99 {:.2} ms",
        fmt_rate(library),
        http / library,
        fmt_rate(client),
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
    let rate = drive_cycle(ctx, addr, body, latencies);
    stopper.stop();
    serving.join().expect("server thread").expect("server");
    rate
}

/// The client side alone: the same threads and calls against a server that answers each with
/// a canned answer of the right shape and does no other work. Its rate bounds what the client
/// threads can drive on this machine: well above the HTTP rate means the client is not what
/// limits [`http_cycle`].
pub fn client_alone(ctx: &Ctx, body: &str) -> f64 {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let addr = listener.local_addr().expect("address");
    let answers = Arc::new(CannedAnswers::new(body));
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (answers, stop) = (Arc::clone(&answers), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let answers = Arc::clone(&answers);
                std::thread::spawn(move || answers.serve(stream));
            }
        })
    };
    let rate = drive_cycle(ctx, addr, body, &Latencies::default());
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(addr); // wakes the acceptor
    acceptor.join().expect("acceptor");
    rate
}

/// Answers of the shapes weir gives, for [`client_alone`].
struct CannedAnswers {
    send: String,
    receive: String,
    delete: String,
}

impl CannedAnswers {
    fn new(body: &str) -> CannedAnswers {
        let id = "a1b2c3d4-0000-4000-8000-000000000000";
        let send = json!({
            "Successful": (0..BATCH).map(|i| json!({"Id": format!("m{i}"), "MessageId": id, "MD5OfMessageBody": "0".repeat(32)})).collect::<Vec<_>>(),
            "Failed": [],
        });
        let receive = json!({
            "Messages": (0..BATCH).map(|_| json!({"MessageId": id, "ReceiptHandle": "h".repeat(120), "MD5OfBody": "0".repeat(32), "Body": body})).collect::<Vec<_>>(),
        });
        let delete =
            json!({"Successful": (0..BATCH).map(|i| json!({"Id": format!("d{i}")})).collect::<Vec<_>>(), "Failed": []});
        CannedAnswers { send: send.to_string(), receive: receive.to_string(), delete: delete.to_string() }
    }

    /// Serves one connection until the client closes it.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(mut writer) = stream.try_clone() else { return };
        let mut reader = BufReader::new(stream);
        loop {
            let (mut length, mut target) = (0usize, String::new());
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    } else if name.eq_ignore_ascii_case("x-amz-target") {
                        target = value.trim().to_string();
                    }
                }
            }
            let mut request = vec![0u8; length];
            if reader.read_exact(&mut request).is_err() {
                return;
            }
            let answer = match target.as_str() {
                "AmazonSQS.SendMessageBatch" => &self.send,
                "AmazonSQS.ReceiveMessage" => &self.receive,
                _ => &self.delete,
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                answer.len()
            );
            if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(answer.as_bytes())).is_err() {
                return;
            }
        }
    }
}

/// The measured loop: 8 senders and 8 receivers, each over its own connection to `addr`. The
/// client is kept cheap (it shares the cores with the server): the send and receive requests
/// are built once, answers are read into reused buffers and parsed into the few fields used.
fn drive_cycle(ctx: &Ctx, addr: SocketAddr, body: &str, latencies: &Latencies) -> f64 {
    let url = format!("http://{addr}/000000000000/bench");
    let send_body = json!({
        "QueueUrl": url,
        "Entries": (0..BATCH).map(|i| json!({"Id": format!("m{i}"), "MessageBody": body})).collect::<Vec<_>>(),
    })
    .to_string();
    let receive_body = json!({"QueueUrl": url, "MaxNumberOfMessages": BATCH, "WaitTimeSeconds": 1}).to_string();
    let host = addr.to_string();
    let send_request = request(&host, "SendMessageBatch", &send_body);
    let receive_request = request(&host, "ReceiveMessage", &receive_body);
    let delete_prefix = format!(r#"{{"QueueUrl":{},"Entries":["#, Value::String(url.clone()));
    timed(SENDERS + RECEIVERS, ctx.window, |i| {
        let mut conn = Connection::open(addr);
        let (send_request, receive_request, delete_prefix, host) =
            (&send_request, &receive_request, &delete_prefix, &host);
        move |stop: &Stop| {
            if i < SENDERS {
                let mut mine = Vec::new();
                let n = count_until_stop(stop, || {
                    let started = Instant::now();
                    let answer: SendAnswer = conn.call("SendMessageBatch", send_request);
                    mine.push(started.elapsed());
                    assert_eq!(answer.successful.len(), BATCH, "a send failed: {:?}", answer.failed);
                    0
                });
                latencies.lock().expect("latencies").extend(mine);
                return n;
            }
            let mut delete_body = String::new();
            count_until_stop(stop, || {
                let handles: Vec<String> = {
                    let got: ReceiveAnswer<'_> = conn.call("ReceiveMessage", receive_request);
                    got.messages.iter().map(|m| m.receipt_handle.to_string()).collect()
                };
                if handles.is_empty() {
                    return 0;
                }
                delete_body.clear();
                delete_body.push_str(delete_prefix);
                for (k, handle) in handles.iter().enumerate() {
                    let comma = if k == 0 { "" } else { "," };
                    let _ = write!(
                        delete_body,
                        r#"{comma}{{"Id":"d{k}","ReceiptHandle":{}}}"#,
                        Value::String(handle.clone())
                    );
                }
                delete_body.push_str("]}");
                let delete = request(host, "DeleteMessageBatch", &delete_body);
                let deleted: SendAnswer = conn.call("DeleteMessageBatch", &delete);
                deleted.successful.len() as u64
            })
        }
    })
}

/// A whole AWS JSON 1.0 request.
fn request(host: &str, operation: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: AmazonSQS.{operation}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the client reads of a SendMessageBatch or DeleteMessageBatch answer.
#[derive(Deserialize)]
struct SendAnswer {
    #[serde(rename = "Successful")]
    successful: Vec<IgnoredAny>,
    #[serde(rename = "Failed", default)]
    failed: Vec<Value>,
}

/// What the client reads of a ReceiveMessage answer.
#[derive(Deserialize)]
struct ReceiveAnswer<'a> {
    #[serde(rename = "Messages", default, borrow)]
    messages: Vec<Received<'a>>,
}

#[derive(Deserialize)]
struct Received<'a> {
    #[serde(rename = "ReceiptHandle", borrow)]
    receipt_handle: Cow<'a, str>,
}
