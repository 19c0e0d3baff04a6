//! Delivery streams in the engine: their catalog records replayed, their backing streams
//! opened under `DATA_DIR/firehose/`, created and deleted under the catalog lock (see
//! [`crate::firehose`] for what a delivery stream is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::engine::catalog::CatalogRecord;
use crate::engine::lock::DirLock;
use crate::engine::{stream_env, Engine, Options};
use crate::error::{Error, Result};
use crate::firehose::{validate_name, DeliveryStream, DeliveryStreamConfig, DeliveryStreamDef};
use crate::log::keys::LogEncryption;
use crate::stream::Stream;

/// The directory under the data directory that holds the backing streams.
pub const DIR: &str = "firehose";

/// Delivery streams as the catalog's replay leaves them.
#[derive(Debug, Default, Clone)]
pub struct DeliveryStreamsState {
    /// By name.
    pub streams: BTreeMap<String, DeliveryStreamDef>,
    /// Directories (under `firehose/`) of deleted delivery streams, which open removes if a
    /// crash left them.
    pub deleted: Vec<String>,
    /// The incarnation the next delivery stream of each name gets.
    pub next_incarnation: BTreeMap<String, u64>,
}

impl DeliveryStreamsState {
    /// Applies a `put_delivery_stream` record.
    pub(crate) fn put(&mut self, def: DeliveryStreamDef) {
        let dir = def.dir_name();
        self.deleted.retain(|d| *d != dir);
        let next = self.next_incarnation.entry(def.name.clone()).or_default();
        *next = (*next).max(def.stream.incarnation.saturating_add(1));
        self.streams.insert(def.name.clone(), def);
    }

    /// Applies a `delete_delivery_stream` record.
    pub(crate) fn delete(&mut self, name: &str) {
        if let Some(def) = self.streams.remove(name) {
            self.deleted.push(def.dir_name());
        }
    }
}

/// The open delivery streams, by name.
pub(crate) type Registry = RwLock<BTreeMap<String, Arc<DeliveryStream>>>;

fn open_one(
    data_dir: &Path,
    def: &DeliveryStreamDef,
    options: &Options,
    lock: &Arc<DirLock>,
    encryption: &Option<Arc<LogEncryption>>,
) -> Result<DeliveryStream> {
    let dir = data_dir.join(DIR).join(def.dir_name());
    let stream = Stream::open(&dir, def.stream.clone(), stream_env(options, lock, encryption))?;
    Ok(DeliveryStream::new(def.clone(), Arc::new(stream), options.vfs.clone(), options.clock.clone()))
}

/// Opens every delivery stream of `state` (after removing what deletes a crash cut short left).
pub(crate) fn open_all(
    data_dir: &Path,
    state: &DeliveryStreamsState,
    options: &Options,
    lock: &Arc<DirLock>,
    encryption: &Option<Arc<LogEncryption>>,
) -> Result<Registry> {
    for deleted in &state.deleted {
        let _ = options.vfs.remove_dir_all(&data_dir.join(DIR).join(deleted));
    }
    let mut open = BTreeMap::new();
    for (name, def) in &state.streams {
        open.insert(name.clone(), Arc::new(open_one(data_dir, def, options, lock, encryption)?));
    }
    Ok(RwLock::new(open))
}

impl Engine {
    /// Creates a delivery stream (names: 1-64 of `[A-Za-z0-9_.-]`) delivering to
    /// `config.destination`. A name in use is [`Error::AlreadyExists`], whatever its settings
    /// (as Firehose's `ResourceInUseException`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let out = tempfile::tempdir()?;
    /// use weir::firehose::{DeliveryStreamConfig, Destination, DirectoryDestination};
    /// let engine = weir::Engine::open(dir.path(), weir::Options::default())?;
    /// let to = Destination::Directory(DirectoryDestination::new(out.path()));
    /// engine.create_delivery_stream("clicks", DeliveryStreamConfig::new(to))?;
    /// engine.delivery_stream("clicks")?.put(b"{\"page\":\"/\"}\n")?;
    /// let files = engine.delivery_stream("clicks")?.directory_delivery()?.run_once()?;
    /// assert_eq!(std::fs::read(&files[0])?, b"{\"page\":\"/\"}\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_delivery_stream(&self, name: &str, config: DeliveryStreamConfig) -> Result<()> {
        validate_name(name)?;
        config.validate()?;
        crate::engine::tags::validate_tags(&config.tags)?;
        let mut catalog = self.inner.catalog.lock();
        if catalog.state().delivery_streams.streams.contains_key(name) {
            return Err(Error::AlreadyExists { kind: "delivery stream", name: name.to_string() });
        }
        let incarnation = catalog.state().delivery_streams.next_incarnation.get(name).copied().unwrap_or(0);
        let def = DeliveryStreamDef::new(name, config, incarnation, self.now_ms())?;
        let root = self.inner.dir.join(DIR);
        crate::log::io::create_dir_durably(self.inner.options.vfs.as_ref(), &root)
            .map_err(|e| Error::io("create directory", &root, e))?;
        // Leftovers of a creation that crashed before its catalog record must not leak in.
        self.remove_dir_durably(&root.join(def.dir_name()))?;
        let stream = open_one(&self.inner.dir, &def, &self.inner.options, &self.inner.lock, &self.inner.encryption)?;
        catalog.append(CatalogRecord::PutDeliveryStream { delivery_stream: def }, self.now_ms())?;
        self.inner.delivery_streams.write().insert(name.to_string(), Arc::new(stream));
        Ok(())
    }

    /// Deletes a delivery stream and the records it has not delivered yet. Its handles (and
    /// deliveries running on them) fail from then on.
    pub fn delete_delivery_stream(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let mut catalog = self.inner.catalog.lock();
        let Some(def) = catalog.state().delivery_streams.streams.get(name).cloned() else {
            return Err(Error::NotFound { kind: "delivery stream", name: name.to_string() });
        };
        catalog.append(CatalogRecord::DeleteDeliveryStream { name: name.to_string() }, self.now_ms())?;
        if let Some(stream) = self.inner.delivery_streams.write().remove(name) {
            stream.mark_deleted();
        }
        self.remove_dir_durably(&self.delivery_stream_dir(&def))
    }

    /// An open delivery stream by name.
    pub fn delivery_stream(&self, name: &str) -> Result<Arc<DeliveryStream>> {
        validate_name(name)?;
        self.inner
            .delivery_streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "delivery stream", name: name.to_string() })
    }

    /// Names of every delivery stream, sorted.
    pub fn list_delivery_streams(&self) -> Vec<String> {
        self.inner.delivery_streams.read().keys().cloned().collect()
    }

    fn delivery_stream_dir(&self, def: &DeliveryStreamDef) -> PathBuf {
        self.inner.dir.join(DIR).join(def.dir_name())
    }
}
