//! Duplicate message ids are noticed, within the store's bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_receiver::{MemorySeen, SeenStore};

#[test]
fn the_second_delivery_of_an_id_is_a_duplicate() {
    let seen = MemorySeen::default();
    assert!(seen.check_and_mark("msg_1"));
    assert!(!seen.check_and_mark("msg_1"));
    assert!(seen.check_and_mark("msg_2"));
    assert_eq!(seen.len(), 2);
}

#[test]
fn a_forgotten_id_is_handled_again() {
    let seen = MemorySeen::default();
    assert!(seen.check_and_mark("msg_1"));
    seen.forget("msg_1");
    assert!(seen.check_and_mark("msg_1"));
    assert!(!seen.check_and_mark("msg_1"));
}

#[test]
fn it_holds_at_most_its_capacity_dropping_the_oldest() {
    let seen = MemorySeen::new(3, Duration::from_secs(3600));
    for id in ["msg_a", "msg_b", "msg_c", "msg_d"] {
        assert!(seen.check_and_mark(id));
    }
    assert_eq!(seen.len(), 3);
    assert!(!seen.check_and_mark("msg_d"), "recent ids are kept");
    assert!(!seen.check_and_mark("msg_b"), "recent ids are kept");
    assert!(seen.check_and_mark("msg_a"), "the oldest was dropped, so it counts as new");
    assert_eq!(seen.len(), 3);
}

#[test]
fn ids_are_remembered_for_the_window_only() {
    let seen = MemorySeen::new(100, Duration::from_secs(60));
    let start = Instant::now();
    assert!(seen.check_and_mark_at("msg_1", start));
    assert!(seen.check_and_mark_at("msg_2", start + Duration::from_secs(30)));
    assert!(!seen.check_and_mark_at("msg_1", start + Duration::from_secs(59)));
    // A repeat doesn't extend the window: it counts from when the id was first seen.
    assert!(seen.check_and_mark_at("msg_1", start + Duration::from_secs(60)));
    assert!(!seen.check_and_mark_at("msg_2", start + Duration::from_secs(60)));
    assert!(seen.check_and_mark_at("msg_3", start + Duration::from_secs(200)));
    assert_eq!(seen.len(), 1, "everything older than the window is gone");
}

#[test]
fn concurrent_deliveries_of_one_id_are_handled_once() {
    let seen = Arc::new(MemorySeen::default());
    let handled: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8).map(|_| scope.spawn(|| seen.check_and_mark("msg_1"))).collect();
        workers.into_iter().map(|worker| usize::from(worker.join().expect("no panic"))).sum()
    });
    assert_eq!(handled, 1);
}

#[test]
fn shared_handles_are_stores_too() {
    fn first_time(store: impl SeenStore, id: &str) -> bool {
        store.check_and_mark(id)
    }
    let seen = Arc::new(MemorySeen::default());
    assert!(first_time(Arc::clone(&seen), "msg_1"));
    assert!(!first_time(&*seen, "msg_1"));
}
