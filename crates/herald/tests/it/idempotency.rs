//! `idempotency-key`: retries of a POST get the first response, even after a restart.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Options, Reply, TestServer, read};

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
