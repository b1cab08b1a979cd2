//! Properties of what the front parses, over generated input.
//!
//! - The HTTP/1.1 request parser: any bytes are answered without a panic; a
//!   well-formed request, sized or chunked in any split, parses to exactly
//!   what was sent, whatever follows it; every strict prefix of it waits
//!   for more rather than guessing.
//! - The WebSocket frames clients send: any bytes get a frame, a wait or
//!   a close code, never a panic; a masked frame in any of the three
//!   length forms parses to exactly its payload, whatever follows it, and
//!   every strict prefix of it waits.
//! - The order bodies of `POST /order/` and `PUT /order/{id}`: any bytes get
//!   an order or a 400 or 422, never a panic; a well-formed body, its fields
//!   in any order and spacing, decodes to exactly what it says; and every
//!   price the service writes reads back as the same number of ticks.

use orderbook::api::{Amendment, Symbol, TickSize, Wire};
use orderbook::engine::{Side, TimeInForce};
use orderbook::net::http::{parse_request, HttpError, Limits, Method, Parsed};
use orderbook::net::ws::{parse_client_frame, ClientFrame, MAX_CLIENT_MESSAGE};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::Data;

#[path = "support/client_frame.rs"]
mod client_frame;
use client_frame::client_frame;

const LIMITS: Limits = Limits {
    max_head_bytes: 8 * 1024,
    max_body_bytes: 64 * 1024,
};

/// A request as a client would build it, and its bytes on the wire.
#[derive(Clone, Debug)]
struct Sent {
    /// The method's token, and what the parser should make of it.
    method: (&'static str, Method),
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `None`: sent with `Content-Length`; `Some(sizes)`: chunked, in
    /// chunks of these sizes (summing to the body's length).
    chunks: Option<Vec<usize>>,
    http10: bool,
}

impl Sent {
    fn wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.0.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        if let Some(query) = &self.query {
            out.push(b'?');
            out.extend_from_slice(query.as_bytes());
        }
        out.extend_from_slice(if self.http10 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        // Every HTTP/1.1 request must name its host (RFC 9112 §3.2).
        out.extend_from_slice(b"Host: example.test\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.chunks {
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut at = 0;
                for (n, &size) in sizes.iter().enumerate() {
                    // Sizes in either case, some with an extension.
                    let line = if n % 2 == 0 {
                        format!("{size:x}\r\n")
                    } else {
                        format!("{size:X};ext=\"v\"\r\n")
                    };
                    out.extend_from_slice(line.as_bytes());
                    out.extend_from_slice(&self.body[at..at + size]);
                    out.extend_from_slice(b"\r\n");
                    at += size;
                }
                out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            }
        }
        out
    }
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.~-]{1,12}"
}

fn sent() -> impl Strategy<Value = Sent> {
    let method = prop::sample::select(vec![
        ("GET", Method::Get),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("HEAD", Method::Head),
        ("PATCH", Method::Other),
        ("get", Method::Other),
    ]);
    let path =
        prop::collection::vec(token(), 0..4).prop_map(|parts| format!("/{}", parts.join("/")));
    let query = prop::option::of("[a-z]{1,6}=[A-Za-z0-9%._-]{0,10}(&[a-z]{1,6}=[0-9]{0,4}){0,2}");
    let headers = prop::collection::vec(
        (
            "X-[A-Za-z]{1,10}",
            // Field values: visible ASCII and inner spaces, no CR or LF.
            "[!-~]([ !-~]{0,30}[!-~])?",
        ),
        0..6,
    );
    let body = prop::collection::vec(any::<u8>(), 0..600);
    (
        method,
        path,
        query,
        headers,
        body,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(method, path, query, headers, body, chunked, http10, seed)| {
                // HTTP/1.0 has no chunked coding.
                let chunks = (chunked && !http10).then(|| split(body.len(), seed));
                Sent {
                    method,
                    path,
                    query,
                    headers,
                    body,
                    chunks,
                    http10,
                }
            },
        )
}

/// Splits `len` into chunk sizes, none of them 0 (a 0 would end the body),
/// picked from `seed`.
fn split(len: usize, mut seed: u64) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = 1 + (seed >> 33) as usize % left.min(200);
        sizes.push(size);
        left -= size;
    }
    sizes
}

fn assert_parsed_as_sent(sent: &Sent, wire_len: usize, parsed: Parsed<'_>) {
    let Parsed::Whole(request) = parsed else {
        panic!("a whole request parsed as partial: {sent:?}");
    };
    assert_eq!(request.method, sent.method.1);
    assert_eq!(request.path, sent.path);
    assert_eq!(request.query, sent.query.as_deref());
    assert_eq!(&*request.body, &sent.body[..]);
    assert_eq!(request.len, wire_len);
    assert_eq!(request.keep_alive, !sent.http10);
    assert!(!request.wants_websocket);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any bytes at all: an answer, never a panic, and a whole request never
    /// claims more bytes than there are.
    #[test]
    fn any_bytes_are_answered_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Parsed::Whole(request)) = parse_request(&bytes, &LIMITS) {
            prop_assert!(request.len > 0 && request.len <= bytes.len());
        }
    }

    /// A request with one byte changed (to anything) is still answered
    /// without a panic: whole, partial or an error with its status.
    #[test]
    fn a_request_with_a_byte_changed_is_answered_without_a_panic(
        sent in sent(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut wire = sent.wire();
        let at = at.index(wire.len());
        wire[at] = byte;
        match parse_request(&wire, &LIMITS) {
            Ok(Parsed::Whole(request)) => prop_assert!(request.len <= wire.len()),
            Ok(Parsed::Partial { .. }) => {}
            Err(error) => prop_assert!([400, 413, 414, 415, 431, 501].contains(&error.status())),
        }
    }

    /// A well-formed request, sized or chunked, followed by anything (the
    /// next pipelined request's bytes): exactly what was sent, and exactly
    /// its own length.
    #[test]
    fn a_well_formed_request_parses_to_what_was_sent(
        sent in sent(),
        after in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let wire = sent.wire();
        let mut buffer = wire.clone();
        buffer.extend_from_slice(&after);
        assert_parsed_as_sent(&sent, wire.len(), parse_request(&buffer, &LIMITS).unwrap());
    }

    /// Every strict prefix of a well-formed request waits for more: the
    /// parser never answers, nor refuses, a request before it is whole.
    #[test]
    fn every_prefix_of_a_well_formed_request_waits_for_more(sent in sent()) {
        let wire = sent.wire();
        for end in 0..wire.len() {
            match parse_request(&wire[..end], &LIMITS) {
                Ok(Parsed::Partial { expects_continue }) => prop_assert!(expects_continue.is_none()),
                other => prop_assert!(false, "prefix of {} bytes of {} gave {:?}", end, wire.len(), other),
            }
        }
    }
}

/// The limits are exact for chunked and sized bodies alike: a body of
/// exactly `max_body_bytes` is taken, one byte more is 413.
#[test]
fn a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_refused() {
    let limits = Limits {
        max_head_bytes: 1024,
        max_body_bytes: 300,
    };
    for chunked in [false, true] {
        for (len, taken) in [(300, true), (301, false)] {
            let sent = Sent {
                method: ("POST", Method::Post),
                path: "/order/".into(),
                query: None,
                headers: vec![],
                body: vec![b'x'; len],
                chunks: chunked.then(|| split(len, 7)),
                http10: false,
            };
            let wire = sent.wire();
            let parsed = parse_request(&wire, &limits);
            if taken {
                assert_parsed_as_sent(&sent, wire.len(), parsed.unwrap());
            } else {
                assert_eq!(parsed, Err(HttpError::BodyTooLarge), "chunked: {chunked}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// WebSocket frames from clients
// ---------------------------------------------------------------------------

/// A frame a client may send: (fin, opcode, payload), control frames
/// final and at most 125 bytes, a close frame's payload empty or a code a
/// peer may send and a UTF-8 reason.
fn sendable_frame() -> impl Strategy<Value = (bool, u8, Vec<u8>)> {
    let data = (
        any::<bool>(),
        prop::sample::select(vec![0x0u8, 0x1, 0x2]),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..=125),
            prop::collection::vec(any::<u8>(), 126..=300),
            // The 64-bit length form starts past 65,535 bytes.
            (65_536usize..=MAX_CLIENT_MESSAGE).prop_map(|len| vec![0x5A; len]),
        ],
    );
    let control = (
        Just(true),
        prop::sample::select(vec![0x9u8, 0xA]),
        prop::collection::vec(any::<u8>(), 0..=125),
    );
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    let close_payload = prop_oneof![
        Just(Vec::new()),
        (code, "\\PC{0,30}").prop_map(|(code, reason)| {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            payload
        }),
    ];
    let close = (Just(true), Just(0x8u8), close_payload);
    prop_oneof![3 => data, 1 => control, 1 => close]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any bytes: a frame that used no more bytes than there were, a wait,
    /// or a close code of 1002, 1007 or 1009; never a panic.
    #[test]
    fn any_bytes_from_a_client_get_a_frame_a_wait_or_a_close_code(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        match parse_client_frame(&bytes) {
            Ok(Some((_, used))) => prop_assert!(used >= 6 && used <= bytes.len()),
            Ok(None) => {}
            Err(error) => prop_assert!([1002, 1007, 1009].contains(&error.code)),
        }
    }

    /// A masked frame parses to its payload, unmasked, and exactly its own
    /// length, whatever follows it; every strict prefix of it waits.
    #[test]
    fn a_masked_frame_parses_to_its_payload_and_its_prefixes_wait(
        (fin, opcode, payload) in sendable_frame(),
        mask in any::<[u8; 4]>(),
        after in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let wire = client_frame(fin, opcode, mask, &payload);
        let mut buffer = wire.clone();
        buffer.extend_from_slice(&after);
        let (frame, used) = parse_client_frame(&buffer).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        let expected = match opcode {
            0x0 => ClientFrame::Data { kind: Data::Continue, fin, payload },
            0x1 => ClientFrame::Data { kind: Data::Text, fin, payload },
            0x2 => ClientFrame::Data { kind: Data::Binary, fin, payload },
            0x8 => ClientFrame::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            0x9 => ClientFrame::Ping(payload),
            _ => ClientFrame::Pong,
        };
        prop_assert_eq!(frame, expected);
        // Every prefix up to the header, then a sample of the payload's.
        let step = (wire.len() / 64).max(1);
        for end in (0..wire.len().min(16)).chain((16..wire.len()).step_by(step)) {
            prop_assert_eq!(parse_client_frame(&wire[..end]), Ok(None), "prefix {}", end);
        }
    }

    /// What a client must not send closes the connection with its code: an
    /// unmasked frame, reserved bits or opcodes, a fragmented or long
    /// control frame, a close payload of one byte or with a code no peer
    /// may send (1002), a close reason not UTF-8 (1007), a frame over the
    /// message bound (1009).
    #[test]
    fn frames_a_client_must_not_send_get_their_close_code(
        payload in prop::collection::vec(any::<u8>(), 0..=125),
        mask in any::<[u8; 4]>(),
        case in 0usize..9,
        unsendable in prop_oneof![0u16..1000, 1004u16..=1006, 1015u16..3000, 5000u16..=u16::MAX],
    ) {
        let (wire, code) = match case {
            0 => {
                let mut wire = client_frame(true, 0x1, mask, &payload);
                wire[1] &= 0x7F; // unmasked
                wire.drain(2..6);
                (wire, 1002)
            }
            1 => {
                let mut wire = client_frame(true, 0x1, mask, &payload);
                wire[0] |= 0x40; // RSV1 without an extension
                (wire, 1002)
            }
            2 => (client_frame(true, 0x3, mask, &payload), 1002),
            3 => (client_frame(false, 0x9, mask, &payload), 1002),
            4 => (client_frame(true, 0x9, mask, &[0; 126]), 1002),
            5 => (client_frame(true, 0x8, mask, &[payload.first().copied().unwrap_or(0)]), 1002),
            6 => (client_frame(true, 0x8, mask, &unsendable.to_be_bytes()), 1002),
            7 => {
                let mut close = 1000u16.to_be_bytes().to_vec();
                close.extend_from_slice(&[0xC3, 0x28]); // not UTF-8
                (client_frame(true, 0x8, mask, &close), 1007)
            }
            _ => {
                // Only the header is needed to refuse it.
                let wire = client_frame(true, 0x2, mask, &vec![0; MAX_CLIENT_MESSAGE + 1]);
                (wire[..14].to_vec(), 1009)
            }
        };
        prop_assert_eq!(parse_client_frame(&wire).map(|_| ()).unwrap_err().code, code);
    }
}

// ---------------------------------------------------------------------------
// Order bodies
// ---------------------------------------------------------------------------

const MAX_QUANTITY: u64 = 1_000_000_000;

fn wire(tick: &str) -> Wire {
    Wire {
        symbol: Symbol::parse("DEFAULT").unwrap(),
        tick: TickSize::parse(tick).unwrap(),
        max_quantity: MAX_QUANTITY,
    }
}

/// The tick sizes the body properties run under, with the price of one
/// tick in ticks' own decimal places.
const TICKS: [&str; 4] = ["0.01", "0.5", "1", "0.001"];

/// A price of `ticks` ticks written as the service writes prices.
fn price_text(wire: &Wire, ticks: u64) -> String {
    let mut out = String::new();
    wire.tick.write_price(&mut out, ticks);
    out
}

/// Joins `fields` into a JSON object in the given order, with `space`
/// around the punctuation.
fn object_text(fields: &[(String, String)], space: &str) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{space}\"{name}\"{space}:{space}{value}{space}"))
        .collect();
    format!("{space}{{{}}}{space}", inner.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any bytes as an order or modify body: a decoded order or a 400
    /// (malformed JSON) or 422 (a bad field), never a panic.
    #[test]
    fn any_body_gets_an_order_or_a_400_or_422(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            // JSON-looking bodies, for the decoders past the JSON parser.
            "\\{(\"(quantity|price|side|symbol|time_in_force|post_only)\":(-?[0-9]{1,20}(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?|\"[a-zA-Z0-9.-]{0,12}\"|true|false|null|\\[\\]|\\{\\}),?){0,7}\\}"
                .prop_map(String::into_bytes),
        ],
        tick in prop::sample::select(TICKS.to_vec()),
    ) {
        let wire = wire(tick);
        for result in [
            wire.new_order(&body).map(|_| ()),
            wire.amendment(&body).map(|_| ()),
        ] {
            if let Err(error) = result {
                prop_assert!(error.status == 400 || error.status == 422, "{:?}", error);
                prop_assert!(!error.detail.is_empty());
            }
        }
    }

    /// A well-formed order body, its fields in any order and spacing, the
    /// side in any of its four spellings, decodes to exactly its values.
    #[test]
    fn a_well_formed_order_body_decodes_to_its_values(
        ticks in 1u64..=1 << 40,
        quantity in 1u64..=MAX_QUANTITY,
        buy in any::<bool>(),
        side_as_word in any::<bool>(),
        quoted_numbers in any::<bool>(),
        order in Just([0usize, 1, 2]).prop_shuffle(),
        space in prop::sample::select(vec!["", " ", "\n\t"]),
        tick in prop::sample::select(TICKS.to_vec()),
    ) {
        let wire = wire(tick);
        let side = match (buy, side_as_word) {
            (true, false) => "1".to_owned(),
            (false, false) => "-1".to_owned(),
            (true, true) => "\"buy\"".to_owned(),
            (false, true) => "\"SELL\"".to_owned(),
        };
        // The original accepted numbers in strings; so does this.
        let quote = |text: String| if quoted_numbers { format!("\"{text}\"") } else { text };
        let fields = [
            ("quantity".to_owned(), quote(quantity.to_string())),
            ("price".to_owned(), quote(price_text(&wire, ticks))),
            ("side".to_owned(), side),
        ];
        let ordered: Vec<_> = order.iter().map(|&i| fields[i].clone()).collect();
        let body = object_text(&ordered, space);
        let placed = wire.new_order(body.as_bytes()).unwrap();
        prop_assert_eq!(placed.price, ticks);
        prop_assert_eq!(placed.quantity, quantity);
        prop_assert_eq!(placed.side, if buy { Side::Buy } else { Side::Sell });
        prop_assert_eq!(placed.tif, TimeInForce::GoodTillCancel);

        // The same price and quantity as a modify, either left out.
        let amendment = wire.amendment(object_text(&ordered[..], space).as_bytes());
        // A modify cannot change the side: a valid one is let be, so a
        // place's body resent as a modify works.
        prop_assert_eq!(amendment.unwrap(), Amendment { price: Some(ticks), quantity: Some(quantity) });
        let price_only = object_text(&[fields[1].clone()], space);
        prop_assert_eq!(
            wire.amendment(price_only.as_bytes()).unwrap(),
            Amendment { price: Some(ticks), quantity: None }
        );
    }

    /// A price off the tick grid, or a quantity that is not a positive
    /// integer up to the maximum, is a 422 naming its field.
    #[test]
    fn an_off_grid_price_or_a_bad_quantity_is_a_422_naming_its_field(
        ticks in 1u64..1 << 30,
        quantity in prop_oneof![Just(0i64), Just(-5), (MAX_QUANTITY as i64 + 1)..i64::MAX / 2],
        tick in prop::sample::select(vec!["0.01", "0.5", "1"]),
    ) {
        let wire = wire(tick);
        // A third of a tick off the grid, in the tick's own decimals and two more.
        let off_grid = ticks as f64 * wire.tick.as_f64() + wire.tick.as_f64() / 3.0;
        let bad_price = format!(r#"{{"quantity": 5, "price": {off_grid}, "side": 1}}"#);
        let error = wire.new_order(bad_price.as_bytes()).unwrap_err();
        prop_assert_eq!(error.status, 422);
        prop_assert!(error.detail.starts_with("price"), "{}", error.detail);

        let good_price = price_text(&wire, ticks);
        let bad_quantity = format!(r#"{{"quantity": {quantity}, "price": {good_price}, "side": 1}}"#);
        let error = wire.new_order(bad_quantity.as_bytes()).unwrap_err();
        prop_assert_eq!(error.status, 422);
        prop_assert!(error.detail.starts_with("quantity"), "{}", error.detail);
    }

    /// A price half a tick off the grid is refused at every magnitude:
    /// through a float, from 10^14 ticks up, one in eleven was taken as a
    /// neighbouring tick.
    #[test]
    fn a_price_half_a_tick_off_the_grid_is_refused_at_every_magnitude(
        ticks in prop_oneof![1u64..10_000, 1u64..1 << 52],
        (tick, scale) in prop::sample::select(vec![("0.01", 2usize), ("1", 0), ("0.00000001", 8)]),
    ) {
        let wire = wire(tick);
        // The price with its fraction written to the tick's decimals, then
        // a 5 after them.
        let units = ticks.to_string();
        let units = format!("{units:0>width$}", width = scale + 1);
        let (whole, fraction) = units.split_at(units.len() - scale);
        let text = format!("{whole}.{fraction}5");
        prop_assert_eq!(wire.tick.ticks_of(&text), Err("must be a multiple of the tick size"), "{}", text);
    }

    /// Every quantity up to the largest `--max-quantity` reads back as
    /// itself, however it is written: through a float, those past 2^53
    /// were rounded to a neighbour.
    #[test]
    fn every_integer_quantity_reads_back_as_itself(
        quantity in prop_oneof![1u64..1 << 53, 1u64..=u64::MAX],
        form in 0usize..4,
    ) {
        let wire = Wire { max_quantity: u64::MAX, ..wire("0.01") };
        let text = match form {
            0 => quantity.to_string(),
            1 => format!("{quantity}.000"),
            2 => format!("\"{quantity}\""),
            _ => format!("{quantity}0e-1"),
        };
        let body = format!(r#"{{"price": 1.5, "quantity": {text}, "side": -1}}"#);
        prop_assert_eq!(wire.new_order(body.as_bytes()).unwrap().quantity, quantity);
    }

    /// Every price the service writes (in answers, the feed and the state
    /// file) reads back as the same number of ticks, up to 2^52 ticks, at
    /// any tick size: from 2^24 ticks or so at a tick of `0.01`, a read
    /// through a float alone refused many of them.
    #[test]
    fn every_written_price_reads_back_as_its_ticks(
        ticks in prop_oneof![1u64..10_000, 1u64..=1 << 52],
        tick in prop::sample::select(vec!["0.01", "0.5", "1", "0.001", "0.00000001", "0.000000000025"]),
    ) {
        let wire = wire(tick);
        let text = price_text(&wire, ticks);
        prop_assert_eq!(wire.tick.ticks_of(&text), Ok(ticks), "{}", text);
        let body = format!(r#"{{"price": {text}, "quantity": 1, "side": "buy"}}"#);
        prop_assert_eq!(wire.new_order(body.as_bytes()).unwrap().price, ticks);
    }
}
