//! Millions of items through the rings between real threads: strict order,
//! nothing lost, nothing duplicated, under every wait strategy and with the
//! batch APIs, and the broadcast ring with readers of very different speeds.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use orderbook::ring::{broadcast_with, spsc_with, Subscriber, WaitResult, WaitStrategy, Wake};
use rustix::thread::{membarrier_query, MembarrierCommand};

const SPSC_ITEMS: u64 = 10_000_000;
const BROADCAST_ITEMS: u64 = 2_000_000;

/// The machine may have two cores: the tests take turns, so that spinning
/// threads of one test do not starve the threads of another.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The strategy a ring asked for `Membarrier` must run with here: itself
/// where the kernel offers private expedited barriers, else `Adaptive`.
fn membarrier_as_run() -> WaitStrategy {
    if membarrier_query().contains_command(MembarrierCommand::PrivateExpedited) {
        WaitStrategy::Membarrier
    } else {
        WaitStrategy::Adaptive
    }
}

/// Checks that `item` is exactly the next one expected.
#[inline]
fn expect_next(expected: &mut u64, item: u64) {
    if item != *expected {
        panic!("expected item {expected}, got {item}");
    }
    *expected += 1;
}

/// Pushes 0..n one by one with the blocking `push`; the consumer waits and
/// drains everything available each time.
fn spsc_one_by_one(strategy: WaitStrategy) {
    let started = Instant::now();
    let (mut producer, mut consumer) = spsc_with::<u64>(1024, strategy);
    if strategy == WaitStrategy::Membarrier {
        assert_eq!(consumer.strategy(), membarrier_as_run());
    }
    let writer = thread::spawn(move || {
        for i in 0..SPSC_ITEMS {
            producer.push(i).unwrap();
        }
        producer.full_events()
    });
    let mut expected = 0;
    while let WaitResult::Ready(_) = consumer.wait() {
        consumer.drain(usize::MAX, |item| expect_next(&mut expected, item));
    }
    assert_eq!(expected, SPSC_ITEMS, "items lost");
    let full_events = writer.join().unwrap();
    eprintln!(
        "spsc {strategy}: {SPSC_ITEMS} items in {:?}, producer found the ring full {full_events} times",
        started.elapsed()
    );
}

#[test]
fn spsc_ten_million_items_in_order_adaptive() {
    let _turn = one_at_a_time();
    spsc_one_by_one(WaitStrategy::Adaptive);
}

#[test]
fn spsc_ten_million_items_in_order_spin() {
    let _turn = one_at_a_time();
    spsc_one_by_one(WaitStrategy::Spin);
}

#[test]
fn spsc_ten_million_items_in_order_membarrier() {
    let _turn = one_at_a_time();
    spsc_one_by_one(WaitStrategy::Membarrier);
}

#[test]
fn spsc_ten_million_items_in_staged_batches_popped_one_by_one() {
    let _turn = one_at_a_time();
    let started = Instant::now();
    let (mut producer, mut consumer) = spsc_with::<u64>(512, WaitStrategy::Adaptive);
    let writer = thread::spawn(move || {
        let mut next = 0;
        let mut batch = 1;
        while next < SPSC_ITEMS {
            // Batches of 1..=100 items, each published with one store.
            let end = (next + batch).min(SPSC_ITEMS);
            while next < end {
                if let Err(item) = producer.stage(next) {
                    producer.push(item).unwrap(); // publishes, waits for room
                }
                next += 1;
            }
            producer.publish();
            batch = batch % 100 + 1;
        }
    });
    let mut expected = 0;
    loop {
        match consumer.pop() {
            Some(item) => expect_next(&mut expected, item),
            None => {
                if consumer.wait() == WaitResult::Closed {
                    break;
                }
            }
        }
    }
    assert_eq!(expected, SPSC_ITEMS, "items lost");
    writer.join().unwrap();
    eprintln!(
        "spsc staged batches: {SPSC_ITEMS} items in {:?}",
        started.elapsed()
    );
}

/// Wakes a consumer that sleeps in `thread::park` of its own accord, the way
/// a mio loop sleeps in `Poll::poll`; counts the wake-ups.
struct CountingWaker {
    wakes: AtomicUsize,
    sleeper: thread::Thread,
}

impl Wake for CountingWaker {
    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.sleeper.unpark();
    }
}

/// A consumer that sleeps in `thread::park` of its own accord (as a mio loop
/// sleeps in `Poll::poll`) after `prepare_sleep`, and a producer that pauses
/// now and then so that it does fall asleep.
fn spsc_external_sleeper(strategy: WaitStrategy) {
    const ITEMS: u64 = 1_000_000;
    let (mut producer, mut consumer) = spsc_with::<u64>(256, strategy);
    let waker = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
        sleeper: thread::current(),
    });
    consumer.set_waker(waker.clone());
    let writer = thread::spawn(move || {
        for i in 0..ITEMS {
            producer.push(i).unwrap();
            if i % 50_000 == 0 {
                thread::sleep(Duration::from_micros(200)); // the consumer falls asleep
            }
        }
    });
    let mut expected = 0;
    loop {
        consumer.drain(usize::MAX, |item| expect_next(&mut expected, item));
        if consumer.is_closed() && consumer.available() == 0 {
            break;
        }
        if consumer.prepare_sleep() {
            thread::park(); // stands for `poll.poll(&mut events, None)`
            consumer.finish_sleep();
        }
    }
    assert_eq!(expected, ITEMS, "items lost");
    writer.join().unwrap();
    assert!(waker.wakes.load(Ordering::Relaxed) > 0);
}

#[test]
fn spsc_external_sleeper_gets_every_item() {
    let _turn = one_at_a_time();
    spsc_external_sleeper(WaitStrategy::Adaptive);
}

#[test]
fn spsc_external_sleeper_gets_every_item_membarrier() {
    let _turn = one_at_a_time();
    spsc_external_sleeper(WaitStrategy::Membarrier);
}

/// Reads everything with the given reading style, checking order.
fn read_everything(mut reader: Subscriber<u64>, style: ReaderStyle) -> u64 {
    let mut expected = 0;
    match style {
        ReaderStyle::Fast => {
            while let WaitResult::Ready(_) = reader.wait() {
                reader.drain(usize::MAX, |item| expect_next(&mut expected, *item));
            }
        }
        ReaderStyle::Sleepy => loop {
            match reader.pop() {
                Some(item) => {
                    expect_next(&mut expected, item);
                    if item % 200_000 == 0 {
                        thread::sleep(Duration::from_millis(3));
                    }
                }
                None => {
                    if reader.wait() == WaitResult::Closed {
                        break;
                    }
                }
            }
        },
        ReaderStyle::SmallBatches => {
            while let WaitResult::Ready(_) = reader.wait() {
                reader.drain(7, |item| expect_next(&mut expected, *item));
            }
        }
    }
    expected
}

#[derive(Clone, Copy, Debug)]
enum ReaderStyle {
    /// Drains everything available each time.
    Fast,
    /// Pops one at a time and sleeps now and then.
    Sleepy,
    /// Drains at most 7 at a time.
    SmallBatches,
}

/// Three readers (fast, sleepy, small batches) each read every item of a
/// writer that pushes some items and stages others.
fn broadcast_three_readers_at_different_speeds(strategy: WaitStrategy) {
    let started = Instant::now();
    let (mut publisher, readers) = broadcast_with::<u64>(1024, 3, strategy);
    let styles = [
        ReaderStyle::Fast,
        ReaderStyle::Sleepy,
        ReaderStyle::SmallBatches,
    ];
    let handles: Vec<_> = readers
        .into_iter()
        .zip(styles)
        .map(|(reader, style)| thread::spawn(move || read_everything(reader, style)))
        .collect();
    let mut next = 0;
    while next < BROADCAST_ITEMS {
        if next % 3 == 0 {
            publisher.push(next);
        } else if let Err(item) = publisher.stage(next) {
            publisher.push(item);
        }
        if next % 16 == 15 {
            publisher.publish();
        }
        next += 1;
    }
    let full_events = publisher.full_events();
    drop(publisher);
    for (handle, style) in handles.into_iter().zip(styles) {
        assert_eq!(
            handle.join().unwrap(),
            BROADCAST_ITEMS,
            "{style:?} reader lost items"
        );
    }
    // The sleepy reader holds the writer back: back-pressure is visible.
    assert!(full_events > 0, "the writer never found the ring full");
    eprintln!(
        "broadcast {strategy}: {BROADCAST_ITEMS} items to 3 readers in {:?}, writer full {full_events} times",
        started.elapsed()
    );
}

#[test]
fn broadcast_three_readers_at_different_speeds_each_see_every_item() {
    let _turn = one_at_a_time();
    broadcast_three_readers_at_different_speeds(WaitStrategy::Adaptive);
}

#[test]
fn broadcast_three_readers_at_different_speeds_each_see_every_item_membarrier() {
    let _turn = one_at_a_time();
    broadcast_three_readers_at_different_speeds(WaitStrategy::Membarrier);
}

#[test]
fn broadcast_spin_reader_sees_every_item() {
    let _turn = one_at_a_time();
    const ITEMS: u64 = 1_000_000;
    // One reader: writer and reader each spin on one of the two cores.
    let (mut publisher, mut readers) = broadcast_with::<u64>(256, 1, WaitStrategy::Spin);
    let reader = readers.pop().unwrap();
    let handle = thread::spawn(move || read_everything(reader, ReaderStyle::SmallBatches));
    for i in 0..ITEMS {
        publisher.push(i);
    }
    drop(publisher);
    assert_eq!(handle.join().unwrap(), ITEMS);
}
