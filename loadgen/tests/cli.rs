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
    assert_eq!(
        stderr,
        "loadgen: --rate must be a positive number of requests per second\n"
    );
    let (code, _, stderr) = run(&["--mix", "place=0"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("the mix gives every kind weight 0"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["--mid", "0.05"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "loadgen: --mid must be at least 11 ticks of --tick\n"
    );
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
    for duration in ["0", "nan", "inf", "1e30"] {
        let (code, stdout, stderr) = run(&["-d", duration]);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (
                Some(2),
                "",
                "loadgen: --duration must be a positive number of seconds\n"
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
