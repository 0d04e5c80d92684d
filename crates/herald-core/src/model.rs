//! The resources Herald manages, as the rest of the system sees them once parsed.
//!
//! These are not HTTP bodies (those live in the binary's `api/`) and not database rows (those
//! live in the store crates): both edges convert to and from these types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use url::Url;

use crate::consent::{ConsentMode, ConsentState};
use crate::id::{ApplicationId, EndpointId, TokenId};
use crate::name::{ChannelName, EventTypeName, FeatureFlag, Metadata, Uid};
use crate::secret::{SecretString, SigningSecret};

/// One of the operator's customers; endpoints and messages belong to an application.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: ApplicationId,
    pub uid: Option<Uid>,
    pub name: String,
    pub metadata: Metadata,
    /// Maximum messages per second delivered to each of the application's endpoints.
    pub throttle_rate: Option<u16>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A URL messages are delivered to, with its filters and credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: ApplicationId,
    pub uid: Option<Uid>,
    pub url: Url,
    pub description: String,
    pub disabled: bool,
    /// Only messages of these event types are delivered; `None` means all.
    pub event_types: Option<Vec<EventTypeName>>,
    /// Only messages on one of these channels are delivered; `None` means all.
    pub channels: Option<Vec<ChannelName>>,
    /// Maximum messages per second delivered to this endpoint.
    pub throttle_rate: Option<u16>,
    pub metadata: Metadata,
    /// The signing key, and the keys it replaced that still sign during their grace period.
    pub keys: EndpointKeys,
    /// Custom headers sent with every delivery.
    pub headers: BTreeMap<String, SecretString>,
    /// Sent as `Authorization: Bearer <token>` when set (a Herald extension).
    pub bearer_token: Option<SecretString>,
    /// Messages are delivered one at a time per lane (ordering key), in the order accepted.
    pub ordered: bool,
    /// What an ordered lane does when its head is exhausted.
    pub ordered_on_exhausted: OnExhausted,
    /// Whether the endpoint must consent before it receives anything; `None` follows the
    /// organisation's setting (`consent`).
    pub consent: Option<ConsentMode>,
    /// What the endpoint answered when asked for consent. Read-only here: written only by the
    /// store's narrow consent commands (the worker's handshake, the callback), never by a change.
    pub consent_state: Option<ConsentState>,
    /// The payload version the endpoint is pinned to (`payloadVersion`): it receives every
    /// message converted down to the highest version at or below it. `None`: as published.
    pub payload_version: Option<crate::version::PayloadVersion>,
    /// The endpoint's transformation (`…/transformation`).
    pub transformation: Transformation,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// JavaScript defining `function handler(webhook)`, run before each delivery to the endpoint
/// when enabled: it may change the payload, the URL and the method, or cancel the delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transformation {
    pub code: Option<String>,
    pub enabled: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Transformation {
    /// The code to run, when there is code and it is enabled.
    pub fn active(&self) -> Option<&str> {
        self.code.as_deref().filter(|_| self.enabled)
    }
}

/// What an ordered lane does when its head fails for good (`orderedOnExhausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExhausted {
    /// The lane moves on to the next message; an operational webhook says which was given up.
    #[default]
    Skip,
    /// The lane waits until the head is resent or recovered: nothing is delivered out of order.
    Pause,
}

impl OnExhausted {
    /// The stored code: 0 skip, 1 pause.
    pub fn code(self) -> i16 {
        match self {
            Self::Skip => 0,
            Self::Pause => 1,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Skip),
            1 => Some(Self::Pause),
            _ => None,
        }
    }

    /// The API's name: `skip` or `pause`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Pause => "pause",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "skip" => Ok(Self::Skip),
            "pause" => Ok(Self::Pause),
            other => Err(format!("must be `skip` or `pause`, not `{other}`")),
        }
    }
}

/// An endpoint's signing keys.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointKeys {
    pub current: SigningSecret,
    /// Keys replaced by a rotation, each signing until its expiry.
    pub previous: Vec<ExpiringKey>,
}

/// A replaced key that keeps signing until `expires_at`, so receivers can roll over.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiringKey {
    pub key: SigningSecret,
    pub expires_at: DateTime<Utc>,
}

impl EndpointKeys {
    /// Keys for a new endpoint: the given secret, or a generated HMAC secret.
    pub fn new(current: Option<SigningSecret>) -> Self {
        Self { current: current.unwrap_or_else(SigningSecret::generate_hmac), previous: Vec::new() }
    }

    /// Replaces the current key; the old one keeps signing for `grace` from `now`.
    pub fn rotate(&mut self, next: SigningSecret, now: DateTime<Utc>, grace: chrono::Duration) {
        self.previous.retain(|key| key.expires_at > now);
        let old = std::mem::replace(&mut self.current, next);
        if grace > chrono::Duration::zero() {
            self.previous.push(ExpiringKey { key: old, expires_at: now + grace });
        }
    }

    /// Every key that signs a delivery made at `now`: the current one first.
    pub fn active(&self, now: DateTime<Utc>) -> impl Iterator<Item = &SigningSecret> {
        std::iter::once(&self.current)
            .chain(self.previous.iter().filter(move |key| key.expires_at > now).map(|key| &key.key))
    }
}

/// A kind of event the operator's application emits, with its payload schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct EventType {
    pub name: EventTypeName,
    pub description: String,
    /// Archived event types are hidden from lists by default but still usable.
    pub archived: bool,
    pub deprecated: bool,
    /// Feature flags that gate the event type (stored and returned, not enforced).
    pub feature_flags: Vec<FeatureFlag>,
    /// A group for displaying event types together.
    pub group_name: Option<String>,
    /// JSON schemas by version, e.g. `{"1": {...}}`.
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    /// JavaScript by version N (> 1) defining `function convert(payload)`, which turns a
    /// version-N payload into a version N−1 payload (`converters`).
    pub converters: BTreeMap<crate::version::PayloadVersion, String>,
    /// Messages whose payload does not match their version's schema are refused
    /// (`validatePayloads`).
    pub validate_payloads: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an API token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything: the operator's own token.
    Organization,
    /// One application's resources only: the customer portal's token.
    Application(ApplicationId),
}

/// A bearer token for Herald's API. Only a hash of the token's value is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: TokenId,
    pub hash: crate::token::TokenHash,
    pub scope: TokenScope,
    /// A note for people (e.g. "created at first start").
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The session a portal token was minted for (Svix's `sessionId`), so that expiring a
    /// session's tokens leaves the application's other sessions alone.
    pub session_id: Option<String>,
}

/// The current time at the precision every store keeps (microseconds), so a resource returned
/// on creation is identical to the same resource read back later.
pub fn now() -> DateTime<Utc> {
    use crate::clock::Clock as _;
    crate::clock::SystemClock.now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_keys_sign_until_their_grace_period_ends() {
        let now = Utc::now();
        let mut keys = EndpointKeys::new(None);
        let old = keys.current.clone();
        let new = SigningSecret::generate_hmac();
        keys.rotate(new.clone(), now, chrono::Duration::hours(1));
        let active: Vec<_> = keys.active(now).cloned().collect();
        assert_eq!(active, vec![new.clone(), old]);
        let later: Vec<_> = keys.active(now + chrono::Duration::hours(2)).cloned().collect();
        assert_eq!(later, vec![new]);
    }
}
