//! One process per data directory: an exclusive advisory lock on `DATA_DIR/LOCK`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// File name of the lock file inside a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the lock until dropped (the operating system also releases it if the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

fn held_by_us(file: &mut File, until: Instant) -> bool {
    if Instant::now() >= until {
        return false;
    }
    let mut holder = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut holder);
    holder.trim() == format!("pid {}", std::process::id())
}

impl DirLock {
    /// Takes the lock on `dir`, waiting up to `wait` for another process to release it.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        let deadline = Instant::now() + wait;
        // A child process that another thread is starting shares our lock's file description
        // between fork and exec: our own pid in the file means "released in a moment".
        let own_grace = Instant::now() + Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline || held_by_us(&mut file, own_grace) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                        holder: (!holder.is_empty()).then(|| holder.chars().take(200).collect()),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
        }
        // Who holds it, for the error message a second process prints. Informational only.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(DirLock { _file: file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
