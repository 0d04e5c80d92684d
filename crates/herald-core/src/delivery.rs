//! Messages, their deliveries to endpoints, and the attempts that make up a delivery.
//!
//! A message is accepted once, with one delivery per matching enabled endpoint; a delivery is
//! leased by a worker, attempted, and either finished or rescheduled. Each attempt is recorded.

use chrono::{DateTime, Utc};

use crate::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use crate::name::{ChannelName, EventId, EventTypeName};

/// A message an application sent, to be delivered to its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub app_id: ApplicationId,
    pub event_type: EventTypeName,
    pub event_id: Option<EventId>,
    pub channels: Option<Vec<ChannelName>>,
    /// The JSON payload exactly as received; `None` once expunged or expired.
    pub payload: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    /// Not delivered before this time (`deliverAt`); `None` means at once.
    pub deliver_at: Option<DateTime<Utc>>,
    /// When the payload is removed by the retention job.
    pub payload_expires_at: DateTime<Utc>,
    /// The lane of an ordered endpoint this message takes (`orderingKey`); messages without
    /// one share a lane. Unordered endpoints ignore it.
    pub ordering_key: Option<crate::name::OrderingKey>,
    /// The version of its event type's payload the message holds (`payloadVersion`).
    pub payload_version: crate::version::PayloadVersion,
    /// For a message the ingest gateway accepted: the body's content type and the provider's
    /// headers it forwards. `None` for messages sent through the API (JSON).
    pub envelope: Option<Envelope>,
}

/// How an ingested body is forwarded: byte for byte, with its content type and the provider's
/// headers on its scheme's allow-list (never its signature headers).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    #[serde(rename = "contentType")]
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

impl Envelope {
    /// The stored form (JSON text).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; `None` for text that is not one.
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The parts of an endpoint that decide whether a message goes to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub endpoint_id: EndpointId,
    pub event_types: Option<Vec<EventTypeName>>,
    pub channels: Option<Vec<ChannelName>>,
    /// The endpoint delivers in ordered lanes.
    pub ordered: bool,
}

impl Subscription {
    /// Whether `message` is delivered to this endpoint: its event type passes the filter
    /// (if any), and it shares a channel with the endpoint (if the endpoint has channels).
    pub fn matches(&self, message: &Message) -> bool {
        let type_ok = self.event_types.as_ref().is_none_or(|types| types.contains(&message.event_type));
        let channel_ok = match (&self.channels, &message.channels) {
            (None, _) => true,
            (Some(wanted), Some(sent)) => wanted.iter().any(|c| sent.contains(c)),
            (Some(_), None) => false,
        };
        type_ok && channel_ok
    }

    /// The ordered lane `message` takes at this endpoint: its ordering key, `""` for messages
    /// without one; `None` when the endpoint is not ordered.
    pub fn lane<'a>(&self, message: &'a Message) -> Option<&'a str> {
        self.ordered.then(|| message.ordering_key.as_ref().map_or("", |key| key.as_str()))
    }
}

/// Why a delivery was created: by the schedule (a new message), or by a person (resend,
/// recover). Manual deliveries get one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Scheduled,
    Manual,
}

impl Trigger {
    /// The Svix code: 0 scheduled, 1 manual.
    pub fn code(self) -> i64 {
        match self {
            Self::Scheduled => 0,
            Self::Manual => 1,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Scheduled),
            1 => Some(Self::Manual),
            _ => None,
        }
    }
}

/// State of a delivery or attempt, with Svix's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Success,
    Pending,
    Failed,
    /// Leased by a worker: being attempted now.
    Sending,
}

impl DeliveryStatus {
    /// The Svix code: 0 success, 1 pending, 2 fail, 3 sending.
    pub fn code(self) -> i64 {
        match self {
            Self::Success => 0,
            Self::Pending => 1,
            Self::Failed => 2,
            Self::Sending => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Success),
            1 => Some(Self::Pending),
            2 => Some(Self::Failed),
            3 => Some(Self::Sending),
            _ => None,
        }
    }
}

/// A store's handle on one delivery row.
pub type DeliveryId = i64;

/// A delivery handed to a worker, with what it needs to make the attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedDelivery {
    pub delivery_id: DeliveryId,
    /// Fencing token: the outcome is recorded only while this lease is the current one.
    pub lease_id: i64,
    pub msg_id: MessageId,
    pub app_id: ApplicationId,
    pub endpoint_id: EndpointId,
    pub event_type: EventTypeName,
    /// `None` if the payload expired or was expunged before delivery; sent as `{}`.
    pub payload: Option<Vec<u8>>,
    /// The attempt about to be made, 1-based.
    pub attempt: u32,
    pub trigger: Trigger,
    /// Whether the delivery is the head of an ordered lane (its successors wait for it).
    pub in_lane: bool,
    /// The payload version the message holds.
    pub payload_version: crate::version::PayloadVersion,
    /// The message's envelope, for an ingested message.
    pub envelope: Option<Envelope>,
}

/// Which due deliveries to lease.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRequest {
    pub now: DateTime<Utc>,
    /// The most deliveries to lease in this call.
    pub limit: u32,
    /// The most deliveries of any one endpoint in this call, so one endpoint's backlog can't
    /// fill the batch.
    pub per_endpoint: u32,
    /// Endpoints to skip (saturated, or their circuit is open).
    pub exclude: Vec<EndpointId>,
    /// Until when the lease holds; after it, the delivery is due again (a dead worker).
    pub lease_until: DateTime<Utc>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MessageId,
    pub app_id: ApplicationId,
    pub endpoint_id: EndpointId,
    pub url: String,
    pub status: DeliveryStatus,
    /// The HTTP status, or 0 when there was no response.
    pub response_status_code: u16,
    /// The start of the response body (or why there was none), truncated.
    pub response: String,
    pub response_duration_ms: i64,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    /// What was sent; `None` when nothing was (or for attempts recorded before this was kept).
    pub request: Option<SentRequest>,
}

/// The request an attempt sent, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: String,
    /// Every header as sent, in order; the values of sensitive ones (credentials, signatures)
    /// replaced by `****`.
    pub headers: Vec<(String, String)>,
    /// The body when it differed from the message's payload (converted to a pinned version, or
    /// transformed); `None`: the payload itself.
    pub body: Option<Vec<u8>>,
}

impl SentRequest {
    /// The stored form of the method and headers (the body is kept apart).
    pub fn head_to_json(&self) -> String {
        serde_json::json!({ "method": self.method, "headers": self.headers }).to_string()
    }

    /// Reads what [`SentRequest::head_to_json`] wrote, with the body kept apart.
    pub fn from_stored(head: &str, body: Option<Vec<u8>>) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Head {
            method: String,
            headers: Vec<(String, String)>,
        }
        let head: Head = serde_json::from_str(head).map_err(|e| e.to_string())?;
        Ok(Self { method: head.method, headers: head.headers, body })
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
    /// Failed for good, and holding its ordered lane (an endpoint that pauses a lane when its
    /// head is exhausted) until a resend or recover queues it again.
    Hold,
}

/// An attempt to record, with the delivery's next step, fenced by the lease.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: DeliveryId,
    pub lease_id: i64,
    pub attempt: Attempt,
    pub next: NextStep,
    /// Disable the endpoint (it answered 410 Gone).
    pub disable_endpoint: bool,
}

impl AttemptRecord {
    /// The delivery's status after this attempt, and when it is next due (the attempt's own
    /// time when it is settled for good).
    pub fn delivery_state(&self) -> (DeliveryStatus, DateTime<Utc>) {
        let at = self.attempt.created_at;
        match self.next {
            NextStep::Delivered => (DeliveryStatus::Success, at),
            NextStep::RetryAt(due) => (DeliveryStatus::Pending, due),
            NextStep::Failed | NextStep::Hold => (DeliveryStatus::Failed, at),
        }
    }

    /// Whether the delivery keeps holding its ordered lane after this record.
    pub fn holds_lane(&self) -> bool {
        self.next == NextStep::Hold
    }
}

/// How a run of attempts to one endpoint, in order, leaves its health: a success ends the
/// failing streak, a failure starts one unless one is running. Stores fold a batch's attempts
/// into one of these per endpoint and write it once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HealthRun {
    /// Some attempt of the run succeeded (so a streak from before the run has ended).
    pub succeeded: bool,
    /// When the failures after the run's last success began; `None` if the last attempt
    /// succeeded or every attempt did.
    pub failing_since: Option<DateTime<Utc>>,
}

impl HealthRun {
    pub fn record(&mut self, success: bool, at: DateTime<Utc>) {
        if success {
            *self = Self { succeeded: true, failing_since: None };
        } else if self.failing_since.is_none() {
            self.failing_since = Some(at);
        }
    }
}

/// Filters of the message list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    pub channel: Option<ChannelName>,
    pub event_types: Vec<EventTypeName>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
}

/// Filters of attempt lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    pub status: Option<DeliveryStatus>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    pub status_code_class: Option<u16>,
    pub event_types: Vec<EventTypeName>,
    pub channel: Option<ChannelName>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
}

/// Counts of an endpoint's deliveries by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub success: u64,
    pub pending: u64,
    pub failed: u64,
    pub sending: u64,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_health_run_keeps_the_first_failure_after_the_last_success() {
        let at = Utc::now();
        let mut run = HealthRun::default();
        run.record(false, at);
        run.record(false, at + Duration::minutes(1));
        assert_eq!(run, HealthRun { succeeded: false, failing_since: Some(at) });
        run.record(true, at + Duration::minutes(2));
        assert_eq!(run, HealthRun { succeeded: true, failing_since: None });
        run.record(false, at + Duration::minutes(3));
        assert_eq!(run, HealthRun { succeeded: true, failing_since: Some(at + Duration::minutes(3)) });
    }
}
