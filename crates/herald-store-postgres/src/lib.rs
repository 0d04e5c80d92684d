//! Herald's `Store` on PostgreSQL: one database shared by several Herald nodes.
//!
//! Every node holds a pool of connections to the same database. Nothing is coordinated in
//! memory: the delivery queue is leased with `FOR NO KEY UPDATE SKIP LOCKED`, so two nodes
//! never lease the same delivery, and each lease carries an id drawn from a database sequence,
//! the fencing token that stops a stalled node from recording over a newer lease. Leases are
//! never released wholesale on start (other nodes may hold them); they expire instead.
//!
//! This crate owns every SQL statement for PostgreSQL and nothing else: it opens no listener
//! and sends no HTTP. It does announce new work with `NOTIFY` on [`NEW_WORK_CHANNEL`], for the
//! server to `LISTEN` on through [`PostgresStore::pool`].

mod applications;
mod attempts;
mod cluster;
mod deliveries;
mod endpoints;
mod errors;
mod event_types;
mod intake;
mod lease;
mod messages;
mod records;
mod rows;
pub mod scratch;
mod sources;
mod stats;
mod tokens;

pub use errors::retry_transient;
pub(crate) use errors::{backend, store_error};

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::{ApplicationChange, EndpointChange, EventTypeChange};
use herald_core::delivery::{
    Attempt, AttemptFilter, AttemptRecord, DeliveryId, DeliveryStats, DeliveryStatus, LeaseRequest,
    LeasedDelivery, Message, MessageFilter,
};
use herald_core::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use herald_core::model::{ApiToken, Application, Endpoint, EventType};
use herald_core::name::EventTypeName;
use herald_core::secret::Cipher;
use herald_core::stats::{ApplicationStats, LaneState, QueueStats};
use herald_core::store::{
    ApplicationKey, EndpointKey, EndpointMessage, IdempotencyClaim, IdempotencyKey, MessageDestination,
    MessageKey, Page, PageRequest, StoredResponse,
};
use herald_core::store::{AttemptStore, OperationsStore, QueueStore, ResourceStore};
use herald_core::token::TokenHash;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The channel a committed transaction that queued new deliveries notifies, with the name of
/// its schema as the payload, so that other nodes can wake their dispatchers instead of
/// waiting for their next poll. Notifications are sent by the database on commit, never for a
/// rolled-back write; identical notifications of one transaction are folded into one.
/// Channels are per database: a node wakes only for its own schema's notifications (and for
/// an empty payload, which nodes of earlier versions sent), so deployments in two schemas of
/// one database do not wake each other. A notification is a hint only; a node must still
/// poll, since one that was not listening at the moment misses it.
pub const NEW_WORK_CHANNEL: &str = "herald_deliveries";

/// The embedded migrations, applied on open.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How the connection pool is sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most connections this node opens. Every node has its own pool, so the database must
    /// accept `nodes × max_connections` (PostgreSQL's default `max_connections` is 100).
    pub max_connections: u32,
    /// How long a store call waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(10) }
    }
}

/// Herald's store on a PostgreSQL database (or one schema of it, through `search_path`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Connections for every statement; each call takes one for a statement or a short
    /// transaction and gives it back.
    pool: PgPool,
    /// The delivery queue's hot statements: message intake, leases and attempt records
    /// ([`queue_pool_options`]).
    queue: PgPool,
    /// Seals endpoint secrets before they are written, opens them when read.
    cipher: Cipher,
    /// Attempt records, settled in shared transactions.
    records: records::Records,
    /// Accepted messages, written in shared transactions (group commit).
    intake: intake::Intake,
    /// Where this node's next search for ordered lanes' heads starts.
    lanes: lease::LaneCursor,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL does not parse as a PostgreSQL connection URL.
    #[error("invalid PostgreSQL URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The server did not answer or refused us. `server` is `host:port/database`, without
    /// the user's password.
    #[error("could not connect to PostgreSQL at {server}")]
    Connect {
        server: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not apply the database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?options`) with the
    /// default pool and applies pending migrations.
    pub async fn open(url: &str, cipher: Cipher) -> Result<Self, OpenError> {
        Self::open_url(url, PoolSettings::default(), cipher).await
    }

    /// Connects to `url` with the given pool settings and applies pending migrations.
    pub async fn open_url(url: &str, pool: PoolSettings, cipher: Cipher) -> Result<Self, OpenError> {
        let options = PgConnectOptions::from_str(url).map_err(OpenError::InvalidUrl)?;
        Self::open_with(options, pool, cipher).await
    }

    /// Connects with explicit options (e.g. a `search_path` through
    /// [`PgConnectOptions::options`]) and pool settings, and applies pending migrations.
    pub async fn open_with(
        options: PgConnectOptions,
        pool: PoolSettings,
        cipher: Cipher,
    ) -> Result<Self, OpenError> {
        let server = describe(&options);
        let connect_error = |source| OpenError::Connect { server: server.clone(), source };
        // Several nodes may start at once. sqlx's migrator takes a session-level advisory
        // lock on PostgreSQL (`pg_advisory_lock`, keyed by the database name) before it reads
        // `_sqlx_migrations`, so one node migrates and the others wait, then find nothing left
        // to do. The migrations run on a one-connection pool of their own that is closed
        // afterwards: should a migration fail, sqlx returns before unlocking, and only ending
        // the session is certain to free the lock (a connection kept in the main pool would
        // go on holding it).
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(connect_error)?;
        let migrated = MIGRATOR.run(&migrating).await;
        migrating.close().await;
        migrated.map_err(OpenError::Migrate)?;

        let queue = PgPoolOptions::new()
            .max_connections(QUEUE_CONNECTIONS)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(queue_pool_options(options.clone()))
            .await
            .map_err(connect_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool.max_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        let records = records::Records::start(queue.clone());
        let intake = intake::Intake::start(queue.clone());
        Ok(Self { pool, queue, cipher, records, intake, lanes: lease::LaneCursor::default() })
    }

    /// Calls `on_work` whenever a transaction that queued deliveries commits, on any node,
    /// until the future is dropped. The listener reconnects by itself after a lost connection;
    /// notifications sent meanwhile are missed, which the dispatcher's polling covers.
    pub async fn listen_for_new_work(&self, mut on_work: impl FnMut() + Send) -> Result<(), sqlx::Error> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&self.pool).await?;
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(NEW_WORK_CHANNEL).await?;
        loop {
            let notification = listener.recv().await?;
            if notification.payload().is_empty() || notification.payload() == schema {
                on_work();
            }
        }
    }

    /// The connection pool, e.g. for a `PgListener` on [`NEW_WORK_CHANNEL`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pools, waiting for statements in flight.
    pub async fn close(&self) {
        self.pool.close().await;
        self.queue.close().await;
    }
}

/// Connections of the queue's own pool: the intake task, the records task and the
/// dispatcher's leases each use one at a time.
pub const QUEUE_CONNECTIONS: u32 = 4;

/// The queue's connections plan each statement once (`plan_cache_mode =
/// force_generic_plan`). Its statements are prepared, but PostgreSQL would otherwise plan
/// them again for every call with its parameters (a custom plan), since a generic plan of a
/// statement over parameter arrays and `LIMIT $n` looks no cheaper to it: planning the lease
/// statement cost as much as running it (BENCHMARKS.md, 2026-12-07). Their plans do not
/// depend on the values: index scans in due order, rows by primary key.
fn queue_pool_options(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_generic_plan")])
}

/// `host:port/database`, for messages: never the password.
fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    )
}

#[async_trait::async_trait]
impl ResourceStore for PostgresStore {
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
        retry_transient(|| applications::delete(self, id)).await
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
        retry_transient(|| endpoints::delete(self, app, id)).await
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
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        tokens::claim_idempotency_key(self, key, now, expires_at).await
    }
    async fn complete_idempotency_key(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tokens::complete_idempotency_key(self, key, response, expires_at).await
    }
    async fn release_idempotency_key(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        tokens::release_idempotency_key(self, key).await
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
        retry_transient(|| tokens::expire_application(self, app, sessions, at)).await
    }
}

#[async_trait::async_trait]
impl QueueStore for PostgresStore {
    async fn insert_message(&self, message: &Message) -> Result<Vec<EndpointId>, StoreError> {
        self.intake.insert(message.clone()).await
    }
    async fn insert_message_for_endpoint(
        &self,
        message: &Message,
        endpoint: &EndpointId,
    ) -> Result<(), StoreError> {
        messages::insert_for_endpoint(&self.pool, message, endpoint).await
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
        lease::lease(self, request).await
    }
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        lease::next_due_at(self).await
    }
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<bool, StoreError> {
        self.records.record(record.clone()).await
    }
    async fn release_lease(
        &self,
        delivery: DeliveryId,
        lease_id: i64,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        lease::release(self, delivery, lease_id, due).await
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
impl AttemptStore for PostgresStore {
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
impl OperationsStore for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
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

    async fn listen_for_new_work(&self, on_work: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        PostgresStore::listen_for_new_work(self, on_work).await.map_err(backend)
    }
    async fn close(&self) {
        PostgresStore::close(self).await;
    }
    async fn delete_expired_tokens(&self, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        tokens::delete_expired(self, now, limit).await
    }
}
