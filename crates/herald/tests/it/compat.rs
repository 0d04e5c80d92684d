//! What older Svix clients read: every endpoint shape carries `version` and `filterTypes` (the
//! Svix SDKs 1.x refuse an endpoint without `version`), and custom header names come back in
//! the case they were given, as in Svix, while lookups ignore case.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, assert_validation};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);

/// Checks the fields the SDKs 1.x read on one endpoint as the API returned it.
fn assert_svix_1_fields(endpoint: &Value, event_types: &Value) {
    assert_eq!(endpoint["version"], 1, "{endpoint}");
    assert_eq!(endpoint["filterTypes"], *event_types, "{endpoint}");
    assert_eq!(endpoint["eventTypes"], *event_types, "{endpoint}");
}

#[tokio::test]
async fn every_endpoint_shape_has_the_fields_svix_sdks_1_require() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    server.create_event_type("order.created").await;
    let base = "/api/v1/app/acme/endpoint";
    let filtered = json!(["order.created"]);

    // The SDKs 1.x send `filterTypes`; they read it back beside `version`.
    let created =
        server.post(base, json!({"url": receiver.url("/"), "uid": "a", "filterTypes": filtered})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_svix_1_fields(&created.body, &filtered);
    assert_svix_1_fields(&server.get(&format!("{base}/a")).await.body, &filtered);
    let put =
        server.put(&format!("{base}/a"), json!({"url": receiver.url("/"), "filterTypes": filtered})).await;
    assert_svix_1_fields(&put.body, &filtered);
    let patched = server.patch(&format!("{base}/a"), json!({"description": "patched"})).await;
    assert_svix_1_fields(&patched.body, &filtered);
    let unfiltered = server.post(base, json!({"url": receiver.url("/"), "uid": "b"})).await;
    assert_svix_1_fields(&unfiltered.body, &Value::Null);
    for endpoint in server.get(base).await.body["data"].as_array().unwrap() {
        assert_eq!(endpoint["version"], 1, "{endpoint}");
    }

    // The attempted destinations of a message are endpoints too.
    let msg = server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let msg_id = msg.body["id"].as_str().unwrap();
    receiver.wait_for(2, WAIT).await;
    let destinations = server.get(&format!("/api/v1/app/acme/msg/{msg_id}/endpoint")).await;
    let data = destinations.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{:?}", destinations.body);
    for destination in data {
        assert_eq!(destination["version"], 1, "{destination}");
        assert!(destination.get("filterTypes").is_some(), "{destination}");
    }
}

#[tokio::test]
async fn custom_header_names_keep_their_case_and_match_without_it() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let base = "/api/v1/app/acme/endpoint";
    let created = server
        .post(
            base,
            json!({"url": receiver.url("/"), "uid": "a", "headers": {"X-Tenant": "acme", "X-Api-Key": "k-1"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let headers = format!("{base}/a/headers");
    assert_eq!(
        server.get(&headers).await.body,
        json!({"headers": {"X-Tenant": "acme"}, "sensitive": ["X-Api-Key"]})
    );

    // A PATCH names a header in any case: it replaces the one there, in the case it gives now.
    let patch = server.patch(&headers, json!({"headers": {"x-TENANT": "globex", "x-api-key": null}})).await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT, "{:?}", patch.body);
    assert_eq!(server.get(&headers).await.body, json!({"headers": {"x-TENANT": "globex"}, "sensitive": []}));
    let delete = server.patch(&headers, json!({"headers": {}, "deleteHeaders": ["X-Tenant"]})).await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&headers).await.body["headers"], json!({}));

    // PUT keeps case too; one name given twice in different cases is ambiguous, so refused.
    let put = server.put(&headers, json!({"headers": {"X-Request-Source": "herald"}})).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&headers).await.body["headers"], json!({"X-Request-Source": "herald"}));
    let twice = server.put(&headers, json!({"headers": {"X-Twice": "1", "x-twice": "2"}})).await;
    assert_eq!(assert_validation(&twice), ["body.headers.x-twice"]);
    assert_eq!(server.get(&headers).await.body["headers"], json!({"X-Request-Source": "herald"}));

    // Deliveries carry the header (HTTP header names are case-insensitive on the wire).
    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].header("x-request-source"), "herald");
}
