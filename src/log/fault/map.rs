//! Memory maps of [`FaultyFs`] files: [`ReadMap`] and [`WriteMap`] over the in-memory contents,
//! with the faults a real map can meet, so the log's mapped read and write paths run under
//! fault injection and crash tests through the same checks as on a real file system
//! (`log::mapped`).
//!
//! A real map raises SIGBUS where the kernel cannot back a page (weir's handler turns that
//! into a fault of the map); here the same cases mark the map faulted:
//!
//! * a read or write at or past the end of the file (a file cut short under the map);
//! * a read of a file armed with [`FaultyFs::fail_map_reads`] (a disk read error);
//! * a write to a file armed with [`FaultyFs::fail_map_writes`] (a full file system that
//!   allocates on write), or one that the byte budget of [`FaultyFs::fail_writes_after_bytes`]
//!   or a crash ([`FaultyFs::crash_after_ops`]) stops: a write through a map is a mutating
//!   operation like `write_all_at`, and lands in the same unsynced contents a power cut tears.
//!
//! A faulted map stays faulted; what a faulted read copied is zeros where it could not read.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::*;
use crate::log::mapped::{ReadMap, WriteMap};

impl Faults {
    fn hits(target: &Option<FsyncTarget>, path: &Path) -> bool {
        match target {
            Some(FsyncTarget::Any) => true,
            Some(FsyncTarget::Path(p)) => p == path,
            None => false,
        }
    }
}

/// A read-only map of a [`FaultyFs`] file.
pub(super) struct FaultyReadMap {
    state: Arc<Mutex<State>>,
    id: u64,
    path: PathBuf,
    generation: u64,
    len: usize,
    faulted: AtomicBool,
}

impl fmt::Debug for FaultyReadMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyReadMap").field("path", &self.path).field("len", &self.len).finish()
    }
}

impl ReadMap for FaultyReadMap {
    fn len(&self) -> usize {
        self.len
    }

    fn view(self: Arc<Self>, offset: usize, len: usize) -> Bytes {
        let mut buf = vec![0u8; len];
        let s = self.state.lock();
        let readable = s.check_handle(self.generation).is_ok() && !Faults::hits(&s.faults.map_reads, &self.path);
        let data = match s.file(self.id) {
            Ok(file) if readable => &file.current,
            _ => {
                self.faulted.store(true, Ordering::SeqCst);
                return Bytes::from(buf);
            }
        };
        let there = data.len().saturating_sub(offset).min(len);
        if there > 0 {
            buf[..there].copy_from_slice(&data[offset..offset + there]);
        }
        if there < len {
            // Past the end of the file: SIGBUS on a real map.
            self.faulted.store(true, Ordering::SeqCst);
        }
        Bytes::from(buf)
    }

    fn faulted(&self) -> bool {
        self.faulted.load(Ordering::SeqCst)
    }
}

/// A writable map of a [`FaultyFs`] file.
pub(super) struct FaultyWriteMap {
    state: Arc<Mutex<State>>,
    id: u64,
    path: PathBuf,
    generation: u64,
    len: usize,
    faulted: bool,
}

impl fmt::Debug for FaultyWriteMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyWriteMap").field("path", &self.path).field("len", &self.len).finish()
    }
}

impl WriteMap for FaultyWriteMap {
    fn len(&self) -> usize {
        self.len
    }

    fn copy_in(&mut self, offset: usize, data: &[u8]) {
        let mut s = self.state.lock();
        if s.check_handle(self.generation).is_err() || Faults::hits(&s.faults.map_writes, &self.path) {
            self.faulted = true;
            return;
        }
        let file_len = s.file(self.id).map_or(0, |f| f.current.len());
        let inside = file_len.saturating_sub(offset).min(data.len());
        if inside > 0 && s.write(self.id, &data[..inside], offset as u64).is_err() {
            self.faulted = true;
            return;
        }
        if inside < data.len() {
            // Past the end of the file: SIGBUS on a real map.
            self.faulted = true;
        }
    }

    fn prefault(&mut self, _offset: usize, _len: usize) {}

    fn faulted(&self) -> bool {
        self.faulted
    }
}

impl FaultyFile {
    pub(super) fn read_map(&self, len: u64) -> Option<io::Result<Arc<dyn ReadMap>>> {
        let s = self.state.lock();
        let len = usize::try_from(len).ok().filter(|&l| l > 0 && s.serve_maps)?;
        if let Err(e) = s.check_handle(self.generation) {
            return Some(Err(e));
        }
        Some(Ok(Arc::new(FaultyReadMap {
            state: Arc::clone(&self.state),
            id: self.id,
            path: self.path.clone(),
            generation: self.generation,
            len,
            faulted: AtomicBool::new(false),
        })))
    }

    pub(super) fn write_map(&self, len: u64) -> Option<io::Result<Box<dyn WriteMap>>> {
        let s = self.state.lock();
        let len = usize::try_from(len).ok().filter(|&l| l > 0 && s.serve_maps)?;
        if let Err(e) = s.check_handle(self.generation) {
            return Some(Err(e));
        }
        Some(Ok(Box::new(FaultyWriteMap {
            state: Arc::clone(&self.state),
            id: self.id,
            path: self.path.clone(),
            generation: self.generation,
            len,
            faulted: false,
        })))
    }
}

impl FaultyFs {
    /// Whether files offer memory maps (on by default, as the real file system does). Off, the
    /// log reads through `read_exact_at` and appends through `write_all_at` only.
    pub fn serve_maps(&self, on: bool) {
        self.state.lock().serve_maps = on;
    }

    /// Reads through memory maps of the file at `path` (`None`: of every file) fault, as a
    /// page the disk cannot read does on a real map, until [`FaultyFs::clear_faults`] or a
    /// power cut. Reads through `read_exact_at` are not affected.
    pub fn fail_map_reads(&self, path: Option<&Path>) {
        self.state.lock().faults.map_reads = Some(target(path));
    }

    /// Writes through writable maps of the file at `path` (`None`: of every file) fault and
    /// store nothing, as on a full file system that allocates blocks on write, until
    /// [`FaultyFs::clear_faults`] or a power cut.
    pub fn fail_map_writes(&self, path: Option<&Path>) {
        self.state.lock().faults.map_writes = Some(target(path));
    }
}

fn target(path: Option<&Path>) -> FsyncTarget {
    path.map_or(FsyncTarget::Any, |p| FsyncTarget::Path(p.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mapped;

    /// Reads `n` bytes at `offset` through `map` as the log does.
    fn read(map: &Arc<dyn ReadMap>, offset: u64, n: usize) -> io::Result<Vec<u8>> {
        mapped::with_view(map, offset, n, |b| b.to_vec())
    }

    fn file_with(contents: &[u8]) -> (FaultyFs, PathBuf, Arc<dyn LogFile>) {
        let fs = FaultyFs::new();
        let dir = PathBuf::from("/data");
        fs.create_durable_dir_all(&dir);
        let path = dir.join("f");
        let file = fs.open_file(&path, true).expect("open");
        file.write_all_at(contents, 0).expect("write");
        (fs, path, file)
    }

    #[test]
    fn a_read_map_sees_later_writes_and_faults_past_the_end_of_the_file() -> io::Result<()> {
        let (_fs, _path, file) = file_with(b"hello");
        let map = file.map_read(64).expect("maps are served")?;
        assert_eq!(read(&map, 0, 5)?, b"hello");
        file.write_all_at(b" world", 5)?;
        assert_eq!(read(&map, 5, 6)?, b" world", "the map shows what was written after it was made");
        file.set_len(3)?;
        assert!(read(&map, 0, 4).is_err(), "past the end of the file");
        assert!(read(&map, 0, 1).is_err(), "a faulted map stays faulted");
        let fresh = file.map_read(64).expect("maps are served")?;
        assert_eq!(read(&fresh, 0, 3)?, b"hel");
        Ok(())
    }

    #[test]
    fn an_injected_read_fault_fails_map_reads_of_its_file_only() -> io::Result<()> {
        let (fs, path, file) = file_with(b"abcdef");
        let other = fs.open_file(Path::new("/data/g"), true)?;
        other.write_all_at(b"xyz", 0)?;
        fs.fail_map_reads(Some(&path));
        let map = file.map_read(6).expect("maps are served")?;
        let seen = mapped::with_view(&map, 0, 6, |b| b.to_vec());
        assert!(seen.is_err(), "a faulted read returns nothing");
        assert!(read(&map, 0, 1).is_err(), "a faulted map stays faulted");
        let other_map = other.map_read(3).expect("maps are served")?;
        assert_eq!(read(&other_map, 0, 3)?, b"xyz");
        let mut plain = [0u8; 6];
        file.read_exact_at(&mut plain, 0)?;
        assert_eq!(&plain, b"abcdef", "reads through the file still work");
        fs.clear_faults();
        let map = file.map_read(6).expect("maps are served")?;
        assert_eq!(read(&map, 0, 6)?, b"abcdef");
        Ok(())
    }

    #[test]
    fn writes_through_a_map_are_unsynced_writes_and_fault_as_armed() -> io::Result<()> {
        let (fs, path, file) = file_with(&[0u8; 16]);
        fs.sync_dir(Path::new("/data"))?;
        file.sync_data()?;
        let mut map = file.map_write(64).expect("maps are served")?;
        let before = fs.op_count();
        mapped::write(map.as_mut(), 0, b"mapped")?;
        assert_eq!(fs.op_count(), before + 1, "a write through a map is a mutating operation");
        assert_eq!(&fs.contents(&path).expect("file")[..6], b"mapped");
        assert_eq!(fs.durable_contents(&path).expect("file"), vec![0u8; 16], "not durable before a sync");
        assert!(mapped::write(map.as_mut(), 14, b"past").is_err(), "past the end of the file");
        assert_eq!(fs.contents(&path).map(|c| c.len()), Some(16), "a map never grows the file");

        let mut map = file.map_write(64).expect("maps are served")?;
        fs.fail_map_writes(None);
        assert!(mapped::write(map.as_mut(), 6, b"lost").is_err());
        assert_eq!(&fs.contents(&path).expect("file")[6..10], &[0u8; 4], "a faulted write stores nothing");
        fs.clear_faults();
        let mut map = file.map_write(64).expect("maps are served")?;
        fs.fail_writes_after_bytes(2, WriteFault::Enospc);
        assert!(mapped::write(map.as_mut(), 6, b"half").is_err(), "the byte budget applies to maps too");
        fs.clear_faults();
        let mut map = file.map_write(64).expect("maps are served")?;
        fs.crash_after_ops(0);
        assert!(mapped::write(map.as_mut(), 0, b"x").is_err(), "a crash stops writes through maps");
        fs.power_cut();
        assert_eq!(fs.read_file(&path)?, vec![0u8; 16], "only synced bytes survive");
        assert!(file.map_read(4).expect("served").is_err(), "a handle from before the power cut maps nothing");
        Ok(())
    }

    #[test]
    fn maps_can_be_switched_off() -> io::Result<()> {
        let (fs, _path, file) = file_with(b"abc");
        fs.serve_maps(false);
        assert!(file.map_read(3).is_none() && file.map_write(3).is_none());
        fs.serve_maps(true);
        assert!(file.map_read(3).is_some());
        Ok(())
    }
}
