//! Ring throughput and hand-off latency between two real threads: our SPSC
//! ring against `crossbeam_queue::ArrayQueue` and `std::sync::mpsc::sync_channel`.
//!
//! - `ring_throughput/burst_N`: the producer pushes bursts of N items (ours
//!   stages the burst and publishes it with one store; the others push item by
//!   item), the consumer takes everything (ours drains with one store per
//!   batch). Reported per item; the summary also gives items/s.
//!   `array_queue` spins on both sides, like `ours_spin`;
//!   `array_queue_adaptive` adds the sleep protocol ours uses under
//!   `WaitStrategy::Adaptive` (and its fences), like `ours_adaptive`;
//!   `array_queue_membarrier` the same protocol with the barrier pair of
//!   `WaitStrategy::Membarrier`, like `ours_membarrier` (both need Linux's
//!   private expedited `membarrier`; ours falls back to `Adaptive` without
//!   it, the ArrayQueue case panics).
//! - `ring_handoff`: a ping-pong between two threads over two rings; the round
//!   trip divided by 2, so the time is one one-way hand-off. Ours spins
//!   (`WaitStrategy::Spin`), as does the ArrayQueue loop; mpsc blocks.
//!   `atomic_floor` is the same ping-pong over two bare atomics, one cache
//!   line each: the time one line takes to cross between the two cores,
//!   which every queue's hand-off pays at least. It depends on the machine
//!   far more than on any queue (docs/BENCHMARKS.md has the figures per machine).
//!
//! The machine has two cores: both threads of a benchmark run at once, so
//! anything else running skews the numbers.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use orderbook::ring::{spsc_with, WaitResult, WaitStrategy};

const CAPACITY: usize = 1024;

/// A benchmark case: its name and what it runs for a number of items (or
/// round trips), returning the time to report.
type Case<'a> = (&'static str, &'a dyn Fn(u64) -> Duration);
const BURSTS: [usize; 3] = [1, 16, 256];
const SAMPLES: usize = 20;

/// Every sample's time per item (ns), by benchmark; the last `SAMPLES` of each
/// are criterion's measurement (the earlier ones are its warm-up).
static SAMPLES_NS: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &str, elapsed: Duration, items: u64) {
    let per_item = elapsed.as_nanos() as f64 / items.max(1) as f64;
    SAMPLES_NS
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .push(per_item);
}

/// The producer's side of every throughput case: `push(writer, item)` for
/// each of `0..items` in order, and `burst_end(writer)` after each `burst`
/// of them (and after the last, shorter one).
fn in_bursts<W>(
    items: u64,
    burst: usize,
    writer: &mut W,
    mut push: impl FnMut(&mut W, u64),
    mut burst_end: impl FnMut(&mut W),
) {
    let mut next = 0;
    while next < items {
        let end = (next + burst as u64).min(items);
        while next < end {
            push(writer, next);
            next += 1;
        }
        burst_end(writer);
    }
}

/// Our ring: the producer stages `burst` items and publishes them at once.
fn ours_throughput(items: u64, burst: usize, strategy: WaitStrategy) -> Duration {
    let (mut producer, mut consumer) = spsc_with::<u64>(CAPACITY, strategy);
    let started = Instant::now();
    let writer = thread::spawn(move || {
        in_bursts(
            items,
            burst,
            &mut producer,
            |producer, item| {
                if let Err(item) = producer.stage(item) {
                    producer.push(item).unwrap(); // publishes, waits for room
                }
            },
            |producer| producer.publish(),
        );
    });
    let mut received = 0;
    while let WaitResult::Ready(_) = consumer.wait() {
        received += consumer.drain(usize::MAX, |item| {
            black_box(item);
        }) as u64;
    }
    let elapsed = started.elapsed();
    assert_eq!(received, items);
    writer.join().unwrap();
    elapsed
}

/// Pushes `item` into `queue`, calling `on_full` each time it is full.
fn push_retrying(queue: &ArrayQueue<u64>, mut item: u64, mut on_full: impl FnMut()) {
    while let Err(back) = queue.push(item) {
        item = back;
        on_full();
    }
}

/// `ArrayQueue`: push item by item, spinning while full; pop spinning while
/// empty.
fn array_queue_throughput(items: u64, burst: usize) -> Duration {
    let queue = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let started = Instant::now();
    let writer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            in_bursts(
                items,
                burst,
                &mut (),
                |_, item| push_retrying(&queue, item, std::hint::spin_loop),
                |_| {},
            )
        })
    };
    let mut received = 0;
    while received < items {
        match queue.pop() {
            Some(item) => {
                black_box(item);
                received += 1;
            }
            None => std::hint::spin_loop(),
        }
    }
    let elapsed = started.elapsed();
    writer.join().unwrap();
    elapsed
}

/// `ArrayQueue` given the waiting ours does under `WaitStrategy::Adaptive`
/// (or, with `asymmetric`, `WaitStrategy::Membarrier`), so the two are
/// compared like for like: each side spins with `Backoff`, then parks after
/// raising a flag and re-checking the queue (Dekker), and the other side,
/// after a `SeqCst` fence, unparks it if the flag is up. The producer pays
/// the fence once per burst (and before it waits for room), the consumer
/// once per drain of everything it found: the fewest fences this protocol
/// allows a queue that publishes item by item. `asymmetric` swaps the two
/// fences for a compiler barrier on the notifying side and `membarrier(2)`
/// on the sleeping side, as `Membarrier` does.
fn array_queue_adaptive_throughput(items: u64, burst: usize, asymmetric: bool) -> Duration {
    use crossbeam_utils::{Backoff, CachePadded};
    use rustix::thread::{membarrier, MembarrierCommand};
    use std::sync::atomic::{compiler_fence, fence, AtomicBool, Ordering};

    struct Shared {
        queue: ArrayQueue<u64>,
        consumer_sleeping: CachePadded<AtomicBool>,
        producer_sleeping: CachePadded<AtomicBool>,
        asymmetric: bool,
    }
    /// After a publish (or a drain): the notifier's barrier, then wake the
    /// other side if it sleeps.
    fn notify(shared: &Shared, sleeping: &AtomicBool, whom: &thread::Thread) {
        if shared.asymmetric {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if sleeping.load(Ordering::Relaxed) {
            whom.unpark();
        }
    }
    /// Spins, then sleeps until `ready()` (re-checked after the flag is up
    /// and the sleeper's barrier).
    fn wait_until(asymmetric: bool, sleeping: &AtomicBool, ready: impl Fn() -> bool) {
        let backoff = Backoff::new();
        while !ready() {
            if backoff.is_completed() {
                sleeping.store(true, Ordering::Relaxed);
                if asymmetric {
                    membarrier(MembarrierCommand::PrivateExpedited).expect("membarrier");
                } else {
                    fence(Ordering::SeqCst);
                }
                if !ready() {
                    thread::park();
                }
                sleeping.store(false, Ordering::Relaxed);
            } else {
                backoff.snooze();
            }
        }
    }

    if asymmetric {
        membarrier(MembarrierCommand::RegisterPrivateExpedited).expect("membarrier registration");
    }
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(CAPACITY),
        consumer_sleeping: CachePadded::new(AtomicBool::new(false)),
        producer_sleeping: CachePadded::new(AtomicBool::new(false)),
        asymmetric,
    });
    let consumer = thread::current();
    let started = Instant::now();
    let writer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            in_bursts(
                items,
                burst,
                &mut (),
                |_, item| {
                    push_retrying(&shared.queue, item, || {
                        notify(&shared, &shared.consumer_sleeping, &consumer);
                        wait_until(asymmetric, &shared.producer_sleeping, || {
                            !shared.queue.is_full()
                        });
                    })
                },
                |_| notify(&shared, &shared.consumer_sleeping, &consumer),
            )
        })
    };
    let producer = writer.thread().clone();
    let mut received = 0;
    while received < items {
        let mut drained = 0;
        while let Some(item) = shared.queue.pop() {
            black_box(item);
            drained += 1;
        }
        if drained == 0 {
            wait_until(asymmetric, &shared.consumer_sleeping, || {
                !shared.queue.is_empty()
            });
        } else {
            received += drained;
            notify(&shared, &shared.producer_sleeping, &producer);
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(received, items);
    writer.join().unwrap();
    elapsed
}

/// `sync_channel`: blocking send and receive.
fn mpsc_throughput(items: u64, burst: usize) -> Duration {
    let (sender, receiver) = mpsc::sync_channel::<u64>(CAPACITY);
    let started = Instant::now();
    let writer = thread::spawn(move || {
        in_bursts(
            items,
            burst,
            &mut (),
            |_, item| sender.send(item).unwrap(),
            |_| {},
        )
    });
    let mut received = 0;
    for item in receiver.iter() {
        black_box(item);
        received += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(received, items);
    writer.join().unwrap();
    elapsed
}

fn throughput(c: &mut Criterion) {
    for burst in BURSTS {
        let mut group = c.benchmark_group(format!("ring_throughput/burst_{burst}"));
        group.throughput(Throughput::Elements(1));
        let cases: [Case; 7] = [
            ("ours_adaptive", &|n| {
                ours_throughput(n, burst, WaitStrategy::Adaptive)
            }),
            ("ours_membarrier", &|n| {
                ours_throughput(n, burst, WaitStrategy::Membarrier)
            }),
            ("ours_spin", &|n| {
                ours_throughput(n, burst, WaitStrategy::Spin)
            }),
            ("array_queue", &|n| array_queue_throughput(n, burst)),
            ("array_queue_adaptive", &|n| {
                array_queue_adaptive_throughput(n, burst, false)
            }),
            ("array_queue_membarrier", &|n| {
                array_queue_adaptive_throughput(n, burst, true)
            }),
            ("mpsc_sync_channel", &|n| mpsc_throughput(n, burst)),
        ];
        for (name, run) in cases {
            let key = format!("throughput burst {burst:>3} {name}");
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let elapsed = run(iters);
                    record(&key, elapsed, iters);
                    elapsed
                })
            });
        }
        group.finish();
    }
}

/// Ping-pong over two of our rings, both spinning. Returns the one-way time
/// for `round_trips` round trips (half the total).
fn ours_handoff(round_trips: u64) -> Duration {
    let (mut ping, mut ping_rx) = spsc_with::<u64>(16, WaitStrategy::Spin);
    let (mut pong, mut pong_rx) = spsc_with::<u64>(16, WaitStrategy::Spin);
    let echo = thread::spawn(move || {
        while let WaitResult::Ready(_) = ping_rx.wait() {
            while let Some(item) = ping_rx.pop() {
                pong.push(item).unwrap();
            }
        }
    });
    let started = Instant::now();
    for i in 0..round_trips {
        ping.push(i).unwrap();
        loop {
            if let Some(back) = pong_rx.pop() {
                debug_assert_eq!(back, i);
                break;
            }
            std::hint::spin_loop();
        }
    }
    let elapsed = started.elapsed();
    drop(ping);
    echo.join().unwrap();
    elapsed / 2
}

fn array_queue_handoff(round_trips: u64) -> Duration {
    let ping = Arc::new(ArrayQueue::<u64>::new(16));
    let pong = Arc::new(ArrayQueue::<u64>::new(16));
    let echo = {
        let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
        thread::spawn(move || {
            let mut echoed = 0;
            while echoed < round_trips {
                match ping.pop() {
                    Some(item) => {
                        while pong.push(item).is_err() {
                            std::hint::spin_loop();
                        }
                        echoed += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
        })
    };
    let started = Instant::now();
    for i in 0..round_trips {
        while ping.push(i).is_err() {
            std::hint::spin_loop();
        }
        loop {
            if let Some(back) = pong.pop() {
                debug_assert_eq!(back, i);
                break;
            }
            std::hint::spin_loop();
        }
    }
    let elapsed = started.elapsed();
    echo.join().unwrap();
    elapsed / 2
}

/// Ping-pong over two bare atomics (each on its own cache line): no queue
/// at all, the hand-off's floor on this machine.
fn atomic_floor_handoff(round_trips: u64) -> Duration {
    use crossbeam_utils::CachePadded;
    use std::sync::atomic::{AtomicU64, Ordering};
    let lines = Arc::new((
        CachePadded::new(AtomicU64::new(0)),
        CachePadded::new(AtomicU64::new(0)),
    ));
    let echo = {
        let lines = Arc::clone(&lines);
        thread::spawn(move || {
            for i in 1..=round_trips {
                while lines.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                lines.1.store(i, Ordering::Release);
            }
        })
    };
    let started = Instant::now();
    for i in 1..=round_trips {
        lines.0.store(i, Ordering::Release);
        while lines.1.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
    }
    let elapsed = started.elapsed();
    echo.join().unwrap();
    elapsed / 2
}

fn mpsc_handoff(round_trips: u64) -> Duration {
    let (ping, ping_rx) = mpsc::sync_channel::<u64>(16);
    let (pong, pong_rx) = mpsc::sync_channel::<u64>(16);
    let echo = thread::spawn(move || {
        for item in ping_rx.iter() {
            pong.send(item).unwrap();
        }
    });
    let started = Instant::now();
    for i in 0..round_trips {
        ping.send(i).unwrap();
        let back = pong_rx.recv().unwrap();
        debug_assert_eq!(back, i);
    }
    let elapsed = started.elapsed();
    drop(ping);
    echo.join().unwrap();
    elapsed / 2
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_handoff");
    let cases: [Case; 4] = [
        ("ours_spin", &ours_handoff),
        ("array_queue", &array_queue_handoff),
        ("mpsc_sync_channel", &mpsc_handoff),
        ("atomic_floor", &atomic_floor_handoff),
    ];
    for (name, run) in cases {
        let key = format!("one-way hand-off {name}");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let elapsed = run(iters);
                record(&key, elapsed, iters);
                elapsed
            })
        });
    }
    group.finish();
}

fn print_summary() {
    let samples = SAMPLES_NS.lock().unwrap();
    if samples.is_empty() {
        return;
    }
    println!();
    println!("summary: median of the last {SAMPLES} samples of each benchmark");
    println!("{:<46} {:>10} {:>14}", "benchmark", "ns/item", "items/s");
    for (name, all) in samples.iter() {
        let mut measured = all[all.len().saturating_sub(SAMPLES)..].to_vec();
        measured.sort_by(f64::total_cmp);
        let median = measured[measured.len() / 2];
        println!("{name:<46} {median:>10.1} {:>14.0}", 1e9 / median);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(SAMPLES);
    targets = throughput, handoff
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_summary();
}
