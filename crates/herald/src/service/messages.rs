//! Messages: accepted means durable. The message and one pending delivery per matching
//! enabled endpoint are committed in one store call before this returns; then the worker is
//! woken.

use chrono::{DateTime, Utc};
use herald_core::delivery::Message;
use herald_core::id::{ApplicationId, MessageId};
use herald_core::name::{ChannelName, EventId, EventTypeName, OrderingKey};
use herald_core::store::{ApplicationKey, Key, MessageKey};
use herald_core::version::PayloadVersion;

use super::{Resource, Service, ServiceError};

/// A message to send, parsed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub event_type: EventTypeName,
    pub event_id: Option<EventId>,
    pub channels: Option<Vec<ChannelName>>,
    /// The payload's bytes, exactly as they will be delivered (a JSON object).
    pub payload: Vec<u8>,
    /// Not before this time; a time in the past means now.
    pub deliver_at: Option<DateTime<Utc>>,
    /// How long the payload is kept; the server's default when absent.
    pub payload_retention: Option<chrono::Duration>,
    /// The ordered lane it takes on ordered endpoints.
    pub ordering_key: Option<OrderingKey>,
    /// The version of its event type's payload; `None`: the event type's latest.
    pub payload_version: Option<PayloadVersion>,
}

impl Service {
    /// Stores a message for the application `key` names, if the caller `may_access` it (else
    /// it is not found), with its deliveries (one transaction), and wakes the worker.
    ///
    /// The key is resolved without a store read where it can be (`application_id`); the
    /// store then refuses an application that does not exist. When a uid from this node's
    /// cache named one that is gone, the uid is looked up again and the message sent once
    /// more, so a stale cache never turns away a message an existing application should get.
    pub async fn send_message(
        &self,
        key: &ApplicationKey,
        may_access: impl Fn(&ApplicationId) -> bool,
        new: NewMessage,
    ) -> Result<Message, ServiceError> {
        let not_found = || ServiceError::NotFound(Resource::Application);
        let id = self.application_id(key).await?;
        if !may_access(&id) {
            return Err(not_found());
        }
        let mut message = self.new_message(id, new).await?;
        match self.store_message(&message).await {
            Err(ServiceError::NotFound(Resource::Application)) if matches!(key, Key::Uid(_)) => {
                self.forget_application_id(&message.app_id);
                let id = self.application_id(key).await?;
                if id == message.app_id || !may_access(&id) {
                    return Err(not_found());
                }
                message.app_id = id;
                self.store_message(&message).await?;
            }
            other => other?,
        }
        self.metrics().message_accepted();
        self.worker().wake();
        Ok(message)
    }

    /// Stores the message; a missing application is reported as such.
    async fn store_message(&self, message: &Message) -> Result<(), ServiceError> {
        match self.store().insert_message(message).await {
            Ok(_) => Ok(()),
            Err(herald_core::StoreError::NotFound) => Err(ServiceError::NotFound(Resource::Application)),
            Err(error) => Err(ServiceError::store(Resource::Message)(error)),
        }
    }

    /// The message `new` describes, for application `app`: its version, checked against its
    /// schema where that is asked for.
    async fn new_message(&self, app: ApplicationId, new: NewMessage) -> Result<Message, ServiceError> {
        let versions = self.scripts().versions(&new.event_type).await?;
        let payload_version = new
            .payload_version
            .unwrap_or_else(|| versions.as_ref().map_or(PayloadVersion::FIRST, |v| v.latest));
        if self.inner.validate_payloads || versions.as_ref().is_some_and(|v| v.validate) {
            self.check_payload(versions.as_deref(), payload_version, &new.payload)?;
        }
        let now = self.clock().now();
        let retention = new.payload_retention.unwrap_or_else(|| self.default_payload_retention());
        Ok(Message {
            id: MessageId::generate(),
            app_id: app,
            event_type: new.event_type,
            event_id: new.event_id,
            channels: new.channels.filter(|c| !c.is_empty()),
            payload: Some(new.payload),
            created_at: now,
            deliver_at: new.deliver_at.filter(|at| *at > now),
            payload_expires_at: now + retention,
            ordering_key: new.ordering_key,
            payload_version,
            envelope: None,
        })
    }

    /// A message of `app`, by id or eventId.
    pub async fn message(&self, app: &ApplicationId, key: &MessageKey) -> Result<Message, ServiceError> {
        self.store().find_message(app, key).await?.ok_or(ServiceError::NotFound(Resource::Message))
    }

    /// Removes a message's payload (its deliveries then fail as "expired").
    pub async fn expunge_message_payload(
        &self,
        app: &ApplicationId,
        id: &MessageId,
    ) -> Result<(), ServiceError> {
        if self.store().expunge_message_payload(app, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Resource::Message))
        }
    }

    /// Checks a payload against its version's schema; a version without one is refused.
    fn check_payload(
        &self,
        versions: Option<&crate::scripts::Versions>,
        version: PayloadVersion,
        payload: &[u8],
    ) -> Result<(), ServiceError> {
        let Some(schema) = versions.and_then(|v| v.schemas.get(&version)) else {
            return Err(ServiceError::Invalid {
                field: "payloadVersion",
                reason: format!(
                    "payloads are checked, and the event type has no schema for version {version}"
                ),
            });
        };
        let payload: serde_json::Value = serde_json::from_slice(payload).map_err(|_| {
            ServiceError::Invalid { field: "payload", reason: "the payload is not JSON".to_owned() }
        })?;
        let violations = herald_core::payload_schema::violations(schema, &payload);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::PayloadDoesNotMatch { version, violations })
        }
    }
}
