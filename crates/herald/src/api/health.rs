//! Health checks, all without authentication:
//!
//! - `/api/v1/health` (Svix's): 204 when this node can do its job, 503 with a JSON error when
//!   the database does not answer or this node's worker has stopped.
//! - `/health/live`: 200 while the process answers HTTP at all (restart it when this fails).
//! - `/health/ready`: 200 when this node should get traffic, 503 while it should not (the
//!   database does not answer, the node is shutting down, or its worker stopped), with a JSON
//!   report either way. While migrations run nothing listens yet, which probes see as not ready.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::ApiState;
use crate::api::error::{ApiError, HttpErrorOut};
use crate::worker::WorkerState;

/// What readiness found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// `ready` or `notReady`.
    pub status: &'static str,
    /// `ok`, or `unreachable` when the database did not answer.
    pub store: &'static str,
    /// `running`, `off` (this node does not deliver) or `stopped`.
    pub worker: &'static str,
    /// Whether the node is stopping (it finishes requests in flight, takes no new work).
    pub shutting_down: bool,
}

/// The health of this node, from what it checked.
fn assess(store_ok: bool, worker: WorkerState, shutting_down: bool) -> HealthReport {
    let worker_ok = worker != WorkerState::Stopped;
    let ready = store_ok && worker_ok && !shutting_down;
    HealthReport {
        status: if ready { "ready" } else { "notReady" },
        store: if store_ok { "ok" } else { "unreachable" },
        worker: match worker {
            WorkerState::Off => "off",
            WorkerState::Running => "running",
            WorkerState::Stopped => "stopped",
        },
        shutting_down,
    }
}

/// Pings the store and reads the worker's and shutdown's state.
async fn check(state: &ApiState) -> HealthReport {
    let store_ok = match state.store().ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error, "health check: the database does not answer");
            false
        }
    };
    assess(store_ok, state.worker().state(), state.shutting_down())
}

/// Health: 204 when the database answers and this node's worker (if it delivers) runs, 503
/// with a JSON body when not.
#[utoipa::path(get, path = "/api/v1/health", tag = "Health",
    responses((status = 204, description = "Healthy"), (status = 503, body = HttpErrorOut)))]
pub async fn health(State(state): State<ApiState>) -> Response {
    let report = check(&state).await;
    let detail = match (report.store, report.worker) {
        ("ok", "stopped") => "the worker has stopped",
        ("ok", _) => return StatusCode::NO_CONTENT.into_response(),
        _ => "the database does not answer",
    };
    let body = HttpErrorOut { code: "unhealthy".to_owned(), detail: detail.to_owned() };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/health/live", tag = "Health",
    responses((status = 200, description = "The process answers", body = serde_json::Value)))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "live"}))
}

/// Readiness: 200 when this node should get traffic, 503 when not; the report says why.
#[utoipa::path(get, path = "/health/ready", tag = "Health",
    responses((status = 200, body = HealthReport), (status = 503, body = HealthReport)))]
pub async fn ready(State(state): State<ApiState>) -> Response {
    let report = check(&state).await;
    let status = if report.status == "ready" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

/// Fallback for unknown routes: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_a_store_a_worker_and_no_shutdown() {
        let ready = assess(true, WorkerState::Running, false);
        assert_eq!((ready.status, ready.store, ready.worker), ("ready", "ok", "running"));
        assert_eq!(assess(true, WorkerState::Off, false).status, "ready", "an API-only node");
        let unreachable = assess(false, WorkerState::Running, false);
        assert_eq!((unreachable.status, unreachable.store), ("notReady", "unreachable"));
        assert_eq!(assess(true, WorkerState::Stopped, false).status, "notReady");
        let stopping = assess(true, WorkerState::Running, true);
        assert_eq!((stopping.status, stopping.shutting_down), ("notReady", true));
    }
}
