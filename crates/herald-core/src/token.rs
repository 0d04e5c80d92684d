//! API token values: generation and the hash that is stored in their place.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::SecretString;

/// Prefix of an organisation token's value.
pub const ORGANIZATION_TOKEN_PREFIX: &str = "sk_";
/// Prefix of an application-scoped (customer portal) token's value.
pub const APPLICATION_TOKEN_PREFIX: &str = "appsk_";

/// SHA-256 of a token's value. Tokens carry 256 random bits, so a fast hash is enough: there
/// is nothing to brute-force, and lookups stay cheap on every request.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of a presented token value.
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }

    /// Lower-case hex, the form stored in the database.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the stored hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A new random token value with the given prefix.
pub fn generate_token_value(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SecretString::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex_and_differ_per_token() {
        let a = generate_token_value(ORGANIZATION_TOKEN_PREFIX);
        let b = generate_token_value(ORGANIZATION_TOKEN_PREFIX);
        assert!(a.expose().starts_with("sk_"));
        assert!(!a.expose().contains('.'), "the Svix SDKs read a region after a dot");
        let hash = TokenHash::of(a.expose());
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_ne!(hash, TokenHash::of(b.expose()));
    }
}
