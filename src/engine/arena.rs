//! A slot arena: values addressed by a `u32` index, freed slots reused
//! first. The configured capacity is one allocation made up front, so a
//! lookup is one bounds check; past it, storage grows in fixed chunks.
//! Nothing ever moves, so growing never copies the book and the steady
//! state (as many frees as takes) never allocates.

/// The index no slot has: the end of a linked list.
pub(crate) const NIL: u32 = u32::MAX;

/// 2^18 slots: a chunk of 64-byte order slots past the configured
/// capacity is 16 MiB. When the allocator asks for transparent huge pages
/// (opt-in, README.md), a mapping that large holds whole, aligned 2 MiB
/// pages (a 2 MiB one, never aligned, held none), so a big book's random
/// slot accesses miss the TLB less. Untouched pages are never resident.
const CHUNK_BITS: u32 = 18;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK_LEN - 1;

/// Makes `buffer`'s spare capacity resident, backed by
/// transparent huge pages where the kernel has them (`MADV_HUGEPAGE`, a
/// hint: without them the pages are plain 4 KiB ones, touched all the
/// same).
///
/// A big book's slots and id index are reached at random: with 4 KiB
/// pages nearly every such access also misses the TLB, and in a VM each
/// TLB miss is a two-level page walk; 2 MiB pages keep a 1M-order book
/// within the TLB's reach. The pages are touched here, up front, because
/// faulting a huge page in while matching (zeroing 2 MiB, compacting
/// memory to find it) stalled the service: a growing book's `POST` p99
/// was 3.7 ms against 0.49 ms when the pages were left to fault in. Below
/// two huge pages nothing is done. Call it on a buffer with nothing in it
/// yet ([`resident_zeroed`] for one that must start as zeros).
pub(crate) fn make_resident<T>(buffer: &mut Vec<T>) {
    let bytes = buffer.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE_PAGE {
        return;
    }
    kevy_madvise::advise_hugepage(buffer.as_ptr().cast::<u8>(), bytes);
    let per_page = (BASE_PAGE / std::mem::size_of::<T>().max(1)).max(1);
    // One write per base page faults it in (a whole huge page where the
    // kernel gives one). The spare capacity is uninitialised storage: a
    // zeroed `MaybeUninit` may be written there and is never read.
    for page in buffer.spare_capacity_mut().chunks_mut(per_page) {
        *std::hint::black_box(&mut page[0]) = std::mem::MaybeUninit::zeroed();
    }
}

/// `len` zeros in a buffer made resident as by [`make_resident`] (the
/// zeros are written, so every page is in memory either way).
pub(crate) fn resident_zeroed(len: usize) -> Vec<u64> {
    let mut buffer = Vec::with_capacity(len);
    make_resident(&mut buffer);
    buffer.resize(len, 0);
    buffer
}

/// A transparent huge page (x86_64 and aarch64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;
const BASE_PAGE: usize = 4096;

pub(crate) struct Arena<T> {
    /// Slots `0..base.capacity()`, pushed into one allocation that is
    /// never reallocated (it never grows past its capacity).
    base: Vec<T>,
    /// Slots from `base.capacity()` on, in chunks of capacity `CHUNK_LEN`
    /// that are never reallocated.
    chunks: Vec<Vec<T>>,
    /// Freed slot indices, reused last-in first-out (warm in cache).
    free: Vec<u32>,
    /// Slots in use.
    live: usize,
    /// Slots ever handed out: the next fresh index.
    fresh: u32,
}

impl<T> Arena<T> {
    /// An arena with room for `capacity` slots before it allocates again.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Arena {
            base: Vec::with_capacity(capacity),
            chunks: Vec::with_capacity(64),
            free: Vec::with_capacity(capacity),
            live: 0,
            fresh: 0,
        }
    }

    /// The bytes [`with_capacity`](Self::with_capacity) reserves.
    pub(crate) fn reserved_bytes(capacity: usize) -> u64 {
        bytes(capacity, size_of::<T>())
            + bytes(capacity, size_of::<u32>())
            + bytes(64, size_of::<Vec<T>>())
    }

    /// The bytes this arena's buffers have room for.
    #[cfg(test)]
    pub(crate) fn capacity_bytes(&self) -> u64 {
        let chunks: u64 = (self.chunks.iter())
            .map(|chunk| bytes(chunk.capacity(), size_of::<T>()))
            .sum();
        bytes(self.base.capacity(), size_of::<T>())
            + bytes(self.free.capacity(), size_of::<u32>())
            + bytes(self.chunks.capacity(), size_of::<Vec<T>>())
            + chunks
    }

    /// Puts `value` in a slot and returns its index.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            *self.get_mut(index) = value;
            return index;
        }
        // No freed slot: take the next fresh one.
        let index = self.fresh;
        assert!(index != NIL, "arena exhausted its u32 index space");
        self.fresh += 1;
        if (index as usize) < self.base.capacity() {
            // Within capacity: `push` never reallocates.
            self.base.push(value);
        } else {
            self.push_past_base(value);
        }
        index
    }

    /// Makes the configured capacity resident up front, on huge pages
    /// where the kernel has them (see [`make_resident`]); storage past it
    /// stays on demand.
    pub(crate) fn make_resident(&mut self) {
        make_resident(&mut self.base);
    }

    #[cold]
    fn push_past_base(&mut self, value: T) {
        let past = self.fresh as usize - 1 - self.base.capacity();
        if past >> CHUNK_BITS == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        self.chunks[past >> CHUNK_BITS].push(value);
    }

    /// The slot the `back`-th insert from now takes if nothing is freed
    /// meanwhile (0: the next), when it is a freed one.
    #[inline]
    pub(crate) fn next_free(&self, back: usize) -> Option<u32> {
        self.free
            .len()
            .checked_sub(back + 1)
            .map(|at| self.free[at])
    }

    /// Marks slot `index` free; its value stays until the slot is reused.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) {
        self.live -= 1;
        self.free.push(index);
    }

    #[inline]
    pub(crate) fn get(&self, index: u32) -> &T {
        let at = index as usize;
        if at < self.base.len() {
            &self.base[at]
        } else {
            self.get_past_base(at)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> &mut T {
        let at = index as usize;
        if at < self.base.len() {
            &mut self.base[at]
        } else {
            self.get_past_base_mut(at)
        }
    }

    /// The value in slot `index` if it was ever handed out (for hints
    /// computed from possibly stale indices).
    #[inline]
    pub(crate) fn try_get(&self, index: u32) -> Option<&T> {
        let at = index as usize;
        if at < self.base.len() {
            Some(&self.base[at])
        } else {
            self.try_get_past_base(at)
        }
    }

    #[cold]
    fn get_past_base(&self, at: usize) -> &T {
        let past = at - self.base.capacity();
        &self.chunks[past >> CHUNK_BITS][past & CHUNK_MASK]
    }

    #[cold]
    fn get_past_base_mut(&mut self, at: usize) -> &mut T {
        let past = at - self.base.capacity();
        &mut self.chunks[past >> CHUNK_BITS][past & CHUNK_MASK]
    }

    #[cold]
    fn try_get_past_base(&self, at: usize) -> Option<&T> {
        let past = at.checked_sub(self.base.capacity())?;
        self.chunks.get(past >> CHUNK_BITS)?.get(past & CHUNK_MASK)
    }

    /// Slots in use.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

/// `count` items of `size` bytes, in bytes: a `u64`, so that a reservation
/// larger than any machine is counted, not overflowed.
pub(crate) fn bytes(count: usize, size: usize) -> u64 {
    count as u64 * size as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of `[start, start + bytes)` present in memory, from
    /// `/proc/self/pagemap` (bit 63 of each page's entry).
    fn present_pages(start: usize, bytes: usize) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let mut map = std::fs::File::open("/proc/self/pagemap").expect("open pagemap");
        let (first, pages) = (start / BASE_PAGE, bytes.div_ceil(BASE_PAGE));
        map.seek(SeekFrom::Start(first as u64 * 8)).unwrap();
        let mut entries = vec![0u8; pages * 8];
        map.read_exact(&mut entries).unwrap();
        entries.chunks_exact(8).filter(|e| e[7] >> 7 == 1).count()
    }

    #[test]
    fn make_resident_faults_in_every_page_of_the_capacity() {
        // Past glibc's largest mmap threshold (32 MiB), so each buffer is a
        // fresh mapping that nothing has touched yet.
        let bytes = 20 * HUGE_PAGE;
        let mut buffer: Vec<u64> = Vec::with_capacity(bytes / 8);
        let start = buffer.as_ptr() as usize;
        // Untouched: at most the allocator's header page is present.
        assert!(present_pages(start, bytes) <= 1);
        make_resident(&mut buffer);
        assert_eq!(present_pages(start, bytes), bytes / BASE_PAGE);
        assert!(buffer.is_empty(), "nothing was pushed");

        let zeroed = resident_zeroed(bytes / 8);
        assert_eq!(
            present_pages(zeroed.as_ptr() as usize, bytes),
            bytes / BASE_PAGE
        );
        assert!(zeroed.iter().all(|&v| v == 0));
    }

    #[test]
    fn freed_slots_are_reused_before_growing() {
        let mut arena = Arena::with_capacity(4);
        let a = arena.insert(1u64);
        let b = arena.insert(2u64);
        arena.remove(a);
        let c = arena.insert(3u64);
        assert_eq!(c, a);
        assert_eq!(*arena.get(b), 2);
        assert_eq!(*arena.get(c), 3);
        assert_eq!(arena.len(), 2);
    }

    #[test]
    fn next_free_names_the_slots_the_coming_inserts_take() {
        let mut arena = Arena::with_capacity(8);
        let slots: Vec<u32> = (0..5u64).map(|v| arena.insert(v)).collect();
        assert_eq!(arena.next_free(0), None, "nothing freed yet");
        for &slot in &[slots[1], slots[3], slots[0]] {
            arena.remove(slot);
        }
        let predicted: Vec<Option<u32>> = (0..4).map(|k| arena.next_free(k)).collect();
        assert_eq!(
            predicted,
            [Some(slots[0]), Some(slots[3]), Some(slots[1]), None]
        );
        let taken: Vec<u32> = (10..13u64).map(|v| arena.insert(v)).collect();
        assert_eq!(taken, [slots[0], slots[3], slots[1]]);
        assert_eq!(arena.next_free(0), None);
    }

    #[test]
    fn grows_past_its_capacity_and_one_chunk_without_moving_values() {
        let mut arena = Arena::with_capacity(1000);
        let base = arena.base.as_ptr();
        let indices: Vec<u32> = (0..(1000 + CHUNK_LEN as u64 * 2 + 5))
            .map(|v| arena.insert(v))
            .collect();
        assert_eq!(arena.base.as_ptr(), base, "the base never moved");
        for (value, index) in indices.iter().enumerate() {
            assert_eq!(*arena.get(*index), value as u64);
            assert_eq!(arena.try_get(*index), Some(&(value as u64)));
        }
        *arena.get_mut(indices[1500]) = 7;
        assert_eq!(*arena.get(indices[1500]), 7);
        assert_eq!(arena.try_get(indices.len() as u32), None);
        assert_eq!(arena.try_get(NIL), None);
    }

    #[test]
    fn an_arena_of_no_capacity_grows_in_chunks() {
        let mut arena = Arena::with_capacity(0);
        let a = arena.insert(5u8);
        let b = arena.insert(6u8);
        assert_eq!((*arena.get(a), *arena.get(b)), (5, 6));
        assert_eq!(arena.try_get(2), None);
    }
}
