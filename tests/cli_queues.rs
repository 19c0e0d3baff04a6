//! `weir queue ...` driven as scripts drive it: exact JSON field names, stdin sends, FIFO
//! fields, exit codes, and visibility state handed from one process to the next.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["body"].as_str().expect("text body")).collect()
}

const RECEIVED_KEYS: [&str; 5] = ["attributes", "body", "message_id", "receipt_handle", "receive_count"];

#[test]
fn create_list_attributes_purge_and_delete_queues() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    let dlq = json_lines(data, &["queue", "create", "jobs-dlq"]);
    assert_eq!(dlq, vec![json!({ "name": "jobs-dlq", "fifo": false })]);
    let args = [
        "queue",
        "create",
        "jobs",
        "--visibility-timeout",
        "60",
        "--delay",
        "0",
        "--retention",
        "3600",
        "--max-message-size",
        "2048",
        "--receive-wait",
        "1",
        "--dead-letter",
        "jobs-dlq",
        "--max-receives",
        "3",
    ];
    assert_eq!(json_lines(data, &args), vec![json!({ "name": "jobs", "fifo": false })]);
    // The same attributes again: fine. Others: an error.
    assert_eq!(json_lines(data, &args).len(), 1);
    fails(data, &["queue", "create", "jobs", "--visibility-timeout", "61"], 1, "already exists");

    let attributes = json_lines(data, &["queue", "attributes", "jobs"]);
    assert_eq!(attributes.len(), 1);
    let a = &attributes[0];
    assert_eq!(
        keys(a),
        [
            "approximate_delayed",
            "approximate_in_flight",
            "approximate_visible",
            "content_based_dedup",
            "created_ms",
            "dead_letter_queue",
            "dedup_scope",
            "delay_s",
            "fifo",
            "fifo_throughput_limit",
            "kms_data_key_reuse_period_s",
            "kms_master_key_id",
            "last_modified_ms",
            "max_message_bytes",
            "max_receives",
            "name",
            "oldest_message_age_s",
            "policy",
            "receive_wait_s",
            "redrive_allow",
            "retention_s",
            "sqs_managed_sse",
            "visibility_timeout_s",
        ]
    );
    assert_eq!(a["name"], "jobs");
    assert_eq!(a["visibility_timeout_s"], 60);
    assert_eq!(a["retention_s"], 3600);
    assert_eq!(a["max_message_bytes"], 2048);
    assert_eq!(a["receive_wait_s"], 1);
    assert_eq!(a["dead_letter_queue"], "jobs-dlq");
    assert_eq!(a["max_receives"], 3);
    let plain = &json_lines(data, &["queue", "attributes", "jobs-dlq"])[0];
    assert_eq!((plain["visibility_timeout_s"].as_u64(), plain["retention_s"].as_u64()), (Some(30), Some(345_600)));
    assert!(plain["dead_letter_queue"].is_null() && plain["max_receives"].is_null());

    let out = weir_stdin(data, &["queue", "send", "jobs"], b"one\ntwo\nthree\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(data, &["queue", "attributes", "jobs"])[0]["approximate_visible"], 3);
    assert_eq!(json_lines(data, &["queue", "receive", "jobs"]).len(), 1, "--max defaults to 1");
    let counts = &json_lines(data, &["queue", "attributes", "jobs"])[0];
    assert_eq!((counts["approximate_visible"].as_u64(), counts["approximate_in_flight"].as_u64()), (Some(2), Some(1)));
    assert_eq!(json_lines(data, &["queue", "purge", "jobs"]), vec![json!({ "name": "jobs", "purged": true })]);
    let counts = &json_lines(data, &["queue", "attributes", "jobs"])[0];
    assert_eq!((counts["approximate_visible"].as_u64(), counts["approximate_in_flight"].as_u64()), (Some(0), Some(0)));
    assert!(json_lines(data, &["queue", "peek", "jobs"]).is_empty());

    let list = json_lines(data, &["queue", "list"]);
    assert_eq!(list, vec![json!({ "name": "jobs" }), json!({ "name": "jobs-dlq" })]);
    let deleted = json_lines(data, &["queue", "delete-queue", "jobs"]);
    assert_eq!(deleted, vec![json!({ "name": "jobs", "deleted": true })]);
    assert_eq!(json_lines(data, &["queue", "list"]), vec![json!({ "name": "jobs-dlq" })]);
    fails(data, &["queue", "attributes", "jobs"], 1, "does not exist");
    fails(data, &["queue", "delete-queue", "jobs"], 1, "does not exist");
}

#[test]
fn visibility_and_receipt_handles_carry_from_process_to_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "q"]);
    let sent = json_lines(data, &["queue", "send", "q", "hello", "--attr", "color=red", "--attr", "eq=a=b"]);
    assert_eq!(sent.len(), 1);
    assert_eq!(keys(&sent[0]), ["message_id"], "no sequence for a standard queue");
    let id = sent[0]["message_id"].as_str().expect("id").to_string();

    // Process 2 receives; process 3 finds nothing: the message is in flight.
    let got = json_lines(data, &["queue", "receive", "q", "--max", "10"]);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(keys(m), RECEIVED_KEYS, "no group for a standard queue");
    assert_eq!(m["message_id"], id.as_str());
    assert_eq!(m["body"], "hello");
    assert_eq!(m["receive_count"], 1);
    assert_eq!(
        m["attributes"],
        json!({ "color": { "type": "String", "value": "red" }, "eq": { "type": "String", "value": "a=b" } })
    );
    let handle = m["receipt_handle"].as_str().expect("handle").to_string();
    assert!(json_lines(data, &["queue", "receive", "q", "--max", "10"]).is_empty(), "in flight");
    let peek = json_lines(data, &["queue", "peek", "q"]);
    assert_eq!(peek.len(), 1);
    assert_eq!(keys(&peek[0]), ["body", "message_id", "receive_count", "sent_ms", "state"]);
    assert_eq!((peek[0]["state"].as_str(), peek[0]["receive_count"].as_u64()), (Some("in_flight"), Some(1)));

    // Process 4 deletes with the handle process 2 got.
    let deleted = json_lines(data, &["queue", "delete", "q", &handle]);
    assert_eq!(deleted, vec![json!({ "queue": "q", "deleted": true })]);
    assert!(json_lines(data, &["queue", "peek", "q"]).is_empty());
    fails(data, &["queue", "delete", "q", &handle], 1, "receipt handle rejected");

    // change-visibility: hidden for 10 minutes, then visible again at once.
    json_lines(data, &["queue", "send", "q", "again"]);
    let got = json_lines(data, &["queue", "receive", "q", "--visibility-timeout", "600"]);
    let first = got[0]["receipt_handle"].as_str().expect("handle").to_string();
    assert!(json_lines(data, &["queue", "receive", "q"]).is_empty());
    let changed = json_lines(data, &["queue", "change-visibility", "q", &first, "0"]);
    assert_eq!(changed, vec![json!({ "queue": "q", "visibility_timeout_s": 0 })]);
    let again = json_lines(data, &["queue", "receive", "q"]);
    assert_eq!((bodies(&again), again[0]["receive_count"].as_u64()), (vec!["again"], Some(2)));
    fails(data, &["queue", "delete", "q", &first], 1, "stale");
    let current = again[0]["receipt_handle"].as_str().expect("handle");
    fails(data, &["queue", "change-visibility", "q", current, "43201"], 1, "visibility timeout");
    json_lines(data, &["queue", "delete", "q", current]);

    // A forged handle and one from another queue are refused.
    let mut forged = current.to_string().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("ascii");
    fails(data, &["queue", "delete", "q", &forged], 1, "receipt handle rejected");
    fails(data, &["queue", "delete", "q", "not-a-handle"], 1, "receipt handle rejected");
    json_lines(data, &["queue", "create", "other"]);
    json_lines(data, &["queue", "send", "q", "third"]);
    let third = json_lines(data, &["queue", "receive", "q"]);
    let third = third[0]["receipt_handle"].as_str().expect("handle");
    fails(data, &["queue", "delete", "other", third], 1, "another queue");
    fails(data, &["queue", "change-visibility", "q", &forged, "5"], 1, "receipt handle rejected");
}

#[test]
fn stdin_send_takes_every_line_and_stops_at_a_bad_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "lines"]);
    let input = b"first\nsecond\r\nthird\n\xff\xfe binary\nfifth without newline";
    let out = weir_stdin(data, &["queue", "send", "lines", "--attr", "src=stdin"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = parse_lines(&out);
    assert_eq!(sent.len(), 5, "one result per line");
    assert!(sent.iter().all(|s| keys(s) == ["message_id"]));
    let peek = json_lines(data, &["queue", "peek", "lines"]);
    let ids: Vec<&Value> = peek.iter().map(|p| &p["message_id"]).collect();
    assert_eq!(ids, sent.iter().map(|s| &s["message_id"]).collect::<Vec<_>>(), "stored in line order");
    assert_eq!(peek[1]["body"], "second");
    assert!(peek[3].get("body").is_none(), "non-UTF-8 bodies are not given as text");
    assert_eq!(peek[3]["body_base64"], "//4gYmluYXJ5");
    let got = json_lines(data, &["queue", "receive", "lines", "--max", "10"]);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|m| m["attributes"] == json!({ "src": { "type": "String", "value": "stdin" } })));
    json_lines(data, &["queue", "purge", "lines"]);

    // An empty line cannot be a message: the lines before it are in and reported, none after.
    let out = weir_stdin(data, &["queue", "send", "lines"], b"ok-1\nok-2\n\nnever\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin line 3") && stderr(&out).contains("empty"), "{}", stderr(&out));
    assert_eq!(parse_lines(&out).len(), 2);
    assert_eq!(bodies(&json_lines(data, &["queue", "peek", "lines"])), ["ok-1", "ok-2"]);

    // Too large for the queue: the same.
    json_lines(data, &["queue", "create", "small", "--max-message-size", "1024"]);
    let mut input = b"fits\n".to_vec();
    input.extend(vec![b'x'; 2000]);
    input.extend(b"\nafter\n");
    let out = weir_stdin(data, &["queue", "send", "small"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin line 2"), "{}", stderr(&out));
    assert_eq!(bodies(&json_lines(data, &["queue", "peek", "small"])), ["fits"]);

    // Many lines at once go in batches and all arrive, in order.
    let many: String = (0..45).map(|i| format!("m{i}\n")).collect();
    let out = weir_stdin(data, &["queue", "send", "small"], many.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parse_lines(&out).len(), 45);
    let peek = json_lines(data, &["queue", "peek", "small", "--limit", "100"]);
    let expected: Vec<String> = std::iter::once("fits".to_string()).chain((0..45).map(|i| format!("m{i}"))).collect();
    assert_eq!(bodies(&peek), expected);
    assert_eq!(json_lines(data, &["queue", "peek", "small", "--limit", "3"]).len(), 3);
}

#[test]
fn fifo_queues_print_sequence_and_group() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    assert_eq!(
        json_lines(data, &["queue", "create", "o.fifo", "--fifo"]),
        vec![json!({ "name": "o.fifo", "fifo": true })]
    );
    let send = |body: &str, group: &str, dedup: &str| {
        let sent = json_lines(data, &["queue", "send", "o.fifo", body, "--group", group, "--dedup-id", dedup]);
        assert_eq!(keys(&sent[0]), ["message_id", "sequence"]);
        sent[0].clone()
    };
    let a1 = send("a1", "a", "d1");
    let b1 = send("b1", "b", "d2");
    let a2 = send("a2", "a", "d3");
    assert!(a1["sequence"].as_u64() < b1["sequence"].as_u64() && b1["sequence"].as_u64() < a2["sequence"].as_u64());
    let duplicate = send("a1 again", "a", "d1");
    assert_eq!(duplicate["message_id"], a1["message_id"], "a duplicate returns the first id");
    assert_eq!(duplicate["sequence"], a1["sequence"]);
    fails(data, &["queue", "send", "o.fifo", "x", "--dedup-id", "d9"], 1, "group");
    fails(data, &["queue", "send", "o.fifo", "x", "--group", "a"], 1, "deduplication id");
    fails(data, &["queue", "send", "o.fifo", "x", "--group", "a", "--dedup-id", "d9", "--delay", "5"], 1, "delay");

    let peek = json_lines(data, &["queue", "peek", "o.fifo"]);
    assert_eq!(bodies(&peek), ["a1", "b1", "a2"]);
    assert_eq!(keys(&peek[0]), ["body", "group", "message_id", "receive_count", "sent_ms", "state"]);
    assert_eq!(peek[1]["group"], "b");

    let first = json_lines(data, &["queue", "receive", "o.fifo"]);
    assert_eq!(
        keys(&first[0]),
        ["attributes", "body", "dedup_id", "group", "message_id", "receipt_handle", "receive_count"]
    );
    assert_eq!((first[0]["body"].as_str(), first[0]["group"].as_str()), (Some("a1"), Some("a")));
    assert_eq!(first[0]["dedup_id"], "d1");
    // Group "a" is blocked while a1 is in flight, in the next process too.
    let others = json_lines(data, &["queue", "receive", "o.fifo", "--max", "10"]);
    assert_eq!(bodies(&others), ["b1"]);
    json_lines(data, &["queue", "delete", "o.fifo", first[0]["receipt_handle"].as_str().expect("handle")]);
    assert_eq!(bodies(&json_lines(data, &["queue", "receive", "o.fifo", "--max", "10"])), ["a2"]);

    // Content-based deduplication from stdin: a repeated line is the same message.
    json_lines(data, &["queue", "create", "c.fifo", "--fifo", "--content-dedup"]);
    let out = weir_stdin(data, &["queue", "send", "c.fifo", "--group", "g"], b"x\ny\nx\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = parse_lines(&out);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2]["message_id"], sent[0]["message_id"]);
    assert_ne!(sent[1]["message_id"], sent[0]["message_id"]);
    assert_eq!(bodies(&json_lines(data, &["queue", "peek", "c.fifo"])), ["x", "y"]);
}

#[test]
fn delays_dead_letters_and_redrive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "dlq"]);
    json_lines(data, &["queue", "create", "work", "--dead-letter", "dlq", "--max-receives", "1"]);
    json_lines(data, &["queue", "create", "elsewhere"]);

    json_lines(data, &["queue", "send", "work", "later", "--delay", "600"]);
    let peek = json_lines(data, &["queue", "peek", "work"]);
    assert_eq!((peek[0]["state"].as_str(), peek[0]["receive_count"].as_u64()), (Some("delayed"), Some(0)));
    assert!(json_lines(data, &["queue", "receive", "work"]).is_empty(), "delayed");
    json_lines(data, &["queue", "purge", "work"]);

    json_lines(data, &["queue", "send", "work", "poison"]);
    let got = json_lines(data, &["queue", "receive", "work", "--visibility-timeout", "0"]);
    assert_eq!(got[0]["receive_count"], 1);
    // Received once already: the next receive moves it to the dead-letter queue.
    assert!(json_lines(data, &["queue", "receive", "work", "--max", "10"]).is_empty());
    let dead = json_lines(data, &["queue", "peek", "dlq"]);
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0]["state"], "visible");

    assert_eq!(json_lines(data, &["queue", "redrive", "dlq"]), vec![json!({ "moved": 1, "skipped": 0 })]);
    assert!(json_lines(data, &["queue", "peek", "dlq"]).is_empty());
    assert_eq!(bodies(&json_lines(data, &["queue", "peek", "work"])), ["poison"]);

    // Again, this time back to another queue; a message in flight in the DLQ stays.
    json_lines(data, &["queue", "receive", "work", "--visibility-timeout", "0"]);
    json_lines(data, &["queue", "receive", "work"]);
    json_lines(data, &["queue", "send", "dlq", "held"]);
    let held = json_lines(data, &["queue", "receive", "dlq", "--max", "10"]);
    assert_eq!(bodies(&held).len(), 2, "the moved message and the held one");
    json_lines(data, &["queue", "change-visibility", "dlq", held[0]["receipt_handle"].as_str().expect("handle"), "0"]);
    let result = json_lines(data, &["queue", "redrive", "dlq", "--to", "elsewhere"]);
    assert_eq!(result, vec![json!({ "moved": 1, "skipped": 1 })]);
    assert_eq!(json_lines(data, &["queue", "peek", "elsewhere"]).len(), 1);
    fails(data, &["queue", "redrive", "dlq", "--to", "missing"], 1, "does not exist");
}

#[test]
fn receive_wait_long_polls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "lp"]);
    let started = Instant::now();
    assert!(json_lines(data, &["queue", "receive", "lp", "--wait", "1"]).is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1), "returned after {:?}", started.elapsed());

    json_lines(data, &["queue", "send", "lp", "soon", "--delay", "1"]);
    let started = Instant::now();
    let got = json_lines(data, &["queue", "receive", "lp", "--wait", "5"]);
    assert_eq!(bodies(&got), ["soon"], "the long poll sees the delay end");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    for args in [
        &["queue"][..],
        &["queue", "frobnicate"],
        &["queue", "create"],
        &["queue", "create", "q", "--dead-letter", "dlq"],
        &["queue", "create", "q", "--max-receives", "3"],
        &["queue", "create", "q", "--visibility-timeout", "-1"],
        &["queue", "create", "q", "--visibility-timeout", "1.5"],
        &["queue", "send", "q", "body", "--attr", "no-equals-sign"],
        &["queue", "receive", "q", "--max", "0"],
        &["queue", "receive", "q", "--max", "11"],
        &["queue", "receive", "q", "--wait", "soon"],
        &["queue", "delete", "q"],
        &["queue", "change-visibility", "q", "handle"],
        &["queue", "peek", "q", "--limit", "0"],
        &["queue", "redrive"],
    ] {
        let out = weir(data, args);
        assert_eq!(out.status.code(), Some(2), "weir {args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty(), "weir {args:?} says nothing");
    }
    let out = weir(data, &["queue", "send", "q", "body", "--attr", "oops"]);
    assert!(stderr(&out).contains("NAME=VALUE"), "{}", stderr(&out));
    assert!(!data.join("catalog").exists(), "a usage error opened the data directory");
}

#[test]
fn bad_names_and_attributes_fail_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for name in ["a/b", "..", "", "../x", "a.b"] {
        fails(&data, &["queue", "create", name], 1, "invalid queue name");
        fails(&data, &["queue", "send", name, "x"], 1, "invalid queue name");
    }
    fails(&data, &["queue", "create", "o.fifo"], 1, "--fifo");
    fails(&data, &["queue", "create", "o", "--fifo"], 1, ".fifo");
    assert!(!data.exists(), "a bad name created the data directory");

    json_lines(&data, &["queue", "create", "q"]);
    for (args, expect) in [
        (&["queue", "create", "v", "--visibility-timeout", "43201"][..], "visibility timeout"),
        (&["queue", "create", "v", "--delay", "901"], "delay"),
        (&["queue", "create", "v", "--retention", "59"], "retention"),
        (&["queue", "create", "v", "--max-message-size", "10"], "maximum message size"),
        (&["queue", "create", "v", "--receive-wait", "21"], "receive wait"),
        (&["queue", "create", "v", "--content-dedup"], "FIFO"),
        (&["queue", "create", "v", "--dead-letter", "missing", "--max-receives", "1"], "does not exist"),
        (&["queue", "create", "v", "--dead-letter", "q", "--max-receives", "0"], "max receives"),
        (&["queue", "create", "v", "--dead-letter", "v", "--max-receives", "1"], "own dead-letter"),
        (&["queue", "send", "missing", "x"], "does not exist"),
        (&["queue", "send", "q", ""], "empty"),
        (&["queue", "send", "q", "x", "--group", "g"], "FIFO"),
        (&["queue", "send", "q", "x", "--delay", "901"], "delay"),
        (&["queue", "send", "q", "x", "--attr", "bad name=v"], "attribute name"),
        (&["queue", "send", "q", "x", "--attr", "k=v", "--attr", "k=w"], "more than once"),
        (&["queue", "receive", "q", "--wait", "21"], "wait"),
        (&["queue", "receive", "q", "--visibility-timeout", "43201"], "visibility timeout"),
        (&["queue", "peek", "missing"], "does not exist"),
        (&["queue", "purge", "missing"], "does not exist"),
    ] {
        fails(&data, args, 1, expect);
    }
    assert_eq!(json_lines(&data, &["queue", "list"]), vec![json!({ "name": "q" })], "nothing half-created");
}

#[test]
fn queue_tags_and_sqs_attributes_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "dlq", "--redrive-allow", "jobs,other", "--tag", "team=core"]);
    let args = [
        "queue",
        "create",
        "jobs.fifo",
        "--fifo",
        "--dedup-scope",
        "message-group",
        "--fifo-throughput-limit",
        "per-message-group-id",
        "--tag",
        "env=prod",
        "--tag",
        "cost center=42",
    ];
    assert_eq!(json_lines(data, &args), vec![json!({ "name": "jobs.fifo", "fifo": true })]);
    let a = &json_lines(data, &["queue", "attributes", "jobs.fifo"])[0];
    assert_eq!(
        (a["dedup_scope"].as_str(), a["fifo_throughput_limit"].as_str()),
        (Some("message_group"), Some("per_message_group_id"))
    );
    assert!(a["created_ms"].as_u64().is_some_and(|t| t > 0) && a["created_ms"] == a["last_modified_ms"]);
    let dlq = &json_lines(data, &["queue", "attributes", "dlq"])[0];
    assert_eq!(dlq["redrive_allow"], json!({ "by_queue": ["jobs", "other"] }));

    assert_eq!(
        json_lines(data, &["queue", "tags", "jobs.fifo"]),
        vec![json!({ "name": "jobs.fifo", "tags": { "cost center": "42", "env": "prod" } })]
    );
    assert_eq!(
        json_lines(data, &["queue", "tag", "jobs.fifo", "env=test", "owner=a@b"]),
        vec![json!({ "name": "jobs.fifo", "tags": { "cost center": "42", "env": "test", "owner": "a@b" } })]
    );
    assert_eq!(
        json_lines(data, &["queue", "untag", "jobs.fifo", "env", "absent"]),
        vec![json!({ "name": "jobs.fifo", "tags": { "cost center": "42", "owner": "a@b" } })]
    );
    assert_eq!(json_lines(data, &["queue", "tags", "dlq"])[0]["tags"], json!({ "team": "core" }));
    fails(data, &["queue", "tag", "jobs.fifo", "aws:x=1"], 1, "reserved");
    fails(data, &["queue", "tag", "missing", "a=b"], 1, "does not exist");
    fails(data, &["queue", "create", "q", "--tag", "a=1", "--tag", "a=2"], 1, "twice");
    fails(data, &["queue", "create", "q", "--dedup-scope", "message-group"], 1, "FIFO");
    fails(
        data,
        &["queue", "create", "q.fifo", "--fifo", "--fifo-throughput-limit", "per-message-group-id"],
        1,
        "messageGroup",
    );
    fails(data, &["queue", "create", "q", "--dedup-scope", "sideways"], 2, "invalid value");
    fails(data, &["queue", "tag", "jobs.fifo"], 2, "required");
    // The redrive allow policy holds: "q" may not name "dlq".
    fails(data, &["queue", "create", "q", "--dead-letter", "dlq", "--max-receives", "2"], 1, "redrive allow policy");
    assert_eq!(json_lines(data, &["queue", "list"]).len(), 2, "the failed creates created nothing");

    // A trace header goes in with a send and comes back with the receive.
    json_lines(data, &["queue", "create", "plain"]);
    json_lines(data, &["queue", "send", "plain", "traced", "--trace-header", "Root=1-abc"]);
    let got = json_lines(data, &["queue", "receive", "plain"]);
    assert_eq!(got[0]["trace_header"], "Root=1-abc");
}

#[test]
fn move_tasks_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["queue", "create", "dlq"]);
    json_lines(data, &["queue", "create", "work", "--dead-letter", "dlq", "--max-receives", "1"]);
    json_lines(data, &["queue", "create", "triage"]);
    let out = weir_stdin(data, &["queue", "send", "work"], b"one\ntwo\nthree\n");
    assert!(out.status.success(), "{}", stderr(&out));
    // Received once (visibility 0), then moved by the next receive.
    assert_eq!(json_lines(data, &["queue", "receive", "work", "--max", "10", "--visibility-timeout", "0"]).len(), 3);
    assert!(json_lines(data, &["queue", "receive", "work", "--max", "10"]).is_empty());
    let dead = json_lines(data, &["queue", "receive", "dlq", "--max", "10", "--visibility-timeout", "0"]);
    assert_eq!(dead.len(), 3);
    assert!(dead.iter().all(|m| m["dead_letter_source"] == "work"));

    // Started and waited for: it prints the task once it has ended.
    let done = json_lines(data, &["queue", "move-task", "start", "dlq", "--rate", "100"]);
    assert_eq!(done.len(), 1);
    let task = &done[0];
    assert_eq!(
        keys(task),
        [
            "destination",
            "failure_reason",
            "handle",
            "max_per_second",
            "moved",
            "source",
            "started_ms",
            "status",
            "to_move"
        ]
    );
    assert_eq!(
        (task["status"].as_str(), task["moved"].as_u64(), task["to_move"].as_u64()),
        (Some("completed"), Some(3), Some(3))
    );
    assert_eq!(task["max_per_second"], 100);
    assert!(task["destination"].is_null() && task["failure_reason"].is_null());
    assert_eq!(bodies(&json_lines(data, &["queue", "peek", "work"])), ["one", "two", "three"]);

    // Detached: printed running; the next process that opens the directory goes on with it.
    assert_eq!(json_lines(data, &["queue", "receive", "work", "--max", "10", "--visibility-timeout", "0"]).len(), 3);
    assert!(json_lines(data, &["queue", "receive", "work", "--max", "10"]).is_empty());
    let started = json_lines(data, &["queue", "move-task", "start", "dlq", "--to", "triage", "--detach"]);
    assert_eq!(started[0]["destination"], "triage");
    let handle = started[0]["handle"].as_str().expect("handle").to_string();
    let status = json_lines(data, &["queue", "move-task", "status", &handle, "--wait"]);
    assert_eq!((status[0]["status"].as_str(), status[0]["moved"].as_u64()), (Some("completed"), Some(3)));
    assert_eq!(json_lines(data, &["queue", "attributes", "triage"])[0]["approximate_visible"], 3);

    let listed = json_lines(data, &["queue", "move-task", "list", "dlq"]);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["handle"].as_str(), Some(handle.as_str()), "newest first");
    assert_eq!(json_lines(data, &["queue", "move-task", "list", "dlq", "--max", "1"]).len(), 1);
    fails(data, &["queue", "move-task", "cancel", &handle], 1, "not running");
    fails(data, &["queue", "move-task", "cancel", "mt-999999"], 1, "does not exist");
    fails(data, &["queue", "move-task", "start", "work"], 1, "dead-letter");
    fails(data, &["queue", "move-task", "start", "dlq", "--rate", "501"], 1, "500");
    fails(data, &["queue", "move-task", "list", "dlq", "--max", "11"], 2, "invalid value");

    // Cancel: a slow detached task, cancelled before it has moved everything.
    for _ in 0..2 {
        json_lines(data, &["queue", "send", "work", "again"]);
    }
    assert_eq!(json_lines(data, &["queue", "receive", "work", "--max", "10", "--visibility-timeout", "0"]).len(), 2);
    assert!(json_lines(data, &["queue", "receive", "work", "--max", "10"]).is_empty());
    let slow = json_lines(data, &["queue", "move-task", "start", "dlq", "--rate", "1", "--detach"]);
    let handle = slow[0]["handle"].as_str().expect("handle");
    let cancelled = json_lines(data, &["queue", "move-task", "cancel", handle]);
    assert_eq!(cancelled[0]["status"], "cancelled");
    let moved = cancelled[0]["moved"].as_u64().expect("moved");
    assert!(moved < 2, "a task at one a second, starting with an empty bucket in each process, moved {moved}");
    let left = json_lines(data, &["queue", "attributes", "dlq"])[0]["approximate_visible"].as_u64();
    assert_eq!(left, Some(2 - moved));
}
