//! The HTTP API: routing, shared state, and one module per resource.
//!
//! Only this module knows HTTP request types. Handlers parse input into domain types, call the
//! application layer (`crate::service`), and map results to the Svix-compatible JSON shapes
//! defined beside them.

pub mod application;
pub mod attempt;
pub mod auth;
pub mod consent;
pub mod docs;
pub mod endpoint;
pub mod endpoint_secret;
pub mod error;
pub mod event_type;
pub mod example;
pub mod extract;
pub mod filters;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod ingest_endpoint;
pub mod ingest_receive;
pub mod limit;
pub mod message;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod portal;
pub mod serve;
pub mod stats;
pub mod tls;
pub mod token;
pub mod transformation;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::{Extension, Router, middleware};
use herald_core::Store;
use herald_core::clock::Clock;

use crate::metrics::Metrics;
use crate::service::Service;
use crate::worker::WorkerHandle;

use crate::api::error::ApiError;
use crate::api::extract::BodyLimit;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<ApiShared>,
    tokens: Arc<auth::TokenCache>,
    /// The use cases every handler calls.
    service: Service,
}

/// The parts of [`ApiState`].
#[derive(Debug)]
pub struct ApiShared {
    /// All persistent state.
    pub store: Arc<dyn Store>,
    /// The time new messages are stamped with.
    pub clock: Arc<dyn Clock>,
    /// Woken when a message is accepted, so delivery starts without a polling delay.
    pub worker: WorkerHandle,
    /// Base URL for links handed out (portal URLs), without a trailing slash.
    pub public_url: String,
    /// The organisation's consent setting (`consent`).
    pub consent: herald_core::consent::ConsentMode,
    /// The SSRF guard's policy (`allowed_cidrs`): endpoint URLs it will refuse are warned about.
    pub address_policy: crate::worker::ssrf::AddressPolicy,
    /// Refuse such endpoint URLs with 422 instead (`refuse_unroutable_endpoints`).
    pub refuse_unroutable_endpoints: bool,
    /// Operational webhooks about what the API learns (a consent granted through its callback).
    pub operational: crate::worker::operational::OperationalWebhooks,
    /// Lifetime of customer-portal tokens.
    pub portal_token_ttl: Duration,
    /// Who may frame the portal page (CSP `frame-ancestors` sources).
    pub portal_frame_ancestors: String,
    /// How long payloads are kept when a message does not say.
    pub payload_retention: Duration,
    /// Counters and histograms served at `/metrics`; shared with the worker.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the node starts shutting down, which readiness reports.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Background work the use cases start (recover); the app waits for it at shutdown.
    pub tasks: tokio_util::task::TaskTracker,
    /// The script sandbox and the event types' versions (shared with the worker).
    pub scripts: crate::scripts::Scripts,
    /// Check every payload against its schema (`validate_payloads`).
    pub validate_payloads: bool,
    pub ingest: crate::config::IngestConfig,
    pub endpoint_https_only: bool,
}

impl ApiState {
    pub fn new(shared: ApiShared) -> Self {
        let service = Service::new(crate::service::Shared {
            store: shared.store.clone(),
            clock: shared.clock.clone(),
            worker: shared.worker.clone(),
            metrics: shared.metrics.clone(),
            payload_retention: shared.payload_retention,
            tasks: shared.tasks.clone(),
            shutdown: shared.shutdown.clone(),
            consent: shared.consent,
            scripts: shared.scripts.clone(),
            validate_payloads: shared.validate_payloads,
            address_policy: shared.address_policy.clone(),
            refuse_unroutable_endpoints: shared.refuse_unroutable_endpoints,
            operational: shared.operational.clone(),
            public_url: shared.public_url.clone(),
            ingest: shared.ingest,
            endpoint_https_only: shared.endpoint_https_only,
            sources: crate::service::SourceCache::default(),
        });
        Self { inner: Arc::new(shared), tokens: Arc::default(), service }
    }

    /// The application layer: what handlers call.
    pub fn service(&self) -> &Service {
        &self.service
    }

    pub fn tokens(&self) -> &auth::TokenCache {
        &self.tokens
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn worker(&self) -> &WorkerHandle {
        &self.inner.worker
    }

    pub fn payload_retention(&self) -> Duration {
        self.inner.payload_retention
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    pub fn portal_token_ttl(&self) -> Duration {
        self.inner.portal_token_ttl
    }

    pub fn portal_frame_ancestors(&self) -> &str {
        &self.inner.portal_frame_ancestors
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The ingest gateway's settings.
    pub fn ingest(&self) -> &crate::config::IngestConfig {
        &self.inner.ingest
    }

    pub fn shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }
}

/// The health routes every API-serving router has: `/api/v1/health` (and the alias Svix
/// clients call) and the liveness and readiness probes.
fn with_health(router: Router<ApiState>) -> Router<ApiState> {
    with_probes(router)
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/health/ping", get(health::health))
}

/// The liveness and readiness probes, on every listener.
fn with_probes(router: Router<ApiState>) -> Router<ApiState> {
    router.route("/health/live", get(health::live)).route("/health/ready", get(health::ready))
}

/// The router of a node that only delivers: health checks, and JSON 404s for the rest.
pub fn health_router(state: ApiState) -> Router {
    with_health(Router::new())
        .route("/metrics", get(metrics::serve))
        .fallback(health::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// The router of the separate metrics listener (`metrics_listen`): Prometheus and the probes.
pub fn metrics_router(state: ApiState) -> Router {
    with_probes(Router::new())
        .route("/metrics", get(metrics::serve))
        .fallback(health::not_found)
        .with_state(state)
}

/// What shapes the API's router besides its state.
#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    /// Bounds every request body (413 beyond).
    pub max_body_bytes: usize,
    /// Requests handled at once; 503 beyond.
    pub max_concurrent_requests: usize,
    /// A separate metrics listener serves `/metrics`, so this router does not.
    pub metrics_elsewhere: bool,
}

/// The API's router.
pub fn router(state: ApiState, settings: RouterSettings) -> Router {
    let RouterSettings { max_body_bytes, max_concurrent_requests, metrics_elsewhere } = settings;
    let app_routes = Router::new()
        .route("/", get(application::list).post(application::create))
        .route(
            "/{app_id}",
            get(application::get)
                .put(application::upsert)
                .patch(application::patch)
                .delete(application::delete),
        )
        .route("/{app_id}/endpoint", get(endpoint::list).post(endpoint::create))
        .route(
            "/{app_id}/endpoint/{endpoint_id}",
            get(endpoint::get).put(endpoint::upsert).patch(endpoint::patch).delete(endpoint::delete),
        )
        .route("/{app_id}/endpoint/{endpoint_id}/secret", get(endpoint_secret::get_secret))
        .route("/{app_id}/endpoint/{endpoint_id}/secret/rotate", post(endpoint_secret::rotate_secret))
        .route("/{app_id}/endpoint/{endpoint_id}/recover", post(attempt::recover))
        .route(
            "/{app_id}/endpoint/{endpoint_id}/transformation",
            get(transformation::get).patch(transformation::patch),
        )
        .route("/{app_id}/endpoint/{endpoint_id}/transformation/simulate", post(transformation::simulate))
        .route("/{app_id}/endpoint/{endpoint_id}/send-example", post(example::send_example))
        .route("/{app_id}/endpoint/{endpoint_id}/payload-preview", get(example::payload_preview))
        .route("/{app_id}/endpoint/{endpoint_id}/stats", get(attempt::stats))
        .route("/{app_id}/endpoint/{endpoint_id}/msg", get(attempt::list_attempted_messages))
        .route("/{app_id}/stats", get(stats::app_stats))
        .route("/{app_id}/msg", get(message::list).post(message::create))
        .route("/{app_id}/msg/{msg_id}", get(message::get))
        .route("/{app_id}/msg/{msg_id}/content", delete(message::expunge_content))
        .route("/{app_id}/msg/{msg_id}/attempt/{attempt_id}", get(attempt::get))
        .route("/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", delete(attempt::expunge_content))
        .route("/{app_id}/msg/{msg_id}/endpoint", get(attempt::list_attempted_destinations))
        .route("/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", post(attempt::resend))
        .route("/{app_id}/attempt/endpoint/{endpoint_id}", get(attempt::list_by_endpoint))
        .route("/{app_id}/attempt/msg/{msg_id}", get(attempt::list_by_message))
        .route(
            "/{app_id}/endpoint/{endpoint_id}/headers",
            get(endpoint_secret::get_headers)
                .put(endpoint_secret::put_headers)
                .patch(endpoint_secret::patch_headers),
        );
    let event_type_routes = Router::new().route("/", get(event_type::list).post(event_type::create)).route(
        "/{event_type_name}",
        get(event_type::get).put(event_type::upsert).patch(event_type::patch).delete(event_type::delete),
    );
    let source_routes = Router::new()
        .route("/", get(ingest::list).post(ingest::create))
        .route(
            "/{source_id}",
            get(ingest::get).put(ingest::upsert).patch(ingest::patch).delete(ingest::delete),
        )
        .route("/{source_id}/token/rotate", post(ingest::rotate_token))
        .route("/{source_id}/refusal", get(ingest::refusals))
        .route("/{source_id}/endpoint", get(ingest_endpoint::list).post(ingest_endpoint::create))
        .route(
            "/{source_id}/endpoint/{endpoint_id}",
            get(ingest_endpoint::get).put(ingest_endpoint::upsert).delete(ingest_endpoint::delete),
        )
        .route("/{source_id}/endpoint/{endpoint_id}/secret", get(ingest_endpoint::get_secret))
        .route(
            "/{source_id}/endpoint/{endpoint_id}/transformation",
            get(ingest_endpoint::get_transformation).patch(ingest_endpoint::patch_transformation),
        )
        .route("/{source_id}/endpoint/{endpoint_id}/secret/rotate", post(ingest_endpoint::rotate_secret))
        .route(
            "/{source_id}/endpoint/{endpoint_id}/headers",
            get(ingest_endpoint::get_headers).put(ingest_endpoint::put_headers),
        );
    let docs_page = docs::render(&openapi::document());
    let mut router = Router::new();
    if !metrics_elsewhere {
        router = router.route("/metrics", get(metrics::serve));
    }

    with_health(router)
        .nest("/api/v1/app", app_routes)
        .nest("/api/v1/event-type", event_type_routes)
        .nest("/ingest/api/v1/source", source_routes)
        .route("/api/v1/auth/app-portal-access/{app_id}", post(portal::app_portal_access))
        .route("/api/v1/auth/app/{app_id}/expire-all", post(portal::expire_all))
        .route("/api/v1/token", get(token::list))
        .route("/api/v1/token/{token_id}", delete(token::revoke))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/consent/{token}", get(consent::grant).post(consent::grant))
        .route("/docs", get(move || docs::serve(docs_page.clone())))
        // The dashboard and the portal: static pages that call the API above like any client.
        .route("/", get(ui::root))
        .route("/ui", get(ui::dashboard))
        .route("/ui/assets/{name}", get(ui::asset))
        .route("/portal", get(ui::portal))
        .fallback(health::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(BodyLimit(max_body_bytes)))
        // Ingest URLs: after the layers above, because a provider's request is neither an API
        // call (no bearer token, so no idempotency key is claimed for it) nor bounded by
        // max_body_bytes (it has ingest_max_body_bytes, read by the handler).
        .route("/in/{token}", post(ingest_receive::receive))
        // Before anything reads a body or claims an idempotency key.
        .layer(middleware::from_fn_with_state(
            limit::RequestLimit::new(max_concurrent_requests),
            limit::limit_requests,
        ))
        // Around everything that may answer in plain text (axum's rejections of a bad path).
        .layer(middleware::from_fn(error::json_errors))
        // Outermost, so every answer is counted, idempotent replays and 413s included.
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}
