//! A lane: one endpoint's deliveries, attempted with a cap on requests in flight, the
//! endpoint's rate limit and its circuit breaker, and recorded as they finish.
//!
//! Lanes are created by the dispatcher when an endpoint has work and retire when idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_core::delivery::{Attempt, AttemptRecord, DeliveryStatus, LeasedDelivery, NextStep, Trigger};
use herald_core::id::{ApplicationId, AttemptId, EndpointId};
use herald_core::model::Endpoint;
use herald_core::retry::{AttemptResult, Outcome};
use herald_core::store::Key;
use rand::Rng as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::AttemptOutcome;
use crate::worker::breaker::{Breaker, RateLimiter};
use crate::worker::operational::Event;
use crate::worker::sender::Outgoing;
use crate::worker::{Context, WorkerSettings};

/// How long an idle lane lives before it retires.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a lane re-reads its endpoint (URL, secrets, headers, rate, enabled).
const ENDPOINT_REFRESH: Duration = Duration::from_secs(1);
/// The 4th failed attempt of a delivery is reported as `message.attempt.failing`.
const FAILING_AFTER_ATTEMPTS: u32 = 4;
/// How long a 429 without a usable `Retry-After` holds the endpoint back.
const DEFAULT_THROTTLE_PAUSE: chrono::Duration = chrono::Duration::seconds(5);

/// Deliveries one endpoint may have queued and in flight before the dispatcher stops leasing
/// for it: two rounds of its concurrency.
pub(super) fn queue_limit(settings: &WorkerSettings) -> usize {
    settings.endpoint_concurrency.max(1) * 2
}

/// State the dispatcher reads to decide whether to lease for this endpoint.
#[derive(Debug, Default)]
struct Shared {
    /// Deliveries handed to the lane and not yet finished.
    pending: AtomicUsize,
    breaker: Mutex<Breaker>,
}

/// The dispatcher's handle on a lane.
#[derive(Debug)]
pub(super) struct Lane {
    queue: mpsc::Sender<LeasedDelivery>,
    shared: Arc<Shared>,
    limit: usize,
    task: JoinHandle<()>,
    context: Arc<Context>,
    stop: CancellationToken,
}

impl Lane {
    pub(super) fn start(
        context: Arc<Context>,
        app_id: ApplicationId,
        endpoint_id: EndpointId,
        shutdown: CancellationToken,
    ) -> Self {
        let limit = queue_limit(&context.settings);
        // Never full: the dispatcher leases at most `limit` for a lane holding fewer than `limit`.
        let (queue, receiver) = mpsc::channel(limit * 2);
        let shared = Arc::new(Shared::default());
        let stop = shutdown.child_token();
        let task =
            tokio::spawn(run(context.clone(), app_id, endpoint_id, receiver, shared.clone(), stop.clone()));
        Self { queue, shared, limit, task, context, stop }
    }

    pub(super) fn push(&self, delivery: LeasedDelivery) {
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(error) = self.queue.try_send(delivery) {
            // The lane retired in the meantime: give the delivery back to the queue at once.
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            let delivery = match error {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            let context = self.context.clone();
            tokio::spawn(async move { release(&context, &delivery, context.clock.now()).await });
        }
    }

    /// Busy (its queue is full) or held back (circuit open, or paused by a 429).
    pub(super) fn is_unavailable(&self, now: DateTime<Utc>) -> bool {
        self.shared.pending.load(Ordering::SeqCst) >= self.limit || self.held_until(now).is_some()
    }

    pub(super) fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.shared.breaker.lock().unwrap_or_else(PoisonError::into_inner).open_until(now)
    }

    pub(super) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the lane: what it has not started goes back to the queue.
    pub(super) fn close(&self) {
        self.stop.cancel();
    }
}

/// This node's share of a per-endpoint limit when `nodes` nodes deliver: rounded up, so the
/// endpoint may see a little more than the limit across nodes but never less than 1 per node.
fn share(limit: usize, nodes: usize) -> usize {
    limit.max(1).div_ceil(nodes.max(1))
}

/// Requests in flight to one endpoint, with a cap that can change between acquisitions (the
/// number of live nodes changes).
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    released: tokio::sync::Notify,
}

impl InFlight {
    /// Waits until fewer than `cap` requests are in flight, and counts one more.
    async fn acquire(&self, cap: usize) {
        loop {
            let released = self.released.notified();
            let current = self.count.load(Ordering::SeqCst);
            if current < cap
                && self
                    .count
                    .compare_exchange(current, current + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return;
            }
            if current < cap {
                continue;
            }
            released.await;
        }
    }

    fn release(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.released.notify_one();
    }
}

/// The endpoint as last read, and its rate limit.
struct Target {
    endpoint: Arc<Endpoint>,
    rate: Option<u16>,
    /// Until when the endpoint is held back by any node's circuit breaker.
    circuit_open_until: Option<DateTime<Utc>>,
    read_at: Instant,
}

async fn run(
    context: Arc<Context>,
    app_id: ApplicationId,
    endpoint_id: EndpointId,
    mut receiver: mpsc::Receiver<LeasedDelivery>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let in_flight = Arc::new(InFlight::default());
    let mut target: Option<Target> = None;
    let mut limiter: Option<RateLimiter> = None;
    loop {
        let idle = shared.pending.load(Ordering::SeqCst) == 0;
        let delivery = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            delivery = receiver.recv() => match delivery {
                Some(delivery) => delivery,
                None => break,
            },
            () = tokio::time::sleep(IDLE_TIMEOUT), if idle => break,
        };

        let stale = context.endpoint_changed(&endpoint_id);
        if stale || target.as_ref().is_none_or(|t| t.read_at.elapsed() >= ENDPOINT_REFRESH) {
            match read_target(&context, &app_id, &endpoint_id).await {
                Ok(Some(fresh)) => {
                    // Another node may have opened the endpoint's circuit.
                    if let Some(until) = fresh.circuit_open_until {
                        shared.breaker.lock().unwrap_or_else(PoisonError::into_inner).pause_until(until);
                    }
                    target = Some(fresh);
                }
                Ok(None) => {
                    // Deleted: its deliveries went with it, so there is nothing to record.
                    finish(&context, &shared);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(error = %error, endpoint = %endpoint_id, "could not read the endpoint; retrying later");
                    release(&context, &delivery, context.clock.now() + chrono::Duration::seconds(5)).await;
                    finish(&context, &shared);
                    continue;
                }
            }
        }
        let Some(current) = target.as_ref() else { continue };
        let endpoint = current.endpoint.clone();

        let now = context.clock.now();
        if endpoint.disabled {
            record_not_attempted(
                &context,
                &delivery,
                &endpoint,
                "the endpoint is disabled; not attempted",
                now,
            )
            .await;
            finish(&context, &shared);
            continue;
        }
        let held = shared.breaker.lock().unwrap_or_else(PoisonError::into_inner).open_until(now);
        if let Some(until) = held {
            release(&context, &delivery, until).await;
            finish(&context, &shared);
            continue;
        }

        // The endpoint's rate limit (its own, or its application's), split between live nodes.
        let nodes = context.live_nodes();
        let rate = current
            .rate
            .map(|rate| share(usize::from(rate), nodes))
            .map(|r| u16::try_from(r).unwrap_or(u16::MAX));
        match (rate, limiter.as_mut()) {
            (None, _) => limiter = None,
            (Some(rate), Some(existing)) => existing.set_rate(rate),
            (Some(rate), None) => limiter = Some(RateLimiter::new(rate, now)),
        }
        if let Some(limiter) = limiter.as_mut() {
            while let Err(next) = limiter.take(context.clock.now()) {
                let wait = (next - context.clock.now()).to_std().unwrap_or(Duration::from_millis(1));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
        // The endpoint's cap on requests in flight, split between live nodes.
        let cap = share(context.settings.endpoint_concurrency, nodes);
        let acquired = tokio::select! {
            () = in_flight.acquire(cap) => true,
            () = stop.cancelled() => false,
        };
        if !acquired {
            release(&context, &delivery, context.clock.now()).await;
            finish(&context, &shared);
            break;
        }
        let (context, shared, in_flight) = (context.clone(), shared.clone(), in_flight.clone());
        context.attempts.clone().spawn(async move {
            attempt(&context, &shared, &in_flight, &endpoint, delivery).await;
            finish(&context, &shared);
        });
    }
    // Give back what was queued but not started, due at once, so a restart picks it up.
    receiver.close();
    while let Ok(delivery) = receiver.try_recv() {
        release(&context, &delivery, context.clock.now()).await;
        finish(&context, &shared);
    }
}

async fn read_target(
    context: &Context,
    app_id: &ApplicationId,
    endpoint_id: &EndpointId,
) -> Result<Option<Target>, herald_core::StoreError> {
    let Some(endpoint) = context.store.find_endpoint(app_id, &Key::Id(endpoint_id.clone())).await? else {
        return Ok(None);
    };
    let app_rate = match endpoint.throttle_rate {
        Some(_) => None,
        None => context.store.find_application(&Key::Id(app_id.clone())).await?.and_then(|a| a.throttle_rate),
    };
    let circuit_open_until = context.store.circuit_open_until(endpoint_id, context.clock.now()).await?;
    Ok(Some(Target {
        rate: endpoint.throttle_rate.or(app_rate),
        endpoint: Arc::new(endpoint),
        circuit_open_until,
        read_at: Instant::now(),
    }))
}

/// A delivery left the lane: it may have room again, which the dispatcher must hear about.
fn finish(context: &Context, shared: &Shared) {
    let before = shared.pending.fetch_sub(1, Ordering::SeqCst);
    if before == queue_limit(&context.settings) {
        context.wake.notify_one();
    }
}

async fn release(context: &Context, delivery: &LeasedDelivery, due: DateTime<Utc>) {
    if let Err(error) = context.store.release_lease(delivery.delivery_id, delivery.lease_id, due).await {
        tracing::warn!(error = %error, "could not give a delivery back; it is due again when its lease expires");
    }
}

/// Makes one attempt and records it.
///
/// The endpoint's in-flight slot is given back as soon as the response is in: recording the
/// attempt is not a request to the endpoint, and must not hold back the next one.
async fn attempt(
    context: &Context,
    shared: &Shared,
    in_flight: &InFlight,
    endpoint: &Endpoint,
    delivery: LeasedDelivery,
) {
    let started_at = context.clock.now();
    let Some(payload) = delivery.payload.as_deref() else {
        in_flight.release();
        let reason = "the message payload expired or was expunged before delivery; not attempted";
        record_not_attempted(context, &delivery, endpoint, reason, started_at).await;
        return;
    };
    let outgoing = Outgoing { msg_id: delivery.msg_id.as_str(), timestamp: started_at.timestamp(), payload };
    let headers = context.sender.headers(endpoint, outgoing, started_at);
    // In the message's trace (see `otlp`); the span ends when the attempt is recorded.
    #[cfg(feature = "otlp")]
    let span = tracing::info_span!(target: crate::otlp::TARGET, "delivery.attempt",
        msg_id = delivery.msg_id.as_str(), endpoint_id = delivery.endpoint_id.as_str(),
        attempt = delivery.attempt, http.status_code = tracing::field::Empty,
        outcome = tracing::field::Empty, error = tracing::field::Empty);
    #[cfg(feature = "otlp")]
    let sent = {
        use tracing::Instrument as _;
        context.sender.send(endpoint, headers, payload.to_vec()).instrument(span.clone()).await
    };
    #[cfg(not(feature = "otlp"))]
    let sent = context.sender.send(endpoint, headers, payload.to_vec()).await;
    in_flight.release();
    let now = context.clock.now();
    let classified = AttemptOutcome::classify(sent.status_code, sent.refused, sent.timed_out);
    context.metrics.delivery_attempted(classified, sent.duration);
    #[cfg(feature = "otlp")]
    {
        span.record("http.status_code", sent.status_code);
        span.record("outcome", classified.label());
        if classified != AttemptOutcome::Success {
            span.record("error", true);
        }
    }

    let decided =
        context.settings.retry.decide(&sent.result, delivery.attempt, now, rand::thread_rng().r#gen());
    // A manual attempt (resend, recover) is made once.
    let outcome = match (delivery.trigger, decided) {
        (Trigger::Manual, Outcome::Retry { .. }) => Outcome::Exhausted,
        (_, outcome) => outcome,
    };
    if let Some(until) = update_breaker(shared, &sent.result, now) {
        // Every node holds the endpoint back, not just this one.
        if let Err(error) = context.store.open_circuit(&delivery.endpoint_id, until).await {
            tracing::warn!(error = %error, "could not share an opened circuit");
        }
    }

    let status = if outcome == Outcome::Delivered { DeliveryStatus::Success } else { DeliveryStatus::Failed };
    let next = match outcome {
        Outcome::Delivered => NextStep::Delivered,
        Outcome::Retry { at } => NextStep::RetryAt(at),
        Outcome::Exhausted | Outcome::Gone => NextStep::Failed,
    };
    let record = AttemptRecord {
        delivery_id: delivery.delivery_id,
        lease_id: delivery.lease_id,
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: delivery.msg_id.clone(),
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            url: endpoint.url.to_string(),
            status,
            response_status_code: sent.status_code,
            response: sent.response,
            response_duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
            trigger: delivery.trigger,
            created_at: started_at,
        },
        next,
        disable_endpoint: outcome == Outcome::Gone,
    };
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
    report(context, &delivery, &record, outcome);
}

/// Feeds an attempt's result to the breaker; returns until when the endpoint is now held back,
/// if this result opened the circuit or paused the endpoint.
fn update_breaker(shared: &Shared, result: &AttemptResult, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut breaker = shared.breaker.lock().unwrap_or_else(PoisonError::into_inner);
    let opened = match result {
        AttemptResult::Response { status, .. } if (200..300).contains(status) => {
            breaker.succeeded();
            false
        }
        AttemptResult::Response { status: 429, retry_after } => {
            let pause = retry_after
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map_or(DEFAULT_THROTTLE_PAUSE, |d| d.min(chrono::Duration::minutes(5)));
            breaker.pause_until(now + pause);
            true
        }
        AttemptResult::Response { status, .. } if *status >= 500 => breaker.failed(now),
        // Other 4xx: the endpoint is up and answering; not a reason to hold it back.
        AttemptResult::Response { .. } => false,
        AttemptResult::NoResponse => breaker.failed(now),
    };
    if opened { breaker.open_until(now) } else { None }
}

/// Records a delivery that ends without a request (disabled endpoint, expired payload).
async fn record_not_attempted(
    context: &Context,
    delivery: &LeasedDelivery,
    endpoint: &Endpoint,
    reason: &str,
    now: DateTime<Utc>,
) {
    let record = AttemptRecord {
        delivery_id: delivery.delivery_id,
        lease_id: delivery.lease_id,
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: delivery.msg_id.clone(),
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            url: endpoint.url.to_string(),
            status: DeliveryStatus::Failed,
            response_status_code: 0,
            response: reason.to_owned(),
            response_duration_ms: 0,
            trigger: delivery.trigger,
            created_at: now,
        },
        next: NextStep::Failed,
        disable_endpoint: false,
    };
    if let Err(error) = context.store.record_attempt(&record).await {
        tracing::error!(error = %error, msg = %delivery.msg_id, "could not record a skipped delivery");
    }
}

/// Sends the operational webhooks an outcome calls for.
fn report(context: &Context, delivery: &LeasedDelivery, record: &AttemptRecord, outcome: Outcome) {
    let attempt = &record.attempt;
    match outcome {
        Outcome::Delivered => {}
        Outcome::Gone => context.operational.send(Event::EndpointDisabled {
            app_id: delivery.app_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            reason: "the endpoint answered 410 Gone".to_owned(),
            at: attempt.created_at,
        }),
        Outcome::Exhausted => context.operational.send(Event::AttemptExhausted {
            app_id: delivery.app_id.clone(),
            msg_id: delivery.msg_id.clone(),
            endpoint_id: delivery.endpoint_id.clone(),
            last_attempt: attempt.clone(),
        }),
        Outcome::Retry { .. } if delivery.attempt == FAILING_AFTER_ATTEMPTS => {
            context.operational.send(Event::AttemptFailing {
                app_id: delivery.app_id.clone(),
                msg_id: delivery.msg_id.clone(),
                endpoint_id: delivery.endpoint_id.clone(),
                last_attempt: attempt.clone(),
            });
        }
        Outcome::Retry { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_split_between_live_nodes_rounding_up() {
        assert_eq!(share(32, 1), 32);
        assert_eq!(share(32, 3), 11);
        assert_eq!(share(1, 4), 1, "every node may still send one");
        assert_eq!(share(0, 0), 1);
    }

    #[tokio::test]
    async fn in_flight_waits_for_a_release_when_at_its_cap() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.acquire(2).await;
        in_flight.acquire(2).await;
        let waiting = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.acquire(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third request waits at a cap of two");
        in_flight.release();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released").expect("joined");
        assert_eq!(in_flight.count.load(Ordering::SeqCst), 2);
    }
}
