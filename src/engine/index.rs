//! The id index: order id → `u32` value (an arena slot, or a history
//! position), as an open-addressing table of 8-byte entries. The book also
//! keeps its price → level map in one.
//!
//! It owns only the entries; the ids live where the values point, so every
//! lookup takes a caller's predicate to confirm a match. It must never make
//! the matching thread wait: deletion is by backward shift (no tombstones,
//! so churn never degrades it or forces a rehash), and growth is
//! incremental (no stop-the-world rehash).
//!
//! Each entry keeps 32 bits of the id's hash (the tag) beside the value.
//! A probe compares tags first, so a lookup reads one line of the table and
//! then only the slot it wanted anyway; two different ids share a tag with
//! probability 2^-32, and the predicate settles that case. The home bucket
//! is the tag's low bits, so an entry's home is known without its id:
//! backward shift and growth never touch the order slots.
//!
//! # Sized to what it holds, allocated for what it may hold
//!
//! A table sized for the configured capacity (say 2^20 orders, 16 MiB)
//! spreads even a thin book over all of it, so every new id's probe is a
//! cache and TLB miss. So the table in use is sized to the live count (at
//! most a quarter full for a [`SPARSE`] index, the matching thread's; half
//! for a [`DENSE`] one; at least [`START_BUCKETS`]), inside two zeroed
//! buffers allocated up front for the configured capacity at that load:
//! pages never touched are never resident, and growing up to that
//! capacity allocates nothing. Past it the table fills to half before it
//! grows (and allocates).
//!
//! A quarter rather than half: probe runs are shorter and far more often
//! a single bucket, so the loops over them are predicted right. In
//! `benches/engine.rs`'s mix that took 55.2 → 46.2 ns/op at 1k resting,
//! 71.0 → 66.6 at 100k and 132.4 → 96.8 at 1M (medians of 3 alternating
//! runs; a quantity decrease got 5–9% slower at 100k and 1M), for twice
//! the table's memory (16 → 32 MiB per buffer at 2^20 orders).
//! Growing doubles the table into the other buffer and moves
//! [`STEP`] old buckets per insert; until the move is done, lookups try
//! the new table and then the old one, and a removal from the old one
//! leaves a tombstone there (the old table is dropped whole). Then the old
//! buffer is zeroed, [`STEP`] words per insert, ready for the next
//! doubling. Both finish long before the new table is full enough to
//! grow again.

use super::arena::{bytes, resident_zeroed};
use super::prefetch::prefetch;

/// A bucket's word is `tag << 32 | !value`: an all-zero word is empty, so
/// zeroed memory is an empty table.
const EMPTY_LOW: u32 = 0;
/// The low half of a tombstone (only ever in the table being moved from).
const GONE_LOW: u32 = 1;

/// The table in use never has fewer buckets (unless the configured
/// capacity needs fewer): 8 KiB, in L1.
const START_BUCKETS: usize = 1 << 10;

/// Buckets moved (or words zeroed) per insert while growing. At 16, moving
/// and zeroing a table of `s` buckets take `s / 8` inserts, while the
/// doubled table (`2s` buckets, `s / 4` full) grows again only after `s /
/// 4` more (`s / 2`, at half full, past the reserved buffers).
const STEP: usize = 16;

/// A sparse index's table grows once more than `1 / SPARSE` of it would
/// be full, while it is smaller than the reserved buffers; then at half,
/// as a dense one always does.
pub(crate) const SPARSE: usize = 4;
/// A dense index fills its table to half before it grows.
pub(crate) const DENSE: usize = 2;

/// Marks a bucket position as one of the old table's.
const IN_OLD: usize = 1 << (usize::BITS - 1);

/// Minimum buckets, so a probe sequence is never degenerate.
const MIN_BUCKETS: usize = 8;

#[inline]
fn word(tag: u32, value: u32) -> u64 {
    debug_assert!(!value != EMPTY_LOW && !value != GONE_LOW, "reserved value");
    ((tag as u64) << 32) | (!value) as u64
}

#[inline]
fn tag_of(word: u64) -> u32 {
    (word >> 32) as u32
}

#[inline]
fn low_of(word: u64) -> u32 {
    word as u32
}

#[inline]
fn value_of(word: u64) -> u32 {
    !(word as u32)
}

/// Where a lookup ended: the bucket holding the id, or the empty bucket
/// where it would be inserted.
pub(crate) enum Probe {
    /// The id is present at this bucket.
    Found(usize),
    /// The id is absent; inserting it belongs at this bucket.
    Vacant(usize),
}

pub(crate) struct IdIndex {
    /// Buckets `0..size` are the table in use: power-of-two `size`, linear
    /// probing from `tag & mask`, wrapping. Words past `size` are zero.
    table: Vec<u64>,
    size: usize,
    /// `size - 1`.
    mask: usize,
    /// The other buffer. While `old_size > 0` its first `old_size` buckets
    /// are the previous table, being moved; otherwise its first `dirty`
    /// words may be non-zero and the rest are zero.
    old: Vec<u64>,
    old_size: usize,
    /// The move walks the old table from `moved_from` (an empty bucket, so
    /// no probe run crosses it), cyclically; `moved` buckets are done.
    moved_from: usize,
    moved: usize,
    dirty: usize,
    /// Live entries in both tables.
    len: usize,
    /// The table in use is kept at most `1 / spread` full while it is
    /// smaller than the reserved buffers.
    spread: usize,
}

impl IdIndex {
    /// An index for `capacity` ids before it allocates again, kept at most
    /// `1 / spread` full ([`SPARSE`] or [`DENSE`]) up to there; past it
    /// it fills to half before it does.
    pub(crate) fn with_capacity(capacity: usize, spread: usize) -> Self {
        debug_assert!(spread == SPARSE || spread == DENSE);
        let reserved = Self::buckets(capacity, spread);
        assert!(
            reserved <= 1 << 32,
            "id index larger than a 32-bit tag can address"
        );
        let size = reserved.min(START_BUCKETS);
        // Zeroed allocations: the pages are not resident until touched.
        IdIndex {
            table: vec![0; reserved],
            size,
            mask: size - 1,
            old: vec![0; reserved],
            old_size: 0,
            moved_from: 0,
            moved: 0,
            dirty: 0,
            len: 0,
            spread,
        }
    }

    /// The buckets of each of the two buffers
    /// [`with_capacity`](Self::with_capacity) reserves.
    fn buckets(capacity: usize, spread: usize) -> usize {
        capacity
            .saturating_mul(spread)
            .max(MIN_BUCKETS)
            .checked_next_power_of_two()
            .expect("id index capacity overflows usize")
    }

    /// The bytes [`with_capacity`](Self::with_capacity) reserves.
    pub(crate) fn reserved_bytes(capacity: usize, spread: usize) -> u64 {
        2 * bytes(Self::buckets(capacity, spread), size_of::<u64>())
    }

    /// The bytes this index's buffers have room for.
    #[cfg(test)]
    pub(crate) fn capacity_bytes(&self) -> u64 {
        bytes(
            self.table.capacity() + self.old.capacity(),
            size_of::<u64>(),
        )
    }

    /// Replaces both reserved buffers (still empty: call it before the
    /// first insert) with zeroed ones made resident up front, on huge pages
    /// where the kernel has them (see [`resident_zeroed`]).
    pub(crate) fn make_resident(&mut self) {
        debug_assert_eq!(self.len, 0, "made resident before any insert");
        self.table = resident_zeroed(self.table.len());
        self.old = resident_zeroed(self.old.len());
    }

    /// Ids in the index.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Looks for the entry whose tag is `hash`'s and whose value satisfies
    /// `is_it` (called only on a tag match).
    #[inline(always)]
    pub(crate) fn probe(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Probe {
        let tag = hash as u32;
        let mut at = tag as usize & self.mask;
        loop {
            let word = self.table[at];
            if low_of(word) == EMPTY_LOW {
                break;
            }
            if tag_of(word) == tag && is_it(value_of(word)) {
                return Probe::Found(at);
            }
            at = (at + 1) & self.mask;
        }
        if self.old_size > 0 {
            if let Some(old_at) = self.probe_old(tag, is_it) {
                return Probe::Found(old_at | IN_OLD);
            }
        }
        Probe::Vacant(at)
    }

    /// Starts fetching the bucket where a probe for `hash` begins.
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u64) {
        prefetch(&self.table[hash as u32 as usize & self.mask]);
    }

    /// A guess, for prefetching only: the value of the first entry whose
    /// tag is `hash`'s. The id is not confirmed (that would load the slot
    /// this is meant to fetch early), so a shared tag makes it wrong.
    #[inline]
    pub(crate) fn peek(&self, hash: u64) -> Option<u32> {
        match self.probe(hash, |_| true) {
            Probe::Found(at) => Some(self.get(at)),
            Probe::Vacant(_) => None,
        }
    }

    /// The old table's part of a lookup while growing: buckets already
    /// moved are skipped (their entries are found in the new table), and
    /// tombstones never match.
    #[cold]
    fn probe_old(&self, tag: u32, mut is_it: impl FnMut(u32) -> bool) -> Option<usize> {
        let mask = self.old_size - 1;
        let mut at = tag as usize & mask;
        loop {
            let word = self.old[at];
            match low_of(word) {
                EMPTY_LOW => return None,
                GONE_LOW => {}
                _ => {
                    let moved = (at.wrapping_sub(self.moved_from) & mask) < self.moved;
                    if !moved && tag_of(word) == tag && is_it(value_of(word)) {
                        return Some(at);
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// The bucket of the id whose value satisfies `is_it`, if present.
    #[inline]
    pub(crate) fn find(&self, hash: u64, is_it: impl FnMut(u32) -> bool) -> Option<usize> {
        match self.probe(hash, is_it) {
            Probe::Found(at) => Some(at),
            Probe::Vacant(_) => None,
        }
    }

    /// The bucket holding exactly `value` for the id hashed to `hash`: no
    /// predicate needed, since a value names one id.
    #[inline]
    pub(crate) fn find_value(&self, hash: u64, value: u32) -> Option<usize> {
        self.find(hash, |v| v == value)
    }

    /// The value at bucket `at` (from `probe` or `find`).
    #[inline]
    pub(crate) fn get(&self, at: usize) -> u32 {
        if at & IN_OLD == 0 {
            value_of(self.table[at])
        } else {
            value_of(self.old[at & !IN_OLD])
        }
    }

    /// Replaces the value at bucket `at`, keeping its id.
    #[inline]
    pub(crate) fn set(&mut self, at: usize, value: u32) {
        let bucket = if at & IN_OLD == 0 {
            &mut self.table[at]
        } else {
            &mut self.old[at & !IN_OLD]
        };
        *bucket = word(tag_of(*bucket), value);
    }

    /// Inserts the id hashed to `hash` with `value` at the bucket a
    /// `Probe::Vacant` named, with no change to the index in between.
    #[inline]
    pub(crate) fn insert_at(&mut self, at: usize, hash: u64, value: u32) {
        debug_assert!(at & IN_OLD == 0 && low_of(self.table[at]) == EMPTY_LOW);
        if self.len + 1 > self.grows_past() {
            self.grow();
            self.insert_new(hash, value);
            return;
        }
        self.table[at] = word(hash as u32, value);
        self.len += 1;
        if self.old_size > 0 || self.dirty > 0 {
            self.step();
        }
    }

    /// The most entries the table in use holds before it grows.
    #[inline]
    fn grows_past(&self) -> usize {
        if self.size < self.table.len() {
            self.size / self.spread
        } else {
            self.size / 2
        }
    }

    /// Inserts an id known to be absent.
    pub(crate) fn insert_new(&mut self, hash: u64, value: u32) {
        let mut at = hash as u32 as usize & self.mask;
        while low_of(self.table[at]) != EMPTY_LOW {
            at = (at + 1) & self.mask;
        }
        self.insert_at(at, hash, value);
    }

    /// Removes the entry at bucket `at`.
    #[inline]
    pub(crate) fn remove_at(&mut self, at: usize) {
        self.len -= 1;
        if at & IN_OLD == 0 {
            self.shift_back(at);
        } else {
            // The old table is dropped whole once moved: a tombstone keeps
            // its runs intact (and its move cursor valid) until then.
            let bucket = &mut self.old[at & !IN_OLD];
            *bucket = ((tag_of(*bucket) as u64) << 32) | GONE_LOW as u64;
        }
    }

    /// Empties bucket `hole` of the table in use, then moves later entries
    /// of its probe run back into the hole whenever their home allows, so
    /// that every remaining entry is still reachable from its home without
    /// passing an empty bucket.
    #[inline]
    fn shift_back(&mut self, mut hole: usize) {
        debug_assert!(low_of(self.table[hole]) != EMPTY_LOW);
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let word = self.table[at];
            if low_of(word) == EMPTY_LOW {
                break;
            }
            let home = tag_of(word) as usize & self.mask;
            // The entry may fill the hole unless its home lies cyclically
            // in (hole, at]: then it would sit before its home.
            let distance_to_entry = at.wrapping_sub(home) & self.mask;
            let distance_to_hole = at.wrapping_sub(hole) & self.mask;
            if distance_to_entry >= distance_to_hole {
                self.table[hole] = word;
                hole = at;
            }
        }
        self.table[hole] = 0;
    }

    /// Starts doubling the table: the table in use becomes the old one,
    /// the other (zeroed) buffer the new one.
    #[cold]
    fn grow(&mut self) {
        // Normally both are long finished (see `STEP`); finish them if not.
        while self.old_size > 0 || self.dirty > 0 {
            self.step();
        }
        let size = self.size * 2;
        assert!(
            size <= 1 << 32,
            "id index larger than a 32-bit tag can address"
        );
        if self.old.len() < size {
            // Past the configured capacity: allocate (zeroed, so lazily).
            self.old = vec![0; size];
        }
        std::mem::swap(&mut self.table, &mut self.old);
        self.old_size = self.size;
        self.size = size;
        self.mask = size - 1;
        // At most half full, so an empty bucket exists: start the move
        // there, where no probe run crosses.
        let old_mask = self.old_size - 1;
        self.moved_from = (0..self.old_size)
            .find(|&at| low_of(self.old[at]) == EMPTY_LOW)
            .expect("a half-full table has an empty bucket");
        debug_assert!(self.moved_from <= old_mask);
        self.moved = 0;
    }

    /// One increment of growing: moves up to [`STEP`] old buckets into the
    /// table in use, or zeroes up to [`STEP`] words of the old buffer.
    fn step(&mut self) {
        if self.old_size > 0 {
            let mask = self.old_size - 1;
            let end = (self.moved + STEP).min(self.old_size);
            for done in self.moved..end {
                let word = self.old[(self.moved_from + done) & mask];
                if low_of(word) != EMPTY_LOW && low_of(word) != GONE_LOW {
                    let mut at = tag_of(word) as usize & self.mask;
                    while low_of(self.table[at]) != EMPTY_LOW {
                        at = (at + 1) & self.mask;
                    }
                    self.table[at] = word;
                }
            }
            self.moved = end;
            if self.moved == self.old_size {
                self.dirty = self.old_size;
                self.old_size = 0;
            }
        } else {
            let from = self.dirty.saturating_sub(STEP);
            self.old[from..self.dirty].fill(0);
            self.dirty = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A model of the book's use: key → value, the key kept in `keys` at
    /// the value's position, as the book keeps ids in slots.
    struct Harness {
        index: IdIndex,
        keys: Vec<u64>,
        hash: fn(u64) -> u64,
    }

    impl Harness {
        fn new(capacity: usize, hash: fn(u64) -> u64) -> Self {
            Harness {
                index: IdIndex::with_capacity(capacity, SPARSE),
                keys: Vec::new(),
                hash,
            }
        }

        fn find(&self, key: u64) -> Option<u32> {
            let keys = &self.keys;
            self.index
                .find((self.hash)(key), |v| keys[v as usize] == key)
                .map(|at| self.index.get(at))
        }

        /// Inserts `key` if absent, returning its value.
        fn insert(&mut self, key: u64) -> u32 {
            let hash = (self.hash)(key);
            let keys = &self.keys;
            match self.index.probe(hash, |v| keys[v as usize] == key) {
                Probe::Found(at) => self.index.get(at),
                Probe::Vacant(at) => {
                    let value = self.keys.len() as u32;
                    self.keys.push(key);
                    self.index.insert_at(at, hash, value);
                    value
                }
            }
        }

        fn remove(&mut self, key: u64) -> bool {
            let keys = &self.keys;
            match self
                .index
                .find((self.hash)(key), |v| keys[v as usize] == key)
            {
                Some(at) => {
                    self.index.remove_at(at);
                    true
                }
                None => false,
            }
        }
    }

    impl IdIndex {
        /// The value in bucket `at` of the table in use, if any.
        fn value_at(&self, at: usize) -> Option<u32> {
            (low_of(self.table[at]) != EMPTY_LOW).then(|| value_of(self.table[at]))
        }
    }

    /// Every key lands in the same home bucket: worst case for probing.
    fn same_home(key: u64) -> u64 {
        (key << 32) | 5
    }

    /// Homes crowd the last buckets of a 16-bucket table, so runs wrap.
    fn near_end(key: u64) -> u64 {
        (key << 32) | (14 + key % 2)
    }

    #[test]
    fn finds_what_was_inserted_and_nothing_else() {
        let mut h = Harness::new(100, crate::engine::hash::fold);
        for key in 0..100 {
            assert_eq!(h.insert(key * 7), key as u32);
        }
        for key in 0..100 {
            assert_eq!(h.find(key * 7), Some(key as u32));
            assert_eq!(h.insert(key * 7), key as u32, "no duplicate");
        }
        assert_eq!(h.find(3), None);
        assert_eq!(h.index.len(), 100);
    }

    #[test]
    fn equal_tags_are_told_apart_by_the_predicate() {
        // Every key has tag 5: only the predicate distinguishes them.
        let mut h = Harness::new(8, same_home);
        for key in 0..8 {
            h.insert(key);
        }
        for key in 0..8 {
            assert_eq!(h.find(key), Some(key as u32));
        }
        assert_eq!(h.find(99), None);
    }

    #[test]
    fn backward_shift_keeps_a_collision_run_reachable() {
        let mut h = Harness::new(8, same_home);
        for key in 0..6 {
            h.insert(key);
        }
        // Remove from the front, the middle and the end of the run.
        for gone in [0, 3, 5] {
            assert!(h.remove(gone));
            assert_eq!(h.find(gone), None);
        }
        for key in [1, 2, 4] {
            assert_eq!(h.find(key), Some(key as u32));
        }
        // The run shrank back: it starts at the home bucket, no hole in it.
        assert_eq!(h.index.value_at(5), Some(1));
        assert_eq!(h.index.value_at(8), None);
    }

    #[test]
    fn runs_that_wrap_around_the_end_stay_reachable() {
        let mut h = Harness::new(4, near_end);
        assert_eq!(h.index.size, 16);
        for key in 0..8 {
            h.insert(key);
        }
        // Buckets 14, 15, 0, 1, ... hold the run.
        assert!(h.index.value_at(0).is_some());
        for gone in [0, 5, 2] {
            assert!(h.remove(gone));
        }
        for key in [1, 3, 4, 6, 7] {
            assert_eq!(h.find(key), Some(key as u32), "key {key}");
        }
        for key in [0, 2, 5] {
            assert_eq!(h.find(key), None);
        }
    }

    #[test]
    fn an_entry_never_moves_before_its_home() {
        // Keys 0..3 are homed at 14 and run into 15 and 0; key 3, homed at
        // 0, is pushed to 1. Removing key 0 shifts all three back by one.
        fn hash(key: u64) -> u64 {
            (key << 32) | [14, 14, 14, 0][key as usize]
        }
        let mut h = Harness::new(4, hash);
        assert_eq!(h.index.size, 16);
        for key in 0..4 {
            h.insert(key);
        }
        assert_eq!(h.index.value_at(1), Some(3));
        assert!(h.remove(0));
        for key in 1..4 {
            assert_eq!(h.find(key), Some(key as u32));
        }
        // Key 3 moved to its home, bucket 0, once the run shrank.
        assert_eq!(h.index.value_at(0), Some(3));
    }

    #[test]
    fn grows_past_its_capacity_and_keeps_every_entry() {
        let mut h = Harness::new(4, crate::engine::hash::fold);
        let before = h.index.size;
        for key in 0..1000 {
            h.insert(key);
        }
        assert!(h.index.size > before);
        assert!(h.index.len() <= h.index.grows_past());
        for key in 0..1000 {
            assert_eq!(h.find(key), Some(key as u32));
        }
    }

    #[test]
    fn a_dense_index_fills_to_half_and_a_sparse_one_to_a_quarter() {
        for (spread, reserved) in [(DENSE, 1 << 13), (SPARSE, 1 << 14)] {
            let mut index = IdIndex::with_capacity(1 << 12, spread);
            assert_eq!(index.table.len(), reserved);
            let mut grew_at = Vec::new();
            for key in 0..(1u64 << 12) {
                let size = index.size;
                let hash = crate::engine::hash::fold(key);
                index.insert_new(hash, key as u32);
                if index.size != size {
                    grew_at.push((key, size));
                }
            }
            // Each doubling came with the insert that would have passed
            // `size / spread` entries.
            assert!(!grew_at.is_empty());
            for (key, size) in grew_at {
                assert_eq!(key as usize, size / spread, "spread {spread}");
            }
            assert!(index.size <= reserved, "no allocation below the capacity");
        }
    }

    #[test]
    fn grows_from_a_small_table_inside_the_reserved_buffers() {
        let mut h = Harness::new(1 << 16, crate::engine::hash::fold);
        assert_eq!(h.index.size, START_BUCKETS, "starts small");
        assert_eq!(h.index.table.len(), 1 << 18, "a quarter full at capacity");
        let buffers = (h.index.table.as_ptr(), h.index.old.as_ptr());
        for key in 0..(1 << 16) {
            h.insert(key);
        }
        assert_eq!(h.index.size, 1 << 18);
        let now = (h.index.table.as_ptr(), h.index.old.as_ptr());
        assert!(
            now == buffers || now == (buffers.1, buffers.0),
            "no allocation"
        );
        for key in 0..(1 << 16) {
            assert_eq!(h.find(key), Some(key as u32));
        }
    }

    #[test]
    fn lookups_removals_and_updates_work_in_the_middle_of_a_move() {
        let mut h = Harness::new(1 << 12, crate::engine::hash::fold);
        let limit = (START_BUCKETS / SPARSE) as u64;
        for key in 0..limit {
            h.insert(key);
        }
        assert_eq!(h.index.old_size, 0);
        // The next insert starts the move; a few more leave it half done.
        for key in limit..limit + 20 {
            h.insert(key);
        }
        assert!(h.index.old_size > 0 && h.index.moved < h.index.old_size);
        // Some entries are still only in the old table: remove and update
        // some of those and some already moved.
        let mut removed = Vec::new();
        for key in (0..limit + 20).step_by(3) {
            assert!(h.remove(key));
            removed.push(key);
        }
        let keys = &h.keys;
        for key in (1..limit + 20).step_by(3) {
            let at = h
                .index
                .find(crate::engine::hash::fold(key), |v| keys[v as usize] == key)
                .unwrap();
            h.index.set(at, key as u32 + 1_000_000);
        }
        let mut in_old = 0;
        for key in 0..limit + 20 {
            let keys = &h.keys;
            let at = h.index.find(crate::engine::hash::fold(key), |v| {
                keys.get(v as usize) == Some(&key) || v == key as u32 + 1_000_000
            });
            if removed.contains(&key) {
                assert_eq!(at, None, "key {key} was removed");
            } else {
                let at = at.expect("still there");
                in_old += (at & IN_OLD != 0) as usize;
                let expected = if key % 3 == 1 {
                    key as u32 + 1_000_000
                } else {
                    key as u32
                };
                assert_eq!(h.index.get(at), expected);
            }
        }
        assert!(in_old > 0, "the test reached entries not yet moved");
        // Finish the move and the zeroing: everything is in the new table.
        for key in 10_000..10_000 + limit {
            h.insert(key);
        }
        assert_eq!((h.index.old_size, h.index.dirty), (0, 0));
        assert!(h.index.old.iter().all(|&w| w == 0), "old buffer zeroed");
        for key in (2..limit + 20).step_by(3) {
            assert_eq!(h.find(key), Some(key as u32));
        }
        assert_eq!(
            h.index.len(),
            h.index.table.iter().filter(|&&w| w != 0).count()
        );
    }

    #[test]
    fn growing_while_churning_agrees_with_a_hash_map() {
        // Live keys random-walk up through several doublings, with as many
        // removals as inserts along the way, so moves see removals, updates
        // and lookups of both tables.
        let mut h = Harness::new(1 << 15, crate::engine::hash::fold);
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut live: Vec<u64> = Vec::new();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut fresh = 0u64;
        for step in 0..400_000u64 {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            // Slightly more inserts than removals: the count climbs.
            if r % 100 < 55 || live.is_empty() {
                fresh += 1;
                model.insert(fresh, h.insert(fresh));
                live.push(fresh);
            } else {
                let key = live.swap_remove((r >> 32) as usize % live.len());
                assert!(h.remove(key));
                model.remove(&key);
            }
            if let Some(&probe) = live.get((r >> 40) as usize % live.len().max(1)) {
                assert_eq!(h.find(probe), model.get(&probe).copied(), "step {step}");
            }
            assert_eq!(h.find(fresh + 1), None);
        }
        assert!(h.index.size >= 1 << 15, "it grew several times");
        assert_eq!(h.index.len(), model.len());
        for (&key, &value) in &model {
            assert_eq!(h.find(key), Some(value));
        }
    }

    #[test]
    fn millions_of_churn_ops_agree_with_a_hash_map() {
        // A small table kept near its half-full limit (it has reached its
        // reserved size, so it fills to half), so runs are long and
        // backward shifts frequent; a model map says what must be there.
        let mut h = Harness::new(1 << 11, crate::engine::hash::fold);
        for key in 0..(1 << 12) {
            h.insert(u64::MAX / 2 + key);
        }
        for key in 0..(1 << 12) {
            assert!(h.remove(u64::MAX / 2 + key));
        }
        // Filled to the limit first, so the churn runs at a fixed size.
        let buckets = 1 << 13;
        assert_eq!((h.index.size, h.index.table.len()), (buckets, buckets));
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut live: Vec<u64> = Vec::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut fresh = 0u64;
        for step in 0..3_000_000u64 {
            let r = next();
            if live.len() < (1 << 12) && (r % 2 == 0 || live.is_empty()) {
                fresh += 1;
                let key = fresh;
                let value = h.insert(key);
                model.insert(key, value);
                live.push(key);
            } else {
                let i = (r >> 32) as usize % live.len();
                let key = live.swap_remove(i);
                assert!(h.remove(key));
                model.remove(&key);
                assert_eq!(h.find(key), None);
            }
            if step % 250_000 == 0 {
                for (&key, &value) in &model {
                    assert_eq!(h.find(key), Some(value));
                }
            }
            // Unknown keys are never found.
            assert_eq!(h.find(u64::MAX - (r & 1023)), None);
        }
        assert_eq!(h.index.len(), model.len());
        assert_eq!(h.index.size, buckets, "churn never grew it");
        for (&key, &value) in &model {
            assert_eq!(h.find(key), Some(value));
        }
    }
}
