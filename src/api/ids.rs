//! Ids on the wire: order ids and trade ids as UUIDs, and the trades
//! kept with their `unique_id`.

use crate::engine::{OrderId, Trade};

/// Formats an order id as a lowercase hyphenated UUID.
pub fn write_uuid(out: &mut String, id: u128) {
    // Without `format!`: the replica writes one per order when it lists a
    // million of them, and the front one per answer.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut nibble = 32;
    for (i, byte) in text.iter_mut().enumerate() {
        if !HYPHENS.contains(&i) {
            nibble -= 1;
            *byte = HEX[(id >> (4 * nibble)) as usize & 0xF];
        }
    }
    out.push_str(std::str::from_utf8(&text).expect("ASCII hex and hyphens"));
}

/// Where the hyphens of an `8-4-4-4-12` UUID stand.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// Parses a UUID in hyphenated (`8-4-4-4-12`) or plain 32-hex form, in
/// either case.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    let hyphenated = match bytes.len() {
        36 => true,
        32 => false,
        _ => return None,
    };
    let mut value: u128 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if hyphenated && HYPHENS.contains(&i) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            _ => return None,
        };
        value = value << 4 | u128::from(digit);
    }
    Some(value)
}

/// An id no order has: a UUID v4 is never 0 (its version bits are set).
/// A batch's modify or cancel by a name no kept order has is sent (and
/// journaled) with it, so the engine answers it as any unknown id.
pub const NO_ORDER: OrderId = 0;

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
