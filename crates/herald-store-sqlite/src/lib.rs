//! Herald's `Store` on embedded SQLite: the zero-setup default backend.
//!
//! One file in the data directory, in WAL mode with `synchronous=FULL`, so an acknowledged
//! write survives power loss. The hot writes (messages, attempt records, leases, idempotency
//! keys) go through one writer thread that commits them in batches (see `writer`); the rarer
//! writes (resources, recovery, retention) through one more connection; reads through a small
//! pool of their own. Every write transaction takes the write lock when it begins (`BEGIN
//! IMMEDIATE` or a single statement), so the two writers wait for each other (busy timeout)
//! and never fail on a lock upgrade. This crate owns every SQL statement for SQLite and
//! nothing else.

mod applications;
mod attempts;
mod cluster;
mod deliveries;
mod endpoints;
mod event_types;
mod messages;
mod rows;
mod sources;
mod stats;
mod tokens;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::delivery::{
    Attempt, AttemptFilter, AttemptRecord, DeliveryId, DeliveryStats, DeliveryStatus, LeaseRequest,
    LeasedDelivery, Message, MessageFilter,
};
use herald_core::id::{AttemptId, MessageId};
use herald_core::store::{EndpointMessage, MessageDestination, MessageKey};

use herald_core::StoreError;
use herald_core::change::{ApplicationChange, EndpointChange, EventTypeChange};
use herald_core::secret::Cipher;
use herald_core::stats::{ApplicationStats, CommitObserver, LaneState, NoObserver, QueueStats};
use herald_core::store::{
    ApplicationKey, EndpointKey, IdempotencyClaim, IdempotencyKey, Page, PageRequest, StoredResponse,
};
use herald_core::store::{AttemptStore, OperationsStore, QueueStore, ResourceStore};
use herald_core::{
    id::{ApplicationId, EndpointId},
    model::{ApiToken, Application, Endpoint, EventType},
    name::EventTypeName,
    token::TokenHash,
};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The embedded migrations, applied on open.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections for concurrent reads; SQLite in WAL mode serves them beside the writer.
const READ_CONNECTIONS: u32 = 4;

/// How long a connection waits for a lock before failing (e.g. a checkpoint in progress).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Herald's store on a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The connection for the rarer writes (resources, recovery, retention, heartbeats).
    writer: SqlitePool,
    /// Read-only connections.
    reader: SqlitePool,
    /// Seals endpoint secrets before they are written.
    cipher: Cipher,
    /// Group commit for the hot writes (messages, attempts, leases), on the writer thread.
    batcher: writer::Writer,
    /// Source of lease ids: starts at the open time in microseconds and counts up, so ids
    /// are unique within this process and larger than any from an earlier run.
    lease_counter: Arc<AtomicI64>,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("could not open the SQLite database at {path}")]
    Connect {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not open the writer's connection to the SQLite database at {path}")]
    Writer {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not create the SQLite database file {path}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not apply the database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Creates an empty database file readable by its owner only, unless it exists. SQLite gives
/// the `-wal` and `-shm` files it creates beside it the database file's permissions, so
/// they are private too; left to SQLite, all three would be world-readable (0644).
fn create_private_database(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path, cipher: Cipher) -> Result<Self, OpenError> {
        Self::open_observed(path, cipher, Arc::new(NoObserver)).await
    }

    /// Like [`SqliteStore::open`], telling `observer` about every group commit (its size and
    /// how long it took), for the metrics.
    pub async fn open_observed(
        path: &Path,
        cipher: Cipher,
        observer: Arc<dyn CommitObserver>,
    ) -> Result<Self, OpenError> {
        create_private_database(path)
            .map_err(|source| OpenError::Create { path: path.display().to_string(), source })?;
        let connect_error = |source| OpenError::Connect { path: path.display().to_string(), source };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(connect_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // No liveness check on acquire: the connections are in-process, and each check is
        // one more round trip to the connection's thread on the hottest path.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(connect_error)?;
        MIGRATOR.run(&writer).await.map_err(OpenError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(connect_error)?;
        let writer_error = |source| OpenError::Writer { path: path.display().to_string(), source };
        let batcher = writer::connect(path, BUSY_TIMEOUT)
            .map_err(std::io::Error::other)
            .and_then(|conn| writer::Writer::start(conn, observer))
            .map_err(writer_error)?;
        let lease_counter = Arc::new(AtomicI64::new(herald_core::clock::system_now().timestamp_micros()));
        Ok(Self { writer, reader, cipher, batcher, lease_counter })
    }

    /// A lease id never handed out before.
    pub(crate) fn next_lease_id(&self) -> i64 {
        self.lease_counter.fetch_add(1, AtomicOrdering::Relaxed)
    }

    /// Makes every leased delivery due again. Only for a process that knows it is the sole
    /// server of this database (Herald holds a lock on the data directory): any lease left
    /// then belongs to a process that died.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE deliveries SET status = 1, lease_id = NULL, lease_expires_at = NULL WHERE status = 3",
        )
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(result.rows_affected())
    }

    /// Closes both pools, waiting for statements in flight.
    pub async fn close(&self) {
        self.batcher.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Maps a driver error to the store's error, recognising uniqueness conflicts by their kind.
pub(crate) fn store_error(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { what },
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// Maps a driver error where no uniqueness rule is involved.
pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[async_trait::async_trait]
impl ResourceStore for SqliteStore {
    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        tokens::insert(self, token).await
    }
    async fn find_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        tokens::find(self, hash).await
    }
    async fn count_organization_tokens(&self) -> Result<u64, StoreError> {
        tokens::count_organization(self).await
    }

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError> {
        applications::insert(self, app).await
    }
    async fn find_application(&self, key: &ApplicationKey) -> Result<Option<Application>, StoreError> {
        applications::find(self, key).await
    }
    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>, StoreError> {
        applications::list(self, page).await
    }
    async fn update_application(
        &self,
        id: &ApplicationId,
        change: &ApplicationChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Application>, StoreError> {
        applications::update(self, id, change, now).await
    }
    async fn delete_application(&self, id: &ApplicationId) -> Result<bool, StoreError> {
        applications::delete(self, id).await
    }

    async fn insert_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        endpoints::insert(self, endpoint).await
    }
    async fn find_endpoint(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
    ) -> Result<Option<Endpoint>, StoreError> {
        endpoints::find(self, app, key).await
    }
    async fn list_endpoints(
        &self,
        app: &ApplicationId,
        page: &PageRequest,
    ) -> Result<Page<Endpoint>, StoreError> {
        endpoints::list(self, app, page).await
    }
    async fn update_endpoint(
        &self,
        app: &ApplicationId,
        id: &EndpointId,
        change: &EndpointChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError> {
        endpoints::update(self, app, id, change, now).await
    }
    async fn delete_endpoint(&self, app: &ApplicationId, id: &EndpointId) -> Result<bool, StoreError> {
        endpoints::delete(self, app, id).await
    }
    async fn seal_clear_url_credentials(&self) -> Result<u64, StoreError> {
        endpoints::seal_clear_url_credentials(self).await
    }
    async fn set_endpoint_consent(
        &self,
        app: &ApplicationId,
        id: &EndpointId,
        state: &herald_core::consent::ConsentState,
        callback: Option<&herald_core::token::TokenHash>,
    ) -> Result<bool, StoreError> {
        endpoints::set_consent(self, app, id, state, callback).await
    }
    async fn grant_endpoint_consent(
        &self,
        callback: &herald_core::token::TokenHash,
        per_minute: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApplicationId, EndpointId)>, StoreError> {
        endpoints::grant_consent(self, callback, per_minute, now).await
    }

    async fn insert_event_type(&self, event_type: &EventType) -> Result<(), StoreError> {
        event_types::insert(self, event_type).await
    }
    async fn find_event_type(&self, name: &EventTypeName) -> Result<Option<EventType>, StoreError> {
        event_types::find(self, name).await
    }
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>, StoreError> {
        event_types::list(self, page, include_archived).await
    }
    async fn update_event_type(
        &self,
        name: &EventTypeName,
        change: &EventTypeChange,
        now: DateTime<Utc>,
    ) -> Result<Option<EventType>, StoreError> {
        event_types::update(self, name, change, now).await
    }
    async fn expunge_event_type(&self, name: &EventTypeName) -> Result<bool, StoreError> {
        event_types::expunge(self, name).await
    }
    async fn unknown_event_types(&self, names: &[EventTypeName]) -> Result<Vec<EventTypeName>, StoreError> {
        event_types::unknown(self, names).await
    }

    async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.batcher.claim_key(key.clone(), now, expires_at).await
    }
    async fn complete_idempotency_key(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.batcher.complete_key(key.clone(), response.clone(), expires_at).await
    }
    async fn release_idempotency_key(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        self.batcher.release_key(key.clone()).await
    }
    async fn list_tokens(&self, page: &PageRequest) -> Result<Page<ApiToken>, StoreError> {
        tokens::list(self, page).await
    }
    async fn delete_token(&self, id: &herald_core::id::TokenId) -> Result<bool, StoreError> {
        tokens::delete(self, id).await
    }
    async fn expire_application_tokens(
        &self,
        app: &ApplicationId,
        sessions: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        tokens::expire_application(self, app, sessions, at).await
    }
}

#[async_trait::async_trait]
impl QueueStore for SqliteStore {
    async fn insert_message(&self, message: &Message) -> Result<Vec<EndpointId>, StoreError> {
        self.batcher.insert_message(message.clone()).await
    }
    async fn insert_message_for_endpoint(
        &self,
        message: &Message,
        endpoint: &EndpointId,
    ) -> Result<(), StoreError> {
        messages::insert_for_endpoint(self, message, endpoint).await
    }
    async fn find_message(
        &self,
        app: &ApplicationId,
        key: &MessageKey,
    ) -> Result<Option<Message>, StoreError> {
        messages::find(self, app, key).await
    }
    async fn list_messages(
        &self,
        app: &ApplicationId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        messages::list(self, app, filter, page).await
    }
    async fn expunge_message_payload(&self, app: &ApplicationId, id: &MessageId) -> Result<bool, StoreError> {
        messages::expunge_payload(self, app, id).await
    }

    async fn lease_deliveries(&self, request: &LeaseRequest) -> Result<Vec<LeasedDelivery>, StoreError> {
        self.batcher.lease(request.clone(), self.next_lease_id()).await
    }
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        deliveries::next_due_at(self).await
    }
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<bool, StoreError> {
        self.batcher.record_attempt(record.clone()).await
    }
    async fn release_lease(
        &self,
        delivery: DeliveryId,
        lease_id: i64,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.batcher.release(delivery, lease_id, due).await
    }
    async fn create_manual_delivery(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        deliveries::create_manual(self, app, msg, endpoint, now).await
    }
    async fn recover_failed(
        &self,
        endpoint: &EndpointId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        deliveries::recover_failed(self, endpoint, since, until, now).await
    }
}

#[async_trait::async_trait]
impl AttemptStore for SqliteStore {
    async fn ordered_lanes(&self, endpoint: &EndpointId, limit: u32) -> Result<Vec<LaneState>, StoreError> {
        stats::lanes(self, endpoint, limit).await
    }
    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DeliveryStats, StoreError> {
        deliveries::stats(self, endpoint, since, until).await
    }

    async fn find_attempt(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>, StoreError> {
        attempts::find(self, app, msg, id).await
    }
    async fn list_attempts_by_endpoint(
        &self,
        app: &ApplicationId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        attempts::list_by_endpoint(self, app, endpoint, filter, page).await
    }
    async fn list_attempts_by_message(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        endpoint: Option<&EndpointId>,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        attempts::list_by_message(self, app, msg, endpoint, filter, page).await
    }
    async fn expunge_attempt_response(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<bool, StoreError> {
        attempts::expunge_response(self, app, msg, id).await
    }
    async fn list_endpoint_messages(
        &self,
        app: &ApplicationId,
        endpoint: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<EndpointMessage>, StoreError> {
        attempts::endpoint_messages(self, app, endpoint, filter, status, page).await
    }
    async fn list_message_destinations(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<MessageDestination>, StoreError> {
        attempts::message_destinations(self, app, msg, page).await
    }
}

#[async_trait::async_trait]
impl OperationsStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // Reachable means both: reads answer, and the writer thread is there to take writes.
        self.batcher.check_running()?;
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(backend)?;
        Ok(())
    }
    async fn expire_payloads(&self, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        messages::expire_payloads(self, now, limit).await
    }

    async fn delete_messages_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        messages::delete_before(self, before, limit).await
    }

    async fn delete_attempts_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        stats::delete_attempts_before(self, before, limit).await
    }
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
        stats::queue(self, now).await
    }
    async fn application_stats(
        &self,
        app: &ApplicationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<ApplicationStats, StoreError> {
        stats::application(self, app, since, until).await
    }
    async fn disable_failing_endpoints(
        &self,
        failing_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(ApplicationId, EndpointId)>, StoreError> {
        deliveries::disable_failing(self, failing_since, now).await
    }

    async fn heartbeat(
        &self,
        node: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        cluster::heartbeat(self, node, now, expires_at).await
    }
    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        cluster::leave(self, node).await
    }
    async fn open_circuit(&self, endpoint: &EndpointId, until: DateTime<Utc>) -> Result<(), StoreError> {
        cluster::open_circuit(self, endpoint, until).await
    }
    async fn circuit_open_until(
        &self,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        cluster::circuit_open_until(self, endpoint, now).await
    }

    async fn resume_interrupted(&self) -> Result<u64, StoreError> {
        // This process is the only one serving from this database (the data directory's lock),
        // so any lease still held belongs to a process that died.
        self.release_all_leases().await
    }
    async fn close(&self) {
        SqliteStore::close(self).await;
    }
    async fn delete_expired_tokens(&self, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        tokens::delete_expired(self, now, limit).await
    }
}
