//! Message intake in shared transactions (group commit): messages accepted by many API
//! requests at once are queued to one task, which writes everything waiting in one
//! transaction, so a busy node pays one commit (one WAL flush) and one `NOTIFY` per batch
//! instead of per message. Each message is still written, with its deliveries, before its
//! request hears `Ok` (the commit), so "accepted means durable" holds.
//!
//! When idle a message is written alone at once (the single-statement insert of `messages`).
//! A duplicate `eventId` fails only its own message (`ON CONFLICT DO NOTHING`, reported as a
//! conflict); any other failure of a batch rolls it back and writes its messages one by one,
//! so an error fails alone too.

use herald_core::StoreError;
use herald_core::delivery::Message;
use herald_core::id::EndpointId;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::backend;
use crate::messages::{self, bind_message, insert_ctes};

/// The most messages written in one transaction.
const MAX_BATCH: usize = 128;
/// Messages that may wait; API requests wait when it is full (back-pressure).
const QUEUE_CAPACITY: usize = 4096;

type Reply = oneshot::Sender<Result<Vec<EndpointId>, StoreError>>;

/// Handle for queueing messages to the intake task.
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    queue: mpsc::Sender<(Message, Reply)>,
}

impl Intake {
    /// Starts the task; it ends when every handle is dropped.
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    /// Stores the message and its deliveries; returns the endpoints it was queued for.
    pub(crate) async fn insert(&self, message: Message) -> Result<Vec<EndpointId>, StoreError> {
        let (reply, result) = oneshot::channel();
        let stopped = || StoreError::Backend("the message intake has stopped".into());
        self.queue.send((message, reply)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<(Message, Reply)>) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            let Ok(job) = receiver.try_recv() else { break };
            jobs.push(job);
        }
        if jobs.len() == 1 {
            let (message, reply) = jobs.remove(0);
            drop(reply.send(messages::insert_one(&pool, &message).await));
            continue;
        }
        let batch: Vec<&Message> = jobs.iter().map(|(message, _)| message).collect();
        match write_batch(&pool, &batch).await {
            Ok(results) => {
                for ((_, reply), result) in jobs.into_iter().zip(results) {
                    drop(reply.send(result));
                }
            }
            Err(error) => {
                // Nothing of the batch was written: each message again on its own, so that
                // whatever failed fails alone.
                tracing::debug!(error = %error, messages = jobs.len(), "a batch of messages failed; writing them one by one");
                for (message, reply) in jobs {
                    drop(reply.send(messages::insert_one(&pool, &message).await));
                }
            }
        }
    }
}

/// Writes the messages in one transaction; a duplicate `eventId` is that message's own result.
async fn write_batch(
    pool: &PgPool,
    batch: &[&Message],
) -> Result<Vec<Result<Vec<EndpointId>, StoreError>>, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let mut results = Vec::with_capacity(batch.len());
    let mut queued_any = false;
    for message in batch {
        let result = insert_in(&mut tx, message).await?;
        queued_any |= result.as_ref().is_ok_and(|endpoints| !endpoints.is_empty());
        results.push(result);
    }
    if queued_any {
        // One notification for the batch, sent on commit.
        messages::notify_new_work(&mut tx).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(results)
}

/// The message with its deliveries, as in `messages::insert_one`, but a duplicate `eventId` is
/// skipped (and reported) instead of aborting the transaction, and without the notification.
async fn insert_in(
    conn: &mut PgConnection,
    message: &Message,
) -> Result<Result<Vec<EndpointId>, StoreError>, StoreError> {
    let query = sqlx::query(concat!(
        insert_ctes!("ON CONFLICT (app_id, event_id) WHERE event_id IS NOT NULL DO NOTHING"),
        " SELECT (SELECT count(*) FROM message) AS inserted,
                 COALESCE((SELECT array_agg(endpoint_id ORDER BY endpoint_id) FROM queued), '{}') AS endpoints"
    ));
    let row = bind_message(query, message).fetch_one(&mut *conn).await.map_err(backend)?;
    let inserted: i64 = sqlx::Row::try_get(&row, "inserted").map_err(backend)?;
    if inserted == 0 {
        return Ok(Err(StoreError::Conflict { what: "eventId" }));
    }
    let endpoints: Vec<String> = sqlx::Row::try_get(&row, "endpoints").map_err(backend)?;
    Ok(endpoints
        .into_iter()
        .map(|id| id.parse().map_err(|e| StoreError::Corrupt(format!("endpoint id: {e}"))))
        .collect())
}
