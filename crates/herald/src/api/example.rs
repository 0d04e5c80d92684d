//! Sending an example event to one endpoint (`…/send-example`, Svix's shape), to test a
//! receiver with every event type it subscribes to.

use axum::Json;
use axum::extract::{Path, State};
use herald_core::name::EventTypeName;
use serde::Deserialize;
use utoipa::ToSchema;

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
