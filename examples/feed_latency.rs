//! Feed figures against a running service: latency from a trade's
//! execution stamp to its receipt by WebSocket subscribers, at a fixed
//! order rate, and the messages per second they were delivered.
//!
//! `cargo run --release --example feed_latency -- [addr] [pairs/s] [seconds] [subscribers] [price]`
//! (defaults 127.0.0.1:8000, 2000, 10, 1; prices cycle 100.0..=109.0
//! unless one is given). Each pair is a resting sell and
//! a buy that crosses it: one trade, two book messages. Loopback only.
//! Stamps are wall-clock microseconds on both sides (same machine).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use orderbook::api;
use tungstenite::Message;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8000".into());
    let rate: u64 = args.next().map_or(2000, |a| a.parse().unwrap());
    let seconds: u64 = args.next().map_or(10, |a| a.parse().unwrap());
    let subscribers: usize = args.next().map_or(1, |a| a.parse().unwrap());
    let fixed_price: Option<String> = args.next();
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..subscribers)
        .map(|_| {
            let stream = TcpStream::connect(&addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
            let done = done.clone();
            thread::spawn(move || {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut messages = 0u64;
                loop {
                    match ws.read() {
                        Ok(Message::Text(text)) => {
                            messages += 1;
                            if let Some(at) = text.find("\"execution_timestamp\":\"") {
                                let start = at + 23;
                                let end = start + text[start..].find('"').unwrap();
                                let stamp =
                                    api::parse_timestamp(&text[start..end]).unwrap() / 1_000;
                                let _ = latency.record(now_micros().saturating_sub(stamp).max(1));
                            }
                        }
                        Ok(_) => {}
                        Err(_) if done.load(Ordering::Relaxed) => break,
                        Err(tungstenite::Error::Io(e))
                            if e.kind() == std::io::ErrorKind::WouldBlock =>
                        {
                            continue
                        }
                        Err(e) => panic!("feed: {e}"),
                    }
                }
                (latency, messages)
            })
        })
        .collect();

    // The order stream: pairs at `rate` per second, paced in 1 ms steps.
    let stream = TcpStream::connect(&addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let started = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    let mut line = String::new();
    while sent < total {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent >= due {
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        let price = fixed_price
            .clone()
            .unwrap_or_else(|| format!("{}.0", 100 + sent % 10));
        let mut batch = Vec::new();
        for side in [-1, 1] {
            let body = format!(r#"{{"side":{side},"price":{price},"quantity":1}}"#);
            batch.extend_from_slice(
                format!(
                    "POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        writer.write_all(&batch).unwrap();
        for _ in 0..2 {
            // Read one response: head, then Content-Length bytes.
            let mut length = 0;
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        }
        sent += 1;
    }
    let elapsed = started.elapsed();
    thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut messages = 0;
    for reader in readers {
        let (h, m) = reader.join().unwrap();
        latency.add(&h).unwrap();
        messages += m;
    }
    println!(
        "{sent} crossing pairs in {:.1} s ({:.0} pairs/s = {:.0} orders/s), {subscribers} subscriber(s)",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        2.0 * sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "trade execution -> receipt: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({} trades received)",
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max(),
        latency.len()
    );
    println!(
        "messages delivered: {messages} ({:.0}/s over the run)",
        messages as f64 / elapsed.as_secs_f64()
    );
}
