//! The real book against a deliberately naive one: sorted vectors and
//! linear scans that follow SPEC §1 word for word. Random sequences of
//! place, modify, cancel and cancel-all must give the same trades, outcomes, level
//! changes, order states and resting book after every step.

use std::collections::{BTreeMap, VecDeque};

use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, EventSink, OrderBook, OrderStatus, OrderView,
    RejectReason, Side, TimeInForce, Trade, MARKET,
};
use proptest::prelude::*;

#[path = "support/xorshift.rs"]
#[allow(dead_code)]
mod xorshift;
use xorshift::Rng;

/// The naive book: every known order in one vector, found by scanning.
struct NaiveBook {
    orders: Vec<OrderView>,
    /// Arrival stamp for time priority, parallel to `orders`.
    arrival: Vec<u64>,
    clock: u64,
    finished: VecDeque<u128>,
    finished_capacity: usize,
    last_trade_id: u64,
}

impl NaiveBook {
    fn new(finished_capacity: usize) -> Self {
        NaiveBook {
            orders: Vec::new(),
            arrival: Vec::new(),
            clock: 0,
            finished: VecDeque::new(),
            finished_capacity,
            last_trade_id: 0,
        }
    }

    fn position(&self, id: u128) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id)
    }

    /// Resting orders of a side, best price first, then earliest arrival.
    fn resting(&self, side: Side) -> Vec<OrderView> {
        let mut rows: Vec<(OrderView, u64)> = self
            .orders
            .iter()
            .zip(&self.arrival)
            .filter(|(o, _)| o.side == side && o.status.is_resting())
            .map(|(o, a)| (*o, *a))
            .collect();
        rows.sort_by(|(a, at), (b, bt)| {
            let by_price = match side {
                Side::Buy => b.price.cmp(&a.price),
                Side::Sell => a.price.cmp(&b.price),
            };
            by_price.then(at.cmp(bt))
        });
        rows.into_iter().map(|(o, _)| o).collect()
    }

    fn level_totals(&self) -> BTreeMap<(i8, u64), u64> {
        let mut totals = BTreeMap::new();
        for o in self.orders.iter().filter(|o| o.status.is_resting()) {
            *totals.entry((o.side as i8, o.price)).or_insert(0) += o.quantity - o.filled;
        }
        totals
    }

    fn finish(&mut self, id: u128) {
        self.finished.push_back(id);
        if self.finished.len() > self.finished_capacity {
            let oldest = self.finished.pop_front().unwrap();
            let at = self.position(oldest).unwrap();
            self.orders.remove(at);
            self.arrival.remove(at);
        }
    }

    /// Whether `price` on `side` meets `other`'s price. A market order
    /// (price 0) meets every price.
    fn crosses(side: Side, price: u64, other: u64) -> bool {
        match side {
            _ if price == 0 => true,
            Side::Buy => other <= price,
            Side::Sell => other >= price,
        }
    }

    /// Trades the order at `at` against the opposite side while it crosses,
    /// then rests it with a fresh arrival stamp or finishes it; with
    /// `may_rest` false, what remains is cancelled instead of resting.
    fn take(&mut self, id: u128, ts: u64, may_rest: bool, trades: &mut Vec<Trade>) {
        let at = self.position(id).unwrap();
        let taker = self.orders[at];
        loop {
            let at = self.position(id).unwrap();
            let remaining = self.orders[at].quantity - self.orders[at].filled;
            if remaining == 0 {
                break;
            }
            let Some(best) = self.resting(taker.side.opposite()).first().copied() else {
                break;
            };
            if !Self::crosses(taker.side, taker.price, best.price) {
                break;
            }
            let fill = remaining.min(best.quantity - best.filled);
            self.last_trade_id += 1;
            trades.push(Trade {
                trade_id: self.last_trade_id,
                price: best.price,
                quantity: fill,
                taker: id,
                maker: best.id,
                taker_side: taker.side,
                ts,
            });
            for order_id in [id, best.id] {
                let at = self.position(order_id).unwrap();
                let o = &mut self.orders[at];
                o.filled += fill;
                o.notional += fill as u128 * best.price as u128;
                o.status = OrderStatus::PartiallyFilled;
            }
            let maker_at = self.position(best.id).unwrap();
            if self.orders[maker_at].filled == self.orders[maker_at].quantity {
                self.orders[maker_at].status = OrderStatus::Filled;
                self.finish(best.id);
            }
        }
        let at = self.position(id).unwrap();
        self.clock += 1;
        self.arrival[at] = self.clock;
        let o = &mut self.orders[at];
        if o.filled == o.quantity {
            o.status = OrderStatus::Filled;
            self.finish(id);
        } else if !may_rest {
            o.status = OrderStatus::Cancelled;
            self.finish(id);
        } else if o.filled == 0 {
            o.status = OrderStatus::Open;
        }
    }

    fn apply(&mut self, command: &Command) -> (Vec<Trade>, Event) {
        let mut trades = Vec::new();
        let outcome = match command.kind {
            CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif,
            } => {
                let opposite = self.resting(side.opposite());
                let crossed = opposite
                    .iter()
                    .filter(|o| Self::crosses(side, price, o.price));
                let may_rest = matches!(tif, TimeInForce::GoodTillCancel | TimeInForce::PostOnly);
                if price == 0 && may_rest {
                    Event::Rejected {
                        id,
                        reason: RejectReason::ZeroPrice,
                    }
                } else if quantity == 0 {
                    Event::Rejected {
                        id,
                        reason: RejectReason::ZeroQuantity,
                    }
                } else if self.position(id).is_some() {
                    Event::Rejected {
                        id,
                        reason: RejectReason::DuplicateId,
                    }
                } else if tif == TimeInForce::PostOnly && crossed.clone().next().is_some() {
                    Event::Rejected {
                        id,
                        reason: RejectReason::WouldTake,
                    }
                } else {
                    let killed = tif == TimeInForce::FillOrKill
                        && crossed.map(|o| o.quantity - o.filled).sum::<u64>() < quantity;
                    let order = OrderView {
                        id,
                        side,
                        price,
                        quantity,
                        filled: 0,
                        notional: 0,
                        status: if killed {
                            OrderStatus::Cancelled
                        } else {
                            OrderStatus::Open
                        },
                    };
                    self.orders.push(order);
                    self.arrival.push(0);
                    if killed {
                        self.finish(id);
                        return (trades, Event::Accepted(order));
                    }
                    self.take(id, command.ts, may_rest, &mut trades);
                    Event::Accepted(self.orders[self.position(id).unwrap()])
                }
            }
            CommandKind::Modify {
                id,
                price,
                quantity,
            } => match self.position(id) {
                Some(at) if self.orders[at].status.is_resting() => {
                    let old = self.orders[at];
                    let new_price = price.unwrap_or(old.price);
                    let new_quantity = quantity.unwrap_or(old.quantity);
                    if new_price == 0 {
                        Event::Rejected {
                            id,
                            reason: RejectReason::ZeroPrice,
                        }
                    } else if new_quantity <= old.filled {
                        Event::Rejected {
                            id,
                            reason: RejectReason::QuantityNotAboveFilled,
                        }
                    } else {
                        self.orders[at].price = new_price;
                        self.orders[at].quantity = new_quantity;
                        if new_price != old.price || new_quantity > old.quantity {
                            self.take(id, command.ts, true, &mut trades);
                        }
                        Event::Modified(self.orders[self.position(id).unwrap()])
                    }
                }
                _ => Event::Rejected {
                    id,
                    reason: RejectReason::NotResting,
                },
            },
            CommandKind::Cancel { id } => match self.position(id) {
                Some(at) if self.orders[at].status.is_resting() => {
                    self.orders[at].status = OrderStatus::Cancelled;
                    let view = self.orders[at];
                    self.finish(id);
                    Event::Cancelled(view)
                }
                _ => Event::Rejected {
                    id,
                    reason: RejectReason::NotResting,
                },
            },
            CommandKind::CancelAll { side } => {
                // Buys, then sells; each best first, then in time priority:
                // the order they join the finished history in.
                let mut count = 0;
                for s in [Side::Buy, Side::Sell] {
                    if side.is_some_and(|only| only != s) {
                        continue;
                    }
                    for order in self.resting(s) {
                        let at = self.position(order.id).unwrap();
                        self.orders[at].status = OrderStatus::Cancelled;
                        self.finish(order.id);
                        count += 1;
                    }
                }
                Event::CancelledAll { count }
            }
        };
        (trades, outcome)
    }
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn tif() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        4 => Just(TimeInForce::GoodTillCancel),
        1 => Just(TimeInForce::ImmediateOrCancel),
        1 => Just(TimeInForce::FillOrKill),
        1 => Just(TimeInForce::PostOnly),
    ]
}

fn command() -> impl Strategy<Value = CommandKind> {
    let id = 1u128..=40;
    prop_oneof![
        5 => (id.clone(), side(), 95u64..=105, 1u64..=20, tif())
            .prop_map(|(id, side, price, quantity, tif)| CommandKind::Place { id, side, price, quantity, tif }),
        2 => (id.clone(), proptest::option::of(94u64..=106), proptest::option::of(1u64..=30))
            .prop_map(|(id, price, quantity)| CommandKind::Modify { id, price, quantity }),
        2 => id.clone().prop_map(|id| CommandKind::Cancel { id }),
        1 => proptest::option::of(side()).prop_map(|side| CommandKind::CancelAll { side }),
        1 => (id_or_zero(), side(), 0u64..=2, 0u64..=2, tif())
            .prop_map(|(id, side, price, quantity, tif)| CommandKind::Place { id, side, price, quantity, tif }),
        1 => (id, side(), 1u64..=60, tif())
            .prop_map(|(id, side, quantity, tif)| CommandKind::Place { id, side, price: MARKET, quantity, tif }),
    ]
}

fn id_or_zero() -> impl Strategy<Value = u128> {
    0u128..=40
}

fn check_sequence(commands: &[CommandKind], finished_capacity: usize) -> Result<(), TestCaseError> {
    let mut book = OrderBook::new(BookConfig {
        order_capacity: 16,
        level_capacity: 4,
        finished_capacity,
        resident: false,
        sparse_index: false,
    });
    let mut naive = NaiveBook::new(finished_capacity);
    let mut events = Vec::new();
    for (step, &kind) in commands.iter().enumerate() {
        let command = Command {
            ts: step as u64 * 10,
            kind,
        };
        let before = naive.level_totals();
        events.clear();
        book.apply(&command, &mut events);
        let (expected_trades, expected_outcome) = naive.apply(&command);
        let after = naive.level_totals();

        let trades: Vec<Trade> = events
            .iter()
            .filter_map(|e| match e {
                Event::Trade(t) => Some(*t),
                _ => None,
            })
            .collect();
        prop_assert_eq!(
            &trades,
            &expected_trades,
            "trades at step {}: {:?}",
            step,
            kind
        );
        prop_assert_eq!(
            events.last(),
            Some(&expected_outcome),
            "outcome at step {}",
            step
        );
        prop_assert!(events[..events.len() - 1].iter().all(|e| !e.is_outcome()));

        // Level changes: the last report for each level is its new total,
        // and every level whose total moved was reported.
        let mut reported = BTreeMap::new();
        for e in &events {
            if let Event::Level {
                side,
                price,
                quantity,
            } = *e
            {
                reported.insert((side as i8, price), quantity);
            }
        }
        for (key, quantity) in &reported {
            prop_assert_eq!(
                *quantity,
                after.get(key).copied().unwrap_or(0),
                "level {:?} at step {}",
                key,
                step
            );
        }
        for key in before.keys().chain(after.keys()) {
            if before.get(key) != after.get(key) {
                prop_assert!(
                    reported.contains_key(key),
                    "level {:?} moved unreported at step {}",
                    key,
                    step
                );
            }
        }

        // The whole book and every order's state.
        for side in [Side::Buy, Side::Sell] {
            let real: Vec<OrderView> = book.resting(side).collect();
            prop_assert_eq!(
                real,
                naive.resting(side),
                "resting {:?} at step {}",
                side,
                step
            );
        }
        for id in 0u128..=40 {
            let expected = naive.position(id).map(|at| naive.orders[at]);
            prop_assert_eq!(book.order(id), expected, "order {} at step {}", id, step);
        }
        prop_assert_eq!(
            book.resting_count(),
            naive
                .orders
                .iter()
                .filter(|o| o.status.is_resting())
                .count()
        );
        prop_assert_eq!(book.last_trade_id(), naive.last_trade_id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn real_book_matches_the_naive_book(commands in proptest::collection::vec(command(), 1..200)) {
        check_sequence(&commands, 1_000)?;
    }

    #[test]
    fn real_book_matches_the_naive_book_with_a_tiny_history(commands in proptest::collection::vec(command(), 1..200)) {
        check_sequence(&commands, 3)?;
    }
}

/// What one book said, with a marker where each command began.
#[derive(Debug, PartialEq)]
enum Said {
    Begin(Command),
    Event(Event),
}

#[derive(Default)]
struct Log(Vec<Said>);

impl EventSink for Log {
    fn emit(&mut self, event: Event) {
        self.0.push(Said::Event(event));
    }
}

/// `apply_batch` must be `apply` on each command in turn, also on a book
/// large enough for its lookahead hints (past 16k resting orders), where
/// cancels, modifies and crossing places in one batch make the hints for
/// later commands of the batch stale.
///
/// With `resident`, the batched book is the matching thread's kind: sized
/// past the threshold where its slots and id index are made resident on
/// huge pages (the one-by-one book stays small and on demand).
fn check_batches_against_one_by_one(finished_capacity: usize, resident: bool) {
    let config = BookConfig {
        order_capacity: 1 << 15,
        level_capacity: 1 << 10,
        finished_capacity,
        resident: false,
        sparse_index: false,
    };
    let batched_config = if resident {
        BookConfig {
            order_capacity: 1 << 18,
            resident: true,
            sparse_index: true,
            ..config
        }
    } else {
        config
    };
    let (mut batched, mut one_by_one) = (OrderBook::new(batched_config), OrderBook::new(config));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ids: Vec<u128> = Vec::new();
    let mut next_id = 1u128;
    let mut command = |rng: &mut Rng, ids: &mut Vec<u128>, fill: bool| -> Command {
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        // Bids 9_000..=9_999 and asks 10_001..=11_000; a crossing place
        // reaches up to 20 ticks into the other side.
        let resting_price = |rng: &mut Rng| match side {
            Side::Buy => 9_999 - rng.below(1_000),
            Side::Sell => 10_001 + rng.below(1_000),
        };
        let roll = if fill { 0 } else { rng.below(100) };
        let kind = match roll {
            0..=44 => {
                next_id += 1;
                ids.push(next_id);
                CommandKind::Place {
                    id: next_id,
                    side,
                    price: resting_price(rng),
                    quantity: 1 + rng.below(100),
                    tif: if rng.below(4) == 0 {
                        TimeInForce::PostOnly
                    } else {
                        TimeInForce::GoodTillCancel
                    },
                }
            }
            45..=59 => {
                next_id += 1;
                ids.push(next_id);
                let reach = rng.below(20);
                CommandKind::Place {
                    id: next_id,
                    side,
                    price: match side {
                        _ if reach == 0 => MARKET,
                        Side::Buy => 10_001 + reach,
                        Side::Sell => 9_999 - reach,
                    },
                    quantity: 1 + rng.below(300),
                    // A post-only one crossing is only rejected: the
                    // resting places above try that.
                    tif: [
                        TimeInForce::GoodTillCancel,
                        TimeInForce::ImmediateOrCancel,
                        TimeInForce::FillOrKill,
                    ][rng.below(3) as usize],
                }
            }
            60..=89 => CommandKind::Cancel {
                id: ids[rng.below(ids.len() as u64) as usize],
            },
            90..=97 => CommandKind::Modify {
                id: ids[rng.below(ids.len() as u64) as usize],
                price: (rng.below(2) == 0).then(|| resting_price(rng)),
                quantity: Some(1 + rng.below(150)),
            },
            // Ids the book never saw, and repeated places.
            _ => CommandKind::Cancel {
                id: u128::MAX - rng.below(1_000) as u128,
            },
        };
        Command {
            ts: 1_000 + next_id as u64,
            kind,
        }
    };
    let fill: Vec<Command> = (0..20_000)
        .map(|_| command(&mut rng, &mut ids, true))
        .collect();
    let mut said_batched = Vec::new();
    let mut said_one_by_one = Vec::new();
    batched.apply_batch(&fill, &mut said_batched, |_, _| {});
    for c in &fill {
        one_by_one.apply(c, &mut said_one_by_one);
    }
    assert_eq!(said_batched, said_one_by_one);
    assert!(batched.resting_count() > 1 << 14, "the lookahead is on");

    let mut steps = (0, 0);
    // Places cancelled at once (IOC rests, killed FOKs) and post-only
    // places refused: the batch takes those paths too.
    let (mut cancelled_at_once, mut refused_post_only) = (0, 0);
    while steps.0 < 60_000 {
        let len = 1 + rng.below(80) as usize;
        let commands: Vec<Command> = (0..len)
            .map(|_| command(&mut rng, &mut ids, false))
            .collect();
        let mut a = Log::default();
        batched.apply_batch(&commands, &mut a, |c, out| out.0.push(Said::Begin(*c)));
        let mut b = Log::default();
        for c in &commands {
            b.0.push(Said::Begin(*c));
            one_by_one.apply(c, &mut b);
        }
        let (a, b) = (a.0, b.0);
        assert_eq!(a, b, "batch {} differs", steps.1);
        for said in &a {
            match said {
                Said::Event(Event::Accepted(view)) if view.status == OrderStatus::Cancelled => {
                    cancelled_at_once += 1
                }
                Said::Event(Event::Rejected {
                    reason: RejectReason::WouldTake,
                    ..
                }) => refused_post_only += 1,
                _ => {}
            }
        }
        steps.0 += len;
        steps.1 += 1;
    }
    for side in [Side::Buy, Side::Sell] {
        assert!(batched.resting(side).eq(one_by_one.resting(side)));
        assert!(batched.levels(side).eq(one_by_one.levels(side)));
    }
    assert_eq!(batched.last_trade_id(), one_by_one.last_trade_id());
    assert!(
        batched.last_trade_id() > 5_000,
        "the stream trades: {}",
        batched.last_trade_id()
    );
    assert!(
        cancelled_at_once > 1_000,
        "{cancelled_at_once} cancelled at once"
    );
    assert!(
        refused_post_only > 10,
        "{refused_post_only} post-only refused"
    );
}

#[test]
fn apply_batch_is_apply_on_each_command_in_turn() {
    check_batches_against_one_by_one(0, false);
}

#[test]
fn apply_batch_on_a_resident_book_is_apply_on_each_command_in_turn() {
    check_batches_against_one_by_one(0, true);
}

#[test]
fn apply_batch_is_apply_on_each_command_in_turn_with_a_history() {
    check_batches_against_one_by_one(5_000, false);
}
