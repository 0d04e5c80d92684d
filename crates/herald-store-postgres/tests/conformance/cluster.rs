//! Checks of what several nodes share beyond the queue: heartbeats, circuit breakers and
//! message retention, with the nodes acting at the same moment.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use herald_core::delivery::Message;
use herald_core::id::{ApplicationId, MessageId};
use herald_core::store::MessageKey;
use herald_store_postgres::PostgresStore;

use crate::Check;
use crate::nodes::{application, endpoint, lease_request, message, now};
use crate::server::{Server, test_cipher};
use herald_core::store::{OperationsStore as _, QueueStore as _};

/// How long a statement that must not wait for another transaction may take.
const NO_WAIT: StdDuration = StdDuration::from_secs(5);

pub(crate) fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "nodes_beating_at_once_count_each_other_without_failing",
            exclusive: false,
            run: |server| Box::pin(async move { nodes_beating_at_once(&server).await }),
        },
        Check {
            name: "a_circuit_opened_on_one_node_is_open_on_every_node",
            exclusive: false,
            run: |server| Box::pin(async move { circuits_are_shared(&server).await }),
        },
        Check {
            name: "nodes_deleting_old_messages_at_once_take_each_once",
            exclusive: false,
            run: |server| Box::pin(async move { nodes_deleting_at_once(&server).await }),
        },
        Check {
            name: "retention_skips_a_message_whose_attempt_is_being_recorded",
            exclusive: false,
            run: |server| Box::pin(async move { retention_skips_a_recording(&server).await }),
        },
    ]
}

/// Two stores on one schema, sharing a key, as two processes of one deployment.
async fn two_nodes(server: &Server) -> (crate::server::TestSchema<'_>, [PostgresStore; 2]) {
    let schema = server.schema().await;
    let cipher = test_cipher();
    let nodes = [schema.store_with(cipher.clone()).await, schema.store_with(cipher).await];
    (schema, nodes)
}

async fn nodes_beating_at_once(server: &Server) {
    const NODES: usize = 6;
    const BEATS: i64 = 40;
    let (_schema, stores) = two_nodes(server).await;
    let base = now();
    // Every beat is a second after the last and lasts half a second, so each node keeps
    // finding the others' rows lapsed and deleting them while they refresh them: the
    // statements that could deadlock if the locks were taken in the wrong order.
    let mut tasks = Vec::new();
    for n in 0..NODES {
        let store = stores[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{n}");
            for beat in 0..BEATS {
                let at = base + Duration::seconds(beat);
                let live = store.heartbeat(&node, at, at + Duration::milliseconds(500)).await.unwrap();
                assert!((1..=NODES as u32).contains(&live), "{live} live nodes");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let later = base + Duration::seconds(BEATS + 1);
    for n in 0..NODES {
        let live = stores[n % 2].heartbeat(&format!("node-{n}"), later, later + Duration::seconds(10)).await;
        assert_eq!(live.unwrap(), n as u32 + 1, "the nodes before it are alive, the rest lapsed");
    }
    for n in 1..NODES {
        stores[n % 2].leave(&format!("node-{n}")).await.unwrap();
    }
    assert_eq!(stores[0].heartbeat("node-0", later, later + Duration::seconds(10)).await.unwrap(), 1);
}

async fn circuits_are_shared(server: &Server) {
    let (_schema, [one, two]) = two_nodes(server).await;
    let app = application(&one).await;
    let ep = endpoint(&one, &app).await;
    let at = now();
    let until = at + Duration::seconds(30);
    one.open_circuit(&ep, until).await.unwrap();
    assert_eq!(two.circuit_open_until(&ep, at).await.unwrap(), Some(until));
    // The other node opening it for less time changes nothing.
    two.open_circuit(&ep, at + Duration::seconds(5)).await.unwrap();
    assert_eq!(one.circuit_open_until(&ep, at).await.unwrap(), Some(until));
}

/// A message of `app` created at `at`.
fn message_at(app: &ApplicationId, at: DateTime<Utc>) -> Message {
    Message { id: MessageId::generate_at(at), created_at: at, ..message(app) }
}

/// Deletes in batches of 7 until a batch comes back empty; returns how many it deleted.
async fn delete_until_empty(store: PostgresStore, before: DateTime<Utc>) -> u64 {
    let mut deleted = 0;
    loop {
        match store.delete_messages_before(before, 7).await.unwrap() {
            0 => return deleted,
            n => deleted += n,
        }
    }
}

async fn nodes_deleting_at_once(server: &Server) {
    const MESSAGES: usize = 80;
    let (_schema, nodes) = two_nodes(server).await;
    let app = application(&nodes[0]).await;
    endpoint(&nodes[0], &app).await;
    endpoint(&nodes[0], &app).await;
    let cutoff = now() - Duration::days(1);
    for i in 0..MESSAGES {
        let at = cutoff - Duration::days(1) + Duration::milliseconds(i as i64);
        nodes[i % 2].insert_message(&message_at(&app, at)).await.unwrap();
    }
    let kept = message_at(&app, cutoff);
    nodes[0].insert_message(&kept).await.unwrap();

    let mut workers = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            workers.push(tokio::spawn(delete_until_empty(node.clone(), cutoff)));
        }
    }
    let mut deleted = 0;
    for worker in workers {
        deleted += worker.await.unwrap();
    }
    // A worker stops at its first empty batch, which SKIP LOCKED may give it while another
    // holds the rest for a moment; whatever is left goes now.
    deleted += delete_until_empty(nodes[0].clone(), cutoff).await;
    assert_eq!(deleted, MESSAGES as u64, "every old message once, none twice");
    assert!(nodes[1].find_message(&app, &MessageKey::Id(kept.id)).await.unwrap().is_some());
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries").fetch_one(nodes[0].pool()).await.unwrap();
    assert_eq!(left, 2, "only the kept message's deliveries remain");
}

async fn retention_skips_a_recording(server: &Server) {
    let schema = server.schema().await;
    let store = schema.store().await;
    let app = application(&store).await;
    endpoint(&store, &app).await;
    let cutoff = now();
    let old = message_at(&app, cutoff - Duration::days(1));
    store.insert_message(&old).await.unwrap();
    let leased = store.lease_deliveries(&lease_request(now(), 10, 10, Duration::minutes(1))).await.unwrap();
    assert_eq!(leased.len(), 1);

    // A worker half-way through recording an attempt: it has updated the delivery (and holds
    // its row lock), and will next insert the attempt, which takes a share lock on the message.
    let mut recording = store.pool().begin().await.unwrap();
    sqlx::query("UPDATE deliveries SET updated_at = updated_at WHERE id = $1")
        .bind(leased[0].delivery_id)
        .execute(&mut *recording)
        .await
        .unwrap();
    // Retention must neither wait for it nor take the message from under it: had it locked the
    // message and then waited for the delivery, the two would deadlock.
    let deleted = tokio::time::timeout(NO_WAIT, store.delete_messages_before(cutoff, 10))
        .await
        .expect("retention does not wait for a recording in progress")
        .unwrap();
    assert_eq!(deleted, 0, "the message is kept for a later batch");
    tokio::time::timeout(
        NO_WAIT,
        sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR KEY SHARE")
            .bind(old.id.as_str())
            .execute(&mut *recording),
    )
    .await
    .expect("the recording is not blocked")
    .unwrap();
    recording.commit().await.unwrap();

    assert_eq!(store.delete_messages_before(cutoff, 10).await.unwrap(), 1, "it goes once the recording ends");
    store.close().await;
}
