//! Recovery as a property: for random command sequences, the state file
//! written at a random point plus the journal records after it, read back
//! through the real decoders and replayed, give the same engine state as
//! the live engine that applied every command, and the two then go on to
//! answer further commands identically.

use std::collections::HashMap;

use orderbook::api::{ClientOrderId, TickSize, TradeRecord, Wire};
use orderbook::client_ids::ClientIds;
use orderbook::engine::{
    BookConfig, Command, CommandKind, Event, OrderBook, Side, TimeInForce, MARKET,
};
use orderbook::persist::journal::{self, Record};
use orderbook::persist::segments::SegmentWriter;
use orderbook::persist::{recovery, snapshot};
use proptest::prelude::*;

fn wire() -> Wire {
    Wire {
        symbol: orderbook::api::Symbol::parse("DEFAULT").unwrap(),
        tick: TickSize::parse("0.01").unwrap(),
        max_quantity: 1_000_000_000,
    }
}

fn config() -> BookConfig {
    BookConfig {
        order_capacity: 256,
        level_capacity: 16,
        finished_capacity: 20,
        resident: false,
        sparse_index: false,
    }
}

/// A command over a small id and price space, so modifies and cancels hit
/// live orders and most places cross something.
fn command() -> impl Strategy<Value = CommandKind> {
    let id = 1u128..40;
    let price = 95u64..106;
    prop_oneof![
        4 => (id.clone(), any::<bool>(), price.clone(), 1u64..20).prop_map(|(id, buy, price, quantity)| {
            CommandKind::Place {
                id,
                side: if buy { Side::Buy } else { Side::Sell },
                price,
                quantity,
                tif: TimeInForce::GoodTillCancel,
            }
        }),
        1 => (id.clone(), any::<bool>(), 1u64..30, any::<bool>()).prop_map(|(id, buy, quantity, fok)| {
            CommandKind::Place {
                id,
                side: if buy { Side::Buy } else { Side::Sell },
                price: MARKET,
                quantity,
                tif: if fok { TimeInForce::FillOrKill } else { TimeInForce::ImmediateOrCancel },
            }
        }),
        1 => id.clone().prop_map(|id| CommandKind::Cancel { id }),
        2 => (id, proptest::option::of(price), proptest::option::of(1u64..25)).prop_map(
            |(id, price, quantity)| CommandKind::Modify { id, price, quantity }
        ),
    ]
}

fn state_of(
    book: &OrderBook,
) -> (
    Vec<orderbook::engine::OrderView>,
    Vec<orderbook::engine::OrderView>,
    Vec<orderbook::engine::OrderView>,
    u64,
) {
    (
        book.resting(Side::Buy).collect(),
        book.resting(Side::Sell).collect(),
        book.finished().collect(),
        book.last_trade_id(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn state_file_plus_journal_replay_equals_the_live_engine(
        commands in proptest::collection::vec(command(), 1..200),
        cut in 0.0f64..1.0,
        more in proptest::collection::vec(command(), 0..40),
    ) {
        let mut live = OrderBook::new(config());
        let mut trades: Vec<TradeRecord> = Vec::new();
        let mut journal_bytes = Vec::new();
        journal::write_header(&mut journal_bytes, 1, journal::Layout::Appended);
        let mut seq = 0;
        let mut state_file = None;
        let cut_at = (cut * commands.len() as f64) as usize;
        let mut events = Vec::new();
        for (n, kind) in commands.iter().enumerate() {
            if n == cut_at {
                state_file = Some(snapshot::write_state(&live, &ClientIds::default(), trades.iter(), seq, 0, &wire()));
            }
            // Prices here are whole ticks; the wire's are hundredths.
            let command = Command { ts: (n as u64 + 1) * 1_000, kind: *kind };
            events.clear();
            live.apply(&command, &mut events);
            if !matches!(events.last(), Some(Event::Rejected { .. })) {
                seq += 1;
                journal::write_record(&mut journal_bytes, &Record::new(seq, command));
            }
            trades.extend(events.iter().filter_map(|e| match e {
                Event::Trade(t) => Some(TradeRecord::from(*t)),
                _ => None,
            }));
        }
        let state_file = state_file.unwrap_or_else(|| snapshot::write_state(&live, &ClientIds::default(), trades.iter(), seq, 0, &wire()));

        // Recover: decode the state file, then replay the journal after it.
        let state = snapshot::decode(&state_file, &wire()).unwrap();
        let mut recovered = OrderBook::new(config());
        state.restore_into(&mut recovered).unwrap();
        let mut recovered_trades = state.trades.clone();
        let scan = journal::scan_records(&journal_bytes[journal::HEADER_LEN..], journal::Layout::Appended).unwrap();
        prop_assert_eq!(scan.torn_bytes, 0);
        for record in scan.records.iter().filter(|r| r.seq > state.seq) {
            events.clear();
            recovered.apply(&record.command, &mut events);
            prop_assert!(!matches!(events.last(), Some(Event::Rejected { .. })), "a journaled command was refused on replay");
            recovered_trades.extend(events.iter().filter_map(|e| match e {
                Event::Trade(t) => Some(TradeRecord::from(*t)),
                _ => None,
            }));
        }
        prop_assert_eq!(state_of(&recovered), state_of(&live));
        prop_assert_eq!(&recovered_trades, &trades);
        for id in 1u128..40 {
            prop_assert_eq!(recovered.order(id), live.order(id));
        }
        // And they stay in step.
        for (n, kind) in more.iter().enumerate() {
            let command = Command { ts: 1_000_000 + n as u64 * 1_000, kind: *kind };
            let mut a = Vec::new();
            let mut b = Vec::new();
            live.apply(&command, &mut a);
            recovered.apply(&command, &mut b);
            prop_assert_eq!(a, b);
        }
    }
}

/// A command, and for a place, maybe a name from a space small enough that
/// names come back once their orders leave a short history.
fn named_command() -> impl Strategy<Value = (CommandKind, Option<u8>)> {
    (command(), proptest::option::weighted(0.7, 0u8..6))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The names (`client_order_id`) recovered from a state file written at
    /// a random point and the journal after it, through the real files and
    /// `recovery::recover`, are the live replica's: orders leaving a
    /// history of 0 to 3 free their names, rejected places never hold one,
    /// and freed names are given again.
    #[test]
    fn recovered_names_are_the_live_replicas(
        commands in proptest::collection::vec(named_command(), 1..150),
        cut in 0.0f64..1.0,
        finished in 0usize..4,
    ) {
        let dir = std::env::temp_dir().join(format!(
            "orderbook-names-replay-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let replica_config = BookConfig { finished_capacity: finished, ..config() };
        let mut live = OrderBook::new(replica_config);
        live.log_evictions();
        let mut names = ClientIds::default();
        // The front's side: a name in use is refused (409) and never sent.
        let mut in_use: HashMap<ClientOrderId, u128> = HashMap::new();
        let mut writer = SegmentWriter::create(&dir, 1, 1 << 30, false).unwrap();
        let state_path = dir.join(snapshot::STATE_FILE);
        let cut_at = (cut * commands.len() as f64) as usize;
        let (mut seq, mut trades, mut events) = (0, Vec::<TradeRecord>::new(), Vec::new());
        for (n, &(kind, name)) in commands.iter().enumerate() {
            if n == cut_at {
                let bytes = snapshot::write_state(&live, &names, trades.iter(), seq, 0, &wire());
                snapshot::save_atomically(&state_path, &bytes).unwrap();
            }
            let name = match (kind, name) {
                (CommandKind::Place { .. }, Some(k)) => ClientOrderId::parse(&format!("n{k}")),
                _ => None,
            };
            if name.is_some_and(|name| in_use.contains_key(&name)) {
                continue;
            }
            let command = Command { ts: (n as u64 + 1) * 1_000, kind };
            seq += 1;
            let mut record = Vec::new();
            journal::write_record(&mut record, &Record { client_id: name, ..Record::new(seq, command) });
            writer.append(&record, seq + 1).unwrap();
            events.clear();
            live.apply(&command, &mut events);
            let accepted = !matches!(events.last(), Some(Event::Rejected { .. }));
            let placed = match (name, kind) {
                (Some(name), CommandKind::Place { id, .. }) if accepted => {
                    in_use.insert(name, id);
                    Some((id, name))
                }
                _ => None,
            };
            names.follow(&mut live, placed, |_, name| {
                in_use.remove(&name);
            });
            trades.extend(events.iter().filter_map(|e| match e {
                Event::Trade(t) => Some(TradeRecord::from(*t)),
                _ => None,
            }));
        }
        drop(writer);
        let recovered = recovery::recover(
            &dir,
            &state_path,
            &wire(),
            BookConfig { finished_capacity: 0, ..config() },
            replica_config,
            1_000,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let recovered = recovered.unwrap();
        prop_assert_eq!(state_of(&recovered.replica), state_of(&live));
        prop_assert_eq!(&recovered.names, &names);
        prop_assert_eq!(recovered.names.len(), in_use.len());
    }
}
