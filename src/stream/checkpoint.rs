//! Durable consumer checkpoints: per stream, a log of JSON records at
//! `streams/<name>/checkpoints/`, replayed at open into (group, shard) -> sequence number.
//!
//! Every checkpoint appends one record; when the log has grown past a few segments a snapshot
//! of every position is appended and the segments before it are deleted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::batch::{MAX_PAYLOAD_LEN, RECORD_OVERHEAD};
use crate::format::{Compression, RecordRef};
use crate::log::io::Vfs;
use crate::log::keys::LogEncryption;
use crate::log::{Durability, Log, LogConfig};

/// One record of the checkpoint log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CheckpointRecord {
    /// Group `group` has processed shard `shard` through sequence number `seq`.
    Checkpoint {
        /// Consumer group.
        group: String,
        /// Shard id.
        shard: u32,
        /// Last processed sequence number.
        seq: u64,
    },
    /// Every position at once; records before it are no longer needed.
    Snapshot {
        /// (group, shard, seq) triples.
        positions: Vec<(String, u32, u64)>,
    },
}

/// Checkpoints of one stream.
#[derive(Debug)]
pub struct CheckpointStore {
    log: Log,
    positions: Mutex<BTreeMap<(String, u32), u64>>,
}

/// Most bytes one position takes in a snapshot's JSON: `["<group>",<shard>,<seq>],` with a group
/// name of at most 128 characters that JSON never escapes (`[A-Za-z0-9_.-]`).
const POSITION_JSON_MAX: usize = 128 + 10 + 20 + 8;
/// Most positions a snapshot may hold: its record must fit one frame.
const MAX_SNAPSHOT_POSITIONS: usize = (MAX_PAYLOAD_LEN - RECORD_OVERHEAD - 64) / POSITION_JSON_MAX;

/// Segments of checkpoint log kept before a snapshot lets the older ones go.
const SNAPSHOT_AFTER_SEGMENTS: usize = 4;

impl CheckpointStore {
    /// Opens (or creates) the checkpoint log in `dir` and replays it.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        durability: Durability,
        encryption: Option<Arc<LogEncryption>>,
    ) -> Result<CheckpointStore> {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 4096,
            durability,
            compression: Compression::None,
            // Small and written once per checkpoint interval: keep its files tight.
            preallocate: false,
            encryption,
        };
        let log = Log::open(vfs, dir, config, 0)?;
        let mut positions = BTreeMap::new();
        log.for_each_from(log.first_seq(), |r| {
            let record: CheckpointRecord = serde_json::from_slice(&r.value)
                .map_err(|e| Error::corrupt(dir, 0, format!("checkpoint record {} does not decode: {e}", r.seq)))?;
            match record {
                CheckpointRecord::Checkpoint { group, shard, seq } => {
                    positions.insert((group, shard), seq);
                }
                CheckpointRecord::Snapshot { positions: all } => {
                    positions = all.into_iter().map(|(g, s, q)| ((g, s), q)).collect();
                }
            }
            Ok(())
        })?;
        Ok(CheckpointStore { log, positions: Mutex::new(positions) })
    }

    /// Brings back within its shard every checkpoint that lies beyond the shard's end (`ends`:
    /// shard -> next sequence number), durably, in every mode. Under `Interval` and `Never` a
    /// power cut can keep a checkpoint and lose the records it covers, whose numbers later puts
    /// are given again: resuming after the checkpoint would skip those new records. A
    /// checkpoint at or beyond the end becomes "through the last record there is" (none left
    /// if the shard is empty), recorded as a snapshot so that a later crash replays the same.
    pub fn clamp_to_ends(&self, ends: &BTreeMap<u32, u64>, now_ms: u64) -> Result<()> {
        let mut positions = self.positions.lock();
        let beyond = |((_, shard), seq): (&(String, u32), &u64)| ends.get(shard).is_some_and(|end| seq >= end);
        if !positions.iter().any(beyond) {
            return Ok(());
        }
        let clamped: BTreeMap<(String, u32), u64> = positions
            .iter()
            .filter_map(|((group, shard), &seq)| {
                let end = ends.get(shard).copied().unwrap_or(u64::MAX);
                let seq = if seq >= end { end.checked_sub(1)? } else { seq };
                Some(((group.clone(), *shard), seq))
            })
            .collect();
        let snapshot =
            CheckpointRecord::Snapshot { positions: clamped.iter().map(|((g, s), q)| (g.clone(), *s, *q)).collect() };
        self.append(&snapshot, now_ms)?;
        self.log.flush()?;
        *positions = clamped;
        Ok(())
    }

    /// The last checkpoint of `group` in `shard`.
    pub fn get(&self, group: &str, shard: u32) -> Option<u64> {
        self.positions.lock().get(&(group.to_string(), shard)).copied()
    }

    /// Every (group, shard) -> sequence number.
    pub fn all(&self) -> BTreeMap<(String, u32), u64> {
        self.positions.lock().clone()
    }

    /// Durably records a checkpoint.
    pub fn put(&self, group: &str, shard: u32, seq: u64, now_ms: u64) -> Result<()> {
        let mut positions = self.positions.lock();
        let record = CheckpointRecord::Checkpoint { group: group.to_string(), shard, seq };
        self.append(&record, now_ms)?;
        positions.insert((group.to_string(), shard), seq);
        if self.log.segment_infos().len() > SNAPSHOT_AFTER_SEGMENTS {
            // A snapshot is one record: with more positions than one frame holds, the log keeps
            // its checkpoint records instead, which replay to the same positions.
            if positions.len() <= MAX_SNAPSHOT_POSITIONS {
                let snapshot = CheckpointRecord::Snapshot {
                    positions: positions.iter().map(|((g, s), q)| (g.clone(), *s, *q)).collect(),
                };
                let at = self.append(&snapshot, now_ms)?;
                self.log.delete_below(at)?;
            }
        }
        Ok(())
    }

    fn append(&self, record: &CheckpointRecord, now_ms: u64) -> Result<u64> {
        let value = serde_json::to_vec(record).map_err(|e| Error::InvalidArgument(format!("checkpoint: {e}")))?;
        Ok(self.log.append(&[RecordRef { key: b"", value: &value }], now_ms)?.base_seq)
    }

    /// Syncs the log.
    pub fn flush(&self) -> Result<()> {
        self.log.flush()
    }

    /// The checkpoint log.
    pub(crate) fn log(&self) -> &Log {
        &self.log
    }
}
