//! HTTPS on the API listener (`tls_cert_file`, `tls_key_file`): a client trusting the test
//! authority reaches the API and an ingest URL over TLS; a changed certificate is served
//! after its files change, without a restart; plain HTTP gets no answer.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Options, TestServer};

fn fixture(name: &str) -> String {
    format!("{}/tests/it/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A client that trusts only the authority in `ca` (no pooled connections, so every request
/// makes a new handshake).
fn trusting(ca: &str) -> reqwest::Client {
    let pem = std::fs::read(fixture(ca)).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_api_and_ingest_urls_are_served_over_tls_and_a_changed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixture("localhost.pem"), &cert).unwrap();
    std::fs::copy(fixture("localhost.key"), &key).unwrap();
    let env = vec![
        ("HERALD_TLS_CERT_FILE", cert.display().to_string()),
        ("HERALD_TLS_KEY_FILE", key.display().to_string()),
    ];
    let server = TestServer::start_with(Options { env, ..Options::default() }).await;
    let base = format!("https://127.0.0.1:{}", server.address.port());
    let first = trusting("ca.pem");
    let second = trusting("ca2.pem");

    let apps = first.get(format!("{base}/api/v1/app")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(apps.status(), StatusCode::OK);
    assert!(
        second.get(format!("{base}/health/live")).send().await.is_err(),
        "another authority's client refuses it"
    );
    assert!(server.client.get(server.url("/health/live")).send().await.is_err(), "plain HTTP gets no answer");

    // An ingest URL is https:// (no public_url) and takes events over TLS.
    let source: serde_json::Value = first
        .post(format!("{base}/ingest/api/v1/source"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Plain", "type": "generic-webhook"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = source["ingestUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("{base}/in/")), "{url}");
    let event = first.post(url).header("webhook-id", "e-1").body("hello").send().await.unwrap();
    assert_eq!(event.status(), StatusCode::OK);

    // Renewed: the other pair is written over the files; new connections get it.
    std::fs::copy(fixture("localhost2.pem"), &cert).unwrap();
    std::fs::copy(fixture("localhost2.key"), &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.get(format!("{base}/health/live")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the changed certificate was not served within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new client (a session resumed by `first` would skip the certificate).
    let fresh = trusting("ca.pem");
    assert!(
        fresh.get(format!("{base}/health/live")).send().await.is_err(),
        "the old certificate is no longer served"
    );
}

#[tokio::test]
async fn a_certificate_that_does_not_load_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::copy(fixture("localhost.key"), &key).unwrap();
    let config_env = vec![
        ("HERALD_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("HERALD_DATA_DIR".to_owned(), dir.path().join("data").display().to_string()),
        ("HERALD_TLS_CERT_FILE".to_owned(), cert.display().to_string()),
        ("HERALD_TLS_KEY_FILE".to_owned(), key.display().to_string()),
    ];
    let config =
        herald::config::Config::load_from(&herald::config::Overrides::default(), &config_env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = herald::app::App::build(config).await.unwrap();
    let error = app.serve(listener, tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    assert!(error.to_string().contains("cert.pem"), "{error}");
    // Only one of the two files is a configuration error, named at load.
    let half = vec![("HERALD_TLS_CERT_FILE".to_owned(), cert.display().to_string())];
    let refused =
        herald::config::Config::load_from(&herald::config::Overrides::default(), &half).unwrap_err();
    assert!(refused.to_string().contains("tls_key_file"), "{refused}");
}
