//! Example events: `…/send-example` sends an event type's example (from its schema's
//! `examples`, or generated from the schema) to one endpoint only.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, assert_error, assert_validation};
use crate::receiver::Receiver;

#[tokio::test]
async fn an_example_reaches_the_one_endpoint_it_was_sent_to() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let schema = json!({"type": "object", "properties": {"id": {"type": "string"}},
                        "examples": [{"id": "ord_1"}, {"id": "ord_2"}]});
    server
        .post(
            "/api/v1/event-type",
            json!({"name": "order.paid", "description": "x", "schemas": {"1": {}, "2": schema}}),
        )
        .await;
    server.create_app("Acme", Some("acme")).await;
    // The target filters on another event type: an example is for it all the same.
    let target = server
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": receiver.url("/target"), "eventTypes": ["order.paid"]}),
        )
        .await;
    server.post("/api/v1/app/acme/endpoint", json!({"url": receiver.url("/other")})).await;
    let target = target.body["id"].as_str().unwrap();

    let sent = server
        .post(
            &format!("/api/v1/app/acme/endpoint/{target}/send-example"),
            json!({"eventType": "order.paid", "exampleIndex": 1}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(
        (sent.body["payload"].clone(), sent.body["payloadVersion"].clone()),
        (json!({"id": "ord_2"}), json!("2"))
    );
    let arrived = receiver.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(arrived[0].path, "/target");
    assert_eq!(serde_json::from_slice::<Value>(&arrived[0].body).unwrap(), json!({"id": "ord_2"}));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1, "no other endpoint got it");

    let past = server
        .post(
            &format!("/api/v1/app/acme/endpoint/{target}/send-example"),
            json!({"eventType": "order.paid", "exampleIndex": 2}),
        )
        .await;
    assert_eq!(assert_validation(&past), vec!["body.exampleIndex"]);
    assert!(past.body["detail"][0]["msg"].as_str().unwrap().contains("has 2 examples"), "{:?}", past.body);
    let unknown = server
        .post(&format!("/api/v1/app/acme/endpoint/{target}/send-example"), json!({"eventType": "nope"}))
        .await;
    assert_eq!(assert_error(&unknown, StatusCode::NOT_FOUND), "event type not found");
    let no_endpoint = server
        .post("/api/v1/app/acme/endpoint/ep_none/send-example", json!({"eventType": "order.paid"}))
        .await;
    assert_eq!(no_endpoint.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_event_type_without_examples_gets_one_generated_from_its_schema() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let schema = json!({"type": "object", "required": ["at"], "properties": {
        "at": {"type": "string", "format": "date-time"}, "count": {"type": "integer", "minimum": 3}}});
    server
        .post("/api/v1/event-type", json!({"name": "tick", "description": "x", "schemas": {"1": schema}}))
        .await;
    server.post("/api/v1/event-type", json!({"name": "bare", "description": "no schema"})).await;
    server.create_app("Acme", Some("acme")).await;
    let ep = server.post("/api/v1/app/acme/endpoint", json!({"url": receiver.url("/hooks")})).await;
    let path = format!("/api/v1/app/acme/endpoint/{}/send-example", ep.body["id"].as_str().unwrap());
    let sent = server.post(&path, json!({"eventType": "tick"})).await;
    assert_eq!(sent.body["payload"], json!({"at": "2026-01-01T00:00:00Z", "count": 3}));
    let bare = server.post(&path, json!({"eventType": "bare"})).await;
    assert_eq!((bare.status, bare.body["payload"].clone()), (StatusCode::OK, json!({})));
    assert_eq!(receiver.wait_for(2, std::time::Duration::from_secs(10)).await.len(), 2);
}
