//! Event types: create (over an archived one of the same name too), replace or create (PUT),
//! change some fields, archive, expunge.

use herald_core::StoreError;
use herald_core::change::EventTypeChange;
use herald_core::model::EventType;
use herald_core::name::{EventTypeName, FeatureFlag};
use herald_core::version::PayloadVersion;
use std::collections::BTreeMap;

use super::{Resource, Service, ServiceError, Upserted};

/// A new event type, or the full new state of one (PUT), parsed.
#[derive(Debug, Clone)]
pub struct NewEventType {
    pub name: EventTypeName,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub feature_flags: Vec<FeatureFlag>,
    pub group_name: Option<String>,
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    /// JavaScript by the version it converts from (> 1) to the version before it.
    pub converters: BTreeMap<PayloadVersion, String>,
    /// Refuse messages whose payload does not match their version's schema.
    pub validate_payloads: bool,
}

impl NewEventType {
    fn replacement(&self, only_if_archived: bool) -> EventTypeChange {
        EventTypeChange {
            description: Some(self.description.clone()),
            archived: Some(self.archived),
            deprecated: Some(self.deprecated),
            feature_flags: Some(self.feature_flags.clone()),
            group_name: Some(self.group_name.clone()),
            schemas: Some(self.schemas.clone()),
            converters: Some(self.converters.clone()),
            validate_payloads: Some(self.validate_payloads),
            only_if_archived,
        }
    }
}

/// See `endpoints::UPSERT_TRIES`.
const UPSERT_TRIES: usize = 4;

impl Service {
    /// An event type, by name.
    pub async fn event_type(&self, name: &EventTypeName) -> Result<EventType, ServiceError> {
        self.store().find_event_type(name).await?.ok_or(ServiceError::NotFound(Resource::EventType))
    }

    /// Creates an event type. An archived one of the same name is replaced (and unarchived
    /// unless `new` says otherwise); an active one is a conflict.
    pub async fn create_event_type(&self, new: NewEventType) -> Result<EventType, ServiceError> {
        self.check_converters(&new.converters).await?;
        let name = new.name.clone();
        let _forget = Forget(self, &name);
        match self.insert_event_type(&new).await {
            Err(ServiceError::EventTypeExists(_)) => {
                match self
                    .store()
                    .update_event_type(&new.name, &new.replacement(true), self.clock().now())
                    .await
                {
                    Ok(Some(replaced)) => Ok(replaced),
                    // Expunged since: try once more from the start.
                    Ok(None) => self.insert_event_type(&new).await,
                    Err(StoreError::Conflict { .. }) => Err(ServiceError::EventTypeExists(new.name)),
                    Err(error) => Err(error.into()),
                }
            }
            other => other,
        }
    }

    async fn insert_event_type(&self, new: &NewEventType) -> Result<EventType, ServiceError> {
        let now = self.clock().now();
        let event_type = EventType {
            name: new.name.clone(),
            description: new.description.clone(),
            archived: new.archived,
            deprecated: new.deprecated,
            feature_flags: new.feature_flags.clone(),
            group_name: new.group_name.clone(),
            schemas: new.schemas.clone(),
            converters: new.converters.clone(),
            validate_payloads: new.validate_payloads,
            created_at: now,
            updated_at: now,
        };
        match self.store().insert_event_type(&event_type).await {
            Ok(()) => Ok(event_type),
            Err(StoreError::Conflict { .. }) => Err(ServiceError::EventTypeExists(new.name.clone())),
            Err(error) => Err(error.into()),
        }
    }

    /// Replaces the event type, or creates it. Two PUTs at once both succeed.
    pub async fn upsert_event_type(&self, new: NewEventType) -> Result<(EventType, Upserted), ServiceError> {
        self.check_converters(&new.converters).await?;
        let name = new.name.clone();
        let _forget = Forget(self, &name);
        let replacement = new.replacement(false);
        for _ in 0..UPSERT_TRIES {
            if let Some(updated) =
                self.store().update_event_type(&new.name, &replacement, self.clock().now()).await?
            {
                return Ok((updated, Upserted::Updated));
            }
            match self.insert_event_type(&new).await {
                Ok(created) => return Ok((created, Upserted::Created)),
                Err(ServiceError::EventTypeExists(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(ServiceError::EventTypeExists(new.name))
    }

    /// Changes the fields `change` names, and only those, on the event type as it is now.
    pub async fn change_event_type(
        &self,
        name: &EventTypeName,
        change: &EventTypeChange,
    ) -> Result<EventType, ServiceError> {
        if let Some(converters) = &change.converters {
            self.check_converters(converters).await?;
        }
        let _forget = Forget(self, name);
        self.store()
            .update_event_type(name, change, self.clock().now())
            .await?
            .ok_or(ServiceError::NotFound(Resource::EventType))
    }

    /// Removes an event type for good (archiving is a change: `archived: true`).
    pub async fn expunge_event_type(&self, name: &EventTypeName) -> Result<(), ServiceError> {
        let _forget = Forget(self, name);
        if self.store().expunge_event_type(name).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Resource::EventType))
        }
    }

    /// Compiles each converter: one that does not compile, or lacks `function convert`, is
    /// refused with the version and the line.
    async fn check_converters(
        &self,
        converters: &BTreeMap<PayloadVersion, String>,
    ) -> Result<(), ServiceError> {
        for (version, code) in converters {
            let script = herald_script::Script::new(code.as_str(), "convert");
            if let Err(error) = self.scripts().engine().check(&script).await {
                return Err(ServiceError::ScriptDoesNotCompile {
                    field: format!("converters.{version}"),
                    reason: format!("the converter from version {version} does not compile: {error}"),
                });
            }
        }
        Ok(())
    }
}

/// Drops the cached versions of an event type when a write of it ends, whatever its outcome,
/// so the next message and delivery read what the store holds.
struct Forget<'a>(&'a Service, &'a EventTypeName);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.scripts().forget(self.1);
    }
}
