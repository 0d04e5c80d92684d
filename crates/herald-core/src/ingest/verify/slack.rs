//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>` with
//! `X-Slack-Request-Timestamp`; bodies are JSON (Events API) or form-encoded (commands,
//! interactivity). The Events API's `url_verification` is answered with its challenge.

use super::{Request, fresh, hex, hmac_sha256, same, seconds};
use crate::ingest::RefusalReason;

pub(super) const FORWARDED: &[&str] = &["x-slack-retry-num", "x-slack-retry-reason"];

pub(super) fn verify(secret: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let (Some(given), Some(timestamp)) =
        (request.header("x-slack-signature"), request.header("x-slack-request-timestamp"))
    else {
        return Err(RefusalReason::MissingSignature);
    };
    let expected = hex(&hmac_sha256(secret.as_bytes(), &[b"v0:", timestamp.as_bytes(), b":", request.body]));
    if !given.strip_prefix("v0=").is_some_and(|given| same(given.as_bytes(), expected.as_bytes())) {
        return Err(RefusalReason::BadSignature);
    }
    fresh(seconds(timestamp)?, now)
}

pub(super) fn challenge(request: &Request<'_>) -> Option<serde_json::Value> {
    let body = request.json()?;
    if body.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    Some(serde_json::json!({ "challenge": body.get("challenge")?.as_str()? }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &[u8] = b"token=abc&text=test";
    // Computed independently with Python's hmac over "v0:1531420618:token=abc&text=test".
    const SIGNATURE: &str = "v0=3eeb03de4b6b06fa0334cf7fefa91446986f64f882e98ffd44a18d23717e3e31";
    const AT: i64 = 1531420618;

    fn check(secret: &str, body: &[u8], now: i64) -> Result<(), RefusalReason> {
        let headers =
            headers(&[("X-Slack-Signature", SIGNATURE), ("X-Slack-Request-Timestamp", "1531420618")]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body }, now)
    }

    #[test]
    fn a_signed_form_body_verifies_and_tampering_staleness_or_another_secret_do_not() {
        assert_eq!(check(SECRET, BODY, AT), Ok(()));
        assert_eq!(check(SECRET, b"token=abc&text=tesT", AT), Err(RefusalReason::BadSignature));
        assert_eq!(check("another", BODY, AT), Err(RefusalReason::BadSignature));
        assert_eq!(check(SECRET, BODY, AT + 301), Err(RefusalReason::StaleTimestamp));
    }

    #[test]
    fn url_verification_is_answered_with_its_challenge() {
        let none = headers(&[]);
        let body = br#"{"type":"url_verification","challenge":"3eZbrw1a"}"#;
        let answer = challenge(&Request { method: "POST", url: "", headers: &none, body });
        assert_eq!(answer, Some(serde_json::json!({"challenge": "3eZbrw1a"})));
    }
}
