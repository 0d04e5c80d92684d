//! `/api/v1/app/{app_id}/msg`: messages, accepted durably and delivered to the application's
//! matching endpoints.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::delivery::{Message, MessageFilter};
use herald_core::id::{ApplicationId, MessageId};
use herald_core::model::Application;
use herald_core::name::{ChannelName, EventId, EventTypeName, OrderingKey};
use herald_core::store::{Key, MessageKey, Ordering};
use herald_core::version::PayloadVersion;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::application::{ApplicationIn, create_with_path_uid};
use crate::api::auth::{Caller, application_key};
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, Query};
use crate::api::filters::{EventTypesParam, MessageListParams, channel_param, event_types_param, time_param};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::{NewMessage, Resource, ServiceError};

/// Most channels one message may be sent on.
const MAX_CHANNELS: usize = 10;
/// Longest payload retention a message may ask for, in days.
const MAX_RETENTION_DAYS: i64 = 365;

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// The kind of event, e.g. `invoice.paid`; need not be a registered event type.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub event_type: String,
    /// The JSON object sent as the request body, byte for byte as given here.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Your id for this event; a second message with the same id is refused (409).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub event_id: Option<String>,
    /// Only endpoints subscribed to one of these channels (or to none) receive it.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Days to keep the payload (default: the server's `payload_retention`).
    #[serde(default)]
    pub payload_retention_period: Option<i64>,
    /// Hours to keep the payload; wins over `payloadRetentionPeriod`.
    #[serde(default)]
    pub payload_retention_hours: Option<i64>,
    /// Created (with the path as its uid) when the application does not exist yet.
    #[serde(default)]
    pub application: Option<ApplicationIn>,
    /// Not delivered before this time.
    #[serde(default)]
    pub deliver_at: Option<DateTime<Utc>>,
    /// Herald extension: the ordered lane this message takes on ordered endpoints (1 to 256
    /// letters, digits, `-`, `_`, `.`). Messages with the same key reach an ordered endpoint
    /// one at a time, in the order Herald accepted them; messages without one share a lane.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub ordering_key: Option<String>,
    /// Herald extension: the version of the event type's payload this payload is (e.g.
    /// `"2"`). Default: the highest version among the event type's `schemas`, or `"1"`.
    /// Endpoints pinned to an older version receive it converted (the event type's
    /// `converters`).
    #[serde(default)]
    pub payload_version: Option<String>,
}

/// A message as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    /// The payload as sent; `{"expired": true}` once removed, `{}` without `with_content`.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<BTreeSet<String>>,
    pub timestamp: DateTime<Utc>,
    pub deliver_at: Option<DateTime<Utc>>,
    /// Herald extension: the message's ordering key, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// Herald extension: the version of the event type's payload it was published at.
    pub payload_version: String,
}

/// The body sent in place of a payload that was removed.
pub const EXPIRED_PAYLOAD: &str = r#"{"expired":true}"#;

impl MessageOut {
    pub fn new(message: Message, with_content: bool) -> Self {
        let payload = match (&message.payload, with_content) {
            (_, false) => raw("{}"),
            (None, true) => raw(EXPIRED_PAYLOAD),
            // An ingested body that is not JSON (a form, XML) is shown as a JSON string.
            (Some(bytes), true) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| RawValue::from_string(text.to_owned()).ok())
                .or_else(|| {
                    let text = serde_json::to_string(&String::from_utf8_lossy(bytes)).ok()?;
                    RawValue::from_string(text).ok()
                })
                .unwrap_or_else(|| raw("{}")),
        };
        Self {
            id: message.id.to_string(),
            event_type: message.event_type.to_string(),
            event_id: message.event_id.map(|e| e.to_string()),
            payload,
            channels: message.channels.map(|c| c.iter().map(ToString::to_string).collect()),
            timestamp: message.created_at,
            deliver_at: message.deliver_at,
            ordering_key: message.ordering_key.map(|key| key.to_string()),
            payload_version: message.payload_version.to_string(),
        }
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap_or_else(|_| Box::default())
}

/// Query of a single message read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithContent {
    /// Include the payload (default true).
    pub with_content: Option<bool>,
}

/// Loads a message of `app` by id or `eventId`, or 404.
pub async fn load(state: &ApiState, app: &Application, key: &str) -> Result<Message, ApiError> {
    let key = match key.parse::<MessageId>() {
        Ok(id) => MessageKey::Id(id),
        Err(_) => {
            MessageKey::EventId(EventId::parse(key).map_err(|_| ApiError::not_found(Resource::Message))?)
        }
    };
    Ok(state.service().message(&app.id, &key).await?)
}

/// Send a message: it is stored with one pending delivery per matching endpoint before the
/// 202 is returned.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg", tag = "Message",
    params(("app_id" = String, Path, description = "The application's id or uid"), WithContent),
    request_body = MessageIn,
    responses((status = 202, body = MessageOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 413, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Query(params): Query<WithContent>,
    Body(body): Body<MessageIn>,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    let mut v = Validator::default();
    let event_type = v.check("eventType", EventTypeName::parse(&body.event_type));
    let event_id = body.event_id.as_deref().and_then(|e| v.check("eventId", EventId::parse(e)));
    let ordering_key =
        body.ordering_key.as_deref().and_then(|k| v.check("orderingKey", OrderingKey::parse(k)));
    let payload_version =
        body.payload_version.as_deref().and_then(|p| v.check("payloadVersion", PayloadVersion::parse(p)));
    if !body.payload.get().trim_start().starts_with('{') {
        v.fail("payload", "the payload must be a JSON object");
    }
    let channels = body.channels.map(|list| {
        let set: BTreeSet<String> = list.into_iter().collect();
        if set.len() > MAX_CHANNELS {
            v.fail("channels", format!("at most {MAX_CHANNELS} channels"));
        }
        set.iter().filter_map(|c| v.check("channels", ChannelName::parse(c))).collect::<Vec<_>>()
    });
    let retention = match (body.payload_retention_hours, body.payload_retention_period) {
        (Some(hours), _) if (1..=MAX_RETENTION_DAYS * 24).contains(&hours) => {
            Some(chrono::Duration::hours(hours))
        }
        (Some(_), _) => {
            v.fail("payloadRetentionHours", format!("must be 1 to {} hours", MAX_RETENTION_DAYS * 24));
            None
        }
        (None, Some(days)) if (1..=MAX_RETENTION_DAYS).contains(&days) => Some(chrono::Duration::days(days)),
        (None, Some(_)) => {
            v.fail("payloadRetentionPeriod", format!("must be 1 to {MAX_RETENTION_DAYS} days"));
            None
        }
        (None, None) => None,
    };
    v.finish()?;
    let event_type = event_type.ok_or_else(|| ApiError::invalid_field("eventType", "invalid event type"))?;

    let new = NewMessage {
        event_type,
        event_id,
        channels,
        payload: body.payload.get().as_bytes().to_vec(),
        deliver_at: body.deliver_at,
        payload_retention: retention,
        ordering_key,
        payload_version,
    };
    let key = application_key(&app_id).ok_or_else(|| ApiError::not_found(Resource::Application))?;
    let service = state.service();
    let may_access = |id: &ApplicationId| caller.may_access(id);
    // The payload is copied only when the application may have to be created first.
    let (first, spare) = match &body.application {
        Some(_) => (new.clone(), Some(new)),
        None => (new, None),
    };
    let message = match (body.application.zip(spare), service.send_message(&key, may_access, first).await) {
        (_, Ok(message)) => message,
        (Some((new_app, new)), Err(ServiceError::NotFound(Resource::Application))) => {
            caller.require_organization()?;
            let app = create_with_path_uid(&state, &app_id, new_app).await?;
            service.send_message(&Key::Id(app.id), may_access, new).await?
        }
        (_, Err(error)) => return Err(error.into()),
    };
    // Ties the request's trace to the message's deliveries (builds with the `otlp` feature).
    tracing::Span::current().record("msg_id", message.id.as_str());
    Ok((StatusCode::ACCEPTED, Json(MessageOut::new(message, params.with_content.unwrap_or(true)))))
}

/// List an application's messages, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg", tag = "Message",
    params(("app_id" = String, Path, description = "The application's id or uid"), ListParams, MessageListParams, EventTypesParam),
    responses((status = 200, body = ListResponse<MessageOut>), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Query(page): Query<ListParams>,
    Query(params): Query<MessageListParams>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListResponse<MessageOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let request = page.page_request(Ordering::Descending)?;
    let filter = message_filter(&params, query.as_deref())?;
    let with_content = params.with_content.unwrap_or(true);
    let found = state.store().list_messages(&app.id, &filter, &request).await?;
    Ok(Json(ListResponse::from_page(
        found,
        &request,
        |m| m.id.to_string(),
        |m| MessageOut::new(m, with_content),
    )))
}

/// The store's filter for message-list parameters.
pub fn message_filter(params: &MessageListParams, query: Option<&str>) -> Result<MessageFilter, ApiError> {
    Ok(MessageFilter {
        channel: channel_param(params.channel.as_deref())?,
        event_types: event_types_param(query)?,
        before: time_param("before", params.before.as_deref())?,
        after: time_param("after", params.after.as_deref())?,
    })
}

/// Get a message by id or `eventId`.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}", tag = "Message",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"), WithContent),
    responses((status = 200, body = MessageOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    Query(params): Query<WithContent>,
) -> Result<Json<MessageOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let message = load(&state, &app, &msg_id).await?;
    Ok(Json(MessageOut::new(message, params.with_content.unwrap_or(true))))
}

/// Delete a message's payload; the message and its attempts stay.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/content", tag = "Message",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId")),
    responses((status = 204, description = "Payload removed"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn expunge_content(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let message = load(&state, &app, &msg_id).await?;
    state.service().expunge_message_payload(&app.id, &message.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
