//! A minimal client for the parts of Herald's HTTP API the examples use. It only speaks
//! HTTP; it holds no state beyond the base URL and the token.

use serde::Deserialize;
use serde_json::{Value, json};

/// Why a call to Herald failed.
#[derive(Debug, thiserror::Error)]
pub enum HeraldError {
    /// Herald could not be reached, or its answer could not be read.
    #[error("could not reach Herald")]
    Transport(#[from] reqwest::Error),
    /// Herald answered with an error status.
    #[error("Herald answered {status}: {body}")]
    Status {
        /// The HTTP status Herald answered with.
        status: reqwest::StatusCode,
        /// Herald's error body, for the log.
        body: String,
    },
}

/// Herald's base URL and an organisation token.
#[derive(Clone)]
pub struct HeraldClient {
    /// For example `http://127.0.0.1:8080`, without a trailing slash.
    base_url: String,
    /// Sent as `Authorization: Bearer` on every call; never printed.
    token: String,
    /// Shared so that connections to Herald are reused.
    http: reqwest::Client,
}

impl std::fmt::Debug for HeraldClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("HeraldClient").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// The fields of Herald's answers the examples read.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    /// The Herald id (`app_…`, `ep_…`, `msg_…`).
    pub id: String,
}

impl HeraldClient {
    pub fn new(base_url: &str, token: &str) -> HeraldClient {
        HeraldClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Returns the application with this `uid`, creating it if needed.
    pub async fn application(&self, uid: &str, name: &str) -> Result<Created, HeraldError> {
        self.send(
            reqwest::Method::POST,
            "/api/v1/app?get_if_exists=true",
            Some(json!({"uid": uid, "name": name})),
        )
        .await
    }

    /// Registers `url` on the application; every delivery carries `Authorization: Bearer
    /// <bearer_token>` (a Herald extension field) besides the signature.
    pub async fn create_endpoint(
        &self,
        app_id: &str,
        url: &str,
        bearer_token: &str,
    ) -> Result<Created, HeraldError> {
        let body =
            json!({"url": url, "bearerToken": bearer_token, "description": "purchase-order callbacks"});
        self.send(reqwest::Method::POST, &format!("/api/v1/app/{app_id}/endpoint"), Some(body)).await
    }

    /// Changes an endpoint's URL, and its bearer token when one is given (PATCH leaves the
    /// other fields as they are).
    pub async fn update_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        url: &str,
        bearer_token: Option<&str>,
    ) -> Result<Created, HeraldError> {
        let mut body = json!({"url": url});
        if let Some(token) = bearer_token {
            body["bearerToken"] = json!(token);
        }
        let path = format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}");
        self.send(reqwest::Method::PATCH, &path, Some(body)).await
    }

    /// Sends a message to every endpoint of the application.
    pub async fn send_message(
        &self,
        app_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<Created, HeraldError> {
        let body = json!({"eventType": event_type, "payload": payload});
        self.send(reqwest::Method::POST, &format!("/api/v1/app/{app_id}/msg"), Some(body)).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, HeraldError> {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(HeraldError::Status { status, body });
        }
        Ok(response.json().await?)
    }
}
