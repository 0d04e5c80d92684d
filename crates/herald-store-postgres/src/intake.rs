//! Message intake in shared transactions (group commit): messages accepted by many API
//! requests at once are queued to one task, which writes everything waiting in one statement
//! (`messages::insert_batch`), so a busy node pays one round trip, one commit (one WAL flush)
//! and one `NOTIFY` per batch instead of per message. Each message is still written, with its
//! deliveries, before its request hears `Ok` (the commit), so "accepted means durable" holds.
//!
//! When idle a message is written alone at once (a batch of one). A duplicate `eventId`
//! fails only its own message (reported as a conflict); any other failure of a batch rolls it
//! back and writes its messages one by one, so an error fails alone too.

use herald_core::StoreError;
use herald_core::delivery::Message;
use herald_core::id::EndpointId;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::messages;

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
        let batch: Vec<&Message> = jobs.iter().map(|(message, _)| message).collect();
        match messages::insert_batch(&pool, &batch).await {
            Ok(results) => {
                for ((_, reply), result) in jobs.into_iter().zip(results) {
                    drop(reply.send(result));
                }
            }
            Err(error) if jobs.len() == 1 => {
                drop(jobs.remove(0).1.send(Err(error)));
            }
            Err(error) => {
                // Nothing of the batch was written: each message again on its own, so that
                // whatever failed fails alone.
                tracing::debug!(error = %error, messages = jobs.len(), "a batch of messages failed; writing them one by one");
                for (message, reply) in jobs {
                    drop(reply.send(messages::insert_alone(&pool, &message).await));
                }
            }
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the message intake has stopped".into())
}
