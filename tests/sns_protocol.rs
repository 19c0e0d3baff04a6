//! The SNS wire over real HTTP: the query protocol's wrapped forms (`Attributes.entry.N.key`,
//! `MessageAttributes.entry.N.Value.DataType`, `Tags.member.N.Key`,
//! `PublishBatchRequestEntries.member.N...`) in and out, every error code the SNS service can
//! produce from a request, visits of SubscribeURLs and UnsubscribeURLs, malformed input.

mod server_support;

use std::time::Duration;

use serde_json::json;
use server_support::{encode, Answer, Client, TestServer};

const V: (&str, &str) = ("Version", "2010-03-31");

fn sns(c: &mut Client, action: &str, params: &[(&str, &str)]) -> Answer {
    let mut form = vec![("Action", action), V];
    form.extend_from_slice(params);
    c.query("/", &form)
}

/// The text of the first `<name>` element.
fn text(a: &Answer, name: &str) -> String {
    let body = a.text();
    let open = format!("<{name}>");
    let start = body.find(&open).unwrap_or_else(|| panic!("no <{name}> in {body}")) + open.len();
    let end = body[start..].find(&format!("</{name}>")).expect("closed") + start;
    body[start..end].to_string()
}

/// Every `<key>K</key><value>V</value>` entry of an answer.
fn entries(a: &Answer) -> std::collections::BTreeMap<String, String> {
    let body = a.text();
    body.split("<entry>")
        .skip(1)
        .filter_map(|e| {
            let k = e.split("<key>").nth(1)?.split("</key>").next()?;
            let v = e.split("<value>").nth(1)?.split("</value>").next()?;
            Some((k.to_string(), v.replace("&quot;", "\"").replace("&amp;", "&")))
        })
        .collect()
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{code}: {}", a.text());
    let body = a.text();
    assert!(body.contains("<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"), "{body}");
    assert!(body.contains(&format!("<Code>{code}</Code>")), "{code}: {body}");
    assert!(body.contains("<Type>Sender</Type>"), "{body}");
    assert!(!text(a, "Message").is_empty());
}

fn create_topic(c: &mut Client, name: &str) -> String {
    let a = sns(c, "CreateTopic", &[("Name", name)]);
    assert_eq!(a.status, 200, "{}", a.text());
    text(&a, "TopicArn")
}

#[test]
fn topics_answer_in_snss_xml_with_wrapped_maps_and_lists() {
    let server = TestServer::start();
    let mut c = server.client();
    let created = sns(
        &mut c,
        "CreateTopic",
        &[
            ("Name", "orders"),
            ("Attributes.entry.1.key", "DisplayName"),
            ("Attributes.entry.1.value", "Orders & more"),
            ("Attributes.entry.2.key", "SignatureVersion"),
            ("Attributes.entry.2.value", "2"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "billing"),
        ],
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.header("content-type").as_deref(), Some("text/xml"));
    assert!(created.text().contains(
        "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:000000000000:orders</TopicArn></CreateTopicResult><ResponseMetadata><RequestId>"
    ), "{}", created.text());
    let arn = text(&created, "TopicArn");
    let attrs = entries(&sns(&mut c, "GetTopicAttributes", &[("TopicArn", &arn)]));
    assert_eq!(attrs["DisplayName"], "Orders &amp; more".replace("&amp;", "&"));
    assert_eq!((attrs["SignatureVersion"].as_str(), attrs["Owner"].as_str()), ("2", "000000000000"));
    let set = sns(
        &mut c,
        "SetTopicAttributes",
        &[("TopicArn", &arn), ("AttributeName", "DisplayName"), ("AttributeValue", "")],
    );
    assert_eq!(set.status, 200, "{}", set.text());
    assert!(set.text().contains("<SetTopicAttributesResponse") && !set.text().contains("Result>"));
    assert_eq!(entries(&sns(&mut c, "GetTopicAttributes", &[("TopicArn", &arn)]))["DisplayName"], "");
    let tags = sns(&mut c, "ListTagsForResource", &[("ResourceArn", &arn)]);
    assert!(
        tags.text().contains("<Tags><member><Key>team</Key><Value>billing</Value></member></Tags>"),
        "{}",
        tags.text()
    );
    let listed = sns(&mut c, "ListTopics", &[]);
    assert!(
        listed.text().contains(&format!("<Topics><member><TopicArn>{arn}</TopicArn></member></Topics>")),
        "{}",
        listed.text()
    );
    let untag = sns(&mut c, "UntagResource", &[("ResourceArn", &arn), ("TagKeys.member.1", "team")]);
    assert!(untag.text().contains("<UntagResourceResult></UntagResourceResult>"), "{}", untag.text());
    assert!(sns(&mut c, "ListTagsForResource", &[("ResourceArn", &arn)]).text().contains("<Tags></Tags>"));
    assert_eq!(sns(&mut c, "DeleteTopic", &[("TopicArn", &arn)]).status, 200);
    assert_error(&sns(&mut c, "GetTopicAttributes", &[("TopicArn", &arn)]), 404, "NotFound");
}

#[test]
fn a_publish_with_entry_attributes_reaches_a_raw_queue_subscription() {
    let server = TestServer::start();
    let mut c = server.client();
    let topic = create_topic(&mut c, "events");
    let q = c.json("CreateQueue", json!({"QueueName": "sink"}));
    assert_eq!(q.status, 200);
    let url = q.json()["QueueUrl"].as_str().unwrap().to_string();
    let subscribed = sns(
        &mut c,
        "Subscribe",
        &[
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", "arn:aws:sqs:us-east-1:000000000000:sink"),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
        ],
    );
    assert_eq!(subscribed.status, 200, "{}", subscribed.text());
    let sub = text(&subscribed, "SubscriptionArn");
    assert!(sub.starts_with(&format!("{topic}:")), "{sub}");
    let published = sns(
        &mut c,
        "Publish",
        &[
            ("TopicArn", &topic),
            ("Message", "ünïcode & <xml>"),
            ("MessageAttributes.entry.1.Name", "n"),
            ("MessageAttributes.entry.1.Value.DataType", "Number.int"),
            ("MessageAttributes.entry.1.Value.StringValue", "42"),
            ("MessageAttributes.entry.2.Name", "b"),
            ("MessageAttributes.entry.2.Value.DataType", "Binary"),
            ("MessageAttributes.entry.2.Value.BinaryValue", "AAH/"),
        ],
    );
    assert_eq!(published.status, 200, "{}", published.text());
    let message_id = text(&published, "MessageId");
    let got = c.json("ReceiveMessage", json!({"QueueUrl": url, "MessageAttributeNames": ["All"]}));
    let m = &got.json()["Messages"][0];
    assert_eq!(m["Body"], "ünïcode & <xml>");
    assert_eq!(m["MessageAttributes"]["n"], json!({"DataType": "Number.int", "StringValue": "42"}));
    assert_eq!(m["MessageAttributes"]["b"]["BinaryValue"], "AAH/");
    assert_ne!(m["MessageId"], message_id.as_str(), "an SQS message of its own");
    let attrs = entries(&sns(&mut c, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]));
    assert_eq!((attrs["RawMessageDelivery"].as_str(), attrs["Protocol"].as_str()), ("true", "sqs"));
    let listed = sns(&mut c, "ListSubscriptionsByTopic", &[("TopicArn", &topic)]);
    assert!(listed.text().contains("<Subscriptions><member>"), "{}", listed.text());
    assert_eq!(text(&listed, "Endpoint"), "arn:aws:sqs:us-east-1:000000000000:sink");
}

#[test]
fn publish_batch_reads_member_entries_and_answers_successes_and_failures() {
    let server = TestServer::start();
    let mut c = server.client();
    let topic = create_topic(&mut c, "batch");
    let a = sns(
        &mut c,
        "PublishBatch",
        &[
            ("TopicArn", &topic),
            ("PublishBatchRequestEntries.member.1.Id", "one"),
            ("PublishBatchRequestEntries.member.1.Message", "first"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name", "k"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType", "String"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue", "v"),
            ("PublishBatchRequestEntries.member.2.Id", "two"),
            ("PublishBatchRequestEntries.member.2.Message", "second"),
            ("PublishBatchRequestEntries.member.2.MessageGroupId", "not for a standard topic"),
        ],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.text();
    assert!(body.contains("<Successful><member><Id>one</Id><MessageId>"), "{body}");
    assert!(body.contains("<Failed><member><Code>InvalidParameter</Code><Id>two</Id>"), "{body}");
    assert!(body.contains("<SenderFault>true</SenderFault>"), "{body}");
}

#[test]
fn every_error_code_a_request_can_cause() {
    let server = TestServer::start();
    let mut c = server.client();
    let topic = create_topic(&mut c, "t");
    let missing = "arn:aws:sns:us-east-1:000000000000:missing";
    assert_error(&sns(&mut c, "GetTopicAttributes", &[("TopicArn", missing)]), 404, "NotFound");
    assert_error(
        &sns(&mut c, "GetTopicAttributes", &[("TopicArn", "arn:aws:sns:eu-west-1:000000000000:t")]),
        404,
        "NotFound",
    );
    assert_error(
        &sns(&mut c, "GetSubscriptionAttributes", &[("SubscriptionArn", &format!("{topic}:sub-999999"))]),
        404,
        "NotFound",
    );
    assert_error(&sns(&mut c, "ListTagsForResource", &[("ResourceArn", missing)]), 404, "ResourceNotFound");
    for params in [vec![("TopicArn", "not-an-arn")], vec![]] {
        assert_error(&sns(&mut c, "GetTopicAttributes", &params), 400, "InvalidParameter");
    }
    assert_error(&sns(&mut c, "CreateTopic", &[("Name", "bad name")]), 400, "InvalidParameter");
    assert_error(&sns(&mut c, "CreateTopic", &[("Name", "t.fifo")]), 400, "InvalidParameter");
    assert_error(
        &sns(
            &mut c,
            "CreateTopic",
            &[("Name", "t"), ("Attributes.entry.1.key", "DisplayName"), ("Attributes.entry.1.value", "other")],
        ),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(&mut c, "SetTopicAttributes", &[("TopicArn", &topic), ("AttributeName", "Bogus")]),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(&mut c, "Subscribe", &[("TopicArn", &topic), ("Protocol", "sms"), ("Endpoint", "+1")]),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(
            &mut c,
            "Subscribe",
            &[("TopicArn", &topic), ("Protocol", "sqs"), ("Endpoint", "arn:aws:sqs:us-east-1:000000000000:nope")],
        ),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(&mut c, "Subscribe", &[("TopicArn", &topic), ("Protocol", "http"), ("Endpoint", "https://x")]),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(&mut c, "ConfirmSubscription", &[("TopicArn", &topic), ("Token", "nope")]),
        400,
        "InvalidParameter",
    );
    assert_error(&sns(&mut c, "Publish", &[("TopicArn", &topic), ("Message", "")]), 400, "InvalidParameter");
    assert_error(
        &sns(&mut c, "Publish", &[("TopicArn", &topic), ("Message", "x"), ("MessageStructure", "json")]),
        400,
        "InvalidParameter",
    );
    assert_error(&sns(&mut c, "Publish", &[("Message", "x")]), 400, "InvalidParameter");
    assert_error(
        &sns(&mut c, "Publish", &[("TopicArn", &topic), ("Message", "x"), ("PhoneNumber", "+15555550100")]),
        400,
        "InvalidParameter",
    );
    assert_error(
        &sns(
            &mut c,
            "Publish",
            &[
                ("TopicArn", &topic),
                ("Message", "x"),
                ("MessageAttributes.entry.1.Name", "a"),
                ("MessageAttributes.entry.1.Value.DataType", "Float"),
                ("MessageAttributes.entry.1.Value.StringValue", "1"),
            ],
        ),
        400,
        "ParameterValueInvalid",
    );
    let big = "x".repeat(200_000);
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (vec![("PublishBatchRequestEntries".into(), String::new())], "EmptyBatchRequest"),
        (
            (1..=11)
                .flat_map(|i| {
                    [
                        (format!("PublishBatchRequestEntries.member.{i}.Id"), format!("e{i}")),
                        (format!("PublishBatchRequestEntries.member.{i}.Message"), "x".into()),
                    ]
                })
                .collect(),
            "TooManyEntriesInBatchRequest",
        ),
        (
            (1..=2)
                .flat_map(|i| {
                    [
                        (format!("PublishBatchRequestEntries.member.{i}.Id"), "same".into()),
                        (format!("PublishBatchRequestEntries.member.{i}.Message"), "x".into()),
                    ]
                })
                .collect(),
            "BatchEntryIdsNotDistinct",
        ),
        (
            vec![
                ("PublishBatchRequestEntries.member.1.Id".into(), "bad id!".into()),
                ("PublishBatchRequestEntries.member.1.Message".into(), "x".into()),
            ],
            "InvalidBatchEntryId",
        ),
        (
            (1..=2)
                .flat_map(|i| {
                    [
                        (format!("PublishBatchRequestEntries.member.{i}.Id"), format!("e{i}")),
                        (format!("PublishBatchRequestEntries.member.{i}.Message"), big.clone()),
                    ]
                })
                .collect(),
            "BatchRequestTooLong",
        ),
    ];
    for (entries, code) in cases {
        let mut params: Vec<(&str, &str)> = vec![("TopicArn", &topic)];
        params.extend(entries.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_error(&sns(&mut c, "PublishBatch", &params), 400, code);
    }
    let many: Vec<(String, String)> = (1..=51)
        .flat_map(|i| {
            [(format!("Tags.member.{i}.Key"), format!("k{i}")), (format!("Tags.member.{i}.Value"), "v".into())]
        })
        .collect();
    let mut params: Vec<(&str, &str)> = vec![("ResourceArn", &topic)];
    params.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_error(&sns(&mut c, "TagResource", &params), 400, "TagLimitExceeded");
    assert_error(&sns(&mut c, "CreatePlatformApplication", &[("Name", "x")]), 400, "InvalidAction");
    assert_error(&c.query("/", &[V]), 400, "MissingAction");
    assert_error(&sns(&mut c, "ListTopics", &[("Attributes.entry.x.key", "a")]), 400, "MalformedQueryString");
    assert_error(&sns(&mut c, "ListTopics", &[("NextToken", "")]), 400, "InvalidParameter");
    // The connection is still good, and the metrics count SNS apart.
    assert_eq!(sns(&mut c, "ListTopics", &[]).status, 200);
    let metrics = c.get("/metrics").text();
    assert!(metrics.contains(r#"weir_request_errors_total{service="sns",operation="PublishBatch"} 5"#), "{metrics}");
}

/// A one-request-per-connection HTTP endpoint on a thread: it answers 200 and hands over each
/// request's head and body.
fn endpoint() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send((head, body)).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn subscribe_and_unsubscribe_urls_work_when_visited() {
    let server = TestServer::start();
    let mut c = server.client();
    let topic = create_topic(&mut c, "web");
    let (url, posts) = endpoint();
    let a = sns(&mut c, "Subscribe", &[("TopicArn", &topic), ("Protocol", "http"), ("Endpoint", &url)]);
    assert_eq!(text(&a, "SubscriptionArn"), "pending confirmation");
    let returned = sns(
        &mut c,
        "Subscribe",
        &[("TopicArn", &topic), ("Protocol", "http"), ("Endpoint", &url), ("ReturnSubscriptionArn", "true")],
    );
    let sub = text(&returned, "SubscriptionArn");
    let (head, body) = posts.recv_timeout(Duration::from_secs(20)).expect("the confirmation request");
    assert!(head.starts_with("POST /hook HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("x-amz-sns-message-type: SubscriptionConfirmation"), "{head}");
    assert!(!head.contains("x-amz-sns-subscription-arn"), "not before it is confirmed: {head}");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let subscribe_url = doc["SubscribeURL"].as_str().unwrap();
    let path = &subscribe_url[subscribe_url.find("/?").unwrap()..];
    assert!(subscribe_url.starts_with(&format!("http://{}", server.addr)), "{subscribe_url}");
    let confirmed = c.get(path);
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(text(&confirmed, "SubscriptionArn"), sub);
    let attrs = entries(&sns(&mut c, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]));
    assert_eq!(attrs["PendingConfirmation"], "false");
    assert_eq!(attrs["ConfirmationWasAuthenticated"], "false", "a visit is not signed");
    assert!(posts.recv_timeout(Duration::from_secs(20)).is_ok(), "the second confirmation request");
    let published = sns(&mut c, "Publish", &[("TopicArn", &topic), ("Message", "hello")]);
    let (head, body) = posts.recv_timeout(Duration::from_secs(20)).expect("the notification");
    assert!(head.contains(&format!("x-amz-sns-message-id: {}", text(&published, "MessageId"))), "{head}");
    assert!(head.contains(&format!("x-amz-sns-subscription-arn: {sub}")), "{head}");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")["Message"], "hello");
    let unsubscribe = c.get(&format!("/?Action=Unsubscribe&SubscriptionArn={}", encode(&sub)));
    assert_eq!(unsubscribe.status, 200, "{}", unsubscribe.text());
    assert_error(&sns(&mut c, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]), 404, "NotFound");
}

#[test]
fn malformed_sns_requests_get_errors_and_the_connection_stays_usable() {
    let server = TestServer::start();
    let mut c = server.client();
    let bodies: Vec<Vec<u8>> = vec![
        b"Action=CreateTopic&Version=2010-03-31&Name=a&Name=b".to_vec(),
        b"Action=CreateTopic&Version=2010-03-31&Name=x&Tags=oops".to_vec(),
        b"Action=CreateTopic&Version=2010-03-31&Name=x&Tags.member.1.Value=v".to_vec(),
        b"Action=Publish&Version=2010-03-31&TopicArn=arn:aws:sns:us-east-1:000000000000:x&Message=m&MessageAttributes.entry.1.Value.DataType=String".to_vec(),
        b"Action=Publish&Version=2010-03-31&a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r=1".to_vec(),
        b"Action=Subscribe&Version=2010-03-31&Attributes.entry.1.key=a&Attributes.entry.1.key.x=b".to_vec(),
        b"Action=ListTopics&Version=2010-03-31&NextToken=%FF".to_vec(),
        b"Action=ConfirmSubscription&Version=2010-03-31&TopicArn=arn:aws:sns:us-east-1:000000000000:x".to_vec(),
        b"Action=Unsubscribe&Version=2010-03-31&SubscriptionArn=pending+confirmation".to_vec(),
        b"Action=SetSubscriptionAttributes&Version=2010-03-31&SubscriptionArn=arn:aws:sns:us-east-1:000000000000:t:s&AttributeName=RawMessageDelivery&AttributeValue=maybe".to_vec(),
    ];
    for body in bodies {
        let a = c.form("/", body.clone());
        assert!((400..500).contains(&a.status), "{}: {} {}", String::from_utf8_lossy(&body), a.status, a.text());
    }
    assert_eq!(sns(&mut c, "ListTopics", &[]).status, 200);
}
