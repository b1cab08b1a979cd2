//! `loadgen`: drives the orderbook service with a mix of order commands and
//! prints throughput and the latency distribution (see the library's docs,
//! and docs/BENCHMARKS.md).

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loadgen::feed::{FeedReport, Subscribers};
use loadgen::{Mix, Report, Settings, Stop};

/// Load generator for the orderbook service: keep-alive HTTP/1.1
/// connections placing, crossing and cancelling orders, with each answer's
/// latency in an HDR histogram. Closed loop by default; `--rate` makes it
/// open loop, timing each answer from when its request was due.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
struct Cli {
    /// The service's address: an IP address and port (a host name is not
    /// looked up).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Keep-alive connections, one request outstanding on each.
    #[arg(long, short = 'c', default_value_t = 32, value_parser = at_least_1)]
    connections: usize,
    /// Threads, each with its own event loop.
    #[arg(long, short = 't', default_value_t = 1, value_parser = at_least_1)]
    threads: usize,
    /// Seconds to run (ignored with --requests).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Stop after exactly this many requests instead.
    #[arg(long, short = 'n', value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Requests per second over all connections (open loop; at least 0.001,
    /// at most 1,000,000 a connection). With --duration, sends due before
    /// the end go out late for as long again as the run (at most
    /// --timeout); those a service slower than the schedule left unmade by
    /// then are counted as unsent.
    #[arg(long, short = 'R')]
    rate: Option<f64>,
    /// Seconds an answer may take before its connection counts as failed
    /// (and is reopened), and a connection may go on failing with no
    /// answer before it stops: a stalled or lost service ends the run.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Weights of the request kinds: place, cancel, cross, modify, fetch,
    /// ioc (a crossing immediate-or-cancel order), market (a market order),
    /// book (`GET /book`), ticker (`GET /ticker`), candles (`GET /candles`).
    #[arg(long, default_value = "place=50,cancel=35,cross=15", value_parser = Mix::parse)]
    mix: Mix,
    /// The mid price: buys rest 1 to 10 ticks below it, sells above.
    #[arg(long, default_value_t = 100.0)]
    mid: f64,
    /// The service's tick size (its --tick-size).
    #[arg(long, default_value_t = 0.01)]
    tick: f64,
    /// Seed of the request stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// WebSocket market-data subscribers to connect beside the load, each
    /// taking the trades; the report adds each trade message's delay from
    /// its execution_timestamp to its arrival (same machine only: one
    /// clock).
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    /// The subscribers also follow the feed's `orders` channel (every
    /// order's changes); the report counts those messages too.
    #[arg(long, requires = "subscribers")]
    feed_orders: bool,
    /// Orders per place request (placed, crossing, IOC and market alike):
    /// more than 1 sends them together as one `POST /orders/batch`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    batch: u16,
    /// Give every order a `client_order_id` of its own (unique to this
    /// run: `lg<start time>-<connection>-<n>`), to measure what naming
    /// orders costs.
    #[arg(long)]
    client_ids: bool,
    /// The service's `--api-token`, sent as `Authorization: Bearer` with
    /// every request (the same environment variable as the service's).
    #[arg(long, env = "ORDERBOOK_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also write the whole latency distribution to this file, in ms, as
    /// HdrHistogram's percentile distribution (the `.hgrm` text of wrk2's
    /// `--latency`, which HdrHistogram's plotter reads).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<std::path::PathBuf>,
}

/// The longest --duration or --timeout: a year (an end past what the
/// clock can add panicked).
const MAX_SECONDS: Duration = Duration::from_secs(365 * 24 * 3600);

/// The highest mid price in ticks: the service's prices are below 2^52
/// ticks, and crossing orders go above the mid.
const MAX_MID_TICKS: f64 = (1u64 << 50) as f64;

/// A count that must be 1 or more: 0 connections or threads would run
/// nothing and report it as a run.
fn at_least_1(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // NaN is in no range: a NaN tick or mid sent prices the service
    // refused.
    let ticks = cli.mid / cli.tick;
    if !(cli.tick > 0.0 && cli.tick.is_finite() && (11.0..=MAX_MID_TICKS).contains(&ticks)) {
        eprintln!("loadgen: --mid must be at least 11 and at most {MAX_MID_TICKS} ticks of --tick");
        return ExitCode::from(2);
    }
    // At most a send a microsecond on each connection: a schedule finer
    // than the clock's nanoseconds never moved on, and the run never ended.
    let most = 1e6 * cli.connections as f64;
    if cli.rate.is_some_and(|rate| !(0.001..=most).contains(&rate)) {
        eprintln!(
            "loadgen: --rate must be from 0.001 to {most} requests a second (1,000,000 a connection)"
        );
        return ExitCode::from(2);
    }
    // A run of nothing is refused, not reported as a run; with -n the
    // duration is not used.
    let duration = Duration::try_from_secs_f64(cli.duration)
        .ok()
        .filter(|duration| !duration.is_zero() && *duration <= MAX_SECONDS);
    let Some(duration) = duration.or(cli.requests.map(|_| Duration::ZERO)) else {
        eprintln!(
            "loadgen: --duration must be a positive number of seconds, at most {}",
            MAX_SECONDS.as_secs()
        );
        return ExitCode::from(2);
    };
    let timeout = Duration::try_from_secs_f64(cli.timeout)
        .ok()
        .filter(|timeout| *timeout >= Duration::from_millis(1) && *timeout <= MAX_SECONDS);
    let Some(timeout) = timeout else {
        eprintln!(
            "loadgen: --timeout must be from 0.001 to {} seconds",
            MAX_SECONDS.as_secs()
        );
        return ExitCode::from(2);
    };
    if cli.feed_orders && cli.subscribers == 0 {
        eprintln!("loadgen: --feed-orders needs --subscribers of at least 1");
        return ExitCode::from(2);
    }
    let settings = Settings {
        addr: cli.addr,
        connections: cli.connections,
        threads: cli.threads,
        stop: match cli.requests {
            Some(n) => Stop::Requests(n),
            None => Stop::After(duration),
        },
        rate: cli.rate,
        mix: cli.mix,
        mid_ticks: (cli.mid / cli.tick).round() as u64,
        tick: cli.tick,
        seed: cli.seed,
        batch: usize::from(cli.batch),
        extra_headers: cli.api_token.as_ref().map_or(String::new(), |token| {
            format!("Authorization: Bearer {token}\r\n")
        }),
        client_ids: cli.client_ids.then(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            // 48 bits of microseconds: another run's names differ.
            format!(
                "lg{:x}",
                now.map_or(0, |t| t.as_micros() as u64 & 0xffff_ffff_ffff)
            )
        }),
        timeout,
    };
    // Made before any load, so a path that cannot be written costs no run.
    let mut hgrm = match &cli.hgrm {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("loadgen: cannot write {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let subscribers = if cli.subscribers > 0 {
        match Subscribers::start(cli.addr, cli.subscribers, cli.feed_orders, timeout) {
            Ok(subscribers) => Some(subscribers),
            Err(error) => {
                eprintln!("loadgen: cannot subscribe to {}: {error}", cli.addr);
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let report = match loadgen::run(&settings) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("loadgen: cannot run against {}: {error}", cli.addr);
            return ExitCode::FAILURE;
        }
    };
    // A service lost during the run cannot say its last trade: the feed
    // has no end to wait for, but the load's report stands.
    let mut feed_lost = false;
    let feed = match subscribers {
        Some(subscribers) => match loadgen::feed::last_trade(cli.addr, timeout) {
            Ok(last) => Some(subscribers.finish(last)),
            Err(error) => {
                eprintln!(
                    "loadgen: cannot ask {} for its last trade: {error}; no feed figures",
                    cli.addr
                );
                feed_lost = true;
                None
            }
        },
        None => None,
    };
    if let Some(file) = &mut hgrm {
        let text = loadgen::hgrm::percentile_distribution(&report.latency_us);
        if let Err(error) = file.write_all(text.as_bytes()) {
            eprintln!("loadgen: cannot write the --hgrm file: {error}");
            return ExitCode::FAILURE;
        }
    }
    if cli.json {
        let mut json = report.to_json();
        if let Some(feed) = &feed {
            json["feed"] = feed_json(feed);
        }
        println!("{json}");
    } else {
        print_report(&settings, &report);
        if let Some(feed) = &feed {
            print_feed(feed);
        }
    }
    let feed_failed = feed_lost || feed.as_ref().is_some_and(|feed| !feed.errors.is_empty());
    if report.transport_errors > 0 || report.unexpected() > 0 || feed_failed {
        // Said on stderr too, so that a `--json` run's failure is named.
        eprintln!(
            "loadgen: the run failed: {} unexpected answers (statuses {:?}), {} transport errors{}",
            report.unexpected(),
            report.statuses,
            report.transport_errors,
            if feed_failed {
                ", and the feed failed"
            } else {
                ""
            }
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(settings: &Settings, report: &Report) {
    let mode = match settings.rate {
        Some(rate) => format!("open loop at {rate:.3} req/s"),
        None => "closed loop".to_owned(),
    };
    println!(
        "{} connections on {} thread(s), {mode}, {:.2} s",
        settings.connections,
        settings.threads.min(settings.connections),
        report.elapsed.as_secs_f64()
    );
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    println!(
        "requests {} ({:.1}/s); statuses {}",
        report.requests,
        report.throughput(),
        statuses.join(", ")
    );
    let overloaded = report.statuses.get(&503).copied().unwrap_or(0);
    if overloaded > 0 {
        // Back-pressure, not a failure of the run; but a rate and
        // latencies mostly of refusals must not read as the service's.
        println!(
            "overloaded: {overloaded} of {} answers were 503 (the service's command queue was full; nothing of them was done): the rate and latencies above include them; {:.1}/s were answered otherwise",
            report.requests,
            (report.requests - overloaded) as f64 / report.elapsed.as_secs_f64().max(1e-9)
        );
    }
    if settings.batch > 1 {
        println!(
            "batches of {} orders: {:.1} orders placed/s",
            settings.batch,
            report.placed as f64 / report.elapsed.as_secs_f64()
        );
    }
    println!(
        "placed {} (rested {}, IOC {}, market {}), cancelled {}, modified {}, fetched {}, book reads {}, ticker reads {}, candle reads {}; cancels and modifies of orders no longer resting {}, fetches of orders no longer kept {}; transport errors {}",
        report.placed,
        report.rested,
        report.ioc,
        report.market,
        report.cancelled,
        report.modified,
        report.fetched,
        report.book_reads,
        report.ticker_reads,
        report.candle_reads,
        report.not_resting,
        report.not_kept,
        report.transport_errors
    );
    if report.timeouts + report.given_up > 0 {
        println!(
            "of the transport errors, {} requests not answered within {} s; connections that stopped after failing that long with no answer {}",
            report.timeouts,
            settings.timeout.as_secs_f64(),
            report.given_up
        );
    }
    if report.unsent > 0 {
        println!(
            "unsent: {} sends due before the end were not made: the service answered slower than the schedule",
            report.unsent
        );
    }
    let latency: Vec<String> = percentiles(&report.latency_us)
        .iter()
        .map(|(label, value)| format!("{label} {value}"))
        .collect();
    println!("latency (µs): {}", latency.join("  "));
    if report.latency_by_kind_us.len() > 1 {
        for (kind, histogram) in &report.latency_by_kind_us {
            let latency: Vec<String> = percentiles(histogram)
                .iter()
                .map(|(label, value)| format!("{label} {value}"))
                .collect();
            println!("  {kind} ({}): {}", histogram.len(), latency.join("  "));
        }
    }
}

fn percentiles(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(&'static str, u64)> {
    Report::PERCENTILES
        .iter()
        .map(|&(label, q)| (label, histogram.value_at_quantile(q)))
        .collect()
}

fn print_feed(feed: &FeedReport) {
    let orders = match feed.orders {
        Some(orders) => format!(" and {orders} order messages"),
        None => String::new(),
    };
    println!(
        "feed: {} trade messages{orders} to {} subscriber(s); subscribers failed {}",
        feed.trades,
        feed.subscribers,
        feed.errors.len()
    );
    for error in &feed.errors {
        eprintln!("loadgen: subscriber: {error}");
    }
    let delay: Vec<String> = percentiles(&feed.delay_us)
        .iter()
        .map(|(label, value)| format!("{label} {value}"))
        .collect();
    println!(
        "feed delay (µs, execution_timestamp to arrival): {}",
        delay.join("  ")
    );
}

fn feed_json(feed: &FeedReport) -> serde_json::Value {
    let delay: serde_json::Map<String, serde_json::Value> = percentiles(&feed.delay_us)
        .into_iter()
        .map(|(label, value)| (label.to_owned(), value.into()))
        .collect();
    let mut json = serde_json::json!({
        "subscribers": feed.subscribers,
        "trades": feed.trades,
        "delay_us": delay,
        "errors": feed.errors,
    });
    if let Some(orders) = feed.orders {
        json["orders"] = orders.into();
    }
    json
}
