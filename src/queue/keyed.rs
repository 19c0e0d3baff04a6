//! A map from message key to value, kept in key order in chunks: the message table of one
//! queue's index.
//!
//! A hash map costs a queue with a million waiting messages more than twice the entries
//! themselves: its load factor and power-of-two growth leave up to half the table empty. Here
//! entries sit in sorted arrays of at most [`CHUNK`] entries, and a full chunk's arrays are
//! exactly full, so an entry costs its key, its value and one bit.
//!
//! Keys are sequence numbers of the shared log and a queue's messages arrive in increasing key
//! order (the store writes and indexes them under the queue's lock), so an insert is almost
//! always an append to the last chunk. Replay is the exception: a message that compaction copied
//! forward keeps its old key, so after its original segment is gone the copy arrives after
//! newer keys. Such inserts go into the middle, by splitting a chunk, and come in ascending
//! runs that then append to the split-off part.
//!
//! Removal leaves a tombstone (a cleared bit); a chunk with no live entry is freed and one that
//! is three quarters tombstones is compacted, so scans skip few tombstones and memory follows
//! the live count.

use std::collections::VecDeque;

/// Most entries of one chunk: large enough that per-chunk overhead is noise, small enough that
/// compacting or splitting one is cheap.
pub const CHUNK: usize = 2048;

/// Capacity of a new chunk; it doubles up to [`CHUNK`], so a queue of a few messages stays
/// small and a full chunk has no slack.
const FIRST_CAPACITY: usize = 16;

/// Most entries an insert into the middle of a chunk shifts; beyond that it splits the chunk.
const SHIFT_LIMIT: usize = 64;

/// One sorted run of entries. Never empty while it is in a store.
#[derive(Debug, Clone)]
struct Chunk<V> {
    /// Keys in increasing order, tombstones included (so positions stay sorted).
    keys: Vec<u64>,
    /// Values, by position.
    vals: Vec<V>,
    /// Bit `i` set: entry `i` is live. Bits at or past `keys.len()` are clear.
    live: Vec<u64>,
    /// Number of set bits in `live`.
    live_count: usize,
}

impl<V: Copy> Chunk<V> {
    fn with_capacity(capacity: usize) -> Self {
        Chunk {
            keys: Vec::with_capacity(capacity),
            vals: Vec::with_capacity(capacity),
            live: Vec::with_capacity(capacity.div_ceil(64)),
            live_count: 0,
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The first key (tombstone or not). Chunks in a store are never empty.
    fn first_key(&self) -> u64 {
        self.keys.first().copied().unwrap_or(0)
    }

    fn last_key(&self) -> u64 {
        self.keys.last().copied().unwrap_or(0)
    }

    fn is_live(&self, i: usize) -> bool {
        self.live.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    fn set_dead(&mut self, i: usize) {
        if let Some(w) = self.live.get_mut(i / 64) {
            if *w >> (i % 64) & 1 != 0 {
                *w &= !(1 << (i % 64));
                self.live_count -= 1;
            }
        }
    }

    fn set_live(&mut self, i: usize) {
        if let Some(w) = self.live.get_mut(i / 64) {
            if *w >> (i % 64) & 1 == 0 {
                *w |= 1 << (i % 64);
                self.live_count += 1;
            }
        }
    }

    /// Makes room for one more entry, doubling up to [`CHUNK`] (never past it, so a chunk
    /// that fills up has exactly the memory it needs).
    fn grow_if_full(&mut self) {
        let len = self.keys.len();
        if len == self.keys.capacity() || len == self.vals.capacity() {
            let want = (len * 2).clamp(FIRST_CAPACITY, CHUNK).max(len + 1);
            self.keys.reserve_exact(want - len);
            self.vals.reserve_exact(want - len);
            let words = want.div_ceil(64);
            self.live.reserve_exact(words.saturating_sub(self.live.len()));
        }
    }

    /// Appends a live entry whose key is greater than every key of the chunk.
    fn push(&mut self, key: u64, value: V) {
        self.grow_if_full();
        let i = self.keys.len();
        self.keys.push(key);
        self.vals.push(value);
        if i.is_multiple_of(64) {
            self.live.push(0);
        }
        self.set_live(i);
    }

    /// Inserts a live entry at position `at`, shifting the later ones up.
    fn insert_at(&mut self, at: usize, key: u64, value: V) {
        self.grow_if_full();
        let len = self.keys.len();
        self.keys.insert(at, key);
        self.vals.insert(at, value);
        if len.is_multiple_of(64) {
            self.live.push(0);
        }
        // Shift bits at..len up by one, high words first so each reads its lower neighbour
        // before that one changes.
        let (word, bit) = (at / 64, at % 64);
        for w in (word + 1..self.live.len()).rev() {
            self.live[w] = self.live[w] << 1 | self.live[w - 1] >> 63;
        }
        let low = (1u64 << bit) - 1;
        let old = self.live[word];
        self.live[word] = (old & low) | (old & !low) << 1;
        self.set_live(at);
    }

    /// Moves the entries from `at` on into a new chunk (exactly sized).
    fn split_off(&mut self, at: usize) -> Chunk<V> {
        let mut right = Chunk::with_capacity(self.len() - at);
        for i in at..self.len() {
            right.push(self.keys[i], self.vals[i]);
            if !self.is_live(i) {
                right.set_dead(i - at);
            }
        }
        for i in at..self.len() {
            self.set_dead(i);
        }
        self.keys.truncate(at);
        self.vals.truncate(at);
        self.live.truncate(at.div_ceil(64));
        right
    }

    /// Drops the tombstones and gives back the memory they held.
    fn compact(&mut self) {
        let mut kept = 0;
        for i in 0..self.len() {
            if self.is_live(i) {
                self.keys[kept] = self.keys[i];
                self.vals[kept] = self.vals[i];
                kept += 1;
            }
        }
        self.keys.truncate(kept);
        self.vals.truncate(kept);
        self.live.clear();
        self.live.resize(kept.div_ceil(64), u64::MAX);
        if !kept.is_multiple_of(64) {
            if let Some(last) = self.live.last_mut() {
                *last = (1u64 << (kept % 64)) - 1;
            }
        }
        self.live_count = kept;
        // A small chunk keeps its memory: a shallow queue compacts its one chunk every few
        // messages, and reallocating each time would cost more than the few bytes kept.
        if self.keys.capacity() > kept + FIRST_CAPACITY * 4 {
            self.keys.shrink_to_fit();
            self.vals.shrink_to_fit();
            self.live.shrink_to_fit();
        }
    }

    /// Appends the live entries of `right`, whose keys are all greater than this chunk's.
    fn append_live(&mut self, right: &Chunk<V>) {
        self.keys.reserve_exact(right.live_count);
        self.vals.reserve_exact(right.live_count);
        for i in 0..right.len() {
            if right.is_live(i) {
                self.push(right.keys[i], right.vals[i]);
            }
        }
    }
}

/// A map from key to value in key order: O(log n) lookup, amortized O(1) append and removal,
/// about `size_of::<V>() + 8` bytes an entry.
#[derive(Debug, Clone)]
pub struct KeyedStore<V> {
    chunks: VecDeque<Chunk<V>>,
    len: usize,
    /// One past the greatest key ever inserted (never goes back, even when that entry goes).
    next_key: u64,
}

impl<V: Copy> Default for KeyedStore<V> {
    fn default() -> Self {
        KeyedStore { chunks: VecDeque::new(), len: 0, next_key: 0 }
    }
}

impl<V: Copy> KeyedStore<V> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the greatest key ever inserted: every later insert in key order is at or above.
    pub fn next_key(&self) -> u64 {
        self.next_key
    }

    /// The chunk a key belongs in: the last whose first key is at most `key` (none if `key` is
    /// below every chunk).
    fn chunk_for(&self, key: u64) -> Option<usize> {
        // Sends append to the last chunk and receives and deletes mostly work at the front:
        // look there before searching.
        let last = self.chunks.len().checked_sub(1)?;
        if self.chunks[last].first_key() <= key {
            return Some(last);
        }
        if key < self.chunks[0].first_key() {
            return None;
        }
        if key < self.chunks[1].first_key() {
            return Some(0);
        }
        self.chunks.partition_point(|c| c.first_key() <= key).checked_sub(1)
    }

    /// Chunk and position of a live entry.
    fn locate(&self, key: u64) -> Option<(usize, usize)> {
        let ci = self.chunk_for(key)?;
        let chunk = &self.chunks[ci];
        let i = chunk.keys.binary_search(&key).ok()?;
        chunk.is_live(i).then_some((ci, i))
    }

    /// The value of a live key.
    pub fn get(&self, key: u64) -> Option<&V> {
        let (ci, i) = self.locate(key)?;
        Some(&self.chunks[ci].vals[i])
    }

    /// The value of a live key, to change.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        let (ci, i) = self.locate(key)?;
        Some(&mut self.chunks[ci].vals[i])
    }

    /// True if `key` is live.
    pub fn contains_key(&self, key: u64) -> bool {
        self.locate(key).is_some()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        self.next_key = self.next_key.max(key.saturating_add(1));
        let last = self.chunks.back().map(|c| (c.last_key(), c.len()));
        match last {
            Some((last_key, _)) if last_key >= key => return self.insert_within(key, value),
            Some((_, len)) if len < CHUNK => {
                if let Some(chunk) = self.chunks.back_mut() {
                    chunk.push(key, value);
                }
            }
            _ => {
                let mut chunk = Chunk::with_capacity(FIRST_CAPACITY);
                chunk.push(key, value);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
        None
    }

    /// Inserts a key at or below the greatest key present (the rare, out-of-order case).
    fn insert_within(&mut self, key: u64, value: V) -> Option<V> {
        let Some(ci) = self.chunk_for(key) else {
            // Below every key: the front chunk takes it if that shifts little, else a new one.
            if self.chunks.front().is_some_and(|c| c.len() <= SHIFT_LIMIT) {
                self.chunks[0].insert_at(0, key, value);
            } else {
                let mut chunk = Chunk::with_capacity(FIRST_CAPACITY);
                chunk.push(key, value);
                self.chunks.push_front(chunk);
            }
            self.len += 1;
            return None;
        };
        let chunk = &mut self.chunks[ci];
        let at = match chunk.keys.binary_search(&key) {
            Ok(i) => {
                let old = chunk.is_live(i).then(|| chunk.vals[i]);
                chunk.vals[i] = value;
                if old.is_none() {
                    chunk.set_live(i);
                    self.len += 1;
                }
                return old;
            }
            Err(at) => at,
        };
        self.len += 1;
        if at == chunk.len() {
            if chunk.len() < CHUNK {
                chunk.push(key, value);
            } else {
                let mut next = Chunk::with_capacity(FIRST_CAPACITY);
                next.push(key, value);
                self.chunks.insert(ci + 1, next);
            }
        } else if chunk.len() - at <= SHIFT_LIMIT && chunk.len() < CHUNK {
            chunk.insert_at(at, key, value);
        } else {
            // Split here rather than shift: the keys that follow in an ascending run of late
            // inserts then append to this chunk.
            let right = chunk.split_off(at);
            chunk.push(key, value);
            if right.live_count > 0 {
                self.chunks.insert(ci + 1, right);
            }
        }
        None
    }

    /// Removes a live key; returns its value.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let (ci, i) = self.locate(key)?;
        let chunk = &mut self.chunks[ci];
        let value = chunk.vals[i];
        chunk.set_dead(i);
        self.len -= 1;
        self.tidy(ci);
        Some(value)
    }

    /// After a removal from chunk `ci`: frees it when empty, compacts it when mostly
    /// tombstones, and then merges it with a small neighbour.
    fn tidy(&mut self, ci: usize) {
        let chunk = &mut self.chunks[ci];
        if chunk.live_count == 0 {
            self.chunks.remove(ci);
            return;
        }
        if chunk.live_count * 4 > chunk.len() {
            return;
        }
        chunk.compact();
        if ci + 1 < self.chunks.len() && self.chunks[ci].len() + self.chunks[ci + 1].len() <= CHUNK / 2 {
            self.merge_next(ci);
        }
        if ci > 0 && self.chunks[ci - 1].len() + self.chunks[ci].len() <= CHUNK / 2 {
            self.merge_next(ci - 1);
        }
    }

    /// Moves the live entries of chunk `ci + 1` to the end of chunk `ci`.
    fn merge_next(&mut self, ci: usize) {
        if let Some(right) = self.chunks.remove(ci + 1) {
            self.chunks[ci].append_live(&right);
        }
    }

    /// The live entry with the smallest key at or above `key`. Costs O(log n) plus the
    /// tombstones passed on the way.
    pub fn first_from(&self, key: u64) -> Option<(u64, &V)> {
        let mut ci = self.chunk_for(key).unwrap_or(0);
        let mut i = self.chunks.get(ci)?.keys.partition_point(|&k| k < key);
        while let Some(chunk) = self.chunks.get(ci) {
            while i < chunk.len() {
                if chunk.is_live(i) {
                    return Some((chunk.keys[i], &chunk.vals[i]));
                }
                i += 1;
            }
            ci += 1;
            i = 0;
        }
        None
    }

    /// Every live entry with a key at or above `key`, in key order (O(log n) to start).
    pub fn iter_from(&self, key: u64) -> impl Iterator<Item = (u64, &V)> {
        let first = self.chunk_for(key).unwrap_or(0);
        let start = self.chunks.get(first).map_or(0, |c| c.keys.partition_point(|&k| k < key));
        self.chunks.iter().enumerate().skip(first).flat_map(move |(ci, c)| {
            let from = if ci == first { start } else { 0 };
            (from..c.len()).filter(move |&i| c.is_live(i)).map(move |i| (c.keys[i], &c.vals[i]))
        })
    }

    /// Every live entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.chunks.iter().flat_map(|c| (0..c.len()).filter(|&i| c.is_live(i)).map(|i| (c.keys[i], &c.vals[i])))
    }

    /// Every live entry in key order, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        self.chunks.iter_mut().flat_map(|c| {
            let Chunk { keys, vals, live, .. } = c;
            let live: &Vec<u64> = live;
            keys.iter()
                .zip(vals.iter_mut())
                .enumerate()
                .filter(move |(i, _)| live.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0))
                .map(|(_, (k, v))| (*k, v))
        })
    }

    /// Keeps the entries for which `keep` is true (it may change them too), then gives back
    /// the memory of the rest.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &mut V) -> bool) {
        for chunk in &mut self.chunks {
            for i in 0..chunk.len() {
                if chunk.is_live(i) && !keep(chunk.keys[i], &mut chunk.vals[i]) {
                    chunk.set_dead(i);
                    self.len -= 1;
                }
            }
        }
        self.chunks.retain(|c| c.live_count > 0);
        for chunk in &mut self.chunks {
            if chunk.live_count * 4 <= chunk.len() {
                chunk.compact();
            }
        }
        if self.chunks.len() > 2 * self.len.div_ceil(CHUNK) + 1 {
            self.repack();
        }
    }

    /// Rewrites the entries into full chunks (after replay split chunks or removed much).
    /// Moves chunk by chunk, so memory in use grows by at most one chunk meanwhile.
    fn repack(&mut self) {
        let old = std::mem::take(&mut self.chunks);
        let mut remaining = self.len;
        let mut current: Option<Chunk<V>> = None;
        for chunk in old {
            for i in (0..chunk.len()).filter(|&i| chunk.is_live(i)) {
                let target = match &mut current {
                    Some(c) if c.len() < CHUNK => c,
                    _ => {
                        if let Some(full) = current.take() {
                            self.chunks.push_back(full);
                        }
                        current.insert(Chunk::with_capacity(remaining.min(CHUNK)))
                    }
                };
                target.push(chunk.keys[i], chunk.vals[i]);
                remaining -= 1;
            }
        }
        if let Some(last) = current {
            self.chunks.push_back(last);
        }
    }

    /// Chunks held (for tests of the memory behaviour).
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Entries held, tombstones included (for tests of the memory behaviour).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// Checks every invariant (for tests).
    #[cfg(test)]
    fn check(&self) {
        let mut previous: Option<u64> = None;
        let mut live = 0;
        for chunk in &self.chunks {
            assert!(chunk.len() > 0, "empty chunk kept");
            assert!(chunk.len() <= CHUNK, "chunk over {CHUNK} entries");
            assert!(chunk.keys.capacity() <= CHUNK, "chunk capacity {} over {CHUNK}", chunk.keys.capacity());
            assert!(chunk.live_count > 0, "chunk without live entries kept");
            assert_eq!(chunk.live.len(), chunk.len().div_ceil(64), "bitmap length");
            let bits: usize = chunk.live.iter().map(|w| w.count_ones() as usize).sum();
            assert_eq!(bits, chunk.live_count, "live count");
            for &k in &chunk.keys {
                assert!(previous.is_none_or(|p| p < k), "keys out of order: {previous:?} then {k}");
                assert!(k < self.next_key, "key {k} at or past next_key {}", self.next_key);
                previous = Some(k);
            }
            live += chunk.live_count;
        }
        assert_eq!(live, self.len, "store length");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (no dependency, same sequence every run).
    struct Rng(u64);

    impl Rng {
        fn step(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.step() % n
        }
    }

    fn assert_same(store: &KeyedStore<u64>, model: &BTreeMap<u64, u64>) {
        store.check();
        assert_eq!(store.len(), model.len());
        let got: Vec<(u64, u64)> = store.iter().map(|(k, v)| (k, *v)).collect();
        let want: Vec<(u64, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn appends_then_finds_every_key() {
        let mut s = KeyedStore::new();
        for k in 0..10_000u64 {
            assert_eq!(s.insert(k * 3, k), None);
        }
        s.check();
        assert_eq!(s.len(), 10_000);
        assert_eq!(s.next_key(), 29_998);
        for k in 0..10_000u64 {
            assert_eq!(s.get(k * 3), Some(&k));
            assert_eq!(s.get(k * 3 + 1), None);
        }
        assert_eq!(s.get(u64::MAX), None);
        assert_eq!(s.chunk_count(), 10_000usize.div_ceil(CHUNK));
    }

    #[test]
    fn full_chunks_have_no_slack() {
        let mut s = KeyedStore::new();
        for k in 0..(3 * CHUNK as u64) {
            s.insert(k, k);
        }
        for chunk in &s.chunks {
            assert_eq!(chunk.keys.capacity(), CHUNK);
            assert_eq!(chunk.vals.capacity(), CHUNK);
        }
    }

    #[test]
    fn insert_of_a_present_key_replaces_it() {
        let mut s = KeyedStore::new();
        s.insert(5, 1);
        s.insert(9, 2);
        assert_eq!(s.insert(5, 10), Some(1));
        assert_eq!(s.get(5), Some(&10));
        assert_eq!(s.len(), 2);
        assert_eq!(s.remove(9), Some(2));
        // A removed key (a tombstone still in place) comes back as new.
        s.insert(11, 3);
        s.insert(12, 4);
        s.insert(13, 5);
        s.insert(14, 6);
        assert_eq!(s.remove(12), Some(4));
        assert_eq!(s.insert(12, 7), None);
        assert_eq!(s.get(12), Some(&7));
        s.check();
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn removal_frees_empty_chunks_and_compacts_sparse_ones() {
        let mut s = KeyedStore::new();
        let n = 4 * CHUNK as u64;
        for k in 0..n {
            s.insert(k, k);
        }
        // Empty the first chunk entirely: it goes.
        for k in 0..CHUNK as u64 {
            assert_eq!(s.remove(k), Some(k));
        }
        s.check();
        assert_eq!(s.chunk_count(), 3);
        // Remove three of every four in the second: it compacts to the survivors.
        for k in CHUNK as u64..2 * CHUNK as u64 {
            if k % 4 != 0 {
                s.remove(k);
            }
        }
        s.check();
        assert!(s.slots() <= s.len() + 1, "{} slots for {} live", s.slots(), s.len());
        assert_eq!(s.get(CHUNK as u64 + 4), Some(&(CHUNK as u64 + 4)));
        assert_eq!(s.get(CHUNK as u64 + 5), None);
        assert_eq!(s.remove(CHUNK as u64 + 5), None, "removing twice finds nothing");
    }

    #[test]
    fn sparse_neighbours_merge() {
        let mut s = KeyedStore::new();
        let n = 4 * CHUNK as u64;
        for k in 0..n {
            s.insert(k, k);
        }
        // Keep one in sixteen everywhere: every chunk compacts to 128, and neighbours merge.
        for k in 0..n {
            if k % 16 != 0 {
                s.remove(k);
            }
        }
        s.check();
        assert_eq!(s.len(), (n / 16) as usize);
        assert!(s.chunk_count() <= 2, "{} chunks for {} entries", s.chunk_count(), s.len());
        let want: Vec<u64> = (0..n).filter(|k| k % 16 == 0).collect();
        assert_eq!(s.iter().map(|(k, _)| k).collect::<Vec<_>>(), want);
    }

    #[test]
    fn iter_from_starts_at_the_first_live_key_at_or_above() {
        let mut store = KeyedStore::new();
        for k in (0..3 * CHUNK as u64).map(|k| k * 2) {
            store.insert(k, k);
        }
        for k in (0..3 * CHUNK as u64).step_by(7) {
            store.remove(k * 2);
        }
        for from in [0, 1, 2, 99, CHUNK as u64 * 2 - 1, CHUNK as u64 * 2, 6 * CHUNK as u64, u64::MAX] {
            let expected: Vec<u64> = store.iter().map(|(k, _)| k).filter(|&k| k >= from).collect();
            let got: Vec<u64> = store.iter_from(from).map(|(k, _)| k).collect();
            assert_eq!(got, expected, "from {from}");
        }
    }

    #[test]
    fn first_from_skips_tombstones_and_crosses_chunks() {
        let mut s = KeyedStore::new();
        for k in 0..3 * CHUNK as u64 {
            s.insert(k * 2, k);
        }
        assert_eq!(s.first_from(0).map(|(k, _)| k), Some(0));
        assert_eq!(s.first_from(1).map(|(k, _)| k), Some(2));
        // Remove the tail of the first chunk and the head of the second.
        for k in CHUNK as u64 - 10..CHUNK as u64 + 10 {
            s.remove(k * 2);
        }
        let from = (CHUNK as u64 - 20) * 2 + 1;
        assert_eq!(s.first_from(from).map(|(k, _)| k), Some((CHUNK as u64 - 19) * 2));
        let from = (CHUNK as u64 - 10) * 2;
        assert_eq!(s.first_from(from).map(|(k, v)| (k, *v)), Some(((CHUNK as u64 + 10) * 2, CHUNK as u64 + 10)));
        assert_eq!(s.first_from(6 * CHUNK as u64), None);
        assert_eq!(KeyedStore::<u64>::new().first_from(0), None);
    }

    #[test]
    fn late_keys_land_in_order() {
        // Replay of compaction copies: newer keys first, then an ascending run of older ones
        // below everything, then runs into the middle of full chunks.
        let mut s = KeyedStore::new();
        let mut model = BTreeMap::new();
        for k in (10_000..10_000 + 4 * CHUNK as u64).step_by(2) {
            s.insert(k, k);
            model.insert(k, k);
        }
        for k in (0..5_000).step_by(2) {
            assert_eq!(s.insert(k, k), None);
            model.insert(k, k);
        }
        assert_same(&s, &model);
        // Present keys are replaced in place.
        for k in (10_000..10_000 + CHUNK as u64).step_by(500) {
            assert_eq!(s.insert(k, k + 1), Some(k));
            model.insert(k, k + 1);
        }
        // An ascending run into the middle of a full chunk, and a descending one elsewhere.
        for k in (10_001..10_801).step_by(2) {
            assert_eq!(s.insert(k, k), None);
            model.insert(k, k);
        }
        for k in (0..2_000u64).rev().map(|i| i * 2 + 1) {
            s.insert(k, k);
            model.insert(k, k);
        }
        assert_same(&s, &model);
        assert_eq!(s.next_key(), 10_000 + 4 * CHUNK as u64 - 1);
        // A split whose right part is all tombstones keeps no empty chunk.
        let top = 10_000 + 4 * CHUNK as u64 - 2;
        for k in (top - 400..=top).step_by(2) {
            s.remove(k);
            model.remove(&k);
        }
        s.insert(top - 401, 1);
        model.insert(top - 401, 1);
        assert_same(&s, &model);
    }

    #[test]
    fn random_operations_match_a_sorted_map() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut s = KeyedStore::new();
        let mut model = BTreeMap::new();
        let mut top = 0u64;
        for round in 0..60_000u64 {
            match rng.below(10) {
                0..=4 => {
                    top += 1 + rng.below(3);
                    assert_eq!(s.insert(top, round), model.insert(top, round));
                }
                5 => {
                    let k = rng.below(top + 1);
                    assert_eq!(s.insert(k, round), model.insert(k, round), "late insert of {k}");
                }
                6..=8 => {
                    // Mostly near the front, as deletes after receives are.
                    let k = match model.keys().next() {
                        Some(&first) if rng.below(2) == 0 => first + rng.below(50),
                        _ => rng.below(top + 1),
                    };
                    assert_eq!(s.remove(k), model.remove(&k), "remove {k}");
                }
                _ => {
                    let k = rng.below(top + 2);
                    assert_eq!(s.get(k), model.get(&k), "get {k}");
                    let want = model.range(k..).next().map(|(k, v)| (*k, *v));
                    assert_eq!(s.first_from(k).map(|(k, v)| (k, *v)), want, "first_from {k}");
                }
            }
            if round % 5_000 == 0 {
                assert_same(&s, &model);
            }
        }
        assert_same(&s, &model);
        s.retain(|k, v| {
            *v += 1;
            k % 3 != 0
        });
        model.retain(|k, _| k % 3 != 0);
        for v in model.values_mut() {
            *v += 1;
        }
        assert_same(&s, &model);
        for (_, v) in s.iter_mut() {
            *v = 0;
        }
        assert!(s.iter().all(|(_, v)| *v == 0));
    }

    #[test]
    fn retain_repacks_a_fragmented_store() {
        let mut s = KeyedStore::new();
        // Split chunks with descending late inserts, then drop most entries.
        for k in (0..200_000u64).step_by(100) {
            s.insert(k + 50, k);
        }
        for k in (0..2_000u64).rev().map(|i| i * 100) {
            s.insert(k, k);
        }
        s.check();
        s.retain(|k, _| k % 1_000 == 0);
        s.check();
        assert_eq!(s.len(), 200);
        assert_eq!(s.chunk_count(), 1);
        assert_eq!(s.slots(), 200);
    }

    #[test]
    fn a_million_entries_cost_about_their_size() {
        let mut s: KeyedStore<[u64; 5]> = KeyedStore::new();
        let n = 1_000_000u64;
        for k in 0..n {
            s.insert(k, [k; 5]);
        }
        s.check();
        let capacity: usize =
            s.chunks.iter().map(|c| c.keys.capacity() * 8 + c.vals.capacity() * 40 + c.live.capacity() * 8).sum();
        let per_entry = capacity as f64 / n as f64;
        assert!(per_entry < 48.5, "{per_entry:.2} bytes an entry");
        // Drain from the front as receives and deletes do: memory follows.
        for k in 0..n - 1_000 {
            assert!(s.remove(k).is_some());
        }
        s.check();
        assert!(s.slots() < 4 * CHUNK, "{} slots for {} live", s.slots(), s.len());
        assert_eq!(s.first_from(0).map(|(k, _)| k), Some(n - 1_000));
    }
}
