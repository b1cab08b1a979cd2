//! Ids on the wire: order ids and trade ids as UUIDs, and the trades
//! kept with their `unique_id`.

use std::collections::VecDeque;

use crate::engine::{OrderId, Trade};

/// Formats an order id as a lowercase hyphenated UUID.
pub fn write_uuid(out: &mut String, id: u128) {
    let hex = format!("{id:032x}");
    out.push_str(&hex[0..8]);
    out.push('-');
    out.push_str(&hex[8..12]);
    out.push('-');
    out.push_str(&hex[12..16]);
    out.push('-');
    out.push_str(&hex[16..20]);
    out.push('-');
    out.push_str(&hex[20..32]);
}

/// Parses a UUID in hyphenated (`8-4-4-4-12`) or plain 32-hex form.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    let hex: String = match bytes.len() {
        36 => {
            if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
                return None;
            }
            text.chars().filter(|&c| c != '-').collect()
        }
        32 => text.to_owned(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// Makes a random (version 4) UUID from 128 random bits.
pub fn uuid_v4(random: u128) -> OrderId {
    (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

/// A trade's `unique_id`: its sequence number laid out as a UUID, so it is
/// unique, sorts in execution order and survives replay unchanged.
pub fn trade_uuid(trade_id: u64) -> u128 {
    (0x4 << 76) | (0x2 << 62) | trade_id as u128
}

/// The trade number inside a `unique_id` made by [`trade_uuid`], or `None`
/// for a UUID made elsewhere (a state file of the original service).
pub fn trade_number(unique_id: u128) -> Option<u64> {
    const NUMBER_BITS: u128 = (1 << 62) - 1;
    (unique_id & !NUMBER_BITS == trade_uuid(0)).then_some((unique_id & NUMBER_BITS) as u64)
}

/// A trade as the service keeps and shows it: the engine's trade and its
/// `unique_id` (ours from the trade number, or one loaded from the
/// original service's state file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeRecord {
    /// The wire's `unique_id`.
    pub unique_id: u128,
    /// What was traded.
    pub trade: Trade,
}

impl From<Trade> for TradeRecord {
    fn from(trade: Trade) -> Self {
        TradeRecord {
            unique_id: trade_uuid(trade.trade_id),
            trade,
        }
    }
}

/// Appends `trade` to a history kept to its newest `keep` (none if 0).
pub fn keep_trade(trades: &mut VecDeque<TradeRecord>, keep: usize, trade: Trade) {
    if keep == 0 {
        return;
    }
    if trades.len() == keep {
        trades.pop_front();
    }
    trades.push_back(trade.into());
}
