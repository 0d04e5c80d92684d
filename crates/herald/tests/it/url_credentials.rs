//! Credentials in an endpoint's URL (`https://user:pass@host/`): sent as HTTP Basic
//! authentication, never returned (endpoints, attempted destinations, attempts, the portal's
//! view), never stored in clear, and kept when a client writes the masked URL back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Options, TestServer};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);
/// The password in the URL: it must appear nowhere but in the Basic authentication.
const PASSWORD: &str = "hunter2-url-password";

#[tokio::test]
async fn url_credentials_are_sent_but_masked_everywhere_and_sealed_at_rest() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let url = receiver.url("/hooks").replacen("http://", &format!("http://user:{PASSWORD}@"), 1);
    let masked = receiver.url("/hooks").replacen("http://", "http://user:****@", 1);
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url, "uid": "a"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["url"], masked);

    let msg = server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let msg_id = msg.body["id"].as_str().unwrap().to_owned();
    let received = receiver.wait_for(1, WAIT).await;
    // base64("user:hunter2-url-password")
    assert_eq!(received[0].header("authorization"), "Basic dXNlcjpodW50ZXIyLXVybC1wYXNzd29yZA==");
    let attempts = crate::delivery::wait_for_attempts(&server, &msg_id, 1).await;
    assert_eq!(attempts[0]["url"], masked);

    // Every way an endpoint or its attempts are read, with the organisation's token or the
    // application's portal token.
    let portal = server.post("/api/v1/auth/app-portal-access/acme", json!({})).await;
    let portal_token = portal.body["token"].as_str().unwrap().to_owned();
    let paths = [
        "/api/v1/app/acme/endpoint".to_owned(),
        "/api/v1/app/acme/endpoint/a".to_owned(),
        format!("/api/v1/app/acme/msg/{msg_id}/endpoint"),
        format!("/api/v1/app/acme/attempt/msg/{msg_id}"),
        "/api/v1/app/acme/attempt/endpoint/a".to_owned(),
    ];
    for path in &paths {
        for reply in [server.get(path).await, server.call_as(&portal_token, Method::GET, path, None).await] {
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
            let text = reply.body.to_string();
            assert!(!text.contains(PASSWORD), "{path} shows the password: {text}");
            assert!(text.contains("user:****@"), "{path} shows the URL masked: {text}");
        }
    }

    let stored = server.stored_text().await;
    assert!(stored.contains(&receiver.url("/hooks")), "the database was read");
    assert!(!stored.contains(PASSWORD), "the URL's password is stored in clear");
}

#[tokio::test]
async fn a_masked_url_written_back_keeps_its_password() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let url = receiver.url("/hooks").replacen("http://", &format!("http://user:{PASSWORD}@"), 1);
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url, "uid": "a"})).await;
    let masked = created.body["url"].as_str().unwrap().to_owned();

    // What the dashboard's form and a read-modify-write client send: the URL as read.
    let patched =
        server.patch("/api/v1/app/acme/endpoint/a", json!({"url": masked, "description": "edited"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let put = server.put("/api/v1/app/acme/endpoint/a", json!({"url": masked, "description": "put"})).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].header("authorization"), "Basic dXNlcjpodW50ZXIyLXVybC1wYXNzd29yZA==");

    // A new password replaces it; a URL without credentials removes them.
    let moved = receiver.url("/hooks").replacen("http://", "http://user:other@", 1);
    server.patch("/api/v1/app/acme/endpoint/a", json!({"url": moved})).await;
    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[1].header("authorization"), "Basic dXNlcjpvdGhlcg==");
}

#[tokio::test]
async fn credentials_an_earlier_version_stored_in_clear_are_sealed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let bare = receiver.url("/hooks");
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": bare, "uid": "old"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    // The endpoint as a version before the sealing fix stored it: the credentials in the URL
    // column, in clear (its sealed secrets know nothing of them).
    let in_clear = bare.replacen("http://", &format!("http://user:{PASSWORD}@"), 1);
    server.execute_sql(&format!("UPDATE endpoints SET url = '{in_clear}' WHERE uid = 'old'")).await;
    assert!(server.stored_text().await.contains(PASSWORD), "the old-style row holds the password in clear");
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Options::default()).await;
    let stored = server.stored_text().await;
    assert!(stored.contains(&bare), "the database was read");
    assert!(!stored.contains(PASSWORD), "the password is still in clear in the database after a start");
    let read = server.get("/api/v1/app/acme/endpoint/old").await;
    assert_eq!(read.body["url"], bare.replacen("http://", "http://user:****@", 1));
    assert_eq!(read.body["updatedAt"], created.body["updatedAt"], "sealing is not a change of the endpoint");
    // The credentials still go with every delivery, now from the sealed secrets.
    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].header("authorization"), "Basic dXNlcjpodW50ZXIyLXVybC1wYXNzd29yZA==");
    server.stop().await;

    // A second start finds nothing left to seal, and the files keep no copy either.
    let server = TestServer::start_in(dir.path(), Options::default()).await;
    assert_eq!(server.get("/api/v1/app/acme/endpoint/old").await.body["url"], read.body["url"]);
    server.stop().await;
    let leftover: Vec<u8> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("herald.db"))
        .flat_map(|path| std::fs::read(path).unwrap())
        .collect();
    assert!(
        !String::from_utf8_lossy(&leftover).contains(PASSWORD),
        "a copy of the password is left in a file"
    );
}
