//! Conformance checks for message retention: whole messages deleted in batches, with their
//! deliveries and attempts.

use chrono::{DateTime, Duration, Utc};

use super::delivery::{app_with_endpoint, lease_request, message, record};
use super::now;
use crate::Store;
use crate::delivery::{AttemptFilter, DeliveryStatus, Message, NextStep};
use crate::id::{ApplicationId, MessageId};
use crate::store::{MessageKey, PageRequest};

/// A message of `app` created at `at`.
fn message_at(app: &ApplicationId, at: DateTime<Utc>) -> Message {
    Message { id: MessageId::generate_at(at), created_at: at, ..message(app, "order.created", None) }
}

pub async fn old_messages_are_deleted_with_their_deliveries_and_attempts(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let t = now();
    let cutoff = t - Duration::days(30);
    let old: Vec<Message> =
        (0..3).map(|i| message_at(&app, cutoff - Duration::days(1) + Duration::seconds(i))).collect();
    for msg in &old {
        store.insert_message(msg).await.unwrap();
    }
    let recent = message_at(&app, t);
    store.insert_message(&recent).await.unwrap();
    // Created exactly at the cutoff: not before it, so kept. Scheduled for later, so never
    // leased here.
    let edge = Message { deliver_at: Some(t + Duration::days(1)), ..message_at(&app, cutoff) };
    store.insert_message(&edge).await.unwrap();

    // Every due delivery is attempted once and is due again at `retry`, but the youngest old
    // message's delivery, whose attempt is still in flight when its message goes.
    let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(leased.len(), 4);
    let retry = t + Duration::minutes(2);
    let mut attempts = Vec::new();
    let mut in_flight = None;
    for lease in &leased {
        if lease.msg_id == old[2].id {
            in_flight = Some(record(lease, DeliveryStatus::Success, 200, NextStep::Delivered, t));
            continue;
        }
        let failed = record(lease, DeliveryStatus::Failed, 503, NextStep::RetryAt(retry), t);
        assert!(store.record_attempt(&failed).await.unwrap());
        attempts.push(failed.attempt);
    }
    let in_flight = in_flight.unwrap();

    assert_eq!(store.delete_messages_before(cutoff, 2).await.unwrap(), 2, "the limit is kept");
    let find = |id: &MessageId| {
        let (app, id) = (app.clone(), id.clone());
        async move { store.find_message(&app, &MessageKey::Id(id)).await.unwrap() }
    };
    let attempts_of = |id: &MessageId| {
        let (app, id) = (app.clone(), id.clone());
        async move {
            let (filter, page) = (AttemptFilter::default(), PageRequest::default());
            store.list_attempts_by_message(&app, &id, None, &filter, &page).await.unwrap().items
        }
    };
    for gone in &old[..2] {
        assert_eq!(find(&gone.id).await, None, "the oldest go first");
        assert!(attempts_of(&gone.id).await.is_empty(), "attempts go with their message");
        let attempt = attempts.iter().find(|a| a.msg_id == gone.id).unwrap();
        assert_eq!(store.find_attempt(&app, &gone.id, &attempt.id).await.unwrap(), None);
    }
    assert!(find(&old[2].id).await.is_some(), "beyond the limit, kept for the next batch");

    assert_eq!(store.delete_messages_before(cutoff, 100).await.unwrap(), 1);
    assert_eq!(find(&old[2].id).await, None);
    assert!(
        !store.record_attempt(&in_flight).await.unwrap(),
        "a lease of a deleted message records nothing, like a stale lease"
    );
    assert!(attempts_of(&old[2].id).await.is_empty());
    assert_eq!(store.delete_messages_before(cutoff, 100).await.unwrap(), 0);

    // Newer messages keep their attempts, and only their deliveries are left in the queue:
    // the in-flight delivery's lease (expiring at t + 60s) went with its message.
    assert!(find(&edge.id).await.is_some(), "created at the cutoff, not before it");
    assert!(find(&recent.id).await.is_some());
    assert_eq!(attempts_of(&recent.id).await.len(), 1);
    assert_eq!(store.next_due_at().await.unwrap(), Some(retry));
    let again = store.lease_deliveries(&lease_request(retry)).await.unwrap();
    assert_eq!(again.iter().map(|l| l.msg_id.clone()).collect::<Vec<_>>(), vec![recent.id.clone()]);
    let delivered = record(&again[0], DeliveryStatus::Success, 200, NextStep::Delivered, retry);
    assert!(store.record_attempt(&delivered).await.unwrap());
    let due_later = store.lease_deliveries(&lease_request(t + Duration::days(1))).await.unwrap();
    assert_eq!(due_later.iter().map(|l| l.msg_id.clone()).collect::<Vec<_>>(), vec![edge.id.clone()]);
}

pub async fn deleting_no_messages_is_not_an_error(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let t = now();
    assert_eq!(store.delete_messages_before(t, 100).await.unwrap(), 0, "an empty store");
    let msg = message_at(&app, t - Duration::days(1));
    store.insert_message(&msg).await.unwrap();
    assert_eq!(store.delete_messages_before(t, 0).await.unwrap(), 0, "a limit of 0 deletes nothing");
    assert_eq!(store.delete_messages_before(t - Duration::days(2), 100).await.unwrap(), 0);
    assert!(store.find_message(&app, &MessageKey::Id(msg.id.clone())).await.unwrap().is_some());
    assert_eq!(store.delete_messages_before(t, 100).await.unwrap(), 1);
}
