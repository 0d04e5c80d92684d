//! `GET /api/v1/app/{app_id}/stats`: an application's activity over a window (messages,
//! attempts by outcome, success rate) and its endpoints' health now. A Herald extension.
//!
//! Counts come from indexes (`Store::application_stats`), so the route is cheap enough for a
//! dashboard or `herald status` to poll.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError};
use crate::api::extract::Query;
use crate::api::filters::{query_error, time_param};

/// The window when the caller gives no `since`.
const DEFAULT_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Query of the application statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppStatsParams {
    /// Start of the window, inclusive (default: 24 hours before `until`).
    pub since: Option<String>,
    /// End of the window, exclusive (default: now).
    pub until: Option<String>,
}

/// Attempts made in the window, by outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptCounts {
    /// Attempts answered with a 2xx.
    pub success: u64,
    /// Attempts that failed: another status, no answer, a timeout or refused.
    pub fail: u64,
}

/// The application's endpoints now.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCounts {
    pub total: u64,
    pub disabled: u64,
    /// Enabled endpoints that have failed since their last success.
    pub failing: u64,
}

/// An application's activity in `[since, until)`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppStatsOut {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Messages created in the window.
    pub messages: u64,
    pub attempts: AttemptCounts,
    /// `attempts.success / (attempts.success + attempts.fail)`; `null` without attempts.
    pub success_rate: Option<f64>,
    pub endpoints: EndpointCounts,
}

/// An application's messages and attempts in a time window, and its endpoints' health.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/stats", tag = "Application",
    params(("app_id" = String, Path, description = "The application's id or uid"), AppStatsParams),
    responses((status = 200, body = AppStatsOut), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn app_stats(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Query(params): Query<AppStatsParams>,
) -> Result<Json<AppStatsOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let given_until = time_param("until", params.until.as_deref())?;
    let until = given_until.unwrap_or_else(|| state.clock().now());
    let since = time_param("since", params.since.as_deref())?.unwrap_or(until - DEFAULT_WINDOW);
    if since > until {
        return Err(query_error("since", "must not be after `until`"));
    }
    // Without an `until` the window runs up to now, inclusive: a message created at this very
    // microsecond counts.
    let end = given_until.unwrap_or(until + chrono::Duration::microseconds(1));
    let stats = state.store().application_stats(&app.id, since, end).await?;
    Ok(Json(AppStatsOut {
        since,
        until,
        messages: stats.messages,
        attempts: AttemptCounts { success: stats.attempts_succeeded, fail: stats.attempts_failed },
        success_rate: stats.success_rate(),
        endpoints: EndpointCounts {
            total: stats.endpoints,
            disabled: stats.endpoints_disabled,
            failing: stats.endpoints_failing,
        },
    }))
}
