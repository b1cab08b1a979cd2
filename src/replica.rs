//! A second copy of the book, kept on its own thread by re-applying every
//! accepted command from the output ring, so that reads never hold the
//! matching thread: big ones (`GET /orders` on a million orders) are built
//! here, and so is `GET /order/{id}`, because this copy, not the matching
//! thread's, keeps the bounded history of finished orders.
//!
//! A read travels as a barrier through the matching thread; when the
//! replica reaches it, its book is exactly the book as of that request, so
//! the answer is consistent with everything answered before it.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;

use crate::api::{ApiError, Wire};
use crate::engine::{Command, Event, EventSink, OrderBook, OrderId, Side};
use crate::matching::{BarrierPurpose, Output};
use crate::ring::{Subscriber, WaitResult, Wake};

/// A finished answer to a read for the front.
#[derive(Debug)]
pub struct ReplicaAnswer {
    /// The barrier ticket of the request.
    pub ticket: u64,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Drops the replica's events: the matching thread already published them.
struct Discard;

impl EventSink for Discard {
    #[inline]
    fn emit(&mut self, _event: Event) {}
}

/// Writes `{"buy_orders":[...],"sell_orders":[...]}`, best price first.
pub fn orders_json(book: &OrderBook, wire: &Wire) -> Vec<u8> {
    let mut out = String::with_capacity(64 + book.resting_count() * 200);
    for (side, key) in [
        (Side::Buy, "{\"buy_orders\":["),
        (Side::Sell, "],\"sell_orders\":["),
    ] {
        out.push_str(key);
        for (i, order) in book.resting(side).enumerate() {
            if i > 0 {
                out.push(',');
            }
            wire.listed(&mut out, &order);
        }
    }
    out.push_str("]}");
    out.into_bytes()
}

/// The body of `GET /order/{id}`: the order, or 404.
fn order_json(book: &OrderBook, wire: &Wire, id: OrderId) -> (u16, Vec<u8>) {
    match book.order(id) {
        Some(order) => {
            let mut out = String::with_capacity(256);
            wire.fetched(&mut out, &order);
            (200, out.into_bytes())
        }
        None => (404, ApiError::new(404, "Order not found").body()),
    }
}

/// Runs the replica on a thread named `replica`. It applies a command once
/// the matching thread's outcome shows it was not rejected (so the copy
/// agrees with the matching thread's book whatever either keeps of finished
/// orders), answers `Orders` and `Order` barriers through `answers`, waking
/// the front with `wake`, and returns its book when the output ring closes.
pub fn spawn(
    mut book: OrderBook,
    mut outputs: Subscriber<Output>,
    wire: Wire,
    answers: Sender<ReplicaAnswer>,
    wake: Arc<dyn Wake>,
) -> io::Result<JoinHandle<OrderBook>> {
    thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let mut pending: Option<Command> = None;
            loop {
                let read = outputs.drain(usize::MAX, |output| match *output {
                    Output::Command(command) => pending = Some(command),
                    Output::Event(event) if event.is_outcome() => {
                        if let Some(command) = pending.take() {
                            if !matches!(event, Event::Rejected { .. }) {
                                book.apply(&command, &mut Discard);
                            }
                        }
                    }
                    Output::Barrier(barrier) => {
                        let (status, body) = match barrier.purpose {
                            BarrierPurpose::Orders => (200, orders_json(&book, &wire)),
                            BarrierPurpose::Order(id) => order_json(&book, &wire, id),
                            BarrierPurpose::Trades => return,
                        };
                        // The front may be gone at shutdown; nothing to answer then.
                        let _ = answers.send(ReplicaAnswer {
                            ticket: barrier.ticket,
                            status,
                            body,
                        });
                        wake.wake();
                    }
                    _ => {}
                });
                if read == 0 && outputs.wait() == WaitResult::Closed {
                    return book;
                }
            }
        })
}
