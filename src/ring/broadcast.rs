//! The broadcast ring: one writer, several readers, each reader seeing every
//! item in order at its own pace. The matching thread's output ring (events
//! to the publisher, the replica and the I/O thread).
//!
//! Each reader has its own cursor; the writer may reuse a slot only once every
//! (live) reader's cursor has passed it, so the slowest reader holds the
//! writer back: back-pressure, counted in [`Publisher::full_events`]. Items
//! are `Copy` and read in place by every reader, so they are never dropped.

use core::fmt;

use crossbeam_utils::CachePadded;

use super::buffer::Buffer;
use super::sync::{spin_hint, Arc, AtomicBool, AtomicU64, AtomicUsize, Backoff, Ordering};
use super::wait::{park, Installed, Sleeper, WaitResult, WaitStrategy, Wake};

/// Creates a broadcast ring of at least `capacity` slots (rounded up to a
/// power of two) with `readers` subscribers and the default
/// [`WaitStrategy::Adaptive`].
///
/// `T: Sync` because every reader reads the same slot, by reference, from its
/// own thread.
///
/// # Panics
///
/// If `capacity` is 0 or absurdly large (over `usize::MAX / 4`).
///
/// # Examples
///
/// ```
/// let (mut publisher, mut subscribers) = orderbook::ring::broadcast::<u64>(4, 2);
/// publisher.try_push(7).unwrap();
/// publisher.try_push(8).unwrap();
/// for subscriber in &mut subscribers {
///     let mut seen = Vec::new();
///     subscriber.drain(usize::MAX, |item| seen.push(*item));
///     assert_eq!(seen, [7, 8]); // every reader sees every item
/// }
/// ```
pub fn broadcast<T: Copy + Send + Sync>(
    capacity: usize,
    readers: usize,
) -> (Publisher<T>, Vec<Subscriber<T>>) {
    broadcast_with(capacity, readers, WaitStrategy::default())
}

/// [`broadcast`] with an explicit wait strategy for the writer and every
/// reader.
///
/// # Panics
///
/// As for [`broadcast`].
pub fn broadcast_with<T: Copy + Send + Sync>(
    capacity: usize,
    readers: usize,
    strategy: WaitStrategy,
) -> (Publisher<T>, Vec<Subscriber<T>>) {
    let strategy = strategy.effective();
    let shared = Arc::new(Shared {
        tail: CachePadded::new(WriterLine {
            position: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            full_events: AtomicU64::new(0),
        }),
        cursors: (0..readers)
            .map(|_| {
                CachePadded::new(ReaderCursor {
                    position: AtomicUsize::new(0),
                    live: AtomicBool::new(true),
                })
            })
            .collect(),
        sleepers: CachePadded::new(Sleepers {
            writer: Sleeper::new(),
            readers: (0..readers).map(|_| Sleeper::new()).collect(),
        }),
        buffer: Buffer::with_capacity(capacity, strategy.spreads_items()),
        strategy,
    });
    let subscribers = (0..readers)
        .map(|index| Subscriber {
            shared: Arc::clone(&shared),
            index,
            cursor: 0,
            cached_tail: 0,
            installed: Installed::Nothing,
        })
        .collect();
    let publisher = Publisher {
        shared,
        tail: 0,
        published: 0,
        cached_min: 0,
        full_events: 0,
        installed: Installed::Nothing,
    };
    (publisher, subscribers)
}

/// The writer's cache line: written by the writer on every publish.
struct WriterLine {
    /// The tail cursor: every position below it holds a published item.
    /// Free-running; `tail - cursor` is in `0 ..= capacity` for every live
    /// reader.
    ///
    /// Written only by the writer, with `Release`, after it wrote the slots it
    /// publishes. Read by each reader with `Acquire` (so it sees those slot
    /// writes) when its cached copy says it has read everything.
    position: AtomicUsize,
    /// The writer has closed (or was dropped); nothing follows the published
    /// items. Written once by the writer, with `Release`, after its last
    /// publish; read by readers with `Acquire` when they have caught up, so
    /// that a re-read of `position` then sees the final tail.
    closed: AtomicBool,
    /// How many times the writer found the ring full. Written only by the
    /// writer (`Relaxed`: a statistic nothing is ordered after); read by
    /// anyone.
    full_events: AtomicU64,
}

/// One reader's cursor, on its own cache line: written by that reader on
/// every pop or drain.
struct ReaderCursor {
    /// The next position this reader will read; it has finished with every
    /// slot below it.
    ///
    /// Written only by its reader, with `Release`, after it read the slots it
    /// passes. Read by the writer with `Acquire` (so its next write of a slot
    /// comes after every read of the old value) when the writer's cached
    /// minimum says the ring is full.
    position: AtomicUsize,
    /// False once the reader is dropped: the writer stops waiting for it.
    ///
    /// Written once by the reader, with `Release`, in its `Drop`, after its
    /// last read of a slot. Read by the writer with `Acquire` when it scans
    /// the cursors, so that once it sees `false` it may overwrite anything.
    live: AtomicBool,
}

/// The sleep flags, on a line (and an array) of their own: read on every
/// publish or drain, written only when a side goes to sleep.
struct Sleepers {
    /// The writer's half of the sleep protocol: raised when the ring is full,
    /// checked by each reader after it advances its cursor (and at its drop).
    writer: Sleeper,
    /// Each reader's half: raised when it has caught up, checked by the writer
    /// after each publish (and at close), all after one fence.
    readers: Box<[Sleeper]>,
}

/// What the writer and the readers share.
struct Shared<T> {
    tail: CachePadded<WriterLine>,
    cursors: Box<[CachePadded<ReaderCursor>]>,
    sleepers: CachePadded<Sleepers>,
    /// The slots. Positions from the slowest live reader's cursor up to
    /// `tail` hold published items; `tail .. publisher.tail` hold staged
    /// ones. Positions are never moved out of (`T: Copy`), so nothing is ever
    /// dropped.
    buffer: Buffer<T>,
    /// Fixed at construction; the writer and every reader follow it.
    strategy: WaitStrategy,
}

// SAFETY: one writer writes slots that no live reader can still read (it read
// every live cursor past them with `Acquire`, or saw the reader gone), and
// publishes them with a `Release` store of the tail; readers only read slots
// below the tail they read with `Acquire`. Several readers read the same slot
// through `&T` from different threads at once, hence `T: Sync`; values move
// from the writer's thread to the readers', hence `T: Send`. The sleepers'
// waiter slots are written once before they are ever read (see `Sleeper`).
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// The writing end of a broadcast ring.
///
/// Owned by one thread at a time; every method that writes takes `&mut self`.
/// Dropping it (or [`close`](Self::close)) publishes anything staged and ends
/// the stream for every reader once it has read everything.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
    /// The next position to write.
    tail: usize,
    /// The tail last stored in `shared.tail.position`; `published .. tail`
    /// are staged.
    published: usize,
    /// The slowest live reader's cursor at the last scan, possibly stale
    /// (behind): the cursors are scanned again only when this says the ring
    /// is full.
    cached_min: usize,
    /// Our count of full events, mirrored into `shared.tail.full_events`.
    full_events: u64,
    /// Whom readers wake when the writer sleeps in a blocking `push`.
    installed: Installed,
}

impl<T: Copy> Publisher<T> {
    /// The ring's capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.buffer.capacity()
    }

    /// The wait strategy the ring was built with.
    pub fn strategy(&self) -> WaitStrategy {
        self.shared.strategy
    }

    /// How many readers the ring was built with.
    pub fn readers(&self) -> usize {
        self.shared.cursors.len()
    }

    /// How many readers are still alive (not dropped).
    pub fn live_readers(&self) -> usize {
        self.shared
            .cursors
            .iter()
            .filter(|cursor| cursor.live.load(Ordering::Relaxed))
            .count()
    }

    /// How many items are staged but not yet published.
    pub fn staged_len(&self) -> usize {
        self.tail.wrapping_sub(self.published)
    }

    /// How many more items fit right now (counting staged items as taken),
    /// from a fresh scan of the readers' cursors. A lower bound: readers may
    /// free more at any time.
    pub fn free_len(&self) -> usize {
        self.capacity() - self.tail.wrapping_sub(self.scan_min())
    }

    /// How many times the writer found the ring full (a `try_push` or `stage`
    /// that failed, or a `push` that had to wait, counts once): the
    /// back-pressure the slowest reader puts on the writer.
    pub fn full_events(&self) -> u64 {
        self.full_events
    }

    /// The slowest live reader's cursor, or the tail if no reader is alive.
    fn scan_min(&self) -> usize {
        let mut max_lag = 0;
        for cursor in self.shared.cursors.iter() {
            if cursor.live.load(Ordering::Acquire) {
                let lag = self
                    .tail
                    .wrapping_sub(cursor.position.load(Ordering::Acquire));
                max_lag = max_lag.max(lag);
            }
        }
        self.tail.wrapping_sub(max_lag)
    }

    /// True if there is room for one more item, rescanning the readers'
    /// cursors only when the cached minimum says the ring is full.
    #[inline]
    fn has_room(&mut self) -> bool {
        let capacity = self.capacity();
        if self.tail.wrapping_sub(self.cached_min) < capacity {
            return true;
        }
        self.cached_min = self.scan_min();
        self.tail.wrapping_sub(self.cached_min) < capacity
    }

    #[cold]
    fn count_full_event(&mut self) {
        self.full_events += 1;
        self.shared
            .tail
            .full_events
            .store(self.full_events, Ordering::Relaxed);
    }

    /// Writes `item` without publishing it: readers see it after the next
    /// [`publish`](Self::publish) (or `try_push`, `push`, `close`, drop).
    ///
    /// # Errors
    ///
    /// `Err(item)`, giving the item back, if the ring is full (the slowest
    /// reader has not passed the slot yet; staged items count). Nothing is
    /// published then.
    #[inline]
    pub fn stage(&mut self, item: T) -> Result<(), T> {
        if !self.has_room() {
            self.count_full_event();
            return Err(item);
        }
        // SAFETY: `tail - min < capacity`, where `min` is at or behind every
        // live reader's cursor as read with `Acquire` (or a dead reader's
        // `live == false` was read with `Acquire`): every reader has finished
        // reading this slot's previous value, and none reads it again until we
        // publish past `tail`.
        unsafe { self.shared.buffer.write(self.tail, item) };
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Publishes every staged item with one `Release` store of the tail, then
    /// (under `Adaptive`) wakes every reader that is asleep, after one fence.
    #[inline]
    pub fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        self.shared
            .tail
            .position
            .store(self.tail, Ordering::Release);
        self.published = self.tail;
        if self.shared.strategy.may_sleep() {
            self.notify_readers();
        }
    }

    /// Pushes `item` and publishes it (with anything staged before it).
    ///
    /// # Errors
    ///
    /// `Err(item)`, giving the item back, if the ring is full. Items staged
    /// earlier are published even then.
    #[inline]
    pub fn try_push(&mut self, item: T) -> Result<(), T> {
        let result = self.stage(item);
        self.publish();
        result
    }

    /// Pushes `item` and publishes it, waiting with the ring's strategy while
    /// the ring is full (back-pressure on the writer; readers wake a sleeping
    /// writer as they advance). Anything staged is published first, so
    /// readers can make room. Never fails: if every reader is gone, the ring
    /// is never full.
    pub fn push(&mut self, item: T) {
        if self.stage(item).is_ok() {
            self.publish();
            return;
        }
        self.publish();
        self.wait_for_room();
        let staged = self.stage(item);
        debug_assert!(staged.is_ok(), "wait_for_room returns only with room");
        self.publish();
    }

    /// Waits until the slowest live reader has freed a slot.
    #[cold]
    fn wait_for_room(&mut self) {
        let backoff = Backoff::new();
        loop {
            if self.has_room() {
                return;
            }
            match self.shared.strategy {
                WaitStrategy::Spin => spin_hint(),
                // The strategies that sleep: spin for a while first.
                _ if !backoff.is_completed() => backoff.snooze(),
                _ => {
                    let sleeper = &self.shared.sleepers.writer;
                    // SAFETY: `installed` is the writer's record for its own
                    // sleeper, and we hold `&mut self`.
                    unsafe { self.installed.ensure_thread(sleeper) };
                    sleeper.announce(self.shared.strategy);
                    // Re-scan after raising the flag: either we see a reader's
                    // progress (or its drop) here, or it sees our flag and
                    // unparks us.
                    if !self.has_room() {
                        park();
                    }
                    self.shared.sleepers.writer.retract();
                }
            }
        }
    }

    /// Closes the stream: publishes anything staged; each reader sees
    /// end-of-stream once it has read everything. The same as dropping the
    /// publisher.
    pub fn close(self) {}
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        if self.tail != self.published {
            self.shared
                .tail
                .position
                .store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
        self.shared.tail.closed.store(true, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.notify_readers();
        }
    }
}

impl<T> Publisher<T> {
    /// After a publish (or the close): the strategy's barrier once, then
    /// wakes every reader that is asleep.
    fn notify_readers(&self) {
        self.shared.strategy.publish_barrier();
        for sleeper in self.shared.sleepers.readers.iter() {
            sleeper.notify_after_barrier();
        }
    }
}

impl<T> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("capacity", &self.shared.buffer.capacity())
            .field("readers", &self.shared.cursors.len())
            .field("strategy", &self.shared.strategy)
            .field("tail", &self.tail)
            .field("published", &self.published)
            .field("full_events", &self.full_events)
            .finish_non_exhaustive()
    }
}

/// One reading end of a broadcast ring: sees every item the writer publishes,
/// in order, at its own pace.
///
/// Owned by one thread at a time; every method that reads takes `&mut self`.
/// Dropping it releases the writer from waiting for this reader.
pub struct Subscriber<T> {
    shared: Arc<Shared<T>>,
    /// Which reader this is (an index into the cursors and sleepers).
    index: usize,
    /// The next position to read; equal to this reader's shared cursor
    /// between calls.
    cursor: usize,
    /// A copy of the writer's tail, possibly stale (behind): re-read only
    /// when it says this reader has caught up (or has fewer items than a
    /// `drain` asks for).
    cached_tail: usize,
    /// Whom the writer wakes when this reader sleeps.
    installed: Installed,
}

impl<T: Copy> Subscriber<T> {
    /// The ring's capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.buffer.capacity()
    }

    /// The wait strategy the ring was built with.
    pub fn strategy(&self) -> WaitStrategy {
        self.shared.strategy
    }

    /// Which reader this is, `0 .. readers`, in the order `broadcast`
    /// returned them.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many items this reader has consumed so far (its cursor).
    pub fn position(&self) -> u64 {
        self.cursor as u64
    }

    /// How many published items this reader has not read yet. A lower bound.
    pub fn available(&self) -> usize {
        let tail = self.shared.tail.position.load(Ordering::Acquire);
        tail.wrapping_sub(self.cursor)
    }

    /// True if the writer has closed (or was dropped). Items may still be
    /// waiting: end-of-stream is `is_closed() && available() == 0` (checked
    /// in that order), or [`WaitResult::Closed`].
    pub fn is_closed(&self) -> bool {
        self.shared.tail.closed.load(Ordering::Acquire)
    }

    /// How many times the writer found the ring full.
    pub fn writer_full_events(&self) -> u64 {
        self.shared.tail.full_events.load(Ordering::Relaxed)
    }

    /// The number of items ready to read, re-reading the writer's tail only
    /// if the cached copy shows fewer than `wanted`.
    #[inline]
    fn ready(&mut self, wanted: usize) -> usize {
        let cached = self.cached_tail.wrapping_sub(self.cursor);
        if cached >= wanted {
            return cached;
        }
        self.cached_tail = self.shared.tail.position.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.cursor)
    }

    /// Releases the slots below `self.cursor` with one `Release` store, then
    /// (under `Adaptive`) wakes the writer if it is asleep.
    #[inline]
    fn release(&self) {
        self.shared.cursors[self.index]
            .position
            .store(self.cursor, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.shared.sleepers.writer.notify(self.shared.strategy);
        }
    }

    /// Reads the next item (a copy), or `None` if this reader has caught up.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.ready(1) == 0 {
            return None;
        }
        // SAFETY: `cursor < tail` (tail read with `Acquire`), so the slot holds
        // a published item; the writer will not overwrite it until our cursor
        // passes it, which the store in `release` below does after this read.
        let item = unsafe { self.shared.buffer.with_ref(self.cursor, |item| *item) };
        self.cursor = self.cursor.wrapping_add(1);
        self.release();
        Some(item)
    }

    /// Reads every available item, up to `max`, in order, handing each to `f`
    /// by reference (in place, no copy); releases their slots with one
    /// `Release` store at the end. Returns how many were read (0 if this
    /// reader has caught up or `max` is 0).
    ///
    /// If `f` panics, none of this batch is marked read: the items are
    /// offered again by the next call.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&T)) -> usize {
        if max == 0 {
            return 0;
        }
        let count = self.ready(max).min(max);
        if count == 0 {
            return 0;
        }
        let mut position = self.cursor;
        for _ in 0..count {
            // SAFETY: `position < tail` (count <= tail - cursor), so the slot
            // holds a published item; our shared cursor is still at or before
            // `position` until the `release` below, so the writer does not
            // overwrite it while `f` holds the reference.
            unsafe { self.shared.buffer.with_ref(position, &mut f) };
            position = position.wrapping_add(1);
        }
        self.cursor = position;
        self.release();
        count
    }

    /// Blocks until at least one item is available, returning how many, or
    /// until the writer has closed and this reader has read everything.
    ///
    /// Under `Adaptive` the first blocking wait installs the calling thread as
    /// the one to unpark, unless a waker was given with
    /// [`set_waker`](Self::set_waker).
    pub fn wait(&mut self) -> WaitResult {
        let ready = self.ready(1);
        if ready > 0 {
            return WaitResult::Ready(ready);
        }
        self.wait_slow()
    }

    #[cold]
    fn wait_slow(&mut self) -> WaitResult {
        let backoff = Backoff::new();
        loop {
            let ready = self.ready(1);
            if ready > 0 {
                return WaitResult::Ready(ready);
            }
            if self.is_closed() {
                // The writer published its last items before raising
                // `closed`, which we read with `Acquire`.
                let ready = self.ready(1);
                return if ready > 0 {
                    WaitResult::Ready(ready)
                } else {
                    WaitResult::Closed
                };
            }
            match self.shared.strategy {
                WaitStrategy::Spin => spin_hint(),
                // The strategies that sleep: spin for a while first.
                _ if !backoff.is_completed() => backoff.snooze(),
                _ => {
                    // SAFETY: `installed` is this reader's record for its own
                    // sleeper, and we hold `&mut self`.
                    unsafe {
                        self.installed
                            .ensure_thread(&self.shared.sleepers.readers[self.index])
                    };
                    if self.prepare_sleep() {
                        park();
                    }
                    self.finish_sleep();
                }
            }
        }
    }

    /// Installs the waker the writer calls when this reader sleeps, for a
    /// thread that sleeps somewhere other than `thread::park` (a mio loop);
    /// see [`Consumer::set_waker`](super::Consumer::set_waker).
    ///
    /// # Panics
    ///
    /// If a waker is already installed: call it once, before the first `wait`
    /// or `prepare_sleep`.
    pub fn set_waker(&mut self, waker: std::sync::Arc<dyn Wake>) {
        // SAFETY: `installed` is this reader's record for its own sleeper, and
        // we hold `&mut self`.
        unsafe {
            self.installed
                .external(&self.shared.sleepers.readers[self.index], waker)
        };
    }

    /// The first half of the sleep protocol for an external sleeper: raises
    /// this reader's sleeping flag, then re-checks the ring. Returns `true`
    /// only if there is still nothing to read and the stream is open, so it
    /// is safe to block until the waker is called; then call
    /// [`finish_sleep`](Self::finish_sleep). Returns `false` (flag lowered)
    /// otherwise, and always under [`WaitStrategy::Spin`]. See
    /// [`Consumer::prepare_sleep`](super::Consumer::prepare_sleep).
    ///
    /// # Panics
    ///
    /// If no waker is installed (no `set_waker` and no earlier blocking
    /// `wait`).
    pub fn prepare_sleep(&self) -> bool {
        assert!(
            self.installed != Installed::Nothing,
            "prepare_sleep needs a waker: call set_waker first"
        );
        if !self.shared.strategy.may_sleep() {
            return false;
        }
        let sleeper = &self.shared.sleepers.readers[self.index];
        sleeper.announce(self.shared.strategy);
        let caught_up = self.shared.tail.position.load(Ordering::Acquire) == self.cursor;
        if caught_up && !self.is_closed() {
            true
        } else {
            sleeper.retract();
            false
        }
    }

    /// The second half of the sleep protocol: lowers the sleeping flag.
    pub fn finish_sleep(&self) {
        self.shared.sleepers.readers[self.index].retract();
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        self.shared.cursors[self.index]
            .live
            .store(false, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.shared.sleepers.writer.notify(self.shared.strategy);
        }
    }
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("index", &self.index)
            .field("capacity", &self.shared.buffer.capacity())
            .field("strategy", &self.shared.strategy)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}
