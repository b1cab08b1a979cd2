//! The order book: resting orders in price levels, each level a FIFO queue
//! linked through the orders' slots, and the matching rules of SPEC §1.
//!
//! Layout: orders live in an [`Arena`] of one-cache-line slots and are
//! found by id through an [`IdIndex`] of slot indices (the id itself is
//! read from the slot, so the table costs 8 bytes an entry with its tag).
//! Each side keeps its levels sorted worst to best in a `Vec`, so the best
//! level is the last element and new levels, which mostly open near the
//! touch, move few elements. A finished order leaves its slot at once (the
//! next order reuses it while it is warm in cache) for a bounded history
//! ring written in sequence; the id index then points into the ring until
//! the ring's oldest entry is overwritten.

use hashbrown::HashMap;

use super::arena::{bytes, Arena, NIL};
use super::hash::{fold, order_id_hash, FoldBuildHasher};
use super::index::{IdIndex, Probe, DENSE, SPARSE};
use super::prefetch::prefetch;
use super::types::{
    Command, CommandKind, Event, EventSink, LevelView, OrderId, OrderStatus, OrderView, Qty,
    RejectReason, Side, Ticks, TimeInForce, Timestamp, Trade, MARKET,
};

/// Sizes the book is prepared for; exceeding them allocates more, it never
/// refuses an order.
#[derive(Clone, Copy, Debug)]
pub struct BookConfig {
    /// Resting orders to pre-size for.
    pub order_capacity: usize,
    /// Distinct price levels per side to pre-size for.
    pub level_capacity: usize,
    /// Finished (filled or cancelled) orders kept fetchable by id; the
    /// oldest is forgotten first. 0 keeps none.
    pub finished_capacity: usize,
    /// Make the order slots and the id index for `order_capacity` resident
    /// when the book is built, on transparent huge pages where the kernel
    /// has them: a big book's random accesses then miss the TLB far less
    /// (mix at 1M resting about 20% faster), and no page is faulted in
    /// while matching. The price: that memory (for 2^20 orders about 96
    /// MiB, 128 with `sparse_index`) is taken at once instead of as the
    /// book grows. The matching thread's book uses it.
    pub resident: bool,
    /// Keep the id index (and the price → level map) at most a quarter
    /// full instead of half: shorter probe runs, so lookups, inserts and
    /// removals are faster (the mix in `benches/engine.rs` 6-27% faster
    /// at 1k, 100k and 1M resting), for twice the index's memory (32
    /// instead of 16 MiB per reserved buffer at 2^20 orders). The matching
    /// thread's book uses it; the replica, which also keeps the
    /// finished-order history, does not.
    pub sparse_index: bool,
}

impl BookConfig {
    /// The bytes of memory a book built with these sizes reserves at once
    /// (its pages taken only as they are touched, unless `resident`): the
    /// service checks the machine can give them before it builds one,
    /// since a reservation that fails aborts the process.
    pub fn reserved_bytes(&self) -> u64 {
        let spread = if self.sparse_index { SPARSE } else { DENSE };
        let ladder = bytes(
            2 * self.level_capacity + SWEEP_SLACK,
            size_of::<(Ticks, u32)>(),
        ) + IdIndex::reserved_bytes(self.level_capacity, spread);
        Arena::<Order>::reserved_bytes(self.order_capacity)
            + Arena::<Level>::reserved_bytes(2 * (2 * self.level_capacity + SWEEP_SLACK))
            + IdIndex::reserved_bytes(self.order_capacity + self.finished_capacity, spread)
            + 2 * ladder
            + bytes(self.finished_capacity, size_of::<OrderView>())
    }
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            order_capacity: 1 << 16,
            level_capacity: 1 << 12,
            finished_capacity: 1_000_000,
            resident: false,
            sparse_index: false,
        }
    }
}

/// One order's slot: exactly one cache line, aligned, so a cancel or a
/// fill touches one line per order (an 80-byte slot straddled two).
/// `prev`/`next` link it into its level's queue while it rests; they are
/// `NIL` otherwise.
#[repr(align(64))]
struct Order {
    id: OrderId,
    price: Ticks,
    quantity: Qty,
    filled: Qty,
    /// The low 64 bits of the fills' notional. The full sum needs 128 bits
    /// only for absurd price × quantity; those high bits live in
    /// `OrderBook::wide_notional`, which the hot path never touches.
    notional_low: u64,
    prev: u32,
    next: u32,
    level: u32,
    side: Side,
    status: OrderStatus,
    /// True when `wide_notional` holds high bits for this slot.
    wide: bool,
}

const _: () = assert!(std::mem::size_of::<Order>() == 64);

impl Order {
    #[inline]
    fn remaining(&self) -> Qty {
        self.quantity - self.filled
    }
}

/// One price level: a FIFO queue of resting orders, oldest at `head`.
struct Level {
    price: Ticks,
    total: Qty,
    orders: u32,
    head: u32,
    tail: u32,
}

/// The limit a market order on `side` trades within: the far end of the
/// price range, which every level meets.
fn market_limit(side: Side) -> Ticks {
    match side {
        Side::Buy => Ticks::MAX,
        Side::Sell => 0,
    }
}

/// Whether a taker on `side` with `limit` meets a maker level at `level`.
#[inline]
fn crosses(side: Side, limit: Ticks, level: Ticks) -> bool {
    match side {
        Side::Buy => level <= limit,
        Side::Sell => level >= limit,
    }
}

/// One side's levels: sorted worst to best so the best is last, plus a map
/// from price to level slot.
struct Ladder {
    side: Side,
    /// `(price, level slot)` worst to best. A level that empties away from
    /// the touch stays here and in `by_price`, empty, so that the price
    /// reopening, as prices in a busy band do all the time, costs no ladder
    /// work at all: removing and inserting mid-vector moved hundreds of
    /// entries, and searched for the position, on most commands of a thin
    /// book. The last entry is never an empty level. Empty levels are swept
    /// once they outnumber the rest.
    sorted: Vec<(Ticks, u32)>,
    /// Empty levels kept in `sorted`.
    empty: usize,
    /// Level slot by price. Levels open and close all the time in a thin
    /// book; this table deletes without tombstones, so that churn never
    /// forces a rehash (hashbrown's map did, under level churn).
    by_price: IdIndex,
}

impl Ladder {
    fn new(side: Side, capacity: usize, spread: usize) -> Self {
        Ladder {
            side,
            // Room for the empty levels a sweep allows beside `capacity`.
            sorted: Vec::with_capacity(2 * capacity + SWEEP_SLACK),
            empty: 0,
            by_price: IdIndex::with_capacity(capacity, spread),
        }
    }

    /// True when `a` is a better price than `b` for this side.
    #[inline]
    fn better(&self, a: Ticks, b: Ticks) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    #[inline]
    fn best(&self) -> Option<(Ticks, u32)> {
        self.sorted.last().copied()
    }

    /// Index just past the entries not better than `price` (so an entry of
    /// `price` itself sits at the index before), searched from the best end
    /// since activity clusters at the touch.
    #[inline]
    fn position(&self, price: Ticks) -> usize {
        let mut i = self.sorted.len();
        // A short linear walk covers the common case; fall back to binary search.
        let mut steps = 0;
        while i > 0 && self.better(self.sorted[i - 1].0, price) {
            i -= 1;
            steps += 1;
            if steps == 8 {
                let side = self.side;
                return self.sorted[..i].partition_point(|&(p, _)| match side {
                    Side::Buy => p <= price,
                    Side::Sell => p >= price,
                });
            }
        }
        i
    }

    /// Adds a level at a price the ladder does not have.
    fn insert(&mut self, price: Ticks, level: u32) {
        let at = self.position(price);
        debug_assert!(at == 0 || self.sorted[at - 1].0 != price);
        self.sorted.insert(at, (price, level));
        self.by_price.insert_new(fold(price), level);
    }

    /// Drops `level` from the price table (the caller drops its entry).
    fn forget(by_price: &mut IdIndex, price: Ticks, level: u32) {
        let at = by_price
            .find_value(fold(price), level)
            .expect("a ladder's level is in its price table");
        by_price.remove_at(at);
    }
}

/// Empty levels a ladder keeps at least before sweeping them.
const SWEEP_SLACK: usize = 64;

/// Commands between the stages of [`OrderBook::apply_batch`]'s lookahead:
/// far enough for a load to arrive before the next stage needs it, near
/// enough that the book has not moved on. On the 2026-11-30 machine
/// (a 4 MiB L2, random DRAM loads ~160-190 ns apart when dependent) 4 beat
/// 2 in all of 4 alternating runs of the mix (`benches/engine.rs`): median
/// 71.7 against 79.6 ns/op at 100k resting, 139.5 against 145.7 at 1M;
/// 3 and 6 were no better than 4. (An earlier machine with a 1 MiB L2 saw
/// 1 slower than 2, and 3, 4, 8 no faster within its noise.)
const LOOKAHEAD: usize = 4;

/// What `apply_batch`'s lookahead found a command will touch first.
#[derive(Clone, Copy)]
enum Touched {
    Nothing,
    /// The order a cancel or modify acts on.
    Order(u32),
    /// The tail of the level a resting place joins (it links behind it).
    Tail(u32),
    /// The oldest maker of the level a crossing place trades with first.
    Maker(u32),
}

/// Resting orders below which the book gives no prefetch hints (neither
/// `apply_batch`'s lookahead nor a crossing place's walk of its makers):
/// 16k slots are 1 MiB, the size of this machine's L2, where the hints
/// only cost time (the mix at 1k resting: 91 → 120 ns/op with them).
const LOOKAHEAD_MIN_ORDERS: usize = 1 << 14;

/// Index values with this bit set are history positions, not order slots.
const IN_HISTORY: u32 = 1 << 31;

/// The bounded history of finished orders: a ring, oldest overwritten first.
struct History {
    entries: Vec<OrderView>,
    /// Where the next entry goes once the ring is full (the oldest entry).
    oldest: usize,
    capacity: usize,
}

impl History {
    fn new(capacity: usize) -> Self {
        // Positions stay below `IN_HISTORY - 1`, so an index value is never
        // `u32::MAX - 1` (`IN_HISTORY | (IN_HISTORY - 2)` at most), which
        // the index reserves for its tombstones.
        assert!(
            capacity < (IN_HISTORY - 1) as usize,
            "finished-order history too large"
        );
        History {
            // Reserved up front; pages are touched only as the ring fills.
            entries: Vec::with_capacity(capacity),
            oldest: 0,
            capacity,
        }
    }

    /// Stores `order`, returning its position and the entry it displaced.
    #[inline]
    fn push(&mut self, order: OrderView) -> (u32, Option<OrderView>) {
        if self.entries.len() < self.capacity {
            self.entries.push(order);
            return ((self.entries.len() - 1) as u32, None);
        }
        let position = self.oldest;
        let evicted = std::mem::replace(&mut self.entries[position], order);
        self.oldest = (position + 1) % self.capacity;
        (position as u32, Some(evicted))
    }
}

/// The id of the order an index value names.
#[inline]
fn id_of(orders: &Arena<Order>, history: &History, value: u32) -> OrderId {
    if value & IN_HISTORY != 0 {
        history.entries[(value & !IN_HISTORY) as usize].id
    } else {
        orders.get(value).id
    }
}

/// A single instrument's limit order book with price-time priority.
pub struct OrderBook {
    orders: Arena<Order>,
    levels: Arena<Level>,
    /// Every known order by id: an arena slot while it rests (or is being
    /// matched), `IN_HISTORY | position` once finished.
    index: IdIndex,
    ladders: [Ladder; 2],
    history: History,
    /// The high 64 bits of an order's notional, by slot, for the orders
    /// whose `wide` is set; empty (never allocated) in any realistic run.
    wide_notional: HashMap<u32, u64, FoldBuildHasher>,
    /// The last trade id handed out.
    last_trade_id: u64,
    /// With [`log_evictions`](OrderBook::log_evictions): the ids of the
    /// finished orders the book stopped knowing, not yet taken.
    evicted: Option<Vec<OrderId>>,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new(BookConfig::default())
    }
}

impl OrderBook {
    /// An empty book pre-sized by `config`.
    pub fn new(config: BookConfig) -> Self {
        let spread = if config.sparse_index { SPARSE } else { DENSE };
        let mut book = OrderBook {
            orders: Arena::with_capacity(config.order_capacity),
            // Both sides' levels, and the empty ones the ladders keep.
            levels: Arena::with_capacity(2 * (2 * config.level_capacity + SWEEP_SLACK)),
            index: IdIndex::with_capacity(config.order_capacity + config.finished_capacity, spread),
            ladders: [
                Ladder::new(Side::Buy, config.level_capacity, spread),
                Ladder::new(Side::Sell, config.level_capacity, spread),
            ],
            history: History::new(config.finished_capacity),
            wide_notional: HashMap::with_hasher(FoldBuildHasher),
            last_trade_id: 0,
            evicted: None,
        };
        if config.resident {
            book.orders.make_resident();
            book.index.make_resident();
        }
        book
    }

    /// The bytes this book's buffers have room for (what
    /// [`BookConfig::reserved_bytes`] foretells, until the book outgrows
    /// its sizes): the test of that foretelling.
    #[cfg(test)]
    fn capacity_bytes(&self) -> u64 {
        let ladders: u64 = (self.ladders.iter())
            .map(|l| {
                bytes(l.sorted.capacity(), size_of::<(Ticks, u32)>()) + l.by_price.capacity_bytes()
            })
            .sum();
        self.orders.capacity_bytes()
            + self.levels.capacity_bytes()
            + self.index.capacity_bytes()
            + ladders
            + bytes(self.history.entries.capacity(), size_of::<OrderView>())
    }

    /// Applies one command, writing its trades, level changes and finally
    /// its outcome to `out`.
    pub fn apply<S: EventSink>(&mut self, command: &Command, out: &mut S) {
        match command.kind {
            CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif,
            } => self.place(id, side, price, quantity, tif, command.ts, out),
            CommandKind::Modify {
                id,
                price,
                quantity,
            } => self.modify(id, price, quantity, command.ts, out),
            CommandKind::Cancel { id } => self.cancel(id, out),
            CommandKind::CancelAll { side } => self.cancel_all(side, out),
        }
    }

    /// Applies `commands` in order, exactly as [`OrderBook::apply`] on each
    /// in turn would, calling `before(command, out)` ahead of each
    /// command's events.
    ///
    /// On a book larger than the caches, most of a command's time is spent
    /// waiting for memory: the index bucket of its id, then the order slot
    /// it names, then that order's queue neighbours, each load needing the
    /// one before. So while it applies command `i`, this starts those loads
    /// for the commands behind it: the buckets of `i + 3 * LOOKAHEAD`, the
    /// slots of `i + 2 * LOOKAHEAD`, the neighbours of `i + LOOKAHEAD`.
    /// A place at `i + 2 * LOOKAHEAD` also gets the freed slot it will be
    /// given, counting the places before it (a slot freed long ago is as
    /// cold as any other). The loads of several commands then overlap
    /// instead of queueing.
    /// The hints are read from the book as it stands, so an earlier command
    /// of the batch may make one stale; a stale hint wastes a fetch and
    /// changes nothing else. A book small enough to stay in cache skips
    /// the hints, which would only cost it time.
    pub fn apply_batch<S: EventSink>(
        &mut self,
        commands: &[Command],
        out: &mut S,
        mut before: impl FnMut(&Command, &mut S),
    ) {
        if self.orders.len() < LOOKAHEAD_MIN_ORDERS {
            for command in commands {
                before(command, out);
                self.apply(command, out);
            }
            return;
        }
        // Stage two's findings, kept for stage three `LOOKAHEAD` commands
        // later, by command position modulo the array's length.
        let mut touched = [Touched::Nothing; 2 * LOOKAHEAD];
        // Places among commands `i .. i + 2 * LOOKAHEAD`: each takes a
        // freed slot before the place at `i + 2 * LOOKAHEAD` does (frees
        // in between make the guess stale, which costs one wasted fetch).
        let mut places_before = commands
            .iter()
            .take(2 * LOOKAHEAD)
            .filter(|c| c.kind.is_place())
            .count();
        for (i, command) in commands.iter().enumerate() {
            if let Some(later) = commands.get(i + 3 * LOOKAHEAD) {
                self.prefetch_index(later);
            }
            if let Some(later) = commands.get(i + 2 * LOOKAHEAD) {
                touched[(i + 2 * LOOKAHEAD) % touched.len()] = self.prefetch_orders(later);
                if later.kind.is_place() {
                    self.prefetch_free_slot(places_before);
                    places_before += 1;
                }
            }
            places_before -= command.kind.is_place() as usize;
            if i + LOOKAHEAD < commands.len() {
                let at = (i + LOOKAHEAD) % touched.len();
                self.prefetch_neighbours(std::mem::replace(&mut touched[at], Touched::Nothing));
            }
            before(command, out);
            self.apply(command, out);
        }
    }

    /// Lookahead, stage one: starts fetching the index bucket of the
    /// command's order id.
    #[inline]
    fn prefetch_index(&self, command: &Command) {
        if let Some(id) = command.kind.id() {
            self.index.prefetch_home(order_id_hash(id));
        }
    }

    /// Lookahead, stage two, once stage one's bucket has arrived: starts
    /// fetching the order slot a cancel or modify acts on, or the slot a
    /// resting place links behind (its level's tail), or the maker a
    /// crossing place meets first. Returns that slot for stage three.
    #[inline]
    fn prefetch_orders(&self, command: &Command) -> Touched {
        let touched = match command.kind {
            CommandKind::Place { side, price, .. } => self.first_touched(side, price),
            CommandKind::Modify { id, .. } | CommandKind::Cancel { id } => self
                .index
                .peek(order_id_hash(id))
                .filter(|value| value & IN_HISTORY == 0)
                .map_or(Touched::Nothing, Touched::Order),
            CommandKind::CancelAll { .. } => Touched::Nothing,
        };
        if let Touched::Order(slot) | Touched::Tail(slot) | Touched::Maker(slot) = touched {
            if let Some(order) = self.orders.try_get(slot) {
                prefetch(order);
            }
        }
        touched
    }

    /// Lookahead, with stage two: starts fetching the freed slot a place
    /// will be given after `places_before` other places have taken theirs.
    #[inline]
    fn prefetch_free_slot(&self, places_before: usize) {
        if let Some(order) = self
            .orders
            .next_free(places_before)
            .and_then(|slot| self.orders.try_get(slot))
        {
            prefetch(order);
        }
    }

    /// Lookahead, stage three, once stage two's slot has arrived: starts
    /// fetching a cancelled or modified order's queue neighbours, or the
    /// index bucket of the maker a crossing place meets first (a filled
    /// maker leaves the index) and the maker behind it.
    #[inline]
    fn prefetch_neighbours(&self, touched: Touched) {
        match touched {
            Touched::Nothing | Touched::Tail(_) => {}
            Touched::Order(slot) => {
                if let Some(order) = self.orders.try_get(slot) {
                    for neighbour in [order.prev, order.next] {
                        if let Some(neighbour) = self.orders.try_get(neighbour) {
                            prefetch(neighbour);
                        }
                    }
                }
            }
            Touched::Maker(slot) => {
                if let Some(maker) = self.orders.try_get(slot) {
                    self.index.prefetch_home(order_id_hash(maker.id));
                    if let Some(next) = self.orders.try_get(maker.next) {
                        prefetch(next);
                    }
                }
            }
        }
    }

    /// While the maker in `slot` trades, starts fetching what the walk
    /// needs next if this one fills: the index bucket of the maker behind
    /// it (its slot fetched one step earlier, or by `apply_batch`), which
    /// leaves the index when it fills in turn, and the slot of the maker
    /// behind that one.
    #[inline]
    fn prefetch_behind(&self, slot: u32) {
        let next = self.orders.get(slot).next;
        if let Some(behind) = self.orders.try_get(next) {
            self.index.prefetch_home(order_id_hash(behind.id));
            if let Some(further) = self.orders.try_get(behind.next) {
                prefetch(further);
            }
        }
    }

    /// The slot a place at `price` on `side` touches first as things
    /// stand: the opposite best level's oldest maker if it crosses, else
    /// the tail of its own level (`NIL` if that level is empty).
    #[inline]
    fn first_touched(&self, side: Side, price: Ticks) -> Touched {
        if let Some((best, level)) = self.ladders[side.opposite().index()].best() {
            // A market buy (price 0) is not seen to cross: a lost hint for
            // a rare order, kept off the path of every other.
            let crosses = match side {
                Side::Buy => best <= price,
                Side::Sell => best >= price,
            };
            if crosses {
                return self
                    .levels
                    .try_get(level)
                    .map_or(Touched::Nothing, |level| Touched::Maker(level.head));
            }
        }
        let levels = &self.levels;
        let ladder = &self.ladders[side.index()];
        ladder
            .by_price
            .find(fold(price), |v| {
                levels.try_get(v).is_some_and(|l| l.price == price)
            })
            .and_then(|at| levels.try_get(ladder.by_price.get(at)))
            .map_or(Touched::Nothing, |level| Touched::Tail(level.tail))
    }

    #[allow(clippy::too_many_arguments)]
    fn place<S: EventSink>(
        &mut self,
        id: OrderId,
        side: Side,
        price: Ticks,
        quantity: Qty,
        tif: TimeInForce,
        ts: Timestamp,
        out: &mut S,
    ) {
        if price == MARKET {
            self.place_market(id, side, quantity, tif, ts, out);
        } else {
            self.place_within(id, side, price, price, quantity, tif, ts, out);
        }
    }

    /// A market order's place, apart: handled inline, its checks cost
    /// every limit order 7 to 11 instructions (callgrind).
    #[cold]
    #[inline(never)]
    fn place_market<S: EventSink>(
        &mut self,
        id: OrderId,
        side: Side,
        quantity: Qty,
        tif: TimeInForce,
        ts: Timestamp,
        out: &mut S,
    ) {
        if matches!(tif, TimeInForce::GoodTillCancel | TimeInForce::PostOnly) {
            out.emit(Event::Rejected {
                id,
                reason: RejectReason::ZeroPrice,
            });
            return;
        }
        let limit = market_limit(side);
        self.place_within(id, side, MARKET, limit, quantity, tif, ts, out);
    }

    /// Places an order at `price` that trades within `limit` (its price,
    /// or a market order's [`market_limit`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn place_within<S: EventSink>(
        &mut self,
        id: OrderId,
        side: Side,
        price: Ticks,
        limit: Ticks,
        quantity: Qty,
        tif: TimeInForce,
        ts: Timestamp,
        out: &mut S,
    ) {
        let reject = if quantity == 0 {
            Some(RejectReason::ZeroQuantity)
        } else {
            None
        };
        if let Some(reason) = reject {
            out.emit(Event::Rejected { id, reason });
            return;
        }
        let hash = order_id_hash(id);
        let vacant = match self.probe(hash, id) {
            Probe::Found(_) => {
                out.emit(Event::Rejected {
                    id,
                    reason: RejectReason::DuplicateId,
                });
                return;
            }
            Probe::Vacant(at) => at,
        };
        if tif == TimeInForce::PostOnly && self.would_trade(side, price) {
            out.emit(Event::Rejected {
                id,
                reason: RejectReason::WouldTake,
            });
            return;
        }
        let trades_before = self.last_trade_id;
        let slot = self.orders.insert(Order {
            id,
            notional_low: 0,
            price,
            quantity,
            filled: 0,
            prev: NIL,
            next: NIL,
            level: NIL,
            side,
            status: OrderStatus::Open,
            wide: false,
        });
        let rests = if tif == TimeInForce::FillOrKill && !self.fillable(side, limit, quantity) {
            // Killed whole: it never trades, so it touches no level.
            self.orders.get_mut(slot).status = OrderStatus::Cancelled;
            false
        } else {
            let may_rest = matches!(tif, TimeInForce::GoodTillCancel | TimeInForce::PostOnly);
            self.take_and_rest(slot, limit, ts, may_rest, out)
        };
        let view = self.view(slot);
        if rests {
            // The vacant bucket is still right unless a filled maker left
            // the index meanwhile (a removal may shift entries).
            if self.last_trade_id == trades_before {
                self.index.insert_at(vacant, hash, slot);
            } else {
                self.index.insert_new(hash, slot);
            }
        } else {
            // Filled (or, by its time in force, cancelled) at once: it only
            // ever needs an index entry as history.
            if let Some(value) = self.remember(view) {
                self.index.insert_new(hash, value);
            }
            self.free(slot);
        }
        out.emit(Event::Accepted(view));
    }

    fn modify<S: EventSink>(
        &mut self,
        id: OrderId,
        new_price: Option<Ticks>,
        new_quantity: Option<Qty>,
        ts: Timestamp,
        out: &mut S,
    ) {
        let Some((_, slot)) = self.find_resting(id) else {
            out.emit(Event::Rejected {
                id,
                reason: RejectReason::NotResting,
            });
            return;
        };
        let (side, old_price, old_quantity, filled, level_slot) = {
            let order = self.orders.get(slot);
            (
                order.side,
                order.price,
                order.quantity,
                order.filled,
                order.level,
            )
        };
        let price = new_price.unwrap_or(old_price);
        let quantity = new_quantity.unwrap_or(old_quantity);
        let reject = if price == 0 {
            Some(RejectReason::ZeroPrice)
        } else if quantity <= filled {
            Some(RejectReason::QuantityNotAboveFilled)
        } else {
            None
        };
        if let Some(reason) = reject {
            out.emit(Event::Rejected { id, reason });
            return;
        }
        if price == old_price && quantity <= old_quantity {
            // Same price, not larger: shrink in place, keeping time priority.
            let shrink = old_quantity - quantity;
            if shrink > 0 {
                self.orders.get_mut(slot).quantity = quantity;
                let level = self.levels.get_mut(level_slot);
                level.total -= shrink;
                out.emit(Event::Level {
                    side,
                    price,
                    quantity: level.total,
                });
            }
        } else {
            // A new price or a larger quantity goes to the back of the
            // queue, and may now cross: it trades as a taker first.
            self.unlink(slot, out);
            let order = self.orders.get_mut(slot);
            order.price = price;
            order.quantity = quantity;
            if !self.take_and_rest(slot, price, ts, true, out) {
                let view = self.view(slot);
                self.retire(slot, None);
                out.emit(Event::Modified(view));
                return;
            }
        }
        out.emit(Event::Modified(self.view(slot)));
    }

    fn cancel<S: EventSink>(&mut self, id: OrderId, out: &mut S) {
        let Some((at, slot)) = self.find_resting(id) else {
            out.emit(Event::Rejected {
                id,
                reason: RejectReason::NotResting,
            });
            return;
        };
        self.unlink(slot, out);
        self.orders.get_mut(slot).status = OrderStatus::Cancelled;
        let view = self.view(slot);
        self.retire(slot, Some(at));
        out.emit(Event::Cancelled(view));
    }

    /// Cancels every resting order of `side` (of both for `None`), buys
    /// first: from the best level, each level's orders in time priority.
    /// Each order leaves its level's event and joins the finished history
    /// as a cancel does; one `CancelledAll` closes the command. No
    /// allocation: the best level is always one with orders (`close_level`
    /// drops empty ones behind it).
    // Out of line: a rare command, whose loop inlined into `apply` cost
    // every other command about 3 instructions (callgrind).
    #[cold]
    #[inline(never)]
    fn cancel_all<S: EventSink>(&mut self, only: Option<Side>, out: &mut S) {
        let mut count = 0;
        for side in [Side::Buy, Side::Sell] {
            if only.is_some_and(|only| only != side) {
                continue;
            }
            while let Some((_, level)) = self.ladders[side.index()].best() {
                let slot = self.levels.get(level).head;
                self.unlink(slot, out);
                self.orders.get_mut(slot).status = OrderStatus::Cancelled;
                self.retire(slot, None);
                count += 1;
            }
        }
        out.emit(Event::CancelledAll { count });
    }

    /// Whether an order on `side` at `limit` would meet the opposite side.
    fn would_trade(&self, side: Side, limit: Ticks) -> bool {
        self.ladders[side.opposite().index()]
            .best()
            .is_some_and(|(best, _)| crosses(side, limit, best))
    }

    /// Whether the opposite side holds `quantity` within `limit`: a
    /// fill-or-kill order's test. Walks the crossed levels from the best,
    /// stopping as soon as they hold enough.
    fn fillable(&self, side: Side, limit: Ticks, quantity: Qty) -> bool {
        let mut within: Qty = 0;
        for &(price, level_slot) in self.ladders[side.opposite().index()].sorted.iter().rev() {
            if !crosses(side, limit, price) {
                return false;
            }
            // An empty level kept in the ladder adds 0.
            within += self.levels.get(level_slot).total;
            if within >= quantity {
                return true;
            }
        }
        false
    }

    /// Matches the order in `slot` (not linked into any level) against the
    /// opposite side while it crosses `limit` (its price, or a market
    /// order's `market_limit`), then, if `may_rest`, rests what remains at the
    /// back of its level; otherwise what remains is cancelled. Returns
    /// whether it rests; one that does not is left for the caller to
    /// retire (its status already `Filled` or `Cancelled`).
    fn take_and_rest<S: EventSink>(
        &mut self,
        slot: u32,
        limit: Ticks,
        ts: Timestamp,
        may_rest: bool,
        out: &mut S,
    ) -> bool {
        let (taker_id, side) = {
            let taker = self.orders.get(slot);
            (taker.id, taker.side)
        };
        let opposite = side.opposite();
        let mut remaining = self.orders.get(slot).remaining();
        let mut filled_now: Qty = 0;
        let mut notional_now: u128 = 0;
        // A big book's makers are rarely in cache: fetch ahead of the walk.
        let look_ahead = self.orders.len() >= LOOKAHEAD_MIN_ORDERS;

        while remaining > 0 {
            let Some((level_price, level_slot)) = self.ladders[opposite.index()].best() else {
                break;
            };
            if !crosses(side, limit, level_price) {
                break;
            }
            // Walk the level's queue from the oldest maker.
            loop {
                let maker_slot = self.levels.get(level_slot).head;
                if look_ahead {
                    self.prefetch_behind(maker_slot);
                }
                let maker = self.orders.get_mut(maker_slot);
                let fill = remaining.min(maker.remaining());
                maker.filled += fill;
                let maker_id = maker.id;
                let maker_done = maker.filled == maker.quantity;
                self.add_notional(maker_slot, fill as u128 * level_price as u128);
                remaining -= fill;
                filled_now += fill;
                notional_now += fill as u128 * level_price as u128;
                self.last_trade_id += 1;
                out.emit(Event::Trade(Trade {
                    trade_id: self.last_trade_id,
                    price: level_price,
                    quantity: fill,
                    taker: taker_id,
                    maker: maker_id,
                    taker_side: side,
                    ts,
                }));
                let level = self.levels.get_mut(level_slot);
                level.total -= fill;
                if maker_done {
                    level.orders -= 1;
                    let next = self.orders.get(maker_slot).next;
                    level.head = next;
                    if next == NIL {
                        level.tail = NIL;
                    } else {
                        self.orders.get_mut(next).prev = NIL;
                    }
                    let maker = self.orders.get_mut(maker_slot);
                    maker.next = NIL;
                    maker.level = NIL;
                    maker.status = OrderStatus::Filled;
                    self.retire(maker_slot, None);
                } else {
                    self.orders.get_mut(maker_slot).status = OrderStatus::PartiallyFilled;
                }
                let level = self.levels.get(level_slot);
                if remaining == 0 || level.head == NIL {
                    break;
                }
            }
            let total = self.levels.get(level_slot).total;
            out.emit(Event::Level {
                side: opposite,
                price: level_price,
                quantity: total,
            });
            if self.levels.get(level_slot).head == NIL {
                self.close_level(opposite, level_slot);
            }
        }

        if notional_now > 0 {
            self.add_notional(slot, notional_now);
        }
        let taker = self.orders.get_mut(slot);
        taker.filled += filled_now;
        if remaining == 0 {
            taker.status = OrderStatus::Filled;
            false
        } else if !may_rest {
            taker.status = OrderStatus::Cancelled;
            false
        } else {
            taker.status = if taker.filled > 0 {
                OrderStatus::PartiallyFilled
            } else {
                OrderStatus::Open
            };
            self.link_at_back(slot, out);
            true
        }
    }

    /// Appends the order in `slot` to the back of its price level's queue,
    /// opening the level if it is new.
    fn link_at_back<S: EventSink>(&mut self, slot: u32, out: &mut S) {
        let (side, price, remaining) = {
            let order = self.orders.get(slot);
            (order.side, order.price, order.remaining())
        };
        let ladder = &mut self.ladders[side.index()];
        let levels = &self.levels;
        let found = ladder
            .by_price
            .find(fold(price), |v| levels.get(v).price == price);
        let level_slot = match found {
            Some(at) => {
                let level_slot = ladder.by_price.get(at);
                if levels.get(level_slot).head == NIL {
                    ladder.empty -= 1;
                }
                level_slot
            }
            None => {
                let level_slot = self.levels.insert(Level {
                    price,
                    total: 0,
                    orders: 0,
                    head: NIL,
                    tail: NIL,
                });
                ladder.insert(price, level_slot);
                level_slot
            }
        };
        let level = self.levels.get_mut(level_slot);
        let old_tail = level.tail;
        level.tail = slot;
        if old_tail == NIL {
            level.head = slot;
        }
        level.total += remaining;
        level.orders += 1;
        let total = level.total;
        if old_tail != NIL {
            self.orders.get_mut(old_tail).next = slot;
        }
        let order = self.orders.get_mut(slot);
        order.prev = old_tail;
        order.next = NIL;
        order.level = level_slot;
        out.emit(Event::Level {
            side,
            price,
            quantity: total,
        });
    }

    /// Deals with a level of `side` that just emptied. At the touch it goes,
    /// with any empty levels behind it, so the best entry always has
    /// orders; elsewhere it stays (see [`Ladder::sorted`]) until a sweep.
    fn close_level(&mut self, side: Side, level_slot: u32) {
        let Ladder {
            sorted,
            empty,
            by_price,
            ..
        } = &mut self.ladders[side.index()];
        let levels = &mut self.levels;
        if sorted.last().map(|&(_, l)| l) == Some(level_slot) {
            while let Some(&(price, level)) = sorted.last() {
                if levels.get(level).head != NIL {
                    break;
                }
                if level != level_slot {
                    *empty -= 1;
                }
                sorted.pop();
                Ladder::forget(by_price, price, level);
                levels.remove(level);
            }
        } else {
            *empty += 1;
            if *empty > SWEEP_SLACK && *empty > sorted.len() / 2 {
                // O(levels), at most once per as many closes as there are
                // levels with orders: amortised O(1), and no allocation.
                sorted.retain(|&(price, level)| {
                    if levels.get(level).head != NIL {
                        return true;
                    }
                    Ladder::forget(by_price, price, level);
                    levels.remove(level);
                    false
                });
                *empty = 0;
            }
        }
    }

    /// Takes the resting order in `slot` out of its level's queue, closing
    /// the level if it empties.
    #[inline(always)]
    fn unlink<S: EventSink>(&mut self, slot: u32, out: &mut S) {
        let (prev, next, level_slot, remaining, side) = {
            let order = self.orders.get(slot);
            (
                order.prev,
                order.next,
                order.level,
                order.remaining(),
                order.side,
            )
        };
        if prev != NIL {
            self.orders.get_mut(prev).next = next;
        }
        if next != NIL {
            self.orders.get_mut(next).prev = prev;
        }
        let level = self.levels.get_mut(level_slot);
        if level.head == slot {
            level.head = next;
        }
        if level.tail == slot {
            level.tail = prev;
        }
        level.total -= remaining;
        level.orders -= 1;
        let (price, total, empty) = (level.price, level.total, level.head == NIL);
        let order = self.orders.get_mut(slot);
        order.prev = NIL;
        order.next = NIL;
        order.level = NIL;
        out.emit(Event::Level {
            side,
            price,
            quantity: total,
        });
        if empty {
            self.close_level(side, level_slot);
        }
    }

    /// The order in `slot` as it stands.
    #[inline(always)]
    fn view(&self, slot: u32) -> OrderView {
        let order = self.orders.get(slot);
        let mut notional = order.notional_low as u128;
        if order.wide {
            notional |= (self.wide_notional[&slot] as u128) << 64;
        }
        OrderView {
            id: order.id,
            side: order.side,
            price: order.price,
            quantity: order.quantity,
            filled: order.filled,
            notional,
            status: order.status,
        }
    }

    /// Adds `amount` to the notional of the order in `slot`.
    #[inline]
    fn add_notional(&mut self, slot: u32, amount: u128) {
        let order = self.orders.get_mut(slot);
        let (low, carry) = order.notional_low.overflowing_add(amount as u64);
        order.notional_low = low;
        let high = ((amount >> 64) as u64) + carry as u64;
        if high != 0 {
            order.wide = true;
            *self.wide_notional.entry(slot).or_insert(0) += high;
        }
    }

    /// Frees `slot`, dropping the high notional bits it may have had.
    #[inline(always)]
    fn free(&mut self, slot: u32) {
        if self.orders.get(slot).wide {
            self.wide_notional.remove(&slot);
        }
        self.orders.remove(slot);
    }

    /// Moves a finished order out of its slot into the history ring (or
    /// forgets it when there is none) and frees the slot. `at` is its index
    /// bucket when the caller has it.
    #[inline(always)]
    fn retire(&mut self, slot: u32, at: Option<usize>) {
        // Hashed only when needed: a cancel brings its bucket along.
        let hash = |book: &Self| order_id_hash(book.orders.get(slot).id);
        let mut at = match at {
            Some(at) => at,
            None => self
                .index
                .find_value(hash(self), slot)
                .expect("a resting order is in the index"),
        };
        if self.history.capacity == 0 {
            self.index.remove_at(at);
            if let Some(log) = &mut self.evicted {
                // No history: the book forgets the order at once.
                log.push(self.orders.get(slot).id);
            }
        } else {
            // Only a history needs the view: the matching thread runs
            // without one and skips building it.
            let (position, evicted) = self.history.push(self.view(slot));
            if let Some(evicted) = evicted {
                // Evict while the position's value names only the evicted
                // order; its removal may shift entries, so find ours again.
                self.forget(evicted.id, IN_HISTORY | position);
                at = self
                    .index
                    .find_value(hash(self), slot)
                    .expect("a resting order is in the index");
            }
            self.index.set(at, IN_HISTORY | position);
        }
        self.free(slot);
    }

    /// Puts a finished order that has no index entry into the history,
    /// returning the index value it should get (none without a history).
    fn remember(&mut self, order: OrderView) -> Option<u32> {
        if self.history.capacity == 0 {
            if let Some(log) = &mut self.evicted {
                log.push(order.id);
            }
            return None;
        }
        let (position, evicted) = self.history.push(order);
        if let Some(evicted) = evicted {
            self.forget(evicted.id, IN_HISTORY | position);
        }
        Some(IN_HISTORY | position)
    }

    /// Drops the index entry of an order evicted from the history, whose
    /// position `value` now belongs to a newer order.
    fn forget(&mut self, id: OrderId, value: u32) {
        if let Some(at) = self.index.find_value(order_id_hash(id), value) {
            self.index.remove_at(at);
        }
        if let Some(log) = &mut self.evicted {
            log.push(id);
        }
    }

    /// From now on, keeps the id of each finished order the book stops
    /// knowing (the oldest of the history, when a newer one needs its
    /// place; with no history, every finished order at once) for
    /// [`take_evicted`](Self::take_evicted): the replica frees the
    /// `client_order_id`s of the orders it no longer keeps. Off by
    /// default (the matching thread's book).
    pub fn log_evictions(&mut self) {
        self.evicted.get_or_insert_with(Vec::new);
    }

    /// The ids of the finished orders the book stopped knowing since the
    /// last call, oldest first (none unless
    /// [`log_evictions`](Self::log_evictions)).
    pub fn take_evicted(&mut self) -> impl Iterator<Item = OrderId> + '_ {
        self.evicted.iter_mut().flat_map(|log| log.drain(..))
    }

    /// Where `id` is or would go in the index.
    #[inline(always)]
    fn probe(&self, hash: u64, id: OrderId) -> Probe {
        let (orders, history) = (&self.orders, &self.history);
        self.index.probe(hash, |v| id_of(orders, history, v) == id)
    }

    /// The index value of `id`, if the book knows it.
    #[inline]
    fn find(&self, id: OrderId) -> Option<u32> {
        match self.probe(order_id_hash(id), id) {
            Probe::Found(at) => Some(self.index.get(at)),
            Probe::Vacant(_) => None,
        }
    }

    /// The index bucket and arena slot of `id` if it rests in the book.
    #[inline(always)]
    fn find_resting(&self, id: OrderId) -> Option<(usize, u32)> {
        match self.probe(order_id_hash(id), id) {
            Probe::Found(at) => {
                let value = self.index.get(at);
                (value & IN_HISTORY == 0).then_some((at, value))
            }
            Probe::Vacant(_) => None,
        }
    }

    /// An order by id: resting, or finished and still in the history.
    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.find(id).map(|value| {
            if value & IN_HISTORY != 0 {
                self.history.entries[(value & !IN_HISTORY) as usize]
            } else {
                self.view(value)
            }
        })
    }

    /// The best resting price on `side`, if any.
    pub fn best_price(&self, side: Side) -> Option<Ticks> {
        self.ladders[side.index()].best().map(|(price, _)| price)
    }

    /// The aggregated levels of `side`, best first.
    pub fn levels(&self, side: Side) -> impl Iterator<Item = LevelView> + '_ {
        self.ladders[side.index()]
            .sorted
            .iter()
            .rev()
            .filter(move |&&(_, level_slot)| self.levels.get(level_slot).head != NIL)
            .map(move |&(price, level_slot)| {
                let level = self.levels.get(level_slot);
                LevelView {
                    price,
                    quantity: level.total,
                    orders: level.orders,
                }
            })
    }

    /// The resting orders of `side` in priority order: best price first,
    /// then oldest first within a price.
    pub fn resting(&self, side: Side) -> impl Iterator<Item = OrderView> + '_ {
        self.ladders[side.index()]
            .sorted
            .iter()
            .rev()
            .flat_map(move |&(_, level_slot)| {
                let mut cursor = self.levels.get(level_slot).head;
                std::iter::from_fn(move || {
                    if cursor == NIL {
                        return None;
                    }
                    let slot = cursor;
                    cursor = self.orders.get(slot).next;
                    Some(self.view(slot))
                })
            })
    }

    /// How many orders rest in the book.
    pub fn resting_count(&self) -> usize {
        self.orders.len()
    }

    /// How many finished orders are kept fetchable.
    pub fn finished_count(&self) -> usize {
        self.history.entries.len()
    }

    /// The last trade id handed out (0 before any trade).
    pub fn last_trade_id(&self) -> u64 {
        self.last_trade_id
    }

    /// The finished orders kept fetchable, oldest first (the order in which
    /// [`restore`](Self::restore) must see them to rebuild the same history).
    pub fn finished(&self) -> impl Iterator<Item = OrderView> + '_ {
        let (newer, older) = self.history.entries.split_at(self.history.oldest);
        older.iter().chain(newer.iter()).copied()
    }

    /// Puts back an order from a saved state, without matching: a resting
    /// order joins the back of its level (so restoring a side's orders in
    /// priority order rebuilds its queues), a finished one joins the
    /// history. Rejected (returned) if its id is already known or its
    /// quantities are not those of an order this book could hold.
    pub fn restore(&mut self, order: OrderView) -> Result<(), RestoreError> {
        if self.find(order.id).is_some() {
            return Err(RestoreError::DuplicateId);
        }
        if order.quantity == 0 || order.filled > order.quantity {
            return Err(RestoreError::BadQuantities);
        }
        if order.price == MARKET && order.status.is_resting() {
            return Err(RestoreError::RestingMarket);
        }
        if order.status.is_resting() {
            if order.filled == order.quantity {
                return Err(RestoreError::BadQuantities);
            }
            let slot = self.orders.insert(Order {
                id: order.id,
                notional_low: 0,
                price: order.price,
                quantity: order.quantity,
                filled: order.filled,
                prev: NIL,
                next: NIL,
                level: NIL,
                side: order.side,
                status: order.status,
                wide: false,
            });
            self.add_notional(slot, order.notional);
            self.index.insert_new(order_id_hash(order.id), slot);
            self.link_at_back(slot, &mut IgnoreEvents);
        } else if let Some(value) = self.remember(order) {
            self.index.insert_new(order_id_hash(order.id), value);
        }
        Ok(())
    }

    /// Continues trade numbering after `last` (from a saved state).
    pub fn set_last_trade_id(&mut self, last: u64) {
        self.last_trade_id = last;
    }
}

/// A sink for the level changes of a restore, which nobody is told about.
struct IgnoreEvents;

impl EventSink for IgnoreEvents {
    #[inline]
    fn emit(&mut self, _event: Event) {}
}

/// Why [`OrderBook::restore`] refused an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The book already knows this id.
    DuplicateId,
    /// Zero quantity, more filled than ordered, or resting with nothing
    /// left.
    BadQuantities,
    /// Resting at the market price: a market order never rests.
    RestingMarket,
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestoreError::DuplicateId => "the order id appears twice",
            RestoreError::BadQuantities => "the order's quantities are impossible",
            RestoreError::RestingMarket => "a market order (price 0) cannot be resting",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(book: &mut OrderBook, id: OrderId, side: Side, price: Ticks, quantity: Qty) {
        let mut out = Vec::new();
        book.apply(
            &Command {
                ts: 0,
                kind: CommandKind::Place {
                    id,
                    side,
                    price,
                    quantity,
                    tif: TimeInForce::GoodTillCancel,
                },
            },
            &mut out,
        );
    }

    #[test]
    fn levels_that_empty_and_reopen_agree_with_a_sorted_map() {
        // 300 prices per side for at most 256 orders: levels empty and
        // reopen all the time, away from the touch and at it, and sweeps run.
        let mut book = OrderBook::new(BookConfig {
            order_capacity: 512,
            level_capacity: 16,
            finished_capacity: 0,
            resident: false,
            sparse_index: false,
        });
        let mut model: std::collections::BTreeMap<(i8, Ticks), Qty> = Default::default();
        let mut live: Vec<(OrderId, Side, Ticks, Qty)> = Vec::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut out = Vec::new();
        for step in 0..100_000u64 {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            out.clear();
            if live.len() < 256 && (r.is_multiple_of(2) || live.is_empty()) {
                let side = if r & 2 == 0 { Side::Buy } else { Side::Sell };
                let k = (r >> 8) % 300;
                let price = match side {
                    Side::Buy => 1_000 - k,
                    Side::Sell => 1_001 + k,
                };
                let quantity = 1 + (r >> 20) % 9;
                let id = step as u128 + 1;
                let kind = CommandKind::Place {
                    id,
                    side,
                    price,
                    quantity,
                    tif: TimeInForce::GoodTillCancel,
                };
                book.apply(&Command { ts: step, kind }, &mut out);
                live.push((id, side, price, quantity));
                *model.entry((side as i8, price)).or_default() += quantity;
            } else {
                let i = (r >> 32) as usize % live.len();
                let (id, side, price, quantity) = live.swap_remove(i);
                let kind = CommandKind::Cancel { id };
                book.apply(&Command { ts: step, kind }, &mut out);
                let total = model.get_mut(&(side as i8, price)).unwrap();
                *total -= quantity;
                if *total == 0 {
                    model.remove(&(side as i8, price));
                }
            }
            for side in [Side::Buy, Side::Sell] {
                let mut expected: Vec<(Ticks, Qty)> = model
                    .iter()
                    .filter(|((s, _), _)| *s == side as i8)
                    .map(|(&(_, p), &q)| (p, q))
                    .collect();
                if side == Side::Buy {
                    expected.reverse();
                }
                assert_eq!(book.best_price(side), expected.first().map(|&(p, _)| p));
                if step % 101 == 0 {
                    let levels: Vec<(Ticks, Qty)> =
                        book.levels(side).map(|l| (l.price, l.quantity)).collect();
                    assert_eq!(levels, expected, "step {step}");
                    let resting = live.iter().filter(|o| o.1 == side).count();
                    assert_eq!(book.resting(side).count(), resting);
                }
                let ladder = &book.ladders[side.index()];
                assert!(ladder.sorted.len() <= 2 * 300 + SWEEP_SLACK);
                let empties = ladder
                    .sorted
                    .iter()
                    .filter(|&&(_, l)| book.levels.get(l).head == NIL)
                    .count();
                assert_eq!(empties, ladder.empty);
            }
        }
    }

    #[test]
    fn an_order_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Order>(), 64);
        assert_eq!(std::mem::align_of::<Order>(), 64);
    }

    #[test]
    fn notional_beyond_64_bits_is_kept_exactly() {
        let mut book = OrderBook::new(BookConfig {
            order_capacity: 8,
            level_capacity: 4,
            finished_capacity: 4,
            resident: false,
            sparse_index: false,
        });
        let price = u64::MAX / 2;
        place(&mut book, 1, Side::Sell, price, u64::MAX);
        // Two fills as maker, each of notional above 2^64, carrying into
        // the high bits twice; then one as taker.
        place(&mut book, 2, Side::Buy, price, 3);
        place(&mut book, 3, Side::Buy, price, 5);
        let expected = 8u128 * price as u128;
        let maker = book.order(1).unwrap();
        assert_eq!(maker.notional, expected);
        assert_eq!(maker.filled, 8);
        assert_eq!(book.order(3).unwrap().notional, 5 * price as u128);
        place(&mut book, 4, Side::Buy, price, u64::MAX - 8);
        let maker = book.order(1).unwrap();
        assert_eq!(maker.status, OrderStatus::Filled);
        assert_eq!(maker.notional, u64::MAX as u128 * price as u128);
        // The slot's high bits went with it: a new order there starts at 0.
        place(&mut book, 5, Side::Sell, 7, 2);
        place(&mut book, 6, Side::Buy, 7, 1);
        assert_eq!(book.order(5).unwrap().notional, 7);
        assert!(book.wide_notional.is_empty());
    }

    #[test]
    fn the_reserved_bytes_foretold_are_what_a_new_book_reserves() {
        for (orders, levels, finished, sparse) in [
            (1, 1, 0, false),
            (1 << 16, 1 << 12, 1_000_000, false),
            (1 << 20, 1 << 12, 0, true),
            (3_000, 700, 12_345, true),
        ] {
            let config = BookConfig {
                order_capacity: orders,
                level_capacity: levels,
                finished_capacity: finished,
                resident: false,
                sparse_index: sparse,
            };
            assert_eq!(
                OrderBook::new(config).capacity_bytes(),
                config.reserved_bytes(),
                "{config:?}"
            );
        }
    }
}
