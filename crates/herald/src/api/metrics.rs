//! `GET /metrics` (Prometheus text format, no authentication) and the middleware that counts
//! and times every API request by its route template.
//!
//! The route label is the router's matched template (`/api/v1/app/{app_id}/msg`), never the
//! raw path, so ids in URLs can't grow the label set.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiState;
use crate::metrics::QueueSnapshot;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Route label for requests no route matched (404s from the fallback).
const UNMATCHED: &str = "unmatched";

/// Serves the metrics for a scrape: the counters kept in memory, and the queue gauges read
/// from the store now (left out, with `herald_store_up 0`, when the store does not answer).
pub async fn serve(State(state): State<ApiState>) -> impl IntoResponse {
    let now = state.clock().now();
    let queue = match state.store().queue_stats(now).await {
        Ok(stats) => {
            let age = |at: Option<chrono::DateTime<chrono::Utc>>| {
                at.and_then(|at| (now - at).to_std().ok()).unwrap_or_default()
            };
            let oldest_due_age = age(stats.oldest_due_at);
            let oldest_lane_message_age = age(stats.oldest_lane_message_at);
            Some(QueueSnapshot { stats, oldest_due_age, oldest_lane_message_age })
        }
        Err(error) => {
            tracing::warn!(error = %error, "metrics: could not read the queue from the store");
            None
        }
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics().render(queue.as_ref()))
}

/// Counts and times the request under its route template (and, in builds with the `otlp`
/// feature, runs it in an `http.request` span: route, method, status, and the id of a message
/// it accepted).
pub async fn track(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    #[cfg(feature = "otlp")]
    let (response, _span) = {
        use tracing::Instrument as _;
        let span = tracing::info_span!(target: crate::otlp::TARGET, "http.request",
            http.route = route.as_deref().unwrap_or(UNMATCHED), http.method = method.as_str(),
            http.status_code = tracing::field::Empty, msg_id = tracing::field::Empty);
        let response = next.run(request).instrument(span.clone()).await;
        span.record("http.status_code", response.status().as_u16());
        (response, span)
    };
    #[cfg(not(feature = "otlp"))]
    let response = next.run(request).await;
    state.metrics().http_request(
        route.as_deref().unwrap_or(UNMATCHED),
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
