//! The service's settings: command-line flags, each with an `ORDERBOOK_*`
//! environment variable, gathered in one struct.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser};

use crate::api::{Symbol, TickSize, Wire};
use crate::engine::BookConfig;
use crate::net::auth::ApiToken;
use crate::net::http::Limits;
use crate::net::rate_limit::RateLimit;
use crate::net::server::{FeedSettings, FrontConfig};
use crate::persist::snapshot::STATE_FILE;
use crate::publisher::FeedConfig;
use crate::ring::WaitStrategy;

/// Settings of the order matching service.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "orderbook",
    version,
    about = "Low-latency limit order matching service"
)]
pub struct Config {
    /// Directory that holds the service's state (the journal, and the state
    /// file unless `--state-file` is elsewhere); created if missing, and
    /// locked so that two services never share it.
    #[arg(long, env = "ORDERBOOK_DATA_DIR", default_value = ".")]
    pub data_dir: PathBuf,

    /// The instrument traded: an order may name it in a `symbol` field (an
    /// order naming another is refused with 422); one that does not trades
    /// it. `GET /health` shows it.
    #[arg(long, env = "ORDERBOOK_SYMBOL", default_value = "DEFAULT", value_parser = Symbol::parse)]
    pub symbol: Symbol,

    /// The state file (`order_book_state.json`, the original service's
    /// name): written every `--snapshot-interval` and at shutdown, loaded
    /// at start (one of the original service loads too). A relative path is
    /// inside `--data-dir`.
    #[arg(long, env = "ORDERBOOK_STATE_FILE", default_value = STATE_FILE)]
    pub state_file: PathBuf,

    /// IP address and port to listen on (`127.0.0.1:8000`, `[::1]:8000`;
    /// a host name is not looked up).
    #[arg(long, env = "ORDERBOOK_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Instead of serving: ask the service at `--listen` for `GET /health`
    /// and exit 0 if it answers 200 within 2 seconds, 1 otherwise (for
    /// container health checks; a wildcard address is asked on loopback).
    #[arg(long, conflicts_with = "print_journal")]
    pub health_check: bool,

    /// Instead of serving: print every command of the journal in
    /// `--data-dir` as JSON lines, oldest first, and exit (0, or 1 on a
    /// damaged journal). It only reads, so it may run beside the service.
    #[arg(long)]
    pub print_journal: bool,

    /// With `--print-journal`: start at this record (`seq`); the files
    /// wholly before it are not read.
    #[arg(
        long,
        requires = "print_journal",
        default_value_t = 1,
        value_name = "SEQ"
    )]
    pub from_seq: u64,

    /// A secret that placing, modifying and cancelling orders need, sent
    /// as `Authorization: Bearer <token>` (16 to 256 characters; `openssl
    /// rand -hex 32` makes one). Without it anyone who can reach the port
    /// can trade. Reads (the book, trades, orders by id, the feed, health,
    /// metrics) stay open. Better given by the environment than the command
    /// line, which other users of the machine can read.
    #[arg(long, env = "ORDERBOOK_API_TOKEN", value_parser = TokenParser, hide_env_values = true)]
    pub api_token: Option<ApiToken>,

    /// Lets web pages from this origin (`*`: any) read the service's
    /// answers (`Access-Control-Allow-Origin` on every answer), for a
    /// market-data dashboard served elsewhere. Order entry from such a page
    /// stays refused: no preflight is ever granted.
    #[arg(long, env = "ORDERBOOK_CORS_ORIGIN", value_parser = crate::net::http::parse_origin)]
    pub cors_origin: Option<String>,

    /// Orders a second one client address may send, on average (each
    /// order of a batch counts; reads are never limited); more are
    /// answered 429 with `Retry-After`. 0: no limit.
    #[arg(long, env = "ORDERBOOK_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,

    /// Orders one client address may send at once under `--rate-limit`
    /// (the bucket's depth; refused without it). 0: as many as the rate.
    #[arg(long, env = "ORDERBOOK_RATE_LIMIT_BURST", default_value_t = 0)]
    pub rate_limit_burst: u32,

    /// Price grid step; prices must be positive multiples of it.
    #[arg(long, env = "ORDERBOOK_TICK_SIZE", default_value = "0.01", value_parser = TickSize::parse)]
    pub tick_size: TickSize,

    /// Largest quantity one order may have, 1 to 4294967295 (2^32 - 1): the
    /// resting quantity a level or a fill-or-kill sums is a u64, which the
    /// book's most orders (2^32 - 1) of this size cannot overflow
    #[arg(
        long,
        env = "ORDERBOOK_MAX_QUANTITY",
        default_value_t = 1_000_000_000,
        value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX))
    )]
    pub max_quantity: u64,

    /// Most open client connections (1 to 2^20); more are answered 503 and
    /// closed (counted by `orderbook_connections_refused_total`).
    #[arg(long, env = "ORDERBOOK_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = count(1..=1 << 20))]
    pub max_connections: usize,

    /// Seconds a keep-alive connection may sit with no request in progress
    /// and nothing to answer before it is closed (0 = never), so idle
    /// clients cannot hold every connection slot. WebSocket subscribers
    /// are kept alive by pings instead.
    #[arg(long, env = "ORDERBOOK_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout: u64,

    /// Seconds a request may stay half received, or answers unread by a
    /// client that stopped reading, with no byte moving, before the
    /// connection is closed (0 = never); a half-received request is first
    /// answered 408.
    #[arg(long, env = "ORDERBOOK_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,

    /// Largest request line plus headers, in bytes (256 to 1 MiB; beyond: 431).
    #[arg(long, env = "ORDERBOOK_MAX_HEADER_BYTES", default_value_t = 8 * 1024, value_parser = count(256..=1 << 20))]
    pub max_header_bytes: usize,

    /// Largest request body, in bytes (64 to 64 MiB; beyond: 413).
    #[arg(long, env = "ORDERBOOK_MAX_BODY_BYTES", default_value_t = 64 * 1024, value_parser = count(64..=1 << 26))]
    pub max_body_bytes: usize,

    /// Most unanswered pipelined requests per connection before the server
    /// stops reading more from it (1 to 2^20).
    #[arg(long, env = "ORDERBOOK_MAX_PIPELINE", default_value_t = 1024, value_parser = count(1..=1 << 20))]
    pub max_pipeline: usize,

    /// Trades kept in memory for `GET /trades`.
    #[arg(long, env = "ORDERBOOK_TRADE_HISTORY", default_value_t = 100_000)]
    pub trade_history: usize,

    /// Trades `GET /trades` returns without `?limit=` (at most
    /// `--trades-max-limit`: a larger one counts as that, so that lowering
    /// the maximum alone needs no second setting).
    #[arg(long, env = "ORDERBOOK_TRADES_DEFAULT_LIMIT", default_value_t = 1_000, value_parser = count(1..))]
    pub trades_default_limit: usize,

    /// Largest `?limit=` `GET /trades` accepts (at least 1).
    #[arg(long, env = "ORDERBOOK_TRADES_MAX_LIMIT", default_value_t = 100_000, value_parser = count(1..))]
    pub trades_max_limit: usize,

    /// Bytes that large listings (`GET /orders`, `/trades`, `/book`,
    /// `/candles` answers and WebSocket `orders_snapshot`s of 64 KiB or
    /// more) built and not yet read by their clients may hold, across all
    /// connections; while they hold this much, a further large listing is
    /// answered 503 with `Retry-After: 1`, or its WebSocket closed with
    /// 1013 (a small one is still answered). At least 1 MiB.
    #[arg(long, env = "ORDERBOOK_MAX_LISTING_BYTES", default_value_t = 256 << 20, value_parser = count(1 << 20..))]
    pub max_listing_bytes: usize,

    /// CPU core to pin the matching thread to (default: the last core).
    #[arg(long, env = "ORDERBOOK_MATCHING_CORE")]
    pub matching_core: Option<usize>,

    /// How idle threads wait for work: `adaptive` spins briefly then parks
    /// (for shared machines), `spin` never parks (for dedicated cores),
    /// `membarrier` waits as `adaptive` does with no fence on publish but a
    /// `membarrier(2)` (an interrupt to the other cores) each time a thread
    /// goes to sleep; it cost this service more CPU per request than
    /// `adaptive` (docs/BENCHMARKS.md).
    #[arg(long, env = "ORDERBOOK_WAIT_STRATEGY", default_value = "adaptive")]
    pub wait_strategy: WaitStrategy,

    /// Slots in the command ring into the matching thread (1 to 2^24, rounded up to a power of two).
    /// A batch must fit in it whole: with fewer slots than a batch's 100 orders, larger batches are refused (422).
    #[arg(long, env = "ORDERBOOK_COMMAND_RING", default_value_t = 1 << 16, value_parser = count(1..=1 << 24))]
    pub command_ring: usize,

    /// Slots in the event ring out of the matching thread (1 to 2^24, rounded up to a power of two).
    #[arg(long, env = "ORDERBOOK_EVENT_RING", default_value_t = 1 << 18, value_parser = count(1..=1 << 24))]
    pub event_ring: usize,

    /// Orders (resting and retained finished) the book pre-sizes for (1 to
    /// 2^29); more still fit.
    #[arg(long, env = "ORDERBOOK_ORDER_CAPACITY", default_value_t = 1 << 20, value_parser = count(1..=1 << 29))]
    pub order_capacity: usize,

    /// Make the matching thread's book (its slots and id index for
    /// `--order-capacity` orders) resident at start, on transparent huge
    /// pages where the kernel has them: faster matching on big books, and
    /// no page faults while matching, for about 128 MiB taken at start (at
    /// 2^20 orders). `false` takes memory as the book grows.
    #[arg(long, env = "ORDERBOOK_HUGE_PAGES", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub huge_pages: bool,

    /// Price levels per side the book pre-sizes for (1 to 2^24); more still fit.
    #[arg(long, env = "ORDERBOOK_LEVEL_CAPACITY", default_value_t = 1 << 12, value_parser = count(1..=1 << 24))]
    pub level_capacity: usize,

    /// Finished (filled or cancelled) orders kept fetchable by id, newest
    /// kept (0 to 2^29; its room, 64 bytes an order, is taken at start).
    #[arg(long, env = "ORDERBOOK_FINISHED_ORDERS", default_value_t = 1_000_000, value_parser = count(0..=1 << 29))]
    pub finished_orders: usize,

    /// Seconds between writes of the state file (`order_book_state.json`);
    /// it is also written at a clean shutdown. 0 writes it only then; at
    /// most a year.
    #[arg(long, env = "ORDERBOOK_SNAPSHOT_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub snapshot_interval: u64,

    /// Answer a command only once its journal record is on disk
    /// (`fdatasync`, shared by every command of a batch), not just in the
    /// kernel: survives a power cut, not only a crash.
    #[arg(long, env = "ORDERBOOK_FSYNC", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub fsync: bool,

    /// Delete the journal files a saved state file covers. By default the
    /// journal keeps every command ever accepted (SPEC §4: finished orders
    /// past `--finished-orders` live on only there), so its files grow
    /// without bound; with this, disk use stays near one
    /// `--journal-segment-bytes` file, and those commands are gone.
    #[arg(long, env = "ORDERBOOK_PRUNE_JOURNAL", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub prune_journal: bool,

    /// Bytes after which the journal starts a new file (each file holds at
    /// least one record, so 0 starts one for every record).
    #[arg(long, env = "ORDERBOOK_JOURNAL_SEGMENT_BYTES", default_value_t = 64 << 20)]
    pub journal_segment_bytes: u64,

    /// Milliseconds between the feed's periodic snapshots (at least 10).
    #[arg(long, env = "ORDERBOOK_FEED_SNAPSHOT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub feed_snapshot_ms: u64,

    /// Levels per side in a feed snapshot without `?depth=` (0 = all, at
    /// most 1000).
    #[arg(long, env = "ORDERBOOK_FEED_DEPTH", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub feed_depth: u64,

    /// Unsent bytes a WebSocket subscriber may have queued behind the
    /// message it is being sent; past it the subscriber is closed (1008),
    /// never waited for. At least 1024.
    #[arg(long, env = "ORDERBOOK_WS_MAX_QUEUE_BYTES", default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub ws_max_queue_bytes: u64,

    /// Seconds of silence from a subscriber before it is pinged (1 or more).
    #[arg(long, env = "ORDERBOOK_WS_PING_AFTER", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_ping_after: u64,

    /// Seconds a ping may go unanswered before the subscriber is dropped
    /// (1 or more).
    #[arg(long, env = "ORDERBOOK_WS_PONG_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_pong_timeout: u64,

    /// Frames the publisher may have waiting for the front before it waits
    /// (1 to 2^24).
    #[arg(long, env = "ORDERBOOK_FEED_CHANNEL", default_value_t = 1 << 16, value_parser = count(1..=1 << 24))]
    pub feed_channel: usize,
}

impl Config {
    /// The settings of the command line and the environment, refused as a
    /// bad value is (a message and exit 2) where each is valid but they do
    /// not go together.
    pub fn parse_whole() -> Config {
        let config = Config::parse();
        if config.rate_limit_burst > 0 && config.rate_limit == 0 {
            let said = "--rate-limit-burst needs --rate-limit: without a rate (0, no limit) there is no burst to bound";
            Config::command()
                .error(clap::error::ErrorKind::ArgumentConflict, said)
                .exit();
        }
        config
    }

    /// Where the state file is: `--state-file` inside `--data-dir` unless
    /// absolute (an absolute path replaces the base in `join`).
    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join(&self.state_file)
    }

    /// The wire's price grid and quantity bound.
    pub fn wire(&self) -> Wire {
        Wire {
            symbol: self.symbol,
            tick: self.tick_size,
            max_quantity: self.max_quantity,
        }
    }

    /// The front's limits.
    pub fn front(&self) -> FrontConfig {
        FrontConfig {
            max_connections: self.max_connections,
            descriptor_room: usize::MAX,
            idle_timeout: seconds_or_never(self.idle_timeout),
            request_timeout: seconds_or_never(self.request_timeout),
            limits: Limits {
                max_head_bytes: self.max_header_bytes,
                max_body_bytes: self.max_body_bytes,
            },
            max_pipeline: self.max_pipeline.max(1),
            trade_history: self.trade_history,
            trades_default_limit: self.trades_default_limit.min(self.trades_max_limit).max(1),
            trades_max_limit: self.trades_max_limit.max(1),
            drain_timeout: Duration::from_secs(5),
            snapshot_interval: seconds_or_never(self.snapshot_interval),
            feed: FeedSettings {
                default_depth: self.feed_depth as usize,
                max_queue_bytes: usize::try_from(self.ws_max_queue_bytes).unwrap_or(usize::MAX),
                ping_after: Duration::from_secs(self.ws_ping_after),
                pong_timeout: Duration::from_secs(self.ws_pong_timeout),
                close_grace: Duration::from_secs(2),
            },
            api_token: self.api_token.clone(),
            rate_limit: (self.rate_limit > 0).then(|| RateLimit {
                per_second: f64::from(self.rate_limit),
                burst: f64::from(match self.rate_limit_burst {
                    0 => self.rate_limit,
                    burst => burst,
                }),
            }),
        }
    }

    /// The publisher's settings.
    pub fn feed(&self) -> FeedConfig {
        FeedConfig {
            snapshot_interval: Duration::from_millis(self.feed_snapshot_ms),
        }
    }

    /// The engine's sizing taken from these settings.
    pub fn book(&self) -> BookConfig {
        BookConfig {
            order_capacity: self.order_capacity,
            level_capacity: self.level_capacity,
            finished_capacity: self.finished_orders,
            resident: false,
            sparse_index: false,
        }
    }
}

/// A number of seconds where 0 means "never".
fn seconds_or_never(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// Reads `--api-token` without quoting a refused value, as clap's own
/// errors do: a nearly right secret in a log is a leaked one.
#[derive(Clone)]
struct TokenParser;

impl clap::builder::TypedValueParser for TokenParser {
    type Value = ApiToken;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ApiToken, clap::Error> {
        let name = arg.map_or_else(|| "--api-token".to_owned(), ToString::to_string);
        (value.to_str())
            .ok_or_else(|| "may hold only letters, digits and -._~+/ (and = at its end)".to_owned())
            .and_then(ApiToken::parse)
            .map_err(|why| {
                let said =
                    format!("the value given for '{name}' (not shown: it is a secret) {why}\n");
                clap::Error::raw(clap::error::ErrorKind::InvalidValue, said).with_cmd(cmd)
            })
    }
}

/// The parser of a count setting: a whole number in `range`, refused with
/// clap's message (exit 2) otherwise. The bounds keep a start from
/// panicking on a size its structures cannot take (a ring of 0 slots, an
/// id index past 32 bits).
fn count(range: impl std::ops::RangeBounds<u64> + 'static) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(range)
}
