//! Splitting and merging shards, with Kinesis's rules.
//!
//! A reshard closes its parent shard(s) (no more writes; records stay readable until retention
//! removes them) and opens children that own the split ranges, or the merged range, recording
//! their parents. Children start their sequence numbers above every parent's, so along any
//! lineage numbers keep increasing. Puts hold the stream's reshard lock for reading while they
//! choose a shard and append, so none lands in a shard that closed under it.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::stream::{shard_dir, split_point, Shard, ShardMeta, Stream, StreamMeta};

impl Stream {
    /// Splits open shard `shard` at `at` (the first hash key of the upper child; default: the
    /// middle of its range). `commit` records the new shard map durably (the catalog) before it
    /// takes effect. Returns the two children, lower range first.
    pub fn split_shard(
        &self,
        shard: u32,
        at: Option<u128>,
        commit: &mut dyn FnMut(&StreamMeta) -> Result<()>,
    ) -> Result<[u32; 2]> {
        let _exclusive = self.reshard.write();
        self.check_live()?;
        let meta = self.meta.read().clone();
        let parent = open_shard(&meta, shard)?;
        if parent.hash_start == parent.hash_end {
            return Err(Error::InvalidArgument(format!("shard {shard} owns a single hash key and cannot be split")));
        }
        let at = at.unwrap_or_else(|| split_point(&parent));
        if at <= parent.hash_start || at > parent.hash_end {
            return Err(Error::InvalidArgument(format!(
                "the new starting hash key must lie in ({}, {}] of shard {shard}, not {at}",
                parent.hash_start, parent.hash_end
            )));
        }
        let initial_seq = self.seal_for_reshard(&[shard])?;
        let first_id = next_shard_id(&meta);
        let children = [
            child(first_id, parent.hash_start, at - 1, vec![shard], initial_seq),
            child(first_id + 1, at, parent.hash_end, vec![shard], initial_seq),
        ];
        self.install(meta, &[shard], &children, commit)?;
        Ok([first_id, first_id + 1])
    }

    /// Merges open shard `shard` with the open shard `adjacent` whose range borders it. Returns
    /// the child.
    pub fn merge_shards(
        &self,
        shard: u32,
        adjacent: u32,
        commit: &mut dyn FnMut(&StreamMeta) -> Result<()>,
    ) -> Result<u32> {
        let _exclusive = self.reshard.write();
        self.check_live()?;
        let meta = self.meta.read().clone();
        let a = open_shard(&meta, shard)?;
        let b = open_shard(&meta, adjacent)?;
        let (low, high) = if a.hash_start < b.hash_start { (a, b) } else { (b, a) };
        if shard == adjacent || low.hash_end.checked_add(1) != Some(high.hash_start) {
            return Err(Error::InvalidArgument(format!(
                "shards {shard} and {adjacent} are not adjacent: their hash-key ranges must touch"
            )));
        }
        let initial_seq = self.seal_for_reshard(&[shard, adjacent])?;
        let id = next_shard_id(&meta);
        let merged = child(id, low.hash_start, high.hash_end, vec![low.id, high.id], initial_seq);
        self.install(meta, &[shard, adjacent], &[merged], commit)?;
        Ok(id)
    }

    /// Makes the parents' records durable (in every mode: a closed shard is final) and returns
    /// the first sequence number their children may use.
    fn seal_for_reshard(&self, parents: &[u32]) -> Result<u64> {
        let mut initial = 0;
        for &id in parents {
            let shard = self.shard(id)?;
            shard.log.flush()?;
            initial = initial.max(shard.log.written_next());
        }
        Ok(initial)
    }

    fn install(
        &self,
        mut meta: StreamMeta,
        parents: &[u32],
        children: &[ShardMeta],
        commit: &mut dyn FnMut(&StreamMeta) -> Result<()>,
    ) -> Result<()> {
        let now = self.env.clock.now_ms();
        let children: Vec<ShardMeta> = children.iter().cloned().map(|c| ShardMeta { created_ms: now, ..c }).collect();
        let mut opened = Vec::with_capacity(children.len());
        for c in &children {
            let dir = shard_dir(&self.dir, c.id);
            // Leftovers of a reshard that crashed before its catalog record must not leak in.
            self.env.vfs.remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
            opened.push(self.open_shard_log(c)?);
        }
        for s in meta.shards.iter_mut().filter(|s| parents.contains(&s.id)) {
            s.open = false;
            s.closed_ms = now;
        }
        meta.shards.extend(children.iter().cloned());
        commit(&meta)?;
        let mut shards = self.shards.write();
        for &id in parents {
            if let (Some(old), Some(closed)) = (shards.get(&id).cloned(), meta.shards.iter().find(|s| s.id == id)) {
                let shard = Shard {
                    meta: closed.clone(),
                    log: Arc::clone(&old.log),
                    limits: old.limits.clone(),
                    deleted: old.deleted.clone(),
                    counters: Arc::clone(&old.counters),
                    signal: Arc::clone(&old.signal),
                    halves: Arc::clone(&old.halves),
                    heat: Arc::clone(&old.heat),
                };
                shards.insert(id, Arc::new(shard));
            }
        }
        for shard in opened {
            shards.insert(shard.meta.id, Arc::new(shard));
        }
        *self.meta.write() = meta;
        // Readers caught up with a parent learn that it closed (and where to go on).
        for &id in parents {
            if let Some(parent) = shards.get(&id) {
                parent.signal.notify();
            }
        }
        Ok(())
    }
}

fn open_shard(meta: &StreamMeta, id: u32) -> Result<ShardMeta> {
    let shard = meta
        .shards
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(|| Error::NotFound { kind: "shard", name: format!("{}/{id}", meta.name) })?;
    if !shard.open {
        return Err(Error::ShardClosed { stream: meta.name.clone(), shard: id });
    }
    Ok(shard)
}

fn next_shard_id(meta: &StreamMeta) -> u32 {
    meta.shards.iter().map(|s| s.id + 1).max().unwrap_or(0)
}

fn child(id: u32, hash_start: u128, hash_end: u128, parents: Vec<u32>, initial_seq: u64) -> ShardMeta {
    ShardMeta { id, hash_start, hash_end, parents, open: true, initial_seq, created_ms: 0, closed_ms: 0 }
}
