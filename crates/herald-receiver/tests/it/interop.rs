//! Signatures made by other implementations verify, under either family of header names.

use herald_receiver::{Verifier, VerifyError};

use crate::{SECRET, svix_sign, webhook_headers};

#[test]
fn the_standard_webhooks_test_vector_verifies() {
    let headers = webhook_headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    let verifier = Verifier::new(SECRET).expect("valid secret");
    let verified = verifier.verify_at(&headers, br#"{"test": 2432232314}"#, 1614265330).expect("verifies");
    assert_eq!(verified.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_eq!(verified.timestamp, 1614265330);
    assert_eq!(verified.key_index, 0);
}

#[test]
fn svix_signatures_verify_for_many_secrets_and_bodies() {
    let secrets = [
        SECRET,
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "whsec_dGhpcyBpcyBhIGxvbmdlciBzZWNyZXQgb2YgZmlmdHkgYnl0ZXMgb3Igc28gZm9yIHRlc3Rz",
        "c2hvcnQ=",
    ];
    let bodies: [&[u8]; 4] = [b"", b"{}", "{\"name\": \"Zoë 🚀\"}".as_bytes(), &[b'x'; 100_000]];
    for secret in secrets {
        let verifier = Verifier::new(secret).expect("valid secret");
        for body in bodies {
            let timestamp = 1_700_000_000;
            let signature = svix_sign(secret, "msg_2ZbqlV1XbqrzkYd7z6z4NuA4P3G", timestamp, body);
            let headers = webhook_headers("msg_2ZbqlV1XbqrzkYd7z6z4NuA4P3G", timestamp, &signature);
            let verified = verifier.verify_at(&headers, body, timestamp).expect("svix's signature verifies");
            assert_eq!(verified.id, "msg_2ZbqlV1XbqrzkYd7z6z4NuA4P3G");
        }
    }
}

#[test]
fn svix_header_names_are_read_too() {
    let signature = svix_sign(SECRET, "msg_1", 1_700_000_000, b"{}");
    let headers =
        [("svix-id", "msg_1"), ("svix-timestamp", "1700000000"), ("svix-signature", signature.as_str())];
    let verifier = Verifier::new(SECRET).expect("valid secret");
    assert_eq!(verifier.verify_at(&headers, b"{}", 1_700_000_000).expect("verifies").id, "msg_1");
}

#[test]
fn webhook_names_win_over_svix_names() {
    let signature = svix_sign(SECRET, "msg_standard", 1_700_000_000, b"{}");
    let headers = [
        ("svix-id", "msg_svix"),
        ("webhook-id", "msg_standard"),
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", signature.as_str()),
    ];
    let verifier = Verifier::new(SECRET).expect("valid secret");
    assert_eq!(verifier.verify_at(&headers, b"{}", 1_700_000_000).expect("verifies").id, "msg_standard");
}

#[test]
fn an_http_header_map_is_a_header_source() {
    let signature = svix_sign(SECRET, "msg_1", 1_700_000_000, b"{}");
    let mut headers = http::HeaderMap::new();
    headers.insert("Webhook-Id", http::HeaderValue::from_static("msg_1"));
    headers.insert("Webhook-Timestamp", http::HeaderValue::from_static("1700000000"));
    headers.insert("Webhook-Signature", signature.parse().expect("a header value"));
    let verifier = Verifier::new(SECRET).expect("valid secret");
    assert_eq!(verifier.verify_at(&headers, b"{}", 1_700_000_000).expect("verifies").id, "msg_1");

    headers.remove("webhook-signature");
    assert_eq!(
        verifier.verify_at(&headers, b"{}", 1_700_000_000),
        Err(VerifyError::MissingHeader("webhook-signature"))
    );
}

#[test]
fn verify_uses_the_system_clock() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .try_into()
        .expect("fits");
    let signature = svix_sign(SECRET, "msg_now", now, b"{}");
    let verifier = Verifier::new(SECRET).expect("valid secret");
    assert!(verifier.verify(&webhook_headers("msg_now", now, &signature), b"{}").is_ok());
    let stale = svix_sign(SECRET, "msg_old", now - 3600, b"{}");
    assert!(matches!(
        verifier.verify(&webhook_headers("msg_old", now - 3600, &stale), b"{}"),
        Err(VerifyError::TooOld { .. })
    ));
}
