//! Optional per-shard throughput limits, as Kinesis provisions them: writes up to 1 MiB/s and
//! 1,000 records/s, reads up to 2 MiB/s per shard. Token buckets refilled from the engine's
//! clock, so tests can drive them with a manual clock. Off unless the stream asks for them.

use crate::error::{Error, Result};

/// Write bytes per second per shard.
pub const WRITE_BYTES_PER_S: f64 = 1_048_576.0;
/// Write records per second per shard.
pub const WRITE_RECORDS_PER_S: f64 = 1_000.0;
/// Read bytes per second per shard.
pub const READ_BYTES_PER_S: f64 = 2_097_152.0;

/// A bucket holding at most one second of its rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_s: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_s: f64, now_ms: u64) -> Self {
        TokenBucket { per_s, tokens: per_s, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_s).min(self.per_s);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// True if `amount` tokens are there now (without taking them).
    pub fn has(&mut self, amount: f64, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.tokens >= amount.min(self.per_s)
    }

    /// Takes `amount` tokens; the bucket may go into debt (a read larger than what is left is
    /// served, and the next ones wait), as Kinesis does for reads.
    pub fn take(&mut self, amount: f64, now_ms: u64) {
        self.refill(now_ms);
        self.tokens -= amount;
    }

    /// Milliseconds until the bucket holds a token again (0 if it does now).
    pub fn debt_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            return 0;
        }
        ((1.0 - self.tokens) / self.per_s * 1000.0).ceil() as u64
    }
}

/// The buckets of one shard.
#[derive(Debug, Clone)]
pub struct ShardLimits {
    write_bytes: TokenBucket,
    write_records: TokenBucket,
    read_bytes: TokenBucket,
}

impl ShardLimits {
    /// Full buckets.
    pub fn new(now_ms: u64) -> Self {
        ShardLimits {
            write_bytes: TokenBucket::new(WRITE_BYTES_PER_S, now_ms),
            write_records: TokenBucket::new(WRITE_RECORDS_PER_S, now_ms),
            read_bytes: TokenBucket::new(READ_BYTES_PER_S, now_ms),
        }
    }

    /// Admits a write of `records` records and `bytes` bytes to shard `shard`, or fails without
    /// taking anything.
    pub fn admit_write(&mut self, shard: u32, records: usize, bytes: usize, now_ms: u64) -> Result<()> {
        if !self.write_bytes.has(bytes as f64, now_ms) || !self.write_records.has(records as f64, now_ms) {
            return Err(Error::ThroughputExceeded(format!(
                "shard {shard} takes at most 1 MiB and 1,000 records per second of writes"
            )));
        }
        self.write_bytes.take(bytes as f64, now_ms);
        self.write_records.take(records as f64, now_ms);
        Ok(())
    }

    /// Admits a read from shard `shard` if the read bucket is not in debt.
    pub fn admit_read(&mut self, shard: u32, now_ms: u64) -> Result<()> {
        if !self.read_bytes.has(1.0, now_ms) {
            return Err(Error::ThroughputExceeded(format!("shard {shard} serves at most 2 MiB per second of reads")));
        }
        Ok(())
    }

    /// Charges a read that returned `bytes`.
    pub fn charge_read(&mut self, bytes: usize, now_ms: u64) {
        self.read_bytes.take(bytes as f64, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_over_the_rate_fail_until_the_bucket_refills() {
        let mut l = ShardLimits::new(0);
        for _ in 0..1000 {
            l.admit_write(0, 1, 10, 0).expect("within 1,000 records/s");
        }
        assert!(matches!(l.admit_write(0, 1, 10, 0), Err(Error::ThroughputExceeded(_))));
        l.admit_write(0, 1, 10, 1).expect("one millisecond refills one record");
        let mut l = ShardLimits::new(0);
        l.admit_write(0, 1, 1 << 20, 0).expect("one MiB");
        assert!(l.admit_write(0, 1, 1, 0).is_err(), "bytes exhausted");
        l.admit_write(0, 1, 1 << 19, 500).expect("half a second refills half a MiB");
    }

    #[test]
    fn a_large_read_is_served_and_the_next_waits() {
        let mut l = ShardLimits::new(0);
        l.admit_read(0, 0).expect("first read");
        l.charge_read(3 << 20, 0);
        assert!(l.admit_read(0, 0).is_err());
        assert!(l.admit_read(0, 400).is_err(), "still in debt");
        l.admit_read(0, 600).expect("debt paid after ~0.5 s");
    }
}
