//! Every way a request can fail has its own error, and none of them gives anything away.

use std::time::Duration;

use herald_receiver::{KeyError, Verifier, VerifyError};

use crate::{SECRET, svix_sign, webhook_headers};

const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn verifier() -> Verifier {
    Verifier::new(SECRET).expect("valid secret")
}

fn without(name: &str) -> Vec<(String, String)> {
    webhook_headers(ID, TIMESTAMP, SIGNATURE).into_iter().filter(|(key, _)| key != name).collect()
}

#[test]
fn each_missing_header_is_named() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert_eq!(
            verifier().verify_at(&without(name), BODY, TIMESTAMP),
            Err(VerifyError::MissingHeader(name))
        );
    }
}

#[test]
fn a_timestamp_that_is_not_unix_seconds_is_refused() {
    for text in ["yesterday", "1614265330.5", "-1614265330", ""] {
        let mut headers = without("webhook-timestamp");
        headers.push(("webhook-timestamp".to_owned(), text.to_owned()));
        assert_eq!(
            verifier().verify_at(&headers, BODY, TIMESTAMP),
            Err(VerifyError::BadTimestamp),
            "{text:?}"
        );
    }
}

#[test]
fn old_and_future_timestamps_are_refused_with_how_far_out_they_are() {
    let headers = webhook_headers(ID, TIMESTAMP, SIGNATURE);
    assert!(verifier().verify_at(&headers, BODY, TIMESTAMP + 300).is_ok());
    assert_eq!(
        verifier().verify_at(&headers, BODY, TIMESTAMP + 307),
        Err(VerifyError::TooOld { by_seconds: 7 })
    );
    assert!(verifier().verify_at(&headers, BODY, TIMESTAMP - 300).is_ok());
    assert_eq!(
        verifier().verify_at(&headers, BODY, TIMESTAMP - 360),
        Err(VerifyError::TooNew { by_seconds: 60 })
    );
}

#[test]
fn the_tolerance_can_be_changed() {
    let headers = webhook_headers(ID, TIMESTAMP, SIGNATURE);
    let strict = verifier().tolerance(Duration::from_secs(10));
    assert_eq!(strict.verify_at(&headers, BODY, TIMESTAMP + 11), Err(VerifyError::TooOld { by_seconds: 1 }));
    let lenient = verifier().tolerance(Duration::from_secs(24 * 60 * 60));
    assert!(lenient.verify_at(&headers, BODY, TIMESTAMP + 3600).is_ok());
}

#[test]
fn a_signature_header_without_a_well_formed_entry_is_malformed() {
    for text in ["", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,not-base64!", "v1,AAAA"] {
        let mut headers = without("webhook-signature");
        headers.push(("webhook-signature".to_owned(), text.to_owned()));
        assert_eq!(
            verifier().verify_at(&headers, BODY, TIMESTAMP),
            Err(VerifyError::MalformedSignature),
            "{text:?}"
        );
    }
}

#[test]
fn a_tampered_body_id_or_timestamp_does_not_verify() {
    let headers = webhook_headers(ID, TIMESTAMP, SIGNATURE);
    let tampered_body = br#"{"test": 2432232315}"#;
    assert_eq!(
        verifier().verify_at(&headers, tampered_body, TIMESTAMP),
        Err(VerifyError::NoMatchingSignature)
    );

    let other_id = webhook_headers("msg_other", TIMESTAMP, SIGNATURE);
    assert_eq!(verifier().verify_at(&other_id, BODY, TIMESTAMP), Err(VerifyError::NoMatchingSignature));

    let other_time = webhook_headers(ID, TIMESTAMP + 1, SIGNATURE);
    assert_eq!(verifier().verify_at(&other_time, BODY, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn another_secret_does_not_verify() {
    let signature = svix_sign("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", ID, TIMESTAMP, BODY);
    let headers = webhook_headers(ID, TIMESTAMP, &signature);
    assert_eq!(verifier().verify_at(&headers, BODY, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn unknown_signature_versions_are_ignored_not_fatal() {
    let headers = webhook_headers(ID, TIMESTAMP, &format!("v9,whatever {SIGNATURE}"));
    assert!(verifier().verify_at(&headers, BODY, TIMESTAMP).is_ok());
    let only_unknown = webhook_headers(ID, TIMESTAMP, "v9,whatever");
    assert_eq!(verifier().verify_at(&only_unknown, BODY, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn errors_have_stable_codes() {
    let codes: Vec<&str> = [
        VerifyError::MissingHeader("webhook-id"),
        VerifyError::BadTimestamp,
        VerifyError::TooOld { by_seconds: 1 },
        VerifyError::TooNew { by_seconds: 1 },
        VerifyError::MalformedSignature,
        VerifyError::NoMatchingSignature,
    ]
    .iter()
    .map(VerifyError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "missing_header",
            "bad_timestamp",
            "timestamp_too_old",
            "timestamp_too_new",
            "malformed_signature",
            "no_matching_signature"
        ]
    );
}

#[test]
fn no_error_or_debug_output_contains_the_secret_or_a_signature() {
    let key_material = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signature_material = "g0hM9SsE";
    let verifier = verifier();
    let failures = [
        verifier.verify_at(&webhook_headers(ID, TIMESTAMP, SIGNATURE), b"tampered", TIMESTAMP),
        verifier.verify_at(&webhook_headers(ID, TIMESTAMP, "v1,g0hM9SsE"), BODY, TIMESTAMP),
        verifier.verify_at(&webhook_headers(ID, TIMESTAMP, SIGNATURE), BODY, TIMESTAMP + 9999),
    ];
    for failure in failures {
        let error = failure.expect_err("fails");
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(key_material) && !shown.contains(signature_material), "{shown}");
        }
    }
    let shown = format!("{verifier:?}");
    assert!(!shown.contains(key_material), "{shown}");
    let key_error = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8I?").expect_err("not base64");
    assert!(!key_error.to_string().contains("MfKQ9r8") && !format!("{key_error:?}").contains("MfKQ9r8"));
}

#[test]
fn unusable_keys_are_refused_when_the_verifier_is_built() {
    assert_eq!(Verifier::new("").err(), Some(KeyError::Empty));
    assert_eq!(Verifier::new("whsec_???").err(), Some(KeyError::NotBase64));
    assert_eq!(Verifier::new("whsk_AAAA").err(), Some(KeyError::PrivateKey));
    assert_eq!(Verifier::new("whpk_AAAA").err(), Some(KeyError::PublicKeyLength(3)));
    assert_eq!(Verifier::with_keys(Vec::<String>::new()).err(), Some(KeyError::NoKeys));
    assert_eq!(Verifier::with_keys([SECRET, "whsec_???"]).err(), Some(KeyError::NotBase64));
}
