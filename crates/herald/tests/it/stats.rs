//! `GET /api/v1/app/{app_id}/stats`: an application's messages and attempts in a window, its
//! success rate, and its endpoints' health.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::assert_validation;
use crate::metrics::{add_endpoint, send, start, wait_for_attempts};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn application_stats_count_messages_attempts_and_endpoint_health() {
    let server = start(Vec::new()).await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.always(Reply::Status(500));
    add_endpoint(&server, "healthy", healthy.url("/")).await;
    add_endpoint(&server, "failing", failing.url("/")).await;
    let off = json!({"url": healthy.url("/off"), "disabled": true});
    assert_eq!(server.post("/api/v1/app/acme/endpoint", off).await.status, StatusCode::CREATED);
    server.create_app("Other", Some("other")).await;

    let empty = server.get("/api/v1/app/acme/stats").await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.body["messages"], 0);
    assert_eq!(empty.body["successRate"], serde_json::Value::Null, "no attempts, no rate");

    for _ in 0..2 {
        let msg_id = send(&server).await;
        wait_for_attempts(&server, &msg_id, 2).await;
    }
    let stats = server.get("/api/v1/app/acme/stats").await;
    assert_eq!(stats.status, StatusCode::OK, "{:?}", stats.body);
    let body = &stats.body;
    assert_eq!(body["messages"], 2, "{body}");
    assert_eq!(body["attempts"], json!({"success": 2, "fail": 2}), "{body}");
    assert_eq!(body["successRate"], 0.5, "{body}");
    assert_eq!(body["endpoints"], json!({"total": 3, "disabled": 1, "failing": 1}), "{body}");
    let since = chrono::DateTime::parse_from_rfc3339(body["since"].as_str().unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(body["until"].as_str().unwrap()).unwrap();
    assert_eq!(until - since, chrono::Duration::hours(24), "the default window is a day");

    // Another application's numbers are its own; a window in the past is empty.
    let other = server.get("/api/v1/app/other/stats").await;
    assert_eq!(
        (other.body["messages"].clone(), other.body["endpoints"]["total"].clone()),
        (json!(0), json!(0))
    );
    let past =
        server.get("/api/v1/app/acme/stats?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z").await;
    assert_eq!(past.status, StatusCode::OK);
    assert_eq!((past.body["messages"].clone(), past.body["attempts"]["fail"].clone()), (json!(0), json!(0)));
    assert_eq!(past.body["endpoints"]["failing"], 1, "endpoint health is now, whatever the window");

    let bad = server.get("/api/v1/app/acme/stats?since=yesterday").await;
    assert_eq!(assert_validation(&bad), vec!["query.since"]);
    let backwards =
        server.get("/api/v1/app/acme/stats?since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z").await;
    assert_eq!(assert_validation(&backwards), vec!["query.since"]);
    let missing = server.get("/api/v1/app/nobody/stats").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
