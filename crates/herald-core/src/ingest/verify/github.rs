//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; no timestamp (the
//! delivery id `X-GitHub-Delivery` deduplicates redeliveries).

use super::{Identity, Request, hex, hmac_sha256, same};
use crate::ingest::RefusalReason;

pub(super) const FORWARDED: &[&str] = &[
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
];

pub(super) fn verify(secret: &str, request: &Request<'_>) -> Result<(), RefusalReason> {
    let given = request.header("x-hub-signature-256").ok_or(RefusalReason::MissingSignature)?;
    let given = given.strip_prefix("sha256=").ok_or(RefusalReason::BadSignature)?;
    let expected = hex(&hmac_sha256(secret.as_bytes(), &[request.body]));
    // Compared as text, as GitHub's library (@octokit/webhooks-methods) compares it: GitHub
    // sends lower-case hex, and upper-case is refused there too.
    if same(given.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(RefusalReason::BadSignature) }
}

/// `X-GitHub-Event`, followed by the body's `action` when it has one (`pull_request.opened`).
pub(super) fn identify(request: &Request<'_>, json: Option<&serde_json::Value>) -> Identity {
    let action = json.and_then(|body| body.get("action")).and_then(|action| action.as_str());
    let event_type = request.header("x-github-event").map(|event| match action {
        Some(action) => format!("{event}.{action}"),
        None => event.to_owned(),
    });
    Identity { delivery_id: request.header("x-github-delivery").map(str::to_owned), event_type }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;

    fn check(secret: &str, body: &[u8], signature: &str) -> Result<(), RefusalReason> {
        let headers = headers(&[("X-Hub-Signature-256", signature)]);
        verify(secret, &Request { method: "POST", url: "", headers: &headers, body })
    }

    // The example of GitHub's "Validating webhook deliveries".
    const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn the_documented_example_verifies() {
        assert_eq!(check("It's a Secret to Everybody", b"Hello, World!", SIGNATURE), Ok(()));
    }

    #[test]
    fn tampering_and_a_wrong_secret_are_refused() {
        assert_eq!(
            check("It's a Secret to Everybody", b"Hello, World?", SIGNATURE),
            Err(RefusalReason::BadSignature)
        );
        assert_eq!(check("another", b"Hello, World!", SIGNATURE), Err(RefusalReason::BadSignature));
        assert_eq!(check("x", b"", "sha1=00"), Err(RefusalReason::BadSignature));
        assert_eq!(
            check(
                "It's a Secret to Everybody",
                b"Hello, World!",
                &SIGNATURE.to_ascii_uppercase().replace("SHA256", "sha256")
            ),
            Err(RefusalReason::BadSignature)
        );
        let none = headers(&[]);
        assert_eq!(
            verify("x", &Request { method: "POST", url: "", headers: &none, body: b"" }),
            Err(RefusalReason::MissingSignature)
        );
    }

    #[test]
    fn the_event_type_joins_the_event_and_its_action() {
        let headers = headers(&[("X-GitHub-Event", "pull_request"), ("X-GitHub-Delivery", "d-1")]);
        let body = br#"{"action":"opened"}"#;
        let request = Request { method: "POST", url: "", headers: &headers, body };
        let identity = identify(&request, request.json().as_ref());
        assert_eq!(identity.event_type.as_deref(), Some("pull_request.opened"));
        assert_eq!(identity.delivery_id.as_deref(), Some("d-1"));
    }
}
