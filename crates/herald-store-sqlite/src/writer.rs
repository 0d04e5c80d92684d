//! Group commit: the hot writes (new messages, attempt records, idempotency keys) from many
//! tasks are queued to
//! one writer task, which runs everything waiting in a single transaction and one fsync.
//!
//! Under load a commit carries hundreds of writes, so durable commits (`synchronous=FULL`)
//! cost little per message; when idle a write commits alone at once. A job refused for a
//! conflict (a duplicate `eventId`) fails alone; work the jobs of a batch share (reading an
//! application's endpoints, updating endpoint health) is done once per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{AttemptRecord, Message, Subscription};
use herald_core::id::EndpointId;
use herald_core::stats::CommitObserver;
use herald_core::store::{IdempotencyClaim, IdempotencyKey, StoredResponse};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{backend, deliveries, messages, tokens};

/// The most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer; senders wait when it is full (back-pressure).
const QUEUE_CAPACITY: usize = 4096;

/// Where a job's result goes.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write to perform, with where to send its result.
pub(crate) enum Job {
    InsertMessage(Message, Reply<Vec<EndpointId>>),
    RecordAttempt(AttemptRecord, Reply<bool>),
    ClaimKey {
        key: IdempotencyKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        reply: Reply<IdempotencyClaim>,
    },
    CompleteKey {
        key: IdempotencyKey,
        response: StoredResponse,
        expires_at: DateTime<Utc>,
        reply: Reply<()>,
    },
    ReleaseKey(IdempotencyKey, Reply<()>),
}

/// The result of one job, before it is sent back.
enum Done {
    Endpoints(Vec<EndpointId>),
    Recorded(bool),
    Claim(IdempotencyClaim),
    Unit,
}

/// Handle for queueing jobs to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `pool` (which must be the single writing connection);
    /// `observer` is told the size and duration of every batch.
    pub(crate) fn start(pool: SqlitePool, observer: Arc<dyn CommitObserver>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pool, receiver, observer));
        Self { queue }
    }

    /// Queues the job that `make` builds around a reply channel, and waits for its result.
    async fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, result) = oneshot::channel();
        self.queue.send(make(reply)).await.map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }

    pub(crate) async fn insert_message(&self, message: Message) -> Result<Vec<EndpointId>, StoreError> {
        self.submit(|reply| Job::InsertMessage(message, reply)).await
    }

    pub(crate) async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        self.submit(|reply| Job::RecordAttempt(record, reply)).await
    }

    pub(crate) async fn claim_key(
        &self,
        key: IdempotencyKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.submit(|reply| Job::ClaimKey { key, now, expires_at, reply }).await
    }

    pub(crate) async fn complete_key(
        &self,
        key: IdempotencyKey,
        response: StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.submit(|reply| Job::CompleteKey { key, response, expires_at, reply }).await
    }

    pub(crate) async fn release_key(&self, key: IdempotencyKey) -> Result<(), StoreError> {
        self.submit(|reply| Job::ReleaseKey(key, reply)).await
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the database writer has stopped".into())
}

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<Job>, observer: Arc<dyn CommitObserver>) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let committed = commit_batch(&pool, &jobs).await;
        observer.batch_committed(jobs.len(), started.elapsed());
        match committed {
            Ok(results) => {
                for (job, done) in jobs.into_iter().zip(results) {
                    reply(job, done);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, jobs = jobs.len(), "a write batch failed to commit");
                let message = error.to_string();
                for job in jobs {
                    reply(job, Err(StoreError::Backend(message.clone().into())));
                }
            }
        }
    }
}

/// Sends a job's result. A caller that went away (request cancelled) no longer needs the
/// answer; its write is committed all the same, which is what "accepted means durable" requires.
fn reply(job: Job, done: Result<Done, StoreError>) {
    fn send<T>(reply: Reply<T>, result: Result<T, StoreError>) {
        drop(reply.send(result));
    }
    fn mismatch<T>(_: Done) -> Result<T, StoreError> {
        Err(StoreError::Backend("internal error: a write produced the wrong result".into()))
    }
    match (job, done) {
        (Job::InsertMessage(_, r), Ok(Done::Endpoints(v))) => send(r, Ok(v)),
        (Job::RecordAttempt(_, r), Ok(Done::Recorded(v))) => send(r, Ok(v)),
        (Job::ClaimKey { reply: r, .. }, Ok(Done::Claim(v))) => send(r, Ok(v)),
        (Job::CompleteKey { reply: r, .. } | Job::ReleaseKey(_, r), Ok(Done::Unit)) => send(r, Ok(())),
        (Job::InsertMessage(_, r), result) => send(r, result.and_then(mismatch)),
        (Job::RecordAttempt(_, r), result) => send(r, result.and_then(mismatch)),
        (Job::ClaimKey { reply: r, .. }, result) => send(r, result.and_then(mismatch)),
        (Job::CompleteKey { reply: r, .. } | Job::ReleaseKey(_, r), result) => {
            send(r, result.and_then(mismatch))
        }
    }
}

/// Performs one job on the writer's connection, inside the batch transaction.
async fn perform(conn: &mut SqliteConnection, job: &Job, batch: &mut Batch) -> Result<Done, StoreError> {
    match job {
        Job::InsertMessage(message, _) => messages::insert(conn, message, batch).await.map(Done::Endpoints),
        Job::RecordAttempt(record, _) => deliveries::record_attempts(conn, &[record], batch)
            .await
            .map(|recorded| Done::Recorded(recorded[0])),
        Job::ClaimKey { key, now, expires_at, .. } => {
            tokens::claim_idempotency_key(conn, key, *now, *expires_at).await.map(Done::Claim)
        }
        Job::CompleteKey { key, response, expires_at, .. } => {
            tokens::complete_idempotency_key(conn, key, response, *expires_at).await.map(|()| Done::Unit)
        }
        Job::ReleaseKey(key, _) => tokens::release_idempotency_key(conn, key).await.map(|()| Done::Unit),
    }
}

/// What the jobs of one batch share, so work repeated across them is done once per batch.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Each application's enabled endpoints, read once per batch (endpoints only change
    /// between batches: every write goes through this one connection).
    pub subscriptions: HashMap<String, Vec<Subscription>>,
    /// How the batch's attempts leave each endpoint's health, applied once at the end.
    pub health: HashMap<String, EndpointHealth>,
}

/// An endpoint's health after the attempts of a batch, in order.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EndpointHealth {
    /// Some attempt in the batch succeeded.
    pub succeeded: bool,
    /// When the failures after the batch's last success began (microseconds); `None` if the
    /// last attempt succeeded.
    pub failing_since: Option<i64>,
}

impl EndpointHealth {
    pub(crate) fn record(&mut self, success: bool, at: i64) {
        if success {
            *self = Self { succeeded: true, failing_since: None };
        } else if self.failing_since.is_none() {
            self.failing_since = Some(at);
        }
    }
}

/// Runs the jobs in one transaction. A job that fails with a conflict (a duplicate `eventId`)
/// fails alone: its insert is its first statement, and SQLite undoes just that statement. Any
/// other error fails the whole batch, so no job is ever half written.
async fn commit_batch(pool: &SqlitePool, jobs: &[Job]) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(backend)?;
    let mut batch = Batch::default();
    let mut results: Vec<Option<Result<Done, StoreError>>> = Vec::with_capacity(jobs.len());
    // Attempt records are written together, in a few statements, after the other jobs.
    let mut records = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        if let Job::RecordAttempt(record, _) = job {
            records.push((index, record));
            results.push(None);
            continue;
        }
        match perform(&mut conn, job, &mut batch).await {
            Err(StoreError::Conflict { what }) => results.push(Some(Err(StoreError::Conflict { what }))),
            Err(error) => {
                rollback(&mut conn).await;
                return Err(error);
            }
            Ok(done) => results.push(Some(Ok(done))),
        }
    }
    let finished = async {
        let list: Vec<&AttemptRecord> = records.iter().map(|(_, record)| *record).collect();
        let recorded = deliveries::record_attempts(&mut conn, &list, &mut batch).await?;
        for ((index, _), was_recorded) in records.iter().zip(recorded) {
            results[*index] = Some(Ok(Done::Recorded(was_recorded)));
        }
        deliveries::apply_health(&mut conn, &batch.health).await?;
        sqlx::query("COMMIT").execute(&mut *conn).await.map_err(backend)?;
        Ok::<(), StoreError>(())
    };
    if let Err(error) = finished.await {
        rollback(&mut conn).await;
        return Err(error);
    }
    Ok(results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(StoreError::Backend("a write was not performed".into()))))
        .collect())
}

async fn rollback(conn: &mut SqliteConnection) {
    if let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::warn!(error = %error, "rollback after a failed write batch failed");
    }
}
