//! An endpoint's credentials: its signing secret (get, rotate) and its custom headers.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_core::change::{EndpointChange, HeadersChange, KeyRotation};
use herald_core::headers::is_sensitive;
use herald_core::secret::SigningSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::endpoint::{endpoint_key, load, parse_headers};
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::Body;

/// The longest grace period a rotation may give the old key (7 days, as in Svix).
const MAX_GRACE_PERIOD_SECONDS: u32 = 604_800;
/// The grace period when none is given (24 hours).
const DEFAULT_GRACE_PERIOD_SECONDS: u32 = 86_400;

/// The key a receiver verifies signatures with.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// `whsec_…` for HMAC endpoints; `whpk_…` (the public key) for ed25519 endpoints.
    pub key: String,
}

/// A rotation request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret; generated when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old key keeps signing, 0 to 604800 seconds (default 86400).
    #[serde(default)]
    pub grace_period_seconds: Option<u32>,
}

/// Custom headers; sensitive values are withheld and their names listed in `sensitive`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    pub headers: BTreeMap<String, String>,
    pub sensitive: BTreeSet<String>,
}

/// The complete set of custom headers.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    pub headers: BTreeMap<String, String>,
}

/// Headers to add or change (`null` removes one), and names to remove.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    #[schema(value_type = BTreeMap<String, Option<String>>)]
    pub headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub delete_headers: Option<Vec<String>>,
}

/// Get the key that verifies an endpoint's signatures.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 200, body = EndpointSecretOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointSecretOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = load(&state, &app, &endpoint_id).await?;
    Ok(Json(EndpointSecretOut { key: endpoint.keys.current.verification_key() }))
}

/// Replace the signing secret; the old one keeps signing during the grace period.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointSecretRotateIn,
    responses((status = 200, description = "The new key", body = EndpointSecretOut), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointSecretRotateIn>,
) -> Result<Json<EndpointSecretOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    let next = match body.key.as_deref() {
        Some(key) => v.check("key", SigningSecret::parse(key)),
        None => Some(SigningSecret::generate_hmac()),
    };
    let grace = body.grace_period_seconds.unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS);
    if grace > MAX_GRACE_PERIOD_SECONDS {
        v.fail("gracePeriodSeconds", format!("must be at most {MAX_GRACE_PERIOD_SECONDS}"));
    }
    v.finish()?;
    let next = next.ok_or_else(|| ApiError::invalid_field("key", "invalid key"))?;
    let rotation = KeyRotation { next, grace: chrono::Duration::seconds(i64::from(grace)) };
    let change = EndpointChange { rotate_key: Some(rotation), ..EndpointChange::default() };
    let endpoint = state.service().change_endpoint(&app.id, &endpoint_key(&endpoint_id)?, &change).await?;
    Ok(Json(EndpointSecretOut { key: endpoint.keys.current.verification_key() }))
}

/// Get an endpoint's custom headers.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 200, body = EndpointHeadersOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get_headers(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointHeadersOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = load(&state, &app, &endpoint_id).await?;
    let mut out = EndpointHeadersOut { headers: BTreeMap::new(), sensitive: BTreeSet::new() };
    for (name, value) in endpoint.headers {
        if is_sensitive(&name) {
            out.sensitive.insert(name);
        } else {
            out.headers.insert(name, value.expose().to_owned());
        }
    }
    Ok(Json(out))
}

/// Replace an endpoint's custom headers.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "Replaced"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn put_headers(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointHeadersIn>,
) -> Result<StatusCode, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    let headers = parse_headers(&mut v, body.headers);
    v.finish()?;
    let change =
        EndpointChange { headers: Some(HeadersChange::Replace(headers)), ..EndpointChange::default() };
    state.service().change_endpoint(&app.id, &endpoint_key(&endpoint_id)?, &change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add, change or remove some of an endpoint's custom headers.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointHeadersPatchIn,
    responses((status = 204, description = "Updated"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch_headers(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointHeadersPatchIn>,
) -> Result<StatusCode, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    let mut remove: Vec<String> = body.delete_headers.unwrap_or_default();
    let mut set = BTreeMap::new();
    for (name, value) in body.headers {
        match value {
            Some(value) => {
                set.insert(name, value);
            }
            None => remove.push(name),
        }
    }
    let set = parse_headers(&mut v, set);
    v.finish()?;
    let change =
        EndpointChange { headers: Some(HeadersChange::Edit { set, remove }), ..EndpointChange::default() };
    state.service().change_endpoint(&app.id, &endpoint_key(&endpoint_id)?, &change).await?;
    Ok(StatusCode::NO_CONTENT)
}
