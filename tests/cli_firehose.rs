//! `weir firehose ...` driven as scripts drive it: exact JSON field names, create to a
//! directory and to an HTTP endpoint, stdin puts, describe's delivery progress, deliver to
//! files, delete, and the errors.

use serde_json::{json, Value};

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

#[test]
fn a_delivery_stream_from_create_to_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    assert_eq!(
        json_lines(
            &data,
            &["firehose", "create", "clicks", "--to-dir", out_arg, "--buffer-interval", "0", "--newline"]
        ),
        vec![json!({"name": "clicks", "destination": "directory"})]
    );
    let backup = tmp.path().join("backup");
    assert_eq!(
        json_lines(
            &data,
            &[
                "firehose",
                "create",
                "hook",
                "--http",
                "http://127.0.0.1:9/in",
                "--backup-dir",
                backup.to_str().unwrap(),
                "--access-key",
                "s3cret",
                "--attr",
                "team=web",
                "--retry-duration",
                "60",
                "--gzip-requests"
            ]
        ),
        vec![json!({"name": "hook", "destination": "http"})]
    );
    fails(&data, &["firehose", "create", "clicks", "--to-dir", out_arg], 1, "already exists");
    fails(&data, &["firehose", "create", "bad/name", "--to-dir", out_arg], 1, "invalid delivery stream name");
    fails(&data, &["firehose", "create", "x", "--to-dir", out_arg, "--buffer-mib", "500"], 1, "1 to 128 MiB");
    fails(&data, &["firehose", "create", "x", "--http", "https://e/", "--backup-dir", out_arg], 1, "plain HTTP");
    fails(&data, &["firehose", "create", "x"], 2, "--to-dir");
    assert_eq!(json_lines(&data, &["firehose", "list"]), vec![json!({"name": "clicks"}), json!({"name": "hook"})]);

    let put = json_lines(&data, &["firehose", "put", "clicks", "one"]);
    assert_eq!(keys(&put[0]), ["record_id"]);
    let from_stdin = parse_lines(&weir_stdin(&data, &["firehose", "put", "clicks"], b"two\nthree\n"));
    assert_eq!(from_stdin.len(), 2);
    let described = json_lines(&data, &["firehose", "describe", "clicks"]);
    let d = &described[0];
    assert_eq!(
        keys(d),
        ["created_ms", "delivered_through", "destination", "name", "pending_records", "records_put", "tags"]
    );
    assert_eq!((d["pending_records"].clone(), d["records_put"].clone()), (json!(3), json!(3)));
    assert_eq!(d["destination"]["type"], "directory");
    assert_eq!(d["delivered_through"], json!({"firehose-directory": null}));

    let files = json_lines(&data, &["firehose", "deliver", "clicks", "--once"]);
    assert_eq!(files.len(), 1);
    let file = files[0]["file"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(file).unwrap(), "one\ntwo\nthree\n");
    let d = &json_lines(&data, &["firehose", "describe", "clicks"])[0];
    assert_eq!(d["pending_records"], 0);
    assert_eq!(d["delivered_through"], json!({"firehose-directory": 2}));

    let hook: Value = json_lines(&data, &["firehose", "describe", "hook"]).remove(0);
    assert_eq!(hook["destination"]["type"], "http");
    assert_eq!(hook["destination"]["access_key"], "(set)", "the secret is not printed");
    assert_eq!(hook["destination"]["common_attributes"], json!({"team": "web"}));
    fails(&data, &["firehose", "deliver", "hook", "--once"], 1, "weir serve");

    assert_eq!(json_lines(&data, &["firehose", "delete", "clicks"]), vec![json!({"name": "clicks", "deleted": true})]);
    fails(&data, &["firehose", "describe", "clicks"], 1, "does not exist");
    assert!(json_lines(&data, &["stream", "list"]).is_empty(), "delivery streams are not streams");
}
