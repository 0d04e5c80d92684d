//! Partial changes to resources, as data: what a PATCH, a PUT, a secret rotation or a header
//! edit changes, and nothing else.
//!
//! A store applies a change to the row as it is *inside* its own transaction (the row locked),
//! never to a copy the caller read earlier. So two requests at the same moment — a PATCH of
//! the description and a secret rotation, or a PATCH and a `410 Gone` disabling the endpoint —
//! both land: neither writes back fields it did not mean to change. The `apply` functions are
//! pure, so every backend shares them and they are tested here without a database.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use url::Url;

use crate::consent::ConsentMode;
use crate::model::{Application, Endpoint, EventType, OnExhausted};
use crate::name::{ChannelName, EventTypeName, FeatureFlag, Metadata, Uid};
use crate::secret::{SecretString, SigningSecret};
use crate::store::StoreError;
use crate::version::PayloadVersion;

/// Fields of an application to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationChange {
    pub name: Option<String>,
    /// `Some(None)` removes the uid.
    pub uid: Option<Option<Uid>>,
    pub metadata: Option<Metadata>,
    pub throttle_rate: Option<Option<u16>>,
}

impl ApplicationChange {
    /// Applies the change to `app` as it is now.
    pub fn apply(&self, app: &mut Application, now: DateTime<Utc>) {
        set(&mut app.name, &self.name);
        set(&mut app.uid, &self.uid);
        set(&mut app.metadata, &self.metadata);
        set(&mut app.throttle_rate, &self.throttle_rate);
        app.updated_at = now;
    }
}

/// How an endpoint's custom headers change.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadersChange {
    /// The complete new set.
    Replace(BTreeMap<String, SecretString>),
    /// Some headers added or changed, some removed (names compared without case).
    Edit { set: BTreeMap<String, SecretString>, remove: Vec<String> },
}

/// A new signing key; the current one keeps signing for `grace` (zero: not at all).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRotation {
    pub next: SigningSecret,
    pub grace: chrono::Duration,
}

/// Fields of an endpoint to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointChange {
    pub url: Option<Url>,
    pub description: Option<String>,
    /// `Some(None)` removes the uid.
    pub uid: Option<Option<Uid>>,
    pub disabled: Option<bool>,
    /// `Some(None)`: every event type.
    pub event_types: Option<Option<Vec<EventTypeName>>>,
    /// `Some(None)`: every channel.
    pub channels: Option<Option<Vec<ChannelName>>>,
    pub throttle_rate: Option<Option<u16>>,
    pub metadata: Option<Metadata>,
    pub headers: Option<HeadersChange>,
    /// `Some(None)` removes the bearer token.
    pub bearer_token: Option<Option<SecretString>>,
    pub rotate_key: Option<KeyRotation>,
    pub ordered: Option<bool>,
    pub ordered_on_exhausted: Option<OnExhausted>,
    /// `Some(None)`: follow the organisation's setting.
    pub consent: Option<Option<ConsentMode>>,
    pub payload_version: Option<Option<PayloadVersion>>,
    pub transformation: Option<TransformationChange>,
}

/// A change of an endpoint's transformation (`PATCH …/transformation`): absent fields stay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformationChange {
    pub code: Option<Option<String>>,
    pub enabled: Option<bool>,
}

impl EndpointChange {
    /// Applies the change to `endpoint` as it is now.
    pub fn apply(&self, endpoint: &mut Endpoint, now: DateTime<Utc>) {
        if let Some(url) = &self.url {
            // A URL read from the API (credentials masked) and written back keeps its credentials.
            endpoint.url = crate::endpoint_url::unmask(url.clone(), &endpoint.url);
        }
        set(&mut endpoint.description, &self.description);
        set(&mut endpoint.uid, &self.uid);
        set(&mut endpoint.disabled, &self.disabled);
        set(&mut endpoint.event_types, &self.event_types);
        set(&mut endpoint.channels, &self.channels);
        set(&mut endpoint.throttle_rate, &self.throttle_rate);
        set(&mut endpoint.metadata, &self.metadata);
        set(&mut endpoint.bearer_token, &self.bearer_token);
        set(&mut endpoint.ordered, &self.ordered);
        set(&mut endpoint.ordered_on_exhausted, &self.ordered_on_exhausted);
        set(&mut endpoint.consent, &self.consent);
        set(&mut endpoint.payload_version, &self.payload_version);
        if let Some(change) = &self.transformation {
            set(&mut endpoint.transformation.code, &change.code);
            set(&mut endpoint.transformation.enabled, &change.enabled);
            endpoint.transformation.updated_at = Some(now);
        }
        match &self.headers {
            None => {}
            Some(HeadersChange::Replace(headers)) => endpoint.headers = headers.clone(),
            Some(HeadersChange::Edit { set, remove }) => {
                for name in remove {
                    endpoint.headers.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
                }
                for (name, value) in set {
                    endpoint.headers.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
                    endpoint.headers.insert(name.clone(), value.clone());
                }
            }
        }
        if let Some(rotation) = &self.rotate_key {
            endpoint.keys.rotate(rotation.next.clone(), now, rotation.grace);
        }
        endpoint.updated_at = now;
    }
}

/// Fields of an event type to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventTypeChange {
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    pub feature_flags: Option<Vec<FeatureFlag>>,
    pub group_name: Option<Option<String>>,
    pub schemas: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    pub converters: Option<BTreeMap<PayloadVersion, String>>,
    pub validate_payloads: Option<bool>,
    /// Change it only if it is archived now (creating an event type over an archived one of
    /// the same name); otherwise the change is refused with `Conflict { what: "name" }`.
    pub only_if_archived: bool,
}

impl EventTypeChange {
    /// Applies the change to `event_type` as it is now, unless its precondition fails.
    pub fn apply(&self, event_type: &mut EventType, now: DateTime<Utc>) -> Result<(), StoreError> {
        if self.only_if_archived && !event_type.archived {
            return Err(StoreError::Conflict { what: "name" });
        }
        set(&mut event_type.description, &self.description);
        set(&mut event_type.archived, &self.archived);
        set(&mut event_type.deprecated, &self.deprecated);
        set(&mut event_type.feature_flags, &self.feature_flags);
        set(&mut event_type.group_name, &self.group_name);
        set(&mut event_type.schemas, &self.schemas);
        set(&mut event_type.converters, &self.converters);
        set(&mut event_type.validate_payloads, &self.validate_payloads);
        event_type.updated_at = now;
        Ok(())
    }
}

fn set<T: Clone>(field: &mut T, change: &Option<T>) {
    if let Some(value) = change {
        field.clone_from(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ApplicationId, EndpointId};
    use crate::model::EndpointKeys;

    fn endpoint(now: DateTime<Utc>) -> Endpoint {
        Endpoint {
            id: EndpointId::generate_at(now),
            app_id: ApplicationId::generate_at(now),
            uid: None,
            url: "https://example.com/hook".parse().expect("url"),
            description: "before".to_owned(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Metadata::new(),
            keys: EndpointKeys::new(None),
            headers: BTreeMap::from([("X-Tenant".to_owned(), SecretString::new("a".to_owned()))]),
            bearer_token: None,
            ordered: false,
            ordered_on_exhausted: OnExhausted::Skip,
            consent: None,
            consent_state: None,
            payload_version: None,
            transformation: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_url_written_back_masked_keeps_its_credentials() {
        let now = Utc::now();
        let mut ep = endpoint(now);
        ep.url = "https://user:hunter2@example.com/hook".parse().expect("url");
        let masked = crate::endpoint_url::masked(&ep.url).parse().expect("url");
        EndpointChange { url: Some(masked), ..Default::default() }.apply(&mut ep, now);
        assert_eq!(ep.url.as_str(), "https://user:hunter2@example.com/hook");
        let replaced = "https://user:new@example.com/hook".parse().expect("url");
        EndpointChange { url: Some(replaced), ..Default::default() }.apply(&mut ep, now);
        assert_eq!(ep.url.password(), Some("new"));
    }

    #[test]
    fn an_endpoint_change_touches_only_the_fields_it_names() {
        let now = Utc::now();
        let mut ep = endpoint(now);
        let before = ep.clone();
        let later = now + chrono::Duration::seconds(1);
        EndpointChange { description: Some("after".to_owned()), ..Default::default() }.apply(&mut ep, later);
        assert_eq!(ep.description, "after");
        assert_eq!(ep.keys, before.keys);
        assert_eq!(ep.headers, before.headers);
        assert_eq!(ep.disabled, before.disabled);
        assert_eq!(ep.updated_at, later);
    }

    #[test]
    fn a_rotation_keeps_the_old_key_for_its_grace_period() {
        let now = Utc::now();
        let mut ep = endpoint(now);
        let old = ep.keys.current.clone();
        let next = SigningSecret::generate_hmac();
        let rotation = KeyRotation { next: next.clone(), grace: chrono::Duration::hours(1) };
        EndpointChange { rotate_key: Some(rotation), ..Default::default() }.apply(&mut ep, now);
        assert_eq!(ep.keys.current, next);
        assert_eq!(ep.keys.active(now).cloned().collect::<Vec<_>>(), vec![next, old]);
    }

    #[test]
    fn a_header_edit_replaces_names_whatever_their_case() {
        let now = Utc::now();
        let mut ep = endpoint(now);
        let set = BTreeMap::from([("x-tenant".to_owned(), SecretString::new("b".to_owned()))]);
        let change = HeadersChange::Edit { set, remove: vec![] };
        EndpointChange { headers: Some(change), ..Default::default() }.apply(&mut ep, now);
        assert_eq!(ep.headers.len(), 1);
        assert_eq!(ep.headers.get("x-tenant").map(SecretString::expose), Some("b"));
        let change = HeadersChange::Edit { set: BTreeMap::new(), remove: vec!["X-TENANT".to_owned()] };
        EndpointChange { headers: Some(change), ..Default::default() }.apply(&mut ep, now);
        assert!(ep.headers.is_empty());
    }

    #[test]
    fn an_event_type_change_for_an_archived_one_refuses_an_active_one() {
        let now = Utc::now();
        let mut event_type = EventType {
            name: EventTypeName::parse("order.created").expect("name"),
            description: String::new(),
            archived: false,
            deprecated: false,
            feature_flags: vec![],
            group_name: None,
            schemas: None,
            converters: BTreeMap::new(),
            validate_payloads: false,
            created_at: now,
            updated_at: now,
        };
        let change = EventTypeChange { only_if_archived: true, ..Default::default() };
        assert!(matches!(change.apply(&mut event_type, now), Err(StoreError::Conflict { what: "name" })));
        event_type.archived = true;
        let change = EventTypeChange { archived: Some(false), only_if_archived: true, ..Default::default() };
        change.apply(&mut event_type, now).expect("archived: applies");
        assert!(!event_type.archived);
    }
}
