//! The `webhook-signature` header: its `version,base64` entries, and whether any of them was
//! made by one of our keys over `{id}.{timestamp}.{body}`.
//!
//! Pure computation: no headers, no clock. HMAC results are compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::key::Key;

/// How many entries of one header are looked at. A sender signs with each active key (two
/// during a rotation), so this is generous; the bound stops a forged header with thousands of
/// ed25519 entries from costing thousands of verifications over the body.
pub(crate) const MAX_ENTRIES: usize = 16;

/// One entry of the header, decoded.
enum Entry {
    /// `v1,<base64 of a 32-byte HMAC-SHA256>`.
    Hmac([u8; 32]),
    /// `v1a,<base64 of a 64-byte ed25519 signature>`.
    Ed25519(ed25519_dalek::Signature),
    /// A well-formed entry of a version this crate doesn't know; a newer sender may add them.
    Unknown,
}

/// What the header says about the message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// An entry was made by the key at this position in the verifier's list.
    Matched { key_index: usize },
    /// The header has well-formed entries, but none made by any of the keys.
    NoMatch,
    /// The header has no well-formed entry at all.
    Malformed,
}

/// Checks the entries of `header` against each key in turn.
pub(crate) fn check(keys: &[Key], header: &str, id: &str, timestamp: &str, body: &[u8]) -> Check {
    let entries: Vec<Entry> =
        header.split_ascii_whitespace().take(MAX_ENTRIES).filter_map(parse_entry).collect();
    if entries.is_empty() {
        return Check::Malformed;
    }
    // ed25519 needs the signed content in one piece; build it only if some entry needs it.
    let mut content: Option<Vec<u8>> = None;
    for (key_index, key) in keys.iter().enumerate() {
        let matched = match key {
            Key::Hmac(secret) => {
                let expected = hmac_sha256(secret, id, timestamp, body);
                // Every entry is compared in full; `|` rather than `||` keeps the loop free of
                // early exits that would depend on the expected value.
                entries.iter().fold(false, |found, entry| {
                    found | matches!(entry, Entry::Hmac(given) if bool::from(given.ct_eq(&expected)))
                })
            }
            Key::Ed25519(public) => entries.iter().any(|entry| match entry {
                Entry::Ed25519(signature) => {
                    let content = content.get_or_insert_with(|| signed_content(id, timestamp, body));
                    public.verify_strict(content, signature).is_ok()
                }
                Entry::Hmac(_) | Entry::Unknown => false,
            }),
        };
        if matched {
            return Check::Matched { key_index };
        }
    }
    Check::NoMatch
}

/// Decodes one `version,value` entry; `None` when it is malformed.
fn parse_entry(entry: &str) -> Option<Entry> {
    let (version, value) = entry.split_once(',')?;
    if version.is_empty() || value.is_empty() {
        return None;
    }
    match version {
        "v1" => BASE64.decode(value).ok()?.try_into().ok().map(Entry::Hmac),
        "v1a" => {
            let bytes: [u8; 64] = BASE64.decode(value).ok()?.try_into().ok()?;
            Some(Entry::Ed25519(ed25519_dalek::Signature::from_bytes(&bytes)))
        }
        _ => Some(Entry::Unknown),
    }
}

/// HMAC-SHA256 of `{id}.{timestamp}.{body}`, fed in pieces so the body isn't copied.
fn hmac_sha256(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this arm exists only because the API is fallible.
        return [0; 32];
    };
    for piece in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
        mac.update(piece);
    }
    mac.finalize().into_bytes().into()
}

/// `{id}.{timestamp}.{body}` in one buffer.
fn signed_content(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    for piece in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
        content.extend_from_slice(piece);
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_key() -> Key {
        Key::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid")
    }

    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specification_vector_matches() {
        assert_eq!(check(&[hmac_key()], SIGNATURE, ID, TIMESTAMP, BODY), Check::Matched { key_index: 0 });
    }

    #[test]
    fn unknown_versions_and_broken_entries_are_skipped_not_fatal() {
        let header = format!("v2,abc nonsense v1,!!! v1,AAAA  {SIGNATURE}");
        assert_eq!(check(&[hmac_key()], &header, ID, TIMESTAMP, BODY), Check::Matched { key_index: 0 });
    }

    #[test]
    fn a_header_of_only_broken_entries_is_malformed() {
        for header in ["", "   ", "v1", "v1,", ",abc", "v1,!!!", "v1,AAAA", "v1a,AAAA"] {
            assert_eq!(check(&[hmac_key()], header, ID, TIMESTAMP, BODY), Check::Malformed, "{header:?}");
        }
    }

    #[test]
    fn entries_past_the_bound_are_not_looked_at() {
        let padding = vec!["v2,x"; MAX_ENTRIES].join(" ");
        let header = format!("{padding} {SIGNATURE}");
        assert_eq!(check(&[hmac_key()], &header, ID, TIMESTAMP, BODY), Check::NoMatch);
    }

    #[test]
    fn an_hmac_signature_does_not_satisfy_an_ed25519_key() {
        let public = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
        assert_eq!(check(&[Key::Ed25519(public)], SIGNATURE, ID, TIMESTAMP, BODY), Check::NoMatch);
    }
}
