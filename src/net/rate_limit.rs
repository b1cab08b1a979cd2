//! `--rate-limit`: orders a second from one client address (a token bucket
//! per IP address, `--rate-limit-burst` deep), as exchanges limit order
//! entry, so one runaway client cannot take the engine from the others.
//! Each order of a batch counts; reads are never limited. An order over
//! the limit is answered 429 with `Retry-After`, and nothing is done.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The limit: orders a second, and how many may come at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Orders a second, on average.
    pub per_second: f64,
    /// Orders at once after a quiet spell.
    pub burst: f64,
}

/// One address's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why orders were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit now: retry after this long.
    Wait(Duration),
    /// More at once than the burst allows: never admitted as one request.
    OverBurst,
}

/// The buckets of every address that sent orders lately.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// No address has sent anything yet.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `orders` tokens from `address`'s bucket at `now`, or says
    /// why not (taking none).
    pub fn admit(&mut self, address: IpAddr, orders: usize, now: Instant) -> Result<(), Refusal> {
        let RateLimit { per_second, burst } = self.limit;
        let wanted = orders as f64;
        if wanted > burst {
            return Err(Refusal::OverBurst);
        }
        let bucket = self.buckets.entry(address).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= wanted {
            bucket.tokens -= wanted;
            Ok(())
        } else {
            let wait = (wanted - bucket.tokens) / per_second;
            Err(Refusal::Wait(Duration::from_secs_f64(wait)))
        }
    }

    /// Forgets the addresses whose buckets have filled again (they are as
    /// if never seen), so the map holds only recent senders.
    pub fn forget_full(&mut self, now: Instant) {
        let RateLimit { per_second, burst } = self.limit;
        self.buckets.retain(|_, bucket| {
            let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
            bucket.tokens + refilled < burst
        });
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 4.0,
        })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_address() {
        let mut limiter = limiter();
        let start = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        assert_eq!(limiter.admit(a, 3, start), Ok(()));
        assert_eq!(limiter.admit(a, 1, start), Ok(()));
        assert_eq!(
            limiter.admit(a, 1, start),
            Err(Refusal::Wait(Duration::from_millis(500)))
        );
        // Another address has its own bucket.
        assert_eq!(limiter.admit(b, 4, start), Ok(()));
        // Half a second gives one order back at 2 a second; a refusal took
        // nothing.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.admit(a, 1, later), Ok(()));
        assert_eq!(
            limiter.admit(a, 2, later),
            Err(Refusal::Wait(Duration::from_secs(1)))
        );
        assert_eq!(limiter.admit(a, 5, later), Err(Refusal::OverBurst));
    }

    #[test]
    fn addresses_whose_buckets_refilled_are_forgotten() {
        let mut limiter = limiter();
        let start = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        limiter.admit(a, 4, start).unwrap();
        limiter.admit(b, 1, start).unwrap();
        // b needs half a second to refill, a two.
        limiter.forget_full(start + Duration::from_millis(600));
        assert_eq!(limiter.len(), 1);
        limiter.forget_full(start + Duration::from_secs(2));
        assert!(limiter.is_empty());
    }
}
