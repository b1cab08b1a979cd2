//! Shared helpers of the black-box HTTP tests: start the real `orderbook`
//! binary on an ephemeral port (killed when the guard drops), and a tiny
//! HTTP/1.1 client over a plain `TcpStream` that sends raw bytes and reads
//! one `Content-Length` framed response at a time (keep-alive, pipelining).
//!
//! Every test file includes this module but uses only part of it.
#![allow(dead_code)]

pub mod feed_book;

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_orderbook");

/// How long any single read or write may block before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

static SERVERS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// A running `orderbook` process; killed (and reaped) on drop.
pub struct Server {
    child: Child,
    /// Where it listens (always 127.0.0.1).
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Set once stderr reached its end (the process closed it).
    stderr_closed: Arc<AtomicBool>,
    dir: PathBuf,
    /// The directory was made for this server and goes with it.
    owns_dir: bool,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts the service with default settings.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts the service with extra command-line flags, on 127.0.0.1:0, in a
    /// fresh working directory (so no state file of another run is loaded).
    pub fn start_with(args: &[&str]) -> Server {
        let dir = fresh_dir("http-test");
        Server::spawn_in(dir, args, true)
    }

    /// Starts the service in `dir` (its state is kept when the guard drops),
    /// e.g. to restart on the same state.
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Server {
        Server::spawn_in(dir.to_path_buf(), args, false)
    }

    /// Starts the service in `dir` under a limit on the size of any file it
    /// writes (`prlimit --fsize`). The service catches `SIGXFSZ` itself, so
    /// that a write past the limit fails with `EFBIG`, as one to a full disk
    /// fails with `ENOSPC`.
    pub fn start_in_with_file_size_limit(
        dir: &std::path::Path,
        args: &[&str],
        bytes: u64,
    ) -> Server {
        let limited = format!("exec prlimit --fsize={bytes} -- \"$@\"");
        let wrapper = ["sh", "-c", limited.as_str(), "sh", BIN];
        Server::spawn_with(&wrapper, dir.to_path_buf(), args, false)
    }

    /// Starts the service (as `start_with`) under the open-file limit
    /// `files` (`prlimit --nofile`: `64` for soft and hard, `64:4096`).
    pub fn start_with_open_file_limit(args: &[&str], files: &str) -> Server {
        let limited = format!("exec prlimit --nofile={files} -- \"$@\"");
        let wrapper = ["sh", "-c", limited.as_str(), "sh", BIN];
        Server::spawn_with(&wrapper, fresh_dir("fd-limit"), args, true)
    }

    fn spawn_in(dir: PathBuf, args: &[&str], owns_dir: bool) -> Server {
        Server::spawn_with(&[BIN], dir, args, owns_dir)
    }

    fn spawn_with(command: &[&str], dir: PathBuf, args: &[&str], owns_dir: bool) -> Server {
        let mut child = spawn_service(command, &dir, args);
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let (port_tx, port_rx) = mpsc::channel();
        {
            let stderr = stderr.clone();
            let stderr_closed = stderr_closed.clone();
            // Keeps draining stderr for the process's whole life, so the
            // pipe never fills, and keeps a copy for failure messages.
            thread::spawn(move || {
                let mut reader = BufReader::new(stderr_pipe);
                let mut line = String::new();
                let mut port_tx = Some(port_tx);
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    stderr.lock().unwrap().push_str(&line);
                    if let Some(at) = line.find("listening on ") {
                        let address = line[at + "listening on ".len()..].trim().to_string();
                        if let Some(tx) = port_tx.take() {
                            let _ = tx.send(address);
                        }
                    }
                }
                stderr_closed.store(true, Ordering::SeqCst);
            });
        }
        let address = match port_rx.recv_timeout(IO_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the service did not report its address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr: SocketAddr = address
            .parse()
            .unwrap_or_else(|_| panic!("cannot parse the listening address {address:?}"));
        assert!(addr.ip().is_loopback(), "listens on {addr}");
        Server {
            child,
            addr,
            stderr,
            stderr_closed,
            dir,
            owns_dir,
            exited: None,
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        self.exited = Some(self.child.wait().expect("wait for the killed service"));
    }

    /// Its working directory, where its state is.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the process wrote to stderr, once it has exited and its
    /// stderr reached its end (waits up to 10 s for that).
    pub fn final_stderr(&mut self) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.stderr_closed.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        self.stderr()
    }

    /// A new keep-alive connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends a signal (`"TERM"`, `"INT"`, ...) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the process has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited.is_some()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.has_exited() {
                return self.exited;
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A new empty directory under the system's temporary directory.
pub fn fresh_dir(purpose: &str) -> PathBuf {
    let n = SERVERS_STARTED.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "orderbook-{purpose}-{}-{n}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("create a working directory");
    dir
}

/// A directory removed when the guard drops.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new(purpose: &str) -> TempDir {
        TempDir(fresh_dir(purpose))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the binary in `dir` on an ephemeral loopback port, stderr piped.
/// Starts the binary, `command` (the binary, or a wrapper and its arguments
/// that ends by running the binary with the arguments that follow), then
/// `--listen 127.0.0.1:0` and `args`.
fn spawn_service(command: &[&str], dir: &std::path::Path, args: &[&str]) -> Child {
    Command::new(command[0])
        .args(&command[1..])
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env_remove("ORDERBOOK_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the orderbook binary")
}

/// Runs the service in `dir` expecting it to refuse to start: returns its
/// exit status and stderr (fails the test if it is still running after 10 s).
pub fn refused_start(dir: &std::path::Path, args: &[&str]) -> (ExitStatus, String) {
    let mut child = spawn_service(&[BIN], dir, args);
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("piped stderr")
                .read_to_string(&mut stderr)
                .expect("read stderr");
            return (status, stderr);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service started instead of refusing");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines in order, as sent.
    pub headers: Vec<(String, String)>,
    /// Exactly `Content-Length` bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// True if the server said it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self.json()
    }

    /// Asserts an error answer: `status` and exactly `{"detail": detail}`.
    pub fn expect_detail(&self, status: u16, detail: &str) {
        let body = self.expect(status);
        assert_eq!(
            body,
            serde_json::json!({ "detail": detail }),
            "error body of a {status}"
        );
    }

    /// Asserts an error answer `{"detail": "..."}` with `status`, and
    /// returns the detail.
    pub fn detail(&self, status: u16) -> String {
        let body = self.expect(status);
        let object = body.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "error body has only `detail`: {body}");
        object["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("detail is a string: {body}"))
            .to_string()
    }
}

/// A process's resident memory (`VmRSS`) in KiB, 0 if unknown.
pub fn resident_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A process's address space in KiB (`VmSize`): what `ulimit -v` bounds,
/// reserved memory included.
pub fn address_space_kib(pid: u32) -> u64 {
    status_kib(pid, "VmSize:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The bytes listings hold and the listings refused, from `/metrics`,
/// once `refused` have been refused (or after 20 s, to fail on).
pub fn listings_settled(client: &mut Client, refused: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = client.metrics_text();
        let held = metric(&metrics, "orderbook_listing_bytes") as usize;
        let now_refused = metric(&metrics, "orderbook_listings_refused_total") as usize;
        if now_refused >= refused || Instant::now() > deadline {
            return (held, now_refused);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bytes listings hold, from `/metrics`, once at least `at_least`
/// (or after 30 s, to fail on).
pub fn listing_bytes_reach(client: &mut Client, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = metric(&client.metrics_text(), "orderbook_listing_bytes") as usize;
        if held >= at_least || Instant::now() > deadline {
            return held;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One metric line's value from Prometheus text (`name` with its labels,
/// as written).
pub fn metric(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    line[name.len() + 1..].parse().unwrap()
}

/// Builds the bytes of one request (HTTP/1.1, keep-alive).
pub fn request_bytes(method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(body) = body {
        out.push_str("Content-Type: application/json\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    if let Some(body) = body {
        out.push_str(body);
    }
    out.into_bytes()
}

/// Checks a `Date` header: an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`) with the right weekday, within 5 s of this machine's clock.
pub fn check_date(value: &str) -> Result<(), String> {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bad = || format!("Date {value:?} is not an IMF-fixdate");
    let parts: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = parts[..] else {
        return Err(bad());
    };
    let month = MONTHS.iter().position(|&m| m == month).ok_or_else(bad)? + 1;
    if day.len() != 2 || year.len() != 4 || time.len() != 8 {
        return Err(bad());
    }
    let micros = loadgen::feed::parse_micros(&format!("{year}-{month:02}-{day}T{time}.000000Z"))
        .ok_or_else(bad)?;
    let seconds = micros / 1_000_000;
    if weekday.strip_suffix(',') != Some(WEEKDAYS[(seconds / 86_400 % 7) as usize]) {
        return Err(format!("Date {value:?} has the wrong weekday"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (seconds - now).abs() > 5 {
        return Err(format!(
            "Date {value:?} is not now ({now} s since the epoch)"
        ));
    }
    Ok(())
}

/// A keep-alive HTTP/1.1 connection.
pub struct Client {
    stream: TcpStream,
    /// Bytes read but not yet consumed by a response.
    buf: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Client {
    /// Connects to `addr` (panics on failure).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes `bytes` in one `write_all`.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Closes our sending half (the server sees end of stream).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Sets how long a read may block.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one whole response. Checks the framing the contract promises:
    /// `Content-Type: application/json` and a `Content-Length` that is the
    /// body's exact length (the next response must start right after it).
    pub fn read_response(&mut self) -> io::Result<Response> {
        self.read_response_of_type("application/json")
    }

    /// [`read_response`](Self::read_response) for a body of another
    /// `Content-Type`.
    pub fn read_response_of_type(&mut self, expected_type: &str) -> io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before a whole response head ({} bytes: {:?})",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response head not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let rest = status_line
            .strip_prefix("HTTP/1.1 ")
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let status: u16 = rest
            .get(..3)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        if rest.len() > 3 && !rest[3..].starts_with(' ') {
            return Err(bad(format!("bad status line {status_line:?}")));
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let lengths: Vec<&String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v)
            .collect();
        if lengths.len() != 1 {
            return Err(bad(format!(
                "expected exactly one Content-Length in {head:?}"
            )));
        }
        let length: usize = lengths[0]
            .parse()
            .map_err(|_| bad(format!("bad Content-Length in {head:?}")))?;
        let content_types: Vec<&String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v)
            .collect();
        if content_types.len() != 1 || content_types[0] != expected_type {
            return Err(bad(format!(
                "expected Content-Type: {expected_type} in {head:?}"
            )));
        }
        let dates: Vec<&String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
            .map(|(_, v)| v)
            .collect();
        match dates[..] {
            [date] => check_date(date).map_err(|why| bad(format!("{why} in {head:?}")))?,
            _ => return Err(bad(format!("expected exactly one Date in {head:?}"))),
        }
        let body_start = head_end + 4;
        while self.buf.len() < body_start + length {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed inside a body of {length} bytes ({head:?})"),
                ));
            }
        }
        let body = self.buf[body_start..body_start + length].to_vec();
        self.buf.drain(..body_start + length);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// `GET /metrics`, asserting 200: the Prometheus text.
    pub fn metrics_text(&mut self) -> String {
        self.send_raw(&request_bytes("GET", "/metrics", None))
            .unwrap();
        let response = self
            .read_response_of_type("text/plain; version=0.0.4")
            .unwrap();
        assert_eq!(response.status, 200);
        response.text()
    }

    /// Sends one request and reads its answer.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        self.send_raw(&request_bytes(method, path, body))
            .unwrap_or_else(|e| panic!("write {method} {path}: {e}"));
        self.read_response()
            .unwrap_or_else(|e| panic!("answer to {method} {path}: {e}"))
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&mut self, path: &str, body: &str) -> Response {
        self.request("POST", path, Some(body))
    }

    /// `PUT path` with a JSON body.
    pub fn put(&mut self, path: &str, body: &str) -> Response {
        self.request("PUT", path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&mut self, path: &str) -> Response {
        self.request("DELETE", path, None)
    }

    /// Places an order and returns its answer's body (asserting 200).
    pub fn place(&mut self, side: i8, price: f64, quantity: u64) -> Value {
        let body = format!(r#"{{"quantity": {quantity}, "price": {price:?}, "side": {side}}}"#);
        self.post("/order/", &body).expect(200)
    }

    /// Places an order and returns its id.
    pub fn place_id(&mut self, side: i8, price: f64, quantity: u64) -> String {
        self.place(side, price, quantity)["id"]
            .as_str()
            .expect("id is a string")
            .to_string()
    }

    /// `GET /order/{id}`, asserting 200.
    pub fn order(&mut self, id: &str) -> Value {
        self.get(&format!("/order/{id}")).expect(200)
    }

    /// `GET /orders`, asserting 200: (buy_orders, sell_orders).
    pub fn orders(&mut self) -> (Vec<Value>, Vec<Value>) {
        let body = self.get("/orders").expect(200);
        let side = |key: &str| {
            body[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} is a list: {body}"))
                .clone()
        };
        (side("buy_orders"), side("sell_orders"))
    }

    /// `GET /trades` (with an optional query), asserting 200.
    pub fn trades(&mut self, query: &str) -> Vec<Value> {
        let body = self.get(&format!("/trades{query}")).expect(200);
        body.as_array()
            .unwrap_or_else(|| panic!("trades is a list: {body}"))
            .clone()
    }

    /// Asserts that the server closes the connection: after the answers
    /// already read, nothing more arrives and a read returns 0.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes after the last answer: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut byte = [0u8; 1024];
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "expected the connection closed, got {:?}",
                    String::from_utf8_lossy(&byte[..n])
                ),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("expected the connection closed (read = 0), got {e}"),
            }
        }
    }

    /// Asserts that nothing more arrives within `wait` (the connection stays
    /// open and quiet).
    pub fn expect_quiet(&mut self, wait: Duration) {
        assert!(self.buf.is_empty(), "unexpected buffered bytes");
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        let result = self.stream.read(&mut byte);
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }
}

/// The keys of a JSON object.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// A set of key names.
pub fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The keys of a `GET /orders` entry (SPEC §2).
pub const LISTED_KEYS: [&str; 9] = [
    "id",
    "quantity",
    "price",
    "side",
    "status",
    "filled_quantity",
    "average_traded_price",
    "traded_quantity",
    "order_alive",
];

/// True for a lowercase hyphenated UUID of version 4 (RFC 4122 variant).
pub fn is_uuid_v4(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The number at `value[key]` as `f64` (panics if it is not a number).
pub fn num(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number: {value}"))
}

/// The unsigned integer at `value[key]`.
pub fn uint(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is an unsigned integer: {value}"))
}

/// The string at `value[key]`.
pub fn string(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string: {value}"))
        .to_string()
}

/// Candles of `trades` (as `GET /trades` lists them) by the naive route:
/// group by interval, in order.
pub fn naive_candles(trades: &[Value], interval: i64) -> Vec<Value> {
    let mut out: Vec<(i64, Vec<&Value>)> = Vec::new();
    for trade in trades {
        let micros = loadgen::feed::parse_micros(trades_stamp(trade)).unwrap();
        let start = micros.div_euclid(interval * 1_000_000) * interval * 1_000_000;
        match out.last_mut() {
            Some((at, group)) if *at == start => group.push(trade),
            _ => out.push((start, vec![trade])),
        }
    }
    out.iter()
        .map(|(start, group)| {
            let prices: Vec<f64> = group.iter().map(|t| num(t, "price")).collect();
            let seconds = start / 1_000_000;
            serde_json::json!({
                "start_seconds": seconds,
                "open": prices[0],
                "high": prices.iter().cloned().fold(f64::MIN, f64::max),
                "low": prices.iter().cloned().fold(f64::MAX, f64::min),
                "close": prices[prices.len() - 1],
                "volume": group.iter().map(|t| uint(t, "quantity")).sum::<u64>(),
                "trades": group.len(),
            })
        })
        .collect()
}

pub fn trades_stamp(trade: &Value) -> &str {
    trade["execution_timestamp"].as_str().unwrap()
}

/// A candle as served, its start as whole seconds.
pub fn served_candle(candle: &Value) -> Value {
    let mut candle = candle.clone();
    let start = candle["start"].as_str().unwrap().to_string();
    let micros = loadgen::feed::parse_micros(&start).unwrap();
    assert_eq!(micros % 1_000_000, 0, "{start}");
    let object = candle.as_object_mut().unwrap();
    object.remove("start");
    object.insert(
        "start_seconds".into(),
        serde_json::json!(micros / 1_000_000),
    );
    candle
}
