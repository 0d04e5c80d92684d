//! The outbound HTTP request of one attempt: signed, authenticated, bounded in time and size,
//! never redirected, and only ever connected to addresses the SSRF guard allowed.
//!
//! Only this module sends outbound HTTP. A failing endpoint is not an error here: every
//! attempt ends in a [`Sent`] describing what happened, which the lane turns into an outcome.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::model::Endpoint;
use herald_core::retry::AttemptResult;
use herald_core::signature::signature_header;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};

use crate::worker::ssrf::{AddressPolicy, ResolveError, resolve_checked};

/// How the sender behaves; from configuration.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole attempt, from connecting to the end of the body read.
    pub request_timeout: Duration,
    /// Bytes of the response body kept on the attempt.
    pub response_body_limit: usize,
    /// Also send `svix-id`, `svix-timestamp` and `svix-signature`, for Svix receivers.
    pub svix_headers: bool,
    /// Which addresses deliveries may go to.
    pub address_policy: AddressPolicy,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub result: AttemptResult,
    /// The HTTP status, 0 when there was no response.
    pub status_code: u16,
    /// The start of the response body, or why there was no response.
    pub response: String,
    pub duration: Duration,
    /// True when the SSRF guard refused the destination.
    pub refused: bool,
    /// True when the attempt ran out of time.
    pub timed_out: bool,
}

/// A message as it is sent: id, payload, and the time the attempt is signed with.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub msg_id: &'a str,
    pub timestamp: i64,
    pub payload: &'a [u8],
}

/// The shared HTTP client (connection pools per host).
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    settings: Arc<SenderSettings>,
}

/// Resolves host names through the SSRF guard, so connections go only to checked addresses.
#[derive(Debug)]
struct CheckedResolver {
    policy: AddressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // The port is replaced by the URL's port when connecting.
            // Boxed once, as the concrete type, so `find_source` can recognise a refusal.
            let addrs = resolve_checked(&policy, name.as_str(), 0)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl Sender {
    pub fn new(settings: SenderSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // No cap on idle connections per host below what the lanes already bound: idle
            // connections never outnumber the requests that were in flight to that host at
            // once (endpoint_concurrency per endpoint). A lower cap closes connections as their
            // responses arrive only to open new ones a moment later: with ten endpoints on one
            // host, a cap of 256 meant ~2,800 new TCP connections a second (BENCHMARKS.md).
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .dns_resolver(Arc::new(CheckedResolver { policy: settings.address_policy.clone() }))
            .build()?;
        Ok(Self { client, settings: Arc::new(settings) })
    }

    /// The headers of an attempt: content type, user agent, signatures, the endpoint's custom
    /// headers, and its bearer token.
    pub fn headers(
        &self,
        endpoint: &Endpoint,
        message: Outgoing<'_>,
        signing_time: chrono::DateTime<chrono::Utc>,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Custom headers first, so Herald's own headers always win.
        for (name, value) in &endpoint.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value.expose()))
            {
                headers.insert(name, value);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Herald/", env!("CARGO_PKG_VERSION"))));
        let signature = signature_header(
            endpoint.keys.active(signing_time),
            message.msg_id,
            message.timestamp,
            message.payload,
        );
        let pairs = [
            ("webhook-id", message.msg_id.to_owned()),
            ("webhook-timestamp", message.timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                if self.settings.svix_headers {
                    let svix = name.replacen("webhook-", "svix-", 1);
                    if let Ok(svix) = HeaderName::try_from(svix) {
                        headers.insert(svix, value.clone());
                    }
                }
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        if let Some(token) = &endpoint.bearer_token
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    /// Makes one attempt.
    pub async fn send(&self, endpoint: &Endpoint, headers: HeaderMap, body: Vec<u8>) -> Sent {
        let started = Instant::now();
        // reqwest does not resolve IP literals, so they are checked here.
        if let Some(ip) = literal_ip(&endpoint.url)
            && let Err(refused) = self.settings.address_policy.check(ip)
        {
            return refused_attempt(refused.to_string(), started);
        }
        let request = self.client.post(endpoint.url.clone()).headers(headers).body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.failure(&error, started),
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
        let limit = self.settings.response_body_limit;
        let mut body = Vec::new();
        // Read at most `limit` bytes; the rest of a large body is not waited for.
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
                Ok(None) => break,
                // The status is what counts; a body cut short is kept as far as it came.
                Err(_) => break,
            }
        }
        Sent {
            result: AttemptResult::Response { status, retry_after },
            status_code: status,
            response: String::from_utf8_lossy(&body).into_owned(),
            duration: started.elapsed(),
            refused: false,
            timed_out: false,
        }
    }

    fn failure(&self, error: &reqwest::Error, started: Instant) -> Sent {
        if let Some(refused) = find_source::<ResolveError>(error)
            && matches!(refused, ResolveError::Refused(_))
        {
            return refused_attempt(refused.to_string(), started);
        }
        let timed_out = error.is_timeout();
        let response = if timed_out {
            format!("no response within {} s", self.settings.request_timeout.as_secs_f64())
        } else {
            describe(error)
        };
        Sent {
            result: AttemptResult::NoResponse,
            status_code: 0,
            response,
            duration: started.elapsed(),
            refused: false,
            timed_out,
        }
    }
}

fn refused_attempt(reason: String, started: Instant) -> Sent {
    Sent {
        result: AttemptResult::NoResponse,
        status_code: 0,
        response: format!("refused by the SSRF guard: {reason}"),
        duration: started.elapsed(),
        refused: true,
        timed_out: false,
    }
}

/// The host of a URL when it is an IP address.
fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// A `Retry-After` of delay-seconds (the HTTP-date form is rare for webhooks and ignored).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    value.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Finds an error of type `T` in `error`'s source chain.
fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// A readable description of a transport error: its deepest cause is the most specific.
fn describe(error: &reqwest::Error) -> String {
    let mut text =
        if error.is_connect() { "connection failed".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(error);
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(cause) = last {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}
