//! Lock-free rings between the service's threads, and the wait strategies
//! their ends use. This module owns every `unsafe` block of the crate; nothing
//! else may reach into a ring's slots.
//!
//! # The contract
//!
//! - **Two kinds of ring.** [`spsc`] builds a single-producer single-consumer
//!   ring of any `T: Send` (the I/O thread's commands to the matching thread):
//!   items are moved in by the [`Producer`] and moved out by the [`Consumer`].
//!   [`broadcast`] builds a one-writer, many-reader ring of `T: Copy` (the
//!   matching thread's events): every [`Subscriber`] reads *every* item the
//!   [`Publisher`] publishes, in order, at its own pace, through its own
//!   cursor.
//! - **Fixed capacity, allocated once.** The capacity is rounded up to a power
//!   of two and allocated when the ring is built. Nothing allocates after
//!   that: not pushing, not popping, not waiting (the first blocking wait
//!   clones the waiting thread's handle, which is a reference count).
//! - **Layout.** Under `Spin` and `Membarrier`, small items (up to 32
//!   bytes, aligned to their size: `u64`, a `Box`) are laid out one to a
//!   cache line among their neighbours, so that a reader and the writer
//!   never share the line of two consecutive items; under `Adaptive` they
//!   stay packed (`WaitStrategy::spreads_items` has the figures). Larger
//!   items, such as the service's commands and events, are always packed.
//! - **Lock-free.** No locks. Pushing and popping are wait-free: a few loads,
//!   one store, and under [`WaitStrategy::Adaptive`] one `SeqCst` fence and
//!   one load per publish (or per drain); under [`WaitStrategy::Membarrier`]
//!   the load alone. The only blocking calls are the ones
//!   named so: `push` and `wait`.
//! - **Full.** `try_push` and `stage` hand the item back in `Err`; `push`
//!   waits until there is room (back-pressure, never a drop). Each time a
//!   writer finds its ring full is counted (`full_events`). On a broadcast
//!   ring the slowest live reader decides when the ring is full; a dropped
//!   reader no longer counts.
//! - **Empty.** `pop` returns `None`, `drain` returns 0, `wait` blocks until an
//!   item is published or the writing end is closed.
//! - **Batches.** `stage` writes an item without publishing it; `publish`
//!   makes everything staged visible with one `Release` store. `drain`
//!   consumes everything available (up to a maximum) and frees it with one
//!   `Release` store. Each side caches the other side's cursor and reads the
//!   shared one only when the cache says empty (or full): in the common case a
//!   push or pop touches no cache line the other side writes.
//! - **End of stream.** Dropping the writing end (or `close`) publishes what
//!   it had staged; the reading ends get every published item, then
//!   [`WaitResult::Closed`]. Dropping an SPSC [`Consumer`] makes a blocked
//!   `push` return `Err` (nothing can be consumed any more); items left in an
//!   SPSC ring are dropped with it.
//! - **Threads.** Each end is `Send` and belongs to one thread at a time; all
//!   its mutating methods take `&mut self`. There is exactly one writer per
//!   ring. The `&self` methods (`available`, `is_closed`, `full_events`,
//!   `prepare_sleep`, ...) only read atomics or move the caller's own sleep
//!   flag.
//! - **Waiting.** The [`WaitStrategy`] is chosen per ring when it is built.
//!   `Adaptive` (the default) spins briefly with `crossbeam_utils::Backoff`,
//!   then parks; the other side wakes it after its next publish, using a
//!   Dekker handshake on a `sleeping` flag, so no wake-up is ever lost and an
//!   awake peer costs no system call. `Membarrier` waits the same way but
//!   makes the handshake's barrier asymmetric: nothing on publish, one
//!   `membarrier(2)` system call each time a side goes to sleep. `Spin`
//!   never parks. A reader that sleeps
//!   somewhere other than `thread::park` (a mio loop in `Poll::poll`) installs
//!   a [`Wake`] with `set_waker` and brackets its blocking call with
//!   `prepare_sleep` / `finish_sleep`.
//!
//! # Example
//!
//! ```
//! use orderbook::ring::{spsc, WaitResult};
//!
//! let (mut producer, mut consumer) = spsc::<u64>(1024);
//! let io_thread = std::thread::spawn(move || {
//!     for seq in 0..10_000 {
//!         producer.push(seq).expect("the consumer is alive"); // waits while full
//!     }
//!     // Dropping the producer closes the stream.
//! });
//! let mut expected = 0;
//! while let WaitResult::Ready(_) = consumer.wait() {
//!     consumer.drain(usize::MAX, |seq| {
//!         assert_eq!(seq, expected);
//!         expected += 1;
//!     });
//! }
//! assert_eq!(expected, 10_000);
//! io_thread.join().unwrap();
//! ```
//!
//! # Checking it
//!
//! Unit tests here cover the contract on one thread; `tests/ring_stress.rs`
//! moves millions of items between real threads; `tests/loom_ring.rs` model
//! checks the protocol, including the sleep handshake, with `loom`
//! (`RUSTFLAGS="--cfg loom"`, where the private `sync` shim swaps in loom's
//! primitives).

mod broadcast;
mod buffer;
mod spsc;
mod sync;
mod wait;

pub use broadcast::{broadcast, broadcast_with, Publisher, Subscriber};
pub use spsc::{spsc, spsc_with, Consumer, Producer};
pub use wait::{ParseWaitStrategyError, WaitResult, WaitStrategy, Wake};

/// The bytes a ring (of either kind) of `capacity` items of `T` allocates
/// for its items when it is made, packed (a ring of items under 64 bytes
/// spread by its wait strategy takes one line more): the service checks
/// the machine can give them before it makes its rings.
pub fn reserved_bytes<T>(capacity: usize) -> u64 {
    buffer::Buffer::<T>::reserved_bytes(capacity)
}

#[cfg(all(test, not(loom)))]
mod tests;
