//! Black-box tests of the REST contract (SPEC §1, §2): every endpoint and
//! every error status, against the real binary over real sockets.

mod support;

use loadgen::feed::parse_micros;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const ORDER_KEYS: [&str; 6] = [
    "id",
    "quantity",
    "price",
    "side",
    "status",
    "filled_quantity",
];
const FETCHED_KEYS: [&str; 8] = [
    "order_id",
    "order_price",
    "order_quantity",
    "average_traded_price",
    "traded_quantity",
    "order_alive",
    "side",
    "status",
];
const TRADE_KEYS: [&str; 6] = [
    "unique_id",
    "execution_timestamp",
    "buy_order_id",
    "sell_order_id",
    "price",
    "quantity",
];

/// A UUID (v4) that the server never handed out.
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

fn assert_fetched_shape(order: &Value) {
    let got = keys(order);
    let required = key_set(&FETCHED_KEYS[..6]);
    assert!(
        got.is_superset(&required),
        "GET /order/{{id}} has the contract's keys: {order}"
    );
    assert_eq!(
        got,
        key_set(&FETCHED_KEYS),
        "and side, status only: {order}"
    );
}

fn assert_trade_shape(trade: &Value) {
    assert_eq!(keys(trade), key_set(&TRADE_KEYS), "trade keys: {trade}");
    assert!(is_uuid_v4(&string(trade, "unique_id")), "{trade}");
    assert!(is_uuid_v4(&string(trade, "buy_order_id")), "{trade}");
    assert!(is_uuid_v4(&string(trade, "sell_order_id")), "{trade}");
    let stamp = string(trade, "execution_timestamp");
    let micros = parse_micros(&stamp)
        .unwrap_or_else(|| panic!("execution_timestamp {stamp:?} is RFC 3339 UTC with micros"));
    let now = now_micros();
    assert!(
        (now - micros).abs() < 120_000_000,
        "execution_timestamp {stamp} is close to now"
    );
    assert!(trade["price"].is_number() && trade["quantity"].is_u64());
}

#[test]
fn post_order_answers_the_order_on_both_paths() {
    let server = Server::start();
    let mut client = server.connect();
    let mut ids = Vec::new();
    for (path, side_text, side) in [
        ("/order/", "1", 1),
        ("/order", "-1", -1),
        ("/order/", r#""buy""#, 1),
        ("/order", r#""sell""#, -1),
    ] {
        let price = if side == 1 { 100.0 } else { 101.0 };
        let body = format!(r#"{{"quantity": 10, "price": {price:?}, "side": {side_text}}}"#);
        let response = client.post(path, &body);
        assert!(!response.closes(), "keep-alive by default");
        let order = response.expect(200);
        assert_eq!(keys(&order), key_set(&ORDER_KEYS), "{path}: {order}");
        let id = string(&order, "id");
        assert!(is_uuid_v4(&id), "id {id:?} is a UUID v4");
        assert_eq!(order["quantity"], json!(10));
        assert!(order["price"].is_number(), "price is a number: {order}");
        assert_eq!(num(&order, "price"), price);
        assert_eq!(order["side"], json!(side), "side as a number: {order}");
        assert_eq!(order["status"], json!("open"));
        assert_eq!(order["filled_quantity"], json!(0));
        ids.push(id);
    }
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "every order gets its own id");

    // A price with cents is echoed exactly; the largest quantity is taken.
    let order = client.place(1, 99.99, 1_000_000_000);
    assert_eq!(num(&order, "price"), 99.99);
    assert_eq!(order["quantity"], json!(1_000_000_000u64));
    for (sent, echoed) in [
        ("0.01", 0.01),
        ("100.1", 100.1),
        ("1e2", 100.0),
        ("\"42.5\"", 42.5),
    ] {
        let body = format!(r#"{{"quantity": 1, "price": {sent}, "side": 1}}"#);
        let order = client.post("/order/", &body).expect(200);
        assert_eq!(num(&order, "price"), echoed, "price {sent}");
    }
    // Numbers written as strings (the original accepted them) and the
    // "Buy"/"SELL" spellings.
    let order = client
        .post(
            "/order/",
            r#"{"quantity": 3, "price": 50.5, "side": "SELL"}"#,
        )
        .expect(200);
    assert_eq!(order["side"], json!(-1));
}

#[test]
fn post_order_rejects_each_bad_field_with_422_naming_it() {
    let server = Server::start();
    let mut client = server.connect();
    let cases: &[(&str, &str)] = &[
        (r#"{"price": 100.0, "side": 1}"#, "quantity: field required"),
        (
            r#"{"quantity": null, "price": 100.0, "side": 1}"#,
            "quantity: field required",
        ),
        (
            r#"{"quantity": 0, "price": 100.0, "side": 1}"#,
            "quantity: must be positive",
        ),
        (
            r#"{"quantity": -5, "price": 100.0, "side": 1}"#,
            "quantity: must be positive",
        ),
        (
            r#"{"quantity": 1.5, "price": 100.0, "side": 1}"#,
            "quantity: must be an integer",
        ),
        (
            r#"{"quantity": "ten", "price": 100.0, "side": 1}"#,
            "quantity: must be an integer",
        ),
        (
            r#"{"quantity": 1000000001, "price": 100.0, "side": 1}"#,
            "quantity: must be at most 1000000000",
        ),
        (
            r#"{"quantity": 1e12, "price": 100.0, "side": 1}"#,
            "quantity: must be at most 1000000000",
        ),
        (r#"{"quantity": 10, "side": 1}"#, "price: field required"),
        (
            r#"{"quantity": 10, "price": 100.001, "side": 1}"#,
            "price: must be a multiple of the tick size",
        ),
        (
            r#"{"quantity": 10, "price": 0.005, "side": 1}"#,
            "price: must be a multiple of the tick size",
        ),
        (
            r#"{"quantity": 10, "price": 0.001, "side": 1}"#,
            "price: must be at least the tick size",
        ),
        (
            r#"{"quantity": 10, "price": 45035996273704.97, "side": 1}"#,
            "price: must be at most 2^52 ticks",
        ),
        (
            r#"{"quantity": 10, "price": 0, "side": 1}"#,
            "price: must be positive",
        ),
        (
            r#"{"quantity": 10, "price": 0.0, "side": 1}"#,
            "price: must be positive",
        ),
        (
            r#"{"quantity": 10, "price": -100.0, "side": 1}"#,
            "price: must be positive",
        ),
        (
            r#"{"quantity": 10, "price": "abc", "side": 1}"#,
            "price: must be a number",
        ),
        (
            r#"{"quantity": 10, "price": 100.0}"#,
            "side: field required",
        ),
    ];
    for (body, detail) in cases {
        client.post("/order/", body).expect_detail(422, detail);
    }
    for side in ["0", "2", "-2", r#""hold""#, "null", "true", "[1]"] {
        let body = format!(r#"{{"quantity": 10, "price": 100.0, "side": {side}}}"#);
        let detail = client.post("/order", &body).detail(422);
        assert!(detail.starts_with("side:"), "side {side}: {detail}");
    }
    // Valid JSON that is not an object.
    for body in ["[10, 100.0]", r#""an order""#, "42", "null"] {
        client
            .post("/order/", body)
            .expect_detail(422, "Request body must be a JSON object");
    }
    // Nothing of that reached the book.
    let (buys, sells) = client.orders();
    assert!(buys.is_empty() && sells.is_empty(), "{buys:?} {sells:?}");
    // The connection served all of it and still works.
    client.get("/health").expect(200);
}

#[test]
fn time_in_force_and_post_only_are_taken_and_checked() {
    let server = Server::start();
    let mut client = server.connect();
    client.place(-1, 100.0, 5);
    // IOC: trades what crosses, the rest is cancelled and never rests.
    let ioc = client
        .post(
            "/order/",
            r#"{"quantity": 8, "price": 100.0, "side": 1, "time_in_force": "IOC"}"#,
        )
        .expect(200);
    assert_eq!(
        (&ioc["status"], &ioc["filled_quantity"], &ioc["quantity"]),
        (&json!("cancelled"), &json!(5), &json!(8))
    );
    let fetched = client.order(ioc["id"].as_str().unwrap());
    assert_eq!(
        (
            &fetched["order_alive"],
            &fetched["traded_quantity"],
            &fetched["average_traded_price"]
        ),
        (&json!(false), &json!(5), &json!(100.0))
    );
    // FOK that the book cannot fill whole: nothing trades.
    client.place(-1, 101.0, 3);
    let fok = client
        .post(
            "/order/",
            r#"{"quantity": 4, "price": 101.0, "side": "buy", "time_in_force": "fok"}"#,
        )
        .expect(200);
    assert_eq!(
        (&fok["status"], &fok["filled_quantity"]),
        (&json!("cancelled"), &json!(0))
    );
    // Post-only: refused if it would trade, rests otherwise.
    client
        .post(
            "/order/",
            r#"{"quantity": 1, "price": 101.0, "side": 1, "post_only": true}"#,
        )
        .expect_detail(
            422,
            "post_only: the order would trade on arrival; it was not placed",
        );
    let maker = client
        .post("/order/", r#"{"quantity": 1, "price": 100.99, "side": 1, "post_only": true, "time_in_force": "GTC"}"#)
        .expect(200);
    assert_eq!(maker["status"], json!("open"));
    // Explicit defaults are the defaults.
    let plain = client
        .post("/order/", r#"{"quantity": 2, "price": 99.0, "side": 1, "time_in_force": null, "post_only": false}"#)
        .expect(200);
    assert_eq!(plain["status"], json!("open"));
    let (buys, sells) = client.orders();
    let resting: Vec<(&Value, &Value)> = buys
        .iter()
        .chain(&sells)
        .map(|o| (&o["price"], &o["quantity"]))
        .collect();
    assert_eq!(
        resting,
        [
            (&json!(100.99), &json!(1)),
            (&json!(99.0), &json!(2)),
            (&json!(101.0), &json!(3))
        ]
    );
    // Bad values name the field; nothing reaches the book.
    for (body, detail) in [
        (
            r#"{"quantity": 1, "price": 90.0, "side": 1, "time_in_force": "DAY"}"#,
            r#"time_in_force: must be "GTC", "IOC" or "FOK""#,
        ),
        (
            r#"{"quantity": 1, "price": 90.0, "side": 1, "time_in_force": 1}"#,
            r#"time_in_force: must be "GTC", "IOC" or "FOK""#,
        ),
        (
            r#"{"quantity": 1, "price": 90.0, "side": 1, "post_only": "yes"}"#,
            "post_only: must be true or false",
        ),
        (
            r#"{"quantity": 1, "price": 90.0, "side": 1, "post_only": true, "time_in_force": "IOC"}"#,
            r#"post_only: only with time_in_force "GTC": an order that must rest cannot be immediate"#,
        ),
    ] {
        client.post("/order/", body).expect_detail(422, detail);
    }
    let (buys, sells) = client.orders();
    assert_eq!(buys.len() + sells.len(), 3);
}

#[test]
fn market_orders_take_the_book_at_the_makers_prices_and_never_rest() {
    let server = Server::start();
    let mut client = server.connect();
    let cheap = client.place_id(-1, 100.0, 3);
    let dear = client.place_id(-1, 101.5, 4);
    client.place(1, 99.0, 2);
    let market = client
        .post(
            "/order/",
            r#"{"type": "market", "quantity": 9, "side": "buy"}"#,
        )
        .expect(200);
    assert_eq!(
        market,
        json!({"id": market["id"], "quantity": 9, "price": 0.0, "side": 1,
               "status": "cancelled", "filled_quantity": 7, "type": "market"}),
        "it swept both asks; the 2 the book could not fill are cancelled"
    );
    let id = market["id"].as_str().unwrap();
    let fills: Vec<(Value, Value, Value)> = client
        .trades(&format!("?order_id={id}"))
        .iter()
        .map(|t| {
            (
                t["sell_order_id"].clone(),
                t["price"].clone(),
                t["quantity"].clone(),
            )
        })
        .collect();
    assert_eq!(
        fills,
        [
            (json!(cheap), json!(100.0), json!(3)),
            (json!(dear), json!(101.5), json!(4))
        ]
    );
    let fetched = client.order(id);
    assert_eq!(
        (
            &fetched["order_price"],
            &fetched["average_traded_price"],
            &fetched["traded_quantity"],
            &fetched["order_alive"],
            &fetched["type"]
        ),
        (
            &json!(0.0),
            &json!(706.0 / 7.0),
            &json!(7),
            &json!(false),
            &json!("market")
        )
    );
    // A market sell fills from the best bid; FOK fills whole or not at all.
    let fok = client
        .post(
            "/order/",
            r#"{"type": "market", "quantity": 3, "side": -1, "time_in_force": "FOK"}"#,
        )
        .expect(200);
    assert_eq!(
        (&fok["status"], &fok["filled_quantity"]),
        (&json!("cancelled"), &json!(0))
    );
    let sell = client
        .post(
            "/order/",
            r#"{"type": "market", "quantity": 2, "side": -1}"#,
        )
        .expect(200);
    assert_eq!(
        (&sell["status"], &sell["filled_quantity"]),
        (&json!("filled"), &json!(2))
    );
    let (buys, sells) = client.orders();
    assert!(buys.is_empty() && sells.is_empty(), "{buys:?} {sells:?}");
    // What a market order cannot be is refused by name, and nothing rests.
    client.place(1, 98.0, 1);
    for (body, detail) in [
        (
            r#"{"type": "market", "quantity": 1, "price": 98.0, "side": -1}"#,
            "price: a market order has none: it trades at the resting orders' prices",
        ),
        (
            r#"{"type": "market", "quantity": 1, "side": -1, "time_in_force": "GTC"}"#,
            r#"time_in_force: a market order never rests: it is "IOC" (the default) or "FOK""#,
        ),
        (
            r#"{"type": "stop", "quantity": 1, "price": 98.0, "side": -1}"#,
            r#"type: must be "limit" or "market""#,
        ),
    ] {
        client.post("/order/", body).expect_detail(422, detail);
    }
    let (buys, _) = client.orders();
    assert_eq!(buys.len(), 1, "the bid is still there: {buys:?}");
}

#[test]
fn a_json_array_body_is_not_an_order() {
    let server = Server::start();
    let mut client = server.connect();
    // serde's derived struct decoding also accepts a sequence: the fields
    // in declaration order. The contract's bodies are objects.
    client
        .post("/order/", "[10, 100.0, 1]")
        .expect_detail(422, "Request body must be a JSON object");
    let id = client.place_id(-1, 100.0, 10);
    client
        .put(&format!("/order/{id}"), "[12, 100.0]")
        .expect_detail(422, "Request body must be a JSON object");
    let (buys, sells) = client.orders();
    assert!(buys.is_empty(), "{buys:?}");
    assert_eq!(sells[0]["quantity"], json!(10));
}

#[test]
fn malformed_json_is_400() {
    let server = Server::start();
    let mut client = server.connect();
    for body in [
        r#"{"quantity": 10,"#,
        "not json",
        "",
        "{\"quantity\": 10} trailing",
    ] {
        let detail = client.post("/order/", body).detail(400);
        assert!(
            detail.starts_with("Malformed JSON body"),
            "{body:?}: {detail}"
        );
    }
    // JSON is UTF-8 (RFC 8259), in a field the service reads or not.
    let body = b"{\"quantity\": 10, \"price\": 100.0, \"side\": 1, \"note\": \"\xff\"}";
    let mut raw = format!(
        "POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    client.send_raw(&raw).unwrap();
    let response = client.read_response().unwrap();
    response.expect_detail(400, "Malformed JSON body: not UTF-8 at byte 53");
    assert_eq!(client.orders(), (vec![], vec![]), "nothing placed");
    let id = client.place_id(1, 100.0, 5);
    let detail = client.put(&format!("/order/{id}"), "{").detail(400);
    assert!(detail.starts_with("Malformed JSON body"), "{detail}");
    client.get("/health").expect(200);
}

/// Sends one request with this `Content-Type` header (none for `None`)
/// and reads its answer.
fn send_typed(
    client: &mut Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Response {
    let content_type = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    client.send_raw(request.as_bytes()).unwrap();
    client.read_response().unwrap()
}

#[test]
fn a_body_sent_as_another_media_type_is_415_and_changes_nothing() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 100.0, 10);
    let path = format!("/order/{id}");
    let order = r#"{"quantity": 10, "price": 101.0, "side": -1}"#;
    let change = r#"{"quantity": 3, "price": 99.0}"#;
    // What a web page can make a browser send anywhere without asking.
    for (sent, shown) in [
        ("text/plain;charset=UTF-8", r#""text/plain;charset=UTF-8""#),
        (
            "application/x-www-form-urlencoded",
            r#""application/x-www-form-urlencoded""#,
        ),
        (
            "multipart/form-data; boundary=x",
            r#""multipart/form-data; boundary=x""#,
        ),
        ("text/json", r#""text/json""#),
    ] {
        let expected = format!("Content-Type: must be application/json, not {shown}");
        send_typed(&mut client, "POST", "/order/", Some(sent), order).expect_detail(415, &expected);
        send_typed(&mut client, "PUT", &path, Some(sent), change).expect_detail(415, &expected);
    }
    // Checked before the body: a bad body under a bad type is still 415.
    let bad_both = send_typed(&mut client, "POST", "/order", Some("text/plain"), "{");
    assert_eq!(bad_both.status, 415);
    // Nothing of that reached the book: the order rests as placed, alone.
    let (buys, sells) = client.orders();
    assert!(sells.is_empty(), "{sells:?}");
    assert_eq!(buys.len(), 1, "{buys:?}");
    assert_eq!(
        (&buys[0]["id"], &buys[0]["quantity"]),
        (&json!(id), &json!(10))
    );
    assert_eq!(buys[0]["price"], json!(100.0));

    // JSON in any spelling, and no Content-Type at all, are taken.
    let mut placed = 0;
    for sent in [
        None,
        Some("application/json"),
        Some("Application/JSON; charset=utf-8"),
        Some("application/vnd.api+json"),
    ] {
        let body = r#"{"quantity": 1, "price": 90.0, "side": 1}"#;
        let answer = send_typed(&mut client, "POST", "/order/", sent, body);
        assert_eq!(answer.expect(200)["status"], json!("open"));
        placed += 1;
    }
    send_typed(&mut client, "PUT", &path, Some("application/json"), change).expect(200);
    let (buys, _) = client.orders();
    assert_eq!(buys.len(), 1 + placed);
    assert_eq!(
        (&buys[0]["id"], &buys[0]["quantity"]),
        (&json!(id), &json!(3))
    );
    // DELETE and GET carry no body: their Content-Type is not looked at.
    send_typed(&mut client, "DELETE", &path, Some("text/plain"), "").expect(200);
}

/// A browser sends a byte-array body (`fetch(url, {method: "POST", body:
/// new TextEncoder().encode(json)})`, `navigator.sendBeacon`) with no
/// `Content-Type` and no preflight, but with an `Origin`: taken as JSON,
/// any page could place orders, or cancel the book. Without an `Origin`
/// (curl, wrk, the original's clients) a body with no type is still JSON.
#[test]
fn a_web_pages_body_with_no_content_type_is_415_and_changes_nothing() {
    let server = Server::start_with(&["--cors-origin", "*"]);
    let mut client = server.connect();
    let id = client.place_id(1, 100.0, 10);
    let from_a_page = |method: &str, path: &str, body: &str, expect: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://elsewhere.example\r\n\
             {expect}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let refused = "Content-Type: must be application/json: a web page's body without one is not taken as JSON";
    for (method, path, body) in [
        (
            "POST",
            "/order/",
            r#"{"quantity": 1, "price": 100.0, "side": -1}"#,
        ),
        ("PUT", &format!("/order/{id}"), r#"{"quantity": 3}"#),
        ("POST", "/orders/cancel_all_after", r#"{"timeout_ms": 1}"#),
        (
            "POST",
            "/orders/cancel",
            &format!(r#"{{"order_ids": ["{id}"]}}"#),
        ),
    ] {
        client
            .send_raw(from_a_page(method, path, body, "").as_bytes())
            .unwrap();
        client.read_response().unwrap().expect_detail(415, refused);
    }
    // With Expect: 100-continue it is refused before the body is sent.
    let asked = from_a_page("POST", "/order/", "", "Expect: 100-continue\r\n");
    let asked = asked.replace("Content-Length: 0", "Content-Length: 44");
    client.send_raw(asked.as_bytes()).unwrap();
    let answer = client.read_response().unwrap();
    assert_eq!(answer.status, 415);
    assert!(answer.closes(), "the unsent body cannot be skipped");
    // Nothing of that reached the book: the bid rests as placed, alone.
    let mut client = server.connect();
    let (buys, sells) = client.orders();
    assert!(sells.is_empty(), "{sells:?}");
    assert_eq!((buys.len(), &buys[0]["quantity"]), (1, &json!(10)));
    // A page that says the type is taken (CORS then asks for a preflight,
    // which is never granted: a browser would not send it).
    let typed = from_a_page(
        "POST",
        "/order/",
        r#"{"quantity": 1, "price": 90.0, "side": 1}"#,
        "Content-Type: application/json\r\n",
    );
    client.send_raw(typed.as_bytes()).unwrap();
    assert_eq!(
        client.read_response().unwrap().expect(200)["status"],
        "open"
    );
}

#[test]
fn a_body_over_the_limit_is_413_and_the_connection_closes() {
    let server = Server::start_with(&["--max-body-bytes", "1024"]);
    let mut client = server.connect();
    // Exactly at the limit: accepted (JSON padded with spaces).
    let body = r#"{"quantity": 10, "price": 100.0, "side": 1}"#;
    let at_limit = format!("{body}{}", " ".repeat(1024 - body.len()));
    assert_eq!(at_limit.len(), 1024);
    client.post("/order/", &at_limit).expect(200);
    // One byte over: 413, and the server closes the connection.
    let over = format!("{at_limit} ");
    let response = client.post("/order/", &over);
    response.expect_detail(413, "Request body too large");
    assert!(response.closes(), "413 says Connection: close");
    client.expect_closed();
    // Other connections are not disturbed.
    let mut other = server.connect();
    let (buys, _) = other.orders();
    assert_eq!(buys.len(), 1);
}

#[test]
fn get_order_by_id() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(-1, 100.5, 7);
    for path in [format!("/order/{id}"), format!("/order/{id}/")] {
        let order = client.get(&path).expect(200);
        assert_fetched_shape(&order);
        assert_eq!(
            order,
            json!({
                "order_id": id,
                "order_price": 100.5,
                "order_quantity": 7,
                "average_traded_price": 0,
                "traded_quantity": 0,
                "order_alive": true,
                "side": -1,
                "status": "open",
            })
        );
    }
    // Other spellings of the same UUID find the same order.
    let order = client.order(&id.to_uppercase());
    assert_eq!(order["order_id"], json!(id));
    let order = client.order(&id.replace('-', ""));
    assert_eq!(order["order_id"], json!(id));

    client
        .get(&format!("/order/{UNKNOWN_ID}"))
        .expect_detail(404, "Order not found");
    for bad in [
        "not-a-uuid",
        "123",
        &id[..35],
        &format!("{id}0"),
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    ] {
        client
            .get(&format!("/order/{bad}"))
            .expect_detail(422, "order_id: must be a UUID");
    }
}

#[test]
fn put_order_modifies_or_answers_each_error() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 100.0, 10);
    let path = format!("/order/{id}");

    let response = client.put(&path, r#"{"quantity": 15, "price": 105.0}"#);
    assert_eq!(
        response.expect(200),
        json!({"success": true, "message": "Order modified"})
    );
    let order = client.order(&id);
    assert_eq!(order["order_quantity"], json!(15));
    assert_eq!(num(&order, "order_price"), 105.0);
    // Either field may be left out.
    client.put(&path, r#"{"quantity": 12}"#).expect(200);
    client
        .put(&format!("{path}/"), r#"{"price": 104.5}"#)
        .expect(200);
    let order = client.order(&id);
    assert_eq!(order["order_quantity"], json!(12));
    assert_eq!(num(&order, "order_price"), 104.5);

    // Bad fields: 422 naming the field.
    client
        .put(&path, r#"{"price": 104.555}"#)
        .expect_detail(422, "price: must be a multiple of the tick size");
    client
        .put(&path, r#"{"price": -1}"#)
        .expect_detail(422, "price: must be positive");
    client
        .put(&path, r#"{"quantity": 0}"#)
        .expect_detail(422, "quantity: must be positive");
    client
        .put(&path, r#"{"quantity": 2.5}"#)
        .expect_detail(422, "quantity: must be an integer");
    // A side that is not one, and a modify of nothing: each is refused
    // and the order is as it was.
    client
        .put(&path, r#"{"quantity": 13, "side": "banana"}"#)
        .expect_detail(
            422,
            r#"side: must be 1 or "buy" (buy), -1 or "sell" (sell)"#,
        );
    for body in ["{}", r#"{"quantity": null, "price": null}"#] {
        client.put(&path, body).expect_detail(
            422,
            "quantity: give a new quantity or price, or both: a modify of neither changes nothing",
        );
    }
    // Another API's spelling would be ignored and the price alone changed.
    for (body, detail) in [
        (
            r#"{"qty": 13, "price": 91}"#,
            "qty: is not a field of this API; the field is quantity",
        ),
        (
            r#"{"quantity": 13, "postOnly": true}"#,
            "postOnly: is not a field of this API; the field is post_only",
        ),
    ] {
        client.put(&path, body).expect_detail(422, detail);
    }
    let order = client.order(&id);
    assert_eq!(order["order_quantity"], json!(12));
    assert_eq!(num(&order, "order_price"), 104.5);
    // Not a UUID.
    client
        .put("/order/nope", r#"{"quantity": 3}"#)
        .expect_detail(422, "order_id: must be a UUID");
    // Past the id: no such path.
    for extra in ["/x", "/x/", "//", "/cancel"] {
        client
            .put(&format!("{path}{extra}"), r#"{"quantity": 3}"#)
            .expect_detail(404, "Not Found");
        client
            .get(&format!("{path}{extra}"))
            .expect_detail(404, "Not Found");
    }
    // Unknown.
    client
        .put(&format!("/order/{UNKNOWN_ID}"), r#"{"quantity": 3}"#)
        .expect_detail(404, "Order not found or unable to modify");

    // A new total at or below the filled quantity: 422.
    client.place(-1, 104.5, 4); // fills 4 of the buy at 104.5
    let order = client.order(&id);
    assert_eq!(order["traded_quantity"], json!(4));
    for quantity in [4, 3] {
        let detail = client
            .put(&path, &format!(r#"{{"quantity": {quantity}}}"#))
            .detail(422);
        assert!(detail.starts_with("quantity:"), "{detail}");
    }
    client.put(&path, r#"{"quantity": 5}"#).expect(200);
    let order = client.order(&id);
    assert_eq!(order["order_quantity"], json!(5));
    assert_eq!(order["status"], json!("partially filled"));

    // Filled: no longer modifiable.
    client.place(-1, 104.5, 1);
    assert_eq!(client.order(&id)["status"], json!("filled"));
    client
        .put(&path, r#"{"quantity": 50}"#)
        .expect_detail(404, "Order not found or unable to modify");
    // Cancelled: likewise.
    let other = client.place_id(1, 90.0, 3);
    client.delete(&format!("/order/{other}")).expect(200);
    client
        .put(&format!("/order/{other}"), r#"{"quantity": 5}"#)
        .expect_detail(404, "Order not found or unable to modify");
}

#[test]
fn delete_order_cancels_or_answers_each_error() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(-1, 100.0, 10);
    let path = format!("/order/{id}");
    assert_eq!(
        client.delete(&path).expect(200),
        json!({"success": true, "message": "Order cancelled"})
    );
    let order = client.order(&id);
    assert_eq!(order["status"], json!("cancelled"));
    assert_eq!(order["order_alive"], json!(false));
    // Already cancelled, unknown: 404. Not a UUID: 422.
    client.delete(&path).expect_detail(404, "Order not found");
    client
        .delete(&format!("/order/{UNKNOWN_ID}"))
        .expect_detail(404, "Order not found");
    client
        .delete("/order/12345")
        .expect_detail(422, "order_id: must be a UUID");
    // Filled: 404 too.
    let sell = client.place_id(-1, 100.0, 2);
    client.place(1, 100.0, 2);
    assert_eq!(client.order(&sell)["status"], json!("filled"));
    client
        .delete(&format!("/order/{sell}/"))
        .expect_detail(404, "Order not found");
}

#[test]
fn get_orders_lists_resting_orders_best_price_first() {
    let server = Server::start();
    let mut client = server.connect();
    let (buys, sells) = client.orders();
    assert!(buys.is_empty() && sells.is_empty());
    let body = client.get("/orders/").expect(200);
    assert_eq!(body, json!({"buy_orders": [], "sell_orders": []}));

    let b1 = client.place_id(1, 99.0, 1);
    let b2 = client.place_id(1, 99.5, 2);
    let b3 = client.place_id(1, 99.0, 3);
    let b4 = client.place_id(1, 98.25, 4);
    let s1 = client.place_id(-1, 101.0, 5);
    let s2 = client.place_id(-1, 100.5, 6);
    let s3 = client.place_id(-1, 101.0, 7);
    // Not resting: cancelled and filled orders stay out.
    let gone = client.place_id(-1, 100.75, 8);
    client.delete(&format!("/order/{gone}")).expect(200);
    let (buys, sells) = client.orders();
    for order in buys.iter().chain(&sells) {
        assert_eq!(keys(order), key_set(&LISTED_KEYS), "{order}");
        assert_eq!(order["order_alive"], json!(true));
        assert_eq!(order["status"], json!("open"));
        assert_eq!(order["filled_quantity"], json!(0));
        assert_eq!(order["traded_quantity"], json!(0));
        assert_eq!(order["average_traded_price"], json!(0));
    }
    let ids = |list: &[Value]| -> Vec<String> { list.iter().map(|o| string(o, "id")).collect() };
    assert_eq!(
        ids(&buys),
        [b2.clone(), b1.clone(), b3, b4],
        "buys: best (highest) first, then FIFO"
    );
    assert_eq!(
        ids(&sells),
        [s2.clone(), s1.clone(), s3],
        "sells: best (lowest) first, then FIFO"
    );
    // ?limit=N: the first N of each side in that order.
    let top = client.get("/orders?limit=2").expect(200);
    let side = |key: &str| ids(top[key].as_array().unwrap());
    assert_eq!(side("buy_orders"), [b2.clone(), b1]);
    assert_eq!(side("sell_orders"), [s2, s1]);
    let all = client.get("/orders?limit=1000").expect(200);
    assert_eq!(all["buy_orders"].as_array().unwrap().len(), 4);
    for bad in ["limit=0", "limit=-1", "limit=x", "limit="] {
        client
            .get(&format!("/orders?{bad}"))
            .expect_detail(422, "limit: must be a whole number in digits, at least 1");
    }
    // ?side=: one side's list, the other empty; with ?limit= too.
    let only_sells = client.get("/orders?side=sell").expect(200);
    assert_eq!(only_sells["buy_orders"], json!([]));
    assert_eq!(only_sells["sell_orders"], json!(sells));
    let best_buy = client.get("/orders?side=1&limit=1").expect(200);
    assert_eq!(best_buy["buy_orders"], json!([buys[0]]));
    assert_eq!(best_buy["sell_orders"], json!([]));
    client.get("/orders?side=up").expect_detail(
        422,
        "side: must be buy or 1, sell or -1 (or left out for both sides)",
    );
    assert_eq!(
        buys[0],
        json!({
            "id": b2, "quantity": 2, "price": 99.5, "side": 1, "status": "open",
            "filled_quantity": 0, "average_traded_price": 0, "traded_quantity": 0,
            "order_alive": true,
        })
    );
    assert!(sells.iter().all(|o| o["side"] == json!(-1)));
    assert!(buys.iter().all(|o| o["side"] == json!(1)));
}

#[test]
fn get_book_aggregates_levels_best_first_to_the_depth_asked() {
    let server = Server::start();
    let mut client = server.connect();
    assert_eq!(
        client.get("/book").expect(200),
        json!({"seq": 0, "depth": 5, "bids": [], "asks": []})
    );
    for (side, price, quantity) in [
        (1, 99.5, 3),
        (1, 99.5, 4),
        (1, 98.0, 1),
        (1, 99.0, 2),
        (-1, 101.25, 5),
        (-1, 100.5, 7),
        (-1, 100.5, 1),
    ] {
        client.place(side, price, quantity);
    }
    let book = client.get("/book/").expect(200);
    assert_eq!(
        book,
        json!({"seq": 7, "depth": 5,
               "bids": [{"price": 99.5, "quantity": 7}, {"price": 99.0, "quantity": 2},
                        {"price": 98.0, "quantity": 1}],
               "asks": [{"price": 100.5, "quantity": 8}, {"price": 101.25, "quantity": 5}]})
    );
    // A sell of 5 into the best bid: two trades (3 from its first maker,
    // 2 from the second) and one book message.
    client.place(-1, 99.5, 5);
    assert_eq!(
        client.get("/book?depth=1").expect(200),
        json!({"seq": 10, "depth": 1,
               "bids": [{"price": 99.5, "quantity": 2}],
               "asks": [{"price": 100.5, "quantity": 8}]})
    );
    let all = client.get("/book?depth=0").expect(200);
    assert_eq!(all["bids"].as_array().unwrap().len(), 3);
    assert_eq!(all["asks"].as_array().unwrap().len(), 2);
    for bad in ["depth=1001", "depth=-1", "depth=", "depth=two"] {
        client.get(&format!("/book?{bad}")).expect_detail(
            422,
            "depth: must be a whole number in digits, from 0 to 1000 (0 = every level)",
        );
    }
}

#[test]
fn get_trades_oldest_first_with_limit() {
    let server = Server::start_with(&["--trades-max-limit", "5", "--trades-default-limit", "3"]);
    let mut client = server.connect();
    assert!(client.trades("").is_empty());
    assert_eq!(client.get("/trades/").expect(200), json!([]));

    // Four trades at four prices, each a new sell met by a buy.
    let mut expected = Vec::new();
    for (i, price) in [100.0, 100.5, 101.0, 101.25].into_iter().enumerate() {
        let sell = client.place_id(-1, price, 10 + i as u64);
        let buy = client.place_id(1, price, 10 + i as u64);
        expected.push((buy, sell, price, 10 + i as u64));
    }
    let trades = client.trades("?limit=5");
    assert_eq!(trades.len(), 4);
    let mut last_stamp = 0;
    let mut unique = std::collections::BTreeSet::new();
    for (trade, (buy, sell, price, quantity)) in trades.iter().zip(&expected) {
        assert_trade_shape(trade);
        assert_eq!(&string(trade, "buy_order_id"), buy);
        assert_eq!(&string(trade, "sell_order_id"), sell);
        assert_eq!(num(trade, "price"), *price);
        assert_eq!(uint(trade, "quantity"), *quantity);
        let stamp = parse_micros(&string(trade, "execution_timestamp")).unwrap();
        assert!(stamp >= last_stamp, "oldest first");
        last_stamp = stamp;
        assert!(unique.insert(string(trade, "unique_id")), "unique ids");
    }
    // ?limit=N: the newest N, still oldest first; the default is a setting.
    assert_eq!(client.trades("?limit=2"), trades[2..].to_vec());
    assert_eq!(client.trades("?limit=1"), trades[3..].to_vec());
    assert_eq!(client.trades(""), trades[1..].to_vec(), "default limit 3");
    assert_eq!(client.trades("?limit=5"), trades);

    for query in [
        "?limit=0",
        "?limit=abc",
        "?limit=",
        "?limit=-1",
        "?limit=6",
        "?limit=1.5",
    ] {
        let detail = client.get(&format!("/trades{query}")).detail(422);
        assert_eq!(
            detail, "limit: must be a whole number in digits, from 1 to 5",
            "{query}"
        );
    }
}

#[test]
fn get_trades_of_one_order_lists_its_fills() {
    let server = Server::start();
    let mut client = server.connect();
    // A big sell filled by three buys, with another pair trading between.
    let big = client.place_id(-1, 100.0, 10);
    let b1 = client.place_id(1, 100.0, 2);
    let other_sell = client.place_id(-1, 99.0, 1);
    let other_buy = client.place_id(1, 99.0, 1);
    let b2 = client.place_id(1, 100.0, 3);
    let b3 = client.place_id(1, 100.0, 5);
    assert_eq!(client.trades("?limit=100").len(), 4);
    let fills = |client: &mut Client, query: &str| -> Vec<(String, u64)> {
        client
            .trades(query)
            .iter()
            .map(|t| (string(t, "buy_order_id"), uint(t, "quantity")))
            .collect()
    };
    assert_eq!(
        fills(&mut client, &format!("?order_id={big}")),
        [(b1.clone(), 2), (b2.clone(), 3), (b3.clone(), 5)],
        "the sell's three fills, oldest first"
    );
    // As maker or taker, any spelling of the id; ?limit keeps the newest.
    assert_eq!(
        fills(&mut client, &format!("?order_id={}", b2.to_uppercase())),
        [(b2.clone(), 3)]
    );
    assert_eq!(
        fills(&mut client, &format!("?limit=2&order_id={big}")),
        [(b2, 3), (b3, 5)]
    );
    assert_eq!(
        fills(&mut client, &format!("?order_id={other_sell}")),
        [(other_buy, 1)]
    );
    assert!(client.trades(&format!("?order_id={UNKNOWN_ID}")).is_empty());
    client
        .get("/trades?order_id=123")
        .expect_detail(422, "order_id: must be a UUID");
}

#[test]
fn get_trades_after_or_before_a_trade_pages_forward_or_back_from_it() {
    let server = Server::start_with(&["--trade-history", "5"]);
    let mut client = server.connect();
    let unique_ids = |trades: &[Value]| -> Vec<String> {
        trades.iter().map(|t| string(t, "unique_id")).collect()
    };
    client.place_id(-1, 100.0, 100);
    let mut buys = Vec::new();
    for _ in 0..2 {
        buys.push(client.place_id(1, 100.0, 1));
    }
    let first = unique_ids(&client.trades(""));
    assert_eq!(first.len(), 2);
    // Trade 0's id pages from the first trade while it is kept.
    const BEFORE_THE_FIRST: &str = "00000000-0000-4000-8000-000000000000";
    let after = |client: &mut Client, query: &str| unique_ids(&client.trades(query));
    let from_the_start = format!("?after={BEFORE_THE_FIRST}&limit=1");
    assert_eq!(after(&mut client, &from_the_start), first[..1]);
    for _ in 0..5 {
        buys.push(client.place_id(1, 100.0, 1));
    }
    // The newest 5 are kept: trades 3 to 7.
    let kept = unique_ids(&client.trades(""));
    assert_eq!(kept.len(), 5);
    client
        .get(&format!("/trades?after={BEFORE_THE_FIRST}"))
        .expect_detail(
            404,
            "Trade not found: the first trade is not among the 5 trades kept, \
             so a page from the start would hide a gap (?before= pages back from the newest)",
        );
    assert_eq!(
        after(&mut client, &format!("?after={}", kept[0])),
        kept[1..]
    );
    assert_eq!(
        after(&mut client, &format!("?after={}&limit=2", kept[0])),
        kept[1..3],
        "the oldest 2 after it"
    );
    assert_eq!(
        after(&mut client, &format!("?limit=2&after={}", kept[2])),
        kept[3..5]
    );
    assert!(after(&mut client, &format!("?after={}", kept[4])).is_empty());
    // With ?order_id=, that order's trades after it.
    let query = format!("?after={}&order_id={}", kept[0], buys[5]);
    assert_eq!(after(&mut client, &query), kept[3..4]);
    let query = format!("?after={}&order_id={}", kept[4], buys[5]);
    assert!(after(&mut client, &query).is_empty());
    // A trade no longer kept, or never made: an empty list would hide a gap.
    for gone in [&first[1], "00000000-0000-4000-8000-0000000003e7"] {
        client.get(&format!("/trades?after={gone}")).expect_detail(
            404,
            "Trade not found: after names none of the 5 trades kept",
        );
    }
    client
        .get("/trades?after=7")
        .expect_detail(422, "after: must be a UUID");

    // ?before= pages back: the newest N before it, oldest first.
    let before = after;
    assert_eq!(
        before(&mut client, &format!("?before={}", kept[4])),
        kept[..4]
    );
    assert_eq!(
        before(&mut client, &format!("?before={}&limit=2", kept[4])),
        kept[2..4],
        "the newest 2 before it"
    );
    // Before the oldest kept, trades 1 and 2 were dropped: an empty page
    // would hide them.
    client
        .get(&format!("/trades?before={}", kept[0]))
        .expect_detail(
            404,
            "Trade not found: before names the oldest of the 5 trades kept, \
             and older ones are no longer kept (an empty page would hide the gap)",
        );
    // Buyer 5 made trade 6 (kept[3]) alone; seller 0 made them all.
    let query = format!("?before={}&order_id={}", kept[4], buys[5]);
    assert_eq!(before(&mut client, &query), kept[3..4]);
    let query = format!("?before={}&order_id={}", kept[3], buys[5]);
    assert!(before(&mut client, &query).is_empty());
    client
        .get(&format!("/trades?before={}", first[0]))
        .expect_detail(
            404,
            "Trade not found: before names none of the 5 trades kept",
        );
    client
        .get(&format!("/trades?before={}&after={}", kept[4], kept[0]))
        .expect_detail(
            422,
            "before: cannot be given with after: page one way at a time",
        );
}

#[test]
fn a_batch_places_its_orders_in_turn_and_answers_them_in_one_list() {
    let server = Server::start();
    let mut client = server.connect();
    let batch = r#"{"orders": [
        {"quantity": 5, "price": 100.0, "side": "sell"},
        {"quantity": 3, "price": 101.0, "side": -1},
        {"quantity": 6, "price": 101.0, "side": 1, "time_in_force": "IOC"},
        {"quantity": 1, "price": 101.0, "side": 1, "post_only": true},
        {"quantity": 2, "price": 99.0, "side": "buy"},
        {"type": "market", "quantity": 3, "side": "sell"}
    ]}"#;
    let answer = client.post("/orders/batch", batch).expect(200);
    let answers = answer.as_array().expect("a list");
    assert_eq!(answers.len(), 6);
    let ids: Vec<String> = [0, 1, 2, 4, 5]
        .iter()
        .map(|&i| string(&answers[i], "id"))
        .collect();
    let placed = |i: usize, quantity: u64, price: f64, side: i8, status: &str, filled: u64| {
        json!({"id": ids[i], "quantity": quantity, "price": price, "side": side,
            "status": status, "filled_quantity": filled})
    };
    assert_eq!(answers[0], placed(0, 5, 100.0, -1, "open", 0));
    assert_eq!(answers[1], placed(1, 3, 101.0, -1, "open", 0));
    // The IOC took the first sell whole and 1 of the second, in turn.
    assert_eq!(answers[2], placed(2, 6, 101.0, 1, "filled", 6));
    // The post-only buy would take what is left at 101: refused alone.
    assert_eq!(
        answers[3],
        json!({"status_code": 422,
            "detail": "post_only: the order would trade on arrival; it was not placed"})
    );
    assert_eq!(answers[4], placed(3, 2, 99.0, 1, "open", 0));
    // The market sell took that buy and cancelled the 1 nothing met.
    let mut market = placed(4, 3, 0.0, -1, "cancelled", 2);
    market["type"] = json!("market");
    assert_eq!(answers[5], market);
    let (buys, sells) = client.orders();
    let resting = |orders: &[Value]| -> Vec<(String, u64)> {
        orders
            .iter()
            .map(|o| (string(o, "id"), uint(o, "filled_quantity")))
            .collect()
    };
    assert!(buys.is_empty(), "{buys:?}");
    assert_eq!(resting(&sells), [(ids[1].clone(), 1)]);
    let trades = client.trades("");
    let fills: Vec<(String, String, u64)> = trades
        .iter()
        .map(|t| {
            (
                string(t, "buy_order_id"),
                string(t, "sell_order_id"),
                uint(t, "quantity"),
            )
        })
        .collect();
    assert_eq!(
        fills,
        [
            (ids[2].clone(), ids[0].clone(), 5),
            (ids[2].clone(), ids[1].clone(), 1),
            (ids[3].clone(), ids[4].clone(), 2)
        ]
    );
    for id in &ids {
        assert_eq!(client.order(id)["order_id"], json!(id));
    }
}

#[test]
fn a_cancel_batch_cancels_each_id_in_turn_and_answers_them_in_one_list() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(1, 99.0, 5);
    let b = client.place_id(-1, 101.0, 5);
    let filled = client.place_id(-1, 99.0, 5); // trades a away whole
    let c = client.place_id(1, 98.0, 2);
    let body =
        format!(r#"{{"order_ids": ["{b}", "{a}", "{UNKNOWN_ID}", "{c}", "{b}", "{filled}"]}}"#);
    let answer = client.post("/orders/cancel", &body).expect(200);
    let cancelled = json!({"success": true, "message": "Order cancelled"});
    let gone = json!({"status_code": 404, "detail": "Order not found"});
    assert_eq!(
        answer,
        json!([cancelled, gone, gone, cancelled, gone, gone]),
        "b and c were resting; a and the sell traded away; b once only"
    );
    assert_eq!(client.orders(), (vec![], vec![]));
    for id in [&b, &c] {
        assert_eq!(client.order(id)["status"], json!("cancelled"));
    }

    for (body, detail) in [
        (
            r#"{"order_ids": []}"#.to_string(),
            "order_ids: must hold 1 to 100 ids, not 0",
        ),
        (
            format!(r#"{{"order_ids": ["{a}", "12"]}}"#),
            "order_ids[1]: must be a UUID",
        ),
        (
            format!(r#"{{"order_ids": ["{a}", 7]}}"#),
            "order_ids[1]: must be a UUID",
        ),
        ("{}".to_string(), "order_ids: field required"),
        (
            format!(r#"{{"clientOrderIds": ["{a}"]}}"#),
            "clientOrderIds: not a field of this body (it takes order_ids or client_order_ids)",
        ),
        (
            r#"{"order_ids": "x"}"#.to_string(),
            r#"Request body must be a JSON object {"order_ids": [id, ...]}"#,
        ),
    ] {
        client
            .post("/orders/cancel", &body)
            .expect_detail(422, detail);
    }
    let ids: Vec<String> = (0..101).map(|_| format!("\"{UNKNOWN_ID}\"")).collect();
    client
        .post(
            "/orders/cancel",
            &format!(r#"{{"order_ids": [{}]}}"#, ids.join(",")),
        )
        .expect_detail(422, "order_ids: must hold 1 to 100 ids, not 101");
    let response = client.delete("/orders/cancel");
    assert_eq!(response.header("Allow"), Some("POST"));
    response.expect_detail(405, "Method Not Allowed");
}

#[test]
fn a_modify_batch_modifies_each_order_in_turn_as_put_would() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(1, 99.0, 5);
    let b = client.place_id(1, 98.0, 3);
    let sell = client.place_id(-1, 101.0, 4);
    let body = format!(
        r#"{{"orders": [{{"id": "{a}", "quantity": 4}}, {{"id": "{b}", "price": 101.0}}, {{"id": "{UNKNOWN_ID}", "quantity": 1}}, {{"id": "{b}", "quantity": 9}}]}}"#
    );
    let answer = client.post("/orders/modify", &body).expect(200);
    let modified = json!({"success": true, "message": "Order modified"});
    let gone = json!({"status_code": 404, "detail": "Order not found or unable to modify"});
    assert_eq!(
        answer,
        json!([modified, modified, gone, gone]),
        "b crossed and filled, so its second change finds it gone"
    );
    let order = |client: &mut Client, id: &str| {
        let order = client.order(id);
        (
            uint(&order, "order_quantity"),
            uint(&order, "traded_quantity"),
            order["order_alive"].as_bool().unwrap(),
        )
    };
    assert_eq!(order(&mut client, &a), (4, 0, true));
    assert_eq!(order(&mut client, &b), (3, 3, false));
    assert_eq!(order(&mut client, &sell), (4, 3, true));
    assert_eq!(client.trades("").len(), 1);

    let refusals = [
        (
            r#"{"orders": [{"quantity": 1}]}"#.to_string(),
            "orders[0].id: field required",
        ),
        (
            format!(r#"{{"orders": [{{"id": "{a}", "quantity": 1}}, {{"id": "7"}}]}}"#),
            "orders[1].id: must be a UUID",
        ),
        (
            format!(r#"{{"orders": [{{"id": "{a}", "quantity": 0}}]}}"#),
            "orders[0].quantity: must be positive",
        ),
        (
            format!(r#"{{"orders": [{{"id": "{a}", "time_in_force": "IOC"}}]}}"#),
            "orders[0].time_in_force: is set when an order is placed; a modify cannot change it",
        ),
        (
            r#"{"orders": [3]}"#.to_string(),
            "orders[0]: must be a JSON object",
        ),
        (
            r#"{"orders": []}"#.to_string(),
            "orders: must hold 1 to 100 orders, not 0",
        ),
    ];
    for (body, detail) in refusals {
        client
            .post("/orders/modify", &body)
            .expect_detail(422, detail);
    }
    assert_eq!(order(&mut client, &a), (4, 0, true), "unchanged");
    let response = client.get("/orders/modify");
    assert_eq!(response.header("Allow"), Some("POST"));
}

#[test]
fn a_batch_with_one_bad_order_is_refused_whole() {
    let server = Server::start_with(&["--command-ring", "4"]);
    let mut client = server.connect();
    let order = r#"{"quantity": 1, "price": 10.0, "side": 1}"#;
    let many = |n: usize| format!("{{\"orders\": [{}]}}", vec![order; n].join(","));
    for (body, status, detail) in [
        (
            format!(r#"{{"orders": [{order}, {{"quantity": 1, "price": 10.001, "side": 1}}]}}"#),
            422,
            "orders[1].price: must be a multiple of the tick size",
        ),
        (
            format!(r#"{{"orders": [{order}, {{"price": 10.0, "side": 1}}]}}"#),
            422,
            "orders[1].quantity: field required",
        ),
        (
            format!(r#"{{"orders": [{order}, 7]}}"#),
            422,
            "orders[1]: must be a JSON object",
        ),
        (
            format!(
                r#"{{"orders": [{order}, {{"type": "market", "quantity": 1, "side": 1, "time_in_force": "GTC"}}]}}"#
            ),
            422,
            r#"orders[1].time_in_force: a market order never rests: it is "IOC" (the default) or "FOK""#,
        ),
        (many(0), 422, "orders: must hold 1 to 100 orders, not 0"),
        (many(101), 422, "orders: must hold 1 to 100 orders, not 101"),
        (
            many(5),
            422,
            "orders: at most 4 fit the command ring (--command-ring)",
        ),
        ("{}".into(), 422, "orders: field required"),
        (
            format!(r#"{{"orders": [{order}], "orders": [{order}]}}"#),
            422,
            "orders: given more than once",
        ),
        (
            format!("[{order}]"),
            422,
            r#"Request body must be a JSON object {"orders": [order, ...]}"#,
        ),
        (
            r#"{"orders": 3}"#.into(),
            422,
            r#"Request body must be a JSON object {"orders": [order, ...]}"#,
        ),
    ] {
        let response = client.post("/orders/batch", &body);
        assert_eq!(
            (response.status, response.detail(status)),
            (status, detail.to_string()),
            "{body}"
        );
    }
    assert!(client
        .post("/orders/batch", r#"{"orders": [1"#)
        .detail(400)
        .starts_with("Malformed JSON body"));
    assert_eq!(client.orders(), (vec![], vec![]), "nothing was placed");
    let response = client.get("/orders/batch");
    response.expect_detail(405, "Method Not Allowed");
    assert_eq!(response.header("Allow"), Some("POST"));
    // What fits the ring is placed.
    let answer = client.post("/orders/batch", &many(4)).expect(200);
    assert_eq!(answer.as_array().unwrap().len(), 4);
    assert_eq!(client.orders().0.len(), 4);
}

#[test]
fn under_rate_limit_orders_past_the_burst_get_429_and_reads_do_not_count() {
    let server = Server::start_with(&["--rate-limit", "1", "--rate-limit-burst", "5"]);
    let mut client = server.connect();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let price = 90.0 + i as f64;
            let order = format!(
                r#"{{"quantity": 1, "price": {price:?}, "side": 1, "client_order_id": "q-{i}"}}"#
            );
            string(&client.post("/order/", &order).expect(200), "id")
        })
        .collect();
    let refused = client.post("/order/", r#"{"quantity": 1, "price": 80.0, "side": 1}"#);
    refused.expect_detail(
        429,
        "Too many orders: at most 1 a second (5 at once) from one address; retry in 1 s",
    );
    assert_eq!(refused.header("Retry-After"), Some("1"));
    client.delete(&format!("/order/{}", ids[0])).expect_detail(
        429,
        "Too many orders: at most 1 a second (5 at once) from one address; retry in 1 s",
    );
    // Reads never count, and refused orders did nothing.
    for _ in 0..20 {
        client.get("/orders").expect(200);
    }
    assert_eq!(client.orders().0.len(), 5);
    // More at once than the burst can ever be is not worth a retry.
    let orders: Vec<&str> = vec![r#"{"quantity": 1, "price": 70.0, "side": 1}"#; 6];
    client
        .post(
            "/orders/batch",
            &format!(r#"{{"orders": [{}]}}"#, orders.join(",")),
        )
        .expect_detail(
            422,
            "orders: at most 5 at once from one address (--rate-limit-burst)",
        );
    // Named by the body's own field.
    let six = format!(
        r#"{{"order_ids": ["{}"]}}"#,
        [ids[0].as_str(); 6].join("\",\"")
    );
    client.post("/orders/cancel", &six).expect_detail(
        422,
        "order_ids: at most 5 at once from one address (--rate-limit-burst)",
    );
    let six_names = r#"{"client_order_ids": ["a", "b", "c", "d", "e", "f"]}"#;
    client.post("/orders/cancel", six_names).expect_detail(
        422,
        "client_order_ids: at most 5 at once from one address (--rate-limit-burst)",
    );
    let metrics = client.metrics_text();
    assert_eq!(metric(&metrics, "orderbook_rate_limited_orders_total"), 2.0);
    // A second later there is room for one again: enough to cancel all
    // five by their names' prefix, which counts as one, as DELETE /orders.
    std::thread::sleep(Duration::from_millis(1_100));
    let pulled = client
        .delete("/orders?client_order_id_prefix=q-")
        .expect(200);
    assert_eq!(pulled["cancelled"], json!(5));
    client
        .delete("/orders?client_order_id_prefix=q-")
        .expect_detail(
            429,
            "Too many orders: at most 1 a second (5 at once) from one address; retry in 1 s",
        );
}

#[test]
fn under_cors_origin_pages_from_it_may_read_but_no_preflight_is_granted() {
    let origin = "https://dash.example.com";
    let server = Server::start_with(&["--cors-origin", origin]);
    let mut client = server.connect();
    let id = client.place_id(1, 99.0, 1);
    for path in [
        "/book",
        "/trades",
        "/candles",
        "/orders",
        &format!("/order/{id}"),
    ] {
        let response = client.get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("Access-Control-Allow-Origin"),
            Some(origin),
            "{path}"
        );
    }
    // A browser asks before sending JSON across origins; it is not told
    // yes, so it sends nothing.
    let preflight = client.request("OPTIONS", "/order/", None);
    assert_eq!(preflight.status, 405);
    assert_eq!(preflight.header("Access-Control-Allow-Methods"), None);
    assert_eq!(preflight.header("Access-Control-Allow-Headers"), None);
    // Without the setting, no such header.
    let plain = Server::start();
    let response = plain.connect().get("/book");
    assert_eq!(response.header("Access-Control-Allow-Origin"), None);
}

/// Sends one request with an `Authorization` header (or none) and reads
/// its answer.
fn authorized(
    client: &mut Client,
    method: &str,
    path: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> Response {
    let mut bytes = String::from_utf8(request_bytes(method, path, body)).unwrap();
    if let Some(value) = authorization {
        let end_of_line = bytes.find("\r\n").unwrap() + 2;
        bytes.insert_str(end_of_line, &format!("Authorization: {value}\r\n"));
    }
    client.send_raw(bytes.as_bytes()).unwrap();
    client.read_response().unwrap()
}

/// Two `Authorization` headers are a malformed request (400, closed),
/// whichever holds the token: the last one won, so a proxy in front that
/// checked the first saw another credential than the service took.
#[test]
fn under_api_token_two_authorization_headers_are_refused_and_nothing_is_placed() {
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    let server = Server::start_with(&["--api-token", TOKEN]);
    let place = r#"{"quantity": 5, "price": 100.0, "side": 1}"#;
    for (first, second) in [("Bearer wrong", TOKEN), (TOKEN, "Bearer wrong")] {
        let mut client = server.connect();
        let (first, second) = (
            first.replace(TOKEN, &format!("Bearer {TOKEN}")),
            second.replace(TOKEN, &format!("Bearer {TOKEN}")),
        );
        let mut bytes = String::from_utf8(request_bytes("POST", "/order/", Some(place))).unwrap();
        let end_of_line = bytes.find("\r\n").unwrap() + 2;
        bytes.insert_str(
            end_of_line,
            &format!("Authorization: {first}\r\nAuthorization: {second}\r\n"),
        );
        client.send_raw(bytes.as_bytes()).unwrap();
        let response = client.read_response().unwrap();
        response.expect_detail(
            400,
            "Malformed HTTP request: more than one Authorization header",
        );
        assert!(response.closes());
    }
    let (buys, sells) = server.connect().orders();
    assert_eq!((buys.len(), sells.len()), (0, 0));
}

#[test]
fn under_api_token_placing_modifying_and_cancelling_need_the_bearer_token() {
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    let server = Server::start_with(&["--api-token", TOKEN]);
    let mut client = server.connect();
    let bearer = format!("Bearer {TOKEN}");
    let place = r#"{"quantity": 5, "price": 100.0, "side": 1}"#;
    let missing =
        "Authorization: send `Authorization: Bearer <token>` to place, modify or cancel orders";
    let challenge = "Bearer realm=\"orderbook\"";
    let invalid = "Bearer realm=\"orderbook\", error=\"invalid_token\"";
    let refused = |response: Response, detail: &str, header: &str| {
        response.expect_detail(401, detail);
        assert_eq!(response.header("WWW-Authenticate"), Some(header));
        assert!(!response.closes(), "the connection stays");
    };
    refused(
        authorized(&mut client, "POST", "/order/", Some(place), None),
        missing,
        challenge,
    );
    let wrong = format!("Bearer {TOKEN}0");
    refused(
        authorized(&mut client, "POST", "/order/", Some(place), Some(&wrong)),
        "Authorization: the token is not valid",
        invalid,
    );
    refused(
        authorized(&mut client, "POST", "/order/", Some(place), Some(TOKEN)),
        "Authorization: must be `Bearer <token>`",
        challenge,
    );
    // Refused before the body is read: not even a bad body gets further.
    refused(
        authorized(&mut client, "POST", "/order/", Some("{"), None),
        missing,
        challenge,
    );
    let batch = format!(r#"{{"orders": [{place}]}}"#);
    refused(
        authorized(&mut client, "POST", "/orders/batch", Some(&batch), None),
        missing,
        challenge,
    );
    assert_eq!(client.orders(), (vec![], vec![]), "nothing was placed");
    let batch = authorized(
        &mut client,
        "POST",
        "/orders/batch",
        Some(&batch),
        Some(&bearer),
    );
    let placed = string(&batch.expect(200)[0], "id");
    let cancels = format!(r#"{{"order_ids": ["{placed}"]}}"#);
    refused(
        authorized(&mut client, "POST", "/orders/cancel", Some(&cancels), None),
        missing,
        challenge,
    );
    let modifies = format!(r#"{{"orders": [{{"id": "{placed}", "quantity": 4}}]}}"#);
    refused(
        authorized(
            &mut client,
            "POST",
            "/orders/modify",
            Some(&modifies),
            Some(&wrong),
        ),
        "Authorization: the token is not valid",
        invalid,
    );
    let modified = authorized(
        &mut client,
        "POST",
        "/orders/modify",
        Some(&modifies),
        Some(&bearer),
    );
    assert_eq!(modified.expect(200)[0]["success"], json!(true));
    let cancelled = authorized(
        &mut client,
        "POST",
        "/orders/cancel",
        Some(&cancels),
        Some(&bearer),
    );
    assert_eq!(cancelled.expect(200)[0]["success"], json!(true));
    let switch = Some(r#"{"timeout_ms": 60000}"#);
    refused(
        authorized(
            &mut client,
            "POST",
            "/orders/cancel_all_after",
            switch,
            None,
        ),
        missing,
        challenge,
    );
    let armed = authorized(
        &mut client,
        "POST",
        "/orders/cancel_all_after",
        switch,
        Some(&bearer),
    );
    assert_eq!(armed.expect(200)["timeout_ms"], json!(60000));

    let order = authorized(&mut client, "POST", "/order/", Some(place), Some(&bearer)).expect(200);
    let id = string(&order, "id");
    let path = format!("/order/{id}");
    let modify = Some(r#"{"quantity": 3}"#);
    refused(
        authorized(&mut client, "PUT", &path, modify, None),
        missing,
        challenge,
    );
    refused(
        authorized(&mut client, "DELETE", &path, None, Some(&wrong)),
        "Authorization: the token is not valid",
        invalid,
    );
    assert_eq!(uint(&client.order(&id), "order_quantity"), 5, "unchanged");
    assert_eq!(client.order(&id)["order_alive"], json!(true));

    // Reads need no token.
    let reads = [
        "/orders",
        "/trades",
        "/book",
        "/health",
        "/orders/cancel_all_after",
    ];
    for read in reads.into_iter().chain([path.as_str()]) {
        assert_eq!(client.get(read).status, 200, "{read}");
    }
    assert!(client.metrics_text().contains("orderbook_"));
    let lower = format!("bearer {TOKEN}");
    authorized(&mut client, "PUT", &path, modify, Some(&lower)).expect(200);
    assert_eq!(uint(&client.order(&id), "order_quantity"), 3);
    authorized(&mut client, "DELETE", &path, None, Some(&bearer)).expect(200);
    assert_eq!(client.order(&id)["order_alive"], json!(false));

    // Cancelling every order needs it too.
    authorized(&mut client, "POST", "/order/", Some(place), Some(&bearer)).expect(200);
    refused(
        authorized(&mut client, "DELETE", "/orders", None, None),
        missing,
        challenge,
    );
    assert_eq!(client.orders().0.len(), 1, "nothing was cancelled");
    let by_prefix = "/orders?client_order_id_prefix=a";
    refused(
        authorized(&mut client, "DELETE", by_prefix, None, None),
        missing,
        challenge,
    );
    assert_eq!(client.orders().0.len(), 1, "nothing was cancelled");
    let all = authorized(&mut client, "DELETE", "/orders", None, Some(&bearer)).expect(200);
    assert_eq!(all["cancelled"], json!(1));
}

#[test]
fn delete_orders_cancels_every_resting_order_of_a_side_or_of_both() {
    let server = Server::start();
    let mut client = server.connect();
    let buys: Vec<String> = [99.0, 99.5, 99.5]
        .iter()
        .map(|&price| client.place_id(1, price, 2))
        .collect();
    let sells: Vec<String> = [101.0, 102.0]
        .iter()
        .map(|&price| client.place_id(-1, price, 3))
        .collect();
    let done = client.delete("/orders?side=sell").expect(200);
    assert_eq!(
        done,
        json!({"success": true, "message": "Orders cancelled", "cancelled": 2})
    );
    let (resting_buys, resting_sells) = client.orders();
    assert!(resting_sells.is_empty());
    let resting: Vec<String> = resting_buys.iter().map(|o| string(o, "id")).collect();
    assert_eq!(
        resting,
        [buys[1].clone(), buys[2].clone(), buys[0].clone()],
        "buys untouched"
    );
    for id in &sells {
        let order = client.order(id);
        assert_eq!(order["order_alive"], json!(false));
        assert_eq!(string(&order, "status"), "cancelled");
    }
    // `buy` or `1`, `sell` or `-1`, any case; nothing left of a side is 0.
    assert_eq!(
        client.delete("/orders?side=SELL").expect(200)["cancelled"],
        json!(0)
    );
    assert_eq!(
        client.delete("/orders?side=1").expect(200)["cancelled"],
        json!(3)
    );
    client.place_id(1, 98.0, 1);
    client.place_id(-1, 103.0, 1);
    assert_eq!(client.delete("/orders").expect(200)["cancelled"], json!(2));
    assert_eq!(client.orders(), (vec![], vec![]));
    let book = client.get("/book").expect(200);
    assert_eq!(
        (book["bids"].clone(), book["asks"].clone()),
        (json!([]), json!([]))
    );
    client.delete("/orders?side=up").expect_detail(
        422,
        "side: must be buy or 1, sell or -1 (or left out for both sides)",
    );
    // A cancel-all is one command: its latency is labelled as one.
    let metrics = client.metrics_text();
    assert!(
        metrics.contains("orderbook_command_latency_by_command_histogram_seconds_count{command=\"cancel_all\"} 4"),
        "{metrics}"
    );
}

#[test]
fn without_api_token_an_authorization_header_is_ignored() {
    let server = Server::start();
    let mut client = server.connect();
    let place = r#"{"quantity": 5, "price": 100.0, "side": 1}"#;
    authorized(
        &mut client,
        "POST",
        "/order/",
        Some(place),
        Some("Bearer anything"),
    )
    .expect(200);
}

#[test]
fn get_ticker_shows_the_best_bid_and_ask_the_last_trade_and_the_last_24_hours() {
    let server = Server::start();
    let mut client = server.connect();
    assert_eq!(
        client.get("/ticker").expect(200),
        json!({"seq": 0, "best_bid": null, "best_ask": null, "last_trade": null, "last_24h": null})
    );
    client.place(-1, 100.0, 3);
    client.place(-1, 101.5, 4);
    client.place(1, 99.0, 2);
    let before = now_micros();
    client
        .post("/order/", r#"{"type": "market", "quantity": 5, "side": 1}"#)
        .expect(200);
    client.place(1, 98.5, 6);
    let ticker = client.get("/ticker").expect(200);
    let trades = client.trades("");
    assert_eq!(trades.len(), 2);
    assert_eq!(ticker["last_trade"], trades[1]);
    assert_eq!(
        (&ticker["best_bid"], &ticker["best_ask"]),
        (
            &json!({"price": 99.0, "quantity": 2}),
            &json!({"price": 101.5, "quantity": 2})
        )
    );
    // The feed's seq: 2 trades and 5 book messages (one per command).
    let book = client.get("/book").expect(200);
    assert_eq!((&ticker["seq"], &book["seq"]), (&json!(7), &json!(7)));
    let day = &ticker["last_24h"];
    assert_eq!(
        (
            &day["open"],
            &day["high"],
            &day["low"],
            &day["close"],
            &day["volume"],
            &day["trades"]
        ),
        (
            &json!(100.0),
            &json!(101.5),
            &json!(100.0),
            &json!(101.5),
            &json!(5),
            &json!(2)
        )
    );
    let from = parse_micros(day["from"].as_str().unwrap()).unwrap();
    let day_micros = 86_400_000_000;
    assert!(
        before - day_micros <= from && from <= now_micros() - day_micros,
        "the window starts 24 hours before the request: {day}"
    );
    client
        .post("/ticker", "{}")
        .expect_detail(405, "Method Not Allowed");
}

#[test]
fn get_ticker_over_a_history_that_dropped_trades_says_where_it_starts() {
    let server = Server::start_with(&["--trade-history", "2"]);
    let mut client = server.connect();
    for price in [100.0, 101.0, 102.0] {
        client.place(-1, price, 1);
        client.place(1, price, 1);
    }
    let kept = client.trades("");
    assert_eq!(kept.len(), 2);
    let day = client.get("/ticker").expect(200)["last_24h"].clone();
    // The first trade is gone: the window is only sure from the oldest kept.
    assert_eq!(day["from"], kept[0]["execution_timestamp"]);
    assert_eq!(
        (&day["open"], &day["volume"], &day["trades"]),
        (&json!(101.0), &json!(2), &json!(2))
    );
}

#[test]
fn get_candles_sums_the_kept_trades_by_interval() {
    let server = Server::start();
    let mut client = server.connect();
    for (price, quantity) in [(100.0, 1), (102.0, 2), (99.0, 3), (101.0, 4)] {
        client.place_id(-1, price, quantity);
        client.place_id(1, price, quantity);
    }
    let trades = client.trades("");
    assert_eq!(trades.len(), 4);
    for interval in [1, 60, 86_400] {
        let served = client
            .get(&format!("/candles?interval={interval}"))
            .expect(200);
        let served: Vec<Value> = served
            .as_array()
            .unwrap()
            .iter()
            .map(served_candle)
            .collect();
        assert_eq!(
            served,
            naive_candles(&trades, interval),
            "interval {interval}"
        );
    }
    // A day: one candle, but on the stroke of midnight.
    let day = client.get("/candles?interval=86400").expect(200);
    if day.as_array().unwrap().len() == 1 {
        let candle = &day[0];
        assert_eq!(
            (
                num(candle, "open"),
                num(candle, "high"),
                num(candle, "low"),
                num(candle, "close")
            ),
            (100.0, 102.0, 99.0, 101.0)
        );
        assert_eq!((uint(candle, "volume"), uint(candle, "trades")), (10, 4));
    }
    // ?limit keeps the newest; a minute is the default.
    let newest = client.get("/candles?limit=1").expect(200);
    let minutes = naive_candles(&trades, 60);
    assert_eq!(served_candle(&newest[0]), minutes[minutes.len() - 1]);
    for (query, detail) in [
        (
            "interval=0",
            "interval: must be a whole number in digits, from 1 to 86400",
        ),
        (
            "interval=86401",
            "interval: must be a whole number in digits, from 1 to 86400",
        ),
        (
            "interval=1.5",
            "interval: must be a whole number in digits, from 1 to 86400",
        ),
        (
            "limit=1001",
            "limit: must be a whole number in digits, from 1 to 1000",
        ),
    ] {
        client
            .get(&format!("/candles?{query}"))
            .expect_detail(422, detail);
    }
}

#[test]
fn get_candles_end_pages_back_to_the_candles_before_a_time() {
    let server = Server::start();
    let mut client = server.connect();
    // Trades until they span two seconds: two one-second candles.
    for price in [100.0, 101.0] {
        client.place_id(-1, price, 1);
        client.place_id(1, price, 1);
    }
    while client
        .get("/candles?interval=1")
        .expect(200)
        .as_array()
        .unwrap()
        .len()
        < 2
    {
        std::thread::sleep(Duration::from_millis(100));
        client.place_id(-1, 102.0, 1);
        client.place_id(1, 102.0, 1);
    }
    let all = client.get("/candles?interval=1").expect(200);
    let all = all.as_array().unwrap();
    let newest_start = all[all.len() - 1]["start"].as_str().unwrap().to_string();
    // Before the newest candle's start: every candle but the newest.
    for end in [
        newest_start.clone(),
        newest_start.replace(':', "%3A"),
        (parse_micros(&newest_start).unwrap() / 1_000_000).to_string(),
    ] {
        let page = client
            .get(&format!("/candles?interval=1&end={end}"))
            .expect(200);
        assert_eq!(
            page.as_array().unwrap()[..],
            all[..all.len() - 1],
            "end={end}"
        );
    }
    let oldest_start = all[0]["start"].as_str().unwrap();
    // The same time with an offset (its + encoded), or in lower case.
    let offset = oldest_start.replace('Z', "%2B00:00");
    for end in [oldest_start, &offset, &oldest_start.to_lowercase()] {
        let none = client
            .get(&format!("/candles?interval=1&end={end}"))
            .expect(200);
        assert_eq!(none, json!([]), "end={end}");
    }
    for bad in [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "-5",
        "",
        "2026-12-01T00:00:00+1",
        // No offset: the client's wall clock, which the server cannot know.
        "2026-12-01T00:00:00",
        "2026-12-01T00:00:00.5",
    ] {
        client
            .get(&format!("/candles?end={bad}"))
            .expect_detail(
                422,
                "end: must be a time: seconds since the epoch, or RFC 3339 such as 2026-12-01T00:00:00Z or 2026-12-01T01:00:00+01:00",
            );
    }
}

#[test]
fn get_candles_leaves_out_an_interval_whose_older_trades_are_gone() {
    let server = Server::start_with(&["--trade-history", "3"]);
    let mut client = server.connect();
    for price in [100.0, 101.0, 102.0, 103.0] {
        client.place_id(-1, price, 1);
        client.place_id(1, price, 1);
    }
    // Four trades in a day, the first no longer kept: the day's candle
    // would be wrong, so there is none.
    let day = client.get("/candles?interval=86400").expect(200);
    let kept = client.trades("");
    let days = naive_candles(&kept, 86_400);
    let expected = &days[1..];
    let served: Vec<Value> = day.as_array().unwrap().iter().map(served_candle).collect();
    assert_eq!(served, expected);
}

#[test]
fn health_unknown_paths_and_wrong_methods() {
    let server = Server::start();
    let mut client = server.connect();
    let health = client.get("/health").expect(200);
    assert_eq!(health["status"], json!("ok"));
    client.get("/health/").expect(200);
    // Escapes of unreserved characters are the same path (RFC 3986
    // §6.2.2.2); an escaped slash is not a slash.
    client.get("/%68ealth").expect(200);
    let id = client.place_id(1, 100.0, 2);
    let escaped = format!("/order/%{:X}{}", id.as_bytes()[0], &id[1..]);
    assert_eq!(client.get(&escaped).expect(200)["order_id"], json!(id));
    client
        .get(&format!("/order%2F{id}"))
        .expect_detail(404, "Not Found");

    // Every answer says when it was made (support's reader checks `Date`
    // on each); check one by hand too.
    let response = client.request("GET", "/nope", None);
    support::check_date(response.header("date").expect("a Date")).unwrap();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/orders/extra"),
        ("POST", "/orderz"),
        ("GET", "/order-book"),
        ("DELETE", "/nothing/here"),
    ] {
        client
            .request(method, path, None)
            .expect_detail(404, "Not Found");
    }
    for (method, path, body) in [
        ("PATCH", "/orders", None),
        ("PUT", "/orders", Some("{}")),
        ("POST", "/orders", Some("{}")),
        ("PATCH", "/order/", Some("{}")),
        ("POST", "/health", Some("{}")),
        ("PUT", "/trades", Some("{}")),
        ("POST", "/book", Some("{}")),
        ("PATCH", &format!("/order/{UNKNOWN_ID}"), Some("{}")),
        ("POST", &format!("/order/{UNKNOWN_ID}"), Some("{}")),
        ("POST", "/ws", Some("{}")),
    ] {
        let response = client.request(method, path, body);
        response.expect_detail(405, "Method Not Allowed");
        // RFC 9110 requires a 405 to say what the path takes.
        let allow = match path.trim_end_matches('/') {
            "/order" => "GET, HEAD, POST, PUT, DELETE",
            "/orders" => "GET, HEAD, DELETE",
            "/book" | "/health" | "/trades" | "/metrics" | "/ws" => "GET, HEAD",
            _ => "GET, HEAD, PUT, DELETE",
        };
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }
    // Still the same healthy connection.
    client.get("/health").expect(200);
}

#[test]
fn an_order_trades_the_configured_symbol_and_one_naming_another_is_refused() {
    let server = Server::start_with(&["--symbol", "BTC-USD"]);
    let mut client = server.connect();
    assert_eq!(
        client.get("/health").expect(200),
        json!({"status": "ok", "symbol": "BTC-USD"})
    );

    // Named or left out (or null), the order trades the one book.
    for body in [
        r#"{"quantity": 5, "price": 100.0, "side": 1, "symbol": "BTC-USD"}"#,
        r#"{"quantity": 5, "price": 100.0, "side": 1}"#,
        r#"{"quantity": 5, "price": 100.0, "side": 1, "symbol": null}"#,
    ] {
        assert_eq!(
            client.post("/order/", body).expect(200)["status"],
            json!("open")
        );
    }
    let resting = client.get("/orders").expect(200);
    assert_eq!(resting["buy_orders"].as_array().unwrap().len(), 3);

    // Another symbol (case counts), or not a string: 422, nothing placed.
    for (body, detail) in [
        (
            r#"{"quantity": 5, "price": 99.0, "side": -1, "symbol": "ETH-USD"}"#,
            r#"symbol: unknown symbol "ETH-USD": this service trades "BTC-USD""#,
        ),
        (
            r#"{"quantity": 5, "price": 99.0, "side": -1, "symbol": "btc-usd"}"#,
            r#"symbol: unknown symbol "btc-usd": this service trades "BTC-USD""#,
        ),
        (
            r#"{"quantity": 5, "price": 99.0, "side": -1, "symbol": 7}"#,
            "symbol: must be a string",
        ),
    ] {
        client.post("/order/", body).expect_detail(422, detail);
    }
    // A modify naming another symbol is refused and changes nothing.
    let id = resting["buy_orders"][0]["id"].as_str().unwrap().to_owned();
    client
        .put(
            &format!("/order/{id}"),
            r#"{"quantity": 9, "symbol": "ETH-USD"}"#,
        )
        .expect_detail(
            422,
            r#"symbol: unknown symbol "ETH-USD": this service trades "BTC-USD""#,
        );
    client
        .put(
            &format!("/order/{id}"),
            r#"{"quantity": 4, "symbol": "BTC-USD"}"#,
        )
        .expect(200);
    assert_eq!(client.get("/orders").expect(200)["sell_orders"], json!([]));
    assert_eq!(
        client.get(&format!("/order/{id}")).expect(200)["order_quantity"],
        json!(4)
    );
    assert_eq!(client.get("/trades").expect(200), json!([]));
}

#[test]
fn the_default_symbol_is_shown_by_health() {
    let server = Server::start();
    let mut client = server.connect();
    assert_eq!(
        client.get("/health").expect(200),
        json!({"status": "ok", "symbol": "DEFAULT"})
    );
}

/// Reads one response head (through the blank line) off `stream`, a byte
/// at a time so nothing after it is consumed: (status, Content-Length).
fn read_head(stream: &mut &std::net::TcpStream) -> (u16, usize) {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head arrives whole");
        head.extend_from_slice(&byte);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("no Content-Length in {head}"))
        .parse()
        .unwrap();
    (status, length)
}

/// HEAD is GET without the body (RFC 9110 §9.3.2): the same status and
/// `Content-Length`, no content, so the next response follows the head at
/// once. Answered now (health, metrics, errors) or by the engine and the
/// replica (a listing large enough to be queued whole).
#[test]
fn head_is_get_without_the_body() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 100.0, 10);
    client.place(-1, 100.0, 4);
    for i in 0..1000 {
        client.place(1, 50.0 + (i % 40) as f64, 1);
    }
    let missing = "00000000-0000-4000-8000-000000000000";
    let paths = [
        "/health".to_owned(),
        "/orders".to_owned(),
        "/trades".to_owned(),
        "/book?depth=0".to_owned(),
        format!("/order/{id}"),
        format!("/order/{missing}"),
        "/order/not-a-uuid".to_owned(),
        "/nowhere".to_owned(),
        // Without the upgrade's headers: 400, for HEAD too.
        "/ws".to_owned(),
    ];
    // What GET answers, for comparison.
    let got: Vec<(u16, usize)> = paths
        .iter()
        .map(|path| {
            let response = client.get(path);
            (response.status, response.body.len())
        })
        .collect();
    assert!(
        got[1].1 > 64 * 1024,
        "the listing takes the large-body path"
    );
    let mut heads = server.connect();
    let mut pipelined = Vec::new();
    for path in &paths {
        pipelined.extend(request_bytes("HEAD", path, None));
    }
    // A HEAD with the upgrade's headers is not upgraded either.
    pipelined.extend(
        b"HEAD /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    pipelined.extend(request_bytes("GET", "/health", None));
    heads.send_raw(&pipelined).unwrap();
    let mut stream = heads.stream();
    for (path, expected) in paths.iter().zip(&got) {
        assert_eq!(read_head(&mut stream), *expected, "HEAD {path}");
    }
    assert_eq!(
        read_head(&mut stream),
        got[got.len() - 1],
        "HEAD /ws upgrading"
    );
    // Then the GET, whole: no body bytes were left in between.
    heads.read_response().unwrap().expect(200);
}

/// The original README's walk-through: place, fetch, modify, cancel.
#[test]
fn readme_scenario_place_fetch_modify_cancel() {
    let server = Server::start();
    let mut client = server.connect();
    let placed = client
        .post("/order/", r#"{"quantity": 10, "price": 100.0, "side": 1}"#)
        .expect(200);
    let id = string(&placed, "id");
    assert_eq!(
        placed,
        json!({"id": id, "quantity": 10, "price": 100.0, "side": 1,
               "status": "open", "filled_quantity": 0})
    );
    assert_eq!(
        client.order(&id),
        json!({"order_id": id, "order_price": 100.0, "order_quantity": 10,
               "average_traded_price": 0, "traded_quantity": 0, "order_alive": true,
               "side": 1, "status": "open"})
    );
    let (buys, sells) = client.orders();
    assert_eq!(buys.len(), 1);
    assert!(sells.is_empty());
    assert_eq!(string(&buys[0], "id"), id);

    client
        .put(
            &format!("/order/{id}"),
            r#"{"quantity": 15, "price": 105.0}"#,
        )
        .expect(200);
    let order = client.order(&id);
    assert_eq!(order["order_quantity"], json!(15));
    assert_eq!(num(&order, "order_price"), 105.0);
    assert_eq!(order["order_alive"], json!(true));
    let (buys, _) = client.orders();
    assert_eq!(buys.len(), 1);
    assert_eq!(buys[0]["quantity"], json!(15));
    assert_eq!(num(&buys[0], "price"), 105.0);

    client.delete(&format!("/order/{id}")).expect(200);
    let order = client.order(&id);
    assert_eq!(order["order_alive"], json!(false));
    assert_eq!(order["status"], json!("cancelled"));
    assert_eq!(order["order_quantity"], json!(15));
    let (buys, sells) = client.orders();
    assert!(buys.is_empty() && sells.is_empty());
    assert!(client.trades("").is_empty());
}

#[test]
fn a_partial_match_trades_at_the_makers_price() {
    let server = Server::start();
    let mut client = server.connect();
    let sell = client.place_id(-1, 100.0, 10);
    let buy = client.place(1, 105.0, 4);
    // The taker is filled at once, and says so in its answer.
    assert_eq!(buy["status"], json!("filled"));
    assert_eq!(buy["filled_quantity"], json!(4));
    assert_eq!(num(&buy, "price"), 105.0, "the order keeps its own limit");
    let buy = string(&buy, "id");

    let taker = client.order(&buy);
    assert_eq!(taker["traded_quantity"], json!(4));
    assert_eq!(
        num(&taker, "average_traded_price"),
        100.0,
        "the maker's price"
    );
    assert_eq!(taker["order_alive"], json!(false));
    assert_eq!(taker["status"], json!("filled"));

    let maker = client.order(&sell);
    assert_eq!(maker["traded_quantity"], json!(4));
    assert_eq!(maker["order_quantity"], json!(10));
    assert_eq!(num(&maker, "average_traded_price"), 100.0);
    assert_eq!(maker["order_alive"], json!(true));
    assert_eq!(maker["status"], json!("partially filled"));

    let (buys, sells) = client.orders();
    assert!(buys.is_empty());
    assert_eq!(sells.len(), 1);
    assert_eq!(
        sells[0],
        json!({"id": sell, "quantity": 10, "price": 100.0, "side": -1,
               "status": "partially filled", "filled_quantity": 4,
               "average_traded_price": 100.0, "traded_quantity": 4, "order_alive": true})
    );

    let trades = client.trades("");
    assert_eq!(trades.len(), 1);
    assert_trade_shape(&trades[0]);
    assert_eq!(string(&trades[0], "buy_order_id"), buy);
    assert_eq!(string(&trades[0], "sell_order_id"), sell);
    assert_eq!(num(&trades[0], "price"), 100.0);
    assert_eq!(trades[0]["quantity"], json!(4));

    // A sell taker meets a resting buy at the buy's (maker's) price, across
    // two makers: the average is quantity-weighted.
    let b1 = client.place_id(1, 99.0, 2);
    let b2 = client.place_id(1, 98.0, 2);
    let taker = client.place(-1, 97.0, 3);
    assert_eq!(taker["status"], json!("filled"));
    let taker = client.order(&string(&taker, "id"));
    assert_eq!(taker["traded_quantity"], json!(3));
    let average = num(&taker, "average_traded_price");
    assert!(
        (average - (2.0 * 99.0 + 98.0) / 3.0).abs() < 1e-9,
        "{average}"
    );
    assert_eq!(client.order(&b1)["status"], json!("filled"));
    assert_eq!(client.order(&b2)["traded_quantity"], json!(1));
    let trades = client.trades("");
    let prices: Vec<f64> = trades.iter().map(|t| num(t, "price")).collect();
    assert_eq!(prices, [100.0, 99.0, 98.0]);
}

/// Which resting sell the next buy meets first.
fn first_maker_hit(client: &mut Client) -> String {
    let before = client.trades("?limit=100000").len();
    client.place(1, 100.0, 1);
    let trades = client.trades("?limit=100000");
    assert_eq!(trades.len(), before + 1);
    string(&trades[before], "sell_order_id")
}

#[test]
fn a_quantity_decrease_keeps_time_priority() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(-1, 100.0, 10);
    let b = client.place_id(-1, 100.0, 10);
    client
        .put(&format!("/order/{a}"), r#"{"quantity": 5}"#)
        .expect(200);
    // Same quantity and price given explicitly: nothing changes either.
    client
        .put(&format!("/order/{a}"), r#"{"quantity": 5, "price": 100.0}"#)
        .expect(200);
    assert_eq!(first_maker_hit(&mut client), a);
    let (_, sells) = client.orders();
    let ids: Vec<String> = sells.iter().map(|o| string(o, "id")).collect();
    assert_eq!(ids, [a.clone(), b.clone()]);
    assert_eq!(sells[0]["quantity"], json!(5));
    assert_eq!(sells[0]["filled_quantity"], json!(1));
}

#[test]
fn a_quantity_increase_loses_time_priority() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(-1, 100.0, 10);
    let b = client.place_id(-1, 100.0, 10);
    client
        .put(&format!("/order/{a}"), r#"{"quantity": 11}"#)
        .expect(200);
    let (_, sells) = client.orders();
    let ids: Vec<String> = sells.iter().map(|o| string(o, "id")).collect();
    assert_eq!(
        ids,
        [b.clone(), a.clone()],
        "a went to the back of its level"
    );
    assert_eq!(first_maker_hit(&mut client), b);
}

#[test]
fn a_price_change_loses_time_priority() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(-1, 100.0, 10);
    let b = client.place_id(-1, 100.0, 10);
    client
        .put(&format!("/order/{a}"), r#"{"price": 100.5}"#)
        .expect(200);
    client
        .put(&format!("/order/{a}"), r#"{"price": 100.0}"#)
        .expect(200);
    assert_eq!(first_maker_hit(&mut client), b);
    let (_, sells) = client.orders();
    let ids: Vec<String> = sells.iter().map(|o| string(o, "id")).collect();
    assert_eq!(ids, [b.clone(), a.clone()]);
}

#[test]
fn a_modify_that_crosses_trades_at_once() {
    let server = Server::start();
    let mut client = server.connect();
    let buy = client.place_id(1, 99.0, 10);
    let sell = client.place_id(-1, 101.0, 6);
    assert!(client.trades("").is_empty());
    // The sell moves down through the buy: it trades as a taker at the
    // buy's (maker's) price.
    client
        .put(&format!("/order/{sell}"), r#"{"price": 98.0}"#)
        .expect(200);
    let trades = client.trades("");
    assert_eq!(trades.len(), 1);
    assert_eq!(string(&trades[0], "buy_order_id"), buy);
    assert_eq!(string(&trades[0], "sell_order_id"), sell);
    assert_eq!(num(&trades[0], "price"), 99.0);
    assert_eq!(trades[0]["quantity"], json!(6));
    let taker = client.order(&sell);
    assert_eq!(taker["status"], json!("filled"));
    assert_eq!(taker["order_alive"], json!(false));
    assert_eq!(num(&taker, "order_price"), 98.0);
    assert_eq!(num(&taker, "average_traded_price"), 99.0);
    let maker = client.order(&buy);
    assert_eq!(maker["status"], json!("partially filled"));
    assert_eq!(maker["traded_quantity"], json!(6));

    // A buy raised through the asks fills what it can and rests the rest.
    let ask = client.place_id(-1, 100.0, 3);
    client
        .put(
            &format!("/order/{buy}"),
            r#"{"price": 100.0, "quantity": 12}"#,
        )
        .expect(200);
    let (buys, sells) = client.orders();
    assert!(sells.is_empty(), "{sells:?}");
    assert_eq!(buys.len(), 1);
    let mut listed = buys[0].clone();
    let average = num(&listed, "average_traded_price");
    assert!(
        (average - (6.0 * 99.0 + 3.0 * 100.0) / 9.0).abs() < 1e-9,
        "quantity-weighted average: {average}"
    );
    listed["average_traded_price"] = json!(0);
    assert_eq!(
        listed,
        json!({"id": buy, "quantity": 12, "price": 100.0, "side": 1,
               "status": "partially filled", "filled_quantity": 9,
               "average_traded_price": 0,
               "traded_quantity": 9, "order_alive": true})
    );
    assert_eq!(client.order(&ask)["status"], json!("filled"));
    let trades = client.trades("");
    assert_eq!(trades.len(), 2);
    assert_eq!(num(&trades[1], "price"), 100.0);
}

#[test]
fn metrics_count_answers_and_time_commands_in_prometheus_text() {
    let server = Server::start();
    let mut client = server.connect();
    for i in 0..10 {
        client.place_id(1, 90.0 + i as f64, 1);
    }
    client.get("/order/00000000-0000-4000-8000-000000000000");
    let text = client.metrics_text();
    let value = |name: &str| metric(&text, name);
    // The ten places are timed; the lookup (a read) is not.
    assert_eq!(value("orderbook_command_latency_seconds_count"), 10.0);
    // The same latencies as histogram buckets: cumulative, all 10 at +Inf.
    let name = "orderbook_command_latency_histogram_seconds";
    assert!(text.contains(&format!("# TYPE {name} histogram\n")));
    let buckets: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}_bucket{{")))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 20);
    assert!(
        buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "{buckets:?}"
    );
    assert_eq!(value(&format!("{name}_bucket{{le=\"+Inf\"}}")), 10.0);
    assert_eq!(value(&format!("{name}_count")), 10.0);
    assert!(value("orderbook_command_latency_seconds{quantile=\"0.5\"}") > 0.0);
    assert_eq!(value("orderbook_responses_total{class=\"2xx\"}"), 10.0);
    assert_eq!(value("orderbook_responses_total{class=\"4xx\"}"), 1.0);
    assert_eq!(value("orderbook_journal_records_total"), 10.0);
    assert_eq!(value("orderbook_journal_syncs_total"), 0.0, "no --fsync");
    assert_eq!(value("orderbook_connections_open"), 1.0);
    assert!(text.contains("# TYPE orderbook_matching_latency_seconds summary"));
    // The publisher thread times the matching thread's outputs as it reads
    // them, after the answers went out: wait for it, then it is exactly 10.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let matched = loop {
        let text = client.metrics_text();
        let count = metric(&text, "orderbook_matching_latency_seconds_count");
        if count >= 10.0 || std::time::Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(matched, 10.0);
}

#[test]
fn metrics_time_each_command_apart_batch_items_included() {
    let server = Server::start();
    let mut client = server.connect();
    let a = client.place_id(1, 90.0, 1);
    let b = client.place_id(1, 91.0, 1);
    client
        .put(&format!("/order/{a}"), r#"{"quantity": 2}"#)
        .expect(200);
    client.delete(&format!("/order/{b}")).expect(200);
    client.delete(&format!("/order/{b}")).expect(404);
    let batch = r#"{"orders": [{"quantity": 1, "price": 80.0, "side": 1}, {"quantity": 1, "price": 81.0, "side": 1}]}"#;
    client.post("/orders/batch", batch).expect(200);
    let cancels = format!(r#"{{"order_ids": ["{a}"]}}"#);
    client.post("/orders/cancel", &cancels).expect(200);
    client.get("/orders").expect(200);
    let text = client.metrics_text();
    let name = "orderbook_command_latency_by_command_histogram_seconds";
    assert!(text.contains(&format!("# TYPE {name} histogram\n")));
    let count = |command: &str| metric(&text, &format!("{name}_count{{command=\"{command}\"}}"));
    // Refused commands are timed too (the second cancel's 404); reads are not.
    assert_eq!(
        (count("place"), count("modify"), count("cancel")),
        (4.0, 1.0, 3.0)
    );
    for command in ["place", "modify", "cancel"] {
        let infinity = format!("{name}_bucket{{command=\"{command}\",le=\"+Inf\"}}");
        assert_eq!(metric(&text, &infinity), count(command), "{command}");
    }
    assert_eq!(
        metric(&text, "orderbook_command_latency_seconds_count"),
        8.0
    );
}

#[test]
fn metrics_time_each_read_by_its_name() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 90.0, 1);
    for path in ["/orders", "/orders?limit=1", "/book", "/ticker", "/candles"] {
        client.get(path).expect(200);
    }
    client.get(&format!("/order/{id}")).expect(200);
    client.get(&format!("/order/{UNKNOWN_ID}")).expect(404);
    for query in ["", "?limit=1", &format!("?order_id={id}")] {
        client.get(&format!("/trades{query}")).expect(200);
    }
    // Answered at the front without the matching thread: not timed.
    client.get("/health").expect(200);
    client.get("/order/not-a-uuid").expect(422);
    let text = client.metrics_text();
    let name = "orderbook_read_latency_histogram_seconds";
    assert!(text.contains(&format!("# TYPE {name} histogram\n")));
    let count = |read: &str| metric(&text, &format!("{name}_count{{read=\"{read}\"}}"));
    let counts: Vec<f64> = ["orders", "order", "book", "trades", "candles", "ticker"]
        .iter()
        .map(|read| count(read))
        .collect();
    assert_eq!(counts, [2.0, 2.0, 1.0, 3.0, 1.0, 1.0]);
    let infinity = format!("{name}_bucket{{read=\"trades\",le=\"+Inf\"}}");
    assert_eq!(metric(&text, &infinity), 3.0);
    // The one place is the only command timed.
    assert_eq!(
        metric(&text, "orderbook_command_latency_seconds_count"),
        1.0
    );
}

#[test]
fn metrics_count_trades_units_traded_placed_orders_by_status_and_resting_orders() {
    let server = Server::start();
    let mut client = server.connect();
    client.place(-1, 100.0, 3);
    client.place(-1, 101.0, 4);
    client.place(1, 99.0, 2);
    client.place(1, 100.5, 5); // takes 3 at 100.0, rests 2: partially filled
    let ioc = r#"{"quantity": 9, "price": 101.0, "side": 1, "time_in_force": "IOC"}"#;
    client.post("/order/", ioc).expect(200); // takes 4 at 101.0, cancels 5
    let market = r#"{"type": "market", "quantity": 3, "side": -1}"#;
    client.post("/order/", market).expect(200); // takes 2 at 100.5 and 1 at 99.0
    let text = client.metrics_text();
    assert!(text.contains("# TYPE orderbook_trades_total counter\n"));
    assert!(text.contains("# TYPE orderbook_resting_orders gauge\n"));
    let placed = |status: &str| {
        metric(
            &text,
            &format!("orderbook_placed_orders_total{{status=\"{status}\"}}"),
        )
    };
    assert_eq!(
        (
            placed("open"),
            placed("partially filled"),
            placed("filled"),
            placed("cancelled")
        ),
        (3.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(metric(&text, "orderbook_trades_total"), 4.0);
    assert_eq!(metric(&text, "orderbook_traded_quantity_total"), 10.0);
    // Only the bid at 99.0 rests, 1 of its 2 left. The gauge is the
    // replica's, which the GET /orders barrier waits for.
    let (buys, sells) = client.orders();
    assert_eq!((buys.len(), sells.len()), (1, 0));
    assert_eq!(
        metric(&client.metrics_text(), "orderbook_resting_orders"),
        1.0
    );
}

#[test]
fn under_fsync_metrics_time_every_journal_sync() {
    let server = Server::start_with(&["--fsync"]);
    let mut client = server.connect();
    // One request at a time: each answer waits for its own sync.
    for i in 0..5 {
        client.place_id(1, 90.0 + i as f64, 1);
    }
    let text = client.metrics_text();
    let value = |name: &str| metric(&text, name);
    assert_eq!(value("orderbook_journal_records_total"), 5.0);
    assert_eq!(value("orderbook_journal_syncs_total"), 5.0);
    assert_eq!(value("orderbook_journal_sync_seconds_count"), 5.0);
    assert!(value("orderbook_journal_sync_seconds{quantile=\"0.5\"}") > 0.0);
}

/// A write takes no query parameters, and refuses any: ignored, a
/// prefix given in the query of `POST /orders/cancel_all_after` (where its
/// `GET` takes it) armed the switch of every order, and a name in the
/// query of `POST /order` placed an order without it. Nothing is applied.
#[test]
fn a_write_refuses_any_query_parameter() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 10.0, 5);
    let place = r#"{"quantity": 1, "price": 2.0, "side": 1}"#;
    let batch = format!(r#"{{"orders": [{place}]}}"#);
    let modify = format!(r#"{{"orders": [{{"id": "{id}", "quantity": 9}}]}}"#);
    let cancel = format!(r#"{{"order_ids": ["{id}"]}}"#);
    for (method, target, body, name, route) in [
        (
            "POST",
            "/orders/cancel_all_after?client_order_id_prefix=mm1-".to_owned(),
            r#"{"timeout_ms": 30000}"#.to_owned(),
            "client_order_id_prefix",
            "POST /orders/cancel_all_after",
        ),
        (
            "POST",
            "/order?client_order_id=retry-1".to_owned(),
            place.to_owned(),
            "client_order_id",
            "POST /order",
        ),
        (
            "POST",
            "/orders/batch?foo=1".to_owned(),
            batch,
            "foo",
            "POST /orders/batch",
        ),
        (
            "POST",
            "/orders/modify?x".to_owned(),
            modify,
            "x",
            "POST /orders/modify",
        ),
        (
            "POST",
            "/orders/cancel/?y=2".to_owned(),
            cancel,
            "y",
            "POST /orders/cancel",
        ),
        (
            "PUT",
            format!("/order/{id}?quantity=1"),
            r#"{"quantity": 7}"#.to_owned(),
            "quantity",
            "PUT /order/{id}",
        ),
        (
            "DELETE",
            format!("/order/{id}/?z=1"),
            String::new(),
            "z",
            "DELETE /order/{id}",
        ),
    ] {
        let body = (method != "DELETE").then_some(body.as_str());
        client
            .request(method, &target, body)
            .expect_detail(422, &format!("{name}: {route} takes no query parameters"));
    }
    // Nothing was applied: one order, as placed, and no switch armed.
    let (buys, sells) = client.orders();
    assert_eq!((buys.len(), sells.len()), (1, 0));
    assert_eq!(
        (buys[0]["id"].as_str(), buys[0]["quantity"].as_u64()),
        (Some(id.as_str()), Some(5))
    );
    let switch = client.get("/orders/cancel_all_after").expect(200);
    assert_eq!(switch["trigger_time"], Value::Null, "{switch}");
    // A read that takes none still ignores a cache-buster.
    assert_eq!(
        client.get(&format!("/order/{id}?_=1")).expect(200)["order_quantity"],
        5
    );
}

/// A route that takes query parameters refuses one it does not know, as
/// `DELETE /orders` does: ignored, a misspelt filter answered with every
/// order or trade. Routes that take none ignore a query.
#[test]
fn a_read_refuses_a_query_parameter_it_does_not_take() {
    let server = Server::start();
    let mut client = server.connect();
    let named = |name: &str| {
        format!(r#"{{"quantity": 1, "price": 2.0, "side": 1, "client_order_id": "{name}"}}"#)
    };
    client.post("/order/", &named("mine-1")).expect(200);
    client.post("/order/", &named("other-1")).expect(200);
    let mine = client
        .get("/orders?client_order_id_prefix=mine-")
        .expect(200);
    assert_eq!(mine["buy_orders"].as_array().unwrap().len(), 1);
    for (target, name, takes) in [
        (
            "/orders?clientOrderIdPrefix=mine-",
            "clientOrderIdPrefix",
            "GET /orders takes no such parameter (it takes limit, side, client_order_id_prefix)",
        ),
        (
            "/orders?limit=1&prefix=mine-",
            "prefix",
            "GET /orders takes no such parameter (it takes limit, side, client_order_id_prefix)",
        ),
        (
            "/trades?orderId=00000000-0000-4000-8000-000000000009",
            "orderId",
            "GET /trades takes no such parameter (it takes limit, order_id, client_order_id, after, before)",
        ),
        (
            "/candles?intervall=60",
            "intervall",
            "GET /candles takes no such parameter (it takes interval, limit, end)",
        ),
        (
            "/book?dept=3",
            "dept",
            "GET /book takes no such parameter (it takes depth)",
        ),
        (
            "/orders/cancel_all_after?prefix=a",
            "prefix",
            "GET /orders/cancel_all_after takes no such parameter (it takes client_order_id_prefix)",
        ),
        (
            "/order?clientOrderId=mine-1",
            "clientOrderId",
            "GET /order takes no such parameter (it takes client_order_id)",
        ),
    ] {
        client
            .get(target)
            .expect_detail(422, &format!("{name}: {takes}"));
    }
    // Before the upgrade, as a bad depth is.
    client.get("/ws?depht=3").expect_detail(
        400,
        "depht: GET /ws takes no such parameter (it takes depth, channels)",
    );
    // Those that take none are left alone: a cache-buster is not refused.
    for target in ["/health?_=1", "/ticker?x", "/metrics?_=2"] {
        client
            .send_raw(&request_bytes("GET", target, None))
            .unwrap();
        let answer = client
            .read_response_of_type(if target.starts_with("/metrics") {
                "text/plain; version=0.0.4"
            } else {
                "application/json"
            })
            .unwrap();
        assert_eq!(answer.status, 200, "{target}");
    }
}
