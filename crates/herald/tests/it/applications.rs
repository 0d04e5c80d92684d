//! Applications: create, read by id and uid, list and page, PUT upsert, PATCH, delete.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestServer, assert_error, assert_validation};

#[tokio::test]
async fn an_application_can_be_created_read_by_id_and_uid_and_deleted() {
    let server = TestServer::start().await;
    let created = server
        .post(
            "/api/v1/app",
            json!({"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}, "throttleRate": 20}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("app_") && id.len() == 4 + 27, "{id}");
    assert_eq!(created.body["name"], "Acme");
    assert_eq!(created.body["metadata"], json!({"plan": "pro"}));
    assert_eq!(created.body["throttleRate"], 20);
    assert_eq!(created.body["rateLimit"], 20);

    let by_id = server.get(&format!("/api/v1/app/{id}")).await;
    assert_eq!(by_id.status, StatusCode::OK);
    assert_eq!(by_id.body, created.body, "a created application reads back identically");
    let by_uid = server.get("/api/v1/app/acme").await;
    assert_eq!(by_uid.body, created.body);

    assert_eq!(server.delete("/api/v1/app/acme").await.status, StatusCode::NO_CONTENT);
    assert_error(&server.get(&format!("/api/v1/app/{id}")).await, StatusCode::NOT_FOUND);
    assert_error(&server.delete(&format!("/api/v1/app/{id}")).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_duplicate_uid_is_a_conflict_unless_get_if_exists_is_asked() {
    let server = TestServer::start().await;
    let id = server.create_app("Acme", Some("acme")).await;
    let again = server.post("/api/v1/app", json!({"name": "Other", "uid": "acme"})).await;
    assert_error(&again, StatusCode::CONFLICT);

    let existing =
        server.post("/api/v1/app?get_if_exists=true", json!({"name": "Other", "uid": "acme"})).await;
    assert_eq!(existing.status, StatusCode::OK);
    assert_eq!(existing.body["id"], id.as_str());
    assert_eq!(existing.body["name"], "Acme", "the existing application is returned unchanged");

    let fresh = server.post("/api/v1/app?get_if_exists=true", json!({"name": "New", "uid": "new"})).await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    let list = server.get("/api/v1/app").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn put_creates_with_the_path_as_uid_then_replaces() {
    let server = TestServer::start().await;
    let created = server.put("/api/v1/app/customer-7", json!({"name": "Seven"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["uid"], "customer-7");

    let replaced =
        server.put("/api/v1/app/customer-7", json!({"name": "Seven Ltd", "metadata": {"a": "b"}})).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["id"], created.body["id"]);
    assert_eq!(replaced.body["name"], "Seven Ltd");
    assert_eq!(replaced.body["metadata"], json!({"a": "b"}));
    assert_eq!(replaced.body["uid"], "customer-7");

    // An id-shaped path that names nothing is not turned into a uid.
    let missing = server.put("/api/v1/app/app_2Ao0yT8Ki4lJ3Ij4rkV8Xz3GZ1M", json!({"name": "x"})).await;
    assert_error(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_null_clears() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/v1/app",
            json!({"name": "Acme", "uid": "acme", "metadata": {"k": "v"}, "throttleRate": 5}),
        )
        .await;
    let patched = server.patch("/api/v1/app/acme", json!({"name": "Acme 2"})).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["name"], "Acme 2");
    assert_eq!(patched.body["metadata"], json!({"k": "v"}));
    assert_eq!(patched.body["throttleRate"], 5);
    assert_eq!(patched.body["uid"], "acme");

    let cleared = server.patch("/api/v1/app/acme", json!({"uid": null, "throttleRate": null})).await;
    assert_eq!(cleared.body["uid"], serde_json::Value::Null);
    assert_eq!(cleared.body["throttleRate"], serde_json::Value::Null);
    assert_error(&server.get("/api/v1/app/acme").await, StatusCode::NOT_FOUND);

    let bad = server
        .patch(&format!("/api/v1/app/{}", cleared.body["id"].as_str().unwrap()), json!({"name": ""}))
        .await;
    assert_eq!(assert_validation(&bad), ["body.name"]);
}

#[tokio::test]
async fn lists_page_forwards_and_backwards_in_both_orders() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(server.create_app(&format!("app {i}"), None).await);
    }
    let first = server.get("/api/v1/app?limit=2").await;
    let page_ids = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(page_ids(&first), ids[0..2]);
    assert_eq!(first.body["done"], false);
    let iterator = first.body["iterator"].as_str().unwrap();
    let second = server.get(&format!("/api/v1/app?limit=2&iterator={iterator}")).await;
    assert_eq!(page_ids(&second), ids[2..4]);
    let third = server
        .get(&format!("/api/v1/app?limit=2&iterator={}", second.body["iterator"].as_str().unwrap()))
        .await;
    assert_eq!(page_ids(&third), ids[4..5]);
    assert_eq!(third.body["done"], true);

    let back = server
        .get(&format!("/api/v1/app?limit=2&iterator={}", second.body["prevIterator"].as_str().unwrap()))
        .await;
    assert_eq!(page_ids(&back), ids[0..2], "the prevIterator of page two leads back to page one");

    let newest = server.get("/api/v1/app?limit=2&order=descending").await;
    assert_eq!(page_ids(&newest), vec![ids[4].clone(), ids[3].clone()]);

    assert_eq!(assert_validation(&server.get("/api/v1/app?limit=251").await), ["query.limit"]);
    assert_eq!(assert_validation(&server.get("/api/v1/app?order=sideways").await), ["query.order"]);
}

#[tokio::test]
async fn trailing_slashes_are_accepted() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    assert_eq!(server.get("/api/v1/app/").await.status, StatusCode::OK);
    assert_eq!(server.get("/api/v1/app/acme/").await.body["uid"], "acme");
    let created = server.post("/api/v1/app/", json!({"name": "Slash"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let server = TestServer::start().await;
    let reply = server.call_as("", reqwest::Method::GET, "/api/v1/health", None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let head = server.client.head(server.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::NO_CONTENT);
}
