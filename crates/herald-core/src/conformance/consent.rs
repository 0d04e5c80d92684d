//! Conformance checks for endpoint consent: the handshake's outcome is written narrowly (an
//! endpoint change does not undo it, and it does not undo a change), and a pending consent is
//! granted once, by its callback token only, before it expires.
#![allow(clippy::unwrap_used)]

use chrono::Duration;

use super::{application, endpoint, now};
use crate::Store;
use crate::change::EndpointChange;
use crate::consent::{ConsentDecision, ConsentMode, ConsentState};
use crate::store::Key;
use crate::token::TokenHash;

pub async fn consent_is_written_narrowly_and_granted_once_by_its_callback(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut ep = endpoint(&app.id, None);
    ep.consent = Some(ConsentMode::CloudEvents);
    store.insert_endpoint(&ep).await.unwrap();
    let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    assert_eq!(found.consent, Some(ConsentMode::CloudEvents));
    assert_eq!(found.consent_state, None, "never asked");

    let t = now();
    let pending = ConsentState {
        origin: "https://example.com".to_owned(),
        decision: ConsentDecision::Pending { expires_at: t + Duration::hours(1) },
        decided_at: t,
    };
    let token = TokenHash::of("callback-token");
    assert!(store.set_endpoint_consent(&app.id, &ep.id, &pending, Some(&token)).await.unwrap());
    // A change of other fields keeps the consent state, and the state keeps the change.
    let change = EndpointChange { description: Some("changed".to_owned()), ..Default::default() };
    store.update_endpoint(&app.id, &ep.id, &change, t).await.unwrap().unwrap();
    let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    assert_eq!(found.consent_state, Some(pending));
    assert_eq!(found.description, "changed");

    assert_eq!(store.grant_endpoint_consent(&TokenHash::of("guess"), None, t).await.unwrap(), None);
    let granted_at = t + Duration::seconds(5);
    let granted = store.grant_endpoint_consent(&token, Some(60), granted_at).await.unwrap();
    assert_eq!(granted, Some((app.id.clone(), ep.id.clone())));
    let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    let state = found.consent_state.unwrap();
    assert_eq!(state.decision, ConsentDecision::Granted { per_minute: Some(60) });
    assert_eq!(state.decided_at, granted_at);
    assert_eq!(state.origin, "https://example.com");
    assert_eq!(store.grant_endpoint_consent(&token, None, granted_at).await.unwrap(), None, "spent");

    // Setting the mode back to the organisation's keeps the state too.
    let change = EndpointChange { consent: Some(None), ..Default::default() };
    let changed = store.update_endpoint(&app.id, &ep.id, &change, t).await.unwrap().unwrap();
    assert_eq!(changed.consent, None);
    assert!(changed.consent_state.is_some());
}

pub async fn expired_or_replaced_callbacks_grant_nothing(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let ep = endpoint(&app.id, None);
    store.insert_endpoint(&ep).await.unwrap();
    let t = now();
    let pending = ConsentState {
        origin: "https://example.com".to_owned(),
        decision: ConsentDecision::Pending { expires_at: t + Duration::minutes(1) },
        decided_at: t,
    };
    let old = TokenHash::of("old");
    store.set_endpoint_consent(&app.id, &ep.id, &pending, Some(&old)).await.unwrap();
    assert_eq!(store.grant_endpoint_consent(&old, None, t + Duration::minutes(2)).await.unwrap(), None);

    let refused = ConsentState {
        origin: "https://example.com".to_owned(),
        decision: ConsentDecision::Refused { reason: "it answered OPTIONS with 405".to_owned() },
        decided_at: t,
    };
    store.set_endpoint_consent(&app.id, &ep.id, &refused, None).await.unwrap();
    assert_eq!(store.grant_endpoint_consent(&old, None, t).await.unwrap(), None, "replaced");
    let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    assert_eq!(found.consent_state, Some(refused));
    let missing = crate::id::EndpointId::generate_at(t);
    assert!(!store.set_endpoint_consent(&app.id, &missing, &pending, None).await.unwrap());
}
