//! Hashing for keys that are already random (UUID bits) or small integers
//! (tick prices): one folded multiply instead of SipHash, since the book's
//! keys are made by the server, never chosen by an attacker.

use std::hash::{BuildHasher, Hasher};

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Multiplies in 128 bits and folds the halves, so every input bit reaches
/// both the low bits (bucket index) and the top bits (hashbrown's tag).
#[inline]
pub(crate) fn fold(x: u64) -> u64 {
    let product = (x as u128).wrapping_mul(MULTIPLIER as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hash of an order id.
#[inline]
pub(crate) fn order_id_hash(id: u128) -> u64 {
    fold((id as u64) ^ ((id >> 64) as u64).rotate_left(29))
}

/// A `Hasher` for one `u64` key.
#[derive(Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.0 = fold(self.0 ^ value);
    }
}

/// Builds [`FoldHasher`]s.
#[derive(Default, Clone, Copy)]
pub(crate) struct FoldBuildHasher;

impl BuildHasher for FoldBuildHasher {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}
