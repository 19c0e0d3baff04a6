//! Consumer groups: the part of the Kinesis Client Library an application would otherwise
//! write. Workers of a group lease shards so each shard is read by one worker at a time; a
//! lease not renewed within the lease time expires and another worker takes it over; positions
//! are checkpointed durably in the stream itself; a group reads a parent shard to its end
//! (checkpointed) before its children.
//!
//! Leases live in memory: one process owns a data directory, and workers are its threads.
//! Checkpoints are durable (see [`super::checkpoint`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::names::validate_stream_name;
use crate::stream::iterator::{StreamRecord, MAX_RECORDS_PER_READ};
use crate::stream::{ShardMeta, Stream};

/// Default lease time: a worker that does not poll for this long loses its shards.
pub const DEFAULT_LEASE_MS: u64 = 10_000;

/// Where a group starts in a shard it has never checkpointed (shards with parents always start
/// at their beginning, so nothing between a parent's end and the group's arrival is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialPosition {
    /// The oldest record still stored.
    #[default]
    TrimHorizon,
    /// Only records put after the group first sees the shard.
    Latest,
}

/// Settings of a consumer.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerConfig {
    /// Lease time in milliseconds of the engine's clock.
    pub lease_ms: u64,
    /// Start position in root shards without a checkpoint.
    pub initial: InitialPosition,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig { lease_ms: DEFAULT_LEASE_MS, initial: InitialPosition::TrimHorizon }
    }
}

#[derive(Debug, Clone)]
struct Lease {
    worker: String,
    expires_ms: u64,
}

/// Every lease of a stream, by (group, shard).
#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: HashMap<(String, u32), Lease>,
    /// Where a group started a root shard under `Latest`, fixed the first time it is seen.
    latest_starts: HashMap<(String, u32), u64>,
    /// When each (group, worker) last polled: workers alive within the lease time share the
    /// shards, even those that hold none yet.
    last_seen: HashMap<(String, String), u64>,
}

/// A record with the shard it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The shard.
    pub shard: u32,
    /// The record.
    pub record: StreamRecord,
}

/// One worker of a consumer group. Dropping it releases its leases.
#[derive(Debug)]
pub struct Consumer {
    stream: Arc<Stream>,
    group: String,
    worker: String,
    config: ConsumerConfig,
    /// Next sequence number to read, per leased shard.
    cursors: BTreeMap<u32, u64>,
}

impl Stream {
    /// A worker `worker` of consumer group `group` (names: 1-128 of `[A-Za-z0-9_.-]`).
    pub fn consumer(self: &Arc<Self>, group: &str, worker: &str, config: ConsumerConfig) -> Result<Consumer> {
        // Group and worker names follow the stream-name rules (1-128 of [A-Za-z0-9_.-]).
        let check = |what: &str, name: &str| {
            validate_stream_name(name).map_err(|_| {
                Error::InvalidArgument(format!(
                    "{what} {:?} must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.' and '-'",
                    name.chars().take(64).collect::<String>()
                ))
            })
        };
        check("consumer group", group)?;
        check("worker id", worker)?;
        self.check_live()?;
        if config.lease_ms == 0 {
            return Err(Error::InvalidArgument("lease time must be at least 1 ms".into()));
        }
        Ok(Consumer {
            stream: Arc::clone(self),
            group: group.to_string(),
            worker: worker.to_string(),
            config,
            cursors: BTreeMap::new(),
        })
    }

    /// Every durable checkpoint: (group, shard) -> last processed sequence number.
    pub fn checkpoints(&self) -> BTreeMap<(String, u32), u64> {
        self.checkpoints.all()
    }

    /// The next sequence number `group` reads in `shard`: after its checkpoint, or its start.
    fn group_position(
        &self,
        table: &mut LeaseTable,
        group: &str,
        shard: &ShardMeta,
        initial: InitialPosition,
    ) -> Result<u64> {
        let log = &self.shard(shard.id)?.log;
        if let Some(seq) = self.checkpoints.get(group, shard.id) {
            return Ok((seq + 1).max(log.first_seq()));
        }
        if shard.parents.is_empty() && initial == InitialPosition::Latest {
            let start = *table.latest_starts.entry((group.to_string(), shard.id)).or_insert_with(|| log.next_seq());
            return Ok(start.max(log.first_seq()));
        }
        Ok(log.first_seq())
    }

    /// True once `group` has processed every record of closed shard `shard` and its ancestors.
    fn finished(
        &self,
        table: &mut LeaseTable,
        group: &str,
        shard: &ShardMeta,
        initial: InitialPosition,
    ) -> Result<bool> {
        if shard.open {
            return Ok(false);
        }
        // Past the last record, not `next_seq`: numbers skipped after a crash are never written.
        let end = self.shard(shard.id)?.log.end_of_records();
        if self.group_position(table, group, shard, initial)? < end {
            return Ok(false);
        }
        // An empty closed shard is not finished while its parents are not: its children would
        // otherwise be read before their grandparents.
        let meta = self.meta();
        for p in &shard.parents {
            if let Some(parent) = meta.shards.iter().find(|s| s.id == *p) {
                // Parents have lower ids, so this recursion ends (its depth is the reshard count).
                if parent.id < shard.id && !self.finished(table, group, parent, initial)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl Consumer {
    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Shards this worker holds leases on.
    pub fn held_shards(&self) -> Vec<u32> {
        self.cursors.keys().copied().collect()
    }

    /// Renews this worker's leases, takes free (or expired) leases up to its fair share of the
    /// group's readable shards, and reads up to `limit` records from its shards. A shard is
    /// readable once all its parents are finished, so records come in lineage order.
    pub fn poll(&mut self, limit: usize) -> Result<Vec<ConsumedRecord>> {
        if limit == 0 || limit > MAX_RECORDS_PER_READ {
            return Err(Error::InvalidArgument(format!("poll limit must be 1 to {MAX_RECORDS_PER_READ}, not {limit}")));
        }
        self.stream.check_live()?;
        self.balance()?;
        let mut out = Vec::new();
        for (&shard, cursor) in self.cursors.iter_mut() {
            if out.len() >= limit {
                break;
            }
            let s = self.stream.shard(shard)?;
            let from = (*cursor).max(s.log.first_seq());
            for r in s.read_limited(from, limit - out.len())? {
                *cursor = r.seq + 1;
                out.push(ConsumedRecord {
                    shard,
                    record: StreamRecord { seq: r.seq, partition_key: r.key, data: r.value, time_ms: r.time_ms },
                });
            }
        }
        Ok(out)
    }

    fn balance(&mut self) -> Result<()> {
        let now = self.stream.env.clock.now_ms();
        let meta = self.stream.meta();
        let mut table = self.stream.leases.lock();
        let group = self.group.clone();
        // Forget shards whose lease another worker took. An expired lease nobody took is still
        // this worker's: expiry only makes it available.
        self.cursors
            .retain(|shard, _| table.leases.get(&(group.clone(), *shard)).is_some_and(|l| l.worker == self.worker));
        for shard in self.cursors.keys() {
            if let Some(l) = table.leases.get_mut(&(group.clone(), *shard)) {
                l.expires_ms = now + self.config.lease_ms;
            }
        }
        let mut readable = Vec::new();
        for shard in &meta.shards {
            if self.stream.finished(&mut table, &group, shard, self.config.initial)? {
                continue;
            }
            let mut parents_done = true;
            for p in &shard.parents {
                let Some(parent) = meta.shards.iter().find(|s| s.id == *p) else { continue };
                if !self.stream.finished(&mut table, &group, parent, self.config.initial)? {
                    parents_done = false;
                }
            }
            if parents_done {
                readable.push(shard.clone());
            }
        }
        table.last_seen.insert((group.clone(), self.worker.clone()), now);
        let lease_ms = self.config.lease_ms;
        table.last_seen.retain(|_, seen| *seen + lease_ms > now);
        let workers: BTreeSet<String> =
            table.last_seen.keys().filter(|(g, _)| g == &group).map(|(_, w)| w.clone()).collect();
        let share = readable.len().div_ceil(workers.len().max(1));
        let floor = readable.len() / workers.len().max(1);
        let readable_ids: Vec<u32> = readable.iter().map(|s| s.id).collect();
        for shard in readable.iter() {
            if self.cursors.len() >= share {
                break;
            }
            let key = (group.clone(), shard.id);
            let free = table.leases.get(&key).is_none_or(|l| l.expires_ms <= now || l.worker == self.worker);
            if !free || self.cursors.contains_key(&shard.id) {
                continue;
            }
            let position = self.stream.group_position(&mut table, &group, shard, self.config.initial)?;
            table.leases.insert(key, Lease { worker: self.worker.clone(), expires_ms: now + self.config.lease_ms });
            self.cursors.insert(shard.id, position);
        }
        // Below a fair share with no free shard left: take one from the busiest worker, as the
        // KCL does. Its owner notices at its next poll; records it read but did not checkpoint
        // are read again here (at-least-once).
        while self.cursors.len() < floor {
            let mut load: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            for ((g, shard), l) in &table.leases {
                if g == &group && l.expires_ms > now && l.worker != self.worker && readable_ids.contains(shard) {
                    load.entry(l.worker.as_str()).or_default().push(*shard);
                }
            }
            let Some((_, shards)) = load.into_iter().max_by_key(|(_, v)| v.len()) else { break };
            if shards.len() <= self.cursors.len() + 1 {
                break;
            }
            let Some(&victim) = shards.iter().max() else { break };
            let Some(shard) = readable.iter().find(|s| s.id == victim) else { break };
            let position = self.stream.group_position(&mut table, &group, shard, self.config.initial)?;
            table
                .leases
                .insert((group.clone(), victim), Lease { worker: self.worker.clone(), expires_ms: now + lease_ms });
            self.cursors.insert(victim, position);
        }
        Ok(())
    }

    /// Durably records that the group processed `shard` through `seq`. The worker must hold the
    /// shard's lease. Checkpointing the last record of a closed shard finishes it: the lease is
    /// released and its children become readable.
    pub fn checkpoint(&mut self, shard: u32, seq: u64) -> Result<()> {
        self.stream.check_live()?;
        let now = self.stream.env.clock.now_ms();
        let mut table = self.stream.leases.lock();
        let key = (self.group.clone(), shard);
        let held = table.leases.get(&key).is_some_and(|l| l.worker == self.worker && l.expires_ms > now);
        if !held || !self.cursors.contains_key(&shard) {
            return Err(Error::InvalidArgument(format!(
                "worker {:?} does not hold the lease on shard {shard} (it expired or was never taken); poll again",
                self.worker
            )));
        }
        let s = self.stream.shard(shard)?;
        if seq >= s.log.next_seq() {
            return Err(Error::InvalidArgument(format!(
                "sequence number {seq} is beyond the end of shard {shard} (next is {})",
                s.log.next_seq()
            )));
        }
        self.stream.checkpoints.put(&self.group, shard, seq, now)?;
        if !s.meta.open && seq + 1 >= s.log.end_of_records() {
            table.leases.remove(&key);
            self.cursors.remove(&shard);
        }
        Ok(())
    }

    /// Checkpoints every held shard at the last record this worker read from it.
    pub fn checkpoint_all(&mut self) -> Result<()> {
        self.stream.check_live()?;
        let read: Vec<(u32, u64)> = self.cursors.iter().filter(|(_, &c)| c > 0).map(|(&s, &c)| (s, c - 1)).collect();
        for (shard, seq) in read {
            let log = &self.stream.shard(shard)?.log;
            if seq >= log.first_seq() && self.stream.checkpoints.get(&self.group, shard).is_none_or(|c| c < seq) {
                self.checkpoint(shard, seq)?;
            }
        }
        Ok(())
    }

    /// Gives up every lease at once, so another worker resumes without waiting for expiry.
    pub fn release(&mut self) {
        let mut table = self.stream.leases.lock();
        table.last_seen.remove(&(self.group.clone(), self.worker.clone()));
        for shard in std::mem::take(&mut self.cursors).into_keys() {
            let key = (self.group.clone(), shard);
            if table.leases.get(&key).is_some_and(|l| l.worker == self.worker) {
                table.leases.remove(&key);
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.release();
    }
}
