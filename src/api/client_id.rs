//! `client_order_id`: a client's own name for an order, as exchange APIs
//! take one (Binance's `newClientOrderId`, Coinbase's `client_order_id`),
//! so that a client can find an order it placed without having read the
//! answer, and retry a place whose answer was lost without placing twice.

use std::fmt;

/// A client's own name for an order: 1 to [`MAX_LEN`](Self::MAX_LEN) of
/// `A-Z a-z 0-9 . : / _ -`, the characters Binance allows in
/// `newClientOrderId`. They need no escaping in JSON or in a URL's query,
/// so the name is written and read as is. Held inline (`Copy`, no
/// allocation) so a place's checked body stays a plain value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientOrderId {
    len: u8,
    bytes: [u8; ClientOrderId::MAX_LEN],
}

impl ClientOrderId {
    /// The longest name taken.
    pub const MAX_LEN: usize = 36;

    /// `text` as a name, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || b".:/_-".contains(b);
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(|b| allowed(&b)) {
            return None;
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(ClientOrderId {
            len: text.len() as u8,
            bytes,
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether it begins with `prefix` (a client's own names, when it
    /// gives them all one: `GET /orders` and the `orders:P` channel).
    pub fn starts_with(&self, prefix: &ClientOrderId) -> bool {
        self.as_str().starts_with(prefix.as_str())
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `client_order_id` is refused, for its 422.
pub const CLIENT_ID_RULE: &str =
    "must be a string of 1 to 36 letters, digits, '.', ':', '/', '_' or '-'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_allowed_characters_up_to_36_read_back_as_given() {
        for text in ["a", "x-1", "strat.7:leg/2_B", &"z".repeat(36)] {
            let id = ClientOrderId::parse(text).expect(text);
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn empty_long_or_other_characters_are_refused() {
        for text in [
            "",
            &"z".repeat(37),
            "a b",
            "quote\"",
            "é",
            "back\\slash",
            "a%20",
        ] {
            assert_eq!(ClientOrderId::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn names_differing_only_in_length_differ() {
        assert_ne!(ClientOrderId::parse("ab"), ClientOrderId::parse("a"));
    }
}
