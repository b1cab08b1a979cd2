//! `client_order_id`: a client's own name for an order, shown with the
//! order, taken by one order at a time while the service keeps it, and
//! usable in place of the id to fetch, modify and cancel it. Against the
//! real binary over real sockets.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const RULE: &str =
    "client_order_id: must be a string of 1 to 36 letters, digits, '.', ':', '/', '_' or '-'";

fn named(side: i8, price: f64, quantity: u64, name: &str) -> String {
    format!(
        r#"{{"quantity": {quantity}, "price": {price:?}, "side": {side}, "client_order_id": "{name}"}}"#
    )
}

/// Places a named order, returning its id.
fn place_named(client: &mut Client, side: i8, price: f64, quantity: u64, name: &str) -> String {
    id_of(
        &client
            .post("/order/", &named(side, price, quantity, name))
            .expect(200),
    )
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("an id").to_string()
}

/// The 409 of a name `name` already given to order `id`.
fn taken(field: &str, name: &str, id: &str) -> String {
    format!("{field}: {name:?} already names order {id}, which the service still keeps")
}

#[test]
fn a_named_order_shows_its_name_and_is_fetched_modified_and_cancelled_by_it() {
    let server = Server::start();
    let mut client = server.connect();
    let placed = client
        .post("/order/", &named(1, 100.0, 10, "leg-1/a.b:c_d"))
        .expect(200);
    let id = id_of(&placed);
    assert_eq!(
        placed,
        json!({"id": id, "quantity": 10, "price": 100.0, "side": 1, "status": "open",
            "filled_quantity": 0, "client_order_id": "leg-1/a.b:c_d"})
    );
    // An order placed without a name shows none.
    let plain = client.place(1, 99.0, 1);
    assert!(plain.get("client_order_id").is_none(), "{plain}");
    assert!(client
        .order(&id_of(&plain))
        .get("client_order_id")
        .is_none());

    let by_name = client
        .get("/order?client_order_id=leg-1/a.b:c_d")
        .expect(200);
    let by_id = client.order(&id);
    assert_eq!(by_name, by_id);
    assert_eq!(
        (
            &by_id["order_id"],
            &by_id["client_order_id"],
            &by_id["order_quantity"]
        ),
        (&json!(id), &json!("leg-1/a.b:c_d"), &json!(10))
    );
    // Escaped in the query, and with a trailing slash, it is the same name.
    let escaped = client
        .get("/order/?client_order_id=leg-1%2Fa.b%3Ac_d")
        .expect(200);
    assert_eq!(escaped, by_id);
    let (buys, _) = client.orders();
    assert_eq!(buys[0]["client_order_id"], json!("leg-1/a.b:c_d"));
    assert!(buys[1].get("client_order_id").is_none());

    // Modify by name: a new total of 6; then a sell of 4 takes 4 of it.
    client
        .put("/order?client_order_id=leg-1/a.b:c_d", r#"{"quantity": 6}"#)
        .expect(200);
    client.place(-1, 100.0, 4);
    let fetched = client
        .get("/order?client_order_id=leg-1/a.b:c_d")
        .expect(200);
    assert_eq!(
        (
            &fetched["order_quantity"],
            &fetched["traded_quantity"],
            &fetched["status"]
        ),
        (&json!(6), &json!(4), &json!("partially filled"))
    );
    // Cancel by name: the order is finished but kept, so still found by it.
    let cancelled = client
        .delete("/order?client_order_id=leg-1/a.b:c_d")
        .expect(200);
    assert_eq!(
        cancelled,
        json!({"success": true, "message": "Order cancelled"})
    );
    let fetched = client
        .get("/order?client_order_id=leg-1/a.b:c_d")
        .expect(200);
    assert_eq!(
        (
            &fetched["status"],
            &fetched["order_alive"],
            &fetched["client_order_id"]
        ),
        (&json!("cancelled"), &json!(false), &json!("leg-1/a.b:c_d"))
    );
    // Cancelling again is the 404 a cancel by id gives.
    client
        .delete("/order?client_order_id=leg-1/a.b:c_d")
        .expect_detail(404, "Order not found");

    // A name no order has is 404 for each method; a bad name is 422.
    client
        .get("/order?client_order_id=nobody")
        .expect_detail(404, "Order not found");
    client
        .put("/order?client_order_id=nobody", r#"{"quantity": 1}"#)
        .expect_detail(404, "Order not found or unable to modify");
    client
        .delete("/order?client_order_id=nobody")
        .expect_detail(404, "Order not found");
    client
        .get("/order?client_order_id=a%20b")
        .expect_detail(422, RULE);
    client
        .get("/order?client_order_id=")
        .expect_detail(422, RULE);
    // Without a name, GET, PUT and DELETE /order say what they need.
    for method in ["GET", "PUT", "DELETE"] {
        client
            .request(method, "/order/", Some("{}"))
            .expect_detail(422, "client_order_id: field required");
    }
}

#[test]
fn a_name_in_use_is_refused_409_and_nothing_is_placed() {
    let server = Server::start();
    let mut client = server.connect();
    let first = place_named(&mut client, -1, 101.0, 5, "a");
    client
        .post("/order/", &named(-1, 102.0, 5, "a"))
        .expect_detail(409, &taken("client_order_id", "a", &first));
    // Finished and still kept: still taken.
    client.delete(&format!("/order/{first}")).expect(200);
    client
        .post("/order/", &named(1, 90.0, 1, "a"))
        .expect_detail(409, &taken("client_order_id", "a", &first));
    assert_eq!(client.orders(), (vec![], vec![]));

    // Bad names are refused as any bad field is.
    for bad in [
        r#""""#,
        r#""with space""#,
        "7",
        &format!("{:?}", "x".repeat(37)),
    ] {
        let body =
            format!(r#"{{"quantity": 1, "price": 1.0, "side": 1, "client_order_id": {bad}}}"#);
        client.post("/order/", &body).expect_detail(422, RULE);
    }
    // A modify cannot rename.
    let other = client.place_id(1, 90.0, 1);
    client
        .put(&format!("/order/{other}"), r#"{"client_order_id": "b"}"#)
        .expect_detail(
            422,
            "client_order_id: is set when an order is placed; a modify cannot change it",
        );

    // A batch: a name given twice in it, or one already taken, refuses
    // it whole.
    let batch = |names: [&str; 2]| {
        format!(
            r#"{{"orders": [{}, {}]}}"#,
            named(1, 80.0, 1, names[0]),
            named(1, 81.0, 1, names[1])
        )
    };
    client
        .post("/orders/batch", &batch(["b", "b"]))
        .expect_detail(
            422,
            r#"orders[1].client_order_id: "b" is given to orders[0] too"#,
        );
    client
        .post("/orders/batch", &batch(["c", "a"]))
        .expect_detail(409, &taken("orders[1].client_order_id", "a", &first));
    let (buys, _) = client.orders();
    assert_eq!(buys.len(), 1, "nothing of the refused batches was placed");
    let answers = client.post("/orders/batch", &batch(["b", "c"])).expect(200);
    for (i, name) in ["b", "c"].into_iter().enumerate() {
        assert_eq!(answers[i]["client_order_id"], json!(name));
        let fetched = client
            .get(&format!("/order?client_order_id={name}"))
            .expect(200);
        assert_eq!(fetched["order_id"], answers[i]["id"]);
    }
}

#[test]
fn a_place_the_engine_refuses_leaves_its_name_free() {
    let server = Server::start();
    let mut client = server.connect();
    client.place(-1, 100.0, 1);
    let post_only =
        r#"{"quantity": 1, "price": 100.0, "side": 1, "post_only": true, "client_order_id": "p"}"#;
    client.post("/order/", post_only).expect_detail(
        422,
        "post_only: the order would trade on arrival; it was not placed",
    );
    client
        .get("/order?client_order_id=p")
        .expect_detail(404, "Order not found");
    let placed = client.post("/order/", &named(1, 99.0, 1, "p")).expect(200);
    let fetched = client.get("/order?client_order_id=p").expect(200);
    assert_eq!(fetched["order_id"], placed["id"]);
}

#[test]
fn a_name_is_free_again_once_its_order_leaves_the_kept_history() {
    let server = Server::start_with(&["--finished-orders", "1"]);
    let mut client = server.connect();
    let named_orders =
        |client: &mut Client| metric(&client.metrics_text(), "orderbook_named_orders");
    let old = place_named(&mut client, 1, 90.0, 1, "n");
    client.delete(&format!("/order/{old}")).expect(200);
    // A read through the replica first: the gauge is as of its last batch.
    client.order(&old);
    assert_eq!(named_orders(&mut client), 1.0);
    client
        .post("/order/", &named(1, 90.0, 1, "n"))
        .expect_detail(409, &taken("client_order_id", "n", &old));
    // Another finished order pushes it out of the history of one.
    let other = client.place_id(1, 91.0, 1);
    client.delete(&format!("/order/{other}")).expect(200);
    // A read through the replica: it has applied the cancel, and freed
    // the name, before it answers.
    client
        .get(&format!("/order/{old}"))
        .expect_detail(404, "Order not found");
    let new = place_named(&mut client, 1, 92.0, 2, "n");
    assert_ne!(new, old);
    let fetched = client.get("/order?client_order_id=n").expect(200);
    assert_eq!(
        (&fetched["order_id"], &fetched["order_quantity"]),
        (&json!(new), &json!(2))
    );
    assert_eq!(named_orders(&mut client), 1.0, "the new order's");

    // With no history at all, an order that finishes frees its name at
    // once: an IOC that meets nothing, and a maker filled whole.
    let server = Server::start_with(&["--finished-orders", "0"]);
    let mut client = server.connect();
    let ioc = r#"{"quantity": 1, "price": 50.0, "side": 1, "time_in_force": "IOC", "client_order_id": "i"}"#;
    assert_eq!(
        client.post("/order/", ioc).expect(200)["status"],
        json!("cancelled")
    );
    client.post("/order/", &named(-1, 60.0, 1, "m")).expect(200);
    client.place(1, 60.0, 1);
    client.get("/orders").expect(200);
    assert_eq!(named_orders(&mut client), 0.0);
    for name in ["i", "m"] {
        client
            .get(&format!("/order?client_order_id={name}"))
            .expect_detail(404, "Order not found");
        client.post("/order/", &named(1, 10.0, 1, name)).expect(200);
    }
}

/// A name given again once its first order left a history of 2, then a
/// crash, and a start under a history of 100 that replays the journal and
/// so keeps the first order again: the name stays the second order's, the
/// first is shown without it, and the state file the next stop writes is
/// read at the start after. (Both kept the name, and that start was
/// refused: "client_order_id "dup" names another order too".)
#[test]
fn a_name_given_again_stays_the_new_orders_when_a_larger_history_brings_the_old_back() {
    let dir = TempDir::new("name-reused");
    let mut server = Server::start_in(
        &dir.0,
        &["--finished-orders", "2", "--snapshot-interval", "0"],
    );
    let mut client = server.connect();
    let old = place_named(&mut client, 1, 90.0, 1, "dup");
    client.delete(&format!("/order/{old}")).expect(200);
    for price in [91.0, 92.0, 93.0] {
        let other = client.place_id(1, price, 1);
        client.delete(&format!("/order/{other}")).expect(200);
    }
    client
        .get(&format!("/order/{old}"))
        .expect_detail(404, "Order not found");
    let new = place_named(&mut client, 1, 94.0, 1, "dup");
    server.kill9();

    let larger = ["--finished-orders", "100", "--snapshot-interval", "0"];
    let mut server = Server::start_in(&dir.0, &larger);
    let mut client = server.connect();
    let by_name = client.get("/order?client_order_id=dup").expect(200);
    assert_eq!(by_name["order_id"], json!(new));
    let old_order = client.order(&old);
    assert_eq!(old_order["status"], "cancelled");
    assert_eq!(old_order.get("client_order_id"), None, "{old_order}");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());

    let server = Server::start_in(&dir.0, &larger);
    let mut client = server.connect();
    let by_name = client.get("/order?client_order_id=dup").expect(200);
    assert_eq!(by_name["order_id"], json!(new));
    assert_eq!(client.order(&old).get("client_order_id"), None);
}

#[test]
fn a_place_refused_before_it_is_staged_leaves_its_name_free() {
    let server = Server::start_with(&["--rate-limit", "1", "--rate-limit-burst", "1"]);
    let mut client = server.connect();
    client
        .post("/order/", &named(1, 90.0, 1, "first"))
        .expect(200);
    // Over the limit: 429, nothing placed, the name not kept.
    let refused = client.post("/order/", &named(1, 91.0, 1, "q"));
    assert_eq!(refused.status, 429, "{}", refused.text());
    let batch = format!(r#"{{"orders": [{}]}}"#, named(1, 92.0, 1, "r"));
    assert_eq!(client.post("/orders/batch", &batch).status, 429);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let placed = client.post("/order/", &named(1, 91.0, 1, "q")).expect(200);
    assert_eq!(placed["client_order_id"], json!("q"));
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let answers = client.post("/orders/batch", &batch).expect(200);
    assert_eq!(answers[0]["client_order_id"], json!("r"));
}

#[test]
fn batch_modifies_and_cancels_take_names_in_place_of_ids() {
    let server = Server::start();
    let mut client = server.connect();
    let a = place_named(&mut client, 1, 90.0, 5, "a");
    let b = place_named(&mut client, 1, 91.0, 5, "b");
    // A name, an id, and a name no order has: that one alone is 404.
    let modify = format!(
        r#"{{"orders": [{{"client_order_id": "a", "quantity": 3}}, {{"id": "{b}", "price": 92.0}}, {{"client_order_id": "nobody", "quantity": 1}}]}}"#
    );
    let answers = client.post("/orders/modify", &modify).expect(200);
    assert_eq!(
        answers,
        json!([
            {"success": true, "message": "Order modified"},
            {"success": true, "message": "Order modified"},
            {"status_code": 404, "detail": "Order not found or unable to modify"}
        ])
    );
    assert_eq!(client.order(&a)["order_quantity"], json!(3));
    assert_eq!(client.order(&b)["order_price"], json!(92.0));
    let cancel = r#"{"client_order_ids": ["b", "nobody", "a"]}"#;
    let answers = client.post("/orders/cancel", cancel).expect(200);
    assert_eq!(
        answers,
        json!([
            {"success": true, "message": "Order cancelled"},
            {"status_code": 404, "detail": "Order not found"},
            {"success": true, "message": "Order cancelled"}
        ])
    );
    assert_eq!(client.orders(), (vec![], vec![]));
    // Refusals name the field at fault; nothing is done.
    client
        .post(
            "/orders/cancel",
            r#"{"client_order_ids": ["a", "no good"]}"#,
        )
        .expect_detail(422, &format!("client_order_ids[1]: {}", &RULE[17..]));
    client
        .post(
            "/orders/cancel",
            &format!(r#"{{"order_ids": ["{a}"], "client_order_ids": ["a"]}}"#),
        )
        .expect_detail(
            422,
            "order_ids: give order_ids or client_order_ids, not both",
        );
    let both = format!(r#"{{"orders": [{{"id": "{a}", "client_order_id": "a", "quantity": 1}}]}}"#);
    client
        .post("/orders/modify", &both)
        .expect_detail(422, "orders[0].id: give id or client_order_id, not both");
    client
        .post(
            "/orders/modify",
            r#"{"orders": [{"client_order_id": 7, "quantity": 1}]}"#,
        )
        .expect_detail(422, &format!("orders[0].{RULE}"));
}

#[test]
fn a_named_orders_fills_are_read_by_its_name() {
    let server = Server::start();
    let mut client = server.connect();
    let maker = place_named(&mut client, -1, 100.0, 5, "mk");
    client.place(1, 100.0, 2);
    client.place(1, 100.0, 1);
    client.place(1, 99.0, 1);
    let by_id = client.trades(&format!("?order_id={maker}"));
    assert_eq!(by_id.len(), 2);
    assert_eq!(client.trades("?client_order_id=mk"), by_id);
    assert_eq!(client.trades("?client_order_id=mk&limit=1"), by_id[1..]);
    assert_eq!(
        client.trades("?client_order_id=nobody"),
        Vec::<Value>::new()
    );
    client
        .get(&format!("/trades?order_id={maker}&client_order_id=mk"))
        .expect_detail(422, "order_id: give order_id or client_order_id, not both");
    client
        .get("/trades?client_order_id=a%20b")
        .expect_detail(422, RULE);
}

#[test]
fn get_orders_with_a_name_prefix_lists_only_the_orders_so_named() {
    let server = Server::start();
    let mut client = server.connect();
    let a1 = place_named(&mut client, 1, 99.0, 1, "a-1");
    let b1 = place_named(&mut client, 1, 99.5, 1, "b-1");
    let a2 = place_named(&mut client, 1, 100.0, 1, "a-2");
    let a3 = place_named(&mut client, -1, 101.0, 1, "a-3");
    client.place(1, 100.0, 1);
    let ids = |listing: &Value, key: &str| -> Vec<String> {
        listing[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|order| order["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mine = client.get("/orders?client_order_id_prefix=a-").expect(200);
    assert_eq!(
        ids(&mine, "buy_orders"),
        [a2.clone(), a1.clone()],
        "best first"
    );
    assert_eq!(ids(&mine, "sell_orders"), [a3]);
    assert_eq!(mine["buy_orders"][0]["client_order_id"], json!("a-2"));
    // With a side and a limit, which count only the orders so named.
    let first = client
        .get("/orders?side=buy&limit=1&client_order_id_prefix=a-")
        .expect(200);
    assert_eq!(
        (ids(&first, "buy_orders"), ids(&first, "sell_orders")),
        (vec![a2], vec![])
    );
    // A whole name is a prefix too; escaped as a query value is.
    let one = client
        .get("/orders?client_order_id_prefix=b%2D1")
        .expect(200);
    assert_eq!(ids(&one, "buy_orders"), [b1]);
    let none = client.get("/orders?client_order_id_prefix=zz").expect(200);
    assert_eq!(none, json!({"buy_orders": [], "sell_orders": []}));
    client
        .get("/orders?client_order_id_prefix=a%20")
        .expect_detail(
            422,
            &RULE.replace("client_order_id", "client_order_id_prefix"),
        );
    client.get("/orders?client_order_id_prefix=").expect_detail(
        422,
        &RULE.replace("client_order_id", "client_order_id_prefix"),
    );
}

/// Each named order's status, as `GET /order?client_order_id=` shows it.
fn statuses(client: &mut Client, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            let order = client
                .get(&format!("/order?client_order_id={name}"))
                .expect(200);
            string(&order, "status")
        })
        .collect()
}

#[test]
fn delete_orders_with_a_name_prefix_cancels_only_the_resting_orders_so_named() {
    let dir = TempDir::new("cancel-by-prefix");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    place_named(&mut client, 1, 99.0, 1, "a-1");
    place_named(&mut client, 1, 99.5, 1, "b-1");
    place_named(&mut client, 1, 100.0, 1, "a-2");
    place_named(&mut client, -1, 101.0, 1, "a-3");
    place_named(&mut client, -1, 102.0, 2, "a-4");
    place_named(&mut client, -1, 103.0, 1, "a-5");
    let plain = client.place_id(1, 98.0, 1);
    // a-3 fills, so is not resting and is not cancelled; a-4 half fills.
    client
        .post("/order/", &named(1, 103.0, 2, "c-1"))
        .expect(200);
    let names = ["a-1", "a-2", "a-3", "a-4", "a-5", "b-1", "c-1"];
    let cancelled =
        |count: u64| json!({"success": true, "message": "Orders cancelled", "cancelled": count});

    // A bad prefix is refused and cancels nothing.
    for bad in ["", "a%20"] {
        client
            .delete(&format!("/orders?client_order_id_prefix={bad}"))
            .expect_detail(
                422,
                &RULE.replace("client_order_id", "client_order_id_prefix"),
            );
    }
    client
        .delete("/orders?client_order_id_prefix=a-&side=up")
        .expect(422);
    // A selector DELETE /orders does not take is refused, not ignored
    // (which would cancel every order).
    let takes = "DELETE /orders takes no such parameter (it takes side, client_order_id_prefix)";
    for (query, name) in [
        ("client_order_id=a-1", "client_order_id"),
        ("prefix=a-", "prefix"),
        ("side=sell&limit=1", "limit"),
        ("client_order_id_prefix=a-&sides=sell", "sides"),
    ] {
        client
            .delete(&format!("/orders?{query}"))
            .expect_detail(422, &format!("{name}: {takes}"));
    }
    let untouched = [
        "open",
        "open",
        "filled",
        "partially filled",
        "open",
        "open",
        "filled",
    ];
    assert_eq!(statuses(&mut client, &names), untouched);

    // With a side, only that side's.
    let sells = client
        .delete("/orders?side=sell&client_order_id_prefix=a-")
        .expect(200);
    assert_eq!(sells, cancelled(2));
    let after_sells = [
        "open",
        "open",
        "filled",
        "cancelled",
        "cancelled",
        "open",
        "filled",
    ];
    assert_eq!(statuses(&mut client, &names), after_sells);
    let rest = client
        .delete("/orders?client_order_id_prefix=a-")
        .expect(200);
    assert_eq!(rest, cancelled(2));
    let none_left = client
        .delete("/orders?client_order_id_prefix=a-")
        .expect(200);
    assert_eq!(none_left, cancelled(0));
    let again = client
        .delete("/orders?client_order_id_prefix=zz")
        .expect(200);
    assert_eq!(again, cancelled(0));
    let done = [
        "cancelled",
        "cancelled",
        "filled",
        "cancelled",
        "cancelled",
        "open",
        "filled",
    ];
    assert_eq!(statuses(&mut client, &names), done);
    // The a-4 cancelled kept its fill.
    let a4 = client.get("/order?client_order_id=a-4").expect(200);
    assert_eq!(
        (uint(&a4, "traded_quantity"), a4["order_alive"].clone()),
        (1, json!(false))
    );
    // Everything else rests as it did: b-1 and the unnamed order.
    let (buys, sells) = client.orders();
    let ids: Vec<&str> = buys.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(buys[0]["client_order_id"], json!("b-1"));
    assert_eq!(ids[1], plain);
    assert!(sells.is_empty(), "{sells:?}");

    // The cancels are journaled: a kill -9 and a restart keep them.
    drop(client);
    server.kill9();
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    assert_eq!(statuses(&mut client, &names), done);
    assert_eq!(client.orders().0.len(), 2);
}

#[test]
fn requests_pipelined_after_a_delete_by_name_prefix_see_its_cancels_done() {
    let server = Server::start();
    let mut client = server.connect();
    place_named(&mut client, 1, 99.0, 1, "p-1");
    place_named(&mut client, -1, 101.0, 1, "p-2");
    let listing = "/orders?client_order_id_prefix=p-";
    let mut pipelined = request_bytes("DELETE", listing, None);
    pipelined.extend(request_bytes("GET", listing, None));
    pipelined.extend(request_bytes(
        "POST",
        "/order/",
        Some(&named(1, 98.0, 1, "p-3")),
    ));
    pipelined.extend(request_bytes("GET", listing, None));
    client.send_raw(&pipelined).unwrap();
    let deleted = client.read_response().unwrap().expect(200);
    assert_eq!(deleted["cancelled"], json!(2));
    let listed = client.read_response().unwrap().expect(200);
    assert_eq!(listed, json!({"buy_orders": [], "sell_orders": []}));
    let placed = client.read_response().unwrap().expect(200);
    let listed = client.read_response().unwrap().expect(200);
    assert_eq!(listed["buy_orders"][0]["id"], placed["id"]);
    assert_eq!(listed["buy_orders"].as_array().unwrap().len(), 1);
}

#[test]
fn clients_pulling_their_own_orders_by_prefix_at_once_each_cancel_exactly_theirs() {
    let server = Server::start();
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let mut client = server.connect();
            std::thread::spawn(move || {
                for round in 0..40 {
                    // Buys below 100 and sells above: nothing ever trades.
                    let orders: Vec<String> = (0..5)
                        .map(|i| {
                            let (side, price) = match i % 2 {
                                0 => (1, 95.0 - i as f64),
                                _ => (-1, 105.0 + i as f64),
                            };
                            named(side, price, 1, &format!("c{k}-{round}-{i}"))
                        })
                        .collect();
                    let body = format!(r#"{{"orders": [{}]}}"#, orders.join(","));
                    client.post("/orders/batch", &body).expect(200);
                    let mine = format!("/orders?client_order_id_prefix=c{k}-");
                    let pulled = client.delete(&mine).expect(200);
                    assert_eq!(pulled["cancelled"], json!(5), "client {k}, round {round}");
                    let left = client.get(&mine).expect(200);
                    assert_eq!(left, json!({"buy_orders": [], "sell_orders": []}));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client thread");
    }
    let mut client = server.connect();
    assert_eq!(client.orders(), (vec![], vec![]));
    // Every order was cancelled by its own client: 4 × 40 × 5.
    let count = "orderbook_command_latency_by_command_histogram_seconds_count{command=\"cancel\"}";
    let cancelled = metric(&client.metrics_text(), count);
    assert_eq!(cancelled, 800.0);
}
