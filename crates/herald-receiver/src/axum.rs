//! The axum integration (feature `axum`): [`VerifiedWebhook`], an extractor that reads the
//! body and verifies it with the [`Verifier`] in the router state, and [`WebhookRejection`],
//! the JSON error it answers with otherwise.
//!
//! Only adapts requests and responses; every decision is [`Verifier::verify`]'s.

use ::axum::body::Bytes;
use ::axum::extract::rejection::BytesRejection;
use ::axum::extract::{FromRef, FromRequest, Request};
use ::axum::http::{StatusCode, header};
use ::axum::response::{IntoResponse, Response};

use crate::{Verifier, VerifyError};

/// A request whose signature checked out, with its body.
///
/// Takes the body, so it must be the last argument of a handler. The [`Verifier`] comes from
/// the router state: the state can be the `Verifier` itself, or any state with a
/// `FromRef<State> for Verifier` implementation. The body is read under axum's
/// `DefaultBodyLimit` (2 MB unless changed).
///
/// ```
/// use axum::{Router, http::StatusCode, routing::post};
/// use herald_receiver::{Verifier, axum::VerifiedWebhook};
///
/// async fn receive(webhook: VerifiedWebhook) -> StatusCode {
///     println!("{} sent {} bytes", webhook.id, webhook.body.len());
///     StatusCode::NO_CONTENT
/// }
///
/// # fn main() -> Result<(), herald_receiver::KeyError> {
/// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let app: Router = Router::new().route("/webhook", post(receive)).with_state(verifier);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// The message id (`webhook-id`), the same on every retry: the key for ignoring
    /// duplicates.
    pub id: String,
    /// When the sender signed this attempt, in unix seconds.
    pub timestamp: i64,
    /// The position of the key that matched, in the order the keys were given.
    pub key_index: usize,
    /// The body exactly as signed; parse it only now that it is trusted.
    pub body: Bytes,
}

/// Why [`VerifiedWebhook`] refused a request. As a response: `401` with
/// `{"code": "...", "detail": "..."}` when verification failed (`code` is
/// [`VerifyError::code`]), or the body error's own status (e.g. `413`) with the code
/// `body_too_large` or `invalid_body`. No response names a key or echoes a signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The headers or the signature did not verify.
    #[error(transparent)]
    Unverified(#[from] VerifyError),
    /// The body could not be read, e.g. it was larger than the body limit.
    #[error(transparent)]
    Body(#[from] BytesRejection),
}

impl<S> FromRequest<S> for VerifiedWebhook
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &S) -> Result<VerifiedWebhook, WebhookRejection> {
        let verifier = Verifier::from_ref(state);
        // The headers are needed after the body has consumed the request; a handful of
        // small values is cheap to copy next to hashing the body.
        let headers = request.headers().clone();
        // Refuse requests without the headers, or outside the time window, before reading a
        // body that will be thrown away.
        let now = crate::verify::unix_now();
        verifier.check_headers(&headers, now)?;
        let body = Bytes::from_request(request, state).await?;
        let verified = verifier.verify_at(&headers, &body, now)?;
        Ok(VerifiedWebhook {
            id: verified.id,
            timestamp: verified.timestamp,
            key_index: verified.key_index,
            body,
        })
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self {
            WebhookRejection::Unverified(error) => {
                (StatusCode::UNAUTHORIZED, error.code(), error.to_string())
            }
            WebhookRejection::Body(rejection) => {
                let status = rejection.status();
                let code =
                    if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "invalid_body" };
                (status, code, rejection.body_text())
            }
        };
        let body = serde_json::json!({ "code": code, "detail": detail }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
