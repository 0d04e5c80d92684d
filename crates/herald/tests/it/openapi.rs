//! The OpenAPI document: generated from the code, served, committed, and covering every route.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;

use crate::helpers::TestServer;

/// The committed copy, at the repository root.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = herald::api::openapi::document_json();
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is out of date: run `HERALD_BLESS=1 cargo test -p herald --test it openapi` and commit it"
    );
}

#[tokio::test]
async fn the_document_is_served_and_covers_every_route() {
    let server = TestServer::start().await;
    let reply = server.call_as("", reqwest::Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.body["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/app", &["get", "post"][..]),
        ("/api/v1/app/{app_id}", &["get", "put", "patch", "delete"]),
        ("/api/v1/app/{app_id}/endpoint", &["get", "post"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}", &["get", "put", "patch", "delete"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", &["get"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", &["post"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", &["get", "put", "patch"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", &["post"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", &["get"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", &["get"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", &["get", "patch"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate", &["post"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", &["post"]),
        ("/api/v1/app/{app_id}/endpoint/{endpoint_id}/payload-preview", &["get"]),
        ("/api/v1/app/{app_id}/msg", &["get", "post"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}", &["get"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}/content", &["delete"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", &["get"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", &["delete"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}/endpoint", &["get"]),
        ("/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", &["post"]),
        ("/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", &["get"]),
        ("/api/v1/app/{app_id}/attempt/msg/{msg_id}", &["get"]),
        ("/api/v1/event-type", &["get", "post"]),
        ("/api/v1/event-type/{event_type_name}", &["get", "put", "patch", "delete"]),
        ("/api/v1/auth/app-portal-access/{app_id}", &["post"]),
        ("/api/v1/auth/app/{app_id}/expire-all", &["post"]),
        ("/api/v1/token", &["get"]),
        ("/api/v1/token/{token_id}", &["delete"]),
        ("/api/v1/app/{app_id}/stats", &["get"]),
        ("/api/v1/consent/{token}", &["get", "post"]),
        ("/api/v1/health", &["get"]),
        ("/health/live", &["get"]),
        ("/health/ready", &["get"]),
        ("/ingest/api/v1/source", &["get", "post"]),
        ("/ingest/api/v1/source/{source_id}", &["get", "put", "patch", "delete"]),
        ("/ingest/api/v1/source/{source_id}/token/rotate", &["post"]),
        ("/ingest/api/v1/source/{source_id}/refusal", &["get"]),
        ("/ingest/api/v1/source/{source_id}/endpoint", &["get", "post"]),
        ("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", &["get", "put", "delete"]),
        ("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret", &["get"]),
        ("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret/rotate", &["post"]),
        ("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers", &["get", "put"]),
        ("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/transformation", &["get", "patch"]),
        ("/in/{token}", &["post"]),
    ];
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} is documented"));
        for method in methods {
            assert!(item.get(*method).is_some(), "{method} {path} is documented");
        }
    }
    assert_eq!(paths.len(), expected.len(), "no undocumented or stale paths: {:?}", paths.keys());
    assert!(reply.body["components"]["schemas"]["EndpointIn"]["properties"]["bearerToken"].is_object());
}

#[tokio::test]
async fn the_docs_page_renders_offline() {
    let server = TestServer::start().await;
    let response = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("/api/v1/app/{app_id}/endpoint"));
    assert!(html.contains("id=\"schema-EndpointIn\""));
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("https://"), "no external resources");
    // Markdown's inline code reads as code, not as backticks.
    assert!(html.contains("<code>bearerToken</code>"), "inline code rendered");
    assert!(!html.contains('`'), "no literal backticks left");
    // Schemas are named for what they are, not after a Rust type.
    assert!(html.contains("id=\"schema-Metadata\""));
    assert!(!html.contains("BTreeMap"));
}

#[tokio::test]
async fn schemas_are_not_named_after_rust_types() {
    let document: serde_json::Value = serde_json::from_str(&herald::api::openapi::document_json()).unwrap();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("Metadata") && !schemas.contains_key("BTreeMap"), "{:?}", schemas.keys());
    let metadata = &document["components"]["schemas"]["ApplicationOut"]["properties"]["metadata"];
    assert_eq!(metadata["$ref"], "#/components/schemas/Metadata");
}
