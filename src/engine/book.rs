//! The order book: resting orders in price levels, each level a FIFO queue
//! linked through the orders' slots, and the matching rules of SPEC §1.
//!
//! Layout: orders live in an [`Arena`] and are found by id through a hash
//! table of slot indices (the id itself is read from the slot, so the table
//! costs 4 bytes an entry). Each side keeps its levels sorted worst to best
//! in a `Vec`, so the best level is the last element and new levels, which
//! mostly open near the touch, move few elements. A finished order leaves
//! its slot at once (the next order reuses it while it is warm in cache)
//! for a bounded history ring written in sequence; the id index then
//! points into the ring until the ring's oldest entry is overwritten.

use hashbrown::{HashMap, HashTable};

use super::arena::{Arena, NIL};
use super::hash::{order_id_hash, FoldBuildHasher};
use super::types::{
    Command, CommandKind, Event, EventSink, LevelView, OrderId, OrderStatus, OrderView, Qty,
    RejectReason, Side, Ticks, Timestamp, Trade,
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
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            order_capacity: 1 << 16,
            level_capacity: 1 << 12,
            finished_capacity: 1_000_000,
        }
    }
}

/// One order's slot. `prev`/`next` link it into its level's queue while
/// it rests; they are `NIL` otherwise.
struct Order {
    id: OrderId,
    notional: u128,
    price: Ticks,
    quantity: Qty,
    filled: Qty,
    prev: u32,
    next: u32,
    level: u32,
    side: Side,
    status: OrderStatus,
}

impl Order {
    #[inline]
    fn view(&self) -> OrderView {
        OrderView {
            id: self.id,
            side: self.side,
            price: self.price,
            quantity: self.quantity,
            filled: self.filled,
            notional: self.notional,
            status: self.status,
        }
    }

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

/// One side's levels: sorted worst to best so the best is last, plus a map
/// from price to level slot.
struct Ladder {
    side: Side,
    sorted: Vec<(Ticks, u32)>,
    by_price: HashMap<Ticks, u32, FoldBuildHasher>,
}

impl Ladder {
    fn new(side: Side, capacity: usize) -> Self {
        Ladder {
            side,
            sorted: Vec::with_capacity(capacity),
            by_price: HashMap::with_capacity_and_hasher(capacity, FoldBuildHasher),
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

    fn insert(&mut self, price: Ticks, level: u32) {
        let at = self.position(price);
        self.sorted.insert(at, (price, level));
        self.by_price.insert(price, level);
    }

    fn remove(&mut self, price: Ticks) {
        self.by_price.remove(&price);
        if self.sorted.last().map(|&(p, _)| p) == Some(price) {
            self.sorted.pop();
        } else {
            let at = self.position(price) - 1;
            debug_assert_eq!(self.sorted[at].0, price);
            self.sorted.remove(at);
        }
    }
}

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
        assert!(
            capacity < IN_HISTORY as usize,
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
    index: HashTable<u32>,
    ladders: [Ladder; 2],
    history: History,
    /// The last trade id handed out.
    last_trade_id: u64,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new(BookConfig::default())
    }
}

impl OrderBook {
    /// An empty book pre-sized by `config`.
    pub fn new(config: BookConfig) -> Self {
        OrderBook {
            orders: Arena::with_capacity(config.order_capacity),
            levels: Arena::with_capacity(config.level_capacity * 2),
            // Kept at most about a quarter full: deletions then leave empty
            // buckets rather than tombstones, which would otherwise pile up
            // under churn and force an O(n) rehash on the matching thread.
            index: HashTable::with_capacity(2 * (config.order_capacity + config.finished_capacity)),
            ladders: [
                Ladder::new(Side::Buy, config.level_capacity),
                Ladder::new(Side::Sell, config.level_capacity),
            ],
            history: History::new(config.finished_capacity),
            last_trade_id: 0,
        }
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
            } => self.place(id, side, price, quantity, command.ts, out),
            CommandKind::Modify {
                id,
                price,
                quantity,
            } => self.modify(id, price, quantity, command.ts, out),
            CommandKind::Cancel { id } => self.cancel(id, out),
        }
    }

    fn place<S: EventSink>(
        &mut self,
        id: OrderId,
        side: Side,
        price: Ticks,
        quantity: Qty,
        ts: Timestamp,
        out: &mut S,
    ) {
        let reject = if price == 0 {
            Some(RejectReason::ZeroPrice)
        } else if quantity == 0 {
            Some(RejectReason::ZeroQuantity)
        } else if self.find(id).is_some() {
            Some(RejectReason::DuplicateId)
        } else {
            None
        };
        if let Some(reason) = reject {
            out.emit(Event::Rejected { id, reason });
            return;
        }
        let slot = self.orders.insert(Order {
            id,
            notional: 0,
            price,
            quantity,
            filled: 0,
            prev: NIL,
            next: NIL,
            level: NIL,
            side,
            status: OrderStatus::Open,
        });
        let (orders, history) = (&self.orders, &self.history);
        self.index.insert_unique(order_id_hash(id), slot, |&v| {
            order_id_hash(id_of(orders, history, v))
        });
        self.take_and_rest(slot, ts, out);
        out.emit(Event::Accepted(self.orders.get(slot).view()));
    }

    fn modify<S: EventSink>(
        &mut self,
        id: OrderId,
        new_price: Option<Ticks>,
        new_quantity: Option<Qty>,
        ts: Timestamp,
        out: &mut S,
    ) {
        let Some(slot) = self.find_resting(id) else {
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
            self.take_and_rest(slot, ts, out);
        }
        out.emit(Event::Modified(self.orders.get(slot).view()));
    }

    fn cancel<S: EventSink>(&mut self, id: OrderId, out: &mut S) {
        let Some(slot) = self.find_resting(id) else {
            out.emit(Event::Rejected {
                id,
                reason: RejectReason::NotResting,
            });
            return;
        };
        self.unlink(slot, out);
        self.orders.get_mut(slot).status = OrderStatus::Cancelled;
        let view = self.orders.get(slot).view();
        self.retire(slot);
        out.emit(Event::Cancelled(view));
    }

    /// Matches the order in `slot` (not linked into any level) against the
    /// opposite side while it crosses, then rests what remains at the back
    /// of its level, or retires it when filled.
    fn take_and_rest<S: EventSink>(&mut self, slot: u32, ts: Timestamp, out: &mut S) {
        let (taker_id, side, limit) = {
            let taker = self.orders.get(slot);
            (taker.id, taker.side, taker.price)
        };
        let opposite = side.opposite();
        let mut remaining = self.orders.get(slot).remaining();
        let mut filled_now: Qty = 0;
        let mut notional_now: u128 = 0;

        while remaining > 0 {
            let Some((level_price, level_slot)) = self.ladders[opposite.index()].best() else {
                break;
            };
            let crosses = match side {
                Side::Buy => level_price <= limit,
                Side::Sell => level_price >= limit,
            };
            if !crosses {
                break;
            }
            // Walk the level's queue from the oldest maker.
            loop {
                let maker_slot = self.levels.get(level_slot).head;
                let maker = self.orders.get_mut(maker_slot);
                let fill = remaining.min(maker.remaining());
                maker.filled += fill;
                maker.notional += fill as u128 * level_price as u128;
                let maker_id = maker.id;
                let maker_done = maker.filled == maker.quantity;
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
                    self.retire(maker_slot);
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
                self.ladders[opposite.index()].remove(level_price);
                self.levels.remove(level_slot);
            }
        }

        let taker = self.orders.get_mut(slot);
        taker.filled += filled_now;
        taker.notional += notional_now;
        if remaining == 0 {
            taker.status = OrderStatus::Filled;
            self.retire(slot);
        } else {
            taker.status = if taker.filled > 0 {
                OrderStatus::PartiallyFilled
            } else {
                OrderStatus::Open
            };
            self.link_at_back(slot, out);
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
        let level_slot = match ladder.by_price.get(&price) {
            Some(&level_slot) => level_slot,
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

    /// Takes the resting order in `slot` out of its level's queue, closing
    /// the level if it empties.
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
            self.ladders[side.index()].remove(price);
            self.levels.remove(level_slot);
        }
    }

    /// Moves a finished order out of its slot into the history ring
    /// (forgetting the ring's oldest order when it is full) and frees the slot.
    fn retire(&mut self, slot: u32) {
        let order = self.orders.get(slot).view();
        let hash = order_id_hash(order.id);
        if self.history.capacity == 0 {
            if let Ok(entry) = self.index.find_entry(hash, |&v| v == slot) {
                entry.remove();
            }
        } else {
            let (position, evicted) = self.history.push(order);
            let value = IN_HISTORY | position;
            if let Some(evicted) = evicted {
                if let Ok(entry) = self
                    .index
                    .find_entry(order_id_hash(evicted.id), |&v| v == value)
                {
                    entry.remove();
                }
            }
            if let Ok(mut entry) = self.index.find_entry(hash, |&v| v == slot) {
                *entry.get_mut() = value;
            }
        }
        self.orders.remove(slot);
    }

    /// The index value of `id`, if the book knows it.
    #[inline]
    fn find(&self, id: OrderId) -> Option<u32> {
        let (orders, history) = (&self.orders, &self.history);
        self.index
            .find(order_id_hash(id), |&v| id_of(orders, history, v) == id)
            .copied()
    }

    /// The arena slot of `id` if it rests in the book.
    #[inline]
    fn find_resting(&self, id: OrderId) -> Option<u32> {
        self.find(id).filter(|&value| value & IN_HISTORY == 0)
    }

    /// An order by id: resting, or finished and still in the history.
    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.find(id).map(|value| {
            if value & IN_HISTORY != 0 {
                self.history.entries[(value & !IN_HISTORY) as usize]
            } else {
                self.orders.get(value).view()
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
                    let order = self.orders.get(cursor);
                    cursor = order.next;
                    Some(order.view())
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
        if order.price == 0 || order.quantity == 0 || order.filled > order.quantity {
            return Err(RestoreError::BadQuantities);
        }
        if order.status.is_resting() {
            if order.filled == order.quantity {
                return Err(RestoreError::BadQuantities);
            }
            let slot = self.orders.insert(Order {
                id: order.id,
                notional: order.notional,
                price: order.price,
                quantity: order.quantity,
                filled: order.filled,
                prev: NIL,
                next: NIL,
                level: NIL,
                side: order.side,
                status: order.status,
            });
            let (orders, history) = (&self.orders, &self.history);
            self.index
                .insert_unique(order_id_hash(order.id), slot, |&v| {
                    order_id_hash(id_of(orders, history, v))
                });
            self.link_at_back(slot, &mut IgnoreEvents);
        } else if self.history.capacity > 0 {
            let (position, evicted) = self.history.push(order);
            let value = IN_HISTORY | position;
            if let Some(evicted) = evicted {
                if let Ok(entry) = self
                    .index
                    .find_entry(order_id_hash(evicted.id), |&v| v == value)
                {
                    entry.remove();
                }
            }
            let (orders, history) = (&self.orders, &self.history);
            self.index
                .insert_unique(order_id_hash(order.id), value, |&v| {
                    order_id_hash(id_of(orders, history, v))
                });
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
    /// Zero price or quantity, more filled than ordered, or resting with
    /// nothing left.
    BadQuantities,
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestoreError::DuplicateId => "the order id appears twice",
            RestoreError::BadQuantities => "the order's price or quantities are impossible",
        })
    }
}
