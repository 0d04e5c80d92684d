//! `/api/v1/token`: list and revoke API tokens (an extension; Svix has no such routes).
//! Organisation tokens only. A token's value is never shown: only its hash is stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::id::TokenId;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::store::Ordering;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError};
use crate::api::extract::Query;
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::Resource;

/// An API token as the API lists it: what it reaches and until when, never its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenOut {
    pub id: String,
    /// `organization` (everything) or `application` (one application: a portal token).
    pub scope: String,
    /// The application an `application` token reaches.
    pub app_id: Option<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// When it stops working; `null` for never. Expired tokens are purged by maintenance.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenOut {
    fn from(token: ApiToken) -> Self {
        let (scope, app_id) = match token.scope {
            TokenScope::Organization => ("organization", None),
            TokenScope::Application(app) => ("application", Some(app.to_string())),
        };
        Self {
            id: token.id.to_string(),
            scope: scope.to_owned(),
            app_id,
            description: token.description,
            created_at: token.created_at,
            expires_at: token.expires_at,
        }
    }
}

/// List API tokens, organisation and portal ones (never their values).
#[utoipa::path(get, path = "/api/v1/token", tag = "Authentication", params(ListParams),
    responses((status = 200, body = ListResponse<TokenOut>), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<ListResponse<TokenOut>>, ApiError> {
    caller.require_organization()?;
    let request = params.page_request(Ordering::Ascending)?;
    let page = state.service().list_tokens(&request).await?;
    Ok(Json(ListResponse::from_page(page, &request, |t| t.id.to_string(), TokenOut::from)))
}

/// Revoke an API token (an organisation or a portal token); it stops working at once on this
/// server, and within 5 seconds on the others sharing its database.
#[utoipa::path(delete, path = "/api/v1/token/{token_id}", tag = "Authentication",
    params(("token_id" = String, Path, description = "The token's id (`tok_…`), as listed")),
    responses((status = 204, description = "Revoked"), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<ApiState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_organization()?;
    let id: TokenId = token_id.parse().map_err(|_| ApiError::not_found(Resource::Token))?;
    state.service().revoke_token(&id).await?;
    state.tokens().forget(&id);
    Ok(StatusCode::NO_CONTENT)
}
