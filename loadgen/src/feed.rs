//! Market-data subscribers beside the load: WebSocket clients of the
//! service's feed (`GET /ws`) that take only trades and time each one from
//! its `execution_timestamp` (the service's stamp of the command that
//! traded, taken when the command arrived) to its arrival here. That is the
//! delay a market-data consumer sees behind the order flow. It needs the
//! generator and the service on one clock: the same machine.
//!
//! Each subscriber is a thread with a blocking `tungstenite` client; it
//! joins before the load starts (its `subscribed` answer is in), and after
//! the load it reads on until the last trade the service made (its
//! `GET /trades?limit=1`) has arrived, so it has every trade the load made;
//! a timer could not tell a busy machine's late publisher from an end.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tungstenite::{Message, WebSocket};

/// How long the feed must stay silent after the load before a subscriber
/// stops, when the load made no trade at all.
pub const QUIET: Duration = Duration::from_millis(300);

/// Longest a subscriber waits after the load for the last trade.
pub const LAST_TRADE_WAIT: Duration = Duration::from_secs(30);

/// What the subscribers measured.
#[derive(Debug)]
pub struct FeedReport {
    /// Subscribers that took part.
    pub subscribers: usize,
    /// Trade messages received, over all subscribers.
    pub trades: u64,
    /// `order` messages received, over all subscribers, when they follow
    /// the `orders` channel.
    pub orders: Option<u64>,
    /// From each trade's `execution_timestamp` to its arrival, in
    /// microseconds.
    pub delay_us: Histogram<u64>,
    /// Subscribers the service closed or that failed, with why.
    pub errors: Vec<String>,
}

/// Subscribers reading the feed on their own threads.
pub struct Subscribers {
    stop: Arc<AtomicBool>,
    /// The `unique_id` of the last trade of the load, set before `stop`.
    last_trade: Arc<OnceLock<Option<String>>>,
    /// The service's newest trade once they had joined: one made before
    /// them, which they are never sent.
    newest_before: Option<String>,
    threads: Vec<JoinHandle<Result<Tally, String>>>,
    /// They follow the `orders` channel too.
    orders: bool,
}

/// One subscriber's count and delays.
struct Tally {
    trades: u64,
    orders: u64,
    delay_us: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

impl Subscribers {
    /// Connects `count` subscribers to `addr` and returns once each is
    /// subscribed to trades only (and to `orders`, with `orders`).
    pub fn start(
        addr: SocketAddr,
        count: usize,
        orders: bool,
        timeout: Duration,
    ) -> io::Result<Subscribers> {
        let stop = Arc::new(AtomicBool::new(false));
        let last_trade = Arc::new(OnceLock::new());
        let (joined, joins) = mpsc::channel();
        let threads: Vec<_> = (0..count)
            .map(|_| {
                let (stop, joined) = (Arc::clone(&stop), joined.clone());
                let last_trade = Arc::clone(&last_trade);
                std::thread::spawn(move || {
                    let mut ws = match join(addr, orders) {
                        Ok(ws) => {
                            let _ = joined.send(Ok(()));
                            ws
                        }
                        Err(error) => {
                            let _ = joined.send(Err(error.clone()));
                            return Err(error);
                        }
                    };
                    read_trades(&mut ws, &stop, &last_trade, orders)
                })
            })
            .collect();
        drop(joined);
        let mut subscribers = Subscribers {
            stop,
            last_trade,
            newest_before: None,
            threads,
            orders,
        };
        for _ in 0..count {
            match joins.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    subscribers.stop.store(true, Ordering::SeqCst);
                    return Err(io::Error::other(format!(
                        "a subscriber cannot join: {error}"
                    )));
                }
                Err(_) => return Err(io::Error::other("a subscriber thread died")),
            }
        }
        subscribers.newest_before = self::last_trade(addr, timeout)?;
        Ok(subscribers)
    }

    /// Tells the subscribers the load is over and which trade was the
    /// service's last (its `unique_id`; `None` if it made none, and the
    /// same as when they joined if the load made none: then each stops
    /// after [`QUIET`] with no message), and collects what they saw once
    /// each has it.
    pub fn finish(self, last_trade: Option<String>) -> FeedReport {
        let made_by_the_load = last_trade.filter(|last| Some(last) != self.newest_before.as_ref());
        let _ = self.last_trade.set(made_by_the_load);
        self.stop.store(true, Ordering::SeqCst);
        let mut report = FeedReport {
            subscribers: self.threads.len(),
            trades: 0,
            orders: self.orders.then_some(0),
            delay_us: histogram(),
            errors: Vec::new(),
        };
        for thread in self.threads {
            match thread.join() {
                Ok(Ok(tally)) => {
                    report.trades += tally.trades;
                    if let Some(orders) = &mut report.orders {
                        *orders += tally.orders;
                    }
                    report
                        .delay_us
                        .add(&tally.delay_us)
                        .expect("histograms with the same bounds");
                }
                Ok(Err(error)) => report.errors.push(error),
                Err(_) => report
                    .errors
                    .push("a subscriber thread panicked".to_owned()),
            }
        }
        report
    }
}

/// Connects, upgrades, and leaves only the `trades` channel on (and
/// `orders`, with `orders`): returns once the service has confirmed it.
fn join(addr: SocketAddr, orders: bool) -> Result<WebSocket<TcpStream>, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws?depth=1"), stream)
        .map_err(|e| format!("upgrade: {e}"))?;
    // The first snapshot comes from the publisher once it counts this
    // subscriber: trades before it are in the snapshot's book, not sent.
    // So the load must not start before it.
    wait_for(&mut ws, r#""type":"snapshot""#, "the first snapshot")?;
    send_op(&mut ws, "unsubscribe", r#"["book","snapshot"]"#)?;
    if orders {
        send_op(&mut ws, "subscribe", r#"["orders"]"#)?;
    }
    Ok(ws)
}

/// Sends the op `op` for the `channels` (a JSON list) and waits for the
/// service's answer.
fn send_op(ws: &mut WebSocket<TcpStream>, op: &str, channels: &str) -> Result<(), String> {
    let text = format!(r#"{{"op":"{op}","channels":{channels}}}"#);
    ws.send(Message::text(text))
        .map_err(|e| format!("{op}: {e}"))?;
    let what = format!("the answer to the {op} op");
    wait_for(ws, r#""type":"subscribed""#, &what)
}

/// Reads until a text message containing `mark` arrives (10 s at most).
fn wait_for(ws: &mut WebSocket<TcpStream>, mark: &str, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.contains(mark) => return Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
            Err(e) => return Err(format!("joining: {e}")),
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} in 10 s"));
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads trades until `stop` is set and the last trade has arrived (or,
/// with no trade to wait for, the feed has been quiet for [`QUIET`]);
/// a follower of `orders` also counts those, and waits for [`QUIET`]
/// after the last trade too.
fn read_trades(
    ws: &mut WebSocket<TcpStream>,
    stop: &AtomicBool,
    last_trade: &OnceLock<Option<String>>,
    follows_orders: bool,
) -> Result<Tally, String> {
    let mut tally = Tally {
        trades: 0,
        orders: 0,
        delay_us: histogram(),
    };
    let mut last_message = Instant::now();
    let mut newest = String::new();
    let mut stopped_at = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            // `order` messages come on their own path and may trail the
            // last trade: a follower of them also waits for quiet.
            let settled = !follows_orders || last_message.elapsed() >= QUIET;
            match last_trade.get() {
                Some(Some(last)) if *last == newest && settled => return Ok(tally),
                Some(Some(last)) if since.elapsed() > LAST_TRADE_WAIT => {
                    return Err(format!(
                        "the load's last trade {last} did not arrive in {LAST_TRADE_WAIT:?}"
                    ))
                }
                Some(None) if last_message.elapsed() >= QUIET => return Ok(tally),
                _ => {}
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                last_message = Instant::now();
                if text.starts_with(r#"{"type":"order""#) {
                    tally.orders += 1;
                    continue;
                }
                let Some(stamp) = execution_micros(&text) else {
                    continue;
                };
                newest.clear();
                newest.push_str(unique_id(&text).unwrap_or_default());
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64);
                tally.trades += 1;
                tally
                    .delay_us
                    .saturating_record(now.saturating_sub(stamp).max(1) as u64);
            }
            Ok(Message::Close(frame)) => {
                return Err(format!("closed by the service: {frame:?}"));
            }
            Ok(_) => last_message = Instant::now(),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
            Err(e) => return Err(format!("reading the feed: {e}")),
        }
    }
}

/// The `unique_id` of a trade message.
fn unique_id(message: &str) -> Option<&str> {
    const KEY: &str = r#""unique_id":""#;
    let at = message.find(KEY)? + KEY.len();
    message.get(at..at + 36)
}

/// The `unique_id` of the newest trade the service at `addr` made
/// (`GET /trades?limit=1`), or `None` if it made none: what subscribers
/// wait for after a load.
pub fn last_trade(addr: SocketAddr, timeout: Duration) -> io::Result<Option<String>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream
        .write_all(b"GET /trades?limit=1 HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| &answer[at + 4..])
        .ok_or_else(|| io::Error::other("GET /trades: no answer"))?;
    let trades: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| io::Error::other(format!("GET /trades: {e}")))?;
    Ok(trades
        .as_array()
        .and_then(|trades| trades.first())
        .and_then(|trade| trade["unique_id"].as_str())
        .map(str::to_owned))
}

/// The `execution_timestamp` of a trade message, in microseconds since the
/// Unix epoch; `None` for any other message.
fn execution_micros(message: &str) -> Option<i64> {
    if !message.starts_with(r#"{"type":"trade""#) {
        return None;
    }
    const KEY: &str = r#""execution_timestamp":""#;
    let at = message.find(KEY)? + KEY.len();
    parse_micros(message.get(at..at + 27)?)
}

/// Parses `YYYY-MM-DDTHH:MM:SS.ffffffZ` (RFC 3339, UTC, exactly six
/// fraction digits, as the service writes it) into microseconds since the
/// Unix epoch; `None` for anything else, an impossible date included.
pub fn parse_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 27 {
        return None;
    }
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if punctuation.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let micros = number(20, 26)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_microseconds_since_the_epoch() {
        // Expected values from Python's datetime.
        assert_eq!(parse_micros("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            parse_micros("2000-03-01T00:00:00.000000Z"),
            Some(951_868_800_000_000)
        );
        assert_eq!(
            parse_micros("2024-02-29T23:59:59.999999Z"),
            Some(1_709_251_199_999_999)
        );
        assert_eq!(
            parse_micros("2026-11-30T11:16:23.500000Z"),
            Some(1_796_037_383_500_000)
        );
        assert_eq!(parse_micros("2026-11-30 11:16:23.500000Z"), None);
        assert_eq!(parse_micros("2026-13-30T11:16:23.500000Z"), None);
        assert_eq!(parse_micros("2026-02-29T11:16:23.500000Z"), None);
        assert_eq!(parse_micros("2026-11-30T11:16:2x.500000Z"), None);
        assert_eq!(parse_micros("2026-11-30T11:16:23Z"), None);
    }

    #[test]
    fn only_trade_messages_have_an_execution_time() {
        let trade = r#"{"type":"trade","seq":2,"unique_id":"00000000-0000-4000-8000-000000000001","execution_timestamp":"2000-03-01T00:00:00.000002Z","buy_order_id":"a","sell_order_id":"b","price":100.0,"quantity":4}"#;
        assert_eq!(execution_micros(trade), Some(951_868_800_000_002));
        assert_eq!(
            execution_micros(r#"{"type":"subscribed","channels":["trades"]}"#),
            None
        );
    }
}
