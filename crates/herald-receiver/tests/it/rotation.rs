//! Several keys: a message signed by any of them verifies, and the match says which.

use herald_receiver::{Verifier, VerifyError};

use crate::{svix_sign, webhook_headers};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const UNRELATED: &str = "whsec_dGhpcyBzZWNyZXQgaXMgbm90IGNvbmZpZ3VyZWQ=";
const TIMESTAMP: i64 = 1_700_000_000;

fn signed_by(secret: &str) -> Vec<(String, String)> {
    webhook_headers("msg_1", TIMESTAMP, &svix_sign(secret, "msg_1", TIMESTAMP, b"{}"))
}

#[test]
fn either_key_verifies_and_the_match_says_which() {
    let verifier = Verifier::with_keys([OLD, NEW]).expect("valid secrets");
    assert_eq!(verifier.verify_at(&signed_by(OLD), b"{}", TIMESTAMP).expect("old key").key_index, 0);
    assert_eq!(verifier.verify_at(&signed_by(NEW), b"{}", TIMESTAMP).expect("new key").key_index, 1);
    assert_eq!(
        verifier.verify_at(&signed_by(UNRELATED), b"{}", TIMESTAMP),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn a_header_signed_by_several_keys_verifies_if_any_matches() {
    // What a sender in the middle of a rotation sends: one entry per active key.
    let both = format!(
        "{} {}",
        svix_sign(UNRELATED, "msg_1", TIMESTAMP, b"{}"),
        svix_sign(NEW, "msg_1", TIMESTAMP, b"{}")
    );
    let verifier = Verifier::new(NEW).expect("valid secret");
    let verified = verifier.verify_at(&webhook_headers("msg_1", TIMESTAMP, &both), b"{}", TIMESTAMP);
    assert_eq!(verified.expect("the second entry matches").key_index, 0);
}

#[test]
fn keys_can_be_added_later() {
    let mut verifier = Verifier::new(OLD).expect("valid secret");
    let copy_before = verifier.clone();
    verifier.add_key(NEW).expect("valid secret");
    assert_eq!(verifier.verify_at(&signed_by(NEW), b"{}", TIMESTAMP).expect("added key").key_index, 1);
    // Clones share keys but adding one doesn't reach back into earlier copies.
    assert_eq!(
        copy_before.verify_at(&signed_by(NEW), b"{}", TIMESTAMP),
        Err(VerifyError::NoMatchingSignature)
    );
}
