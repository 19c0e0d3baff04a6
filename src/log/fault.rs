//! A fault-injecting, in-memory file system for tests: [`FaultyFs`].
//!
//! It implements [`Vfs`] over memory and keeps, for every file and directory, what a power cut
//! would leave apart from what the running process sees:
//!
//! * a file has `current` contents (what reads return) and `synced` contents (what survives a
//!   power cut); [`LogFile::sync_data`] copies the first to the second;
//! * a directory has `current` entries and `durable` entries; creating, renaming or removing a
//!   file or directory changes only the current ones, and [`Vfs::sync_dir`] of the directory
//!   copies them to the durable ones. A file created and never dir-synced vanishes on a power
//!   cut; a rename or removal that was not dir-synced is undone.
//!
//! Faults are armed through methods on the (shared) [`FaultyFs`] while an engine uses it:
//!
//! * [`FaultyFs::fail_writes_after_bytes`]: after a budget of bytes, writes fail as a short
//!   write, ENOSPC or EIO ([`WriteFault`]);
//! * [`FaultyFs::fail_next_fsync`]: the next `sync_data` fails once with EIO and, as Linux may,
//!   drops the file's unsynced data (the pessimistic case);
//! * [`FaultyFs::lying_fsync`]: syncs report success and make nothing durable (a disk that
//!   lies about its cache; the next power cut shows it);
//! * [`FaultyFs::crash_after_ops`]: after `n` more mutating operations every operation fails
//!   with EIO, as if the process had died at that point;
//! * [`FaultyFs::power_cut`]: everything reverts to its durable state and the faults clear;
//!   [`FaultyFs::power_cut_with_torn_tails`] keeps part of each unsynced tail (and junk), and
//!   [`FaultyFs::power_cut_out_of_order`] keeps or drops each unsynced 4 KiB page (or 512-byte
//!   sector) on its own, as a disk that writes pages back out of order does.
//! * [`FaultyFs::fail_map_reads`], [`FaultyFs::fail_map_writes`]: accesses through memory maps
//!   fault, as pages a real map cannot back do. Files offer maps as real ones do (the log reads
//!   and appends through them), and a write through one is a write like any other: counted,
//!   within the byte budget, torn by a power cut ([`FaultyFs::serve_maps`] turns maps off).
//!
//! [`FaultyFs::op_count`] counts mutating operations (file creation, write, truncation, sync,
//! rename, removal, directory creation and sync), so a test can run a workload once to count
//! them and then crash it at every boundary in turn.
//!
//! Paths are only names here: nothing touches the real disk, so a test can hand an engine a
//! real (empty) directory, which it locks on the real disk, while every data file lives in
//! memory. Relative paths are taken from the root of the in-memory tree.
//!
//! ```
//! use std::path::Path;
//! use std::sync::Arc;
//! use weir::log::fault::FaultyFs;
//! use weir::log::io::Vfs;
//!
//! let fs = Arc::new(FaultyFs::new());
//! fs.create_durable_dir_all(Path::new("/data"));
//! let file = fs.open_file(Path::new("/data/a"), true)?;
//! fs.sync_dir(Path::new("/data"))?;
//! file.write_all_at(b"durable", 0)?;
//! file.sync_data()?;
//! file.write_all_at(b" and not", 7)?;
//! fs.power_cut();
//! assert_eq!(fs.read_file(Path::new("/data/a"))?, b"durable");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::io::{tmp_path, LogFile, Vfs};
use super::mapped::{ReadMap, WriteMap};

mod map;

/// How often a sync under [`FaultyFs::concurrent_fsync`] lets other threads run.
const CONCURRENT_FSYNC_YIELDS: usize = 20;

/// `EIO` on Linux.
const EIO: i32 = 5;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;
/// Id of the root directory.
const ROOT: u64 = 0;

/// How writes fail once the budget of [`FaultyFs::fail_writes_after_bytes`] is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The write that crosses the budget stores the bytes that still fit, then fails with
    /// [`io::ErrorKind::WriteZero`] (what `write_all` reports when the device stops taking
    /// bytes).
    ShortWrite,
    /// Disk full: the write that crosses the budget stores the bytes that still fit, then fails
    /// with `ENOSPC` (raw OS error 28).
    Enospc,
    /// The write that crosses the budget stores nothing and fails with `EIO` (raw OS error 5).
    Eio,
}

/// An entry of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Default)]
struct FileNode {
    /// What reads see.
    current: Vec<u8>,
    /// What a power cut leaves.
    synced: Vec<u8>,
    /// The ticket of the sync `synced` came from: a sync that began earlier and ends later
    /// makes nothing durable that the later one did not (durability only moves forward).
    synced_ticket: u64,
}

#[derive(Debug, Default, Clone)]
struct DirNode {
    /// What `list_dir` and path lookups see.
    current: BTreeMap<String, Node>,
    /// What a power cut leaves.
    durable: BTreeMap<String, Node>,
}

/// Which file the next failing fsync (or an armed map fault) hits.
#[derive(Debug, Clone)]
enum FsyncTarget {
    Any,
    Path(PathBuf),
}

#[derive(Debug, Default)]
struct Faults {
    /// Bytes writes may still store, and how they fail after that.
    write_budget: Option<(u64, WriteFault)>,
    /// The next matching `sync_data` fails (once).
    fail_fsync: Option<FsyncTarget>,
    /// Syncs succeed without making anything durable.
    lying: bool,
    /// Mutating operations left before the crash.
    crash_countdown: Option<u64>,
    /// The crash happened: every operation fails.
    crashed: bool,
    /// Reads through maps of this file fault (see `map.rs`).
    map_reads: Option<FsyncTarget>,
    /// Writes through maps of this file fault.
    map_writes: Option<FsyncTarget>,
}

#[derive(Debug)]
struct State {
    files: HashMap<u64, FileNode>,
    dirs: HashMap<u64, DirNode>,
    next_id: u64,
    /// Bumped by every power cut; handles opened before it fail.
    generation: u64,
    /// Mutating operations performed.
    ops: u64,
    faults: Faults,
    /// Directory creation is durable at once (see [`FaultyFs::mkdir_is_durable`]).
    mkdir_durable: bool,
    /// File syncs let other threads run (see [`FaultyFs::concurrent_fsync`]).
    concurrent_fsync: bool,
    /// File syncs begun so far (their tickets).
    sync_tickets: u64,
    /// Files offer memory maps (see [`FaultyFs::serve_maps`]).
    serve_maps: bool,
}

/// A fault-injecting in-memory file system. See the [module documentation](self).
///
/// Every method takes `&self` and is thread-safe: keep an `Arc<FaultyFs>`, hand a clone to
/// [`Options::vfs`](crate::Options::vfs) and arm faults through the other one.
pub struct FaultyFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("FaultyFs")
            .field("files", &s.files.len())
            .field("dirs", &s.dirs.len())
            .field("ops", &s.ops)
            .field("generation", &s.generation)
            .field("faults", &s.faults)
            .finish()
    }
}

impl Default for FaultyFs {
    fn default() -> Self {
        FaultyFs::new()
    }
}

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

fn not_a_directory(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotADirectory, format!("{}: not a directory", path.display()))
}

fn is_a_directory(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::IsADirectory, format!("{}: is a directory", path.display()))
}

/// The names along `path`, with `.` and `..` resolved.
fn components(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => match name.to_str() {
                Some(name) => out.push(name.to_string()),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: names must be UTF-8", path.display()),
                    ))
                }
            },
        }
    }
    Ok(out)
}

impl State {
    fn new() -> State {
        let mut dirs = HashMap::new();
        dirs.insert(ROOT, DirNode::default());
        State {
            files: HashMap::new(),
            dirs,
            next_id: ROOT + 1,
            generation: 0,
            ops: 0,
            faults: Faults::default(),
            mkdir_durable: false,
            concurrent_fsync: false,
            sync_tickets: 0,
            serve_maps: true,
        }
    }

    /// Fails every operation once the crash happened.
    fn alive(&self) -> io::Result<()> {
        if self.faults.crashed {
            return Err(os_error(EIO));
        }
        Ok(())
    }

    /// Fails operations through a handle opened before the last power cut.
    fn check_handle(&self, generation: u64) -> io::Result<()> {
        self.alive()?;
        if generation != self.generation {
            return Err(io::Error::other("file handle opened before a power cut"));
        }
        Ok(())
    }

    /// The gate every mutating operation passes: counts it, or crashes here.
    fn mutate(&mut self) -> io::Result<()> {
        self.alive()?;
        if let Some(left) = self.faults.crash_countdown.as_mut() {
            if *left == 0 {
                self.faults.crashed = true;
                self.faults.crash_countdown = None;
                return Err(os_error(EIO));
            }
            *left -= 1;
        }
        self.ops += 1;
        Ok(())
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn dir(&self, id: u64) -> io::Result<&DirNode> {
        self.dirs.get(&id).ok_or_else(|| io::Error::other("dangling directory id"))
    }

    fn dir_mut(&mut self, id: u64) -> io::Result<&mut DirNode> {
        self.dirs.get_mut(&id).ok_or_else(|| io::Error::other("dangling directory id"))
    }

    fn file(&self, id: u64) -> io::Result<&FileNode> {
        self.files.get(&id).ok_or_else(|| io::Error::other("dangling file id"))
    }

    fn file_mut(&mut self, id: u64) -> io::Result<&mut FileNode> {
        self.files.get_mut(&id).ok_or_else(|| io::Error::other("dangling file id"))
    }

    /// The directory at `names` (current view).
    fn walk(&self, names: &[String], path: &Path) -> io::Result<u64> {
        let mut at = ROOT;
        for name in names {
            match self.dir(at)?.current.get(name) {
                Some(Node::Dir(id)) => at = *id,
                Some(Node::File(_)) => return Err(not_a_directory(path)),
                None => return Err(not_found(path)),
            }
        }
        Ok(at)
    }

    /// The parent directory of `path` and the last name in it.
    fn parent_of(&self, path: &Path) -> io::Result<(u64, String)> {
        let mut names = components(path)?;
        let Some(name) = names.pop() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the root has no parent"));
        };
        Ok((self.walk(&names, path)?, name))
    }

    fn lookup(&self, path: &Path) -> io::Result<Option<Node>> {
        let names = components(path)?;
        if names.is_empty() {
            return Ok(Some(Node::Dir(ROOT)));
        }
        let (parent, name) = self.parent_of(path)?;
        Ok(self.dir(parent)?.current.get(&name).copied())
    }

    fn dir_at(&self, path: &Path) -> io::Result<u64> {
        match self.lookup(path)? {
            Some(Node::Dir(id)) => Ok(id),
            Some(Node::File(_)) => Err(not_a_directory(path)),
            None => Err(not_found(path)),
        }
    }

    fn file_at(&self, path: &Path) -> io::Result<u64> {
        match self.lookup(path)? {
            Some(Node::File(id)) => Ok(id),
            Some(Node::Dir(_)) => Err(is_a_directory(path)),
            None => Err(not_found(path)),
        }
    }

    /// Opens `path`, creating it (one mutating operation) if `create` and missing.
    fn open(&mut self, path: &Path, create: bool) -> io::Result<u64> {
        self.alive()?;
        let (parent, name) = self.parent_of(path)?;
        match self.dir(parent)?.current.get(&name) {
            Some(Node::File(id)) => Ok(*id),
            Some(Node::Dir(_)) => Err(is_a_directory(path)),
            None if !create => Err(not_found(path)),
            None => {
                self.mutate()?;
                let id = self.new_id();
                self.files.insert(id, FileNode::default());
                self.dir_mut(parent)?.current.insert(name, Node::File(id));
                Ok(id)
            }
        }
    }

    fn write(&mut self, id: u64, buf: &[u8], offset: u64) -> io::Result<()> {
        self.mutate()?;
        let (fits, failure) = match self.faults.write_budget {
            Some((left, kind)) if buf.len() as u64 > left => {
                let fits = if kind == WriteFault::Eio { 0 } else { left as usize };
                let error = match kind {
                    WriteFault::ShortWrite => io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short write: {fits} of {} bytes written", buf.len()),
                    ),
                    WriteFault::Enospc => os_error(ENOSPC),
                    WriteFault::Eio => os_error(EIO),
                };
                // Once a write failed, every later one fails too.
                self.faults.write_budget = Some((0, kind));
                (fits, Some(error))
            }
            Some((left, kind)) => {
                self.faults.write_budget = Some((left - buf.len() as u64, kind));
                (buf.len(), None)
            }
            None => (buf.len(), None),
        };
        let file = self.file_mut(id)?;
        let start = usize::try_from(offset).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset"))?;
        let end = start + fits;
        if fits > 0 {
            if file.current.len() < end {
                file.current.resize(end, 0);
            }
            file.current[start..end].copy_from_slice(&buf[..fits]);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn sync_file(&mut self, id: u64, path: &Path) -> io::Result<()> {
        let begun = self.begin_sync(id, path)?;
        self.finish_sync(id, begun)
    }

    /// The first half of a file sync: counts it, applies the armed faults, and returns what it
    /// makes durable with its ticket (`None` for a lying disk).
    fn begin_sync(&mut self, id: u64, path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
        self.mutate()?;
        self.sync_tickets += 1;
        let ticket = self.sync_tickets;
        let fails = match &self.faults.fail_fsync {
            Some(FsyncTarget::Any) => true,
            Some(FsyncTarget::Path(p)) => p == path,
            None => false,
        };
        let lying = self.faults.lying;
        let file = self.file_mut(id)?;
        if fails {
            // Linux may drop the dirty pages of a file whose writeback failed; the pessimistic
            // model drops all of them.
            file.current = file.synced.clone();
            self.faults.fail_fsync = None;
            return Err(os_error(EIO));
        }
        Ok((!lying).then(|| (ticket, file.current.clone())))
    }

    /// The second half: what the sync took becomes durable, unless a sync that began later
    /// already finished.
    fn finish_sync(&mut self, id: u64, begun: Option<(u64, Vec<u8>)>) -> io::Result<()> {
        let file = self.file_mut(id)?;
        if let Some((ticket, contents)) = begun {
            if ticket > file.synced_ticket {
                file.synced = contents;
                file.synced_ticket = ticket;
            }
        }
        Ok(())
    }

    fn set_len(&mut self, id: u64, len: u64) -> io::Result<()> {
        self.mutate()?;
        let len = usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length"))?;
        self.file_mut(id)?.current.resize(len, 0);
        Ok(())
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        self.mutate()?;
        let id = self.dir_at(path)?;
        if !self.faults.lying {
            let dir = self.dir_mut(id)?;
            dir.durable = dir.current.clone();
        }
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.mutate()?;
        let (from_parent, from_name) = self.parent_of(from)?;
        let node = self.dir(from_parent)?.current.get(&from_name).copied().ok_or_else(|| not_found(from))?;
        let (to_parent, to_name) = self.parent_of(to)?;
        if let Node::Dir(_) = node {
            let (f, t) = (components(from)?, components(to)?);
            if t.len() > f.len() && t.starts_with(&f) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot move a directory into itself"));
            }
        }
        match (node, self.dir(to_parent)?.current.get(&to_name).copied()) {
            (Node::File(_), Some(Node::Dir(_))) => return Err(is_a_directory(to)),
            (Node::Dir(_), Some(Node::File(_))) => return Err(not_a_directory(to)),
            (Node::Dir(_), Some(Node::Dir(target))) if !self.dir(target)?.current.is_empty() => {
                return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, format!("{}", to.display())))
            }
            _ => {}
        }
        self.dir_mut(from_parent)?.current.remove(&from_name);
        self.dir_mut(to_parent)?.current.insert(to_name, node);
        Ok(())
    }

    fn remove(&mut self, path: &Path, dir: bool) -> io::Result<()> {
        self.alive()?;
        let names = components(path)?;
        if names.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot remove the root"));
        }
        let (parent, name) = self.parent_of(path)?;
        match (self.dir(parent)?.current.get(&name), dir) {
            (None, _) => return Err(not_found(path)),
            (Some(Node::Dir(_)), false) => return Err(is_a_directory(path)),
            (Some(Node::File(_)), true) => return Err(not_a_directory(path)),
            _ => {}
        }
        self.mutate()?;
        self.dir_mut(parent)?.current.remove(&name);
        Ok(())
    }

    /// Creates the missing directories along `names`, each one a mutating operation (durable
    /// at once if `durable`).
    fn mkdirs(&mut self, path: &Path, durable: bool, count: bool) -> io::Result<()> {
        self.alive()?;
        let names = components(path)?;
        let mut at = ROOT;
        for name in names {
            match self.dir(at)?.current.get(&name).copied() {
                Some(Node::Dir(id)) => {
                    if durable {
                        self.dir_mut(at)?.durable.insert(name, Node::Dir(id));
                    }
                    at = id;
                }
                Some(Node::File(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: a file is in the way", path.display()),
                    ))
                }
                None => {
                    if count {
                        self.mutate()?;
                    }
                    let id = self.new_id();
                    self.dirs.insert(id, DirNode::default());
                    let parent = self.dir_mut(at)?;
                    parent.current.insert(name.clone(), Node::Dir(id));
                    if durable {
                        parent.durable.insert(name, Node::Dir(id));
                    }
                    at = id;
                }
            }
        }
        Ok(())
    }

    /// What the file at `path` would hold after a power cut now (durable entries, synced bytes).
    fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let names = components(path).ok()?;
        let (last, parents) = names.split_last()?;
        let mut at = ROOT;
        for name in parents {
            match self.dirs.get(&at)?.durable.get(name)? {
                Node::Dir(id) => at = *id,
                Node::File(_) => return None,
            }
        }
        match self.dirs.get(&at)?.durable.get(last)? {
            Node::File(id) => Some(self.files.get(id)?.synced.clone()),
            Node::Dir(_) => None,
        }
    }

    fn power_cut(&mut self, loss: Loss) {
        for (&id, file) in self.files.iter_mut() {
            let after = match loss {
                Loss::Tail { keep_unsynced, garbage } => torn_tail(&file.synced, &file.current, keep_unsynced, garbage),
                Loss::Pages { seed } => scrambled_pages(&file.synced, &file.current, seed ^ id.wrapping_mul(GOLDEN)),
            };
            file.current = after.clone();
            file.synced = after;
        }
        for dir in self.dirs.values_mut() {
            dir.current = dir.durable.clone();
        }
        // Forget what no durable directory reaches any more.
        let mut live_dirs = HashSet::from([ROOT]);
        let mut live_files = HashSet::new();
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            let Some(dir) = self.dirs.get(&id) else { continue };
            for node in dir.current.values() {
                match *node {
                    Node::Dir(d) if live_dirs.insert(d) => stack.push(d),
                    Node::Dir(_) => {}
                    Node::File(f) => {
                        live_files.insert(f);
                    }
                }
            }
        }
        self.dirs.retain(|id, _| live_dirs.contains(id));
        self.files.retain(|id, _| live_files.contains(id));
        self.faults = Faults::default();
        self.generation += 1;
    }
}

/// What a power cut does to the data written since a file's last sync.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// The unsynced change survives from its first byte on for `keep_unsynced` bytes, then up
    /// to `garbage` bytes of junk (see [`FaultyFs::power_cut_with_torn_tails`]).
    Tail { keep_unsynced: u64, garbage: u64 },
    /// Each changed page survives or not on its own (see [`FaultyFs::power_cut_out_of_order`]).
    Pages { seed: u64 },
}

/// Mixes file ids into the seed of [`Loss::Pages`] (the 64-bit golden ratio).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// The unit in which a disk writes pages back, and in which it may tear one.
const PAGE: usize = 4096;
const SECTOR: usize = 512;

/// Assumption 2 of the format as the tail model has it: an unsynced write may survive in
/// part, or as garbage, from where it starts on, whether it was appended or overwrote
/// preallocated zeros; what lies before it stays, and so does the synced length if the file
/// was cut since (the cut was not synced either).
fn torn_tail(synced: &[u8], current: &[u8], keep_unsynced: u64, garbage: u64) -> Vec<u8> {
    let mut after = synced.to_vec();
    if let Some((start, end)) = unsynced_change(synced, current) {
        let extra = (end - start) as u64;
        let kept = keep_unsynced.min(extra) as usize;
        let junk = garbage.min(extra - kept as u64) as usize;
        let tail =
            current[start..start + kept].iter().copied().chain((0..junk).map(|i| 0xA5 ^ (i as u8).wrapping_mul(31)));
        for (i, byte) in tail.enumerate() {
            match after.get_mut(start + i) {
                Some(b) => *b = byte,
                None => after.push(byte),
            }
        }
    }
    after
}

/// splitmix64: a small, seedable generator, so a power cut can be replayed exactly.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a disk that writes dirty pages back in any order leaves of a file: each 4 KiB page
/// that differs from its synced contents is written whole, not at all, or torn (each of its
/// 512-byte sectors written or not), independently of the pages before it; the file's new
/// length survives or not on its own too (a dropped page inside a grown file reads as zeros).
/// So a later frame can survive while an earlier one is lost. Synced pages never change.
fn scrambled_pages(synced: &[u8], current: &[u8], seed: u64) -> Vec<u8> {
    if synced == current {
        return synced.to_vec();
    }
    let mut rng = seed;
    let len = if synced.len() == current.len() || next_random(&mut rng).is_multiple_of(2) {
        current.len()
    } else {
        synced.len()
    };
    let byte = |data: &[u8], i: usize| data.get(i).copied().unwrap_or(0);
    let mut after = Vec::with_capacity(len);
    for page_start in (0..len).step_by(PAGE) {
        let page_end = (page_start + PAGE).min(len);
        let differs = (page_start..page_end).any(|i| byte(current, i) != byte(synced, i));
        // Kept, dropped or torn, 2:1:1.
        let fate = if differs { next_random(&mut rng) % 4 } else { 0 };
        for sector_start in (page_start..page_end).step_by(SECTOR) {
            let sector_end = (sector_start + SECTOR).min(page_end);
            let keep = match fate {
                0 | 1 => true,
                2 => false,
                _ => next_random(&mut rng).is_multiple_of(2),
            };
            let source = if keep { current } else { synced };
            after.extend((sector_start..sector_end).map(|i| byte(source, i)));
        }
    }
    after
}

/// Where `current` differs from `synced`, as `[start, end)`: the bytes a power cut may tear.
/// An append differs from the old end on; an overwrite of preallocated zeros from its first
/// changed byte. A file that only shrank (a cut not yet synced) has no such bytes: it reverts.
fn unsynced_change(synced: &[u8], current: &[u8]) -> Option<(usize, usize)> {
    let common = synced.len().min(current.len());
    let start = current[..common].iter().zip(synced).position(|(a, b)| a != b).unwrap_or(common);
    let end = if current.len() > synced.len() {
        current.len()
    } else {
        current.iter().zip(synced).rposition(|(a, b)| a != b).map_or(start, |i| i + 1)
    };
    (start < end).then_some((start, end))
}

impl FaultyFs {
    /// An empty file system (just the root directory), with no faults armed.
    pub fn new() -> FaultyFs {
        FaultyFs { state: Arc::new(Mutex::new(State::new())) }
    }

    /// Creates `dir` and its missing parents as directories that already existed durably (the
    /// place a test puts its data directory). Counts no operation and ignores faults.
    pub fn create_durable_dir_all(&self, dir: &Path) {
        let mut s = self.state.lock();
        let crashed = std::mem::take(&mut s.faults.crashed);
        // Only a file in the way can fail this, which a test setting up its tree does not do.
        let _ = s.mkdirs(dir, true, false);
        s.faults.crashed = crashed;
    }

    /// After `bytes` more bytes have been written (to any file), writes fail as `kind` says;
    /// once one has failed, every later write fails the same way, storing nothing, until
    /// [`FaultyFs::clear_faults`] or [`FaultyFs::power_cut`].
    pub fn fail_writes_after_bytes(&self, bytes: u64, kind: WriteFault) {
        self.state.lock().faults.write_budget = Some((bytes, kind));
    }

    /// The next `sync_data` of any file fails once with `EIO` and drops that file's unsynced
    /// data (its current contents revert to its synced ones), as Linux may after a writeback
    /// error.
    pub fn fail_next_fsync(&self) {
        self.state.lock().faults.fail_fsync = Some(FsyncTarget::Any);
    }

    /// Like [`FaultyFs::fail_next_fsync`], for the next `sync_data` of a file opened at `path`.
    pub fn fail_next_fsync_of(&self, path: &Path) {
        self.state.lock().faults.fail_fsync = Some(FsyncTarget::Path(path.to_path_buf()));
    }

    /// While on, `sync_data` and `sync_dir` report success and make nothing durable: a disk that
    /// acknowledges cache flushes it never did. A later [`FaultyFs::power_cut`] loses it all.
    pub fn lying_fsync(&self, on: bool) {
        self.state.lock().faults.lying = on;
    }

    /// After `n` more mutating operations, every operation (reads included) fails with `EIO`:
    /// the point where the process died. `crash_after_ops(0)` fails the next mutating one.
    pub fn crash_after_ops(&self, n: u64) {
        self.state.lock().faults.crash_countdown = Some(n);
    }

    /// True once a crash armed by [`FaultyFs::crash_after_ops`] has happened.
    pub fn crashed(&self) -> bool {
        self.state.lock().faults.crashed
    }

    /// Disarms every fault (a crash that happened included) without losing anything.
    pub fn clear_faults(&self) {
        self.state.lock().faults = Faults::default();
    }

    /// While on, `sync_data` makes durable what was written before it began and lets other
    /// threads run before it returns (the state is unlocked meanwhile), as a real fsync lets
    /// writers go on: frames written while it runs wait for the next one, so one group commit
    /// covers frames of several writers. A crash or power cut meanwhile fails it.
    pub fn concurrent_fsync(&self, on: bool) {
        self.state.lock().concurrent_fsync = on;
    }

    /// Whether a directory is durable in its parent as soon as it is created. Off by default,
    /// as POSIX has it (a new directory's entry needs an fsync of its parent); on models file
    /// systems that journal the creation with the next fsync of anything.
    pub fn mkdir_is_durable(&self, on: bool) {
        self.state.lock().mkdir_durable = on;
    }

    /// Power loss: every file reverts to its synced contents and every directory to its
    /// durable entries (files and directories reachable only through undurable entries are
    /// gone); faults clear; handles opened before now fail.
    pub fn power_cut(&self) {
        self.state.lock().power_cut(Loss::Tail { keep_unsynced: 0, garbage: 0 });
    }

    /// Power loss as [`FaultyFs::power_cut`], except that a file changed since its last sync
    /// (appended to, or overwritten from some offset on, without shrinking) keeps up to
    /// `keep_unsynced` bytes of the change from its first changed byte, followed by up to
    /// `garbage` bytes of junk (never more than was changed): the torn tails format-spec.md
    /// allows.
    pub fn power_cut_with_torn_tails(&self, keep_unsynced: u64, garbage: u64) {
        self.state.lock().power_cut(Loss::Tail { keep_unsynced, garbage });
    }

    /// Power loss on a disk that writes dirty pages back in any order: of every file changed
    /// since its last sync, each 4 KiB page that differs from the synced contents survives
    /// whole, not at all, or torn at 512-byte sectors, each page independently, and a grown or
    /// shrunk file keeps its new length or its old one (a page lost inside a grown file reads
    /// as zeros). A frame written after another can survive while the earlier one is lost:
    /// what an fsync that never completed may leave of a group commit. The choices are a
    /// function of `seed` and the file, so a failure can be replayed. Directories, faults and
    /// handles as [`FaultyFs::power_cut`].
    pub fn power_cut_out_of_order(&self, seed: u64) {
        self.state.lock().power_cut(Loss::Pages { seed });
    }

    /// Makes every file's contents and every directory entry durable, as `sync(2)` followed by
    /// a clean shutdown would. Counts no operation and ignores faults.
    pub fn sync_all(&self) {
        let mut s = self.state.lock();
        s.sync_tickets += 1;
        let ticket = s.sync_tickets;
        for file in s.files.values_mut() {
            file.synced = file.current.clone();
            file.synced_ticket = ticket;
        }
        for dir in s.dirs.values_mut() {
            dir.durable = dir.current.clone();
        }
    }

    /// A separate file system holding what a power cut now would leave of this one (synced
    /// contents, durable entries), with the same operation count and no faults: for trying
    /// several futures of one crash.
    pub fn durable_copy(&self) -> FaultyFs {
        let s = self.state.lock();
        let files = s
            .files
            .iter()
            .map(|(&id, f)| {
                (id, FileNode { current: f.synced.clone(), synced: f.synced.clone(), synced_ticket: f.synced_ticket })
            })
            .collect();
        let dirs = s
            .dirs
            .iter()
            .map(|(&id, d)| (id, DirNode { current: d.durable.clone(), durable: d.durable.clone() }))
            .collect();
        let mut copy = State {
            files,
            dirs,
            next_id: s.next_id,
            ops: s.ops,
            mkdir_durable: s.mkdir_durable,
            sync_tickets: s.sync_tickets,
            ..State::new()
        };
        // Drops what no durable directory reaches, as a power cut does.
        copy.power_cut(Loss::Tail { keep_unsynced: 0, garbage: 0 });
        FaultyFs { state: Arc::new(Mutex::new(copy)) }
    }

    /// Mutating operations performed so far (one that a crash refused is not counted).
    pub fn op_count(&self) -> u64 {
        self.state.lock().ops
    }

    /// What the file at `path` holds now, as reads see it (`None` if there is no such file).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state.lock();
        let id = s.file_at(path).ok()?;
        s.files.get(&id).map(|f| f.current.clone())
    }

    /// What the file at `path` would hold after a power cut now (`None` if it would be gone).
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().durable_contents(path)
    }
}

/// An open file of a [`FaultyFs`].
struct FaultyFile {
    state: Arc<Mutex<State>>,
    id: u64,
    path: PathBuf,
    generation: u64,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile").field("path", &self.path).field("id", &self.id).finish()
    }
}

impl LogFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let s = self.state.lock();
        s.check_handle(self.generation)?;
        let data = &s.file(self.id)?.current;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()) {
            Some(end) if end <= data.len() => {
                buf.copy_from_slice(&data[start..end]);
                Ok(())
            }
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")),
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_handle(self.generation)?;
        s.write(self.id, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_handle(self.generation)?;
        if !s.concurrent_fsync {
            return s.sync_file(self.id, &self.path);
        }
        // What the sync makes durable is what was written before it began; other threads write
        // on while it runs (yielding, not sleeping: only the interleaving matters).
        let begun = s.begin_sync(self.id, &self.path)?;
        drop(s);
        for _ in 0..CONCURRENT_FSYNC_YIELDS {
            std::thread::yield_now();
        }
        let mut s = self.state.lock();
        // A crash or power cut while it ran: the sync never completed.
        s.check_handle(self.generation)?;
        s.finish_sync(self.id, begun)
    }

    fn len(&self) -> io::Result<u64> {
        let s = self.state.lock();
        s.check_handle(self.generation)?;
        Ok(s.file(self.id)?.current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_handle(self.generation)?;
        s.set_len(self.id, len)
    }

    fn map_read(&self, len: u64) -> Option<io::Result<Arc<dyn ReadMap>>> {
        self.read_map(len)
    }

    fn map_write(&self, len: u64) -> Option<io::Result<Box<dyn WriteMap>>> {
        self.write_map(len)
    }
}

impl Vfs for FaultyFs {
    fn open_file(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let mut s = self.state.lock();
        let id = s.open(path, create)?;
        Ok(Arc::new(FaultyFile {
            state: Arc::clone(&self.state),
            id,
            path: path.to_path_buf(),
            generation: s.generation,
        }))
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        s.alive()?;
        let id = s.file_at(path)?;
        Ok(s.file(id)?.current.clone())
    }

    /// Temporary file (created or truncated), write, fsync, rename, fsync of the directory:
    /// five mutating operations, each of which a fault can hit.
    fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let tmp = tmp_path(path);
        let existed = matches!(s.lookup(&tmp), Ok(Some(Node::File(_))));
        let id = s.open(&tmp, true)?;
        if existed {
            s.set_len(id, 0)?;
        }
        s.write(id, data, 0)?;
        s.sync_file(id, &tmp)?;
        s.rename(&tmp, path)?;
        s.sync_dir(path.parent().unwrap_or(Path::new("/")))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.state.lock().remove(path, false)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state.lock().rename(from, to)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        s.alive()?;
        let id = s.dir_at(dir)?;
        Ok(s.dir(id)?.current.keys().cloned().collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let durable = s.mkdir_durable;
        s.mkdirs(dir, durable, true)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match self.state.lock().remove(dir, true) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.state.lock().sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_with_dir() -> (FaultyFs, PathBuf) {
        let fs = FaultyFs::new();
        let dir = PathBuf::from("/data");
        fs.create_durable_dir_all(&dir);
        (fs, dir)
    }

    fn raw(e: &io::Error) -> Option<i32> {
        e.raw_os_error()
    }

    #[test]
    fn only_synced_bytes_survive_a_power_cut() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        fs.sync_dir(&dir)?;
        f.write_all_at(b"hello", 0)?;
        f.sync_data()?;
        f.write_all_at(b" world", 5)?;
        assert_eq!(fs.contents(&path).as_deref(), Some(&b"hello world"[..]));
        assert_eq!(fs.durable_contents(&path).as_deref(), Some(&b"hello"[..]));
        fs.power_cut();
        assert_eq!(fs.read_file(&path)?, b"hello");
        Ok(())
    }

    #[test]
    fn a_file_whose_directory_was_never_synced_vanishes_on_a_power_cut() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        f.write_all_at(b"data", 0)?;
        f.sync_data()?;
        assert_eq!(fs.durable_contents(&path), None, "the entry is not durable");
        fs.power_cut();
        let err = fs.read_file(&path).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::NotFound));
        assert!(fs.list_dir(&dir)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_rename_reverts_unless_its_directory_is_synced() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let f = fs.open_file(&a, true)?;
        f.write_all_at(b"x", 0)?;
        f.sync_data()?;
        fs.sync_dir(&dir)?;
        fs.rename(&a, &b)?;
        assert_eq!(fs.list_dir(&dir)?, vec!["b".to_string()]);
        fs.power_cut();
        assert_eq!(fs.list_dir(&dir)?, vec!["a".to_string()], "the rename was not durable");
        fs.rename(&a, &b)?;
        fs.sync_dir(&dir)?;
        fs.power_cut();
        assert_eq!(fs.list_dir(&dir)?, vec!["b".to_string()]);
        assert_eq!(fs.read_file(&b)?, b"x");
        Ok(())
    }

    #[test]
    fn a_removal_reverts_unless_its_directory_is_synced() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        fs.open_file(&path, true)?.sync_data()?;
        fs.sync_dir(&dir)?;
        fs.remove_file(&path)?;
        assert!(fs.list_dir(&dir)?.is_empty());
        fs.power_cut();
        assert_eq!(fs.list_dir(&dir)?, vec!["f".to_string()]);
        fs.remove_file(&path)?;
        fs.sync_dir(&dir)?;
        fs.power_cut();
        assert!(fs.list_dir(&dir)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_new_directory_needs_its_parent_synced_unless_mkdir_is_durable() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let sub = dir.join("sub/deeper");
        fs.create_dir_all(&sub)?;
        let f = fs.open_file(&sub.join("f"), true)?;
        f.sync_data()?;
        fs.sync_dir(&sub)?;
        fs.power_cut();
        assert!(fs.list_dir(&dir)?.is_empty(), "the directories were never made durable in their parents");
        fs.mkdir_is_durable(true);
        fs.create_dir_all(&sub)?;
        fs.open_file(&sub.join("f"), true)?.sync_data()?;
        fs.sync_dir(&sub)?;
        fs.power_cut();
        assert_eq!(fs.list_dir(&sub)?, vec!["f".to_string()]);
        Ok(())
    }

    #[test]
    fn a_removed_directory_comes_back_unless_its_parent_is_synced() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        fs.mkdir_is_durable(true);
        let sub = dir.join("sub");
        fs.create_dir_all(&sub)?;
        fs.open_file(&sub.join("f"), true)?.sync_data()?;
        fs.sync_dir(&sub)?;
        fs.remove_dir_all(&sub)?;
        fs.remove_dir_all(&sub)?; // removing what is gone succeeds, as on the real file system
        assert!(fs.list_dir(&dir)?.is_empty());
        fs.power_cut();
        assert_eq!(fs.list_dir(&sub)?, vec!["f".to_string()]);
        Ok(())
    }

    #[test]
    fn writes_past_the_byte_budget_fail_as_armed() -> io::Result<()> {
        for (kind, stored) in [(WriteFault::ShortWrite, 3), (WriteFault::Enospc, 3), (WriteFault::Eio, 0)] {
            let (fs, dir) = fs_with_dir();
            let path = dir.join("f");
            let f = fs.open_file(&path, true)?;
            fs.fail_writes_after_bytes(5, kind);
            f.write_all_at(b"ab", 0)?;
            let err = f.write_all_at(b"cdefg", 2).err();
            match kind {
                WriteFault::ShortWrite => {
                    assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::WriteZero))
                }
                WriteFault::Enospc => assert_eq!(err.as_ref().and_then(raw), Some(ENOSPC)),
                WriteFault::Eio => assert_eq!(err.as_ref().and_then(raw), Some(EIO)),
            }
            assert_eq!(fs.contents(&path).map(|c| c.len()), Some(2 + stored), "{kind:?}");
            assert!(f.write_all_at(b"z", 0).is_err(), "{kind:?}: later writes fail too");
            assert_eq!(fs.contents(&path).map(|c| c[0]), Some(b'a'), "{kind:?}: a failed write stores nothing");
            fs.clear_faults();
            f.write_all_at(b"z", 0)?;
        }
        Ok(())
    }

    #[test]
    fn a_failed_fsync_fails_once_and_drops_the_unsynced_data() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        f.write_all_at(b"kept", 0)?;
        f.sync_data()?;
        f.write_all_at(b"-dropped", 4)?;
        fs.fail_next_fsync();
        assert_eq!(f.sync_data().err().as_ref().and_then(raw), Some(EIO));
        assert_eq!(fs.contents(&path).as_deref(), Some(&b"kept"[..]));
        f.sync_data()?;
        Ok(())
    }

    #[test]
    fn a_targeted_fsync_failure_waits_for_its_file() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let (a, b) = (fs.open_file(&dir.join("a"), true)?, fs.open_file(&dir.join("b"), true)?);
        fs.fail_next_fsync_of(&dir.join("b"));
        a.sync_data()?;
        assert!(b.sync_data().is_err());
        b.sync_data()?;
        Ok(())
    }

    #[test]
    fn a_lying_fsync_succeeds_and_loses_everything_at_the_power_cut() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        fs.sync_dir(&dir)?;
        f.write_all_at(b"old", 0)?;
        f.sync_data()?;
        fs.lying_fsync(true);
        f.write_all_at(b"new", 3)?;
        f.sync_data()?;
        let g = fs.open_file(&dir.join("g"), true)?;
        g.sync_data()?;
        fs.sync_dir(&dir)?;
        fs.power_cut();
        assert_eq!(fs.read_file(&path)?, b"old");
        assert_eq!(fs.list_dir(&dir)?, vec!["f".to_string()]);
        Ok(())
    }

    #[test]
    fn a_crash_fails_every_operation_after_n_mutations_until_the_power_cut() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?; // 1
        fs.sync_dir(&dir)?; // 2
        let before = fs.op_count();
        fs.crash_after_ops(2);
        f.write_all_at(b"a", 0)?;
        assert_eq!(fs.read_file(&path)?, b"a", "reads do not count");
        f.sync_data()?;
        assert!(!fs.crashed());
        assert_eq!(f.write_all_at(b"b", 1).err().as_ref().and_then(raw), Some(EIO));
        assert!(fs.crashed());
        assert_eq!(fs.op_count(), before + 2);
        assert!(fs.read_file(&path).is_err(), "after the crash reads fail too");
        assert!(fs.list_dir(&dir).is_err());
        assert!(f.len().is_err());
        fs.power_cut();
        assert!(!fs.crashed());
        assert_eq!(fs.read_file(&path)?, b"a");
        assert!(f.len().is_err(), "a handle from before the power cut is dead");
        fs.open_file(&path, false)?.write_all_at(b"b", 1)?;
        Ok(())
    }

    #[test]
    fn op_count_counts_only_mutations() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        f.write_all_at(b"abc", 0)?;
        f.set_len(2)?;
        f.sync_data()?;
        fs.sync_dir(&dir)?;
        assert_eq!(fs.op_count(), 5);
        fs.open_file(&path, true)?; // exists: no creation
        fs.read_file(&path)?;
        fs.list_dir(&dir)?;
        f.len()?;
        f.read_exact_at(&mut [0u8; 2], 0)?;
        assert_eq!(fs.op_count(), 5);
        fs.write_file_atomic(&dir.join("g"), b"g")?;
        assert_eq!(fs.op_count(), 10, "temporary file, write, fsync, rename, directory fsync");
        Ok(())
    }

    #[test]
    fn an_atomic_write_cut_at_any_step_leaves_the_old_or_the_new_contents() -> io::Result<()> {
        for n in 0..6 {
            let (fs, dir) = fs_with_dir();
            let path = dir.join("idx");
            fs.write_file_atomic(&path, b"old")?;
            fs.crash_after_ops(n);
            let result = fs.write_file_atomic(&path, b"new contents");
            fs.power_cut();
            let after = fs.read_file(&path)?;
            assert!(after == b"old" || after == b"new contents", "cut after {n} steps: {after:?}");
            if result.is_ok() {
                assert_eq!(after, b"new contents", "an acknowledged atomic write is durable");
            }
        }
        Ok(())
    }

    #[test]
    fn a_torn_power_cut_keeps_part_of_an_unsynced_append_and_garbage_only_after_it() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        fs.sync_dir(&dir)?;
        f.write_all_at(b"synced", 0)?;
        f.sync_data()?;
        f.write_all_at(b"0123456789", 6)?;
        fs.power_cut_with_torn_tails(4, 3);
        let after = fs.read_file(&path)?;
        assert_eq!(after.len(), 6 + 4 + 3);
        assert_eq!(&after[..10], b"synced0123");
        assert_ne!(&after[10..], b"456", "the last bytes are junk");
        Ok(())
    }

    #[test]
    fn a_power_cut_tears_an_overwrite_of_preallocated_zeros_from_its_first_changed_byte() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        fs.sync_dir(&dir)?;
        f.write_all_at(b"head", 0)?;
        f.write_all_at(&[0; 16], 4)?;
        f.sync_data()?;
        f.write_all_at(b"0123456789", 4)?;
        fs.power_cut_with_torn_tails(4, 3);
        let after = fs.read_file(&path)?;
        assert_eq!(after.len(), 20, "an overwrite does not change the length");
        assert_eq!(&after[..8], b"head0123");
        assert_ne!(&after[8..11], b"456", "then junk");
        assert_eq!(&after[11..], &[0; 9][..], "the rest of the synced zeros stays");

        let g = fs.open_file(&path, false)?;
        g.write_all_at(b"xy", 18)?;
        g.set_len(10)?;
        fs.power_cut_with_torn_tails(100, 100);
        assert_eq!(fs.read_file(&path)?, after, "a file that shrank reverts to its synced bytes");
        Ok(())
    }

    #[test]
    fn an_out_of_order_power_cut_keeps_or_drops_each_unsynced_page_on_its_own() -> io::Result<()> {
        // Eight unsynced pages after one synced page, and preallocated zeros overwritten in a
        // second file: over some seeds, every fate of a page must occur, synced bytes must
        // never change, and a later page must survive an earlier lost one.
        let pattern = |i: usize| (i / SECTOR) as u8 | 1;
        let mut fates = HashSet::new();
        let mut later_survived_earlier_lost = false;
        let mut lengths = HashSet::new();
        for seed in 0..64u64 {
            let (fs, dir) = fs_with_dir();
            let (a, b) = (dir.join("a"), dir.join("b"));
            let (fa, fb) = (fs.open_file(&a, true)?, fs.open_file(&b, true)?);
            fs.sync_dir(&dir)?;
            fa.write_all_at(&[7; PAGE], 0)?;
            fb.write_all_at(&[0; 3 * PAGE], 0)?;
            fa.sync_data()?;
            fb.sync_data()?;
            let grown: Vec<u8> = (PAGE..9 * PAGE).map(pattern).collect();
            fa.write_all_at(&grown, PAGE as u64)?;
            fb.write_all_at(&[9; 2 * PAGE], 100)?;
            fs.power_cut_out_of_order(seed);
            let after = fs.read_file(&a)?;
            lengths.insert(after.len());
            assert!(after.len() == PAGE || after.len() == 9 * PAGE, "seed {seed}: old or new length");
            assert_eq!(&after[..PAGE], &[7; PAGE][..], "seed {seed}: synced bytes stay");
            let mut lost_before = false;
            for (p, page) in after[PAGE..].chunks(PAGE).enumerate() {
                let kept: Vec<bool> = page.chunks(SECTOR).map(|s| s[0] != 0).collect();
                for (i, s) in page.chunks(SECTOR).enumerate() {
                    let offset = (p + 1) * PAGE + i * SECTOR;
                    let whole = s.iter().enumerate().all(|(j, &b)| b == pattern(offset + j));
                    assert!(whole || s.iter().all(|&b| b == 0), "seed {seed}: a sector is written or not");
                }
                let fate = match (kept.iter().all(|k| *k), kept.iter().any(|k| *k)) {
                    (true, _) => "kept",
                    (false, true) => "torn",
                    (false, false) => "dropped",
                };
                fates.insert(fate);
                later_survived_earlier_lost |= lost_before && fate != "dropped";
                lost_before |= fate != "kept";
            }
            let b_after = fs.read_file(&b)?;
            assert_eq!(b_after.len(), 3 * PAGE, "seed {seed}: an overwrite keeps the length");
            assert!(b_after[..100].iter().chain(&b_after[100 + 2 * PAGE..]).all(|&x| x == 0), "seed {seed}");
        }
        assert_eq!(fates.len(), 3, "every fate of a page occurred: {fates:?}");
        assert_eq!(lengths.len(), 2, "the new length survived sometimes, not always");
        assert!(later_survived_earlier_lost, "a later page survived an earlier lost one");
        // The same seed replays the same loss.
        let run = |seed| -> io::Result<Vec<u8>> {
            let (fs, dir) = fs_with_dir();
            let f = fs.open_file(&dir.join("f"), true)?;
            fs.sync_dir(&dir)?;
            f.write_all_at(&(0..5 * PAGE).map(pattern).collect::<Vec<u8>>(), 0)?;
            fs.power_cut_out_of_order(seed);
            fs.read_file(&dir.join("f"))
        };
        assert_eq!(run(5)?, run(5)?);
        Ok(())
    }

    #[test]
    fn a_sync_that_began_earlier_and_ends_later_takes_back_nothing_a_later_one_made_durable() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let f = fs.open_file(&path, true)?;
        fs.sync_dir(&dir)?;
        f.write_all_at(b"one", 0)?;
        let mut s = fs.state.lock();
        let id = s.file_at(&path)?;
        let early = s.begin_sync(id, &path)?;
        s.write(id, b"two", 3)?;
        let late = s.begin_sync(id, &path)?;
        s.finish_sync(id, late)?;
        s.finish_sync(id, early)?;
        drop(s);
        assert_eq!(fs.durable_contents(&path).as_deref(), Some(&b"onetwo"[..]));
        // And threads write while a concurrent sync runs; it makes durable what it began with.
        fs.concurrent_fsync(true);
        f.write_all_at(b"three", 6)?;
        f.sync_data()?;
        assert_eq!(fs.durable_contents(&path).as_deref(), Some(&b"onetwothree"[..]));
        fs.crash_after_ops(0);
        assert!(f.sync_data().is_err(), "a crashed file system syncs nothing");
        Ok(())
    }

    #[test]
    fn reads_past_the_end_fail() -> io::Result<()> {
        let (fs, dir) = fs_with_dir();
        let f = fs.open_file(&dir.join("f"), true)?;
        f.write_all_at(b"abc", 0)?;
        let mut buf = [0u8; 2];
        f.read_exact_at(&mut buf, 1)?;
        assert_eq!(&buf, b"bc");
        assert_eq!(f.read_exact_at(&mut buf, 2).err().map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
        Ok(())
    }

    #[test]
    fn paths_that_do_not_exist_or_have_the_wrong_kind_fail_like_the_real_file_system() {
        let (fs, dir) = fs_with_dir();
        let kind = |r: io::Result<()>| r.err().map(|e| e.kind());
        assert_eq!(kind(fs.open_file(&dir.join("missing"), false).map(|_| ())), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(fs.open_file(&dir.join("no/such"), true).map(|_| ())), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(fs.open_file(&dir, true).map(|_| ())), Some(io::ErrorKind::IsADirectory));
        assert_eq!(kind(fs.remove_file(&dir.join("missing"))), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(fs.list_dir(&dir.join("missing")).map(|_| ())), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(fs.sync_dir(&dir.join("missing"))), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(fs.rename(&dir.join("missing"), &dir.join("x"))), Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn a_log_over_the_faulty_fs_keeps_what_it_acknowledged_across_a_power_cut() -> crate::Result<()> {
        use crate::format::RecordRef;
        use crate::log::{Log, LogConfig};
        let fs = Arc::new(FaultyFs::new());
        fs.create_durable_dir_all(Path::new("/log"));
        fs.mkdir_is_durable(true);
        let config = LogConfig { segment_bytes: 200, ..LogConfig::default() };
        let log = Log::open(fs.clone(), Path::new("/log"), config.clone(), 0)?;
        for i in 0..10u8 {
            log.append(&[RecordRef { key: b"k", value: &[i; 40] }], 1)?;
        }
        drop(log);
        fs.power_cut();
        let log = Log::open(fs.clone(), Path::new("/log"), config.clone(), 0)?;
        let records = log.read(0, 100, usize::MAX)?;
        assert_eq!(records.len(), 10);
        assert!(records.iter().enumerate().all(|(i, r)| r.seq == i as u64 && r.value[..] == [i as u8; 40]));
        assert!(log.segment_infos().len() > 1, "the log rolled");
        Ok(())
    }
}
