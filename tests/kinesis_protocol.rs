//! Kinesis over real HTTP at the protocol's edges: every error code as Kinesis sends it
//! (`__type`, message, status), malformed JSON and CBOR, bodies over the limit, CBOR requests
//! as the Java SDKs send them (indefinite-length maps, byte strings, tag-1 timestamps in
//! milliseconds) and CBOR answers, shard iterators that expire on the engine clock, are refused
//! when forged and survive a restart, and SubscribeToShard's event stream over HTTP/1.1 and
//! HTTP/2.

mod server_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use server_support::{Answer, Client};
use weir::server::eventstream::{self, Message};
use weir::server::{cbor, LogLevel, Server, ServerConfig, Stopper};
use weir::{Engine, ManualClock, Options};

const T0: u64 = 1_800_000_000_000;

struct Kinesis {
    addr: SocketAddr,
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    stopper: Stopper,
    thread: Option<JoinHandle<weir::Result<()>>>,
}

impl Kinesis {
    fn start(dir: &std::path::Path) -> Kinesis {
        Self::start_with(dir, Arc::new(ManualClock::new(T0)), |c| c)
    }

    fn start_with(
        dir: &std::path::Path,
        clock: Arc<ManualClock>,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Kinesis {
        let options = Options { clock: clock.clone(), background: false, ..Options::default() };
        let engine = Arc::new(Engine::open(dir, options).unwrap());
        let config =
            configure(ServerConfig { log_level: LogLevel::Error, ..ServerConfig::new(([127, 0, 0, 1], 0).into()) });
        let server = Server::bind(Arc::clone(&engine), config).unwrap();
        let addr = server.local_addr();
        let stopper = server.stopper();
        let thread = Some(std::thread::spawn(move || server.run()));
        Kinesis { addr, clock, engine, stopper, thread }
    }

    fn stop(mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

fn call(c: &mut Client, op: &str, body: Value) -> Answer {
    raw(c, op, "application/x-amz-json-1.1", body.to_string().into_bytes())
}

fn raw(c: &mut Client, op: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{}/", c.addr))
        .header("host", c.addr.to_string())
        .header("content-type", content_type)
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    c.send(req)
}

fn ok(c: &mut Client, op: &str, body: Value) -> Value {
    let a = call(c, op, body);
    assert_eq!(a.status, 200, "{op}: {}", a.text());
    a.json()
}

fn error(a: &Answer) -> (u16, String, String) {
    let body = a.json();
    assert_eq!(a.header("x-amzn-errortype").as_deref(), body["__type"].as_str(), "the header names the shape");
    (a.status, body["__type"].as_str().unwrap_or_default().into(), body["message"].as_str().unwrap_or_default().into())
}

fn expect_error(c: &mut Client, op: &str, body: Value, shape: &str) -> String {
    let a = call(c, op, body.clone());
    let (status, got, message) = error(&a);
    assert_eq!((status, got.as_str()), (400, shape), "{op} {body}: {message}");
    assert!(!message.is_empty());
    message
}

fn iterator(c: &mut Client, stream: &str, kind: &str) -> String {
    let out = ok(
        c,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": kind}),
    );
    out["ShardIterator"].as_str().unwrap().to_string()
}

#[test]
fn every_error_code_comes_as_kinesis_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kinesis::start_with(dir.path(), Arc::new(ManualClock::new(T0)), |c| ServerConfig {
        kinesis_throughput_limits: true,
        max_body_bytes: 1 << 20,
        ..c
    });
    let mut c = Client::connect(server.addr, false);
    ok(&mut c, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}));
    expect_error(&mut c, "DescribeStream", json!({"StreamName": "nope"}), "ResourceNotFoundException");
    expect_error(&mut c, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}), "ResourceInUseException");
    expect_error(&mut c, "CreateStream", json!({"StreamName": "bad name", "ShardCount": 1}), "ValidationException");
    expect_error(&mut c, "CreateStream", json!({"StreamName": "t", "ShardCount": 0}), "ValidationException");
    expect_error(&mut c, "CreateStream", json!({"StreamName": "t", "ShardCount": 5000}), "LimitExceededException");
    expect_error(&mut c, "PutRecord", json!({"StreamName": "s", "Data": "eA=="}), "ValidationException");
    expect_error(
        &mut c,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "not base64!"}),
        "SerializationException",
    );
    expect_error(
        &mut c,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "eA==", "ExplicitHashKey": "x"}),
        "ValidationException",
    );
    expect_error(
        &mut c,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "eA==", "ExplicitHashKey": "340282366920938463463374607431768211456"}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "01"}),
        "ValidationException",
    );
    expect_error(
        &mut c,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "SOMEWHERE"}),
        "ValidationException",
    );
    expect_error(
        &mut c,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shard-zero", "ShardIteratorType": "LATEST"}),
        "ResourceNotFoundException",
    );
    expect_error(&mut c, "GetRecords", json!({"ShardIterator": "deadbeef"}), "InvalidArgumentException");
    let latest = iterator(&mut c, "s", "LATEST");
    expect_error(&mut c, "GetRecords", json!({"ShardIterator": latest, "Limit": 0}), "ValidationException");
    expect_error(&mut c, "ListShards", json!({"StreamName": "s", "NextToken": "x"}), "InvalidArgumentException");
    expect_error(
        &mut c,
        "ListShards",
        json!({"StreamName": "s", "ShardFilter": {"Type": "SIDEWAYS"}}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "0"}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "UpdateShardCount",
        json!({"StreamName": "s", "TargetShardCount": 3, "ScalingType": "UNIFORM_SCALING"}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "IncreaseStreamRetentionPeriod",
        json!({"StreamName": "s", "RetentionPeriodHours": 10}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "StartStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "AES", "KeyId": "k"}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": {"aws:x": "y"}}),
        "InvalidArgumentException",
    );
    expect_error(
        &mut c,
        "RegisterStreamConsumer",
        json!({"StreamARN": "arn:aws:kinesis:eu-west-1:000000000000:stream/s", "ConsumerName": "c"}),
        "InvalidArgumentException",
    );
    expect_error(&mut c, "DescribeStream", json!({}), "ValidationException");
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    for i in 0..20 {
        ok(&mut c, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": format!("c{i}")}));
    }
    expect_error(
        &mut c,
        "RegisterStreamConsumer",
        json!({"StreamARN": arn, "ConsumerName": "one-too-many"}),
        "LimitExceededException",
    );
    expect_error(
        &mut c,
        "RegisterStreamConsumer",
        json!({"StreamARN": arn, "ConsumerName": "c0"}),
        "ResourceInUseException",
    );
    expect_error(
        &mut c,
        "DescribeStreamConsumer",
        json!({"ConsumerARN": format!("{arn}/consumer/c0:1")}),
        "ResourceNotFoundException",
    );
    expect_error(&mut c, "DeleteStream", json!({"StreamName": "s"}), "ResourceInUseException");
    // Throughput: the shard takes 1,000 records a second.
    let records: Vec<Value> = (0..500).map(|i| json!({"PartitionKey": format!("k{i}"), "Data": "eA=="})).collect();
    for _ in 0..2 {
        assert_eq!(ok(&mut c, "PutRecords", json!({"StreamName": "s", "Records": records}))["FailedRecordCount"], 0);
    }
    let third = ok(&mut c, "PutRecords", json!({"StreamName": "s", "Records": records}));
    assert_eq!(third["FailedRecordCount"], 500);
    assert_eq!(third["Records"][0]["ErrorCode"], "ProvisionedThroughputExceededException");
    expect_error(
        &mut c,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "eA=="}),
        "ProvisionedThroughputExceededException",
    );
    // The protocol itself.
    let a = raw(&mut c, "DescribeStream", "application/x-amz-json-1.1", b"{not json".to_vec());
    assert_eq!(error(&a).1, "SerializationException");
    let a = raw(&mut c, "DescribeStream", "application/x-amz-json-1.1", b"[1,2]".to_vec());
    assert_eq!(error(&a).1, "SerializationException");
    let a = call(&mut c, "FlyToTheMoon", json!({}));
    assert_eq!(error(&a), (400, "UnknownOperationException".into(), error(&a).2));
    let a = raw(&mut c, "PutRecord", "application/x-amz-json-1.1", vec![b' '; (1 << 20) + 10]);
    assert_eq!(a.status, 413);
    assert_eq!(error(&a).1, "ValidationException");
    // The connection is still usable after every one of them.
    ok(&mut c, "ListStreams", json!({}));
    server.stop();
}

#[test]
fn iterators_expire_on_the_engine_clock_refuse_forgery_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Kinesis::start_with(dir.path(), clock.clone(), |c| c);
    let mut c = Client::connect(server.addr, false);
    ok(&mut c, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}));
    let put = ok(&mut c, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": "b25l"}));
    assert_eq!(put["SequenceNumber"], "1");
    let it = iterator(&mut c, "s", "TRIM_HORIZON");
    // Altered anywhere: refused.
    let mut forged = it.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    expect_error(
        &mut c,
        "GetRecords",
        json!({"ShardIterator": String::from_utf8(forged).unwrap()}),
        "InvalidArgumentException",
    );
    // Five minutes on the engine clock: still good; a millisecond more: expired.
    clock.advance(Duration::from_millis(300_000));
    let read = ok(&mut c, "GetRecords", json!({"ShardIterator": it}));
    assert_eq!(read["Records"][0]["Data"], "b25l");
    assert_eq!(read["Records"][0]["ApproximateArrivalTimestamp"], json!(T0 as f64 / 1000.0));
    clock.advance(Duration::from_millis(1));
    let message = expect_error(&mut c, "GetRecords", json!({"ShardIterator": it}), "ExpiredIteratorException");
    assert!(message.contains("expired"), "{message}");
    // The iterator GetRecords handed out is fresh, and survives a restart.
    let next = read["NextShardIterator"].as_str().unwrap().to_string();
    server.stop();
    drop(c);
    let server = Kinesis::start_with(dir.path(), clock.clone(), |c| c);
    let mut c = Client::connect(server.addr, false);
    ok(&mut c, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": "dHdv"}));
    let read = ok(&mut c, "GetRecords", json!({"ShardIterator": next}));
    assert_eq!(read["Records"].as_array().unwrap().len(), 1);
    assert_eq!(read["Records"][0]["Data"], "dHdv");
    assert_eq!(read["Records"][0]["SequenceNumber"], "2");
    // A stream deleted and created again: the old iterator names nothing.
    let next = read["NextShardIterator"].as_str().unwrap().to_string();
    ok(&mut c, "DeleteStream", json!({"StreamName": "s"}));
    ok(&mut c, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}));
    expect_error(&mut c, "GetRecords", json!({"ShardIterator": next}), "ResourceNotFoundException");
    // Page tokens expire too.
    for name in ["a", "b"] {
        ok(&mut c, "CreateStream", json!({"StreamName": name, "ShardCount": 1}));
    }
    let page = ok(&mut c, "ListStreams", json!({"Limit": 1}));
    clock.advance(Duration::from_secs(301));
    expect_error(&mut c, "ListStreams", json!({"NextToken": page["NextToken"]}), "ExpiredNextTokenException");
    server.stop();
}

/// A CBOR text string or map key.
fn text(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 24);
    out.push(0x60 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

#[test]
fn cbor_requests_as_the_java_sdk_sends_them_get_cbor_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kinesis::start(dir.path());
    let mut c = Client::connect(server.addr, false);
    const CBOR: &str = "application/x-amz-cbor-1.1";
    // CreateStream as Jackson writes it: an indefinite-length map.
    let mut create = vec![0xbf];
    text(&mut create, "StreamName");
    text(&mut create, "java");
    text(&mut create, "ShardCount");
    create.push(0x01);
    create.push(0xff);
    let a = raw(&mut c, "CreateStream", CBOR, create);
    assert_eq!(a.status, 200, "{:?}", cbor::decode(&a.body));
    assert_eq!(a.header("content-type").as_deref(), Some(CBOR));
    // PutRecord with the data as a byte string (bytes that are not UTF-8).
    let mut put = vec![0xa3];
    text(&mut put, "StreamName");
    text(&mut put, "java");
    text(&mut put, "PartitionKey");
    text(&mut put, "k");
    text(&mut put, "Data");
    put.extend_from_slice(&[0x43, 0xff, 0x00, 0xfe]);
    let a = raw(&mut c, "PutRecord", CBOR, put);
    assert_eq!(a.status, 200);
    let answer = cbor::decode(&a.body).unwrap();
    assert_eq!(answer["ShardId"], "shardId-000000000000");
    // GetShardIterator AT_TIMESTAMP with a tag-1 timestamp in milliseconds.
    let mut get = vec![0xa4];
    text(&mut get, "StreamName");
    text(&mut get, "java");
    text(&mut get, "ShardId");
    text(&mut get, "shardId-000000000000");
    text(&mut get, "ShardIteratorType");
    text(&mut get, "AT_TIMESTAMP");
    text(&mut get, "Timestamp");
    get.extend_from_slice(&[0xc1, 0x1b]);
    get.extend_from_slice(&(T0 - 1000).to_be_bytes());
    let a = raw(&mut c, "GetShardIterator", CBOR, get);
    assert_eq!(a.status, 200, "{:?}", cbor::decode(&a.body));
    let it = cbor::decode(&a.body).unwrap()["ShardIterator"].as_str().unwrap().to_string();
    let mut records = vec![0xa1];
    text(&mut records, "ShardIterator");
    records.push(0x78);
    records.push(it.len() as u8);
    records.extend_from_slice(it.as_bytes());
    let a = raw(&mut c, "GetRecords", CBOR, records);
    assert_eq!(a.status, 200);
    // The data comes back as a byte string, the arrival time as tag 1 over milliseconds.
    assert!(a.body.windows(4).any(|w| w == [0x43, 0xff, 0x00, 0xfe]), "Data is a CBOR byte string");
    let mut stamp = vec![0xc1, 0x1b];
    stamp.extend_from_slice(&T0.to_be_bytes());
    assert!(a.body.windows(stamp.len()).any(|w| w == stamp), "the timestamp is tag 1 over integer milliseconds");
    let answer = cbor::decode(&a.body).unwrap();
    assert_eq!(answer["Records"][0]["Data"], "/wD+");
    assert_eq!(answer["Records"][0]["ApproximateArrivalTimestamp"], json!(T0 as f64 / 1000.0));
    // Errors in CBOR: a CBOR map with __type and message.
    let mut missing = vec![0xa1];
    text(&mut missing, "StreamName");
    text(&mut missing, "nope");
    let a = raw(&mut c, "DescribeStream", CBOR, missing);
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type").as_deref(), Some(CBOR));
    assert_eq!(cbor::decode(&a.body).unwrap()["__type"], "ResourceNotFoundException");
    // Malformed CBOR of every kind is a SerializationException, the connection stays.
    for bad in [
        &[0xbf, 0x61][..],
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x82, 0x01],
        &[0xa1, 0x01, 0x02],
        &[0x01],
    ] {
        let a = raw(&mut c, "DescribeStream", CBOR, bad.to_vec());
        assert_eq!(cbor::decode(&a.body).unwrap()["__type"], "SerializationException", "{bad:?}");
    }
    let deep: Vec<u8> = std::iter::repeat_n(0x81u8, 10_000).chain([0x00]).collect();
    let a = raw(&mut c, "DescribeStream", CBOR, deep);
    assert_eq!(cbor::decode(&a.body).unwrap()["__type"], "SerializationException");
    assert_eq!(ok(&mut c, "ListStreams", json!({}))["StreamNames"], json!(["java"]));
    server.stop();
}

/// Opens SubscribeToShard and returns the messages as they come, until `until` says stop.
fn subscribe(addr: SocketAddr, h2: bool, body: Value, mut until: impl FnMut(&Message) -> bool) -> (u16, Vec<Message>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = TokioIo::new(stream);
        let req = Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Kinesis_20131202.SubscribeToShard");
        let req = if h2 { req } else { req.header("host", addr.to_string()) };
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let response = if h2 {
            let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        };
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            return (status, vec![Message { headers: Vec::new(), payload: body.to_vec() }]);
        }
        assert_eq!(response.headers()["content-type"], "application/vnd.amazon.eventstream");
        let mut body = response.into_body();
        let (mut buf, mut messages) = (Vec::new(), Vec::new());
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), body.frame()).await.expect("an event in time");
            let Some(frame) = frame else { return (status, messages) };
            if let Ok(data) = frame.unwrap().into_data() {
                buf.extend_from_slice(&data);
            }
            while let Some((message, used)) = eventstream::decode(&buf).unwrap() {
                buf.drain(..used);
                let stop = until(&message);
                messages.push(message);
                if stop {
                    return (status, messages);
                }
            }
        }
    })
}

fn payload(m: &Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap()
}

#[test]
fn subscribe_to_shard_streams_events_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kinesis::start(dir.path());
    let mut c = Client::connect(server.addr, false);
    ok(&mut c, "CreateStream", json!({"StreamName": "s", "ShardCount": 1}));
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    let consumer = ok(&mut c, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": "app"}));
    let consumer_arn = consumer["Consumer"]["ConsumerARN"].as_str().unwrap().to_string();
    let body = |kind: &str| json!({"ConsumerARN": consumer_arn, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": kind}});
    // CREATING: refused before the stream starts, as an ordinary error.
    let (status, messages) = subscribe(server.addr, false, body("TRIM_HORIZON"), |_| true);
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_slice::<Value>(&messages[0].payload).unwrap()["__type"], "ResourceInUseException");
    server.clock.advance(Duration::from_secs(1));
    for i in 0..3 {
        ok(&mut c, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": format!("cjA{i}")}));
    }
    for (h2, first) in [(false, true), (true, false)] {
        // Over HTTP/1.1 (chunked), then HTTP/2 (five seconds later: a consumer's shard is
        // its own for five seconds after a subscription).
        if !first {
            server.clock.advance(Duration::from_secs(5));
        }
        let (status, messages) = subscribe(server.addr, h2, body("TRIM_HORIZON"), |m| {
            m.header(":event-type") == Some("SubscribeToShardEvent")
                && !payload(m)["Records"].as_array().unwrap().is_empty()
        });
        assert_eq!(status, 200);
        assert_eq!(messages[0].header(":event-type"), Some("initial-response"));
        assert_eq!(messages[0].header(":message-type"), Some("event"));
        let last = payload(messages.last().unwrap());
        let data: Vec<&str> = last["Records"].as_array().unwrap().iter().map(|r| r["Data"].as_str().unwrap()).collect();
        assert_eq!(data, ["cjA0", "cjA1", "cjA2"]);
        assert_eq!(last["ContinuationSequenceNumber"], "3");
        assert_eq!(last["MillisBehindLatest"], 0);
    }
    // Pushed as they come: the subscription waits on the shard, a put from another
    // connection arrives; a split ends it with the children.
    server.clock.advance(Duration::from_secs(5));
    let addr = server.addr;
    let engine = Arc::clone(&server.engine);
    let mut puts = 0;
    let (_, messages) = subscribe(addr, true, body("LATEST"), |m| {
        if m.header(":event-type") == Some("initial-response") {
            engine.stream("s").unwrap().put(b"k", b"late").unwrap();
            puts += 1;
            return false;
        }
        let p = payload(m);
        if p["Records"].as_array().is_some_and(|r| !r.is_empty()) {
            engine.split_shard("s", 0, None).unwrap();
        }
        p.get("ChildShards").is_some()
    });
    assert_eq!(puts, 1);
    let records: Vec<Value> =
        messages.iter().skip(1).flat_map(|m| payload(m)["Records"].as_array().unwrap().clone()).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["Data"], "bGF0ZQ==");
    let end = payload(messages.last().unwrap());
    let children: Vec<&str> =
        end["ChildShards"].as_array().unwrap().iter().map(|c| c["ShardId"].as_str().unwrap()).collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    // A subscription taken over ends with an exception message.
    server.clock.advance(Duration::from_secs(5));
    let child_body =
        json!({"ConsumerARN": consumer_arn, "ShardId": "shardId-000000000001", "StartingPosition": {"Type": "LATEST"}});
    let engine = Arc::clone(&server.engine);
    let clock = Arc::clone(&server.clock);
    let (_, messages) = subscribe(addr, false, child_body.clone(), |m| {
        if m.header(":event-type") == Some("initial-response") {
            clock.advance(Duration::from_secs(5));
            let s = engine.stream("s").unwrap();
            let _taken = s.subscribe("app", 1, weir::stream::StartingPosition::Latest).unwrap();
            // Into shard 1's range, to wake the subscription waiting on it.
            let wake = weir::stream::PutRecord { partition_key: b"k", data: b"wake", explicit_hash_key: Some(0) };
            s.put_batch(&[wake]).unwrap();
        }
        m.header(":message-type") == Some("exception")
    });
    let last = messages.last().unwrap();
    assert_eq!(last.header(":exception-type"), Some("ResourceInUseException"));
    server.stop();
}
