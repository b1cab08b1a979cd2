//! The matching thread: the only owner of the order book. It drains the
//! command ring in batches, applies each command, and publishes the events
//! on the output ring, where every reader (responses, replica, publisher)
//! sees all of them in order.
//!
//! It never locks, allocates, reads a clock or makes a system call on its
//! steady-state path: commands carry their ids and timestamps, and the rings
//! were sized when built. A full output ring makes it wait (back-pressure,
//! counted by the ring), never drop an event.

use std::io;
use std::thread::{self, JoinHandle};

use crate::api::{ClientOrderId, PageFrom};
use crate::engine::{Command, Event, EventSink, OrderBook, OrderId, Side, Timestamp};

use crate::ring::{Consumer, Publisher, WaitResult};

/// What the front asks of the matching thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Apply a command to the book.
    Apply(Command),
    /// A mark in the stream, passed through untouched, so a reader can act
    /// at exactly this point (e.g. list the book as of here).
    Barrier(Barrier),
}

// The rings carry these by value, so their size is every slot's: a
// barrier or an event that grew would cost every command, so neither
// grows unnoticed (a new barrier's fields must fit beside the others).
const _: () = assert!(std::mem::size_of::<Request>() == 80);
const _: () = assert!(std::mem::size_of::<Output>() == 96);

/// A numbered mark in the stream and what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Barrier {
    /// The front's number for the request waiting on it.
    pub ticket: u64,
    /// Which reader acts on it.
    pub purpose: BarrierPurpose,
}

/// What a [`Barrier`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarrierPurpose {
    /// A page of the kept trades as of this point (the book replica
    /// answers: it keeps the trades, for the state file and candles too).
    /// (Its fields are laid out so that it fits a ring slot: see
    /// [`crate::api::TradesPage::parts`].)
    Trades {
        /// Trades at most (a larger `?limit=` asks for them all).
        limit: u32,
        /// Only `order`'s trades (`?order_id=`), or every order's.
        only_order: bool,
        /// The order of `only_order` (an id no order has, such as
        /// [`crate::api::NO_ORDER`], finds none).
        order: OrderId,
        /// Which page: the newest, or from `trade` (`?after=`,
        /// `?before=`).
        from: PageFrom,
        /// The `unique_id` of the trade the page starts from.
        trade: u128,
    },
    /// The resting orders as of this point, the first `limit` of each
    /// side in priority order (the book replica answers).
    Orders {
        /// Orders per side at most (`usize::MAX`: all).
        limit: usize,
        /// Only this side's (the other listed empty), or both.
        side: Option<Side>,
        /// Only the orders whose `client_order_id` starts with this.
        prefix: Option<ClientOrderId>,
    },
    /// One order, resting or finished, as of this point (the book replica
    /// answers: it keeps the finished-order history, so the matching
    /// thread does not).
    Order(OrderId),
    /// The top `depth` aggregated levels per side (0 = all) as of this
    /// point, with the feed `seq` they include (the book replica answers).
    Book {
        /// Levels per side, 0 for every level.
        depth: usize,
    },
    /// The newest `limit` candles of `interval` seconds over the trades
    /// kept, as of this point (the book replica answers: it keeps the
    /// trades, with a candle for each second of them).
    Candles {
        /// Seconds a candle covers.
        interval: u64,
        /// Candles at most.
        limit: usize,
        /// Only candles that start before this time (ns), if given.
        end: Option<Timestamp>,
    },
    /// The best bid and ask, the last trade and the last 24 hours' trading
    /// as of this point, `now` being the front's clock at the request (the
    /// book replica answers: it has both the book and the trades).
    Ticker {
        /// When the request came, in ns since the epoch.
        now: Timestamp,
    },
    /// Write the state file as of this point (the replica acts; nobody is
    /// answered).
    Snapshot,
    /// The resting orders a WebSocket connection starts to follow (all, or
    /// those whose name starts with `prefix`) as of this point: the
    /// replica sends them down the `orders` channel's path, ahead of every
    /// change after this point.
    OrderSnapshot {
        /// Only the orders whose `client_order_id` starts with this.
        prefix: Option<ClientOrderId>,
    },
    /// The ids of the resting orders whose `client_order_id` starts with
    /// `prefix` as of this point, bids then asks, best first: the orders
    /// `DELETE /orders?client_order_id_prefix=` then cancels (the replica
    /// answers; only it knows names and the book together).
    Named {
        /// Only this side's, or both.
        side: Option<Side>,
        /// The names' prefix.
        prefix: ClientOrderId,
    },
    /// A clean stop's end of the feed: the publisher, and the replica on
    /// the `orders` channels' path, each send the front a last marker
    /// after every message of the commands before it, so the front
    /// closes its subscribers only once they have all of them.
    FeedEnd,
}

/// What the matching thread publishes. Each [`Request`] yields exactly one
/// *closing* item for the front: an outcome [`Event`] or a `Barrier`. An `Apply` first republishes its `Command` (so readers can
/// journal it or re-apply it to a copy of the book), then the command's
/// events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The command about to be applied.
    Command(Command),
    /// One of the engine's events.
    Event(Event),
    /// A [`Request::Barrier`] passed through.
    Barrier(Barrier),
}

impl Output {
    /// True for the one item that answers each request.
    pub fn is_closing(&self) -> bool {
        match self {
            Output::Command(_) => false,
            Output::Event(event) => event.is_outcome(),
            Output::Barrier(_) => true,
        }
    }
}

/// Most commands applied before their events are published: bounds how long
/// the first event of a batch waits for the batch's one release store.
const BATCH: usize = 64;

/// Writes the engine's events straight into the output ring, staged until
/// the batch is published; if the ring fills mid-batch, publishes what is
/// staged and waits for room.
struct RingSink<'a> {
    outputs: &'a mut Publisher<Output>,
}

impl RingSink<'_> {
    #[inline]
    fn send(&mut self, output: Output) {
        if let Err(output) = self.outputs.stage(output) {
            self.outputs.push(output);
        }
    }
}

impl EventSink for RingSink<'_> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.send(Output::Event(event));
    }
}

/// Which core to pin to: the one named, or the last one.
fn pin_to_core(requested: Option<usize>) {
    let Some(cores) = core_affinity::get_core_ids() else {
        crate::log_line!("matching thread: cannot list CPU cores; running unpinned");
        return;
    };
    let last = cores.last().map(|core| core.id);
    let core = match requested {
        Some(id) => cores.into_iter().find(|core| core.id == id),
        None => cores.into_iter().last(),
    };
    match (core, requested) {
        (Some(core), _) if core_affinity::set_for_current(core) => {}
        (Some(core), _) => crate::log_line!(
            "matching thread: pinning to core {} failed; running unpinned",
            core.id
        ),
        (None, Some(id)) => crate::log_line!(
            "matching thread: --matching-core {id}: no such core here (the last is {}); running unpinned",
            last.map_or("none".to_owned(), |last| last.to_string())
        ),
        (None, None) => crate::log_line!("matching thread: no core to pin to; running unpinned"),
    }
}

/// Runs `book` on a new thread named `matching`, pinned to `core` (default:
/// the last core). The thread stops once the command ring's producer is
/// dropped and every command has been applied; it then closes the output
/// ring and hands the book back through the join handle.
pub fn spawn(
    mut book: OrderBook,
    mut requests: Consumer<Request>,
    mut outputs: Publisher<Output>,
    core: Option<usize>,
) -> io::Result<JoinHandle<OrderBook>> {
    thread::Builder::new()
        .name("matching".into())
        .spawn(move || {
            pin_to_core(core);
            // The commands of one drained batch up to a barrier, applied
            // together so the engine can look ahead (`apply_batch`).
            let mut commands: Vec<Command> = Vec::with_capacity(BATCH);
            let apply = |book: &mut OrderBook, commands: &mut Vec<Command>, sink: &mut RingSink| {
                book.apply_batch(commands, sink, |command, sink| {
                    sink.send(Output::Command(*command))
                });
                commands.clear();
            };
            loop {
                let handled = {
                    let mut sink = RingSink {
                        outputs: &mut outputs,
                    };
                    let handled = requests.drain(BATCH, |request| match request {
                        Request::Apply(command) => commands.push(command),
                        Request::Barrier(barrier) => {
                            apply(&mut book, &mut commands, &mut sink);
                            sink.send(Output::Barrier(barrier));
                        }
                    });
                    apply(&mut book, &mut commands, &mut sink);
                    handled
                };
                outputs.publish();
                if handled == 0 && requests.wait() == WaitResult::Closed {
                    break;
                }
            }
            outputs.close();
            book
        })
}
