//! Group commit on a thread of its own: the hot writes (new messages, attempt records, leases,
//! idempotency keys) from many tasks are queued to one writer thread, which owns a SQLite
//! connection and runs everything waiting in a single transaction with one fsync.
//!
//! The thread calls SQLite directly (rusqlite) and runs a whole batch without leaving it:
//! an async driver hands every statement and every returned row to its connection's thread and
//! back, and on the hot path those hand-offs, not SQLite, were the writer's cost.
//!
//! Under load a commit carries hundreds of writes, so durable commits (`synchronous=FULL`) cost
//! little per message; when idle a write commits alone at once. A job refused for a conflict (a
//! duplicate `eventId`) fails alone; work the jobs of a batch share (reading an application's
//! endpoints, updating endpoint health) is done once per batch.

mod attempts;
mod keys;
mod lanes;
mod lease;

pub(crate) use lanes::{LANE_SCAN, heads_cte};
mod messages;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{
    AttemptRecord, DeliveryId, HealthRun, LeaseRequest, LeasedDelivery, Message, Subscription,
};
use herald_core::id::EndpointId;
use herald_core::stats::CommitObserver;
use herald_core::store::{IdempotencyClaim, IdempotencyKey, StoredResponse};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// The most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer; senders wait when it is full (back-pressure).
const QUEUE_CAPACITY: usize = 4096;
/// Prepared statements the writer keeps (a few fixed ones plus the lease's variants).
const STATEMENT_CACHE: usize = 64;

/// Where a job's result goes.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write to perform, with where to send its result.
enum Job {
    InsertMessage(Message, Reply<Vec<EndpointId>>),
    RecordAttempt(AttemptRecord, Reply<bool>),
    Lease {
        request: LeaseRequest,
        lease_id: i64,
        reply: Reply<Vec<LeasedDelivery>>,
    },
    Release {
        delivery: DeliveryId,
        lease_id: i64,
        due: DateTime<Utc>,
        reply: Reply<bool>,
    },
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
    /// Finish what came before, then stop the thread.
    Close(oneshot::Sender<()>),
}

/// The result of one job, before it is sent back.
enum Done {
    Endpoints(Vec<EndpointId>),
    Flag(bool),
    Leased(Vec<LeasedDelivery>),
    Claim(IdempotencyClaim),
    Unit,
}

/// Handle for queueing jobs to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

/// Opens the writer's own connection to the database at `path` (already created and migrated).
pub(crate) fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    // An 8 MiB page cache (SQLite's default is 2 MiB) holds the pages the hot statements
    // touch in every batch (the insertion points of each table and index) as the database
    // grows; with 2 MiB a 100,000-message run slowed as it went (BENCHMARKS.md).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -8192;",
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Writer {
    /// Starts the writer thread, which owns `conn` until every handle is dropped or
    /// [`Writer::close`] is called; `observer` is told the size and duration of every batch.
    pub(crate) fn start(conn: Connection, observer: Arc<dyn CommitObserver>) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("herald-sqlite-writer".into())
            .spawn(move || run(conn, receiver, observer))?;
        Ok(Self { queue })
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

    pub(crate) async fn lease(
        &self,
        request: LeaseRequest,
        lease_id: i64,
    ) -> Result<Vec<LeasedDelivery>, StoreError> {
        self.submit(|reply| Job::Lease { request, lease_id, reply }).await
    }

    pub(crate) async fn release(
        &self,
        delivery: DeliveryId,
        lease_id: i64,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.submit(|reply| Job::Release { delivery, lease_id, due, reply }).await
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

    /// Fails when the writer thread has stopped (closed, or ended by a panic), so health
    /// checks see a store that can no longer take writes.
    pub(crate) fn check_running(&self) -> Result<(), StoreError> {
        if self.queue.is_closed() { Err(closed()) } else { Ok(()) }
    }

    /// Waits for the jobs queued so far, then stops the thread and closes its connection.
    pub(crate) async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.queue.send(Job::Close(done)).await.is_ok() {
            drop(stopped.await);
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the database writer has stopped".into())
}

/// Maps a SQLite error where no uniqueness rule is involved.
pub(crate) fn sql_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// Maps a SQLite error, recognising uniqueness conflicts by their extended code.
fn conflict_or(error: rusqlite::Error, what: &'static str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict { what }
        }
        _ => sql_error(error),
    }
}

fn run(conn: Connection, mut receiver: mpsc::Receiver<Job>, observer: Arc<dyn CommitObserver>) {
    // The connection opens with `synchronous = FULL`; see `Durability`.
    let mut synchronous = Durability::Full;
    // Where the next lease's search for ordered lanes' heads starts.
    let mut cursor = lanes::LaneCursor::default();
    while let Some(first) = receiver.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A close request ends the thread after the jobs queued before it.
        let close = jobs.iter().position(|job| matches!(job, Job::Close(_)));
        let after_close = close.map(|at| jobs.split_off(at)).unwrap_or_default();
        if !jobs.is_empty() {
            let started = Instant::now();
            let committed = set_durability(&conn, &mut synchronous, Durability::needed_by(&jobs))
                .and_then(|()| commit_batch(&conn, &jobs, &mut cursor));
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
        if let Some(Job::Close(done)) = after_close.into_iter().next() {
            // Jobs queued after the close get "the writer has stopped" when they are dropped.
            receiver.close();
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

/// How a batch is committed.
///
/// Leases and their releases need not survive a power failure: on SQLite a restart releases
/// every lease (the data-directory lock proves their holder is gone), so a lost lease changes
/// nothing. A batch of only those is committed without waiting for the disk (`synchronous =
/// NORMAL`: written to the WAL, flushed by the next durable commit or checkpoint, never
/// corrupt). Everything else waits for it (`FULL`): an accepted message, an attempt record and
/// an idempotency key must survive anything. The WAL is written in order, so a durable commit
/// also makes every earlier lease durable: a lease can't be lost while a later record stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Full,
    Normal,
}

impl Durability {
    fn needed_by(jobs: &[Job]) -> Self {
        let only_leases =
            jobs.iter().all(|job| matches!(job, Job::Lease { .. } | Job::Release { .. } | Job::Close(_)));
        if only_leases { Durability::Normal } else { Durability::Full }
    }
}

/// Switches the connection's `synchronous` setting (outside a transaction) when it differs.
fn set_durability(conn: &Connection, current: &mut Durability, wanted: Durability) -> Result<(), StoreError> {
    if *current != wanted {
        let pragma = match wanted {
            Durability::Full => "PRAGMA synchronous = FULL",
            Durability::Normal => "PRAGMA synchronous = NORMAL",
        };
        conn.execute_batch(pragma).map_err(sql_error)?;
        *current = wanted;
    }
    Ok(())
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
        (Job::RecordAttempt(_, r) | Job::Release { reply: r, .. }, Ok(Done::Flag(v))) => send(r, Ok(v)),
        (Job::Lease { reply: r, .. }, Ok(Done::Leased(v))) => send(r, Ok(v)),
        (Job::ClaimKey { reply: r, .. }, Ok(Done::Claim(v))) => send(r, Ok(v)),
        (Job::CompleteKey { reply: r, .. } | Job::ReleaseKey(_, r), Ok(Done::Unit)) => send(r, Ok(())),
        (Job::InsertMessage(_, r), result) => send(r, result.and_then(mismatch)),
        (Job::RecordAttempt(_, r) | Job::Release { reply: r, .. }, result) => {
            send(r, result.and_then(mismatch))
        }
        (Job::Lease { reply: r, .. }, result) => send(r, result.and_then(mismatch)),
        (Job::ClaimKey { reply: r, .. }, result) => send(r, result.and_then(mismatch)),
        (Job::CompleteKey { reply: r, .. } | Job::ReleaseKey(_, r), result) => {
            send(r, result.and_then(mismatch))
        }
        (Job::Close(done), _) => {
            let _ = done.send(());
        }
    }
}

/// What the jobs of one batch share, so work repeated across them is done once per batch.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Each application's enabled endpoints, read once per batch (no other connection can
    /// change endpoints while the batch's transaction holds the write lock).
    subscriptions: HashMap<String, Vec<Subscription>>,
    /// How the batch's attempts leave each endpoint's health, applied once at the end.
    health: HashMap<String, HealthRun>,
}

/// Which pass of a batch a job belongs to: new work first, then attempt records (which free
/// deliveries), then leases (which then see both).
fn pass(job: &Job) -> u8 {
    match job {
        Job::RecordAttempt(..) | Job::Release { .. } => 1,
        Job::Lease { .. } => 2,
        _ => 0,
    }
}

/// Performs one job inside the batch transaction.
fn perform(
    conn: &Connection,
    job: &Job,
    batch: &mut Batch,
    cursor: &mut lanes::LaneCursor,
) -> Result<Done, StoreError> {
    match job {
        Job::InsertMessage(message, _) => messages::insert(conn, message, batch).map(Done::Endpoints),
        Job::RecordAttempt(record, _) => attempts::record(conn, record, batch).map(Done::Flag),
        Job::Release { delivery, lease_id, due, .. } => {
            lease::release(conn, *delivery, *lease_id, *due).map(Done::Flag)
        }
        Job::Lease { request, lease_id, .. } => {
            lease::lease(conn, request, *lease_id, cursor).map(Done::Leased)
        }
        Job::ClaimKey { key, now, expires_at, .. } => {
            keys::claim(conn, key, *now, *expires_at).map(Done::Claim)
        }
        Job::CompleteKey { key, response, expires_at, .. } => {
            keys::complete(conn, key, response, *expires_at).map(|()| Done::Unit)
        }
        Job::ReleaseKey(key, _) => keys::release(conn, key).map(|()| Done::Unit),
        Job::Close(_) => Ok(Done::Unit),
    }
}

/// Runs the jobs in one transaction. A job that fails with a conflict (a duplicate `eventId`)
/// or a message whose application is missing fails alone: its insert is its first statement,
/// and SQLite undoes just that statement. Any other error fails the whole batch, so no job is
/// ever half written.
fn commit_batch(
    conn: &Connection,
    jobs: &[Job],
    cursor: &mut lanes::LaneCursor,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error)?;
    let mut batch = Batch::default();
    let mut results: Vec<Option<Result<Done, StoreError>>> = jobs.iter().map(|_| None).collect();
    let outcome = (|| {
        for stage in 0..3 {
            for (index, job) in jobs.iter().enumerate().filter(|(_, job)| pass(job) == stage) {
                results[index] = Some(match perform(conn, job, &mut batch, cursor) {
                    Err(StoreError::Conflict { what }) => Err(StoreError::Conflict { what }),
                    // A message's missing application: refused by its first statement too.
                    Err(StoreError::NotFound) if matches!(job, Job::InsertMessage(..)) => {
                        Err(StoreError::NotFound)
                    }
                    Err(error) => return Err(error),
                    Ok(done) => Ok(done),
                });
            }
            if stage == 1 {
                attempts::apply_health(conn, &batch.health)?;
            }
        }
        conn.execute_batch("COMMIT").map_err(sql_error)
    })();
    if let Err(error) = outcome {
        if let Err(rollback) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %rollback, "rollback after a failed write batch failed");
        }
        return Err(error);
    }
    Ok(results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(StoreError::Backend("a write was not performed".into()))))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lease() -> Job {
        let now = Utc::now();
        let request = LeaseRequest { now, limit: 1, per_endpoint: 1, exclude: Vec::new(), lease_until: now };
        Job::Lease { request, lease_id: 1, reply: oneshot::channel().0 }
    }

    fn release() -> Job {
        Job::Release { delivery: 1, lease_id: 1, due: Utc::now(), reply: oneshot::channel().0 }
    }

    #[test]
    fn only_batches_of_leases_and_releases_skip_waiting_for_the_disk() {
        assert_eq!(Durability::needed_by(&[lease(), release(), lease()]), Durability::Normal);
        let key = IdempotencyKey("k".to_owned());
        let mixed = [lease(), Job::ReleaseKey(key, oneshot::channel().0)];
        assert_eq!(Durability::needed_by(&mixed), Durability::Full, "an idempotency key must be durable");
    }

    #[test]
    fn the_setting_follows_the_batch_and_is_only_sent_when_it_changes() {
        let conn = Connection::open_in_memory().unwrap();
        let read =
            |conn: &Connection| conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0)).unwrap();
        conn.execute_batch("PRAGMA synchronous = FULL").unwrap();
        let mut current = Durability::Full;
        set_durability(&conn, &mut current, Durability::Normal).unwrap();
        assert_eq!((current, read(&conn)), (Durability::Normal, 1));
        set_durability(&conn, &mut current, Durability::Full).unwrap();
        assert_eq!((current, read(&conn)), (Durability::Full, 2));
    }
}
