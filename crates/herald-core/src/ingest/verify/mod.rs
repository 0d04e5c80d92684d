//! Verifying a request to an ingest URL: one module per provider scheme, each pure (a request,
//! the source's configuration and the time in; accepted or a refusal reason out), plus what
//! each scheme says about the event (its delivery id, for deduplication, and its type) and which
//! of its headers are forwarded.
//!
//! Every comparison of a signature is constant-time; every scheme that signs a timestamp
//! refuses one older than [`TOLERANCE_SECS`] (a replay), and one as far ahead of now where the
//! provider's own library does. Each verifier judges as the provider's official library does:
//! `tests/ingest_vectors.rs` runs them on requests signed and judged by those libraries.

mod docusign;
mod generic;
mod github;
mod hubspot;
mod segment;
mod shopify;
mod slack;
mod stripe;
mod svix;
mod telnyx;
mod zoom;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::{RefusalReason, SourceConfig};

/// How far a signed timestamp may be from now, either way (five minutes, as every provider
/// with a timestamp recommends).
pub const TOLERANCE_SECS: i64 = 300;

/// The signature schemes Herald verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// No signature; optionally a bearer token or basic authentication.
    Generic,
    /// Svix and Standard Webhooks (`svix-*` or `webhook-*` headers, `whsec_` secret).
    Svix,
    Github,
    Stripe,
    Shopify,
    Slack,
    Hubspot,
    Zoom,
    Segment,
    Telnyx,
    Docusign,
}

/// Every source type Herald accepts and the scheme it verifies with: the one list of names
/// (Svix's `SvixConfig` providers, which sign with Svix, are verified as `svix`).
pub const TYPES: &[(&str, Scheme)] = &[
    ("generic-webhook", Scheme::Generic),
    ("svix", Scheme::Svix),
    ("standard-webhooks", Scheme::Svix),
    ("beehiiv", Scheme::Svix),
    ("brex", Scheme::Svix),
    ("clerk", Scheme::Svix),
    ("guesty", Scheme::Svix),
    ("incident-io", Scheme::Svix),
    ("lithic", Scheme::Svix),
    ("nash", Scheme::Svix),
    ("open-ai", Scheme::Svix),
    ("pleo", Scheme::Svix),
    ("psi-fi", Scheme::Svix),
    ("render", Scheme::Svix),
    ("replicate", Scheme::Svix),
    ("resend", Scheme::Svix),
    ("safebase", Scheme::Svix),
    ("sardine", Scheme::Svix),
    ("stych", Scheme::Svix),
    ("github", Scheme::Github),
    ("stripe", Scheme::Stripe),
    ("shopify", Scheme::Shopify),
    ("slack", Scheme::Slack),
    ("hubspot", Scheme::Hubspot),
    ("zoom", Scheme::Zoom),
    ("segment", Scheme::Segment),
    ("telnyx", Scheme::Telnyx),
    ("docusign", Scheme::Docusign),
];

/// Every source type name Herald accepts, in [`TYPES`]' order.
pub fn type_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|(name, _)| *name)
}

impl Scheme {
    /// The scheme of a source type name, if Herald knows it.
    pub fn of(type_name: &str) -> Option<Self> {
        TYPES.iter().find(|(name, _)| *name == type_name).map(|(_, scheme)| *scheme)
    }

    /// The provider's headers forwarded to destinations (lower-case): those that carry meaning,
    /// never those that carry its signature.
    pub fn forwarded_headers(self) -> &'static [&'static str] {
        match self {
            Self::Generic | Self::Stripe | Self::Hubspot | Self::Zoom | Self::Segment | Self::Telnyx => &[],
            Self::Svix => &[],
            Self::Github => github::FORWARDED,
            Self::Shopify => shopify::FORWARDED,
            Self::Slack => slack::FORWARDED,
            Self::Docusign => &[],
        }
    }
}

/// A request to an ingest URL, as the verifiers see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The URL the provider called, as it saw it (HubSpot signs it).
    pub url: &'a str,
    /// Header names in lower case, in the order received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body).ok()
    }
}

/// What the provider says about an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The provider's id of this delivery: a redelivery repeats it.
    pub delivery_id: Option<String>,
    /// The provider's name for the kind of event.
    pub event_type: Option<String>,
}

/// Whether the configuration has what the scheme needs to verify.
pub fn check_config(scheme: Scheme, config: &SourceConfig) -> Result<(), String> {
    let needs_secret = matches!(
        scheme,
        Scheme::Svix | Scheme::Stripe | Scheme::Shopify | Scheme::Slack | Scheme::Zoom | Scheme::Hubspot
    );
    if needs_secret && config.secret.as_deref().is_none_or(str::is_empty) {
        return Err("this source type needs `config.secret`, the provider's signing secret".into());
    }
    match scheme {
        Scheme::Svix => svix::check(config),
        Scheme::Telnyx => telnyx::check(config),
        Scheme::Generic if config.bearer_token.is_some() && config.basic_auth.is_some() => {
            Err("give either `config.bearerToken` or `config.basicAuth`, not both".into())
        }
        _ => Ok(()),
    }
}

/// Verifies `request` under the scheme with the source's configuration at `now`.
pub fn verify(
    scheme: Scheme,
    config: &SourceConfig,
    request: &Request<'_>,
    now: DateTime<Utc>,
) -> Result<(), RefusalReason> {
    let now = now.timestamp();
    let secret = config.secret.as_deref().unwrap_or("");
    match scheme {
        Scheme::Generic => generic::verify(config, request),
        Scheme::Svix => svix::verify(secret, request, now),
        // GitHub, HubSpot (v3 aside), Segment and DocuSign sources may be left without a
        // secret (as in Svix): then nothing is checked.
        Scheme::Github if secret.is_empty() => Ok(()),
        Scheme::Github => github::verify(secret, request),
        Scheme::Stripe => stripe::verify(secret, request, now),
        Scheme::Shopify => shopify::verify(secret, request),
        Scheme::Slack => slack::verify(secret, request, now),
        Scheme::Hubspot => hubspot::verify(secret, request, now),
        Scheme::Zoom => zoom::verify(secret, request, now),
        Scheme::Segment if secret.is_empty() => Ok(()),
        Scheme::Segment => segment::verify(secret, request),
        Scheme::Telnyx => telnyx::verify(config.public_key.as_deref().unwrap_or(""), request, now),
        Scheme::Docusign if secret.is_empty() => Ok(()),
        Scheme::Docusign => docusign::verify(secret, request),
    }
}

/// The delivery id and event type the provider gives, where it gives them.
pub fn identify(scheme: Scheme, request: &Request<'_>) -> Identity {
    let json = request.json();
    let field = |path: &[&str]| -> Option<String> {
        let mut value = json.as_ref()?;
        for key in path {
            value = value.get(key)?;
        }
        value.as_str().map(str::to_owned)
    };
    match scheme {
        Scheme::Generic => Identity {
            delivery_id: request
                .header("idempotency-key")
                .or(request.header("webhook-id"))
                .map(str::to_owned),
            event_type: field(&["type"]),
        },
        Scheme::Svix => Identity {
            delivery_id: request.header("svix-id").or(request.header("webhook-id")).map(str::to_owned),
            event_type: field(&["type"]),
        },
        Scheme::Github => github::identify(request, json.as_ref()),
        Scheme::Stripe => Identity { delivery_id: field(&["id"]), event_type: field(&["type"]) },
        Scheme::Shopify => Identity {
            delivery_id: shopify::header(request, "webhook-id")
                .or(request.header("x-shopify-event-id"))
                .map(str::to_owned),
            event_type: shopify::header(request, "topic").map(str::to_owned),
        },
        Scheme::Slack => Identity {
            delivery_id: field(&["event_id"]),
            event_type: field(&["event", "type"]).or_else(|| field(&["type"])),
        },
        Scheme::Hubspot => hubspot::identify(json.as_ref()),
        Scheme::Zoom => Identity {
            delivery_id: request.header("x-zm-trackingid").map(str::to_owned),
            event_type: field(&["event"]),
        },
        Scheme::Segment => Identity { delivery_id: field(&["messageId"]), event_type: field(&["type"]) },
        Scheme::Telnyx => {
            Identity { delivery_id: field(&["data", "id"]), event_type: field(&["data", "event_type"]) }
        }
        Scheme::Docusign => Identity { delivery_id: None, event_type: field(&["event"]) },
    }
}

/// A verified request some providers send to check the URL, answered at once (and not
/// forwarded): Slack's `url_verification` and Zoom's `endpoint.url_validation`.
pub fn challenge(scheme: Scheme, config: &SourceConfig, request: &Request<'_>) -> Option<serde_json::Value> {
    match scheme {
        Scheme::Slack => slack::challenge(request),
        Scheme::Zoom => zoom::challenge(config.secret.as_deref().unwrap_or(""), request),
        _ => None,
    }
}

/// HMAC-SHA256 of the parts, in order.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two byte strings.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Refuses a timestamp (seconds) further than the tolerance from `now`, either way (Svix,
/// Standard Webhooks, Slack and Telnyx, whose libraries refuse both).
pub(crate) fn fresh(timestamp: i64, now: i64) -> Result<(), RefusalReason> {
    if (now - timestamp).abs() > TOLERANCE_SECS { Err(RefusalReason::StaleTimestamp) } else { Ok(()) }
}

/// Refuses a timestamp (seconds) older than the tolerance; one ahead of `now` passes (Stripe,
/// whose libraries limit only an event's age).
pub(crate) fn not_stale(timestamp: i64, now: i64) -> Result<(), RefusalReason> {
    if now - timestamp > TOLERANCE_SECS { Err(RefusalReason::StaleTimestamp) } else { Ok(()) }
}

/// Parses a timestamp header (whole seconds); a malformed one is a bad signature.
pub(crate) fn seconds(text: &str) -> Result<i64, RefusalReason> {
    text.trim().parse().map_err(|_| RefusalReason::BadSignature)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Requests for the verifiers' tests.

    /// A POST with the given headers and body.
    pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_name_has_a_scheme() {
        for name in type_names() {
            assert!(Scheme::of(name).is_some(), "{name}");
        }
        let names: std::collections::HashSet<&str> = type_names().collect();
        assert_eq!(names.len(), TYPES.len(), "a type is listed twice");
        assert_eq!(Scheme::of("clerk"), Some(Scheme::Svix));
        assert_eq!(Scheme::of("nope"), None);
    }

    #[test]
    fn a_shopify_delivery_is_identified_by_either_generation_of_its_headers() {
        for prefix in ["X-Shopify", "Shopify"] {
            let headers = test_support::headers(&[
                (&format!("{prefix}-Topic"), "orders/create"),
                (&format!("{prefix}-Webhook-Id"), "b54557e4"),
            ]);
            let request = Request { method: "POST", url: "", headers: &headers, body: b"{}" };
            assert_eq!(
                identify(Scheme::Shopify, &request),
                Identity { delivery_id: Some("b54557e4".into()), event_type: Some("orders/create".into()) },
                "{prefix}"
            );
        }
        let forwarded = Scheme::Shopify.forwarded_headers();
        assert!(forwarded.contains(&"x-shopify-topic") && forwarded.contains(&"shopify-topic"));
    }

    #[test]
    fn no_forwarded_header_carries_a_signature() {
        for name in type_names() {
            for header in Scheme::of(name).expect("a known type").forwarded_headers() {
                assert!(!header.contains("signature") && !header.contains("hmac"), "{header}");
            }
        }
    }
}
