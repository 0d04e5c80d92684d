//! The axum extractor: what a sender sees when it posts to a route that takes a
//! `VerifiedWebhook`. The crate's own dev-dependency turns the `axum` feature on, so these run
//! under a plain `cargo test`.
#![cfg(feature = "axum")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::post;
use herald_receiver::axum::VerifiedWebhook;
use herald_receiver::{MemorySeen, SeenStore, Verifier};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::{SECRET, svix_sign};

/// Echoes what the extractor handed over, so tests can see it.
async fn echo(webhook: VerifiedWebhook) -> axum::Json<Value> {
    axum::Json(json!({
        "id": webhook.id,
        "timestamp": webhook.timestamp,
        "body": String::from_utf8_lossy(&webhook.body),
    }))
}

fn router() -> Router {
    Router::new().route("/webhook", post(echo)).with_state(Verifier::new(SECRET).expect("valid secret"))
}

fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    since_epoch.as_secs().try_into().expect("fits")
}

fn signed_request(id: &str, timestamp: i64, signature: &str, body: &'static str) -> Request<Body> {
    Request::post("/webhook")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request")
}

async fn send(router: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response: Response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
    assert_eq!(content_type.as_ref().and_then(|value| value.to_str().ok()), Some("application/json"));
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[tokio::test]
async fn a_signed_request_reaches_the_handler_with_its_body() {
    let timestamp = now();
    let signature = svix_sign(SECRET, "msg_1", timestamp, br#"{"a":1}"#);
    let (status, body) = send(router(), signed_request("msg_1", timestamp, &signature, r#"{"a":1}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "id": "msg_1", "timestamp": timestamp, "body": r#"{"a":1}"# }));
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_401_and_a_reason() {
    let timestamp = now();
    let signature = svix_sign("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_1", timestamp, b"{}");
    let (status, body) = send(router(), signed_request("msg_1", timestamp, &signature, "{}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "code": "no_matching_signature", "detail": "no signature matches the message and the configured keys" })
    );
    let shown = body.to_string();
    assert!(!shown.contains("MfKQ9r8") && !shown.contains(&signature[3..]), "{shown}");
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let timestamp = now();
    let signature = svix_sign(SECRET, "msg_1", timestamp, br#"{"amount":1}"#);
    let (status, body) =
        send(router(), signed_request("msg_1", timestamp, &signature, r#"{"amount":100}"#)).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("no_matching_signature")));
}

#[tokio::test]
async fn missing_headers_and_stale_timestamps_say_so() {
    let request = Request::post("/webhook").body(Body::from("{}")).expect("a request");
    let (status, body) = send(router(), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "code": "missing_header", "detail": "missing header webhook-id" }));

    let stale = now() - 3600;
    let signature = svix_sign(SECRET, "msg_1", stale, b"{}");
    let (status, body) = send(router(), signed_request("msg_1", stale, &signature, "{}")).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("timestamp_too_old")));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let router = router().layer(DefaultBodyLimit::max(8));
    let timestamp = now();
    let body = r#"{"more":"than eight bytes"}"#;
    let signature = svix_sign(SECRET, "msg_1", timestamp, body.as_bytes());
    let (status, reply) = send(router, signed_request("msg_1", timestamp, &signature, body)).await;
    assert_eq!((status, &reply["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("body_too_large")));
}

/// An application state holding the verifier among other things, as real receivers do.
#[derive(Clone)]
struct App {
    verifier: Verifier,
    seen: Arc<MemorySeen>,
}

impl FromRef<App> for Verifier {
    fn from_ref(app: &App) -> Verifier {
        app.verifier.clone()
    }
}

async fn handle_once(State(app): State<App>, webhook: VerifiedWebhook) -> axum::Json<Value> {
    axum::Json(json!({ "first_time": app.seen.check_and_mark(&webhook.id) }))
}

#[tokio::test]
async fn the_verifier_can_live_in_a_larger_state_next_to_a_seen_store() {
    let app =
        App { verifier: Verifier::new(SECRET).expect("valid secret"), seen: Arc::new(MemorySeen::default()) };
    let router = Router::new().route("/webhook", post(handle_once)).with_state(app);
    let mut replies = Vec::new();
    // The same message delivered twice, each attempt freshly signed, as a retrying sender does.
    for attempt_time in [now() - 5, now()] {
        let signature = svix_sign(SECRET, "msg_dup", attempt_time, b"{}");
        let (status, body) =
            send(router.clone(), signed_request("msg_dup", attempt_time, &signature, "{}")).await;
        assert_eq!(status, StatusCode::OK);
        replies.push(body["first_time"].clone());
    }
    assert_eq!(replies, [json!(true), json!(false)]);
}
