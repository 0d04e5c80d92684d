//! Application uids recently resolved to ids, so that a client sending messages by uid does
//! not cost a store read per message (on PostgreSQL, a round trip).
//!
//! An entry lives [`TTL`]. Nothing accepted can go astray through a stale entry: a message is
//! written under the id, and the store refuses an id whose application is gone (its foreign
//! key), upon which the sender resolves the uid again from the store and retries once. A uid
//! changed or an application deleted through this node is forgotten at once; through another
//! node, a uid given to a different application reaches this node within [`TTL`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use herald_core::id::ApplicationId;
use herald_core::name::Uid;

/// How long a resolved uid is trusted without asking the store again.
pub const TTL: Duration = Duration::from_secs(1);
/// Uids kept at most; the cache is emptied when full.
const CAPACITY: usize = 10_000;

/// Resolved uids with when they were read.
#[derive(Debug, Default)]
pub struct ApplicationIds {
    entries: Mutex<HashMap<Uid, (ApplicationId, Instant)>>,
}

impl ApplicationIds {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uid, (ApplicationId, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, uid: &Uid) -> Option<ApplicationId> {
        self.lock().get(uid).filter(|(_, at)| at.elapsed() < TTL).map(|(id, _)| id.clone())
    }

    pub fn insert(&self, uid: Uid, id: ApplicationId) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(uid, (id, Instant::now()));
    }

    /// Drops every uid resolved to `id` (its uid changed, or it was deleted).
    pub fn forget(&self, id: &ApplicationId) {
        self.lock().retain(|_, (cached, _)| cached != id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolved_uids_are_kept_until_forgotten() {
        let cache = ApplicationIds::default();
        let uid = Uid::parse("acme").unwrap();
        let id = ApplicationId::generate();
        assert_eq!(cache.get(&uid), None);
        cache.insert(uid.clone(), id.clone());
        assert_eq!(cache.get(&uid), Some(id.clone()));
        cache.forget(&ApplicationId::generate());
        assert_eq!(cache.get(&uid), Some(id.clone()), "another application's change keeps it");
        cache.forget(&id);
        assert_eq!(cache.get(&uid), None);
    }
}
