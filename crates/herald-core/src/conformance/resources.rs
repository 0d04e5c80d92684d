//! Conformance checks for applications, endpoints, event types, tokens and idempotency keys.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};

use super::{application, endpoint, event_type, now};
use crate::change::{ApplicationChange, EndpointChange, EventTypeChange, HeadersChange};
use crate::id::{ApplicationId, TokenId};
use crate::model::{ApiToken, Application, EventType, TokenScope};
use crate::name::{EventTypeName, Uid};
use crate::secret::SigningSecret;
use crate::store::{IdempotencyClaim, IdempotencyKey, Key, Ordering, PageRequest, StoredResponse};
use crate::token::TokenHash;
use crate::{Store, StoreError};

pub async fn applications_round_trip(store: &dyn Store) {
    let app = application("Acme", Some("acme"));
    store.insert_application(&app).await.unwrap();
    let by_id = store.find_application(&Key::Id(app.id.clone())).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&app));
    let by_uid = store.find_application(&Key::Uid(Uid::parse("acme").unwrap())).await.unwrap();
    assert_eq!(by_uid.as_ref(), Some(&app));

    let change = ApplicationChange {
        name: Some("Acme Corp".to_owned()),
        uid: Some(None),
        throttle_rate: Some(None),
        ..Default::default()
    };
    let at = now() + Duration::seconds(1);
    let changed = store.update_application(&app.id, &change, at).await.unwrap().unwrap();
    let expected = Application {
        name: "Acme Corp".to_owned(),
        uid: None,
        throttle_rate: None,
        updated_at: at,
        ..app.clone()
    };
    assert_eq!(changed, expected, "the change, and nothing else (metadata stays)");
    assert_eq!(store.find_application(&Key::Id(app.id.clone())).await.unwrap(), Some(changed));
    assert_eq!(store.find_application(&Key::Uid(Uid::parse("acme").unwrap())).await.unwrap(), None);

    assert!(store.delete_application(&app.id).await.unwrap());
    assert!(!store.delete_application(&app.id).await.unwrap());
    assert_eq!(store.find_application(&Key::Id(app.id)).await.unwrap(), None);
}

pub async fn application_uids_are_unique(store: &dyn Store) {
    store.insert_application(&application("one", Some("same"))).await.unwrap();
    let error = store.insert_application(&application("two", Some("same"))).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "uid" }), "{error:?}");
    // Applications without a uid never conflict with each other.
    store.insert_application(&application("three", None)).await.unwrap();
    store.insert_application(&application("four", None)).await.unwrap();

    let other = application("five", Some("other"));
    store.insert_application(&other).await.unwrap();
    let change = ApplicationChange { uid: Some(Some(Uid::parse("same").unwrap())), ..Default::default() };
    let error = store.update_application(&other.id, &change, now()).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "uid" }), "{error:?}");
    let unchanged = store.find_application(&Key::Id(other.id.clone())).await.unwrap();
    assert_eq!(unchanged, Some(other), "a refused change writes nothing");
}

pub async fn applications_page_both_ways(store: &dyn Store) {
    let base = now();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut app = application(&format!("app {i}"), None);
        app.id = ApplicationId::generate_at(base + Duration::milliseconds(i));
        store.insert_application(&app).await.unwrap();
        ids.push(app.id);
    }
    let page = |after: Option<&ApplicationId>, before: Option<&ApplicationId>, order| PageRequest {
        limit: 3,
        after: after.map(|id| id.to_string()),
        before: before.map(|id| id.to_string()),
        order,
    };
    let ids_of = |apps: &[Application]| apps.iter().map(|a| a.id.clone()).collect::<Vec<_>>();

    let first = store.list_applications(&page(None, None, Ordering::Ascending)).await.unwrap();
    assert_eq!(ids_of(&first.items), ids[0..3]);
    assert!(first.has_more);
    let second = store.list_applications(&page(Some(&ids[2]), None, Ordering::Ascending)).await.unwrap();
    assert_eq!(ids_of(&second.items), ids[3..6]);
    let last = store.list_applications(&page(Some(&ids[5]), None, Ordering::Ascending)).await.unwrap();
    assert_eq!(ids_of(&last.items), ids[6..7]);
    assert!(!last.has_more);
    // Backwards from the start of the second page returns the first page, in order.
    let back = store.list_applications(&page(None, Some(&ids[3]), Ordering::Ascending)).await.unwrap();
    assert_eq!(ids_of(&back.items), ids[0..3]);
    assert!(!back.has_more);

    let newest = store.list_applications(&page(None, None, Ordering::Descending)).await.unwrap();
    assert_eq!(ids_of(&newest.items), vec![ids[6].clone(), ids[5].clone(), ids[4].clone()]);
    let older = store.list_applications(&page(Some(&ids[4]), None, Ordering::Descending)).await.unwrap();
    assert_eq!(ids_of(&older.items), vec![ids[3].clone(), ids[2].clone(), ids[1].clone()]);
}

pub async fn deleting_an_application_removes_its_endpoints(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut ep = endpoint(&app.id, Some("main"));
    (ep.event_types, ep.channels) = (None, None);
    store.insert_endpoint(&ep).await.unwrap();
    // A message with an attempt recorded and another delivery still queued.
    let msg = super::delivery::message(&app.id, "order.created", None);
    store.insert_message(&msg).await.unwrap();
    let leased = store.lease_deliveries(&super::delivery::lease_request(now())).await.unwrap();
    let failed = crate::delivery::NextStep::RetryAt(now());
    let record =
        super::delivery::record(&leased[0], crate::delivery::DeliveryStatus::Failed, 500, failed, now());
    assert!(store.record_attempt(&record).await.unwrap());
    store.delete_application(&app.id).await.unwrap();
    assert_eq!(store.find_endpoint(&app.id, &Key::Id(ep.id)).await.unwrap(), None);
    assert_eq!(
        store.find_message(&app.id, &crate::store::MessageKey::Id(msg.id.clone())).await.unwrap(),
        None
    );
    let (filter, page) = (crate::delivery::AttemptFilter::default(), PageRequest::default());
    let attempts = store.list_attempts_by_message(&app.id, &msg.id, None, &filter, &page).await.unwrap();
    assert!(attempts.items.is_empty(), "its attempts go with it");
    assert_eq!(store.find_attempt(&app.id, &msg.id, &record.attempt.id).await.unwrap(), None);
    assert!(store.lease_deliveries(&super::delivery::lease_request(now())).await.unwrap().is_empty());
    // The uid is free again in a new application with the same alias.
    let again = application("Acme", None);
    store.insert_application(&again).await.unwrap();
    store.insert_endpoint(&endpoint(&again.id, Some("main"))).await.unwrap();
}

pub async fn endpoints_round_trip_with_secrets(store: &dyn Store) {
    let app = application("Acme", None);
    store.insert_application(&app).await.unwrap();
    let mut ep = endpoint(&app.id, Some("primary"));
    ep.keys.rotate(SigningSecret::generate_hmac(), now(), Duration::hours(24));
    store.insert_endpoint(&ep).await.unwrap();
    let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap();
    assert_eq!(found.as_ref(), Some(&ep), "keys, headers and bearer token survive the round trip");
    let by_uid = store.find_endpoint(&app.id, &Key::Uid(Uid::parse("primary").unwrap())).await.unwrap();
    assert_eq!(by_uid.as_ref(), Some(&ep));

    let change = EndpointChange {
        url: Some("https://example.org/hooks".parse().unwrap()),
        disabled: Some(true),
        event_types: Some(None),
        channels: Some(None),
        bearer_token: Some(None),
        headers: Some(HeadersChange::Replace(Default::default())),
        ..Default::default()
    };
    let at = now() + Duration::seconds(1);
    let changed = store.update_endpoint(&app.id, &ep.id, &change, at).await.unwrap().unwrap();
    let mut expected = ep.clone();
    change.apply(&mut expected, at);
    assert_eq!(changed, expected);
    assert_eq!(changed.keys, ep.keys, "keys the change does not name stay");
    assert_eq!(store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap(), Some(changed));

    let listed = store.list_endpoints(&app.id, &PageRequest::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(store.delete_endpoint(&app.id, &ep.id).await.unwrap());
    assert!(!store.delete_endpoint(&app.id, &ep.id).await.unwrap());
}

pub async fn endpoint_uids_are_unique_per_application(store: &dyn Store) {
    let one = application("one", None);
    let two = application("two", None);
    store.insert_application(&one).await.unwrap();
    store.insert_application(&two).await.unwrap();
    store.insert_endpoint(&endpoint(&one.id, Some("main"))).await.unwrap();
    let error = store.insert_endpoint(&endpoint(&one.id, Some("main"))).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "uid" }), "{error:?}");
    store.insert_endpoint(&endpoint(&two.id, Some("main"))).await.unwrap();
}

pub async fn endpoints_are_scoped_to_their_application(store: &dyn Store) {
    let one = application("one", None);
    let two = application("two", None);
    store.insert_application(&one).await.unwrap();
    store.insert_application(&two).await.unwrap();
    let ep = endpoint(&one.id, None);
    store.insert_endpoint(&ep).await.unwrap();
    assert_eq!(store.find_endpoint(&two.id, &Key::Id(ep.id.clone())).await.unwrap(), None);
    assert!(store.list_endpoints(&two.id, &PageRequest::default()).await.unwrap().items.is_empty());
    assert!(!store.delete_endpoint(&two.id, &ep.id).await.unwrap());
    let change = EndpointChange { description: Some("moved".to_owned()), ..Default::default() };
    assert_eq!(store.update_endpoint(&two.id, &ep.id, &change, now()).await.unwrap(), None);
    let still = store.find_endpoint(&one.id, &Key::Id(ep.id.clone())).await.unwrap().unwrap();
    assert_eq!(still.description, ep.description);
}

pub async fn event_types_archive_list_and_expunge(store: &dyn Store) {
    for name in ["b.event", "a.event", "c.event"] {
        store.insert_event_type(&event_type(name)).await.unwrap();
    }
    let error = store.insert_event_type(&event_type("a.event")).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "name" }), "{error:?}");

    let a = EventTypeName::parse("a.event").unwrap();
    let found = store.find_event_type(&a).await.unwrap().unwrap();
    assert_eq!(found, event_type_with_times("a.event", &found));
    let change = EventTypeChange { archived: Some(true), ..Default::default() };
    let archived = store.update_event_type(&a, &change, now()).await.unwrap().unwrap();
    assert!(archived.archived);
    assert_eq!(archived.description, found.description);
    // Creating over an active event type is refused by the change's precondition, writing nothing.
    let b = EventTypeName::parse("b.event").unwrap();
    let over =
        EventTypeChange { description: Some("new".to_owned()), only_if_archived: true, ..Default::default() };
    let error = store.update_event_type(&b, &over, now()).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { what: "name" }), "{error:?}");
    assert_ne!(store.find_event_type(&b).await.unwrap().unwrap().description, "new");

    let names = |page: &crate::store::Page<EventType>| {
        page.items.iter().map(|e| e.name.to_string()).collect::<Vec<_>>()
    };
    let visible = store.list_event_types(&PageRequest::default(), false).await.unwrap();
    assert_eq!(names(&visible), ["b.event", "c.event"]);
    let all = store.list_event_types(&PageRequest::default(), true).await.unwrap();
    assert_eq!(names(&all), ["a.event", "b.event", "c.event"]);

    assert!(store.expunge_event_type(&a).await.unwrap());
    assert_eq!(store.find_event_type(&a).await.unwrap(), None);
    assert!(!store.expunge_event_type(&a).await.unwrap());
}

fn event_type_with_times(name: &str, found: &EventType) -> EventType {
    EventType { created_at: found.created_at, updated_at: found.updated_at, ..event_type(name) }
}

pub async fn unknown_event_types_are_reported(store: &dyn Store) {
    store.insert_event_type(&event_type("known")).await.unwrap();
    let mut archived = event_type("archived");
    archived.archived = true;
    store.insert_event_type(&archived).await.unwrap();
    let names: Vec<_> =
        ["known", "missing", "archived", "other"].iter().map(|n| EventTypeName::parse(n).unwrap()).collect();
    let unknown = store.unknown_event_types(&names).await.unwrap();
    assert_eq!(unknown, vec![names[1].clone(), names[3].clone()]);
    assert!(store.unknown_event_types(&[]).await.unwrap().is_empty());
}

pub async fn tokens_are_found_by_hash_only(store: &dyn Store) {
    assert_eq!(store.count_organization_tokens().await.unwrap(), 0);
    let app = application("portal", None);
    store.insert_application(&app).await.unwrap();
    let org = ApiToken {
        id: TokenId::generate(),
        hash: TokenHash::of("sk_org"),
        scope: TokenScope::Organization,
        description: "first start".to_owned(),
        created_at: now(),
        expires_at: None,
        session_id: None,
    };
    let scoped = ApiToken {
        id: TokenId::generate(),
        hash: TokenHash::of("appsk_portal"),
        scope: TokenScope::Application(app.id.clone()),
        description: "portal".to_owned(),
        created_at: now(),
        expires_at: Some(now() + Duration::hours(1)),
        session_id: Some("session-1".to_owned()),
    };
    store.insert_token(&org).await.unwrap();
    store.insert_token(&scoped).await.unwrap();
    assert_eq!(store.count_organization_tokens().await.unwrap(), 1);
    assert_eq!(store.find_token(&TokenHash::of("sk_org")).await.unwrap(), Some(org));
    assert_eq!(store.find_token(&TokenHash::of("appsk_portal")).await.unwrap(), Some(scoped));
    assert_eq!(store.find_token(&TokenHash::of("sk_other")).await.unwrap(), None);
    // An application's tokens go with it.
    store.delete_application(&app.id).await.unwrap();
    assert_eq!(store.find_token(&TokenHash::of("appsk_portal")).await.unwrap(), None);
}

pub async fn tokens_are_listed_revoked_and_purged_once_expired(store: &dyn Store) {
    let app = application("portal", None);
    store.insert_application(&app).await.unwrap();
    let t = now();
    let token =
        |value: &str, scope: TokenScope, at: DateTime<Utc>, expires_at: Option<DateTime<Utc>>| ApiToken {
            id: TokenId::generate_at(at),
            hash: TokenHash::of(value),
            scope,
            description: value.to_owned(),
            created_at: at,
            expires_at,
            session_id: None,
        };
    let org = token("sk_org", TokenScope::Organization, t, None);
    let portal = |value: &str, i: i64, expires_at| {
        token(value, TokenScope::Application(app.id.clone()), t + Duration::seconds(i), Some(expires_at))
    };
    let expired: Vec<ApiToken> =
        (1..=3).map(|i| portal(&format!("appsk_old{i}"), i, t + Duration::minutes(i))).collect();
    // Expiring exactly at the purge's `now`: expired, so purged.
    let at_the_edge = portal("appsk_edge", 4, t + Duration::hours(1));
    let live = portal("appsk_live", 5, t + Duration::hours(2));
    let mut all = vec![org.clone()];
    all.extend(expired.iter().cloned());
    all.extend([at_the_edge.clone(), live.clone()]);
    for token in &all {
        store.insert_token(token).await.unwrap();
    }

    // Listed by id, in pages, both ways.
    let first = PageRequest { limit: 4, ..PageRequest::default() };
    let page = store.list_tokens(&first).await.unwrap();
    assert_eq!(page.items, all[..4].to_vec());
    assert!(page.has_more);
    let next = PageRequest { after: Some(all[3].id.to_string()), ..first.clone() };
    let page = store.list_tokens(&next).await.unwrap();
    assert_eq!(page.items, all[4..].to_vec());
    assert!(!page.has_more);
    let newest_first = PageRequest { order: Ordering::Descending, ..PageRequest::default() };
    let page = store.list_tokens(&newest_first).await.unwrap();
    assert_eq!(page.items.first(), Some(&live));

    // Revoked: gone for good, and a second revocation finds nothing.
    assert!(store.delete_token(&org.id).await.unwrap());
    assert_eq!(store.find_token(&TokenHash::of("sk_org")).await.unwrap(), None);
    assert!(!store.delete_token(&org.id).await.unwrap());
    assert_eq!(store.count_organization_tokens().await.unwrap(), 0);

    // Expired ones are purged in batches; unexpired ones stay.
    let purge_at = t + Duration::hours(1);
    assert_eq!(store.delete_expired_tokens(purge_at, 3).await.unwrap(), 3, "the limit is kept");
    assert_eq!(store.delete_expired_tokens(purge_at, 3).await.unwrap(), 1);
    assert_eq!(store.delete_expired_tokens(purge_at, 3).await.unwrap(), 0);
    let left = store.list_tokens(&PageRequest::default()).await.unwrap();
    assert_eq!(left.items, vec![live.clone()]);
    assert_eq!(store.find_token(&TokenHash::of("appsk_live")).await.unwrap(), Some(live));
    assert_eq!(store.find_token(&TokenHash::of("appsk_old1")).await.unwrap(), None);
}

/// URLs sealed on write are left alone by the start-up pass that seals what earlier versions
/// stored in clear, as are URLs with an `@` outside their authority. (Rows stored in clear are
/// made with SQL by the HTTP suite, on both backends: `tests/it/url_credentials.rs`.)
pub async fn sealing_clear_url_credentials_leaves_sealed_ones_alone(store: &dyn Store) {
    let app = application("sealing", None);
    store.insert_application(&app).await.unwrap();
    let mut with_credentials = endpoint(&app.id, Some("credentials"));
    with_credentials.url = "https://user:pa%40ss@example.com/hooks".parse().unwrap();
    let mut at_in_path = endpoint(&app.id, Some("at-in-path"));
    at_in_path.url = "https://example.com/hooks/a@b?c=d@e".parse().unwrap();
    for ep in [&with_credentials, &at_in_path] {
        store.insert_endpoint(ep).await.unwrap();
    }
    assert_eq!(store.seal_clear_url_credentials().await.unwrap(), 0, "nothing is stored in clear");
    for ep in [&with_credentials, &at_in_path] {
        let found = store.find_endpoint(&app.id, &Key::Id(ep.id.clone())).await.unwrap();
        assert_eq!(found.as_ref(), Some(ep), "unchanged, credentials included");
    }
    assert_eq!(store.seal_clear_url_credentials().await.unwrap(), 0);
}

pub async fn application_tokens_expire_at_once_or_by_session(store: &dyn Store) {
    let app = application("portal", None);
    let other_app = application("other", None);
    store.insert_application(&app).await.unwrap();
    store.insert_application(&other_app).await.unwrap();
    let t = now();
    let token =
        |value: &str, scope: TokenScope, session: Option<&str>, expires_at: Option<DateTime<Utc>>| ApiToken {
            id: TokenId::generate(),
            hash: TokenHash::of(value),
            scope,
            description: value.to_owned(),
            created_at: t,
            expires_at,
            session_id: session.map(str::to_owned),
        };
    let portal = TokenScope::Application(app.id.clone());
    let in_a_day = Some(t + Duration::days(1));
    let all = [
        token("appsk_a1", portal.clone(), Some("a"), in_a_day),
        token("appsk_a2", portal.clone(), Some("a"), in_a_day),
        token("appsk_b", portal.clone(), Some("b"), in_a_day),
        token("appsk_none", portal.clone(), None, in_a_day),
        // Already expiring sooner than asked: kept as it is.
        token("appsk_soon", portal.clone(), Some("a"), Some(t + Duration::seconds(10))),
        token("appsk_other", TokenScope::Application(other_app.id.clone()), Some("a"), in_a_day),
        token("sk_org", TokenScope::Organization, None, None),
    ];
    for token in &all {
        store.insert_token(token).await.unwrap();
    }
    let expiry = |value: &'static str| async move {
        store.find_token(&TokenHash::of(value)).await.unwrap().and_then(|token| token.expires_at)
    };
    assert_eq!(
        store.find_token(&TokenHash::of("appsk_a1")).await.unwrap().unwrap().session_id.as_deref(),
        Some("a"),
        "a token keeps its session"
    );

    // Only session `a`'s tokens of this application, to one minute from now.
    let in_a_minute = t + Duration::minutes(1);
    let sessions = ["a".to_owned(), "unknown".to_owned()];
    assert_eq!(store.expire_application_tokens(&app.id, Some(&sessions), in_a_minute).await.unwrap(), 2);
    assert_eq!(expiry("appsk_a1").await, Some(in_a_minute));
    assert_eq!(expiry("appsk_a2").await, Some(in_a_minute));
    assert_eq!(expiry("appsk_b").await, in_a_day);
    assert_eq!(expiry("appsk_soon").await, Some(t + Duration::seconds(10)));
    assert_eq!(expiry("appsk_other").await, in_a_day, "another application's tokens are not touched");
    assert_eq!(store.expire_application_tokens(&app.id, Some(&[]), t).await.unwrap(), 0);

    // Every token of the application, now; organisation tokens are never touched.
    assert_eq!(store.expire_application_tokens(&app.id, None, t).await.unwrap(), 5);
    for value in ["appsk_a1", "appsk_a2", "appsk_b", "appsk_none", "appsk_soon"] {
        assert_eq!(expiry(value).await, Some(t), "{value}");
    }
    assert_eq!(expiry("appsk_other").await, in_a_day);
    assert_eq!(expiry("sk_org").await, None);
    assert!(store.find_token(&TokenHash::of("sk_org")).await.unwrap().is_some());
    assert_eq!(
        store.expire_application_tokens(&app.id, None, t).await.unwrap(),
        0,
        "nothing left to shorten"
    );
}

pub async fn idempotency_keys_claim_complete_and_expire(store: &dyn Store) {
    let key = IdempotencyKey("k1".to_owned());
    let t0 = now();
    let lease = Duration::minutes(2);
    let ttl = Duration::hours(12);
    let claim = |at: DateTime<Utc>| store.claim_idempotency_key(&key, at, at + lease);
    assert_eq!(claim(t0).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(claim(t0).await.unwrap(), IdempotencyClaim::InProgress);
    // A claim whose request never finished (a crash) frees the key when its lease ends.
    let t1 = t0 + lease + Duration::seconds(1);
    assert_eq!(claim(t1).await.unwrap(), IdempotencyClaim::Claimed);
    let response = StoredResponse { status: 201, body: br#"{"id":"app_x"}"#.to_vec() };
    store.complete_idempotency_key(&key, &response, t1 + ttl).await.unwrap();
    // The completed response outlives the claim's lease, until its own expiry.
    let t2 = t1 + lease + Duration::seconds(1);
    assert_eq!(claim(t2).await.unwrap(), IdempotencyClaim::Completed(response));
    let t3 = t1 + ttl + Duration::seconds(1);
    assert_eq!(claim(t3).await.unwrap(), IdempotencyClaim::Claimed);
    // A released claim (the request failed) frees the key at once.
    let other = IdempotencyKey("k2".to_owned());
    store.claim_idempotency_key(&other, t0, t0 + lease).await.unwrap();
    store.release_idempotency_key(&other).await.unwrap();
    assert_eq!(store.claim_idempotency_key(&other, t0, t0 + lease).await.unwrap(), IdempotencyClaim::Claimed);
}

pub async fn updates_of_missing_rows_report_not_found(store: &dyn Store) {
    let app = application("ghost", None);
    let ghost = EventTypeName::parse("ghost").unwrap();
    let ep = endpoint(&app.id, None);
    let t = now();
    assert_eq!(store.update_application(&app.id, &ApplicationChange::default(), t).await.unwrap(), None);
    assert_eq!(store.update_event_type(&ghost, &EventTypeChange::default(), t).await.unwrap(), None);
    assert_eq!(store.update_endpoint(&app.id, &ep.id, &EndpointChange::default(), t).await.unwrap(), None);
}
