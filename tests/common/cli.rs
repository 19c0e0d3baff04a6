//! Helpers for the CLI tests: run the built `weir` binary on a data directory and read its
//! JSON lines. Included with `#[path]` by each CLI test file (not every file uses all of them).
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn weir_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("--data").arg(data).env_remove("WEIR_DATA").env_remove("WEIR_LOCK_WAIT_MS").env_remove("WEIR_KEY_FILE");
    cmd
}

pub fn weir(data: &Path, args: &[&str]) -> Output {
    weir_cmd(data).args(args).output().expect("run weir")
}

pub fn weir_stdin(data: &Path, args: &[&str], input: &[u8]) -> Output {
    run_with_stdin(weir_cmd(data).args(args), input)
}

/// Runs `cmd` with `input` on its stdin, written from another thread so that a command that
/// prints while it reads cannot fill its stdout pipe and stall both sides.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn weir");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // The command may stop reading early (it fails on the first refused batch); what it did
    // is in its output, which the caller checks.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for weir");
    let _ = writer.join();
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs weir, expects success, and parses every stdout line as one JSON object.
pub fn json_lines(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = weir(data, args);
    assert!(out.status.success(), "weir {args:?} failed: {}", stderr(&out));
    parse_lines(&out)
}

pub fn parse_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Runs weir and expects exit code `code` with `expect` in a `weir: ` message and no output.
pub fn fails(data: &Path, args: &[&str], code: i32, expect: &str) {
    let out = weir(data, args);
    assert_eq!(out.status.code(), Some(code), "weir {args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(expect), "weir {args:?}: {err:?} lacks {expect:?}");
    if code == 1 {
        assert!(err.starts_with("weir: "), "{err}");
    }
    assert!(out.stdout.is_empty(), "weir {args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
}

pub fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}
