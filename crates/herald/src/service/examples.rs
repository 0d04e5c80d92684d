//! Example events: one message, built from an event type's schema (its `examples`, or one
//! generated from it), sent to one endpoint only, to test a receiver; and a preview of what a
//! recent message would look like at another payload version, before moving a pin.

use herald_core::delivery::{Message, MessageFilter};
use herald_core::id::{ApplicationId, MessageId};
use herald_core::name::EventTypeName;
use herald_core::store::{EndpointKey, Ordering, PageRequest};
use herald_core::version::PayloadVersion;

use super::{Resource, Service, ServiceError};

impl Service {
    /// Sends the event type's example number `index` (at its latest version) to the endpoint
    /// named by `key`, and to no other, whatever the endpoint's filters.
    pub async fn send_example(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
        event_type: &EventTypeName,
        index: usize,
    ) -> Result<Message, ServiceError> {
        let endpoint = self.endpoint(app, key).await?;
        let registered = self.event_type(event_type).await?;
        let version = PayloadVersion::latest_in(registered.schemas.as_ref());
        let schema = registered
            .schemas
            .as_ref()
            .and_then(|schemas| schemas.get(&version.to_string()))
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let payload = herald_core::example::pick(&schema, index).map_err(|count| ServiceError::Invalid {
            field: "exampleIndex",
            reason: format!("the schema of version {version} has {count} examples (0 to {})", count - 1),
        })?;
        if !payload.is_object() {
            return Err(ServiceError::Invalid {
                field: "exampleIndex",
                reason: format!("example {index} of the schema of version {version} is not a JSON object"),
            });
        }
        let now = self.clock().now();
        let retention = self.default_payload_retention();
        let message = Message {
            id: MessageId::generate(),
            app_id: app.clone(),
            event_type: event_type.clone(),
            event_id: None,
            channels: None,
            payload: Some(payload.to_string().into_bytes()),
            created_at: now,
            deliver_at: None,
            payload_expires_at: now + retention,
            ordering_key: None,
            payload_version: version,
            envelope: None,
        };
        self.store().insert_message_for_endpoint(&message, &endpoint.id).await.map_err(
            |error| match error {
                // Deleted since it was read.
                herald_core::StoreError::NotFound => ServiceError::NotFound(Resource::Endpoint),
                other => ServiceError::store(Resource::Message)(other),
            },
        )?;
        self.metrics().message_accepted();
        self.worker().wake();
        Ok(message)
    }

    /// The endpoint's most recent message as an endpoint pinned to `version` would receive it
    /// (converted down from the version it was published at; unchanged when at or below it).
    pub async fn preview_payload(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
        version: PayloadVersion,
    ) -> Result<Preview, ServiceError> {
        let endpoint = self.endpoint(app, key).await?;
        let page = PageRequest { limit: 1, order: Ordering::Descending, ..PageRequest::default() };
        let recent = self
            .store()
            .list_endpoint_messages(app, &endpoint.id, &MessageFilter::default(), None, &page)
            .await?;
        let message = recent
            .items
            .into_iter()
            .map(|item| item.message)
            .find(|message| message.payload.is_some())
            .ok_or(ServiceError::NotFound(Resource::Message))?;
        let payload = message.payload.as_deref().unwrap_or_default();
        let converted = self
            .scripts()
            .convert(&message.event_type, payload, message.payload_version, Some(version))
            .await
            .map_err(|error| ServiceError::ScriptFailed {
                reason: format!("the preview could not be made: {error}"),
            })?;
        Ok(Preview { message, version: converted.version, payload: converted.payload })
    }
}

/// A recent message at another payload version.
#[derive(Debug)]
pub struct Preview {
    pub message: Message,
    /// The version the payload is at (the asked one, or what was published when lower).
    pub version: PayloadVersion,
    pub payload: Vec<u8>,
}
