//! An endpoint's transformation, with the shapes of Svix's API (`…/transformation`,
//! `…/transformation/simulate`), so its SDKs' `endpoint.transformation` calls work.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::change::TransformationChange;
use herald_core::name::EventTypeName;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::endpoint::{endpoint_key, load};
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, double_option};

/// The shortest code accepted (as in Svix's API); `function handler(w){}` is longer.
const MIN_CODE_BYTES: usize = 10;

/// An endpoint's transformation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTransformationOut {
    /// JavaScript defining `function handler(webhook)`; `null` when none was set.
    pub code: Option<String>,
    /// Whether it runs before each delivery.
    pub enabled: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Changes to an endpoint's transformation; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTransformationPatch {
    /// JavaScript defining `function handler(webhook)`: `webhook` has `eventType` (read-only),
    /// `payload`, `url`, `method` (`POST`, `PUT` or `PATCH`) and `cancel`; what it returns is
    /// sent (`cancel: true` sends nothing). At most 51,200 bytes. `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Option<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Not supported by Herald: only absent, `null` or empty is accepted.
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
}

/// A transformation to try on a payload, without sending anything.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationSimulateIn {
    pub code: String,
    pub event_type: String,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Not supported by Herald: only absent, `null` or empty is accepted.
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
}

/// What the transformation would send.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationSimulateOut {
    /// Where it would be sent (credentials in it masked).
    pub url: String,
    /// The body it would send, as JSON text.
    pub payload: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: Option<String>,
    /// Whether the delivery would be cancelled (nothing sent).
    pub cancel: bool,
}

fn check_code(v: &mut Validator, code: &str) {
    if code.len() < MIN_CODE_BYTES {
        v.fail("code", format!("must be at least {MIN_CODE_BYTES} bytes"));
    }
    if code.len() > herald_script::MAX_SOURCE_BYTES {
        v.fail("code", format!("must be at most {} bytes", herald_script::MAX_SOURCE_BYTES));
    }
}

fn check_variables(v: &mut Validator, variables: Option<&BTreeMap<String, String>>) {
    if variables.is_some_and(|vars| !vars.is_empty()) {
        v.fail("variables", "transformation variables are not supported; put values in the code");
    }
}

/// Get an endpoint's transformation.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 200, body = EndpointTransformationOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointTransformationOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = load(&state, &app, &endpoint_id).await?;
    let t = endpoint.transformation;
    Ok(Json(EndpointTransformationOut { code: t.code, enabled: t.enabled, updated_at: t.updated_at }))
}

/// Set, enable, disable or remove an endpoint's transformation.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointTransformationPatch,
    responses((status = 204, description = "Changed"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointTransformationPatch>,
) -> Result<StatusCode, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    if let Some(Some(code)) = &body.code {
        check_code(&mut v, code);
    }
    check_variables(&mut v, body.variables.as_ref());
    v.finish()?;
    let change = TransformationChange { code: body.code, enabled: body.enabled };
    state.service().change_transformation(&app.id, &endpoint_key(&endpoint_id)?, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a transformation on a payload, as a delivery to this endpoint would, without sending.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = TransformationSimulateIn,
    responses((status = 200, body = TransformationSimulateOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn simulate(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<TransformationSimulateIn>,
) -> Result<Json<TransformationSimulateOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    check_code(&mut v, &body.code);
    check_variables(&mut v, body.variables.as_ref());
    let event_type = v.check("eventType", EventTypeName::parse(&body.event_type));
    if !body.payload.get().trim_start().starts_with('{') {
        v.fail("payload", "the payload must be a JSON object");
    }
    v.finish()?;
    let event_type = event_type.ok_or_else(|| ApiError::invalid_field("eventType", "invalid event type"))?;
    let endpoint = load(&state, &app, &endpoint_id).await?;
    let out = state
        .service()
        .simulate_transformation(&endpoint, &body.code, &event_type, body.payload.get().as_bytes())
        .await?;
    Ok(Json(TransformationSimulateOut {
        url: herald_core::endpoint_url::masked(&out.url),
        payload: String::from_utf8_lossy(&out.payload).into_owned(),
        method: Some(out.method.to_string()),
        cancel: out.cancel,
    }))
}
