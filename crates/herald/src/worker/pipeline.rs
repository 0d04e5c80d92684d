//! One attempt, in three stages: **prepare** (the payload converted down to the endpoint's
//! pinned version, then the endpoint's transformation, then the signature), **send** (the HTTP
//! request, in `sender.rs`), and **settle** (`herald_core::settle` decides the record, the
//! breaker event, the metrics class and the operational webhook; this module carries them out).
//!
//! A converter or transformation that fails (throws, runs past its limits, returns something
//! unusable) ends the delivery as failed without a request: running it again would fail the
//! same way. The operator hears of it as of an exhausted delivery. A transformation that
//! cancels ends it as done, nothing sent.
//!
//! A panic while preparing or sending is caught here and settled as a failed attempt that
//! says so, retried on the schedule: it never leaves a delivery stuck in `sending`, and the
//! slots the attempt held are given back as it unwinds.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use herald_core::delivery::LeasedDelivery;
use herald_core::model::{Endpoint, OnExhausted};
use herald_core::settle::{self, Attempted, BreakerEvent, Exchange, Notice, Settlement};
use http::HeaderMap;
use rand::Rng as _;

use crate::scripts::{ConvertError, Webhook};
use crate::worker::Context;
use crate::worker::breaker::Breaker;
use crate::worker::catch_unwind::CatchUnwind;
use crate::worker::lane::InFlightSlot;
use crate::worker::operational::Event;
use crate::worker::sender::Outgoing;
use herald_script::RunError;

/// A delivery ready to send: where, how, the exact bytes and the signed headers.
struct Prepared {
    url: url::Url,
    method: http::Method,
    body: Vec<u8>,
    headers: HeaderMap,
}

/// Why a delivery is not sent this time.
#[derive(Debug)]
enum NotSent {
    /// Failed for good without a request (the payload is gone).
    Skipped(&'static str),
    /// The endpoint's transformation cancelled it: done, nothing sent.
    Cancelled,
    /// A converter or the transformation failed; running it again would fail the same way.
    ScriptFailed(String),
    /// Something passing went wrong (the store could not be read): retried on the schedule.
    Retry(String),
}

/// Makes one attempt and records it. The endpoint's in-flight `slot` is given back as soon as
/// the response is in: recording is not a request to the endpoint and must not hold back the
/// next one.
pub(super) async fn attempt(
    context: &Context,
    breaker: &Mutex<Breaker>,
    endpoint: &Endpoint,
    delivery: LeasedDelivery,
    slot: InFlightSlot,
) {
    let started_at = context.clock.now();
    let exchange = CatchUnwind::new(async {
        let prepared = prepare(context, endpoint, &delivery, started_at).await?;
        let url = prepared.url.clone();
        let request = sent_request(&prepared, delivery.payload.as_deref());
        Ok((send(context, endpoint, &delivery, prepared).await, url, Some(request)))
    })
    .await;
    drop(slot);
    let (exchange, url, request) = match exchange {
        Ok(Ok(sent)) => sent,
        Ok(Err(NotSent::Skipped(reason))) => {
            record_not_attempted(context, &delivery, endpoint, reason, started_at).await;
            return;
        }
        Ok(Err(NotSent::Cancelled)) => {
            record_cancelled(context, &delivery, endpoint, started_at).await;
            return;
        }
        Ok(Err(NotSent::ScriptFailed(reason))) => {
            tracing::warn!(msg = %delivery.msg_id, endpoint = %delivery.endpoint_id, reason = %reason,
                "a script failed; the delivery is not attempted");
            if let Some(attempt) =
                record_not_attempted(context, &delivery, endpoint, &reason, started_at).await
            {
                context.operational.send(operational_event(Notice::Exhausted, &delivery, &attempt));
            }
            return;
        }
        Ok(Err(NotSent::Retry(reason))) => (Exchange::internal_failure(&reason), endpoint.url.clone(), None),
        Err(panic) => {
            tracing::error!(msg = %delivery.msg_id, endpoint = %delivery.endpoint_id, panic = %panic,
                "an attempt panicked; it is recorded as failed and retried");
            (
                Exchange::internal_failure("an internal error while preparing or sending it"),
                endpoint.url.clone(),
                None,
            )
        }
    };
    settle_attempt(context, breaker, endpoint, &delivery, Sent { url: &url, request }, started_at, exchange)
        .await;
}

/// What an attempt sends, as its record keeps it: the method, every header with the values of
/// sensitive ones masked, and the body when it is not the message's payload.
fn sent_request(prepared: &Prepared, payload: Option<&[u8]>) -> herald_core::delivery::SentRequest {
    let headers = prepared
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if herald_core::headers::is_sensitive(name.as_str()) {
                "****".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect();
    let body = (payload != Some(prepared.body.as_slice())).then(|| prepared.body.clone());
    herald_core::delivery::SentRequest { method: prepared.method.to_string(), headers, body }
}

/// Converts the payload to the endpoint's version, runs its transformation, and signs what
/// is to be sent. `Err` is why nothing is sent this time.
async fn prepare(
    context: &Context,
    endpoint: &Endpoint,
    delivery: &LeasedDelivery,
    at: DateTime<Utc>,
) -> Result<Prepared, NotSent> {
    let Some(payload) = delivery.payload.as_deref() else {
        return Err(NotSent::Skipped(
            "the message payload expired or was expunged before delivery; not attempted",
        ));
    };
    let converted = context
        .scripts
        .convert(&delivery.event_type, payload, delivery.payload_version, endpoint.payload_version)
        .await
        .map_err(|error| match error {
            ConvertError::Store(error) => {
                NotSent::Retry(format!("reading the event type's converters: {error}"))
            }
            ConvertError::Failed { error: RunError::Unavailable, .. } => {
                NotSent::Retry("the script engine is not running".to_owned())
            }
            other => NotSent::ScriptFailed(format!("not attempted: {other}")),
        })?;
    let (mut url, mut method, mut body) = (endpoint.url.clone(), http::Method::POST, converted.payload);
    if let Some(code) = endpoint.transformation.active() {
        let shown_url = herald_core::endpoint_url::masked(&endpoint.url);
        let webhook = Webhook {
            event_type: delivery.event_type.as_str(),
            payload: &body,
            url: &shown_url,
            method: "POST",
        };
        match context.scripts.transform(code, webhook).await {
            Ok(transformed) if transformed.cancel => return Err(NotSent::Cancelled),
            Ok(transformed) => {
                // A URL given back masked keeps the endpoint's credentials.
                url = herald_core::endpoint_url::unmask(transformed.url, &endpoint.url);
                method = transformed.method;
                body = transformed.payload;
            }
            Err(RunError::Unavailable) => {
                return Err(NotSent::Retry("the script engine is not running".to_owned()));
            }
            Err(error) => {
                return Err(NotSent::ScriptFailed(format!(
                    "not attempted: the endpoint's transformation failed: {error}"
                )));
            }
        }
    }
    let outgoing = Outgoing { msg_id: delivery.msg_id.as_str(), timestamp: at.timestamp(), payload: &body };
    let mut headers = context.sender.headers(endpoint, outgoing, at);
    headers.insert(
        context.settings.payload_version_header.clone(),
        http::HeaderValue::from(converted.version.number()),
    );
    // After the consent handshake every delivery names the origin the endpoint consented to.
    if crate::worker::consent::required(context, endpoint)
        && let Ok(origin) = http::HeaderValue::from_str(&context.settings.consent.origin)
    {
        headers.insert(http::header::ORIGIN, origin);
    }
    // An ingested body goes with its own content type and the provider's allowed headers
    // (which never replace a header already set: Herald's signature, the endpoint's own).
    if let Some(envelope) = &delivery.envelope {
        if let Ok(content_type) = http::HeaderValue::from_str(&envelope.content_type) {
            headers.insert(http::header::CONTENT_TYPE, content_type);
        }
        for (name, value) in &envelope.headers {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::try_from(name.as_str()), http::HeaderValue::from_str(value))
                && !headers.contains_key(&name)
            {
                headers.insert(name, value);
            }
        }
    }
    Ok(Prepared { url, method, body, headers })
}

async fn send(
    context: &Context,
    endpoint: &Endpoint,
    delivery: &LeasedDelivery,
    prepared: Prepared,
) -> Exchange {
    // In the message's trace (see `otlp`); the span ends when the request does.
    #[cfg(feature = "otlp")]
    {
        use tracing::Instrument as _;
        let span = tracing::info_span!(target: crate::otlp::TARGET, "delivery.attempt",
            msg_id = delivery.msg_id.as_str(), endpoint_id = delivery.endpoint_id.as_str(),
            attempt = delivery.attempt, http.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty, error = tracing::field::Empty);
        let sent = context
            .sender
            .send(endpoint, &prepared.url, prepared.method, prepared.headers, prepared.body)
            .instrument(span.clone())
            .await;
        let class = settle::AttemptClass::classify(sent.status_code, sent.refused, sent.timed_out);
        span.record("http.status_code", sent.status_code);
        span.record("outcome", class.label());
        if class != settle::AttemptClass::Success {
            span.record("error", true);
        }
        sent
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = delivery;
        context.sender.send(endpoint, &prepared.url, prepared.method, prepared.headers, prepared.body).await
    }
}

/// Where an attempt went and what it sent, for its record.
pub(super) struct Sent<'a> {
    pub url: &'a url::Url,
    /// `None` when nothing was sent (a panic, a consent handshake that failed).
    pub request: Option<herald_core::delivery::SentRequest>,
}

/// Carries out what [`settle::settle`] decided: metrics, the breaker, the record, the
/// operational webhook.
pub(super) async fn settle_attempt(
    context: &Context,
    breaker: &Mutex<Breaker>,
    endpoint: &Endpoint,
    delivery: &LeasedDelivery,
    sent: Sent<'_>,
    started_at: DateTime<Utc>,
    exchange: Exchange,
) {
    let Sent { url, request } = sent;
    let now = context.clock.now();
    let duration = exchange.duration;
    let attempted = Attempted {
        delivery,
        url: url.as_str(),
        started_at,
        finished_at: now,
        schedule: &context.settings.retry,
        random: rand::thread_rng().r#gen(),
        pause_lane_when_exhausted: endpoint.ordered_on_exhausted == OnExhausted::Pause,
        request,
    };
    let Settlement { class, record, breaker: event, notice, .. } = settle::settle(attempted, exchange);
    context.metrics.delivery_attempted(class, duration);
    // An ingested event reached a destination: how long after the provider's request.
    if class == settle::AttemptClass::Success
        && delivery.envelope.is_some()
        && let Some(accepted) = delivery.msg_id.created_at()
    {
        context.metrics.ingest.forwarded((now - accepted).to_std().unwrap_or_default());
    }
    if let Some(until) = feed_breaker(breaker, event, now) {
        // Every node holds the endpoint back, not just this one.
        if let Err(error) = context.store.open_circuit(&delivery.endpoint_id, until).await {
            tracing::warn!(error = %error, "could not share an opened circuit");
        }
    }
    match context.store.record_attempt(&record).await {
        Ok(true) => {
            if delivery.in_lane && !record.holds_lane() {
                // The next message of its ordered lane is due now: lease it at once instead of
                // at the next poll.
                context.wake.notify_one();
            }
        }
        Ok(false) => {
            tracing::warn!(msg = %delivery.msg_id, endpoint = %delivery.endpoint_id, "lease lost before the attempt was recorded; another worker owns the delivery");
            return;
        }
        Err(error) => {
            // The lease expires and the delivery is attempted again: at least once.
            tracing::error!(error = %error, msg = %delivery.msg_id, "could not record an attempt");
            return;
        }
    }
    if let Some(notice) = notice {
        context.operational.send(operational_event(notice, delivery, &record.attempt));
    }
}

/// Feeds an attempt's breaker event to the endpoint's breaker; returns until when the endpoint
/// is now held back, if this event opened the circuit or paused the endpoint.
fn feed_breaker(breaker: &Mutex<Breaker>, event: BreakerEvent, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut breaker = breaker.lock().unwrap_or_else(PoisonError::into_inner);
    let opened = match event {
        BreakerEvent::Succeeded => {
            breaker.succeeded();
            false
        }
        BreakerEvent::Throttled { pause } => {
            breaker.pause_until(now + pause);
            true
        }
        BreakerEvent::Failed => breaker.failed(now),
        BreakerEvent::Neutral => false,
    };
    if opened { breaker.open_until(now) } else { None }
}

fn operational_event(
    notice: Notice,
    delivery: &LeasedDelivery,
    attempt: &herald_core::delivery::Attempt,
) -> Event {
    match notice {
        Notice::EndpointGone => Event::EndpointDisabled {
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            reason: "the endpoint answered 410 Gone".to_owned(),
            at: attempt.created_at,
        },
        Notice::Exhausted => Event::AttemptExhausted {
            app_id: delivery.app_id.clone(),
            msg_id: delivery.msg_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            last_attempt: attempt.clone(),
        },
        Notice::Failing => Event::AttemptFailing {
            app_id: delivery.app_id.clone(),
            msg_id: delivery.msg_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            last_attempt: attempt.clone(),
        },
    }
}

/// Records a delivery that ends without a request (disabled endpoint, expired payload, a
/// failed script); the attempt recorded, if the lease still held.
pub(super) async fn record_not_attempted(
    context: &Context,
    delivery: &LeasedDelivery,
    endpoint: &Endpoint,
    reason: &str,
    now: DateTime<Utc>,
) -> Option<herald_core::delivery::Attempt> {
    let record = settle::not_attempted(delivery, endpoint.url.as_str(), reason, now);
    record_final(context, delivery, record).await
}

/// Records a delivery the endpoint's transformation cancelled: done, nothing sent.
async fn record_cancelled(
    context: &Context,
    delivery: &LeasedDelivery,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) {
    let record = settle::cancelled(delivery, endpoint.url.as_str(), now);
    record_final(context, delivery, record).await;
}

async fn record_final(
    context: &Context,
    delivery: &LeasedDelivery,
    record: herald_core::delivery::AttemptRecord,
) -> Option<herald_core::delivery::Attempt> {
    match context.store.record_attempt(&record).await {
        Ok(true) => {
            if delivery.in_lane {
                context.wake.notify_one();
            }
            Some(record.attempt)
        }
        Ok(false) => None,
        Err(error) => {
            tracing::error!(error = %error, msg = %delivery.msg_id, "could not record a delivery that was not sent");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use herald_core::clock::{Clock as _, ManualClock};
    use herald_core::delivery::{DeliveryStatus, LeaseRequest, Message};
    use herald_core::id::{ApplicationId, EndpointId, MessageId};
    use herald_core::model::{Application, EndpointKeys};
    use herald_core::secret::{Cipher, SecretString};
    use herald_core::{Store, delivery::AttemptFilter, store::PageRequest};
    use tokio_util::task::TaskTracker;

    use crate::metrics::Metrics;
    use crate::worker::lane::InFlight;
    use crate::worker::operational::OperationalWebhooks;
    use crate::worker::sender::{Sender, SenderSettings};
    use crate::worker::ssrf::AddressPolicy;
    use crate::worker::{WorkerHandle, WorkerSettings};

    /// A worker context over a fresh SQLite store, sending nowhere.
    async fn context(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<Context> {
        let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(herald_store_sqlite::SqliteStore::open(&dir.join("herald.db"), cipher).await.unwrap());
        let sender_settings = SenderSettings {
            connect_timeout: std::time::Duration::from_secs(1),
            request_timeout: std::time::Duration::from_secs(1),
            response_body_limit: 1024,
            svix_headers: true,
            address_policy: AddressPolicy::new(Vec::new()),
            extra_roots: Vec::new(),
        };
        let settings = WorkerSettings {
            endpoint_concurrency: 4,
            circuit_breaker_failures: 5,
            max_attempts_in_flight: 4,
            lease_batch: 16,
            lease_duration: chrono::Duration::seconds(60),
            poll_interval: std::time::Duration::from_secs(1),
            retry: herald_core::retry::RetrySchedule::default(),
            disable_after: chrono::Duration::days(5),
            message_retention: chrono::Duration::days(90),
            attempt_retention: chrono::Duration::days(90),
            shutdown_grace: std::time::Duration::from_secs(1),
            sender: sender_settings.clone(),
            consent: crate::worker::consent::ConsentSettings {
                mode: herald_core::consent::ConsentMode::Off,
                origin: "herald.test".to_owned(),
                callback_base: "http://127.0.0.1:9".to_owned(),
            },
            payload_version_header: http::HeaderName::from_static("herald-payload-version"),
            stepped: true,
        };
        let engine = herald_script::Engine::start(1, herald_script::Limits::default()).unwrap();
        Arc::new(Context {
            scripts: crate::scripts::Scripts::new(engine, store.clone()),
            store,
            clock,
            sender: Sender::new(sender_settings).unwrap(),
            settings,
            wake: Arc::default(),
            handle: WorkerHandle::new(),
            operational: OperationalWebhooks::disabled(),
            metrics: Arc::new(Metrics::new()),
            attempts: TaskTracker::new(),
            attempt_slots: Arc::new(tokio::sync::Semaphore::new(4)),
            node: "node_test".to_owned(),
            live_nodes: AtomicUsize::new(1),
            in_progress: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        })
    }

    #[tokio::test]
    async fn a_panic_while_preparing_is_a_failed_attempt_that_says_so_and_the_delivery_retries() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let context = context(dir.path(), clock.clone()).await;
        let now = clock.now();
        let app = Application {
            id: ApplicationId::generate_at(now),
            uid: None,
            name: "Acme".to_owned(),
            metadata: BTreeMap::new(),
            throttle_rate: None,
            created_at: now,
            updated_at: now,
        };
        context.store.insert_application(&app).await.unwrap();
        // More custom headers than an HTTP header map can hold: signing them panics (what an
        // endpoint stored before headers were capped could still do).
        let headers = (0..40_000).map(|i| (format!("x-h{i}"), SecretString::new("v".to_owned()))).collect();
        let endpoint = Endpoint {
            id: EndpointId::generate_at(now),
            app_id: app.id.clone(),
            uid: None,
            url: "http://127.0.0.1:9/never".parse().unwrap(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: BTreeMap::new(),
            keys: EndpointKeys::new(None),
            headers,
            bearer_token: None,
            ordered: false,
            ordered_on_exhausted: Default::default(),
            consent: None,
            consent_state: None,
            payload_version: None,
            transformation: Default::default(),
            created_at: now,
            updated_at: now,
        };
        context.store.insert_endpoint(&endpoint).await.unwrap();
        let message = Message {
            id: MessageId::generate_at(now),
            app_id: app.id.clone(),
            event_type: herald_core::name::EventTypeName::parse("order.created").unwrap(),
            event_id: None,
            channels: None,
            payload: Some(b"{}".to_vec()),
            created_at: now,
            deliver_at: None,
            payload_expires_at: now + chrono::Duration::days(1),
            ordering_key: None,
            payload_version: herald_core::version::PayloadVersion::FIRST,
            envelope: None,
        };
        context.store.insert_message(&message).await.unwrap();
        let lease = |at| LeaseRequest {
            now: at,
            limit: 10,
            per_endpoint: 10,
            exclude: Vec::new(),
            lease_until: at + chrono::Duration::seconds(60),
        };
        let mut leased = context.store.lease_deliveries(&lease(now)).await.unwrap();
        assert_eq!(leased.len(), 1);

        let in_flight = Arc::new(InFlight::default());
        let slot = in_flight.acquire(1).await;
        let breaker = Mutex::new(Breaker::default());
        attempt(&context, &breaker, &endpoint, leased.remove(0), slot).await;

        assert_eq!(in_flight.count.load(Ordering::SeqCst), 0, "the endpoint's slot was given back");
        let attempts = context
            .store
            .list_attempts_by_message(
                &app.id,
                &message.id,
                None,
                &AttemptFilter::default(),
                &PageRequest::default(),
            )
            .await
            .unwrap()
            .items;
        assert_eq!(attempts.len(), 1, "the attempt is recorded, not lost");
        assert_eq!(attempts[0].status, DeliveryStatus::Failed);
        assert!(attempts[0].response.contains("failed inside Herald"), "{}", attempts[0].response);
        // Not stuck in `sending`: due again on the retry schedule (5 s ± 20%).
        let early = context.store.lease_deliveries(&lease(now + chrono::Duration::seconds(3))).await.unwrap();
        assert!(early.is_empty(), "not retried before its time");
        let retried =
            context.store.lease_deliveries(&lease(now + chrono::Duration::seconds(7))).await.unwrap();
        assert_eq!(retried.len(), 1, "retried on the schedule");
        assert_eq!(retried[0].attempt, 2);
    }

    #[tokio::test]
    async fn a_panicking_future_becomes_an_error_with_its_message() {
        let caught = CatchUnwind::new(async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom in the sender");
            }
        })
        .await;
        assert_eq!(caught, Err("boom in the sender".to_owned()));
        assert_eq!(CatchUnwind::new(async { 7 }).await, Ok(7));
    }
}
