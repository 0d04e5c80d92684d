//! Everything created survives a restart of the server on the same data directory.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Options, TestServer};

#[tokio::test]
async fn applications_endpoints_event_types_and_secrets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    server.create_event_type("order.created").await;
    server.create_app("Acme", Some("acme")).await;
    let endpoint = server
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com/a", "uid": "a",
               "eventTypes": ["order.created"], "headers": {"X-Tenant": "acme"}, "bearerToken": "tok-123"}),
        )
        .await;
    let secret = server.get("/api/v1/app/acme/endpoint/a/secret").await.body;
    let portal = server.post("/api/v1/auth/app-portal-access/acme", json!({})).await;
    let app = server.get("/api/v1/app/acme").await.body;
    let event_type = server.get("/api/v1/event-type/order.created").await.body;
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Options::default()).await;
    assert_eq!(server.get("/api/v1/app/acme").await.body, app);
    assert_eq!(server.get("/api/v1/app/acme/endpoint/a").await.body, endpoint.body);
    assert_eq!(server.get("/api/v1/app/acme/endpoint/a/secret").await.body, secret);
    assert_eq!(
        server.get("/api/v1/app/acme/endpoint/a/headers").await.body["headers"],
        json!({"X-Tenant": "acme"})
    );
    assert_eq!(server.get("/api/v1/event-type/order.created").await.body, event_type);
    let token = portal.body["token"].as_str().unwrap();
    let with_portal_token = server.call_as(token, reqwest::Method::GET, "/api/v1/app/acme", None).await;
    assert_eq!(with_portal_token.status, StatusCode::OK);
}

#[tokio::test]
async fn a_sqlite_data_directory_without_its_encryption_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { backend: Some(crate::helpers::Backend::Sqlite), ..Options::default() };
    let server = TestServer::start_in(dir.path(), options).await;
    server.create_app("Acme", None).await;
    server.stop().await;
    std::fs::remove_file(dir.path().join("encryption.key")).unwrap();
    let env = vec![
        ("HERALD_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("HERALD_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    let config = herald::config::Config::load_from(&herald::config::Overrides::default(), &env).unwrap();
    let error = herald::app::App::build(config).await.unwrap_err();
    assert!(error.to_string().contains("encryption key"), "{error}");
}
