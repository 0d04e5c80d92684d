//! Zoom: `x-zm-signature: v0=<hex HMAC-SHA256(secret token, "v0:" + timestamp + ":" + body)>`
//! with `x-zm-request-timestamp`; its `endpoint.url_validation` is answered with the plain
//! token and its HMAC (`encryptedToken`).

use super::{Request, fresh, hex, hmac_sha256, same, seconds};
use crate::ingest::RefusalReason;

pub(super) fn verify(secret: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let (Some(given), Some(timestamp)) =
        (request.header("x-zm-signature"), request.header("x-zm-request-timestamp"))
    else {
        return Err(RefusalReason::MissingSignature);
    };
    let expected = hex(&hmac_sha256(secret.as_bytes(), &[b"v0:", timestamp.as_bytes(), b":", request.body]));
    if !given.strip_prefix("v0=").is_some_and(|given| same(given.as_bytes(), expected.as_bytes())) {
        return Err(RefusalReason::BadSignature);
    }
    fresh(seconds(timestamp)?, now)
}

pub(super) fn challenge(secret: &str, request: &Request<'_>) -> Option<serde_json::Value> {
    let body = request.json()?;
    if body.get("event")?.as_str()? != "endpoint.url_validation" {
        return None;
    }
    let plain = body.get("payload")?.get("plainToken")?.as_str()?;
    let encrypted = hex(&hmac_sha256(secret.as_bytes(), &[plain.as_bytes()]));
    Some(serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    const BODY: &[u8] = br#"{"event":"meeting.started"}"#;
    // Computed independently with Python's hmac.
    const SIGNATURE: &str = "v0=82ab08e9ce8677cc243a618f1aec7e4377081b89ff6d348694053e77416b3682";

    fn check(secret: &str, body: &[u8], now: i64) -> Result<(), RefusalReason> {
        let headers = headers(&[("x-zm-signature", SIGNATURE), ("x-zm-request-timestamp", "1700000000")]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body }, now)
    }

    #[test]
    fn a_signed_event_verifies_and_tampering_staleness_or_another_secret_do_not() {
        assert_eq!(check("zoom_secret", BODY, 1_700_000_000), Ok(()));
        assert_eq!(
            check("zoom_secret", br#"{"event":"meeting.ended"}"#, 1_700_000_000),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(check("other", BODY, 1_700_000_000), Err(RefusalReason::BadSignature));
        assert_eq!(check("zoom_secret", BODY, 1_700_000_400), Err(RefusalReason::StaleTimestamp));
    }

    #[test]
    fn url_validation_is_answered_with_the_hashed_plain_token() {
        let none = headers(&[]);
        let body =
            br#"{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}"#;
        let answer = challenge("zoom_secret", &Request { method: "POST", url: "", headers: &none, body });
        assert_eq!(
            answer,
            Some(serde_json::json!({
                "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
                "encryptedToken": "46a324cfb7c2ec760e4cd561586a53aadb6fc7561eb8d626d6ee1b71d808b3c0"
            }))
        );
    }
}
