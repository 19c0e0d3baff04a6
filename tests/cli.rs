//! The `weir` command line, driven as scripts drive it: exact JSON field names, exit codes,
//! stdin, the directory lock, and `verify` / `inspect` on clean and damaged directories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().expect("seq")).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(segment_files(&path));
        } else if path.extension().is_some_and(|e| e == "seg") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn create_put_read_describe_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    let created = json_lines(&data, &["stream", "create", "clicks", "--shards", "2", "--retention-hours", "48"]);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "clicks");
    assert_eq!(created[0]["retention_hours"], 48);

    let put = json_lines(&data, &["stream", "put", "clicks", "--key", "user-1", "hello world"]);
    assert_eq!(put.len(), 1);
    assert_eq!(keys(&put[0]), ["seq", "shard"]);
    assert_eq!(put[0]["seq"], 0);
    let shard = put[0]["shard"].as_u64().expect("shard id");
    let again = json_lines(&data, &["stream", "put", "clicks", "--key", "user-1", "second"]);
    assert_eq!((again[0]["shard"].as_u64(), again[0]["seq"].as_u64()), (Some(shard), Some(1)));

    let describe = json_lines(&data, &["stream", "describe", "clicks"]);
    assert_eq!(describe.len(), 1);
    let d = &describe[0];
    assert_eq!(keys(d), ["name", "shards"]);
    assert_eq!(d["name"], "clicks");
    let shards = d["shards"].as_array().expect("shards array");
    assert_eq!(shards.len(), 2);
    for s in shards {
        assert_eq!(keys(s), ["first_seq", "hash_end", "hash_start", "id", "last_seq", "open", "parents"]);
        assert!(s["hash_start"].as_str().expect("decimal string").parse::<u128>().is_ok());
        assert!(s["hash_end"].as_str().expect("decimal string").parse::<u128>().is_ok());
        assert_eq!(s["open"], true);
        assert_eq!(s["parents"], Value::Array(vec![]));
    }
    assert_eq!(shards[0]["hash_start"], "0");
    assert_eq!(shards[1]["hash_end"], u128::MAX.to_string());
    let written = &shards[shard as usize];
    assert_eq!((written["first_seq"].as_u64(), written["last_seq"].as_u64()), (Some(0), Some(1)));
    assert!(shards[1 - shard as usize]["first_seq"].is_null(), "the other shard is empty");

    let shard_arg = shard.to_string();
    let records = json_lines(&data, &["stream", "read", "clicks", "--shard", &shard_arg, "--from", "trim-horizon"]);
    assert_eq!(records.len(), 2);
    assert_eq!(keys(&records[0]), ["data", "key", "seq", "time_ms"]);
    assert_eq!(records[0]["key"], "user-1");
    assert_eq!(records[0]["data"], "hello world");
    assert_eq!(records[1]["data"], "second");
    assert!(records[0]["time_ms"].as_u64().expect("time") > 1_600_000_000_000);

    let list = json_lines(&data, &["stream", "list"]);
    assert_eq!(list, vec![serde_json::json!({ "name": "clicks" })]);
    json_lines(&data, &["stream", "delete", "clicks"]);
    assert!(json_lines(&data, &["stream", "list"]).is_empty());
}

#[test]
fn stdin_put_writes_every_line_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "lines", "--shards", "3"]);
    let input = b"first\nsecond\r\n\n\xff\xfe binary\nlast line without newline";
    let out = weir_stdin(data, &["stream", "put", "lines", "--key", "k"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let puts = parse_lines(&out);
    assert_eq!(puts.len(), 5, "one result per line");
    let shard = puts[0]["shard"].as_u64().expect("shard");
    assert!(puts.iter().all(|p| p["shard"].as_u64() == Some(shard)), "same key, same shard");
    assert_eq!(seqs(&puts), [0, 1, 2, 3, 4]);

    let shard_arg = shard.to_string();
    let records = json_lines(data, &["stream", "read", "lines", "--shard", &shard_arg, "--from", "trim-horizon"]);
    let texts: Vec<&Value> = records.iter().map(|r| &r["data"]).collect();
    assert_eq!(texts[..3], [&Value::from("first"), &Value::from("second"), &Value::from("")]);
    assert!(records[3].get("data").is_none(), "non-UTF-8 data is not given as text");
    assert_eq!(records[3]["data_base64"], "//4gYmluYXJ5");
    assert_eq!(records[4]["data"], "last line without newline");

    // An oversized line fails the command, but the lines before it are in and reported.
    let mut input = b"ok-1\nok-2\n".to_vec();
    input.extend(vec![b'x'; 2 << 20]);
    input.extend(b"\nnever\n");
    let out = weir_stdin(data, &["stream", "put", "lines", "--key", "k"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin line 3"), "{}", stderr(&out));
    assert_eq!(seqs(&parse_lines(&out)), [5, 6]);
}

#[test]
fn every_starting_position() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "s", "--shards", "1"]);
    let before = json_lines(data, &["stream", "put", "s", "--key", "k", "r0"]);
    assert_eq!(before[0]["shard"], 0);
    let out = weir_stdin(data, &["stream", "put", "s", "--key", "k"], b"r1\nr2\nr3\nr4\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let all = json_lines(data, &["stream", "read", "s", "--shard", "0", "--from", "trim-horizon"]);
    assert_eq!(seqs(&all), [0, 1, 2, 3, 4]);
    let read = |from: &str| seqs(&json_lines(data, &["stream", "read", "s", "--shard", "0", "--from", from]));
    assert_eq!(read("latest"), Vec::<u64>::new());
    assert_eq!(read("at:2"), [2, 3, 4]);
    assert_eq!(read("after:2"), [3, 4]);
    assert_eq!(read("at:5"), Vec::<u64>::new());
    assert_eq!(read("time:0"), [0, 1, 2, 3, 4]);
    let last_time = all[4]["time_ms"].as_u64().expect("time");
    let from_last = read(&format!("time:{last_time}"));
    assert!(!from_last.is_empty() && from_last.last() == Some(&4), "{from_last:?}");
    assert_eq!(read(&format!("time:{}", last_time + 60_000)), Vec::<u64>::new());
    let limited = json_lines(data, &["stream", "read", "s", "--shard", "0", "--from", "at:1", "--limit", "2"]);
    assert_eq!(seqs(&limited), [1, 2]);

    let beyond = weir(data, &["stream", "read", "s", "--shard", "0", "--from", "at:99"]);
    assert_eq!(beyond.status.code(), Some(1));
    assert!(stderr(&beyond).starts_with("weir: "), "{}", stderr(&beyond));
    let no_shard = weir(data, &["stream", "read", "s", "--shard", "7", "--from", "latest"]);
    assert_eq!(no_shard.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    for args in [
        &[][..],
        &["frobnicate"],
        &["stream", "read", "s", "--shard", "0"],
        &["stream", "read", "s", "--shard", "0", "--from", "yesterday"],
        &["stream", "read", "s", "--shard", "0", "--from", "at:x"],
        &["stream", "read", "s", "--shard", "0", "--from", "latest", "--limit", "0"],
        &["stream", "create", "s"],
        &["stream", "create", "s", "--shards", "-1"],
        &["stream", "put", "s", "data-without-key"],
        &["verify"],
    ] {
        let out = weir(data, args);
        assert_eq!(out.status.code(), Some(2), "weir {args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty(), "weir {args:?} says nothing");
    }
}

#[test]
fn errors_exit_1_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for name in ["../x", "a/b", "..", ""] {
        let out = weir(&data, &["stream", "create", name, "--shards", "1"]);
        assert_eq!(out.status.code(), Some(1), "name {name:?} accepted");
        let err = stderr(&out);
        assert!(err.starts_with("weir: invalid stream name"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(!tmp.path().join("x").exists(), "a bad name touched the file system");
    assert!(!data.exists(), "a bad name created the data directory");

    json_lines(&data, &["stream", "create", "s", "--shards", "1"]);
    for (args, expect) in [
        (&["stream", "create", "s", "--shards", "1"][..], "already exists"),
        (&["stream", "create", "t", "--shards", "0"], "shards"),
        (&["stream", "create", "t", "--shards", "1", "--retention-hours", "1"], "retention"),
        (&["stream", "describe", "missing"], "does not exist"),
        (&["stream", "put", "missing", "--key", "k", "v"], "does not exist"),
        (&["stream", "put", "s", "--key", "", "v"], "partition key"),
        (&["stream", "read", "../etc", "--shard", "0", "--from", "latest"], "invalid stream name"),
        (&["stream", "delete", "missing"], "does not exist"),
        (&["inspect", "/definitely/not/here"], "not/here"),
    ] {
        let out = weir(&data, args);
        assert_eq!(out.status.code(), Some(1), "weir {args:?}");
        let err = stderr(&out);
        assert!(err.starts_with("weir: ") && err.contains(expect), "weir {args:?}: {err}");
    }
}

#[test]
fn data_directory_comes_from_weir_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("from-env");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["stream", "create", "e", "--shards", "1"])
        .env("WEIR_DATA", &data)
        .current_dir(tmp.path())
        .output()
        .expect("run weir");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(data.join("streams").join("e").is_dir());
}

#[test]
fn verify_passes_clean_directories_and_names_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "v", "--shards", "1"]);
    let out = weir_stdin(data, &["stream", "put", "v", "--key", "k"], b"one\ntwo\n");
    assert!(out.status.success());
    for line in ["three", "four", "five"] {
        json_lines(data, &["stream", "put", "v", "--key", "k", line]);
    }
    let clean = weir(data, &["verify", data.to_str().expect("utf-8 path")]);
    assert_eq!(clean.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&clean.stdout), stderr(&clean));
    assert!(clean.stdout.is_empty());

    let segment = data.join("streams/v/shard-000000/00000000000000000000.seg");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    // Inside the payload of the first frame (48-byte segment header, 56-byte frame header).
    bytes[48 + 56 + 2] ^= 0x20;
    std::fs::write(&segment, &bytes).expect("write segment");
    let damaged = weir(data, &["verify", data.to_str().expect("utf-8 path")]);
    assert_eq!(damaged.status.code(), Some(1));
    let stdout = String::from_utf8(damaged.stdout.clone()).expect("UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "no problem listed; stderr: {}", stderr(&damaged));
    let first = lines[0];
    let (file, rest) = first.split_once(".seg:").expect("FILE:OFFSET: form");
    let (offset, message) = rest.split_once(": ").expect("FILE:OFFSET: form");
    assert_eq!(PathBuf::from(format!("{file}.seg")), segment);
    assert_eq!(offset.parse::<u64>().expect("numeric offset"), 48, "the damaged frame starts after the header");
    assert!(message.contains("checksum"), "{message}");
    for line in &lines {
        assert!(line.contains(".seg:") || line.contains(".idx:"), "{line}");
    }
    // Verify only reads: the damaged bytes are still there.
    assert_eq!(std::fs::read(&segment).expect("read segment"), bytes);
}

#[test]
fn inspect_json_and_text_describe_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "i", "--shards", "1"]);
    let big = "z".repeat(4000);
    for value in ["alpha", "beta", big.as_str()] {
        json_lines(data, &["stream", "put", "i", "--key", "k", value]);
    }
    let path = data.to_str().expect("utf-8 path");
    let all = json_lines(data, &["inspect", path, "--json"]);
    let lines: Vec<Value> = all.iter().filter(|l| l["kind"] == "segment").cloned().collect();
    assert!(lines.len() >= 2, "catalog and shard segments");
    let heads: Vec<&Value> = all.iter().filter(|l| l["kind"] == "head").collect();
    assert_eq!(lines.len() + heads.len(), all.len(), "segment and head lines only");
    let head = heads
        .iter()
        .find(|l| l["log"].as_str().is_some_and(|d| d.ends_with("shard-000000")))
        .expect("the shard's HEAD");
    // Every command closed the engine cleanly: nothing reserved past the records, all durable.
    assert_eq!(
        (head["active_base"].as_u64(), head["reserved_next"].as_u64(), head["durable_next"].as_u64()),
        (Some(0), Some(3), Some(3))
    );
    assert!(all.iter().all(|l| l.get("salt").is_none()), "the salt is never shown");
    let shard = lines
        .iter()
        .find(|l| l["log"].as_str().is_some_and(|d| d.ends_with("shard-000000")))
        .expect("the shard's segment");
    assert_eq!(shard["records"], 3);
    assert_eq!(shard["frames"], 3);
    assert_eq!(shard["compressed_frames"], 1, "the 4000-byte record compresses");
    assert_eq!((shard["base_seq"].as_u64(), shard["next_seq"].as_u64()), (Some(0), Some(3)));
    assert!(shard["first_time_ms"].as_u64() <= shard["last_time_ms"].as_u64());
    assert!(shard["damage"].is_null());
    assert_eq!((shard["version"].as_u64(), shard["skipped_from"].is_null()), (Some(2), true));
    assert!(shard["payload_bytes"].as_u64() > shard["stored_payload_bytes"].as_u64());

    let segment = segment_files(&data.join("streams/i/shard-000000"))[0].clone();
    let with_records = json_lines(data, &["inspect", segment.to_str().expect("utf-8"), "--json", "--records"]);
    let records: Vec<&Value> = with_records.iter().filter(|l| l["kind"] == "record").collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["data"], "alpha");
    assert_eq!(records[2]["data"], big.as_str());

    let text = weir(data, &["inspect", path, "--records"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    assert!(text.contains("\"beta\"") && text.contains("3 records"), "{text}");
}

#[test]
fn a_locked_directory_fails_after_waiting_but_verify_still_reads_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    json_lines(data, &["stream", "create", "l", "--shards", "1"]);
    json_lines(data, &["stream", "put", "l", "--key", "k", "v"]);
    let engine = weir::Engine::open(data, weir::Options::default()).expect("open engine");

    let started = Instant::now();
    let out = weir_cmd(data).args(["stream", "list"]).env("WEIR_LOCK_WAIT_MS", "300").output().expect("run weir");
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("weir: ") && err.contains("locked by another process"), "{err}");
    assert!(waited >= Duration::from_millis(300), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}, not the configured 300 ms");

    let verify = weir(data, &["verify", data.to_str().expect("utf-8 path")]);
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let inspect = weir(data, &["inspect", data.to_str().expect("utf-8 path"), "--json"]);
    assert!(inspect.status.success());

    drop(engine);
    assert_eq!(json_lines(data, &["stream", "list"]).len(), 1, "usable once released");
}

#[test]
fn verify_beside_a_busy_engine_finds_nothing_wrong() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().to_path_buf();
    let options = weir::Options { segment_bytes: 1024, ..weir::Options::default() };
    let engine = weir::Engine::open(&data, options).expect("open engine");
    engine.create_stream("busy", 2, None).expect("create stream");
    let stream = engine.stream("busy").expect("stream");
    // Counts puts; u64::MAX tells the writer to stop.
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || {
            for i in 0u64.. {
                if written.load(Ordering::SeqCst) == u64::MAX {
                    return;
                }
                let key = format!("key-{}", i % 7);
                stream.put(key.as_bytes(), format!("record number {i}").as_bytes()).expect("put");
                let _ = written.compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::SeqCst);
            }
        })
    };
    let started = Instant::now();
    let mut runs = 0;
    while runs < 3 || (written.load(Ordering::SeqCst) < 200 && started.elapsed() < Duration::from_secs(5)) {
        let out = weir(&data, &["verify", data.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        runs += 1;
    }
    written.store(u64::MAX, Ordering::SeqCst);
    writer.join().expect("writer");
    drop(engine);
    let segments = segment_files(&data.join("streams/busy")).len();
    assert!(segments > 2, "the writer rolled segments meanwhile ({segments} segments after {runs} runs)");
    let out = weir(&data, &["verify", data.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[path = "common/child.rs"]
mod child;

/// The last segment file of a log directory and (valid bytes, next sequence number) as
/// `inspect --json` reports them.
fn last_segment(data: &Path, log: &Path) -> (PathBuf, u64, u64) {
    let lines = json_lines(data, &["inspect", log.to_str().expect("utf-8"), "--json"]);
    let last = lines.last().expect("a segment");
    let path = PathBuf::from(last["path"].as_str().expect("path"));
    (path, last["valid_bytes"].as_u64().expect("valid bytes"), last["next_seq"].as_u64().expect("next seq"))
}

/// What a crash normally leaves is not damage: a `weir stream put` killed with SIGKILL in the
/// middle of writing, then the power cut at the worst moments (a torn tail: part of a frame
/// past the last whole one; a segment roll cut short: a 0-byte new segment). `verify` prints
/// notes and exits 0 (and the engine opens with every acknowledged record); a flipped bit in
/// a durable frame is damage and exits 1. Each line says which it is.
#[test]
fn verify_tells_what_a_crash_leaves_from_damage() {
    use std::io::Write;
    use std::process::Stdio;

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().to_path_buf();
    json_lines(&data, &["stream", "create", "c", "--shards", "1"]);
    let mut writer = weir_cmd(&data)
        .args(["stream", "put", "c", "--key", "k"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let mut stdin = writer.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        for i in 0u64.. {
            if stdin.write_all(format!("record {i} {}\n", "x".repeat((i % 200) as usize)).as_bytes()).is_err() {
                return; // killed
            }
        }
    });
    let (acks, reader) = child::whole_lines(writer.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = 0u64;
    while acked < 50 {
        let left = deadline.saturating_duration_since(Instant::now());
        acks.recv_timeout(left).expect("the writer acknowledges puts");
        acked += 1;
    }
    writer.kill().expect("SIGKILL");
    writer.wait().expect("reap");
    feeder.join().expect("feeder");
    acked += acks.try_iter().count() as u64;
    reader.join().expect("reader");

    let path = data.to_str().expect("utf-8 path");
    let killed = weir(&data, &["verify", path]);
    assert_eq!(killed.status.code(), Some(0), "after SIGKILL: {}", String::from_utf8_lossy(&killed.stdout));

    // The power cut: a torn write past the shard's last whole frame ...
    let shard = data.join("streams/c/shard-000000");
    let (segment, valid, _) = last_segment(&data, &shard);
    let bytes = std::fs::read(&segment).expect("read segment");
    let first_frame = weir::format::segment_header::SEGMENT_HEADER_LEN;
    let torn: Vec<u8> = bytes[first_frame..first_frame + 29].to_vec(); // the first 29 bytes of a frame
    let mut file = std::fs::OpenOptions::new().write(true).open(&segment).expect("open segment");
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(valid)).expect("seek");
    file.write_all(&torn).expect("write torn tail");
    drop(file);
    // ... and a roll of the catalog cut short: its new segment exists, empty.
    let catalog = data.join("catalog");
    let (_, _, next) = last_segment(&data, &catalog);
    let empty = catalog.join(format!("{next:020}.seg"));
    std::fs::File::create(&empty).expect("create empty segment");

    let crashed = weir(&data, &["verify", path]);
    let stdout = String::from_utf8_lossy(&crashed.stdout).into_owned();
    assert_eq!(crashed.status.code(), Some(0), "after a power cut: {stdout}{}", stderr(&crashed));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines.iter().all(|l| l.contains(": note: ")), "{stdout}");
    assert!(lines[0].starts_with(&format!("{}:0: note: ", empty.display())), "{stdout}");
    assert!(lines[1].starts_with(&format!("{}:{valid}: note: ", segment.display())), "{stdout}");

    {
        let engine = weir::Engine::open(&data, weir::Options::default()).expect("the engine opens");
        let stream = engine.stream("c").expect("stream");
        let mut it = stream.iterator(0, weir::stream::StartingPosition::TrimHorizon).expect("iterator");
        let mut read = 0u64;
        loop {
            let batch = it.next_batch(1000).expect("read");
            if batch.records.is_empty() {
                break;
            }
            read += batch.records.len() as u64;
        }
        assert!(read >= acked, "{read} records read, {acked} acknowledged");
    }

    // A flipped bit in the first frame of the catalog (its next record follows it; the shard
    // may hold one frame only, if stdin delivered every line at once) is damage.
    let segment = catalog.join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let first_frame = weir::format::segment_header::SEGMENT_HEADER_LEN;
    bytes[first_frame + weir::format::batch::FRAME_HEADER_LEN + 3] ^= 0x04;
    std::fs::write(&segment, &bytes).expect("write segment");
    let damaged = weir(&data, &["verify", path]);
    let stdout = String::from_utf8_lossy(&damaged.stdout).into_owned();
    assert_eq!(damaged.status.code(), Some(1), "{stdout}");
    let expected = format!("{}:{first_frame}: damage: ", segment.display());
    assert!(stdout.lines().any(|l| l.starts_with(&expected)), "{stdout}");
}
