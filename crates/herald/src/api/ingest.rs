//! `/ingest/api/v1/source`: the ingest gateway's sources, in the shapes of Svix's Ingest API
//! (`IngestSourceIn`, `IngestSourceOut`), and their refusal logs (a Herald extension).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::id::SourceId;
use herald_core::ingest::{Refusal, Source, SourceChange, SourceConfig, SourceType};
use herald_core::name::{Metadata, Uid};
use herald_core::store::{Key, Ordering};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, Query, double_option};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::{NewSource, ServiceError};

/// A new source, or the full new state of one (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourceIn {
    pub name: String,
    /// An alias usable wherever the id is.
    #[serde(default)]
    pub uid: Option<String>,
    /// The provider: `generic-webhook`, `svix`, `standard-webhooks`, `github`, `stripe`,
    /// `shopify`, `slack`, `hubspot`, `zoom`, `segment`, `telnyx`, `docusign`, or a provider that
    /// signs with Svix (`clerk`, `resend`, `brex`, `replicate`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// What the type verifies with: `secret` (the provider's signing secret), `publicKey`
    /// (Telnyx), or for `generic-webhook` optionally `bearerToken` or `basicAuth`
    /// (`{"username","password"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// Changes to a source; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourcePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

/// A source as the API returns it: never its secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourceOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    /// Herald extension: the application behind the source (hidden from the application
    /// list), whose messages are the source's events and whose attempts are their forwarding.
    pub app_id: String,
    /// Where the provider sends: the token in it is the source's address (rotate it with
    /// `…/token/rotate`).
    pub ingest_url: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The configuration without its secrets (Telnyx's public key only); absent for
    /// `generic-webhook`, as in Svix.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The source's ingest URL after a rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenOut {
    pub ingest_url: String,
}

/// One refused request to the source's ingest URL.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestRefusalOut {
    /// `missing_signature`, `bad_signature`, `stale_timestamp` or `too_large`.
    pub reason: String,
    pub timestamp: DateTime<Utc>,
    /// The sender's address as Herald saw it.
    pub address: String,
}

/// The newest refusals.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestRefusalList {
    pub data: Vec<IngestRefusalOut>,
}

/// How many refusals to list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RefusalParams {
    /// 1 to 250 (default 50).
    pub limit: Option<u16>,
}

fn shown(state: &ApiState, source: Source) -> IngestSourceOut {
    let config = match (&source.config.public_key, source.kind.name()) {
        (Some(key), _) => Some(serde_json::json!({ "publicKey": key })),
        (None, "generic-webhook") => None,
        (None, _) => Some(serde_json::json!({})),
    };
    IngestSourceOut {
        id: source.id.to_string(),
        uid: source.uid.map(|uid| uid.to_string()),
        name: source.name,
        app_id: source.app_id.to_string(),
        ingest_url: state.service().ingest_url(&source.token),
        kind: source.kind.name().to_owned(),
        config,
        metadata: source.metadata,
        created_at: source.created_at,
        updated_at: source.updated_at,
    }
}

fn refusal_out(refusal: Refusal) -> IngestRefusalOut {
    IngestRefusalOut {
        reason: refusal.reason.name().to_owned(),
        timestamp: refusal.at,
        address: refusal.address,
    }
}

fn validate_name(v: &mut Validator, name: &str) {
    if name.trim().chars().count() < 2 || name.chars().count() > 256 {
        v.fail("name", "name must be 2 to 256 characters long");
    }
}

fn parse_uid(v: &mut Validator, text: &str) -> Option<Uid> {
    let uid = v.check("uid", Uid::parse(text))?;
    if uid.as_str().starts_with(SourceId::PREFIX) {
        v.fail("uid", "a source's uid must not start with `src_`");
        return None;
    }
    Some(uid)
}

fn parse_config(v: &mut Validator, config: Option<serde_json::Value>) -> Option<SourceConfig> {
    match config {
        None | Some(serde_json::Value::Null) => Some(SourceConfig::default()),
        Some(value) => v.check("config", serde_json::from_value::<SourceConfig>(value)),
    }
}

fn parse_in(body: IngestSourceIn) -> Result<NewSource, ApiError> {
    let mut v = Validator::default();
    validate_name(&mut v, &body.name);
    let uid = body.uid.as_deref().and_then(|u| parse_uid(&mut v, u));
    let kind = v.check("type", SourceType::parse(&body.kind));
    let config = parse_config(&mut v, body.config);
    v.finish()?;
    let (Some(kind), Some(config)) = (kind, config) else {
        return Err(ApiError::invalid_field("type", "invalid type or config"));
    };
    Ok(NewSource { name: body.name, uid, kind, config, metadata: body.metadata.unwrap_or_default() })
}

fn key(text: &str) -> Result<herald_core::store::SourceKey, ApiError> {
    Ok(crate::service::Service::source_key(text)?)
}

/// List sources.
#[utoipa::path(get, path = "/ingest/api/v1/source", tag = "Ingest Source", params(ListParams),
    responses((status = 200, body = ListResponse<IngestSourceOut>), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<ListResponse<IngestSourceOut>>, ApiError> {
    caller.require_organization()?;
    let request = params.page_request(Ordering::Ascending)?;
    let page = state.service().list_sources(&request).await?;
    Ok(Json(ListResponse::from_page(page, &request, |s| s.id.to_string(), |s| shown(&state, s))))
}

/// Create a source: Herald answers at its `ingestUrl` for the provider.
#[utoipa::path(post, path = "/ingest/api/v1/source", tag = "Ingest Source", request_body = IngestSourceIn,
    responses((status = 201, body = IngestSourceOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<IngestSourceIn>,
) -> Result<(StatusCode, Json<IngestSourceOut>), ApiError> {
    caller.require_organization()?;
    let source = state.service().create_source(parse_in(body)?).await?;
    Ok((StatusCode::CREATED, Json(shown(&state, source))))
}

/// Get a source by id or uid.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    responses((status = 200, body = IngestSourceOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> Result<Json<IngestSourceOut>, ApiError> {
    caller.require_organization()?;
    Ok(Json(shown(&state, state.service().source(&key(&source_id)?).await?)))
}

/// Replace a source, creating it (with the path as its uid) when it does not exist.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    request_body = IngestSourceIn,
    responses((status = 200, body = IngestSourceOut), (status = 201, body = IngestSourceOut), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
    Body(body): Body<IngestSourceIn>,
) -> Result<(StatusCode, Json<IngestSourceOut>), ApiError> {
    caller.require_organization()?;
    let mut new = parse_in(body)?;
    let key = key(&source_id)?;
    match state.service().source(&key).await {
        Ok(_) => {
            let change = SourceChange {
                name: Some(new.name),
                uid: Some(new.uid),
                kind: Some(new.kind),
                config: Some(new.config),
                metadata: Some(new.metadata),
                rotate_token: None,
            };
            let source = state.service().change_source(&key, change).await?;
            Ok((StatusCode::OK, Json(shown(&state, source))))
        }
        Err(ServiceError::NotFound(_)) => {
            let Key::Uid(uid) = key else {
                return Err(ServiceError::NotFound(crate::service::Resource::Source).into());
            };
            new.uid = Some(uid);
            let source = state.service().create_source(new).await?;
            Ok((StatusCode::CREATED, Json(shown(&state, source))))
        }
        Err(error) => Err(error.into()),
    }
}

/// Change some fields of a source.
#[utoipa::path(patch, path = "/ingest/api/v1/source/{source_id}", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    request_body = IngestSourcePatch,
    responses((status = 200, body = IngestSourceOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
    Body(body): Body<IngestSourcePatch>,
) -> Result<Json<IngestSourceOut>, ApiError> {
    caller.require_organization()?;
    let mut v = Validator::default();
    if let Some(name) = &body.name {
        validate_name(&mut v, name);
    }
    let uid = body.uid.map(|uid| uid.and_then(|u| parse_uid(&mut v, &u)));
    let kind = body.kind.and_then(|kind| v.check("type", SourceType::parse(&kind)));
    let config = body.config.map(|config| parse_config(&mut v, Some(config)));
    v.finish()?;
    let change = SourceChange {
        name: body.name,
        uid,
        kind,
        config: config.flatten(),
        metadata: body.metadata,
        rotate_token: None,
    };
    let source = state.service().change_source(&key(&source_id)?, change).await?;
    Ok(Json(shown(&state, source)))
}

/// Delete a source with its destinations, events and refusal log.
#[utoipa::path(delete, path = "/ingest/api/v1/source/{source_id}", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    responses((status = 204, description = "Deleted"), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_organization()?;
    state.service().delete_source(&key(&source_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give the source a new ingest URL; the old one keeps working for `ingest_token_grace`.
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/token/rotate", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid")),
    responses((status = 200, body = RotateTokenOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn rotate_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> Result<Json<RotateTokenOut>, ApiError> {
    caller.require_organization()?;
    let source = state.service().rotate_source_token(&key(&source_id)?).await?;
    Ok(Json(RotateTokenOut { ingest_url: state.service().ingest_url(&source.token) }))
}

/// The source's newest refused requests (a Herald extension): reason, time, address.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/refusal", tag = "Ingest Source",
    params(("source_id" = String, Path, description = "The source's id or uid"), RefusalParams),
    responses((status = 200, body = IngestRefusalList), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn refusals(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source_id): Path<String>,
    Query(params): Query<RefusalParams>,
) -> Result<Json<IngestRefusalList>, ApiError> {
    caller.require_organization()?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=250).contains(&limit) {
        return Err(ApiError::Validation(vec![crate::api::error::ValidationErrorItem {
            loc: vec!["query".to_owned(), "limit".to_owned()],
            msg: "limit must be between 1 and 250".to_owned(),
            kind: "value_error".to_owned(),
        }]));
    }
    let refusals = state.service().source_refusals(&key(&source_id)?, limit).await?;
    Ok(Json(IngestRefusalList { data: refusals.into_iter().map(refusal_out).collect() }))
}
