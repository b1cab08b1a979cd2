//! The pure matching engine: a price-time priority limit order book.
//!
//! It owns the book and nothing else: no I/O, threads, clocks or randomness.
//! Order ids and timestamps arrive inside each [`Command`]; everything it
//! decides leaves as [`Event`]s through an [`EventSink`], so the same code
//! runs under the matching thread, in replay, in tests and in benches.
//!
//! Prices are integer ticks and quantities integers; the wire's decimals are
//! converted at the API boundary.

mod arena;
mod book;
pub(crate) mod hash;
mod index;
mod prefetch;
mod types;

pub use book::{BookConfig, OrderBook, RestoreError};
pub use types::{
    Command, CommandKind, Event, EventSink, LevelView, OrderId, OrderStatus, OrderView, Qty,
    RejectReason, Side, Ticks, TimeInForce, Timestamp, Trade, MARKET,
};
