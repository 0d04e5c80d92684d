//! The `Store` trait: everything Herald persists, behind one interface per backend.
//!
//! The API layer and the worker talk only to this trait; SQLite and PostgreSQL implement it in
//! their own crates, and [`crate::conformance`] holds the behaviour both must share.

use chrono::{DateTime, Utc};

use crate::change::{ApplicationChange, EndpointChange, EventTypeChange};
use crate::consent::ConsentState;
use crate::delivery::{
    Attempt, AttemptFilter, AttemptRecord, DeliveryId, DeliveryStats, DeliveryStatus, LeaseRequest,
    LeasedDelivery, Message, MessageFilter,
};
use crate::id::{ApplicationId, AttemptId, EndpointId, MessageId, TokenId};
use crate::ingest::{Refusal, Source, SourceChange};
use crate::model::{ApiToken, Application, Endpoint, EventType};
use crate::name::EventId;
use crate::name::{EventTypeName, Uid};
use crate::stats::{ApplicationStats, LaneState, QueueStats};
use crate::token::TokenHash;

/// The largest page a list may return, as in the Svix API.
pub const MAX_PAGE_LIMIT: u16 = 250;
/// The page size when the caller gives none.
pub const DEFAULT_PAGE_LIMIT: u16 = 50;

/// Why a store operation failed. A missing row is not an error: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken: `what` names it (e.g. "uid", "name").
    #[error("conflict: an item with this {what} already exists")]
    Conflict { what: &'static str },
    /// The row to update or delete does not exist (any more).
    #[error("the item no longer exists")]
    NotFound,
    /// Stored data could not be read back (e.g. a secret that does not decrypt).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Lists are ordered by the resource's key (its time-sortable id, or an event type's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    #[default]
    Ascending,
    Descending,
}

/// One page of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page, 1 to [`MAX_PAGE_LIMIT`].
    pub limit: u16,
    /// Continue after this key (exclusive), in the requested order.
    pub after: Option<String>,
    /// Page backwards: return the items just *before* this key instead.
    pub before: Option<String>,
    pub order: Ordering,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { limit: DEFAULT_PAGE_LIMIT, after: None, before: None, order: Ordering::Ascending }
    }
}

/// A page of items in the requested order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether more items lie beyond this page in the direction it was read.
    pub has_more: bool,
}

/// How a caller names an application or endpoint: by id, or by its `uid` alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<Id> {
    Id(Id),
    Uid(Uid),
}

/// An application named by id or uid.
pub type ApplicationKey = Key<ApplicationId>;
/// An endpoint named by id or uid.
pub type EndpointKey = Key<EndpointId>;

/// How a caller names a message: by id, or by the `eventId` it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKey {
    Id(MessageId),
    EventId(EventId),
}

/// A message with its delivery state at one endpoint (attempted messages of an endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointMessage {
    pub message: Message,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An endpoint with the delivery state of one message there (attempted destinations).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDestination {
    pub endpoint: Endpoint,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Identifies one idempotent request: a hash of the key, the caller's token and the route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(pub String);

/// A response kept so that a retried request gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The result of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new (or its earlier use expired): run the request.
    Claimed,
    /// A request with this key is running now.
    InProgress,
    /// A request with this key already succeeded: replay its response.
    Completed(StoredResponse),
}

/// The resources people manage through the API: API tokens, applications, endpoints, event
/// types, and idempotency keys.
#[async_trait::async_trait]
pub trait ResourceStore: Send + Sync + std::fmt::Debug + 'static {
    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError>;
    async fn find_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;
    async fn count_organization_tokens(&self) -> Result<u64, StoreError>;

    /// Fails with `Conflict { what: "uid" }` when the uid is taken.
    async fn insert_application(&self, app: &Application) -> Result<(), StoreError>;
    async fn find_application(&self, key: &ApplicationKey) -> Result<Option<Application>, StoreError>;
    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>, StoreError>;
    /// Applies `change` to the application as it is at that moment, atomically (the row
    /// locked while it is read, changed and written), and returns it changed; `None` if it does
    /// not exist. Fails with `Conflict { what: "uid" }` when the new uid is taken.
    async fn update_application(
        &self,
        id: &ApplicationId,
        change: &ApplicationChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Application>, StoreError>;
    /// Deletes the application and everything that belongs to it; false if it did not exist.
    async fn delete_application(&self, id: &ApplicationId) -> Result<bool, StoreError>;

    /// Fails with `Conflict { what: "uid" }` when the uid is taken within the application.
    async fn insert_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError>;
    async fn find_endpoint(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
    ) -> Result<Option<Endpoint>, StoreError>;
    async fn list_endpoints(
        &self,
        app: &ApplicationId,
        page: &PageRequest,
    ) -> Result<Page<Endpoint>, StoreError>;
    /// Applies `change` to the endpoint as it is at that moment, atomically (the row locked
    /// while it is read, changed and written), and returns it changed; `None` if it does not
    /// exist. Fields the change does not name are never written back, so concurrent changes
    /// of different fields (a PATCH, a key rotation, a `410 Gone` disabling it) all land.
    /// Fails with `Conflict { what: "uid" }` when the new uid is taken.
    async fn update_endpoint(
        &self,
        app: &ApplicationId,
        id: &EndpointId,
        change: &EndpointChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError>;
    async fn delete_endpoint(&self, app: &ApplicationId, id: &EndpointId) -> Result<bool, StoreError>;
    /// Seals the credentials of endpoint URLs an earlier version stored in clear (a URL column
    /// holding `user:pass@`): each such endpoint's URL is rewritten without them and its sealed
    /// secrets with them, nothing else (not `updated_at`), only if the row still holds the URL
    /// as read. Returns how many endpoints it sealed; 0 once none is left.
    async fn seal_clear_url_credentials(&self) -> Result<u64, StoreError>;
    /// Records what the endpoint answered when asked for consent (one statement writing only
    /// the consent columns): `callback` is the hash of the token that can still grant a pending
    /// consent (`None` removes any earlier one). False if the endpoint does not exist.
    async fn set_endpoint_consent(
        &self,
        app: &ApplicationId,
        id: &EndpointId,
        state: &ConsentState,
        callback: Option<&TokenHash>,
    ) -> Result<bool, StoreError>;
    /// Grants the pending consent whose callback token hashes to `callback`, if it has not
    /// expired at `now`, allowing `per_minute` requests a minute (`None`: no limit of its own);
    /// the token is spent. Returns the endpoint, or `None` when no pending consent has that token.
    async fn grant_endpoint_consent(
        &self,
        callback: &TokenHash,
        per_minute: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApplicationId, EndpointId)>, StoreError>;

    /// Fails with `Conflict { what: "name" }` when the name exists (archived or not).
    async fn insert_event_type(&self, event_type: &EventType) -> Result<(), StoreError>;
    async fn find_event_type(&self, name: &EventTypeName) -> Result<Option<EventType>, StoreError>;
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>, StoreError>;
    /// Applies `change` to the event type as it is at that moment, atomically, and returns it
    /// changed; `None` if it does not exist. Fails with `Conflict { what: "name" }` when the
    /// change's precondition (`only_if_archived`) does not hold.
    async fn update_event_type(
        &self,
        name: &EventTypeName,
        change: &EventTypeChange,
        now: DateTime<Utc>,
    ) -> Result<Option<EventType>, StoreError>;
    /// Removes the event type for good; false if it did not exist.
    async fn expunge_event_type(&self, name: &EventTypeName) -> Result<bool, StoreError>;
    /// The names among `names` that are not registered event types (archived ones count as
    /// registered), in the order given.
    async fn unknown_event_types(&self, names: &[EventTypeName]) -> Result<Vec<EventTypeName>, StoreError>;

    /// Claims `key` until `expires_at`, unless an unexpired claim exists. The claim's expiry
    /// bounds how long a request that never finishes (a crash) blocks its key.
    async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Records the response of a claimed key's successful request, kept until `expires_at`.
    async fn complete_idempotency_key(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Releases a claim whose request did not succeed, so it can be retried.
    async fn release_idempotency_key(&self, key: &IdempotencyKey) -> Result<(), StoreError>;

    /// Every API token (organisation and application ones, expired ones until they are
    /// purged), paged by id. Only hashes are stored, so no value can be listed.
    async fn list_tokens(&self, page: &PageRequest) -> Result<Page<ApiToken>, StoreError>;
    /// Deletes (revokes) a token; false if it did not exist.
    async fn delete_token(&self, id: &TokenId) -> Result<bool, StoreError>;
    /// Makes the application's tokens expire at `at` (one statement; a token already expiring
    /// sooner keeps its expiry), only those of the given sessions when `sessions` is `Some`.
    /// Returns how many tokens it changed.
    async fn expire_application_tokens(
        &self,
        app: &ApplicationId,
        sessions: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Messages and the delivery queue: accepting a message with its deliveries, leasing what is
/// due, recording attempts (fenced by the lease), manual deliveries.
#[async_trait::async_trait]
pub trait QueueStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the message and one pending delivery per matching enabled endpoint of its
    /// application, in one transaction, and returns those endpoints. Fails with
    /// `Conflict { what: "eventId" }` when the application already has a message with the
    /// same `event_id`, and with `NotFound` when there is no such application (callers may
    /// skip looking it up first), storing nothing either way.
    async fn insert_message(&self, message: &Message) -> Result<Vec<EndpointId>, StoreError>;
    /// Stores the message with one pending delivery, to `endpoint` only (an example sent to
    /// test one receiver), in one transaction, whatever the endpoint's filters say. Fails with
    /// `NotFound` (storing nothing) when the application has no such endpoint.
    async fn insert_message_for_endpoint(
        &self,
        message: &Message,
        endpoint: &EndpointId,
    ) -> Result<(), StoreError>;
    async fn find_message(
        &self,
        app: &ApplicationId,
        key: &MessageKey,
    ) -> Result<Option<Message>, StoreError>;
    /// Newest first by default.
    async fn list_messages(
        &self,
        app: &ApplicationId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;
    /// Removes a message's payload; false if the message does not exist.
    async fn expunge_message_payload(&self, app: &ApplicationId, id: &MessageId) -> Result<bool, StoreError>;

    /// Leases due deliveries (pending ones whose time has come, and leased ones whose lease
    /// expired), oldest first.
    async fn lease_deliveries(&self, request: &LeaseRequest) -> Result<Vec<LeasedDelivery>, StoreError>;
    /// When the next pending delivery becomes due, if any.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Records an attempt and moves its delivery on, only if `lease_id` is still the
    /// delivery's lease; returns false (and records nothing) for a stale lease.
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<bool, StoreError>;
    /// Gives a leased delivery back without an attempt (shutdown, or its endpoint's circuit
    /// is open), due again at `due`; false for a stale lease.
    async fn release_lease(
        &self,
        delivery: DeliveryId,
        lease_id: i64,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Queues one manual attempt of a message to an endpoint, due now.
    async fn create_manual_delivery(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Queues a manual attempt for every message whose delivery to the endpoint failed and
    /// that was created in `[since, until)`; returns how many.
    async fn recover_failed(
        &self,
        endpoint: &EndpointId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// The attempt log and the delivery views read from it.
#[async_trait::async_trait]
pub trait AttemptStore: Send + Sync + std::fmt::Debug + 'static {
    /// The endpoint's ordered lanes that have work (a head not yet delivered or given up, or
    /// held), the longest-waiting first, at most `limit`.
    async fn ordered_lanes(&self, endpoint: &EndpointId, limit: u32) -> Result<Vec<LaneState>, StoreError>;

    /// Counts the endpoint's deliveries by status, for messages created in `[since, until)`.
    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DeliveryStats, StoreError>;

    async fn find_attempt(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>, StoreError>;
    /// Newest first by default.
    async fn list_attempts_by_endpoint(
        &self,
        app: &ApplicationId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError>;
    /// Newest first by default; `endpoint` narrows to one endpoint.
    async fn list_attempts_by_message(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        endpoint: Option<&EndpointId>,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError>;
    /// Replaces an attempt's stored response with `EXPUNGED` (as Svix does); false if the
    /// attempt does not exist.
    async fn expunge_attempt_response(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<bool, StoreError>;
    /// Messages that have a delivery to the endpoint, newest first by default, with its state.
    async fn list_endpoint_messages(
        &self,
        app: &ApplicationId,
        endpoint: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<EndpointMessage>, StoreError>;
    /// Endpoints a message has deliveries to, with their state.
    async fn list_message_destinations(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<MessageDestination>, StoreError>;
}

/// Running the store: health, the nodes sharing it, circuit state, retention and upkeep,
/// summaries for operators, and the backend's hooks (new work from other nodes, resuming
/// after a restart, closing).
#[async_trait::async_trait]
pub trait OperationsStore: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Removes up to `limit` payloads whose retention ended by `now`; returns how many.
    async fn expire_payloads(&self, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
    /// Deletes up to `limit` whole messages created before `before`, oldest first, with their
    /// deliveries and attempts; returns how many messages went.
    ///
    /// This is message retention: without it the database grows for ever. Each call is one
    /// short statement, so a caller deletes a large backlog in batches without holding locks
    /// for long. Several nodes may call it at once: rows another node is deleting (or a worker
    /// is recording an attempt on) at that moment are passed over, not waited for, and go in a
    /// later batch. A delivery leased before its message went records nothing afterwards
    /// (`record_attempt` returns false, as for a stale lease).
    async fn delete_messages_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
    /// Disables every enabled endpoint that has failed without a success since before
    /// `failing_since`; returns them.
    async fn disable_failing_endpoints(
        &self,
        failing_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(ApplicationId, EndpointId)>, StoreError>;

    /// Deletes up to `limit` attempts made before `before`, oldest first; returns how many.
    /// Their messages and deliveries stay (attempt retention, shorter than message retention).
    /// Like `delete_messages_before`, one short statement that passes over rows other nodes
    /// are deleting.
    async fn delete_attempts_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// The delivery queue and endpoint health at `now`, across every application: what the
    /// metrics gauges show. Counts come from indexes and stop at
    /// [`crate::stats::QUEUE_COUNT_CAP`], so they are cheap enough for every scrape.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError>;
    /// One application's activity in `[since, until)` (messages and attempts created then)
    /// and its endpoints' health now.
    async fn application_stats(
        &self,
        app: &ApplicationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<ApplicationStats, StoreError>;

    /// Announces that `node` is alive until `expires_at`, forgets nodes whose announcement
    /// ended by `now` (`expires_at <= now`), and returns how many nodes are alive, this one
    /// included (so at least 1, whatever `expires_at` says).
    ///
    /// Several Herald nodes serving one database split each endpoint's concurrency and rate
    /// limit between the live nodes, so that together they keep to the endpoint's limit; a node
    /// calls this well within its expiry and divides by the answer. A node that dies stops
    /// counting once its last announcement expires.
    async fn heartbeat(
        &self,
        node: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
    /// Forgets `node` at once (a graceful shutdown), so the remaining nodes take over its share
    /// of every endpoint's limits without waiting for its heartbeat to expire. Forgetting a
    /// node that is not known is not an error.
    async fn leave(&self, node: &str) -> Result<(), StoreError>;
    /// Opens the endpoint's circuit breaker until `until`, or leaves it as it is when it is
    /// already open until later (an earlier `until` never shortens it). An endpoint that does
    /// not exist (any more) is not an error.
    ///
    /// The state lives in the store, not in one node's memory, so that every node stops
    /// sending to an endpoint that one of them found failing, and a node that starts (or
    /// restarts) knows of circuits opened before.
    async fn open_circuit(&self, endpoint: &EndpointId, until: DateTime<Utc>) -> Result<(), StoreError>;
    /// Until when the endpoint's circuit is open, if it is open at `now` (open until a time
    /// after `now`); `None` when it is closed or the endpoint does not exist. Nodes read it
    /// before sending to an endpoint, to honour circuits that other nodes opened.
    async fn circuit_open_until(
        &self,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Calls `on_work` whenever a transaction that queued deliveries commits in *another*
    /// process sharing this store, until the future is dropped or the connection fails (an
    /// error; the caller polls meanwhile and listens again). The default never calls it and
    /// never returns: a store no other process writes (the embedded SQLite) has no such news,
    /// since this process's own API wakes its worker directly.
    async fn listen_for_new_work(&self, on_work: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        let _ = on_work;
        std::future::pending().await
    }
    /// At start, makes the deliveries a dead predecessor left leased due again, and returns how
    /// many. Only a store one process owns (the embedded SQLite, behind its data-directory
    /// lock) can know every lease is stale; the default does nothing, and leases expire.
    async fn resume_interrupted(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Closes the store's connections, once, at shutdown.
    async fn close(&self) {}

    /// Deletes up to `limit` tokens that expired by `now` (`expires_at <= now`); returns how
    /// many. One short statement, so a backlog goes in batches.
    async fn delete_expired_tokens(&self, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
}

/// A source named by id or uid.
pub type SourceKey = Key<crate::id::SourceId>;

/// How many refusals of one source its log keeps (older ones are dropped as new ones come).
pub const REFUSALS_KEPT: u32 = 1000;

/// The ingest gateway's sources and their refusal logs.
#[async_trait::async_trait]
pub trait IngestStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the source and the application that backs it, in one transaction (its config
    /// sealed). Fails with `Conflict { what: "uid" }` when the source's uid is taken.
    async fn insert_source(&self, source: &Source, app: &Application) -> Result<(), StoreError>;
    async fn find_source(&self, key: &SourceKey) -> Result<Option<Source>, StoreError>;
    /// The source whose token hashes to `token`, or whose replaced token does and is still
    /// accepted at `now`.
    async fn find_source_by_token(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Source>, StoreError>;
    async fn list_sources(&self, page: &PageRequest) -> Result<Page<Source>, StoreError>;
    /// Applies `change` to the source as it is, atomically, and returns it changed; `None` if
    /// it does not exist. Fails with `Conflict { what: "uid" }` when the new uid is taken.
    async fn update_source(
        &self,
        id: &crate::id::SourceId,
        change: &SourceChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Source>, StoreError>;
    /// Deletes the source with its application (destinations, events, attempts); false if it
    /// did not exist.
    async fn delete_source(&self, id: &crate::id::SourceId) -> Result<bool, StoreError>;
    /// Adds a refusal to the source's log, keeping only its newest [`REFUSALS_KEPT`].
    async fn record_refusal(&self, refusal: &Refusal) -> Result<(), StoreError>;
    /// The source's newest refusals, newest first, at most `limit`.
    async fn list_refusals(
        &self,
        source: &crate::id::SourceId,
        limit: u16,
    ) -> Result<Vec<Refusal>, StoreError>;
}

/// Everything Herald persists: the five parts, which each backend implements (one crate per
/// backend) and the conformance suite checks. Code that needs only one part can ask for it.
pub trait Store: ResourceStore + QueueStore + AttemptStore + OperationsStore + IngestStore {}

impl<T: ResourceStore + QueueStore + AttemptStore + OperationsStore + IngestStore> Store for T {}
