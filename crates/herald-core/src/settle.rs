//! Settling an attempt: from what happened on the wire to everything that follows from it —
//! the attempt record and the delivery's next step, what the endpoint's circuit breaker
//! learns, how metrics count it, and which operational webhook it calls for.
//!
//! One pure function ([`settle`]) decides all of it, so a response is classified once, the same
//! way for the record, the breaker and the metrics, and it is tested here without a network or
//! a database. The worker only carries the decisions out.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::delivery::{Attempt, AttemptRecord, DeliveryStatus, LeasedDelivery, NextStep, Trigger};
use crate::id::AttemptId;
use crate::retry::{AttemptResult, Outcome, RetrySchedule};

/// The 4th failed attempt of a delivery is reported as `message.attempt.failing`.
pub const FAILING_AFTER_ATTEMPTS: u32 = 4;
/// How long a 429 without a usable `Retry-After` holds the endpoint back.
pub const DEFAULT_THROTTLE_PAUSE: chrono::Duration = chrono::Duration::seconds(5);
/// The longest a 429's `Retry-After` holds the endpoint back.
pub const MAX_THROTTLE_PAUSE: chrono::Duration = chrono::Duration::minutes(5);

/// What happened on the wire, as the sender saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub result: AttemptResult,
    /// The HTTP status, 0 when there was no response.
    pub status_code: u16,
    /// The start of the response body, or why there was no response.
    pub response: String,
    pub duration: Duration,
    /// The SSRF guard refused the destination; nothing was sent.
    pub refused: bool,
    /// The attempt ran out of time.
    pub timed_out: bool,
}

impl Exchange {
    /// An attempt that failed inside Herald (a panic while preparing or sending): recorded as a
    /// failed attempt without a response, and retried on the schedule like one.
    pub fn internal_failure(reason: &str) -> Self {
        Self {
            result: AttemptResult::NoResponse,
            status_code: 0,
            response: format!("the attempt failed inside Herald ({reason}); it is retried on the schedule"),
            duration: Duration::ZERO,
            refused: false,
            timed_out: false,
        }
    }
}

/// An attempt's class, as the `outcome` label of the metrics counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptClass {
    /// A 2xx answer.
    Success,
    /// A 4xx answer.
    Http4xx,
    /// A 5xx answer.
    Http5xx,
    /// Any other status (1xx, 3xx): redirects are not followed.
    HttpOther,
    /// No answer: connection refused or reset, TLS or DNS failure.
    NoResponse,
    /// The attempt ran out of time.
    Timeout,
    /// The SSRF guard refused the destination; nothing was sent.
    Refused,
}

impl AttemptClass {
    pub const ALL: [Self; 7] = [
        Self::Success,
        Self::Http4xx,
        Self::Http5xx,
        Self::HttpOther,
        Self::NoResponse,
        Self::Timeout,
        Self::Refused,
    ];

    /// Classifies an attempt; `status` is 0 when there was no response.
    pub fn classify(status: u16, refused: bool, timed_out: bool) -> Self {
        match status {
            _ if refused => Self::Refused,
            _ if timed_out => Self::Timeout,
            0 => Self::NoResponse,
            200..=299 => Self::Success,
            400..=499 => Self::Http4xx,
            500..=599 => Self::Http5xx,
            _ => Self::HttpOther,
        }
    }

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::HttpOther => "http_other",
            Self::NoResponse => "no_response",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
        }
    }
}

/// What the endpoint's circuit breaker learns from an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerEvent {
    /// A 2xx: the endpoint works.
    Succeeded,
    /// A 5xx or no answer: one more failure towards opening the circuit.
    Failed,
    /// A 429: hold the endpoint back for this long.
    Throttled { pause: chrono::Duration },
    /// Another 4xx: the endpoint is up and answering; not a reason to hold it back.
    Neutral,
}

/// The operational webhook an attempt calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The endpoint answered `410 Gone` and is disabled (`endpoint.disabled`).
    EndpointGone,
    /// The delivery failed for good (`message.attempt.exhausted`).
    Exhausted,
    /// The delivery keeps failing (`message.attempt.failing`).
    Failing,
}

/// Everything that follows from one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub class: AttemptClass,
    pub outcome: Outcome,
    /// The attempt and its delivery's next step, fenced by the lease.
    pub record: AttemptRecord,
    pub breaker: BreakerEvent,
    pub notice: Option<Notice>,
}

/// One attempt to settle.
#[derive(Debug, Clone)]
pub struct Attempted<'a> {
    pub delivery: &'a LeasedDelivery,
    /// The URL the attempt went to; recorded with its credentials masked.
    pub url: &'a str,
    pub started_at: DateTime<Utc>,
    /// When the response (or its absence) was in.
    pub finished_at: DateTime<Utc>,
    pub schedule: &'a RetrySchedule,
    /// A random number in `[0, 1]` for the retry's jitter.
    pub random: f64,
    /// The endpoint pauses an ordered lane whose head is exhausted (`orderedOnExhausted:
    /// pause`): such a head holds its lane instead of letting the next message go.
    pub pause_lane_when_exhausted: bool,
    /// What was sent, to be kept with the attempt.
    pub request: Option<crate::delivery::SentRequest>,
}

/// Decides everything that follows from an attempt.
pub fn settle(attempted: Attempted<'_>, exchange: Exchange) -> Settlement {
    let Attempted {
        delivery,
        url,
        started_at,
        finished_at,
        schedule,
        random,
        pause_lane_when_exhausted,
        request,
    } = attempted;
    let class = AttemptClass::classify(exchange.status_code, exchange.refused, exchange.timed_out);
    let decided = schedule.decide(&exchange.result, delivery.attempt, finished_at, random);
    // A manual attempt (resend, recover) is made once.
    let outcome = match (delivery.trigger, decided) {
        (Trigger::Manual, Outcome::Retry { .. }) => Outcome::Exhausted,
        (_, outcome) => outcome,
    };
    let breaker = match &exchange.result {
        AttemptResult::Response { status, .. } if (200..300).contains(status) => BreakerEvent::Succeeded,
        AttemptResult::Response { status: 429, retry_after } => BreakerEvent::Throttled {
            pause: retry_after
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map_or(DEFAULT_THROTTLE_PAUSE, |d| d.min(MAX_THROTTLE_PAUSE)),
        },
        AttemptResult::Response { status, .. } if *status >= 500 => BreakerEvent::Failed,
        AttemptResult::Response { .. } => BreakerEvent::Neutral,
        AttemptResult::NoResponse => BreakerEvent::Failed,
    };
    let notice = match outcome {
        Outcome::Delivered => None,
        Outcome::Gone => Some(Notice::EndpointGone),
        Outcome::Exhausted => Some(Notice::Exhausted),
        Outcome::Retry { .. } if delivery.attempt == FAILING_AFTER_ATTEMPTS => Some(Notice::Failing),
        Outcome::Retry { .. } => None,
    };
    let (status, next) = match outcome {
        Outcome::Delivered => (DeliveryStatus::Success, NextStep::Delivered),
        Outcome::Retry { at } => (DeliveryStatus::Failed, NextStep::RetryAt(at)),
        Outcome::Exhausted if delivery.in_lane && pause_lane_when_exhausted => {
            (DeliveryStatus::Failed, NextStep::Hold)
        }
        Outcome::Exhausted | Outcome::Gone => (DeliveryStatus::Failed, NextStep::Failed),
    };
    let record = AttemptRecord {
        delivery_id: delivery.delivery_id,
        lease_id: delivery.lease_id,
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: delivery.msg_id.clone(),
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            url: crate::endpoint_url::masked_text(url),
            status,
            response_status_code: exchange.status_code,
            response: exchange.response,
            response_duration_ms: i64::try_from(exchange.duration.as_millis()).unwrap_or(i64::MAX),
            trigger: delivery.trigger,
            created_at: started_at,
            request,
        },
        next,
        disable_endpoint: outcome == Outcome::Gone,
    };
    Settlement { class, outcome, record, breaker, notice }
}

/// The record of a delivery that ends without a request (its endpoint is disabled, its
/// payload expired): a failed attempt that says why, and no retry. Its URL is recorded with
/// credentials masked.
pub fn not_attempted(
    delivery: &LeasedDelivery,
    url: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> AttemptRecord {
    AttemptRecord {
        delivery_id: delivery.delivery_id,
        lease_id: delivery.lease_id,
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: delivery.msg_id.clone(),
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            url: crate::endpoint_url::masked_text(url),
            status: DeliveryStatus::Failed,
            response_status_code: 0,
            response: reason.to_owned(),
            response_duration_ms: 0,
            trigger: delivery.trigger,
            created_at: now,
            request: None,
        },
        next: NextStep::Failed,
        disable_endpoint: false,
    }
}

/// The record of a delivery the endpoint's transformation cancelled: settled as done (it is
/// not a failure), with nothing sent and a response that says so.
pub fn cancelled(delivery: &LeasedDelivery, url: &str, now: DateTime<Utc>) -> AttemptRecord {
    let mut record =
        not_attempted(delivery, url, "not sent: the endpoint's transformation cancelled it", now);
    record.attempt.status = DeliveryStatus::Success;
    record.next = NextStep::Delivered;
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ApplicationId, EndpointId, MessageId};

    fn delivery(attempt: u32, trigger: Trigger) -> LeasedDelivery {
        LeasedDelivery {
            delivery_id: 7,
            lease_id: 3,
            msg_id: MessageId::generate(),
            app_id: ApplicationId::generate(),
            endpoint_id: EndpointId::generate(),
            event_type: crate::name::EventTypeName::parse("order.created").expect("name"),
            attempt,
            trigger,
            payload: Some(b"{}".to_vec()),
            in_lane: false,
            payload_version: crate::version::PayloadVersion::FIRST,
            envelope: None,
        }
    }

    fn exchange(status: u16, retry_after: Option<Duration>) -> Exchange {
        let result = if status == 0 {
            AttemptResult::NoResponse
        } else {
            AttemptResult::Response { status, retry_after }
        };
        Exchange {
            result,
            status_code: status,
            response: String::new(),
            duration: Duration::from_millis(12),
            refused: false,
            timed_out: false,
        }
    }

    fn run(delivery: &LeasedDelivery, exchange: Exchange) -> Settlement {
        let now = Utc::now();
        let schedule = RetrySchedule::default();
        let attempted = Attempted {
            delivery,
            url: "https://example.com/hook",
            started_at: now,
            finished_at: now,
            schedule: &schedule,
            random: 0.5,
            pause_lane_when_exhausted: false,
            request: None,
        };
        settle(attempted, exchange)
    }

    #[test]
    fn an_exhausted_head_holds_its_lane_only_where_the_endpoint_pauses_lanes() {
        let now = Utc::now();
        let schedule = RetrySchedule::default();
        let mut head = delivery(8, Trigger::Scheduled);
        head.in_lane = true;
        let attempted = |pause| Attempted {
            delivery: &head,
            url: "https://example.com/hook",
            started_at: now,
            finished_at: now,
            schedule: &schedule,
            random: 0.5,
            pause_lane_when_exhausted: pause,
            request: None,
        };
        let paused = settle(attempted(true), exchange(500, None));
        assert_eq!(paused.record.next, NextStep::Hold);
        assert!(paused.record.holds_lane());
        assert_eq!(paused.record.delivery_state().0, DeliveryStatus::Failed, "shown as failed");
        assert_eq!(paused.notice, Some(Notice::Exhausted));
        let skipped = settle(attempted(false), exchange(500, None));
        assert_eq!(skipped.record.next, NextStep::Failed, "the lane moves on");
        let mut early = head.clone();
        early.attempt = 1;
        let attempted = Attempted { delivery: &early, ..attempted(true) };
        assert!(matches!(settle(attempted, exchange(500, None)).record.next, NextStep::RetryAt(_)));
    }

    #[test]
    fn a_success_is_delivered_and_closes_the_breaker() {
        let settled = run(&delivery(1, Trigger::Scheduled), exchange(204, None));
        assert_eq!(settled.outcome, Outcome::Delivered);
        assert_eq!(settled.class, AttemptClass::Success);
        assert_eq!(settled.breaker, BreakerEvent::Succeeded);
        assert_eq!(settled.record.next, NextStep::Delivered);
        assert_eq!(settled.record.attempt.status, DeliveryStatus::Success);
        assert_eq!(settled.record.attempt.response_duration_ms, 12);
        assert_eq!(settled.notice, None);
    }

    #[test]
    fn credentials_in_the_url_are_masked_in_the_record() {
        let now = Utc::now();
        let schedule = RetrySchedule::default();
        let leased = delivery(1, Trigger::Scheduled);
        let url = "https://user:hunter2@example.com/hook";
        let attempted = Attempted {
            delivery: &leased,
            url,
            started_at: now,
            finished_at: now,
            schedule: &schedule,
            random: 0.5,
            pause_lane_when_exhausted: false,
            request: None,
        };
        let settled = settle(attempted, exchange(200, None));
        assert_eq!(settled.record.attempt.url, "https://user:****@example.com/hook");
        let skipped = not_attempted(&leased, url, "disabled", now);
        assert_eq!(skipped.attempt.url, "https://user:****@example.com/hook");
    }

    #[test]
    fn gone_disables_the_endpoint_and_says_so() {
        let settled = run(&delivery(1, Trigger::Scheduled), exchange(410, None));
        assert_eq!(settled.outcome, Outcome::Gone);
        assert!(settled.record.disable_endpoint);
        assert_eq!(settled.record.next, NextStep::Failed);
        assert_eq!(settled.notice, Some(Notice::EndpointGone));
        assert_eq!(settled.breaker, BreakerEvent::Neutral, "a 4xx does not hold the endpoint back");
    }

    #[test]
    fn throttling_pauses_the_endpoint_for_its_retry_after_within_bounds() {
        let asked = exchange(429, Some(Duration::from_secs(30)));
        let settled = run(&delivery(1, Trigger::Scheduled), asked);
        assert_eq!(settled.breaker, BreakerEvent::Throttled { pause: chrono::Duration::seconds(30) });
        let long = run(&delivery(1, Trigger::Scheduled), exchange(429, Some(Duration::from_secs(86_400))));
        assert_eq!(long.breaker, BreakerEvent::Throttled { pause: MAX_THROTTLE_PAUSE });
        let bare = run(&delivery(1, Trigger::Scheduled), exchange(429, None));
        assert_eq!(bare.breaker, BreakerEvent::Throttled { pause: DEFAULT_THROTTLE_PAUSE });
        assert!(matches!(bare.outcome, Outcome::Retry { .. }));
    }

    #[test]
    fn failures_retry_report_on_the_fourth_and_exhaust_at_the_end() {
        let first = run(&delivery(1, Trigger::Scheduled), exchange(500, None));
        assert!(matches!(first.record.next, NextStep::RetryAt(_)));
        assert_eq!(
            (first.breaker, first.notice, first.class),
            (BreakerEvent::Failed, None, AttemptClass::Http5xx)
        );
        let fourth = run(&delivery(FAILING_AFTER_ATTEMPTS, Trigger::Scheduled), exchange(0, None));
        assert_eq!(fourth.notice, Some(Notice::Failing));
        assert_eq!(fourth.class, AttemptClass::NoResponse);
        let last = run(&delivery(8, Trigger::Scheduled), exchange(500, None));
        assert_eq!((last.outcome, last.notice), (Outcome::Exhausted, Some(Notice::Exhausted)));
    }

    #[test]
    fn a_manual_attempt_is_made_once() {
        let settled = run(&delivery(1, Trigger::Manual), exchange(500, None));
        assert_eq!(settled.outcome, Outcome::Exhausted);
        assert_eq!(settled.record.next, NextStep::Failed);
    }

    #[test]
    fn an_internal_failure_is_a_failed_attempt_that_says_so_and_retries() {
        let settled = run(&delivery(1, Trigger::Scheduled), Exchange::internal_failure("a panic"));
        assert!(matches!(settled.record.next, NextStep::RetryAt(_)));
        assert!(
            settled.record.attempt.response.contains("inside Herald"),
            "{}",
            settled.record.attempt.response
        );
        assert_eq!(settled.record.attempt.status, DeliveryStatus::Failed);
    }

    #[test]
    fn refusals_and_timeouts_are_classified_before_their_status() {
        assert_eq!(AttemptClass::classify(0, true, false), AttemptClass::Refused);
        assert_eq!(AttemptClass::classify(0, false, true), AttemptClass::Timeout);
        assert_eq!(AttemptClass::classify(302, false, false), AttemptClass::HttpOther);
        assert_eq!(AttemptClass::classify(404, false, false), AttemptClass::Http4xx);
    }
}
