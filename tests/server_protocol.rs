//! The SQS wire over real HTTP: both protocols, every error code the server can produce, the
//! edges (oversize, malformed, unknown), HTTP/2 cleartext, metrics and health, graceful stop.

mod server_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::{Answer, Client, TestServer};

fn create(c: &mut Client, name: &str, attributes: Value) -> String {
    let a = c.json("CreateQueue", json!({"QueueName": name, "Attributes": attributes}));
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()["QueueUrl"].as_str().unwrap().to_string()
}

/// Asserts an SQS JSON error: status, `__type` shape and the legacy code header.
fn assert_json_error(a: &Answer, status: u16, shape: &str, legacy: &str) {
    assert_eq!(a.status, status, "{shape}: {}", a.text());
    assert_eq!(a.shape(), shape, "{}", a.text());
    assert_eq!(a.header("x-amzn-query-error").as_deref(), Some(format!("{legacy};Sender").as_str()));
    assert!(a.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn a_message_goes_round_the_json_protocol() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "jobs", json!({"VisibilityTimeout": "30"}));
    assert_eq!(url, format!("http://{}/000000000000/jobs", server.addr));
    let sent = c.json(
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "derp",
               "MessageAttributes": {"SOME_Valid.attribute-Name": {"DataType": "Number", "StringValue": "1493147359900"}}}),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    let sent = sent.json();
    assert_eq!(sent["MD5OfMessageBody"], "58fd9edd83341c29f1aebba81c31e257");
    assert_eq!(sent["MD5OfMessageAttributes"], "36655e7e9d7c0e8479fa3f3f42247ae7");
    let got = c.json(
        "ReceiveMessage",
        json!({"QueueUrl": url, "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]}),
    );
    let m = &got.json()["Messages"][0];
    assert_eq!(m["Body"], "derp");
    assert_eq!(m["MessageId"], sent["MessageId"]);
    assert_eq!(m["MD5OfBody"], "58fd9edd83341c29f1aebba81c31e257");
    assert_eq!(m["MD5OfMessageAttributes"], "36655e7e9d7c0e8479fa3f3f42247ae7");
    assert_eq!(m["Attributes"]["ApproximateReceiveCount"], "1");
    assert!(m["Attributes"]["SentTimestamp"].as_str().unwrap().parse::<u64>().is_ok());
    let handle = m["ReceiptHandle"].as_str().unwrap();
    let deleted = c.json("DeleteMessage", json!({"QueueUrl": url, "ReceiptHandle": handle}));
    assert_eq!((deleted.status, deleted.text()), (200, "{}".to_string()));
    let empty = c.json("ReceiveMessage", json!({"QueueUrl": url}));
    assert_eq!(empty.json(), json!({}));
}

#[test]
fn the_query_protocol_answers_in_xml_and_takes_the_queue_from_the_path() {
    let server = TestServer::start();
    let mut c = server.client();
    let a = c.query(
        "/",
        &[
            ("Action", "CreateQueue"),
            ("Version", "2012-11-05"),
            ("QueueName", "q1"),
            ("Attribute.1.Name", "DelaySeconds"),
            ("Attribute.1.Value", "0"),
        ],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let xml = a.text();
    assert!(xml.contains("<CreateQueueResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">"), "{xml}");
    assert!(
        xml.contains(&format!(
            "<CreateQueueResult><QueueUrl>http://{}/000000000000/q1</QueueUrl></CreateQueueResult>",
            server.addr
        )),
        "{xml}"
    );
    assert!(xml.contains("<ResponseMetadata><RequestId>"), "{xml}");
    assert_eq!(a.header("content-type").as_deref(), Some("text/xml"));
    // Older SDKs POST to the queue's URL path instead of passing QueueUrl.
    let sent = c.query(
        "/000000000000/q1",
        &[
            ("Action", "SendMessage"),
            ("MessageBody", "a & <b>"),
            ("MessageAttribute.1.Name", "n"),
            ("MessageAttribute.1.Value.DataType", "Number.int"),
            ("MessageAttribute.1.Value.StringValue", "7"),
        ],
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert!(sent.text().contains("<MD5OfMessageBody>"), "{}", sent.text());
    let got = c.query(
        "/000000000000/q1",
        &[("Action", "ReceiveMessage"), ("MessageAttributeName.1", "All"), ("AttributeName.1", "All")],
    );
    let xml = got.text();
    assert!(xml.contains("<Body>a &amp; &lt;b&gt;</Body>"), "{xml}");
    assert!(xml.contains("<MessageAttribute><Name>n</Name><Value>"), "{xml}");
    assert!(xml.contains("<Attribute><Name>ApproximateReceiveCount</Name><Value>1</Value></Attribute>"), "{xml}");
    let listed = c.query("/", &[("Action", "ListQueues")]);
    assert!(
        listed.text().contains(&format!(
            "<ListQueuesResult><QueueUrl>http://{}/000000000000/q1</QueueUrl></ListQueuesResult>",
            server.addr
        )),
        "{}",
        listed.text()
    );
    let attrs =
        c.query("/", &[("Action", "GetQueueAttributes"), ("QueueUrl", "q1"), ("AttributeName.1", "DelaySeconds")]);
    assert!(
        attrs.text().contains("<Attribute><Name>DelaySeconds</Name><Value>0</Value></Attribute>"),
        "{}",
        attrs.text()
    );
    let deleted = c.query("/", &[("Action", "DeleteQueue"), ("QueueUrl", "q1")]);
    assert!(deleted.text().contains("<DeleteQueueResponse"), "{}", deleted.text());
    assert!(!deleted.text().contains("DeleteQueueResult"), "operations without output have no Result element");
}

#[test]
fn query_errors_are_error_responses() {
    let server = TestServer::start();
    let mut c = server.client();
    let a = c.query("/", &[("Action", "GetQueueUrl"), ("QueueName", "missing")]);
    assert_eq!(a.status, 400);
    let xml = a.text();
    assert!(xml.contains("<ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>"), "{xml}");
    assert!(xml.contains("<RequestId>"), "{xml}");
    for (form, code) in [
        (&[("Action", "Nope")][..], "InvalidAction"),
        (&[("QueueName", "x")][..], "MissingAction"),
        (&[("Action", "SendMessage"), ("QueueUrl", "x"), ("MessageAttribute.x.Name", "y")][..], "MalformedQueryString"),
    ] {
        let a = c.query("/", form);
        assert_eq!(a.status, 400, "{}", a.text());
        assert!(a.text().contains(&format!("<Code>{code}</Code>")), "{code}: {}", a.text());
    }
    // Percent-escapes that are not UTF-8, and an XML body where a form belongs.
    let a = c.form("/", b"Action=ListQueues&QueueNamePrefix=%FF%FE".to_vec());
    assert!(a.text().contains("<Code>MalformedQueryString</Code>"), "{}", a.text());
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("http://{}/", server.addr))
        .header("host", server.addr.to_string())
        .header("content-type", "text/xml")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"<CreateQueue><QueueName>x</QueueName>")))
        .unwrap();
    let a = c.send(req);
    assert_eq!(a.status, 400);
    assert!(a.text().contains("<Code>MalformedQueryString</Code>"), "{}", a.text());
}

#[test]
fn every_error_code_has_its_shape_status_and_legacy_code() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "errs", json!({}));
    let fifo = create(&mut c, "errs.fifo", json!({"FifoQueue": "true"}));
    let entry = |id: &str| json!({"Id": id, "MessageBody": "x"});
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "GetQueueUrl",
            json!({"QueueName": "nope"}),
            400,
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        (
            "SendMessage",
            json!({"QueueUrl": "http://h/000000000000/nope", "MessageBody": "x"}),
            400,
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        (
            "CreateQueue",
            json!({"QueueName": "errs", "Attributes": {"DelaySeconds": "5"}}),
            400,
            "QueueNameExists",
            "QueueAlreadyExists",
        ),
        (
            "GetQueueAttributes",
            json!({"QueueUrl": url, "AttributeNames": ["Bogus"]}),
            400,
            "InvalidAttributeName",
            "InvalidAttributeName",
        ),
        (
            "SetQueueAttributes",
            json!({"QueueUrl": url, "Attributes": {"QueueArn": "x"}}),
            400,
            "InvalidAttributeName",
            "InvalidAttributeName",
        ),
        (
            "CreateQueue",
            json!({"QueueName": "e2", "Attributes": {"DelaySeconds": "901"}}),
            400,
            "InvalidAttributeValue",
            "InvalidAttributeValue",
        ),
        (
            "ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 11}),
            400,
            "InvalidParameterValue",
            "InvalidParameterValue",
        ),
        (
            "ReceiveMessage",
            json!({"QueueUrl": url, "WaitTimeSeconds": 21}),
            400,
            "InvalidParameterValue",
            "InvalidParameterValue",
        ),
        ("CreateQueue", json!({"QueueName": "bad/name"}), 400, "InvalidParameterValue", "InvalidParameterValue"),
        (
            "SendMessage",
            json!({"QueueUrl": url, "MessageBody": "x", "DelaySeconds": 901}),
            400,
            "InvalidParameterValue",
            "InvalidParameterValue",
        ),
        ("SendMessage", json!({"QueueUrl": url}), 400, "MissingParameter", "MissingParameter"),
        ("SendMessage", json!({"MessageBody": "x"}), 400, "MissingParameter", "MissingParameter"),
        ("SendMessage", json!({"QueueUrl": fifo, "MessageBody": "x"}), 400, "MissingParameter", "MissingParameter"),
        (
            "SendMessage",
            json!({"QueueUrl": "http://h/a/b/c", "MessageBody": "x"}),
            404,
            "InvalidAddress",
            "InvalidAddress",
        ),
        (
            "DeleteMessage",
            json!({"QueueUrl": url, "ReceiptHandle": "forged"}),
            404,
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
        ),
        (
            "ChangeMessageVisibility",
            json!({"QueueUrl": url, "ReceiptHandle": "forged", "VisibilityTimeout": 1}),
            404,
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
        ),
        (
            "SendMessage",
            json!({"QueueUrl": url, "MessageBody": "bad \u{1} char"}),
            400,
            "InvalidMessageContents",
            "InvalidMessageContents",
        ),
        (
            "SendMessageBatch",
            json!({"QueueUrl": url, "Entries": [entry("a"), entry("a")]}),
            400,
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        ),
        (
            "DeleteMessageBatch",
            json!({"QueueUrl": url, "Entries": []}),
            400,
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
        ),
        (
            "SendMessageBatch",
            json!({"QueueUrl": url, "Entries": (0..11).map(|i| entry(&format!("e{i}"))).collect::<Vec<_>>()}),
            400,
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        ),
        (
            "SendMessageBatch",
            json!({"QueueUrl": url, "Entries": (0..10).map(|i| json!({"Id": format!("e{i}"), "MessageBody": "x".repeat(110_000)})).collect::<Vec<_>>()}),
            400,
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
        ),
        (
            "ChangeMessageVisibilityBatch",
            json!({"QueueUrl": url, "Entries": [{"Id": "no spaces", "ReceiptHandle": "h", "VisibilityTimeout": 1}]}),
            400,
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
        ),
        (
            "CancelMessageMoveTask",
            json!({"TaskHandle": "nope"}),
            404,
            "ResourceNotFoundException",
            "ResourceNotFoundException",
        ),
        (
            "ListMessageMoveTasks",
            json!({"SourceArn": "arn:aws:sqs:us-east-1:000000000000:nope"}),
            404,
            "ResourceNotFoundException",
            "ResourceNotFoundException",
        ),
    ];
    for (op, body, status, shape, legacy) in cases {
        let a = c.json(op, body.clone());
        assert_json_error(&a, status, shape, legacy);
    }
    // Not an SQS operation, and a body that is not JSON.
    let a = c.json_raw("AmazonSQS.Nope", b"{}".to_vec());
    assert_json_error(&a, 400, "UnknownOperationException", "InvalidAction");
    let a = c.json_raw("Other_2020.ListQueues", b"{}".to_vec());
    assert_json_error(&a, 400, "UnknownOperationException", "InvalidAction");
    for bad in [&b"{not json"[..], b"[1,2]", b"\"s\"", b"{\"QueueName\": 1"] {
        let a = c.json_raw("AmazonSQS.CreateQueue", bad.to_vec());
        assert_json_error(&a, 400, "SerializationException", "MalformedQueryString");
    }
    // Wrong JSON types are parameter errors, never panics.
    let a = c.json("CreateQueue", json!({"QueueName": 5}));
    assert_json_error(&a, 400, "InvalidParameterValue", "InvalidParameterValue");
    let a = c.json("ReceiveMessage", json!({"QueueUrl": url, "MaxNumberOfMessages": "3"}));
    assert_json_error(&a, 400, "InvalidParameterValue", "InvalidParameterValue");
    // A visibility change of a message whose visibility timeout already ran out.
    c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "x"}));
    let got = c.json("ReceiveMessage", json!({"QueueUrl": url, "VisibilityTimeout": 0})).json();
    let handle = got["Messages"][0]["ReceiptHandle"].clone();
    let a =
        c.json("ChangeMessageVisibility", json!({"QueueUrl": url, "ReceiptHandle": handle, "VisibilityTimeout": 5}));
    assert_json_error(&a, 400, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight");
    // One purge a minute.
    assert_eq!(c.json("PurgeQueue", json!({"QueueUrl": url})).status, 200);
    let a = c.json("PurgeQueue", json!({"QueueUrl": url}));
    assert_json_error(&a, 403, "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress");
    // A 51st tag.
    let fifty: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(c.json("TagQueue", json!({"QueueUrl": url, "Tags": fifty})).status, 200);
    let a = c.json("TagQueue", json!({"QueueUrl": url, "Tags": {"one-more": "v"}}));
    assert_json_error(&a, 403, "OverLimit", "OverLimit");
    // A second move task of a source while the first runs (one message a second).
    let dlq = create(&mut c, "errs-dlq", json!({}));
    let arn = |name: &str| format!("arn:aws:sqs:us-east-1:000000000000:{name}");
    let policy = json!({"deadLetterTargetArn": arn("errs-dlq"), "maxReceiveCount": 1}).to_string();
    create(&mut c, "errs-src", json!({"RedrivePolicy": policy}));
    for i in 0..5 {
        c.json("SendMessage", json!({"QueueUrl": dlq, "MessageBody": format!("dead {i}")}));
    }
    let start = json!({"SourceArn": arn("errs-dlq"), "DestinationArn": arn("errs"), "MaxNumberOfMessagesPerSecond": 1});
    assert_eq!(c.json("StartMessageMoveTask", start.clone()).status, 200);
    let a = c.json("StartMessageMoveTask", start);
    assert_json_error(&a, 400, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation");
    // ServiceUnavailable and InternalFailure need a failing engine: the error table's unit
    // tests cover their shapes.
}

#[test]
fn batch_entries_fail_on_their_own() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "b", json!({}));
    let a = c.json(
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": [
            {"Id": "ok", "MessageBody": "fine"},
            {"Id": "empty", "MessageBody": ""},
            {"Id": "delay", "MessageBody": "x", "DelaySeconds": 1000},
        ]}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["Successful"].as_array().unwrap().len(), 1);
    assert_eq!(v["Successful"][0]["Id"], "ok");
    let failed = v["Failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|f| f["SenderFault"] == true));
    let got = c.json("ReceiveMessage", json!({"QueueUrl": url, "MaxNumberOfMessages": 10}));
    let handle = got.json()["Messages"][0]["ReceiptHandle"].as_str().unwrap().to_string();
    let a = c.json(
        "DeleteMessageBatch",
        json!({"QueueUrl": url, "Entries": [{"Id": "a", "ReceiptHandle": handle}, {"Id": "b", "ReceiptHandle": "forged"}]}),
    );
    let v = a.json();
    assert_eq!(v["Successful"], json!([{"Id": "a"}]));
    assert_eq!(v["Failed"][0]["Id"], "b");
    assert_eq!(v["Failed"][0]["Code"], "ReceiptHandleIsInvalid");
}

#[test]
fn a_body_over_the_limit_gets_an_error_and_the_connection_stays_usable() {
    let server = TestServer::start_with(|c| weir::server::ServerConfig { max_body_bytes: 64 << 10, ..c });
    let mut c = server.client();
    let url = create(&mut c, "big", json!({}));
    let huge = json!({"QueueUrl": url, "MessageBody": "x".repeat(200 << 10)});
    let a = c.json("SendMessage", huge);
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.header("x-amzn-query-error").as_deref(), Some("InvalidParameterValue;Sender"));
    assert!(a.json()["message"].as_str().unwrap().contains("over this endpoint's limit"), "{}", a.text());
    // Same connection, next request.
    let ok = c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "small"}));
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A message over the queue's maximum is SQS's own error.
    let small_max = create(&mut c, "smallmax", json!({"MaximumMessageSize": "1024"}));
    let a = c.json("SendMessage", json!({"QueueUrl": small_max, "MessageBody": "y".repeat(2000)}));
    assert_eq!(a.status, 400);
    assert!(a.json()["message"].as_str().unwrap().contains("Message must be shorter than 1024 bytes"), "{}", a.text());
}

#[test]
fn http2_cleartext_serves_the_same_api() {
    let server = TestServer::start();
    let mut c = server.h2_client();
    let a = c.json("CreateQueue", json!({"QueueName": "h2"}));
    assert_eq!(a.status, 200, "{}", a.text());
    let url = a.json()["QueueUrl"].as_str().unwrap().to_string();
    assert!(url.ends_with("/000000000000/h2"), "{url}");
    for i in 0..20 {
        let a = c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": format!("m{i}")}));
        assert_eq!(a.status, 200);
    }
    let a = c.json("GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}));
    assert_eq!(a.json()["Attributes"]["ApproximateNumberOfMessages"], "20");
    let a = c.json("Nope", json!({}));
    assert_eq!(a.status, 400);
}

#[test]
fn list_queues_pages_with_tokens() {
    let server = TestServer::start();
    let mut c = server.client();
    for i in 0..5 {
        create(&mut c, &format!("page-{i}"), json!({}));
    }
    create(&mut c, "other", json!({}));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"QueueNamePrefix": "page-", "MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let v = c.json("ListQueues", body).json();
        for u in v["QueueUrls"].as_array().unwrap() {
            seen.push(u.as_str().unwrap().rsplit('/').next().unwrap().to_string());
        }
        match v["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
    let a = c.json("ListQueues", json!({"NextToken": "!!not a token"}));
    assert_eq!(a.status, 400);
    let a = c.json("ListQueues", json!({"MaxResults": 0}));
    assert_eq!(a.status, 400);
}

#[test]
fn dead_letter_sources_and_redrive_through_a_move_task() {
    let server = TestServer::start();
    let mut c = server.client();
    let dlq = create(&mut c, "dlq", json!({}));
    let policy =
        json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 1}).to_string();
    let src = create(&mut c, "src", json!({"RedrivePolicy": policy, "VisibilityTimeout": "0"}));
    let a = c.json("ListDeadLetterSourceQueues", json!({"QueueUrl": dlq}));
    assert_eq!(a.json()["queueUrls"], json!([src]));
    c.json("SendMessage", json!({"QueueUrl": src, "MessageBody": "poison"}));
    c.json("ReceiveMessage", json!({"QueueUrl": src}));
    // The second receive moves it (received once already, max 1).
    let again = c.json("ReceiveMessage", json!({"QueueUrl": src}));
    assert_eq!(again.json(), json!({}));
    let attrs =
        c.json("GetQueueAttributes", json!({"QueueUrl": dlq, "AttributeNames": ["ApproximateNumberOfMessages"]}));
    assert_eq!(attrs.json()["Attributes"]["ApproximateNumberOfMessages"], "1");
    let a = c.json("StartMessageMoveTask", json!({"SourceArn": "arn:aws:sqs:us-east-1:000000000000:src"}));
    assert_eq!(a.status, 400, "only a dead-letter queue can be a source: {}", a.text());
    let a = c.json("StartMessageMoveTask", json!({"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}));
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.json()["TaskHandle"].as_str().is_some_and(|h| !h.is_empty()));
    // The engine moves it on its own thread; a long poll is woken when it arrives.
    let back = c.json("ReceiveMessage", json!({"QueueUrl": src, "WaitTimeSeconds": 10}));
    assert_eq!(back.json()["Messages"][0]["Body"], "poison");
}

#[test]
fn a_long_poll_wakes_for_a_send_from_another_connection() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "lp", json!({}));
    let addr = server.addr;
    let url2 = url.clone();
    let poller = std::thread::spawn(move || {
        let mut c = Client::connect(addr, false);
        let started = Instant::now();
        let a = c.json("ReceiveMessage", json!({"QueueUrl": url2, "WaitTimeSeconds": 20}));
        (a.json(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "wake"}));
    let (got, waited) = poller.join().unwrap();
    assert_eq!(got["Messages"][0]["Body"], "wake");
    assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
}

#[test]
fn a_long_poll_wakes_when_a_delay_or_a_visibility_timeout_ends() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "timers", json!({}));
    c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "later", "DelaySeconds": 1}));
    let started = Instant::now();
    let got = c.json("ReceiveMessage", json!({"QueueUrl": url, "WaitTimeSeconds": 10, "VisibilityTimeout": 1}));
    assert_eq!(got.json()["Messages"][0]["Body"], "later");
    assert!(started.elapsed() < Duration::from_secs(4), "delay: woken after {:?}", started.elapsed());
    // Received with a 1 s visibility timeout: it comes back on its own.
    let started = Instant::now();
    let got = c.json("ReceiveMessage", json!({"QueueUrl": url, "WaitTimeSeconds": 10}));
    assert_eq!(got.json()["Messages"][0]["Attributes"], Value::Null);
    assert_eq!(got.json()["Messages"][0]["Body"], "later");
    assert!(started.elapsed() < Duration::from_secs(4), "visibility: woken after {:?}", started.elapsed());
}

#[test]
fn stopping_answers_waiting_long_polls_empty() {
    let mut server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "stop", json!({}));
    let addr = server.addr;
    let pollers: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, false);
                c.json("ReceiveMessage", json!({"QueueUrl": url, "WaitTimeSeconds": 20}))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.stop().unwrap();
    for p in pollers {
        let a = p.join().unwrap();
        assert_eq!((a.status, a.json()), (200, json!({})));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "stop took {:?}", started.elapsed());
}

#[test]
fn health_and_metrics() {
    let server = TestServer::start();
    let mut c = server.client();
    assert_eq!(c.get("/health").status, 200);
    let url = create(&mut c, "m", json!({}));
    c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "x"}));
    c.json("SendMessage", json!({"QueueUrl": url, "MessageBody": "y", "DelaySeconds": 60}));
    c.json("GetQueueUrl", json!({"QueueName": "nope"}));
    server.engine.create_stream("clicks", 2, None).unwrap();
    server.engine.stream("clicks").unwrap().put(b"k", b"hello").unwrap();
    let m = c.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    for line in [
        "weir_queue_messages{queue=\"m\",state=\"visible\"} 1",
        "weir_queue_messages{queue=\"m\",state=\"delayed\"} 1",
        "weir_queue_messages{queue=\"m\",state=\"in_flight\"} 0",
        "weir_requests_total{service=\"sqs\",operation=\"SendMessage\"} 2",
        "weir_request_errors_total{service=\"sqs\",operation=\"GetQueueUrl\"} 1",
        "weir_request_duration_seconds_count{service=\"sqs\",operation=\"CreateQueue\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("weir_queue_oldest_message_age_seconds{queue=\"m\"}"));
    let written: u64 = ["0", "1"]
        .iter()
        .filter_map(|shard| {
            let prefix = format!("weir_stream_shard_written_records_total{{stream=\"clicks\",shard=\"{shard}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| v.parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(written, 1, "{text}");
    assert!(text.contains("weir_stream_shard_write_bytes_per_second{stream=\"clicks\""));
}

/// Hostile and malformed input to every operation, in both protocols: an answer below 500,
/// never a panic or a dropped connection, and the connection still serves the next request.
#[test]
fn hostile_input_to_every_operation_gets_a_client_error() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "target", json!({}));
    let operations = [
        "AddPermission",
        "CancelMessageMoveTask",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "CreateQueue",
        "DeleteMessage",
        "DeleteMessageBatch",
        "DeleteQueue",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "ListMessageMoveTasks",
        "ListQueueTags",
        "ListQueues",
        "PurgeQueue",
        "ReceiveMessage",
        "RemovePermission",
        "SendMessage",
        "SendMessageBatch",
        "SetQueueAttributes",
        "StartMessageMoveTask",
        "TagQueue",
        "UntagQueue",
    ];
    let long = "x".repeat(100_000);
    let hostile = [
        json!({"QueueUrl": 5}),
        json!({"QueueUrl": long, "QueueName": long, "SourceArn": long, "TaskHandle": long, "Label": long}),
        json!({"QueueUrl": "\u{0}\u{FFFF}", "QueueName": "../../etc", "SourceArn": "arn:aws:sqs:::"}),
        json!({"QueueUrl": url, "Entries": "x", "Attributes": [], "Tags": {"k": 5}, "TagKeys": {}}),
        json!({"QueueUrl": url, "Entries": [1, null, {"Id": 5}], "MessageAttributes": {"a": 1}}),
        json!({"QueueUrl": url, "MaxNumberOfMessages": 1e300, "VisibilityTimeout": -1, "WaitTimeSeconds": 2.5, "MaxResults": "x"}),
        json!({"QueueUrl": url, "MessageBody": long, "ReceiptHandle": long, "VisibilityTimeout": 99_999_999_999_i64}),
        json!({"QueueUrl": url, "AttributeNames": [1, 2], "MessageAttributeNames": "All", "AWSAccountIds": [long], "Actions": [""]}),
        json!({"QueueUrl": url, "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "Binary", "BinaryValue": "%%%"}}}),
        json!({"QueueName": "ok", "Attributes": {"RedrivePolicy": "{\"deadLetterTargetArn\":5}", "Policy": "[", "FifoQueue": "maybe"}}),
    ];
    for op in operations {
        for body in &hostile {
            let a = c.json(op, body.clone());
            assert!((400..500).contains(&a.status) || a.status == 200, "{op} {body}: {} {}", a.status, a.text());
            assert!(a.header("x-amzn-query-error").is_some() || a.status == 200, "{op}: {}", a.text());
        }
        for form in [
            format!("Action={op}&QueueUrl=%00&Attribute.1.Name=&Attribute.1.Value=%FF"),
            format!("Action={op}&Entry.99999999999999999999.Id=x&QueueUrl={}", server_support::encode(&url)),
            format!("Action={op}&{}=1", vec!["a"; 50].join(".")),
            format!("Action={op}&QueueUrl={}&MessageBody={}", server_support::encode(&url), "%".repeat(1000)),
        ] {
            let a = c.form("/", form.into_bytes());
            assert!((400..500).contains(&a.status) || a.status == 200, "{op} (query): {} {}", a.status, a.text());
        }
    }
    // Nested too deep for any parser to follow, and bytes that are not text.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let a = c.json_raw("AmazonSQS.SendMessage", deep.into_bytes());
    assert_eq!(a.status, 400);
    let a = c.json_raw("AmazonSQS.SendMessage", vec![0xff, 0xfe, 0x00, 0x01]);
    assert_eq!(a.status, 400);
    // (DeleteQueue took the queue with it along the way.)
    let ok = c.json("ListQueues", json!({}));
    assert_eq!(ok.status, 200, "the connection still serves: {}", ok.text());
}

#[test]
fn a_receive_without_wait_time_waits_as_long_as_the_queue_says() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "waits", json!({"ReceiveMessageWaitTimeSeconds": "1"}));
    let started = Instant::now();
    assert_eq!(c.json("ReceiveMessage", json!({"QueueUrl": url})).json(), json!({}));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(3), "waited {waited:?}");
    // WaitTimeSeconds=0 overrides the queue's wait.
    let started = Instant::now();
    c.json("ReceiveMessage", json!({"QueueUrl": url, "WaitTimeSeconds": 0}));
    assert!(started.elapsed() < Duration::from_millis(500));
}
