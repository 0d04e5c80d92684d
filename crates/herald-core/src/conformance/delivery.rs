//! Conformance checks for messages, the delivery queue and attempts.

use chrono::{DateTime, Duration, Utc};

use super::{application, endpoint, now};
use crate::delivery::{
    Attempt, AttemptFilter, AttemptRecord, DeliveryStatus, LeaseRequest, LeasedDelivery, Message,
    MessageFilter, NextStep, Trigger,
};
use crate::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use crate::model::Endpoint;
use crate::name::{ChannelName, EventId, EventTypeName};
use crate::store::{Key, MessageKey, Ordering, PageRequest};
use crate::{Store, StoreError};

fn names<T>(list: &[&str], parse: fn(&str) -> Result<T, crate::name::NameError>) -> Vec<T> {
    list.iter().map(|n| parse(n).unwrap()).collect()
}

pub(super) fn message(app: &ApplicationId, event_type: &str, channels: Option<&[&str]>) -> Message {
    let at = now();
    Message {
        id: MessageId::generate_at(at),
        app_id: app.clone(),
        event_type: EventTypeName::parse(event_type).unwrap(),
        event_id: None,
        channels: channels.map(|c| names(c, ChannelName::parse)),
        payload: Some(br#"{"order": 1,  "spacing":"kept"}"#.to_vec()),
        created_at: at,
        deliver_at: None,
        payload_expires_at: at + Duration::days(90),
        ordering_key: None,
        payload_version: crate::version::PayloadVersion::new(2).unwrap(),
        envelope: None,
    }
}

/// An application with one endpoint that takes every message.
pub(super) async fn app_with_endpoint(store: &dyn Store) -> (ApplicationId, Endpoint) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut ep = endpoint(&app.id, None);
    ep.event_types = None;
    ep.channels = None;
    store.insert_endpoint(&ep).await.unwrap();
    (app.id, ep)
}

pub(super) fn lease_request(at: DateTime<Utc>) -> LeaseRequest {
    LeaseRequest {
        now: at,
        limit: 100,
        per_endpoint: 100,
        exclude: Vec::new(),
        lease_until: at + Duration::seconds(60),
    }
}

pub(super) fn record(
    leased: &LeasedDelivery,
    status: DeliveryStatus,
    code: u16,
    next: NextStep,
    at: DateTime<Utc>,
) -> AttemptRecord {
    AttemptRecord {
        delivery_id: leased.delivery_id,
        lease_id: leased.lease_id,
        attempt: Attempt {
            id: AttemptId::generate_at(at),
            msg_id: leased.msg_id.clone(),
            app_id: leased.app_id.clone(),
            endpoint_id: leased.endpoint_id.clone(),
            url: "https://example.com/webhooks".to_owned(),
            status,
            response_status_code: code,
            response: format!("answered {code}"),
            response_duration_ms: 12,
            trigger: leased.trigger,
            created_at: at,
            request: Some(crate::delivery::SentRequest {
                method: "POST".to_owned(),
                headers: vec![
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("authorization".to_owned(), "****".to_owned()),
                ],
                body: (code == 200).then(|| b"{\"converted\":true}".to_vec()),
            }),
        },
        next,
        disable_endpoint: false,
    }
}

pub async fn messages_get_one_delivery_per_matching_enabled_endpoint(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let make = |types: Option<&[&str]>, channels: Option<&[&str]>, disabled: bool| {
        let mut ep = endpoint(&app.id, None);
        ep.event_types = types.map(|t| names(t, EventTypeName::parse));
        ep.channels = channels.map(|c| names(c, ChannelName::parse));
        ep.disabled = disabled;
        ep
    };
    let all = make(None, None, false);
    let typed = make(Some(&["order.created"]), None, false);
    let other_type = make(Some(&["order.paid"]), None, false);
    let eu = make(None, Some(&["eu"]), false);
    let us = make(None, Some(&["us"]), false);
    let disabled = make(None, None, true);
    for ep in [&all, &typed, &other_type, &eu, &us, &disabled] {
        store.insert_endpoint(ep).await.unwrap();
    }
    let msg = message(&app.id, "order.created", Some(&["eu", "fr"]));
    let mut targets = store.insert_message(&msg).await.unwrap();
    targets.sort();
    let mut expected = vec![all.id.clone(), typed.id.clone(), eu.id.clone()];
    expected.sort();
    assert_eq!(targets, expected);

    let found = store.find_message(&app.id, &MessageKey::Id(msg.id.clone())).await.unwrap();
    assert_eq!(found.as_ref(), Some(&msg), "the payload is kept byte for byte");
    let leased = store.lease_deliveries(&lease_request(now())).await.unwrap();
    assert_eq!(leased.len(), 3);
    assert!(leased.iter().all(|l| l.payload.as_deref() == msg.payload.as_deref() && l.attempt == 1));

    // A message on no channel reaches only endpoints without a channel filter.
    let plain = message(&app.id, "order.paid", None);
    let mut targets = store.insert_message(&plain).await.unwrap();
    targets.sort();
    let mut expected = vec![all.id.clone(), other_type.id.clone()];
    expected.sort();
    assert_eq!(targets, expected);
}

pub async fn a_message_for_a_missing_application_is_not_found(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let gone = application("Gone", None);
    store.insert_application(&gone).await.unwrap();
    store.delete_application(&gone.id).await.unwrap();
    // Alone, and among other messages written at the same moment (which still land).
    let never = message(&ApplicationId::generate_at(now()), "order.created", None);
    let orphan = message(&gone.id, "order.created", None);
    let fine: Vec<_> = (0..6).map(|_| message(&app, "order.created", None)).collect();
    let mut all: Vec<&Message> = fine.iter().collect();
    all.insert(3, &orphan);
    all.push(&never);
    let results = super::concurrency::join_all(all.iter().map(|m| store.insert_message(m)).collect()).await;
    for (m, result) in all.iter().zip(results) {
        if m.app_id == app {
            assert_eq!(result.unwrap().len(), 1, "the others are stored and queued");
        } else {
            assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
            assert_eq!(store.find_message(&m.app_id, &MessageKey::Id(m.id.clone())).await.unwrap(), None);
        }
    }
    let leased = store.lease_deliveries(&lease_request(now())).await.unwrap();
    assert_eq!(leased.len(), 6);
}

pub async fn event_ids_are_unique_per_application(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let mut first = message(&app, "order.created", None);
    first.event_id = Some(EventId::parse("evt-1").unwrap());
    store.insert_message(&first).await.unwrap();
    let mut again = message(&app, "order.created", None);
    again.event_id = first.event_id.clone();
    let error = store.insert_message(&again).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "eventId" }), "{error:?}");
    assert_eq!(store.find_message(&app, &MessageKey::Id(again.id.clone())).await.unwrap(), None);
    let by_event =
        store.find_message(&app, &MessageKey::EventId(EventId::parse("evt-1").unwrap())).await.unwrap();
    assert_eq!(by_event.map(|m| m.id), Some(first.id));
    // The refused message left no delivery behind.
    assert_eq!(store.lease_deliveries(&lease_request(now())).await.unwrap().len(), 1);

    let (other_app, _) = app_with_endpoint(store).await;
    let mut elsewhere = message(&other_app, "order.created", None);
    elsewhere.event_id = Some(EventId::parse("evt-1").unwrap());
    store.insert_message(&elsewhere).await.unwrap();
}

pub async fn messages_list_newest_first_with_filters(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let base = now();
    let mut ids = Vec::new();
    for (i, (event_type, channel)) in
        [("a.one", "x"), ("a.two", "y"), ("a.one", "y"), ("a.two", "x")].iter().enumerate()
    {
        let mut msg = message(&app, event_type, Some(&[channel]));
        msg.id = MessageId::generate_at(base + Duration::milliseconds(i as i64));
        msg.created_at = base + Duration::milliseconds(i as i64);
        store.insert_message(&msg).await.unwrap();
        ids.push(msg.id);
    }
    let page = PageRequest { order: Ordering::Descending, ..PageRequest::default() };
    let list = |filter: MessageFilter| {
        let page = page.clone();
        let app = app.clone();
        async move {
            store
                .list_messages(&app, &filter, &page)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(MessageFilter::default()).await,
        vec![ids[3].clone(), ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let one =
        MessageFilter { event_types: names(&["a.one"], EventTypeName::parse), ..MessageFilter::default() };
    assert_eq!(list(one).await, vec![ids[2].clone(), ids[0].clone()]);
    let on_x = MessageFilter { channel: Some(ChannelName::parse("x").unwrap()), ..MessageFilter::default() };
    assert_eq!(list(on_x).await, vec![ids[3].clone(), ids[0].clone()]);
    let window = MessageFilter {
        after: Some(base),
        before: Some(base + Duration::milliseconds(3)),
        ..MessageFilter::default()
    };
    assert_eq!(list(window).await, vec![ids[2].clone(), ids[1].clone()]);
}

pub async fn due_deliveries_are_leased_once(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    for _ in 0..3 {
        store.insert_message(&message(&app, "order.created", None)).await.unwrap();
    }
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    assert_eq!(leased.len(), 3);
    assert!(leased.iter().all(|l| l.endpoint_id == ep.id && l.trigger == Trigger::Scheduled));
    assert!(
        store.lease_deliveries(&lease_request(at)).await.unwrap().is_empty(),
        "leased deliveries are not leased again"
    );
}

pub async fn scheduled_messages_wait_for_their_time(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let mut later = message(&app, "order.created", None);
    let due = later.created_at + Duration::hours(1);
    later.deliver_at = Some(due);
    store.insert_message(&later).await.unwrap();
    assert!(store.lease_deliveries(&lease_request(now())).await.unwrap().is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(due));
    let leased = store.lease_deliveries(&lease_request(due)).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].msg_id, later.id);
}

pub async fn leases_take_a_bounded_share_per_endpoint(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut busy = endpoint(&app.id, None);
    busy.event_types = Some(names(&["busy"], EventTypeName::parse));
    busy.channels = None;
    let mut quiet = endpoint(&app.id, None);
    quiet.event_types = Some(names(&["quiet"], EventTypeName::parse));
    quiet.channels = None;
    store.insert_endpoint(&busy).await.unwrap();
    store.insert_endpoint(&quiet).await.unwrap();
    for _ in 0..5 {
        store.insert_message(&message(&app.id, "busy", None)).await.unwrap();
    }
    store.insert_message(&message(&app.id, "quiet", None)).await.unwrap();

    let at = now();
    let request = LeaseRequest { per_endpoint: 2, ..lease_request(at) };
    let leased = store.lease_deliveries(&request).await.unwrap();
    let count = |id: &EndpointId| leased.iter().filter(|l| &l.endpoint_id == id).count();
    assert_eq!((count(&busy.id), count(&quiet.id)), (2, 1), "the quiet endpoint is not starved");

    let request = LeaseRequest { exclude: vec![busy.id.clone()], ..lease_request(at) };
    assert!(store.lease_deliveries(&request).await.unwrap().is_empty(), "excluded endpoints are skipped");
    let request = LeaseRequest { limit: 2, ..lease_request(at) };
    assert_eq!(store.lease_deliveries(&request).await.unwrap().len(), 2);
}

pub async fn recording_is_fenced_by_the_lease(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let msg = message(&app, "order.created", None);
    store.insert_message(&msg).await.unwrap();
    let at = now();
    let first = store
        .lease_deliveries(&LeaseRequest { lease_until: at + Duration::seconds(1), ..lease_request(at) })
        .await
        .unwrap();
    // The first worker stalls past its lease; another takes the delivery over.
    let later = at + Duration::seconds(2);
    let second = store.lease_deliveries(&lease_request(later)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].lease_id, first[0].lease_id);

    let stale = record(&first[0], DeliveryStatus::Failed, 500, NextStep::Failed, later);
    assert!(!store.record_attempt(&stale).await.unwrap(), "a stale lease records nothing");
    let current = record(&second[0], DeliveryStatus::Success, 200, NextStep::Delivered, later);
    assert!(store.record_attempt(&current).await.unwrap());
    let attempts = store
        .list_attempts_by_message(&app, &msg.id, None, &AttemptFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(attempts.items, vec![current.attempt.clone()]);
    assert!(!store.record_attempt(&current).await.unwrap(), "a lease records once");
    assert!(store.lease_deliveries(&lease_request(later + Duration::hours(1))).await.unwrap().is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

pub async fn released_leases_are_due_again_without_an_attempt(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    store.insert_message(&message(&app, "order.created", None)).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let due = at + Duration::seconds(10);
    assert!(store.release_lease(leased[0].delivery_id, leased[0].lease_id, due).await.unwrap());
    assert!(!store.release_lease(leased[0].delivery_id, leased[0].lease_id, due).await.unwrap(), "once");
    assert_eq!(store.next_due_at().await.unwrap(), Some(due));
    let again = store.lease_deliveries(&lease_request(due)).await.unwrap();
    assert_eq!(again[0].attempt, 1);
}

pub async fn retries_become_due_at_their_time(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    store.insert_message(&message(&app, "order.created", None)).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let retry_at = at + Duration::seconds(5);
    store
        .record_attempt(&record(&leased[0], DeliveryStatus::Failed, 503, NextStep::RetryAt(retry_at), at))
        .await
        .unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), Some(retry_at));
    assert!(
        store
            .lease_deliveries(&lease_request(retry_at - Duration::milliseconds(1)))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.lease_deliveries(&lease_request(retry_at)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].msg_id, leased[0].msg_id);
}

pub async fn expired_leases_return_to_the_queue(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    store.insert_message(&message(&app, "order.created", None)).await.unwrap();
    let at = now();
    let until = at + Duration::seconds(30);
    let leased =
        store.lease_deliveries(&LeaseRequest { lease_until: until, ..lease_request(at) }).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(
        store.next_due_at().await.unwrap(),
        Some(until),
        "the lease expiry is when work may be due again"
    );
    assert!(store.lease_deliveries(&lease_request(until - Duration::seconds(1))).await.unwrap().is_empty());
    let again = store.lease_deliveries(&lease_request(until)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1, "an attempt that was never recorded is not counted");
}

pub async fn attempts_are_listed_with_filters(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    let paid = message(&app, "order.paid", Some(&["eu"]));
    let created = message(&app, "order.created", Some(&["us"]));
    store.insert_message(&paid).await.unwrap();
    store.insert_message(&created).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let mut recorded = Vec::new();
    for (i, lease) in leased.iter().enumerate() {
        let (status, code, next) = if lease.msg_id == paid.id {
            (DeliveryStatus::Success, 204, NextStep::Delivered)
        } else {
            (DeliveryStatus::Failed, 0, NextStep::Failed)
        };
        let rec = record(lease, status, code, next, at + Duration::milliseconds(i as i64));
        store.record_attempt(&rec).await.unwrap();
        recorded.push(rec.attempt);
    }
    let page = PageRequest::default();
    let by_endpoint = |filter: AttemptFilter| {
        let (app, ep, page) = (app.clone(), ep.id.clone(), page.clone());
        async move {
            store
                .list_attempts_by_endpoint(&app, &ep, &filter, &page)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|a| a.msg_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by_endpoint(AttemptFilter::default()).await.len(), 2);
    let ok = AttemptFilter { status: Some(DeliveryStatus::Success), ..AttemptFilter::default() };
    assert_eq!(by_endpoint(ok).await, vec![paid.id.clone()]);
    let no_response = AttemptFilter { status_code_class: Some(0), ..AttemptFilter::default() };
    assert_eq!(by_endpoint(no_response).await, vec![created.id.clone()]);
    let two_hundreds = AttemptFilter { status_code_class: Some(200), ..AttemptFilter::default() };
    assert_eq!(by_endpoint(two_hundreds).await, vec![paid.id.clone()]);
    let typed = AttemptFilter {
        event_types: names(&["order.created"], EventTypeName::parse),
        ..AttemptFilter::default()
    };
    assert_eq!(by_endpoint(typed).await, vec![created.id.clone()]);
    let on_eu =
        AttemptFilter { channel: Some(ChannelName::parse("eu").unwrap()), ..AttemptFilter::default() };
    assert_eq!(by_endpoint(on_eu).await, vec![paid.id.clone()]);

    let attempt = recorded.iter().find(|a| a.msg_id == paid.id).unwrap();
    let found = store.find_attempt(&app, &paid.id, &attempt.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(attempt));
    assert!(store.expunge_attempt_response(&app, &paid.id, &attempt.id).await.unwrap());
    let expunged = store.find_attempt(&app, &paid.id, &attempt.id).await.unwrap().unwrap();
    assert_eq!(expunged.response, "EXPUNGED", "as Svix marks an expunged response");
    let (other_app, _) = app_with_endpoint(store).await;
    assert_eq!(
        store.find_attempt(&other_app, &paid.id, &attempt.id).await.unwrap(),
        None,
        "scoped to the application"
    );
}

pub async fn delivery_views_show_the_latest_state(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    let msg = message(&app, "order.created", None);
    store.insert_message(&msg).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let retry_at = at + Duration::minutes(5);
    store
        .record_attempt(&record(&leased[0], DeliveryStatus::Failed, 500, NextStep::RetryAt(retry_at), at))
        .await
        .unwrap();

    let page = PageRequest::default();
    let messages =
        store.list_endpoint_messages(&app, &ep.id, &MessageFilter::default(), None, &page).await.unwrap();
    assert_eq!(messages.items.len(), 1);
    assert_eq!(messages.items[0].message.id, msg.id);
    assert_eq!(messages.items[0].status, DeliveryStatus::Pending);
    assert_eq!(messages.items[0].next_attempt_at, Some(retry_at));
    let failed_only = store
        .list_endpoint_messages(&app, &ep.id, &MessageFilter::default(), Some(DeliveryStatus::Failed), &page)
        .await
        .unwrap();
    assert!(failed_only.items.is_empty());

    let destinations = store.list_message_destinations(&app, &msg.id, &page).await.unwrap();
    assert_eq!(destinations.items.len(), 1);
    assert_eq!(destinations.items[0].endpoint.id, ep.id);
    assert_eq!(destinations.items[0].status, DeliveryStatus::Pending);

    let stats = store.endpoint_stats(&ep.id, at - Duration::days(1), at + Duration::days(1)).await.unwrap();
    assert_eq!((stats.pending, stats.success, stats.failed, stats.sending), (1, 0, 0, 0));
}

pub async fn manual_deliveries_and_recovery(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    let msg = message(&app, "order.created", None);
    store.insert_message(&msg).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    store
        .record_attempt(&record(&leased[0], DeliveryStatus::Failed, 500, NextStep::Failed, at))
        .await
        .unwrap();

    store.create_manual_delivery(&app, &msg.id, &ep.id, at).await.unwrap();
    let manual = store.lease_deliveries(&lease_request(at)).await.unwrap();
    assert_eq!(manual.len(), 1);
    assert_eq!((manual[0].trigger, manual[0].attempt), (Trigger::Manual, 1));
    store
        .record_attempt(&record(&manual[0], DeliveryStatus::Failed, 500, NextStep::Failed, at))
        .await
        .unwrap();

    let recovered =
        store.recover_failed(&ep.id, at - Duration::hours(1), at + Duration::hours(1), at).await.unwrap();
    assert_eq!(recovered, 1, "one delivery per failed message, however many attempts it had");
    assert_eq!(store.lease_deliveries(&lease_request(at)).await.unwrap().len(), 1);
    let none =
        store.recover_failed(&ep.id, at + Duration::hours(1), at + Duration::hours(2), at).await.unwrap();
    assert_eq!(none, 0, "only messages in the window");
    let missing = store.create_manual_delivery(&app, &MessageId::generate(), &ep.id, at).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub async fn failing_endpoints_are_disabled(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    let (_, healthy) = app_with_endpoint(store).await;
    store.insert_message(&message(&app, "order.created", None)).await.unwrap();
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let retry = NextStep::RetryAt(at + Duration::hours(1));
    store.record_attempt(&record(&leased[0], DeliveryStatus::Failed, 500, retry, at)).await.unwrap();

    assert!(store.disable_failing_endpoints(at - Duration::seconds(1), at).await.unwrap().is_empty());
    let disabled = store.disable_failing_endpoints(at + Duration::seconds(1), at).await.unwrap();
    assert_eq!(disabled, vec![(app.clone(), ep.id.clone())]);
    assert!(store.find_endpoint(&app, &Key::Id(ep.id.clone())).await.unwrap().unwrap().disabled);
    let other = store.find_endpoint(&healthy.app_id, &Key::Id(healthy.id.clone())).await.unwrap().unwrap();
    assert!(!other.disabled);

    // `410 Gone` disables at once.
    let (app2, ep2) = app_with_endpoint(store).await;
    store.insert_message(&message(&app2, "order.created", None)).await.unwrap();
    let leased = store.lease_deliveries(&lease_request(now())).await.unwrap();
    let mut gone = record(&leased[0], DeliveryStatus::Failed, 410, NextStep::Failed, now());
    gone.disable_endpoint = true;
    store.record_attempt(&gone).await.unwrap();
    assert!(store.find_endpoint(&app2, &Key::Id(ep2.id)).await.unwrap().unwrap().disabled);
}

/// A failing streak starts with the first failure, is not moved by later failures, and ends
/// with a success; only an endpoint still failing since before the cutoff is disabled.
pub async fn failing_streaks_start_once_and_end_with_a_success(store: &dyn Store) {
    let (steady_app, steady) = app_with_endpoint(store).await;
    let (recovered_app, recovered) = app_with_endpoint(store).await;
    for app in [&steady_app, &steady_app, &recovered_app, &recovered_app] {
        store.insert_message(&message(app, "order.created", None)).await.unwrap();
    }
    let at = now();
    let leased = store.lease_deliveries(&lease_request(at)).await.unwrap();
    let of = |ep: &Endpoint| leased.iter().filter(|l| l.endpoint_id == ep.id).collect::<Vec<_>>();
    let (steady_leases, recovered_leases) = (of(&steady), of(&recovered));
    assert_eq!((steady_leases.len(), recovered_leases.len()), (2, 2));
    let retry = NextStep::RetryAt(at + Duration::hours(1));
    let later = at + Duration::minutes(10);
    // Two failures, the second ten minutes later: the streak still starts at the first.
    store.record_attempt(&record(steady_leases[0], DeliveryStatus::Failed, 500, retry, at)).await.unwrap();
    store.record_attempt(&record(steady_leases[1], DeliveryStatus::Failed, 500, retry, later)).await.unwrap();
    // A failure, then a success: no streak.
    store.record_attempt(&record(recovered_leases[0], DeliveryStatus::Failed, 500, retry, at)).await.unwrap();
    let delivered = record(recovered_leases[1], DeliveryStatus::Success, 200, NextStep::Delivered, later);
    store.record_attempt(&delivered).await.unwrap();

    let cutoff = at + Duration::minutes(1);
    let disabled = store.disable_failing_endpoints(cutoff, later).await.unwrap();
    assert_eq!(disabled, vec![(steady_app, steady.id.clone())], "failing since `at`, before the cutoff");
    let recovered =
        store.find_endpoint(&recovered_app, &Key::Id(recovered.id.clone())).await.unwrap().unwrap();
    assert!(!recovered.disabled, "a success ended its streak");
}

pub async fn payloads_expire(store: &dyn Store) {
    let (app, _) = app_with_endpoint(store).await;
    let mut short = message(&app, "order.created", None);
    short.payload_expires_at = short.created_at + Duration::seconds(1);
    let long = message(&app, "order.created", None);
    store.insert_message(&short).await.unwrap();
    store.insert_message(&long).await.unwrap();
    let removed = store.expire_payloads(short.created_at + Duration::seconds(2), 100).await.unwrap();
    assert_eq!(removed, 1);
    let read = |id: &MessageId| {
        let (app, id) = (app.clone(), id.clone());
        async move { store.find_message(&app, &MessageKey::Id(id)).await.unwrap().unwrap().payload }
    };
    assert_eq!(read(&short.id).await, None);
    assert!(read(&long.id).await.is_some());
    assert!(store.expunge_message_payload(&app, &long.id).await.unwrap());
    assert_eq!(read(&long.id).await, None);
    assert!(!store.expunge_message_payload(&app, &MessageId::generate()).await.unwrap());
}
