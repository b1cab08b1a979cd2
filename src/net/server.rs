//! The I/O thread's event loop, shaped like mio's `tcp_server` example: one
//! `Poll`, one `Events` buffer, a `Token` per connection, one dispatch on
//! the token. Every read and write loop handles `WouldBlock` (stop),
//! `Interrupted` (retry) and a zero-length read (peer closed).
//!
//! A request that needs the book becomes a `Request` on the command ring;
//! its answer comes back as the closing item on the output ring, in the
//! order requests were sent, so one FIFO of tickets finds its connection.
//! Each connection keeps its own queue of answers so pipelined requests are
//! answered in order, whichever source completes them.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::auth::ApiToken;
use super::http::{self, Limits};
use super::rate_limit::{RateLimit, RateLimiter};
use crate::api::{self, ApiError, ClientOrderId, Wire};
use crate::client_ids::FrontClientIds;
use crate::engine::{CommandKind, Timestamp};
use crate::listing_memory::{self, Held, ListingMemory};
use crate::matching::{Barrier, BarrierPurpose, Output, Request};
use crate::metrics;
use crate::persist::segments::Syncer;
use crate::publisher::{Asked, ConnectionRef, FeedMessage};

mod answers;
mod cancel_after;
mod front_journal;
mod linger;
mod metrics_text;
mod routes;
mod stop;
mod subscribers;
mod timeouts;
use crate::order_feed::OrderFeedFront;
use crate::replica::ReplicaAnswer;
use crate::ring::{Producer, Subscriber, Wake};
pub use cancel_after::CancelAllAfter;
pub use front_journal::FrontJournal;
use subscribers::{FeedEnd, Subscription};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Unwritten answer bytes beyond which a connection's further requests wait
/// (a client that does not read is not buffered without bound).
const WRITE_BACKLOG: usize = 1 << 20;

/// Settings of the front.
#[derive(Clone, Debug)]
pub struct FrontConfig {
    /// Most open connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Most open connections the open-file limit leaves room for, with
    /// descriptors kept for the journal and the state file; more wait in
    /// the listen backlog, accepted as connections close.
    pub descriptor_room: usize,
    /// A connection with no request in progress and nothing to answer is
    /// closed after this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A half-received request is answered 408, and a client that stopped
    /// reading its answers is dropped, after this long with no byte moving
    /// (`None`: never).
    pub request_timeout: Option<Duration>,
    /// Request size limits.
    pub limits: Limits,
    /// Most answers one connection may have outstanding before the server
    /// stops reading its further pipelined requests.
    pub max_pipeline: usize,
    /// Trades kept in memory for `GET /trades`.
    pub trade_history: usize,
    /// `GET /trades` without `limit`: this many newest trades.
    pub trades_default_limit: usize,
    /// The largest `limit` accepted.
    pub trades_max_limit: usize,
    /// How long a shutdown waits for in-flight answers to be written.
    pub drain_timeout: Duration,
    /// How often to ask the replica for a state file (`None`: never; the
    /// replica still writes one at shutdown).
    pub snapshot_interval: Option<Duration>,
    /// The WebSocket feed's settings.
    pub feed: FeedSettings,
    /// `--api-token`: what placing, modifying and cancelling need.
    pub api_token: Option<ApiToken>,
    /// `--rate-limit`: orders a second from one client address.
    pub rate_limit: Option<RateLimit>,
}

/// The WebSocket feed's settings on the front.
#[derive(Clone, Copy, Debug)]
pub struct FeedSettings {
    /// Snapshot depth without `?depth=`.
    pub default_depth: usize,
    /// Unsent bytes a subscriber may have queued behind the frame being
    /// written before it is dropped.
    pub max_queue_bytes: usize,
    /// Silence after which a subscriber is pinged.
    pub ping_after: Duration,
    /// How long a ping may go unanswered.
    pub pong_timeout: Duration,
    /// How long a subscriber being closed may take to take its close frame.
    pub close_grace: Duration,
}

/// Counters of the feed's fan-out.
#[derive(Default)]
struct FeedStats {
    frames_queued: u64,
    /// `order` frames taken from the replica.
    order_messages: u64,
    slow_closed: u64,
    unresponsive_closed: u64,
}

/// Wakes the loop from other threads through its `mio::Waker`.
pub struct LoopWaker(pub Arc<Waker>);

impl Wake for LoopWaker {
    fn wake(&self) {
        // A failed wake (loop gone at shutdown) has nobody left to wake.
        let _ = self.0.wake();
    }
}

/// What a connection's oldest unanswered request is waiting for.
enum Answer {
    /// Waiting for the closing output of ticket `.0`.
    Waiting(u64),
    /// Ready to be written: the whole response.
    Ready(Vec<u8>),
    /// Ready to be written: a head, and a large body kept as it came.
    ReadyLarge(Vec<u8>, Held),
}

struct Connection {
    stream: TcpStream,
    /// Distinguishes this connection from an earlier one in the same slot.
    serial: u64,
    /// Bytes read; only `..read_len` hold data. Kept at full length so a
    /// read needs no zeroing; grows when one request outgrows it.
    read_buf: Vec<u8>,
    read_len: usize,
    /// Answers to write; `..written` already went out.
    write_buf: Vec<u8>,
    written: usize,
    /// Output queued after `write_buf`: large bodies (a `GET /orders`
    /// listing) move in whole instead of being copied, and while any are
    /// queued, later answers append here so order is kept.
    spill: VecDeque<Held>,
    spill_written: usize,
    answers: VecDeque<Answer>,
    /// The peer closed its side: nothing more to read, but requests
    /// already buffered are still served.
    peer_done: bool,
    /// The last read emptied the socket's receive queue: it said
    /// `WouldBlock`, or gave fewer bytes than asked for, which on a stream
    /// socket proves the queue was empty (epoll(7), question 9). Until the
    /// next readable event, another read would only cost a system call
    /// that says `WouldBlock`; new data always brings that event.
    socket_drained: bool,
    /// An event said the peer closed its side. The end of the stream is
    /// not data: a short read does not show it was read, so from here on
    /// reads go on until they see it (`Ok(0)`).
    read_closed: bool,
    /// Parse no further requests (one said `Connection: close`, or could
    /// not be parsed, or the peer is done and no whole request is left).
    /// The connection closes once every answer is written.
    last_request_seen: bool,
    /// Set once the connection upgraded to a WebSocket subscriber.
    ws: Option<Box<Subscription>>,
    /// When a byte last moved either way (or the connection was accepted),
    /// by the loop's clock: what the idle and unread-answer timeouts
    /// measure from.
    last_progress: Instant,
    /// When the first byte of the request still being received arrived:
    /// the whole request must arrive within `--request-timeout` of it, so
    /// a client dripping a byte at a time cannot hold the connection.
    request_started: Instant,
    /// Since when the connection has been closing with its answers sent:
    /// our side is shut, and what the client still sends is read and
    /// dropped (see `linger`).
    lingering_since: Option<Instant>,
    /// `100 Continue` went out for the request still being received.
    continue_sent: bool,
    /// Its reads the replica has yet to answer: at its close they are
    /// abandoned (`Front::abandon_reads`).
    replica_reads: u32,
    /// The ticket of the last listing sent for ([`routes::is_listing`]).
    listing: Option<u64>,
    /// A request waits for a step the front takes once the replica
    /// answers (`DELETE /orders` by name prefix stages its cancels then):
    /// the requests after it are parsed only after that step, so they are
    /// staged after its commands and see them done.
    held: bool,
    /// The client's address, whose orders `--rate-limit` counts.
    peer: IpAddr,
}

/// How often the loop looks for quiet connections (subscribers to ping,
/// HTTP connections to time out): the timeouts' resolution.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Bodies at least this large are queued as they are, not copied (and
/// count against `--max-listing-bytes`).
const LARGE_BODY: usize = listing_memory::COUNTED;

impl Connection {
    /// Where the next answer bytes go: the write buffer, or the back of the
    /// spill queue while it holds anything.
    fn out(&mut self) -> &mut Vec<u8> {
        if self.spill.is_empty() {
            return &mut self.write_buf;
        }
        let back_is_full = self
            .spill
            .back_mut()
            .and_then(Held::appendable)
            .is_none_or(|back| back.len() >= LARGE_BODY);
        if back_is_full {
            self.spill.push_back(Held::default());
        }
        self.spill
            .back_mut()
            .and_then(Held::appendable)
            .expect("the back of the spill queue takes more")
    }

    /// Queues a whole response whose body is moved, not copied, if large.
    fn respond_owned(&mut self, status: u16, body: Held, keep_alive: bool) {
        if body.len() < LARGE_BODY {
            http::write_response(self.out(), status, &body, keep_alive);
        } else {
            http::write_head(self.out(), status, body.len(), keep_alive);
            self.spill.push_back(body);
        }
    }

    /// Whether a listing must wait. Listings pipelined behind one another
    /// were each built whole before the first was written: 1,000 `GET
    /// /orders` of 11 MB grew the server by 430 MB a second until it ran
    /// out of memory. So one is built at a time, and the next waits until
    /// it has been built and what waits to be written (queued answers
    /// included) is under the write backlog's bound.
    fn holds_a_listing(&self) -> bool {
        let mut queued = 0;
        for answer in &self.answers {
            match answer {
                Answer::Waiting(ticket) if Some(*ticket) == self.listing => return true,
                Answer::Waiting(_) => {}
                Answer::Ready(response) => queued += response.len(),
                Answer::ReadyLarge(head, body) => queued += head.len() + body.len(),
            }
        }
        queued + self.unwritten() >= WRITE_BACKLOG
    }

    /// Bytes answered but not yet written to the socket.
    fn unwritten(&self) -> usize {
        self.write_buf.len() - self.written
            + self.spill.iter().map(|held| held.len()).sum::<usize>()
            - self.spill_written
            + self.ws.as_ref().map_or(0, |sub| sub.unwritten())
    }
}

/// The I/O thread's counters and its latency histograms.
struct FrontStats {
    command_latency: hdrhistogram::Histogram<u64>,
    /// The same, by command (in `CommandName::ALL`'s order).
    latency_by_command: [hdrhistogram::Histogram<u64>; CommandName::ALL.len()],
    /// Reads, from sending their barrier to their answer being ready (in
    /// `ReadName::ALL`'s order).
    latency_by_read: [hdrhistogram::Histogram<u64>; ReadName::ALL.len()],
    /// Responses by status / 100.
    responses: [u64; 6],
    overloaded: u64,
    /// Listings answered 503 by `--max-listing-bytes`.
    listings_refused: u64,
    /// Orders refused by `--rate-limit`.
    rate_limited: u64,
    accepted: u64,
    /// Connections refused with a 503 by `--max-connections`.
    refused: u64,
    timed_out: timeouts::TimedOut,
    /// Trades and placed orders, from the matching thread's events.
    activity: metrics::Activity,
}

impl Default for FrontStats {
    fn default() -> Self {
        FrontStats {
            command_latency: metrics::latency_histogram(),
            latency_by_command: std::array::from_fn(|_| metrics::latency_histogram()),
            latency_by_read: std::array::from_fn(|_| metrics::latency_histogram()),
            responses: [0; 6],
            overloaded: 0,
            listings_refused: 0,
            rate_limited: 0,
            accepted: 0,
            refused: 0,
            timed_out: timeouts::TimedOut::default(),
            activity: metrics::Activity::default(),
        }
    }
}

impl FrontStats {
    fn count(&mut self, status: u16) {
        if let Some(class) = self.responses.get_mut(status as usize / 100) {
            *class += 1;
        }
    }
}

/// What a ticket answers, and for which connection.
struct InFlight {
    ticket: u64,
    slot: usize,
    serial: u64,
    keep_alive: bool,
    /// The request was a `HEAD`: the answer goes without its body.
    head_only: bool,
    kind: Awaiting,
    /// The command's stamp (ns), or 0 for a read.
    ts: u64,
    /// The command's journal record, or 0 for a read.
    seq: u64,
    /// A read, and when it was sent (µs since the epoch).
    read: Option<(ReadName, u64)>,
    /// A place's `client_order_id`, for its answer (and to free it if the
    /// engine rejects the place).
    name: Option<ClientOrderId>,
}

impl InFlight {
    /// One of the front's own requests (`ticket`), which answers no
    /// connection.
    fn own(ticket: u64, kind: Awaiting) -> Self {
        InFlight {
            ticket,
            slot: usize::MAX,
            serial: 0,
            keep_alive: false,
            head_only: false,
            kind,
            ts: 0,
            seq: 0,
            read: None,
            name: None,
        }
    }
}

/// Which command a request sent, for the answer's wording and the latency
/// by command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommandName {
    Place,
    Modify,
    Cancel,
    CancelAll,
}

impl Awaiting {
    /// The command this waits for the outcome of, if any.
    fn command(self) -> Option<CommandName> {
        match self {
            Awaiting::Command(name) | Awaiting::BatchItem { of: name, .. } => Some(name),
            Awaiting::NamedCancel { .. } => Some(CommandName::Cancel),
            _ => None,
        }
    }
}

impl CommandName {
    const ALL: [CommandName; 4] = [
        CommandName::Place,
        CommandName::Modify,
        CommandName::Cancel,
        CommandName::CancelAll,
    ];

    fn of(kind: &CommandKind) -> Self {
        match kind {
            CommandKind::Place { .. } => CommandName::Place,
            CommandKind::Modify { .. } => CommandName::Modify,
            CommandKind::Cancel { .. } => CommandName::Cancel,
            CommandKind::CancelAll { .. } => CommandName::CancelAll,
        }
    }

    fn label(self) -> &'static str {
        match self {
            CommandName::Place => "place",
            CommandName::Modify => "modify",
            CommandName::Cancel => "cancel",
            CommandName::CancelAll => "cancel_all",
        }
    }
}

/// The reads timed in `GET /metrics`, each a barrier through the matching
/// thread answered by the front (`/trades`) or the replica (the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadName {
    Orders,
    Order,
    Book,
    Trades,
    Candles,
    Ticker,
}

impl ReadName {
    const ALL: [ReadName; 6] = [
        ReadName::Orders,
        ReadName::Order,
        ReadName::Book,
        ReadName::Trades,
        ReadName::Candles,
        ReadName::Ticker,
    ];

    /// The read a barrier is for; `None` for the front's own snapshots.
    fn of(purpose: &BarrierPurpose) -> Option<Self> {
        Some(match purpose {
            BarrierPurpose::Orders { .. } => ReadName::Orders,
            BarrierPurpose::Order(_) => ReadName::Order,
            BarrierPurpose::Book { .. } => ReadName::Book,
            BarrierPurpose::Trades { .. } => ReadName::Trades,
            BarrierPurpose::Candles { .. } => ReadName::Candles,
            BarrierPurpose::Ticker { .. } => ReadName::Ticker,
            BarrierPurpose::Snapshot
            | BarrierPurpose::OrderSnapshot { .. }
            | BarrierPurpose::Named { .. }
            | BarrierPurpose::FeedEnd => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            ReadName::Orders => "orders",
            ReadName::Order => "order",
            ReadName::Book => "book",
            ReadName::Trades => "trades",
            ReadName::Candles => "candles",
            ReadName::Ticker => "ticker",
        }
    }
}

#[derive(Clone, Copy)]
enum Awaiting {
    /// `POST /order/`, `PUT` or `DELETE /order/{id}`: the command's outcome.
    Command(CommandName),
    /// One command of a `POST /orders/batch` (a place),
    /// `POST /orders/modify` (a modify) or `POST /orders/cancel` (a
    /// cancel). The commands of a batch are staged back to back, so their
    /// outcomes come back back to back: the first starts the answer, the
    /// last sends it.
    BatchItem {
        first: bool,
        last: bool,
        of: CommandName,
    },
    /// A read the replica answers (`GET /orders`, `/order/{id}`,
    /// `/book`, `/trades`, `/candles`, `/ticker`).
    Replica,
    /// The front's own snapshot barrier: nobody to answer.
    Snapshot,
    /// The cancel-all of `POST /orders/cancel_all_after`'s switch, gone
    /// off: nobody to answer.
    CancelAfter,
    /// An `orders` snapshot for a WebSocket subscriber: the replica sends
    /// it down the order frames' path; nothing to answer here.
    OrderSnapshot,
    /// The feed's end at a clean stop (`BarrierPurpose::FeedEnd`): the
    /// publisher and the replica answer it on the feed's paths.
    FeedEnd,
    /// `DELETE /orders?client_order_id_prefix=`'s first step: the replica
    /// lists the resting orders so named, which the front then cancels.
    Named,
    /// One cancel of those, staged back to back; the last answers with
    /// how many were cancelled.
    NamedCancel { last: bool },
    /// A switch by name prefix went off: the replica lists the resting
    /// orders so named, which the front then cancels; nobody to answer.
    SwitchNamed { prefix: ClientOrderId },
    /// One cancel of those; the last says the switch is done.
    SwitchCancel { last: bool, prefix: ClientOrderId },
}

/// The event loop's state.
pub struct Front {
    poll: Poll,
    listener: Option<TcpListener>,
    connections: Vec<Option<Connection>>,
    free_slots: Vec<usize>,
    open: usize,
    next_serial: u64,
    next_ticket: u64,
    requests: Producer<Request>,
    outputs: Subscriber<Output>,
    answers: Receiver<ReplicaAnswer>,
    /// Tells the replica the tickets of reads nobody waits for any more.
    abandoned: Sender<u64>,
    /// Listings built and not yet written, and their bound.
    listing_memory: Arc<ListingMemory>,
    /// Tickets sent to the matching thread, oldest first.
    in_flight: VecDeque<InFlight>,
    /// `GET /orders` tickets whose barrier passed, waiting for the replica.
    awaiting_replica: Vec<InFlight>,
    /// Replica answers that arrived before the front read their barrier.
    early_answers: Vec<ReplicaAnswer>,
    /// Outputs read in one drain, handled in order after it.
    /// Outputs read off the ring and not yet handled (under --fsync, those
    /// waiting for their record to reach the disk).
    drained: VecDeque<Output>,
    /// The journal: every command staged on the ring is appended here and
    /// written before the ring is published, so no command reaches the
    /// engine (and no answer can leave) before its record is in the kernel.
    journal: FrontJournal,
    /// When to send the next snapshot barrier.
    snapshot_due: Option<Instant>,
    /// This thread's own figures for `GET /metrics`.
    stats: FrontStats,
    /// Requests to the publisher thread (snapshots, depths in use).
    feed_requests: Sender<Asked>,
    /// Frames from the publisher thread.
    feed_messages: Receiver<FeedMessage>,
    /// The publisher thread, to unpark after a request.
    publisher: Option<std::thread::Thread>,
    /// Slots of the WebSocket subscribers.
    subscribers: Vec<usize>,
    /// A copy of `subscribers` to walk while some may close.
    subscriber_scratch: Vec<usize>,
    feed_stats: FeedStats,
    /// When to next look for quiet connections: ping quiet subscribers,
    /// drop dead ones, time out stalled and idle HTTP connections.
    next_check: Instant,
    /// The loop's clock, read once per turn after `poll` returns.
    now: Instant,
    /// The other threads' figures.
    shared_metrics: Arc<metrics::Shared>,
    rng: StdRng,
    wire: Wire,
    config: FrontConfig,
    shutdown: Arc<AtomicBool>,
    /// Responses staged this round, to publish with one store.
    staged: bool,
    /// The request being routed is a `HEAD`: its answers go head only.
    head_only: bool,
    /// A connection arrived while switches that passed while the service
    /// was down still had cancels to stage: it is accepted once they are.
    accept_waiting: bool,
    /// An accept failed (out of file descriptors, say): the connections
    /// wait in the backlog, and the listener, edge-triggered, will not say
    /// so again, so accepting is tried again then (`ACCEPT_RETRY`).
    accept_retry: Option<Instant>,
    scratch: String,
    /// Command stamps, never running backwards.
    stamps: api::Stamps,
    /// Order buckets by client address, under `--rate-limit`.
    limiter: Option<RateLimiter>,
    /// The answer of the batch (`POST /orders/batch` or
    /// `POST /orders/cancel`) whose outcomes are being read.
    batch_body: String,
    /// Orders cancelled so far by the batch of cancels by name prefix
    /// (`DELETE /orders`'s or a switch's) whose outcomes are coming back:
    /// a batch's are staged back to back, so batches never interleave.
    named_cancelled: u64,
    /// Which order each `client_order_id` names (`client_ids.rs`).
    client_ids: FrontClientIds,
    /// `POST /orders/cancel_all_after`'s deadline (`cancel_after.rs`).
    cancel_after: CancelAllAfter,
    /// The feed's `orders` channel, from the replica.
    order_feed: Option<OrderFeedFront>,
    /// `orders_snapshot` barriers sent, by ticket, with the connection
    /// and the channel (a prefix, or `None` for every order) each is for.
    order_snapshots: Vec<(u64, ConnectionRef, Option<ClientOrderId>)>,
    /// How far a clean stop has ended the feed (`subscribers.rs`).
    feed_end: FeedEnd,
    /// A clean stop is under way: HTTP connections are not read any more
    /// (what their sockets held at the signal was read then), and each is
    /// closed once its last answer is written.
    stopping: bool,
    /// When a stop next reads the closing connections' send queues.
    delivery_check: stop::DeliveryCheck,
}

impl Front {
    /// Binds `listen` and builds the loop. The returned waker wakes it from
    /// other threads (answers ready, shutdown requested).
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        listen: SocketAddr,
        requests: Producer<Request>,
        mut outputs: Subscriber<Output>,
        replica: (Receiver<ReplicaAnswer>, Sender<u64>),
        listing_memory: Arc<ListingMemory>,
        journal: FrontJournal,
        shared_metrics: Arc<metrics::Shared>,
        feed: (Sender<Asked>, Receiver<FeedMessage>),
        newest_trade_ts: Timestamp,
        client_ids: FrontClientIds,
        cancel_after: CancelAllAfter,
        wire: Wire,
        config: FrontConfig,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<(Front, Arc<Waker>)> {
        let poll = Poll::new()?;
        let mut listener = listen_on(listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        outputs.set_waker(Arc::new(LoopWaker(waker.clone())));
        let front = Front {
            poll,
            listener: Some(listener),
            connections: Vec::new(),
            free_slots: Vec::new(),
            open: 0,
            next_serial: 0,
            next_ticket: 0,
            requests,
            outputs,
            answers: replica.0,
            abandoned: replica.1,
            listing_memory,
            in_flight: VecDeque::new(),
            awaiting_replica: Vec::new(),
            early_answers: Vec::new(),
            drained: VecDeque::with_capacity(1024),
            stamps: api::Stamps::after(newest_trade_ts),
            limiter: config.rate_limit.map(RateLimiter::new),
            journal,
            stats: FrontStats::default(),
            shared_metrics,
            feed_requests: feed.0,
            feed_messages: feed.1,
            publisher: None,
            subscribers: Vec::new(),
            subscriber_scratch: Vec::new(),
            feed_stats: FeedStats::default(),
            next_check: Instant::now() + CHECK_EVERY,
            now: Instant::now(),
            snapshot_due: config.snapshot_interval.map(|every| Instant::now() + every),
            rng: StdRng::from_os_rng(),
            wire,
            config,
            shutdown,
            staged: false,
            head_only: false,
            accept_waiting: false,
            accept_retry: None,
            scratch: String::new(),
            batch_body: String::new(),
            named_cancelled: 0,
            client_ids,
            cancel_after,
            order_feed: None,
            order_snapshots: Vec::new(),
            feed_end: FeedEnd::Running,
            stopping: false,
            delivery_check: stop::DeliveryCheck::new(Instant::now()),
        };
        Ok((front, waker))
    }

    /// Under `--fsync`: answers wait for this thread's `fdatasync`s.
    pub fn set_syncer(&mut self, syncer: Syncer) {
        self.journal.set_syncer(syncer);
    }

    /// The publisher thread, unparked when the front asks it for something.
    pub fn set_publisher(&mut self, thread: std::thread::Thread) {
        self.publisher = Some(thread);
    }

    /// The replica's `order` frames, for the feed's `orders` channel.
    pub fn follow_orders(&mut self, order_feed: OrderFeedFront) {
        self.order_feed = Some(order_feed);
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::other("listener closed")),
        }
    }

    /// Runs until shutdown is requested and every in-flight answer has
    /// been written (or the drain timeout passed).
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut drain_deadline: Option<Instant> = None;
        loop {
            if self.shutdown.load(Ordering::Acquire) && drain_deadline.is_none() {
                drain_deadline = Some(Instant::now() + self.config.drain_timeout);
                self.begin_stop();
                continue;
            }
            if let Some(deadline) = drain_deadline {
                if self.stop_done() || Instant::now() >= deadline {
                    self.finish_stop();
                    return Ok(());
                }
            }

            self.request_snapshot_if_due();
            // A switch going off once the feed's end is staged would apply
            // cancels no subscriber is told of: it goes off at the next
            // start instead, as one that passed while the service was down.
            if matches!(self.feed_end, FeedEnd::Running | FeedEnd::Due) {
                self.cancel_all_if_due();
            }
            if self.accept_waiting && !self.cancel_after.holding_the_start() {
                self.accept_waiting = false;
                self.accept_all();
            }
            if self.accept_retry.is_some_and(|at| Instant::now() >= at) {
                self.accept_all();
            }
            // Sleep only if no output is waiting; the matching thread
            // and the replica wake us through the waker.
            let timeout = if drain_deadline.is_some() {
                Some(Duration::from_millis(10))
            } else if self.outputs.prepare_sleep() && self.answers.is_empty() {
                self.sleep_limit()
            } else {
                Some(Duration::ZERO)
            };
            let polled = self.poll.poll(&mut events, timeout);
            self.now = Instant::now();
            self.outputs.finish_sleep();
            match polled {
                Ok(()) => {}
                // A signal, or a SIGSTOP and SIGCONT (which fail epoll_wait
                // with EINTR even unhandled). Poll again before anything
                // times out: after a stop longer than `--idle-timeout` the
                // requests that came meanwhile are in the sockets, and the
                // idle check would have reset their connections unread.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }

            for event in events.iter() {
                match event.token() {
                    // No request is served before the switches that passed
                    // while the service was down have staged their cancels.
                    LISTENER if self.cancel_after.holding_the_start() => {
                        self.accept_waiting = true;
                    }
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(token) => {
                        let slot = token - FIRST_CONNECTION;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.connections[slot].as_mut() {
                                conn.socket_drained &= self.stopping && conn.ws.is_none();
                                conn.read_closed |= event.is_read_closed() || event.is_error();
                            }
                        }
                        self.pump(slot);
                    }
                }
            }
            self.take_outputs();
            self.take_replica_answers();
            self.take_feed();
            if self.now >= self.next_check {
                self.check_subscribers();
                self.check_connections();
                // Names freed while no client named anything: their
                // messages would wait, and the map hold them, until one did.
                self.client_ids.take_freed();
                if let Some(limiter) = &mut self.limiter {
                    limiter.forget_full(self.now);
                }
                self.next_check = self.now + CHECK_EVERY;
            }
            self.publish_staged();
        }
    }

    /// How long the loop may sleep with nothing to do: until the next
    /// snapshot barrier is due or the cancel-all switch goes off, or while
    /// any connection is open, until the next look for quiet ones
    /// (`None`: until woken).
    fn sleep_limit(&self) -> Option<Duration> {
        let check = (self.open > 0).then_some(self.next_check);
        let due = [
            self.snapshot_due,
            check,
            self.cancel_after.due(),
            self.accept_retry,
        ];
        let until = due.into_iter().flatten().min()?;
        Some(until.saturating_duration_since(Instant::now()))
    }

    /// Sends a snapshot barrier when one is due (later, if the command ring
    /// is full: a snapshot can wait, an order should not).
    fn request_snapshot_if_due(&mut self) {
        let (Some(due), Some(every)) = (self.snapshot_due, self.config.snapshot_interval) else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        let barrier = Barrier {
            ticket: self.next_ticket,
            purpose: BarrierPurpose::Snapshot,
        };
        if !self.stage_own(Request::Barrier(barrier), Awaiting::Snapshot) {
            return;
        }
        self.snapshot_due = Some(now + every);
        self.publish_staged();
    }

    /// Stages a request of the front's own, whose closing output answers
    /// no connection (a barrier made with `next_ticket`, or a command,
    /// journaled here); false if the command ring is full.
    fn stage_own(&mut self, request: Request, kind: Awaiting) -> bool {
        if self.requests.stage(request).is_err() {
            return false;
        }
        let (ts, seq) = match request {
            Request::Apply(command) => {
                self.journal.append(command, None, false);
                (command.ts, self.journal.last_seq())
            }
            Request::Barrier(_) => (0, 0),
        };
        self.in_flight.push_back(InFlight {
            ts,
            seq,
            ..InFlight::own(self.next_ticket, kind)
        });
        self.next_ticket += 1;
        self.staged = true;
        true
    }

    fn publish_staged(&mut self) {
        if self.staged {
            self.journal.write(&self.shared_metrics);
            // The replica must have the places' names before it can read
            // the places.
            self.client_ids.send_staged();
            self.requests.publish();
            self.staged = false;
        }
    }

    fn all_written(&self) -> bool {
        self.connections
            .iter()
            .flatten()
            .all(|c| c.answers.is_empty() && c.unwritten() == 0)
    }

    fn accept_all(&mut self) {
        let failing = self.accept_retry.take().is_some();
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            if self.open >= self.config.descriptor_room {
                // One more would take a descriptor the journal's next file
                // or a state file write needs, and failing those stops the
                // service: 100 idle connections under a limit of 64 did.
                if !failing {
                    crate::log_line!(
                        "orderbook: {} connections open, all the open-file limit leaves room for; more wait to be accepted, tried again every {} ms",
                        self.open,
                        ACCEPT_RETRY.as_millis()
                    );
                }
                self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                return;
            }
            let (mut stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Said once while it lasts, not at every retry.
                    if !failing {
                        crate::log_line!(
                            "orderbook: accept failed: {error}; trying again every {} ms",
                            ACCEPT_RETRY.as_millis()
                        );
                    }
                    self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            };
            if self.open >= self.config.max_connections {
                // Refuse cleanly: a best-effort 503, then close.
                let mut out = Vec::new();
                let error = ApiError::unavailable("Too many connections");
                let body = http::Body::Bytes(&error.body());
                http::write_typed_response(
                    &mut out,
                    503,
                    http::JSON,
                    body,
                    false,
                    &error.header_line(),
                );
                let _ = stream.write(&out);
                self.stats.count(503);
                self.stats.refused += 1;
                continue;
            }
            let _ = stream.set_nodelay(true);
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.connections.push(None);
                self.connections.len() - 1
            });
            let token = Token(slot + FIRST_CONNECTION);
            if let Err(error) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                crate::log_line!("orderbook: cannot register a connection: {error}");
                self.free_slots.push(slot);
                continue;
            }
            self.next_serial += 1;
            self.connections[slot] = Some(Connection {
                stream,
                serial: self.next_serial,
                read_buf: vec![0; READ_CHUNK],
                read_len: 0,
                write_buf: Vec::with_capacity(READ_CHUNK),
                written: 0,
                spill: VecDeque::new(),
                spill_written: 0,
                answers: VecDeque::new(),
                peer_done: false,
                socket_drained: false,
                read_closed: false,
                last_request_seen: false,
                ws: None,
                last_progress: self.now,
                request_started: self.now,
                lingering_since: None,
                continue_sent: false,
                replica_reads: 0,
                listing: None,
                held: false,
                peer: peer.ip(),
            });
            self.open += 1;
            self.stats.accepted += 1;
        }
    }

    /// Moves a connection forward as far as it can go: writes what is
    /// buffered, serves the complete requests it holds, reads more from the
    /// socket while there is room, and closes it once it is finished.
    /// Called on every socket event and whenever one of its answers is done.
    fn pump(&mut self, slot: usize) {
        if self.connections[slot]
            .as_ref()
            .is_some_and(|c| c.lingering_since.is_some())
        {
            self.discard_input(slot);
            return;
        }
        loop {
            self.flush(slot);
            let is_subscriber = self.connections[slot]
                .as_ref()
                .is_some_and(|c| c.ws.is_some());
            let held_back = if is_subscriber {
                self.serve_frames(slot)
            } else {
                self.serve_buffered(slot);
                false
            };
            self.flush(slot);
            // Frames a subscriber's answers held back are read as soon as
            // the flush made room, not at some later wake-up.
            if held_back && self.subscriber_has_room(slot) {
                continue;
            }
            if !self.read_some(slot) {
                break;
            }
        }
        self.close_if_finished(slot);
    }

    /// Reads from the socket into the free part of the read buffer; true if
    /// it read anything (more requests may now be complete) or found the
    /// peer gone (what is buffered must then be served or given up: part
    /// of a request left by a peer that closed in an event of its own was
    /// kept for good, holding its connection).
    fn read_some(&mut self, slot: usize) -> bool {
        let cap = self.read_cap();
        let now = self.now;
        let Some(conn) = self.connections[slot].as_mut() else {
            return false;
        };
        if conn.peer_done || conn.last_request_seen || conn.socket_drained {
            return false;
        }
        let mut read_any = false;
        loop {
            if conn.read_len == conn.read_buf.len() {
                // Full. Grow only while one request may still need the room
                // (the parser bounds a request's head and body); otherwise
                // leave the rest in the socket until answers make room.
                if conn.read_buf.len() >= cap {
                    return read_any;
                }
                let grown = (conn.read_buf.len() * 2).min(cap);
                conn.read_buf.resize(grown, 0);
            }
            let room = conn.read_buf.len() - conn.read_len;
            match conn.stream.read(&mut conn.read_buf[conn.read_len..]) {
                Ok(0) => {
                    conn.peer_done = true;
                    return true;
                }
                Ok(n) => {
                    if conn.read_len == 0 {
                        conn.request_started = now;
                    }
                    conn.read_len += n;
                    conn.last_progress = now;
                    read_any = true;
                    if n < room && !conn.read_closed {
                        conn.socket_drained = true;
                        return true;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    conn.socket_drained = true;
                    return read_any;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.peer_done = true;
                    return true;
                }
            }
        }
    }

    /// The read buffer's largest size: one request at the limits, or one
    /// subscriber's frame at its (a 64 KiB message and the largest masked
    /// frame header, 14 bytes), plus a chunk. Sized by the HTTP limits
    /// alone, a frame larger than them under small `--max-body-bytes`
    /// never fitted whole, and its connection read nothing more.
    fn read_cap(&self) -> usize {
        let request = self.config.limits.max_head_bytes + self.config.limits.max_body_bytes;
        request.max(crate::net::ws::MAX_CLIENT_MESSAGE + 14) + READ_CHUNK
    }

    /// Serves every complete request in the connection's read buffer while
    /// it has fewer than `max_pipeline` answers outstanding and less than
    /// `WRITE_BACKLOG` bytes unwritten; a listing only once the one before
    /// it is built ([`Connection::holds_a_listing`]).
    fn serve_buffered(&mut self, slot: usize) {
        let mut consumed = 0;
        loop {
            let Some(conn) = self.connections[slot].as_mut() else {
                return;
            };
            if conn.last_request_seen
                || conn.held
                || conn.ws.is_some()
                || conn.answers.len() >= self.config.max_pipeline
                || conn.unwritten() >= WRITE_BACKLOG
            {
                // At a stop nothing more is read: held back with nothing
                // buffered, it has had its last request, and the feed's end
                // need not wait for its slow client (subscribers went
                // without their close frame behind one unread listing).
                if self.stopping && conn.ws.is_none() && consumed == conn.read_len {
                    conn.last_request_seen = true;
                }
                break;
            }
            let buf = std::mem::take(&mut conn.read_buf);
            let read_len = conn.read_len;
            let parsed = http::parse_request(&buf[consumed..read_len], &self.config.limits);
            match parsed {
                Ok(http::Parsed::Partial { expects_continue }) => {
                    // Stopping, nothing more is read: what is left can
                    // never become a whole request either.
                    let peer_done = conn.peer_done || self.stopping;
                    let continue_sent = conn.continue_sent;
                    if let Some(refusal) = expects_continue
                        .filter(|_| !peer_done && !continue_sent)
                        .and_then(|head| self.refused_before_its_body(&head).err())
                    {
                        // Asking for a body only to refuse it would make
                        // the client send it for nothing.
                        self.put_back(slot, buf);
                        self.refuse_and_close(slot, &refusal);
                        return;
                    }
                    let asks_for_body = expects_continue.is_some() && !continue_sent;
                    // Empty lines before a request line are ignored (RFC
                    // 9112 §2.2; some clients end a body with an extra
                    // CRLF): kept, they started a request that never came,
                    // and the request timeout answered 408 to nothing.
                    if buf[consumed..read_len]
                        .iter()
                        .all(|&b| b == b'\r' || b == b'\n')
                    {
                        consumed = read_len;
                    }
                    let conn = self.connections[slot]
                        .as_mut()
                        .expect("the connection read");
                    conn.read_buf = buf;
                    if peer_done {
                        // What is left can never become a whole request.
                        conn.last_request_seen = true;
                    } else if asks_for_body {
                        // The client waits for this before it sends the
                        // body (curl for a second, others for good).
                        conn.continue_sent = true;
                        if conn.answers.is_empty() {
                            conn.out().extend_from_slice(http::CONTINUE);
                        } else {
                            conn.answers
                                .push_back(Answer::Ready(http::CONTINUE.to_vec()));
                        }
                    }
                    break;
                }
                Ok(http::Parsed::Whole(request)) => {
                    // Cheapest test first: most requests find no answer
                    // outstanding, and most are no listing; only a listing
                    // behind others pays for the scan of the queue.
                    if !conn.answers.is_empty()
                        && routes::is_listing(
                            request.method,
                            routes::route_of(&http::normalized_path(request.path)),
                        )
                        && conn.holds_a_listing()
                    {
                        self.put_back(slot, buf);
                        break;
                    }
                    conn.continue_sent = false;
                    consumed += request.len;
                    let keep_alive = request.keep_alive;
                    self.dispatch(slot, &request);
                    self.put_back(slot, buf);
                    if !keep_alive {
                        if let Some(conn) = self.connections[slot].as_mut() {
                            conn.last_request_seen = true;
                        }
                    }
                }
                Err(error) => {
                    self.put_back(slot, buf);
                    let refusal = ApiError::new(error.status(), error.to_string());
                    self.refuse_and_close(slot, &refusal);
                    return;
                }
            }
        }
        if let Some(conn) = self.connections[slot].as_mut() {
            // Keep the unparsed tail at the front of the buffer.
            conn.read_buf.copy_within(consumed..conn.read_len, 0);
            conn.read_len -= consumed;
            if consumed > 0 {
                // The tail (if any) began in the last read.
                conn.request_started = self.now;
            }
        }
    }

    /// Answers `refusal` and closes the connection once it is written:
    /// what follows in the buffer cannot be read as requests.
    fn refuse_and_close(&mut self, slot: usize, refusal: &ApiError) {
        let (status, headers) = (refusal.status, refusal.header_line());
        self.answer_now_typed(slot, status, http::JSON, &refusal.body(), false, &headers);
        if let Some(conn) = self.connections[slot].as_mut() {
            conn.last_request_seen = true;
            conn.read_len = 0;
        }
    }

    /// What a request whose client waits for `100 Continue` is refused
    /// before its body, as it would be whole: the token, under
    /// `--api-token`, where its route needs it; then a `POST` or `PUT`
    /// body in a media type other than JSON (every one takes JSON).
    fn refused_before_its_body(&self, head: &http::Head<'_>) -> Result<(), ApiError> {
        let normal = http::normalized_path(head.path);
        self.authorize_route(head.method, routes::route_of(&normal), head.authorization)?;
        match head.method {
            http::Method::Post | http::Method::Put => {
                routes::json_type(head.content_type, head.from_a_web_page)
            }
            _ => Ok(()),
        }
    }

    fn put_back(&mut self, slot: usize, buf: Vec<u8>) {
        if let Some(conn) = self.connections[slot].as_mut() {
            conn.read_buf = buf;
        }
    }

    /// Answers a request that needs nothing more: written at once if no
    /// earlier answer is outstanding on the connection, queued otherwise.
    fn answer_now(&mut self, slot: usize, status: u16, body: &[u8], keep_alive: bool) {
        self.answer_now_typed(slot, status, http::JSON, body, keep_alive, "");
    }

    fn answer_now_typed(
        &mut self,
        slot: usize,
        status: u16,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
        extra_headers: &str,
    ) {
        self.stats.count(status);
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        let body = if self.head_only {
            http::Body::HeadOnly(body.len())
        } else {
            http::Body::Bytes(body)
        };
        if conn.answers.is_empty() {
            http::write_typed_response(
                conn.out(),
                status,
                content_type,
                body,
                keep_alive,
                extra_headers,
            );
        } else {
            let mut response = Vec::with_capacity(body.len() + 128);
            http::write_typed_response(
                &mut response,
                status,
                content_type,
                body,
                keep_alive,
                extra_headers,
            );
            conn.answers.push_back(Answer::Ready(response));
        }
    }

    /// Puts a finished answer in its place in the connection's queue and
    /// writes out every answer that is now first in line.
    fn complete(&mut self, waiting: &InFlight, status: u16, body: &[u8]) {
        self.complete_headed(waiting, status, body, "");
    }

    /// [`complete`](Self::complete) with a refusal, and the header its
    /// status calls for (`Retry-After`).
    fn complete_error(&mut self, waiting: &InFlight, error: &ApiError) {
        self.complete_headed(waiting, error.status, &error.body(), &error.header_line());
    }

    fn complete_headed(&mut self, waiting: &InFlight, status: u16, body: &[u8], headers: &str) {
        self.stats.count(status);
        let body = if waiting.head_only {
            http::Body::HeadOnly(body.len())
        } else {
            http::Body::Bytes(body)
        };
        self.complete_with(waiting, |conn, first| {
            let keep_alive = waiting.keep_alive;
            if first {
                http::write_typed_response(
                    conn.out(),
                    status,
                    http::JSON,
                    body,
                    keep_alive,
                    headers,
                );
                None
            } else {
                let mut response = Vec::with_capacity(body.len() + 128);
                http::write_typed_response(
                    &mut response,
                    status,
                    http::JSON,
                    body,
                    keep_alive,
                    headers,
                );
                Some(Answer::Ready(response))
            }
        });
    }

    /// [`complete`](Self::complete) for a body the replica built (a
    /// `GET /orders` listing may be hundreds of megabytes): it is queued as
    /// it is, never copied.
    fn complete_large(&mut self, waiting: &InFlight, status: u16, body: Held) {
        if waiting.head_only {
            return self.complete(waiting, status, &body);
        }
        self.stats.count(status);
        self.complete_with(waiting, |conn, first| {
            if first {
                conn.respond_owned(status, body, waiting.keep_alive);
                None
            } else {
                let mut head = Vec::with_capacity(128);
                http::write_head(&mut head, status, body.len(), waiting.keep_alive);
                Some(Answer::ReadyLarge(head, body))
            }
        });
    }

    /// Finds the ticket's place in its connection's queue; `write` either
    /// writes the answer (first in line: `true`) or returns it to wait.
    fn complete_with(
        &mut self,
        waiting: &InFlight,
        write: impl FnOnce(&mut Connection, bool) -> Option<Answer>,
    ) {
        if let Some((name, since)) = waiting.read {
            let micros = api::now_micros().saturating_sub(since).max(1);
            let _ = self.stats.latency_by_read[name as usize].record(micros);
        }
        let Some(conn) = self.connections[waiting.slot].as_mut() else {
            return;
        };
        if conn.serial != waiting.serial {
            return; // The connection closed; its slot now serves another.
        }
        let is_ticket = |a: &Answer| matches!(a, Answer::Waiting(t) if *t == waiting.ticket);
        if conn.answers.front().is_some_and(is_ticket) {
            conn.answers.pop_front();
            write(conn, true);
        } else if let Some(at) = conn.answers.iter().position(is_ticket) {
            if let Some(answer) = write(conn, false) {
                conn.answers[at] = answer;
            }
        }
        while matches!(
            conn.answers.front(),
            Some(Answer::Ready(_) | Answer::ReadyLarge(..))
        ) {
            match conn.answers.pop_front() {
                Some(Answer::Ready(response)) => conn.out().extend_from_slice(&response),
                Some(Answer::ReadyLarge(head, body)) => {
                    conn.out().extend_from_slice(&head);
                    conn.spill.push_back(body);
                }
                _ => {}
            }
        }
        // Answers freed pipeline room: write, serve what is buffered, read on.
        self.pump(waiting.slot);
    }

    /// Writes what the connection has buffered, the write buffer first,
    /// then the spill queue, until done or the socket is full.
    fn flush(&mut self, slot: usize) {
        let now = self.now;
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        loop {
            let (chunk, from_spill) = if conn.written < conn.write_buf.len() {
                (&conn.write_buf[conn.written..], false)
            } else if let Some(front) = conn.spill.front() {
                if conn.spill_written == front.len() {
                    conn.spill.pop_front();
                    conn.spill_written = 0;
                    continue;
                }
                (&front[conn.spill_written..], true)
            } else {
                break;
            };
            match conn.stream.write(chunk) {
                Ok(0) => {
                    self.close(slot);
                    return;
                }
                Ok(n) if from_spill => {
                    conn.spill_written += n;
                    conn.last_progress = now;
                }
                Ok(n) => {
                    conn.written += n;
                    conn.last_progress = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(slot);
                    return;
                }
            }
        }
        if conn.written == conn.write_buf.len() {
            // Keep the allocation for the next answers.
            conn.write_buf.clear();
            conn.written = 0;
            if Self::flush_frames(conn).is_err() {
                self.close(slot);
            }
        }
    }

    /// Closes a connection that will get no more requests once every
    /// answer is written.
    fn close_if_finished(&mut self, slot: usize) {
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        if conn.ws.is_some() {
            if Self::subscriber_finished(conn) {
                if conn.peer_done {
                    self.close(slot);
                } else {
                    self.linger(slot);
                }
            }
            return;
        }
        let finished = conn.last_request_seen || conn.peer_done && conn.read_len == 0;
        if finished && conn.answers.is_empty() && conn.unwritten() == 0 {
            if conn.peer_done {
                self.close(slot);
            } else {
                self.linger(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.connections[slot].take() {
            if conn.replica_reads > 0 {
                self.abandon_reads(|w| w.slot == slot && w.serial == conn.serial);
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.free_slots.push(slot);
            self.open -= 1;
            if let Some(sub) = conn.ws.take() {
                self.forget_subscriber(slot, &sub);
            }
        }
    }
}

impl Front {
    /// Tells the replica not to build the reads of the requests `whose`
    /// picks: nobody will read them. A client that pipelined a thousand
    /// `GET /orders` of a big book and left kept the replica building them
    /// for 17 s, every other client's read waiting behind.
    fn abandon_reads(&self, whose: impl Fn(&InFlight) -> bool) {
        let reads = (self.in_flight.iter())
            .chain(&self.awaiting_replica)
            .filter(|w| matches!(w.kind, Awaiting::Replica) && whose(w));
        for waiting in reads {
            let _ = self.abandoned.send(waiting.ticket);
        }
    }
}

/// How soon accepting is tried again after it failed (`EMFILE`): a
/// connection closing or timing out frees a descriptor meanwhile.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Connections the kernel may hold ready for the loop to accept (it caps
/// this at `net.core.somaxconn`). With std's 128, a burst of clients
/// connecting at once (a load generator's 2,000 connections, every client
/// reconnecting after a restart) overflowed the queue: the kernel dropped
/// their handshakes and they retried a second or more later.
const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr`, as `TcpListener::bind` makes one
/// (`SO_REUSEADDR`, so a restart can bind while the last run's connections
/// linger in `TIME_WAIT`) but with a deeper accept queue.
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Removes and returns the item of `items` with this ticket: the meeting
/// point of a replica read's barrier and its answer, whichever comes first.
fn take_ticket<T>(items: &mut Vec<T>, ticket: u64, ticket_of: impl Fn(&T) -> u64) -> Option<T> {
    let at = items.iter().position(|item| ticket_of(item) == ticket)?;
    Some(items.swap_remove(at))
}
