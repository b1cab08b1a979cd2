//! A low-latency limit order matching service.
//!
//! `engine` is the pure price-time order book; `ring` holds the lock-free
//! rings between threads (and every `unsafe` block of the crate);
//! `matching` runs the engine on its own pinned thread between two rings;
//! `net` and `api` are the HTTP front and its wire contract; `replica`
//! keeps a second copy of the book for big reads and the state file
//! (and builds the feed's `orders` channel, `order_feed`);
//! `persist` holds the journal, the state file format and recovery;
//! `metrics` the figures of `GET /metrics`; `config` gathers the settings.

#![deny(missing_docs)]
// Unchecked code is allowed in the ring module alone, where each block
// names its invariant and loom checks the protocol.
#![deny(unsafe_code)]

/// Writes one line to stderr, as `eprintln!` does, but never panics: with
/// stderr a closed pipe (the service's output piped into `head`, which has
/// exited) `eprintln!` panics, and a thread that panics on its way to
/// stopping the service (the signal thread's notice) left it running,
/// deaf to SIGTERM. A line that cannot be written is dropped.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod api;
pub mod candles;
pub mod client_ids;
pub mod config;
pub mod engine;
pub mod listing_memory;
pub mod matching;
pub mod metrics;
pub mod net;
pub mod order_feed;
pub mod persist;
pub mod publisher;
pub mod replica;
#[allow(unsafe_code)]
pub mod ring;
pub(crate) mod trade_history;
