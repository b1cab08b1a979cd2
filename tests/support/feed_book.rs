//! The aggregated book a market-data client keeps: a `snapshot`, then
//! every `book` message's changes applied in order.

use std::collections::BTreeMap;

use serde_json::Value;

/// A book kept from a snapshot and the `book` messages after it.
#[derive(Debug, Default, PartialEq)]
pub struct Book {
    pub bids: BTreeMap<String, u64>,
    pub asks: BTreeMap<String, u64>,
}

/// A level's price as a key that sorts as the price does.
pub fn price_key(value: &Value) -> String {
    format!("{:012.2}", value.as_f64().unwrap())
}

impl Book {
    pub fn from_snapshot(snapshot: &Value) -> Book {
        let side = |key: &str| {
            snapshot[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (price_key(&l["price"]), l["quantity"].as_u64().unwrap()))
                .collect()
        };
        Book {
            bids: side("bids"),
            asks: side("asks"),
        }
    }

    pub fn apply(&mut self, book_message: &Value) {
        for change in book_message["changes"].as_array().unwrap() {
            let side = if change[0] == 1 {
                &mut self.bids
            } else {
                &mut self.asks
            };
            let quantity = change[2].as_u64().unwrap();
            if quantity == 0 {
                side.remove(&price_key(&change[1]));
            } else {
                side.insert(price_key(&change[1]), quantity);
            }
        }
    }
}
