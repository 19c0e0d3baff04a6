//! Per-shard traffic counters and a snapshot of what a shard holds, for monitoring (the
//! server's `/metrics`). Counters start at zero when the engine opens.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Records and bytes written to and read from one shard since the engine opened.
#[derive(Debug, Default)]
pub(crate) struct ShardCounters {
    written_records: AtomicU64,
    written_bytes: AtomicU64,
    read_records: AtomicU64,
    read_bytes: AtomicU64,
}

impl ShardCounters {
    /// Counts records appended (data plus partition key bytes).
    pub(crate) fn wrote(&self, records: usize, bytes: usize) {
        self.written_records.fetch_add(records as u64, Ordering::Relaxed);
        self.written_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts records served to a reader.
    pub(crate) fn read(&self, records: usize, bytes: usize) {
        self.read_records.fetch_add(records as u64, Ordering::Relaxed);
        self.read_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A shard's contents and traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShardStats {
    /// Records stored (within retention).
    pub records: u64,
    /// Bytes of the shard's segments on disk (frames and headers).
    pub bytes: u64,
    /// Records written since the engine opened.
    pub written_records: u64,
    /// Bytes (data plus partition keys) written since the engine opened.
    pub written_bytes: u64,
    /// Records read since the engine opened.
    pub read_records: u64,
    /// Bytes (data plus partition keys) read since the engine opened.
    pub read_bytes: u64,
}

impl super::Shard {
    /// What the shard holds and how much went through it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// engine.create_stream("events", 1, None)?;
    /// let stream = engine.stream("events")?;
    /// stream.put(b"k", b"hello")?;
    /// let stats = stream.shard(0)?.stats();
    /// assert_eq!((stats.records, stats.written_records, stats.written_bytes), (1, 1, 6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> ShardStats {
        let c = &self.counters;
        ShardStats {
            records: self.log.next_seq().saturating_sub(self.log.first_seq()),
            bytes: self.log.segment_infos().iter().map(|s| s.len).sum(),
            written_records: c.written_records.load(Ordering::Relaxed),
            written_bytes: c.written_bytes.load(Ordering::Relaxed),
            read_records: c.read_records.load(Ordering::Relaxed),
            read_bytes: c.read_bytes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::stream::StartingPosition;
    use crate::{Engine, Options};

    #[test]
    fn counters_follow_writes_reads_and_survive_a_split() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Options { background: false, ..Options::default() }).unwrap();
        engine.create_stream("s", 1, None).unwrap();
        let stream = engine.stream("s").unwrap();
        for i in 0..5u8 {
            stream.put(b"key", &[i; 10]).unwrap();
        }
        let mut it = stream.iterator(0, StartingPosition::TrimHorizon).unwrap();
        let batch = it.next_batch(3).unwrap();
        assert_eq!(batch.records.len(), 3);
        let before = stream.shard(0).unwrap().stats();
        assert_eq!(before.records, 5);
        assert_eq!((before.written_records, before.written_bytes), (5, 5 * 13));
        assert_eq!((before.read_records, before.read_bytes), (3, 3 * 13));
        assert!(before.bytes >= before.written_bytes, "segments hold at least the data: {before:?}");
        engine.split_shard("s", 0, None).unwrap();
        let after = stream.shard(0).unwrap().stats();
        assert_eq!(after.written_records, 5, "the closed parent keeps its counters");
    }
}
