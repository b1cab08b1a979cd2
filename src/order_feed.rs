//! The `orders` channel of the WebSocket feed: each change of an order
//! (placed, traded as maker or taker, modified, cancelled), as
//! `GET /order/{id}` would show it right after, for clients that follow
//! their orders without polling.
//!
//! The replica builds these messages: its book is the one that answers
//! `GET /order/{id}`, and it holds the orders' names. For a command it
//! needs each order's state after it. The command's own order (the place's
//! taker, the modified or cancelled order) is in the command's outcome. A
//! maker is not: its state after the command is its state before plus its
//! fills, and the makers are known before the replica applies the
//! command, from the matching thread's trade events that precede the
//! outcome on the output ring. A cancel-all's orders are the book's
//! resting orders before it. So no history is needed: a filled maker
//! shows even with `--finished-orders 0`.
//!
//! Messages cost the replica nothing while nobody follows the channel: the
//! front counts the connections that do, and the replica reads that count
//! once a command. They reach the front through their own bounded channel
//! (a full one makes the replica wait: back-pressure, as the publisher's).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::api::{self, ClientOrderId, Wire};
use crate::client_ids::ClientIds;
use crate::engine::{
    Command, CommandKind, Event, OrderBook, OrderId, OrderStatus, OrderView, Side,
};
use crate::listing_memory::{Charge, ListingMemory};
use crate::net::ws;
use crate::publisher;
use crate::ring::Wake;

/// What the replica sends the front, in stream order.
#[derive(Debug)]
pub enum OrderFrame {
    /// One `order` frame per change, with the order's `client_order_id`
    /// (connections may follow only names with a prefix).
    Change {
        /// The frame.
        frame: Arc<[u8]>,
        /// The order's name, if it has one.
        name: Option<ClientOrderId>,
    },
    /// The `orders_snapshot` frame a connection's barrier asked for.
    Snapshot {
        /// The barrier's ticket, which the front maps to the connection.
        ticket: u64,
        /// The frame.
        frame: Arc<[u8]>,
        /// Its bytes, counted against `--max-listing-bytes` until written.
        charge: Charge,
    },
    /// The snapshot for this ticket was large and listings not yet read
    /// held `--max-listing-bytes`: it was dropped, not sent.
    SnapshotRefused {
        /// The barrier's ticket.
        ticket: u64,
    },
    /// Every change of the commands before the `FeedEnd` barrier was
    /// sent before this.
    End,
}

/// The front's end: the frames, and the count of followers it keeps.
pub struct OrderFeedFront {
    /// Connections following the channel (the front counts them).
    pub followers: Arc<AtomicUsize>,
    /// The frames, in command order.
    pub frames: Receiver<OrderFrame>,
}

/// The replica's end.
pub struct OrderFeed {
    followers: Arc<AtomicUsize>,
    out: Sender<OrderFrame>,
    /// The makers the pending command met, from the output ring.
    makers: Vec<OrderId>,
    /// Orders as they stood before the command: its makers, or a
    /// cancel-all's resting orders.
    before: Vec<OrderView>,
    text: String,
    /// A frame was sent since the front was last woken.
    sent: bool,
    /// Wakes the front's loop.
    wake: Option<Arc<dyn Wake>>,
    /// Where snapshots are counted (`None`: they are not).
    memory: Option<Arc<ListingMemory>>,
}

/// The two ends, `capacity` frames apart.
pub fn link(capacity: usize) -> (OrderFeed, OrderFeedFront) {
    let followers = Arc::new(AtomicUsize::new(0));
    let (out, frames) = crossbeam_channel::bounded(capacity);
    let feed = OrderFeed {
        followers: followers.clone(),
        out,
        makers: Vec::new(),
        before: Vec::new(),
        text: String::new(),
        sent: false,
        wake: None,
        memory: None,
    };
    (feed, OrderFeedFront { followers, frames })
}

impl OrderFeed {
    /// The pending command traded with `maker` (a trade event read off the
    /// output ring before its outcome).
    pub fn met(&mut self, maker: OrderId) {
        // One order's trades in a command are consecutive.
        if self.makers.last() != Some(&maker) {
            self.makers.push(maker);
        }
    }

    /// Forgets the pending command's makers (it was rejected, or applied).
    pub fn clear(&mut self) {
        self.makers.clear();
        self.before.clear();
    }

    /// Before the replica applies `command` to `book`: keeps the state of
    /// the orders it will change that its outcome will not show. False
    /// when nobody follows the channel (nothing to do after either).
    pub fn before_apply(&mut self, book: &OrderBook, command: &Command) -> bool {
        self.before.clear();
        if self.followers.load(Ordering::Relaxed) == 0 {
            return false;
        }
        match command.kind {
            CommandKind::CancelAll { side: only } => {
                for side in [Side::Buy, Side::Sell] {
                    if only.is_none_or(|only| only == side) {
                        self.before.extend(book.resting(side));
                    }
                }
            }
            _ => {
                let makers = self.makers.iter().filter_map(|&id| book.order(id));
                self.before.extend(makers);
            }
        }
        true
    }

    /// After the replica applied the command (its `events`, at feed
    /// sequence `feed_seq`): one `order` frame per order it changed, the
    /// makers first in the order they traded, then its own order. `name`
    /// is a place's `client_order_id`, which `names` does not hold yet.
    pub fn after_apply(
        &mut self,
        events: &[Event],
        names: &ClientIds,
        name: Option<ClientOrderId>,
        feed_seq: u64,
        wire: &Wire,
    ) {
        let mut before = std::mem::take(&mut self.before);
        let cancelled_all = matches!(events.last(), Some(Event::CancelledAll { .. }));
        for order in &mut before {
            if cancelled_all {
                order.status = OrderStatus::Cancelled;
            } else {
                add_fills(order, events);
            }
        }
        let why = if cancelled_all { "cancelled" } else { "traded" };
        for order in &before {
            self.send(why, order, names.name_of(order.id), feed_seq, wire);
        }
        self.before = before;
        let own = events.iter().rev().find_map(|event| match event {
            Event::Accepted(order) => Some(("placed", *order)),
            Event::Modified(order) => Some(("modified", *order)),
            Event::Cancelled(order) => Some(("cancelled", *order)),
            _ => None,
        });
        if let Some((why, order)) = own {
            let name = name.or_else(|| names.name_of(order.id).copied());
            self.send(why, &order, name.as_ref(), feed_seq, wire);
        }
        self.clear();
    }

    /// Frames sent wake the front's loop through `wake`.
    pub fn wake_with(&mut self, wake: Arc<dyn Wake>) {
        self.wake = Some(wake);
    }

    /// Counts the snapshots built against `memory`'s bound, as listings.
    pub fn count_snapshots_in(&mut self, memory: Arc<ListingMemory>) {
        self.memory = Some(memory);
    }

    /// Wakes the front if frames went since it was last woken.
    pub fn wake_if_sent(&mut self) {
        if std::mem::take(&mut self.sent) {
            self.wake_front();
        }
    }

    fn wake_front(&self) {
        if let Some(wake) = &self.wake {
            wake.wake();
        }
    }

    /// Sends the frame of `order` changed by `event` (`placed`, `traded`,
    /// `modified` or `cancelled`).
    fn send(
        &mut self,
        event: &str,
        order: &OrderView,
        name: Option<&ClientOrderId>,
        seq: u64,
        wire: &Wire,
    ) {
        self.text.clear();
        self.text.push_str(&format!(
            "{{\"type\":\"order\",\"seq\":{seq},\"event\":\"{event}\",\"order\":"
        ));
        wire.fetched(&mut self.text, order);
        api::client_id_field(&mut self.text, name);
        self.text.push('}');
        let frame = OrderFrame::Change {
            frame: ws::text_frame(self.text.as_bytes()),
            name: name.copied(),
        };
        self.push(frame);
    }

    /// At an `OrderSnapshot` barrier (ticket `ticket`, at feed sequence
    /// `feed_seq`): the resting orders of `book` named with `prefix` (all
    /// without one), bids then asks, best first, as one `orders_snapshot`
    /// frame for the connection that asked.
    pub fn snapshot(
        &mut self,
        ticket: u64,
        book: &OrderBook,
        names: &ClientIds,
        prefix: Option<&ClientOrderId>,
        feed_seq: u64,
        wire: &Wire,
    ) {
        self.text.clear();
        let channel = match prefix {
            Some(prefix) => format!("orders:{}", prefix.as_str()),
            None => "orders".to_owned(),
        };
        self.text.push_str(&format!(
            "{{\"type\":\"orders_snapshot\",\"seq\":{feed_seq},\"channel\":\"{channel}\",\"orders\":["
        ));
        for (i, order) in names.resting_picked(book, None, prefix).enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            wire.fetched(&mut self.text, &order);
            api::client_id_field(&mut self.text, names.name_of(order.id));
        }
        self.text.push_str("]}");
        let frame = ws::text_frame(self.text.as_bytes());
        let charge = match &self.memory {
            Some(memory) => memory.charge(frame.len()),
            None => Some(Charge::default()),
        };
        self.push(match charge {
            Some(charge) => OrderFrame::Snapshot {
                ticket,
                frame,
                charge,
            },
            None => OrderFrame::SnapshotRefused { ticket },
        });
    }

    /// At the `FeedEnd` barrier: the front has every change before it.
    pub fn end(&mut self) {
        self.push(OrderFrame::End);
    }

    /// Sends a frame to the front (a full channel makes this wait).
    fn push(&mut self, frame: OrderFrame) {
        publisher::send_to_front(&self.out, frame, || self.wake_front());
        self.sent = true;
    }
}

/// A resting maker as its fills among `events` leave it.
fn add_fills(maker: &mut OrderView, events: &[Event]) {
    for event in events {
        if let Event::Trade(trade) = event {
            if trade.maker == maker.id {
                maker.filled += trade.quantity;
                maker.notional += u128::from(trade.quantity) * u128::from(trade.price);
            }
        }
    }
    maker.status = match maker.filled == maker.quantity {
        true => OrderStatus::Filled,
        false => OrderStatus::PartiallyFilled,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{BookConfig, TimeInForce, MARKET};

    fn wire() -> Wire {
        Wire::default_for_tests()
    }

    fn place(id: OrderId, side: Side, price: u64, quantity: u64, tif: TimeInForce) -> Command {
        Command {
            ts: id as u64,
            kind: CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif,
            },
        }
    }

    /// The `(event, order)` of each frame waiting in `frames`.
    fn orders_sent(frames: &Receiver<OrderFrame>) -> Vec<(serde_json::Value, serde_json::Value)> {
        frames
            .try_iter()
            .map(|sent| {
                let OrderFrame::Change { frame, .. } = sent else {
                    panic!("a snapshot nobody asked for");
                };
                // A server text frame under 126 bytes has a 2-byte header,
                // under 64 KiB a 4-byte one.
                let start = if frame[1] == 126 { 4 } else { 2 };
                let message: serde_json::Value = serde_json::from_slice(&frame[start..]).unwrap();
                (message["event"].clone(), message["order"].clone())
            })
            .collect()
    }

    /// Applies `command` as the service does: the matching thread's book
    /// first (its trade events tell the feed the makers), then the
    /// replica's, whose changes are sent.
    fn apply(
        (matching, replica): (&mut OrderBook, &mut OrderBook),
        feed: &mut OrderFeed,
        command: &Command,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        matching.apply(command, &mut events);
        for event in &events {
            if let Event::Trade(trade) = event {
                feed.met(trade.maker);
            }
        }
        events.clear();
        let followed = feed.before_apply(replica, command);
        replica.apply(command, &mut events);
        if followed {
            feed.after_apply(&events, &ClientIds::default(), None, 7, &wire());
        }
        events
    }

    #[test]
    fn each_changed_order_is_sent_as_the_replicas_book_then_shows_it() {
        let config = BookConfig {
            finished_capacity: 16,
            ..BookConfig::default()
        };
        let (mut matching, mut replica) = (OrderBook::new(config), OrderBook::new(config));
        let (mut feed, front) = link(64);
        let gtc = TimeInForce::GoodTillCancel;
        // Three sells at 100, 101 and 101; nobody follows yet: nothing sent.
        for (id, price, quantity) in [(1, 10_000, 4), (2, 10_100, 5), (3, 10_100, 6)] {
            let command = place(id, Side::Sell, price, quantity, gtc);
            apply((&mut matching, &mut replica), &mut feed, &command);
        }
        assert!(orders_sent(&front.frames).is_empty());

        front.followers.fetch_add(1, Ordering::Relaxed);
        // A market buy of 12 fills 1 and 2 whole and 3 in part.
        let market = place(9, Side::Buy, MARKET, 12, TimeInForce::ImmediateOrCancel);
        apply((&mut matching, &mut replica), &mut feed, &market);
        let (events, sent): (Vec<_>, Vec<_>) = orders_sent(&front.frames).into_iter().unzip();
        assert_eq!(events, ["traded", "traded", "traded", "placed"]);
        let shown = |book: &OrderBook, id: OrderId| {
            let mut text = String::new();
            wire().fetched(&mut text, &book.order(id).expect("kept"));
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        };
        let expected = [1, 2, 3, 9].map(|id| shown(&replica, id));
        assert_eq!(sent, expected);
        assert_eq!(sent[2]["status"], "partially filled");
        assert_eq!(sent[2]["traded_quantity"], 3);
        assert_eq!(
            (&sent[3]["status"], &sent[3]["traded_quantity"]),
            (&"filled".into(), &12.into())
        );

        // A cancel-all of the buys takes none; of both, order 3.
        let cancel_all = |side| Command {
            ts: 20,
            kind: CommandKind::CancelAll { side },
        };
        let command = cancel_all(Some(Side::Buy));
        apply((&mut matching, &mut replica), &mut feed, &command);
        assert!(orders_sent(&front.frames).is_empty());
        apply((&mut matching, &mut replica), &mut feed, &cancel_all(None));
        let (events, sent): (Vec<_>, Vec<_>) = orders_sent(&front.frames).into_iter().unzip();
        assert_eq!(
            (events, sent),
            (vec!["cancelled".into()], vec![shown(&replica, 3)])
        );
        assert_eq!(shown(&replica, 3)["status"], "cancelled");
    }
}
