//! Sending an example event to one endpoint (`…/send-example`, Svix's shape), to test a
//! receiver with every event type it subscribes to; previewing a recent message at another
//! payload version (`…/payload-preview`, an extension) before the endpoint moves its pin.

use axum::Json;
use axum::extract::{Path, State};
use herald_core::name::EventTypeName;
use herald_core::version::PayloadVersion;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::endpoint::endpoint_key;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::Body;
use crate::api::message::MessageOut;

/// Which example to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    /// The event type's name.
    pub event_type: String,
    /// Which of the schema's `examples` (default the first); without examples, one is generated
    /// from the schema and the index is ignored.
    #[serde(default)]
    pub example_index: usize,
}

/// Send an event type's example to this endpoint only; returns the message.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EventExampleIn,
    responses((status = 200, body = MessageOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn send_example(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EventExampleIn>,
) -> Result<Json<MessageOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let mut v = Validator::default();
    let event_type = v.check("eventType", EventTypeName::parse(&body.event_type));
    v.finish()?;
    let event_type = event_type.ok_or_else(|| ApiError::invalid_field("eventType", "invalid event type"))?;
    let message = state
        .service()
        .send_example(&app.id, &endpoint_key(&endpoint_id)?, &event_type, body.example_index)
        .await?;
    Ok(Json(MessageOut::new(message, true)))
}

/// Which version to preview.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// The payload version, e.g. `2`.
    pub version: String,
}

/// The endpoint's most recent message at the asked version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayloadPreviewOut {
    pub msg_id: String,
    pub event_type: String,
    /// The version the message was published at.
    pub published_version: String,
    /// The version of `payload`: the one asked for, or the published one when that is lower.
    pub version: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

/// Herald extension: the endpoint's most recent message as a pin to `version` would deliver it.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/payload-preview", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid"), PreviewParams),
    responses((status = 200, body = PayloadPreviewOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn payload_preview(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    crate::api::extract::Query(params): crate::api::extract::Query<PreviewParams>,
) -> Result<Json<PayloadPreviewOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let version = PayloadVersion::parse(&params.version)
        .map_err(|reason| crate::api::filters::query_error("version", reason))?;
    let preview = state.service().preview_payload(&app.id, &endpoint_key(&endpoint_id)?, version).await?;
    let payload = RawValue::from_string(String::from_utf8_lossy(&preview.payload).into_owned())
        .map_err(|_| ApiError::invalid_field("version", "the converted payload is not JSON"))?;
    Ok(Json(PayloadPreviewOut {
        msg_id: preview.message.id.to_string(),
        event_type: preview.message.event_type.to_string(),
        published_version: preview.message.payload_version.to_string(),
        version: preview.version.to_string(),
        payload,
    }))
}
