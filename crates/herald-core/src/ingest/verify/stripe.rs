//! Stripe: `Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>…]`, each `v1` an HMAC-SHA256 with
//! the endpoint secret (`whsec_…`, used as text) over `<t as a number>.body`. The header is
//! read as Stripe's libraries read it: items split at `,` and `=` with nothing trimmed, the
//! last `t` counting; only the event's age is limited (a timestamp ahead of Herald's clock
//! passes, as in Stripe's libraries, which limit nothing else).

use super::{Request, hex, hmac_sha256, not_stale, same, seconds};
use crate::ingest::RefusalReason;

pub(super) fn verify(secret: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let header = request.header("stripe-signature").ok_or(RefusalReason::MissingSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let mut parts = item.split('=');
        match (parts.next(), parts.next()) {
            (Some("t"), Some(value)) => timestamp = Some(value),
            (Some("v1"), Some(value)) => signatures.push(value),
            _ => {}
        }
    }
    // Signed as the number it is: `t=01700000000` signs `1700000000.…`.
    let timestamp = seconds(timestamp.ok_or(RefusalReason::BadSignature)?)?;
    let expected =
        hex(&hmac_sha256(secret.as_bytes(), &[timestamp.to_string().as_bytes(), b".", request.body]));
    if !signatures.iter().any(|given| same(given.as_bytes(), expected.as_bytes())) {
        return Err(RefusalReason::BadSignature);
    }
    not_stale(timestamp, now)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"customer.created"}"#;

    fn header(secret: &str, at: i64, body: &[u8]) -> String {
        let signature = hex(&hmac_sha256(secret.as_bytes(), &[at.to_string().as_bytes(), b".", body]));
        format!("t={at},v1={signature},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
    }

    fn check(header: &str, body: &[u8], now: i64) -> Result<(), RefusalReason> {
        let headers = headers(&[("Stripe-Signature", header)]);
        verify(SECRET, &Request { method: "POST", url: "", headers: &headers, body }, now)
    }

    #[test]
    fn a_signed_event_verifies_and_tampering_staleness_or_another_secret_do_not() {
        let at = 1_700_000_000;
        assert_eq!(check(&header(SECRET, at, BODY), BODY, at + 5), Ok(()));
        assert_eq!(check(&header(SECRET, at, BODY), b"{}", at), Err(RefusalReason::BadSignature));
        assert_eq!(check(&header("whsec_other", at, BODY), BODY, at), Err(RefusalReason::BadSignature));
        assert_eq!(check(&header(SECRET, at, BODY), BODY, at + 301), Err(RefusalReason::StaleTimestamp));
        assert_eq!(check("v1=abc", BODY, at), Err(RefusalReason::BadSignature));
    }

    #[test]
    fn only_age_is_limited_and_the_header_is_read_untrimmed_as_stripes_libraries_read_it() {
        let at = 1_700_000_000;
        // An hour ahead of Herald's clock: Stripe's libraries accept it, and so does Herald.
        assert_eq!(check(&header(SECRET, at, BODY), BODY, at - 3600), Ok(()));
        // `t=1, v1=…` has no `v1` item for Stripe's libraries (they trim nothing).
        assert_eq!(
            check(&header(SECRET, at, BODY).replace(',', ", "), BODY, at),
            Err(RefusalReason::BadSignature)
        );
        // The timestamp is signed as a number.
        assert_eq!(check(&header(SECRET, at, BODY).replace("t=", "t=0"), BODY, at), Ok(()));
    }

    #[test]
    fn the_signed_payload_is_the_timestamp_a_dot_and_the_body() {
        // Stripe's documented construction, computed independently: HMAC-SHA256("whsec_test_secret",
        // "1700000000.{}") in hex.
        let expected = hex(&hmac_sha256(b"whsec_test_secret", &[b"1700000000.{}"]));
        assert_eq!(check(&format!("t=1700000000,v1={expected}"), b"{}", 1_700_000_000), Ok(()));
    }
}
