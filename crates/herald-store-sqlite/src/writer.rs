//! Group commit: the hot writes (new messages, attempt records) from many tasks are queued to
//! one writer task, which runs everything waiting in a single transaction and one fsync.
//!
//! Under load a commit carries hundreds of writes, so durable commits (`synchronous=FULL`)
//! cost little per message; when idle a write commits alone at once. Each job runs inside
//! its own savepoint, so one failing job (a duplicate `eventId`) never aborts the others.

use herald_core::StoreError;
use herald_core::delivery::{AttemptRecord, Message};
use herald_core::id::EndpointId;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{backend, deliveries, messages};

/// The most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer; senders wait when it is full (back-pressure).
const QUEUE_CAPACITY: usize = 4096;

/// A write to perform, with where to send its result.
pub(crate) enum Job {
    InsertMessage(Message, oneshot::Sender<Result<Vec<EndpointId>, StoreError>>),
    RecordAttempt(AttemptRecord, oneshot::Sender<Result<bool, StoreError>>),
}

/// The result of one job, before it is sent back.
enum Done {
    Message(Result<Vec<EndpointId>, StoreError>),
    Attempt(Result<bool, StoreError>),
}

/// Handle for queueing jobs to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `pool` (which must be the single writing connection).
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    pub(crate) async fn insert_message(&self, message: Message) -> Result<Vec<EndpointId>, StoreError> {
        let (reply, result) = oneshot::channel();
        self.send(Job::InsertMessage(message, reply)).await?;
        result.await.map_err(|_| closed())?
    }

    pub(crate) async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        let (reply, result) = oneshot::channel();
        self.send(Job::RecordAttempt(record, reply)).await?;
        result.await.map_err(|_| closed())?
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.queue.send(job).await.map_err(|_| closed())
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the database writer has stopped".into())
}

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&pool, &jobs).await {
            Ok(results) => {
                for (job, done) in jobs.into_iter().zip(results) {
                    reply(job, done);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, jobs = jobs.len(), "a write batch failed to commit");
                let message = error.to_string();
                for job in jobs {
                    let failed = || StoreError::Backend(message.clone().into());
                    match job {
                        Job::InsertMessage(_, reply) => drop(reply.send(Err(failed()))),
                        Job::RecordAttempt(_, reply) => drop(reply.send(Err(failed()))),
                    }
                }
            }
        }
    }
}

fn reply(job: Job, done: Done) {
    // A caller that went away (request cancelled) no longer needs the answer; its write is
    // committed all the same, which is what "accepted means durable" requires.
    match (job, done) {
        (Job::InsertMessage(_, reply), Done::Message(result)) => drop(reply.send(result)),
        (Job::RecordAttempt(_, reply), Done::Attempt(result)) => drop(reply.send(result)),
        (Job::InsertMessage(_, reply), Done::Attempt(_)) => drop(reply.send(Err(closed()))),
        (Job::RecordAttempt(_, reply), Done::Message(_)) => drop(reply.send(Err(closed()))),
    }
}

async fn commit_batch(pool: &SqlitePool, jobs: &[Job]) -> Result<Vec<Done>, StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(backend)?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(error) = sqlx::query("SAVEPOINT job").execute(&mut *conn).await {
            rollback(&mut conn).await;
            return Err(backend(error));
        }
        let done = match job {
            Job::InsertMessage(message, _) => Done::Message(messages::insert(&mut conn, message).await),
            Job::RecordAttempt(record, _) => {
                Done::Attempt(deliveries::record_attempt(&mut conn, record).await)
            }
        };
        let failed = matches!(&done, Done::Message(Err(_)) | Done::Attempt(Err(_)));
        let statement = if failed { "ROLLBACK TO job" } else { "RELEASE job" };
        let mut step = sqlx::query(statement).execute(&mut *conn).await.map(drop);
        if failed && step.is_ok() {
            step = sqlx::query("RELEASE job").execute(&mut *conn).await.map(drop);
        }
        if let Err(error) = step {
            rollback(&mut conn).await;
            return Err(backend(error));
        }
        results.push(done);
    }
    if let Err(error) = sqlx::query("COMMIT").execute(&mut *conn).await {
        rollback(&mut conn).await;
        return Err(backend(error));
    }
    Ok(results)
}

async fn rollback(conn: &mut SqliteConnection) {
    if let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::warn!(error = %error, "rollback after a failed write batch failed");
    }
}
