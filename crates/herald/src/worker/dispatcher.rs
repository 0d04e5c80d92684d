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

pub(super) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let mut lanes: HashMap<EndpointId, Lane> = HashMap::new();
    let per_endpoint = lane::queue_limit(&context.settings);
    while !shutdown.is_cancelled() {
        let now = context.clock.now();
        lanes.retain(|_, lane| !lane.is_finished());
        let exclude: Vec<EndpointId> =
            lanes.iter().filter(|(_, lane)| lane.is_unavailable(now)).map(|(id, _)| id.clone()).collect();
        let request = LeaseRequest {
            now,
            limit: context.settings.lease_batch,
            per_endpoint: u32::try_from(per_endpoint).unwrap_or(u32::MAX),
            exclude,
            lease_until: now + context.settings.lease_duration,
        };
        let leased = match context.store.lease_deliveries(&request).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::error!(error = %error, "could not lease deliveries; retrying");
                tokio::select! {
                    () = tokio::time::sleep(ERROR_BACKOFF) => continue,
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let full_batch = leased.len() as u64 >= u64::from(context.settings.lease_batch);
        for delivery in leased {
            let lane = lanes.entry(delivery.endpoint_id.clone()).or_insert_with(|| {
                Lane::start(
                    context.clone(),
                    delivery.app_id.clone(),
                    delivery.endpoint_id.clone(),
                    shutdown.clone(),
                )
            });
            lane.push(delivery);
        }
        if full_batch {
            // More may be due right now.
            continue;
        }
        let wait = wait_time(&context, &lanes).await;
        tokio::select! {
            () = context.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => break,
        }
    }
    // Stop: lanes give back what they have not started; attempts in flight get a grace period.
    for lane in lanes.values() {
        lane.close();
    }
    drop(lanes);
    context.attempts.close();
    if tokio::time::timeout(context.settings.shutdown_grace, context.attempts.wait()).await.is_err() {
        tracing::warn!("attempts still in flight after the shutdown grace period; their leases will expire");
    }
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
