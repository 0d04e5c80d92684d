//! One attempt, in three stages: **prepare** (pick the payload to send and sign it; where a
//! payload will be converted or transformed before signing), **send** (the HTTP request, in
//! `sender.rs`), and **settle** (`herald_core::settle` decides the record, the breaker event,
//! the metrics class and the operational webhook; this module carries them out).
//!
//! A panic while preparing or sending is caught here and settled as a failed attempt that
//! says so, retried on the schedule: it never leaves a delivery stuck in `sending`, and the
//! slots the attempt held are given back as it unwinds.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use chrono::{DateTime, Utc};
use herald_core::delivery::LeasedDelivery;
use herald_core::model::Endpoint;
use herald_core::settle::{self, Attempted, BreakerEvent, Exchange, Notice, Settlement};
use http::HeaderMap;
use rand::Rng as _;

use crate::worker::Context;
use crate::worker::breaker::Breaker;
use crate::worker::lane::InFlightSlot;
use crate::worker::operational::Event;
use crate::worker::sender::Outgoing;

/// A delivery ready to send: the exact bytes and the signed headers.
struct Prepared {
    body: Vec<u8>,
    headers: HeaderMap,
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
        let prepared = match prepare(context, endpoint, &delivery, started_at) {
            Ok(prepared) => prepared,
            Err(reason) => return Err(reason),
        };
        Ok(send(context, endpoint, &delivery, prepared).await)
    })
    .await;
    drop(slot);
    let exchange = match exchange {
        Ok(Ok(exchange)) => exchange,
        Ok(Err(reason)) => {
            record_not_attempted(context, &delivery, endpoint, reason, started_at).await;
            return;
        }
        Err(panic) => {
            tracing::error!(msg = %delivery.msg_id, endpoint = %delivery.endpoint_id, panic = %panic,
                "an attempt panicked; it is recorded as failed and retried");
            Exchange::internal_failure("an internal error while preparing or sending it")
        }
    };
    settle_attempt(context, breaker, endpoint, &delivery, started_at, exchange).await;
}

/// Picks the bytes to send and signs them. `Err` is why the delivery ends without a request.
fn prepare(
    context: &Context,
    endpoint: &Endpoint,
    delivery: &LeasedDelivery,
    at: DateTime<Utc>,
) -> Result<Prepared, &'static str> {
    let Some(payload) = delivery.payload.as_deref() else {
        return Err("the message payload expired or was expunged before delivery; not attempted");
    };
    let outgoing = Outgoing { msg_id: delivery.msg_id.as_str(), timestamp: at.timestamp(), payload };
    let headers = context.sender.headers(endpoint, outgoing, at);
    Ok(Prepared { body: payload.to_vec(), headers })
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
        let sent =
            context.sender.send(endpoint, prepared.headers, prepared.body).instrument(span.clone()).await;
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
        context.sender.send(endpoint, prepared.headers, prepared.body).await
    }
}

/// Carries out what [`settle::settle`] decided: metrics, the breaker, the record, the
/// operational webhook.
async fn settle_attempt(
    context: &Context,
    breaker: &Mutex<Breaker>,
    endpoint: &Endpoint,
    delivery: &LeasedDelivery,
    started_at: DateTime<Utc>,
    exchange: Exchange,
) {
    let now = context.clock.now();
    let duration = exchange.duration;
    let attempted = Attempted {
        delivery,
        url: endpoint.url.as_str(),
        started_at,
        finished_at: now,
        schedule: &context.settings.retry,
        random: rand::thread_rng().r#gen(),
    };
    let Settlement { class, record, breaker: event, notice, .. } = settle::settle(attempted, exchange);
    context.metrics.delivery_attempted(class, duration);
    if let Some(until) = feed_breaker(breaker, event, now) {
        // Every node holds the endpoint back, not just this one.
        if let Err(error) = context.store.open_circuit(&delivery.endpoint_id, until).await {
            tracing::warn!(error = %error, "could not share an opened circuit");
        }
    }
    match context.store.record_attempt(&record).await {
        Ok(true) => {}
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

/// Records a delivery that ends without a request (disabled endpoint, expired payload).
pub(super) async fn record_not_attempted(
    context: &Context,
    delivery: &LeasedDelivery,
    endpoint: &Endpoint,
    reason: &str,
    now: DateTime<Utc>,
) {
    let record = settle::not_attempted(delivery, endpoint.url.as_str(), reason, now);
    if let Err(error) = context.store.record_attempt(&record).await {
        tracing::error!(error = %error, msg = %delivery.msg_id, "could not record a skipped delivery");
    }
}

/// A future that turns a panic while polling it into `Err(message)`.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchUnwind<F> {
    fn new(inner: F) -> Self {
        Self { inner: Box::pin(inner) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                Poll::Ready(Err(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
