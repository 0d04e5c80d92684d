//! Forwarding to the app under development: the loopback-only target URL and the one HTTP
//! call per request. Must never send to a host outside loopback, and never follows redirects
//! (a redirect could leave loopback).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, Method, header};
use url::{Host, Url};

/// How long the local app may take to answer before the request counts as failed.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that describe one connection rather than the request, so they are not passed on
/// (RFC 9110 §7.6.1), plus `Host`, which must name the local app, and `Content-Length`, which
/// the client sets from the body.
const NOT_FORWARDED: &[HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A URL on this machine (127.0.0.0/8, ::1 or `localhost`) over http or https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardUrl(Url);

/// Why a `--forward-to` URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Not a URL at all.
    #[error("not a URL: {0}")]
    Invalid(#[from] url::ParseError),
    /// Neither http nor https.
    #[error("the URL must use http or https, not {0}")]
    Scheme(String),
    /// A host that is not this machine.
    #[error(
        "refusing to forward to {0}: herald listen only forwards to this machine \
         (127.0.0.0/8, ::1 or localhost)"
    )]
    NotLoopback(String),
}

impl ForwardUrl {
    /// Parses a `--forward-to` value, refusing anything that is not loopback.
    pub fn parse(text: &str) -> Result<ForwardUrl, ForwardError> {
        let url = Url::parse(text)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ForwardError::Scheme(url.scheme().to_owned()));
        }
        let loopback = match url.host() {
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(address)) => IpAddr::V4(address).is_loopback(),
            Some(Host::Ipv6(address)) => IpAddr::V6(address).is_loopback(),
            None => false,
        };
        if !loopback {
            return Err(ForwardError::NotLoopback(url.host_str().unwrap_or_default().to_owned()));
        }
        Ok(ForwardUrl(url))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// What the local app did with a forwarded request.
#[derive(Debug)]
pub(crate) enum ForwardOutcome {
    /// The app answered, with this status, after this long.
    Answered { status: u16, latency: Duration },
    /// The app could not be reached (down, restarting, or too slow).
    Unreachable { error: String, latency: Duration },
}

/// A client for the local app: no redirects, no proxy (a proxy would take loopback traffic
/// off the machine).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(FORWARD_TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends one request to the local app with the original body and headers, minus the
/// hop-by-hop ones.
pub(crate) async fn forward(
    client: &reqwest::Client,
    target: &ForwardUrl,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> ForwardOutcome {
    let mut passed = HeaderMap::new();
    for (name, value) in headers {
        if !NOT_FORWARDED.contains(name) {
            passed.append(name.clone(), value.clone());
        }
    }
    let started = Instant::now();
    let sent = client.request(method, target.0.clone()).headers(passed).body(body).send().await;
    let latency = started.elapsed();
    match sent {
        Ok(response) => ForwardOutcome::Answered { status: response.status().as_u16(), latency },
        Err(error) => ForwardOutcome::Unreachable { error: describe(&error), latency },
    }
}

/// The reqwest error and its causes on one line, e.g. "connection refused".
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("no answer within {}s", FORWARD_TIMEOUT.as_secs())
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        for good in
            ["http://127.0.0.1:3000/hooks", "http://127.9.9.9/", "http://[::1]:80/x", "https://LOCALHOST/"]
        {
            assert!(ForwardUrl::parse(good).is_ok(), "{good}");
        }
        for bad in
            ["http://10.0.0.1/", "http://example.com/", "http://localhost.evil.com/", "ftp://127.0.0.1/"]
        {
            assert!(ForwardUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
