//! `/api/v1/auth/app-portal-access/{app_id}`: short-lived application-scoped tokens for the
//! customer portal.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::application::ApplicationIn;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError};
use crate::api::extract::Body;
use crate::service::{Resource, ServiceError};

/// The longest lifetime a caller may ask for (30 days).
const MAX_EXPIRY_SECONDS: u64 = 30 * 86_400;

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
    let value = state.service().portal_token(&app.id, ttl).await?;
    // The token travels in the fragment, which browsers never send to servers or proxies. The
    // application id tells the portal page which application the token reaches.
    let url = format!("{}/portal#app={}&token={}", state.public_url(), app.id, value.expose());
    Ok(Json(AppPortalAccessOut { url, token: value.expose().to_owned() }))
}
