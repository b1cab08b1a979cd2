//! A slot arena: values addressed by a `u32` index, freed slots reused
//! first. Storage grows in fixed chunks that never move, so growing never
//! copies the book and the steady state (as many frees as takes) never
//! allocates.

/// The index no slot has: the end of a linked list.
pub(crate) const NIL: u32 = u32::MAX;

/// 2^18 slots: a chunk of 64-byte order slots is 16 MiB. When the
/// allocator asks for transparent huge pages (opt-in, README.md), a chunk's
/// mapping then holds at least seven whole, aligned 2 MiB pages (a 2 MiB
/// chunk, never aligned, held none), so a big book's random slot accesses
/// miss the TLB less. Untouched pages of a chunk are never resident.
const CHUNK_BITS: u32 = 18;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (CHUNK_LEN as u32) - 1;

pub(crate) struct Arena<T> {
    /// Each chunk has capacity `CHUNK_LEN` and is never reallocated.
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
        let chunk_count = capacity.div_ceil(CHUNK_LEN).max(1);
        let mut chunks = Vec::with_capacity(chunk_count.max(64));
        for _ in 0..chunk_count {
            chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        Arena {
            chunks,
            free: Vec::with_capacity(capacity),
            live: 0,
            fresh: 0,
        }
    }

    /// Puts `value` in a slot and returns its index.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            *self.get_mut(index) = value;
            return index;
        }
        // No freed slot: take the next fresh one, opening a chunk if needed.
        let index = self.fresh;
        assert!(index != NIL, "arena exhausted its u32 index space");
        self.fresh += 1;
        let chunk_index = (index >> CHUNK_BITS) as usize;
        if chunk_index == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        let chunk = &mut self.chunks[chunk_index];
        chunk.push(value);
        index
    }

    /// Marks slot `index` free; its value stays until the slot is reused.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) {
        self.live -= 1;
        self.free.push(index);
    }

    #[inline]
    pub(crate) fn get(&self, index: u32) -> &T {
        &self.chunks[(index >> CHUNK_BITS) as usize][(index & CHUNK_MASK) as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> &mut T {
        &mut self.chunks[(index >> CHUNK_BITS) as usize][(index & CHUNK_MASK) as usize]
    }

    /// The value in slot `index` if it was ever handed out (for hints
    /// computed from possibly stale indices).
    #[inline]
    pub(crate) fn try_get(&self, index: u32) -> Option<&T> {
        self.chunks
            .get((index >> CHUNK_BITS) as usize)?
            .get((index & CHUNK_MASK) as usize)
    }

    /// Slots in use.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn grows_past_one_chunk_without_moving_values() {
        let mut arena = Arena::with_capacity(1);
        let indices: Vec<u32> = (0..(CHUNK_LEN as u64 * 2 + 5))
            .map(|v| arena.insert(v))
            .collect();
        for (value, index) in indices.iter().enumerate() {
            assert_eq!(*arena.get(*index), value as u64);
        }
    }
}
