//! How a received webhook is shown on the terminal. Pure formatting: builds strings, does no
//! I/O, and never shows a bearer token beyond its last four characters.

use std::fmt::Write as _;
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone as _, Utc};
use herald_receiver::VerifyError;

use super::forward::ForwardOutcome;

/// Headers worth showing for every webhook, in this order; the signature is left out as
/// noise (the verification line says what matters about it).
const SHOWN_HEADERS: &[&str] =
    &["webhook-timestamp", "svix-timestamp", "content-type", "user-agent", "authorization"];

/// The event type from a JSON payload's `type` or `eventType` field, or "-".
pub(crate) fn event_type(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            ["type", "eventType"].iter().find_map(|field| value.get(field)?.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// `Bearer …abcd`: enough to tell tokens apart, never enough to use one.
pub(crate) fn mask_authorization(value: &str) -> String {
    let (scheme, token) = value.split_once(' ').unwrap_or(("", value));
    let chars: Vec<char> = token.trim().chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    if scheme.is_empty() { format!("…{tail}") } else { format!("{scheme} …{tail}") }
}

/// The block printed for one request: a heading line, the headers that matter and the body.
pub(crate) fn request(
    received_at: DateTime<Utc>,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    let mut out = String::new();
    let id = ["webhook-id", "svix-id"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|value| value.to_str().ok()))
        .unwrap_or("-");
    let _ = writeln!(
        out,
        "── {} {method} {path}  event: {}  id: {id}",
        received_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        event_type(body)
    );
    for name in SHOWN_HEADERS {
        let Some(value) = headers.get(*name) else { continue };
        let text = String::from_utf8_lossy(value.as_bytes());
        let shown = match *name {
            "authorization" => mask_authorization(&text),
            "webhook-timestamp" | "svix-timestamp" => with_time(&text),
            _ => text.into_owned(),
        };
        let _ = writeln!(out, "   {name}: {shown}");
    }
    let _ = writeln!(out, "{}", pretty_body(body));
    out
}

/// A unix-seconds header followed by the time it names, when it is one.
fn with_time(text: &str) -> String {
    match text.trim().parse::<i64>().ok().and_then(|seconds| Utc.timestamp_opt(seconds, 0).single()) {
        Some(time) => format!("{text} ({})", time.format("%Y-%m-%d %H:%M:%S UTC")),
        None => text.to_owned(),
    }
}

/// The body pretty-printed when it is JSON, otherwise as text.
fn pretty_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) if body.is_empty() => "(empty body)".to_owned(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// The verification line: "signature: valid" or exactly why not.
pub(crate) fn verification(result: &Result<(), VerifyError>) -> String {
    match result {
        Ok(()) => "signature: valid".to_owned(),
        Err(error) => format!("signature: INVALID ({}): {}", error.code(), reason(error)),
    }
}

/// A sentence for each way verification fails, with the numbers a developer needs.
pub(crate) fn reason(error: &VerifyError) -> String {
    match error {
        VerifyError::MissingHeader(name) => format!("missing header {name} (or its svix-* twin)"),
        VerifyError::BadTimestamp => "bad timestamp: webhook-timestamp is not unix seconds".to_owned(),
        VerifyError::TooOld { by_seconds } => format!("timestamp too old by {by_seconds} s"),
        VerifyError::TooNew { by_seconds } => format!("timestamp too new by {by_seconds} s"),
        VerifyError::MalformedSignature => "malformed signature header".to_owned(),
        VerifyError::NoMatchingSignature => {
            "no matching signature (wrong secret, or the body changed)".to_owned()
        }
        other => other.to_string(),
    }
}

/// The forwarding line.
pub(crate) fn forwarded(target: &str, outcome: &ForwardOutcome) -> String {
    match outcome {
        ForwardOutcome::Answered { status, latency } => {
            format!("forward: {target} -> {status} in {}", millis(*latency))
        }
        ForwardOutcome::Unreachable { error, latency } => {
            format!("forward: {target} unreachable after {} ({error}); answered 502", millis(*latency))
        }
    }
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_show_only_their_last_four_characters() {
        assert_eq!(mask_authorization("Bearer abcdefgh1234"), "Bearer …1234");
        assert_eq!(mask_authorization("xy"), "…xy");
    }

    #[test]
    fn the_event_type_comes_from_type_or_event_type() {
        assert_eq!(event_type(br#"{"type":"a.b"}"#), "a.b");
        assert_eq!(event_type(br#"{"eventType":"c"}"#), "c");
        assert_eq!(event_type(b"plain"), "-");
    }
}
