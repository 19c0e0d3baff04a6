//! On-demand capacity: the engine splits a shard that stays hot and merges cold neighbours by
//! itself, so that an on-demand stream's shard count follows its load.
//!
//! Every maintenance pass ([`crate::Engine::run_maintenance`], on the engine clock) samples each
//! open shard's write counters. A shard's *load* is the larger of its write rates over the
//! time since the last sample as a fraction of a provisioned shard's capacity (1 MiB/s,
//! 1,000 records/s). A shard whose load stayed at or above [`HOT_FRACTION`] for [`HOT_FOR_MS`]
//! is split in the middle of its range, provided both halves carried at least
//! [`MIN_HALF_SHARE`] of its traffic meanwhile (one hot partition key cannot be spread by any
//! split). Two adjacent open shards whose loads stayed at or below [`COLD_FRACTION`] for
//! [`COLD_FOR_MS`] are merged, down to [`ON_DEMAND_MIN_SHARDS`]. Writes to an on-demand stream
//! are never refused for a shard's throughput: the capacity grows with the load instead.
//! The samples live in memory: a reopen starts every streak anew.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stream::limits::{WRITE_BYTES_PER_S, WRITE_RECORDS_PER_S};
use crate::stream::MAX_SHARDS;

/// Load (fraction of a provisioned shard's write capacity) at or above which a shard is hot:
/// half, so an on-demand shard splits while its load could still double before a provisioned
/// shard of the same size would refuse writes.
pub const HOT_FRACTION: f64 = 0.5;
/// How long a shard must stay hot before it splits: a minute rides out bursts, which the
/// shard absorbs anyway, and splits only for load that lasts.
pub const HOT_FOR_MS: u64 = 60_000;
/// Load at or below which a shard is cold: a tenth, so the merged shard of two cold ones
/// carries at most a fifth, far from [`HOT_FRACTION`] (no split right after a merge).
pub const COLD_FRACTION: f64 = 0.1;
/// How long two neighbours must stay cold before they merge: long, since a merge costs more
/// (readers move to a new shard) than a little idle capacity does.
pub const COLD_FOR_MS: u64 = 15 * 60_000;
/// Share of a hot shard's traffic each half of its range must carry for a split to help.
pub const MIN_HALF_SHARE: f64 = 0.1;
/// Fewest open shards merges leave an on-demand stream with, and how many it is created with
/// over the wire: Kinesis gives a new on-demand stream 4 MiB/s of write capacity.
pub const ON_DEMAND_MIN_SHARDS: usize = 4;

/// What a record costs of a shard's capacity, in bytes: a record is at least as expensive as
/// the bytes a shard takes in the time it takes one record.
const RECORD_WEIGHT: u64 = (WRITE_BYTES_PER_S / WRITE_RECORDS_PER_S) as u64;

/// Traffic into the two halves of a shard's range, counted by puts to on-demand streams.
#[derive(Debug, Default)]
pub(crate) struct HalfTraffic {
    low: AtomicU64,
    high: AtomicU64,
}

impl HalfTraffic {
    /// Counts a record of `bytes` bytes whose hash key lies in the lower or upper half.
    pub(crate) fn add(&self, upper: bool, bytes: usize) {
        let weight = (bytes as u64).saturating_add(RECORD_WEIGHT);
        if upper { &self.high } else { &self.low }.fetch_add(weight, Ordering::Relaxed);
    }

    fn load(&self) -> (u64, u64) {
        (self.low.load(Ordering::Relaxed), self.high.load(Ordering::Relaxed))
    }
}

/// One sample of a shard's cumulative counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub time_ms: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What the samples say of a shard so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Neither hot nor cold long enough.
    Steady,
    /// Hot for long enough; `spread` if both halves of its range carried traffic.
    Hot {
        /// Whether a split in the middle would spread the load.
        spread: bool,
    },
    /// Cold for long enough.
    Cold,
}

/// A shard's streaks, kept between maintenance passes.
#[derive(Debug, Default)]
pub(crate) struct Heat {
    last: Option<Sample>,
    last_halves: (u64, u64),
    hot_since: Option<u64>,
    cold_since: Option<u64>,
    /// Traffic of each half since the hot streak began.
    streak_halves: (u64, u64),
}

impl Heat {
    /// Takes a sample and says what the shard is now.
    pub(crate) fn sample(&mut self, now: Sample, halves: &HalfTraffic) -> Verdict {
        let halves_now = halves.load();
        let Some(last) = self.last else {
            self.last = Some(now);
            self.last_halves = halves_now;
            return Verdict::Steady;
        };
        if now.time_ms <= last.time_ms {
            return self.verdict(last.time_ms);
        }
        let seconds = (now.time_ms - last.time_ms) as f64 / 1000.0;
        let bytes = now.bytes.saturating_sub(last.bytes) as f64 / seconds / WRITE_BYTES_PER_S;
        let records = now.records.saturating_sub(last.records) as f64 / seconds / WRITE_RECORDS_PER_S;
        let load = bytes.max(records);
        let delta = (halves_now.0.saturating_sub(self.last_halves.0), halves_now.1.saturating_sub(self.last_halves.1));
        if load >= HOT_FRACTION {
            if self.hot_since.is_none() {
                self.hot_since = Some(last.time_ms);
                self.streak_halves = (0, 0);
            }
            self.streak_halves.0 = self.streak_halves.0.saturating_add(delta.0);
            self.streak_halves.1 = self.streak_halves.1.saturating_add(delta.1);
            self.cold_since = None;
        } else if load <= COLD_FRACTION {
            self.cold_since.get_or_insert(last.time_ms);
            self.hot_since = None;
        } else {
            self.hot_since = None;
            self.cold_since = None;
        }
        self.last = Some(now);
        self.last_halves = halves_now;
        self.verdict(now.time_ms)
    }

    fn verdict(&self, now_ms: u64) -> Verdict {
        if self.hot_since.is_some_and(|t| now_ms.saturating_sub(t) >= HOT_FOR_MS) {
            let (low, high) = self.streak_halves;
            let total = (low + high).max(1) as f64;
            let spread = low as f64 / total >= MIN_HALF_SHARE && high as f64 / total >= MIN_HALF_SHARE;
            return Verdict::Hot { spread };
        }
        if self.cold_since.is_some_and(|t| now_ms.saturating_sub(t) >= COLD_FOR_MS) {
            return Verdict::Cold;
        }
        Verdict::Steady
    }
}

/// An open shard as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct OpenShard {
    /// Its id.
    pub id: u32,
    /// First hash key of its range.
    pub hash_start: u128,
    /// What its samples say.
    pub verdict: Verdict,
}

/// A change the planner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Split this shard in the middle of its range.
    Split(u32),
    /// Merge these two adjacent shards.
    Merge(u32, u32),
}

/// The splits and merges for a stream's open shards (any order): every hot shard whose load
/// a split spreads, while the stream stays within [`MAX_SHARDS`] open shards; then adjacent
/// cold pairs, while more than [`ON_DEMAND_MIN_SHARDS`] stay open.
pub fn plan(open: &[OpenShard]) -> Vec<Action> {
    let mut shards = open.to_vec();
    shards.sort_by_key(|s| s.hash_start);
    let mut actions = Vec::new();
    let mut count = shards.len();
    for s in &shards {
        if s.verdict == (Verdict::Hot { spread: true }) && count < MAX_SHARDS as usize {
            actions.push(Action::Split(s.id));
            count += 1;
        }
    }
    let mut i = 0;
    while i + 1 < shards.len() {
        let (a, b) = (shards[i], shards[i + 1]);
        if a.verdict == Verdict::Cold && b.verdict == Verdict::Cold && count > ON_DEMAND_MIN_SHARDS {
            actions.push(Action::Merge(a.id, b.id));
            count -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time_ms: u64, records: u64, bytes: u64) -> Sample {
        Sample { time_ms, records, bytes }
    }

    #[test]
    fn a_shard_is_hot_only_after_staying_hot_and_splits_only_if_both_halves_carry_load() {
        let halves = HalfTraffic::default();
        let mut heat = Heat::default();
        assert_eq!(heat.sample(at(0, 0, 0), &halves), Verdict::Steady);
        // 600 records/s: 60% of a shard's record capacity.
        let mut records = 0;
        for second in 1..=60u64 {
            records += 600;
            for i in 0..600 {
                halves.add(i % 2 == 0, 10);
            }
            let v = heat.sample(at(second * 1000, records, records * 10), &halves);
            if second < 60 {
                assert_eq!(v, Verdict::Steady, "second {second}: not hot for a minute yet");
            } else {
                assert_eq!(v, Verdict::Hot { spread: true });
            }
        }
        // One second of low load ends the streak.
        assert_eq!(heat.sample(at(61_000, records + 100, 0), &halves), Verdict::Steady);

        // All the load in one half: hot, but a split would not help.
        let halves = HalfTraffic::default();
        let mut heat = Heat::default();
        heat.sample(at(0, 0, 0), &halves);
        let mut bytes = 0;
        for second in 1..=61u64 {
            bytes += 700_000;
            halves.add(true, 700_000);
            heat.sample(at(second * 1000, second, bytes), &halves);
        }
        assert_eq!(heat.sample(at(62_000, 62, bytes + 700_000), &halves), Verdict::Hot { spread: false });
    }

    #[test]
    fn a_shard_is_cold_after_fifteen_quiet_minutes_and_a_clock_that_stands_still_changes_nothing() {
        let halves = HalfTraffic::default();
        let mut heat = Heat::default();
        heat.sample(at(0, 0, 0), &halves);
        assert_eq!(heat.sample(at(COLD_FOR_MS - 1, 5, 50), &halves), Verdict::Steady);
        assert_eq!(heat.sample(at(COLD_FOR_MS - 1, 5, 50), &halves), Verdict::Steady);
        assert_eq!(heat.sample(at(COLD_FOR_MS, 5, 50), &halves), Verdict::Cold);
    }

    fn shard(id: u32, start: u128, verdict: Verdict) -> OpenShard {
        OpenShard { id, hash_start: start, verdict }
    }

    #[test]
    fn the_plan_splits_hot_shards_and_merges_cold_pairs_down_to_the_floor() {
        let hot = Verdict::Hot { spread: true };
        let plan1 =
            plan(&[shard(0, 0, hot), shard(1, 10, Verdict::Hot { spread: false }), shard(2, 20, Verdict::Steady)]);
        assert_eq!(plan1, vec![Action::Split(0)]);
        let cold: Vec<OpenShard> = (0..7).map(|i| shard(i, u128::from(i) * 10, Verdict::Cold)).collect();
        // 7 open: merges (0,1), (2,3) and (4,5) would leave 4; the floor stops at 4.
        assert_eq!(plan(&cold), vec![Action::Merge(0, 1), Action::Merge(2, 3), Action::Merge(4, 5)]);
        let four: Vec<OpenShard> = cold[..4].to_vec();
        assert!(plan(&four).is_empty(), "never below {ON_DEMAND_MIN_SHARDS} shards");
        // Cold shards that are not neighbours in hash order do not merge.
        let apart = [shard(0, 0, Verdict::Cold), shard(1, 10, Verdict::Steady), shard(2, 20, Verdict::Cold)];
        let mut five = apart.to_vec();
        five.extend([shard(3, 30, Verdict::Steady), shard(4, 40, Verdict::Steady)]);
        assert!(plan(&five).is_empty());
    }
}
