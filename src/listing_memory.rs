//! The memory that listings built and not yet written to their clients
//! hold, across every connection, and its bound (`--max-listing-bytes`).
//!
//! A listing (`GET /orders`, `/trades`, `/book`, `/candles`, and the
//! `orders_snapshot` a WebSocket connection gets when it starts to follow
//! `orders`) is a request of a few dozen bytes whose answer can run to
//! hundreds of megabytes.
//! One connection builds one at a time, but a client that opens many
//! connections, asks each for a listing and reads none held one listing
//! per connection until `--request-timeout`: about 140 connections asking
//! for 11 MB each ran the service out of a 2 GiB address space. So every
//! large listing body is counted here from when it is built until it is
//! written or dropped. A large listing built while the count is at the
//! bound is dropped and answered 503 (retry); an order snapshot closes
//! its connection with 1013 (try again later) instead. The bound, plus
//! the one listing that crossed it, is what listings can hold.
//!
//! The replica thread builds most listings and the front thread writes
//! them, so the count is an atomic; a [`Charge`] gives its bytes back when
//! dropped, whichever way its listing goes (written, its connection
//! closed, or a `HEAD` that sends no body).

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bodies at least this large are counted: smaller ones are copied into
/// their connection's write buffer, which the per-connection write
/// backlog already bounds.
pub const COUNTED: usize = 64 * 1024;

/// Large listing bodies built and not yet written, against their bound.
#[derive(Debug)]
pub struct ListingMemory {
    held: AtomicUsize,
    max: usize,
}

impl ListingMemory {
    /// A count of nothing, bounded at `max` bytes.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ListingMemory {
            held: AtomicUsize::new(0),
            max,
        })
    }

    /// `bytes` as a listing body, counted while it lives if it is large;
    /// `None` if it is large and listings already hold the bound. What is
    /// counted is the memory it holds: a body that grew by doubling, or
    /// was reserved for the whole book and filtered, gives back its spare
    /// room first (a filtered `GET /orders` of 6 MB held 200 MB).
    pub fn admit(self: &Arc<Self>, mut bytes: Vec<u8>) -> Option<Held> {
        let spare = bytes.capacity() - bytes.len();
        if spare >= COUNTED || (spare > 0 && bytes.len() >= COUNTED) {
            bytes.shrink_to_fit();
        }
        let charge = self.charge(bytes.capacity())?;
        Some(Held { bytes, charge })
    }

    /// A charge for a listing of `len` bytes, counted until dropped if it
    /// is large; `None` if it is large and listings already hold the
    /// bound (a small one, such as a shallow `GET /book`, is never
    /// refused: it takes no room worth keeping).
    pub fn charge(self: &Arc<Self>, len: usize) -> Option<Charge> {
        if len < COUNTED {
            return Some(Charge::default());
        }
        if self.held() >= self.max {
            return None;
        }
        self.held.fetch_add(len, Ordering::Relaxed);
        Some(Charge {
            len,
            memory: Some(self.clone()),
        })
    }

    /// Bytes counted now.
    pub fn held(&self) -> usize {
        // Relaxed: a gauge and a threshold; no other memory is published
        // through it.
        self.held.load(Ordering::Relaxed)
    }

    /// The bound, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// A listing's bytes counted in a [`ListingMemory`] until dropped (or
/// nothing, for a small listing).
#[derive(Debug, Default)]
pub struct Charge {
    len: usize,
    memory: Option<Arc<ListingMemory>>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(memory) = &self.memory {
            memory.held.fetch_sub(self.len, Ordering::Relaxed);
        }
    }
}

/// Bytes waiting to be written; a listing body among them is counted
/// until dropped.
#[derive(Debug, Default)]
pub struct Held {
    bytes: Vec<u8>,
    charge: Charge,
}

impl Held {
    /// Bytes counted nowhere (answers copied together, an empty body).
    pub fn uncounted(bytes: Vec<u8>) -> Self {
        Held {
            bytes,
            charge: Charge::default(),
        }
    }

    /// The bytes to append to, if they are not a counted body: a counted
    /// body must keep the length it was counted at.
    pub fn appendable(&mut self) -> Option<&mut Vec<u8>> {
        match self.charge.memory {
            None => Some(&mut self.bytes),
            Some(_) => None,
        }
    }
}

impl Deref for Held {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_body_is_counted_until_dropped_and_a_small_one_never() {
        let memory = ListingMemory::new(3 * COUNTED);
        let small = memory.admit(vec![b'x'; COUNTED - 1]).unwrap();
        assert_eq!(memory.held(), 0);
        let first = memory.admit(vec![b'x'; COUNTED]).unwrap();
        let second = memory.admit(vec![b'x'; 2 * COUNTED]).unwrap();
        assert_eq!(memory.held(), 3 * COUNTED);
        drop(first);
        assert_eq!(memory.held(), 2 * COUNTED);
        drop((small, second));
        assert_eq!(memory.held(), 0);
    }

    #[test]
    fn at_the_bound_a_large_body_is_refused_and_a_small_one_admitted() {
        let memory = ListingMemory::new(2 * COUNTED);
        // Below the bound, a body that crosses it is still admitted.
        let below = memory.admit(vec![b'x'; COUNTED]).unwrap();
        let crossing = memory.admit(vec![b'x'; 5 * COUNTED]).unwrap();
        assert_eq!(memory.held(), 6 * COUNTED);
        assert!(memory.admit(vec![b'x'; COUNTED]).is_none());
        assert_eq!(memory.held(), 6 * COUNTED, "a refused body is not counted");
        let small = memory.admit(vec![b'x'; COUNTED - 1]).unwrap();
        assert_eq!(small.len(), COUNTED - 1);
        drop(crossing);
        assert!(memory.admit(vec![b'x'; COUNTED]).is_some());
        drop(below);
        assert_eq!(memory.held(), 0);
    }

    #[test]
    fn a_body_is_counted_by_the_memory_it_holds_after_giving_back_spare_room() {
        let memory = ListingMemory::new(usize::MAX);
        let mut grown = Vec::with_capacity(40 * COUNTED);
        grown.resize(2 * COUNTED, b'x');
        let held = memory.admit(grown).unwrap();
        assert_eq!(memory.held(), 2 * COUNTED);
        assert_eq!(held.len(), 2 * COUNTED);
        // A small body reserved large gives its room back too.
        let mut small = Vec::with_capacity(40 * COUNTED);
        small.push(b'x');
        let mut small = memory.admit(small).unwrap();
        assert!(small.appendable().unwrap().capacity() < COUNTED);
        drop(held);
        assert_eq!(memory.held(), 0);
    }

    #[test]
    fn a_charge_counts_its_length_until_dropped() {
        let memory = ListingMemory::new(COUNTED);
        let small = memory.charge(COUNTED - 1).unwrap();
        let large = memory.charge(2 * COUNTED).unwrap();
        assert_eq!(memory.held(), 2 * COUNTED);
        assert!(memory.charge(COUNTED).is_none());
        drop((small, large));
        assert_eq!(memory.held(), 0);
    }

    #[test]
    fn a_counted_body_cannot_be_appended_to() {
        let memory = ListingMemory::new(usize::MAX);
        let mut counted = memory.admit(vec![b'x'; COUNTED]).unwrap();
        assert!(counted.appendable().is_none());
        let mut plain = Held::uncounted(b"ab".to_vec());
        plain.appendable().unwrap().push(b'c');
        assert_eq!(&*plain, b"abc");
        drop(counted);
        assert_eq!(memory.held(), 0);
    }
}
