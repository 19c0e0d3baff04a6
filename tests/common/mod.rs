//! Helpers shared by the integration tests: engine options for tests, reading a whole shard,
//! copying a data directory, a small seeded random generator.
#![allow(dead_code)]

pub mod child;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir::format::Compression;
use weir::stream::{StartingPosition, Stream, StreamRecord};
use weir::{Durability, Error, ManualClock, Options};

/// Options for a test engine: manual clock, no background thread, small segments.
pub fn test_options(clock: Arc<ManualClock>, segment_bytes: u64) -> Options {
    Options {
        clock,
        background: false,
        segment_bytes,
        compression: Compression::None,
        durability: Durability::Never,
        ..Options::default()
    }
}

/// A key file of one version, for tests that run in an encrypted data directory.
pub fn test_key_source() -> weir::KeySource {
    weir::KeySource::from_text(&format!("test {}\n", "5a".repeat(32))).expect("test key")
}

/// Creates the standard queues `dlq` and `queue`, which moves a message to `dlq` at the receive
/// after its `max_receives`th.
pub fn create_with_dead_letter_queue(engine: &weir::Engine, queue: &str, dlq: &str, max_receives: u32) {
    use weir::queue::{QueueConfig, RedrivePolicy};
    engine.create_queue(dlq, QueueConfig::default()).expect("create the dead-letter queue");
    let redrive = Some(RedrivePolicy { dead_letter_queue: dlq.into(), max_receives });
    engine.create_queue(queue, QueueConfig { redrive, ..QueueConfig::default() }).expect("create the queue");
}

/// A temporary directory in memory (`/dev/shm`) where the machine has one, else in the temp
/// dir: for tests that open many engines and do not test durability, so fsyncs cost nothing.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// What reading a shard to its end returned: the records served before the first error, and
/// that error if there was one.
#[derive(Debug)]
pub struct ReadOutcome {
    /// Every record served, in the order served.
    pub records: Vec<StreamRecord>,
    /// The error that stopped the read, if any.
    pub error: Option<Error>,
}

/// Reads shard `shard` of `stream` from `start` in batches of `limit` until a batch comes back
/// empty or a read fails. Panics if the read does not end within `max_batches` batches.
pub fn read_to_end(stream: &Stream, shard: u32, start: StartingPosition, limit: usize) -> ReadOutcome {
    let mut records = Vec::new();
    let mut iterator = match stream.iterator(shard, start) {
        Ok(it) => it,
        Err(error) => return ReadOutcome { records, error: Some(error) },
    };
    for _ in 0..100_000 {
        match iterator.next_batch(limit) {
            Ok(batch) => {
                assert!(batch.records.len() <= limit, "a batch of {} records for limit {limit}", batch.records.len());
                if batch.records.is_empty() {
                    assert_eq!(batch.behind_records, 0, "an empty batch claims records are waiting");
                    return ReadOutcome { records, error: None };
                }
                records.extend(batch.records);
            }
            Err(error) => return ReadOutcome { records, error: Some(error) },
        }
    }
    panic!("reading shard {shard} from {start:?} did not reach the end");
}

/// Copies the directory tree `from` into `to` (created if needed). Skips the lock file.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for entry in std::fs::read_dir(from).expect("list directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The segment files of a log directory, oldest first.
pub fn segment_files(log_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_dir)
        .expect("list log directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// The index file that belongs to a segment file.
pub fn index_file_of(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// A small xorshift generator: deterministic from its seed, good enough to pick delays, keys
/// and payloads in tests.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// A seed from the clock and the process id, for runs that should differ.
    pub fn seed_from_time() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ (u64::from(std::process::id()) << 32)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[low, high)`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high, "empty range {low}..{high}");
        low + self.next_u64() % (high - low)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex; `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok().filter(|p| p.len() == 2)?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// Decodes standard base64 (padded or not); `None` if it is not base64. (Encoding is
/// `weir::text::base64`.)
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)?) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}
