//! Start-up: the state file, then every journal record after it, applied
//! to both copies of the book (the matching thread's and the replica's),
//! before anything is served. Anything that does not fit stops the start
//! with a message naming the file and the problem; nothing is changed on
//! disk then, except that a torn journal tail is cut (with a warning).

use std::collections::HashMap;
use std::path::Path;

use super::snapshot::State;
use super::{segments, snapshot};
use crate::api::{ClientOrderId, Wire};
use crate::candles::Dropped;
use crate::client_ids::ClientIds;
use crate::engine::{BookConfig, Command, CommandKind, Event, OrderBook, OrderId};
use crate::publisher;
use crate::trade_history::TradeHistory;

/// The state rebuilt at start.
pub struct Recovered {
    /// The matching thread's book.
    pub matching: OrderBook,
    /// The replica's book (with the finished-order history).
    pub replica: OrderBook,
    /// The newest trades, as many as `--trade-history` keeps.
    pub trades: TradeHistory,
    /// What the history knows of the trades it dropped for room.
    pub trades_dropped: Dropped,
    /// The `client_order_id`s of the orders the replica's book knows.
    pub names: ClientIds,
    /// The sequence number of the last journal record applied.
    pub seq: u64,
    /// The sequence number the state file on disk covers.
    pub saved_seq: u64,
    /// The market-data feed's `seq` after the last record.
    pub feed_seq: u64,
    /// What to tell the operator: where the state came from, cut tails.
    pub notes: Vec<String>,
}

/// A rebuilt book, the trades it made and the feed's `seq` after them.
type Rebuilt = (OrderBook, TradeHistory, Dropped, u64);

/// One book from the state file and the journal records after it, with the
/// trades it made (the newest `trade_history`, if asked for), and, with
/// `names`, the `client_order_id`s of the orders it knows in the end
/// (the book then keeps logging the orders it forgets, for the replica).
fn rebuild(
    state_path: &Path,
    config: BookConfig,
    state: Option<&State>,
    replay: &segments::Replay,
    trade_history: Option<usize>,
    mut names: Option<&mut ClientIds>,
) -> Result<Rebuilt, String> {
    let mut book = OrderBook::new(config);
    let keep = trade_history.unwrap_or(0);
    let mut trades = TradeHistory::new(keep, Vec::new());
    let mut dropped = Dropped::Never;
    let mut feed_seq = state.map_or(0, |s| s.feed_seq);
    if let Some(state) = state {
        state
            .restore_into(&mut book)
            .map_err(|e| format!("state file {} is unusable: {e}", state_path.display()))?;
        let skip = state.trades.len().saturating_sub(keep);
        for record in state.trades.iter().skip(skip) {
            trades.push(*record);
        }
        // A smaller --trade-history than the file was written with drops
        // its oldest trades here.
        dropped = match (skip.checked_sub(1), state.trades_dropped) {
            (Some(newest), _) => Dropped::Until(state.trades[newest].trade.ts),
            // A file that does not say (the original service's): settled
            // here as the candles would take it, so that the state files
            // written from now on say it. Left unsaid, a history filled
            // since without a drop was read at the next start as one that
            // had dropped a trade before its oldest, and lost its oldest
            // candles.
            (None, Dropped::Unknown) => match trades.records().next() {
                Some(oldest) if trades.len() >= keep && oldest.trade.trade_id != 1 => {
                    Dropped::Until(oldest.trade.ts)
                }
                _ => Dropped::Never,
            },
            (None, said) => said,
        };
        if let Some(names) = names.as_deref_mut() {
            *names = state.names.clone();
            // A smaller --finished-orders than the file was written with
            // keeps fewer finished orders.
            names.retain(|order| book.order(order).is_some());
        }
    }
    if names.is_some() {
        book.log_evictions();
    }
    // Name → order, for the replayed places. The live service refused a
    // name still in use (409), so a place naming one another order holds
    // here came after that order had left its history: a larger
    // --finished-orders at this start keeps it longer. It loses the name,
    // as it had then (both kept it, and the state file the next stop wrote
    // was refused as naming two orders).
    let mut holders: HashMap<ClientOrderId, OrderId> = match names.as_deref() {
        Some(names) => names.iter().map(|(order, name)| (name, order)).collect(),
        None => HashMap::new(),
    };
    let mut events = Vec::new();
    for record in &replay.records {
        // A command the engine refused is journaled too (the front writes
        // every command before the engine sees it); it is refused again.
        let kept = (&mut trades, &mut dropped);
        feed_seq += apply_to_copy(&mut book, &record.command, &mut events, kept);
        if let Some(names) = names.as_deref_mut() {
            let accepted = !matches!(events.last(), Some(Event::Rejected { .. }));
            let placed = match (record.client_id, record.command.kind) {
                (Some(name), CommandKind::Place { id, .. }) if accepted => Some((id, name)),
                _ => None,
            };
            if let Some((order, name)) = placed {
                let earlier = holders.insert(name, order);
                if let Some(earlier) = earlier.filter(|&e| names.name_of(e) == Some(&name)) {
                    names.forget(earlier);
                }
            }
            names.follow(&mut book, placed, |_, _| {});
        }
    }
    if book.last_trade_id() > 0 || !matches!(dropped, Dropped::Never) {
        trades.made_earlier();
    }
    Ok((book, trades, dropped, feed_seq))
}

/// Applies `command` to a copy of the book (the replica's live, or one being
/// rebuilt here), keeps its trades in `trades` (noting in `dropped` the
/// newest it drops for room) and returns how many feed messages it made.
/// `events` is scratch space.
pub fn apply_to_copy(
    book: &mut OrderBook,
    command: &Command,
    events: &mut Vec<Event>,
    (trades, dropped): (&mut TradeHistory, &mut Dropped),
) -> u64 {
    events.clear();
    book.apply(command, events);
    for event in events.iter() {
        if let Event::Trade(trade) = event {
            if let Some(ts) = trades.push((*trade).into()) {
                *dropped = Dropped::Until(ts);
            }
        }
    }
    publisher::messages_for(events)
}

/// Rebuilds the books from the state file at `state_path` and the journal
/// in `dir`.
pub fn recover(
    dir: &Path,
    state_path: &Path,
    wire: &Wire,
    matching_config: BookConfig,
    replica_config: BookConfig,
    trade_history: usize,
) -> Result<Recovered, String> {
    let state = snapshot::load(state_path, wire)?;
    let saved_seq = state.as_ref().map_or(0, |s| s.seq);
    let replay = segments::read_after(dir, saved_seq)?;
    let mut notes = Vec::new();
    if state.is_some() {
        notes.push(format!(
            "loaded {} (up to journal record {saved_seq})",
            state_path.display()
        ));
    }
    notes.extend(replay.warnings.iter().cloned());
    let mut names = ClientIds::default();
    // The two books are rebuilt side by side, one per core.
    let (matching, replica) = std::thread::scope(|scope| {
        let matching = scope.spawn(|| {
            rebuild(
                state_path,
                matching_config,
                state.as_ref(),
                &replay,
                None,
                None,
            )
        });
        let replica = rebuild(
            state_path,
            replica_config,
            state.as_ref(),
            &replay,
            Some(trade_history),
            Some(&mut names),
        );
        (
            matching.join().expect("the recovery thread panicked"),
            replica,
        )
    });
    let (matching, _, _, _) = matching?;
    let (replica, trades, trades_dropped, feed_seq) = replica?;
    let seq = replay.records.last().map_or(saved_seq, |r| r.seq);
    if !replay.records.is_empty() {
        notes.push(format!(
            "replayed {} journal records (up to {seq})",
            replay.records.len()
        ));
    }
    Ok(Recovered {
        matching,
        replica,
        trades,
        trades_dropped,
        names,
        seq,
        saved_seq,
        feed_seq,
        notes,
    })
}
