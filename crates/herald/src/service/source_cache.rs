//! A node's cache of ingest sources by the hash of their ingest token, so a request to an
//! ingest URL does not read (and unseal) its source from the store every time. Entries live a
//! few seconds; a change, rotation or deletion made through this node empties the cache at
//! once, and one made through another node (PostgreSQL) is seen here within that time, as
//! API tokens are (`api/auth.rs::TokenCache`). No I/O and no clock reads: callers pass the
//! time a replaced token's grace is judged by.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::ingest::Source;
use herald_core::token::TokenHash;

use super::expiring::ExpiringMap;

/// How long a source read from the store is used without reading it again.
const SOURCE_CACHE_TTL: Duration = Duration::from_secs(5);

/// Sources by token hash and, when the token is the one a rotation replaced, until when that
/// token is still accepted (it opens the source only until then, cached or not). Tokens are
/// unguessable, so only sources that exist are ever kept.
#[derive(Debug)]
pub struct SourceCache {
    entries: ExpiringMap<TokenHash, (Arc<Source>, Option<DateTime<Utc>>)>,
}

impl Default for SourceCache {
    fn default() -> Self {
        Self { entries: ExpiringMap::new(SOURCE_CACHE_TTL) }
    }
}

impl SourceCache {
    /// The source this token opened when it was read less than a few seconds ago, unless the
    /// token is a replaced one whose grace ended by `now`.
    pub fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Arc<Source>> {
        let (source, previous_until) = self.entries.get(hash)?;
        previous_until.is_none_or(|until| until > now).then_some(source)
    }

    /// Keeps a source the store found by this token hash.
    pub fn insert(&self, hash: TokenHash, source: Arc<Source>) {
        let previous_until =
            source.previous_token.filter(|(previous, _)| *previous == hash).map(|(_, until)| until);
        self.entries.insert(hash, (source, previous_until));
    }

    /// Forgets every source, after this node changed, rotated or deleted one (or deleted an
    /// application, which may be a source's): the next request reads its source again.
    pub fn forget_all(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use herald_core::id::{ApplicationId, SourceId};
    use herald_core::ingest::{SourceConfig, SourceType};
    use herald_core::name::Metadata;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).single().unwrap_or_default()
    }

    fn source(previous_token: Option<(TokenHash, DateTime<Utc>)>) -> Arc<Source> {
        Arc::new(Source {
            id: SourceId::generate(),
            app_id: ApplicationId::generate(),
            uid: None,
            name: "test".into(),
            kind: SourceType::parse("generic-webhook").unwrap_or_else(|e| panic!("{e}")),
            config: SourceConfig::default(),
            metadata: Metadata::new(),
            token: herald_core::ingest::generate_token(),
            previous_token,
            created_at: at(0),
            updated_at: at(0),
        })
    }

    #[test]
    fn a_source_read_by_its_token_is_found_again_until_forgotten() {
        let cache = SourceCache::default();
        let kept = source(None);
        let hash = TokenHash::of(kept.token.expose());
        assert!(cache.get(&hash, at(1)).is_none());
        cache.insert(hash, Arc::clone(&kept));
        assert_eq!(cache.get(&hash, at(1)).map(|found| found.id.clone()), Some(kept.id.clone()));
        assert!(cache.get(&TokenHash::of("in_another"), at(1)).is_none());
        cache.forget_all();
        assert!(cache.get(&hash, at(1)).is_none());
    }

    #[test]
    fn a_replaced_token_opens_its_cached_source_only_during_its_grace() {
        let cache = SourceCache::default();
        let replaced = TokenHash::of("in_replaced");
        let kept = source(Some((replaced, at(60))));
        let current = TokenHash::of(kept.token.expose());
        cache.insert(replaced, Arc::clone(&kept));
        cache.insert(current, Arc::clone(&kept));
        assert!(cache.get(&replaced, at(59)).is_some());
        assert!(cache.get(&replaced, at(60)).is_none());
        assert!(cache.get(&current, at(600)).is_some(), "the current token has no end");
    }
}
