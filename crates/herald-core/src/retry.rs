//! What happens after an attempt: delivered, retried later, failed for good, or gone.
//!
//! Pure decisions from the attempt's result, the attempt number and the retry schedule; the
//! worker performs them and records the attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// When attempts are retried: the delay after the first failed attempt, the second, ...
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    /// Fraction of each delay added or removed at random, so retries of many messages that
    /// failed together do not arrive together (0.0 to 1.0).
    pub jitter: f64,
    /// The longest `Retry-After` a receiver can ask for; longer requests are capped.
    pub max_retry_after: Duration,
}

impl Default for RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: close to Svix's schedule, 8 attempts in all.
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            delays: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(300),
                minutes(600),
                minutes(600),
            ],
            jitter: 0.2,
            max_retry_after: minutes(60),
        }
    }
}

/// What an attempt came to, as far as the decision needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with this status (and maybe a `Retry-After`).
    Response { status: u16, retry_after: Option<Duration> },
    /// No answer: connection refused, reset, TLS failure, timeout, or refused by the SSRF
    /// guard. All are retried: the endpoint or its configuration may recover.
    NoResponse,
}

/// The decision after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retry {
        at: DateTime<Utc>,
    },
    /// The last attempt failed.
    Exhausted,
    /// The endpoint answered `410 Gone`: stop, and disable the endpoint.
    Gone,
}

impl RetrySchedule {
    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// Decides after attempt number `attempt` (1-based). `random` is a number in [0, 1)
    /// that picks the jitter, so tests can choose it.
    pub fn decide(&self, result: &AttemptResult, attempt: u32, now: DateTime<Utc>, random: f64) -> Outcome {
        let retry_after = match result {
            AttemptResult::Response { status, .. } if (200..300).contains(status) => {
                return Outcome::Delivered;
            }
            AttemptResult::Response { status: 410, .. } => return Outcome::Gone,
            AttemptResult::Response { retry_after, .. } => *retry_after,
            AttemptResult::NoResponse => None,
        };
        let Some(base) = self.delays.get(attempt.saturating_sub(1) as usize) else {
            return Outcome::Exhausted;
        };
        let spread = base.as_secs_f64() * self.jitter.clamp(0.0, 1.0);
        let jittered = (base.as_secs_f64() + spread * (2.0 * random.clamp(0.0, 1.0) - 1.0)).max(0.0);
        // A receiver may ask to wait longer than the schedule (within bounds), never shorter.
        let asked = retry_after.map(|d| d.min(self.max_retry_after).as_secs_f64()).unwrap_or(0.0);
        let delay = jittered.max(asked);
        let delay = chrono::Duration::milliseconds((delay * 1000.0) as i64);
        Outcome::Retry { at: now + delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> AttemptResult {
        AttemptResult::Response { status, retry_after: None }
    }

    #[test]
    fn success_gone_and_exhaustion() {
        let schedule = RetrySchedule::default();
        let now = Utc::now();
        assert_eq!(schedule.decide(&response(204), 1, now, 0.5), Outcome::Delivered);
        assert_eq!(schedule.decide(&response(410), 1, now, 0.5), Outcome::Gone);
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(schedule.decide(&response(500), 8, now, 0.5), Outcome::Exhausted);
        assert!(matches!(schedule.decide(&response(500), 7, now, 0.5), Outcome::Retry { .. }));
    }

    #[test]
    fn retries_follow_the_schedule_with_bounded_jitter() {
        let schedule = RetrySchedule::default();
        let now = Utc::now();
        let at = |attempt, random| match schedule.decide(&AttemptResult::NoResponse, attempt, now, random) {
            Outcome::Retry { at } => (at - now).num_milliseconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!(at(1, 0.5), 5_000);
        assert_eq!(at(1, 0.0), 4_000);
        assert_eq!(at(1, 1.0), 6_000);
        assert_eq!(at(2, 0.5), 300_000);
    }

    #[test]
    fn retry_after_can_lengthen_but_not_shorten_within_bounds() {
        let schedule = RetrySchedule { jitter: 0.0, ..RetrySchedule::default() };
        let now = Utc::now();
        let with = |seconds| AttemptResult::Response {
            status: 429,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        let delay = |result| match schedule.decide(&result, 1, now, 0.5) {
            Outcome::Retry { at } => (at - now).num_seconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!(delay(with(1)), 5, "shorter than the schedule: the schedule wins");
        assert_eq!(delay(with(120)), 120);
        assert_eq!(delay(with(86_400)), 3600, "capped at max_retry_after");
    }
}
