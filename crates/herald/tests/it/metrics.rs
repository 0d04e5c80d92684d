//! `GET /metrics`: unauthenticated Prometheus text whose counters follow what the API accepted
//! and what the worker attempted, labelled by route template and attempt outcome.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

/// A server whose clock stands still, so failed deliveries are not retried during the test.
pub(crate) async fn start(env: Vec<(&'static str, String)>) -> TestServer {
    let options = Options { env, clock: Some(Arc::new(ManualClock::starting_now())), ..Options::default() };
    let server = TestServer::start_with(options).await;
    server.create_app("Acme", Some("acme")).await;
    server
}

pub(crate) async fn add_endpoint(server: &TestServer, uid: &str, url: String) {
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url, "uid": uid})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

pub(crate) async fn send(server: &TestServer) -> String {
    let reply = server.post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Polls the attempt list until `n` attempts are recorded (recording follows the response).
pub(crate) async fn wait_for_attempts(server: &TestServer, msg_id: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = server.get(&format!("/api/v1/app/acme/attempt/msg/{msg_id}")).await;
        let data: &Vec<Value> = list.body["data"].as_array().unwrap();
        if data.len() >= n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {n} attempts, have {data:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scrapes without credentials: the endpoint is open, like the health check.
pub(crate) async fn scrape(server: &TestServer) -> String {
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered), or 0 when absent.
pub(crate) fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn counters_follow_accepted_messages_and_attempt_outcomes() {
    let server = start(Vec::new()).await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.always(Reply::Status(500));
    add_endpoint(&server, "healthy", healthy.url("/")).await;
    add_endpoint(&server, "failing", failing.url("/")).await;

    let before = scrape(&server).await;
    assert_eq!(sample(&before, "herald_messages_accepted_total"), 0.0);
    assert_eq!(sample(&before, "herald_delivery_attempt_duration_seconds_count"), 0.0);

    for _ in 0..2 {
        let msg_id = send(&server).await;
        wait_for_attempts(&server, &msg_id, 2).await;
    }
    let _ = server.get("/no/such/path").await;

    let text = scrape(&server).await;
    assert_eq!(sample(&text, "herald_messages_accepted_total"), 2.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="success"}"#), 2.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="http_5xx"}"#), 2.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="refused"}"#), 0.0, "{text}");
    assert_eq!(sample(&text, "herald_delivery_attempt_duration_seconds_count"), 4.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempt_duration_seconds_bucket{le="+Inf"}"#), 4.0);
    // Requests are labelled by route template, never by the ids in the path.
    let created =
        r#"herald_http_requests_total{route="/api/v1/app/{app_id}/msg",method="POST",status="202"}"#;
    assert_eq!(sample(&text, created), 2.0, "{text}");
    assert!(!text.contains("route=\"/api/v1/app/acme"), "{text}");
    let unmatched = r#"herald_http_requests_total{route="unmatched",method="GET",status="404"}"#;
    assert_eq!(sample(&text, unmatched), 1.0, "{text}");
    let scrapes = r#"herald_http_requests_total{route="/metrics",method="GET",status="200"}"#;
    assert_eq!(sample(&text, scrapes), 1.0, "the scrape before this one: {text}");
    let timed =
        r#"herald_http_request_duration_seconds_count{route="/api/v1/app/{app_id}/msg",status_class="2xx"}"#;
    assert_eq!(sample(&text, timed), 2.0, "{text}");
}

#[tokio::test]
async fn attempts_refused_by_the_ssrf_guard_are_counted_as_refused() {
    let server = start(vec![("HERALD_ALLOWED_CIDRS", String::new())]).await;
    let receiver = Receiver::start().await;
    add_endpoint(&server, "loopback", receiver.url("/")).await;
    let msg_id = send(&server).await;
    wait_for_attempts(&server, &msg_id, 1).await;

    let text = scrape(&server).await;
    assert_eq!(sample(&text, "herald_messages_accepted_total"), 1.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="refused"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="no_response"}"#), 0.0, "{text}");
    assert_eq!(sample(&text, "herald_delivery_attempt_duration_seconds_count"), 1.0, "{text}");
    assert_eq!(receiver.count(), 0, "nothing reached the receiver");
}

#[tokio::test]
async fn gauges_show_the_queue_and_endpoint_health_and_commits_are_timed() {
    let server = start(Vec::new()).await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.always(Reply::Status(503));
    add_endpoint(&server, "healthy", healthy.url("/")).await;
    add_endpoint(&server, "failing", failing.url("/")).await;
    let off = json!({"url": healthy.url("/off"), "uid": "off", "disabled": true});
    assert_eq!(server.post("/api/v1/app/acme/endpoint", off).await.status, StatusCode::CREATED);

    let empty = scrape(&server).await;
    assert_eq!(sample(&empty, "herald_store_up"), 1.0, "{empty}");
    assert_eq!(sample(&empty, r#"herald_queue_deliveries{state="due"}"#), 0.0, "{empty}");
    assert_eq!(sample(&empty, "herald_endpoints_disabled"), 1.0, "{empty}");
    assert_eq!(sample(&empty, "herald_endpoints_failing"), 0.0, "{empty}");

    // One message attempted at both endpoints: the failed one waits for its retry (the clock
    // stands still). One message for tomorrow: a delivery per enabled endpoint, scheduled.
    let msg_id = send(&server).await;
    wait_for_attempts(&server, &msg_id, 2).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let later = json!({"eventType": "a.b", "payload": {}, "deliverAt": tomorrow});
    assert_eq!(server.post("/api/v1/app/acme/msg", later).await.status, StatusCode::ACCEPTED);

    let text = scrape(&server).await;
    assert_eq!(sample(&text, r#"herald_queue_deliveries{state="scheduled"}"#), 3.0, "{text}");
    assert_eq!(sample(&text, r#"herald_queue_deliveries{state="due"}"#), 0.0, "{text}");
    assert_eq!(sample(&text, r#"herald_queue_deliveries{state="leased"}"#), 0.0, "{text}");
    assert_eq!(sample(&text, "herald_queue_oldest_due_age_seconds"), 0.0, "{text}");
    assert_eq!(sample(&text, "herald_endpoints_failing"), 1.0, "{text}");
    assert_eq!(sample(&text, "herald_endpoints_disabled"), 1.0, "{text}");
    assert_eq!(sample(&text, "herald_endpoints_circuit_open"), 0.0, "{text}");
    assert_eq!(sample(&text, r#"herald_delivery_attempts_total{outcome="http_5xx"}"#), 1.0, "{text}");
    if crate::helpers::Backend::for_suite() == crate::helpers::Backend::Sqlite {
        // Two messages, two attempt records and the leases that fetched the deliveries went
        // through the group-commit writer, in as many commits as it took (at least one, at
        // most one per write).
        let commits = sample(&text, "herald_store_commit_duration_seconds_count");
        let writes = sample(&text, "herald_store_commit_writes_sum");
        assert!(commits >= 1.0 && commits <= writes, "{text}");
        assert_eq!(sample(&text, "herald_store_commit_writes_count"), commits, "{text}");
        assert!(writes >= 5.0, "two messages, two records and at least one lease: {text}");
    }
}

/// With `metrics_listen`, Prometheus and the probes answer on their own port, and the API's
/// port no longer serves `/metrics`.
#[tokio::test]
async fn a_separate_metrics_listener_serves_metrics_and_probes_and_the_api_port_does_not() {
    // Port 0: the kernel picks the port, and the test server reports it.
    let options =
        Options { env: vec![("HERALD_METRICS_LISTEN", "127.0.0.1:0".to_owned())], ..Options::default() };
    let server = TestServer::start_with(options).await;
    let port = server.metrics_address.expect("a metrics listener").port();
    assert_ne!(port, server.address.port());
    server.post("/api/v1/app", json!({"name": "counted"})).await;

    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    let created = r#"herald_http_requests_total{route="/api/v1/app",method="POST",status="201"}"#;
    assert_eq!(sample(&text, created), 1.0, "the API's requests are counted here: {text}");
    let live = reqwest::get(format!("http://127.0.0.1:{port}/health/live")).await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let api = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/app")).await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND, "the API is not on the metrics port");

    let on_api = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let body: Value = on_api.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{body}");
}
