//! Applications: create (or get), replace or create (PUT), change some fields, delete, and
//! create on demand for a path that names none yet (messages and portal access may do that).

use herald_core::change::ApplicationChange;
use herald_core::id::ApplicationId;
use herald_core::model::Application;
use herald_core::name::{Metadata, Uid};
use herald_core::store::{ApplicationKey, Key};

use super::{Resource, Service, ServiceError, Upserted};

/// A new application, or the full new state of one (PUT), parsed.
#[derive(Debug, Clone)]
pub struct NewApplication {
    pub name: String,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
    pub throttle_rate: Option<u16>,
}

/// How long this node trusts a uid it resolved to an id without reading it again. Nothing
/// accepted can go astray through a stale entry: a message is written under the id, the store
/// refuses an id whose application is gone, and the sender then resolves the uid again
/// (`send_message`). A uid changed or an application deleted through this node is forgotten
/// at once; through another node, a uid given to a different application reaches this node
/// within this time.
pub(super) const APP_ID_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// See `endpoints::UPSERT_TRIES`.
const UPSERT_TRIES: usize = 4;

impl Service {
    /// An application, by id or uid.
    pub async fn application(&self, key: &ApplicationKey) -> Result<Application, ServiceError> {
        self.store().find_application(key).await?.ok_or(ServiceError::NotFound(Resource::Application))
    }

    /// The id an application key names, without reading the store where it can: an id is
    /// taken as it is (the write that uses it finds out whether it exists), a uid is looked
    /// up through this node's cache of resolved uids ([`APP_ID_TTL`]).
    pub async fn application_id(&self, key: &ApplicationKey) -> Result<ApplicationId, ServiceError> {
        match key {
            Key::Id(id) => Ok(id.clone()),
            Key::Uid(uid) => {
                if let Some(id) = self.app_ids.get(uid) {
                    return Ok(id);
                }
                let app = self.application(key).await?;
                self.app_ids.insert(uid.clone(), app.id.clone());
                Ok(app.id)
            }
        }
    }

    /// Drops what this node's cache of resolved uids holds for `id`.
    pub(super) fn forget_application_id(&self, id: &ApplicationId) {
        self.app_ids.retain(|_, cached| cached != id);
    }

    /// Creates an application. With `get_if_exists`, an application that already has the uid
    /// is returned instead (`Upserted::Updated` says so), also when it was created by a
    /// concurrent request.
    pub async fn create_application(
        &self,
        new: NewApplication,
        get_if_exists: bool,
    ) -> Result<(Application, Upserted), ServiceError> {
        let existing = async |uid: &Uid| self.store().find_application(&Key::Uid(uid.clone())).await;
        if let (true, Some(uid)) = (get_if_exists, &new.uid)
            && let Some(app) = existing(uid).await?
        {
            return Ok((app, Upserted::Updated));
        }
        match self.insert_application(new.clone()).await {
            Err(ServiceError::UidTaken(_)) if get_if_exists => {
                let uid = new.uid.as_ref().ok_or(ServiceError::UidTaken(Resource::Application))?;
                let app = existing(uid).await?.ok_or(ServiceError::UidTaken(Resource::Application))?;
                Ok((app, Upserted::Updated))
            }
            other => other.map(|app| (app, Upserted::Created)),
        }
    }

    async fn insert_application(&self, new: NewApplication) -> Result<Application, ServiceError> {
        let now = self.clock().now();
        let app = Application {
            id: ApplicationId::generate_at(now),
            uid: new.uid,
            name: new.name,
            metadata: new.metadata,
            throttle_rate: new.throttle_rate,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_application(&app).await.map_err(ServiceError::store(Resource::Application))?;
        Ok(app)
    }

    /// Creates an application for `path`, a uid that names none yet (the uid becomes the
    /// application's, unless `new` has one). When a concurrent request created it first, that
    /// application is returned.
    pub async fn create_application_for_path(
        &self,
        path: &ApplicationKey,
        mut new: NewApplication,
    ) -> Result<Application, ServiceError> {
        let Key::Uid(path_uid) = path else { return Err(ServiceError::NotFound(Resource::Application)) };
        let uid = new.uid.get_or_insert_with(|| path_uid.clone()).clone();
        match self.insert_application(new).await {
            Err(ServiceError::UidTaken(_)) => self
                .application(&Key::Uid(uid))
                .await
                .map_err(|_| ServiceError::UidTaken(Resource::Application)),
            other => other,
        }
    }

    /// Replaces the application named by `key` with `new`, or creates it when `key` is a uid
    /// that names none. Two PUTs at once both succeed.
    pub async fn upsert_application(
        &self,
        key: &ApplicationKey,
        new: NewApplication,
    ) -> Result<(Application, Upserted), ServiceError> {
        let replacement = ApplicationChange {
            name: Some(new.name.clone()),
            uid: new.uid.clone().map(Some),
            metadata: Some(new.metadata.clone()),
            throttle_rate: Some(new.throttle_rate),
        };
        for _ in 0..UPSERT_TRIES {
            if let Some(existing) = self.store().find_application(key).await? {
                match self.change_application(&existing.id, &replacement).await {
                    Ok(app) => return Ok((app, Upserted::Updated)),
                    Err(ServiceError::NotFound(_)) => continue,
                    Err(error) => return Err(error),
                }
            }
            let Key::Uid(path_uid) = key else { return Err(ServiceError::NotFound(Resource::Application)) };
            let mut fresh = new.clone();
            fresh.uid = Some(fresh.uid.unwrap_or_else(|| path_uid.clone()));
            match self.insert_application(fresh).await {
                Ok(app) => return Ok((app, Upserted::Created)),
                Err(ServiceError::UidTaken(_)) if new.uid.as_ref().is_none_or(|uid| uid == path_uid) => {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ServiceError::UidTaken(Resource::Application))
    }

    /// Changes the fields `change` names, and only those, on the application as it is now.
    pub async fn change_application(
        &self,
        id: &ApplicationId,
        change: &ApplicationChange,
    ) -> Result<Application, ServiceError> {
        let changed = self
            .store()
            .update_application(id, change, self.clock().now())
            .await
            .map_err(ServiceError::store(Resource::Application))?
            .ok_or(ServiceError::NotFound(Resource::Application));
        if change.uid.is_some() {
            self.forget_application_id(id);
        }
        changed
    }

    /// Deletes an application and everything that belongs to it.
    pub async fn delete_application(&self, id: &ApplicationId) -> Result<(), ServiceError> {
        let deleted = self.store().delete_application(id).await;
        self.forget_application_id(id);
        // It may have been an ingest source's application (deleting the source with it).
        self.inner.sources.forget_all();
        if deleted? { Ok(()) } else { Err(ServiceError::NotFound(Resource::Application)) }
    }
}
