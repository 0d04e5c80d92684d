//! Svix and Standard Webhooks: `svix-id`/`svix-timestamp`/`svix-signature` (or the `webhook-*`
//! names), HMAC-SHA256 over `id.timestamp.body` with the base64 key of a `whsec_` secret;
//! the signature header lists `v1,<base64>` entries separated by spaces (one per active key).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as BASE64};

use super::{Request, fresh, hmac_sha256, same, seconds};
use crate::ingest::{RefusalReason, SourceConfig};

/// A secret's key is base64 with or without its padding: the Svix and Standard Webhooks
/// libraries accept both (a 32-byte key is often written without its `=`).
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn key(secret: &str) -> Option<Vec<u8>> {
    SECRET_BASE64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok().filter(|key| !key.is_empty())
}

pub(super) fn check(config: &SourceConfig) -> Result<(), String> {
    match config.secret.as_deref().and_then(key) {
        Some(_) => Ok(()),
        None => Err("`config.secret` must be a `whsec_` secret (base64 after the prefix)".into()),
    }
}

pub(super) fn verify(secret: &str, request: &Request<'_>, now: i64) -> Result<(), RefusalReason> {
    let header =
        |name: &str| request.header(&format!("svix-{name}")).or(request.header(&format!("webhook-{name}")));
    let (Some(id), Some(timestamp), Some(signatures)) =
        (header("id"), header("timestamp"), header("signature"))
    else {
        return Err(RefusalReason::MissingSignature);
    };
    let key = key(secret).ok_or(RefusalReason::BadSignature)?;
    let timestamp = seconds(timestamp)?;
    let expected =
        hmac_sha256(&key, &[id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", request.body]);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .any(|signature| BASE64.decode(signature).is_ok_and(|given| same(&given, &expected)));
    if !matches {
        return Err(RefusalReason::BadSignature);
    }
    fresh(timestamp, now)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const AT: i64 = 1614265330;

    fn check(prefix: &str, body: &[u8], secret: &str, now: i64) -> Result<(), RefusalReason> {
        let headers = headers(&[
            (&format!("{prefix}-id"), "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            (&format!("{prefix}-timestamp"), "1614265330"),
            (&format!("{prefix}-signature"), "v1,bm9ldHU= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body }, now)
    }

    #[test]
    fn the_specification_example_verifies_under_both_header_names() {
        assert_eq!(check("webhook", BODY, SECRET, AT), Ok(()));
        assert_eq!(check("svix", BODY, SECRET, AT + 10), Ok(()));
    }

    #[test]
    fn a_key_written_without_its_base64_padding_is_the_same_key() {
        let padded = format!("whsec_{}", BASE64.encode([7u8; 32]));
        assert!(padded.ends_with('='));
        assert_eq!(key(padded.trim_end_matches('=')), key(&padded));
        assert!(key(padded.trim_end_matches('=')).is_some_and(|key| key == [7u8; 32]));
    }

    #[test]
    fn tampering_a_wrong_secret_and_a_stale_timestamp_are_refused() {
        assert_eq!(
            check("webhook", br#"{"test": 2432232315}"#, SECRET, AT),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(
            check("webhook", BODY, "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", AT),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(check("webhook", BODY, SECRET, AT + 301), Err(RefusalReason::StaleTimestamp));
        assert_eq!(check("webhook", BODY, SECRET, AT - 301), Err(RefusalReason::StaleTimestamp));
        assert_eq!(key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        let none = headers(&[]);
        assert_eq!(
            verify(SECRET, &Request { method: "POST", url: "", headers: &none, body: BODY }, AT),
            Err(RefusalReason::MissingSignature)
        );
    }
}
