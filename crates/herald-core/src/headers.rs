//! Rules for the custom headers an endpoint's deliveries carry.
//!
//! Some names are refused because Herald sets them itself (signatures, content type, user
//! agent) or because they control the connection, not the message. Some are sensitive: their
//! values are never returned by the API.

/// Names Herald sets or that belong to the transport, compared in lower case.
const FORBIDDEN: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// Prefixes of the signature headers Herald sets.
const FORBIDDEN_PREFIXES: &[&str] = &["webhook-", "svix-"];

/// Names whose values are credentials.
const SENSITIVE: &[&str] = &["authorization", "cookie", "x-api-key", "api-key"];

/// Parts of a name that suggest its value is a credential.
const SENSITIVE_PARTS: &[&str] = &["token", "secret", "password", "auth", "key", "signature"];

/// Most custom headers one endpoint may have: enough for any receiver's needs, few enough that
/// a delivery's request head stays within what receivers accept.
pub const MAX_CUSTOM_HEADERS: usize = 64;
/// Most bytes of custom header names and values together, for the same reason.
pub const MAX_CUSTOM_HEADER_BYTES: usize = 16 * 1024;

/// Checks a whole set of custom headers against [`MAX_CUSTOM_HEADERS`] and
/// [`MAX_CUSTOM_HEADER_BYTES`] (each header is checked by [`validate_header`]).
pub fn validate_header_set<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    let (mut count, mut bytes) = (0usize, 0usize);
    for (name, value) in headers {
        count += 1;
        bytes += name.len() + value.len();
    }
    if count > MAX_CUSTOM_HEADERS {
        return Err(format!("at most {MAX_CUSTOM_HEADERS} custom headers (got {count})"));
    }
    if bytes > MAX_CUSTOM_HEADER_BYTES {
        return Err(format!(
            "custom header names and values may take at most {MAX_CUSTOM_HEADER_BYTES} bytes together (got {bytes})"
        ));
    }
    Ok(())
}

/// Checks one custom header; the error says why it is refused.
pub fn validate_header(name: &str, value: &str) -> Result<(), String> {
    let valid_name = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("`{name}` is not a valid HTTP header name"));
    }
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN.contains(&lower.as_str()) || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(format!("the header `{name}` is set by Herald or the transport and can't be customised"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("the value of `{name}` contains control characters"));
    }
    Ok(())
}

/// Whether the API must hide this header's value. Every header of every attempt is asked
/// (its request is recorded masked), so this compares in place, ignoring case, and allocates
/// nothing.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.as_bytes();
    let contains =
        |part: &str| name.windows(part.len()).any(|window| window.eq_ignore_ascii_case(part.as_bytes()));
    SENSITIVE.iter().any(|exact| name.eq_ignore_ascii_case(exact.as_bytes()))
        || SENSITIVE_PARTS.iter().any(|part| contains(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_and_signature_headers_are_refused() {
        assert!(validate_header("X-Tenant", "acme").is_ok());
        assert!(validate_header("Authorization", "Basic abc").is_ok());
        for name in ["Host", "content-length", "Webhook-Signature", "svix-id", "Transfer-Encoding"] {
            assert!(validate_header(name, "x").is_err(), "{name}");
        }
        assert!(validate_header("bad name", "x").is_err());
        assert!(validate_header("x-ok", "line\r\nbreak").is_err());
    }

    #[test]
    fn credentials_are_sensitive() {
        assert!(is_sensitive("Authorization"));
        assert!(is_sensitive("X-Api-Key"));
        assert!(is_sensitive("x-access-token"));
        assert!(is_sensitive("X-Webhook-SECRET"));
        assert!(is_sensitive("Cookie"));
        assert!(is_sensitive("key"));
        assert!(!is_sensitive("x-tenant"));
        assert!(!is_sensitive("ke"));
        assert!(!is_sensitive("content-type"));
    }
}
