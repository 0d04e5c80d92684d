//! Summaries a store computes for operators: the state of the delivery queue (the metrics
//! gauges) and an application's activity over a window (the statistics API), and the observer
//! a store reports its commits to.
//!
//! Plain data and a trait: no I/O here. Stores fill these from indexed counts, cheap enough to
//! compute on every scrape or request.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The most deliveries [`QueueStats`] counts in each state: past it a count stops (and reads
/// this number), so a scrape costs at most a bounded index scan however large a backlog
/// grows (15 ms or so per 100,000 rows on SQLite). The oldest due age still shows how far
/// behind a larger backlog is.
pub const QUEUE_COUNT_CAP: u64 = 100_000;

/// The delivery queue and endpoint health at one moment, across every application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries waiting to be attempted now: pending ones whose time has come, and leased
    /// ones whose lease expired (their worker died).
    pub due: u64,
    /// Pending deliveries due later: retries and messages with a later `deliverAt`.
    pub scheduled: u64,
    /// Deliveries leased by a worker whose lease still holds: being attempted now.
    pub leased: u64,
    /// When the longest-waiting due pending delivery became due; `None` when nothing is due.
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// Endpoints that are disabled (by an operator, `410 Gone`, or failing for too long).
    pub endpoints_disabled: u64,
    /// Enabled endpoints that have failed since their last success.
    pub endpoints_failing: u64,
    /// Endpoints whose circuit breaker is open: nothing is sent to them until it closes.
    pub circuits_open: u64,
    /// Ordered lanes held by an exhausted head (`orderedOnExhausted: pause`): nothing behind
    /// it goes until it is resent or recovered.
    pub lanes_held: u64,
    /// When the oldest message still waiting in an ordered lane (its head, or behind it) was
    /// accepted; `None` when no lane has work.
    pub oldest_lane_message_at: Option<DateTime<Utc>>,
}

/// One ordered lane of an endpoint that has work: its head and what waits behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneState {
    /// The lane's ordering key; `""` for messages sent without one.
    pub key: String,
    /// The message at the head: the next to be delivered (or being delivered, or held).
    pub head_msg_id: crate::id::MessageId,
    /// When the head's message was accepted: how long the lane has been on it at most.
    pub head_since: DateTime<Utc>,
    /// The head's delivery state.
    pub head_status: crate::delivery::DeliveryStatus,
    /// The head failed for good and holds the lane until a resend or recover.
    pub held: bool,
    /// Messages waiting behind the head.
    pub waiting: u64,
}

/// What happened in one application over a window of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplicationStats {
    /// Messages created in the window.
    pub messages: u64,
    /// Attempts made in the window that succeeded (2xx).
    pub attempts_succeeded: u64,
    /// Attempts made in the window that failed (no 2xx).
    pub attempts_failed: u64,
    /// The application's endpoints, now.
    pub endpoints: u64,
    /// Of those, the disabled ones.
    pub endpoints_disabled: u64,
    /// Enabled endpoints that have failed since their last success, now.
    pub endpoints_failing: u64,
}

impl ApplicationStats {
    /// The share of attempts in the window that succeeded, `None` when there were none.
    pub fn success_rate(&self) -> Option<f64> {
        let total = self.attempts_succeeded + self.attempts_failed;
        (total > 0).then(|| self.attempts_succeeded as f64 / total as f64)
    }
}

/// Told about each commit of a store's group-commit writer, to time it (the metrics). Called
/// on the writer's task: implementations must be quick and must not block.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// A transaction carrying `writes` writes finished (committed or failed) after `took`.
    fn batch_committed(&self, writes: usize, took: Duration);
}

/// An observer that ignores everything, for stores nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl CommitObserver for NoObserver {
    fn batch_committed(&self, _writes: usize, _took: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_is_the_share_of_successful_attempts() {
        let none = ApplicationStats::default();
        assert_eq!(none.success_rate(), None);
        let some = ApplicationStats { attempts_succeeded: 3, attempts_failed: 1, ..none };
        assert_eq!(some.success_rate(), Some(0.75));
    }
}
