//! `POST /orders/cancel_all_after`, the dead man's switch: every resting
//! order is cancelled once the deadline passes with no refresh, across
//! restarts and crashes too. Against the real binary over real sockets.

mod support;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use orderbook::api::parse_timestamp;
use serde_json::{json, Value};
use support::*;

const PATH: &str = "/orders/cancel_all_after";
const FILE: &str = "cancel_all_after.json";
const RANGE: &str =
    "timeout_ms: must be a whole number of milliseconds, 0 (off) to 86400000 (a day)";

fn arm(client: &mut Client, timeout_ms: u64) -> Value {
    client
        .post(PATH, &format!(r#"{{"timeout_ms": {timeout_ms}}}"#))
        .expect(200)
}

/// Microseconds since the epoch of an answer's time field.
fn micros(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a time, not {value}"));
    parse_timestamp(text).expect("an RFC 3339 time") / 1_000
}

fn fired_total(client: &mut Client) -> f64 {
    metric(
        &client.metrics_text(),
        "orderbook_cancel_all_after_fired_total",
    )
}

/// Waits up to 10 s for the book to be empty.
fn wait_empty(client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.orders() != (vec![], vec![]) {
        assert!(Instant::now() < deadline, "the book never emptied");
        thread::sleep(Duration::from_millis(20));
    }
}

fn status_of(client: &mut Client, id: &str) -> (Value, Value) {
    let order = client.order(id);
    (order["status"].clone(), order["order_alive"].clone())
}

#[test]
fn every_resting_order_is_cancelled_once_the_deadline_passes_unrefreshed() {
    let server = Server::start();
    let mut client = server.connect();
    let buy = client.place_id(1, 99.0, 5);
    let sell = client.place_id(-1, 101.0, 7);
    // A second: room for a busy machine between arming and the reads
    // that find it armed.
    let armed = arm(&mut client, 1_000);
    assert_eq!(
        (&armed["success"], &armed["message"], &armed["timeout_ms"]),
        (&json!(true), &json!("Cancel-all armed"), &json!(1_000))
    );
    assert_eq!(
        micros(&armed["trigger_time"]) - micros(&armed["current_time"]),
        1_000_000,
        "{armed}"
    );
    let state = client.get(PATH).expect(200);
    assert_eq!(state["trigger_time"], armed["trigger_time"]);
    assert_eq!(state["timeout_ms"], json!(1_000));
    assert!(state.get("success").is_none(), "{state}");
    let text = client.metrics_text();
    assert_eq!(metric(&text, "orderbook_cancel_all_after_armed"), 1.0);

    wait_empty(&mut client);
    let now = client.get(PATH).expect(200);
    assert!(micros(&now["current_time"]) >= micros(&armed["trigger_time"]));
    assert_eq!(
        (&now["trigger_time"], &now["timeout_ms"]),
        (&Value::Null, &json!(0))
    );
    for id in [&buy, &sell] {
        let cancelled = (json!("cancelled"), json!(false));
        assert_eq!(status_of(&mut client, id), cancelled);
    }
    let text = client.metrics_text();
    assert_eq!(metric(&text, "orderbook_cancel_all_after_armed"), 0.0);
    assert_eq!(metric(&text, "orderbook_cancel_all_after_fired_total"), 1.0);
    assert!(server.stderr().contains(
        "cancel-all-after: the deadline passed with no refresh; 2 resting orders cancelled"
    ));
    assert!(
        !server_file(&server).exists(),
        "the fired switch's file stays"
    );

    // It went off once: an order placed afterwards rests on.
    let later = client.place_id(1, 98.0, 1);
    thread::sleep(Duration::from_millis(400));
    assert_eq!(status_of(&mut client, &later), (json!("open"), json!(true)));
    assert_eq!(fired_total(&mut client), 1.0);
}

fn server_file(server: &Server) -> std::path::PathBuf {
    server.dir().join(FILE)
}

#[test]
fn refreshing_keeps_the_orders_and_a_timeout_of_0_disarms_it() {
    let server = Server::start();
    let mut client = server.connect();
    let id = client.place_id(1, 99.0, 5);
    let started = Instant::now();
    // Refreshed every 100 ms for twice its timeout: a refresh would have
    // to come 1.5 s late for the switch to go off.
    arm(&mut client, 1_500);
    while started.elapsed() < Duration::from_millis(3_000) {
        thread::sleep(Duration::from_millis(100));
        arm(&mut client, 1_500);
    }
    assert_eq!(status_of(&mut client, &id), (json!("open"), json!(true)));
    let off = arm(&mut client, 0);
    assert_eq!(
        (&off["message"], &off["trigger_time"], &off["timeout_ms"]),
        (&json!("Cancel-all disarmed"), &Value::Null, &json!(0))
    );
    assert!(!server_file(&server).exists());
    thread::sleep(Duration::from_millis(1_700));
    assert_eq!(status_of(&mut client, &id), (json!("open"), json!(true)));
    assert_eq!(fired_total(&mut client), 0.0);
    // Disarming what is not armed is no error.
    arm(&mut client, 0);
}

#[test]
fn a_bad_request_is_refused_and_leaves_the_deadline_as_it_was() {
    let server = Server::start();
    let mut client = server.connect();
    let armed = arm(&mut client, 60_000);
    for (body, status, detail) in [
        (r#"{"timeout_ms": -1}"#, 422, RANGE),
        (r#"{"timeout_ms": 86400001}"#, 422, RANGE),
        (r#"{"timeout_ms": 1.5}"#, 422, RANGE),
        (r#"{"timeout_ms": "5"}"#, 422, RANGE),
        (r#"{"timeout_ms": null}"#, 422, "timeout_ms: field required"),
        (r#"{}"#, 422, "timeout_ms: field required"),
        (
            r#"[1000]"#,
            422,
            r#"Request body must be a JSON object {"timeout_ms": N}"#,
        ),
        (
            r#"{"timeout_ms": 1, "timeout_ms": 2}"#,
            422,
            "timeout_ms: given more than once",
        ),
    ] {
        client.post(PATH, body).expect_detail(status, detail);
    }
    assert_eq!(client.post(PATH, "{").status, 400);
    let state = client.get(PATH).expect(200);
    assert_eq!(
        (&state["trigger_time"], &state["timeout_ms"]),
        (&armed["trigger_time"], &json!(60_000))
    );
    let wrong = client.delete(PATH);
    assert_eq!(
        (wrong.status, wrong.header("Allow")),
        (405, Some("GET, HEAD, POST"))
    );
    // The largest timeout is a day.
    let day = arm(&mut client, 86_400_000);
    assert_eq!(
        micros(&day["trigger_time"]) - micros(&day["current_time"]),
        86_400_000_000
    );
}

#[test]
fn an_armed_switch_survives_kill_9_and_goes_off_at_start_if_it_passed_while_down() {
    let dir = TempDir::new("cancel-after-crash");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let id = client.place_id(1, 99.0, 5);
    let armed = arm(&mut client, 60_000);
    server.kill9();

    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let state = client.get(PATH).expect(200);
    assert_eq!(
        (&state["trigger_time"], &state["timeout_ms"]),
        (&armed["trigger_time"], &json!(60_000))
    );
    assert_eq!(status_of(&mut client, &id), (json!("open"), json!(true)));
    arm(&mut client, 200);
    server.kill9();
    thread::sleep(Duration::from_millis(400));

    // The deadline passed while it was down: it goes off before the first
    // request is served.
    let server = Server::start_in(&dir.0, &[]);
    went_off_at_start(&server, &id, &dir.0);
}

/// The switch went off as `server` started: `order` was cancelled before
/// the first request, once, and the switch is disarmed and its file gone.
fn went_off_at_start(server: &Server, order: &str, dir: &std::path::Path) {
    let mut client = server.connect();
    assert_eq!(client.orders(), (vec![], vec![]));
    assert_eq!(
        status_of(&mut client, order),
        (json!("cancelled"), json!(false))
    );
    assert_eq!(fired_total(&mut client), 1.0);
    assert_eq!(client.get(PATH).expect(200)["trigger_time"], Value::Null);
    wait_until_gone(&dir.join(FILE));
}

fn wait_until_gone(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        assert!(Instant::now() < deadline, "{} stays", path.display());
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_switch_goes_off_once_whichever_side_of_its_record_a_stop_comes() {
    let dir = TempDir::new("cancel-after-fired");
    let mut server = Server::start_in(&dir.0, &["--fsync"]);
    let mut client = server.connect();
    arm(&mut client, 100);
    wait_until_gone(&dir.0.join(FILE));
    assert_eq!(fired_total(&mut client), 1.0);
    // Records 1 (the switch's cancel-all) and 2, 3 (these places).
    let first = client.place_id(1, 99.0, 5);
    let second = client.place_id(-1, 101.0, 5);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());

    // A switch marked fired by a record the journal holds is done with:
    // the orders placed after it stay.
    let marked = |seq: u64| {
        format!(
            r#"{{"trigger_time":"2026-01-01T00:00:00.000000Z","timeout_ms":100,"fired_seq":{seq}}}"#
        )
    };
    fs::write(dir.0.join(FILE), marked(3)).unwrap();
    let mut server = Server::start_in(&dir.0, &["--fsync"]);
    let mut client = server.connect();
    assert_eq!(status_of(&mut client, &first), (json!("open"), json!(true)));
    assert_eq!(
        status_of(&mut client, &second),
        (json!("open"), json!(true))
    );
    assert_eq!(fired_total(&mut client), 0.0);
    assert!(!dir.0.join(FILE).exists());
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());

    // Marked fired by a record the journal lost: it goes off again.
    fs::write(dir.0.join(FILE), marked(4)).unwrap();
    let server = Server::start_in(&dir.0, &["--fsync"]);
    went_off_at_start(&server, &first, &dir.0);
}

#[test]
fn a_damaged_deadline_file_stops_the_start_and_is_left_as_it_was() {
    let dir = TempDir::new("cancel-after-damaged");
    let path = dir.0.join(FILE);
    fs::write(&path, br#"{"trigger_time":"soon","timeout_ms":5}"#).unwrap();
    let (status, stderr) = refused_start(&dir.0, &[]);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "cannot read {}: trigger_time \"soon\" is not a time",
            std::path::Path::new(".").join(FILE).display()
        )),
        "{stderr}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        br#"{"trigger_time":"soon","timeout_ms":5}"#
    );
}
