//! The keys a receiver verifies with, parsed once from their text form.
//!
//! Nothing here prints key material: `Debug` is redacted and no error carries the text it was
//! given (not even the base64 decoder's error, which names an offending byte of the secret).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The prefix of a shared HMAC-SHA256 secret (`v1` signatures).
pub(crate) const HMAC_PREFIX: &str = "whsec_";
/// The prefix of an ed25519 public key (`v1a` signatures).
pub(crate) const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// The prefix of an ed25519 private signing key, which belongs to the sender only.
const PRIVATE_KEY_PREFIX: &str = "whsk_";

/// Why a secret or public key could not be used. Never contains any part of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret was empty, or decoded to no bytes.
    #[error("the webhook secret is empty")]
    Empty,
    /// The part after the prefix (or the whole bare secret) is not standard base64.
    #[error("the webhook secret is not valid base64")]
    NotBase64,
    /// A `whpk_` key did not decode to the 32 bytes of an ed25519 public key.
    #[error("a whpk_ public key must decode to 32 bytes, this one decodes to {0}")]
    PublicKeyLength(usize),
    /// A `whpk_` key has the right length but is not a usable ed25519 public key.
    #[error("the whpk_ key is not a valid ed25519 public key")]
    InvalidPublicKey,
    /// A `whsk_` private key was given; the receiver needs the matching `whpk_` public key.
    #[error("whsk_ is the sender's private signing key; give the receiver its whpk_ public key")]
    PrivateKey,
    /// A verifier was asked for with no keys at all; it would reject every message.
    #[error("no webhook secret was given")]
    NoKeys,
}

/// One key a message may be signed with.
#[derive(Clone)]
pub(crate) enum Key {
    /// A shared secret: `v1` entries are HMAC-SHA256 with these bytes.
    Hmac(Box<[u8]>),
    /// A sender's public key: `v1a` entries are ed25519 signatures it verifies.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Key {
    /// Parses `whsec_<base64>`, a bare base64 HMAC secret, or `whpk_<base64>`.
    ///
    /// Surrounding whitespace is ignored, because secrets read from files and environment
    /// variables often end with a newline.
    pub(crate) fn parse(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        if text.starts_with(PRIVATE_KEY_PREFIX) {
            return Err(KeyError::PrivateKey);
        }
        if let Some(encoded) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes = decode(encoded)?;
            let bytes: [u8; 32] =
                bytes.as_slice().try_into().map_err(|_| KeyError::PublicKeyLength(bytes.len()))?;
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
            // A small-order key would accept forged signatures; no honest sender has one.
            if key.is_weak() {
                return Err(KeyError::InvalidPublicKey);
            }
            return Ok(Key::Ed25519(key));
        }
        let encoded = text.strip_prefix(HMAC_PREFIX).unwrap_or(text);
        Ok(Key::Hmac(decode(encoded)?.into_boxed_slice()))
    }

    /// A short, non-secret name for the kind of key, for `Debug` output.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Key::Hmac(_) => "hmac-sha256",
            Key::Ed25519(_) => "ed25519",
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Key({}, [redacted])", self.kind())
    }
}

/// Decodes non-empty standard base64, keeping the decoder's error (which quotes a byte of
/// the input) out of the result.
fn decode(encoded: &str) -> Result<Vec<u8>, KeyError> {
    if encoded.is_empty() {
        return Err(KeyError::Empty);
    }
    let bytes = BASE64.decode(encoded).map_err(|_| KeyError::NotBase64)?;
    if bytes.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_key_text(seed: u8) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
        format!("whpk_{}", BASE64.encode(key.as_bytes()))
    }

    #[test]
    fn hmac_secrets_parse_with_or_without_the_prefix() {
        let prefixed = Key::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("prefixed");
        let bare = Key::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("bare, with a newline");
        match (prefixed, bare) {
            (Key::Hmac(a), Key::Hmac(b)) => assert_eq!(a, b),
            other => panic!("expected two HMAC keys, got {other:?}"),
        }
    }

    #[test]
    fn public_keys_parse_as_ed25519() {
        assert!(matches!(Key::parse(&public_key_text(3)), Ok(Key::Ed25519(_))));
    }

    #[test]
    fn bad_keys_are_rejected_with_a_reason() {
        assert_eq!(Key::parse("").err(), Some(KeyError::Empty));
        assert_eq!(Key::parse("whsec_").err(), Some(KeyError::Empty));
        assert_eq!(Key::parse("whsec_not base64!").err(), Some(KeyError::NotBase64));
        assert_eq!(Key::parse("whpk_AAAA").err(), Some(KeyError::PublicKeyLength(3)));
        assert_eq!(Key::parse("whsk_AAAA").err(), Some(KeyError::PrivateKey));
        let identity =
            format!("whpk_{}", BASE64.encode([1u8].iter().chain(&[0u8; 31]).copied().collect::<Vec<_>>()));
        assert_eq!(Key::parse(&identity).err(), Some(KeyError::InvalidPublicKey));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = Key::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let shown = format!("{key:?}");
        assert_eq!(shown, "Key(hmac-sha256, [redacted])");
    }

    #[test]
    fn errors_never_quote_the_secret() {
        let error = Key::parse("whsec_secret?value").expect_err("not base64");
        assert!(!error.to_string().contains("secret?value"));
        assert!(!format!("{error:?}").contains('?'));
    }
}
