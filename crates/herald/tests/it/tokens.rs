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
        // On a busy machine the maintenance task may take its first look only after the
        // advance above, and then waits a whole interval from there: keep time moving (at
        // most 200 × 5 s more, well before the live token's hour is up).
        server.advance(chrono::Duration::seconds(5));
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

/// Mints a portal token for `acme`, of the session `session` if given.
async fn portal_token(server: &TestServer, session: Option<&str>) -> String {
    let body = match session {
        Some(session) => json!({"sessionId": session}),
        None => json!({}),
    };
    let access = server.post("/api/v1/auth/app-portal-access/acme", body).await;
    assert_eq!(access.status, StatusCode::OK, "{:?}", access.body);
    access.body["token"].as_str().unwrap().to_owned()
}

/// What a portal token gets when it reads its application.
async fn reads(server: &TestServer, token: &str) -> StatusCode {
    server.call_as(token, Method::GET, "/api/v1/app/acme", None).await.status
}

#[tokio::test]
async fn expire_all_ends_an_applications_portal_tokens_at_once_later_or_by_session() {
    let clock = Arc::new(ManualClock::starting_now());
    let server = TestServer::start_with(Options { clock: Some(clock), ..Options::default() }).await;
    server.create_app("Acme", Some("acme")).await;
    server.create_app("Other", Some("other")).await;
    let (a1, a2, b, plain) = (
        portal_token(&server, Some("session-a")).await,
        portal_token(&server, Some("session-a")).await,
        portal_token(&server, Some("session-b")).await,
        portal_token(&server, None).await,
    );
    let other = server.post("/api/v1/auth/app-portal-access/other", json!({})).await;
    let other = other.body["token"].as_str().unwrap().to_owned();
    for token in [&a1, &a2, &b, &plain] {
        assert_eq!(reads(&server, token).await, StatusCode::OK, "cached before expire-all");
    }

    // One session's tokens, at once (also while cached on this node).
    let expired = server.post("/api/v1/auth/app/acme/expire-all", json!({"sessionIds": ["session-a"]})).await;
    assert_eq!(expired.status, StatusCode::NO_CONTENT, "{:?}", expired.body);
    assert_eq!(reads(&server, &a1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(&server, &a2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(&server, &b).await, StatusCode::OK);
    assert_eq!(reads(&server, &plain).await, StatusCode::OK);

    // The rest after a delay: valid until then, not after.
    let later = server.post("/api/v1/auth/app/acme/expire-all", json!({"expiry": 60})).await;
    assert_eq!(later.status, StatusCode::NO_CONTENT, "{:?}", later.body);
    assert_eq!(reads(&server, &b).await, StatusCode::OK);
    server.advance(chrono::Duration::seconds(61));
    assert_eq!(reads(&server, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(&server, &plain).await, StatusCode::UNAUTHORIZED);
    // Another application's tokens and the organisation's are not touched; new ones work.
    let other_reads = server.call_as(&other, Method::GET, "/api/v1/app/other", None).await;
    assert_eq!(other_reads.status, StatusCode::OK);
    assert_eq!(server.get("/api/v1/app").await.status, StatusCode::OK);
    let fresh = portal_token(&server, Some("session-a")).await;
    assert_eq!(reads(&server, &fresh).await, StatusCode::OK);

    // Who may, and what is refused.
    let by_portal =
        server.call_as(&fresh, Method::POST, "/api/v1/auth/app/acme/expire-all", Some(json!({}))).await;
    assert_error(&by_portal, StatusCode::FORBIDDEN);
    let unknown = server.post("/api/v1/auth/app/nobody/expire-all", json!({})).await;
    assert!(!assert_error(&unknown, StatusCode::NOT_FOUND).is_empty());
    assert_eq!(reads(&server, &fresh).await, StatusCode::OK, "refused requests expire nothing");
}

#[tokio::test]
async fn expire_all_and_session_ids_are_checked_at_their_limits() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let expire = |body: Value| server.post("/api/v1/auth/app/acme/expire-all", body);
    assert_eq!(expire(json!({"expiry": 30 * 86_400})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        crate::helpers::assert_validation(&expire(json!({"expiry": 30 * 86_400 + 1})).await),
        ["body.expiry"]
    );
    let hundred: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    assert_eq!(expire(json!({"sessionIds": hundred})).await.status, StatusCode::NO_CONTENT);
    let too_many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    assert_eq!(
        crate::helpers::assert_validation(&expire(json!({"sessionIds": too_many})).await),
        ["body.sessionIds"]
    );
    let longest = "s".repeat(256);
    assert_eq!(expire(json!({"sessionIds": [longest]})).await.status, StatusCode::NO_CONTENT);
    for bad in ["s".repeat(257), String::new(), "a\nb".to_owned()] {
        assert_eq!(
            crate::helpers::assert_validation(&expire(json!({"sessionIds": [bad]})).await),
            ["body.sessionIds"]
        );
        let minted = server.post("/api/v1/auth/app-portal-access/acme", json!({"sessionId": bad})).await;
        assert_eq!(crate::helpers::assert_validation(&minted), ["body.sessionId"]);
    }
    let minted =
        server.post("/api/v1/auth/app-portal-access/acme", json!({"sessionId": "s".repeat(256)})).await;
    assert_eq!(minted.status, StatusCode::OK, "{:?}", minted.body);
}

#[tokio::test]
async fn concurrent_expire_alls_of_overlapping_sessions_all_succeed() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let mut minted = Vec::new();
    for i in 0..12 {
        minted.push((i % 4, portal_token(&server, Some(&format!("s{}", i % 4))).await));
    }
    let kept = portal_token(&server, Some("kept")).await;
    // Every session but `kept`, each expired several times at once, and the whole set too.
    let requests = (0..16).map(|i| {
        let body = match i % 5 {
            4 => json!({"sessionIds": ["s0", "s1", "s2", "s3"]}),
            n => json!({"sessionIds": [format!("s{n}")], "expiry": 0}),
        };
        server.post("/api/v1/auth/app/acme/expire-all", body)
    });
    for reply in crate::concurrency::futures_join_all(requests.collect()).await {
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    }
    for (session, token) in &minted {
        assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED, "session s{session}");
    }
    assert_eq!(reads(&server, &kept).await, StatusCode::OK);
}
