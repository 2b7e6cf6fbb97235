//! Request rate per caller: a token bucket for each API token (or, where tokens are not enforced,
//! each peer address), so one runaway application cannot starve the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Buckets idle this long are full again and are forgotten, so the map stays small.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// The map is swept for forgotten buckets when it grows past this many callers.
const SWEEP_AT: usize = 4096;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Shared by the gRPC services and the proxy; cheap to clone.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

/// A refused request: how long until one more would be accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl RateLimiter {
    /// `per_second` requests per caller on average, `burst` at once; a rate of 0 accepts everything.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Arc::default(),
        }
    }

    /// Whether the limiter refuses anything at all.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0
    }

    /// The configured rate, for messages.
    pub fn per_second(&self) -> u32 {
        self.per_second as u32
    }

    /// Takes one request from `caller`'s bucket.
    pub fn check(&self, caller: &str) -> Result<(), Limited> {
        self.check_at(caller, Instant::now())
    }

    fn check_at(&self, caller: &str, now: Instant) -> Result<(), Limited> {
        if !self.enabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Limited {
                retry_after: Duration::from_secs_f64(wait),
            })
        }
    }

    /// The message a refused caller sees.
    pub fn message(&self, limited: Limited) -> String {
        format!(
            "more than {} requests per second from this caller (limits.requests_per_second); retry in {} ms",
            self.per_second(),
            limited.retry_after.as_millis().max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_accepted_then_the_rate_holds_per_caller() {
        let l = RateLimiter::new(10, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            l.check_at("a", t0).unwrap();
        }
        let refused = l.check_at("a", t0).unwrap_err();
        assert!(refused.retry_after <= Duration::from_millis(100));
        assert!(refused.retry_after > Duration::ZERO);
        // Another caller has its own bucket.
        l.check_at("b", t0).unwrap();
        // A tenth of a second later one more request fits, and only one.
        let t1 = t0 + Duration::from_millis(100);
        l.check_at("a", t1).unwrap();
        assert!(l.check_at("a", t1).is_err());
        // Idle callers refill to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(100);
        for _ in 0..5 {
            l.check_at("a", t2).unwrap();
        }
        assert!(l.check_at("a", t2).is_err());
    }

    #[test]
    fn a_rate_of_zero_refuses_nothing_and_the_map_is_swept() {
        let off = RateLimiter::new(0, 0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            off.check_at("a", t0).unwrap();
        }
        let l = RateLimiter::new(1, 1);
        for i in 0..SWEEP_AT {
            l.check_at(&format!("c{i}"), t0).unwrap();
        }
        l.check_at("late", t0 + FORGET_AFTER * 2).unwrap();
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
