//! A delivery the SSRF guard refuses is logged at the default level, once per endpoint and
//! address however many attempts are refused, without the URL or its credentials.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::process::{BOUND, Served, TOKEN, client};

/// A password in a refused endpoint's URL: it must not reach the log.
const PASSWORD: &str = "refused-url-password-4b1d";
/// Messages sent, each refused once at every endpoint.
const MESSAGES: usize = 3;

#[tokio::test]
async fn refused_deliveries_are_logged_once_per_endpoint_and_address() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // No exception for loopback: `localhost` is refused too (after resolving it), and nothing
    // is ever sent, since the guard refuses before connecting.
    let env = [("HERALD_LOG_FORMAT", "json"), ("HERALD_ALLOWED_CIDRS", "")];
    let mut served = Served::start(work.path(), &data, &env);
    served.wait_healthy().await;
    let client = client();
    let api =
        |method: reqwest::Method, path: &str| client.request(method, served.url(path)).bearer_auth(TOKEN);
    let app = api(reqwest::Method::POST, "/api/v1/app").json(&json!({"name": "Refused", "uid": "refused"}));
    assert_eq!(app.send().await.unwrap().status(), StatusCode::CREATED);
    let mut endpoints = BTreeMap::new();
    for url in [
        format!("http://user:{PASSWORD}@10.255.255.1/hook"),
        "http://10.255.255.1:8080/other".to_owned(),
        "http://localhost:9/hook".to_owned(),
    ] {
        let created = api(reqwest::Method::POST, "/api/v1/app/refused/endpoint").json(&json!({"url": url}));
        let created: Value = created.send().await.unwrap().json().await.unwrap();
        endpoints.insert(created["id"].as_str().unwrap().to_owned(), url);
    }
    for i in 0..MESSAGES {
        let message = json!({"eventType": "order.created", "payload": {"i": i}});
        let sent = api(reqwest::Method::POST, "/api/v1/app/refused/msg").json(&message).send().await.unwrap();
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
    }
    // Every attempt is made (and refused) before the server stops.
    for id in endpoints.keys() {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let path = format!("/api/v1/app/refused/attempt/endpoint/{id}");
            let list: Value = api(reqwest::Method::GET, &path).send().await.unwrap().json().await.unwrap();
            let attempts = list["data"].as_array().unwrap();
            if attempts.len() >= MESSAGES {
                assert!(attempts.iter().all(|a| a["response"].as_str().unwrap().contains("SSRF")), "{list}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "attempts of {id}: {list}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    served.signal("-TERM");
    assert!(served.wait_exit(BOUND).await.success());

    let logs = std::fs::read_to_string(
        std::fs::read_dir(work.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|e| e == "stderr"))
            .unwrap(),
    )
    .unwrap();
    assert!(!logs.contains(PASSWORD), "the URL's password is logged: {logs}");
    let mut logged: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in logs.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("delivery refused by the SSRF guard") {
            assert_eq!(entry["level"], "WARN", "{line}");
            let endpoint = entry["fields"]["endpoint_id"].as_str().unwrap().to_owned();
            logged.entry(endpoint).or_default().push(entry["fields"].clone());
        }
    }
    assert_eq!(logged.keys().collect::<Vec<_>>(), endpoints.keys().collect::<Vec<_>>(), "{logs}");
    for (endpoint, lines) in &logged {
        // `localhost` may resolve to 127.0.0.1 and ::1: each address is logged once at most.
        let mut addresses: Vec<&str> = lines.iter().map(|l| l["address"].as_str().unwrap()).collect();
        let all = addresses.len();
        addresses.sort_unstable();
        addresses.dedup();
        assert_eq!(
            addresses.len(),
            all,
            "{endpoint} ({}) logged once per address: {lines:#?}",
            endpoints[endpoint]
        );
        for address in addresses {
            let url = &endpoints[endpoint];
            assert!(url.contains(address) || ["127.0.0.1", "::1"].contains(&address), "{url}: {address}");
        }
    }
}
