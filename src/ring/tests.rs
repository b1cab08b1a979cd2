//! The contract of both rings, on one thread (and a few short two-thread
//! hand-offs for the blocking calls).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::*;

/// Counts its drops in a shared counter.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn capacity_is_rounded_up_to_a_power_of_two() {
    assert_eq!(spsc::<u8>(1).0.capacity(), 1);
    assert_eq!(spsc::<u8>(3).0.capacity(), 4);
    assert_eq!(spsc::<u8>(1000).1.capacity(), 1024);
    assert_eq!(broadcast::<u8>(5, 1).0.capacity(), 8);
}

#[test]
fn reserved_bytes_are_what_a_packed_ring_allocates() {
    for capacity in [1, 3, 1000, 1 << 12] {
        let buffer = buffer::Buffer::<[u64; 10]>::with_capacity(capacity, false);
        assert_eq!(buffer.slot_bytes(), reserved_bytes::<[u64; 10]>(capacity));
    }
    assert_eq!(reserved_bytes::<[u8; 96]>(1000), 96 * 1024);
}

#[test]
#[should_panic(expected = "at least 1")]
fn zero_capacity_is_refused() {
    let _ = spsc::<u8>(0);
}

#[test]
fn full_ring_gives_the_item_back() {
    let (mut producer, mut consumer) = spsc::<String>(2);
    producer.try_push("a".into()).unwrap();
    producer.try_push("b".into()).unwrap();
    assert_eq!(producer.try_push("c".into()), Err("c".to_string()));
    assert_eq!(producer.stage("d".into()), Err("d".to_string()));
    assert_eq!(producer.full_events(), 2);
    assert_eq!(consumer.producer_full_events(), 2);
    assert_eq!(producer.free_len(), 0);
    assert_eq!(consumer.pop().as_deref(), Some("a"));
    assert_eq!(producer.free_len(), 1);
    producer.try_push("c".into()).unwrap();
    assert_eq!(consumer.pop().as_deref(), Some("b"));
    assert_eq!(consumer.pop().as_deref(), Some("c"));
    assert_eq!(consumer.pop(), None);
}

#[test]
fn items_come_out_in_order_across_many_wrap_arounds() {
    let (mut producer, mut consumer) = spsc::<u64>(4);
    let mut next_out = 0;
    for next_in in 0..1000u64 {
        if producer.try_push(next_in).is_err() {
            while let Some(item) = consumer.pop() {
                assert_eq!(item, next_out);
                next_out += 1;
            }
            producer.try_push(next_in).unwrap();
        }
    }
    consumer.drain(usize::MAX, |item| {
        assert_eq!(item, next_out);
        next_out += 1;
    });
    assert_eq!(next_out, 1000);
}

/// The slots of positions `0..len` of a `len`-slot buffer of `T`, spread
/// or not: every slot once, and, spread, each position's neighbour on
/// another cache line and the first slot on a line boundary.
fn check_layout<T>(len: usize, spread: bool, expect_spread: bool) {
    let buffer = super::buffer::Buffer::<T>::with_capacity(len, spread);
    let size = std::mem::size_of::<T>();
    let addresses: Vec<usize> = (0..len).map(|p| buffer.slot_address(p)).collect();
    let base = *addresses.iter().min().unwrap();
    let mut offsets: Vec<usize> = addresses.iter().map(|a| (a - base) / size).collect();
    for (p, &address) in addresses.iter().enumerate() {
        // Positions wrap: `p` and `p + len` share a slot.
        assert_eq!(buffer.slot_address(p + len), address);
    }
    let line = |address: usize| address / 64;
    let neighbours_apart = (1..len).all(|p| line(addresses[p]) != line(addresses[p - 1]));
    if expect_spread {
        assert!(neighbours_apart, "{size}-byte items, {len} slots");
        assert_eq!(base % 64, 0, "the first slot starts a line");
    } else {
        // Packed: position `p` is slot `p`.
        assert!(offsets.iter().enumerate().all(|(p, &slot)| slot == p));
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..len).collect::<Vec<_>>(), "a permutation");
}

#[test]
fn spread_rings_put_neighbouring_items_on_different_lines() {
    for len in [64, 128, 1024, 4096] {
        check_layout::<u64>(len, true, true);
        check_layout::<u64>(len, false, false);
        check_layout::<Box<u8>>(len, true, true);
    }
    for len in [16, 64, 1024] {
        check_layout::<u128>(len, true, true);
    }
    check_layout::<u8>(4096, true, true);
    check_layout::<u32>(256, true, true);
    // Too few slots for whole blocks, or items of 64 bytes or more, or not
    // aligned to their size (a slot could straddle two lines): packed.
    check_layout::<u64>(32, true, false);
    check_layout::<u8>(2048, true, false);
    check_layout::<[u64; 8]>(1024, true, false);
    check_layout::<[u64; 2]>(1024, true, false);
    check_layout::<[u8; 24]>(1024, true, false);
}

#[test]
fn only_adaptive_rings_keep_small_items_packed() {
    assert!(!WaitStrategy::Adaptive.spreads_items());
    assert!(WaitStrategy::Spin.spreads_items());
    assert!(WaitStrategy::Membarrier.spreads_items());
}

#[test]
fn batches_and_drains_of_every_size_keep_order_over_many_laps() {
    laps_of_every_batch_size(spsc::<u64>(8));
    // Spread (a spin ring of small items), with batches across the blocks.
    let spread = spsc_with::<u64>(64, WaitStrategy::Spin);
    laps_of_every_batch_size(spread);
}

fn laps_of_every_batch_size((mut producer, mut consumer): (Producer<u64>, Consumer<u64>)) {
    // Batch and drain sizes that do not divide the capacity put every
    // batch boundary and every drain stop at every slot, lap after lap.
    let capacity = producer.capacity();
    let (mut next_in, mut next_out) = (0u64, 0u64);
    let mut size = 1;
    while next_out < 100_000 {
        if producer.free_len() >= size {
            for _ in 0..size {
                producer.stage(next_in).unwrap();
                next_in += 1;
            }
            producer.publish();
            size = size % (capacity - 1) + 1;
        }
        let max = (next_in % (capacity as u64 - 3) + 1) as usize;
        let before = next_out;
        let taken = consumer.drain(max, |item| {
            assert_eq!(item, next_out);
            next_out += 1;
        });
        assert_eq!(taken as u64, next_out - before);
        assert_eq!(taken, max.min((next_in - before) as usize));
    }
    assert_eq!(
        producer.free_len(),
        capacity - (next_in - next_out) as usize
    );
}

#[test]
fn staged_items_are_invisible_until_published() {
    let (mut producer, mut consumer) = spsc::<u32>(8);
    producer.stage(1).unwrap();
    producer.stage(2).unwrap();
    assert_eq!(producer.staged_len(), 2);
    assert_eq!(consumer.available(), 0);
    assert_eq!(consumer.pop(), None);
    producer.publish();
    assert_eq!(producer.staged_len(), 0);
    assert_eq!(consumer.available(), 2);
    let mut seen = Vec::new();
    assert_eq!(consumer.drain(usize::MAX, |item| seen.push(item)), 2);
    assert_eq!(seen, [1, 2]);
}

#[test]
fn staged_items_count_against_capacity() {
    let (mut producer, _consumer) = spsc::<u32>(2);
    producer.stage(1).unwrap();
    producer.stage(2).unwrap();
    assert_eq!(producer.stage(3), Err(3));
    // `try_push` publishes what was staged even when its own item is refused.
    assert_eq!(producer.try_push(3), Err(3));
    assert_eq!(producer.staged_len(), 0);
}

#[test]
fn drain_stops_at_max_and_frees_slots_once() {
    let (mut producer, mut consumer) = spsc::<u32>(8);
    for i in 0..6 {
        producer.try_push(i).unwrap();
    }
    let mut seen = Vec::new();
    assert_eq!(consumer.drain(4, |item| seen.push(item)), 4);
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(producer.free_len(), 6);
    assert_eq!(consumer.drain(0, |_| unreachable!()), 0);
    assert_eq!(consumer.drain(10, |item| seen.push(item)), 2);
    assert_eq!(consumer.drain(10, |_| unreachable!()), 0);
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn unconsumed_items_are_dropped_with_the_ring() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (mut producer, mut consumer) = spsc::<Counted>(8);
        for _ in 0..5 {
            producer.try_push(Counted(drops.clone())).unwrap();
        }
        producer.stage(Counted(drops.clone())).unwrap();
        drop(consumer.pop());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(producer);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn items_are_dropped_exactly_once_when_the_ring_has_wrapped() {
    dropped_once_after_wrapping(spsc::<Counted>(4), 3, 2);
    // Spread: 8-byte items in a spin ring, left over across two blocks.
    dropped_once_after_wrapping(spsc_with::<Counted>(128, WaitStrategy::Spin), 50, 100);
}

/// Ten laps of `per_lap` items through the ring, then `left` more left in
/// it: each dropped once, the last `left` with the ring.
fn dropped_once_after_wrapping(
    (mut producer, mut consumer): (Producer<Counted>, Consumer<Counted>),
    per_lap: usize,
    left: usize,
) {
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        for _ in 0..per_lap {
            producer.try_push(Counted(drops.clone())).unwrap();
        }
        assert_eq!(consumer.drain(usize::MAX, drop), per_lap);
    }
    for _ in 0..left {
        producer.try_push(Counted(drops.clone())).unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 10 * per_lap);
    drop(consumer);
    assert_eq!(drops.load(Ordering::SeqCst), 10 * per_lap);
    drop(producer);
    assert_eq!(drops.load(Ordering::SeqCst), 10 * per_lap + left);
}

#[test]
fn a_panicking_drain_callback_neither_loses_nor_double_drops() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut producer, mut consumer) = spsc::<Counted>(8);
    for _ in 0..4 {
        producer.try_push(Counted(drops.clone())).unwrap();
    }
    let mut calls = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        consumer.drain(usize::MAX, |item| {
            calls += 1;
            if calls == 2 {
                panic!("callback fails on the second item");
            }
            drop(item);
        });
    }));
    assert!(outcome.is_err());
    // Two items were handed out (and dropped, one by the unwinding panic).
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(consumer.available(), 2);
    drop((producer, consumer));
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn end_of_stream_comes_after_the_last_item() {
    let (mut producer, mut consumer) = spsc::<u32>(4);
    producer.try_push(1).unwrap();
    producer.stage(2).unwrap();
    producer.close(); // publishes the staged item
    assert!(consumer.is_closed());
    assert_eq!(consumer.wait(), WaitResult::Ready(2));
    assert_eq!(consumer.pop(), Some(1));
    assert_eq!(consumer.wait(), WaitResult::Ready(1));
    assert_eq!(consumer.pop(), Some(2));
    assert_eq!(consumer.wait(), WaitResult::Closed);
    assert_eq!(consumer.wait(), WaitResult::Closed);
}

#[test]
fn push_to_a_full_ring_fails_once_the_consumer_is_gone() {
    let (mut producer, consumer) = spsc::<u32>(1);
    producer.push(1).unwrap();
    assert!(!producer.is_abandoned());
    drop(consumer);
    assert!(producer.is_abandoned());
    assert_eq!(producer.push(2), Err(2));
}

#[test]
fn wait_strategy_parses_and_prints_its_name() {
    assert_eq!("adaptive".parse(), Ok(WaitStrategy::Adaptive));
    assert_eq!(" Spin ".parse(), Ok(WaitStrategy::Spin));
    assert_eq!("MEMBARRIER".parse(), Ok(WaitStrategy::Membarrier));
    assert_eq!(WaitStrategy::default(), WaitStrategy::Adaptive);
    for strategy in [
        WaitStrategy::Adaptive,
        WaitStrategy::Spin,
        WaitStrategy::Membarrier,
    ] {
        assert_eq!(strategy.to_string().parse(), Ok(strategy));
    }
    let error = "yield".parse::<WaitStrategy>().unwrap_err();
    assert!(error.to_string().contains("\"yield\""), "{error}");
}

fn blocking_hand_off(strategy: WaitStrategy) {
    let (mut producer, mut consumer) = spsc_with::<u64>(2, strategy);
    let writer = thread::spawn(move || {
        for i in 0..1000 {
            producer.push(i).unwrap();
            if i % 100 == 0 {
                thread::sleep(Duration::from_millis(1)); // let the consumer park
            }
        }
    });
    let mut expected = 0;
    while let WaitResult::Ready(_) = consumer.wait() {
        if expected % 250 == 0 {
            thread::sleep(Duration::from_millis(1)); // let the producer park
        }
        consumer.drain(usize::MAX, |item| {
            assert_eq!(item, expected);
            expected += 1;
        });
    }
    assert_eq!(expected, 1000);
    writer.join().unwrap();
}

#[test]
fn blocking_push_and_wait_hand_everything_over_adaptive() {
    blocking_hand_off(WaitStrategy::Adaptive);
}

#[test]
fn blocking_push_and_wait_hand_everything_over_spin() {
    blocking_hand_off(WaitStrategy::Spin);
}

#[test]
fn blocking_push_and_wait_hand_everything_over_membarrier() {
    blocking_hand_off(WaitStrategy::Membarrier);
}

#[test]
fn a_membarrier_ring_runs_as_adaptive_only_where_the_kernel_refuses() {
    let (producer, consumer) = spsc_with::<u8>(2, WaitStrategy::Membarrier);
    let expected = if super::sync::barrier::register() {
        WaitStrategy::Membarrier
    } else {
        WaitStrategy::Adaptive
    };
    assert_eq!(producer.strategy(), expected);
    assert_eq!(consumer.strategy(), expected);
    let (publisher, readers) = broadcast_with::<u8>(2, 1, WaitStrategy::Membarrier);
    assert_eq!(publisher.strategy(), expected);
    assert_eq!(readers[0].strategy(), expected);
}

/// A waker of the kind a mio loop installs: it counts, and unparks a thread.
struct CountingWaker {
    wakes: AtomicUsize,
    thread: thread::Thread,
}

impl Wake for CountingWaker {
    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

#[test]
fn an_external_sleeper_is_woken_through_its_waker() {
    let (mut producer, mut consumer) = spsc::<u32>(4);
    let waker = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
        thread: thread::current(),
    });
    consumer.set_waker(waker.clone());
    assert!(consumer.prepare_sleep());
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        producer.try_push(9).unwrap();
        producer
    });
    while consumer.available() == 0 {
        thread::park();
    }
    consumer.finish_sleep();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(consumer.pop(), Some(9));
    let mut producer = writer.join().unwrap();
    // Awake: publishing does not call the waker.
    producer.try_push(10).unwrap();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 1);
    // Not safe to sleep with an item waiting, nor on a closed stream.
    assert!(!consumer.prepare_sleep());
    assert_eq!(consumer.pop(), Some(10));
    drop(producer);
    assert!(!consumer.prepare_sleep());
}

#[test]
#[should_panic(expected = "call set_waker first")]
fn prepare_sleep_without_a_waker_is_refused() {
    let (_producer, consumer) = spsc::<u32>(4);
    consumer.prepare_sleep();
}

#[test]
#[should_panic(expected = "set_waker must be called once")]
fn a_second_waker_is_refused() {
    let (_producer, mut consumer) = spsc::<u32>(4);
    consumer.set_waker(Arc::new(thread::current()));
    consumer.set_waker(Arc::new(thread::current()));
}

#[test]
fn spin_rings_never_offer_to_sleep() {
    let (_producer, mut consumer) = spsc_with::<u32>(4, WaitStrategy::Spin);
    consumer.set_waker(Arc::new(thread::current()));
    assert!(!consumer.prepare_sleep());
}

#[test]
fn every_reader_sees_every_item_in_order() {
    let (mut publisher, mut readers) = broadcast::<u64>(4, 3);
    let mut seen = vec![Vec::new(); 3];
    for i in 0..100u64 {
        publisher.push(i); // never blocks: every reader drains below
        for (reader, seen) in readers.iter_mut().zip(&mut seen) {
            if i % (reader.index() as u64 + 1) == 0 {
                reader.drain(usize::MAX, |item| seen.push(*item));
            }
        }
    }
    drop(publisher);
    for (reader, seen) in readers.iter_mut().zip(&mut seen) {
        while let WaitResult::Ready(_) = reader.wait() {
            reader.drain(2, |item| seen.push(*item));
        }
        assert_eq!(*seen, (0..100).collect::<Vec<_>>());
        assert_eq!(reader.position(), 100);
    }
}

#[test]
fn the_slowest_reader_makes_the_broadcast_ring_full() {
    let (mut publisher, mut readers) = broadcast::<u32>(2, 2);
    publisher.try_push(1).unwrap();
    publisher.try_push(2).unwrap();
    readers[0].drain(usize::MAX, |_| {});
    assert_eq!(publisher.try_push(3), Err(3));
    assert_eq!(publisher.full_events(), 1);
    assert_eq!(readers[0].writer_full_events(), 1);
    assert_eq!(readers[1].pop(), Some(1));
    publisher.try_push(3).unwrap();
    assert_eq!(publisher.stage(4), Err(4));
    assert_eq!(readers[0].pop(), Some(3));
    assert_eq!(readers[1].pop(), Some(2));
    assert_eq!(readers[1].pop(), Some(3));
    assert_eq!(publisher.free_len(), 2);
}

#[test]
fn a_dropped_reader_no_longer_holds_the_writer_back() {
    let (mut publisher, mut readers) = broadcast::<u32>(2, 2);
    let slow = readers.pop().unwrap();
    publisher.try_push(1).unwrap();
    publisher.try_push(2).unwrap();
    readers[0].drain(usize::MAX, |_| {});
    assert_eq!(publisher.try_push(3), Err(3));
    drop(slow);
    assert_eq!(publisher.live_readers(), 1);
    publisher.try_push(3).unwrap();
    assert_eq!(readers[0].pop(), Some(3));
    drop(readers);
    for i in 0..10 {
        publisher.push(i); // nobody listens: never full
    }
}

#[test]
fn broadcast_staging_publishes_once_and_close_ends_each_stream() {
    let (mut publisher, mut readers) = broadcast::<u32>(8, 2);
    publisher.stage(1).unwrap();
    publisher.stage(2).unwrap();
    assert_eq!(readers[0].available(), 0);
    publisher.publish();
    assert_eq!(readers[1].available(), 2);
    publisher.stage(3).unwrap();
    publisher.close();
    for reader in &mut readers {
        let mut seen = Vec::new();
        assert_eq!(reader.wait(), WaitResult::Ready(3));
        reader.drain(usize::MAX, |item| seen.push(*item));
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(reader.wait(), WaitResult::Closed);
    }
}

#[test]
fn a_blocked_writer_is_woken_by_a_reader() {
    let (mut publisher, mut readers) = broadcast::<u64>(2, 1);
    let mut reader = readers.pop().unwrap();
    let writer = thread::spawn(move || {
        for i in 0..500 {
            publisher.push(i);
        }
        publisher.full_events()
    });
    let mut expected = 0;
    while let WaitResult::Ready(_) = reader.wait() {
        if expected % 100 == 0 {
            thread::sleep(Duration::from_millis(2)); // the writer fills up and parks
        }
        reader.drain(usize::MAX, |item| {
            assert_eq!(*item, expected);
            expected += 1;
        });
    }
    assert_eq!(expected, 500);
    assert!(writer.join().unwrap() > 0);
}

#[test]
fn ring_ends_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Producer<String>>();
    assert_send::<Consumer<String>>();
    assert_send::<Publisher<u64>>();
    assert_send::<Subscriber<u64>>();
}
