//! The real `orderbook` binary: its settings and its clean stop.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_orderbook");

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, env) in [
        ("--listen", "ORDERBOOK_LISTEN"),
        ("--data-dir", "ORDERBOOK_DATA_DIR"),
        ("--tick-size", "ORDERBOOK_TICK_SIZE"),
        ("--max-quantity", "ORDERBOOK_MAX_QUANTITY"),
        ("--max-connections", "ORDERBOOK_MAX_CONNECTIONS"),
        ("--idle-timeout", "ORDERBOOK_IDLE_TIMEOUT"),
        ("--request-timeout", "ORDERBOOK_REQUEST_TIMEOUT"),
        ("--max-header-bytes", "ORDERBOOK_MAX_HEADER_BYTES"),
        ("--max-body-bytes", "ORDERBOOK_MAX_BODY_BYTES"),
        ("--max-pipeline", "ORDERBOOK_MAX_PIPELINE"),
        ("--trade-history", "ORDERBOOK_TRADE_HISTORY"),
        ("--trades-default-limit", "ORDERBOOK_TRADES_DEFAULT_LIMIT"),
        ("--trades-max-limit", "ORDERBOOK_TRADES_MAX_LIMIT"),
        ("--matching-core", "ORDERBOOK_MATCHING_CORE"),
        ("--wait-strategy", "ORDERBOOK_WAIT_STRATEGY"),
        ("--command-ring", "ORDERBOOK_COMMAND_RING"),
        ("--event-ring", "ORDERBOOK_EVENT_RING"),
        ("--order-capacity", "ORDERBOOK_ORDER_CAPACITY"),
        ("--level-capacity", "ORDERBOOK_LEVEL_CAPACITY"),
        ("--finished-orders", "ORDERBOOK_FINISHED_ORDERS"),
        ("--huge-pages", "ORDERBOOK_HUGE_PAGES"),
        ("--snapshot-interval", "ORDERBOOK_SNAPSHOT_INTERVAL"),
        ("--fsync", "ORDERBOOK_FSYNC"),
        ("--prune-journal", "ORDERBOOK_PRUNE_JOURNAL"),
        ("--api-token", "ORDERBOOK_API_TOKEN"),
        ("--rate-limit", "ORDERBOOK_RATE_LIMIT"),
        ("--cors-origin", "ORDERBOOK_CORS_ORIGIN"),
        ("--rate-limit-burst", "ORDERBOOK_RATE_LIMIT_BURST"),
        ("--journal-segment-bytes", "ORDERBOOK_JOURNAL_SEGMENT_BYTES"),
    ] {
        assert!(help.contains(flag), "--help names {flag}:\n{help}");
        assert!(
            help.contains(&format!("env: {env}")),
            "--help names {env}:\n{help}"
        );
    }
}

#[test]
fn health_check_exits_0_while_the_service_answers_and_1_after() {
    let server = support::Server::start();
    // Asked on a wildcard address, it asks loopback.
    let wildcard = format!("0.0.0.0:{}", server.addr.port());
    for listen in [server.addr.to_string(), wildcard] {
        let output = Command::new(BIN)
            .args(["--health-check", "--listen", &listen])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert!(output.stdout.is_empty() && output.stderr.is_empty());
    }
    let addr = server.addr;
    drop(server);
    let output = Command::new(BIN)
        .args(["--health-check", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "orderbook: health check of {addr}: Connection refused"
        )),
        "{stderr}"
    );
}

/// The check's 2 seconds are for the whole answer: one sent a byte every
/// 300 ms, whole and 200 in the end, passed after 13 s; one that never
/// comes is told as such, not as an OS error.
#[test]
fn health_check_gives_the_whole_answer_2_seconds() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for dribble in [true, false] {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request);
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                if dribble {
                    let at = (started.elapsed().as_millis() / 300) as usize;
                    if at >= answer.len() || stream.write_all(&answer[at..=at]).is_err() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    });
    for _ in 0..2 {
        let started = Instant::now();
        let output = Command::new(BIN)
            .args(["--health-check", "--listen", &addr.to_string()])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(took < Duration::from_millis(3_000), "took {took:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(
            stderr,
            format!("orderbook: health check of {addr}: no whole answer within 2 s\n")
        );
    }
    server.join().unwrap();
}

/// Settings each valid that do not go together are refused as a bad value
/// is, before anything starts: a burst without a rate did nothing, and
/// both non-serving modes at once ran one and ignored the other.
#[test]
fn settings_that_do_not_go_together_are_refused() {
    let dir = support::TempDir::new("settings-together");
    for (args, env, said) in [
        (
            &["--rate-limit-burst", "5"][..],
            None,
            "--rate-limit-burst needs --rate-limit",
        ),
        (
            &[][..],
            Some(("ORDERBOOK_RATE_LIMIT_BURST", "5")),
            "--rate-limit-burst needs --rate-limit",
        ),
        (
            &["--health-check", "--print-journal"][..],
            None,
            "'--health-check' cannot be used with '--print-journal'",
        ),
    ] {
        let mut command = Command::new(BIN);
        command.current_dir(&dir.0).args(args);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(said), "{args:?} {env:?}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert!(left.is_empty(), "nothing is written: {left:?}");
}

#[test]
fn a_bad_setting_is_refused_with_a_message() {
    let output = Command::new(BIN)
        .args(["--wait-strategy", "sleepy"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("sleepy"), "{stderr}");
    // Bounds that would close every subscriber, or ping it without pause.
    for (flag, value) in [
        ("--ws-max-queue-bytes", "0"),
        ("--ws-max-queue-bytes", "1023"),
        ("--ws-ping-after", "0"),
        ("--ws-pong-timeout", "0"),
        // Sums of quantities would overflow past 2^32 - 1; none is no order.
        ("--max-quantity", "0"),
        ("--max-quantity", "4294967296"),
        // Sizes its structures cannot take panicked at start; none at all
        // left every request or connection refused.
        ("--command-ring", "0"),
        ("--event-ring", "18446744073709551615"),
        ("--order-capacity", "1099511627776"),
        ("--level-capacity", "18446744073709551615"),
        ("--finished-orders", "18446744073709551615"),
        ("--feed-channel", "0"),
        ("--snapshot-interval", "18446744073709551615"),
        ("--max-header-bytes", "0"),
        ("--max-connections", "0"),
        ("--trades-max-limit", "0"),
    ] {
        let output = Command::new(BIN).args([flag, value]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(flag), "{stderr}");
    }
}

/// A refused token is not quoted in the error, from the command line or
/// the environment: clap's own message quoted it, and a nearly right
/// secret in a log is a leaked one.
#[test]
fn a_refused_api_token_is_named_but_not_shown() {
    for secret in ["nearly-the-secret-but!", "short-secret"] {
        for from_env in [false, true] {
            let mut command = Command::new(BIN);
            if from_env {
                command.env("ORDERBOOK_API_TOKEN", secret);
            } else {
                command.args(["--api-token", secret]);
            }
            let output = command.output().unwrap();
            assert_eq!(output.status.code(), Some(2), "{secret}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert!(
                stderr.contains("'--api-token <API_TOKEN>' (not shown: it is a secret)"),
                "{stderr}"
            );
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
}

/// Sizes whose books or rings cannot be reserved are refused with the settings
/// named: the failed allocation aborted the process, saying only how many
/// bytes it wanted. A 4 GiB address-space limit stands for a small
/// machine, under which the default sizes still start.
#[test]
fn sizes_whose_books_cannot_be_reserved_are_refused_naming_them() {
    let dir = scratch_dir("sizes-too-big");
    let limited = |extra: &[&str]| {
        let mut command = Command::new("prlimit");
        command.args(["--as=4294967296", "--"]).arg(BIN);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(extra);
        command
    };
    let refusal = |extra: &[&str]| {
        let child = limited(extra).stderr(Stdio::piped()).spawn().unwrap();
        let output = refused_within_seconds(child);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        stderr
    };
    let stderr = refusal(&["--finished-orders", "67108864"]);
    assert!(
        stderr.contains("--finished-orders 67108864) reserve 8.2 GiB at start"),
        "{stderr}"
    );
    let rings = ["--command-ring", "16777216", "--event-ring", "16777216"];
    let stderr = refusal(&[&rings[..], &["--feed-channel", "16777216"]].concat());
    assert!(
        stderr.contains(
            "(--command-ring 16777216, --event-ring 16777216, --feed-channel 16777216) 4.5 GiB"
        ),
        "{stderr}"
    );
    // Room for the books and rings but not for the threads' stacks and
    // arenas besides: the start died on a thread (EAGAIN) or an abort.
    let child = Command::new("prlimit")
        .args(["--as=440401920", "--"])
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = refused_within_seconds(child);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("with 128 MiB for the rest is more than"),
        "{stderr}"
    );
    let mut child = limited(&[]).stderr(Stdio::piped()).spawn().unwrap();
    let _stderr = started(&mut child);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A core that is not there is said plainly, and the service runs
/// unpinned (it printed `no core Some(999) here`).
#[test]
fn a_matching_core_that_is_not_there_is_named_and_the_service_runs_unpinned() {
    let server = support::Server::start_with(&["--matching-core", "999"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.stderr().contains("running unpinned") {
        assert!(std::time::Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stderr = server.stderr();
    let said = "matching thread: --matching-core 999: no such core here (the last is ";
    assert!(stderr.contains(said), "{stderr}");
    assert!(!stderr.contains("Some("), "{stderr}");
    server.connect().get("/health").expect(200);
}

fn stops_cleanly_on(signal: &str) {
    let dir = scratch_dir(signal);
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = started(&mut child);
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "exit status after {signal}");
    assert!(
        dir.join("order_book_state.json").is_file(),
        "a clean stop writes the state file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_the_service_with_exit_code_zero() {
    stops_cleanly_on("-TERM");
}

#[test]
fn sigint_stops_the_service_with_exit_code_zero() {
    stops_cleanly_on("-INT");
}

#[test]
fn sigterm_stops_the_service_whose_stderr_reader_has_gone() {
    // As `orderbook ... 2>&1 | head -1`: the reader exits after a line,
    // and every later line the service writes meets a closed pipe.
    let dir = scratch_dir("stderr-gone");
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KilledAtEnd(child);
    drop(started(&mut child.0));
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    assert!(dir.join("order_book_state.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("orderbook-binary-{}-{}", std::process::id(), name));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Waits for the service's "listening on" line (other lines, such as a
/// pinning notice, may come first) and returns its stderr reader.
fn started(child: &mut std::process::Child) -> BufReader<std::process::ChildStderr> {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the service exited early"
        );
    }
    stderr
}

#[test]
fn a_second_service_on_the_same_state_file_is_refused_even_from_another_data_dir() {
    let first_dir = scratch_dir("state-first");
    let second_dir = scratch_dir("state-second");
    let state = scratch_dir("state-shared").join("book.json");
    let spawn = |dir: &std::path::Path| {
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("--state-file")
            .arg(&state)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(&first_dir);
    let _stderr = started(&mut first);
    let second = spawn(&second_dir).wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let message = String::from_utf8(second.stderr).unwrap();
    assert_eq!(
        message,
        format!(
            "orderbook: state file {} is in use by another orderbook process ({}.lock is locked)\n",
            state.display(),
            state.display()
        )
    );
    first.kill().unwrap();
    first.wait().unwrap();
    for dir in [
        &first_dir,
        &second_dir,
        &state.parent().unwrap().to_path_buf(),
    ] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A service that is killed when the test ends, passing or not: one left
/// running would hold the test's output pipe open.
struct KilledAtEnd(std::process::Child);

impl Drop for KilledAtEnd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The output of `child`, which must exit within 10 seconds: one that
/// starts and serves is killed, and the test fails rather than hangs.
fn refused_within_seconds(mut child: std::process::Child) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the service started instead of being refused");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_service_naming_another_data_dirs_state_file_is_refused() {
    let spawn = |dir: &std::path::Path, state_file: Option<&std::path::Path>| {
        let mut command = Command::new(BIN);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir);
        if let Some(state_file) = state_file {
            command.arg("--state-file").arg(state_file);
        }
        command.stderr(Stdio::piped()).spawn().unwrap()
    };
    let refusal = |state: &std::path::Path| {
        format!(
            "orderbook: state file {} is in use by another orderbook process ({}.lock is locked)\n",
            state.display(),
            state.display()
        )
    };
    // The first keeps its state file in its data directory, by default;
    // the second names it from a directory of its own.
    let (first_dir, second_dir) = (scratch_dir("own-state-a"), scratch_dir("own-state-b"));
    let mut first = KilledAtEnd(spawn(&first_dir, None));
    let _stderr = started(&mut first.0);
    let state = first_dir.join("order_book_state.json");
    let second = refused_within_seconds(spawn(&second_dir, Some(&state)));
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(String::from_utf8(second.stderr).unwrap(), refusal(&state));
    drop(first);

    // The first keeps its state file in the second's data directory; the
    // second names it there, relative to that directory.
    let (third_dir, fourth_dir) = (scratch_dir("own-state-c"), scratch_dir("own-state-d"));
    let state = fourth_dir.join("book.json");
    let mut third = KilledAtEnd(spawn(&third_dir, Some(&state)));
    let _stderr = started(&mut third.0);
    let fourth =
        refused_within_seconds(spawn(&fourth_dir, Some(std::path::Path::new("book.json"))));
    assert_eq!(fourth.status.code(), Some(1));
    assert_eq!(String::from_utf8(fourth.stderr).unwrap(), refusal(&state));
    drop(third);
    for dir in [&first_dir, &second_dir, &third_dir, &fourth_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_second_service_on_the_same_data_dir_is_refused() {
    let dir = scratch_dir("shared");
    let spawn = || {
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    let _stderr = started(&mut first);
    assert!(
        dir.join("orderbook.lock").exists(),
        "the data directory was created and locked"
    );
    let second = spawn().wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let message = String::from_utf8(second.stderr).unwrap();
    assert!(
        message.contains("is in use by another orderbook process"),
        "{message}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
