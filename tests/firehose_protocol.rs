//! The Firehose wire over real HTTP: answers and errors as Firehose shapes them (`__type`,
//! `message`, status), the edges (malformed bodies, bad base64, sizes at and over the limits,
//! unknown operations, a body over the server's limit), HTTP/2, and deliveries started and
//! stopped with their delivery streams.

mod server_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::{Answer, Client, TestServer};
use weir::text::base64;

fn assert_error(a: &Answer, status: u16, shape: &str) {
    assert_eq!(a.status, status, "{shape}: {}", a.text());
    assert_eq!(a.shape(), shape, "{}", a.text());
    assert!(a.json()["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.text());
    assert_eq!(a.header("content-type").as_deref(), Some("application/x-amz-json-1.1"));
}

fn s3(bucket: &str) -> Value {
    json!({"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": format!("arn:aws:s3:::{bucket}"),
           "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
}

fn create(c: &mut Client, name: &str) {
    let a =
        c.firehose("CreateDeliveryStream", json!({"DeliveryStreamName": name, "S3DestinationConfiguration": s3("b")}));
    assert_eq!(a.status, 200, "{}", a.text());
}

#[test]
fn a_delivery_stream_goes_round_the_wire_and_its_records_reach_the_bucket() {
    let server = TestServer::start();
    let mut c = server.client();
    let a = c.firehose(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "web", "DeliveryStreamType": "DirectPut", "S3DestinationConfiguration": s3("logs")}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), json!({"DeliveryStreamARN": "arn:aws:firehose:us-east-1:000000000000:deliverystream/web"}));
    assert_eq!(a.header("content-type").as_deref(), Some("application/x-amz-json-1.1"));
    let one = c.firehose("PutRecord", json!({"DeliveryStreamName": "web", "Record": {"Data": base64(b"first;")}}));
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["Encrypted"], false);
    let batch = c.firehose(
        "PutRecordBatch",
        json!({"DeliveryStreamName": "web", "Records": [{"Data": base64(b"second;")}, {"Data": ""}, {"Data": base64(b"third")}]}),
    );
    let batch = batch.json();
    assert_eq!(batch["FailedPutCount"], 0);
    let ids: Vec<&str> =
        batch["RequestResponses"].as_array().unwrap().iter().map(|r| r["RecordId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| !id.is_empty() && *id != one.json()["RecordId"]));
    let described = c.firehose("DescribeDeliveryStream", json!({"DeliveryStreamName": "web"})).json();
    let d = &described["DeliveryStreamDescription"];
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(d["VersionId"], "1");
    assert!(d["CreateTimestamp"].as_f64().unwrap() > 1.0e9);
    assert_eq!(d["Destinations"][0]["S3DestinationDescription"]["BucketARN"], "arn:aws:s3:::logs");
    let paged = c.firehose(
        "DescribeDeliveryStream",
        json!({"DeliveryStreamName": "web", "ExclusiveStartDestinationId": "destinationId-000000000001"}),
    );
    assert_eq!(paged.json()["DeliveryStreamDescription"]["Destinations"], json!([]));

    let dir = server.engine.dir().join("buckets/logs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let content = loop {
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        files.sort(); // named by first sequence number
        let content: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
        if content.ends_with(b"third") || Instant::now() > deadline {
            break content;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(String::from_utf8_lossy(&content), "first;second;third");

    let deleted = c.firehose("DeleteDeliveryStream", json!({"DeliveryStreamName": "web"}));
    assert_eq!((deleted.status, deleted.text()), (200, "{}".to_string()));
    assert_error(
        &c.firehose("DescribeDeliveryStream", json!({"DeliveryStreamName": "web"})),
        400,
        "ResourceNotFoundException",
    );
}

#[test]
fn listing_pages_by_name() {
    let server = TestServer::start();
    let mut c = server.client();
    for n in ["c", "a", "b"] {
        create(&mut c, n);
    }
    let all = c.firehose("ListDeliveryStreams", json!({})).json();
    assert_eq!(all, json!({"DeliveryStreamNames": ["a", "b", "c"], "HasMoreDeliveryStreams": false}));
    let page = c.firehose("ListDeliveryStreams", json!({"Limit": 2})).json();
    assert_eq!(page, json!({"DeliveryStreamNames": ["a", "b"], "HasMoreDeliveryStreams": true}));
    let rest = c.firehose("ListDeliveryStreams", json!({"Limit": 2, "ExclusiveStartDeliveryStreamName": "b"})).json();
    assert_eq!(rest, json!({"DeliveryStreamNames": ["c"], "HasMoreDeliveryStreams": false}));
    let kinesis = c.firehose("ListDeliveryStreams", json!({"DeliveryStreamType": "KinesisStreamAsSource"})).json();
    assert_eq!(kinesis["DeliveryStreamNames"], json!([]));
    for bad in
        [json!({"Limit": 0}), json!({"Limit": 10_001}), json!({"Limit": "2"}), json!({"DeliveryStreamType": "Nope"})]
    {
        assert_error(&c.firehose("ListDeliveryStreams", bad), 400, "InvalidArgumentException");
    }
}

#[test]
fn every_error_comes_as_firehose_shapes_it() {
    let server = TestServer::start();
    let mut c = server.client();
    create(&mut c, "s");
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "s", "S3DestinationConfiguration": s3("b")}),
            400,
            "ResourceInUseException",
        ),
        ("CreateDeliveryStream", json!({"S3DestinationConfiguration": s3("b")}), 400, "InvalidArgumentException"),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "a/b", "S3DestinationConfiguration": s3("b")}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "x".repeat(65), "S3DestinationConfiguration": s3("b")}),
            400,
            "InvalidArgumentException",
        ),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n"}), 400, "InvalidArgumentException"),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "DeliveryStreamType": "KinesisStreamAsSource", "S3DestinationConfiguration": s3("b")}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::.."}}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": s3("b"), "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"}}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "HttpEndpointDestinationConfiguration": {"EndpointConfiguration": {"Url": "https://example.com"}, "S3Configuration": s3("b")}}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "HttpEndpointDestinationConfiguration": {"EndpointConfiguration": {"Url": "http://h/"}}}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "HttpEndpointDestinationConfiguration": {"EndpointConfiguration": {"Url": "http://h/"}, "S3Configuration": s3("b"), "RetryOptions": {"DurationInSeconds": 7201}}}),
            400,
            "InvalidArgumentException",
        ),
        (
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": s3("b"), "Tags": (0..51).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect::<Vec<_>>()}),
            400,
            "LimitExceededException",
        ),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "missing"}), 400, "ResourceNotFoundException"),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "s", "Limit": 0}), 400, "InvalidArgumentException"),
        ("DeleteDeliveryStream", json!({"DeliveryStreamName": "missing"}), 400, "ResourceNotFoundException"),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "missing", "Record": {"Data": "eA=="}}),
            400,
            "ResourceNotFoundException",
        ),
        ("PutRecord", json!({"DeliveryStreamName": "s"}), 400, "InvalidArgumentException"),
        ("PutRecord", json!({"DeliveryStreamName": "s", "Record": {}}), 400, "InvalidArgumentException"),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": "not base64!"}}),
            400,
            "SerializationException",
        ),
        ("PutRecord", json!({"DeliveryStreamName": "s", "Record": "x"}), 400, "InvalidArgumentException"),
        ("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": []}), 400, "InvalidArgumentException"),
        (
            "PutRecordBatch",
            json!({"DeliveryStreamName": "s", "Records": vec![json!({"Data": "eA=="}); 501]}),
            400,
            "InvalidArgumentException",
        ),
        (
            "PutRecordBatch",
            json!({"DeliveryStreamName": "missing", "Records": [{"Data": "eA=="}]}),
            400,
            "ResourceNotFoundException",
        ),
        ("NoSuchOperation", json!({}), 400, "UnknownOperationException"),
    ];
    for (op, body, status, shape) in cases {
        let a = c.firehose(op, body.clone());
        assert_error(&a, status, shape);
        assert!(a.text().len() < 2000, "{op}: a short message: {}", a.text());
    }
    // Malformed bodies.
    for body in [&b"{"[..], b"[1,2]", b"\"text\"", b"\xff\xfe"] {
        let a = c.json_raw("Firehose_20150804.PutRecord", body.to_vec());
        assert_error(&a, 400, "SerializationException");
    }
    assert_eq!(
        c.json_raw("Firehose_20150804.PutRecord", b"{".to_vec()).json()["__type"],
        "com.amazon.coral.service#SerializationException"
    );
}

#[test]
fn record_and_batch_sizes_are_checked_at_firehoses_limits() {
    let server = TestServer::start();
    let mut c = server.client();
    create(&mut c, "s");
    let at_limit = base64(&vec![7u8; 1_024_000]);
    let a = c.firehose("PutRecord", json!({"DeliveryStreamName": "s", "Record": {"Data": at_limit}}));
    assert_eq!(a.status, 200, "1,000 KiB is allowed: {}", a.text());
    let over = base64(&vec![7u8; 1_024_001]);
    assert_error(
        &c.firehose("PutRecord", json!({"DeliveryStreamName": "s", "Record": {"Data": over}})),
        400,
        "InvalidArgumentException",
    );
    // 5 records of 1,000 KiB: over the 4 MiB of one batch.
    let big = base64(&vec![1u8; 1_000_000]);
    let five: Vec<Value> = (0..5).map(|_| json!({"Data": big})).collect();
    assert_error(
        &c.firehose("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": five})),
        400,
        "InvalidArgumentException",
    );
    let four: Vec<Value> = (0..4).map(|_| json!({"Data": big})).collect();
    let a = c.firehose("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": four}));
    assert_eq!(a.status, 200, "{}", a.text());
    let most: Vec<Value> = (0..500).map(|i| json!({"Data": base64(format!("{i}").as_bytes())})).collect();
    let a = c.firehose("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": most}));
    assert_eq!(a.json()["RequestResponses"].as_array().unwrap().len(), 500);
    // A body over the server's limit: an error in Firehose's shape, and the connection lives.
    let huge = json!({"DeliveryStreamName": "s", "Record": {"Data": "A".repeat(9 << 20)}});
    let a = c.firehose("PutRecord", huge);
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.shape(), "InvalidArgumentException");
    let a = c.firehose("ListDeliveryStreams", json!({}));
    assert_eq!(a.status, 200, "the connection is still usable");
}

#[test]
fn http2_clients_and_metrics_see_firehose() {
    let server = TestServer::start();
    let mut h2 = server.h2_client();
    let a =
        h2.firehose("CreateDeliveryStream", json!({"DeliveryStreamName": "h2", "S3DestinationConfiguration": s3("b")}));
    assert_eq!(a.status, 200, "{}", a.text());
    let a = h2.firehose("PutRecord", json!({"DeliveryStreamName": "h2", "Record": {"Data": "aGk="}}));
    assert_eq!(a.status, 200, "{}", a.text());
    // SQS still answers its own targets on the same port.
    let q = h2.json("CreateQueue", json!({"QueueName": "q"}));
    assert_eq!(q.status, 200, "{}", q.text());
    let metrics = server.client().get("/metrics").text();
    assert!(metrics.contains("firehose") && metrics.contains("PutRecord"), "{metrics}");
}

#[test]
fn a_delivery_to_an_endpoint_stops_with_its_delivery_stream_and_the_server() {
    // An endpoint that never answers: the delivery waits on it; deleting the delivery stream
    // and stopping the server must not wait for it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
    let mut server = TestServer::start();
    let mut c = server.client();
    let a = c.firehose(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "hung", "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": url},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "S3Configuration": s3("backup"),
        }}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    c.firehose("PutRecord", json!({"DeliveryStreamName": "hung", "Record": {"Data": "aGk="}}));
    let _conn = held.join().unwrap().expect("the delivery connects to the endpoint");
    let a = c.firehose("DeleteDeliveryStream", json!({"DeliveryStreamName": "hung"}));
    assert_eq!(a.status, 200, "{}", a.text());
    let started = Instant::now();
    server.stop().expect("stop");
    assert!(started.elapsed() < Duration::from_secs(10), "the stop waited {:?} for a POST", started.elapsed());
}
