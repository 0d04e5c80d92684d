//! A map whose entries expire: what a node remembers of the store for a few seconds, so a busy
//! client does not cost a store read per request (application uids resolved to ids, ingest
//! sources by token hash). Each entry lives the map's time to live from when it was put in;
//! a full map is emptied. A change made through this node removes what it touches at once;
//! one made through another node is seen here when the entry expires.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Entries kept at most; a full map is emptied.
const CAPACITY: usize = 10_000;

/// Values by key, each with when it was put in.
#[derive(Debug)]
pub struct ExpiringMap<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> ExpiringMap<K, V> {
    /// An empty map whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value put in for `key` less than the time to live ago.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(value, _)| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.lock().retain(|key, (value, _)| keep(key, value));
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_until_removed_or_expired() {
        let map = ExpiringMap::new(Duration::from_secs(60));
        assert_eq!(map.get(&"acme"), None);
        map.insert("acme", 1);
        map.insert("globex", 2);
        assert_eq!(map.get(&"acme"), Some(1));
        map.retain(|_, value| *value != 1);
        assert_eq!((map.get(&"acme"), map.get(&"globex")), (None, Some(2)));
        map.clear();
        assert_eq!(map.get(&"globex"), None);

        let expired = ExpiringMap::new(Duration::ZERO);
        expired.insert("acme", 1);
        assert_eq!(expired.get(&"acme"), None, "older than its time to live");
    }

    #[test]
    fn a_full_map_is_emptied() {
        let map = ExpiringMap::new(Duration::from_secs(60));
        for n in 0..CAPACITY {
            map.insert(n, n);
        }
        assert_eq!(map.get(&0), Some(0));
        map.insert(CAPACITY, CAPACITY);
        assert_eq!((map.get(&0), map.get(&CAPACITY)), (None, Some(CAPACITY)));
    }
}
