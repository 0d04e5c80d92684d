//! `/api/v1/auth/app-portal-access/{app_id}`: short-lived application-scoped tokens for the
//! customer portal; `/api/v1/auth/app/{app_id}/expire-all` expires them (all, or some sessions').

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::application::ApplicationIn;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError};
use crate::api::extract::Body;
use crate::service::{Resource, ServiceError};

/// The longest lifetime a caller may ask for (30 days); also the longest delay of expire-all.
const MAX_EXPIRY_SECONDS: u64 = 30 * 86_400;
/// The longest session id, in characters.
const MAX_SESSION_ID_LENGTH: usize = 256;
/// Most session ids one expire-all may name.
const MAX_SESSION_IDS: usize = 100;

/// Options of a portal session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// Created (with the path as its uid) when the application does not exist yet.
    #[serde(default)]
    pub application: Option<ApplicationIn>,
    /// Seconds until the token expires; the server's `portal_token_ttl` when absent.
    #[serde(default)]
    pub expiry: Option<u64>,
    /// A session the token belongs to (1 to 256 characters, no control characters), so that
    /// expire-all can end this session's tokens and leave the application's others alone.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// Which of an application's tokens expire-all ends, and when.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTokenExpireIn {
    /// Seconds until the tokens expire (0 to 30 days); at once when absent. A token that
    /// expires sooner anyway keeps its expiry.
    #[serde(default)]
    pub expiry: Option<u64>,
    /// Only tokens minted with one of these `sessionId`s (at most 100); every token of the
    /// application when absent.
    #[serde(default)]
    pub session_ids: Option<Vec<String>>,
}

/// Checks a session id: 1 to [`MAX_SESSION_ID_LENGTH`] characters, no control characters.
fn valid_session_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_SESSION_ID_LENGTH && !id.chars().any(char::is_control)
}

/// A portal link and the token inside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPortalAccessOut {
    pub url: String,
    pub token: String,
}

/// Create a customer-portal session for one application.
#[utoipa::path(post, path = "/api/v1/auth/app-portal-access/{app_id}", tag = "Authentication",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = AppPortalAccessIn,
    responses((status = 200, body = AppPortalAccessOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn app_portal_access(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Body(body): Body<AppPortalAccessIn>,
) -> Result<Json<AppPortalAccessOut>, ApiError> {
    caller.require_organization()?;
    let app = match (caller.application(&state, &app_id).await, body.application) {
        (Ok(app), _) => app,
        (Err(ApiError::Service(ServiceError::NotFound(Resource::Application))), Some(new_app)) => {
            crate::api::application::create_with_path_uid(&state, &app_id, new_app).await?
        }
        (Err(error), _) => return Err(error),
    };
    let ttl = match body.expiry {
        None => state.portal_token_ttl(),
        Some(seconds) if (1..=MAX_EXPIRY_SECONDS).contains(&seconds) => {
            std::time::Duration::from_secs(seconds)
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "expiry",
                format!("must be 1 to {MAX_EXPIRY_SECONDS} seconds"),
            ));
        }
    };
    if body.session_id.as_deref().is_some_and(|id| !valid_session_id(id)) {
        return Err(ApiError::invalid_field(
            "sessionId",
            format!("must be 1 to {MAX_SESSION_ID_LENGTH} characters, without control characters"),
        ));
    }
    let value = state.service().portal_token(&app.id, ttl, body.session_id).await?;
    // The token travels in the fragment, which browsers never send to servers or proxies. The
    // application id tells the portal page which application the token reaches.
    let url = format!("{}/portal#app={}&token={}", state.public_url(), app.id, value.expose());
    Ok(Json(AppPortalAccessOut { url, token: value.expose().to_owned() }))
}

/// Expire all of an application's tokens (its customer-portal sessions), at once or after
/// `expiry` seconds; only those of the given `sessionIds` when present.
#[utoipa::path(post, path = "/api/v1/auth/app/{app_id}/expire-all", tag = "Authentication",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = ApplicationTokenExpireIn,
    responses((status = 204, description = "The tokens expire (or have expired)"), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn expire_all(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Body(body): Body<ApplicationTokenExpireIn>,
) -> Result<StatusCode, ApiError> {
    caller.require_organization()?;
    let app = caller.application(&state, &app_id).await?;
    let delay = match body.expiry {
        None => 0,
        Some(seconds) if seconds <= MAX_EXPIRY_SECONDS => seconds,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "expiry",
                format!("must be 0 to {MAX_EXPIRY_SECONDS} seconds"),
            ));
        }
    };
    if let Some(sessions) = &body.session_ids {
        if sessions.len() > MAX_SESSION_IDS {
            return Err(ApiError::invalid_field(
                "sessionIds",
                format!("at most {MAX_SESSION_IDS} session ids"),
            ));
        }
        if !sessions.iter().all(|id| valid_session_id(id)) {
            return Err(ApiError::invalid_field(
                "sessionIds",
                format!("each must be 1 to {MAX_SESSION_ID_LENGTH} characters, without control characters"),
            ));
        }
    }
    let delay = std::time::Duration::from_secs(delay);
    state.service().expire_application_tokens(&app.id, body.session_ids.as_deref(), delay).await?;
    // This node's cached copies carry the old expiry: read them again from the store.
    state.tokens().forget_application(&app.id);
    Ok(StatusCode::NO_CONTENT)
}
