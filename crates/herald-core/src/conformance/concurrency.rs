//! Conformance checks for concurrent writers: two changes of one resource at the same moment
//! must both land. Each check runs many rounds, because a lost update shows only when the two
//! writes interleave, which one round may not make happen.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::delivery::{app_with_endpoint, lease_request, message, record};
use super::{application, event_type, now};
use crate::Store;
use crate::change::{ApplicationChange, EndpointChange, EventTypeChange, HeadersChange, KeyRotation};
use crate::delivery::{DeliveryStatus, NextStep};
use crate::name::EventTypeName;
use crate::secret::{SecretString, SigningSecret};
use crate::store::Key;

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
