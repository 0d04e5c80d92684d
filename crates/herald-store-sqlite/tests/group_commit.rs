//! The group-commit writer under concurrency: every write lands, and one failing write in a
//! batch (a duplicate event id) does not take the others down with it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use herald_core::delivery::{Message, MessageFilter};
use herald_core::id::{ApplicationId, MessageId};
use herald_core::model::Application;
use herald_core::name::{EventId, EventTypeName};
use herald_core::secret::Cipher;
use herald_core::store::PageRequest;
use herald_core::store::{OperationsStore as _, QueueStore as _, ResourceStore as _};
use herald_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_all_land_and_a_conflict_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("herald.db"), cipher).await.unwrap());
    let now = Utc::now();
    let app = Application {
        id: ApplicationId::generate(),
        uid: None,
        name: "load".to_owned(),
        metadata: Default::default(),
        throttle_rate: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_application(&app).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        let app_id = app.id.clone();
        tasks.push(tokio::spawn(async move {
            // Every tenth message reuses one event id: exactly one of those may succeed.
            let event_id = if i % 10 == 0 { "shared".to_owned() } else { format!("evt-{i}") };
            let message = Message {
                id: MessageId::generate(),
                app_id,
                event_type: EventTypeName::parse("load.test").unwrap(),
                event_id: Some(EventId::parse(&event_id).unwrap()),
                channels: None,
                payload: Some(format!("{{\"i\":{i}}}").into_bytes()),
                created_at: now,
                deliver_at: None,
                payload_expires_at: now + Duration::days(1),
                ordering_key: None,
                payload_version: herald_core::version::PayloadVersion::FIRST,
                envelope: None,
            };
            store.insert_message(&message).await.is_ok()
        }));
    }
    let mut stored = 0;
    for task in tasks {
        if task.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 360 + 1);
    let mut seen = 0;
    let mut page = PageRequest { limit: 250, ..PageRequest::default() };
    loop {
        let found = store.list_messages(&app.id, &MessageFilter::default(), &page).await.unwrap();
        seen += found.items.len();
        if !found.has_more {
            break;
        }
        page.after = found.items.last().map(|m| m.id.to_string());
    }
    assert_eq!(seen, 361, "the store holds exactly the acknowledged messages");
}

/// Closing the store finishes the writes queued before it, and later writes fail with a
/// clear error instead of hanging; a store opened again on the same file sees every write.
#[tokio::test]
async fn close_finishes_queued_writes_and_refuses_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).unwrap();
    let store = SqliteStore::open(&path, cipher.clone()).await.unwrap();
    let now = Utc::now();
    let app = Application {
        id: ApplicationId::generate(),
        uid: None,
        name: "closing".to_owned(),
        metadata: Default::default(),
        throttle_rate: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_application(&app).await.unwrap();
    let message = |n: u32| Message {
        id: MessageId::generate(),
        app_id: app.id.clone(),
        event_type: EventTypeName::parse("a.b").unwrap(),
        event_id: Some(EventId::parse(&format!("evt-{n}")).unwrap()),
        channels: None,
        payload: Some(b"{}".to_vec()),
        created_at: now,
        deliver_at: None,
        payload_expires_at: now + Duration::days(1),
        ordering_key: None,
        payload_version: herald_core::version::PayloadVersion::FIRST,
        envelope: None,
    };
    store.insert_message(&message(1)).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;

    let refused = store.insert_message(&message(2)).await.unwrap_err();
    let cause = std::error::Error::source(&refused).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("writer has stopped"), "{refused}: {cause}");
    assert!(store.ping().await.is_err(), "a closed store is not reachable");

    let reopened = SqliteStore::open(&path, cipher).await.unwrap();
    let page =
        reopened.list_messages(&app.id, &MessageFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(page.items.len(), 1, "the write before close landed, the one after did not");
    reopened.close().await;
}
