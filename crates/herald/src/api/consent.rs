//! The consent callback (CloudEvents webhook handshake, asynchronous answer): the URL Herald
//! sent in `WebHook-Request-Callback`, which the endpoint calls (`GET` or `POST`) to grant.
//! No bearer token: the unguessable token in the path is the credential, good for one grant
//! and stored only as a hash.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::api::ApiState;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, ValidationErrorItem};
use crate::api::extract::Query;

/// The rate an endpoint allows, as a query parameter (the header `WebHook-Allowed-Rate` works too).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Requests a minute Herald may send (a positive number), or `*` for no limit of the
    /// endpoint's own. Absent (and no header): no limit of its own.
    #[serde(default, rename = "WebHook-Allowed-Rate", alias = "rate")]
    pub rate: Option<String>,
}

/// What a grant did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentGrantOut {
    pub endpoint_id: String,
    /// Always `granted`.
    pub consent_status: &'static str,
    /// Requests a minute the endpoint allowed; absent: no limit of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_rate: Option<u32>,
}

/// Grant consent to a pending handshake (the endpoint's callback).
#[utoipa::path(method(get, post), path = "/api/v1/consent/{token}", tag = "Consent",
    params(("token" = String, Path, description = "The token from WebHook-Request-Callback"), GrantQuery,
           ("WebHook-Allowed-Rate" = Option<String>, Header, description = "Requests a minute, or `*`")),
    responses((status = 200, body = ConsentGrantOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)))]
pub async fn grant(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    Query(query): Query<GrantQuery>,
    headers: HeaderMap,
) -> Result<Json<ConsentGrantOut>, ApiError> {
    let header = headers.get("webhook-allowed-rate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let given = match (header, query.rate) {
        (Some(text), _) => Some(("header", text)),
        (None, Some(text)) => Some(("query", text)),
        (None, None) => None,
    };
    let per_minute = match given {
        Some((place, text)) => herald_core::consent::parse_allowed_rate(&text).map_err(|reason| {
            ApiError::Validation(vec![ValidationErrorItem {
                loc: vec![place.to_owned(), "WebHook-Allowed-Rate".to_owned()],
                msg: reason,
                kind: "value_error".to_owned(),
            }])
        })?,
        None => None,
    };
    let (_, endpoint) = state.service().grant_consent(&token, per_minute).await?;
    Ok(Json(ConsentGrantOut {
        endpoint_id: endpoint.to_string(),
        consent_status: "granted",
        allowed_rate: per_minute,
    }))
}
