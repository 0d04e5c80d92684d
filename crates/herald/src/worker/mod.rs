//! Delivery: leases due deliveries from the store, sends them through per-endpoint lanes, and
//! records every attempt. Only this module sends outbound HTTP.
//!
//! The dispatcher leases in batches, never more per endpoint than that endpoint's lane can
//! take, and hands each delivery to its endpoint's lane; a lane caps the endpoint's requests
//! in flight, enforces its rate limit and circuit breaker, and records outcomes. So a slow,
//! dead or rate-limited endpoint only ever slows its own lane.

pub mod breaker;
mod catch_unwind;
pub mod consent;
mod dispatcher;
mod lane;
pub mod maintenance;
pub mod operational;
mod pipeline;
pub mod sender;
pub mod ssrf;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_core::Store;
use herald_core::clock::Clock;
use herald_core::id::EndpointId;
use herald_core::retry::RetrySchedule;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::worker::operational::OperationalWebhooks;
use crate::worker::sender::{Sender, SenderSettings};

/// How the worker behaves; from configuration.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Requests in flight to one endpoint at most.
    pub endpoint_concurrency: usize,
    /// Attempts in flight on this node at most, over every endpoint.
    pub max_attempts_in_flight: usize,
    /// Consecutive failures that open an endpoint's circuit; 0: never.
    pub circuit_breaker_failures: u32,
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
    /// Messages older than this are deleted, with their attempts.
    pub message_retention: chrono::Duration,
    /// Attempts older than this are deleted (their messages stay).
    pub attempt_retention: chrono::Duration,
    /// Time in-flight attempts get to finish at shutdown.
    pub shutdown_grace: Duration,
    pub sender: SenderSettings,
    /// Endpoint consent (the CloudEvents webhook handshake).
    pub consent: consent::ConsentSettings,
    /// The header naming the payload version a delivery holds (`payload_version_header`).
    pub payload_version_header: http::HeaderName,
    /// The dispatcher runs only when [`WorkerHandle::step`] is called (tests step it with a
    /// manual clock); the maintenance jobs and the lanes run as usual.
    pub stepped: bool,
}

/// What the worker's tasks share.
#[derive(Debug)]
struct Context {
    store: Arc<dyn Store>,
    /// Converters and transformations (the pipeline's prepare stage).
    scripts: crate::scripts::Scripts,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    sender: Sender,
    /// Wakes the dispatcher: new messages, freed lane capacity, a moved test clock.
    wake: Arc<Notify>,
    /// The handle the API holds: endpoint changes arrive through it.
    handle: WorkerHandle,
    operational: OperationalWebhooks,
    /// Attempt counts and durations, served by the API at `/metrics`.
    metrics: Arc<Metrics>,
    /// Every lane and attempt task, so shutdown can wait for them.
    attempts: TaskTracker,
    /// The node-wide cap on attempts in flight: an attempt's task holds an owned permit, given
    /// back when the task ends however it ends.
    attempt_slots: Arc<tokio::sync::Semaphore>,
    /// This node's name in the store's list of live nodes.
    node: String,
    /// Deliveries handed to lanes and not yet settled or given back (what `step` waits for).
    in_progress: AtomicUsize,
    /// Notified when `in_progress` drops to zero.
    settled: Notify,
    /// How many nodes deliver (from heartbeats); per-endpoint limits are split between them.
    live_nodes: AtomicUsize,
}

impl Context {
    /// Whether the endpoint changed through this node's API since its lane last read it.
    fn endpoint_changed(&self, endpoint: &EndpointId) -> bool {
        self.handle.take_changed(endpoint)
    }

    /// A delivery left the lanes: settled, given back, or dropped with its deleted endpoint.
    fn left_the_lanes(&self) {
        if self.in_progress.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.settled.notify_waiters();
        }
    }

    fn live_nodes(&self) -> usize {
        self.live_nodes.load(Ordering::Relaxed).max(1)
    }
}

/// How often a node announces it is alive, and how long an announcement holds.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const HEARTBEAT_TTL: chrono::Duration = chrono::Duration::seconds(15);

/// Keeps this node in the store's list of live nodes, and the count of live nodes current;
/// leaves the list at shutdown so the others take over its share at once.
async fn heartbeat(context: Arc<Context>, shutdown: CancellationToken) {
    loop {
        let now = context.clock.now();
        match context.store.heartbeat(&context.node, now, now + HEARTBEAT_TTL).await {
            Ok(count) => {
                let count = usize::try_from(count).unwrap_or(1).max(1);
                if context.live_nodes.swap(count, Ordering::Relaxed) != count {
                    tracing::info!(
                        nodes = count,
                        "delivering nodes changed; per-endpoint limits are split between them"
                    );
                }
            }
            Err(error) => tracing::warn!(error = %error, "heartbeat failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
            () = shutdown.cancelled() => break,
        }
    }
    if let Err(error) = context.store.leave(&context.node).await {
        tracing::warn!(error = %error, "could not leave the list of live nodes");
    }
}

/// Whether this node's worker is delivering, as health checks report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// This node does not deliver (`--role api`), or the worker has not started yet.
    Off,
    /// The dispatcher is running.
    Running,
    /// The dispatcher ended: at shutdown, or unexpectedly (a panic), when nothing delivers.
    Stopped,
}

/// Handle to the worker, for waking it and telling it about changed endpoints.
#[derive(Debug, Clone, Default)]
pub struct WorkerHandle {
    wake: Arc<Notify>,
    /// [`WorkerState`] as a number (0 off, 1 running, 2 stopped), read by health checks.
    state: Arc<AtomicUsize>,
    /// Endpoints changed through this node's API since their lane last read them, so the
    /// next delivery uses the new URL, secret or headers at once (lanes also re-read every
    /// second, which is how changes made through other nodes arrive).
    changed: Arc<std::sync::Mutex<std::collections::HashSet<EndpointId>>>,
    /// The dispatcher, when the worker is stepped by hand (`WorkerSettings::stepped`).
    stepper: Arc<tokio::sync::Mutex<Option<dispatcher::Dispatcher>>>,
}

/// What one [`WorkerHandle::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// Deliveries that were due and were leased (and then attempted or given back).
    pub leased: usize,
    /// Deliveries still in the lanes when the step stopped waiting (held back by a rate limit,
    /// or a request that outlived the wait).
    pub unfinished: usize,
}

/// How long a step waits for the deliveries it leased to settle.
const STEP_WAIT: Duration = Duration::from_secs(10);

impl WorkerHandle {
    /// Tells the worker there may be new due work (a message was accepted).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle for the worker that [`start`] will run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the worker an endpoint changed (URL, secret, headers, filters, disabled).
    pub fn endpoint_changed(&self, endpoint: &EndpointId) {
        self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(endpoint.clone());
    }

    /// Whether the worker is delivering.
    pub fn state(&self) -> WorkerState {
        match self.state.load(Ordering::Relaxed) {
            0 => WorkerState::Off,
            1 => WorkerState::Running,
            _ => WorkerState::Stopped,
        }
    }

    /// Runs the dispatcher once, by hand: leases every delivery due at the clock's time, hands
    /// them to their lanes, and waits until they are settled (recorded) or given back. Tests
    /// call it after moving a manual clock, to show both that something happened and that
    /// nothing did (`leased == 0`), without sleeping. Only for a worker started with
    /// `WorkerSettings::stepped`; otherwise it does nothing and reports nothing.
    ///
    /// (The worker's own context keeps [`WorkerHandle::for_context`], without the stepped
    /// dispatcher: the dispatcher holds the context, and neither may keep the other alive, or a
    /// stepped worker's store and its connections would outlive the app.)
    pub async fn step(&self) -> StepReport {
        self.step_dispatcher().await
    }

    /// This handle without the stepped dispatcher, for the worker's context.
    fn for_context(&self) -> Self {
        Self { stepper: Arc::default(), ..self.clone() }
    }

    async fn step_dispatcher(&self) -> StepReport {
        let mut stepper = self.stepper.lock().await;
        let Some(dispatcher) = stepper.as_mut() else { return StepReport { leased: 0, unfinished: 0 } };
        let mut leased = 0;
        loop {
            match dispatcher.round().await {
                Ok(count) => {
                    leased += count;
                    if (count as u64) < u64::from(dispatcher.lease_batch()) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, "a stepped dispatch round failed");
                    break;
                }
            }
        }
        let unfinished = dispatcher.wait_until_settled(STEP_WAIT).await;
        StepReport { leased, unfinished }
    }

    /// Whether `endpoint` changed since the last call for it.
    fn take_changed(&self, endpoint: &EndpointId) -> bool {
        let mut changed = self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !changed.is_empty() && changed.remove(endpoint)
    }
}

/// Marks the worker running while it lives, stopped once dropped: when the dispatcher returns
/// or its task unwinds from a panic.
#[derive(Debug)]
struct RunningGuard(Arc<AtomicUsize>);

impl RunningGuard {
    fn start(state: Arc<AtomicUsize>) -> Self {
        state.store(1, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(2, Ordering::Relaxed);
    }
}

/// Starts the worker: the dispatcher and the maintenance jobs. They stop when `shutdown` is
/// cancelled; the returned tracker finishes when they (and in-flight attempts) are done.
#[allow(clippy::too_many_arguments)]
pub fn start(
    handle: &WorkerHandle,
    store: Arc<dyn Store>,
    scripts: crate::scripts::Scripts,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    operational: OperationalWebhooks,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<TaskTracker, rustls::Error> {
    let sender = Sender::new(settings.sender.clone())?;
    let wake = handle.wake.clone();
    let attempt_slots = settings.max_attempts_in_flight.max(1);
    let context_clock_now = clock.now();
    let context = Arc::new(Context {
        store,
        scripts,
        clock,
        settings,
        sender,
        wake: wake.clone(),
        handle: handle.for_context(),
        operational,
        metrics,
        attempts: TaskTracker::new(),
        attempt_slots: Arc::new(tokio::sync::Semaphore::new(attempt_slots)),
        node: format!("node_{}", herald_core::id::Ksuid::new(context_clock_now).encode()),
        live_nodes: AtomicUsize::new(1),
        in_progress: AtomicUsize::new(0),
        settled: Notify::new(),
    });
    let tasks = TaskTracker::new();
    let running = RunningGuard::start(handle.state.clone());
    let dispatcher = dispatcher::Dispatcher::new(context.clone(), shutdown.clone());
    if context.settings.stepped {
        let stepper = handle.stepper.clone();
        let stop = shutdown.clone();
        // Run by `step`; stopped at shutdown like the running one.
        if let Ok(mut slot) = stepper.try_lock() {
            *slot = Some(dispatcher);
        }
        tasks.spawn(async move {
            let _running = running;
            stop.cancelled().await;
            if let Some(dispatcher) = stepper.lock().await.take() {
                dispatcher.stop().await;
            }
        });
    } else {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _running = running;
            dispatcher::run(dispatcher, shutdown).await;
        });
    }
    tasks.spawn(heartbeat(context.clone(), shutdown.clone()));
    tasks.spawn(maintenance::run(
        context.store.clone(),
        context.clock.clone(),
        maintenance::Retention {
            disable_after: context.settings.disable_after,
            messages: context.settings.message_retention,
            attempts: context.settings.attempt_retention,
        },
        context.operational.clone(),
        context.metrics.clone(),
        shutdown,
    ));
    tasks.close();
    Ok(tasks)
}
