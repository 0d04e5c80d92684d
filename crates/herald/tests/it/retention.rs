//! Retention of payloads, attempts and whole messages, each with its own age, enforced by the
//! maintenance job as the (test) clock moves, and counted in `/metrics`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Duration as Age;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::metrics::{add_endpoint, sample, scrape, send, start, wait_for_attempts};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);

/// Waits until the retention counters read `payloads`, `attempts`, `messages`.
async fn wait_for_retention(server: &TestServer, payloads: f64, attempts: f64, messages: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = scrape(server).await;
        let counts = [
            sample(&text, r#"herald_retention_deleted_total{kind="payloads"}"#),
            sample(&text, r#"herald_retention_deleted_total{kind="attempts"}"#),
            sample(&text, r#"herald_retention_deleted_total{kind="messages"}"#),
        ];
        if counts == [payloads, attempts, messages] {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention counters {counts:?}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The message's payload (`None` when the message is gone) and its attempts.
async fn state(server: &TestServer, msg_id: &str) -> (Option<Value>, usize) {
    let message = server.get(&format!("/api/v1/app/acme/msg/{msg_id}")).await;
    let attempts = server.get(&format!("/api/v1/app/acme/attempt/msg/{msg_id}")).await;
    let count = attempts.body["data"].as_array().map_or(0, Vec::len);
    (message.status.is_success().then(|| message.body["payload"].clone()), count)
}

#[tokio::test]
async fn payloads_attempts_and_messages_go_at_their_own_age_and_newer_ones_stay() {
    let server = start(vec![
        ("HERALD_PAYLOAD_RETENTION", "1d".to_owned()),
        ("HERALD_ATTEMPT_RETENTION", "2d".to_owned()),
        ("HERALD_MESSAGE_RETENTION", "5d".to_owned()),
    ])
    .await;
    let receiver = Receiver::start().await;
    add_endpoint(&server, "main", receiver.url("/")).await;
    let expired = json!({"expired": true});

    let first = send(&server).await;
    wait_for_attempts(&server, &first, 1).await;

    // 1.5 days on: the first payload is past its day; its attempt (2 days) stays.
    server.advance(Age::hours(36));
    wait_for_retention(&server, 1.0, 0.0, 0.0).await;
    assert_eq!(state(&server, &first).await, (Some(expired.clone()), 1));
    let second = send(&server).await;
    wait_for_attempts(&server, &second, 1).await;

    // 2.3 days after the first: its attempt goes, the message stays; the second is untouched.
    server.advance(Age::hours(19));
    wait_for_retention(&server, 1.0, 1.0, 0.0).await;
    assert_eq!(state(&server, &first).await, (Some(expired.clone()), 0));
    assert_eq!(state(&server, &second).await, (Some(json!({})), 1));

    // 5.3 days after the first: it is deleted; the second (3.8 days) keeps its message only.
    server.advance(Age::hours(72));
    wait_for_retention(&server, 2.0, 2.0, 1.0).await;
    assert_eq!(state(&server, &first).await, (None, 0));
    assert_eq!(state(&server, &second).await, (Some(expired), 0));
}
