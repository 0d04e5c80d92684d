//! The bench's calls to Herald's public API: health, creating the application and its
//! endpoints, reading their secrets back, and sending messages. It uses the API as any
//! client would; it knows nothing of Herald's internals.

use std::time::Duration;

use anyhow::{Context as _, bail};
use herald_core::secret::SigningSecret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::json;

/// Time allowed for one API call; a slower answer counts as an API error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one Herald's API, authenticated with an organisation token.
#[derive(Debug)]
pub struct HeraldClient {
    http: reqwest::Client,
    /// The server's base URL, without a trailing slash.
    base: String,
    /// `Bearer <token>`, marked sensitive so it never appears in debug output.
    authorization: HeaderValue,
}

/// The one field the bench reads from the API's creation responses.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `GET .../secret`.
#[derive(Deserialize)]
struct SecretOut {
    key: String,
}

impl HeraldClient {
    /// A client keeping up to `connections` idle connections, one per sender.
    pub fn new(base_url: &str, token: &str, connections: u32) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Only loopback is ever contacted; a proxy from the environment must not intervene.
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(usize::try_from(connections).unwrap_or(usize::MAX))
            .build()
            .context("could not build the HTTP client")?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        authorization.set_sensitive(true);
        Ok(Self { http, base: base_url.trim_end_matches('/').to_owned(), authorization })
    }

    /// Whether `GET /api/v1/health` answers 204.
    pub async fn healthy(&self) -> bool {
        let request = self.http.get(format!("{}/api/v1/health", self.base)).timeout(Duration::from_secs(1));
        matches!(request.send().await, Ok(response) if response.status() == StatusCode::NO_CONTENT)
    }

    /// Creates the bench's application (with a fresh uid, so runs never collide) and
    /// returns its id.
    pub async fn create_app(&self) -> anyhow::Result<String> {
        let uid = format!("herald-bench-{:016x}", rand::random::<u64>());
        let body = json!({ "name": "herald bench", "uid": uid });
        let created: Created = self.setup_call("/api/v1/app", &body, StatusCode::CREATED).await?;
        Ok(created.id)
    }

    /// Creates a generic-webhook ingest source; returns its application's id and its ingest URL.
    pub async fn create_source(&self) -> anyhow::Result<(String, String)> {
        let body = json!({ "name": "herald bench", "type": "generic-webhook" });
        let created: serde_json::Value =
            self.setup_call("/ingest/api/v1/source", &body, StatusCode::CREATED).await?;
        let field = |name: &str| {
            created[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("Herald's source has no {name}"))
        };
        Ok((field("appId")?, field("ingestUrl")?))
    }

    /// Posts one event to an ingest URL, as a provider does, with its delivery id in
    /// `webhook-id` (which a generic-webhook source deduplicates by); returns the message it
    /// became.
    pub async fn send_event(&self, url: &str, delivery_id: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", delivery_id)
            .body(body)
            .send()
            .await?;
        let created: Created =
            read_json(response, StatusCode::OK, "posting an event to the ingest URL").await?;
        Ok(created.id)
    }

    /// Creates an endpoint delivering to `url`, signed with `secret`, and returns its id.
    pub async fn create_endpoint(
        &self,
        app_id: &str,
        url: &str,
        secret: &SigningSecret,
        ordered: bool,
        pinned: bool,
    ) -> anyhow::Result<String> {
        let mut body = json!({ "url": url, "secret": secret.expose(), "description": "herald bench", "ordered": ordered });
        if pinned {
            body["payloadVersion"] = json!("1");
        }
        let path = format!("/api/v1/app/{app_id}/endpoint");
        let created: Created = self.setup_call(&path, &body, StatusCode::CREATED).await?;
        Ok(created.id)
    }

    /// Sets and enables an endpoint's transformation.
    pub async fn set_transformation(
        &self,
        app_id: &str,
        endpoint_id: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", self.base);
        let response = self
            .http
            .patch(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(serde_json::to_vec(&json!({ "code": code, "enabled": true }))?)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::NO_CONTENT,
            "setting a transformation: {}",
            response.status()
        );
        Ok(())
    }

    /// Registers (or replaces) the bench's event type with versions 1 to `steps + 1` and a
    /// converter for each step, so messages are published at the last version.
    pub async fn create_versioned_event_type(&self, steps: u32) -> anyhow::Result<()> {
        let schemas: serde_json::Map<String, serde_json::Value> =
            (1..=steps + 1).map(|v| (v.to_string(), json!({"type": "object"}))).collect();
        let converters: serde_json::Map<String, serde_json::Value> = (2..=steps + 1)
            .map(|v| (v.to_string(), json!(format!("function convert(p) {{ p.v = {}; return p; }}", v - 1))))
            .collect();
        let body = json!({"description": "herald bench", "schemas": schemas, "converters": converters});
        let url = format!("{}/api/v1/event-type/bench.message", self.base);
        let response = self
            .http
            .put(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(serde_json::to_vec(&body)?)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "registering the bench's event type: {}",
            response.status()
        );
        Ok(())
    }

    /// The endpoint's signing secret, as Herald has stored it.
    pub async fn endpoint_secret(&self, app_id: &str, endpoint_id: &str) -> anyhow::Result<String> {
        let url = format!("{}/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", self.base);
        let response = self.http.get(url).header(AUTHORIZATION, self.authorization.clone()).send().await?;
        let secret: SecretOut = read_json(response, StatusCode::OK, "reading an endpoint's secret").await?;
        Ok(secret.key)
    }

    /// Deletes the application (and with it its endpoints and messages), ignoring failures.
    pub async fn delete_app(&self, app_id: &str) {
        let url = format!("{}/api/v1/app/{app_id}", self.base);
        let _ = self.http.delete(url).header(AUTHORIZATION, self.authorization.clone()).send().await;
    }

    /// Sends one message (`body` is the whole request body) and returns the message id from
    /// the 202 response.
    pub async fn send_message(&self, app_id: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/api/v1/app/{app_id}/msg", self.base))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await?;
        let created: Created = read_json(response, StatusCode::ACCEPTED, "sending a message").await?;
        Ok(created.id)
    }

    /// A POST of the setup phase, which must answer `expected`.
    async fn setup_call<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
        expected: StatusCode,
    ) -> anyhow::Result<T> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .with_context(|| format!("POST {path} failed"))?;
        read_json(response, expected, &format!("POST {path}")).await
    }
}

/// Reads a response that must have status `expected` and a JSON body of type `T`.
async fn read_json<T: for<'de> Deserialize<'de>>(
    response: reqwest::Response,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("{what}: reading the response failed"))?;
    if status != expected {
        let text = String::from_utf8_lossy(&bytes);
        bail!("{what}: HTTP {status}: {}", text.chars().take(200).collect::<String>());
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{what}: unexpected response body"))
}
