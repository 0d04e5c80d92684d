//! Delivery end to end: what arrives at a receiver, signed and authenticated, retried on the
//! schedule, isolated per endpoint, refused by the SSRF guard, and recorded attempt by attempt.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_error, assert_validation};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

/// A server with an application `acme` and an endpoint (`uid` "main") pointing at a receiver.
async fn setup(options: Options, endpoint: Value) -> (TestServer, Receiver) {
    let server = TestServer::start_with(options).await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let mut body = json!({"url": receiver.url("/hooks"), "uid": "main"});
    body.as_object_mut().unwrap().extend(endpoint.as_object().unwrap().clone());
    let created = server.post("/api/v1/app/acme/endpoint", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (server, receiver)
}

async fn send(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/api/v1/app/acme/msg", body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    reply.body
}

/// Only the headers of one family, so a verifier can't fall back to the other.
fn only(headers: &HeaderMap, prefix: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with(prefix) {
            let unbranded = name.as_str().replacen(prefix, "webhook-", 1);
            out.insert(axum::http::HeaderName::try_from(unbranded).unwrap(), value.clone());
        }
    }
    out
}

#[tokio::test]
async fn a_message_arrives_byte_for_byte_signed_and_with_the_bearer_token() {
    let token = "r32j4hu32ji3j24ipj324ioj234oi2j432io3j4";
    let (server, receiver) =
        setup(Options::default(), json!({"bearerToken": token, "headers": {"X-Tenant": "acme"}})).await;
    // Spacing and key order are kept exactly as sent.
    let raw = r#"{"order":  {"id": 42, "total": "9.99"}, "a": [1,2 ,3]}"#;
    let response = server
        .client
        .post(server.url("/api/v1/app/acme/msg"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"eventType": "order.created", "eventId": "evt-1", "payload": {raw}}}"#))
        .send()
        .await
        .unwrap();
    let accepted = crate::helpers::read(response).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let msg_id = accepted.body["id"].as_str().unwrap().to_owned();
    assert!(msg_id.starts_with("msg_"));

    let received = receiver.wait_for(1, WAIT).await;
    let request = &received[0];
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.body.as_ref(), raw.as_bytes());
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("Herald/"));
    assert_eq!(request.header("authorization"), format!("Bearer {token}"));
    assert_eq!(request.header("x-tenant"), "acme");
    assert_eq!(request.header("webhook-id"), msg_id);
    assert_eq!(request.header("svix-id"), msg_id);
    let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
    assert!((timestamp - chrono::Utc::now().timestamp()).abs() < 60);

    // An independent implementation (the Svix library) accepts both header families.
    let secret =
        server.get("/api/v1/app/acme/endpoint/main/secret").await.body["key"].as_str().unwrap().to_owned();
    let verifier = svix::webhooks::Webhook::new(&secret).unwrap();
    verifier.verify(&request.body, &only(&request.headers, "webhook-")).unwrap();
    verifier.verify(&request.body, &only(&request.headers, "svix-")).unwrap();
    assert!(
        verifier.verify(b"{}", &only(&request.headers, "webhook-")).is_err(),
        "the signature covers the body"
    );
}

#[tokio::test]
async fn ed25519_endpoints_get_signatures_that_verify_with_the_public_key() {
    use base64::Engine as _;
    use ed25519_dalek::Verifier as _;
    let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (server, receiver) = setup(Options::default(), json!({"secret": format!("whsk_{seed}")})).await;
    send(&server, json!({"eventType": "a.b", "payload": {"x": 1}})).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let public =
        server.get("/api/v1/app/acme/endpoint/main/secret").await.body["key"].as_str().unwrap().to_owned();
    let public =
        base64::engine::general_purpose::STANDARD.decode(public.strip_prefix("whpk_").unwrap()).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
    let signature = request.header("webhook-signature").strip_prefix("v1a,").unwrap().to_owned();
    let signature = base64::engine::general_purpose::STANDARD.decode(signature).unwrap();
    let content = format!("{}.{}.", request.header("webhook-id"), request.header("webhook-timestamp"));
    let mut signed = content.into_bytes();
    signed.extend_from_slice(&request.body);
    key.verify(&signed, &ed25519_dalek::Signature::from_slice(&signature).unwrap()).unwrap();
}

#[tokio::test]
async fn during_a_rotation_old_and_new_keys_both_sign() {
    let (server, receiver) = setup(Options::default(), json!({})).await;
    let old =
        server.get("/api/v1/app/acme/endpoint/main/secret").await.body["key"].as_str().unwrap().to_owned();
    let rotated = server
        .post("/api/v1/app/acme/endpoint/main/secret/rotate", json!({"gracePeriodSeconds": 3600}))
        .await;
    let new = rotated.body["key"].as_str().unwrap().to_owned();
    // The lane reads endpoint changes within a second; a fresh endpoint has no lane yet.
    send(&server, json!({"eventType": "a.b", "payload": {}})).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.header("webhook-signature").split(' ').count(), 2);
    for key in [old, new] {
        svix::webhooks::Webhook::new(&key)
            .unwrap()
            .verify(&request.body, &only(&request.headers, "webhook-"))
            .unwrap();
    }
}

#[tokio::test]
async fn a_failing_receiver_gets_the_message_again_on_schedule_with_the_same_id() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options { clock: Some(clock.clone()), stepped: true, ..Options::default() };
    let (server, receiver) = setup(options, json!({})).await;
    receiver.script([Reply::Status(500), Reply::Status(503)]);
    let msg = send(&server, json!({"eventType": "a.b", "payload": {"n": 1}})).await;

    assert_eq!(server.step().await.leased, 1);
    assert_eq!(receiver.count(), 1);
    // The first retry is due 5 s (±20%) later: at 3 s nothing is due, so nothing is sent.
    server.advance(chrono::Duration::seconds(3));
    assert_eq!(server.step().await.leased, 0, "not retried before its time");
    assert_eq!(receiver.count(), 1);
    server.advance(chrono::Duration::seconds(4));
    assert_eq!(server.step().await.leased, 1);
    assert_eq!(receiver.count(), 2);
    // The second retry comes 5 min (±20%) later: not at 3 min, by 7 min.
    server.advance(chrono::Duration::minutes(3));
    assert_eq!(server.step().await.leased, 0, "not retried before its time");
    server.advance(chrono::Duration::minutes(4));
    assert_eq!(server.step().await.leased, 1);
    let received = receiver.received();
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids, vec![msg["id"].as_str().unwrap(); 3]);
    let stamps: Vec<i64> = received.iter().map(|r| r.header("webhook-timestamp").parse().unwrap()).collect();
    assert!(
        stamps[0] < stamps[1] && stamps[1] < stamps[2],
        "each attempt is signed at its own time: {stamps:?}"
    );

    let attempts = wait_for_attempts(&server, msg["id"].as_str().unwrap(), 3).await;
    let codes: Vec<i64> = attempts.iter().map(|a| a["responseStatusCode"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![200, 503, 500], "newest first");
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(attempts[1]["status"], 2);
}

/// Polls the attempt list until `n` attempts are recorded (recording follows the response).
pub(crate) async fn wait_for_attempts(server: &TestServer, msg_id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = server.get(&format!("/api/v1/app/acme/attempt/msg/{msg_id}")).await;
        let data = list.body["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {n} attempts, have {data:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn retry_after_and_exhaustion_follow_the_configured_schedule() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![("HERALD_RETRY_SCHEDULE", "1s".to_owned())],
        stepped: true,
        ..Options::default()
    };
    let (server, receiver) = setup(options, json!({})).await;
    receiver.always(Reply::WithHeaders(429, vec![("retry-after", "120".to_owned())]));
    let msg = send(&server, json!({"eventType": "a.b", "payload": {}})).await;
    assert_eq!(server.step().await.leased, 1);
    // The receiver asked for two minutes, which is longer than the 1 s schedule: it wins.
    server.advance(chrono::Duration::seconds(60));
    assert_eq!(server.step().await.leased, 0, "the receiver's Retry-After is honoured");
    assert_eq!(receiver.count(), 1);
    server.advance(chrono::Duration::seconds(61));
    assert_eq!(server.step().await.leased, 1);
    // Two attempts in all (one retry configured): the delivery has failed for good.
    let attempts = wait_for_attempts(&server, msg["id"].as_str().unwrap(), 2).await;
    assert!(attempts.iter().all(|a| a["responseStatusCode"] == 429));
    server.advance(chrono::Duration::hours(1));
    assert_eq!(server.step().await.leased, 0, "failed for good: never attempted again");
    let destinations =
        server.get(&format!("/api/v1/app/acme/msg/{}/endpoint", msg["id"].as_str().unwrap())).await;
    assert_eq!(destinations.body["data"][0]["status"], 2, "{:?}", destinations.body);
    assert_eq!(destinations.body["data"][0]["statusText"], "fail");
    assert_eq!(receiver.count(), 2);
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let (server, receiver) = setup(Options::default(), json!({})).await;
    receiver.always(Reply::Status(410));
    send(&server, json!({"eventType": "a.b", "payload": {}})).await;
    receiver.wait_for(1, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.get("/api/v1/app/acme/endpoint/main").await.body["disabled"] != true {
        assert!(tokio::time::Instant::now() < deadline, "the endpoint was not disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Messages sent now do not go to it.
    let later = send(&server, json!({"eventType": "a.b", "payload": {}})).await;
    let destinations =
        server.get(&format!("/api/v1/app/acme/msg/{}/endpoint", later["id"].as_str().unwrap())).await;
    assert_eq!(destinations.body["data"], json!([]));
}

#[tokio::test]
async fn loopback_endpoints_are_refused_unless_allow_listed() {
    let options = Options { env: vec![("HERALD_ALLOWED_CIDRS", String::new())], ..Options::default() };
    let (server, receiver) = setup(options, json!({})).await;
    // The same receiver by name: refused after resolution, not only as an IP literal.
    let by_name = receiver.url("/by-name").replace("127.0.0.1", "localhost");
    server.post("/api/v1/app/acme/endpoint", json!({"url": by_name, "uid": "named"})).await;
    let msg = send(&server, json!({"eventType": "a.b", "payload": {}})).await;
    let attempts = wait_for_attempts(&server, msg["id"].as_str().unwrap(), 2).await;
    for attempt in &attempts {
        assert_eq!(attempt["responseStatusCode"], 0);
        let response = attempt["response"].as_str().unwrap();
        assert!(response.contains("SSRF") && response.contains("loopback"), "{response}");
    }
    assert_eq!(receiver.count(), 0, "nothing reached the receiver");
}

#[tokio::test]
async fn a_hung_and_a_failing_endpoint_do_not_delay_a_healthy_one() {
    let options = Options {
        env: vec![("HERALD_REQUEST_TIMEOUT", "10s".to_owned()), ("HERALD_LEASE_DURATION", "30s".to_owned())],
        ..Options::default()
    };
    let (server, healthy) = setup(options, json!({})).await;
    let hung = Receiver::start().await;
    hung.always(Reply::Delay(Duration::from_secs(30)));
    let failing = Receiver::start().await;
    failing.always(Reply::Status(500));
    for (receiver, uid) in [(&hung, "hung"), (&failing, "failing")] {
        let reply =
            server.post("/api/v1/app/acme/endpoint", json!({"url": receiver.url("/"), "uid": uid})).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let started = std::time::Instant::now();
    for i in 0..200 {
        send(&server, json!({"eventType": "a.b", "payload": {"i": i}})).await;
    }
    let received = healthy.wait_for(200, WAIT).await;
    let last = received.iter().map(|r| r.at).max().unwrap();
    // A shared queue would hold the healthy endpoint behind the hung one's 10 s timeouts; the
    // bound leaves room for a loaded machine (200 messages take well under a second alone).
    assert!(last.duration_since(started) < Duration::from_secs(8), "took {:?}", last.duration_since(started));
    assert!(hung.count() >= 1 && failing.count() >= 1);
}

#[tokio::test]
async fn scheduled_messages_wait_for_deliver_at() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options { clock: Some(clock.clone()), stepped: true, ..Options::default() };
    let (server, receiver) = setup(options, json!({})).await;
    let at = herald_core::clock::Clock::now(clock.as_ref()) + chrono::Duration::hours(2);
    let msg = send(&server, json!({"eventType": "a.b", "payload": {}, "deliverAt": at})).await;
    assert_eq!(msg["deliverAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap(), at);
    assert_eq!(server.step().await.leased, 0, "not before its time");
    server.advance(chrono::Duration::minutes(119));
    assert_eq!(server.step().await.leased, 0, "not a minute before its time");
    assert_eq!(receiver.count(), 0);
    server.advance(chrono::Duration::minutes(2));
    assert_eq!(server.step().await.leased, 1);
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn filters_and_channels_decide_which_endpoints_receive() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    server.create_event_type("order.created").await;
    let all = Receiver::start().await;
    let orders = Receiver::start().await;
    let eu = Receiver::start().await;
    server.post("/api/v1/app/acme/endpoint", json!({"url": all.url("/")})).await;
    server
        .post("/api/v1/app/acme/endpoint", json!({"url": orders.url("/"), "eventTypes": ["order.created"]}))
        .await;
    server.post("/api/v1/app/acme/endpoint", json!({"url": eu.url("/"), "channels": ["eu"]})).await;
    send(&server, json!({"eventType": "order.created", "payload": {"n": 1}, "channels": ["eu"]})).await;
    send(&server, json!({"eventType": "user.signup", "payload": {"n": 2}})).await;
    all.wait_for(2, WAIT).await;
    orders.wait_for(1, WAIT).await;
    eu.wait_for(1, WAIT).await;
    // Give stray deliveries a chance to show up before counting.
    let sent = send(&server, json!({"eventType": "order.created", "payload": {"n": 3}})).await;
    all.wait_for(3, WAIT).await;
    orders.wait_for(2, WAIT).await;
    assert_eq!(eu.count(), 1, "a message without channels skips endpoints with channels");
    let destinations =
        server.get(&format!("/api/v1/app/acme/msg/{}/endpoint", sent["id"].as_str().unwrap())).await;
    assert_eq!(destinations.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn messages_are_read_back_listed_and_expunged() {
    let (server, _receiver) = setup(Options::default(), json!({})).await;
    let first = send(
        &server,
        json!({"eventType": "a.one", "eventId": "e-1", "payload": {"k": "v"}, "channels": ["x"]}),
    )
    .await;
    let second = send(&server, json!({"eventType": "a.two", "payload": {"k": 2}})).await;
    assert_eq!(first["payload"], json!({"k": "v"}));
    let duplicate = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "a.one", "eventId": "e-1", "payload": {}}))
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT);

    let by_event_id = server.get("/api/v1/app/acme/msg/e-1").await;
    assert_eq!(by_event_id.body["id"], first["id"]);
    let list = server.get("/api/v1/app/acme/msg").await;
    let ids: Vec<&Value> = list.body["data"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, vec![&second["id"], &first["id"]], "newest first");
    let typed = server.get("/api/v1/app/acme/msg?event_types=a.one").await;
    assert_eq!(typed.body["data"].as_array().unwrap().len(), 1);
    let on_x = server.get("/api/v1/app/acme/msg?channel=x&with_content=false").await;
    assert_eq!(on_x.body["data"][0]["payload"], json!({}));

    let path = format!("/api/v1/app/acme/msg/{}/content", first["id"].as_str().unwrap());
    assert_eq!(server.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/api/v1/app/acme/msg/e-1").await.body["payload"], json!({"expired": true}));
}

#[tokio::test]
async fn invalid_messages_are_refused_and_not_stored() {
    let (server, receiver) = setup(Options::default(), json!({})).await;
    for (body, field) in [
        (json!({"eventType": "a b", "payload": {}}), "body.eventType"),
        (json!({"eventType": "a.b", "payload": [1, 2]}), "body.payload"),
        (
            json!({"eventType": "a.b", "payload": {}, "payloadRetentionPeriod": 0}),
            "body.payloadRetentionPeriod",
        ),
        (json!({"eventType": "a.b"}), "body"),
    ] {
        let reply = server.post("/api/v1/app/acme/msg", body).await;
        assert_eq!(assert_validation(&reply), [field]);
    }
    let missing_app = server.post("/api/v1/app/nobody/msg", json!({"eventType": "a.b", "payload": {}})).await;
    assert_error(&missing_app, StatusCode::NOT_FOUND);
    let created = server
        .post(
            "/api/v1/app/newcomer/msg",
            json!({"eventType": "a.b", "payload": {}, "application": {"name": "New"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "an inline application is created");
    assert_eq!(server.get("/api/v1/app/newcomer").await.body["name"], "New");
    assert_eq!(server.get("/api/v1/app/acme/msg").await.body["data"], json!([]));
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn resend_and_recover_send_failed_messages_again() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![("HERALD_RETRY_SCHEDULE", String::new())],
        ..Options::default()
    };
    let (server, receiver) = setup(options, json!({})).await;
    receiver.script([Reply::Status(500), Reply::Status(500), Reply::Status(500)]);
    let first = send(&server, json!({"eventType": "a.b", "payload": {"n": 1}})).await;
    let second = send(&server, json!({"eventType": "a.b", "payload": {"n": 2}})).await;
    receiver.wait_for(2, WAIT).await;
    wait_for_attempts(&server, first["id"].as_str().unwrap(), 1).await;
    wait_for_attempts(&server, second["id"].as_str().unwrap(), 1).await;

    let resend = format!("/api/v1/app/acme/msg/{}/endpoint/main/resend", first["id"].as_str().unwrap());
    let reply = server.post(&resend, json!({})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    receiver.wait_for(3, WAIT).await;
    let attempts = wait_for_attempts(&server, first["id"].as_str().unwrap(), 2).await;
    assert_eq!(attempts[0]["triggerType"], 1, "a manual attempt");

    let since = herald_core::clock::Clock::now(clock.as_ref()) - chrono::Duration::hours(1);
    let recover = server.post("/api/v1/app/acme/endpoint/main/recover", json!({"since": since})).await;
    assert_eq!(recover.status, StatusCode::ACCEPTED);
    assert_eq!(recover.body["status"], "running");
    let received = receiver.wait_for(5, WAIT).await;
    let bodies: Vec<&[u8]> = received[3..].iter().map(|r| r.body.as_ref()).collect();
    assert!(
        bodies.contains(&br#"{"n":1}"#.as_slice()) && bodies.contains(&br#"{"n":2}"#.as_slice()),
        "{bodies:?}"
    );

    let stats = server.get("/api/v1/app/acme/endpoint/main/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    let total = ["success", "pending", "sending", "fail"]
        .iter()
        .map(|k| stats.body[k].as_u64().unwrap())
        .sum::<u64>();
    assert!(total >= 2, "{:?}", stats.body);
}

#[tokio::test]
async fn operational_webhooks_report_exhaustion_and_disabled_endpoints() {
    let operator = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![
            ("HERALD_OPERATIONAL_WEBHOOK_URL", operator.url("/ops")),
            ("HERALD_OPERATIONAL_WEBHOOK_SECRET", secret.to_owned()),
            ("HERALD_RETRY_SCHEDULE", String::new()),
            ("HERALD_DISABLE_ENDPOINT_AFTER", "1d".to_owned()),
        ],
        ..Options::default()
    };
    let (server, receiver) = setup(options, json!({})).await;
    receiver.always(Reply::Status(500));
    let msg = send(&server, json!({"eventType": "a.b", "payload": {}})).await;

    // One attempt (no retries configured): the delivery is exhausted.
    let events = operator.wait_for(1, WAIT).await;
    let verifier = svix::webhooks::Webhook::new(secret).unwrap();
    verifier.verify(&events[0].body, &events[0].headers).unwrap();
    let event: Value = serde_json::from_slice(&events[0].body).unwrap();
    assert_eq!(event["type"], "message.attempt.exhausted");
    assert_eq!(event["data"]["msgId"], msg["id"]);
    assert_eq!(event["data"]["lastAttempt"]["responseStatusCode"], 500);

    // A day later without a success, the endpoint is disabled and the operator told.
    server.advance(chrono::Duration::hours(25));
    let events = operator.wait_for(2, WAIT).await;
    let event: Value = serde_json::from_slice(&events[1].body).unwrap();
    assert_eq!(event["type"], "endpoint.disabled");
    assert_eq!(server.get("/api/v1/app/acme/endpoint/main").await.body["disabled"], true);
}

#[tokio::test]
async fn redirects_are_not_followed_and_response_bodies_are_kept_up_to_the_limit() {
    let options = Options {
        env: vec![
            ("HERALD_MAX_RESPONSE_BODY_BYTES", "16".to_owned()),
            ("HERALD_RETRY_SCHEDULE", String::new()),
            ("HERALD_SVIX_HEADERS", "false".to_owned()),
        ],
        ..Options::default()
    };
    let (server, receiver) = setup(options, json!({})).await;
    let elsewhere = receiver.url("/elsewhere");
    receiver
        .script([Reply::WithHeaders(302, vec![("location", elsewhere)]), Reply::Body(200, "x".repeat(1000))]);
    let redirected = send(&server, json!({"eventType": "a.b", "payload": {"n": 1}})).await;
    let attempts = wait_for_attempts(&server, redirected["id"].as_str().unwrap(), 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], 302);
    assert_eq!(attempts[0]["status"], 2, "a redirect is a failed attempt");

    let long = send(&server, json!({"eventType": "a.b", "payload": {"n": 2}})).await;
    let attempts = wait_for_attempts(&server, long["id"].as_str().unwrap(), 1).await;
    assert_eq!(attempts[0]["response"], "x".repeat(16));
    let received = receiver.received();
    assert_eq!(received.len(), 2, "the redirect target was never requested");
    assert!(received.iter().all(|r| r.path == "/hooks"));
    assert!(received[0].headers.get("svix-id").is_none() && received[0].headers.get("webhook-id").is_some());
}

#[tokio::test]
async fn the_endpoint_rate_limit_spaces_deliveries_out() {
    let clock = Arc::new(ManualClock::starting_now());
    let (server, receiver) =
        setup(Options { clock: Some(clock.clone()), ..Options::default() }, json!({"rateLimit": 2})).await;
    for i in 0..5 {
        send(&server, json!({"eventType": "a.b", "payload": {"i": i}})).await;
    }
    // A burst of one second's worth, then one more each half second of the clock's time.
    receiver.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.count(), 2, "held back by the rate limit");
    server.advance(chrono::Duration::seconds(1));
    receiver.wait_for(4, WAIT).await;
    server.advance(chrono::Duration::seconds(1));
    receiver.wait_for(5, WAIT).await;
}

#[tokio::test]
async fn messages_past_their_retention_are_deleted_with_their_attempts() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![("HERALD_MESSAGE_RETENTION", "1d".to_owned())],
        ..Options::default()
    };
    let (server, receiver) = setup(options, json!({})).await;
    let old = send(&server, json!({"eventType": "a.b", "payload": {"n": 1}})).await;
    receiver.wait_for(1, WAIT).await;
    wait_for_attempts(&server, old["id"].as_str().unwrap(), 1).await;
    server.advance(chrono::Duration::hours(20));
    let recent = send(&server, json!({"eventType": "a.b", "payload": {"n": 2}})).await;
    server.advance(chrono::Duration::hours(5));
    let path = format!("/api/v1/app/acme/msg/{}", old["id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.get(&path).await.status != StatusCode::NOT_FOUND {
        assert!(tokio::time::Instant::now() < deadline, "the old message was not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = server.get("/api/v1/app/acme/attempt/endpoint/main").await;
    let ids: Vec<&Value> = attempts.body["data"].as_array().unwrap().iter().map(|a| &a["msgId"]).collect();
    assert!(!ids.contains(&&old["id"]), "its attempts went with it");
    assert_eq!(
        server.get(&format!("/api/v1/app/acme/msg/{}", recent["id"].as_str().unwrap())).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_endpoint_change_applies_to_the_very_next_delivery() {
    let (server, old) = setup(Options::default(), json!({})).await;
    send(&server, json!({"eventType": "a.b", "payload": {"n": 1}})).await;
    old.wait_for(1, WAIT).await;
    let new = Receiver::start().await;
    let moved = server.patch("/api/v1/app/acme/endpoint/main", json!({"url": new.url("/moved")})).await;
    assert_eq!(moved.status, StatusCode::OK);
    send(&server, json!({"eventType": "a.b", "payload": {"n": 2}})).await;
    let arrived = new.wait_for(1, WAIT).await;
    assert_eq!(arrived[0].body.as_ref(), br#"{"n":2}"#);
    assert_eq!(old.count(), 1, "the old URL got nothing after the change");
}

#[tokio::test]
async fn a_message_by_uid_reaches_whichever_application_has_the_uid_now() {
    let server = TestServer::start().await;
    let old_id = server.create_app("Acme", Some("acme")).await;
    let body = json!({"eventType": "a.b", "payload": {"n": 1}});
    assert_eq!(server.post("/api/v1/app/acme/msg", body.clone()).await.status, StatusCode::ACCEPTED);

    // Another node deletes the application and a new one takes its uid: this node's memory of
    // what `acme` named is now wrong, and the next message must still reach the new one.
    server.execute_sql(&format!("DELETE FROM applications WHERE id = '{old_id}'")).await;
    let new_id = server.create_app("Acme again", Some("acme")).await;
    let sent = server.post("/api/v1/app/acme/msg", body.clone()).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let listed = server.get(&format!("/api/v1/app/{new_id}/msg")).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1), "{:?}", listed.body);
    assert_eq!(listed.body["data"][0]["id"], sent.body["id"]);

    // An application id that names nothing (any more) is not found, with a JSON error.
    let gone = server.post(&format!("/api/v1/app/{old_id}/msg"), body.clone()).await;
    let detail = assert_error(&gone, StatusCode::NOT_FOUND);
    assert!(detail.to_lowercase().contains("application"), "{detail}");
    // A uid deleted through this node is forgotten at once.
    assert_eq!(server.delete("/api/v1/app/acme").await.status, StatusCode::NO_CONTENT);
    let deleted = server.post("/api/v1/app/acme/msg", body).await;
    assert_error(&deleted, StatusCode::NOT_FOUND);
}
