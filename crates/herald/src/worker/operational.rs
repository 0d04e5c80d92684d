//! Operational webhooks: events about delivery itself (`endpoint.disabled`,
//! `message.attempt.exhausted`, `message.attempt.failing`, and Herald's
//! `endpoint.consent.pending|granted|refused`), POSTed signed to the operator's URL.
//!
//! They are the way to alert on delivery trouble. Best effort by design: events wait in a
//! bounded in-memory queue and are tried a few times; they are not stored. The operator's URL
//! comes from configuration and is trusted, so it is not subject to the SSRF guard.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::delivery::Attempt;
use herald_core::id::{ApplicationId, EndpointId, MessageId};
use herald_core::secret::SigningSecret;
use herald_core::signature::signature_header;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events waiting to be sent at most; further events are dropped with a warning.
const QUEUE_CAPACITY: usize = 1024;
/// Waits between the tries of one event.
const RETRY_DELAYS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)];

/// Something about delivery an operator should hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    EndpointDisabled {
        app_id: ApplicationId,
        endpoint_id: EndpointId,
        reason: String,
        at: DateTime<Utc>,
    },
    AttemptExhausted {
        app_id: ApplicationId,
        msg_id: MessageId,
        endpoint_id: EndpointId,
        last_attempt: Attempt,
    },
    AttemptFailing {
        app_id: ApplicationId,
        msg_id: MessageId,
        endpoint_id: EndpointId,
        last_attempt: Attempt,
    },
    /// The consent handshake with an endpoint ended (a Herald extension): deliveries wait
    /// (`pending`), go (`granted`) or are not attempted (`refused`, with the reason).
    EndpointConsent {
        app_id: ApplicationId,
        endpoint_id: EndpointId,
        status: herald_core::consent::ConsentStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The Svix event type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::EndpointDisabled { .. } => "endpoint.disabled",
            Self::AttemptExhausted { .. } => "message.attempt.exhausted",
            Self::AttemptFailing { .. } => "message.attempt.failing",
            Self::EndpointConsent { status, .. } => match status {
                herald_core::consent::ConsentStatus::Granted => "endpoint.consent.granted",
                herald_core::consent::ConsentStatus::Refused => "endpoint.consent.refused",
                _ => "endpoint.consent.pending",
            },
        }
    }

    /// The JSON body, in the shape of Svix's operational webhooks.
    pub fn body(&self) -> serde_json::Value {
        let attempt = |a: &Attempt| json!({"id": a.id, "timestamp": a.created_at, "responseStatusCode": a.response_status_code});
        let data = match self {
            Self::EndpointDisabled { app_id, endpoint_id, reason, at } => {
                json!({"appId": app_id, "endpointId": endpoint_id, "failSince": at, "trigger": "automatic", "reason": reason})
            }
            Self::AttemptExhausted { app_id, msg_id, endpoint_id, last_attempt }
            | Self::AttemptFailing { app_id, msg_id, endpoint_id, last_attempt } => {
                json!({"appId": app_id, "msgId": msg_id, "endpointId": endpoint_id, "lastAttempt": attempt(last_attempt)})
            }
            Self::EndpointConsent { app_id, endpoint_id, status, reason, at } => {
                json!({"appId": app_id, "endpointId": endpoint_id, "consentStatus": status.name(), "reason": reason, "timestamp": at})
            }
        };
        json!({"type": self.event_type(), "data": data})
    }
}

/// Where operational webhooks go.
#[derive(Debug, Clone)]
pub struct OperationalTarget {
    pub url: url::Url,
    pub secret: SigningSecret,
}

/// The sending side of the operational webhook queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct OperationalWebhooks {
    queue: Option<mpsc::Sender<Event>>,
}

impl OperationalWebhooks {
    /// No operator URL configured: events are only logged.
    pub fn disabled() -> Self {
        Self { queue: None }
    }

    /// Starts the task that sends events to `target` until `shutdown`, on `tasks` (which the
    /// app waits for at shutdown).
    pub fn start(target: OperationalTarget, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tasks.spawn(run(target, receiver, shutdown));
        Self { queue: Some(queue) }
    }

    /// Queues an event (and logs it either way).
    pub fn send(&self, event: Event) {
        tracing::info!(event = event.event_type(), body = %event.body()["data"], "operational event");
        if let Some(queue) = &self.queue
            && queue.try_send(event).is_err()
        {
            tracing::warn!("the operational webhook queue is full; an event was dropped");
        }
    }
}

async fn run(target: OperationalTarget, mut receiver: mpsc::Receiver<Event>, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(15)).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "could not build the operational webhook client");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            event = receiver.recv() => match event { Some(event) => event, None => return },
            () = shutdown.cancelled() => return,
        };
        let body = event.body().to_string();
        let id = format!("op_{}", herald_core::id::Ksuid::new(herald_core::clock::system_now()).encode());
        for (try_number, delay) in std::iter::once(Duration::ZERO).chain(RETRY_DELAYS).enumerate() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return,
            }
            let timestamp = herald_core::clock::system_now().timestamp();
            let signature = signature_header([&target.secret], &id, timestamp, body.as_bytes());
            let result = client
                .post(target.url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => break,
                Ok(response) => {
                    tracing::warn!(status = %response.status(), try_number, "operational webhook refused")
                }
                Err(error) => tracing::warn!(error = %error, try_number, "operational webhook failed"),
            }
        }
    }
}
