//! A second copy of the book, kept on its own thread by re-applying every
//! accepted command from the output ring, so that reads never hold the
//! matching thread: big ones (`GET /orders` on a million orders, a page of
//! `GET /trades`) are built here, off the I/O thread, and so is
//! `GET /order/{id}`, because this copy, not the matching thread's, keeps
//! the bounded history of finished orders.
//!
//! A read travels as a barrier through the matching thread; when the
//! replica reaches it, its book is exactly the book as of that request, so
//! the answer is consistent with everything answered before it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::api::{self, ApiError, ClientOrderId, Ticker, TradesPage, Wire};
use crate::candles;
use crate::client_ids::{ClientIds, ReplicaClientIds};
use crate::engine::{Command, CommandKind, Event, LevelView, OrderBook, OrderId, Side, Timestamp};
use crate::listing_memory::{Held, ListingMemory};
use crate::matching::{BarrierPurpose, Output};
use crate::metrics;
use crate::order_feed::OrderFeed;
use crate::persist::snapshot;
use crate::persist::{recovery, segments};
use crate::ring::{Subscriber, WaitResult, Wake};
use crate::trade_history::TradeHistory;

/// A finished answer to a read for the front.
#[derive(Debug)]
pub struct ReplicaAnswer {
    /// The barrier ticket of the request.
    pub ticket: u64,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body (a listing's counted against `--max-listing-bytes`
    /// until written). Status 503 with no body: listings held the bound,
    /// so this one was dropped as it was built.
    pub body: Held,
    /// The orders a [`BarrierPurpose::Named`] asked for (else empty).
    pub orders: Vec<OrderId>,
}

/// Writes `{"buy_orders":[...],"sell_orders":[...]}`, best price first,
/// then earliest first, at most `limit` a side; with `only`, the other
/// side's list is empty (the shape stays the same for clients); with
/// `prefix`, only the orders whose `client_order_id` starts with it.
pub fn orders_json(
    book: &OrderBook,
    names: &ClientIds,
    wire: &Wire,
    limit: usize,
    only: Option<Side>,
    prefix: Option<&ClientOrderId>,
) -> Vec<u8> {
    // Room for every order only when every order is listed: a filtered
    // listing grows as it goes (and gives back its spare room when it is
    // admitted).
    let listed = match (only, prefix) {
        (None, None) => book.resting_count().min(limit.saturating_mul(2)),
        _ => 0,
    };
    let mut out = String::with_capacity(64 + listed * 200);
    for (side, key) in [
        (Side::Buy, "{\"buy_orders\":["),
        (Side::Sell, "],\"sell_orders\":["),
    ] {
        out.push_str(key);
        if only.is_some_and(|only| only != side) {
            continue;
        }
        let picked = names.resting_picked(book, Some(side), prefix);
        for (i, order) in picked.take(limit).enumerate() {
            if i > 0 {
                out.push(',');
            }
            wire.listed(&mut out, &order);
            api::client_id_field(&mut out, names.name_of(order.id));
        }
    }
    out.push_str("]}");
    out.into_bytes()
}

/// The ids of the resting orders (of `only`'s side, if given) whose
/// `client_order_id` starts with `prefix`, in the order `DELETE /orders`
/// cancels in.
pub fn named_resting(
    book: &OrderBook,
    names: &ClientIds,
    only: Option<Side>,
    prefix: &ClientOrderId,
) -> Vec<OrderId> {
    let picked = names.resting_picked(book, only, Some(prefix));
    picked.map(|order| order.id).collect()
}

/// The body of `GET /order/{id}`: the order, or 404.
fn order_json(book: &OrderBook, names: &ClientIds, wire: &Wire, id: OrderId) -> (u16, Vec<u8>) {
    match book.order(id) {
        Some(order) => {
            let mut out = String::with_capacity(256);
            wire.fetched(&mut out, &order);
            api::client_id_field(&mut out, names.name_of(id));
            (200, out.into_bytes())
        }
        None => (404, ApiError::new(404, "Order not found").body()),
    }
}

/// The body of `GET /book`: the top `depth` levels per side (0 = all),
/// best first, shaped as the feed's snapshot (without its `type`), with
/// the feed `seq` of the last message this book includes, so a client can
/// apply the feed's messages after it.
pub fn book_json(book: &OrderBook, wire: &Wire, feed_seq: u64, depth: usize) -> Vec<u8> {
    let take = if depth == 0 { usize::MAX } else { depth };
    let mut out = String::with_capacity(64 + take.min(book.resting_count()) * 80);
    let aggregated = |level: LevelView| (level.price, level.quantity);
    let _ = write!(out, "{{\"seq\":{feed_seq},\"depth\":{depth},\"bids\":[");
    wire.levels(&mut out, book.levels(Side::Buy).map(aggregated).take(take));
    out.push_str("],\"asks\":[");
    wire.levels(&mut out, book.levels(Side::Sell).map(aggregated).take(take));
    out.push_str("]}");
    out.into_bytes()
}

/// The body of `GET /candles`: the newest `limit` candles of `interval`
/// seconds over the trades kept (those starting before `end`, if given),
/// oldest first.
fn candles_json(
    by_second: &candles::BySecond,
    wire: &Wire,
    interval: u64,
    limit: usize,
    end: Option<Timestamp>,
) -> Vec<u8> {
    let candles = by_second.candles(interval * 1_000_000_000, limit, end);
    let mut out = String::with_capacity(2 + candles.len() * 160);
    out.push('[');
    for (i, candle) in candles.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        wire.candle(&mut out, candle);
    }
    out.push(']');
    out.into_bytes()
}

/// The ticker's window: a day, in ns.
const DAY: Timestamp = 24 * 60 * 60 * 1_000_000_000;

/// The body of `GET /ticker`: the best bid and ask, the last trade and
/// the last 24 hours (to `now`, from `day`), with the feed `seq`.
fn ticker_json(
    book: &OrderBook,
    wire: &Wire,
    snapshots: &Snapshots,
    day: &mut candles::Rolling,
    now: Timestamp,
) -> Vec<u8> {
    let best = |side| book.levels(side).next().map(|l| (l.price, l.quantity));
    let ticker = Ticker {
        seq: snapshots.feed_seq,
        best_bid: best(Side::Buy),
        best_ask: best(Side::Sell),
        last_trade: snapshots.trades.newest(),
        last_24h: day.at(now),
    };
    let mut out = String::with_capacity(512);
    wire.ticker(&mut out, &ticker);
    out.into_bytes()
}

/// What the replica keeps for the state file besides its book.
pub struct Snapshots {
    /// The data directory (the journal).
    pub dir: PathBuf,
    /// The state file.
    pub state_path: PathBuf,
    /// Commands seen so far: the journal sequence number of the last one
    /// (the front journals every command it sends, in this order).
    pub seq: u64,
    /// The sequence number the state file on disk covers.
    pub saved_seq: u64,
    /// Whether to delete the journal files a written state file covers
    /// (`--prune-journal`).
    pub prune_journal: bool,
    /// The market-data feed's `seq` as of `seq` (see [`crate::publisher`]).
    pub feed_seq: u64,
    /// The newest trades, `trade_history` of them at most: for the state
    /// file, the ticker and `GET /trades`.
    pub trades: TradeHistory,
    /// How many trades to keep.
    pub trade_history: usize,
    /// What the history knows of the trades it dropped for room.
    pub trades_dropped: candles::Dropped,
    /// Where to count state files.
    pub metrics: Arc<metrics::Shared>,
}

impl Snapshots {
    /// Writes the state file if anything changed since the last one, then,
    /// under `--prune-journal`, deletes the journal files it covers. A
    /// failure is reported and the journal kept: nothing is lost, the next
    /// snapshot tries again. Returns whether the state file is now up to
    /// date.
    fn save(&mut self, book: &OrderBook, names: &ClientIds, wire: &Wire) -> bool {
        if self.seq == self.saved_seq && self.state_path.exists() {
            return true;
        }
        let started = Instant::now();
        let trades = (self.trades.records(), self.trades_dropped);
        let bytes =
            snapshot::write_state_dropped(book, names, trades, self.seq, self.feed_seq, wire);
        if let Err(error) = snapshot::save_atomically(&self.state_path, &bytes) {
            crate::log_line!(
                "orderbook: cannot write the state file {}: {error}",
                self.state_path.display()
            );
            return false;
        }
        self.saved_seq = self.seq;
        if self.prune_journal {
            if let Err(error) = segments::prune(&self.dir, self.seq) {
                crate::log_line!("orderbook: cannot remove old journal files: {error}");
            }
        }
        self.metrics.count_journal(&self.dir);
        let took = started.elapsed();
        let metrics = &self.metrics;
        metrics.snapshots.fetch_add(1, Ordering::Relaxed);
        metrics
            .last_snapshot_ms
            .store(took.as_millis() as u64, Ordering::Relaxed);
        metrics
            .last_snapshot_bytes
            .store(bytes.len() as u64, Ordering::Relaxed);
        if took > Duration::from_millis(100) {
            crate::log_line!(
                "orderbook: state file written: {} orders, {} bytes, {:.0} ms",
                book.resting_count(),
                bytes.len(),
                took.as_secs_f64() * 1e3
            );
        }
        true
    }
}

/// The tickets of reads whose connection is gone (the front says so, at
/// its close or at shutdown): their answers are not built. A client that
/// pipelined a thousand `GET /orders` of a big book and left had the
/// replica build them all, 17 s that every other read waited behind.
struct Abandoned {
    told: Receiver<u64>,
    tickets: BTreeSet<u64>,
}

impl Abandoned {
    /// Whether the read of `ticket` was abandoned. Barriers come in ticket
    /// order, so those before it will not come again and are forgotten.
    fn holds(&mut self, ticket: u64) -> bool {
        self.tickets.extend(self.told.try_iter());
        while self.tickets.first().is_some_and(|&first| first < ticket) {
            self.tickets.pop_first();
        }
        self.tickets.remove(&ticket)
    }
}

/// Shows `GET /metrics` how many orders rest in the replica's book, how
/// many it keeps that have a name, and how many trades it keeps.
fn count_kept(
    metrics: &metrics::Shared,
    book: &OrderBook,
    names: &ClientIds,
    history: &TradeHistory,
) {
    metrics
        .resting_orders
        .store(book.resting_count() as u64, Ordering::Relaxed);
    metrics
        .named_orders
        .store(names.len() as u64, Ordering::Relaxed);
    metrics
        .trades_kept
        .store(history.len() as u64, Ordering::Relaxed);
}

/// Runs the replica on a thread named `replica`. It applies a command once
/// the matching thread's outcome shows it was not rejected (so the copy
/// agrees with the matching thread's book whatever either keeps of finished
/// orders), answers the reads' barriers through `answers.0` (those the
/// front abandoned, told through `answers.1`, with status 0 and nothing
/// built), waking
/// the front with `wake`, builds the `orders` channel's frames (`orders`)
/// while someone follows it, writes the state file at `Snapshot` barriers
/// and once more when the output ring closes, and then returns whether
/// that last one was written.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    mut book: OrderBook,
    mut names: ReplicaClientIds,
    mut orders: OrderFeed,
    mut outputs: Subscriber<Output>,
    wire: Wire,
    answers: (Sender<ReplicaAnswer>, Receiver<u64>),
    listing_memory: Arc<ListingMemory>,
    wake: Arc<dyn Wake>,
    mut snapshots: Snapshots,
) -> io::Result<JoinHandle<bool>> {
    let (answers, told) = answers;
    let mut abandoned = Abandoned {
        told,
        tickets: BTreeSet::new(),
    };
    thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let mut pending: Option<Command> = None;
            // The name the front gave the pending place, if any.
            let mut pending_name = None;
            // Orders leaving the history free their names (recovery
            // turned this on already; said here too, as this thread needs it).
            book.log_evictions();
            orders.wake_with(wake.clone());
            orders.count_snapshots_in(listing_memory.clone());
            let mut events = Vec::new();
            let kept = snapshots.trades.records().map(|record| &record.trade);
            let dropped = snapshots.trades_dropped;
            let mut day = candles::Rolling::over(DAY, snapshots.trade_history, kept, dropped);
            let kept = snapshots.trades.records().map(|record| &record.trade);
            let mut by_second = candles::BySecond::over(snapshots.trade_history, kept, dropped);
            count_kept(&snapshots.metrics, &book, names.ids(), &snapshots.trades);
            loop {
                let read = outputs.drain(usize::MAX, |output| match *output {
                    Output::Command(command) => {
                        pending = Some(command);
                        orders.clear();
                        pending_name = match command.kind {
                            CommandKind::Place { id, .. } => {
                                names.name_for_place(id).map(|name| (id, name))
                            }
                            _ => None,
                        };
                    }
                    Output::Event(event) if event.is_outcome() => {
                        if let Some(command) = pending.take() {
                            snapshots.seq += 1;
                            if !matches!(event, Event::Rejected { .. }) {
                                let followed = orders.before_apply(&book, &command);
                                snapshots.feed_seq += recovery::apply_to_copy(
                                    &mut book,
                                    &command,
                                    &mut events,
                                    (&mut snapshots.trades, &mut snapshots.trades_dropped),
                                );
                                if followed {
                                    // Before `applied`: it frees the names of
                                    // orders the book just let go.
                                    orders.after_apply(
                                        &events,
                                        names.ids(),
                                        pending_name.map(|(_, name)| name),
                                        snapshots.feed_seq,
                                        &wire,
                                    );
                                }
                                names.applied(&mut book, pending_name.take());
                                for event in &events {
                                    if let Event::Trade(trade) = event {
                                        day.push(trade);
                                        by_second.push(trade);
                                    }
                                }
                            }
                        }
                    }
                    Output::Barrier(barrier) => {
                        // A read answered after this sees the gauge as of it.
                        count_kept(&snapshots.metrics, &book, names.ids(), &snapshots.trades);
                        let read = matches!(
                            barrier.purpose,
                            BarrierPurpose::Orders { .. }
                                | BarrierPurpose::Trades { .. }
                                | BarrierPurpose::Order(_)
                                | BarrierPurpose::Book { .. }
                                | BarrierPurpose::Candles { .. }
                                | BarrierPurpose::Ticker { .. }
                        );
                        if read && abandoned.holds(barrier.ticket) {
                            let _ = answers.send(ReplicaAnswer {
                                ticket: barrier.ticket,
                                status: 0,
                                body: Held::default(),
                                orders: Vec::new(),
                            });
                            wake.wake();
                            return;
                        }
                        let mut listed = Vec::new();
                        let (status, body) = match barrier.purpose {
                            BarrierPurpose::Orders {
                                limit,
                                side,
                                prefix,
                            } => {
                                let prefix = prefix.as_ref();
                                let body =
                                    orders_json(&book, names.ids(), &wire, limit, side, prefix);
                                (200, body)
                            }
                            BarrierPurpose::Order(id) => order_json(&book, names.ids(), &wire, id),
                            BarrierPurpose::Book { depth } => {
                                (200, book_json(&book, &wire, snapshots.feed_seq, depth))
                            }
                            BarrierPurpose::Candles {
                                interval,
                                limit,
                                end,
                            } => (200, candles_json(&by_second, &wire, interval, limit, end)),
                            BarrierPurpose::Ticker { now } => {
                                (200, ticker_json(&book, &wire, &snapshots, &mut day, now))
                            }
                            BarrierPurpose::Snapshot => {
                                let _ = snapshots.save(&book, names.ids(), &wire);
                                return;
                            }
                            BarrierPurpose::Named { side, prefix } => {
                                listed = named_resting(&book, names.ids(), side, &prefix);
                                (200, Vec::new())
                            }
                            BarrierPurpose::Trades {
                                limit,
                                only_order,
                                order,
                                from,
                                trade,
                            } => snapshots.trades.page_json(
                                &wire,
                                limit as usize,
                                only_order.then_some(order),
                                TradesPage::from_parts(from, trade),
                            ),
                            BarrierPurpose::FeedEnd => {
                                orders.end();
                                return;
                            }
                            BarrierPurpose::OrderSnapshot { prefix } => {
                                let (ticket, seq) = (barrier.ticket, snapshots.feed_seq);
                                let names = names.ids();
                                orders.snapshot(ticket, &book, names, prefix.as_ref(), seq, &wire);
                                return;
                            }
                        };
                        // A large listing built while listings hold the
                        // bound is dropped at once and answered 503.
                        let (status, body) = match listing_memory.admit(body) {
                            Some(held) => (status, held),
                            None => (503, Held::default()),
                        };
                        // The front may be gone at shutdown; nothing to answer then.
                        let _ = answers.send(ReplicaAnswer {
                            ticket: barrier.ticket,
                            status,
                            body,
                            orders: listed,
                        });
                        wake.wake();
                    }
                    Output::Event(Event::Trade(trade)) => orders.met(trade.maker),
                    _ => {}
                });
                orders.wake_if_sent();
                if read > 0 {
                    count_kept(&snapshots.metrics, &book, names.ids(), &snapshots.trades);
                }
                if read == 0 && outputs.wait() == WaitResult::Closed {
                    return snapshots.save(&book, names.ids(), &wire);
                }
            }
        })
}
