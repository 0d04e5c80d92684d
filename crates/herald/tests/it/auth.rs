//! Authentication and scopes: organisation tokens, and application-scoped portal tokens.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use herald_core::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Options, TestServer, assert_error};

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_a_json_body() {
    let server = TestServer::start().await;
    for token in ["", "sk_not_a_real_token"] {
        let reply = server.call_as(token, Method::GET, "/api/v1/app", None).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED);
    }
    let malformed = server
        .client
        .get(server.url("/api/v1/app"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_error(&crate::helpers::read(malformed).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_portal_token_reaches_its_own_application_only() {
    let server = TestServer::start().await;
    server.create_app("Mine", Some("mine")).await;
    server.create_app("Theirs", Some("theirs")).await;
    server.create_event_type("order.created").await;
    server
        .post("/api/v1/app/theirs/endpoint", json!({"url": "https://example.com/theirs", "uid": "t"}))
        .await;

    let access = server.post("/api/v1/auth/app-portal-access/mine", json!({})).await;
    assert_eq!(access.status, StatusCode::OK);
    let token = access.body["token"].as_str().unwrap().to_owned();
    let url = access.body["url"].as_str().unwrap();
    // The fragment names the application and carries the token; neither reaches a server.
    let app_id = server.get("/api/v1/app/mine").await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(url, server.url(&format!("/portal#app={app_id}&token={token}")));

    // Its own application: readable, and its endpoints manageable.
    let own = server.call_as(&token, Method::GET, "/api/v1/app/mine", None).await;
    assert_eq!(own.status, StatusCode::OK);
    let created = server
        .call_as(
            &token,
            Method::POST,
            "/api/v1/app/mine/endpoint",
            Some(json!({"url": "https://example.com/mine"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let event_types = server.call_as(&token, Method::GET, "/api/v1/event-type", None).await;
    assert_eq!(event_types.status, StatusCode::OK);

    // Another application does not exist for it.
    for path in ["/api/v1/app/theirs", "/api/v1/app/theirs/endpoint", "/api/v1/app/theirs/endpoint/t/secret"]
    {
        assert_error(&server.call_as(&token, Method::GET, path, None).await, StatusCode::NOT_FOUND);
    }
    // Organisation-wide operations are forbidden.
    assert_error(&server.call_as(&token, Method::GET, "/api/v1/app", None).await, StatusCode::FORBIDDEN);
    let create_app = server.call_as(&token, Method::POST, "/api/v1/app", Some(json!({"name": "x"}))).await;
    assert_error(&create_app, StatusCode::FORBIDDEN);
    assert_error(
        &server.call_as(&token, Method::DELETE, "/api/v1/app/mine", None).await,
        StatusCode::FORBIDDEN,
    );
    let event_type = server
        .call_as(&token, Method::POST, "/api/v1/event-type", Some(json!({"name": "x", "description": "x"})))
        .await;
    assert_error(&event_type, StatusCode::FORBIDDEN);
    let escalate =
        server.call_as(&token, Method::POST, "/api/v1/auth/app-portal-access/theirs", Some(json!({}))).await;
    assert_error(&escalate, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn portal_access_can_create_the_application_and_tokens_expire() {
    let clock = Arc::new(ManualClock::starting_now());
    let server = TestServer::start_with(Options { clock: Some(clock), ..Options::default() }).await;
    let missing = server.post("/api/v1/auth/app-portal-access/new-customer", json!({})).await;
    assert_error(&missing, StatusCode::NOT_FOUND);
    let created = server
        .post(
            "/api/v1/auth/app-portal-access/new-customer",
            json!({"application": {"name": "New customer"}, "expiry": 1}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(server.get("/api/v1/app/new-customer").await.body["name"], "New customer");
    let token = created.body["token"].as_str().unwrap().to_owned();
    let fresh = server.call_as(&token, Method::GET, "/api/v1/app/new-customer", None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{:?}", fresh.body);
    // The token was given a one-second lifetime.
    server.advance(chrono::Duration::seconds(2));
    let expired = server.call_as(&token, Method::GET, "/api/v1/app/new-customer", None).await;
    let detail = assert_error(&expired, StatusCode::UNAUTHORIZED);
    assert!(detail.contains("expired"), "{detail}");
}
