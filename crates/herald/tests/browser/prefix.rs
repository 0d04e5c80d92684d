//! Herald behind a reverse proxy that serves it under a path prefix (`/herald/`): the portal
//! and the dashboard load their files and call the API through the prefix, with no script
//! errors and no CSP violations.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::Setup;
use crate::portal::assert_clean;
use crate::webdriver::Driver;
use crate::world::World;

const PREFIX: &str = "/herald";

/// Forwards `/herald/<rest>` to `upstream/<rest>` (method, headers, body) and everything else
/// to a 404, like a path-routing proxy; returns the proxy's base URL.
async fn prefix_proxy(upstream: String) -> String {
    async fn forward(State(upstream): State<String>, request: Request) -> Response {
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let Some(rest) = path_and_query.strip_prefix(PREFIX) else {
            return Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap();
        };
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let mut headers = parts.headers.clone();
        headers.remove(axum::http::header::HOST);
        let upstream_response = client
            .request(parts.method, format!("{upstream}{rest}"))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let mut response = Response::builder().status(upstream_response.status());
        for (name, value) in upstream_response.headers() {
            response = response.header(name, value);
        }
        response.body(Body::from(upstream_response.bytes().await.unwrap())).unwrap()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(forward).with_state(upstream);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}{PREFIX}")
}

pub async fn story(setup: &Setup, driver: &Driver) {
    let world = World::start().await;
    world
        .endpoint("acme", json!({"url": "http://127.0.0.1:9/hooks", "description": "Through the proxy"}))
        .await;
    let base = prefix_proxy(world.server.url("")).await;
    let (link, _) = world.portal("acme").await;
    let fragment = &link[link.find('#').unwrap()..];
    let browser = setup.browser(driver).await;

    // The portal link, with a trailing slash as an older link had: redirected within the prefix.
    browser.goto(&format!("{base}/portal/{fragment}")).await;
    browser.wait_for("#app-name", "Acme Inc").await;
    browser.wait_for("main", "Through the proxy").await;
    let address = browser.current_url().await;
    assert!(address.starts_with(&format!("{base}/portal")), "{address}");
    assert_clean(&browser, "portal under a prefix").await;

    // The dashboard: its sign-in works through the prefix too.
    browser.goto(&format!("{base}/ui/")).await;
    browser.wait_for("h1", "Sign in").await;
    browser.wait_for("#token", "").await.type_text(crate::helpers::ADMIN_TOKEN).await;
    browser.wait_for("button[type=submit]", "Sign in").await.click().await;
    browser.wait_for("h1", "Overview").await;
    browser.wait_for("main", "Acme Inc").await;
    let address = browser.current_url().await;
    assert!(address.starts_with(&format!("{base}/ui")), "{address}");
    assert_clean(&browser, "dashboard under a prefix").await;
    browser.quit().await;
}
