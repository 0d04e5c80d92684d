//! Conformance checks for ingest sources: stored with their hidden application (config
//! sealed), found by token (and by a replaced token during its grace period only), changed
//! narrowly (concurrent changes all land), deleted with everything of theirs, refusals logged.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::Duration;

use super::delivery::message;
use super::{application, endpoint, now};
use crate::Store;
use crate::id::SourceId;
use crate::ingest::{Refusal, RefusalReason, Source, SourceChange, SourceConfig, SourceType};
use crate::name::Uid;
use crate::secret::SecretString;
use crate::store::{Key, MessageKey, PageRequest};
use crate::token::TokenHash;

fn new_source(uid: Option<&str>, token: &str) -> (Source, crate::model::Application) {
    let app = application("source: github", None);
    let at = now();
    let source = Source {
        id: SourceId::generate_at(at),
        app_id: app.id.clone(),
        uid: uid.map(|u| Uid::parse(u).unwrap()),
        name: "github".to_owned(),
        kind: SourceType::parse("github").unwrap(),
        config: SourceConfig { secret: Some("gh-secret".to_owned()), ..SourceConfig::default() },
        metadata: BTreeMap::from([("team".to_owned(), "ops".to_owned())]),
        token: SecretString::new(token),
        previous_token: None,
        created_at: at,
        updated_at: at,
    };
    (source, app)
}

pub async fn sources_round_trip_hidden_from_the_application_list(store: &dyn Store) {
    let listed = application("listed", None);
    store.insert_application(&listed).await.unwrap();
    let (source, app) = new_source(Some("gh"), "in_one");
    store.insert_source(&source, &app).await.unwrap();

    assert_eq!(store.find_source(&Key::Id(source.id.clone())).await.unwrap(), Some(source.clone()));
    assert_eq!(store.find_source(&Key::Uid(Uid::parse("gh").unwrap())).await.unwrap(), Some(source.clone()));
    assert_eq!(store.list_sources(&PageRequest::default()).await.unwrap().items, vec![source.clone()]);
    // The backing application exists (its endpoints and messages hang on it) but is not listed.
    assert!(store.find_application(&Key::Id(app.id.clone())).await.unwrap().is_some());
    let apps = store.list_applications(&PageRequest::default()).await.unwrap().items;
    assert_eq!(apps.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), vec![listed.id]);

    let (again, other_app) = new_source(Some("gh"), "in_two");
    assert!(matches!(
        store.insert_source(&again, &other_app).await,
        Err(crate::StoreError::Conflict { what: "uid" })
    ));
}

pub async fn sources_are_found_by_token_and_a_replaced_token_only_in_its_grace(store: &dyn Store) {
    let (source, app) = new_source(None, "in_first");
    store.insert_source(&source, &app).await.unwrap();
    let t = now();
    assert_eq!(
        store.find_source_by_token(&TokenHash::of("in_first"), t).await.unwrap().unwrap().id,
        source.id
    );
    assert!(store.find_source_by_token(&TokenHash::of("in_other"), t).await.unwrap().is_none());

    let rotation = SourceChange {
        rotate_token: Some((SecretString::new("in_second"), t + Duration::hours(48))),
        ..Default::default()
    };
    let rotated = store.update_source(&source.id, &rotation, t).await.unwrap().unwrap();
    assert_eq!(rotated.token, SecretString::new("in_second"));
    for token in ["in_first", "in_second"] {
        let found = store.find_source_by_token(&TokenHash::of(token), t + Duration::hours(47)).await.unwrap();
        assert_eq!(found.map(|s| s.id), Some(source.id.clone()), "{token}");
    }
    assert!(
        store
            .find_source_by_token(&TokenHash::of("in_first"), t + Duration::hours(48))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_source_by_token(&TokenHash::of("in_second"), t + Duration::hours(49))
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn deleting_a_source_removes_its_application_events_and_refusals(store: &dyn Store) {
    let (source, app) = new_source(None, "in_gone");
    store.insert_source(&source, &app).await.unwrap();
    store.insert_endpoint(&endpoint(&app.id, None)).await.unwrap();
    let event = message(&app.id, "order.created", Some(&["eu"]));
    store.insert_message(&event).await.unwrap();
    let refusal = Refusal {
        source_id: source.id.clone(),
        reason: RefusalReason::BadSignature,
        at: now(),
        address: "127.0.0.1".into(),
    };
    store.record_refusal(&refusal).await.unwrap();

    assert!(store.delete_source(&source.id).await.unwrap());
    assert!(store.find_source(&Key::Id(source.id.clone())).await.unwrap().is_none());
    assert!(store.find_application(&Key::Id(app.id.clone())).await.unwrap().is_none());
    assert!(store.find_message(&app.id, &MessageKey::Id(event.id.clone())).await.unwrap().is_none());
    assert!(store.list_refusals(&source.id, 10).await.unwrap().is_empty());
    assert!(!store.delete_source(&source.id).await.unwrap());
    assert!(store.update_source(&source.id, &SourceChange::default(), now()).await.unwrap().is_none());
}

pub async fn refusals_are_listed_newest_first(store: &dyn Store) {
    let (source, app) = new_source(None, "in_refused");
    store.insert_source(&source, &app).await.unwrap();
    let t = now();
    for (i, reason) in RefusalReason::ALL.into_iter().enumerate() {
        let at = t + Duration::seconds(i64::try_from(i).unwrap());
        let refusal = Refusal { source_id: source.id.clone(), reason, at, address: format!("10.0.0.{i}") };
        store.record_refusal(&refusal).await.unwrap();
    }
    let listed = store.list_refusals(&source.id, 3).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.reason).collect::<Vec<_>>(),
        vec![RefusalReason::TooLarge, RefusalReason::StaleTimestamp, RefusalReason::BadSignature]
    );
    assert_eq!(listed[0].address, "10.0.0.3");
    assert_eq!(listed[0].at, t + Duration::seconds(3));
}

pub async fn concurrent_source_changes_of_different_fields_all_land(store: &dyn Store) {
    let (source, app) = new_source(None, "in_busy");
    store.insert_source(&source, &app).await.unwrap();
    for round in 0..30 {
        let name = SourceChange { name: Some(format!("round {round}")), ..Default::default() };
        let token = format!("in_round_{round}");
        let rotation = SourceChange {
            rotate_token: Some((SecretString::new(token.clone()), now() + Duration::hours(1))),
            ..Default::default()
        };
        let config = SourceChange {
            config: Some(SourceConfig { secret: Some(format!("secret {round}")), ..SourceConfig::default() }),
            ..Default::default()
        };
        let refusal = Refusal {
            source_id: source.id.clone(),
            reason: RefusalReason::BadSignature,
            at: now(),
            address: round.to_string(),
        };
        let t = now();
        let (a, b, c, d) = tokio::join!(
            store.update_source(&source.id, &name, t),
            store.update_source(&source.id, &rotation, t),
            store.update_source(&source.id, &config, t),
            store.record_refusal(&refusal),
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
        d.unwrap();
        let now_source = store.find_source(&Key::Id(source.id.clone())).await.unwrap().unwrap();
        assert_eq!(now_source.name, format!("round {round}"));
        assert_eq!(now_source.token, SecretString::new(token));
        assert_eq!(now_source.config.secret, Some(format!("secret {round}")));
        assert_eq!(store.list_refusals(&source.id, 1).await.unwrap()[0].address, round.to_string());
    }
}
