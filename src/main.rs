//! The `orderbook` binary: reads the settings, rebuilds the state from the
//! data directory, starts the matching thread, the book replica and the
//! market-data publisher between their rings, and runs the HTTP front on this thread
//! until SIGINT or SIGTERM, then stops cleanly.

use std::fs::{self, File, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use orderbook::api::TickSize;
use orderbook::candles;
use orderbook::client_ids;
use orderbook::config::Config;
use orderbook::engine::BookConfig;
use orderbook::listing_memory::ListingMemory;
use orderbook::matching::{self, Output, Request};
use orderbook::metrics;
use orderbook::net::server::{CancelAllAfter, Front, FrontJournal, LoopWaker};
use orderbook::order_feed::{self, OrderFrame};
use orderbook::persist::cancel_after;
use orderbook::persist::segments::{SegmentWriter, Syncer};
use orderbook::persist::{export, recorded_settings, recovery, snapshot};
use orderbook::publisher::{self, FeedMessage};
use orderbook::replica::{self, Snapshots};
use orderbook::ring::{broadcast_with, spsc_with};
use signal_hook::consts::{SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let config = Config::parse_whole();
    if config.health_check {
        return match probe_health(config.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                orderbook::log_line!("orderbook: health check of {}: {message}", config.listen);
                ExitCode::FAILURE
            }
        };
    }
    if config.print_journal {
        return print_journal(&config);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            orderbook::log_line!("orderbook: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Address space a start needs besides the books and the rings: the
/// threads' stacks, the allocator's per-thread arenas, the histograms and
/// buffers.
const ROOM_FOR_THE_REST: u64 = 128 << 20;

/// Refuses sizes whose books and rings the machine cannot reserve: the
/// allocation would fail as they are built, and a failed allocation aborts
/// the process with no word of which setting asked for it.
fn memory_fits(config: &Config, books: &[BookConfig]) -> Result<(), String> {
    let books: u64 = books.iter().map(BookConfig::reserved_bytes).sum();
    // A bounded channel's slot: the message and a stamp.
    fn channel<T>(capacity: usize) -> u64 {
        capacity as u64 * (size_of::<T>() + size_of::<usize>()) as u64
    }
    let rings = orderbook::ring::reserved_bytes::<Request>(config.command_ring)
        + orderbook::ring::reserved_bytes::<Output>(config.event_ring)
        + channel::<FeedMessage>(config.feed_channel)
        + channel::<OrderFrame>(config.feed_channel);
    // Reserved and given back at once: address space, never touched. With
    // room for the rest: under `ulimit -v` a reservation that left none
    // passed here, then the start died on a thread's stack or the
    // allocator's arena (an abort, or EAGAIN) at 360 to 455 MiB.
    let fits = usize::try_from(books + rings + ROOM_FOR_THE_REST)
        .is_ok_and(|bytes| Vec::<u8>::new().try_reserve_exact(bytes).is_ok());
    if fits {
        return Ok(());
    }
    let gib = |bytes: u64| bytes as f64 / f64::from(1 << 30);
    Err(format!(
        "the books (--order-capacity {}, --level-capacity {}, --finished-orders {}) reserve \
         {:.1} GiB at start and the rings (--command-ring {}, --event-ring {}, --feed-channel \
         {}) {:.1} GiB, which with {} MiB for the rest is more than the machine (or this \
         process's limits, such as ulimit -v) lets it reserve; lower them",
        config.order_capacity,
        config.level_capacity,
        config.finished_orders,
        gib(books),
        config.command_ring,
        config.event_ring,
        config.feed_channel,
        gib(rings),
        ROOM_FOR_THE_REST >> 20
    ))
}

/// `--print-journal`: the journal to stdout, warnings to stderr.
fn print_journal(config: &Config) -> ExitCode {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // Prices are written in the tick the journal was written with,
    // whatever --tick-size says.
    let mut wire = config.wire();
    match recorded_settings::recorded::<TickSize>(&config.data_dir) {
        Ok(recorded) => wire.tick = recorded.unwrap_or(wire.tick),
        Err(message) => {
            orderbook::log_line!("orderbook: {message}");
            return ExitCode::FAILURE;
        }
    }
    match export::print_journal(&config.data_dir, config.from_seq, &wire, &mut out) {
        Ok(warnings) => {
            for warning in warnings {
                orderbook::log_line!("orderbook: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            orderbook::log_line!("orderbook: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--health-check`: one `GET /health` to the service listening on
/// `listen` (on loopback if that is a wildcard address), which must answer
/// 200 within 2 seconds.
fn probe_health(listen: SocketAddr) -> Result<(), String> {
    const LIMIT: Duration = Duration::from_secs(2);
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    // The 2 s are for the whole check: a timeout on each read alone let an
    // answer dribbled a byte at a time pass after 13 s.
    let deadline = Instant::now() + LIMIT;
    let late = || format!("no whole answer within {} s", LIMIT.as_secs());
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left).ok_or_else(late)
    };
    let timed_out = |error: std::io::Error| match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => late(),
        _ => error.to_string(),
    };
    let mut stream = TcpStream::connect_timeout(&addr, LIMIT).map_err(timed_out)?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: orderbook\r\nConnection: close\r\n\r\n")
        .map_err(timed_out)?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(timed_out(error)),
        }
    }
    let status_line = answer.split(|&b| b == b'\r').next().unwrap_or(&[]);
    if status_line.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(format!(
            "answered {:?}",
            String::from_utf8_lossy(status_line)
        ))
    }
}

/// Descriptors kept from client connections: the process's own (about 15:
/// the listener, the rings' wakers, the journal, the locks) and those a
/// journal file change or a state file write opens for a moment.
const DESCRIPTORS_KEPT: u64 = 32;

/// How many connections the open-file limit leaves room for, once its soft
/// limit is raised to the hard one (a soft 1,024, as systemd and many
/// shells set, would hold the default `--max-connections` of 10,000 to
/// about a thousand). Said at start when fewer than `max_connections`.
fn descriptor_room(max_connections: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(mut soft) = limit.current else {
        return usize::MAX;
    };
    if let Some(hard) = limit.maximum.filter(|&hard| hard > soft) {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            soft = hard;
        }
    }
    let room = usize::try_from(soft.saturating_sub(DESCRIPTORS_KEPT).max(1)).unwrap_or(usize::MAX);
    if room < max_connections {
        orderbook::log_line!(
            "orderbook: the open-file limit of {soft} leaves room for {room} connections (--max-connections {max_connections}), keeping {DESCRIPTORS_KEPT} for the journal and the state file; more wait to be accepted (raise it with ulimit -n)"
        );
    }
    room
}

/// The message for a thread that could not be started. The kernel says
/// only EAGAIN when memory (`ulimit -v`) or threads (`ulimit -u`) ran out.
fn not_started(what: &'static str) -> impl Fn(std::io::Error) -> String {
    const HINT: &str = "out of memory or of threads: a limit such as ulimit -v or ulimit -u?";
    move |error| match error.kind() {
        ErrorKind::WouldBlock => format!("cannot start {what}: {error} ({HINT})"),
        _ => format!("cannot start {what}: {error}"),
    }
}

/// Creates the data directory (and the state file's) and takes their
/// locks, held for the process's life: a second service on the same state
/// would corrupt it. The state file has a lock of its own beside it
/// (`<state file>.lock`), wherever it is: another service may name this
/// directory's state file with `--state-file` from a data directory of its
/// own, and would then write over this one's book.
fn lock_state(config: &Config) -> Result<Vec<File>, String> {
    let dir = &config.data_dir;
    fs::create_dir_all(dir).map_err(|e| match dir.is_dir() || !dir.exists() {
        true => format!("cannot create data directory {}: {e}", dir.display()),
        false => format!("data directory {}: not a directory", dir.display()),
    })?;
    let mut locks = vec![take_lock(&dir.join("orderbook.lock"), || {
        format!("data directory {}", dir.display())
    })?];
    let state_path = config.state_path();
    let state_dir = snapshot::directory_of(&state_path);
    fs::create_dir_all(state_dir).map_err(|e| {
        format!(
            "cannot create the state file's directory {}: {e}",
            state_dir.display()
        )
    })?;
    let mut lock_path = state_path.as_os_str().to_owned();
    lock_path.push(".lock");
    locks.push(take_lock(std::path::Path::new(&lock_path), || {
        format!("state file {}", state_path.display())
    })?);
    Ok(locks)
}

/// Opens `path` and locks it, or says that `what` is in use.
fn take_lock(path: &std::path::Path, what: impl Fn() -> String) -> Result<File, String> {
    let lock = File::create(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(format!(
            "{} is in use by another orderbook process ({} is locked)",
            what(),
            path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

fn run(config: Config) -> Result<(), String> {
    let _locks = lock_state(&config)?;
    let state_path = config.state_path();
    let cut_short = snapshot::remove_cut_short(&state_path)
        .map_err(|e| format!("cannot remove {}.tmp: {e}", state_path.display()))?;
    if cut_short {
        orderbook::log_line!(
            "orderbook: removed {}.tmp, a state file write cut short (the state file it was to replace holds)",
            state_path.display()
        );
    }
    // Both at once: a data directory from before either was recorded
    // lacks both, and the operator writes both back before one start.
    let refusals: Vec<String> = [
        recorded_settings::check(&config.data_dir, &config.tick_size),
        recorded_settings::check(&config.data_dir, &config.symbol),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if !refusals.is_empty() {
        return Err(refusals.join("\norderbook: "));
    }
    // Read first: a damaged file stops the start before anything is built.
    let switches = cancel_after::load_all(&config.data_dir, config.fsync)?;
    if let Some(origin) = &config.cors_origin {
        orderbook::net::http::allow_origin(origin);
    }
    // Not SIGHUP: `nohup` keeps a service past its terminal by ignoring it,
    // and a handler would undo that. Its default (a stop without the state
    // file) loses nothing: the journal holds every command.
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    // A write past a file-size limit (`ulimit -f`) would otherwise kill the
    // process by SIGXFSZ, silently; caught, the write fails with EFBIG and
    // the journal's writer stops the service with its message, as on a
    // full disk.
    signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false)))
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let started = std::time::Instant::now();
    // The matching thread keeps no finished-order history: the replica
    // keeps it and answers `GET /order/{id}`, so matching never pays for it.
    // Only the matching thread's book is made resident, and only its id
    // index kept sparse: the replica's (with its history) would double
    // that memory for no matching speed.
    let matching_book = BookConfig {
        finished_capacity: 0,
        resident: config.huge_pages,
        sparse_index: true,
        ..config.book()
    };
    memory_fits(&config, &[matching_book, config.book()])?;
    let recovered = recovery::recover(
        &config.data_dir,
        &config.state_path(),
        &config.wire(),
        matching_book,
        config.book(),
        config.trade_history,
    )?;
    for note in &recovered.notes {
        orderbook::log_line!("orderbook: {note}");
    }
    recorded_settings::record(&config.data_dir, &config.tick_size)?;
    recorded_settings::record(&config.data_dir, &config.symbol)?;
    if !recovered.notes.is_empty() {
        orderbook::log_line!(
            "orderbook: recovered in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let journal = SegmentWriter::create(
        &config.data_dir,
        recovered.seq + 1,
        config.journal_segment_bytes,
        config.fsync,
    )
    .map_err(|e| {
        format!(
            "cannot start a journal file in {}: {e}",
            config.data_dir.display()
        )
    })?;

    // Under --fsync a syncer thread makes the records durable and answers
    // wait for it; it needs its own handle on the file.
    let journal_file = match config.fsync {
        true => Some(
            journal
                .current_file()
                .map_err(|e| format!("cannot reopen the journal file: {e}"))?,
        ),
        false => None,
    };
    let (requests_in, requests_out) =
        spsc_with::<Request>(config.command_ring, config.wait_strategy);
    if requests_in.strategy() != config.wait_strategy {
        // Only `membarrier` falls back, where the kernel refuses the call.
        orderbook::log_line!(
            "orderbook: --wait-strategy {}: not offered by this kernel, the rings wait {}",
            config.wait_strategy,
            requests_in.strategy()
        );
    }
    // Readers of the output ring: the front (answers), the replica, the
    // publisher.
    let (outputs, mut readers) =
        broadcast_with::<Output>(config.event_ring, 3, config.wait_strategy);
    let publisher_reader = readers.pop().expect("three readers");
    let replica_reader = readers.pop().expect("three readers");
    let front_reader = readers.pop().expect("three readers");
    let (feed_requests_tx, feed_requests_rx) = crossbeam_channel::unbounded();
    let (feed_messages_tx, feed_messages_rx) = crossbeam_channel::bounded(config.feed_channel);
    let (answers_tx, answers_rx) = crossbeam_channel::unbounded();
    let (abandoned_tx, abandoned_rx) = crossbeam_channel::unbounded();
    let shutdown = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(metrics::Shared::default());
    metrics.count_journal(&config.data_dir);

    // A switch by prefix that passed while the service was down cancels
    // the orders so named in the recovered book, before any request.
    let named =
        |prefix| replica::named_resting(&recovered.matching, &recovered.names, None, &prefix);
    let cancel_after = CancelAllAfter::new(
        &config.data_dir,
        config.fsync,
        switches,
        recovered.seq,
        named,
    )?;
    let (front_names, replica_names) = client_ids::link(recovered.names);
    let mut front_config = config.front();
    front_config.descriptor_room = descriptor_room(config.max_connections);
    let drain_seconds = front_config.drain_timeout.as_secs();
    let listing_memory = ListingMemory::new(config.max_listing_bytes);
    let (mut front, waker) = Front::bind(
        config.listen,
        requests_in,
        front_reader,
        (answers_rx, abandoned_tx),
        listing_memory.clone(),
        FrontJournal::new(journal, recovered.seq + 1),
        metrics.clone(),
        (feed_requests_tx, feed_messages_rx),
        recovered
            .trades
            .newest()
            .map_or(0, |record| record.trade.ts),
        front_names,
        cancel_after,
        config.wire(),
        front_config,
        shutdown.clone(),
    )
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = front.local_addr().map_err(|e| e.to_string())?;

    // The candles channels go on with the intervals the kept trades end in.
    let kept = recovered.trades.records().map(|record| &record.trade);
    let dropped = recovered.trades_dropped;
    let by_second = candles::BySecond::over(config.trade_history, kept, dropped);
    let publisher = publisher::spawn(
        &recovered.matching,
        recovered.feed_seq,
        by_second,
        publisher_reader,
        feed_requests_rx,
        feed_messages_tx,
        Arc::new(LoopWaker(waker.clone())),
        config.wire(),
        config.feed(),
        metrics.clone(),
    )
    .map_err(not_started("the publisher thread"))?;
    front.set_publisher(publisher.thread().clone());
    let (order_feed, order_feed_front) = order_feed::link(config.feed_channel);
    front.follow_orders(order_feed_front);
    if let Some(file) = journal_file {
        let syncer = Syncer::start(
            file,
            recovered.seq,
            Arc::new(LoopWaker(waker.clone())),
            metrics.clone(),
        )
        .map_err(not_started("the journal syncer"))?;
        front.set_syncer(syncer);
    }
    let matching = matching::spawn(
        recovered.matching,
        requests_out,
        outputs,
        config.matching_core,
    )
    .map_err(not_started("the matching thread"))?;
    let replica = replica::spawn(
        recovered.replica,
        replica_names,
        order_feed,
        replica_reader,
        config.wire(),
        (answers_tx, abandoned_rx),
        listing_memory,
        Arc::new(LoopWaker(waker.clone())),
        Snapshots {
            dir: config.data_dir.clone(),
            state_path: config.state_path(),
            seq: recovered.seq,
            saved_seq: recovered.saved_seq,
            prune_journal: config.prune_journal,
            feed_seq: recovered.feed_seq,
            trades: recovered.trades,
            trade_history: config.trade_history,
            trades_dropped: recovered.trades_dropped,
            metrics,
        },
    )
    .map_err(not_started("the replica thread"))?;

    let signal_waker = waker.clone();
    let signal_flag = shutdown.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                orderbook::log_line!("orderbook: signal {signal} received, shutting down");
                signal_flag.store(true, Ordering::Release);
                let _ = signal_waker.wake();
            }
            // A second Ctrl-C while slow clients hold the drain: say what
            // is going on rather than seem to ignore it.
            for signal in signals {
                orderbook::log_line!(
                    "orderbook: signal {signal} received again; the clean stop goes on \
                     (slow clients have at most {} s), SIGKILL ends it at once \
                     and the next start replays the journal",
                    drain_seconds
                );
            }
        })
        .map_err(not_started("the signal thread"))?;

    orderbook::log_line!("orderbook: listening on {address}");
    front.run().map_err(|e| format!("event loop failed: {e}"))?;

    // The front is gone with its command producer: the matching thread
    // finishes what it has, closes the output ring, and the replica stops.
    let book = matching
        .join()
        .map_err(|_| "the matching thread panicked".to_string())?;
    let state_written = replica
        .join()
        .map_err(|_| "the replica thread panicked".to_string())?;
    publisher
        .join()
        .map_err(|_| "the publisher thread panicked".to_string())?;
    // A clean stop is one with its state file written (SPEC §5): a
    // supervisor must be able to tell one that could not be.
    if !state_written {
        return Err(format!(
            "stopped with {} resting orders, but the state file could not be written (said above); \
             the journal holds every command, and the next start replays it",
            book.resting_count()
        ));
    }
    orderbook::log_line!(
        "orderbook: stopped cleanly with {} resting orders",
        book.resting_count()
    );
    Ok(())
}
