//! The cap on requests handled at once (`max_concurrent_requests`): past it a request is
//! answered 503 with `Retry-After` before its body is read, so a burst of large bodies can't
//! take the node's memory.
//!
//! A slot is an owned semaphore permit held for the request's whole handling, so an early
//! return or a panic gives it back. Health probes and `/metrics` take no slot: a busy node
//! must still say whether it is alive and be watched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::api::error::ApiError;

/// The slots of requests in flight. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestLimit {
    slots: Arc<Semaphore>,
    /// The configured number, for the error message.
    max: usize,
}

impl RequestLimit {
    pub fn new(max: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(max)), max }
    }
}

/// Middleware: runs the request in a free slot, or answers 503 when none is free.
pub async fn limit_requests(State(limit): State<RequestLimit>, request: Request, next: Next) -> Response {
    if is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_slot) = limit.slots.clone().try_acquire_owned() else {
        return ApiError::Overloaded(limit.max).into_response();
    };
    next.run(request).await
}

/// The routes that answer whatever the load: health checks and metrics.
fn is_exempt(path: &str) -> bool {
    path == "/metrics" || path.starts_with("/health/") || path.starts_with("/api/v1/health")
}
