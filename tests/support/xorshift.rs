//! xorshift64*: the fixed-seed generator of the engine's tests, examples
//! and benches (no dependency, and one stream definition for all of them).
//! Each target includes this file with `#[path]`.

use orderbook::engine::Side;

#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded with `seed` (made odd, so never the stuck 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// A random order id.
    #[inline]
    pub fn id(&mut self) -> u128 {
        ((self.next() as u128) << 64) | self.next() as u128
    }

    /// Buy or sell, even odds.
    #[inline]
    pub fn side(&mut self) -> Side {
        if self.next() >> 63 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}
