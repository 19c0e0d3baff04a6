//! Stream changes beyond creating and resharding: settings that are catalog read-modify-writes
//! of the stream's description (retention, mode, encryption, enhanced fan-out consumers), the
//! uniform rescaling of [`Engine::update_shard_count`], and the on-demand autoscaler's pass.
//! Every change holds the catalog lock, as reshards do, so none overwrites another.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::catalog::CatalogRecord;
use crate::engine::{Engine, EngineInner};
use crate::error::{Error, Result};
use crate::names;
use crate::stream::autoscale::{self, Action, OpenShard, Sample};
use crate::stream::fanout::{self, ConsumerMeta};
use crate::stream::{
    hash, Stream, StreamEncryption, StreamMeta, StreamMode, StreamOptions, MAX_RETENTION_MS, MAX_SHARDS,
    MIN_RETENTION_MS,
};

/// The largest stream resource policy the engine keeps (Kinesis's limit: 20 KiB).
pub const MAX_STREAM_POLICY_BYTES: usize = 20 * 1024;

impl Engine {
    /// Creates a stream as `options` say (shards, retention, throughput limits, capacity
    /// mode). See [`Engine::create_stream`].
    pub fn create_stream_with_options(&self, name: &str, options: &StreamOptions) -> Result<()> {
        self.create_stream_meta(name, options)
    }

    /// Changes how long a stream keeps records (24 hours to 365 days). A shorter retention
    /// deletes what it no longer covers at the next maintenance pass.
    pub fn set_stream_retention(&self, name: &str, retention: Duration) -> Result<()> {
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&retention_ms) {
            return Err(Error::InvalidArgument(format!(
                "stream retention must be 24 to 8760 hours, not {} ms",
                retention_ms
            )));
        }
        self.update_stream_meta(name, |meta| {
            meta.retention_ms = retention_ms;
            Ok(())
        })
    }

    /// Switches a stream between provisioned and on-demand capacity.
    pub fn set_stream_mode(&self, name: &str, mode: StreamMode) -> Result<()> {
        self.update_stream_meta(name, |meta| {
            meta.mode = mode;
            Ok(())
        })
    }

    /// Records a stream's server-side encryption state (`None`: off). Kept and reported; the
    /// records themselves are not encrypted with the key.
    pub fn set_stream_encryption(&self, name: &str, encryption: Option<StreamEncryption>) -> Result<()> {
        self.update_stream_meta(name, |meta| {
            meta.encryption = encryption;
            Ok(())
        })
    }

    /// Sets (`Some`) or removes (`None`) a stream's resource policy, durably as any change of
    /// its description. The engine keeps the text as given, up to [`MAX_STREAM_POLICY_BYTES`];
    /// what it means is the server's to check (Kinesis's PutResourcePolicy parses it first).
    pub fn set_stream_policy(&self, name: &str, policy: Option<&str>) -> Result<()> {
        if let Some(text) = policy {
            if text.len() > MAX_STREAM_POLICY_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "a stream's policy is at most {MAX_STREAM_POLICY_BYTES} bytes, not {}",
                    text.len()
                )));
            }
        }
        self.update_stream_meta(name, |meta| {
            meta.policy = policy.map(str::to_string);
            Ok(())
        })
    }

    /// Registers an enhanced fan-out consumer with a stream (at most
    /// [`fanout::MAX_CONSUMERS`]); it is `CREATING` for [`fanout::CONSUMER_ACTIVATION_MS`],
    /// then `ACTIVE`. A name that is registered already is `AlreadyExists`.
    pub fn register_stream_consumer(&self, stream: &str, consumer: &str) -> Result<ConsumerMeta> {
        fanout::validate_consumer_name(consumer)?;
        let now = self.inner.options.clock.now_ms();
        let mut registered = None;
        self.update_stream_meta(stream, |meta| {
            if meta.consumers.iter().any(|c| c.name == consumer) {
                return Err(Error::AlreadyExists { kind: "consumer", name: consumer.to_string() });
            }
            if meta.consumers.len() >= fanout::MAX_CONSUMERS {
                return Err(Error::LimitExceeded(format!(
                    "a stream has at most {} registered consumers",
                    fanout::MAX_CONSUMERS
                )));
            }
            let c = ConsumerMeta { name: consumer.to_string(), created_ms: now };
            registered = Some(c.clone());
            meta.consumers.push(c);
            Ok(())
        })?;
        registered.ok_or_else(|| Error::InvalidArgument("consumer not registered".into()))
    }

    /// Deregisters a consumer: its subscriptions end at their next read.
    pub fn deregister_stream_consumer(&self, stream: &str, consumer: &str) -> Result<()> {
        self.update_stream_meta(stream, |meta| {
            let before = meta.consumers.len();
            meta.consumers.retain(|c| c.name != consumer);
            if meta.consumers.len() == before {
                return Err(Error::NotFound { kind: "consumer", name: format!("{stream}/{consumer}") });
            }
            Ok(())
        })
    }

    /// Rescales a stream to `target` open shards of equal ranges, as Kinesis's
    /// `UpdateShardCount` with uniform scaling: splits at the new boundaries, then merges of
    /// neighbours that fall in one new range. Kinesis's bounds apply: at most double and at
    /// least half the open shards, and at most [`MAX_SHARDS`].
    pub fn update_shard_count(&self, stream: &str, target: u32) -> Result<()> {
        let s = self.stream(stream)?;
        let mut catalog = self.inner.catalog.lock();
        let open = s.meta().open_shards().count() as u32;
        if target == 0 || target > MAX_SHARDS || target > open.saturating_mul(2) || target < open.div_ceil(2) {
            return Err(Error::InvalidArgument(format!(
                "the target shard count must lie between half and double the {open} open shards (and 1 to {MAX_SHARDS}), not {target}"
            )));
        }
        let now = self.inner.options.clock.now_ms();
        let mut commit = |meta: &StreamMeta| catalog.append(CatalogRecord::PutStream { stream: meta.clone() }, now);
        let ranges = hash::even_ranges(target);
        // Splits: no open shard may straddle a boundary of the new ranges.
        for &(start, _) in &ranges[1..] {
            let straddling =
                s.meta().open_shards().find(|sh| sh.hash_start < start && start <= sh.hash_end).map(|sh| sh.id);
            if let Some(id) = straddling {
                s.split_shard(id, Some(start), &mut commit)?;
            }
        }
        // Merges: neighbours inside one new range become one shard.
        for &(start, end) in &ranges {
            loop {
                let inside: Vec<u32> = s
                    .meta()
                    .open_shards()
                    .filter(|sh| sh.hash_start >= start && sh.hash_end <= end)
                    .map(|sh| sh.id)
                    .collect();
                match inside[..] {
                    [a, b, ..] => {
                        s.merge_shards(a, b, &mut commit)?;
                    }
                    _ => break,
                }
            }
        }
        debug_assert_eq!(s.meta().open_shards().count(), target as usize);
        Ok(())
    }

    /// A read-modify-write of a stream's description (not its shard map) under the catalog
    /// lock: recorded durably, then applied.
    fn update_stream_meta(&self, name: &str, change: impl FnOnce(&mut StreamMeta) -> Result<()>) -> Result<()> {
        names::validate_stream_name(name)?;
        let stream = self.stream(name)?;
        let mut catalog = self.inner.catalog.lock();
        stream.check_live()?;
        let mut meta = stream.meta();
        change(&mut meta)?;
        catalog.append(CatalogRecord::PutStream { stream: meta.clone() }, self.inner.options.clock.now_ms())?;
        stream.set_meta(meta);
        Ok(())
    }
}

impl EngineInner {
    /// One pass of the on-demand autoscaler (see [`autoscale`]): samples every open shard of
    /// every on-demand stream and splits or merges what the samples call for. A stream that
    /// fails keeps the others from nothing; the first error is returned.
    pub(crate) fn autoscale(&self) -> Result<()> {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        let mut first_error = None;
        for stream in streams.iter().filter(|s| !s.is_deleted()) {
            if let Err(e) = self.autoscale_stream(stream) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn autoscale_stream(&self, stream: &Stream) -> Result<()> {
        let meta = stream.meta();
        if meta.mode != StreamMode::OnDemand {
            return Ok(());
        }
        let now = self.options.clock.now_ms();
        let mut open = Vec::new();
        for shard_meta in meta.open_shards() {
            let shard = stream.shard(shard_meta.id)?;
            let stats = shard.stats();
            let sample = Sample { time_ms: now, records: stats.written_records, bytes: stats.written_bytes };
            let verdict = shard.heat.lock().sample(sample, &shard.halves);
            open.push(OpenShard { id: shard_meta.id, hash_start: shard_meta.hash_start, verdict });
        }
        let actions = autoscale::plan(&open);
        if actions.is_empty() {
            return Ok(());
        }
        let mut catalog = self.catalog.lock();
        let mut commit = |meta: &StreamMeta| catalog.append(CatalogRecord::PutStream { stream: meta.clone() }, now);
        for action in actions {
            match action {
                Action::Split(id) => {
                    stream.split_shard(id, None, &mut commit)?;
                }
                Action::Merge(a, b) => {
                    stream.merge_shards(a, b, &mut commit)?;
                }
            }
        }
        Ok(())
    }
}
