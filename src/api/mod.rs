//! The wire contract (SPEC §2): decimal prices and UUID ids on the wire,
//! ticks and `u128` inside; request bodies decoded and checked field by
//! field; responses written as JSON. One error type, [`ApiError`], carries
//! the HTTP status and the human-readable `detail`.

use std::borrow::Cow;

use crate::engine::Qty;

mod client_id;
mod ids;
mod params;
mod price;
mod request;
mod response;
mod time;

pub use client_id::{ClientOrderId, CLIENT_ID_RULE};
pub use ids::{parse_uuid, trade_number, trade_uuid, uuid_v4, write_uuid, TradeRecord, NO_ORDER};
pub use params::{
    client_id_param, client_id_prefix_param, depth_param, end_param, interval_param, limit_param,
    only_params, order_id_param, percent_decoded_if, query_value, side_param, trades_page,
    PageFrom, TradesPage, MAX_CANDLE_INTERVAL, MAX_DEPTH,
};
pub use price::TickSize;
pub use request::{
    cancel_after_timeout, field_other_than, number_text, order_refs, Amendment, NewOrder, OrderRef,
    MAX_BATCH, MAX_CANCEL_AFTER_MS,
};
pub use response::{client_id_field, Ticker};
pub use time::{civil_date, now_micros, parse_timestamp, write_timestamp, Stamps};

/// A request the API refuses: its status and the reason shown to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Why, for a person reading it.
    pub detail: String,
    /// The headers the status calls for, as (name, value): `Allow` on a
    /// 405, `Retry-After` on a 503, `Sec-WebSocket-Version` and `Upgrade`
    /// on a 426.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// 503: the service cannot take the request now; a client may retry
    /// after a second (`Retry-After: 1`, which HTTP client libraries'
    /// retry policies read).
    pub fn unavailable(detail: &str) -> Self {
        ApiError {
            headers: vec![("Retry-After", "1".into())],
            ..ApiError::new(503, detail)
        }
    }

    /// The error's extra headers as whole header lines (`\r\nName: value`
    /// each), or nothing.
    pub fn header_line(&self) -> String {
        (self.headers.iter())
            .map(|(name, value)| format!("\r\n{name}: {value}"))
            .collect()
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

/// A client's text quoted in an error's `detail` as JSON quotes a string
/// (`"a\u0001b"`): the reader of a JSON answer knows those escapes, where
/// Rust's own quoting (`{:?}`) wrote `"a\u{1}b"`.
pub struct Quoted<'a>(pub &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                // Every control character is below U+00A0, so four digits.
                c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
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

impl Wire {
    /// The default settings' wire (symbol `DEFAULT`, tick 0.01), for tests.
    #[cfg(test)]
    pub(crate) fn default_for_tests() -> Wire {
        Wire {
            symbol: Symbol::parse("DEFAULT").unwrap(),
            tick: TickSize::parse("0.01").unwrap(),
            max_quantity: 1_000_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{OrderStatus, OrderView, Side, TimeInForce, MARKET};

    fn wire() -> Wire {
        Wire::default_for_tests()
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
        // The client's text is quoted as JSON would quote it.
        assert_eq!(
            refused(r#""O\u0001\"\\\té""#).detail,
            r#"symbol: unknown symbol "O\u0001\"\\\té": this service trades "DEFAULT""#
        );
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
        // Every way of writing it is read exactly (a leading dot went
        // through a float, which holds no odd number past 2^53).
        assert_eq!(
            quantity("\".9007199254740993e16\""),
            Ok(9_007_199_254_740_993)
        );
        // Past the 38 digits a u128 holds, nothing is rounded: these were
        // taken as 1 and 3.
        for not_whole in [
            "0.99999999999999999999999999999999999999999",
            "2.9999999999999999999999999999999999999999999",
            "\"1.00000000000000000000000000000000000000001\"",
            "1e-400",
        ] {
            assert_eq!(
                refused(not_whole),
                "quantity: must be an integer",
                "{not_whole}"
            );
        }
        assert_eq!(
            quantity("7.000000000000000000000000000000000000000000000"),
            Ok(7)
        );
        assert_eq!(
            quantity("70000000000000000000000000000000000000000000e-43"),
            Ok(7)
        );
        // Past u128 with a fraction: no integer (a digit after the one
        // that did not fit was taken in its place).
        assert_eq!(
            refused("340282366920938463463374607431768211456.5"),
            "quantity: must be an integer"
        );
        // Whole numbers past u128 are past the bound, not "no integer".
        for huge in [
            "340282366920938463463374607431768211456",
            &format!("1{}", "0".repeat(400)),
            "1e2147483648",
        ] {
            assert_eq!(
                refused(huge),
                format!("quantity: must be at most {}", u64::MAX),
                "{huge}"
            );
        }
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
        // Exact however far the exponent or the digits go.
        assert_eq!(refused("1e999999999999"), "must be at most 2^52 ticks");
        let googol_to_the_fourth = format!("1{}", "0".repeat(400));
        assert_eq!(refused(&googol_to_the_fourth), "must be at most 2^52 ticks");
        assert_eq!(refused("1e-2147483648"), "must be at least the tick size");
        assert_eq!(refused("1e-400"), "must be at least the tick size");
        // Trailing zeros change nothing, and a digit past 38 is not
        // rounded away: through a float these were taken as .69.
        let zeros = "0".repeat(30);
        let half_a_cent_off = format!("42250470938136.685{zeros}");
        assert_eq!(
            refused(&half_a_cent_off),
            "must be a multiple of the tick size"
        );
        assert_eq!(
            refused("42250470938136.685000000000000000000000000001"),
            "must be a multiple of the tick size"
        );
        assert_eq!(cent.ticks_of(&format!("100.01{zeros}")), Ok(10_001));
        assert_eq!(
            satoshi.ticks_of(&format!("45035996.27370495{zeros}")),
            Ok((1 << 52) - 1)
        );
        // Within a millionth of a tick, however many digits, as before.
        assert_eq!(
            cent.ticks_of("100.010000000000000000000000000000000000000001"),
            Ok(10_001)
        );
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
        assert_eq!(parse_uuid("+0000000-0000-4000-8000-000000000001"), None);
        assert_eq!(parse_uuid("00000000-0000-4000-8000-00000000000"), None);
        assert_eq!(parse_uuid("000000000-000-4000-8000-000000000001"), None);
        let mut zero = String::new();
        write_uuid(&mut zero, 1);
        assert_eq!(zero, "00000000-0000-0000-0000-000000000001");
    }

    /// The slow way, with `format!` and a filtered `String`, as these were.
    fn formatted_uuid(id: u128) -> String {
        let hex = format!("{id:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    fn filtered_parse(text: &str) -> Option<u128> {
        let bytes = text.as_bytes();
        let hex: String = match bytes.len() {
            36 if [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-') => {
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

    proptest::proptest! {
        #[test]
        fn uuids_are_written_and_read_as_the_slow_way_does(
            id in proptest::num::u128::ANY,
            text in "[0-9a-fA-F+-]{30,38}",
            at in 0usize..36,
            with in proptest::sample::select(b"0aF-+gZ ".to_vec()),
        ) {
            let mut written = String::new();
            write_uuid(&mut written, id);
            proptest::prop_assert_eq!(&written, &formatted_uuid(id));
            proptest::prop_assert_eq!(parse_uuid(&written), Some(id));
            proptest::prop_assert_eq!(parse_uuid(&written.to_uppercase()), Some(id));
            proptest::prop_assert_eq!(parse_uuid(&text), filtered_parse(&text));
            // One byte changed, in either form.
            for form in [written.clone(), written.replace('-', "")] {
                let mut bytes = form.into_bytes();
                let at = at % bytes.len();
                bytes[at] = with;
                let changed = String::from_utf8(bytes).unwrap();
                proptest::prop_assert_eq!(parse_uuid(&changed), filtered_parse(&changed), "{}", changed);
            }
        }
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
                client_id: None,
            }
        );
        let sell = wire
            .new_order(br#"{"quantity": 3, "price": 99.5, "side": "sell"}"#)
            .unwrap();
        assert_eq!(sell.side, Side::Sell);
        // A side number is read as a quantity is, however written.
        let side_of = |side: &str| {
            let body = format!(r#"{{"quantity": 3, "price": 99.5, "side": {side}}}"#);
            wire.new_order(body.as_bytes()).map(|order| order.side)
        };
        for (written, side) in [
            ("1", Side::Buy),
            ("1.0", Side::Buy),
            ("1e0", Side::Buy),
            ("\"1\"", Side::Buy),
            ("\" 1.00 \"", Side::Buy),
            ("\"BUY\"", Side::Buy),
            ("-1", Side::Sell),
            ("-1e0", Side::Sell),
            ("-10e-1", Side::Sell),
            ("\"-1\"", Side::Sell),
            ("\"Sell\"", Side::Sell),
        ] {
            assert_eq!(side_of(written), Ok(side), "{written}");
        }
        for written in [
            "0", "-0", "2", "1.5", "\"NaN\"", "\"inf\"", "true", "null", "\"\"",
        ] {
            assert_eq!(side_of(written).unwrap_err().status, 422, "{written}");
        }
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
        let side = wire.amendment(br#"{"quantity": 2, "side": "banana"}"#);
        assert_eq!(
            side.unwrap_err().detail,
            "side: must be 1 or \"buy\" (buy), -1 or \"sell\" (sell)"
        );
        let resent = wire.amendment(br#"{"quantity": 2, "side": -1}"#).unwrap();
        assert_eq!(resent, wire.amendment(br#"{"quantity": 2}"#).unwrap());
        let nothing =
            "quantity: give a new quantity or price, or both: a modify of neither changes nothing";
        for body in [&b"{}"[..], br#"{"quantity": null, "price": null}"#] {
            let refused = wire.amendment(body).unwrap_err();
            assert_eq!((refused.status, refused.detail.as_str()), (422, nothing));
        }
        // Other APIs' spellings, which would be ignored, name the field meant.
        for (body, detail) in [
            (
                &br#"{"qty": 5}"#[..],
                "qty: is not a field of this API; the field is quantity",
            ),
            (
                br#"{"price": 5, "timeInForce": "IOC"}"#,
                "timeInForce: is not a field of this API; the field is time_in_force",
            ),
        ] {
            let refused = wire.amendment(body).unwrap_err();
            assert_eq!((refused.status, refused.detail.as_str()), (422, detail));
        }
        for (spelt, meant) in [
            ("timeInForce", "time_in_force"),
            ("tif", "time_in_force"),
            ("postOnly", "post_only"),
            ("clientOrderId", "client_order_id"),
            ("orderType", "type"),
            ("order_type", "type"),
            ("qty", "quantity"),
        ] {
            // Given as null too: it is there, and meant something.
            for value in ["1", "null"] {
                let body =
                    format!(r#"{{"quantity": 1, "price": 1, "side": 1, "{spelt}": {value}}}"#);
                let refused = wire.new_order(body.as_bytes()).unwrap_err();
                let detail = format!("{spelt}: is not a field of this API; the field is {meant}");
                assert_eq!((refused.status, refused.detail), (422, detail), "{body}");
                let amendment = format!(r#"{{"quantity": 2, "{spelt}": {value}}}"#);
                let refused = wire.amendment(amendment.as_bytes()).unwrap_err();
                assert_eq!(refused.status, 422, "{amendment}");
            }
        }
        // Malformed JSON is 400 even where a field was found wrong before
        // the syntax error (a duplicate, a value of the wrong type).
        for body in [
            &br#"{"quantity":1,"price":1,"side":1,"quantity":2"#[..],
            br#"{"quantity":1,"price":1,"side":1,"quantity":2}}"#,
            br#"{"quantity":"x","price":1,"side":1,"zz":1_0}"#,
        ] {
            let refused = wire.new_order(body).unwrap_err();
            assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(body));
            assert!(
                refused.detail.starts_with("Malformed JSON body: "),
                "{}",
                refused.detail
            );
        }
        let batches = [
            wire.new_orders(br#"{"orders":1_000}"#).unwrap_err(),
            wire.new_orders(br#"{"orders":{"a":1]}"#).unwrap_err(),
            wire.amendments(br#"{"orders":{"quantity":26}]}"#)
                .unwrap_err(),
            request::order_refs(br#"{"order_ids":1_000}"#).unwrap_err(),
            request::cancel_after_timeout(br#"{"timeout_ms":1000,"timeout_ms""#).unwrap_err(),
        ];
        for refused in batches {
            assert_eq!(refused.status, 400, "{}", refused.detail);
            let malformed = refused.detail.starts_with("Malformed JSON body: ");
            assert!(malformed, "{}", refused.detail);
        }
        let priced = wire.amendment(br#"{"price": 1, "side": null}"#).unwrap();
        assert_eq!(priced, wire.amendment(br#"{"price": 1}"#).unwrap());
    }

    #[test]
    fn a_bare_nan_or_infinity_as_python_writes_it_is_refused_as_not_finite() {
        let wire = Wire::default_for_tests();
        let not_finite = |refused: ApiError| (refused.status, refused.detail);
        for token in ["NaN", "Infinity", "-Infinity"] {
            let body = format!(r#"{{"quantity": 1, "price": {token}, "side": 1}}"#);
            let why = (422, "price: must be a finite number".to_string());
            assert_eq!(
                not_finite(wire.new_order(body.as_bytes()).unwrap_err()),
                why
            );
            let batch =
                format!(r#"{{"orders": [{{"quantity": 1, "price": 1, "side": 1}}, {body}]}}"#);
            let why = (422, "orders[1].price: must be a finite number".to_string());
            assert_eq!(
                not_finite(wire.new_orders(batch.as_bytes()).unwrap_err()),
                why
            );
            let change = format!(r#"{{"price": {token}}}"#);
            assert_eq!(wire.amendment(change.as_bytes()).unwrap_err().status, 422);
            let id = "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11";
            let changes = format!(r#"{{"orders": [{{"id": "{id}", "price": {token}}}]}}"#);
            assert_eq!(wire.amendments(changes.as_bytes()).unwrap_err().status, 422);
        }
        // Quoted, such a token may be a fine value: the body is still not
        // JSON. Inside a string, or with other damage, it is no number.
        for body in [
            &br#"{"quantity": 1, "price": 1, "side": 1, "client_order_id": NaN}"#[..],
            br#"{"quantity": 1, "price": NaN, "side": 1"#,
            br#"{"quantity": 1, "price": 1, "side": 1, "client_order_id": "NaN" x}"#,
        ] {
            let refused = wire.new_order(body).unwrap_err();
            assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            wire.new_order(br#"{"quantity": 1, "price": 1, "side": 1, "client_order_id": "NaN"}"#)
                .unwrap()
                .price,
            wire.new_order(br#"{"quantity": 1, "price": 1, "side": 1}"#)
                .unwrap()
                .price
        );
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
    fn a_client_order_id_is_taken_on_a_place_and_refused_on_a_modify() {
        let wire = wire();
        let body = |cid: &str| {
            format!(r#"{{"quantity": 1, "price": 1, "side": 1, "client_order_id": {cid}}}"#)
        };
        let named = wire.new_order(body(r#""leg-1""#).as_bytes()).unwrap();
        assert_eq!(named.client_id.map(|c| c.to_string()), Some("leg-1".into()));
        assert_eq!(
            wire.new_order(body("null").as_bytes()).unwrap().client_id,
            None
        );
        let too_long = format!("\"{}\"", "x".repeat(37));
        for bad in ["1", r#""""#, r#""a b""#, &too_long] {
            let error = wire.new_order(body(bad).as_bytes()).unwrap_err();
            assert_eq!(error.status, 422, "{bad}");
            assert_eq!(
                error.detail,
                format!("client_order_id: {CLIENT_ID_RULE}"),
                "{bad}"
            );
        }
        let error = wire
            .amendment(br#"{"quantity": 2, "client_order_id": "leg-1"}"#)
            .unwrap_err();
        assert_eq!(
            error.detail,
            "client_order_id: is set when an order is placed; a modify cannot change it"
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
                client_id: None,
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
