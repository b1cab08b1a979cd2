//! The `orders` channel as a property: for random command sequences
//! applied as the service applies them (the matching thread's book, whose
//! trade events name the makers, then the replica's), each command sends
//! exactly one `order` message per order it changed, and each message is
//! the order exactly as the replica's book then shows it.

use orderbook::api::{TickSize, Wire};
use orderbook::client_ids::ClientIds;
use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, OrderId, Side, TimeInForce, MARKET,
};
use orderbook::order_feed;
use proptest::prelude::*;
use serde_json::Value;

fn wire() -> Wire {
    Wire {
        symbol: orderbook::api::Symbol::parse("DEFAULT").unwrap(),
        tick: TickSize::parse("0.01").unwrap(),
        max_quantity: 1_000_000_000,
    }
}

/// A step: places get fresh ids (the service's are random UUIDs); cancels
/// and modifies pick one of the ids placed so far.
#[derive(Clone, Debug)]
enum Step {
    Place {
        buy: bool,
        price: u64,
        quantity: u64,
        tif: TimeInForce,
    },
    Cancel(usize),
    Modify(usize, Option<u64>, Option<u64>),
    CancelAll(Option<bool>),
}

fn step() -> impl Strategy<Value = Step> {
    let tif = prop_oneof![
        6 => Just(TimeInForce::GoodTillCancel),
        1 => Just(TimeInForce::ImmediateOrCancel),
        1 => Just(TimeInForce::FillOrKill),
        1 => Just(TimeInForce::PostOnly),
    ];
    prop_oneof![
        8 => (any::<bool>(), 95u64..106, 1u64..20, tif).prop_map(|(buy, price, quantity, tif)| {
            Step::Place { buy, price, quantity, tif }
        }),
        1 => (any::<bool>(), 1u64..40).prop_map(|(buy, quantity)| Step::Place {
            buy,
            price: MARKET,
            quantity,
            tif: TimeInForce::ImmediateOrCancel,
        }),
        2 => any::<usize>().prop_map(Step::Cancel),
        3 => (any::<usize>(), proptest::option::of(95u64..106), proptest::option::of(1u64..25))
            .prop_map(|(pick, price, quantity)| Step::Modify(pick, price, quantity)),
        1 => proptest::option::of(any::<bool>()).prop_map(Step::CancelAll),
    ]
}

fn side(buy: bool) -> Side {
    if buy {
        Side::Buy
    } else {
        Side::Sell
    }
}

/// The order as `GET /order/{id}` shows it from `book`.
fn shown(book: &OrderBook, id: OrderId) -> Value {
    let mut text = String::new();
    wire().fetched(&mut text, &book.order(id).expect("kept in the history"));
    serde_json::from_str(&text).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn each_changed_order_is_sent_once_as_the_replica_then_shows_it(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        // The matching thread keeps no history; the replica keeps every
        // finished order here, so each can be looked up.
        let matching_config = BookConfig {
            order_capacity: 512,
            level_capacity: 16,
            finished_capacity: 0,
            resident: false,
            sparse_index: true,
        };
        let replica_config = BookConfig {
            finished_capacity: 4096,
            sparse_index: false,
            ..matching_config
        };
        let mut matching = OrderBook::new(matching_config);
        let mut replica = OrderBook::new(replica_config);
        let (mut feed, front) = order_feed::link(1 << 16);
        front.followers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let names = ClientIds::default();
        let mut placed: Vec<OrderId> = Vec::new();
        let pick = |placed: &[OrderId], i: usize| placed.get(i % placed.len().max(1)).copied().unwrap_or(1);
        for (ts, step) in steps.into_iter().enumerate() {
            let kind = match step {
                Step::Place { buy, price, quantity, tif } => {
                    let id = placed.len() as OrderId + 1;
                    placed.push(id);
                    CommandKind::Place { id, side: side(buy), price, quantity, tif }
                }
                Step::Cancel(i) => CommandKind::Cancel { id: pick(&placed, i) },
                Step::Modify(i, price, quantity) => {
                    CommandKind::Modify { id: pick(&placed, i), price, quantity }
                }
                Step::CancelAll(only) => CommandKind::CancelAll { side: only.map(side) },
            };
            let command = Command { ts: ts as u64 + 1, kind };
            let mut events = Vec::new();
            matching.apply(&command, &mut events);
            let rejected = matches!(events.last(), Some(Event::Rejected { .. }));
            let mut makers = Vec::new();
            for event in &events {
                if let Event::Trade(trade) = event {
                    feed.met(trade.maker);
                    makers.push(trade.maker);
                }
            }
            if rejected {
                // The replica applies only what the matching thread did.
                feed.clear();
                prop_assert!(front.frames.try_recv().is_err());
                continue;
            }
            // A cancel-all's orders, best first on each side, bids first.
            let resting_before: Vec<OrderId> = [Side::Buy, Side::Sell]
                .into_iter()
                .filter(|&s| match command.kind {
                    CommandKind::CancelAll { side: Some(only) } => s == only,
                    _ => true,
                })
                .flat_map(|s| replica.resting(s).map(|o| o.id).collect::<Vec<_>>())
                .collect();
            let followed = feed.before_apply(&replica, &command);
            prop_assert!(followed);
            let mut applied = Vec::new();
            replica.apply(&command, &mut applied);
            feed.after_apply(&applied, &names, None, 0, &wire());

            let sent: Vec<(Value, Value)> = front
                .frames
                .try_iter()
                .map(|sent| {
                    let order_feed::OrderFrame::Change { frame, .. } = sent else {
                        panic!("a snapshot nobody asked for");
                    };
                    let start = if frame[1] == 126 { 4 } else { 2 };
                    let message: Value = serde_json::from_slice(&frame[start..]).unwrap();
                    (message["event"].clone(), message["order"].clone())
                })
                .collect();
            // Who changed: a cancel-all's resting orders; else the makers
            // met (each once), then the command's own order.
            let expected: Vec<(&str, OrderId)> = match command.kind {
                CommandKind::CancelAll { .. } => {
                    resting_before.iter().map(|&id| ("cancelled", id)).collect()
                }
                kind => {
                    makers.dedup();
                    let own = match kind {
                        CommandKind::Place { id, .. } => ("placed", id),
                        CommandKind::Modify { id, .. } => ("modified", id),
                        CommandKind::Cancel { id } => ("cancelled", id),
                        CommandKind::CancelAll { .. } => unreachable!(),
                    };
                    makers.iter().map(|&id| ("traded", id)).chain([own]).collect()
                }
            };
            let wanted: Vec<(Value, Value)> = expected
                .iter()
                .map(|&(event, id)| (Value::from(event), shown(&replica, id)))
                .collect();
            prop_assert_eq!(sent, wanted);
        }
    }
}
