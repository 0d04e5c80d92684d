//! Delivery attempts and what they add up to: attempts by endpoint and by message, attempted
//! messages of an endpoint, attempted destinations of a message, resend, recover, statistics.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::delivery::{Attempt, AttemptFilter};
use herald_core::id::{AttemptId, EndpointId};
use herald_core::store::Ordering;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::endpoint;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, ValidationErrorItem};
use crate::api::extract::{Body, Query};
use crate::api::filters::{
    EventTypesParam, MessageListParams, channel_param, event_types_param, status_param, status_text,
    time_param,
};
use crate::api::message::{self, MessageOut, message_filter};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::Resource;

/// One attempt as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    /// The URL the attempt went to, its credentials (if any) masked.
    pub url: String,
    /// The start of the response body, or why there was no response.
    pub response: String,
    /// The HTTP status; 0 when there was no response.
    pub response_status_code: u16,
    pub response_duration_ms: i64,
    /// 0 success, 1 pending, 2 fail, 3 sending.
    pub status: i64,
    pub status_text: &'static str,
    /// 0 scheduled, 1 manual.
    pub trigger_type: i64,
    pub timestamp: DateTime<Utc>,
    /// The attempt's message (without its payload), when the list was asked `with_msg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<MessageOut>,
    /// Herald extension: the request as sent (method, every header with the values of
    /// credentials and signatures masked, and the body when it was not the message's payload);
    /// absent when nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<AttemptRequestOut>,
}

/// The request an attempt sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptRequestOut {
    pub method: String,
    /// `[name, value]` pairs, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body, when it differed from the message's payload (converted to the endpoint's
    /// payload version, or transformed); absent: the message's payload was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl From<Attempt> for MessageAttemptOut {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id.to_string(),
            msg_id: attempt.msg_id.to_string(),
            endpoint_id: attempt.endpoint_id.to_string(),
            // Records made before URLs were masked in them are masked here.
            url: herald_core::endpoint_url::masked_text(&attempt.url),
            response: attempt.response,
            response_status_code: attempt.response_status_code,
            response_duration_ms: attempt.response_duration_ms,
            status: attempt.status.code(),
            status_text: status_text(attempt.status),
            trigger_type: attempt.trigger.code(),
            timestamp: attempt.created_at,
            msg: None,
            request: attempt.request.map(|request| AttemptRequestOut {
                method: request.method,
                headers: request.headers,
                body: request.body.map(|body| String::from_utf8_lossy(&body).into_owned()),
            }),
        }
    }
}

/// Filters of the attempt lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptListParams {
    /// 0 success, 1 pending, 2 fail, 3 sending (or the names).
    pub status: Option<String>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    pub status_code_class: Option<u16>,
    /// Only attempts of messages on this channel.
    pub channel: Option<String>,
    /// Only attempts made before this time (RFC 3339).
    pub before: Option<String>,
    /// Only attempts made after this time (RFC 3339).
    pub after: Option<String>,
    /// Narrow the attempts of a message to one endpoint.
    pub endpoint_id: Option<String>,
    /// Include each attempt's message (without its payload).
    pub with_msg: Option<bool>,
    /// Include each attempt's response body (default true); `false` leaves `response` empty,
    /// for lists that only need outcomes.
    pub with_content: Option<bool>,
}

impl AttemptListParams {
    /// Applies `with_content=false` to a page of attempts.
    fn strip_content(&self, attempts: &mut [MessageAttemptOut]) {
        if self.with_content == Some(false) {
            for attempt in attempts {
                attempt.response.clear();
            }
        }
    }
}

fn attempt_filter(params: &AttemptListParams, query: Option<&str>) -> Result<AttemptFilter, ApiError> {
    let class = match params.status_code_class {
        None => None,
        Some(class @ (0 | 100 | 200 | 300 | 400 | 500)) => Some(class),
        Some(other) => {
            return Err(ApiError::Validation(vec![ValidationErrorItem {
                loc: vec!["query".to_owned(), "status_code_class".to_owned()],
                msg: format!("`{other}` is not one of 0, 100, 200, 300, 400, 500"),
                kind: "value_error".to_owned(),
            }]));
        }
    };
    Ok(AttemptFilter {
        status: status_param(params.status.as_deref())?,
        status_code_class: class,
        event_types: event_types_param(query)?,
        channel: channel_param(params.channel.as_deref())?,
        before: time_param("before", params.before.as_deref())?,
        after: time_param("after", params.after.as_deref())?,
    })
}

/// List an endpoint's attempts, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid"),
           ListParams, AttemptListParams, EventTypesParam),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list_by_endpoint(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Query(page): Query<ListParams>,
    Query(params): Query<AttemptListParams>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListResponse<MessageAttemptOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = endpoint::load(&state, &app, &endpoint_id).await?;
    let request = page.page_request(Ordering::Descending)?;
    let filter = attempt_filter(&params, query.as_deref())?;
    let found = state.store().list_attempts_by_endpoint(&app.id, &endpoint.id, &filter, &request).await?;
    let mut list = ListResponse::from_page(found, &request, |a| a.id.to_string(), MessageAttemptOut::from);
    params.strip_content(&mut list.data);
    if params.with_msg == Some(true) {
        attach_messages(&state, &app, &mut list.data).await?;
    }
    Ok(Json(list))
}

/// Sets `msg` on each attempt, reading each message once.
async fn attach_messages(
    state: &ApiState,
    app: &herald_core::model::Application,
    attempts: &mut [MessageAttemptOut],
) -> Result<(), ApiError> {
    let mut messages: std::collections::HashMap<String, Option<MessageOut>> =
        std::collections::HashMap::new();
    for attempt in attempts.iter_mut() {
        if !messages.contains_key(&attempt.msg_id) {
            let found = match attempt.msg_id.parse() {
                Ok(id) => {
                    state.store().find_message(&app.id, &herald_core::store::MessageKey::Id(id)).await?
                }
                Err(_) => None,
            };
            messages.insert(attempt.msg_id.clone(), found.map(|m| MessageOut::new(m, false)));
        }
        attempt.msg = messages.get(&attempt.msg_id).cloned().flatten();
    }
    Ok(())
}

/// List a message's attempts, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"),
           ListParams, AttemptListParams, EventTypesParam),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list_by_message(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    Query(page): Query<ListParams>,
    Query(params): Query<AttemptListParams>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListResponse<MessageAttemptOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let message = message::load(&state, &app, &msg_id).await?;
    let endpoint: Option<EndpointId> = match params.endpoint_id.as_deref() {
        Some(key) => Some(endpoint::load(&state, &app, key).await?.id),
        None => None,
    };
    let request = page.page_request(Ordering::Descending)?;
    let filter = attempt_filter(&params, query.as_deref())?;
    let found = state
        .store()
        .list_attempts_by_message(&app.id, &message.id, endpoint.as_ref(), &filter, &request)
        .await?;
    let mut list = ListResponse::from_page(found, &request, |a| a.id.to_string(), MessageAttemptOut::from);
    params.strip_content(&mut list.data);
    if params.with_msg == Some(true) {
        attach_messages(&state, &app, &mut list.data).await?;
    }
    Ok(Json(list))
}

async fn load_attempt(
    state: &ApiState,
    caller: &Caller,
    app_id: &str,
    msg_id: &str,
    attempt_id: &str,
) -> Result<(herald_core::model::Application, herald_core::delivery::Message, Attempt), ApiError> {
    let app = caller.application(state, app_id).await?;
    let message = message::load(state, &app, msg_id).await?;
    let id: AttemptId = attempt_id.parse().map_err(|_| ApiError::not_found(Resource::Attempt))?;
    let attempt = state
        .store()
        .find_attempt(&app.id, &message.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(Resource::Attempt))?;
    Ok((app, message, attempt))
}

/// Get one attempt.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"),
           ("attempt_id" = String, Path, description = "The attempt's id")),
    responses((status = 200, body = MessageAttemptOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> Result<Json<MessageAttemptOut>, ApiError> {
    let (_, _, attempt) = load_attempt(&state, &caller, &app_id, &msg_id, &attempt_id).await?;
    Ok(Json(attempt.into()))
}

/// Delete an attempt's stored response.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"),
           ("attempt_id" = String, Path, description = "The attempt's id")),
    responses((status = 204, description = "Response removed"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn expunge_content(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (app, message, attempt) = load_attempt(&state, &caller, &app_id, &msg_id, &attempt_id).await?;
    state.service().expunge_attempt_response(&app.id, &message.id, &attempt.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message with its delivery state at one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    pub message: MessageOut,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<DateTime<Utc>>,
}

/// Query of the attempted-messages list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusParam {
    /// Only messages whose delivery has this status (0-3, or the names).
    pub status: Option<String>,
}

/// List the messages sent to an endpoint, with their delivery state there.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid"),
           ListParams, MessageListParams, StatusParam, EventTypesParam),
    responses((status = 200, body = ListResponse<EndpointMessageOut>), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list_attempted_messages(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Query(page): Query<ListParams>,
    Query(params): Query<MessageListParams>,
    Query(status): Query<StatusParam>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListResponse<EndpointMessageOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = endpoint::load(&state, &app, &endpoint_id).await?;
    let request = page.page_request(Ordering::Descending)?;
    let filter = message_filter(&params, query.as_deref())?;
    let status = status_param(status.status.as_deref())?;
    let with_content = params.with_content.unwrap_or(true);
    let found =
        state.store().list_endpoint_messages(&app.id, &endpoint.id, &filter, status, &request).await?;
    Ok(Json(ListResponse::from_page(
        found,
        &request,
        |m| m.message.id.to_string(),
        |m| EndpointMessageOut {
            message: MessageOut::new(m.message, with_content),
            status: m.status.code(),
            status_text: status_text(m.status),
            next_attempt: m.next_attempt_at,
        },
    )))
}

/// An endpoint with the delivery state of one message there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    pub endpoint: endpoint::EndpointOut,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<DateTime<Utc>>,
}

/// List the endpoints a message was sent to, with its delivery state at each.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"), ListParams),
    responses((status = 200, body = ListResponse<MessageEndpointOut>), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn list_attempted_destinations(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    Query(page): Query<ListParams>,
) -> Result<Json<ListResponse<MessageEndpointOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let message = message::load(&state, &app, &msg_id).await?;
    let request = page.page_request(Ordering::Ascending)?;
    let found = state.store().list_message_destinations(&app.id, &message.id, &request).await?;
    let (mode, now) = (state.service().consent_mode(), state.clock().now());
    Ok(Json(ListResponse::from_page(
        found,
        &request,
        |d| d.endpoint.id.to_string(),
        |d| MessageEndpointOut {
            endpoint: endpoint::EndpointOut::with_consent(d.endpoint, mode, now),
            status: d.status.code(),
            status_text: status_text(d.status),
            next_attempt: d.next_attempt_at,
        },
    )))
}

/// An empty JSON object: the body of operations that return nothing, as the SDKs expect.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmptyResponse {}

/// Send a message to an endpoint again, now (one manual attempt).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", tag = "Message Attempt",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("msg_id" = String, Path, description = "The message's id or eventId"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 202, body = EmptyResponse), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn resend(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<EmptyResponse>), ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let message = message::load(&state, &app, &msg_id).await?;
    let endpoint = endpoint::load(&state, &app, &endpoint_id).await?;
    state.service().resend(&app.id, &message.id, &endpoint.id).await?;
    Ok((StatusCode::ACCEPTED, Json(EmptyResponse {})))
}

/// What to recover.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverIn {
    /// Re-send messages created at or after this time whose delivery failed.
    pub since: DateTime<Utc>,
    /// ... and before this time (default: now).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// A background task's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    pub id: String,
    /// `running`, `finished` or `failed`.
    pub status: &'static str,
    pub task: &'static str,
    pub updated_at: DateTime<Utc>,
}

/// Re-send every message whose delivery to the endpoint failed since a time (a background task).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = RecoverIn,
    responses((status = 202, body = RecoverOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn recover(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<RecoverIn>,
) -> Result<(StatusCode, Json<RecoverOut>), ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = endpoint::load(&state, &app, &endpoint_id).await?;
    let task = state.service().recover(&endpoint.id, body.since, body.until)?;
    let out =
        RecoverOut { id: task.id, status: "running", task: "endpoint.recover", updated_at: task.started_at };
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// Counts of an endpoint's deliveries by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    /// Svix counts cancelled deliveries here; Herald never cancels one, so this is always 0.
    pub canceled: u64,
    /// Herald extension, on ordered endpoints only: the lanes that have work, the
    /// longest-waiting first (at most 100).
    #[serde(rename = "orderedLanes", skip_serializing_if = "Option::is_none")]
    pub ordered_lanes: Option<Vec<OrderedLaneOut>>,
}

/// An ordered lane with work: its head, and how many messages wait behind it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderedLaneOut {
    /// The lane's ordering key; `null` for the lane of messages sent without one.
    pub ordering_key: Option<String>,
    /// The message at the head of the lane: the next to be delivered.
    pub head_msg_id: String,
    /// When the head's message was accepted.
    pub head_since: DateTime<Utc>,
    /// The head's delivery status (1 pending, 3 sending, 2 failed: held).
    pub head_status: i64,
    /// The head failed for good and holds the lane until it is resent or recovered.
    pub held: bool,
    /// Messages waiting behind the head.
    pub waiting: u64,
}

/// The most ordered lanes the endpoint statistics list.
const MAX_LANES_SHOWN: u32 = 100;

/// Query of the endpoint statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Start of the window (default: 28 days ago).
    pub since: Option<String>,
    /// End of the window (default: now).
    pub until: Option<String>,
}

/// Delivery counts of an endpoint by status, for messages in a time window.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid"), StatsParams),
    responses((status = 200, body = EndpointStats), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn stats(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Query(params): Query<StatsParams>,
) -> Result<Json<EndpointStats>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = endpoint::load(&state, &app, &endpoint_id).await?;
    let now = state.clock().now();
    let since = time_param("since", params.since.as_deref())?.unwrap_or(now - chrono::Duration::days(28));
    let until = time_param("until", params.until.as_deref())?.unwrap_or(now + chrono::Duration::seconds(1));
    let stats = state.store().endpoint_stats(&endpoint.id, since, until).await?;
    let ordered_lanes = if endpoint.ordered {
        let lanes = state.store().ordered_lanes(&endpoint.id, MAX_LANES_SHOWN).await?;
        Some(
            lanes
                .into_iter()
                .map(|lane| OrderedLaneOut {
                    ordering_key: (!lane.key.is_empty()).then_some(lane.key),
                    head_msg_id: lane.head_msg_id.to_string(),
                    head_since: lane.head_since,
                    head_status: lane.head_status.code(),
                    held: lane.held,
                    waiting: lane.waiting,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(Json(EndpointStats {
        success: stats.success,
        pending: stats.pending,
        sending: stats.sending,
        fail: stats.failed,
        canceled: 0,
        ordered_lanes,
    }))
}
