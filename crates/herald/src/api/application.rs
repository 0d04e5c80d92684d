//! `/api/v1/app`: applications, one per customer of the operator.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::change::ApplicationChange;
use herald_core::id::ApplicationId;
use herald_core::model::Application;
use herald_core::name::{Metadata, Uid};
use herald_core::store::Ordering;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::{Caller, application_key};
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, Query, double_option};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::{NewApplication, Resource, Upserted};

/// A new application, or the full new state of one (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    /// An alias usable wherever the id is: letters, digits, `-`, `_`, `.`; unique.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Maximum messages per second delivered to each endpoint (at least 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub throttle_rate: Option<u16>,
    /// The newer name of `throttleRate`; wins when both are given.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub rate_limit: Option<u16>,
}

/// Changes to an application; absent fields stay as they are, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u16>)]
    pub rate_limit: Option<Option<u16>>,
}

/// An application as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: Metadata,
    pub throttle_rate: Option<u16>,
    pub rate_limit: Option<u16>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        Self {
            id: app.id.to_string(),
            uid: app.uid.map(|u| u.to_string()),
            name: app.name,
            metadata: app.metadata,
            throttle_rate: app.throttle_rate,
            rate_limit: app.throttle_rate,
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}

/// Query of `POST /api/v1/app`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// Return the existing application (200) instead of 409 when the `uid` is taken.
    #[serde(default)]
    pub get_if_exists: bool,
}

/// The validated fields of an [`ApplicationIn`].
fn validate_name(v: &mut Validator, name: &str) {
    if name.trim().is_empty() {
        v.fail("name", "name must not be empty");
    }
}

fn validate_rate(v: &mut Validator, field: &str, rate: Option<u16>) {
    if rate == Some(0) {
        v.fail(field, "must be at least 1 (leave it out for no limit)");
    }
}

/// Parses a uid, which must not have the shape of an id (lookups try ids first, so such a
/// uid could never be used).
fn parse_uid(v: &mut Validator, text: &str) -> Option<Uid> {
    let uid = v.check("uid", Uid::parse(text))?;
    if ApplicationId::looks_like(uid.as_str()) {
        v.fail("uid", "a uid must not look like an application id");
        return None;
    }
    Some(uid)
}

fn validate_in(body: ApplicationIn) -> Result<NewApplication, ApiError> {
    let mut v = Validator::default();
    validate_name(&mut v, &body.name);
    let uid = body.uid.as_deref().and_then(|u| parse_uid(&mut v, u));
    validate_rate(&mut v, "throttleRate", body.throttle_rate);
    validate_rate(&mut v, "rateLimit", body.rate_limit);
    v.finish()?;
    Ok(NewApplication {
        name: body.name,
        uid,
        metadata: body.metadata.unwrap_or_default(),
        throttle_rate: body.rate_limit.or(body.throttle_rate),
    })
}

/// List applications.
#[utoipa::path(get, path = "/api/v1/app", tag = "Application", params(ListParams),
    responses((status = 200, body = ListResponse<ApplicationOut>), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<ListResponse<ApplicationOut>>, ApiError> {
    caller.require_organization()?;
    let request = params.page_request(Ordering::Ascending)?;
    let page = state.store().list_applications(&request).await?;
    Ok(Json(ListResponse::from_page(page, &request, |a| a.id.to_string(), ApplicationOut::from)))
}

/// Create an application.
#[utoipa::path(post, path = "/api/v1/app", tag = "Application", params(CreateParams),
    request_body = ApplicationIn,
    responses((status = 201, body = ApplicationOut), (status = 200, description = "Existing application (`get_if_exists`)", body = ApplicationOut),
              (status = 401, body = HttpErrorOut), (status = 409, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<CreateParams>,
    Body(body): Body<ApplicationIn>,
) -> Result<(StatusCode, Json<ApplicationOut>), ApiError> {
    caller.require_organization()?;
    let new = validate_in(body)?;
    let (app, upserted) = state.service().create_application(new, params.get_if_exists).await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(app.into())))
}

/// Get an application by id or uid.
#[utoipa::path(get, path = "/api/v1/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    responses((status = 200, body = ApplicationOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<Json<ApplicationOut>, ApiError> {
    Ok(Json(caller.application(&state, &app_id).await?.into()))
}

/// Replace an application, creating it (with the path as its uid) when it does not exist.
/// An id that names no application, or a path that is not a valid uid, answers 404.
#[utoipa::path(put, path = "/api/v1/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = ApplicationIn,
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut),
              (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Body(body): Body<ApplicationIn>,
) -> Result<(StatusCode, Json<ApplicationOut>), ApiError> {
    caller.require_organization()?;
    let key = application_key(&app_id).ok_or_else(|| ApiError::not_found(Resource::Application))?;
    let (app, upserted) = state.service().upsert_application(&key, validate_in(body)?).await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(app.into())))
}

/// Change some fields of an application.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = ApplicationPatch,
    responses((status = 200, body = ApplicationOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Body(body): Body<ApplicationPatch>,
) -> Result<Json<ApplicationOut>, ApiError> {
    caller.require_organization()?;
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    if let Some(name) = &body.name {
        validate_name(&mut v, name);
    }
    let uid = body.uid.map(|uid| uid.and_then(|u| parse_uid(&mut v, &u)));
    validate_rate(&mut v, "throttleRate", body.throttle_rate.flatten());
    validate_rate(&mut v, "rateLimit", body.rate_limit.flatten());
    v.finish()?;
    let change = ApplicationChange {
        name: body.name,
        uid,
        metadata: body.metadata,
        throttle_rate: body.rate_limit.or(body.throttle_rate),
    };
    let app = state.service().change_application(&app.id, &change).await?;
    Ok(Json(app.into()))
}

/// Delete an application with its endpoints.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    responses((status = 204, description = "Deleted"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_organization()?;
    let app = caller.application(&state, &app_id).await?;
    state.service().delete_application(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an application for a path that names none yet, using the path as its uid (unless
/// the body gives one). Used by PUT-like operations that create on demand.
pub async fn create_with_path_uid(
    state: &ApiState,
    path: &str,
    body: ApplicationIn,
) -> Result<Application, ApiError> {
    let key = application_key(path).ok_or_else(|| ApiError::not_found(Resource::Application))?;
    Ok(state.service().create_application_for_path(&key, validate_in(body)?).await?)
}
