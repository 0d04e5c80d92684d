//! The `idempotency-key` header: a POST retried with the same key, token and URL within 12
//! hours gets the first successful response again instead of running twice.
//!
//! Keys live in the store, so a replay survives a restart. While the first request runs, a
//! second one with the same key gets 409. A request that fails releases its key.
//!
//! The caller is authenticated before a key is claimed: a request without a valid token
//! writes nothing and is never answered with a stored response. Every successful response is
//! kept whatever its size (a handler's response is already in memory, and bounded by the
//! request's body limit), so a retry is always a replay and never stores a second copy.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use herald_core::store::{IdempotencyClaim, IdempotencyKey, StoredResponse};
use sha2::{Digest, Sha256};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::ApiError;

/// How long a successful response is replayed.
const REPLAY_WINDOW: Duration = Duration::hours(12);
/// How long a claim blocks its key if the request never finishes (e.g. the process died).
const CLAIM_LEASE: Duration = Duration::minutes(2);
/// The longest idempotency key accepted.
const MAX_KEY_LENGTH: usize = 256;
/// The header set on replayed responses.
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Middleware applying idempotency keys to POST requests.
pub async fn idempotency(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get("idempotency-key") else {
        return next.run(request).await;
    };
    let key = key.to_str().ok().filter(|key| (1..=MAX_KEY_LENGTH).contains(&key.len())).map(str::to_owned);
    // Authenticated first: a caller without a valid token must cause no write (a claim) and
    // get no stored response. The handler finds the caller in the extensions, checked once.
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    parts.extensions.insert(caller);
    let request = Request::from_parts(parts, body);
    let Some(key) = key else {
        return ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: format!(
                "the idempotency-key header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"
            ),
        }
        .into_response();
    };
    // The key is scoped to the caller's token and the exact URL, and stored only as a hash.
    let authorization = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let mut hasher = Sha256::new();
    for part in [authorization.unwrap_or_default(), request.uri().to_string().as_bytes(), key.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let stored_key = IdempotencyKey(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect());

    let now = herald_core::model::now();
    match state.store().claim_idempotency_key(&stored_key, now, now + CLAIM_LEASE).await {
        Err(error) => return ApiError::from(error).into_response(),
        Ok(IdempotencyClaim::InProgress) => {
            return ApiError::Conflict(
                "a request with this idempotency key is still in progress; retry later".to_owned(),
            )
            .into_response();
        }
        Ok(IdempotencyClaim::Completed(stored)) => return replay(stored),
        Ok(IdempotencyClaim::Claimed) => {}
    }

    let response = next.run(request).await;
    if !response.status().is_success() {
        if let Err(error) = state.store().release_idempotency_key(&stored_key).await {
            tracing::warn!(error = %error, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    // No size limit: the body is already in memory (handlers answer with JSON they built), and
    // a response left out would make the retry run the request a second time.
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            // Only a streamed body can fail here, and no handler streams one; the key stays
            // claimed (so no retry runs before the claim lease ends) and the cause is logged.
            return ApiError::Internal(Box::new(error)).into_response();
        }
    };
    let stored = StoredResponse { status: parts.status.as_u16(), body: bytes.to_vec() };
    if let Err(error) =
        state.store().complete_idempotency_key(&stored_key, &stored, now + REPLAY_WINDOW).await
    {
        tracing::warn!(error = %error, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
