//! Worst-case latency of the engine under long cancel+place churn: 1,000
//! resting orders, the service's default finished-order history, and many
//! millions of pairs. Reports the slowest pairs, which is where a hash
//! table rehash or a history eviction storm would show; medians hide them.
//!
//! `cargo run --release --example engine_churn_latency [pairs]`

use std::time::Instant;

use orderbook::engine::{BookConfig, Command, CommandKind, OrderBook, Side, TimeInForce};

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(15_000_000);
    let mut book = OrderBook::new(BookConfig::default());
    let mut events = Vec::with_capacity(64);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let resting = 1_000usize;
    let mut ids: Vec<u128> = Vec::with_capacity(resting);
    for i in 0..resting {
        let id = (next() as u128) << 64 | i as u128;
        ids.push(id);
        let kind = CommandKind::Place {
            id,
            side: Side::Buy,
            price: 900 + (i as u64 % 100),
            quantity: 5,
            tif: TimeInForce::GoodTillCancel,
        };
        book.apply(&Command { ts: 0, kind }, &mut events);
    }
    let mut worst: Vec<(u64, usize)> = Vec::new();
    let mut over_10us = 0u64;
    let started = Instant::now();
    for pair in 0..pairs {
        let at = (next() % resting as u64) as usize;
        let id = (next() as u128) << 64 | (resting + pair) as u128;
        let t0 = Instant::now();
        events.clear();
        book.apply(
            &Command {
                ts: pair as u64,
                kind: CommandKind::Cancel { id: ids[at] },
            },
            &mut events,
        );
        let kind = CommandKind::Place {
            id,
            side: Side::Buy,
            price: 900 + next() % 100,
            quantity: 5,
            tif: TimeInForce::GoodTillCancel,
        };
        book.apply(
            &Command {
                ts: pair as u64,
                kind,
            },
            &mut events,
        );
        let ns = t0.elapsed().as_nanos() as u64;
        ids[at] = id;
        if ns > 10_000 {
            over_10us += 1;
        }
        if worst.len() < 5 || ns > worst[worst.len() - 1].0 {
            worst.push((ns, pair));
            worst.sort_unstable_by(|a, b| b.cmp(a));
            worst.truncate(5);
        }
    }
    let total = started.elapsed();
    println!(
        "{pairs} cancel+place pairs at {resting} resting, history {} kept: {:.0} ns/pair mean",
        book.finished_count(),
        total.as_nanos() as f64 / pairs as f64
    );
    println!("pairs over 10 us: {over_10us}");
    for (ns, pair) in worst {
        println!("slow pair: {:>10.3} ms at pair {pair}", ns as f64 / 1e6);
    }
}
