//! The group-commit writer under concurrency: every write lands, and one failing write in a
//! batch (a duplicate event id) does not take the others down with it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use herald_core::Store;
use herald_core::delivery::{Message, MessageFilter};
use herald_core::id::{ApplicationId, MessageId};
use herald_core::model::Application;
use herald_core::name::{EventId, EventTypeName};
use herald_core::secret::Cipher;
use herald_core::store::PageRequest;
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
