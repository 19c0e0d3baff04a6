//! Shard iterators: a position in one shard, read forward in batches.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::stream::Shard;

/// Largest number of records one `next_batch` returns, as Kinesis's GetRecords.
pub const MAX_RECORDS_PER_READ: usize = 10_000;
/// Largest number of bytes one `next_batch` returns, as Kinesis's GetRecords.
pub const MAX_BYTES_PER_READ: usize = 10 << 20;

/// Where an iterator starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record still stored.
    TrimHorizon,
    /// Just after the newest record: only records put from now on.
    Latest,
    /// At this sequence number (or the oldest stored record, if it has expired).
    AtSequence(u64),
    /// Just after this sequence number.
    AfterSequence(u64),
    /// At the first record put at or after this time (milliseconds since the Unix epoch).
    AtTimestamp(u64),
}

/// A record read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Sequence number within the shard.
    pub seq: u64,
    /// The partition key it was put with.
    pub partition_key: Bytes,
    /// The data.
    pub data: Bytes,
    /// When it was put (approximate arrival time), milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBatch {
    /// The records, in sequence order.
    pub records: Vec<StreamRecord>,
    /// Sequence numbers between the reader and the tip of the shard after this batch: the
    /// records waiting, plus any numbers a crash skipped among them (never written).
    pub behind_records: u64,
    /// Milliseconds between the last record returned and the newest record of the shard
    /// (0 when caught up), like Kinesis's MillisBehindLatest.
    pub millis_behind_latest: u64,
}

/// A reader's position in one shard.
#[derive(Debug, Clone)]
pub struct ShardIterator {
    shard: Arc<Shard>,
    next_seq: u64,
}

impl ShardIterator {
    pub(crate) fn new(shard: Arc<Shard>, start: StartingPosition) -> Result<ShardIterator> {
        let log = &shard.log;
        let next = log.next_seq();
        let first = log.first_seq();
        let next_seq = match start {
            StartingPosition::TrimHorizon => first,
            StartingPosition::Latest => next,
            StartingPosition::AtSequence(seq) | StartingPosition::AfterSequence(seq) => {
                let at = if let StartingPosition::AfterSequence(_) = start { seq.saturating_add(1) } else { seq };
                if at > next {
                    return Err(Error::InvalidArgument(format!(
                        "sequence number {seq} is beyond the end of shard {} (next is {next})",
                        shard.meta.id
                    )));
                }
                at.max(first)
            }
            StartingPosition::AtTimestamp(ms) => log.seq_at_time(ms)?.max(first),
        };
        Ok(ShardIterator { shard, next_seq })
    }

    /// The sequence number the next read starts at.
    pub fn position(&self) -> u64 {
        self.next_seq
    }

    /// The shard being read.
    pub fn shard_id(&self) -> u32 {
        self.shard.meta.id
    }

    /// Reads up to `limit` records (at most 10,000 and 10 MiB) and moves past them.
    pub fn next_batch(&mut self, limit: usize) -> Result<ReadBatch> {
        self.next_batch_via(limit, |shard, from, limit| shard.read_limited(from, limit))
    }

    /// [`ShardIterator::next_batch`] outside the shard's shared read limit, at most
    /// `max_bytes`: for a reader with a rate of its own (enhanced fan-out).
    pub(crate) fn next_batch_dedicated(&mut self, limit: usize, max_bytes: usize) -> Result<ReadBatch> {
        self.next_batch_via(limit, |shard, from, limit| shard.read_dedicated(from, limit, max_bytes))
    }

    fn next_batch_via(
        &mut self,
        limit: usize,
        read: impl FnOnce(&Shard, u64, usize) -> Result<Vec<crate::format::Record>>,
    ) -> Result<ReadBatch> {
        if limit == 0 || limit > MAX_RECORDS_PER_READ {
            return Err(Error::InvalidArgument(format!("read limit must be 1 to {MAX_RECORDS_PER_READ}, not {limit}")));
        }
        let log = &self.shard.log;
        // Records that expired since the last read are skipped, as Kinesis does.
        let from = self.next_seq.max(log.first_seq());
        let tip_before = log.next_seq();
        let records = read(&self.shard, from, limit)?;
        if let Some(last) = records.last() {
            self.next_seq = last.seq + 1;
        } else {
            // Nothing below the tip as it was before the read: numbers a crash skipped (they
            // were never written) are passed, so the reader is caught up.
            self.next_seq = from.max(tip_before);
        }
        let tip = log.next_seq();
        let behind_records = tip.saturating_sub(self.next_seq);
        let millis_behind_latest = match records.last() {
            Some(last) if behind_records > 0 => log.last_time_ms().saturating_sub(last.time_ms),
            _ => 0,
        };
        let records = records
            .into_iter()
            .map(|r| StreamRecord { seq: r.seq, partition_key: r.key, data: r.value, time_ms: r.time_ms })
            .collect();
        Ok(ReadBatch { records, behind_records, millis_behind_latest })
    }
}
