//! Real faults on weir's memory maps become `Error::Io`, never a SIGBUS that kills the process.
//!
//! The cheapest real fault: a file cut short under a live map (an access to a page wholly past
//! the end of a mapped file raises SIGBUS on Linux, as a read error of the disk would). Each
//! scenario runs in a child process (this test binary, run again on that one test with
//! `WEIR_MAP_FAULT_CHILD` set), so a fault the engine does not handle kills the child, not the
//! test runner, and shows here as the signal it died of. The same faults injected through
//! `FaultyFs` (reads and writes through its maps) are in `tests/fault_injection.rs`.
#![cfg(target_os = "linux")]

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use weir::format::{Compression, RecordRef};
use weir::log::io::RealFs;
use weir::log::{Durability, Log, LogConfig};
use weir::stream::StartingPosition;
use weir::{Engine, Error, Options};

const CHILD: &str = "WEIR_MAP_FAULT_CHILD";
/// Where a segment's first frame starts: cutting a file here leaves its header only.
const HEADER: u64 = weir::format::segment_header::SEGMENT_HEADER_LEN as u64;

/// What the child running `test` did.
struct ChildRun {
    status: std::process::ExitStatus,
    output: String,
}

/// In the test runner: runs `test` in a child process and returns how it ended. In the child:
/// returns `None`, and the caller runs the scenario.
fn run_in_child(test: &str) -> Option<ChildRun> {
    if std::env::var_os(CHILD).is_some() {
        return None;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some(ChildRun { status: out.status, output })
}

/// The child ran `test` to the end and passed.
fn assert_passed(test: &str, run: ChildRun) {
    assert!(
        run.status.success(),
        "the child running {test} ended with {:?} (signal {:?}):\n{}",
        run.status,
        run.status.signal(),
        run.output
    );
    assert!(run.output.contains(&format!("test {test} ... ok")), "the child did not run {test}:\n{}", run.output);
}

/// Cuts the file at `path` to `len` bytes behind the back of whatever has it mapped.
fn cut(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(len)).expect("cut the file");
}

/// Uncompressed, so the records span many pages of the file.
fn log_config() -> LogConfig {
    LogConfig { durability: Durability::Always, compression: Compression::None, ..LogConfig::default() }
}

fn value(i: u8) -> Vec<u8> {
    vec![i; 3000]
}

#[test]
fn a_read_of_a_segment_cut_short_under_its_map_is_an_io_error() {
    const TEST: &str = "a_read_of_a_segment_cut_short_under_its_map_is_an_io_error";
    if let Some(run) = run_in_child(TEST) {
        return assert_passed(TEST, run);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(Arc::new(RealFs), dir.path(), log_config(), 0).expect("open");
    for i in 0..50u8 {
        log.append(&[RecordRef { key: b"k", value: &value(i) }], 1).expect("append");
    }
    let before = log.read(0, 100, usize::MAX).expect("a read maps the segment");
    assert_eq!(before.len(), 50);
    let segment = log.segment_infos()[0].path.clone();
    cut(&segment, HEADER);
    match log.read(10, 100, usize::MAX) {
        Err(Error::Io { path, .. }) => assert_eq!(path, segment),
        other => panic!("a read past the end of the mapped file returned {other:?}"),
    }
    // A new map of the short file faults the same way: nothing is served from it, ever.
    for from in [10, 49] {
        let again = log.read(from, 100, usize::MAX);
        assert!(matches!(again, Err(Error::Io { .. })), "read from {from} after the cut: {again:?}");
    }
    // The first frame began in the page the file now ends in, whose bytes past the end read as
    // zeros without a fault: no frame there, which is damage, not data.
    let first = log.read(0, 100, usize::MAX);
    assert!(matches!(first, Err(Error::Corrupt { offset: HEADER, .. })), "read from 0 after the cut: {first:?}");
    drop(before);
}

/// Records are slices of the map. Bytes a caller still holds from a page that then faults are
/// never read as the zeros that stand in for the page inside weir: weir fences the page off
/// once its own access is over, so touching those bytes ends the process (as before weir had a
/// handler), and a page weir never touched faults for the caller as it always did.
#[test]
fn bytes_a_caller_holds_from_a_page_that_faulted_are_never_read_as_zeros() {
    const TEST: &str = "bytes_a_caller_holds_from_a_page_that_faulted_are_never_read_as_zeros";
    if let Some(run) = run_in_child(TEST) {
        assert!(run.output.contains("touching a held record"), "the child died too early:\n{}", run.output);
        let signal = run.status.signal();
        assert!(
            signal == Some(libc::SIGSEGV) || signal == Some(libc::SIGBUS),
            "the child read a faulted page instead of dying: {:?}\n{}",
            run.status,
            run.output
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(Arc::new(RealFs), dir.path(), log_config(), 0).expect("open");
    for i in 0..50u8 {
        log.append(&[RecordRef { key: b"k", value: &value(i) }], 1).expect("append");
    }
    let held = log.read(0, 100, usize::MAX).expect("read");
    cut(&log.segment_infos()[0].path, HEADER);
    assert!(matches!(log.read(10, 100, usize::MAX), Err(Error::Io { .. })), "weir's own read faults");
    println!("touching a held record");
    // Record 10 lies in the pages weir's read faulted on (and fenced off).
    let sum: u64 = held[10].value.iter().map(|&b| u64::from(b)).sum();
    panic!("read a held record of a faulted page (sum {sum}) without ending the process");
}

#[test]
fn a_write_through_the_map_past_the_end_of_a_cut_file_fails_and_poisons_the_log() {
    const TEST: &str = "a_write_through_the_map_past_the_end_of_a_cut_file_fails_and_poisons_the_log";
    if let Some(run) = run_in_child(TEST) {
        return assert_passed(TEST, run);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = Log::open(Arc::new(RealFs), dir.path(), log_config(), 0).expect("open");
        log.append(&[RecordRef { key: b"k", value: b"acknowledged" }], 1).expect("append");
        let info = log.segment_infos().remove(0);
        // The frames end at `info.len`; the preallocated zeros after them go, so the next frame
        // (three pages, copied through the writable map) lands wholly past the end of the file.
        cut(&info.path, info.len);
        let big = vec![7u8; 12_000];
        match log.append(&[RecordRef { key: b"k", value: &big }], 2) {
            Err(Error::Io { path, .. }) => assert_eq!(path, info.path),
            other => panic!("a write through the map past the end of the file returned {other:?}"),
        }
        assert!(log.is_poisoned(), "a failed write poisons the log");
        let again = log.append(&[RecordRef { key: b"k", value: b"refused" }], 3);
        assert!(matches!(again, Err(Error::Poisoned { .. })), "{again:?}");
    }
    let log = Log::open(Arc::new(RealFs), dir.path(), log_config(), 0).expect("reopen");
    let records = log.read(0, 10, usize::MAX).expect("read");
    assert_eq!(records.len(), 1, "the acknowledged record and nothing else");
    assert_eq!(&records[0].value[..], b"acknowledged");
    log.append(&[RecordRef { key: b"k", value: b"after" }], 4).expect("writes continue after a reopen");
}

#[test]
fn a_stream_read_of_a_shard_cut_short_under_its_map_is_an_io_error() {
    const TEST: &str = "a_stream_read_of_a_shard_cut_short_under_its_map_is_an_io_error";
    if let Some(run) = run_in_child(TEST) {
        return assert_passed(TEST, run);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options { background: false, compression: Compression::None, ..Options::default() };
    let engine = Engine::open(dir.path(), options).expect("open");
    engine.create_stream("s", 1, None).expect("stream");
    let stream = engine.stream("s").expect("stream");
    for i in 0..40u8 {
        stream.put(b"key", &value(i)).expect("put");
    }
    let mut it = stream.iterator(0, StartingPosition::TrimHorizon).expect("iterator");
    assert_eq!(it.next_batch(100).expect("read").records.len(), 40);
    let shard_dir = dir.path().join("streams/s/shard-000000");
    let segment = std::fs::read_dir(&shard_dir)
        .expect("shard")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment");
    cut(&segment, HEADER);
    // From the tenth record on: its frame lies in a page wholly past the new end of the file
    // (bytes past the end in the file's last page read as zeros without a fault).
    let mut it = stream.iterator(0, StartingPosition::AtSequence(10)).expect("iterator");
    match it.next_batch(100) {
        Err(Error::Io { .. }) => {}
        other => panic!("a read of the cut shard returned {:?}", other.map(|b| b.records.len())),
    }
}

/// A SIGBUS at an address outside weir's maps is not weir's to handle: it still ends the
/// process as it did before weir's handler was installed (here through the handler the Rust
/// runtime had installed, which it chains to).
#[test]
fn a_fault_outside_weirs_maps_still_kills_the_process() {
    const TEST: &str = "a_fault_outside_weirs_maps_still_kills_the_process";
    if let Some(run) = run_in_child(TEST) {
        assert_eq!(run.status.signal(), Some(libc::SIGBUS), "the child should die of SIGBUS:\n{}", run.output);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(Arc::new(RealFs), dir.path(), log_config(), 0).expect("open");
    log.append(&[RecordRef { key: b"k", value: b"v" }], 1).expect("append installs the handler");
    log.read(0, 1, usize::MAX).expect("read");
    let path = dir.path().join("not-weirs");
    std::fs::write(&path, vec![1u8; 3 * 4096]).expect("write");
    let file = std::fs::File::open(&path).expect("open");
    // SAFETY: the file is this test's own; cutting it under the map is the point.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    cut(&path, 0);
    // A volatile read, so the access is not optimised away: it must raise SIGBUS.
    // SAFETY: the address is inside `map`; the page behind it is gone, which is the test.
    let byte = unsafe { std::ptr::read_volatile(map.as_ptr().add(8192)) };
    panic!("read {byte} from a page past the end of a file without a fault");
}
