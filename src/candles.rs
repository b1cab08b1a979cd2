//! Candles (open, high, low, close, volume): over fixed intervals, merged
//! on request from candles of each second kept up as trades arrive
//! ([`BySecond`]), what a chart of the market reads; and one over a moving
//! window ([`Rolling`]), for `GET /ticker`'s last 24 hours. Pure: the
//! replica keeps both over the trades it keeps, and the publisher keeps
//! the `candles` channel's minute with `Candle::of` and
//! `Candle::add_later`.

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
    pub(crate) fn of(start: Timestamp, trade: &Trade) -> Candle {
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

    /// Adds a trade that came after every trade in it.
    pub(crate) fn add_later(&mut self, trade: &Trade) {
        self.close = trade.price;
        self.high = self.high.max(trade.price);
        self.low = self.low.min(trade.price);
        self.volume += trade.quantity;
        self.trades += 1;
    }

    /// Adds the trades of `earlier`, which all came before those in it
    /// (candles are merged walking back in time).
    fn add_earlier(&mut self, earlier: &Candle) {
        self.open = earlier.open;
        self.high = self.high.max(earlier.high);
        self.low = self.low.min(earlier.low);
        self.volume += earlier.volume;
        self.trades += earlier.trades;
    }
}

/// What a history kept to its newest trades knows of those it dropped for
/// room: the candles and the 24 h window leave out what they reach back
/// to. Written in the state file, so a restart knows it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dropped {
    /// Nothing was dropped.
    #[default]
    Never,
    /// The newest trade dropped was at this time.
    Until(Timestamp),
    /// Not said (a state file of the original service, or of a version
    /// before this was written): a full history is taken to have dropped
    /// a trade just before its oldest.
    Unknown,
}

/// A second in ns: the grain [`BySecond`] keeps.
const SECOND: u64 = 1_000_000_000;

/// One candle for each second that holds a trade, over the newest `keep`
/// trades, kept up as trades arrive: a read of any whole number of seconds
/// merges seconds, newest first, instead of walking the trades (which a
/// busy day makes 100,000 steps). A second that loses its oldest trade to
/// the bound is dropped whole (a candle cannot give a trade back), and a
/// candle whose interval reaches back to a dropped second is left out, so
/// every candle shown is whole.
#[derive(Debug)]
pub struct BySecond {
    keep: usize,
    /// Each second's candle and the number of its first trade, oldest first.
    seconds: VecDeque<(u64, Candle)>,
    /// Trades pushed; the newest is number `pushed`.
    pushed: u64,
    /// The start of the newest second dropped, if any was.
    dropped: Option<Timestamp>,
}

impl BySecond {
    /// No trades yet; at most `keep` to be held.
    pub fn new(keep: usize) -> Self {
        BySecond {
            keep,
            seconds: VecDeque::new(),
            pushed: 0,
            dropped: None,
        }
    }

    /// The seconds of `kept` (oldest first), a history kept to its newest
    /// `keep` that `dropped` older trades: the second of the newest one
    /// dropped is dropped too, if it holds kept trades (not said, a full
    /// history's oldest second is taken to have lost one).
    pub fn over<'t>(
        keep: usize,
        kept: impl ExactSizeIterator<Item = &'t Trade>,
        dropped: Dropped,
    ) -> Self {
        let (full, kept) = may_have_dropped(keep, kept);
        let mut by_second = BySecond::new(keep);
        for trade in kept {
            by_second.push(trade);
        }
        let lost = match dropped {
            Dropped::Never => None,
            Dropped::Until(ts) => Some(ts - ts % SECOND),
            Dropped::Unknown if full => by_second.seconds.front().map(|(_, c)| c.start),
            Dropped::Unknown => None,
        };
        if let Some(lost) = lost {
            if by_second
                .seconds
                .front()
                .is_some_and(|(_, c)| c.start == lost)
            {
                by_second.seconds.pop_front();
            }
            by_second.dropped = Some(lost);
        }
        by_second
    }

    /// The start of the newest second dropped for room, if any was: a
    /// candle starting at or before it is not whole.
    pub fn dropped(&self) -> Option<Timestamp> {
        self.dropped
    }

    /// Adds the newest trade.
    pub fn push(&mut self, trade: &Trade) {
        let start = trade.ts - trade.ts % SECOND;
        if self.keep == 0 {
            // A history of 0 drops every trade, and with it its second.
            self.dropped = Some(start);
            return;
        }
        self.pushed += 1;
        match self.seconds.back_mut() {
            Some((_, candle)) if candle.start == start => candle.add_later(trade),
            _ => self
                .seconds
                .push_back((self.pushed, Candle::of(start, trade))),
        }
        let oldest_held = (self.pushed + 1).saturating_sub(self.keep as u64);
        while let Some(&(first, candle)) = self.seconds.front() {
            if first >= oldest_held {
                break;
            }
            self.seconds.pop_front();
            self.dropped = Some(candle.start);
        }
    }

    /// The newest `limit` candles of `interval` ns (a whole number of
    /// seconds), oldest first, one per interval that holds a trade; with
    /// `end`, only those that start before it (whole candles: a page
    /// back from the oldest one a client has).
    pub fn candles(&self, interval: u64, limit: usize, end: Option<Timestamp>) -> Vec<Candle> {
        let mut out: Vec<Candle> = Vec::with_capacity(limit.min(1024));
        for (_, second) in self.seconds.iter().rev() {
            let start = second.start - second.start % interval;
            if end.is_some_and(|end| start >= end) {
                continue;
            }
            let full = out.len() == limit;
            match out.last_mut() {
                Some(candle) if candle.start == start => candle.add_earlier(second),
                _ if full => break,
                _ => out.push(Candle { start, ..*second }),
            }
        }
        // Only the oldest can reach back to a dropped second: any other
        // has a held second before it.
        if out
            .last()
            .zip(self.dropped)
            .is_some_and(|(oldest, dropped)| oldest.start <= dropped)
        {
            out.pop();
        }
        out.reverse();
        out
    }
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
    /// `keep` that `dropped` older trades (not said, a full one's are
    /// taken to be as new as its oldest).
    pub fn over<'t>(
        span: u64,
        keep: usize,
        kept: impl ExactSizeIterator<Item = &'t Trade>,
        dropped: Dropped,
    ) -> Self {
        let (full, kept) = may_have_dropped(keep, kept);
        let mut rolling = Rolling::new(span, keep);
        for trade in kept {
            rolling.push(trade);
        }
        rolling.dropped_until = match dropped {
            Dropped::Never => None,
            Dropped::Until(ts) => Some(ts),
            Dropped::Unknown if full => rolling.window.front().map(|&(ts, _, _)| ts),
            Dropped::Unknown => None,
        };
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

/// Whether a history kept to its newest `keep` may have dropped trades
/// before `kept` (oldest first): it is full, and its oldest is not trade 1
/// (a trade of the original service's state file, number 0, does not say).
/// Returns `kept` back, its first only peeked at.
fn may_have_dropped<'t, I: ExactSizeIterator<Item = &'t Trade>>(
    keep: usize,
    kept: I,
) -> (bool, std::iter::Peekable<I>) {
    let mut kept = kept.peekable();
    let from_the_first = kept.peek().is_some_and(|oldest| oldest.trade_id == 1);
    (kept.len() >= keep && !from_the_first, kept)
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
        let all = BySecond::over(100, trades.iter(), Dropped::Unknown).candles(MINUTE, 10, None);
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
        assert_eq!(
            BySecond::over(100, trades.iter(), Dropped::Unknown).candles(MINUTE, 2, None),
            all[1..]
        );
        // Seconds merge into any whole number of them.
        let seconds =
            BySecond::over(100, trades.iter(), Dropped::Unknown).candles(SECOND, 10, None);
        assert_eq!(seconds.len(), 6);
        assert_eq!(
            (seconds[4].start, seconds[4].volume),
            (start(0) + 185 * SECOND, 3)
        );
        // Rebuilt over a full history, whose oldest second may have lost
        // trades: the interval reaching back to it is left out, unless a
        // held second before it shows it whole.
        let full = BySecond::over(6, trades.iter(), Dropped::Unknown);
        assert_eq!(full.candles(MINUTE, 10, None), all[1..]);
        assert_eq!(full.candles(MINUTE, 2, None), all[1..]);
        assert_eq!(
            BySecond::over(5, trades[1..].iter(), Dropped::Unknown).candles(MINUTE, 3, None),
            all[1..]
        );
        // A full history whose oldest is trade 1 dropped nothing.
        let numbered: Vec<Trade> = (trades.iter().enumerate())
            .map(|(i, t)| Trade {
                trade_id: i as u64 + 1,
                ..*t
            })
            .collect();
        let first_kept = BySecond::over(6, numbered.iter(), Dropped::Unknown);
        assert_eq!(first_kept.candles(MINUTE, 10, None), all);
        assert_eq!(first_kept.dropped(), None);
        assert!(BySecond::over(3, [].iter(), Dropped::Unknown)
            .candles(MINUTE, 3, None)
            .is_empty());
        assert!(BySecond::over(0, trades.iter(), Dropped::Unknown)
            .candles(MINUTE, 3, None)
            .is_empty());
        // Told what was dropped, a full history leaves out only what
        // reaches back to it: nothing, if it was dropped in an earlier
        // interval; the oldest second, if it shared that second.
        let earlier = BySecond::over(6, trades.iter(), Dropped::Until(start(0) - SECOND));
        assert_eq!(earlier.candles(MINUTE, 10, None), all);
        assert_eq!(
            BySecond::over(6, trades.iter(), Dropped::Never).candles(MINUTE, 10, None),
            all
        );
        let same_second = BySecond::over(6, trades.iter(), Dropped::Until(trades[0].ts));
        assert_eq!(same_second.candles(MINUTE, 10, None), all[1..]);
        assert_eq!(
            same_second.dropped(),
            Some(trades[0].ts - trades[0].ts % SECOND)
        );
    }

    #[test]
    fn a_second_that_loses_a_trade_to_the_bound_is_dropped_whole() {
        let second = |s: u64, nanos: u64| Trade {
            ts: start(0) + s * SECOND + nanos,
            ..trade(0, 100 + nanos as Ticks, 1)
        };
        let mut by_second = BySecond::new(3);
        for t in [second(0, 1), second(0, 2), second(1, 3), second(1, 4)] {
            by_second.push(&t);
        }
        // The trade at 0 s + 1 ns is gone: second 0 goes with it, and the
        // minute reaching back to it is left out.
        let seconds = by_second.candles(SECOND, 10, None);
        assert_eq!(seconds.len(), 1);
        assert_eq!(
            seconds[0],
            Candle {
                start: start(0) + SECOND,
                open: 103,
                high: 104,
                low: 103,
                close: 104,
                volume: 2,
                trades: 2
            }
        );
        assert!(by_second.candles(MINUTE, 10, None).is_empty());
        // The next minute is whole.
        by_second.push(&second(60, 5));
        assert_eq!(by_second.candles(MINUTE, 10, None).len(), 1);
        assert_eq!(by_second.candles(MINUTE, 10, None)[0].start, start(1));
    }

    /// Candles the slow way: the newest `keep` of `pushed` held, each
    /// second at or before the newest dropped trade's left out, the rest
    /// grouped by interval, the newest `limit`, and the oldest left out if
    /// its interval reaches back to a dropped second.
    fn naive_candles(
        pushed: &[Trade],
        keep: usize,
        interval: u64,
        limit: usize,
        end: Option<Timestamp>,
    ) -> Vec<Candle> {
        let held = &pushed[pushed.len().saturating_sub(keep)..];
        let dropped = pushed[..pushed.len() - held.len()]
            .last()
            .map(|t| t.ts - t.ts % SECOND);
        let mut out: Vec<Candle> = Vec::new();
        for t in held
            .iter()
            .filter(|t| dropped.is_none_or(|d| t.ts - t.ts % SECOND > d))
        {
            let start = t.ts - t.ts % interval;
            match out.last_mut() {
                Some(candle) if candle.start == start => candle.add_later(t),
                _ => out.push(Candle::of(start, t)),
            }
        }
        out.retain(|candle| end.is_none_or(|end| candle.start < end));
        let mut newest = out.split_off(out.len().saturating_sub(limit));
        if newest
            .first()
            .zip(dropped)
            .is_some_and(|(oldest, d)| oldest.start <= d)
        {
            newest.remove(0);
        }
        newest
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
        let mut over = Rolling::over(60 * SECOND, 2, trades[1..3].iter(), Dropped::Unknown);
        assert_eq!(over.at(trades[2].ts).unwrap().start, trades[1].ts);
        // Unless its oldest is trade 1: nothing was dropped.
        let first = Trade {
            trade_id: 1,
            ..trades[1]
        };
        let mut from_the_first =
            Rolling::over(60 * SECOND, 2, [first, trades[2]].iter(), Dropped::Unknown);
        let at = trades[2].ts;
        assert_eq!(from_the_first.at(at).unwrap().start, at - 60 * SECOND);
        assert_eq!(
            Rolling::over(60 * SECOND, 0, trades.iter(), Dropped::Unknown).at(0),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn candles_by_second_equal_the_naive_ones_at_every_read(
            steps in proptest::collection::vec((0u64..30, proptest::option::of((90u64..110, 1u64..9))), 1..200),
            keep in 0usize..12,
            interval in proptest::sample::select(vec![1u64, 2, 5, 60]),
            limit in 1usize..5,
            end in proptest::option::of(0u64..400),
        ) {
            let mut by_second = BySecond::new(keep);
            let mut pushed = Vec::new();
            let mut now = 1_700_000_000 * SECOND;
            for (advance, trade_of) in steps {
                now += advance * SECOND / 7;
                match trade_of {
                    Some((price, quantity)) => {
                        let t = Trade { ts: now, price, quantity, ..trade(0, 0, 0) };
                        by_second.push(&t);
                        pushed.push(t);
                    }
                    None => {
                        let end = end.map(|seconds| 1_700_000_000 * SECOND + seconds * SECOND);
                        proptest::prop_assert_eq!(
                            by_second.candles(interval * SECOND, limit, end),
                            naive_candles(&pushed, keep, interval * SECOND, limit, end)
                        )
                    }
                }
            }
        }

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
