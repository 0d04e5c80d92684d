//! API tokens: listed without their values, revoked (organisation and portal tokens alike,
//! at once on the node that revoked them), expired ones purged by maintenance; and the
//! `herald token list|revoke` commands.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use herald_core::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::herald_with;
use crate::helpers::{ADMIN_TOKEN, Options, TestServer, assert_error};

/// The tokens the server lists (first page).
async fn tokens(server: &TestServer) -> Vec<Value> {
    let list = server.get("/api/v1/token").await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    list.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_old_admin_token_can_be_listed_and_revoked_and_stops_working_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let old_token = "sk_old_admin_token_0123456789";
    let first = TestServer::start_in(
        dir.path(),
        Options { env: vec![("HERALD_ADMIN_TOKEN", old_token.to_owned())], ..Options::default() },
    )
    .await;
    first.stop().await;
    // The operator changes HERALD_ADMIN_TOKEN: the old token stays valid until revoked.
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    let old = server.call_as(old_token, Method::GET, "/api/v1/app", None).await;
    assert_eq!(old.status, StatusCode::OK, "the old token still works (and is cached now)");

    let access =
        server.post("/api/v1/auth/app-portal-access/acme", json!({"application": {"name": "Acme"}})).await;
    let portal_token = access.body["token"].as_str().unwrap().to_owned();
    let app_id = server.get("/api/v1/app/acme").await.body["id"].as_str().unwrap().to_owned();

    let listed = tokens(&server).await;
    assert_eq!(listed.len(), 3, "{listed:#?}");
    let text = serde_json::to_string(&listed).unwrap();
    for secret in [old_token, ADMIN_TOKEN, portal_token.as_str()] {
        assert!(!text.contains(secret), "a token's value is never listed: {text}");
    }
    let organisation: Vec<&Value> = listed.iter().filter(|t| t["scope"] == "organization").collect();
    assert_eq!(organisation.len(), 2);
    assert!(organisation.iter().all(|t| t["appId"].is_null() && t["expiresAt"].is_null()));
    let portal = listed.iter().find(|t| t["scope"] == "application").unwrap();
    assert_eq!(portal["appId"], app_id);
    assert!(portal["expiresAt"].is_string() && portal["createdAt"].is_string());
    assert!(portal["id"].as_str().unwrap().starts_with("tok_"));

    // The old organisation token: the first one created.
    let created =
        |t: &Value| t["createdAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let old_id = organisation.iter().min_by_key(|t| created(t)).unwrap()["id"].as_str().unwrap();
    let revoked = server.delete(&format!("/api/v1/token/{old_id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    let old = server.call_as(old_token, Method::GET, "/api/v1/app", None).await;
    assert_error(&old, StatusCode::UNAUTHORIZED);
    assert_eq!(server.get("/api/v1/app").await.status, StatusCode::OK, "the new token still works");

    // A portal token is revoked the same way, also while it is cached.
    let own = server.call_as(&portal_token, Method::GET, "/api/v1/app/acme", None).await;
    assert_eq!(own.status, StatusCode::OK);
    let forbidden = server.call_as(&portal_token, Method::GET, "/api/v1/token", None).await;
    assert_error(&forbidden, StatusCode::FORBIDDEN);
    let path = format!("/api/v1/token/{}", portal["id"].as_str().unwrap());
    let forbidden = server.call_as(&portal_token, Method::DELETE, &path, None).await;
    assert_error(&forbidden, StatusCode::FORBIDDEN);
    assert_eq!(server.delete(&path).await.status, StatusCode::NO_CONTENT);
    let own = server.call_as(&portal_token, Method::GET, "/api/v1/app/acme", None).await;
    assert_error(&own, StatusCode::UNAUTHORIZED);

    // Revoking twice, or a token that never was.
    let again = server.delete(&path).await;
    assert_eq!(assert_error(&again, StatusCode::NOT_FOUND), again.body["detail"].as_str().unwrap());
    assert_eq!(again.body["code"], "token_not_found");
    let bogus = server.delete("/api/v1/token/not-a-token-id").await;
    assert_eq!(bogus.body["code"], "token_not_found");
    assert_eq!(tokens(&server).await.len(), 1);
}

#[tokio::test]
async fn expired_portal_tokens_are_purged_and_live_ones_stay() {
    let clock = Arc::new(ManualClock::starting_now());
    let server = TestServer::start_with(Options { clock: Some(clock), ..Options::default() }).await;
    server.create_app("Acme", Some("acme")).await;
    for expiry in [60, 3_600] {
        let access = server.post("/api/v1/auth/app-portal-access/acme", json!({"expiry": expiry})).await;
        assert_eq!(access.status, StatusCode::OK);
    }
    assert_eq!(tokens(&server).await.len(), 3);
    // Past the first portal token's expiry and the maintenance interval.
    server.advance(chrono::Duration::minutes(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left = tokens(&server).await;
        if left.len() < 3 {
            break left;
        }
        assert!(tokio::time::Instant::now() < deadline, "expired token never purged: {left:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut scopes: Vec<&str> = left.iter().map(|t| t["scope"].as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["application", "organization"], "the live portal token stays: {left:#?}");
}

#[tokio::test]
async fn herald_token_list_and_revoke_work_against_a_running_server() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let access = server.post("/api/v1/auth/app-portal-access/acme", json!({})).await;
    let portal_token = access.body["token"].as_str().unwrap().to_owned();

    let table = herald_with(Some(&server), Some(ADMIN_TOKEN), &["token", "list"], None).await;
    let table = table.ok();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("application") && table.contains("organization"), "{table}");
    assert!(!table.contains(&portal_token) && !table.contains(ADMIN_TOKEN), "{table}");

    let listed = herald_with(Some(&server), Some(ADMIN_TOKEN), &["token", "list", "--json"], None).await;
    let listed = listed.json();
    let portal = listed["data"].as_array().unwrap().iter().find(|t| t["scope"] == "application").unwrap();
    let id = portal["id"].as_str().unwrap();
    let revoked = herald_with(Some(&server), Some(ADMIN_TOKEN), &["token", "revoke", id], None).await;
    assert!(revoked.ok().contains(id));
    let own = server.call_as(&portal_token, Method::GET, "/api/v1/app/acme", None).await;
    assert_error(&own, StatusCode::UNAUTHORIZED);
    let again = herald_with(Some(&server), Some(ADMIN_TOKEN), &["token", "revoke", id], None).await;
    assert!(!again.status.success());
    assert!(again.stderr.contains("token_not_found"), "{}", again.stderr);
}
