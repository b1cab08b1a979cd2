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
        (r#"{"timeout_ms": 1e-3}"#, 422, RANGE),
        (r#"{"timeout_ms": "soon"}"#, 422, RANGE),
        (r#"{"timeout_ms": "-5"}"#, 422, RANGE),
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
        // A misspelt prefix would arm the switch for every order.
        (
            r#"{"timeout_ms": 1000, "prefix": "mine-"}"#,
            422,
            "prefix: not a field of this body (it takes timeout_ms and client_order_id_prefix)",
        ),
        (
            r#"{"client_order_id": "mine-", "timeout_ms": 1000}"#,
            422,
            "client_order_id: not a field of this body (it takes timeout_ms and client_order_id_prefix)",
        ),
        // So would a null prefix (a client's unset variable): it disarmed
        // the switch of every order.
        (
            r#"{"timeout_ms": 0, "client_order_id_prefix": null}"#,
            422,
            "client_order_id_prefix: must be a prefix, not null (leave the field out for the switch of every order)",
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
    // Any exact whole number of milliseconds, as quantities.
    for whole in ["1000.0", "1e3", "0.1e4", r#""1000""#, r#"" 1000 ""#] {
        let armed = client
            .post(PATH, &format!(r#"{{"timeout_ms": {whole}}}"#))
            .expect(200);
        assert_eq!(armed["timeout_ms"], json!(1000), "{whole}");
    }
    // `-0` is 0, as JSON readers (Python's) take it: it disarms.
    for zero in ["-0", "-0.0", r#""-0""#] {
        arm(&mut client, 1000);
        let off = client
            .post(PATH, &format!(r#"{{"timeout_ms": {zero}}}"#))
            .expect(200);
        assert_eq!(
            (&off["trigger_time"], &off["timeout_ms"]),
            (&json!(null), &json!(0)),
            "{zero}"
        );
    }
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
    fs::write(dir.0.join(FILE), marked_fired(None, 3)).unwrap();
    starts_done_with(&dir.0, &dir.0.join(FILE), [&first, &second]);

    // Marked fired by a record the journal lost: it goes off again.
    fs::write(dir.0.join(FILE), marked_fired(None, 4)).unwrap();
    let server = Server::start_in(&dir.0, &["--fsync"]);
    went_off_at_start(&server, &first, &dir.0);
}

/// A switch's file (of `prefix`'s switch, or of every order's) marked
/// fired by journal record `seq`.
fn marked_fired(prefix: Option<&str>, seq: u64) -> String {
    let prefix = prefix.map_or(String::new(), |p| {
        format!(r#""client_order_id_prefix":"{p}","#)
    });
    format!(
        r#"{{{prefix}"trigger_time":"2026-01-01T00:00:00.000000Z","timeout_ms":100,"fired_seq":{seq}}}"#
    )
}

/// Starts the service (`--fsync`) in `dir`, whose switch `file` is marked
/// fired by a record the journal holds: it is done with, so `orders` rest
/// on and the file goes. Then stops it.
fn starts_done_with(dir: &std::path::Path, file: &std::path::Path, orders: [&str; 2]) {
    let mut server = Server::start_in(dir, &["--fsync"]);
    let mut client = server.connect();
    for order in orders {
        assert_eq!(status_of(&mut client, order), (json!("open"), json!(true)));
    }
    assert_eq!(fired_total(&mut client), 0.0);
    assert!(!file.exists());
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
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

/// The lines the service logged about `prefix`'s switch, once there is
/// one (up to 5 s: the line is written before the switch's file goes, and
/// stderr is read by a thread).
fn said_about(server: &Server, prefix: &str) -> Vec<String> {
    let tag = format!("cancel-all-after ({prefix})");
    let said = || -> Vec<String> {
        (server.stderr().lines())
            .filter(|line| line.contains(&tag))
            .map(str::to_owned)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while said().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    said()
}

const PREFIX_DIR: &str = "cancel_all_after.d";

/// Arms (or, with 0, disarms) the switch of the orders named with `prefix`.
fn arm_prefix(client: &mut Client, prefix: &str, timeout_ms: u64) -> Value {
    let body = format!(r#"{{"timeout_ms": {timeout_ms}, "client_order_id_prefix": "{prefix}"}}"#);
    client.post(PATH, &body).expect(200)
}

fn place_named(client: &mut Client, side: i8, price: f64, name: &str) -> String {
    let body = format!(
        r#"{{"quantity": 1, "price": {price:?}, "side": {side}, "client_order_id": "{name}"}}"#
    );
    string(&client.post("/order/", &body).expect(200), "id")
}

/// The file of `prefix`'s switch: its bytes in hex.
fn prefix_file(dir: &std::path::Path, prefix: &str) -> std::path::PathBuf {
    let hex: String = prefix.bytes().map(|b| format!("{b:02x}")).collect();
    dir.join(PREFIX_DIR).join(format!("{hex}.json"))
}

fn armed_count(client: &mut Client) -> f64 {
    metric(&client.metrics_text(), "orderbook_cancel_all_after_armed")
}

#[test]
fn a_switch_by_name_prefix_cancels_only_its_orders_and_each_keeps_its_own_deadline() {
    let server = Server::start();
    let mut client = server.connect();
    let a1 = place_named(&mut client, 1, 99.0, "a-1");
    let a2 = place_named(&mut client, -1, 101.0, "a-2");
    let b1 = place_named(&mut client, 1, 98.0, "b-1");
    let plain = client.place_id(-1, 102.0, 1);
    let armed = arm_prefix(&mut client, "a-", 1_000);
    assert_eq!(
        (&armed["client_order_id_prefix"], &armed["timeout_ms"]),
        (&json!("a-"), &json!(1_000))
    );
    assert_eq!(
        micros(&armed["trigger_time"]) - micros(&armed["current_time"]),
        1_000_000
    );
    arm_prefix(&mut client, "b-", 1_000);
    let state = client
        .get(&format!("{PATH}?client_order_id_prefix=a-"))
        .expect(200);
    assert_eq!(state["trigger_time"], armed["trigger_time"]);
    assert_eq!(state["client_order_id_prefix"], json!("a-"));
    // The switch of every order is another, not armed.
    assert_eq!(client.get(PATH).expect(200)["trigger_time"], Value::Null);
    assert_eq!(armed_count(&mut client), 2.0);
    assert!(prefix_file(server.dir(), "a-").exists());
    assert!(prefix_file(server.dir(), "b-").exists());

    // Only b- is refreshed: a-'s orders go, b-'s and the unnamed stay.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(&mut client, &a1).1 == json!(true) {
        assert!(Instant::now() < deadline, "a-'s switch never went off");
        arm_prefix(&mut client, "b-", 1_000);
        thread::sleep(Duration::from_millis(50));
    }
    let cancelled = (json!("cancelled"), json!(false));
    let open = (json!("open"), json!(true));
    assert_eq!(status_of(&mut client, &a1), cancelled);
    assert_eq!(status_of(&mut client, &a2), cancelled);
    assert_eq!(status_of(&mut client, &b1), open);
    assert_eq!(status_of(&mut client, &plain), open);
    wait_until_gone(&prefix_file(server.dir(), "a-"));
    assert!(server.stderr().contains(
        "cancel-all-after (a-): the deadline passed with no refresh; 2 resting orders cancelled"
    ));
    assert_eq!(fired_total(&mut client), 1.0);
    assert_eq!(armed_count(&mut client), 1.0);
    let gone = client
        .get(&format!("{PATH}?client_order_id_prefix=a-"))
        .expect(200);
    assert_eq!(
        (&gone["trigger_time"], &gone["timeout_ms"]),
        (&Value::Null, &json!(0))
    );

    // Disarmed, b- keeps its order.
    let off = arm_prefix(&mut client, "b-", 0);
    assert_eq!(off["message"], json!("Cancel-all disarmed"));
    assert!(!prefix_file(server.dir(), "b-").exists());
    thread::sleep(Duration::from_millis(1_300));
    assert_eq!(status_of(&mut client, &b1), open);
    assert_eq!(armed_count(&mut client), 0.0);
    assert_eq!(fired_total(&mut client), 1.0);

    // A bad prefix is refused, in the body and in the query.
    let rule = "client_order_id_prefix: must be a string of 1 to 36 letters, digits, '.', ':', '/', '_' or '-'";
    for body in [
        r#"{"timeout_ms": 1000, "client_order_id_prefix": "a b"}"#,
        r#"{"timeout_ms": 1000, "client_order_id_prefix": ""}"#,
        r#"{"timeout_ms": 1000, "client_order_id_prefix": 7}"#,
    ] {
        client.post(PATH, body).expect_detail(422, rule);
    }
    client
        .get(&format!("{PATH}?client_order_id_prefix=a%20b"))
        .expect_detail(422, rule);
    assert_eq!(armed_count(&mut client), 0.0);
}

#[test]
fn a_switch_by_name_prefix_survives_kill_9_and_cancels_at_start_if_it_passed_while_down() {
    let dir = TempDir::new("cancel-after-prefix-crash");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let mine = place_named(&mut client, 1, 99.0, "mm/1-a");
    let other = place_named(&mut client, 1, 98.0, "mm/2-a");
    let armed = arm_prefix(&mut client, "mm/1-", 60_000);
    server.kill9();

    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let state = client
        .get(&format!("{PATH}?client_order_id_prefix=mm/1-"))
        .expect(200);
    assert_eq!(
        (&state["trigger_time"], &state["timeout_ms"]),
        (&armed["trigger_time"], &json!(60_000))
    );
    arm_prefix(&mut client, "mm/1-", 200);
    server.kill9();
    thread::sleep(Duration::from_millis(400));

    // It passed while the service was down: its order is cancelled
    // before the first request is served, the other prefix's stays.
    let server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    let (buys, _) = client.orders();
    assert_eq!(buys.len(), 1, "{buys:?}");
    assert_eq!(buys[0]["id"], json!(other));
    assert_eq!(
        status_of(&mut client, &mine),
        (json!("cancelled"), json!(false))
    );
    assert_eq!(fired_total(&mut client), 1.0);
    wait_until_gone(&prefix_file(&dir.0, "mm/1-"));
}

#[test]
fn a_switch_by_name_prefix_cancels_again_at_start_only_if_its_record_was_lost() {
    let dir = TempDir::new("cancel-after-prefix-fired");
    let mut server = Server::start_in(&dir.0, &["--fsync"]);
    let mut client = server.connect();
    // Records 1 and 2.
    let first = place_named(&mut client, 1, 99.0, "q-1");
    let second = place_named(&mut client, -1, 101.0, "q-2");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    fs::create_dir_all(dir.0.join(PREFIX_DIR)).unwrap();
    // Marked fired by record 2, which the journal holds: done with.
    let file = prefix_file(&dir.0, "q-");
    fs::write(&file, marked_fired(Some("q-"), 2)).unwrap();
    starts_done_with(&dir.0, &file, [&first, &second]);

    // Marked fired by record 3, which the journal lacks: again.
    fs::write(&file, marked_fired(Some("q-"), 3)).unwrap();
    let server = Server::start_in(&dir.0, &["--fsync"]);
    let mut client = server.connect();
    assert_eq!(client.orders(), (vec![], vec![]));
    for id in [&first, &second] {
        assert_eq!(
            status_of(&mut client, id),
            (json!("cancelled"), json!(false))
        );
    }
    wait_until_gone(&prefix_file(&dir.0, "q-"));
}

#[test]
fn a_prefix_s_file_under_another_prefix_s_name_stops_the_start() {
    let dir = TempDir::new("cancel-after-prefix-damaged");
    fs::create_dir_all(dir.0.join(PREFIX_DIR)).unwrap();
    let path = prefix_file(&dir.0, "a-");
    let bytes =
        br#"{"client_order_id_prefix":"b-","trigger_time":"2026-01-01T00:00:00Z","timeout_ms":5}"#;
    fs::write(&path, bytes).unwrap();
    let (status, stderr) = refused_start(&dir.0, &[]);
    assert!(!status.success());
    let here = std::path::Path::new(".").join(PREFIX_DIR);
    assert!(
        stderr.contains(&format!(
            "cannot read {}: its prefix \"b-\" is kept in {}",
            here.join("612d.json").display(),
            here.join("622d.json").display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn at_most_1024_switches_by_prefix_are_armed_at_once() {
    let server = Server::start();
    let mut client = server.connect();
    for i in 0..1024 {
        arm_prefix(&mut client, &format!("p{i}-"), 60_000);
    }
    let body = r#"{"timeout_ms": 60000, "client_order_id_prefix": "p1024-"}"#;
    client.post(PATH, body).expect_detail(
        422,
        "client_order_id_prefix: at most 1024 switches by prefix at once",
    );
    // Refreshing one armed, and the switch of every order, still go.
    arm_prefix(&mut client, "p7-", 60_000);
    arm(&mut client, 60_000);
    assert_eq!(armed_count(&mut client), 1025.0);
    // Disarming one makes room for another.
    arm_prefix(&mut client, "p7-", 0);
    arm_prefix(&mut client, "p1024-", 60_000);
    let files = fs::read_dir(server.dir().join(PREFIX_DIR)).unwrap().count();
    assert_eq!(files, 1024);
}

#[test]
fn a_switch_by_prefix_with_more_orders_than_the_command_ring_holds_cancels_them_all_once() {
    let server = Server::start_with(&["--command-ring", "4"]);
    let mut client = server.connect();
    let ids: Vec<String> = (0..10)
        .map(|i| place_named(&mut client, 1, 90.0 + i as f64 * 0.5, &format!("big-{i}")))
        .collect();
    // More than the ring holds: refused whole by DELETE, which a client
    // can retry by side or in parts...
    client
        .delete("/orders?client_order_id_prefix=big-")
        .expect_detail(
            422,
            "client_order_id_prefix: at most 4 fit the command ring (--command-ring)",
        );
    assert_eq!(client.orders().0.len(), 10, "nothing was cancelled");
    // ...but a switch has no client to retry: it cancels what fits and goes
    // off again at once for the rest, counted as once.
    arm_prefix(&mut client, "big-", 200);
    // While the cancels fill the ring of 4, a read may be told 503 (the
    // ring's back-pressure) and asks again.
    let read = |client: &mut Client, path: &str| loop {
        let response = client.get(path);
        if response.status != 503 {
            return response.expect(200);
        }
        thread::sleep(Duration::from_millis(10));
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(&mut client, "/orders") != json!({"buy_orders": [], "sell_orders": []}) {
        assert!(Instant::now() < deadline, "the book never emptied");
        thread::sleep(Duration::from_millis(20));
    }
    for id in &ids {
        let order = read(&mut client, &format!("/order/{id}"));
        assert_eq!(
            (&order["status"], &order["order_alive"]),
            (&json!("cancelled"), &json!(false))
        );
    }
    assert_eq!(fired_total(&mut client), 1.0);
    wait_until_gone(&prefix_file(server.dir(), "big-"));
    assert_eq!(armed_count(&mut client), 0.0);
    // Said once, with every order it cancelled over its turns.
    assert_eq!(
        said_about(&server, "big-"),
        ["orderbook: cancel-all-after (big-): the deadline passed with no refresh; 10 resting orders cancelled"]
    );
}

/// `n` buys named `prefix0`, `prefix1`, ... placed by the hundred (with
/// the default command ring, which takes a batch of 100).
fn place_many_named(client: &mut Client, prefix: &str, n: usize) {
    for from in (0..n).step_by(100) {
        let orders: Vec<String> = (from..(from + 100).min(n))
            .map(|i| {
                format!(r#"{{"quantity": 1, "price": 50.0, "side": 1, "client_order_id": "{prefix}{i}"}}"#)
            })
            .collect();
        client
            .post(
                "/orders/batch",
                &format!(r#"{{"orders": [{}]}}"#, orders.join(",")),
            )
            .expect(200);
    }
}

/// The resting orders named with `prefix`, read again on a 503 (the
/// switch's cancels fill a small command ring).
fn resting_named(client: &mut Client, prefix: &str) -> usize {
    loop {
        let response = client.get(&format!("/orders?client_order_id_prefix={prefix}"));
        if response.status != 503 {
            return response.expect(200)["buy_orders"].as_array().unwrap().len();
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to 20 s for the resting orders named with `prefix` to number
/// `wanted` or fewer.
fn wait_resting_at_most(client: &mut Client, prefix: &str, wanted: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = resting_named(client, prefix);
        if left <= wanted {
            return left;
        }
        assert!(
            Instant::now() < deadline,
            "{left} {prefix} orders still rest"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// A switch whose orders outnumber the command ring cancels them in turns;
/// an order placed under its prefix while it does is not one it went off
/// for, and rests on. The going-off is logged once, with its own count.
#[test]
fn a_going_off_in_turns_cancels_the_orders_resting_at_its_deadline_and_not_later_ones() {
    let dir = TempDir::new("switch-turns");
    let server = Server::start_in(&dir.0, &[]);
    place_many_named(&mut server.connect(), "k-", 3_000);
    drop(server);
    let server = Server::start_in(&dir.0, &["--command-ring", "4"]);
    let mut client = server.connect();
    assert_eq!(resting_named(&mut client, "k-"), 3_000);
    arm_prefix(&mut client, "k-", 100);
    wait_resting_at_most(&mut client, "k-", 2_999);
    let mut later = Vec::new();
    for i in 0..10 {
        let body = format!(
            r#"{{"quantity": 1, "price": 50.0, "side": 1, "client_order_id": "k-new-{i}"}}"#
        );
        loop {
            let response = client.post("/order/", &body);
            if response.status != 503 {
                later.push(string(&response.expect(200), "id"));
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
    wait_resting_at_most(&mut client, "k-", 10);
    wait_until_gone(&prefix_file(server.dir(), "k-"));
    assert_eq!(
        resting_named(&mut client, "k-new-"),
        10,
        "the later ones rest"
    );
    assert_eq!(
        said_about(&server, "k-"),
        ["orderbook: cancel-all-after (k-): the deadline passed with no refresh; 3000 resting orders cancelled"]
    );
}

/// A kill -9 while a going-off is cancelling in turns, after `meanwhile`
/// (sent once the turns run): the start goes off again for what still
/// rests, before any request is served. The kill must land while the
/// turns run (watched through the resting-order gauge, which costs no read
/// of the book): a going-off that finished first is tried again with a
/// fresh book.
fn a_going_off_in_turns_cut_by_kill_9_after(meanwhile: impl Fn(&mut Client)) {
    const ORDERS: usize = 20_000;
    for attempt in 1..=3 {
        let dir = TempDir::new(&format!("switch-turns-crash-{attempt}"));
        let server = Server::start_in(&dir.0, &[]);
        place_many_named(&mut server.connect(), "k-", ORDERS);
        drop(server);
        let mut server = Server::start_in(&dir.0, &["--command-ring", "4"]);
        let mut client = server.connect();
        let resting = |client: &mut Client| {
            metric(&client.metrics_text(), "orderbook_resting_orders") as usize
        };
        // The gauge reads 0 until the replica has counted the recovered
        // book: a drop from it must be the switch's.
        let deadline = Instant::now() + Duration::from_secs(20);
        while resting(&mut client) != ORDERS {
            assert!(
                Instant::now() < deadline,
                "the gauge never counted the book"
            );
        }
        arm_prefix(&mut client, "k-", 100);
        while resting(&mut client) == ORDERS {
            assert!(Instant::now() < deadline, "the switch never went off");
        }
        meanwhile(&mut client);
        server.kill9();
        let server = Server::start_in(&dir.0, &[]);
        let mut client = server.connect();
        assert_eq!(resting_named(&mut client, "k-"), 0, "attempt {attempt}");
        assert!(!prefix_file(server.dir(), "k-").exists());
        let said = server.stderr();
        if said.contains("cancel-all-after (k-)") {
            // The start finished what the kill cut: the case this is for.
            return;
        }
    }
    panic!("each going-off finished before the kill reached it");
}

#[test]
fn a_going_off_in_turns_cut_by_kill_9_is_finished_at_start() {
    a_going_off_in_turns_cut_by_kill_9_after(|_| {});
}

/// A disarm sent during the turns does not save their orders, crash or
/// not: it used to remove the file, so the start did not finish them.
#[test]
fn a_going_off_in_turns_disarmed_and_cut_by_kill_9_is_finished_at_start() {
    a_going_off_in_turns_cut_by_kill_9_after(|client| {
        arm_prefix(client, "k-", 0);
    });
}

/// Switches that passed while the service was down cancel all their
/// orders before any request is served, even when together (or alone)
/// they hold more than the command ring: connections wait for the turns.
/// A crossing sell sent first used to trade with 9 to 15 of them.
#[test]
fn switches_that_passed_while_down_cancel_everything_before_the_first_request() {
    let dir = TempDir::new("switches-at-start");
    let ring = ["--command-ring", "4"];
    let mut server = Server::start_in(&dir.0, &ring);
    let mut client = server.connect();
    for p in 0..10 {
        for i in 0..3 {
            place_named(&mut client, 1, 100.0, &format!("p{p}-{i}"));
        }
        arm_prefix(&mut client, &format!("p{p}-"), 200);
    }
    // One alone with more orders than the ring holds.
    for i in 0..50 {
        place_named(&mut client, 1, 100.0, &format!("big-{i}"));
    }
    arm_prefix(&mut client, "big-", 200);
    server.kill9();
    thread::sleep(Duration::from_millis(400));
    let server = Server::start_in(&dir.0, &ring);
    let mut client = server.connect();
    let sell = r#"{"quantity": 80, "price": 100.0, "side": -1}"#;
    let first = loop {
        let response = client.post("/order/", sell);
        if response.status != 503 {
            break response.expect(200);
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        (&first["status"], &first["filled_quantity"]),
        (&json!("open"), &json!(0)),
        "the first request met orders whose deadline had passed"
    );
}

/// A switch whose deadline passes while a clean stop is still writing
/// answers does not go off in the stopping service: the feed has been
/// ended by then, and its subscribers would never be told of the cancels.
/// It goes off at the next start, as one that passed while it was down.
#[test]
fn a_switch_passing_during_a_clean_stop_goes_off_at_the_next_start() {
    let dir = TempDir::new("cancel-after-stopping");
    let mut server = Server::start_in(&dir.0, &[]);
    let mut client = server.connect();
    // A book whose listing (some 10 MB) outgrows the socket buffers, so
    // the stop waits for a client that does not read it.
    const ORDERS: u32 = 40_000;
    let mut burst = Vec::new();
    for n in 0..ORDERS {
        let body = format!(
            r#"{{"quantity": 1, "price": {}.{:02}, "side": 1}}"#,
            1 + n / 100,
            n % 100
        );
        burst.extend(request_bytes("POST", "/order/", Some(&body)));
    }
    client.send_raw(&burst).unwrap();
    let mut first = String::new();
    for n in 0..ORDERS {
        let placed = client.read_response().unwrap().expect(200);
        if n == 0 {
            first = placed["id"].as_str().unwrap().to_owned();
        }
    }
    let mut not_reading = server.connect();
    not_reading
        .send_raw(&request_bytes("GET", "/orders", None))
        .unwrap();
    arm(&mut client, 1_000);
    server.signal("TERM");
    thread::sleep(Duration::from_millis(1_500));
    assert!(
        !server.has_exited(),
        "the stop waits for the listing to be read"
    );
    let listing = not_reading.read_response().unwrap().expect(200);
    assert_eq!(
        listing["buy_orders"].as_array().unwrap().len(),
        ORDERS as usize
    );
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let server = Server::start_in(&dir.0, &[]);
    went_off_at_start(&server, &first, &dir.0);
}

/// A switch by prefix going off as a clean stop begins: its cancels are
/// told to the subscribers before the feed ends, or left undone to go off
/// at the next start; never journaled and applied untold. The replica's
/// list of the prefix's orders used to come after the feed's end was
/// placed, and its 300 cancels reached no subscriber in 4 of 8 stops
/// sent at the deadline.
#[test]
fn a_switch_by_prefix_going_off_as_a_stop_begins_is_told_or_left_for_the_next_start() {
    for attempt in 0..6 {
        let dir = TempDir::new("cancel-after-prefix-stop");
        let mut server = Server::start_in(&dir.0, &[]);
        let mut client = server.connect();
        place_many_named(&mut client, "mm1-", 300);
        let stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let url = format!("ws://{}/ws?channels=orders", server.addr);
        let (mut ws, _) = tungstenite::client(url, stream).expect("the upgrade succeeds");
        let told = thread::spawn(move || {
            let mut cancelled = 0;
            while let Ok(message) = ws.read() {
                if let tungstenite::Message::Text(text) = message {
                    cancelled += usize::from(text.contains(r#""event":"cancelled""#));
                }
            }
            cancelled
        });
        let trigger = micros(&arm_prefix(&mut client, "mm1-", 700)["trigger_time"]);
        let now = now_micros() as u64;
        thread::sleep(Duration::from_micros(trigger.saturating_sub(now)));
        server.signal("TERM");
        assert!(server.wait_exit(Duration::from_secs(20)).unwrap().success());
        let told = told.join().unwrap();
        let journal = std::process::Command::new(BIN)
            .arg("--print-journal")
            .current_dir(&dir.0)
            .output()
            .unwrap();
        let journaled = String::from_utf8(journal.stdout)
            .unwrap()
            .matches(r#""command":"cancel""#)
            .count();
        assert_eq!(
            told, journaled,
            "attempt {attempt}: cancels told and journaled"
        );
        // Told, or going off at this start: none rests either way.
        let server = Server::start_in(&dir.0, &[]);
        assert_eq!(
            resting_named(&mut server.connect(), "mm1-"),
            0,
            "attempt {attempt}"
        );
    }
}
