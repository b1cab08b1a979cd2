//! The single-producer single-consumer ring: the I/O thread's commands to the
//! matching thread.
//!
//! One [`Producer`] and one [`Consumer`], each owned by one thread at a time.
//! Items are moved in and out (any `T: Send`); unconsumed items are dropped
//! with the ring.

use core::fmt;

use crossbeam_utils::CachePadded;

use super::buffer::Buffer;
use super::sync::{spin_hint, Arc, AtomicBool, AtomicU64, AtomicUsize, Backoff, Ordering};
use super::wait::{park, Installed, Sleeper, WaitResult, WaitStrategy, Wake};

/// Creates a ring of at least `capacity` slots (rounded up to a power of two)
/// with the default [`WaitStrategy::Adaptive`], and returns its two ends.
///
/// # Panics
///
/// If `capacity` is 0 or absurdly large (over `usize::MAX / 4`).
///
/// # Examples
///
/// ```
/// let (mut producer, mut consumer) = orderbook::ring::spsc::<u32>(2);
/// assert_eq!(producer.try_push(1), Ok(()));
/// assert_eq!(producer.try_push(2), Ok(()));
/// assert_eq!(producer.try_push(3), Err(3)); // full: the item comes back
/// assert_eq!(consumer.pop(), Some(1));
/// assert_eq!(consumer.pop(), Some(2));
/// assert_eq!(consumer.pop(), None); // empty
/// ```
pub fn spsc<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    spsc_with(capacity, WaitStrategy::default())
}

/// [`spsc`] with an explicit wait strategy for both ends.
///
/// # Panics
///
/// As for [`spsc`].
pub fn spsc_with<T: Send>(capacity: usize, strategy: WaitStrategy) -> (Producer<T>, Consumer<T>) {
    let strategy = strategy.effective();
    let shared = Arc::new(Shared {
        tail: CachePadded::new(ProducerLine {
            position: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            full_events: AtomicU64::new(0),
        }),
        head: CachePadded::new(ConsumerLine {
            position: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }),
        sleepers: CachePadded::new(Sleepers {
            consumer: Sleeper::new(),
            producer: Sleeper::new(),
        }),
        buffer: Buffer::with_capacity(capacity, strategy.spreads_items()),
        strategy,
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: 0,
        published: 0,
        cached_head: 0,
        full_events: 0,
        installed: Installed::Nothing,
    };
    let consumer = Consumer {
        shared,
        head: 0,
        cached_tail: 0,
        installed: Installed::Nothing,
    };
    (producer, consumer)
}

/// The producer's cache line: written by the producer on every publish.
struct ProducerLine {
    /// The tail cursor: every position below it holds a published item (from
    /// `head.position` up). Free-running, compared with wrapping arithmetic;
    /// `tail - head` is always in `0 ..= capacity`.
    ///
    /// Written only by the producer, with `Release`, after it wrote the slots
    /// it publishes. Read by the consumer with `Acquire` (so it sees those
    /// slot writes) when its cached copy says the ring is empty, and by the
    /// ring's `Drop`.
    position: AtomicUsize,
    /// The producer has closed (or was dropped): no item will follow the ones
    /// already published.
    ///
    /// Written once by the producer, with `Release`, after its last publish.
    /// Read by the consumer with `Acquire` when the ring is empty, so a
    /// consumer that sees `true` and then re-reads `position` sees the final
    /// tail.
    closed: AtomicBool,
    /// How many times the producer found the ring full (a measure of
    /// back-pressure). Written only by the producer (`Relaxed`, a counter
    /// nothing is ordered after); read by anyone for statistics.
    full_events: AtomicU64,
}

/// The consumer's cache line: written by the consumer on every pop or drain.
struct ConsumerLine {
    /// The head cursor: the next position to consume. Every position below it
    /// was consumed and its slot is free for the producer.
    ///
    /// Written only by the consumer, with `Release`, after it moved the items
    /// out of the slots it frees. Read by the producer with `Acquire` (so its
    /// next write of a slot comes after the consumer's read of it) when its
    /// cached copy says the ring is full, and by the ring's `Drop`.
    position: AtomicUsize,
    /// The consumer was dropped: nothing will be consumed any more.
    ///
    /// Written once by the consumer, with `Release`, in its `Drop`. Read by the
    /// producer with `Acquire` while it waits on a full ring, so a blocking
    /// `push` returns instead of waiting forever.
    closed: AtomicBool,
}

/// The two sides' sleep flags, on a line of their own that is read on every
/// publish but written only when a side goes to sleep.
struct Sleepers {
    /// The consumer's half of the sleep protocol: raised by the consumer when
    /// the ring is empty, checked by the producer after each publish (and at
    /// close).
    consumer: Sleeper,
    /// The producer's half: raised by the producer when the ring is full,
    /// checked by the consumer after each pop or drain (and at its drop).
    producer: Sleeper,
}

/// What both ends share.
struct Shared<T> {
    tail: CachePadded<ProducerLine>,
    head: CachePadded<ConsumerLine>,
    sleepers: CachePadded<Sleepers>,
    /// The slots. Positions `head .. tail` hold published, unconsumed items;
    /// positions `tail .. producer.tail` hold staged items the producer wrote
    /// but has not published; the rest are uninitialised.
    buffer: Buffer<T>,
    /// Fixed at construction; both ends follow it.
    strategy: WaitStrategy,
}

// SAFETY: the `Shared` of a ring is used by exactly one producer and one
// consumer. A slot is accessed by one of them at a time, handed over through
// the `Release` store / `Acquire` load of a cursor; the sleepers' waiter slots
// are written once before they are ever read (see `Sleeper`). Items move from
// the producer's thread to the consumer's, hence `T: Send`; no `&T` is ever
// shared between threads, so `T: Sync` is not needed.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone, so we have the buffer to ourselves; dropping the
        // last `Arc` synchronised with the other end's drop, so these loads
        // see both final cursors. The producer published its staged items
        // when it was dropped, so `head .. tail` is everything initialised.
        let head = self.head.position.load(Ordering::Relaxed);
        let tail = self.tail.position.load(Ordering::Relaxed);
        let mut position = head;
        while position != tail {
            // SAFETY: `head .. tail` holds initialised, unconsumed items and
            // nobody else can reach the buffer any more.
            unsafe { self.buffer.drop_in_place(position) };
            position = position.wrapping_add(1);
        }
    }
}

/// The writing end of an SPSC ring.
///
/// Owned by one thread at a time (it is `Send`); every method that changes the
/// ring takes `&mut self`. Dropping it (or [`close`](Self::close)) publishes
/// any staged items and ends the stream: the consumer's
/// [`wait`](Consumer::wait) returns [`WaitResult::Closed`] once it has
/// consumed everything.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The next position to write (published and staged items lie below it).
    tail: usize,
    /// The tail last stored in `shared.tail.position`; `published .. tail`
    /// are staged.
    published: usize,
    /// A copy of the consumer's head, possibly stale (behind): it is re-read
    /// only when it says the ring is full.
    cached_head: usize,
    /// Our count of full events, mirrored into `shared.tail.full_events`.
    full_events: u64,
    /// Whom the consumer wakes when this side sleeps in a blocking `push`.
    installed: Installed,
}

impl<T> Producer<T> {
    /// The ring's capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.buffer.capacity()
    }

    /// The wait strategy the ring was built with.
    pub fn strategy(&self) -> WaitStrategy {
        self.shared.strategy
    }

    /// How many more items fit right now, counting staged items as taken.
    /// A lower bound: the consumer may free more at any time.
    pub fn free_len(&self) -> usize {
        let head = self.shared.head.position.load(Ordering::Acquire);
        self.capacity() - self.tail.wrapping_sub(head)
    }

    /// How many items are staged but not yet published.
    pub fn staged_len(&self) -> usize {
        self.tail.wrapping_sub(self.published)
    }

    /// True if the consumer has been dropped: nothing pushed from now on will
    /// ever be consumed.
    pub fn is_abandoned(&self) -> bool {
        self.shared.head.closed.load(Ordering::Acquire)
    }

    /// How many times this producer found the ring full (a `try_push` or
    /// `stage` that failed, or a `push` that had to wait, counts once).
    pub fn full_events(&self) -> u64 {
        self.full_events
    }

    /// True if there is room for one more item, re-reading the consumer's
    /// cursor only when the cached copy says the ring is full.
    #[inline]
    fn has_room(&mut self) -> bool {
        let capacity = self.capacity();
        if self.tail.wrapping_sub(self.cached_head) < capacity {
            return true;
        }
        self.cached_head = self.shared.head.position.load(Ordering::Acquire);
        self.tail.wrapping_sub(self.cached_head) < capacity
    }

    #[cold]
    fn count_full_event(&mut self) {
        self.full_events += 1;
        self.shared
            .tail
            .full_events
            .store(self.full_events, Ordering::Relaxed);
    }

    /// Writes `item` into the ring without publishing it: the consumer sees
    /// it only after the next [`publish`](Self::publish) (or `try_push`,
    /// `push`, `close`, drop). Staging a batch and publishing it once costs
    /// one `Release` store (and, under `Adaptive`, one fence) for the batch.
    ///
    /// # Errors
    ///
    /// `Err(item)`, giving the item back, if the ring is full (staged items
    /// count). Nothing is published then: publish what is staged, and retry
    /// or `push`.
    #[inline]
    pub fn stage(&mut self, item: T) -> Result<(), T> {
        if !self.has_room() {
            self.count_full_event();
            return Err(item);
        }
        // SAFETY: `tail - head < capacity`, so the slot of `tail` is outside
        // `head .. tail`: the consumer has moved its previous item out and
        // released it with its `Release` store of `head`, which we read with
        // `Acquire` (now or earlier); it will not touch the slot again until
        // we publish past it.
        unsafe { self.shared.buffer.write(self.tail, item) };
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Publishes every staged item with one `Release` store of the tail, then
    /// (under `Adaptive`) wakes the consumer if it is asleep. Does nothing if
    /// nothing is staged.
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
            self.shared.sleepers.consumer.notify(self.shared.strategy);
        }
    }

    /// Pushes `item` and publishes it (with anything staged before it) at
    /// once.
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
    /// the ring is full: back-pressure, never a drop. Anything staged is
    /// published first, so the consumer can make room.
    ///
    /// # Errors
    ///
    /// `Err(item)` only if the consumer has been dropped while the ring was
    /// full: the item could never be consumed.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        let item = match self.stage(item) {
            Ok(()) => {
                self.publish();
                return Ok(());
            }
            Err(item) => item,
        };
        self.publish();
        self.wait_for_room();
        if self.has_room() {
            let staged = self.stage(item);
            debug_assert!(staged.is_ok(), "room was just seen");
            self.publish();
            staged
        } else {
            Err(item)
        }
    }

    /// Waits until there is room or the consumer is gone.
    #[cold]
    fn wait_for_room(&mut self) {
        let backoff = Backoff::new();
        loop {
            if self.has_room() || self.is_abandoned() {
                return;
            }
            match self.shared.strategy {
                WaitStrategy::Spin => spin_hint(),
                // The strategies that sleep: spin for a while first.
                _ if !backoff.is_completed() => backoff.snooze(),
                _ => {
                    let sleeper = &self.shared.sleepers.producer;
                    // SAFETY: `installed` is this producer's record for its
                    // own sleeper, and we hold `&mut self`.
                    unsafe { self.installed.ensure_thread(sleeper) };
                    sleeper.announce(self.shared.strategy);
                    // Re-check after raising the flag: either we see the
                    // consumer's progress here, or it sees our flag and
                    // unparks us.
                    let full = !self.has_room();
                    if full && !self.is_abandoned() {
                        park();
                    }
                    self.shared.sleepers.producer.retract();
                }
            }
        }
    }

    /// Closes the stream: publishes anything staged, and lets the consumer
    /// see end-of-stream after it drained the ring. The same as dropping the
    /// producer.
    pub fn close(self) {}
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.publish();
        self.shared.tail.closed.store(true, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.shared.sleepers.consumer.notify(self.shared.strategy);
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("strategy", &self.shared.strategy)
            .field("tail", &self.tail)
            .field("published", &self.published)
            .field("full_events", &self.full_events)
            .finish_non_exhaustive()
    }
}

/// The reading end of an SPSC ring.
///
/// Owned by one thread at a time (it is `Send`); every method that consumes
/// takes `&mut self`. Dropping it tells the producer that nothing will be
/// consumed any more (a blocked [`Producer::push`] returns `Err`); the items
/// left in the ring are dropped with the ring.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// The next position to consume; equal to `shared.head.position` between
    /// calls.
    head: usize,
    /// A copy of the producer's tail, possibly stale (behind): it is re-read
    /// only when it says the ring is empty (or holds fewer items than a
    /// `drain` asks for).
    cached_tail: usize,
    /// Whom the producer wakes when this side sleeps.
    installed: Installed,
}

impl<T> Consumer<T> {
    /// The ring's capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.buffer.capacity()
    }

    /// The wait strategy the ring was built with.
    pub fn strategy(&self) -> WaitStrategy {
        self.shared.strategy
    }

    /// How many published items are waiting to be consumed. A lower bound:
    /// the producer may publish more at any time.
    pub fn available(&self) -> usize {
        let tail = self.shared.tail.position.load(Ordering::Acquire);
        tail.wrapping_sub(self.head)
    }

    /// True if the producer has closed (or was dropped). Items it published
    /// before may still be waiting: end-of-stream is `is_closed() &&
    /// available() == 0` (checked in that order), or [`WaitResult::Closed`].
    pub fn is_closed(&self) -> bool {
        self.shared.tail.closed.load(Ordering::Acquire)
    }

    /// How many times the producer found the ring full.
    pub fn producer_full_events(&self) -> u64 {
        self.shared.tail.full_events.load(Ordering::Relaxed)
    }

    /// The number of items ready to consume, re-reading the producer's cursor
    /// only if the cached copy shows fewer than `wanted`.
    #[inline]
    fn ready(&mut self, wanted: usize) -> usize {
        let cached = self.cached_tail.wrapping_sub(self.head);
        if cached >= wanted {
            return cached;
        }
        self.cached_tail = self.shared.tail.position.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Releases the slots below `self.head` to the producer with one
    /// `Release` store, then (under `Adaptive`) wakes it if it is asleep.
    #[inline]
    fn release(&self) {
        self.shared
            .head
            .position
            .store(self.head, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.shared.sleepers.producer.notify(self.shared.strategy);
        }
    }

    /// Takes the oldest item, or `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.ready(1) == 0 {
            return None;
        }
        // SAFETY: `head < tail` (tail read with `Acquire`), so the slot holds
        // an item the producer published to us; only we take items, and we
        // move `head` past it before anyone could read the slot again.
        let item = unsafe { self.shared.buffer.take(self.head) };
        self.head = self.head.wrapping_add(1);
        self.release();
        Some(item)
    }

    /// Consumes every available item, up to `max`, in order, handing each to
    /// `f`; frees their slots with one `Release` store at the end. Returns how
    /// many were consumed (0 if the ring is empty or `max` is 0).
    ///
    /// If `f` panics, the items it was already given stay consumed, the rest
    /// stay in the ring.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        if max == 0 {
            return 0;
        }
        let count = self.ready(max).min(max);
        if count == 0 {
            return 0;
        }
        let start = self.head;
        let guard = ReleaseOnDrop {
            consumer: self,
            start,
        };
        for _ in 0..count {
            let position = guard.consumer.head;
            // SAFETY: `position < tail` (count <= tail - head), so the slot
            // holds a published item; only we take items, and the guard moves
            // `head` past it (and stores it) even if `f` panics.
            let item = unsafe { guard.consumer.shared.buffer.take(position) };
            guard.consumer.head = position.wrapping_add(1);
            f(item);
        }
        count
    }

    /// Blocks until at least one item is available, returning how many, or
    /// until the producer has closed and every item has been consumed.
    ///
    /// Waits with the ring's strategy. Under `Adaptive` the first blocking
    /// wait installs the calling thread as the one to unpark, unless a waker
    /// was given with [`set_waker`](Self::set_waker); call `wait` from one
    /// thread (the thread that owns the consumer).
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
                // The producer published its last items before raising
                // `closed`, and we read `closed` with `Acquire`: one more look
                // at the tail sees them all.
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
                    // SAFETY: `installed` is this consumer's record for its
                    // own sleeper, and we hold `&mut self`.
                    unsafe { self.installed.ensure_thread(&self.shared.sleepers.consumer) };
                    if self.prepare_sleep() {
                        park();
                    }
                    self.finish_sleep();
                }
            }
        }
    }

    /// Installs the waker the producer calls when this consumer sleeps,
    /// instead of unparking the thread that first calls `wait`. For a thread
    /// that sleeps somewhere else (a mio loop blocked in `Poll::poll`, with a
    /// `Wake` that calls its `mio::Waker`), together with
    /// [`prepare_sleep`](Self::prepare_sleep) and
    /// [`finish_sleep`](Self::finish_sleep).
    ///
    /// # Panics
    ///
    /// If a waker is already installed: `set_waker` may be called once, before
    /// the first `wait` or `prepare_sleep`.
    pub fn set_waker(&mut self, waker: std::sync::Arc<dyn Wake>) {
        // SAFETY: `installed` is this consumer's record for its own sleeper,
        // and we hold `&mut self`.
        unsafe {
            self.installed
                .external(&self.shared.sleepers.consumer, waker)
        };
    }

    /// The first half of the sleep protocol for an external sleeper: raises
    /// this consumer's sleeping flag, then re-checks the ring. Returns `true`
    /// only if the ring is still empty and open, so it is safe to block:
    /// every publish from now on calls the waker. After blocking, call
    /// [`finish_sleep`](Self::finish_sleep) before consuming.
    ///
    /// Returns `false` (with the flag already lowered) if items are available
    /// or the stream is closed, and always under [`WaitStrategy::Spin`], where
    /// the producer never checks the flag (poll instead).
    ///
    /// ```text
    /// loop {
    ///     consumer.drain(usize::MAX, handle);
    ///     if consumer.prepare_sleep() {
    ///         poll.poll(&mut events, None)?; // the waker wakes this
    ///         consumer.finish_sleep();
    ///     }
    ///     // ... also serve the sockets the poll reported ...
    /// }
    /// ```
    ///
    /// # Panics
    ///
    /// If no waker is installed (no `set_waker` and no earlier blocking
    /// `wait`): nobody could wake the sleeper.
    pub fn prepare_sleep(&self) -> bool {
        assert!(
            self.installed != Installed::Nothing,
            "prepare_sleep needs a waker: call set_waker first"
        );
        if !self.shared.strategy.may_sleep() {
            return false;
        }
        let sleeper = &self.shared.sleepers.consumer;
        sleeper.announce(self.shared.strategy);
        let empty = self.shared.tail.position.load(Ordering::Acquire) == self.head;
        if empty && !self.is_closed() {
            true
        } else {
            sleeper.retract();
            false
        }
    }

    /// The second half of the sleep protocol: lowers the sleeping flag after
    /// waking, so that the producer stops calling the waker.
    pub fn finish_sleep(&self) {
        self.shared.sleepers.consumer.retract();
    }
}

/// Stores the consumer's progress when a `drain` ends, even by a panic in
/// its callback, so that a moved-out item is never dropped again.
struct ReleaseOnDrop<'a, T> {
    consumer: &'a mut Consumer<T>,
    start: usize,
}

impl<T> Drop for ReleaseOnDrop<'_, T> {
    fn drop(&mut self) {
        if self.consumer.head != self.start {
            self.consumer.release();
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.shared.head.closed.store(true, Ordering::Release);
        if self.shared.strategy.may_sleep() {
            self.shared.sleepers.producer.notify(self.shared.strategy);
        }
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("strategy", &self.shared.strategy)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}
