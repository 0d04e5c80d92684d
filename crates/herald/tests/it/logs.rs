//! What `herald serve` writes to its logs: JSON lines with `--log-format json`, and never an
//! API token, an endpoint's signing secret, bearer token or header values, nor a payload,
//! even at the most verbose level.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::process::{BOUND, Served, TOKEN, client};
use crate::receiver::{Receiver, Reply};

/// Values that must never reach a log line.
const SIGNING_KEY: &str = "c2lnbmluZy1rZXktdGhhdC1tdXN0LW5vdC1sZWFrIQ==";
const BEARER: &str = "bearer_value_that_must_not_leak_7f3a";
const HEADER_VALUE: &str = "header_value_that_must_not_leak_91bc";
const PAYLOAD_MARKER: &str = "payload_value_that_must_not_leak_52de";
const WRONG_TOKEN: &str = "sk_wrong_token_that_must_not_leak_0000";

#[tokio::test]
async fn logs_are_json_lines_without_tokens_secrets_or_payloads() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let env = [("HERALD_LOG_FORMAT", "json"), ("HERALD_LOG_LEVEL", "trace"), ("HERALD_RETRY_SCHEDULE", "1s")];
    let mut served = Served::start(work.path(), &data, &env);
    served.wait_healthy().await;
    let client = client();
    let receiver = Receiver::start().await;
    // The first attempt fails (its response is logged as a failure), the retry succeeds.
    receiver.script([Reply::Status(500)]);

    let api =
        |method: reqwest::Method, path: &str| client.request(method, served.url(path)).bearer_auth(TOKEN);
    let app = api(reqwest::Method::POST, "/api/v1/app").json(&json!({"name": "Logs", "uid": "logs"}));
    assert_eq!(app.send().await.unwrap().status(), StatusCode::CREATED);
    let endpoint = json!({
        "url": receiver.url("/hook"),
        "secret": format!("whsec_{SIGNING_KEY}"),
        "bearerToken": BEARER,
        "headers": {"x-api-key": HEADER_VALUE},
    });
    let created =
        api(reqwest::Method::POST, "/api/v1/app/logs/endpoint").json(&endpoint).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let message = json!({"eventType": "card.charged", "payload": {"card": PAYLOAD_MARKER}});
    let sent = api(reqwest::Method::POST, "/api/v1/app/logs/msg").json(&message).send().await.unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let refused = client.get(served.url("/api/v1/app")).bearer_auth(WRONG_TOKEN).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let arrived = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(arrived[1].header("authorization"), format!("Bearer {BEARER}"), "the token was sent");
    assert_eq!(arrived[1].header("x-api-key"), HEADER_VALUE);
    served.signal("-TERM");
    assert!(served.wait_exit(BOUND).await.success());

    let mut logs = String::new();
    for entry in std::fs::read_dir(work.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "stderr" || e == "stdout") {
            logs.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "trace logging says plenty: {logs}");
    for line in &lines {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["timestamp"].is_string(), "{line}");
    }
    for secret in [TOKEN, WRONG_TOKEN, SIGNING_KEY, BEARER, HEADER_VALUE, PAYLOAD_MARKER] {
        let leaked: Vec<&&str> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "{secret} appears in the logs: {leaked:#?}");
    }
}
