//! Segment: `X-Signature: <hex HMAC-SHA1(shared secret, body)>`; no timestamp (the body's
//! `messageId` deduplicates).

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{Request, hex, same};
use crate::ingest::RefusalReason;

pub(super) fn verify(secret: &str, request: &Request<'_>) -> Result<(), RefusalReason> {
    let given = request.header("x-signature").ok_or(RefusalReason::MissingSignature)?;
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return Err(RefusalReason::BadSignature);
    };
    mac.update(request.body);
    let expected = hex(&mac.finalize().into_bytes());
    if same(given.trim().to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(RefusalReason::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    // Computed independently with Python's hmac (SHA-1).
    const SIGNATURE: &str = "d283ff0cc6c1a12e872e2506de69902ce9a164db";

    fn check(secret: &str, body: &[u8]) -> Result<(), RefusalReason> {
        let headers = headers(&[("X-Signature", SIGNATURE)]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body })
    }

    #[test]
    fn a_signed_body_verifies_and_tampering_or_another_secret_do_not() {
        assert_eq!(check("segment_secret", br#"{"type":"track"}"#), Ok(()));
        assert_eq!(check("segment_secret", br#"{"type":"page"}"#), Err(RefusalReason::BadSignature));
        assert_eq!(check("other", br#"{"type":"track"}"#), Err(RefusalReason::BadSignature));
    }
}
