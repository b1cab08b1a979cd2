//! The engine's steady state allocates nothing: once the book and the
//! finished-order history are warm, a long stream of places, crosses,
//! modifies and cancels makes no heap allocation at all. Counted by a
//! global allocator that tallies allocations made on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, EventSink, OrderBook, Side, TimeInForce,
};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only addition is a thread-local counter, which itself never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A fixed-seed xorshift.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Applies commands one at a time (`apply`), or in batches of up to
/// `BATCH` (`apply_batch`, as the matching thread does).
struct Applier {
    batched: bool,
    pending: Vec<Command>,
}

const BATCH: usize = 64;

impl Applier {
    fn new(batched: bool) -> Self {
        Applier {
            batched,
            pending: Vec::with_capacity(BATCH),
        }
    }

    fn apply(&mut self, book: &mut OrderBook, command: Command, events: &mut Vec<Event>) {
        if !self.batched {
            events.clear();
            book.apply(&command, events);
            return;
        }
        self.pending.push(command);
        if self.pending.len() == BATCH {
            book.apply_batch(&self.pending, events, |_, events| events.clear());
            self.pending.clear();
        }
    }
}

/// Places around a mid price (some crossing), modifies and cancels, over a
/// book of at most `recent.len()` resting orders.
fn run(
    book: &mut OrderBook,
    applier: &mut Applier,
    rng: &mut Rng,
    next_id: &mut u128,
    recent: &mut [u128],
    count: usize,
    events: &mut Vec<Event>,
) {
    for i in 0..count {
        let pick = rng.below(100);
        let slot = rng.below(recent.len() as u64) as usize;
        let kind = if pick < 50 {
            // The slot's previous order leaves first, so at most
            // `recent.len()` orders rest: a steady depth, not a growing book.
            applier.apply(
                book,
                Command {
                    ts: i as u64,
                    kind: CommandKind::Cancel { id: recent[slot] },
                },
                events,
            );
            *next_id += 1;
            recent[slot] = *next_id;
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let offset = rng.below(40);
            let price = match side {
                Side::Buy => 960 + offset,
                Side::Sell => 1_001 + offset - u64::from(pick < 5) * 10,
            };
            CommandKind::Place {
                id: *next_id,
                side,
                price,
                quantity: 1 + rng.below(20),
                // Every time in force: orders cancelled at once or refused
                // must allocate nothing either. The crossing places try
                // IOC and FOK; the others are post-only now and then (so
                // the book keeps its depth).
                tif: if pick < 5 {
                    [
                        TimeInForce::GoodTillCancel,
                        TimeInForce::ImmediateOrCancel,
                        TimeInForce::FillOrKill,
                    ][rng.below(3) as usize]
                } else if rng.below(4) == 0 {
                    TimeInForce::PostOnly
                } else {
                    TimeInForce::GoodTillCancel
                },
            }
        } else if pick < 80 {
            CommandKind::Cancel { id: recent[slot] }
        } else {
            CommandKind::Modify {
                id: recent[slot],
                price: None,
                quantity: Some(1 + rng.below(30)),
            }
        };
        applier.apply(book, Command { ts: i as u64, kind }, events);
    }
}

/// An event sink that hands each event to a closure.
struct FnSink<'a, F: FnMut(Event)>(&'a mut F);

impl<F: FnMut(Event)> EventSink for FnSink<'_, F> {
    fn emit(&mut self, event: Event) {
        (self.0)(event);
    }
}

/// Warms a book of up to `depth` resting orders with a full history, then
/// counts the heap allocations of 200,000 more commands and of a cancel-all
/// of what then rests.
fn steady_state_allocations(depth: usize, batched: bool) -> u64 {
    let mut book = OrderBook::new(BookConfig {
        order_capacity: 1 << 15,
        level_capacity: 256,
        finished_capacity: 50_000,
        resident: false,
        sparse_index: false,
    });
    let mut applier = Applier::new(batched);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut next_id = 0u128;
    let mut recent = vec![0u128; depth];
    let mut events = Vec::with_capacity(4_096);

    // Warm up: fill the history ring and open every level the stream uses.
    run(
        &mut book,
        &mut applier,
        &mut rng,
        &mut next_id,
        &mut recent,
        300_000,
        &mut events,
    );
    assert_eq!(
        book.finished_count(),
        50_000,
        "the history is full, so it now overwrites"
    );

    COUNTING.with(|c| c.set(true));
    run(
        &mut book,
        &mut applier,
        &mut rng,
        &mut next_id,
        &mut recent,
        200_000,
        &mut events,
    );
    // Then every resting order cancelled by one command, into a sink that
    // only counts (a `Vec` of its events would allocate, not the book).
    let resting = book.resting_count();
    let mut outcome = None;
    let mut sink = |event: Event| {
        if event.is_outcome() {
            outcome = Some(event);
        }
    };
    book.apply(
        &Command {
            ts: u64::MAX / 2,
            kind: CommandKind::CancelAll { side: None },
        },
        &mut FnSink(&mut sink),
    );
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        outcome,
        Some(Event::CancelledAll {
            count: resting as u64
        })
    );
    assert_eq!(book.resting_count(), 0);
    assert!(book.last_trade_id() > 1_000, "the stream trades");
    if batched {
        assert!(
            resting > 1 << 14,
            "the book was past the lookahead threshold: {resting}"
        );
    }
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_warm_book_applies_commands_without_allocating() {
    assert_eq!(
        steady_state_allocations(2_000, false),
        0,
        "heap allocations in the steady state"
    );
}

#[test]
fn a_warm_book_applies_batches_without_allocating() {
    assert_eq!(
        steady_state_allocations(40_000, true),
        0,
        "heap allocations in the steady state"
    );
}
