//! `Verifier`: the keys and the replay window, and the one decision a receiver needs —
//! did this request come from the sender, recently?
//!
//! Reads headers only through `HeaderSource` and time only from its caller or the system
//! clock; never logs, never keeps a request.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::headers::{self, HeaderSource};
use crate::key::{Key, KeyError};
use crate::signature::{self, Check};

/// How far a message's timestamp may be from the receiver's clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Verifies Standard Webhooks (and Svix) signatures with one or more keys.
///
/// Build it once at start-up, which also checks the configured secrets, and share it:
/// cloning is cheap (the keys are behind an `Arc`), so it can sit in a router's state.
///
/// ```
/// use herald_receiver::Verifier;
///
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let verified = verifier.verify_at(&headers, br#"{"test": 2432232314}"#, 1614265330)?;
/// assert_eq!(verified.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    /// Tried in order; any one producing a matching signature accepts the message, which is
    /// how a receiver keeps working while the sender rotates its secret.
    keys: Arc<[Key]>,
    /// The replay window: older (or later) timestamps are refused even when signed.
    tolerance: Duration,
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The message id (`webhook-id`). The same on every retry of a message, so it is the key
    /// for ignoring duplicates (see [`SeenStore`](crate::SeenStore)).
    pub id: String,
    /// When the sender signed this attempt, in unix seconds (`webhook-timestamp`).
    pub timestamp: i64,
    /// The position of the key that matched, in the order the keys were given. During a
    /// rotation this tells you when the old key stops being used.
    pub key_index: usize,
}

/// Why a request was refused. The messages are safe to show to the sender: they never
/// contain a key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent (under both its `webhook-*` and `svix-*` names). Holds
    /// the `webhook-*` name.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp header is not a number of unix seconds.
    #[error("the webhook-timestamp header is not a unix timestamp in seconds")]
    BadTimestamp,
    /// The timestamp is older than the tolerance allows, by this many seconds.
    #[error("the message timestamp is too old: {by_seconds}s beyond the tolerance")]
    TooOld {
        /// Seconds beyond the tolerance (the message's age minus the tolerance).
        by_seconds: u64,
    },
    /// The timestamp is further in the future than the tolerance allows, by this many
    /// seconds; usually one of the two clocks is wrong.
    #[error("the message timestamp is in the future: {by_seconds}s beyond the tolerance")]
    TooNew {
        /// Seconds beyond the tolerance.
        by_seconds: u64,
    },
    /// The signature header holds no well-formed `version,base64` entry.
    #[error("the webhook-signature header holds no well-formed signature")]
    MalformedSignature,
    /// The signature header is well-formed but no entry was made by any of the keys: a wrong
    /// secret, or a body or header changed on the way.
    #[error("no signature matches the message and the configured keys")]
    NoMatchingSignature,
}

impl VerifyError {
    /// A stable, machine-readable name for the error, in `snake_case`, for response bodies
    /// and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::BadTimestamp => "bad_timestamp",
            VerifyError::TooOld { .. } => "timestamp_too_old",
            VerifyError::TooNew { .. } => "timestamp_too_new",
            VerifyError::MalformedSignature => "malformed_signature",
            VerifyError::NoMatchingSignature => "no_matching_signature",
        }
    }
}

impl Verifier {
    /// A verifier for one key: `whsec_<base64>` or bare base64 (HMAC-SHA256, `v1`
    /// signatures), or `whpk_<base64>` (an ed25519 public key, `v1a` signatures).
    pub fn new(secret: &str) -> Result<Verifier, KeyError> {
        Verifier::with_keys([secret])
    }

    /// A verifier that accepts a message signed by any of `secrets` (each in a form
    /// [`Verifier::new`] takes), e.g. the old and the new secret during a rotation.
    pub fn with_keys<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Result<Verifier, KeyError> {
        let keys =
            secrets.into_iter().map(|secret| Key::parse(secret.as_ref())).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Verifier { keys: keys.into(), tolerance: DEFAULT_TOLERANCE })
    }

    /// Adds another key, tried after the ones already there.
    pub fn add_key(&mut self, secret: &str) -> Result<(), KeyError> {
        let key = Key::parse(secret)?;
        self.keys = self.keys.iter().cloned().chain([key]).collect();
        Ok(())
    }

    /// Sets how far a timestamp may be from now, either way ([`DEFAULT_TOLERANCE`], five
    /// minutes, unless set). Whole seconds count; `Duration::MAX` turns the check off.
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Verifier {
        self.tolerance = tolerance;
        self
    }

    /// Checks the request's headers and exact body bytes against the system clock.
    pub fn verify(
        &self,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        self.verify_at(headers, body, unix_now())
    }

    /// [`Verifier::verify`] as if the time were `now` (unix seconds); for tests and replays.
    pub fn verify_at(
        &self,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let signed = self.check_headers(headers, now)?;
        match signature::check(&self.keys, signed.signatures, signed.id, signed.timestamp_text, body) {
            Check::Matched { key_index } => {
                Ok(Verified { id: signed.id.to_owned(), timestamp: signed.timestamp, key_index })
            }
            Check::NoMatch => Err(VerifyError::NoMatchingSignature),
            Check::Malformed => Err(VerifyError::MalformedSignature),
        }
    }

    /// Everything that can be checked before the body is read: the three headers are there
    /// and the timestamp is inside the window.
    pub(crate) fn check_headers<'h>(
        &self,
        headers: &'h (impl HeaderSource + ?Sized),
        now: i64,
    ) -> Result<SignedHeaders<'h>, VerifyError> {
        let id = headers::first_of(headers, headers::ID).ok_or(VerifyError::MissingHeader(headers::ID[0]))?;
        let timestamp_text = headers::first_of(headers, headers::TIMESTAMP)
            .ok_or(VerifyError::MissingHeader(headers::TIMESTAMP[0]))?;
        let signatures = headers::first_of(headers, headers::SIGNATURE)
            .ok_or(VerifyError::MissingHeader(headers::SIGNATURE[0]))?;
        let timestamp = parse_timestamp(timestamp_text)?;
        self.check_window(timestamp, now)?;
        Ok(SignedHeaders { id, timestamp_text, timestamp, signatures })
    }

    /// Refuses timestamps outside `now ± tolerance`; the edges themselves are accepted.
    fn check_window(&self, timestamp: i64, now: i64) -> Result<(), VerifyError> {
        let tolerance = i128::from(self.tolerance.as_secs());
        let age = i128::from(now) - i128::from(timestamp);
        let beyond = |excess: i128| u64::try_from(excess).unwrap_or(u64::MAX);
        if age > tolerance {
            Err(VerifyError::TooOld { by_seconds: beyond(age - tolerance) })
        } else if -age > tolerance {
            Err(VerifyError::TooNew { by_seconds: beyond(-age - tolerance) })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// The headers of a request that has them all, with a timestamp inside the window.
pub(crate) struct SignedHeaders<'h> {
    /// The message id, part of the signed content.
    id: &'h str,
    /// The timestamp as sent, which is what was signed.
    timestamp_text: &'h str,
    /// The same timestamp as a number.
    timestamp: i64,
    /// The signature header's entries, not yet parsed.
    signatures: &'h str,
}

/// Unix seconds written as plain decimal digits. Signs, spaces and fractions are refused:
/// the signed content uses the header's text, so only one spelling of a time is accepted.
fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    text.parse().map_err(|_| VerifyError::BadTimestamp)
}

/// The system clock in unix seconds (0 if it reads before 1970, which the window refuses).
pub(crate) fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_timestamp("1614265330"), Ok(1614265330));
        for bad in ["", "-5", "+5", " 5", "5.0", "1e9", "99999999999999999999"] {
            assert_eq!(parse_timestamp(bad), Err(VerifyError::BadTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn the_window_edges_are_inside() {
        let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert_eq!(verifier.check_window(1000, 1300), Ok(()));
        assert_eq!(verifier.check_window(1300, 1000), Ok(()));
        assert_eq!(verifier.check_window(1000, 1301), Err(VerifyError::TooOld { by_seconds: 1 }));
        assert_eq!(verifier.check_window(1301, 1000), Err(VerifyError::TooNew { by_seconds: 1 }));
    }

    #[test]
    fn an_unbounded_tolerance_never_overflows() {
        let verifier =
            Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid").tolerance(Duration::MAX);
        assert_eq!(verifier.check_window(0, i64::MAX), Ok(()));
        assert_eq!(verifier.check_window(i64::MAX, 0), Ok(()));
    }

    #[test]
    fn debug_output_lists_key_kinds_only() {
        let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let shown = format!("{verifier:?}");
        assert!(shown.contains("hmac-sha256") && !shown.contains("MfKQ9r8"), "{shown}");
    }
}
