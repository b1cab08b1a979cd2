//! The matching rules of SPEC §1, one test per rule, against the pure engine.

use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, OrderStatus, OrderView, RejectReason, Side,
    TimeInForce, Trade, MARKET,
};

fn run(book: &mut OrderBook, kind: CommandKind) -> Vec<Event> {
    let mut events = Vec::new();
    book.apply(&Command { ts: 1_000, kind }, &mut events);
    assert!(
        events.last().unwrap().is_outcome(),
        "every command ends with its outcome"
    );
    assert_eq!(events.iter().filter(|e| e.is_outcome()).count(), 1);
    events
}

fn place_with(
    book: &mut OrderBook,
    id: u128,
    side: Side,
    price: u64,
    quantity: u64,
    tif: TimeInForce,
) -> Vec<Event> {
    run(
        book,
        CommandKind::Place {
            id,
            side,
            price,
            quantity,
            tif,
        },
    )
}

fn place(book: &mut OrderBook, id: u128, side: Side, price: u64, quantity: u64) -> Vec<Event> {
    place_with(book, id, side, price, quantity, TimeInForce::GoodTillCancel)
}

fn modify(book: &mut OrderBook, id: u128, price: Option<u64>, quantity: Option<u64>) -> Vec<Event> {
    run(
        book,
        CommandKind::Modify {
            id,
            price,
            quantity,
        },
    )
}

fn cancel(book: &mut OrderBook, id: u128) -> Vec<Event> {
    run(book, CommandKind::Cancel { id })
}

fn trades(events: &[Event]) -> Vec<Trade> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(*t),
            _ => None,
        })
        .collect()
}

/// The level changes among `events`, as (side, price, new total).
/// Each trade's maker, price and quantity, in order.
fn maker_fills(events: &[Event]) -> Vec<(u128, u64, u64)> {
    trades(events)
        .iter()
        .map(|t| (t.maker, t.price, t.quantity))
        .collect()
}

fn level_events(events: &[Event]) -> Vec<(Side, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Level {
                side,
                price,
                quantity,
            } => Some((side, price, quantity)),
            _ => None,
        })
        .collect()
}

fn outcome(events: &[Event]) -> Event {
    *events.last().unwrap()
}

fn resting_ids(book: &OrderBook, side: Side) -> Vec<u128> {
    book.resting(side).map(|o| o.id).collect()
}

fn view(book: &OrderBook, id: u128) -> OrderView {
    book.order(id).expect("order is known")
}

#[test]
fn maker_price_is_the_trade_price() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 10);
    let events = place(&mut book, 2, Side::Buy, 105, 10);
    let t = trades(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].price, 100, "a buy taker pays the resting sell's price");
    assert_eq!((t[0].buy_order(), t[0].sell_order()), (2, 1));

    place(&mut book, 3, Side::Buy, 100, 10);
    let events = place(&mut book, 4, Side::Sell, 90, 10);
    assert_eq!(
        trades(&events)[0].price,
        100,
        "a sell taker gets the resting buy's price"
    );
}

#[test]
fn trade_quantity_is_the_smaller_remaining() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 4);
    let events = place(&mut book, 2, Side::Buy, 100, 10);
    assert_eq!(trades(&events)[0].quantity, 4);
    let taker = view(&book, 2);
    assert_eq!(
        (taker.filled, taker.status),
        (4, OrderStatus::PartiallyFilled)
    );
    assert_eq!(taker.remaining(), 6);
    let maker = view(&book, 1);
    assert_eq!((maker.filled, maker.status), (4, OrderStatus::Filled));
}

#[test]
fn best_price_trades_first() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 103, 5);
    place(&mut book, 2, Side::Sell, 101, 5);
    place(&mut book, 3, Side::Sell, 102, 5);
    let events = place(&mut book, 4, Side::Buy, 103, 12);
    let t = trades(&events);
    let fills: Vec<(u128, u64, u64)> = t.iter().map(|t| (t.maker, t.price, t.quantity)).collect();
    assert_eq!(fills, vec![(2, 101, 5), (3, 102, 5), (1, 103, 2)]);
}

#[test]
fn earliest_order_at_a_price_trades_first() {
    let mut book = OrderBook::default();
    for id in 1..=3 {
        place(&mut book, id, Side::Buy, 100, 5);
    }
    let events = place(&mut book, 9, Side::Sell, 100, 7);
    let makers: Vec<u128> = trades(&events).iter().map(|t| t.maker).collect();
    assert_eq!(makers, vec![1, 2]);
    assert_eq!(resting_ids(&book, Side::Buy), vec![2, 3]);
    assert_eq!(view(&book, 2).filled, 2);
}

#[test]
fn non_crossing_order_rests_without_trading() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 101, 5);
    let events = place(&mut book, 2, Side::Buy, 100, 5);
    assert!(trades(&events).is_empty());
    match outcome(&events) {
        Event::Accepted(v) => assert_eq!(
            (v.status, v.filled, v.remaining()),
            (OrderStatus::Open, 0, 5)
        ),
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(book.best_price(Side::Buy), Some(100));
    assert_eq!(book.best_price(Side::Sell), Some(101));
}

#[test]
fn accepted_outcome_is_the_order_after_matching() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 3);
    let events = place(&mut book, 2, Side::Buy, 100, 3);
    match outcome(&events) {
        Event::Accepted(v) => {
            assert_eq!(
                (v.id, v.quantity, v.filled, v.status),
                (2, 3, 3, OrderStatus::Filled)
            )
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn taker_sweeps_levels_and_rests_the_remainder_at_its_limit() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 2);
    place(&mut book, 2, Side::Sell, 101, 2);
    place(&mut book, 3, Side::Sell, 110, 2);
    let events = place(&mut book, 4, Side::Buy, 105, 10);
    assert_eq!(trades(&events).len(), 2);
    let v = view(&book, 4);
    assert_eq!(
        (v.price, v.filled, v.remaining(), v.status),
        (105, 4, 6, OrderStatus::PartiallyFilled)
    );
    assert_eq!(book.best_price(Side::Buy), Some(105));
    assert_eq!(book.best_price(Side::Sell), Some(110));
    // Level changes cover both swept levels (gone) and the new bid level.
    let levels = level_events(&events);
    assert_eq!(
        levels,
        vec![
            (Side::Sell, 100, 0),
            (Side::Sell, 101, 0),
            (Side::Buy, 105, 6)
        ]
    );
}

#[test]
fn average_traded_price_is_quantity_weighted() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 1);
    place(&mut book, 2, Side::Sell, 104, 3);
    place(&mut book, 3, Side::Buy, 104, 4);
    let v = view(&book, 3);
    assert_eq!(v.notional, 100 + 3 * 104);
    assert_eq!(v.average_price_ticks(), 103.0);
    assert_eq!(view(&book, 1).average_price_ticks(), 100.0);
    place(&mut book, 4, Side::Buy, 50, 1);
    assert_eq!(
        view(&book, 4).average_price_ticks(),
        0.0,
        "0 before any fill"
    );
}

#[test]
fn trade_ids_count_up_and_carry_the_command_timestamp() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 1);
    place(&mut book, 2, Side::Sell, 100, 1);
    let mut events = Vec::new();
    book.apply(
        &Command {
            ts: 42,
            kind: CommandKind::Place {
                id: 3,
                side: Side::Buy,
                price: 100,
                quantity: 2,
                tif: TimeInForce::GoodTillCancel,
            },
        },
        &mut events,
    );
    let t = trades(&events);
    assert_eq!(
        t.iter().map(|t| (t.trade_id, t.ts)).collect::<Vec<_>>(),
        vec![(1, 42), (2, 42)]
    );
    assert_eq!(book.last_trade_id(), 2);
}

#[test]
fn quantity_decrease_keeps_time_priority() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    place(&mut book, 2, Side::Buy, 100, 10);
    let events = modify(&mut book, 1, None, Some(4));
    assert!(matches!(outcome(&events), Event::Modified(v) if v.quantity == 4));
    assert_eq!(resting_ids(&book, Side::Buy), vec![1, 2]);
    assert_eq!(book.levels(Side::Buy).next().unwrap().quantity, 14);
    let events = place(&mut book, 3, Side::Sell, 100, 4);
    assert_eq!(
        trades(&events)[0].maker,
        1,
        "order 1 is still first in line"
    );
}

#[test]
fn quantity_increase_loses_time_priority() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    place(&mut book, 2, Side::Buy, 100, 10);
    modify(&mut book, 1, None, Some(11));
    assert_eq!(resting_ids(&book, Side::Buy), vec![2, 1]);
    assert_eq!(book.levels(Side::Buy).next().unwrap().quantity, 21);
}

#[test]
fn price_change_loses_time_priority() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 101, 10);
    place(&mut book, 2, Side::Sell, 100, 10);
    modify(&mut book, 1, Some(100), None);
    assert_eq!(resting_ids(&book, Side::Sell), vec![2, 1]);
    assert_eq!(
        book.levels(Side::Sell).count(),
        1,
        "level 101 closed when its only order left"
    );
}

#[test]
fn same_price_and_quantity_changes_nothing() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    place(&mut book, 2, Side::Buy, 100, 10);
    let events = modify(&mut book, 1, Some(100), Some(10));
    assert_eq!(events.len(), 1, "no level change, just the outcome");
    assert_eq!(resting_ids(&book, Side::Buy), vec![1, 2]);
}

#[test]
fn modify_to_at_or_below_filled_is_rejected() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    place(&mut book, 2, Side::Sell, 100, 6);
    for quantity in [6, 3] {
        let events = modify(&mut book, 1, None, Some(quantity));
        assert_eq!(
            events,
            vec![Event::Rejected {
                id: 1,
                reason: RejectReason::QuantityNotAboveFilled
            }]
        );
    }
    let v = view(&book, 1);
    assert_eq!(
        (v.quantity, v.filled, v.remaining()),
        (10, 6, 4),
        "a rejected modify changes nothing"
    );
    modify(&mut book, 1, None, Some(7));
    assert_eq!(view(&book, 1).remaining(), 1);
}

#[test]
fn modified_order_that_crosses_trades_at_once_as_taker() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 102, 5);
    place(&mut book, 2, Side::Buy, 100, 8);
    let events = modify(&mut book, 2, Some(103), None);
    let t = trades(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].taker, t[0].maker, t[0].price, t[0].quantity),
        (2, 1, 102, 5)
    );
    match outcome(&events) {
        Event::Modified(v) => {
            assert_eq!(
                (v.price, v.filled, v.remaining(), v.status),
                (103, 5, 3, OrderStatus::PartiallyFilled)
            )
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(resting_ids(&book, Side::Buy), vec![2]);
}

#[test]
fn modify_that_fills_completely_finishes_the_order() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 102, 5);
    place(&mut book, 2, Side::Buy, 100, 5);
    modify(&mut book, 2, Some(102), None);
    let v = view(&book, 2);
    assert_eq!(v.status, OrderStatus::Filled);
    assert!(!v.status.is_resting());
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn cancel_takes_the_order_out_and_keeps_it_fetchable() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    place(&mut book, 2, Side::Sell, 100, 4);
    let events = cancel(&mut book, 1);
    match outcome(&events) {
        Event::Cancelled(v) => assert_eq!(
            (v.filled, v.status, v.remaining()),
            (4, OrderStatus::Cancelled, 0)
        ),
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(book.levels(Side::Buy).count(), 0);
    assert_eq!(view(&book, 1).status, OrderStatus::Cancelled);
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn cancel_or_modify_of_a_finished_or_unknown_order_is_rejected() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 1);
    place(&mut book, 2, Side::Sell, 100, 1);
    let not_resting = |id| {
        vec![Event::Rejected {
            id,
            reason: RejectReason::NotResting,
        }]
    };
    assert_eq!(cancel(&mut book, 1), not_resting(1));
    assert_eq!(modify(&mut book, 2, Some(99), None), not_resting(2));
    assert_eq!(cancel(&mut book, 77), not_resting(77));
    place(&mut book, 3, Side::Buy, 100, 1);
    cancel(&mut book, 3);
    assert_eq!(
        cancel(&mut book, 3),
        not_resting(3),
        "cancelling twice is rejected"
    );
}

#[test]
fn zero_price_zero_quantity_and_duplicate_ids_are_rejected() {
    let mut book = OrderBook::default();
    assert_eq!(
        place(&mut book, 1, Side::Buy, 0, 1),
        vec![Event::Rejected {
            id: 1,
            reason: RejectReason::ZeroPrice
        }]
    );
    assert_eq!(
        place(&mut book, 1, Side::Buy, 1, 0),
        vec![Event::Rejected {
            id: 1,
            reason: RejectReason::ZeroQuantity
        }]
    );
    place(&mut book, 1, Side::Buy, 100, 1);
    assert_eq!(
        place(&mut book, 1, Side::Sell, 200, 1),
        vec![Event::Rejected {
            id: 1,
            reason: RejectReason::DuplicateId
        }]
    );
    assert_eq!(book.resting_count(), 1);
}

/// A book keeping 2 finished orders, in which orders 1, 2 and 3 were
/// placed and cancelled (so 1 was pushed out of the history).
fn three_cancelled_in_a_history_of_two() -> OrderBook {
    let mut book = OrderBook::new(BookConfig {
        finished_capacity: 2,
        ..BookConfig::default()
    });
    for id in 1..=3 {
        place(&mut book, id, Side::Buy, 100, 1);
        cancel(&mut book, id);
    }
    book
}

#[test]
fn finished_orders_are_kept_up_to_the_history_bound() {
    let mut book = three_cancelled_in_a_history_of_two();
    assert!(
        book.order(1).is_none(),
        "the oldest finished order is forgotten"
    );
    assert_eq!(view(&book, 2).status, OrderStatus::Cancelled);
    assert_eq!(view(&book, 3).status, OrderStatus::Cancelled);
    assert_eq!(book.finished_count(), 2);
    // A forgotten id may not be reused while resting orders stay intact.
    place(&mut book, 10, Side::Buy, 100, 1);
    assert_eq!(view(&book, 10).status, OrderStatus::Open);
}

#[test]
fn orders_dropped_from_the_history_are_reported_once_when_logged() {
    // Not logged: the first drop is not reported.
    let mut book = three_cancelled_in_a_history_of_two();
    assert_eq!(book.take_evicted().count(), 0);
    book.log_evictions();
    // A cancel (4), a taker filled at once (6) and the maker it filled (5)
    // each push the oldest kept order out.
    place(&mut book, 4, Side::Buy, 100, 1);
    cancel(&mut book, 4);
    place(&mut book, 5, Side::Sell, 101, 1);
    place(&mut book, 6, Side::Buy, 101, 1);
    assert_eq!(book.take_evicted().collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(book.take_evicted().count(), 0);
    assert!(book.order(4).is_none());
    assert_eq!(view(&book, 5).status, OrderStatus::Filled);
    assert_eq!(view(&book, 6).status, OrderStatus::Filled);

    // With no history, every finished order is reported as it finishes:
    // a cancel, a filled maker, a taker filled at once.
    let mut book = OrderBook::new(BookConfig {
        finished_capacity: 0,
        ..BookConfig::default()
    });
    book.log_evictions();
    place(&mut book, 1, Side::Buy, 100, 1);
    cancel(&mut book, 1);
    place(&mut book, 2, Side::Sell, 101, 1);
    place(&mut book, 3, Side::Buy, 101, 1);
    place(&mut book, 4, Side::Buy, 99, 1);
    let mut gone: Vec<_> = book.take_evicted().collect();
    gone.sort_unstable();
    assert_eq!(gone, [1, 2, 3]);
}

#[test]
fn levels_aggregate_and_list_best_first() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 99, 1);
    place(&mut book, 2, Side::Buy, 101, 2);
    place(&mut book, 3, Side::Buy, 101, 3);
    place(&mut book, 4, Side::Sell, 105, 4);
    place(&mut book, 5, Side::Sell, 103, 5);
    let bids: Vec<(u64, u64, u32)> = book
        .levels(Side::Buy)
        .map(|l| (l.price, l.quantity, l.orders))
        .collect();
    let asks: Vec<(u64, u64, u32)> = book
        .levels(Side::Sell)
        .map(|l| (l.price, l.quantity, l.orders))
        .collect();
    assert_eq!(bids, vec![(101, 5, 2), (99, 1, 1)]);
    assert_eq!(asks, vec![(103, 5, 1), (105, 4, 1)]);
    assert_eq!(resting_ids(&book, Side::Buy), vec![2, 3, 1]);
}

#[test]
fn many_levels_stay_sorted_whatever_the_insertion_order() {
    let mut book = OrderBook::default();
    // A scattered insertion order exercises both the short walk from the
    // touch and the binary search further away.
    let prices: Vec<u64> = (0..200u64).map(|i| 1 + (i * 7919) % 1000).collect();
    for (i, &p) in prices.iter().enumerate() {
        place(&mut book, i as u128 + 1, Side::Buy, p, 1);
    }
    let mut expected: Vec<u64> = prices.clone();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    expected.dedup();
    let got: Vec<u64> = book.levels(Side::Buy).map(|l| l.price).collect();
    assert_eq!(got, expected);
    // Cancel every other order and check again.
    for i in (0..prices.len()).step_by(2) {
        cancel(&mut book, i as u128 + 1);
    }
    let mut remaining: Vec<u64> = prices.iter().skip(1).step_by(2).copied().collect();
    remaining.sort_unstable_by(|a, b| b.cmp(a));
    remaining.dedup();
    let got: Vec<u64> = book.levels(Side::Buy).map(|l| l.price).collect();
    assert_eq!(got, remaining);
}

fn levels(book: &OrderBook, side: Side) -> Vec<(u64, u64)> {
    book.levels(side).map(|l| (l.price, l.quantity)).collect()
}

#[test]
fn immediate_or_cancel_trades_what_crosses_and_cancels_the_rest() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 3);
    place(&mut book, 2, Side::Sell, 101, 4);
    place(&mut book, 3, Side::Sell, 103, 5);
    let events = place_with(
        &mut book,
        4,
        Side::Buy,
        102,
        10,
        TimeInForce::ImmediateOrCancel,
    );
    let fills: Vec<(u128, u64, u64)> = trades(&events)
        .iter()
        .map(|t| (t.maker, t.price, t.quantity))
        .collect();
    assert_eq!(fills, vec![(1, 100, 3), (2, 101, 4)]);
    let Event::Accepted(taker) = outcome(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(
        (taker.filled, taker.status, taker.remaining()),
        (7, OrderStatus::Cancelled, 0)
    );
    assert_eq!(taker.notional, 3 * 100 + 4 * 101);
    // The rest did not rest: only the maker out of reach is left.
    assert!(resting_ids(&book, Side::Buy).is_empty());
    assert_eq!(levels(&book, Side::Sell), vec![(103, 5)]);
    // Level events only for the makers' levels.
    let touched = level_events(&events);
    assert_eq!(touched, vec![(Side::Sell, 100, 0), (Side::Sell, 101, 0)]);
}

#[test]
fn immediate_or_cancel_that_fills_is_filled_and_one_that_meets_nothing_is_cancelled() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 100, 10);
    let events = place_with(
        &mut book,
        2,
        Side::Sell,
        99,
        4,
        TimeInForce::ImmediateOrCancel,
    );
    assert!(matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Filled));
    let events = place_with(
        &mut book,
        3,
        Side::Sell,
        101,
        4,
        TimeInForce::ImmediateOrCancel,
    );
    assert_eq!(events.len(), 1, "no trade, no level: {events:?}");
    assert!(
        matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Cancelled && v.filled == 0)
    );
    assert_eq!(levels(&book, Side::Sell), vec![]);
    assert_eq!(levels(&book, Side::Buy), vec![(100, 6)]);
}

/// Sells resting: 3 at 100, 4 at 101, 50 at 102 (ids 1, 2, 3).
fn asks_of_3_4_and_50() -> OrderBook {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 3);
    place(&mut book, 2, Side::Sell, 101, 4);
    place(&mut book, 3, Side::Sell, 102, 50);
    book
}

#[test]
fn fill_or_kill_trades_nothing_when_the_book_cannot_fill_it_whole() {
    let mut book = asks_of_3_4_and_50();
    // 7 within its limit of 101, 8 asked: killed whole.
    let events = place_with(&mut book, 4, Side::Buy, 101, 8, TimeInForce::FillOrKill);
    assert_eq!(events.len(), 1, "no trade, no level: {events:?}");
    let Event::Accepted(killed) = outcome(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(
        (killed.filled, killed.status, killed.quantity),
        (0, OrderStatus::Cancelled, 8)
    );
    assert_eq!(
        levels(&book, Side::Sell),
        vec![(100, 3), (101, 4), (102, 50)]
    );
    assert!(resting_ids(&book, Side::Buy).is_empty());
    // With history, it stays fetchable as cancelled.
    assert_eq!(view(&book, 4).status, OrderStatus::Cancelled);
}

#[test]
fn fill_or_kill_fills_whole_across_levels_when_it_can() {
    let mut book = asks_of_3_4_and_50();
    let events = place_with(&mut book, 4, Side::Buy, 101, 7, TimeInForce::FillOrKill);
    assert_eq!(trades(&events).len(), 2);
    assert!(
        matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Filled && v.filled == 7)
    );
    assert_eq!(levels(&book, Side::Sell), vec![(102, 50)]);
    // A level emptied away from the touch adds nothing to what can fill.
    place(&mut book, 5, Side::Buy, 90, 1);
    place(&mut book, 6, Side::Buy, 95, 2);
    cancel(&mut book, 5);
    let events = place_with(&mut book, 7, Side::Sell, 90, 3, TimeInForce::FillOrKill);
    assert!(matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Cancelled));
    let events = place_with(&mut book, 8, Side::Sell, 90, 2, TimeInForce::FillOrKill);
    assert!(matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Filled));
}

#[test]
fn market_order_sweeps_every_level_at_the_makers_prices_and_cancels_the_rest() {
    let mut book = asks_of_3_4_and_50();
    let events = place_with(
        &mut book,
        4,
        Side::Buy,
        MARKET,
        60,
        TimeInForce::ImmediateOrCancel,
    );
    assert_eq!(
        maker_fills(&events),
        vec![(1, 100, 3), (2, 101, 4), (3, 102, 50)]
    );
    assert_eq!(
        level_events(&events),
        vec![
            (Side::Sell, 100, 0),
            (Side::Sell, 101, 0),
            (Side::Sell, 102, 0)
        ]
    );
    let Event::Accepted(order) = outcome(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(
        (order.price, order.filled, order.status),
        (MARKET, 57, OrderStatus::Cancelled),
        "what the book could not fill is cancelled, never rested"
    );
    assert_eq!(order.notional, 3 * 100 + 4 * 101 + 50 * 102);
    assert!(levels(&book, Side::Buy).is_empty() && levels(&book, Side::Sell).is_empty());
    assert_eq!(
        view(&book, 4),
        order,
        "it stays fetchable as a finished order"
    );
}

#[test]
fn market_sell_takes_the_best_bids_first_and_fills_when_they_hold_enough() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 90, 5);
    place(&mut book, 2, Side::Buy, 99, 2);
    place(&mut book, 3, Side::Buy, 99, 2);
    let events = place_with(
        &mut book,
        4,
        Side::Sell,
        MARKET,
        6,
        TimeInForce::ImmediateOrCancel,
    );
    assert_eq!(
        maker_fills(&events),
        vec![(2, 99, 2), (3, 99, 2), (1, 90, 2)]
    );
    assert!(
        matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Filled && v.filled == 6)
    );
    assert_eq!(levels(&book, Side::Buy), vec![(90, 3)]);
    // Into an empty side it meets nothing and is cancelled whole.
    let events = place_with(
        &mut book,
        5,
        Side::Buy,
        MARKET,
        1,
        TimeInForce::ImmediateOrCancel,
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Cancelled && v.filled == 0)
    );
}

#[test]
fn market_fill_or_kill_fills_whole_or_trades_nothing() {
    let mut book = asks_of_3_4_and_50();
    let events = place_with(&mut book, 4, Side::Buy, MARKET, 58, TimeInForce::FillOrKill);
    assert_eq!(events.len(), 1, "57 on offer, 58 asked: {events:?}");
    assert!(
        matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Cancelled && v.filled == 0)
    );
    assert_eq!(
        levels(&book, Side::Sell),
        vec![(100, 3), (101, 4), (102, 50)]
    );
    let events = place_with(&mut book, 5, Side::Buy, MARKET, 57, TimeInForce::FillOrKill);
    assert_eq!(trades(&events).len(), 3);
    assert!(matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Filled));
}

#[test]
fn market_order_that_could_rest_is_rejected() {
    let mut book = asks_of_3_4_and_50();
    for (id, tif) in [(4, TimeInForce::GoodTillCancel), (5, TimeInForce::PostOnly)] {
        assert_eq!(
            place_with(&mut book, id, Side::Buy, MARKET, 1, tif),
            vec![Event::Rejected {
                id,
                reason: RejectReason::ZeroPrice
            }]
        );
    }
    assert_eq!(
        levels(&book, Side::Sell),
        vec![(100, 3), (101, 4), (102, 50)]
    );
}

#[test]
fn post_only_that_would_trade_is_rejected_and_changes_nothing() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 3);
    for (id, price) in [(2, 100), (3, 105)] {
        let events = place_with(&mut book, id, Side::Buy, price, 5, TimeInForce::PostOnly);
        assert_eq!(
            events,
            vec![Event::Rejected {
                id,
                reason: RejectReason::WouldTake
            }]
        );
        assert_eq!(book.order(id), None, "a refused order is not known");
    }
    assert_eq!(levels(&book, Side::Sell), vec![(100, 3)]);
    assert_eq!(book.last_trade_id(), 0);
}

#[test]
fn post_only_that_does_not_cross_rests_and_keeps_its_place_in_time() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Sell, 100, 3);
    let events = place_with(&mut book, 2, Side::Buy, 99, 5, TimeInForce::PostOnly);
    assert!(matches!(outcome(&events), Event::Accepted(v) if v.status == OrderStatus::Open));
    place(&mut book, 3, Side::Buy, 99, 5);
    assert_eq!(resting_ids(&book, Side::Buy), vec![2, 3]);
    // It is a maker like any other.
    let events = place(&mut book, 4, Side::Sell, 99, 6);
    let makers: Vec<u128> = trades(&events).iter().map(|t| t.maker).collect();
    assert_eq!(makers, vec![2, 3]);
}

#[test]
fn cancel_all_of_one_side_takes_every_order_best_level_first_and_leaves_the_other() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 99, 5);
    place(&mut book, 2, Side::Buy, 100, 3);
    place(&mut book, 3, Side::Buy, 100, 2);
    place(&mut book, 4, Side::Sell, 101, 7);
    place(&mut book, 5, Side::Sell, 100, 4); // fills order 2, 1 of order 3
    let events = run(
        &mut book,
        CommandKind::CancelAll {
            side: Some(Side::Buy),
        },
    );
    assert_eq!(outcome(&events), Event::CancelledAll { count: 2 });
    // The best level first (100, order 3), then 99 (order 1).
    assert_eq!(
        level_events(&events),
        [(Side::Buy, 100, 0), (Side::Buy, 99, 0)]
    );
    assert_eq!(book.levels(Side::Buy).count(), 0);
    assert_eq!(resting_ids(&book, Side::Sell), [4]);
    for (id, status, filled) in [
        (1, OrderStatus::Cancelled, 0),
        (2, OrderStatus::Filled, 3),
        (3, OrderStatus::Cancelled, 1),
    ] {
        let order = book.order(id).expect("a finished order stays fetchable");
        assert_eq!((order.status, order.filled), (status, filled), "order {id}");
    }
}

#[test]
fn cancel_all_of_both_sides_empties_the_book_and_an_empty_book_cancels_nothing() {
    let mut book = OrderBook::default();
    place(&mut book, 1, Side::Buy, 99, 5);
    place(&mut book, 2, Side::Sell, 101, 7);
    let events = run(&mut book, CommandKind::CancelAll { side: None });
    assert_eq!(outcome(&events), Event::CancelledAll { count: 2 });
    assert_eq!(book.resting_count(), 0);
    let events = run(&mut book, CommandKind::CancelAll { side: None });
    assert_eq!(events, [Event::CancelledAll { count: 0 }]);
    // The book takes orders as before.
    place(&mut book, 3, Side::Buy, 100, 1);
    assert_eq!(book.resting_count(), 1);
}
