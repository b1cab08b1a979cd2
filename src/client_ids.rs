//! Which order each `client_order_id` names, for as long as the service
//! knows the order: while it rests, and once finished while the replica's
//! bounded history still keeps it. A name is taken by one order at a time,
//! so a place reusing it then is refused (409), and a retried place whose
//! answer was lost cannot place twice.
//!
//! Each direction is kept by the thread that reads it. The front's
//! ([`FrontClientIds`], name → order) refuses reused names and turns a name
//! into an order id for `GET`, `PUT` and `DELETE /order?client_order_id=`.
//! The replica's ([`ReplicaClientIds`], order → name: [`ClientIds`]) shows
//! the name with the order and writes it to the state file; the replica
//! alone sees orders leave the history, and reports each named one back,
//! which frees the name at the front. The front frees a name at once when
//! its place is rejected (the replica never keeps a rejected place). The
//! front claims a name before the replica learns it and frees it only
//! after the replica has let go, so the front never takes a name the
//! replica still shows.
//!
//! The engine never sees names: a place's name travels from the front to
//! the replica on a channel, in the order the places are staged on the
//! command ring, all of one publish's names in one message sent just
//! before the ring is published, so the replica, reading the ring in the
//! same order, finds each waiting. (One message a name cost the front 5%
//! and the replica as much again in channel sends and receives, under
//! batches of named places.)
//!
//! The maps grow as names come. Sizing them up front for the configured
//! orders and history was tried and undone: a hash table spreads its
//! entries over all its pages, so the whole presized table (256 MB each
//! at the defaults) was resident after 400,000 names.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use crossbeam_channel::{Receiver, Sender};

use crate::api::ClientOrderId;
use crate::engine::hash::FoldBuildHasher;
use crate::engine::{OrderBook, OrderId, OrderView, Side};

/// The names of the orders that have one: order → name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientIds {
    // Order ids are the front's random UUIDs: the engine's cheap hash serves.
    by_order: HashMap<OrderId, ClientOrderId, FoldBuildHasher>,
}

impl ClientIds {
    /// Names `order` `name` (the front has checked the name is free).
    pub fn bind(&mut self, order: OrderId, name: ClientOrderId) {
        self.by_order.insert(order, name);
    }

    /// The name of `order`, if it has one.
    pub fn name_of(&self, order: OrderId) -> Option<&ClientOrderId> {
        if self.by_order.is_empty() {
            return None;
        }
        self.by_order.get(&order)
    }

    /// Whether `order` is among those `prefix` picks: every order without
    /// one, else those whose name starts with it.
    fn picks(&self, prefix: Option<&ClientOrderId>, order: OrderId) -> bool {
        prefix.is_none_or(|prefix| self.name_of(order).is_some_and(|n| n.starts_with(prefix)))
    }

    /// The resting orders of `book` (of `only`'s side, if given) that
    /// `prefix` picks: bids then asks, best first, in time priority
    /// within a level, the order `DELETE /orders` cancels in.
    pub fn resting_picked<'a>(
        &'a self,
        book: &'a OrderBook,
        only: Option<Side>,
        prefix: Option<&'a ClientOrderId>,
    ) -> impl Iterator<Item = OrderView> + 'a {
        [Side::Buy, Side::Sell]
            .into_iter()
            .filter(move |&side| only.is_none_or(|only| only == side))
            .flat_map(move |side| book.resting(side))
            .filter(move |order| self.picks(prefix, order.id))
    }

    /// Frees the name of `order`, returning it.
    pub fn forget(&mut self, order: OrderId) -> Option<ClientOrderId> {
        self.by_order.remove(&order)
    }

    /// Each named order and its name, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (OrderId, ClientOrderId)> + '_ {
        self.by_order.iter().map(|(&order, &name)| (order, name))
    }

    /// Keeps only the names of the orders `known` says are known.
    pub fn retain(&mut self, known: impl Fn(OrderId) -> bool) {
        self.by_order.retain(|&order, _| known(order));
    }

    /// How many orders have a name.
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Whether no order has a name.
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
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
        mut freed: impl FnMut(OrderId, ClientOrderId),
    ) {
        if let Some((order, name)) = placed {
            self.bind(order, name);
        }
        for order in book.take_evicted() {
            if let Some(name) = self.forget(order) {
                freed(order, name);
            }
        }
    }
}

/// The front's copy: name → order, with its ends of the two channels to
/// the replica.
pub struct FrontClientIds {
    by_name: HashMap<ClientOrderId, OrderId>,
    /// Names bound to places staged since the last publish.
    staged: Vec<(OrderId, ClientOrderId)>,
    named: Sender<Vec<(OrderId, ClientOrderId)>>,
    freed: Receiver<(OrderId, ClientOrderId)>,
}

/// The replica's copy, with its ends of the two channels to the front.
pub struct ReplicaClientIds {
    ids: ClientIds,
    named: Receiver<Vec<(OrderId, ClientOrderId)>>,
    /// Names read off the channel whose places have not come yet, in
    /// ring order.
    waiting: VecDeque<(OrderId, ClientOrderId)>,
    freed: Sender<(OrderId, ClientOrderId)>,
}

/// The two copies, both starting from `ids` (the names recovered at start).
pub fn link(ids: ClientIds) -> (FrontClientIds, ReplicaClientIds) {
    let (named_tx, named_rx) = crossbeam_channel::unbounded();
    let (freed_tx, freed_rx) = crossbeam_channel::unbounded();
    let by_name = ids
        .by_order
        .iter()
        .map(|(&order, &name)| (name, order))
        .collect();
    let front = FrontClientIds {
        by_name,
        staged: Vec::new(),
        named: named_tx,
        freed: freed_rx,
    };
    let replica = ReplicaClientIds {
        ids,
        named: named_rx,
        waiting: VecDeque::new(),
        freed: freed_tx,
    };
    (front, replica)
}

impl FrontClientIds {
    /// Takes the names the replica has freed so far: once a request, before
    /// its names are claimed (a channel receive for each name took a tenth
    /// of the front under named batches).
    pub fn take_freed(&mut self) {
        while let Ok((order, name)) = self.freed.try_recv() {
            self.free(order, name);
        }
    }

    /// The order `name` names now, if any.
    pub fn taken_by(&mut self, name: &ClientOrderId) -> Option<OrderId> {
        self.take_freed();
        self.named(name)
    }

    /// The order `name` named as of the last [`take_freed`](Self::take_freed).
    pub fn named(&self, name: &ClientOrderId) -> Option<OrderId> {
        self.by_name.get(name).copied()
    }

    /// Names `order` `name` if the name is free, or gives the order it
    /// names. One lookup checks and binds (checking, then binding when
    /// the place was staged, cost two: a third of what names cost the
    /// front). A place that is then not staged (429, 503) gives it back
    /// with [`free`](Self::free).
    pub fn claim(&mut self, name: ClientOrderId, order: OrderId) -> Result<(), OrderId> {
        match self.by_name.entry(name) {
            Entry::Occupied(taken) => Err(*taken.get()),
            Entry::Vacant(free) => {
                free.insert(order);
                Ok(())
            }
        }
    }

    /// Tells the replica, at the next [`send_staged`](Self::send_staged),
    /// that the place of `order`, just staged on the command ring, is
    /// named `name` (claimed).
    pub fn staged(&mut self, order: OrderId, name: ClientOrderId) {
        self.staged.push((order, name));
    }

    /// Sends the replica the names of the places staged since the last
    /// call; call just before the command ring is published.
    pub fn send_staged(&mut self) {
        if !self.staged.is_empty() {
            // The replica outlives the front; a send fails only at shutdown.
            let _ = self.named.send(std::mem::take(&mut self.staged));
        }
    }

    /// Frees `name` if it still names `order` (a place the engine
    /// rejected, or an order the replica no longer keeps).
    pub fn free(&mut self, order: OrderId, name: ClientOrderId) {
        if self.by_name.get(&name) == Some(&order) {
            self.by_name.remove(&name);
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
        if self.waiting.is_empty() {
            self.waiting
                .extend(self.named.try_recv().unwrap_or_default());
        }
        match self.waiting.front() {
            Some(&(named, name)) if named == order => {
                self.waiting.pop_front();
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
        self.ids.follow(book, placed, |order, name| {
            // The front may be gone at shutdown; nothing to free then.
            let _ = freed.send((order, name));
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
    fn an_order_keeps_its_name_until_it_is_forgotten() {
        let mut ids = ClientIds::default();
        ids.bind(1, name("a"));
        ids.bind(2, name("b"));
        assert_eq!(ids.name_of(2), Some(&name("b")));
        assert_eq!(ids.forget(1), Some(name("a")));
        assert_eq!(ids.forget(1), None);
        ids.bind(3, name("c"));
        ids.retain(|order| order == 3);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.name_of(2), None);
    }

    #[test]
    fn the_copies_start_alike_and_the_front_frees_a_name_only_for_its_order() {
        let mut recovered = ClientIds::default();
        recovered.bind(7, name("r"));
        let (mut front, replica) = link(recovered);
        assert_eq!(front.taken_by(&name("r")), Some(7));
        assert_eq!(replica.ids().name_of(7), Some(&name("r")));
        // A report about another order does not free the name.
        front.free(8, name("r"));
        assert_eq!(front.taken_by(&name("r")), Some(7));
        front.free(7, name("r"));
        assert_eq!(front.taken_by(&name("r")), None);
    }

    #[test]
    fn the_replica_finds_each_places_name_and_frees_it_at_the_front_once_forgotten() {
        let (mut front, mut replica) = link(ClientIds::default());
        for (order, text) in [(10, "x"), (12, "y")] {
            assert_eq!(front.claim(name(text), order), Ok(()));
            front.staged(order, name(text));
        }
        assert_eq!(front.claim(name("x"), 13), Err(10));
        // Nothing reaches the replica before the publish.
        assert_eq!(replica.name_for_place(10), None);
        front.send_staged();
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
    }
}
