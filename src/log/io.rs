//! The I/O seam: every file the engine touches goes through [`Vfs`] and [`LogFile`], so tests
//! can swap in a file system that fails (short writes, ENOSPC, EIO, lying fsync).

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::log::mapped::{self, ReadMap, WriteMap};

/// An open file of the log: positional reads and writes, fsync, length.
// `len` is fallible, so an `is_empty` would only restate it.
#[allow(clippy::len_without_is_empty)]
pub trait LogFile: Send + Sync + Debug {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// A read-only memory map of the first `len` bytes, which may reach past the current end of
    /// a growing file (only bytes below the end may then be read). Its bytes are read through
    /// [`mapped::with_view`], which turns a page that cannot be read into an error. `None` where the file system offers no maps (reads then use
    /// [`LogFile::read_exact_at`]).
    fn map_read(&self, len: u64) -> Option<io::Result<Arc<dyn ReadMap>>> {
        let _ = len;
        None
    }
    /// A shared writable memory map of the first `len` bytes, which may reach past the end of
    /// the file (those pages must never be touched): the log's writer copies frames into the
    /// space it preallocated instead of making a `write` call per append, through
    /// [`mapped::write`](fn@mapped::write), which turns a page that cannot be written into an
    /// error. `None` where
    /// the file system offers no maps (the writer then uses [`LogFile::write_all_at`]).
    fn map_write(&self, len: u64) -> Option<io::Result<Box<dyn WriteMap>>> {
        let _ = len;
        None
    }
}

static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Writes zeros over `[from, to)` of `file`.
pub fn write_zeros(file: &(impl LogFile + ?Sized), from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The file-system operations the engine needs.
pub trait Vfs: Send + Sync + Debug {
    /// Opens a file for reading and writing, creating it if `create`.
    fn open_file(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>>;
    /// Reads a whole small file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Replaces `path` with `data` atomically and durably: temporary file, fsync, rename, fsync
    /// of the directory.
    fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl LogFile for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn map_read(&self, len: u64) -> Option<io::Result<Arc<dyn ReadMap>>> {
        // Pages of the map past the end of the file are never touched on purpose: readers read
        // below a segment's length of whole frames, which is never more than the file's length
        // (a failed write or a seal truncates back to no less than that). If one is touched
        // anyway (the file was cut short by someone else) or cannot be read, that is a fault
        // of the map, reported as an error (`mapped`).
        mapped::map_file(&self.file, usize::try_from(len).ok()?)
    }
    fn map_write(&self, len: u64) -> Option<io::Result<Box<dyn WriteMap>>> {
        // The log's writer writes through the map only below the file's length (into the zeros
        // it wrote ahead, whose blocks are allocated), is the only one writing those bytes, and
        // drops the map before it ever shortens the file. A write the file system still cannot
        // back (it allocates on every write, and is full) is a fault of the map: an error.
        mapped::map_file_mut(&self.file, usize::try_from(len).ok()?)
    }
}

impl Vfs for RealFs {
    fn open_file(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let file = OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)?;
        Ok(Arc::new(RealFile { file }))
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = tmp_path(path);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, path)?;
        self.sync_dir(path.parent().unwrap_or(Path::new(".")))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Creates `dir` and any missing parents, and makes each new entry durable by fsyncing the
/// directory that holds it (a power cut must not take back a directory whose files were
/// synced).
pub fn create_dir_durably(vfs: &dyn Vfs, dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || vfs.list_dir(p).is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    vfs.create_dir_all(dir)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            vfs.sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The temporary name used while a file is replaced atomically.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}
