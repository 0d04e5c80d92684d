//! `/ingest/api/v1/source/{source_id}/endpoint`: a source's destinations (Svix's
//! `ingest.endpoint`), which are the endpoints of the application behind the source. Each
//! handler resolves the source and answers as the endpoint handler for that application does,
//! so a destination is an endpoint in everything: signing, retries, headers, attempts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::endpoint::{self, EndpointIn, EndpointOut};
use crate::api::endpoint_secret::{
    self, EndpointHeadersIn, EndpointHeadersOut, EndpointSecretOut, EndpointSecretRotateIn,
};
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError};
use crate::api::extract::{Body, Query};
use crate::api::pagination::{ListParams, ListResponse};
use crate::api::transformation::{self, EndpointTransformationOut, EndpointTransformationPatch};

/// The id of the application behind the source (organisation tokens only).
async fn app_of(state: &ApiState, caller: &Caller, source_id: &str) -> Result<String, ApiError> {
    caller.require_organization()?;
    let key = crate::service::Service::source_key(source_id)?;
    Ok(state.service().source(&key).await?.app_id.to_string())
}

/// List a source's destinations.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"), ListParams),
    responses((status = 200, body = ListResponse<EndpointOut>), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
    query: Query<ListParams>,
) -> Result<Json<ListResponse<EndpointOut>>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint::list(State(state), caller, Path(app), query).await
}

/// Add a destination: forwarded events are signed with its secret (Standard Webhooks).
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/endpoint", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
    body: Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint::create(State(state), caller, Path(app), body).await
}

/// Get a destination.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    responses((status = 200, body = EndpointOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointOut>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint::get(State(state), caller, Path((app, endpoint_id))).await
}

/// Replace a destination, creating it (with the path as its uid) when it does not exist.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    request_body = EndpointIn,
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
    body: Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint::upsert(State(state), caller, Path((app, endpoint_id)), body).await
}

/// Delete a destination.
#[utoipa::path(delete, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    responses((status = 204, description = "Deleted"), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint::delete(State(state), caller, Path((app, endpoint_id))).await
}

/// Get the key that verifies a destination's signatures.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    responses((status = 200, body = EndpointSecretOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointSecretOut>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint_secret::get_secret(State(state), caller, Path((app, endpoint_id))).await
}

/// Replace a destination's signing secret; the old one keeps signing during the grace period.
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret/rotate", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    request_body = EndpointSecretRotateIn,
    responses((status = 200, body = EndpointSecretOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
    body: Body<EndpointSecretRotateIn>,
) -> Result<Json<EndpointSecretOut>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint_secret::rotate_secret(State(state), caller, Path((app, endpoint_id)), body).await
}

/// Get a destination's custom headers.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    responses((status = 200, body = EndpointHeadersOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get_headers(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointHeadersOut>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint_secret::get_headers(State(state), caller, Path((app, endpoint_id))).await
}

/// Replace a destination's custom headers.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "Replaced"), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn put_headers(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
    body: Body<EndpointHeadersIn>,
) -> Result<StatusCode, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    endpoint_secret::put_headers(State(state), caller, Path((app, endpoint_id)), body).await
}

/// Get a destination's transformation.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/transformation", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    responses((status = 200, body = EndpointTransformationOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get_transformation(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointTransformationOut>, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    transformation::get(State(state), caller, Path((app, endpoint_id))).await
}

/// Set, enable, disable or remove a destination's transformation (run on each forwarded
/// event's JSON body before it is signed; a body that is not JSON fails the delivery).
#[utoipa::path(patch, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/transformation", tag = "Ingest Endpoint",
    params(("source_id" = String, Path, description = "The source's id or uid"),
           ("endpoint_id" = String, Path, description = "The destination's id or uid")),
    request_body = EndpointTransformationPatch,
    responses((status = 204, description = "Changed"), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch_transformation(
    State(state): State<ApiState>,
    caller: Caller,
    Path((source_id, endpoint_id)): Path<(String, String)>,
    body: Body<EndpointTransformationPatch>,
) -> Result<StatusCode, ApiError> {
    let app = app_of(&state, &caller, &source_id).await?;
    transformation::patch(State(state), caller, Path((app, endpoint_id)), body).await
}
