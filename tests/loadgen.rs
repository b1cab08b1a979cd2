//! The load generator against the real service: counted and scheduled
//! runs whose reports must agree, request for request, with the book the
//! service ends up holding.

mod support;

use std::time::Duration;

use loadgen::{Mix, Report, Settings, Stop};
use support::Server;

fn settings(
    server: &Server,
    connections: usize,
    threads: usize,
    stop: Stop,
    mix: &str,
) -> Settings {
    Settings {
        addr: server.addr,
        connections,
        threads,
        stop,
        rate: None,
        mix: Mix::parse(mix).unwrap(),
        mid_ticks: 10_000,
        tick: 0.01,
        seed: 7,
        batch: 1,
        extra_headers: String::new(),
        client_ids: None,
        timeout: std::time::Duration::from_secs(5),
    }
}

/// Resting orders on both sides, as `GET /orders` lists them.
fn resting(server: &Server) -> u64 {
    let book = server.connect().get("/orders").expect(200);
    (book["buy_orders"].as_array().unwrap().len() + book["sell_orders"].as_array().unwrap().len())
        as u64
}

/// Every request was answered 200: `count` of them, nothing else.
fn assert_all_200(report: &Report, count: u64) {
    assert_eq!(
        report.statuses.iter().collect::<Vec<_>>(),
        vec![(&200, &count)]
    );
}

fn assert_latency_counts(report: &Report) {
    assert_eq!(report.latency_us.len(), report.requests);
    let p50 = report.latency_us.value_at_quantile(0.5);
    let p99 = report.latency_us.value_at_quantile(0.99);
    assert!(1 <= p50 && p50 <= p99 && p99 <= report.latency_us.max());
}

#[test]
fn a_run_s_latency_distribution_prints_as_hdrhistogram_text() {
    let server = Server::start();
    let report = loadgen::run(&settings(&server, 8, 1, Stop::Requests(3_000), "place=1")).unwrap();
    assert_all_200(&report, 3_000);
    let text = loadgen::hgrm::percentile_distribution(&report.latency_us);
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(2)
        .take_while(|line| !line.starts_with('#'))
        .map(|line| {
            line.split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    // Milliseconds, rising to the report's own max at 100%, every answer
    // counted once.
    let last = rows.last().unwrap();
    assert_eq!(
        last[..],
        [report.latency_us.max() as f64 / 1e3, 1.0, 3_000.0]
    );
    let median = rows.iter().find(|row| row[1] >= 0.5).unwrap();
    assert_eq!(
        median[0],
        report.latency_us.value_at_quantile(0.5) as f64 / 1e3
    );
    for pair in rows.windows(2) {
        assert!(
            (0..3).all(|i| pair[0][i] <= pair[1][i]),
            "{pair:?} in\n{text}"
        );
    }
    assert!(
        text.contains(&format!("Total count    = {:>12}]", 3_000)),
        "{text}"
    );
}

#[test]
fn a_counted_run_of_places_rests_exactly_what_it_reports() {
    let server = Server::start();
    let report = loadgen::run(&settings(&server, 4, 1, Stop::Requests(2_000), "place=1")).unwrap();
    assert_eq!(report.requests, 2_000);
    assert_all_200(&report, 2_000);
    assert_eq!(
        (report.placed, report.rested, report.cancelled),
        (2_000, 2_000, 0)
    );
    assert_eq!((report.transport_errors, report.unexpected()), (0, 0));
    assert_latency_counts(&report);
    assert_eq!(resting(&server), 2_000);
}

#[test]
fn a_batched_run_places_its_orders_by_the_hundred() {
    let server = Server::start();
    let mut run = settings(&server, 4, 1, Stop::Requests(60), "place=1");
    run.batch = 100;
    let report = loadgen::run(&run).unwrap();
    assert_all_200(&report, 60);
    assert_eq!((report.placed, report.rested), (6_000, 6_000));
    assert_eq!(resting(&server), 6_000);
    // What a batch rests is cancelled one by one: nothing crosses, so
    // every cancel finds its order.
    let mut run = settings(&server, 4, 1, Stop::Requests(400), "place=1,cancel=1");
    run.batch = 10;
    let report = loadgen::run(&run).unwrap();
    assert_all_200(&report, 400);
    assert!(report.cancelled > 0, "the mix cancels");
    assert_eq!(report.placed, 10 * (400 - report.cancelled));
    assert_eq!(report.rested, report.placed);
    assert_eq!(resting(&server), 6_000 + report.placed - report.cancelled);
}

#[test]
fn against_a_service_with_an_api_token_the_token_is_sent() {
    const TOKEN: &str = "loadgen-token-0123456789";
    let server = Server::start_with(&["--api-token", TOKEN]);
    let mix = "place=50,cancel=20,modify=10,cross=10,fetch=10";
    let mut run = settings(&server, 4, 1, Stop::Requests(1_000), mix);
    run.extra_headers = format!("Authorization: Bearer {TOKEN}\r\n");
    let report = loadgen::run(&run).unwrap();
    assert_eq!((report.transport_errors, report.unexpected()), (0, 0));
    assert_eq!(report.statuses.values().sum::<u64>(), 1_000);
    assert!(report.placed > 0 && report.cancelled > 0);
    // Without it every place is refused, and nothing rests.
    let before = resting(&server);
    let run = settings(&server, 2, 1, Stop::Requests(200), "place=1");
    let report = loadgen::run(&run).unwrap();
    assert_eq!(
        report.statuses.iter().collect::<Vec<_>>(),
        vec![(&401, &200)]
    );
    assert_eq!(resting(&server), before);
}

#[test]
fn places_and_cancels_over_threads_leave_the_book_the_report_implies() {
    let server = Server::start();
    let report = loadgen::run(&settings(
        &server,
        8,
        2,
        Stop::Requests(3_000),
        "place=60,cancel=40",
    ))
    .unwrap();
    // Nothing crosses, so every cancel finds its order resting.
    assert_eq!(report.requests, 3_000);
    assert_all_200(&report, 3_000);
    assert_eq!(report.placed + report.cancelled, 3_000);
    assert_eq!(report.rested, report.placed);
    assert!(report.cancelled > 0, "the mix cancels");
    assert_eq!((report.not_resting, report.transport_errors), (0, 0));
    assert_latency_counts(&report);
    assert_eq!(resting(&server), report.placed - report.cancelled);
    // By kind, merged over both threads.
    let counts: Vec<(&str, u64)> = report
        .latency_by_kind_us
        .iter()
        .map(|(kind, histogram)| (*kind, histogram.len()))
        .collect();
    assert_eq!(
        counts,
        [("cancel", report.cancelled), ("place", report.placed)]
    );
    let json = report.to_json();
    assert_eq!(
        json["latency_by_kind_us"]["cancel"]["count"],
        report.cancelled
    );
    assert!(json["latency_by_kind_us"]["place"]["p50"].as_u64().unwrap() >= 1);
}

#[test]
fn modifies_and_fetches_act_on_resting_orders_and_leave_them_resting() {
    let server = Server::start();
    let report = loadgen::run(&settings(
        &server,
        4,
        1,
        Stop::Requests(3_000),
        "place=40,cancel=20,modify=25,fetch=15",
    ))
    .unwrap();
    assert_eq!(report.requests, 3_000);
    assert_all_200(&report, 3_000);
    assert_eq!(
        report.placed + report.cancelled + report.modified + report.fetched,
        3_000
    );
    assert!(report.modified > 0 && report.fetched > 0, "{report:?}");
    assert_eq!((report.not_resting, report.transport_errors), (0, 0));
    // A modify keeps its order resting (non-crossing, a larger total).
    assert_eq!(resting(&server), report.placed - report.cancelled);
}

#[test]
fn ioc_orders_trade_and_never_rest_and_book_reads_are_counted() {
    let server = Server::start();
    let makers = loadgen::run(&settings(&server, 4, 1, Stop::Requests(1_000), "place=1")).unwrap();
    assert_all_200(&makers, 1_000);
    let report = loadgen::run(&settings(
        &server,
        4,
        1,
        Stop::Requests(2_000),
        "ioc=3,book=1",
    ))
    .unwrap();
    assert_all_200(&report, 2_000);
    assert_eq!(report.placed + report.book_reads, 2_000);
    assert_eq!(report.ioc, report.placed);
    assert!(report.ioc > 1_000 && report.book_reads > 300, "{report:?}");
    assert_eq!(report.rested, 0, "an IOC order never rests");
    // IOC orders are priced through the mid (100.00): had one rested, a
    // bid above it or an ask below it would be in the book.
    let book = server.connect().get("/orders").expect(200);
    for (key, resting_side_of_mid) in [("buy_orders", -1.0), ("sell_orders", 1.0)] {
        for order in book[key].as_array().unwrap() {
            let price = order["price"].as_f64().unwrap();
            assert!((price - 100.0) * resting_side_of_mid > 0.0, "{order}");
        }
    }
    let trades = server.connect().get("/trades?limit=100000").expect(200);
    assert!(
        trades.as_array().unwrap().len() > 500,
        "the IOC orders traded"
    );
}

/// What rests in the book on each side, in units.
fn resting_units(server: &Server) -> [u64; 2] {
    let book = server.connect().get("/orders").expect(200);
    ["buy_orders", "sell_orders"].map(|side| {
        book[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["quantity"].as_u64().unwrap() - o["filled_quantity"].as_u64().unwrap())
            .sum()
    })
}

#[test]
fn market_orders_take_what_rests_and_never_rest() {
    let server = Server::start();
    let makers = loadgen::run(&settings(&server, 4, 1, Stop::Requests(1_000), "place=1")).unwrap();
    assert_all_200(&makers, 1_000);
    let before = resting_units(&server);
    let report = loadgen::run(&settings(&server, 4, 1, Stop::Requests(500), "market=1")).unwrap();
    assert_all_200(&report, 500);
    assert_eq!((report.placed, report.market, report.rested), (500, 500, 0));
    assert_eq!(report.latency_by_kind_us["market"].len(), 500);
    let trades = server.connect().get("/trades?limit=100000").expect(200);
    let trades = trades.as_array().unwrap();
    assert!(
        trades.len() >= 500,
        "each market order traded: {}",
        trades.len()
    );
    // The makers rest on their own sides of the mid and never trade with
    // each other: every trade took a maker's units out of the book.
    let after = resting_units(&server);
    let traded: u64 = trades.iter().map(|t| t["quantity"].as_u64().unwrap()).sum();
    assert_eq!(before[0] + before[1] - after[0] - after[1], traded);
    let book = server.connect().get("/orders").expect(200);
    for side in ["buy_orders", "sell_orders"] {
        for order in book[side].as_array().unwrap() {
            assert!(order["price"].as_f64().unwrap() > 0.0, "{order}");
            assert!(
                order.get("type").is_none(),
                "no market order rests: {order}"
            );
        }
    }
}

#[test]
fn ticker_and_candle_reads_are_counted_and_the_ticker_sums_every_trade() {
    let server = Server::start();
    let makers = loadgen::run(&settings(&server, 4, 1, Stop::Requests(500), "place=1")).unwrap();
    assert_all_200(&makers, 500);
    let report = loadgen::run(&settings(
        &server,
        4,
        1,
        Stop::Requests(2_000),
        "cross=2,ticker=1,candles=1",
    ))
    .unwrap();
    assert_all_200(&report, 2_000);
    assert_eq!(
        report.placed + report.ticker_reads + report.candle_reads,
        2_000
    );
    assert!(
        report.ticker_reads > 300 && report.candle_reads > 300,
        "{report:?}"
    );
    for kind in ["ticker", "candles"] {
        assert!(report.latency_by_kind_us[kind].len() > 300, "{kind}");
    }
    let mut client = server.connect();
    let trades = client.get("/trades?limit=100000").expect(200);
    let trades = trades.as_array().unwrap();
    let day = client.get("/ticker").expect(200)["last_24h"].clone();
    let volume: u64 = trades.iter().map(|t| t["quantity"].as_u64().unwrap()).sum();
    assert!(!trades.is_empty());
    assert_eq!(
        (day["trades"].as_u64(), day["volume"].as_u64()),
        (Some(trades.len() as u64), Some(volume))
    );
}

#[test]
fn crossing_orders_trade_and_their_cancels_of_filled_orders_are_not_errors() {
    let server = Server::start();
    let report = loadgen::run(&settings(
        &server,
        4,
        1,
        Stop::Requests(4_000),
        "place=50,cancel=35,cross=15",
    ))
    .unwrap();
    assert_eq!(report.requests, 4_000);
    assert_eq!(report.unexpected(), 0);
    assert_eq!(report.transport_errors, 0);
    let trades = server.connect().get("/trades?limit=100000").expect(200);
    assert!(
        !trades.as_array().unwrap().is_empty(),
        "crossing orders traded"
    );
    // Every answer is a place (200), a cancel (200) or a cancel of an
    // order that traded away meanwhile (404).
    assert_eq!(report.placed + report.cancelled + report.not_resting, 4_000);
    assert_eq!(
        report.statuses.values().sum::<u64>(),
        4_000,
        "{:?}",
        report.statuses
    );
}

#[test]
fn an_open_loop_run_sends_exactly_its_schedule() {
    let server = Server::start();
    let mut settings = settings(
        &server,
        4,
        1,
        Stop::After(Duration::from_millis(500)),
        "place=1",
    );
    settings.rate = Some(2_000.0);
    let report = loadgen::run(&settings).unwrap();
    // 2,000 a second for half a second, whatever the machine's hiccups:
    // each connection sends every 2 ms from its staggered start.
    assert_eq!(report.requests, 1_000);
    assert_all_200(&report, 1_000);
    assert_latency_counts(&report);
    assert_eq!(resting(&server), 1_000);
}

/// A fetch of an order that traded away and then left the service's
/// history of finished orders is answered 404: counted apart, not a
/// failure of the run (with `--finished-orders` small, every batch run
/// with fetches ended in exit 1, naming nothing).
#[test]
fn fetches_of_orders_the_service_no_longer_keeps_are_not_errors() {
    let server = Server::start_with(&["--finished-orders", "0"]);
    let report = loadgen::run(&settings(
        &server,
        2,
        1,
        Stop::Requests(3_000),
        "place=40,cross=30,fetch=30",
    ))
    .unwrap();
    assert!(report.not_kept > 0, "{:?}", report.statuses);
    assert_eq!((report.unexpected(), report.transport_errors), (0, 0));
    assert_eq!(
        report.statuses.get(&404).copied(),
        Some(report.not_kept),
        "only fetches are 404 here"
    );
    assert_eq!(report.placed + report.fetched + report.not_kept, 3_000);
}

/// A slow open loop reports the rate it was asked for, timed over its
/// schedule: N sends 1/R apart were timed to the last answer alone, over
/// (N - 1)/R, and read N/(N - 1) times too fast (8 at 4/s: 4.57/s).
#[test]
fn a_slow_open_loop_reports_its_rate_over_its_whole_schedule() {
    let server = Server::start();
    for stop in [Stop::Requests(8), Stop::After(Duration::from_secs(2))] {
        let mut settings = settings(&server, 2, 1, stop, "place=1");
        settings.rate = Some(4.0);
        let report = loadgen::run(&settings).unwrap();
        assert_all_200(&report, 8);
        assert!(
            report.elapsed >= Duration::from_secs(2),
            "{stop:?}: {:?}",
            report.elapsed
        );
        let rate = report.throughput();
        assert!(
            (3.5..=4.0).contains(&rate),
            "{stop:?}: {rate}/s over {:?}",
            report.elapsed
        );
    }
}

/// A slow open loop leaves each connection idle longer than the service's
/// idle timeout: the service closes them between requests, and the load
/// generator reconnects without counting a failure or losing a request.
#[test]
fn connections_the_service_closes_while_idle_are_reopened_without_error() {
    let server = Server::start_with(&["--idle-timeout", "1"]);
    let mut settings = settings(
        &server,
        2,
        1,
        Stop::After(Duration::from_millis(6_500)),
        "place=1",
    );
    // Two every three seconds over two connections: each sends every 3 s
    // (at 0, 3 and 6 s, and at 1.5 and 4.5 s) and sits idle 3 s, well past
    // the timeout and the service's once-a-second check. (A gap of exactly
    // two checks could fall just short of the timeout at both.)
    settings.rate = Some(2.0 / 3.0);
    let report = loadgen::run(&settings).unwrap();
    assert_eq!(report.requests, 5);
    assert_all_200(&report, 5);
    assert_eq!((report.transport_errors, report.unexpected()), (0, 0));
    assert_eq!(resting(&server), 5);
    let metrics = server.connect().metrics_text();
    let idle = support::metric(
        &metrics,
        "orderbook_connections_timed_out_total{reason=\"idle\"}",
    );
    assert!(idle >= 3.0, "the service closed idle connections: {idle}");
}

/// Market-data subscribers beside the load get every trade the load made,
/// each timed from its execution stamp.
#[test]
fn subscribers_receive_every_trade_of_the_run_and_time_each() {
    every_trade_reaches_every_subscriber(&Server::start());
}

/// The same run with every ring of the service waiting under `membarrier`
/// (the I/O thread's mio waker, the matching thread, the persister and the
/// publisher all sleep with the asymmetric barrier): nothing is lost.
#[test]
fn a_service_whose_rings_wait_with_membarrier_loses_nothing() {
    let server = Server::start_with(&["--wait-strategy", "membarrier"]);
    let report = loadgen::run(&settings(&server, 4, 1, Stop::Requests(2_000), "place=1")).unwrap();
    assert_all_200(&report, 2_000);
    assert_eq!(report.rested, 2_000);
    assert_eq!(resting(&server), 2_000);
    every_trade_reaches_every_subscriber(&server);
}

/// A crossing run with three subscribers: each gets every trade the service
/// kept, each with a delay.
fn every_trade_reaches_every_subscriber(server: &Server) {
    let subscribers =
        loadgen::feed::Subscribers::start(server.addr, 3, false, Duration::from_secs(10)).unwrap();
    let report = loadgen::run(&settings(
        server,
        8,
        1,
        Stop::Requests(3_000),
        "place=1,cross=1",
    ))
    .unwrap();
    let feed = subscribers
        .finish(loadgen::feed::last_trade(server.addr, Duration::from_secs(10)).unwrap());
    assert_eq!((report.transport_errors, report.unexpected()), (0, 0));
    let trades = server.connect().trades("?limit=100000").len() as u64;
    assert!(trades > 100, "{trades} trades");
    assert_eq!(feed.errors, Vec::<String>::new());
    assert_eq!(feed.subscribers, 3);
    assert_eq!(feed.trades, 3 * trades, "every subscriber got every trade");
    assert_eq!(feed.delay_us.len(), feed.trades);
    assert!(feed.delay_us.min() >= 1);
    assert_eq!(feed.orders, None);
}

/// A run that makes no trade, against a service that made some before:
/// the subscribers do not wait for a trade they joined after (they did,
/// 30 s, and failed the run).
#[test]
fn subscribers_of_a_run_without_trades_do_not_wait_for_an_older_trade() {
    let server = Server::start();
    let mut rest = server.connect();
    rest.place(-1, 100.0, 1);
    rest.place(1, 100.0, 1);
    let subscribers =
        loadgen::feed::Subscribers::start(server.addr, 2, false, Duration::from_secs(10)).unwrap();
    let report = loadgen::run(&settings(&server, 2, 1, Stop::Requests(50), "place=1")).unwrap();
    assert_all_200(&report, 50);
    let started = std::time::Instant::now();
    let feed = subscribers
        .finish(loadgen::feed::last_trade(server.addr, Duration::from_secs(10)).unwrap());
    assert_eq!(feed.errors, Vec::<String>::new());
    assert_eq!(feed.trades, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Subscribers following `orders` too get one message per order change:
/// each place's own order, and each maker a trade touched.
#[test]
fn subscribers_following_orders_get_each_order_change_of_the_run() {
    let server = Server::start();
    let subscribers =
        loadgen::feed::Subscribers::start(server.addr, 2, true, Duration::from_secs(10)).unwrap();
    let run = settings(&server, 8, 1, Stop::Requests(2_000), "place=1,cross=1");
    let report = loadgen::run(&run).unwrap();
    let feed = subscribers
        .finish(loadgen::feed::last_trade(server.addr, Duration::from_secs(10)).unwrap());
    assert_all_200(&report, 2_000);
    assert_eq!(feed.errors, Vec::<String>::new());
    let trades = server.connect().trades("?limit=100000").len() as u64;
    assert!(trades > 100, "{trades} trades");
    assert_eq!(feed.trades, 2 * trades);
    assert_eq!(feed.orders, Some(2 * (2_000 + trades)));
}
