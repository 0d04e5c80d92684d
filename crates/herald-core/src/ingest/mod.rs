//! The ingest gateway's domain: sources (where a provider sends), their types and secrets,
//! refusals, and the verifiers of every provider's signature scheme (`verify/`, pure).
//!
//! A source is backed by an application of its own: its destinations are that application's
//! endpoints and an accepted event becomes one of its messages, so forwarding is ordinary
//! delivery.

pub mod verify;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{ApplicationId, SourceId};
use crate::name::{Metadata, Uid};
use crate::secret::SecretString;
use crate::token::TokenHash;

/// Prefix of a source's ingest token (the secret part of its ingest URL).
pub const INGEST_TOKEN_PREFIX: &str = "in_";

/// A place a provider sends webhooks to.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    /// The hidden application whose endpoints are the source's destinations.
    pub app_id: ApplicationId,
    pub uid: Option<Uid>,
    pub name: String,
    pub kind: SourceType,
    pub config: SourceConfig,
    pub metadata: Metadata,
    /// The token in the ingest URL. Stores keep its hash (to find the source by it) and a sealed
    /// copy (to show the URL again); never the value in clear.
    pub token: SecretString,
    /// The token a rotation replaced, still accepted until the given time.
    pub previous_token: Option<(TokenHash, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A source's type: its name in the API (`github`, `clerk`, …) decides its scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceType {
    name: String,
    scheme: verify::Scheme,
}

impl SourceType {
    /// Parses the API's `type`; an unknown one names the types there are.
    pub fn parse(name: &str) -> Result<Self, String> {
        match verify::Scheme::of(name) {
            Some(scheme) => Ok(Self { name: name.to_owned(), scheme }),
            None => Err(format!(
                "unknown source type `{name}`; known types: {}",
                verify::type_names().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn scheme(&self) -> verify::Scheme {
        self.scheme
    }
}

/// What a source verifies with. Every field is a secret except `public_key`; stored sealed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceConfig {
    /// The provider's signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// An ed25519 public key (Telnyx), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// generic-webhook: require `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// generic-webhook: require HTTP basic authentication with these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Credentials of HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl SourceConfig {
    /// The configuration as sealed at rest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether the configuration has what the scheme needs; the message says what is missing.
    pub fn check(&self, scheme: verify::Scheme) -> Result<(), String> {
        verify::check_config(scheme, self)
    }
}

/// A new ingest token value: the caller shows it in the ingest URL, the store keeps its hash.
pub fn generate_token() -> SecretString {
    crate::token::generate_token_value(INGEST_TOKEN_PREFIX)
}

/// A narrow change of a source (a PUT, a PATCH or a token rotation), applied to the row as it
/// is inside the store's transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceChange {
    pub name: Option<String>,
    pub uid: Option<Option<Uid>>,
    pub kind: Option<SourceType>,
    pub config: Option<SourceConfig>,
    pub metadata: Option<Metadata>,
    /// A rotation: the new token, and until when the current one is still accepted.
    pub rotate_token: Option<(SecretString, DateTime<Utc>)>,
}

impl SourceChange {
    /// Applies the change to `source` (the stores call this on the row they locked).
    pub fn apply(&self, source: &mut Source, now: DateTime<Utc>) {
        if let Some(name) = &self.name {
            source.name.clone_from(name);
        }
        if let Some(uid) = &self.uid {
            source.uid.clone_from(uid);
        }
        if let Some(kind) = &self.kind {
            source.kind = kind.clone();
        }
        if let Some(config) = &self.config {
            source.config = config.clone();
        }
        if let Some(metadata) = &self.metadata {
            source.metadata.clone_from(metadata);
        }
        if let Some((next, grace_until)) = &self.rotate_token {
            let old = std::mem::replace(&mut source.token, next.clone());
            source.previous_token = Some((TokenHash::of(old.expose()), *grace_until));
        }
        source.updated_at = now;
    }
}

/// Why a request to an ingest URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// A signature or credential header the scheme requires is absent.
    MissingSignature,
    /// The signature or credential does not match.
    BadSignature,
    /// The signed timestamp is outside the tolerance (a replay, or a badly skewed clock).
    StaleTimestamp,
    /// The body is larger than `ingest_max_body_bytes`.
    TooLarge,
}

impl RefusalReason {
    pub const ALL: [Self; 4] =
        [Self::MissingSignature, Self::BadSignature, Self::StaleTimestamp, Self::TooLarge];

    /// The stable name (API, metrics label, stored).
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::TooLarge => "too_large",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.name() == name)
    }
}

/// One refused request, kept in the source's refusal log (nothing else of it is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub source_id: SourceId,
    pub reason: RefusalReason,
    pub at: DateTime<Utc>,
    /// The sender's address as the listener saw it.
    pub address: String,
}
