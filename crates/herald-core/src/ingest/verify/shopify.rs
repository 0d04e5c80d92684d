//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>`, or the same headers
//! without `X-` from Shopify's Events API (`Shopify-Hmac-Sha256`, `Shopify-Topic`, …), which
//! Shopify's library (`@shopify/shopify-api`) reads first; no timestamp (`X-Shopify-Webhook-Id`
//! deduplicates redeliveries).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Request, hmac_sha256, same};
use crate::ingest::RefusalReason;

pub(super) const FORWARDED: &[&str] = &[
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-triggered-at",
    "shopify-topic",
    "shopify-shop-domain",
    "shopify-api-version",
    "shopify-webhook-id",
    "shopify-triggered-at",
    "shopify-handle",
    "shopify-action",
];

/// A header by its Events API name (`shopify-…`) or, failing that, its webhooks name
/// (`x-shopify-…`), in that order as Shopify's library looks.
pub(super) fn header<'r>(request: &'r Request<'_>, name: &str) -> Option<&'r str> {
    request.header(&format!("shopify-{name}")).or_else(|| request.header(&format!("x-shopify-{name}")))
}

pub(super) fn verify(secret: &str, request: &Request<'_>) -> Result<(), RefusalReason> {
    let given = header(request, "hmac-sha256").ok_or(RefusalReason::MissingSignature)?;
    let given = BASE64.decode(given.trim()).map_err(|_| RefusalReason::BadSignature)?;
    if same(&given, &hmac_sha256(secret.as_bytes(), &[request.body])) {
        Ok(())
    } else {
        Err(RefusalReason::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    // Computed independently with Python's hmac: base64(HMAC-SHA256("shpss_secret", '{"id":1}')).
    const SIGNATURE: &str = "xocA3LkeJ/RvNrkxep1EUtFHuj7rIoIqZYaLU26LyPQ=";

    fn check(secret: &str, body: &[u8]) -> Result<(), RefusalReason> {
        let headers = headers(&[("X-Shopify-Hmac-Sha256", SIGNATURE)]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body })
    }

    #[test]
    fn a_signed_body_verifies_and_tampering_or_another_secret_do_not() {
        assert_eq!(check("shpss_secret", br#"{"id":1}"#), Ok(()));
        assert_eq!(check("shpss_secret", br#"{"id":2}"#), Err(RefusalReason::BadSignature));
        assert_eq!(check("shpss_other", br#"{"id":1}"#), Err(RefusalReason::BadSignature));
    }

    #[test]
    fn an_events_api_delivery_without_the_x_prefix_verifies() {
        let headers = headers(&[("Shopify-Hmac-Sha256", SIGNATURE), ("Shopify-Topic", "orders/create")]);
        let request = Request { method: "POST", url: "", headers: &headers, body: br#"{"id":1}"# };
        assert_eq!(verify("shpss_secret", &request), Ok(()));
        assert_eq!(header(&request, "topic"), Some("orders/create"));
    }
}
