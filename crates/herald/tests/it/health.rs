//! Liveness and readiness probes: no token needed, JSON reports, and Svix's health check kept.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestServer;

#[tokio::test]
async fn probes_answer_without_a_token_and_report_the_store_and_worker() {
    let server = TestServer::start().await;
    let live = server.call_as("", reqwest::Method::GET, "/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body, json!({"status": "live"}));

    let ready = server.call_as("", reqwest::Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    assert_eq!(
        ready.body,
        json!({"status": "ready", "store": "ok", "worker": "running", "shuttingDown": false})
    );

    let svix = server.call_as("", reqwest::Method::GET, "/api/v1/health", None).await;
    assert_eq!(svix.status, StatusCode::NO_CONTENT);
}
