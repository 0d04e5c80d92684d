//! DocuSign Connect: `X-DocuSign-Signature-1` (then `-2`, … one per HMAC key configured at
//! DocuSign), each `<base64 HMAC-SHA256(key, body)>`; one matching signature is enough. No
//! timestamp in the scheme.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Request, hmac_sha256, same};
use crate::ingest::RefusalReason;

pub(super) fn verify(secret: &str, request: &Request<'_>) -> Result<(), RefusalReason> {
    let expected = hmac_sha256(secret.as_bytes(), &[request.body]);
    let mut any = false;
    for (name, value) in request.headers {
        if name.starts_with("x-docusign-signature-") {
            any = true;
            if BASE64.decode(value.trim()).is_ok_and(|given| same(&given, &expected)) {
                return Ok(());
            }
        }
    }
    Err(if any { RefusalReason::BadSignature } else { RefusalReason::MissingSignature })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    // Computed independently with Python's hmac.
    const SIGNATURE: &str = "PC4YT5UjZ2d2FIhvHj1u3eJGNMbAp5/BVnVvnX5gqNQ=";

    fn check(secret: &str, body: &[u8]) -> Result<(), RefusalReason> {
        let headers =
            headers(&[("X-DocuSign-Signature-1", "bm9wZQ=="), ("X-DocuSign-Signature-2", SIGNATURE)]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body })
    }

    #[test]
    fn any_matching_signature_verifies_and_tampering_or_another_key_do_not() {
        assert_eq!(check("docusign_key", br#"{"event":"envelope-sent"}"#), Ok(()));
        assert_eq!(
            check("docusign_key", br#"{"event":"envelope-voided"}"#),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(check("other", br#"{"event":"envelope-sent"}"#), Err(RefusalReason::BadSignature));
    }
}
