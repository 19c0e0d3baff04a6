//! Memory maps whose faults become errors, not signals.
//!
//! Reads go through read-only maps of segment files and small appends are copied through a
//! writable map of the active segment's preallocated space. When the kernel cannot back a page
//! of a map (a read error from the disk, a page past the end of a file cut short under the
//! map, a write that needs a block a full file system cannot give) the access raises SIGBUS,
//! which by default kills the process. Here:
//!
//! * every map weir makes is registered (start, length, a fault counter) in a lock-free
//!   registry, and a process-wide SIGBUS handler, installed once and chained to the handler
//!   that was there before, looks the faulting address up in it;
//! * weir touches a map only inside a *guarded access* ([`with_view`] for reads: the CRC checks
//!   and decoding of a read or a recovery scan; [`write`](fn@write) for the copy of a frame), marked by a
//!   thread-local flag. For a fault in one of weir's maps during a guarded access, the handler
//!   maps a page of zeros over the faulting page (`MAP_FIXED`), counts the fault against that
//!   map and returns, so the access completes (reading zeros, or writing into a page that is
//!   thrown away). When the access ends, the map's fault counter turns it into `EIO`: a read
//!   returns nothing (its records are dropped, and a frame that read zeros failed its CRC
//!   anyway), a write fails and the caller poisons the log. A faulted map stays faulted and its
//!   owner drops it; a new map sees the file again;
//! * any other SIGBUS (outside weir's maps, or outside a guarded access) goes to the previous
//!   handler, or ends the process as it would have.
//!
//! Reads stay zero-copy: records handed to a caller are slices of the map. A page can only
//! fault for a caller that holds such bytes if the page was dropped from memory after it was
//! read and cannot be read again. If weir's next access faults on it, the page of zeros is
//! fenced off right after (`PROT_NONE`), so a caller touching those bytes ends the process, as
//! before weir had a handler, instead of reading zeros: damage is never served.
//!
//! [`ReadMap`] and [`WriteMap`] are also what [`FaultyFs`](super::fault::FaultyFs) implements,
//! with injectable faults, so the same checks run under fault injection.

use std::fmt::Debug;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

/// A read-only map of a file's first [`ReadMap::len`] bytes (which may reach past the end of a
/// growing file: only bytes below the end may be read).
// `len` is the map's length, and an empty map is never made.
#[allow(clippy::len_without_is_empty)]
pub trait ReadMap: Send + Sync + Debug {
    /// Bytes mapped.
    fn len(&self) -> usize;
    /// Bytes `[offset, offset + len)` of the map (within `len()`): a view of the map itself,
    /// whose pages are read as they are touched, or a copy. Touch them only inside
    /// [`with_view`]; a page that cannot be read reads as zeros and marks the map faulted.
    fn view(self: Arc<Self>, offset: usize, len: usize) -> Bytes;
    /// True once any access to the map has faulted.
    fn faulted(&self) -> bool;
    /// A guarded access begins: false (and no access) if the map has faulted already.
    fn begin_access(&self) -> bool {
        !self.faulted()
    }
    /// A guarded access ended. The last one to leave a faulted map makes the pages that
    /// faulted unreadable, so bytes of them a caller still holds are never read as the zeros
    /// that stand in for them (no guarded access is inside to trip over them).
    fn end_access(&self) {}
}

/// A writable, shared map of a file's first [`WriteMap::len`] bytes; nothing is written at or
/// past the end of the file.
#[allow(clippy::len_without_is_empty)]
pub trait WriteMap: Send + Sync + Debug {
    /// Bytes mapped.
    fn len(&self) -> usize;
    /// Copies `data` to `offset` (the range lies within `len()`), as a guarded access. A page
    /// that cannot be written marks the map faulted (what was copied to it is lost). Use
    /// [`write`](fn@write).
    fn copy_in(&mut self, offset: usize, data: &[u8]);
    /// Faults in `[offset, offset + len)` writable ahead of the copies (an optimisation: a
    /// failure here is left to the copies to meet).
    fn prefault(&mut self, offset: usize, len: usize);
    /// True once any access to the map has faulted.
    fn faulted(&self) -> bool;
}

/// Why an access through a map failed: the map faulted (the source of an `io::Error` of kind
/// `Other`). A real fault carries no error number (the kernel raised SIGBUS), so neither does
/// this: a disk read error, a full file system and a file cut short all look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFault {
    /// True for a write through a writable map, false for a read.
    pub write: bool,
}

impl std::fmt::Display for MapFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.write { "writing through" } else { "reading through" };
        write!(f, "{what} a memory map failed: a page could not be backed (an I/O error, a full file system, or the file was cut short under the map)")
    }
}

impl std::error::Error for MapFault {}

impl MapFault {
    /// True if `error` is a fault of a map.
    pub fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<MapFault>())
    }
}

/// The error a faulted map's access fails with.
fn fault_error(write: bool) -> io::Error {
    io::Error::other(MapFault { write })
}

/// Checks that `[offset, offset + n)` lies within a map of `len` bytes.
fn within(offset: u64, n: usize, len: usize) -> io::Result<usize> {
    let start = usize::try_from(offset).ok().filter(|&s| s.checked_add(n).is_some_and(|end| end <= len));
    start.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "access past the end of a memory map"))
}

/// Runs `f` over bytes `[offset, offset + len)` of `map` as a guarded access (the only way
/// weir reads a map) and returns its result, unless the map faulted (now or before): then what
/// `f` saw may hold zeros that are not in the file, and the access fails with a [`MapFault`].
/// `f` may return slices of the bytes it is given; they stay valid (or unreadable, never wrong).
pub fn with_view<R>(map: &Arc<dyn ReadMap>, offset: u64, len: usize, f: impl FnOnce(&Bytes) -> R) -> io::Result<R> {
    let start = within(offset, len, map.len())?;
    if !map.begin_access() {
        return Err(fault_error(false));
    }
    let view = Arc::clone(map).view(start, len);
    let out = {
        let _guard = Guard::enter();
        f(&view)
    };
    let faulted = map.faulted();
    map.end_access();
    if faulted {
        return Err(fault_error(false));
    }
    Ok(out)
}

/// Copies `data` to `offset` through `map`: the only way bytes enter a writable map. Fails if
/// the map has faulted, during this copy or before; the bytes are then not (all) in the file.
pub fn write(map: &mut dyn WriteMap, offset: u64, data: &[u8]) -> io::Result<()> {
    let start = within(offset, data.len(), map.len())?;
    map.copy_in(start, data);
    if map.faulted() {
        return Err(fault_error(true));
    }
    Ok(())
}

thread_local! {
    /// Guarded accesses this thread is inside (see [`Guard`]).
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as inside a guarded access while it lives: only there does a
/// fault on one of weir's maps become an error rather than go to the previous handler.
struct Guard;

impl Guard {
    fn enter() -> Guard {
        GUARDED.with(|g| g.set(g.get() + 1));
        // The accesses of the guarded section stay after the mark and before its end.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    }
}

/// True inside a guarded access. Async-signal-safe: a const-initialised thread-local without
/// a destructor is a plain load of this thread's memory (and `try_with` never panics).
fn guarded() -> bool {
    GUARDED.try_with(|g| g.get() > 0).unwrap_or(false)
}

#[cfg(target_os = "linux")]
pub(crate) use real::{map_file, map_file_mut};

/// Where maps are not offered (the callers read and write through the file instead).
#[cfg(not(target_os = "linux"))]
pub(crate) fn map_file(_file: &std::fs::File, _len: usize) -> Option<io::Result<Arc<dyn ReadMap>>> {
    None
}

/// Where maps are not offered (the callers read and write through the file instead).
#[cfg(not(target_os = "linux"))]
pub(crate) fn map_file_mut(_file: &std::fs::File, _len: usize) -> Option<io::Result<Box<dyn WriteMap>>> {
    None
}

#[cfg(target_os = "linux")]
mod real {
    //! Maps of real files: the registry of weir's maps and the SIGBUS handler.

    use std::ffi::c_void;
    use std::fs::File;
    use std::io;
    use std::ptr;
    use std::sync::atomic::{compiler_fence, fence, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Arc, Once, OnceLock};

    use bytes::Bytes;
    use memmap2::{Advice, Mmap, MmapMut, MmapOptions};

    use super::{guarded, Guard, ReadMap, WriteMap};

    /// Slots per chunk of the registry.
    const CHUNK: usize = 256;
    /// Faulted pages a slot remembers one by one (for fencing); past that, the whole map.
    const PAGES: usize = 8;

    /// One registered map. `version` is a sequence lock: odd while a registration or release
    /// changes the slot, even otherwise; a reader (the signal handler) takes `start` and `len`
    /// only if the version was even and unchanged around its reads.
    struct Slot {
        version: AtomicUsize,
        /// Address of the map's first byte; 0: the slot is free.
        start: AtomicUsize,
        len: AtomicUsize,
        /// Faults the handler met in the map.
        faults: AtomicUsize,
        /// Addresses of the first faulted pages.
        pages: [AtomicUsize; PAGES],
        /// Guarded accesses inside the map now.
        active: AtomicUsize,
        /// Its faulted pages were fenced off.
        fenced: AtomicUsize,
    }

    impl Slot {
        const fn new() -> Slot {
            Slot {
                version: AtomicUsize::new(0),
                start: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                faults: AtomicUsize::new(0),
                pages: [const { AtomicUsize::new(0) }; PAGES],
                active: AtomicUsize::new(0),
                fenced: AtomicUsize::new(0),
            }
        }

        /// Takes the slot for `[start, start + len)` if it is free.
        fn claim(&self, start: usize, len: usize) -> bool {
            let v = self.version.load(Ordering::Relaxed);
            if v & 1 == 1 || self.start.load(Ordering::Relaxed) != 0 {
                return false;
            }
            if self.version.compare_exchange(v, v + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
                return false;
            }
            // A claim that won the version from `v` is alone on the slot, and it was free at `v`.
            self.faults.store(0, Ordering::Relaxed);
            for page in &self.pages {
                page.store(0, Ordering::Relaxed);
            }
            self.active.store(0, Ordering::Relaxed);
            self.fenced.store(0, Ordering::Relaxed);
            self.start.store(start, Ordering::Relaxed);
            self.len.store(len, Ordering::Relaxed);
            self.version.store(v + 2, Ordering::Release);
            true
        }

        /// Frees the slot (by its owner, once nothing accesses the map any more).
        fn release(&self) {
            loop {
                let v = self.version.load(Ordering::Relaxed);
                // Odd only while a claim that lost to this owner backs off.
                if v & 1 == 0 && self.version.compare_exchange(v, v + 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    self.start.store(0, Ordering::Relaxed);
                    self.len.store(0, Ordering::Relaxed);
                    self.version.store(v + 2, Ordering::Release);
                    return;
                }
                std::hint::spin_loop();
            }
        }

        /// True if `addr` lies in the map the slot holds. Async-signal-safe: atomics only.
        fn holds(&self, addr: usize) -> bool {
            let v = self.version.load(Ordering::Acquire);
            if v & 1 == 1 {
                // Being claimed (not yet accessed) or released (no longer accessed).
                return false;
            }
            let start = self.start.load(Ordering::Relaxed);
            let len = self.len.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) != v {
                return false;
            }
            start != 0 && addr >= start && addr - start < len
        }

        fn faulted(&self) -> bool {
            // The handler runs on the thread whose access faulted, between that access and
            // this load: the fence keeps the compiler from moving the access after the load.
            compiler_fence(Ordering::SeqCst);
            self.faults.load(Ordering::SeqCst) != 0
        }

        /// Counts a fault at the page at `page` (from the handler: atomics only).
        fn note_fault(&self, page: usize) {
            let n = self.faults.fetch_add(1, Ordering::SeqCst);
            if let Some(slot) = self.pages.get(n) {
                slot.store(page, Ordering::SeqCst);
            }
        }

        /// The pages to fence off: those noted, or the whole map if there were more.
        fn faulted_pages(&self) -> Option<Vec<usize>> {
            let n = self.faults.load(Ordering::SeqCst);
            (n <= PAGES).then(|| self.pages[..n].iter().map(|p| p.load(Ordering::SeqCst)).filter(|&p| p != 0).collect())
        }
    }

    struct Chunk {
        slots: [Slot; CHUNK],
        next: AtomicPtr<Chunk>,
    }

    impl Chunk {
        const fn new() -> Chunk {
            Chunk { slots: [const { Slot::new() }; CHUNK], next: AtomicPtr::new(ptr::null_mut()) }
        }
    }

    /// The registry: chunks of slots, linked, never freed (so `&'static Slot` stays valid and
    /// the handler can walk them without locks).
    static FIRST: Chunk = Chunk::new();

    fn next_chunk(chunk: &'static Chunk) -> Option<&'static Chunk> {
        let next = chunk.next.load(Ordering::Acquire);
        // SAFETY: a non-null `next` was made by `Box::into_raw` in `register` and is never
        // freed, so it points to a live `Chunk` for the rest of the process.
        (!next.is_null()).then(|| unsafe { &*next })
    }

    fn register(start: usize, len: usize) -> &'static Slot {
        let mut chunk: &'static Chunk = &FIRST;
        loop {
            if let Some(slot) = chunk.slots.iter().find(|s| s.claim(start, len)) {
                return slot;
            }
            chunk = match next_chunk(chunk) {
                Some(next) => next,
                None => {
                    let fresh = Box::into_raw(Box::new(Chunk::new()));
                    match chunk.next.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
                        // SAFETY: `fresh` came from `Box::into_raw` just now and is now
                        // published; it is never freed.
                        Ok(_) => unsafe { &*fresh },
                        Err(existing) => {
                            // SAFETY: `fresh` was never published: this is its only owner.
                            drop(unsafe { Box::from_raw(fresh) });
                            // SAFETY: as in `next_chunk`.
                            unsafe { &*existing }
                        }
                    }
                }
            };
        }
    }

    /// The slot of the registered map holding `addr`. Async-signal-safe.
    fn find(addr: usize) -> Option<&'static Slot> {
        let mut chunk: &'static Chunk = &FIRST;
        loop {
            if let Some(slot) = chunk.slots.iter().find(|s| s.holds(addr)) {
                return Some(slot);
            }
            chunk = next_chunk(chunk)?;
        }
    }

    /// The page size, set when the handler is installed.
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    /// The SIGBUS action that was in place before weir's.
    static PREVIOUS: OnceLock<Previous> = OnceLock::new();

    struct Previous(libc::sigaction);
    // SAFETY: a `sigaction` is plain data (a handler address, a mask, flags), read only by the
    // handler after it is set once.
    unsafe impl Sync for Previous {}
    // SAFETY: as above.
    unsafe impl Send for Previous {}

    /// Installs the handler once per process; false if that failed (then no map is offered).
    fn installed() -> bool {
        static INSTALL: Once = Once::new();
        static OK: AtomicUsize = AtomicUsize::new(0);
        INSTALL.call_once(|| {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let Ok(page) = usize::try_from(page) else { return };
            if !page.is_power_of_two() {
                return;
            }
            PAGE.store(page, Ordering::Relaxed);
            // SAFETY: an all-zero `sigaction` is a valid value to be overwritten by the query.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: a query (no new action) into a valid `sigaction`.
            if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut old) } != 0 {
                return;
            }
            let _ = PREVIOUS.set(Previous(old));
            // SAFETY: as above; every field the kernel reads is set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) as usize;
            // SA_ONSTACK: run on the thread's alternate stack if it has one (a fault on a
            // thread that overflowed its stack must still be handled).
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `sa_mask` is a valid signal set to empty.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: `action` is fully initialised and `on_sigbus` has the SA_SIGINFO signature.
            if unsafe { libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) } == 0 {
                OK.store(1, Ordering::Release);
            }
        });
        OK.load(Ordering::Acquire) == 1
    }

    /// The SIGBUS handler. Only async-signal-safe work: a thread-local load, atomic loads and
    /// adds, `mmap`, and on the path that is not weir's, `sigaction` and `raise`.
    extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; errno is this
        // thread's, restored below so the interrupted code never sees the handler's.
        let (addr, errno) = unsafe { ((*info).si_addr() as usize, *libc::__errno_location()) };
        let page = PAGE.load(Ordering::Relaxed);
        // Only a guarded access of weir's is turned into a fault of its map: an access anywhere
        // else (a caller reading bytes it was handed) is not weir's to answer with zeros.
        let slot = if page != 0 && guarded() { find(addr) } else { None };
        if let Some(slot) = slot {
            let at = addr & !(page - 1);
            slot.note_fault(at);
            let at = at as *mut c_void;
            // SAFETY: `at` is the start of a page inside one of weir's registered maps (so
            // inside a mapping weir owns until it releases the slot, which it does only once
            // nothing accesses the map). Replacing that page with a private page of zeros
            // changes no memory outside weir's map; the map is faulted from now on, and no
            // byte read from it is used. mmap is a plain system call on Linux.
            let mapped = unsafe {
                libc::mmap(
                    at,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped != libc::MAP_FAILED {
                // SAFETY: restoring this thread's errno, as read above.
                unsafe { *libc::__errno_location() = errno };
                return;
            }
        }
        // SAFETY: passing on the signal the kernel gave this handler, unchanged.
        unsafe { chain(signal, info, context) }
    }

    /// Hands a SIGBUS that is not weir's to the handler that was installed before, or does
    /// what the default action would: end the process with SIGBUS.
    ///
    /// # Safety
    /// Only from the SIGBUS handler, with the arguments it was given.
    unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        if let Some(Previous(previous)) = PREVIOUS.get() {
            let handler = previous.sa_sigaction;
            if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    // SAFETY: an SA_SIGINFO action's handler has this signature.
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        unsafe { std::mem::transmute(handler) };
                    f(signal, info, context);
                } else {
                    // SAFETY: a plain action's handler takes the signal number only.
                    let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                    f(signal);
                }
                return;
            }
        }
        // SAFETY: an all-zero `sigaction` with SIG_DFL (0) is the default action; restoring it
        // and raising the signal again (delivered as this handler returns) ends the process as
        // if weir had never installed a handler. Both are async-signal-safe.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &default, ptr::null_mut());
            libc::raise(libc::SIGBUS);
        }
    }

    /// A read-only map of a real file.
    struct RealReadMap {
        map: Mmap,
        slot: &'static Slot,
    }

    impl std::fmt::Debug for RealReadMap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RealReadMap").field("len", &self.map.len()).field("faulted", &self.slot.faulted()).finish()
        }
    }

    impl Drop for RealReadMap {
        fn drop(&mut self) {
            // Before the map goes (the field drops after this): nothing accesses it any more.
            self.slot.release();
        }
    }

    impl ReadMap for RealReadMap {
        fn len(&self) -> usize {
            self.map.len()
        }
        fn view(self: Arc<Self>, offset: usize, len: usize) -> Bytes {
            Bytes::from_owner(View(self)).slice(offset..offset + len)
        }
        fn faulted(&self) -> bool {
            self.slot.faulted()
        }
        fn begin_access(&self) -> bool {
            self.slot.active.fetch_add(1, Ordering::SeqCst);
            if self.slot.faulted() {
                self.end_access();
                return false;
            }
            true
        }
        fn end_access(&self) {
            let last = self.slot.active.fetch_sub(1, Ordering::SeqCst) == 1;
            // An access that begins after this sees the fault and touches nothing.
            if last && self.slot.faulted() && self.slot.fenced.swap(1, Ordering::SeqCst) == 0 {
                self.fence_faulted_pages();
            }
        }
    }

    impl RealReadMap {
        fn fence_faulted_pages(&self) {
            let page = PAGE.load(Ordering::Relaxed);
            let (start, len) = (self.map.as_ptr() as usize, self.map.len());
            let ranges = match self.slot.faulted_pages() {
                Some(pages) => pages.into_iter().map(|p| (p, page)).collect(),
                None => vec![(start, len.div_ceil(page) * page)],
            };
            for (at, n) in ranges {
                // SAFETY: `[at, at + n)` is page-aligned and lies in this map (a faulted page of
                // it, now a page of zeros, or the whole map), which this value owns until it is
                // dropped; making it inaccessible changes no memory outside it. Bytes of it a
                // caller holds now end the process when read instead of reading zeros.
                unsafe { libc::mprotect(at as *mut c_void, n, libc::PROT_NONE) };
            }
        }
    }

    /// Keeps a read map alive as the owner of a `Bytes` view of it.
    struct View(Arc<RealReadMap>);

    impl AsRef<[u8]> for View {
        fn as_ref(&self) -> &[u8] {
            &self.0.map
        }
    }

    /// A writable map of a real file.
    struct RealWriteMap {
        map: MmapMut,
        slot: &'static Slot,
    }

    impl std::fmt::Debug for RealWriteMap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RealWriteMap").field("len", &self.map.len()).field("faulted", &self.slot.faulted()).finish()
        }
    }

    impl Drop for RealWriteMap {
        fn drop(&mut self) {
            self.slot.release();
        }
    }

    impl WriteMap for RealWriteMap {
        fn len(&self) -> usize {
            self.map.len()
        }
        fn copy_in(&mut self, offset: usize, data: &[u8]) {
            let _guard = Guard::enter();
            self.map[offset..offset + data.len()].copy_from_slice(data);
        }
        fn prefault(&mut self, offset: usize, len: usize) {
            // One call faults in every page instead of one page fault per page at the copies.
            // A kernel without MADV_POPULATE_WRITE, or a page it cannot back, leaves the work
            // (and the fault) to the copies.
            let _ = self.map.advise_range(Advice::PopulateWrite, offset, len);
        }
        fn faulted(&self) -> bool {
            self.slot.faulted()
        }
    }

    /// A read-only map of the first `len` bytes of `file`, registered with the SIGBUS handler;
    /// `None` where the handler could not be installed (then reads go through the file).
    pub(crate) fn map_file(file: &File, len: usize) -> Option<io::Result<Arc<dyn ReadMap>>> {
        if !installed() || len == 0 {
            return None;
        }
        // SAFETY: weir holds the data directory's exclusive lock, so no other weir process
        // writes this file, and within the process whole frames are never rewritten. A page
        // that cannot be backed (an I/O error, a file cut short under the map by anyone) no
        // longer kills the process when weir reads it: weir reads only in `with_view`, whose
        // guarded access the handler above turns into a fault of this map, which it checks.
        let map = match unsafe { MmapOptions::new().len(len).map(file) } {
            Ok(map) => map,
            Err(e) => return Some(Err(e)),
        };
        let slot = register(map.as_ptr() as usize, map.len());
        Some(Ok(Arc::new(RealReadMap { map, slot })))
    }

    /// A shared writable map of the first `len` bytes of `file`, registered with the SIGBUS
    /// handler; `None` where the handler could not be installed (appends then use `write`).
    pub(crate) fn map_file_mut(file: &File, len: usize) -> Option<io::Result<Box<dyn WriteMap>>> {
        if !installed() || len == 0 {
            return None;
        }
        // SAFETY: as in `map_file`: the log's writer is the only one writing these bytes, only
        // below the file's length, and drops the map before it shortens the file; a write the
        // file system cannot back (ENOSPC on a file system that allocates on write, a file
        // cut short by someone else) is a fault of this map, which `write` reports.
        let map = match unsafe { MmapOptions::new().len(len).map_mut(file) } {
            Ok(map) => map,
            Err(e) => return Some(Err(e)),
        };
        let slot = register(map.as_ptr() as usize, map.len());
        Some(Ok(Box::new(RealWriteMap { map, slot })))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_registry_finds_each_registered_range_and_forgets_released_ones() {
            let slots: Vec<&'static Slot> =
                (0..CHUNK * 2 + 3).map(|i| register(0x1000_0000 + i * 0x10000, 0x8000)).collect();
            assert!(std::ptr::eq(find(0x1000_0000 + 5 * 0x10000 + 0x7fff).expect("found"), slots[5]));
            assert!(find(0x1000_0000 + 5 * 0x10000 + 0x8000).is_none(), "one past the end");
            let last = 0x1000_0000 + (CHUNK * 2 + 2) * 0x10000;
            assert!(std::ptr::eq(find(last).expect("in a later chunk"), slots[CHUNK * 2 + 2]));
            for slot in &slots {
                slot.release();
            }
            assert!(find(0x1000_0000 + 5 * 0x10000).is_none(), "released");
        }
    }
}
