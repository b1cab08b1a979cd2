//! The matching engine under load, side by side with the `matchcore` crate.
//!
//! Run with `cargo bench --bench engine`. Criterion prints one line per
//! `<workload>/<depth>/<engine>` (e.g. `mix/100k/orderbook` and
//! `mix/100k/matchcore`); one criterion iteration is one measured command
//! and the throughput is `Elements(1)`, so `time` is ns/op and `thrpt` is
//! ops/s. After criterion, a summary table timed by this file itself (a
//! plain `Instant` loop over the same streams, median of 5 runs) is printed,
//! so the comparison is readable even when criterion's output is long.
//!
//! # Method
//!
//! * **Book shape.** `depth` resting orders (1k, 100k, 1M), half bids and
//!   half asks, over a band of [`BAND`] price levels per side next to a
//!   two-tick spread. A level's distance from the touch is the product of
//!   two uniform draws, so the density falls off away from the touch (as in
//!   real books) and every level of the band is used at depth. Quantities
//!   are 1..=100, ids random `u128`s.
//! * **Op stream.** A [`Model`] mirrors the book (per-level FIFO queues, no
//!   matching beyond FIFO fills at one level) and generates every command
//!   from a fixed-seed xorshift. Each engine's runner owns its own model with
//!   the same seed, so both engines see exactly the same command stream;
//!   criterion only takes different-length prefixes of it.
//! * **Timed batch, untimed restore.** The stream is a series of chunks: a
//!   batch of `K` measured commands (`K` = depth/32, clamped to 32..=1024)
//!   inside the `Instant` window of `iter_custom`, then untimed restoring
//!   commands that bring each side back to depth/2 resting orders (placing
//!   at random band prices, or cancelling random orders), so the depth stays
//!   steady (within `K`) however long criterion runs. All commands, timed
//!   or not, are encoded into each engine's own command type before the
//!   timed loop starts.
//! * **Setup is built once per group.** Each `<workload>/<depth>` group
//!   builds its books lazily on the first call (so a filter skips the
//!   build) and keeps them across all samples, warm-up included: our
//!   `OrderBook` is not `Clone` (matchcore's is), and a rolling steady state
//!   needs no rebuild.
//! * **Our sink.** One `Vec<Event>` is reused, cleared before each command.
//!   matchcore returns an owned `CommandOutcome` per command; dropping it
//!   (a `Vec` of trades when it traded) is part of its measured cost, as it
//!   is of any caller's.
//! * **Our configuration.** Our book is configured as the matching thread
//!   runs it (`order_capacity` 2^20, `level_capacity` 4096, no
//!   finished-order history: the replica keeps that; `resident`: slots and
//!   id index made resident on huge pages when built). Before measuring,
//!   every book is warmed up (untimed, same stream for both engines) with
//!   1,000,000 cancels of random resting orders, each followed by a place,
//!   so resting orders are scattered over the arena as in a long run.
//!   `ENGINE_BENCH_FINISHED=<n>` gives our book a history of `n` finished
//!   orders (each filled or cancelled order then pays the eviction of the
//!   oldest), `ENGINE_BENCH_WARMUP=<n>` sets the warm-up length.
//!   matchcore keeps no history.
//! * **Two ways to drive our book.** `orderbook` applies each timed batch
//!   with `OrderBook::apply_batch`, as the matching thread applies what it
//!   drains from its ring: past 16k resting orders it prefetches the memory
//!   of the commands a few places ahead. `orderbook-apply` calls `apply`
//!   once per command, as matchcore is driven. Both see the same stream.
//!
//! # Workloads (what one measured op is)
//!
//! * `place`: a non-crossing limit order at a random band price. Measured
//!   per op over the batch, then restored by cancelling random resting
//!   orders (untimed): the book grows by at most `K` during a batch.
//! * `cross`: a limit order priced at the opposite best level with quantity
//!   1..=100 capped at that level's total, so it fills completely against
//!   the best level only (one or more makers, the last maybe partially) and
//!   never rests. Fully filled makers are replaced untimed.
//! * `cancel`: a cancel of a random resting order; replaced untimed.
//! * `modify_qty`: a quantity decrease of a random resting order (keeps its
//!   queue position in both engines); each modified order is recycled
//!   (cancel + fresh place, untimed) so quantities do not drift to 1.
//! * `modify_price`: a move of a random resting order to another band price
//!   on its side (non-crossing; to the back of the new level's queue).
//! * `mix` (the headline): 50% non-crossing place, 35% cancel of a random
//!   resting order, 15% crossing place as in `cross`.
//!
//! # Mapping ids to matchcore
//!
//! matchcore gives every submitted order the id `OrderId(sequence_number)`
//! of its submit command, and rejects a command whose sequence number is
//! not exactly the last one plus one. The model therefore numbers every
//! command of the stream (prefill, timed and restoring alike) 0, 1, 2, ...
//! and records, for each resting order, both our random `u128` id and its
//! matchcore id (the sequence number of its place). Cancels and amends carry
//! the one each engine needs; all of it happens outside the timed region.
//!
//! matchcore 0.4.0 matches a crossing *limit* order with no price bound
//! (`submit.rs` passes `None` as the limit to `match_order`); capping the
//! taker's quantity at the best level's total keeps both engines doing the
//! same work.
//!
//! A correctness pass runs first: for every workload, at 1k and 10k resting,
//! both engines run a stream with every outcome checked (no rejection
//! anywhere), and after every batch and every restore their resting orders,
//! per-level quantities (and our trade count) must equal the model's; our
//! history is 5,000 there so its eviction runs inside the checked stream.
//!
//! The summary's `huge MiB` column is the process's memory on transparent
//! huge pages once a row's books were built. Our two books of a row are
//! then the only large resident memory, 2 x 128 MiB, so it says how much of
//! them the kernel could back with huge pages; the 1M rows are up to 20%
//! slower when it could not back them all. Later rows tend to get less (one
//! run: 244 MiB up to place at 1M, then 184, 152, 92, 92 and 126), so a 1M
//! row run alone (`ENGINE_BENCH_ONLY=mix/1M`) is nearer the service, whose
//! book is made resident at start.
//!
//! Knobs (environment): `ENGINE_BENCH_SUMMARY=0` skips the summary table,
//! `ENGINE_BENCH_CRITERION=0` skips criterion (summary only),
//! `ENGINE_BENCH_ONLY=<text>` keeps only the summary rows whose
//! `<workload>/<depth>` contains the text (e.g. `cancel/1k`; for profiling),
//! `ENGINE_BENCH_VALIDATE=0` skips the correctness pass (for profiling),
//! `ENGINE_BENCH_FINISHED=<n>` and `ENGINE_BENCH_WARMUP=<n>` as above.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use matchcore as mc;
use orderbook::engine::{BookConfig, Command, CommandKind, Event, OrderBook, Side, TimeInForce};

/// Price levels per side the resting orders spread over.
const BAND: u64 = 500;
/// The spread is two ticks: best bid `MID - 1`, best ask `MID + 1` when full.
const MID: u64 = 1_000_000;
/// Quantities are 1..=QTY_MAX.
const QTY_MAX: u64 = 100;
/// Seed of every model (both engines see the same stream).
const SEED: u64 = 0x2545_F491_4F6C_DD1D;

/// The depths benchmarked: resting orders, and the label in bench names.
const DEPTHS: [(usize, &str); 3] = [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")];

/// Commands per timed run of the summary table, and its measured runs.
const SUMMARY_OPS: u64 = 200_000;
const SUMMARY_RUNS: usize = 5;

// Randomness: xorshift64*, shared with the tests and examples.
#[path = "../tests/support/xorshift.rs"]
#[allow(dead_code)]
mod xorshift;
use xorshift::Rng;

// ---------------------------------------------------------------------------
// The command stream, engine-neutral.

/// One command of the stream, with the ids both engines need.
#[derive(Clone, Copy, Debug)]
enum Op {
    Place {
        ours: u128,
        side: Side,
        price: u64,
        qty: u64,
    },
    Cancel {
        ours: u128,
        theirs: u64,
    },
    Modify {
        ours: u128,
        theirs: u64,
        price: Option<u64>,
        /// Our API: the new total quantity, filled part included.
        total: Option<u64>,
        /// matchcore's API: the new remaining (visible) quantity.
        remaining: Option<u64>,
    },
}

/// An op at its place in the stream: `seq` is matchcore's sequence number
/// (and, for a place, the new order's matchcore id).
#[derive(Clone, Copy, Debug)]
struct Step {
    seq: u64,
    ts: u64,
    op: Op,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Place,
    Cross,
    Cancel,
    ModifyQty,
    ModifyPrice,
    Mix,
}

const WORKLOADS: [Workload; 6] = [
    Workload::Place,
    Workload::Cross,
    Workload::Cancel,
    Workload::ModifyQty,
    Workload::ModifyPrice,
    Workload::Mix,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Place => "place",
            Workload::Cross => "cross",
            Workload::Cancel => "cancel",
            Workload::ModifyQty => "modify_qty",
            Workload::ModifyPrice => "modify_price",
            Workload::Mix => "mix",
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

const SIDES: [Side; 2] = [Side::Buy, Side::Sell];

/// The price of band level `k` (0 = next to the spread) on `side`.
fn band_price(side: Side, k: u32) -> u64 {
    match side {
        Side::Buy => MID - 1 - k as u64,
        Side::Sell => MID + 1 + k as u64,
    }
}

const DEAD: u32 = u32::MAX;

/// The model's copy of one order. `pos` is its index in `live[side]`, or
/// `DEAD`; `stamp` tells its current queue entry from stale ones.
#[derive(Clone, Copy)]
struct MOrder {
    ours: u128,
    theirs: u64,
    filled: u64,
    remaining: u64,
    stamp: u32,
    pos: u32,
    k: u32,
    side: Side,
}

/// One level's FIFO of `(handle, stamp)`, with lazily dropped stale entries.
#[derive(Clone, Default)]
struct MLevel {
    queue: VecDeque<(u32, u32)>,
    alive: u32,
    total: u64,
}

/// A mirror of the book that generates the command stream.
#[derive(Clone)]
struct Model {
    rng: Rng,
    orders: Vec<MOrder>,
    free: Vec<u32>,
    live: [Vec<u32>; 2],
    levels: [Vec<MLevel>; 2],
    /// matchcore's next sequence number.
    seq: u64,
    stamp: u32,
    /// Maker fills so far: the trades our engine must have reported.
    fills: u64,
}

impl Model {
    fn new(seed: u64) -> Self {
        Model {
            rng: Rng::new(seed),
            orders: Vec::new(),
            free: Vec::new(),
            live: [Vec::new(), Vec::new()],
            levels: [
                vec![MLevel::default(); BAND as usize],
                vec![MLevel::default(); BAND as usize],
            ],
            seq: 0,
            stamp: 0,
            fills: 0,
        }
    }

    fn live_count(&self) -> usize {
        self.live[0].len() + self.live[1].len()
    }

    fn push(&mut self, op: Op, out: &mut Vec<Step>) {
        out.push(Step {
            seq: self.seq,
            ts: self.seq + 1,
            op,
        });
        self.seq += 1;
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        self.stamp
    }

    /// A band level, denser near the touch.
    fn random_level(&mut self) -> u32 {
        let a = self.rng.below(BAND);
        let b = self.rng.below(BAND);
        (a * b / BAND) as u32
    }

    fn valid(&self, (handle, stamp): (u32, u32)) -> bool {
        let order = &self.orders[handle as usize];
        order.pos != DEAD && order.stamp == stamp
    }

    fn compact(&mut self, s: usize, k: u32) {
        let orders = &self.orders;
        let level = &mut self.levels[s][k as usize];
        if level.queue.len() > 2 * level.alive as usize + 64 {
            level.queue.retain(|&(h, st)| {
                let o = &orders[h as usize];
                o.pos != DEAD && o.stamp == st
            });
        }
    }

    /// Takes an order out of the model (filled or cancelled).
    fn kill(&mut self, handle: u32) {
        let order = self.orders[handle as usize];
        let s = side_index(order.side);
        let live = &mut self.live[s];
        let last = *live.last().expect("a live order is listed");
        live.swap_remove(order.pos as usize);
        if last != handle {
            self.orders[last as usize].pos = order.pos;
        }
        self.orders[handle as usize].pos = DEAD;
        let level = &mut self.levels[s][order.k as usize];
        level.alive -= 1;
        level.total -= order.remaining;
        self.free.push(handle);
        self.compact(s, order.k);
    }

    /// A non-crossing place on `side` at a random band level.
    fn place_on(&mut self, side: Side, out: &mut Vec<Step>) {
        let k = self.random_level();
        let qty = 1 + self.rng.below(QTY_MAX);
        let ours = self.rng.id();
        let stamp = self.next_stamp();
        let s = side_index(side);
        let order = MOrder {
            ours,
            theirs: self.seq,
            filled: 0,
            remaining: qty,
            stamp,
            pos: self.live[s].len() as u32,
            k,
            side,
        };
        let handle = match self.free.pop() {
            Some(h) => {
                self.orders[h as usize] = order;
                h
            }
            None => {
                self.orders.push(order);
                (self.orders.len() - 1) as u32
            }
        };
        self.live[s].push(handle);
        let level = &mut self.levels[s][k as usize];
        level.queue.push_back((handle, stamp));
        level.alive += 1;
        level.total += qty;
        self.push(
            Op::Place {
                ours,
                side,
                price: band_price(side, k),
                qty,
            },
            out,
        );
    }

    fn place(&mut self, out: &mut Vec<Step>) {
        let side = self.rng.side();
        self.place_on(side, out);
    }

    fn cancel_handle(&mut self, handle: u32, out: &mut Vec<Step>) {
        let order = self.orders[handle as usize];
        self.kill(handle);
        self.push(
            Op::Cancel {
                ours: order.ours,
                theirs: order.theirs,
            },
            out,
        );
    }

    /// Cancels a random resting order of `side`; false when it has none.
    fn cancel_on(&mut self, side: Side, out: &mut Vec<Step>) -> bool {
        let s = side_index(side);
        if self.live[s].is_empty() {
            return false;
        }
        let index = self.rng.below(self.live[s].len() as u64) as usize;
        let handle = self.live[s][index];
        self.cancel_handle(handle, out);
        true
    }

    fn cancel(&mut self, out: &mut Vec<Step>) {
        let side = self.rng.side();
        if !self.cancel_on(side, out) {
            self.cancel_on(side.opposite(), out);
        }
    }

    /// A taker at the opposite best price, for at most that level's total.
    fn cross(&mut self, out: &mut Vec<Step>) {
        let taker_side = self.rng.side();
        let m = side_index(taker_side.opposite());
        let Some(k) = self.levels[m].iter().position(|l| l.alive > 0) else {
            self.place(out);
            return;
        };
        let qty = (1 + self.rng.below(QTY_MAX)).min(self.levels[m][k].total);
        let ours = self.rng.id();
        self.push(
            Op::Place {
                ours,
                side: taker_side,
                price: band_price(taker_side.opposite(), k as u32),
                qty,
            },
            out,
        );
        let mut left = qty;
        while left > 0 {
            let entry = *self.levels[m][k].queue.front().expect("level has makers");
            if !self.valid(entry) {
                self.levels[m][k].queue.pop_front();
                continue;
            }
            let handle = entry.0;
            let remaining = self.orders[handle as usize].remaining;
            self.fills += 1;
            if remaining <= left {
                left -= remaining;
                self.levels[m][k].queue.pop_front();
                self.kill(handle);
            } else {
                let order = &mut self.orders[handle as usize];
                order.remaining -= left;
                order.filled += left;
                self.levels[m][k].total -= left;
                left = 0;
            }
        }
    }

    /// A random resting order with at least `min_remaining` left.
    fn pick(&mut self, min_remaining: u64) -> Option<u32> {
        for _ in 0..64 {
            let s = side_index(self.rng.side());
            if self.live[s].is_empty() {
                continue;
            }
            let index = self.rng.below(self.live[s].len() as u64) as usize;
            let handle = self.live[s][index];
            if self.orders[handle as usize].remaining >= min_remaining {
                return Some(handle);
            }
        }
        None
    }

    /// Decreases a random order's quantity, in place.
    fn modify_qty(&mut self, out: &mut Vec<Step>, touched: &mut Vec<(u32, u32)>) {
        let Some(handle) = self.pick(2) else {
            self.place(out);
            return;
        };
        let remaining = self.orders[handle as usize].remaining;
        let new_remaining = 1 + self.rng.below(remaining - 1);
        let order = &mut self.orders[handle as usize];
        order.remaining = new_remaining;
        let order = *order;
        self.levels[side_index(order.side)][order.k as usize].total -= remaining - new_remaining;
        touched.push((handle, order.stamp));
        self.push(
            Op::Modify {
                ours: order.ours,
                theirs: order.theirs,
                price: None,
                total: Some(order.filled + new_remaining),
                remaining: Some(new_remaining),
            },
            out,
        );
    }

    /// Moves a random order to another band level of its side.
    fn modify_price(&mut self, out: &mut Vec<Step>) {
        let Some(handle) = self.pick(1) else {
            self.place(out);
            return;
        };
        let order = self.orders[handle as usize];
        let mut k = self.random_level();
        while k == order.k {
            k = self.random_level();
        }
        let s = side_index(order.side);
        let stamp = self.next_stamp();
        {
            let old = &mut self.levels[s][order.k as usize];
            old.alive -= 1;
            old.total -= order.remaining;
        }
        {
            let moved = &mut self.orders[handle as usize];
            moved.k = k;
            moved.stamp = stamp;
        }
        self.compact(s, order.k);
        let new = &mut self.levels[s][k as usize];
        new.queue.push_back((handle, stamp));
        new.alive += 1;
        new.total += order.remaining;
        self.push(
            Op::Modify {
                ours: order.ours,
                theirs: order.theirs,
                price: Some(band_price(order.side, k)),
                total: None,
                remaining: None,
            },
            out,
        );
    }

    /// The measured part of a chunk: `n` commands of `workload`.
    fn batch(
        &mut self,
        workload: Workload,
        n: usize,
        out: &mut Vec<Step>,
        touched: &mut Vec<(u32, u32)>,
    ) {
        for _ in 0..n {
            match workload {
                Workload::Place => self.place(out),
                Workload::Cross => self.cross(out),
                Workload::Cancel => self.cancel(out),
                Workload::ModifyQty => self.modify_qty(out, touched),
                Workload::ModifyPrice => self.modify_price(out),
                Workload::Mix => match self.rng.below(100) {
                    0..50 => self.place(out),
                    50..85 => self.cancel(out),
                    _ => self.cross(out),
                },
            }
        }
    }

    /// The untimed part of a chunk: recycle modified orders, then bring each
    /// side back to `depth / 2` resting orders.
    fn restore(&mut self, depth: usize, touched: &[(u32, u32)], out: &mut Vec<Step>) {
        for &entry in touched {
            if self.valid(entry) {
                let side = self.orders[entry.0 as usize].side;
                self.cancel_handle(entry.0, out);
                self.place_on(side, out);
            }
        }
        for side in SIDES {
            let s = side_index(side);
            while self.live[s].len() < depth / 2 {
                self.place_on(side, out);
            }
            while self.live[s].len() > depth / 2 {
                self.cancel_on(side, out);
            }
        }
    }

    /// Aggregated levels, `(side, price, quantity)`, bids best first then
    /// asks best first.
    fn profile(&self) -> Vec<(usize, u64, u64)> {
        let mut levels = Vec::new();
        for side in SIDES {
            let s = side_index(side);
            for (k, level) in self.levels[s].iter().enumerate() {
                if level.alive > 0 {
                    levels.push((s, band_price(side, k as u32), level.total));
                }
            }
        }
        levels
    }
}

// ---------------------------------------------------------------------------
// The two engines behind one interface.

trait Engine {
    type Cmd;
    const NAME: &'static str;
    /// A book keeping `history` finished orders, where the engine keeps any.
    fn new(history: usize) -> Self;
    /// Checks once the book is built and warmed.
    fn prepared(&self, _warmup: usize) {}
    fn encode(step: &Step) -> Self::Cmd;
    /// The timed loop.
    fn run(&mut self, cmds: &[Self::Cmd]);
    /// The same, counting rejected commands.
    fn run_checked(&mut self, cmds: &[Self::Cmd]) -> usize;
    fn resting(&self) -> usize;
    /// Same shape as [`Model::profile`].
    fn profile(&self) -> Vec<(usize, u64, u64)>;
    /// Trades reported so far, where the engine counts them.
    fn trades(&self) -> Option<u64> {
        None
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Our book's `finished_capacity`: none, as on the matching thread,
/// unless overridden.
fn finished_capacity() -> usize {
    env_usize("ENGINE_BENCH_FINISHED", 0)
}

/// Warm-up cancel + place pairs before measuring: 1,000,000, enough to
/// scatter even the 1M book, or to turn a 1M history over once.
fn warmup() -> usize {
    env_usize("ENGINE_BENCH_WARMUP", 1_000_000)
}

/// Our engine, configured as the service runs it. `BATCHED`: each timed
/// batch goes through `apply_batch` (the matching thread's path, with its
/// lookahead), else through `apply` one command at a time.
struct Ours<const BATCHED: bool> {
    book: OrderBook,
    sink: Vec<Event>,
    finished_capacity: usize,
}

type OursBatched = Ours<true>;
type OursOneByOne = Ours<false>;

impl<const BATCHED: bool> Engine for Ours<BATCHED> {
    type Cmd = Command;
    const NAME: &'static str = if BATCHED {
        "orderbook"
    } else {
        "orderbook-apply"
    };

    fn new(finished_capacity: usize) -> Self {
        Ours {
            book: OrderBook::new(BookConfig {
                order_capacity: 1 << 20,
                level_capacity: 4096,
                finished_capacity,
                resident: true,
                sparse_index: true,
            }),
            sink: Vec::with_capacity(256),
            finished_capacity,
        }
    }

    /// The warm-up has filled the finished-order history.
    fn prepared(&self, warmup: usize) {
        let expected = self.finished_capacity.min(warmup);
        assert_eq!(self.book.finished_count(), expected);
    }

    fn encode(step: &Step) -> Command {
        let kind = match step.op {
            Op::Place {
                ours,
                side,
                price,
                qty,
            } => CommandKind::Place {
                id: ours,
                side,
                price,
                quantity: qty,
                tif: TimeInForce::GoodTillCancel,
            },
            Op::Cancel { ours, .. } => CommandKind::Cancel { id: ours },
            Op::Modify {
                ours, price, total, ..
            } => CommandKind::Modify {
                id: ours,
                price,
                quantity: total,
            },
        };
        Command { ts: step.ts, kind }
    }

    #[inline(never)]
    fn run(&mut self, cmds: &[Command]) {
        let sink = &mut self.sink;
        if BATCHED {
            self.book
                .apply_batch(black_box(cmds), sink, |_, sink| sink.clear());
        } else {
            for cmd in cmds {
                sink.clear();
                self.book.apply(black_box(cmd), sink);
            }
        }
        black_box(&*sink);
    }

    fn run_checked(&mut self, cmds: &[Command]) -> usize {
        let mut rejected = 0;
        for cmd in cmds {
            self.sink.clear();
            self.book.apply(cmd, &mut self.sink);
            if let Some(Event::Rejected { reason, .. }) = self.sink.last() {
                if rejected == 0 {
                    eprintln!("orderbook rejected {cmd:?}: {reason}");
                }
                rejected += 1;
            }
        }
        rejected
    }

    fn resting(&self) -> usize {
        self.book.resting_count()
    }

    fn profile(&self) -> Vec<(usize, u64, u64)> {
        let mut levels = Vec::new();
        for side in SIDES {
            let mut side_levels: Vec<_> = self
                .book
                .levels(side)
                .map(|l| (side_index(side), l.price, l.quantity))
                .collect();
            // The model lists band levels nearest the touch first.
            side_levels.sort_by_key(|&(_, price, _)| price.abs_diff(MID));
            levels.extend(side_levels);
        }
        levels
    }

    fn trades(&self) -> Option<u64> {
        Some(self.book.last_trade_id())
    }
}

/// matchcore's book.
struct Theirs {
    book: mc::OrderBook,
}

fn mc_side(side: Side) -> mc::Side {
    match side {
        Side::Buy => mc::Side::Buy,
        Side::Sell => mc::Side::Sell,
    }
}

impl Engine for Theirs {
    type Cmd = mc::Command;
    const NAME: &'static str = "matchcore";

    fn new(_history: usize) -> Self {
        Theirs {
            book: mc::OrderBook::new("BENCH"),
        }
    }

    fn encode(step: &Step) -> mc::Command {
        let kind = match step.op {
            Op::Place {
                side, price, qty, ..
            } => mc::CommandKind::Submit(mc::SubmitCmd {
                order: mc::NewOrder::Limit(mc::LimitOrder::new(
                    mc::Price(price),
                    mc::QuantityPolicy::Standard {
                        quantity: mc::Quantity(qty),
                    },
                    mc::OrderFlags::new(mc_side(side), false, mc::TimeInForce::Gtc),
                )),
            }),
            Op::Cancel { theirs, .. } => mc::CommandKind::Cancel(mc::CancelCmd {
                order_id: mc::OrderId(theirs),
                order_kind: mc::OrderKind::Limit,
            }),
            Op::Modify {
                theirs,
                price,
                remaining,
                ..
            } => {
                let mut patch = mc::LimitOrderPatch::new();
                if let Some(price) = price {
                    patch = patch.with_price(mc::Price(price));
                }
                if let Some(quantity) = remaining {
                    patch = patch.with_quantity_policy(mc::QuantityPolicy::Standard {
                        quantity: mc::Quantity(quantity),
                    });
                }
                mc::CommandKind::Amend(mc::AmendCmd {
                    order_id: mc::OrderId(theirs),
                    patch: mc::AmendPatch::Limit(patch),
                })
            }
        };
        mc::Command {
            meta: mc::CommandMeta {
                sequence_number: mc::SequenceNumber(step.seq),
                timestamp: mc::Timestamp(step.ts),
            },
            kind,
        }
    }

    #[inline(never)]
    fn run(&mut self, cmds: &[mc::Command]) {
        for cmd in cmds {
            black_box(self.book.execute(black_box(cmd)));
        }
    }

    fn run_checked(&mut self, cmds: &[mc::Command]) -> usize {
        let mut rejected = 0;
        for cmd in cmds {
            if let mc::CommandOutcome::Rejected(failure) = self.book.execute(cmd) {
                if rejected == 0 {
                    eprintln!("matchcore rejected {cmd:?}: {failure}");
                }
                rejected += 1;
            }
        }
        rejected
    }

    fn resting(&self) -> usize {
        self.book.limit().orders().len()
    }

    fn profile(&self) -> Vec<(usize, u64, u64)> {
        let limit = self.book.limit();
        let quantity = |id: &usize| limit.levels()[*id].total_quantity().0;
        let bids = limit
            .bids()
            .iter()
            .rev()
            .map(|(price, id)| (0, price.0, quantity(id)));
        let asks = limit
            .asks()
            .iter()
            .map(|(price, id)| (1, price.0, quantity(id)));
        bids.chain(asks).collect()
    }
}

// ---------------------------------------------------------------------------
// A book of one engine with its model, advancing through the stream.

struct Runner<E: Engine> {
    engine: E,
    model: Model,
    workload: Workload,
    depth: usize,
    batch: usize,
    steps: Vec<Step>,
    touched: Vec<(u32, u32)>,
    timed: Vec<E::Cmd>,
    untimed: Vec<E::Cmd>,
}

impl<E: Engine> Runner<E> {
    /// Pre-fills a book with `depth` resting orders, then warms it up with
    /// `warmup` cancels of random resting orders, each followed by a place
    /// on the same side (all untimed, the same stream for both engines).
    ///
    /// The warm-up is what a long run leaves behind: our finished-order
    /// history full (capacity `history`) of orders that finished in an
    /// order unrelated to their slots, and resting orders scattered over
    /// the arena. Without it our engine looks faster for its first
    /// `history` finished orders (evictions walk slots in order, resting
    /// orders sit packed in the first slots); criterion's long runs would
    /// then disagree with a short timing. `warmup` >= `history` suffices.
    fn new(workload: Workload, depth: usize, history: usize, warmup: usize) -> Self {
        let mut runner = Runner {
            engine: E::new(history),
            model: Model::new(SEED),
            workload,
            depth,
            batch: (depth / 32).clamp(32, 1024),
            steps: Vec::new(),
            touched: Vec::new(),
            timed: Vec::new(),
            untimed: Vec::new(),
        };
        let mut placed = 0;
        while placed < depth {
            let n = (depth - placed).min(1 << 16);
            runner.steps.clear();
            for i in placed..placed + n {
                runner.model.place_on(SIDES[i % 2], &mut runner.steps);
            }
            placed += n;
            runner.apply_steps();
        }
        let mut churned = 0;
        while churned < warmup {
            let n = (warmup - churned).min(1 << 15);
            runner.steps.clear();
            for _ in 0..n {
                let side = runner.model.rng.side();
                runner.model.cancel_on(side, &mut runner.steps);
                runner.model.place_on(side, &mut runner.steps);
            }
            churned += n;
            runner.apply_steps();
        }
        runner.engine.prepared(warmup);
        runner
    }

    /// Encodes and applies `steps` (untimed).
    fn apply_steps(&mut self) {
        self.untimed.clear();
        self.untimed.extend(self.steps.iter().map(E::encode));
        self.engine.run(&self.untimed);
    }

    /// Generates and encodes the next `n` measured commands.
    fn next_batch(&mut self, n: usize) {
        self.steps.clear();
        self.touched.clear();
        self.model
            .batch(self.workload, n, &mut self.steps, &mut self.touched);
        self.timed.clear();
        self.timed.extend(self.steps.iter().map(E::encode));
    }

    /// Generates and encodes the commands restoring the book after a batch.
    fn next_restore(&mut self) {
        self.steps.clear();
        self.model
            .restore(self.depth, &self.touched, &mut self.steps);
        self.untimed.clear();
        self.untimed.extend(self.steps.iter().map(E::encode));
    }

    /// Runs the next `ops` measured commands; returns only their time.
    fn run(&mut self, ops: u64) -> Duration {
        let mut left = ops;
        let mut total = Duration::ZERO;
        while left > 0 {
            let n = left.min(self.batch as u64) as usize;
            self.next_batch(n);
            let start = Instant::now();
            self.engine.run(&self.timed);
            total += start.elapsed();
            self.next_restore();
            self.engine.run(&self.untimed);
            left -= n as u64;
        }
        total
    }

    /// Runs `ops` measured commands checking every outcome, and the book
    /// against the model after every batch and every restore.
    fn run_checked(&mut self, ops: u64) {
        let what = format!("{}/{}/{}", self.workload.name(), self.depth, E::NAME);
        let mut left = ops;
        while left > 0 {
            let n = left.min(self.batch as u64) as usize;
            self.next_batch(n);
            assert_eq!(self.engine.run_checked(&self.timed), 0, "{what}: rejected");
            self.check(&what);
            self.next_restore();
            assert_eq!(
                self.engine.run_checked(&self.untimed),
                0,
                "{what}: rejected"
            );
            self.check(&what);
            assert_eq!(self.engine.resting(), self.depth, "{what}: resting orders");
            left -= n as u64;
        }
    }

    fn check(&self, what: &str) {
        assert_eq!(
            self.engine.resting(),
            self.model.live_count(),
            "{what}: resting"
        );
        assert!(
            self.engine.profile() == self.model.profile(),
            "{what}: level quantities differ from the model's"
        );
        if let Some(trades) = self.engine.trades() {
            assert_eq!(trades, self.model.fills, "{what}: trades");
        }
    }
}

// ---------------------------------------------------------------------------

/// Both engines must accept every command of every workload's stream and
/// end with the model's resting orders and level quantities.
fn validate() {
    fn check<E: Engine>(workload: Workload, depth: usize) {
        // A small history, so its eviction runs within the checked stream.
        Runner::<E>::new(workload, depth, 5_000, 5_000).run_checked(20_000);
    }
    for workload in WORKLOADS {
        for depth in [1_000, 10_000] {
            check::<OursOneByOne>(workload, depth);
            check::<Theirs>(workload, depth);
        }
    }
}

fn criterion_benches(c: &mut Criterion, depths: &[(usize, &str)]) {
    let (history, warmup) = (finished_capacity(), warmup());
    for &(depth, label) in depths {
        for workload in WORKLOADS {
            let mut group = c.benchmark_group(format!("{}/{label}", workload.name()));
            group
                .throughput(Throughput::Elements(1))
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(if depth >= 100_000 { 3 } else { 2 }));
            let mut ours: Option<Runner<OursBatched>> = None;
            group.bench_function(OursBatched::NAME, |b| {
                let runner =
                    ours.get_or_insert_with(|| Runner::new(workload, depth, history, warmup));
                b.iter_custom(|iters| runner.run(iters));
            });
            drop(ours);
            let mut one_by_one: Option<Runner<OursOneByOne>> = None;
            group.bench_function(OursOneByOne::NAME, |b| {
                let runner =
                    one_by_one.get_or_insert_with(|| Runner::new(workload, depth, history, warmup));
                b.iter_custom(|iters| runner.run(iters));
            });
            drop(one_by_one);
            let mut theirs: Option<Runner<Theirs>> = None;
            group.bench_function(Theirs::NAME, |b| {
                let runner =
                    theirs.get_or_insert_with(|| Runner::new(workload, depth, history, warmup));
                b.iter_custom(|iters| runner.run(iters));
            });
            drop(theirs);
            group.finish();
        }
    }
}

/// ns/op of our engine (batched, then one command at a time) and of
/// matchcore on freshly built books: one warm-up run, then the median of
/// `SUMMARY_RUNS` timed runs of `SUMMARY_OPS` commands each, the engines'
/// runs interleaved so machine noise hits them alike.
/// The process's anonymous memory on transparent huge pages, in MiB
/// (`AnonHugePages` of `/proc/self/smaps_rollup`), if the kernel says.
fn anon_huge_mib() -> Option<f64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A row's medians (ours batched, ours one by one, matchcore) and the
/// process's huge-page memory once its books were built (our two books are
/// the only large resident ones then).
fn summary_ns(workload: Workload, depth: usize) -> ([f64; 3], Option<f64>) {
    let (history, warmup) = (finished_capacity(), warmup());
    let mut batched = Runner::<OursBatched>::new(workload, depth, history, warmup);
    let mut one_by_one = Runner::<OursOneByOne>::new(workload, depth, history, warmup);
    let mut theirs = Runner::<Theirs>::new(workload, depth, history, warmup);
    let huge = anon_huge_mib();
    let per_op = |d: Duration| d.as_nanos() as f64 / SUMMARY_OPS as f64;
    let mut runs: Vec<[f64; 3]> = Vec::new();
    for _ in 0..=SUMMARY_RUNS {
        runs.push([
            per_op(batched.run(SUMMARY_OPS)),
            per_op(one_by_one.run(SUMMARY_OPS)),
            per_op(theirs.run(SUMMARY_OPS)),
        ]);
    }
    runs.remove(0); // the warm-up run
    let medians = std::array::from_fn(|k| {
        let mut column: Vec<f64> = runs.iter().map(|r| r[k]).collect();
        column.sort_by(f64::total_cmp);
        column[SUMMARY_RUNS / 2]
    });
    (medians, huge)
}

fn summary(depths: &[(usize, &str)]) {
    println!();
    println!(
        "Summary (own timing: median of {SUMMARY_RUNS} runs x {SUMMARY_OPS} ops after one \
         warm-up run, the engines' runs interleaved; `ours` = apply_batch as the matching \
         thread runs it, `apply` = our engine one command at a time; ratio = matchcore ns / \
         ours ns, above 1 = orderbook faster; orderbook finished history = {}; huge MiB = \
         the process's memory on transparent huge pages once the row's books were built: \
         the 1M rows are faster the more of our two books it covers)",
        finished_capacity()
    );
    println!(
        "{:<13} {:>6} {:>11} {:>11} {:>11} {:>7} {:>14} {:>14} {:>9}",
        "workload",
        "depth",
        "ours ns/op",
        "apply ns/op",
        "mc ns/op",
        "ratio",
        "ours ops/s",
        "mc ops/s",
        "huge MiB"
    );
    let mut rows: Vec<(Workload, usize, [f64; 3])> = Vec::new();
    let only = std::env::var("ENGINE_BENCH_ONLY").unwrap_or_default();
    for &(depth, label) in depths {
        for workload in WORKLOADS {
            if !format!("{}/{label}", workload.name()).contains(&only) {
                continue;
            }
            let (ns, huge) = summary_ns(workload, depth);
            let [ours, apply, theirs] = ns;
            println!(
                "{:<13} {:>6} {:>11.1} {:>11.1} {:>11.1} {:>7.2} {:>14.0} {:>14.0} {:>9}",
                workload.name(),
                label,
                ours,
                apply,
                theirs,
                theirs / ours,
                1e9 / ours,
                1e9 / theirs,
                huge.map_or("-".to_owned(), |mib| format!("{mib:.0}"))
            );
            rows.push((workload, depth, ns));
        }
    }
    let (small, large) = (depths[0], depths[depths.len() - 1]);
    if small.0 == large.0 || !only.is_empty() {
        return;
    }
    println!();
    println!(
        "{} resting vs {} resting (ns/op ratio; within 20% means <= 1.20):",
        large.1, small.1
    );
    for workload in WORKLOADS {
        let find = |depth| {
            rows.iter()
                .find(|r| r.0 == workload && r.1 == depth)
                .map(|r| r.2)
                .expect("row measured")
        };
        let (at_small, at_large) = (find(small.0), find(large.0));
        let verdict = |k: usize| {
            let r = at_large[k] / at_small[k];
            let word = if r <= 1.2 {
                "within 20%"
            } else {
                "NOT within 20%"
            };
            format!("{r:>5.2} ({word:<14})")
        };
        println!(
            "  {:<13} ours {}  apply {}  matchcore {}",
            workload.name(),
            verdict(0),
            verdict(1),
            verdict(2)
        );
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).map_or(true, |v| v != "0")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // As criterion decides: benchmarking needs `--bench` (which `cargo
    // bench` passes) without `--test`; `cargo test --benches` only smoke-runs.
    let benchmarking = has("--bench") && !has("--test") && !has("--list");
    let depths: &[(usize, &str)] = if benchmarking || has("--list") {
        &DEPTHS
    } else {
        &DEPTHS[..1]
    };

    if !has("--list") && env_flag("ENGINE_BENCH_VALIDATE") {
        validate();
    }
    if env_flag("ENGINE_BENCH_CRITERION") {
        let mut criterion = Criterion::default().configure_from_args();
        criterion_benches(&mut criterion, depths);
        criterion.final_summary();
    }
    if benchmarking && env_flag("ENGINE_BENCH_SUMMARY") {
        summary(depths);
    }
}
