//! The engine's vocabulary: commands in, events out, read-only views.

use std::fmt;

/// An order's id: a UUID made by the front, kept as its 128 bits.
pub type OrderId = u128;
/// A price as a whole number of ticks (the front converts decimals).
pub type Ticks = u64;
/// A quantity in whole units.
pub type Qty = u64;
/// Nanoseconds since the Unix epoch, stamped by the front.
pub type Timestamp = u64;

/// The price of a market order: no limit at all. It meets every opposite
/// level, best first, at the makers' prices, so it may only be immediate
/// (`ImmediateOrCancel` or `FillOrKill`): a market order never rests.
pub const MARKET: Ticks = 0;

/// The side of an order; the numbers are the wire's (`1` buy, `-1` sell).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i8)]
pub enum Side {
    /// Wants to buy: rests among the bids, meets asks at or below its price.
    Buy = 1,
    /// Wants to sell: rests among the asks, meets bids at or above its price.
    Sell = -1,
}

impl Side {
    /// The side this one trades against.
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// Index for per-side arrays: buy 0, sell 1.
    #[inline]
    pub(crate) fn index(self) -> usize {
        match self {
            Side::Buy => 0,
            Side::Sell => 1,
        }
    }
}

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Resting with nothing filled.
    Open,
    /// Resting with part of it filled.
    PartiallyFilled,
    /// Completely filled; no longer resting.
    Filled,
    /// Cancelled by its owner; no longer resting (it may have partial fills).
    Cancelled,
}

impl OrderStatus {
    /// The wire's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::PartiallyFilled => "partially filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// True exactly while the order rests in the book.
    pub fn is_resting(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

/// How long a placed order may live, and whether it may take liquidity:
/// the choices exchange APIs offer with a limit order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Trades what it crosses, then rests until filled or cancelled.
    #[default]
    GoodTillCancel,
    /// Trades what it crosses at once; the rest is cancelled, never rests.
    ImmediateOrCancel,
    /// Trades its whole quantity at once or nothing at all: if the
    /// opposite side does not hold enough within its limit, it is
    /// cancelled without trading.
    FillOrKill,
    /// Only ever rests (a maker): rejected if it would trade on arrival.
    /// Checked when placed; a later modify that crosses trades, as any
    /// modify does.
    PostOnly,
}

/// What a client asks the engine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Place a limit order; it trades as taker against what it crosses and
    /// rests with whatever remains, as its time in force allows.
    Place {
        /// The new order's id (unique; a repeat is rejected).
        id: OrderId,
        /// Buy or sell.
        side: Side,
        /// Limit price in ticks, above zero; or [`MARKET`] for an
        /// immediate order with no limit.
        price: Ticks,
        /// Total quantity, above zero.
        quantity: Qty,
        /// Whether what does not trade at once rests.
        tif: TimeInForce,
    },
    /// Change a resting order's total quantity and/or price.
    Modify {
        /// The resting order.
        id: OrderId,
        /// New limit price, or keep the current one.
        price: Option<Ticks>,
        /// New total quantity (filled part included), or keep the current one.
        quantity: Option<Qty>,
    },
    /// Take a resting order out of the book.
    Cancel {
        /// The resting order.
        id: OrderId,
    },
    /// Take every resting order of one side (or of both) out of the book, as
    /// that many cancels would: best level first, in time priority within a
    /// level.
    CancelAll {
        /// The side to empty, or both.
        side: Option<Side>,
    },
}

impl CommandKind {
    /// The order the command places or acts on (none for a cancel-all).
    #[inline]
    pub fn id(&self) -> Option<OrderId> {
        match *self {
            CommandKind::Place { id, .. }
            | CommandKind::Modify { id, .. }
            | CommandKind::Cancel { id } => Some(id),
            CommandKind::CancelAll { .. } => None,
        }
    }

    /// True for a place (the only command that takes a new slot).
    #[inline]
    pub fn is_place(&self) -> bool {
        matches!(self, CommandKind::Place { .. })
    }
}

/// A command with the time the front received it; trades it causes carry
/// this timestamp, so replay reproduces them exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// When the front accepted the request.
    pub ts: Timestamp,
    /// What to do.
    pub kind: CommandKind,
}

/// One execution between a taker and a resting maker, at the maker's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// The engine's trade sequence number: 1, 2, 3, ... across the book's life.
    pub trade_id: u64,
    /// Execution price in ticks: always the maker's.
    pub price: Ticks,
    /// Quantity exchanged.
    pub quantity: Qty,
    /// The incoming (or re-priced) order.
    pub taker: OrderId,
    /// The resting order it met.
    pub maker: OrderId,
    /// The taker's side; the maker is on the other.
    pub taker_side: Side,
    /// The command's timestamp.
    pub ts: Timestamp,
}

impl Trade {
    /// The buying order of the two.
    pub fn buy_order(&self) -> OrderId {
        match self.taker_side {
            Side::Buy => self.taker,
            Side::Sell => self.maker,
        }
    }

    /// The selling order of the two.
    pub fn sell_order(&self) -> OrderId {
        match self.taker_side {
            Side::Buy => self.maker,
            Side::Sell => self.taker,
        }
    }
}

/// An order as it stands: what queries return and outcomes carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// The order's id.
    pub id: OrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price in ticks ([`MARKET`] for a market order).
    pub price: Ticks,
    /// Total quantity as placed or last modified; what rests is `quantity - filled`.
    pub quantity: Qty,
    /// Quantity traded so far.
    pub filled: Qty,
    /// Sum of `fill quantity * fill price` over its fills, in ticks; divided
    /// by `filled` it is the average traded price.
    pub notional: u128,
    /// Where it stands.
    pub status: OrderStatus,
}

impl OrderView {
    /// What still rests in the book (0 once finished).
    pub fn remaining(&self) -> Qty {
        if self.status.is_resting() {
            self.quantity - self.filled
        } else {
            0
        }
    }

    /// The quantity-weighted mean fill price in ticks, 0 before any fill.
    pub fn average_price_ticks(&self) -> f64 {
        if self.filled == 0 {
            0.0
        } else {
            self.notional as f64 / self.filled as f64
        }
    }
}

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    /// The level's price in ticks.
    pub price: Ticks,
    /// Sum of what rests there.
    pub quantity: Qty,
    /// How many orders rest there.
    pub orders: u32,
}

/// Why a command changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Modify or cancel of an id that is unknown or no longer resting.
    NotResting,
    /// Place with an id the book already knows.
    DuplicateId,
    /// A price of zero ticks on a modify, or on a place that may rest
    /// (only an immediate order may be a [`MARKET`] order).
    ZeroPrice,
    /// A quantity of zero.
    ZeroQuantity,
    /// Modify to a total at or below what is already filled.
    QuantityNotAboveFilled,
    /// A post-only place that would trade on arrival.
    WouldTake,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::NotResting => "order not found or no longer resting",
            RejectReason::DuplicateId => "order id already used",
            RejectReason::ZeroPrice => "price must be positive",
            RejectReason::ZeroQuantity => "quantity must be positive",
            RejectReason::QuantityNotAboveFilled => {
                "new quantity must be above the filled quantity"
            }
            RejectReason::WouldTake => "post-only order would trade on arrival",
        })
    }
}

/// What the engine reports. Every command ends with exactly one outcome
/// (`Accepted`, `Modified`, `Cancelled` or `Rejected`), preceded by the
/// trades and level changes it caused, in the order they happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An execution.
    Trade(Trade),
    /// A price level's aggregated resting quantity changed (0 = level gone).
    Level {
        /// The level's side.
        side: Side,
        /// The level's price in ticks.
        price: Ticks,
        /// Its new total resting quantity.
        quantity: Qty,
    },
    /// Outcome of a place: the order as it stands after matching.
    Accepted(OrderView),
    /// Outcome of a modify: the order as it stands after re-matching.
    Modified(OrderView),
    /// Outcome of a cancel: the order as it was taken out.
    Cancelled(OrderView),
    /// Outcome of a cancel-all: how many orders it took out (0 on an empty
    /// side). Each of them also left a `Level` event.
    CancelledAll {
        /// Orders cancelled.
        count: u64,
    },
    /// Outcome of a command that changed nothing.
    Rejected {
        /// The id the command named.
        id: OrderId,
        /// Why.
        reason: RejectReason,
    },
}

impl Event {
    /// True for the one event that closes each command.
    pub fn is_outcome(&self) -> bool {
        !matches!(self, Event::Trade(_) | Event::Level { .. })
    }
}

/// Where the engine writes its events. The matching thread's sink writes
/// straight into the output ring; tests use a `Vec`.
pub trait EventSink {
    /// Take one event.
    fn emit(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}
