//! Conformance checks for what operators read: the queue gauges, an application's statistics,
//! and attempt retention.

use chrono::{DateTime, Duration, Utc};

use super::delivery::{app_with_endpoint, lease_request, message, record};
use super::{endpoint, now};
use crate::Store;
use crate::delivery::{Attempt, DeliveryStatus, Message, NextStep};
use crate::id::{ApplicationId, MessageId};
use crate::stats::{ApplicationStats, QueueStats};
use crate::store::{Key, MessageKey};

/// A message of `app` created at `at`.
fn message_at(app: &ApplicationId, at: DateTime<Utc>) -> Message {
    Message { id: MessageId::generate_at(at), created_at: at, ..message(app, "order.created", None) }
}

pub async fn queue_stats_count_the_queue_and_endpoint_health(store: &dyn Store) {
    let t = now();
    assert_eq!(store.queue_stats(t).await.unwrap(), QueueStats::default(), "an empty store");

    let (app, _) = app_with_endpoint(store).await;
    let (disabled_app, disabled) = app_with_endpoint(store).await;
    let disable = crate::change::EndpointChange { disabled: Some(true), ..Default::default() };
    store.update_endpoint(&disabled_app, &disabled.id, &disable, t).await.unwrap().unwrap();
    let (_, held_back) = app_with_endpoint(store).await;
    store.open_circuit(&held_back.id, t + Duration::minutes(1)).await.unwrap();
    assert_eq!(disabled.app_id, disabled_app);

    let waiting = message_at(&app, t - Duration::seconds(30));
    let fresh = message_at(&app, t);
    let later = Message { deliver_at: Some(t + Duration::hours(1)), ..message_at(&app, t) };
    for msg in [&waiting, &fresh, &later] {
        store.insert_message(msg).await.unwrap();
    }
    let stats = store.queue_stats(t).await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            due: 2,
            scheduled: 1,
            leased: 0,
            oldest_due_at: Some(waiting.created_at),
            endpoints_disabled: 1,
            endpoints_failing: 0,
            circuits_open: 1,
            lanes_held: 0,
            oldest_lane_message_at: None,
        }
    );

    // Leased deliveries are being attempted: no longer due.
    let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(leased.len(), 2);
    let stats = store.queue_stats(t).await.unwrap();
    assert_eq!((stats.due, stats.scheduled, stats.leased, stats.oldest_due_at), (0, 1, 2, None));

    // A failed attempt schedules a retry and marks the endpoint failing.
    let retry = NextStep::RetryAt(t + Duration::minutes(5));
    let failed = record(&leased[0], DeliveryStatus::Failed, 503, retry, t);
    assert!(store.record_attempt(&failed).await.unwrap());
    let stats = store.queue_stats(t).await.unwrap();
    assert_eq!((stats.due, stats.scheduled, stats.leased), (0, 2, 1));
    assert_eq!(stats.endpoints_failing, 1);

    // After the other lease expired (t + 60 s) its delivery is due again, due since then; the
    // circuit (open until t + 1 min) has closed.
    let later_on = t + Duration::minutes(2);
    let stats = store.queue_stats(later_on).await.unwrap();
    assert_eq!((stats.due, stats.scheduled, stats.leased), (1, 2, 0));
    assert_eq!(stats.oldest_due_at, Some(t + Duration::seconds(60)));
    assert_eq!(stats.circuits_open, 0);
    assert_eq!(stats.endpoints_disabled, 1);
}

pub async fn application_stats_count_a_window(store: &dyn Store) {
    let t = now();
    let (app, ep) = app_with_endpoint(store).await;
    let mut off = endpoint(&app, None);
    off.disabled = true;
    store.insert_endpoint(&off).await.unwrap();
    let (other_app, _) = app_with_endpoint(store).await;
    store.insert_message(&message_at(&other_app, t)).await.unwrap();

    let old = message_at(&app, t - Duration::days(2));
    let recent = message_at(&app, t - Duration::hours(1));
    let newest = message_at(&app, t);
    for msg in [&old, &recent, &newest] {
        store.insert_message(msg).await.unwrap();
    }
    let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
    let lease_of = |msg: &Message| leased.iter().find(|l| l.msg_id == msg.id).unwrap();
    let outcomes = [
        (&old, DeliveryStatus::Success, 200, NextStep::Delivered, old.created_at),
        (&recent, DeliveryStatus::Success, 200, NextStep::Delivered, recent.created_at),
        (&newest, DeliveryStatus::Failed, 500, NextStep::RetryAt(t + Duration::minutes(5)), t),
    ];
    for (msg, status, code, next, at) in outcomes {
        assert!(store.record_attempt(&record(lease_of(msg), status, code, next, at)).await.unwrap());
    }

    let day = store.application_stats(&app, t - Duration::days(1), t + Duration::seconds(1)).await.unwrap();
    let expected = ApplicationStats {
        messages: 2,
        attempts_succeeded: 1,
        attempts_failed: 1,
        endpoints: 2,
        endpoints_disabled: 1,
        endpoints_failing: 1,
    };
    assert_eq!(day, expected);
    assert_eq!(day.success_rate(), Some(0.5));
    let week = store.application_stats(&app, t - Duration::days(7), t + Duration::seconds(1)).await.unwrap();
    assert_eq!((week.messages, week.attempts_succeeded, week.attempts_failed), (3, 2, 1));
    // The window is half open: `until` itself is outside.
    let before_newest = store.application_stats(&app, t - Duration::days(1), t).await.unwrap();
    assert_eq!((before_newest.messages, before_newest.attempts_failed), (1, 0));
    assert_eq!(ep.app_id, app);
}

pub async fn old_attempts_are_deleted_and_their_messages_stay(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let messages: Vec<Message> = (0..4).map(|_| message(&app, "order.created", None)).collect();
    for msg in &messages {
        store.insert_message(msg).await.unwrap();
    }
    let t = now();
    let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
    assert_eq!(leased.len(), 4);
    // Three attempts were made long ago (their record says so), one just now.
    let mut attempts: Vec<Attempt> = Vec::new();
    for (i, lease) in leased.iter().enumerate() {
        let at = if i < 3 { t - Duration::days(10) + Duration::seconds(i as i64) } else { t };
        let done = record(lease, DeliveryStatus::Success, 200, NextStep::Delivered, at);
        assert!(store.record_attempt(&done).await.unwrap());
        attempts.push(done.attempt);
    }
    let cutoff = t - Duration::days(7);
    assert_eq!(store.delete_attempts_before(cutoff, 2).await.unwrap(), 2, "the limit is kept");
    assert_eq!(store.delete_attempts_before(cutoff, 100).await.unwrap(), 1);
    assert_eq!(store.delete_attempts_before(cutoff, 100).await.unwrap(), 0);
    for (i, attempt) in attempts.iter().enumerate() {
        let found = store.find_attempt(&app, &attempt.msg_id, &attempt.id).await.unwrap();
        assert_eq!(found.is_some(), i == 3, "only the recent attempt stays");
        let msg = store.find_message(&app, &MessageKey::Id(attempt.msg_id.clone())).await.unwrap();
        assert!(msg.is_some(), "messages outlive their attempts");
    }
    let ep = store.find_endpoint(&app, &Key::Id(leased[0].endpoint_id.clone())).await.unwrap();
    assert!(ep.is_some());
}
