//! A lane: one endpoint's deliveries, attempted with a cap on requests in flight, the
//! endpoint's rate limit and its circuit breaker, and recorded as they finish.
//!
//! Lanes are created by the dispatcher when an endpoint has work and retire when idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_core::delivery::LeasedDelivery;
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::model::Endpoint;
use herald_core::store::Key;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::worker::breaker::{Breaker, RateLimiter};
use crate::worker::{Context, WorkerSettings, consent, pipeline};

/// How long an idle lane lives before it retires.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a lane re-reads its endpoint (URL, secrets, headers, rate, enabled).
const ENDPOINT_REFRESH: Duration = Duration::from_secs(1);

/// Deliveries one endpoint may have queued and in flight before the dispatcher stops leasing
/// for it: two rounds of its concurrency.
pub(super) fn queue_limit(settings: &WorkerSettings) -> usize {
    settings.endpoint_concurrency.max(1) * 2
}

/// State the dispatcher reads to decide whether to lease for this endpoint.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Deliveries handed to the lane and not yet finished.
    pending: AtomicUsize,
    pub(super) breaker: Mutex<Breaker>,
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
        let breaker = Breaker::opening_after(context.settings.circuit_breaker_failures);
        let shared = Arc::new(Shared { breaker: Mutex::new(breaker), ..Shared::default() });
        let stop = shutdown.child_token();
        let task = context.attempts.spawn(run(
            context.clone(),
            app_id,
            endpoint_id,
            receiver,
            shared.clone(),
            stop.clone(),
        ));
        Self { queue, shared, limit, task, context, stop }
    }

    pub(super) fn push(&self, delivery: LeasedDelivery) {
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        self.context.in_progress.fetch_add(1, Ordering::SeqCst);
        if let Err(error) = self.queue.try_send(delivery) {
            // The lane retired in the meantime: give the delivery back to the queue at once.
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            self.context.left_the_lanes();
            let delivery = match error {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            let context = self.context.clone();
            self.context
                .attempts
                .spawn(async move { release(&context, &delivery, context.clock.now()).await });
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

/// Requests a second this node may send to an endpoint: the lower of its rate limit (a second)
/// and the rate it consented to (a minute), each split between `nodes` live nodes.
fn limit_per_second(rate: Option<u16>, consented_per_minute: Option<u32>, nodes: usize) -> Option<f64> {
    let own = rate.map(|rate| share(usize::from(rate), nodes) as f64);
    let consented = consented_per_minute.map(|per_minute| f64::from(per_minute) / 60.0 / nodes.max(1) as f64);
    match (own, consented) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
pub(super) struct InFlight {
    pub(super) count: AtomicUsize,
    released: tokio::sync::Notify,
}

/// One request in flight to an endpoint; dropping it (also while unwinding from a panic) gives
/// the endpoint's slot back.
#[derive(Debug)]
pub(super) struct InFlightSlot(Arc<InFlight>);

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl InFlight {
    /// Waits until fewer than `cap` requests are in flight, and takes a slot.
    pub(super) async fn acquire(self: &Arc<Self>, cap: usize) -> InFlightSlot {
        self.count_in(cap).await;
        InFlightSlot(self.clone())
    }

    /// Waits until fewer than `cap` requests are in flight, and counts one more.
    async fn count_in(&self, cap: usize) {
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
        let Some(current) = target.as_mut() else { continue };

        let now = context.clock.now();
        if current.endpoint.disabled {
            pipeline::record_not_attempted(
                &context,
                &delivery,
                &current.endpoint,
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

        // An endpoint that must consent is asked first; until it has, nothing is sent to it.
        let consented =
            match consent::check(&context, &shared.breaker, &mut current.endpoint, &delivery).await {
                consent::Verdict::Deliver { per_minute } => per_minute,
                consent::Verdict::Handled => {
                    finish(&context, &shared);
                    continue;
                }
            };
        let endpoint = current.endpoint.clone();

        // The endpoint's rate limit (its own, or its application's, and what it consented to),
        // split between live nodes.
        let nodes = context.live_nodes();
        let rate = limit_per_second(current.rate, consented, nodes);
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
        // The endpoint's cap on requests in flight, split between live nodes, then the node's
        // cap on attempts in flight over every endpoint. Both are taken as owned slots that
        // move into the attempt's task: whatever way it ends (a panic too), they are given back.
        let cap = share(context.settings.endpoint_concurrency, nodes);
        let slots = tokio::select! {
            slot = in_flight.acquire(cap) => tokio::select! {
                permit = context.attempt_slots.clone().acquire_owned() => permit.ok().map(|p| (slot, p)),
                () = stop.cancelled() => None,
            },
            () = stop.cancelled() => None,
        };
        let Some((slot, node_permit)) = slots else {
            release(&context, &delivery, context.clock.now()).await;
            finish(&context, &shared);
            break;
        };
        let handed = Handed { context: context.clone(), shared: shared.clone() };
        let (context, shared) = (context.clone(), shared.clone());
        context.attempts.clone().spawn(async move {
            let _handed = handed;
            let _node_permit = node_permit;
            pipeline::attempt(&context, &shared.breaker, &endpoint, delivery, slot).await;
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

/// A delivery handed to an attempt task; dropping it (when the task ends, however it ends) is
/// [`finish`].
struct Handed {
    context: Arc<Context>,
    shared: Arc<Shared>,
}

impl Drop for Handed {
    fn drop(&mut self) {
        finish(&self.context, &self.shared);
    }
}

/// A delivery left the lane: it may have room again, which the dispatcher must hear about.
fn finish(context: &Context, shared: &Shared) {
    context.left_the_lanes();
    let before = shared.pending.fetch_sub(1, Ordering::SeqCst);
    if before == queue_limit(&context.settings) {
        context.wake.notify_one();
    }
}

pub(super) async fn release(context: &Context, delivery: &LeasedDelivery, due: DateTime<Utc>) {
    if let Err(error) = context.store.release_lease(delivery.delivery_id, delivery.lease_id, due).await {
        tracing::warn!(error = %error, "could not give a delivery back; it is due again when its lease expires");
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

    #[test]
    fn a_consented_rate_limits_too_per_minute() {
        assert_eq!(limit_per_second(None, None, 1), None);
        assert_eq!(limit_per_second(Some(10), None, 2), Some(5.0));
        assert_eq!(limit_per_second(None, Some(120), 1), Some(2.0));
        assert_eq!(limit_per_second(Some(1), Some(120), 1), Some(1.0));
        assert_eq!(limit_per_second(Some(10), Some(30), 1), Some(0.5));
    }

    #[tokio::test]
    async fn in_flight_waits_for_a_release_when_at_its_cap() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.acquire(2).await;
        let _second = in_flight.acquire(2).await;
        let waiting = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.acquire(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third request waits at a cap of two");
        drop(first);
        let third =
            tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released").expect("joined");
        assert_eq!(in_flight.count.load(Ordering::SeqCst), 2);
        drop(third);
        assert_eq!(in_flight.count.load(Ordering::SeqCst), 1, "a dropped slot is given back");
    }
}
