//! Endpoint consent over HTTP (the CloudEvents webhook handshake): receivers that grant, grant
//! with a rate, refuse, answer 405, answer 200 without the header (which is not consent), and
//! grant later through the callback. Only loopback traffic; the worker is stepped by hand.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer};
use crate::receiver::{Receiver, Reply};

const ORIGIN: &str = "herald.test";

/// A stepped server whose organisation setting is `consent` (`off` or `cloudevents`).
async fn server(consent: &str) -> TestServer {
    let clock = Arc::new(ManualClock::starting_now());
    TestServer::start_with(Options {
        clock: Some(clock),
        stepped: true,
        env: vec![("HERALD_CONSENT", consent.to_owned()), ("HERALD_CONSENT_ORIGIN", ORIGIN.to_owned())],
        ..Options::default()
    })
    .await
}

/// Creates app `acme` with an endpoint at the receiver (with `extra` fields); returns its id.
async fn endpoint(server: &TestServer, receiver: &Receiver, extra: Value) -> String {
    server.create_app("Acme", Some("acme")).await;
    let mut body = json!({"url": receiver.url("/hooks")});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let created = server.post("/api/v1/app/acme/endpoint", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn send(server: &TestServer) -> String {
    let reply =
        server.post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn shown(server: &TestServer, endpoint: &str) -> Value {
    server.get(&format!("/api/v1/app/acme/endpoint/{endpoint}")).await.body
}

async fn attempts(server: &TestServer, msg: &str) -> Vec<Value> {
    let reply = server.get(&format!("/api/v1/app/acme/attempt/msg/{msg}")).await;
    reply.body["data"].as_array().unwrap().clone()
}

fn granting(headers: &[(&'static str, &str)]) -> Reply {
    Reply::WithHeaders(200, headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect())
}

#[tokio::test]
async fn a_granting_endpoint_is_asked_once_and_asked_again_when_its_origin_changes() {
    let server = server("cloudevents").await;
    let receiver = Receiver::start().await;
    receiver.answer_options(granting(&[("WebHook-Allowed-Origin", ORIGIN)]));
    let id = endpoint(&server, &receiver, json!({"rateLimit": 5})).await;
    let before = shown(&server, &id).await;
    assert_eq!((before["consent"].clone(), before["consentStatus"].clone()), (Value::Null, json!("pending")));

    send(&server).await;
    server.step().await;
    let handshakes = receiver.handshakes();
    assert_eq!(handshakes.len(), 1);
    assert_eq!(handshakes[0].path, "/hooks");
    assert_eq!(handshakes[0].header("webhook-request-origin"), ORIGIN);
    assert_eq!(handshakes[0].header("webhook-request-rate"), "300", "the endpoint's 5/s as a minute's");
    let callback = handshakes[0].header("webhook-request-callback");
    assert!(callback.starts_with(&server.url("/api/v1/consent/")), "{callback}");
    assert_eq!(receiver.count(), 1, "delivered after consent");
    assert_eq!(receiver.received()[0].header("origin"), ORIGIN);
    assert_eq!(shown(&server, &id).await["consentStatus"], "granted");
    // A grant given in the answer needs no callback: the token was never stored.
    assert_eq!(reqwest::get(callback).await.unwrap().status(), StatusCode::NOT_FOUND);

    send(&server).await;
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 2), "asked once");

    // Another origin (host and port) is asked again; another path of the same one is not.
    let elsewhere = Receiver::start().await;
    elsewhere.answer_options(granting(&[("WebHook-Allowed-Origin", "*")]));
    let patched =
        server.patch(&format!("/api/v1/app/acme/endpoint/{id}"), json!({"url": elsewhere.url("/new")})).await;
    assert_eq!(patched.body["consentStatus"], "pending", "{:?}", patched.body);
    send(&server).await;
    server.step().await;
    assert_eq!((elsewhere.handshakes().len(), elsewhere.count()), (1, 1));
}

#[tokio::test]
async fn a_rate_granted_in_the_answer_is_shown_and_an_endpoint_setting_overrides_the_organisation() {
    let server = server("off").await;
    let receiver = Receiver::start().await;
    receiver.answer_options(granting(&[("WebHook-Allowed-Origin", "*"), ("WebHook-Allowed-Rate", "120")]));
    let id = endpoint(&server, &receiver, json!({"consent": "cloudevents"})).await;
    send(&server).await;
    server.step().await;
    assert_eq!(receiver.handshakes()[0].header("webhook-request-rate"), "6000");
    assert_eq!(receiver.count(), 1);
    let shown = shown(&server, &id).await;
    assert_eq!(
        (shown["consent"].clone(), shown["consentStatus"].clone(), shown["consentRate"].clone()),
        (json!("cloudevents"), json!("granted"), json!(120))
    );

    // Without consent required, nobody is asked.
    let other = Receiver::start().await;
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": other.url("/plain")})).await;
    assert_eq!(created.body["consentStatus"], "notRequired");
    send(&server).await;
    server.step().await;
    assert_eq!((other.handshakes().len(), other.count()), (0, 1));

    let invalid = server.patch(&format!("/api/v1/app/acme/endpoint/{id}"), json!({"consent": "maybe"})).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// An endpoint answering the handshake with `reply` gets nothing; the attempt says why.
async fn refused_by(reply: Reply, reason: &str) {
    let server = server("cloudevents").await;
    let receiver = Receiver::start().await;
    receiver.answer_options(reply);
    let id = endpoint(&server, &receiver, json!({})).await;
    let msg = send(&server).await;
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 0), "nothing delivered");
    let shown = shown(&server, &id).await;
    assert_eq!(shown["consentStatus"], "refused");
    assert!(shown["consentReason"].as_str().unwrap().contains(reason), "{shown:?}");
    let attempts = attempts(&server, &msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let response = attempts[0]["response"].as_str().unwrap();
    assert!(response.starts_with("not sent: ") && response.contains(reason), "{response}");
    assert_eq!(attempts[0]["status"], 2, "failed, not retried");

    // Later messages are not sent either, and the endpoint is not asked again at once.
    send(&server).await;
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 0));
}

#[tokio::test]
async fn an_endpoint_answering_405_gets_nothing_and_the_attempt_says_why() {
    refused_by(Reply::Status(405), "405 Method Not Allowed").await;
}

#[tokio::test]
async fn an_endpoint_refusing_or_consenting_to_another_origin_gets_nothing() {
    refused_by(Reply::Status(403), "answered OPTIONS with 403").await;
    refused_by(granting(&[("WebHook-Allowed-Origin", "someone-else.example")]), "another origin").await;
}

#[tokio::test]
async fn a_200_without_the_header_is_not_consent() {
    let server = server("cloudevents").await;
    let receiver = Receiver::start().await;
    receiver.answer_options(Reply::Status(200));
    let id = endpoint(&server, &receiver, json!({})).await;
    let msg = send(&server).await;
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 0));
    assert_eq!(shown(&server, &id).await["consentStatus"], "pending", "it may still grant by the callback");
    assert!(attempts(&server, &msg).await.is_empty(), "waiting, not failed");
    // The message's destinations show the same status, under the organisation's setting.
    let destinations = server.get(&format!("/api/v1/app/acme/msg/{msg}/endpoint")).await;
    assert_eq!(destinations.body["data"][0]["consentStatus"], "pending", "{:?}", destinations.body);

    // The delivery waits (given back a minute at a time) without asking again...
    server.advance(chrono::Duration::seconds(61));
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 0));
    // ...until the callback expires: then it is not attempted, and the attempt says why.
    server.advance(chrono::Duration::hours(1));
    server.step().await;
    assert_eq!(receiver.count(), 0);
    let attempts = attempts(&server, &msg).await;
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0]["response"].as_str().unwrap().contains("did not grant through the callback"));
    assert_eq!(shown(&server, &id).await["consentStatus"], "refused");
}

#[tokio::test]
async fn an_endpoint_can_grant_later_through_the_callback() {
    let operator = Receiver::start().await;
    let server = TestServer::start_with(Options {
        clock: Some(Arc::new(ManualClock::starting_now())),
        stepped: true,
        env: vec![
            ("HERALD_CONSENT", "cloudevents".to_owned()),
            ("HERALD_CONSENT_ORIGIN", ORIGIN.to_owned()),
            ("HERALD_OPERATIONAL_WEBHOOK_URL", operator.url("/ops")),
            ("HERALD_OPERATIONAL_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer_options(Reply::Status(200));
    let id = endpoint(&server, &receiver, json!({})).await;
    send(&server).await;
    server.step().await;
    assert_eq!(receiver.count(), 0);
    let callback = receiver.handshakes()[0].header("webhook-request-callback").to_owned();

    let guessed = reqwest::get(server.url("/api/v1/consent/not-the-token")).await.unwrap();
    assert_eq!(guessed.status(), StatusCode::NOT_FOUND);
    let client = reqwest::Client::new();
    let granted = client.post(&callback).header("WebHook-Allowed-Rate", "60").send().await.unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    let body: Value = granted.json().await.unwrap();
    assert_eq!((body["endpointId"].clone(), body["allowedRate"].clone()), (json!(id), json!(60)));
    let shown = shown(&server, &id).await;
    assert_eq!((shown["consentStatus"].clone(), shown["consentRate"].clone()), (json!("granted"), json!(60)));
    assert_eq!(client.get(&callback).send().await.unwrap().status(), StatusCode::NOT_FOUND, "used once");

    // The operator heard that the endpoint was asked and is pending, then that it granted.
    let events = operator.wait_for(2, std::time::Duration::from_secs(10)).await;
    let events: Vec<Value> = events.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["endpoint.consent.pending", "endpoint.consent.granted"], "{events:#?}");
    assert_eq!(
        (events[1]["data"]["endpointId"].clone(), events[1]["data"]["consentStatus"].clone()),
        (json!(id), json!("granted"))
    );

    // The waiting delivery goes when it is next due, without another handshake.
    server.advance(chrono::Duration::seconds(61));
    server.step().await;
    assert_eq!((receiver.handshakes().len(), receiver.count()), (1, 1));
}
