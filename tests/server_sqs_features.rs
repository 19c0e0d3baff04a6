//! The SQS features the engine keeps, over real HTTP in both protocols: every queue attribute
//! round-tripped with its times, tags, permissions, move tasks with a rate, system attributes
//! on receive, custom data types, FIFO receive attempts, SQS's 1 MiB limits, and long polls
//! woken by a send the embedding application makes through the library.

mod server_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::{Client, TestServer};
use weir::queue::SendOptions;

const ACCOUNT: &str = "000000000000";

fn arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
}

fn ok(c: &mut Client, op: &str, body: Value) -> Value {
    let a = c.json(op, body);
    assert_eq!(a.status, 200, "{op}: {}", a.text());
    a.json()
}

fn error(c: &mut Client, op: &str, body: Value) -> (u16, String) {
    let a = c.json(op, body);
    assert_ne!(a.status, 200, "{op} succeeded: {}", a.text());
    (a.status, a.shape())
}

fn create(c: &mut Client, name: &str, attributes: Value) -> String {
    ok(c, "CreateQueue", json!({"QueueName": name, "Attributes": attributes}))["QueueUrl"].as_str().unwrap().to_string()
}

fn attributes(c: &mut Client, url: &str) -> Value {
    ok(c, "GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["All"]}))["Attributes"].clone()
}

#[test]
fn every_settable_attribute_round_trips_with_its_times() {
    let server = TestServer::start();
    let mut c = server.client();
    create(&mut c, "src.fifo", json!({"FifoQueue": "true"}));
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "s1", "Effect": "Allow", "Principal": "*", "Action": "SQS:SendMessage", "Resource": arn("hot.fifo")}]}).to_string();
    let allow = json!({"redrivePermission": "byQueue", "sourceQueueArns": [arn("src.fifo")]}).to_string();
    let set = json!({
        "FifoQueue": "true",
        "ContentBasedDeduplication": "true",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
        "DelaySeconds": "0",
        "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "3600",
        "ReceiveMessageWaitTimeSeconds": "2",
        "VisibilityTimeout": "45",
        "Policy": policy,
        "RedriveAllowPolicy": allow,
    });
    // This server's engine has no key: a queue that asks for encryption at rest is refused
    // (nothing would be encrypted), in CreateQueue as in SetQueueAttributes.
    for asked in [json!({"KmsMasterKeyId": "alias/aws/sqs"}), json!({"SqsManagedSseEnabled": "true"})] {
        let refused = error(&mut c, "CreateQueue", json!({"QueueName": "sealed", "Attributes": asked}));
        assert_eq!(refused, (400, "InvalidAttributeValue".to_string()));
    }
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let url = create(&mut c, "hot.fifo", set.clone());
    let a = attributes(&mut c, &url);
    for (name, value) in set.as_object().unwrap() {
        if name == "Policy" || name == "RedriveAllowPolicy" {
            let got: Value = serde_json::from_str(a[name].as_str().unwrap()).unwrap();
            assert_eq!(got, serde_json::from_str::<Value>(value.as_str().unwrap()).unwrap(), "{name}");
        } else {
            assert_eq!(&a[name], value, "{name}");
        }
    }
    assert_eq!(a["SqsManagedSseEnabled"], "false");
    assert_eq!(a["QueueArn"], arn("hot.fifo"));
    let created: u64 = a["CreatedTimestamp"].as_str().unwrap().parse().unwrap();
    assert!(created >= before && created <= before + 60, "{created} vs {before}");
    assert_eq!(a["LastModifiedTimestamp"], a["CreatedTimestamp"]);
    // A change moves LastModifiedTimestamp on (timestamps are whole seconds: wait for the next).
    std::thread::sleep(Duration::from_millis(1100));
    ok(
        &mut c,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"SqsManagedSseEnabled": "false", "Policy": ""}}),
    );
    let refused =
        error(&mut c, "SetQueueAttributes", json!({"QueueUrl": url, "Attributes": {"SqsManagedSseEnabled": "true"}}));
    assert_eq!(refused, (400, "InvalidAttributeValue".to_string()));
    let b = attributes(&mut c, &url);
    assert!(b["LastModifiedTimestamp"].as_str().unwrap() > a["LastModifiedTimestamp"].as_str().unwrap(), "{b}");
    assert_eq!(b["CreatedTimestamp"], a["CreatedTimestamp"]);
    assert_eq!(b["SqsManagedSseEnabled"], "false");
    assert!(b.get("KmsMasterKeyId").is_none() && b.get("Policy").is_none(), "{b}");
    assert_eq!(b["VisibilityTimeout"], "45", "other attributes stay");
    // The same attributes again: the same queue; other values: QueueNameExists.
    let again = json!({"QueueName": "hot.fifo", "Attributes": {"FifoQueue": "true", "VisibilityTimeout": "45"}});
    assert_eq!(ok(&mut c, "CreateQueue", again)["QueueUrl"], url.as_str());
    assert_eq!(
        error(
            &mut c,
            "CreateQueue",
            json!({"QueueName": "hot.fifo", "Attributes": {"FifoQueue": "true", "VisibilityTimeout": "46"}})
        ),
        (400, "QueueNameExists".to_string())
    );
    // The redrive allow policy decides who may use the queue as a dead-letter queue.
    let other = create(&mut c, "other.fifo", json!({"FifoQueue": "true"}));
    let redrive = json!({"deadLetterTargetArn": arn("hot.fifo"), "maxReceiveCount": 3}).to_string();
    let (status, _) =
        error(&mut c, "SetQueueAttributes", json!({"QueueUrl": other, "Attributes": {"RedrivePolicy": redrive}}));
    assert_eq!(status, 400);
    let src = server.client().json("GetQueueUrl", json!({"QueueName": "src.fifo"})).json()["QueueUrl"].clone();
    ok(&mut c, "SetQueueAttributes", json!({"QueueUrl": src, "Attributes": {"RedrivePolicy": redrive}}));
    // The query protocol answers the same attributes.
    let xml =
        c.query("/", &[("Action", "GetQueueAttributes"), ("QueueUrl", "hot.fifo"), ("AttributeName.1", "All")]).text();
    assert!(xml.contains("<Attribute><Name>DeduplicationScope</Name><Value>messageGroup</Value></Attribute>"), "{xml}");
    assert!(xml.contains("<Name>CreatedTimestamp</Name>"), "{xml}");
}

#[test]
fn messages_up_to_sqs_1_mib_limit_and_not_beyond() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "big", json!({}));
    assert_eq!(attributes(&mut c, &url)["MaximumMessageSize"], "1048576");
    let mib = 1 << 20;
    let sent = ok(&mut c, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x".repeat(mib)}));
    assert!(sent["MessageId"].is_string());
    let (status, shape) = error(&mut c, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x".repeat(mib + 1)}));
    assert_eq!((status, shape.as_str()), (400, "InvalidParameterValue"));
    let (status, shape) =
        error(&mut c, "SetQueueAttributes", json!({"QueueUrl": url, "Attributes": {"MaximumMessageSize": "1048577"}}));
    assert_eq!((status, shape.as_str()), (400, "InvalidAttributeValue"));
    // A batch of 1 MiB in all goes; one byte more is BatchRequestTooLong.
    let part = mib / 4;
    let entries = |extra: usize| -> Vec<Value> {
        (0..4)
            .map(|i| json!({"Id": format!("e{i}"), "MessageBody": "y".repeat(part + usize::from(i == 0) * extra)}))
            .collect()
    };
    let sent = ok(&mut c, "SendMessageBatch", json!({"QueueUrl": url, "Entries": entries(0)}));
    assert_eq!(sent["Successful"].as_array().unwrap().len(), 4, "{sent}");
    let (status, shape) = error(&mut c, "SendMessageBatch", json!({"QueueUrl": url, "Entries": entries(1)}));
    assert_eq!((status, shape.as_str()), (400, "BatchRequestTooLong"));
}

#[test]
fn tags_in_both_protocols() {
    let server = TestServer::start();
    let mut c = server.client();
    let url =
        ok(&mut c, "CreateQueue", json!({"QueueName": "tagged", "tags": {"team": "storage"}}))["QueueUrl"].clone();
    assert_eq!(ok(&mut c, "ListQueueTags", json!({"QueueUrl": url}))["Tags"], json!({"team": "storage"}));
    ok(&mut c, "TagQueue", json!({"QueueUrl": url, "Tags": {"cost": "1", "team": "queues"}}));
    assert_eq!(ok(&mut c, "ListQueueTags", json!({"QueueUrl": url}))["Tags"], json!({"cost": "1", "team": "queues"}));
    ok(&mut c, "UntagQueue", json!({"QueueUrl": url, "TagKeys": ["cost", "never-there"]}));
    let xml = c.query("/000000000000/tagged", &[("Action", "ListQueueTags")]).text();
    assert!(xml.contains("<Tag><Key>team</Key><Value>queues</Value></Tag>"), "{xml}");
    assert!(!xml.contains("cost"), "{xml}");
    let tagged =
        c.query("/000000000000/tagged", &[("Action", "TagQueue"), ("Tag.1.Key", "env"), ("Tag.1.Value", "dev")]);
    assert_eq!(tagged.status, 200, "{}", tagged.text());
    assert_eq!(ok(&mut c, "ListQueueTags", json!({"QueueUrl": url}))["Tags"]["env"], "dev");
    ok(&mut c, "UntagQueue", json!({"QueueUrl": url, "TagKeys": ["team", "env"]}));
    assert_eq!(ok(&mut c, "ListQueueTags", json!({"QueueUrl": url})), json!({}));
    assert_eq!(error(&mut c, "TagQueue", json!({"QueueUrl": url, "Tags": {"aws:x": "v"}})).1, "InvalidParameterValue");
    assert_eq!(error(&mut c, "ListQueueTags", json!({"QueueUrl": "nope"})).1, "QueueDoesNotExist");
}

#[test]
fn permissions_are_statements_of_the_policy() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "shared", json!({}));
    let add = |label: &str| json!({"QueueUrl": url, "Label": label, "AWSAccountIds": ["111122223333", "444455556666"], "Actions": ["SendMessage", "ReceiveMessage"]});
    ok(&mut c, "AddPermission", add("l1"));
    ok(&mut c, "AddPermission", add("l2"));
    assert_eq!(error(&mut c, "AddPermission", add("l1")), (400, "InvalidParameterValue".into()), "label taken");
    let policy = ok(&mut c, "GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["Policy"]}))["Attributes"]
        ["Policy"]
        .clone();
    let policy: Value = serde_json::from_str(policy.as_str().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.iter().map(|s| s["Sid"].clone()).collect::<Vec<_>>(), vec![json!("l1"), json!("l2")]);
    assert_eq!(statements[0]["Action"], json!(["SQS:SendMessage", "SQS:ReceiveMessage"]));
    assert_eq!(statements[0]["Resource"], arn("shared"));
    let bad = json!({"QueueUrl": url, "Label": "l3", "AWSAccountIds": ["111122223333"], "Actions": ["DeleteQueue"]});
    assert_eq!(error(&mut c, "AddPermission", bad).1, "InvalidParameterValue");
    // In the query protocol too.
    let removed = c.query("/000000000000/shared", &[("Action", "RemovePermission"), ("Label", "l1")]);
    assert_eq!(removed.status, 200, "{}", removed.text());
    ok(&mut c, "RemovePermission", json!({"QueueUrl": url, "Label": "l2"}));
    let after = ok(&mut c, "GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["Policy"]}));
    assert_eq!(after, json!({}), "the policy goes with its last statement");
    assert_eq!(error(&mut c, "RemovePermission", json!({"QueueUrl": url, "Label": "l2"})).1, "InvalidParameterValue");
}

#[test]
fn move_tasks_run_at_their_rate_are_listed_and_cancelled() {
    let server = TestServer::start();
    let mut c = server.client();
    let dlq = create(&mut c, "dead", json!({}));
    let policy = json!({"deadLetterTargetArn": arn("dead"), "maxReceiveCount": 1}).to_string();
    let src = create(&mut c, "work", json!({"RedrivePolicy": policy}));
    // Two messages dead-lettered the SQS way: received once, moved at their next receive.
    for i in 0..2 {
        ok(&mut c, "SendMessage", json!({"QueueUrl": src, "MessageBody": format!("poison {i}")}));
    }
    let got = ok(&mut c, "ReceiveMessage", json!({"QueueUrl": src, "MaxNumberOfMessages": 10, "VisibilityTimeout": 0}));
    assert_eq!(got["Messages"].as_array().map(Vec::len), Some(2), "{got}");
    assert_eq!(ok(&mut c, "ReceiveMessage", json!({"QueueUrl": src})), json!({}), "both moved on their 2nd receive");
    let dead = ok(
        &mut c,
        "ReceiveMessage",
        json!({"QueueUrl": dlq, "MaxNumberOfMessages": 10, "VisibilityTimeout": 0, "MessageSystemAttributeNames": ["DeadLetterQueueSourceArn"]}),
    );
    let dead = dead["Messages"].as_array().unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|m| m["Attributes"]["DeadLetterQueueSourceArn"] == arn("work")), "{dead:?}");
    // Back to their source, one a second: listed running with its rate, then complete.
    let handle =
        ok(&mut c, "StartMessageMoveTask", json!({"SourceArn": arn("dead"), "MaxNumberOfMessagesPerSecond": 1}))
            ["TaskHandle"]
            .clone();
    let listed = ok(&mut c, "ListMessageMoveTasks", json!({"SourceArn": arn("dead"), "MaxResults": 10}));
    let task = &listed["Results"][0];
    assert_eq!(task["Status"], "RUNNING", "{listed}");
    assert_eq!(task["TaskHandle"], handle);
    assert_eq!(task["MaxNumberOfMessagesPerSecond"], 1);
    assert_eq!(task["ApproximateNumberOfMessagesToMove"], 2);
    assert_eq!(task["SourceArn"], arn("dead"));
    assert!(task["StartedTimestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{task}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = ok(&mut c, "ListMessageMoveTasks", json!({"SourceArn": arn("dead")}));
        if listed["Results"][0]["Status"] == "COMPLETED" {
            assert_eq!(listed["Results"][0]["ApproximateNumberOfMessagesMoved"], 2);
            assert!(listed["Results"][0].get("TaskHandle").is_none(), "{listed}");
            break;
        }
        assert!(Instant::now() < deadline, "the task did not complete: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let back = ok(&mut c, "ReceiveMessage", json!({"QueueUrl": src, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 2}));
    assert_eq!(back["Messages"].as_array().map(Vec::len), Some(2), "{back}");
    // To a destination, cancelled while it runs: what moved stays moved.
    let other = create(&mut c, "elsewhere", json!({}));
    for i in 0..5 {
        ok(&mut c, "SendMessage", json!({"QueueUrl": dlq, "MessageBody": format!("d{i}")}));
    }
    let start =
        json!({"SourceArn": arn("dead"), "DestinationArn": arn("elsewhere"), "MaxNumberOfMessagesPerSecond": 1});
    let handle = ok(&mut c, "StartMessageMoveTask", start)["TaskHandle"].clone();
    let cancelled = ok(&mut c, "CancelMessageMoveTask", json!({"TaskHandle": handle}));
    let moved = cancelled["ApproximateNumberOfMessagesMoved"].as_u64().unwrap();
    assert!(moved < 5, "{cancelled}");
    let xml = c.query("/", &[("Action", "ListMessageMoveTasks"), ("SourceArn", &arn("dead"))]).text();
    assert!(xml.contains("<ListMessageMoveTasksResultEntry>") && xml.contains("<Status>CANCELLED</Status>"), "{xml}");
    assert!(xml.contains(&format!("<DestinationArn>{}</DestinationArn>", arn("elsewhere"))), "{xml}");
    assert_eq!(error(&mut c, "CancelMessageMoveTask", json!({"TaskHandle": handle})).1, "ResourceNotFoundException");
    let a =
        ok(&mut c, "GetQueueAttributes", json!({"QueueUrl": other, "AttributeNames": ["ApproximateNumberOfMessages"]}));
    assert_eq!(a["Attributes"]["ApproximateNumberOfMessages"], moved.to_string());
    assert_eq!(
        error(&mut c, "StartMessageMoveTask", json!({"SourceArn": arn("dead"), "MaxNumberOfMessagesPerSecond": 501})).1,
        "InvalidParameterValue"
    );
}

#[test]
fn system_attributes_custom_types_and_receive_attempts() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "sys.fifo", json!({"FifoQueue": "true"}));
    let attributes = json!({
        "n": {"DataType": "Number.int", "StringValue": "42"},
        "s": {"DataType": "String.json", "StringValue": "{\"a\":1}"},
        "b": {"DataType": "Binary.gif", "BinaryValue": "R0lGODlh"},
    });
    let sent = ok(
        &mut c,
        "SendMessage",
        json!({
            "QueueUrl": url, "MessageBody": "m", "MessageGroupId": "g", "MessageDeduplicationId": "d-1",
            "MessageAttributes": attributes,
            "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}},
        }),
    );
    assert!(sent["MD5OfMessageSystemAttributes"].is_string(), "{sent}");
    let receive = json!({"QueueUrl": url, "AttributeNames": ["All"], "MessageAttributeNames": ["All"], "ReceiveRequestAttemptId": "try-1"});
    let first = ok(&mut c, "ReceiveMessage", receive.clone());
    let m = &first["Messages"][0];
    assert_eq!(m["MD5OfMessageAttributes"], sent["MD5OfMessageAttributes"], "digest over the exact data types");
    assert_eq!(m["MessageAttributes"]["n"]["DataType"], "Number.int");
    assert_eq!(m["MessageAttributes"]["b"], json!({"DataType": "Binary.gif", "BinaryValue": "R0lGODlh"}));
    let a = &m["Attributes"];
    assert_eq!(a["MessageDeduplicationId"], "d-1");
    assert_eq!(a["MessageGroupId"], "g");
    assert_eq!(a["AWSTraceHeader"], "Root=1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(a["SenderId"], ACCOUNT);
    assert_eq!(a["SequenceNumber"], sent["SequenceNumber"]);
    // The same attempt again (a retry after a lost answer): the same message and handle.
    let again = ok(&mut c, "ReceiveMessage", receive);
    assert_eq!(again["Messages"][0]["ReceiptHandle"], m["ReceiptHandle"]);
    // Names ask for just those, through either parameter.
    let other = create(&mut c, "sys2", json!({}));
    ok(&mut c, "SendMessage", json!({"QueueUrl": other, "MessageBody": "x"}));
    let got = ok(
        &mut c,
        "ReceiveMessage",
        json!({"QueueUrl": other, "MessageSystemAttributeNames": ["SenderId", "AWSTraceHeader"]}),
    );
    assert_eq!(got["Messages"][0]["Attributes"], json!({"SenderId": ACCOUNT}));
    let bad = json!({"QueueUrl": url, "ReceiveRequestAttemptId": "no spaces allowed"});
    assert_eq!(error(&mut c, "ReceiveMessage", bad).1, "InvalidParameterValue");
    let bad_number = json!({"QueueUrl": other, "MessageBody": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1e999"}}});
    assert_eq!(error(&mut c, "SendMessage", bad_number).1, "InvalidParameterValue");
}

#[test]
fn a_long_poll_wakes_for_a_send_made_through_the_library() {
    let server = TestServer::start();
    let mut c = server.client();
    let url = create(&mut c, "embedded", json!({}));
    let addr = server.addr;
    let poller = std::thread::spawn(move || {
        let mut c = Client::connect(addr, false);
        let started = Instant::now();
        let a = c.json("ReceiveMessage", json!({"QueueUrl": url, "WaitTimeSeconds": 20}));
        (a.json(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    server.engine.queue("embedded").unwrap().send(b"from the library", SendOptions::default()).unwrap();
    let (got, waited) = poller.join().unwrap();
    assert_eq!(got["Messages"][0]["Body"], "from the library");
    assert!(waited < Duration::from_secs(3), "woken after {waited:?}");
}

#[test]
fn creating_a_queue_that_exists_compares_only_the_attributes_given() {
    let server = TestServer::start();
    let config = weir::queue::QueueConfig { visibility_timeout: Duration::from_secs(90), ..Default::default() };
    server.engine.create_queue("made-by-the-app", config).unwrap();
    let mut c = server.client();
    let url = format!("http://{}/{ACCOUNT}/made-by-the-app", server.addr);
    let same = |attributes: Value| json!({"QueueName": "made-by-the-app", "Attributes": attributes});
    assert_eq!(ok(&mut c, "CreateQueue", same(json!({})))["QueueUrl"], url.as_str());
    assert_eq!(ok(&mut c, "CreateQueue", same(json!({"VisibilityTimeout": "90"})))["QueueUrl"], url.as_str());
    let (status, shape) = error(&mut c, "CreateQueue", same(json!({"VisibilityTimeout": "30"})));
    assert_eq!((status, shape.as_str()), (400, "QueueNameExists"));
    let (status, shape) = error(&mut c, "CreateQueue", same(json!({"DelaySeconds": "901"})));
    assert_eq!((status, shape.as_str()), (400, "InvalidAttributeValue"));
    // Tags given again leave the queue's own alone.
    ok(&mut c, "TagQueue", json!({"QueueUrl": url, "Tags": {"owner": "app"}}));
    ok(&mut c, "CreateQueue", json!({"QueueName": "made-by-the-app", "tags": {"owner": "other"}}));
    assert_eq!(ok(&mut c, "ListQueueTags", json!({"QueueUrl": url}))["Tags"], json!({"owner": "app"}));
}
