//! Endpoints: create, replace or create (PUT), change some fields, rotate the secret, edit
//! headers, delete. Every change is a narrow [`EndpointChange`] the store applies to the
//! endpoint as it is, so concurrent changes of different fields all land.

use std::collections::BTreeMap;

use herald_core::change::EndpointChange;
use herald_core::consent::ConsentMode;
use herald_core::headers::validate_header_set;
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::model::{Endpoint, EndpointKeys, OnExhausted};
use herald_core::name::{ChannelName, EventTypeName, Metadata, Uid};
use herald_core::secret::{SecretString, SigningSecret};
use herald_core::store::{EndpointKey, Key};
use url::Url;

use super::{Resource, Service, ServiceError};

/// A new endpoint, or the full new state of one (PUT), parsed.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: Url,
    pub description: String,
    pub uid: Option<Uid>,
    pub disabled: bool,
    pub event_types: Option<Vec<EventTypeName>>,
    pub channels: Option<Vec<ChannelName>>,
    pub throttle_rate: Option<u16>,
    pub metadata: Metadata,
    /// Generated when absent. A PUT on an existing endpoint ignores it (rotate instead).
    pub secret: Option<SigningSecret>,
    /// Absent on a PUT: unchanged.
    pub headers: Option<BTreeMap<String, SecretString>>,
    /// Absent on a PUT: unchanged; `Some(None)`: removed.
    pub bearer_token: Option<Option<SecretString>>,
    /// Deliver in ordered lanes (an extension).
    pub ordered: bool,
    pub ordered_on_exhausted: OnExhausted,
    /// Whether it must consent first; `None`: the organisation's setting (an extension).
    pub consent: Option<ConsentMode>,
    /// The payload version it receives; `None`: as published (an extension).
    pub payload_version: Option<herald_core::version::PayloadVersion>,
}

impl NewEndpoint {
    /// What a PUT of these settings changes on an existing endpoint: every field it carries,
    /// but not the secret, and the headers and bearer token only when given.
    fn replacement(&self) -> EndpointChange {
        EndpointChange {
            url: Some(self.url.clone()),
            description: Some(self.description.clone()),
            uid: self.uid.clone().map(Some),
            disabled: Some(self.disabled),
            event_types: Some(self.event_types.clone()),
            channels: Some(self.channels.clone()),
            throttle_rate: Some(self.throttle_rate),
            metadata: Some(self.metadata.clone()),
            headers: self.headers.clone().map(herald_core::change::HeadersChange::Replace),
            bearer_token: self.bearer_token.clone(),
            rotate_key: None,
            ordered: Some(self.ordered),
            ordered_on_exhausted: Some(self.ordered_on_exhausted),
            consent: Some(self.consent),
            payload_version: Some(self.payload_version),
            transformation: None,
        }
    }
}

/// Whether a PUT created the resource or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// How often a PUT looks again after a concurrent PUT or DELETE of the same resource got in
/// between its read and its write. Each retry means another request made progress.
const UPSERT_TRIES: usize = 4;

impl Service {
    /// Grants the pending consent a handshake's callback token stands for (the endpoint's
    /// asynchronous answer), allowing `per_minute` requests a minute (`None`: no limit of its
    /// own); the endpoint's lane on this node hears about it at once.
    pub async fn grant_consent(
        &self,
        token: &str,
        per_minute: Option<u32>,
    ) -> Result<(ApplicationId, EndpointId), ServiceError> {
        let hash = herald_core::token::TokenHash::of(token);
        let granted = self.store().grant_endpoint_consent(&hash, per_minute, self.clock().now()).await?;
        let (app, endpoint) = granted.ok_or(ServiceError::ConsentCallbackUnknown)?;
        tracing::info!(app = %app, endpoint = %endpoint, "consent granted through the callback");
        self.inner.operational.send(crate::worker::operational::Event::EndpointConsent {
            app_id: app.clone(),
            endpoint_id: endpoint.clone(),
            status: herald_core::consent::ConsentStatus::Granted,
            reason: None,
            at: self.clock().now(),
        });
        self.worker().endpoint_changed(&endpoint);
        self.worker().wake();
        Ok((app, endpoint))
    }

    /// Why deliveries to `url` will be refused by the SSRF guard, when that is known without
    /// DNS (an IP literal outside `allowed_cidrs`, `localhost`): advice shown with the endpoint.
    pub fn url_warnings(&self, url: &Url) -> Vec<String> {
        let refusal = crate::worker::ssrf::refusal_known_now(&self.inner.address_policy, url);
        refusal
            .map(|refused| format!("deliveries to this URL will be refused: {refused}"))
            .into_iter()
            .collect()
    }

    /// Refuses a URL the guard will refuse, when the operator asked for that.
    fn check_routable(&self, url: &Url) -> Result<(), ServiceError> {
        if !self.inner.refuse_unroutable_endpoints {
            return Ok(());
        }
        match crate::worker::ssrf::refusal_known_now(&self.inner.address_policy, url) {
            Some(refused) => Err(ServiceError::UnroutableUrl(refused.to_string())),
            None => Ok(()),
        }
    }

    /// An endpoint of `app`, by id or uid.
    pub async fn endpoint(&self, app: &ApplicationId, key: &EndpointKey) -> Result<Endpoint, ServiceError> {
        self.store().find_endpoint(app, key).await?.ok_or(ServiceError::NotFound(Resource::Endpoint))
    }

    /// Creates an endpoint.
    pub async fn create_endpoint(
        &self,
        app: &ApplicationId,
        new: NewEndpoint,
    ) -> Result<Endpoint, ServiceError> {
        self.check_routable(&new.url)?;
        self.check_scheme(&new.url)?;
        self.check_event_types(new.event_types.as_ref()).await?;
        self.insert_endpoint(app, new).await
    }

    /// With `endpoint_https_only`, an endpoint's URL must be `https://` (as in Svix).
    fn check_scheme(&self, url: &url::Url) -> Result<(), ServiceError> {
        if self.inner.endpoint_https_only && url.scheme() != "https" {
            return Err(ServiceError::Invalid {
                field: "url",
                reason: "this server delivers only to https:// URLs (endpoint_https_only)".to_owned(),
            });
        }
        Ok(())
    }

    async fn insert_endpoint(&self, app: &ApplicationId, new: NewEndpoint) -> Result<Endpoint, ServiceError> {
        let now = self.clock().now();
        let endpoint = Endpoint {
            id: EndpointId::generate_at(now),
            app_id: app.clone(),
            uid: new.uid,
            url: new.url,
            description: new.description,
            disabled: new.disabled,
            event_types: new.event_types,
            channels: new.channels,
            throttle_rate: new.throttle_rate,
            metadata: new.metadata,
            keys: EndpointKeys::new(new.secret),
            headers: new.headers.unwrap_or_default(),
            bearer_token: new.bearer_token.flatten(),
            ordered: new.ordered,
            ordered_on_exhausted: new.ordered_on_exhausted,
            consent: new.consent,
            consent_state: None,
            payload_version: new.payload_version,
            transformation: Default::default(),
            created_at: now,
            updated_at: now,
        };
        self.store().insert_endpoint(&endpoint).await.map_err(ServiceError::store(Resource::Endpoint))?;
        Ok(endpoint)
    }

    /// Replaces the endpoint named by `key` with `new`, or creates it when `key` is a uid that
    /// names none (the uid becomes the new endpoint's, unless `new` has one). Two PUTs of the
    /// same endpoint at once both succeed: one creates, the other updates.
    pub async fn upsert_endpoint(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
        new: NewEndpoint,
    ) -> Result<(Endpoint, Upserted), ServiceError> {
        self.check_routable(&new.url)?;
        self.check_scheme(&new.url)?;
        self.check_event_types(new.event_types.as_ref()).await?;
        let replacement = new.replacement();
        for _ in 0..UPSERT_TRIES {
            if let Some(existing) = self.store().find_endpoint(app, key).await? {
                match self.apply_endpoint_change(app, &existing.id, &replacement).await {
                    Ok(endpoint) => return Ok((endpoint, Upserted::Updated)),
                    // Deleted since it was read: create it again, as if it had not been there.
                    Err(ServiceError::NotFound(_)) => continue,
                    Err(error) => return Err(error),
                }
            }
            let Key::Uid(path_uid) = key else { return Err(ServiceError::NotFound(Resource::Endpoint)) };
            let mut fresh = new.clone();
            fresh.uid = Some(fresh.uid.unwrap_or_else(|| path_uid.clone()));
            match self.insert_endpoint(app, fresh).await {
                Ok(endpoint) => return Ok((endpoint, Upserted::Created)),
                // Another request created it since it was looked for: update that one.
                Err(ServiceError::UidTaken(_)) if new.uid.as_ref().is_none_or(|uid| uid == path_uid) => {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ServiceError::UidTaken(Resource::Endpoint))
    }

    /// Changes the fields `change` names, and only those, on the endpoint as it is now.
    pub async fn change_endpoint(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
        change: &EndpointChange,
    ) -> Result<Endpoint, ServiceError> {
        if let Some(url) = &change.url {
            self.check_routable(url)?;
            self.check_scheme(url)?;
        }
        if let Some(event_types) = &change.event_types {
            self.check_event_types(event_types.as_ref()).await?;
        }
        let current = self.endpoint(app, key).await?;
        if change.headers.is_some() {
            // The edited set must stay within the caps too (an edit adds to what is there).
            let mut edited = current.clone();
            change.apply(&mut edited, current.updated_at);
            let headers = edited.headers.iter().map(|(name, value)| (name.as_str(), value.expose()));
            validate_header_set(headers)
                .map_err(|reason| ServiceError::Invalid { field: "headers", reason })?;
        }
        self.apply_endpoint_change(app, &current.id, change).await
    }

    async fn apply_endpoint_change(
        &self,
        app: &ApplicationId,
        id: &EndpointId,
        change: &EndpointChange,
    ) -> Result<Endpoint, ServiceError> {
        let now = self.clock().now();
        let changed = self
            .store()
            .update_endpoint(app, id, change, now)
            .await
            .map_err(ServiceError::store(Resource::Endpoint))?
            .ok_or(ServiceError::NotFound(Resource::Endpoint))?;
        self.worker().endpoint_changed(id);
        Ok(changed)
    }

    /// Deletes an endpoint, with its deliveries and attempts.
    pub async fn delete_endpoint(&self, app: &ApplicationId, key: &EndpointKey) -> Result<(), ServiceError> {
        let endpoint = self.endpoint(app, key).await?;
        if !self.store().delete_endpoint(app, &endpoint.id).await? {
            return Err(ServiceError::NotFound(Resource::Endpoint));
        }
        self.worker().endpoint_changed(&endpoint.id);
        Ok(())
    }

    /// Fails when an event-type filter names event types that are not registered.
    async fn check_event_types(&self, names: Option<&Vec<EventTypeName>>) -> Result<(), ServiceError> {
        let Some(names) = names else { return Ok(()) };
        let unknown = self.store().unknown_event_types(names).await?;
        if unknown.is_empty() { Ok(()) } else { Err(ServiceError::UnknownEventTypes(unknown)) }
    }
}
