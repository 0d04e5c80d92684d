//! Conformance checks for ordered lanes: on an ordered endpoint, one delivery per lane (the
//! endpoint and the message's ordering key) at a time, in the order the messages were
//! accepted; an exhausted head is skipped or holds its lane; resend and recover requeue it.
#![allow(clippy::unwrap_used)]

use chrono::Duration;

use super::delivery::{lease_request, message, record};
use super::{application, endpoint, now};
use crate::Store;
use crate::delivery::{DeliveryStatus, LeaseRequest, LeasedDelivery, Message, NextStep, Trigger};
use crate::id::{ApplicationId, MessageId};
use crate::model::{Endpoint, OnExhausted};
use crate::name::OrderingKey;

/// An application with one ordered endpoint that takes every message.
async fn ordered_endpoint(store: &dyn Store, on_exhausted: OnExhausted) -> (ApplicationId, Endpoint) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut ep = endpoint(&app.id, None);
    ep.event_types = None;
    ep.channels = None;
    ep.ordered = true;
    ep.ordered_on_exhausted = on_exhausted;
    store.insert_endpoint(&ep).await.unwrap();
    (app.id, ep)
}

/// Sends a message with `key` (none when empty), one microsecond after the previous one.
async fn send(store: &dyn Store, app: &ApplicationId, key: &str, n: i64) -> Message {
    let mut m = message(app, "order.created", None);
    m.created_at += Duration::microseconds(n);
    m.id = MessageId::generate_at(m.created_at);
    m.ordering_key = (!key.is_empty()).then(|| OrderingKey::parse(key).unwrap());
    store.insert_message(&m).await.unwrap();
    m
}

fn ids(leased: &[LeasedDelivery]) -> Vec<MessageId> {
    let mut ids: Vec<MessageId> = leased.iter().map(|l| l.msg_id.clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids
}

fn sorted(mut list: Vec<MessageId>) -> Vec<MessageId> {
    list.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    list
}

pub async fn ordered_lanes_deliver_one_at_a_time_in_order(store: &dyn Store) {
    let (app, _) = ordered_endpoint(store, OnExhausted::Skip).await;
    let a1 = send(store, &app, "a", 1).await;
    let a2 = send(store, &app, "a", 2).await;
    let a3 = send(store, &app, "a", 3).await;
    let b1 = send(store, &app, "b", 4).await;
    let b2 = send(store, &app, "b", 5).await;
    let none1 = send(store, &app, "", 6).await;
    let none2 = send(store, &app, "", 7).await;
    let t = now() + Duration::seconds(1);

    // One head per lane: a, b and the lane of messages without a key.
    let heads = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&heads), sorted(vec![a1.id.clone(), b1.id.clone(), none1.id.clone()]));
    assert!(heads.iter().all(|h| h.in_lane));
    assert!(
        store.lease_deliveries(&lease_request(t)).await.unwrap().is_empty(),
        "heads in flight hold their lanes"
    );

    let head = |id: &MessageId| heads.iter().find(|h| &h.msg_id == id).unwrap().clone();
    // a1 succeeds: a2 is next. b1 fails and retries later: b2 waits behind it.
    store
        .record_attempt(&record(&head(&a1.id), DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    let retry = NextStep::RetryAt(t + Duration::seconds(30));
    store.record_attempt(&record(&head(&b1.id), DeliveryStatus::Failed, 500, retry, t)).await.unwrap();
    store
        .record_attempt(&record(&head(&none1.id), DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    let next = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(
        ids(&next),
        sorted(vec![a2.id.clone(), none2.id.clone()]),
        "b2 waits behind its retrying head"
    );

    // The retry comes due: b1 again, never b2 before it.
    let later = store.lease_deliveries(&lease_request(t + Duration::seconds(31))).await.unwrap();
    assert_eq!(ids(&later), vec![b1.id.clone()]);
    // b1 is given up (skip): the lane moves on to b2.
    store.record_attempt(&record(&later[0], DeliveryStatus::Failed, 500, NextStep::Failed, t)).await.unwrap();
    let a2_lease = next.iter().find(|l| l.msg_id == a2.id).unwrap().clone();
    store
        .record_attempt(&record(&a2_lease, DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    let last = store.lease_deliveries(&lease_request(t + Duration::seconds(31))).await.unwrap();
    assert_eq!(ids(&last), sorted(vec![a3.id.clone(), b2.id.clone()]));
}

pub async fn a_paused_lane_waits_for_its_head_to_be_resent(store: &dyn Store) {
    let (app, ep) = ordered_endpoint(store, OnExhausted::Pause).await;
    let first = send(store, &app, "k", 1).await;
    let second = send(store, &app, "k", 2).await;
    let other = send(store, &app, "other", 3).await;
    let t = now() + Duration::seconds(1);
    let heads = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&heads), sorted(vec![first.id.clone(), other.id.clone()]));
    let head = heads.iter().find(|h| h.msg_id == first.id).unwrap();
    let other_head = heads.iter().find(|h| h.msg_id == other.id).unwrap();
    store
        .record_attempt(&record(other_head, DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    // Exhausted on a pausing endpoint: shown as failed, and the lane holds.
    store.record_attempt(&record(head, DeliveryStatus::Failed, 500, NextStep::Hold, t)).await.unwrap();
    assert!(
        store.lease_deliveries(&lease_request(t + Duration::days(1))).await.unwrap().is_empty(),
        "nothing behind a held head, however long one waits"
    );
    let destinations = store
        .list_message_destinations(&app, &first.id, &crate::store::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(destinations.items[0].status, DeliveryStatus::Failed);

    // A resend queues the held head itself, as a manual attempt, still at the head of its lane.
    store.create_manual_delivery(&app, &first.id, &ep.id, t).await.unwrap();
    let resent = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&resent), vec![first.id.clone()]);
    assert_eq!((resent[0].trigger, resent[0].in_lane), (Trigger::Manual, true));
    // It fails again: held again. Recover queues it once more; this time it succeeds.
    store.record_attempt(&record(&resent[0], DeliveryStatus::Failed, 500, NextStep::Hold, t)).await.unwrap();
    assert!(store.lease_deliveries(&lease_request(t)).await.unwrap().is_empty());
    let recovered =
        store.recover_failed(&ep.id, t - Duration::hours(1), t + Duration::hours(1), t).await.unwrap();
    assert_eq!(recovered, 1, "the held head, queued again rather than copied");
    let again = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&again), vec![first.id.clone()]);
    store
        .record_attempt(&record(&again[0], DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    // Only now does the second message go.
    let next = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&next), vec![second.id.clone()]);
}

pub async fn a_resend_outside_the_lane_does_not_wait_for_it(store: &dyn Store) {
    let (app, ep) = ordered_endpoint(store, OnExhausted::Skip).await;
    let old = send(store, &app, "k", 1).await;
    let t = now() + Duration::seconds(1);
    let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
    store
        .record_attempt(&record(&leased[0], DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    let head = send(store, &app, "k", 2).await;
    let in_flight = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&in_flight), vec![head.id.clone()]);
    // Resending the old, delivered message while the lane's head is in flight: a manual
    // attempt of its own, not in the lane, so it neither waits nor reorders the lane.
    store.create_manual_delivery(&app, &old.id, &ep.id, t).await.unwrap();
    let resent = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(ids(&resent), vec![old.id.clone()]);
    assert!(!resent[0].in_lane);
}

pub async fn unordered_endpoints_are_not_held_by_lanes(store: &dyn Store) {
    let (app, _) = super::delivery::app_with_endpoint(store).await;
    for n in 0..3 {
        send(store, &app, "k", n).await;
    }
    let leased = store.lease_deliveries(&lease_request(now() + Duration::seconds(1))).await.unwrap();
    assert_eq!(leased.len(), 3, "an unordered endpoint ignores ordering keys");
    assert!(leased.iter().all(|l| !l.in_lane));
}

pub async fn lane_states_show_heads_held_lanes_and_what_waits(store: &dyn Store) {
    let (app, ep) = ordered_endpoint(store, OnExhausted::Pause).await;
    let t0 = now();
    assert!(store.ordered_lanes(&ep.id, 10).await.unwrap().is_empty(), "no work, no lanes");
    let a1 = send(store, &app, "a", 1).await;
    send(store, &app, "a", 2).await;
    send(store, &app, "a", 3).await;
    let none = send(store, &app, "", 4).await;
    let lanes = store.ordered_lanes(&ep.id, 10).await.unwrap();
    assert_eq!(lanes.len(), 2);
    assert_eq!((lanes[0].key.as_str(), &lanes[0].head_msg_id, lanes[0].waiting), ("a", &a1.id, 2));
    assert_eq!((lanes[1].key.as_str(), &lanes[1].head_msg_id, lanes[1].waiting), ("", &none.id, 0));
    assert_eq!(lanes[0].head_status, DeliveryStatus::Pending);
    assert!(!lanes[0].held);
    assert_eq!(store.ordered_lanes(&ep.id, 1).await.unwrap().len(), 1, "at most the limit");

    let t = t0 + Duration::seconds(1);
    let heads = store.lease_deliveries(&lease_request(t)).await.unwrap();
    let head = heads.iter().find(|h| h.msg_id == a1.id).unwrap();
    store.record_attempt(&record(head, DeliveryStatus::Failed, 500, NextStep::Hold, t)).await.unwrap();
    let other = heads.iter().find(|h| h.msg_id == none.id).unwrap();
    store.record_attempt(&record(other, DeliveryStatus::Success, 200, NextStep::Delivered, t)).await.unwrap();
    let lanes = store.ordered_lanes(&ep.id, 10).await.unwrap();
    assert_eq!(lanes.len(), 1, "the lane without a key has no work left");
    assert!(lanes[0].held);
    assert_eq!((lanes[0].head_status, lanes[0].waiting), (DeliveryStatus::Failed, 2));
    let queue = store.queue_stats(t).await.unwrap();
    assert_eq!(queue.lanes_held, 1);
    assert_eq!(queue.oldest_lane_message_at, Some(a1.created_at), "the held head is the oldest waiting");
}

pub async fn a_lanes_head_is_leased_again_when_its_lease_expires(store: &dyn Store) {
    let (app, _) = ordered_endpoint(store, OnExhausted::Skip).await;
    let first = send(store, &app, "k", 1).await;
    let second = send(store, &app, "k", 2).await;
    let t = now() + Duration::seconds(1);
    let until = t + Duration::seconds(30);
    let request = |at| LeaseRequest { lease_until: at + Duration::seconds(30), ..lease_request(at) };
    let leased = store.lease_deliveries(&request(t)).await.unwrap();
    assert_eq!(ids(&leased), vec![first.id.clone()]);
    // Its worker dies mid-attempt: nothing of the lane goes until the lease runs out, and then
    // the same head goes again, never the message behind it.
    assert!(store.lease_deliveries(&request(until - Duration::seconds(1))).await.unwrap().is_empty());
    let again = store.lease_deliveries(&request(until)).await.unwrap();
    assert_eq!(ids(&again), vec![first.id.clone()]);
    assert_eq!((again[0].attempt, again[0].in_lane), (1, true), "the lost attempt is not counted");
    assert!(
        !store
            .record_attempt(&record(&leased[0], DeliveryStatus::Success, 200, NextStep::Delivered, t))
            .await
            .unwrap(),
        "the dead worker's late record is refused"
    );
    assert!(store.lease_deliveries(&request(until)).await.unwrap().is_empty(), "the head is in flight again");
    store
        .record_attempt(&record(&again[0], DeliveryStatus::Success, 200, NextStep::Delivered, until))
        .await
        .unwrap();
    assert_eq!(ids(&store.lease_deliveries(&request(until)).await.unwrap()), vec![second.id.clone()]);
}

pub async fn a_lanes_head_scheduled_later_holds_the_messages_behind_it(store: &dyn Store) {
    let (app, ep) = ordered_endpoint(store, OnExhausted::Skip).await;
    let t = now();
    let mut later = message(&app, "order.created", None);
    later.deliver_at = Some(t + Duration::hours(1));
    later.ordering_key = Some(OrderingKey::parse("k").unwrap());
    store.insert_message(&later).await.unwrap();
    let behind = send(store, &app, "k", 1).await;
    let other = send(store, &app, "other", 2).await;
    let leased = store.lease_deliveries(&lease_request(t + Duration::seconds(1))).await.unwrap();
    assert_eq!(ids(&leased), vec![other.id.clone()], "the lane waits for its head's deliverAt");
    let lanes = store.ordered_lanes(&ep.id, 10).await.unwrap();
    let lane = lanes.iter().find(|lane| lane.key == "k").unwrap();
    assert_eq!((&lane.head_msg_id, lane.waiting), (&later.id, 1));
    store
        .record_attempt(&record(&leased[0], DeliveryStatus::Success, 200, NextStep::Delivered, t))
        .await
        .unwrap();
    assert_eq!(
        store.next_due_at().await.unwrap(),
        Some(t + Duration::hours(1)),
        "work is next due when the head is, not when the message waiting behind it was accepted"
    );
    // A retrying head holds its lane the same way, until its retry is due.
    let head = store.lease_deliveries(&lease_request(t + Duration::hours(1))).await.unwrap();
    assert_eq!(ids(&head), vec![later.id.clone()]);
    let retry_at = t + Duration::hours(2);
    store
        .record_attempt(&record(&head[0], DeliveryStatus::Failed, 500, NextStep::RetryAt(retry_at), t))
        .await
        .unwrap();
    assert!(
        store.lease_deliveries(&lease_request(retry_at - Duration::seconds(1))).await.unwrap().is_empty()
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(retry_at));
    let retried = store.lease_deliveries(&lease_request(retry_at)).await.unwrap();
    assert_eq!(ids(&retried), vec![later.id.clone()]);
    store
        .record_attempt(&record(&retried[0], DeliveryStatus::Success, 200, NextStep::Delivered, retry_at))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.lease_deliveries(&lease_request(retry_at)).await.unwrap()),
        vec![behind.id.clone()]
    );
}

pub async fn lanes_of_an_excluded_endpoint_wait_and_others_go(store: &dyn Store) {
    let (app, held_back) = ordered_endpoint(store, OnExhausted::Skip).await;
    let mut second = endpoint(&app, None);
    second.event_types = None;
    second.channels = None;
    second.ordered = true;
    store.insert_endpoint(&second).await.unwrap();
    send(store, &app, "a", 1).await;
    send(store, &app, "b", 2).await;
    let t = now() + Duration::seconds(1);
    let request = LeaseRequest { exclude: vec![held_back.id.clone()], ..lease_request(t) };
    let leased = store.lease_deliveries(&request).await.unwrap();
    assert_eq!(leased.len(), 2, "both lanes of the other endpoint");
    assert!(leased.iter().all(|l| l.endpoint_id == second.id));
    let rest = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(rest.len(), 2, "both lanes of the endpoint no longer held back");
    assert!(rest.iter().all(|l| l.endpoint_id == held_back.id));
}

pub async fn every_lane_has_its_turn_when_more_lanes_have_work_than_a_lease_reads(store: &dyn Store) {
    // More lanes than a lease looks at (1,024 on both backends), every one with work: lanes
    // early in key order never run dry, yet the last lane is leased within a few leases.
    const LANES: usize = 1_100;
    let (app, _) = ordered_endpoint(store, OnExhausted::Skip).await;
    let key = |n: usize| format!("k{n:05}");
    let mut keys = std::collections::HashMap::new();
    for n in 0..LANES {
        keys.insert(send(store, &app, &key(n), i64::try_from(n).unwrap()).await.id, key(n));
    }
    let last = key(LANES - 1);
    let t = now() + Duration::seconds(1);
    let mut reached_last = false;
    for round in 0..4 {
        let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
        assert!(!leased.is_empty(), "round {round} leased nothing");
        for lease in &leased {
            let lane = keys[&lease.msg_id].clone();
            reached_last |= lane == last;
            // Delivered, and the lane at once has a new message: it never runs dry.
            store
                .record_attempt(&record(lease, DeliveryStatus::Success, 200, NextStep::Delivered, t))
                .await
                .unwrap();
            keys.insert(send(store, &app, &lane, 10_000 + i64::from(round)).await.id, lane);
        }
    }
    assert!(reached_last, "the lane last in key order had its turn");
}
