//! Sending one request to the API and turning its answer into JSON or an [`ApiError`] that
//! reads well on a terminal. Knows nothing about particular resources.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::Value;

/// How long one request may take before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An API server and the token to use with it.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// The base URL without a trailing slash, e.g. `http://127.0.0.1:8040`.
    base_url: String,
    /// Sent as a bearer token when present; without one the server answers 401.
    token: Option<String>,
    /// Reused for every request of one command.
    http: reqwest::Client,
}

/// An error answer from the server, displayed as `<code>: <detail>`, or for a 422 as one
/// `<loc>: <msg>` line per invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// The stable error code (`validation_error` for a 422).
    pub code: String,
    /// The sentence for people, or for a 422 the invalid fields as `(loc, msg)`.
    pub detail: String,
    /// For a 422: each invalid field's location (joined with dots) and message.
    pub fields: Vec<(String, String)>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code, self.detail)?;
        for (loc, msg) in &self.fields {
            write!(formatter, "\n  {loc}: {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Reads an error body; a body that is not Herald's JSON shape is kept as the detail.
    fn from_body(status: u16, body: &[u8]) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let fallback = || String::from_utf8_lossy(body).trim().to_owned();
        let Some(value) = parsed else {
            return ApiError {
                status,
                code: format!("http_{status}"),
                detail: fallback(),
                fields: Vec::new(),
            };
        };
        if let Some(items) = value.get("detail").and_then(Value::as_array) {
            let fields = items
                .iter()
                .map(|item| {
                    let loc = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|parts| {
                            parts
                                .iter()
                                .map(|part| part.as_str().map_or_else(|| part.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let msg = item.get("msg").and_then(Value::as_str).unwrap_or_default().to_owned();
                    (loc, msg)
                })
                .collect();
            return ApiError {
                status,
                code: "validation_error".to_owned(),
                detail: "the request is invalid".to_owned(),
                fields,
            };
        }
        let code =
            value.get("code").and_then(Value::as_str).map_or_else(|| format!("http_{status}"), str::to_owned);
        let detail = value.get("detail").and_then(Value::as_str).map_or_else(fallback, str::to_owned);
        ApiError { status, code, detail, fields: Vec::new() }
    }
}

impl ApiClient {
    /// A client for the server at `base_url` (`http://` or `https://`).
    pub fn new(base_url: &str, token: Option<String>) -> anyhow::Result<Self> {
        // `127.0.0.1:8040` fails to parse, `localhost:8040` parses with the scheme `localhost`:
        // both lack `http://`, which is what to say.
        let hint = if base_url.contains("://") {
            String::new()
        } else {
            format!(" (did you mean http://{base_url}?)")
        };
        let parsed =
            url::Url::parse(base_url).with_context(|| format!("--url {base_url:?} is not a URL{hint}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("--url {base_url:?} must start with http:// or https://{hint}");
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("could not build an HTTP client")?;
        Ok(ApiClient { base_url: base_url.trim_end_matches('/').to_owned(), token, http })
    }

    /// Sends a request and returns the JSON answer (`Null` for an empty body, e.g. 204).
    /// Server errors come back as an [`ApiError`] inside the `anyhow::Error`.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let body = body.map(Value::to_string);
        self.request_text(method, path, body).await
    }

    /// Like [`Self::request`], with a body already written as JSON text (sent as it is).
    async fn request_text(&self, method: Method, path: &str, body: Option<String>) -> anyhow::Result<Value> {
        let (status, bytes) = self.send(method, path, body).await?;
        if !status.is_success() {
            let mut error = ApiError::from_body(status.as_u16(), &bytes);
            if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
                error.detail.push_str(
                    "; no API token was given: set HERALD_TOKEN, pass --token, or put `token` in \
                     ~/.config/herald/client.toml (`herald token create` makes one)",
                );
            }
            return Err(error.into());
        }
        parse_json(&bytes, path)
    }

    /// POSTs a body that is already JSON text, byte for byte.
    pub async fn post_text(&self, path: &str, body: String) -> anyhow::Result<Value> {
        self.request_text(Method::POST, path, Some(body)).await
    }

    /// GETs `path` and returns its status and JSON body whatever the status (a readiness
    /// probe answers 503 with a report worth reading).
    pub async fn get_with_status(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let (status, bytes) = self.send(Method::GET, path, None).await?;
        Ok((status.as_u16(), parse_json(&bytes, path)?))
    }

    /// GETs a text resource (`/metrics`); a status other than 2xx is an error.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let (status, bytes) = self.send(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(ApiError::from_body(status.as_u16(), &bytes).into());
        }
        String::from_utf8(bytes).with_context(|| format!("the answer from {path} is not text"))
    }

    /// Sends a request and reads the whole answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let url = format!("{}{}", self.base_url, path);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                anyhow::anyhow!("could not reach the Herald server at {}: {error}", self.base_url)
            } else if error.is_timeout() {
                anyhow::anyhow!(
                    "the Herald server at {} did not answer within {REQUEST_TIMEOUT:?}",
                    self.base_url
                )
            } else {
                anyhow::anyhow!("the request to {url} failed: {error}")
            }
        })?;
        let status = response.status();
        let bytes =
            response.bytes().await.with_context(|| format!("could not read the answer from {url}"))?;
        Ok((status, bytes.to_vec()))
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::DELETE, path, None).await
    }
}

/// Parses an answer's JSON body (`Null` when empty).
fn parse_json(bytes: &[u8], path: &str) -> anyhow::Result<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).with_context(|| format!("the answer from {path} is not JSON"))
}

/// Escapes one path segment (ids and uids are plain, but a typo must not change the route).
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}
