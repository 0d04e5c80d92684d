//! `/api/v1/event-type`: the kinds of events the operator's application emits.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::change::EventTypeChange;
use herald_core::model::EventType;
use herald_core::name::EventTypeName;
use herald_core::store::Ordering;
use herald_core::version::PayloadVersion;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, Query, double_option};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::{NewEventType, Resource, Upserted};

/// A new event type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    /// Letters, digits, `-`, `_`, `.`; at most 256 characters, e.g. `invoice.paid`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// One feature flag (the older, single form of `featureFlags`).
    #[serde(default)]
    pub feature_flag: Option<String>,
    /// Feature flags that gate the event type.
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
    /// A group for displaying event types together.
    #[serde(default)]
    pub group_name: Option<String>,
    /// JSON Schemas of the payload by version, e.g. `{"1": {"type": "object", ...}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Value>,
    /// Herald extension: JavaScript by version N (2 and up) defining
    /// `function convert(payload)`, which turns a version-N payload into a version N−1 one.
    /// Endpoints pinned to an older version receive each message converted step by step.
    #[serde(default)]
    pub converters: Option<BTreeMap<String, String>>,
    /// Herald extension: refuse (422, each violation listed) a message whose payload does not
    /// match the JSON Schema of its version. Default false.
    #[serde(default)]
    pub validate_payloads: bool,
}

/// The full new state of an event type (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Value>,
    /// Herald extension: JavaScript by version N (2 and up) defining
    /// `function convert(payload)`, which turns a version-N payload into a version N−1 one.
    /// Endpoints pinned to an older version receive each message converted step by step.
    #[serde(default)]
    pub converters: Option<BTreeMap<String, String>>,
    /// Herald extension: refuse (422, each violation listed) a message whose payload does not
    /// match the JSON Schema of its version. Default false.
    #[serde(default)]
    pub validate_payloads: bool,
}

/// Changes to an event type; absent fields stay as they are, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub feature_flag: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub group_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Option<Value>>,
    /// Herald extension: the converters by version; `null` removes them all.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub converters: Option<Option<BTreeMap<String, String>>>,
    /// Herald extension: refuse messages whose payload does not match their version's schema.
    #[serde(default)]
    pub validate_payloads: Option<bool>,
}

/// An event type as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    /// The first of `featureFlags`, for clients of the older API.
    pub feature_flag: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub group_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Map<String, Value>>,
    /// Herald extension: the converters by version (with the schemas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converters: Option<BTreeMap<String, String>>,
    /// Herald extension: messages whose payload does not match their version's schema are
    /// refused.
    pub validate_payloads: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventTypeOut {
    fn new(event_type: EventType, with_content: bool) -> Self {
        Self {
            name: event_type.name.to_string(),
            description: event_type.description,
            archived: event_type.archived,
            deprecated: event_type.deprecated,
            feature_flag: event_type.feature_flags.first().map(ToString::to_string),
            feature_flags: (!event_type.feature_flags.is_empty())
                .then(|| event_type.feature_flags.iter().map(ToString::to_string).collect()),
            group_name: event_type.group_name,
            schemas: if with_content { event_type.schemas } else { None },
            converters: (with_content && !event_type.converters.is_empty()).then(|| {
                event_type.converters.iter().map(|(v, code)| (v.to_string(), code.clone())).collect()
            }),
            validate_payloads: event_type.validate_payloads,
            created_at: event_type.created_at,
            updated_at: event_type.updated_at,
        }
    }
}

/// Query of the event-type list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventTypeListParams {
    /// Include archived event types.
    #[serde(default)]
    pub include_archived: bool,
    /// Include each event type's schemas.
    #[serde(default)]
    pub with_content: bool,
}

/// Query of the event-type delete.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete for good instead of archiving.
    #[serde(default)]
    pub expunge: bool,
}

fn parse_schemas(v: &mut Validator, schemas: Option<Value>) -> Option<Map<String, Value>> {
    match schemas? {
        Value::Null => None,
        Value::Object(map) => {
            for (version, schema) in &map {
                if !schema.is_object() {
                    v.fail(&format!("schemas.{version}"), "each schema must be a JSON Schema object");
                }
            }
            Some(map)
        }
        _ => {
            v.fail("schemas", "must be an object of JSON Schemas by version, e.g. {\"1\": {...}}");
            None
        }
    }
}

/// Converters by version: each key a version from 2 up, each source within the size limit
/// (whether it compiles is the use case's check).
fn parse_converters(
    v: &mut Validator,
    converters: BTreeMap<String, String>,
) -> BTreeMap<PayloadVersion, String> {
    let mut parsed = BTreeMap::new();
    for (version, code) in converters {
        match PayloadVersion::parse(&version) {
            Ok(number) if number > PayloadVersion::FIRST => {
                if code.len() > herald_script::MAX_SOURCE_BYTES {
                    v.fail(
                        "converters",
                        format!(
                            "the converter from version {version} is longer than {} bytes",
                            herald_script::MAX_SOURCE_BYTES
                        ),
                    );
                }
                parsed.insert(number, code);
            }
            Ok(_) => {
                v.fail("converters", "a converter turns version N into N-1: its version must be 2 or more")
            }
            Err(reason) => v.fail("converters", format!("converter key: {reason}")),
        }
    }
    if parsed.len() > MAX_CONVERTERS {
        v.fail("converters", format!("at most {MAX_CONVERTERS} converters"));
    }
    parsed
}

/// The most converters one event type may have.
const MAX_CONVERTERS: usize = 32;

/// The flags from `featureFlags`, or the single `featureFlag`, validated and deduplicated.
fn parse_flags(v: &mut Validator, single: Option<String>, many: Option<Vec<String>>) -> Vec<EventTypeName> {
    let (field, names) = match (many, single) {
        (Some(many), _) => ("featureFlags", many),
        (None, Some(one)) => ("featureFlag", vec![one]),
        (None, None) => return Vec::new(),
    };
    let mut flags: Vec<EventTypeName> =
        names.iter().filter_map(|f| v.check(field, EventTypeName::parse(f))).collect();
    flags.sort();
    flags.dedup();
    flags
}

fn parse_path_name(name: &str) -> Result<EventTypeName, ApiError> {
    EventTypeName::parse(name).map_err(|_| ApiError::not_found(Resource::EventType))
}

/// List event types.
#[utoipa::path(get, path = "/api/v1/event-type", tag = "Event Type", params(ListParams, EventTypeListParams),
    responses((status = 200, body = ListResponse<EventTypeOut>), (status = 401, body = HttpErrorOut),
              (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    _caller: Caller,
    Query(params): Query<ListParams>,
    Query(filter): Query<EventTypeListParams>,
) -> Result<Json<ListResponse<EventTypeOut>>, ApiError> {
    let request = params.page_request(Ordering::Ascending)?;
    let page = state.store().list_event_types(&request, filter.include_archived).await?;
    Ok(Json(ListResponse::from_page(
        page,
        &request,
        |e| e.name.to_string(),
        |e| EventTypeOut::new(e, filter.with_content),
    )))
}

impl From<EventTypeIn> for EventTypeUpdate {
    fn from(body: EventTypeIn) -> Self {
        Self {
            description: body.description,
            archived: body.archived,
            deprecated: body.deprecated,
            feature_flag: body.feature_flag,
            feature_flags: body.feature_flags,
            group_name: body.group_name,
            schemas: body.schemas,
            converters: body.converters,
            validate_payloads: body.validate_payloads,
        }
    }
}

/// Parses what a create or a PUT carries besides the name (already checked into `v`);
/// `no_name` is the error when the name was invalid.
fn parse_new(
    mut v: Validator,
    name: Option<EventTypeName>,
    body: EventTypeUpdate,
    no_name: ApiError,
) -> Result<NewEventType, ApiError> {
    let feature_flags = parse_flags(&mut v, body.feature_flag, body.feature_flags);
    let schemas = parse_schemas(&mut v, body.schemas);
    let converters = parse_converters(&mut v, body.converters.unwrap_or_default());
    v.finish()?;
    Ok(NewEventType {
        name: name.ok_or(no_name)?,
        description: body.description,
        archived: body.archived,
        deprecated: body.deprecated,
        feature_flags,
        group_name: body.group_name,
        schemas,
        converters,
        validate_payloads: body.validate_payloads,
    })
}

/// Create an event type (or unarchive an archived one of the same name).
#[utoipa::path(post, path = "/api/v1/event-type", tag = "Event Type", request_body = EventTypeIn,
    responses((status = 201, body = EventTypeOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<EventTypeIn>,
) -> Result<(StatusCode, Json<EventTypeOut>), ApiError> {
    caller.require_organization()?;
    let mut v = Validator::default();
    let name = v.check("name", EventTypeName::parse(&body.name));
    let new = parse_new(v, name, body.into(), ApiError::invalid_field("name", "invalid name"))?;
    let event_type = state.service().create_event_type(new).await?;
    Ok((StatusCode::CREATED, Json(EventTypeOut::new(event_type, true))))
}

/// Get an event type with its schemas.
#[utoipa::path(get, path = "/api/v1/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path, description = "The event type's name")),
    responses((status = 200, body = EventTypeOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<EventTypeOut>, ApiError> {
    let name = parse_path_name(&name)?;
    let event_type = state
        .store()
        .find_event_type(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(Resource::EventType))?;
    Ok(Json(EventTypeOut::new(event_type, true)))
}

/// Replace an event type, creating it when it does not exist.
#[utoipa::path(put, path = "/api/v1/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path, description = "The event type's name")),
    request_body = EventTypeUpdate,
    responses((status = 200, body = EventTypeOut), (status = 201, body = EventTypeOut), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<EventTypeUpdate>,
) -> Result<(StatusCode, Json<EventTypeOut>), ApiError> {
    caller.require_organization()?;
    let mut v = Validator::default();
    let name = v.check("name", EventTypeName::parse(&name));
    let new = parse_new(v, name, body, ApiError::not_found(Resource::EventType))?;
    let (event_type, upserted) = state.service().upsert_event_type(new).await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(EventTypeOut::new(event_type, true))))
}

/// Change some fields of an event type.
#[utoipa::path(patch, path = "/api/v1/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path, description = "The event type's name")),
    request_body = EventTypePatch,
    responses((status = 200, body = EventTypeOut), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<EventTypePatch>,
) -> Result<Json<EventTypeOut>, ApiError> {
    caller.require_organization()?;
    let name = parse_path_name(&name)?;
    let mut v = Validator::default();
    let feature_flags = match (body.feature_flags, body.feature_flag) {
        (Some(many), _) => Some(parse_flags(&mut v, None, many)),
        (None, Some(one)) => Some(parse_flags(&mut v, one, None)),
        (None, None) => None,
    };
    let schemas = body.schemas.map(|schemas| parse_schemas(&mut v, schemas));
    let converters = body.converters.map(|c| parse_converters(&mut v, c.unwrap_or_default()));
    v.finish()?;
    let change = EventTypeChange {
        description: body.description,
        archived: body.archived,
        deprecated: body.deprecated,
        feature_flags,
        group_name: body.group_name,
        schemas,
        converters,
        validate_payloads: body.validate_payloads,
        only_if_archived: false,
    };
    let event_type = state.service().change_event_type(&name, &change).await?;
    Ok(Json(EventTypeOut::new(event_type, true)))
}

/// Archive an event type, or delete it for good with `expunge=true`.
#[utoipa::path(delete, path = "/api/v1/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path, description = "The event type's name"), DeleteParams),
    responses((status = 204, description = "Archived or deleted"), (status = 401, body = HttpErrorOut),
              (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(params): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    caller.require_organization()?;
    let name = parse_path_name(&name)?;
    if params.expunge {
        state.service().expunge_event_type(&name).await?;
    } else {
        let archive = EventTypeChange { archived: Some(true), ..EventTypeChange::default() };
        state.service().change_event_type(&name, &archive).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
