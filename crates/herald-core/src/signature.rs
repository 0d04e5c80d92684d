//! Standard Webhooks signatures: what `webhook-signature` says about `id.timestamp.body`.
//!
//! `whsec_` secrets sign with HMAC-SHA256 (`v1,<base64>`), `whsk_` keys with ed25519
//! (`v1a,<base64>`). During a rotation every active key signs, and the signatures are sent
//! space-separated in one header, which every Standard Webhooks verifier accepts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SigningSecret;

/// One key's signature over a message, in the header's `version,base64` form.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let prefix = format!("{msg_id}.{timestamp}.");
    match secret {
        SigningSecret::Hmac(key) => {
            // HMAC accepts keys of any length, so construction cannot fail.
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                return String::new();
            };
            mac.update(prefix.as_bytes());
            mac.update(body);
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        }
        SigningSecret::Ed25519(seed) => {
            let key = ed25519_dalek::SigningKey::from_bytes(seed);
            let mut content = Vec::with_capacity(prefix.len() + body.len());
            content.extend_from_slice(prefix.as_bytes());
            content.extend_from_slice(body);
            format!("v1a,{}", BASE64.encode(key.sign(&content).to_bytes()))
        }
    }
}

/// The `webhook-signature` header value for all of `secrets`, space-separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets.into_iter().map(|secret| sign(secret, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_signature_matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn ed25519_signatures_verify_with_the_public_key() {
        use ed25519_dalek::Verifier as _;
        let seed = [9u8; 32];
        let signature = sign(&SigningSecret::Ed25519(seed), "msg_1", 42, b"{}");
        let encoded = signature.strip_prefix("v1a,").expect("v1a prefix");
        let bytes: [u8; 64] = BASE64.decode(encoded).expect("base64").try_into().expect("64 bytes");
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        public.verify(b"msg_1.42.{}", &ed25519_dalek::Signature::from_bytes(&bytes)).expect("verifies");
    }

    #[test]
    fn every_active_key_signs() {
        let a = SigningSecret::generate_hmac();
        let b = SigningSecret::Ed25519([1u8; 32]);
        let header = signature_header([&a, &b], "msg_1", 1, b"x");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("v1,") && parts[1].starts_with("v1a,"));
    }
}
