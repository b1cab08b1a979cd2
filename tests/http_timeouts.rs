//! Connections that stop moving, black-box against the real binary on
//! 127.0.0.1: an idle keep-alive connection is closed after
//! `--idle-timeout`, a request left half sent is answered 408 after
//! `--request-timeout`, a client that stops reading its answers is dropped,
//! and none of it touches a connection that is in use or a WebSocket
//! subscriber. The timeouts are checked once a second, so a connection
//! goes between its timeout and about a second after it.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{metric, request_bytes, Client, Server};
use tungstenite::Message;

/// The most a timeout of one second may take to act: its second, the
/// check's second, and a margin for a loaded machine.
const LATEST: Duration = Duration::from_secs(5);

/// Waits for the server to close `stream` and returns how long that took;
/// panics if it sends anything first or has not closed by [`LATEST`].
fn wait_for_close(stream: &TcpStream, from: Instant) -> Duration {
    stream.set_read_timeout(Some(LATEST)).unwrap();
    let mut buf = [0u8; 256];
    match (&*stream).read(&mut buf) {
        Ok(0) => from.elapsed(),
        Ok(n) => panic!(
            "expected a close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => panic!("not closed within {LATEST:?}: {e}"),
    }
}

fn timed_out(server: &Server) -> [f64; 3] {
    let text = server.connect().metrics_text();
    ["idle", "request", "not_reading"].map(|reason| {
        metric(
            &text,
            &format!("orderbook_connections_timed_out_total{{reason=\"{reason}\"}}"),
        )
    })
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start_with(&["--idle-timeout", "1"]);
    let mut client = server.connect();
    client.get("/health").expect(200);
    let answered = Instant::now();
    let took = wait_for_close(client.stream(), answered);
    assert!(
        took >= Duration::from_millis(900),
        "closed {took:?} after its last answer, before its idle timeout of 1 s"
    );
    assert_eq!(timed_out(&server), [1.0, 0.0, 0.0]);
}

/// Empty lines after a request (a client ending its body with an extra
/// CRLF) are ignored, as RFC 9112 §2.2 asks: the connection is idle, and
/// closed quietly at the idle timeout. They began a request that never
/// came, and the request timeout answered it 408, unasked.
#[test]
fn a_stray_line_end_after_a_request_leaves_the_connection_idle_not_408() {
    let server = Server::start_with(&["--idle-timeout", "2", "--request-timeout", "1"]);
    for stray in [&b"\r\n"[..], b"\n", b"\r\n\r\n"] {
        let mut client = server.connect();
        let mut bytes = request_bytes("GET", "/health", None);
        bytes.extend_from_slice(stray);
        client.send_raw(&bytes).unwrap();
        client.read_response().unwrap().expect(200);
        let answered = Instant::now();
        let took = wait_for_close(client.stream(), answered);
        assert!(
            took >= Duration::from_millis(1_900),
            "{stray:?}: closed after {took:?}"
        );
    }
    // A request after the empty line is served as usual.
    let mut client = server.connect();
    let mut bytes = b"\r\n".to_vec();
    bytes.extend(request_bytes("GET", "/health", None));
    client.send_raw(&bytes).unwrap();
    client.read_response().unwrap().expect(200);
    assert_eq!(timed_out(&server)[..2], [3.0, 0.0]);
}

/// Requests that came while the service was stopped (SIGSTOP, a debugger,
/// a frozen VM) for longer than the idle timeout are served when it goes
/// on, whether it was stopped waiting for events or busy (another client
/// pipelining). Its idle check ran before it read them and reset each such
/// connection unread: 20 of 20 stopped waiting (the wait fails with EINTR)
/// and 19 or 20 of 20 in 8 of 12 probe runs stopped busy.
#[test]
fn requests_sent_during_a_stop_longer_than_the_idle_timeout_are_served() {
    let server = Server::start_with(&["--idle-timeout", "1", "--request-timeout", "1"]);
    for busy in [false, true] {
        let stop_busy = Arc::new(AtomicBool::new(false));
        let busy_client = busy.then(|| {
            let mut client = server.connect();
            let stop = stop_busy.clone();
            thread::spawn(move || {
                let four = request_bytes("GET", "/health", None).repeat(4);
                while !stop.load(Ordering::Relaxed) {
                    client.send_raw(&four).unwrap();
                    for _ in 0..4 {
                        client.read_response().unwrap().expect(200);
                    }
                }
            })
        });
        let mut clients: Vec<Client> = (0..8).map(|_| server.connect()).collect();
        for client in &mut clients {
            client.get("/health").expect(200);
        }
        thread::sleep(Duration::from_millis(50));
        server.signal("STOP");
        for (i, client) in clients.iter_mut().enumerate() {
            let body = format!(r#"{{"quantity": {}, "price": 90.0, "side": 1}}"#, 1 + i);
            client
                .send_raw(&request_bytes("POST", "/order/", Some(&body)))
                .unwrap();
        }
        thread::sleep(Duration::from_millis(2_500));
        server.signal("CONT");
        for (i, client) in clients.iter_mut().enumerate() {
            let placed = client.read_response().unwrap().expect(200);
            let order = client.order(placed["id"].as_str().unwrap());
            assert_eq!(order["order_quantity"], json!(1 + i), "busy {busy}");
        }
        stop_busy.store(true, Ordering::Relaxed);
        if let Some(busy_client) = busy_client {
            busy_client.join().unwrap();
        }
        assert_eq!(timed_out(&server), [0.0, 0.0, 0.0], "busy {busy}");
    }
}

#[test]
fn a_connection_used_more_often_than_the_idle_timeout_stays_open() {
    let server = Server::start_with(&["--idle-timeout", "1"]);
    let mut client = server.connect();
    let started = Instant::now();
    let mut answered = 0;
    // Three seconds of requests 400 ms apart, all on the one connection.
    while started.elapsed() < Duration::from_secs(3) {
        client.get("/health").expect(200);
        answered += 1;
        thread::sleep(Duration::from_millis(400));
    }
    client.get("/health").expect(200);
    assert!(answered >= 7, "{answered} requests in 3 s");
    assert_eq!(timed_out(&server), [0.0, 0.0, 0.0]);
}

#[test]
fn a_request_left_half_sent_is_answered_408_and_closed_and_places_nothing() {
    let server = Server::start_with(&["--request-timeout", "1"]);
    let body = r#"{"quantity": 10, "price": 100.0, "side": 1}"#;
    let whole = request_bytes("POST", "/order/", Some(body));
    let half_body = &whole[..whole.len() - 10];
    let half_head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let mut clients = Vec::new();
    for partial in [half_body, &half_head[..]] {
        let mut client = server.connect();
        client.send_raw(partial).unwrap();
        clients.push(client);
    }
    let sent = Instant::now();
    for client in &mut clients {
        let answer = client.read_response().unwrap();
        answer.expect_detail(
            408,
            "Request not completed within 1 s; closing the connection",
        );
        assert!(answer.closes(), "a 408 says Connection: close");
        wait_for_close(client.stream(), sent);
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "answered 408 after {:?}, before the timeout of 1 s",
        sent.elapsed()
    );
    let listing = server.connect().get("/orders").expect(200);
    assert_eq!(listing, json!({"buy_orders": [], "sell_orders": []}));
    assert_eq!(timed_out(&server), [0.0, 2.0, 0.0]);
}

#[test]
fn a_request_dripped_a_byte_at_a_time_times_out_from_its_first_byte() {
    let server = Server::start_with(&["--request-timeout", "2"]);
    let body = r#"{"quantity": 10, "price": 100.0, "side": 1}"#;
    let request = request_bytes("POST", "/order/", Some(body));
    let stream = TcpStream::connect(server.addr).unwrap();
    let mut dripper = stream.try_clone().unwrap();
    let started = Instant::now();
    // One byte every 50 ms: the request would take about 6 s to arrive,
    // with never more than 50 ms between bytes.
    let drip = thread::spawn(move || {
        for byte in request {
            if dripper.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let mut client = Client::from_stream(stream);
    let answer = client.read_response().unwrap();
    let took = started.elapsed();
    answer.expect_detail(
        408,
        "Request not completed within 2 s; closing the connection",
    );
    assert!(
        took >= Duration::from_millis(1900) && took < LATEST,
        "408 after {took:?}, for a timeout of 2 s"
    );
    drip.join().unwrap();
    assert_eq!(timed_out(&server), [0.0, 1.0, 0.0]);
    let listing = server.connect().get("/orders").expect(200);
    assert_eq!(listing, json!({"buy_orders": [], "sell_orders": []}));
}

#[test]
fn a_client_that_stops_reading_its_answers_is_dropped_after_the_request_timeout() {
    let server = Server::start_with(&["--request-timeout", "1", "--max-pipeline", "16"]);
    let mut client = server.connect();
    for i in 0..200 {
        client.place(1, 50.0 + f64::from(i % 40) * 0.25, 1);
    }
    // Ask for the 200-order listing over and over without reading: the
    // answers fill the socket, then the server's bounded backlog.
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let listing = request_bytes("GET", "/orders", None);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if (&stream).write_all(&listing).is_err() {
            break; // The socket filled up (or the server dropped us).
        }
    }
    let deadline = Instant::now() + LATEST;
    while timed_out(&server)[2] < 1.0 {
        assert!(Instant::now() < deadline, "not dropped within {LATEST:?}");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(timed_out(&server), [0.0, 0.0, 1.0]);
    // The reader that kept up is untouched.
    client.get("/health").expect(200);
}

#[test]
fn a_quiet_websocket_subscriber_is_not_closed_by_the_idle_timeout() {
    // No periodic snapshots and no pings within the test: the subscriber
    // hears nothing from the server for three seconds.
    let server = Server::start_with(&[
        "--idle-timeout",
        "1",
        "--feed-snapshot-ms",
        "60000",
        "--ws-ping-after",
        "60",
    ]);
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let url = format!("ws://{}/ws", server.addr);
    let (mut ws, _) = tungstenite::client(url, stream).expect("the upgrade succeeds");
    let first = ws.read().expect("the snapshot on connect");
    assert!(
        first.to_text().unwrap().contains("\"snapshot\""),
        "{first:?}"
    );
    thread::sleep(Duration::from_secs(3));
    ws.send(Message::text(r#"{"op":"subscribe","channels":["trades"]}"#))
        .unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(ws.read().expect("still connected").to_text().unwrap()).unwrap();
    assert_eq!(answer["type"], "subscribed");
    assert_eq!(timed_out(&server), [0.0, 0.0, 0.0]);
}

#[test]
fn a_timeout_of_zero_never_closes() {
    let server = Server::start_with(&["--idle-timeout", "0", "--request-timeout", "0"]);
    let mut idle = server.connect();
    idle.get("/health").expect(200);
    let mut half = server.connect();
    half.send_raw(b"GET /health HTTP/1.1\r\n").unwrap();
    thread::sleep(Duration::from_millis(2500));
    idle.get("/health").expect(200);
    half.send_raw(b"Host: 127.0.0.1\r\n\r\n").unwrap();
    half.read_response().unwrap().expect(200);
    assert_eq!(timed_out(&server), [0.0, 0.0, 0.0]);
    // Nothing read from the idle one in the meantime: it was not closed.
    idle.set_read_timeout(Duration::from_millis(100));
    let mut buf = [0u8; 1];
    let quiet = idle.stream().peek(&mut buf);
    assert!(
        matches!(&quiet, Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut),
        "{quiet:?}"
    );
}

/// A client that sends part of a request and goes (its close a moment
/// after the bytes, so in an event of its own; by FIN or by reset) leaves
/// nothing behind: its connection closes at once, so such clients cannot
/// fill `--max-connections` (four of them made every later client 503
/// for good).
#[test]
fn a_client_that_goes_after_part_of_a_request_frees_its_connection() {
    let server = Server::start_with(&["--max-connections", "4"]);
    let partials: [&[u8]; 4] = [
        b"G",
        b"GET /health HTTP/1.1\r\nHost: x\r\n",
        b"POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n{\"quan",
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /hea",
    ];
    for round in 0..3 {
        for (i, partial) in partials.iter().enumerate() {
            let stream = TcpStream::connect(server.addr).unwrap();
            (&stream).write_all(partial).unwrap();
            thread::sleep(Duration::from_millis(50));
            let socket = socket2::Socket::from(stream);
            if i % 2 == 1 {
                // A reset instead of a FIN.
                socket.set_linger(Some(Duration::ZERO)).unwrap();
            }
            drop(socket);
        }
        // The closes may be read after the next connection is accepted
        // (503 while the four still count): so ask again for a while.
        let deadline = Instant::now() + LATEST;
        let seen = loop {
            let mut client = server.connect();
            let seen = match client.get("/health").status {
                200 => (
                    200,
                    metric(&client.metrics_text(), "orderbook_connections_open"),
                ),
                status => (status, 0.0),
            };
            if seen == (200, 1.0) || Instant::now() >= deadline {
                break seen;
            }
            drop(client);
            thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            seen,
            (200, 1.0),
            "round {round}: GET /health, and the connections open but its own"
        );
    }
    assert_eq!(timed_out(&server), [0.0; 3], "none needed a timeout");
}
