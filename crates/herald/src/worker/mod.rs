//! Delivery: leases due deliveries from the store, sends them through per-endpoint lanes, and
//! records every attempt. Only this module sends outbound HTTP.
//!
//! The dispatcher leases in batches, never more per endpoint than that endpoint's lane can
//! take, and hands each delivery to its endpoint's lane; a lane caps the endpoint's requests
//! in flight, enforces its rate limit and circuit breaker, and records outcomes. So a slow,
//! dead or rate-limited endpoint only ever slows its own lane.

pub mod breaker;
mod dispatcher;
mod lane;
pub mod maintenance;
pub mod operational;
pub mod sender;
pub mod ssrf;

use std::sync::Arc;
use std::time::Duration;

use herald_core::Store;
use herald_core::clock::Clock;
use herald_core::retry::RetrySchedule;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::worker::operational::OperationalWebhooks;
use crate::worker::sender::{Sender, SenderSettings};

/// How the worker behaves; from configuration.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Requests in flight to one endpoint at most.
    pub endpoint_concurrency: usize,
    /// Deliveries leased per store call at most.
    pub lease_batch: u32,
    /// How long a lease holds; a delivery whose worker died is due again after it.
    pub lease_duration: chrono::Duration,
    /// Longest wait between looks at the queue when nothing wakes the worker (a backstop:
    /// new messages wake it at once).
    pub poll_interval: Duration,
    pub retry: RetrySchedule,
    /// An endpoint failing without a single success for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Time in-flight attempts get to finish at shutdown.
    pub shutdown_grace: Duration,
    pub sender: SenderSettings,
}

/// What the worker's tasks share.
#[derive(Debug)]
struct Context {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    sender: Sender,
    /// Wakes the dispatcher: new messages, freed lane capacity, a moved test clock.
    wake: Arc<Notify>,
    operational: OperationalWebhooks,
    /// Every attempt task, so shutdown can wait for them.
    attempts: TaskTracker,
}

/// Handle to the worker, for waking it.
#[derive(Debug, Clone, Default)]
pub struct WorkerHandle {
    wake: Arc<Notify>,
}

impl WorkerHandle {
    /// Tells the worker there may be new due work (a message was accepted).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle for the worker that [`start`] will run.
    pub fn new() -> Self {
        Self { wake: Arc::new(Notify::new()) }
    }
}

/// Starts the worker: the dispatcher and the maintenance jobs. They stop when `shutdown` is
/// cancelled; the returned tracker finishes when they (and in-flight attempts) are done.
pub fn start(
    handle: &WorkerHandle,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    operational: OperationalWebhooks,
    shutdown: CancellationToken,
) -> Result<TaskTracker, reqwest::Error> {
    let sender = Sender::new(settings.sender.clone())?;
    let wake = handle.wake.clone();
    let context = Arc::new(Context {
        store,
        clock,
        settings,
        sender,
        wake: wake.clone(),
        operational,
        attempts: TaskTracker::new(),
    });
    let tasks = TaskTracker::new();
    tasks.spawn(dispatcher::run(context.clone(), shutdown.clone()));
    tasks.spawn(maintenance::run(
        context.store.clone(),
        context.clock.clone(),
        context.settings.disable_after,
        context.operational.clone(),
        shutdown,
    ));
    tasks.close();
    Ok(tasks)
}
