//! The `weir stream` commands for resharding, consumer groups and delivery, driven as scripts
//! drive them: split, merge, describe's lineage, consume with and without checkpoints,
//! checkpoints, deliver (once and running), create with throughput limits, and exit codes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

/// Runs weir, expects exit code `code` and a `weir: ` message containing `expect`.
fn fails(data: &Path, args: &[&str], code: i32, expect: &str) {
    let out = weir(data, args);
    assert_eq!(out.status.code(), Some(code), "weir {args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(expect), "weir {args:?}: {err}");
    if code == 1 {
        assert!(err.starts_with("weir: "), "weir {args:?}: {err}");
    }
}

fn shards(data: &Path, stream: &str) -> Vec<Value> {
    let d = json_lines(data, &["stream", "describe", stream]);
    d[0]["shards"].as_array().expect("shards").clone()
}

fn shard(shards: &[Value], id: u64) -> &Value {
    shards.iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no shard {id} in {shards:?}"))
}

fn range(s: &Value) -> (u128, u128) {
    let n = |field: &str| s[field].as_str().expect("decimal string").parse::<u128>().expect("number");
    (n("hash_start"), n("hash_end"))
}

fn parents(s: &Value) -> Vec<u64> {
    let mut p: Vec<u64> = s["parents"].as_array().expect("parents").iter().map(|v| v.as_u64().expect("id")).collect();
    p.sort_unstable();
    p
}

fn put(data: &Path, stream: &str, key: &str, value: &str) -> Value {
    json_lines(data, &["stream", "put", stream, "--key", key, value]).remove(0)
}

fn data_of(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["data"].as_str().expect("data")).collect()
}

#[test]
fn split_and_merge_print_their_children_and_describe_shows_the_lineage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "1"]);
    put(data, "s", "k", "before");

    let split = json_lines(data, &["stream", "split", "s", "--shard", "0"]);
    assert_eq!(split.len(), 1);
    assert_eq!(keys(&split[0]), ["children"]);
    assert_eq!(split[0]["children"], serde_json::json!([1, 2]));
    let d = shards(data, "s");
    assert_eq!(d.len(), 3);
    for s in &d {
        assert_eq!(keys(s), ["first_seq", "hash_end", "hash_start", "id", "last_seq", "open", "parents"]);
    }
    assert_eq!((shard(&d, 0)["open"].as_bool(), parents(shard(&d, 0))), (Some(false), vec![]));
    assert_eq!(shard(&d, 0)["last_seq"], 0, "the parent keeps its records");
    for child in [1, 2] {
        assert_eq!((shard(&d, child)["open"].as_bool(), parents(shard(&d, child))), (Some(true), vec![0]));
    }
    assert_eq!(range(shard(&d, 1)), (0, (1u128 << 127) - 1), "the default point is the middle");
    assert_eq!(range(shard(&d, 2)), (1u128 << 127, u128::MAX));

    let split = json_lines(data, &["stream", "split", "s", "--shard", "1", "--at", "1000"]);
    assert_eq!(split[0]["children"], serde_json::json!([3, 4]));
    let d = shards(data, "s");
    assert_eq!(range(shard(&d, 3)), (0, 999));
    assert_eq!(range(shard(&d, 4)), (1000, (1u128 << 127) - 1));
    assert_eq!(parents(shard(&d, 4)), vec![1]);

    let merged = json_lines(data, &["stream", "merge", "s", "--shard", "4", "--adjacent", "3"]);
    assert_eq!(merged.len(), 1);
    assert_eq!(keys(&merged[0]), ["child"]);
    assert_eq!(merged[0]["child"], 5);
    let d = shards(data, "s");
    assert_eq!(range(shard(&d, 5)), (0, (1u128 << 127) - 1));
    assert_eq!(parents(shard(&d, 5)), vec![3, 4]);
    let open: Vec<u64> = d.iter().filter(|s| s["open"] == true).map(|s| s["id"].as_u64().expect("id")).collect();
    assert_eq!(open, vec![2, 5]);

    let after = put(data, "s", "k", "after");
    assert!([2, 5].contains(&after["shard"].as_u64().expect("shard")), "a write went to a closed shard: {after}");
    assert!(after["seq"].as_u64().expect("seq") > 0, "children number above their parents");
}

#[test]
fn bad_splits_and_merges_fail_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "3"]);
    json_lines(data, &["stream", "split", "s", "--shard", "1"]);
    let before = shards(data, "s");
    let start_of_2 = range(shard(&before, 2)).0.to_string();
    for (args, expect) in [
        (&["stream", "split", "s", "--shard", "1"][..], "closed"),
        (&["stream", "split", "s", "--shard", "9"], "does not exist"),
        (&["stream", "split", "s", "--shard", "2", "--at", &start_of_2], "hash key"),
        (&["stream", "merge", "s", "--shard", "0", "--adjacent", "2"], "adjacent"),
        (&["stream", "merge", "s", "--shard", "2", "--adjacent", "2"], "adjacent"),
        (&["stream", "merge", "s", "--shard", "1", "--adjacent", "0"], "closed"),
        (&["stream", "split", "missing", "--shard", "0"], "does not exist"),
        (&["stream", "merge", "../x", "--shard", "0", "--adjacent", "1"], "invalid stream name"),
    ] {
        fails(data, args, 1, expect);
    }
    assert_eq!(shards(data, "s"), before, "a refused reshard changed the stream");
}

#[test]
fn consume_prints_records_with_their_shard_and_resumes_only_after_a_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "2"]);
    let mut written = Vec::new();
    for i in 0..6 {
        let p = put(data, "s", &format!("user-{i}"), &format!("v{i}"));
        written.push((p["shard"].as_u64().expect("shard"), p["seq"].as_u64().expect("seq"), format!("v{i}")));
    }
    written.sort();

    let all = json_lines(data, &["stream", "consume", "s", "--group", "g"]);
    assert_eq!(all.len(), 6);
    for r in &all {
        assert_eq!(keys(r), ["data", "key", "seq", "shard", "time_ms"]);
    }
    let mut got: Vec<(u64, u64, String)> = all
        .iter()
        .map(|r| (r["shard"].as_u64().expect("shard"), r["seq"].as_u64().expect("seq"), r["data"].to_string()))
        .map(|(s, q, d)| (s, q, d.trim_matches('"').to_string()))
        .collect();
    got.sort();
    assert_eq!(got, written, "every record once, where it was put");
    assert_eq!(json_lines(data, &["stream", "consume", "s", "--group", "g"]), all, "without --checkpoint: again");
    assert!(json_lines(data, &["stream", "checkpoints", "s"]).is_empty(), "nothing was checkpointed");

    let first = json_lines(data, &["stream", "consume", "s", "--group", "g", "--limit", "4", "--checkpoint"]);
    assert_eq!(first.len(), 4, "--limit");
    let rest = json_lines(data, &["stream", "consume", "s", "--group", "g", "--checkpoint", "--worker", "other"]);
    assert_eq!(rest.len(), 2, "another worker resumes at once after the checkpoint");
    let mut both = first.clone();
    both.extend(rest);
    let mut seen: Vec<(u64, u64)> =
        both.iter().map(|r| (r["shard"].as_u64().expect("shard"), r["seq"].as_u64().expect("seq"))).collect();
    seen.sort_unstable();
    assert_eq!(seen, written.iter().map(|(s, q, _)| (*s, *q)).collect::<Vec<_>>(), "nothing skipped or repeated");
    assert!(json_lines(data, &["stream", "consume", "s", "--group", "g", "--checkpoint"]).is_empty());

    put(data, "s", "user-0", "late");
    let late = json_lines(data, &["stream", "consume", "s", "--group", "g", "--worker", "w1", "--checkpoint"]);
    assert_eq!(data_of(&late), ["late"], "the same worker id again resumes too");
    assert_eq!(json_lines(data, &["stream", "consume", "s", "--group", "fresh"]).len(), 7, "groups are separate");
}

#[test]
fn consume_reads_across_a_split_in_put_order_in_one_call() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "1"]);
    let lines: String = (0..5).map(|i| format!("a{i}\n")).collect();
    let out = weir_stdin(data, &["stream", "put", "s", "--key", "same"], lines.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(data, &["stream", "split", "s", "--shard", "0"]);
    let lines: String = (5..9).map(|i| format!("a{i}\n")).collect();
    let out = weir_stdin(data, &["stream", "put", "s", "--key", "same"], lines.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));

    let without = json_lines(data, &["stream", "consume", "s", "--group", "g"]);
    assert_eq!(data_of(&without), ["a0", "a1", "a2", "a3", "a4"], "children wait until the parent is checkpointed");
    let with = json_lines(data, &["stream", "consume", "s", "--group", "g", "--checkpoint"]);
    let expected: Vec<String> = (0..9).map(|i| format!("a{i}")).collect();
    assert_eq!(data_of(&with), expected, "parent, then child, in one call");
    assert_eq!(with[0]["shard"], 0);
    assert_ne!(with[8]["shard"], 0);
    let checkpoints = json_lines(data, &["stream", "checkpoints", "s"]);
    assert_eq!(checkpoints.len(), 2, "the parent and the child that took the key: {checkpoints:?}");
    assert_eq!(checkpoints[0], serde_json::json!({"group": "g", "shard": 0, "seq": 4}));
    assert_eq!(checkpoints[1]["seq"], with[8]["seq"]);
}

#[test]
fn consume_shows_binary_data_as_base64() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "b", "--shards", "1"]);
    let out = weir_stdin(data, &["stream", "put", "b", "--key", "k"], b"\xff\xfe\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = json_lines(data, &["stream", "consume", "b", "--group", "g"]);
    assert_eq!(got.len(), 1);
    assert_eq!(keys(&got[0]), ["data_base64", "key", "seq", "shard", "time_ms"]);
    assert_eq!(got[0]["data_base64"], "//4=");
}

#[test]
fn checkpoints_lists_every_group_and_shard() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "2"]);
    for i in 0..8 {
        put(data, "s", &format!("k{i}"), "x");
    }
    json_lines(data, &["stream", "consume", "s", "--group", "alpha", "--checkpoint"]);
    json_lines(data, &["stream", "consume", "s", "--group", "beta", "--checkpoint", "--limit", "1"]);
    let listed = json_lines(data, &["stream", "checkpoints", "s"]);
    for line in &listed {
        assert_eq!(keys(line), ["group", "seq", "shard"]);
    }
    let pairs: Vec<(&str, u64)> =
        listed.iter().map(|l| (l["group"].as_str().expect("group"), l["shard"].as_u64().expect("shard"))).collect();
    assert_eq!(pairs.iter().filter(|(g, _)| *g == "alpha").count(), 2, "alpha read both shards: {pairs:?}");
    assert_eq!(pairs.iter().filter(|(g, _)| *g == "beta").count(), 1, "beta read one record: {pairs:?}");
    let mut sorted = pairs.clone();
    sorted.sort_unstable();
    assert_eq!(pairs, sorted, "listed by group, then shard");
    fails(data, &["stream", "checkpoints", "missing"], 1, "does not exist");
}

/// Every non-temporary file in `dir`, with its content decompressed.
fn delivered(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            let bytes = if p.extension().is_some_and(|e| e == "zst") {
                zstd::bulk::decompress(&bytes, 1 << 24).expect("whole zstd")
            } else {
                bytes
            };
            (p, String::from_utf8(bytes).expect("UTF-8"))
        })
        .collect()
}

fn printed_files(lines: &[Value]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = lines
        .iter()
        .map(|l| {
            assert_eq!(keys(l), ["file"]);
            PathBuf::from(l["file"].as_str().expect("path"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn deliver_once_writes_whole_files_of_every_record_and_then_only_new_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let to = tmp.path().join("out");
    let to_arg = to.to_string_lossy().into_owned();
    json_lines(&data, &["stream", "create", "s", "--shards", "1"]);
    let lines: String = (0..5).map(|i| format!("r{i}\n")).collect();
    assert!(weir_stdin(&data, &["stream", "put", "s", "--key", "k"], lines.as_bytes()).status.success());
    json_lines(&data, &["stream", "split", "s", "--shard", "0"]);
    let lines: String = (5..10).map(|i| format!("r{i}\n")).collect();
    assert!(weir_stdin(&data, &["stream", "put", "s", "--key", "k"], lines.as_bytes()).status.success());

    let printed = json_lines(&data, &["stream", "deliver", "s", "--to", &to_arg, "--once"]);
    let files = delivered(&to);
    assert_eq!(printed_files(&printed), files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
    let mut records: Vec<Value> = Vec::new();
    for (path, text) in &files {
        assert!(path.to_string_lossy().ends_with(".jsonl"), "{}", path.display());
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).expect("a whole JSON line");
            assert_eq!(keys(&record), ["data", "key", "seq", "time_ms"]);
            records.push(record);
        }
    }
    records.sort_by_key(|r| r["seq"].as_u64());
    let expected: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(data_of(&records), expected, "the parent's records and, once it is done, the child's");

    assert!(json_lines(&data, &["stream", "deliver", "s", "--to", &to_arg, "--once"]).is_empty(), "nothing new");
    put(&data, "s", "k", "r10");
    let more = json_lines(&data, &["stream", "deliver", "s", "--to", &to_arg, "--once"]);
    assert_eq!(more.len(), 1);
    let text = std::fs::read_to_string(printed_files(&more)[0].clone()).expect("read");
    let only: Value = serde_json::from_str(text.trim_end()).expect("one line");
    assert_eq!(only["data"], "r10");
}

#[test]
fn deliver_once_compresses_and_writes_raw_data_with_any_max_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let to = tmp.path().join("raw");
    let to_arg = to.to_string_lossy().into_owned();
    json_lines(&data, &["stream", "create", "s", "--shards", "1"]);
    let lines: String = (0..30).map(|i| format!("line-{i:02}\n")).collect();
    assert!(weir_stdin(&data, &["stream", "put", "s", "--key", "k"], lines.as_bytes()).status.success());
    let args = [
        "stream",
        "deliver",
        "s",
        "--to",
        &to_arg,
        "--once",
        "--compression",
        "zstd",
        "--format",
        "raw",
        "--max-bytes",
        "1",
    ];
    let printed = json_lines(&data, &args);
    assert!(!printed.is_empty());
    let files = delivered(&to);
    assert_eq!(printed_files(&printed), files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
    let mut all = String::new();
    for (path, text) in &files {
        assert!(path.to_string_lossy().ends_with(".raw.zst"), "{}", path.display());
        all.push_str(text);
    }
    assert_eq!(all, lines, "every record's data, one per line, in order");
}

#[test]
fn deliver_runs_until_stopped_and_writes_files_as_records_are_due() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let to = tmp.path().join("out");
    json_lines(&data, &["stream", "create", "s", "--shards", "2"]);
    for i in 0..6 {
        put(&data, "s", &format!("k{i}"), &format!("v{i}"));
    }
    let mut child = weir_cmd(&data)
        .args(["stream", "deliver", "s", "--to"])
        .arg(&to)
        .args(["--max-age", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = Vec::new();
    let mut records = 0;
    while records < 6 {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("deliver printed {printed:?} and then nothing");
        };
        let value: Value = serde_json::from_str(&line).expect("JSON line");
        let path = PathBuf::from(value["file"].as_str().expect("file"));
        records += std::fs::read_to_string(&path).expect("a printed file exists").lines().count();
        printed.push(path);
    }
    assert!(child.try_wait().expect("status").is_none(), "deliver without --once keeps running");
    child.kill().expect("stop deliver");
    child.wait().expect("reap deliver");
    assert_eq!(records, 6);
    let after = json_lines(&data, &["stream", "deliver", "s", "--to", &to.to_string_lossy(), "--once"]);
    assert!(after.is_empty(), "the stopped delivery had checkpointed every file it printed: {after:?}");
}

#[test]
fn create_with_throughput_limits_refuses_writes_over_the_shard_rate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    let created = json_lines(data, &["stream", "create", "limited", "--shards", "1", "--throughput-limits"]);
    assert_eq!(created[0]["name"], "limited");
    json_lines(data, &["stream", "create", "free", "--shards", "1"]);
    // More than one batch's 5 MiB in records of 900 KB: the first batch takes the shard's
    // second of writes (and more), the next finds the bucket empty.
    let line = format!("{}\n", "x".repeat(900_000));
    let input = line.repeat(7);
    let out = weir_stdin(data, &["stream", "put", "free", "--key", "k"], input.as_bytes());
    assert!(out.status.success(), "no limits by default: {}", stderr(&out));
    assert_eq!(parse_lines(&out).len(), 7);
    let out = weir_stdin(data, &["stream", "put", "limited", "--key", "k"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("throughput exceeded"), "{}", stderr(&out));
    let put = parse_lines(&out).len();
    assert!((1..7).contains(&put), "the first batch went in, not all: {put}");
}

#[test]
fn usage_errors_of_the_new_commands_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    for args in [
        &["stream", "split", "s"][..],
        &["stream", "split", "s", "--shard", "0", "--at", "middle"],
        &["stream", "split", "s", "--shard", "0", "--at", "-1"],
        &["stream", "merge", "s", "--shard", "0"],
        &["stream", "consume", "s"],
        &["stream", "consume", "s", "--group", "g", "--limit", "0"],
        &["stream", "checkpoints"],
        &["stream", "deliver", "s"],
        &["stream", "deliver", "s", "--to", "d", "--compression", "lz4"],
        &["stream", "deliver", "s", "--to", "d", "--format", "csv"],
        &["stream", "deliver", "s", "--to", "d", "--max-bytes", "0"],
        &["stream", "deliver", "s", "--to", "d", "--max-age", "18446744073709551615"],
        &["stream", "create", "s", "--shards", "1", "--throughput-limits", "yes"],
    ] {
        let out = weir(data, args);
        assert_eq!(out.status.code(), Some(2), "weir {args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty(), "weir {args:?} says nothing");
    }
    json_lines(data, &["stream", "create", "s", "--shards", "1"]);
    fails(data, &["stream", "consume", "s", "--group", "bad/group"], 1, "consumer group");
    fails(data, &["stream", "consume", "s", "--group", "g", "--worker", "w w"], 1, "worker");
    fails(data, &["stream", "consume", "missing", "--group", "g"], 1, "does not exist");
    fails(data, &["stream", "deliver", "missing", "--to", "d", "--once"], 1, "does not exist");
}
