//! The cost of parsing a request (`http::parse_request`): a `POST /order/`
//! as curl sends it, head and body, and one with 40 header lines (past
//! `http::USUAL_HEADERS`, so parsed a second time with room for
//! `MAX_HEADERS`). Also what the size of the header array costs: httparse
//! alone on the first head with `USUAL_HEADERS` slots and with
//! `MAX_HEADERS`, alternating.
//! Prints seven rounds of 1,000,000 parses each and the best, in
//! nanoseconds per request.
//!
//! `cargo run --release --example head_parse_cost`

use std::hint::black_box;
use std::time::Instant;

use orderbook::net::http::{self, Limits, Parsed, MAX_HEADERS, USUAL_HEADERS};

const REQUEST: &[u8] = b"POST /order/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n{\"quantity\": 10, \"price\": 100.0, \"side\": 1}";

const ROUNDS: usize = 7;
const PARSES: u32 = 1_000_000;

/// Nanoseconds per call of `parse` over `PARSES` calls.
fn time(mut parse: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut sum = 0;
    for _ in 0..PARSES {
        sum += parse();
    }
    black_box(sum);
    start.elapsed().as_nanos() as f64 / f64::from(PARSES)
}

fn httparse_with<const N: usize>() -> usize {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(black_box(REQUEST)) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => panic!("a whole head"),
    }
}

fn main() {
    let limits = Limits::default();
    let head_end = REQUEST.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let extra: Vec<u8> = (0..34)
        .flat_map(|i| format!("X-Trace-{i}: abc\r\n").into_bytes())
        .collect();
    let many_lines = [&REQUEST[..head_end], &extra, &REQUEST[head_end..]].concat();
    let parse = |bytes: &[u8]| match http::parse_request(black_box(bytes), &limits) {
        Ok(Parsed::Whole(request)) => request.len,
        _ => panic!("a whole request"),
    };
    let mut best = [f64::MAX; 4];
    for round in 0..ROUNDS {
        let figures = [
            time(|| parse(REQUEST)),
            time(|| parse(&many_lines)),
            time(httparse_with::<USUAL_HEADERS>),
            time(httparse_with::<MAX_HEADERS>),
        ];
        for (best, figure) in best.iter_mut().zip(figures) {
            *best = best.min(figure);
        }
        println!("round {round}: {}", line(&figures));
    }
    println!("best: {}", line(&best));
}

fn line(figures: &[f64; 4]) -> String {
    format!(
        "parse_request {:.1} ns, with 40 lines {:.1} ns | httparse alone, {USUAL_HEADERS} slots {:.1} ns, {MAX_HEADERS} slots {:.1} ns",
        figures[0], figures[1], figures[2], figures[3]
    )
}
