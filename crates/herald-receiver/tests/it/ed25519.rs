//! `v1a` signatures, made here with `ed25519-dalek` directly, verified with `whpk_` keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey};
use herald_receiver::{Verifier, VerifyError};

use crate::{SECRET, svix_sign, webhook_headers};

const TIMESTAMP: i64 = 1_700_000_000;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public_key(seed: u8) -> String {
    format!("whpk_{}", BASE64.encode(signing_key(seed).verifying_key().as_bytes()))
}

fn sign(seed: u8, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1a,{}", BASE64.encode(signing_key(seed).sign(&content).to_bytes()))
}

#[test]
fn an_ed25519_signature_verifies_with_the_public_key() {
    let body = br#"{"type":"invoice.paid"}"#;
    let headers = webhook_headers("msg_1", TIMESTAMP, &sign(7, "msg_1", TIMESTAMP, body));
    let verifier = Verifier::new(&public_key(7)).expect("valid public key");
    assert_eq!(verifier.verify_at(&headers, body, TIMESTAMP).expect("verifies").id, "msg_1");
}

#[test]
fn another_public_key_or_a_changed_message_does_not_verify() {
    let body = b"{}";
    let headers = webhook_headers("msg_1", TIMESTAMP, &sign(7, "msg_1", TIMESTAMP, body));
    let other = Verifier::new(&public_key(8)).expect("valid public key");
    assert_eq!(other.verify_at(&headers, body, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
    let right = Verifier::new(&public_key(7)).expect("valid public key");
    assert_eq!(right.verify_at(&headers, b"{ }", TIMESTAMP), Err(VerifyError::NoMatchingSignature));
    let moved = webhook_headers("msg_2", TIMESTAMP, &sign(7, "msg_1", TIMESTAMP, body));
    assert_eq!(right.verify_at(&moved, body, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn hmac_and_ed25519_keys_work_side_by_side() {
    let body = b"{}";
    let verifier = Verifier::with_keys([SECRET.to_owned(), public_key(7)]).expect("valid keys");
    let both =
        format!("{} {}", sign(7, "msg_1", TIMESTAMP, body), svix_sign(SECRET, "msg_1", TIMESTAMP, body));
    assert_eq!(
        verifier
            .verify_at(&webhook_headers("msg_1", TIMESTAMP, &both), body, TIMESTAMP)
            .expect("ok")
            .key_index,
        0
    );
    let ed_only = sign(7, "msg_1", TIMESTAMP, body);
    let verified = verifier.verify_at(&webhook_headers("msg_1", TIMESTAMP, &ed_only), body, TIMESTAMP);
    assert_eq!(verified.expect("ed25519 entry").key_index, 1);
}

#[test]
fn a_secret_only_verifier_ignores_ed25519_entries() {
    let body = b"{}";
    let headers = webhook_headers("msg_1", TIMESTAMP, &sign(7, "msg_1", TIMESTAMP, body));
    let verifier = Verifier::new(SECRET).expect("valid secret");
    assert_eq!(verifier.verify_at(&headers, body, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
}
