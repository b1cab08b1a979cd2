//! Candles (open, high, low, close, volume) over fixed intervals, made from
//! a run of trades on request: what a chart of the market reads; and one
//! over a moving window, for `GET /ticker`'s last 24 hours. Pure: the front
//! (candles) and the replica (the ticker) call it on the trades they keep.

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

/// One candle of the trades at or after `from` (`trades` oldest first),
/// or `None` if there are none. Its `start` is `from`, unless
/// `older_trades_dropped` and the kept trades all lie inside the window:
/// then older ones in it may be gone, and `start` is the oldest kept
/// trade's time, the start of what the candle covers for sure.
pub fn since<'t>(
    trades: impl DoubleEndedIterator<Item = &'t Trade>,
    from: Timestamp,
    older_trades_dropped: bool,
) -> Option<Candle> {
    let mut window: Option<Candle> = None;
    let mut reached_older = false;
    for trade in trades.rev() {
        if trade.ts < from {
            reached_older = true;
            break;
        }
        match window.as_mut() {
            Some(candle) => {
                candle.add_earlier(trade);
                candle.start = trade.ts;
            }
            None => window = Some(Candle::of(trade.ts, trade)),
        }
    }
    if let Some(candle) = window.as_mut() {
        if reached_older || !older_trades_dropped {
            candle.start = from;
        }
    }
    window
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

    #[test]
    fn a_window_sums_the_trades_from_its_start_and_says_when_it_is_partial() {
        let trades = [
            trade(0, 100, 5),
            trade(10, 103, 1),
            trade(59, 99, 2),
            trade(60, 101, 4),
        ];
        let from = trades[1].ts;
        let window = Candle {
            start: from,
            open: 103,
            high: 103,
            low: 99,
            close: 101,
            volume: 7,
            trades: 3,
        };
        assert_eq!(since(trades.iter(), from, false), Some(window));
        // A trade before the window shows it whole even if older ones went.
        assert_eq!(since(trades.iter(), from, true), Some(window));
        // Every kept trade inside the window, older ones dropped: the
        // window is only sure from the oldest kept trade on.
        let earlier = trades[0].ts - 1;
        let partial = since(trades.iter(), earlier, true).unwrap();
        assert_eq!(
            (partial.start, partial.trades, partial.volume),
            (trades[0].ts, 4, 12)
        );
        let whole = since(trades.iter(), earlier, false).unwrap();
        assert_eq!((whole.start, whole.open, whole.trades), (earlier, 100, 4));
        assert_eq!(since(trades.iter(), trades[3].ts + 1, false), None);
        assert_eq!(since([].iter(), 0, true), None);
    }
}
