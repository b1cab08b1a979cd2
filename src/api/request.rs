//! Request bodies decoded and checked field by field: places (one or a
//! batch), modifies and cancels, each refusal a 422 naming its field.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::client_id::{ClientOrderId, CLIENT_ID_RULE};
use super::ids::parse_uuid;
use super::price::plain_decimal;
use super::{ApiError, Wire};
use crate::engine::{CommandKind, OrderId, Qty, Side, Ticks, TimeInForce, MARKET};

/// A field's raw value unless it is absent or `null` (which mean the
/// default).
fn given(raw: Option<&RawValue>) -> Option<&str> {
    raw.map(RawValue::get).filter(|text| *text != "null")
}

/// A place's `type`: `"limit"` (the default) or `"market"`, in any case,
/// as exchange APIs spell them. True for a market order.
fn is_market(kind: Option<&RawValue>) -> Result<bool, ApiError> {
    match given(kind) {
        None => Ok(false),
        Some(text) => one_of(text, &[("limit", false), ("market", true)])
            .ok_or_else(|| ApiError::field("type", "must be \"limit\" or \"market\"")),
    }
}

/// The value paired with the word the JSON string `text` holds, matched
/// in any ASCII case (`"ioc"`, `"Sell"`), or `None` for any other text.
fn one_of<T: Copy>(text: &str, words: &[(&str, T)]) -> Option<T> {
    let word = serde_json::from_str::<&str>(text).ok()?;
    words
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(word))
        .map(|&(_, value)| value)
}

/// The name (or prefix of names) in `field`, if given (`null` is none).
fn name_field(raw: Option<&RawValue>, field: &str) -> Result<Option<ClientOrderId>, ApiError> {
    raw.filter(|raw| raw.get() != "null")
        .map(|raw| name_in(raw).ok_or_else(|| ApiError::field(field, CLIENT_ID_RULE)))
        .transpose()
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
        Some(text) => {
            let words = [
                ("GTC", TimeInForce::GoodTillCancel),
                ("IOC", TimeInForce::ImmediateOrCancel),
                ("FOK", TimeInForce::FillOrKill),
            ];
            one_of(text, &words).ok_or_else(|| {
                ApiError::field("time_in_force", "must be \"GTC\", \"IOC\" or \"FOK\"")
            })?
        }
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
    /// The client's own name for it, if it gave one.
    pub client_id: Option<ClientOrderId>,
}

impl NewOrder {
    /// The place command of this order, under the front's `id` for it.
    pub fn place(&self, id: OrderId) -> CommandKind {
        CommandKind::Place {
            id,
            side: self.side,
            price: self.price,
            quantity: self.quantity,
            tif: self.tif,
        }
    }
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
    #[serde(borrow)]
    client_order_id: Option<&'a RawValue>,
    /// Other APIs' spellings of the fields above (checked in `fields`).
    /// Unknown fields are ignored, as the original service ignored them;
    /// these would be ignored too, and a `"postOnly": true` order trade as
    /// a taker, so they are refused, naming the field meant.
    #[serde(default, rename = "timeInForce", deserialize_with = "is_there")]
    time_in_force_camel: bool,
    #[serde(default, rename = "tif", deserialize_with = "is_there")]
    tif: bool,
    #[serde(default, rename = "postOnly", deserialize_with = "is_there")]
    post_only_camel: bool,
    #[serde(default, rename = "clientOrderId", deserialize_with = "is_there")]
    client_order_id_camel: bool,
    #[serde(default, rename = "orderType", deserialize_with = "is_there")]
    order_type_camel: bool,
    #[serde(default, rename = "order_type", deserialize_with = "is_there")]
    order_type: bool,
    #[serde(default, rename = "qty", deserialize_with = "is_there")]
    qty: bool,
}

const NOT_AN_OBJECT: &str = "Request body must be a JSON object";

/// A field that is there, as `Some`, `null` too (`Some(None)`), which an
/// `Option` alone reads as absent.
fn nullable<'de, D: serde::Deserializer<'de>>(
    value: D,
) -> Result<Option<Option<&'de RawValue>>, D::Error> {
    Option::<&'de RawValue>::deserialize(value).map(Some)
}

/// True for a field that is there, whatever its value: `null` too, which
/// an `Option` would read as absent (`"postOnly": null` was let through).
fn is_there<'de, D: serde::Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(value).map(|_| true)
}

fn fields(body: &[u8]) -> Result<Fields<'_>, ApiError> {
    let fields: Fields = object(body, || ApiError::new(422, NOT_AN_OBJECT))?;
    let misspelt = [
        ("timeInForce", fields.time_in_force_camel, "time_in_force"),
        ("tif", fields.tif, "time_in_force"),
        ("postOnly", fields.post_only_camel, "post_only"),
        (
            "clientOrderId",
            fields.client_order_id_camel,
            "client_order_id",
        ),
        ("orderType", fields.order_type_camel, "type"),
        ("order_type", fields.order_type, "type"),
        ("qty", fields.qty, "quantity"),
    ];
    for (name, given, meant) in misspelt {
        if given {
            let why = format!("is not a field of this API; the field is {meant}");
            return Err(ApiError::field(name, &why));
        }
    }
    Ok(fields)
}

/// A `POST /orders/batch` body: `{"orders": [order, ...]}`.
#[derive(Deserialize)]
struct BatchFields<'a> {
    #[serde(borrow)]
    orders: Option<Vec<&'a RawValue>>,
}

/// A `POST /orders/cancel` body: `{"order_ids": [id, ...]}` or
/// `{"client_order_ids": [name, ...]}`.
#[derive(Deserialize)]
struct CancelFields<'a> {
    #[serde(borrow)]
    order_ids: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    client_order_ids: Option<Vec<&'a RawValue>>,
}

/// The order a batch modify or cancel is for: by its id, or by the name
/// its client gave it (`client_order_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef {
    /// The order's id.
    Id(OrderId),
    /// The client's name for it.
    Name(ClientOrderId),
}

/// A side: `1`, `"buy"` or `-1`, `"sell"` (numbers written any way a
/// quantity may be, `1.0`, `1e0` or `"1"`; words in any case).
fn side_in(raw: &RawValue) -> Result<Side, ApiError> {
    let number = number_text(raw).and_then(|text| text.trim().parse::<f64>().ok());
    let side = match number {
        Some(1.0) => Some(Side::Buy),
        Some(-1.0) => Some(Side::Sell),
        Some(_) => None,
        None => one_of(
            raw.get().trim(),
            &[("buy", Side::Buy), ("sell", Side::Sell)],
        ),
    };
    side.ok_or_else(|| ApiError::field("side", "must be 1 or \"buy\" (buy), -1 or \"sell\" (sell)"))
}

/// A JSON string holding a UUID.
fn uuid_in(raw: &RawValue) -> Option<OrderId> {
    serde_json::from_str::<&str>(raw.get())
        .ok()
        .and_then(parse_uuid)
}

/// A JSON string holding a `client_order_id`.
fn name_in(raw: &RawValue) -> Option<ClientOrderId> {
    serde_json::from_str::<&str>(raw.get())
        .ok()
        .and_then(ClientOrderId::parse)
}

/// Decodes a `POST /orders/cancel` body: 1 to [`MAX_BATCH`] order ids, or
/// as many names. One that is not a UUID (or not a name) refuses them
/// all, naming it.
pub fn order_refs(body: &[u8]) -> Result<Vec<OrderRef>, ApiError> {
    let fields: CancelFields<'_> = object(body, || batch_shape("order_ids", "id"))?;
    match (fields.order_ids, fields.client_order_ids) {
        (Some(_), Some(_)) => Err(ApiError::new(
            422,
            "order_ids: give order_ids or client_order_ids, not both",
        )),
        (None, Some(names)) => {
            let read = |raw: &RawValue| name_in(raw).map(OrderRef::Name);
            refs_in(
                Some(names),
                "client_order_ids",
                "names",
                read,
                CLIENT_ID_RULE,
            )
        }
        (None, None) => match field_other_than(body, &[]) {
            // A list under another name (`orderIds`, `clientOrderIds`):
            // name it, not the one missing.
            Some(other) => Err(ApiError::field(
                &other,
                "not a field of this body (it takes order_ids or client_order_ids)",
            )),
            None => refs_in(None, "order_ids", "ids", |_| None, "must be a UUID"),
        },
        (Some(ids), None) => {
            let read = |raw: &RawValue| uuid_in(raw).map(OrderRef::Id);
            refs_in(Some(ids), "order_ids", "ids", read, "must be a UUID")
        }
    }
}

/// The first field of a JSON object `body` that `known` does not name
/// (the object read once more, on the way to an error only): a list sent
/// under another name, to name in the error.
pub fn field_other_than(body: &[u8], known: &[&str]) -> Option<String> {
    let fields: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        serde_json::from_slice(body).ok()?;
    (fields.into_keys()).find(|key| !known.contains(&key.as_str()))
}

/// Most milliseconds `POST /orders/cancel_all_after` may set: a day.
pub const MAX_CANCEL_AFTER_MS: u64 = 86_400_000;

/// A `POST /orders/cancel_all_after` body: `{"timeout_ms": N}`, and
/// optionally `"client_order_id_prefix": "P"`.
#[derive(Deserialize)]
struct TimeoutFields<'a> {
    #[serde(borrow)]
    timeout_ms: Option<&'a RawValue>,
    /// `Some(None)` for `null`.
    #[serde(default, borrow, deserialize_with = "nullable")]
    client_order_id_prefix: Option<Option<&'a RawValue>>,
    /// Any other field: refused, since a misspelt prefix ignored would arm
    /// the switch for every order.
    #[serde(flatten)]
    others: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

/// Decodes a `POST /orders/cancel_all_after` body: the timeout in whole
/// milliseconds, 0 (disarm) to [`MAX_CANCEL_AFTER_MS`], and the name
/// prefix of the orders it covers (`None`: every order).
pub fn cancel_after_timeout(body: &[u8]) -> Result<(u64, Option<ClientOrderId>), ApiError> {
    let fields: TimeoutFields<'_> = object(body, || {
        ApiError::new(
            422,
            "Request body must be a JSON object {\"timeout_ms\": N}",
        )
    })?;
    if let Some(other) = fields.others.keys().next() {
        return Err(ApiError::field(
            other,
            "not a field of this body (it takes timeout_ms and client_order_id_prefix)",
        ));
    }
    // A null prefix is refused, not read as none: a client whose prefix
    // variable was unset would set, or disarm, the switch of every order
    // (leaving the field out says every order).
    let prefix =
        match fields.client_order_id_prefix {
            Some(None) => return Err(ApiError::field(
                "client_order_id_prefix",
                "must be a prefix, not null (leave the field out for the switch of every order)",
            )),
            Some(raw) => name_field(raw, "client_order_id_prefix")?,
            None => None,
        };
    let raw = fields
        .timeout_ms
        .filter(|raw| raw.get() != "null")
        .ok_or_else(|| ApiError::field("timeout_ms", "field required"))?;
    // Any number that is exactly whole, read as quantities are: a client
    // whose numbers are all floats sends `1000.0`, and one that quotes
    // numbers `"1000"`.
    let ms = number_text(raw).and_then(|text| match text.strip_prefix('-') {
        // `-0` is 0, off, as JSON readers take it.
        Some(magnitude) => plain_decimal(magnitude)
            .filter(|decimal| decimal.significand == 0)
            .map(|_| 0),
        None => plain_decimal(&text).and_then(|decimal| decimal.whole()),
    });
    match ms {
        Some(ms) if ms <= u128::from(MAX_CANCEL_AFTER_MS) => Ok((ms as u64, prefix)),
        _ => Err(ApiError::field(
            "timeout_ms",
            &format!(
                "must be a whole number of milliseconds, 0 (off) to {MAX_CANCEL_AFTER_MS} (a day)"
            ),
        )),
    }
}

/// A batch body's list `field` of 1 to [`MAX_BATCH`] `noun`, each read by
/// `read`; one it cannot read refuses them all, naming it and `why`.
fn refs_in(
    items: Option<Vec<&RawValue>>,
    field: &str,
    noun: &str,
    read: impl Fn(&RawValue) -> Option<OrderRef>,
    why: &str,
) -> Result<Vec<OrderRef>, ApiError> {
    batch_items(items, field, noun)?
        .iter()
        .enumerate()
        .map(|(i, raw)| read(raw).ok_or_else(|| ApiError::field(&format!("{field}[{i}]"), why)))
        .collect()
}

/// The order a `POST /orders/modify` change is for.
#[derive(Deserialize)]
struct IdField<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    client_order_id: Option<&'a RawValue>,
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

/// Python's `json.dumps` writes a float that is not finite as a bare
/// `NaN`, `Infinity` or `-Infinity`, which is not JSON (400), and a Python
/// client that sends one meant that number: SPEC §1 refuses it as not
/// finite (422 naming the field). So a body malformed by such tokens is
/// read again with each one quoted, and answered with the field's
/// refusal. Read so, a body that passes is still malformed JSON, and
/// stays 400.
fn non_finite_named<T>(
    body: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let malformed = match decode(body) {
        Err(error) if error.status == 400 => error,
        answer => return answer,
    };
    match non_finite_quoted(body).map(|quoted| decode(&quoted)) {
        Some(Err(refusal)) if refusal.status == 422 => Err(refusal),
        _ => Err(malformed),
    }
}

/// `body` with each bare `NaN`, `Infinity` and `-Infinity` outside
/// strings quoted, if it has any.
fn non_finite_quoted(body: &[u8]) -> Option<Vec<u8>> {
    let mut quoted = Vec::with_capacity(body.len() + 16);
    let (mut in_string, mut escaped, mut found) = (false, false, false);
    let mut at = 0;
    while at < body.len() {
        let byte = body[at];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if let Some(token) = [&b"NaN"[..], b"Infinity", b"-Infinity"]
            .into_iter()
            .find(|token| body[at..].starts_with(token))
        {
            quoted.push(b'"');
            quoted.extend_from_slice(token);
            quoted.push(b'"');
            at += token.len();
            found = true;
            continue;
        }
        quoted.push(byte);
        at += 1;
    }
    found.then_some(quoted)
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
        // A field found wrong before a syntax error further on: malformed
        // JSON is 400 wherever it is (`{"orders": 1_000}` was 422).
        if error.is_data() {
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                return ApiError::new(400, format!("Malformed JSON body: {syntax}"));
            }
        }
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
                &format!(
                    "unknown symbol {}: this service trades {}",
                    super::Quoted(&name),
                    super::Quoted(ours)
                ),
            )),
            Err(_) => Err(ApiError::field("symbol", "must be a string")),
        }
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
            Some(decimal) => decimal.whole().ok_or_else(|| bad("must be an integer"))?,
            // Negative, `NaN` or `inf`: a float holds it exactly below
            // 2^53, and refuses the rest.
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
        non_finite_named(body, |body| self.place_body(body))
    }

    fn place_body(&self, body: &[u8]) -> Result<NewOrder, ApiError> {
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
        Ok(NewOrder {
            side: side_in(side_raw)?,
            price,
            quantity,
            tif: time_in_force(fields.time_in_force, fields.post_only, market)?,
            client_id: name_field(fields.client_order_id, "client_order_id")?,
        })
    }

    /// Decodes and checks a `POST /orders/batch` body: 1 to [`MAX_BATCH`]
    /// orders, each as `POST /order/` takes it. One bad order refuses the
    /// batch, naming it: `orders[2].price: ...`.
    pub fn new_orders(&self, body: &[u8]) -> Result<Vec<NewOrder>, ApiError> {
        non_finite_named(body, |body| {
            let batch: BatchFields<'_> = object(body, || batch_shape("orders", "order"))?;
            let orders = batch_items(batch.orders, "orders", "orders")?;
            orders
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    self.place_body(raw.get().as_bytes())
                        .map_err(|e| at_order(i, e))
                })
                .collect()
        })
    }

    /// Decodes and checks a `POST /orders/modify` body: 1 to
    /// [`MAX_BATCH`] changes `{"id", "quantity", "price"}` (or
    /// `"client_order_id"` in place of `"id"`), each as `PUT /order/{id}`
    /// takes it. One bad change refuses them all.
    pub fn amendments(&self, body: &[u8]) -> Result<Vec<(OrderRef, Amendment)>, ApiError> {
        non_finite_named(body, |body| self.changes(body))
    }

    fn changes(&self, body: &[u8]) -> Result<Vec<(OrderRef, Amendment)>, ApiError> {
        let shape = || batch_shape("orders", r#"{"id", "quantity", "price"}"#);
        let batch: BatchFields<'_> = object(body, shape)?;
        let changes = batch_items(batch.orders, "orders", "orders")?;
        let change = |raw: &RawValue| -> Result<(OrderRef, Amendment), ApiError> {
            let named: IdField<'_> =
                object(raw.get().as_bytes(), || ApiError::new(422, NOT_AN_OBJECT))?;
            let name = named.client_order_id.filter(|raw| raw.get() != "null");
            let order = match (named.id, name) {
                (Some(_), Some(_)) => {
                    let why = "give id or client_order_id, not both";
                    return Err(ApiError::field("id", why));
                }
                (Some(id), None) => uuid_in(id)
                    .map(OrderRef::Id)
                    .ok_or_else(|| ApiError::field("id", "must be a UUID"))?,
                (None, Some(name)) => name_in(name)
                    .map(OrderRef::Name)
                    .ok_or_else(|| ApiError::field("client_order_id", CLIENT_ID_RULE))?,
                (None, None) => return Err(ApiError::field("id", "field required")),
            };
            Ok((order, self.change(raw.get().as_bytes(), true)?))
        };
        changes
            .iter()
            .enumerate()
            .map(|(i, raw)| change(raw).map_err(|e| at_order(i, e)))
            .collect()
    }

    /// Decodes and checks a `PUT /order/{id}` body.
    pub fn amendment(&self, body: &[u8]) -> Result<Amendment, ApiError> {
        non_finite_named(body, |body| self.change(body, false))
    }

    /// A modify's body; in a `POST /orders/modify` change
    /// (`names_the_order`) a `client_order_id` says which order, elsewhere
    /// it would read as a rename.
    fn change(&self, body: &[u8], names_the_order: bool) -> Result<Amendment, ApiError> {
        let fields = fields(body)?;
        self.symbol(fields.symbol)?;
        let rename = fields.client_order_id.filter(|_| !names_the_order);
        // A place's body resent as a modify (clients built for a lenient
        // server do so) carries the side: it must be one; it never changes.
        if let Some(raw) = fields.side.filter(|raw| raw.get() != "null") {
            side_in(raw)?;
        }
        // Said in a modify, they would read as taking effect; they cannot.
        for (name, raw) in [
            ("time_in_force", fields.time_in_force),
            ("post_only", fields.post_only),
            ("type", fields.kind),
            ("client_order_id", rename),
        ] {
            if raw.is_some_and(|raw| raw.get() != "null") {
                return Err(ApiError::field(
                    name,
                    "is set when an order is placed; a modify cannot change it",
                ));
            }
        }
        let amendment = Amendment {
            price: self.price(fields.price)?,
            quantity: self.quantity(fields.quantity)?,
        };
        if amendment.price.is_none() && amendment.quantity.is_none() {
            // A typo (`"qty"`) would otherwise be answered "Order modified".
            let why = "give a new quantity or price, or both: a modify of neither changes nothing";
            return Err(ApiError::field("quantity", why));
        }
        Ok(amendment)
    }
}
