//! The receiver's behaviour as a user sees it, against signatures made by independent
//! implementations: the `svix` crate (HMAC) and `ed25519-dalek` directly (ed25519).

mod axum;
mod bearer;
mod ed25519;
mod errors;
mod interop;
mod rotation;
mod seen;

/// The secret of the Standard Webhooks specification's example.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A signature header value made by the Svix library, not by this crate.
pub fn svix_sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let signer = svix::webhooks::Webhook::new(secret).expect("svix accepts the secret");
    signer.sign(id, timestamp, body).expect("svix signs UTF-8 bodies")
}

/// The three Standard Webhooks headers as name/value pairs.
pub fn webhook_headers(id: &str, timestamp: i64, signature: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), signature.to_owned()),
    ]
}
