//! The dispatcher: leases due deliveries and routes each to its endpoint's lane.
//!
//! It never holds a database transaction while a request is in flight: leasing is one short
//! store call, and the lanes do the sending.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::delivery::LeaseRequest;
use herald_core::id::EndpointId;
use tokio_util::sync::CancellationToken;

use crate::worker::Context;
use crate::worker::lane::{self, Lane};

/// Wait after a failed lease before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// The dispatcher's state: the lanes of the endpoints that have work.
#[derive(Debug)]
pub(super) struct Dispatcher {
    context: Arc<Context>,
    lanes: HashMap<EndpointId, Lane>,
    /// Deliveries one endpoint may have queued and in flight at most.
    per_endpoint: usize,
    /// Cancelled at shutdown; lanes stop with it.
    shutdown: CancellationToken,
}

impl Dispatcher {
    pub(super) fn new(context: Arc<Context>, shutdown: CancellationToken) -> Self {
        let per_endpoint = lane::queue_limit(&context.settings);
        Self { context, lanes: HashMap::new(), per_endpoint, shutdown }
    }

    /// One look at the queue: leases what is due (never more per endpoint than its lane can
    /// take, nothing for endpoints that are busy or held back) and hands each delivery to its
    /// endpoint's lane. Returns how many deliveries it leased.
    pub(super) async fn round(&mut self) -> Result<usize, herald_core::StoreError> {
        let context = &self.context;
        let now = context.clock.now();
        self.lanes.retain(|_, lane| !lane.is_finished());
        let exclude: Vec<EndpointId> = self
            .lanes
            .iter()
            .filter(|(_, lane)| lane.is_unavailable(now))
            .map(|(id, _)| id.clone())
            .collect();
        let request = LeaseRequest {
            now,
            limit: context.settings.lease_batch,
            per_endpoint: u32::try_from(self.per_endpoint).unwrap_or(u32::MAX),
            exclude,
            lease_until: now + context.settings.lease_duration,
        };
        let leased = context.store.lease_deliveries(&request).await?;
        let count = leased.len();
        for delivery in leased {
            let lane = self.lanes.entry(delivery.endpoint_id.clone()).or_insert_with(|| {
                Lane::start(
                    context.clone(),
                    delivery.app_id.clone(),
                    delivery.endpoint_id.clone(),
                    self.shutdown.clone(),
                )
            });
            lane.push(delivery);
        }
        Ok(count)
    }

    /// Deliveries leased per round at most.
    pub(super) fn lease_batch(&self) -> u32 {
        self.context.settings.lease_batch
    }

    /// Waits until every delivery handed to the lanes is settled or given back, at most
    /// `limit`; returns how many are still in the lanes.
    pub(super) async fn wait_until_settled(&self, limit: Duration) -> usize {
        let context = &self.context;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let settled = context.settled.notified();
            let in_progress = context.in_progress.load(std::sync::atomic::Ordering::SeqCst);
            if in_progress == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return context.in_progress.load(std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Stops the lanes (what they have not started goes back to the queue) and gives the
    /// attempts in flight the shutdown grace period.
    pub(super) async fn stop(self) {
        for lane in self.lanes.values() {
            lane.close();
        }
        drop(self.lanes);
        self.context.attempts.close();
        let grace = self.context.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.context.attempts.wait()).await.is_err() {
            tracing::warn!(
                "attempts still in flight after the shutdown grace period; their leases will expire"
            );
        }
    }
}

/// Runs the dispatcher until `shutdown`: a round whenever there may be work (woken by new
/// messages and freed lanes, or when the next delivery is due), at least every poll interval.
pub(super) async fn run(mut dispatcher: Dispatcher, shutdown: CancellationToken) {
    let context = dispatcher.context.clone();
    while !shutdown.is_cancelled() {
        match dispatcher.round().await {
            // A full batch: more may be due right now.
            Ok(leased) if leased as u64 >= u64::from(context.settings.lease_batch) => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "could not lease deliveries; retrying");
                tokio::select! {
                    () = tokio::time::sleep(ERROR_BACKOFF) => continue,
                    () = shutdown.cancelled() => break,
                }
            }
        }
        // A lane that settled during the round (an ordered lane's head, say) already asked for
        // another one: go on at once, without reading the next due time.
        tokio::select! {
            biased;
            () = context.wake.notified() => continue,
            () = std::future::ready(()) => {}
        }
        let wait = wait_time(&context, &dispatcher.lanes).await;
        tokio::select! {
            () = context.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => break,
        }
    }
    dispatcher.stop().await;
}

/// How long to sleep before looking at the queue again, unless woken: until the next delivery
/// is due or an endpoint's circuit closes, at most the poll interval.
async fn wait_time(context: &Context, lanes: &HashMap<EndpointId, Lane>) -> Duration {
    let now = context.clock.now();
    let mut until = now
        + chrono::Duration::from_std(context.settings.poll_interval).unwrap_or(chrono::Duration::seconds(1));
    match context.store.next_due_at().await {
        // Due work that was not leased belongs to endpoints that are busy or held back; their
        // lanes wake the dispatcher when that changes.
        Ok(Some(due)) if due > now => until = until.min(due),
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error, "could not read the next due time"),
    }
    for lane in lanes.values() {
        if let Some(open_until) = lane.held_until(now) {
            until = until.min(open_until);
        }
    }
    (until - now).to_std().unwrap_or(Duration::ZERO)
}
