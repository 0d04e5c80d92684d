//! Secrets: endpoint signing keys, bearer tokens, and the cipher that seals them at rest.
//!
//! Every secret type hides its value from `Debug`, so a secret can't reach a log line by
//! accident. Nothing here performs I/O other than drawing from the system random generator.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Prefix of a symmetric (HMAC-SHA256) signing secret.
pub const HMAC_PREFIX: &str = "whsec_";
/// Prefix of an asymmetric (ed25519) signing key.
pub const ED25519_PREFIX: &str = "whsk_";
/// Prefix of the public half of an ed25519 key, given to receivers.
pub const ED25519_PUBLIC_PREFIX: &str = "whpk_";
/// Bytes of a generated HMAC secret (as Svix: 24 bytes, 32 base64 characters).
const GENERATED_HMAC_BYTES: usize = 24;

/// A key an endpoint's deliveries are signed with.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningSecret {
    /// `whsec_…`: HMAC-SHA256 over `id.timestamp.body`, sent as `v1,…`.
    Hmac(Vec<u8>),
    /// `whsk_…`: the 32-byte ed25519 seed, signatures sent as `v1a,…`.
    Ed25519([u8; 32]),
}

/// A signing secret that is not in one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must be `whsec_` followed by 32 to 100 base64 characters, or a `whsk_` ed25519 key")]
    Malformed,
    #[error("a `whsk_` key must be the base64 of a 32-byte ed25519 seed (or a 64-byte keypair)")]
    BadEd25519Key,
}

impl SigningSecret {
    /// A fresh random HMAC secret.
    pub fn generate_hmac() -> Self {
        let mut bytes = vec![0u8; GENERATED_HMAC_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self::Hmac(bytes)
    }

    /// Parses `whsec_<base64>`, a bare `<base64>` (as Svix accepts), or `whsk_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        if let Some(encoded) = text.strip_prefix(ED25519_PREFIX) {
            let bytes = BASE64.decode(encoded).map_err(|_| SecretError::BadEd25519Key)?;
            let seed: [u8; 32] = match bytes.len() {
                32 | 64 => bytes[..32].try_into().map_err(|_| SecretError::BadEd25519Key)?,
                _ => return Err(SecretError::BadEd25519Key),
            };
            return Ok(Self::Ed25519(seed));
        }
        let encoded = text.strip_prefix(HMAC_PREFIX).unwrap_or(text);
        let well_formed = (32..=100).contains(&encoded.len())
            && encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !well_formed {
            return Err(SecretError::Malformed);
        }
        let bytes = BASE64.decode(encoded).map_err(|_| SecretError::Malformed)?;
        Ok(Self::Hmac(bytes))
    }

    /// What a receiver needs to verify signatures: the `whsec_` secret itself for HMAC, the
    /// `whpk_` public key for ed25519 (the private key never leaves Herald).
    pub fn verification_key(&self) -> String {
        match self {
            Self::Hmac(_) => self.expose(),
            Self::Ed25519(seed) => {
                let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
                format!("{ED25519_PUBLIC_PREFIX}{}", BASE64.encode(public.as_bytes()))
            }
        }
    }

    /// The secret in its textual form, as the API returns it to an authorised caller.
    pub fn expose(&self) -> String {
        match self {
            Self::Hmac(bytes) => format!("{HMAC_PREFIX}{}", BASE64.encode(bytes)),
            Self::Ed25519(seed) => format!("{ED25519_PREFIX}{}", BASE64.encode(seed)),
        }
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("SigningSecret::Hmac(<redacted>)"),
            Self::Ed25519(_) => f.write_str("SigningSecret::Ed25519(<redacted>)"),
        }
    }
}

/// A string that must never be printed: bearer tokens, sensitive header values.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the few places that must send or seal it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Encrypts secrets before they are stored (XChaCha20-Poly1305, random 192-bit nonces).
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

/// A sealed value that could not be opened: wrong key, or corrupted data.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a stored secret could not be decrypted (wrong encryption key, or corrupted data)")]
pub struct SealError;

/// An encryption key that is not 32 bytes of base64.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the encryption key must be 32 bytes, base64-encoded (44 characters)")]
pub struct KeyError;

const NONCE_BYTES: usize = 24;

impl Cipher {
    /// A cipher from a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { aead: XChaCha20Poly1305::new(key.into()) }
    }

    /// A cipher from the base64 text form of its key.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError)?;
        Ok(Self::new(&key))
    }

    /// A new random key, in base64, for a fresh data directory.
    pub fn generate_key_base64() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        BASE64.encode(key)
    }

    /// Encrypts `plaintext`; the nonce is stored in front of the ciphertext.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and an in-memory buffer cannot fail.
        let sealed = self.aead.encrypt(XNonce::from_slice(&nonce), plaintext).unwrap_or_default();
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value produced by [`Cipher::seal`].
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        self.aead.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| SealError)
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_round_trip_through_text() {
        let secret = SigningSecret::generate_hmac();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(text.len(), 6 + 32);
        assert_eq!(SigningSecret::parse(&text), Ok(secret));
    }

    #[test]
    fn secrets_accept_svix_forms_and_reject_garbage() {
        let bare = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(matches!(SigningSecret::parse(bare), Ok(SigningSecret::Hmac(_))));
        assert_eq!(SigningSecret::parse("whsec_short"), Err(SecretError::Malformed));
        assert_eq!(
            SigningSecret::parse("whsec_not base64 !!!!!!!!!!!!!!!!!!!!!!"),
            Err(SecretError::Malformed)
        );
        let ed = format!("whsk_{}", BASE64.encode([7u8; 32]));
        assert_eq!(SigningSecret::parse(&ed), Ok(SigningSecret::Ed25519([7u8; 32])));
        assert_eq!(SigningSecret::parse("whsk_AAAA"), Err(SecretError::BadEd25519Key));
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = SigningSecret::generate_hmac();
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
        assert_eq!(format!("{:?}", SecretString::new("hunter2")), "<redacted>");
    }

    #[test]
    fn cipher_round_trips_and_rejects_a_wrong_key() {
        let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).expect("valid key");
        let sealed = cipher.seal(b"whsec_abc");
        assert_ne!(&sealed[24..], b"whsec_abc");
        assert_eq!(cipher.open(&sealed).expect("opens"), b"whsec_abc");
        let other = Cipher::from_base64(&Cipher::generate_key_base64()).expect("valid key");
        assert!(other.open(&sealed).is_err());
        assert!(Cipher::from_base64("too-short").is_err());
    }
}
