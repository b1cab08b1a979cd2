//! A low-latency limit order matching service.
//!
//! `engine` is the pure price-time order book; `ring` holds the lock-free
//! rings between threads (and every `unsafe` block of the crate);
//! `matching` runs the engine on its own pinned thread between two rings.

#![deny(missing_docs)]

pub mod api;
pub mod config;
pub mod engine;
pub mod matching;
pub mod net;
pub mod persist;
pub mod replica;
pub mod ring;
