//! Background upkeep: disables endpoints that have failed for too long, deletes messages (with
//! their attempts) and removes payloads past their retention, a small batch at a time so no
//! write holds the database long.

use std::sync::Arc;
use std::time::Duration;

use herald_core::Store;
use herald_core::clock::Clock;
use tokio_util::sync::CancellationToken;

use crate::worker::operational::{Event, OperationalWebhooks};

/// How often the jobs run, in the clock's time.
const INTERVAL: chrono::Duration = chrono::Duration::seconds(60);
/// How often the task looks at the clock (a test clock may jump forward at any moment).
const TICK: Duration = Duration::from_secs(1);
/// Payloads removed per statement.
const EXPIRE_BATCH: u32 = 500;

/// How long things are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Messages older than this are deleted with their deliveries and attempts.
    pub messages: chrono::Duration,
}

pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    operational: OperationalWebhooks,
    shutdown: CancellationToken,
) {
    let mut next = clock.now();
    loop {
        if clock.now() >= next {
            run_once(store.as_ref(), clock.as_ref(), retention, &operational).await;
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
    loop {
        match store.delete_messages_before(now - retention.messages, EXPIRE_BATCH).await {
            Ok(removed) if removed == u64::from(EXPIRE_BATCH) => continue,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(error = %error, "could not delete messages past their retention");
                break;
            }
        }
    }
    loop {
        match store.expire_payloads(now, EXPIRE_BATCH).await {
            Ok(removed) if removed == u64::from(EXPIRE_BATCH) => continue,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(error = %error, "could not remove expired payloads");
                break;
            }
        }
    }
}
