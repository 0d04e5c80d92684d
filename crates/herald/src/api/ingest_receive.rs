//! `POST /in/{token}`: a source's ingest URL, where the provider sends. No bearer token: the
//! unguessable token in the path is the address, and the provider's signature (verified by the
//! source's type) the credential. Answered as soon as the event is stored; forwarding to the
//! destinations happens in the delivery engine.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use herald_core::ingest::RefusalReason;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::error::{ApiError, HttpErrorOut};
use crate::service::{Incoming, Received};

/// What the ingest URL answers when it took the event.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAcceptedOut {
    /// The message the event became (the same one for a duplicate).
    pub id: String,
    /// Whether the event repeated a delivery id accepted within the deduplication window (and
    /// so is not forwarded again).
    pub duplicate: bool,
}

/// Receive an event from a provider (any content type; the body is forwarded byte for byte).
#[utoipa::path(post, path = "/in/{token}", tag = "Ingest",
    params(("token" = String, Path, description = "The source's ingest token (from its `ingestUrl`)")),
    request_body(content = String, content_type = "*/*", description = "The provider's request, as it sends it"),
    responses((status = 200, body = IngestAcceptedOut, description = "Stored (or a duplicate); or a URL check's answer"),
              (status = 401, body = HttpErrorOut, description = "Signature, credentials or timestamp did not verify"),
              (status = 404, body = HttpErrorOut, description = "No source has this token"),
              (status = 413, body = HttpErrorOut, description = "Larger than `ingest_max_body_bytes`")))]
pub async fn receive(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let address = peer.map_or_else(String::new, |axum::Extension(ConnectInfo(addr))| addr.ip().to_string());
    let service = state.service();
    let source = service.source_by_token(&token).await?;
    let limit = state.ingest().max_body_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        // Too large (or cut off while reading): refused, logged, and nothing stored.
        service.refuse(&source, RefusalReason::TooLarge, &address).await;
        return Err(ApiError::PayloadTooLarge(limit));
    };
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let incoming = Incoming {
        token: &token,
        method: method.as_str(),
        url: format!("{}{path}", state.public_url()),
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
        address,
    };
    let answer = match service.receive(&source, incoming).await? {
        Received::Accepted(id) => serde_json::json!({ "id": id.to_string(), "duplicate": false }),
        Received::Duplicate(id) => serde_json::json!({ "id": id.to_string(), "duplicate": true }),
        Received::Challenge(answer) => answer,
    };
    Ok((StatusCode::OK, Json(answer)))
}
