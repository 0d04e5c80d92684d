//! The API listener's bounds: slow or stalled clients are cut off, shutdown ends within its
//! grace period whatever clients hold, and past the request cap a client gets 503.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, Options, TestServer, assert_error, read};

/// Far longer than any bound under test, short enough to fail a hung test in good time.
const PATIENCE: Duration = Duration::from_secs(15);

fn with_settings(settings: &[(&'static str, &str)]) -> Options {
    Options { env: settings.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), ..Options::default() }
}

/// Reads one response's head (up to the blank line) from a raw connection.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await.unwrap().unwrap();
        assert_eq!(read, 1, "the connection closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Sends a whole request on a raw connection and reads its response, so the server is known to
/// have accepted and served the connection.
async fn serve_one_request(stream: &mut TcpStream) {
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: herald\r\n\r\n").await.unwrap();
    let head = read_head(stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
}

/// Waits for the server to close the connection: end of file, or a reset.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let outcome = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    assert!(outcome.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_period_while_a_client_holds_a_half_sent_request() {
    let server = TestServer::start_with(with_settings(&[
        ("HERALD_API_SHUTDOWN_GRACE", "1s"),
        ("HERALD_HEADER_READ_TIMEOUT", "10m"),
        ("HERALD_IDLE_CONNECTION_TIMEOUT", "10m"),
    ]))
    .await;
    // A fresh connection with half a request head (hyper counts it busy, not idle).
    let mut headers = TcpStream::connect(server.address).await.unwrap();
    headers.write_all(b"POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nContent-Le").await.unwrap();
    // A request whose handler is reading a body that never ends: the server asked for it
    // (`100 Continue`), got a part, and waits for the rest.
    let mut body = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    );
    body.write_all(request.as_bytes()).await.unwrap();
    let interim = read_head(&mut body).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    body.write_all(b"{\"name\":").await.unwrap();

    let stopped = tokio::time::timeout(PATIENCE, server.stop()).await;
    assert!(stopped.is_ok(), "the server was still shutting down after {PATIENCE:?}");
    closed_by_server(&mut headers).await;
    closed_by_server(&mut body).await;
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let server = TestServer::start_with(with_settings(&[
        ("HERALD_HEADER_READ_TIMEOUT", "1s"),
        ("HERALD_IDLE_CONNECTION_TIMEOUT", "10m"),
    ]))
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: herald\r\nX-Slow: ").await.unwrap();
    for _ in 0..3 {
        // Bytes that trickle in don't extend the time allowed for the whole head.
        if stream.write_all(b"a").await.is_err() {
            break;
        }
    }
    closed_by_server(&mut stream).await;
    // The server itself is unaffected.
    assert_eq!(server.get("/health/live").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_connection_that_stalls_in_its_body_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(with_settings(&[
        ("HERALD_HEADER_READ_TIMEOUT", "10m"),
        ("HERALD_IDLE_CONNECTION_TIMEOUT", "1s"),
    ]))
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    closed_by_server(&mut stream).await;
    assert_eq!(server.get("/api/v1/app").await.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn past_the_request_cap_a_request_gets_503_with_retry_after_and_probes_still_answer() {
    let server = TestServer::start_with(with_settings(&[("HERALD_MAX_CONCURRENT_REQUESTS", "1")])).await;
    // A request that holds the only slot: its handler runs (the server asks for the body with
    // `100 Continue`) and waits for a body that comes later.
    let mut holder = TcpStream::connect(server.address).await.unwrap();
    let body = br#"{"name": "Held"}"#;
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    holder.write_all(request.as_bytes()).await.unwrap();
    let interim = read_head(&mut holder).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    let refused = server.post("/api/v1/app", json!({"name": "Refused"})).await;
    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["content-type"], "application/json");
    assert_eq!(server.get("/health/ready").await.status, StatusCode::OK);

    // The held request completes, and its slot is free again.
    holder.write_all(body).await.unwrap();
    let head = read_head(&mut holder).await;
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    let accepted = server.post("/api/v1/app", json!({"name": "Later"})).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{:?}", accepted.body);
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let server = TestServer::start_with(with_settings(&[("HERALD_MAX_CONNECTIONS", "1")])).await;
    let mut first = TcpStream::connect(server.address).await.unwrap();
    serve_one_request(&mut first).await;
    // The kernel completes the second connection, but Herald does not serve it yet.
    let mut second = TcpStream::connect(server.address).await.unwrap();
    second.write_all(b"GET /health/live HTTP/1.1\r\nHost: herald\r\n\r\n").await.unwrap();
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
    assert!(waited.is_err(), "a second connection was served while the first was open");
    drop(first);
    let head = read_head(&mut second).await;
    // The byte the timed-out read may have taken is not lost: the read was cancelled unfulfilled.
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(second);
    let reply = read(server.client.get(server.url("/health/live")).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
}
