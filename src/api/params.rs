//! Query parameters (`?limit=`, `?depth=`, `?order_id=`, ...), each
//! checked with a 422 that names it.

use std::borrow::Cow;

use super::client_id::{ClientOrderId, CLIENT_ID_RULE};
use super::ids::parse_uuid;
use super::time::parse_timestamp_with_offset;
use super::ApiError;
use crate::engine::{OrderId, Side, Timestamp};

/// The `?limit=` of a query (how many items at most: 1 to `max`, or any
/// number from 1 without one), or `default` without a `limit`.
pub fn limit_param(
    query: Option<&str>,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    count_param(query, "limit", default, max)
}

/// The longest candle interval, in seconds: a day.
pub const MAX_CANDLE_INTERVAL: u64 = 86_400;

/// The `?interval=` of `GET /candles`: seconds, 1 to a day; a minute
/// without one.
pub fn interval_param(query: Option<&str>) -> Result<u64, ApiError> {
    count_param(query, "interval", 60, Some(MAX_CANDLE_INTERVAL as usize))
        .map(|seconds| seconds as u64)
}

/// The whole number from 1 (to `max`) in the query parameter `name`, or
/// `default` without one.
fn count_param(
    query: Option<&str>,
    name: &str,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    let Some(value) = query_value(query, name) else {
        return Ok(default);
    };
    whole_number(&value)
        .filter(|&n| n >= 1 && max.is_none_or(|max| n <= max))
        .ok_or_else(|| match max {
            None => ApiError::field(name, "must be a whole number in digits, at least 1"),
            Some(max) => ApiError::field(
                name,
                &format!("must be a whole number in digits, from 1 to {max}"),
            ),
        })
}

/// The `?order_id=` of a query, if given; 422 if it is not a UUID.
pub fn order_id_param(query: Option<&str>) -> Result<Option<OrderId>, ApiError> {
    uuid_param(query, "order_id")
}

/// The `?end=` of `GET /candles`: only candles that start before this
/// time, to page back through them. Seconds since the epoch, or an RFC
/// 3339 time with its offset, such as a candle's `start`.
pub fn end_param(query: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    let Some(text) = query_value(query, "end") else {
        return Ok(None);
    };
    let refused = || {
        ApiError::field(
            "end",
            "must be a time: seconds since the epoch, or RFC 3339 such as 2026-12-01T00:00:00Z or 2026-12-01T01:00:00+01:00",
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = text.parse().map_err(|_| refused())?;
        return seconds
            .checked_mul(1_000_000_000)
            .map(Some)
            .ok_or_else(refused);
    }
    parse_timestamp_with_offset(&text)
        .map(Some)
        .ok_or_else(refused)
}

/// Which page of the kept trades `GET /trades` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradesPage {
    /// The newest (no `?after=` or `?before=`).
    Newest,
    /// The oldest after this trade's `unique_id` (`?after=`: paging
    /// forward, as a client does after a feed gap).
    After(u128),
    /// The newest before this trade's `unique_id` (`?before=`: paging
    /// back through the history).
    Before(u128),
}

/// Where a [`TradesPage`] starts, apart from the trade it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFrom {
    /// [`TradesPage::Newest`].
    Newest,
    /// [`TradesPage::After`].
    After,
    /// [`TradesPage::Before`].
    Before,
}

impl TradesPage {
    /// The page as where it starts and the `unique_id` it names (0 for
    /// the newest): a barrier holds them as two fields, so that with an
    /// order id beside them it still fits a ring slot.
    pub fn parts(self) -> (PageFrom, u128) {
        match self {
            TradesPage::Newest => (PageFrom::Newest, 0),
            TradesPage::After(trade) => (PageFrom::After, trade),
            TradesPage::Before(trade) => (PageFrom::Before, trade),
        }
    }

    /// The page [`parts`](Self::parts) gave.
    pub fn from_parts(from: PageFrom, trade: u128) -> Self {
        match from {
            PageFrom::Newest => TradesPage::Newest,
            PageFrom::After => TradesPage::After(trade),
            PageFrom::Before => TradesPage::Before(trade),
        }
    }
}

/// The `?after=` or `?before=` of `GET /trades` (a trade's `unique_id`);
/// both at once is refused.
pub fn trades_page(query: Option<&str>) -> Result<TradesPage, ApiError> {
    match (uuid_param(query, "after")?, uuid_param(query, "before")?) {
        (None, None) => Ok(TradesPage::Newest),
        (Some(after), None) => Ok(TradesPage::After(after)),
        (None, Some(before)) => Ok(TradesPage::Before(before)),
        (Some(_), Some(_)) => Err(ApiError::field(
            "before",
            "cannot be given with after: page one way at a time",
        )),
    }
}

/// The `?side=` of `GET` and `DELETE /orders`: `buy` or `1`, `sell` or
/// `-1` (any case), or none for both sides.
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

/// The `?client_order_id=` of `GET`, `PUT` and `DELETE /order`, if given.
pub fn client_id_param(query: Option<&str>) -> Result<Option<ClientOrderId>, ApiError> {
    name_param(query, "client_order_id")
}

/// The `?client_order_id_prefix=` of `GET /orders`, if given: a prefix
/// follows the rule of the names it begins.
pub fn client_id_prefix_param(query: Option<&str>) -> Result<Option<ClientOrderId>, ApiError> {
    name_param(query, "client_order_id_prefix")
}

/// The `client_order_id` (or prefix of one) in the query parameter `name`.
fn name_param(query: Option<&str>, name: &str) -> Result<Option<ClientOrderId>, ApiError> {
    query_value(query, name)
        .map(|text| {
            ClientOrderId::parse(&text).ok_or_else(|| ApiError::field(name, CLIENT_ID_RULE))
        })
        .transpose()
}

/// The UUID in the query parameter `name`, if given.
fn uuid_param(query: Option<&str>, name: &str) -> Result<Option<u128>, ApiError> {
    query_value(query, name)
        .map(|text| parse_uuid(&text).ok_or_else(|| ApiError::field(name, "must be a UUID")))
        .transpose()
}

/// The value of the parameter `name` in a query string, if given, its
/// `%XX` escapes decoded (URL encoders write a time's colons as `%3A`).
/// Given twice, the last counts, as in the Python service this one
/// replaces (Starlette's query dict); given without `=`, it is empty.
pub fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    query_pairs(query)
        .filter(|(key, _)| key == name)
        .last()
        .map(|(_, value)| value)
}

/// Refuses a query naming a parameter the route (`route` names it, when
/// one is refused) does not take (`takes` lists them): a misspelt or
/// misplaced selector (`?client_order_id=`, `?prefix=`) ignored would
/// list every order, or cancel every order instead of the few meant.
pub fn only_params(
    query: Option<&str>,
    route: impl FnOnce() -> String,
    takes: &[&str],
) -> Result<(), ApiError> {
    match query_pairs(query).find(|(key, _)| !takes.contains(&key.as_ref())) {
        Some((key, _)) if takes.is_empty() => Err(ApiError::field(
            &key,
            &format!("{} takes no query parameters", route()),
        )),
        Some((key, _)) => Err(ApiError::field(
            &key,
            &format!(
                "{} takes no such parameter (it takes {})",
                route(),
                takes.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// A query string's `key=value` pairs in order, keys and values with
/// their `%XX` escapes decoded; a key without `=` has an empty value.
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decoded(key), percent_decoded(value))
        })
}

/// A whole number written in decimal digits only (`parse` would also take
/// `+5`); one past `usize` counts as `usize::MAX`, which every bound
/// refuses or, unbounded, means "all" (it is a whole number, so "must be a
/// whole number" would be untrue).
fn whole_number(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(usize::MAX))
}

/// `raw` with each `%XX` escape decoded; as it is if it has none, or if
/// an escape is malformed or decodes to something other than UTF-8 (the
/// parameter's own check then refuses it).
fn percent_decoded(raw: &str) -> Cow<'_, str> {
    percent_decoded_if(raw, |_| true)
}

/// `raw` with each `%XX` escape of a byte `decode` takes decoded, other
/// escapes kept as they are; `raw` as it is if it has none, or if an
/// escape is malformed or the result is not UTF-8.
pub fn percent_decoded_if(raw: &str, decode: impl Fn(u8) -> bool) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) if decode(byte) => {
                out.push(byte);
                i += 3;
            }
            None if bytes[i] == b'%' => return Cow::Borrowed(raw),
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(raw), Cow::Owned)
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
    match whole_number(&value) {
        Some(depth) if depth <= MAX_DEPTH => Ok(depth),
        _ => Err(format!(
            "depth: must be a whole number in digits, from 0 to {MAX_DEPTH} (0 = every level)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_have_their_escapes_decoded() {
        let query = Some("end=2026-12-01T00%3A00%3a00Z&side=buy&bad=%zz&cut=50%");
        assert_eq!(query_value(query, "end").unwrap(), "2026-12-01T00:00:00Z");
        assert!(matches!(
            query_value(query, "side"),
            Some(Cow::Borrowed("buy"))
        ));
        // A malformed escape is left as it is, for the parameter to refuse.
        assert_eq!(query_value(query, "bad").unwrap(), "%zz");
        assert_eq!(query_value(query, "cut").unwrap(), "50%");
        assert_eq!(query_value(query, "depth"), None);
    }

    #[test]
    fn a_route_taking_only_some_parameters_refuses_others_by_name() {
        let takes = ["side", "client_order_id_prefix"];
        let check = |query| only_params(query, || "DELETE /orders".to_owned(), &takes);
        assert!(check(None).is_ok());
        assert!(check(Some("side=buy&client_order_id_prefix=mm1-")).is_ok());
        assert!(check(Some("%73ide=buy")).is_ok(), "names are decoded first");
        let error = check(Some("side=buy&client_order_id=mine-1")).unwrap_err();
        assert_eq!(
            (error.status, error.detail.as_str()),
            (
                422,
                "client_order_id: DELETE /orders takes no such parameter (it takes side, client_order_id_prefix)"
            )
        );
        assert!(check(Some("limit")).is_err());
    }

    #[test]
    fn a_parameter_given_twice_counts_its_last_value_and_one_without_a_value_is_empty() {
        let query = Some("side=buy&depth=3&side=sell&flag&depth=");
        assert_eq!(query_value(query, "side").unwrap(), "sell");
        assert_eq!(query_value(query, "flag").unwrap(), "");
        assert_eq!(side_param(query).unwrap(), Some(Side::Sell));
        assert!(depth_param(query, 5).is_err(), "the last depth is empty");
        assert_eq!(depth_param(Some("depth=&depth=7"), 5), Ok(7));
        let limit = |query| limit_param(Some(query), 100, Some(1000));
        assert_eq!(
            limit("limit=0&limit=20").unwrap(),
            20,
            "only the last is read"
        );
        assert_eq!(
            limit("limit=20&limit=0").unwrap_err().detail,
            "limit: must be a whole number in digits, from 1 to 1000"
        );
        assert!(
            side_param(Some("side")).is_err(),
            "an empty side is no side"
        );
    }

    #[test]
    fn numbers_are_digits_only_and_may_come_percent_encoded() {
        let limit = |query| limit_param(Some(query), 100, Some(1000));
        assert_eq!(limit("limit=%31%30").unwrap(), 10);
        assert_eq!(limit("%6Cimit=7").unwrap(), 7);
        assert_eq!(limit("other=1").unwrap(), 100);
        for bad in [
            "limit=+5",
            "limit=-5",
            "limit= 5",
            "limit=5.0",
            "limit=",
            "limit",
            "limit=0",
        ] {
            let error = limit(bad).unwrap_err();
            assert_eq!(
                error.detail, "limit: must be a whole number in digits, from 1 to 1000",
                "{bad}"
            );
        }
        // Past 2^64: all, unbounded; over the bound, bounded.
        let huge = "limit=18446744073709551616";
        assert_eq!(limit_param(Some(huge), 100, None).unwrap(), usize::MAX);
        assert_eq!(
            limit(huge).unwrap_err().detail,
            "limit: must be a whole number in digits, from 1 to 1000"
        );
        assert_eq!(interval_param(Some("interval=%33600")).unwrap(), 3600);
        assert_eq!(depth_param(Some("depth=%33"), 5), Ok(3));
        assert_eq!(depth_param(Some("depth=0"), 5), Ok(0));
        assert_eq!(depth_param(None, 5), Ok(5));
        assert!(depth_param(Some("depth=+3"), 5).is_err());
        assert!(depth_param(Some("depth=1001"), 5).is_err());
    }
}
