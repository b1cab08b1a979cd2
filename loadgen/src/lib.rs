//! Load generator for the orderbook service: keep-alive HTTP/1.1
//! connections sending a mix of order commands, with every answer's latency
//! kept in an HDR histogram.
//!
//! Each thread drives its share of the connections from one `mio` loop, one
//! request outstanding per connection. Without a rate the load is closed
//! (each connection sends its next request as soon as the answer to the last
//! arrives, as `wrk` does). With a rate it is open: each connection's sends
//! are scheduled at fixed times, and a request's latency counts from when it
//! was due, not from when it went out, so a stalled server is not hidden by
//! the requests it kept the generator from sending (coordinated omission,
//! as `wrk2` corrects it).
//!
//! The requests: non-crossing places (buys below the mid price, sells
//! above), crossing places (priced through the mid), and cancels, modifies
//! and fetches of orders this connection placed that it last saw resting.
//! A cancel or modify answered 404 (the order traded away meanwhile) is
//! counted, not an error.

pub mod feed;
pub mod hgrm;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, OwnedFd};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

/// What a run does.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The service.
    pub addr: SocketAddr,
    /// Keep-alive connections, spread over `threads`.
    pub connections: usize,
    /// Threads, each with its own event loop.
    pub threads: usize,
    /// When to stop.
    pub stop: Stop,
    /// Requests per second over all connections (open loop), or none
    /// (closed loop: as fast as the answers come).
    pub rate: Option<f64>,
    /// The share of each kind of request.
    pub mix: Mix,
    /// The mid price, in ticks of `tick`: buys rest below it, sells above.
    pub mid_ticks: u64,
    /// The price tick the service runs with (its `--tick-size`).
    pub tick: f64,
    /// Seed of the request stream (each connection derives its own).
    pub seed: u64,
    /// Orders per place request: 1 sends `POST /order/`, more send them
    /// together as one `POST /orders/batch` (placed, crossing, IOC and
    /// market orders alike; at most 100).
    pub batch: usize,
    /// Header lines sent with every request, each ending `\r\n`: the
    /// `Authorization` of a service run with `--api-token`, or nothing.
    pub extra_headers: String,
    /// With a prefix, every order carries a `client_order_id` of its own,
    /// `<prefix>-<connection>-<n>`; without one, none does.
    pub client_ids: Option<String>,
    /// How long an answer may take before its connection is given up as
    /// failed, and how long a connection may go on failing (refused,
    /// reset) before it stops: a service that stalls or is gone ends the
    /// run instead of holding it past its end.
    pub timeout: Duration,
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After exactly this many requests in all.
    Requests(u64),
}

/// Weights of the request kinds (any non-negative numbers, not all zero).
/// The kinds that act on an order this connection placed (cancel, modify,
/// fetch) send a place instead while it has none resting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mix {
    /// Non-crossing limit orders (`POST /order/`).
    pub place: u32,
    /// Cancels (`DELETE /order/{id}`).
    pub cancel: u32,
    /// Limit orders priced through the mid, which trade with what rests.
    pub cross: u32,
    /// Modifies (`PUT /order/{id}`): a larger total quantity and a new
    /// price on the same side of the mid, so the order goes to the back of
    /// a level and does not cross.
    pub modify: u32,
    /// Fetches (`GET /order/{id}`).
    pub fetch: u32,
    /// Immediate-or-cancel orders priced through the mid (`"time_in_force":
    /// "IOC"`): they trade what they meet and never rest.
    pub ioc: u32,
    /// Market orders (`"type": "market"`, no price): they trade what the
    /// other side holds, best price first, and never rest.
    pub market: u32,
    /// Reads of the book's top levels (`GET /book`).
    pub book: u32,
    /// Reads of the ticker (`GET /ticker`).
    pub ticker: u32,
    /// Reads of the last hundred one-minute candles (`GET /candles`).
    pub candles: u32,
}

impl Mix {
    /// Parses `place=50,cancel=35,cross=15` (kinds left out weigh 0; the
    /// kinds are place, cancel, cross, modify, fetch, ioc, market, book,
    /// ticker and candles).
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=weight"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            match name.trim() {
                "place" => mix.place = weight,
                "cancel" => mix.cancel = weight,
                "cross" => mix.cross = weight,
                "modify" => mix.modify = weight,
                "fetch" => mix.fetch = weight,
                "ioc" => mix.ioc = weight,
                "market" => mix.market = weight,
                "book" => mix.book = weight,
                "ticker" => mix.ticker = weight,
                "candles" => mix.candles = weight,
                other => {
                    return Err(format!(
                        "{other:?}: unknown kind (place, cancel, cross, modify, fetch, ioc, market, book, ticker or candles)"
                    ))
                }
            }
        }
        if mix.total() == 0 {
            return Err("the mix gives every kind weight 0".to_owned());
        }
        Ok(mix)
    }

    fn weights(&self) -> [(Kind, u64); 10] {
        [
            (Kind::Place, self.place as u64),
            (Kind::Cancel, self.cancel as u64),
            (Kind::Cross, self.cross as u64),
            (Kind::Modify, self.modify as u64),
            (Kind::Fetch, self.fetch as u64),
            (Kind::Ioc, self.ioc as u64),
            (Kind::Market, self.market as u64),
            (Kind::Book, self.book as u64),
            (Kind::Ticker, self.ticker as u64),
            (Kind::Candles, self.candles as u64),
        ]
    }

    fn total(&self) -> u64 {
        self.weights().iter().map(|&(_, w)| w).sum()
    }

    fn pick(&self, rng: &mut StdRng) -> Kind {
        let mut draw = rng.random_range(0..self.total());
        for (kind, weight) in self.weights() {
            if draw < weight {
                return kind;
            }
            draw -= weight;
        }
        unreachable!("the draw is below the total")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Place,
    Cancel,
    Cross,
    Modify,
    Fetch,
    Ioc,
    Market,
    Book,
    Ticker,
    Candles,
}

impl Kind {
    /// Its name in `--mix` and in the report.
    fn name(self) -> &'static str {
        match self {
            Kind::Place => "place",
            Kind::Cancel => "cancel",
            Kind::Cross => "cross",
            Kind::Modify => "modify",
            Kind::Fetch => "fetch",
            Kind::Ioc => "ioc",
            Kind::Market => "market",
            Kind::Book => "book",
            Kind::Ticker => "ticker",
            Kind::Candles => "candles",
        }
    }
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// An order this connection placed and last saw resting.
struct Held {
    id: String,
    buy: bool,
    /// Its total quantity as last placed or modified.
    quantity: u64,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Requests answered.
    pub requests: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Places (crossing or not) answered 200.
    pub placed: u64,
    /// Of those, the ones the answer showed resting.
    pub rested: u64,
    /// Cancels answered 200.
    pub cancelled: u64,
    /// Modifies answered 200.
    pub modified: u64,
    /// Fetches answered 200.
    pub fetched: u64,
    /// Of the places, the IOC ones (each answered `filled` or `cancelled`).
    pub ioc: u64,
    /// Of the places, the market ones (each answered `filled` or
    /// `cancelled`).
    pub market: u64,
    /// Book reads answered 200.
    pub book_reads: u64,
    /// Ticker reads answered 200.
    pub ticker_reads: u64,
    /// Candle reads answered 200.
    pub candle_reads: u64,
    /// Cancels and modifies answered 404: the order had traded away.
    pub not_resting: u64,
    /// Fetches answered 404: the order had traded away and then left the
    /// service's bounded history of finished orders (`--finished-orders`).
    pub not_kept: u64,
    /// Connections that failed (refused, reset, closed mid-answer,
    /// unparsable answer, no answer within the timeout); each is reopened,
    /// after a pause that doubles while it goes on failing.
    pub transport_errors: u64,
    /// Of those, requests not answered within the timeout.
    pub timeouts: u64,
    /// Connections that stopped because they failed for the whole
    /// timeout without an answer (the service gone, or refusing).
    pub given_up: u64,
    /// Under a rate with a duration: sends due before the end that were
    /// not made, the service answering slower than the schedule (a run
    /// stops at its end; those would have been sent after it).
    pub unsent: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Answer latency in microseconds (from when each request was due,
    /// under a rate).
    pub latency_us: Histogram<u64>,
    /// The same, by the kind of request (`place`, `cancel`, ... as in
    /// `--mix`): a cancel's latency is not a place's.
    pub latency_by_kind_us: BTreeMap<&'static str, Histogram<u64>>,
}

impl Report {
    /// Answers per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Answers other than 200, a cancel's, modify's or fetch's 404 and 503
    /// (overloaded): the service refused a request the generator meant to
    /// be valid.
    pub fn unexpected(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(&status, _)| status != 200 && status != 404 && status != 503)
            .map(|(_, &n)| n)
            .sum::<u64>()
            + (self.statuses.get(&404).copied().unwrap_or(0) - self.not_resting - self.not_kept)
    }

    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.placed += other.placed;
        self.rested += other.rested;
        self.cancelled += other.cancelled;
        self.modified += other.modified;
        self.fetched += other.fetched;
        self.ioc += other.ioc;
        self.market += other.market;
        self.book_reads += other.book_reads;
        self.ticker_reads += other.ticker_reads;
        self.candle_reads += other.candle_reads;
        self.not_resting += other.not_resting;
        self.not_kept += other.not_kept;
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.given_up += other.given_up;
        self.unsent += other.unsent;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with the same bounds");
        for (kind, histogram) in other.latency_by_kind_us {
            self.latency_by_kind_us
                .entry(kind)
                .or_insert_with(latency_histogram)
                .add(&histogram)
                .expect("histograms with the same bounds");
        }
    }

    fn empty() -> Report {
        Report {
            requests: 0,
            statuses: BTreeMap::new(),
            placed: 0,
            rested: 0,
            cancelled: 0,
            modified: 0,
            fetched: 0,
            ioc: 0,
            market: 0,
            book_reads: 0,
            ticker_reads: 0,
            candle_reads: 0,
            not_resting: 0,
            not_kept: 0,
            transport_errors: 0,
            timeouts: 0,
            given_up: 0,
            unsent: 0,
            elapsed: Duration::ZERO,
            latency_us: latency_histogram(),
            latency_by_kind_us: BTreeMap::new(),
        }
    }

    /// The percentiles printed, as (label, quantile).
    pub const PERCENTILES: [(&'static str, f64); 6] = [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("p99.99", 0.9999),
        ("max", 1.0),
    ];

    /// The report as one JSON object, for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        let percentiles = |histogram: &Histogram<u64>| -> serde_json::Value {
            Self::PERCENTILES
                .iter()
                .map(|&(label, q)| (label.to_owned(), histogram.value_at_quantile(q).into()))
                .collect::<serde_json::Map<String, serde_json::Value>>()
                .into()
        };
        let by_kind: serde_json::Map<String, serde_json::Value> = self
            .latency_by_kind_us
            .iter()
            .map(|(kind, histogram)| {
                let mut entry = percentiles(histogram);
                entry["count"] = histogram.len().into();
                ((*kind).to_owned(), entry)
            })
            .collect();
        serde_json::json!({
            "requests": self.requests,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests_per_s": self.throughput(),
            "statuses": self.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "placed": self.placed,
            "rested": self.rested,
            "cancelled": self.cancelled,
            "modified": self.modified,
            "fetched": self.fetched,
            "ioc": self.ioc,
            "market": self.market,
            "book_reads": self.book_reads,
            "ticker_reads": self.ticker_reads,
            "candle_reads": self.candle_reads,
            "not_resting": self.not_resting,
            "not_kept": self.not_kept,
            "transport_errors": self.transport_errors,
            "timeouts": self.timeouts,
            "connections_given_up": self.given_up,
            "unsent": self.unsent,
            "latency_us": percentiles(&self.latency_us),
            "latency_by_kind_us": by_kind,
        })
    }
}

/// Runs the load and returns what it measured. Fails only if a thread
/// cannot set up its event loop.
pub fn run(settings: &Settings) -> io::Result<Report> {
    let connections = settings.connections.max(1);
    let threads = settings.threads.clamp(1, connections);
    let started = Instant::now();
    let mut report = Report::empty();
    let results: Vec<io::Result<Report>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // Connection `c` belongs to thread `c % threads`.
                let mine: Vec<usize> = (t..connections).step_by(threads).collect();
                scope.spawn(move || drive(settings, &mine, connections, started))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    });
    for result in results {
        report.merge(result?);
    }
    Ok(report)
}

/// Requests connection `index` of `total` sends when the run is counted.
fn share(stop: Stop, index: usize, total: usize) -> Option<u64> {
    match stop {
        Stop::Requests(n) => {
            let total = total as u64;
            Some(n / total + u64::from((index as u64) < n % total))
        }
        Stop::After(_) => None,
    }
}

/// How long a failed connection waits before it is reopened, doubled at
/// each failure in a row up to [`MAX_REOPEN_PAUSE`]: against a port that
/// refuses, reopening at once made 80,000 attempts a second.
const REOPEN_PAUSE: Duration = Duration::from_millis(10);
const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(1);

/// One connection's send times in an open loop: send `k` is due
/// `(offset + k) * every` seconds after the start, computed from `k`. Adding
/// the interval once a send drifted by its rounding to whole nanoseconds:
/// at 3 a second, the 4th send fell due a hair before the end of a 1 s run.
#[derive(Clone, Copy)]
struct Schedule {
    started: Instant,
    every: f64,
    offset: f64,
}

/// Connection `index` of `total`'s schedule, one send each `every` seconds,
/// staggered by its place among the connections.
fn schedule(started: Instant, every: f64, index: usize, total: usize) -> Schedule {
    Schedule {
        started,
        every,
        offset: index as f64 / total as f64,
    }
}

impl Schedule {
    fn due(&self, k: u64) -> Instant {
        self.started + Duration::from_secs_f64((self.offset + k as f64) * self.every)
    }

    /// Sends due before `end` (one due within a microsecond of it is at it:
    /// the arithmetic is in floating point).
    fn before(&self, end: Instant) -> u64 {
        let span = end.saturating_duration_since(self.started).as_secs_f64() - 1e-6;
        (span / self.every - self.offset).ceil().max(0.0) as u64
    }
}

/// The event loop's token for its [`Timer`].
const TIMER: Token = Token(usize::MAX);

/// A timerfd in the event loop, to wake it when a send is due. A poll
/// timeout would do for a closed loop, but `epoll` rounds it up to whole
/// milliseconds, and under a rate every send made late that way would
/// count as latency of the service (0.5 to 1 ms at 2,000 req/s, measured).
struct Timer {
    fd: OwnedFd,
}

impl Timer {
    fn new(poll: &Poll) -> io::Result<Timer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        poll.registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), TIMER, Interest::READABLE)?;
        Ok(Timer { fd })
    }

    /// Fires once, `after` from now (a zero `after` would disarm it).
    fn arm(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec {
            tv_sec: after.as_secs() as _,
            tv_nsec: after.subsec_nanos() as _,
        };
        timerfd_settime(
            &self.fd,
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: value,
            },
        )?;
        Ok(())
    }

    /// Consumes an expiry, so the edge-triggered loop sees the next one.
    fn clear(&self) {
        let mut expiries = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut expiries);
    }
}

/// One connection's state.
struct Connection {
    index: usize,
    stream: Option<TcpStream>,
    rng: StdRng,
    /// Orders this connection placed and last saw resting.
    resting: Vec<Held>,
    /// The order a cancel or modify on the wire acts on (out of `resting`
    /// until the answer says whether it still rests).
    acting_on: Option<Held>,
    /// The request on the wire: its kind and when it was due (or sent).
    in_flight: Option<(Kind, Instant)>,
    /// When the request on the wire went out (its answer's timeout runs
    /// from then, not from when it was due).
    sent_at: Instant,
    /// Since when it has failed without an answer in between, and when it
    /// may be reopened.
    failing_since: Option<Instant>,
    reopen_at: Option<Instant>,
    /// The pause before the next reopen.
    pause: Duration,
    /// Request bytes not yet written.
    out: Vec<u8>,
    /// Answer bytes read so far.
    input: Vec<u8>,
    /// Requests sent, and the most it may send (a counted run).
    sent: u64,
    /// Orders this connection named (`client_order_id`s given).
    named: u64,
    quota: Option<u64>,
    /// Under a rate: when its sends are due.
    schedule: Option<Schedule>,
}

impl Connection {
    /// Under a rate: when its next send is due (each send, made or failed,
    /// takes its slot of the schedule).
    fn next_due(&self) -> Option<Instant> {
        self.schedule.map(|schedule| schedule.due(self.sent))
    }
}

fn drive(
    settings: &Settings,
    mine: &[usize],
    total: usize,
    started: Instant,
) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let timer = Timer::new(&poll)?;
    let mut events = Events::with_capacity(1024);
    let mut report = Report::empty();
    // Each connection's sends are `total / rate` apart, staggered.
    let every = settings.rate.map(|rate| total as f64 / rate.max(1e-9));
    let deadline = match settings.stop {
        Stop::After(duration) => Some(started + duration),
        Stop::Requests(_) => None,
    };
    // An open loop sends what fell due before the end even late, for as
    // long again as the run (at most the timeout), so a machine's hiccup
    // costs no send; what a service too slow for the schedule leaves
    // unsent then is counted, and the run ends (a 1 s run at 200,000 a
    // second took 7.2 s).
    let sends_end = match (every, settings.stop) {
        (Some(_), Stop::After(duration)) => {
            Some(started + duration + duration.min(settings.timeout))
        }
        _ => deadline,
    };
    let mut connections: Vec<Connection> = mine
        .iter()
        .map(|&index| {
            (
                index,
                every.map(|every| schedule(started, every, index, total)),
            )
        })
        .map(|(index, schedule)| Connection {
            index,
            stream: None,
            rng: StdRng::seed_from_u64(
                settings.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            resting: Vec::new(),
            acting_on: None,
            in_flight: None,
            sent_at: started,
            failing_since: None,
            reopen_at: None,
            pause: REOPEN_PAUSE,
            out: Vec::with_capacity(256),
            input: Vec::with_capacity(4096),
            sent: 0,
            named: 0,
            // An open loop with an end sends what its schedule holds
            // before the end.
            quota: match (schedule, deadline) {
                (Some(schedule), Some(end)) => Some(schedule.before(end)),
                _ => share(settings.stop, index, total),
            },
            schedule,
        })
        .collect();
    for (slot, connection) in connections.iter_mut().enumerate() {
        open(&mut poll, connection, slot, settings.addr)?;
    }
    let mut last_answer = started;
    loop {
        let now = Instant::now();
        // Give up the answers that are overdue.
        for connection in &mut connections {
            if connection.in_flight.is_some() && now >= connection.sent_at + settings.timeout {
                report.timeouts += 1;
                let why = format!("no answer within {} s", settings.timeout.as_secs_f64());
                fail(
                    &mut poll,
                    connection,
                    &mut report,
                    io::Error::other(why),
                    settings,
                );
            }
        }
        // Send whatever is due on idle connections.
        for (slot, connection) in connections.iter_mut().enumerate() {
            if connection.in_flight.is_some()
                || connection
                    .quota
                    .is_some_and(|quota| connection.sent >= quota)
            {
                continue;
            }
            if connection.stream.is_none() {
                if connection.reopen_at.is_some_and(|at| now < at) {
                    continue;
                }
                if let Err(error) = open(&mut poll, connection, slot, settings.addr) {
                    fail(&mut poll, connection, &mut report, error, settings);
                    continue;
                }
            }
            if sends_end.is_some_and(|end| now >= end) {
                // The end: what the schedule held and was not sent stays
                // unsent (an open loop's quota is its schedule).
                if every.is_some() {
                    let quota = connection.quota.unwrap_or(connection.sent);
                    report.unsent += quota.saturating_sub(connection.sent);
                }
                connection.quota = Some(connection.sent);
                continue;
            }
            match connection.next_due() {
                Some(due) if due > now => continue,
                // Open loop: the latency counts from when it was due.
                Some(due) => start_request(settings, connection, due),
                None => start_request(settings, connection, Instant::now()),
            }
            if let Err(error) = flush(connection) {
                fail(&mut poll, connection, &mut report, error, settings);
            }
        }
        // Done when every answer is in and nothing more is to be sent: the
        // quota met (a counted run; under a rate, every send due before the
        // end has gone, however late), or the end passed (a closed loop).
        let closed_loop_over =
            every.is_none() && deadline.is_some_and(|deadline| Instant::now() >= deadline);
        let finished = connections.iter().all(|c| {
            c.in_flight.is_none()
                && (c.quota.is_some_and(|quota| c.sent >= quota) || closed_loop_over)
        });
        if finished {
            break;
        }
        // Sleep until an answer, the next due send (the timer) or the end
        // (a poll timeout: a millisecond late does not matter there).
        let next_due = connections
            .iter()
            .filter(|c| c.in_flight.is_none() && c.quota.is_none_or(|quota| c.sent < quota))
            .filter_map(Connection::next_due)
            .min();
        if let Some(due) = next_due {
            timer.arm(due.saturating_duration_since(Instant::now()))?;
        }
        // Wake for the end, the first answer to fall overdue, and the
        // first failed connection to reopen (nothing else would wake the
        // loop for those).
        let overdue = connections
            .iter()
            .filter(|c| c.in_flight.is_some())
            .map(|c| c.sent_at + settings.timeout);
        let reopening = connections
            .iter()
            .filter(|c| c.stream.is_none() && c.quota.is_none_or(|quota| c.sent < quota))
            .filter_map(|c| c.reopen_at);
        let wake = (deadline.into_iter().chain(sends_end))
            .filter(|&end| Instant::now() < end)
            .chain(overdue)
            .chain(reopening)
            .min();
        let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, timeout)?;
        for event in events.iter() {
            if event.token() == TIMER {
                timer.clear();
                continue;
            }
            let slot = event.token().0;
            let connection = &mut connections[slot];
            let outcome = if event.is_writable() && !connection.out.is_empty() {
                flush(connection)
            } else {
                Ok(())
            };
            let outcome =
                outcome.and_then(|()| read_answers(connection, &mut report, &mut last_answer));
            match outcome {
                Ok(()) => {}
                Err(error) if closed_while_idle(connection, &error) => {
                    // The service's idle timeout: nothing was asked, so
                    // nothing was lost; the next send reopens it.
                    drop_stream(&mut poll, connection);
                }
                Err(error) => fail(&mut poll, connection, &mut report, error, settings),
            }
        }
    }
    // Open loop, the run lasts its schedule at least: timed to the last
    // answer alone, N sends 1/R apart span (N - 1)/R, and the rate read
    // N/(N - 1) times too high (5 sends at 1/s "1.2/s over 4.00 s").
    let scheduled = match (settings.rate, settings.stop) {
        (Some(_), Stop::After(duration)) => duration,
        (Some(rate), Stop::Requests(requests)) => {
            Duration::from_secs_f64(requests as f64 / rate.max(1e-9))
        }
        (None, _) => Duration::ZERO,
    };
    report.elapsed = last_answer.duration_since(started).max(scheduled);
    Ok(report)
}

fn open(
    poll: &mut Poll,
    connection: &mut Connection,
    slot: usize,
    addr: SocketAddr,
) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    poll.registry().register(
        &mut stream,
        Token(slot),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    connection.stream = Some(stream);
    connection.out.clear();
    connection.input.clear();
    Ok(())
}

/// Counts a failed connection (its request is lost) and closes it; the
/// next send reopens it once its pause is over. A connection that has
/// failed for the whole timeout with no answer in between stops: the
/// service is gone or refusing, and a counted run would otherwise spend
/// what is left of its count on failures. Its last reopen is made at the
/// timeout, so a service back before then is found (one back between a
/// pause's reopen and the timeout was given up unseen).
fn fail(
    poll: &mut Poll,
    connection: &mut Connection,
    report: &mut Report,
    error: io::Error,
    settings: &Settings,
) {
    report.transport_errors += 1;
    if report.transport_errors <= 3 {
        eprintln!("loadgen: connection {}: {error}", connection.index);
    }
    connection.in_flight = None;
    connection.acting_on = None;
    drop_stream(poll, connection);
    let now = Instant::now();
    connection.pause = match connection.failing_since {
        None => REOPEN_PAUSE,
        Some(_) => (connection.pause * 2).min(MAX_REOPEN_PAUSE),
    };
    let since = *connection.failing_since.get_or_insert(now);
    let last_try = since + settings.timeout;
    if now >= last_try {
        connection.quota = Some(connection.sent);
        report.given_up += 1;
        if report.given_up == 1 {
            eprintln!(
                "loadgen: connection {} failed for {} s with no answer; it stops (so does each such connection)",
                connection.index,
                settings.timeout.as_secs_f64()
            );
        }
    }
    connection.reopen_at = Some((now + connection.pause).min(last_try));
}

/// True if the service closed the connection while no request was on it
/// (as a keep-alive server does after its idle timeout): not a failure.
fn closed_while_idle(connection: &Connection, error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::UnexpectedEof
        && connection.in_flight.is_none()
        && connection.input.is_empty()
}

/// Closes the connection's socket; the next send reopens it.
fn drop_stream(poll: &mut Poll, connection: &mut Connection) {
    if let Some(mut stream) = connection.stream.take() {
        let _ = poll.registry().deregister(&mut stream);
    }
}

/// Writes the connection's next request into its output buffer; its latency
/// will count from `since`.
fn start_request(settings: &Settings, connection: &mut Connection, since: Instant) {
    let mut kind = settings.mix.pick(&mut connection.rng);
    if matches!(kind, Kind::Cancel | Kind::Modify | Kind::Fetch) && connection.resting.is_empty() {
        kind = Kind::Place;
    }
    // A price 1 to 10 ticks from the mid: on the buyer's side (below) or
    // the seller's (above).
    let price = |rng: &mut StdRng, below: bool| {
        let away = rng.random_range(1..=10u64);
        let ticks = if below {
            settings.mid_ticks - away
        } else {
            settings.mid_ticks + away
        };
        ticks as f64 * settings.tick
    };
    let rng = &mut connection.rng;
    let out = &mut connection.out;
    let extra = &settings.extra_headers;
    match kind {
        Kind::Cancel | Kind::Modify => {
            let at = rng.random_range(0..connection.resting.len());
            let held = connection.resting.swap_remove(at);
            if kind == Kind::Cancel {
                let _ = write!(
                    out,
                    "DELETE /order/{} HTTP/1.1\r\nHost: loadgen\r\n{extra}Content-Length: 0\r\n\r\n",
                    held.id
                );
            } else {
                let quantity = held.quantity + rng.random_range(1..=10u64);
                let body = format!(
                    "{{\"quantity\":{quantity},\"price\":{}}}",
                    price(rng, held.buy)
                );
                let _ = write!(
                    out,
                    "PUT /order/{} HTTP/1.1\r\nHost: loadgen\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    held.id,
                    body.len()
                );
                connection.acting_on = Some(Held { quantity, ..held });
            }
        }
        Kind::Fetch => {
            let at = rng.random_range(0..connection.resting.len());
            let _ = write!(
                out,
                "GET /order/{} HTTP/1.1\r\nHost: loadgen\r\n{extra}\r\n",
                connection.resting[at].id
            );
        }
        Kind::Book | Kind::Ticker | Kind::Candles => {
            let path = match kind {
                Kind::Book => "/book",
                Kind::Ticker => "/ticker",
                _ => "/candles",
            };
            let _ = write!(out, "GET {path} HTTP/1.1\r\nHost: loadgen\r\n{extra}\r\n");
        }
        Kind::Place | Kind::Cross | Kind::Ioc | Kind::Market => {
            let (index, named) = (connection.index, &mut connection.named);
            let mut order = || {
                let buy = rng.random_bool(0.5);
                let side = if buy { 1 } else { -1 };
                let quantity = rng.random_range(1..=100u32);
                let name = match &settings.client_ids {
                    Some(prefix) => {
                        *named += 1;
                        format!(",\"client_order_id\":\"{prefix}-{index}-{named}\"")
                    }
                    None => String::new(),
                };
                if kind == Kind::Market {
                    return format!(
                        "{{\"type\":\"market\",\"quantity\":{quantity},\"side\":{side}{name}}}"
                    );
                }
                // A place rests on its own side of the mid; a cross or an
                // IOC is priced on the other.
                let price = price(rng, buy == (kind == Kind::Place));
                let tif = if kind == Kind::Ioc {
                    ",\"time_in_force\":\"IOC\""
                } else {
                    ""
                };
                format!("{{\"quantity\":{quantity},\"price\":{price},\"side\":{side}{tif}{name}}}")
            };
            let (path, body) = if settings.batch > 1 {
                let orders: Vec<String> = (0..settings.batch).map(|_| order()).collect();
                (
                    "/orders/batch",
                    format!("{{\"orders\":[{}]}}", orders.join(",")),
                )
            } else {
                ("/order/", order())
            };
            let _ = write!(
                out,
                "POST {path} HTTP/1.1\r\nHost: loadgen\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    }
    connection.sent += 1;
    connection.in_flight = Some((kind, since));
    connection.sent_at = Instant::now();
}

fn flush(connection: &mut Connection) -> io::Result<()> {
    let Some(stream) = connection.stream.as_mut() else {
        return Ok(());
    };
    while !connection.out.is_empty() {
        match stream.write(&connection.out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                connection.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_answers(
    connection: &mut Connection,
    report: &mut Report,
    last: &mut Instant,
) -> io::Result<()> {
    let Some(stream) = connection.stream.as_mut() else {
        return Ok(());
    };
    let mut buffer = [0u8; 16 * 1024];
    // An answer and the close after it can come in one read: the answer
    // is taken first (it was thrown away with the close, and counted as a
    // failure: a service closing after each answer lost 71 of 100).
    let mut closed = false;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => connection.input.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    while let Some(Answer {
        status,
        body,
        used,
        closes,
    }) = parse_answer(&connection.input)?
    {
        let Some((kind, due)) = connection.in_flight.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an answer nobody asked for",
            ));
        };
        let now = Instant::now();
        *last = now;
        let micros = now.duration_since(due).as_micros().max(1) as u64;
        report.latency_us.saturating_record(micros);
        report
            .latency_by_kind_us
            .entry(kind.name())
            .or_insert_with(latency_histogram)
            .saturating_record(micros);
        report.requests += 1;
        *report.statuses.entry(status).or_default() += 1;
        let acted_on = connection.acting_on.take();
        match (kind, status) {
            (Kind::Place | Kind::Cross | Kind::Ioc | Kind::Market, 200) => {
                let orders = match serde_json::from_slice(body) {
                    Ok(serde_json::Value::Array(orders)) => orders,
                    Ok(order) => vec![order],
                    Err(_) => Vec::new(),
                };
                // A batch's refused orders (`status_code`) have no id.
                for order in orders.iter().filter(|order| order["id"].is_string()) {
                    report.placed += 1;
                    report.ioc += u64::from(kind == Kind::Ioc);
                    report.market += u64::from(kind == Kind::Market);
                    if let Some(held) = resting(order) {
                        report.rested += 1;
                        connection.resting.push(held);
                    }
                }
            }
            (Kind::Cancel, 200) => report.cancelled += 1,
            (Kind::Modify, 200) => {
                report.modified += 1;
                connection.resting.extend(acted_on);
            }
            (Kind::Cancel | Kind::Modify, 404) => report.not_resting += 1,
            (Kind::Fetch, 200) => report.fetched += 1,
            (Kind::Fetch, 404) => report.not_kept += 1,
            (Kind::Book, 200) => report.book_reads += 1,
            (Kind::Ticker, 200) => report.ticker_reads += 1,
            (Kind::Candles, 200) => report.candle_reads += 1,
            _ => {}
        }
        connection.input.drain(..used);
        connection.failing_since = None;
        connection.reopen_at = None;
        if closes {
            connection.input.clear();
            closed = true;
            break;
        }
    }
    if closed {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed by the service",
        ));
    }
    Ok(())
}

/// One complete answer at the front of `input`: its status, its body and
/// the bytes it took; `None` if it is not all there yet.
fn parse_answer(input: &[u8]) -> io::Result<Option<Answer<'_>>> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(input) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let status = response.code.unwrap_or(0);
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "an answer without Content-Length",
            )
        })?;
    if input.len() < head + length {
        return Ok(None);
    }
    let closes = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("connection")
            && (h.value.split(|&b| b == b','))
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
    });
    Ok(Some(Answer {
        status,
        body: &input[head..head + length],
        used: head + length,
        closes,
    }))
}

/// One answer read off a connection.
#[derive(Debug, PartialEq)]
struct Answer<'a> {
    status: u16,
    body: &'a [u8],
    /// Bytes it took of the input.
    used: usize,
    /// It says `Connection: close`: the service closes after it, so no
    /// request may follow on the connection (one sent before the close
    /// arrived was lost with it).
    closes: bool,
}

/// A placed order that rests, from its `POST /order/` answer (or its
/// place in a batch's).
fn resting(order: &serde_json::Value) -> Option<Held> {
    match order["status"].as_str()? {
        "open" | "partially filled" => Some(Held {
            id: order["id"].as_str()?.to_owned(),
            buy: order["side"].as_i64()? == 1,
            quantity: order["quantity"].as_u64()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_is_kind_equals_weight_and_needs_some_weight() {
        assert_eq!(
            Mix::parse("place=50, cancel=35,cross=15"),
            Ok(Mix {
                place: 50,
                cancel: 35,
                cross: 15,
                ..Mix::default()
            })
        );
        assert_eq!(
            Mix::parse("place=1,modify=2,fetch=3"),
            Ok(Mix {
                place: 1,
                modify: 2,
                fetch: 3,
                ..Mix::default()
            })
        );
        assert_eq!(
            Mix::parse("ioc=2,book=1,market=3,ticker=4,candles=5"),
            Ok(Mix {
                ioc: 2,
                book: 1,
                market: 3,
                ticker: 4,
                candles: 5,
                ..Mix::default()
            })
        );
        assert_eq!(
            Mix::parse("place=0"),
            Err("the mix gives every kind weight 0".to_owned())
        );
        assert_eq!(
            Mix::parse("amend=3"),
            Err(
                "\"amend\": unknown kind (place, cancel, cross, modify, fetch, ioc, market, book, ticker or candles)"
                    .to_owned()
            )
        );
        assert_eq!(
            Mix::parse("place"),
            Err("\"place\": expected kind=weight".to_owned())
        );
        assert_eq!(
            Mix::parse("place=-1"),
            Err("\"place=-1\": the weight must be a whole number".to_owned())
        );
    }

    #[test]
    fn a_counted_run_splits_its_requests_exactly() {
        let shares: Vec<u64> = (0..3)
            .map(|i| share(Stop::Requests(10), i, 3).unwrap())
            .collect();
        assert_eq!(shares, vec![4, 3, 3]);
        assert_eq!(share(Stop::After(Duration::from_secs(1)), 0, 3), None);
    }

    /// An open loop of R a second for D seconds holds R x D sends, whatever
    /// the rate's rounding: at 3 a second over 1 s the 4th send fell due a
    /// hair before the end (and was counted unsent by an idle service).
    #[test]
    fn an_open_loop_schedule_holds_rate_times_duration_sends() {
        let started = Instant::now();
        for connections in 1..=4usize {
            for rate in (1..=300u64).chain([333, 1_000, 2_999, 3_000, 30_000]) {
                for seconds in [1u64, 2, 7] {
                    let end = started + Duration::from_secs(seconds);
                    let every = connections as f64 / rate as f64;
                    let sends: u64 = (0..connections)
                        .map(|i| schedule(started, every, i, connections).before(end))
                        .sum();
                    assert_eq!(
                        sends,
                        rate * seconds,
                        "{connections} x {rate}/s x {seconds} s"
                    );
                }
            }
        }
        let one = schedule(started, 1.0 / 3.0, 0, 1);
        assert_eq!(one.due(3), started + Duration::from_secs(1));
    }

    #[test]
    fn answers_are_framed_by_content_length() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: keep-alive, Close\r\n\r\n{x}";
        let first = parse_answer(two).unwrap().unwrap();
        assert_eq!(
            (first.status, first.body, first.used, first.closes),
            (200, &b"{}"[..], 40, false)
        );
        let second = parse_answer(&two[first.used..]).unwrap().unwrap();
        assert_eq!(
            (second.status, second.body, second.closes),
            (404, &b"{x}"[..], true)
        );
        assert_eq!(parse_answer(&two[..39]).unwrap(), None);
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
