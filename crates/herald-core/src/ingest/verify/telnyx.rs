//! Telnyx (API v2): `telnyx-signature-ed25519: <base64 ed25519 signature>` over
//! `timestamp + "|" + body`, with `telnyx-timestamp` (seconds), checked with the account's
//! public key (base64, from the Telnyx portal).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};

use super::{Request, fresh, seconds};
use crate::ingest::{RefusalReason, SourceConfig};

fn key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = BASE64.decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

pub(super) fn check(config: &SourceConfig) -> Result<(), String> {
    match config.public_key.as_deref().and_then(key) {
        Some(_) => Ok(()),
        None => Err("`config.publicKey` must be the account's ed25519 public key in base64".into()),
    }
}

pub(super) fn verify(public_key: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let (Some(given), Some(timestamp)) =
        (request.header("telnyx-signature-ed25519"), request.header("telnyx-timestamp"))
    else {
        return Err(RefusalReason::MissingSignature);
    };
    let key = key(public_key).ok_or(RefusalReason::BadSignature)?;
    let bytes: [u8; 64] = BASE64
        .decode(given.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(RefusalReason::BadSignature)?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + request.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(request.body);
    key.verify_strict(&signed, &Signature::from_bytes(&bytes)).map_err(|_| RefusalReason::BadSignature)?;
    fresh(seconds(timestamp)?, now)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::super::test_support::headers;
    use super::*;

    const BODY: &[u8] = br#"{"data":{"id":"e-1","event_type":"call.initiated"}}"#;

    fn signed(seed: u8, at: &str, body: &[u8]) -> String {
        let key = SigningKey::from_bytes(&[seed; 32]);
        BASE64.encode(key.sign(&[at.as_bytes(), b"|", body].concat()).to_bytes())
    }

    fn check(signature: &str, body: &[u8], now: i64) -> Result<(), RefusalReason> {
        let public = BASE64.encode(SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
        let headers = headers(&[("telnyx-signature-ed25519", signature), ("telnyx-timestamp", "1700000000")]);
        verify(&public, &Request { method: "POST", url: "", headers: &headers, body }, now)
    }

    #[test]
    fn a_signed_event_verifies_and_tampering_staleness_or_another_key_do_not() {
        let at = 1_700_000_000;
        assert_eq!(check(&signed(7, "1700000000", BODY), BODY, at), Ok(()));
        assert_eq!(check(&signed(7, "1700000000", BODY), b"{}", at), Err(RefusalReason::BadSignature));
        assert_eq!(check(&signed(8, "1700000000", BODY), BODY, at), Err(RefusalReason::BadSignature));
        assert_eq!(check(&signed(7, "1700000000", BODY), BODY, at + 301), Err(RefusalReason::StaleTimestamp));
    }
}
