//! Why a use case failed: one variant, and one stable code, per cause.

use herald_core::StoreError;
use herald_core::name::EventTypeName;

/// The kinds of resource a use case can fail to find or to name uniquely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Application,
    Endpoint,
    EventType,
    Message,
    Attempt,
    Token,
    Source,
    /// An ingest URL's token that opens no source.
    IngestToken,
}

impl Resource {
    /// How people call it, in error details.
    pub fn name(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Endpoint => "endpoint",
            Self::EventType => "event type",
            Self::Message => "message",
            Self::Attempt => "attempt",
            Self::Token => "token",
            Self::Source => "ingest source",
            Self::IngestToken => "ingest URL",
        }
    }
}

/// A use case's failure. The HTTP edge maps each variant to one status and [`Self::code`].
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{} not found", .0.name())]
    NotFound(Resource),
    #[error("an {} with this uid already exists", .0.name())]
    UidTaken(Resource),
    #[error("a message with this eventId already exists")]
    EventIdTaken,
    #[error("the event type `{0}` already exists")]
    EventTypeExists(EventTypeName),
    #[error("unknown event types: {} (create them first)", names(.0))]
    UnknownEventTypes(Vec<EventTypeName>),
    /// A consent callback that grants nothing: unknown, already used, replaced or expired.
    #[error("no pending consent has this callback (it was used, replaced or has expired)")]
    ConsentCallbackUnknown,
    /// An endpoint URL the SSRF guard will refuse, with `refuse_unroutable_endpoints` set.
    #[error("deliveries to this URL would be refused: {0}")]
    UnroutableUrl(String),
    /// A value that parsed but is not acceptable here; `field` names it in the request.
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{reason}")]
    ScriptDoesNotCompile { field: String, reason: String },
    #[error("{reason}")]
    ScriptFailed { reason: String },
    #[error("the payload does not match the schema of version {version}")]
    PayloadDoesNotMatch {
        version: herald_core::version::PayloadVersion,
        violations: Vec<herald_core::payload_schema::Violation>,
    },
    /// A request to an ingest URL that did not verify.
    #[error("the request was refused: {}", .0.name())]
    IngestRefused(herald_core::ingest::RefusalReason),
    /// The store failed; the details go to the log, never to a client.
    #[error("storage failed")]
    Store(#[source] StoreError),
}

fn names(list: &[EventTypeName]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl ServiceError {
    /// The stable, machine-readable code of this cause (documented in the OpenAPI document's
    /// error schema).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(Resource::Application) => "application_not_found",
            Self::NotFound(Resource::Endpoint) => "endpoint_not_found",
            Self::NotFound(Resource::EventType) => "event_type_not_found",
            Self::NotFound(Resource::Message) => "message_not_found",
            Self::NotFound(Resource::Attempt) => "attempt_not_found",
            Self::NotFound(Resource::Token) => "token_not_found",
            Self::NotFound(Resource::Source) => "source_not_found",
            Self::NotFound(Resource::IngestToken) => "ingest_url_not_found",
            Self::IngestRefused(_) => "ingest_refused",
            Self::UidTaken(_) => "uid_taken",
            Self::EventIdTaken => "event_id_taken",
            Self::EventTypeExists(_) => "event_type_exists",
            Self::UnknownEventTypes(_) => "unknown_event_types",
            Self::ConsentCallbackUnknown => "consent_callback_not_found",
            Self::UnroutableUrl(_) => "unroutable_url",
            Self::Invalid { .. } => "invalid_value",
            Self::ScriptDoesNotCompile { .. } => "script_does_not_compile",
            Self::ScriptFailed { .. } => "script_failed",
            Self::PayloadDoesNotMatch { .. } => "payload_does_not_match_schema",
            Self::Store(_) => "internal_error",
        }
    }

    /// A store failure, with uniqueness conflicts named for `resource`.
    pub(crate) fn store(resource: Resource) -> impl Fn(StoreError) -> Self {
        move |error| match error {
            StoreError::Conflict { what: "uid" } => Self::UidTaken(resource),
            StoreError::Conflict { what: "eventId" } => Self::EventIdTaken,
            other => Self::Store(other),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Every code a [`ServiceError`] can carry, for the OpenAPI document.
pub const CODES: &[(&str, &str)] = &[
    ("application_not_found", "404: no application with this id or uid (or not yours)"),
    ("endpoint_not_found", "404: no endpoint with this id or uid in the application"),
    ("event_type_not_found", "404: no event type with this name"),
    ("message_not_found", "404: no message with this id or eventId in the application"),
    ("attempt_not_found", "404: no such attempt of the message"),
    ("token_not_found", "404: no API token with this id (revoked, purged after expiring, or never made)"),
    ("source_not_found", "404: no ingest source with this id or uid"),
    (
        "ingest_url_not_found",
        "404: the ingest URL's token opens no source (never made, or rotated and past its grace)",
    ),
    (
        "ingest_refused",
        "401: a request to an ingest URL whose signature, credentials or timestamp did not verify",
    ),
    ("consent_callback_not_found", "404: the consent callback is unknown, used, replaced or expired"),
    ("uid_taken", "409: another resource of this kind already has the uid"),
    ("event_id_taken", "409: the application already has a message with this eventId"),
    ("event_type_exists", "409: an event type with this name exists and is not archived"),
    ("unknown_event_types", "422: an endpoint names event types that are not registered"),
    (
        "unroutable_url",
        "422: the endpoint URL's address is one the SSRF guard refuses (with refuse_unroutable_endpoints)",
    ),
    ("invalid_value", "422: a value that is well-formed but not acceptable"),
    (
        "script_does_not_compile",
        "422: a converter or transformation does not compile or lacks its function (the message names the line)",
    ),
    (
        "payload_does_not_match_schema",
        "422: with validation on, the payload breaks its version's JSON Schema (each violation listed, with its path)",
    ),
    (
        "script_failed",
        "422: a simulated transformation threw, ran past its limits or returned something unusable",
    ),
    ("internal_error", "500: the server failed; the cause is in its log"),
];
