//! Concurrent writers over HTTP: two requests on one resource at the same moment must not undo
//! each other, and concurrent PUTs of one resource all succeed. Each test runs many rounds,
//! because a lost update shows only when the two requests interleave.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestServer;

/// Rounds per test: the issue that found these bugs lost a third of the writes in 60 rounds.
const ROUNDS: usize = 60;

async fn server_with_endpoint() -> (TestServer, String) {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let created = server
        .post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/hooks", "uid": "main"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (server, "/api/v1/app/acme/endpoint/main".to_owned())
}

#[tokio::test]
async fn a_patch_and_a_secret_rotation_at_the_same_moment_both_land() {
    let (server, endpoint) = server_with_endpoint().await;
    let rotate = format!("{endpoint}/secret/rotate");
    for round in 0..ROUNDS {
        let description = format!("round {round}");
        let (patched, rotated) = tokio::join!(
            server.patch(&endpoint, json!({"description": description})),
            server.post(&rotate, json!({"gracePeriodSeconds": 0})),
        );
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
        let secret = server.get(&format!("{endpoint}/secret")).await;
        assert_eq!(secret.body["key"], rotated.body["key"], "round {round}: the rotation was undone");
        let now = server.get(&endpoint).await;
        assert_eq!(now.body["description"], description, "round {round}: the description was undone");
    }
}

#[tokio::test]
async fn patches_of_different_fields_at_the_same_moment_both_land() {
    let (server, endpoint) = server_with_endpoint().await;
    let headers_path = format!("{endpoint}/headers");
    for round in 0..ROUNDS {
        let description = format!("round {round}");
        let disabled = round % 2 == 0;
        let (a, b, c) = tokio::join!(
            server.patch(&endpoint, json!({"description": description})),
            server.patch(&endpoint, json!({"disabled": disabled})),
            server.patch(&headers_path, json!({"headers": {format!("x-round-{round}"): "1"}})),
        );
        assert_eq!((a.status, b.status, c.status), (StatusCode::OK, StatusCode::OK, StatusCode::NO_CONTENT));
        let now = server.get(&endpoint).await;
        assert_eq!(now.body["description"], description, "round {round}: the description was undone");
        assert_eq!(now.body["disabled"], disabled, "round {round}: the disable was undone");
        let headers = server.get(&headers_path).await;
        assert!(
            headers.body["headers"][format!("x-round-{round}")].is_string(),
            "round {round}: header undone"
        );
    }
}

#[tokio::test]
async fn concurrent_puts_of_one_new_resource_all_succeed() {
    let server = TestServer::start().await;
    server.create_event_type("order.created").await;
    for round in 0..20 {
        let app = format!("/api/v1/app/shop-{round}");
        let apps = futures_join_all(
            (0..4).map(|i| server.put(&app, json!({"name": format!("Shop {i}")}))).collect(),
        )
        .await;
        assert_created_once(&apps, round, "application");

        let endpoint = format!("{app}/endpoint/main");
        let endpoints = futures_join_all(
            (0..4)
                .map(|i| server.put(&endpoint, json!({"url": format!("https://example.com/{i}")})))
                .collect(),
        )
        .await;
        assert_created_once(&endpoints, round, "endpoint");
        let listed = server.get(&format!("{app}/endpoint")).await;
        assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "round {round}: one endpoint");

        let event_type = format!("/api/v1/event-type/kind.{round}");
        let event_types = futures_join_all(
            (0..4).map(|i| server.put(&event_type, json!({"description": format!("v{i}")}))).collect(),
        )
        .await;
        assert_created_once(&event_types, round, "event type");
    }
}

fn assert_created_once(replies: &[crate::helpers::Reply], round: usize, what: &str) {
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CREATED),
        "round {round}: every PUT of the {what} succeeds: {statuses:?} {:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "round {round}: {what}");
}

/// Runs the requests at the same moment and returns their replies in order.
pub(crate) async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}
