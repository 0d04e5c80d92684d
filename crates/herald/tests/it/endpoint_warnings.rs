//! Endpoint URLs the SSRF guard will refuse: saved with a `warnings` entry by default, refused
//! with 422 (`unroutable_url`) when the operator sets `refuse_unroutable_endpoints`. Test
//! servers allow 127.0.0.0/8 (their receivers listen there), so loopback IPv4 is not warned of.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_validation};

/// The codes and details of a reply's warnings (none when the field is absent).
fn warnings(reply: &Value) -> Vec<(String, String)> {
    reply["warnings"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|w| (w["code"].as_str().unwrap().to_owned(), w["detail"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn creating_or_changing_an_endpoint_warns_about_an_address_the_guard_will_refuse() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let refused = [
        ("http://10.0.0.1/hooks", "private"),
        ("http://[::1]:8080/hooks", "loopback"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://0x0a000001/hooks", "private"), // 10.0.0.1 written in hexadecimal
        ("http://[::ffff:192.168.1.1]/", "private"),
    ];
    for (i, (url, class)) in refused.iter().enumerate() {
        let created =
            server.post("/api/v1/app/acme/endpoint", json!({"url": url, "uid": format!("ep-{i}")})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{url}: {:?}", created.body);
        let warned = warnings(&created.body);
        assert_eq!(warned.len(), 1, "{url}: {:?}", created.body);
        assert_eq!(warned[0].0, "unroutable_url");
        assert!(
            warned[0].1.contains(class) && warned[0].1.contains("allowed_cidrs"),
            "{url}: {}",
            warned[0].1
        );
        // Only the answers of writes carry warnings.
        let read = server.get(&format!("/api/v1/app/acme/endpoint/ep-{i}")).await;
        assert!(read.body.get("warnings").is_none(), "{:?}", read.body);
    }

    // Addresses the guard lets through: public ones, names (resolved at delivery only), and
    // the blocks in allowed_cidrs (loopback IPv4 on test servers, `localhost` included).
    for url in
        ["https://example.com/hooks", "https://203.0.114.9/", "http://127.0.0.1:9/", "http://localhost:9/"]
    {
        let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{url}: {:?}", created.body);
        assert!(created.body.get("warnings").is_none(), "{url}: {:?}", created.body);
    }

    // PATCH and PUT warn about the endpoint as saved.
    let patched = server.patch("/api/v1/app/acme/endpoint/ep-0", json!({"url": "http://192.168.0.7/"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(warnings(&patched.body)[0].0, "unroutable_url");
    let fixed = server.patch("/api/v1/app/acme/endpoint/ep-0", json!({"url": "https://example.com/"})).await;
    assert!(fixed.body.get("warnings").is_none(), "{:?}", fixed.body);
    let put = server.put("/api/v1/app/acme/endpoint/new-one", json!({"url": "http://172.16.0.1/"})).await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(warnings(&put.body)[0].0, "unroutable_url");
}

#[tokio::test]
async fn localhost_is_warned_about_unless_loopback_is_allowed() {
    let server = TestServer::start_with(Options {
        env: vec![("HERALD_ALLOWED_CIDRS", String::new())],
        ..Options::default()
    })
    .await;
    server.create_app("Acme", Some("acme")).await;
    for url in ["http://localhost:8080/hooks", "http://api.localhost/", "http://127.0.0.1/"] {
        let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{url}: {:?}", created.body);
        let warned = warnings(&created.body);
        assert!(warned.len() == 1 && warned[0].1.contains("loopback"), "{url}: {:?}", created.body);
    }
}

#[tokio::test]
async fn with_refuse_unroutable_endpoints_such_urls_are_refused_and_nothing_changes() {
    let server = TestServer::start_with(Options {
        env: vec![("HERALD_REFUSE_UNROUTABLE_ENDPOINTS", "true".to_owned())],
        ..Options::default()
    })
    .await;
    server.create_app("Acme", Some("acme")).await;
    let refused = server.post("/api/v1/app/acme/endpoint", json!({"url": "http://10.1.2.3/hooks"})).await;
    assert_eq!(assert_validation(&refused), vec!["body.url"]);
    assert_eq!(refused.body["detail"][0]["type"], "unroutable_url");
    assert!(refused.body["detail"][0]["msg"].as_str().unwrap().contains("private"), "{:?}", refused.body);
    let put = server.put("/api/v1/app/acme/endpoint/ep", json!({"url": "http://[fd00::1]/"})).await;
    assert_eq!(put.body["detail"][0]["type"], "unroutable_url", "{:?}", put.body);
    let none = server.get("/api/v1/app/acme/endpoint").await;
    assert_eq!(none.body["data"].as_array().unwrap().len(), 0, "nothing was created");

    // An allowed address is saved; changing it to a refused one changes nothing.
    let created =
        server.post("/api/v1/app/acme/endpoint", json!({"url": "http://127.0.0.1:9/", "uid": "ep"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let patched = server
        .patch("/api/v1/app/acme/endpoint/ep", json!({"url": "http://10.0.0.1/", "description": "x"}))
        .await;
    assert_eq!(patched.body["detail"][0]["type"], "unroutable_url", "{:?}", patched.body);
    let read = server.get("/api/v1/app/acme/endpoint/ep").await;
    assert_eq!(read.body["url"], "http://127.0.0.1:9/");
    assert_eq!(read.body["description"], "");
    // A change that leaves the URL alone is not refused.
    let described = server.patch("/api/v1/app/acme/endpoint/ep", json!({"description": "kept"})).await;
    assert_eq!(described.status, StatusCode::OK, "{:?}", described.body);
}
