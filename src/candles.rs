//! Candles (open, high, low, close, volume) over fixed intervals, made from
//! a run of trades on request: what a chart of the market reads; and one
//! over a moving window ([`Rolling`]), kept up as trades arrive, for
//! `GET /ticker`'s last 24 hours. Pure: the front (candles) and the replica
//! (the ticker) use it with the trades they keep.

use std::collections::VecDeque;

use crate::engine::{Qty, Ticks, Timestamp, Trade};

/// One interval's trading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candle {
    /// Start of the interval (ns since the epoch, a multiple of it).
    pub start: Timestamp,
    /// The first trade's price.
    pub open: Ticks,
    /// The highest price.
    pub high: Ticks,
    /// The lowest price.
    pub low: Ticks,
    /// The last trade's price.
    pub close: Ticks,
    /// Quantity traded.
    pub volume: Qty,
    /// Trades in it.
    pub trades: u64,
}

impl Candle {
    /// A candle of one trade, starting at `start`.
    fn of(start: Timestamp, trade: &Trade) -> Candle {
        Candle {
            start,
            open: trade.price,
            high: trade.price,
            low: trade.price,
            close: trade.price,
            volume: trade.quantity,
            trades: 1,
        }
    }

    /// Adds a trade that came before every trade in it (candles are built
    /// walking back in time).
    fn add_earlier(&mut self, trade: &Trade) {
        self.open = trade.price;
        self.high = self.high.max(trade.price);
        self.low = self.low.min(trade.price);
        self.volume += trade.quantity;
        self.trades += 1;
    }
}

/// The newest `limit` candles of `interval` ns (oldest first) over
/// `trades` (oldest first), one per interval that holds a trade. When
/// `older_trades_dropped` (the history lost its oldest trades), the
/// oldest interval reached may be missing some, so it is left out unless
/// a trade before it shows it whole.
pub fn candles<'t>(
    trades: impl DoubleEndedIterator<Item = &'t Trade>,
    interval: u64,
    limit: usize,
    older_trades_dropped: bool,
) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::with_capacity(limit.min(1024));
    let mut whole = false;
    for trade in trades.rev() {
        let start = trade.ts - trade.ts % interval;
        let full = out.len() == limit;
        match out.last_mut() {
            Some(candle) if candle.start == start => candle.add_earlier(trade),
            _ if full => {
                whole = true;
                break;
            }
            _ => out.push(Candle::of(start, trade)),
        }
    }
    if older_trades_dropped && !whole {
        out.pop();
    }
    out.reverse();
    out
}

/// The trades of the last `span` ns as one candle, kept up as trades
/// arrive and time passes (`GET /ticker`'s last 24 hours): each trade is
/// added once and dropped once, so a read costs no walk over the history.
/// It holds at most `keep` trades, as the trade history does; while a
/// trade it had to drop for room would still be inside the window, the
/// candle starts at the oldest trade it holds, the start of what it
/// covers for sure.
#[derive(Debug)]
pub struct Rolling {
    span: u64,
    keep: usize,
    /// The trades in the window (time, price, quantity), oldest first.
    window: VecDeque<(Timestamp, Ticks, Qty)>,
    volume: Qty,
    /// The number the next trade pushed gets; the window's oldest is
    /// `next - window.len()`.
    next: u64,
    /// Candidates for the high: (number, price), prices falling.
    highs: VecDeque<(u64, Ticks)>,
    /// Candidates for the low: (number, price), prices rising.
    lows: VecDeque<(u64, Ticks)>,
    /// The newest time of a trade dropped for room, if any was.
    dropped_until: Option<Timestamp>,
    /// The latest time asked about: the window never moves back.
    now: Timestamp,
}

impl Rolling {
    /// An empty window of `span` ns holding at most `keep` trades.
    pub fn new(span: u64, keep: usize) -> Self {
        Rolling {
            span,
            keep,
            window: VecDeque::new(),
            volume: 0,
            next: 0,
            highs: VecDeque::new(),
            lows: VecDeque::new(),
            dropped_until: None,
            now: 0,
        }
    }

    /// A window over `kept` (oldest first), a history kept to its newest
    /// `keep`: a full one may have dropped older trades, taken to be as
    /// new as its oldest.
    pub fn over<'t>(
        span: u64,
        keep: usize,
        kept: impl ExactSizeIterator<Item = &'t Trade>,
    ) -> Self {
        let full = kept.len() >= keep;
        let mut rolling = Rolling::new(span, keep);
        for trade in kept {
            rolling.push(trade);
        }
        if full {
            rolling.dropped_until = rolling.window.front().map(|&(ts, _, _)| ts);
        }
        rolling
    }

    /// Adds the newest trade.
    pub fn push(&mut self, trade: &Trade) {
        if self.keep == 0 {
            return;
        }
        if self.window.len() == self.keep {
            if let Some(&(ts, _, _)) = self.window.front() {
                self.dropped_until = Some(ts);
            }
            self.pop_oldest();
        }
        let number = self.next;
        self.next += 1;
        self.window
            .push_back((trade.ts, trade.price, trade.quantity));
        self.volume += trade.quantity;
        while self.highs.back().is_some_and(|&(_, p)| p <= trade.price) {
            self.highs.pop_back();
        }
        self.highs.push_back((number, trade.price));
        while self.lows.back().is_some_and(|&(_, p)| p >= trade.price) {
            self.lows.pop_back();
        }
        self.lows.push_back((number, trade.price));
    }

    fn pop_oldest(&mut self) {
        let Some((_, _, quantity)) = self.window.pop_front() else {
            return;
        };
        let number = self.next - self.window.len() as u64 - 1;
        self.volume -= quantity;
        if self.highs.front().is_some_and(|&(n, _)| n == number) {
            self.highs.pop_front();
        }
        if self.lows.front().is_some_and(|&(n, _)| n == number) {
            self.lows.pop_front();
        }
    }

    /// The candle of the trades at or after `now - span`, or `None` if
    /// there are none (see the type's notes for its `start`).
    pub fn at(&mut self, now: Timestamp) -> Option<Candle> {
        self.now = self.now.max(now);
        let from = self.now.saturating_sub(self.span);
        while self.window.front().is_some_and(|&(ts, _, _)| ts < from) {
            self.pop_oldest();
        }
        let &(oldest, open, _) = self.window.front()?;
        let &(_, close, _) = self.window.back()?;
        let partial = self.dropped_until.is_some_and(|ts| ts >= from);
        Some(Candle {
            start: if partial { oldest } else { from },
            open,
            high: self.highs.front()?.1,
            low: self.lows.front()?.1,
            close,
            volume: self.volume,
            trades: self.window.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Side;

    const MINUTE: u64 = 60_000_000_000;

    fn trade(seconds: u64, price: Ticks, quantity: Qty) -> Trade {
        Trade {
            trade_id: seconds,
            price,
            quantity,
            taker: 1,
            maker: 2,
            taker_side: Side::Buy,
            ts: 1_700_000_040 * 1_000_000_000 + seconds * 1_000_000_000,
        }
    }

    fn start(minute: u64) -> Timestamp {
        1_700_000_040 * 1_000_000_000 + minute * MINUTE
    }

    #[test]
    fn each_interval_with_trades_is_one_candle_oldest_first() {
        // 1_700_000_040 s is a whole minute.
        let trades = [
            trade(0, 100, 5),
            trade(10, 103, 1),
            trade(59, 99, 2),
            trade(60, 101, 4), // the next minute
            trade(185, 98, 3), // two minutes later, none between
            trade(190, 97, 1),
        ];
        let all = candles(trades.iter(), MINUTE, 10, false);
        assert_eq!(
            all,
            [
                Candle {
                    start: start(0),
                    open: 100,
                    high: 103,
                    low: 99,
                    close: 99,
                    volume: 8,
                    trades: 3
                },
                Candle {
                    start: start(1),
                    open: 101,
                    high: 101,
                    low: 101,
                    close: 101,
                    volume: 4,
                    trades: 1
                },
                Candle {
                    start: start(3),
                    open: 98,
                    high: 98,
                    low: 97,
                    close: 97,
                    volume: 4,
                    trades: 2
                },
            ]
        );
        // The newest two.
        assert_eq!(candles(trades.iter(), MINUTE, 2, false), all[1..]);
        // With older trades gone, the oldest interval may be partial: left
        // out, unless an earlier trade shows it complete.
        assert_eq!(candles(trades.iter(), MINUTE, 10, true), all[1..]);
        assert_eq!(candles(trades.iter(), MINUTE, 2, true), all[1..]);
        assert_eq!(candles(trades[1..].iter(), MINUTE, 3, true), all[1..]);
        assert!(candles([].iter(), MINUTE, 3, false).is_empty());
    }

    /// The window as the trades pushed say it, the slow way: the newest
    /// `keep` are held, and the candle is partial while a dropped one is
    /// in the window.
    fn naive(pushed: &[Trade], keep: usize, now: Timestamp, span: u64) -> Option<Candle> {
        let from = now.saturating_sub(span);
        let held = &pushed[pushed.len().saturating_sub(keep)..];
        let dropped = &pushed[..pushed.len() - held.len()];
        let inside: Vec<&Trade> = held.iter().filter(|t| t.ts >= from).collect();
        let first = inside.first()?;
        let partial = dropped.iter().any(|t| t.ts >= from);
        Some(Candle {
            start: if partial { first.ts } else { from },
            open: first.price,
            high: inside.iter().map(|t| t.price).max()?,
            low: inside.iter().map(|t| t.price).min()?,
            close: inside.last()?.price,
            volume: inside.iter().map(|t| t.quantity).sum(),
            trades: inside.len() as u64,
        })
    }

    #[test]
    fn a_rolling_window_sums_its_trades_and_says_when_it_is_partial() {
        const SECOND: u64 = 1_000_000_000;
        let trades = [
            trade(0, 100, 5),
            trade(10, 103, 1),
            trade(59, 99, 2),
            trade(60, 101, 4),
        ];
        let mut rolling = Rolling::new(60 * SECOND, 10);
        assert_eq!(rolling.at(trades[0].ts), None);
        for t in &trades {
            rolling.push(t);
        }
        let now = trades[0].ts + 70 * SECOND; // the first trade has left
        assert_eq!(
            rolling.at(now),
            Some(Candle {
                start: now - 60 * SECOND,
                open: 103,
                high: 103,
                low: 99,
                close: 101,
                volume: 7,
                trades: 3
            })
        );
        // Time does not run back: the first trade stays out.
        assert_eq!(rolling.at(trades[0].ts).map(|c| c.trades), Some(3));
        assert_eq!(rolling.at(now + 60 * SECOND), None);
        // Room for 2: the trade at 0 s is dropped while still in the
        // window, so the candle starts at the oldest held, 10 s; once the
        // window has passed 0 s, it starts where the window does.
        let mut small = Rolling::new(60 * SECOND, 2);
        for t in &trades[..3] {
            small.push(t);
        }
        let partial = small.at(trades[0].ts + 30 * SECOND).unwrap();
        assert_eq!(
            (partial.start, partial.trades, partial.high),
            (trades[1].ts, 2, 103)
        );
        let whole = small.at(trades[0].ts + 65 * SECOND).unwrap();
        assert_eq!((whole.start, whole.trades), (trades[0].ts + 5 * SECOND, 2));
        // Rebuilt over a full history: its oldest is taken as the last dropped.
        let mut over = Rolling::over(60 * SECOND, 2, trades[1..3].iter());
        assert_eq!(over.at(trades[2].ts).unwrap().start, trades[1].ts);
        assert_eq!(Rolling::over(60 * SECOND, 0, trades.iter()).at(0), None);
    }

    proptest::proptest! {
        #[test]
        fn a_rolling_window_equals_the_naive_one_at_every_read(
            steps in proptest::collection::vec((0u64..30, proptest::option::of((90u64..110, 1u64..9))), 1..200),
            keep in 0usize..12,
            span in 1u64..60,
        ) {
            let second = 1_000_000_000;
            let mut rolling = Rolling::new(span * second, keep);
            let mut pushed = Vec::new();
            let mut now = 1_700_000_000 * second;
            for (advance, trade_of) in steps {
                now += advance * second / 3;
                match trade_of {
                    Some((price, quantity)) => {
                        let t = Trade { ts: now, price, quantity, ..trade(0, 0, 0) };
                        rolling.push(&t);
                        pushed.push(t);
                    }
                    None => proptest::prop_assert_eq!(
                        rolling.at(now),
                        naive(&pushed, keep, now, span * second)
                    ),
                }
            }
        }
    }
}
