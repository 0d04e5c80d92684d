//! HTTPS deliveries: the endpoint's certificate is verified, against the built-in public roots
//! plus the authorities of `extra_ca_file`, and the request arrives intact over TLS.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::delivery::wait_for_attempts;
use crate::helpers::{Options, TestServer};

fn fixture(name: &str) -> String {
    format!("{}/tests/it/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A request as an HTTPS receiver read it: the head and the body.
struct Received {
    head: String,
    body: Vec<u8>,
}

/// An HTTPS receiver on 127.0.0.1 with the test certificate; answers every request `200 ok`.
async fn https_receiver() -> (u16, mpsc::Receiver<Received>) {
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("localhost.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(mut stream) = acceptor.accept(stream).await else { return };
                let mut read = Vec::new();
                let mut buffer = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buffer[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                let length: usize = head
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:").map(str::to_owned))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while read.len() < head_end + length {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = read[head_end..head_end + length].to_vec();
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = stream.shutdown().await;
                let _ = sender.send(Received { head, body }).await;
            });
        }
    });
    (port, received)
}

/// A server with application `acme` and an endpoint at `url`.
async fn server_with_endpoint(env: Vec<(&'static str, String)>, url: &str) -> TestServer {
    let server = TestServer::start_with(Options { env, ..Options::default() }).await;
    server.create_app("Acme", Some("acme")).await;
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    server
}

#[tokio::test]
async fn https_deliveries_arrive_when_the_endpoint_certificate_is_trusted() {
    let (port, mut received) = https_receiver().await;
    let url = format!("https://127.0.0.1:{port}/hooks");
    let server = server_with_endpoint(vec![("HERALD_EXTRA_CA_FILE", fixture("ca.pem"))], &url).await;
    let sent =
        server.post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {"over": "tls"}})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let msg_id = sent.body["id"].as_str().unwrap();

    let request =
        tokio::time::timeout(std::time::Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert!(request.head.starts_with("POST /hooks HTTP/1.1\r\n"), "{}", request.head);
    assert!(request.head.contains(&format!("webhook-id: {msg_id}\r\n")), "{}", request.head);
    assert_eq!(request.body, br#"{"over":"tls"}"#);
    let attempts = wait_for_attempts(&server, msg_id, 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], 200, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 0, "succeeded: {attempts:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_attempt_and_nothing_is_sent() {
    let (port, mut received) = https_receiver().await;
    let url = format!("https://127.0.0.1:{port}/hooks");
    // Only the built-in public roots: the test authority is unknown.
    let server = server_with_endpoint(Vec::new(), &url).await;
    let sent = server.post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {"n": 1}})).await;
    let msg_id = sent.body["id"].as_str().unwrap();

    let attempts = wait_for_attempts(&server, msg_id, 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], 0, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 2, "failed: {attempts:?}");
    let response = attempts[0]["response"].as_str().unwrap();
    assert!(response.contains("certificate") && response.contains("UnknownIssuer"), "{response}");
    assert!(received.try_recv().is_err(), "no request may reach an endpoint whose certificate failed");
}

#[test]
fn an_unreadable_or_empty_ca_file_is_a_configuration_error() {
    use herald::config::{Config, Overrides};
    let env = |value: &str| vec![("HERALD_EXTRA_CA_FILE".to_owned(), value.to_owned())];
    let missing = Config::load_from(&Overrides::default(), &env("/nonexistent/ca.pem")).unwrap_err();
    assert!(missing.to_string().contains("extra_ca_file"), "{missing}");
    let not_pem = Config::load_from(&Overrides::default(), &env(&fixture("README.md"))).unwrap_err();
    assert!(not_pem.to_string().contains("no PEM certificate"), "{not_pem}");
    let config = Config::load_from(&Overrides::default(), &env(&fixture("ca.pem"))).unwrap();
    assert_eq!(config.delivery.extra_roots.len(), 1);
}
