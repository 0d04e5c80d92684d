//! `idempotency-key`: retries of a POST get the first response, even after a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Options, Reply, TestServer, assert_error, read};

async fn post_with_key(server: &TestServer, path: &str, key: &str, body: Value) -> Reply {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(response).await
}

#[tokio::test]
async fn a_retried_post_returns_the_first_response_and_creates_nothing_new() {
    let server = TestServer::start().await;
    let first = post_with_key(&server, "/api/v1/app", "key-1", json!({"name": "Acme"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let retry = post_with_key(&server, "/api/v1/app", "key-1", json!({"name": "Acme"})).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");

    let other = post_with_key(&server, "/api/v1/app", "key-2", json!({"name": "Acme"})).await;
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(server.get("/api/v1/app").await.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_request_does_not_use_up_its_key() {
    let server = TestServer::start().await;
    let failed = post_with_key(&server, "/api/v1/app", "key-1", json!({"name": ""})).await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = post_with_key(&server, "/api/v1/app", "key-1", json!({"name": "Acme"})).await;
    assert_eq!(fixed.status, StatusCode::CREATED);
}

#[tokio::test]
async fn keys_are_scoped_to_the_url() {
    let server = TestServer::start().await;
    let app = post_with_key(&server, "/api/v1/app", "same", json!({"name": "Acme", "uid": "acme"})).await;
    let endpoint =
        post_with_key(&server, "/api/v1/app/acme/endpoint", "same", json!({"url": "https://example.com"}))
            .await;
    assert_eq!(endpoint.status, StatusCode::CREATED);
    assert_ne!(endpoint.body["id"], app.body["id"]);
}

#[tokio::test]
async fn replays_survive_a_restart() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    drop(server);
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    let first = post_with_key(&server, "/api/v1/app", "durable", json!({"name": "Acme"})).await;
    server.stop().await;
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    let retry = post_with_key(&server, "/api/v1/app", "durable", json!({"name": "Acme"})).await;
    assert_eq!(retry.body, first.body);
    assert_eq!(server.get("/api/v1/app").await.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_response_over_a_mebibyte_is_replayed_and_the_message_stored_once() {
    let server = TestServer::start_with(Options {
        env: vec![("HERALD_MAX_BODY_BYTES", (4 * 1024 * 1024).to_string())],
        ..Options::default()
    })
    .await;
    server.create_app("Acme", Some("acme")).await;
    // The response echoes the payload, so it is over 1 MiB too.
    let body = json!({"eventType": "big.payload", "payload": {"blob": "x".repeat(1536 * 1024)}});
    let first = post_with_key(&server, "/api/v1/app/acme/msg", "big", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body["detail"]);
    let retry = post_with_key(&server, "/api/v1/app/acme/msg", "big", body).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{:?}", retry.body["detail"]);
    assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.body, first.body);
    let messages = server.get("/api/v1/app/acme/msg?with_content=false").await;
    assert_eq!(messages.body["data"].as_array().unwrap().len(), 1, "stored once");
}

#[tokio::test]
async fn a_caller_without_a_valid_token_is_refused_before_its_key_is_looked_at() {
    let clock = Arc::new(ManualClock::starting_now());
    let server = TestServer::start_with(Options { clock: Some(clock.clone()), ..Options::default() }).await;
    server.create_app("Acme", Some("acme")).await;
    let access = server.post("/api/v1/auth/app-portal-access/acme", json!({"expiry": 60})).await;
    let token = access.body["token"].as_str().unwrap().to_owned();
    let send = |token: &str, key: &str| {
        let request = server
            .client
            .post(server.url("/api/v1/app/acme/endpoint"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({"url": "https://example.com/hook"}));
        async move { read(request.send().await.unwrap()).await }
    };
    let first = send(&token, "create-endpoint").await;
    assert_eq!(first.status, StatusCode::CREATED);

    // The same request once the token has expired: it is a stranger now, and gets neither
    // the stored response (with the endpoint's details) nor a claim on the key.
    clock.advance(chrono::Duration::minutes(2));
    let replay = send(&token, "create-endpoint").await;
    assert_error(&replay, StatusCode::UNAUTHORIZED);
    assert!(replay.headers.get("idempotent-replayed").is_none());

    // A bad token is a 401 whatever its key, valid or not: authentication comes first.
    for key in ["k".to_owned(), "far-too-long-".repeat(30)] {
        let reply = send("sk_not_a_token_0123456789", &key).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED);
    }
    // The organisation's token is not hindered by any of it.
    let own =
        post_with_key(&server, "/api/v1/app/acme/endpoint", "k", json!({"url": "https://example.com/b"}))
            .await;
    assert_eq!(own.status, StatusCode::CREATED, "{:?}", own.body);
    assert_eq!(server.get("/api/v1/app/acme/endpoint").await.body["data"].as_array().unwrap().len(), 2);
}
