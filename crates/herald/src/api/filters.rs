//! Query parameters shared by the message and attempt lists: time bounds, comma-separated or
//! repeated event types, statuses.

use chrono::{DateTime, Utc};
use herald_core::delivery::DeliveryStatus;
use herald_core::name::{ChannelName, EventTypeName};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, ValidationErrorItem};

pub fn query_error(name: &str, msg: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![ValidationErrorItem {
        loc: vec!["query".to_owned(), name.to_owned()],
        msg: msg.into(),
        kind: "value_error".to_owned(),
    }])
}

/// Every value of a list parameter: `event_types=a,b`, `event_types=a&event_types=b` and
/// `event_types[]=a` all work, as the various Svix SDKs send them.
pub fn list_param(query: Option<&str>, name: &str) -> Vec<String> {
    let bracketed = format!("{name}[]");
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == name || *key == bracketed)
        .flat_map(|(_, value)| value.split(',').map(|v| v.trim().to_owned()).collect::<Vec<_>>())
        .filter(|value| !value.is_empty())
        .collect()
}

/// The `event_types` parameter, validated.
pub fn event_types_param(query: Option<&str>) -> Result<Vec<EventTypeName>, ApiError> {
    list_param(query, "event_types")
        .iter()
        .map(|name| EventTypeName::parse(name).map_err(|e| query_error("event_types", e.to_string())))
        .collect()
}

/// Parses an RFC 3339 time from a query. A `+` that a client left unencoded arrives as a
/// space and is read as the `+` it was.
pub fn time_param(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    DateTime::parse_from_rfc3339(&value.replace(' ', "+")).map(|t| Some(t.with_timezone(&Utc))).map_err(
        |_| query_error(name, format!("`{value}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z")),
    )
}

/// A channel parameter, validated.
pub fn channel_param(value: Option<&str>) -> Result<Option<ChannelName>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| ChannelName::parse(v).map_err(|e| query_error("channel", e.to_string())))
        .transpose()
}

/// A status parameter: Svix's number (0 success, 1 pending, 2 fail, 3 sending) or its name.
pub fn status_param(value: Option<&str>) -> Result<Option<DeliveryStatus>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let status = match value {
        "0" | "success" => DeliveryStatus::Success,
        "1" | "pending" => DeliveryStatus::Pending,
        "2" | "fail" => DeliveryStatus::Failed,
        "3" | "sending" => DeliveryStatus::Sending,
        other => {
            return Err(query_error(
                "status",
                format!("`{other}` is not a status (0-3, or success, pending, fail, sending)"),
            ));
        }
    };
    Ok(Some(status))
}

/// Filters of the message lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    /// Only messages sent on this channel.
    pub channel: Option<String>,
    /// Only messages created before this time (RFC 3339).
    pub before: Option<String>,
    /// Only messages created after this time (RFC 3339).
    pub after: Option<String>,
    /// Include payloads (default true).
    pub with_content: Option<bool>,
}

/// The `event_types` filter, documented here and read from the raw query by
/// [`event_types_param`] (it may be repeated, which typed query parsing does not allow).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventTypesParam {
    /// Only these event types: comma-separated, or the parameter repeated.
    pub event_types: Option<Vec<String>>,
}

/// Svix's text name of a status.
pub fn status_text(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Failed => "fail",
        DeliveryStatus::Sending => "sending",
    }
}
