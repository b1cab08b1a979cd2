//! A fixed, engine-only command stream for profilers (perf, cachegrind).
//!
//! Run with `cargo run --release --example engine_profile -- [DEPTH] [OPS]
//! [WORKLOAD]` (defaults 100000, 1000000, mix). It fills the book to
//! `DEPTH` resting orders (bands as in `benches/engine.rs`), churns it
//! (cancel + place, `DEPTH` pairs) so slots are scattered as in a long
//! run, then applies `OPS` commands of the workload, in batches of 64
//! through `apply_batch` as the matching thread does, and prints ns/op. The
//! book has no finished-order history, as on the matching thread. Unlike
//! the bench there is no second engine and no model in the loop, so a
//! profile or a cache simulation shows the book alone; the stream is
//! generated before the timed loop.
//!
//! `ENGINE_PROFILE_CAPACITY` sets `order_capacity` (default 2^20, as the
//! bench and the service size the book).
//!
//! Workloads: `mix` (50% non-crossing place, 35% cancel of a random
//! resting order, 15% place crossing the opposite best level, capped at its
//! quantity), `cancel` (cancel + replacing place, both timed), `place`
//! (non-crossing place + cancel of a random order, both timed).

use std::collections::HashSet;
use std::time::Instant;

#[path = "../tests/support/xorshift.rs"]
#[allow(dead_code)]
mod xorshift;
use xorshift::Rng;

use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, OrderView, Side, TimeInForce,
};

const BAND: u64 = 500;
const MID: u64 = 1_000_000;

fn index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Generates commands and keeps the ids that rest, as the stream sees them.
struct Stream {
    rng: Rng,
    live: [Vec<u128>; 2],
    ts: u64,
}

impl Stream {
    fn place(&mut self, side: Side) -> Command {
        let k = self.rng.below(BAND) * self.rng.below(BAND) / BAND;
        let price = match side {
            Side::Buy => MID - 1 - k,
            Side::Sell => MID + 1 + k,
        };
        let id = ((self.rng.next() as u128) << 64) | self.rng.next() as u128;
        self.live[index(side)].push(id);
        let quantity = 1 + self.rng.below(100);
        self.command(CommandKind::Place {
            id,
            side,
            price,
            quantity,
            tif: TimeInForce::GoodTillCancel,
        })
    }

    fn cancel(&mut self, side: Side) -> Command {
        let live = &mut self.live[index(side)];
        let i = self.rng.below(live.len() as u64) as usize;
        let id = live.swap_remove(i);
        self.command(CommandKind::Cancel { id })
    }

    fn command(&mut self, kind: CommandKind) -> Command {
        self.ts += 1;
        Command { ts: self.ts, kind }
    }
}

fn apply(book: &mut OrderBook, sink: &mut Vec<Event>, command: &Command) {
    sink.clear();
    book.apply(command, sink);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let depth: usize = args.get(1).map_or(100_000, |a| a.parse().expect("DEPTH"));
    let ops: usize = args.get(2).map_or(1_000_000, |a| a.parse().expect("OPS"));
    let workload = args.get(3).map_or("mix", |a| a.as_str()).to_string();

    let mut book = OrderBook::new(BookConfig {
        order_capacity: std::env::var("ENGINE_PROFILE_CAPACITY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20),
        level_capacity: 4096,
        finished_capacity: 0,
        resident: true,
        sparse_index: true,
    });
    let mut sink: Vec<Event> = Vec::with_capacity(256);
    let mut stream = Stream {
        rng: Rng(0x9E37_79B9_7F4A_7C15),
        live: [Vec::new(), Vec::new()],
        ts: 0,
    };
    for i in 0..depth {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let command = stream.place(side);
        apply(&mut book, &mut sink, &command);
    }
    for _ in 0..depth {
        let side = stream.rng.side();
        let cancel = stream.cancel(side);
        apply(&mut book, &mut sink, &cancel);
        let place = stream.place(side);
        apply(&mut book, &mut sink, &place);
    }

    // A crossing order fills exactly one resting maker: the next one in
    // priority that this chunk has not yet targeted, found from the book
    // as it stood before the chunk. So 50% place, 35% cancel and 15% cross
    // keep the depth steady. Cancels skip the makers a cross will fill.
    const CHUNK: usize = 1024;
    let mut commands: Vec<Command> = Vec::with_capacity(CHUNK);
    let mut dead: HashSet<u128> = HashSet::new();
    let mut timed = std::time::Duration::ZERO;
    let mut rejected = 0usize;
    let mut done = 0;
    while done < ops {
        commands.clear();
        let n = CHUNK.min(ops - done);
        let mut targeted = [0usize; 2];
        // Best price placed in this chunk: [sell (lowest), buy (highest)].
        let mut placed_best = [u64::MAX, 0];
        // Cancelled in this chunk: still in the book it was generated from.
        let mut gone: HashSet<u128> = HashSet::new();
        while commands.len() < n {
            let side = stream.rng.side();
            match workload.as_str() {
                "mix" => {
                    let mut roll = stream.rng.below(100);
                    if roll < 50 && stream.live[index(side)].len() > depth / 2 {
                        // Keep the depth steady: this place becomes a cancel.
                        roll = 50;
                    }
                    if roll < 50 {
                        let place = stream.place(side);
                        if let CommandKind::Place { price, .. } = place.kind {
                            match side {
                                Side::Buy => placed_best[1] = placed_best[1].max(price),
                                Side::Sell => placed_best[0] = placed_best[0].min(price),
                            }
                        }
                        commands.push(place);
                    } else if roll < 85 {
                        loop {
                            let cancel = stream.cancel(side);
                            let CommandKind::Cancel { id } = cancel.kind else {
                                unreachable!()
                            };
                            if !dead.remove(&id) {
                                gone.insert(id);
                                commands.push(cancel);
                                break;
                            }
                        }
                    } else {
                        let opposite = side.opposite();
                        let j = &mut targeted[index(opposite)];
                        let maker = book
                            .resting(opposite)
                            .skip(*j)
                            .inspect(|_| *j += 1)
                            .find(|maker| !gone.contains(&maker.id));
                        // A place in this chunk ahead of the maker would
                        // take the fill instead: then place, not cross.
                        let ahead = |maker: &OrderView| match opposite {
                            Side::Buy => placed_best[1] > maker.price,
                            Side::Sell => placed_best[0] < maker.price,
                        };
                        if let Some(maker) = maker.filter(|m| !ahead(m)) {
                            dead.insert(maker.id);
                            let id = ((stream.rng.next() as u128) << 64) | 1;
                            commands.push(stream.command(CommandKind::Place {
                                id,
                                side,
                                price: maker.price,
                                quantity: maker.remaining(),
                                tif: TimeInForce::GoodTillCancel,
                            }));
                        } else {
                            commands.push(stream.place(side));
                        }
                    }
                }
                "cancel" | "place" => {
                    commands.push(stream.cancel(side));
                    commands.push(stream.place(side));
                }
                other => panic!("unknown workload {other}"),
            }
        }
        let start = Instant::now();
        // As the matching thread applies what it drains: batches of 64.
        for batch in commands.chunks(64) {
            book.apply_batch(std::hint::black_box(batch), &mut sink, |_, sink| {
                // The sink holds the previous command's events.
                if let Some(Event::Rejected { .. }) = sink.last() {
                    rejected += 1;
                }
                sink.clear();
            });
        }
        if let Some(Event::Rejected { .. }) = sink.last() {
            rejected += 1;
        }
        sink.clear();
        timed += start.elapsed();
        done += commands.len();
    }
    println!(
        "{workload} at {} resting: {:.1} ns/op over {done} ops ({rejected} rejected)",
        book.resting_count(),
        timed.as_nanos() as f64 / done as f64
    );
}
