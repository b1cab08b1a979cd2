//! WebSocket subscribers of the market-data feed, on the front's event loop:
//! the upgrade of `GET /ws`, the client's frames (`subscribe` and
//! `unsubscribe` ops, ping, pong, close), and the fan-out of the frames the
//! publisher thread built once (`Arc<[u8]>`) into each subscriber's bounded
//! queue. A subscriber whose queue passes its bound is sent a close frame
//! (1008) and dropped: it never holds back anyone else.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{take_ticket, Awaiting, Connection, Front};
use crate::api::{self, ApiError, ClientOrderId};
use crate::listing_memory::Charge;
use crate::matching::{Barrier, BarrierPurpose, Request};
use crate::net::http;
use crate::net::ws::{self, ClientFrame};
use crate::order_feed::OrderFrame;
use crate::publisher::{Asked, ConnectionRef, FeedMessage, FeedRequest};
use tungstenite::protocol::frame::coding::Data;

const TRADES: u8 = 1;
const BOOK: u8 = 2;
const SNAPSHOT: u8 = 4;
const BBO: u8 = 8;
const CANDLES: u8 = 16;
const ORDERS: u8 = 32;
const CHANNELS: [(u8, &str); 6] = [
    (TRADES, "trades"),
    (BOOK, "book"),
    (SNAPSHOT, "snapshot"),
    (BBO, "bbo"),
    (CANDLES, "candles"),
    (ORDERS, "orders"),
];

/// The interval of the `candles` channel without one: a minute.
const MINUTE: u64 = 60;

/// Most candle intervals, and most order-name prefixes, one connection
/// may follow.
const MAX_CANDLE_INTERVALS: usize = 16;
const MAX_ORDER_PREFIXES: usize = 16;

/// The channels a connection follows: the fixed ones as bits (`CANDLES`
/// set while it follows any candles; `ORDERS` for every order), the candle
/// intervals in seconds, ascending (`candles` is a minute's, `candles:N`
/// N seconds'), and the `client_order_id` prefixes of the orders it
/// follows (`orders:P`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Channels {
    bits: u8,
    intervals: Vec<u64>,
    prefixes: Vec<ClientOrderId>,
}

impl Channels {
    /// Whether it follows any orders' changes.
    fn follows_orders(&self) -> bool {
        self.bits & ORDERS != 0 || !self.prefixes.is_empty()
    }

    /// Whether it follows the changes of the order named `name` through
    /// a channel whose `orders_snapshot` came: `awaited` lists those still
    /// waiting for theirs (`None` for every order's), whose changes are
    /// told by the snapshot until it comes.
    fn follows_order(
        &self,
        name: Option<&ClientOrderId>,
        awaited: &[Option<ClientOrderId>],
    ) -> bool {
        let all = self.bits & ORDERS != 0 && !awaited.contains(&None);
        all || name.is_some_and(|name| {
            let live = |p: &ClientOrderId| !awaited.contains(&Some(*p));
            self.prefixes.iter().any(|p| name.starts_with(p) && live(p))
        })
    }

    /// Why it follows too much, if it does.
    fn too_many(&self) -> Option<String> {
        if self.intervals.len() > MAX_CANDLE_INTERVALS {
            return Some(format!(
                "at most {MAX_CANDLE_INTERVALS} candle intervals a connection"
            ));
        }
        (self.prefixes.len() > MAX_ORDER_PREFIXES)
            .then(|| format!("at most {MAX_ORDER_PREFIXES} order prefixes a connection"))
    }

    /// Adds `other`'s channels; returns the intervals new to it.
    fn add(&mut self, other: &Channels) -> Vec<u64> {
        self.bits |= other.bits;
        for prefix in &other.prefixes {
            if !self.prefixes.contains(prefix) {
                self.prefixes.push(*prefix);
            }
        }
        let new: Vec<u64> = other
            .intervals
            .iter()
            .copied()
            .filter(|i| !self.intervals.contains(i))
            .collect();
        self.intervals.extend_from_slice(&new);
        self.intervals.sort_unstable();
        self.mark_candles();
        new
    }

    /// Takes out `other`'s channels; returns the intervals it left.
    fn remove(&mut self, other: &Channels) -> Vec<u64> {
        self.bits &= !other.bits;
        self.prefixes.retain(|p| !other.prefixes.contains(p));
        let gone: Vec<u64> = other
            .intervals
            .iter()
            .copied()
            .filter(|i| self.intervals.contains(i))
            .collect();
        self.intervals.retain(|i| !gone.contains(i));
        self.mark_candles();
        gone
    }

    fn mark_candles(&mut self) {
        match self.intervals.is_empty() {
            true => self.bits &= !CANDLES,
            false => self.bits |= CANDLES,
        }
    }

    /// Their names, as `subscribed` lists them.
    fn names(&self) -> Vec<String> {
        let fixed = CHANNELS
            .iter()
            .filter(|(bit, _)| *bit != CANDLES && self.bits & bit != 0)
            .map(|(_, name)| (*name).to_owned());
        let candles = self.intervals.iter().map(|&seconds| match seconds {
            MINUTE => "candles".to_owned(),
            _ => format!("candles:{seconds}"),
        });
        let prefixes = self
            .prefixes
            .iter()
            .map(|p| format!("orders:{}", p.as_str()));
        fixed.chain(candles).chain(prefixes).collect()
    }
}

/// A clean stop's end of the feed: subscribers are told goodbye (1001)
/// only after the messages of every command answered, which the
/// publisher and the replica may still be building when the stop comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FeedEnd {
    Running,
    /// Stopping: the `FeedEnd` barrier is staged once every request in
    /// flight is answered (and the command ring has room).
    Due,
    /// Staged: the markers still to come, the publisher's and the
    /// replica's (for the `orders` channels).
    Awaited(u8),
    /// The subscribers were told goodbye.
    Closed,
}

/// A connection's state once it upgraded to WebSocket.
pub(super) struct Subscription {
    depth: usize,
    channels: Channels,
    /// Its first snapshot arrived: messages after it are its to receive
    /// (but for the orders channels, which start at their own snapshots).
    started: bool,
    /// The order channels whose `orders_snapshot` was asked for and has not
    /// come (`None` for every order's): their changes wait for it.
    orders_awaited: Vec<Option<ClientOrderId>>,
    /// A fresh snapshot was asked for (`book` subscribed again, or
    /// `bbo`): of `BOOK` and `BBO`, those it starts (the ones not followed
    /// before) wait until it arrives. One followed already goes on: the
    /// snapshot comes in the same stream, after every message it includes,
    /// so holding them back would only open a `seq` gap before it.
    awaiting_snapshot: u8,
    /// A snapshot was asked of the publisher and has not come: a subscribe
    /// meanwhile is served by it (it comes after the subscribe's place in
    /// the stream, as a fresh one would) instead of asking for another,
    /// so ops sent faster than snapshots come do not pile them up.
    snapshot_asked: bool,
    /// Frames to write; the first is `head_written` bytes out.
    queue: VecDeque<Arc<[u8]>>,
    head_written: usize,
    queued_bytes: usize,
    /// Bytes ever queued (less any dropped unsent), and their count at the end of the newest
    /// snapshot queued: until it is written, later periodic snapshots
    /// would tell nothing it and the book messages after it do not.
    pushed_total: u64,
    snapshot_end: u64,
    /// The `orders_snapshot`s queued that count against
    /// `--max-listing-bytes`, with where each ends in `pushed_total`:
    /// each is given back once written.
    charges: VecDeque<(u64, Charge)>,
    /// A data message arriving in fragments, and its kind (text or
    /// binary) once its first frame came and until its last does.
    fragments: Vec<u8>,
    message_kind: Option<Data>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    /// A close frame is queued: write it, then close.
    closing: Option<Instant>,
}

impl Subscription {
    pub(super) fn unwritten(&self) -> usize {
        self.queued_bytes - self.head_written
    }

    /// Whether a message of `len` bytes fits the bound. The message being
    /// written (the head) does not count: a reader keeping up is never
    /// closed for one message bigger than the bound, a deep snapshot say.
    fn has_room_for(&self, len: usize, bound: usize) -> bool {
        let behind_head = self.queued_bytes - self.queue.front().map_or(0, |head| head.len());
        self.queue.is_empty() || behind_head + len <= bound
    }

    fn push(&mut self, frame: Arc<[u8]>) {
        self.queued_bytes += frame.len();
        self.pushed_total += frame.len() as u64;
        self.queue.push_back(frame);
    }

    /// Queues a snapshot and notes where it ends.
    fn push_snapshot(&mut self, frame: Arc<[u8]>) {
        self.push(frame);
        self.snapshot_end = self.pushed_total;
    }

    /// Whether a snapshot it was sent is still partly unwritten.
    fn snapshot_unsent(&self) -> bool {
        self.pushed_total - (self.unwritten() as u64) < self.snapshot_end
    }

    /// Queues a close frame after what is being written; nothing after it.
    fn close_with(&mut self, code: u16, reason: &str) {
        if self.closing.is_some() {
            return;
        }
        self.push(ws::close_frame(code, reason));
        self.closing = Some(Instant::now());
    }

    fn wants(&self, channel: u8) -> bool {
        self.started && self.closing.is_none() && self.channels.bits & channel != 0
    }

    fn wants_candles(&self, interval: u64) -> bool {
        self.wants(CANDLES) && self.channels.intervals.contains(&interval)
    }

    /// Not gated by `started`: the orders channels come down the
    /// replica's path, not the publisher's, each from its own snapshot.
    fn wants_order(&self, name: Option<&ClientOrderId>) -> bool {
        self.closing.is_none() && self.channels.follows_order(name, &self.orders_awaited)
    }

    fn channels_json(&self) -> String {
        let names = serde_json::to_string(&self.channels.names()).expect("strings");
        format!("{{\"type\":\"subscribed\",\"channels\":{names}}}")
    }
}

#[derive(Deserialize)]
struct Op {
    op: String,
    #[serde(default)]
    channels: Vec<String>,
}

/// What is wrong with an op that is JSON but not shaped as one.
fn misshapen_op(message: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(message).unwrap_or_default();
    let Some(fields) = value.as_object() else {
        return "an op is a JSON object".into();
    };
    let names = |value: &serde_json::Value| {
        (value.as_array()).is_some_and(|list| list.iter().all(serde_json::Value::is_string))
    };
    match (fields.get("op"), fields.get("channels")) {
        (None, _) => "op: field required".into(),
        (Some(op), _) if !op.is_string() => "op: must be a string".into(),
        (_, Some(channels)) if !names(channels) => {
            "channels: must be a list of channel names".into()
        }
        _ => "an op is {\"op\": name, \"channels\": [names]}".into(),
    }
}

fn error_frame(detail: &str) -> Arc<[u8]> {
    // `type` first, as in every other message (`json!` sorts its keys).
    let detail = serde_json::to_string(detail).expect("a string serializes");
    let text = format!(r#"{{"type":"error","detail":{detail}}}"#);
    ws::text_frame(text.as_bytes())
}

/// The `?channels=` of a `/ws` query (comma-separated names), or the
/// default three; 400 before the upgrade.
fn channels_of(query: Option<&str>) -> Result<Channels, ApiError> {
    let Some(list) = api::query_value(query, "channels") else {
        return Ok(Channels {
            bits: TRADES | BOOK | SNAPSHOT,
            ..Channels::default()
        });
    };
    parse_channels(list.split(',')).map_err(|why| ApiError::new(400, format!("channels: {why}")))
}

/// The channels' names as the errors list them.
const CHANNEL_NAMES: &str = "trades, book, snapshot, bbo, candles and orders";

/// The named channels, or why one is none: `candles:N` must name 1 to
/// [`api::MAX_CANDLE_INTERVAL`] seconds, `orders:P` a prefix that is a
/// `client_order_id` itself, and at most [`MAX_CANDLE_INTERVALS`]
/// intervals and [`MAX_ORDER_PREFIXES`] prefixes may be named.
fn parse_channels<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Channels, String> {
    let mut channels = Channels::default();
    for name in names {
        if let Some(prefix) = name.strip_prefix("orders:") {
            let prefix = ClientOrderId::parse(prefix).ok_or_else(|| {
                format!("{}: orders:P takes a prefix of client_order_ids, 1 to 36 letters, digits, '.', ':', '/', '_' or '-'", api::Quoted(name))
            })?;
            channels.add(&Channels {
                prefixes: vec![prefix],
                ..Channels::default()
            });
            continue;
        }
        let interval = match name.strip_prefix("candles:") {
            // Digits as the channel is named back (`candles:300`): `parse`
            // also takes `+5`, and `060` would be followed as `candles`.
            Some(seconds) => Some(
                Some(seconds)
                    .filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|s| (1..=api::MAX_CANDLE_INTERVAL).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "{}: candles:N takes N seconds, 1 to {}, in digits without a leading zero",
                            api::Quoted(name),
                            api::MAX_CANDLE_INTERVAL
                        )
                    })?,
            ),
            None if name == "candles" => Some(MINUTE),
            None => None,
        };
        match interval {
            Some(interval) => channels.add(&Channels {
                intervals: vec![interval],
                ..Channels::default()
            }),
            None => {
                let bit = CHANNELS
                    .iter()
                    .find(|(_, known)| *known == name)
                    .map(|(bit, _)| *bit)
                    .ok_or_else(|| {
                        format!(
                            "unknown channel {}; the channels are {CHANNEL_NAMES}",
                            api::Quoted(name)
                        )
                    })?;
                channels.bits |= bit;
                Vec::new()
            }
        };
    }
    match channels.too_many() {
        Some(why) => Err(why),
        None => Ok(channels),
    }
}

/// The `orders_snapshot`s a connection is sent on starting to follow
/// `channels`' orders: every resting order for `orders`, and those a prefix
/// names for each `orders:P`.
/// Why a listing or an order snapshot is refused (503, or a 1013 close).
pub(super) const LISTINGS_FULL: &str =
    "listings and order snapshots not yet read by their clients hold --max-listing-bytes; retry shortly";

fn order_snapshots_of(channels: &Channels) -> Vec<Option<ClientOrderId>> {
    let all = (channels.bits & ORDERS != 0).then_some(None);
    all.into_iter()
        .chain(channels.prefixes.iter().copied().map(Some))
        .collect()
}

/// The `?depth=` of a `/ws` query, or the default; 400 before the upgrade.
fn depth_of(query: Option<&str>, default: usize) -> Result<usize, ApiError> {
    api::depth_param(query, default).map_err(|detail| ApiError::new(400, detail))
}

impl Front {
    /// Answers `GET /ws`: the upgrade, or 400 for a bad handshake.
    pub(super) fn upgrade(
        &mut self,
        slot: usize,
        request: &http::Request<'_>,
    ) -> Result<(), ApiError> {
        // A HEAD (routed as a GET) has no upgrade: its answer is the one a
        // GET without the upgrade's headers gets.
        if !request.wants_websocket || self.head_only {
            return Err(ApiError::new(
                400,
                "WebSocket upgrade required (Connection: Upgrade, Upgrade: websocket)",
            ));
        }
        let Some(key) = request.websocket_key else {
            return Err(ApiError::new(400, "Sec-WebSocket-Key is missing"));
        };
        if !ws::is_valid_key(key) {
            return Err(ApiError::new(
                400,
                "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 §4.2.1)",
            ));
        }
        if request.websocket_version != Some(b"13".as_slice()) {
            // RFC 6455 §4.2.2: say which version this server speaks; RFC
            // 9110 §15.5.22: and which protocol to upgrade to.
            let mut error = ApiError::new(426, "Sec-WebSocket-Version must be 13");
            error.headers = vec![
                ("Sec-WebSocket-Version", "13".into()),
                ("Upgrade", "websocket".into()),
            ];
            return Err(error);
        }
        let depth = depth_of(request.query, self.config.feed.default_depth)?;
        let channels = channels_of(request.query)?;
        let Some(conn) = self.connections[slot].as_mut() else {
            return Ok(());
        };
        if !conn.answers.is_empty() {
            return Err(ApiError::new(
                400,
                "upgrade only once earlier pipelined requests are answered",
            ));
        }
        conn.out().extend_from_slice(&ws::upgrade_response(key));
        self.stats.count(101);
        // Keep the kernel's send buffer small, so that the queue bound, not
        // megabytes of socket buffer, decides when a subscriber is too slow.
        let kernel_buffer = self
            .config
            .feed
            .max_queue_bytes
            .clamp(16 * 1024, 256 * 1024);
        let _ = socket2::SockRef::from(&conn.stream).set_send_buffer_size(kernel_buffer);
        let intervals = channels.intervals.clone();
        let follows = channels.follows_orders();
        let order_snapshots = order_snapshots_of(&channels);
        conn.ws = Some(Box::new(Subscription {
            depth,
            channels,
            started: false,
            orders_awaited: Vec::new(),
            awaiting_snapshot: 0,
            snapshot_asked: true,
            queue: VecDeque::new(),
            head_written: 0,
            queued_bytes: 0,
            pushed_total: 0,
            snapshot_end: 0,
            charges: VecDeque::new(),
            fragments: Vec::new(),
            message_kind: None,
            last_heard: Instant::now(),
            ping_sent: None,
            closing: None,
        }));
        let to = ConnectionRef {
            slot,
            serial: conn.serial,
        };
        self.subscribers.push(slot);
        self.count_order_followers(false, follows);
        self.ask_publisher(FeedRequest::Join(depth));
        for interval in intervals {
            self.ask_publisher(FeedRequest::JoinCandles(interval));
        }
        self.ask_publisher(FeedRequest::Snapshot { to, depth });
        for prefix in order_snapshots {
            self.ask_order_snapshot(to, prefix);
        }
        Ok(())
    }

    /// Asks the replica for the resting orders a connection starts to
    /// follow (`prefix`'s, or all), as of this point in the stream: a
    /// barrier it answers down the order frames' path, ahead of every
    /// change after it. The channel's changes wait for it. A full command
    /// ring is said to the client, who may subscribe again.
    fn ask_order_snapshot(&mut self, to: ConnectionRef, prefix: Option<ClientOrderId>) {
        // One asked and not come serves a subscribe meanwhile, as a book
        // snapshot does; the channel waits for it all the same (it may
        // have been left and joined again since it was asked).
        if (self.order_snapshots.iter()).any(|asked| asked.1 == to && asked.2 == prefix) {
            let sub = self.connections[to.slot]
                .as_mut()
                .and_then(|c| c.ws.as_mut());
            if let Some(sub) = sub.filter(|sub| !sub.orders_awaited.contains(&prefix)) {
                sub.orders_awaited.push(prefix);
            }
            return;
        }
        let barrier = Barrier {
            ticket: self.next_ticket,
            purpose: BarrierPurpose::OrderSnapshot { prefix },
        };
        let staged = self.stage_own(Request::Barrier(barrier), Awaiting::OrderSnapshot);
        let Some(sub) = self.connections[to.slot]
            .as_mut()
            .and_then(|c| c.ws.as_mut())
        else {
            return;
        };
        if !sub.orders_awaited.contains(&prefix) {
            sub.orders_awaited.push(prefix);
        }
        if !staged {
            self.stats.overloaded += 1;
            sub.push(error_frame(
                "orders_snapshot: the engine is busy; subscribe to orders again",
            ));
            return;
        }
        self.order_snapshots.push((barrier.ticket, to, prefix));
    }

    /// Keeps the replica's count of connections following orders as one
    /// goes from following them (`before`) or not to `after`.
    fn count_order_followers(&self, before: bool, after: bool) {
        let Some(feed) = &self.order_feed else { return };
        match (before, after) {
            (false, true) => feed.followers.fetch_add(1, Ordering::Relaxed),
            (true, false) => feed.followers.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    fn ask_publisher(&mut self, request: FeedRequest) {
        let after = self.outputs.position();
        if self.feed_requests.send(Asked { after, request }).is_ok() {
            if let Some(publisher) = &self.publisher {
                publisher.unpark();
            }
        }
    }

    /// Whether a subscriber's queue is within the bound again, so frames
    /// held back by it may be read.
    pub(super) fn subscriber_has_room(&self, slot: usize) -> bool {
        let bound = self.config.feed.max_queue_bytes;
        (self.connections[slot].as_ref())
            .and_then(|conn| conn.ws.as_ref())
            .is_some_and(|sub| sub.closing.is_none() && sub.has_room_for(0, bound))
    }

    /// Reads the frames a subscriber sent, answering each. Returns whether
    /// it stopped with frames left because its answers are over the bound.
    pub(super) fn serve_frames(&mut self, slot: usize) -> bool {
        let mut consumed = 0;
        let mut held_back = false;
        let bound = self.config.feed.max_queue_bytes;
        loop {
            let Some(conn) = self.connections[slot].as_mut() else {
                return false;
            };
            let Some(sub) = conn.ws.as_mut() else {
                return false;
            };
            if sub.closing.is_some() {
                conn.read_len = 0;
                return false;
            }
            if !sub.has_room_for(0, bound) {
                // Its answers (pongs, op replies) wait to be read: read no
                // more of its frames until they are, so a client that
                // sends without reading fills its own socket, not our
                // memory. The feed's own bound closes it if it stays so.
                // As there, the frame being written does not count: a
                // reader of a snapshot bigger than the bound is still
                // heard (its pongs keep it alive).
                held_back = consumed < conn.read_len;
                break;
            }
            let parsed = ws::parse_client_frame(&conn.read_buf[consumed..conn.read_len]);
            let frame = match parsed {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    consumed += used;
                    frame
                }
                Err(error) => {
                    sub.close_with(error.code, error.reason);
                    conn.read_len = 0;
                    return false;
                }
            };
            sub.last_heard = Instant::now();
            match frame {
                ClientFrame::Ping(payload) => sub.push(ws::pong_frame(&payload)),
                ClientFrame::Pong => sub.ping_sent = None,
                ClientFrame::Close(code) => {
                    // Echo the code, as RFC 6455 asks, then close.
                    sub.close_with(code.unwrap_or(1000), "");
                }
                ClientFrame::Data { kind, fin, payload } => {
                    // RFC 6455 §5.4: continuations continue a message
                    // begun, and a message ends before the next begins.
                    let kind = match (kind, sub.message_kind) {
                        (Data::Continue, Some(begun)) => begun,
                        (Data::Continue, None) => {
                            sub.close_with(1002, "a continuation frame with no message begun");
                            continue;
                        }
                        (_, Some(_)) => {
                            sub.close_with(1002, "a new message before the last one ended");
                            continue;
                        }
                        (kind, None) => {
                            sub.fragments.clear();
                            kind
                        }
                    };
                    if sub.fragments.len() + payload.len() > ws::MAX_CLIENT_MESSAGE {
                        sub.close_with(1009, "message too large");
                        continue;
                    }
                    sub.fragments.extend_from_slice(&payload);
                    if !fin {
                        sub.message_kind = Some(kind);
                        continue;
                    }
                    sub.message_kind = None;
                    let message = std::mem::take(&mut sub.fragments);
                    if kind == Data::Text && std::str::from_utf8(&message).is_err() {
                        sub.close_with(1007, "a text message that is not UTF-8");
                        continue;
                    }
                    if kind != Data::Text {
                        // Every message of the feed is text, and so is an op.
                        sub.push(error_frame("ops are JSON text messages, not binary"));
                        continue;
                    }
                    self.handle_op(slot, &message);
                }
            }
        }
        if let Some(conn) = self.connections[slot].as_mut() {
            conn.read_buf.copy_within(consumed..conn.read_len, 0);
            conn.read_len -= consumed;
        }
        held_back
    }

    fn handle_op(&mut self, slot: usize, message: &[u8]) {
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        let serial = conn.serial;
        let Some(sub) = conn.ws.as_mut() else { return };
        let op: Op = match serde_json::from_slice(message) {
            Ok(op) => op,
            Err(error) => {
                // serde quotes a value it refused in Rust's escapes
                // (`"a\u{1}"`); a field of the wrong type is named instead.
                let why = match error.classify() {
                    serde_json::error::Category::Data => misshapen_op(message),
                    _ => error.to_string(),
                };
                sub.push(error_frame(&format!(
                    "expected {{\"op\":\"subscribe\"|\"unsubscribe\",\"channels\":[...]}}: {why}"
                )));
                return;
            }
        };
        if !matches!(op.op.as_str(), "subscribe" | "unsubscribe") {
            let detail = format!(
                "unknown op {}: the ops are subscribe and unsubscribe",
                api::Quoted(&op.op)
            );
            sub.push(error_frame(&detail));
            return;
        }
        if op.channels.is_empty() {
            // It would be answered with the channels unchanged, as if done.
            // A list sent under another name (`channel`) is named.
            let detail = match api::field_other_than(message, &["op", "channels"]) {
                Some(other) => format!("{other}: not a field of an op (it takes op and channels)"),
                None => "channels: name at least one channel".to_owned(),
            };
            sub.push(error_frame(&detail));
            return;
        }
        let named = match parse_channels(op.channels.iter().map(String::as_str)) {
            Ok(named) => named,
            Err(why) => {
                sub.push(error_frame(&why));
                return;
            }
        };
        let followed_before = sub.channels.follows_orders();
        let book_channels_before = sub.channels.bits & (BOOK | BBO);
        let (fresh_snapshot, joined, left) = match op.op == "subscribe" {
            true => {
                let mut after = sub.channels.clone();
                let joined = after.add(&named);
                if let Some(why) = after.too_many() {
                    sub.push(error_frame(&why));
                    return;
                }
                sub.channels = after;
                // Both follow the book from a snapshot on.
                (named.bits & (BOOK | BBO) != 0, joined, Vec::new())
            }
            false => {
                let left = sub.channels.remove(&named);
                // A channel left waits for no snapshot (so at most one
                // entry a channel followed).
                let following = &sub.channels;
                sub.orders_awaited.retain(|awaited| match awaited {
                    None => following.bits & ORDERS != 0,
                    Some(prefix) => following.prefixes.contains(prefix),
                });
                (false, Vec::new(), left)
            }
        };
        let answer = sub.channels_json();
        sub.push(ws::text_frame(answer.as_bytes()));
        let followed_after = sub.channels.follows_orders();
        if fresh_snapshot {
            let started_now = named.bits & (BOOK | BBO) & !book_channels_before;
            sub.awaiting_snapshot |= started_now;
        }
        let depth = sub.depth;
        let ask_snapshot = fresh_snapshot && !std::mem::replace(&mut sub.snapshot_asked, true);
        self.count_order_followers(followed_before, followed_after);
        if ask_snapshot {
            self.ask_publisher(FeedRequest::Snapshot {
                to: ConnectionRef { slot, serial },
                depth,
            });
        }
        for interval in joined {
            self.ask_publisher(FeedRequest::JoinCandles(interval));
        }
        for interval in left {
            self.ask_publisher(FeedRequest::LeaveCandles(interval));
        }
        if op.op == "subscribe" {
            for prefix in order_snapshots_of(&named) {
                self.ask_order_snapshot(ConnectionRef { slot, serial }, prefix);
            }
        }
    }

    /// Queues the publisher's messages to their subscribers, then writes.
    pub(super) fn take_feed(&mut self) {
        let mut any = false;
        let bound = self.config.feed.max_queue_bytes;
        while let Ok(message) = self.feed_messages.try_recv() {
            any = true;
            match message {
                FeedMessage::Initial { to, frame } => {
                    if let Some(sub) = self.connections[to.slot]
                        .as_mut()
                        .filter(|c| c.serial == to.serial)
                        .and_then(|c| c.ws.as_mut())
                    {
                        sub.snapshot_asked = false;
                        if sub.closing.is_none() {
                            sub.push_snapshot(frame);
                            sub.started = true;
                            sub.awaiting_snapshot = 0;
                        }
                    }
                }
                FeedMessage::Trade(frame) => self.fan_out(&frame, bound, |s| s.wants(TRADES)),
                FeedMessage::Book(frame) => self.fan_out(&frame, bound, |s| {
                    s.wants(BOOK) && s.awaiting_snapshot & BOOK == 0
                }),
                FeedMessage::Bbo(frame) => self.fan_out(&frame, bound, |s| {
                    s.wants(BBO) && s.awaiting_snapshot & BBO == 0
                }),
                FeedMessage::Candle { interval, frame } => {
                    self.fan_out(&frame, bound, |s| s.wants_candles(interval))
                }
                FeedMessage::End => self.feed_end_marked(),
                FeedMessage::Snapshot { depth, frame } => {
                    let wants = |s: &Subscription| {
                        s.wants(SNAPSHOT)
                            && s.awaiting_snapshot == 0
                            && s.depth == depth
                            && !s.snapshot_unsent()
                    };
                    self.fan_out_marking(&frame, bound, wants, Subscription::push_snapshot)
                }
            }
        }
        if let Some(feed) = self.order_feed.take() {
            while let Ok(sent) = feed.frames.try_recv() {
                any = true;
                match sent {
                    OrderFrame::Change { frame, name } => {
                        self.feed_stats.order_messages += 1;
                        self.fan_out(&frame, bound, |s| s.wants_order(name.as_ref()));
                    }
                    OrderFrame::End => self.feed_end_marked(),
                    OrderFrame::Snapshot {
                        ticket,
                        frame,
                        charge,
                    } => {
                        let Some((sub, prefix)) = self.snapshot_asked_by(ticket) else {
                            continue;
                        };
                        // A channel left since it was asked waits for it no
                        // more (leaving took it off the list): it is not sent.
                        if sub.orders_awaited.contains(&prefix) {
                            sub.push(frame);
                            sub.charges.push_back((sub.pushed_total, charge));
                            sub.orders_awaited.retain(|awaited| *awaited != prefix);
                        }
                    }
                    OrderFrame::SnapshotRefused { ticket } => {
                        if let Some((sub, _)) = self.snapshot_asked_by(ticket) {
                            // 1013, try again later: the snapshot the
                            // channel starts from cannot be sent now.
                            sub.close_with(1013, LISTINGS_FULL);
                            self.stats.listings_refused += 1;
                        }
                    }
                }
            }
            self.order_feed = Some(feed);
        }
        if any {
            self.pump_subscribers();
        }
    }

    /// The subscriber that asked for the `orders_snapshot` of `ticket`, and
    /// the prefix it asked for, if it is still open and not closing.
    fn snapshot_asked_by(
        &mut self,
        ticket: u64,
    ) -> Option<(&mut Subscription, Option<ClientOrderId>)> {
        let (_, to, prefix) = take_ticket(&mut self.order_snapshots, ticket, |t| t.0)?;
        let conn = self.connections[to.slot].as_mut()?;
        let sub = conn
            .ws
            .as_deref_mut()
            .filter(|_| conn.serial == to.serial)?;
        sub.closing.is_none().then_some((sub, prefix))
    }

    /// Moves every subscriber forward. Works on a copy of the list: a
    /// subscriber that closes meanwhile leaves the list.
    fn pump_subscribers(&mut self) {
        let mut slots = std::mem::take(&mut self.subscriber_scratch);
        slots.clear();
        slots.extend_from_slice(&self.subscribers);
        for &slot in &slots {
            self.pump(slot);
        }
        self.subscriber_scratch = slots;
    }

    fn fan_out(&mut self, frame: &Arc<[u8]>, bound: usize, wants: impl Fn(&Subscription) -> bool) {
        self.fan_out_marking(frame, bound, wants, Subscription::push);
    }

    /// Queues `frame` (by `push`) to each subscriber that `wants` it.
    fn fan_out_marking(
        &mut self,
        frame: &Arc<[u8]>,
        bound: usize,
        wants: impl Fn(&Subscription) -> bool,
        push: fn(&mut Subscription, Arc<[u8]>),
    ) {
        for &slot in &self.subscribers {
            let Some(conn) = self.connections[slot].as_mut() else {
                continue;
            };
            if !conn.ws.as_deref().is_some_and(&wants) {
                continue;
            }
            if !conn
                .ws
                .as_ref()
                .is_some_and(|s| s.has_room_for(frame.len(), bound))
            {
                // Frames wait for the pump after the whole batch: give it
                // what its socket takes now before judging. A failed write
                // fails again in that pump, which closes the connection.
                let _ = Self::flush_frames(conn);
            }
            let sub = conn.ws.as_mut().expect("a subscriber");
            if !sub.has_room_for(frame.len(), bound) {
                // Too far behind: drop what it has not started to receive,
                // tell it why, and let it go.
                while sub.queue.len() > usize::from(sub.head_written > 0) {
                    let dropped = sub.queue.pop_back().expect("queue is not empty");
                    sub.queued_bytes -= dropped.len();
                    // Positions stay those of the frames kept.
                    sub.pushed_total -= dropped.len() as u64;
                }
                while (sub.charges.back()).is_some_and(|(end, _)| *end > sub.pushed_total) {
                    sub.charges.pop_back();
                }
                sub.close_with(1008, "subscriber too slow: send queue over its bound");
                self.feed_stats.slow_closed += 1;
                continue;
            }
            push(sub, frame.clone());
            self.feed_stats.frames_queued += 1;
        }
    }

    /// Writes a subscriber's queued frames, several per system call.
    pub(super) fn flush_frames(conn: &mut Connection) -> io::Result<()> {
        let Some(sub) = conn.ws.as_mut() else {
            return Ok(());
        };
        while !sub.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); 64];
            let mut count = 0;
            for (i, frame) in sub.queue.iter().take(64).enumerate() {
                let from = if i == 0 { sub.head_written } else { 0 };
                slices[i] = IoSlice::new(&frame[from..]);
                count += 1;
            }
            let mut written = match conn.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            while written > 0 {
                let head = sub
                    .queue
                    .front()
                    .expect("written bytes came from the queue");
                let left = head.len() - sub.head_written;
                if written >= left {
                    written -= left;
                    sub.queued_bytes -= head.len();
                    sub.head_written = 0;
                    sub.queue.pop_front();
                } else {
                    sub.head_written += written;
                    written = 0;
                }
            }
            let sent = sub.pushed_total - sub.unwritten() as u64;
            while sub.charges.front().is_some_and(|(end, _)| *end <= sent) {
                sub.charges.pop_front();
            }
        }
        Ok(())
    }

    /// Once a second: pings quiet subscribers, drops those that did not
    /// answer, and shuts those whose close frame could not be delivered.
    pub(super) fn check_subscribers(&mut self) {
        let now = Instant::now();
        let feed = self.config.feed;
        let mut slots = std::mem::take(&mut self.subscriber_scratch);
        slots.clear();
        slots.extend_from_slice(&self.subscribers);
        for &slot in &slots {
            let Some(sub) = self.connections[slot].as_mut().and_then(|c| c.ws.as_mut()) else {
                continue;
            };
            let mut drop_now = false;
            if let Some(since) = sub.closing {
                // At a stop the drain's deadline bounds it instead: a slow
                // reader is given the feed's end within it.
                drop_now = now.duration_since(since) > feed.close_grace && !self.stopping;
            } else if let Some(sent) = sub.ping_sent {
                if now.duration_since(sent) > feed.pong_timeout {
                    sub.close_with(1011, "no pong: connection presumed dead");
                    self.feed_stats.unresponsive_closed += 1;
                }
            } else if now.duration_since(sub.last_heard) > feed.ping_after {
                sub.push(ws::ping_frame());
                sub.ping_sent = Some(now);
            }
            if drop_now {
                self.close(slot);
            } else {
                self.pump(slot);
            }
        }
        self.subscriber_scratch = slots;
    }

    /// At a clean stop, once every request in flight is answered: asks
    /// the publisher and the replica to mark the end of those answers'
    /// messages, or with no subscriber, is done.
    pub(super) fn end_feed_if_answered(&mut self) {
        // A read the replica has yet to answer may stage commands when it
        // does (the cancels of `DELETE /orders` by prefix, or of a switch
        // by prefix going off): ended before them, the feed would not tell
        // them, though they are journaled and applied.
        if self.feed_end != FeedEnd::Due
            || !self.in_flight.is_empty()
            || !self.awaiting_replica.is_empty()
            || !self.requests_all_taken()
        {
            return;
        }
        if self.subscribers.is_empty() {
            self.feed_end = FeedEnd::Closed;
            return;
        }
        let barrier = Barrier {
            ticket: self.next_ticket,
            purpose: BarrierPurpose::FeedEnd,
        };
        if self.stage_own(Request::Barrier(barrier), Awaiting::FeedEnd) {
            self.feed_end = FeedEnd::Awaited(1 + u8::from(self.order_feed.is_some()));
            self.publish_staged();
        }
    }

    /// A marker of the feed's end came: once both have, every message
    /// of the commands answered is queued, and the subscribers are told
    /// goodbye after them.
    fn feed_end_marked(&mut self) {
        if let FeedEnd::Awaited(left) = self.feed_end {
            if left > 1 {
                self.feed_end = FeedEnd::Awaited(left - 1);
            } else {
                self.feed_end = FeedEnd::Closed;
                self.close_subscribers();
            }
        }
    }

    /// At shutdown: every subscriber is told the server is going away.
    fn close_subscribers(&mut self) {
        for &slot in &self.subscribers {
            if let Some(sub) = self.connections[slot].as_mut().and_then(|c| c.ws.as_mut()) {
                sub.close_with(1001, "server shutting down");
            }
        }
        self.pump_subscribers();
    }

    /// Forgets a closed subscriber.
    pub(super) fn forget_subscriber(&mut self, slot: usize, sub: &Subscription) {
        self.subscribers.retain(|&s| s != slot);
        self.count_order_followers(sub.channels.follows_orders(), false);
        self.ask_publisher(FeedRequest::Leave(sub.depth));
        for &interval in &sub.channels.intervals {
            self.ask_publisher(FeedRequest::LeaveCandles(interval));
        }
    }

    /// True if a subscriber has said or been told goodbye and has nothing
    /// left to write.
    pub(super) fn subscriber_finished(conn: &Connection) -> bool {
        conn.ws
            .as_ref()
            .is_some_and(|sub| sub.closing.is_some() && sub.queue.is_empty() || conn.peer_done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(bits: u8) -> Channels {
        Channels {
            bits,
            ..Channels::default()
        }
    }

    #[test]
    fn channels_are_chosen_in_the_query_or_default_to_three() {
        assert_eq!(channels_of(None).unwrap(), fixed(TRADES | BOOK | SNAPSHOT));
        assert_eq!(
            channels_of(Some("depth=3")).unwrap(),
            fixed(TRADES | BOOK | SNAPSHOT)
        );
        assert_eq!(channels_of(Some("channels=bbo")).unwrap(), fixed(BBO));
        assert_eq!(
            channels_of(Some("depth=1&channels=trades,bbo")).unwrap(),
            fixed(TRADES | BBO)
        );
        for bad in [
            "channels=",
            "channels=klines",
            "channels=bbo,",
            "channels=Trades",
            "channels=candles:0",
            "channels=candles:86401",
            "channels=candles:",
            "channels=candles:5m",
        ] {
            assert_eq!(channels_of(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn candles_follow_a_minute_or_the_seconds_named() {
        let named = channels_of(Some("channels=candles:300,trades,candles,candles%3A300")).unwrap();
        assert_eq!(
            named,
            Channels {
                bits: TRADES | CANDLES,
                intervals: vec![60, 300],
                prefixes: Vec::new(),
            }
        );
        assert_eq!(named.names(), ["trades", "candles", "candles:300"]);
        let day = parse_channels(["candles:86400"]).unwrap();
        assert_eq!(day.intervals, [86_400]);
        for odd in [
            "candles:+5",
            "candles:060",
            "candles:0",
            "candles: 5",
            "candles:",
        ] {
            let refused = parse_channels([odd]).unwrap_err();
            let expected = format!(
                "{odd:?}: candles:N takes N seconds, 1 to 86400, in digits without a leading zero"
            );
            assert_eq!(refused, expected);
        }
        let many: Vec<String> = (1..=17).map(|s| format!("candles:{s}")).collect();
        let refused = parse_channels(many.iter().map(String::as_str)).unwrap_err();
        assert_eq!(refused, "at most 16 candle intervals a connection");
        let mut following = named.clone();
        assert_eq!(following.add(&day), [86_400]);
        assert_eq!(following.add(&day), Vec::<u64>::new(), "already followed");
        assert_eq!(
            following.remove(&parse_channels(["candles", "candles:7"]).unwrap()),
            [60]
        );
        assert_eq!(
            following.remove(&parse_channels(["candles:300", "candles:86400"]).unwrap()),
            [300, 86_400]
        );
        assert_eq!(following, fixed(TRADES), "no candles: the bit goes too");
    }

    #[test]
    fn orders_are_followed_all_or_by_name_prefix() {
        let named = channels_of(Some("channels=orders:mm1-,orders%3Amm1-,orders:x/y")).unwrap();
        let name = |text: &str| ClientOrderId::parse(text).unwrap();
        assert_eq!(named.prefixes, [name("mm1-"), name("x/y")]);
        assert_eq!(named.names(), ["orders:mm1-", "orders:x/y"]);
        assert!(named.follows_orders());
        assert!(named.follows_order(Some(&name("mm1-77")), &[]));
        assert!(named.follows_order(Some(&name("x/y")), &[]));
        assert!(!named.follows_order(Some(&name("mm2-1")), &[]));
        assert!(
            !named.follows_order(None, &[]),
            "an unnamed order has no prefix"
        );
        let all = parse_channels(["orders"]).unwrap();
        assert!(all.follows_order(None, &[]) && all.follows_order(Some(&name("z")), &[]));
        // A channel whose snapshot has not come follows nothing yet; the
        // others still do.
        let waiting_x = [Some(name("x/y"))];
        assert!(!named.follows_order(Some(&name("x/y")), &waiting_x));
        assert!(named.follows_order(Some(&name("mm1-77")), &waiting_x));
        assert!(!all.follows_order(Some(&name("z")), &[None]));
        let mut both = all.clone();
        both.add(&named);
        assert!(both.follows_order(Some(&name("mm1-7")), &[None]));
        assert!(!both.follows_order(Some(&name("z")), &[None]));
        let mut following = named.clone();
        following.remove(&parse_channels(["orders:mm1-", "orders:x/y"]).unwrap());
        assert!(!following.follows_orders());
        for bad in [
            "orders:",
            "orders:a b",
            "orders:0123456789012345678901234567890123456",
        ] {
            let why = parse_channels([bad]).unwrap_err();
            assert!(why.contains("orders:P takes a prefix"), "{bad}: {why}");
        }
        assert_eq!(
            parse_channels(["orders:\u{0}"]).unwrap_err(),
            r#""orders:\u0000": orders:P takes a prefix of client_order_ids, 1 to 36 letters, digits, '.', ':', '/', '_' or '-'"#
        );
        assert_eq!(
            parse_channels(["trades\n"]).unwrap_err(),
            r#"unknown channel "trades\n"; the channels are trades, book, snapshot, bbo, candles and orders"#
        );
        let many: Vec<String> = (0..17).map(|i| format!("orders:p{i}")).collect();
        let refused = parse_channels(many.iter().map(String::as_str)).unwrap_err();
        assert_eq!(refused, "at most 16 order prefixes a connection");
    }

    #[test]
    fn depth_is_checked() {
        assert_eq!(depth_of(None, 5).unwrap(), 5);
        assert_eq!(depth_of(Some("depth=0"), 5).unwrap(), 0);
        assert_eq!(depth_of(Some("x=1&depth=1000"), 5).unwrap(), 1000);
        assert_eq!(depth_of(Some("depth=1001"), 5).unwrap_err().status, 400);
        assert_eq!(depth_of(Some("depth=-1"), 5).unwrap_err().status, 400);
    }

    #[test]
    fn an_error_frame_says_its_type_first_as_every_message_does() {
        let frame = error_frame("unknown op \"x\"");
        // A short text frame: two bytes of header, then the text.
        assert_eq!(
            std::str::from_utf8(&frame[2..]).unwrap(),
            r#"{"type":"error","detail":"unknown op \"x\""}"#
        );
    }
}
