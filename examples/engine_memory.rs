//! Resident memory of the engine's book holding 1,000,000 resting orders.
//!
//! Run with `cargo run --release --example engine_memory`. It places
//! 1,000,000 non-crossing limit orders (half bids, half asks, random `u128`
//! ids, quantities 1..=100) over 500 price levels per side next to a
//! two-tick spread, denser near the touch, into a book sized as the
//! service's defaults, and reads `VmRSS` from `/proc/self/status` before
//! and after. Orders are generated on the fly, so the only thing that grows
//! is the book. `ENGINE_MEMORY_RESIDENT=1` measures the matching
//! thread's book instead: no finished-order history, its slots and id
//! index made resident (on huge pages) when it is built, and its id index
//! sparse (a quarter full).

use orderbook::engine::{BookConfig, Command, CommandKind, Event, OrderBook, Side, TimeInForce};

#[path = "../tests/support/xorshift.rs"]
#[allow(dead_code)]
mod xorshift;
use xorshift::Rng;

const ORDERS: usize = 1_000_000;
const BAND: u64 = 500;
const MID: u64 = 1_000_000;

/// `VmRSS` of this process in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value in kB");
    kib * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let resident = std::env::var_os("ENGINE_MEMORY_RESIDENT").is_some();
    let start = resident_bytes();
    let mut book = OrderBook::new(BookConfig {
        order_capacity: 1 << 20,
        level_capacity: 4096,
        finished_capacity: if resident { 0 } else { 1_000_000 },
        resident,
        sparse_index: resident,
    });
    let empty = resident_bytes();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sink: Vec<Event> = Vec::with_capacity(16);
    for i in 0..ORDERS {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        // Distance from the touch: product of two uniforms, denser near 0.
        let k = rng.below(BAND) * rng.below(BAND) / BAND;
        let price = match side {
            Side::Buy => MID - 1 - k,
            Side::Sell => MID + 1 + k,
        };
        let id = ((rng.next() as u128) << 64) | rng.next() as u128;
        let quantity = 1 + rng.below(100);
        sink.clear();
        book.apply(
            &Command {
                ts: i as u64,
                kind: CommandKind::Place {
                    id,
                    side,
                    price,
                    quantity,
                    tif: TimeInForce::GoodTillCancel,
                },
            },
            &mut sink,
        );
        assert!(
            matches!(sink.last(), Some(Event::Accepted(_))),
            "every order is accepted"
        );
    }
    let full = resident_bytes();

    assert_eq!(book.resting_count(), ORDERS);
    assert_eq!(book.last_trade_id(), 0, "no order crossed");
    let levels = book.levels(Side::Buy).count() + book.levels(Side::Sell).count();

    println!("resting orders:            {ORDERS} over {levels} price levels");
    println!("VmRSS before the book:     {:8.1} MiB", mib(start));
    println!(
        "VmRSS with the empty book: {:8.1} MiB (+{:.1} MiB)",
        mib(empty),
        mib(empty - start)
    );
    println!(
        "VmRSS with 1M resting:     {:8.1} MiB (+{:.1} MiB over the start)",
        mib(full),
        mib(full - start)
    );
    println!(
        "bytes per resting order:   {:8.1}",
        (full - start) as f64 / ORDERS as f64
    );
}
