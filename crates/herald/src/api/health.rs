//! `/api/v1/health`: whether this server can serve requests. No authentication.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ApiState;
use crate::api::error::{ApiError, HttpErrorOut};

/// Health: 204 when the database answers, 503 with a JSON body when it does not.
#[utoipa::path(get, path = "/api/v1/health", tag = "Health",
    responses((status = 204, description = "Healthy"), (status = 503, body = HttpErrorOut)))]
pub async fn health(State(state): State<ApiState>) -> Response {
    match state.store().ping().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "health check: the database does not answer");
            let body = HttpErrorOut {
                code: "unhealthy".to_owned(),
                detail: "the database does not answer".to_owned(),
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Fallback for unknown routes: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}
