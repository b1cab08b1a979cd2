//! The state file `order_book_state.json`: the original service's layout
//! (`{"buy_orders":[...],"sell_orders":[...],"trades":[...]}`, orders shaped
//! as in `GET /orders`, trades as in `GET /trades`) plus what an exact
//! restart needs and the original lacked, as extra fields the original's
//! readers ignore:
//!
//! - top level: `seq` (the last journal record the file covers),
//!   `last_trade_id`, `finished_orders` (the fetchable history, oldest
//!   first), `tick_size` (the tick the notionals count in: a start with
//!   another is refused) and, last, `crc32` (of every byte before it: a
//!   file damaged after it was written is refused);
//! - each order: `notional`, its exact traded value in ticks;
//! - each trade: `taker_side`.
//!
//! A file without them (written by the original Python service) loads too:
//! `seq` 0, notionals from the average price, trade ids kept as they were.
//! Writing is atomic: a temporary file, fsync, rename, fsync of the
//! directory, so a crash leaves the old file or the new one, never half.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::recorded_settings;
use crate::api::{self, ClientOrderId, TickSize, TradeRecord, Wire, CLIENT_ID_RULE};
use crate::candles::Dropped;
use crate::client_ids::ClientIds;
use crate::engine::{OrderBook, OrderStatus, OrderView, Side, Ticks, Trade, MARKET};

/// The state file's name, the original service's: the default of
/// `--state-file`, inside the data directory.
pub const STATE_FILE: &str = "order_book_state.json";

/// The directory holding the state file at `path` (where its `.tmp`
/// goes, and whose sync makes the rename durable).
pub fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A state file's contents, decoded.
#[derive(Debug, Default, PartialEq)]
pub struct State {
    /// The last journal record the file covers (0: none, or a file of the
    /// original service).
    pub seq: u64,
    /// The last trade number handed out.
    pub last_trade_id: u64,
    /// The market-data feed's `seq` as of `seq` (0 for a file of the
    /// original service).
    pub feed_seq: u64,
    /// Resting buy orders, best first, oldest first within a price.
    pub buy_orders: Vec<OrderView>,
    /// Resting sell orders, in the same order.
    pub sell_orders: Vec<OrderView>,
    /// Finished orders kept fetchable, oldest first.
    pub finished_orders: Vec<OrderView>,
    /// Trades, oldest first.
    pub trades: Vec<TradeRecord>,
    /// What the history knows of the trades it dropped for room.
    pub trades_dropped: Dropped,
    /// The `client_order_id`s of the orders above that have one.
    pub names: ClientIds,
}

impl State {
    /// Puts the orders into `book` (empty, built with the settings the
    /// service runs with) and continues its trade numbering.
    pub fn restore_into(&self, book: &mut OrderBook) -> Result<(), String> {
        for order in self
            .buy_orders
            .iter()
            .chain(&self.sell_orders)
            .chain(&self.finished_orders)
        {
            book.restore(*order)
                .map_err(|e| format!("order {}: {e}", uuid_text(order.id)))?;
        }
        book.set_last_trade_id(self.last_trade_id);
        Ok(())
    }
}

fn uuid_text(id: u128) -> String {
    let mut text = String::with_capacity(36);
    api::write_uuid(&mut text, id);
    text
}

/// Writes the state of `book` and `trades` (oldest first) as of journal
/// record `seq`, each order with its `client_order_id` from `names`, not
/// saying what the trade history dropped.
pub fn write_state<'a>(
    book: &OrderBook,
    names: &ClientIds,
    trades: impl Iterator<Item = &'a TradeRecord>,
    seq: u64,
    feed_seq: u64,
    wire: &Wire,
) -> Vec<u8> {
    write_state_dropped(book, names, (trades, Dropped::Unknown), seq, feed_seq, wire)
}

/// [`write_state`], saying what the trade history dropped for room
/// (`trades_dropped_until`: the time of the newest trade dropped, 0 for
/// none), so a restart leaves out no candle that was whole.
pub fn write_state_dropped<'a>(
    book: &OrderBook,
    names: &ClientIds,
    (trades, dropped): (impl Iterator<Item = &'a TradeRecord>, Dropped),
    seq: u64,
    feed_seq: u64,
    wire: &Wire,
) -> Vec<u8> {
    let resting = book.resting_count();
    let mut out = String::with_capacity(256 + (resting + book.finished_count()) * 230);
    let list = |out: &mut String, key: &str, orders: &mut dyn Iterator<Item = OrderView>| {
        out.push_str(key);
        for (i, order) in orders.enumerate() {
            if i > 0 {
                out.push(',');
            }
            wire.saved(out, &order);
            api::client_id_field(out, names.name_of(order.id));
        }
        out.push(']');
    };
    list(&mut out, "{\"buy_orders\":[", &mut book.resting(Side::Buy));
    list(
        &mut out,
        ",\"sell_orders\":[",
        &mut book.resting(Side::Sell),
    );
    out.push_str(",\"trades\":[");
    for (i, trade) in trades.enumerate() {
        if i > 0 {
            out.push(',');
        }
        wire.saved_trade(&mut out, trade);
    }
    out.push(']');
    list(&mut out, ",\"finished_orders\":[", &mut book.finished());
    match dropped {
        Dropped::Never => out.push_str(",\"trades_dropped_until\":0"),
        Dropped::Until(ts) => out.push_str(&format!(",\"trades_dropped_until\":{ts}")),
        Dropped::Unknown => {}
    }
    out.push_str(&format!(
        ",\"seq\":{seq},\"feed_seq\":{feed_seq},\"last_trade_id\":{},\"tick_size\":\"{}\"",
        book.last_trade_id(),
        wire.tick
    ));
    let crc = crc32fast::hash(out.as_bytes());
    out.push_str(&format!("{CRC_KEY}{crc:08x}\"}}"));
    out.into_bytes()
}

/// The last field of the files we write: the CRC-32 of every byte before
/// it, in 8 hex digits. JSON alone caught about half of the one-byte
/// damages a probe made; the rest loaded, a resting quantity 8 read as 9.
const CRC_KEY: &str = ",\"crc32\":\"";

/// Checks the `crc32` that ends a file we wrote, and says whether there
/// was one to check; a file without one (the original service's, or ours
/// from before it) is taken as it is.
fn check_crc(bytes: &[u8]) -> Result<bool, String> {
    let end = bytes.trim_ascii_end();
    let tail = CRC_KEY.len() + 8 + 2;
    let Some(at) = end.len().checked_sub(tail) else {
        return Ok(false);
    };
    let (covered, field) = end.split_at(at);
    let Some(digits) = field
        .strip_prefix(CRC_KEY.as_bytes())
        .and_then(|rest| rest.strip_suffix(b"\"}"))
    else {
        return Ok(false);
    };
    let written = std::str::from_utf8(digits)
        .ok()
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or("crc32: must be 8 hex digits")?;
    let crc = crc32fast::hash(covered);
    if crc != written {
        return Err(format!(
            "crc32: the file's bytes have CRC-32 {crc:08x}, and it says {written:08x}: \
             it was damaged or changed after it was written (a file edited by hand loads \
             once its crc32 field is removed)"
        ));
    }
    Ok(true)
}

/// Replaces the state file at `path` with `bytes`: never half-written, even
/// if the process or the machine stops in the middle. The bytes go to
/// `<path>.tmp` beside it first, then are renamed over it.
/// A write that fails (a full disk) removes its `.tmp`: left, a state
/// file's worth of bytes would hold the space the journal needs next.
pub fn save_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = temporary_of(path);
    let renamed = File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(error) = renamed {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    // The rename is durable once the directory holding both is synced.
    File::open(directory_of(path))?.sync_all()
}

/// Removes the `.tmp` a write cut short by a crash left beside the file at
/// `path` (the file itself holds), saying whether there was one. Called
/// at start, with the state locked, so no write of ours is under way.
pub fn remove_cut_short(path: &Path) -> io::Result<bool> {
    match fs::remove_file(temporary_of(path)) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// `<path>.tmp`, where the file at `path` is written before it replaces it.
pub(crate) fn temporary_of(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    PathBuf::from(temporary)
}

#[derive(Deserialize)]
struct FileLayout<'a> {
    #[serde(borrow)]
    buy_orders: Vec<SavedOrder<'a>>,
    #[serde(borrow)]
    sell_orders: Vec<SavedOrder<'a>>,
    #[serde(default, borrow)]
    trades: Vec<SavedTrade<'a>>,
    #[serde(default, borrow)]
    finished_orders: Vec<SavedOrder<'a>>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    feed_seq: u64,
    last_trade_id: Option<u64>,
    /// The time of the newest trade dropped from the history, 0 for none
    /// (not in the original's files, nor in ours before it was written).
    trades_dropped_until: Option<u64>,
    /// The tick its notionals count in (none in the original's files,
    /// which have no notionals).
    tick_size: Option<String>,
    /// The CRC-32 of every byte before it (checked by `check_crc`, which
    /// finds it only last and as written).
    crc32: Option<serde::de::IgnoredAny>,
}

/// A price as written, read exactly (`TickSize::ticks_of`).
type SavedPrice<'a> = &'a RawValue;

/// A text field, borrowed from the file unless escapes make it a copy.
/// (serde borrows a `Cow<str>` field itself, but not one inside an
/// `Option`, which it always copies.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Borrowing<'a>(std::marker::PhantomData<&'a str>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Borrowing<'a> {
            type Value = Cow<'a, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(text))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text.to_owned()))
            }
        }
        deserializer
            .deserialize_str(Borrowing(std::marker::PhantomData))
            .map(Text)
    }
}

// Text fields borrow from the file where they can (ids, statuses: no
// escapes), so a million orders load without a million small allocations.
#[derive(Deserialize)]
struct SavedOrder<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    quantity: u64,
    #[serde(borrow)]
    price: SavedPrice<'a>,
    side: serde_json::Value,
    #[serde(borrow)]
    status: Option<Text<'a>>,
    filled_quantity: Option<u64>,
    traded_quantity: Option<u64>,
    average_traded_price: Option<f64>,
    notional: Option<u128>,
    /// `"market"` on a market order (`Wire::placed` writes it), whose
    /// price is 0: no limit.
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    client_order_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct SavedTrade<'a> {
    #[serde(borrow)]
    unique_id: Cow<'a, str>,
    #[serde(borrow)]
    execution_timestamp: Cow<'a, str>,
    #[serde(borrow)]
    buy_order_id: Cow<'a, str>,
    #[serde(borrow)]
    sell_order_id: Cow<'a, str>,
    #[serde(borrow)]
    price: SavedPrice<'a>,
    quantity: u64,
    taker_side: Option<serde_json::Value>,
}

fn parse_side(value: &serde_json::Value) -> Result<Side, String> {
    match value {
        serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(Side::Buy),
        serde_json::Value::Number(n) if n.as_i64() == Some(-1) => Ok(Side::Sell),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("buy") => Ok(Side::Buy),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("sell") => Ok(Side::Sell),
        other => Err(format!("side {other} is not 1, -1, \"buy\" or \"sell\"")),
    }
}

fn parse_id(text: &str, what: &str) -> Result<u128, String> {
    api::parse_uuid(text).ok_or_else(|| format!("{what} {text:?} is not a UUID"))
}

fn parse_status(text: &str) -> Result<OrderStatus, String> {
    Ok(match text {
        "open" => OrderStatus::Open,
        "partially filled" => OrderStatus::PartiallyFilled,
        "filled" => OrderStatus::Filled,
        "cancelled" => OrderStatus::Cancelled,
        other => return Err(format!("unknown status {other:?}")),
    })
}

/// The ticks of a saved price: a JSON number, or a numeric string.
fn saved_ticks(wire: &Wire, price: SavedPrice<'_>) -> Result<Ticks, String> {
    let text =
        api::number_text(price).ok_or_else(|| format!("price {} is not a number", price.get()))?;
    wire.tick
        .ticks_of(&text)
        .map_err(|e| format!("price {} {e}", price.get()))
}

/// The ticks of a saved market order's price, which must read as 0.
fn market_ticks(price: SavedPrice<'_>) -> Result<Ticks, String> {
    match api::number_text(price).map(|text| text.trim().parse::<f64>()) {
        Some(Ok(0.0)) => Ok(MARKET),
        _ => Err(format!("a market order's price {} is not 0", price.get())),
    }
}

impl SavedOrder<'_> {
    fn decode(&self, wire: &Wire, list: &str, index: usize) -> Result<OrderView, String> {
        let fail = |problem: String| format!("{list}[{index}]: {problem}");
        let id = parse_id(&self.id, "id").map_err(fail)?;
        let price = match self.kind.as_ref().map(|kind| &*kind.0) {
            None | Some("limit") => saved_ticks(wire, self.price),
            Some("market") => market_ticks(self.price),
            Some(other) => Err(format!("unknown order type {other:?}")),
        }
        .map_err(fail)?;
        let side = parse_side(&self.side).map_err(fail)?;
        let filled = self.filled_quantity.or(self.traded_quantity).unwrap_or(0);
        let status = match &self.status {
            Some(text) => parse_status(&text.0).map_err(fail)?,
            None if filled > 0 => OrderStatus::PartiallyFilled,
            None => OrderStatus::Open,
        };
        let notional = match (self.notional, self.average_traded_price) {
            (Some(notional), _) => notional,
            // The original kept only the average: the closest whole notional.
            (None, Some(average)) if filled > 0 => {
                (average / wire.tick.as_f64() * filled as f64).round() as u128
            }
            _ => 0,
        };
        Ok(OrderView {
            id,
            side,
            price,
            quantity: self.quantity,
            filled,
            notional,
            status,
        })
    }
}

impl SavedTrade<'_> {
    fn decode(&self, wire: &Wire, index: usize) -> Result<TradeRecord, String> {
        let fail = |problem: String| format!("trades[{index}]: {problem}");
        let unique_id = parse_id(&self.unique_id, "unique_id").map_err(fail)?;
        let buy = parse_id(&self.buy_order_id, "buy_order_id").map_err(fail)?;
        let sell = parse_id(&self.sell_order_id, "sell_order_id").map_err(fail)?;
        let ts = api::parse_timestamp(&self.execution_timestamp).ok_or_else(|| {
            fail(format!(
                "execution_timestamp {:?} is not an RFC 3339 UTC time",
                self.execution_timestamp
            ))
        })?;
        let price = saved_ticks(wire, self.price).map_err(fail)?;
        let taker_side = match &self.taker_side {
            Some(value) => parse_side(value).map_err(fail)?,
            None => Side::Buy,
        };
        let (taker, maker) = match taker_side {
            Side::Buy => (buy, sell),
            Side::Sell => (sell, buy),
        };
        Ok(TradeRecord {
            unique_id,
            trade: Trade {
                trade_id: api::trade_number(unique_id).unwrap_or(0),
                price,
                quantity: self.quantity,
                taker,
                maker,
                taker_side,
                ts,
            },
        })
    }
}

/// Reads the state file at `path`: `Ok(None)` if there is none, an error
/// naming the file and the problem if it cannot be used (the file is left
/// as it is).
pub fn load(path: &Path, wire: &Wire) -> Result<Option<State>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read state file {}: {e}", path.display())),
    };
    decode(&bytes, wire)
        .map(Some)
        .map_err(|problem| format!("state file {} is unusable: {problem}", path.display()))
}

/// Decodes a state file's bytes.
pub fn decode(bytes: &[u8], wire: &Wire) -> Result<State, String> {
    let checked = check_crc(bytes)?;
    let layout: FileLayout = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if layout.crc32.is_some() && !checked {
        // Rewritten (spaced, indented, its fields moved): its bytes are
        // not the ones the CRC was taken of, so it cannot vouch for them.
        return Err(
            "crc32: the field is not where the service writes it (last, with no \
                    spaces), so the file was changed after it was written (a file edited by \
                    hand loads once its crc32 field is removed)"
                .to_string(),
        );
    }
    if let Some(text) = &layout.tick_size {
        let written = TickSize::parse(text).map_err(|why| format!("tick_size: {why}"))?;
        if written != wire.tick {
            return Err(recorded_settings::differs("it", &written, &wire.tick));
        }
    }
    let orders = |list: &[SavedOrder], name: &str| -> Result<Vec<OrderView>, String> {
        list.iter()
            .enumerate()
            .map(|(i, order)| order.decode(wire, name, i))
            .collect()
    };
    let trades: Vec<TradeRecord> = layout
        .trades
        .iter()
        .enumerate()
        .map(|(i, trade)| trade.decode(wire, i))
        .collect::<Result<_, _>>()?;
    // The original's file has no count: its trades are numbered as if they
    // were ours, so our first is never trade 1, which would claim a history
    // from the very first trade after its trades have left it.
    let last_trade_id = layout.last_trade_id.unwrap_or_else(|| {
        let newest = trades.iter().map(|t| t.trade.trade_id).max().unwrap_or(0);
        newest.max(trades.len() as u64)
    });
    let mut state = State {
        seq: layout.seq,
        feed_seq: layout.feed_seq,
        last_trade_id,
        buy_orders: orders(&layout.buy_orders, "buy_orders")?,
        sell_orders: orders(&layout.sell_orders, "sell_orders")?,
        finished_orders: orders(&layout.finished_orders, "finished_orders")?,
        trades,
        trades_dropped: match layout.trades_dropped_until {
            None => Dropped::Unknown,
            Some(0) => Dropped::Never,
            Some(ts) => Dropped::Until(ts),
        },
        names: ClientIds::default(),
    };
    let mut seen = HashSet::new();
    for (saved, decoded, list) in [
        (&layout.buy_orders, &state.buy_orders, "buy_orders"),
        (&layout.sell_orders, &state.sell_orders, "sell_orders"),
        (
            &layout.finished_orders,
            &state.finished_orders,
            "finished_orders",
        ),
    ] {
        for (i, (saved, order)) in saved.iter().zip(decoded).enumerate() {
            let Some(text) = &saved.client_order_id else {
                continue;
            };
            let fail = |why: &str| format!("{list}[{i}]: client_order_id {:?} {why}", text.0);
            let name = ClientOrderId::parse(&text.0).ok_or_else(|| fail(CLIENT_ID_RULE))?;
            if !seen.insert(name) {
                return Err(fail("names another order too"));
            }
            state.names.bind(order.id, name);
        }
    }
    for (list, side, name) in [
        (&state.buy_orders, Side::Buy, "buy_orders"),
        (&state.sell_orders, Side::Sell, "sell_orders"),
    ] {
        if let Some((i, _)) = list
            .iter()
            .enumerate()
            .find(|(_, o)| o.side != side || !o.status.is_resting())
        {
            return Err(format!("{name}[{i}]: not a resting {side:?} order"));
        }
    }
    if let Some((i, _)) = state
        .finished_orders
        .iter()
        .enumerate()
        .find(|(_, o)| o.status.is_resting())
    {
        return Err(format!("finished_orders[{i}]: the order is still resting"));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TickSize;
    use crate::engine::{BookConfig, Command, CommandKind, Event, TimeInForce};

    fn wire() -> Wire {
        Wire::default_for_tests()
    }

    fn place(book: &mut OrderBook, id: u128, side: Side, price: u64, quantity: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let command = Command {
            ts: 1_700_000_000_000_000_000 + id as u64 * 1_000,
            kind: CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif: TimeInForce::GoodTillCancel,
            },
        };
        book.apply(&command, &mut events);
        events
    }

    /// A small book that keeps 4 finished orders.
    fn small_book() -> BookConfig {
        BookConfig {
            order_capacity: 16,
            level_capacity: 8,
            finished_capacity: 4,
            resident: false,
            sparse_index: false,
        }
    }

    /// A state file's text without its `crc32`, as one edited by hand.
    fn unchecked(text: &str) -> String {
        format!("{}}}", &text[..text.rfind(CRC_KEY).unwrap()])
    }

    #[test]
    fn a_file_rewritten_with_its_crc32_kept_is_refused_and_loads_once_it_is_removed() {
        let book = OrderBook::new(small_book());
        let bytes = write_state(
            &book,
            &ClientIds::default(),
            std::iter::empty(),
            1,
            0,
            &wire(),
        );
        assert!(decode(&bytes, &wire()).is_ok());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let rewritten = [
            serde_json::to_string_pretty(&value).unwrap(),
            text.replace("\"crc32\":", "\"crc32\": "),
            format!("{} ", text.trim_end()),
        ];
        for (i, file) in rewritten.iter().enumerate() {
            let refused = decode(file.as_bytes(), &wire());
            if i == 2 {
                // Trailing blanks change no byte the CRC covers.
                assert!(refused.is_ok(), "{refused:?}");
                continue;
            }
            let why = refused.err().unwrap_or_default();
            assert!(
                why.starts_with("crc32: the field is not where"),
                "{i}: {why}"
            );
        }
        let mut edited = value;
        edited.as_object_mut().unwrap().remove("crc32");
        let edited = serde_json::to_string_pretty(&edited).unwrap();
        assert!(decode(edited.as_bytes(), &wire()).is_ok());
    }

    #[test]
    fn the_file_says_what_the_trade_history_dropped_and_one_that_does_not_is_unknown() {
        let book = OrderBook::new(small_book());
        let names = ClientIds::default();
        for dropped in [Dropped::Never, Dropped::Until(1_764_000_000_123_456_000)] {
            let trades = (std::iter::empty(), dropped);
            let bytes = write_state_dropped(&book, &names, trades, 1, 0, &wire());
            assert_eq!(decode(&bytes, &wire()).unwrap().trades_dropped, dropped);
        }
        let unsaid = write_state(&book, &names, std::iter::empty(), 1, 0, &wire());
        let text = String::from_utf8(unsaid.clone()).unwrap();
        assert!(!text.contains("trades_dropped_until"), "{text}");
        assert_eq!(
            decode(&unsaid, &wire()).unwrap().trades_dropped,
            Dropped::Unknown
        );
    }

    #[test]
    fn text_fields_borrow_from_the_file_unless_escaped() {
        let plain: Text<'_> = serde_json::from_str(r#""partially filled""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("partially filled")));
        let escaped: Text<'_> = serde_json::from_str(r#""partially\u0020filled""#).unwrap();
        assert!(matches!(&escaped.0, Cow::Owned(text) if text == "partially filled"));
        assert!(serde_json::from_str::<Text<'_>>("5").is_err());
        // An escaped status still loads.
        let order = r#"{"id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "quantity": 10,
            "price": 99.5, "side": 1, "status": "partially\u0020filled", "filled_quantity": 4}"#;
        let saved: SavedOrder<'_> = serde_json::from_str(order).unwrap();
        let view = saved.decode(&wire(), "buy_orders", 0).unwrap();
        assert_eq!(view.status, OrderStatus::PartiallyFilled);
    }

    #[test]
    fn a_saved_book_loads_back_identical() {
        let config = BookConfig {
            order_capacity: 64,
            level_capacity: 16,
            finished_capacity: 3,
            resident: false,
            sparse_index: false,
        };
        let mut book = OrderBook::new(config);
        let mut trades = Vec::new();
        for (id, side, price, quantity) in [
            (1, Side::Sell, 10_000, 5),
            (2, Side::Sell, 10_000, 7),
            (3, Side::Sell, 10_100, 3),
            (4, Side::Buy, 9_900, 4),
            (5, Side::Buy, 10_000, 9),
            (6, Side::Buy, 9_800, 2),
            (7, Side::Buy, 10_100, 1),
            (8, Side::Sell, 9_800, 1),
        ] {
            for event in place(&mut book, id, side, price, quantity) {
                if let Event::Trade(trade) = event {
                    trades.push(TradeRecord::from(trade));
                }
            }
        }
        let bytes = write_state(&book, &ClientIds::default(), trades.iter(), 42, 7, &wire());
        // Any one byte changed before the checksum is refused; without the
        // checksum (a file edited by hand) the bytes load as they are.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let at = text.find("\"quantity\":5").unwrap() + "\"quantity\":".len();
        let mut damaged = bytes.clone();
        damaged[at] = b'6';
        let refused = decode(&damaged, &wire()).err().unwrap();
        assert!(
            refused.starts_with("crc32: the file's bytes have CRC-32 "),
            "{refused}"
        );
        let edited = unchecked(&text).replacen("\"quantity\":5", "\"quantity\":6", 1);
        assert!(decode(edited.as_bytes(), &wire()).is_ok());
        let mut bad_digits = bytes.clone();
        let last_digit = bad_digits.len() - 3;
        bad_digits[last_digit] = b'g';
        assert_eq!(
            decode(&bad_digits, &wire()).err().unwrap(),
            "crc32: must be 8 hex digits"
        );
        let state = decode(&bytes, &wire()).unwrap();
        assert_eq!(state.seq, 42);
        assert_eq!(state.feed_seq, 7);
        assert_eq!(state.trades, trades);
        let mut restored = OrderBook::new(config);
        state.restore_into(&mut restored).unwrap();
        for side in [Side::Buy, Side::Sell] {
            assert_eq!(
                restored.resting(side).collect::<Vec<_>>(),
                book.resting(side).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            restored.finished().collect::<Vec<_>>(),
            book.finished().collect::<Vec<_>>()
        );
        assert_eq!(restored.last_trade_id(), book.last_trade_id());
        assert_eq!(
            write_state(
                &restored,
                &ClientIds::default(),
                trades.iter(),
                42,
                7,
                &wire()
            ),
            bytes
        );
        // Its notionals count in its tick: under another, it is refused.
        let other = Wire {
            tick: TickSize::parse("0.05").unwrap(),
            ..wire()
        };
        let refused = decode(&bytes, &other).unwrap_err();
        assert!(
            refused.starts_with(
                "it was written with --tick-size 0.01, and this start has --tick-size 0.05"
            ),
            "{refused}"
        );
    }

    #[test]
    fn a_finished_market_order_loads_back_and_a_resting_one_is_refused() {
        let config = small_book();
        let mut book = OrderBook::new(config);
        place(&mut book, 1, Side::Sell, 10_000, 5);
        let market = Command {
            ts: 2,
            kind: CommandKind::Place {
                id: 2,
                side: Side::Buy,
                price: MARKET,
                quantity: 3,
                tif: TimeInForce::ImmediateOrCancel,
            },
        };
        book.apply(&market, &mut Vec::new());
        let text = String::from_utf8(write_state(
            &book,
            &ClientIds::default(),
            std::iter::empty(),
            1,
            1,
            &wire(),
        ))
        .unwrap();
        let saved = r#"{"id":"00000000-0000-0000-0000-000000000002","quantity":3,"price":0.0,"side":1,"status":"filled","filled_quantity":3,"type":"market","average_traded_price":100.0"#;
        assert!(text.contains(saved), "{text}");
        let mut restored = OrderBook::new(config);
        decode(text.as_bytes(), &wire())
            .unwrap()
            .restore_into(&mut restored)
            .unwrap();
        assert_eq!(restored.order(2), book.order(2));
        assert_eq!(restored.order(2).map(|o| o.price), Some(MARKET));

        let priced = unchecked(&text).replacen(
            "\"price\":0.0,\"side\":1,\"status\":\"filled\"",
            "\"price\":1.0,\"side\":1,\"status\":\"filled\"",
            1,
        );
        assert_eq!(
            decode(priced.as_bytes(), &wire()).err().as_deref(),
            Some("finished_orders[0]: a market order's price 1.0 is not 0")
        );
        let resting = r#"{"buy_orders":[{"id":"00000000-0000-0000-0000-000000000009","quantity":3,"price":0,"side":1,"status":"open","filled_quantity":0,"type":"market"}],"sell_orders":[]}"#;
        let error = decode(resting.as_bytes(), &wire())
            .unwrap()
            .restore_into(&mut OrderBook::new(config))
            .unwrap_err();
        assert!(
            error.contains("a market order (price 0) cannot be resting"),
            "{error}"
        );
    }

    #[test]
    fn prices_of_many_digits_load_back_exactly() {
        // Read through a float, 76771.77748507 lands 0.001 ticks off a
        // satoshi's grid, and this file could not be loaded.
        let satoshi = Wire {
            tick: TickSize::parse("0.00000001").unwrap(),
            ..wire()
        };
        let config = small_book();
        let mut book = OrderBook::new(config);
        let mut trades = Vec::new();
        for (id, side, price) in [
            (1, Side::Sell, 7_677_177_748_507),
            (2, Side::Buy, 7_078_379_813_945),
            (3, Side::Buy, 7_677_177_748_507),
        ] {
            for event in place(&mut book, id, side, price, 3 + id as u64) {
                if let Event::Trade(trade) = event {
                    trades.push(TradeRecord::from(trade));
                }
            }
        }
        assert_eq!(trades.len(), 1);
        let bytes = write_state(&book, &ClientIds::default(), trades.iter(), 3, 1, &satoshi);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"price\":76771.77748507"), "{text}");
        let state = decode(&bytes, &satoshi).unwrap();
        assert_eq!(state.trades, trades);
        let mut restored = OrderBook::new(config);
        state.restore_into(&mut restored).unwrap();
        assert_eq!(
            write_state(
                &restored,
                &ClientIds::default(),
                trades.iter(),
                3,
                1,
                &satoshi
            ),
            bytes
        );
        // A price a float would round onto the grid, written off it, is
        // still refused, and named.
        let off_grid =
            unchecked(&text).replacen("\"price\":76771.77748507,", "\"price\":76771.777485075,", 1);
        let error = decode(off_grid.as_bytes(), &satoshi).unwrap_err();
        assert!(
            error.contains("price 76771.777485075 must be a multiple of the tick size"),
            "{error}"
        );
    }

    #[test]
    fn a_file_of_the_original_service_loads() {
        let original = br#"{
            "buy_orders": [{"id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "quantity": 10,
                "price": 99.5, "side": 1, "status": "partially filled", "filled_quantity": 4,
                "average_traded_price": 99.5, "traded_quantity": 4, "order_alive": true}],
            "sell_orders": [{"id": "1c8e5b8d-3b2c-4d0f-8b0c-1a6c0e9d5b22", "quantity": 3,
                "price": 101.0, "side": -1, "status": "open", "filled_quantity": 0,
                "average_traded_price": 0, "traded_quantity": 0, "order_alive": true}],
            "trades": [{"unique_id": "2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33",
                "execution_timestamp": "2024-05-01T12:00:00.250000",
                "buy_order_id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11",
                "sell_order_id": "3e6a3b6f-1f0a-4f8b-8f1a-9e4c0c7b3a44",
                "price": 99.5, "quantity": 4}]
        }"#;
        let state = decode(original, &wire()).unwrap();
        assert_eq!(state.seq, 0);
        // Its one trade counts: ours start at 2.
        assert_eq!(state.last_trade_id, 1);
        assert_eq!(state.buy_orders[0].filled, 4);
        assert_eq!(state.buy_orders[0].notional, 4 * 9_950);
        assert_eq!(state.buy_orders[0].status, OrderStatus::PartiallyFilled);
        assert_eq!(state.sell_orders[0].price, 10_100);
        assert_eq!(
            state.trades[0].unique_id,
            api::parse_uuid("2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33").unwrap()
        );
        assert_eq!(state.trades[0].trade.ts, 1_714_564_800_250_000_000);
        let mut book = OrderBook::new(BookConfig::default());
        state.restore_into(&mut book).unwrap();
        assert_eq!(book.resting_count(), 2);
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let cases: [(&[u8], &str); 4] = [
            (b"{\"buy_orders\":[", "EOF"),
            (b"{\"sell_orders\":[]}", "buy_orders"),
            (
                br#"{"buy_orders":[{"id":"x","quantity":1,"price":1.0,"side":1}],"sell_orders":[]}"#,
                "buy_orders[0]: id \"x\" is not a UUID",
            ),
            (
                br#"{"buy_orders":[{"id":"0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11","quantity":1,"price":1.0,"side":-1}],"sell_orders":[]}"#,
                "buy_orders[0]: not a resting Buy order",
            ),
        ];
        for (bytes, expected) in cases {
            let error = decode(bytes, &wire()).unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
