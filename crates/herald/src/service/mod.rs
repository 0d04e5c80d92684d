//! The application layer: Herald's use cases (send a message, create, change and delete
//! endpoints, rotate secrets, resend, recover, hand out portal access, list and revoke tokens, …) as plain async
//! methods over the store, the clock, the worker's handle and the app's task tracker.
//!
//! Every way into Herald calls this layer: the HTTP handlers in `api/` (which only extract,
//! call and map), and tests in-process. It knows no HTTP types and no SQL: its inputs are
//! parsed domain types (`herald_core`), its failures a [`ServiceError`] with one stable code
//! per cause. A new use case goes here, as a method on [`Service`] in the module of its
//! resource; the handler that exposes it stays a few lines long.

mod applications;
mod attempts;
mod endpoints;
mod error;
mod event_types;
mod examples;
mod expiring;
mod ingest;
mod messages;
mod portal;
mod source_cache;
mod tokens;
mod transformations;

use std::sync::Arc;
use std::time::Duration;

use herald_core::Store;
use herald_core::clock::Clock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::worker::WorkerHandle;

pub use applications::NewApplication;
pub use endpoints::{NewEndpoint, Upserted};
pub use error::{CODES, Resource, ServiceError};
pub use event_types::NewEventType;
pub use examples::Preview;
pub use ingest::{Incoming, NewSource, Received};
pub use messages::NewMessage;
pub use source_cache::SourceCache;

/// What the use cases work with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Shared>,
    /// Application uids resolved to ids lately, for sending messages by uid
    /// (`applications::APP_ID_TTL`).
    app_ids: Arc<expiring::ExpiringMap<herald_core::name::Uid, herald_core::id::ApplicationId>>,
}

/// The parts of a [`Service`], given by whoever wires the app.
#[derive(Debug)]
pub struct Shared {
    /// All persistent state.
    pub store: Arc<dyn Store>,
    /// The time every use case reads (tests move a manual clock).
    pub clock: Arc<dyn Clock>,
    /// Woken when there is new work; told when an endpoint changed, so its next delivery
    /// uses the new URL, secret or headers.
    pub worker: WorkerHandle,
    /// Counts accepted messages.
    pub metrics: Arc<Metrics>,
    /// How long payloads are kept when a message does not say.
    pub payload_retention: Duration,
    /// Background work a use case starts (recovering failed messages) runs here, so shutdown
    /// waits for it instead of cutting it off.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown; background work stops early when it fires.
    pub shutdown: CancellationToken,
    /// The organisation's consent setting, for endpoints without their own (`consent`).
    pub consent: herald_core::consent::ConsentMode,
    /// The script sandbox and the event types' versions (shared with the worker).
    pub scripts: crate::scripts::Scripts,
    /// Check every payload against its schema (`validate_payloads`), not only those of event
    /// types that ask for it.
    pub validate_payloads: bool,
    /// The SSRF guard's policy (`allowed_cidrs`), to warn about endpoint URLs it will refuse.
    pub address_policy: crate::worker::ssrf::AddressPolicy,
    /// Refuse such URLs instead of warning (`refuse_unroutable_endpoints`).
    pub refuse_unroutable_endpoints: bool,
    /// Operational webhooks for what a use case learns (a consent granted through its callback).
    pub operational: crate::worker::operational::OperationalWebhooks,
    /// The base URL users reach Herald at (ingest URLs are made from it).
    pub public_url: String,
    /// The ingest gateway's settings.
    pub ingest: crate::config::IngestConfig,
    /// Endpoint URLs must be `https://` (`endpoint_https_only`).
    pub endpoint_https_only: bool,
    /// Ingest sources by token hash, read a few seconds ago (empty at start).
    pub sources: source_cache::SourceCache,
}

impl Service {
    pub fn new(shared: Shared) -> Self {
        Self {
            inner: Arc::new(shared),
            app_ids: Arc::new(expiring::ExpiringMap::new(applications::APP_ID_TTL)),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn worker(&self) -> &WorkerHandle {
        &self.inner.worker
    }

    /// The organisation's consent setting.
    pub fn consent_mode(&self) -> herald_core::consent::ConsentMode {
        self.inner.consent
    }

    /// Converters and transformations, and the event types' versions.
    pub fn scripts(&self) -> &crate::scripts::Scripts {
        &self.inner.scripts
    }

    /// How long a payload is kept when its message does not say (`payload_retention`).
    fn default_payload_retention(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.payload_retention).unwrap_or(chrono::Duration::days(90))
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
