//! The memory that listings built and not yet written to their clients
//! hold, across every connection, and its bound (`--max-listing-bytes`).
//!
//! A listing (`GET /orders`, `/trades`, `/book`, `/candles`) is a request
//! of a few dozen bytes whose answer can run to hundreds of megabytes.
//! One connection builds one at a time, but a client that opens many
//! connections, asks each for a listing and reads none held one listing
//! per connection until `--request-timeout`: about 140 connections asking
//! for 11 MB each ran the service out of a 2 GiB address space. So every
//! large listing body is counted here from when it is built until it is
//! written or dropped, and a listing asked for while the count is at the
//! bound is answered 503 (retry) instead of built: the bound, plus the one
//! listing that crossed it, is what listings can hold.
//!
//! The replica thread builds most listings and the front thread writes
//! them, so the count is an atomic; a [`Held`] body gives its bytes back
//! when dropped, whichever way it goes (written, its connection closed,
//! or a `HEAD` that sends no body).

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
    /// `None` if it is large and listings already hold the bound (a
    /// small one, such as a shallow `GET /book`, is never refused).
    pub fn admit(self: &Arc<Self>, bytes: Vec<u8>) -> Option<Held> {
        if bytes.len() >= COUNTED && self.held() >= self.max {
            return None;
        }
        Some(self.hold(bytes))
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

    /// `bytes` as a listing body, counted while it lives if it is large.
    fn hold(self: &Arc<Self>, bytes: Vec<u8>) -> Held {
        if bytes.len() < COUNTED {
            return Held::uncounted(bytes);
        }
        self.held.fetch_add(bytes.len(), Ordering::Relaxed);
        Held {
            bytes,
            memory: Some(self.clone()),
        }
    }
}

/// Bytes waiting to be written; a listing body among them is counted in
/// its [`ListingMemory`] until dropped.
#[derive(Debug, Default)]
pub struct Held {
    bytes: Vec<u8>,
    memory: Option<Arc<ListingMemory>>,
}

impl Held {
    /// Bytes counted nowhere (answers copied together, an empty body).
    pub fn uncounted(bytes: Vec<u8>) -> Self {
        Held {
            bytes,
            memory: None,
        }
    }

    /// The bytes to append to, if they are not a counted body: a counted
    /// body must keep the length it was counted at.
    pub fn appendable(&mut self) -> Option<&mut Vec<u8>> {
        match self.memory {
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

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(memory) = &self.memory {
            memory.held.fetch_sub(self.bytes.len(), Ordering::Relaxed);
        }
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
