//! `weir topic ...` driven as scripts drive it: exact JSON field names, fan-out with filter
//! policies, stdin publishes, FIFO topics, exit codes; and `weir demo` run twice.

use std::path::Path;

use serde_json::{json, Value};

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["body"].as_str().expect("text body")).collect()
}

/// Receives everything visible in `queue` (standard queues: up to 10).
fn receive_all(data: &Path, queue: &str) -> Vec<Value> {
    json_lines(data, &["queue", "receive", queue, "--max", "10"])
}

fn subscription_id(lines: &[Value]) -> String {
    assert_eq!(lines.len(), 1);
    assert_eq!(keys(&lines[0]), ["subscription_id"]);
    lines[0]["subscription_id"].as_str().expect("id").to_string()
}

const PUBLISH_KEYS: [&str; 3] = ["delivered", "filtered", "message_id"];

#[test]
fn publish_fans_out_through_filter_policies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    for q in ["audit", "billing", "big"] {
        json_lines(data, &["queue", "create", q]);
    }
    assert_eq!(json_lines(data, &["topic", "create", "events"]), vec![json!({ "name": "events", "fifo": false })]);
    assert_eq!(json_lines(data, &["topic", "create", "events"]).len(), 1, "same settings again: fine");
    assert_eq!(json_lines(data, &["topic", "list"]), vec![json!({ "name": "events" })]);

    let audit = subscription_id(&json_lines(data, &["topic", "subscribe", "events", "audit", "--raw"]));
    let policy = r#"{"kind":["invoice"]}"#;
    let billing =
        subscription_id(&json_lines(data, &["topic", "subscribe", "events", "billing", "--filter-policy", policy]));
    let numeric = r#"{"amount":[{"numeric":[">",100]}]}"#;
    let big = subscription_id(&json_lines(
        data,
        &["topic", "subscribe", "events", "big", "--filter-policy", numeric, "--filter-scope", "attributes", "--raw"],
    ));
    assert!(audit != billing && billing != big);

    let subs = json_lines(data, &["topic", "subscriptions", "events"]);
    assert_eq!(subs.len(), 3);
    for s in &subs {
        assert_eq!(keys(s), ["endpoint", "filter_policy", "filter_scope", "raw", "subscription_id", "topic"]);
        assert_eq!(s["topic"], "events");
        assert_eq!(s["filter_scope"], "attributes");
    }
    let by_id = |id: &str| subs.iter().find(|s| s["subscription_id"] == id).expect("listed").clone();
    assert_eq!(by_id(&audit)["endpoint"], "queue:audit");
    assert_eq!((by_id(&audit)["raw"].as_bool(), by_id(&audit)["filter_policy"].is_null()), (Some(true), true));
    assert_eq!(
        (by_id(&billing)["filter_policy"].as_str(), by_id(&billing)["raw"].as_bool()),
        (Some(policy), Some(false))
    );

    let refund = json_lines(data, &["topic", "publish", "events", "refund 7", "--attr", "kind=refund"]);
    assert_eq!(keys(&refund[0]), PUBLISH_KEYS, "no sequence for a standard topic");
    assert_eq!((refund[0]["delivered"].as_u64(), refund[0]["filtered"].as_u64()), (Some(1), Some(2)));
    let args = ["topic", "publish", "events", "invoice 9", "--attr", "kind=invoice", "--attr-number", "amount=250.5"];
    let invoice = json_lines(data, &args);
    assert_eq!((invoice[0]["delivered"].as_u64(), invoice[0]["filtered"].as_u64()), (Some(3), Some(0)));
    let small = json_lines(
        data,
        &["topic", "publish", "events", "invoice 10", "--attr", "kind=invoice", "--attr-number", "amount=3"],
    );
    assert_eq!((small[0]["delivered"].as_u64(), small[0]["filtered"].as_u64()), (Some(2), Some(1)));

    // Raw delivery: the body and attributes as published.
    let got = receive_all(data, "audit");
    assert_eq!(bodies(&got), ["refund 7", "invoice 9", "invoice 10"]);
    assert_eq!(
        got[1]["attributes"],
        json!({ "amount": { "type": "Number", "value": "250.5" }, "kind": { "type": "String", "value": "invoice" } })
    );
    assert_eq!(bodies(&receive_all(data, "big")), ["invoice 9"]);
    // Enveloped delivery: a JSON notification naming the publish.
    let got = receive_all(data, "billing");
    assert_eq!(got.len(), 2);
    let envelope: Value = serde_json::from_str(got[0]["body"].as_str().expect("text")).expect("a JSON envelope");
    assert_eq!(envelope["Message"], "invoice 9");
    assert_eq!(envelope["MessageId"], invoice[0]["message_id"]);
    assert_eq!(envelope["MessageAttributes"]["kind"]["Value"], "invoice");

    // Body scope: the policy looks into the JSON body.
    json_lines(data, &["queue", "create", "shipping"]);
    let args = ["topic", "subscribe", "events", "shipping", "--filter-policy", r#"{"kind":["ship"]}"#];
    subscription_id(&json_lines(data, &[&args[..], &["--filter-scope", "body", "--raw"]].concat()));
    let shipped = json_lines(data, &["topic", "publish", "events", r#"{"kind":"ship","id":1}"#]);
    assert_eq!((shipped[0]["delivered"].as_u64(), shipped[0]["filtered"].as_u64()), (Some(2), Some(2)));
    let other = json_lines(data, &["topic", "publish", "events", r#"{"kind":"return","id":2}"#]);
    assert_eq!((other[0]["delivered"].as_u64(), other[0]["filtered"].as_u64()), (Some(1), Some(3)));
    assert_eq!(bodies(&receive_all(data, "shipping")), [r#"{"kind":"ship","id":1}"#]);
}

#[test]
fn stdin_publish_takes_every_line_and_stops_at_a_bad_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "all"]);
    json_lines(data, &["queue", "create", "alerts"]);
    json_lines(data, &["topic", "create", "log"]);
    json_lines(data, &["topic", "subscribe", "log", "all", "--raw"]);
    json_lines(data, &["topic", "subscribe", "log", "alerts", "--raw", "--filter-policy", r#"{"level":["error"]}"#]);

    let input = b"disk at 80%\ndisk at 90%\r\ndisk at 99%\nlast without newline";
    let out = weir_stdin(data, &["topic", "publish", "log", "--attr", "level=error"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let published = parse_lines(&out);
    assert_eq!(published.len(), 4, "one result per line");
    for p in &published {
        assert_eq!(keys(p), PUBLISH_KEYS);
        assert_eq!((p["delivered"].as_u64(), p["filtered"].as_u64()), (Some(2), Some(0)));
    }
    let out = weir_stdin(data, &["topic", "publish", "log", "--attr", "level=info"], b"fine\nstill fine\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(parse_lines(&out).iter().all(|p| p["filtered"] == 1 && p["delivered"] == 1));
    let expected = ["disk at 80%", "disk at 90%", "disk at 99%", "last without newline"];
    assert_eq!(bodies(&receive_all(data, "alerts")), expected);
    assert_eq!(receive_all(data, "all").len(), 6);

    // Not UTF-8: SNS takes only text. The lines before it are published, none after.
    let out = weir_stdin(data, &["topic", "publish", "log"], b"ok-1\nok-2\n\xff\xfe\nnever\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin line 3") && stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    assert_eq!(parse_lines(&out).len(), 2);
    assert_eq!(bodies(&receive_all(data, "all")), ["ok-1", "ok-2"]);
    let out = weir_stdin(data, &["topic", "publish", "log"], b"\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin line 1") && stderr(&out).contains("empty"), "{}", stderr(&out));
}

#[test]
fn fifo_topics_keep_order_and_deduplicate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "orders.fifo", "--fifo"]);
    json_lines(data, &["queue", "create", "plain"]);
    let created = json_lines(data, &["topic", "create", "orders.fifo", "--fifo", "--content-dedup"]);
    assert_eq!(created, vec![json!({ "name": "orders.fifo", "fifo": true })]);
    json_lines(data, &["topic", "subscribe", "orders.fifo", "orders.fifo", "--raw"]);
    fails(data, &["topic", "subscribe", "orders.fifo", "plain"], 1, "FIFO");

    let publish = |body: &str, group: &str| {
        let p = json_lines(data, &["topic", "publish", "orders.fifo", body, "--group", group]);
        assert_eq!(keys(&p[0]), ["delivered", "filtered", "message_id", "sequence"]);
        p[0].clone()
    };
    let first = publish("a placed", "a");
    assert_eq!(first["delivered"], 1);
    publish("b placed", "b");
    publish("a paid", "a");
    let again = publish("a placed", "a");
    assert_eq!(again["message_id"], first["message_id"], "content-based deduplication");
    assert_eq!((again["sequence"].as_u64(), again["delivered"].as_u64()), (first["sequence"].as_u64(), Some(0)));
    let explicit = json_lines(data, &["topic", "publish", "orders.fifo", "c", "--group", "c", "--dedup-id", "x-1"]);
    assert_eq!(explicit[0]["delivered"], 1);
    fails(data, &["topic", "publish", "orders.fifo", "no group"], 1, "group");

    let got = receive_all(data, "orders.fifo");
    let seen: Vec<(&str, &str)> =
        got.iter().map(|m| (m["group"].as_str().expect("group"), m["body"].as_str().expect("body"))).collect();
    let a: Vec<&str> = seen.iter().filter(|(g, _)| *g == "a").map(|(_, b)| *b).collect();
    assert_eq!(a, ["a placed", "a paid"], "order within the group");
    assert_eq!(seen.len(), 4);
}

#[test]
fn unsubscribe_and_delete_topic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "q"]);
    json_lines(data, &["topic", "create", "t"]);
    let id = subscription_id(&json_lines(data, &["topic", "subscribe", "t", "q"]));
    let subs = json_lines(data, &["topic", "subscriptions", "t"]);
    assert_eq!((subs.len(), subs[0]["raw"].as_bool()), (1, Some(false)));
    let removed = json_lines(data, &["topic", "unsubscribe", &id]);
    assert_eq!(removed, vec![json!({ "subscription_id": id, "unsubscribed": true })]);
    assert!(json_lines(data, &["topic", "subscriptions", "t"]).is_empty());
    let p = json_lines(data, &["topic", "publish", "t", "to nobody"]);
    assert_eq!((p[0]["delivered"].as_u64(), p[0]["filtered"].as_u64()), (Some(0), Some(0)));
    fails(data, &["topic", "unsubscribe", &id], 1, "does not exist");

    json_lines(data, &["topic", "subscribe", "t", "q"]);
    assert_eq!(json_lines(data, &["topic", "delete-topic", "t"]), vec![json!({ "name": "t", "deleted": true })]);
    assert!(json_lines(data, &["topic", "list"]).is_empty());
    assert_eq!(json_lines(data, &["queue", "list"]), vec![json!({ "name": "q" })], "the queue stays");
    fails(data, &["topic", "publish", "t", "x"], 1, "does not exist");
    fails(data, &["topic", "subscriptions", "t"], 1, "does not exist");
    fails(data, &["topic", "delete-topic", "t"], 1, "does not exist");
}

#[test]
fn malformed_policies_bad_names_and_usage_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for name in ["a/b", "..", "", "a.b"] {
        fails(&data, &["topic", "create", name], 1, "invalid topic name");
        fails(&data, &["topic", "publish", name, "x"], 1, "invalid topic name");
    }
    fails(&data, &["topic", "subscribe", "t", "../q"], 1, "invalid queue name");
    fails(&data, &["topic", "create", "t.fifo"], 1, "--fifo");
    assert!(!data.exists(), "a bad name created the data directory");

    for args in [
        &["topic"][..],
        &["topic", "create"],
        &["topic", "subscribe", "t"],
        &["topic", "subscribe", "t", "q", "--filter-scope", "body"],
        &["topic", "subscribe", "t", "q", "--filter-policy", "{}", "--filter-scope", "headers"],
        &["topic", "publish", "t", "x", "--attr", "kind"],
        &["topic", "publish", "t", "x", "--attr-number", "n"],
        &["topic", "unsubscribe"],
    ] {
        let out = weir(&data, args);
        assert_eq!(out.status.code(), Some(2), "weir {args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty(), "weir {args:?} says nothing");
    }
    assert!(!data.exists(), "a usage error created the data directory");

    json_lines(&data, &["queue", "create", "q"]);
    json_lines(&data, &["topic", "create", "t"]);
    for (policy, reason) in
        [(r#"{"kind":"invoice"}"#, "array"), ("not json", "filter policy"), (r#"{"n":[{"numeric":["<"]}]}"#, "numeric")]
    {
        fails(&data, &["topic", "subscribe", "t", "q", "--filter-policy", policy], 1, reason);
        fails(&data, &["topic", "subscribe", "t", "q", "--filter-policy", policy], 1, "filter policy");
    }
    assert!(json_lines(&data, &["topic", "subscriptions", "t"]).is_empty(), "nothing subscribed");
    for (args, expect) in [
        (&["topic", "subscribe", "t", "missing"][..], "does not exist"),
        (&["topic", "subscribe", "missing", "q"], "does not exist"),
        (&["topic", "publish", "t", "x", "--attr-number", "n=abc"], "not a number"),
        (&["topic", "publish", "t", "x", "--attr", "k=1", "--attr-number", "k=1"], "more than once"),
        (&["topic", "publish", "t", "x", "--group", "g"], "FIFO"),
        (&["topic", "publish", "t", ""], "empty"),
        (&["topic", "create", "t", "--content-dedup"], "FIFO"),
        (&["topic", "create", "t", "--fifo"], ".fifo"),
    ] {
        fails(&data, args, 1, expect);
    }
}

#[test]
fn demo_runs_twice_on_the_same_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    for run in 1..=2 {
        let out = weir(data, &["demo"]);
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        for expect in
            ["== Queues", "moved 1 back", "the first one's id", "== Topics", "delivered to 2, filtered out by 0"]
        {
            assert!(text.contains(expect), "run {run} lacks {expect:?}:\n{text}");
        }
        assert!(text.contains("delivered to 1, filtered out by 1"), "{text}");
        assert!(text.contains("receive from \"demo-billing\": 1 message\n"), "{text}");
    }
    assert_eq!(json_lines(data, &["topic", "subscriptions", "demo-events"]).len(), 2, "no duplicate subscriptions");
    let queues: Vec<Value> = json_lines(data, &["queue", "list"]);
    let names: Vec<&str> = queues.iter().map(|q| q["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["demo-audit", "demo-billing", "demo-jobs", "demo-jobs-dlq", "demo-orders.fifo"]);
}

/// `topic subscribe --http`: pending until confirmed, its deliveries durable and counted by
/// `topic subscriptions` and `weir inspect` while no server makes them.
#[test]
fn http_subscriptions_wait_pending_and_are_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["topic", "create", "events"]);
    json_lines(data, &["queue", "create", "dead"]);
    let url = "http://127.0.0.1:9/hook";
    let policy = r#"{"healthyRetryPolicy":{"numRetries":5}}"#;
    let subscribed = json_lines(
        data,
        &["topic", "subscribe", "events", "--http", url, "--dead-letter", "dead", "--delivery-policy", policy, "--raw"],
    );
    assert_eq!(keys(&subscribed[0]), ["pending_confirmation", "subscription_id"]);
    assert_eq!(subscribed[0]["pending_confirmation"], true);
    let id = subscribed[0]["subscription_id"].as_str().expect("id").to_string();
    let published = json_lines(data, &["topic", "publish", "events", "ignored while pending"]);
    assert_eq!(published[0]["delivered"], 0);
    let listed = json_lines(data, &["topic", "subscriptions", "events"]);
    assert_eq!(
        listed,
        vec![json!({
            "subscription_id": id, "topic": "events", "endpoint": url, "filter_policy": null,
            "filter_scope": "attributes", "raw": true, "dead_letter_queue": "dead", "delivery_policy": policy,
            "pending_confirmation": true, "pending_deliveries": 1,
        })]
    );
    fails(data, &["topic", "confirm", "events", "0000"], 1, "does not exist");
    // The token is in the confirmation request waiting for the endpoint: read it as it would.
    let token = {
        let engine = weir::Engine::open(data, weir::Options::default()).expect("open");
        let deliveries = engine.http_deliveries(&id).expect("deliveries");
        let taken = deliveries.take(1, std::time::Duration::from_millis(1)).expect("take");
        let doc: Value = serde_json::from_slice(&taken[0].body).expect("JSON");
        doc["Token"].as_str().expect("token").to_string()
    };
    let confirmed = json_lines(data, &["topic", "confirm", "events", &token]);
    assert_eq!(confirmed, vec![json!({ "subscription_id": id, "confirmed": true })]);
    assert_eq!(json_lines(data, &["topic", "publish", "events", "queued"])[0]["delivered"], 1);
    let listed = json_lines(data, &["topic", "subscriptions", "events"]);
    assert_eq!((&listed[0]["pending_confirmation"], &listed[0]["pending_deliveries"]), (&json!(false), &json!(2)));
    let inspected = json_lines(data, &["inspect", data.to_str().expect("utf-8 path"), "--json"]);
    let http: Vec<&Value> = inspected.iter().filter(|l| l["kind"] == "http_subscription").collect();
    assert_eq!(
        http,
        vec![&json!({
            "kind": "http_subscription", "subscription_id": id, "topic": "events", "endpoint": url,
            "pending_confirmation": false, "pending_deliveries": 2,
        })]
    );
    let text = weir(data, &["inspect", data.to_str().expect("utf-8 path")]);
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains(&format!("http subscription {id} of topic events -> {url}: 2 pending deliveries")));
    assert!(json_lines(data, &["queue", "list"]).iter().all(|q| !q["name"].as_str().unwrap_or("").starts_with('#')));
    fails(data, &["topic", "subscribe", "events", "--http", "ftp://x"], 1, "http://");
    let usage = weir(data, &["topic", "subscribe", "events", "q", "--http", url]);
    assert_eq!(usage.status.code(), Some(2), "a queue and --http together: {}", stderr(&usage));
}
