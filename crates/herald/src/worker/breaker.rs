//! Per-endpoint circuit breaker and rate limiter: the in-memory state that keeps one failing
//! or rate-limited endpoint from costing anyone else anything.
//!
//! Pure state machines over the clock's time; the lane consults them before each attempt.

use chrono::{DateTime, Duration, Utc};

/// Consecutive failures that open the circuit, unless configured otherwise.
const FAILURES_TO_OPEN: u32 = 5;
/// The first open period; it doubles on each failure after re-opening, up to the maximum.
const FIRST_COOLDOWN: Duration = Duration::seconds(5);
const MAX_COOLDOWN: Duration = Duration::minutes(5);

/// Whether an endpoint is being attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    /// Consecutive failures that open the circuit (`circuit_breaker_failures`); 0: never.
    failures_to_open: u32,
    consecutive_failures: u32,
    /// While set and in the future, the endpoint is not attempted.
    open_until: Option<DateTime<Utc>>,
    cooldown: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::opening_after(FAILURES_TO_OPEN)
    }
}

impl Breaker {
    /// A closed circuit that opens after `failures` consecutive failures (0: never).
    pub fn opening_after(failures: u32) -> Self {
        Self {
            failures_to_open: failures,
            consecutive_failures: 0,
            open_until: None,
            cooldown: FIRST_COOLDOWN,
        }
    }

    /// When the endpoint may be attempted again, if the circuit is open at `now`.
    pub fn open_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.open_until.filter(|until| *until > now)
    }

    /// A successful attempt closes the circuit.
    pub fn succeeded(&mut self) {
        *self = Self::opening_after(self.failures_to_open);
    }

    /// A failed attempt; returns true if it opened the circuit.
    pub fn failed(&mut self, now: DateTime<Utc>) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.failures_to_open == 0 || self.consecutive_failures < self.failures_to_open {
            return false;
        }
        // An attempt already under way when the circuit opened, failing while it is still open,
        // says nothing new: only a failure once the cooldown is over (half-open) re-opens it.
        // Otherwise a burst of concurrent failures doubled the cooldown once per attempt in
        // flight (8 at once held an endpoint for 40 s instead of 5).
        if self.open_until(now).is_some() {
            return false;
        }
        // Half-open after a cooldown: one more failure re-opens for twice as long.
        let reopening = self.open_until.is_some();
        if reopening {
            self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
        }
        self.open_until = Some(now + self.cooldown);
        true
    }

    /// Holds the endpoint back until `until` (a receiver's `Retry-After` on 429).
    pub fn pause_until(&mut self, until: DateTime<Utc>) {
        if self.open_until.is_none_or(|current| current < until) {
            self.open_until = Some(until);
        }
    }
}

/// A token bucket enforcing an endpoint's `throttleRate` (messages per second, burst of one
/// second's worth).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiter {
    per_second: f64,
    tokens: f64,
    updated: DateTime<Utc>,
}

impl RateLimiter {
    /// A bucket of `per_second` tokens a second (fractions too: a consent of 30 requests a
    /// minute is 0.5), holding at least one token.
    pub fn new(per_second: f64, now: DateTime<Utc>) -> Self {
        let per_second = per_second.max(1e-6);
        Self { per_second, tokens: per_second.max(1.0), updated: now }
    }

    /// Changes the rate (the endpoint was updated), keeping the tokens earned so far.
    pub fn set_rate(&mut self, per_second: f64) {
        self.per_second = per_second.max(1e-6);
        self.tokens = self.tokens.min(self.capacity());
    }

    fn capacity(&self) -> f64 {
        self.per_second.max(1.0)
    }

    /// Takes a token; if none is available, returns when one will be.
    pub fn take(&mut self, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let elapsed = (now - self.updated).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity());
            self.updated = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.per_second;
        Err(now + Duration::microseconds((wait * 1e6).ceil() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_opens_after_repeated_failures_and_backs_off() {
        let now = Utc::now();
        let mut breaker = Breaker::default();
        for _ in 0..4 {
            assert!(!breaker.failed(now));
        }
        assert!(breaker.failed(now));
        assert_eq!(breaker.open_until(now), Some(now + FIRST_COOLDOWN));
        assert_eq!(breaker.open_until(now + FIRST_COOLDOWN), None, "half-open after the cooldown");
        let later = now + FIRST_COOLDOWN;
        assert!(breaker.failed(later));
        assert_eq!(breaker.open_until(later), Some(later + FIRST_COOLDOWN * 2));
        breaker.succeeded();
        assert_eq!(breaker.open_until(later), None);
        assert!(!breaker.failed(later), "a success resets the count");
    }

    #[test]
    fn the_configured_count_opens_the_circuit_and_zero_never_does() {
        let now = Utc::now();
        let mut two = Breaker::opening_after(2);
        assert!(!two.failed(now));
        assert!(two.failed(now));
        two.succeeded();
        assert!(!two.failed(now), "a success keeps the configured count");
        let mut never = Breaker::opening_after(0);
        assert!((0..100).all(|_| !never.failed(now)));
        assert_eq!(never.open_until(now), None);
    }

    #[test]
    fn attempts_failing_while_the_circuit_is_open_do_not_extend_it() {
        let now = Utc::now();
        let mut breaker = Breaker::opening_after(5);
        for _ in 0..5 {
            breaker.failed(now);
        }
        // Attempts that were in flight when it opened fail a moment later.
        let moment = now + Duration::milliseconds(10);
        for _ in 0..3 {
            assert!(!breaker.failed(moment));
        }
        assert_eq!(breaker.open_until(moment), Some(now + FIRST_COOLDOWN));
        // Half-open: the next failure re-opens it for twice as long.
        let later = now + FIRST_COOLDOWN;
        assert!(breaker.failed(later));
        assert_eq!(breaker.open_until(later), Some(later + FIRST_COOLDOWN * 2));
    }

    #[test]
    fn the_rate_limiter_allows_the_rate_and_says_when_to_come_back() {
        let now = Utc::now();
        let mut limiter = RateLimiter::new(2.0, now);
        assert!(limiter.take(now).is_ok());
        assert!(limiter.take(now).is_ok());
        let next = limiter.take(now).expect_err("bucket empty");
        assert_eq!(next, now + Duration::milliseconds(500));
        assert!(limiter.take(next).is_ok());

        // 30 requests a minute: one now, the next two seconds later.
        let mut limiter = RateLimiter::new(0.5, now);
        assert!(limiter.take(now).is_ok());
        assert_eq!(limiter.take(now), Err(now + Duration::seconds(2)));
    }
}
