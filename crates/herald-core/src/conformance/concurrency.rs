//! Conformance checks for concurrent writers: two changes of one resource at the same moment
//! must both land. Each check runs many rounds, because a lost update shows only when the two
//! writes interleave, which one round may not make happen.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::delivery::{app_with_endpoint, lease_request, message, record};
use super::{application, endpoint, event_type, now};
use crate::Store;
use crate::change::{ApplicationChange, EndpointChange, EventTypeChange, HeadersChange, KeyRotation};
use crate::delivery::{DeliveryStatus, NextStep};
use crate::name::EventTypeName;
use crate::secret::{SecretString, SigningSecret};
use crate::store::{Key, MessageKey};

/// Rounds per check: enough that an unguarded read-modify-write loses some.
const ROUNDS: usize = 60;

pub async fn concurrent_endpoint_changes_of_different_fields_all_land(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    for round in 0..ROUNDS {
        let description =
            EndpointChange { description: Some(format!("round {round}")), ..Default::default() };
        let next = SigningSecret::generate_hmac();
        let rotation = EndpointChange {
            rotate_key: Some(KeyRotation { next: next.clone(), grace: chrono::Duration::zero() }),
            ..Default::default()
        };
        let header = format!("x-round-{round}");
        let headers = EndpointChange {
            headers: Some(HeadersChange::Edit {
                set: BTreeMap::from([(header.clone(), SecretString::new(round.to_string()))]),
                remove: Vec::new(),
            }),
            ..Default::default()
        };
        let rate = u16::try_from(round + 1).unwrap();
        let throttle = EndpointChange { throttle_rate: Some(Some(rate)), ..Default::default() };
        let t = now();
        let (a, b, c, d) = tokio::join!(
            store.update_endpoint(&app, &ep.id, &description, t),
            store.update_endpoint(&app, &ep.id, &rotation, t),
            store.update_endpoint(&app, &ep.id, &headers, t),
            store.update_endpoint(&app, &ep.id, &throttle, t),
        );
        for result in [a, b, c, d] {
            assert!(result.unwrap().is_some(), "round {round}: the endpoint exists");
        }
        let now_ep = store.find_endpoint(&app, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
        assert_eq!(now_ep.description, format!("round {round}"), "round {round}: the description was lost");
        assert_eq!(now_ep.keys.current, next, "round {round}: the rotation was lost");
        assert!(now_ep.headers.contains_key(&header), "round {round}: the header was lost");
        assert_eq!(now_ep.throttle_rate, Some(rate), "round {round}: the rate was lost");
    }
    let last = store.find_endpoint(&app, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    assert_eq!(last.headers.len(), ep.headers.len() + ROUNDS, "every header edit landed");
}

pub async fn a_disable_by_gone_is_not_undone_by_a_concurrent_change(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    let enable = EndpointChange { disabled: Some(false), ..Default::default() };
    for round in 0..ROUNDS {
        store.update_endpoint(&app, &ep.id, &enable, now()).await.unwrap().unwrap();
        store.insert_message(&message(&app, "order.created", None)).await.unwrap();
        let t = now();
        let leased = store.lease_deliveries(&lease_request(t)).await.unwrap();
        assert_eq!(leased.len(), 1, "round {round}: one delivery to the enabled endpoint");
        // The endpoint answered 410 Gone: the record disables it.
        let mut gone = record(&leased[0], DeliveryStatus::Failed, 410, NextStep::Failed, t);
        gone.disable_endpoint = true;
        let description =
            EndpointChange { description: Some(format!("round {round}")), ..Default::default() };
        let (recorded, changed) =
            tokio::join!(store.record_attempt(&gone), store.update_endpoint(&app, &ep.id, &description, t));
        assert!(recorded.unwrap(), "round {round}: the lease is current");
        assert!(changed.unwrap().is_some());
        let now_ep = store.find_endpoint(&app, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
        assert!(now_ep.disabled, "round {round}: the disable by 410 was undone");
        assert_eq!(now_ep.description, format!("round {round}"), "round {round}: the description was lost");
    }
}

pub async fn concurrent_application_changes_of_different_fields_all_land(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    for round in 0..ROUNDS {
        let name = ApplicationChange { name: Some(format!("Acme {round}")), ..Default::default() };
        let metadata = ApplicationChange {
            metadata: Some(BTreeMap::from([("round".to_owned(), round.to_string())])),
            ..Default::default()
        };
        let t = now();
        let (a, b) = tokio::join!(
            store.update_application(&app.id, &name, t),
            store.update_application(&app.id, &metadata, t)
        );
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
        let found = store.find_application(&Key::Id(app.id.clone())).await.unwrap().unwrap();
        assert_eq!(found.name, format!("Acme {round}"), "round {round}: the name was lost");
        assert_eq!(found.metadata.get("round"), Some(&round.to_string()), "round {round}: metadata lost");
    }
}

pub async fn concurrent_event_type_changes_of_different_fields_all_land(store: &dyn Store) {
    store.insert_event_type(&event_type("order.created")).await.unwrap();
    let name = EventTypeName::parse("order.created").unwrap();
    for round in 0..ROUNDS {
        let archived = round % 2 == 0;
        let description =
            EventTypeChange { description: Some(format!("round {round}")), ..Default::default() };
        let archive = EventTypeChange { archived: Some(archived), ..Default::default() };
        let t = now();
        let (a, b) = tokio::join!(
            store.update_event_type(&name, &description, t),
            store.update_event_type(&name, &archive, t)
        );
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
        let found = store.find_event_type(&name).await.unwrap().unwrap();
        assert_eq!(found.description, format!("round {round}"), "round {round}: the description was lost");
        assert_eq!(found.archived, archived, "round {round}: the archive flag was lost");
    }
}

pub async fn concurrent_messages_all_land_and_a_duplicate_event_id_fails_alone(store: &dyn Store) {
    let (app, ep) = app_with_endpoint(store).await;
    // 40 messages at once (a backend that writes them in shared transactions batches them),
    // five of which share an eventId: exactly one of those five is stored.
    let messages: Vec<_> = (0..40)
        .map(|i| {
            let mut m = message(&app, "order.created", None);
            if i % 8 == 0 {
                m.event_id = Some(crate::name::EventId::parse("order-1").unwrap());
            }
            m
        })
        .collect();
    let results = join_all(messages.iter().map(|m| store.insert_message(m)).collect()).await;
    let mut stored = 0;
    let mut conflicts = 0;
    for (m, result) in messages.iter().zip(results) {
        match result {
            Ok(endpoints) => {
                stored += 1;
                assert_eq!(endpoints, vec![ep.id.clone()], "queued for the endpoint");
                assert!(store.find_message(&app, &MessageKey::Id(m.id.clone())).await.unwrap().is_some());
            }
            Err(crate::StoreError::Conflict { what: "eventId" }) => {
                conflicts += 1;
                assert!(store.find_message(&app, &MessageKey::Id(m.id.clone())).await.unwrap().is_none());
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((stored, conflicts), (36, 4));
    let leased = store.lease_deliveries(&lease_request(now())).await.unwrap();
    assert_eq!(leased.len(), 36, "one delivery per stored message, none for a refused one");
}

pub async fn concurrent_messages_of_several_applications_reach_only_their_own_endpoints(store: &dyn Store) {
    // Messages of two applications at once, on every mix of event type and channels (a
    // backend that batches them writes them in one statement): each is stored as sent and
    // queued exactly for its own application's matching endpoints. An endpoint without a
    // channel list takes every channel; one with a list takes messages on one of them.
    let mut apps = Vec::new();
    for name in ["Acme", "Globex"] {
        let app = application(name, None);
        store.insert_application(&app).await.unwrap();
        let mut every = endpoint(&app.id, None);
        every.event_types = None;
        every.channels = None;
        let mut created = endpoint(&app.id, None);
        created.channels = None;
        let eu = endpoint(&app.id, None);
        let mut eu_any_type = endpoint(&app.id, None);
        eu_any_type.event_types = None;
        for ep in [&every, &created, &eu, &eu_any_type] {
            store.insert_endpoint(ep).await.unwrap();
        }
        apps.push((app.id, every, created, eu, eu_any_type));
    }
    let shapes: [(&str, Option<&[&str]>); 5] = [
        ("order.created", None),
        ("order.created", Some(&["eu", "fr"])),
        ("order.paid", Some(&["eu"])),
        ("order.paid", Some(&["us"])),
        ("order.created", Some(&[])),
    ];
    let mut messages = Vec::new();
    let mut expected = Vec::new();
    for i in 0..40 {
        let (app, every, created, eu, eu_any_type) = &apps[i % 2];
        let (event_type, channels) = shapes[i % shapes.len()];
        let mut m = message(app, event_type, channels);
        if i % 3 == 0 {
            m.deliver_at = Some(m.created_at + chrono::Duration::hours(1));
        }
        if i % 4 == 0 {
            m.ordering_key = Some(crate::name::OrderingKey::parse(&format!("key-{i}")).unwrap());
        }
        let on_eu = channels.is_some_and(|c| c.contains(&"eu"));
        let mut targets = vec![every.id.clone()];
        if event_type == "order.created" {
            targets.push(created.id.clone());
        }
        if event_type == "order.created" && on_eu {
            targets.push(eu.id.clone());
        }
        if on_eu {
            targets.push(eu_any_type.id.clone());
        }
        targets.sort();
        messages.push(m);
        expected.push(targets);
    }
    let results = join_all(messages.iter().map(|m| store.insert_message(m)).collect()).await;
    for ((m, result), want) in messages.iter().zip(results).zip(expected) {
        let mut queued = result.unwrap();
        queued.sort();
        assert_eq!(queued, want, "{} on {:?}", m.event_type, m.channels);
        let found = store.find_message(&m.app_id, &MessageKey::Id(m.id.clone())).await.unwrap();
        assert_eq!(found.as_ref(), Some(m), "stored as sent");
    }
}

/// Polls the futures together until all are done; their outputs in order.
pub(super) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}
