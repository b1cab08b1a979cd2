//! Model checks of the rings' protocol with `loom`: every interleaving (up to
//! a preemption bound) of small scenarios, including the sleep handshake, so a
//! lost wake-up shows up as a deadlock and a slot race as a loom panic.
//!
//! Every ring end runs on a spawned thread and the model's main thread only
//! joins them: a ring may unpark a thread late (harmless with `std`, where
//! `join` does not use the park token), but `loom` treats an unpark that
//! reaches a thread blocked in `join` as a broken join.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_ring`
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;
use orderbook::ring::{
    broadcast, spsc, spsc_with, Consumer, Subscriber, WaitResult, WaitStrategy, Wake,
};

/// Explores the model with a preemption bound, which keeps the larger models
/// (three threads, blocking on both sides) to seconds while still covering
/// the interleavings where protocol bugs live.
/// `LOOM_MAX_PREEMPTIONS` overrides the bound.
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// Consumes until end-of-stream with `wait` + `pop`, returning what it got.
fn consume_all_popping(consumer: &mut Consumer<u32>) -> Vec<u32> {
    let mut got = Vec::new();
    while let WaitResult::Ready(_) = consumer.wait() {
        while let Some(item) = consumer.pop() {
            got.push(item);
        }
    }
    got
}

/// Reads until end-of-stream with `wait` + `drain`, returning what it got.
fn read_all(subscriber: &mut Subscriber<u32>) -> Vec<u32> {
    let mut got = Vec::new();
    while let WaitResult::Ready(_) = subscriber.wait() {
        subscriber.drain(usize::MAX, |item| got.push(*item));
    }
    got
}

#[test]
fn spsc_try_push_and_pop_keep_order_through_a_full_ring() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::<u32>(2);
        let writer = thread::spawn(move || {
            for i in 0..3 {
                let mut item = i;
                while let Err(back) = producer.try_push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 3 {
                match consumer.pop() {
                    Some(item) => got.push(item),
                    None => thread::yield_now(),
                }
            }
            assert_eq!(consumer.pop(), None);
            got
        });
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1, 2]);
    });
}

/// Capacity 2, four items: the producer parks on a full ring, the consumer
/// parks on an empty one; a lost wake-up would deadlock the model.
fn blocking_push_and_wait_park_and_wake_each_other(strategy: WaitStrategy) {
    model(3, move || {
        let (mut producer, mut consumer) = spsc_with::<u32>(2, strategy);
        let writer = thread::spawn(move || {
            for i in 0..4 {
                producer.push(i).unwrap();
            }
        });
        let reader = thread::spawn(move || consume_all_popping(&mut consumer));
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1, 2, 3]);
    });
}

#[test]
fn spsc_blocking_push_and_wait_park_and_wake_each_other() {
    blocking_push_and_wait_park_and_wake_each_other(WaitStrategy::Adaptive);
}

/// The same protocol with `Membarrier`'s barrier pair, which the model
/// stands in for with a `SeqCst` fence on each side (`ring::sync::barrier`):
/// this checks the strategy's own paths through the protocol.
#[test]
fn spsc_blocking_push_and_wait_park_and_wake_each_other_membarrier() {
    blocking_push_and_wait_park_and_wake_each_other(WaitStrategy::Membarrier);
}

#[test]
fn spsc_staged_batch_is_seen_whole_and_close_ends_the_stream() {
    model(3, || {
        let (mut producer, mut consumer) = spsc::<u32>(4);
        let writer = thread::spawn(move || {
            producer.stage(0).unwrap();
            producer.stage(1).unwrap();
            producer.publish();
            producer.stage(2).unwrap();
            // Dropping the producer publishes the staged item, then closes.
        });
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            while let WaitResult::Ready(ready) = consumer.wait() {
                // Items are published two, then one: never a batch split.
                let expected: &[usize] = if got.is_empty() { &[2, 3] } else { &[1] };
                assert!(expected.contains(&ready), "ready {ready} after {got:?}");
                consumer.drain(usize::MAX, |item| got.push(item));
            }
            got
        });
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1, 2]);
    });
}

#[test]
fn spsc_spin_strategy_hands_over_without_sleeping() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc_with::<u32>(1, WaitStrategy::Spin);
        let writer = thread::spawn(move || {
            producer.push(0).unwrap();
            producer.push(1).unwrap();
        });
        let reader = thread::spawn(move || consume_all_popping(&mut consumer));
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1]);
    });
}

/// Counts its drops (a plain std atomic: loom's joins order the reads).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn spsc_items_left_behind_are_dropped_exactly_once() {
    model(3, || {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        DROPS.store(0, Ordering::SeqCst);
        let (mut producer, mut consumer) = spsc::<Counted<'static>>(1);
        let writer = thread::spawn(move || {
            for _ in 0..2 {
                // Fails only once the consumer is gone with the ring full.
                if producer.push(Counted(&DROPS)).is_err() {
                    break;
                }
            }
        });
        let reader = thread::spawn(move || {
            // Take one item (if it comes), then leave.
            if let WaitResult::Ready(_) = consumer.wait() {
                drop(consumer.pop());
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
        // Every item created was dropped once: the refused one by the writer,
        // the consumed one here, the rest with the ring.
        assert_eq!(DROPS.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn broadcast_two_readers_each_see_every_item_while_the_writer_blocks() {
    // Capacity 1, two items: the writer must wait for both readers to pass
    // the first item, and each reader parks until an item comes.
    model(2, || {
        let (mut publisher, mut readers) = broadcast::<u32>(1, 2);
        let mut second = readers.pop().unwrap();
        let mut first = readers.pop().unwrap();
        let writer = thread::spawn(move || {
            for i in 0..2 {
                publisher.push(i);
            }
        });
        let reader_1 = thread::spawn(move || read_all(&mut first));
        let reader_2 = thread::spawn(move || read_all(&mut second));
        writer.join().unwrap();
        assert_eq!(reader_1.join().unwrap(), [0, 1]);
        assert_eq!(reader_2.join().unwrap(), [0, 1]);
    });
}

#[test]
fn broadcast_staged_batch_reaches_a_reader_that_pops() {
    model(3, || {
        let (mut publisher, mut readers) = broadcast::<u32>(2, 1);
        let mut reader = readers.pop().unwrap();
        let writer = thread::spawn(move || {
            publisher.stage(0).unwrap();
            publisher.stage(1).unwrap();
            publisher.publish();
            publisher.push(2);
        });
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            while let WaitResult::Ready(_) = reader.wait() {
                while let Some(item) = reader.pop() {
                    got.push(item);
                }
            }
            got
        });
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1, 2]);
    });
}

/// What a mio loop installs: here it unparks the loom thread that sleeps.
struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(&self) {
        self.0.unpark();
    }
}

#[test]
fn external_sleeper_following_prepare_and_finish_sleep_is_never_stranded() {
    model(3, || {
        let (mut producer, mut consumer) = spsc::<u32>(2);
        let writer = thread::spawn(move || {
            producer.push(0).unwrap();
            producer.push(1).unwrap();
        });
        let reader = thread::spawn(move || {
            consumer.set_waker(std::sync::Arc::new(ThreadWaker(thread::current())));
            // The shape of the I/O thread's loop: drain, then sleep "in poll".
            let mut got = Vec::new();
            loop {
                consumer.drain(usize::MAX, |item| got.push(item));
                if consumer.is_closed() && consumer.available() == 0 {
                    break;
                }
                if consumer.prepare_sleep() {
                    thread::park();
                    consumer.finish_sleep();
                }
            }
            got
        });
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), [0, 1]);
    });
}
