//! Event types: create, list with archived and content, PUT, PATCH, archive and expunge.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, assert_error, assert_validation};

fn names(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.body["data"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn event_types_are_created_listed_and_read_with_their_schemas() {
    let server = TestServer::start().await;
    let schema = json!({"1": {"type": "object", "properties": {"id": {"type": "string"}}}});
    let created = server
        .post(
            "/api/v1/event-type",
            json!({"name": "invoice.paid", "description": "An invoice was paid", "schemas": schema}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["schemas"], schema);
    assert_eq!(created.body["archived"], false);
    server.create_event_type("invoice.created").await;

    let duplicate =
        server.post("/api/v1/event-type", json!({"name": "invoice.paid", "description": "x"})).await;
    assert_error(&duplicate, StatusCode::CONFLICT);

    let list = server.get("/api/v1/event-type").await;
    assert_eq!(names(&list), ["invoice.created", "invoice.paid"]);
    assert_eq!(list.body["data"][1]["schemas"], Value::Null, "schemas only with with_content");
    let with_content = server.get("/api/v1/event-type?with_content=true").await;
    assert_eq!(with_content.body["data"][1]["schemas"], schema);
    assert_eq!(server.get("/api/v1/event-type/invoice.paid").await.body["schemas"], schema);
}

#[tokio::test]
async fn deleting_archives_and_expunge_removes() {
    let server = TestServer::start().await;
    server.create_event_type("a.one").await;
    server.create_event_type("a.two").await;
    assert_eq!(server.delete("/api/v1/event-type/a.one").await.status, StatusCode::NO_CONTENT);
    assert_eq!(names(&server.get("/api/v1/event-type").await), ["a.two"]);
    let all = server.get("/api/v1/event-type?include_archived=true").await;
    assert_eq!(names(&all), ["a.one", "a.two"]);
    assert_eq!(all.body["data"][0]["archived"], true);

    // Creating an archived name again unarchives it.
    let again = server.post("/api/v1/event-type", json!({"name": "a.one", "description": "back"})).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["archived"], false);

    assert_eq!(server.delete("/api/v1/event-type/a.one?expunge=true").await.status, StatusCode::NO_CONTENT);
    assert_error(&server.get("/api/v1/event-type/a.one").await, StatusCode::NOT_FOUND);
    assert_error(&server.delete("/api/v1/event-type/a.one").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_upserts_and_patch_changes_fields() {
    let server = TestServer::start().await;
    let created =
        server.put("/api/v1/event-type/user.signup", json!({"description": "A user signed up"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let updated = server
        .put("/api/v1/event-type/user.signup", json!({"description": "Signed up", "deprecated": true}))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["deprecated"], true);
    assert_eq!(updated.body["createdAt"], created.body["createdAt"]);

    let patched = server
        .patch(
            "/api/v1/event-type/user.signup",
            json!({"schemas": {"1": {"type": "object"}}, "featureFlag": "beta"}),
        )
        .await;
    assert_eq!(patched.body["description"], "Signed up");
    assert_eq!(patched.body["featureFlag"], "beta");
    assert_eq!(patched.body["schemas"], json!({"1": {"type": "object"}}));
    let cleared =
        server.patch("/api/v1/event-type/user.signup", json!({"schemas": null, "featureFlag": null})).await;
    assert_eq!(cleared.body["schemas"], Value::Null);
    assert_eq!(cleared.body["featureFlag"], Value::Null);
}

#[tokio::test]
async fn invalid_names_and_schemas_are_refused() {
    let server = TestServer::start().await;
    let bad_name = server.post("/api/v1/event-type", json!({"name": "has space", "description": "x"})).await;
    assert_eq!(assert_validation(&bad_name), ["body.name"]);
    let bad_schema = server
        .post(
            "/api/v1/event-type",
            json!({"name": "ok", "description": "x", "schemas": {"1": "not a schema"}}),
        )
        .await;
    assert_eq!(assert_validation(&bad_schema), ["body.schemas.1"]);
    let missing = server.post("/api/v1/event-type", json!({"name": "ok"})).await;
    assert_eq!(assert_validation(&missing), ["body"]);
    assert_eq!(names(&server.get("/api/v1/event-type?include_archived=true").await), Vec::<String>::new());
}

#[tokio::test]
async fn feature_flags_and_group_names_are_kept_as_the_sdks_send_them() {
    let server = TestServer::start().await;
    let created = server
        .post(
            "/api/v1/event-type",
            json!({"name": "invoice.paid", "description": "x", "featureFlags": ["beta", "alpha"], "groupName": "billing"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["featureFlags"], json!(["alpha", "beta"]));
    assert_eq!(created.body["featureFlag"], "alpha");
    assert_eq!(created.body["groupName"], "billing");
    let read = server.get("/api/v1/event-type/invoice.paid").await;
    assert_eq!(read.body, created.body);
    let patched = server
        .patch("/api/v1/event-type/invoice.paid", json!({"featureFlags": null, "groupName": "money"}))
        .await;
    assert_eq!(patched.body["featureFlags"], Value::Null);
    assert_eq!(patched.body["groupName"], "money");
    let bad = server
        .post("/api/v1/event-type", json!({"name": "x", "description": "x", "featureFlags": ["no spaces"]}))
        .await;
    assert_eq!(assert_validation(&bad), ["body.featureFlags"]);
}
