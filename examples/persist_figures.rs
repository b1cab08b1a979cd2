//! Persistence figures at scale, with the service's own code paths:
//! the state file of a book with 1M resting orders (time to write it
//! atomically, and its size), then recovery of that file plus 1M journal
//! records after it (what the binary does before it listens).
//!
//! `cargo run --release --example persist_figures [resting] [records] [keep-dir]`
//! (defaults 1000000 1000000); works in a scratch directory it removes.
//! With `keep-dir`, the state file of the `resting` orders is also copied
//! there, to start a service on a big book.

use std::time::Instant;

use orderbook::api::{TickSize, Wire};
use orderbook::client_ids::ClientIds;
use orderbook::engine::{BookConfig, Command, CommandKind, OrderBook, Side, TimeInForce};
use orderbook::persist::journal::{self, Record};
use orderbook::persist::segments::SegmentWriter;
use orderbook::persist::{recovery, snapshot};

fn main() {
    let mut args = std::env::args().skip(1);
    let resting: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let records: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let keep_dir = args.next();
    let wire = Wire {
        symbol: orderbook::api::Symbol::parse("DEFAULT").unwrap(),
        tick: TickSize::parse("0.01").unwrap(),
        max_quantity: 1_000_000_000,
    };
    let dir =
        std::env::temp_dir().join(format!("orderbook-persist-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = BookConfig {
        order_capacity: 1 << 21,
        level_capacity: 4096,
        finished_capacity: 1_000_000,
        resident: false,
        sparse_index: false,
    };

    // A book of `resting` orders over 500 levels a side, never crossing.
    let mut book = OrderBook::new(config);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut events = Vec::new();
    let mut seq = 0;
    for n in 0..resting {
        let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
        let offset = 1 + next() % 500;
        let price = match side {
            Side::Buy => 100_000 - offset,
            Side::Sell => 100_000 + offset,
        };
        let kind = CommandKind::Place {
            id: (n as u128 + 1) << 64 | next() as u128,
            side,
            price,
            quantity: 1 + next() % 100,
            tif: TimeInForce::GoodTillCancel,
        };
        events.clear();
        book.apply(
            &Command {
                ts: n * 1_000,
                kind,
            },
            &mut events,
        );
        seq += 1;
    }
    let started = Instant::now();
    let bytes = snapshot::write_state(
        &book,
        &ClientIds::default(),
        std::iter::empty(),
        seq,
        0,
        &wire,
    );
    let built = started.elapsed();
    let state_path = dir.join(snapshot::STATE_FILE);
    snapshot::save_atomically(&state_path, &bytes).unwrap();
    let saved = started.elapsed();
    if let Some(keep) = &keep_dir {
        std::fs::create_dir_all(keep).unwrap();
        let kept = std::path::Path::new(keep).join(snapshot::STATE_FILE);
        snapshot::save_atomically(&kept, &bytes).unwrap();
    }
    println!(
        "state file of {resting} resting orders: {} bytes ({:.1} MB), built in {:.0} ms, written and synced in {:.0} ms more ({:.0} ms in all)",
        bytes.len(),
        bytes.len() as f64 / 1e6,
        built.as_secs_f64() * 1e3,
        (saved - built).as_secs_f64() * 1e3,
        saved.as_secs_f64() * 1e3
    );

    // `records` journal records after it: places and cancels of them.
    let mut writer = SegmentWriter::create(&dir, seq + 1, 64 << 20, false).unwrap();
    let mut batch = Vec::with_capacity(1 << 20);
    let mut placed = Vec::new();
    for n in 0..records {
        let kind = if n % 2 == 1 {
            CommandKind::Cancel {
                id: placed.pop().unwrap(),
            }
        } else {
            let id = (1u128 << 100) | n as u128;
            placed.push(id);
            CommandKind::Place {
                id,
                side: Side::Buy,
                price: 99_000 - next() % 400,
                quantity: 1 + next() % 100,
                tif: TimeInForce::GoodTillCancel,
            }
        };
        seq += 1;
        journal::write_record(
            &mut batch,
            &Record::new(
                seq,
                Command {
                    ts: n * 1_000,
                    kind,
                },
            ),
        );
        if batch.len() > 1 << 20 {
            writer.append(&batch, seq + 1).unwrap();
            batch.clear();
        }
    }
    writer.append(&batch, seq + 1).unwrap();
    drop(writer);
    let journal_bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();

    let started = Instant::now();
    let recovered = recovery::recover(
        &dir,
        &state_path,
        &wire,
        BookConfig {
            finished_capacity: 0,
            ..config
        },
        config,
        100_000,
    )
    .unwrap();
    let took = started.elapsed();
    assert_eq!(recovered.seq, seq);
    assert_eq!(recovered.matching.resting_count() as u64, resting);
    println!(
        "recovery of {resting} resting orders + {records} journal records ({:.1} MB of journal), both books: {:.0} ms",
        journal_bytes as f64 / 1e6,
        took.as_secs_f64() * 1e3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
