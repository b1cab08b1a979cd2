//! Start-up: the state file, then every journal record after it, applied
//! to both copies of the book (the matching thread's and the replica's),
//! before anything is served. Anything that does not fit stops the start
//! with a message naming the file and the problem; nothing is changed on
//! disk then, except that a torn journal tail is cut (with a warning).

use std::collections::VecDeque;
use std::path::Path;

use super::{segments, snapshot};
use crate::api::{TradeRecord, Wire};
use crate::engine::{BookConfig, Event, OrderBook};

/// The state rebuilt at start.
pub struct Recovered {
    /// The matching thread's book.
    pub matching: OrderBook,
    /// The replica's book (with the finished-order history).
    pub replica: OrderBook,
    /// The newest trades, oldest first.
    pub trades: VecDeque<TradeRecord>,
    /// The sequence number of the last journal record applied.
    pub seq: u64,
    /// The sequence number the state file on disk covers.
    pub saved_seq: u64,
    /// What to tell the operator: where the state came from, cut tails.
    pub notes: Vec<String>,
}

/// Rebuilds the books from the state file and journal in `dir`.
pub fn recover(
    dir: &Path,
    wire: &Wire,
    matching_config: BookConfig,
    replica_config: BookConfig,
    trade_history: usize,
) -> Result<Recovered, String> {
    let mut matching = OrderBook::new(matching_config);
    let mut replica = OrderBook::new(replica_config);
    let mut trades = VecDeque::new();
    let mut notes = Vec::new();
    let state = snapshot::load(dir, wire)?;
    let saved_seq = state.as_ref().map_or(0, |s| s.seq);
    if let Some(state) = state {
        let path = snapshot::state_path(dir);
        let unusable = |e: String| format!("state file {} is unusable: {e}", path.display());
        state.restore_into(&mut matching).map_err(unusable)?;
        state.restore_into(&mut replica).map_err(unusable)?;
        let skip = state.trades.len().saturating_sub(trade_history);
        trades.extend(state.trades.into_iter().skip(skip));
        notes.push(format!(
            "loaded {} ({} resting orders, up to journal record {saved_seq})",
            path.display(),
            matching.resting_count()
        ));
    }
    let replay = segments::read_after(dir, saved_seq)?;
    notes.extend(replay.warnings);
    let mut events = Vec::new();
    let mut seq = saved_seq;
    for record in &replay.records {
        events.clear();
        matching.apply(&record.command, &mut events);
        if let Some(Event::Rejected { reason, .. }) = events.last() {
            return Err(format!(
                "journal record {} ({:?}) is refused by the book rebuilt from the files before it ({reason:?}): the state file and the journal do not belong together",
                record.seq, record.command
            ));
        }
        events.clear();
        replica.apply(&record.command, &mut events);
        for event in &events {
            if let Event::Trade(trade) = event {
                if trades.len() == trade_history {
                    trades.pop_front();
                }
                if trade_history > 0 {
                    trades.push_back((*trade).into());
                }
            }
        }
        seq = record.seq;
    }
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
        seq,
        saved_seq,
        notes,
    })
}
