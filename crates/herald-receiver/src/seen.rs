//! Ignoring duplicates: the `SeenStore` trait and `MemorySeen`, a bounded in-memory set of
//! recently seen message ids.
//!
//! Senders deliver at least once: when a response is lost, the same message (same
//! `webhook-id`) comes again with a fresh timestamp and signature. This module remembers ids;
//! it does not verify anything.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Remembers which message ids were already handled.
///
/// Call [`check_and_mark`](SeenStore::check_and_mark) after verifying a message and skip the
/// work when it returns `false`; if the work then fails and you answer with an error so that
/// the sender retries, call [`forget`](SeenStore::forget), or the retry would be skipped too.
///
/// Implement it on a database table (unique id, insert-if-absent) when duplicates must be
/// caught across restarts or several receiver processes.
pub trait SeenStore {
    /// Marks `id` as seen and returns `true` if it had not been seen before (handle the
    /// message), `false` if it had (a duplicate: answer success and do nothing).
    fn check_and_mark(&self, id: &str) -> bool;

    /// Forgets `id`, so that the next delivery of it is handled again.
    fn forget(&self, id: &str);
}

impl<T: SeenStore + ?Sized> SeenStore for &T {
    fn check_and_mark(&self, id: &str) -> bool {
        (**self).check_and_mark(id)
    }

    fn forget(&self, id: &str) {
        (**self).forget(id);
    }
}

impl<T: SeenStore + ?Sized> SeenStore for Arc<T> {
    fn check_and_mark(&self, id: &str) -> bool {
        (**self).check_and_mark(id)
    }

    fn forget(&self, id: &str) {
        (**self).forget(id);
    }
}

/// An in-memory [`SeenStore`] for one process, bounded both ways: it holds at most
/// `capacity` ids, and each for at most `window` after it was first seen. When full, the
/// oldest id is dropped first.
///
/// An id dropped by either bound is treated as new if it comes again, so choose a window
/// that covers the sender's retries you care about (Herald retries after 5 s, 5 min, 30 min,
/// 2 h, ...) and a capacity above the number of messages you receive in that window. Memory
/// is about `capacity × (id length + 100 bytes)`. The default is 10,000 ids for one hour.
#[derive(Debug)]
pub struct MemorySeen {
    /// The ids and when each was first seen, oldest first, behind one lock: the critical
    /// section is a few hash operations, far shorter than verifying a signature.
    state: Mutex<State>,
    /// At most this many ids are remembered.
    capacity: usize,
    /// An id is remembered at most this long after it was first seen.
    window: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// For the membership test.
    ids: HashSet<Arc<str>>,
    /// The same ids in the order they were first seen, for eviction by age and by count.
    order: VecDeque<(Arc<str>, Instant)>,
}

impl MemorySeen {
    /// The default capacity: ten thousand ids.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// The default window: one hour.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60 * 60);

    /// An empty store remembering at most `capacity` ids (at least one), each for at most
    /// `window`.
    pub fn new(capacity: usize, window: Duration) -> MemorySeen {
        MemorySeen { state: Mutex::new(State::default()), capacity: capacity.max(1), window }
    }

    /// [`SeenStore::check_and_mark`] as if the time were `now`; for tests that move time.
    pub fn check_and_mark_at(&self, id: &str, now: Instant) -> bool {
        let mut state = self.lock();
        self.evict(&mut state, now);
        if state.ids.contains(id) {
            return false;
        }
        while state.ids.len() >= self.capacity {
            let Some((oldest, _)) = state.order.pop_front() else { break };
            state.ids.remove(&oldest);
        }
        let id: Arc<str> = id.into();
        state.ids.insert(Arc::clone(&id));
        state.order.push_back((id, now));
        true
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the ids first seen a full window or more before `now`.
    fn evict(&self, state: &mut State, now: Instant) {
        while let Some((id, first_seen)) = state.order.front() {
            if now.saturating_duration_since(*first_seen) < self.window {
                break;
            }
            state.ids.remove(id);
            state.order.pop_front();
        }
    }

    /// The state, even after a panic elsewhere: no update can panic halfway through in a
    /// way that matters (at worst an id is remembered a little longer), so poisoning carries
    /// no meaning here.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemorySeen {
    fn default() -> MemorySeen {
        MemorySeen::new(MemorySeen::DEFAULT_CAPACITY, MemorySeen::DEFAULT_WINDOW)
    }
}

impl SeenStore for MemorySeen {
    fn check_and_mark(&self, id: &str) -> bool {
        self.check_and_mark_at(id, Instant::now())
    }

    /// Takes time proportional to the number of ids remembered; it is meant for the rare
    /// failed message, not for every request.
    fn forget(&self, id: &str) {
        let mut state = self.lock();
        if state.ids.remove(id) {
            state.order.retain(|(remembered, _)| &**remembered != id);
        }
    }
}
