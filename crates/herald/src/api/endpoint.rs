//! `/api/v1/app/{app_id}/endpoint`: where an application's messages are delivered.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::change::EndpointChange;
use herald_core::consent::{self, ConsentDecision, ConsentMode, ConsentStatus};
use herald_core::headers::{validate_header, validate_header_set};
use herald_core::id::EndpointId;
use herald_core::model::{Application, Endpoint, OnExhausted};
use herald_core::name::{ChannelName, EventTypeName, Metadata, Uid};
use herald_core::secret::{SecretString, SigningSecret};
use herald_core::store::{EndpointKey, Key, Ordering};
use herald_core::version::PayloadVersion;
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, HttpErrorOut, HttpValidationError, Validator};
use crate::api::extract::{Body, Query, double_option};
use crate::api::pagination::{ListParams, ListResponse};
use crate::service::{NewEndpoint, Resource, Upserted};

/// Longest URL accepted, as in the Svix API.
const MAX_URL_LENGTH: usize = 65_536;
/// Most channels one endpoint may subscribe to.
const MAX_CHANNELS: usize = 10;
/// The `version` every endpoint reports: Svix's endpoints carry one (always 1 in practice), and
/// its SDKs 1.x require the field.
const ENDPOINT_VERSION: u8 = 1;
/// Longest bearer token accepted.
const MAX_BEARER_TOKEN_LENGTH: usize = 4096;

/// A new endpoint (POST), or the full new state of one (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    /// Where messages are POSTed: an `http` or `https` URL. Credentials in it (`user:pass@`
    /// before the host) are sent as HTTP Basic authentication, sealed at rest and returned
    /// masked (`user:****@`); a URL sent back with `****` in their place keeps them.
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Only these event types are delivered (all when absent). Each must be a registered
    /// event type. `filterTypes` is accepted as an alias.
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    /// Only messages on one of these channels are delivered (all when absent).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub rate_limit: Option<u16>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// The signing secret (`whsec_…`, or a `whsk_…` ed25519 key); generated when absent.
    /// Ignored by PUT on an existing endpoint: use the rotate operation.
    #[serde(default)]
    pub secret: Option<String>,
    /// Custom headers sent with every delivery. Absent on PUT: unchanged.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Herald extension: sent as `Authorization: Bearer <token>` with every delivery.
    /// Write-only. Absent on PUT: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub bearer_token: Option<Option<String>>,
    /// Herald extension: deliver one message at a time per ordering key (`orderingKey` of a
    /// message), in the order Herald accepted them. Default false.
    #[serde(default)]
    pub ordered: Option<bool>,
    /// Herald extension: `skip` (default: an exhausted head is given up and the lane moves on)
    /// or `pause` (the lane waits until the head is resent or recovered).
    #[serde(default)]
    pub ordered_on_exhausted: Option<String>,
    /// Herald extension: `cloudevents` (the endpoint must consent through the CloudEvents
    /// webhook handshake before it receives anything) or `off`; absent or `null`: the
    /// organisation's setting.
    #[serde(default)]
    pub consent: Option<String>,
    /// Herald extension: the payload version the endpoint receives (e.g. `"1"`): every
    /// message is converted down to the highest version at or below it. Absent or `null`: as
    /// published.
    #[serde(default)]
    pub payload_version: Option<String>,
}

/// Changes to an endpoint; absent fields stay as they are, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub channels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u16>)]
    pub rate_limit: Option<Option<u16>>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub bearer_token: Option<Option<String>>,
    /// Herald extension: deliver one message at a time per ordering key (`orderingKey` of a
    /// message), in the order Herald accepted them.
    #[serde(default)]
    pub ordered: Option<bool>,
    /// Herald extension: `skip` (default: an exhausted head is given up and the lane moves on)
    /// or `pause` (the lane waits until the head is resent or recovered).
    #[serde(default)]
    pub ordered_on_exhausted: Option<String>,
    /// Herald extension: `cloudevents` or `off`; `null`: the organisation's setting.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub consent: Option<Option<String>>,
    /// Herald extension: the payload version the endpoint receives; `null`: as published.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub payload_version: Option<Option<String>>,
}

/// An endpoint as the API returns it. Secrets, header values and the bearer token are not
/// part of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    /// The URL, its credentials (if any) masked: `user:****@`.
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub event_types: Option<BTreeSet<String>>,
    /// The same as `eventTypes`, under the name the Svix SDKs 1.x read.
    #[schema(deprecated)]
    pub filter_types: Option<BTreeSet<String>>,
    pub channels: Option<BTreeSet<String>>,
    pub throttle_rate: Option<u16>,
    pub rate_limit: Option<u16>,
    pub metadata: Metadata,
    /// Always 1: the Svix SDKs 1.x refuse an endpoint without it.
    #[schema(deprecated, example = 1)]
    pub version: u8,
    /// Herald extension: whether deliveries carry a bearer token.
    pub has_bearer_token: bool,
    /// Herald extension: messages are delivered one at a time per ordering key, in the order
    /// Herald accepted them.
    pub ordered: bool,
    /// Herald extension: what an ordered lane does when its head fails for good: `skip` (move
    /// on) or `pause` (wait for a resend or recover).
    pub ordered_on_exhausted: &'static str,
    /// Herald extension: the endpoint's own consent setting (`cloudevents` or `off`); `null`:
    /// the organisation's.
    pub consent: Option<&'static str>,
    /// Herald extension: `notRequired`, `pending` (not asked yet, or awaiting a grant through
    /// the callback: deliveries wait), `granted` or `refused` (deliveries are not attempted).
    pub consent_status: &'static str,
    /// Herald extension: requests a minute the endpoint consented to; absent: no limit of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_rate: Option<u32>,
    /// Herald extension: why consent was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_reason: Option<String>,
    /// Herald extension: the payload version the endpoint is pinned to; `null`: it receives
    /// each message at the version it was published at.
    pub payload_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Herald extension, in the answers of create, replace and change only (absent when there
    /// is nothing to say): advice about the endpoint as saved, such as a URL whose address the
    /// SSRF guard will refuse (`refuse_unroutable_endpoints` makes that a 422 instead).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<EndpointWarning>,
}

/// Advice about an endpoint as saved: the endpoint works as stored, but something about it
/// will not go as its owner probably expects.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWarning {
    /// A stable code: `unroutable_url` (deliveries to the URL's address will be refused by the
    /// SSRF guard unless the operator allows its block in `allowed_cidrs`).
    #[schema(example = "unroutable_url")]
    pub code: &'static str,
    /// A sentence for people.
    pub detail: String,
}

impl EndpointOut {
    /// The endpoint as shown, with its consent status under the organisation's setting `mode`.
    pub fn with_consent(ep: Endpoint, mode: ConsentMode, now: DateTime<Utc>) -> Self {
        let required = ep.consent.unwrap_or(mode) == ConsentMode::CloudEvents;
        let (status, reason) = consent::status(required, &ep.url, ep.consent_state.as_ref(), now);
        let rate = match ep.consent_state.as_ref().map(|s| &s.decision) {
            Some(ConsentDecision::Granted { per_minute }) if status == ConsentStatus::Granted => *per_minute,
            _ => None,
        };
        let mut out = Self::from(ep);
        out.consent_status = status.name();
        out.consent_rate = rate;
        out.consent_reason = reason;
        out
    }
}

/// The endpoint as shown where the organisation's consent setting is not at hand: its status
/// is what its own setting and state say.
impl From<Endpoint> for EndpointOut {
    fn from(ep: Endpoint) -> Self {
        let (consent_status, consent_reason) = consent::status(
            ep.consent == Some(ConsentMode::CloudEvents),
            &ep.url,
            ep.consent_state.as_ref(),
            herald_core::clock::system_now(),
        );
        let names = |list: Option<Vec<String>>| list.map(|l| l.into_iter().collect::<BTreeSet<_>>());
        let event_types = names(ep.event_types.map(|l| l.iter().map(ToString::to_string).collect()));
        Self {
            id: ep.id.to_string(),
            uid: ep.uid.map(|u| u.to_string()),
            url: herald_core::endpoint_url::masked(&ep.url),
            description: ep.description,
            disabled: ep.disabled,
            filter_types: event_types.clone(),
            event_types,
            channels: names(ep.channels.map(|l| l.iter().map(ToString::to_string).collect())),
            throttle_rate: ep.throttle_rate,
            rate_limit: ep.throttle_rate,
            metadata: ep.metadata,
            version: ENDPOINT_VERSION,
            has_bearer_token: ep.bearer_token.is_some(),
            ordered: ep.ordered,
            ordered_on_exhausted: ep.ordered_on_exhausted.name(),
            consent: ep.consent.map(ConsentMode::name),
            consent_status: consent_status.name(),
            consent_rate: None,
            consent_reason,
            payload_version: ep.payload_version.map(|v| v.to_string()),
            created_at: ep.created_at,
            updated_at: ep.updated_at,
            warnings: Vec::new(),
        }
    }
}

/// The endpoint as this node shows it: consent status under the organisation's setting.
fn shown(state: &ApiState, endpoint: Endpoint) -> EndpointOut {
    EndpointOut::with_consent(endpoint, state.service().consent_mode(), state.service().clock().now())
}

/// The endpoint as saved by a create, replace or change: shown, with its warnings.
fn saved(state: &ApiState, endpoint: Endpoint) -> EndpointOut {
    let warnings = state.service().url_warnings(&endpoint.url);
    let mut out = shown(state, endpoint);
    out.warnings =
        warnings.into_iter().map(|detail| EndpointWarning { code: "unroutable_url", detail }).collect();
    out
}

/// Parses an endpoint URL: absolute, `http` or `https`, with a host.
pub fn parse_endpoint_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_LENGTH {
        return Err(format!("the URL must be at most {MAX_URL_LENGTH} characters long"));
    }
    let url = Url::parse(text).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the URL scheme must be http or https, not `{}`", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL must have a host".to_owned());
    }
    Ok(url)
}

fn parse_names<T>(
    v: &mut Validator,
    field: &str,
    names: Option<Vec<String>>,
    parse: fn(&str) -> Result<T, herald_core::name::NameError>,
) -> Option<Vec<T>> {
    let names = names?;
    let mut unique: Vec<String> = names;
    unique.sort();
    unique.dedup();
    if unique.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(unique.len());
    for name in &unique {
        if let Some(parsed) = v.check(field, parse(name)) {
            out.push(parsed);
        }
    }
    Some(out)
}

fn parse_bearer_token(v: &mut Validator, token: Option<Option<String>>) -> Option<Option<SecretString>> {
    token.map(|token| {
        token.and_then(|token| {
            let valid = !token.is_empty()
                && token.len() <= MAX_BEARER_TOKEN_LENGTH
                && token.bytes().all(|b| b.is_ascii_graphic());
            if valid {
                Some(SecretString::new(token))
            } else {
                v.fail(
                    "bearerToken",
                    format!("must be 1 to {MAX_BEARER_TOKEN_LENGTH} visible ASCII characters"),
                );
                None
            }
        })
    })
}

/// Validates custom headers, reporting each bad one under `headers.<name>`. Names keep the case
/// the client sent (as in Svix: `X-Tenant` set is `X-Tenant` read); HTTP compares them without
/// case, so two names that differ only in case are refused.
pub fn parse_headers(v: &mut Validator, headers: BTreeMap<String, String>) -> BTreeMap<String, SecretString> {
    if let Err(msg) = validate_header_set(headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
        v.fail("headers", msg);
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (name, value) in headers {
        if !seen.insert(name.to_ascii_lowercase()) {
            v.fail(&format!("headers.{name}"), format!("`{name}` is given twice (header names ignore case)"));
            continue;
        }
        match validate_header(&name, &value) {
            Ok(()) => {
                out.insert(name, SecretString::new(value));
            }
            Err(msg) => v.fail(&format!("headers.{name}"), msg),
        }
    }
    out
}

/// Parses a uid, which must not have the shape of an id (lookups try ids first, so such a
/// uid could never be used).
fn parse_uid(v: &mut Validator, text: &str) -> Option<Uid> {
    let uid = v.check("uid", Uid::parse(text))?;
    if EndpointId::looks_like(uid.as_str()) {
        v.fail("uid", "a uid must not look like an endpoint id");
        return None;
    }
    Some(uid)
}

/// Parses an [`EndpointIn`] into the settings of a new endpoint (or a PUT's new state).
fn parse_in(body: EndpointIn) -> Result<NewEndpoint, ApiError> {
    let mut v = Validator::default();
    let url = v.check("url", parse_endpoint_url(&body.url));
    let uid = body.uid.as_deref().and_then(|u| parse_uid(&mut v, u));
    let event_types = parse_names(&mut v, "eventTypes", body.event_types, EventTypeName::parse);
    let channels = parse_names(&mut v, "channels", body.channels, ChannelName::parse);
    if channels.as_ref().is_some_and(|c| c.len() > MAX_CHANNELS) {
        v.fail("channels", format!("at most {MAX_CHANNELS} channels"));
    }
    for (field, rate) in [("throttleRate", body.throttle_rate), ("rateLimit", body.rate_limit)] {
        if rate == Some(0) {
            v.fail(field, "must be at least 1 (leave it out for no limit)");
        }
    }
    let secret = body.secret.as_deref().and_then(|s| v.check("secret", SigningSecret::parse(s)));
    let headers = body.headers.map(|h| parse_headers(&mut v, h));
    let bearer_token = parse_bearer_token(&mut v, body.bearer_token);
    let ordered_on_exhausted = match body.ordered_on_exhausted.as_deref() {
        Some(text) => v.check("orderedOnExhausted", OnExhausted::parse(text)),
        None => Some(OnExhausted::default()),
    };
    let consent = body.consent.as_deref().and_then(|c| v.check("consent", ConsentMode::parse(c)));
    let payload_version =
        body.payload_version.as_deref().and_then(|p| v.check("payloadVersion", PayloadVersion::parse(p)));
    v.finish()?;
    Ok(NewEndpoint {
        url: url.ok_or_else(|| ApiError::invalid_field("url", "invalid URL"))?,
        description: body.description.unwrap_or_default(),
        uid,
        disabled: body.disabled.unwrap_or(false),
        event_types,
        channels,
        throttle_rate: body.rate_limit.or(body.throttle_rate),
        metadata: body.metadata.unwrap_or_default(),
        secret,
        headers,
        bearer_token,
        ordered: body.ordered.unwrap_or(false),
        ordered_on_exhausted: ordered_on_exhausted.unwrap_or_default(),
        consent,
        payload_version,
    })
}

/// Parses an [`EndpointPatch`] into the change it asks for.
fn parse_patch(body: EndpointPatch) -> Result<EndpointChange, ApiError> {
    let mut v = Validator::default();
    let url = body.url.as_deref().and_then(|u| v.check("url", parse_endpoint_url(u)));
    let uid = body.uid.map(|uid| uid.and_then(|u| parse_uid(&mut v, &u)));
    let event_types =
        body.event_types.map(|names| parse_names(&mut v, "eventTypes", names, EventTypeName::parse));
    let channels = body.channels.map(|names| parse_names(&mut v, "channels", names, ChannelName::parse));
    if channels.as_ref().and_then(Option::as_ref).is_some_and(|c| c.len() > MAX_CHANNELS) {
        v.fail("channels", format!("at most {MAX_CHANNELS} channels"));
    }
    let rate = body.rate_limit.or(body.throttle_rate);
    if rate == Some(Some(0)) {
        v.fail("rateLimit", "must be at least 1 (null for no limit)");
    }
    let bearer_token = parse_bearer_token(&mut v, body.bearer_token);
    let ordered_on_exhausted = body
        .ordered_on_exhausted
        .as_deref()
        .and_then(|o| v.check("orderedOnExhausted", OnExhausted::parse(o)));
    let consent = match body.consent {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => v.check("consent", ConsentMode::parse(&text)).map(Some),
    };
    let payload_version = match body.payload_version {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => v.check("payloadVersion", PayloadVersion::parse(&text)).map(Some),
    };
    v.finish()?;
    Ok(EndpointChange {
        url,
        description: body.description,
        uid,
        disabled: body.disabled,
        event_types,
        channels,
        throttle_rate: rate,
        metadata: body.metadata,
        bearer_token,
        ordered: body.ordered,
        ordered_on_exhausted,
        consent,
        payload_version,
        ..EndpointChange::default()
    })
}

/// Parses an endpoint's id or uid from a path; a segment that is neither names nothing.
pub fn endpoint_key(text: &str) -> Result<EndpointKey, ApiError> {
    match text.parse::<EndpointId>() {
        Ok(id) => Ok(Key::Id(id)),
        Err(_) => Uid::parse(text).map(Key::Uid).map_err(|_| ApiError::not_found(Resource::Endpoint)),
    }
}

/// Loads an endpoint of `app` named by id or uid, or 404.
pub async fn load(state: &ApiState, app: &Application, key: &str) -> Result<Endpoint, ApiError> {
    Ok(state.service().endpoint(&app.id, &endpoint_key(key)?).await?)
}

/// List an application's endpoints.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"), ListParams),
    responses((status = 200, body = ListResponse<EndpointOut>), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<ListResponse<EndpointOut>>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let request = params.page_request(Ordering::Ascending)?;
    let page = state.store().list_endpoints(&app.id, &request).await?;
    let (mode, now) = (state.service().consent_mode(), state.service().clock().now());
    Ok(Json(ListResponse::from_page(
        page,
        &request,
        |e| e.id.to_string(),
        |e| EndpointOut::with_consent(e, mode, now),
    )))
}

/// Create an endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Body(body): Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let endpoint = state.service().create_endpoint(&app.id, parse_in(body)?).await?;
    Ok((StatusCode::CREATED, Json(saved(&state, endpoint))))
}

/// Get an endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 200, body = EndpointOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    Ok(Json(shown(&state, load(&state, &app, &endpoint_id).await?)))
}

/// Replace an endpoint, creating it (with the path as its uid) when it does not exist.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointIn,
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut), (status = 401, body = HttpErrorOut),
              (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let key = endpoint_key(&endpoint_id)?;
    let (endpoint, upserted) = state.service().upsert_endpoint(&app.id, &key, parse_in(body)?).await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(saved(&state, endpoint))))
}

/// Change some fields of an endpoint.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointOut), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
              (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(body): Body<EndpointPatch>,
) -> Result<Json<EndpointOut>, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    let change = parse_patch(body)?;
    let endpoint = state.service().change_endpoint(&app.id, &endpoint_key(&endpoint_id)?, &change).await?;
    Ok(Json(saved(&state, endpoint)))
}

/// Delete an endpoint.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id or uid"),
           ("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 204, description = "Deleted"), (status = 401, body = HttpErrorOut), (status = 404, body = HttpErrorOut)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = caller.application(&state, &app_id).await?;
    state.service().delete_endpoint(&app.id, &endpoint_key(&endpoint_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
