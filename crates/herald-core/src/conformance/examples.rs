//! Messages for one endpoint only (examples sent to test a receiver), and payload versions
//! kept with messages.

#![allow(clippy::unwrap_used)]

use super::delivery::{lease_request, message};
use super::{application, endpoint, now};
use crate::Store;
use crate::name::EventTypeName;
use crate::store::{MessageKey, StoreError};

pub async fn a_message_for_one_endpoint_reaches_it_alone(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let target = endpoint(&app.id, None);
    let mut elsewhere = endpoint(&app.id, None);
    elsewhere.event_types = Some(vec![EventTypeName::parse("order.created").unwrap()]);
    // The target's own filters do not apply: the example is for it.
    let mut filtered = target.clone();
    filtered.event_types = Some(vec![EventTypeName::parse("other.type").unwrap()]);
    store.insert_endpoint(&filtered).await.unwrap();
    store.insert_endpoint(&elsewhere).await.unwrap();

    let msg = message(&app.id, "order.created", None);
    store.insert_message_for_endpoint(&msg, &filtered.id).await.unwrap();
    let found = store.find_message(&app.id, &MessageKey::Id(msg.id.clone())).await.unwrap();
    assert_eq!(found.as_ref(), Some(&msg), "kept with its payload version");
    let leased = store.lease_deliveries(&lease_request(now())).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!((&leased[0].endpoint_id, leased[0].payload_version), (&filtered.id, msg.payload_version));

    // An endpoint of another application (or none) stores nothing.
    let other = application("Other", None);
    store.insert_application(&other).await.unwrap();
    let foreign = endpoint(&other.id, None);
    store.insert_endpoint(&foreign).await.unwrap();
    let stray = message(&app.id, "order.created", None);
    let refused = store.insert_message_for_endpoint(&stray, &foreign.id).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(store.find_message(&app.id, &MessageKey::Id(stray.id.clone())).await.unwrap(), None);
}
