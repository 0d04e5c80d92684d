//! OpenTelemetry traces (builds with the `otlp` feature): a `herald serve` process sends its
//! spans over OTLP/HTTP to a collector stand-in on loopback. The request that accepted a
//! message and the message's delivery attempt are tied together by the message id.
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::process::{BOUND, Served, TOKEN, client};
use crate::receiver::Receiver;

/// Every span the collector received so far.
fn spans(collector: &Receiver) -> Vec<Value> {
    let mut all = Vec::new();
    for request in collector.received() {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.header("content-type"), "application/json");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        for resource in body["resourceSpans"].as_array().unwrap() {
            let service = &resource["resource"]["attributes"][0];
            assert_eq!(service, &json!({"key": "service.name", "value": {"stringValue": "herald"}}));
            for scope in resource["scopeSpans"].as_array().unwrap() {
                all.extend(scope["spans"].as_array().unwrap().iter().cloned());
            }
        }
    }
    all
}

/// A span's attribute value (`stringValue` or `intValue`, as text).
fn attribute(span: &Value, key: &str) -> Option<String> {
    let found = span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?;
    let value = &found["value"];
    value["stringValue"].as_str().or(value["intValue"].as_str()).map(str::to_owned)
}

#[tokio::test]
async fn a_request_and_its_messages_attempts_are_exported_as_linked_spans() {
    let work = tempfile::tempdir().unwrap();
    let collector = Receiver::start().await;
    let endpoint = Receiver::start().await;
    let otlp = collector.url("");
    let mut served =
        Served::start(work.path(), &work.path().join("data"), &[("HERALD_OTLP_ENDPOINT", &otlp)]);
    served.wait_healthy().await;
    let client = client();
    let post = |path: &str, body: Value| client.post(served.url(path)).bearer_auth(TOKEN).json(&body).send();
    assert_eq!(
        post("/api/v1/app", json!({"name": "T", "uid": "t"})).await.unwrap().status(),
        StatusCode::CREATED
    );
    let created = post("/api/v1/app/t/endpoint", json!({"url": endpoint.url("/hook")})).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let sent = post("/api/v1/app/t/msg", json!({"eventType": "a.b", "payload": {}})).await.unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let msg_id = sent.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    endpoint.wait_for(1, Duration::from_secs(10)).await;

    let deadline = Instant::now() + BOUND;
    let (request, root, attempt) = loop {
        let all = spans(&collector);
        let named = |name: &str| {
            all.iter()
                .find(|s| s["name"] == name && attribute(s, "msg_id").as_deref() == Some(msg_id.as_str()))
        };
        if let (Some(r), Some(m), Some(a)) =
            (named("http.request"), named("message.accepted"), named("delivery.attempt"))
        {
            break (r.clone(), m.clone(), a.clone());
        }
        assert!(Instant::now() < deadline, "spans so far: {all:#?}\nserver: {}", served.stderr_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    assert_eq!(attribute(&request, "http.route").as_deref(), Some("/api/v1/app/{app_id}/msg"));
    assert_eq!(attribute(&request, "http.method").as_deref(), Some("POST"));
    assert_eq!(attribute(&request, "http.status_code").as_deref(), Some("202"));
    assert_eq!(request["kind"], 2, "a server span");
    // The message's trace starts at `message.accepted`, linked to the request's trace.
    assert_eq!(root["links"][0]["traceId"], request["traceId"]);
    assert_eq!(root["links"][0]["spanId"], request["spanId"]);
    assert_ne!(root["traceId"], request["traceId"]);
    // The attempt is a child of it, in the same trace.
    assert_eq!(attempt["traceId"], root["traceId"]);
    assert_eq!(attempt["parentSpanId"], root["spanId"]);
    assert_eq!(attribute(&attempt, "http.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(&attempt, "outcome").as_deref(), Some("success"));
    assert_eq!(attempt["status"]["code"], 0);
    for span in [&request, &root, &attempt] {
        assert_eq!(span["traceId"].as_str().unwrap().len(), 32, "{span}");
        assert_eq!(span["spanId"].as_str().unwrap().len(), 16, "{span}");
        let start: u128 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u128 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start > 0 && end >= start, "{span}");
    }
    served.signal("-TERM");
    assert!(served.wait_exit(BOUND).await.success());
}
