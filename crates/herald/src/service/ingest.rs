//! The ingest gateway's use cases: managing sources (each backed by a hidden application whose
//! endpoints are its destinations) and receiving an event at a source's ingest URL: verify,
//! deduplicate, store (committed before the answer), and let the delivery engine forward it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::delivery::{Envelope, Message};
use herald_core::id::{ApplicationId, MessageId, SourceId};
use herald_core::ingest::verify::{self, Identity, Request};
use herald_core::ingest::{Refusal, RefusalReason, Source, SourceChange, SourceConfig, SourceType};
use herald_core::model::Application;
use herald_core::name::{EventId, EventTypeName, Metadata, Uid};
use herald_core::secret::SecretString;
use herald_core::store::{Key, MessageKey, Page, PageRequest, SourceKey};
use herald_core::token::TokenHash;
use sha2::{Digest, Sha256};

use super::{Resource, Service, ServiceError};

/// A source to create, parsed.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: String,
    pub uid: Option<Uid>,
    pub kind: SourceType,
    pub config: SourceConfig,
    pub metadata: Metadata,
}

/// A request to an ingest URL, as the HTTP edge read it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub token: &'a str,
    pub method: &'a str,
    /// The URL as the provider called it (public base URL + path and query).
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The sender's address, for the refusal log.
    pub address: String,
}

/// What became of a request to an ingest URL.
#[derive(Debug)]
pub enum Received {
    /// Verified, stored, to be forwarded.
    Accepted(MessageId),
    /// Verified, but its delivery id was accepted within the window: not forwarded again.
    Duplicate(MessageId),
    /// A verified URL check (Slack, Zoom): answered with this body, nothing stored.
    Challenge(serde_json::Value),
}

impl Service {
    /// The ingest URL of a source with this token.
    pub fn ingest_url(&self, token: &SecretString) -> String {
        format!("{}/in/{}", self.inner.public_url, token.expose())
    }

    /// Creates a source with its hidden application and a fresh ingest token.
    pub async fn create_source(&self, new: NewSource) -> Result<Source, ServiceError> {
        check_config(&new.kind, &new.config)?;
        let now = self.clock().now();
        let app = Application {
            id: ApplicationId::generate(),
            uid: None,
            name: format!("ingest source: {}", new.name),
            metadata: Metadata::new(),
            throttle_rate: None,
            created_at: now,
            updated_at: now,
        };
        let source = Source {
            id: SourceId::generate(),
            app_id: app.id.clone(),
            uid: new.uid,
            name: new.name,
            kind: new.kind,
            config: new.config,
            metadata: new.metadata,
            token: herald_core::ingest::generate_token(),
            previous_token: None,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_source(&source, &app).await.map_err(ServiceError::store(Resource::Source))?;
        Ok(source)
    }

    pub async fn source(&self, key: &SourceKey) -> Result<Source, ServiceError> {
        self.store().find_source(key).await?.ok_or(ServiceError::NotFound(Resource::Source))
    }

    pub async fn list_sources(&self, page: &PageRequest) -> Result<Page<Source>, ServiceError> {
        Ok(self.store().list_sources(page).await?)
    }

    /// Changes a source (PUT, PATCH); a new type or config must still verify.
    pub async fn change_source(&self, key: &SourceKey, change: SourceChange) -> Result<Source, ServiceError> {
        let source = self.source(key).await?;
        let kind = change.kind.as_ref().unwrap_or(&source.kind);
        let config = change.config.as_ref().unwrap_or(&source.config);
        check_config(kind, config)?;
        let now = self.clock().now();
        let changed = self
            .store()
            .update_source(&source.id, &change, now)
            .await
            .map_err(ServiceError::store(Resource::Source))?
            .ok_or(ServiceError::NotFound(Resource::Source));
        // Emptied once the change is stored, so requests from now on read the new source (one
        // that read the old row a moment before may still keep it, for the cache's 5 s at most).
        self.inner.sources.forget_all();
        changed
    }

    /// Replaces the source's token; the old one keeps working for `ingest_token_grace`.
    pub async fn rotate_source_token(&self, key: &SourceKey) -> Result<Source, ServiceError> {
        let grace =
            chrono::Duration::from_std(self.inner.ingest.token_grace).unwrap_or(chrono::Duration::hours(48));
        let until = self.clock().now() + grace;
        let change = SourceChange {
            rotate_token: Some((herald_core::ingest::generate_token(), until)),
            ..SourceChange::default()
        };
        self.change_source(key, change).await
    }

    /// Deletes the source with its destinations, events and refusal log.
    pub async fn delete_source(&self, key: &SourceKey) -> Result<(), ServiceError> {
        let source = self.source(key).await?;
        let deleted = self.store().delete_source(&source.id).await?;
        self.inner.sources.forget_all();
        if deleted { Ok(()) } else { Err(ServiceError::NotFound(Resource::Source)) }
    }

    /// The source's newest refusals, newest first.
    pub async fn source_refusals(&self, key: &SourceKey, limit: u16) -> Result<Vec<Refusal>, ServiceError> {
        let source = self.source(key).await?;
        Ok(self.store().list_refusals(&source.id, limit).await?)
    }

    /// The source a token opens, if any (the current token, or a replaced one in its grace).
    /// Read from this node's cache when it was read a few seconds ago ([`SourceCache`]).
    ///
    /// [`SourceCache`]: super::SourceCache
    pub async fn source_by_token(&self, token: &str) -> Result<Arc<Source>, ServiceError> {
        let hash = TokenHash::of(token);
        let now = self.clock().now();
        if let Some(source) = self.inner.sources.get(&hash, now) {
            return Ok(source);
        }
        let Some(found) = self.store().find_source_by_token(&hash, now).await? else {
            self.metrics().ingest.refused(None);
            return Err(ServiceError::NotFound(Resource::IngestToken));
        };
        let source = Arc::new(found);
        self.inner.sources.insert(hash, Arc::clone(&source));
        Ok(source)
    }

    /// Logs and counts a refusal of a request to the source's URL, and returns its error.
    pub async fn refuse(&self, source: &Source, reason: RefusalReason, address: &str) -> ServiceError {
        self.metrics().ingest.refused(Some(reason));
        let refusal = Refusal {
            source_id: source.id.clone(),
            reason,
            at: self.clock().now(),
            address: address.to_owned(),
        };
        if let Err(error) = self.store().record_refusal(&refusal).await {
            tracing::warn!(source = %source.id, error = %error, "could not log a refused ingest request");
        }
        ServiceError::IngestRefused(reason)
    }

    /// Receives a request at a source's ingest URL: verified, deduplicated, and stored with one
    /// delivery per matching destination (committed) before this returns.
    pub async fn receive(&self, source: &Source, incoming: Incoming<'_>) -> Result<Received, ServiceError> {
        let now = self.clock().now();
        let request = Request {
            method: incoming.method,
            url: &incoming.url,
            headers: &incoming.headers,
            body: &incoming.body,
        };
        let scheme = source.kind.scheme();
        if let Err(reason) = verify::verify(scheme, &source.config, &request, now) {
            return Err(self.refuse(source, reason, &incoming.address).await);
        }
        if let Some(answer) = verify::challenge(scheme, &source.config, &request) {
            return Ok(Received::Challenge(answer));
        }
        let identity = verify::identify(scheme, &request);
        let envelope = Envelope {
            content_type: request.header("content-type").unwrap_or("application/octet-stream").to_owned(),
            headers: incoming
                .headers
                .iter()
                .filter(|(name, _)| scheme.forwarded_headers().contains(&name.as_str()))
                .cloned()
                .collect(),
        };
        let retention = self.default_payload_retention();
        let mut message = Message {
            id: MessageId::generate(),
            app_id: source.app_id.clone(),
            event_type: event_type(source, &identity),
            // Deduplication: the store refuses a second message with this id (below).
            event_id: identity.delivery_id.as_deref().map(event_id),
            channels: None,
            payload: Some(incoming.body),
            created_at: now,
            deliver_at: None,
            payload_expires_at: now + retention,
            ordering_key: None,
            payload_version: herald_core::version::PayloadVersion::FIRST,
            envelope: Some(envelope),
        };
        // A new delivery id is stored without reading first: the insert's uniqueness check is
        // the lookup, and only a delivery id seen before costs a read.
        match self.store().insert_message(&message).await {
            Ok(_) => {}
            Err(herald_core::StoreError::Conflict { what: "eventId" }) => {
                let key = MessageKey::EventId(
                    message.event_id.take().ok_or(ServiceError::NotFound(Resource::Message))?,
                );
                match self.store().find_message(&source.app_id, &key).await? {
                    // Seen before the window: a new event, whose id can no longer be unique.
                    Some(seen) if !self.within_dedup_window(seen.created_at, now) => {
                        self.store()
                            .insert_message(&message)
                            .await
                            .map_err(ServiceError::store(Resource::Message))?;
                    }
                    // Seen within the window (or at this very moment, by a copy that arrived
                    // alongside, whose message may already be gone again): a duplicate.
                    seen => {
                        self.metrics().ingest.duplicate();
                        return Ok(Received::Duplicate(seen.map_or(message.id, |m| m.id)));
                    }
                }
            }
            Err(error) => return Err(ServiceError::store(Resource::Message)(error)),
        }
        self.metrics().ingest.received();
        self.worker().wake();
        Ok(Received::Accepted(message.id))
    }

    fn within_dedup_window(&self, seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let window =
            chrono::Duration::from_std(self.inner.ingest.dedup_window).unwrap_or(chrono::Duration::days(3));
        seen > now - window
    }

    /// Looks a source up by id or uid for a path segment.
    pub fn source_key(text: &str) -> Result<SourceKey, ServiceError> {
        if text.starts_with(SourceId::PREFIX) {
            return text.parse().map(Key::Id).map_err(|_| ServiceError::NotFound(Resource::Source));
        }
        Uid::parse(text).map(Key::Uid).map_err(|_| ServiceError::NotFound(Resource::Source))
    }
}

fn check_config(kind: &SourceType, config: &SourceConfig) -> Result<(), ServiceError> {
    config.check(kind.scheme()).map_err(|reason| ServiceError::Invalid { field: "config", reason })
}

/// The provider's delivery id as an `eventId`: as it is when it is a valid one, else its
/// SHA-256 (so any id deduplicates).
fn event_id(delivery_id: &str) -> EventId {
    EventId::parse(delivery_id).unwrap_or_else(|_| {
        let digest = Sha256::digest(delivery_id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        EventId::parse(&format!("sha256-{hex}")).unwrap_or_else(|_| unreachable_event_id())
    })
}

#[allow(clippy::unwrap_used)]
fn unreachable_event_id() -> EventId {
    EventId::parse("ingest").unwrap()
}

/// The event type of a forwarded message: the provider's, with characters an event type name
/// cannot hold turned into `.` (Shopify's `orders/create` is `orders.create`); the source's
/// type name when the provider names none.
fn event_type(source: &Source, identity: &Identity) -> EventTypeName {
    let cleaned = identity.event_type.as_deref().map(|text| {
        text.chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '.' })
            .take(256)
            .collect::<String>()
    });
    cleaned
        .and_then(|text| EventTypeName::parse(&text).ok())
        .or_else(|| EventTypeName::parse(source.kind.name()).ok())
        .unwrap_or_else(fallback_type)
}

#[allow(clippy::unwrap_used)]
fn fallback_type() -> EventTypeName {
    EventTypeName::parse("ingest.event").unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_that_are_not_event_ids_are_hashed() {
        assert_eq!(
            event_id("72d3162e-cc78-11e3-81ab-4c9367dc0958").as_str(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        let hashed = event_id("has space/and slash");
        assert!(hashed.as_str().starts_with("sha256-"));
        assert_eq!(hashed, event_id("has space/and slash"));
    }
}
