//! Which order each `client_order_id` names, for as long as the service
//! knows the order: while it rests, and once finished while the replica's
//! bounded history still keeps it. A name is taken by one order at a time,
//! so a place reusing it then is refused (409), and a retried place whose
//! answer was lost cannot place twice.
//!
//! Two copies are kept. The front's ([`FrontClientIds`]) refuses reused
//! names and turns a name into an order id for `GET`, `PUT` and `DELETE
//! /order?client_order_id=`. The replica's ([`ReplicaClientIds`]) shows
//! the name with the order and writes it to the state file; the replica
//! alone sees orders leave the history, and reports each named one back,
//! which frees the name at the front. The front frees a name at once when
//! its place is rejected (the replica never keeps a rejected place).
//! The front binds a name before the replica learns it and frees it only
//! after the replica has let go, so the front never takes a name the
//! replica still shows.
//!
//! The engine never sees names: a place's name travels from the front to
//! the replica on a channel, in the order the places are staged on the
//! command ring, and each one is sent before its place is published, so
//! the replica, reading the ring in the same order, finds it waiting.

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender};

use crate::api::ClientOrderId;
use crate::engine::hash::FoldBuildHasher;
use crate::engine::{OrderBook, OrderId};

/// Names and the orders they name, both ways.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientIds {
    // Names are the client's choice: the default (keyed) hasher keeps a
    // client from choosing names that collide.
    by_name: HashMap<ClientOrderId, OrderId>,
    // Order ids are the front's random UUIDs: the engine's cheap hash serves.
    by_order: HashMap<OrderId, ClientOrderId, FoldBuildHasher>,
}

impl ClientIds {
    /// Names `order` `name`, unless `name` already names an order: then
    /// that order's id.
    pub fn bind(&mut self, order: OrderId, name: ClientOrderId) -> Result<(), OrderId> {
        if let Some(&taken) = self.by_name.get(&name) {
            return Err(taken);
        }
        self.by_name.insert(name, order);
        self.by_order.insert(order, name);
        Ok(())
    }

    /// The order `name` names.
    pub fn order_named(&self, name: &ClientOrderId) -> Option<OrderId> {
        self.by_name.get(name).copied()
    }

    /// The name of `order`, if it has one.
    pub fn name_of(&self, order: OrderId) -> Option<&ClientOrderId> {
        if self.by_order.is_empty() {
            return None;
        }
        self.by_order.get(&order)
    }

    /// Frees the name of `order`; true if it had one.
    pub fn forget(&mut self, order: OrderId) -> bool {
        match self.by_order.remove(&order) {
            Some(name) => {
                self.by_name.remove(&name);
                true
            }
            None => false,
        }
    }

    /// Follows a command `book` (with
    /// [`log_evictions`](OrderBook::log_evictions)) has just applied:
    /// names the order of an accepted place that was given a name
    /// (`placed`), then frees the names of the orders the book stopped
    /// knowing, telling `freed` of each. In that order, so an order that
    /// finished at once in a book without a history is freed too.
    pub fn follow(
        &mut self,
        book: &mut OrderBook,
        placed: Option<(OrderId, ClientOrderId)>,
        mut freed: impl FnMut(OrderId),
    ) {
        if let Some((order, name)) = placed {
            // Free here: the front takes a name only once the replica let go.
            let _ = self.bind(order, name);
        }
        for order in book.take_evicted() {
            if self.forget(order) {
                freed(order);
            }
        }
    }

    /// Keeps only the names of the orders `known` says are known.
    pub fn retain(&mut self, known: impl Fn(OrderId) -> bool) {
        self.by_order.retain(|&order, _| known(order));
        self.by_name.retain(|_, order| known(*order));
    }

    /// How many names are taken.
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Whether no name is taken.
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }

    /// Every (order, name) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (OrderId, &ClientOrderId)> {
        self.by_order.iter().map(|(&order, name)| (order, name))
    }
}

/// The front's copy, with its ends of the two channels to the replica.
pub struct FrontClientIds {
    ids: ClientIds,
    named: Sender<(OrderId, ClientOrderId)>,
    freed: Receiver<OrderId>,
}

/// The replica's copy, with its ends of the two channels to the front.
pub struct ReplicaClientIds {
    ids: ClientIds,
    named: Receiver<(OrderId, ClientOrderId)>,
    /// A name read off the channel whose place has not come yet.
    next: Option<(OrderId, ClientOrderId)>,
    freed: Sender<OrderId>,
}

/// The two copies, both starting from `ids` (the names recovered at start).
pub fn link(ids: ClientIds) -> (FrontClientIds, ReplicaClientIds) {
    let (named_tx, named_rx) = crossbeam_channel::unbounded();
    let (freed_tx, freed_rx) = crossbeam_channel::unbounded();
    let front = FrontClientIds {
        ids: ids.clone(),
        named: named_tx,
        freed: freed_rx,
    };
    let replica = ReplicaClientIds {
        ids,
        named: named_rx,
        next: None,
        freed: freed_tx,
    };
    (front, replica)
}

impl FrontClientIds {
    /// The names as the front holds them.
    pub fn ids(&self) -> &ClientIds {
        &self.ids
    }

    /// Whether `name` is free to name a new order (after the names the
    /// replica has freed so far).
    pub fn taken_by(&mut self, name: &ClientOrderId) -> Option<OrderId> {
        self.take_freed();
        self.ids.order_named(name)
    }

    /// Names `order`, whose place has just been staged on the command
    /// ring (not yet published), and tells the replica. `name` must be
    /// free ([`taken_by`](Self::taken_by)).
    pub fn bind_staged(&mut self, order: OrderId, name: ClientOrderId) {
        let bound = self.ids.bind(order, name);
        debug_assert!(bound.is_ok(), "a name bound twice");
        // The replica outlives the front; a send fails only at shutdown.
        let _ = self.named.send((order, name));
    }

    /// Frees the name of `order`, a place the engine rejected.
    pub fn rejected(&mut self, order: OrderId) {
        self.ids.forget(order);
    }

    /// Frees the names of the orders the replica no longer keeps.
    fn take_freed(&mut self) {
        while let Ok(order) = self.freed.try_recv() {
            self.ids.forget(order);
        }
    }
}

impl ReplicaClientIds {
    /// The names as the replica holds them.
    pub fn ids(&self) -> &ClientIds {
        &self.ids
    }

    /// The name of the place of `order` the replica is reading, if the
    /// front sent one; call once for every place, in ring order.
    pub fn name_for_place(&mut self, order: OrderId) -> Option<ClientOrderId> {
        if self.next.is_none() {
            self.next = self.named.try_recv().ok();
        }
        match self.next {
            Some((named, name)) if named == order => {
                self.next = None;
                Some(name)
            }
            _ => None,
        }
    }

    /// Follows a command the replica's `book` has just applied (see
    /// [`ClientIds::follow`]), freeing at the front the names of the
    /// orders the book no longer keeps.
    pub fn applied(&mut self, book: &mut OrderBook, placed: Option<(OrderId, ClientOrderId)>) {
        let freed = &self.freed;
        self.ids.follow(book, placed, |order| {
            // The front may be gone at shutdown; nothing to free then.
            let _ = freed.send(order);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{BookConfig, Command, CommandKind, Event, Side, TimeInForce};

    fn name(text: &str) -> ClientOrderId {
        ClientOrderId::parse(text).unwrap()
    }

    #[test]
    fn a_name_names_one_order_until_it_is_forgotten() {
        let mut ids = ClientIds::default();
        assert_eq!(ids.bind(1, name("a")), Ok(()));
        assert_eq!(ids.bind(2, name("a")), Err(1));
        assert_eq!(ids.bind(2, name("b")), Ok(()));
        assert_eq!(ids.order_named(&name("a")), Some(1));
        assert_eq!(ids.name_of(2), Some(&name("b")));
        assert!(ids.forget(1));
        assert!(!ids.forget(1));
        assert_eq!(ids.order_named(&name("a")), None);
        assert_eq!(ids.bind(3, name("a")), Ok(()));
        ids.retain(|order| order == 3);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.name_of(2), None);
    }

    #[test]
    fn the_replica_finds_each_places_name_and_frees_it_at_the_front_once_forgotten() {
        let (mut front, mut replica) = link(ClientIds::default());
        front.bind_staged(10, name("x"));
        front.bind_staged(12, name("y"));
        // Place 11 had no name; its turn does not consume 12's.
        assert_eq!(replica.name_for_place(10), Some(name("x")));
        assert_eq!(replica.name_for_place(11), None);
        assert_eq!(replica.name_for_place(12), Some(name("y")));
        // A book keeping one finished order: 10 is cancelled, then 12's
        // cancel pushes 10 out of its history.
        let mut book = OrderBook::new(BookConfig {
            finished_capacity: 1,
            ..BookConfig::default()
        });
        book.log_evictions();
        let apply = |book: &mut OrderBook, kind| {
            book.apply(&Command { ts: 1, kind }, &mut Vec::<Event>::new());
        };
        for id in [10, 12] {
            let place = CommandKind::Place {
                id,
                side: Side::Buy,
                price: 5,
                quantity: 1,
                tif: TimeInForce::GoodTillCancel,
            };
            apply(&mut book, place);
        }
        replica.applied(&mut book, Some((10, name("x"))));
        replica.applied(&mut book, Some((12, name("y"))));
        apply(&mut book, CommandKind::Cancel { id: 10 });
        replica.applied(&mut book, None);
        assert_eq!(replica.ids().name_of(10), Some(&name("x")));
        assert_eq!(front.taken_by(&name("x")), Some(10));
        apply(&mut book, CommandKind::Cancel { id: 12 });
        replica.applied(&mut book, None);
        assert_eq!(replica.ids().name_of(10), None);
        assert_eq!(replica.ids().name_of(12), Some(&name("y")));
        assert_eq!(front.taken_by(&name("x")), None);
        assert_eq!(front.taken_by(&name("y")), Some(12));
        front.rejected(12);
        assert_eq!(front.taken_by(&name("y")), None);
    }
}
