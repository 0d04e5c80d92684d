//! Endpoints: validation, filters, secrets and rotation, custom headers, the bearer token.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_error, assert_validation};

async fn server_with_app() -> (TestServer, String) {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    server.create_event_type("order.created").await;
    server.create_event_type("order.paid").await;
    (server, "/api/v1/app/acme/endpoint".to_owned())
}

#[tokio::test]
async fn an_endpoint_is_created_with_a_generated_secret_and_reads_back() {
    let (server, base) = server_with_app().await;
    let created = server
        .post(
            &base,
            json!({"url": "https://example.com/hooks", "description": "orders", "uid": "main",
                   "eventTypes": ["order.paid", "order.created"], "channels": ["eu"],
                   "metadata": {"team": "billing"}, "rateLimit": 10}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("ep_"));
    assert_eq!(created.body["eventTypes"], json!(["order.created", "order.paid"]));
    assert_eq!(created.body["channels"], json!(["eu"]));
    assert_eq!(created.body["throttleRate"], 10);
    assert_eq!(created.body["disabled"], false);
    assert_eq!(server.get(&format!("{base}/{id}")).await.body, created.body);
    assert_eq!(server.get(&format!("{base}/main")).await.body, created.body);

    let secret = server.get(&format!("{base}/main/secret")).await;
    let key = secret.body["key"].as_str().unwrap();
    assert!(key.starts_with("whsec_") && key.len() == 6 + 32, "{key}");

    let listed = server.get(&base).await;
    assert_eq!(listed.body["data"], json!([created.body]));
    assert_eq!(server.delete(&format!("{base}/main")).await.status, StatusCode::NO_CONTENT);
    assert_error(&server.get(&format!("{base}/{id}")).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_given_secret_is_kept_and_ed25519_keys_expose_only_the_public_key() {
    let (server, base) = server_with_app().await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    server.post(&base, json!({"url": "https://example.com/a", "uid": "a", "secret": given})).await;
    assert_eq!(server.get(&format!("{base}/a/secret")).await.body["key"], given);

    let seed = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let created =
        server.post(&base, json!({"url": "https://example.com/b", "uid": "b", "secret": seed})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let public = server.get(&format!("{base}/b/secret")).await.body["key"].as_str().unwrap().to_owned();
    assert!(public.starts_with("whpk_"), "{public}");
    assert!(!public.contains("AQIDBAUGBwgJCgsMDQ4PEBES"), "the private key is never returned");

    let bad = server.post(&base, json!({"url": "https://example.com/c", "secret": "whsec_tooshort"})).await;
    assert_eq!(assert_validation(&bad), ["body.secret"]);
}

#[tokio::test]
async fn rotating_returns_the_new_key_and_validates_the_grace_period() {
    let (server, base) = server_with_app().await;
    server.post(&base, json!({"url": "https://example.com/a", "uid": "a"})).await;
    let old = server.get(&format!("{base}/a/secret")).await.body["key"].clone();
    let rotated = server.post(&format!("{base}/a/secret/rotate"), json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_ne!(rotated.body["key"], old);
    assert_eq!(server.get(&format!("{base}/a/secret")).await.body["key"], rotated.body["key"]);

    let chosen = "whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC";
    let rotated = server
        .post(&format!("{base}/a/secret/rotate"), json!({"key": chosen, "gracePeriodSeconds": 60}))
        .await;
    assert_eq!(rotated.body["key"], chosen);
    let too_long =
        server.post(&format!("{base}/a/secret/rotate"), json!({"gracePeriodSeconds": 604_801})).await;
    assert_eq!(assert_validation(&too_long), ["body.gracePeriodSeconds"]);
}

#[tokio::test]
async fn event_type_filters_must_name_existing_event_types() {
    let (server, base) = server_with_app().await;
    let unknown = server
        .post(&base, json!({"url": "https://example.com/a", "eventTypes": ["order.created", "order.lost"]}))
        .await;
    let locs = assert_validation(&unknown);
    assert_eq!(locs, ["body.eventTypes"]);
    assert!(unknown.body["detail"][0]["msg"].as_str().unwrap().contains("order.lost"));
    // `filterTypes` is accepted as the older name of the same field.
    let aliased =
        server.post(&base, json!({"url": "https://example.com/a", "filterTypes": ["order.paid"]})).await;
    assert_eq!(aliased.body["eventTypes"], json!(["order.paid"]));
    assert!(
        server.get(&base).await.body["data"].as_array().unwrap().len() == 1,
        "the refused endpoint was not written"
    );
}

#[tokio::test]
async fn urls_are_validated() {
    let (server, base) = server_with_app().await;
    for url in ["not a url", "ftp://example.com/x", "https://", "/relative/path"] {
        let reply = server.post(&base, json!({"url": url})).await;
        assert_eq!(assert_validation(&reply), ["body.url"], "{url}");
    }
    let channels: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
    let reply = server.post(&base, json!({"url": "https://example.com", "channels": channels})).await;
    assert_eq!(assert_validation(&reply), ["body.channels"]);
    assert_eq!(server.get(&base).await.body["data"], json!([]));
}

#[tokio::test]
async fn put_upserts_and_patch_updates_fields() {
    let (server, base) = server_with_app().await;
    let created = server.put(&format!("{base}/primary"), json!({"url": "https://example.com/a"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["uid"], "primary");
    let secret = server.get(&format!("{base}/primary/secret")).await.body["key"].clone();

    let replaced = server
        .put(
            &format!("{base}/primary"),
            json!({"url": "https://example.com/b", "eventTypes": ["order.paid"]}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["url"], "https://example.com/b");
    assert_eq!(replaced.body["id"], created.body["id"]);
    assert_eq!(
        server.get(&format!("{base}/primary/secret")).await.body["key"],
        secret,
        "PUT keeps the secret"
    );

    let patched =
        server.patch(&format!("{base}/primary"), json!({"disabled": true, "eventTypes": null})).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["disabled"], true);
    assert_eq!(patched.body["eventTypes"], Value::Null);
    assert_eq!(patched.body["url"], "https://example.com/b");
    let bad = server.patch(&format!("{base}/primary"), json!({"eventTypes": ["nope"]})).await;
    assert_eq!(assert_validation(&bad), ["body.eventTypes"]);
}

#[tokio::test]
async fn custom_headers_mask_sensitive_values_and_refuse_reserved_names() {
    let (server, base) = server_with_app().await;
    server
        .post(
            &base,
            json!({"url": "https://example.com/a", "uid": "a",
                            "headers": {"X-Tenant": "acme", "X-Api-Key": "k-123"}}),
        )
        .await;
    let headers = server.get(&format!("{base}/a/headers")).await;
    assert_eq!(headers.body, json!({"headers": {"X-Tenant": "acme"}, "sensitive": ["X-Api-Key"]}));

    let put = server.put(&format!("{base}/a/headers"), json!({"headers": {"X-One": "1"}})).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&format!("{base}/a/headers")).await.body["headers"], json!({"X-One": "1"}));

    let patch =
        server.patch(&format!("{base}/a/headers"), json!({"headers": {"X-Two": "2", "x-one": null}})).await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&format!("{base}/a/headers")).await.body["headers"], json!({"X-Two": "2"}));
    let deleted =
        server.patch(&format!("{base}/a/headers"), json!({"headers": {}, "deleteHeaders": ["X-Two"]})).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&format!("{base}/a/headers")).await.body["headers"], json!({}));

    for name in ["Host", "Content-Length", "webhook-signature", "svix-id", "bad name"] {
        let reply = server.put(&format!("{base}/a/headers"), json!({"headers": {name: "x"}})).await;
        assert_eq!(assert_validation(&reply), [format!("body.headers.{name}")], "{name}");
    }
}

#[tokio::test]
async fn the_bearer_token_is_write_only() {
    let (server, base) = server_with_app().await;
    let token = "r32j4hu32ji3j24ipj324ioj234oi2j432io3j4";
    let created =
        server.post(&base, json!({"url": "https://example.com/a", "uid": "a", "bearerToken": token})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["hasBearerToken"], true);
    let mut seen = Vec::new();
    for path in [format!("{base}/a"), base.clone(), format!("{base}/a/headers"), format!("{base}/a/secret")] {
        seen.push(server.get(&path).await.body.to_string());
    }
    seen.push(created.body.to_string());
    assert!(seen.iter().all(|body| !body.contains(token)), "the token is never returned: {seen:?}");

    // PUT without the field keeps it; null removes it.
    let kept = server.put(&format!("{base}/a"), json!({"url": "https://example.com/b"})).await;
    assert_eq!(kept.body["hasBearerToken"], true);
    let removed = server.patch(&format!("{base}/a"), json!({"bearerToken": null})).await;
    assert_eq!(removed.body["hasBearerToken"], false);
    let bad = server.patch(&format!("{base}/a"), json!({"bearerToken": "has space"})).await;
    assert_eq!(assert_validation(&bad), ["body.bearerToken"]);
}

#[tokio::test]
async fn secrets_and_tokens_are_encrypted_at_rest_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        crate::helpers::Options { backend: Some(crate::helpers::Backend::Sqlite), ..Default::default() };
    let server = TestServer::start_in(dir.path(), options).await;
    server.create_app("Acme", Some("acme")).await;
    let base = "/api/v1/app/acme/endpoint";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let token = "plaintext-bearer-token-that-must-not-be-stored";
    server
        .post(
            base,
            json!({"url": "https://example.com/a", "secret": secret, "bearerToken": token,
                            "headers": {"X-Api-Key": "header-secret-value"}}),
        )
        .await;
    server.stop().await;
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("herald.db") {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!stored.is_empty());
    let text = String::from_utf8_lossy(&stored);
    for plain in
        ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", token, "header-secret-value", crate::helpers::ADMIN_TOKEN]
    {
        assert!(!text.contains(plain), "`{plain}` is stored in clear");
    }
    assert!(text.contains("https://example.com/a"), "the database file was read");
}

#[tokio::test]
async fn custom_headers_are_capped_in_number_and_size() {
    let (server, base) = server_with_app().await;
    let many = |n: usize| -> serde_json::Map<String, Value> {
        (0..n).map(|i| (format!("x-h{i}"), Value::from("v"))).collect()
    };
    // At the limit: accepted, and the endpoint delivers with them.
    let at_limit = server.post(&base, json!({"url": "https://example.com/a", "headers": many(64)})).await;
    assert_eq!(at_limit.status, StatusCode::CREATED, "{:?}", at_limit.body);
    // Past it (the attack that wedged deliveries sent 25,000): refused with the limit named.
    let past = server.post(&base, json!({"url": "https://example.com/b", "headers": many(25_000)})).await;
    assert_eq!(assert_validation(&past), vec!["body.headers".to_owned()]);
    assert!(past.body.to_string().contains("at most 64 custom headers"), "{:?}", past.body);
    let too_big = server
        .post(&base, json!({"url": "https://example.com/c", "headers": {"x-big": "v".repeat(17 * 1024)}}))
        .await;
    assert_eq!(too_big.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", too_big.body);
    // An edit that would take the set past the limit is refused too, and changes nothing.
    let id = at_limit.body["id"].as_str().unwrap();
    let edit = server.patch(&format!("{base}/{id}/headers"), json!({"headers": {"x-one-more": "v"}})).await;
    assert_eq!(edit.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", edit.body);
    let headers = server.get(&format!("{base}/{id}/headers")).await;
    assert_eq!(headers.body["headers"].as_object().unwrap().len(), 64);
}

#[tokio::test]
async fn endpoint_https_only_refuses_http_urls_on_create_put_and_patch() {
    let options = Options { env: vec![("HERALD_ENDPOINT_HTTPS_ONLY", "true".into())], ..Options::default() };
    let server = TestServer::start_with(options).await;
    server.create_app("Acme", Some("acme")).await;
    let plain = server.post("/api/v1/app/acme/endpoint", json!({"url": "http://example.com/hook"})).await;
    assert_eq!(assert_validation(&plain), vec!["body.url"]);
    let secure = server
        .post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/hook", "uid": "a"}))
        .await;
    assert_eq!(secure.status, StatusCode::CREATED);
    let patched =
        server.patch("/api/v1/app/acme/endpoint/a", json!({"url": "http://example.com/other"})).await;
    assert_eq!(assert_validation(&patched), vec!["body.url"]);
    let put = server.put("/api/v1/app/acme/endpoint/b", json!({"url": "http://example.com/b"})).await;
    assert_eq!(assert_validation(&put), vec!["body.url"]);
    // Off (the default): http:// is accepted.
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let plain = server.post("/api/v1/app/acme/endpoint", json!({"url": "http://example.com/hook"})).await;
    assert_eq!(plain.status, StatusCode::CREATED);
}
