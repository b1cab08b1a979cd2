//! The id index: order id → `u32` value (an arena slot, or a history
//! position), as an open-addressing table of 8-byte entries.
//!
//! It owns only the entries; the ids live where the values point, so every
//! lookup takes a caller's predicate to confirm a match. It must never make
//! the matching thread wait: it is sized once for the configured orders at
//! most half full, deletes by backward shift (no tombstones, so churn never
//! degrades it or forces a rehash), and grows only past its configured
//! capacity.
//!
//! Each entry keeps 32 bits of the id's hash (the tag) beside the value.
//! A probe compares tags first, so a lookup reads one line of the table and
//! then only the slot it wanted anyway; two different ids share a tag with
//! probability 2^-32, and the predicate settles that case. The home bucket
//! is the tag's low bits, so an entry's home is known without its id:
//! backward shift and growth never touch the order slots.

/// The value no entry holds: marks a bucket empty.
const EMPTY: u32 = u32::MAX;

/// Buckets never fewer than this, so a probe sequence is never degenerate.
const MIN_BUCKETS: usize = 8;

#[derive(Clone, Copy)]
struct Entry {
    /// The low 32 bits of the id's hash; meaningless while `value == EMPTY`.
    tag: u32,
    /// What the id maps to, or `EMPTY`.
    value: u32,
}

const VACANT: Entry = Entry {
    tag: 0,
    value: EMPTY,
};

/// Where a lookup ended: the bucket holding the id, or the empty bucket
/// where it would be inserted.
pub(crate) enum Probe {
    /// The id is present at this bucket.
    Found(usize),
    /// The id is absent; inserting it belongs at this bucket.
    Vacant(usize),
}

pub(crate) struct IdIndex {
    /// Power-of-two length; linear probing from `tag & mask`, wrapping.
    entries: Box<[Entry]>,
    /// `entries.len() - 1`.
    mask: usize,
    /// Buckets in use; kept at most half of `entries.len()`.
    len: usize,
}

impl IdIndex {
    /// An index for `capacity` ids before it grows (at most half full then).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let buckets = capacity
            .saturating_mul(2)
            .max(MIN_BUCKETS)
            .checked_next_power_of_two()
            .expect("id index capacity overflows usize");
        assert!(
            buckets <= 1 << 32,
            "id index larger than a 32-bit tag can address"
        );
        IdIndex {
            entries: vec![VACANT; buckets].into_boxed_slice(),
            mask: buckets - 1,
            len: 0,
        }
    }

    /// Ids in the index.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Looks for the entry whose tag is `hash`'s and whose value satisfies
    /// `is_it` (called only on a tag match).
    #[inline]
    pub(crate) fn probe(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Probe {
        let tag = hash as u32;
        let mut at = tag as usize & self.mask;
        loop {
            let entry = self.entries[at];
            if entry.value == EMPTY {
                return Probe::Vacant(at);
            }
            if entry.tag == tag && is_it(entry.value) {
                return Probe::Found(at);
            }
            at = (at + 1) & self.mask;
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
        self.entries[at].value
    }

    /// Replaces the value at bucket `at`, keeping its id.
    #[inline]
    pub(crate) fn set(&mut self, at: usize, value: u32) {
        debug_assert!(value != EMPTY && self.entries[at].value != EMPTY);
        self.entries[at].value = value;
    }

    /// Inserts the id hashed to `hash` with `value` at the bucket a
    /// `Probe::Vacant` named, with no change to the index in between.
    #[inline]
    pub(crate) fn insert_at(&mut self, at: usize, hash: u64, value: u32) {
        debug_assert!(value != EMPTY && self.entries[at].value == EMPTY);
        if (self.len + 1) * 2 > self.entries.len() {
            // Past the configured capacity: grow (rare; O(n), never in the
            // sized steady state), then find the new bucket.
            self.grow();
            self.insert_new(hash, value);
            return;
        }
        self.entries[at] = Entry {
            tag: hash as u32,
            value,
        };
        self.len += 1;
    }

    /// Inserts an id known to be absent.
    pub(crate) fn insert_new(&mut self, hash: u64, value: u32) {
        let mut at = hash as u32 as usize & self.mask;
        while self.entries[at].value != EMPTY {
            at = (at + 1) & self.mask;
        }
        self.insert_at(at, hash, value);
    }

    /// Empties bucket `at`, then moves later entries of its probe run back
    /// into the hole whenever their home allows, so that every remaining
    /// entry is still reachable from its home without passing an empty bucket.
    #[inline]
    pub(crate) fn remove_at(&mut self, mut hole: usize) {
        debug_assert!(self.entries[hole].value != EMPTY);
        self.len -= 1;
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let entry = self.entries[at];
            if entry.value == EMPTY {
                break;
            }
            let home = entry.tag as usize & self.mask;
            // The entry may fill the hole unless its home lies cyclically
            // in (hole, at]: then it would sit before its home.
            let distance_to_entry = at.wrapping_sub(home) & self.mask;
            let distance_to_hole = at.wrapping_sub(hole) & self.mask;
            if distance_to_entry >= distance_to_hole {
                self.entries[hole] = entry;
                hole = at;
            }
        }
        self.entries[hole] = VACANT;
    }

    /// Doubles the table, re-homing every entry by its tag alone.
    #[cold]
    fn grow(&mut self) {
        let doubled = vec![VACANT; self.entries.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.entries, doubled);
        assert!(
            self.entries.len() <= 1 << 32,
            "id index larger than a 32-bit tag can address"
        );
        self.mask = self.entries.len() - 1;
        for entry in old.iter().filter(|e| e.value != EMPTY) {
            let mut at = entry.tag as usize & self.mask;
            while self.entries[at].value != EMPTY {
                at = (at + 1) & self.mask;
            }
            self.entries[at] = *entry;
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
                index: IdIndex::with_capacity(capacity),
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
        assert_eq!(h.index.entries[5].value, 1);
        assert_eq!(h.index.entries[8].value, EMPTY);
    }

    #[test]
    fn runs_that_wrap_around_the_end_stay_reachable() {
        let mut h = Harness::new(8, near_end);
        assert_eq!(h.index.entries.len(), 16);
        for key in 0..8 {
            h.insert(key);
        }
        // Buckets 14, 15, 0, 1, ... hold the run.
        assert_ne!(h.index.entries[0].value, EMPTY);
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
        let mut h = Harness::new(8, hash);
        for key in 0..4 {
            h.insert(key);
        }
        assert_eq!(h.index.entries[1].value, 3);
        assert!(h.remove(0));
        for key in 1..4 {
            assert_eq!(h.find(key), Some(key as u32));
        }
        // Key 3 moved to its home, bucket 0, once the run shrank.
        assert_eq!(h.index.entries[0].value, 3);
    }

    #[test]
    fn grows_past_its_capacity_and_keeps_every_entry() {
        let mut h = Harness::new(4, crate::engine::hash::fold);
        let before = h.index.entries.len();
        for key in 0..1000 {
            h.insert(key);
        }
        assert!(h.index.entries.len() > before);
        assert!(h.index.len() * 2 <= h.index.entries.len());
        for key in 0..1000 {
            assert_eq!(h.find(key), Some(key as u32));
        }
    }

    #[test]
    fn millions_of_churn_ops_agree_with_a_hash_map() {
        // A small table kept near its half-full limit, so runs are long
        // and backward shifts frequent; a model map says what must be there.
        let mut h = Harness::new(1 << 12, crate::engine::hash::fold);
        let buckets = h.index.entries.len();
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
        assert_eq!(h.index.entries.len(), buckets, "churn never grew it");
        for (&key, &value) in &model {
            assert_eq!(h.find(key), Some(value));
        }
    }
}
