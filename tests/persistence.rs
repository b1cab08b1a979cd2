//! Persistence, black-box: the real binary on a real data directory,
//! stopped with SIGTERM or SIGKILL and started again on the same files.

mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use orderbook::api;
use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, OrderId, OrderView, Side, TimeInForce,
    Trade, MARKET,
};
use orderbook::persist::journal;
use serde_json::{json, Value};
use support::{refused_start, request_bytes, Client, Server, TempDir};

fn price_text(ticks: u64) -> String {
    format!("{}.{:02}", ticks / 100, ticks % 100)
}

/// A place's body; at `MARKET` ticks, a market order's.
fn place_body(side: Side, ticks: u64, quantity: u64) -> String {
    if ticks == MARKET {
        return format!(
            "{{\"type\":\"market\",\"side\":{},\"quantity\":{quantity}}}",
            side as i8
        );
    }
    format!(
        "{{\"side\":{},\"price\":{},\"quantity\":{quantity}}}",
        side as i8,
        price_text(ticks)
    )
}

fn id_of(response: &Value) -> String {
    response["id"].as_str().expect("an id").to_string()
}

/// Everything a client can read of the state, as exact bytes.
fn observe(server: &Server, ids: &[String]) -> Vec<(String, u16, Vec<u8>)> {
    let mut client = server.connect();
    let mut paths = vec!["/orders".to_string(), "/trades?limit=100000".to_string()];
    paths.extend(ids.iter().map(|id| format!("/order/{id}")));
    paths
        .into_iter()
        .map(|path| {
            let response = client.get(&path);
            (path, response.status, response.body)
        })
        .collect()
}

/// Two [`observe`]s read the same bytes, path by path.
fn assert_same_reads(before: &[(String, u16, Vec<u8>)], after: &[(String, u16, Vec<u8>)]) {
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(after) {
        assert_eq!(
            (b.0.as_str(), b.1, String::from_utf8_lossy(&b.2)),
            (a.0.as_str(), a.1, String::from_utf8_lossy(&a.2))
        );
    }
}

#[test]
fn a_restart_after_sigterm_shows_the_same_orders_trades_and_finished_orders() {
    let dir = TempDir::new("restart");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let mut ids = Vec::new();
    for (side, ticks, quantity) in [
        (Side::Sell, 10_000, 5),
        (Side::Sell, 10_050, 7),
        (Side::Buy, 9_900, 4),
        (Side::Buy, 10_000, 3),  // trades 3 of the first sell
        (Side::Buy, 10_100, 10), // fills the rest of both sells, rests 0
        (Side::Sell, 9_800, 1),  // trades with the 9,900 bid
        (Side::Buy, 9_700, 6),
    ] {
        ids.push(id_of(
            &client
                .post("/order/", &place_body(side, ticks, quantity))
                .expect(200),
        ));
    }
    client
        .request("DELETE", &format!("/order/{}", ids[6]), None)
        .expect(200);
    client
        .request(
            "PUT",
            &format!("/order/{}", ids[2]),
            Some("{\"quantity\":2}"),
        )
        .expect(200);
    let before = observe(&server, &ids);
    assert!(before.iter().all(|(_, status, _)| *status == 200));
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
    let state: Value =
        serde_json::from_slice(&fs::read(dir.0.join("order_book_state.json")).unwrap()).unwrap();
    assert_eq!(state["seq"], 9, "7 places, a cancel and a modify");
    assert_eq!(state["trades"].as_array().unwrap().len(), 4);

    let server = Server::start_in(&dir.0, &[]);
    let after = observe(&server, &ids);
    assert_same_reads(&before, &after);
    // Trade numbering goes on where it stopped.
    let mut client = server.connect();
    client
        .post("/order/", &place_body(Side::Sell, 9_700, 1))
        .expect(200);
    let trades = client.get("/trades?limit=1").expect(200);
    assert_eq!(trades[0]["unique_id"].as_str().unwrap(), {
        let mut text = String::new();
        api::write_uuid(&mut text, api::trade_uuid(5));
        text
    });
}

/// At a tick of one hundred-millionth, prices such as 76771.77748507 (one
/// in seven between 10,000 and 100,000) were refused when placed, and a
/// state file holding one could not be loaded: read through a float, they
/// landed off the grid. They are placed, traded, saved and restored
/// exactly.
#[test]
fn prices_of_many_digits_are_placed_saved_and_restored_exactly() {
    let dir = TempDir::new("satoshi");
    let args = ["--tick-size", "0.00000001"];
    let mut server = Server::start_in(&dir.0, &args);
    let mut client = server.connect();
    let mut ids = Vec::new();
    for (side, price, quantity) in [
        (-1, "76771.77748507", 5),
        (1, "70783.79813945", 2),
        (1, "76771.77748507", 3), // trades 3 at the sell's price
    ] {
        let body = format!(r#"{{"side": {side}, "price": {price}, "quantity": {quantity}}}"#);
        let placed = client.post("/order/", &body).expect(200);
        assert_eq!(placed["price"].to_string(), price);
        ids.push(id_of(&placed));
    }
    let before = observe(&server, &ids);
    let trades = client.get("/trades").expect(200);
    assert_eq!(trades[0]["price"].to_string(), "76771.77748507");
    assert_eq!(trades[0]["quantity"], 3);
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
    let state = fs::read_to_string(dir.0.join("order_book_state.json")).unwrap();
    assert!(state.contains("\"price\":70783.79813945"), "{state}");

    // The journal has nothing past the state file: the start loads it alone.
    let server = Server::start_in(&dir.0, &args);
    let after = observe(&server, &ids);
    assert_same_reads(&before, &after);
    let mut client = server.connect();
    assert_eq!(client.get("/trades").expect(200), trades);
}

#[test]
fn time_in_force_and_market_outcomes_are_restored_after_kill_9_and_after_sigterm() {
    let dir = TempDir::new("time-in-force");
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let mut ids = Vec::new();
    let mut place = |client: &mut Client, body: &str| -> Value {
        let placed = client.post("/order/", body).expect(200);
        ids.push(id_of(&placed));
        placed
    };
    place(&mut client, &place_body(Side::Sell, 10_000, 5));
    place(&mut client, &place_body(Side::Sell, 10_050, 7));
    place(&mut client, &place_body(Side::Buy, 9_900, 4));
    let ioc = r#"{"side":1,"price":100.25,"quantity":8,"time_in_force":"IOC"}"#;
    let ioc = place(&mut client, ioc);
    assert_eq!(
        (&ioc["status"], &ioc["filled_quantity"]),
        (&"cancelled".into(), &5.into())
    );
    let killed = r#"{"side":1,"price":101.0,"quantity":20,"time_in_force":"FOK"}"#;
    let killed = place(&mut client, killed);
    assert_eq!(
        (&killed["status"], &killed["filled_quantity"]),
        (&"cancelled".into(), &0.into())
    );
    let filled = r#"{"side":-1,"price":99.0,"quantity":4,"time_in_force":"fok"}"#;
    assert_eq!(place(&mut client, filled)["status"], "filled");
    client
        .post(
            "/order/",
            r#"{"side":1,"price":100.5,"quantity":1,"post_only":true}"#,
        )
        .expect_detail(
            422,
            "post_only: the order would trade on arrival; it was not placed",
        );
    let maker = r#"{"side":-1,"price":100.75,"quantity":2,"post_only":true}"#;
    assert_eq!(place(&mut client, maker)["status"], "open");
    // Market orders: one sweeping 100.5 and into 100.75, one meeting no bid.
    let market = place(&mut client, r#"{"type":"market","side":1,"quantity":8}"#);
    assert_eq!(
        (&market["status"], &market["filled_quantity"]),
        (&"filled".into(), &8.into())
    );
    let unmet = r#"{"type":"market","side":-1,"quantity":1,"time_in_force":"FOK"}"#;
    assert_eq!(place(&mut client, unmet)["status"], "cancelled");

    let before = observe(&server, &ids);
    assert!(before.iter().all(|(_, status, _)| *status == 200));
    let fetched: Value = serde_json::from_slice(&before[2 + 3].2).unwrap();
    assert_eq!(
        (
            &fetched["status"],
            &fetched["traded_quantity"],
            &fetched["order_alive"]
        ),
        (&"cancelled".into(), &5.into(), &false.into()),
        "the IOC's rest was cancelled, not rested"
    );
    let same_as_before = |server: &Server, when: &str| {
        for (b, a) in before.iter().zip(&observe(server, &ids)) {
            assert_eq!(
                (b.0.as_str(), b.1, String::from_utf8_lossy(&b.2)),
                (a.0.as_str(), a.1, String::from_utf8_lossy(&a.2)),
                "{when}"
            );
        }
    };
    // The journal alone (the refused post-only place is in it too), then
    // the state file.
    after_kill_9_and_sigterm(server, &dir, same_as_before);
}

/// Kills `server` (running in `dir` with no flags) with `kill -9`,
/// restarts it and runs `check` (the journal alone), then stops it with
/// SIGTERM, restarts it and runs `check` again (the state file).
fn after_kill_9_and_sigterm(server: Server, dir: &TempDir, check: impl Fn(&Server, &str)) {
    after_kill_9_and_sigterm_with(server, dir, &[], check);
}

/// [`after_kill_9_and_sigterm`], each start with `args`.
fn after_kill_9_and_sigterm_with(
    mut server: Server,
    dir: &TempDir,
    args: &[&str],
    check: impl Fn(&Server, &str),
) {
    server.kill9();
    let mut server = Server::start_in(&dir.0, args);
    check(&server, "after kill -9");
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
    let server = Server::start_in(&dir.0, args);
    check(&server, "after SIGTERM");
}

/// One trade of 1 at `ticks`: a sell, then a buy that meets it.
fn trade_one_at(client: &mut Client, ticks: u64) {
    client
        .post("/order/", &place_body(Side::Sell, ticks, 1))
        .expect(200);
    client
        .post("/order/", &place_body(Side::Buy, ticks, 1))
        .expect(200);
}

/// A history holding exactly `--trade-history` trades from trade 1 on
/// dropped none: after a restart its candles and its ticker's window are
/// whole as before, not short of the oldest second.
#[test]
fn a_trade_history_just_full_from_trade_1_keeps_every_candle_after_a_restart() {
    let dir = TempDir::new("just-full");
    let args = ["--trade-history", "3"];
    let server = Server::start_in(&dir.0, &args);
    let mut client = server.connect();
    for ticks in [10_000, 10_100, 10_200] {
        trade_one_at(&mut client, ticks);
    }
    let read = |server: &Server| {
        let mut client = server.connect();
        let minutes = client.get("/candles?interval=60").expect(200);
        let ticker = client.get("/ticker").expect(200);
        (minutes, ticker["last_24h"].clone())
    };
    let (minutes, day) = read(&server);
    assert_eq!(minutes.as_array().unwrap().len(), 1, "{minutes}");
    assert_eq!(
        (&minutes[0]["trades"], &day["trades"]),
        (&json!(3), &json!(3))
    );
    after_kill_9_and_sigterm_with(server, &dir, &args, |server, when| {
        let (minutes_now, day_now) = read(server);
        assert_eq!(minutes_now, minutes, "{when}");
        // The window starts a day back, not at the oldest trade.
        let from = |day: &Value| api::parse_timestamp(day["from"].as_str().unwrap()).unwrap();
        let oldest = api::parse_timestamp(minutes[0]["start"].as_str().unwrap()).unwrap();
        assert!(from(&day_now) < oldest, "{when}: {day_now}");
        assert_eq!(day_now["trades"], json!(3), "{when}");
    });
}

/// A history that dropped a trade of an earlier second than its oldest
/// kept knows so after a restart: the candles that were whole stay shown.
/// The state file did not say where the dropped trade was, and a restart
/// left out the oldest kept second (and every interval reaching back to
/// it) as if it had lost one.
#[test]
fn a_restart_knows_which_second_the_trade_history_dropped_a_trade_of() {
    let dir = TempDir::new("dropped-second");
    let args = ["--trade-history", "2"];
    let server = Server::start_in(&dir.0, &args);
    let mut client = server.connect();
    for (i, ticks) in [10_000, 10_100, 10_200].into_iter().enumerate() {
        if i > 0 {
            // Each trade in a second of its own.
            thread::sleep(Duration::from_millis(1_100));
        }
        trade_one_at(&mut client, ticks);
    }
    let read = |server: &Server| {
        let mut client = server.connect();
        let seconds = client.get("/candles?interval=1").expect(200);
        let minutes = client.get("/candles?interval=60").expect(200);
        (seconds, minutes)
    };
    let (seconds, minutes) = read(&server);
    // The first trade's second is left out; the two kept ones are whole.
    let trades: Vec<&Value> = seconds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["trades"])
        .collect();
    assert_eq!(trades, [&json!(1), &json!(1)], "{seconds}");
    after_kill_9_and_sigterm_with(server, &dir, &args, |server, when| {
        assert_eq!(read(server), (seconds.clone(), minutes.clone()), "{when}");
    });
}

#[test]
fn the_ticker_and_candles_read_the_same_after_kill_9_and_after_sigterm() {
    let dir = TempDir::new("ticker");
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    for (side, ticks, quantity) in [
        (Side::Sell, 10_000, 3),
        (Side::Sell, 10_150, 4),
        (Side::Buy, 9_900, 2),
    ] {
        client
            .post("/order/", &place_body(side, ticks, quantity))
            .expect(200);
    }
    client
        .post("/order/", r#"{"type":"market","side":1,"quantity":5}"#)
        .expect(200);
    // The window's start moves with the clock; the rest must not. The
    // candles are rebuilt from the kept trades too.
    let read = |server: &Server| {
        let mut client = server.connect();
        let mut ticker = client.get("/ticker").expect(200);
        ticker["last_24h"].as_object_mut().unwrap().remove("from");
        let seconds = client.get("/candles?interval=1").expect(200);
        (ticker, seconds)
    };
    let before = read(&server);
    assert_eq!(before.0["last_24h"]["volume"], 5);
    let seconds = before.1.as_array().unwrap();
    let traded: u64 = seconds.iter().map(|c| c["volume"].as_u64().unwrap()).sum();
    assert_eq!(traded, 5);
    after_kill_9_and_sigterm(server, &dir, |server, when| {
        assert_eq!(read(server), before, "{when}");
    });
}

#[test]
fn a_state_file_of_the_original_service_is_loaded() {
    let dir = TempDir::new("original");
    let original = r#"{"buy_orders": [{"id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "quantity": 10, "price": 99.5, "side": 1, "status": "partially filled", "filled_quantity": 4, "average_traded_price": 99.5, "traded_quantity": 4, "order_alive": true}],
 "sell_orders": [{"id": "1c8e5b8d-3b2c-4d0f-8b0c-1a6c0e9d5b22", "quantity": 3, "price": 101.0, "side": -1, "status": "open", "filled_quantity": 0, "average_traded_price": 0, "traded_quantity": 0, "order_alive": true}],
 "trades": [{"unique_id": "2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33", "execution_timestamp": "2024-05-01T12:00:00.250000", "buy_order_id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "sell_order_id": "3e6a3b6f-1f0a-4f8b-8f1a-9e4c0c7b3a44", "price": 99.5, "quantity": 4}]}"#;
    fs::write(dir.0.join("order_book_state.json"), original).unwrap();
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let orders = client.get("/orders").expect(200);
    assert_eq!(
        orders,
        serde_json::json!({
            "buy_orders": [{"id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "quantity": 10, "price": 99.5, "side": 1, "status": "partially filled", "filled_quantity": 4, "average_traded_price": 99.5, "traded_quantity": 4, "order_alive": true}],
            "sell_orders": [{"id": "1c8e5b8d-3b2c-4d0f-8b0c-1a6c0e9d5b22", "quantity": 3, "price": 101.0, "side": -1, "status": "open", "filled_quantity": 0, "average_traded_price": 0, "traded_quantity": 0, "order_alive": true}]
        })
    );
    let trades = client.get("/trades").expect(200);
    assert_eq!(
        trades,
        serde_json::json!([{"unique_id": "2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33", "execution_timestamp": "2024-05-01T12:00:00.250000Z", "buy_order_id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "sell_order_id": "3e6a3b6f-1f0a-4f8b-8f1a-9e4c0c7b3a44", "price": 99.5, "quantity": 4}])
    );
    // The loaded orders trade like any other.
    client
        .post("/order/", &place_body(Side::Sell, 9_950, 6))
        .expect(200);
    let bid = client
        .get("/order/0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11")
        .expect(200);
    assert_eq!(bid["traded_quantity"], 10);
    assert_eq!(bid["status"], "filled");
    // Its file does not say whether its trades start at its first: trade
    // 0's id cannot promise a page from the start, and says so; the
    // loaded trade's own id pages on from it.
    client
        .get("/trades?after=00000000-0000-4000-8000-000000000000")
        .expect_detail(
            404,
            "Trade not found: the oldest trades kept were loaded from the original service's state file, which does not say whether its first trade is among them (?after= the oldest's unique_id pages on from it; ?before= pages back from the newest)",
        );
    let after = client
        .get("/trades?after=2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33")
        .expect(200);
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    // Numbered after the original's one trade: ours is trade 2, never 1,
    // so no history can claim to start at trade 1 once its trade is gone.
    assert_eq!(
        after[0]["unique_id"],
        "00000000-0000-4000-8000-000000000002"
    );
}

/// A history filled since the original service's file was loaded, with
/// no trade dropped, keeps its candles and its ticker's window across a
/// restart under the same `--trade-history`. The original's file does not
/// say whether its trades were all; the state file written since left it
/// unsaid too, so the next start took the full history to have dropped a
/// trade before its oldest and left out its oldest minute (probe 23).
#[test]
fn a_history_filled_since_the_original_services_file_keeps_its_candles_across_a_restart() {
    let dir = TempDir::new("original-filled");
    let original = r#"{"buy_orders": [], "sell_orders": [],
 "trades": [{"unique_id": "2d7f4c7e-2a1b-4e9a-9a0b-0f5b1d8c4a33", "execution_timestamp": "2024-05-01T12:00:00.250000", "buy_order_id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "sell_order_id": "3e6a3b6f-1f0a-4f8b-8f1a-9e4c0c7b3a44", "price": 99.5, "quantity": 4}]}"#;
    fs::write(dir.0.join("order_book_state.json"), original).unwrap();
    let history = ["--trade-history", "3"];
    let server = Server::start_in(&dir.0, &history);
    let mut client = server.connect();
    trade_one_at(&mut client, 10_000);
    trade_one_at(&mut client, 10_001);
    let read = |server: &Server| {
        let mut client = server.connect();
        let minutes = client.get("/candles?interval=60").expect(200);
        let ticker = client.get("/ticker").expect(200);
        (minutes, ticker["last_24h"]["trades"].clone())
    };
    let before = read(&server);
    assert_eq!(
        before.0.as_array().unwrap().len(),
        2,
        "2024's minute and now's"
    );
    assert_eq!(before.1, 2, "the ticker's day: today's two trades");
    drop(client);
    let mut server = server;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    let state = fs::read_to_string(dir.0.join("order_book_state.json")).unwrap();
    assert!(
        state.contains("\"trades_dropped_until\":0"),
        "said: none dropped"
    );
    let server = Server::start_in(&dir.0, &history);
    assert_eq!(read(&server), before, "after SIGTERM");
    after_kill_9_and_sigterm_with(server, &dir, &history, |server, when| {
        assert_eq!(read(server), before, "{when}");
    });
}

/// After a run that kept no trades, a restart that keeps some has none
/// kept yet: trade 0's id must not page "from the start" with an empty
/// page, as if no trade had been made (probe 23).
#[test]
fn trade_zero_finds_no_page_from_the_start_after_a_run_that_kept_no_trades() {
    let dir = TempDir::new("history-none-then-some");
    let mut server = Server::start_in(&dir.0, &["--trade-history", "0"]);
    trade_one_at(&mut server.connect(), 10_000);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    let server = Server::start_in(&dir.0, &["--trade-history", "5"]);
    let mut client = server.connect();
    client
        .get("/trades?after=00000000-0000-4000-8000-000000000000")
        .expect_detail(
            404,
            "Trade not found: the first trade is not among the 0 trades kept, \
             so a page from the start would hide a gap (?before= pages back from the newest)",
        );
    // A service that never traded pages from the start, empty.
    let fresh = Server::start();
    let page = fresh
        .connect()
        .get("/trades?after=00000000-0000-4000-8000-000000000000")
        .expect(200);
    assert_eq!(page, serde_json::json!([]));
}

#[test]
fn the_state_file_setting_puts_it_anywhere_and_the_original_services_file_loads_from_there() {
    let dir = TempDir::new("state-file-data");
    let elsewhere = TempDir::new("state-file-elsewhere");
    // An absolute path outside the data directory, holding a file of the
    // original service.
    let state = elsewhere.0.join("legacy").join("book.json");
    fs::create_dir_all(state.parent().unwrap()).unwrap();
    fs::write(
        &state,
        r#"{"buy_orders": [{"id": "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "quantity": 10, "price": 99.5, "side": 1, "status": "open", "filled_quantity": 0, "average_traded_price": 0, "traded_quantity": 0, "order_alive": true}], "sell_orders": [], "trades": []}"#,
    )
    .unwrap();
    let setting = state.to_str().unwrap();
    let mut server = Server::start_in(&dir.0, &["--state-file", setting]);
    let mut client = server.connect();
    let loaded = client.get("/orders").expect(200);
    assert_eq!(
        loaded["buy_orders"][0]["id"],
        "0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11"
    );
    let placed = id_of(
        &client
            .post("/order/", &place_body(Side::Sell, 10_100, 3))
            .expect(200),
    );
    let before = client.get("/orders").expect(200);
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());

    // Rewritten where the setting says, in our layout; nothing in the data
    // directory but the journal and the lock.
    let saved: Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["seq"], 1);
    assert_eq!(saved["sell_orders"][0]["id"], Value::String(placed));
    assert!(!dir.0.join("order_book_state.json").exists());
    assert!(!state.with_file_name("book.json.tmp").exists());

    // A restart with the same setting reads it back.
    let server = Server::start_in(&dir.0, &["--state-file", setting]);
    assert_eq!(server.connect().get("/orders").expect(200), before);
    drop(server);

    // A relative path is inside the data directory; its directory is made
    // at start.
    let dir = TempDir::new("state-file-relative");
    let mut server = Server::start_in(&dir.0, &["--state-file", "books/main.json"]);
    server
        .connect()
        .post("/order/", &place_body(Side::Buy, 9_000, 1))
        .expect(200);
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
    let saved: Value =
        serde_json::from_slice(&fs::read(dir.0.join("books").join("main.json")).unwrap()).unwrap();
    assert_eq!(saved["buy_orders"].as_array().unwrap().len(), 1);
}

/// The journal and the state file's traded values count in ticks: a
/// restart under another `--tick-size` moved every price (a bid at
/// 12345.65 on 0.05 came back at 2469.13 on 0.01). It is refused, after a
/// kill -9 (the journal) and a SIGTERM (the state file) alike, leaving the
/// data as it was; under the same tick the book comes back as it was.
#[test]
fn a_restart_under_another_tick_size_is_refused_and_the_same_tick_keeps_every_price() {
    let dir = TempDir::new("tick-size");
    let tick = ["--tick-size", "0.05"];
    let mut server = Server::start_in(&dir.0, &tick);
    let mut client = server.connect();
    let bid = client.place_id(1, 12345.65, 5);
    client.place(-1, 12345.0, 2); // trades 2 at 12345.65
    let before = client.order(&bid);
    assert_eq!(before["average_traded_price"], 12345.65);
    let tick_file = dir.0.join("tick_size");
    assert_eq!(fs::read_to_string(&tick_file).unwrap(), "0.05\n");

    let refused_with = |args: &[&str], subject: &str| {
        let (status, stderr) = refused_start(&dir.0, args);
        assert!(!status.success(), "started under {args:?}");
        let why = "was written with --tick-size 0.05, and this start has --tick-size 0.01";
        assert!(stderr.contains(why) && stderr.contains(subject), "{stderr}");
    };
    server.kill9();
    let journal = journal_files(&dir.0);
    let journal_bytes: Vec<Vec<u8>> = journal.iter().map(|p| fs::read(p).unwrap()).collect();
    refused_with(&["--tick-size", "0.01"], "the journal in");
    refused_with(&[], "the journal in");
    let left: Vec<Vec<u8>> = journal.iter().map(|p| fs::read(p).unwrap()).collect();
    assert_eq!(left, journal_bytes, "the journal is left as it was");
    assert_eq!(fs::read_to_string(&tick_file).unwrap(), "0.05\n");
    // --print-journal writes prices in the journal's tick, whatever the flag.
    let (status, stdout, _) = print_journal_with(&dir.0, &["--tick-size", "0.01"]);
    assert!(status.success());
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains("\"price\":12345.65"),
        "{stdout}"
    );

    let mut server = Server::start_in(&dir.0, &tick);
    let mut client = server.connect();
    assert_eq!(client.order(&bid), before);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    // A journal whose record is gone is refused under any tick, its own
    // too: taken on trust, another tick re-priced every order five times
    // over, and was then recorded as the journal's. Written back, it
    // starts.
    fs::remove_file(&tick_file).unwrap();
    for args in [&["--tick-size", "0.01"][..], &tick] {
        let (status, stderr) = refused_start(&dir.0, args);
        assert_eq!(status.code(), Some(1), "started under {args:?}");
        assert!(
            stderr.contains("has no record of its tick")
                && stderr.contains("write the --tick-size it was written with"),
            "{stderr}"
        );
    }
    assert!(!tick_file.exists(), "a refused start records nothing");
    fs::write(&tick_file, "0.05\n").unwrap();
    let mut server = Server::start_in(&dir.0, &tick);
    assert_eq!(server.connect().order(&bid), before);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    // The state file says its tick too (it may live outside the data
    // directory): read from a fresh one under another tick, it is refused,
    // and that data directory is left without a record.
    let fresh = TempDir::new("tick-size-fresh");
    let state = dir.0.join("order_book_state.json");
    let state = state.to_str().unwrap();
    let (status, stderr) = refused_start(&fresh.0, &["--tick-size", "0.01", "--state-file", state]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("was written with --tick-size 0.05, and this start has --tick-size 0.01")
            && stderr.contains("order_book_state.json"),
        "{stderr}"
    );
    assert!(
        !fresh.0.join("tick_size").exists(),
        "a refused start records nothing"
    );
}

/// A service pointed at another instrument's data directory would trade
/// that book's orders as its own: a start under another `--symbol` is
/// refused, and the journal left as it was.
#[test]
fn a_restart_under_another_symbol_is_refused_and_the_same_symbol_keeps_the_book() {
    let dir = TempDir::new("symbol");
    let eth = ["--symbol", "ETH-USD"];
    let mut server = Server::start_in(&dir.0, &eth);
    let mut client = server.connect();
    let bid = client.place_id(1, 2000.0, 5);
    let before = client.order(&bid);
    let symbol_file = dir.0.join("symbol");
    assert_eq!(fs::read_to_string(&symbol_file).unwrap(), "ETH-USD\n");
    server.kill9();
    let journal = journal_files(&dir.0);
    let journal_bytes: Vec<Vec<u8>> = journal.iter().map(|p| fs::read(p).unwrap()).collect();
    for args in [&["--symbol", "BTC-USD"][..], &[]] {
        let (status, stderr) = refused_start(&dir.0, args);
        assert_eq!(status.code(), Some(1), "started under {args:?}");
        let other = args.get(1).copied().unwrap_or("DEFAULT");
        let why = format!(
            "was written with --symbol ETH-USD, and this start has --symbol {other}: \
             its orders are for ETH-USD; start with --symbol ETH-USD"
        );
        assert!(stderr.contains(&why), "{stderr}");
    }
    let left: Vec<Vec<u8>> = journal.iter().map(|p| fs::read(p).unwrap()).collect();
    assert_eq!(left, journal_bytes, "the journal is left as it was");
    let server = Server::start_in(&dir.0, &eth);
    assert_eq!(server.connect().order(&bid), before);

    // A journal whose record is gone is refused until it is written back.
    drop(server);
    fs::remove_file(&symbol_file).unwrap();
    let (status, stderr) = refused_start(&dir.0, &eth);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("has no record of its symbol"), "{stderr}");
    assert!(!symbol_file.exists());
    // A data directory from before either was recorded lacks both: one
    // start names both, not one and then the other.
    let tick_file = dir.0.join("tick_size");
    fs::remove_file(&tick_file).unwrap();
    let (status, stderr) = refused_start(&dir.0, &eth);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("has no record of its tick")
            && stderr.contains("has no record of its symbol"),
        "{stderr}"
    );
    fs::write(&tick_file, "0.01\n").unwrap();
    fs::write(&symbol_file, "ETH-USD\n").unwrap();
    let server = Server::start_in(&dir.0, &eth);
    assert_eq!(server.connect().order(&bid), before);
}

#[test]
fn a_corrupt_state_file_stops_the_start_and_is_left_as_it_was() {
    let dir = TempDir::new("corrupt-state");
    let path = dir.0.join("order_book_state.json");
    let bytes = b"{\"buy_orders\":[{\"id\":\"0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11\",\"quantity\":1";
    fs::write(&path, bytes).unwrap();
    let (status, stderr) = refused_start(&dir.0, &[]);
    assert!(!status.success(), "started over a corrupt state file");
    assert!(stderr.contains("order_book_state.json"), "{stderr}");
    assert!(stderr.contains("EOF"), "names the problem: {stderr}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

/// A state file that is still good JSON but had one byte changed after it
/// was written (a resting quantity 8 read as 9 before the checksum) stops
/// the start, and is left as it was.
#[test]
fn a_state_file_changed_after_it_was_written_is_refused_by_its_checksum() {
    let dir = TempDir::new("crc-state");
    let mut server = Server::start_in(&dir.0, &[]);
    let id = server.connect().place_id(1, 100.0, 8);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    drop(server);
    let path = dir.0.join("order_book_state.json");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""quantity":8,"#), "{text}");
    let damaged = text.replacen(r#""quantity":8,"#, r#""quantity":9,"#, 1);
    fs::write(&path, &damaged).unwrap();
    let (status, stderr) = refused_start(&dir.0, &[]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("order_book_state.json is unusable: crc32: the file's bytes have CRC-32"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), damaged);
    // Put back, it loads.
    fs::write(&path, &text).unwrap();
    let server = Server::start_in(&dir.0, &[]);
    assert_eq!(server.connect().order(&id)["order_quantity"], 8);
}

fn journal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("journal-")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_torn_journal_tail_is_cut_and_damage_before_it_stops_the_start() {
    let dir = TempDir::new("torn");
    let mut server = Server::start_in(&dir.0, &["--snapshot-interval", "0"]);
    let mut client = server.connect();
    let ids: Vec<String> = (0..50)
        .map(|i| {
            id_of(
                &client
                    .post("/order/", &place_body(Side::Buy, 9_000 + i, 1))
                    .expect(200),
            )
        })
        .collect();
    let before = observe(&server, &ids);
    server.kill9();
    let files = journal_files(&dir.0);
    let newest = files.last().unwrap().clone();
    let good = fs::read(&newest).unwrap();
    // The first half of a next record, as a crash in mid-write leaves it.
    let mut record = Vec::new();
    journal::write_record(
        &mut record,
        &journal::Record::new(
            51,
            Command {
                ts: 1,
                kind: CommandKind::Cancel { id: 7 },
            },
        ),
    );
    let half = record.len() / 2;
    let mut torn = good.clone();
    torn.extend_from_slice(&record[..half]);
    fs::write(&newest, &torn).unwrap();

    let mut server = Server::start_in(&dir.0, &["--snapshot-interval", "0"]);
    assert_eq!(observe(&server, &ids), before);
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("cut a torn last record ({half} bytes)")),
        "{stderr}"
    );
    assert_eq!(
        fs::read(&newest).unwrap(),
        good,
        "cut back to the last good record"
    );
    server.kill9();

    // A damaged record with good records after it is corruption.
    let mut damaged = good.clone();
    damaged[40] ^= 0x55;
    fs::write(&newest, &damaged).unwrap();
    let (status, stderr) = refused_start(&dir.0, &[]);
    assert!(!status.success());
    assert!(
        stderr.contains(newest.file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert_eq!(fs::read(&newest).unwrap(), damaged, "left as it was");
}

// ---------------------------------------------------------------------------
// The crash loop.

/// One client command, in the global order the server received it.
#[derive(Clone, Debug)]
enum Op {
    /// `id` is known once acknowledged (or learnt after a crash).
    Place {
        id: Option<OrderId>,
        side: Side,
        ticks: u64,
        quantity: u64,
        /// Every second place is named (`client_order_id`), never twice.
        name: Option<String>,
    },
    Cancel(OrderId),
    Modify {
        id: OrderId,
        ticks: Option<u64>,
        quantity: Option<u64>,
    },
}

/// Placeholder ids for places whose answer never came.
const UNKNOWN: u128 = 1 << 127;

/// Replays `ops` on a fresh engine: the independent model of the server.
fn replay(ops: &[Op]) -> (OrderBook, Vec<Trade>) {
    let mut book = OrderBook::new(BookConfig {
        order_capacity: 1 << 12,
        level_capacity: 64,
        finished_capacity: 1_000_000,
        resident: false,
        sparse_index: false,
    });
    let mut trades = Vec::new();
    let mut events = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let kind = match *op {
            Op::Place {
                id,
                side,
                ticks,
                quantity,
                ..
            } => CommandKind::Place {
                id: id.unwrap_or(UNKNOWN + n as u128),
                side,
                price: ticks,
                quantity,
                tif: if ticks == MARKET {
                    TimeInForce::ImmediateOrCancel
                } else {
                    TimeInForce::GoodTillCancel
                },
            },
            Op::Cancel(id) => CommandKind::Cancel { id },
            Op::Modify {
                id,
                ticks,
                quantity,
            } => CommandKind::Modify {
                id,
                price: ticks,
                quantity,
            },
        };
        events.clear();
        book.apply(&Command { ts: 0, kind }, &mut events);
        trades.extend(events.iter().filter_map(|e| match e {
            Event::Trade(t) => Some(*t),
            _ => None,
        }));
    }
    (book, trades)
}

/// The server's resting orders and trades, as the model's types.
struct Seen {
    resting: Vec<OrderView>,
    trades: Vec<(OrderId, OrderId, u64, u64)>,
}

fn see(server: &Server) -> Seen {
    let mut client = server.connect();
    let orders = client.get("/orders").expect(200);
    let mut resting = Vec::new();
    for (key, side) in [("buy_orders", Side::Buy), ("sell_orders", Side::Sell)] {
        for order in orders[key].as_array().unwrap() {
            let filled = order["filled_quantity"].as_u64().unwrap();
            resting.push(OrderView {
                id: api::parse_uuid(order["id"].as_str().unwrap()).unwrap(),
                side,
                price: (order["price"].as_f64().unwrap() * 100.0).round() as u64,
                quantity: order["quantity"].as_u64().unwrap(),
                filled,
                notional: 0,
                status: if filled > 0 {
                    orderbook::engine::OrderStatus::PartiallyFilled
                } else {
                    orderbook::engine::OrderStatus::Open
                },
            });
        }
    }
    let trades = client
        .get("/trades?limit=100000")
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                api::parse_uuid(t["buy_order_id"].as_str().unwrap()).unwrap(),
                api::parse_uuid(t["sell_order_id"].as_str().unwrap()).unwrap(),
                (t["price"].as_f64().unwrap() * 100.0).round() as u64,
                t["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    Seen { resting, trades }
}

/// Trades the crash loop's server keeps (`--trade-history`): a few cycles'
/// worth, so that each run checks both a history holding every trade and
/// one holding only the newest, restored across kills.
const CRASH_LOOP_TRADES_KEPT: usize = 10_000;

/// Whether the model's state matches what the server shows (its newest
/// [`CRASH_LOOP_TRADES_KEPT`] trades); ids the model does not know
/// (placeholders) match any id, and are learnt into `learnt`.
fn matches(model: &(OrderBook, Vec<Trade>), seen: &Seen, learnt: &mut HashMap<u128, u128>) -> bool {
    let mut same_id = |ours: u128, theirs: u128| {
        if ours >= UNKNOWN {
            *learnt.entry(ours).or_insert(theirs) == theirs
        } else {
            ours == theirs
        }
    };
    let resting: Vec<OrderView> = model
        .0
        .resting(Side::Buy)
        .chain(model.0.resting(Side::Sell))
        .collect();
    let kept = &model.1[model.1.len().saturating_sub(CRASH_LOOP_TRADES_KEPT)..];
    if resting.len() != seen.resting.len() || kept.len() != seen.trades.len() {
        return false;
    }
    for (ours, theirs) in resting.iter().zip(&seen.resting) {
        if !same_id(ours.id, theirs.id)
            || (ours.side, ours.price, ours.quantity, ours.filled)
                != (theirs.side, theirs.price, theirs.quantity, theirs.filled)
        {
            return false;
        }
    }
    for (ours, theirs) in kept.iter().zip(&seen.trades) {
        if !same_id(ours.buy_order(), theirs.0)
            || !same_id(ours.sell_order(), theirs.1)
            || (ours.price, ours.quantity) != (theirs.2, theirs.3)
        {
            return false;
        }
    }
    true
}

/// What the clients share: the lock that orders their bursts globally.
struct Shared {
    rng: u64,
    /// Every acknowledged op, in server order.
    acked: Vec<Op>,
    /// The ops of the burst that was cut by the kill, in order.
    unacked: Vec<Op>,
    /// Resting ids the model knows, to cancel and modify.
    resting: Vec<OrderId>,
    /// Set once a burst failed: the server is gone.
    dead: bool,
    /// Places made so far, to name every second one uniquely.
    places: u64,
}

impl Shared {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn random_op(&mut self) -> Op {
        let roll = self.next() % 10;
        if roll < 2 && !self.resting.is_empty() {
            let at = (self.next() % self.resting.len() as u64) as usize;
            let id = self.resting[at];
            return Op::Cancel(id);
        }
        if roll < 3 && !self.resting.is_empty() {
            let at = (self.next() % self.resting.len() as u64) as usize;
            let id = self.resting[at];
            let quantity = Some(1 + self.next() % 12);
            let ticks = (self.next().is_multiple_of(2)).then(|| 9_995 + self.next() % 10);
            return Op::Modify {
                id,
                ticks,
                quantity,
            };
        }
        let side = if self.next().is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        };
        // Prices straddle 100.00, so about half the places cross; one in
        // ten is a market order.
        let ticks = if self.next().is_multiple_of(10) {
            MARKET
        } else {
            9_995 + self.next() % 10
        };
        self.places += 1;
        Op::Place {
            id: None,
            side,
            ticks,
            quantity: 1 + self.next() % 10,
            name: self
                .places
                .is_multiple_of(2)
                .then(|| format!("cl-{}", self.places)),
        }
    }
}

fn request_of(op: &Op) -> Vec<u8> {
    match op {
        Op::Place {
            side,
            ticks,
            quantity,
            name,
            ..
        } => {
            let mut body = place_body(*side, *ticks, *quantity);
            if let Some(name) = name {
                body.pop();
                body.push_str(&format!(",\"client_order_id\":\"{name}\"}}"));
            }
            request_bytes("POST", "/order/", Some(&body))
        }
        Op::Cancel(id) => request_bytes("DELETE", &format!("/order/{}", uuid(*id)), None),
        Op::Modify {
            id,
            ticks,
            quantity,
        } => {
            let mut fields = Vec::new();
            if let Some(q) = quantity {
                fields.push(format!("\"quantity\":{q}"));
            }
            if let Some(t) = ticks {
                fields.push(format!("\"price\":{}", price_text(*t)));
            }
            request_bytes(
                "PUT",
                &format!("/order/{}", uuid(*id)),
                Some(&format!("{{{}}}", fields.join(","))),
            )
        }
    }
}

fn uuid(id: OrderId) -> String {
    let mut text = String::new();
    api::write_uuid(&mut text, id);
    text
}

/// One client: bursts of 1..=4 pipelined requests while holding the lock.
fn client_loop(mut client: Client, shared: Arc<Mutex<Shared>>) {
    client.set_read_timeout(Duration::from_secs(5));
    loop {
        let mut state = shared.lock().unwrap();
        if state.dead {
            return;
        }
        let burst: Vec<Op> = (0..1 + state.next() % 4)
            .map(|_| state.random_op())
            .collect();
        let bytes: Vec<u8> = burst.iter().flat_map(request_of).collect();
        let sent = client.send_raw(&bytes);
        for (i, op) in burst.iter().enumerate() {
            let answer = sent.as_ref().ok().map(|_| client.read_response());
            let response = match answer {
                Some(Ok(response)) => response,
                _ => {
                    state.unacked = burst[i..].to_vec();
                    state.dead = true;
                    return;
                }
            };
            let mut op = op.clone();
            match (&mut op, response.status) {
                (Op::Place { id, .. }, 200) => {
                    let body = response.json();
                    let placed = api::parse_uuid(body["id"].as_str().unwrap()).unwrap();
                    *id = Some(placed);
                    if body["status"] != "filled" {
                        state.resting.push(placed);
                    }
                }
                (Op::Place { .. }, status) => panic!("place answered {status}"),
                (Op::Cancel(_) | Op::Modify { .. }, 200 | 404 | 422) => {}
                (_, status) => panic!("{op:?} answered {status}"),
            }
            state.acked.push(op);
        }
    }
}

#[test]
fn no_acknowledged_command_is_lost_across_twenty_kill_9_restarts() {
    crash_loop(20, &[]);
}

#[test]
fn under_fsync_no_acknowledged_command_is_lost_across_kill_9_restarts() {
    crash_loop(5, &["--fsync"]);
}

#[test]
fn under_fsync_a_start_gives_back_what_the_last_file_allocated_and_did_not_use() {
    let dir = TempDir::new("fsync-room");
    let segment: u64 = 1 << 20;
    let args = ["--fsync", "--journal-segment-bytes", "1048576"];
    let journal_sizes = || -> Vec<u64> {
        let mut files: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("journal-"))
            .map(|entry| (entry.file_name(), entry.metadata().unwrap().len()))
            .collect();
        files.sort();
        files.into_iter().map(|(_, len)| len).collect()
    };
    let mut ids = Vec::new();
    // Three runs, each placing an order: stopped by SIGTERM, kill -9, SIGTERM.
    for run in 0..3u64 {
        let mut server = Server::start_in(&dir.0, &args);
        let mut client = server.connect();
        ids.push(client.place_id(1, 90.0 + run as f64, 1 + run));
        assert_eq!(
            *journal_sizes().last().unwrap(),
            segment,
            "allocated up front"
        );
        if run == 1 {
            server.kill9();
        } else {
            server.signal("TERM");
            assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
        }
    }
    let server = Server::start_in(&dir.0, &args);
    let sizes = journal_sizes();
    // Each earlier run's file holds its header and one record; only the
    // file being written keeps its allocation.
    assert_eq!(sizes.len(), 4, "{sizes:?}");
    assert!(sizes[..3].iter().all(|&len| len < 512), "{sizes:?}");
    assert_eq!(sizes[3], segment, "{sizes:?}");
    let mut client = server.connect();
    for (run, id) in ids.iter().enumerate() {
        let order = client.order(id);
        assert_eq!(order["order_quantity"], 1 + run as u64, "{order}");
    }
}

/// `cycles` times: load over 4 connections, `kill -9` at a random moment,
/// restart, and check the book against a replay of what was answered.
fn crash_loop(cycles: usize, extra: &[&str]) {
    let dir = TempDir::new("crash-loop");
    let trades_kept = CRASH_LOOP_TRADES_KEPT.to_string();
    let mut args = vec![
        "--snapshot-interval",
        "1",
        "--journal-segment-bytes",
        "8192",
        "--trade-history",
        &trades_kept,
    ];
    args.extend_from_slice(extra);
    let shared = Arc::new(Mutex::new(Shared {
        rng: 0x9E37_79B9_7F4A_7C15,
        acked: Vec::new(),
        unacked: Vec::new(),
        resting: Vec::new(),
        dead: false,
        places: 0,
    }));
    let mut history: Vec<Op> = Vec::new();
    let mut recovered_unacked = 0;
    for cycle in 0..cycles {
        let mut server = Server::start_in(&dir.0, &args);
        // Before any load: the state is exactly what the model says.
        let seen = see(&server);
        let mut learnt = HashMap::new();
        assert!(
            matches(&replay(&history), &seen, &mut learnt),
            "cycle {cycle}: the restarted server's book differs from the replay of {} commands",
            history.len()
        );
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let client = server.connect();
                let shared = shared.clone();
                thread::spawn(move || client_loop(client, shared))
            })
            .collect();
        let pause = {
            let mut state = shared.lock().unwrap();
            40 + state.next() % 360
        };
        thread::sleep(Duration::from_millis(pause));
        server.kill9();
        for client in clients {
            client.join().unwrap();
        }
        let (acked, unacked) = {
            let mut state = shared.lock().unwrap();
            state.dead = false;
            (
                std::mem::take(&mut state.acked),
                std::mem::take(&mut state.unacked),
            )
        };
        assert!(!acked.is_empty(), "cycle {cycle}: no load was acknowledged");
        history.extend(acked);

        // Restart and find how much of the cut burst the journal kept: a
        // prefix of it, at least nothing, at most all.
        let server = Server::start_in(&dir.0, &args);
        let seen = see(&server);
        let mut kept = None;
        for m in 0..=unacked.len() {
            let mut candidate = history.clone();
            candidate.extend(unacked[..m].iter().cloned());
            let mut learnt = HashMap::new();
            if matches(&replay(&candidate), &seen, &mut learnt) {
                // Name the places whose answers were lost by their real ids.
                let base = history.len();
                for (k, op) in unacked[..m].iter().enumerate() {
                    let mut op = op.clone();
                    if let Op::Place { id, .. } = &mut op {
                        *id = learnt.get(&(UNKNOWN + (base + k) as u128)).copied();
                    }
                    history.push(op);
                }
                kept = Some(m);
                break;
            }
        }
        let kept = kept.unwrap_or_else(|| {
            panic!(
                "cycle {cycle}: the recovered book is no replay of the {} acknowledged commands plus a prefix of the {} unanswered ones",
                history.len(),
                unacked.len()
            )
        });
        recovered_unacked += kept;

        // Every acknowledged order is fetchable with the model's state.
        let (model, _) = replay(&history);
        let mut client = server.connect();
        let names: HashMap<OrderId, Option<String>> = history
            .iter()
            .filter_map(|op| match op {
                Op::Place { id, name, .. } => id.map(|id| (id, name.clone())),
                _ => None,
            })
            .collect();
        let ids: Vec<OrderId> = names.keys().copied().collect();
        // Pipelined in chunks: the server stops reading a client that does
        // not read its answers.
        for chunk in ids.chunks(256) {
            let mut requests = Vec::new();
            for id in chunk {
                requests.extend(request_bytes("GET", &format!("/order/{}", uuid(*id)), None));
            }
            client.send_raw(&requests).unwrap();
            for id in chunk {
                let body = client.read_response().unwrap().expect(200);
                let order = model.order(*id).expect("the model knows it");
                assert_eq!(
                    (
                        body["traded_quantity"].as_u64().unwrap(),
                        body["order_quantity"].as_u64().unwrap(),
                        body["status"].as_str().unwrap(),
                    ),
                    (order.filled, order.quantity, order.status.as_str()),
                    "cycle {cycle}: order {}",
                    uuid(*id)
                );
                // Its name (journaled with the place) came back with it.
                assert_eq!(
                    body["client_order_id"].as_str(),
                    names[id].as_deref(),
                    "cycle {cycle}: order {}",
                    uuid(*id)
                );
            }
        }
        // The model's resting ids for the next cycle.
        let mut state = shared.lock().unwrap();
        state.resting = model
            .resting(Side::Buy)
            .chain(model.resting(Side::Sell))
            .map(|o| o.id)
            .collect();
        drop(state);
        drop(server);
    }
    eprintln!(
        "crash loop {extra:?}: {} commands acknowledged or recovered over {cycles} kills, making {} trades (the server keeps {CRASH_LOOP_TRADES_KEPT}); {recovered_unacked} unanswered commands were found journaled",
        history.len(),
        replay(&history).1.len()
    );
}

/// `orderbook --print-journal` run in `dir`: its exit status, stdout and
/// stderr.
fn print_journal(dir: &std::path::Path) -> (std::process::ExitStatus, String, String) {
    print_journal_with(dir, &[])
}

/// `orderbook --print-journal` with more flags.
fn print_journal_with(
    dir: &std::path::Path,
    args: &[&str],
) -> (std::process::ExitStatus, String, String) {
    let output = std::process::Command::new(support::BIN)
        .arg("--print-journal")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run orderbook --print-journal");
    (
        output.status,
        String::from_utf8(output.stdout).expect("UTF-8 output"),
        String::from_utf8(output.stderr).expect("UTF-8 errors"),
    )
}

/// The journal printed, each line parsed, with its timestamp taken out
/// (checked as RFC 3339 and returned beside it).
fn journal_lines(stdout: &str) -> Vec<(String, Value)> {
    stdout
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).expect("a JSON line");
            let stamp = value
                .as_object_mut()
                .unwrap()
                .remove("timestamp")
                .expect("a timestamp");
            let stamp = stamp.as_str().unwrap().to_string();
            assert!(api::parse_timestamp(&stamp).is_some(), "{stamp}");
            (stamp, value)
        })
        .collect()
}

/// Places 30 bids, crosses 3 with an IOC sell, modifies, cancels, and
/// tries a cancel the engine refuses; returns every command as
/// `--print-journal` should show it, the ids, and the IOC's timestamp as
/// its trades carry it.
fn journaled_session(client: &mut Client) -> (Vec<Value>, Vec<String>, String) {
    let mut lines = Vec::new();
    let mut ids = Vec::new();
    for i in 0..30u64 {
        let id = id_of(
            &client
                .post("/order/", &place_body(Side::Buy, 9_000 + i, 1 + i))
                .expect(200),
        );
        lines.push(
            serde_json::json!({"seq": i + 1, "command": "place", "order_id": id,
            "side": 1, "price": (9_000 + i) as f64 / 100.0, "quantity": 1 + i,
            "time_in_force": "GTC", "post_only": false}),
        );
        ids.push(id);
    }
    let ioc = client
        .post(
            "/order/",
            "{\"side\":\"sell\",\"price\":90.27,\"quantity\":100,\"time_in_force\":\"IOC\"}",
        )
        .expect(200);
    assert_eq!(ioc["filled_quantity"], 30 + 29 + 28);
    let ioc_id = id_of(&ioc);
    lines.push(
        serde_json::json!({"seq": 31, "command": "place", "order_id": ioc_id,
        "side": -1, "price": 90.27, "quantity": 100, "time_in_force": "IOC", "post_only": false}),
    );
    client
        .put(&format!("/order/{}", ids[0]), "{\"price\":80.5}")
        .expect(200);
    lines.push(
        serde_json::json!({"seq": 32, "command": "modify", "order_id": ids[0], "price": 80.5}),
    );
    client.delete(&format!("/order/{}", ids[1])).expect(200);
    lines.push(serde_json::json!({"seq": 33, "command": "cancel", "order_id": ids[1]}));
    // Refused by the engine (the IOC is finished), journaled all the same.
    client.delete(&format!("/order/{ioc_id}")).expect(404);
    lines.push(serde_json::json!({"seq": 34, "command": "cancel", "order_id": ioc_id}));
    // A batch's cancel by a name no order has is journaled naming none.
    let by_name = client.post(
        "/orders/cancel",
        r#"{"client_order_ids": ["nobody-has-it"]}"#,
    );
    assert_eq!(by_name.expect(200)[0]["status_code"], 404);
    lines.push(serde_json::json!({"seq": 35, "command": "cancel", "order_id": null}));
    let trades = client.trades(&format!("?order_id={ioc_id}"));
    assert_eq!(trades.len(), 3);
    let stamp = trades[0]["execution_timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    ids.push(ioc_id);
    (lines, ids, stamp)
}

#[test]
fn the_journal_keeps_every_command_past_snapshots_and_prints_them_as_json_lines() {
    let dir = TempDir::new("journal-kept");
    // Small files, frequent state files, and only 2 finished orders kept.
    let args = [
        "--snapshot-interval",
        "1",
        "--journal-segment-bytes",
        "600",
        "--finished-orders",
        "2",
    ];
    let mut server = Server::start_in(&dir.0, &args);
    let mut client = server.connect();
    let (expected, ids, ioc_stamp) = journaled_session(&mut client);
    // The bid filled first left the history: the journal alone has it.
    client
        .get(&format!("/order/{}", ids[29]))
        .expect_detail(404, "Order not found");
    let before = observe(&server, &ids);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());

    let files = journal_files(&dir.0);
    assert!(files.len() >= 4, "rotated into several files: {files:?}");
    assert!(
        files[0].ends_with("journal-00000000000000000001.log"),
        "the first file is kept after state files covered it: {files:?}"
    );
    let (status, stdout, stderr) = print_journal(&dir.0);
    assert!(status.success(), "{stderr}");
    assert_eq!(stderr, "");
    let lines = journal_lines(&stdout);
    let values: Vec<&Value> = lines.iter().map(|(_, value)| value).collect();
    assert_eq!(values, expected.iter().collect::<Vec<_>>());
    assert!(
        lines.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "in time order"
    );
    assert_eq!(lines[30].0, ioc_stamp, "the IOC's time is its trades' time");
    // From record 31: the IOC and what followed it.
    let (status, stdout, stderr) = print_journal_with(&dir.0, &["--from-seq", "31"]);
    assert!(status.success(), "{stderr}");
    let tail: Vec<Value> = journal_lines(&stdout).into_iter().map(|(_, v)| v).collect();
    assert_eq!(tail, expected[30..]);

    // A start reads only what the state file does not cover: damage in a
    // covered file does not stop it, and the book is as it was. The
    // printer reads everything and names the damage.
    let mut bytes = fs::read(&files[0]).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    fs::write(&files[0], &bytes).unwrap();
    let server = Server::start_in(&dir.0, &args);
    assert_eq!(observe(&server, &ids), before);
    // The gauges count what is on disk.
    let on_disk = journal_files(&dir.0);
    let bytes: u64 = on_disk.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let metrics = server.connect().metrics_text();
    assert_eq!(
        support::metric(&metrics, "orderbook_journal_files") as usize,
        on_disk.len()
    );
    assert_eq!(
        support::metric(&metrics, "orderbook_journal_disk_bytes") as u64,
        bytes
    );
    let (status, stdout, stderr) = print_journal(&dir.0);
    assert!(!status.success(), "a damaged journal prints with exit 1");
    assert!(
        stderr.contains("journal-00000000000000000001.log is corrupt"),
        "{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "the damage is in the first file: {stdout}"
    );
}

#[test]
fn under_prune_journal_the_files_a_state_file_covers_are_deleted() {
    let dir = TempDir::new("journal-pruned");
    let args = [
        "--snapshot-interval",
        "1",
        "--journal-segment-bytes",
        "600",
        "--prune-journal",
    ];
    let mut server = Server::start_in(&dir.0, &args);
    let mut client = server.connect();
    let (expected, ids, _) = journaled_session(&mut client);
    let before = observe(&server, &ids);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    // The state file at shutdown covers every record: only the newest file,
    // which the front was writing, is left.
    let files = journal_files(&dir.0);
    assert_eq!(files.len(), 1, "{files:?}");
    let (status, stdout, stderr) = print_journal(&dir.0);
    assert!(status.success(), "{stderr}");
    let lines = journal_lines(&stdout);
    let first = lines
        .first()
        .map_or(expected.len() as u64 + 1, |(_, value)| {
            value["seq"].as_u64().unwrap()
        });
    assert!(first > 1, "the older records are gone");
    let kept: Vec<&Value> = lines.iter().map(|(_, value)| value).collect();
    assert_eq!(
        kept,
        expected[first as usize - 1..].iter().collect::<Vec<_>>()
    );
    let mut server = Server::start_in(&dir.0, &args);
    assert_eq!(observe(&server, &ids), before);
    // One more order, then a crash: the next start opens a file of its
    // own, and once its state file covers that order, the file holding
    // it goes. Stopped then, only the empty file is left.
    let mut ids = ids;
    ids.push(id_of(
        &server
            .connect()
            .post("/order/", &place_body(Side::Buy, 8_000, 1))
            .expect(200),
    ));
    server.kill9();
    let mut server = Server::start_in(&dir.0, &args);
    let before = observe(&server, &ids);
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal_files(&dir.0).len() > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).unwrap().success());
    let files = journal_files(&dir.0);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), 20, "a header alone");
    let oldest = files[0].file_name().unwrap().to_str().unwrap()[8..28].to_owned();
    let oldest: u64 = oldest.parse().unwrap();
    assert!(oldest > 1);
    // Without its state file (moved, or --state-file forgotten), the
    // start is refused: it came up empty, handing out trade ids and feed
    // seqs again, and a later start with the file dropped what it took.
    let state = dir.0.join("order_book_state.json");
    let aside = dir.0.join("aside.json");
    fs::rename(&state, &aside).unwrap();
    let (status, stderr) = refused_start(&dir.0, &args);
    assert!(!status.success());
    let why = format!(
        "resumes at record {oldest}, but the state file covers only up to 0: records are missing"
    );
    assert!(stderr.contains(&why), "{stderr}");
    assert_eq!(journal_files(&dir.0), files, "nothing removed");
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), 20);
    // Reading it from record 1 says where it starts.
    let (status, stdout, stderr) = print_journal_with(&dir.0, &["--from-seq", "1"]);
    assert!(status.success() && stdout.is_empty(), "{stderr}");
    let pruned =
        format!("starts at record {oldest}: the records before it were deleted (--prune-journal)");
    assert!(stderr.contains(&pruned), "{stderr}");
    fs::rename(&aside, &state).unwrap();
    let server = Server::start_in(&dir.0, &args);
    assert_eq!(observe(&server, &ids), before);
}

#[test]
fn batched_places_and_cancels_survive_kill_9_as_single_ones_do() {
    for extra in [&[][..], &["--fsync"][..]] {
        let dir = TempDir::new("batch-kill");
        let mut server = Server::start_in(&dir.0, extra);
        let mut client = server.connect();
        let mut ids = Vec::new();
        for round in 0..10u64 {
            // Five bids, then a sell that crosses two of them.
            let mut orders: Vec<String> = (0..5)
                .map(|i| place_body(Side::Buy, 9_000 + round * 10 + i, 1 + i))
                .collect();
            orders.push(place_body(Side::Sell, 9_000 + round * 10 + 3, 9));
            let body = format!("{{\"orders\": [{}]}}", orders.join(","));
            let answers = client.post("/orders/batch", &body).expect(200);
            ids.extend(answers.as_array().unwrap().iter().map(id_of));
        }
        assert_eq!(client.trades("?limit=1000").len(), 20, "two fills a round");
        // Cancel a bid of each round in one request.
        let cancels: Vec<String> = ids
            .iter()
            .step_by(6)
            .map(|id| format!("\"{id}\""))
            .collect();
        let body = format!("{{\"order_ids\": [{}]}}", cancels.join(","));
        let answers = client.post("/orders/cancel", &body).expect(200);
        assert!(answers
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["success"] == true));
        let before = observe(&server, &ids);
        server.kill9();
        let server = Server::start_in(&dir.0, extra);
        assert_eq!(observe(&server, &ids), before, "{extra:?}");
    }
}

/// A batch of `count` buys at 90.00 and below, each of `quantity`, which
/// names the batch: no batch's orders trade.
fn buy_batch(count: u64, quantity: u64) -> String {
    let orders: Vec<String> = (0..count)
        .map(|i| place_body(Side::Buy, 9_000 - i, quantity))
        .collect();
    format!("{{\"orders\":[{}]}}", orders.join(","))
}

/// A state file write that fails (here past a file-size limit, as on a
/// full disk) removes its `.tmp`: left, it would hold the space the
/// journal needs next. A `.tmp` a crash left is removed at start.
#[test]
fn a_failed_state_file_write_leaves_no_temporary_and_a_start_removes_one_left() {
    let dir = TempDir::new("state-full");
    // 400 resting orders: a state file of about 80 KiB, over the limit; a
    // journal of about 23 KiB, under it.
    let args = ["--snapshot-interval", "1"];
    let mut server = Server::start_in_with_file_size_limit(&dir.0, &args, 64 * 1024);
    let mut client = server.connect();
    for batch in 1..=8 {
        client
            .post("/orders/batch", &buy_batch(50, batch))
            .expect(200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("cannot write the state file") {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.stderr().contains("File too large"),
        "{}",
        server.stderr()
    );
    let temporary = dir.0.join("order_book_state.json.tmp");
    assert!(!temporary.exists(), "the failed write's temporary is gone");
    assert!(!dir.0.join("order_book_state.json").exists());
    // The service goes on: the journal holds every order.
    assert_eq!(client.orders().0.len(), 400);
    // A stop whose state file cannot be written is no clean stop: exit 1,
    // saying so, for a supervisor to see.
    server.signal("TERM");
    let exit = server.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(exit.code(), Some(1), "{}", server.stderr());
    let said = server.final_stderr();
    assert!(
        said.contains(
            "orderbook: stopped with 400 resting orders, but the state file could not be written"
        ),
        "{said}"
    );
    assert!(!said.contains("stopped cleanly"), "{said}");

    // A write cut short by a crash: the start removes it and says so.
    std::fs::write(&temporary, vec![b'{'; 4096]).unwrap();
    let server = Server::start_in(&dir.0, &[]);
    let stderr = server.stderr();
    assert!(
        stderr.contains("order_book_state.json.tmp, a state file write cut short"),
        "{stderr}"
    );
    assert!(!temporary.exists());
    assert_eq!(server.connect().orders().0.len(), 400);
}

/// A journal that cannot be written (here a file-size limit, failing the
/// write with `EFBIG` as a full disk fails it with `ENOSPC`) stops the
/// service with exit 1 before the command in that write is applied or
/// answered. The failed write left the first records of a batch in the
/// file: the next start drops that batch whole, and the book is exactly the
/// batches that were answered.
#[test]
fn a_journal_that_cannot_be_written_stops_the_service_and_a_cut_batch_is_dropped_whole() {
    const PER_BATCH: u64 = 50;
    let dir = TempDir::new("journal-full");
    // About 1,130 records of 58 bytes fit: the 23rd batch of 50 is cut
    // after its 29th record.
    let mut server = Server::start_in_with_file_size_limit(&dir.0, &[], 64 * 1024);
    let mut client = server.connect();
    let mut answered = HashSet::new();
    let mut refused_at = None;
    for batch in 1..=40 {
        let body = buy_batch(PER_BATCH, batch);
        client
            .send_raw(&request_bytes("POST", "/orders/batch", Some(&body)))
            .unwrap();
        match client.read_response() {
            Ok(response) => {
                let items = response.expect(200);
                let items = items.as_array().expect("a list");
                assert_eq!(items.len() as u64, PER_BATCH);
                answered.extend(items.iter().map(id_of));
            }
            Err(_) => {
                refused_at = Some(batch);
                break;
            }
        }
    }
    assert_eq!(refused_at, Some(23), "the write that failed");
    assert_eq!(answered.len() as u64, 22 * PER_BATCH);
    let status = server.wait_exit(Duration::from_secs(10)).expect("it stops");
    assert_eq!(status.code(), Some(1));
    let stderr = server.final_stderr();
    assert!(
        stderr.contains("orderbook: cannot write the journal: File too large"),
        "{stderr}"
    );
    drop(server);

    // The printer, which changes no file, leaves the cut batch out too.
    let (status, stdout, stderr) = print_journal(&dir.0);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.lines().count() as u64, 22 * PER_BATCH);
    assert!(
        stderr.contains("ends in the first 29 records of a batch whose last was never written"),
        "{stderr}"
    );

    let mut server = Server::start_in(&dir.0, &[]);
    let stderr = server.stderr();
    assert!(
        stderr.contains("cut the first 29 records of a batch whose last was never written"),
        "{stderr}"
    );
    let (buys, sells) = server.connect().orders();
    assert!(sells.is_empty());
    let resting: HashSet<String> = buys.iter().map(id_of).collect();
    assert_eq!(resting, answered, "exactly the answered batches");
    // And the journal now ends with the last answered batch: orders placed
    // after the start follow it, and survive another start.
    let after = server.connect().place_id(1, 80.0, 1);
    server.kill9();
    let server = Server::start_in(&dir.0, &[]);
    let (buys, _) = server.connect().orders();
    assert_eq!(buys.len() as u64, 22 * PER_BATCH + 1);
    assert!(buys.iter().any(|order| id_of(order) == after));
}

/// `DELETE /orders` is one journaled command: after `kill -9` the side it
/// emptied stays empty (its orders cancelled and fetchable), and the
/// journal prints it.
#[test]
fn a_cancel_all_survives_kill_9_and_prints_as_one_command() {
    let dir = TempDir::new("cancel-all");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let buy = client.place_id(1, 99.0, 2);
    let sell = client.place_id(-1, 101.0, 3);
    let done = client.delete("/orders?side=buy").expect(200);
    assert_eq!(done["cancelled"], serde_json::json!(1));
    server.kill9();

    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let (buys, sells) = client.orders();
    assert!(buys.is_empty());
    assert_eq!(sells.iter().map(id_of).collect::<Vec<_>>(), [sell]);
    assert_eq!(client.order(&buy)["status"], serde_json::json!("cancelled"));
    drop(server);
    let (status, stdout, stderr) = print_journal(&dir.0);
    assert!(status.success(), "{stderr}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["seq"], serde_json::json!(3));
    assert_eq!(last["command"], serde_json::json!("cancel_all"));
    assert_eq!(last["side"], serde_json::json!(1));
    assert!(last.get("order_id").is_none());
}

#[test]
fn client_order_ids_stay_with_their_orders_after_kill_9_and_after_sigterm() {
    let dir = TempDir::new("client-ids");
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let named = |side: i8, price: &str, name: &str| {
        format!(r#"{{"side":{side},"price":{price},"quantity":2,"client_order_id":"{name}"}}"#)
    };
    let place = |client: &mut Client, body: &str| client.post("/order/", body).expect(200);
    // Resting, cancelled, a filled maker and the taker that filled it, and
    // a post-only refusal whose name a later order took.
    let resting = place(&mut client, &named(1, "99", "resting"));
    let cancelled = place(&mut client, &named(1, "98", "cancelled"));
    client
        .delete(&format!("/order/{}", cancelled["id"].as_str().unwrap()))
        .expect(200);
    let maker = place(&mut client, &named(-1, "101", "maker"));
    let taker = place(&mut client, &named(1, "101", "taker"));
    assert_eq!(taker["status"], "filled");
    let refused =
        r#"{"side":-1,"price":99,"quantity":1,"post_only":true,"client_order_id":"again"}"#;
    client.post("/order/", refused).expect(422);
    let again = place(&mut client, &named(-1, "105", "again"));
    let names = ["resting", "cancelled", "maker", "taker", "again"];
    let ids: Vec<String> = [&resting, &cancelled, &maker, &taker, &again]
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_string())
        .collect();
    let read = |server: &Server| {
        let mut client = server.connect();
        let mut paths = vec!["/orders".to_string()];
        paths.extend(
            names
                .iter()
                .map(|name| format!("/order?client_order_id={name}")),
        );
        let reads: Vec<(String, u16, String)> = paths
            .into_iter()
            .map(|path| {
                let response = client.get(&path);
                (path, response.status, response.text())
            })
            .collect();
        // Each name is still taken by its order.
        for (name, id) in names.iter().zip(&ids) {
            let detail = client.post("/order/", &named(1, "1", name)).detail(409);
            assert!(detail.contains(id.as_str()), "{detail}");
        }
        reads
    };
    let before = read(&server);
    for ((_, status, body), id) in before[1..].iter().zip(&ids) {
        assert_eq!(*status, 200, "{body}");
        assert!(body.contains(id.as_str()), "{body}");
    }
    assert!(before[0].2.contains(r#""client_order_id":"resting""#));
    after_kill_9_and_sigterm(server, &dir, |server, when| {
        assert_eq!(read(server), before, "{when}");
    });
    let saved = fs::read_to_string(dir.0.join("order_book_state.json")).unwrap();
    for name in names {
        assert!(
            saved.contains(&format!(r#""client_order_id":"{name}""#)),
            "{name}"
        );
    }
}

#[test]
fn a_state_file_with_a_bad_or_doubled_client_order_id_stops_the_start() {
    let dir = TempDir::new("bad-client-id");
    let path = dir.0.join("order_book_state.json");
    let order = |id: &str, name: &str| {
        format!(r#"{{"id":"{id}","quantity":1,"price":1.0,"side":1,"client_order_id":"{name}"}}"#)
    };
    let first = order("0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "x");
    for (second, problem) in [
        (
            order("1b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "a b"),
            r#"buy_orders[1]: client_order_id "a b" must be a string of 1 to 36"#,
        ),
        (
            order("1b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11", "x"),
            r#"buy_orders[1]: client_order_id "x" names another order too"#,
        ),
    ] {
        let bytes = format!(r#"{{"buy_orders":[{first},{second}],"sell_orders":[]}}"#);
        fs::write(&path, &bytes).unwrap();
        let (status, stderr) = refused_start(&dir.0, &[]);
        assert!(!status.success(), "started over {bytes}");
        assert!(stderr.contains("order_book_state.json"), "{stderr}");
        assert!(stderr.contains(problem), "names the problem: {stderr}");
        assert_eq!(fs::read_to_string(&path).unwrap(), bytes);
    }
}
