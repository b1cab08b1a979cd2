//! A second copy of the book, kept on its own thread by re-applying every
//! accepted command from the output ring, so that big reads (`GET /orders`
//! on a million orders) are built here and never hold the matching thread.
//!
//! A `GET /orders` travels as a barrier through the matching thread; when
//! the replica reaches it, its book is exactly the book as of that request,
//! so the listing is consistent with everything answered before it.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;

use crate::api::Wire;
use crate::engine::{Command, Event, EventSink, OrderBook, Side};
use crate::matching::{BarrierPurpose, Output};
use crate::ring::{Subscriber, WaitResult, Wake};

/// A finished `GET /orders` body for the front.
#[derive(Debug)]
pub struct OrdersListing {
    /// The barrier ticket of the request.
    pub ticket: u64,
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

/// Runs the replica on a thread named `replica`. It applies a command once
/// the matching thread's outcome shows it was not rejected (so the copy
/// needs no history of finished orders to agree), answers `Orders`
/// barriers through `listings`, waking the front with `wake`, and returns
/// its book when the output ring closes.
pub fn spawn(
    mut book: OrderBook,
    mut outputs: Subscriber<Output>,
    wire: Wire,
    listings: Sender<OrdersListing>,
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
                    Output::Barrier(barrier) if barrier.purpose == BarrierPurpose::Orders => {
                        let body = orders_json(&book, &wire);
                        // The front may be gone at shutdown; nothing to answer then.
                        let _ = listings.send(OrdersListing {
                            ticket: barrier.ticket,
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
