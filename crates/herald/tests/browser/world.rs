//! What every browser test starts from: a Herald on loopback that delivers to loopback
//! receivers and never retries on its own (so every attempt a test sees is one it caused), two
//! event types, and two customers' applications.

use std::time::Duration;

use axum::response::Html;

use serde_json::{Value, json};

use crate::helpers::{Options, TestServer};

pub struct World {
    pub server: TestServer,
    pub acme: String,
    pub globex: String,
}

impl World {
    pub async fn start() -> Self {
        // An empty retry schedule: a failed attempt is final until someone resends it.
        let options = Options { env: vec![("HERALD_RETRY_SCHEDULE", String::new())], ..Options::default() };
        let server = TestServer::start_with(options).await;
        server.create_event_type("order.created").await;
        server.create_event_type("order.shipped").await;
        let acme = server.create_app("Acme Inc", Some("acme")).await;
        let globex = server.create_app("Globex", Some("globex")).await;
        Self { server, acme, globex }
    }

    /// Creates an endpoint through the API and returns its id.
    pub async fn endpoint(&self, app: &str, body: Value) -> String {
        let reply = self.server.post(&format!("/api/v1/app/{app}/endpoint"), body).await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Sends a message through the API and returns its id.
    pub async fn send(&self, app: &str, event_type: &str, payload: Value) -> String {
        let reply = self
            .server
            .post(&format!("/api/v1/app/{app}/msg"), json!({"eventType": event_type, "payload": payload}))
            .await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until an endpoint has `n` recorded attempts (recording follows the response).
    pub async fn attempts(&self, app: &str, endpoint: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let list =
                self.server.get(&format!("/api/v1/app/{app}/attempt/endpoint/{endpoint}?limit=250")).await;
            let data = list.body["data"].as_array().unwrap().clone();
            if data.len() >= n {
                return data;
            }
            assert!(tokio::time::Instant::now() < deadline, "expected {n} attempts, have {}", data.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A portal token (and the link carrying it) for an application.
    pub async fn portal(&self, app: &str) -> (String, String) {
        let access = self.server.post(&format!("/api/v1/auth/app-portal-access/{app}"), json!({})).await;
        assert!(access.status.is_success(), "{:?}", access.body);
        (access.body["url"].as_str().unwrap().to_owned(), access.body["token"].as_str().unwrap().to_owned())
    }
}

/// Serves one HTML page on 127.0.0.1 (another origin than Herald's) and returns its URL: a
/// customer's site that embeds the portal.
pub async fn serve_page(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(html) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/")
}
