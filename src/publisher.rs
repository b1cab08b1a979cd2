//! The publisher thread: a reader of the output ring that turns the
//! matching thread's events into the market-data feed of SPEC §3, each
//! message serialised and framed once (an `Arc<[u8]>` WebSocket frame)
//! for the I/O thread to queue to every subscriber.
//!
//! The feed's `seq` is one counter, +1 per `trade` and per `book` message.
//! A command's trades come first, then one `book` message with its level
//! changes coalesced (the last total of each level it touched). Because a
//! `book` message covers exactly one command, the count of messages is a
//! function of the command stream alone ([`messages_for`]): the replica
//! counts the same way, the state file records the count, and after any
//! restart, even a crash, the feed goes on from exactly the right number.
//! A `bbo` message (the best bid and ask moved) follows the `book` message
//! that moved them and carries its `seq`, so it changes no numbering.
//! So does each `candle` message (one per candle interval a subscriber
//! follows, after a command that traded).
//!
//! Snapshots come from the publisher's own aggregated levels (built from
//! the level events), so each carries the `seq` of the last message it
//! includes and goes through the same FIFO as the messages after it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::api::{self, TradeRecord, Wire};
use crate::candles::{BySecond, Candle};
use crate::engine::{Event, LevelView, OrderBook, Side, Ticks, Timestamp};
use crate::matching::{Barrier, BarrierPurpose, Output};
use crate::metrics;
use crate::net::ws;
use crate::ring::{Subscriber, Wake};

/// A connection of the front, as the publisher addresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionRef {
    /// The front's slot.
    pub slot: usize,
    /// The connection's serial (a reused slot gets a new one).
    pub serial: u64,
}

/// A request of the front, and how far the front had read the output ring
/// when it asked (`Subscriber::position`): the publisher applies it once
/// it has read that far, so it comes after every command the front had
/// answered and before any it answers later.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    /// The front's position in the output ring.
    pub after: u64,
    /// What it asks.
    pub request: FeedRequest,
}

/// What the front asks of the publisher.
#[derive(Clone, Copy, Debug)]
pub enum FeedRequest {
    /// A snapshot of `depth` levels for one connection, in stream order.
    Snapshot {
        /// Who gets it.
        to: ConnectionRef,
        /// Levels per side; 0 = all.
        depth: usize,
    },
    /// A subscriber with this depth joined: include it in periodic snapshots.
    Join(usize),
    /// A subscriber with this depth left.
    Leave(usize),
    /// A subscriber follows the candles of this many seconds.
    JoinCandles(u64),
    /// A subscriber stopped following them.
    LeaveCandles(u64),
}

/// A finished message for the front.
#[derive(Clone, Debug)]
pub enum FeedMessage {
    /// A `trade` frame for every subscriber of `trades`.
    Trade(Arc<[u8]>),
    /// A `book` frame for every subscriber of `book`.
    Book(Arc<[u8]>),
    /// A `bbo` frame (the best bid and ask changed) for every subscriber
    /// of `bbo`.
    Bbo(Arc<[u8]>),
    /// A `candle` frame (the current candle of `interval` seconds moved)
    /// for every subscriber of that interval's candles.
    Candle {
        /// The candles' interval in seconds.
        interval: u64,
        /// The frame.
        frame: Arc<[u8]>,
    },
    /// A periodic `snapshot` frame for the subscribers of this depth.
    Snapshot {
        /// Levels per side; 0 = all.
        depth: usize,
        /// The frame.
        frame: Arc<[u8]>,
    },
    /// The snapshot one connection asked for.
    Initial {
        /// Who gets it.
        to: ConnectionRef,
        /// The frame.
        frame: Arc<[u8]>,
    },
    /// Every message of the commands before the `FeedEnd` barrier was
    /// sent before this.
    End,
}

/// Sends `item` to the front on a bounded channel. A full channel is
/// back-pressure: this waits, waking the front with `wake`, until there is
/// room (or the front is gone), which in turn makes the output ring fill
/// and the matching thread wait (counted). Never a drop.
pub fn send_to_front<T>(out: &Sender<T>, item: T, wake: impl Fn()) {
    let mut item = item;
    loop {
        match out.try_send(item) {
            Ok(()) => return,
            Err(TrySendError::Full(back)) => {
                wake();
                item = back;
                thread::sleep(Duration::from_micros(50));
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// How many feed messages a command's events make: one per trade, plus one
/// `book` message if it changed any level.
pub fn messages_for(events: &[Event]) -> u64 {
    let trades = events
        .iter()
        .filter(|e| matches!(e, Event::Trade(_)))
        .count() as u64;
    let book = events.iter().any(|e| matches!(e, Event::Level { .. }));
    trades + u64::from(book)
}

/// The publisher's settings.
#[derive(Clone, Copy, Debug)]
pub struct FeedConfig {
    /// How often subscribers get a snapshot.
    pub snapshot_interval: Duration,
}

/// Aggregated levels: price → remaining quantity, per side.
#[derive(Default)]
struct Levels {
    bids: BTreeMap<Ticks, u64>,
    asks: BTreeMap<Ticks, u64>,
}

/// The best bid and the best ask (price, total quantity), if any.
type BestBidAsk = (Option<(Ticks, u64)>, Option<(Ticks, u64)>);

impl Levels {
    fn best(&self) -> BestBidAsk {
        let copied = |(&price, &quantity): (&Ticks, &u64)| (price, quantity);
        (
            self.bids.last_key_value().map(copied),
            self.asks.first_key_value().map(copied),
        )
    }

    fn from_book(book: &OrderBook) -> Self {
        let collect = |side| {
            book.levels(side)
                .map(
                    |LevelView {
                         price, quantity, ..
                     }| (price, quantity),
                )
                .collect()
        };
        Levels {
            bids: collect(Side::Buy),
            asks: collect(Side::Sell),
        }
    }

    fn set(&mut self, side: Side, price: Ticks, quantity: u64) {
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if quantity == 0 {
            map.remove(&price);
        } else {
            map.insert(price, quantity);
        }
    }
}

/// A second in ns.
const SECOND: u64 = 1_000_000_000;

/// The current candle of one interval some subscriber follows.
struct IntervalCandle {
    /// Subscribers following it.
    users: usize,
    /// The candle of the newest trade's interval.
    candle: Option<Candle>,
    /// The current command's trades moved it.
    moved: bool,
    /// Candles starting before this time (ns) lack trades the service no
    /// longer keeps: as `GET /candles` leaves them out, they are not sent.
    whole_from: Timestamp,
}

struct Feed {
    wire: Wire,
    seq: u64,
    levels: Levels,
    /// The best bid and ask as of the last `book` message.
    best: BestBidAsk,
    /// The current command's level changes, coalesced, in first-touch order.
    changes: Vec<(Side, Ticks, u64)>,
    /// The kept trades by second, from which the candle of an interval
    /// someone starts to follow is rebuilt.
    by_second: BySecond,
    /// The intervals (ns) subscribers follow.
    intervals: BTreeMap<u64, IntervalCandle>,
    out: Sender<FeedMessage>,
    wake: Arc<dyn Wake>,
    /// Depths subscribers use, with how many use each.
    depths: HashMap<usize, usize>,
    text: String,
    sent_any: bool,
}

impl Feed {
    fn send(&mut self, message: FeedMessage) {
        let wake = &self.wake;
        send_to_front(&self.out, message, || wake.wake());
        self.sent_any = true;
    }

    fn frame(&mut self) -> Arc<[u8]> {
        ws::text_frame(self.text.as_bytes())
    }

    /// True while someone subscribes: with nobody to send to, only the
    /// `seq` and the levels are kept up (a snapshot for a newcomer is
    /// built from them).
    fn has_subscribers(&self) -> bool {
        !self.depths.is_empty()
    }

    fn trade(&mut self, record: &TradeRecord) {
        let trade = &record.trade;
        self.by_second.push(trade);
        // A trade it drops for room may be one of a followed candle's:
        // from then on that candle is not whole, and not sent.
        let whole_from = self.by_second.dropped().map_or(0, |dropped| dropped + 1);
        for (&interval, current) in &mut self.intervals {
            current.whole_from = whole_from;
            let start = trade.ts - trade.ts % interval;
            match &mut current.candle {
                Some(candle) if candle.start == start => candle.add_later(trade),
                _ => current.candle = Some(Candle::of(start, trade)),
            }
            current.moved = true;
        }
        self.seq += 1;
        if !self.has_subscribers() {
            return;
        }
        self.text.clear();
        let _ = write!(self.text, "{{\"type\":\"trade\",\"seq\":{},", self.seq);
        self.wire.trade_fields(&mut self.text, record);
        self.text.push('}');
        let frame = self.frame();
        self.send(FeedMessage::Trade(frame));
    }

    fn level(&mut self, side: Side, price: Ticks, quantity: u64) {
        self.levels.set(side, price, quantity);
        match self
            .changes
            .iter_mut()
            .find(|(s, p, _)| *s == side && *p == price)
        {
            Some(change) => change.2 = quantity,
            None => self.changes.push((side, price, quantity)),
        }
    }

    fn end_of_command(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        self.seq += 1;
        if !self.has_subscribers() {
            self.changes.clear();
            for current in self.intervals.values_mut() {
                current.moved = false;
            }
            // Kept up, so a subscriber joining later is told each change
            // from the book its snapshot shows.
            self.best = self.levels.best();
            return;
        }
        self.text.clear();
        let _ = write!(
            self.text,
            "{{\"type\":\"book\",\"seq\":{},\"changes\":[",
            self.seq
        );
        for (i, &(side, price, quantity)) in self.changes.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "[{},", side as i8);
            self.wire.tick.write_price(&mut self.text, price);
            let _ = write!(self.text, ",{quantity}]");
        }
        self.text.push_str("]}");
        self.changes.clear();
        let frame = self.frame();
        self.send(FeedMessage::Book(frame));
        self.best_bid_ask();
        self.candle();
    }

    /// After a `book` message whose command traded: a `candle` message
    /// for each interval followed, its current candle as those trades left
    /// it (unless it lacks trades no longer kept). Like `bbo`, it carries
    /// that `book` message's `seq` and changes no numbering.
    fn candle(&mut self) {
        let mut moved = Vec::new();
        for (&interval, current) in &mut self.intervals {
            if std::mem::take(&mut current.moved) {
                if let Some(candle) = current.candle.filter(|c| c.start >= current.whole_from) {
                    moved.push((interval / SECOND, candle));
                }
            }
        }
        for (interval, candle) in moved {
            self.text.clear();
            let _ = write!(
                self.text,
                "{{\"type\":\"candle\",\"seq\":{},\"interval\":{interval},\"candle\":",
                self.seq,
            );
            self.wire.candle(&mut self.text, &candle);
            self.text.push('}');
            let frame = self.frame();
            self.send(FeedMessage::Candle { interval, frame });
        }
    }

    /// A subscriber follows the candles of `seconds`: the first one's
    /// candle is rebuilt from the kept trades.
    fn join_candles(&mut self, seconds: u64) {
        let interval = seconds * SECOND;
        let by_second = &self.by_second;
        let current = self
            .intervals
            .entry(interval)
            .or_insert_with(|| IntervalCandle {
                users: 0,
                candle: by_second.candles(interval, 1, None).pop(),
                moved: false,
                whole_from: by_second.dropped().map_or(0, |dropped| dropped + 1),
            });
        current.users += 1;
    }

    fn leave_candles(&mut self, seconds: u64) {
        let interval = seconds * SECOND;
        if let Some(current) = self.intervals.get_mut(&interval) {
            current.users -= 1;
            if current.users == 0 {
                self.intervals.remove(&interval);
            }
        }
    }

    /// After a `book` message: a `bbo` message if the best bid or ask (its
    /// price or its quantity) moved. It carries that `book` message's
    /// `seq`: it is a view of it, not a message of its own, so the feed's
    /// numbering (and every client's gap check) is the same with or
    /// without it.
    fn best_bid_ask(&mut self) {
        let best = self.levels.best();
        if best == self.best {
            return;
        }
        self.best = best;
        self.text.clear();
        let _ = write!(self.text, "{{\"type\":\"bbo\",\"seq\":{}", self.seq);
        for (key, level) in [("bid", best.0), ("ask", best.1)] {
            let _ = write!(self.text, ",\"{key}\":");
            match level {
                Some(level) => self.wire.levels(&mut self.text, std::iter::once(level)),
                None => self.text.push_str("null"),
            }
        }
        self.text.push('}');
        let frame = self.frame();
        self.send(FeedMessage::Bbo(frame));
    }

    fn snapshot(&mut self, depth: usize) -> Arc<[u8]> {
        self.text.clear();
        let _ = write!(
            self.text,
            "{{\"type\":\"snapshot\",\"seq\":{},\"depth\":{depth},\"bids\":[",
            self.seq
        );
        let take = if depth == 0 { usize::MAX } else { depth };
        let copied = |(&price, &quantity): (&Ticks, &u64)| (price, quantity);
        let bids = self.levels.bids.iter().rev().map(copied).take(take);
        self.wire.levels(&mut self.text, bids);
        self.text.push_str("],\"asks\":[");
        let asks = self.levels.asks.iter().map(copied).take(take);
        self.wire.levels(&mut self.text, asks);
        self.text.push_str("]}");
        self.frame()
    }
}

/// Wakes the publisher thread from the output ring or the front.
pub struct ThreadWaker(pub Thread);

impl Wake for ThreadWaker {
    fn wake(&self) {
        self.0.unpark();
    }
}

/// Applies one request of the front to the feed; a snapshot asked for is
/// sent at once.
fn apply(feed: &mut Feed, request: FeedRequest) {
    match request {
        FeedRequest::Snapshot { to, depth } => {
            let frame = feed.snapshot(depth);
            feed.send(FeedMessage::Initial { to, frame });
        }
        FeedRequest::Join(depth) => *feed.depths.entry(depth).or_default() += 1,
        FeedRequest::JoinCandles(seconds) => feed.join_candles(seconds),
        FeedRequest::LeaveCandles(seconds) => feed.leave_candles(seconds),
        FeedRequest::Leave(depth) => {
            if let Some(count) = feed.depths.get_mut(&depth) {
                *count -= 1;
                if *count == 0 {
                    feed.depths.remove(&depth);
                }
            }
        }
    }
}

/// Reads outputs into the feed until this reader's position is `until`
/// (no further than published); returns how many. `stamp` is the last
/// command's timestamp (ms), for `matching_latency`.
fn pump(
    outputs: &mut Subscriber<Output>,
    until: u64,
    feed: &mut Feed,
    stamp: &mut u64,
    matching_latency: &mut hdrhistogram::Histogram<u64>,
) -> usize {
    // One clock read a batch: every outcome in it left the matching thread
    // before this point.
    let read_at = api::now_micros();
    let max = until.saturating_sub(outputs.position()) as usize;
    outputs.drain(max, |output| match *output {
        Output::Command(command) => *stamp = command.ts / 1_000,
        Output::Event(Event::Trade(trade)) => feed.trade(&trade.into()),
        Output::Event(Event::Level {
            side,
            price,
            quantity,
        }) => feed.level(side, price, quantity),
        Output::Event(event) if event.is_outcome() => {
            let _ = matching_latency.record(read_at.saturating_sub(*stamp).max(1));
            feed.end_of_command();
        }
        Output::Barrier(Barrier {
            purpose: BarrierPurpose::FeedEnd,
            ..
        }) => feed.send(FeedMessage::End),
        _ => {}
    })
}

/// Runs the publisher on a thread named `publisher`, starting from `book`'s
/// levels at feed sequence `seq` and from `by_second`, the kept trades'
/// candles by second. It also records the matching latency
/// (a command's stamp to its outcome read here) into `shared_metrics`: it
/// reads the output ring promptly, unlike the replica while it writes a
/// state file. `wake` wakes the front when messages are ready; the front unparks the thread (`JoinHandle::thread`) after each
/// request. Returns the last `seq` once the output ring closes.
///
/// A request is applied once the ring is read as far as the front had
/// read it when asking ([`Asked`]): a snapshot includes every command the
/// front had answered before it asked.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    book: &OrderBook,
    seq: u64,
    by_second: BySecond,
    mut outputs: Subscriber<Output>,
    requests: Receiver<Asked>,
    messages: Sender<FeedMessage>,
    wake: Arc<dyn Wake>,
    wire: Wire,
    config: FeedConfig,
    shared_metrics: Arc<metrics::Shared>,
) -> io::Result<JoinHandle<u64>> {
    let levels = Levels::from_book(book);
    let handle = thread::Builder::new()
        .name("publisher".into())
        .spawn(move || {
            outputs.set_waker(Arc::new(ThreadWaker(thread::current())));
            let mut feed = Feed {
                wire,
                seq,
                best: levels.best(),
                levels,
                changes: Vec::new(),
                by_second,
                intervals: BTreeMap::new(),
                out: messages,
                wake,
                depths: HashMap::new(),
                text: String::with_capacity(4096),
                sent_any: false,
            };
            let mut next_snapshot = Instant::now() + config.snapshot_interval;
            let mut matching_latency = metrics::latency_histogram();
            let mut stamp = 0;
            loop {
                feed.sent_any = false;
                // Each request is applied once the ring is read as far as
                // the front had read it when asking, so a snapshot or a
                // join follows every command the front had answered. And
                // requests are taken after seeing how far the ring is
                // published, before reading that far: a join sent before
                // a command was answered precedes that command's trades.
                let (mut read, mut asked) = (0, 0);
                loop {
                    let published = outputs.position() + outputs.available() as u64;
                    let mut asked_now = 0;
                    loop {
                        let asked = requests.try_recv().ok();
                        let until = asked.map_or(published, |asked| asked.after);
                        read += pump(
                            &mut outputs,
                            until,
                            &mut feed,
                            &mut stamp,
                            &mut matching_latency,
                        );
                        let Some(Asked { request, .. }) = asked else {
                            break;
                        };
                        asked_now += 1;
                        apply(&mut feed, request);
                    }
                    asked += asked_now;
                    if asked_now == 0 {
                        break;
                    }
                }
                if !matching_latency.is_empty() {
                    if let Ok(mut shared) = shared_metrics.matching_latency.lock() {
                        let _ = shared.add(&matching_latency);
                    }
                    matching_latency.reset();
                }
                let now = Instant::now();
                if now >= next_snapshot {
                    let mut depths: Vec<usize> = feed.depths.keys().copied().collect();
                    depths.sort_unstable();
                    for depth in depths {
                        let frame = feed.snapshot(depth);
                        feed.send(FeedMessage::Snapshot { depth, frame });
                    }
                    next_snapshot = now + config.snapshot_interval;
                }
                if feed.sent_any {
                    feed.wake.wake();
                }
                if read > 0 || asked > 0 {
                    continue;
                }
                if outputs.is_closed() && outputs.available() == 0 {
                    return feed.seq;
                }
                if outputs.prepare_sleep() && requests.is_empty() {
                    thread::park_timeout(next_snapshot.saturating_duration_since(Instant::now()));
                }
                outputs.finish_sleep();
            }
        })?;
    Ok(handle)
}
