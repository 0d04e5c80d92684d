//! Background upkeep: disables endpoints that have failed for too long, enforces retention
//! (whole messages, attempts, payloads) and purges expired API tokens, a small batch at a
//! time so no write holds the database long. What retention removed is counted in the metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use herald_core::clock::Clock;
use herald_core::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, RetentionKind};
use crate::worker::operational::{Event, OperationalWebhooks};

/// How often the jobs run, in the clock's time.
const INTERVAL: chrono::Duration = chrono::Duration::seconds(60);
/// How often the task looks at the clock (a test clock may jump forward at any moment).
const TICK: Duration = Duration::from_secs(1);
/// Rows removed per statement.
const EXPIRE_BATCH: u32 = 500;

/// How long things are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Messages older than this are deleted with their deliveries and attempts.
    pub messages: chrono::Duration,
    /// Attempts older than this are deleted; their messages stay.
    pub attempts: chrono::Duration,
}

pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    operational: OperationalWebhooks,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut next = clock.now();
    loop {
        if clock.now() >= next {
            run_once(store.as_ref(), clock.as_ref(), retention, &operational, &metrics).await;
            next = clock.now() + INTERVAL;
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One round of every job; tests call it directly.
pub async fn run_once(
    store: &dyn Store,
    clock: &dyn Clock,
    retention: Retention,
    operational: &OperationalWebhooks,
    metrics: &Metrics,
) {
    let now = clock.now();
    let disable_after = retention.disable_after;
    match store.disable_failing_endpoints(now - disable_after, now).await {
        Ok(disabled) => {
            for (app_id, endpoint_id) in disabled {
                operational.send(Event::EndpointDisabled {
                    app_id,
                    endpoint_id,
                    reason: format!("no successful delivery for {} hours", disable_after.num_hours()),
                    at: now,
                });
            }
        }
        Err(error) => tracing::warn!(error = %error, "could not check for failing endpoints"),
    }
    let messages_before = now - retention.messages;
    in_batches(metrics, RetentionKind::Messages, || {
        store.delete_messages_before(messages_before, EXPIRE_BATCH)
    })
    .await;
    let attempts_before = now - retention.attempts;
    in_batches(metrics, RetentionKind::Attempts, || {
        store.delete_attempts_before(attempts_before, EXPIRE_BATCH)
    })
    .await;
    in_batches(metrics, RetentionKind::Payloads, || store.expire_payloads(now, EXPIRE_BATCH)).await;
    purge_expired_tokens(store, now).await;
}

/// Deletes tokens that expired by `now` (portal sessions, mostly), a batch at a time: an
/// expired token authenticates nothing, and without this they would pile up for ever.
async fn purge_expired_tokens(store: &dyn Store, now: chrono::DateTime<chrono::Utc>) {
    loop {
        match store.delete_expired_tokens(now, EXPIRE_BATCH).await {
            Ok(removed) if removed < u64::from(EXPIRE_BATCH) => return,
            Ok(_) => tokio::task::yield_now().await,
            Err(error) => {
                tracing::warn!(error = %error, "could not purge expired API tokens");
                return;
            }
        }
    }
}

/// Runs `batch` (one short statement removing at most [`EXPIRE_BATCH`] rows) until it removes
/// less than a full batch, counting what it removed. Other work interleaves between batches.
async fn in_batches<F, Fut>(metrics: &Metrics, kind: RetentionKind, mut batch: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    loop {
        match batch().await {
            Ok(removed) => {
                metrics.retention_deleted(kind, removed);
                if removed < u64::from(EXPIRE_BATCH) {
                    return;
                }
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, kind = ?kind, "retention: could not remove old rows");
                return;
            }
        }
    }
}
