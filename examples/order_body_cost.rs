//! The cost of decoding a `POST /order/` body (`Wire::new_order`): JSON,
//! the price read exactly onto the tick grid, the quantity and the side.
//! Prints seven timings of 300,000 decodes of 1,000 varied bodies and the
//! best, in nanoseconds per body.
//!
//! `cargo run --release --example order_body_cost`

use std::hint::black_box;
use std::time::Instant;

use orderbook::api::{Symbol, TickSize, Wire};

fn main() {
    let wire = Wire {
        symbol: Symbol::parse("DEFAULT").expect("a symbol"),
        tick: TickSize::parse("0.01").expect("a tick"),
        max_quantity: 1_000_000_000,
    };
    let bodies: Vec<String> = (0..1000)
        .map(|i| {
            let side = if i % 2 == 0 { 1 } else { -1 };
            format!(
                r#"{{"quantity": {}, "price": {}.{:02}, "side": {side}}}"#,
                1 + i % 50,
                95 + i % 10,
                i % 100
            )
        })
        .collect();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..300 {
            for body in &bodies {
                let order = wire
                    .new_order(black_box(body.as_bytes()))
                    .expect("a good body");
                sum += black_box(order.price);
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / 300_000.0;
        black_box(sum);
        best = best.min(ns);
        print!("{ns:.1} ");
    }
    println!("| best {best:.1} ns per body");
}
