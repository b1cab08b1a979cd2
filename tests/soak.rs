//! A bounded soak: every part of the service at once, for `SOAK_SECONDS`
//! (15 by default), against the real binary on 127.0.0.1.
//!
//! - the load generator places, cancels, crosses, modifies and sends
//!   market orders over 16 connections, closed loop;
//! - a market-data client keeps the whole book (`?depth=0`) from the feed
//!   and checks every `seq` follows the last, and that each periodic
//!   snapshot (every 200 ms) equals the book it kept, at that `seq`;
//! - another follows the `orders` channel, keeping each order's last
//!   state: at the end the orders it holds alive must be exactly the
//!   resting orders `GET /orders` lists, field for field;
//! - all along, a reader lists the book and the trades, an idle client is
//!   closed by `--idle-timeout`, and a half-sent request gets 408;
//! - the state file is written every second, and finished orders and
//!   trades in memory are bounded small, so memory must level off;
//! - then SIGTERM, and a restart that must show the same book, byte for
//!   byte, and continue the feed's `seq`.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::{Mix, Settings, Stop};
use serde_json::{json, Value};
use support::feed_book::Book;
use support::{naive_candles, resident_kib, served_candle, Client, Server, TempDir};
use tungstenite::{Message, WebSocket};

const ARGS: &[&str] = &[
    "--snapshot-interval",
    "1",
    "--finished-orders",
    "20000",
    "--trade-history",
    "20000",
    "--idle-timeout",
    "2",
    "--request-timeout",
    "2",
    "--feed-snapshot-ms",
    "200",
    // The keeper is a test thread parsing JSON on a shared two-core box:
    // room for its bursts, so this checks consistency, not the slow-reader
    // policy (tests/feed.rs does that).
    "--ws-max-queue-bytes",
    "268435456",
];

fn soak_duration() -> Duration {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(seconds)
}

/// The next text message of a feed client, or `None` once `stop` is set
/// and a read found nothing (the feed is quiet).
fn next_text(ws: &mut WebSocket<TcpStream>, stop: &AtomicBool) -> Option<String> {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("the feed sent {other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(e) => panic!("the feed failed: {e}"),
        }
    }
}

/// A feed client of `/ws{query}`, whose reads give up after 200 ms (so
/// `next_text` can look at its stop flag).
fn feed_client(addr: std::net::SocketAddr, query: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let url = format!("ws://{addr}/ws{query}");
    tungstenite::client(url, stream)
        .expect("the upgrade succeeds")
        .0
}

/// What the market-data client saw.
struct Kept {
    book: Book,
    last_seq: u64,
    messages: u64,
    snapshots_checked: u64,
}

/// Keeps the whole book from the feed until `stop` and the feed is
/// quiet, checking each message and each periodic snapshot as it goes.
/// Quiet is two periodic snapshots with nothing between them: they come
/// every `--feed-snapshot-ms` whatever happens, so a read timing out
/// (what `next_text` waits for) may never come, or only by chance.
fn keep_book(server_addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Kept {
    let mut ws = feed_client(server_addr, "?depth=0");
    let mut kept: Option<Kept> = None;
    // Messages since the last snapshot (the first one counts as news).
    let mut since_snapshot = 1;
    loop {
        let Some(text) = next_text(&mut ws, &stop) else {
            return kept.expect("a snapshot arrived");
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        let seq = message["seq"].as_u64().unwrap();
        let Some(state) = kept.as_mut() else {
            assert_eq!(message["type"], "snapshot", "the first message");
            kept = Some(Kept {
                book: Book::from_snapshot(&message),
                last_seq: seq,
                messages: 0,
                snapshots_checked: 0,
            });
            continue;
        };
        match message["type"].as_str().unwrap() {
            "snapshot" => {
                assert_eq!(seq, state.last_seq, "a snapshot carries the last seq");
                assert!(
                    Book::from_snapshot(&message) == state.book,
                    "the snapshot at seq {seq} differs from the kept book"
                );
                state.snapshots_checked += 1;
                if since_snapshot == 0 && stop.load(Ordering::SeqCst) {
                    return kept.expect("kept");
                }
                since_snapshot = 0;
            }
            kind => {
                since_snapshot += 1;
                assert_eq!(seq, state.last_seq + 1, "a gap before this {kind}");
                if kind == "book" {
                    state.book.apply(&message);
                }
                state.last_seq = seq;
                state.messages += 1;
            }
        }
    }
}

/// What the `orders` follower saw: the last state of each order still
/// alive, by id, and how many messages came.
struct Followed {
    alive: HashMap<String, Value>,
    messages: u64,
}

/// Follows the `orders` channel until `stop` (and the channel is quiet),
/// keeping each order's last state while it is alive; says `ready` once
/// for its first snapshot (from then on it is sent every change) and once
/// for its orders snapshot.
fn follow_orders(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<()>,
) -> Followed {
    let mut ws = feed_client(addr, "?channels=orders");
    let mut followed = Followed {
        alive: HashMap::new(),
        messages: 0,
    };
    let mut last_seq = 0;
    loop {
        let Some(text) = next_text(&mut ws, &stop) else {
            return followed;
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str().unwrap() {
            // Ready once both have come: the feed's snapshot (changes are
            // sent from it on) and the resting orders' (none yet).
            "snapshot" => {
                let _ = ready.send(());
            }
            "orders_snapshot" => {
                assert_eq!(
                    message["orders"],
                    serde_json::json!([]),
                    "the book starts empty"
                );
                let _ = ready.send(());
            }
            "order" => {
                let seq = message["seq"].as_u64().unwrap();
                assert!(seq >= last_seq, "order seq {seq} after {last_seq}");
                last_seq = seq;
                followed.messages += 1;
                let event = message["event"].as_str().unwrap();
                let known = ["placed", "traded", "modified", "cancelled"];
                assert!(known.contains(&event), "{message}");
                let order = &message["order"];
                let id = order["order_id"].as_str().unwrap().to_owned();
                if order["order_alive"] == true {
                    followed.alive.insert(id, order.clone());
                } else {
                    followed.alive.remove(&id);
                }
            }
            other => panic!("the orders channel sent a {other}"),
        }
    }
}

/// Checks made over and over while the load runs (a round takes the
/// timeouts' 2 s and up to a second more): reads answer, a client pulls
/// exactly its own orders by their names' prefix, an idle client is
/// closed, a half-sent request gets 408.
fn side_checks(addr: std::net::SocketAddr, round: usize) {
    let mut reader = Client::connect(addr);
    let listing = reader.get("/orders").expect(200);
    assert!(listing["buy_orders"].is_array() && listing["sell_orders"].is_array());
    let trades = reader.trades("?limit=10");
    assert!(trades.len() <= 10);

    // Far below the load's prices: a market sell rarely reaches them, and
    // one that does fills them, which the count allows for.
    let prefix = format!("side-{round}-");
    let names: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
    for name in &names {
        let order =
            format!(r#"{{"quantity": 1, "price": 50.0, "side": 1, "client_order_id": "{name}"}}"#);
        reader.post("/order/", &order).expect(200);
    }
    let mine = format!("/orders?client_order_id_prefix={prefix}");
    let pulled = reader.delete(&mine).expect(200);
    let statuses: Vec<Value> = names
        .iter()
        .map(|name| {
            let order = reader
                .get(&format!("/order?client_order_id={name}"))
                .expect(200);
            order["status"].clone()
        })
        .collect();
    let cancelled = statuses
        .iter()
        .filter(|s| **s == json!("cancelled"))
        .count();
    assert_eq!(pulled["cancelled"], json!(cancelled), "{statuses:?}");
    let filled = statuses.iter().filter(|s| **s == json!("filled")).count();
    assert_eq!(cancelled + filled, 5, "{statuses:?}");
    let left = reader.get(&mine).expect(200);
    assert_eq!(left, json!({"buy_orders": [], "sell_orders": []}));
    drop(reader);

    let mut idle = Client::connect(addr);
    idle.get("/health").expect(200);
    let mut half = Client::connect(addr);
    half.send_raw(b"POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{")
        .unwrap();
    half.read_response().unwrap().expect_detail(
        408,
        "Request not completed within 2 s; closing the connection",
    );
    idle.set_read_timeout(Duration::from_secs(10));
    let mut byte = [0u8; 1];
    assert_eq!(
        idle.stream().read(&mut byte).unwrap(),
        0,
        "the idle one is closed"
    );
}

#[test]
fn every_part_under_sustained_load_stays_consistent_bounded_and_recoverable() {
    let dir = TempDir::new("soak");
    let mut server = Server::start_in(&dir.0, ARGS);
    let stop_keeper = Arc::new(AtomicBool::new(false));
    let keeper = {
        let (addr, stop) = (server.addr, Arc::clone(&stop_keeper));
        thread::spawn(move || keep_book(addr, stop))
    };
    let (ready, follower_ready) = mpsc::channel();
    let follower = {
        let (addr, stop) = (server.addr, Arc::clone(&stop_keeper));
        thread::spawn(move || follow_orders(addr, stop, ready))
    };
    for _ in 0..2 {
        follower_ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the orders follower joined");
    }
    let duration = soak_duration();
    let settings = Settings {
        addr: server.addr,
        connections: 16,
        threads: 1,
        stop: Stop::After(duration),
        rate: None,
        // No fetches: with finished orders bounded at 20,000, a fetch of an
        // order that traded away long ago is rightly 404, which the load
        // generator would count as unexpected.
        mix: Mix::parse("place=40,cancel=30,cross=20,modify=5,market=5,ticker=2,candles=2")
            .unwrap(),
        mid_ticks: 10_000,
        tick: 0.01,
        seed: 11,
        batch: 1,
        extra_headers: String::new(),
        // Every order named: the names ride through the journal, the
        // history's evictions and the restart.
        client_ids: Some("soak".into()),
        timeout: Duration::from_secs(5),
    };
    let load = thread::spawn(move || loadgen::run(&settings).unwrap());

    let load_done = Arc::new(AtomicBool::new(false));
    let side = {
        let (addr, done) = (server.addr, Arc::clone(&load_done));
        thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(Ordering::SeqCst) {
                side_checks(addr, rounds);
                rounds += 1;
            }
            rounds
        })
    };
    let started = Instant::now();
    let mut rss = Vec::new();
    while !load.is_finished() {
        rss.push((started.elapsed().as_millis(), resident_kib(server.pid())));
        thread::sleep(Duration::from_millis(500));
    }
    let report = load.join().unwrap();
    load_done.store(true, Ordering::SeqCst);
    let rounds = side.join().unwrap();
    assert!(rounds >= 2, "{rounds} rounds of side checks");
    eprintln!(
        "soak: {} requests in {:?} ({:.0}/s), {} placed ({} market), {} cancelled, {} modified",
        report.requests,
        report.elapsed,
        report.requests as f64 / report.elapsed.as_secs_f64(),
        report.placed,
        report.market,
        report.cancelled,
        report.modified
    );
    assert!(report.requests > 10_000, "{} requests", report.requests);
    assert!(report.market > 100, "{} market orders", report.market);
    assert!(
        report.ticker_reads > 100,
        "{} ticker reads",
        report.ticker_reads
    );
    assert!(
        report.candle_reads > 100,
        "{} candle reads",
        report.candle_reads
    );
    assert_eq!(report.transport_errors, 0);
    assert_eq!(report.unexpected(), 0, "{:?}", report.statuses);
    assert_eq!(report.statuses.get(&503), None, "{:?}", report.statuses);

    // Memory levels off: the second half of the run grows it by less than
    // 64 MiB over its start (in-memory history is bounded at 20,000).
    let half = rss.len() / 2;
    let at_half = rss[half].1;
    let peak = rss[half..].iter().map(|&(_, kib)| kib).max().unwrap();
    eprintln!("soak: RSS KiB over time: {rss:?}");
    assert!(
        peak <= at_half + 64 * 1024,
        "RSS grew from {at_half} to {peak} KiB in the second half: {rss:?}"
    );

    // Let a periodic snapshot of the quiet book reach the keeper.
    thread::sleep(Duration::from_millis(1_000));
    stop_keeper.store(true, Ordering::SeqCst);
    let kept = keeper.join().unwrap();
    eprintln!(
        "soak: the feed sent {} messages; {} snapshots matched the kept book",
        kept.messages, kept.snapshots_checked
    );
    assert!(kept.messages > 1_000, "{} feed messages", kept.messages);
    assert!(
        kept.snapshots_checked as f64 >= duration.as_secs_f64() * 2.0,
        "only {} snapshots checked",
        kept.snapshots_checked
    );

    // The feed's book is the REST book.
    let mut client = server.connect();
    let before = client.get("/orders");
    assert_eq!(before.status, 200);
    let listing: Value = before.json();
    let mut rest_book = Book::default();
    for (key, levels) in [
        ("buy_orders", &mut rest_book.bids),
        ("sell_orders", &mut rest_book.asks),
    ] {
        for order in listing[key].as_array().unwrap() {
            let left =
                order["quantity"].as_u64().unwrap() - order["filled_quantity"].as_u64().unwrap();
            *levels
                .entry(support::feed_book::price_key(&order["price"]))
                .or_insert(0) += left;
        }
    }
    assert!(
        rest_book == kept.book,
        "the feed's book differs from GET /orders"
    );
    // The orders channel's live orders are the resting orders, each as
    // listed.
    let followed = follower.join().unwrap();
    let listed: Vec<&Value> = ["buy_orders", "sell_orders"]
        .iter()
        .flat_map(|key| listing[key].as_array().unwrap())
        .collect();
    assert_eq!(followed.alive.len(), listed.len(), "orders alive");
    for order in &listed {
        let id = order["id"].as_str().unwrap();
        let last = followed
            .alive
            .get(id)
            .unwrap_or_else(|| panic!("{id} rests but the orders channel ended it"));
        let as_followed = (
            &last["order_price"],
            &last["order_quantity"],
            &last["traded_quantity"],
            &last["side"],
            &last["client_order_id"],
        );
        let as_listed = (
            &order["price"],
            &order["quantity"],
            &order["filled_quantity"],
            &order["side"],
            &order["client_order_id"],
        );
        assert_eq!(as_followed, as_listed, "{id}");
    }
    eprintln!(
        "soak: {} order messages; their live orders are the resting ones",
        followed.messages
    );
    eprintln!(
        "soak: {} orders resting at the end",
        listing["buy_orders"].as_array().unwrap().len()
            + listing["sell_orders"].as_array().unwrap().len()
    );
    // Every resting order shows its own name, and its name finds it.
    let resting: Vec<&Value> = ["buy_orders", "sell_orders"]
        .iter()
        .flat_map(|key| listing[key].as_array().unwrap())
        .collect();
    let names: std::collections::HashSet<&str> = resting
        .iter()
        .map(|order| order["client_order_id"].as_str().expect("named"))
        .collect();
    assert_eq!(names.len(), resting.len(), "each name names one order");
    for order in resting.iter().step_by((resting.len() / 50).max(1)) {
        let name = order["client_order_id"].as_str().unwrap();
        assert!(name.starts_with("soak-"), "{name}");
        let found = client
            .get(&format!("/order?client_order_id={name}"))
            .expect(200);
        assert_eq!(found["order_id"], order["id"], "{name}");
    }

    // The candles, kept up second by second on the replica while the
    // history dropped trades, are the kept trades grouped by interval; but
    // for the oldest interval, whose oldest second may have lost trades.
    let trades = client.trades("?limit=20000");
    let candles = |client: &mut Client, interval: i64| -> Vec<Value> {
        let served = client
            .get(&format!("/candles?interval={interval}&limit=1000"))
            .expect(200);
        served
            .as_array()
            .unwrap()
            .iter()
            .map(served_candle)
            .collect()
    };
    let whole_intervals = |served: Vec<Value>, interval: i64| -> Vec<Value> {
        let naive = naive_candles(&trades, interval);
        let oldest = &naive[0]["start_seconds"];
        let shown: Vec<Value> = served
            .into_iter()
            .filter(|candle| trades.len() < 20_000 || candle["start_seconds"] != *oldest)
            .collect();
        let whole = if trades.len() < 20_000 { 0 } else { 1 };
        assert_eq!(shown, naive[whole..], "interval {interval}");
        shown
    };
    let mut seconds_before = Vec::new();
    for interval in [1, 60] {
        let shown = whole_intervals(candles(&mut client, interval), interval);
        if interval == 1 {
            seconds_before = shown;
        }
    }
    eprintln!(
        "soak: {} trades kept, {} whole seconds of candles",
        trades.len(),
        seconds_before.len()
    );

    // A clean stop, and a restart that shows the same book and goes on
    // with the same feed.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", server.final_stderr());
    drop(server);
    let server = Server::start_in(&dir.0, ARGS);
    let after = server.connect().get("/orders");
    assert!(
        after.body == before.body,
        "GET /orders differs after the restart"
    );
    // The seconds are rebuilt from the kept trades (the oldest dropped,
    // since a full history may have lost some of it).
    let seconds_after = whole_intervals(candles(&mut server.connect(), 1), 1);
    assert_eq!(seconds_after, seconds_before);
    let stream = TcpStream::connect(server.addr).unwrap();
    let url = format!("ws://{}/ws?depth=0", server.addr);
    let (mut ws, _) = tungstenite::client(url, stream).unwrap();
    let snapshot: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(snapshot["seq"].as_u64(), Some(kept.last_seq));
    assert!(Book::from_snapshot(&snapshot) == kept.book);
}
