//! Answers written as JSON: orders as each route shows them, trades,
//! levels, candles, the ticker and the state file's records.

use std::fmt::Write as _;

use super::client_id::ClientOrderId;
use super::ids::{write_uuid, TradeRecord};
use super::time::write_timestamp;
use super::Wire;
use crate::candles::Candle;
use crate::engine::{OrderView, Qty, Ticks, MARKET};

/// Marks a market order's answer `"type":"market"`: its price (`0`) is
/// no limit. A limit order's answers stay as the original's were.
fn write_market(out: &mut String, order: &OrderView) {
    if order.price == MARKET {
        out.push_str(",\"type\":\"market\"");
    }
}

/// Adds `"client_order_id"` to the order object just written to `out`
/// (before its closing brace), if the order has one. The name's
/// characters need no escaping (see [`ClientOrderId`]).
pub fn client_id_field(out: &mut String, name: Option<&ClientOrderId>) {
    if let Some(name) = name {
        out.pop();
        out.push_str(",\"client_order_id\":\"");
        out.push_str(name.as_str());
        out.push_str("\"}");
    }
}

/// What `GET /ticker` shows (see [`Wire::ticker`]).
#[derive(Clone, Copy, Debug)]
pub struct Ticker<'a> {
    /// The feed `seq` the figures are as of.
    pub seq: u64,
    /// The best bid: price and total quantity there.
    pub best_bid: Option<(Ticks, Qty)>,
    /// The best ask: price and total quantity there.
    pub best_ask: Option<(Ticks, Qty)>,
    /// The newest trade.
    pub last_trade: Option<&'a TradeRecord>,
    /// The trades of the last 24 hours as one candle, its `start` the
    /// window's (see [`crate::candles::Rolling`]).
    pub last_24h: Option<Candle>,
}

impl Wire {
    /// This service's `GET /health` body.
    pub fn health(&self) -> String {
        format!("{{\"status\":\"ok\",\"symbol\":\"{}\"}}", self.symbol)
    }

    fn write_common(&self, out: &mut String, order: &OrderView) {
        out.push_str("{\"id\":\"");
        write_uuid(out, order.id);
        out.push_str("\",\"quantity\":");
        let _ = write!(out, "{}", order.quantity);
        out.push_str(",\"price\":");
        self.tick.write_price(out, order.price);
        let _ = write!(
            out,
            ",\"side\":{},\"status\":\"{}\",\"filled_quantity\":{}",
            order.side as i8,
            order.status.as_str(),
            order.filled
        );
        write_market(out, order);
    }

    /// The `POST /order/` answer: the order as it stands after matching.
    pub fn placed(&self, out: &mut String, order: &OrderView) {
        self.write_common(out, order);
        out.push('}');
    }

    /// One entry of `GET /orders` (and of the state file).
    pub fn listed(&self, out: &mut String, order: &OrderView) {
        self.write_common(out, order);
        out.push_str(",\"average_traded_price\":");
        self.tick.write_average(out, order);
        let _ = write!(
            out,
            ",\"traded_quantity\":{},\"order_alive\":{}}}",
            order.filled,
            order.status.is_resting()
        );
    }

    /// One order of the state file: a `GET /orders` entry plus the exact
    /// traded notional in ticks (`average_traded_price` is rounded), so a
    /// restart rebuilds the same averages.
    pub fn saved(&self, out: &mut String, order: &OrderView) {
        self.listed(out, order);
        out.pop();
        let _ = write!(out, ",\"notional\":{}}}", order.notional);
    }

    /// The `GET /order/{id}` answer.
    pub fn fetched(&self, out: &mut String, order: &OrderView) {
        out.push_str("{\"order_id\":\"");
        write_uuid(out, order.id);
        out.push_str("\",\"order_price\":");
        self.tick.write_price(out, order.price);
        let _ = write!(out, ",\"order_quantity\":{}", order.quantity);
        out.push_str(",\"average_traded_price\":");
        self.tick.write_average(out, order);
        let _ = write!(
            out,
            ",\"traded_quantity\":{},\"order_alive\":{},\"side\":{},\"status\":\"{}\"",
            order.filled,
            order.status.is_resting(),
            order.side as i8,
            order.status.as_str()
        );
        write_market(out, order);
        out.push('}');
    }

    /// One trade as `GET /trades` and the feed show it.
    pub fn trade_fields(&self, out: &mut String, record: &TradeRecord) {
        let trade = &record.trade;
        out.push_str("\"unique_id\":\"");
        write_uuid(out, record.unique_id);
        out.push_str("\",\"execution_timestamp\":\"");
        write_timestamp(out, trade.ts);
        out.push_str("\",\"buy_order_id\":\"");
        write_uuid(out, trade.buy_order());
        out.push_str("\",\"sell_order_id\":\"");
        write_uuid(out, trade.sell_order());
        out.push_str("\",\"price\":");
        self.tick.write_price(out, trade.price);
        let _ = write!(out, ",\"quantity\":{}", trade.quantity);
    }

    /// Aggregated levels as `{"price":..,"quantity":..}` objects joined by
    /// commas (a feed snapshot's and `GET /book`'s `bids` and `asks`).
    pub fn levels(&self, out: &mut String, levels: impl Iterator<Item = (Ticks, Qty)>) {
        for (i, (price, quantity)) in levels.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"price\":");
            self.tick.write_price(out, price);
            let _ = write!(out, ",\"quantity\":{quantity}}}");
        }
    }

    /// The `GET /ticker` answer: the best bid and ask (`price`,
    /// `quantity`), the last trade, and the candle of the last 24 hours
    /// (`from` its start), each `null` when there is none, with the feed
    /// `seq` they are as of.
    pub fn ticker(&self, out: &mut String, ticker: &Ticker<'_>) {
        let _ = write!(out, "{{\"seq\":{}", ticker.seq);
        for (name, level) in [("best_bid", ticker.best_bid), ("best_ask", ticker.best_ask)] {
            let _ = write!(out, ",\"{name}\":");
            match level {
                Some(level) => self.levels(out, std::iter::once(level)),
                None => out.push_str("null"),
            }
        }
        out.push_str(",\"last_trade\":");
        match ticker.last_trade {
            Some(record) => self.trade(out, record),
            None => out.push_str("null"),
        }
        out.push_str(",\"last_24h\":");
        match &ticker.last_24h {
            Some(candle) => self.candle_from(out, "from", candle),
            None => out.push_str("null"),
        }
        out.push('}');
    }

    /// One candle of `GET /candles`.
    pub fn candle(&self, out: &mut String, candle: &Candle) {
        self.candle_from(out, "start", candle);
    }

    /// A candle, its start time written under the key named by `start`.
    fn candle_from(&self, out: &mut String, start: &str, candle: &Candle) {
        let _ = write!(out, "{{\"{start}\":\"");
        write_timestamp(out, candle.start);
        out.push('"');
        for (name, price) in [
            ("open", candle.open),
            ("high", candle.high),
            ("low", candle.low),
            ("close", candle.close),
        ] {
            let _ = write!(out, ",\"{name}\":");
            self.tick.write_price(out, price);
        }
        let _ = write!(
            out,
            ",\"volume\":{},\"trades\":{}}}",
            candle.volume, candle.trades
        );
    }

    /// One trade object of `GET /trades`.
    pub fn trade(&self, out: &mut String, record: &TradeRecord) {
        out.push('{');
        self.trade_fields(out, record);
        out.push('}');
    }

    /// One trade of the state file: a `GET /trades` entry plus the taker's
    /// side, so a restart knows which order was the taker.
    pub fn saved_trade(&self, out: &mut String, record: &TradeRecord) {
        out.push('{');
        self.trade_fields(out, record);
        let _ = write!(out, ",\"taker_side\":{}}}", record.trade.taker_side as i8);
    }
}
