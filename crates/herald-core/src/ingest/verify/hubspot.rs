//! HubSpot v3: `X-HubSpot-Signature-v3: <base64 HMAC-SHA256(client secret, method + uri + body +
//! timestamp)>` with `X-HubSpot-Request-Timestamp` in milliseconds; the URI is the full URL
//! HubSpot called, with the characters HubSpot lists decoded. A request [`TOLERANCE_SECS`] old
//! or older is refused, one from ahead of Herald's clock is not: as HubSpot's library
//! (`Signature.is_valid`) judges.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Identity, Request, TOLERANCE_SECS, hmac_sha256, same, seconds};
use crate::ingest::RefusalReason;

/// The encodings HubSpot decodes before signing.
const DECODED: &[(&str, &str)] = &[
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
];

pub(super) fn verify(secret: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let (Some(given), Some(timestamp)) =
        (request.header("x-hubspot-signature-v3"), request.header("x-hubspot-request-timestamp"))
    else {
        return Err(RefusalReason::MissingSignature);
    };
    let mut uri = request.url.to_owned();
    for (encoded, plain) in DECODED {
        uri = uri.replace(encoded, plain).replace(&encoded.to_ascii_lowercase(), plain);
    }
    let expected = hmac_sha256(
        secret.as_bytes(),
        &[request.method.as_bytes(), uri.as_bytes(), request.body, timestamp.as_bytes()],
    );
    if !BASE64.decode(given.trim()).is_ok_and(|given| same(&given, &expected)) {
        return Err(RefusalReason::BadSignature);
    }
    // HubSpot's library accepts a request strictly younger than five minutes, and any from
    // ahead of its clock.
    if now - seconds(timestamp)?.div_euclid(1000) >= TOLERANCE_SECS {
        return Err(RefusalReason::StaleTimestamp);
    }
    Ok(())
}

/// HubSpot sends arrays of events: the first one's `eventId` and `subscriptionType`.
pub(super) fn identify(json: Option<&serde_json::Value>) -> Identity {
    let first = json.and_then(|body| body.get(0));
    let text = |key: &str| {
        first.and_then(|event| event.get(key)).and_then(|value| match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    };
    Identity { delivery_id: text("eventId"), event_type: text("subscriptionType") }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    const BODY: &[u8] = br#"[{"eventId":1}]"#;
    // Computed independently with Python's hmac over
    // "POSThttps://example.com/in/tok" + body + "1700000000000".
    const SIGNATURE: &str = "ZaBJ2y6ofNFMIwC2MyH2X/AYrD+ui1MSgoRT7SWnfuc=";

    fn check(secret: &str, url: &str, body: &[u8], now: i64) -> Result<(), RefusalReason> {
        let headers = headers(&[
            ("X-HubSpot-Signature-v3", SIGNATURE),
            ("X-HubSpot-Request-Timestamp", "1700000000000"),
        ]);
        verify(secret, &Request { method: "POST", url, headers: &headers, body }, now)
    }

    #[test]
    fn a_signed_request_verifies_with_its_url_and_tampering_staleness_or_another_secret_do_not() {
        let url = "https://example.com/in/tok";
        assert_eq!(check("hub_secret", url, BODY, 1_700_000_000), Ok(()));
        assert_eq!(check("hub_secret", "https%3A%2F%2Fexample.com%2Fin%2Ftok", BODY, 1_700_000_000), Ok(()));
        assert_eq!(
            check("hub_secret", "https://example.com/in/other", BODY, 1_700_000_000),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(
            check("hub_secret", url, br#"[{"eventId":2}]"#, 1_700_000_000),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(check("other", url, BODY, 1_700_000_000), Err(RefusalReason::BadSignature));
        assert_eq!(check("hub_secret", url, BODY, 1_700_000_301), Err(RefusalReason::StaleTimestamp));
    }

    #[test]
    fn five_minutes_old_is_stale_and_ahead_of_the_clock_is_not_as_hubspots_library_judges() {
        let url = "https://example.com/in/tok";
        assert_eq!(check("hub_secret", url, BODY, 1_700_000_299), Ok(()));
        assert_eq!(check("hub_secret", url, BODY, 1_700_000_300), Err(RefusalReason::StaleTimestamp));
        assert_eq!(check("hub_secret", url, BODY, 1_699_996_400), Ok(()));
    }

    #[test]
    fn the_first_event_names_the_delivery_and_type() {
        let identity =
            identify(Some(&serde_json::json!([{"eventId": 42, "subscriptionType": "contact.creation"}])));
        assert_eq!(
            identity,
            Identity { delivery_id: Some("42".into()), event_type: Some("contact.creation".into()) }
        );
    }
}
