//! The HTTP API: routing, shared state, and one module per resource.
//!
//! Only this module knows HTTP request types. Handlers parse input into domain types, call the
//! store, and map results to the Svix-compatible JSON shapes defined beside them.

pub mod application;
pub mod auth;
pub mod docs;
pub mod endpoint;
pub mod endpoint_secret;
pub mod error;
pub mod event_type;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod openapi;
pub mod pagination;
pub mod portal;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};
use herald_core::Store;

use crate::api::error::ApiError;
use crate::api::extract::BodyLimit;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// All persistent state.
    store: Arc<dyn Store>,
    /// Base URL for links handed out (portal URLs), without a trailing slash.
    public_url: String,
    /// Lifetime of customer-portal tokens.
    portal_token_ttl: Duration,
}

impl ApiState {
    /// State for a router serving `store`.
    pub fn new(store: Arc<dyn Store>, public_url: String, portal_token_ttl: Duration) -> Self {
        Self { inner: Arc::new(Shared { store, public_url, portal_token_ttl }) }
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
}

/// The API's router. `max_body_bytes` bounds every request body (413 beyond).
pub fn router(state: ApiState, max_body_bytes: usize) -> Router {
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
    let docs_page = docs::render(&openapi::document());

    Router::new()
        .nest("/api/v1/app", app_routes)
        .nest("/api/v1/event-type", event_type_routes)
        .route("/api/v1/auth/app-portal-access/{app_id}", post(portal::app_portal_access))
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/health/ping", get(health::health))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/docs", get(move || docs::serve(docs_page.clone())))
        .fallback(health::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(BodyLimit(max_body_bytes)))
        .with_state(state)
}
