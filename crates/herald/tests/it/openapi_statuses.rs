//! The OpenAPI document lists every status Herald really answers: each operation is sent what
//! the HTTP edge refuses before a handler runs (a body that is not JSON or is too large, a
//! path segment that is not UTF-8, a query string with a control character, a request past
//! `max_concurrent_requests`), and the status it gets must be one its document lists.
#![allow(clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, Options, TestServer};

/// One documented operation.
struct Operation {
    method: Method,
    /// The path template, `{name}` for each path parameter.
    path: String,
    has_body: bool,
    query: Vec<String>,
    statuses: Vec<String>,
}

impl Operation {
    /// The path with every parameter replaced by `segment`.
    fn path_with(&self, segment: &str) -> String {
        let mut path = String::new();
        let mut rest = self.path.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest.find('}').unwrap();
            path.push_str(&rest[..start]);
            path.push_str(segment);
            rest = &rest[end + 1..];
        }
        path.push_str(rest);
        path
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn operations() -> Vec<Operation> {
    let document = serde_json::to_value(herald::api::openapi::document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let query = parameters
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            operations.push(Operation {
                method,
                path: path.clone(),
                has_body: operation.get("requestBody").is_some(),
                query,
                statuses: operation["responses"].as_object().unwrap().keys().cloned().collect(),
            });
        }
    }
    assert!(operations.len() > 30, "the document has the API's operations");
    operations
}

/// Sends one request; returns its status.
async fn send(server: &TestServer, method: &Method, path: &str, body: Option<Vec<u8>>) -> StatusCode {
    let mut request = server.client.request(method.clone(), server.url(path)).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    request.send().await.unwrap().status()
}

/// The undocumented answers (and those other than `expected`, when given), as
/// "operation: status (what was sent)".
async fn check(
    server: &TestServer,
    what: &str,
    expected: Option<StatusCode>,
    applies: impl Fn(&Operation) -> bool,
    request: impl Fn(&Operation) -> (String, Option<Vec<u8>>),
) -> Vec<String> {
    let mut undocumented = Vec::new();
    let mut tried = 0;
    for operation in operations().iter().filter(|o| applies(o)) {
        let (path, body) = request(operation);
        let status = send(server, &operation.method, &path, body).await;
        tried += 1;
        if !operation.statuses.contains(&status.as_u16().to_string()) {
            undocumented.push(format!("{}: {status} ({what})", operation.name()));
        }
        if expected.is_some_and(|expected| expected != status) {
            undocumented.push(format!("{}: {status}, not {expected:?} ({what})", operation.name()));
        }
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || !status.is_server_error(),
            "{}: {status} ({what})",
            operation.name()
        );
    }
    assert!(tried > 0, "{what}: some operations apply");
    undocumented
}

#[tokio::test]
async fn every_status_the_edge_answers_is_documented() {
    let options = Options { env: vec![("HERALD_MAX_BODY_BYTES", "2048".to_owned())], ..Options::default() };
    let server = TestServer::start_with(options).await;
    let mut undocumented = Vec::new();
    undocumented.extend(
        check(
            &server,
            "a body that is not JSON",
            Some(StatusCode::BAD_REQUEST),
            // An ingest URL takes any body (a provider's), with a limit of its own.
            |o| o.has_body && !o.path.starts_with("/in/"),
            |o| (o.path_with("x"), Some(b"{".to_vec())),
        )
        .await,
    );
    undocumented.extend(
        check(
            &server,
            "a body over max_body_bytes",
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            |o| o.has_body && !o.path.starts_with("/in/"),
            |o| (o.path_with("x"), Some(vec![b' '; 4096])),
        )
        .await,
    );
    undocumented.extend(
        check(
            &server,
            "a path segment that is not UTF-8",
            Some(StatusCode::BAD_REQUEST),
            |o| o.path.contains('{'),
            |o| (o.path_with("%ff"), None),
        )
        .await,
    );
    undocumented.extend(
        check(
            &server,
            "a control character in the query",
            Some(StatusCode::UNPROCESSABLE_ENTITY),
            |o| !o.query.is_empty(),
            |o| (format!("{}?{}=%01", o.path_with("x"), o.query[0]), None),
        )
        .await,
    );
    assert!(undocumented.is_empty(), "undocumented statuses:\n{}", undocumented.join("\n"));
}

#[tokio::test]
async fn every_operation_documents_503_past_the_request_cap() {
    let options =
        Options { env: vec![("HERALD_MAX_CONCURRENT_REQUESTS", "1".to_owned())], ..Options::default() };
    let server = TestServer::start_with(options).await;
    // A request that holds the only slot: the server asks for its body, which never comes.
    let mut holder = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 16\r\nExpect: 100-continue\r\n\r\n"
    );
    holder.write_all(request.as_bytes()).await.unwrap();
    let mut interim = [0u8; 12];
    holder.read_exact(&mut interim).await.unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));

    let probes = |o: &Operation| o.path.starts_with("/health/") || o.path.starts_with("/api/v1/health");
    let undocumented = check(
        &server,
        "past max_concurrent_requests",
        Some(StatusCode::SERVICE_UNAVAILABLE),
        |o| !probes(o),
        |o| (o.path_with("x"), o.has_body.then(|| b"{}".to_vec())),
    )
    .await;
    assert!(undocumented.is_empty(), "undocumented statuses:\n{}", undocumented.join("\n"));
    let document = serde_json::to_value(herald::api::openapi::document()).unwrap();
    let created = &document["paths"]["/api/v1/app"]["post"]["responses"]["503"];
    assert!(created["headers"]["Retry-After"].is_object(), "{created}");
}

/// What the property-based run (`.ci/schemathesis.sh`) found, kept fixed: the consent
/// callback's 422 is documented with the body it has, and PUT of an application whose path is
/// neither an id nor a valid uid answers a documented 404.
#[tokio::test]
async fn the_property_based_runs_findings_stay_fixed() {
    let server = TestServer::start().await;
    let document = serde_json::to_value(herald::api::openapi::document()).unwrap();
    let response_schema = |path: &str, method: &str, status: &str| {
        document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let rate =
        server.client.get(server.url("/api/v1/consent/0?WebHook-Allowed-Rate=null")).send().await.unwrap();
    assert_eq!(rate.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = rate.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], serde_json::json!(["query", "WebHook-Allowed-Rate"]), "{body}");
    for method in ["get", "post"] {
        assert!(response_schema("/api/v1/consent/{token}", method, "422").ends_with("/HttpValidationError"));
    }

    let put = server.put("/api/v1/app/%C3%BC%C3%81Bx", serde_json::json!({"name": "x"})).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND, "{:?}", put.body);
    assert!(response_schema("/api/v1/app/{app_id}", "put", "404").ends_with("/HttpErrorOut"));
}
