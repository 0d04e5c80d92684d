//! Conformance checks for what several nodes share through the store: who is alive (node
//! heartbeats), and which endpoints' circuits are open.

use chrono::Duration;

use super::delivery::app_with_endpoint;
use super::now;
use crate::Store;
use crate::id::EndpointId;

pub async fn heartbeats_count_the_live_nodes(store: &dyn Store) {
    let t0 = now();
    let ttl = Duration::seconds(10);
    assert_eq!(store.heartbeat("node-a", t0, t0 + ttl).await.unwrap(), 1, "a lone node counts itself");
    assert_eq!(store.heartbeat("node-a", t0, t0 + ttl).await.unwrap(), 1, "a node counts once");
    assert_eq!(store.heartbeat("node-b", t0, t0 + ttl).await.unwrap(), 2);
    let t1 = t0 + Duration::seconds(5);
    assert_eq!(store.heartbeat("node-a", t1, t1 + ttl).await.unwrap(), 2, "node-b is alive until t0 + 10s");

    // node-b stops beating: at its expiry it no longer counts (`expires_at <= now` is dead).
    let t2 = t0 + ttl;
    assert_eq!(store.heartbeat("node-a", t2, t2 + ttl).await.unwrap(), 1, "a lapsed node stops counting");
    // ... and counts again once it is back.
    assert_eq!(store.heartbeat("node-b", t2, t2 + ttl).await.unwrap(), 2);
    assert_eq!(store.heartbeat("node-c", t2, t2 + ttl).await.unwrap(), 3);

    // Long after every other node lapsed, a node still counts itself.
    let t3 = t2 + Duration::hours(1);
    assert_eq!(store.heartbeat("node-c", t3, t3 + ttl).await.unwrap(), 1);
}

pub async fn leaving_nodes_stop_counting_at_once(store: &dyn Store) {
    let t0 = now();
    let until = t0 + Duration::seconds(30);
    store.heartbeat("node-a", t0, until).await.unwrap();
    assert_eq!(store.heartbeat("node-b", t0, until).await.unwrap(), 2);
    store.leave("node-b").await.unwrap();
    assert_eq!(store.heartbeat("node-a", t0, until).await.unwrap(), 1, "no need to wait for its expiry");
    store.leave("node-b").await.unwrap();
    store.leave("never-seen").await.unwrap();
    // A node that left and comes back counts again.
    assert_eq!(store.heartbeat("node-b", t0, until).await.unwrap(), 2);
}

pub async fn circuits_stay_open_until_their_time(store: &dyn Store) {
    let (_, ep) = app_with_endpoint(store).await;
    let (_, other) = app_with_endpoint(store).await;
    let t0 = now();
    assert_eq!(store.circuit_open_until(&ep.id, t0).await.unwrap(), None, "circuits start closed");

    let until = t0 + Duration::seconds(30);
    store.open_circuit(&ep.id, until).await.unwrap();
    assert_eq!(store.circuit_open_until(&ep.id, t0).await.unwrap(), Some(until));
    assert_eq!(store.circuit_open_until(&other.id, t0).await.unwrap(), None, "one endpoint's circuit only");

    // An earlier time does not shorten the circuit; a later one extends it.
    store.open_circuit(&ep.id, t0 + Duration::seconds(10)).await.unwrap();
    assert_eq!(store.circuit_open_until(&ep.id, t0).await.unwrap(), Some(until));
    let later = t0 + Duration::seconds(60);
    store.open_circuit(&ep.id, later).await.unwrap();
    assert_eq!(store.circuit_open_until(&ep.id, until).await.unwrap(), Some(later));

    // At its time the circuit reads closed, and stays so.
    assert_eq!(
        store.circuit_open_until(&ep.id, later - Duration::microseconds(1)).await.unwrap(),
        Some(later)
    );
    assert_eq!(store.circuit_open_until(&ep.id, later).await.unwrap(), None);
    assert_eq!(store.circuit_open_until(&ep.id, later + Duration::hours(1)).await.unwrap(), None);
    // A closed circuit opens again.
    let again = later + Duration::hours(2);
    store.open_circuit(&ep.id, again).await.unwrap();
    assert_eq!(store.circuit_open_until(&ep.id, later + Duration::hours(1)).await.unwrap(), Some(again));
}

pub async fn circuits_of_unknown_endpoints_read_closed(store: &dyn Store) {
    let unknown = EndpointId::generate();
    let t0 = now();
    store.open_circuit(&unknown, t0 + Duration::seconds(30)).await.unwrap();
    assert_eq!(store.circuit_open_until(&unknown, t0).await.unwrap(), None);

    // An endpoint deleted while its circuit is open: the circuit goes with it.
    let (app, ep) = app_with_endpoint(store).await;
    store.open_circuit(&ep.id, t0 + Duration::seconds(30)).await.unwrap();
    assert!(store.delete_endpoint(&app, &ep.id).await.unwrap());
    assert_eq!(store.circuit_open_until(&ep.id, t0).await.unwrap(), None);
}
