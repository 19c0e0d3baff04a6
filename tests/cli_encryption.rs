//! Encryption at rest from the command line: `--key-file` and `$WEIR_KEY_FILE` for every
//! command, `weir keygen NAME >> FILE`, `weir rekey`, the exact error lines, and `inspect`,
//! `verify` and `salvage` with and without the key.

use std::path::Path;
use std::process::Output;

#[path = "common/cli.rs"]
mod cli_support;
use cli_support::*;

fn keygen(name: &str) -> String {
    let out = weir(Path::new("unused"), &["keygen", name]);
    assert!(out.status.success(), "keygen: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn with_key(data: &Path, key_file: &Path, args: &[&str]) -> Output {
    weir_cmd(data).arg("--key-file").arg(key_file).args(args).output().expect("run weir")
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn write_key_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write key file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn keygen_prints_one_key_file_line_of_32_random_bytes() {
    let a = keygen("2025-01");
    let b = keygen("2025-01");
    let (name, hex) = a.trim_end().split_once(' ').expect("NAME HEX64");
    assert_eq!(name, "2025-01");
    assert!(hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "{a:?}");
    assert!(a.ends_with('\n') && a.lines().count() == 1);
    assert_ne!(a, b, "two keys are never the same");
    let bad = weir(Path::new("unused"), &["keygen", "no/slash"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).starts_with("weir: invalid argument: key version name"), "{}", stderr(&bad));
}

#[test]
fn an_encrypted_directory_needs_its_key_for_every_command_and_says_which_key_is_wrong() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, keys, other) = (tmp.path().join("d"), tmp.path().join("keys"), tmp.path().join("other"));
    write_key_file(&keys, &keygen("v1"));
    write_key_file(&other, &keygen("v1"));
    ok(with_key(&data, &keys, &["stream", "create", "s", "--shards", "1"]), "create");
    ok(with_key(&data, &keys, &["stream", "put", "s", "--key", "k", "secret-record"]), "put");
    ok(with_key(&data, &keys, &["queue", "create", "q"]), "queue create");
    ok(with_key(&data, &keys, &["queue", "send", "q", "secret-body"]), "send");
    let read = ok(with_key(&data, &keys, &["stream", "read", "s", "--shard", "0", "--from", "trim-horizon"]), "read");
    assert!(read.contains("\"data\":\"secret-record\""), "{read}");
    // The environment variable does what the flag does.
    let out = weir_cmd(&data)
        .env("WEIR_KEY_FILE", &keys)
        .args(["queue", "receive", "q", "--max", "1"])
        .output()
        .expect("run weir");
    assert!(ok(out, "receive with $WEIR_KEY_FILE").contains("secret-body"));

    let without = weir(&data, &["stream", "list"]);
    assert_eq!(without.status.code(), Some(1));
    assert_eq!(
        stderr(&without),
        format!(
            "weir: {} is encrypted at rest: open it with its key file (--key-file FILE or $WEIR_KEY_FILE)\n",
            data.display()
        )
    );
    let wrong = with_key(&data, &other, &["stream", "list"]);
    assert_eq!(wrong.status.code(), Some(1));
    let lines: Vec<String> = stderr(&wrong).lines().map(String::from).collect();
    assert_eq!(lines[0], format!("weir: wrong encryption key for {}", data.display()));
    assert!(lines[1].starts_with("weir: key version \"v1\""), "{lines:?}");
    for (path, bytes) in walk(&data) {
        for secret in [&b"secret-record"[..], b"secret-body"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} holds a secret", path.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
    out
}

#[test]
fn rotation_then_rekey_lets_the_old_version_go() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (tmp.path().join("d"), tmp.path().join("keys"));
    let v1 = keygen("v1");
    write_key_file(&keys, &v1);
    ok(with_key(&data, &keys, &["stream", "create", "s", "--shards", "1"]), "create");
    ok(with_key(&data, &keys, &["stream", "put", "s", "--key", "k", "one"]), "put");
    let v2 = keygen("v2");
    write_key_file(&keys, &format!("{v1}{v2}"));
    ok(with_key(&data, &keys, &["stream", "put", "s", "--key", "k", "two"]), "put under v2");
    let inspect = ok(with_key(&data, &keys, &["inspect", data.to_str().expect("utf-8")]), "inspect");
    assert!(inspect.contains("encrypted: data keys wrapped under v1 (1), v2 (1)"), "{inspect}");
    let report: serde_json::Value =
        serde_json::from_str(ok(with_key(&data, &keys, &["rekey"]), "rekey").trim()).expect("JSON");
    assert_eq!(report["key_version"], "v2");
    assert!(report["data_keys_rewrapped"].as_u64().expect("count") >= 2, "{report}");
    write_key_file(&keys, &v2);
    let read = ok(with_key(&data, &keys, &["stream", "read", "s", "--shard", "0", "--from", "trim-horizon"]), "read");
    assert_eq!(read.lines().count(), 2, "{read}");
    let plain = tmp.path().join("plain");
    ok(weir(&plain, &["stream", "create", "s", "--shards", "1"]), "plain create");
    let refused = with_key(&plain, &keys, &["rekey"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("created without encryption"), "{}", stderr(&refused));
}

#[test]
fn inspect_verify_and_salvage_check_structure_without_the_key_and_contents_with_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (tmp.path().join("d"), tmp.path().join("keys"));
    write_key_file(&keys, &keygen("v1"));
    ok(with_key(&data, &keys, &["stream", "create", "s", "--shards", "1"]), "create");
    ok(with_key(&data, &keys, &["stream", "put", "s", "--key", "k", "hello"]), "put");
    let dir = data.to_str().expect("utf-8");
    ok(weir(&data, &["verify", dir]), "verify without the key");
    ok(with_key(&data, &keys, &["verify", dir]), "verify with the key");
    let shard = data.join("streams/s/shard-000000");
    let records = with_key(&data, &keys, &["inspect", shard.to_str().expect("utf-8"), "--records", "--json"]);
    let records = ok(records, "inspect --records with the key");
    assert!(records.contains("\"data\":\"hello\""), "{records}");
    let without = weir(&data, &["inspect", shard.to_str().expect("utf-8"), "--records"]);
    assert_eq!(without.status.code(), Some(1));
    assert!(stderr(&without).contains("is encrypted at rest"), "{}", stderr(&without));
    let salvage = ok(with_key(&data, &keys, &["salvage", dir, "--json"]), "salvage with the key");
    let report: serde_json::Value = serde_json::from_str(salvage.trim()).expect("JSON");
    assert_eq!(report["engine_opened"], true, "{report}");
}
