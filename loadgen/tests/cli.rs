//! The `loadgen` command line: bad settings are refused before any load,
//! and a run that cannot reach the service fails instead of reporting
//! nothing as success.

use std::net::TcpListener;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn bad_settings_are_refused_with_exit_2() {
    let (code, stdout, stderr) = run(&["--rate", "0"]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    let rates = "loadgen: --rate must be from 0.001 to 32000000 requests a second (1,000,000 a connection)\n";
    assert_eq!(stderr, rates);
    // A schedule finer than the clock never moved on; NaN passed the test.
    for rate in ["1e10", "nan", "1e-300", "inf"] {
        let (code, _, stderr) = run(&["--rate", rate]);
        assert_eq!((code, stderr.as_str()), (Some(2), rates), "--rate {rate}");
    }
    let (code, _, stderr) = run(&["--mix", "place=0"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("the mix gives every kind weight 0"),
        "{stderr}"
    );
    for (flag, value) in [
        ("--mid", "0.05"),
        ("--mid", "nan"),
        ("--tick", "nan"),
        ("--mid", "1e30"),
    ] {
        let (code, _, stderr) = run(&[flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}");
        assert_eq!(
            stderr,
            "loadgen: --mid must be at least 11 and at most 1125899906842624 ticks of --tick\n",
            "{flag} {value}"
        );
    }
    // Following orders is something subscribers do.
    let (code, _, stderr) = run(&["--feed-orders"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--subscribers <SUBSCRIBERS>"), "{stderr}");
    let (code, _, stderr) = run(&["--feed-orders", "--subscribers", "0"]);
    assert_eq!(
        (code, stderr.as_str()),
        (
            Some(2),
            "loadgen: --feed-orders needs --subscribers of at least 1\n"
        )
    );
    // A run of nothing is refused, not reported as a run.
    for duration in ["0", "nan", "inf", "1e30", "1e19"] {
        let (code, stdout, stderr) = run(&["-d", duration]);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (
                Some(2),
                "",
                "loadgen: --duration must be a positive number of seconds, at most 31536000\n"
            ),
            "-d {duration}"
        );
    }
    // With -n the duration is not used, so not checked.
    let (_, _, stderr) = run(&["--addr", &nobody_there(), "-n", "1", "-d", "0"]);
    assert!(!stderr.contains("--duration"), "{stderr}");
    for (flag, why) in [
        ("-n", "0 is not in 1..18446744073709551615"),
        ("-c", "must be at least 1"),
        ("-t", "must be at least 1"),
    ] {
        let (code, _, stderr) = run(&[flag, "0"]);
        assert_eq!(code, Some(2), "{flag} 0");
        assert!(stderr.contains(why), "{flag} 0: {stderr}");
    }
}

#[test]
fn an_hgrm_path_that_cannot_be_written_is_refused_before_any_load() {
    let addr = nobody_there();
    let missing = std::env::temp_dir()
        .join("loadgen-no-such-dir")
        .join("run.hgrm");
    let path = missing.to_str().unwrap();
    let (code, stdout, stderr) = run(&["--addr", &addr, "-n", "4", "--hgrm", path]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert_eq!(
        stderr,
        format!("loadgen: cannot write {path}: No such file or directory (os error 2)\n")
    );
}

/// A loopback address nobody listens on: bound, then closed.
fn nobody_there() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

#[test]
fn subscribers_that_cannot_join_fail_the_run_before_any_load() {
    let addr = nobody_there();
    let (code, stdout, stderr) = run(&["--addr", &addr, "-n", "4", "--subscribers", "2"]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(
        stderr.starts_with(&format!(
            "loadgen: cannot subscribe to {addr}: a subscriber cannot join: connect {addr}:"
        )),
        "{stderr}"
    );
}

#[test]
fn a_service_that_is_not_there_fails_the_run() {
    let addr = nobody_there();
    let (code, stdout, stderr) = run(&["--addr", &addr, "-c", "2", "-n", "4", "--json"]);
    assert_eq!(code, Some(1), "stdout {stdout} stderr {stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    // Either the connect itself was refused (no report), or the requests
    // were lost on refused connections (a report saying so).
    if !stdout.is_empty() {
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["requests"], 0);
        assert!(
            report["transport_errors"].as_u64().unwrap() >= 1,
            "{report}"
        );
    }
}

/// What a fake service does with each request it reads.
#[derive(Clone, Copy)]
enum Fake {
    /// Reads and never answers (a stalled service).
    Silent,
    /// Answers 200 with `Connection: close`, then closes.
    AnswersThenCloses,
    /// Answers 200 after this many milliseconds, keeping the connection.
    AnswersAfter(u64),
}

/// A fake service on loopback for `seconds`, doing `fake` on every
/// connection; returns its address.
fn fake_service(fake: Fake, seconds: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    std::thread::spawn(move || serve_fake(listener, fake, until));
    addr
}

/// A fake service that answers at once, on an address that refuses
/// connections for its first `after_ms` milliseconds (a service restarting).
fn service_back_after(after_ms: u64, seconds: u64) -> String {
    use std::time::{Duration, Instant};
    let addr = nobody_there();
    let until = Instant::now() + Duration::from_secs(seconds);
    let bound = addr.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(after_ms));
        serve_fake(
            TcpListener::bind(&bound).unwrap(),
            Fake::AnswersAfter(0),
            until,
        );
    });
    addr
}

fn serve_fake(listener: TcpListener, fake: Fake, until: std::time::Instant) {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    listener.set_nonblocking(true).unwrap();
    while Instant::now() < until {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        std::thread::spawn(move || {
            stream.set_nonblocking(false).unwrap();
            let left = until.saturating_duration_since(Instant::now());
            stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buffer = [0u8; 4096];
            let mut pending = Vec::new();
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    return;
                }
                pending.extend_from_slice(&buffer[..n]);
                // One answer per whole request head (the requests of
                // these runs have no body).
                while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    pending.drain(..end + 4);
                    match fake {
                        Fake::Silent => {}
                        Fake::AnswersThenCloses => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                            );
                            return;
                        }
                        Fake::AnswersAfter(ms) => {
                            std::thread::sleep(Duration::from_millis(ms));
                            let _ =
                                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                        }
                    }
                }
            }
        });
    }
}

fn timed_run(args: &[&str]) -> (Option<i32>, String, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = run(args);
    (code, stdout, stderr, started.elapsed())
}

/// A service that stops answering ends the run at the timeout, as failed;
/// it held loadgen for good, printing nothing (wrk has a timeout too).
#[test]
fn a_service_that_never_answers_ends_the_run_at_the_timeout() {
    let addr = fake_service(Fake::Silent, 20);
    for stop in [["-d", "1"], ["-n", "4"]] {
        let args = [
            "--addr",
            &addr,
            "-c",
            "2",
            "--timeout",
            "1",
            "--json",
            stop[0],
            stop[1],
        ];
        let (code, stdout, stderr, took) = timed_run(&args);
        assert_eq!(code, Some(1), "{stop:?}: {stderr}");
        assert!(
            took < std::time::Duration::from_secs(4),
            "{stop:?} took {took:?}"
        );
        assert!(stderr.contains("no answer within 1 s"), "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["requests"], 0, "{report}");
        assert!(report["timeouts"].as_u64().unwrap() >= 2, "{report}");
    }
}

/// An answer that comes in the same read as the close after it is
/// counted: it was thrown away with the close and counted as a failure
/// (71 of 100 here).
#[test]
fn an_answer_followed_at_once_by_the_close_is_counted() {
    let addr = fake_service(Fake::AnswersThenCloses, 20);
    let args = [
        "--addr", &addr, "-c", "1", "-n", "100", "--mix", "book=1", "--json",
    ];
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (
            &report["requests"],
            &report["statuses"],
            &report["transport_errors"]
        ),
        (
            &serde_json::json!(100),
            &serde_json::json!({"200": 100}),
            &serde_json::json!(0)
        ),
        "{report}"
    );
}

/// A service that is not there ends a counted run at the timeout, each
/// connection reopened after a pause that doubles: a count of 2,000 was
/// spent on refusals 10 ms apart, and an open loop tried 80,000 times a
/// second.
#[test]
fn a_service_that_is_not_there_ends_a_counted_or_open_run_at_the_timeout() {
    let addr = nobody_there();
    for extra in [&["-n", "2000"][..], &["-d", "3", "-R", "100"]] {
        let args = [
            &["--addr", &addr, "-c", "2", "--timeout", "1", "--json"][..],
            extra,
        ]
        .concat();
        let (code, stdout, stderr, took) = timed_run(&args);
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert!(
            took < std::time::Duration::from_millis(2_500),
            "{extra:?} took {took:?}"
        );
        assert!(
            stderr.contains("failed for 1 s with no answer; it stops"),
            "{stderr}"
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["connections_given_up"], 2, "{report}");
        let errors = report["transport_errors"].as_u64().unwrap();
        assert!((2..=24).contains(&errors), "{extra:?}: {errors} errors");
    }
}

/// An open loop faster than the service ends at twice its duration (late
/// sends go for as long again as the run), counting the sends it did not
/// make: a 1 s run at 200,000 a second took 7.2 s.
#[test]
fn an_open_loop_faster_than_the_service_ends_in_bounded_time_and_counts_what_went_unsent() {
    let addr = fake_service(Fake::AnswersAfter(50), 20);
    let args = [
        "--addr", &addr, "-c", "1", "-d", "1", "-R", "100", "--mix", "book=1", "--json",
    ];
    let (code, stdout, stderr, took) = timed_run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        took < std::time::Duration::from_millis(2_500),
        "took {took:?}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let answered = report["requests"].as_u64().unwrap();
    let unsent = report["unsent"].as_u64().unwrap();
    // One answer each 50 ms for 2 s: about 40 of the 100 due.
    assert!((30..=41).contains(&answered), "{report}");
    assert_eq!(answered + unsent, 100, "{report}");
    // A service keeping up leaves nothing unsent: 3 a second for 1 s is 3
    // sends (the 4th fell due a hair before the end, and was unsent).
    let quick = fake_service(Fake::AnswersAfter(0), 20);
    for (connections, rate) in [("1", "3"), ("1", "30"), ("3", "9")] {
        let args = [
            "--addr",
            &quick,
            "-c",
            connections,
            "-d",
            "1",
            "-R",
            rate,
            "--mix",
            "book=1",
            "--json",
        ];
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let sends: u64 = rate.parse().unwrap();
        assert_eq!(
            (&report["requests"], &report["unsent"]),
            (&sends.into(), &0.into()),
            "-c {connections} -R {rate}: {report}"
        );
    }
}

/// A service back before the timeout is found: the last reopen is made at
/// the timeout. Reopens 10, 20, 40 ... ms apart had the one before the
/// timeout at 630 ms and the next past it, so a service back at 850 ms
/// was given up unseen.
#[test]
fn a_service_back_within_the_timeout_is_found_and_loaded() {
    let addr = service_back_after(850, 20);
    let args = [
        "--addr",
        &addr,
        "-c",
        "2",
        "-d",
        "2",
        "--timeout",
        "1",
        "--mix",
        "book=1",
        "--json",
    ];
    let (_, stdout, stderr) = run(&args);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["connections_given_up"], 0, "{report} {stderr}");
    assert!(report["requests"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(report["statuses"].as_object().unwrap().len(), 1, "{report}");
}
