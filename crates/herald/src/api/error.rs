//! API errors: one enum, mapped once to a status code and a JSON body.
//!
//! Every error response has a JSON body: `{"code","detail"}`, or for 422
//! `{"detail":[{"loc","msg","type"}]}` as the Svix SDKs expect. The cause of a 500 goes to the
//! log, never to the client.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::StoreError;

use crate::service::{Resource, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error body: a stable machine-readable `code` and a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpErrorOut {
    pub code: String,
    pub detail: String,
}

/// One problem with one field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidationErrorItem {
    /// Where the problem is, e.g. `["body", "url"]` or `["query", "limit"]`.
    pub loc: Vec<String>,
    pub msg: String,
    /// A machine-readable kind, e.g. `value_error`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of a 422 response.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpValidationError {
    pub detail: Vec<ValidationErrorItem>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<ValidationErrorItem>),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("this route does not support the request's method")]
    MethodNotAllowed,
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error(
        "the server is handling as many requests as it is configured to ({0}); retry after the \
         number of seconds in Retry-After"
    )]
    Overloaded(usize),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A use case's failure, with its own stable code.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    /// A 422 for one field of the body.
    pub fn invalid_field(field: &str, msg: impl Into<String>) -> Self {
        Self::Validation(vec![ValidationErrorItem {
            loc: vec!["body".to_owned(), field.to_owned()],
            msg: msg.into(),
            kind: "value_error".to_owned(),
        }])
    }

    /// A 404 for a kind of resource, with that kind's code (e.g. `endpoint_not_found`).
    pub fn not_found(resource: Resource) -> Self {
        Self::Service(ServiceError::NotFound(resource))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what } => {
                Self::Conflict(format!("an item with this {what} already exists"))
            }
            StoreError::NotFound => Self::NotFound("the item no longer exists".to_owned()),
            other => Self::Internal(Box::new(other)),
        }
    }
}

/// Logs an internal error with its whole cause chain.
fn log_internal(error: &(dyn std::error::Error + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "request failed with an internal error");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Service(error) => return service_error_response(error),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "authentication_failed"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_access"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Internal(source) => {
                log_internal(source.as_ref());
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
            Self::Validation(items) => {
                let body = HttpValidationError { detail: items.clone() };
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            }
        };
        let detail = match &self {
            Self::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        let mut response = (status, Json(HttpErrorOut { code: code.to_owned(), detail })).into_response();
        if let Self::Overloaded(_) = self {
            // Requests finish in milliseconds; a second is long enough for slots to free up.
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The response for a use case's failure: its status, and its code in the body.
fn service_error_response(error: &ServiceError) -> Response {
    let status = match error {
        ServiceError::NotFound(_) | ServiceError::ConsentCallbackUnknown => StatusCode::NOT_FOUND,
        ServiceError::IngestRefused(_) => StatusCode::UNAUTHORIZED,
        ServiceError::UidTaken(_) | ServiceError::EventIdTaken | ServiceError::EventTypeExists(_) => {
            StatusCode::CONFLICT
        }
        ServiceError::ScriptFailed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::PayloadDoesNotMatch { version, violations } => {
            let body = HttpValidationError {
                detail: violations
                    .iter()
                    .map(|violation| ValidationErrorItem {
                        loc: ["body", "payload"]
                            .into_iter()
                            .map(str::to_owned)
                            .chain(
                                violation
                                    .path
                                    .split('/')
                                    .skip(1)
                                    .map(|s| s.replace("~1", "/").replace("~0", "~")),
                            )
                            .collect(),
                        msg: format!("{} (the schema of version {version})", violation.reason),
                        kind: error.code().to_owned(),
                    })
                    .collect(),
            };
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
        ServiceError::UnknownEventTypes(_)
        | ServiceError::Invalid { .. }
        | ServiceError::UnroutableUrl(_)
        | ServiceError::ScriptDoesNotCompile { .. } => {
            let field = match error {
                ServiceError::Invalid { field, .. } => (*field).to_owned(),
                ServiceError::ScriptDoesNotCompile { field, .. } => field.clone(),
                ServiceError::UnroutableUrl(_) => "url".to_owned(),
                _ => "eventTypes".to_owned(),
            };
            let body = HttpValidationError {
                detail: vec![ValidationErrorItem {
                    loc: vec!["body".to_owned(), field],
                    msg: error.to_string(),
                    kind: error.code().to_owned(),
                }],
            };
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
        ServiceError::Store(source) => {
            log_internal(source);
            let body =
                HttpErrorOut { code: error.code().to_owned(), detail: "internal server error".to_owned() };
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
    };
    (status, Json(HttpErrorOut { code: error.code().to_owned(), detail: error.to_string() })).into_response()
}

/// The longest plain-text error kept as the `detail` of its JSON replacement.
const MAX_PLAIN_ERROR: usize = 4096;

/// Middleware giving every error response a JSON body. Handlers answer with [`ApiError`]
/// already; this catches what the framework answers before a handler runs (a path segment
/// that is not UTF-8 or not of its type: axum's `Path` rejection is a 400 in plain text) and
/// anything else that left a plain-text or empty error.
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = match response.headers().get(axum::http::header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.as_bytes().starts_with(b"text/plain"),
    };
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, detail) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", text),
        StatusCode::NOT_FOUND => ("not_found", text),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", text),
        status if status.is_server_error() => {
            tracing::error!(status = %status, error = %text, "request failed before reaching a handler");
            ("internal_error", "internal server error".to_owned())
        }
        _ => ("invalid_request", text),
    };
    let detail =
        if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { detail };
    let mut replacement = (status, Json(HttpErrorOut { code: code.to_owned(), detail })).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            replacement.headers_mut().append(name, value.clone());
        }
    }
    replacement
}

/// Collects field errors so a request gets all its problems reported at once.
#[derive(Debug, Default)]
pub struct Validator {
    items: Vec<ValidationErrorItem>,
}

impl Validator {
    /// Records `result`'s error against `field` of the body, passing a success through.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(field, error.to_string());
                None
            }
        }
    }

    /// Records a problem with `field` of the body.
    pub fn fail(&mut self, field: &str, msg: impl Into<String>) {
        self.items.push(ValidationErrorItem {
            loc: field.split('.').fold(vec!["body".to_owned()], |mut loc, part| {
                loc.push(part.to_owned());
                loc
            }),
            msg: msg.into(),
            kind: "value_error".to_owned(),
        });
    }

    /// `Ok` if nothing was recorded, else the 422 with every problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.items.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.items)) }
    }
}
