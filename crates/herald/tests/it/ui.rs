//! The dashboard and portal pages as a browser first sees them: served without a token (they
//! hold no data), with the right content types, a strict Content-Security-Policy, and framing
//! allowed for the portal only. What the pages do is tested in a browser (`tests/browser`).
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_FRAME_OPTIONS};

use crate::helpers::{Options, TestServer};

async fn fetch(server: &TestServer, path: &str) -> reqwest::Response {
    // No redirects followed and no token sent: what an anonymous browser gets.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(server.url(path)).send().await.unwrap()
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    response.headers().get(&name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

#[tokio::test]
async fn the_pages_are_served_without_a_token_under_a_strict_content_security_policy() {
    let server = TestServer::start().await;
    for (path, script) in [("/ui", "ui/assets/dashboard.js"), ("/portal", "ui/assets/portal.js")] {
        let response = fetch(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, CONTENT_TYPE), "text/html; charset=utf-8", "{path}");
        let csp = header(&response, CONTENT_SECURITY_POLICY).to_owned();
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"]
        {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header(&response, reqwest::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let body = response.text().await.unwrap();
        assert!(body.contains(&format!(r#"<script type="module" src="{script}"></script>"#)), "{body}");
        assert!(!body.contains("sk_") && !body.contains("app_"), "the page itself carries no data");
    }
}

#[tokio::test]
async fn only_the_portal_may_be_framed() {
    let server = TestServer::start().await;
    let dashboard = fetch(&server, "/ui").await;
    assert_eq!(header(&dashboard, X_FRAME_OPTIONS), "DENY");
    assert!(header(&dashboard, CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));

    let portal = fetch(&server, "/portal").await;
    assert!(portal.headers().get(X_FRAME_OPTIONS).is_none(), "operators embed the portal in an iframe");
    assert!(header(&portal, CONTENT_SECURITY_POLICY).contains("frame-ancestors *"));
}

#[tokio::test]
async fn the_sites_that_may_frame_the_portal_are_configurable() {
    let options = Options {
        env: vec![("HERALD_PORTAL_FRAME_ANCESTORS", "https://app.example.com  'self'".to_owned())],
        ..Options::default()
    };
    let server = TestServer::start_with(options).await;
    let portal = fetch(&server, "/portal").await;
    let csp = header(&portal, CONTENT_SECURITY_POLICY);
    assert!(csp.ends_with("; frame-ancestors https://app.example.com 'self'"), "{csp}");
    let dashboard = fetch(&server, "/ui").await;
    assert!(
        header(&dashboard, CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"),
        "the dashboard never"
    );
}

#[tokio::test]
async fn assets_are_served_with_their_content_types_and_unknown_ones_are_json_404s() {
    let server = TestServer::start().await;
    for (path, content_type) in [
        ("/ui/assets/dashboard.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/portal.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/api.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/herald.css", "text/css; charset=utf-8"),
        ("/ui/assets/icon.svg", "image/svg+xml"),
    ] {
        let response = fetch(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, CONTENT_TYPE), content_type, "{path}");
        assert_eq!(header(&response, reqwest::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    for path in ["/ui/assets/nope.js", "/ui/assets/..%2Fsrc%2Fmain.rs"] {
        let missing = fetch(&server, path).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
}

#[tokio::test]
async fn the_server_root_leads_to_the_dashboard() {
    let server = TestServer::start().await;
    let response = fetch(&server, "/").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(header(&response, LOCATION), "ui", "relative, so a proxy's path prefix stays");
}

/// Behind a proxy serving Herald under a prefix, relative links from `<prefix>/ui/` would miss
/// the assets, so the pages' addresses with a trailing slash redirect to the ones without,
/// relatively (the prefix stays; a portal link's fragment is kept by the browser).
#[tokio::test]
async fn page_addresses_with_a_trailing_slash_redirect_relatively_to_the_canonical_ones() {
    let server = TestServer::start().await;
    for (path, location) in [("/ui/", "../ui"), ("/portal/", "../portal")] {
        let response = fetch(&server, path).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(header(&response, LOCATION), location, "{path}");
        let target = url::Url::parse(&server.url(path)).unwrap().join(location).unwrap();
        assert_eq!(target.path(), path.trim_end_matches('/'), "{path}");
    }
    // Other routes still take a trailing slash as if it were not there.
    let apps = server.get("/api/v1/app/").await;
    assert_eq!(apps.status, StatusCode::OK);
}

#[tokio::test]
async fn the_pages_call_only_the_public_api() {
    // Every path the scripts call is under /api/v1 (documented in the OpenAPI document) or is
    // /metrics: the pages have no private routes to call.
    let server = TestServer::start().await;
    let document: serde_json::Value = fetch(&server, "/api/v1/openapi.json").await.json().await.unwrap();
    let documented: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    for script in ["api.js", "views-overview.js", "views-apps.js", "dashboard.js", "portal.js"] {
        let source = fetch(&server, &format!("/ui/assets/{script}")).await.text().await.unwrap();
        for quoted in source.split(['\'', '`']).filter(|s| s.starts_with('/') && !s.starts_with("//")) {
            let path = quoted.split(['?', '$']).next().unwrap();
            if !(path.starts_with("/api/") || path == "/metrics") {
                continue;
            }
            let public =
                path == "/metrics" || documented.iter().any(|d| d.starts_with(path.trim_end_matches('/')));
            assert!(public, "{script} calls {path}, which the OpenAPI document does not describe");
        }
    }
}
