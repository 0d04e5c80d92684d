//! Bad input gets the right status and a JSON body, and nothing is written.
#![allow(clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Options, TestServer, assert_error, assert_validation, read};

async fn app_count(server: &TestServer) -> usize {
    server.get("/api/v1/app").await.body["data"].as_array().unwrap().len()
}

async fn post_raw(server: &TestServer, path: &str, body: &'static str) -> crate::helpers::Reply {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    read(response).await
}

#[tokio::test]
async fn malformed_json_is_a_400_and_wrong_types_a_422_naming_the_field() {
    let server = TestServer::start().await;
    let detail =
        assert_error(&post_raw(&server, "/api/v1/app", "{\"name\": ").await, StatusCode::BAD_REQUEST);
    assert!(detail.contains("not valid JSON"), "{detail}");
    assert_error(
        &post_raw(&server, "/api/v1/app", "{\"name\": \"a\"} trailing").await,
        StatusCode::BAD_REQUEST,
    );

    let wrong_type = server.post("/api/v1/app", json!({"name": 42})).await;
    assert_eq!(assert_validation(&wrong_type), ["body.name"]);
    let out_of_range = server.post("/api/v1/app", json!({"name": "a", "throttleRate": 70000})).await;
    assert_eq!(assert_validation(&out_of_range), ["body.throttleRate"]);
    let nested = server.post("/api/v1/app", json!({"name": "a", "metadata": {"k": 1}})).await;
    assert_eq!(assert_validation(&nested), ["body.metadata.k"]);
    let not_object = server.post("/api/v1/app", json!(["name"])).await;
    assert_eq!(assert_validation(&not_object), ["body"]);
    assert_eq!(app_count(&server).await, 0, "nothing was written");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let server = TestServer::start().await;
    let reply = server.post("/api/v1/app", json!({"name": "a", "somethingNew": {"x": 1}})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let server = TestServer::start_with(Options {
        env: vec![("HERALD_MAX_BODY_BYTES", "2048".to_owned())],
        ..Options::default()
    })
    .await;
    let big = "x".repeat(4096);
    let reply = server.post("/api/v1/app", json!({"name": big})).await;
    let detail = assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail.contains("2048"), "{detail}");
    assert_eq!(app_count(&server).await, 0);
}

#[tokio::test]
async fn unknown_ids_routes_and_methods_get_json_errors() {
    let server = TestServer::start().await;
    assert_error(&server.get("/api/v1/app/app_2Ao0yT8Ki4lJ3Ij4rkV8Xz3GZ1M").await, StatusCode::NOT_FOUND);
    assert_error(&server.get("/api/v1/app/no-such-uid/endpoint").await, StatusCode::NOT_FOUND);
    assert_error(&server.get("/api/v1/app/bad%20uid").await, StatusCode::NOT_FOUND);
    server.create_app("Acme", Some("acme")).await;
    assert_error(
        &server.get("/api/v1/app/acme/endpoint/ep_2Ao0yT8Ki4lJ3Ij4rkV8Xz3GZ1M").await,
        StatusCode::NOT_FOUND,
    );
    assert_error(&server.get("/api/v1/event-type/none").await, StatusCode::NOT_FOUND);
    assert_error(&server.get("/api/v1/nothing-here").await, StatusCode::NOT_FOUND);
    assert_error(&server.call(Method::DELETE, "/api/v1/app", None).await, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_duplicate_endpoint_uid_is_a_409_and_is_not_written() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let first = server
        .post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/1", "uid": "main"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = server
        .post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/2", "uid": "main"}))
        .await;
    assert_error(&second, StatusCode::CONFLICT);
    let list = server.get("/api/v1/app/acme/endpoint").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["url"], "https://example.com/1");
}

#[tokio::test]
async fn nul_characters_are_a_422_on_every_backend_and_nothing_is_written() {
    let server = TestServer::start().await;
    let before = app_count(&server).await;
    let reply = post_raw(&server, "/api/v1/app", r#"{"name": "bad\u0000name"}"#).await;
    assert_eq!(assert_validation(&reply), ["body"]);
    assert!(reply.body["detail"].to_string().contains("NUL"), "{}", reply.body);
    let reply = post_raw(&server, "/api/v1/app", r#"{"name": "ok", "metadata": {"k": "\u0000"}}"#).await;
    assert_eq!(assert_validation(&reply), ["body"]);
    assert_eq!(app_count(&server).await, before, "nothing was created");
    // An escaped backslash followed by the letters u0000 is ordinary text.
    let reply = post_raw(&server, "/api/v1/app", r#"{"name": "a\\u0000"}"#).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["name"], "a\\u0000");
}

#[tokio::test]
async fn a_malformed_iterator_or_query_string_is_a_422_naming_it_on_every_list_route() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme", Some("acme")).await;
    server.create_event_type("invoice.paid").await;
    // The message first, so no delivery is made; the endpoint only gives the routes an id.
    let message =
        server.post("/api/v1/app/acme/msg", json!({"eventType": "invoice.paid", "payload": {}})).await;
    assert_eq!(message.status, StatusCode::ACCEPTED, "{:?}", message.body);
    let msg = message.body["id"].as_str().unwrap().to_owned();
    let endpoint = server.post("/api/v1/app/acme/endpoint", json!({"url": "http://127.0.0.1:9/"})).await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{:?}", endpoint.body);
    let ep = endpoint.body["id"].as_str().unwrap().to_owned();

    let lists = [
        "/api/v1/app".to_owned(),
        "/api/v1/event-type".to_owned(),
        format!("/api/v1/app/{app}/endpoint"),
        format!("/api/v1/app/{app}/msg"),
        format!("/api/v1/app/{app}/attempt/endpoint/{ep}"),
        format!("/api/v1/app/{app}/attempt/msg/{msg}"),
        format!("/api/v1/app/{app}/endpoint/{ep}/msg"),
        format!("/api/v1/app/{app}/msg/{msg}/endpoint"),
    ];
    // A NUL made PostgreSQL answer 500; the others are text no list ever handed out.
    for iterator in ["%00", "msg_%00x", "-%00", "%FF", "a%20b", "-", "%0A", &"a".repeat(257)] {
        for list in &lists {
            let reply = server.get(&format!("{list}?iterator={iterator}")).await;
            assert_eq!(assert_validation(&reply), ["query.iterator"], "{list}?iterator={iterator}");
        }
    }
    // Every other query string is checked before a store sees it too.
    let msg_list = format!("/api/v1/app/{app}/msg");
    for (query, name) in [
        ("before=%00", "query.before"),
        ("after=2024-01-01T00:00:00Z%00", "query.after"),
        ("channel=%00", "query.channel"),
        ("event_types=a%00", "query.event_types"),
        ("with_content=%00", "query.with_content"),
        ("limit=%00", "query.limit"),
        ("order=%00", "query.order"),
    ] {
        let reply = server.get(&format!("{msg_list}?{query}")).await;
        assert_eq!(assert_validation(&reply), [name], "{query}");
    }
    let reply = server.get(&format!("/api/v1/app/{app}/attempt/msg/{msg}?status=%00")).await;
    assert_eq!(assert_validation(&reply), ["query.status"]);

    // Iterators a list handed out still page, forwards and back, on every backend.
    server.create_app("Beta", None).await;
    let first = server.get("/api/v1/app?limit=1").await;
    assert_eq!(first.status, StatusCode::OK);
    let next = first.body["iterator"].as_str().unwrap();
    let second = server.get(&format!("/api/v1/app?limit=1&iterator={next}")).await;
    assert_eq!(second.body["data"][0]["name"], "Beta", "{:?}", second.body);
    let back = second.body["prevIterator"].as_str().unwrap();
    let again = server.get(&format!("/api/v1/app?limit=1&iterator={back}")).await;
    assert_eq!(again.body["data"][0]["name"], "Acme", "{:?}", again.body);
    let types = server.get("/api/v1/event-type?iterator=invoice.created").await;
    assert_eq!(types.body["data"][0]["name"], "invoice.paid", "{:?}", types.body);
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_gets_a_json_error() {
    let server = TestServer::start().await;
    for path in ["/api/v1/app/%ff", "/api/v1/app/%ff/endpoint/x", "/api/v1/event-type/%c3%28"] {
        let reply = server.get(path).await;
        assert!(reply.status.is_client_error(), "{path}: {}", reply.status);
        assert_eq!(reply.headers["content-type"], "application/json", "{path}");
        assert_error(&reply, reply.status);
    }
}
