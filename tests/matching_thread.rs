//! The matching thread end to end, in process: commands pushed from one
//! thread through the command ring, events read by three reader threads at
//! different speeds from the output ring; each reader must see exactly the
//! events of the engine applied directly to the same commands.

use std::thread;
use std::time::Duration;

use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, OrderView, Side, TimeInForce,
};
use orderbook::matching::{self, Output, Request};
use orderbook::ring::{broadcast_with, spsc_with, WaitResult, WaitStrategy};

/// A fixed-seed xorshift, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Places around a mid price (about a third crossing), modifies and cancels
/// of recent ids, and some commands that the engine rejects.
fn commands(count: usize) -> Vec<Command> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut placed: Vec<u128> = Vec::new();
    (0..count)
        .map(|i| {
            let pick = rng.below(100);
            let kind = if pick < 60 || placed.is_empty() {
                let id = (rng.next() as u128) << 64 | i as u128;
                placed.push(id);
                let side = if rng.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                CommandKind::Place {
                    id,
                    side,
                    price: 990 + rng.below(21),
                    quantity: 1 + rng.below(50),
                    tif: TimeInForce::GoodTillCancel,
                }
            } else {
                let recent = placed.len().min(500) as u64;
                let id = placed[placed.len() - 1 - rng.below(recent) as usize];
                if pick < 80 {
                    CommandKind::Cancel { id }
                } else {
                    CommandKind::Modify {
                        id,
                        price: (rng.below(2) == 0).then(|| 990 + rng.below(21)),
                        quantity: Some(1 + rng.below(60)),
                    }
                }
            };
            Command { ts: i as u64, kind }
        })
        .collect()
}

fn resting(book: &OrderBook) -> Vec<OrderView> {
    book.resting(Side::Buy)
        .chain(book.resting(Side::Sell))
        .collect()
}

fn run_through_the_thread(strategy: WaitStrategy) {
    let commands = commands(200_000);
    let config = BookConfig {
        order_capacity: 1 << 12,
        level_capacity: 64,
        finished_capacity: 10_000,
        resident: false,
        sparse_index: false,
    };

    let mut direct = OrderBook::new(config);
    // What the thread must publish: each command, then its events.
    let mut expected = Vec::new();
    let mut events = Vec::new();
    for command in &commands {
        expected.push(Output::Command(*command));
        events.clear();
        direct.apply(command, &mut events);
        expected.extend(events.iter().map(|event| Output::Event(*event)));
    }

    // Small rings, so both back-pressure paths are taken many times.
    let (mut producer, consumer) = spsc_with::<Request>(256, strategy);
    let (publisher, subscribers) = broadcast_with::<Output>(512, 3, strategy);
    let matching = matching::spawn(OrderBook::new(config), consumer, publisher, None).unwrap();

    let readers: Vec<_> = subscribers
        .into_iter()
        .enumerate()
        .map(|(speed, mut subscriber)| {
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut batches = 0u64;
                loop {
                    // Reader 0 drains everything; reader 1 small batches;
                    // reader 2 also naps now and then.
                    let max = if speed == 0 { usize::MAX } else { 7 };
                    let got = subscriber.drain(max, |event| seen.push(*event));
                    batches += 1;
                    if speed == 2 && batches.is_multiple_of(5_000) {
                        thread::sleep(Duration::from_millis(1));
                    }
                    if got == 0 && subscriber.wait() == WaitResult::Closed {
                        return seen;
                    }
                }
            })
        })
        .collect();

    for command in &commands {
        producer.push(Request::Apply(*command)).unwrap();
    }
    drop(producer);

    let book = matching.join().unwrap();
    for (i, reader) in readers.into_iter().enumerate() {
        let seen = reader.join().unwrap();
        assert_eq!(seen.len(), expected.len(), "reader {i} saw every event");
        assert!(
            seen == expected,
            "reader {i} saw the engine's events in order"
        );
    }
    assert_eq!(resting(&book), resting(&direct));
    assert_eq!(book.last_trade_id(), direct.last_trade_id());
    assert!(direct.last_trade_id() > 10_000, "the workload trades");
}

#[test]
fn readers_see_exactly_the_engines_events_adaptive() {
    run_through_the_thread(WaitStrategy::Adaptive);
}

#[test]
fn readers_see_exactly_the_engines_events_spin() {
    run_through_the_thread(WaitStrategy::Spin);
}

#[test]
fn readers_see_exactly_the_engines_events_membarrier() {
    run_through_the_thread(WaitStrategy::Membarrier);
}

#[test]
fn barriers_answer_in_stream_order() {
    let (mut producer, consumer) = spsc_with::<Request>(16, WaitStrategy::Adaptive);
    let (publisher, mut subscribers) = broadcast_with::<Output>(64, 1, WaitStrategy::Adaptive);
    let matching = matching::spawn(OrderBook::default(), consumer, publisher, None).unwrap();
    let place = Command {
        ts: 7,
        kind: CommandKind::Place {
            id: 5,
            side: Side::Buy,
            price: 100,
            quantity: 3,
            tif: TimeInForce::GoodTillCancel,
        },
    };
    let barrier = matching::Barrier {
        ticket: 9,
        purpose: matching::BarrierPurpose::Orders {
            limit: usize::MAX,
            side: None,
            prefix: None,
        },
    };
    let lookup = |ticket| matching::Barrier {
        ticket,
        purpose: matching::BarrierPurpose::Order(5),
    };
    producer.push(Request::Barrier(lookup(7))).unwrap();
    producer.push(Request::Apply(place)).unwrap();
    producer.push(Request::Barrier(lookup(8))).unwrap();
    producer.push(Request::Barrier(barrier)).unwrap();
    drop(producer);
    let mut subscriber = subscribers.pop().unwrap();
    let mut seen = Vec::new();
    while subscriber.wait() != WaitResult::Closed {
        subscriber.drain(usize::MAX, |output| seen.push(*output));
    }
    matching.join().unwrap();
    let closing: Vec<Output> = seen.iter().filter(|o| o.is_closing()).copied().collect();
    assert_eq!(closing.len(), 4, "one closing item per request: {seen:?}");
    assert_eq!(closing[0], Output::Barrier(lookup(7)));
    assert!(matches!(closing[1], Output::Event(Event::Accepted(view)) if view.id == 5));
    assert_eq!(closing[2], Output::Barrier(lookup(8)));
    assert_eq!(closing[3], Output::Barrier(barrier));
    assert_eq!(
        seen[1],
        Output::Command(place),
        "the command is republished before its events"
    );
}
