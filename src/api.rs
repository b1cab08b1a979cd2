//! The wire contract (SPEC §2): decimal prices and UUID ids on the wire,
//! ticks and `u128` inside; request bodies decoded and checked field by
//! field; responses written as JSON. One error type, [`ApiError`], carries
//! the HTTP status and the human-readable `detail`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::candles::Candle;
use crate::engine::{OrderId, OrderView, Qty, Side, Ticks, TimeInForce, Timestamp, Trade, MARKET};

/// A request the API refuses: its status and the reason shown to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Why, for a person reading it.
    pub detail: String,
    /// A header the status calls for, as (name, value): `Allow` on a 405,
    /// `Retry-After` on a 503.
    pub header: Option<(&'static str, Cow<'static, str>)>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            header: None,
        }
    }

    /// 503: the service cannot take the request now; a client may retry
    /// after a second (`Retry-After: 1`, which HTTP client libraries'
    /// retry policies read).
    pub fn unavailable(detail: &str) -> Self {
        ApiError {
            header: Some(("Retry-After", "1".into())),
            ..ApiError::new(503, detail)
        }
    }

    /// The error's extra header as a whole header line (`\r\nName: value`),
    /// or nothing.
    pub fn header_line(&self) -> String {
        self.header.as_ref().map_or(String::new(), |(name, value)| {
            format!("\r\n{name}: {value}")
        })
    }

    /// 422 naming the field at fault.
    fn field(field: &str, why: &str) -> Self {
        ApiError::new(422, format!("{field}: {why}"))
    }

    /// The JSON body `{"detail": "..."}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "detail": self.detail }))
            .expect("a string map serialises")
    }
}

/// The price grid: a tick of `mantissa * 10^-scale` (0.01 = 1 × 10^-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickSize {
    mantissa: u64,
    scale: u32,
}

impl TickSize {
    /// Parses a positive decimal such as `0.01`, `0.5` or `1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
            return Err(format!(
                "tick size {text:?} is not a plain positive decimal"
            ));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 12 {
            return Err(format!(
                "tick size {text:?} has too many decimals (12 at most)"
            ));
        }
        let mantissa: u64 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| format!("tick size {text:?} is out of range"))?;
        if mantissa == 0 {
            return Err(format!("tick size {text:?} must be positive"));
        }
        Ok(TickSize {
            mantissa,
            scale: fraction.len() as u32,
        })
    }

    /// The tick as a float, for averages.
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// Converts a price written in decimal (a JSON number's text, or a
    /// numeric string's) to ticks, if it is a positive finite multiple of
    /// the tick.
    ///
    /// Read in exact arithmetic, so that every price on the grid is taken,
    /// however many digits it has: through a float, `138017625.33` at a
    /// tick of `0.01`, or `76771.77748507` at `0.00000001` (and one in
    /// seven such prices between 10,000 and 100,000), landed further than
    /// a millionth of a tick from the grid and were refused, as was a
    /// state file holding them; and from 10^14 ticks up, a float took one
    /// price in eleven half a tick off the grid (`42250470938136.685` at
    /// `0.01`) as a neighbouring tick. What a client's float arithmetic
    /// leaves within a millionth of a tick of the grid
    /// (`0.30000000000000004`) is still that tick.
    pub fn ticks_of(&self, text: &str) -> Result<Ticks, &'static str> {
        let text = text.trim();
        match self.decimal_ticks(text) {
            Some(ticks) => ticks,
            // Not a plain decimal (negative, `NaN`, `.5`), or too long for
            // exact arithmetic.
            None => self.to_ticks(text.parse().map_err(|_| "must be a number")?),
        }
    }

    /// The ticks of a plain decimal (see [`plain_decimal`]), in exact
    /// arithmetic: its nearest tick if it lies within a millionth of a
    /// tick of it, as [`to_ticks`](Self::to_ticks) allows; `None` if the
    /// text is no plain decimal or the arithmetic would overflow.
    fn decimal_ticks(&self, text: &str) -> Option<Result<Ticks, &'static str>> {
        let (significand, power) = plain_decimal(text)?;
        // ticks = value / (mantissa * 10^-scale) = numerator / denominator
        let shift = power + i64::from(self.scale);
        let mantissa = u128::from(self.mantissa);
        let (numerator, denominator) = if shift >= 0 {
            (significand.checked_mul(ten_to(shift)?)?, mantissa)
        } else {
            (significand, ten_to(-shift)?.checked_mul(mantissa)?)
        };
        if numerator == 0 {
            return Some(Err("must be positive"));
        }
        let (below, rest) = divide(numerator, denominator);
        let (nearest, off) = if rest >= denominator - rest {
            (below + 1, denominator - rest)
        } else {
            (below, rest)
        };
        if nearest == 0 {
            return Some(Err(BELOW_ONE_TICK));
        }
        if nearest > MAX_PRICE_TICKS {
            return Some(Err(ABOVE_MAX_TICKS));
        }
        if off
            .checked_mul(1_000_000)
            .is_none_or(|off| off > denominator)
        {
            return Some(Err("must be a multiple of the tick size"));
        }
        Some(Ok(nearest as Ticks))
    }

    /// Converts a wire price to ticks, if it is a positive finite multiple
    /// of the tick (within a millionth of a tick: see [`ticks_of`](Self::ticks_of)).
    pub fn to_ticks(&self, price: f64) -> Result<Ticks, &'static str> {
        if !price.is_finite() {
            return Err("must be a finite number");
        }
        if price <= 0.0 {
            return Err("must be positive");
        }
        let units = price * 10f64.powi(self.scale as i32) / self.mantissa as f64;
        let ticks = units.round();
        if ticks < 1.0 {
            return Err(BELOW_ONE_TICK);
        }
        if ticks > MAX_PRICE_TICKS as f64 {
            return Err(ABOVE_MAX_TICKS);
        }
        // Decimal inputs such as 100.01 are not exact in binary; accept what
        // is within a millionth of a tick of the grid.
        if (units - ticks).abs() > 1e-6 {
            return Err("must be a multiple of the tick size");
        }
        Ok(ticks as Ticks)
    }

    /// Writes `ticks` as a JSON decimal number: `100.0`, `100.01`.
    pub fn write_price(&self, out: &mut String, ticks: Ticks) {
        let scaled = ticks as u128 * self.mantissa as u128;
        let unit = 10u128.pow(self.scale);
        let (whole, fraction) = (scaled / unit, scaled % unit);
        let _ = write!(out, "{whole}.");
        if self.scale == 0 || fraction == 0 {
            out.push('0');
        } else {
            let digits = format!("{:0width$}", fraction, width = self.scale as usize);
            out.push_str(digits.trim_end_matches('0'));
        }
    }

    /// Writes a quantity-weighted average price: `0` before any fill.
    fn write_average(&self, out: &mut String, order: &OrderView) {
        if order.filled == 0 {
            out.push('0');
        } else if order.notional.is_multiple_of(order.filled as u128) {
            self.write_price(out, (order.notional / order.filled as u128) as Ticks);
        } else {
            let value = order.average_price_ticks() * self.as_f64();
            out.push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "0".into()));
        }
    }
}

/// A plain decimal, `[+]digits[.digits][(e|E)[+-]digits]` (a JSON number
/// without a minus), as `(significand, power)` with `value = significand *
/// 10^power`, read exactly; `None` for anything else, or past `u128`.
fn plain_decimal(text: &str) -> Option<(u128, i64)> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let (number, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() {
        return None;
    }
    let mut significand: u128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        if !digit.is_ascii_digit() {
            return None;
        }
        significand = significand
            .checked_mul(10)?
            .checked_add(u128::from(digit - b'0'))?;
    }
    Some((significand, i64::from(exponent) - fraction.len() as i64))
}

/// The integer a plain decimal (from [`plain_decimal`]) is exactly
/// (`12`, `12.0`, `1.2e1`), if it is one and fits `u128`.
fn exact_integer((significand, power): (u128, i64)) -> Option<u128> {
    if power >= 0 {
        significand.checked_mul(ten_to(power)?)
    } else {
        let (quotient, rest) = divide(significand, ten_to(-power)?);
        (rest == 0).then_some(quotient)
    }
}

/// Quotient and remainder, in 64-bit arithmetic where both fit: a
/// division of `u128`s is a library call, several times slower, and
/// prices and quantities almost always fit.
fn divide(numerator: u128, denominator: u128) -> (u128, u128) {
    match (u64::try_from(numerator), u64::try_from(denominator)) {
        (Ok(n), Ok(d)) => (u128::from(n / d), u128::from(n % d)),
        _ => (numerator / denominator, numerator % denominator),
    }
}

/// `10^n`, if it fits `u128`.
fn ten_to(n: i64) -> Option<u128> {
    u32::try_from(n).ok().and_then(|n| 10u128.checked_pow(n))
}

/// The highest price in ticks: 2^52, past which a price's float (in
/// averages and the original's state file) no longer holds every tick.
const MAX_PRICE_TICKS: u128 = 1 << 52;

/// Why a positive price nearer 0 than one tick is refused.
const BELOW_ONE_TICK: &str = "must be at least the tick size";

/// Why a price past [`MAX_PRICE_TICKS`] is refused.
const ABOVE_MAX_TICKS: &str = "must be at most 2^52 ticks";

/// Formats an order id as a lowercase hyphenated UUID.
pub fn write_uuid(out: &mut String, id: u128) {
    let hex = format!("{id:032x}");
    out.push_str(&hex[0..8]);
    out.push('-');
    out.push_str(&hex[8..12]);
    out.push('-');
    out.push_str(&hex[12..16]);
    out.push('-');
    out.push_str(&hex[16..20]);
    out.push('-');
    out.push_str(&hex[20..32]);
}

/// Parses a UUID in hyphenated (`8-4-4-4-12`) or plain 32-hex form.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    let hex: String = match bytes.len() {
        36 => {
            if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
                return None;
            }
            text.chars().filter(|&c| c != '-').collect()
        }
        32 => text.to_owned(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// Makes a random (version 4) UUID from 128 random bits.
pub fn uuid_v4(random: u128) -> OrderId {
    (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

/// A trade's `unique_id`: its sequence number laid out as a UUID, so it is
/// unique, sorts in execution order and survives replay unchanged.
pub fn trade_uuid(trade_id: u64) -> u128 {
    (0x4 << 76) | (0x2 << 62) | trade_id as u128
}

/// The trade number inside a `unique_id` made by [`trade_uuid`], or `None`
/// for a UUID made elsewhere (a state file of the original service).
pub fn trade_number(unique_id: u128) -> Option<u64> {
    const NUMBER_BITS: u128 = (1 << 62) - 1;
    (unique_id & !NUMBER_BITS == trade_uuid(0)).then_some((unique_id & NUMBER_BITS) as u64)
}

/// A trade as the service keeps and shows it: the engine's trade and its
/// `unique_id` (ours from the trade number, or one loaded from the
/// original service's state file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeRecord {
    /// The wire's `unique_id`.
    pub unique_id: u128,
    /// What was traded.
    pub trade: Trade,
}

impl From<Trade> for TradeRecord {
    fn from(trade: Trade) -> Self {
        TradeRecord {
            unique_id: trade_uuid(trade.trade_id),
            trade,
        }
    }
}

/// Appends `trade` to a history kept to its newest `keep` (none if 0).
pub fn keep_trade(trades: &mut VecDeque<TradeRecord>, keep: usize, trade: Trade) {
    if keep == 0 {
        return;
    }
    if trades.len() == keep {
        trades.pop_front();
    }
    trades.push_back(trade.into());
}

/// Parses an RFC 3339 / ISO 8601 timestamp such as
/// `2026-11-25T08:00:00.123456Z` (as written by [`write_timestamp`]) or
/// `2024-05-01T12:00:00.5` (Python's `isoformat()`, taken as UTC), to
/// nanoseconds since the epoch. An offset other than UTC is refused.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))
        .unwrap_or(text);
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':');
    let hour: u64 = clock_parts.next()?.parse().ok()?;
    let minute: u64 = clock_parts.next()?.parse().ok()?;
    let second: u64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let nanos: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3_600 + minute * 60 + second;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The wall clock in whole microseconds since the epoch: the resolution of
/// every stamp the service makes and shows.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Stamps for commands: the wall clock in whole microseconds (as ns), but
/// never below the last stamp, so that order and trade times never run
/// backwards when the clock is stepped back (NTP, a VM resumed).
#[derive(Clone, Copy, Debug)]
pub struct Stamps {
    last: Timestamp,
}

impl Stamps {
    /// Stamps from now on, none before `last` (the newest time already
    /// shown, say the last trade's).
    pub fn after(last: Timestamp) -> Self {
        Stamps { last }
    }

    /// The next stamp.
    pub fn stamp(&mut self) -> Timestamp {
        self.stamp_at(now_micros() * 1_000)
    }

    /// The next stamp when the clock reads `now`.
    pub fn stamp_at(&mut self, now: Timestamp) -> Timestamp {
        self.last = self.last.max(now);
        self.last
    }
}

/// The (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Writes a timestamp as RFC 3339 UTC with microseconds.
pub fn write_timestamp(out: &mut String, ts: Timestamp) {
    let micros = ts / 1_000;
    let seconds = micros / 1_000_000;
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_date(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60,
        micros % 1_000_000
    );
}

/// The instrument this service trades: the one book's name. An order may
/// name it in a `symbol` field (and is refused if it names another); one
/// that leaves it out trades it.
///
/// Kept inline (`Copy`, no allocation) and restricted to characters that
/// need no escaping in JSON, so it is written out as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    bytes: [u8; Symbol::MAX_LEN],
    len: u8,
}

impl Symbol {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 32;

    /// Parses a symbol setting: 1 to 32 ASCII letters, digits and
    /// `. _ - / :`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-/:".contains(&b);
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(allowed) {
            return Err(format!(
                "a symbol is 1 to {} ASCII letters, digits and . _ - / : (got {text:?})",
                Self::MAX_LEN
            ));
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Symbol {
            bytes,
            len: text.len() as u8,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("checked ASCII")
    }
}

impl std::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings that shape the wire: the instrument, the tick grid and the
/// quantity bound.
#[derive(Clone, Copy, Debug)]
pub struct Wire {
    /// The instrument traded.
    pub symbol: Symbol,
    /// The price grid.
    pub tick: TickSize,
    /// The largest quantity accepted.
    pub max_quantity: Qty,
}

/// The `?limit=` of a query (how many items at most: 1 to `max`, or any
/// number from 1 without one), or `default` without a `limit`.
pub fn limit_param(
    query: Option<&str>,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    count_param(query, "limit", default, max)
}

/// The `?interval=` of `GET /candles`: seconds, 1 to a day; a minute
/// without one.
pub fn interval_param(query: Option<&str>) -> Result<u64, ApiError> {
    count_param(query, "interval", 60, Some(86_400)).map(|seconds| seconds as u64)
}

/// The whole number from 1 (to `max`) in the query parameter `name`, or
/// `default` without one.
fn count_param(
    query: Option<&str>,
    name: &str,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    let mut count = default;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            count = value
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1 && max.is_none_or(|max| n <= max))
                .ok_or_else(|| match max {
                    None => ApiError::field(name, "must be a whole number, at least 1"),
                    Some(max) => {
                        ApiError::field(name, &format!("must be an integer from 1 to {max}"))
                    }
                })?;
        }
    }
    Ok(count)
}

/// The `?order_id=` of a query, if given; 422 if it is not a UUID.
pub fn order_id_param(query: Option<&str>) -> Result<Option<OrderId>, ApiError> {
    uuid_param(query, "order_id")
}

/// The `?after=` of `GET /trades`: a trade's `unique_id`, if given.
pub fn after_param(query: Option<&str>) -> Result<Option<u128>, ApiError> {
    uuid_param(query, "after")
}

/// The `?side=` of `DELETE /orders`: `buy` or `1`, `sell` or `-1` (any
/// case), or none for both sides.
pub fn side_param(query: Option<&str>) -> Result<Option<Side>, ApiError> {
    query_value(query, "side")
        .map(|text| match text.to_ascii_lowercase().as_str() {
            "buy" | "1" => Ok(Side::Buy),
            "sell" | "-1" => Ok(Side::Sell),
            _ => Err(ApiError::field(
                "side",
                "must be buy or 1, sell or -1 (or left out for both sides)",
            )),
        })
        .transpose()
}

/// The UUID in the query parameter `name`, if given.
fn uuid_param(query: Option<&str>, name: &str) -> Result<Option<u128>, ApiError> {
    query_value(query, name)
        .map(|text| parse_uuid(text).ok_or_else(|| ApiError::field(name, "must be a UUID")))
        .transpose()
}

/// The value of the first `name=` in a query string, if any.
fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Deepest `?depth=` of a book snapshot (`/ws`, `GET /book`); 0 asks for
/// every level.
pub const MAX_DEPTH: usize = 1000;

/// The `?depth=` of a query (levels per side, 0 = every level), or
/// `default` without one; the error is the detail to answer with.
pub fn depth_param(query: Option<&str>, default: usize) -> Result<usize, String> {
    let Some(value) = query_value(query, "depth") else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(depth) if depth <= MAX_DEPTH => Ok(depth),
        _ => Err(format!(
            "depth: must be a whole number from 0 to {MAX_DEPTH} (0 = every level)"
        )),
    }
}

/// A field's raw value unless it is absent or `null` (which mean the
/// default).
fn given(raw: Option<&RawValue>) -> Option<&str> {
    raw.map(RawValue::get).filter(|text| *text != "null")
}

/// A place's `type`: `"limit"` (the default) or `"market"`, in any case,
/// as exchange APIs spell them. True for a market order.
fn is_market(kind: Option<&RawValue>) -> Result<bool, ApiError> {
    match given(kind).map(|text| serde_json::from_str::<&str>(text).map(str::to_ascii_lowercase)) {
        None => Ok(false),
        Some(Ok(word)) if word == "limit" => Ok(false),
        Some(Ok(word)) if word == "market" => Ok(true),
        _ => Err(ApiError::field("type", "must be \"limit\" or \"market\"")),
    }
}

/// A place's `time_in_force` (`"GTC"`, the default, `"IOC"` or `"FOK"`,
/// in any case) and `post_only` (`true` or `false`, the default; only
/// with GTC), as exchange APIs spell them; `null` is the default. A market
/// order never rests: it is IOC unless it says FOK.
fn time_in_force(
    tif: Option<&RawValue>,
    post_only: Option<&RawValue>,
    market: bool,
) -> Result<TimeInForce, ApiError> {
    let tif = match given(tif) {
        None if market => TimeInForce::ImmediateOrCancel,
        None => TimeInForce::GoodTillCancel,
        Some(text) => match serde_json::from_str::<&str>(text).map(str::to_ascii_uppercase) {
            Ok(word) if word == "GTC" => TimeInForce::GoodTillCancel,
            Ok(word) if word == "IOC" => TimeInForce::ImmediateOrCancel,
            Ok(word) if word == "FOK" => TimeInForce::FillOrKill,
            _ => {
                return Err(ApiError::field(
                    "time_in_force",
                    "must be \"GTC\", \"IOC\" or \"FOK\"",
                ))
            }
        },
    };
    let post_only = match given(post_only) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("post_only", "must be true or false")),
    };
    if market && (post_only || tif == TimeInForce::GoodTillCancel) {
        let field = if post_only {
            "post_only"
        } else {
            "time_in_force"
        };
        return Err(ApiError::field(
            field,
            "a market order never rests: it is \"IOC\" (the default) or \"FOK\"",
        ));
    }
    match (post_only, tif) {
        (false, tif) => Ok(tif),
        (true, TimeInForce::GoodTillCancel) => Ok(TimeInForce::PostOnly),
        (true, _) => Err(ApiError::field(
            "post_only",
            "only with time_in_force \"GTC\": an order that must rest cannot be immediate",
        )),
    }
}

/// A checked `POST /order/` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Buy or sell.
    pub side: Side,
    /// Limit price in ticks, or [`MARKET`] for a market order.
    pub price: Ticks,
    /// Total quantity.
    pub quantity: Qty,
    /// `time_in_force` and `post_only`.
    pub tif: TimeInForce,
}

/// Marks a market order's answer `"type":"market"`: its price (`0`) is
/// no limit. A limit order's answers stay as the original's were.
fn write_market(out: &mut String, order: &OrderView) {
    if order.price == MARKET {
        out.push_str(",\"type\":\"market\"");
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

/// A checked `PUT /order/{id}` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amendment {
    /// New limit price in ticks, if given.
    pub price: Option<Ticks>,
    /// New total quantity, if given.
    pub quantity: Option<Qty>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    quantity: Option<&'a RawValue>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    side: Option<&'a RawValue>,
    #[serde(borrow)]
    symbol: Option<&'a RawValue>,
    #[serde(borrow)]
    time_in_force: Option<&'a RawValue>,
    #[serde(borrow)]
    post_only: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
}

const NOT_AN_OBJECT: &str = "Request body must be a JSON object";

fn fields(body: &[u8]) -> Result<Fields<'_>, ApiError> {
    object(body, || ApiError::new(422, NOT_AN_OBJECT))
}

/// A `POST /orders/batch` body: `{"orders": [order, ...]}`.
#[derive(Deserialize)]
struct BatchFields<'a> {
    #[serde(borrow)]
    orders: Option<Vec<&'a RawValue>>,
}

/// A `POST /orders/cancel` body: `{"order_ids": [id, ...]}`.
#[derive(Deserialize)]
struct CancelFields<'a> {
    #[serde(borrow)]
    order_ids: Option<Vec<&'a RawValue>>,
}

/// Decodes a `POST /orders/cancel` body: 1 to [`MAX_BATCH`] order ids.
/// One that is not a UUID refuses them all, naming it.
pub fn order_ids(body: &[u8]) -> Result<Vec<OrderId>, ApiError> {
    let fields: CancelFields<'_> = object(body, || batch_shape("order_ids", "id"))?;
    batch_items(fields.order_ids, "order_ids", "ids")?
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            serde_json::from_str::<&str>(raw.get())
                .ok()
                .and_then(parse_uuid)
                .ok_or_else(|| ApiError::field(&format!("order_ids[{i}]"), "must be a UUID"))
        })
        .collect()
}

/// The order a `POST /orders/modify` change is for.
#[derive(Deserialize)]
struct IdField<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

/// An error of the `i`-th order of a batch, named so: `orders[2].price: ...`.
fn at_order(i: usize, error: ApiError) -> ApiError {
    let detail = match error.detail.as_str() {
        NOT_AN_OBJECT => format!("orders[{i}]: must be a JSON object"),
        detail => format!("orders[{i}].{detail}"),
    };
    ApiError { detail, ..error }
}

/// Most orders one `POST /orders/batch`, `/orders/modify` or
/// `/orders/cancel` may carry.
pub const MAX_BATCH: usize = 100;

/// The 422 of a batch body of the wrong shape: `{"<field>": [<item>, ...]}`.
fn batch_shape(field: &str, item: &str) -> ApiError {
    let shape = format!("{{\"{field}\": [{item}, ...]}}");
    ApiError::new(422, format!("Request body must be a JSON object {shape}"))
}

/// A batch body's list (`field`, of `noun`), which must hold 1 to
/// [`MAX_BATCH`] items.
fn batch_items<'a>(
    items: Option<Vec<&'a RawValue>>,
    field: &str,
    noun: &str,
) -> Result<Vec<&'a RawValue>, ApiError> {
    let items = items.ok_or_else(|| ApiError::field(field, "field required"))?;
    if items.is_empty() || items.len() > MAX_BATCH {
        let why = format!("must hold 1 to {MAX_BATCH} {noun}, not {}", items.len());
        return Err(ApiError::field(field, &why));
    }
    Ok(items)
}

/// Reads a JSON object into `T`: 400 for malformed JSON, 422 naming a
/// field given twice, `wrong_shape` for anything else that is not `T`.
fn object<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    wrong_shape: impl Fn() -> ApiError,
) -> Result<T, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        // Serde would read an array as the fields in order; only an object
        // will do. Still tell malformed JSON (400) from the wrong shape.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(wrong_shape()),
            Err(error) => Err(ApiError::new(400, format!("Malformed JSON body: {error}"))),
        };
    }
    serde_json::from_slice(body).map_err(|error| {
        // `{"quantity": 1, "quantity": 2}` is ambiguous (Python's json
        // takes the last): name the field instead of the object.
        let duplicate = error.to_string();
        let duplicate = duplicate
            .strip_prefix("duplicate field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| field.to_owned());
        if let Some(field) = duplicate {
            ApiError::field(&field, "given more than once")
        } else if error.is_data() {
            wrong_shape()
        } else {
            ApiError::new(400, format!("Malformed JSON body: {error}"))
        }
    })
}

/// The text of a JSON number, or of a numeric string's contents (as the
/// original accepted), for reading exactly.
pub fn number_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    // A raw value is valid JSON: one that starts so is a number.
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Some(Cow::Borrowed(text));
    }
    let inner = serde_json::from_str::<Cow<'_, str>>(text).ok()?;
    let trimmed = inner.trim();
    trimmed.parse::<f64>().ok()?;
    Some(Cow::Owned(trimmed.to_owned()))
}

impl Wire {
    /// Checks an order's `symbol`, if it names one: it must be ours.
    fn symbol(&self, raw: Option<&RawValue>) -> Result<(), ApiError> {
        let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
            return Ok(());
        };
        let ours = self.symbol.as_str();
        match serde_json::from_str::<std::borrow::Cow<'_, str>>(raw.get()) {
            Ok(name) if name == ours => Ok(()),
            Ok(name) => Err(ApiError::field(
                "symbol",
                &format!("unknown symbol {name:?}: this service trades {ours:?}"),
            )),
            Err(_) => Err(ApiError::field("symbol", "must be a string")),
        }
    }

    /// This service's `GET /health` body.
    pub fn health(&self) -> String {
        format!("{{\"status\":\"ok\",\"symbol\":\"{}\"}}", self.symbol)
    }

    fn price(&self, raw: Option<&RawValue>) -> Result<Option<Ticks>, ApiError> {
        let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
            return Ok(None);
        };
        let price = number_text(raw).ok_or_else(|| ApiError::field("price", "must be a number"))?;
        self.tick
            .ticks_of(&price)
            .map(Some)
            .map_err(|why| ApiError::field("price", why))
    }

    fn quantity(&self, raw: Option<&RawValue>) -> Result<Option<Qty>, ApiError> {
        let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
            return Ok(None);
        };
        let bad = |why: &str| ApiError::field("quantity", why);
        let text = number_text(raw).ok_or_else(|| bad("must be an integer"))?;
        let text = text.trim();
        // Read exactly where the text is a plain decimal: through a float,
        // 9007199254740993 was taken as 9007199254740992 under a
        // `--max-quantity` past 2^53.
        let quantity = match plain_decimal(text) {
            Some(decimal) => exact_integer(decimal).ok_or_else(|| bad("must be an integer"))?,
            // Negative, or written oddly (`.5e1`): a float holds it
            // exactly below 2^53.
            None => {
                let value: f64 = text.parse().map_err(|_| bad("must be an integer"))?;
                let exact = value.abs() < (1u64 << 53) as f64;
                if !value.is_finite() || value.fract() != 0.0 || !exact {
                    return Err(bad("must be an integer"));
                }
                if value <= 0.0 {
                    return Err(bad("must be positive"));
                }
                value as u128
            }
        };
        if quantity == 0 {
            return Err(bad("must be positive"));
        }
        if quantity > u128::from(self.max_quantity) {
            return Err(bad(&format!("must be at most {}", self.max_quantity)));
        }
        Ok(Some(quantity as Qty))
    }

    /// Decodes and checks a `POST /order/` body.
    pub fn new_order(&self, body: &[u8]) -> Result<NewOrder, ApiError> {
        let fields = fields(body)?;
        self.symbol(fields.symbol)?;
        let quantity = self
            .quantity(fields.quantity)?
            .ok_or_else(|| ApiError::field("quantity", "field required"))?;
        let price = if !is_market(fields.kind)? {
            self.price(fields.price)?
                .ok_or_else(|| ApiError::field("price", "field required"))?
        } else if given(fields.price).is_none() {
            MARKET
        } else {
            return Err(ApiError::field(
                "price",
                "a market order has none: it trades at the resting orders' prices",
            ));
        };
        let market = price == MARKET;
        let side_raw = fields
            .side
            .ok_or_else(|| ApiError::field("side", "field required"))?;
        let side = match side_raw.get().trim() {
            "1" | "1.0" | "\"1\"" => Side::Buy,
            "-1" | "-1.0" | "\"-1\"" => Side::Sell,
            text => match serde_json::from_str::<&str>(text).map(str::to_ascii_lowercase) {
                Ok(word) if word == "buy" => Side::Buy,
                Ok(word) if word == "sell" => Side::Sell,
                _ => {
                    return Err(ApiError::field(
                        "side",
                        "must be 1 or \"buy\" (buy), -1 or \"sell\" (sell)",
                    ))
                }
            },
        };
        Ok(NewOrder {
            side,
            price,
            quantity,
            tif: time_in_force(fields.time_in_force, fields.post_only, market)?,
        })
    }

    /// Decodes and checks a `POST /orders/batch` body: 1 to [`MAX_BATCH`]
    /// orders, each as `POST /order/` takes it. One bad order refuses the
    /// batch, naming it: `orders[2].price: ...`.
    pub fn new_orders(&self, body: &[u8]) -> Result<Vec<NewOrder>, ApiError> {
        let batch: BatchFields<'_> = object(body, || batch_shape("orders", "order"))?;
        let orders = batch_items(batch.orders, "orders", "orders")?;
        orders
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                self.new_order(raw.get().as_bytes())
                    .map_err(|e| at_order(i, e))
            })
            .collect()
    }

    /// Decodes and checks a `POST /orders/modify` body: 1 to
    /// [`MAX_BATCH`] changes `{"id", "quantity", "price"}`, each as
    /// `PUT /order/{id}` takes it. One bad change refuses them all.
    pub fn amendments(&self, body: &[u8]) -> Result<Vec<(OrderId, Amendment)>, ApiError> {
        let shape = || batch_shape("orders", r#"{"id", "quantity", "price"}"#);
        let batch: BatchFields<'_> = object(body, shape)?;
        let changes = batch_items(batch.orders, "orders", "orders")?;
        let change = |raw: &RawValue| -> Result<(OrderId, Amendment), ApiError> {
            let named: IdField<'_> =
                object(raw.get().as_bytes(), || ApiError::new(422, NOT_AN_OBJECT))?;
            let id = named
                .id
                .ok_or_else(|| ApiError::field("id", "field required"))?;
            let id = serde_json::from_str::<&str>(id.get())
                .ok()
                .and_then(parse_uuid)
                .ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
            Ok((id, self.amendment(raw.get().as_bytes())?))
        };
        changes
            .iter()
            .enumerate()
            .map(|(i, raw)| change(raw).map_err(|e| at_order(i, e)))
            .collect()
    }

    /// Decodes and checks a `PUT /order/{id}` body.
    pub fn amendment(&self, body: &[u8]) -> Result<Amendment, ApiError> {
        let fields = fields(body)?;
        self.symbol(fields.symbol)?;
        // Said in a modify, they would read as taking effect; they cannot.
        for (name, raw) in [
            ("time_in_force", fields.time_in_force),
            ("post_only", fields.post_only),
            ("type", fields.kind),
        ] {
            if raw.is_some_and(|raw| raw.get() != "null") {
                return Err(ApiError::field(
                    name,
                    "is set when an order is placed; a modify cannot change it",
                ));
            }
        }
        Ok(Amendment {
            price: self.price(fields.price)?,
            quantity: self.quantity(fields.quantity)?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::OrderStatus;

    fn wire() -> Wire {
        Wire {
            symbol: Symbol::parse("DEFAULT").unwrap(),
            tick: TickSize::parse("0.01").unwrap(),
            max_quantity: 1_000_000_000,
        }
    }

    #[test]
    fn a_symbol_setting_is_1_to_32_plain_characters() {
        for good in [
            "DEFAULT",
            "BTC-USD",
            "ES.Z26",
            "EUR/USD",
            "X:Y_1",
            &"A".repeat(32),
        ] {
            assert_eq!(Symbol::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "BTC USD", "quote\"d", "caf\u{e9}", &"A".repeat(33)] {
            let error = Symbol::parse(bad).unwrap_err();
            assert_eq!(
                error,
                format!("a symbol is 1 to 32 ASCII letters, digits and . _ - / : (got {bad:?})")
            );
        }
    }

    #[test]
    fn an_order_may_name_only_this_services_symbol() {
        let wire = wire();
        let body = |symbol: &str| {
            format!(r#"{{"quantity": 1, "price": 1.0, "side": 1, "symbol": {symbol}}}"#)
        };
        for ok in [r#""DEFAULT""#, "null", r#""DEF\u0041ULT""#] {
            assert!(wire.new_order(body(ok).as_bytes()).is_ok(), "{ok}");
        }
        let refused = |symbol: &str| wire.new_order(body(symbol).as_bytes()).unwrap_err();
        assert_eq!(
            refused(r#""OTHER""#),
            ApiError::new(
                422,
                r#"symbol: unknown symbol "OTHER": this service trades "DEFAULT""#
            )
        );
        assert_eq!(refused("1"), ApiError::new(422, "symbol: must be a string"));
        assert_eq!(
            wire.amendment(br#"{"price": 2.0, "symbol": "OTHER"}"#),
            Err(ApiError::new(
                422,
                r#"symbol: unknown symbol "OTHER": this service trades "DEFAULT""#
            ))
        );
        assert_eq!(wire.health(), r#"{"status":"ok","symbol":"DEFAULT"}"#);
    }

    #[test]
    fn prices_convert_between_decimals_and_ticks() {
        let tick = TickSize::parse("0.01").unwrap();
        assert_eq!(tick.to_ticks(100.0), Ok(10_000));
        assert_eq!(tick.to_ticks(100.01), Ok(10_001));
        assert_eq!(tick.to_ticks(0.07), Ok(7));
        assert_eq!(
            tick.to_ticks(100.005),
            Err("must be a multiple of the tick size")
        );
        assert_eq!(tick.to_ticks(0.0), Err("must be positive"));
        assert_eq!(tick.to_ticks(-1.0), Err("must be positive"));
        assert_eq!(tick.to_ticks(f64::NAN), Err("must be a finite number"));
        let mut out = String::new();
        tick.write_price(&mut out, 10_000);
        out.push(' ');
        tick.write_price(&mut out, 10_001);
        out.push(' ');
        tick.write_price(&mut out, 10_010);
        assert_eq!(out, "100.0 100.01 100.1");
        let quarter = TickSize::parse("0.25").unwrap();
        assert_eq!(quarter.to_ticks(1.75), Ok(7));
        assert!(quarter.to_ticks(1.1).is_err());
    }

    #[test]
    fn quantities_are_read_exactly_past_two_to_the_53() {
        let wire = Wire {
            max_quantity: u64::MAX,
            ..wire()
        };
        let quantity = |text: &str| {
            let body = format!(r#"{{"quantity": {text}}}"#);
            wire.amendment(body.as_bytes()).map(|a| a.quantity.unwrap())
        };
        // Through a float this was 9007199254740992.
        assert_eq!(quantity("9007199254740993"), Ok(9_007_199_254_740_993));
        assert_eq!(quantity("\"9007199254740993\""), Ok(9_007_199_254_740_993));
        assert_eq!(quantity("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(quantity("12.0"), Ok(12));
        assert_eq!(quantity("1.2e1"), Ok(12));
        assert_eq!(quantity("\"+12\""), Ok(12));
        assert_eq!(quantity("\".5e1\""), Ok(5));
        let refused = |text: &str| quantity(text).unwrap_err().detail;
        assert_eq!(
            refused("18446744073709551616"),
            format!("quantity: must be at most {}", u64::MAX)
        );
        assert_eq!(
            refused("9007199254740993.5"),
            "quantity: must be an integer"
        );
        assert_eq!(refused("0.5"), "quantity: must be an integer");
        assert_eq!(
            refused("\".9007199254740993e16\""),
            "quantity: must be an integer"
        );
        assert_eq!(refused("-3"), "quantity: must be positive");
        assert_eq!(refused("0"), "quantity: must be positive");
        assert_eq!(refused("0.0e5"), "quantity: must be positive");
        assert_eq!(refused("\"ten\""), "quantity: must be an integer");
        assert_eq!(refused("true"), "quantity: must be an integer");
        // The default maximum, as before.
        let body = br#"{"quantity": 1000000001}"#;
        assert_eq!(
            super::tests::wire().amendment(body).unwrap_err().detail,
            "quantity: must be at most 1000000000"
        );
    }

    #[test]
    fn prices_on_the_grid_are_read_exactly_however_many_digits_they_have() {
        let cent = TickSize::parse("0.01").unwrap();
        // Through a float alone these were refused as off the grid.
        assert_eq!(cent.ticks_of("138017625.33"), Ok(13_801_762_533));
        assert_eq!(cent.ticks_of("45035996273704.96"), Ok(1 << 52));
        let satoshi = TickSize::parse("0.00000001").unwrap();
        assert_eq!(satoshi.ticks_of("76771.77748507"), Ok(7_677_177_748_507));
        assert_eq!(satoshi.ticks_of("21113.8194938"), Ok(2_111_381_949_380));
        // Exponents, trailing zeros, spaces of a numeric string.
        assert_eq!(cent.ticks_of("1e2"), Ok(10_000));
        assert_eq!(cent.ticks_of("1.2345E+2"), Ok(12_345));
        assert_eq!(cent.ticks_of("100.0100000"), Ok(10_001));
        assert_eq!(cent.ticks_of(" 7 "), Ok(700));
        assert_eq!(TickSize::parse("0.05").unwrap().ticks_of("15e-2"), Ok(3));
        // What a client's float arithmetic leaves next to the grid is
        // still taken, as before.
        assert_eq!(cent.ticks_of("0.30000000000000004"), Ok(30));
        // Refusals keep their reasons.
        let refused = |text| cent.ticks_of(text).unwrap_err();
        assert_eq!(refused("100.005"), "must be a multiple of the tick size");
        assert_eq!(refused("0"), "must be positive");
        assert_eq!(refused("-1.00"), "must be positive");
        assert_eq!(refused("45035996273704.97"), "must be at most 2^52 ticks");
        // A float holds no half cents up there: it took this as
        // 42250470938136.69.
        assert_eq!(
            refused("42250470938136.685"),
            "must be a multiple of the tick size"
        );
        assert_eq!(refused("1e-40"), "must be at least the tick size");
        assert_eq!(refused("0.004"), "must be at least the tick size");
        // Half a tick and more is a tick, off the grid.
        assert_eq!(refused("0.005"), "must be a multiple of the tick size");
        assert_eq!(refused("0.000"), "must be positive");
        assert_eq!(refused("1e300"), "must be at most 2^52 ticks");
        assert_eq!(refused("NaN"), "must be a finite number");
        assert_eq!(refused("ten"), "must be a number");
        assert_eq!(refused("1e999999999999"), "must be a finite number");
        assert!(TickSize::parse("0").is_err());
        assert!(TickSize::parse("abc").is_err());
    }

    #[test]
    fn uuids_round_trip_and_v4_bits_are_set() {
        let id = uuid_v4(u128::MAX);
        let mut text = String::new();
        write_uuid(&mut text, id);
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4", "version nibble");
        assert!("89ab".contains(&text[19..20]), "variant nibble");
        assert_eq!(parse_uuid(&text), Some(id));
        assert_eq!(parse_uuid(&text.to_uppercase()), Some(id));
        assert_eq!(parse_uuid(&text.replace('-', "")), Some(id));
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_uuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        write_timestamp(&mut out, 1_764_048_896_123_456_789);
        assert_eq!(out, "2025-11-25T05:34:56.123456Z");
        out.clear();
        write_timestamp(&mut out, 951_782_400_000_000_000);
        assert_eq!(out, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn new_order_bodies_are_checked_field_by_field() {
        let wire = wire();
        let ok = wire
            .new_order(br#"{"quantity": 10, "price": 100.0, "side": 1}"#)
            .unwrap();
        assert_eq!(
            ok,
            NewOrder {
                side: Side::Buy,
                price: 10_000,
                quantity: 10,
                tif: TimeInForce::GoodTillCancel,
            }
        );
        let sell = wire
            .new_order(br#"{"quantity": 3, "price": 99.5, "side": "sell"}"#)
            .unwrap();
        assert_eq!(sell.side, Side::Sell);
        let detail = |body: &str| wire.new_order(body.as_bytes()).unwrap_err();
        assert_eq!(
            detail(r#"{"price": 1, "side": 1}"#),
            ApiError::new(422, "quantity: field required")
        );
        assert_eq!(
            detail(r#"{"quantity": 0, "price": 1, "side": 1}"#).detail,
            "quantity: must be positive"
        );
        assert_eq!(
            detail(r#"{"quantity": 1.5, "price": 1, "side": 1}"#).detail,
            "quantity: must be an integer"
        );
        assert_eq!(
            detail(r#"{"quantity": 2000000000, "price": 1, "side": 1}"#).detail,
            "quantity: must be at most 1000000000"
        );
        assert_eq!(
            detail(r#"{"quantity": 1, "price": 1.001, "side": 1}"#).detail,
            "price: must be a multiple of the tick size"
        );
        assert_eq!(
            detail(r#"{"quantity": 1, "price": 1, "side": 2}"#).status,
            422
        );
        assert_eq!(
            detail(r#"{"quantity": 1, "price": 1}"#).detail,
            "side: field required"
        );
        assert_eq!(detail(r#"{"quantity": 1, "price": 1,"#).status, 400);
        assert_eq!(detail(r#"[1, 2]"#).status, 422);
        assert_eq!(
            detail(r#"[10, 100.0, 1]"#).detail,
            "Request body must be a JSON object"
        );
        assert_eq!(detail(r#"[10, 100.0"#).status, 400);
        let twice = detail(r#"{"quantity": 1, "price": 1, "side": 1, "quantity": 2}"#);
        assert_eq!(
            (twice.status, twice.detail.as_str()),
            (422, "quantity: given more than once")
        );
        let twice = wire.amendment(br#"{"price": 1, "price": 2}"#).unwrap_err();
        assert_eq!(twice.detail, "price: given more than once");
        let changed = wire
            .amendment(br#"{"price": 1, "post_only": true}"#)
            .unwrap_err();
        assert_eq!(
            (changed.status, changed.detail.as_str()),
            (
                422,
                "post_only: is set when an order is placed; a modify cannot change it"
            )
        );
        let changed = wire.amendment(br#"{"time_in_force": "IOC"}"#).unwrap_err();
        assert!(changed.detail.starts_with("time_in_force: "), "{changed:?}");
        let unchanged = wire.amendment(br#"{"quantity": 2, "time_in_force": null}"#);
        assert_eq!(unchanged.unwrap().quantity, Some(2));
    }

    #[test]
    fn order_json_matches_the_contract() {
        let wire = wire();
        let order = OrderView {
            id: 0x0123_4567_89ab_4def_8123_4567_89ab_cdef,
            side: Side::Sell,
            price: 10_050,
            quantity: 10,
            filled: 3,
            notional: 3 * 10_000,
            status: OrderStatus::PartiallyFilled,
        };
        let mut out = String::new();
        wire.placed(&mut out, &order);
        assert_eq!(
            out,
            r#"{"id":"01234567-89ab-4def-8123-456789abcdef","quantity":10,"price":100.5,"side":-1,"status":"partially filled","filled_quantity":3}"#
        );
        out.clear();
        wire.fetched(&mut out, &order);
        assert_eq!(
            out,
            r#"{"order_id":"01234567-89ab-4def-8123-456789abcdef","order_price":100.5,"order_quantity":10,"average_traded_price":100.0,"traded_quantity":3,"order_alive":true,"side":-1,"status":"partially filled"}"#
        );
    }

    #[test]
    fn a_market_order_has_no_price_and_never_rests() {
        let wire = wire();
        let order = |body: &str| wire.new_order(body.as_bytes());
        assert_eq!(
            order(r#"{"type": "market", "quantity": 5, "side": "buy"}"#),
            Ok(NewOrder {
                side: Side::Buy,
                price: MARKET,
                quantity: 5,
                tif: TimeInForce::ImmediateOrCancel,
            })
        );
        let fok = order(
            r#"{"type": "MARKET", "quantity": 5, "side": -1, "time_in_force": "fok", "price": null}"#,
        );
        assert_eq!(
            fok.map(|o| (o.side, o.price, o.tif)),
            Ok((Side::Sell, MARKET, TimeInForce::FillOrKill))
        );
        assert_eq!(
            order(r#"{"type": "limit", "quantity": 5, "price": 1, "side": 1}"#).map(|o| o.price),
            Ok(100)
        );
        let refused = |body: &str| order(body).unwrap_err().detail;
        for price in ["1", "0", "\"abc\""] {
            assert_eq!(
                refused(&format!(
                    r#"{{"type": "market", "quantity": 5, "price": {price}, "side": 1}}"#
                )),
                "price: a market order has none: it trades at the resting orders' prices"
            );
        }
        let never_rests = "a market order never rests: it is \"IOC\" (the default) or \"FOK\"";
        assert_eq!(
            refused(r#"{"type": "market", "quantity": 5, "side": 1, "time_in_force": "GTC"}"#),
            format!("time_in_force: {never_rests}")
        );
        assert_eq!(
            refused(r#"{"type": "market", "quantity": 5, "side": 1, "post_only": true}"#),
            format!("post_only: {never_rests}")
        );
        assert_eq!(
            refused(r#"{"type": "stop", "quantity": 5, "price": 1, "side": 1}"#),
            "type: must be \"limit\" or \"market\""
        );
        assert_eq!(
            refused(r#"{"type": "limit", "quantity": 5, "side": 1}"#),
            "price: field required"
        );
        assert_eq!(
            wire.amendment(br#"{"type": "market"}"#).unwrap_err().detail,
            "type: is set when an order is placed; a modify cannot change it"
        );
        // Its answers say what it is; its price is no limit.
        let filled = OrderView {
            id: 7,
            side: Side::Buy,
            price: MARKET,
            quantity: 5,
            filled: 5,
            notional: 5 * 10_050,
            status: OrderStatus::Filled,
        };
        let mut out = String::new();
        wire.placed(&mut out, &filled);
        assert_eq!(
            out,
            r#"{"id":"00000000-0000-0000-0000-000000000007","quantity":5,"price":0.0,"side":1,"status":"filled","filled_quantity":5,"type":"market"}"#
        );
        out.clear();
        wire.fetched(&mut out, &filled);
        assert_eq!(
            out,
            r#"{"order_id":"00000000-0000-0000-0000-000000000007","order_price":0.0,"order_quantity":5,"average_traded_price":100.5,"traded_quantity":5,"order_alive":false,"side":1,"status":"filled","type":"market"}"#
        );
    }

    #[test]
    fn stamps_never_run_backwards_when_the_clock_does() {
        let mut stamps = Stamps::after(5_000);
        assert_eq!(stamps.stamp_at(4_000), 5_000, "not before the last shown");
        assert_eq!(stamps.stamp_at(7_000), 7_000);
        assert_eq!(stamps.stamp_at(6_000), 7_000, "the clock stepped back");
        assert_eq!(stamps.stamp_at(9_000), 9_000);
    }
}
