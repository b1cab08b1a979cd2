//! The machine's floor for random memory access: what any book pays per
//! cache line it touches at random once the book outgrows the caches.
//!
//! `cargo run --release --example memory_floor -- [MiB ...]` (default
//! 1 4 16 64 256). For each size it fills a buffer of 64-byte lines linked
//! into one random cycle, then times:
//!
//! * `dependent`: following the cycle, each load needing the one before
//!   (the latency of one miss, as a cancel's index → slot → neighbour
//!   chain pays it without prefetching);
//! * `independent`: loads of random lines whose addresses are known ahead
//!   (what the best prefetching can reach: the latency divided by the
//!   misses the core keeps in flight).
//!
//! The engine's cost at depth is bounded below by its cold lines per
//! command times the `independent` figure of a buffer its size (a 1M-order
//! book: 64 MiB of slots and a 16 MiB id index); docs/BENCHMARKS.md
//! uses this to say how flat in depth a book with a hashed id index can be
//! on a given machine. 4 KiB pages by default; `MEMORY_FLOOR_HUGE=1`
//! advises each buffer `MADV_HUGEPAGE` first, as the matching thread's
//! resident book is (`--huge-pages`, on by default).

use std::hint::black_box;
use std::time::Instant;

#[path = "../tests/support/xorshift.rs"]
#[allow(dead_code)]
mod xorshift;
use xorshift::Rng;

/// One cache line: the first word is the index of the next line in the
/// cycle, the rest padding.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Line {
    next: u64,
    _pad: [u64; 7],
}

const LOADS: usize = 4_000_000;

fn main() {
    let sizes: Vec<usize> = {
        let given: Vec<usize> = std::env::args()
            .skip(1)
            .map(|a| a.parse().expect("sizes in MiB"))
            .collect();
        if given.is_empty() {
            vec![1, 4, 16, 64, 256]
        } else {
            given
        }
    };
    let huge = std::env::var("MEMORY_FLOOR_HUGE").is_ok_and(|v| v == "1");
    println!(
        "pages: {}",
        if huge {
            "2 MiB (MADV_HUGEPAGE)"
        } else {
            "4 KiB"
        }
    );
    println!("buffer MiB   dependent ns/load   independent ns/load");
    for mib in sizes {
        let lines = mib * (1 << 20) / 64;
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        // Sattolo's shuffle: one cycle through every line.
        let mut order: Vec<u32> = (0..lines as u32).collect();
        for i in (1..lines).rev() {
            let j = rng.below(i as u64) as usize;
            order.swap(i, j);
        }
        let mut buffer: Vec<Line> = Vec::with_capacity(lines);
        if huge {
            kevy_madvise::advise_hugepage(buffer.as_ptr().cast::<u8>(), lines * 64);
        }
        buffer.resize(
            lines,
            Line {
                next: 0,
                _pad: [1; 7],
            },
        );
        for (i, &at) in order.iter().enumerate() {
            buffer[at as usize].next = order[(i + 1) % lines] as u64;
        }

        let mut at = order[0] as usize;
        let started = Instant::now();
        for _ in 0..LOADS {
            at = buffer[at].next as usize;
        }
        let dependent = started.elapsed().as_nanos() as f64 / LOADS as f64;
        black_box(at);

        // Addresses from a sequential walk of `order` (prefetcher-friendly),
        // so only the random loads miss.
        let mut sum = 0u64;
        let started = Instant::now();
        for i in 0..LOADS {
            sum = sum.wrapping_add(buffer[order[i % lines] as usize]._pad[0]);
        }
        let independent = started.elapsed().as_nanos() as f64 / LOADS as f64;
        black_box(sum);
        println!("{mib:>10}   {dependent:>17.1}   {independent:>19.1}");
    }
}
